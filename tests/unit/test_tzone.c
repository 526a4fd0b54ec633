/*
 * test_tzone - time zones from TZif files against the C library's own reading of the
 * same files (TZ and localtime_r, which Criterion's process per test makes safe to
 * set), from 1900 to 2100 and around every transition; local times back to instants
 * through DST gaps and folds; the names refused; damaged files; the process's zone;
 * the cache.
 */
#include "../../core/tzone.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY 86400

static struct tzone *load(const char *name)
{
    struct blast_error err;
    struct tzone *z = NULL;

    blast_error_clear(&err);
    cr_assert_eq(tzone_load(name, &z, &err), 0, "%s: %s", name, err.text);
    cr_assert_not_null(z);
    return z;
}

/* tzone_local(z, t) and localtime_r(t) under TZ agree in every field; 1 when they do. */
static int same_as_libc(const struct tzone *z, int64_t t)
{
    struct tzone_tm a;
    struct tm b;
    time_t tt = (time_t)t;

    tzone_local(z, t, &a);
    cr_assert_not_null(localtime_r(&tt, &b));
    cr_assert(a.year == b.tm_year + 1900 && a.month == b.tm_mon + 1 && a.day == b.tm_mday &&
                  a.hour == b.tm_hour && a.minute == b.tm_min && a.second == b.tm_sec &&
                  a.wday == b.tm_wday && a.gmtoff == b.tm_gmtoff && a.isdst == (b.tm_isdst > 0) &&
                  strcmp(a.abbr, b.tm_zone) == 0,
              "%s at %lld: %04d-%02d-%02d %02d:%02d:%02d wday %d %+d %s dst %d, libc "
              "%04d-%02d-%02d %02d:%02d:%02d wday %d %+ld %s dst %d",
              tzone_name(z), (long long)t, a.year, a.month, a.day, a.hour, a.minute, a.second,
              a.wday, a.gmtoff, a.abbr, a.isdst, b.tm_year + 1900, b.tm_mon + 1, b.tm_mday,
              b.tm_hour, b.tm_min, b.tm_sec, b.tm_wday, b.tm_gmtoff, b.tm_zone, b.tm_isdst);
    return 1;
}

/*
 * 1900 to 2100: every 5 days and a bit (so the hour of day moves), and around every
 * change the zone reports, which are also checked against the C library: the offset
 * either side of each must differ from what it would be without the change, or the
 * abbreviation or DST flag must.
 */
static void compare_zone(const char *name)
{
    int64_t from = -2208988800LL /* 1900-01-01 */, to = 4102444800LL /* 2100-01-01 */, t;
    static const int64_t around[] = {-3 * 3600, -3600, -1, 0, 1, 3600, 3 * 3600};
    struct tzone *z = load(name);
    size_t i, changes = 0, checks = 0;

    cr_assert_eq(setenv("TZ", name, 1), 0);
    tzset();
    for (t = from; t < to; t += 5 * DAY + 3607)
        checks += same_as_libc(z, t);
    for (t = tzone_next_change(z, from); t < to; t = tzone_next_change(z, t)) {
        changes++;
        for (i = 0; i < sizeof around / sizeof around[0]; i++)
            checks += same_as_libc(z, t + around[i]);
    }
    cr_log_info("%s: %zu changes, %zu instants", name, changes, checks);
    tzone_free(z);
}

Test(tzone, europe_paris)
{
    compare_zone("Europe/Paris");
}

Test(tzone, america_new_york)
{
    compare_zone("America/New_York");
}

Test(tzone, america_sao_paulo)
{
    compare_zone("America/Sao_Paulo");
}

Test(tzone, australia_lord_howe_half_hour_dst)
{
    compare_zone("Australia/Lord_Howe");
}

Test(tzone, asia_kolkata)
{
    compare_zone("Asia/Kolkata");
}

Test(tzone, pacific_chatham)
{
    compare_zone("Pacific/Chatham");
}

