/*
 * breaker - the circuit breaker (docs/delivery.md, "The circuit breaker"): the first
 * attempts of a run judged as they come, so that a bad template, a blocked IP or a
 * relay that refuses the campaign stops the run before it burns the whole list.
 *
 * Owns: what an attempt's reply counts as (a refusal for good, 5yz; a policy block,
 * 5.7.x; a throttle, 421 or 4.7.x), the counts over the first `after` attempts, and
 * the decision, with its figures in words. Pure: no clock, no I/O, no locking.
 * Does not own: stopping the run and the exit code (pool, send), the settings
 * (campaign).
 *
 * The decision is taken as early as it is certain: a kind trips the breaker once its
 * count reaches its share of `after` (ceil(share * after)), which no later attempt
 * of the window can undo; after `after` attempts nothing more is judged.
 */
#ifndef BLAST_BREAKER_H
#define BLAST_BREAKER_H

#include <stdbool.h>
#include <stddef.h>

struct breaker_options {
    size_t after;     /* the first attempts judged; 0: the breaker is off */
    double failures;  /* share of refusals for good (5yz) that trips it; 0: not judged */
    double blocks;    /* share of policy blocks (5.7.x) */
    double throttles; /* share of throttles (421, 4.7.x) */
};

/* The defaults: the first 100 attempts; 30% refused, 10% blocked, 50% throttled. */
void breaker_defaults(struct breaker_options *o);

enum breaker_kind {
    BREAKER_FINE,     /* accepted, or a transient refusal that is not a throttle */
    BREAKER_FAILURE,  /* refused for good: 5yz other than 5.7.x */
    BREAKER_BLOCK,    /* refused by policy: 5.7.x */
    BREAKER_THROTTLE, /* slow down: 421, or 4.7.x */
    BREAKER_NONE,     /* no reply (the connection failed): not an attempt it judges */
};

/* What an attempt's reply (code, and its RFC 3463 enhanced code or "") counts as. */
enum breaker_kind breaker_kind(int code, const char *enhanced);

struct breaker {
    struct breaker_options o;
    size_t seen, count[BREAKER_NONE];
    bool tripped;
    char why[256]; /* once tripped: "12 of the first 40 attempts were ..." */
};

void breaker_init(struct breaker *b, const struct breaker_options *o);

/* Count one attempt's reply. True when this one trips the breaker (once, ever). */
bool breaker_note(struct breaker *b, int code, const char *enhanced);

#endif
