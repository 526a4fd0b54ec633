/*
 * text - UTF-8 validation and edit distance. See text.h.
 */
#include "text.h"
#include "buf.h"
#include "error.h"

#include <string.h>

bool text_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned char c = *p;
        size_t n, i;
        unsigned long cp;

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

size_t text_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[64];

    if (la > 62 || lb > 62)
        return (size_t)-1;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *text_nearest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1, limit = strlen(word) / 3 + 1, d;

    if (limit < 2)
        limit = 2;
    for (; candidates != NULL && *candidates != NULL; candidates++) {
        d = text_edit_distance(word, *candidates);
        if (d < bestd) {
            bestd = d;
            best = *candidates;
        }
    }
    return bestd <= limit ? best : NULL;
}

/* ---- JSON strings ------------------------------------------------------------------------ */

/* The length of the UTF-8 sequence at s (at most len bytes), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;

    if (n == 0 || n > len || !text_utf8_valid((const char *)s, n))
        return 0;
    return n;
}

int text_json_string(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t len, i, run = 0;

    if (s == NULL || s[0] == '\0')
        return buf_append(b, "null", 4);
    len = strlen(s);
    if (buf_reserve(b, len + 2) < 0 || buf_putc(b, '"') < 0)
        return BLAST_ENOMEM;
    for (i = 0; i < len; i += run) {
        unsigned char c = p[i];
        char esc[8];
        size_t n;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            /* the common case: a stretch of plain ASCII, copied at once */
            for (run = 1; i + run < len; run++) {
                unsigned char d = p[i + run];
                if (d < 0x20 || d == '"' || d == '\\' || d >= 0x80)
                    break;
            }
            if (buf_append(b, s + i, run) < 0)
                return BLAST_ENOMEM;
            continue;
        }
        run = 1;
        if (c >= 0x80) {
            n = utf8_seq(p + i, len - i);
            if (n == 0) {
                if (buf_append(b, "\xEF\xBF\xBD", 3) < 0) /* U+FFFD for a byte that is not UTF-8 */
                    return BLAST_ENOMEM;
                continue;
            }
            run = n;
            if (buf_append(b, s + i, n) < 0)
                return BLAST_ENOMEM;
            continue;
        }
        switch (c) {
        case '"':
            memcpy(esc, "\\\"", 3);
            break;
        case '\\':
            memcpy(esc, "\\\\", 3);
            break;
        case '\b':
            memcpy(esc, "\\b", 3);
            break;
        case '\f':
            memcpy(esc, "\\f", 3);
            break;
        case '\n':
            memcpy(esc, "\\n", 3);
            break;
        case '\r':
            memcpy(esc, "\\r", 3);
            break;
        case '\t':
            memcpy(esc, "\\t", 3);
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            esc[6] = '\0';
            break;
        }
        if (buf_puts(b, esc) < 0)
            return BLAST_ENOMEM;
    }
    return buf_putc(b, '"');
}
