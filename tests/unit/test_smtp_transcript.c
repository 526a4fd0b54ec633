/*
 * test_smtp_transcript - whole SMTP sessions, byte for byte in both directions:
 * lock-step without PIPELINING (RFC 5321 §4.3), pipelined with DATA (RFC 2920)
 * including a 421 in the middle of a group, and BDAT batches (RFC 3030). Each
 * test plays a script of turns against the engine over a socketpair (what the
 * client must write, then what the server answers) and asserts the whole byte
 * stream the client wrote, how it was grouped into writes (the session's
 * statistics, and that the client waited after each turn), the order of the
 * feed's callbacks, and every recipient's outcome, step, reply and queue id.
 * They pin the engine's behaviour on the wire so that a change to it fails here.
 */
#include "../../core/buf.h"
#include "../../core/smtp.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- a server that follows a script ---------------------------------------------------- */

/*
 * One turn of a session: the bytes the client must write (NULL for none: the
 * greeting), then the server's answer (NULL for none: the server says nothing
 * more and waits for the client to close).
 *
 * A turn is a group the client writes before it waits: the server reads exactly
 * the turn's bytes before it answers anything, so the client cannot have had a
 * reply early, and its waits (smtp_stats.round_trips) are the same on every run.
 * recv() bursts are not recorded: how the kernel splits a stream is not the
 * engine's doing and would make the tests flaky.
 */
struct turn {
    const char *client;
    const char *server;
};

struct fake {
    int fd; /* the server's end */
    pthread_t thread;
    const struct turn *turns;
    size_t nturns;
    size_t played;       /* turns whose bytes came as scripted and were answered */
    size_t early;        /* 0, or the turn (from 1) after which bytes came before its answer */
    struct buf received; /* every byte the client wrote */
};

/* Generous for a client on a busy machine, short enough for a failing test to end in time. */
#define FAKE_WAIT_S 5

/*
 * Read the n bytes of want into fk->received; false when the client closed or
 * stalled, or as soon as a byte differs (the client then waits for a reply that
 * will not come: no reason to wait for the rest).
 */
static bool fake_expect(struct fake *fk, const char *want, size_t n)
{
    char chunk[4096];

    while (n > 0) {
        ssize_t r = recv(fk->fd, chunk, n < sizeof chunk ? n : sizeof chunk, 0);
        if (r <= 0)
            return false;
        buf_append(&fk->received, chunk, (size_t)r);
        if (memcmp(chunk, want, (size_t)r) != 0)
            return false;
        want += r;
        n -= (size_t)r;
    }
    return true;
}

/* Runs on the server's thread: no assertions here, the test checks what it recorded. */
static void *fake_run(void *arg)
{
    struct fake *fk = arg;
    char chunk[4096];
    bool off_script = false;
    ssize_t r;
    size_t i;

    for (i = 0; i < fk->nturns; i++) {
        const struct turn *t = &fk->turns[i];

        if (t->client != NULL) {
            if (!fake_expect(fk, t->client, strlen(t->client))) {
                off_script = true;
                break;
            }
            /*
             * The client now waits for this turn's answer, so nothing more can have
             * come. (When the engine is wrong and writes on, its bytes may still be
             * on their way: this catches that only sometimes, the statistics always.)
             */
            if (fk->early == 0 && recv(fk->fd, chunk, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
                fk->early = i + 1;
        }
        if (t->server != NULL &&
            send(fk->fd, t->server, strlen(t->server), MSG_NOSIGNAL) != (ssize_t)strlen(t->server))
            break;
        fk->played++;
    }
    /*
     * What the client writes after the script, until it closes: nothing when the
     * engine does as scripted. Off script, take what is there and close, so that
     * a client waiting for a reply fails at once instead of at its timeout.
     */
    while ((r = recv(fk->fd, chunk, sizeof chunk, off_script ? MSG_DONTWAIT : 0)) > 0)
        buf_append(&fk->received, chunk, (size_t)r);
    close(fk->fd);
    return NULL;
}

/* Start the fake on one end of a socketpair; the client's end. */
static int fake_start(struct fake *fk, const struct turn *turns, size_t nturns)
{
    struct timeval wait = {FAKE_WAIT_S, 0};
    int sv[2];

    memset(fk, 0, sizeof *fk);
    fk->turns = turns;
    fk->nturns = nturns;
    buf_init(&fk->received);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* every wait of the server is bounded, so a client off script cannot hang the test */
    cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait), 0);
    cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait), 0);
    fk->fd = sv[1];
    cr_assert_eq(pthread_create(&fk->thread, NULL, fake_run, fk), 0);
    return sv[0];
}

