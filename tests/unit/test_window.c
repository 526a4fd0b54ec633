/*
 * test_window - send windows: the days and hours as a campaign writes them (and the
 * reasons for refusing them), open or closed at fixed instants in several zones, the
 * next opening across a weekend and over midnight, and the DST gaps and folds of New
 * York, Paris and Lord Howe Island (whose clock moves half an hour).
 */
#include "../../core/window.h"

#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

/* A UTC instant, written as one. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};

    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm);
}

static struct window make(const char *days, const char *hours)
{
    struct window w;
    char why[128] = "";

    memset(&w, 0, sizeof w);
    cr_assert_eq(window_parse_days(days, &w.days, why, sizeof why), 0, "%s: %s", days, why);
    cr_assert_eq(window_parse_hours(hours, &w, why, sizeof why), 0, "%s: %s", hours, why);
    return w;
}

static struct tzone *load(const char *name)
{
    struct blast_error err;
    struct tzone *z = NULL;

    blast_error_clear(&err);
    cr_assert_eq(tzone_load(name, &z, &err), 0, "%s: %s", name, err.text);
    return z;
}

/* window_open at now is open (and *opens now) or closed and opens at `at`. */
static void expect(const struct window *w, const struct tzone *z, int64_t now, bool open,
                   int64_t at)
{
    int64_t opens = -1;
    bool got = window_open(w, z, now, &opens);

    cr_assert_eq(got, open, "%s at %lld: %s", tzone_name(z), (long long)now,
                 got ? "open" : "closed");
    cr_assert_eq(opens, open ? now : at, "%s at %lld: opens %lld, not %lld", tzone_name(z),
                 (long long)now, (long long)opens, (long long)(open ? now : at));
}

static void expect_days(const char *s, uint8_t want)
{
    uint8_t days = 0;
    char why[128] = "";

    cr_assert_eq(window_parse_days(s, &days, why, sizeof why), 0, "%s: %s", s, why);
    cr_assert_eq(days, want, "%s: %#x, not %#x", s, days, want);
}

static void expect_bad_days(const char *s, const char *want)
{
    uint8_t days = 0x55;
    char why[128] = "";

    cr_assert_eq(window_parse_days(s, &days, why, sizeof why), BLAST_EINVAL, "%s", s);
    cr_assert_str_eq(why, want);
    cr_assert_eq(days, 0x55, "unchanged");
}

Test(window, days)
{
    expect_days("mon-fri", 0x1f);
    expect_days("Mon-Fri", 0x1f);
    expect_days("mon,wed,fri", 0x15);
    expect_days("sat-sun", 0x60);
    expect_days("fri-mon", 0x71);
    expect_days("sun-mon", 0x41);
    expect_days("Monday", 0x01);
    expect_days("monday - WEDNESDAY, Sunday", 0x47);
    expect_days("every day", 0x7f);
    expect_days("Daily", 0x7f);
    expect_days("weekdays", 0x1f);
    expect_days("weekends", 0x60);
    expect_days("mon-fri, wed", 0x1f);
    expect_days("tue-tue", 0x02);

    expect_bad_days("", "no days given");
    expect_bad_days("   ", "no days given");
    expect_bad_days(NULL, "no days given");
    expect_bad_days("funday", "unknown day 'funday'");
    expect_bad_days("mon,,fri", "a day is missing");
    expect_bad_days("mon,", "a day is missing");
    expect_bad_days("mon-", "'mon-' is not a range of days (as mon-fri)");
    expect_bad_days("mo-fr", "unknown day 'mo'");
    expect_bad_days("mon-frid", "unknown day 'frid'");
    expect_bad_days("mon fri", "unknown day 'mon fri'");
}

static void expect_hours(const char *s, const char *described)
{
    struct window w;
    char why[128] = "", text[128];

    memset(&w, 0, sizeof w);
    w.days = 0x1f;
    cr_assert_eq(window_parse_hours(s, &w, why, sizeof why), 0, "%s: %s", s, why);
    window_describe(&w, text, sizeof text);
    cr_assert_str_eq(text, described, "%s", s);
}

static void expect_bad_hours(const char *s, const char *want)
{
    struct window w;
    char why[128] = "";

    memset(&w, 0, sizeof w);
    w.nspans = 1;
    w.spans[0] = (struct window_span){60, 120};
    cr_assert_eq(window_parse_hours(s, &w, why, sizeof why), BLAST_EINVAL, "%s", s);
    cr_assert_str_eq(why, want, "%s", s);
    cr_assert(w.nspans == 1 && w.spans[0].from == 60 && w.spans[0].to == 120, "unchanged");
}

