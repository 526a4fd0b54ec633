/*
 * test_timeutil - the monotonic clock and the two date formats: RFC 5322 §3.3
 * (local time with its offset) and RFC 3339 (UTC, milliseconds).
 */
#include "../../core/timeutil.h"

#include <criterion/criterion.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 2023-11-14T22:13:20Z, a Tuesday */
#define T0 ((time_t)1700000000)

static void use_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static bool matches(const char *pattern, const char *s)
{
    regex_t re;
    int rc;

    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0, "bad pattern %s", pattern);
    rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

/* RFC 5322 §3.3 date-time without the obsolete forms or comments. */
static const char rfc5322_shape[] =
    "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    "[0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [+-][0-9]{4}$";

Test(timeutil, rfc5322_in_utc)
{
    char out[64];

    use_tz("UTC0");
    timeutil_rfc5322(T0, out, sizeof out);
    cr_assert_str_eq(out, "Tue, 14 Nov 2023 22:13:20 +0000");
    cr_assert(matches(rfc5322_shape, out), "%s", out);
}

Test(timeutil, rfc5322_positive_offset_with_minutes)
{
    char out[64];

    use_tz("IST-5:30"); /* POSIX sign is inverted: UTC+05:30 */
    timeutil_rfc5322(T0, out, sizeof out);
    cr_assert_str_eq(out, "Wed, 15 Nov 2023 03:43:20 +0530");
}

Test(timeutil, rfc5322_negative_offset)
{
    char out[64];

    use_tz("BRT3");
    timeutil_rfc5322(T0, out, sizeof out);
    cr_assert_str_eq(out, "Tue, 14 Nov 2023 19:13:20 -0300");
}

Test(timeutil, rfc5322_single_digit_day_and_epoch)
{
    char out[64];

    use_tz("UTC0");
    timeutil_rfc5322(0, out, sizeof out);
    cr_assert(matches(rfc5322_shape, out), "%s", out);
    cr_assert(strcmp(out, "Thu, 1 Jan 1970 00:00:00 +0000") == 0 ||
                  strcmp(out, "Thu, 01 Jan 1970 00:00:00 +0000") == 0,
              "%s", out);
}

Test(timeutil, rfc5322_shape_of_now_in_any_zone)
{
    static const char *const zones[] = {"UTC0", "CET-1CEST,M3.5.0,M10.5.0/3", "NPT-5:45", "HST10",
                                        "AEST-10AEDT,M10.1.0,M4.1.0/3"};
    char out[64];
    size_t i;

    for (i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        use_tz(zones[i]);
        timeutil_rfc5322(time(NULL), out, sizeof out);
        cr_assert(matches(rfc5322_shape, out), "TZ=%s gave '%s'", zones[i], out);
        cr_assert_lt(strlen(out), 40, "the header says 40 bytes are enough");
    }
}

Test(timeutil, rfc3339_utc_with_milliseconds)
{
    struct timeutil_stamp t = {T0, 123456};
    char out[40];

    use_tz("IST-5:30"); /* the local zone must not matter */
    timeutil_rfc3339(t, out, sizeof out);
    cr_assert_str_eq(out, "2023-11-14T22:13:20.123Z");
}

Test(timeutil, rfc3339_shape_and_zero_padding)
{
    struct timeutil_stamp t = {(time_t)946782245, 7000}; /* 2000-01-02T03:04:05.007Z */
    char out[40];

    timeutil_rfc3339(t, out, sizeof out);
    cr_assert_str_eq(out, "2000-01-02T03:04:05.007Z");
    t.usec = 999999;
    timeutil_rfc3339(t, out, sizeof out);
    cr_assert_str_eq(out, "2000-01-02T03:04:05.999Z");
    t = timeutil_now();
    timeutil_rfc3339(t, out, sizeof out);
    cr_assert(
        matches("^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z$",
                out),
        "%s", out);
}

Test(timeutil, now_agrees_with_time)
{
    struct timeutil_stamp s = timeutil_now();
    time_t t = time(NULL);

    /* time() reads the kernel's coarse clock, up to a tick behind CLOCK_REALTIME:
     * across a second's boundary it may still say the second before */
    cr_assert_leq(s.sec, t + 1);
    cr_assert_geq(s.sec, t - 1);
    cr_assert_geq(s.usec, 0);
    cr_assert_lt(s.usec, 1000000);
}

Test(timeutil, monotonic_clock_advances_in_milliseconds)
{
    int64_t a = timeutil_mono_ms(), b;

    usleep(30 * 1000);
    b = timeutil_mono_ms();
    cr_assert_geq(b - a, 25, "slept 30 ms, clock moved %lld ms", (long long)(b - a));
    cr_assert_lt(b - a, 5000);
}

/* xorshift: the same samples on every run. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * The form timeutil_rfc3339() writes is read without sscanf() and timegm(), and
 * must read as they read it: every field from 0 to its largest two (or four)
 * digits, out-of-range ones carried over as timegm() carries them.
 */
Test(timeutil, rfc3339_parse_reads_as_timegm_does)
{
    static const int edges[][7] = {
        {1970, 1, 1, 0, 0, 0, 0},       {1969, 12, 31, 23, 59, 59, 0},
        {2026, 12, 5, 10, 51, 42, 945}, {2024, 2, 29, 12, 0, 0, 1},
        {2023, 2, 29, 0, 0, 0, 0},      {2000, 0, 0, 0, 0, 0, 0},
        {0, 1, 1, 0, 0, 0, 0},          {9999, 99, 99, 99, 99, 99, 999},
        {1900, 3, 1, 0, 0, 60, 0},      {1600, 13, 32, 24, 60, 61, 5},
    };
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    size_t i, n = sizeof edges / sizeof edges[0];

    use_tz("IST-5:30"); /* the local zone must not matter */
    for (i = 0; i < n + 200000; i++) {
        int f[7];
        char text[40];
        struct tm tm;
        struct timeutil_stamp got = {0, 0};
        time_t want;
        int rc;
        if (i < n) {
            memcpy(f, edges[i], sizeof f);
        } else {
            f[0] = (int)(next_random(&seed) % 10000);
            f[1] = (int)(next_random(&seed) % (i % 4 ? 13 : 100));
            f[2] = (int)(next_random(&seed) % (i % 4 ? 32 : 100));
            f[3] = (int)(next_random(&seed) % (i % 4 ? 24 : 100));
            f[4] = (int)(next_random(&seed) % (i % 4 ? 60 : 100));
            f[5] = (int)(next_random(&seed) % (i % 4 ? 61 : 100));
            f[6] = (int)(next_random(&seed) % 1000);
        }
        snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", f[0], f[1], f[2], f[3],
                 f[4], f[5], f[6]);
        memset(&tm, 0, sizeof tm);
        tm.tm_year = f[0] - 1900;
        tm.tm_mon = f[1] - 1;
        tm.tm_mday = f[2];
        tm.tm_hour = f[3];
        tm.tm_min = f[4];
        tm.tm_sec = f[5];
        want = timegm(&tm);
        rc = timeutil_parse_rfc3339(text, &got);
        cr_assert_eq(rc, want == (time_t)-1 ? -1 : 0, "%s", text);
        cr_assert_eq(got.sec, want, "%s: %lld, timegm %lld", text, (long long)got.sec,
                     (long long)want);
        cr_assert_eq(got.usec, f[6] * 1000L, "%s", text);
    }
}