/*
 * The client wrote exactly the client's side of the script, turn by turn, waited
 * for the answer after each turn, and wrote nothing after the last.
 */
static void assert_played(struct fake *fk)
{
    struct buf want = BUF_INIT;
    size_t i;

    for (i = 0; i < fk->nturns; i++)
        if (fk->turns[i].client != NULL)
            buf_puts(&want, fk->turns[i].client);
    buf_puts(&want, "");
    buf_puts(&fk->received, "");
    cr_assert_str_eq(fk->received.data, want.data);
    cr_assert_eq(fk->played, fk->nturns, "%zu of %zu turns played", fk->played, fk->nturns);
    cr_assert_eq(fk->early, 0, "the client wrote on after turn %zu without waiting", fk->early);
    buf_free(&want);
}

/* ---- the client ---------------------------------------------------------------------- */

#define TXNS 3

/* Transactions of one recipient each; the feed's callbacks noted in order. */
struct feed {
    struct smtp_txn t[TXNS];
    struct smtp_rcpt r[TXNS];
    size_t n, given;
    char events[128]; /* "L1 S1 D1": leaving, sending, done of transaction n */
};

static void note(struct feed *f, char kind, const struct smtp_txn *t)
{
    size_t n = strlen(f->events);

    snprintf(f->events + n, sizeof f->events - n, "%s%c%d", n > 0 ? " " : "", kind,
             (int)(t - f->t) + 1);
}

static struct smtp_txn *f_next(void *arg)
{
    struct feed *f = arg;

    return f->given < f->n ? &f->t[f->given++] : NULL;
}

static void f_done(void *arg, struct smtp_txn *t)
{
    note(arg, 'D', t);
}

static int f_sending(void *arg, struct smtp_txn *t)
{
    note(arg, 'S', t);
    return 0;
}

static int f_leaving(void *arg, struct smtp_txn *t)
{
    note(arg, 'L', t);
    return 0;
}

/* A transaction from news@acme.example to rcpt, of the message data (a C string). */
static void add_txn(struct feed *f, const char *rcpt, const char *data, bool smtputf8,
                    bool eightbit)
{
    struct smtp_txn *t = &f->t[f->n];

    cr_assert_lt(f->n, TXNS);
    f->r[f->n].address = rcpt;
    t->mail_from = "news@acme.example";
    t->smtputf8 = smtputf8;
    t->eightbit = eightbit;
    t->rcpts = &f->r[f->n];
    t->nrcpts = 1;
    t->data = data;
    t->len = strlen(data);
    f->n++;
}

struct result {
    int run_rc;
    bool out_of_step;
    struct smtp_stats stats; /* as the session ended, before QUIT */
    char error[BLAST_ERROR_TEXT_MAX];
};

/*
 * Open a session to the fake playing turns and run the feed through it. QUIT is
 * asked for whatever the run returned: the engine decides whether it goes.
 */
static void run(struct fake *fk, const struct turn *turns, size_t nturns, struct feed *f,
                bool chunking, struct result *res)
{
    struct smtp_options o;
    struct smtp_session *s = NULL;
    struct smtp_feed feed = {f_next, f_done, f_sending, f_leaving, f};
    struct blast_error err;
    struct conn *c = NULL;
    int fd = fake_start(fk, turns, nturns), rc;

    memset(res, 0, sizeof *res);
    blast_error_clear(&err);
    cr_assert_eq(conn_adopt(fd, "fake.example", &c, &err), 0, "%s", err.text);
    memset(&o, 0, sizeof o);
    o.host = "fake.example";
    o.label = "fake";
    o.tls = SMTP_TLS_NONE;
    o.helo_name = "client.example";
    o.chunking = chunking;
    o.conn = c;
    smtp_timeouts_default(&o.timeouts);
    o.timeouts.block = 5000;
    rc = smtp_session_open(&o, &s, &err);
    cr_assert_eq(rc, 0, "open: %s", err.text);
    res->run_rc = smtp_session_run(s, &feed, &err);
    res->out_of_step = smtp_session_out_of_step(s);
    res->stats = *smtp_session_stats(s);
    snprintf(res->error, sizeof res->error, "%s", err.text);
    smtp_session_quit(s);
    smtp_session_free(s);
    pthread_join(fk->thread, NULL);
}

