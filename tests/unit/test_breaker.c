/*
 * test_breaker - the circuit breaker's judgement of a run's first attempts: what a
 * reply counts as, the decision taken as soon as it is certain and never after the
 * window, each kind with its own share, and the words that say why.
 */
#include "../../core/breaker.h"

#include <criterion/criterion.h>
#include <string.h>

Test(breaker, what_a_reply_counts_as)
{
    cr_assert_eq(breaker_kind(250, "2.0.0"), BREAKER_FINE);
    cr_assert_eq(breaker_kind(451, "4.3.0"), BREAKER_FINE, "transient, not a throttle");
    cr_assert_eq(breaker_kind(451, "4.7.1"), BREAKER_THROTTLE);
    cr_assert_eq(breaker_kind(421, ""), BREAKER_THROTTLE);
    cr_assert_eq(breaker_kind(421, "4.3.2"), BREAKER_THROTTLE);
    cr_assert_eq(breaker_kind(550, "5.1.1"), BREAKER_FAILURE);
    cr_assert_eq(breaker_kind(554, ""), BREAKER_FAILURE);
    cr_assert_eq(breaker_kind(550, "5.7.1"), BREAKER_BLOCK);
    cr_assert_eq(breaker_kind(554, "5.7.26"), BREAKER_BLOCK, "DMARC");
    cr_assert_eq(breaker_kind(0, ""), BREAKER_NONE);
    cr_assert_eq(breaker_kind(550, NULL), BREAKER_FAILURE);
}

static struct breaker fresh(size_t after, double failures, double blocks, double throttles)
{
    struct breaker_options o = {after, failures, blocks, throttles};
    struct breaker b;

    breaker_init(&b, &o);
    return b;
}

Test(breaker, trips_as_soon_as_it_is_certain)
{
    struct breaker b = fresh(100, 0.3, 0.1, 0.5);
    int i;

    for (i = 0; i < 50; i++)
        cr_assert(!breaker_note(&b, 250, "2.0.0"));
    for (i = 0; i < 9; i++)
        cr_assert(!breaker_note(&b, 550, "5.7.1"), "block %d of 10 needed", i + 1);
    cr_assert(breaker_note(&b, 550, "5.7.1"), "the tenth block of the first 100: certain");
    cr_assert(b.tripped);
    cr_assert_str_eq(b.why, "10 of the first 60 attempts were blocked by policy (5.7.x), the "
                            "last 550 5.7.1: at least 10 of the first 100 trip the breaker");
    cr_assert(!breaker_note(&b, 550, "5.7.1"), "once");
}

Test(breaker, nothing_is_judged_after_the_window)
{
    struct breaker b = fresh(20, 0.3, 0.1, 0.5);
    int i;

    for (i = 0; i < 20; i++)
        cr_assert(!breaker_note(&b, 250, ""));
    for (i = 0; i < 100; i++)
        cr_assert(!breaker_note(&b, 550, "5.7.1"));
    cr_assert(!b.tripped);
}

Test(breaker, each_kind_has_its_share)
{
    struct breaker b = fresh(100, 0.3, 0.1, 0.5);
    int i;

    /* 29 refusals and 9 blocks and 49 throttles: none reaches its share */
    for (i = 0; i < 29; i++)
        cr_assert(!breaker_note(&b, 550, "5.1.1"));
    for (i = 0; i < 9; i++)
        cr_assert(!breaker_note(&b, 554, "5.7.1"));
    for (i = 0; i < 49; i++)
        cr_assert(!breaker_note(&b, 451, "4.7.1"));
    /* connections that failed are not attempts it judges */
    for (i = 0; i < 50; i++)
        cr_assert(!breaker_note(&b, 0, ""));
    cr_assert_eq(b.seen, 87);
    cr_assert(breaker_note(&b, 421, ""), "the fiftieth throttle");
    cr_assert(strstr(b.why, "asked to slow down") != NULL, "%s", b.why);
}

Test(breaker, off_and_shares_not_judged)
{
    struct breaker b = fresh(0, 0.3, 0.1, 0.5);
    struct breaker c = fresh(10, 0, 0, 0);
    struct breaker_options d;
    int i;

    for (i = 0; i < 100; i++) {
        cr_assert(!breaker_note(&b, 550, "5.7.1"), "after 0: off");
        cr_assert(!breaker_note(&c, 550, "5.7.1"), "share 0: not judged");
    }
    breaker_defaults(&d);
    cr_assert_eq(d.after, 100);
    cr_assert_float_eq(d.blocks, 0.10, 1e-9);
}

Test(breaker, a_small_window_needs_at_least_one)
{
    struct breaker b = fresh(3, 0.1, 0.1, 0.1);

    cr_assert(breaker_note(&b, 550, "5.1.1"), "ceil(0.3) is 1");
}
