/*
 * ratelimit - GCRA limiters. See ratelimit.h.
 */
#include "ratelimit.h"

#include <math.h>

#define MIN_RATE                                                                                   \
    1.0 /* slowing stops at one a second: below that, repeated 421s take the relay out */

unsigned ratelimit_default_burst(double per_second)
{
    double b = ceil(per_second / 10.0);

    if (b > 1e6) /* a million at once is already no limit at all */
        b = 1e6;
    return b < 1.0 ? 1 : (unsigned)b;
}

static void set_rate(struct ratelimit *r, double per_second)
{
    r->rate = per_second;
    r->interval_ms = 1000.0 / per_second;
    r->burst = ratelimit_default_burst(per_second);
    r->tolerance_ms = (double)(r->burst - 1) * r->interval_ms;
    r->limited = true;
}

void ratelimit_init(struct ratelimit *r, double per_second)
{
    r->limited = false;
    r->configured = per_second > 0 ? per_second : 0;
    r->rate = 0;
    r->interval_ms = 0;
    r->tolerance_ms = 0;
    r->tat = 0;
    r->burst = 0;
    if (per_second > 0)
        set_rate(r, per_second);
}

void ratelimit_init_open(struct ratelimit *r, double ceiling)
{
    ratelimit_init(r, ceiling);
    r->limited = false;
}

int64_t ratelimit_wait(const struct ratelimit *r, int64_t now)
{
    double allowed;

    if (!r->limited)
        return 0;
    allowed = r->tat - r->tolerance_ms;
    return (double)now >= allowed ? 0 : (int64_t)ceil(allowed - (double)now);
}

void ratelimit_take(struct ratelimit *r, int64_t now)
{
    double base;

    if (!r->limited)
        return;
    /*
     * The clock ticks in whole milliseconds and ratelimit_wait() rounds up, so a
     * message that waited for its turn goes up to a tick late. Counting it at its
     * turn (not at now) keeps those fractions from adding up to a slower rate
     * (9/s would otherwise come out 0.8% slow).
     */
    base = (double)now - r->tat < 1.0 ? r->tat : (double)now;
    r->tat = base + r->interval_ms;
}

void ratelimit_slow(struct ratelimit *r, double observed)
{
    double base = r->limited ? r->rate : observed, least = MIN_RATE;

    /* a limit already slower than the floor stays where it is: slowing never speeds up */
    if (r->configured > 0 && r->configured < least)
        least = r->configured;
    if (r->limited && r->rate < least)
        least = r->rate;
    if (base <= 0)
        base = least;
    base /= 2.0;
    set_rate(r, base < least ? least : base);
}

void ratelimit_recover(struct ratelimit *r)
{
    double next;

    if (!r->limited)
        return;
    next = r->rate * 1.25;
    if (r->configured > 0 && next >= r->configured) {
        set_rate(r, r->configured);
        return;
    }
    if (r->configured == 0 && next >= 1000.0) {
        /* fast enough that the limit no longer matters: lift it */
        r->limited = false;
        return;
    }
    set_rate(r, next);
}