Test(tzone, africa_casablanca)
{
    compare_zone("Africa/Casablanca");
}

Test(tzone, america_st_johns)
{
    compare_zone("America/St_Johns");
}

Test(tzone, europe_dublin_negative_dst)
{
    compare_zone("Europe/Dublin");
}

Test(tzone, pacific_kiritimati)
{
    compare_zone("Pacific/Kiritimati");
}

Test(tzone, utc_and_etc)
{
    compare_zone("UTC");
    compare_zone("Etc/GMT+5");
    compare_zone("Etc/GMT-14");
}

Test(tzone, more_zones)
{
    static const char *const names[] = {
        "Europe/London",    "Europe/Moscow", "America/Los_Angeles", "America/Santiago",
        "Asia/Tokyo",       "Asia/Tehran",   "Asia/Kathmandu",      "Australia/Adelaide",
        "Pacific/Auckland", "Pacific/Apia",  "America/Havana",      "Antarctica/Troll",
        "America/Godthab",  "Asia/Gaza",     "Africa/Cairo",        "EST5EDT",
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        compare_zone(names[i]);
}

static void expect_local(const struct tzone *z, int64_t t, const char *want)
{
    struct tzone_tm tm;
    char got[64];

    tzone_local(z, t, &tm);
    snprintf(got, sizeof got, "%04d-%02d-%02d %02d:%02d:%02d %s", tm.year, tm.month, tm.day,
             tm.hour, tm.minute, tm.second, tm.abbr);
    cr_assert_str_eq(got, want, "%s at %lld", tzone_name(z), (long long)t);
}

Test(tzone, utc_of_local_times_round_trips)
{
    static const char *const names[] = {"Europe/Paris", "America/New_York", "Australia/Lord_Howe",
                                        "Pacific/Chatham", "Asia/Kolkata"};
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct tzone *z = load(names[i]);
        int64_t t;

        /* every instant on a whole minute: the first reading of its wall clock is itself,
         * or an earlier one when the clock reads it twice (a fold) */
        for (t = 946684800 /* 2000 */; t < 4102444800LL; t += 3 * DAY + 17 * 60) {
            struct tzone_tm tm;
            int64_t back;

            tzone_local(z, t, &tm);
            back = tzone_utc(z, tm.year, tm.month, tm.day, tm.hour, tm.minute);
            cr_assert(back == t || (back < t && back > t - 3 * 3600), "%s %lld -> %lld", names[i],
                      (long long)t, (long long)back);
            if (back != t) {
                struct tzone_tm again;

                tzone_local(z, back, &again);
                cr_assert(again.hour == tm.hour && again.minute == tm.minute);
            }
        }
        tzone_free(z);
    }
}

Test(tzone, new_york_gap_and_fold)
{
    struct tzone *z = load("America/New_York");

    /* 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist: 03:00 EDT */
    cr_assert_eq(tzone_utc(z, 2026, 3, 8, 2, 30), 1772953200);
    expect_local(z, 1772953200, "2026-03-08 03:00:00 EDT");
    cr_assert_eq(tzone_utc(z, 2026, 3, 8, 2, 0), 1772953200);
    cr_assert_eq(tzone_utc(z, 2026, 3, 8, 1, 59), 1772953200 - 60);
    cr_assert_eq(tzone_utc(z, 2026, 3, 8, 3, 0), 1772953200);
    /* 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice: the first, EDT */
    cr_assert_eq(tzone_utc(z, 2026, 11, 1, 1, 30), 1793511000);
    expect_local(z, 1793511000, "2026-11-01 01:30:00 EDT");
    expect_local(z, 1793511000 + 3600, "2026-11-01 01:30:00 EST");
    cr_assert_eq(tzone_utc(z, 2026, 11, 1, 2, 0), 1793516400, "02:00 EST, once");
    /* fields out of range carry over */
    cr_assert_eq(tzone_utc(z, 2026, 12, 32, 0, 0), tzone_utc(z, 2027, 1, 1, 0, 0));
    cr_assert_eq(tzone_utc(z, 2026, 13, 1, 24, 0), tzone_utc(z, 2027, 1, 2, 0, 0));
    cr_assert_eq(tzone_utc(z, 2026, 0, 1, 0, -1), tzone_utc(z, 2025, 11, 30, 23, 59));
    tzone_free(z);
}

