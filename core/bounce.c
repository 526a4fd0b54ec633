/*
 * bounce - one inbound message read with GMime. See bounce.h.
 *
 * The order of the tests is the order of trust: a multipart/report says what it
 * is (RFC 6522); a message from a mailer daemon without one is read as prose; only
 * then do automatic-reply headers count (a DSN carries Auto-Submitted too, RFC 3464
 * §2), and only a message that is none of these can be an unsubscribe request.
 */
#include "bounce.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[BOUNCE_KIND_COUNT] = {
    [BOUNCE_KIND_DSN] = "dsn",
    [BOUNCE_KIND_ARF] = "arf",
    [BOUNCE_KIND_PLAIN] = "plain",
    [BOUNCE_KIND_AUTOREPLY] = "auto-reply",
    [BOUNCE_KIND_UNSUBSCRIBE] = "unsubscribe",
    [BOUNCE_KIND_OTHER] = "other",
};

const char *bounce_kind_name(enum bounce_kind k)
{
    return k >= 0 && k < BOUNCE_KIND_COUNT ? kind_names[k] : "?";
}

/* GMime's tables are set up once per process. */
static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_setup(void)
{
    g_mime_init();
}

/* How deep multiparts and attached messages are followed: deeper is not a bounce. */
#define DEPTH_MAX 8
/* Bytes of a report part or of prose read. */
#define PART_MAX (256 * 1024)

/*
 * A copy of len bytes of s that is valid UTF-8 without control characters (each
 * becomes a space, each byte of a broken sequence '?'), with runs of white space
 * made one and cut to BOUNCE_TEXT_MAX bytes at a character's start. NULL when
 * nothing is left, or on ENOMEM (*oom set).
 */
static char *clean_text(const char *s, size_t len, bool *oom)
{
    size_t cap = len < BOUNCE_TEXT_MAX ? len : BOUNCE_TEXT_MAX;
    char *out = malloc(cap + 1);
    size_t n = 0;
    if (!out) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < len && n < cap;) {
        unsigned char c = (unsigned char)s[i];
        size_t clen = c < 0x80             ? 1
                      : (c & 0xe0) == 0xc0 ? 2
                      : (c & 0xf0) == 0xe0 ? 3
                      : (c & 0xf8) == 0xf0 ? 4
                                           : 0;
        if (clen > 1 && (i + clen > len || !g_utf8_validate(s + i, (gssize)clen, NULL)))
            clen = 0;
        if (clen == 0) {
            out[n++] = '?';
            i++;
        } else if (clen == 1 && (c < 0x20 || c == 0x7f)) {
            if (n > 0 && out[n - 1] != ' ')
                out[n++] = ' ';
            i++;
        } else if (c == ' ' && n > 0 && out[n - 1] == ' ') {
            i++;
        } else {
            if (n + clen > cap)
                break;
            memcpy(out + n, s + i, clen);
            n += clen;
            i += clen;
        }
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    size_t start = 0;
    while (start < n && out[start] == ' ')
        start++;
    if (start == n) {
        free(out);
        return NULL;
    }
    memmove(out, out + start, n - start);
    out[n - start] = '\0';
    return out;
}

static char *clean(const char *s, bool *oom)
{
    return s ? clean_text(s, strlen(s), oom) : NULL;
}

/*
 * The address in an address field: "rfc822; <bob@x>" or "utf-8; bob@x" (RFC 3464
 * §2.3.2, RFC 6533 §3) or a bare or bracketed address; RFC 6533's \x{HEX} escapes
 * are decoded. NULL when there is none.
 */
