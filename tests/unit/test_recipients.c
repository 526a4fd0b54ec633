/*
 * test_recipients - the streaming CSV reader: header and rows, quoting, byte
 * order marks, line ends, delimiters, refusal of what is not UTF-8 text, the
 * physical line of every row and of every error, rewinding, and a large list.
 */
#include "../../core/recipients.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <sys/stat.h>
#include <ftw.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CSV "../fixtures/csv/"

static struct recipients *open_ok(const char *path, char delimiter)
{
    struct recipients_options opt = {delimiter, 0, 0};
    struct recipients *r = NULL;
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = recipients_open(path, &opt, &r, &err);
    cr_assert_eq(rc, 0, "%s", blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(r);
    return r;
}

static void next_ok(struct recipients *r, struct recipients_row *row)
{
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = recipients_next(r, row, &err);
    cr_assert_eq(rc, 1, "rc %d: %s", rc, blast_error_format(&err, msg, sizeof msg));
}

static void next_end(struct recipients *r)
{
    struct recipients_row row;
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = recipients_next(r, &row, &err);
    cr_assert_eq(rc, 0, "expected the end of the list, rc %d: %s", rc, err.text);
}

static void assert_field(const struct recipients_row *row, size_t i, const char *want)
{
    cr_assert_lt(i, row->nfields);
    cr_assert_str_eq(row->fields[i], want, "row %zu field %zu", row->row, i);
    cr_assert_eq(row->lens[i], strlen(want), "row %zu field %zu length", row->row, i);
}

/* Expect recipients_open to fail with code; returns the error for more checks. */
static struct blast_error open_fails(const char *path, int code)
{
    struct recipients *r = (struct recipients *)0x1;
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = recipients_open(path, NULL, &r, &err);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", path, rc, err.text);
    cr_assert_null(r);
    cr_assert_eq(err.code, code);
    cr_assert_str_eq(err.source, path, "the error names the file");
    cr_assert_str_not_empty(err.text);
    return err;
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/*
 * Open path and read until the first error. Returns the error's code (or 0/1 when
 * none came), with the error in *err, the rows read before it in *good and the
 * code of one more call in *again. The reader is closed before returning, so the
 * caller's assertions never leave it open.
 */
static int first_error(const char *path, size_t *good, struct blast_error *err, int *again)
{
    struct recipients_options opt = {0, 0, 0};
    struct recipients *r = NULL;
    struct recipients_row row;
    struct blast_error ignored;
    int rc;

    *good = 0;
    *again = 0;
    blast_error_clear(err);
    rc = recipients_open(path, &opt, &r, err);
    if (rc < 0)
        return rc;
    while ((rc = recipients_next(r, &row, err)) == 1)
        (*good)++;
    blast_error_clear(&ignored);
    *again = recipients_next(r, &row, &ignored);
    recipients_close(r);
    return rc;
}

Test(recipients, header_and_rows)
{
    struct recipients *r = open_ok(CSV "basic.csv", 0);
    struct recipients_row row;

    cr_assert_str_eq(recipients_path(r), CSV "basic.csv");
    cr_assert_eq(recipients_ncolumns(r), 3);
    cr_assert_str_eq(recipients_column_name(r, 0), "email");
    cr_assert_str_eq(recipients_column_name(r, 1), "first_name");
    cr_assert_str_eq(recipients_column_name(r, 2), "city");
    cr_assert_null(recipients_column_name(r, 3));
    cr_assert_eq(recipients_column_index(r, "city"), 2);
    cr_assert_eq(recipients_column_index(r, "City"), -1, "header names match exactly");
    cr_assert_eq(recipients_column_index(r, "missing"), -1);

    next_ok(r, &row);
    cr_assert_eq(row.row, 1);
    cr_assert_eq(row.line, 2);
    cr_assert_eq(row.nfields, 3);
    assert_field(&row, 0, "ada@example.com");
    assert_field(&row, 1, "Ada");
    assert_field(&row, 2, "London");
    next_ok(r, &row);
    cr_assert_eq(row.row, 2);
    cr_assert_eq(row.line, 3);
    assert_field(&row, 0, "grace@example.org");
    next_ok(r, &row);
    cr_assert_eq(row.row, 3);
    cr_assert_eq(row.line, 4);
    assert_field(&row, 2, "Portland");
    next_end(r);
    next_end(r);
    recipients_close(r);
}

Test(recipients, quoted_fields_with_delimiters_quotes_and_newlines)
{
    struct recipients *r = open_ok(CSV "quoted.csv", 0);
    struct recipients_row row;

    next_ok(r, &row);
    cr_assert_eq(row.row, 1);
    cr_assert_eq(row.line, 2);
    assert_field(&row, 0, "a@example.com");
    assert_field(&row, 1, "Doe, Jane");
    assert_field(&row, 2, "she said \"hi\"");

    next_ok(r, &row);
    cr_assert_eq(row.row, 2);
    cr_assert_eq(row.line, 3, "a row starts on the line of its first byte");
    assert_field(&row, 1, "Bob");
    assert_field(&row, 2, "line one\nline two\nline three");

    next_ok(r, &row);
    cr_assert_eq(row.row, 3);
    cr_assert_eq(row.line, 6, "lines inside quotes are counted");
    assert_field(&row, 0, "c@example.com");
    assert_field(&row, 2, "plain");
    next_end(r);
    recipients_close(r);
}

Test(recipients, utf8_bom_is_stripped)
{
    struct recipients *r = open_ok(CSV "bom.csv", 0);
    struct recipients_row row;

    cr_assert_str_eq(recipients_column_name(r, 0), "email");
    cr_assert_eq(recipients_column_index(r, "email"), 0);
    next_ok(r, &row);
    cr_assert_eq(row.line, 2);
    assert_field(&row, 0, "ada@example.com");
    next_end(r);
    recipients_close(r);
}

Test(recipients, crlf_line_ends)
{
    struct recipients *r = open_ok(CSV "crlf.csv", 0);
    struct recipients_row row;

    cr_assert_str_eq(recipients_column_name(r, 1), "name", "no CR left in the header");
    next_ok(r, &row);
    cr_assert_eq(row.line, 2);
    assert_field(&row, 1, "Ada");
    next_ok(r, &row);
    cr_assert_eq(row.line, 3);
    assert_field(&row, 1, "Grace\r\nHopper");
    next_ok(r, &row);
    cr_assert_eq(row.row, 3);
    cr_assert_eq(row.line, 5);
    assert_field(&row, 0, "linus@example.net");
    assert_field(&row, 1, "Linus");
    next_end(r);
    recipients_close(r);
}

Test(recipients, lf_without_final_line_end, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "email,name\nada@example.com,Ada\ngrace@example.org,Grace";
    struct recipients *r;
    struct recipients_row row;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    r = open_ok(path, 0);
    next_ok(r, &row);
    next_ok(r, &row);
    cr_assert_eq(row.line, 3);
    assert_field(&row, 1, "Grace");
    next_end(r);
    recipients_close(r);
}

Test(recipients, semicolon_delimiter)
{
    struct recipients *r = open_ok(CSV "semicolon.csv", ';');
    struct recipients_row row;

    cr_assert_eq(recipients_ncolumns(r), 3);
    next_ok(r, &row);
    assert_field(&row, 1, "Lovelace, Ada");
    assert_field(&row, 2, "London");
    next_ok(r, &row);
    assert_field(&row, 1, "Hopper, Grace");
    next_end(r);
    recipients_close(r);
}

Test(recipients, tab_delimiter)
{
    struct recipients *r = open_ok(CSV "tab.tsv", '\t');
    struct recipients_row row;

    cr_assert_eq(recipients_ncolumns(r), 3);
    cr_assert_str_eq(recipients_column_name(r, 2), "city");
    next_ok(r, &row);
    assert_field(&row, 1, "Ada Lovelace");
    next_ok(r, &row);
    assert_field(&row, 1, "Grace Hopper");
    assert_field(&row, 2, "New York, NY");
    next_end(r);
    recipients_close(r);
}

Test(recipients, utf8_fields_are_kept)
{
    struct recipients *r = open_ok(CSV "utf8.csv", 0);
    struct recipients_row row;

    next_ok(r, &row);
    next_ok(r, &row);
    assert_field(&row, 0, "rené@example.fr");
    assert_field(&row, 1, "René");
    next_end(r);
    recipients_close(r);
}

Test(recipients, invalid_utf8_names_row_and_column)
{
    struct blast_error err;
    size_t good;
    int again, rc = first_error(CSV "invalid_utf8.csv", &good, &err, &again);

    cr_assert_eq(good, 1);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, CSV "invalid_utf8.csv");
    cr_assert_eq(err.line, 3);
    cr_assert(strstr(err.text, "row 2") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, "'name'") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, "UTF-8") != NULL, "%s", err.text);
    cr_assert_eq(again, BLAST_ESYNTAX, "the reader is spent: the same error again");
}

