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
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
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

/* By name, before anything is resolved: only what cannot leave the machine. */
Test(conn, loopback_host_names)
{
    static const char *const yes[] = {"localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"};
    static const char *const no[] = {"127.0.0.1.example",
                                     "localhost.example",
                                     "10.0.0.1",
                                     "128.0.0.1",
                                     "::2",
                                     "[::2]",
                                     "0.0.0.0",
                                     "",
                                     "relay.example"};
    size_t i;

    for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
        cr_assert(conn_host_is_loopback(yes[i]), "%s", yes[i]);
    for (i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_assert_not(conn_host_is_loopback(no[i]), "%s", no[i]);
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

/* ---- what a failed TLS write may have sent --------------------------------------------- */

/* A TLS server context with a throwaway self-signed certificate made now. */
static SSL_CTX *throwaway_server_ctx(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    cr_assert(key != NULL && x != NULL && ctx != NULL);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"throwaway.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    cr_assert_eq(SSL_CTX_use_certificate(ctx, x), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

struct slow_tls {
    SSL_CTX *ctx;
    int fd;
    size_t stop_after; /* plaintext bytes to read before closing */
    size_t got;
};

/* Accept TLS, read stop_after bytes of plaintext a little at a time, then close. */
static void *slow_tls_run(void *arg)
{
    struct slow_tls *st = arg;
    SSL *ssl = SSL_new(st->ctx);
    char chunk[512];

    SSL_set_fd(ssl, st->fd);
    if (SSL_accept(ssl) == 1) {
        while (st->got < st->stop_after) {
            size_t n = 0;
            if (SSL_read_ex(ssl, chunk, sizeof chunk, &n) != 1)
                break;
            st->got += n;
            usleep(200); /* a slow reader on purpose, so the client's write fills the socket */
        }
    }
    SSL_free(ssl);
    close(st->fd);
    return NULL;
}

/*
 * The server reads 100 KB of a 1 MB TLS write and goes: whatever it read may have
 * reached the kernel, so *sent must count at least that much. SSL_write writes
 * whole records it does not report when it asks to be retried; counting only
 * what it confirmed said less than the server had.
 */
Test(conn, failed_tls_write_counts_every_byte_the_server_could_have, .timeout = 30)
{
    struct slow_tls st = {throwaway_server_ctx(), -1, 100 * 1024, 0};
    struct conn_tls_options o = {false, NULL};
    struct conn_tls *t = NULL;
    struct conn *c = NULL;
    struct blast_error err;
    struct buf in = BUF_INIT;
    pthread_t th;
    size_t len = 1024 * 1024, sent = 0;
    char *data = malloc(len);
    int sv[2], small = 4096, rc;

    cr_assert_not_null(data);
    memset(data, 'x', len);
    blast_error_clear(&err);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    st.fd = sv[1];
    cr_assert_eq(pthread_create(&th, NULL, slow_tls_run, &st), 0);
    cr_assert_eq(conn_tls_new(&o, &t, &err), 0, "%s", err.text);
    cr_assert_eq(conn_adopt(sv[0], "throwaway.test", &c, &err), 0, "%s", err.text);
    cr_assert_eq(conn_start_tls(c, t, timeutil_mono_ms() + 10000, &err), 0, "%s", err.text);
    rc = conn_write_reading(c, data, len, 10000, &in, &sent, &err);
    pthread_join(th, NULL);
    cr_assert_lt(rc, 0, "the server went away in the middle");
    cr_assert_geq(st.got, st.stop_after);
    cr_assert_geq(sent, st.got, "*sent %zu, but the server read %zu", sent, st.got);
    cr_assert_lt(sent, len, "the end of the buffer never left");
    conn_close(c);
    conn_tls_free(t);
    SSL_CTX_free(st.ctx);
    buf_free(&in);
    free(data);
}
