/*
 * mime_parse - a small MIME reader for the tests, written apart from core/mime.c:
 * split an entity into header and body, read an unfolded header field and its
 * parameters (RFC 2045 §5.1, RFC 2231 §3-4 for extended and continued values),
 * list the parts of a multipart body by the boundary its Content-Type names (RFC
 * 2046 §5.1.1), and decode base64 bodies (RFC 2045 §6.8) while checking their
 * lines. Everything asserts on malformed input, so a test that uses it also
 * checks the shape of what it reads.
 */
#ifndef BLAST_TEST_MIME_PARSE_H
#define BLAST_TEST_MIME_PARSE_H

#include "../../core/buf.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An entity: its header block (without the blank line) and its body. */
struct mp_entity {
    const char *head;
    size_t head_len;
    const char *body;
    size_t body_len;
};

/* Split s[0..len) at the first empty line ("\r\n\r\n"); an entity may have no header. */
static inline void mp_split(const char *s, size_t len, struct mp_entity *out)
{
    const char *end;

    if (len >= 2 && s[0] == '\r' && s[1] == '\n') {
        out->head = s;
        out->head_len = 0;
        out->body = s + 2;
        out->body_len = len - 2;
        return;
    }
    end = memmem(s, len, "\r\n\r\n", 4);
    cr_assert_not_null(end, "no empty line after the header of '%.60s'", s);
    out->head = s;
    out->head_len = (size_t)(end - s) + 2;
    out->body = end + 4;
    out->body_len = len - (size_t)(end + 4 - s);
}

/*
 * The unfolded value of field name (compared without regard to case) into out;
 * false when the header has no such field. The field must occur at most once.
 */
static inline bool mp_header(const struct mp_entity *e, const char *name, char *out, size_t size)
{
    const char *p = e->head, *end = e->head + e->head_len;
    size_t n = strlen(name), o = 0;
    bool found = false;

    out[0] = '\0';
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        cr_assert_not_null(eol, "header line without CRLF");
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            cr_assert_not(found, "field %s occurs twice", name);
            found = true;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            for (;;) {
                size_t k = (size_t)(eol - v);
                cr_assert_lt(o + k, size, "field %s too long for the test", name);
                memcpy(out + o, v, k);
                o += k;
                /* a continuation line starts with white space (RFC 5322 §2.2.3) */
                if (eol + 2 < end && (eol[2] == ' ' || eol[2] == '\t')) {
                    v = eol + 2;
                    eol = memmem(v, (size_t)(end - v), "\r\n", 2);
                    cr_assert_not_null(eol);
                    continue;
                }
                break;
            }
            out[o] = '\0';
        }
        p = eol + 2;
        while (p < end && (*p == ' ' || *p == '\t')) {
            eol = memmem(p, (size_t)(end - p), "\r\n", 2);
            p = eol + 2;
        }
    }
    return found;
}

/* The value of a field without its parameters (up to the first ';'), lower-cased. */
static inline void mp_value(const char *field, char *out, size_t size)
{
    size_t i = 0;

    while (field[i] != '\0' && field[i] != ';' && field[i] != ' ' && i + 1 < size) {
        out[i] = (char)(field[i] >= 'A' && field[i] <= 'Z' ? field[i] + 32 : field[i]);
        i++;
    }
    out[i] = '\0';
}

static inline int mp_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Parameter param of a field value into out: a token or a quoted string (with its
 * backslash escapes undone), or the RFC 2231 forms param*=charset''%XX and
 * param*0*=..., param*1*=... joined and percent-decoded (the charset must be
 * UTF-8). *extended says which form it was. False when absent.
 */
