/*
 * test_ratelimit - the GCRA limiter, driven with explicit `now` values (no sleeping,
 * no wall clock): the default burst, unlimited limiters, the burst at the start and
 * after a pause, the bound of R * W + B over a window, and adaptive slowing
 * (ratelimit_slow) and recovery (ratelimit_recover).
 */
#include "../../core/ratelimit.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* A monotonic clock does not start at 0: tests also start at some arbitrary time. */
#define LATER ((int64_t)86400000 * 3 + 12345)

/* Take as many messages as may go at now, at most max; returns how many went. */
static unsigned take_all_now(struct ratelimit *r, int64_t now, unsigned max)
{
    unsigned n = 0;

    while (n < max && ratelimit_wait(r, now) == 0) {
        ratelimit_take(r, now);
        n++;
    }
    return n;
}

/*
 * Send as fast as the limiter lets from start for window_ms: take whenever the wait
 * is 0, otherwise advance the clock by the wait. The times of the messages that went
 * are stored in times (room for cap; NULL: not kept); returns how many went, and the
 * clock in *end.
 */
static size_t run_window(struct ratelimit *r, int64_t start, int64_t window_ms, int64_t *times,
                         size_t cap, int64_t *end)
{
    int64_t now = start;
    size_t n = 0;

    for (;;) {
        int64_t w = ratelimit_wait(r, now);
        cr_assert_geq(w, 0, "negative wait %lld", (long long)w);
        if (w > 0) {
            now += w;
            continue;
        }
        if (now >= start + window_ms)
            break;
        ratelimit_take(r, now);
        if (times != NULL) {
            cr_assert_lt(n, cap, "more messages than room for them");
            times[n] = now;
        }
        n++;
    }
    if (end != NULL)
        *end = now;
    return n;
}

/* The most messages in any window of window_ms among sorted times. */
static size_t busiest(const int64_t *times, size_t n, int64_t window_ms)
{
    size_t i, lo = 0, best = 0;

    for (i = 0; i < n; i++) {
        while (times[i] - times[lo] >= window_ms)
            lo++;
        if (i - lo + 1 > best)
            best = i - lo + 1;
    }
    return best;
}

/* ---- the default burst ------------------------------------------------------------------ */

Test(ratelimit, default_burst_is_a_tenth_of_a_second_at_least_one)
{
    cr_assert_eq(ratelimit_default_burst(50), 5);
    cr_assert_eq(ratelimit_default_burst(100), 10);
    cr_assert_eq(ratelimit_default_burst(20), 2);
    cr_assert_eq(ratelimit_default_burst(10), 1);
}

Test(ratelimit, default_burst_of_slow_rates_is_one)
{
    cr_assert_eq(ratelimit_default_burst(9), 1);
    cr_assert_eq(ratelimit_default_burst(5), 1);
    cr_assert_eq(ratelimit_default_burst(1), 1);
    cr_assert_eq(ratelimit_default_burst(0.5), 1);          /* 30/m */
    cr_assert_eq(ratelimit_default_burst(1.0 / 3600.0), 1); /* 1/h */
    cr_assert_eq(ratelimit_default_burst(0), 1);
}

Test(ratelimit, default_burst_of_large_rates)
{
    cr_assert_eq(ratelimit_default_burst(1000), 100);
    cr_assert_eq(ratelimit_default_burst(5000), 500);
    cr_assert_eq(ratelimit_default_burst(100000), 10000);
    cr_assert_eq(ratelimit_default_burst(1000000), 100000);
}

Test(ratelimit, init_uses_the_default_burst)
{
    static const double rates[] = {0.5, 1, 10, 50, 333, 1000, 100000};
    struct ratelimit r;
    size_t i;

    for (i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        ratelimit_init(&r, rates[i]);
        cr_assert(r.limited);
        cr_assert_eq(r.configured, rates[i]);
        cr_assert_eq(r.rate, rates[i]);
        cr_assert_eq(r.burst, ratelimit_default_burst(rates[i]), "%g/s", rates[i]);
    }
}

