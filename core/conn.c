/*
 * conn - TCP and TLS client connections with deadlines. See conn.h.
 *
 * The socket is non-blocking from the start; every wait is a poll() bounded by
 * the time left until the deadline. OpenSSL runs over the same non-blocking
 * socket, so SSL_ERROR_WANT_READ / WANT_WRITE map onto the same poll.
 */
#include "conn.h"
#include "buf.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn_tls {
    SSL_CTX *ctx;
    bool verify;
    unsigned char pin[32];
    bool has_pin;
};

struct conn {
    int fd;
    int cancel_fd; /* readable: give up waiting (conn_set_cancel); -1 for none */
    char *host;
    SSL *ssl;
    struct sockaddr_storage peer;
    socklen_t peerlen;
};

static int tls_fail(struct blast_error *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char detail[256] = "";

    if (e != 0)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    return blast_error_set(err, BLAST_ETLS, NULL, 0, 0, "%s%s%s", what, detail[0] ? ": " : "",
                           detail);
}

int conn_tls_new(const struct conn_tls_options *o, struct conn_tls **out, struct blast_error *err)
{
    struct conn_tls *t;
    int rc = 0;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    t->verify = o->verify;
    if (o->pin_sha256 != NULL) {
        size_t n = 0;
        const char *p;
        for (p = o->pin_sha256; *p != '\0' && n < 64; p++) {
            int v = *p >= '0' && *p <= '9'   ? *p - '0'
                    : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                    : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                             : -1;
            if (*p == ':')
                continue;
            if (v < 0)
                break;
            t->pin[n / 2] = (unsigned char)(n % 2 == 0 ? v << 4 : t->pin[n / 2] | v);
            n++;
        }
        if (n != 64 || *p != '\0') {
            rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                 "the certificate pin must be 64 hexadecimal digits");
            goto out;
        }
        t->has_pin = true;
    }
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (t->ctx == NULL) {
        rc = tls_fail(err, "cannot create a TLS context");
        goto out;
    }
    /* RFC 8996 deprecates TLS 1.0 and 1.1 */
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->verify) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        if (o->ca_file != NULL) {
            if (SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1) {
                rc = tls_fail(err, "cannot load the CA file");
                goto out;
            }
        } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
            rc = tls_fail(err, "cannot load the system certificate store");
            goto out;
        }
    } else {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    }
    *out = t;
    t = NULL;
out:
    conn_tls_free(t);
    return rc;
}

void conn_tls_free(struct conn_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

static int remaining(int64_t deadline)
{
    int64_t left = deadline - timeutil_mono_ms();

    if (left <= 0)
        return 0;
    return left > 60000 ? 60000 : (int)left;
}

/*
 * Wait for events on fd until the deadline, or until cancel_fd (when >= 0)
 * becomes readable. 1 ready, 0 timed out, <0 error (errno ECANCELED: cancelled).
 */
static int wait_fd(int fd, short events, int64_t deadline, int cancel_fd)
{
    struct pollfd p[2];
    int n, ms;

    for (;;) {
        ms = remaining(deadline);
        if (ms == 0)
            return 0;
        p[0].fd = fd;
        p[0].events = events;
        p[0].revents = 0;
        p[1].fd = cancel_fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        n = poll(p, cancel_fd >= 0 ? 2 : 1, ms);
        if (n > 0 && p[1].revents != 0 && cancel_fd >= 0) {
            errno = ECANCELED;
            return -1;
        }
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int cancel_fd, int *fdout,
                       int *soerr)
{
    int fd, one = 1, r;
    socklen_t len = sizeof *soerr;

    *soerr = 0;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *soerr = errno;
        return -1;
    }
    /* we batch our own writes (pipelining); Nagle would only add latency */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            *soerr = errno;
            close(fd);
            return -1;
        }
        r = wait_fd(fd, POLLOUT, deadline, cancel_fd);
        if (r <= 0) {
            *soerr = r == 0 ? ETIMEDOUT : errno;
            close(fd);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, soerr, &len) < 0 || *soerr != 0) {
            if (*soerr == 0)
                *soerr = errno;
            close(fd);
            return -1;
        }
    }
    *fdout = fd;
    return 0;
}

int conn_open(const char *host, int port, int64_t deadline, struct conn **out,
              struct blast_error *err)
{
    return conn_open_cancel(host, port, deadline, -1, out, err);
}

