/*
 * jsontape - one JSON text onto a flat array of nodes. See jsontape.h.
 *
 * The parser is one loop with an explicit stack of open containers, so depth
 * costs no C stack, and it follows jansson's grammar (src/load.c of 2.14) rule
 * for rule, since its callers used to hand the same texts to jansson and must
 * accept and refuse the same ones: the same whitespace, number syntax, escapes,
 * UTF-8 checks (overlong forms, surrogates and code points past U+10FFFF
 * refused), the same treatment of \u0000, the same depth rule (every value counts,
 * the top one is at depth 1). A fault is named where jansson names it and in its
 * words: jansson's lexer reads a token whole before its parser looks at it, and
 * keeps the first error set, so the faults inside a token come first
 * (fail_token()). The unit tests compare place and words with jansson's on their
 * list of faulty texts, and fuzz_report compares reportread's two forms.
 *
 * Speed: the decoded strings go to storage reserved once for the whole text (a
 * string never decodes longer than its source, quotes included), so the string
 * loop needs no bounds checks on its output and copies eight plain bytes at a
 * time; nodes are the only storage that grows during a parse.
 */
#include "jsontape.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    struct jsontape *t;
    const unsigned char *start, *p, *end;
    unsigned flags;
    bool lex_only; /* a token read only to find what jansson's lexer says of it */
    bool hex_nul;  /* the fault is a NUL read for a hex digit of a string's \u */
    struct blast_error *err;
};

void jsontape_init(struct jsontape *t)
{
    memset(t, 0, sizeof *t);
    t->max_depth = JSONTAPE_MAX_DEPTH;
}

void jsontape_free(struct jsontape *t)
{
    free(t->nodes);
    free(t->text);
    free(t->stack);
    jsontape_init(t);
}

/* ---- storage ------------------------------------------------------------------------------ */

static int reserve_text(struct jsontape *t, size_t need)
{
    size_t cap = t->captext ? t->captext : 256;
    char *more;

    if (need <= t->captext)
        return 0;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if ((more = realloc(t->text, cap)) == NULL)
        return BLAST_ENOMEM;
    t->text = more;
    t->captext = cap;
    return 0;
}

static int grow_nodes(struct jsontape *t)
{
    size_t cap = t->capnodes ? t->capnodes * 2 : 64;
    struct jsontape_node *more = realloc(t->nodes, cap * sizeof *more);

    if (more == NULL)
        return BLAST_ENOMEM;
    t->nodes = more;
    t->capnodes = cap;
    return 0;
}

/* A new node at the end of the tape; NULL when out of memory. */
static struct jsontape_node *push(struct jsontape *t, enum jsontape_type type)
{
    struct jsontape_node *n;

    if (t->nnodes == t->capnodes && grow_nodes(t) < 0)
        return NULL;
    n = &t->nodes[t->nnodes++];
    n->type = (uint8_t)type;
    n->size = 0;
    n->span = 1;
    n->u.integer = 0;
    return n;
}

static int grow_stack(struct jsontape *t)
{
    size_t cap = t->capstack ? t->capstack * 2 : 32;
    uint32_t *more = realloc(t->stack, cap * sizeof *more);

    if (more == NULL)
        return BLAST_ENOMEM;
    t->stack = more;
    t->capstack = cap;
    return 0;
}

/* ---- errors ------------------------------------------------------------------------------- */

