/*
 * breaker - the circuit breaker of a run's first attempts. See breaker.h.
 */
#include "breaker.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void breaker_defaults(struct breaker_options *o)
{
    o->after = 100;
    o->failures = 0.30;
    o->blocks = 0.10;
    o->throttles = 0.50;
}

enum breaker_kind breaker_kind(int code, const char *enhanced)
{
    /* RFC 3463 §3.8: X.7.Y, security or policy status */
    bool policy = enhanced != NULL && enhanced[0] != '\0' && strncmp(enhanced + 1, ".7.", 3) == 0;

    if (code <= 0)
        return BREAKER_NONE;
    if (code == 421 || (code / 100 == 4 && policy))
        return BREAKER_THROTTLE;
    if (code / 100 == 5)
        return policy ? BREAKER_BLOCK : BREAKER_FAILURE;
    return BREAKER_FINE;
}

void breaker_init(struct breaker *b, const struct breaker_options *o)
{
    memset(b, 0, sizeof *b);
    b->o = *o;
}

/* How many of a kind within the window make it certain: ceil(share * after), at least 1. */
static size_t needed(const struct breaker *b, double share)
{
    double n = ceil(share * (double)b->o.after - 1e-9);

    return n < 1 ? 1 : (size_t)n;
}

bool breaker_note(struct breaker *b, int code, const char *enhanced)
{
    static const char *const words[] = {
        [BREAKER_FAILURE] = "refused for good (5yz)",
        [BREAKER_BLOCK] = "blocked by policy (5.7.x)",
        [BREAKER_THROTTLE] = "asked to slow down (421 or 4.7.x)",
    };
    enum breaker_kind k = breaker_kind(code, enhanced);
    double share;

    if (b->o.after == 0 || b->tripped || b->seen >= b->o.after || k == BREAKER_NONE)
        return false;
    b->seen++;
    if (k == BREAKER_FINE)
        return false;
    b->count[k]++;
    share = k == BREAKER_FAILURE ? b->o.failures
            : k == BREAKER_BLOCK ? b->o.blocks
                                 : b->o.throttles;
    if (share <= 0 || b->count[k] < needed(b, share))
        return false;
    b->tripped = true;
    snprintf(b->why, sizeof b->why,
             "%zu of the first %zu attempts were %s, the last %d %s: at least %zu of the first "
             "%zu trip the breaker",
             b->count[k], b->seen, words[k], code, enhanced != NULL ? enhanced : "",
             needed(b, share), b->o.after);
    return true;
}
