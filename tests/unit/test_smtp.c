/*
 * test_smtp - the pure parts of the SMTP client: reading replies (RFC 5321 §4.2,
 * enhanced codes of RFC 2034/3463), dot-stuffing (§4.5.2) and queue ids from
 * real servers' final replies; and one session against a scripted loopback
 * server whose transcript is compared with the expected one.
 */
#include "../../core/buf.h"
#include "../../core/smtp.h"
#include "../../core/timeutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Parse in (a C string) and expect a complete reply. */
static void parse_ok(const char *in, struct smtp_reply *r, size_t *used)
{
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = smtp_reply_parse(in, strlen(in), r, used, &err);
    cr_assert_eq(rc, 1, "'%s': rc %d (%s)", in, rc, err.text);
}

static void parse_bad(const char *in, size_t len)
{
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 12345;
    int rc;

    blast_error_clear(&err);
    rc = smtp_reply_parse(in, len, &r, &used, &err);
    cr_assert_eq(rc, BLAST_EPROTO, "'%.*s' gave rc %d", (int)(len < 60 ? len : 60), in, rc);
    cr_assert_eq(err.code, BLAST_EPROTO);
    cr_assert_str_not_empty(err.text);
}

/* ---- replies ------------------------------------------------------------------------- */

Test(smtp, single_line_reply)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("250 OK\r\n", &r, &used);
    cr_assert_eq(r.code, 250);
    cr_assert_str_eq(r.text, "OK");
    cr_assert_str_empty(r.enhanced);
    cr_assert_eq(r.lines, 1);
    cr_assert_eq(used, 8);
}

Test(smtp, bare_code_reply)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("354\r\n", &r, &used);
    cr_assert_eq(r.code, 354);
    cr_assert_str_empty(r.text);
    cr_assert_eq(used, 5);
}

Test(smtp, multiline_reply)
{
    static const char in[] = "250-mail.example.com Hello\r\n"
                             "250-PIPELINING\r\n"
                             "250-SIZE 10240000\r\n"
                             "250 STARTTLS\r\n";
    struct smtp_reply r;
    size_t used = 0;

    parse_ok(in, &r, &used);
    cr_assert_eq(r.code, 250);
    cr_assert_eq(r.lines, 4);
    cr_assert_str_eq(r.text, "mail.example.com Hello\nPIPELINING\nSIZE 10240000\nSTARTTLS");
    cr_assert_eq(used, sizeof in - 1);
}

Test(smtp, enhanced_code_is_stripped_and_recorded)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n", &r, &used);
    cr_assert_eq(r.code, 550);
    cr_assert_str_eq(r.enhanced, "5.1.1");
    cr_assert_str_eq(r.text, "<nobody@example.com>: Recipient address rejected");

    parse_ok("250 2.0.0 Ok: queued as 4ABC123\r\n", &r, &used);
    cr_assert_str_eq(r.enhanced, "2.0.0");
    cr_assert_str_eq(r.text, "Ok: queued as 4ABC123");

    parse_ok("452 4.5.3 Too many recipients\r\n", &r, &used);
    cr_assert_str_eq(r.enhanced, "4.5.3");

    parse_ok("250 2.1.0\r\n", &r, &used);
    cr_assert_str_eq(r.enhanced, "2.1.0", "an enhanced code alone");
    cr_assert_str_empty(r.text);

    parse_ok("554 5.123.456 three-digit parts\r\n", &r, &used);
    cr_assert_str_eq(r.enhanced, "5.123.456");
    cr_assert_str_eq(r.text, "three-digit parts");
}

Test(smtp, enhanced_code_repeated_on_every_line_is_stripped)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("550-5.7.1 Our policy does not allow\r\n"
             "550-5.7.1 mail from your address.\r\n"
             "550 5.7.1 See https://example.com/policy\r\n",
             &r, &used);
    cr_assert_eq(r.lines, 3);
    cr_assert_str_eq(r.enhanced, "5.7.1");
    cr_assert_str_eq(r.text, "Our policy does not allow\nmail from your address.\nSee "
                             "https://example.com/policy");
}