static char *field_address(const char *v, bool *oom)
{
    const char *semi = strchr(v, ';');
    if (semi)
        v = semi + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    const char *lt = strchr(v, '<');
    size_t len = strcspn(v, " \t(");
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (gt) {
            v = lt + 1;
            len = (size_t)(gt - v);
        }
    }
    char buf[512];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < sizeof buf; i++) {
        unsigned long cp;
        char *end;
        if (v[i] == '\\' && i + 2 < len && v[i + 1] == 'x' && v[i + 2] == '{' &&
            (cp = strtoul(v + i + 3, &end, 16)) > 0 && *end == '}' && end < v + len &&
            cp <= 0x10ffff) {
            n += (size_t)g_unichar_to_utf8((gunichar)cp, buf + n);
            i = (size_t)(end - v);
        } else {
            buf[n++] = v[i];
        }
    }
    if (n == 0 || !memchr(buf, '@', n))
        return NULL;
    return clean_text(buf, n, oom);
}

/* The text after the type of a Diagnostic-Code ("smtp; 550 ..."). */
static const char *after_type(const char *v)
{
    const char *semi = strchr(v, ';');
    if (semi && (size_t)(semi - v) < 20)
        v = semi + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return v;
}

/*
 * The decoded content of a leaf part (at most PART_MAX bytes) in a new
 * NUL-terminated string the caller frees, *len its length; NULL if none.
 */
static char *part_bytes(GMimeObject *o, size_t *len)
{
    if (!GMIME_IS_PART(o))
        return NULL;
    GMimeDataWrapper *dw = g_mime_part_get_content((GMimePart *)o);
    if (!dw)
        return NULL;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(dw, mem);
    GByteArray *ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
    size_t n = ba->len < PART_MAX ? ba->len : PART_MAX;
    char *out = malloc(n + 1);
    if (out) {
        if (n > 0)
            memcpy(out, ba->data, n);
        out[n] = '\0';
        *len = n;
    }
    g_object_unref(mem);
    return out;
}

/* One "Name: value" field of a report block, unfolded. */
struct field {
    char name[64];
    char value[BOUNCE_TEXT_MAX + 1];
};

/*
 * The next field of the block at *p (RFC 3464 §2.1: header-like fields; a line
 * that starts with white space continues the one before; an empty line ends the
 * block). Returns 1 with a field, 0 at the block's end (*p past the empty line),
 * -1 at the text's end.
 */
static int next_field(const char **p, struct field *f)
{
    const char *s = *p;
    for (;;) {
        if (*s == '\0') {
            *p = s;
            return -1;
        }
        if (*s == '\n' || (*s == '\r' && s[1] == '\n')) {
            *p = s + (*s == '\r' ? 2 : 1);
            return 0;
        }
        const char *colon = s + strcspn(s, ":\n");
        size_t nlen = (size_t)(colon - s);
        if (*colon != ':' || nlen == 0 || nlen >= sizeof f->name) {
            s += strcspn(s, "\n"); /* not a field: skipped */
            s += *s == '\n';
            continue;
        }
        memcpy(f->name, s, nlen);
        f->name[nlen] = '\0';
        size_t n = 0;
        s = colon + 1;
        for (;;) {
            size_t line = strcspn(s, "\r\n");
            for (size_t i = 0; i < line && n < BOUNCE_TEXT_MAX; i++)
                f->value[n++] = s[i];
            s += line;
            s += *s == '\r';
            s += *s == '\n';
            if (*s != ' ' && *s != '\t')
                break;
        }
        while (n > 0 && (f->value[n - 1] == ' ' || f->value[n - 1] == '\t'))
            n--;
        f->value[n] = '\0';
        char *v = f->value;
        while (*v == ' ' || *v == '\t')
            v++;
        memmove(f->value, v, strlen(v) + 1);
        *p = s;
        return 1;
    }
}

static int add_recipient(struct bounce_message *m, struct bounce_recipient **out)
{
    if (m->nrecipients >= BOUNCE_RECIPIENTS_MAX)
        return 1;
    struct bounce_recipient *r =
        realloc(m->recipients, (m->nrecipients + 1) * sizeof *m->recipients);
    if (!r)
        return BLAST_ENOMEM;
    m->recipients = r;
    *out = memset(&r[m->nrecipients++], 0, sizeof *r);
    return 0;
}

