/*
 * fuzz_session - a whole SMTP client session against fuzzed server bytes.
 *
 * The first byte chooses the client's options; the rest is everything the server
 * says, in turns separated by NUL bytes (a NUL is never valid in a reply). A
 * server thread on the other end of a Unix socketpair sends the first turn (the
 * greeting) at once, and each next one when the client has written something, or
 * is asleep waiting for more than the turn gave (client_asleep); after the last
 * turn it shuts its writing side, so the client reads the end of the stream and
 * never waits long. A server that answers before it is asked, or more
 * than it was asked, is one turn with too much in it. Options byte:
 *   bit 0      AUTH with a username and password (tls none on a Unix socket is loopback)
 *   bits 1-3   the AUTH mechanism asked for (auto, plain, login, cram-md5, xoauth2)
 *   bit 4      chunking (BDAT) where offered
 *   bit 5      DSN parameters and an ENVID
 *   bits 6-7   1 to 4 transactions, the second with two recipients and UTF-8 addresses
 * Whether the session pipelines is the server's to say (PIPELINING in its EHLO).
 *
 * Checks: the feed's done is called once for every transaction next gave, every
 * recipient of those has an outcome when the session ends, and one is delivered
 * only by a 2yz that the session took for the reply to its end of data.
 *
 * FUZZ_TRACE=1 in the environment prints the session's transcript and outcomes, to
 * see what an input does: build/replay/fuzz-session FILE.
 */
#include "../../core/conn.h"
#include "../../core/smtp.h"
#include "fuzz.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TXNS 4
/* The server's side: its turns, sent one at a time as the client writes or waits. */
struct server {
    int fd;
    pid_t client; /* the thread that runs the session */
    const uint8_t *data;
    size_t size;
};

/*
 * Is the client thread asleep? In this harness it sleeps only in poll(), waiting
 * for the server (for bytes to read, or for room to write, when the server has
 * bytes of it to read too), so asleep with nothing of it to read means it waits
 * for the next turn: a state read from /proc, not a guess from a timer.
 */
