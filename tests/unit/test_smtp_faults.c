/*
 * test_smtp_faults - the SMTP engine against a server that misbehaves, over a
 * socketpair: replies out of step with the commands (RFC 5321 §4.3.2, RFC 2920
 * §3.1), AUTH exchanges the server breaks (RFC 4954 §4), connections lost while
 * a message's end of data may be on its way, and how reply codes are read
 * (RFC 5321 §4.5.3.1.10, RFC 3463). Each test asserts every byte the client
 * wrote, so that what it sends after a fault is known exactly, and the outcome
 * of every recipient.
 */
#include "../../core/buf.h"
#include "../../core/smtp.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the fake server --------------------------------------------------------------------- */

/*
 * Answers like a plain MTA, but the reply to the nth command starting with `on`
 * ("DATA", "RCPT", "." for an end of data, "AUTH" and the lines of its exchange,
 * ...) is `reply` instead, followed by `extra` in the same write.
 */
struct fake {
    int fd; /* the server's end */
    pthread_t thread;
    bool pipelining, chunking;
    const char *auth_mechs;    /* the EHLO AUTH line, or NULL */
    const char *greeting;      /* NULL: "220 fake.example ESMTP" */
    const char *ehlo_extra;    /* sent with the EHLO reply */
    const char *auth_reply[4]; /* the replies to AUTH and the lines that follow it */
    const char *on;
    int nth;
    const char *reply, *extra;
    const char *on2; /* a second fault, on another command */
    int nth2;
    const char *reply2;
    int seen2;
    int close_at_dot;    /* after reading the end of data of message n, close at once */
    int close_in_body;   /* after 1,000 bytes of message n's body, close */
    int seen;            /* commands matching `on` so far */
    int messages;        /* bodies read */
    struct buf received; /* every byte the client wrote */
};

static ssize_t fake_line(struct fake *fk, char *line, size_t size)
{
    size_t n = 0;
    char c;

    while (n + 1 < size) {
        if (recv(fk->fd, &c, 1, 0) != 1)
            return -1;
        buf_putc(&fk->received, c);
        line[n++] = c;
        if (c == '\n')
            break;
    }
    line[n] = '\0';
    return (ssize_t)n;
}

static void fake_send(struct fake *fk, const char *s)
{
    if (send(fk->fd, s, strlen(s), MSG_NOSIGNAL) < 0)
        shutdown(fk->fd, SHUT_RDWR);
}

/* The reply to a command that matches `what`: the fault's when it is the nth. */
static void fake_answer(struct fake *fk, const char *what, const char *normal)
{
    char out[8192];

    if (fk->on2 != NULL && strcmp(fk->on2, what) == 0 && ++fk->seen2 == fk->nth2) {
        fake_send(fk, fk->reply2);
        return;
    }
    if (fk->on != NULL && strcmp(fk->on, what) == 0 && ++fk->seen == fk->nth) {
        snprintf(out, sizeof out, "%s%s", fk->reply != NULL ? fk->reply : normal,
                 fk->extra != NULL ? fk->extra : "");
        fake_send(fk, out);
        return;
    }
    fake_send(fk, normal);
}

/* Read a body up to its final ".\r\n"; false when the connection is to be closed. */
static bool fake_body(struct fake *fk)
{
    char line[4096];
    size_t start = fk->received.len;

    fk->messages++;
    while (fake_line(fk, line, sizeof line) > 0) {
        if (fk->close_in_body == fk->messages && fk->received.len - start >= 1000)
            return false;
        if (strcmp(line, ".\r\n") == 0)
            return fk->close_at_dot != fk->messages;
    }
    return false;
}

