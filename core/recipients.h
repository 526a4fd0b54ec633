/*
 * recipients - the recipient list: a CSV file read one row at a time.
 *
 * Owns: streaming the file through libcsv (so memory stays flat whatever the list
 * size), the header row and its column names, the delimiter, quoted fields with
 * embedded delimiters, quotes and line breaks, a UTF-8 byte order mark, CRLF or LF
 * line ends, and refusing what is not UTF-8 text: invalid UTF-8, NUL bytes, a
 * UTF-16 file. Every problem names the file, the physical line, and the data row.
 * Does not own: what the columns mean (addresses, dedupe, suppression happen in the
 * caller), nor how a row becomes a message.
 *
 * Rows are numbered from 1 over data rows (the header is row 0), as `blast preview
 * --row N` and the report count them.
 */
#ifndef BLAST_RECIPIENTS_H
#define BLAST_RECIPIENTS_H

#include "error.h"

#include <stddef.h>

struct recipients;

struct recipients_options {
    char delimiter;          /* ',' when 0 */
    size_t max_record_bytes; /* a row larger than this is an error; default 1 MiB when 0 */
    size_t max_field_bytes;  /* a field larger than this is an error; default 64 KiB when 0 */
};

/*
 * One data row, valid until the next recipients_next() or recipients_close().
 * fields[i] is NUL-terminated and lens[i] its length; i follows the header.
 */
struct recipients_row {
    size_t row;  /* 1-based data row */
    size_t line; /* 1-based physical line where the row starts */
    size_t nfields;
    const char *const *fields;
    const size_t *lens;
};

/*
 * Open path and read its header row. On success *out is a reader the caller
 * closes with recipients_close(). Fails with BLAST_EIO (cannot read) or
 * BLAST_ESYNTAX (empty file, not UTF-8, malformed or duplicate header).
 */
int recipients_open(const char *path, const struct recipients_options *opt, struct recipients **out,
                    struct blast_error *err);

/*
 * Read the next data row into *row. Returns 1 with a row, 0 at the end of the
 * list, or a negative code with err naming the place: BLAST_ESYNTAX for broken
 * quoting, a wrong number of fields, invalid UTF-8 or a NUL byte; BLAST_EIO for a
 * read error. After an error the reader is spent: further calls return the error.
 */
int recipients_next(struct recipients *r, struct recipients_row *row, struct blast_error *err);

/*
 * Go back to the first data row (for a second pass over the same file). Errors:
 * BLAST_EIO when the file cannot be re-read, BLAST_ESYNTAX when its header changed.
 */
int recipients_rewind(struct recipients *r, struct blast_error *err);

size_t recipients_ncolumns(const struct recipients *r);
const char *recipients_column_name(const struct recipients *r, size_t i);

/* Index of the column named name, or -1. Header names match exactly. */
int recipients_column_index(const struct recipients *r, const char *name);

const char *recipients_path(const struct recipients *r);

/*
 * How far the reading is: bytes of the file read so far (whole chunks ahead of the
 * row handed out: an estimate of the place) and the file's size (0 when it is not
 * a regular file). For sizing what grows with the list before it has to grow.
 */
void recipients_progress(const struct recipients *r, unsigned long long *read,
                         unsigned long long *size);

void recipients_close(struct recipients *r);

#endif