static bool client_asleep(pid_t tid)
{
    char path[64], stat[512];
    const char *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return false;
    stat[n] = '\0';
    p = strrchr(stat, ')');
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

/* Wait until the client writes (true: its bytes were read) or waits for the server. */
static bool client_turn(const struct server *sv, bool *eof)
{
    char sink[4096];
    long spins;

    for (spins = 0; spins < 200000; spins++) {
        ssize_t n = recv(sv->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0) {
            *eof = true;
            return false;
        }
        if (n > 0) {
            /* the rest of that write, if it came in pieces */
            while (recv(sv->fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
                ;
            return true;
        }
        if (client_asleep(sv->client) && recv(sv->fd, sink, 1, MSG_DONTWAIT | MSG_PEEK) < 0)
            return false;
        sched_yield();
    }
    return false;
}

static void *server_run(void *arg)
{
    struct server *sv = arg;
    const uint8_t *p = sv->data, *end = sv->data + sv->size;
    char sink[4096];
    bool eof = false;

    for (;;) {
        const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
        const uint8_t *stop = nul != NULL ? nul : end;

        while (p < stop) {
            ssize_t n = send(sv->fd, p, (size_t)(stop - p), MSG_NOSIGNAL);
            if (n <= 0)
                goto out;
            p += n;
        }
        if (nul == NULL)
            break;
        p = nul + 1;
        /* the next turn answers the client's next write, or its wait */
        client_turn(sv, &eof);
        if (eof)
            goto out;
    }
    shutdown(sv->fd, SHUT_WR);
    /* what the client still writes (QUIT) is read and dropped until it closes */
    for (int i = 0; i < 64; i++) {
        struct pollfd pf = {sv->fd, POLLIN, 0};
        if (poll(&pf, 1, 1000) != 1 || recv(sv->fd, sink, sizeof sink, 0) <= 0)
            break;
    }
out:
    close(sv->fd);
    return NULL;
}

struct feed {
    struct smtp_txn t[TXNS];
    struct smtp_rcpt r[TXNS][2];
    size_t n, given;
    int done[TXNS];
};

static struct smtp_txn *feed_next(void *arg)
{
    struct feed *f = arg;

    return f->given < f->n ? &f->t[f->given++] : NULL;
}

static void feed_done(void *arg, struct smtp_txn *t)
{
    struct feed *f = arg;
    size_t i = (size_t)(t - f->t);

    if (i >= f->given)
        fuzz_fail("done for a transaction never given");
    f->done[i]++;
}

static int feed_hook(void *arg, struct smtp_txn *t)
{
    (void)arg;
    (void)t;
    return 0;
}

static void trace_sink(void *arg, enum log_level level, const char *message)
{
    (void)arg;
    (void)level;
    fprintf(stderr, "%s\n", message);
}

static const struct log trace = {trace_sink, NULL, LOG_LEVEL_TRACE};
static bool tracing;

static void feed_init(struct feed *f, unsigned opts)
{
    static const char message[] = "Subject: test\r\n\r\nHello\r\n.leading dot\r\n";
    static const char utf8[] = "Subject: caf\xc3\xa9\r\n\r\ncaf\xc3\xa9\r\n";
    size_t i;

    memset(f, 0, sizeof *f);
    f->n = 1 + ((opts >> 6) & 3);
    for (i = 0; i < f->n; i++) {
        f->r[i][0].address = "ada@example.com";
        f->r[i][1].address = "j\xc3\xb6rg@b\xc3\xbc"
                             "cher.example";
        f->t[i].mail_from = "news@acme.example";
        f->t[i].rcpts = f->r[i];
        f->t[i].nrcpts = 1;
        f->t[i].data = message;
        f->t[i].len = sizeof message - 1;
        if (opts & 0x20)
            f->t[i].envid = "run+1=2";
    }
    if (f->n > 1) {
        f->t[1].nrcpts = 2;
        f->t[1].smtputf8 = true;
        f->t[1].eightbit = true;
        f->t[1].data = utf8;
        f->t[1].len = sizeof utf8 - 1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tracing = getenv("FUZZ_TRACE") != NULL;
    /* the client never writes to a closed socket here, but a finding should not be SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum smtp_auth_choice auths[8] = {
        SMTP_AUTH_CHOICE_AUTO,     SMTP_AUTH_CHOICE_PLAIN,   SMTP_AUTH_CHOICE_LOGIN,
        SMTP_AUTH_CHOICE_CRAM_MD5, SMTP_AUTH_CHOICE_XOAUTH2, SMTP_AUTH_CHOICE_AUTO,
        SMTP_AUTH_CHOICE_PLAIN,    SMTP_AUTH_CHOICE_LOGIN};
    struct smtp_feed hooks = {feed_next, feed_done, feed_hook, feed_hook, NULL};
    struct smtp_options o;
    struct smtp_session *s = NULL;
    struct conn *c = NULL;
    struct blast_error err;
    struct feed f;
    struct server server;
    pthread_t thread;
    unsigned opts;
    size_t i, k;
    int sv[2], rc;

    if (size < 1)
        return 0;
    opts = data[0];
    data++;
    size--;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    server.fd = sv[1];
    server.client = (pid_t)syscall(SYS_gettid);
    server.data = data;
    server.size = size;
    if (pthread_create(&thread, NULL, server_run, &server) != 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }

    blast_error_clear(&err);
    if (conn_adopt(sv[0], "localhost", &c, &err) < 0)
        fuzz_fail("conn_adopt: %s", err.text);
    memset(&o, 0, sizeof o);
    o.host = "localhost";
    o.port = 25;
    o.label = "fuzz";
    o.tls = SMTP_TLS_NONE;
    o.helo_name = "client.example";
    o.conn = c;
    if (opts & 1) {
        o.username = "user@acme.example";
        o.password = "not a secret";
        o.auth = auths[(opts >> 1) & 7];
    }
    o.chunking = (opts & 0x10) != 0;
    if (opts & 0x20) {
        o.dsn_notify = SMTP_DSN_FAILURE | SMTP_DSN_DELAY;
        o.dsn_ret = SMTP_DSN_RET_HDRS;
    }
    /* every byte is there already: no wait should ever come near these */
    o.timeouts.connect = o.timeouts.greeting = o.timeouts.ehlo = o.timeouts.starttls = 500;
    o.timeouts.auth = o.timeouts.mail = o.timeouts.rcpt = o.timeouts.data = 500;
    o.timeouts.block = o.timeouts.end_of_data = o.timeouts.rset = o.timeouts.quit = 500;
    if (tracing)
        o.log = &trace;
    feed_init(&f, opts);
    hooks.arg = &f;

    rc = smtp_session_open(&o, &s, &err);
    if (tracing)
        fprintf(stderr, "open: %d %s\n", rc, err.text);
    if (rc == 0) {
        blast_error_clear(&err);
        rc = smtp_session_run(s, &hooks, &err);
        if (tracing)
            fprintf(stderr, "run: %d %s (%zu transactions)\n", rc, err.text, f.given);
        for (i = 0; tracing && i < f.given; i++)
            for (k = 0; k < f.t[i].nrcpts; k++)
                fprintf(stderr, "  %zu.%zu: outcome %d, reply %d\n", i, k,
                        (int)f.t[i].rcpts[k].outcome, f.t[i].rcpts[k].reply.code);
        for (i = 0; i < f.given; i++) {
            if (f.done[i] != 1)
                fuzz_fail("transaction %zu: done called %d times", i, f.done[i]);
            for (k = 0; k < f.t[i].nrcpts; k++) {
                const struct smtp_rcpt *r = &f.t[i].rcpts[k];
                if (r->outcome == SMTP_OUTCOME_NONE)
                    fuzz_fail("transaction %zu, recipient %zu: no outcome", i, k);
                if (r->outcome == SMTP_OUTCOME_DELIVERED &&
                    (r->reply.code / 100 != 2 || r->step != SMTP_END_OF_DATA))
                    fuzz_fail("transaction %zu, recipient %zu: delivered by %d at %s", i, k,
                              r->reply.code, smtp_state_name(r->step));
            }
        }
        if (rc == 0)
            smtp_session_quit(s);
    }
    smtp_session_free(s);
    pthread_join(thread, NULL);
    return 0;
}
