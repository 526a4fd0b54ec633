/*
 * test_conn - TCP connections on loopback: refused and accepted connects, the
 * loopback check, reads and writes against a peer, and deadlines that hold
 * when the peer stays silent.
 */
#include "../../core/buf.h"
#include "../../core/conn.h"
#include "../../core/timeutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket on 127.0.0.1 with a kernel-chosen port. */
static int listen_loopback(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A loopback port with nothing listening (bound a moment ago, then released). */
static int closed_port(void)
{
    int port, fd = listen_loopback(&port);

    close(fd);
    return port;
}

static struct conn *open_ok(int port)
{
    struct conn *c = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(conn_open("127.0.0.1", port, timeutil_mono_ms() + 5000, &c, &err), 0, "%s",
                 err.text);
    cr_assert_not_null(c);
    return c;
}

Test(conn, closed_loopback_port_is_a_connect_error, .timeout = 20)
{
    struct conn *c = (struct conn *)0x1;
    struct blast_error err;
    int port = closed_port(), rc;

    blast_error_clear(&err);
    rc = conn_open("127.0.0.1", port, timeutil_mono_ms() + 5000, &c, &err);
    cr_assert_eq(rc, BLAST_ECONNECT, "rc %d: %s", rc, err.text);
    cr_assert_eq(err.code, BLAST_ECONNECT);
    cr_assert_null(c);
    cr_assert_not_null(strstr(err.text, "127.0.0.1"), "%s", err.text);
}

Test(conn, listening_loopback_socket_accepts, .timeout = 20)
{
    int port, lfd = listen_loopback(&port);
    struct conn *c = open_ok(port);
    char literal[64];

    cr_assert(conn_is_loopback(c));
    cr_assert_not(conn_is_tls(c));
    cr_assert_null(conn_tls_version(c));
    cr_assert_eq(conn_local_literal(c, literal, sizeof literal), 0);
    cr_assert_str_eq(literal, "[127.0.0.1]");
    conn_close(c);
    close(lfd);
}

Test(conn, bracketed_ipv6_loopback, .timeout = 20)
{
    struct sockaddr_in6 sa;
    socklen_t len = sizeof sa;
    struct conn *c = NULL;
    struct blast_error err;
    int fd = socket(AF_INET6, SOCK_STREAM, 0), rc;
    char literal[64];

    if (fd < 0) {
        cr_log_warn("no IPv6 here: %s", strerror(errno));
        return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        cr_log_warn("no IPv6 loopback here: %s", strerror(errno));
        close(fd);
        return;
    }
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    blast_error_clear(&err);
    rc = conn_open("[::1]", ntohs(sa.sin6_port), timeutil_mono_ms() + 5000, &c, &err);
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert(conn_is_loopback(c));
    cr_assert_eq(conn_local_literal(c, literal, sizeof literal), 0);
    cr_assert_str_eq(literal, "[IPv6:::1]");
    conn_close(c);
    close(fd);
}

Test(conn, read_from_a_silent_peer_times_out, .timeout = 20)
{
    int port, lfd = listen_loopback(&port);
    struct conn *c = open_ok(port);
    struct blast_error err;
    char buf[64];
    int64_t start = timeutil_mono_ms(), elapsed;
    ssize_t n;

    /* the kernel completes the handshake from the backlog: the peer never speaks */
    blast_error_clear(&err);
    n = conn_read(c, buf, sizeof buf, start + 300, &err);
    elapsed = timeutil_mono_ms() - start;
    cr_assert_eq(n, BLAST_ETIMEOUT, "n %zd: %s", n, err.text);
    cr_assert_eq(err.code, BLAST_ETIMEOUT);
    cr_assert_geq(elapsed, 280, "gave up after %lld ms", (long long)elapsed);
    cr_assert_lt(elapsed, 3000, "waited %lld ms", (long long)elapsed);
    conn_close(c);
    close(lfd);
}

Test(conn, past_deadline_times_out_at_once, .timeout = 20)
{
    int port, lfd = listen_loopback(&port);
    struct conn *c = open_ok(port);
    struct blast_error err;
    char buf[64];
    int64_t start = timeutil_mono_ms();

    blast_error_clear(&err);
    cr_assert_eq(conn_read(c, buf, sizeof buf, start - 1, &err), BLAST_ETIMEOUT);
    cr_assert_lt(timeutil_mono_ms() - start, 1000);
    conn_close(c);
    close(lfd);
}

Test(conn, write_and_read_reach_the_peer, .timeout = 20)
{
    int port, lfd = listen_loopback(&port), pfd;
    struct conn *c = open_ok(port);
    struct blast_error err;
    struct buf in = BUF_INIT;
    char buf[64];
    ssize_t n;

    pfd = accept(lfd, NULL, NULL);
    cr_assert_geq(pfd, 0);
    blast_error_clear(&err);
    cr_assert_eq(conn_write_reading(c, "EHLO x\r\n", 8, 5000, &in, NULL, &err), 0, "%s", err.text);
    n = recv(pfd, buf, sizeof buf, 0);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(buf, "EHLO x\r\n", 8), 0);

    cr_assert_eq(send(pfd, "250 ok\r\n", 8, 0), 8);
    n = conn_read(c, buf, sizeof buf, timeutil_mono_ms() + 5000, &err);
    cr_assert_eq(n, 8, "%s", err.text);
    cr_assert_eq(memcmp(buf, "250 ok\r\n", 8), 0);
    buf_free(&in);

    close(pfd);
    n = conn_read(c, buf, sizeof buf, timeutil_mono_ms() + 5000, &err);
    cr_assert_eq(n, BLAST_ECLOSED, "end of stream: n %zd", n);
    conn_close(c);
    close(lfd);
}