Test(window, hours)
{
    expect_hours("09:00-17:00", "Mon-Fri 09:00-17:00");
    expect_hours("9-17", "Mon-Fri 09:00-17:00");
    expect_hours(" 9:30 - 17 ", "Mon-Fri 09:30-17:00");
    expect_hours("14:00-18:00, 08:30-12:00", "Mon-Fri 08:30-12:00, 14:00-18:00");
    expect_hours("22:00-06:00", "Mon-Fri 22:00-06:00");
    expect_hours("00:00-24:00", "Mon-Fri 00:00-24:00");
    expect_hours("22:00-00:00", "Mon-Fri 22:00-24:00");
    expect_hours("09:00-12:00,12:00-13:00", "Mon-Fri 09:00-12:00, 12:00-13:00");
    expect_hours("1-2,3-4,5-6,7-8,9-10,11-12,13-14,15-16",
                 "Mon-Fri 01:00-02:00, 03:00-04:00, 05:00-06:00, 07:00-08:00, 09:00-10:00, "
                 "11:00-12:00, 13:00-14:00, 15:00-16:00");

    expect_bad_hours("", "no hours given");
    expect_bad_hours(NULL, "no hours given");
    expect_bad_hours("9", "'9' is not a span of hours (as 09:00-17:00)");
    expect_bad_hours("25:00-26:00", "'25:00' is not a time of day (00:00 to 24:00)");
    expect_bad_hours("09:60-10:00", "'09:60' is not a time of day (00:00 to 24:00)");
    expect_bad_hours("9:5-10", "'9:5' is not a time of day (00:00 to 24:00)");
    expect_bad_hours("24:30-10", "'24:30' is not a time of day (00:00 to 24:00)");
    expect_bad_hours("nine-five", "'nine' is not a time of day (00:00 to 24:00)");
    expect_bad_hours("9-", "'' is not a time of day (00:00 to 24:00)");
    expect_bad_hours("24:00-06:00", "'24:00-06:00' starts at 24:00, the end of the day");
    expect_bad_hours("09:00-09:00", "'09:00-09:00' is empty");
    expect_bad_hours("00:00-00:00", "'00:00-00:00' is empty");
    expect_bad_hours("9-17,", "a span is missing");
    expect_bad_hours("1-2,3-4,5-6,7-8,9-10,11-12,13-14,15-16,17-18", "more than 8 spans of hours");
    expect_bad_hours("09:00-12:00, 11:00-13:00", "09:00-12:00 and 11:00-13:00 overlap");
    expect_bad_hours("22:00-06:00, 05:00-09:00", "22:00-06:00 and 05:00-09:00 overlap");
    expect_bad_hours("20:00-23:00, 22:00-02:00", "20:00-23:00 and 22:00-02:00 overlap");
}

Test(window, describe)
{
    struct window w = make("fri-mon", "22:00-06:00");
    char text[64];

    window_describe(&w, text, sizeof text);
    cr_assert_str_eq(text, "Fri-Mon 22:00-06:00");
    w = make("mon,wed,fri,sat", "8-12,14-18");
    window_describe(&w, text, sizeof text);
    cr_assert_str_eq(text, "Mon,Wed,Fri-Sat 08:00-12:00, 14:00-18:00");
    w = make("daily", "9-17");
    window_describe(&w, text, sizeof text);
    cr_assert_str_eq(text, "every day 09:00-17:00");
    memset(&w, 0, sizeof w);
    window_describe(&w, text, sizeof text);
    cr_assert_str_eq(text, "every day 00:00-24:00", "a zeroed window: always");
    w = make("sun", "9-17");
    window_describe(&w, text, 8);
    cr_assert_str_eq(text, "Sun 09:", "truncated");
}

Test(window, same_instant_three_zones)
{
    struct window w = make("mon-fri", "09:00-17:00");
    struct tzone *paris = load("Europe/Paris"), *ny = load("America/New_York"),
                 *tokyo = load("Asia/Tokyo");
    int64_t now = utc(2026, 7, 1, 10, 0); /* a Wednesday */

    expect(&w, paris, now, true, 0);                      /* 12:00 CEST */
    expect(&w, ny, now, false, utc(2026, 7, 1, 13, 0));   /* 06:00 EDT: at 09:00 */
    expect(&w, tokyo, now, false, utc(2026, 7, 2, 0, 0)); /* 19:00 JST: Thursday 09:00 */
    expect(&w, paris, utc(2026, 7, 1, 14, 59), true, 0);  /* 16:59 */
    expect(&w, paris, utc(2026, 7, 1, 15, 0), false, utc(2026, 7, 2, 7, 0)); /* 17:00: closed */
    cr_assert(!window_open(&w, paris, utc(2026, 7, 1, 15, 0), NULL));
    tzone_free(paris);
    tzone_free(ny);
    tzone_free(tokyo);
}