Test(tzone, far_future_follows_the_footer_rule)
{
    struct tzone *z = load("Europe/Paris");

    /* beyond any transition a file holds: the TZ string of the footer */
    expect_local(z, tzone_utc(z, 2200, 7, 1, 12, 0), "2200-07-01 12:00:00 CEST");
    expect_local(z, tzone_utc(z, 2200, 1, 1, 12, 0), "2200-01-01 12:00:00 CET");
    /* 2200-03-30 is the last Sunday of March: 02:00 CET is 03:00 CEST */
    cr_assert_eq(tzone_utc(z, 2200, 3, 30, 2, 30), tzone_utc(z, 2200, 3, 30, 3, 0));
    tzone_free(z);
}

Test(tzone, instants_far_away_are_clamped)
{
    struct tzone *z = load("America/New_York");
    struct tzone_tm tm;

    tzone_local(z, INT64_MAX, &tm);
    cr_assert(tm.year > 1000000000 && tm.month >= 1 && tm.month <= 12);
    tzone_local(z, INT64_MIN, &tm);
    cr_assert(tm.year < -1000000000 && tm.day >= 1 && tm.day <= 31);
    cr_assert(tzone_utc(z, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX) > 0);
    cr_assert(tzone_utc(z, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN) < 0);
    cr_assert_eq(tzone_next_change(z, INT64_MAX), INT64_MAX);
    tzone_free(z);
}

static void expect_refused(const char *name, const char *text)
{
    struct blast_error err;
    struct tzone *z = (struct tzone *)1;

    blast_error_clear(&err);
    cr_assert_eq(tzone_load(name, &z, &err), BLAST_EINVAL, "%s", name != NULL ? name : "NULL");
    cr_assert_null(z);
    cr_assert_str_eq(err.text, text);
}

Test(tzone, names_refused)
{
    expect_refused("Europe/Pariss", "unknown time zone 'Europe/Pariss'");
    expect_refused("", "unknown time zone ''");
    expect_refused(NULL, "unknown time zone ''");
    expect_refused("../etc/passwd", "unknown time zone '../etc/passwd'");
    expect_refused("Europe/../../../etc/passwd", "unknown time zone 'Europe/../../../etc/passwd'");
    expect_refused("/etc/localtime", "unknown time zone '/etc/localtime'");
    expect_refused("Europe", "unknown time zone 'Europe'");
    expect_refused("Europe/Paris ", "unknown time zone 'Europe/Paris '");
    expect_refused("CET-1CEST,M3.5.0,M10.5.0/3", "unknown time zone 'CET-1CEST,M3.5.0,M10.5.0/3'");
    expect_refused("tzdata.zi", "unknown time zone 'tzdata.zi'");
}

/* A copy of a real file, cut or changed, in a directory TZDIR names. */
static void write_bytes(const char *dir, const char *name, const unsigned char *data, size_t n)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static size_t read_real(const char *name, unsigned char *buf, size_t size)
{
    char path[256];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    n = fread(buf, 1, size, f);
    fclose(f);
    cr_assert(n > 100 && n < size);
    return n;
}