static void recipient_free(struct bounce_recipient *r)
{
    free(r->final_recipient);
    free(r->original_recipient);
    free(r->action);
    free(r->status);
    free(r->diagnostic);
}

/* Replace *slot with v (owned), keeping the first value a field had. */
static void keep_first(char **slot, char *v)
{
    if (*slot)
        free(v);
    else
        *slot = v;
}

/* One per-recipient block's field into r. */
static void dsn_field(struct bounce_recipient *r, const struct field *f, bool *oom)
{
    if (strcasecmp(f->name, "Final-Recipient") == 0) {
        keep_first(&r->final_recipient, field_address(f->value, oom));
    } else if (strcasecmp(f->name, "Original-Recipient") == 0) {
        keep_first(&r->original_recipient, field_address(f->value, oom));
    } else if (strcasecmp(f->name, "Action") == 0) {
        char word[32];
        size_t n = strcspn(f->value, " \t(;");
        n = n < sizeof word - 1 ? n : sizeof word - 1;
        memcpy(word, f->value, n);
        word[n] = '\0';
        for (char *c = word; *c; c++)
            *c = (char)g_ascii_tolower(*c);
        keep_first(&r->action, clean(word, oom));
    } else if (strcasecmp(f->name, "Status") == 0) {
        char code[16];
        if (classify_find_status(f->value, code, sizeof code) == 0)
            keep_first(&r->status, clean(code, oom));
    } else if (strcasecmp(f->name, "Diagnostic-Code") == 0) {
        keep_first(&r->diagnostic, clean(after_type(f->value), oom));
    }
}

/* The verdict on r: its status, or else the code its diagnostic carries. */
static void judge(struct bounce_recipient *r, bool *oom)
{
    char code[16];
    if (!r->status && r->diagnostic && classify_find_status(r->diagnostic, code, sizeof code) == 0)
        r->status = clean(code, oom);
    classify_dsn(r->status, r->action, r->diagnostic, &r->verdict);
}

/* A message/delivery-status body: per-message fields, then one block per recipient. */
static int read_dsn(struct bounce_message *m, const char *text, bool *oom)
{
    const char *p = text;
    struct field *f = malloc(sizeof *f);
    int rc;
    if (!f)
        return BLAST_ENOMEM;
    while ((rc = next_field(&p, f)) == 1) /* the per-message fields: nothing needed */
        ;
    while (rc == 0) {
        while (*p == '\n' || *p == '\r')
            p++;
        struct bounce_recipient *r = NULL;
        bool any = false;
        while ((rc = next_field(&p, f)) == 1) {
            if (!any) {
                int a = add_recipient(m, &r);
                if (a < 0) {
                    free(f);
                    return a;
                }
                any = true;
            }
            if (r)
                dsn_field(r, f, oom);
        }
        if (r)
            judge(r, oom);
    }
    free(f);
    return *oom ? BLAST_ENOMEM : 0;
}

/* A message/feedback-report body (RFC 5965 §3.1). */
static int read_arf(struct bounce_message *m, const char *text, bool *oom)
{
    const char *p = text;
    struct field *f = malloc(sizeof *f);
    int rc;
    if (!f)
        return BLAST_ENOMEM;
    while ((rc = next_field(&p, f)) >= 0) {
        if (rc == 0)
            continue;
        if (strcasecmp(f->name, "Feedback-Type") == 0) {
            f->value[strcspn(f->value, " \t;(")] = '\0';
            keep_first(&m->feedback_type, clean(f->value, oom));
        } else if (strcasecmp(f->name, "Original-Rcpt-To") == 0) {
            struct bounce_recipient *r;
            char *a = field_address(f->value, oom);
            if (a && add_recipient(m, &r) == 0)
                r->original_recipient = a;
            else
                free(a);
        } else if (strcasecmp(f->name, "Original-Mail-From") == 0) {
            char *a = field_address(f->value, oom);
            if (a && m->ndelivered_to < BOUNCE_ADDRESSES_MAX)
                m->delivered_to[m->ndelivered_to++] = a;
            else
                free(a);
        }
    }
    free(f);
    return *oom ? BLAST_ENOMEM : 0;
}