/* ---- unlimited ------------------------------------------------------------------------ */

Test(ratelimit, unlimited_never_waits)
{
    static const double rates[] = {0, -5};
    struct ratelimit r;
    size_t i;
    int k;

    for (i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        ratelimit_init(&r, rates[i]);
        cr_assert_not(r.limited);
        cr_assert_eq(r.configured, 0);
        for (k = 0; k < 100000; k++) {
            cr_assert_eq(ratelimit_wait(&r, 0), 0, "message %d waited", k);
            ratelimit_take(&r, 0);
        }
        cr_assert_eq(ratelimit_wait(&r, LATER), 0);
        cr_assert_eq(ratelimit_wait(&r, -1000), 0);
    }
}

/* ---- the burst at the start ----------------------------------------------------------------- */

/* At R/s with burst B, B messages go at once, then the next waits one interval. */
static void check_start(double per_second, int64_t t0)
{
    struct ratelimit r;
    unsigned b = ratelimit_default_burst(per_second);
    int64_t w, interval = (int64_t)ceil(1000.0 / per_second);

    ratelimit_init(&r, per_second);
    cr_assert_eq(take_all_now(&r, t0, 100000), b, "%g/s at %lld: burst %u", per_second,
                 (long long)t0, b);
    w = ratelimit_wait(&r, t0);
    cr_assert_eq(w, interval, "%g/s: the message after the burst waits %lld ms, not %lld",
                 per_second, (long long)w, (long long)interval);
    /* one millisecond early is still too early; on time it goes, and only one */
    cr_assert_gt(ratelimit_wait(&r, t0 + interval - 1), 0);
    cr_assert_eq(take_all_now(&r, t0 + interval, 100000), 1, "%g/s", per_second);
}

Test(ratelimit, burst_at_start_then_one_interval)
{
    static const double rates[] = {1, 2, 4, 5, 10, 20, 25, 40, 50, 100, 200, 250, 500, 1000};
    size_t i;

    for (i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        check_start(rates[i], 0);
        check_start(rates[i], LATER);
    }
}

Test(ratelimit, burst_at_start_exact_numbers)
{
    struct ratelimit r;

    ratelimit_init(&r, 50); /* burst 5, 20 ms apart */
    cr_assert_eq(take_all_now(&r, 0, 100), 5);
    cr_assert_eq(ratelimit_wait(&r, 0), 20);
    cr_assert_eq(ratelimit_wait(&r, 5), 15);
    cr_assert_eq(ratelimit_wait(&r, 20), 0);

    ratelimit_init(&r, 10); /* burst 1, 100 ms apart */
    cr_assert_eq(take_all_now(&r, 0, 100), 1);
    cr_assert_eq(ratelimit_wait(&r, 0), 100);
    cr_assert_eq(ratelimit_wait(&r, 99), 1);
    cr_assert_eq(ratelimit_wait(&r, 100), 0);
}

Test(ratelimit, wait_rounds_up_to_whole_milliseconds)
{
    struct ratelimit r;

    ratelimit_init(&r, 3); /* 333.3 ms apart */
    cr_assert_eq(take_all_now(&r, 0, 100), 1);
    cr_assert_eq(ratelimit_wait(&r, 0), 334, "never wakes up before the message may go");
    cr_assert_eq(ratelimit_wait(&r, 334), 0);
}

Test(ratelimit, slow_rates_in_messages_per_minute_and_hour)
{
    struct ratelimit r;

    ratelimit_init(&r, 30.0 / 60.0); /* 30/m: 2 s apart */
    cr_assert_eq(take_all_now(&r, LATER, 100), 1);
    cr_assert_eq(ratelimit_wait(&r, LATER), 2000);

    ratelimit_init(&r, 1.0 / 3600.0); /* 1/h */
    cr_assert_eq(take_all_now(&r, LATER, 100), 1);
    cr_assert_eq(ratelimit_wait(&r, LATER), 3600000);
    cr_assert_eq(ratelimit_wait(&r, LATER + 3600000), 0);
}