int conn_open_cancel(const char *host, int port, int64_t deadline, int cancel_fd, struct conn **out,
                     struct blast_error *err)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16], bare[256];
    struct conn *c = NULL;
    int gai, fd = -1, soerr = 0, rc;
    size_t n = strlen(host);

    *out = NULL;
    /* accept "[::1]" as written in URLs */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof bare) {
        memcpy(bare, host + 1, n - 2);
        bare[n - 2] = '\0';
    } else {
        snprintf(bare, sizeof bare, "%s", host);
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%d", port);
    gai = getaddrinfo(bare, portstr, &hints, &res);
    if (gai != 0)
        return blast_error_set(err, BLAST_ECONNECT, NULL, 0, 0, "cannot resolve %s: %s", host,
                               gai_strerror(gai));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (connect_one(ai, deadline, cancel_fd, &fd, &soerr) == 0)
            break;
        if ((soerr == ETIMEDOUT && remaining(deadline) == 0) || soerr == ECANCELED)
            break;
    }
    if (fd < 0) {
        rc = blast_error_set(err, soerr == ETIMEDOUT ? BLAST_ETIMEOUT : BLAST_ECONNECT, NULL, 0, 0,
                             "cannot connect to %s port %d: %s", host, port, strerror(soerr));
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->host = strdup(bare)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        close(fd);
        goto out;
    }
    c->fd = fd;
    c->cancel_fd = cancel_fd;
    memcpy(&c->peer, ai->ai_addr, ai->ai_addrlen);
    c->peerlen = ai->ai_addrlen;
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (c != NULL) {
        free(c->host);
        free(c);
    }
    freeaddrinfo(res);
    return rc;
}

int conn_adopt(int fd, const char *host, struct conn **out, struct blast_error *err)
{
    struct conn *c;
    int flags;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->host = strdup(host)) == NULL) {
        free(c);
        close(fd);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    c->fd = fd;
    c->cancel_fd = -1;
    c->peerlen = sizeof c->peer;
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peerlen) < 0 ||
        (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int e = errno;
        conn_close(c);
        return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "cannot use the socket: %s",
                               strerror(e));
    }
    *out = c;
    return 0;
}

void conn_close(struct conn *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        /* best effort close_notify; the socket is non-blocking so this cannot hang */
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->host);
    free(c);
}

static bool is_ip_literal(const char *host)
{
    unsigned char bin[16];

    return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

/*
 * Drive an OpenSSL call that may want to read or write: wait for what it wants.
 * Returns 1 to retry, 0 when the deadline passed, <0 on a hard error.
 */
static int tls_wait(struct conn *c, int sslerr, int64_t deadline)
{
    int r;

    if (sslerr == SSL_ERROR_WANT_READ)
        r = wait_fd(c->fd, POLLIN, deadline, c->cancel_fd);
    else if (sslerr == SSL_ERROR_WANT_WRITE)
        r = wait_fd(c->fd, POLLOUT, deadline, c->cancel_fd);
    else
        return -1;
    return r;
}

/* The SHA-256 of the certificate's SubjectPublicKeyInfo must be the pinned one. */
static int check_pin(struct conn *c, const struct conn_tls *t, struct blast_error *err)
{
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    unsigned char *der = NULL, digest[32];
    unsigned int dlen = 0;
    int n, ok;

    if (cert == NULL)
        return blast_error_set(err, BLAST_ETLS, NULL, 0, 0, "the server sent no certificate");
    n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
    ok = n > 0 && EVP_Digest(der, (size_t)n, digest, &dlen, EVP_sha256(), NULL) == 1 &&
         dlen == sizeof digest && CRYPTO_memcmp(digest, t->pin, sizeof digest) == 0;
    OPENSSL_free(der);
    X509_free(cert);
    if (!ok)
        return blast_error_set(err, BLAST_ETLS, NULL, 0, 0,
                               "the certificate of %s does not match the pinned public key "
                               "(pin_sha256)",
                               c->host);
    return 0;
}

int conn_start_tls(struct conn *c, struct conn_tls *t, int64_t deadline, struct blast_error *err)
{
    int r, e;

    if (c->ssl != NULL)
        return blast_error_set(err, BLAST_EPROTO, NULL, 0, 0, "TLS is already active");
    c->ssl = SSL_new(t->ctx);
    if (c->ssl == NULL)
        return tls_fail(err, "cannot create a TLS session");
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        return tls_fail(err, "cannot attach TLS to the socket");
    if (is_ip_literal(c->host)) {
        /* no SNI for addresses (RFC 6066 §3); verify the IP address SAN instead */
        if (t->verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) != 1)
            return tls_fail(err, "cannot set the address to verify");
    } else {
        if (SSL_set_tlsext_host_name(c->ssl, c->host) != 1)
            return tls_fail(err, "cannot set the server name");
        if (t->verify && SSL_set1_host(c->ssl, c->host) != 1)
            return tls_fail(err, "cannot set the host name to verify");
    }
    for (;;) {
        ERR_clear_error();
        r = SSL_connect(c->ssl);
        if (r == 1)
            return t->has_pin ? check_pin(c, t, err) : 0;
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            r = tls_wait(c, e, deadline);
            if (r == 0)
                return blast_error_set(err, BLAST_ETIMEOUT, NULL, 0, 0,
                                       "timed out in the TLS handshake");
            if (r < 0)
                return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "poll: %s", strerror(errno));
            continue;
        }
        break;
    }
    {
        long v = SSL_get_verify_result(c->ssl);
        if (t->verify && v != X509_V_OK)
            return blast_error_set(err, BLAST_ETLS, NULL, 0, 0,
                                   "certificate verification failed for %s: %s", c->host,
                                   X509_verify_cert_error_string(v));
    }
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                               "the server closed the connection during the TLS handshake");
    return tls_fail(err, "TLS handshake failed");
}

