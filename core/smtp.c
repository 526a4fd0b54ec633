/*
 * smtp - an SMTP client session. See smtp.h.
 *
 * Shape (after curl's lib/smtp.c and Postfix's smtp_proto.c): one enum of states
 * with a table of names, one function that changes state and logs the change, a
 * command writer that logs a masked transcript, and one reply reader that turns a
 * byte stream into whole replies. Timeouts are deadlines computed when a command
 * is sent, so the total wait for a reply is bounded however the bytes arrive.
 */
#include "smtp.h"
#include "buf.h"
#include "text.h"
#include "timeutil.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const state_names[SMTP_STATE_COUNT] = {
    [SMTP_CONNECT] = "connect", [SMTP_GREETING] = "greeting", [SMTP_EHLO] = "EHLO",
    [SMTP_HELO] = "HELO",       [SMTP_STARTTLS] = "STARTTLS", [SMTP_TLS] = "TLS handshake",
    [SMTP_AUTH] = "AUTH",       [SMTP_READY] = "ready",       [SMTP_MAIL] = "MAIL FROM",
    [SMTP_RCPT] = "RCPT TO",    [SMTP_DATA] = "DATA",         [SMTP_END_OF_DATA] = "end of data",
    [SMTP_RSET] = "RSET",       [SMTP_QUIT] = "QUIT",         [SMTP_CLOSED] = "closed",
};

const char *smtp_state_name(enum smtp_state s)
{
    return s >= 0 && s < SMTP_STATE_COUNT ? state_names[s] : "?";
}

int smtp_state_parse(const char *name)
{
    int i;

    for (i = 0; name != NULL && i < SMTP_STATE_COUNT; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

/* Transactions taken ahead, oldest first. */
struct ahead {
    struct smtp_txn *t[SMTP_AHEAD];
    size_t head, count;
};

struct smtp_session {
    struct smtp_options o; /* strings are borrowed from the caller */
    struct conn *conn;
    enum smtp_state state;
    struct smtp_reply reply; /* the last reply read */
    struct buf in;           /* bytes received and not yet parsed */
    unsigned caps, auth_mechs;
    size_t size_limit;
    bool dead;
    bool out_of_step; /* died because the replies no longer matched the commands */
    bool give_up;     /* AUTH refused (5xx) or broken by the server: not again this run */
    bool waited;      /* a read waited for the network since the last write */
    bool need_rset;   /* the last transaction ended refused: RSET before the next MAIL */
    struct buf out;   /* the group of commands and bodies being built */
    /*
     * Pipelined sessions hold up to SMTP_AHEAD + 1 transactions between the feed
     * and the wire: each one's message, dot-stuffed, waits here (see run_pipelined).
     */
    struct buf stage[SMTP_AHEAD + 1];
    const struct smtp_txn *staged[SMTP_AHEAD + 1];
    struct smtp_stats stats;
    char helo[256];
};

/* ---- replies ------------------------------------------------------------------------- */

/* Copy a line of server text, replacing control characters and invalid UTF-8 with '?'. */
static void append_sanitized(char *dst, size_t size, size_t *used, const char *src, size_t len)
{
    size_t i = 0;

    while (i < len && *used + 1 < size) {
        unsigned char c = (unsigned char)src[i];
        size_t n = 1;

        if (c >= 0x80) {
            n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (n > len - i || !text_utf8_valid(src + i, n) || *used + n >= size) {
                dst[(*used)++] = '?';
                i++;
                continue;
            }
            memcpy(dst + *used, src + i, n);
            *used += n;
            i += n;
            continue;
        }
        dst[(*used)++] = (c < 0x20 && c != '\t') || c == 0x7F ? '?' : (char)c;
        i++;
    }
    dst[*used] = '\0';
}

/* Length of an RFC 3463 status code "c.sss.ddd" at the start of s, whose class is cls. */
static size_t enhanced_len(const char *s, size_t len, int cls)
{
    size_t i = 0, part, digits;

    if (len < 5 || s[0] != (char)('0' + cls) || s[1] != '.')
        return 0;
    i = 2;
    for (part = 0; part < 2; part++) {
        digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 3) {
            i++;
            digits++;
        }
        if (digits == 0)
            return 0;
        if (part == 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && s[i] != ' ')
        return 0;
    return i;
}

int smtp_reply_parse(const char *in, size_t len, struct smtp_reply *r, size_t *used,
                     struct blast_error *err)
{
    size_t pos = 0, textlen = 0;

    r->code = 0;
    r->enhanced[0] = '\0';
    r->text[0] = '\0';
    r->lines = 0;
    for (;;) {
        const char *line = in + pos, *nl;
        size_t linelen, skip;
        int code;

        nl = memchr(line, '\n', len - pos);
        if (nl == NULL) {
            if (len - pos > SMTP_REPLY_LINE_MAX)
                return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0,
                                       "reply line longer than %d bytes", SMTP_REPLY_LINE_MAX);
            if (len > SMTP_REPLY_TOTAL_MAX)
                return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "reply longer than %d bytes",
                                       SMTP_REPLY_TOTAL_MAX);
            return 0;
        }
        linelen = (size_t)(nl - line);
        if (linelen > 0 && line[linelen - 1] == '\r')
            linelen--;
        if (linelen > SMTP_REPLY_LINE_MAX)
            return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "reply line longer than %d bytes",
                                   SMTP_REPLY_LINE_MAX);
        if (memchr(line, '\0', linelen) != NULL)
            return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "NUL byte in a reply");
        /* RFC 5321 §4.2: three digits, the first 2-5, the second 0-5 */
        if (linelen < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
            line[2] < '0' || line[2] > '9' || (linelen > 3 && line[3] != ' ' && line[3] != '-')) {
            char shown[64];
            size_t n = 0;
            append_sanitized(shown, sizeof shown, &n, line, linelen < 40 ? linelen : 40);
            return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "malformed reply line '%s'",
                                   shown);
        }
        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (r->lines > 0 && code != r->code)
            return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0,
                                   "multiline reply changes its code from %d to %d", r->code, code);
        r->code = code;
        skip = linelen > 3 ? 4 : 3;
        /* RFC 2034: an enhanced code leads the text; servers repeat it on every line */
        {
            size_t el = enhanced_len(line + skip, linelen - skip, code / 100);
            if (el > 0) {
                if (r->lines == 0 && el < sizeof r->enhanced) {
                    memcpy(r->enhanced, line + skip, el);
                    r->enhanced[el] = '\0';
                }
                skip += el;
                if (skip < linelen && line[skip] == ' ')
                    skip++;
            }
        }
        if (r->lines > 0 && textlen + 1 < sizeof r->text)
            r->text[textlen++] = '\n';
        append_sanitized(r->text, sizeof r->text, &textlen, line + skip, linelen - skip);
        r->lines++;
        pos = (size_t)(nl - in) + 1;
        if (pos > SMTP_REPLY_TOTAL_MAX)
            return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "reply longer than %d bytes",
                                   SMTP_REPLY_TOTAL_MAX);
        if (linelen == 3 || line[3] == ' ') {
            *used = pos;
            return 1;
        }
    }
}

/* ---- session plumbing ---------------------------------------------------------------- */

const char *const smtp_tls_mode_names[] = {"starttls", "tls", "none", NULL};
const char *const smtp_auth_choice_names[] = {"auto",     "plain",   "login",
                                              "cram-md5", "xoauth2", NULL};
const char *const smtp_dsn_notify_names[] = {"never", "success", "failure", "delay", NULL};
const char *const smtp_dsn_ret_names[] = {"default", "full", "hdrs", NULL};

const char *smtp_tls_mode_name(enum smtp_tls_mode m)
{
    return m >= SMTP_TLS_STARTTLS && m <= SMTP_TLS_NONE ? smtp_tls_mode_names[m] : "?";
}

const char *smtp_auth_choice_name(enum smtp_auth_choice a)
{
    return a >= SMTP_AUTH_CHOICE_AUTO && a <= SMTP_AUTH_CHOICE_XOAUTH2 ? smtp_auth_choice_names[a]
                                                                       : "?";
}

void smtp_timeouts_override(struct smtp_timeouts *t, const struct smtp_timeouts *set)
{
    int *to = &t->connect;
    const int *from = &set->connect;
    size_t i, n = sizeof *t / sizeof(int);

    _Static_assert(sizeof(struct smtp_timeouts) == 12 * sizeof(int), "only ints in the struct");
    for (i = 0; i < n; i++)
        if (from[i] > 0)
            to[i] = from[i];
}

void smtp_timeouts_default(struct smtp_timeouts *t)
{
    /* RFC 5321 §4.5.3.2; connect, STARTTLS, AUTH, RSET and QUIT are not given there */
    t->connect = 30 * 1000;
    t->greeting = 5 * 60 * 1000;
    t->ehlo = 5 * 60 * 1000;
    t->starttls = 2 * 60 * 1000;
    t->auth = 2 * 60 * 1000;
    t->mail = 5 * 60 * 1000;
    t->rcpt = 5 * 60 * 1000;
    t->data = 2 * 60 * 1000;
    t->block = 3 * 60 * 1000;
    t->end_of_data = 10 * 60 * 1000;
    t->rset = 2 * 60 * 1000;
    t->quit = 10 * 1000;
}

static int timeout_of(const struct smtp_session *s, enum smtp_state st)
{
    const struct smtp_timeouts *t = &s->o.timeouts;

    switch (st) {
    case SMTP_CONNECT:
        return t->connect;
    case SMTP_GREETING:
        return t->greeting;
    case SMTP_EHLO:
    case SMTP_HELO:
        return t->ehlo;
    case SMTP_STARTTLS:
    case SMTP_TLS:
        return t->starttls;
    case SMTP_AUTH:
        return t->auth;
    case SMTP_MAIL:
        return t->mail;
    case SMTP_RCPT:
        return t->rcpt;
    case SMTP_DATA:
        return t->data;
    case SMTP_END_OF_DATA:
        return t->end_of_data;
    case SMTP_RSET:
        return t->rset;
    case SMTP_QUIT:
        return t->quit;
    default:
        return t->mail;
    }
}

static int64_t deadline_of(const struct smtp_session *s, enum smtp_state st)
{
    return timeutil_mono_ms() + timeout_of(s, st);
}

static void set_state(struct smtp_session *s, enum smtp_state st)
{
    if (s->state != st)
        log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: %s -> %s", s->o.label, state_names[s->state],
                state_names[st]);
    s->state = st;
}

/* Mark the session unusable; the caller reports why. */
static int die(struct smtp_session *s, int rc)
{
    s->dead = true;
    return rc;
}

