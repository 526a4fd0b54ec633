/*
 * mime - build RFC 5322 / MIME messages. See mime.h.
 */
#include "mime.h"
#include "timeutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>
#include <unistd.h>

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

/* RFC 2047 §2: an encoded-word is at most 75 characters, 12 of them "=?UTF-8?B?" and "?=" */
#define WORD_MAX      75
#define WORD_OVERHEAD 12
/* The bytes a B word holds on a continuation line of its own: (75 - 12) / 4 * 3 */
#define B_LINE_BYTES 45

/* Bytes of the UTF-8 character at s, never past len. */
static size_t char_len(const char *s, size_t len)
{
    size_t n = utf8_len((unsigned char)s[0]);

    return n < len ? n : len;
}

/*
 * What Q-encoding may leave as it is: RFC 2047 §5(3) allows only these in a phrase,
 * and what a phrase allows, *text and parameter values allow too. A space is "_".
 */
static bool q_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
           c == '*' || c == '+' || c == '-' || c == '/' || c == ' ';
}

static size_t q_width(const char *s, size_t n)
{
    size_t i, w = 0;

    for (i = 0; i < n; i++)
        w += q_plain((unsigned char)s[i]) ? 1 : 3;
    return w;
}

/*
 * How many bytes of s the next B word takes, at most max: all of them when they fit
 * (the last word may end in padding); otherwise the longest run of whole characters
 * whose length is a multiple of 3, so that the word needs no padding. Readers such
 * as GMime decode adjacent B words as one base64 stream and stop at the first "=",
 * so padding is only ever at the end of the last word. 0 when no such run fits.
 */
static size_t b_take(const char *s, size_t len, size_t max)
{
    size_t n = 0, best = 0;

    if (len <= max)
        return len;
    while (n < len) {
        size_t c = char_len(s + n, len - n);
        if (n + c > max)
            break;
        n += c;
        if (n % 3 == 0)
            best = n;
    }
    return best;
}

/*
 * How many bytes of s the next Q word takes within room encoded characters: whole
 * characters, as many as fit, or with until_b only until a B word fits a line of
 * its own again. 0 when not even one character fits.
 */
static size_t q_take(const char *s, size_t len, size_t room, bool until_b)
{
    size_t n = 0, w = 0;

    while (n < len) {
        size_t c = char_len(s + n, len - n), cw = q_width(s + n, c);
        if (w + cw > room)
            break;
        n += c;
        w += cw;
        if (until_b && b_take(s + n, len - n, B_LINE_BYTES) > 0)
            break;
    }
    return n;
}

static int append_q(struct buf *out, const char *s, size_t n)
{
    size_t i;
    int rc = buf_puts(out, "=?UTF-8?Q?");

    for (i = 0; rc == 0 && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ')
            rc = buf_putc(out, '_');
        else if (q_plain(c))
            rc = buf_putc(out, (char)c);
        else
            rc = buf_printf(out, "=%c%c", hexdigits[c >> 4], hexdigits[c & 15]);
    }
    return rc == 0 ? buf_puts(out, "?=") : rc;
}

static int append_b(struct buf *out, const char *s, size_t n)
{
    int rc;

    if ((rc = buf_puts(out, "=?UTF-8?B?")) < 0 ||
        (rc = append_b64(out, (const unsigned char *)s, n)) < 0)
        return rc;
    return buf_puts(out, "?=");
}

/*
 * RFC 2047 encoded-words for s, from the current column of out, separated by folds
 * (which readers drop between encoded-words, §6.2). Every word holds whole UTF-8
 * characters (§5(3)) and at most 75 characters; lines stay within 78, with tail
 * characters left free after each word for what the caller writes next.
 *
 * The encoding: Q (§4.2) when s is ASCII or Q is no longer than B (mostly Latin
 * text: readable, and no "excess base64" for a spam filter to score), otherwise B.
 * A B word other than the last holds a multiple of 3 bytes, so it has no padding.
 * Where no character boundary within a word's limit falls on a multiple of 3 (a run
 * such as 2-, 2-, 4-, 2-, 4-byte characters never does), a Q word takes the next
 * one or two characters, after which a boundary comes within two characters.
 */