static void *fake_run(void *arg)
{
    struct fake *fk = arg;
    char line[4096], caps[512];
    int auth_step = -1;

    fake_send(fk, fk->greeting != NULL ? fk->greeting : "220 fake.example ESMTP\r\n");
    while (fake_line(fk, line, sizeof line) > 0) {
        if (auth_step >= 0) {
            /* a line of the AUTH exchange */
            const char *r = auth_step < 4 ? fk->auth_reply[auth_step] : NULL;
            auth_step++;
            if (strcmp(line, "*\r\n") == 0)
                r = "501 5.7.0 Authentication cancelled\r\n";
            else if (r == NULL)
                r = "235 2.7.0 Authentication successful\r\n";
            if (strncmp(r, "334", 3) != 0)
                auth_step = -1;
            fake_send(fk, r);
        } else if (strncmp(line, "EHLO ", 5) == 0) {
            snprintf(caps, sizeof caps, "250-fake.example\r\n%s%s%s%s%s250 8BITMIME\r\n%s",
                     fk->pipelining ? "250-PIPELINING\r\n" : "",
                     fk->chunking ? "250-CHUNKING\r\n" : "", fk->auth_mechs ? "250-AUTH " : "",
                     fk->auth_mechs ? fk->auth_mechs : "", fk->auth_mechs ? "\r\n" : "",
                     fk->ehlo_extra != NULL ? fk->ehlo_extra : "");
            fake_answer(fk, "EHLO", caps);
        } else if (strncmp(line, "AUTH ", 5) == 0) {
            const char *r = fk->auth_reply[0];
            auth_step = 1;
            if (r == NULL)
                r = "235 2.7.0 Authentication successful\r\n";
            if (strncmp(r, "334", 3) != 0)
                auth_step = -1;
            fake_send(fk, r);
        } else if (strncmp(line, "MAIL ", 5) == 0) {
            fake_answer(fk, "MAIL", "250 2.1.0 Ok\r\n");
        } else if (strncmp(line, "RCPT ", 5) == 0) {
            fake_answer(fk, "RCPT", "250 2.1.5 Ok\r\n");
        } else if (strcmp(line, "RSET\r\n") == 0) {
            fake_answer(fk, "RSET", "250 2.0.0 Ok\r\n");
        } else if (strcmp(line, "DATA\r\n") == 0) {
            bool go = !(fk->on != NULL && strcmp(fk->on, "DATA") == 0 && fk->seen + 1 == fk->nth &&
                        fk->reply != NULL && strncmp(fk->reply, "354", 3) != 0) &&
                      !(fk->on2 != NULL && strcmp(fk->on2, "DATA") == 0 &&
                        fk->seen2 + 1 == fk->nth2 && strncmp(fk->reply2, "354", 3) != 0);
            fake_answer(fk, "DATA", "354 End data with <CR><LF>.<CR><LF>\r\n");
            if (!go)
                continue;
            if (!fake_body(fk))
                break;
            fake_answer(fk, ".", "250 2.0.0 Ok: queued as Q1\r\n");
        } else if (strncmp(line, "BDAT ", 5) == 0) {
            size_t n = strtoul(line + 5, NULL, 10), got = 0;
            char chunk[4096];
            while (got < n) {
                ssize_t r = recv(fk->fd, chunk, n - got < sizeof chunk ? n - got : sizeof chunk, 0);
                if (r <= 0)
                    break;
                buf_append(&fk->received, chunk, (size_t)r);
                got += (size_t)r;
            }
            fake_answer(fk, "BDAT", "250 2.0.0 Ok: queued as Q2\r\n");
        } else if (strcmp(line, "QUIT\r\n") == 0) {
            fake_send(fk, "221 2.0.0 Bye\r\n");
            break;
        } else {
            fake_send(fk, "500 5.5.2 what?\r\n");
        }
    }
    close(fk->fd);
    return NULL;
}

/*
 * Start the fake on one end of a socketpair and return the client's end. A small
 * send buffer on the client's end makes its writes block early, so a server that
 * stops reading is felt at once.
 */
static int fake_start(struct fake *fk)
{
    int sv[2], small = 4096;

    buf_init(&fk->received);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    fk->fd = sv[1];
    cr_assert_eq(pthread_create(&fk->thread, NULL, fake_run, fk), 0);
    return sv[0];
}

/* What the last fake received, kept for the test's assertions (reachable until exit). */
static struct buf wire;

/* Wait for the fake to end (the client closed its end); what it got, NUL-terminated. */
static const char *fake_stop(struct fake *fk)
{
    pthread_join(fk->thread, NULL);
    buf_reset(&wire);
    buf_append(&wire, fk->received.data != NULL ? fk->received.data : "", fk->received.len);
    buf_puts(&wire, "");
    buf_free(&fk->received);
    return wire.data;
}

/* ---- the client ---------------------------------------------------------------------------- */

#define TXNS  4
#define RCPTS 2000

struct feed {
    struct smtp_txn t[TXNS];
    struct smtp_rcpt r[TXNS][1];
    struct smtp_rcpt *many; /* transaction 2 when `wide`: wide_rcpts */
    size_t n, given, done;
};

static struct smtp_txn *f_next(void *arg)
{
    struct feed *f = arg;

    return f->given < f->n ? &f->t[f->given++] : NULL;
}

static void f_done(void *arg, struct smtp_txn *t)
{
    (void)t;
    ((struct feed *)arg)->done++;
}

static const char message[] = "Subject: hi\r\n\r\nHello\r\n";

/*
 * The recipients of a wide transaction: 2,000 of them take some 3 MB, more than a
 * test's stack should hold (valgrind flags such frames). Each test runs in a
 * process of its own, so one static set serves them all.
 */
static struct smtp_rcpt wide_rcpts[RCPTS];
static char wide_addr[RCPTS][24];