/*
 * The server's replies no longer match the commands sent (a reply nobody asked
 * for, more replies than commands, a code the command cannot get, a malformed
 * reply): nothing the server says on this connection can be trusted to answer a
 * given command any more. The session dies; nothing more is written but QUIT.
 */
static int out_of_step(struct smtp_session *s, struct blast_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int out_of_step(struct smtp_session *s, struct blast_error *err, const char *fmt, ...)
{
    char why[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s->out_of_step = true;
    return die(s, blast_error_set(err, BLAST_EPROTO, NULL, 0, 0,
                                  "the server is out of step with the commands: %s", why));
}

/* The first bytes of what sits unread in s->in, made printable, for an error message. */
static const char *unread_text(const struct smtp_session *s, char *out, size_t size)
{
    size_t i, o = 0;

    for (i = 0; i < s->in.len && i < 60 && o + 2 < size; i++) {
        unsigned char c = (unsigned char)s->in.data[i];
        if (c == '\r')
            continue;
        if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            continue;
        }
        out[o++] = c < 0x20 || c >= 0x7F ? '?' : (char)c;
    }
    out[o] = '\0';
    return out;
}

static int expect_quiet(struct smtp_session *s, struct blast_error *err);

/*
 * Send one command line. shown, when not NULL, is what the transcript prints
 * instead of the line (for AUTH secrets).
 */
static int send_line(struct smtp_session *s, const char *line, const char *shown,
                     struct blast_error *err)
{
    struct buf b = BUF_INIT;
    int rc;

    /* QUIT ends the session whatever the server said before it */
    if (s->state != SMTP_QUIT && (rc = expect_quiet(s, err)) < 0)
        return rc;
    log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: C: %s", s->o.label, shown != NULL ? shown : line);
    if ((rc = buf_puts(&b, line)) < 0 || (rc = buf_puts(&b, "\r\n")) < 0) {
        buf_free(&b);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    rc = conn_write_reading(s->conn, b.data, b.len, timeout_of(s, s->state), &s->in, NULL, err);
    buf_free(&b);
    return rc < 0 ? die(s, rc) : 0;
}

static int send_cmd(struct smtp_session *s, struct blast_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int send_cmd(struct smtp_session *s, struct blast_error *err, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "command too long");
    return send_line(s, line, NULL, err);
}

/*
 * RFC 5321 §4.3.2: the replies a command can get, by class. DATA alone waits for
 * an intermediate 354 (a 2yz there answers something else); no other command of
 * a mail transaction gets a 3yz, nor the 2yz codes that belong to other commands
 * (220 greeting or STARTTLS, 221 QUIT, 235 AUTH: a "221 Bye" is no end of data
 * accepted); RSET gets 250 (§4.1.1.5). AUTH's 334s are judged by the exchange
 * itself (RFC 4954 §4), QUIT's reply by nobody.
 */
static bool reply_fits(enum smtp_state st, int code)
{
    /* RFC 5321 §4.2.3: 421 may answer any command when the server must shut down */
    if (code == 421)
        return true;
    switch (st) {
    case SMTP_DATA:
        return code == 354 || code / 100 == 4 || code / 100 == 5;
    case SMTP_MAIL:
    case SMTP_RCPT:
    case SMTP_END_OF_DATA:
    case SMTP_RSET:
        if (code == 220 || code == 221 || code == 235)
            return false;
        return st == SMTP_RSET ? code / 100 == 2 : code / 100 != 3;
    case SMTP_AUTH:
    case SMTP_QUIT:
        return true;
    default:
        return code / 100 != 3;
    }
}

/* Read one whole reply into s->reply within ms milliseconds. */
static int read_reply_within(struct smtp_session *s, int ms, struct blast_error *err)
{
    int64_t deadline = timeutil_mono_ms() + ms;
    char chunk[4096];

    for (;;) {
        struct blast_error perr;
        size_t used = 0;
        int rc;

        blast_error_clear(&perr);
        rc = smtp_reply_parse(s->in.data != NULL ? s->in.data : "", s->in.len, &s->reply, &used,
                              &perr);
        if (rc < 0)
            return out_of_step(s, err, "%s (to %s)", perr.text, state_names[s->state]);
        if (rc == 1) {
            buf_consume(&s->in, used);
            if (log_enabled(s->o.log, LOG_LEVEL_TRACE))
                log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: S: %d%s%s %s", s->o.label, s->reply.code,
                        s->reply.enhanced[0] ? " " : "", s->reply.enhanced, s->reply.text);
            if (!reply_fits(s->state, s->reply.code))
                return out_of_step(s, err, "%s answered %d%s%s %s", state_names[s->state],
                                   s->reply.code, s->reply.enhanced[0] ? " " : "",
                                   s->reply.enhanced, s->reply.text);
            return 0;
        }
        ssize_t n;
        if (!s->waited) {
            s->waited = true;
            s->stats.round_trips++;
        }
        n = conn_read(s->conn, chunk, sizeof chunk, deadline, err);
        if (n < 0) {
            if (n == BLAST_ETIMEOUT)
                blast_error_replace(err, BLAST_ETIMEOUT, NULL, 0, 0,
                                    "timed out after %d s waiting for the reply to %s", ms / 1000,
                                    state_names[s->state]);
            return die(s, (int)n);
        }
        if (buf_append(&s->in, chunk, (size_t)n) < 0)
            return die(s, blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory"));
    }
}

/* Read one whole reply into s->reply within the timeout of the current state. */
static int read_reply(struct smtp_session *s, struct blast_error *err)
{
    return read_reply_within(s, timeout_of(s, s->state), err);
}

/* Record that the server refused a step: "EHLO refused: 550 5.7.1 go away". */
static int refused(struct smtp_session *s, int code, const char *what, struct blast_error *err)
{
    return blast_error_set(err, code, NULL, 0, 0, "%s: %d%s%s %s", what, s->reply.code,
                           s->reply.enhanced[0] ? " " : "", s->reply.enhanced, s->reply.text);
}

/*
 * A 421 (RFC 5321 §3.8, §4.2.3): the server is closing the session, whatever it
 * was asked. The same error at every step, from the greeting to the end of data:
 * BLAST_ECLOSED, "the server closed the session: 421 ...", and the session is dead.
 */
static int server_closed(struct smtp_session *s, struct blast_error *err)
{
    return die(s, refused(s, BLAST_ECLOSED, "the server closed the session", err));
}

/* Out of memory while building commands: the session cannot go on. */
static int no_memory(struct smtp_session *s, struct blast_error *err)
{
    return die(s, blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory"));
}

/*
 * RFC 5321 §4.3.1, RFC 2920 §3.1: a server speaks only to answer a command (or,
 * once, to say 421 before it closes: §3.8). Called before a write when every
 * command written so far has had its reply read: whatever the server has sent
 * since is a reply no command asked for, and the session is out of step.
 */
static int expect_quiet(struct smtp_session *s, struct blast_error *err)
{
    struct smtp_reply r;
    struct blast_error ignored;
    char shown[80];
    size_t used = 0;
    ssize_t n;

    if (s->in.len == 0 && (n = conn_read_now(s->conn, &s->in, err)) < 0)
        return die(s, (int)n);
    if (s->in.len == 0)
        return 0;
    blast_error_clear(&ignored);
    if (smtp_reply_parse(s->in.data, s->in.len, &r, &used, &ignored) == 1 && r.code == 421 &&
        used == s->in.len) {
        s->reply = r;
        return server_closed(s, err);
    }
    return out_of_step(s, err, "it sent '%s' when no reply was awaited",
                       unread_text(s, shown, sizeof shown));
}

/* After the last reply a group awaits: any byte left over is a reply too many. */
static int expect_no_more(struct smtp_session *s, struct blast_error *err)
{
    char shown[80];

    if (s->in.len == 0)
        return 0;
    return out_of_step(s, err, "more replies than commands: '%s' after the last one awaited",
                       unread_text(s, shown, sizeof shown));
}

/* ---- EHLO and capabilities ----------------------------------------------------------- */

static bool keyword(const char *line, size_t len, const char *kw, const char **rest)
{
    size_t n = strlen(kw);

    if (len < n || strncasecmp(line, kw, n) != 0 || (len > n && line[n] != ' ' && line[n] != '='))
        return false;
    if (rest != NULL)
        *rest = len > n ? line + n + 1 : line + len;
    return true;
}

static void parse_caps(struct smtp_session *s)
{
    const char *p = s->reply.text, *end;

    s->caps = 0;
    s->auth_mechs = 0;
    s->size_limit = 0;
    /* the first line is the greeting text; each following line one extension */
    p = strchr(p, '\n');
    while (p != NULL) {
        const char *rest;
        size_t len;

        p++;
        end = strchr(p, '\n');
        len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (keyword(p, len, "PIPELINING", NULL))
            s->caps |= SMTP_CAP_PIPELINING;
        else if (keyword(p, len, "STARTTLS", NULL))
            s->caps |= SMTP_CAP_STARTTLS;
        else if (keyword(p, len, "8BITMIME", NULL))
            s->caps |= SMTP_CAP_8BITMIME;
        else if (keyword(p, len, "SMTPUTF8", NULL))
            s->caps |= SMTP_CAP_SMTPUTF8;
        else if (keyword(p, len, "ENHANCEDSTATUSCODES", NULL))
            s->caps |= SMTP_CAP_ENHANCED;
        else if (keyword(p, len, "DSN", NULL))
            s->caps |= SMTP_CAP_DSN;
        else if (keyword(p, len, "CHUNKING", NULL))
            s->caps |= SMTP_CAP_CHUNKING;
        else if (keyword(p, len, "SIZE", &rest)) {
            s->caps |= SMTP_CAP_SIZE;
            s->size_limit = (size_t)strtoull(rest, NULL, 10);
        } else if (keyword(p, len, "AUTH", &rest)) {
            /* mechanisms separated by spaces; "AUTH=" is the pre-RFC 4954 form */
            s->caps |= SMTP_CAP_AUTH;
            while (rest < p + len) {
                size_t n = strcspn(rest, " \n");
                if (n == 5 && strncasecmp(rest, "PLAIN", 5) == 0)
                    s->auth_mechs |= SMTP_AUTH_PLAIN;
                else if (n == 5 && strncasecmp(rest, "LOGIN", 5) == 0)
                    s->auth_mechs |= SMTP_AUTH_LOGIN;
                else if (n == 8 && strncasecmp(rest, "CRAM-MD5", 8) == 0)
                    s->auth_mechs |= SMTP_AUTH_CRAM_MD5;
                else if (n == 7 && strncasecmp(rest, "XOAUTH2", 7) == 0)
                    s->auth_mechs |= SMTP_AUTH_XOAUTH2;
                rest += n;
                while (*rest == ' ')
                    rest++;
            }
        }
        p = end;
    }
}

static int ehlo(struct smtp_session *s, struct blast_error *err)
{
    int rc;

    set_state(s, SMTP_EHLO);
    if ((rc = send_cmd(s, err, "EHLO %s", s->helo)) < 0 || (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code / 100 == 2) {
        parse_caps(s);
        return 0;
    }
    if (s->reply.code == 421)
        return server_closed(s, err);
    /* RFC 5321 §3.2: fall back to HELO only when EHLO is not understood */
    if (s->reply.code != 500 && s->reply.code != 502)
        return refused(s, BLAST_EREPLY, "EHLO refused", err);
    set_state(s, SMTP_HELO);
    if ((rc = send_cmd(s, err, "HELO %s", s->helo)) < 0 || (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 421)
        return server_closed(s, err);
    if (s->reply.code / 100 != 2)
        return refused(s, BLAST_EREPLY, "HELO refused", err);
    s->caps = 0;
    s->auth_mechs = 0;
    s->size_limit = 0;
    return 0;
}

static int starttls(struct smtp_session *s, struct blast_error *err)
{
    int rc;

    if (!(s->caps & SMTP_CAP_STARTTLS))
        return blast_error_set(err, BLAST_ETLS, NULL, 0, 0,
                               "the server does not offer STARTTLS, and the relay requires it "
                               "(tls: starttls); nothing was sent in the clear");
    set_state(s, SMTP_STARTTLS);
    if ((rc = send_cmd(s, err, "STARTTLS")) < 0 || (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 421)
        return server_closed(s, err);
    if (s->reply.code != 220)
        return refused(s, BLAST_ETLS, "STARTTLS refused", err);
    /* RFC 3207 §4.2 / CVE-2011-0411: anything sent before the handshake is not to be trusted */
    if (s->in.len > 0)
        return die(s, blast_error_set(err, BLAST_EPROTO, NULL, 0, 0,
                                      "the server sent %zu bytes after its STARTTLS reply, "
                                      "before the TLS handshake",
                                      s->in.len));
    set_state(s, SMTP_TLS);
    if ((rc = conn_start_tls(s->conn, s->o.tls_ctx, deadline_of(s, SMTP_TLS), err)) < 0)
        return die(s, rc);
    log_msg(s->o.log, LOG_LEVEL_DEBUG, "%s: TLS established: %s, %s", s->o.label,
            conn_tls_version(s->conn), conn_tls_cipher(s->conn));
    /* RFC 3207 §4.2: forget everything learned before TLS, and ask again */
    s->caps = 0;
    s->auth_mechs = 0;
    return ehlo(s, err);
}

/* ---- AUTH (RFC 4954) ----------------------------------------------------------------- */

static char *b64_encode(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* RFC 4648 §4 base64, which RFC 4954 §4 requires of challenges: padding at the end only. */
static bool is_base64(const char *in, size_t len)
{
    size_t i, pad = 0;

    if (len % 4 != 0)
        return false;
    for (i = 0; i < len; i++) {
        char c = in[i];
        if (c == '=') {
            if (i + 2 < len)
                return false;
            pad++;
        } else if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return false;
        }
    }
    return true;
}

/* Decode base64 checked by is_base64(); returns the byte count. out holds 3 * len / 4 + 1. */
static int b64_decode(const char *in, size_t len, unsigned char *out)
{
    int n = len > 0 ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)len) : 0;
    size_t pad = 0;

    if (n < 0)
        return -1;
    while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
        pad++;
    n -= (int)pad;
    out[n] = '\0';
    return n;
}

/* Send a secret line (masked in the transcript) and wipe our copy. */
static int send_secret(struct smtp_session *s, const char *prefix, const void *secret, size_t len,
                       struct blast_error *err)
{
    char *b64 = b64_encode(secret, len), *line;
    char shown[64];
    size_t n;
    int rc;

    if (b64 == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    n = strlen(prefix) + strlen(b64) + 1;
    line = malloc(n);
    if (line == NULL) {
        OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    snprintf(line, n, "%s%s", prefix, b64);
    snprintf(shown, sizeof shown, "%s********", prefix);
    rc = send_line(s, line, shown, err);
    OPENSSL_cleanse(line, strlen(line));
    OPENSSL_cleanse(b64, strlen(b64));
    free(line);
    free(b64);
    return rc;
}

/*
 * The server did not follow the exchange it agreed to. Whatever it meant, no
 * credential goes to it again in this run: the relay is given up.
 */
static int auth_broken(struct smtp_session *s, const char *why, struct blast_error *err)
{
    s->give_up = true;
    return die(s, blast_error_set(err, BLAST_EAUTH, NULL, 0, 0,
                                  "the server broke the AUTH exchange (RFC 4954 §4): %s", why));
}

/*
 * RFC 4954 §4: a client cancels an exchange with a line "*", which the server
 * must answer with 501. Sent when a challenge is not base64 or comes where the
 * mechanism has nothing more to say; nothing else is sent after it but QUIT.
 */
static int auth_cancel(struct smtp_session *s, const char *why, struct blast_error *err)
{
    struct blast_error ignored;
    char text[300];

    blast_error_clear(&ignored);
    log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: C: *", s->o.label);
    buf_reset(&s->in); /* the answer to "*" is what counts, not what came before it */
    /* its answer ends the exchange, but nothing waits on it longer than on QUIT's */
    if (conn_write_reading(s->conn, "*\r\n", 3, timeout_of(s, SMTP_AUTH), &s->in, NULL, &ignored) ==
        0)
        read_reply_within(s, s->o.timeouts.quit, &ignored);
    snprintf(text, sizeof text, "%s; the exchange was cancelled with '*'", why);
    return auth_broken(s, text, err);
}

/*
 * A 334 has come: its text must be a base64 challenge, and it must be the only
 * reply waiting (a second 334 at once is a reply to nothing). Otherwise cancel,
 * before any credential answers it.
 */
static int challenge(struct smtp_session *s, const char *mech, struct blast_error *err)
{
    char why[200];
    ssize_t n;

    if (!is_base64(s->reply.text, strlen(s->reply.text))) {
        snprintf(why, sizeof why, "AUTH %s: the challenge '%.60s' is not base64", mech,
                 s->reply.text);
        return auth_cancel(s, why, err);
    }
    if (s->in.len == 0 && (n = conn_read_now(s->conn, &s->in, err)) < 0)
        return die(s, (int)n);
    if (s->in.len > 0) {
        snprintf(why, sizeof why, "AUTH %s: more than one reply to one step", mech);
        return auth_cancel(s, why, err);
    }
    return 0;
}

static int auth_plain(struct smtp_session *s, struct blast_error *err)
{
    size_t ul = strlen(s->o.username), pl = strlen(s->o.password);
    char *msg = malloc(ul + pl + 2);
    int rc;

    if (msg == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    /* RFC 4616: authzid (empty) NUL authcid NUL passwd, sent as the initial response */
    msg[0] = '\0';
    memcpy(msg + 1, s->o.username, ul);
    msg[1 + ul] = '\0';
    memcpy(msg + 2 + ul, s->o.password, pl);
    rc = send_secret(s, "AUTH PLAIN ", msg, ul + pl + 2, err);
    OPENSSL_cleanse(msg, ul + pl + 2);
    free(msg);
    if (rc == 0)
        rc = read_reply(s, err);
    /* PLAIN has no server challenge: the initial response said everything */
    if (rc == 0 && s->reply.code == 334)
        return auth_cancel(s, "AUTH PLAIN: a 334 after the initial response", err);
    return rc;
}

static int auth_login(struct smtp_session *s, struct blast_error *err)
{
    int rc;

    if ((rc = send_cmd(s, err, "AUTH LOGIN")) < 0 || (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 235)
        return auth_broken(s, "AUTH LOGIN: 235 before any credential was sent", err);
    if (s->reply.code != 334)
        return 0;
    if ((rc = challenge(s, "LOGIN", err)) < 0 ||
        (rc = send_secret(s, "", s->o.username, strlen(s->o.username), err)) < 0 ||
        (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 235)
        return auth_broken(s, "AUTH LOGIN: 235 before the password was sent", err);
    if (s->reply.code != 334)
        return 0;
    if ((rc = challenge(s, "LOGIN", err)) < 0 ||
        (rc = send_secret(s, "", s->o.password, strlen(s->o.password), err)) < 0 ||
        (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 334)
        return auth_cancel(s, "AUTH LOGIN: another challenge after the password", err);
    return 0;
}

static int auth_cram_md5(struct smtp_session *s, struct blast_error *err)
{
    unsigned char challenge_bytes[SMTP_REPLY_TEXT_MAX], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *resp;
    size_t ul = strlen(s->o.username), n, i;
    int rc, clen;

    if ((rc = send_cmd(s, err, "AUTH CRAM-MD5")) < 0 || (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 235)
        return auth_broken(s, "AUTH CRAM-MD5: 235 before the response was sent", err);
    if (s->reply.code != 334)
        return 0;
    if ((rc = challenge(s, "CRAM-MD5", err)) < 0)
        return rc;
    clen = b64_decode(s->reply.text, strlen(s->reply.text), challenge_bytes);
    if (clen < 0)
        return auth_cancel(s, "AUTH CRAM-MD5: the challenge is not base64", err);
    /* RFC 2195 §2: a unique challenge; an empty one makes the response replayable */
    if (clen == 0)
        return auth_cancel(s, "AUTH CRAM-MD5: the challenge is empty", err);
    /* RFC 2195: username SP hex(HMAC-MD5(password, challenge)) */
    if (HMAC(EVP_md5(), s->o.password, (int)strlen(s->o.password), challenge_bytes, (size_t)clen,
             mac, &maclen) == NULL)
        return blast_error_set(err, BLAST_EAUTH, NULL, 0, 0, "CRAM-MD5 is not available here");
    n = ul + 1 + 2 * maclen + 1;
    resp = malloc(n);
    if (resp == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    memcpy(resp, s->o.username, ul);
    resp[ul] = ' ';
    for (i = 0; i < maclen; i++) {
        resp[ul + 1 + 2 * i] = "0123456789abcdef"[mac[i] >> 4];
        resp[ul + 2 + 2 * i] = "0123456789abcdef"[mac[i] & 15];
    }
    resp[n - 1] = '\0';
    rc = send_secret(s, "", resp, n - 1, err);
    OPENSSL_cleanse(resp, n);
    OPENSSL_cleanse(mac, sizeof mac);
    free(resp);
    if (rc == 0)
        rc = read_reply(s, err);
    if (rc == 0 && s->reply.code == 334)
        return auth_cancel(s, "AUTH CRAM-MD5: another challenge after the response", err);
    return rc;
}

static int auth_xoauth2(struct smtp_session *s, struct blast_error *err)
{
    struct buf b = BUF_INIT;
    int rc;

    /* user=U ^A auth=Bearer T ^A ^A (Google's and Microsoft's XOAUTH2) */
    if (buf_printf(&b, "user=%s\001auth=Bearer %s\001\001", s->o.username, s->o.password) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    rc = send_secret(s, "AUTH XOAUTH2 ", b.data, b.len, err);
    OPENSSL_cleanse(b.data, b.len);
    buf_free(&b);
    if (rc == 0)
        rc = read_reply(s, err);
    if (rc < 0 || s->reply.code != 334)
        return rc;
    /* a 334 carries a JSON error, in base64; an empty line makes the server finish with 5xx */
    if ((rc = challenge(s, "XOAUTH2", err)) < 0 || (rc = send_line(s, "", NULL, err)) < 0 ||
        (rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 334)
        return auth_cancel(s, "AUTH XOAUTH2: another challenge after the error", err);
    return 0;
}

static const char *mech_names(unsigned mechs, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s%s", mechs & SMTP_AUTH_CRAM_MD5 ? " CRAM-MD5" : "",
             mechs & SMTP_AUTH_PLAIN ? " PLAIN" : "", mechs & SMTP_AUTH_LOGIN ? " LOGIN" : "",
             mechs & SMTP_AUTH_XOAUTH2 ? " XOAUTH2" : "");
    return out[0] != '\0' ? out + 1 : "none";
}

static int authenticate(struct smtp_session *s, struct blast_error *err)
{
    static const unsigned choice_mech[] = {
        [SMTP_AUTH_CHOICE_PLAIN] = SMTP_AUTH_PLAIN,
        [SMTP_AUTH_CHOICE_LOGIN] = SMTP_AUTH_LOGIN,
        [SMTP_AUTH_CHOICE_CRAM_MD5] = SMTP_AUTH_CRAM_MD5,
        [SMTP_AUTH_CHOICE_XOAUTH2] = SMTP_AUTH_XOAUTH2,
    };
    unsigned mech;
    char offered[64];
    int rc;

    set_state(s, SMTP_AUTH);
    /* docs/architecture.md: never credentials in the clear to anything but loopback */
    if (!conn_is_tls(s->conn) && !conn_is_loopback(s->conn) && !s->o.allow_plaintext_auth)
        return blast_error_set(err, BLAST_ETLS, NULL, 0, 0,
                               "refusing to send the password over an unencrypted connection");
    if (!(s->caps & SMTP_CAP_AUTH))
        return blast_error_set(err, BLAST_EAUTH, NULL, 0, 0,
                               "the server does not offer AUTH, but the relay has a username");
    if (s->o.auth == SMTP_AUTH_CHOICE_AUTO) {
        /* strongest first; XOAUTH2 needs a token, so it is never guessed */
        mech = s->auth_mechs & SMTP_AUTH_CRAM_MD5 ? SMTP_AUTH_CRAM_MD5
               : s->auth_mechs & SMTP_AUTH_PLAIN  ? SMTP_AUTH_PLAIN
               : s->auth_mechs & SMTP_AUTH_LOGIN  ? SMTP_AUTH_LOGIN
                                                  : 0;
        if (mech == 0)
            return blast_error_set(err, BLAST_EAUTH, NULL, 0, 0,
                                   "no AUTH mechanism in common (the server offers: %s)",
                                   mech_names(s->auth_mechs, offered, sizeof offered));
    } else {
        mech = choice_mech[s->o.auth];
        if (!(s->auth_mechs & mech))
            return blast_error_set(err, BLAST_EAUTH, NULL, 0, 0,
                                   "the server does not offer AUTH %s (it offers: %s)",
                                   mech_names(mech, offered, sizeof offered),
                                   mech_names(s->auth_mechs, offered + 32, sizeof offered - 32));
    }
    switch (mech) {
    case SMTP_AUTH_CRAM_MD5:
        rc = auth_cram_md5(s, err);
        break;
    case SMTP_AUTH_PLAIN:
        rc = auth_plain(s, err);
        break;
    case SMTP_AUTH_LOGIN:
        rc = auth_login(s, err);
        break;
    default:
        rc = auth_xoauth2(s, err);
        break;
    }
    if (rc < 0)
        return rc;
    if (s->reply.code == 235)
        return 0;
    if (s->reply.code / 100 == 3 || s->reply.code / 100 == 2) {
        char why[80];
        snprintf(why, sizeof why, "AUTH answered %d, which no step of the exchange gets",
                 s->reply.code);
        return auth_broken(s, why, err);
    }
    if (s->reply.code == 421)
        return server_closed(s, err);
    /*
     * 535 and other 5xx: the credentials are wrong, and trying them again could lock
     * the account; 454 and other 4xx: temporary. Either way not this session.
     */
    if (s->reply.code / 100 == 5)
        s->give_up = true;
    return refused(s, BLAST_EAUTH, "authentication refused", err);
}

/* ---- open / close -------------------------------------------------------------------- */

static void choose_helo(struct smtp_session *s)
{
    char host[256];

    if (s->o.helo_name != NULL) {
        snprintf(s->helo, sizeof s->helo, "%s", s->o.helo_name);
        return;
    }
    /* RFC 5321 §4.1.4: a fully qualified name, or else an address literal */
    if (gethostname(host, sizeof host) == 0 && strchr(host, '.') != NULL) {
        host[sizeof host - 1] = '\0';
        snprintf(s->helo, sizeof s->helo, "%s", host);
        return;
    }
    if (conn_local_literal(s->conn, s->helo, sizeof s->helo) < 0)
        snprintf(s->helo, sizeof s->helo, "localhost.localdomain");
}

int smtp_session_open(const struct smtp_options *o, struct smtp_session **out,
                      struct blast_error *err)
{
    struct smtp_session *s;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    s->o = *o;
    if (s->o.label == NULL)
        s->o.label = o->host;
    buf_init(&s->in);
    buf_init(&s->out);
    *out = s;
    set_state(s, SMTP_CONNECT);
    if (o->conn != NULL)
        s->conn = o->conn;
    else if ((rc = conn_open_cancel(o->host, o->port, deadline_of(s, SMTP_CONNECT),
                                    o->cancel_fd != NULL ? *o->cancel_fd : -1, &s->conn, err)) < 0)
        return die(s, rc);
    log_msg(o->log, LOG_LEVEL_DEBUG, "%s: connected to %s port %d", s->o.label, o->host, o->port);
    if (o->tls == SMTP_TLS_IMPLICIT) {
        set_state(s, SMTP_TLS);
        if ((rc = conn_start_tls(s->conn, o->tls_ctx, deadline_of(s, SMTP_TLS), err)) < 0)
            return die(s, rc);
    }
    choose_helo(s);
    set_state(s, SMTP_GREETING);
    if ((rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 421)
        return server_closed(s, err);
    if (s->reply.code != 220)
        return die(s, refused(s, BLAST_EREPLY, "the server refused the connection", err));
    if ((rc = ehlo(s, err)) < 0)
        return die(s, rc);
    if (o->tls == SMTP_TLS_STARTTLS && (rc = starttls(s, err)) < 0)
        return die(s, rc);
    if (o->username != NULL && (rc = authenticate(s, err)) < 0)
        return die(s, rc);
    set_state(s, SMTP_READY);
    /* transactions are not cancelled: they finish, or the caller interrupts them */
    conn_set_cancel(s->conn, -1);
    /* the statistics are about mail transactions */
    memset(&s->stats, 0, sizeof s->stats);
    s->waited = false;
    return 0;
}

void smtp_session_quit(struct smtp_session *s)
{
    struct blast_error ignored;

    if (s == NULL || s->conn == NULL || s->state == SMTP_CLOSED)
        return;
    blast_error_clear(&ignored);
    if (!s->dead) {
        set_state(s, SMTP_QUIT);
        if (send_cmd(s, &ignored, "QUIT") == 0)
            read_reply(s, &ignored);
    }
    conn_close(s->conn);
    s->conn = NULL;
    set_state(s, SMTP_CLOSED);
}

void smtp_session_interrupt(struct smtp_session *s)
{
    if (s != NULL)
        conn_interrupt(s->conn);
}

void smtp_session_free(struct smtp_session *s)
{
    if (s == NULL)
        return;
    conn_close(s->conn);
    buf_free(&s->in);
    buf_free(&s->out);
    for (size_t i = 0; i < SMTP_AHEAD + 1; i++)
        buf_free(&s->stage[i]);
    free(s);
}

enum smtp_state smtp_session_state(const struct smtp_session *s)
{
    return s->state;
}

const struct smtp_reply *smtp_session_reply(const struct smtp_session *s)
{
    return &s->reply;
}

unsigned smtp_session_caps(const struct smtp_session *s)
{
    return s->caps;
}

unsigned smtp_session_auth_mechs(const struct smtp_session *s)
{
    return s->auth_mechs;
}

size_t smtp_session_size_limit(const struct smtp_session *s)
{
    return s->size_limit;
}

const struct conn *smtp_session_conn(const struct smtp_session *s)
{
    return s->conn;
}

bool smtp_session_out_of_step(const struct smtp_session *s)
{
    return s->out_of_step;
}

bool smtp_session_give_up(const struct smtp_session *s)
{
    return s->give_up;
}

/* ---- the transaction ----------------------------------------------------------------- */

const struct smtp_stats *smtp_session_stats(const struct smtp_session *s)
{
    return &s->stats;
}

int smtp_dot_stuff(struct buf *out, const char *data, size_t len, struct blast_error *err)
{
    size_t start = 0, run = 0;
    int rc;

    if ((rc = buf_reserve(out, len + len / 64 + 8)) < 0)
        return rc;
    /* a line at a time: memchr finds the line ends (this runs over every byte sent) */
    while (start < len) {
        const char *nl = memchr(data + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - data) : len;     /* the LF, or the end */
        size_t body = nl != NULL && end > start ? end - 1 : end; /* where its CR must be */
        const char *cr = body > start ? memchr(data + start, '\r', body - start) : NULL;

        /* docs/architecture.md: no bare CR or LF ever reaches the wire (SMTP smuggling) */
        if (cr != NULL)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "the message has a bare CR or LF at byte %zu",
                                   (size_t)(cr - data));
        if (nl != NULL && (end == start || data[end - 1] != '\r'))
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "the message has a bare CR or LF at byte %zu", end);
        if (data[start] == '.') {
            /* RFC 5321 §4.5.2: a line starting with "." gets one more */
            if ((rc = buf_append(out, data + run, start - run)) < 0 ||
                (rc = buf_putc(out, '.')) < 0)
                return rc;
            run = start;
        }
        start = nl != NULL ? end + 1 : len;
    }
    if ((rc = buf_append(out, data + run, len - run)) < 0)
        return rc;
    if (len > 0 && data[len - 1] != '\n' && (rc = buf_puts(out, "\r\n")) < 0)
        return rc;
    return buf_puts(out, ".\r\n");
}

void smtp_queue_id(const char *text, char *out, size_t size)
{
    static const char *const markers[] = {"queued as ", "id=", NULL};
    const char *p, *end;
    size_t i, n;

    out[0] = '\0';
    for (i = 0; markers[i] != NULL; i++) {
        p = strstr(text, markers[i]);
        if (p == NULL)
            continue;
        p += strlen(markers[i]);
        n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.@<>");
        while (n > 0 && (p[n - 1] == '.' || p[n - 1] == '>'))
            n--;
        if (*p == '<') {
            p++;
            n = n > 0 ? n - 1 : 0;
        }
        if (n > 0 && n < size) {
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
    }
    /* Sendmail: "<id> Message accepted for delivery"; Gmail: "... <id> - gsmtp" */
    end = strstr(text, " Message accepted");
    if (end == NULL)
        end = strstr(text, " - gsmtp");
    if (end != NULL) {
        p = end;
        while (p > text && p[-1] != ' ')
            p--;
        n = (size_t)(end - p);
        if (n > 0 && n < size) {
            memcpy(out, p, n);
            out[n] = '\0';
        }
    }
}

/* RFC 3463 §3: detail codes "useful only as a persistent transient" condition. */
static const char *const transient_only[] = {
    ".2.2", /* mailbox full: the recipient can make room */
    ".3.1", /* mail system full */
    ".4.1", /* no answer from host */
    ".4.2", /* bad connection */
    ".4.3", /* directory server failure */
    ".4.5", /* mail system congestion */
    ".4.6", /* routing loop detected */
    ".5.3", /* too many recipients: send the rest in another transaction */
    NULL,
};

/* RFC 3463 §3: detail codes "useful only as a permanent" failure. */
static const char *const permanent_only[] = {
    ".1.1", ".1.2", ".1.3", ".1.6", /* no such mailbox or system, bad syntax, moved */
    ".2.3",                         /* message longer than the mailbox takes */
    ".3.4",                         /* message too big for the system */
    ".5.1", ".5.2", ".5.4",         /* invalid command, syntax, arguments */
    ".6.1",                         /* media not supported */
    NULL,
};

static bool detail_in(const char *enhanced, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(enhanced + 1, *list) == 0)
            return true;
    return false;
}

bool smtp_reply_too_many_recipients(const struct smtp_reply *r, enum smtp_state step)
{
    if (step != SMTP_RCPT || r->code / 100 == 2)
        return false;
    if (r->enhanced[0] != '\0')
        return strcmp(r->enhanced + 1, ".5.3") == 0;
    return r->code == 552;
}

enum smtp_outcome smtp_reply_outcome(const struct smtp_reply *r, enum smtp_state step)
{
    const char *e = r->enhanced;

    if (r->code / 100 == 2)
        return SMTP_OUTCOME_DELIVERED;
    /* 4yz is temporary whatever its detail: Postfix says 450 4.1.1 while it verifies */
    if (r->code / 100 != 5)
        return SMTP_OUTCOME_DEFERRED;
    if (e[0] == '5' && detail_in(e, permanent_only))
        return SMTP_OUTCOME_FAILED;
    if (e[0] == '5' && detail_in(e, transient_only))
        return SMTP_OUTCOME_DEFERRED;
    /* RFC 5321 §4.5.3.1.10: 552 to RCPT is "too many recipients", to be taken as 452 */
    if (r->code == 552 && step == SMTP_RCPT)
        return SMTP_OUTCOME_DEFERRED;
    return SMTP_OUTCOME_FAILED;
}

/* Decide every recipient still open: those not refused at RCPT. */
static void decide(struct smtp_txn *t, enum smtp_outcome outcome, enum smtp_state step,
                   const struct smtp_reply *reply, const char *detail)
{
    size_t i;

    for (i = 0; i < t->nrcpts; i++) {
        struct smtp_rcpt *r = &t->rcpts[i];
        if (r->outcome != SMTP_OUTCOME_NONE)
            continue;
        r->outcome = outcome;
        r->step = step;
        if (reply != NULL)
            r->reply = *reply;
        else
            memset(&r->reply, 0, sizeof r->reply);
        snprintf(r->detail, sizeof r->detail, "%s", detail != NULL ? detail : "");
    }
}

/*
 * Forget what replies said of t's recipients: they were read from a session out
 * of step, so they may have answered other commands.
 */
static void undecide(struct smtp_txn *t)
{
    size_t i;

    for (i = 0; i < t->nrcpts; i++) {
        t->rcpts[i].outcome = SMTP_OUTCOME_NONE;
        t->rcpts[i].step = SMTP_MAIL;
        memset(&t->rcpts[i].reply, 0, sizeof t->rcpts[i].reply);
    }
    t->queue_id[0] = '\0';
    t->accepted = 0;
    t->data_ok = false;
}

static void txn_reset(struct smtp_txn *t)
{
    size_t i;

    for (i = 0; i < t->nrcpts; i++) {
        t->rcpts[i].outcome = SMTP_OUTCOME_NONE;
        t->rcpts[i].step = SMTP_MAIL;
        t->rcpts[i].detail[0] = '\0';
        memset(&t->rcpts[i].reply, 0, sizeof t->rcpts[i].reply);
    }
    t->queue_id[0] = '\0';
    t->accepted = 0;
    t->data_ok = false;
    t->untried = false;
}

/* xtext (RFC 3461 §4): printable ASCII but '+' and '=' as is, the rest "+XX". */
static int append_xtext(struct buf *out, const char *s)
{
    int rc = 0;

    for (; *s != '\0' && rc == 0; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 33 && c <= 126 && c != '+' && c != '=')
            rc = buf_putc(out, (char)c);
        else
            rc = buf_printf(out, "+%02X", c);
    }
    return rc;
}

static bool is_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* Append one command line to the group being built, and to the transcript. */
static int add_line(struct smtp_session *s, struct buf *out, const char *line, size_t len)
{
    int rc;

    log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: C: %.*s", s->o.label, (int)len, line);
    if ((rc = buf_append(out, line, len)) < 0 || (rc = buf_puts(out, "\r\n")) < 0)
        return rc;
    return 0;
}

/* MAIL FROM and its parameters (RFC 1870, 6152, 6531, 3461). */
static int add_mail(struct smtp_session *s, struct buf *out, const struct smtp_txn *t)
{
    struct buf line = BUF_INIT;
    int rc;

    rc = buf_printf(&line, "MAIL FROM:<%s>", t->mail_from);
    if (rc == 0 && (s->caps & SMTP_CAP_SIZE))
        rc = buf_printf(&line, " SIZE=%zu", t->len);
    if (rc == 0 && t->smtputf8)
        rc = buf_puts(&line, " SMTPUTF8");
    if (rc == 0 && t->eightbit && (s->caps & SMTP_CAP_8BITMIME))
        rc = buf_puts(&line, " BODY=8BITMIME");
    if (rc == 0 && (s->caps & SMTP_CAP_DSN) && s->o.dsn_ret != SMTP_DSN_RET_DEFAULT)
        rc = buf_puts(&line, s->o.dsn_ret == SMTP_DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if (rc == 0 && (s->caps & SMTP_CAP_DSN) && s->o.dsn_notify != 0 && t->envid != NULL &&
        (rc = buf_puts(&line, " ENVID=")) == 0)
        rc = append_xtext(&line, t->envid);
    if (rc == 0)
        rc = add_line(s, out, line.data, line.len);
    buf_free(&line);
    return rc;
}

static int add_rcpt(struct smtp_session *s, struct buf *out, const struct smtp_rcpt *r)
{
    struct buf line = BUF_INIT;
    unsigned n = s->o.dsn_notify;
    int rc;

    rc = buf_printf(&line, "RCPT TO:<%s>", r->address);
    if (rc == 0 && (s->caps & SMTP_CAP_DSN) && n != 0) {
        rc = buf_printf(&line, " NOTIFY=%s%s%s%s", n & SMTP_DSN_NEVER ? "NEVER" : "",
                        n & SMTP_DSN_SUCCESS ? "SUCCESS" : "",
                        n & SMTP_DSN_FAILURE ? (n & SMTP_DSN_SUCCESS ? ",FAILURE" : "FAILURE") : "",
                        n & SMTP_DSN_DELAY
                            ? (n & (SMTP_DSN_SUCCESS | SMTP_DSN_FAILURE) ? ",DELAY" : "DELAY")
                            : "");
        /* RFC 3461 §4.2: ORCPT with the rfc822 address type (ASCII addresses only) */
        if (rc == 0 && is_ascii(r->address) && (rc = buf_puts(&line, " ORCPT=rfc822;")) == 0)
            rc = append_xtext(&line, r->address);
    }
    if (rc == 0)
        rc = add_line(s, out, line.data, line.len);
    buf_free(&line);
    return rc;
}

/* The MAIL, RCPT and DATA (or BDAT) commands of t. */
static int add_envelope(struct smtp_session *s, struct buf *out, struct smtp_txn *t, bool bdat)
{
    char line[64];
    size_t i;
    int rc;

    if ((rc = add_mail(s, out, t)) < 0)
        return rc;
    for (i = 0; i < t->nrcpts; i++)
        if ((rc = add_rcpt(s, out, &t->rcpts[i])) < 0)
            return rc;
    if (!bdat)
        return add_line(s, out, "DATA", 4);
    /* RFC 3030 §2: the message goes as it is, no dot-stuffing, its size announced */
    snprintf(line, sizeof line, "BDAT %zu LAST", t->len);
    if ((rc = add_line(s, out, line, strlen(line))) < 0)
        return rc;
    log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: C: <message, %zu bytes>", s->o.label, t->len);
    return buf_append(out, t->data, t->len);
}

static bool crlf_only(const char *data, size_t len, size_t *where)
{
    const char *p = data, *end = data + len;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (p == data || p[-1] != '\r') {
            *where = (size_t)(p - data);
            return false;
        }
        p++;
    }
    for (p = data; (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p++)
        if (p + 1 >= end || p[1] != '\n') {
            *where = (size_t)(p - data);
            return false;
        }
    return true;
}

/*
 * What can be decided before sending: a message over the server's SIZE (RFC 1870
 * §6), an address that needs SMTPUTF8 the server lacks, or bytes that must never
 * reach the wire. Returns true when t was decided (and handed back).
 */
static bool refuse_locally(struct smtp_session *s, const struct smtp_feed *feed, struct smtp_txn *t)
{
    char why[200];
    size_t where;

    if ((s->caps & SMTP_CAP_SIZE) && s->size_limit > 0 && t->len > s->size_limit)
        snprintf(why, sizeof why,
                 "the message (%zu bytes) exceeds the server's SIZE limit (%zu bytes)", t->len,
                 s->size_limit);
    else if (t->smtputf8 && !(s->caps & SMTP_CAP_SMTPUTF8))
        snprintf(why, sizeof why, "the address needs SMTPUTF8, which the server does not offer");
    else if (!crlf_only(t->data, t->len, &where))
        snprintf(why, sizeof why, "the message has a bare CR or LF at byte %zu", where);
    else
        return false;
    decide(t, SMTP_OUTCOME_FAILED, SMTP_MAIL, NULL, why);
    feed->done(feed->arg, t);
    return true;
}

/* The next transaction to send, after the ones decided without the server. */
static struct smtp_txn *next_txn(struct smtp_session *s, const struct smtp_feed *feed)
{
    struct smtp_txn *t;

    while ((t = feed->next(feed->arg)) != NULL) {
        txn_reset(t);
        if (!refuse_locally(s, feed, t))
            return t;
    }
    return NULL;
}

/*
 * Write the group of commands (and bodies) built in s->out, reading replies as
 * they come. *sent: how many of its bytes may have reached the server (all of
 * them on success; see conn_write_reading).
 */
static int write_group(struct smtp_session *s, size_t *sent, struct blast_error *err)
{
    size_t n = 0;
    int rc;

    *sent = 0;
    if (s->out.len == 0)
        return 0;
    rc = conn_write_reading(s->conn, s->out.data, s->out.len, s->o.timeouts.block, &s->in, &n, err);
    s->stats.writes++;
    s->waited = false;
    *sent = n;
    buf_reset(&s->out);
    return rc < 0 ? die(s, rc) : 0;
}

/* "the server closed the session: 421 ..." for the recipients still open in t. */
static int closed_at(struct smtp_session *s, struct smtp_txn *t, enum smtp_state step,
                     struct blast_error *err)
{
    decide(t, SMTP_OUTCOME_DEFERRED, step, &s->reply, NULL);
    return server_closed(s, err);
}

/* 503 "bad sequence of commands" where our sequence was good: the server's transaction is not ours.
 */
static int bad_sequence(struct smtp_session *s, struct blast_error *err)
{
    return out_of_step(s, err, "%s answered %d%s%s %s", state_names[s->state], s->reply.code,
                       s->reply.enhanced[0] ? " " : "", s->reply.enhanced, s->reply.text);
}

/*
 * The replies to the MAIL, RCPTs and DATA (or BDAT ... LAST) of t. Decides the
 * recipients refused on the way; a negative return when the session died.
 */
static int read_envelope(struct smtp_session *s, struct smtp_txn *t, bool bdat,
                         struct blast_error *err)
{
    struct smtp_reply mail;
    size_t i;
    int rc;

    set_state(s, SMTP_MAIL);
    if ((rc = read_reply(s, err)) < 0)
        return rc;
    mail = s->reply;
    if (mail.code == 421)
        return closed_at(s, t, SMTP_MAIL, err);
    if (mail.code == 503)
        return bad_sequence(s, err);
    set_state(s, SMTP_RCPT);
    for (i = 0; i < t->nrcpts; i++) {
        struct smtp_rcpt *r = &t->rcpts[i];
        if ((rc = read_reply(s, err)) < 0)
            return rc;
        if (s->reply.code == 421)
            return closed_at(s, t, SMTP_RCPT, err);
        if (mail.code / 100 != 2) {
            /* the RCPT replies only echo the refused MAIL (RFC 2920 §3.1): that is the outcome */
            r->outcome = smtp_reply_outcome(&mail, SMTP_MAIL);
            r->step = SMTP_MAIL;
            r->reply = mail;
        } else if (s->reply.code == 503) {
            return bad_sequence(s, err);
        } else if (s->reply.code / 100 == 2) {
            t->accepted++;
        } else {
            r->outcome = smtp_reply_outcome(&s->reply, SMTP_RCPT);
            r->step = SMTP_RCPT;
            r->reply = s->reply;
        }
    }
    set_state(s, bdat ? SMTP_END_OF_DATA : SMTP_DATA);
    if ((rc = read_reply(s, err)) < 0)
        return rc;
    if (s->reply.code == 421)
        return closed_at(s, t, s->state, err);
    /* with no recipient accepted, DATA and BDAT are refused as they should be (RFC 2920 §3.1) */
    if (t->accepted > 0 && s->reply.code == 503)
        return bad_sequence(s, err);
    if (bdat) {
        /* BDAT ... LAST answers for the whole message (RFC 3030 §3) */
        if (t->accepted > 0) {
            decide(t, smtp_reply_outcome(&s->reply, SMTP_END_OF_DATA), SMTP_END_OF_DATA, &s->reply,
                   NULL);
            if (s->reply.code / 100 == 2)
                smtp_queue_id(s->reply.text, t->queue_id, sizeof t->queue_id);
        }
        t->data_ok = true;
        return 0;
    }
    if (s->reply.code == 354) {
        t->data_ok = true;
        return 0;
    }
    /* DATA refused (read_reply let only 354, 4yz and 5yz through): the message waits or fails */
    decide(t, smtp_reply_outcome(&s->reply, SMTP_DATA), SMTP_DATA, &s->reply, NULL);
    return 0;
}

/* ---- the stage of pipelined sessions ---------------------------------------------------- */

static int stage_slot(const struct smtp_session *s, const struct smtp_txn *t)
{
    int i;

    for (i = 0; i < SMTP_AHEAD + 1; i++)
        if (s->staged[i] == t)
            return i;
    return -1;
}

/* t leaves the pipeline (its body written, or it is done): its stage is free again. */
static void stage_release(struct smtp_session *s, const struct smtp_txn *t)
{
    int i = t != NULL ? stage_slot(s, t) : -1;

    if (i >= 0) {
        s->staged[i] = NULL;
        buf_reset(&s->stage[i]);
    }
}

/*
 * Take the next transaction from the feed into *out (NULL when there is none):
 * its message copied out, dot-stuffed, into a free stage (so the feed may build
 * the next one in the same buffer), and announced with feed->leaving.
 */
static int fetch(struct smtp_session *s, const struct smtp_feed *feed, struct smtp_txn **out,
                 struct blast_error *err)
{
    struct smtp_txn *t;
    int i, rc;

    *out = NULL;
    i = stage_slot(s, NULL);
    if (i < 0)
        return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "no free stage (a bug)");
    if ((t = next_txn(s, feed)) == NULL)
        return 0;
    buf_reset(&s->stage[i]);
    if ((rc = smtp_dot_stuff(&s->stage[i], t->data, t->len, err)) < 0) {
        decide(t, SMTP_OUTCOME_DEFERRED, s->state, NULL, err->text);
        feed->done(feed->arg, t);
        return rc;
    }
    s->staged[i] = t;
    if (feed->leaving != NULL && (rc = feed->leaving(feed->arg, t)) < 0) {
        stage_release(s, t);
        decide(t, SMTP_OUTCOME_DEFERRED, s->state, NULL, "stopped before the end of data");
        feed->done(feed->arg, t);
        return blast_error_set(err, rc, NULL, 0, 0, "stopped before the end of data");
    }
    *out = t;
    return 0;
}

/* The session ended before t, taken ahead, was written: deferred, and no attempt made. */
static void give_back(struct smtp_session *s, const struct smtp_feed *feed, struct smtp_txn *t)
{
    if (t == NULL)
        return;
    stage_release(s, t);
    t->untried = true;
    decide(t, SMTP_OUTCOME_DEFERRED, s->state, NULL, "not attempted: the session ended");
    feed->done(feed->arg, t);
}

static struct smtp_txn *ahead_pop(struct ahead *a)
{
    struct smtp_txn *t;

    if (a->count == 0)
        return NULL;
    t = a->t[a->head];
    a->head = (a->head + 1) % SMTP_AHEAD;
    a->count--;
    return t;
}

/* Take transactions from the feed until SMTP_AHEAD are waiting or it has none for now. */
static int ahead_fill(struct smtp_session *s, const struct smtp_feed *feed, struct ahead *a,
                      struct blast_error *err)
{
    while (a->count < SMTP_AHEAD) {
        struct smtp_txn *t;
        int rc = fetch(s, feed, &t, err);
        if (rc < 0)
            return rc;
        if (t == NULL)
            break;
        a->t[(a->head + a->count++) % SMTP_AHEAD] = t;
    }
    return 0;
}

/* The session ended: what it took ahead goes back untried. */
static void ahead_give_back(struct smtp_session *s, const struct smtp_feed *feed, struct ahead *a)
{
    struct smtp_txn *t;

    while ((t = ahead_pop(a)) != NULL)
        give_back(s, feed, t);
}

/* The session died with t's replies outstanding: what is not decided is deferred or unknown. */
static void abandon(struct smtp_session *s, const struct smtp_feed *feed, struct smtp_txn *t,
                    bool unknown, const struct blast_error *err)
{
    if (t == NULL)
        return;
    stage_release(s, t);
    decide(t, unknown ? SMTP_OUTCOME_UNKNOWN : SMTP_OUTCOME_DEFERRED, s->state, NULL,
           err->text[0] != '\0' ? err->text : "the session ended");
    feed->done(feed->arg, t);
}

/*
 * The decision a final reply makes for t's recipients still open, and t handed
 * back. A lone "." (no recipient accepted) decides nothing.
 */
static void conclude(const struct smtp_feed *feed, struct smtp_txn *t, const struct smtp_reply *r,
                     bool lone_dot)
{
    if (!lone_dot) {
        decide(t, smtp_reply_outcome(r, SMTP_END_OF_DATA), SMTP_END_OF_DATA, r, NULL);
        if (r->code / 100 == 2)
            smtp_queue_id(r->text, t->queue_id, sizeof t->queue_id);
    }
    feed->done(feed->arg, t);
}

/* One round of a pipelined session: k's body and end of data, then k+1's envelope. */
struct round {
    struct smtp_txn *body; /* k: its body and end of data go in this round; NULL: none */
    struct smtp_txn *env;  /* k+1: its MAIL, RCPTs and DATA go; NULL: none */
    bool lone_dot;         /* k's DATA was accepted though every RCPT failed: "." alone */
    bool rset;             /* RSET goes before k+1's envelope */
    size_t eod_end;        /* where k's final ".\r\n" ends in the write */
    size_t env_at;         /* where k+1's commands start in it */
    size_t sent;           /* bytes of the write that may have left, when it failed */
    struct smtp_reply eod; /* the reply to k's end of data */
};

/* How far a round got when it failed, which says what each of its transactions is owed. */
enum round_failure {
    ROUND_NOT_WRITTEN, /* building it failed (memory, the feed): nothing of it left */
    ROUND_STOPPED,     /* the feed's sending() said stop, before the write */
    ROUND_WRITE,       /* the write failed after round.sent bytes, or the server spoke first */
    ROUND_NO_EOD,      /* k's end of data got no reply */
    ROUND_EOD_421,     /* k's end of data was answered 421 */
    ROUND_REPLIES,     /* a reply after k's end of data went wrong */
};

/*
 * The one way out of a failed round: every transaction in it and taken ahead gets
 * the outcome it really has, and the session ends. k is unknown once its whole
 * final ".\r\n" may have reached the server and no reply decided it; deferred
 * before that. k+1 is deferred once some of its commands may have left, and
 * given back untried (no attempt) before that. Those taken ahead never left.
 * Returns the session's error.
 */
static int round_failed(struct smtp_session *s, const struct smtp_feed *feed, struct round *r,
                        struct ahead *ahead, enum round_failure how, int rc,
                        struct blast_error *err)
{
    bool eod_left = r->body != NULL && !r->lone_dot;

    switch (how) {
    case ROUND_NOT_WRITTEN:
        abandon(s, feed, r->env, false, err);
        abandon(s, feed, r->body, false, err);
        rc = die(s, rc);
        break;
    case ROUND_STOPPED:
        abandon(s, feed, r->body, false, err);
        give_back(s, feed, r->env);
        rc = die(s, rc);
        break;
    case ROUND_WRITE:
        abandon(s, feed, r->body, eod_left && r->sent >= r->eod_end, err);
        if (r->sent > r->env_at)
            abandon(s, feed, r->env, false, err);
        else
            give_back(s, feed, r->env);
        break;
    case ROUND_NO_EOD:
        abandon(s, feed, r->body, eod_left, err);
        abandon(s, feed, r->env, false, err);
        break;
    case ROUND_EOD_421:
        /* it turns the message down and closes: the envelope after it is moot */
        if (eod_left)
            decide(r->body, SMTP_OUTCOME_DEFERRED, SMTP_END_OF_DATA, &r->eod, NULL);
        feed->done(feed->arg, r->body);
        rc = server_closed(s, err);
        abandon(s, feed, r->env, false, err);
        break;
    case ROUND_REPLIES:
        /* out of step after k's reply was read: that reply may have answered another command */
        if (r->body != NULL && s->out_of_step)
            abandon(s, feed, r->body, eod_left, err);
        else if (r->body != NULL)
            conclude(feed, r->body, &r->eod, r->lone_dot);
        if (r->env != NULL && s->out_of_step)
            undecide(r->env);
        abandon(s, feed, r->env, false, err);
        break;
    }
    ahead_give_back(s, feed, ahead);
    return rc;
}

/* k's body (dot-stuffed in its stage buffer) or its lone "." into the write. */
static int round_add_body(struct smtp_session *s, struct round *r)
{
    int rc, slot;

    if (r->lone_dot) {
        /* RFC 2920 §3.1: DATA was accepted though every RCPT failed */
        rc = add_line(s, &s->out, ".", 1);
    } else {
        log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: C: <message, %zu bytes>", s->o.label, r->body->len);
        slot = stage_slot(s, r->body);
        rc = slot < 0 ? BLAST_EPROTO : buf_append(&s->out, s->stage[slot].data, s->stage[slot].len);
    }
    stage_release(s, r->body);
    r->eod_end = s->out.len; /* the final ".\r\n" ends here */
    return rc;
}

/*
 * The round's replies, in the order of its commands: k's end of data, RSET, k+1's
 * MAIL, RCPTs and DATA; then nothing more. *how says where it failed.
 */
static int round_read(struct smtp_session *s, struct round *r, enum round_failure *how,
                      struct blast_error *err)
{
    int rc = 0;

    if (r->body != NULL) {
        set_state(s, SMTP_END_OF_DATA);
        *how = ROUND_NO_EOD;
        if ((rc = read_reply(s, err)) < 0)
            return rc;
        r->eod = s->reply;
        if (r->eod.code == 421) {
            *how = ROUND_EOD_421;
            return refused(s, BLAST_ECLOSED, "the server closed the session", err);
        }
    }
    *how = ROUND_REPLIES;
    if (r->env != NULL && r->rset) {
        set_state(s, SMTP_RSET);
        rc = read_reply(s, err);
        s->need_rset = false;
        if (rc == 0 && s->reply.code == 421)
            rc = closed_at(s, r->env, SMTP_RSET, err);
    }
    if (rc == 0 && r->env != NULL)
        rc = read_envelope(s, r->env, false, err);
    if (rc == 0)
        rc = expect_no_more(s, err);
    return rc;
}

/*
 * RFC 2920 with DATA: round k writes the body of transaction k and the envelope
 * of transaction k+1, then reads the end-of-data reply of k and the envelope
 * replies of k+1. The feed is asked for transactions SMTP_AHEAD rounds before
 * their envelope goes (k+2 .. k+SMTP_AHEAD+1 are taken by round k) and each is
 * announced then (feed->leaving): what the caller must finish before its end of
 * data (the journal's fsync) has SMTP_AHEAD + 1 round trips to run while the
 * wire is busy. On loopback a round trip is shorter than an fdatasync, so fewer
 * made sessions wait for the disk (docs/performance.md).
 *
 * Nothing of a round is decided until all its replies are read and no reply is
 * left over: a session found out of step in round k cannot say which reply
 * answered k's end of data, so k is unknown and k+1, whose body never left,
 * is deferred (docs/delivery.md).
 */
static int run_pipelined(struct smtp_session *s, const struct smtp_feed *feed,
                         struct blast_error *err)
{
    struct smtp_txn *body = NULL;
    struct ahead ahead = {{NULL}, 0, 0};
    enum round_failure how;
    int rc;

    memset(s->staged, 0, sizeof s->staged);
    if ((rc = ahead_fill(s, feed, &ahead, err)) < 0) {
        ahead_give_back(s, feed, &ahead);
        return die(s, rc);
    }
    for (;;) {
        struct round r;

        memset(&r, 0, sizeof r);
        buf_reset(&s->out);
        r.body = body;
        r.lone_dot = body != NULL && body->accepted == 0;
        if (body != NULL && (rc = round_add_body(s, &r)) < 0)
            return round_failed(s, feed, &r, &ahead, ROUND_NOT_WRITTEN, no_memory(s, err), err);
        s->stats.messages += body != NULL && !r.lone_dot;
        r.env = ahead_pop(&ahead);
        r.env_at = s->out.len;
        r.rset = r.env != NULL && s->need_rset;
        if (r.env != NULL && ((r.rset && (rc = add_line(s, &s->out, "RSET", 4)) < 0) ||
                              (rc = add_envelope(s, &s->out, r.env, false)) < 0))
            return round_failed(s, feed, &r, &ahead, ROUND_NOT_WRITTEN, no_memory(s, err), err);
        if (r.env != NULL && (rc = ahead_fill(s, feed, &ahead, err)) < 0)
            return round_failed(s, feed, &r, &ahead, ROUND_NOT_WRITTEN, rc, err);
        if (s->out.len == 0)
            return 0;
        if (body != NULL && !r.lone_dot && feed->sending != NULL &&
            (rc = feed->sending(feed->arg, body)) < 0)
            return round_failed(
                s, feed, &r, &ahead, ROUND_STOPPED,
                blast_error_set(err, rc, NULL, 0, 0, "stopped before the end of data"), err);
        /* every reply awaited has been read: the server must be quiet before this group */
        set_state(s, body != NULL ? SMTP_END_OF_DATA : SMTP_MAIL);
        if ((rc = expect_quiet(s, err)) < 0 || (rc = write_group(s, &r.sent, err)) < 0)
            return round_failed(s, feed, &r, &ahead, ROUND_WRITE, rc, err);
        if ((rc = round_read(s, &r, &how, err)) < 0)
            return round_failed(s, feed, &r, &ahead, how, rc, err);
        if (body != NULL)
            conclude(feed, body, &r.eod, r.lone_dot);
        set_state(s, SMTP_READY);
        body = NULL;
        if (r.env == NULL)
            continue;
        if (r.env->data_ok) {
            body = r.env;
        } else {
            stage_release(s, r.env);
            feed->done(feed->arg, r.env);
            s->need_rset = true;
        }
    }
}

/* A BDAT batch: up to BDAT_BATCH_TXNS transactions written and decided together. */
#define BDAT_BATCH_TXNS  32
#define BDAT_BATCH_BYTES (4 * 1024 * 1024)

struct batch {
    struct smtp_txn *t[BDAT_BATCH_TXNS];
    size_t start[BDAT_BATCH_TXNS], end[BDAT_BATCH_TXNS]; /* each one's bytes in s->out */
    size_t n;
};

/*
 * Take transactions from the feed into a batch and write their commands into
 * s->out: RSET, MAIL, RCPTs and BDAT n LAST with the message, each. A negative
 * return (memory): every transaction taken was given back and the session is dead.
 */
static int batch_build(struct smtp_session *s, const struct smtp_feed *feed, struct batch *b,
                       struct blast_error *err)
{
    size_t bytes = 0, i;
    int rc;

    buf_reset(&s->out);
    b->n = 0;
    while (b->n < BDAT_BATCH_TXNS && bytes < BDAT_BATCH_BYTES) {
        struct smtp_txn *t = next_txn(s, feed);
        if (t == NULL)
            break;
        b->start[b->n] = s->out.len;
        if ((rc = add_line(s, &s->out, "RSET", 4)) < 0 ||
            (rc = add_envelope(s, &s->out, t, true)) < 0) {
            give_back(s, feed, t);
            for (i = 0; i < b->n; i++)
                give_back(s, feed, b->t[i]);
            return no_memory(s, err);
        }
        b->end[b->n] = s->out.len; /* BDAT LAST's chunk, the message's end, ends here */
        b->t[b->n++] = t;
        bytes += t->len;
    }
    return 0;
}

/*
 * The batch's replies went wrong after got of its transactions were read: those
 * whose replies all came are done; the others' BDAT LAST went out, so what the
 * server made of them is not known, unless a 421 turned them away before it read
 * them; out of step, nothing read counts and every one is unknown.
 */
static void batch_failed(struct smtp_session *s, const struct smtp_feed *feed, struct batch *b,
                         size_t got, struct blast_error *err)
{
    bool turned_away = !s->out_of_step && s->reply.code == 421;
    size_t i;

    for (i = 0; i < b->n; i++) {
        if (s->out_of_step) {
            undecide(b->t[i]);
            abandon(s, feed, b->t[i], true, err);
        } else if (i + 1 < got) {
            feed->done(feed->arg, b->t[i]); /* all its replies came */
        } else {
            abandon(s, feed, b->t[i], !turned_away, err);
        }
    }
}

/*
 * RFC 3030 BDAT: nothing waits for a 354, so a whole batch of transactions goes
 * in one write, up to a limit of transactions and bytes; each one starts with
 * RSET, so a refused one cannot leave the next in a half-open state. Nothing of
 * a batch is decided until every reply of it is read and none is left over: a
 * batch found out of step cannot say which reply answered which BDAT LAST.
 */
static int run_bdat(struct smtp_session *s, const struct smtp_feed *feed, struct blast_error *err)
{
    struct batch b;
    size_t i, got, sent;
    int rc;

    for (;;) {
        if ((rc = batch_build(s, feed, &b, err)) < 0)
            return rc;
        if (b.n == 0)
            return 0;
        for (i = 0; feed->sending != NULL && i < b.n; i++)
            if ((rc = feed->sending(feed->arg, b.t[i])) < 0) {
                blast_error_set(err, rc, NULL, 0, 0, "stopped before the end of data");
                for (i = 0; i < b.n; i++)
                    give_back(s, feed, b.t[i]);
                return die(s, rc);
            }
        /* no reply is awaited: the server must be quiet before the batch */
        sent = 0;
        set_state(s, SMTP_END_OF_DATA);
        if ((rc = expect_quiet(s, err)) < 0 || (rc = write_group(s, &sent, err)) < 0) {
            for (i = 0; i < b.n; i++) {
                if (sent >= b.end[i])
                    abandon(s, feed, b.t[i], true, err); /* its chunk may have ended */
                else if (sent > b.start[i])
                    abandon(s, feed, b.t[i], false, err);
                else
                    give_back(s, feed, b.t[i]);
            }
            return rc;
        }
        s->stats.messages += b.n;
        for (got = 0; got < b.n && rc == 0; got++) {
            set_state(s, SMTP_RSET);
            rc = read_reply(s, err);
            if (rc == 0 && s->reply.code == 421)
                rc = closed_at(s, b.t[got], SMTP_RSET, err);
            if (rc == 0)
                rc = read_envelope(s, b.t[got], true, err);
        }
        if (rc == 0)
            rc = expect_no_more(s, err);
        if (rc < 0) {
            batch_failed(s, feed, &b, got, err);
            return rc;
        }
        for (i = 0; i < b.n; i++)
            feed->done(feed->arg, b.t[i]);
        set_state(s, SMTP_READY);
    }
}

/*
 * One command written and its reply read (lock-step, for servers without
 * PIPELINING); *wrote tells whether any of it may have gone.
 */
static int command(struct smtp_session *s, enum smtp_state st, bool *wrote, struct blast_error *err)
{
    size_t sent = 0;
    int rc;

    set_state(s, st);
    if ((rc = expect_quiet(s, err)) < 0)
        return rc;
    rc = write_group(s, &sent, err);
    *wrote = *wrote || sent > 0;
    if (rc < 0)
        return rc;
    return read_reply(s, err);
}

/* RSET before a lock-step transaction, after one that did not end in a message. */
static int lockstep_rset(struct smtp_session *s, struct blast_error *err)
{
    bool wrote = false;
    int rc;

    if (add_line(s, &s->out, "RSET", 4) < 0)
        return no_memory(s, err);
    if ((rc = command(s, SMTP_RSET, &wrote, err)) < 0)
        return rc;
    if (s->reply.code == 421)
        return server_closed(s, err);
    return 0;
}

/*
 * MAIL, each RCPT and DATA of t, one at a time. *go is set when DATA got its 354
 * and the message may follow; otherwise a reply decided t (a refusal, or a 421:
 * the caller looks at s->reply). A negative return: the session is lost, and
 * *wrote says whether some command of t may have reached the server.
 */
static int lockstep_envelope(struct smtp_session *s, struct smtp_txn *t, bool *wrote, bool *go,
                             struct blast_error *err)
{
    size_t i;
    int rc;

    *go = false;
    if (add_mail(s, &s->out, t) < 0)
        return no_memory(s, err);
    if ((rc = command(s, SMTP_MAIL, wrote, err)) < 0)
        return rc;
    if (s->reply.code == 503)
        return bad_sequence(s, err);
    if (s->reply.code / 100 != 2) {
        decide(t, smtp_reply_outcome(&s->reply, SMTP_MAIL), SMTP_MAIL, &s->reply, NULL);
        return 0;
    }
    for (i = 0; i < t->nrcpts; i++) {
        struct smtp_rcpt *r = &t->rcpts[i];
        if (add_rcpt(s, &s->out, r) < 0)
            return no_memory(s, err);
        if ((rc = command(s, SMTP_RCPT, wrote, err)) < 0)
            return rc;
        if (s->reply.code == 421) {
            decide(t, SMTP_OUTCOME_DEFERRED, SMTP_RCPT, &s->reply, NULL);
            return 0;
        }
        if (s->reply.code == 503)
            return bad_sequence(s, err);
        if (s->reply.code / 100 == 2) {
            t->accepted++;
            continue;
        }
        r->outcome = smtp_reply_outcome(&s->reply, SMTP_RCPT);
        r->step = SMTP_RCPT;
        r->reply = s->reply;
    }
    if (t->accepted == 0)
        return 0;
    if (add_line(s, &s->out, "DATA", 4) < 0)
        return no_memory(s, err);
    if ((rc = command(s, SMTP_DATA, wrote, err)) < 0)
        return rc;
    if (s->reply.code == 503)
        return bad_sequence(s, err);
    if (s->reply.code != 354) {
        decide(t, smtp_reply_outcome(&s->reply, SMTP_DATA), SMTP_DATA, &s->reply, NULL);
        return 0;
    }
    *go = true;
    return 0;
}

/*
 * t's body and end of data after its 354, and the reply that decides it; t goes
 * to done() on every path. A negative return: the session ended.
 */
static int lockstep_message(struct smtp_session *s, const struct smtp_feed *feed,
                            struct smtp_txn *t, struct blast_error *err)
{
    size_t end, sent = 0;
    int rc;

    log_msg(s->o.log, LOG_LEVEL_TRACE, "%s: C: <message, %zu bytes>", s->o.label, t->len);
    if (feed->sending != NULL && (rc = feed->sending(feed->arg, t)) < 0) {
        blast_error_set(err, rc, NULL, 0, 0, "stopped before the end of data");
        abandon(s, feed, t, false, err);
        return die(s, rc);
    }
    if ((rc = smtp_dot_stuff(&s->out, t->data, t->len, err)) < 0) {
        /* the server waits for a body it will not get: the session cannot go on */
        abandon(s, feed, t, false, err);
        return die(s, rc);
    }
    end = s->out.len; /* the final ".\r\n" ends here */
    set_state(s, SMTP_END_OF_DATA);
    if ((rc = expect_quiet(s, err)) < 0) {
        if (s->out_of_step)
            undecide(t);
        abandon(s, feed, t, false, err);
        return rc;
    }
    if ((rc = write_group(s, &sent, err)) < 0) {
        /* in doubt once the whole final ".\r\n" may have reached the kernel */
        abandon(s, feed, t, sent >= end, err);
        return rc;
    }
    s->stats.messages++;
    if ((rc = read_reply(s, err)) < 0 || (rc = expect_no_more(s, err)) < 0) {
        abandon(s, feed, t, true, err);
        return rc;
    }
    conclude(feed, t, &s->reply, false);
    if (s->reply.code / 100 == 2)
        s->need_rset = false;
    if (s->reply.code == 421)
        return server_closed(s, err);
    set_state(s, SMTP_READY);
    return 0;
}

/* Without PIPELINING: every command waits for its reply (RFC 5321 §4.3). */
static int run_lockstep(struct smtp_session *s, const struct smtp_feed *feed,
                        struct blast_error *err)
{
    struct smtp_txn *t;
    int rc;

    while ((t = next_txn(s, feed)) != NULL) {
        bool wrote = false, go = false;

        buf_reset(&s->out);
        if (s->need_rset && (rc = lockstep_rset(s, err)) < 0) {
            give_back(s, feed, t);
            return rc;
        }
        s->need_rset = true; /* unless the message is accepted */
        if ((rc = lockstep_envelope(s, t, &wrote, &go, err)) < 0) {
            if (s->out_of_step)
                undecide(t);
            if (wrote)
                abandon(s, feed, t, false, err);
            else
                give_back(s, feed, t);
            return rc;
        }
        if (go) {
            if ((rc = lockstep_message(s, feed, t, err)) < 0)
                return rc;
            continue;
        }
        /* a reply decided it before its message */
        feed->done(feed->arg, t);
        if (s->reply.code == 421)
            return server_closed(s, err);
        set_state(s, SMTP_READY);
    }
    return 0;
}

int smtp_session_run(struct smtp_session *s, const struct smtp_feed *feed, struct blast_error *err)
{
    if (s->dead || s->state != SMTP_READY)
        return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "the session is not usable");
    if (!(s->caps & SMTP_CAP_PIPELINING))
        return run_lockstep(s, feed, err);
    if (s->o.chunking && (s->caps & SMTP_CAP_CHUNKING))
        return run_bdat(s, feed, err);
    return run_pipelined(s, feed, err);
}

/* smtp_session_send: a feed of one. */
struct one {
    struct smtp_txn *t;
    bool given;
};

static struct smtp_txn *one_next(void *arg)
{
    struct one *o = arg;

    if (o->given)
        return NULL;
    o->given = true;
    return o->t;
}

static void one_done(void *arg, struct smtp_txn *t)
{
    (void)arg;
    (void)t;
}

int smtp_session_send(struct smtp_session *s, struct smtp_txn *t, struct blast_error *err)
{
    struct one o = {t, false};
    struct smtp_feed feed = {.next = one_next, .done = one_done, .arg = &o};
    int rc;

    txn_reset(t);
    rc = smtp_session_run(s, &feed, err);
    if (rc < 0 && !o.given) {
        decide(t, SMTP_OUTCOME_DEFERRED, s->state, NULL, err->text);
    }
    return rc;
}