Test(window, next_opening_across_a_weekend)
{
    struct window w = make("mon-fri", "09:00-17:00");
    struct tzone *paris = load("Europe/Paris");

    /* Friday 18:00 CEST: Monday 09:00 CEST */
    expect(&w, paris, utc(2026, 7, 3, 16, 0), false, utc(2026, 7, 6, 7, 0));
    expect(&w, paris, utc(2026, 7, 4, 12, 0), false, utc(2026, 7, 6, 7, 0));
    expect(&w, paris, utc(2026, 7, 6, 7, 0), true, 0);
    /* one day a week: found six days and more ahead */
    w = make("thu", "08:00-08:30");
    expect(&w, paris, utc(2026, 7, 2, 6, 30), false, utc(2026, 7, 9, 6, 0));
    tzone_free(paris);
}

Test(window, spans_crossing_midnight)
{
    struct window w = make("fri", "22:00-06:00");
    struct tzone *paris = load("Europe/Paris");

    /* Saturday 03:00: Friday's span, though Saturday is not listed */
    expect(&w, paris, utc(2026, 7, 4, 1, 0), true, 0);
    expect(&w, paris, utc(2026, 7, 4, 3, 59), true, 0);
    /* Saturday 06:00: over; Saturday 22:30: Saturday is not listed; Thursday 23:00 */
    expect(&w, paris, utc(2026, 7, 4, 4, 0), false, utc(2026, 7, 10, 20, 0));
    expect(&w, paris, utc(2026, 7, 4, 20, 30), false, utc(2026, 7, 10, 20, 0));
    expect(&w, paris, utc(2026, 7, 2, 21, 0), false, utc(2026, 7, 3, 20, 0));
    expect(&w, paris, utc(2026, 7, 3, 20, 0), true, 0);
    tzone_free(paris);
}

Test(window, new_york_spring_gap)
{
    struct tzone *ny = load("America/New_York");
    struct window w = make("daily", "02:00-03:00");

    /* 2026-03-08: 02:00 EST is 03:00 EDT (07:00 UTC): the span opens at 03:00 EDT and
     * keeps its hour */
    expect(&w, ny, utc(2026, 3, 8, 5, 0), false, utc(2026, 3, 8, 7, 0));
    expect(&w, ny, utc(2026, 3, 8, 7, 0), true, 0);
    expect(&w, ny, utc(2026, 3, 8, 7, 59), true, 0);
    expect(&w, ny, utc(2026, 3, 8, 8, 0), false, utc(2026, 3, 9, 6, 0));
    /* the day before, as usual: 02:00 EST */
    expect(&w, ny, utc(2026, 3, 7, 6, 0), false, utc(2026, 3, 7, 7, 0));
    /* a span that starts in the gap opens at its end and ends as the clock says */
    w = make("daily", "02:30-04:00");
    expect(&w, ny, utc(2026, 3, 8, 5, 0), false, utc(2026, 3, 8, 7, 0));
    expect(&w, ny, utc(2026, 3, 8, 7, 30), true, 0);
    expect(&w, ny, utc(2026, 3, 8, 8, 0), false, utc(2026, 3, 9, 6, 30));
    /* only on a listed day: Sunday 2026-03-08 not listed, so Monday 02:30 EDT */
    w = make("mon-sat", "02:00-03:00");
    expect(&w, ny, utc(2026, 3, 8, 5, 0), false, utc(2026, 3, 9, 6, 0));
    tzone_free(ny);
}

Test(window, new_york_autumn_fold)
{
    struct tzone *ny = load("America/New_York");
    struct window w = make("daily", "01:00-02:00");

    /* 2026-11-01: 02:00 EDT is 01:00 EST again (06:00 UTC): 01:00-02:00 happens twice,
     * and the window is open both times */
    expect(&w, ny, utc(2026, 11, 1, 4, 0), false, utc(2026, 11, 1, 5, 0));
    expect(&w, ny, utc(2026, 11, 1, 5, 30), true, 0);
    expect(&w, ny, utc(2026, 11, 1, 6, 30), true, 0);
    expect(&w, ny, utc(2026, 11, 1, 7, 0), false, utc(2026, 11, 2, 6, 0));
    /* a span ending in the fold: the clock read as it is, so it opens again when the
     * clock goes back to 01:00 */
    w = make("daily", "00:00-01:30");
    expect(&w, ny, utc(2026, 11, 1, 5, 15), true, 0);
    expect(&w, ny, utc(2026, 11, 1, 5, 45), false, utc(2026, 11, 1, 6, 0));
    expect(&w, ny, utc(2026, 11, 1, 6, 29), true, 0);
    expect(&w, ny, utc(2026, 11, 1, 6, 30), false, utc(2026, 11, 2, 5, 0));
    tzone_free(ny);
}