static int nomem(struct parser *ps)
{
    ps->t->error_offset = (size_t)(ps->p - ps->start);
    return blast_error_set(ps->err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
}

/*
 * A syntax error found at byte at. Like jansson, the message shows the token read
 * so far, [from, to), when it is short ("near 'tru'"), as it is (control bytes
 * too), and says "near end of file" when the text ended before a token began (or
 * the token starts with NUL); from NULL shows nothing. The place is
 * where jansson's position puts it (reportread has always shown that byte): the
 * last byte read when the fault was seen, the end of the offending token.
 */
static bool is_digit(unsigned c);
static bool is_alpha(unsigned c);

static int vfail(struct parser *ps, const unsigned char *from, const unsigned char *to,
                 const unsigned char *at, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static int vfail(struct parser *ps, const unsigned char *from, const unsigned char *to,
                 const unsigned char *at, const char *fmt, va_list ap)
{
    char msg[256];
    const unsigned char *q;
    int line = 1, column = 1;
    size_t lost = 0;

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (at >= ps->end)
        at = ps->end > ps->start ? ps->end - 1 : ps->start;
    /*
     * The column of the character at holds, counted in characters. jansson does
     * not count a NUL it lost after a number or a word (after_token()), and such a
     * NUL is the only one that can come before a fault right after a letter or a
     * digit (any other is a fault itself, and only one read for the hex digits of
     * a "\u" is the fault's own byte): its place is one earlier for each.
     */
    column = 0;
    for (q = ps->start; q <= at && q < ps->end; q++) {
        if (*q == '\n' && q < at) {
            line++;
            column = 0;
        } else if (*q == '\0' && q > ps->start && (is_digit(q[-1]) || is_alpha(q[-1])) &&
                   !(q == at && ps->hex_nul)) {
            lost++;
        } else if ((*q & 0xC0) != 0x80) {
            column++;
        }
    }
    if (column == 0)
        column = 1;
    ps->t->error_offset = (size_t)(at - ps->start) - lost;
    if (from != NULL && to > ps->end)
        to = ps->end;
    /* jansson shows the token as it is, and an empty one (or one that starts with NUL) so */
    if (from != NULL && (from >= to || *from == '\0'))
        return blast_error_set(ps->err, BLAST_ESYNTAX, NULL, line, column, "%s near end of file",
                               msg);
    if (from != NULL && from < to && to - from <= 20)
        return blast_error_set(ps->err, BLAST_ESYNTAX, NULL, line, column, "%s near '%.*s'", msg,
                               (int)(to - from), (const char *)from);
    return blast_error_set(ps->err, BLAST_ESYNTAX, NULL, line, column, "%s", msg);
}

static int fail(struct parser *ps, const unsigned char *from, const unsigned char *to,
                const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct parser *ps, const unsigned char *from, const unsigned char *to,
                const unsigned char *at, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vfail(ps, from, to, at, fmt, ap);
    va_end(ap);
    return rc;
}

/* The byte before q, or q at the start: where a fault seen on reading q is placed. */
static const unsigned char *before(const struct parser *ps, const unsigned char *q)
{
    return q > ps->start ? q - 1 : q;
}

static int lex_check(struct parser *ps, const unsigned char *p, const unsigned char **end);

/*
 * A fault seen once the token at tok was read whole: shown, and placed at its end.
 * jansson reads the token before it looks at what it is, and the first error set
 * is the one it keeps: what its lexer finds in the token (bytes that are not
 * UTF-8, a bad escape, a number out of range) is named instead.
 */
static int fail_token(struct parser *ps, const unsigned char *tok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_token(struct parser *ps, const unsigned char *tok, const char *fmt, ...)
{
    const unsigned char *end;
    va_list ap;
    int rc;

    if ((rc = lex_check(ps, tok, &end)) < 0)
        return rc;
    va_start(ap, fmt);
    rc = vfail(ps, tok, end, before(ps, end), fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- tokens ------------------------------------------------------------------------------- */

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static bool is_digit(unsigned c)
{
    return c - '0' < 10;
}

static bool is_alpha(unsigned c)
{
    return (c | 0x20) - 'a' < 26;
}

static int hex_value(unsigned c)
{
    if (is_digit(c))
        return (int)(c - '0');
    if ((c | 0x20) - 'a' < 6)
        return (int)((c | 0x20) - 'a' + 10);
    return -1;
}

/* The four hex digits after "\u" at q (q[0] is 'u'), or -1. */
static int32_t unicode_escape(const unsigned char *q, const unsigned char *end)
{
    int32_t v = 0;
    int i, d;

    if (end - q < 5)
        return -1;
    for (i = 1; i <= 4; i++) {
        if ((d = hex_value(q[i])) < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* The length of the UTF-8 sequence at q as jansson's utf8_check_full() allows it; 0: invalid. */
static size_t utf8_length(const unsigned char *q, const unsigned char *end)
{
    unsigned c = q[0];
    uint32_t v;
    size_t n, i;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - q) < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((q[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (q[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

/* Whether jansson, reading the byte at q, finds it is not UTF-8. */
static bool undecodable(const struct parser *ps, const unsigned char *q)
{
    return q < ps->end && *q >= 0x80 && utf8_length(q, ps->end) == 0;
}

/* jansson's complaint about the byte at q that is not UTF-8, read after [tok, q). */
static int fail_decode(struct parser *ps, const unsigned char *tok, const unsigned char *q)
{
    return fail(ps, tok < q ? tok : NULL, q, before(ps, q), "unable to decode byte 0x%x", *q);
}

static char *put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xC0 | cp >> 6);
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xE0 | cp >> 12);
        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *out++ = (char)(0xF0 | cp >> 18);
        *out++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *out++ = (char)(0x80 | (cp & 0x3F));
    }
    return out;
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Whether any of the 8 bytes of x ends a plain run: a quote, a backslash, a control or non-ASCII
 * byte. */
static bool special8(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');

    return (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x) & HIGHS;
}

/* "\u" at q (its 'u') without four hex digits: jansson stops at the first that is not one. */
static int bad_hex(struct parser *ps, const unsigned char *tok, const unsigned char *q)
{
    int i = 1;

    while (i <= 4 && q + i < ps->end && hex_value(q[i]) >= 0)
        i++;
    q += i;
    ps->hex_nul = q < ps->end && *q == '\0';
    if (undecodable(ps, q))
        return fail_decode(ps, tok, q);
    return fail(ps, tok, q < ps->end ? q + 1 : q, q, "invalid escape");
}

/*
 * The escape at q (after its backslash) as jansson's first reading of a string
 * checks it: its length, or an error.
 */
static int escape_length(struct parser *ps, const unsigned char *tok, const unsigned char *q)
{
    if (q < ps->end && *q == 'u')
        return unicode_escape(q, ps->end) < 0 ? bad_hex(ps, tok, q) : 5;
    if (q < ps->end && *q != '\0' && strchr("\"\\/bfnrt", *q) != NULL)
        return 1;
    if (undecodable(ps, q))
        return fail_decode(ps, tok, q);
    return fail(ps, tok, q < ps->end ? q + 1 : q, q, "invalid escape");
}

/*
 * jansson reads a string whole before it decodes its escapes, so a fault of that
 * reading (a control character, an escape that is not one, bytes that are not
 * UTF-8, the end of the text) is the one it names, even after an escape that
 * decodes to a lone surrogate. From q (inside the string at tok) to its closing
 * quote: 0 when that reading finds nothing (*close is then the quote), or its error.
 */
static int first_reading(struct parser *ps, const unsigned char *tok, const unsigned char *q,
                         const unsigned char **close)
{
    int n;

    for (;;) {
        if (q == ps->end)
            return fail(ps, tok, q, q, "premature end of input");
        if (*q == '"') {
            *close = q;
            return 0;
        }
        if (*q == '\n')
            return fail(ps, tok, q, before(ps, q), "unexpected newline");
        if (*q < 0x20)
            return fail(ps, tok, q, before(ps, q), "control character 0x%x", *q);
        if (*q >= 0x80) {
            size_t k = utf8_length(q, ps->end);
            if (k == 0)
                return fail_decode(ps, tok, q);
            q += k;
        } else if (*q == '\\') {
            if ((n = escape_length(ps, tok, q + 1)) < 0)
                return n;
            q += 1 + n;
        } else {
            q++;
        }
    }
}

/*
 * A surrogate that pairs with nothing (hi, and lo unless it is -1), as jansson's
 * second reading of a string names it, once its first reading of the rest of the
 * string, from rest, found nothing.
 */
static int fail_surrogate(struct parser *ps, const unsigned char *tok, const unsigned char *rest,
                          int32_t hi, int32_t lo)
{
    const unsigned char *close = rest;
    int rc;

    if ((rc = first_reading(ps, tok, rest, &close)) < 0)
        return rc;
    if (lo < 0)
        return fail(ps, tok, close + 1, close, "invalid Unicode '\\u%04X'", (unsigned)hi);
    return fail(ps, tok, close + 1, close, "invalid Unicode '\\u%04X\\u%04X'", (unsigned)hi,
                (unsigned)lo);
}

/*
 * The escape at *qp (after its backslash), decoded to *out; *qp then points at
 * what follows it; *nul is set for "\u0000". tok is where the string starts.
 */
static int escape(struct parser *ps, const unsigned char *tok, const unsigned char **qp, char **out,
                  bool *nul)
{
    static const char plain[] = "\"\\/bfnrt", meant[] = "\"\\/\b\f\n\r\t";
    const unsigned char *q = *qp;
    int32_t cp, lo;
    int n;

    if ((n = escape_length(ps, tok, q)) < 0)
        return n;
    if (n == 1) {
        *(*out)++ = meant[strchr(plain, *q) - plain];
        *qp = q + 1;
        return 0;
    }
    cp = unicode_escape(q, ps->end);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* a high surrogate: a low one must follow at once */
        if (ps->end - q < 7 || q[5] != '\\' || q[6] != 'u')
            return fail_surrogate(ps, tok, q + 5, cp, -1);
        if ((lo = unicode_escape(q + 6, ps->end)) < 0)
            return bad_hex(ps, tok, q + 6);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_surrogate(ps, tok, q + 11, cp, lo);
        cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
        q += 6;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail_surrogate(ps, tok, q + 5, cp, -1);
    } else if (cp == 0) {
        *nul = true;
    }
    *out = put_utf8(*out, (uint32_t)cp);
    *qp = q + 5;
    return 0;
}

/*
 * The string whose opening quote is at ps->p, decoded onto a new node (in
 * lex_only, only read). A NUL in a key, or in a value without JSONTAPE_ALLOW_NUL,
 * is refused once the string has been read whole, as jansson refuses it.
 */
static int parse_string(struct parser *ps, bool key)
{
    const unsigned char *tok = ps->p, *q = ps->p + 1, *end = ps->end;
    struct jsontape *t = ps->t;
    struct jsontape_node *n;
    char *out = t->text + t->ntext, *s = out;
    bool nul = false;
    size_t len;
    int rc;

    for (;;) {
        unsigned c;
        /* the reserve leaves room for 8 bytes wherever the input has them */
        while (end - q >= 8) {
            uint64_t x;
            memcpy(&x, q, 8);
            if (special8(x))
                break;
            memcpy(out, &x, 8);
            out += 8;
            q += 8;
        }
        if (q == end)
            return fail(ps, tok, end, end, "premature end of input");
        c = *q;
        if (c == '"')
            break;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *out++ = (char)c;
            q++;
        } else if (c == '\\') {
            q++;
            if ((rc = escape(ps, tok, &q, &out, &nul)) < 0)
                return rc;
        } else if (c < 0x20) {
            if (c == '\n')
                return fail(ps, tok, q, q - 1, "unexpected newline");
            return fail(ps, tok, q, q - 1, "control character 0x%x", c);
        } else {
            size_t k = utf8_length(q, end);
            if (k == 0)
                return fail_decode(ps, tok, q);
            memcpy(out, q, k);
            out += k;
            q += k;
        }
    }
    ps->p = q + 1;
    if (ps->lex_only)
        return 0;
    if (nul && key)
        return fail(ps, tok, q + 1, q, "NUL byte in object key not supported");
    /* jansson's words, its flag's name and all: reports have always named it so */
    if (nul && !(ps->flags & JSONTAPE_ALLOW_NUL))
        return fail(ps, tok, q + 1, q, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    len = (size_t)(out - s);
    *out = '\0';
    if ((n = push(t, JSONTAPE_STRING)) == NULL)
        return nomem(ps);
    n->size = (uint32_t)len;
    n->u.string = s;
    t->ntext += len + 1;
    return 0;
}

/*
 * Where a number or a word that ends at q is followed by the next token. jansson
 * reads one byte past such a token and puts it back, and a NUL byte put back is
 * lost (its buffer takes NUL for "empty"): one NUL right after a number, true,
 * false or null is skipped, "[0\0]" reads as [0]. RFC 8259 has no such rule; the
 * tape follows jansson all the same, so that a journal or a report that was read
 * before is read the same now.
 */
static const unsigned char *after_token(const struct parser *ps, const unsigned char *q)
{
    return q < ps->end && *q == '\0' ? q + 1 : q;
}

/*
 * How far jansson's lexer reads the number at tok: to *stop, the byte after the
 * last one it keeps, which it reads too and puts back. Whether it is a number;
 * *real when it has a fraction or an exponent.
 */
static bool number_shape(const struct parser *ps, const unsigned char *tok,
                         const unsigned char **stop, bool *real)
{
    const unsigned char *q = tok, *end = ps->end;
    bool ok = false;

    *real = false;
    if (*q == '-')
        q++;
    if (q < end && *q == '0') {
        q++;
        ok = q == end || !is_digit(*q);
    } else if (q < end && is_digit(*q)) {
        while (q < end && is_digit(*q))
            q++;
        ok = true;
    }
    if (ok && q < end && *q == '.') {
        q++;
        ok = q < end && is_digit(*q);
        while (ok && q < end && is_digit(*q))
            q++;
        *real = true;
    }
    if (ok && q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        ok = q < end && is_digit(*q);
        while (ok && q < end && is_digit(*q))
            q++;
        *real = true;
    }
    *stop = q;
    return ok;
}

/*
 * A number at ps->p: an integer unless it has a fraction or an exponent, as in
 * jansson, whose lexer also refuses one out of range (in lex_only, only that).
 */
static int parse_number(struct parser *ps)
{
    const unsigned char *tok = ps->p, *q;
    struct jsontape_node *n;
    bool real, neg = *tok == '-';

    if (!number_shape(ps, tok, &q, &real)) {
        if (undecodable(ps, q))
            return fail_decode(ps, tok, q);
        return ps->lex_only ? 0 : fail(ps, tok, q, before(ps, q), "invalid token");
    }
    if (undecodable(ps, q))
        return fail_decode(ps, tok, q);
    if (!real) {
        uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        const unsigned char *d;
        for (d = tok + neg; d < q; d++) {
            unsigned v = *d - '0';
            if (acc > (limit - v) / 10)
                return fail(ps, tok, q, q - 1,
                            neg ? "too big negative integer" : "too big integer");
            acc = acc * 10 + v;
        }
        if (ps->lex_only)
            return 0;
        if ((n = push(ps->t, JSONTAPE_INTEGER)) == NULL)
            return nomem(ps);
        n->u.integer = !neg ? (int64_t)acc : acc > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)acc;
    } else {
        /*
         * strtod() wants a NUL at the end: the token is copied to the unused end of
         * the string storage, which has room for it (see parse_string). blast never
         * calls setlocale(), so the decimal point is '.', as jansson makes sure of.
         */
        char *copy = ps->t->text + ps->t->ntext, *after;
        double v;
        memcpy(copy, tok, (size_t)(q - tok));
        copy[q - tok] = '\0';
        errno = 0;
        v = strtod(copy, &after);
        if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE)
            return fail(ps, tok, q, q - 1, "real number overflow");
        if (ps->lex_only)
            return 0;
        if ((n = push(ps->t, JSONTAPE_REAL)) == NULL)
            return nomem(ps);
        n->u.real = v;
    }
    ps->p = after_token(ps, q);
    return 0;
}

/* true, false or null; like jansson, a run of letters is one token. */
static int parse_word(struct parser *ps)
{
    const unsigned char *tok = ps->p, *q = ps->p;
    enum jsontape_type type;
    size_t n;

    while (q < ps->end && is_alpha(*q))
        q++;
    if (undecodable(ps, q))
        return fail_decode(ps, tok, q);
    n = (size_t)(q - tok);
    if (n == 4 && memcmp(tok, "true", 4) == 0)
        type = JSONTAPE_TRUE;
    else if (n == 5 && memcmp(tok, "false", 5) == 0)
        type = JSONTAPE_FALSE;
    else if (n == 4 && memcmp(tok, "null", 4) == 0)
        type = JSONTAPE_NULL;
    else
        return ps->lex_only ? 0 : fail(ps, tok, q, q - 1, "invalid token");
    if (ps->lex_only)
        return 0;
    if (push(ps->t, type) == NULL)
        return nomem(ps);
    ps->p = after_token(ps, q);
    return 0;
}

/*
 * The token at p read only as jansson's lexer reads it: 0 and *end where the text
 * it keeps ends, or the error the lexer sets.
 */
static int lex_check(struct parser *ps, const unsigned char *p, const unsigned char **end)
{
    const unsigned char *save = ps->p;
    bool real;
    size_t k;
    int rc = 0;

    *end = p;
    if (p >= ps->end)
        return 0;
    if (*p >= 0x80) {
        if ((k = utf8_length(p, ps->end)) == 0)
            return fail_decode(ps, p, p);
        *end = p + k;
        return 0;
    }
    if (*p != '"' && *p != '-' && !is_digit(*p) && !is_alpha(*p)) {
        *end = p + 1;
        return 0;
    }
    ps->p = p;
    ps->lex_only = true;
    if (*p == '"') {
        rc = parse_string(ps, false);
        *end = ps->p;
    } else if (is_alpha(*p)) {
        for (*end = p; *end < ps->end && is_alpha(**end); (*end)++)
            ;
        rc = parse_word(ps);
    } else {
        number_shape(ps, p, end, &real);
        rc = parse_number(ps);
    }
    ps->lex_only = false;
    ps->p = save;
    return rc;
}

/* What cannot start a value. */
static int not_a_value(struct parser *ps)
{
    const unsigned char *q = ps->p;
    size_t k;

    if (*q == '}' || *q == ']' || *q == ':' || *q == ',')
        return fail(ps, q, q + 1, q, "unexpected token");
    if (*q < 0x80)
        return fail(ps, q, q + 1, q, "invalid token");
    if ((k = utf8_length(q, ps->end)) == 0)
        return fail_decode(ps, q, q);
    return fail(ps, q, q + k, q + k - 1, "invalid token");
}

/* ---- the parser --------------------------------------------------------------------------- */

enum step { VALUE, KEY, AFTER };

int jsontape_parse(struct jsontape *t, const char *text, size_t len, unsigned flags,
                   struct blast_error *err)
{
    struct parser ps;
    enum step step = VALUE;
    size_t depth = 0;
    int rc;

    t->nnodes = 0;
    t->ntext = 0;
    t->ok = false;
    t->error_offset = 0;
    if (len > JSONTAPE_MAX_TEXT)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "a JSON text larger than %zu bytes",
                               JSONTAPE_MAX_TEXT);
    ps.t = t;
    ps.start = ps.p = (const unsigned char *)(text != NULL ? text : "");
    ps.end = ps.start + len;
    ps.flags = flags;
    ps.lex_only = false;
    ps.hex_nul = false;
    ps.err = err;
    /* every string decodes to at most its source's length, its quotes holding its NUL */
    if (reserve_text(t, len + 1) < 0)
        return nomem(&ps);
    ps.p = skip_ws(ps.p, ps.end);
    if (!(flags & JSONTAPE_DECODE_ANY) && (ps.p == ps.end || (*ps.p != '{' && *ps.p != '[')))
        return fail_token(&ps, ps.p, "'[' or '{' expected");
    for (;;) {
        struct jsontape_node *c;
        bool object;
        switch (step) {
        case VALUE:
            ps.p = skip_ws(ps.p, ps.end);
            /* jansson's order: an array that ends with the text, the depth, the token */
            if (ps.p == ps.end && depth > 0 && t->nodes[t->stack[depth - 1]].type == JSONTAPE_ARRAY)
                return fail(&ps, ps.p, ps.p, ps.p, "']' expected");
            if (depth >= t->max_depth)
                return fail_token(&ps, ps.p, "maximum parsing depth reached");
            if (ps.p == ps.end)
                return fail(&ps, ps.p, ps.p, ps.p, "unexpected token");
            switch (*ps.p) {
            case '{':
            case '[':
                object = *ps.p == '{';
                if (depth == t->capstack && grow_stack(t) < 0)
                    return nomem(&ps);
                t->stack[depth++] = (uint32_t)t->nnodes;
                if (push(t, object ? JSONTAPE_OBJECT : JSONTAPE_ARRAY) == NULL)
                    return nomem(&ps);
                ps.p = skip_ws(ps.p + 1, ps.end);
                if (ps.p < ps.end && *ps.p == (object ? '}' : ']')) {
                    ps.p++;
                    depth--;
                    step = AFTER;
                } else {
                    step = object ? KEY : VALUE;
                }
                continue;
            case '"':
                rc = parse_string(&ps, false);
                break;
            case '-':
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7':
            case '8':
            case '9':
                rc = parse_number(&ps);
                break;
            default:
                rc = is_alpha(*ps.p) ? parse_word(&ps) : not_a_value(&ps);
                break;
            }
            if (rc < 0)
                return rc;
            step = AFTER;
            break;
        case KEY:
            ps.p = skip_ws(ps.p, ps.end);
            if (ps.p == ps.end || *ps.p != '"')
                return fail_token(&ps, ps.p, "string or '}' expected");
            if ((rc = parse_string(&ps, true)) < 0)
                return rc;
            ps.p = skip_ws(ps.p, ps.end);
            if (ps.p == ps.end || *ps.p != ':')
                return fail_token(&ps, ps.p, "':' expected");
            ps.p++;
            step = VALUE;
            break;
        case AFTER:
            if (depth == 0) {
                ps.p = skip_ws(ps.p, ps.end);
                if (ps.p != ps.end)
                    return fail_token(&ps, ps.p, "end of file expected");
                t->ok = true;
                return 0;
            }
            c = &t->nodes[t->stack[depth - 1]];
            object = c->type == JSONTAPE_OBJECT;
            c->size++;
            ps.p = skip_ws(ps.p, ps.end);
            if (ps.p < ps.end && *ps.p == ',') {
                ps.p++;
                step = object ? KEY : VALUE;
            } else if (ps.p < ps.end && *ps.p == (object ? '}' : ']')) {
                ps.p++;
                c->span = (uint32_t)(t->nnodes - t->stack[depth - 1]);
                depth--;
            } else {
                return fail_token(&ps, ps.p, object ? "'}' expected" : "']' expected");
            }
            break;
        }
    }
}

/* ---- from a jansson tree ------------------------------------------------------------------ */

/* A string node whose bytes go to the storage; u holds their offset until the end. */
static int copy_string(struct jsontape *t, const char *s, size_t len)
{
    struct jsontape_node *n;

    if (len > JSONTAPE_MAX_TEXT)
        return BLAST_EINVAL;
    if (reserve_text(t, t->ntext + len + 1) < 0 || (n = push(t, JSONTAPE_STRING)) == NULL)
        return BLAST_ENOMEM;
    memcpy(t->text + t->ntext, s, len);
    t->text[t->ntext + len] = '\0';
    n->size = (uint32_t)len;
    n->u.integer = (int64_t)t->ntext;
    t->ntext += len + 1;
    return 0;
}

static int copy_value(struct jsontape *t, json_t *v, size_t depth)
{
    size_t at = t->nnodes, i;
    struct jsontape_node *n;
    const char *key;
    size_t keylen;
    json_t *m;
    int rc;

    if (depth >= t->max_depth)
        return BLAST_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (push(t, JSONTAPE_OBJECT) == NULL)
            return BLAST_ENOMEM;
        json_object_keylen_foreach(v, key, keylen, m)
        {
            if ((rc = copy_string(t, key, keylen)) < 0 || (rc = copy_value(t, m, depth + 1)) < 0)
                return rc;
            t->nodes[at].size++;
        }
        break;
    case JSON_ARRAY:
        if (push(t, JSONTAPE_ARRAY) == NULL)
            return BLAST_ENOMEM;
        for (i = 0; i < json_array_size(v); i++) {
            if ((rc = copy_value(t, json_array_get(v, i), depth + 1)) < 0)
                return rc;
            t->nodes[at].size++;
        }
        break;
    case JSON_STRING:
        return copy_string(t, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        if ((n = push(t, JSONTAPE_INTEGER)) == NULL)
            return BLAST_ENOMEM;
        n->u.integer = json_integer_value(v);
        return 0;
    case JSON_REAL:
        if ((n = push(t, JSONTAPE_REAL)) == NULL)
            return BLAST_ENOMEM;
        n->u.real = json_real_value(v);
        return 0;
    case JSON_TRUE:
        return push(t, JSONTAPE_TRUE) != NULL ? 0 : BLAST_ENOMEM;
    case JSON_FALSE:
        return push(t, JSONTAPE_FALSE) != NULL ? 0 : BLAST_ENOMEM;
    default:
        return push(t, JSONTAPE_NULL) != NULL ? 0 : BLAST_ENOMEM;
    }
    t->nodes[at].span = (uint32_t)(t->nnodes - at);
    return 0;
}

int jsontape_from_json(struct jsontape *t, const json_t *v, struct blast_error *err)
{
    size_t i;
    int rc;

    t->nnodes = 0;
    t->ntext = 0;
    t->ok = false;
    t->error_offset = 0;
    if (v == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "no JSON value");
    if ((rc = copy_value(t, (json_t *)v, 0)) < 0)
        return blast_error_set(err, rc, NULL, 0, 0, "%s",
                               rc == BLAST_ENOMEM ? "out of memory"
                                                  : "the JSON value nests too deep or holds a "
                                                    "string too large");
    /* the storage has stopped moving: offsets become pointers */
    for (i = 0; i < t->nnodes; i++)
        if (t->nodes[i].type == JSONTAPE_STRING)
            t->nodes[i].u.string = t->text + (size_t)t->nodes[i].u.integer;
    t->ok = true;
    return 0;
}

/* ---- accessors ---------------------------------------------------------------------------- */

const struct jsontape_node *jsontape_root(const struct jsontape *t)
{
    return t->ok && t->nnodes > 0 ? &t->nodes[0] : NULL;
}

enum jsontape_type jsontape_type(const struct jsontape_node *v)
{
    return (enum jsontape_type)v->type;
}

bool jsontape_is(const struct jsontape_node *v, enum jsontape_type type)
{
    return v != NULL && v->type == type;
}

const char *jsontape_string(const struct jsontape_node *v)
{
    return jsontape_is(v, JSONTAPE_STRING) ? v->u.string : NULL;
}

size_t jsontape_size(const struct jsontape_node *v)
{
    return v != NULL && (v->type == JSONTAPE_STRING || v->type == JSONTAPE_ARRAY ||
                         v->type == JSONTAPE_OBJECT)
               ? v->size
               : 0;
}

int64_t jsontape_integer(const struct jsontape_node *v)
{
    return jsontape_is(v, JSONTAPE_INTEGER) ? v->u.integer : 0;
}

double jsontape_real(const struct jsontape_node *v)
{
    return jsontape_is(v, JSONTAPE_REAL) ? v->u.real : 0;
}

const struct jsontape_node *jsontape_first(const struct jsontape_node *container)
{
    return container != NULL && container->span > 1 ? container + 1 : NULL;
}

const struct jsontape_node *jsontape_next(const struct jsontape_node *container,
                                          const struct jsontape_node *v)
{
    const struct jsontape_node *n = v + v->span;

    return n < container + container->span ? n : NULL;
}

const struct jsontape_node *jsontape_member(const struct jsontape_node *obj, const char *key)
{
    const struct jsontape_node *k, *found = NULL;
    size_t len = strlen(key);

    if (!jsontape_is(obj, JSONTAPE_OBJECT))
        return NULL;
    for (k = jsontape_first(obj); k != NULL; k = jsontape_next(obj, k + 1))
        if (k->size == len && memcmp(k->u.string, key, len) == 0)
            found = k + 1;
    return found;
}
