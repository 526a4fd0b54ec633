/*
 * ratelimit - how fast messages may go: one limiter per global `rate`, per relay
 * `rate` and per recipient domain (`domain_rates`).
 *
 * Each limiter is GCRA (the generic cell rate algorithm, ITU-T I.371): a token
 * bucket kept as a single "theoretical arrival time". A rate of R a second with a
 * burst of B lets a message go at time t when t >= TAT - (B - 1) / R, and then
 * moves TAT to max(TAT, t) + 1 / R (a t within one millisecond tick after TAT
 * counts as TAT, so that waits rounded up to whole milliseconds do not add up to
 * a slower rate). Over any window of W seconds at most
 * R * W + B messages pass; after a pause, at most B go at once.
 *
 * The burst is a tenth of a second's worth, at least 1: 50/s bursts 5, 10/s and
 * anything slower burst 1 (ratelimit_default_burst()).
 *
 * Adaptive slowing (a relay that answers 421 or 4.7.x): ratelimit_slow() halves
 * the current rate, ratelimit_recover() brings it back by a quarter at a time up to
 * the configured one. A limiter without a configured rate can be slowed too: it
 * then starts from the rate observed, and is lifted again once it would reach
 * 1,000/s. Slowing stops at 1/s, or at the configured rate when that is slower.
 *
 * Not thread-safe: the caller holds its own lock (the pool's).
 */
#ifndef BLAST_RATELIMIT_H
#define BLAST_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
    bool limited;        /* false: no limit (yet) */
    double configured;   /* messages a second from the campaign; 0 for none */
    double rate;         /* the current rate (configured, or slowed) */
    double interval_ms;  /* 1000 / rate */
    double tolerance_ms; /* (burst - 1) * interval */
    double tat;          /* theoretical arrival time, monotonic ms */
    unsigned burst;
};

unsigned ratelimit_default_burst(double per_second);

/* A limiter of per_second (0: none) with the default burst. */
void ratelimit_init(struct ratelimit *r, double per_second);

/*
 * A limiter that lets everything go until it is slowed down: ratelimit_slow() then
 * starts from the rate observed, and ratelimit_recover() brings it back up to
 * ceiling (0: lifted at 1,000/s, as for a limiter without a rate), where it stays.
 * For a limit kept elsewhere (sharedlimit) that this process may still slow down.
 */
void ratelimit_init_open(struct ratelimit *r, double ceiling);

/* Milliseconds until a message may go (0: now). */
int64_t ratelimit_wait(const struct ratelimit *r, int64_t now);

/* A message goes now (the caller checked ratelimit_wait() == 0). */
void ratelimit_take(struct ratelimit *r, int64_t now);

/*
 * Halve the rate (observed: the rate seen lately, for a limiter without one), down
 * to 1/s or the configured rate, whichever is slower: never faster than before.
 */
void ratelimit_slow(struct ratelimit *r, double observed);

/* A quarter more, up to the configured rate; an unconfigured one is lifted at 1,000/s. */
void ratelimit_recover(struct ratelimit *r);

#endif