Test(tzone, damaged_files_refused, .fini = scratch_remove)
{
    static unsigned char real[65536], bad[65536];
    const char *dir = scratch_make();
    size_t n = read_real("America/New_York", real, sizeof real), cut;
    struct blast_error err;
    struct tzone *z;
    char name[32];

    cr_assert_eq(setenv("TZDIR", dir, 1), 0);
    write_bytes(dir, "Good", real, n);
    z = load("Good");
    expect_local(z, 1793511000, "2026-11-01 01:30:00 EDT");
    tzone_free(z);

    /* cut anywhere: refused, never read past the end */
    for (cut = 0; cut < n; cut += cut < 120 ? 1 : 37) {
        snprintf(name, sizeof name, "Cut%zu", cut);
        write_bytes(dir, name, real, cut);
        blast_error_clear(&err);
        z = NULL;
        cr_assert_eq(tzone_load(name, &z, &err), BLAST_EINVAL, "cut at %zu", cut);
        cr_assert_null(z);
        cr_assert(strstr(err.text, name) != NULL, "%s", err.text);
    }
    write_bytes(dir, "Cut", real, n - 10);
    blast_error_clear(&err);
    cr_assert_eq(tzone_load("Cut", &z, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "time zone 'Cut': damaged file: ") == err.text, "%s", err.text);

    /* a version 2 file's 64-bit transitions out of order */
    memcpy(bad, real, n);
    {
        size_t v1 = 44 + 0, second;
        uint32_t timecnt = (uint32_t)real[32] << 24 | (uint32_t)real[33] << 16 |
                           (uint32_t)real[34] << 8 | real[35];
        uint32_t typecnt = (uint32_t)real[36] << 24 | real[37] << 16 | real[38] << 8 | real[39];
        uint32_t charcnt = (uint32_t)real[40] << 24 | real[41] << 16 | real[42] << 8 | real[43];
        uint32_t leapcnt = (uint32_t)real[28] << 24 | real[29] << 16 | real[30] << 8 | real[31];
        uint32_t isstd = (uint32_t)real[24] << 24 | real[25] << 16 | real[26] << 8 | real[27];
        uint32_t isut = (uint32_t)real[20] << 24 | real[21] << 16 | real[22] << 8 | real[23];

        second = v1 + timecnt * 5 + typecnt * 6 + charcnt + leapcnt * 8 + isstd + isut;
        cr_assert(memcmp(real + second, "TZif", 4) == 0);
        memset(bad + second + 44 + 8 * 3, 0, 8); /* the fourth transition, far ahead */
        bad[second + 44 + 8 * 3 + 1] = 0x40;
        write_bytes(dir, "Order", bad, n);
        blast_error_clear(&err);
        cr_assert_eq(tzone_load("Order", &z, &err), BLAST_EINVAL);
        cr_assert_str_eq(err.text, "time zone 'Order': damaged file: transitions out of order");

        /* the footer's TZ string damaged */
        memcpy(bad, real, n);
        memcpy(bad + n - 8, "M99.5.0\n", 8);
        write_bytes(dir, "Footer", bad, n);
        blast_error_clear(&err);
        cr_assert_eq(tzone_load("Footer", &z, &err), BLAST_EINVAL);
        cr_assert_str_eq(err.text, "time zone 'Footer': damaged file: bad TZ string in the footer");
    }
    /* not TZif at all: no such zone */
    write_bytes(dir, "Text", (const unsigned char *)"hello, world, this is not a zone file at all",
                44);
    expect_refused("Text", "unknown time zone 'Text'");
}

Test(tzone, version_1_file, .fini = scratch_remove)
{
    static unsigned char real[65536];
    const char *dir = scratch_make();
    size_t n = read_real("Europe/Paris", real, sizeof real);
    struct tzone *z;

    /* the same file called version 1: only its 32-bit data is read, up to 2037 */
    real[4] = 0;
    cr_assert_eq(setenv("TZDIR", dir, 1), 0);
    write_bytes(dir, "Old", real, n);
    z = load("Old");
    expect_local(z, tzone_utc(z, 2026, 7, 1, 12, 0), "2026-07-01 12:00:00 CEST");
    expect_local(z, 1782900000, "2026-07-01 12:00:00 CEST");
    tzone_free(z);
}