static void assert_stats(const struct result *res, size_t messages, size_t writes,
                         size_t round_trips)
{
    cr_assert_eq(res->stats.messages, messages, "messages %zu", res->stats.messages);
    cr_assert_eq(res->stats.writes, writes, "writes %zu", res->stats.writes);
    cr_assert_eq(res->stats.round_trips, round_trips, "round trips %zu", res->stats.round_trips);
}

/* Transaction i (from 1) ended with outcome at step, decided by the reply given (code 0: none). */
static void assert_rcpt(const struct feed *f, size_t i, enum smtp_outcome outcome,
                        enum smtp_state step, int code, const char *enhanced, const char *text)
{
    const struct smtp_rcpt *r = &f->r[i - 1];

    cr_assert_eq(r->outcome, outcome, "transaction %zu: outcome %d, want %d", i, r->outcome,
                 outcome);
    cr_assert_eq(r->step, step, "transaction %zu: step %s, want %s", i, smtp_state_name(r->step),
                 smtp_state_name(step));
    cr_assert_eq(r->reply.code, code, "transaction %zu: reply %d", i, r->reply.code);
    cr_assert_str_eq(r->reply.enhanced, enhanced, "transaction %zu", i);
    cr_assert_str_eq(r->reply.text, text, "transaction %zu", i);
    cr_assert_not(f->t[i - 1].untried, "transaction %zu was tried", i);
}

#define N_TURNS(a) (sizeof(a) / sizeof((a)[0]))

/* A message with lines that need dot-stuffing: one starting with ".", one that is ".". */
static const char dotted[] = "Subject: news\r\n"
                             "\r\n"
                             "Hello\r\n"
                             ".a line that starts with a dot\r\n"
                             ".\r\n"
                             "Bye\r\n";

/* A message with 8-bit content (BODY=8BITMIME, RFC 6152). */
static const char utf8[] = "Subject: greetings\r\n"
                           "Content-Type: text/plain; charset=UTF-8\r\n"
                           "Content-Transfer-Encoding: 8bit\r\n"
                           "\r\n"
                           "Grüße aus Köln\r\n";

#define GREETING "220 fake.example ESMTP\r\n"

/* ---- lock-step (no PIPELINING) ---------------------------------------------------------- */

/*
 * The server offers SIZE, 8BITMIME and SMTPUTF8 but not PIPELINING: one command
 * a write, one wait each. MAIL carries SIZE (offered), and SMTPUTF8 and
 * BODY=8BITMIME only for the transaction that needs them. A transaction refused
 * at its only RCPT sends no DATA, and being the last, no RSET either: QUIT
 * follows.
 */
