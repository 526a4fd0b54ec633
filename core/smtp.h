/*
 * smtp - one SMTP client session (RFC 5321) over a conn.
 *
 * Owns: the protocol states and their names, reading replies (multiline, split or
 * merged TCP reads, enhanced status codes of RFC 3463 checked against the reply
 * class, text sanitised, line and total size capped), EHLO capabilities, STARTTLS
 * (RFC 3207), AUTH (RFC 4954: PLAIN, LOGIN, CRAM-MD5, XOAUTH2), the mail
 * transaction with dot-stuffing (RFC 5321 §4.5.2), RSET and QUIT, per-command
 * deadlines (RFC 5321 §4.5.3.2), a transcript at trace level with AUTH masked,
 * and the outcome of each recipient.
 * Does not own: choosing relays, retrying, rate limits (the caller), nor the
 * message bytes (compose/mime).
 *
 * A session that saw a malformed reply, a timeout or a lost connection, or whose
 * server fell out of step with the commands, is dead: every later call fails and
 * it must be freed, never reused.
 */
#ifndef BLAST_SMTP_H
#define BLAST_SMTP_H

#include "conn.h"
#include "error.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_state {
    SMTP_CONNECT = 0,
    SMTP_GREETING,
    SMTP_EHLO,
    SMTP_HELO,
    SMTP_STARTTLS,
    SMTP_TLS, /* the handshake itself */
    SMTP_AUTH,
    SMTP_READY, /* between transactions */
    SMTP_MAIL,
    SMTP_RCPT,
    SMTP_DATA,
    SMTP_END_OF_DATA, /* the body and its final "." */
    SMTP_RSET,
    SMTP_QUIT,
    SMTP_CLOSED,
    SMTP_STATE_COUNT
};

/* "connect", "greeting", "EHLO", ..., "end of data": for logs and reports. */
const char *smtp_state_name(enum smtp_state s);
/* The state smtp_state_name() calls name, or -1. */
int smtp_state_parse(const char *name);

/* RFC 5321 §4.5.3.1.5 allows 512 octets a line; real servers send more. */
#define SMTP_REPLY_LINE_MAX  2048
#define SMTP_REPLY_TOTAL_MAX (64 * 1024)
#define SMTP_REPLY_TEXT_MAX  1024

struct smtp_reply {
    int code;                       /* 200..599 */
    char enhanced[16];              /* "5.1.1", or "" when the server sent none */
    char text[SMTP_REPLY_TEXT_MAX]; /* lines joined by '\n', control characters replaced */
    int lines;
};

/*
 * Parse one complete reply at the start of in (len bytes). Returns 1 and sets
 * *used to the bytes it spans, 0 when more bytes are needed, or BLAST_EPROTO when
 * the bytes are not a valid reply (err says why). Pure: no I/O.
 */
int smtp_reply_parse(const char *in, size_t len, struct smtp_reply *r, size_t *used,
                     struct blast_error *err);

/* Capability flags from the last EHLO (RFC 5321 §4.1.1.1). */
enum {
    SMTP_CAP_PIPELINING = 1 << 0, /* RFC 2920 */
    SMTP_CAP_STARTTLS = 1 << 1,   /* RFC 3207 */
    SMTP_CAP_AUTH = 1 << 2,       /* RFC 4954 */
    SMTP_CAP_SIZE = 1 << 3,       /* RFC 1870 */
    SMTP_CAP_8BITMIME = 1 << 4,   /* RFC 6152 */
    SMTP_CAP_SMTPUTF8 = 1 << 5,   /* RFC 6531 */
    SMTP_CAP_ENHANCED = 1 << 6,   /* RFC 2034 */
    SMTP_CAP_DSN = 1 << 7,        /* RFC 3461 */
    SMTP_CAP_CHUNKING = 1 << 8,   /* RFC 3030 */
};

enum {
    SMTP_AUTH_PLAIN = 1 << 0,
    SMTP_AUTH_LOGIN = 1 << 1,
    SMTP_AUTH_CRAM_MD5 = 1 << 2,
    SMTP_AUTH_XOAUTH2 = 1 << 3,
};

