/*
 * conn - one client transport connection: TCP, then optionally TLS, with deadlines.
 *
 * Owns: name resolution and a non-blocking connect bounded by a deadline, the TLS
 * client (OpenSSL: TLS 1.2 minimum, SNI, chain and host name verification against
 * the system store or a CA file), and reads and writes that give up at a deadline
 * on the monotonic clock, so a peer that trickles bytes cannot stretch a timeout; and
 * what counts as loopback, by the peer's address or by the host name a campaign gives
 * (the relays' and the webhook's plaintext rules both ask here).
 * Does not own: the protocol spoken over it (smtp), nor buffering of replies.
 *
 * A struct conn_tls holds one OpenSSL context per relay, shared by its connections;
 * it must outlive them. Neither type is thread-safe by itself: one thread uses one
 * connection at a time.
 */
#ifndef BLAST_CONN_H
#define BLAST_CONN_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct conn_tls;

struct conn_tls_options {
    bool verify;            /* verify the chain and the host name (default: true) */
    const char *ca_file;    /* PEM bundle to trust instead of the system store, or NULL */
    const char *pin_sha256; /* hex SHA-256 of the server's public key (colons allowed), or NULL */
};

/* Make a TLS client context. Errors: BLAST_ETLS (bad CA file), BLAST_ENOMEM. */
int conn_tls_new(const struct conn_tls_options *o, struct conn_tls **out, struct blast_error *err);
void conn_tls_free(struct conn_tls *t);

/*
 * Resolve host and connect to port before deadline (monotonic ms). Tries every
 * address the name resolves to. Errors: BLAST_ECONNECT, BLAST_ETIMEOUT.
 */
int conn_open(const char *host, int port, int64_t deadline, struct conn **out,
              struct blast_error *err);

/*
 * conn_open, and every later wait of the connection gives up (errno ECANCELED,
 * an error) as soon as cancel_fd is readable: one pipe lets a caller stop
 * threads that are waiting for a slow server. -1: none.
 */
int conn_open_cancel(const char *host, int port, int64_t deadline, int cancel_fd, struct conn **out,
                     struct blast_error *err);

/*
 * Take over fd, a connected stream socket (a socketpair in tests and fuzzing, or
 * a socket connected elsewhere), as a connection to host (the name TLS would
 * verify). The connection owns fd from then on, even when this fails. A Unix
 * domain peer counts as loopback: it cannot be on another machine.
 * Errors: BLAST_EIO (fd is not a socket), BLAST_ENOMEM.
 */
int conn_adopt(int fd, const char *host, struct conn **out, struct blast_error *err);

/* Change (or with -1, drop) the cancel fd of an open connection. Accepts NULL. */
void conn_set_cancel(struct conn *c, int cancel_fd);

/* Close the socket (after a TLS close_notify when TLS is up) and free. Accepts NULL. */
void conn_close(struct conn *c);

/*
 * Run the TLS handshake over the open connection, verifying the peer as host
 * (the name given to conn_open). Errors: BLAST_ETLS (with the verification
 * failure, e.g. "certificate has expired"), BLAST_ETIMEOUT, BLAST_ECLOSED.
 */
int conn_start_tls(struct conn *c, struct conn_tls *t, int64_t deadline, struct blast_error *err);

bool conn_is_tls(const struct conn *c);
const char *conn_tls_version(const struct conn *c); /* "TLSv1.3", or NULL */
const char *conn_tls_cipher(const struct conn *c);
/* The server certificate's subject, one line ("CN=smtp.example.com, O=..."), into out. */
void conn_tls_subject(const struct conn *c, char *out, size_t size);
bool conn_is_loopback(const struct conn *c); /* the peer address is 127/8 or ::1 */

/*
 * Whether host, as a campaign names it, cannot leave the machine before anything is
 * resolved: "localhost", a dotted IPv4 address in 127.0.0.0/8, "::1" or "[::1]". A
 * DNS name that only starts like one ("127.0.0.1.example") is not loopback.
 */
bool conn_host_is_loopback(const char *host);

struct buf;

/*
 * Write all of data, and whenever the peer cannot take more, read what it sent
 * into in, so that neither side waits on the other with full buffers (the
 * pipelining deadlock of RFC 2920 §3.2). The write fails when no byte could be
 * written for idle_ms. Errors: BLAST_ECLOSED, BLAST_ETIMEOUT, BLAST_EIO, BLAST_ETLS,
 * BLAST_ENOMEM.
 *
 * *sent (when sent is not NULL) is set to how many leading bytes of data may have
 * reached the kernel, and so the peer: all of them on success; on failure, what
 * send() took, or with TLS what SSL_write confirmed plus as many bytes as the
 * socket took in ciphertext since (a failed SSL_write may have written whole
 * records it does not report). Bytes past *sent never left.
 */
int conn_write_reading(struct conn *c, const void *data, size_t len, int idle_ms, struct buf *in,
                       size_t *sent, struct blast_error *err);

/*
 * Append what the peer has sent and is there now to in, without waiting.
 * Returns the byte count (0: nothing there), or BLAST_ECLOSED, BLAST_ENOMEM.
 */
ssize_t conn_read_now(struct conn *c, struct buf *in, struct blast_error *err);

/*
 * Read what is available (at least one byte) into buf before deadline. Returns
 * the byte count, or BLAST_ECLOSED at end of stream, BLAST_ETIMEOUT, BLAST_EIO.
 */
ssize_t conn_read(struct conn *c, void *buf, size_t size, int64_t deadline,
                  struct blast_error *err);

/*
 * Cut the connection from another thread: blocked reads and writes fail at once.
 * The owner still closes it.
 */
void conn_interrupt(struct conn *c);

/* Our local address as an RFC 5321 address literal ("[127.0.0.1]", "[IPv6:...]"). */
int conn_local_literal(const struct conn *c, char *out, size_t size);

#endif