Test(transcript, lockstep_delivered_then_refused_at_rcpt, .timeout = 20)
{
    static const struct turn turns[] = {
        {NULL, GREETING},
        {"EHLO client.example\r\n", "250-fake.example\r\n"
                                    "250-SIZE 10240000\r\n"
                                    "250-8BITMIME\r\n"
                                    "250-SMTPUTF8\r\n"
                                    "250 ENHANCEDSTATUSCODES\r\n"},
        {"MAIL FROM:<news@acme.example> SIZE=64\r\n", "250 2.1.0 Ok\r\n"},
        {"RCPT TO:<ann@example.com>\r\n", "250 2.1.5 Ok\r\n"},
        {"DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {"Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         "..a line that starts with a dot\r\n"
         "..\r\n"
         "Bye\r\n"
         ".\r\n",
         "250 2.0.0 Ok: queued as ABC\r\n"},
        {"MAIL FROM:<news@acme.example> SIZE=115 SMTPUTF8 BODY=8BITMIME\r\n", "250 2.1.0 Ok\r\n"},
        {"RCPT TO:<jörg@example.com>\r\n",
         "550 5.1.1 <jörg@example.com>: Recipient address rejected: User unknown\r\n"},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n"},
    };
    struct fake fk;
    struct feed f = {0};
    struct result res;

    add_txn(&f, "ann@example.com", dotted, false, false);
    add_txn(&f, "jörg@example.com", utf8, true, true);
    run(&fk, turns, N_TURNS(turns), &f, false, &res);
    assert_played(&fk);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    /* MAIL, RCPT, DATA, the body; MAIL, RCPT: each its own write and wait */
    assert_stats(&res, 1, 6, 6);
    cr_assert_str_eq(f.events, "S1 D1 D2");
    assert_rcpt(&f, 1, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as ABC");
    cr_assert_str_eq(f.t[0].queue_id, "ABC");
    assert_rcpt(&f, 2, SMTP_OUTCOME_FAILED, SMTP_RCPT, 550, "5.1.1",
                "<jörg@example.com>: Recipient address rejected: User unknown");
    cr_assert_str_eq(f.t[1].queue_id, "");
    buf_free(&fk.received);
}

/* A refused transaction leaves the server's half open: RSET goes before the next MAIL. */
Test(transcript, lockstep_refused_at_rcpt_then_rset_and_delivered, .timeout = 20)
{
    static const struct turn turns[] = {
        {NULL, GREETING},
        {"EHLO client.example\r\n", "250-fake.example\r\n"
                                    "250-SIZE 10240000\r\n"
                                    "250-8BITMIME\r\n"
                                    "250-SMTPUTF8\r\n"
                                    "250 ENHANCEDSTATUSCODES\r\n"},
        {"MAIL FROM:<news@acme.example> SIZE=64\r\n", "250 2.1.0 Ok\r\n"},
        {"RCPT TO:<nobody@example.com>\r\n",
         "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"},
        {"RSET\r\n", "250 2.0.0 Ok\r\n"},
        {"MAIL FROM:<news@acme.example> SIZE=115 SMTPUTF8 BODY=8BITMIME\r\n", "250 2.1.0 Ok\r\n"},
        {"RCPT TO:<jörg@example.com>\r\n", "250 2.1.5 Ok\r\n"},
        {"DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {"Subject: greetings\r\n"
         "Content-Type: text/plain; charset=UTF-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n"
         "\r\n"
         "Grüße aus Köln\r\n"
         ".\r\n",
         "250 2.0.0 Ok: queued as ABC\r\n"},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n"},
    };
    struct fake fk;
    struct feed f = {0};
    struct result res;

    add_txn(&f, "nobody@example.com", dotted, false, false);
    add_txn(&f, "jörg@example.com", utf8, true, true);
    run(&fk, turns, N_TURNS(turns), &f, false, &res);
    assert_played(&fk);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    /* MAIL, RCPT; RSET; MAIL, RCPT, DATA, the body */
    assert_stats(&res, 1, 7, 7);
    cr_assert_str_eq(f.events, "D1 S2 D2");
    assert_rcpt(&f, 1, SMTP_OUTCOME_FAILED, SMTP_RCPT, 550, "5.1.1",
                "<nobody@example.com>: Recipient address rejected: User unknown");
    cr_assert_str_eq(f.t[0].queue_id, "");
    assert_rcpt(&f, 2, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as ABC");
    cr_assert_str_eq(f.t[1].queue_id, "ABC");
    buf_free(&fk.received);
}

/* ---- pipelined (RFC 2920) ------------------------------------------------------------- */

/*
 * Three transactions, one round trip each: the first write is transaction 1's
 * envelope; each later one a message's body and end of data with the next
 * transaction's MAIL, RCPT and DATA; the last the third body alone. The server
 * offers neither SIZE nor 8BITMIME: MAIL has no parameter, not even for the
 * transaction whose body is 8-bit, which the engine sends as it is (RFC 6152 §3
 * would have it converted or returned; pinned here as the engine does it now).
 */
Test(transcript, pipelined_three_transactions_one_round_trip_each, .timeout = 20)
{
    static const struct turn turns[] = {
        {NULL, GREETING},
        {"EHLO client.example\r\n", "250-fake.example\r\n"
                                    "250-PIPELINING\r\n"
                                    "250 ENHANCEDSTATUSCODES\r\n"},
        {"MAIL FROM:<news@acme.example>\r\n"
         "RCPT TO:<ann@example.com>\r\n"
         "DATA\r\n",
         "250 2.1.0 Ok\r\n"
         "250 2.1.5 Ok\r\n"
         "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {"Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         "..a line that starts with a dot\r\n"
         "..\r\n"
         "Bye\r\n"
         ".\r\n"
         "MAIL FROM:<news@acme.example>\r\n"
         "RCPT TO:<bob@example.com>\r\n"
         "DATA\r\n",
         "250 2.0.0 Ok: queued as AAA\r\n"
         "250 2.1.0 Ok\r\n"
         "250 2.1.5 Ok\r\n"
         "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {"Subject: greetings\r\n"
         "Content-Type: text/plain; charset=UTF-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n"
         "\r\n"
         "Grüße aus Köln\r\n"
         ".\r\n"
         "MAIL FROM:<news@acme.example>\r\n"
         "RCPT TO:<cy@example.com>\r\n"
         "DATA\r\n",
         "250 2.0.0 Ok: queued as BBB\r\n"
         "250 2.1.0 Ok\r\n"
         "250 2.1.5 Ok\r\n"
         "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {"Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         "..a line that starts with a dot\r\n"
         "..\r\n"
         "Bye\r\n"
         ".\r\n",
         "250 2.0.0 Ok: queued as CCC\r\n"},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n"},
    };
    struct fake fk;
    struct feed f = {0};
    struct result res;

    add_txn(&f, "ann@example.com", dotted, false, false);
    add_txn(&f, "bob@example.com", utf8, false, true);
    add_txn(&f, "cy@example.com", dotted, false, false);
    run(&fk, turns, N_TURNS(turns), &f, false, &res);
    assert_played(&fk);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    assert_stats(&res, 3, 4, 4);
    /* all three are taken (and announced) before the first envelope goes */
    cr_assert_str_eq(f.events, "L1 L2 L3 S1 D1 S2 D2 S3 D3");
    assert_rcpt(&f, 1, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as AAA");
    assert_rcpt(&f, 2, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as BBB");
    assert_rcpt(&f, 3, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as CCC");
    cr_assert_str_eq(f.t[0].queue_id, "AAA");
    cr_assert_str_eq(f.t[1].queue_id, "BBB");
    cr_assert_str_eq(f.t[2].queue_id, "CCC");
    buf_free(&fk.received);
}

/*
 * A 421 to transaction 2's RCPT, in the group that carried transaction 1's end
 * of data: the server is closing (RFC 5321 §3.8). Transaction 1's end of data was
 * answered first, so its 250 stands; transaction 2 is deferred with the 421;
 * transaction 3, taken ahead but never written, goes back untried. The session
 * is dead: nothing more is written, not even the QUIT the caller asks for.
 */
Test(transcript, pipelined_421_mid_group_ends_the_session, .timeout = 20)
{
    static const struct turn turns[] = {
        {NULL, GREETING},
        {"EHLO client.example\r\n", "250-fake.example\r\n"
                                    "250-PIPELINING\r\n"
                                    "250 ENHANCEDSTATUSCODES\r\n"},
        {"MAIL FROM:<news@acme.example>\r\n"
         "RCPT TO:<ann@example.com>\r\n"
         "DATA\r\n",
         "250 2.1.0 Ok\r\n"
         "250 2.1.5 Ok\r\n"
         "354 End data with <CR><LF>.<CR><LF>\r\n"},
        {"Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         "..a line that starts with a dot\r\n"
         "..\r\n"
         "Bye\r\n"
         ".\r\n"
         "MAIL FROM:<news@acme.example>\r\n"
         "RCPT TO:<bob@example.com>\r\n"
         "DATA\r\n",
         "250 2.0.0 Ok: queued as ABC\r\n"
         "250 2.1.0 Ok\r\n"
         "421 4.3.2 Service shutting down, closing transmission channel\r\n"},
        /* the server answers nothing more; the client must write nothing more */
    };
    struct fake fk;
    struct feed f = {0};
    struct result res;

    add_txn(&f, "ann@example.com", dotted, false, false);
    add_txn(&f, "bob@example.com", dotted, false, false);
    add_txn(&f, "cy@example.com", dotted, false, false);
    run(&fk, turns, N_TURNS(turns), &f, false, &res);
    assert_played(&fk);
    cr_assert_eq(res.run_rc, BLAST_ECLOSED, "%s", res.error);
    cr_assert_str_eq(res.error, "the server closed the session: 421 4.3.2 Service shutting down, "
                                "closing transmission channel");
    cr_assert_not(res.out_of_step, "a 421 is a close, not a reply out of step");
    assert_stats(&res, 1, 2, 2);
    cr_assert_str_eq(f.events, "L1 L2 L3 S1 D1 D2 D3");
    assert_rcpt(&f, 1, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as ABC");
    cr_assert_str_eq(f.t[0].queue_id, "ABC");
    assert_rcpt(&f, 2, SMTP_OUTCOME_DEFERRED, SMTP_RCPT, 421, "4.3.2",
                "Service shutting down, closing transmission channel");
    cr_assert_str_eq(f.r[1].detail, "");
    /*
     * Its step is whatever state the session was in, which nobody reads: the
     * pool puts an untried transaction back as it was.
     */
    cr_assert_eq(f.r[2].outcome, SMTP_OUTCOME_DEFERRED);
    cr_assert(f.t[2].untried);
    cr_assert_eq(f.r[2].reply.code, 0);
    cr_assert_str_eq(f.r[2].detail, "not attempted: the session ended");
    buf_free(&fk.received);
}

/* ---- BDAT (RFC 3030) ------------------------------------------------------------------ */

/*
 * With CHUNKING and options.chunking, the whole batch goes in one write: each
 * transaction starts with RSET, and its message follows BDAT <size> LAST as it
 * is, not dot-stuffed, with nothing after it. Transaction 2's only RCPT is
 * refused, so the server refuses its BDAT too; that reply decides nothing, and
 * transaction 3 is delivered.
 */
Test(transcript, bdat_batch_of_three_with_a_refused_recipient, .timeout = 20)
{
    static const struct turn turns[] = {
        {NULL, GREETING},
        {"EHLO client.example\r\n", "250-fake.example\r\n"
                                    "250-PIPELINING\r\n"
                                    "250-SIZE 10240000\r\n"
                                    "250-CHUNKING\r\n"
                                    "250 ENHANCEDSTATUSCODES\r\n"},
        {"RSET\r\n"
         "MAIL FROM:<news@acme.example> SIZE=64\r\n"
         "RCPT TO:<ann@example.com>\r\n"
         "BDAT 64 LAST\r\n"
         "Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         ".a line that starts with a dot\r\n"
         ".\r\n"
         "Bye\r\n"
         "RSET\r\n"
         "MAIL FROM:<news@acme.example> SIZE=64\r\n"
         "RCPT TO:<bob@example.com>\r\n"
         "BDAT 64 LAST\r\n"
         "Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         ".a line that starts with a dot\r\n"
         ".\r\n"
         "Bye\r\n"
         "RSET\r\n"
         "MAIL FROM:<news@acme.example> SIZE=64\r\n"
         "RCPT TO:<cy@example.com>\r\n"
         "BDAT 64 LAST\r\n"
         "Subject: news\r\n"
         "\r\n"
         "Hello\r\n"
         ".a line that starts with a dot\r\n"
         ".\r\n"
         "Bye\r\n",
         "250 2.0.0 Ok\r\n"
         "250 2.1.0 Ok\r\n"
         "250 2.1.5 Ok\r\n"
         "250 2.0.0 Ok: queued as AAA\r\n"
         "250 2.0.0 Ok\r\n"
         "250 2.1.0 Ok\r\n"
         "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown\r\n"
         "554 5.5.1 Error: no valid recipients\r\n"
         "250 2.0.0 Ok\r\n"
         "250 2.1.0 Ok\r\n"
         "250 2.1.5 Ok\r\n"
         "250 2.0.0 Ok: queued as CCC\r\n"},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n"},
    };
    struct fake fk;
    struct feed f = {0};
    struct result res;

    add_txn(&f, "ann@example.com", dotted, false, false);
    add_txn(&f, "bob@example.com", dotted, false, false);
    add_txn(&f, "cy@example.com", dotted, false, false);
    run(&fk, turns, N_TURNS(turns), &f, true, &res);
    assert_played(&fk);
    cr_assert_eq(res.run_rc, 0, "%s", res.error);
    /* the refused transaction's BDAT LAST went too: it counts as a message sent */
    assert_stats(&res, 3, 1, 1);
    /* nothing is taken ahead (no `leaving`); every end is recorded before the batch goes */
    cr_assert_str_eq(f.events, "S1 S2 S3 D1 D2 D3");
    assert_rcpt(&f, 1, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as AAA");
    cr_assert_str_eq(f.t[0].queue_id, "AAA");
    assert_rcpt(&f, 2, SMTP_OUTCOME_FAILED, SMTP_RCPT, 550, "5.1.1",
                "<bob@example.com>: Recipient address rejected: User unknown");
    cr_assert_str_eq(f.t[1].queue_id, "");
    assert_rcpt(&f, 3, SMTP_OUTCOME_DELIVERED, SMTP_END_OF_DATA, 250, "2.0.0", "Ok: queued as CCC");
    cr_assert_str_eq(f.t[2].queue_id, "CCC");
    buf_free(&fk.received);
}
