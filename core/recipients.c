/*
 * recipients - stream a CSV recipient list with libcsv. See recipients.h.
 *
 * libcsv pushes fields and record ends to callbacks as it is fed bytes. We feed it
 * one physical line at a time (or less, for a line longer than the read buffer),
 * which tells us the line on which each record ends without giving up libcsv's
 * handling of quoted line breaks: a record starts on the first non-blank line after
 * the previous one ended. Completed records wait in a short FIFO (more than one
 * only in files with bare-CR line ends) and are handed out one at a time; their
 * memory is reused, so reading a million rows allocates about as much as reading
 * ten.
 */
#include "recipients.h"
#include "text.h"
#include "buf.h"

#include <csv.h>
#include <stdarg.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_CHUNK (64 * 1024)

struct record {
    struct buf data; /* fields back to back, each NUL-terminated */
    size_t *offs;
    size_t *lens;
    size_t n, cap;
    size_t line;
};

struct recipients {
    char *path;
    FILE *f;
    struct csv_parser csv;
    char delimiter;
    size_t max_record_bytes;
    size_t max_field_bytes;

    char *in; /* read buffer */
    size_t inlen, inpos;
    bool eof, finished;
    size_t line;          /* physical line being fed, 1-based */
    bool at_line_start;   /* the next byte fed starts a physical line */
    size_t pending_start; /* line where the record in progress started, 0 if none */
    size_t record_bytes;  /* bytes fed since the last record ended */

    struct record building;
    struct record *ready; /* FIFO of completed records */
    size_t nready, head, capready;
    struct record out; /* the record handed out by the last recipients_next() */
    const char **outfields;
    size_t capoutfields;

    char **columns;
    size_t ncolumns;
    size_t rows;
    int failed; /* sticky error code */
    struct blast_error saved;
    bool oom;
    bool csv_ready; /* csv_init succeeded: csv_free is due */
};

static void record_free(struct record *rec)
{
    buf_free(&rec->data);
    free(rec->offs);
    free(rec->lens);
    memset(rec, 0, sizeof *rec);
}

static void record_clear(struct record *rec)
{
    buf_reset(&rec->data);
    rec->n = 0;
    rec->line = 0;
}

static void swap_records(struct record *a, struct record *b)
{
    struct record t = *a;
    *a = *b;
    *b = t;
}

/* libcsv field callback: copy the field into the record being built. */
static void on_field(void *field, size_t len, void *arg)
{
    struct recipients *r = arg;
    struct record *rec = &r->building;

    if (r->oom)
        return;
    if (rec->n == rec->cap) {
        size_t cap = rec->cap != 0 ? rec->cap * 2 : 16;
        size_t *o = realloc(rec->offs, cap * sizeof *o);
        size_t *l = o != NULL ? realloc(rec->lens, cap * sizeof *l) : NULL;
        if (o != NULL)
            rec->offs = o;
        if (l == NULL) {
            r->oom = true;
            return;
        }
        rec->lens = l;
        rec->cap = cap;
    }
    rec->offs[rec->n] = rec->data.len;
    rec->lens[rec->n] = len;
    if (buf_append(&rec->data, field != NULL ? field : "", len) < 0 ||
        buf_putc(&rec->data, '\0') < 0) {
        r->oom = true;
        return;
    }
    rec->n++;
}

/* libcsv record callback: move the finished record to the FIFO. */
static void on_record(int terminator, void *arg)
{
    struct recipients *r = arg;

    (void)terminator;
    if (r->oom)
        return;
    if (r->nready == r->capready) {
        size_t cap = r->capready != 0 ? r->capready * 2 : 4;
        struct record *q = realloc(r->ready, cap * sizeof *q);
        if (q == NULL) {
            r->oom = true;
            return;
        }
        memset(q + r->capready, 0, (cap - r->capready) * sizeof *q);
        r->ready = q;
        r->capready = cap;
    }
    r->building.line = r->pending_start != 0 ? r->pending_start : r->line;
    swap_records(&r->building, &r->ready[r->nready++]);
    record_clear(&r->building);
    r->pending_start = 0;
    r->record_bytes = 0;
}

/* Only the space character is trimmed around unquoted fields: a tab may be the delimiter. */
static int is_space(unsigned char c)
{
    return c == CSV_SPACE;
}