Test(smtp, enhanced_code_of_another_class_is_not_taken)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("250 5.1.1 looks like a failure but is not\r\n", &r, &used);
    cr_assert_eq(r.code, 250);
    cr_assert_str_empty(r.enhanced);
    cr_assert_str_eq(r.text, "5.1.1 looks like a failure but is not");

    parse_ok("550 2.0.0 contradiction\r\n", &r, &used);
    cr_assert_eq(r.code, 550);
    cr_assert_str_empty(r.enhanced);
    cr_assert_str_eq(r.text, "2.0.0 contradiction");
}

Test(smtp, things_that_are_not_enhanced_codes_stay_in_the_text)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("250 2.0 not three parts\r\n", &r, &used);
    cr_assert_str_empty(r.enhanced);
    cr_assert_str_eq(r.text, "2.0 not three parts");

    parse_ok("250 2.0.0000 too many digits\r\n", &r, &used);
    cr_assert_str_empty(r.enhanced);

    parse_ok("250 2.0.0.1 version number\r\n", &r, &used);
    cr_assert_str_empty(r.enhanced);

    parse_ok("220 2.2.2.2 ESMTP\r\n", &r, &used);
    cr_assert_str_empty(r.enhanced);
}

Test(smtp, bytes_fed_one_at_a_time)
{
    static const char in[] = "250-2.0.0 first line\r\n250-2.0.0 second\r\n250 2.0.0 last\r\n";
    struct smtp_reply r;
    struct blast_error err;
    size_t i, used = 0;
    int rc;

    for (i = 0; i < sizeof in - 1; i++) {
        blast_error_clear(&err);
        rc = smtp_reply_parse(in, i, &r, &used, &err);
        cr_assert_eq(rc, 0, "incomplete after %zu bytes, rc %d (%s)", i, rc, err.text);
    }
    rc = smtp_reply_parse(in, sizeof in - 1, &r, &used, &err);
    cr_assert_eq(rc, 1);
    cr_assert_eq(used, sizeof in - 1);
    cr_assert_str_eq(r.text, "first line\nsecond\nlast");
    cr_assert_str_eq(r.enhanced, "2.0.0");
}

Test(smtp, cr_without_lf_is_not_the_end)
{
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0;

    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse("250 OK\r", 7, &r, &used, &err), 0);
}

Test(smtp, two_replies_in_one_buffer)
{
    static const char in[] =
        "250 2.1.0 Sender OK\r\n250-2.1.5 Recipient\r\n250 2.1.5 OK\r\n354 Go\r\n";
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0, pos = 0;

    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse(in, sizeof in - 1, &r, &used, &err), 1);
    cr_assert_eq(used, strlen("250 2.1.0 Sender OK\r\n"), "used stops after the first reply");
    cr_assert_str_eq(r.text, "Sender OK");
    cr_assert_eq(r.lines, 1);
    pos += used;
    cr_assert_eq(smtp_reply_parse(in + pos, sizeof in - 1 - pos, &r, &used, &err), 1);
    cr_assert_eq(r.lines, 2);
    cr_assert_str_eq(r.text, "Recipient\nOK");
    pos += used;
    cr_assert_eq(smtp_reply_parse(in + pos, sizeof in - 1 - pos, &r, &used, &err), 1);
    cr_assert_eq(r.code, 354);
    pos += used;
    cr_assert_eq(pos, sizeof in - 1);
}

Test(smtp, reply_followed_by_a_partial_one)
{
    static const char in[] = "250 OK\r\n25";
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0;

    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse(in, sizeof in - 1, &r, &used, &err), 1);
    cr_assert_eq(used, 8);
    cr_assert_eq(smtp_reply_parse(in + used, sizeof in - 1 - used, &r, &used, &err), 0);
}

Test(smtp, malformed_lines_are_protocol_errors)
{
    parse_bad("hello\r\n", 7);
    parse_bad("25 OK\r\n", 7);
    parse_bad("2500 OK\r\n", 9);
    parse_bad("250OK\r\n", 7);
    parse_bad("abc OK\r\n", 8);
    parse_bad("150 below range\r\n", 17);
    parse_bad("650 above range\r\n", 17);
    parse_bad("260 second digit\r\n", 18);
    parse_bad("25x OK\r\n", 8);
    parse_bad("\r\n", 2);
    parse_bad("250_OK\r\n", 8);
    parse_bad("250-first\r\nnot a reply\r\n", 24);
}

