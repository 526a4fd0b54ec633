/*
 * test_mime - header fields (folding, RFC 2047 encoded words, injection), mailbox
 * headers, quoted-printable bodies, the transfer encoding each text part gets
 * (7bit, quoted-printable, or base64 for mostly non-ASCII text), base64 in lines of
 * 76, content types from file names, file parts and their names (quoted, or RFC
 * 2231 for UTF-8), the multipart trees (mixed for attachments, alternative for text
 * and HTML, related for inline parts), the list and custom header fields, and the
 * CRLF discipline of whole messages. Encoded words, quoted-printable, base64 and
 * the MIME structure are read back here (mime_parse.h), independently of mime.c,
 * and compared with the original text and bytes.
 */
#include "../../core/mime.h"
#include "../../core/text.h"
#include "../../core/timeutil.h"
#include "mime_parse.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- independent decoders ------------------------------------------------------------ */

static int b64_value(char c)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

    return p != NULL ? (int)(p - alphabet) : -1;
}

/* Strict base64 (RFC 4648 §4, padded) of in[0..len) appended to out. */
static void b64_decode(const char *in, size_t len, struct buf *out)
{
    size_t i;

    cr_assert_eq(len % 4, 0, "base64 length %zu is not a multiple of 4", len);
    for (i = 0; i < len; i += 4) {
        int a = b64_value(in[i]), b = b64_value(in[i + 1]);
        int c = in[i + 2] == '=' ? 0 : b64_value(in[i + 2]);
        int d = in[i + 3] == '=' ? 0 : b64_value(in[i + 3]);
        unsigned v;

        cr_assert(a >= 0 && b >= 0 && c >= 0 && d >= 0, "bad base64 '%.*s'", 4, in + i);
        cr_assert(in[i + 2] != '=' || in[i + 3] == '=', "bad padding");
        cr_assert(i + 4 == len || (in[i + 2] != '=' && in[i + 3] != '='), "padding inside");
        v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        buf_putc(out, (char)(v >> 16));
        if (in[i + 2] != '=')
            buf_putc(out, (char)(v >> 8 & 0xFF));
        if (in[i + 3] != '=')
            buf_putc(out, (char)(v & 0xFF));
    }
}

/*
 * Unfold one header field (RFC 5322 §2.2.3: remove each CRLF before WSP) and
 * return its value after "Name: ". The field must be the whole of h.
 */
static void unfold(const char *h, const char *name, struct buf *value)
{
    size_t n = strlen(name), len = strlen(h), i;

    cr_assert_eq(strncmp(h, name, n), 0, "field does not start with %s: %s", name, h);
    cr_assert_eq(strncmp(h + n, ": ", 2), 0);
    cr_assert_geq(len, 2);
    cr_assert_eq(strcmp(h + len - 2, "\r\n"), 0, "the field ends in CRLF");
    buf_init(value);
    for (i = n + 2; i < len - 2; i++) {
        if (h[i] == '\r') {
            cr_assert_eq(h[i + 1], '\n', "bare CR in %s", h);
            cr_assert(h[i + 2] == ' ' || h[i + 2] == '\t', "CRLF not followed by WSP: %s", h);
            i++;
            continue;
        }
        cr_assert_neq(h[i], '\n', "bare LF in %s", h);
        buf_putc(value, h[i]);
    }
    buf_puts(value, "");
}

/* RFC 2047 §4.2 Q decoding of text[0..len) appended to out; only the characters §5(3)
 * allows in a phrase may stand as they are. */
static void q_decode(const char *text, size_t len, struct buf *out)
{
    size_t i;

    for (i = 0; i < len; i++) {
        char c = text[i];
        if (c == '_') {
            buf_putc(out, ' ');
        } else if (c == '=') {
            int hi = i + 2 < len ? mp_hex(text[i + 1]) : -1,
                lo = hi >= 0 ? mp_hex(text[i + 2]) : -1;
            cr_assert(hi >= 0 && lo >= 0, "bad =XX in '%.*s'", (int)len, text);
            cr_assert(text[i + 1] < 'a' && text[i + 2] < 'a', "lower-case hex in Q");
            buf_putc(out, (char)(hi << 4 | lo));
            i += 2;
        } else {
            cr_assert((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          strchr("!*+-/", c) != NULL,
                      "'%c' may not stand as it is in a Q word", c);
            buf_putc(out, c);
        }
    }
}

/* What decode_words saw: the words' encodings and decoded lengths, in order. */
struct words {
    size_t n;
    char enc[64];     /* 'B' or 'Q' */
    size_t chars[64]; /* UTF-8 characters in each */
};

static size_t utf8_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/*
 * Decode an unfolded value made of RFC 2047 encoded-words (B or Q) separated by
 * linear whitespace (which §6.2 says to drop between words), and check the rules
 * of their making: every word is at most 75 characters, decodes to whole UTF-8
 * characters, and only the last B word may end in base64 padding (readers such as
 * GMime decode adjacent words as one base64 stream and stop at the first "=").
 */
static void decode_words_into(const char *v, struct buf *out, struct words *w)
{
    const char *p = v;

    buf_init(out);
    w->n = 0;
    while (*p != '\0') {
        const char *start, *end;
        struct buf part = BUF_INIT;
        char enc;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        cr_assert(strncmp(p, "=?UTF-8?B?", 10) == 0 || strncmp(p, "=?UTF-8?Q?", 10) == 0,
                  "not an encoded word at '%s'", p);
        enc = p[8];
        start = p + 10;
        end = strstr(start, "?=");
        cr_assert_not_null(end, "unterminated encoded word");
        cr_assert_leq((size_t)(end + 2 - p), 75, "encoded word of %zu characters",
                      (size_t)(end + 2 - p));
        if (enc == 'B') {
            cr_assert_lt(w->n, 64);
            /* a padded B word is the last of the value */
            if (memchr(start, '=', (size_t)(end - start)) != NULL)
                cr_assert_eq(end[2], '\0', "a padded B word before the last: '%s'", v);
            b64_decode(start, (size_t)(end - start), &part);
        } else {
            q_decode(start, (size_t)(end - start), &part);
        }
        cr_assert(text_utf8_valid(part.data, part.len), "a word splits a UTF-8 character: '%s'", v);
        if (w->n < 64) {
            w->enc[w->n] = enc;
            w->chars[w->n] = utf8_chars(part.data, part.len);
        }
        w->n++;
        buf_append(out, part.data, part.len);
        buf_free(&part);
        p = end + 2;
    }
    buf_puts(out, "");
    cr_assert_gt(w->n, 0);
}

static void decode_words(const char *v, struct buf *out)
{
    struct words w;

    decode_words_into(v, out, &w);
}

/* Every line of h (CRLF-separated) is at most max characters. */
static void assert_lines_at_most(const char *h, size_t max)
{
    const char *p = h, *eol;

    while ((eol = strstr(p, "\r\n")) != NULL) {
        cr_assert_leq((size_t)(eol - p), max, "line of %zu characters: '%.*s'", (size_t)(eol - p),
                      (int)(eol - p), p);
        p = eol + 2;
    }
    cr_assert_leq(strlen(p), max);
}

/* No bare CR, no bare LF, and (unless empty) the text ends in CRLF. */
static void assert_crlf_only(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] == '\r')
            cr_assert(i + 1 < len && s[i + 1] == '\n', "bare CR at byte %zu", i);
        if (s[i] == '\n')
            cr_assert(i > 0 && s[i - 1] == '\r', "bare LF at byte %zu", i);
    }
    if (len > 0)
        cr_assert(len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n', "does not end in CRLF");
}

/* Lines after the first that start a new field (not a continuation). */
static int field_starts(const char *h)
{
    const char *p = h;
    int n = 1;

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (*p != '\0' && *p != ' ' && *p != '\t')
            n++;
    }
    return n;
}

static void header_text(const char *name, const char *value, struct buf *out)
{
    buf_init(out);
    cr_assert_eq(mime_header_text(out, name, value, strlen(value)), 0);
    cr_assert_not_null(out->data);
}

/* ---- mime_header_text ---------------------------------------------------------------- */

Test(mime, short_ascii_subject_is_copied)
{
    struct buf h;

    header_text("Subject", "Your November update", &h);
    cr_assert_str_eq(h.data, "Subject: Your November update\r\n");
    buf_free(&h);
}

Test(mime, long_ascii_subject_is_folded_at_spaces)
{
    static const char value[] =
        "This is a rather long subject line that goes on and on, well past the seventy-eight "
        "characters that RFC 5322 recommends, so that it must be folded more than once to fit";
    struct buf h, v;

    header_text("Subject", value, &h);
    cr_assert_eq(field_starts(h.data), 1, "folding never starts a new field");
    assert_lines_at_most(h.data, MIME_LINE_SOFT);
    cr_assert_not_null(strstr(h.data, "\r\n "), "the value was folded");
    unfold(h.data, "Subject", &v);
    cr_assert_str_eq(v.data, value, "unfolding gives the value back");
    buf_free(&v);
    buf_free(&h);
}

/*
 * The value a reader gets back from one header field: unfolded, and decoded when
 * it is made of encoded words.
 */
static void value_of(const char *h, const char *name, struct buf *out)
{
    struct buf v;

    unfold(h, name, &v);
    if (strncmp(v.data, "=?UTF-8?", 8) == 0) {
        decode_words(v.data, out);
        buf_free(&v);
    } else {
        *out = v;
    }
}