static int fail(struct recipients *r, int code, size_t line, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct recipients *r, int code, size_t line, size_t column, const char *fmt, ...)
{
    char text[BLAST_ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    blast_error_clear(&r->saved);
    blast_error_set(&r->saved, code, r->path, (int)line, (int)column, "%s", text);
    r->failed = code;
    return code;
}

/* "row N" (or "the header row") for the record being parsed. */
static const char *row_in_progress(const struct recipients *r, char *buf, size_t size)
{
    if (r->columns == NULL)
        return "the header row";
    snprintf(buf, size, "row %zu", r->rows + (r->nready - r->head) + 1);
    return buf;
}

/* 1-based character column of byte offset off in a line that starts at line_start. */
static size_t char_column(const char *line_start, size_t off)
{
    size_t col = 1, i;

    for (i = 0; i < off; i++)
        if (((unsigned char)line_start[i] & 0xC0) != 0x80)
            col++;
    return col;
}

static int refill(struct recipients *r)
{
    size_t n;

    if (r->inpos < r->inlen || r->eof)
        return 0;
    n = fread(r->in, 1, READ_CHUNK, r->f);
    if (n == 0) {
        if (ferror(r->f))
            return fail(r, BLAST_EIO, 0, 0, "read error: %s", strerror(errno));
        r->eof = true;
    }
    r->inlen = n;
    r->inpos = 0;
    return 0;
}

/*
 * Feed libcsv up to and including the next line feed (or what is buffered). Stops
 * as soon as a record is ready. Returns 0, or a negative code on error.
 */
static int feed(struct recipients *r)
{
    char what[48];

    while (r->nready == r->head) {
        const char *start, *nl, *nul;
        size_t len, used;
        int rc;

        if ((rc = refill(r)) < 0)
            return rc;
        if (r->inpos == r->inlen) {
            if (r->finished)
                return 0;
            r->finished = true;
            if (csv_fini(&r->csv, on_field, on_record, r) != 0)
                return fail(r, BLAST_ESYNTAX, r->pending_start != 0 ? r->pending_start : r->line, 0,
                            "%s: unterminated quoted field (a '\"' opened in it is never closed)",
                            row_in_progress(r, what, sizeof what));
            if (r->oom)
                return fail(r, BLAST_ENOMEM, 0, 0, "out of memory");
            return 0;
        }
        start = r->in + r->inpos;
        nl = memchr(start, '\n', r->inlen - r->inpos);
        len = nl != NULL ? (size_t)(nl - start) + 1 : r->inlen - r->inpos;
        nul = memchr(start, '\0', len);
        if (nul != NULL)
            return fail(r, BLAST_ESYNTAX, r->line,
                        r->at_line_start ? char_column(start, (size_t)(nul - start)) : 0,
                        "%s: NUL byte in the recipient list (is it UTF-16 or a binary file?)",
                        row_in_progress(r, what, sizeof what));
        if (r->at_line_start && r->pending_start == 0 &&
            !(len == 1 || (len == 2 && start[0] == '\r')))
            r->pending_start = r->line;
        r->record_bytes += len;
        if (r->record_bytes > r->max_record_bytes)
            return fail(r, BLAST_ESYNTAX, r->pending_start != 0 ? r->pending_start : r->line, 0,
                        "%s is larger than %zu bytes (an unclosed quote?)",
                        row_in_progress(r, what, sizeof what), r->max_record_bytes);
        used = csv_parse(&r->csv, start, len, on_field, on_record, r);
        if (r->oom)
            return fail(r, BLAST_ENOMEM, 0, 0, "out of memory");
        if (used < len)
            return fail(r, BLAST_ESYNTAX, r->line, r->at_line_start ? char_column(start, used) : 0,
                        "%s: malformed quoting: a '\"' inside a field must be doubled and the "
                        "field quoted",
                        row_in_progress(r, what, sizeof what));
        r->inpos += len;
        if (nl != NULL) {
            r->line++;
            r->at_line_start = true;
        } else {
            r->at_line_start = false;
        }
    }
    return 0;
}

/* Take the next completed record into r->out; 1 if there was one, 0 at the end. */
static int next_record(struct recipients *r)
{
    int rc;

    if ((rc = feed(r)) < 0)
        return rc;
    if (r->head == r->nready)
        return 0;
    record_clear(&r->out);
    swap_records(&r->out, &r->ready[r->head++]);
    if (r->head == r->nready)
        r->head = r->nready = 0;
    return 1;
}

/* Every field of a record: within the size limit, and UTF-8. */
static int check_fields(struct recipients *r, const struct record *rec, const char *what)
{
    size_t i;

    for (i = 0; i < rec->n; i++) {
        const char *f = rec->data.data + rec->offs[i];
        if (rec->lens[i] > r->max_field_bytes) {
            if (r->columns != NULL && i < r->ncolumns)
                return fail(r, BLAST_ESYNTAX, rec->line, 0,
                            "%s, column '%s': the field is %zu bytes long, more than the %zu "
                            "allowed",
                            what, r->columns[i], rec->lens[i], r->max_field_bytes);
            return fail(r, BLAST_ESYNTAX, rec->line, 0,
                        "%s, field %zu: the field is %zu bytes long, more than the %zu allowed",
                        what, i + 1, rec->lens[i], r->max_field_bytes);
        }
        if (!text_utf8_valid(f, rec->lens[i])) {
            if (r->columns != NULL && i < r->ncolumns)
                return fail(r, BLAST_ESYNTAX, rec->line, 0,
                            "%s, column '%s': invalid UTF-8 (save the file as UTF-8)", what,
                            r->columns[i]);
            return fail(r, BLAST_ESYNTAX, rec->line, 0,
                        "%s, field %zu: invalid UTF-8 (save the file as UTF-8)", what, i + 1);
        }
    }
    return 0;
}

static int read_header(struct recipients *r)
{
    size_t i, j;
    int rc;
    const unsigned char *p;

    if ((rc = refill(r)) < 0)
        return rc;
    p = (const unsigned char *)r->in;
    if (r->inlen >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF)))
        return fail(r, BLAST_ESYNTAX, 1, 1,
                    "the recipient list is UTF-16; save it as UTF-8 (CSV UTF-8)");
    if (r->inlen >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        r->inpos = 3; /* UTF-8 byte order mark, as spreadsheets write it */
    if ((rc = next_record(r)) < 0)
        return rc;
    if (rc == 0)
        return fail(r, BLAST_ESYNTAX, 1, 1, "the recipient list is empty: it needs a header row");
    if ((rc = check_fields(r, &r->out, "header row")) < 0)
        return rc;
    r->columns = calloc(r->out.n, sizeof *r->columns);
    if (r->columns == NULL)
        return fail(r, BLAST_ENOMEM, 0, 0, "out of memory");
    for (i = 0; i < r->out.n; i++) {
        const char *name = r->out.data.data + r->out.offs[i];
        if (r->out.lens[i] == 0)
            return fail(r, BLAST_ESYNTAX, r->out.line, 0,
                        "column %zu of the header row has no name", i + 1);
        for (j = 0; j < i; j++)
            if (strcmp(r->columns[j], name) == 0)
                return fail(r, BLAST_ESYNTAX, r->out.line, 0,
                            "the header names column '%s' twice (columns %zu and %zu)", name, j + 1,
                            i + 1);
        r->columns[i] = strdup(name);
        if (r->columns[i] == NULL)
            return fail(r, BLAST_ENOMEM, 0, 0, "out of memory");
        r->ncolumns = i + 1;
    }
    return 0;
}