Test(smtp, nul_in_a_reply_is_a_protocol_error)
{
    static const char in[] = "250 O\0K\r\n";

    parse_bad(in, sizeof in - 1);
}

Test(smtp, code_change_in_a_multiline_reply)
{
    static const char in[] = "250-first\r\n251 second\r\n";

    parse_bad(in, sizeof in - 1);
}

Test(smtp, over_long_line)
{
    char in[SMTP_REPLY_LINE_MAX + 64];
    size_t n;

    /* a complete line that is too long */
    memcpy(in, "250 ", 4);
    memset(in + 4, 'x', SMTP_REPLY_LINE_MAX);
    n = 4 + SMTP_REPLY_LINE_MAX;
    memcpy(in + n, "\r\n", 2);
    parse_bad(in, n + 2);
    /* and one still arriving: no need to wait for its end */
    parse_bad(in, n);
}

Test(smtp, long_line_within_the_limit_is_fine)
{
    char in[SMTP_REPLY_LINE_MAX + 8];
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0, n = 600;

    memcpy(in, "250 ", 4);
    memset(in + 4, 'y', n);
    memcpy(in + 4 + n, "\r\n", 2);
    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse(in, 4 + n + 2, &r, &used, &err), 1, "%s", err.text);
    cr_assert_eq(strlen(r.text), n, "RFC 5321 allows 512; real servers send more");
}

Test(smtp, too_many_continuation_lines)
{
    struct buf b = BUF_INIT;
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0;
    int rc;

    while (b.len <= SMTP_REPLY_TOTAL_MAX)
        buf_puts(&b, "250-and another capability line that never ends\r\n");
    blast_error_clear(&err);
    rc = smtp_reply_parse(b.data, b.len, &r, &used, &err);
    cr_assert_eq(rc, BLAST_EPROTO, "rc %d", rc);
    buf_free(&b);
}

Test(smtp, text_is_capped)
{
    struct buf b = BUF_INIT;
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0;
    int i;

    for (i = 0; i < 40; i++)
        buf_puts(&b, "250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
    buf_puts(&b, "250 end\r\n");
    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse(b.data, b.len, &r, &used, &err), 1, "%s", err.text);
    cr_assert_eq(used, b.len);
    cr_assert_eq(r.lines, 41);
    cr_assert_lt(strlen(r.text), SMTP_REPLY_TEXT_MAX);
    buf_free(&b);
}

Test(smtp, control_characters_are_sanitised)
{
    static const char in[] = "550 bad\x1b[31m red\x07 bell\x7f del\ttab\r\n";
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0, i;

    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse(in, sizeof in - 1, &r, &used, &err), 1);
    for (i = 0; r.text[i] != '\0'; i++)
        cr_assert(((unsigned char)r.text[i] >= 0x20 && r.text[i] != 0x7f) || r.text[i] == '\t',
                  "control character 0x%02x at %zu", (unsigned char)r.text[i], i);
    cr_assert_str_eq(r.text, "bad?[31m red? bell? del\ttab");
}

Test(smtp, invalid_utf8_is_sanitised_and_valid_utf8_kept)
{
    static const char in[] = "550 caf\xc3\xa9 ok, caf\xe9 not\r\n";
    struct smtp_reply r;
    struct blast_error err;
    size_t used = 0;

    blast_error_clear(&err);
    cr_assert_eq(smtp_reply_parse(in, sizeof in - 1, &r, &used, &err), 1);
    cr_assert_str_eq(r.text, "café ok, caf? not");
}

Test(smtp, lf_only_line_ends_are_tolerated)
{
    struct smtp_reply r;
    size_t used = 0;

    parse_ok("250-one\n250 two\n", &r, &used);
    cr_assert_eq(r.lines, 2);
    cr_assert_str_eq(r.text, "one\ntwo");
    cr_assert_eq(used, 16);
}

Test(smtp, state_names)
{
    int s;

    cr_assert_str_eq(smtp_state_name(SMTP_RCPT), "RCPT TO");
    cr_assert_str_eq(smtp_state_name(SMTP_MAIL), "MAIL FROM");
    cr_assert_str_eq(smtp_state_name(SMTP_END_OF_DATA), "end of data");
    for (s = 0; s < SMTP_STATE_COUNT; s++) {
        cr_assert_not_null(smtp_state_name((enum smtp_state)s));
        cr_assert_str_not_empty(smtp_state_name((enum smtp_state)s));
    }
}