Test(mime, folding_never_makes_a_whitespace_only_line)
{
    /* RFC 5322 §3.2.2: FWS is WSP before and after one CRLF and is followed by text; a
     * folded line of nothing but white space is not a header line */
    char value[300], shown[1024] = "";
    struct buf h, v;
    const char *p;
    bool blank = false, same;

    memset(value, ' ', sizeof value);
    value[0] = 'a';
    value[sizeof value - 2] = 'b';
    value[sizeof value - 1] = '\0';
    header_text("Subject", value, &h);
    for (p = h.data; (p = strstr(p, "\r\n")) != NULL && p[2] != '\0'; p += 2) {
        const char *next = strstr(p + 2, "\r\n");
        if (next != NULL && p + 2 + strspn(p + 2, " \t") >= next)
            blank = true;
    }
    snprintf(shown, sizeof shown, "%s", h.data);
    value_of(h.data, "Subject", &v);
    same = strcmp(v.data, value) == 0;
    buf_free(&v);
    buf_free(&h);
    cr_assert(same, "a reader gets the value back:\n%s", shown);
    cr_assert_not(blank, "a continuation line of only white space:\n%s", shown);
}

Test(mime, runs_of_spaces_are_kept_by_encoded_words)
{
    /* folding may only happen at a single space; a run of them is carried exactly */
    static const char value[] = "two  spaces";
    struct buf h, v;

    header_text("Subject", value, &h);
    cr_assert_str_eq(h.data, "Subject: =?UTF-8?Q?two__spaces?=\r\n", "ASCII is Q-encoded");
    value_of(h.data, "Subject", &v);
    cr_assert_str_eq(v.data, value);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, long_ascii_word_without_spaces_is_kept_whole)
{
    /* a word too long to fit a line cannot be folded: encoded words carry it exactly,
     * within the recommended line length */
    char value[200];
    struct buf h, v;

    memset(value, 'x', 150);
    value[150] = '\0';
    header_text("Subject", value, &h);
    assert_lines_at_most(h.data, MIME_LINE_SOFT);
    cr_assert_eq(field_starts(h.data), 1);
    value_of(h.data, "Subject", &v);
    cr_assert_str_eq(v.data, value);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, non_ascii_subject_becomes_encoded_words)
{
    static const char value[] = "René, your update from Zürich";
    struct buf h, v, d;

    header_text("Subject", value, &h);
    cr_assert_eq(strncmp(h.data, "Subject: =?UTF-8?", 17), 0, "%s", h.data);
    for (size_t i = 0; i < h.len; i++)
        cr_assert_lt((unsigned char)h.data[i], 0x80, "the header is ASCII");
    unfold(h.data, "Subject", &v);
    decode_words(v.data, &d);
    cr_assert_str_eq(d.data, value);
    buf_free(&d);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, known_encoded_word)
{
    struct buf h;

    /* base64("Café") = "Q2Fmw6k=" */
    header_text("Subject", "Café", &h);
    cr_assert_str_eq(h.data, "Subject: =?UTF-8?B?Q2Fmw6k=?=\r\n");
    buf_free(&h);
}

Test(mime, long_non_ascii_subject_splits_into_short_words_and_lines)
{
    /* Cyrillic (2 bytes), CJK (3 bytes) and emoji (4 bytes): splits must fall between them */
    static const char value[] = "Здравствуйте, дорогой читатель! Вот ваши новости за ноябрь 😀🎉 "
                                "日本語のテキストも含まれています。 Ελληνικά κείμενα επίσης. "
                                "Und noch ein bisschen Deutsch: Grüße aus Köln 🌍 — fin.";
    struct buf h, v, d;
    const char *p;
    int words = 0;

    header_text("Subject", value, &h);
    assert_lines_at_most(h.data, MIME_LINE_SOFT);
    cr_assert_eq(field_starts(h.data), 1);
    for (p = h.data; (p = strstr(p, "=?UTF-8?B?")) != NULL; p++)
        words++;
    cr_assert_gt(words, 3, "a long value takes several words");
    unfold(h.data, "Subject", &v);
    decode_words(v.data, &d);
    cr_assert_str_eq(d.data, value);
    buf_free(&d);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, encoded_words_fit_after_a_long_field_name)
{
    static const char value[] = "Grüße aus Köln und Zürich und überall sonst auf der Welt";
    struct buf h, v, d;

    header_text("X-A-Very-Long-Header-Field-Name-That-Takes-Most-Of-The-Line-Already", value, &h);
    assert_lines_at_most(h.data, MIME_LINE_SOFT);
    unfold(h.data, "X-A-Very-Long-Header-Field-Name-That-Takes-Most-Of-The-Line-Already", &v);
    decode_words(v.data, &d);
    cr_assert_str_eq(d.data, value);
    buf_free(&d);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, text_that_looks_encoded_is_encoded)
{
    static const char value[] = "Plain ASCII with =?UTF-8?B?SGk=?= inside";
    struct buf h, v, d;

    header_text("Subject", value, &h);
    unfold(h.data, "Subject", &v);
    decode_words(v.data, &d);
    cr_assert_str_eq(d.data, value, "a reader decoding words gets the literal text back");
    buf_free(&d);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, crlf_in_a_subject_never_starts_a_header)
{
    static const char nul[] = "Hello\r\n\0Bcc:\x1f\x7f victim@example.net";
    static const char *const values[] = {
        "Hello\r\nBcc: victim@example.net",
        "Hello\nBcc: victim@example.net",
        "Hello\rBcc: victim@example.net",
        "Héllo\r\nBcc: victim@example.net",
        "Hello\r\n\r\nbody injected",
        "\r\nBcc: victim@example.net",
        nul,
    };
    size_t i;

    for (i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct buf h;
        size_t len = values[i] == nul ? sizeof nul - 1 : strlen(values[i]);

        buf_init(&h);
        cr_assert_eq(mime_header_text(&h, "Subject", values[i], len), 0);
        assert_crlf_only(h.data, h.len);
        cr_assert_eq(field_starts(h.data), 1, "case %zu: %s", i, h.data);
        cr_assert_null(strstr(h.data, "\r\nBcc:"), "case %zu", i);
        cr_assert_null(strstr(h.data, "\r\n\r\n"), "case %zu", i);
        cr_assert_eq(memchr(h.data, '\0', h.len), NULL, "case %zu: NUL in the header", i);
        for (size_t k = 0; k < h.len; k++)
            if (h.data[k] != '\r' && h.data[k] != '\n')
                cr_assert((unsigned char)h.data[k] >= 0x20 && h.data[k] != 0x7f,
                          "case %zu: control character 0x%02x", i, (unsigned char)h.data[k]);
        buf_free(&h);
    }
}

Test(mime, control_characters_become_spaces)
{
    struct buf h;

    /* a CRLF becomes one space, as when a folded line is unfolded */
    header_text("Subject", "a\tb\r\nc\001d\ne\rf\177g", &h);
    cr_assert_str_eq(h.data, "Subject: a b c d e f g\r\n");
    buf_free(&h);
}

/* ---- how encoded-words are split ------------------------------------------------------ */

static void mailbox(const char *text, struct address *a);
static void header_mailbox(const char *name, const char *mbox, struct buf *out);

/* A small deterministic generator, so a failing case can be run again. */
static unsigned long long rng_state = 0x2545F4914F6CDD1DULL;