Test(recipients, invalid_utf8_in_header_is_refused, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "email,n\xe4me\nada@example.com,Ada\n";
    struct blast_error err;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    err = open_fails(path, BLAST_ESYNTAX);
    cr_assert_eq(err.line, 1);
    cr_assert(strstr(err.text, "UTF-8") != NULL, "%s", err.text);
}

Test(recipients, nul_byte_is_refused)
{
    struct blast_error err;
    size_t good;
    int again, rc = first_error(CSV "nul.csv", &good, &err, &again);

    cr_assert_eq(good, 1);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, CSV "nul.csv");
    cr_assert_eq(err.line, 3);
    cr_assert(strstr(err.text, "NUL") != NULL, "%s", err.text);
    cr_assert_eq(again, BLAST_ESYNTAX, "spent after an error");
    cr_assert(strstr(err.text, "row 2") != NULL, "every problem names the data row: %s", err.text);
}

Test(recipients, utf16_is_refused)
{
    struct blast_error err = open_fails(CSV "utf16.csv", BLAST_ESYNTAX);

    cr_assert_eq(err.line, 1);
    cr_assert(strstr(err.text, "UTF-16") != NULL, "%s", err.text);
}

Test(recipients, utf16_big_endian_is_refused, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "\xfe\xff\0e\0m\0a\0i\0l\0\n";

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    open_fails(path, BLAST_ESYNTAX);
}