Test(window, paris_spring_and_autumn)
{
    struct tzone *paris = load("Europe/Paris");
    struct window w = make("sun", "02:00-02:30");

    /* 2026-03-29: 02:00 CET is 03:00 CEST (01:00 UTC); the half hour runs 03:00-03:30 */
    expect(&w, paris, utc(2026, 3, 29, 0, 0), false, utc(2026, 3, 29, 1, 0));
    expect(&w, paris, utc(2026, 3, 29, 1, 29), true, 0);
    expect(&w, paris, utc(2026, 3, 29, 1, 30), false, utc(2026, 4, 5, 0, 0));
    /* 2026-10-25: 03:00 CEST is 02:00 CET (01:00 UTC): 02:00-03:00 twice, two hours */
    w = make("sun", "02:00-03:00");
    expect(&w, paris, utc(2026, 10, 24, 23, 0), false, utc(2026, 10, 25, 0, 0));
    expect(&w, paris, utc(2026, 10, 25, 0, 30), true, 0);
    expect(&w, paris, utc(2026, 10, 25, 1, 30), true, 0);
    expect(&w, paris, utc(2026, 10, 25, 2, 0), false, utc(2026, 11, 1, 1, 0));
    tzone_free(paris);
}

Test(window, lord_howe_half_hour)
{
    struct tzone *lh = load("Australia/Lord_Howe");
    struct window w = make("sun", "02:00-02:15");

    /* 2026-10-04: 02:00 +1030 is 02:30 +11 (15:30 UTC on the 3rd); the quarter hour
     * opens at 02:30 */
    expect(&w, lh, utc(2026, 10, 3, 12, 0), false, utc(2026, 10, 3, 15, 30));
    expect(&w, lh, utc(2026, 10, 3, 15, 44), true, 0);
    expect(&w, lh, utc(2026, 10, 3, 15, 45), false, utc(2026, 10, 10, 15, 0));
    w = make("sun", "02:00-03:00");
    expect(&w, lh, utc(2026, 10, 3, 12, 0), false, utc(2026, 10, 3, 15, 30));
    expect(&w, lh, utc(2026, 10, 3, 15, 59), true, 0);
    expect(&w, lh, utc(2026, 10, 3, 16, 0), false, utc(2026, 10, 10, 15, 0));
    tzone_free(lh);
}

Test(window, every_hour_and_utc)
{
    struct tzone *z = load("UTC");
    struct window w;

    memset(&w, 0, sizeof w);
    expect(&w, z, utc(2026, 1, 1, 0, 0), true, 0);
    w = make("sat-sun", "00:00-24:00");
    expect(&w, z, utc(2026, 1, 2, 23, 59), false, utc(2026, 1, 3, 0, 0)); /* Friday */
    expect(&w, z, utc(2026, 1, 4, 23, 59), true, 0);
    expect(&w, z, utc(2026, 1, 5, 0, 0), false, utc(2026, 1, 10, 0, 0));
    /* days listed, no hours: whole days */
    memset(&w, 0, sizeof w);
    w.days = 0x40;
    expect(&w, z, utc(2026, 1, 4, 12, 0), true, 0);
    expect(&w, z, utc(2026, 1, 5, 12, 0), false, utc(2026, 1, 11, 0, 0));
    tzone_free(z);
}

Test(window, explain)
{
    struct window w = make("mon-fri", "09:00-17:00");
    struct tzone *ny = load("America/New_York");
    char out[400], small[24];
    int64_t opens = 0;

    /* Friday 17:30 EST: Monday 09:00 */
    cr_assert(!window_open(&w, ny, utc(2026, 12, 11, 22, 30), &opens));
    window_explain(&w, ny, opens, out, sizeof out);
    cr_assert_str_eq(out, "send window: closed in America/New_York (Mon-Fri 09:00-17:00); opens "
                          "2026-12-14 09:00 EST (2026-12-14T14:00:00Z)");
    cr_assert_eq(strncmp(out, WINDOW_HELD_PREFIX, strlen(WINDOW_HELD_PREFIX)), 0);
    window_explain(&w, ny, INT64_MAX, out, sizeof out);
    cr_assert_str_eq(out, "send window: closed in America/New_York (Mon-Fri 09:00-17:00); opens "
                          "not within a week");
    /* truncated, never past the buffer */
    window_explain(&w, ny, opens, small, sizeof small);
    cr_assert_str_eq(small, "send window: closed in ");
    tzone_free(ny);
}