/*
 * The vocabulary a relay is described in, shared by the campaign file (core/campaign
 * reads it into these types) and the engine: each is defined here once, with its
 * names as the campaign file spells them (NULL-terminated, indexed by the value).
 */
enum smtp_tls_mode {
    SMTP_TLS_STARTTLS = 0, /* RFC 3207, required: never a plaintext fallback */
    SMTP_TLS_IMPLICIT,     /* RFC 8314 implicit TLS, usually port 465 */
    SMTP_TLS_NONE,         /* plaintext: loopback only unless allowed */
};
extern const char *const smtp_tls_mode_names[]; /* "starttls", "tls", "none" */

enum smtp_auth_choice {
    SMTP_AUTH_CHOICE_AUTO = 0, /* the strongest mechanism the server offers */
    SMTP_AUTH_CHOICE_PLAIN,
    SMTP_AUTH_CHOICE_LOGIN,
    SMTP_AUTH_CHOICE_CRAM_MD5,
    SMTP_AUTH_CHOICE_XOAUTH2,
};
extern const char *const smtp_auth_choice_names[]; /* "auto", "plain", ... */

/* "starttls", ... and "auto", ...; "?" out of range. */
const char *smtp_tls_mode_name(enum smtp_tls_mode m);
const char *smtp_auth_choice_name(enum smtp_auth_choice a);

/* RFC 3461 NOTIFY, as bits: bit k is smtp_dsn_notify_names[k]. */
enum {
    SMTP_DSN_NEVER = 1 << 0,
    SMTP_DSN_SUCCESS = 1 << 1,
    SMTP_DSN_FAILURE = 1 << 2,
    SMTP_DSN_DELAY = 1 << 3,
};
extern const char *const smtp_dsn_notify_names[]; /* "never", "success", "failure", "delay" */

/* RFC 3461 RET. */
enum smtp_dsn_ret { SMTP_DSN_RET_DEFAULT = 0, SMTP_DSN_RET_FULL, SMTP_DSN_RET_HDRS };
extern const char *const smtp_dsn_ret_names[]; /* "default", "full", "hdrs" */

/*
 * Milliseconds per state; RFC 5321 §4.5.3.2 gives the defaults of
 * smtp_timeouts_default(). In a campaign, 0 means "the default".
 */
struct smtp_timeouts {
    int connect, greeting, ehlo, starttls, auth, mail, rcpt, data, block, end_of_data, rset, quit;
};
void smtp_timeouts_default(struct smtp_timeouts *t);
/* Every timeout that set gives (not 0) replaces t's. */
void smtp_timeouts_override(struct smtp_timeouts *t, const struct smtp_timeouts *set);

struct smtp_options {
    const char *host;
    int port;
    const char *label; /* relay name, for logs */
    enum smtp_tls_mode tls;
    struct conn_tls *tls_ctx; /* required unless tls is SMTP_TLS_NONE */
    const char *helo_name;    /* NULL: the host name if qualified, else our address literal */
    const char *username;     /* NULL: no AUTH */
    const char *password;     /* secret; never logged */
    enum smtp_auth_choice auth;
    bool allow_plaintext_auth; /* AUTH without TLS to a non-loopback host */
    bool chunking;             /* BDAT (RFC 3030) instead of DATA where offered */
    unsigned dsn_notify;       /* RFC 3461 NOTIFY: SMTP_DSN_* bits, 0 for none */
    enum smtp_dsn_ret dsn_ret; /* RFC 3461 RET */
    struct smtp_timeouts timeouts;
    const struct log *log;
    /* while smtp_session_open runs: give up when *cancel_fd is readable; NULL: never */
    const int *cancel_fd;
    /*
     * An open connection to use instead of dialing host and port (a socketpair in
     * tests and fuzzing); the session owns it from smtp_session_open on. NULL: dial.
     */
    struct conn *conn;
};

struct smtp_session;

