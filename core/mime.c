/*
 * mime - build RFC 5322 / MIME messages. See mime.h.
 */
#include "mime.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hexdigits[] = "0123456789ABCDEF";

static int append_b64(struct buf *out, const unsigned char *in, size_t len)
{
    size_t i;
    char q[4];
    int rc;

    for (i = 0; i + 2 < len; i += 3) {
        q[0] = b64chars[in[i] >> 2];
        q[1] = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        q[2] = b64chars[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        q[3] = b64chars[in[i + 2] & 63];
        if ((rc = buf_append(out, q, 4)) < 0)
            return rc;
    }
    if (i < len) {
        q[0] = b64chars[in[i] >> 2];
        if (i + 1 < len) {
            q[1] = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            q[2] = b64chars[(in[i + 1] & 15) << 2];
        } else {
            q[1] = b64chars[(in[i] & 3) << 4];
            q[2] = '=';
        }
        q[3] = '=';
        if ((rc = buf_append(out, q, 4)) < 0)
            return rc;
    }
    return 0;
}

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/* Column of the end of out (characters since the last CRLF). */
static size_t current_column(const struct buf *out)
{
    size_t i = out->len;

    while (i > 0 && out->data[i - 1] != '\n')
        i--;
    return out->len - i;
}

/*
 * Copy value with control characters (C0, DEL; CR and LF among them) replaced by
 * spaces and leading and trailing spaces dropped: the one place where header text
 * is made safe. Folding can then never produce a line of only whitespace.
 */
static char *sanitize_header_text(const char *value, size_t len)
{
    char *s = malloc(len + 1);
    size_t i, start = 0, n = 0;

    if (s == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\r' && i + 1 < len && value[i + 1] == '\n')
            continue; /* a CRLF becomes one space, like a folded line */
        s[n++] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    while (n > 0 && s[n - 1] == ' ')
        n--;
    while (start < n && s[start] == ' ')
        start++;
    memmove(s, s + start, n - start);
    s[n - start] = '\0';
    return s;
}

static bool needs_encoding(const char *s)
{
    const unsigned char *p;

    for (p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p >= 0x80)
            return true;
    /* Text that looks like an encoded word would be decoded by readers (RFC 2047 §5). */
    return strstr(s, "=?") != NULL;
}

/*
 * RFC 2047 B-encoded words for s, starting at the current column of out, each
 * word at most 75 characters and each line at most 78; words are split only
 * between UTF-8 characters (RFC 2047 §5(3)).
 */
static int append_encoded_words(struct buf *out, const char *s, size_t len)
{
    static const char prefix[] = "=?UTF-8?B?";
    size_t i = 0;
    int rc;

    while (i < len) {
        size_t col = current_column(out), room, max_bytes, take = 0;

        /* 12 = "=?UTF-8?B?" + "?="; the word itself may not exceed 75 */
        room = col < MIME_LINE_SOFT ? MIME_LINE_SOFT - col : 0;
        if (room > 75)
            room = 75;
        max_bytes = room > 12 ? (room - 12) / 4 * 3 : 0;
        if (max_bytes < 4 && i == 0 && col > 1) {
            /* not even one character fits after the field name: start on a new line */
            if ((rc = buf_puts(out, "\r\n ")) < 0)
                return rc;
            continue;
        }
        if (max_bytes < 4)
            max_bytes = 4;
        while (i + take < len) {
            size_t n = utf8_len((unsigned char)s[i + take]);
            if (n > len - i - take)
                n = len - i - take; /* a truncated sequence at the very end */
            if (take + n > max_bytes)
                break;
            take += n;
        }
        if ((rc = buf_puts(out, prefix)) < 0 ||
            (rc = append_b64(out, (const unsigned char *)s + i, take)) < 0 ||
            (rc = buf_puts(out, "?=")) < 0)
            return rc;
        i += take;
        if (i < len && (rc = buf_puts(out, "\r\n ")) < 0)
            return rc;
    }
    return 0;
}

/* Plain ASCII text folded at spaces so lines stay within MIME_LINE_SOFT where possible. */
static int append_folded(struct buf *out, const char *s)
{
    int rc;

    while (*s != '\0') {
        size_t col = current_column(out), n = strlen(s), cut;

        if (col + n <= MIME_LINE_SOFT)
            return buf_puts(out, s);
        /* fold before the last space that keeps this line short enough */
        cut = MIME_LINE_SOFT > col ? MIME_LINE_SOFT - col : 0;
        while (cut > 0 && s[cut] != ' ')
            cut--;
        if (cut == 0) {
            /* no space in reach: take the whole word, however long (never over 998 in
             * practice: subjects are short; the hard limit is checked by the caller) */
            cut = strcspn(s + 1, " ") + 1;
            if (cut >= n)
                return buf_puts(out, s);
        }
        if ((rc = buf_append(out, s, cut)) < 0 || (rc = buf_puts(out, "\r\n")) < 0)
            return rc;
        s += cut; /* the space stays at the start of the continuation line */
    }
    return 0;
}

/*
 * Plain text can be folded at its spaces (RFC 5322 §2.2.3) when no word is too long
 * for a line and no run of spaces could leave a line of nothing but whitespace;
 * otherwise encoded words carry it exactly.
 */
static bool foldable(const char *s)
{
    size_t word = 0;

    for (; *s != '\0'; s++) {
        if (*s == ' ' || *s == '\t') {
            if (s[1] == ' ' || s[1] == '\t')
                return false;
            word = 0;
        } else if (++word > MIME_LINE_SOFT - 12) {
            return false;
        }
    }
    return true;
}

int mime_header_text(struct buf *out, const char *name, const char *value, size_t len)
{
    char *clean;
    int rc;

    clean = sanitize_header_text(value, len);
    if (clean == NULL)
        return BLAST_ENOMEM;
    if ((rc = buf_puts(out, name)) < 0 || (rc = buf_puts(out, ": ")) < 0)
        goto out;
    if (needs_encoding(clean) || !foldable(clean))
        rc = append_encoded_words(out, clean, strlen(clean));
    else
        rc = append_folded(out, clean);
    if (rc == 0)
        rc = buf_puts(out, "\r\n");
out:
    free(clean);
    return rc;
}

/* An RFC 5322 phrase that may stay as plain atoms: letters, digits, atext and spaces. */
static bool phrase_is_atoms(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL))
            return false;
    }
    return true;
}