/*
 * A "slim" file (zic -b slim, as some distributions build tzdata): no transitions past
 * the point the footer's rule takes over, so the rule alone gives today's offsets.
 */
Test(tzone, slim_file_follows_its_footer, .fini = scratch_remove)
{
    static const char source[] = "Rule EU 1900 only - Jan 1 0:00 0 -\n"
                                 "Rule EU 1981 max - Mar lastSun 1:00u 1:00 S\n"
                                 "Rule EU 1996 max - Oct lastSun 1:00u 0 -\n"
                                 "Zone Test/Slim 0:09:21 - LMT 1911 Mar 11\n"
                                 "  1:00 EU CE%sT\n";
    const char *dir = scratch_make();
    char path[256], cmd[600];
    struct tzone *z;
    int64_t t;

    scratch_write_file(dir, "slim.zi", source, path, sizeof path);
    snprintf(cmd, sizeof cmd, "zic -b slim -d %s %s 2>&1", dir, path);
    if (system(cmd) != 0)
        cr_skip_test("zic is not available");
    cr_assert_eq(setenv("TZDIR", dir, 1), 0);
    z = load("Test/Slim");
    cr_assert(tzone_next_change(z, 0) > 0);
    cr_assert_eq(setenv("TZ", "Test/Slim", 1), 0);
    tzset();
    for (t = -2208988800LL; t < 4102444800LL; t += 2 * DAY + 3607)
        same_as_libc(z, t);
    for (t = tzone_next_change(z, 0); t < 4102444800LL; t = tzone_next_change(z, t)) {
        same_as_libc(z, t - 1);
        same_as_libc(z, t);
    }
    expect_local(z, 1782900000, "2026-07-01 12:00:00 CEST");
    tzone_free(z);
}

Test(tzone, local_zone_from_tz)
{
    struct blast_error err;
    struct tzone *z;

    blast_error_clear(&err);
    cr_assert_eq(setenv("TZ", ":Asia/Tokyo", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), 0, "%s", err.text);
    cr_assert_str_eq(tzone_name(z), "Asia/Tokyo");
    expect_local(z, 1782900000, "2026-07-01 19:00:00 JST");
    tzone_free(z);

    cr_assert_eq(setenv("TZ", "America/St_Johns", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), 0, "%s", err.text);
    expect_local(z, 1782900000, "2026-07-01 07:30:00 NDT");
    tzone_free(z);

    /* a POSIX TZ string: compared with the C library reading the same */
    cr_assert_eq(setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), 0, "%s", err.text);
    cr_assert_str_eq(tzone_name(z), "CET-1CEST,M3.5.0,M10.5.0/3");
    expect_local(z, 1782900000, "2026-07-01 12:00:00 CEST");
    tzset();
    {
        int64_t t;

        for (t = 0; t < 4102444800LL; t += 3 * DAY + 1234)
            same_as_libc(z, t);
    }
    tzone_free(z);

    static const char *const strings[] = {"<+03>-3",
                                          "NZST-12NZDT,M9.5.0,M4.1.0/3",
                                          "EST5EDT",
                                          "AAA3BBB,J60/-1,J300/25",
                                          "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
                                          "XXX-5:45YYY-6:30,100/1:30,200/12:15:30"};
    size_t i;

    for (i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        int64_t t;

        cr_assert_eq(setenv("TZ", strings[i], 1), 0);
        tzset();
        cr_assert_eq(tzone_load_local(&z, &err), 0, "%s: %s", strings[i], err.text);
        for (t = 946684800; t < 4102444800LL; t += 2 * DAY + 3 * 3600 + 61)
            same_as_libc(z, t);
        tzone_free(z);
    }

    /*
     * DST all year (RFC 8536 §3.3.1's example): the C library takes the rule of the UTC
     * year alone, so has EST for the first hours of each year; here it is EDT throughout
     */
    cr_assert_eq(setenv("TZ", "EST5EDT,0/0,J365/25", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), 0, "%s", err.text);
    {
        int64_t t;

        for (t = 946684800 - 7 * 3600; t < 4102444800LL; t += 3 * 3600 + 7 * DAY) {
            struct tzone_tm tm;

            tzone_local(z, t, &tm);
            cr_assert(tm.gmtoff == -4 * 3600 && tm.isdst && strcmp(tm.abbr, "EDT") == 0, "%lld",
                      (long long)t);
        }
        expect_local(z, 946684800, "1999-12-31 20:00:00 EDT");
        cr_assert_eq(tzone_utc(z, 2026, 1, 1, 0, 30), 1767241800);
    }
    tzone_free(z);

    /* empty: UTC */
    cr_assert_eq(setenv("TZ", "", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), 0, "%s", err.text);
    expect_local(z, 0, "1970-01-01 00:00:00 UTC");
    tzone_free(z);

    cr_assert_eq(setenv("TZ", "Mars/Olympus_Mons", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.text, "TZ: unknown time zone 'Mars/Olympus_Mons'");
    blast_error_clear(&err);
    cr_assert_eq(setenv("TZ", ":CET-1CEST", 1), 0);
    cr_assert_eq(tzone_load_local(&z, &err), BLAST_EINVAL, "a ':' names a file");
    cr_assert_null(z);
}