/* How one recipient of a transaction ended. */
enum smtp_outcome {
    SMTP_OUTCOME_NONE = 0,  /* not decided yet */
    SMTP_OUTCOME_DELIVERED, /* 2xx after end of data */
    SMTP_OUTCOME_DEFERRED,  /* 4xx, or the session failed before end of data */
    SMTP_OUTCOME_FAILED,    /* 5xx */
    SMTP_OUTCOME_UNKNOWN,   /* end of data sent, final reply never came */
};

/*
 * The outcome a reply gives the recipients it answers at step: 2yz delivered
 * (accepted, before the end of data); 4yz deferred; 5yz failed, except where
 * the RFCs make it temporary: an RFC 3463 detail code that is "useful only as a
 * persistent transient" condition (X.2.2 mailbox full, X.3.1, X.4.1, X.4.2,
 * X.4.3, X.4.5, X.4.6, and X.5.3 too many recipients), and 552 to RCPT (RFC 5321
 * §4.5.3.1.10) unless its detail code is one that is only permanent. The table
 * is in docs/delivery.md.
 */
enum smtp_outcome smtp_reply_outcome(const struct smtp_reply *r, enum smtp_state step);

/*
 * RFC 5321 §4.5.3.1.10, RFC 3463 X.5.3: the reply to RCPT says the transaction has
 * too many recipients (an enhanced X.5.3, or a 552 without a detail code). It says
 * nothing about the recipient, who goes in the next transaction.
 */
bool smtp_reply_too_many_recipients(const struct smtp_reply *r, enum smtp_state step);

struct smtp_rcpt {
    const char *address; /* envelope address, ASCII or UTF-8 */
    enum smtp_outcome outcome;
    enum smtp_state step;    /* where the outcome was decided */
    struct smtp_reply reply; /* the reply that decided it (code 0 if none) */
    char detail[256];        /* blast's own words when there was no reply */
};

struct smtp_txn {
    const char *mail_from;
    bool smtputf8;     /* RFC 6531: some address is not ASCII */
    bool eightbit;     /* the body has 8-bit content: BODY=8BITMIME */
    const char *envid; /* RFC 3461 ENVID (plain text, xtext-encoded here), or NULL */
    struct smtp_rcpt *rcpts;
    size_t nrcpts;
    const char *data; /* message, CRLF line ends, not dot-stuffed */
    size_t len;
    char queue_id[128]; /* from the final 250, when the server names one */
    void *user;         /* the caller's, untouched */
    /* the engine's own bookkeeping */
    size_t accepted; /* recipients accepted at RCPT */
    bool data_ok;    /* DATA got 354 (or BDAT was sent) */
    bool untried;    /* given back (deferred) before any of it was written: no attempt */
};

/*
 * How many transactions a pipelined session takes from the feed before the round
 * that writes their envelope. Deeper hides a slower disk behind the wire (the
 * journal's fdatasync must finish between leaving and sending); each step is one
 * more message per connection that a crash can leave `unknown` without its end
 * of data having left (docs/delivery.md). 4 measured best on loopback here
 * (docs/performance.md).
 */
#define SMTP_AHEAD 4

/*
 * Where smtp_session_run() takes transactions from and gives them back. next
 * returns the next transaction to send, or NULL when there is none for now; done
 * is called once for every transaction next returned, when all its recipients
 * have an outcome.
 *
 * The engine copies a transaction's data (the message) out before it calls next
 * again, so a caller may build every message in the same buffer. The transaction
 * and its recipients must stay valid until done.
 */
struct smtp_feed {
    struct smtp_txn *(*next)(void *arg);
    void (*done)(void *arg, struct smtp_txn *t);
    /*
     * Optional: called just before the write that carries t's end of data (or BDAT
     * LAST): the last moment to record that it is leaving. A negative return
     * stops: t is deferred, nothing of it is sent, and the session ends.
     */
    int (*sending)(void *arg, struct smtp_txn *t);
    /*
     * Optional, pipelined sessions: called when the session takes t from next,
     * SMTP_AHEAD rounds before t's envelope is written and SMTP_AHEAD + 1 before
     * its end of data can follow, so that the caller can start early what
     * `sending` must have finished (the journal's sync). A negative return stops
     * as `sending` does. A session that ends holding transactions it took but
     * never wrote gives them to done with t->untried set.
     */
    int (*leaving)(void *arg, struct smtp_txn *t);
    void *arg;
};

