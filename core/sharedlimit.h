/*
 * sharedlimit - the campaign's rate limits kept in Redis, so that the shards of a
 * campaign (docs/sharding.md) share them instead of each taking 1/N.
 *
 * Owns: the rules of the `limits.shared` URL (redis://HOST[:PORT][/DB], no
 * credentials in it); the names of the keys (the campaign's name and a hash of its
 * rate settings, so another campaign, or this one with other rates, never shares
 * them); the GCRA parameters of each limit (the burst of ratelimit.h); the Lua
 * script that grants one message against all the limits that apply to it (global,
 * its relay, its domain, its domain's mailbox provider) at once or not at all, on
 * the Redis server's clock; the
 * one connection to Redis (hiredis, synchronous, with timeouts), the script sent by
 * EVALSHA with EVAL when the server has forgotten it; a lost connection, retried with
 * a bounded back-off, logged once when lost and once when back.
 * Does not own: which limits apply to a message, nor waiting (pool: it asks here
 * before each message and holds the message back for the wait it is given, or
 * while Redis cannot be reached); the password (secret fetches it; sharedlimit_open()
 * keeps a copy, wiped when freed, and never logs it); slowing down for a relay that
 * answers 421 or 4.7.x, which each shard does on its own (ratelimit, in the pool).
 *
 * Thread-safe: one mutex serialises the round trips of the threads that share a
 * struct sharedlimit (one per message; a few hundred microseconds each on a LAN).
 * No other lock is taken while it is held.
 */
#ifndef BLAST_SHAREDLIMIT_H
#define BLAST_SHAREDLIMIT_H

#include "campaign.h"
#include "error.h"
#include "log.h"
#include "provider.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHAREDLIMIT_DEFAULT_PORT   6379
#define SHAREDLIMIT_TIMEOUT_MS     1000  /* to connect, and for each command's reply */
#define SHAREDLIMIT_BACKOFF_MIN_MS 50    /* after a failure, the first wait to try again */
#define SHAREDLIMIT_BACKOFF_MAX_MS 1000  /* the wait doubles up to this */
#define SHAREDLIMIT_IDLE_MS        60000 /* a key outlives its limit's last use by this long */

/* A `limits.shared` URL, parsed. */
struct sharedlimit_url {
    char host[256]; /* a name, an IPv4 address, or an IPv6 address without its brackets */
    int port;       /* default 6379 */
    long db;        /* the database number, default 0 */
};

/*
 * Parse redis://HOST[:PORT][/DB]. On failure returns BLAST_EINVAL with the reason
 * in why (size bytes), which never repeats a user:password@ part.
 */
int sharedlimit_parse_url(const char *url, struct sharedlimit_url *out, char *why, size_t size);

/* The limits one message is held to, in the order of sharedlimit_answer.wait_ms. */
enum sharedlimit_kind {
    SHAREDLIMIT_GLOBAL = 0, /* the campaign's `rate` */
    SHAREDLIMIT_RELAY,      /* the relay's `rate` */
    SHAREDLIMIT_DOMAIN,     /* the recipient domain's `domain_rates` entry */
    SHAREDLIMIT_PROVIDER,   /* the pace of the mailbox provider its domain routes to */
    SHAREDLIMIT_KINDS
};

/*
 * The name of one limit's key into out (size bytes):
 *   blast:{NAME:HASH}:global, blast:{NAME:HASH}:relay:RELAY, blast:{NAME:HASH}:domain:DOMAIN
 * NAME is the campaign's name and HASH 12 hex digits of SHA-256 over every rate of
 * the campaign (docs/sharding.md); the braces make one Redis Cluster hash slot of a
 * campaign's keys. index is the relay's or the domain's among c->relays and
 * c->domain_rates (unused for GLOBAL). Returns 0, or BLAST_EINVAL when out is short.
 */
int sharedlimit_key_name(const struct campaign *c, enum sharedlimit_kind kind, size_t index,
                         char *out, size_t size);

/*
 * GCRA in whole microseconds for a rate of per_second (> 0): the interval between
 * messages, rounded up so that the shards together are never faster, and the
 * tolerance, (burst - 1) intervals with ratelimit_default_burst()'s burst.
 */
void sharedlimit_params(double per_second, int64_t *interval_us, int64_t *tolerance_us);

/* What sharedlimit_acquire() says besides its return value. */
struct sharedlimit_answer {
    /* 1 (wait): how long each limit that said no holds the message back, ms; 0 for the others */
    int64_t wait_ms[SHAREDLIMIT_KINDS];
    int64_t retry_at;   /* < 0 (unreachable): when to ask again, monotonic ms */
    int64_t down_since; /* < 0 (unreachable): since when Redis could not be used, monotonic ms */
};

struct sharedlimit;

/*
 * Connect to c->limits.shared (c must outlive the result), authenticate with
 * password (NULL: none; copied) and load the script. Errors, placed at the URL in
 * the campaign file and naming it: BLAST_ECONNECT (cannot connect, or it does not
 * answer within SHAREDLIMIT_TIMEOUT_MS), BLAST_EAUTH (the password is refused),
 * BLAST_EPROTO (any other error reply), BLAST_ENOMEM. lg (may be NULL) is told when
 * the connection is lost and when it is back.
 */
int sharedlimit_open(const struct campaign *c, const char *password, const struct log *lg,
                     struct sharedlimit **out, struct blast_error *err);

/*
 * The mailbox providers' paces (core/provider; t is borrowed for the call), kept
 * here too: one limit for each provider with a rate, under the key
 *   blast:{NAME:HASH}:provider:PROVIDER:RATE
 * RATE being its messages a second ("%g"), so that shards that disagree on it (a
 * campaign's providers edited between them, another version's shipped table) never
 * share one. Call once, before the first sharedlimit_acquire(). Errors: BLAST_ENOMEM,
 * BLAST_EINVAL (a name too long for a key).
 */
int sharedlimit_add_providers(struct sharedlimit *s, const struct provider_table *t,
                              struct blast_error *err);

/*
 * One message through relay (an index of c->relays) to domain (an index of
 * c->domain_rates, or -1 when none applies) of provider (an index of the table given
 * to sharedlimit_add_providers(), or -1): 0 when it may go now (every limit that
 * applies counted it; no round trip when none applies), 1 when it must wait (none
 * counted it; a->wait_ms says which and how long), or a negative BLAST_E* when Redis
 * cannot be used now (a->retry_at, a->down_since): no message may go then. Never
 * blocks longer than about two SHAREDLIMIT_TIMEOUT_MS; while Redis is known to be
 * unreachable, returns at once until the back-off's next attempt is due.
 */
int sharedlimit_acquire(struct sharedlimit *s, size_t relay, long domain, long provider,
                        struct sharedlimit_answer *a, struct blast_error *err);

/* The server's answer to PING ("PONG"), for `blast check --connect`. */
int sharedlimit_ping(struct sharedlimit *s, char *out, size_t size, struct blast_error *err);

/* The campaign's URL as given (it holds no secret). */
const char *sharedlimit_url(const struct sharedlimit *s);

/* Close and free; the password copy is wiped. Accepts NULL. */
void sharedlimit_free(struct sharedlimit *s);

#endif