Test(recipients, unterminated_quote_at_the_last_row)
{
    struct blast_error err;
    size_t good;
    int again, rc = first_error(CSV "unterminated.csv", &good, &err, &again);

    cr_assert_eq(good, 1);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, CSV "unterminated.csv");
    cr_assert_eq(err.line, 3, "the error points where the open row started");
    cr_assert(strstr(err.text, "quot") != NULL, "%s", err.text);
    cr_assert_eq(again, BLAST_ESYNTAX, "spent after an error");
    cr_assert(strstr(err.text, "row 2") != NULL, "every problem names the data row: %s", err.text);
}

Test(recipients, stray_quote_inside_a_field_is_refused, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "email,name\nada@example.com,Ada\ngrace@example.org,\"Grace\" H\n";
    struct blast_error err;
    size_t good;
    int again, rc;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    rc = first_error(path, &good, &err, &again);
    cr_assert_eq(good, 1);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_eq(err.line, 3);
    cr_assert(strstr(err.text, "row 2") != NULL, "every problem names the data row: %s", err.text);
}

Test(recipients, wrong_field_count)
{
    struct blast_error err;
    size_t good;
    int again, rc = first_error(CSV "wrong_fields.csv", &good, &err, &again);

    cr_assert_eq(good, 1);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, CSV "wrong_fields.csv");
    cr_assert_eq(err.line, 3);
    cr_assert(strstr(err.text, "row 2") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, "3 fields") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, "2 columns") != NULL, "%s", err.text);
    cr_assert_eq(again, BLAST_ESYNTAX, "spent after an error");
}

Test(recipients, duplicate_header_names)
{
    struct blast_error err = open_fails(CSV "dup_header.csv", BLAST_ESYNTAX);

    cr_assert_eq(err.line, 1);
    cr_assert(strstr(err.text, "'email'") != NULL, "%s", err.text);
}

Test(recipients, empty_header_name_is_refused, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "email,,city\na@example.com,x,y\n";

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    open_fails(path, BLAST_ESYNTAX);
}

Test(recipients, empty_file)
{
    struct blast_error err = open_fails(CSV "empty.csv", BLAST_ESYNTAX);

    cr_assert(strstr(err.text, "empty") != NULL, "%s", err.text);
}

Test(recipients, missing_file)
{
    open_fails(CSV "no-such-file.csv", BLAST_EIO);
}

Test(recipients, header_only)
{
    struct recipients *r = open_ok(CSV "header_only.csv", 0);

    cr_assert_eq(recipients_ncolumns(r), 3);
    next_end(r);
    recipients_close(r);
}