/*
 * Connect, read the greeting, EHLO, STARTTLS (or implicit TLS) and EHLO again,
 * AUTH. On success *out is a session ready for transactions. On failure *out is
 * still set (unless out of memory) so the caller can read smtp_session_state()
 * and smtp_session_reply() to say where and why; free it with smtp_session_free().
 * Errors: BLAST_ECONNECT, BLAST_ETIMEOUT, BLAST_ETLS, BLAST_EAUTH (535 and other
 * refusals: do not retry with the same password), BLAST_EREPLY (a refusal at
 * another step), BLAST_EPROTO, BLAST_ECLOSED (the connection closed, or a 421 at
 * any step: the greeting, EHLO, STARTTLS, AUTH, as in a transaction).
 */
int smtp_session_open(const struct smtp_options *o, struct smtp_session **out,
                      struct blast_error *err);

/*
 * Send the transactions feed->next gives until it gives NULL, pipelined as RFC
 * 2920 allows when the server offers PIPELINING: a transaction's MAIL, RCPTs and
 * DATA go out in one write, and its body and end of data in the same write as the
 * next transaction's MAIL, RCPTs and DATA, so each message costs about one round
 * trip. With CHUNKING and options.chunking, BDAT lets several transactions be in
 * flight at once. Without PIPELINING, one command at a time.
 *
 * Every recipient gets an outcome (smtp_outcome) and feed->done is called for
 * each transaction. Returns 0 while the session remains usable; a negative code
 * when it died (421, timeout, lost connection, protocol error): recipients not
 * yet decided are then DEFERRED, or UNKNOWN when their end of data had been sent.
 */
int smtp_session_run(struct smtp_session *s, const struct smtp_feed *feed, struct blast_error *err);

/* One transaction, through smtp_session_run(). */
int smtp_session_send(struct smtp_session *s, struct smtp_txn *t, struct blast_error *err);

/* Statistics of the session so far: writes made and waits for replies. */
struct smtp_stats {
    size_t messages;    /* end of data (or BDAT LAST) sent */
    size_t writes;      /* groups written */
    size_t round_trips; /* times the client waited for the server */
};
const struct smtp_stats *smtp_session_stats(const struct smtp_session *s);

/* Send QUIT and wait briefly for 221 (RFC 5321 §4.1.1.10). The session stays allocated. */
void smtp_session_quit(struct smtp_session *s);

/* From another thread: cut the connection, so the session's blocked I/O fails now. */
void smtp_session_interrupt(struct smtp_session *s);

/* Close without QUIT and free. Accepts NULL. */
void smtp_session_free(struct smtp_session *s);

enum smtp_state smtp_session_state(const struct smtp_session *s);
const struct smtp_reply *smtp_session_reply(const struct smtp_session *s); /* the last one */
unsigned smtp_session_caps(const struct smtp_session *s);
unsigned smtp_session_auth_mechs(const struct smtp_session *s);
size_t smtp_session_size_limit(const struct smtp_session *s); /* 0: none announced */
const struct conn *smtp_session_conn(const struct smtp_session *s);
/*
 * The session died because the server's replies no longer matched the commands
 * sent (a reply nothing asked for, more replies than commands, a code the
 * command cannot get, a malformed reply). Nothing was written after it but QUIT.
 */
bool smtp_session_out_of_step(const struct smtp_session *s);
/*
 * The relay should not be tried again in this run: it refused the credentials
 * with a 5yz (trying them again could lock the account), or broke the AUTH
 * exchange (RFC 4954 §4).
 */
bool smtp_session_give_up(const struct smtp_session *s);

/* Append data dot-stuffed (RFC 5321 §4.5.2) plus the final ".\r\n" to out; refuses bare CR/LF. */
struct buf;
int smtp_dot_stuff(struct buf *out, const char *data, size_t len, struct blast_error *err);

/* Extract a queue id from a final 250 reply's text ("queued as X", "id=X", ...). */
void smtp_queue_id(const char *text, char *out, size_t size);

#endif