/* "<id>" for an id GMime gave without brackets. */
static char *bracketed(const char *id, bool *oom)
{
    if (!id || !*id)
        return NULL;
    char *s = g_strdup_printf("<%s>", id);
    char *out = clean(s, oom);
    g_free(s);
    return out;
}

/* Add the mailbox addresses of a header value to m->delivered_to. */
static void add_addresses(struct bounce_message *m, const char *value, bool *oom)
{
    if (!value)
        return;
    InternetAddressList *l = internet_address_list_parse(NULL, value);
    if (!l)
        return;
    int n = internet_address_list_length(l);
    for (int i = 0; i < n && m->ndelivered_to < BOUNCE_ADDRESSES_MAX; i++) {
        InternetAddress *a = internet_address_list_get_address(l, i);
        if (!INTERNET_ADDRESS_IS_MAILBOX(a))
            continue;
        char *s = clean(internet_address_mailbox_get_addr((InternetAddressMailbox *)a), oom);
        bool known = false;
        for (size_t k = 0; s && k < m->ndelivered_to && !known; k++)
            known = g_ascii_strcasecmp(m->delivered_to[k], s) == 0;
        if (s && strchr(s, '@') && !known)
            m->delivered_to[m->ndelivered_to++] = s;
        else
            free(s);
    }
    g_object_unref(l);
}

/*
 * The headers a message was delivered under: where the receiving system says it
 * delivered it (Delivered-To, X-Original-To, Envelope-To), then where it is
 * addressed. A VERP token is looked for in all of them.
 */
static void read_delivery(struct bounce_message *m, GMimeMessage *msg, bool *oom)
{
    static const char *const names[] = {"Delivered-To", "X-Original-To",
                                        "Envelope-To",  "X-Envelope-To",
                                        "X-Rcpt-To",    "To",
                                        "Cc",           NULL};
    GMimeHeaderList *hl = g_mime_object_get_header_list((GMimeObject *)msg);
    int count = g_mime_header_list_get_count(hl);
    for (size_t k = 0; names[k]; k++)
        for (int i = 0; i < count; i++) {
            GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
            if (g_ascii_strcasecmp(g_mime_header_get_name(h), names[k]) == 0)
                add_addresses(m, g_mime_header_get_value(h), oom);
        }
}

/* The Message-ID and Return-Path of the message a report returns (headers or whole). */
static void read_returned(struct bounce_message *m, GMimeMessage *orig, bool *oom)
{
    if (!m->about_message_id)
        m->about_message_id = bracketed(g_mime_message_get_message_id(orig), oom);
    add_addresses(m, g_mime_object_get_header((GMimeObject *)orig, "Return-Path"), oom);
    if (m->kind == BOUNCE_KIND_ARF && m->nrecipients == 0) {
        /* RFC 5965 §3.2: Original-Rcpt-To is optional; the returned To names whom it reached */
        InternetAddressList *to = g_mime_message_get_addresses(orig, GMIME_ADDRESS_TYPE_TO);
        if (to && internet_address_list_length(to) == 1) {
            InternetAddress *a = internet_address_list_get_address(to, 0);
            struct bounce_recipient *r;
            if (INTERNET_ADDRESS_IS_MAILBOX(a) && add_recipient(m, &r) == 0)
                r->original_recipient =
                    clean(internet_address_mailbox_get_addr((InternetAddressMailbox *)a), oom);
        }
    }
}

/* A text/rfc822-headers part read as a message of headers alone. */
static GMimeMessage *headers_message(const char *text, size_t len)
{
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(text, len);
    GMimeParser *p = g_mime_parser_new_with_stream(s);
    GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
    g_object_unref(p);
    g_object_unref(s);
    return msg;
}

static bool is_type(GMimeObject *o, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    return ct && g_mime_content_type_is_type(ct, type, subtype);
}