Test(recipients, blank_lines_are_skipped_and_counted, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] =
        "email,name\n\nada@example.com,Ada\n\r\n\ngrace@example.org,Grace\n\n";
    struct recipients *r;
    struct recipients_row row;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    r = open_ok(path, 0);
    next_ok(r, &row);
    cr_assert_eq(row.row, 1);
    cr_assert_eq(row.line, 3);
    next_ok(r, &row);
    cr_assert_eq(row.row, 2);
    cr_assert_eq(row.line, 6);
    next_end(r);
    recipients_close(r);
}

Test(recipients, oversized_row_is_refused, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    struct recipients_options opt = {0, 64, 0};
    struct recipients *r = NULL;
    struct recipients_row row;
    struct blast_error err;
    char text[256];

    snprintf(path, sizeof path, "%s/list.csv", dir);
    snprintf(text, sizeof text,
             "email,name\nada@example.com,Ada\ngrace@example.org,\"%0100d\"\nlinus@example.net,L\n",
             0);
    write_bytes(path, text, strlen(text));
    blast_error_clear(&err);
    cr_assert_eq(recipients_open(path, &opt, &r, &err), 0, "%s", err.text);
    next_ok(r, &row);
    blast_error_clear(&err);
    cr_assert_eq(recipients_next(r, &row, &err), BLAST_ESYNTAX);
    cr_assert_eq(err.line, 3);
    recipients_close(r);
}

Test(recipients, rewind_gives_the_same_rows_again)
{
    struct recipients *r = open_ok(CSV "quoted.csv", 0);
    struct recipients_row row;
    struct blast_error err;
    char first[3][3][64];
    size_t lines[3], i, k;

    for (i = 0; i < 3; i++) {
        next_ok(r, &row);
        lines[i] = row.line;
        for (k = 0; k < 3; k++)
            snprintf(first[i][k], sizeof first[i][k], "%s", row.fields[k]);
    }
    next_end(r);

    blast_error_clear(&err);
    cr_assert_eq(recipients_rewind(r, &err), 0, "%s", err.text);
    cr_assert_eq(recipients_ncolumns(r), 3);
    cr_assert_str_eq(recipients_column_name(r, 2), "note");
    for (i = 0; i < 3; i++) {
        next_ok(r, &row);
        cr_assert_eq(row.row, i + 1, "rows are numbered from 1 again");
        cr_assert_eq(row.line, lines[i]);
        for (k = 0; k < 3; k++)
            cr_assert_str_eq(row.fields[k], first[i][k]);
    }
    next_end(r);
    recipients_close(r);
}

Test(recipients, rewind_in_the_middle_and_after_a_bom)
{
    struct recipients *r = open_ok(CSV "bom.csv", 0);
    struct recipients_row row;
    struct blast_error err;

    next_ok(r, &row);
    blast_error_clear(&err);
    cr_assert_eq(recipients_rewind(r, &err), 0, "%s", err.text);
    cr_assert_str_eq(recipients_column_name(r, 0), "email");
    next_ok(r, &row);
    cr_assert_eq(row.row, 1);
    cr_assert_eq(row.line, 2);
    assert_field(&row, 0, "ada@example.com");
    next_end(r);
    recipients_close(r);
}

Test(recipients, rewind_notices_a_changed_header, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char before[] = "email,name\nada@example.com,Ada\n";
    static const char after[] = "email,city\nada@example.com,London\n";
    struct recipients *r;
    struct recipients_row row;
    struct blast_error err;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, before, sizeof before - 1);
    r = open_ok(path, 0);
    next_ok(r, &row);
    write_bytes(path, after, sizeof after - 1);
    blast_error_clear(&err);
    cr_assert_eq(recipients_rewind(r, &err), BLAST_ESYNTAX);
    recipients_close(r);
}