/* ---- over a window ---------------------------------------------------------------------- */

/* Over W seconds at full speed: at least R * W, at most R * W + B, in any window too. */
static void check_window(double per_second, int seconds, int64_t t0)
{
    struct ratelimit r;
    unsigned b = ratelimit_default_burst(per_second);
    double most = per_second * seconds + b, least = per_second * seconds;
    size_t cap = (size_t)most + 16, n, peak;
    int64_t *times = malloc(cap * sizeof *times), end;

    cr_assert_not_null(times);
    ratelimit_init(&r, per_second);
    n = run_window(&r, t0, (int64_t)seconds * 1000, times, cap, &end);
    cr_assert_leq((double)n, most, "%g/s over %d s: %zu messages, more than R*W+B = %g", per_second,
                  seconds, n, most);
    cr_assert_geq((double)n, least, "%g/s over %d s: %zu messages, fewer than R*W = %g", per_second,
                  seconds, n, least);
    /* the bound holds for any window of W seconds, not only the first */
    peak = busiest(times, n, (int64_t)seconds * 1000);
    cr_assert_leq((double)peak, most, "%g/s: %zu messages in some %d s window", per_second, peak,
                  seconds);
    /* and for any single second */
    peak = busiest(times, n, 1000);
    cr_assert_leq((double)peak, per_second + b, "%g/s: %zu messages in some second", per_second,
                  peak);
    free(times);
}

Test(ratelimit, window_holds_between_rw_and_rw_plus_burst)
{
    static const double rates[] = {1, 2, 5, 10, 20, 25, 30, 50, 100, 125, 250, 333, 1000};
    static const int windows[] = {1, 3, 10, 60};
    size_t i, k;

    for (i = 0; i < sizeof rates / sizeof rates[0]; i++)
        for (k = 0; k < sizeof windows / sizeof windows[0]; k++) {
            check_window(rates[i], windows[k], 0);
            check_window(rates[i], windows[k], LATER);
        }
}

Test(ratelimit, window_of_a_slow_rate)
{
    check_window(0.5, 60, LATER);    /* 30/m over a minute: 30 or 31 */
    check_window(0.5, 600, LATER);   /* over ten minutes: 300 or 301 */
    check_window(0.25, 3600, 0);     /* 15/m over an hour */
    check_window(1.0 / 60, 3600, 0); /* 1/m over an hour */
}

Test(ratelimit, waiting_never_goes_backwards_or_lets_early_messages_go)
{
    struct ratelimit r;
    int64_t now = LATER, w;
    int k;

    ratelimit_init(&r, 50);
    for (k = 0; k < 1000; k++) {
        w = ratelimit_wait(&r, now);
        if (w > 0) {
            /* asking again a moment later waits less, never more */
            cr_assert_leq(ratelimit_wait(&r, now + 1), w);
            cr_assert_gt(ratelimit_wait(&r, now + w - 1), 0, "woke up early");
            now += w;
            continue;
        }
        ratelimit_take(&r, now);
    }
}

/* ---- after a pause ------------------------------------------------------------------------ */

Test(ratelimit, after_an_idle_pause_at_most_a_burst_goes_at_once)
{
    static const double rates[] = {1, 10, 50, 100, 1000};
    static const int64_t pauses[] = {1, 50, 1000, 60000, 3600000};
    size_t i, k;

    for (i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        unsigned b = ratelimit_default_burst(rates[i]);
        for (k = 0; k < sizeof pauses / sizeof pauses[0]; k++) {
            struct ratelimit r;
            int64_t end, then;
            unsigned n;

            ratelimit_init(&r, rates[i]);
            /* busy for a second, then nothing for a while */
            run_window(&r, LATER, 1000, NULL, 0, &end);
            then = end + pauses[k];
            n = take_all_now(&r, then, 1000000);
            cr_assert_leq(n, b, "%g/s, pause of %lld ms: %u at once, burst %u", rates[i],
                          (long long)pauses[k], n, b);
        }
    }
}