/* The parts of a multipart/report, in order: the report part and the returned message. */
static int read_report_parts(struct bounce_message *m, GMimeMultipart *mp, bool *oom)
{
    int n = g_mime_multipart_get_count(mp);
    bool seen_report = false;
    for (int i = 0; i < n; i++) {
        GMimeObject *o = g_mime_multipart_get_part(mp, i);
        bool dsn = is_type(o, "message", "delivery-status") ||
                   is_type(o, "message", "global-delivery-status");
        bool arf = is_type(o, "message", "feedback-report");
        if ((dsn || arf) && !seen_report) {
            size_t len;
            char *text = part_bytes(o, &len);
            int rc = 0;
            if (text)
                rc = dsn ? read_dsn(m, text, oom) : read_arf(m, text, oom);
            free(text);
            if (rc < 0)
                return rc;
            seen_report = true;
            m->kind = dsn ? BOUNCE_KIND_DSN : BOUNCE_KIND_ARF;
        } else if (GMIME_IS_MESSAGE_PART(o)) {
            GMimeMessage *orig = g_mime_message_part_get_message((GMimeMessagePart *)o);
            if (orig)
                read_returned(m, orig, oom);
        } else if (is_type(o, "text", "rfc822-headers") ||
                   is_type(o, "message", "global-headers")) {
            size_t len;
            char *text = part_bytes(o, &len);
            GMimeMessage *orig = text ? headers_message(text, len) : NULL;
            if (orig) {
                read_returned(m, orig, oom);
                g_object_unref(orig);
            }
            free(text);
        }
    }
    return seen_report ? 1 : 0;
}

/* The multipart/report at the top, or (for forwarded reports) one level down. */
static GMimeMultipart *find_report(GMimeObject *top)
{
    if (is_type(top, "multipart", "report"))
        return (GMimeMultipart *)top;
    if (!GMIME_IS_MULTIPART(top))
        return NULL;
    int n = g_mime_multipart_get_count((GMimeMultipart *)top);
    for (int i = 0; i < n && i < DEPTH_MAX; i++) {
        GMimeObject *o = g_mime_multipart_get_part((GMimeMultipart *)top, i);
        if (is_type(o, "multipart", "report"))
            return (GMimeMultipart *)o;
    }
    return NULL;
}

/* The first text/plain part, depth first, not inside an attached message; as UTF-8. */
static char *first_text(GMimeObject *o, int depth)
{
    if (depth > DEPTH_MAX)
        return NULL;
    if (GMIME_IS_MULTIPART(o)) {
        int n = g_mime_multipart_get_count((GMimeMultipart *)o);
        for (int i = 0; i < n; i++) {
            char *t = first_text(g_mime_multipart_get_part((GMimeMultipart *)o, i), depth + 1);
            if (t)
                return t;
        }
        return NULL;
    }
    if (GMIME_IS_TEXT_PART(o) && is_type(o, "text", "plain")) {
        char *t = g_mime_text_part_get_text((GMimeTextPart *)o);
        if (t && strlen(t) > PART_MAX)
            t[PART_MAX] = '\0';
        return t;
    }
    return NULL;
}

static bool starts_with_word(const char *s, const char *w)
{
    return g_ascii_strncasecmp(s, w, strlen(w)) == 0;
}

/* Whether the sender is a mailer daemon (RFC 5321 §4.5.5: bounces come from <>). */
static bool from_daemon(const struct bounce_message *m)
{
    if (!m->from)
        return false;
    return starts_with_word(m->from, "mailer-daemon@") ||
           starts_with_word(m->from, "postmaster@") || starts_with_word(m->from, "mail-daemon@") ||
           starts_with_word(m->from, "mdaemon@");
}

static bool subject_has(const struct bounce_message *m, const char *const *words)
{
    if (!m->subject)
        return false;
    for (size_t i = 0; words[i]; i++)
        if (strcasestr(m->subject, words[i]))
            return true;
    return false;
}