Test(recipients, large_list_streams, .timeout = 60, .fini = scratch_remove)
{
    char path[256], want[64];
    const char *dir = scratch_make();
    const size_t n = 100000;
    struct recipients *r;
    struct recipients_row row;
    struct blast_error err;
    size_t i;
    FILE *f;
    int rc;

    snprintf(path, sizeof path, "%s/large.csv", dir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("email,first_name,note\n", f);
    for (i = 1; i <= n; i++) {
        if (i % 1000 == 0)
            fprintf(f, "user%zu@example.com,User %zu,\"multi\nline, %zu\"\n", i, i, i);
        else
            fprintf(f, "user%zu@example.com,User %zu,note %zu\n", i, i, i);
    }
    cr_assert_eq(fclose(f), 0);

    r = open_ok(path, 0);
    blast_error_clear(&err);
    size_t line = 2;
    for (i = 1; (rc = recipients_next(r, &row, &err)) == 1; i++) {
        if (row.row != i || row.line != line || row.nfields != 3)
            cr_assert_fail("row %zu: got row %zu at line %zu with %zu fields (line %zu expected)",
                           i, row.row, row.line, row.nfields, line);
        snprintf(want, sizeof want, "user%zu@example.com", i);
        if (strcmp(row.fields[0], want) != 0)
            cr_assert_fail("row %zu: email '%s'", i, row.fields[0]);
        line += i % 1000 == 0 ? 2 : 1;
    }
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(i - 1, n);
    recipients_close(r);
}

Test(recipients, close_accepts_null)
{
    recipients_close(NULL);
}

Test(recipients, field_over_64k_names_row_and_column, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static char text[80000];
    struct blast_error err;
    size_t good, n;
    int again, rc;

    n = (size_t)snprintf(text, sizeof text,
                         "email,first_name\nada@example.com,Ada\nb@example.com,");
    memset(text + n, 'y', 70000);
    text[n + 70000] = '\n';
    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, n + 70001);
    rc = first_error(path, &good, &err, &again);
    cr_assert_eq(good, 1);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_eq(err.line, 3);
    cr_assert_str_eq(err.text, "row 2, column 'first_name': the field is 70000 bytes long, more "
                               "than the 65536 allowed");
    cr_assert_eq(again, BLAST_ESYNTAX, "spent after an error");
}

Test(recipients, max_field_bytes_is_an_option, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "email,name\nada@example.com,Ada\ngrace@example.org,Grace Hopper\n";
    struct recipients_options opt = {0, 0, 10};
    struct recipients *r = NULL;
    struct recipients_row row;
    struct blast_error err;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    blast_error_clear(&err);
    cr_assert_eq(recipients_open(path, &opt, &r, &err), 0, "%s", err.text);
    blast_error_clear(&err);
    cr_assert_eq(recipients_next(r, &row, &err), BLAST_ESYNTAX, "ada@example.com is 15 bytes");
    cr_assert_eq(err.line, 2);
    cr_assert(strstr(err.text, "row 1, column 'email'") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, "more than the 10 allowed") != NULL, "%s", err.text);
    recipients_close(r);
}

Test(recipients, problems_in_the_header_name_the_header_row, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char nul[] = "email,first\0name\nada@example.com,Ada\n";
    static const char open_quote[] = "email,\"first_name\nada@example.com,Ada\n";
    struct blast_error err;

    snprintf(path, sizeof path, "%s/nul.csv", dir);
    write_bytes(path, nul, sizeof nul - 1);
    err = open_fails(path, BLAST_ESYNTAX);
    cr_assert_eq(err.line, 1);
    cr_assert_eq(err.column, 12);
    cr_assert(strncmp(err.text, "the header row: NUL byte", 24) == 0, "%s", err.text);

    snprintf(path, sizeof path, "%s/quote.csv", dir);
    write_bytes(path, open_quote, sizeof open_quote - 1);
    err = open_fails(path, BLAST_ESYNTAX);
    cr_assert_eq(err.line, 1, "the error points where the open row started");
    cr_assert(strncmp(err.text, "the header row: unterminated quoted field", 41) == 0, "%s",
              err.text);
}

Test(recipients, row_errors_say_which_row, .fini = scratch_remove)
{
    char path[256];
    const char *dir = scratch_make();
    static const char text[] = "email,name\nada@example.com,Ada\n\ngrace@example.org,\"Grace\" H\n";
    struct blast_error err;
    size_t good;
    int again, rc;

    snprintf(path, sizeof path, "%s/list.csv", dir);
    write_bytes(path, text, sizeof text - 1);
    rc = first_error(path, &good, &err, &again);
    cr_assert_eq(rc, BLAST_ESYNTAX);
    cr_assert_eq(good, 1);
    cr_assert_eq(err.line, 4, "a blank line counts as a line, not as a row");
    cr_assert(strncmp(err.text, "row 2: malformed quoting", 24) == 0, "%s", err.text);
}
