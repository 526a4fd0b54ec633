/*
 * reportread - stream a blast report back. See reportread.h.
 *
 * The reader keeps one input chunk and, while a value is being captured, the text
 * of that one value: the tokenizer walks the top-level object, knowing only
 * strings (with their escapes), brackets and scalars, and a parser reads each
 * captured value exactly: jansson for the json_t forms, a tape (jsontape) for the
 * outcome forms. So the writer's layout (one recipient a line today) is never
 * relied on, and a damaged file is reported where the damage is: a bracket that
 * closes the wrong thing, a missing comma, an end of file inside the recipients,
 * or the parser's own complaint mapped back from its place in the value to the
 * file's line and column (the tape places and words its faults as jansson does).
 *
 * Speed: a report of a million recipients is 600 MB, so the tokenizer runs over
 * the chunk in tight loops (runs of plain string bytes eight at a time), a value
 * that lies in one chunk is parsed where it is rather than copied out, and the
 * line and column are not counted byte by byte as the walk goes: the place of one
 * byte of the chunk is kept and brought forward (newlines found with memchr())
 * only when a place is wanted, at each recipient and at an error.
 */
#include "reportread.h"
#include "outcome.h"
#include "buf.h"
#include "jsontape.h"
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK 65536

/* peek() and next() return a byte, or one of these. */
#define END  (-1) /* the end of the input */
#define FAIL (-2) /* a read error or a capture problem: rd->failure says which */

struct place {
    int line, column;
};

/* Where the walk of the report object stands. */
enum top {
    TOP_START,        /* before its '{' */
    TOP_MEMBER,       /* before a key */
    TOP_AFTER_MEMBER, /* before ',' or '}' */
    TOP_END,          /* after its '}' */
};

#define RECIPIENTS "the \"recipients\" array"

struct reportread {
    FILE *f;
    bool own;         /* opened here: closed by reportread_close() */
    size_t chunk;     /* bytes read at a time */
    const char *name; /* the caller's, borrowed until reportread_close() */
    struct blast_error *err;
    int failure; /* the code behind FAIL */
    unsigned char *in;
    size_t pos, len;
    bool eof;
    /* a gzip'ed report: the compressed bytes read into zin, inflated into in */
    bool sniffed; /* the first bytes have been looked at */
    z_stream *z;  /* NULL: the input is the text itself */
    unsigned char *zin;
    bool raw_eof;    /* the compressed input has ended */
    bool member_end; /* a gzip member has ended; another may follow */
    /* where in[placed] is: here() brings it forward to pos when a place is wanted */
    struct place base;
    size_t placed;
    /* the value being captured: span holds what left the chunk, in[mark..pos) the rest */
    bool capturing;
    size_t mark;
    size_t limit;
    struct place cap_at;
    char cap_what[64];
    struct buf span;
    const char *cap_text; /* the captured value, once whole: in the chunk, or span's */
    size_t cap_len;
    struct jsontape tape; /* the outcome forms' parser, reused from recipient to recipient */
    const char *const *summary_skip; /* keys of "summary" not read (reportread_skip_summary) */
    char stack[REPORTREAD_MAX_DEPTH];
    /* the walk */
    enum top top;
    unsigned seen; /* bits of the known keys met */
    struct place start;
    bool in_array; /* before an element of "recipients" */
    bool done;     /* the report and the file have ended */
    struct reportread_result out;
};

static int fail(struct reportread *rd, int code, struct place at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct reportread *rd, int code, struct place at, const char *fmt, ...)
{
    char text[BLAST_ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    rd->failure = code;
    return blast_error_set(rd->err, code, rd->name, at.line, at.column, "%s", text);
}

/* Move in[mark..upto) into span, minding the limit. */
static int keep(struct reportread *rd, size_t upto)
{
    size_t n = upto - rd->mark;

    if (rd->span.len + n > rd->limit)
        return fail(rd, BLAST_EINVAL, rd->cap_at, "%s is larger than %zu bytes", rd->cap_what,
                    rd->limit);
    if (buf_append(&rd->span, rd->in + rd->mark, n) < 0)
        return fail(rd, BLAST_ENOMEM, rd->cap_at, "out of memory");
    rd->mark = upto;
    return 0;
}

/* p moved over the n bytes at s: lines at '\n', columns at every byte that starts a character. */
static void place_advance(struct place *p, const unsigned char *s, size_t n)
{
    const unsigned char *end = s + n, *nl;

    while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        p->line++;
        p->column = 1;
        s = nl + 1;
    }
    for (; s < end; s++)
        p->column += (*s & 0xC0) != 0x80;
}

