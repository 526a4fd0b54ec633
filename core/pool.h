/*
 * pool - the campaign's relays and connections, and the order and pace of sending.
 *
 * Owns: one thread per connection (relays x `connections`), each opening its
 * session, rendering its own messages (so rendering runs on every core) and
 * driving the SMTP engine; the queue of recipients waiting to be sent (bounded:
 * the reader blocks while it is full, so memory stays flat); the rate limiters
 * (global, per relay, per recipient domain; GCRA, see ratelimit.h), or asking the
 * shared limits in Redis before each message (sharedlimit.h); the retry heap;
 * each relay's health record; weights; `messages_per_connection`; idle connections
 * closed; QUIT on every connection at the end; the journal's "sending" record, made
 * durable before each end of data.
 * Does not own: the decisions: when a recipient is retried or recorded, when a
 * relay backs off or is taken out, when it is slowed down or sped up (policy, asked
 * under the pool's lock with the pool's clock);
 * nor reading the list (the caller submits rows), the report (rebuilt
 * from the journal afterwards), signals (the caller sets pool_stop()).
 *
 * Every submitted recipient ends with exactly one result in the journal: an
 * outcome, or "deferred" when the pool stopped (a signal, --deadline, no relay
 * left) before it could be tried.
 */
#ifndef BLAST_POOL_H
#define BLAST_POOL_H

#include "address.h"
#include "breaker.h"
#include "campaign.h"
#include "compose.h"
#include "conn.h"
#include "error.h"
#include "journal.h"
#include "log.h"
#include "outcome.h"
#include "provider.h"
#include "recipients.h"
#include "sharedlimit.h"
#include "smtp.h"
#include "timeutil.h"
#include "tzone.h"
#include "window.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;

struct pool_options {
    const struct campaign *c;
    struct compose *compose;       /* shared by the threads (each has its own result) */
    struct journal *journal;       /* results and "sending" records */
    char *const *passwords;        /* one per relay (NULL: no AUTH); borrowed */
    const struct address *test_to; /* every message to this mailbox instead, or NULL */
    const struct log *log;
    /*
     * The campaign's limits kept in Redis (borrowed), or NULL: this process keeps
     * them. With it, each message is granted there first (docs/sharding.md), and the
     * pool's own limiters only slow a relay down (421, 4.7.x).
     */
    struct sharedlimit *shared;
    /*
     * Mailbox providers (core/provider, borrowed; NULL: none): a recipient whose
     * domain routes (by its MX hosts) to a provider waits for that provider's pace,
     * which every domain of the provider shares, as well as its domain's. With
     * shared limits, Redis keeps it (the caller gave the table to
     * sharedlimit_add_providers()), so that the shards share one pace.
     */
    const struct provider_table *providers;
    const struct provider_routes *routes;
    /*
     * The circuit breaker (core/breaker; after 0: off): when the run's first attempts
     * are refused, blocked or throttled past their shares, the pool stops as
     * pool_stop() does, and pool_stats() says why.
     */
    struct breaker_options breaker;
    /*
     * The recipients are the campaign's seeds (cmd/blast/send.c), each submitted with
     * the row it is sent (the first recipient's fields) and its own index as the row
     * the journal keeps: the message carries row 0 in its return path token and
     * envelope id, so that what comes back for a seed is never taken for a recipient's.
     */
    bool seeds;
    /*
     * The send window (borrowed; NULL: none) on the campaign clock (time(NULL) +
     * clock_offset, seconds). The caller hands over only recipients whose window is
     * open; the pool looks again before each attempt (the first and every retry), so
     * that one whose window closed while it waited in the queue is not sent after it,
     * and at each deferral, so that a retry due after the closing is not waited for:
     * deferred with window_explain()'s reason (and its last reply), for a later run.
     */
    const struct window *window;
    int64_t clock_offset;
    size_t queue_size; /* recipients waiting to be sent; 0: 1024 */
    int idle_close_ms; /* close a connection idle this long; 0: 5000 */
    int drain_ms;      /* after pool_stop, how long transactions may finish; 0: 30000 */
};

/*
 * Start the threads. Errors: BLAST_ENOMEM (also: a thread that cannot start; then
 * *out is set, the threads that did start end at once, and pool_free() joins
 * them), BLAST_ETLS (a relay's CA file or pin; *out is NULL).
 */
int pool_start(const struct pool_options *o, struct pool **out, struct blast_error *err);

/*
 * Hand over one recipient: its row (copied), the screened address (copied), the
 * address as written, what earlier runs left: the row's last outcome from the
 * journal (borrowed; its attempts, first attempt and history go on), or NULL, and
 * the zone its send window is read in (borrowed: it must outlive the pool; NULL
 * without a window). Blocks while the queue is full. Returns 0, or a negative code
 * when the pool has stopped for good (then the caller stops submitting).
 */
int pool_submit(struct pool *p, const struct recipients_row *row, const struct address *to,
                const char *email, const struct outcome *earlier, const struct tzone *zone,
                struct blast_error *err);

/*
 * Stop taking new recipients (a signal, a deadline): transactions in flight finish
 * (at most drain_ms, then their connections are cut); what waits is recorded as
 * deferred with reason. Safe from any thread, not from a signal handler.
 */
void pool_stop(struct pool *p, const char *reason);

/*
 * No more submissions: wait until every recipient has its result, then QUIT every
 * connection and join the threads. While waiting, a non-zero *interrupted (set by
 * a signal handler) or a passed deadline (monotonic ms, 0 for none) stops the pool
 * as pool_stop() does. Returns 0, or the error that stopped the pool (a journal
 * that cannot be written: nothing more was sent after it).
 */
int pool_finish(struct pool *p, volatile sig_atomic_t *interrupted, int64_t deadline,
                struct blast_error *err);

struct pool_stats {
    size_t submitted;
    size_t sessions;      /* sessions opened */
    size_t relays_usable; /* relays not taken out for good */
    bool no_relay;        /* every relay was given up */
    size_t messages, round_trips;
    size_t results[OUTCOME_STATUS_COUNT]; /* results recorded so far, by status */
    size_t queued, retrying, inflight;    /* waiting, waiting for a retry, on their way */
    bool tripped;                         /* the circuit breaker stopped the run */
    size_t held_window;    /* deferred because their window closed while they waited */
    char breaker_why[256]; /* its figures, when tripped */
};
void pool_stats(struct pool *p, struct pool_stats *out);

/* Free (after pool_finish). Accepts NULL. */
void pool_free(struct pool *p);

/* SMTP session options for a campaign relay (TLS context and password borrowed). */
void pool_smtp_options(const struct campaign *c, const struct campaign_relay *relay,
                       struct conn_tls *tls, const char *password, const struct log *lg,
                       struct smtp_options *so);

#endif