static const char *const bounce_subjects[] = {"undeliver",
                                              "undelivered",
                                              "delivery status notification",
                                              "delivery failure",
                                              "delivery has failed",
                                              "mail delivery failed",
                                              "failure notice",
                                              "returned mail",
                                              "returned to sender",
                                              "delivery notification",
                                              "nondeliverable",
                                              NULL};

/* Where the returned message starts in a prose bounce: no addresses are read below it. */
static const char *const copy_markers[] = {"------ This is a copy of the message",
                                           "--- Below this line is a copy",
                                           "----- Original message -----",
                                           "-----Original Message-----",
                                           "Original message headers:",
                                           NULL};

/* Whether the address at s (len bytes) is one of the message's own. */
static bool own_address(const struct bounce_message *m, const char *s, size_t len)
{
    if (m->from && strlen(m->from) == len && g_ascii_strncasecmp(m->from, s, len) == 0)
        return true;
    for (size_t i = 0; i < m->ndelivered_to; i++)
        if (strlen(m->delivered_to[i]) == len &&
            g_ascii_strncasecmp(m->delivered_to[i], s, len) == 0)
            return true;
    return starts_with_word(s, "mailer-daemon@") || starts_with_word(s, "postmaster@");
}

static bool addr_char(unsigned char c)
{
    return g_ascii_isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

/* The paragraph around p (from its line's start to the next empty line), at most BOUNCE_TEXT_MAX.
 */
static char *paragraph(const char *text, const char *p, bool *oom)
{
    const char *start = p;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strstr(p, "\n\n");
    const char *crlf = strstr(p, "\r\n\r\n");
    if (!end || (crlf && crlf < end))
        end = crlf;
    size_t len = end ? (size_t)(end - start) : strlen(start);
    return clean_text(start, len, oom);
}

/*
 * A prose bounce: the addresses it names (but not its own, nor those of the copy
 * of the message it returns), each with the paragraph that names it as its
 * diagnostic (Exim, qmail and Exchange each write one paragraph a recipient).
 */
static int read_prose(struct bounce_message *m, const char *text, bool *oom)
{
    const char *stop = text + strlen(text);
    for (size_t i = 0; copy_markers[i]; i++) {
        const char *c = strstr(text, copy_markers[i]);
        if (c && c < stop)
            stop = c;
    }
    for (const char *at = memchr(text, '@', (size_t)(stop - text)); at && at < stop;
         at = memchr(at + 1, '@', (size_t)(stop - at - 1))) {
        const char *a = at, *z = at + 1;
        while (a > text && addr_char((unsigned char)a[-1]))
            a--;
        while (z < stop && (addr_char((unsigned char)*z) || *z == '-'))
            z++;
        while (z > at + 1 && z[-1] == '.')
            z--;
        if (a == at || z == at + 1 || !memchr(at, '.', (size_t)(z - at)) ||
            own_address(m, a, (size_t)(z - a)))
            continue;
        bool dup = false;
        for (size_t k = 0; k < m->nrecipients && !dup; k++)
            dup = strlen(m->recipients[k].final_recipient) == (size_t)(z - a) &&
                  g_ascii_strncasecmp(m->recipients[k].final_recipient, a, (size_t)(z - a)) == 0;
        struct bounce_recipient *r;
        if (dup || add_recipient(m, &r) != 0)
            continue;
        r->final_recipient = clean_text(a, (size_t)(z - a), oom);
        r->diagnostic = paragraph(text, a, oom);
        r->action = clean("failed", oom);
        judge(r, oom);
        if (!r->final_recipient) {
            recipient_free(r);
            m->nrecipients--;
        }
    }
    /* the returned copy's Message-ID, when the copy is inline */
    const char *id = *stop ? strcasestr(stop, "\nMessage-ID:") : NULL;
    if (id && !m->about_message_id) {
        char *v = g_mime_utils_decode_message_id(id + 12);
        m->about_message_id = bracketed(v, oom);
        g_free(v);
    }
    /* the message's own verdict: from its whole text, for a token without a named recipient */
    char *all = clean_text(text, (size_t)(stop - text), oom);
    char code[16];
    classify_dsn(all && classify_find_status(all, code, sizeof code) == 0 ? code : NULL, "failed",
                 all, &m->verdict);
    free(all);
    return *oom ? BLAST_ENOMEM : 0;
}

/* RFC 3834 §5 and the headers vacation programs set instead. Returns the rule, or NULL. */
static const char *autoreply_rule(GMimeMessage *msg, const struct bounce_message *m)
{
    GMimeObject *o = (GMimeObject *)msg;
    const char *as = g_mime_object_get_header(o, "Auto-Submitted");
    if (as && g_ascii_strncasecmp(as, "no", 2) != 0)
        return "auto-submitted";
    const char *prec = g_mime_object_get_header(o, "Precedence");
    if (g_mime_object_get_header(o, "X-Autoreply") ||
        g_mime_object_get_header(o, "X-Autorespond") ||
        g_mime_object_get_header(o, "X-Auto-Response-Suppress") ||
        (prec && g_ascii_strcasecmp(prec, "auto_reply") == 0))
        return "autoreply-header";
    static const char *const subjects[] = {"out of office", "out of the office", "automatic reply",
                                           "auto-reply",    "autoreply",         "auto reply",
                                           "vacation",      "abwesenheit",       NULL};
    if (subject_has(m, subjects) || (m->subject && starts_with_word(m->subject, "auto:")))
        return "autoreply-subject";
    return NULL;
}

/* Whether the message was addressed to one of the unsubscribe addresses. */
static bool to_unsubscribe(const struct bounce_message *m, const struct bounce_options *opt)
{
    for (size_t i = 0; opt && i < opt->nunsubscribe_to; i++)
        for (size_t k = 0; k < m->ndelivered_to; k++)
            if (g_ascii_strcasecmp(opt->unsubscribe_to[i], m->delivered_to[k]) == 0)
                return true;
    return false;
}

/* RFC 5965 §7.3: the feedback types that say the recipient did not want the message. */
static void judge_arf(struct bounce_message *m)
{
    const char *t = m->feedback_type ? m->feedback_type : "abuse";
    bool complaint = g_ascii_strcasecmp(t, "abuse") == 0 || g_ascii_strcasecmp(t, "fraud") == 0 ||
                     g_ascii_strcasecmp(t, "virus") == 0 || g_ascii_strcasecmp(t, "other") == 0;
    struct bounce_verdict v = {complaint ? BOUNCE_COMPLAINT : BOUNCE_UNKNOWN,
                               complaint ? "arf-complaint" : "arf-not-a-complaint"};
    m->verdict = v;
    for (size_t i = 0; i < m->nrecipients; i++)
        m->recipients[i].verdict = v;
}

/* What the top-level message is, once its headers are read. */
static int read_body(struct bounce_message *m, GMimeMessage *msg, const struct bounce_options *opt,
                     bool *oom)
{
    GMimeObject *top = g_mime_message_get_mime_part(msg);
    GMimeMultipart *report = top ? find_report(top) : NULL;
    int rc = report ? read_report_parts(m, report, oom) : 0;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if (m->kind == BOUNCE_KIND_ARF)
            judge_arf(m);
        else
            classify_dsn(NULL, NULL, NULL, &m->verdict);
        return 0;
    }
    if (from_daemon(m) || subject_has(m, bounce_subjects)) {
        char *text = top ? first_text(top, 0) : NULL;
        m->kind = BOUNCE_KIND_PLAIN;
        rc = read_prose(m, text ? text : "", oom);
        g_free(text);
        if (top && GMIME_IS_MULTIPART(top)) /* the returned message, when it is attached */
            for (int i = 0; i < g_mime_multipart_get_count((GMimeMultipart *)top); i++) {
                GMimeObject *o = g_mime_multipart_get_part((GMimeMultipart *)top, i);
                if (GMIME_IS_MESSAGE_PART(o) &&
                    g_mime_message_part_get_message((GMimeMessagePart *)o))
                    read_returned(m, g_mime_message_part_get_message((GMimeMessagePart *)o), oom);
            }
        return rc;
    }
    const char *rule = autoreply_rule(msg, m);
    if (rule) {
        m->kind = BOUNCE_KIND_AUTOREPLY;
        m->verdict = (struct bounce_verdict){BOUNCE_AUTOREPLY, rule};
        const char *irt = g_mime_object_get_header((GMimeObject *)msg, "In-Reply-To");
        if (irt && !m->about_message_id) { /* a report part may have named it */
            char *id = g_mime_utils_decode_message_id(irt);
            m->about_message_id = bracketed(id, oom);
            g_free(id);
        }
        return 0;
    }
    if (to_unsubscribe(m, opt)) {
        m->kind = BOUNCE_KIND_UNSUBSCRIBE;
        m->verdict = (struct bounce_verdict){BOUNCE_UNSUBSCRIBE, "mailto-unsubscribe"};
        return 0;
    }
    m->kind = BOUNCE_KIND_OTHER;
    m->verdict = (struct bounce_verdict){BOUNCE_UNKNOWN, "not-a-bounce"};
    return 0;
}