/* Other forms sscanf() took are still taken, as before. */
Test(timeutil, rfc3339_parse_other_forms)
{
    struct timeutil_stamp t;

    cr_assert_eq(timeutil_parse_rfc3339("2023-11-14T22:13:20.123Z", &t), 0);
    cr_assert_eq(t.sec, T0);
    cr_assert_eq(t.usec, 123000);
    cr_assert_eq(timeutil_parse_rfc3339("2023-11-14T22:13:20.5Z", &t), 0);
    cr_assert_eq(t.sec, T0);
    cr_assert_eq(t.usec, 5000, "as sscanf() reads it");
    cr_assert_eq(timeutil_parse_rfc3339("2023-11-14T22:13:20Z", &t), -1);
    cr_assert_eq(timeutil_parse_rfc3339("2023-11-14T22:13:20.123Zx", &t), -1);
    cr_assert_eq(timeutil_parse_rfc3339("2023-11-14T22:13:20.123+", &t), -1);
    cr_assert_eq(timeutil_parse_rfc3339("2023-11-14 22:13:20.123Z", &t), -1);
    cr_assert_eq(timeutil_parse_rfc3339("", &t), -1);
    cr_assert_eq(timeutil_parse_rfc3339(NULL, &t), -1);
}

Test(timeutil, days_from_civil)
{
    cr_assert_eq(timeutil_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(timeutil_days_from_civil(2026, 12, 1), 20788);
    cr_assert_eq(timeutil_days_from_civil(2000, 2, 29), 11016);
    cr_assert_eq(timeutil_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(timeutil_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(timeutil_days_from_civil(1900, 3, 1), -25508);
    /* a day out of range carries over */
    cr_assert_eq(timeutil_days_from_civil(2026, 12, 32), timeutil_days_from_civil(2027, 1, 1));
}