Test(ratelimit, after_a_long_pause_the_whole_burst_is_back)
{
    struct ratelimit r;
    int64_t end;

    ratelimit_init(&r, 50);
    run_window(&r, 0, 2000, NULL, 0, &end);
    cr_assert_eq(take_all_now(&r, end + 60000, 1000), 5);
    cr_assert_eq(ratelimit_wait(&r, end + 60000), 20);
}

/*
 * With a burst of 1 and an interval that is not a whole number of milliseconds (3/s,
 * 7/s, 9/s), each wait is rounded up and the limiter has no tolerance to absorb the
 * extra fraction, so the documented upper bound holds but the pace is a little slow.
 */
Test(ratelimit, window_upper_bound_with_a_fractional_interval)
{
    static const double rates[] = {3, 6, 7, 9};
    size_t i;

    for (i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        struct ratelimit r;
        size_t n;

        ratelimit_init(&r, rates[i]);
        n = run_window(&r, 0, 60000, NULL, 0, NULL);
        cr_assert_leq((double)n, rates[i] * 60 + r.burst, "%g/s: %zu in 60 s", rates[i], n);
    }
}

/* waits round up to whole milliseconds: the fractions must not add up to a slower rate */
Test(ratelimit, window_lower_bound_with_a_fractional_interval)
{
    check_window(9, 60, 0);
    check_window(7, 600, 0);
    check_window(3, 600, 0);
}

/* ---- slowing down and recovering -------------------------------------------------------- */

Test(ratelimit, slow_halves_the_rate_down_to_one_a_second)
{
    struct ratelimit r;

    ratelimit_init(&r, 100);
    ratelimit_slow(&r, 0);
    cr_assert(r.limited);
    cr_assert_float_eq(r.rate, 50, 1e-9);
    cr_assert_eq(r.configured, 100, "slowing keeps the configured rate");
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 25, 1e-9);
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 12.5, 1e-9);
    ratelimit_slow(&r, 0);
    ratelimit_slow(&r, 0);
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 1.5625, 1e-9);
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 1, 1e-9, "floor: one a second");
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 1, 1e-9);
    cr_assert_eq(r.configured, 100);
}

Test(ratelimit, slow_ignores_the_observed_rate_when_there_is_a_rate)
{
    struct ratelimit r;

    ratelimit_init(&r, 40);
    ratelimit_slow(&r, 1000);
    cr_assert_float_eq(r.rate, 20, 1e-9);
    ratelimit_slow(&r, 3);
    cr_assert_float_eq(r.rate, 10, 1e-9);
}

Test(ratelimit, slowed_limiter_paces_at_the_new_rate_with_its_burst)
{
    struct ratelimit r;
    int64_t end;
    size_t n;

    ratelimit_init(&r, 100); /* burst 10 */
    ratelimit_slow(&r, 0);   /* 50/s: burst 5, 20 ms apart */
    cr_assert_eq(r.burst, 5);
    cr_assert_eq(take_all_now(&r, LATER, 1000), 5);
    cr_assert_eq(ratelimit_wait(&r, LATER), 20);
    n = run_window(&r, LATER + 20, 10000, NULL, 0, &end);
    cr_assert_geq(n, 500);
    cr_assert_leq(n, 500 + 5);
}

Test(ratelimit, slow_an_unconfigured_limiter_starts_from_the_observed_rate)
{
    struct ratelimit r;

    ratelimit_init(&r, 0);
    cr_assert_not(r.limited);
    ratelimit_slow(&r, 40);
    cr_assert(r.limited);
    cr_assert_eq(r.configured, 0, "still without a configured rate");
    cr_assert_float_eq(r.rate, 20, 1e-9);
    cr_assert_eq(r.burst, 2);
    cr_assert_eq(take_all_now(&r, 0, 1000), 2);
    cr_assert_eq(ratelimit_wait(&r, 0), 50);
    /* slowed again: from its current rate, the observed one no longer counts */
    ratelimit_slow(&r, 1000);
    cr_assert_float_eq(r.rate, 10, 1e-9);
}