/* From, Subject, Message-ID and where it was delivered. */
static void read_headers(struct bounce_message *m, GMimeMessage *msg, bool *oom)
{
    InternetAddressList *from = g_mime_message_get_from(msg);
    if (from && internet_address_list_length(from) > 0) {
        InternetAddress *a = internet_address_list_get_address(from, 0);
        if (INTERNET_ADDRESS_IS_MAILBOX(a))
            m->from = clean(internet_address_mailbox_get_addr((InternetAddressMailbox *)a), oom);
    }
    m->subject = clean(g_mime_message_get_subject(msg), oom);
    m->message_id = bracketed(g_mime_message_get_message_id(msg), oom);
    read_delivery(m, msg, oom);
}

int bounce_parse(const void *data, size_t len, const struct bounce_options *opt,
                 struct bounce_message *out, struct blast_error *err)
{
    int rc = 0;
    bool oom = false;
    GMimeStream *s = NULL;
    GMimeParser *p = NULL;
    GMimeMessage *msg = NULL;

    memset(out, 0, sizeof *out);
    out->kind = BOUNCE_KIND_OTHER;
    pthread_once(&gmime_once, gmime_setup);
    out->delivered_to = calloc(BOUNCE_ADDRESSES_MAX, sizeof *out->delivered_to);
    if (!out->delivered_to) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (len == 0 || !memchr(data, ':', len < 1000 ? len : 1000)) {
        rc = blast_error_set(err, BLAST_ESYNTAX, NULL, 0, 0, "not a mail message: no header");
        goto out;
    }
    s = g_mime_stream_mem_new_with_buffer(data, len);
    p = g_mime_parser_new_with_stream(s);
    msg = g_mime_parser_construct_message(p, NULL);
    if (!msg) {
        rc = blast_error_set(err, BLAST_ESYNTAX, NULL, 0, 0, "not a mail message GMime can read");
        goto out;
    }
    read_headers(out, msg, &oom);
    rc = read_body(out, msg, opt, &oom);
    if (rc < 0 || oom)
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
out:
    if (msg)
        g_object_unref(msg);
    if (p)
        g_object_unref(p);
    if (s)
        g_object_unref(s);
    return rc;
}

void bounce_message_free(struct bounce_message *m)
{
    free(m->message_id);
    free(m->about_message_id);
    free(m->from);
    free(m->subject);
    free(m->feedback_type);
    for (size_t i = 0; m->delivered_to && i < m->ndelivered_to; i++)
        free(m->delivered_to[i]);
    free(m->delivered_to);
    for (size_t i = 0; i < m->nrecipients; i++)
        recipient_free(&m->recipients[i]);
    free(m->recipients);
    memset(m, 0, sizeof *m);
    m->kind = BOUNCE_KIND_OTHER;
}