static unsigned rng(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* One character of each UTF-8 length, and a combining mark (U+0301, 2 bytes). */
static const char *const sample_chars[] = {"a", " ", "é", "ж", "\xcc\x81", "中", "ー", "😀", "🎉"};

static void random_text(char *out, size_t size, size_t chars, const unsigned *pick, size_t npick)
{
    size_t used = 0, i;

    out[0] = '\0';
    for (i = 0; i < chars; i++) {
        const char *c = sample_chars[pick[rng((unsigned)npick)]];
        if (used + strlen(c) + 1 > size)
            break;
        memcpy(out + used, c, strlen(c) + 1);
        used += strlen(c);
    }
    /* sanitizing drops spaces at the ends: keep the value as it will be written */
    while (used > 0 && out[used - 1] == ' ')
        out[--used] = '\0';
    if (out[0] == ' ')
        out[0] = 'a';
}

/*
 * Write value in a field named name (or as the display name of a mailbox), and check
 * what a reader gets back and how the words were made; returns what decode saw.
 */
static void check_field(const char *name, const char *value, bool as_mailbox, struct words *w)
{
    struct buf h, v, d;

    buf_init(&h);
    if (as_mailbox) {
        struct address a;
        char text[2048];
        snprintf(text, sizeof text, "\"%s\" <ada@example.com>", value);
        mailbox(text, &a);
        cr_assert_eq(mime_header_mailbox(&h, name, &a), 0);
        address_free(&a);
    } else {
        cr_assert_eq(mime_header_text(&h, name, value, strlen(value)), 0);
    }
    assert_lines_at_most(h.data, MIME_LINE_SOFT);
    assert_crlf_only(h.data, h.len);
    cr_assert_eq(field_starts(h.data), 1);
    unfold(h.data, name, &v);
    if (as_mailbox) {
        char *lt = strrchr(v.data, '<');
        cr_assert_not_null(lt);
        cr_assert_str_eq(lt, "<ada@example.com>");
        lt[lt > v.data && lt[-1] == ' ' ? -1 : 0] = '\0';
    }
    decode_words_into(v.data, &d, w);
    cr_assert_str_eq(d.data, value, "%s", h.data);
    buf_free(&d);
    buf_free(&v);
    buf_free(&h);
}

Test(mime, latin_text_is_q_encoded_and_the_rest_b_encoded)
{
    struct buf h;

    header_text("Subject", "René Descartes", &h);
    cr_assert_str_eq(h.data, "Subject: =?UTF-8?Q?Ren=C3=A9_Descartes?=\r\n",
                     "Q when it is no longer than B");
    buf_free(&h);
    /* base64("Привет") */
    header_text("Subject", "Привет", &h);
    cr_assert_str_eq(h.data, "Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?=\r\n");
    buf_free(&h);
    /* ASCII that must be encoded is Q, never "excess base64" */
    header_mailbox("From", "\"=?UTF-8?B?QWRh?= Team\" <news@acme.example>", &h);
    cr_assert_str_eq(h.data, "From: =?UTF-8?Q?=3D=3FUTF-8=3FB=3FQWRh=3F=3D_Team?= "
                             "<news@acme.example>\r\n");
    buf_free(&h);
}

Test(mime, no_character_boundary_on_a_multiple_of_three_takes_a_short_q_word)
{
    /* 2-, 2-, then 4- and 2-byte characters in turn: running byte counts 2, 4, 8, 10,
     * 14... are never a multiple of 3, so the first character goes in a Q word */
    char value[512] = "жж";
    struct buf h;
    int i;

    for (i = 0; i < 30; i++)
        strncat(value, "😀ж", sizeof value - strlen(value) - 1);
    header_text("Subject", value, &h);
    cr_assert_eq(strncmp(h.data, "Subject: =?UTF-8?Q?=D0=B6?=\r\n =?UTF-8?B?", 40), 0, "%s",
                 h.data);
    buf_free(&h);
}

Test(mime, every_word_but_the_last_is_unpadded_and_holds_whole_characters)
{
    /* all 2-byte, all 3-byte, all 4-byte, 2 then 3-byte runs, combining marks, ASCII
     * and emoji, and random mixes; after field names of every length */
    static const unsigned all2[] = {2, 3}, all3[] = {5, 6}, all4[] = {7, 8}, marks[] = {0, 4},
                          mix24[] = {2, 7}, mix[] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    static const struct {
        const unsigned *pick;
        size_t n;
    } kinds[] = {{all2, 2}, {all3, 2}, {all4, 2}, {marks, 2}, {mix24, 2}, {mix, 9}};
    static const char *const fixed[] = {
        "жж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж😀ж",
        "жж中中中中中中中中中中中中中中中中中中中中a "
        "жж中中中中中中中中中中中中中中中中中中中中中中",
        "éé中中中中中中中中中中中中中中中中中中中中中中中中中中中中中中中中中b",
        "Zoe\xcc\x88 Saldan\xcc\x83"
        "a e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81"
        "e\xcc\x81",
    };
    char name[80], value[1024];
    size_t k, len, f;
    int round;

    for (f = 0; f < sizeof fixed / sizeof fixed[0]; f++)
        for (len = 1; len < 60; len += 7) {
            struct words w;
            memset(name, 'X', len);
            name[len] = '\0';
            check_field(name, fixed[f], false, &w);
            check_field(name, fixed[f], true, &w);
        }
    for (round = 0; round < 400; round++) {
        struct words w;
        size_t i, q_chars_max = 0;
        bool b_mode;
        k = (size_t)round % (sizeof kinds / sizeof kinds[0]);
        random_text(value, sizeof value, 1 + rng(120), kinds[k].pick, kinds[k].n);
        for (i = 0, b_mode = false; value[i] != '\0'; i++)
            b_mode = b_mode || (unsigned char)value[i] >= 0x80;
        if (!b_mode)
            continue; /* plain ASCII is not encoded at all */
        len = 2 + rng(60);
        memset(name, 'X', len);
        name[len] = '\0';
        check_field(name, value, round % 2 == 1, &w);
        /* in a B-encoded value, a Q word only mends the alignment: one or two characters */
        for (i = 0, b_mode = false; i < w.n && i < 64; i++)
            b_mode = b_mode || w.enc[i] == 'B';
        for (i = 0; b_mode && i < w.n && i < 64; i++)
            if (w.enc[i] == 'Q' && w.chars[i] > q_chars_max)
                q_chars_max = w.chars[i];
        cr_assert_leq(q_chars_max, 2, "a long Q word in a B value: %s", value);
    }
}

/* ---- mime_header_mailbox ------------------------------------------------------------- */

static void mailbox(const char *text, struct address *a)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(address_parse_mailbox(text, a, &err), 0, "%s: %s", text, err.text);
}

static void header_mailbox(const char *name, const char *mbox, struct buf *out)
{
    struct address a;

    mailbox(mbox, &a);
    buf_init(out);
    cr_assert_eq(mime_header_mailbox(out, name, &a), 0);
    address_free(&a);
}

Test(mime, mailbox_without_display_name)
{
    struct buf h;

    header_mailbox("To", "ada@example.com", &h);
    cr_assert_str_eq(h.data, "To: ada@example.com\r\n");
    buf_free(&h);
}

Test(mime, mailbox_with_plain_name)
{
    struct buf h;

    header_mailbox("From", "Acme News <news@acme.example>", &h);
    cr_assert_str_eq(h.data, "From: Acme News <news@acme.example>\r\n");
    buf_free(&h);
}

Test(mime, mailbox_name_with_specials_is_quoted)
{
    struct buf h;

    header_mailbox("To", "\"Lovelace, Ada\" <ada@example.com>", &h);
    cr_assert_str_eq(h.data, "To: \"Lovelace, Ada\" <ada@example.com>\r\n");
    buf_free(&h);

    header_mailbox("To", "\"Ada \\\"AL\\\" L. \\\\ Co\" <ada@example.com>", &h);
    cr_assert_str_eq(h.data, "To: \"Ada \\\"AL\\\" L. \\\\ Co\" <ada@example.com>\r\n");
    buf_free(&h);

    header_mailbox("To", "\"Acme (News) <Team>\" <news@acme.example>", &h);
    cr_assert_str_eq(h.data, "To: \"Acme (News) <Team>\" <news@acme.example>\r\n");
    buf_free(&h);
}

Test(mime, mailbox_with_non_ascii_name_is_encoded)
{
    struct buf h, d;
    const char *lt, *start, *end;

    header_mailbox("To", "René Descartes <rene@example.com>", &h);
    for (size_t i = 0; i < h.len; i++)
        cr_assert_lt((unsigned char)h.data[i], 0x80, "the header is ASCII: %s", h.data);
    cr_assert_eq(strncmp(h.data, "To: =?UTF-8?", 12), 0, "%s", h.data);
    lt = strstr(h.data, " <rene@example.com>\r\n");
    cr_assert_not_null(lt, "the address stays whole: %s", h.data);
    cr_assert_eq(strcmp(lt, " <rene@example.com>\r\n"), 0);
    start = h.data + 4;
    end = lt;
    {
        char words[512];
        snprintf(words, sizeof words, "%.*s", (int)(end - start), start);
        decode_words(words, &d);
    }
    cr_assert_str_eq(d.data, "René Descartes");
    buf_free(&d);
    buf_free(&h);
}

Test(mime, mailbox_with_idn_uses_the_a_label)
{
    struct buf h;

    header_mailbox("To", "Ivan <ivan@пример.рф>", &h);
    cr_assert_str_eq(h.data, "To: Ivan <ivan@xn--e1afmkfd.xn--p1ai>\r\n");
    buf_free(&h);
}

Test(mime, mailbox_keeps_a_long_address_on_one_line)
{
    struct buf h;
    const char *lt;

    header_mailbox("Reply-To",
                   "The Very Long Display Name Of The Acme Corporation Newsletter Team "
                   "<newsletter-replies-department@mail.acme-corporation.example>",
                   &h);
    assert_lines_at_most(h.data, MIME_LINE_SOFT);
    assert_crlf_only(h.data, h.len);
    lt = strchr(h.data, '<');
    cr_assert_not_null(lt);
    cr_assert_null(memchr(lt, '\n', strlen(lt) - 1), "no fold inside <...>: %s", h.data);
    buf_free(&h);
}

/* ---- quoted-printable ---------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 2045 §6.7 decoding: "=" CRLF is a soft break, "=XX" (upper-case hex) a byte. */
static void qp_decode(const char *in, size_t len, struct buf *out)
{
    size_t i;

    buf_init(out);
    for (i = 0; i < len; i++) {
        if (in[i] != '=') {
            buf_putc(out, in[i]);
            continue;
        }
        if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
            i += 2;
            continue;
        }
        cr_assert_lt(i + 2, len, "truncated escape");
        cr_assert(hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0, "bad escape '%.3s'", in + i);
        buf_putc(out, (char)(hexval(in[i + 1]) << 4 | hexval(in[i + 2])));
        i += 2;
    }
    buf_puts(out, "");
}

/* The encoder's promises: CRLF lines of at most 76, no trailing whitespace, only printable. */
static void assert_qp_shape(const struct buf *q)
{
    size_t i, col = 0;

    assert_crlf_only(q->data, q->len > 0 && q->data[q->len - 1] == '\n' ? q->len : 0);
    for (i = 0; i < q->len; i++) {
        char c = q->data[i];
        if (c == '\r') {
            cr_assert(i == 0 || (q->data[i - 1] != ' ' && q->data[i - 1] != '\t'),
                      "whitespace before a line end at byte %zu", i);
            continue;
        }
        if (c == '\n') {
            col = 0;
            continue;
        }
        cr_assert((c >= 33 && c <= 126) || c == ' ' || c == '\t', "byte 0x%02x in QP output",
                  (unsigned char)c);
        col++;
        cr_assert_leq(col, 76, "QP line longer than 76 at byte %zu", i);
    }
    if (q->len > 0)
        cr_assert(q->data[q->len - 1] != ' ' && q->data[q->len - 1] != '\t');
}

static void qp(const char *in, size_t len, struct buf *out)
{
    buf_init(out);
    cr_assert_eq(mime_qp_encode(out, in, len), 0);
    if (out->data == NULL)
        buf_puts(out, "");
}

/* Input with its line ends normalised to CRLF (LF alone and CRLF; a lone CR is data). */
static void crlf_normalise(const char *in, size_t len, struct buf *out)
{
    size_t i;

    buf_init(out);
    for (i = 0; i < len; i++) {
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            buf_putc(out, '\r');
        buf_putc(out, in[i]);
    }
    buf_puts(out, "");
}