/* ---- dot-stuffing -------------------------------------------------------------------- */

static void stuff_ok(const char *in, const char *want)
{
    struct buf out = BUF_INIT;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(smtp_dot_stuff(&out, in, strlen(in), &err), 0, "'%s': %s", in, err.text);
    cr_assert_str_eq(out.data, want);
    buf_free(&out);
}

static void stuff_bad(const char *in)
{
    struct buf out = BUF_INIT;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(smtp_dot_stuff(&out, in, strlen(in), &err), BLAST_EINVAL, "'%s' accepted", in);
    cr_assert_str_not_empty(err.text);
    buf_free(&out);
}

Test(smtp, dot_stuffing_doubles_leading_dots)
{
    stuff_ok("Subject: x\r\n\r\nHello\r\n", "Subject: x\r\n\r\nHello\r\n.\r\n");
    stuff_ok(".\r\n", "..\r\n.\r\n");
    stuff_ok(".starts with a dot\r\n", "..starts with a dot\r\n.\r\n");
    stuff_ok("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
    stuff_ok("a\r\n..two\r\n", "a\r\n...two\r\n.\r\n");
    stuff_ok("not.at.start\r\n", "not.at.start\r\n.\r\n");
}

Test(smtp, dot_stuffing_ends_with_a_final_dot_line)
{
    stuff_ok("no final line end", "no final line end\r\n.\r\n");
    stuff_ok("", ".\r\n");
    stuff_ok("ends in a dot.", "ends in a dot.\r\n.\r\n");
}

Test(smtp, dot_stuffing_refuses_bare_cr_and_lf)
{
    stuff_bad("bare\nlf\r\n");
    stuff_bad("bare\rcr\r\n");
    stuff_bad("\n");
    stuff_bad("ends in cr\r");
    stuff_bad("smuggling\r\n.\n");
    stuff_bad("smuggling\n.\r\n");
}

Test(smtp, dot_stuffing_appends)
{
    struct buf out = BUF_INIT;
    struct blast_error err;

    blast_error_clear(&err);
    buf_puts(&out, "kept|");
    cr_assert_eq(smtp_dot_stuff(&out, ".x\r\n", 4, &err), 0);
    cr_assert_str_eq(out.data, "kept|..x\r\n.\r\n");
    buf_free(&out);
}

/*
 * The rules of RFC 5321 §4.5.2 and of no bare CR or LF, one byte at a time: what
 * smtp_dot_stuff() must agree with, on every input, byte for byte, including where
 * it says the first bad byte is. Returns that byte's index, or -1 with out filled.
 */
static long stuff_by_the_rules(const char *in, size_t len, struct buf *out)
{
    size_t i;
    bool bol = true;

    for (i = 0; i < len; i++) {
        char c = in[i];
        if ((c == '\r' && (i + 1 >= len || in[i + 1] != '\n')) ||
            (c == '\n' && (i == 0 || in[i - 1] != '\r')))
            return (long)i;
        if (bol && c == '.')
            buf_putc(out, '.');
        buf_putc(out, c);
        bol = c == '\n';
    }
    if (len > 0 && !bol)
        buf_puts(out, "\r\n");
    buf_puts(out, ".\r\n");
    return -1;
}

/* Every string of up to 8 bytes over '.', CR, LF and 'a' (87,381 of them). */
Test(smtp, dot_stuffing_agrees_with_the_rules_on_every_short_input)
{
    static const char alphabet[] = {'.', '\r', '\n', 'a'};
    char in[8];
    size_t len, k, count = 0;

    for (len = 0; len <= sizeof in; len++) {
        size_t total = (size_t)1 << (2 * len);
        for (k = 0; k < total; k++) {
            struct buf want = BUF_INIT, got = BUF_INIT;
            struct blast_error err;
            size_t i, v = k;
            long bad;
            int rc;
            char at[40];
            for (i = 0; i < len; i++, v >>= 2)
                in[i] = alphabet[v & 3];
            blast_error_clear(&err);
            bad = stuff_by_the_rules(in, len, &want);
            rc = smtp_dot_stuff(&got, in, len, &err);
            if (bad >= 0) {
                cr_assert_eq(rc, BLAST_EINVAL, "input %zu/%zu accepted", len, k);
                snprintf(at, sizeof at, "at byte %ld", bad);
                cr_assert(strstr(err.text, at) != NULL, "'%s' for input %zu/%zu, want %s", err.text,
                          len, k, at);
            } else {
                cr_assert_eq(rc, 0, "input %zu/%zu: %s", len, k, err.text);
                cr_assert_eq(got.len, want.len, "input %zu/%zu", len, k);
                cr_assert_eq(memcmp(got.data, want.data, got.len), 0, "input %zu/%zu", len, k);
            }
            buf_free(&want);
            buf_free(&got);
            count++;
        }
    }
    cr_assert_eq(count, 87381);
}

/* ---- queue ids ----------------------------------------------------------------------- */

static void queue_id(const char *reply, const char *want)
{
    struct smtp_reply r;
    size_t used;
    char id[128];

    parse_ok(reply, &r, &used);
    memset(id, 'Z', sizeof id);
    smtp_queue_id(r.text, id, sizeof id);
    cr_assert_str_eq(id, want, "queue id of '%s'", reply);
}

Test(smtp, queue_id_postfix)
{
    queue_id("250 2.0.0 Ok: queued as ABC123\r\n", "ABC123");
    queue_id("250 2.0.0 Ok: queued as 4XyZ7B1Tq3z5N\r\n", "4XyZ7B1Tq3z5N");
}

Test(smtp, queue_id_exim)
{
    queue_id("250 OK id=1abc-00012X-AB\r\n", "1abc-00012X-AB");
}

Test(smtp, queue_id_sendmail)
{
    queue_id("250 2.0.0 4AM1k2aB012345 Message accepted for delivery\r\n", "4AM1k2aB012345");
}

Test(smtp, queue_id_gmail)
{
    queue_id("250 2.0.0 OK  1700000000 abc.5 - gsmtp\r\n", "abc.5");
}

Test(smtp, queue_id_absent)
{
    queue_id("250 2.0.0 Ok\r\n", "");
    queue_id("250 Message received\r\n", "");
}

Test(smtp, queue_id_fits_the_buffer)
{
    char id[4];

    memset(id, 'Z', sizeof id);
    smtp_queue_id("Ok: queued as ABCDEFGHIJ", id, sizeof id);
    cr_assert_lt(strnlen(id, sizeof id), sizeof id, "NUL-terminated within its size");
}

/* ---- a session against a scripted server --------------------------------------------- */

/*
 * A one-connection SMTP server on loopback that answers each command from a
 * script and records what the client sent. Enough to compare the client's
 * transcript with the expected one without a real MTA.
 */
struct script_server {
    int listener;
    int port;
    pthread_t thread;
    bool pipelining;   /* offer RFC 2920 PIPELINING */
    int close_at_mail; /* answer the Nth MAIL with 421 and close (0: never) */
    int mails;
    struct buf received; /* every byte the client sent */
};

/* Read one CRLF line from fd into line; returns its length or -1. */
static ssize_t read_line(int fd, struct buf *all, char *line, size_t size)
{
    size_t n = 0;
    char c;

    while (n + 1 < size) {
        ssize_t r = recv(fd, &c, 1, 0);
        if (r <= 0)
            return -1;
        buf_putc(all, c);
        line[n++] = c;
        if (c == '\n')
            break;
    }
    line[n] = '\0';
    return (ssize_t)n;
}

/* Runs on the server thread: no assertions here, the client side checks everything. */
static void send_str(int fd, const char *s)
{
    if (send(fd, s, strlen(s), MSG_NOSIGNAL) != (ssize_t)strlen(s))
        shutdown(fd, SHUT_RDWR);
}

static void *script_run(void *arg)
{
    struct script_server *sv = arg;
    char line[4096];
    int fd = accept(sv->listener, NULL, NULL);

    if (fd < 0)
        return NULL;
    send_str(fd, "220 test.example ESMTP ready\r\n");
    while (read_line(fd, &sv->received, line, sizeof line) > 0) {
        if (strncmp(line, "EHLO ", 5) == 0) {
            send_str(fd, sv->pipelining ? "250-test.example\r\n250-PIPELINING\r\n"
                                        : "250-test.example\r\n");
            send_str(fd, "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                         "250-SIZE 1000000\r\n250 AUTH PLAIN LOGIN\r\n");
        } else if (strncmp(line, "AUTH PLAIN ", 11) == 0) {
            send_str(fd, "235 2.7.0 Authentication successful\r\n");
        } else if (strncmp(line, "MAIL FROM:", 10) == 0) {
            if (++sv->mails == sv->close_at_mail) {
                send_str(fd, "421 4.3.2 Shutting down\r\n");
                break;
            }
            send_str(fd, "250 2.1.0 Ok\r\n");
        } else if (strncmp(line, "RCPT TO:<nobody@", 16) == 0) {
            send_str(fd, "550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n");
        } else if (strncmp(line, "RCPT TO:", 8) == 0) {
            send_str(fd, "250 2.1.5 Ok\r\n");
        } else if (strcmp(line, "DATA\r\n") == 0) {
            send_str(fd, "354 End data with <CR><LF>.<CR><LF>\r\n");
            while (read_line(fd, &sv->received, line, sizeof line) > 0 &&
                   strcmp(line, ".\r\n") != 0)
                ;
            send_str(fd, "250 2.0.0 Ok: queued as 7F3A21C0\r\n");
        } else if (strcmp(line, "QUIT\r\n") == 0) {
            send_str(fd, "221 2.0.0 Bye\r\n");
            break;
        } else {
            send_str(fd, "502 5.5.2 Error: command not recognized\r\n");
        }
    }
    close(fd);
    return NULL;
}

static void script_start_with(struct script_server *sv, bool pipelining)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;

    memset(sv, 0, sizeof *sv);
    sv->pipelining = pipelining;
    buf_init(&sv->received);
    sv->listener = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(sv->listener, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(sv->listener, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(sv->listener, 1), 0);
    cr_assert_eq(getsockname(sv->listener, (struct sockaddr *)&sa, &len), 0);
    sv->port = ntohs(sa.sin_port);
    cr_assert_eq(pthread_create(&sv->thread, NULL, script_run, sv), 0);
}

static void script_start(struct script_server *sv)
{
    script_start_with(sv, false);
}

static void script_stop(struct script_server *sv)
{
    pthread_join(sv->thread, NULL);
    close(sv->listener);
    buf_puts(&sv->received, "");
}

/* The log sink: the transcript lines, one per line. */
static void transcript_sink(void *arg, enum log_level level, const char *message)
{
    struct buf *b = arg;

    (void)level;
    buf_puts(b, message);
    buf_putc(b, '\n');
}

#define SECRET "correct horse battery staple"

/* Options for a plaintext session to the script server on 127.0.0.1:port. */
static void plain_options(struct smtp_options *o, int port)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = port;
    o->label = "test";
    o->tls = SMTP_TLS_NONE;
    o->helo_name = "client.example";
    smtp_timeouts_default(&o->timeouts);
}

Test(smtp, session_transcript_and_outcomes, .timeout = 20)
{
    static const char message[] = "Subject: test\r\n\r\nHello\r\n.leading dot\r\n";
    struct script_server sv;
    struct buf transcript = BUF_INIT;
    struct log lg = {transcript_sink, &transcript, LOG_LEVEL_TRACE};
    struct smtp_options o;
    struct smtp_session *s = NULL;
    struct smtp_rcpt rcpts[2];
    struct smtp_txn t;
    struct blast_error err;
    const char *sent, *expect_sent;
    int rc;

    script_start(&sv);
    plain_options(&o, sv.port);
    o.username = "user";
    o.password = SECRET;
    o.auth = SMTP_AUTH_CHOICE_PLAIN;
    o.log = &lg;

    blast_error_clear(&err);
    rc = smtp_session_open(&o, &s, &err);
    cr_assert_eq(rc, 0, "open: %s", err.text);
    cr_assert_eq(smtp_session_state(s), SMTP_READY);
    cr_assert(smtp_session_caps(s) & SMTP_CAP_SIZE);
    cr_assert(smtp_session_caps(s) & SMTP_CAP_8BITMIME);
    cr_assert_not(smtp_session_caps(s) & SMTP_CAP_PIPELINING);
    cr_assert_eq(smtp_session_size_limit(s), 1000000);
    cr_assert_eq(smtp_session_auth_mechs(s), SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);

    memset(rcpts, 0, sizeof rcpts);
    rcpts[0].address = "ada@example.com";
    rcpts[1].address = "nobody@example.com";
    memset(&t, 0, sizeof t);
    t.mail_from = "news@acme.example";
    t.rcpts = rcpts;
    t.nrcpts = 2;
    t.data = message;
    t.len = sizeof message - 1;
    rc = smtp_session_send(s, &t, &err);
    cr_assert_eq(rc, 0, "send: %s", err.text);
    cr_assert_eq(rcpts[0].outcome, SMTP_OUTCOME_DELIVERED);
    cr_assert_eq(rcpts[0].reply.code, 250);
    cr_assert_eq(rcpts[1].outcome, SMTP_OUTCOME_FAILED);
    cr_assert_eq(rcpts[1].step, SMTP_RCPT);
    cr_assert_eq(rcpts[1].reply.code, 550);
    cr_assert_str_eq(rcpts[1].reply.enhanced, "5.1.1");
    cr_assert_str_eq(t.queue_id, "7F3A21C0");
    smtp_session_quit(s);
    smtp_session_free(s);
    script_stop(&sv);

    /* what went over the wire, byte for byte (the AUTH line checked apart) */
    sent = sv.received.data;
    cr_assert_eq(strncmp(sent, "EHLO client.example\r\nAUTH PLAIN ", 32), 0, "%s", sent);
    sent = strstr(sent, "\r\nMAIL FROM:");
    cr_assert_not_null(sent);
    expect_sent = "\r\nMAIL FROM:<news@acme.example> SIZE=38\r\n"
                  "RCPT TO:<ada@example.com>\r\n"
                  "RCPT TO:<nobody@example.com>\r\n"
                  "DATA\r\n"
                  "Subject: test\r\n\r\nHello\r\n..leading dot\r\n.\r\n"
                  "QUIT\r\n";
    cr_assert_str_eq(sent, expect_sent);

    /* the transcript masks the secret */
    buf_puts(&transcript, "");
    cr_assert_not_null(strstr(transcript.data, "C: AUTH PLAIN ********"), "%s", transcript.data);
    cr_assert_null(strstr(transcript.data, SECRET));
    cr_assert_null(strstr(transcript.data, "dXNlcgBjb3JyZWN0"), "no base64 secret either");
    cr_assert_not_null(strstr(transcript.data, "C: RCPT TO:<nobody@example.com>"));
    cr_assert_not_null(strstr(transcript.data, "S: 550 5.1.1 <nobody@example.com>"));
    buf_free(&transcript);
    buf_free(&sv.received);
}

Test(smtp, connection_refused_is_reported_at_connect, .timeout = 20)
{
    struct smtp_options o;
    struct smtp_session *s = NULL;
    struct blast_error err;
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

    /* a port that was free a moment ago and has no listener */
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);

    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = ntohs(sa.sin_port);
    o.tls = SMTP_TLS_NONE;
    smtp_timeouts_default(&o.timeouts);
    blast_error_clear(&err);
    rc = smtp_session_open(&o, &s, &err);
    cr_assert_eq(rc, BLAST_ECONNECT, "rc %d: %s", rc, err.text);
    cr_assert_not_null(s, "the session is kept to say where it failed");
    cr_assert_eq(smtp_session_state(s), SMTP_CONNECT);
    smtp_session_free(s);
}