static int start_parser(struct recipients *r)
{
    if (r->csv_ready)
        csv_free(&r->csv);
    r->csv_ready = false;
    if (csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return BLAST_ENOMEM;
    r->csv_ready = true;
    csv_set_delim(&r->csv, (unsigned char)r->delimiter);
    csv_set_space_func(&r->csv, r->delimiter == ' ' ? NULL : is_space);
    return 0;
}

int recipients_rewind(struct recipients *r, struct blast_error *err)
{
    char **old = r->columns;
    size_t nold = r->ncolumns, i;
    int rc;

    if (fseek(r->f, 0, SEEK_SET) != 0)
        return blast_error_set(err, BLAST_EIO, r->path, 0, 0, "cannot re-read: %s",
                               strerror(errno));
    clearerr(r->f);
    if ((rc = start_parser(r)) < 0)
        return blast_error_set(err, rc, r->path, 0, 0, "out of memory");
    record_clear(&r->building);
    r->head = r->nready = 0;
    r->inlen = r->inpos = 0;
    r->eof = r->finished = false;
    r->line = 1;
    r->at_line_start = true;
    r->pending_start = 0;
    r->record_bytes = 0;
    r->rows = 0;
    r->failed = 0;
    r->columns = NULL;
    r->ncolumns = 0;
    rc = read_header(r);
    if (rc == 0 && r->ncolumns != nold)
        rc = fail(r, BLAST_ESYNTAX, 1, 0, "the header row changed while blast was reading");
    for (i = 0; rc == 0 && i < nold; i++)
        if (strcmp(old[i], r->columns[i]) != 0)
            rc = fail(r, BLAST_ESYNTAX, 1, 0, "the header row changed while blast was reading");
    for (i = 0; i < nold; i++)
        free(old[i]);
    free(old);
    if (rc < 0)
        return blast_error_set(err, rc, r->saved.source, r->saved.line, r->saved.column, "%s",
                               r->saved.text);
    return 0;
}

int recipients_open(const char *path, const struct recipients_options *opt, struct recipients **out,
                    struct blast_error *err)
{
    struct recipients *r;
    int rc;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    r->delimiter = opt != NULL && opt->delimiter != 0 ? opt->delimiter : ',';
    r->max_record_bytes =
        opt != NULL && opt->max_record_bytes != 0 ? opt->max_record_bytes : 1024 * 1024;
    r->max_field_bytes =
        opt != NULL && opt->max_field_bytes != 0 ? opt->max_field_bytes : 64 * 1024;
    r->line = 1;
    r->at_line_start = true;
    r->path = strdup(path);
    r->in = malloc(READ_CHUNK);
    if (r->path == NULL || r->in == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = start_parser(r)) < 0) {
        rc = blast_error_set(err, rc, path, 0, 0, "out of memory");
        goto out;
    }
    r->f = fopen(path, "rb");
    if (r->f == NULL) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open recipient list: %s",
                             strerror(errno));
        goto out;
    }
    if ((rc = read_header(r)) < 0) {
        blast_error_set(err, rc, r->saved.source, r->saved.line, r->saved.column, "%s",
                        r->saved.text);
        goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    recipients_close(r);
    return rc;
}