int mime_header_mailbox(struct buf *out, const char *name, const struct address *a)
{
    char *clean = NULL;
    size_t addrlen;
    int rc;

    if ((rc = buf_puts(out, name)) < 0 || (rc = buf_puts(out, ": ")) < 0)
        return rc;
    if (a->display != NULL && a->display[0] != '\0') {
        const char *p;
        clean = sanitize_header_text(a->display, strlen(a->display));
        if (clean == NULL)
            return BLAST_ENOMEM;
        if (needs_encoding(clean)) {
            rc = append_encoded_words(out, clean, strlen(clean));
        } else if (phrase_is_atoms(clean)) {
            rc = append_folded(out, clean);
        } else {
            /* quoted-string (RFC 5322 §3.2.4) with " and \ escaped */
            rc = buf_putc(out, '"');
            for (p = clean; rc == 0 && *p != '\0'; p++) {
                if (*p == '"' || *p == '\\')
                    rc = buf_putc(out, '\\');
                if (rc == 0)
                    rc = buf_putc(out, *p);
            }
            if (rc == 0)
                rc = buf_putc(out, '"');
        }
        free(clean);
        if (rc < 0)
            return rc;
        /* keep "<addr>" whole: fold before it when it would overflow the line */
        addrlen = strlen(a->envelope) + 3;
        rc = buf_puts(out, current_column(out) + addrlen > MIME_LINE_SOFT ? "\r\n <" : " <");
        if (rc == 0)
            rc = buf_puts(out, a->envelope);
        if (rc == 0)
            rc = buf_putc(out, '>');
    } else {
        rc = buf_puts(out, a->envelope);
    }
    if (rc == 0)
        rc = buf_puts(out, "\r\n");
    return rc;
}

int mime_is_7bit_clean(const char *in, size_t len)
{
    size_t i, line = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80 || c == 0)
            return 0;
        if (c == '\r' && (i + 1 >= len || in[i + 1] != '\n'))
            return 0;
        if (c == '\n') {
            line = 0;
            continue;
        }
        if (c != '\r' && ++line > MIME_LINE_HARD)
            return 0;
    }
    return 1;
}

/*
 * RFC 2045 §6.7: printable ASCII other than '=' as is, everything else =XX, lines
 * at most 76 characters using soft breaks ("=" CRLF), whitespace before a line
 * end encoded (rule 3). Input line ends (CRLF or LF) become CRLF; a lone CR is data
 * and is encoded as =0D.
 */
int mime_qp_encode(struct buf *out, const char *in, size_t len)
{
    size_t i, col = 0;
    int rc;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char enc[3];
        size_t n;
        bool at_eol;

        if (c == '\n' || (c == '\r' && i + 1 < len && in[i + 1] == '\n')) {
            if (c == '\r')
                i++;
            if ((rc = buf_puts(out, "\r\n")) < 0)
                return rc;
            col = 0;
            continue;
        }
        at_eol = i + 1 >= len || in[i + 1] == '\n' ||
                 (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n');
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol)) {
            enc[0] = (char)c;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hexdigits[c >> 4];
            enc[2] = hexdigits[c & 15];
            n = 3;
        }
        /* leave room for the soft break's "=" within 76 columns */
        if (col + n > 75 && !(at_eol && col + n <= 76)) {
            if ((rc = buf_puts(out, "=\r\n")) < 0)
                return rc;
            col = 0;
        }
        if ((rc = buf_append(out, enc, n)) < 0)
            return rc;
        col += n;
    }
    return 0;
}

