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
    if (!r->limited)
        return;
    r->tat = (r->tat > (double)now ? r->tat : (double)now) + r->interval_ms;
}

void ratelimit_slow(struct ratelimit *r, double observed)
{
    double base = r->limited ? r->rate : observed;

    if (base <= 0)
        base = 1.0;
    base /= 2.0;
    set_rate(r, base < MIN_RATE ? MIN_RATE : base);
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