static void qp_round_trip(const char *in, size_t len)
{
    struct buf q, d, want;

    qp(in, len, &q);
    assert_qp_shape(&q);
    qp_decode(q.data, q.len, &d);
    crlf_normalise(in, len, &want);
    cr_assert_eq(d.len, want.len, "round trip length %zu, expected %zu", d.len, want.len);
    cr_assert_eq(memcmp(d.data, want.data, d.len), 0, "round trip differs");
    buf_free(&want);
    buf_free(&d);
    buf_free(&q);
}

Test(mime, qp_plain_text_is_unchanged)
{
    struct buf q;

    qp("Hello, world!\r\nSecond line.\r\n", 29, &q);
    cr_assert_str_eq(q.data, "Hello, world!\r\nSecond line.\r\n");
    buf_free(&q);
}

Test(mime, qp_encodes_equals_and_non_ascii)
{
    struct buf q;

    qp("a=b café", strlen("a=b café"), &q);
    cr_assert_str_eq(q.data, "a=3Db caf=C3=A9");
    buf_free(&q);
}

Test(mime, qp_encodes_trailing_whitespace)
{
    struct buf q;

    qp("trailing space \nand tab\t\r\nend ", strlen("trailing space \nand tab\t\r\nend "), &q);
    cr_assert_str_eq(q.data, "trailing space=20\r\nand tab=09\r\nend=20");
    buf_free(&q);
}

Test(mime, qp_lone_cr_is_data)
{
    struct buf q;

    qp("a\rb\r\nc\r", 7, &q);
    cr_assert_str_eq(q.data, "a=0Db\r\nc=0D");
    buf_free(&q);
}

Test(mime, qp_lf_becomes_crlf)
{
    struct buf q;

    qp("one\ntwo\n\nthree", 14, &q);
    cr_assert_str_eq(q.data, "one\r\ntwo\r\n\r\nthree");
    buf_free(&q);
}

Test(mime, qp_long_lines_get_soft_breaks)
{
    char in[1000];
    struct buf q;

    memset(in, 'a', sizeof in);
    qp(in, sizeof in, &q);
    assert_qp_shape(&q);
    cr_assert_not_null(strstr(q.data, "=\r\n"), "soft line breaks");
    buf_free(&q);
    qp_round_trip(in, sizeof in);
}

Test(mime, qp_escapes_are_never_split)
{
    /* many 3-character escapes: a soft break must not fall inside one */
    static const char in[] = "ééééééééééééééééééééééééééééééééééééééééééééééééééééé "
                             "==================================================== end";
    struct buf q;
    const char *p;

    qp(in, strlen(in), &q);
    assert_qp_shape(&q);
    for (p = q.data; (p = strchr(p, '=')) != NULL; p++) {
        if (p[1] == '\r')
            continue;
        cr_assert(hexval(p[1]) >= 0 && hexval(p[2]) >= 0, "split escape at %zu",
                  (size_t)(p - q.data));
    }
    buf_free(&q);
    qp_round_trip(in, strlen(in));
}