static inline bool mp_param(const char *field, const char *param, char *out, size_t size,
                            bool *extended)
{
    size_t n = strlen(param), o = 0;
    int want = 0;
    const char *p = field;
    bool found = false, ext = false;

    out[0] = '\0';
    for (;;) {
        char name[64], sect[16];
        const char *q = strchr(p, ';');
        size_t k = 0;
        bool star = false, in_quotes = false;

        if (q == NULL)
            break;
        p = q + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        while (*p != '\0' && *p != '=' && *p != ';' && k + 1 < sizeof name)
            name[k++] = *p++;
        name[k] = '\0';
        if (*p != '=')
            continue;
        p++;
        if (strncasecmp(name, param, n) != 0)
            goto skip;
        if (name[n] == '\0') {
            cr_assert_not(found, "parameter %s twice", param);
        } else if (name[n] == '*') {
            const char *s = name + n + 1;
            size_t sl = strlen(s);
            /* "*" alone, or a section "N" or "N*" */
            if (sl == 0) {
                star = true;
                snprintf(sect, sizeof sect, "0");
            } else {
                snprintf(sect, sizeof sect, "%.*s", (int)(s[sl - 1] == '*' ? sl - 1 : sl), s);
                star = s[sl - 1] == '*';
                cr_assert_eq(strtol(sect, NULL, 10), want, "section %s of %s out of order", sect,
                             param);
            }
            ext = true;
            want++;
        } else {
            goto skip;
        }
        found = true;
        if (*p == '"') {
            p++;
            while (*p != '\0' && *p != '"') {
                if (*p == '\\')
                    p++;
                cr_assert_lt(o + 1, size);
                out[o++] = *p++;
            }
            cr_assert_eq(*p, '"', "unterminated quoted string in %s", field);
            p++;
            out[o] = '\0';
            continue;
        }
        if (star && want == 1) {
            const char *tick = strstr(p, "''");
            cr_assert_not_null(tick, "RFC 2231 value without charset''");
            cr_assert(tick - p == 5 && strncasecmp(p, "utf-8", 5) == 0, "charset of %s: %.*s",
                      param, (int)(tick - p), p);
            p = tick + 2;
        }
        while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t') {
            cr_assert_lt(o + 1, size);
            if (star && *p == '%') {
                cr_assert(mp_hex(p[1]) >= 0 && mp_hex(p[2]) >= 0, "bad %%XX in %s", field);
                out[o++] = (char)(mp_hex(p[1]) << 4 | mp_hex(p[2]));
                p += 3;
            } else {
                cr_assert(!star || strchr("*'%()<>@,;:\\\"/[]?=", *p) == NULL,
                          "'%c' may not stand in an RFC 2231 value", *p);
                out[o++] = *p++;
            }
        }
        out[o] = '\0';
        continue;
    skip:
        /* step over the value, quoted strings included */
        while (*p != '\0' && (in_quotes || *p != ';')) {
            if (*p == '\\' && in_quotes && p[1] != '\0')
                p++;
            else if (*p == '"')
                in_quotes = !in_quotes;
            p++;
        }
    }
    if (extended != NULL)
        *extended = ext;
    return found;
}

/*
 * The parts of a multipart entity: its Content-Type must be multipart/subtype
 * with a boundary; every delimiter line is "--boundary" alone, the last one
 * "--boundary--", and nothing but an epilogue follows. Returns how many parts
 * went into kids (at most max); *boundary gets the boundary.
 */
static inline size_t mp_parts(const struct mp_entity *e, const char *subtype,
                              struct mp_entity *kids, size_t max, char *boundary, size_t bsize)
{
    char ct[2048], want[64], value[128], delim[128];
    const char *p, *end = e->body + e->body_len;
    size_t n = 0, dl;
    bool ext;

