/*
 * policy - what happens next (docs/delivery.md): to a recipient after an attempt,
 * to a relay after a session, to a relay's pace after it asks to slow down.
 *
 * Owns: retry scheduling (backoff doubling from retry.initial up to retry.max, with
 * ±20% jitter; retry.attempts charged only for deferrals about the recipient;
 * retry.window; the cap on attempts that the sessions, not the recipient, used up),
 * relay health (answers in a row, 421s in a row, sessions out of step in a row;
 * backing off, being taken out for the run), and when a slowed-down relay may speed
 * up again.
 * Does not own: threads, queues, sockets or the rate limiters themselves (pool,
 * ratelimit), nor what a reply means (smtp_reply_outcome() decided that).
 *
 * Every function is pure: the time comes in a struct policy_clock, the jitter's
 * random number as an argument, and the state it changes is the caller's, passed
 * by pointer. No locks: the pool calls it under its own.
 */
#ifndef BLAST_POLICY_H
#define BLAST_POLICY_H

#include "outcome.h"
#include "smtp.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stdint.h>

/* Now, as both clocks say it. */
struct policy_clock {
    int64_t mono_ms;            /* timeutil_mono_ms(): for waits */
    struct timeutil_stamp wall; /* timeutil_now(): for the retry window, across runs */
};

/* The campaign's `retry` (docs/campaign.md). */
struct policy_retry {
    int attempts;    /* deferrals about the recipient before it is failed */
    long initial_ms; /* before the first retry */
    long max_ms;     /* longest wait between retries */
    long window_ms;  /* no retry this long after the first attempt */
};

/* Sessions ended by the relay rather than the recipient may use this many times attempts. */
#define POLICY_SESSION_ATTEMPTS_FACTOR 3

/* What is known of a recipient between attempts; the policy updates it. */
struct policy_recipient {
    int attempts;                /* made, across runs (this one included) */
    int charged;                 /* deferrals that were about the recipient */
    struct timeutil_stamp first; /* its first attempt, across runs; sec == 0: none */
};

enum policy_verdict {
    POLICY_RECORD, /* record status (and detail): its outcome for this run */
    POLICY_RETRY,  /* try again from not_before (monotonic ms), on any session */
};

struct policy_next {
    enum policy_verdict verdict;
    enum outcome_status status; /* POLICY_RECORD: what to record */
    int64_t not_before;         /* POLICY_RETRY */
    bool renew_session;         /* the session takes no more transactions (too many recipients) */
    bool slow_down;             /* the relay asked to slow down (421, 4.7.x) */
    char detail[200];           /* blast's own words for the record, "" for none */
};

/*
 * After an attempt whose SMTP outcome is a (the session's record of the
 * recipient): delivered, failed and unknown are recorded as they are; deferred is
 * retried, after a backoff when the reply was about the recipient (charged) and at
 * once when the session was to blame (421, a lost connection: not charged) or the
 * transaction had too many recipients (RFC 5321 §4.5.3.1.10; renew_session). Failed
 * once retry.attempts charged deferrals or retry.window have passed; left deferred
 * for the next run when the sessions used up POLICY_SESSION_ATTEMPTS_FACTOR times
 * retry.attempts, or when the run is ending. random is the jitter's (any value).
 */
void policy_after_attempt(const struct policy_retry *cfg, const struct smtp_rcpt *a,
                          struct policy_recipient *r, const struct policy_clock *now,
                          bool run_ending, uint32_t random, struct policy_next *out);

/*
 * The wait before the retry that follows the charged-th charged deferral:
 * initial_ms doubled charged - 1 times, at most max_ms, times a jitter from 0.8 to
 * 1.2 taken from random (so that deferred recipients do not all come back at once).
 */
int64_t policy_backoff_ms(const struct policy_retry *cfg, int charged, uint32_t random);

/* RFC 3463 X.7.Y (policy, usually a rate limit) in a 4yz, or a 421: slow the relay down. */
bool policy_slows_down(const struct smtp_reply *r);

/* A slowed relay speeds up a step this long after its last slow-down and its last step. */
#define POLICY_RECOVER_MS 10000

/* May a relay slowed down at last_slow (0: never) speed up a step now? */
bool policy_recover_due(int64_t last_slow, int64_t last_recover, int64_t now_ms);

/* --deadline (monotonic ms, 0: none): has it passed? At the deadline itself it has. */
bool policy_deadline_passed(int64_t deadline_ms, int64_t now_ms);

/* ---- relay health ------------------------------------------------------------------------ */

/* Failures, 421s or sessions out of step in a row before a relay is taken out. */
#define POLICY_RELAY_MAX_FAILS 3
/* The longest a failing relay waits before it is tried again. */
#define POLICY_RELAY_BACKOFF_MAX_MS 60000

struct policy_relay {
    int failures;       /* attempts in a row that got no answer */
    int refusals;       /* 421s in a row */
    int astray;         /* sessions in a row that ended out of step */
    bool dead;          /* taken out for the run */
    int64_t down_until; /* backing off until then (monotonic ms) */
};

enum policy_relay_event {
    POLICY_RELAY_ANSWERED,    /* a reply other than 421: it works */
    POLICY_RELAY_IN_STEP,     /* a session ended that answered in step */
    POLICY_RELAY_REFUSED,     /* a 421 */
    POLICY_RELAY_OUT_OF_STEP, /* a session whose replies fell out of step with its commands */
    POLICY_RELAY_FAILED,      /* it could not be used: no connection, TLS, AUTH, no answer */
    POLICY_RELAY_GIVE_UP,     /* not again in this run: a password refused, AUTH broken */
};

enum policy_relay_verdict {
    POLICY_RELAY_OK,       /* nothing changes (also: it was out already) */
    POLICY_RELAY_BACK_OFF, /* not used until down_until */
    POLICY_RELAY_OUT,      /* taken out for the run (dead) */
};

/*
 * What an event makes of a relay's health. A relay backs off after a failure
 * (1 s, doubling up to POLICY_RELAY_BACKOFF_MAX_MS) and is taken out for the run
 * after POLICY_RELAY_MAX_FAILS in a row when no other relay carries the campaign
 * (others_working), or at once on POLICY_RELAY_GIVE_UP. POLICY_RELAY_MAX_FAILS
 * 421s in a row, or sessions out of step in a row, count as one failure. *why (may
 * be NULL) is set to the reason when the verdict is not OK and the event is not
 * itself a failure ("it keeps answering 421"); NULL otherwise.
 */
enum policy_relay_verdict policy_relay_event(struct policy_relay *h, enum policy_relay_event ev,
                                             bool others_working, int64_t now_ms, const char **why);

/* Counted among the relays carrying the campaign: not out, not failing, not backing off. */
bool policy_relay_working(const struct policy_relay *h, int64_t now_ms);

#endif