Test(ratelimit, slow_an_unconfigured_limiter_floor_is_one_a_second)
{
    struct ratelimit r;

    ratelimit_init(&r, 0);
    ratelimit_slow(&r, 1.5);
    cr_assert(r.limited);
    cr_assert_float_eq(r.rate, 1, 1e-9);

    ratelimit_init(&r, 0);
    ratelimit_slow(&r, 0); /* nothing observed yet */
    cr_assert(r.limited);
    cr_assert_float_eq(r.rate, 1, 1e-9);
}

/* 30/m slowed by a 421 must not become 60/m: the floor never speeds a limit up */
Test(ratelimit, slow_never_speeds_up_a_limit_slower_than_the_floor)
{
    struct ratelimit r;

    ratelimit_init(&r, 0.5);
    ratelimit_slow(&r, 0);
    cr_assert(r.limited);
    cr_assert_float_eq(r.rate, 0.5, 1e-9);
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 0.5, 1e-9);
    ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 0.5, 1e-9);

    ratelimit_init(&r, 1.5);
    ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 1, 1e-9, "1.5/s halves down to the 1/s floor");
}

Test(ratelimit, recover_raises_by_a_quarter_up_to_the_configured_rate)
{
    struct ratelimit r;

    ratelimit_init(&r, 100);
    ratelimit_slow(&r, 0); /* 50 */
    ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 62.5, 1e-9);
    ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 78.125, 1e-9);
    ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 97.65625, 1e-9);
    ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 100, 1e-9, "not above the configured rate");
    cr_assert_eq(r.burst, 10);
    ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 100, 1e-9);
    cr_assert(r.limited, "a configured limiter stays limited");
}

Test(ratelimit, recover_a_limiter_that_was_never_slowed_changes_nothing)
{
    struct ratelimit r;

    ratelimit_init(&r, 50);
    ratelimit_recover(&r);
    cr_assert(r.limited);
    cr_assert_float_eq(r.rate, 50, 1e-9);
    cr_assert_eq(r.burst, 5);

    ratelimit_init(&r, 0);
    ratelimit_recover(&r);
    cr_assert_not(r.limited);
    cr_assert_eq(ratelimit_wait(&r, 0), 0);
}

Test(ratelimit, recover_an_unconfigured_limiter_becomes_unlimited_again)
{
    struct ratelimit r;
    double before;
    int steps = 0;

    ratelimit_init(&r, 0);
    ratelimit_slow(&r, 40); /* 20/s */
    while (r.limited) {
        cr_assert_lt(steps, 100, "still limited at %g/s after %d recoveries", r.rate, steps);
        before = r.rate;
        ratelimit_recover(&r);
        steps++;
        if (r.limited)
            cr_assert_float_eq(r.rate, before * 1.25, 1e-6, "step %d", steps);
    }
    cr_assert_eq(r.configured, 0);
    cr_assert_eq(take_all_now(&r, 0, 100000), 100000, "unlimited: nothing waits");
}

Test(ratelimit, slow_then_recover_to_configured_paces_as_configured)
{
    struct ratelimit r;
    size_t n;
    int k;

    ratelimit_init(&r, 50);
    for (k = 0; k < 10; k++)
        ratelimit_slow(&r, 0);
    cr_assert_float_eq(r.rate, 1, 1e-9);
    for (k = 0; k < 100 && r.rate < 50; k++)
        ratelimit_recover(&r);
    cr_assert_float_eq(r.rate, 50, 1e-9);
    cr_assert_eq(r.burst, 5);
    /* what was scheduled at 1/s is long past: a fresh 10 s runs at 50/s */
    n = run_window(&r, LATER, 10000, NULL, 0, NULL);
    cr_assert_geq(n, 500);
    cr_assert_leq(n, 505);
}