    cr_assert(mp_header(e, "Content-Type", ct, sizeof ct), "no Content-Type");
    snprintf(want, sizeof want, "multipart/%s", subtype);
    mp_value(ct, value, sizeof value);
    cr_assert_str_eq(value, want, "Content-Type: %s", ct);
    cr_assert(mp_param(ct, "boundary", boundary, bsize, &ext), "no boundary in %s", ct);
    cr_assert_not(ext);
    cr_assert_gt(strlen(boundary), 0);
    cr_assert_leq(strlen(boundary), 70, "RFC 2046 §5.1.1: at most 70 characters");
    snprintf(delim, sizeof delim, "--%s", boundary);
    dl = strlen(delim);
    /* the first delimiter starts the body or follows a preamble line */
    if ((size_t)(end - e->body) >= dl && memcmp(e->body, delim, dl) == 0) {
        p = e->body;
    } else {
        char first[132];
        snprintf(first, sizeof first, "\r\n%s", delim);
        p = memmem(e->body, e->body_len, first, dl + 2);
        cr_assert_not_null(p, "no delimiter --%s", boundary);
        p += 2;
    }
    for (;;) {
        const char *start, *next;
        char crlf_delim[132];

        cr_assert_leq((size_t)(end - p), e->body_len);
        cr_assert_eq(memcmp(p, delim, dl), 0);
        p += dl;
        if ((size_t)(end - p) >= 2 && memcmp(p, "--", 2) == 0) {
            p += 2;
            cr_assert((size_t)(end - p) >= 2 && memcmp(p, "\r\n", 2) == 0,
                      "the close delimiter ends its line");
            cr_assert_eq(memmem(p, (size_t)(end - p), delim, dl), NULL,
                         "the boundary occurs after the close delimiter");
            break;
        }
        cr_assert((size_t)(end - p) >= 2 && memcmp(p, "\r\n", 2) == 0,
                  "a delimiter line is the boundary alone");
        start = p + 2;
        snprintf(crlf_delim, sizeof crlf_delim, "\r\n%s", delim);
        next = memmem(start, (size_t)(end - start), crlf_delim, dl + 2);
        cr_assert_not_null(next, "part %zu of multipart/%s is not closed", n + 1, subtype);
        cr_assert_lt(n, max, "more than %zu parts", max);
        mp_split(start, (size_t)(next - start), &kids[n]);
        n++;
        p = next + 2;
    }
    return n;
}

/* The Content-Type value of e (lower-cased, without parameters) into out. */
static inline void mp_type(const struct mp_entity *e, char *out, size_t size)
{
    char ct[2048];

    cr_assert(mp_header(e, "Content-Type", ct, sizeof ct), "a part without Content-Type");
    mp_value(ct, out, size);
}

static inline int mp_b64(char c)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

    return p != NULL ? (int)(p - alphabet) : -1;
}

/*
 * Decode base64 in lines of at most 76 characters, each ending in CRLF (RFC 2045
 * §6.8), appending the bytes to out. Every line but the last is 76 characters.
 */
static inline void mp_base64_lines(const char *in, size_t len, struct buf *out)
{
    size_t i = 0, line_len = 0, nlines = 0;
    unsigned quad[4];
    size_t q = 0, pad = 0;
    bool short_line = false;

    buf_puts(out, "");
    for (i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\r') {
            cr_assert(i + 1 < len && in[i + 1] == '\n', "bare CR in base64");
            cr_assert_leq(line_len, 76, "base64 line of %zu characters", line_len);
            cr_assert_gt(line_len, 0, "empty base64 line");
            cr_assert_not(short_line, "a short base64 line before the last one");
            short_line = line_len < 76;
            cr_assert_eq(line_len % 4, 0, "a line splits a base64 quantum");
            line_len = 0;
            nlines++;
            i++;
            continue;
        }
        cr_assert_neq(c, '\n', "bare LF in base64");
        cr_assert_eq(pad == 0 || c == '=', 1, "data after padding");
        line_len++;
        if (c == '=') {
            pad++;
            quad[q++] = 0;
        } else {
            int v = mp_b64(c);
            cr_assert_geq(v, 0, "byte 0x%02x in base64", (unsigned char)c);
            quad[q++] = (unsigned)v;
        }
        if (q == 4) {
            unsigned v = quad[0] << 18 | quad[1] << 12 | quad[2] << 6 | quad[3];
            cr_assert_leq(pad, 2);
            buf_putc(out, (char)(v >> 16));
            if (pad < 2)
                buf_putc(out, (char)(v >> 8 & 0xFF));
            if (pad < 1)
                buf_putc(out, (char)(v & 0xFF));
            q = 0;
        }
    }
    cr_assert_eq(line_len, 0, "base64 does not end in CRLF");
    cr_assert_eq(q, 0, "base64 length is not a multiple of 4");
}

#endif