bool conn_is_tls(const struct conn *c)
{
    return c->ssl != NULL;
}

const char *conn_tls_version(const struct conn *c)
{
    return c->ssl != NULL ? SSL_get_version(c->ssl) : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
    return c->ssl != NULL ? SSL_get_cipher_name(c->ssl) : NULL;
}

void conn_tls_subject(const struct conn *c, char *out, size_t size)
{
    X509 *cert = c->ssl != NULL ? SSL_get1_peer_certificate(c->ssl) : NULL;
    BIO *b;
    long n;

    out[0] = '\0';
    if (cert == NULL)
        return;
    b = BIO_new(BIO_s_mem());
    if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0,
                                        (XN_FLAG_ONELINE & ~(unsigned long)XN_FLAG_SPC_EQ) &
                                            ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        n = BIO_read(b, out, (int)size - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    X509_free(cert);
}

bool conn_is_loopback(const struct conn *c)
{
    if (c->peer.ss_family == AF_UNIX)
        return true;
    if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&c->peer;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->peer;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

/* Only names that cannot leave the machine: "127.0.0.1.example" is a DNS name, not loopback. */
bool conn_host_is_loopback(const char *host)
{
    struct in_addr a4;

    if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

ssize_t conn_read(struct conn *c, void *buf, size_t size, int64_t deadline, struct blast_error *err)
{
    for (;;) {
        if (c->ssl != NULL) {
            size_t done = 0;
            int r, e;
            ERR_clear_error();
            r = SSL_read_ex(c->ssl, buf, size, &done);
            if (r == 1)
                return (ssize_t)done;
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                r = tls_wait(c, e, deadline);
                if (r == 0)
                    return blast_error_set(err, BLAST_ETIMEOUT, NULL, 0, 0,
                                           "timed out waiting for the server");
                if (r < 0)
                    return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "poll: %s", strerror(errno));
                continue;
            }
            if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
                return blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                       "the server closed the connection");
            return tls_fail(err, "TLS read failed");
        } else {
            ssize_t n = recv(c->fd, buf, size, 0);
            if (n > 0)
                return n;
            if (n == 0)
                return blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                       "the server closed the connection");
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                int r = wait_fd(c->fd, POLLIN, deadline, c->cancel_fd);
                if (r == 0)
                    return blast_error_set(err, BLAST_ETIMEOUT, NULL, 0, 0,
                                           "timed out waiting for the server");
                if (r < 0)
                    return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "poll: %s", strerror(errno));
                continue;
            }
            if (errno == ECONNRESET)
                return blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                       "the server reset the connection");
            return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "read: %s", strerror(errno));
        }
    }
}

ssize_t conn_read_now(struct conn *c, struct buf *in, struct blast_error *err)
{
    char chunk[4096];
    ssize_t n;

    if (c->ssl != NULL) {
        size_t done = 0;
        int r, e;
        ERR_clear_error();
        r = SSL_read_ex(c->ssl, chunk, sizeof chunk, &done);
        if (r != 1) {
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                   "the server closed the connection");
        }
        n = (ssize_t)done;
    } else {
        n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (n <= 0)
            return blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                   "the server closed the connection");
    }
    if (buf_append(in, chunk, (size_t)n) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return n;
}