/* ---- the feed's callbacks in a pipelined session ---------------------------------------- */

#define FEED_TXNS 9

struct test_feed {
    struct smtp_txn t[FEED_TXNS];
    struct smtp_rcpt r[FEED_TXNS];
    size_t n, given, done;
    char events[128]; /* "L1 S1 ...": leaving / sending of transaction n, in order */
};

static struct smtp_txn *tf_next(void *arg)
{
    struct test_feed *f = arg;

    return f->given < f->n ? &f->t[f->given++] : NULL;
}

static void tf_done(void *arg, struct smtp_txn *t)
{
    struct test_feed *f = arg;

    (void)t;
    f->done++;
}

static void tf_event(struct test_feed *f, char kind, const struct smtp_txn *t)
{
    size_t n = strlen(f->events);

    snprintf(f->events + n, sizeof f->events - n, "%s%c%d", n > 0 ? " " : "", kind,
             (int)(t - f->t) + 1);
}

static int tf_leaving(void *arg, struct smtp_txn *t)
{
    tf_event(arg, 'L', t);
    return 0;
}

static int tf_sending(void *arg, struct smtp_txn *t)
{
    tf_event(arg, 'S', t);
    return 0;
}

/* Run n transactions (at most FEED_TXNS) through one pipelined session; its return code. */
static int run_feed(struct test_feed *f, size_t n, int close_at_mail)
{
    static const char message[] = "Subject: test\r\n\r\nHello\r\n";
    struct script_server sv;
    struct smtp_options o;
    struct smtp_session *s = NULL;
    struct smtp_feed feed = {tf_next, tf_done, tf_sending, tf_leaving, f};
    struct blast_error err;
    size_t i;
    int rc;

    script_start_with(&sv, true);
    sv.close_at_mail = close_at_mail;
    plain_options(&o, sv.port);
    memset(f, 0, sizeof *f);
    f->n = n;
    for (i = 0; i < n; i++) {
        f->r[i].address = "ada@example.com";
        f->t[i].mail_from = "news@acme.example";
        f->t[i].rcpts = &f->r[i];
        f->t[i].nrcpts = 1;
        f->t[i].data = message;
        f->t[i].len = sizeof message - 1;
    }

    blast_error_clear(&err);
    rc = smtp_session_open(&o, &s, &err);
    cr_assert_eq(rc, 0, "open: %s", err.text);
    cr_assert(smtp_session_caps(s) & SMTP_CAP_PIPELINING);
    rc = smtp_session_run(s, &feed, &err);
    if (rc == 0)
        smtp_session_quit(s);
    smtp_session_free(s);
    script_stop(&sv);
    buf_free(&sv.received);
    return rc;
}