static void feed_init(struct feed *f, size_t n, const char *data, size_t len, bool wide)
{
    size_t i;

    memset(f, 0, sizeof *f);
    f->n = n;
    for (i = 0; i < n; i++) {
        f->r[i][0].address = i == 0   ? "ann@example.com"
                             : i == 1 ? "bob@example.com"
                             : i == 2 ? "cy@example.com"
                                      : "di@example.com";
        f->t[i].mail_from = "news@acme.example";
        f->t[i].rcpts = f->r[i];
        f->t[i].nrcpts = 1;
        f->t[i].data = i == 0 ? data : message;
        f->t[i].len = i == 0 ? len : sizeof message - 1;
    }
    if (wide && n > 1) {
        for (i = 0; i < RCPTS; i++) {
            memset(&wide_rcpts[i], 0, sizeof wide_rcpts[i]);
            snprintf(wide_addr[i], sizeof wide_addr[i], "r%04zu@example.com", i);
            wide_rcpts[i].address = wide_addr[i];
        }
        f->many = wide_rcpts;
        f->t[1].rcpts = f->many;
        f->t[1].nrcpts = RCPTS;
    }
}

/* The session's transcript at trace level, for the tests that look for secrets in it. */
static struct buf transcript;

static void transcript_sink(void *arg, enum log_level level, const char *line)
{
    (void)arg;
    (void)level;
    buf_puts(&transcript, line);
    buf_putc(&transcript, '\n');
}

struct result {
    int open_rc, run_rc;
    bool out_of_step, give_up;
    char error[BLAST_ERROR_TEXT_MAX];
    const char *wire; /* what the client wrote (the fake's buffer) */
};

/* Open a session to the fake (AUTH when user is set) and run the feed through it. */
static void run(struct fake *fk, struct feed *f, const char *user, enum smtp_auth_choice auth,
                bool chunking, struct result *res)
{
    struct smtp_options o;
    struct smtp_session *s = NULL;
    struct smtp_feed feed = {f_next, f_done, NULL, NULL, f};
    struct blast_error err;
    struct conn *c = NULL;
    struct log lg = {transcript_sink, NULL, LOG_LEVEL_TRACE};
    int fd = fake_start(fk);

    buf_reset(&transcript);
    memset(res, 0, sizeof *res);
    blast_error_clear(&err);
    cr_assert_eq(conn_adopt(fd, "fake.example", &c, &err), 0, "%s", err.text);
    memset(&o, 0, sizeof o);
    o.host = "fake.example";
    o.label = "fake";
    o.tls = SMTP_TLS_NONE;
    o.helo_name = "client.example";
    o.username = user;
    o.password = user != NULL ? "secret-password" : NULL;
    o.auth = auth;
    o.chunking = chunking;
    o.conn = c;
    o.log = &lg;
    smtp_timeouts_default(&o.timeouts);
    o.timeouts.block = 5000;
    res->open_rc = smtp_session_open(&o, &s, &err);
    if (res->open_rc == 0) {
        res->run_rc = smtp_session_run(s, &feed, &err);
        if (res->run_rc == 0)
            smtp_session_quit(s);
    }
    res->out_of_step = s != NULL && smtp_session_out_of_step(s);
    res->give_up = s != NULL && smtp_session_give_up(s);
    snprintf(res->error, sizeof res->error, "%s", err.text);
    smtp_session_free(s);
    res->wire = fake_stop(fk);
    buf_puts(&transcript, "");
}

/* What the client wrote after its EHLO line. */
static const char *after_ehlo(const struct result *res)
{
    const char *p = strstr(res->wire, "EHLO client.example\r\n");

    cr_assert_not_null(p, "%s", res->wire);
    return p + strlen("EHLO client.example\r\n");
}

#define ENV(who) "MAIL FROM:<news@acme.example>\r\nRCPT TO:<" who ">\r\nDATA\r\n"
#define BODY     "Subject: hi\r\n\r\nHello\r\n.\r\n"

static void assert_outcome(const struct feed *f, size_t i, enum smtp_outcome want, bool untried)
{
    cr_assert_eq(f->r[i][0].outcome, want, "transaction %zu: outcome %d, want %d", i + 1,
                 f->r[i][0].outcome, want);
    cr_assert_eq(f->t[i].untried, untried, "transaction %zu: untried %d", i + 1, f->t[i].untried);
}

/* ---- out of step, pipelined ---------------------------------------------------------------- */

/* RFC 5321 §4.3.2: DATA gets 354 or a refusal; a 250 answers something else. */
Test(smtp_faults, pipelined_data_answered_250_sends_nothing_more, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .on = "DATA", .nth = 1, .reply = "250 2.0.0 Ok\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 3, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com"), "no body, no RSET, no QUIT");
    cr_assert_eq(f.done, 3);
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
    cr_assert_eq(f.r[0][0].reply.code, 0, "no reply decided it: not charged to the recipient");
    cr_assert_not_null(strstr(f.r[0][0].detail, "out of step"), "%s", f.r[0][0].detail);
    cr_assert_not_null(strstr(f.r[0][0].detail, "DATA answered 250"), "%s", f.r[0][0].detail);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
    assert_outcome(&f, 2, SMTP_OUTCOME_DEFERRED, true);
}