int recipients_next(struct recipients *r, struct recipients_row *row, struct blast_error *err)
{
    char what[64];
    int rc;

    if (r->failed == 0) {
        rc = next_record(r);
        if (rc == 1) {
            snprintf(what, sizeof what, "row %zu", r->rows + 1);
            if (r->out.n != r->ncolumns)
                fail(r, BLAST_ESYNTAX, r->out.line, 0,
                     "row %zu has %zu field%s but the header has %zu column%s", r->rows + 1,
                     r->out.n, r->out.n == 1 ? "" : "s", r->ncolumns, r->ncolumns == 1 ? "" : "s");
            else
                check_fields(r, &r->out, what);
        }
        if (r->failed == 0) {
            if (rc <= 0)
                return rc;
            if (r->capoutfields < r->out.n) {
                const char **f = realloc(r->outfields, r->out.n * sizeof *f);
                if (f == NULL)
                    return blast_error_set(err, BLAST_ENOMEM, r->path, 0, 0, "out of memory");
                r->outfields = f;
                r->capoutfields = r->out.n;
            }
            for (size_t i = 0; i < r->out.n; i++)
                r->outfields[i] = r->out.data.data + r->out.offs[i];
            row->row = ++r->rows;
            row->line = r->out.line;
            row->nfields = r->out.n;
            row->fields = r->outfields;
            row->lens = r->out.lens;
            return 1;
        }
    }
    return blast_error_set(err, r->saved.code, r->saved.source, r->saved.line, r->saved.column,
                           "%s", r->saved.text);
}

size_t recipients_ncolumns(const struct recipients *r)
{
    return r->ncolumns;
}

const char *recipients_column_name(const struct recipients *r, size_t i)
{
    return i < r->ncolumns ? r->columns[i] : NULL;
}

int recipients_column_index(const struct recipients *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->ncolumns; i++)
        if (strcmp(r->columns[i], name) == 0)
            return (int)i;
    return -1;
}

void recipients_progress(const struct recipients *r, unsigned long long *read,
                         unsigned long long *size)
{
    struct stat st;
    long at = ftell(r->f);

    *read = at > 0 ? (unsigned long long)at : 0;
    *size =
        fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode) ? (unsigned long long)st.st_size : 0;
}

const char *recipients_path(const struct recipients *r)
{
    return r->path;
}

void recipients_close(struct recipients *r)
{
    size_t i;

    if (r == NULL)
        return;
    if (r->f != NULL)
        fclose(r->f);
    if (r->csv_ready)
        csv_free(&r->csv);
    record_free(&r->building);
    record_free(&r->out);
    for (i = 0; i < r->capready; i++)
        record_free(&r->ready[i]);
    free(r->ready);
    free(r->outfields);
    for (i = 0; i < r->ncolumns; i++)
        free(r->columns[i]);
    free(r->columns);
    free(r->in);
    free(r->path);
    free(r);
}