/*
 * RFC 2920: the envelope of the next transaction travels with the body of the
 * one before, and the engine takes SMTP_AHEAD more from the feed before their
 * envelope goes: `leaving` of transaction k + SMTP_AHEAD + 1 comes before
 * `sending` of k, and each is called once per transaction.
 */
Test(smtp, pipelined_feed_announces_each_transaction_ahead, .timeout = 20)
{
    struct test_feed f;
    char want[128] = "";
    size_t i, k, first = SMTP_AHEAD + 2 < FEED_TXNS ? SMTP_AHEAD + 2 : FEED_TXNS;

    for (i = 1; i <= first; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%sL%zu", i > 1 ? " " : "", i);
    for (k = 1; k <= FEED_TXNS; k++) {
        snprintf(want + strlen(want), sizeof want - strlen(want), " S%zu", k);
        if (k + SMTP_AHEAD + 2 <= FEED_TXNS)
            snprintf(want + strlen(want), sizeof want - strlen(want), " L%zu", k + SMTP_AHEAD + 2);
    }
    cr_assert_eq(run_feed(&f, FEED_TXNS, 0), 0);
    cr_assert_str_eq(f.events, want);
    cr_assert_eq(f.done, FEED_TXNS);
    for (i = 0; i < FEED_TXNS; i++) {
        cr_assert_eq(f.r[i].outcome, SMTP_OUTCOME_DELIVERED, "transaction %zu", i + 1);
        cr_assert_not(f.t[i].untried);
    }
}

/* A session that ends gives back what it took ahead as untried: no attempt was made. */
Test(smtp, a_transaction_taken_ahead_comes_back_untried_when_the_session_ends, .timeout = 20)
{
    struct test_feed f;

    cr_assert_lt(run_feed(&f, 3, 2), 0, "the 421 ends the session");
    cr_assert_eq(f.done, 3, "every transaction is given back");
    cr_assert_eq(f.r[0].outcome, SMTP_OUTCOME_DELIVERED);
    cr_assert_eq(f.r[1].outcome, SMTP_OUTCOME_DEFERRED);
    cr_assert_not(f.t[1].untried, "its MAIL was written: an attempt");
    cr_assert_eq(f.r[2].outcome, SMTP_OUTCOME_DEFERRED);
    cr_assert(f.t[2].untried, "taken ahead, never written");
    cr_assert_str_eq(f.events, "L1 L2 L3 S1");
}