/* A reply after the 354 that nothing asked for: the body never goes. */
Test(smtp_faults, pipelined_reply_nobody_asked_for_stops_the_body, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .on = "DATA", .nth = 1, .extra = "250 2.0.0 Ok\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 3, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com"));
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
    assert_outcome(&f, 2, SMTP_OUTCOME_DEFERRED, true);
}

/* A reply waiting before the first command of a run: nothing of the run is written. */
Test(smtp_faults, reply_waiting_while_idle_means_nothing_is_written, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .ehlo_extra = "250 2.0.0 hello again\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_not_null(strstr(res.error, "when no reply was awaited"), "%s", res.error);
    cr_assert_str_eq(after_ehlo(&res), "");
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, true);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
}

/*
 * More replies than commands in a round: which one answered the end of data of
 * transaction 1 cannot be said, so it is unknown; transaction 2's body never left.
 */
Test(smtp_faults, pipelined_reply_too_many_makes_the_end_of_data_unknown, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .on = "DATA", .nth = 2, .extra = "250 2.0.0 Ok\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 3, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_not_null(strstr(res.error, "more replies than commands"), "%s", res.error);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com") BODY ENV("bob@example.com"));
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, false);
    cr_assert_eq(f.r[1][0].reply.code, 0, "its 354 is in doubt too");
    assert_outcome(&f, 2, SMTP_OUTCOME_DEFERRED, true);
}

/* A "221 Bye" answers QUIT, not an end of data: the message is unknown, not delivered. */
Test(smtp_faults, end_of_data_answered_221_is_unknown, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .on = ".", .nth = 1, .reply = "221 2.0.0 Bye\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, false);
}

/* RFC 5321 §4.2.1: every line of a multiline reply has the same code. */
Test(smtp_faults, continuation_that_changes_code_at_end_of_data, .timeout = 20)
{
    struct fake fk = {
        .pipelining = true, .on = ".", .nth = 1, .reply = "250-2.0.0 Ok\r\n251 2.0.0 queued\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 3, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com") BODY ENV("bob@example.com"));
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, false);
    assert_outcome(&f, 2, SMTP_OUTCOME_DEFERRED, true);
}

/* An intermediate code to RCPT, or 503 to a RCPT after an accepted MAIL. */
Test(smtp_faults, pipelined_rcpt_answered_out_of_sequence, .timeout = 20)
{
    static const char *const replies[] = {"354 go on\r\n",
                                          "503 5.5.1 Error: need MAIL command\r\n"};
    size_t i;

    for (i = 0; i < 2; i++) {
        struct fake fk = {.pipelining = true, .on = "RCPT", .nth = 1, .reply = replies[i]};
        struct feed f;
        struct result res;

        feed_init(&f, 2, message, sizeof message - 1, false);
        run(&fk, &f, NULL, 0, false, &res);
        cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
        cr_assert(res.out_of_step, "%s", replies[i]);
        cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com"));
        assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
        cr_assert_eq(f.r[0][0].reply.code, 0);
        assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
    }
}

/* RFC 5321 §3.8: a 421 the server sends on its own while the session is idle closes it. */
Test(smtp_faults, a_421_while_idle_gives_everything_back_untried, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .ehlo_extra = "421 4.4.2 idle too long\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_ECLOSED, "%s", res.error);
    cr_assert_not(res.out_of_step, "a 421 is a close, not a reply out of step");
    cr_assert_str_eq(after_ehlo(&res), "");
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, true);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
}

/* A second greeting is a reply to nothing: EHLO is never sent. */
Test(smtp_faults, two_greetings_fail_the_session_before_ehlo, .timeout = 20)
{
    struct fake fk = {.greeting = "220 fake.example ESMTP\r\n220 fake.example again\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 1, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.open_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_str_eq(res.wire, "");
}

/* ---- out of step, lock-step ---------------------------------------------------------------- */

Test(smtp_faults, lockstep_data_answered_250_sends_nothing_more, .timeout = 20)
{
    struct fake fk = {.on = "DATA", .nth = 1, .reply = "250 2.0.0 Ok\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com"));
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
    cr_assert_eq(f.done, 1, "the second was never taken");
}

Test(smtp_faults, lockstep_reply_after_354_stops_the_body, .timeout = 20)
{
    struct fake fk = {.on = "DATA", .nth = 1, .extra = "250 2.0.0 Ok\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com"));
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
}

Test(smtp_faults, lockstep_reply_too_many_after_end_of_data_is_unknown, .timeout = 20)
{
    struct fake fk = {.on = ".", .nth = 1, .extra = "250 2.0.0 Ok again\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com") BODY);
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
    cr_assert_eq(f.done, 1);
}