/* The place of the next byte, in[pos]. */
static struct place here(struct reportread *rd)
{
    place_advance(&rd->base, rd->in + rd->placed, rd->pos - rd->placed);
    rd->placed = rd->pos;
    return rd->base;
}

/* Raw bytes from the file into buf: 0 at its end, or FAIL on a read error. */
static int read_raw(struct reportread *rd, unsigned char *buf, size_t *n)
{
    *n = fread(buf, 1, rd->chunk, rd->f);
    if (*n == 0 && ferror(rd->f))
        return fail(rd, BLAST_EIO, (struct place){0, 0}, "read error: %s", strerror(errno));
    return 0;
}

/*
 * The first chunk looked at: gzip's magic bytes (1f 8b) start an inflater, which the
 * bytes already read are handed to, whatever the name (standard input has none).
 */
static int sniff(struct reportread *rd)
{
    size_t n;

    rd->sniffed = true;
    if (read_raw(rd, rd->in, &n) < 0)
        return FAIL;
    if (n < 2 || rd->in[0] != 0x1f || rd->in[1] != 0x8b) {
        rd->len = n;
        rd->raw_eof = n == 0;
        return 0;
    }
    rd->z = calloc(1, sizeof *rd->z);
    rd->zin = malloc(rd->chunk);
    if (rd->z == NULL || rd->zin == NULL) {
        free(rd->z);
        rd->z = NULL;
        return fail(rd, BLAST_ENOMEM, (struct place){0, 0}, "out of memory");
    }
    /* 15 + 16: a gzip wrapper, the largest window */
    if (inflateInit2(rd->z, 15 + 16) != Z_OK) {
        free(rd->z);
        rd->z = NULL;
        return fail(rd, BLAST_ENOMEM, (struct place){0, 0}, "out of memory");
    }
    memcpy(rd->zin, rd->in, n);
    rd->z->next_in = rd->zin;
    rd->z->avail_in = (uInt)n;
    rd->len = 0;
    return 1;
}

/*
 * Inflate into the chunk until it is full or the input ends. Members follow one
 * another (what `cat a.gz b.gz` makes), as gzip reads them. The end of the file
 * inside a member is a truncated file: said so before the text's own "ends early".
 */