int mime_message_id(const char *domain, char *out, size_t size)
{
    unsigned char r[12];
    char hex[25];
    size_t i;
    int n;

    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* getrandom on Linux only fails before the pool is seeded; fall back to time */
        struct timeutil_stamp t = timeutil_now();
        for (i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)((t.usec >> (i % 4 * 8)) ^ (i * 131u) ^ (unsigned)t.sec);
    }
    for (i = 0; i < sizeof r; i++) {
        hex[2 * i] = "0123456789abcdef"[r[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
    }
    hex[24] = '\0';
    n = snprintf(out, size, "<%s.%lx@%s>", hex, (unsigned long)time(NULL), domain);
    return n > 0 && (size_t)n < size ? 0 : BLAST_EINVAL;
}

/* A boundary that occurs in none of the parts (RFC 2046 §5.1.1). */
static int make_boundary(char *out, size_t size, const struct mime_message *m)
{
    unsigned char r[12];
    size_t i, attempt;

    for (attempt = 0; attempt < 8; attempt++) {
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            for (i = 0; i < sizeof r; i++)
                r[i] = (unsigned char)(rand() & 0xFF);
        /* "=_" cannot appear in quoted-printable output, which encodes every "=" */
        i = (size_t)snprintf(out, size, "=_blast_");
        for (size_t k = 0; k < sizeof r && i + 2 < size; k++) {
            out[i++] = "0123456789abcdef"[r[k] >> 4];
            out[i++] = "0123456789abcdef"[r[k] & 15];
        }
        out[i] = '\0';
        if ((m->text == NULL || memmem(m->text, m->text_len, out, i) == NULL) &&
            (m->html == NULL || memmem(m->html, m->html_len, out, i) == NULL))
            return 0;
    }
    return BLAST_EINVAL;
}

/* Content-Type / Content-Transfer-Encoding headers and the encoded body of one part. */
static int append_part(struct buf *out, const char *type, const char *body, size_t len)
{
    int rc;
    bool clean = mime_is_7bit_clean(body, len);

    if ((rc = buf_printf(out, "Content-Type: %s; charset=utf-8\r\n", type)) < 0 ||
        (rc = buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n",
                         clean ? "7bit" : "quoted-printable")) < 0)
        return rc;
    if (clean) {
        /* 7bit text still needs CRLF line ends */
        size_t i, run = 0;
        for (i = 0; i < len; i++) {
            if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) {
                if ((rc = buf_append(out, body + run, i - run)) < 0 ||
                    (rc = buf_puts(out, "\r\n")) < 0)
                    return rc;
                run = i + 1;
            }
        }
        rc = buf_append(out, body + run, len - run);
    } else {
        rc = mime_qp_encode(out, body, len);
    }
    if (rc == 0 && (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0))
        rc = buf_puts(out, "\r\n");
    return rc;
}

int mime_build(const struct mime_message *m, struct buf *out, struct blast_error *err)
{
    char date[64], boundary[64];
    int rc;

    if (m->text == NULL && m->html == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "a message needs a body");
    timeutil_rfc5322(m->date, date, sizeof date);
    if ((rc = buf_printf(out, "Date: %s\r\n", date)) < 0 ||
        (rc = mime_header_mailbox(out, "From", m->from)) < 0 ||
        (rc = mime_header_mailbox(out, "To", m->to)) < 0 ||
        (rc = mime_header_text(out, "Subject", m->subject, m->subject_len)) < 0 ||
        (rc = buf_printf(out, "Message-ID: %s\r\n", m->message_id)) < 0 ||
        (m->reply_to != NULL && (rc = mime_header_mailbox(out, "Reply-To", m->reply_to)) < 0) ||
        (rc = buf_puts(out, "MIME-Version: 1.0\r\n")) < 0)
        goto out;
    if (m->text != NULL && m->html != NULL) {
        if (make_boundary(boundary, sizeof boundary, m) < 0) {
            rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                 "could not find a MIME boundary absent from the content");
            goto out;
        }
        /* RFC 2046 §5.1.4: the preferred (richest) alternative comes last */
        if ((rc = buf_printf(out,
                             "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n"
                             "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n",
                             boundary, boundary)) < 0 ||
            (rc = append_part(out, "text/plain", m->text, m->text_len)) < 0 ||
            (rc = buf_printf(out, "\r\n--%s\r\n", boundary)) < 0 ||
            (rc = append_part(out, "text/html", m->html, m->html_len)) < 0 ||
            (rc = buf_printf(out, "\r\n--%s--\r\n", boundary)) < 0)
            goto out;
    } else if (m->text != NULL) {
        rc = append_part(out, "text/plain", m->text, m->text_len);
    } else {
        rc = append_part(out, "text/html", m->html, m->html_len);
    }
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    return rc;
}
