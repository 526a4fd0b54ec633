/*
 * fuzz_csv - the recipient list reader (core/recipients.h) on a fuzzed list.
 *
 * The first byte chooses the options: bits 0-1 the delimiter (',', ';', tab, '|'),
 * bit 2 small limits (a row of 256 bytes, a field of 64) so that the limits are
 * reached; the rest is the file, read from memory.
 *
 * Checks: each row has as many fields as the header, its fields are as long as
 * said and hold no NUL, rows count up and their lines never go back (lines count
 * line feeds: rows ended by bare CRs share one); a column name finds its own index;
 * after recipients_rewind the same rows come back, ending the same way.
 */
#include "../../core/recipients.h"
#include "fuzz.h"

#include <string.h>
#include <unistd.h>

/* Read every row; returns the last code (0 at the end, or an error) and the count. */
static int read_all(struct recipients *r, size_t *rows, unsigned long *sum)
{
    struct recipients_row row;
    struct blast_error err;
    size_t last_row = 0, last_line = 0, i;
    int rc;

    *rows = 0;
    *sum = 0;
    for (;;) {
        blast_error_clear(&err);
        rc = recipients_next(r, &row, &err);
        if (rc <= 0) {
            if (rc < 0 && (err.code != rc || err.source[0] == '\0'))
                fuzz_fail("error %d without its record or its file", rc);
            return rc;
        }
        if (row.nfields != recipients_ncolumns(r))
            fuzz_fail("row %zu has %zu fields, the header %zu", row.row, row.nfields,
                      recipients_ncolumns(r));
        if (row.row != last_row + 1 || row.line < last_line || row.line < 1)
            fuzz_fail("row %zu at line %zu after row %zu at line %zu", row.row, row.line, last_row,
                      last_line);
        last_row = row.row;
        last_line = row.line;
        for (i = 0; i < row.nfields; i++) {
            if (row.fields[i] == NULL || strlen(row.fields[i]) != row.lens[i])
                fuzz_fail("row %zu field %zu: length %zu", row.row, i, row.lens[i]);
            *sum = *sum * 31 + row.lens[i];
        }
        (*rows)++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delimiters[] = ",;\t|";
    struct recipients_options opt;
    struct recipients *r = NULL;
    struct blast_error err;
    char path[64];
    size_t rows, rows2, i;
    unsigned long sum, sum2;
    int fd, rc, rc2;

    if (size < 1)
        return 0;
    memset(&opt, 0, sizeof opt);
    opt.delimiter = delimiters[data[0] & 3];
    if (data[0] & 4) {
        opt.max_record_bytes = 256;
        opt.max_field_bytes = 64;
    }
    fd = fuzz_memfile(data + 1, size - 1, path, sizeof path);
    if (fd < 0)
        return 0;
    blast_error_clear(&err);
    rc = recipients_open(path, &opt, &r, &err);
    if (rc < 0) {
        if (r != NULL || err.code != rc)
            fuzz_fail("open failed (%d) with a reader or another code", rc);
        close(fd);
        return 0;
    }
    for (i = 0; i < recipients_ncolumns(r); i++) {
        const char *name = recipients_column_name(r, i);
        if (name == NULL || recipients_column_index(r, name) != (int)i)
            fuzz_fail("column %zu is not found by its name", i);
    }
    rc = read_all(r, &rows, &sum);
    blast_error_clear(&err);
    if (recipients_rewind(r, &err) == 0) {
        rc2 = read_all(r, &rows2, &sum2);
        if (rc2 != rc || rows2 != rows || sum2 != sum)
            fuzz_fail("after rewind: %zu rows ending %d, before: %zu ending %d", rows2, rc2, rows,
                      rc);
    }
    recipients_close(r);
    close(fd);
    return 0;
}