static int inflate_chunk(struct reportread *rd)
{
    z_stream *z = rd->z;
    int zr;

    z->next_out = rd->in;
    z->avail_out = (uInt)rd->chunk;
    while (z->avail_out > 0) {
        if (z->avail_in == 0 && !rd->raw_eof) {
            size_t n;
            if (read_raw(rd, rd->zin, &n) < 0)
                return FAIL;
            rd->raw_eof = n == 0;
            z->next_in = rd->zin;
            z->avail_in = (uInt)n;
        }
        if (rd->member_end) {
            if (z->avail_in == 0)
                break;
            rd->member_end = false;
            inflateReset(z);
        }
        if (z->avail_in == 0) {
            if (z->avail_out < rd->chunk)
                break; /* the text so far first; the next call says the file is cut */
            return fail(rd, BLAST_ESYNTAX, (struct place){0, 0},
                        "the compressed report ends early (is it truncated?)");
        }
        zr = inflate(z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            rd->member_end = true;
        else if (zr == Z_MEM_ERROR)
            return fail(rd, BLAST_ENOMEM, (struct place){0, 0}, "out of memory");
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return fail(rd, BLAST_ESYNTAX, (struct place){0, 0}, "is not a valid gzip stream: %s",
                        z->msg != NULL ? z->msg : "corrupt data");
    }
    rd->len = rd->chunk - z->avail_out;
    return 0;
}

/* The next chunk of the report's text into in[0..len): len 0 at its end. */
static int fill(struct reportread *rd)
{
    if (!rd->sniffed) {
        int rc = sniff(rd);
        if (rc <= 0)
            return rc;
    }
    if (rd->z != NULL)
        return inflate_chunk(rd);
    if (rd->raw_eof) {
        rd->len = 0;
        return 0;
    }
    return read_raw(rd, rd->in, &rd->len);
}

static int peek(struct reportread *rd)
{
    if (rd->pos < rd->len)
        return rd->in[rd->pos];
    if (rd->eof)
        return END;
    if (rd->capturing && keep(rd, rd->len) < 0)
        return FAIL;
    here(rd); /* the chunk is about to go: its bytes counted first */
    rd->placed = 0;
    rd->mark = 0;
    rd->pos = 0;
    if (fill(rd) < 0)
        return FAIL;
    if (rd->len == 0) {
        rd->eof = true;
        return END;
    }
    return rd->in[0];
}

static int next(struct reportread *rd)
{
    int c = peek(rd);

    if (c < 0)
        return c;
    rd->pos++;
    return c;
}

static int skip_ws(struct reportread *rd)
{
    for (;;) {
        int c;
        while (rd->pos < rd->len) {
            c = rd->in[rd->pos];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                return c;
            rd->pos++;
        }
        if ((c = peek(rd)) < 0)
            return c;
    }
}

static void capture_begin(struct reportread *rd, size_t limit, const char *what)
{
    size_t n;

    buf_reset(&rd->span);
    rd->capturing = true;
    rd->mark = rd->pos;
    rd->limit = limit;
    rd->cap_at = here(rd);
    /* no snprintf(): this runs for every recipient */
    n = strnlen(what, sizeof rd->cap_what - 1);
    memcpy(rd->cap_what, what, n);
    rd->cap_what[n] = '\0';
}

/* The value captured whole: where it lay in one chunk, it is read there, not copied. */
static int capture_end(struct reportread *rd)
{
    int rc = 0;

    rd->capturing = false;
    if (rd->span.len == 0 && rd->pos - rd->mark <= rd->limit) {
        rd->cap_text = (const char *)rd->in + rd->mark;
        rd->cap_len = rd->pos - rd->mark;
        return 0;
    }
    rc = keep(rd, rd->pos);
    rd->cap_text = rd->span.data != NULL ? rd->span.data : "";
    rd->cap_len = rd->span.len;
    return rc < 0 ? rc : 0;
}

/* "'x'" for a visible character, else its byte value. */
static const char *shown(int c, char *out, size_t size)
{
    if (c == END)
        snprintf(out, size, "the end of the file");
    else if (c > 0x20 && c < 0x7f)
        snprintf(out, size, "'%c'", c);
    else
        snprintf(out, size, "byte 0x%02x", (unsigned)c);
    return out;
}

/* The file ended (or could not be read) inside what. */
static int ended(struct reportread *rd, int c, const char *what)
{
    if (c == FAIL)
        return rd->failure;
    return fail(rd, BLAST_ESYNTAX, here(rd), "the file ends inside %s (is the report truncated?)",
                what);
}

/* Not what was expected here ("expected ... , not 'x'"), or the end of the file inside what. */
static int unexpected(struct reportread *rd, int c, const char *inside, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int unexpected(struct reportread *rd, int c, const char *inside, const char *fmt, ...)
{
    char text[256], seen[32];
    va_list ap;

    if (c < 0)
        return ended(rd, c, inside);
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return fail(rd, BLAST_ESYNTAX, here(rd), "%s, not %s", text, shown(c, seen, sizeof seen));
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Whether any of the 8 bytes of x is a quote or a backslash. */
static bool quote_or_backslash(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');

    return (((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

/* A string, from its opening quote (the next character) to its closing one. */
static int scan_string(struct reportread *rd, const char *what)
{
    int c;

    rd->pos++;
    for (;;) {
        const unsigned char *p = rd->in + rd->pos, *end = rd->in + rd->len;
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (quote_or_backslash(x))
                break;
            p += 8;
        }
        while (p < end && *p != '"' && *p != '\\')
            p++;
        rd->pos = (size_t)(p - rd->in);
        if (p == end) {
            if ((c = peek(rd)) < 0)
                return ended(rd, c, what);
            continue;
        }
        rd->pos++;
        if (*p == '"')
            return 0;
        /* a backslash: the byte after it is escaped, whatever it is */
        if ((c = next(rd)) < 0)
            return ended(rd, c, what);
    }
}

/* The bytes the walk through a value stops at: strings and brackets. */
static const bool structural[256] = {
    ['"'] = true, ['{'] = true, ['}'] = true, ['['] = true, [']'] = true};

/*
 * One JSON value, whitespace before it skipped: its strings and brackets must
 * balance; what is inside is left to the parser (or, for skipped values, unchecked).
 */
static int scan_value(struct reportread *rd, const char *what)
{
    int c = skip_ws(rd), depth = 0, rc, n = 0;

    if (c < 0)
        return ended(rd, c, what);
    if (c == '"')
        return scan_string(rd, what);
    if (c == '{' || c == '[') {
        for (;;) {
            const unsigned char *p = rd->in + rd->pos, *end = rd->in + rd->len;
            while (p < end && !structural[*p])
                p++;
            rd->pos = (size_t)(p - rd->in);
            if (p == end) {
                if ((c = peek(rd)) < 0)
                    return ended(rd, c, what);
                continue;
            }
            c = *p;
            if (c == '"') {
                if ((rc = scan_string(rd, what)) < 0)
                    return rc;
                continue;
            }
            if (c == '{' || c == '[') {
                if (depth == REPORTREAD_MAX_DEPTH)
                    return fail(rd, BLAST_ESYNTAX, here(rd), "%s nests more than %d deep", what,
                                REPORTREAD_MAX_DEPTH);
                rd->stack[depth++] = (char)c;
            } else {
                char open = c == '}' ? '{' : '[';
                if (rd->stack[depth - 1] != open)
                    return fail(rd, BLAST_ESYNTAX, here(rd),
                                "'%c' where '%c' was to be closed, in %s", c,
                                rd->stack[depth - 1] == '{' ? '}' : ']', what);
                if (--depth == 0) {
                    rd->pos++;
                    return 0;
                }
            }
            rd->pos++;
        }
    }
    /* a number, true, false or null: up to the next delimiter */
    while ((c = peek(rd)) >= 0 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                   (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) {
        next(rd);
        n++;
    }
    if (c == FAIL)
        return rd->failure;
    if (n == 0)
        return unexpected(rd, c, what, "expected the start of %s", what);
    return 0;
}

/* The place of byte index i of the captured value. */
static struct place place_in_span(const struct reportread *rd, size_t i)
{
    struct place p = rd->cap_at;

    place_advance(&p, (const unsigned char *)rd->cap_text, i < rd->cap_len ? i : rd->cap_len);
    return p;
}

/* Scan one value (whitespace skipped already) and parse it with jansson into *out. */
static int load_value(struct reportread *rd, size_t limit, const char *what, json_t **out)
{
    json_error_t je;
    int rc;

    *out = NULL;
    capture_begin(rd, limit, what);
    rc = scan_value(rd, what);
    if (rc < 0) {
        rd->capturing = false;
        return rc;
    }
    if ((rc = capture_end(rd)) < 0)
        return rc;
    *out = json_loadb(rd->cap_text, rd->cap_len, JSON_DECODE_ANY, &je);
    if (*out == NULL) {
        /* jansson's position counts the bytes it read: the last one is the culprit */
        size_t at = je.position > 0 ? (size_t)je.position - 1 : 0;
        return fail(rd, BLAST_ESYNTAX, place_in_span(rd, at), "invalid JSON in %s: %s", what,
                    je.text);
    }
    return 0;
}

static int load_object(struct reportread *rd, size_t limit, const char *what, json_t **out)
{
    struct place at = here(rd);
    int rc = load_value(rd, limit, what, out);

    if (rc == 0 && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return fail(rd, BLAST_EINVAL, at, "%s is not a JSON object", what);
    }
    return rc;
}

/*
 * "summary", member by member, leaving out the values of the keys in
 * rd->summary_skip (their brackets and strings must still balance, as those of an
 * unknown top-level key must).
 */
static int read_summary_without(struct reportread *rd, json_t **out)
{
    static const char what[] = "\"summary\"";
    struct place at = here(rd);
    json_t *obj, *key = NULL, *v;
    size_t i;
    int c, rc;

    *out = NULL;
    if (skip_ws(rd) != '{')
        return load_object(rd, REPORTREAD_MAX_OBJECT, what, out); /* its error */
    next(rd);
    if ((obj = json_object()) == NULL)
        return fail(rd, BLAST_ENOMEM, at, "out of memory");
    if ((c = skip_ws(rd)) == '}') {
        next(rd);
        *out = obj;
        return 0;
    }
    for (;;) {
        bool skip = false;
        struct place kat = here(rd);
        if ((rc = load_value(rd, REPORTREAD_MAX_OBJECT, "a key of \"summary\"", &key)) < 0)
            goto fail;
        if (!json_is_string(key)) {
            rc = fail(rd, BLAST_ESYNTAX, kat, "expected a key in quotes in %s", what);
            goto fail;
        }
        for (i = 0; rd->summary_skip[i] != NULL; i++)
            if (strcmp(json_string_value(key), rd->summary_skip[i]) == 0)
                skip = true;
        if ((c = skip_ws(rd)) != ':') {
            rc = unexpected(rd, c, what, "expected ':' after a key");
            goto fail;
        }
        next(rd);
        if (skip)
            rc = scan_value(rd, what);
        else if ((rc = load_value(rd, REPORTREAD_MAX_OBJECT, what, &v)) == 0 &&
                 json_object_set_new(obj, json_string_value(key), v) < 0)
            rc = fail(rd, BLAST_ENOMEM, kat, "out of memory");
        if (rc < 0)
            goto fail;
        json_decref(key);
        key = NULL;
        if ((c = skip_ws(rd)) == ',') {
            next(rd);
            continue;
        }
        if (c == '}') {
            next(rd);
            break;
        }
        rc = c < 0 ? ended(rd, c, what) : unexpected(rd, c, what, "expected ',' or '}'");
        goto fail;
    }
    *out = obj;
    return 0;
fail:
    json_decref(key);
    json_decref(obj);
    return rc;
}

static int read_version(struct reportread *rd, struct reportread_result *out)
{
    struct place at = here(rd);
    json_t *v;
    int rc = load_value(rd, 64, "\"schema_version\"", &v);

    if (rc < 0)
        return rc;
    if (!json_is_integer(v)) {
        json_decref(v);
        return fail(rd, BLAST_EINVAL, at, "\"schema_version\" is not a whole number");
    }
    if (json_integer_value(v) != REPORT_SCHEMA_VERSION) {
        rc =
            fail(rd, BLAST_EINVAL, at,
                 "unsupported schema_version %" JSON_INTEGER_FORMAT ": this blast reads version %d",
                 json_integer_value(v), REPORT_SCHEMA_VERSION);
        json_decref(v);
        return rc;
    }
    out->schema_version = (int)json_integer_value(v);
    json_decref(v);
    return 0;
}

/*
 * The recipients array, from its '[': the reader stops before its first element
 * (in_array) or, when it is empty, after its ']'.
 */
static int open_recipients(struct reportread *rd)
{
    int c = skip_ws(rd);

    if (c != '[') {
        if (c < 0)
            return ended(rd, c, RECIPIENTS);
        return fail(rd, BLAST_EINVAL, here(rd),
                    "not a blast report: \"recipients\" is not an array");
    }
    next(rd);
    if ((c = skip_ws(rd)) < 0)
        return ended(rd, c, RECIPIENTS);
    if (c == ']')
        next(rd);
    else
        rd->in_array = true;
    return 0;
}

/* One member of the top-level object: its key and value ("recipients": its '[' only). */
static int read_member(struct reportread *rd)
{
    static const char *const known[] = {"schema_version", "campaign", "recipients", "summary"};
    struct place at = here(rd);
    json_t *key;
    char name[64];
    unsigned bit = 0;
    size_t i;
    int c, rc;

    if ((rc = load_value(rd, 4096, "a key of the report object", &key)) < 0)
        return rc;
    if (!json_is_string(key)) {
        json_decref(key);
        return fail(rd, BLAST_ESYNTAX, at, "expected a key in quotes in the report object");
    }
    snprintf(name, sizeof name, "%s", json_string_value(key));
    json_decref(key);
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i]) == 0)
            bit = 1u << i;
    if ((rd->seen & bit) != 0)
        return fail(rd, BLAST_EINVAL, at, "\"%s\" appears twice in the report", name);
    rd->seen |= bit;
    if ((c = skip_ws(rd)) != ':')
        return unexpected(rd, c, "the report object", "expected ':' after the key \"%s\"", name);
    next(rd);
    if ((c = skip_ws(rd)) < 0)
        return ended(rd, c, "the report object");
    switch (bit) {
    case 1:
        return read_version(rd, &rd->out);
    case 2:
        return load_object(rd, REPORTREAD_MAX_OBJECT, "\"campaign\"", &rd->out.campaign);
    case 4:
        if ((rd->seen & 1) == 0)
            return fail(rd, BLAST_EINVAL, at,
                        "not a blast report: \"recipients\" comes before \"schema_version\"");
        return open_recipients(rd);
    case 8:
        if (rd->summary_skip != NULL)
            return read_summary_without(rd, &rd->out.summary);
        return load_object(rd, REPORTREAD_MAX_OBJECT, "\"summary\"", &rd->out.summary);
    default: {
        /* a key of a later minor version: its value only has to balance */
        char what[96];
        snprintf(what, sizeof what, "the value of \"%s\"", name);
        return scan_value(rd, what);
    }
    }
}

/*
 * Walk the report object from where the reader is until it stands before a
 * recipient (in_array) or the object and the file have ended (done).
 */
static int walk(struct reportread *rd)
{
    const char *object = "the report object";
    int c, rc;

    while (!rd->in_array && !rd->done) {
        switch (rd->top) {
        case TOP_START:
            c = skip_ws(rd);
            rd->start = here(rd);
            if (c == END)
                return fail(rd, BLAST_ESYNTAX, rd->start, "the file is empty, not a blast report");
            if (c != '{')
                return unexpected(rd, c, object, "not a blast report: expected '{'");
            next(rd);
            if ((c = skip_ws(rd)) == '}') {
                next(rd);
                rd->top = TOP_END;
            } else {
                rd->top = TOP_MEMBER;
            }
            break;
        case TOP_MEMBER:
            if ((c = skip_ws(rd)) != '"')
                return unexpected(rd, c, object, "expected a key in quotes in %s", object);
            if ((rc = read_member(rd)) < 0)
                return rc;
            rd->top = TOP_AFTER_MEMBER;
            break;
        case TOP_AFTER_MEMBER:
            if ((c = skip_ws(rd)) != ',' && c != '}')
                return unexpected(rd, c, object, "expected ',' or '}' in %s", object);
            next(rd);
            rd->top = c == '}' ? TOP_END : TOP_MEMBER;
            break;
        case TOP_END:
            if ((c = skip_ws(rd)) != END)
                return c == FAIL ? rd->failure
                                 : fail(rd, BLAST_ESYNTAX, here(rd),
                                        "unexpected text after the end of the report object");
            if ((rd->seen & 1) == 0)
                return fail(rd, BLAST_EINVAL, rd->start,
                            "not a blast report: no \"schema_version\"");
            if ((rd->seen & 4) == 0)
                return fail(rd, BLAST_EINVAL, rd->start,
                            "not a blast report: no \"recipients\" array");
            rd->done = true;
            break;
        }
    }
    return 0;
}

/* The recipient the reader stands before: its number for messages, and its place. */
static void entry_start(struct reportread *rd, char *what, size_t size, struct reportread_place *at)
{
    static const char prefix[] = "recipient ";
    struct place p = here(rd);
    char digits[24];
    size_t n = sizeof digits, v = rd->out.recipients + 1;

    /* "recipient N", by hand: this runs for every recipient */
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    if (size >= sizeof prefix + sizeof digits - n) {
        memcpy(what, prefix, sizeof prefix - 1);
        memcpy(what + sizeof prefix - 1, digits + n, sizeof digits - n);
        what[sizeof prefix - 1 + sizeof digits - n] = '\0';
    }
    at->source = rd->name;
    at->line = p.line;
    at->column = p.column;
}

/* After a recipient: the ',' or the ']' that follows it. */
static int after_entry(struct reportread *rd, const char *what)
{
    int c;

    rd->out.recipients++;
    if ((c = skip_ws(rd)) < 0)
        return ended(rd, c, RECIPIENTS);
    if (c != ',' && c != ']')
        return unexpected(rd, c, RECIPIENTS, "expected ',' or ']' after %s", what);
    next(rd);
    if (c == ']')
        rd->in_array = false;
    else if ((c = skip_ws(rd)) < 0)
        return ended(rd, c, RECIPIENTS);
    return 0;
}

/* The element the reader stands before, and the ',' or ']' after it. */
static int read_entry(struct reportread *rd, json_t **entry, struct reportread_place *at)
{
    char what[64];
    int rc;

    entry_start(rd, what, sizeof what, at);
    if ((rc = load_object(rd, REPORTREAD_MAX_ENTRY, what, entry)) < 0)
        return rc;
    if ((rc = after_entry(rd, what)) < 0) {
        json_decref(*entry);
        *entry = NULL;
    }
    return rc;
}

/*
 * The same onto the reader's tape: the element is scanned and captured as for
 * jansson, and the tape's complaint is placed in the file as jansson's is, so
 * both forms name the same fault at the same place in the same words.
 */
static int read_entry_tape(struct reportread *rd, struct reportread_place *at)
{
    struct place start;
    struct blast_error e;
    char what[64];
    int rc;

    entry_start(rd, what, sizeof what, at);
    start = here(rd);
    capture_begin(rd, REPORTREAD_MAX_ENTRY, what);
    if ((rc = scan_value(rd, what)) < 0) {
        rd->capturing = false;
        return rc;
    }
    if ((rc = capture_end(rd)) < 0)
        return rc;
    blast_error_clear(&e);
    rc = jsontape_parse(&rd->tape, rd->cap_text, rd->cap_len, JSONTAPE_DECODE_ANY, &e);
    if (rc == BLAST_ESYNTAX)
        return fail(rd, rc, place_in_span(rd, rd->tape.error_offset), "invalid JSON in %s: %s",
                    what, e.text);
    if (rc < 0)
        return fail(rd, rc, start, "%s", e.text);
    if (!jsontape_is(jsontape_root(&rd->tape), JSONTAPE_OBJECT))
        return fail(rd, BLAST_EINVAL, start, "%s is not a JSON object", what);
    /* the tape holds the recipient now: the chunk under it may move on */
    return after_entry(rd, what);
}

static int opened(FILE *f, bool own, size_t chunk, const char *name, struct reportread **out,
                  struct blast_error *err)
{
    struct reportread *rd = calloc(1, sizeof *rd);
    int rc;

    *out = NULL;
    chunk = chunk == 0 ? CHUNK : chunk < 4096 ? 4096 : chunk;
    if (rd == NULL || (rd->in = malloc(chunk)) == NULL) {
        if (own)
            fclose(f);
        if (rd != NULL) {
            free(rd->in);
            free(rd);
        }
        return blast_error_set(err, BLAST_ENOMEM, name, 0, 0, "out of memory");
    }
    rd->f = f;
    rd->name = name;
    rd->own = own;
    rd->chunk = chunk;
    rd->err = err;
    rd->base.line = 1;
    rd->base.column = 1;
    buf_init(&rd->span);
    jsontape_init(&rd->tape);
    if ((rc = walk(rd)) < 0) {
        reportread_close(rd);
        return rc;
    }
    *out = rd;
    return 0;
}

int reportread_open_stream(FILE *f, const char *name, struct reportread **out,
                           struct blast_error *err)
{
    return opened(f, false, 0, name, out, err);
}

int reportread_open(const char *path, size_t chunk, struct reportread **out,
                    struct blast_error *err)
{
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open the report: %s",
                               strerror(errno));
    /* the reader reads in chunks of its own: no second buffer per open report */
    setvbuf(f, NULL, _IONBF, 0);
    return opened(f, true, chunk, path, out, err);
}

void reportread_skip_summary(struct reportread *rd, const char *const *keys)
{
    rd->summary_skip = keys;
}

const json_t *reportread_campaign(const struct reportread *rd)
{
    return rd->out.campaign;
}

const char *reportread_name(const struct reportread *rd)
{
    return rd->name;
}

int reportread_next(struct reportread *rd, json_t **entry, struct reportread_place *at,
                    struct blast_error *err)
{
    int rc;

    *entry = NULL;
    rd->err = err;
    if (rd->failure != 0)
        return rd->failure;
    if (!rd->in_array)
        return 0;
    if ((rc = read_entry(rd, entry, at)) == 0 && !rd->in_array)
        rc = walk(rd);
    if (rc < 0) {
        json_decref(*entry);
        *entry = NULL;
        return rc;
    }
    return 1;
}

int reportread_next_outcome(struct reportread *rd, struct outcome *o, struct reportread_place *at,
                            struct blast_error *err)
{
    struct blast_error e;
    size_t index;
    int rc;

    outcome_init(o);
    rd->err = err;
    if (rd->failure != 0)
        return rd->failure;
    if (!rd->in_array)
        return 0;
    index = rd->out.recipients;
    /* as reportread_next() and then reportread_outcome(): the same faults first */
    if ((rc = read_entry_tape(rd, at)) == 0 && !rd->in_array)
        rc = walk(rd);
    if (rc < 0)
        return rc;
    blast_error_clear(&e);
    if ((rc = outcome_from_tape(jsontape_root(&rd->tape), o, &e)) < 0)
        return fail(rd, rc, (struct place){at->line, at->column}, "recipient %zu: %s", index + 1,
                    e.text);
    return 1;
}

int reportread_finish(struct reportread *rd, struct reportread_result *out, struct blast_error *err)
{
    struct reportread_place at;
    json_t *entry;
    int rc;

    memset(out, 0, sizeof *out);
    while ((rc = reportread_next(rd, &entry, &at, err)) > 0)
        json_decref(entry);
    if (rc < 0)
        return rc;
    *out = rd->out;
    memset(&rd->out, 0, sizeof rd->out);
    return 0;
}

void reportread_close(struct reportread *rd)
{
    if (rd == NULL)
        return;
    if (rd->own)
        fclose(rd->f);
    if (rd->z != NULL) {
        inflateEnd(rd->z);
        free(rd->z);
    }
    free(rd->zin);
    reportread_result_free(&rd->out);
    free(rd->in);
    buf_free(&rd->span);
    jsontape_free(&rd->tape);
    free(rd);
}

/*
 * The push form: each entry to each (or, read as an outcome, to each_outcome),
 * then the rest of the report.
 */
static int push(struct reportread *rd, bool outcomes, reportread_fn each,
                reportread_outcome_fn each_outcome, void *arg, struct reportread_result *out,
                struct blast_error *err)
{
    struct reportread_result end;
    struct reportread_place at;
    struct outcome o;
    json_t *entry;
    size_t i = 0;
    int rc;

    /* what precedes the recipients is the callback's to see while they stream by */
    out->schema_version = rd->out.schema_version;
    out->campaign = json_incref(rd->out.campaign);
    for (;;) {
        if (outcomes) {
            if ((rc = reportread_next_outcome(rd, &o, &at, err)) <= 0) {
                outcome_free(&o);
                break;
            }
            rc = each_outcome != NULL ? each_outcome(arg, &o, i++, &at, err) : 0;
            outcome_free(&o);
        } else {
            if ((rc = reportread_next(rd, &entry, &at, err)) <= 0)
                break;
            rc = each != NULL ? each(arg, entry, i++, &at, err) : 0;
            json_decref(entry);
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && (rc = reportread_finish(rd, &end, err)) == 0) {
        reportread_result_free(out);
        *out = end;
    }
    if (rc < 0)
        reportread_result_free(out);
    reportread_close(rd);
    return rc;
}

int reportread_each_outcome(struct reportread *rd, reportread_outcome_fn each, void *arg,
                            struct reportread_result *out, struct blast_error *err)
{
    memset(out, 0, sizeof *out);
    return push(rd, true, NULL, each, arg, out, err);
}

int reportread_stream(FILE *f, const char *name, reportread_fn each, void *arg,
                      struct reportread_result *out, struct blast_error *err)
{
    struct reportread *rd;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = reportread_open_stream(f, name, &rd, err)) < 0)
        return rc;
    return push(rd, false, each, NULL, arg, out, err);
}

int reportread_file(const char *path, reportread_fn each, void *arg, struct reportread_result *out,
                    struct blast_error *err)
{
    struct reportread *rd;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = reportread_open(path, 0, &rd, err)) < 0)
        return rc;
    return push(rd, false, each, NULL, arg, out, err);
}

int reportread_stream_outcomes(FILE *f, const char *name, reportread_outcome_fn each, void *arg,
                               struct reportread_result *out, struct blast_error *err)
{
    struct reportread *rd;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = reportread_open_stream(f, name, &rd, err)) < 0)
        return rc;
    return push(rd, true, NULL, each, arg, out, err);
}

int reportread_file_outcomes(const char *path, reportread_outcome_fn each, void *arg,
                             struct reportread_result *out, struct blast_error *err)
{
    struct reportread *rd;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = reportread_open(path, 0, &rd, err)) < 0)
        return rc;
    return push(rd, true, NULL, each, arg, out, err);
}

void reportread_result_free(struct reportread_result *r)
{
    json_decref(r->campaign);
    json_decref(r->summary);
    memset(r, 0, sizeof *r);
}

int reportread_outcome(json_t *entry, size_t index, const struct reportread_place *at,
                       struct outcome *o, struct blast_error *err)
{
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    if ((rc = outcome_from_json(entry, o, &e)) < 0)
        return blast_error_set(err, rc, at->source, at->line, at->column, "recipient %zu: %s",
                               index + 1, e.text);
    return 0;
}