/*
 * TLS: how much of the plaintext past what SSL_write confirmed may have reached
 * the kernel. A failed SSL_write can still have written whole records (it
 * finishes the one it had started, then starts another, before it says "retry"),
 * and it does not say how many. Every record written carries at least as many
 * bytes of ciphertext as of plaintext, so the ciphertext the socket took since
 * the last confirmed write bounds it.
 */
static size_t tls_unconfirmed(const struct conn *c, uint64_t confirmed_at, size_t len)
{
    uint64_t now = BIO_number_written(SSL_get_wbio(c->ssl));
    uint64_t more = now > confirmed_at ? now - confirmed_at : 0;

    return more < len ? (size_t)more : len;
}

/*
 * Wait until the socket takes more (want: POLLOUT, or POLLIN when TLS must read to
 * write), reading into in whatever the server sends meanwhile, so that neither
 * side can block the other (RFC 2920 §3.2). Errors: BLAST_ETIMEOUT at deadline,
 * BLAST_EIO, and those of conn_read_now().
 */
static int wait_writable(struct conn *c, int want, int64_t deadline, struct buf *in,
                         struct blast_error *err)
{
    for (;;) {
        struct pollfd pf = {c->fd, (short)(want | POLLIN), 0};
        int ms = remaining(deadline), r;
        ssize_t got;
        if (ms == 0)
            return blast_error_set(err, BLAST_ETIMEOUT, NULL, 0, 0,
                                   "timed out writing to the server");
        r = poll(&pf, 1, ms);
        if (r < 0 && errno != EINTR)
            return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        if ((pf.revents & POLLIN) && want != POLLIN) {
            got = conn_read_now(c, in, err);
            if (got < 0)
                return (int)got;
        }
        if (pf.revents & (want | POLLERR | POLLHUP))
            return 0;
    }
}

int conn_write_reading(struct conn *c, const void *data, size_t len, int idle_ms, struct buf *in,
                       size_t *sent, struct blast_error *err)
{
    const char *p = data;
    int64_t deadline = timeutil_mono_ms() + idle_ms;
    /* TLS: the socket's byte count when SSL_write last confirmed everything it wrote */
    uint64_t confirmed_at = c->ssl != NULL ? BIO_number_written(SSL_get_wbio(c->ssl)) : 0;
    uint64_t seen_at = confirmed_at;
    int rc = 0;

    while (len > 0) {
        ssize_t n = -1;
        int want = POLLOUT;

        if (c->ssl != NULL) {
            size_t done = 0;
            uint64_t now;
            int r, e;
            ERR_clear_error();
            r = SSL_write_ex(c->ssl, p, len, &done);
            now = BIO_number_written(SSL_get_wbio(c->ssl));
            if (now != seen_at) {
                seen_at = now;
                deadline = timeutil_mono_ms() + idle_ms; /* records leave: progress */
            }
            if (r == 1) {
                n = (ssize_t)done;
                confirmed_at = now;
            } else {
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
                    rc = blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                         "the server closed the connection");
                    goto out;
                }
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    rc = tls_fail(err, "TLS write failed");
                    goto out;
                }
                want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            }
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                if (errno == EPIPE || errno == ECONNRESET)
                    rc = blast_error_set(err, BLAST_ECLOSED, NULL, 0, 0,
                                         "the server closed the connection");
                else
                    rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "write: %s", strerror(errno));
                goto out;
            }
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            deadline = timeutil_mono_ms() + idle_ms; /* progress */
            continue;
        }
        /* blocked: wait until we can write, reading whatever the server sends meanwhile */
        if ((rc = wait_writable(c, want, deadline, in, err)) < 0)
            goto out;
    }
out:
    if (sent != NULL)
        *sent = (size_t)(p - (const char *)data) +
                (rc < 0 && c->ssl != NULL ? tls_unconfirmed(c, confirmed_at, len) : 0);
    return rc;
}

int conn_local_literal(const struct conn *c, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN];

    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0)
        return BLAST_EIO;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
        snprintf(out, size, "[%s]", addr);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
        snprintf(out, size, "[IPv6:%s]", addr);
    } else {
        return BLAST_EINVAL;
    }
    return 0;
}

void conn_set_cancel(struct conn *c, int cancel_fd)
{
    if (c != NULL)
        c->cancel_fd = cancel_fd;
}

void conn_interrupt(struct conn *c)
{
    if (c != NULL && c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
}