/* ---- out of step, BDAT ----------------------------------------------------------------------- */

Test(smtp_faults, bdat_answered_354_is_unknown, .timeout = 20)
{
    struct fake fk = {
        .pipelining = true, .chunking = true, .on = "BDAT", .nth = 1, .reply = "354 go ahead\r\n"};
    struct feed f;
    struct result res;
    char want[256];

    feed_init(&f, 1, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, true, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    snprintf(want, sizeof want,
             "RSET\r\nMAIL FROM:<news@acme.example>\r\nRCPT TO:<ann@example.com>\r\n"
             "BDAT %zu LAST\r\n%s",
             sizeof message - 1, message);
    cr_assert_str_eq(after_ehlo(&res), want);
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
}

/* ---- AUTH the server breaks (RFC 4954 §4) -----------------------------------------------------
 */

static void auth_case(struct fake *fk, enum smtp_auth_choice auth, struct result *res)
{
    struct feed f;

    feed_init(&f, 1, message, sizeof message - 1, false);
    run(fk, &f, "user", auth, false, res);
    cr_assert_eq(res->open_rc, BLAST_EAUTH, "%s", res->error);
    cr_assert_eq(f.done, 0, "nothing was sent");
    /* the password, plain or in base64, is in neither the error nor the transcript */
    cr_assert_null(strstr(res->error, "secret-password"), "%s", res->error);
    cr_assert_null(strstr(transcript.data, "secret-password"), "%s", transcript.data);
    cr_assert_null(strstr(transcript.data, "c2VjcmV0LXBhc3N3b3Jk"), "%s", transcript.data);
    cr_assert_null(strstr(transcript.data, "AHVzZXIAc2VjcmV0"), "PLAIN: %s", transcript.data);
}

Test(smtp_faults, auth_plain_answered_334_is_cancelled, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "PLAIN", .auth_reply = {"334 \r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_PLAIN, &res);
    cr_assert(res.give_up);
    cr_assert_not_null(strstr(res.error, "AUTH PLAIN: a 334 after the initial response"), "%s",
                       res.error);
    cr_assert_eq(strncmp(after_ehlo(&res), "AUTH PLAIN ", 11), 0);
    cr_assert_not_null(strstr(after_ehlo(&res), "\r\n*\r\n"));
    cr_assert_str_eq(strstr(after_ehlo(&res), "\r\n*\r\n"), "\r\n*\r\n", "nothing after '*'");
}

Test(smtp_faults, auth_login_challenge_not_base64_gets_no_credential, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "LOGIN", .auth_reply = {"334 Username:\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_LOGIN, &res);
    cr_assert(res.give_up);
    cr_assert_str_eq(after_ehlo(&res), "AUTH LOGIN\r\n*\r\n");
    cr_assert_not_null(strstr(res.error, "is not base64"), "%s", res.error);
    cr_assert_null(strstr(res.error, "secret"), "%s", res.error);
}

Test(smtp_faults, auth_login_two_challenges_at_once_get_no_credential, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "LOGIN",
                      .auth_reply = {"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_LOGIN, &res);
    cr_assert(res.give_up);
    cr_assert_str_eq(after_ehlo(&res), "AUTH LOGIN\r\n*\r\n");
}

Test(smtp_faults, auth_login_challenge_after_the_password_is_cancelled, .timeout = 20)
{
    struct fake fk = {
        .auth_mechs = "LOGIN",
        .auth_reply = {"334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n", "334 UGFzc3dvcmQ6\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_LOGIN, &res);
    cr_assert(res.give_up);
    /* user, then the password in base64, then the cancel */
    cr_assert_str_eq(after_ehlo(&res), "AUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0LXBhc3N3b3Jk\r\n*\r\n");
}

Test(smtp_faults, auth_cram_md5_challenge_not_base64_gets_no_response, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "CRAM-MD5", .auth_reply = {"334 <1896.697170952@fake>\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_CRAM_MD5, &res);
    cr_assert(res.give_up);
    cr_assert_str_eq(after_ehlo(&res), "AUTH CRAM-MD5\r\n*\r\n");
}

Test(smtp_faults, auth_xoauth2_error_not_base64_is_cancelled, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "XOAUTH2", .auth_reply = {"334 {\"status\":\"401\"}\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_XOAUTH2, &res);
    cr_assert(res.give_up);
    cr_assert_eq(strncmp(after_ehlo(&res), "AUTH XOAUTH2 ", 13), 0);
    cr_assert_str_eq(strstr(after_ehlo(&res), "\r\n"), "\r\n*\r\n");
}

Test(smtp_faults, auth_login_235_before_the_password_is_broken, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "LOGIN",
                      .auth_reply = {"334 VXNlcm5hbWU6\r\n", "235 2.7.0 fine\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_LOGIN, &res);
    cr_assert(res.give_up);
    cr_assert_str_eq(after_ehlo(&res), "AUTH LOGIN\r\ndXNlcg==\r\n", "no password");
}

/* RFC 5321 §3.8: a 421 is the server closing, whatever the step: one error at every step. */
Test(smtp_faults, a_421_is_the_same_error_at_every_step_of_opening, .timeout = 20)
{
    struct fake at_greeting = {.greeting = "421 4.3.2 too busy, come back later\r\n"};
    struct fake at_ehlo = {.on = "EHLO", .nth = 1, .reply = "421 4.3.2 shutting down\r\n"};
    struct fake at_auth = {.auth_mechs = "PLAIN", .auth_reply = {"421 4.3.2 shutting down\r\n"}};
    struct fake *cases[] = {&at_greeting, &at_ehlo, &at_auth};
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct feed f;
        struct result res;
        feed_init(&f, 1, message, sizeof message - 1, false);
        run(cases[i], &f, cases[i] == &at_auth ? "user" : NULL, SMTP_AUTH_CHOICE_PLAIN, false,
            &res);
        cr_assert_eq(res.open_rc, BLAST_ECLOSED, "case %zu: %d %s", i, res.open_rc, res.error);
        cr_assert(strstr(res.error, "the server closed the session: 421 4.3.2") != NULL,
                  "case %zu: %s", i, res.error);
        cr_assert_not(res.give_up, "case %zu: a 421 says nothing of the password", i);
        cr_assert_not(res.out_of_step, "case %zu", i);
        cr_assert_eq(f.done, 0, "case %zu: nothing was sent", i);
    }
}

Test(smtp_faults, auth_refusals_535_gives_up_454_does_not, .timeout = 20)
{
    struct fake bad = {.auth_mechs = "PLAIN", .auth_reply = {"535 5.7.8 bad credentials\r\n"}};
    struct fake later = {.auth_mechs = "PLAIN", .auth_reply = {"454 4.7.0 try later\r\n"}};
    struct result res;

    auth_case(&bad, SMTP_AUTH_CHOICE_PLAIN, &res);
    cr_assert(res.give_up);
    cr_assert_null(strstr(after_ehlo(&res), "*\r\n"), "a refusal ends the exchange: no '*'");
    auth_case(&later, SMTP_AUTH_CHOICE_PLAIN, &res);
    cr_assert_not(res.give_up);
}

Test(smtp_faults, auth_answered_with_an_intermediate_code_of_another_kind, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "LOGIN", .auth_reply = {"354 go ahead\r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_LOGIN, &res);
    cr_assert(res.give_up);
    cr_assert_str_eq(after_ehlo(&res), "AUTH LOGIN\r\n");
}

Test(smtp_faults, auth_cram_md5_empty_challenge_gets_no_response, .timeout = 20)
{
    struct fake fk = {.auth_mechs = "CRAM-MD5", .auth_reply = {"334 \r\n"}};
    struct result res;

    auth_case(&fk, SMTP_AUTH_CHOICE_CRAM_MD5, &res);
    cr_assert(res.give_up);
    cr_assert_str_eq(after_ehlo(&res), "AUTH CRAM-MD5\r\n*\r\n");
}

/* ---- 421 to RSET: the server closing, in each mode ---------------------------------------------
 */

#define REFUSED_DATA "554 5.7.1 not from you\r\n"
#define CLOSING      "421 4.3.2 shutting down\r\n"

Test(smtp_faults, pipelined_rset_answered_421_is_a_close_not_out_of_step, .timeout = 20)
{
    struct fake fk = {.pipelining = true,
                      .on = "DATA",
                      .nth = 1,
                      .reply = REFUSED_DATA,
                      .on2 = "RSET",
                      .nth2 = 1,
                      .reply2 = CLOSING};
    struct feed f;
    struct result res;

    feed_init(&f, 3, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_ECLOSED, "%s", res.error);
    cr_assert_not(res.out_of_step);
    assert_outcome(&f, 0, SMTP_OUTCOME_FAILED, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, false);
    cr_assert_eq(f.r[1][0].reply.code, 421);
    assert_outcome(&f, 2, SMTP_OUTCOME_DEFERRED, true);
}

Test(smtp_faults, lockstep_rset_answered_421_gives_the_next_back_untried, .timeout = 20)
{
    struct fake fk = {
        .on = "DATA", .nth = 1, .reply = REFUSED_DATA, .on2 = "RSET", .nth2 = 1, .reply2 = CLOSING};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, BLAST_ECLOSED, "%s", res.error);
    cr_assert_not(res.out_of_step);
    assert_outcome(&f, 0, SMTP_OUTCOME_FAILED, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
    cr_assert_str_eq(after_ehlo(&res), ENV("ann@example.com") "RSET\r\n");
}

Test(smtp_faults, bdat_rset_answered_421_defers_the_whole_batch, .timeout = 20)
{
    struct fake fk = {
        .pipelining = true, .chunking = true, .on = "RSET", .nth = 1, .reply = CLOSING};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, true, &res);
    cr_assert_eq(res.run_rc, BLAST_ECLOSED, "%s", res.error);
    cr_assert_not(res.out_of_step);
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, false);
}

/*
 * BDAT: an extra reply after the first transaction's BDAT LAST. Which reply
 * answered which transaction cannot be said, so neither is delivered: the whole
 * batch is unknown.
 */
Test(smtp_faults, bdat_extra_reply_makes_the_whole_batch_unknown, .timeout = 20)
{
    struct fake fk = {.pipelining = true,
                      .chunking = true,
                      .on = "BDAT",
                      .nth = 1,
                      .extra = "554 5.7.1 rejected\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, true, &res);
    cr_assert_eq(res.run_rc, BLAST_EPROTO, "%s", res.error);
    cr_assert(res.out_of_step);
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_UNKNOWN, false);
}

Test(smtp_faults, bdat_batch_is_delivered_in_one_write, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .chunking = true};
    struct feed f;
    struct result res;
    size_t i;

    feed_init(&f, 4, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, true, &res);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    for (i = 0; i < 4; i++)
        assert_outcome(&f, i, SMTP_OUTCOME_DELIVERED, false);
}

/* ---- a connection lost while the end of data may be on its way ---------------------------------
 */

/*
 * The server reads transaction 1's body through its final "." and closes while
 * the client is still writing transaction 2's (long) envelope: the "." reached
 * the server, so transaction 1 is unknown, never deferred.
 */
Test(smtp_faults, lost_after_the_final_dot_left_is_unknown, .timeout = 20)
{
    struct fake fk = {.pipelining = true, .close_at_dot = 1};
    struct feed f;
    struct result res;

    feed_init(&f, 3, message, sizeof message - 1, true);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_lt(res.run_rc, 0);
    cr_assert_not(res.out_of_step);
    cr_assert_not_null(strstr(after_ehlo(&res), BODY), "the server read the end of data");
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
    cr_assert_eq(f.many[0].outcome, SMTP_OUTCOME_DEFERRED, "its envelope was on its way");
    cr_assert_not(f.t[1].untried);
    assert_outcome(&f, 2, SMTP_OUTCOME_DEFERRED, true);
}

/*
 * n transactions, the first with a body far bigger than the socket takes, to a
 * server that goes away 1,000 bytes into it: the client is still writing it.
 */
static void run_cut_in_body(struct fake *fk, size_t n, struct feed *f)
{
    struct result res;
    struct buf big = BUF_INIT;
    size_t i;

    fk->close_in_body = 1;
    buf_puts(&big, "Subject: big\r\n\r\n");
    for (i = 0; i < 8000; i++)
        buf_puts(&big, "a line of a long body, long enough to fill the socket\r\n");
    feed_init(f, n, big.data, big.len, false);
    run(fk, f, NULL, 0, false, &res);
    cr_assert_lt(res.run_rc, 0);
    buf_free(&big);
}

/* A body cut before its final "." left the client: nothing can have been delivered. */
Test(smtp_faults, lost_before_the_final_dot_left_is_deferred, .timeout = 20)
{
    struct fake fk = {.pipelining = true};
    struct feed f;

    run_cut_in_body(&fk, 2, &f);
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
    assert_outcome(&f, 1, SMTP_OUTCOME_DEFERRED, true);
}

Test(smtp_faults, lockstep_lost_before_the_final_dot_left_is_deferred, .timeout = 20)
{
    struct fake fk = {.pipelining = false};
    struct feed f;

    run_cut_in_body(&fk, 1, &f);
    assert_outcome(&f, 0, SMTP_OUTCOME_DEFERRED, false);
}

Test(smtp_faults, lockstep_lost_after_the_final_dot_is_unknown, .timeout = 20)
{
    struct fake fk = {.close_at_dot = 1};
    struct feed f;
    struct result res;

    feed_init(&f, 1, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_lt(res.run_rc, 0);
    assert_outcome(&f, 0, SMTP_OUTCOME_UNKNOWN, false);
}

/* ---- reply codes as the RFCs read them ------------------------------------------------------ */

static enum smtp_outcome outcome(int code, const char *enhanced, enum smtp_state step)
{
    struct smtp_reply r;

    memset(&r, 0, sizeof r);
    r.code = code;
    snprintf(r.enhanced, sizeof r.enhanced, "%s", enhanced);
    return smtp_reply_outcome(&r, step);
}

Test(smtp_faults, reply_outcome_table)
{
    static const struct {
        int code;
        const char *enhanced;
        enum smtp_state step;
        enum smtp_outcome want;
    } cases[] = {
        {250, "2.0.0", SMTP_END_OF_DATA, SMTP_OUTCOME_DELIVERED},
        {251, "", SMTP_END_OF_DATA, SMTP_OUTCOME_DELIVERED},
        {450, "4.2.1", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {450, "4.1.1", SMTP_RCPT, SMTP_OUTCOME_DEFERRED}, /* Postfix verifying an address */
        {451, "", SMTP_END_OF_DATA, SMTP_OUTCOME_DEFERRED},
        {452, "4.5.3", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {550, "5.1.1", SMTP_RCPT, SMTP_OUTCOME_FAILED},
        {550, "", SMTP_RCPT, SMTP_OUTCOME_FAILED},
        {554, "5.7.1", SMTP_END_OF_DATA, SMTP_OUTCOME_FAILED},
        /* RFC 5321 §4.5.3.1.10: 552 to RCPT is "too many recipients" */
        {552, "", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {552, "5.5.3", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {552, "5.3.4", SMTP_RCPT, SMTP_OUTCOME_FAILED}, /* message too big: only permanent */
        {552, "5.2.3", SMTP_RCPT, SMTP_OUTCOME_FAILED},
        {552, "", SMTP_END_OF_DATA, SMTP_OUTCOME_FAILED}, /* RFC 1870 §6: size, permanent */
        {552, "", SMTP_MAIL, SMTP_OUTCOME_FAILED},
        /* RFC 3463: "useful only as a persistent transient" */
        {552, "5.2.2", SMTP_END_OF_DATA, SMTP_OUTCOME_DEFERRED},
        {550, "5.2.2", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {554, "5.3.1", SMTP_END_OF_DATA, SMTP_OUTCOME_DEFERRED},
        {554, "5.4.5", SMTP_END_OF_DATA, SMTP_OUTCOME_DEFERRED},
        {550, "5.4.6", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {550, "5.4.1", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {550, "5.4.2", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {550, "5.4.3", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {550, "5.5.3", SMTP_RCPT, SMTP_OUTCOME_DEFERRED},
        {550, "5.2.20", SMTP_RCPT, SMTP_OUTCOME_FAILED}, /* not X.2.2 */
        {550, "5.4.4", SMTP_RCPT, SMTP_OUTCOME_FAILED},  /* both: the basic code says */
        {550, "5.2.1", SMTP_RCPT, SMTP_OUTCOME_FAILED},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(outcome(cases[i].code, cases[i].enhanced, cases[i].step), cases[i].want,
                     "%d %s at %s", cases[i].code, cases[i].enhanced,
                     smtp_state_name(cases[i].step));
}

Test(smtp_faults, too_many_recipients_is_about_the_transaction)
{
    struct smtp_reply r;

    memset(&r, 0, sizeof r);
    r.code = 552;
    cr_assert(smtp_reply_too_many_recipients(&r, SMTP_RCPT), "RFC 5321 §4.5.3.1.10");
    cr_assert_not(smtp_reply_too_many_recipients(&r, SMTP_END_OF_DATA));
    snprintf(r.enhanced, sizeof r.enhanced, "5.2.2");
    cr_assert_not(smtp_reply_too_many_recipients(&r, SMTP_RCPT), "mailbox full is about it");
    r.code = 452;
    snprintf(r.enhanced, sizeof r.enhanced, "4.5.3");
    cr_assert(smtp_reply_too_many_recipients(&r, SMTP_RCPT));
    r.enhanced[0] = '\0';
    cr_assert_not(smtp_reply_too_many_recipients(&r, SMTP_RCPT),
                  "a bare 452 may be insufficient storage: retried after a while");
    r.code = 250;
    cr_assert_not(smtp_reply_too_many_recipients(&r, SMTP_RCPT));
}

/* A 552 to RCPT in a session: deferred, and the other recipients carry on. */
Test(smtp_faults, rcpt_552_is_deferred_and_mailbox_full_at_end_of_data_too, .timeout = 20)
{
    struct fake fk = {
        .pipelining = true, .on = "RCPT", .nth = 1, .reply = "552 too many recipients\r\n"};
    struct fake full = {
        .pipelining = true, .on = ".", .nth = 1, .reply = "552 5.2.2 mailbox full\r\n"};
    struct feed f;
    struct result res;

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&fk, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    cr_assert_eq(f.r[0][0].outcome, SMTP_OUTCOME_DEFERRED);
    cr_assert_eq(f.r[0][0].reply.code, 552);
    cr_assert_eq(f.r[1][0].outcome, SMTP_OUTCOME_DELIVERED);

    feed_init(&f, 2, message, sizeof message - 1, false);
    run(&full, &f, NULL, 0, false, &res);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    cr_assert_eq(f.r[0][0].outcome, SMTP_OUTCOME_DEFERRED);
    cr_assert_str_eq(f.r[0][0].reply.enhanced, "5.2.2");
    cr_assert_eq(f.r[1][0].outcome, SMTP_OUTCOME_DELIVERED);
}