Test(mime, qp_round_trip_of_awkward_text)
{
    static const char *const cases[] = {
        "",
        "x",
        "line ending in space \r\nline ending in tab\t\nlast ",
        "= at the start\n=\n==",
        "a long line of words that will need a soft break somewhere around the seventy-sixth "
        "column, and then another one later on because it keeps going and going and going",
        "74 chars then a space xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx \nnext",
        "exactly 76 characters xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nnext",
        "exactly 75 characters then = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\nnext",
        "Ünïcödé ëvërÿwhérë ïn thïs lïnë whïch ïs lông énôügh tô nééd sévérål sôft bréåks",
        ". a line starting with a dot\n.\n..\n",
        "bare\rcr and \r\r\n and \n\r",
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        qp_round_trip(cases[i], strlen(cases[i]));
}

Test(mime, qp_round_trip_of_every_byte)
{
    char in[512];
    size_t i;

    for (i = 0; i < sizeof in; i++)
        in[i] = (char)(i % 256);
    qp_round_trip(in, sizeof in);
}

Test(mime, seven_bit_clean)
{
    char long_line[1200];

    cr_assert(mime_is_7bit_clean("plain\r\ntext\n", 12));
    cr_assert(mime_is_7bit_clean("", 0));
    cr_assert_not(mime_is_7bit_clean("caf\xc3\xa9", 5));
    cr_assert_not(mime_is_7bit_clean("a\0b", 3));
    cr_assert_not(mime_is_7bit_clean("bare\rcr", 7));
    cr_assert_not(mime_is_7bit_clean("ends in cr\r", 11));
    memset(long_line, 'a', sizeof long_line);
    cr_assert(mime_is_7bit_clean(long_line, 998));
    cr_assert_not(mime_is_7bit_clean(long_line, 999));
}

/* ---- Message-ID ---------------------------------------------------------------------- */

Test(mime, message_id_shape_and_uniqueness)
{
    char a[128], b[128], small[16];

    cr_assert_eq(mime_message_id("acme.example", a, sizeof a), 0);
    cr_assert_eq(mime_message_id("acme.example", b, sizeof b), 0);
    cr_assert_eq(a[0], '<');
    cr_assert_eq(a[strlen(a) - 1], '>');
    cr_assert_not_null(strstr(a, "@acme.example>"));
    cr_assert_str_neq(a, b);
    cr_assert_eq(strcspn(a, " \t\r\n\"()[],;:\\"), strlen(a), "an RFC 5322 msg-id: %s", a);
    cr_assert_eq(mime_message_id("acme.example", small, sizeof small), BLAST_EINVAL);
}

/* ---- whole messages ------------------------------------------------------------------ */

struct fixture {
    struct address from, to, reply_to;
    struct mime_message m;
    char id[128];
};

static void setup(struct fixture *f, const char *subject, const char *text, const char *html)
{
    memset(f, 0, sizeof *f);
    mailbox("Acme News <news@acme.example>", &f->from);
    mailbox("Ada Lovelace <ada@example.com>", &f->to);
    mailbox("Acme Help <help@acme.example>", &f->reply_to);
    cr_assert_eq(mime_message_id("acme.example", f->id, sizeof f->id), 0);
    f->m.from = &f->from;
    f->m.to = &f->to;
    f->m.subject = subject;
    f->m.subject_len = strlen(subject);
    f->m.text = text;
    f->m.text_len = text != NULL ? strlen(text) : 0;
    f->m.html = html;
    f->m.html_len = html != NULL ? strlen(html) : 0;
    f->m.message_id = f->id;
    f->m.date = (time_t)1700000000;
}

static void teardown(struct fixture *f)
{
    address_free(&f->from);
    address_free(&f->to);
    address_free(&f->reply_to);
}

static void build(const struct mime_message *m, struct buf *out)
{
    struct blast_error err;

    buf_init(out);
    blast_error_clear(&err);
    cr_assert_eq(mime_build(m, out, &err), 0, "%s", err.text);
    cr_assert_not_null(out->data);
}

/* The header block (up to and including the blank line) and where the body starts. */
static const char *body_of(const struct buf *msg)
{
    const char *p = strstr(msg->data, "\r\n\r\n");

    cr_assert_not_null(p, "no blank line after the headers");
    return p + 4;
}

/* True when a line of the header block starts with line. */
static bool has_header(const struct buf *msg, const char *line)
{
    const char *body = body_of(msg), *p = msg->data;
    size_t n = strlen(line);

    while (p < body) {
        if (strncmp(p, line, n) == 0)
            return true;
        p = strstr(p, "\r\n") + 2;
    }
    return false;
}

static void assert_message_discipline(const struct buf *msg)
{
    assert_crlf_only(msg->data, msg->len);
    assert_lines_at_most(msg->data, MIME_LINE_HARD);
    cr_assert_null(memchr(msg->data, '\0', msg->len), "NUL in the message");
}

Test(mime, text_only_message)
{
    struct fixture f;
    struct buf msg;

    setup(&f, "Your update", "Hello Ada,\nthis is plain text.\n", NULL);
    f.m.reply_to = &f.reply_to;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert(has_header(&msg, "Date: "));
    cr_assert(has_header(&msg, "From: Acme News <news@acme.example>\r\n"));
    cr_assert(has_header(&msg, "To: Ada Lovelace <ada@example.com>\r\n"));
    cr_assert(has_header(&msg, "Reply-To: Acme Help <help@acme.example>\r\n"));
    cr_assert(has_header(&msg, "Subject: Your update\r\n"));
    {
        char line[200];
        snprintf(line, sizeof line, "Message-ID: %s\r\n", f.id);
        cr_assert(has_header(&msg, line));
    }
    cr_assert(has_header(&msg, "MIME-Version: 1.0\r\n"));
    cr_assert(has_header(&msg, "Content-Type: text/plain; charset=utf-8\r\n"));
    cr_assert(has_header(&msg, "Content-Transfer-Encoding: 7bit\r\n"));
    cr_assert_null(strstr(msg.data, "multipart"));
    cr_assert_str_eq(body_of(&msg), "Hello Ada,\r\nthis is plain text.\r\n");
    buf_free(&msg);
    teardown(&f);
}

Test(mime, date_header_is_rfc5322)
{
    struct fixture f;
    struct buf msg;
    char want[80];

    setup(&f, "s", "t", NULL);
    build(&f.m, &msg);
    timeutil_rfc5322(f.m.date, want + 6, sizeof want - 6);
    memcpy(want, "Date: ", 6);
    cr_assert(has_header(&msg, want), "%s", msg.data);
    buf_free(&msg);
    teardown(&f);
}

Test(mime, html_only_message)
{
    struct fixture f;
    struct buf msg;

    setup(&f, "Your update", NULL, "<p>Hello <b>Ada</b></p>\n");
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert(has_header(&msg, "Content-Type: text/html; charset=utf-8\r\n"));
    cr_assert_null(strstr(msg.data, "text/plain"));
    cr_assert_null(strstr(msg.data, "multipart"));
    cr_assert_str_eq(body_of(&msg), "<p>Hello <b>Ada</b></p>\r\n");
    cr_assert_null(strstr(msg.data, "Reply-To:"), "no Reply-To unless given");
    buf_free(&msg);
    teardown(&f);
}

Test(mime, non_ascii_body_is_quoted_printable)
{
    struct fixture f;
    struct buf msg, d;
    static const char text[] = "Grüße aus Köln, René!\nA line = with an equals sign.\n";

    setup(&f, "Grüße", text, NULL);
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert(has_header(&msg, "Content-Transfer-Encoding: quoted-printable\r\n"));
    for (size_t i = 0; i < msg.len; i++)
        cr_assert_lt((unsigned char)msg.data[i], 0x80, "8-bit byte at %zu", i);
    qp_decode(body_of(&msg), strlen(body_of(&msg)), &d);
    cr_assert_str_eq(d.data, "Grüße aus Köln, René!\r\nA line = with an equals sign.\r\n");
    buf_free(&d);
    buf_free(&msg);
    teardown(&f);
}

/* The boundary parameter of a multipart message. */
static void boundary_of(const struct buf *msg, char *out, size_t size)
{
    const char *p = strstr(msg->data, "boundary=\""), *end;

    cr_assert_not_null(p, "no boundary parameter");
    p += 10;
    end = strchr(p, '"');
    cr_assert_not_null(end);
    cr_assert_lt((size_t)(end - p), size);
    cr_assert_leq((size_t)(end - p), 70, "RFC 2046 §5.1.1: at most 70 characters");
    cr_assert_gt(end - p, 0);
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    const char *p = hay;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

Test(mime, text_and_html_make_multipart_alternative)
{
    static const char text[] = "Hello Ada,\n--\nnot a boundary, just a signature\n";
    static const char html[] = "<p>Hello Ada</p>\n<p>--=_blast_ looks like ours</p>\n";
    struct fixture f;
    struct buf msg;
    char boundary[128], delim[160], close[160];
    const char *tp, *hp, *end;

    setup(&f, "Both", text, html);
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert(has_header(&msg, "Content-Type: multipart/alternative;"));
    boundary_of(&msg, boundary, sizeof boundary);
    cr_assert_null(strstr(text, boundary), "the boundary occurs in the text");
    cr_assert_null(strstr(html, boundary), "the boundary occurs in the HTML");

    snprintf(delim, sizeof delim, "\r\n--%s\r\n", boundary);
    snprintf(close, sizeof close, "\r\n--%s--\r\n", boundary);
    cr_assert_eq(count(msg.data, delim), 2, "two parts");
    cr_assert_eq(count(msg.data, close), 1, "one close delimiter");
    end = strstr(msg.data, close);
    cr_assert_eq(strcmp(end, close), 0, "the close delimiter ends the message");
    tp = strstr(msg.data, "Content-Type: text/plain; charset=utf-8\r\n");
    hp = strstr(msg.data, "Content-Type: text/html; charset=utf-8\r\n");
    cr_assert_not_null(tp);
    cr_assert_not_null(hp);
    cr_assert_lt(tp, hp, "RFC 2046 §5.1.4: the richest alternative comes last");
    cr_assert_gt(tp, strstr(msg.data, delim), "parts follow the first delimiter");
    cr_assert_not_null(strstr(msg.data, "Hello Ada,\r\n--\r\nnot a boundary"));
    cr_assert_not_null(strstr(msg.data, "<p>Hello Ada</p>\r\n"));
    buf_free(&msg);
    teardown(&f);
}

Test(mime, crlf_discipline_with_messy_bodies)
{
    static const char text[] =
        "lf\nbare cr\rcrlf\r\nmixed\n\r\n\r.\n.leading dot\nno final newline";
    static const char html[] = "<p>\r\r\n\n</p>";
    struct fixture f;
    struct buf msg;

    setup(&f, "Messy\r\nBcc: x@example.net", text, html);
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert_null(strstr(msg.data, "\r\nBcc:"));
    buf_free(&msg);
    teardown(&f);

    setup(&f, "s", text, NULL);
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    buf_free(&msg);
    teardown(&f);
}

Test(mime, long_body_lines_stay_within_998)
{
    char text[3000];
    struct fixture f;
    struct buf msg;

    memset(text, 'w', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    setup(&f, "s", text, NULL);
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    buf_free(&msg);
    teardown(&f);
}

Test(mime, a_message_needs_a_body)
{
    struct fixture f;
    struct buf msg = BUF_INIT;
    struct blast_error err;

    setup(&f, "s", NULL, NULL);
    blast_error_clear(&err);
    cr_assert_eq(mime_build(&f.m, &msg, &err), BLAST_EINVAL);
    cr_assert_str_not_empty(err.text);
    buf_free(&msg);
    teardown(&f);
}

Test(mime, long_body_lines_are_quoted_printable)
{
    char text[1200];
    struct fixture f;
    struct buf msg, d;
    struct mp_entity top;
    char cte[64];

    memset(text, 'w', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    setup(&f, "s", text, NULL);
    build(&f.m, &msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert(mp_header(&top, "Content-Transfer-Encoding", cte, sizeof cte));
    cr_assert_str_eq(cte, "quoted-printable", "a line over 998 octets is not 7bit");
    qp_decode(top.body, top.body_len, &d);
    cr_assert_eq(d.len, sizeof text + 1, "the text and a final line break");
    cr_assert_eq(memcmp(d.data, text, sizeof text - 1), 0);
    cr_assert_str_eq(d.data + sizeof text - 1, "\r\n");
    buf_free(&d);
    buf_free(&msg);
    teardown(&f);
}

/* ---- the transfer encoding of text parts ------------------------------------------------- */

/* The Content-Transfer-Encoding of e, and its body decoded into out. */
static void decode_part(const struct mp_entity *e, char *cte, size_t size, struct buf *out)
{
    cr_assert(mp_header(e, "Content-Transfer-Encoding", cte, size), "no transfer encoding");
    buf_init(out);
    if (strcmp(cte, "base64") == 0) {
        mp_base64_lines(e->body, e->body_len, out);
    } else if (strcmp(cte, "quoted-printable") == 0) {
        qp_decode(e->body, e->body_len, out);
    } else {
        cr_assert_str_eq(cte, "7bit");
        for (size_t i = 0; i < e->body_len; i++)
            cr_assert_lt((unsigned char)e->body[i], 0x80, "8-bit byte in a 7bit part");
        buf_append(out, e->body, e->body_len);
        buf_puts(out, "");
    }
}

/*
 * Build a text-only message of text and check its encoding and what it decodes to:
 * the text with CRLF line ends, and a final line break where the part's last line
 * had none (the encodings that keep lines, 7bit and quoted-printable, end it there).
 */
static void expect_text_encoding(const char *text, const char *want_cte)
{
    struct fixture f;
    struct buf msg, got, want;
    struct mp_entity top;
    char cte[64];

    setup(&f, "s", text, NULL);
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    mp_split(msg.data, msg.len, &top);
    decode_part(&top, cte, sizeof cte, &got);
    cr_assert_str_eq(cte, want_cte, "text '%s'", text);
    crlf_normalise(text, strlen(text), &want);
    if (got.len == want.len + 2 && strcmp(want_cte, "base64") != 0 &&
        text[strlen(text) - 1] != '\n')
        buf_puts(&want, "\r\n");
    cr_assert_eq(got.len, want.len, "'%s' decodes to %zu bytes, not %zu", text, got.len, want.len);
    cr_assert_eq(memcmp(got.data, want.data, got.len), 0, "'%s' does not decode to itself", text);
    buf_free(&want);
    buf_free(&got);
    buf_free(&msg);
    teardown(&f);
}

Test(mime, mostly_non_ascii_text_is_base64)
{
    expect_text_encoding("Привет, Ада!\nЭто новости за ноябрь.\n", "base64");
    expect_text_encoding("Καλημέρα σας\r\n", "base64");
    expect_text_encoding("日本語のテキストです。", "base64");
    expect_text_encoding("Ελληνικά, Русский, 中文 and a\nlittle English\n", "base64");
}

Test(mime, a_few_non_ascii_bytes_are_quoted_printable)
{
    expect_text_encoding("Grüße aus Köln, René!\nA line = with an equals sign.\n",
                         "quoted-printable");
    expect_text_encoding("bare\rcr in plain text\n", "quoted-printable");
}

Test(mime, plain_ascii_text_is_7bit)
{
    expect_text_encoding("Hello Ada,\nplain text, short lines.\n", "7bit");
    expect_text_encoding("no final newline", "7bit");
}

Test(mime, one_byte_in_five_is_the_limit_of_quoted_printable)
{
    /* ten bytes: two to escape is one in five (quoted-printable), three is more (base64) */
    expect_text_encoding("éabcdefgh", "quoted-printable");
    expect_text_encoding("€abcdefg", "base64");
}

Test(mime, text_and_html_parts_choose_their_encodings_apart)
{
    struct fixture f;
    struct buf msg, d;
    struct mp_entity top, kids[4];
    char boundary[128], cte[64];

    setup(&f, "s", "Привет, Ада!\n", "<p>Hello Ada</p>\n");
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert_eq(mp_parts(&top, "alternative", kids, 4, boundary, sizeof boundary), 2);
    decode_part(&kids[0], cte, sizeof cte, &d);
    cr_assert_str_eq(cte, "base64");
    cr_assert_str_eq(d.data, "Привет, Ада!\r\n");
    buf_free(&d);
    decode_part(&kids[1], cte, sizeof cte, &d);
    cr_assert_str_eq(cte, "7bit");
    cr_assert_str_eq(d.data, "<p>Hello Ada</p>\r\n");
    buf_free(&d);
    buf_free(&msg);
    teardown(&f);
}

/* ---- mime_base64_lines ------------------------------------------------------------------- */

static void expect_base64(const char *in, const char *want)
{
    struct buf out = BUF_INIT;

    cr_assert_eq(mime_base64_lines(&out, in, strlen(in)), 0);
    cr_assert_str_eq(out.data != NULL ? out.data : "", want, "base64 of '%s'", in);
    buf_free(&out);
}

Test(mime, base64_lines_known_values)
{
    /* RFC 4648 §10 */
    expect_base64("", "");
    expect_base64("f", "Zg==\r\n");
    expect_base64("fo", "Zm8=\r\n");
    expect_base64("foo", "Zm9v\r\n");
    expect_base64("foob", "Zm9vYg==\r\n");
    expect_base64("fooba", "Zm9vYmE=\r\n");
    expect_base64("foobar", "Zm9vYmFy\r\n");
}

Test(mime, base64_lines_are_76_characters_and_round_trip)
{
    unsigned char data[700];
    size_t len, i;

    for (i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (len = 0; len <= sizeof data; len++) {
        struct buf out = BUF_INIT, back = BUF_INIT;
        size_t lines = (len + 56) / 57, last = (len % 57 + 2) / 3 * 4;

        cr_assert_eq(mime_base64_lines(&out, data, len), 0);
        if (len == 0) {
            cr_assert_eq(out.len, 0);
            buf_free(&out);
            continue;
        }
        /* 57 bytes make one full line of 76 characters */
        cr_assert_eq(out.len, (lines - 1) * 78 + (last == 0 ? 76 : last) + 2, "length %zu", len);
        mp_base64_lines(out.data, out.len, &back);
        cr_assert_eq(back.len, len);
        cr_assert_eq(memcmp(back.data, data, len), 0, "round trip of %zu bytes", len);
        buf_free(&back);
        buf_free(&out);
    }
}

Test(mime, base64_lines_append_to_the_buffer)
{
    struct buf out = BUF_INIT;

    cr_assert_eq(buf_puts(&out, "x:"), 0);
    cr_assert_eq(mime_base64_lines(&out, "Man", 3), 0);
    cr_assert_str_eq(out.data, "x:TWFu\r\n");
    buf_free(&out);
}

/* ---- mime_content_type ------------------------------------------------------------------- */

Test(mime, content_type_of_known_extensions)
{
    cr_assert_str_eq(mime_content_type("prices.pdf"), "application/pdf");
    cr_assert_str_eq(mime_content_type("logo.png"), "image/png");
    cr_assert_str_eq(mime_content_type("photo.jpg"), "image/jpeg");
    cr_assert_str_eq(mime_content_type("photo.jpeg"), "image/jpeg");
    cr_assert_str_eq(mime_content_type("notes.txt"), "text/plain");
    cr_assert_str_eq(mime_content_type("list.csv"), "text/csv");
    cr_assert_str_eq(mime_content_type("invite.ics"), "text/calendar");
    cr_assert_str_eq(mime_content_type("backup.tar.gz"), "application/gzip");
    cr_assert_str_eq(mime_content_type("files/report.v2.xlsx"),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
}

Test(mime, content_type_ignores_the_case_of_the_extension)
{
    cr_assert_str_eq(mime_content_type("SCAN.PDF"), "application/pdf");
    cr_assert_str_eq(mime_content_type("Logo.Png"), "image/png");
    cr_assert_str_eq(mime_content_type("photo.JpEg"), "image/jpeg");
}

Test(mime, content_type_of_unknown_or_missing_extensions)
{
    cr_assert_str_eq(mime_content_type("data.xyz"), "application/octet-stream");
    cr_assert_str_eq(mime_content_type("README"), "application/octet-stream");
    cr_assert_str_eq(mime_content_type("trailing."), "application/octet-stream");
    cr_assert_str_eq(mime_content_type("dir.pdf/file"), "application/octet-stream");
    cr_assert_str_eq(mime_content_type("pdf"), "application/octet-stream");
    cr_assert_str_eq(mime_content_type(""), "application/octet-stream");
}

/* ---- file parts -------------------------------------------------------------------------- */

/* Bytes that are not text: every value, in an order that does not repeat soon. */
static void fill(unsigned char *data, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        data[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
}

/* Load a part from a temporary file holding data. */
static void make_part(struct mime_part *p, const void *data, size_t len, const char *filename,
                      const char *content_type, const char *cid)
{
    char path[] = "/tmp/blast-mime-XXXXXX";
    struct blast_error err;
    int fd = mkstemp(path);
    FILE *f;

    cr_assert_geq(fd, 0);
    f = fdopen(fd, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    blast_error_clear(&err);
    cr_assert_eq(mime_part_load(path, filename, content_type, cid, p, &err), 0, "%s", err.text);
    unlink(path);
}

Test(mime, part_load_encodes_the_file)
{
    unsigned char data[1000];
    struct mime_part p;
    struct buf back = BUF_INIT;

    fill(data, sizeof data, 1);
    make_part(&p, data, sizeof data, "Logo.PNG", NULL, "logo@acme");
    cr_assert_str_eq(p.filename, "Logo.PNG");
    cr_assert_str_eq(p.content_type, "image/png", "the type comes from the file name");
    cr_assert_str_eq(p.cid, "logo@acme");
    cr_assert_eq(p.size, sizeof data);
    cr_assert_eq(p.len, strlen(p.body));
    mp_base64_lines(p.body, p.len, &back);
    cr_assert_eq(back.len, sizeof data);
    cr_assert_eq(memcmp(back.data, data, sizeof data), 0);
    buf_free(&back);
    mime_part_free(&p);

    make_part(&p, data, 10, "report", "application/x-report", NULL);
    cr_assert_str_eq(p.content_type, "application/x-report", "a given type wins");
    cr_assert_null(p.cid);
    mime_part_free(&p);

    make_part(&p, "", 0, "empty.txt", NULL, NULL);
    cr_assert_eq(p.size, 0);
    cr_assert_eq(p.len, 0);
    mime_part_free(&p);
}

Test(mime, part_load_of_a_missing_file_is_an_io_error)
{
    struct mime_part p;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(mime_part_load("/nonexistent/blast/x.pdf", "x.pdf", NULL, NULL, &p, &err),
                 BLAST_EIO);
    cr_assert_str_eq(err.source, "/nonexistent/blast/x.pdf");
    cr_assert_null(p.body);
    mime_part_free(&p);
    mime_part_free(NULL);
}

/* ---- multipart structures ---------------------------------------------------------------- */

/* The decoded body of a file part, compared with data. */
static void expect_file_part(const struct mp_entity *e, const char *type, const char *disposition,
                             const char *filename, const void *data, size_t len)
{
    char value[2048], v[128], name[512], cte[64];
    struct buf back = BUF_INIT;
    bool ext;

    mp_type(e, v, sizeof v);
    cr_assert_str_eq(v, type);
    cr_assert(mp_header(e, "Content-Type", value, sizeof value));
    cr_assert(mp_param(value, "name", name, sizeof name, &ext), "no name in %s", value);
    cr_assert_str_eq(name, filename);
    cr_assert(mp_header(e, "Content-Disposition", value, sizeof value));
    mp_value(value, v, sizeof v);
    cr_assert_str_eq(v, disposition);
    cr_assert(mp_param(value, "filename", name, sizeof name, &ext), "no filename in %s", value);
    cr_assert_str_eq(name, filename);
    cr_assert(mp_header(e, "Content-Transfer-Encoding", cte, sizeof cte));
    cr_assert_str_eq(cte, "base64");
    mp_base64_lines(e->body, e->body_len, &back);
    cr_assert_eq(back.len, len, "%s: %zu bytes, not %zu", filename, back.len, len);
    cr_assert_eq(memcmp(back.data, data, len), 0, "%s: the bytes differ", filename);
    buf_free(&back);
}

static void expect_text(const struct mp_entity *e, const char *type, const char *want)
{
    char t[64], cte[64];
    struct buf d;

    mp_type(e, t, sizeof t);
    cr_assert_str_eq(t, type);
    decode_part(e, cte, sizeof cte, &d);
    cr_assert_str_eq(d.data, want);
    buf_free(&d);
}

struct parts {
    unsigned char pdf[3000], png[700], csv[100];
    struct mime_part attachments[2], inline_parts[2];
};

static void parts_make(struct parts *p)
{
    fill(p->pdf, sizeof p->pdf, 2);
    fill(p->png, sizeof p->png, 3);
    memset(p->csv, 'c', sizeof p->csv);
    make_part(&p->attachments[0], p->pdf, sizeof p->pdf, "prices.pdf", NULL, NULL);
    make_part(&p->attachments[1], p->csv, sizeof p->csv, "list.csv", NULL, NULL);
    make_part(&p->inline_parts[0], p->png, sizeof p->png, "logo.png", NULL, "logo");
    make_part(&p->inline_parts[1], p->pdf, 50, "top.jpg", NULL, "banner@acme");
}

static void parts_free(struct parts *p)
{
    mime_part_free(&p->attachments[0]);
    mime_part_free(&p->attachments[1]);
    mime_part_free(&p->inline_parts[0]);
    mime_part_free(&p->inline_parts[1]);
}

static void expect_cid(const struct mp_entity *e, const char *cid)
{
    char v[256];

    cr_assert(mp_header(e, "Content-ID", v, sizeof v), "an inline part without Content-ID");
    cr_assert_str_eq(v, cid);
}

Test(mime, attachments_make_multipart_mixed)
{
    struct fixture f;
    struct parts p;
    struct buf msg;
    struct mp_entity top, kids[4];
    char b[128];

    parts_make(&p);
    setup(&f, "s", "See the prices.\n", NULL);
    f.m.attachments = p.attachments;
    f.m.nattachments = 2;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert_eq(count(msg.data, "MIME-Version: 1.0\r\n"), 1);
    mp_split(msg.data, msg.len, &top);
    cr_assert_eq(mp_parts(&top, "mixed", kids, 4, b, sizeof b), 3);
    expect_text(&kids[0], "text/plain", "See the prices.\r\n");
    expect_file_part(&kids[1], "application/pdf", "attachment", "prices.pdf", p.pdf, sizeof p.pdf);
    expect_file_part(&kids[2], "text/csv", "attachment", "list.csv", p.csv, sizeof p.csv);
    buf_free(&msg);
    teardown(&f);
    parts_free(&p);
}

Test(mime, html_with_attachments_is_mixed_around_the_html)
{
    struct fixture f;
    struct parts p;
    struct buf msg;
    struct mp_entity top, kids[4];
    char b[128];

    parts_make(&p);
    setup(&f, "s", NULL, "<p>prices</p>\n");
    f.m.attachments = p.attachments;
    f.m.nattachments = 1;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert_eq(mp_parts(&top, "mixed", kids, 4, b, sizeof b), 2);
    expect_text(&kids[0], "text/html", "<p>prices</p>\r\n");
    expect_file_part(&kids[1], "application/pdf", "attachment", "prices.pdf", p.pdf, sizeof p.pdf);
    buf_free(&msg);
    teardown(&f);
    parts_free(&p);
}

Test(mime, inline_parts_make_multipart_related_with_the_html)
{
    struct fixture f;
    struct parts p;
    struct buf msg;
    struct mp_entity top, kids[4];
    char b[128], ct[1024], type[64];
    bool ext;

    parts_make(&p);
    setup(&f, "s", NULL, "<img src=\"cid:logo\">\n");
    f.m.inline_parts = p.inline_parts;
    f.m.ninline = 1;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert_eq(mp_parts(&top, "related", kids, 4, b, sizeof b), 2);
    cr_assert(mp_header(&top, "Content-Type", ct, sizeof ct));
    cr_assert(mp_param(ct, "type", type, sizeof type, &ext), "RFC 2387 §3.1: type is required");
    cr_assert_str_eq(type, "text/html");
    expect_text(&kids[0], "text/html", "<img src=\"cid:logo\">\r\n");
    expect_file_part(&kids[1], "image/png", "inline", "logo.png", p.png, sizeof p.png);
    expect_cid(&kids[1], "<logo>");
    buf_free(&msg);
    teardown(&f);
    parts_free(&p);
}

Test(mime, related_goes_inside_alternative_with_a_text_part)
{
    struct fixture f;
    struct parts p;
    struct buf msg;
    struct mp_entity top, alt[4], rel[4];
    char b1[128], b2[128];

    parts_make(&p);
    setup(&f, "s", "Our logo.\n", "<img src=\"cid:logo\"><img src=\"cid:banner@acme\">\n");
    f.m.inline_parts = p.inline_parts;
    f.m.ninline = 2;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert_eq(mp_parts(&top, "alternative", alt, 4, b1, sizeof b1), 2);
    expect_text(&alt[0], "text/plain", "Our logo.\r\n");
    cr_assert_eq(mp_parts(&alt[1], "related", rel, 4, b2, sizeof b2), 3);
    cr_assert_str_neq(b1, b2);
    expect_text(&rel[0], "text/html", "<img src=\"cid:logo\"><img src=\"cid:banner@acme\">\r\n");
    expect_file_part(&rel[1], "image/png", "inline", "logo.png", p.png, sizeof p.png);
    expect_cid(&rel[1], "<logo>");
    expect_file_part(&rel[2], "image/jpeg", "inline", "top.jpg", p.pdf, 50);
    expect_cid(&rel[2], "<banner@acme>");
    buf_free(&msg);
    teardown(&f);
    parts_free(&p);
}

Test(mime, everything_at_once_nests_mixed_alternative_related)
{
    struct fixture f;
    struct parts p;
    struct buf msg;
    struct mp_entity top, mixed[4], alt[4], rel[4];
    char b0[128], b1[128], b2[128];

    parts_make(&p);
    setup(&f, "Grüße", "Привет, Ада!\n", "<p>Grüße <img src=\"cid:logo\"></p>\n");
    f.m.attachments = p.attachments;
    f.m.nattachments = 2;
    f.m.inline_parts = p.inline_parts;
    f.m.ninline = 1;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    for (size_t i = 0; i < msg.len; i++)
        cr_assert_lt((unsigned char)msg.data[i], 0x80, "8-bit byte at %zu", i);
    mp_split(msg.data, msg.len, &top);
    cr_assert_eq(mp_parts(&top, "mixed", mixed, 4, b0, sizeof b0), 3);
    cr_assert_eq(mp_parts(&mixed[0], "alternative", alt, 4, b1, sizeof b1), 2);
    cr_assert_eq(mp_parts(&alt[1], "related", rel, 4, b2, sizeof b2), 2);
    cr_assert(strcmp(b0, b1) != 0 && strcmp(b1, b2) != 0 && strcmp(b0, b2) != 0,
              "three different boundaries");
    expect_text(&alt[0], "text/plain", "Привет, Ада!\r\n");
    expect_text(&rel[0], "text/html", "<p>Grüße <img src=\"cid:logo\"></p>\r\n");
    expect_file_part(&rel[1], "image/png", "inline", "logo.png", p.png, sizeof p.png);
    expect_file_part(&mixed[1], "application/pdf", "attachment", "prices.pdf", p.pdf, sizeof p.pdf);
    expect_file_part(&mixed[2], "text/csv", "attachment", "list.csv", p.csv, sizeof p.csv);
    buf_free(&msg);
    teardown(&f);
    parts_free(&p);
}

Test(mime, inline_parts_need_an_html_body)
{
    struct fixture f;
    struct parts p;
    struct buf msg = BUF_INIT;
    struct blast_error err;

    parts_make(&p);
    setup(&f, "s", "text only\n", NULL);
    f.m.inline_parts = p.inline_parts;
    f.m.ninline = 1;
    blast_error_clear(&err);
    cr_assert_eq(mime_build(&f.m, &msg, &err), BLAST_EINVAL);
    cr_assert_str_not_empty(err.text);
    buf_free(&msg);
    teardown(&f);
    parts_free(&p);
}

/* ---- file names in parameters ------------------------------------------------------------ */

/* Build a message with one attachment named filename; the attachment's entity goes to part. */
static void attach_named(const char *filename, struct buf *msg, struct mp_entity *part)
{
    static struct mp_entity kids[4];
    struct fixture f;
    struct mime_part p;
    struct mp_entity top;
    char b[128];

    make_part(&p, "data", 4, filename, NULL, NULL);
    setup(&f, "s", "t\n", NULL);
    f.m.attachments = &p;
    f.m.nattachments = 1;
    build(&f.m, msg);
    assert_message_discipline(msg);
    assert_lines_at_most(msg->data, MIME_LINE_SOFT);
    mp_split(msg->data, msg->len, &top);
    cr_assert_eq(mp_parts(&top, "mixed", kids, 4, b, sizeof b), 2);
    *part = kids[1];
    mime_part_free(&p);
    teardown(&f);
}

Test(mime, an_ascii_file_name_is_a_quoted_string)
{
    struct buf msg;
    struct mp_entity part;
    char cd[1024], ct[1024], name[256];
    bool ext = true;

    attach_named("prices 2024.pdf", &msg, &part);
    cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
    cr_assert_str_eq(cd, "attachment; filename=\"prices 2024.pdf\"");
    cr_assert(mp_header(&part, "Content-Type", ct, sizeof ct));
    cr_assert_str_eq(ct, "application/pdf; name=\"prices 2024.pdf\"");
    buf_free(&msg);

    attach_named("say \"hi\" \\ bye.txt", &msg, &part);
    cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
    cr_assert(mp_param(cd, "filename", name, sizeof name, &ext));
    cr_assert_not(ext);
    cr_assert_str_eq(name, "say \"hi\" \\ bye.txt", "quotes and backslashes are escaped");
    buf_free(&msg);
}

Test(mime, a_utf8_file_name_uses_rfc2231)
{
    static const char *const names[] = {"Präsentation €.pdf", "日本語.txt", "ü"};
    struct buf msg, d;
    struct mp_entity part;
    char cd[2048], ct[2048], name[512];
    bool ext = false;
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        attach_named(names[i], &msg, &part);
        cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
        cr_assert_not_null(strstr(cd, "filename*"), "%s", cd);
        cr_assert(mp_param(cd, "filename", name, sizeof name, &ext));
        cr_assert(ext, "RFC 2231 form: %s", cd);
        cr_assert_str_eq(name, names[i]);
        cr_assert(mp_header(&part, "Content-Type", ct, sizeof ct));
        cr_assert(mp_param(ct, "name", name, sizeof name, &ext));
        cr_assert_not(ext, "name is the quoted string older readers know: %s", ct);
        decode_words(name, &d);
        cr_assert_str_eq(d.data, names[i]);
        buf_free(&d);
        buf_free(&msg);
    }
}

Test(mime, a_long_utf8_file_name_is_continued_over_short_lines)
{
    char filename[400];
    size_t used = 0;
    struct buf msg;
    struct mp_entity part;
    char cd[4096], name[512];
    bool ext = false;
    int i;

    for (i = 0; i < 60; i++)
        used += (size_t)snprintf(filename + used, sizeof filename - used, "é");
    snprintf(filename + used, sizeof filename - used, " final.txt");
    attach_named(filename, &msg, &part);
    cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
    cr_assert_not_null(strstr(cd, "filename*1*="), "continued: %s", cd);
    cr_assert(mp_param(cd, "filename", name, sizeof name, &ext));
    cr_assert(ext);
    cr_assert_str_eq(name, filename);
    buf_free(&msg);
}

/* RFC 2231 §7: attribute-chars as they are, and "%" with two upper-case hex digits. */
static void pct_decode(const char *in, size_t len, struct buf *out)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (in[i] == '%') {
            cr_assert(i + 2 < len, "a %%XX cut at the end of a piece: '%.*s'", (int)len, in);
            cr_assert(in[i + 1] != '\0' && strchr("0123456789ABCDEF", in[i + 1]) != NULL &&
                          in[i + 2] != '\0' && strchr("0123456789ABCDEF", in[i + 2]) != NULL,
                      "bad %%XX in '%.*s'", (int)len, in);
            buf_putc(out, (char)(mp_hex(in[i + 1]) << 4 | mp_hex(in[i + 2])));
            i += 2;
        } else {
            cr_assert(strchr("!#$&+-.^_`|~", in[i]) != NULL || (in[i] >= 'a' && in[i] <= 'z') ||
                          (in[i] >= 'A' && in[i] <= 'Z') || (in[i] >= '0' && in[i] <= '9'),
                      "'%c' is not an attribute-char", in[i]);
            buf_putc(out, in[i]);
        }
    }
}

/*
 * The RFC 2231 pieces of param in a Content-Disposition value, each checked on its
 * own: numbered from 0, the first with the utf-8'' prefix, made of attribute-chars and
 * %XX in upper case (§7), and each decoding to whole UTF-8 characters; joined, the
 * decoded name. Returns the number of pieces (0: the one-piece form param*=).
 */
static size_t rfc2231_pieces(const char *cd, const char *param, struct buf *name)
{
    char key[64];
    const char *p;
    size_t n;

    buf_init(name);
    snprintf(key, sizeof key, "%s*=utf-8''", param);
    if ((p = strstr(cd, key)) != NULL) {
        struct buf one = BUF_INIT;
        size_t end = strcspn(p + strlen(key), ";");
        pct_decode(p + strlen(key), end, &one);
        buf_append(name, one.data, one.len);
        buf_puts(name, "");
        buf_free(&one);
        return 0;
    }
    for (n = 0;; n++) {
        struct buf one = BUF_INIT;
        size_t end;
        snprintf(key, sizeof key, "%s*%zu*=%s", param, n, n == 0 ? "utf-8''" : "");
        p = strstr(cd, key);
        if (p == NULL)
            break;
        p += strlen(key);
        end = strcspn(p, "; ");
        pct_decode(p, end, &one);
        cr_assert(text_utf8_valid(one.data, one.len), "piece %zu splits a character: %s", n, cd);
        buf_append(name, one.data, one.len);
        buf_free(&one);
    }
    buf_puts(name, "");
    return n;
}

Test(mime, rfc2231_continuations_split_only_between_characters)
{
    static const unsigned mix[] = {0, 2, 3, 5, 6, 7, 8}, all2[] = {2, 3}, all3[] = {5, 6},
                          all4[] = {7, 8};
    static const struct {
        const unsigned *pick;
        size_t n;
    } kinds[] = {{mix, 7}, {all2, 2}, {all3, 2}, {all4, 2}};
    char filename[600];
    size_t k, chars, pieces = 0;

    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (chars = 1; chars < 140; chars += 9) {
            struct buf msg, name, d;
            struct mp_entity part;
            char cd[4096], ct[4096], v[2048];
            bool ext = false;
            random_text(filename, sizeof filename - 8, chars, kinds[k].pick, kinds[k].n);
            strncat(filename, ".pdf", sizeof filename - strlen(filename) - 1);
            attach_named(filename, &msg, &part); /* lines within 78 */
            cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
            pieces += rfc2231_pieces(cd, "filename", &name);
            cr_assert_str_eq(name.data, filename, "%s", cd);
            cr_assert(mp_param(cd, "filename", v, sizeof v, &ext));
            cr_assert(ext);
            cr_assert_str_eq(v, filename);
            /* Content-Type's name: encoded-words in a quoted string, whole and unpadded */
            cr_assert(mp_header(&part, "Content-Type", ct, sizeof ct));
            cr_assert(mp_param(ct, "name", v, sizeof v, &ext));
            cr_assert_not(ext);
            decode_words(v, &d);
            cr_assert_str_eq(d.data, filename);
            buf_free(&d);
            buf_free(&name);
            buf_free(&msg);
        }
    cr_assert_gt(pieces, 20, "long names were continued");
}

Test(mime, a_short_utf8_file_name_takes_one_line)
{
    struct buf msg;
    struct mp_entity part;
    char cd[1024], ct[1024];

    attach_named("Prix d'été.pdf", &msg, &part);
    cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
    cr_assert_str_eq(cd, "attachment; filename*=utf-8''Prix%20d%27%C3%A9t%C3%A9.pdf");
    cr_assert(mp_header(&part, "Content-Type", ct, sizeof ct));
    /* base64("Prix d'été.pdf") */
    cr_assert_str_eq(ct, "application/pdf; name=\"=?UTF-8?B?UHJpeCBkJ8OpdMOpLnBkZg==?=\"");
    buf_free(&msg);
}

Test(mime, a_file_name_that_looks_encoded_is_rfc2231_in_both_parameters)
{
    /* a reader would decode a quoted "=?...?=" name; GMime decodes the text of an
     * encoded-word in a parameter once more */
    struct buf msg;
    struct mp_entity part;
    char cd[1024], ct[1024], v[512];
    bool ext = false;

    attach_named("=?UTF-8?B?QWRh?=.pdf", &msg, &part);
    cr_assert(mp_header(&part, "Content-Disposition", cd, sizeof cd));
    cr_assert(mp_header(&part, "Content-Type", ct, sizeof ct));
    cr_assert_str_eq(cd, "attachment; filename*=utf-8''%3D%3FUTF-8%3FB%3FQWRh%3F%3D.pdf");
    cr_assert_str_eq(ct, "application/pdf; name*=utf-8''%3D%3FUTF-8%3FB%3FQWRh%3F%3D.pdf");
    cr_assert(mp_param(ct, "name", v, sizeof v, &ext));
    cr_assert(ext);
    cr_assert_str_eq(v, "=?UTF-8?B?QWRh?=.pdf");
    buf_free(&msg);
}

/* ---- list, feedback and custom header fields --------------------------------------------- */

Test(mime, list_unsubscribe_with_one_click)
{
    static const char value[] = "<https://acme.example/u?e=ada%40example.com>, "
                                "<mailto:unsubscribe@acme.example?subject=unsubscribe>";
    struct fixture f;
    struct buf msg;
    struct mp_entity top;
    char v[1024];

    setup(&f, "s", "t\n", NULL);
    f.m.list_unsubscribe = value;
    f.m.one_click = true;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    mp_split(msg.data, msg.len, &top);
    assert_lines_at_most(msg.data, MIME_LINE_SOFT);
    cr_assert(mp_header(&top, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, value, "folded only between the two URIs");
    cr_assert(mp_header(&top, "List-Unsubscribe-Post", v, sizeof v));
    cr_assert_str_eq(v, "List-Unsubscribe=One-Click");
    buf_free(&msg);
    teardown(&f);
}

Test(mime, list_id_comes_with_the_list_fields)
{
    struct fixture f;
    struct buf msg;
    struct mp_entity top;
    char v[1024];

    setup(&f, "s", "t\n", NULL);
    f.m.list_unsubscribe = "<mailto:u@acme.example>";
    f.m.list_id = "<november-news.acme.example>";
    build(&f.m, &msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert(mp_header(&top, "List-Id", v, sizeof v));
    cr_assert_str_eq(v, "<november-news.acme.example>");
    buf_free(&msg);
    teardown(&f);
}

Test(mime, list_unsubscribe_post_only_with_one_click)
{
    struct fixture f;
    struct buf msg;
    struct mp_entity top;
    char v[1024];

    setup(&f, "s", "t\n", NULL);
    f.m.list_unsubscribe = "<mailto:u@acme.example>";
    build(&f.m, &msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert(mp_header(&top, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, "<mailto:u@acme.example>");
    cr_assert_not(mp_header(&top, "List-Unsubscribe-Post", v, sizeof v));
    buf_free(&msg);
    teardown(&f);

    setup(&f, "s", "t\n", NULL);
    build(&f.m, &msg);
    mp_split(msg.data, msg.len, &top);
    cr_assert_not(mp_header(&top, "List-Unsubscribe", v, sizeof v));
    cr_assert_not(mp_header(&top, "List-Unsubscribe-Post", v, sizeof v));
    cr_assert_not(mp_header(&top, "Feedback-ID", v, sizeof v));
    buf_free(&msg);
    teardown(&f);
}

Test(mime, feedback_id_and_custom_headers_are_made_safe)
{
    static const char evil[] = "Hi\r\nBcc: victim@example.net";
    struct mime_header headers[3] = {
        {"X-Campaign", "november", 8},
        {"X-Greeting", evil, sizeof evil - 1},
        {"X-Name", "José", 5},
    };
    struct fixture f;
    struct buf msg, v;
    struct mp_entity top;
    char value[1024], line[1100];

    setup(&f, "s", "t\n", NULL);
    f.m.feedback_id = "nov:news:acme";
    f.m.feedback_id_len = 13;
    f.m.headers = headers;
    f.m.nheaders = 3;
    build(&f.m, &msg);
    assert_message_discipline(&msg);
    cr_assert_null(strstr(msg.data, "\r\nBcc:"), "a value never starts a field");
    mp_split(msg.data, msg.len, &top);
    cr_assert(mp_header(&top, "Feedback-ID", value, sizeof value));
    cr_assert_str_eq(value, "nov:news:acme");
    cr_assert(mp_header(&top, "X-Campaign", value, sizeof value));
    cr_assert_str_eq(value, "november");
    cr_assert(mp_header(&top, "X-Greeting", value, sizeof value));
    cr_assert_str_eq(value, "Hi Bcc: victim@example.net");
    cr_assert(mp_header(&top, "X-Name", value, sizeof value));
    snprintf(line, sizeof line, "X-Name: %s\r\n", value);
    value_of(line, "X-Name", &v);
    cr_assert_str_eq(v.data, "José", "an encoded word: %s", value);
    buf_free(&v);
    buf_free(&msg);
    teardown(&f);
}