Test(tzone, local_zone_from_etc_localtime)
{
    struct blast_error err;
    struct tzone *z;
    struct tm b;
    time_t t = 1782900000;
    struct tzone_tm a;

    blast_error_clear(&err);
    cr_assert_eq(unsetenv("TZ"), 0);
    tzset();
    cr_assert_eq(tzone_load_local(&z, &err), 0, "%s", err.text);
    tzone_local(z, t, &a);
    localtime_r(&t, &b);
    cr_assert_eq(a.gmtoff, b.tm_gmtoff);
    cr_assert_str_eq(a.abbr, b.tm_zone);
    cr_log_info("/etc/localtime: %s", tzone_name(z));
    tzone_free(z);
}

Test(tzone, cache)
{
    struct blast_error err;
    struct tzone_cache *c;
    const struct tzone *a, *b, *p;
    char name[32];
    int i;

    blast_error_clear(&err);
    cr_assert_eq(tzone_cache_new(&c, &err), 0);
    cr_assert_eq(tzone_cache_get(c, "Europe/Paris", &a, &err), 0);
    cr_assert_eq(tzone_cache_get(c, "America/New_York", &b, &err), 0);
    cr_assert_eq(tzone_cache_get(c, "Europe/Paris", &p, &err), 0);
    cr_assert_eq(a, p, "the same zone for the same name");
    cr_assert_neq(a, b);
    cr_assert_str_eq(tzone_name(b), "America/New_York");
    /* a name that failed fails again, the same way */
    for (i = 0; i < 2; i++) {
        blast_error_clear(&err);
        p = a;
        cr_assert_eq(tzone_cache_get(c, "Europe/Pariss", &p, &err), BLAST_EINVAL);
        cr_assert_null(p);
        cr_assert_str_eq(err.text, "unknown time zone 'Europe/Pariss'");
    }
    blast_error_clear(&err);
    cr_assert_eq(tzone_cache_get(c, "../etc/passwd", &p, &err), BLAST_EINVAL);
    /* many names: the table grows and keeps them */
    for (i = 0; i <= 14; i++) {
        snprintf(name, sizeof name, "Etc/GMT%+d", i - 12);
        cr_assert_eq(tzone_cache_get(c, name, &p, &err), 0, "%s: %s", name, err.text);
        cr_assert_str_eq(tzone_name(p), name);
    }
    cr_assert_eq(tzone_cache_get(c, "Europe/Paris", &p, &err), 0);
    cr_assert_eq(a, p);
    tzone_cache_free(c);
    tzone_cache_free(NULL);
    tzone_free(NULL);
}