Test(conn, close_accepts_null)
{
    conn_close(NULL);
    conn_tls_free(NULL);
}

Test(conn, tls_context_with_a_missing_ca_file_fails)
{
    struct conn_tls_options o = {true, "../fixtures/no-such-ca.pem"};
    struct conn_tls *t = (struct conn_tls *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(conn_tls_new(&o, &t, &err), BLAST_ETLS);
    cr_assert_null(t);
    cr_assert_str_not_empty(err.text);
}

Test(conn, tls_context_without_verification)
{
    struct conn_tls_options o = {false, NULL};
    struct conn_tls *t = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(conn_tls_new(&o, &t, &err), 0, "%s", err.text);
    cr_assert_not_null(t);
    conn_tls_free(t);
}

Test(conn, adopted_socketpair_reads_writes_and_is_local, .timeout = 20)
{
    struct blast_error err;
    struct conn *c = NULL;
    struct buf in = BUF_INIT;
    char got[16];
    int sv[2];
    ssize_t n;

    blast_error_clear(&err);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(conn_adopt(sv[0], "relay.example", &c, &err), 0, "%s", err.text);
    cr_assert(conn_is_loopback(c), "a Unix domain peer is on this machine");
    cr_assert_not(conn_is_tls(c));
    cr_assert_eq(conn_write_reading(c, "EHLO x\r\n", 8, 1000, &in, NULL, &err), 0, "%s", err.text);
    cr_assert_eq(read(sv[1], got, sizeof got), 8);
    cr_assert_eq(write(sv[1], "250 ok\r\n", 8), 8);
    n = conn_read(c, got, sizeof got, timeutil_mono_ms() + 1000, &err);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(got, "250 ok\r\n", 8), 0);
    close(sv[1]);
    n = conn_read(c, got, sizeof got, timeutil_mono_ms() + 1000, &err);
    cr_assert_eq(n, BLAST_ECLOSED);
    conn_close(c);
    buf_free(&in);
}

Test(conn, adopting_what_is_not_a_socket_fails_and_closes_it)
{
    struct blast_error err;
    struct conn *c = (struct conn *)1;
    int p[2];

    blast_error_clear(&err);
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(conn_adopt(p[0], "x", &c, &err), BLAST_EIO);
    cr_assert_null(c);
    cr_assert_str_not_empty(err.text);
    errno = 0;
    cr_assert_eq(close(p[0]), -1, "the fd was closed by conn_adopt");
    cr_assert_eq(errno, EBADF);
    close(p[1]);
}