static int append_encoded_words(struct buf *out, const char *s, size_t len, size_t tail)
{
    size_t i, qlen = q_width(s, len);
    bool q = true;
    int rc;

    for (i = 0; i < len && q; i++)
        q = (unsigned char)s[i] < 0x80;
    q = q || qlen <= (len + 2) / 3 * 4;
    i = 0;
    while (i < len) {
        size_t col = current_column(out), room = 0, take;
        bool as_q = q;

        if (col + tail < MIME_LINE_SOFT)
            room = MIME_LINE_SOFT - col - tail;
        room = room > WORD_MAX        ? WORD_MAX - WORD_OVERHEAD
               : room > WORD_OVERHEAD ? room - WORD_OVERHEAD
                                      : 0;
        if (q) {
            take = q_take(s + i, len - i, room, false);
        } else {
            take = b_take(s + i, len - i, room / 4 * 3);
            if (take == 0 && (col <= 1 || b_take(s + i, len - i, B_LINE_BYTES) == 0)) {
                as_q = true;
                take = q_take(s + i, len - i, room, true);
            }
        }
        if (take == 0) {
            /* nothing fits after what the line holds: go on on a line of its own */
            if (col > 1) {
                if ((rc = buf_puts(out, "\r\n ")) < 0)
                    return rc;
                continue;
            }
            take = char_len(s + i, len - i); /* cannot happen: a character always fits */
        }
        if ((rc = as_q ? append_q(out, s + i, take) : append_b(out, s + i, take)) < 0)
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
        rc = append_encoded_words(out, clean, strlen(clean), 0);
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
            rc = append_encoded_words(out, clean, strlen(clean), 0);
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

/* Bytes that 7bit text may not hold, or that need a closer look: high bit, NUL, CR. */
static bool word_needs_look(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t cr = w ^ (ones * '\r');

    /* the classic "has a zero byte" test, on w and on w with CR turned into 0 */
    return ((w | ((w - ones) & ~w) | ((cr - ones) & ~cr)) & highs) != 0;
}

int mime_is_7bit_clean(const char *in, size_t len)
{
    size_t start = 0;

    while (start < len) {
        const char *nl = memchr(in + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - in) : len, i = start, n;

        n = end - start;
        if (n > 0 && in[end - 1] == '\r' && nl != NULL)
            n--; /* the CR of a CRLF */
        if (n > MIME_LINE_HARD)
            return 0;
        for (; i + 8 <= start + n; i += 8) {
            uint64_t w;
            memcpy(&w, in + i, 8);
            if (word_needs_look(w))
                break;
        }
        for (; i < start + n; i++) {
            unsigned char c = (unsigned char)in[i];
            if (c >= 0x80 || c == 0 || c == '\r')
                return 0;
        }
        start = end + 1;
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
    char *w;
    int rc;

    /* worst case: every byte =XX, plus a soft break every 25 of them */
    if ((rc = buf_reserve(out, len * 3 + (len / 25 + 1) * 3 + 2)) < 0)
        return rc;
    w = out->data + out->len;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        size_t n;
        bool at_eol, plain;

        if (c == '\n' || (c == '\r' && i + 1 < len && in[i + 1] == '\n')) {
            if (c == '\r')
                i++;
            *w++ = '\r';
            *w++ = '\n';
            col = 0;
            continue;
        }
        at_eol = i + 1 >= len || in[i + 1] == '\n' ||
                 (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n');
        plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        n = plain ? 1 : 3;
        /* leave room for the soft break's "=" within 76 columns */
        if (col + n > 75 && !(at_eol && col + n <= 76)) {
            *w++ = '=';
            *w++ = '\r';
            *w++ = '\n';
            col = 0;
        }
        if (plain) {
            *w++ = (char)c;
        } else {
            *w++ = '=';
            *w++ = hexdigits[c >> 4];
            *w++ = hexdigits[c & 15];
        }
        col += n;
    }
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

/*
 * The transfer encoding a text part needs: none, quoted-printable while few bytes
 * need escaping, base64 once quoted-printable would be the larger (about one byte
 * in five escaped: Cyrillic, Greek, CJK text).
 */
enum encoding { ENC_7BIT, ENC_QP, ENC_BASE64 };

static enum encoding text_encoding(const char *in, size_t len)
{
    size_t i, escaped = 0;

    if (mime_is_7bit_clean(in, len))
        return ENC_7BIT;
    for (i = 0; i < len; i++)
        escaped += (unsigned char)in[i] >= 0x80 || in[i] == '=';
    return escaped * 5 > len ? ENC_BASE64 : ENC_QP;
}

/*
 * Unique values for Message-IDs and boundaries without a system call each: a
 * 64-bit counter, started at a random point once per process, mixed by
 * SplitMix64 (a bijection, so two counts never give the same value). Another
 * process starts elsewhere in 2^64; the Message-ID adds the time as well.
 */
static _Atomic uint64_t unique_counter;
static pthread_once_t unique_once = PTHREAD_ONCE_INIT;

static void unique_seed(void)
{
    uint64_t seed;

    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        struct timeutil_stamp t = timeutil_now();
        seed = ((uint64_t)t.sec << 20) ^ (uint64_t)t.usec ^ ((uint64_t)getpid() << 40);
    }
    atomic_store(&unique_counter, seed);
}

static uint64_t unique64(void)
{
    uint64_t z;

    pthread_once(&unique_once, unique_seed);
    z = atomic_fetch_add(&unique_counter, 0x9E3779B97F4A7C15ULL) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int mime_message_id(const char *domain, char *out, size_t size)
{
    uint64_t a = unique64(), b = unique64();
    int n;

    n = snprintf(out, size, "<%016llx%08llx.%lx@%s>", (unsigned long long)a,
                 (unsigned long long)(b >> 32), (unsigned long)time(NULL), domain);
    return n > 0 && (size_t)n < size ? 0 : BLAST_EINVAL;
}

/* A boundary that occurs in none of the text parts (RFC 2046 §5.1.1). Base64 and
 * quoted-printable output can never hold "=_", so only 7bit text needs the search. */
static int make_boundary(char *out, size_t size, const struct mime_message *m)
{
    size_t i, attempt;

    for (attempt = 0; attempt < 8; attempt++) {
        uint64_t a = unique64(), b = unique64();
        int n = snprintf(out, size, "=_blast_%016llx%08llx", (unsigned long long)a,
                         (unsigned long long)(b >> 32));
        i = n > 0 ? (size_t)n : 0;
        if ((m->text == NULL || memmem(m->text, m->text_len, out, i) == NULL) &&
            (m->html == NULL || memmem(m->html, m->html_len, out, i) == NULL))
            return 0;
    }
    return BLAST_EINVAL;
}

/* Content-Type / Content-Transfer-Encoding headers and the encoded body of one text part. */
static int append_text_part(struct buf *out, const char *type, const char *body, size_t len)
{
    static const char *const names[] = {"7bit", "quoted-printable", "base64"};
    enum encoding enc = text_encoding(body, len);
    struct buf crlf = BUF_INIT;
    int rc;

    if ((rc = buf_printf(out, "Content-Type: %s; charset=utf-8\r\n", type)) < 0 ||
        (rc = buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", names[enc])) < 0)
        return rc;
    if (enc == ENC_QP) {
        rc = mime_qp_encode(out, body, len);
    } else {
        /* line ends become CRLF (RFC 2046 §4.1.1): in the text itself for 7bit, and
         * before encoding for base64, so the decoded text is canonical too */
        size_t run = 0;
        struct buf *dst = enc == ENC_7BIT ? out : &crlf;
        if ((rc = buf_reserve(dst, len + len / 32 + 2)) < 0)
            return rc;
        while (rc == 0 && run < len) {
            const char *nl = memchr(body + run, '\n', len - run);
            size_t i = nl != NULL ? (size_t)(nl - body) : len;
            if (nl == NULL || (i > 0 && body[i - 1] == '\r')) {
                rc = buf_append(dst, body + run, (nl != NULL ? i + 1 : len) - run);
            } else if ((rc = buf_append(dst, body + run, i - run)) == 0) {
                rc = buf_puts(dst, "\r\n");
            }
            run = nl != NULL ? i + 1 : len;
        }
        if (rc == 0 && enc == ENC_BASE64)
            rc = mime_base64_lines(out, crlf.data, crlf.len);
        buf_free(&crlf);
    }
    if (rc == 0 && (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0))
        rc = buf_puts(out, "\r\n");
    return rc;
}

/* RFC 2231 §7: what an extended parameter value holds as it is (attribute-char) */
static bool attribute_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* RFC 2231 §4: bytes outside attribute-char as "%" and two upper-case hex digits (§7). */
static int append_pct(struct buf *out, const char *s, size_t n)
{
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (attribute_char(c))
            rc = buf_putc(out, (char)c);
        else
            rc = buf_printf(out, "%%%c%c", hexdigits[c >> 4], hexdigits[c & 15]);
    }
    return rc;
}

/*
 * A file name parameter on a line of its own. A printable ASCII name is a quoted
 * string (RFC 2045 §5.1). Any other name (not ASCII, control characters, or text
 * that a reader would take for an encoded-word) is, for filename, the RFC 2231
 * form: "filename*=utf-8''%XX..." on one line, or continued over lines of at most
 * 78 characters as "filename*0*=utf-8''...", "filename*1*=..." (§3, §4), split only
 * between whole characters so no piece holds part of one. For name (Content-Type),
 * with words, it is the form older readers know: RFC 2047 encoded-words inside the
 * quoted string, as Thunderbird writes it; the two give a reader the same name
 * whichever it reads. Except for a name holding "=?": GMime decodes the text of an
 * encoded-word in a parameter once more, so such a name is RFC 2231 in both.
 */
static int append_filename(struct buf *out, const char *param, const char *value, bool words)
{
    const unsigned char *p;
    size_t len = strlen(value), i, seg = 0, width = 0, head;
    bool lookalike = strstr(value, "=?") != NULL, plain = !lookalike;
    int rc;

    for (p = (const unsigned char *)value; *p != '\0' && plain; p++)
        plain = *p >= 0x20 && *p < 0x7F;
    if (plain || (words && !lookalike)) {
        if ((rc = buf_printf(out, ";\r\n %s=\"", param)) < 0)
            return rc;
        if (!plain) {
            /* the closing quote and a ';' or the line end follow the last word */
            if ((rc = append_encoded_words(out, value, len, 2)) < 0)
                return rc;
            return buf_putc(out, '"');
        }
        for (p = (const unsigned char *)value; *p != '\0'; p++)
            if ((*p == '"' || *p == '\\')
                    ? (rc = buf_putc(out, '\\')) < 0 || (rc = buf_putc(out, (char)*p)) < 0
                    : (rc = buf_putc(out, (char)*p)) < 0)
                return rc;
        return buf_putc(out, '"');
    }
    for (i = 0; i < len; i++)
        width += attribute_char((unsigned char)value[i]) ? 1 : 3;
    /* " filename*=utf-8''" + the value + ';' on one line */
    if (strlen(param) + width + 11 <= MIME_LINE_SOFT) {
        if ((rc = buf_printf(out, ";\r\n %s*=utf-8''", param)) < 0)
            return rc;
        return append_pct(out, value, len);
    }
    i = 0;
    while (i < len) {
        size_t n = 0, w = 0;
        if ((rc = buf_printf(out, ";\r\n %s*%zu*=%s", param, seg, seg == 0 ? "utf-8''" : "")) < 0)
            return rc;
        head = current_column(out);
        while (i + n < len) {
            size_t c = char_len(value + i + n, len - i - n), k, cw = 0;
            for (k = 0; k < c; k++)
                cw += attribute_char((unsigned char)value[i + n + k]) ? 1 : 3;
            /* the ';' after the piece stays within the line too; a piece holds at least one */
            if (n > 0 && head + w + cw + 1 > MIME_LINE_SOFT)
                break;
            n += c;
            w += cw;
        }
        if ((rc = append_pct(out, value + i, n)) < 0)
            return rc;
        i += n;
        seg++;
    }
    return 0;
}

static int append_file_part(struct buf *out, const struct mime_part *p)
{
    int rc;

    if ((rc = buf_printf(out, "Content-Type: %s", p->content_type)) < 0 ||
        (rc = append_filename(out, "name", p->filename, true)) < 0 ||
        (rc = buf_puts(out, "\r\nContent-Transfer-Encoding: base64\r\n")) < 0)
        return rc;
    if (p->cid != NULL) {
        /* RFC 2392: cid:NAME in the HTML matches Content-ID: <NAME> */
        if ((rc = buf_printf(out, "Content-ID: <%s>\r\nContent-Disposition: inline", p->cid)) < 0)
            return rc;
    } else if ((rc = buf_puts(out, "Content-Disposition: attachment")) < 0) {
        return rc;
    }
    if ((rc = append_filename(out, "filename", p->filename, false)) < 0 ||
        (rc = buf_puts(out, "\r\n\r\n")) < 0)
        return rc;
    return buf_append(out, p->body, p->len);
}

static int multipart_head(struct buf *out, const char *subtype, const char *boundary, int level,
                          bool preamble)
{
    return buf_printf(out, "Content-Type: multipart/%s;\r\n boundary=\"%s%d\"\r\n\r\n%s--%s%d\r\n",
                      subtype, boundary, level,
                      preamble ? "This is a multi-part message in MIME format.\r\n\r\n" : "",
                      boundary, level);
}

/*
 * The HTML body with its inline images: multipart/related (RFC 2387) when there
 * are any, the bare HTML part otherwise.
 */
static int append_html(struct buf *out, const struct mime_message *m, const char *boundary,
                       int level)
{
    size_t i;
    int rc;

    if (m->ninline == 0)
        return append_text_part(out, "text/html", m->html, m->html_len);
    if ((rc = buf_printf(out,
                         "Content-Type: multipart/related;\r\n type=\"text/html\";\r\n"
                         " boundary=\"%s%d\"\r\n\r\n--%s%d\r\n",
                         boundary, level, boundary, level)) < 0 ||
        (rc = append_text_part(out, "text/html", m->html, m->html_len)) < 0)
        return rc;
    for (i = 0; i < m->ninline; i++)
        if ((rc = buf_printf(out, "\r\n--%s%d\r\n", boundary, level)) < 0 ||
            (rc = append_file_part(out, &m->inline_parts[i])) < 0)
            return rc;
    return buf_printf(out, "\r\n--%s%d--\r\n", boundary, level);
}

/* Text, HTML, or both as multipart/alternative (RFC 2046 §5.1.4: the richest last). */
static int append_body(struct buf *out, const struct mime_message *m, const char *boundary,
                       int level, bool preamble)
{
    int rc;

    if (m->text != NULL && m->html != NULL) {
        if ((rc = multipart_head(out, "alternative", boundary, level, preamble)) < 0 ||
            (rc = append_text_part(out, "text/plain", m->text, m->text_len)) < 0 ||
            (rc = buf_printf(out, "\r\n--%s%d\r\n", boundary, level)) < 0 ||
            (rc = append_html(out, m, boundary, level + 1)) < 0)
            return rc;
        return buf_printf(out, "\r\n--%s%d--\r\n", boundary, level);
    }
    if (m->text != NULL)
        return append_text_part(out, "text/plain", m->text, m->text_len);
    return append_html(out, m, boundary, level + 1);
}

static int append_list_headers(struct buf *out, const struct mime_message *m)
{
    int rc;

    /* a mailing list's fields come together: List-Unsubscribe without List-Id is what
     * SpamAssassin's __LIST_PARTIAL calls incomplete */
    if (m->list_id != NULL && (rc = buf_printf(out, "List-Id: %s\r\n", m->list_id)) < 0)
        return rc;
    if (m->list_unsubscribe != NULL) {
        /* the value is built by the caller from URIs it checked: printable ASCII */
        const char *comma = strstr(m->list_unsubscribe, ">, <");
        if (comma != NULL && strlen(m->list_unsubscribe) + 18 > MIME_LINE_SOFT)
            rc = buf_printf(out, "List-Unsubscribe: %.*s,\r\n %s\r\n",
                            (int)(comma - m->list_unsubscribe + 1), m->list_unsubscribe, comma + 3);
        else
            rc = buf_printf(out, "List-Unsubscribe: %s\r\n", m->list_unsubscribe);
        if (rc < 0)
            return rc;
        if (m->one_click &&
            (rc = buf_puts(out, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")) < 0)
            return rc;
    }
    if (m->feedback_id != NULL &&
        (rc = mime_header_text(out, "Feedback-ID", m->feedback_id, m->feedback_id_len)) < 0)
        return rc;
    return 0;
}

int mime_build(const struct mime_message *m, struct buf *out, struct blast_error *err)
{
    char date[64], boundary[64];
    size_t i;
    int rc;

    if (m->text == NULL && m->html == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "a message needs a body");
    if (m->ninline > 0 && m->html == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "inline parts need an HTML body");
    timeutil_rfc5322(m->date, date, sizeof date);
    if ((rc = buf_printf(out, "Date: %s\r\n", date)) < 0 ||
        (rc = mime_header_mailbox(out, "From", m->from)) < 0 ||
        (rc = mime_header_mailbox(out, "To", m->to)) < 0 ||
        (rc = mime_header_text(out, "Subject", m->subject, m->subject_len)) < 0 ||
        (rc = buf_printf(out, "Message-ID: %s\r\n", m->message_id)) < 0 ||
        (m->reply_to != NULL && (rc = mime_header_mailbox(out, "Reply-To", m->reply_to)) < 0) ||
        (rc = append_list_headers(out, m)) < 0)
        goto out;
    for (i = 0; i < m->nheaders; i++)
        if ((rc = mime_header_text(out, m->headers[i].name, m->headers[i].value,
                                   m->headers[i].len)) < 0)
            goto out;
    if ((rc = buf_puts(out, "MIME-Version: 1.0\r\n")) < 0)
        goto out;
    if (make_boundary(boundary, sizeof boundary, m) < 0) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                             "could not find a MIME boundary absent from the content");
        goto out;
    }
    strncat(boundary, "_", sizeof boundary - strlen(boundary) - 1);
    if (m->nattachments == 0) {
        rc = append_body(out, m, boundary, 1, true);
        goto out;
    }
    if ((rc = multipart_head(out, "mixed", boundary, 0, true)) < 0 ||
        (rc = append_body(out, m, boundary, 1, false)) < 0)
        goto out;
    for (i = 0; i < m->nattachments; i++)
        if ((rc = buf_printf(out, "\r\n--%s0\r\n", boundary)) < 0 ||
            (rc = append_file_part(out, &m->attachments[i])) < 0)
            goto out;
    rc = buf_printf(out, "\r\n--%s0--\r\n", boundary);
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    return rc;
}

int mime_base64_lines(struct buf *out, const void *data, size_t len)
{
    const unsigned char *in = data;
    size_t i, col = 0;
    char *w;
    int rc;

    /* 57 input bytes make one 76-character line */
    if ((rc = buf_reserve(out, (len + 2) / 3 * 4 + (len / 57 + 1) * 2)) < 0)
        return rc;
    w = out->data + out->len;
    for (i = 0; i + 2 < len; i += 3) {
        *w++ = b64chars[in[i] >> 2];
        *w++ = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *w++ = b64chars[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *w++ = b64chars[in[i + 2] & 63];
        if (++col == 19) {
            *w++ = '\r';
            *w++ = '\n';
            col = 0;
        }
    }
    if (i < len) {
        *w++ = b64chars[in[i] >> 2];
        if (i + 1 < len) {
            *w++ = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *w++ = b64chars[(in[i + 1] & 15) << 2];
        } else {
            *w++ = b64chars[(in[i] & 3) << 4];
            *w++ = '=';
        }
        *w++ = '=';
        col++;
    }
    if (col > 0) {
        *w++ = '\r';
        *w++ = '\n';
    }
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"svg", "image/svg+xml"},
    {"ico", "image/vnd.microsoft.icon"},
    {"txt", "text/plain"},
    {"csv", "text/csv"},
    {"html", "text/html"},
    {"htm", "text/html"},
    {"ics", "text/calendar"},
    {"vcf", "text/vcard"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
};

const char *mime_content_type(const char *filename)
{
    const char *dot = strrchr(filename, '.');
    size_t i;

    if (dot != NULL && strchr(dot, '/') == NULL)
        for (i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

int mime_part_load(const char *path, const char *filename, const char *content_type,
                   const char *cid, struct mime_part *out, struct blast_error *err)
{
    struct buf raw = BUF_INIT, enc = BUF_INIT;
    int rc;

    memset(out, 0, sizeof *out);
    rc = buf_read_file(&raw, path, err);
    if (rc == 0 && (rc = mime_base64_lines(&enc, raw.data, raw.len)) == 0) {
        out->size = raw.len;
        out->len = enc.len;
        out->body = buf_steal(&enc);
        out->filename = strdup(filename);
        out->content_type =
            strdup(content_type != NULL ? content_type : mime_content_type(filename));
        out->cid = cid != NULL ? strdup(cid) : NULL;
        if (out->body == NULL || out->filename == NULL || out->content_type == NULL ||
            (cid != NULL && out->cid == NULL))
            rc = BLAST_ENOMEM;
    }
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, path, 0, 0, "out of memory");
    buf_free(&raw);
    buf_free(&enc);
    if (rc < 0)
        mime_part_free(out);
    return rc;
}

void mime_part_free(struct mime_part *p)
{
    if (p == NULL)
        return;
    free(p->filename);
    free(p->content_type);
    free(p->cid);
    free(p->body);
    memset(p, 0, sizeof *p);
}
