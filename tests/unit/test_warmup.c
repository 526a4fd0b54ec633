/*
 * Unit tests for core/warmup: the caps of the default ramp, of other ramps and of
 * lists, their end and their bounds; the store's first days, reservations up to a cap
 * (one connection, two, two processes), releases and counts; a file shared with the
 * suppression database; the file private; files it cannot use, named in the error.
 */
#include "../../core/suppressdb.h"
#include "../../core/warmup.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the schedule ---- */

Test(warmup, the_default_ramp)
{
    static const uint64_t caps[] = {200,   280,   392,   548,   767,  1073,  1502,
                                    2102,  2942,  4118,  5765,  8071, 11299, 15818,
                                    22145, 31003, 43404, 60765, 85071};
    struct warmup_schedule s;
    size_t i;

    warmup_schedule_default(&s);
    cr_assert_eq(warmup_schedule_check(&s, NULL), 0);
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
        cr_assert_eq(warmup_cap(&s, (int64_t)i + 1), caps[i], "day %zu: %llu", i + 1,
                     (unsigned long long)warmup_cap(&s, (int64_t)i + 1));
    cr_assert_eq(warmup_cap(&s, 20), WARMUP_NO_CAP, "85071 x 1.4 reaches 100,000: no cap");
    cr_assert_eq(warmup_cap(&s, 400), WARMUP_NO_CAP);
    cr_assert_eq(warmup_cap(&s, INT64_MAX), WARMUP_NO_CAP);
    cr_assert_eq(warmup_days(&s), 19);
    cr_assert_eq(warmup_cap(&s, 0), 200, "day 0 is day 1");
    cr_assert_eq(warmup_cap(&s, -5), 200);
    cr_assert_eq(warmup_cap(&s, INT64_MIN), 200);
}

Test(warmup, an_explicit_list)
{
    uint64_t daily[] = {50, 100, 80, 500};
    struct warmup_schedule s = {.daily = daily, .ndaily = 4, .first = 1, .growth = 2, .until = 3};

    cr_assert_eq(warmup_schedule_check(&s, NULL), 0, "a list need not grow");
    cr_assert_eq(warmup_cap(&s, 1), 50);
    cr_assert_eq(warmup_cap(&s, 0), 50);
    cr_assert_eq(warmup_cap(&s, 3), 80, "the list as given, not the ramp");
    cr_assert_eq(warmup_cap(&s, 4), 500);
    cr_assert_eq(warmup_cap(&s, 5), WARMUP_NO_CAP, "past the end: no cap");
    cr_assert_eq(warmup_cap(&s, INT64_MAX), WARMUP_NO_CAP);
    cr_assert_eq(warmup_days(&s), 4);
    daily[3] = WARMUP_NO_CAP;
    cr_assert_eq(warmup_days(&s), 3, "a last day without a cap is not a day of the warm-up");
}

Test(warmup, a_ramp_ends_on_the_day_it_reaches_until)
{
    struct warmup_schedule s = {.first = 100, .growth = 2, .until = 800};

    cr_assert_eq(warmup_cap(&s, 1), 100);
    cr_assert_eq(warmup_cap(&s, 2), 200);
    cr_assert_eq(warmup_cap(&s, 3), 400);
    cr_assert_eq(warmup_cap(&s, 4), WARMUP_NO_CAP, "800 reaches until");
    cr_assert_eq(warmup_days(&s), 3);
    s.until = 801;
    cr_assert_eq(warmup_cap(&s, 4), 800);
    cr_assert_eq(warmup_days(&s), 4);
    s.until = 100;
    cr_assert_eq(warmup_cap(&s, 1), WARMUP_NO_CAP, "first already reaches until: no warm-up");
    cr_assert_eq(warmup_days(&s), 0);
}

Test(warmup, rounding_down_never_stalls_a_ramp_and_it_never_decreases)
{
    struct warmup_schedule s = {.first = 1, .growth = 1.4, .until = 1000};
    uint64_t prev = 0, cap;
    int64_t day;

    cr_assert_eq(warmup_cap(&s, 2), 2, "1 x 1.4 is 1 rounded down: one more instead");
    for (day = 1; (cap = warmup_cap(&s, day)) != WARMUP_NO_CAP; day++) {
        cr_assert_gt(cap, prev, "day %lld", (long long)day);
        prev = cap;
    }
    cr_assert_eq(day - 1, warmup_days(&s));
    cr_assert_lt(prev, 1000);
}

Test(warmup, large_caps_and_growths_do_not_overflow)
{
    struct warmup_schedule s = {.first = WARMUP_MAX_CAP - 1, .growth = 10, .until = UINT64_MAX};
    uint64_t prev = 0, cap;
    int64_t day;

    cr_assert_eq(warmup_cap(&s, 1), WARMUP_MAX_CAP - 1);
    cr_assert_eq(warmup_cap(&s, 2), WARMUP_NO_CAP, "until is taken as at most 10^12");
    cr_assert_eq(warmup_days(&s), 1);

    /* growth far above the bound is taken as 10; the caps stay below 10^12 */
    s = (struct warmup_schedule){.first = 3, .growth = 1e300, .until = UINT64_MAX};
    for (day = 1; (cap = warmup_cap(&s, day)) != WARMUP_NO_CAP; day++) {
        cr_assert_gt(cap, prev);
        cr_assert_lt(cap, WARMUP_MAX_CAP);
        prev = cap;
    }
    cr_assert_eq(warmup_cap(&s, 2), 30);
    cr_assert_eq(warmup_days(&s), 12, "3 x 10^11 is the last below 10^12");

    /* growth below the bound (or NaN) is taken as 1.01: the walk ends, and soon */
    s = (struct warmup_schedule){.first = 1, .growth = 0.5, .until = WARMUP_MAX_CAP};
    cr_assert_eq(warmup_cap(&s, 3), 3);
    cr_assert_lt(warmup_days(&s), 3000);
    cr_assert_eq(warmup_cap(&s, INT64_MAX), WARMUP_NO_CAP);
    s.growth = NAN;
    cr_assert_lt(warmup_days(&s), 3000);
    cr_assert_eq(warmup_cap(&s, 2), 2);

    s = (struct warmup_schedule){.first = 0, .growth = 2, .until = 10};
    cr_assert_eq(warmup_cap(&s, 1), 1, "a first of 0 is taken as 1");
}

Test(warmup, schedules_blast_will_not_send_by)
{
    uint64_t daily[] = {10, 0};
    struct warmup_schedule s;
    struct blast_error err;

    warmup_schedule_default(&s);
    s.growth = 1.0;
    blast_error_clear(&err);
    cr_assert_eq(warmup_schedule_check(&s, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "growth"), "%s", err.text);
    s.growth = NAN;
    cr_assert_eq(warmup_schedule_check(&s, NULL), BLAST_EINVAL);
    s.growth = 11;
    cr_assert_eq(warmup_schedule_check(&s, NULL), BLAST_EINVAL);
    warmup_schedule_default(&s);
    s.first = 0;
    cr_assert_eq(warmup_schedule_check(&s, NULL), BLAST_EINVAL);
    warmup_schedule_default(&s);
    s.until = 200;
    cr_assert_eq(warmup_schedule_check(&s, NULL), BLAST_EINVAL);
    s.until = WARMUP_MAX_CAP + 1;
    cr_assert_eq(warmup_schedule_check(&s, NULL), BLAST_EINVAL);
    s = (struct warmup_schedule){.daily = daily, .ndaily = 2};
    blast_error_clear(&err);
    cr_assert_eq(warmup_schedule_check(&s, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "day 2"), "%s", err.text);
}

Test(warmup, ramp_days)
{
    cr_assert_eq(warmup_ramp_day(20000, 20000), 1);
    cr_assert_eq(warmup_ramp_day(20000, 20006), 7);
    cr_assert_eq(warmup_ramp_day(20000, 19990), 1, "a clock set back: still day 1");
    cr_assert_eq(warmup_ramp_day(INT64_MIN, INT64_MAX), INT64_MAX);
}

/* ---- the store ---- */

static void store_path(char *out, size_t size)
{
    snprintf(out, size, "%s/warmup.db", scratch_make());
}

static struct warmup_store *open_ok(const char *path)
{
    struct warmup_store *s = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(warmup_store_open(path, &s, &err), 0, "%s", err.text);
    cr_assert_not_null(s);
    return s;
}

static uint64_t reserve(struct warmup_store *s, const char *sender, const char *provider,
                        int64_t day, uint64_t cap, uint64_t want)
{
    struct blast_error err;
    uint64_t granted = 12345;

    blast_error_clear(&err);
    cr_assert_eq(warmup_reserve(s, sender, provider, day, cap, want, &granted, &err), 0, "%s",
                 err.text);
    return granted;
}

static uint64_t count(struct warmup_store *s, const char *sender, const char *provider, int64_t day)
{
    struct blast_error err;
    uint64_t n = 12345;

    blast_error_clear(&err);
    cr_assert_eq(warmup_count(s, sender, provider, day, &n, &err), 0, "%s", err.text);
    return n;
}

Test(warmup, the_first_day_is_recorded_once, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s;
    struct blast_error err;
    int64_t first = 0;

    store_path(path, sizeof path);
    s = open_ok(path);
    blast_error_clear(&err);
    cr_assert_eq(warmup_first_day(s, "news.example.com", "gmail", 20100, &first, &err), 0, "%s",
                 err.text);
    cr_assert_eq(first, 20100);
    cr_assert_eq(warmup_first_day(s, "News.Example.COM", "GMail", 20105, &first, &err), 0);
    cr_assert_eq(first, 20100, "kept, whatever the case");
    cr_assert_eq(warmup_first_day(s, "news.example.com", "microsoft", 20105, &first, &err), 0);
    cr_assert_eq(first, 20105, "per provider");
    cr_assert_eq(warmup_first_day(s, "shop.example.com", "gmail", 20107, &first, &err), 0);
    cr_assert_eq(first, 20107, "per sender");
    warmup_store_close(s);

    s = open_ok(path);
    cr_assert_eq(warmup_first_day(s, "news.example.com", "gmail", 20300, &first, &err), 0);
    cr_assert_eq(first, 20100, "kept across runs");
    warmup_store_close(s);
}

Test(warmup, reservations_stop_at_the_cap, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s;

    store_path(path, sizeof path);
    s = open_ok(path);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 200, 120), 120);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 200, 50), 50);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 200, 50), 30, "what remains");
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 200, 1), 0, "the cap is reached");
    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 200);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 280, 500), 80,
                 "a higher cap (a changed schedule) leaves room");
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 100, 10), 0,
                 "a lower cap than what was sent: nothing, and no harm");
    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 280);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 280, 0), 0);
    warmup_store_close(s);

    s = open_ok(path);
    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 280, "kept across runs");
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20101, 392, 1000), 392, "a new day");
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20102, WARMUP_NO_CAP, 1000000), 1000000,
                 "no cap: all of it, counted");
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20102, WARMUP_NO_CAP, UINT64_MAX),
                 (uint64_t)INT64_MAX - 1000000, "counts stop at what SQLite keeps");
    cr_assert_eq(count(s, "news.example.com", "gmail", 20102), (uint64_t)INT64_MAX);
    warmup_store_close(s);
}

Test(warmup, two_connections_share_the_cap, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *a, *b;
    uint64_t total = 0, g;
    int i;

    store_path(path, sizeof path);
    a = open_ok(path);
    b = open_ok(path);
    for (i = 0; i < 100; i++) {
        total += g = reserve(i % 2 ? a : b, "news.example.com", "yahoo", 20100, 150, 7);
        cr_assert_leq(total, 150);
    }
    cr_assert_eq(total, 150);
    cr_assert_eq(count(a, "news.example.com", "yahoo", 20100), 150);
    cr_assert_eq(count(b, "NEWS.example.com", "Yahoo", 20100), 150);
    (void)g;
    warmup_store_close(a);
    warmup_store_close(b);
}

/* Reserve one at a time until the cap is reached; how many were granted. */
static uint64_t reserve_ones(const char *path, uint64_t cap)
{
    struct warmup_store *s = NULL;
    struct blast_error err;
    uint64_t total = 0, g;

    blast_error_clear(&err);
    if (warmup_store_open(path, &s, &err) < 0)
        return UINT64_MAX;
    do {
        if (warmup_reserve(s, "news.example.com", "microsoft", 20100, cap, 1, &g, &err) < 0) {
            total = UINT64_MAX;
            break;
        }
        total += g;
    } while (g > 0);
    warmup_store_close(s);
    return total;
}

Test(warmup, two_processes_share_the_cap, .fini = scratch_remove, .timeout = 60)
{
    char path[512];
    struct warmup_store *s;
    uint64_t mine, theirs = 0;
    int fds[2], status = 0;
    pid_t pid;

    store_path(path, sizeof path);
    warmup_store_close(open_ok(path));
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        uint64_t n = reserve_ones(path, 500);
        close(fds[0]);
        _exit(write(fds[1], &n, sizeof n) == (ssize_t)sizeof n ? 0 : 2);
    }
    close(fds[1]);
    mine = reserve_ones(path, 500);
    cr_assert_eq(read(fds[0], &theirs, sizeof theirs), (ssize_t)sizeof theirs);
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_neq(mine, UINT64_MAX, "this process failed to reserve");
    cr_assert_neq(theirs, UINT64_MAX, "the other process failed to reserve");
    cr_assert_eq(mine + theirs, 500, "%llu + %llu", (unsigned long long)mine,
                 (unsigned long long)theirs);
    s = open_ok(path);
    cr_assert_eq(count(s, "news.example.com", "microsoft", 20100), 500);
    warmup_store_close(s);
}

Test(warmup, release_gives_back_and_never_below_zero, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s;
    struct blast_error err;

    store_path(path, sizeof path);
    s = open_ok(path);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 200, 150), 150);
    blast_error_clear(&err);
    cr_assert_eq(warmup_release(s, "News.Example.com", "GMAIL", 20100, 40, &err), 0, "%s",
                 err.text);
    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 110);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 200, 500), 90, "room again");
    cr_assert_eq(warmup_release(s, "news.example.com", "gmail", 20100, 1000, &err), 0);
    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 0, "not below 0");
    cr_assert_eq(warmup_release(s, "news.example.com", "gmail", 20100, UINT64_MAX, &err), 0);
    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 0);
    cr_assert_eq(warmup_release(s, "news.example.com", "aol", 20100, 5, &err), 0,
                 "nothing to give back: no harm");
    cr_assert_eq(count(s, "news.example.com", "aol", 20100), 0);
    warmup_store_close(s);
}

struct rows {
    char text[512];
    int calls;
};

static int collect(void *arg, const struct warmup_row *r)
{
    struct rows *rows = arg;
    size_t len = strlen(rows->text);

    snprintf(rows->text + len, sizeof rows->text - len, "%s:%lld:%llu;", r->provider,
             (long long)r->first_day, (unsigned long long)r->sent);
    rows->calls++;
    return 0;
}

static int stop_at_first(void *arg, const struct warmup_row *r)
{
    (void)arg;
    (void)r;
    return 9;
}

Test(warmup, counts_are_per_sender_provider_and_day, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s;
    struct blast_error err;
    struct rows rows;
    int64_t first;

    store_path(path, sizeof path);
    s = open_ok(path);
    blast_error_clear(&err);
    cr_assert_eq(warmup_first_day(s, "news.example.com", "gmail", 20100, &first, &err), 0);
    cr_assert_eq(warmup_first_day(s, "news.example.com", "Yahoo", 20101, &first, &err), 0);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 1000, 10), 10);
    cr_assert_eq(reserve(s, "NEWS.EXAMPLE.COM", "GMAIL", 20101, 1000, 20), 20);
    cr_assert_eq(reserve(s, "news.example.com", "Microsoft", 20101, 1000, 30), 30);
    cr_assert_eq(reserve(s, "news.example.com", WARMUP_OTHER, 20101, 1000, 40), 40);
    cr_assert_eq(reserve(s, "shop.example.com", "gmail", 20101, 1000, 50), 50);

    cr_assert_eq(count(s, "news.example.com", "gmail", 20100), 10);
    cr_assert_eq(count(s, "news.example.com", "gmail", 20101), 20);
    cr_assert_eq(count(s, "News.Example.Com", "gMail", 20101), 20);
    cr_assert_eq(count(s, "news.example.com", "microsoft", 20101), 30);
    cr_assert_eq(count(s, "news.example.com", "other", 20101), 40);
    cr_assert_eq(count(s, "shop.example.com", "gmail", 20101), 50);
    cr_assert_eq(count(s, "shop.example.com", "gmail", 20100), 0);
    cr_assert_eq(count(s, "news.example.com", "yahoo", 20101), 0);

    memset(&rows, 0, sizeof rows);
    cr_assert_eq(warmup_each(s, "News.example.com", 20101, collect, &rows, &err), 0, "%s",
                 err.text);
    cr_assert_str_eq(rows.text, "gmail:20100:20;microsoft:20101:30;other:20101:40;yahoo:20101:0;",
                     "first days recorded, else the earliest counted; sorted; lower-cased");
    memset(&rows, 0, sizeof rows);
    cr_assert_eq(warmup_each(s, "shop.example.com", 20100, collect, &rows, &err), 0);
    cr_assert_str_eq(rows.text, "gmail:20101:0;");
    memset(&rows, 0, sizeof rows);
    cr_assert_eq(warmup_each(s, "nobody.example.com", 20100, collect, &rows, &err), 0);
    cr_assert_eq(rows.calls, 0);
    cr_assert_eq(warmup_each(s, "news.example.com", 20100, stop_at_first, NULL, &err), 9);

    blast_error_clear(&err);
    cr_assert_eq(warmup_count(s, "", "gmail", 1, &(uint64_t){0}, &err), BLAST_EINVAL);
    blast_error_clear(&err);
    cr_assert_eq(warmup_reserve(s, "news.example.com", NULL, 1, 5, 5, &(uint64_t){0}, &err),
                 BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "provider"), "%s", err.text);
    warmup_store_close(s);
}

Test(warmup, old_days_go_when_the_store_is_opened, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s;
    int64_t first;

    store_path(path, sizeof path);
    s = open_ok(path);
    cr_assert_eq(warmup_first_day(s, "news.example.com", "gmail", 19000, &first, NULL), 0);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 19000, 100, 1), 1);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 19600, 100, 2), 2);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20000, 100, 3), 3);
    warmup_store_close(s);
    s = open_ok(path);
    cr_assert_eq(count(s, "news.example.com", "gmail", 19000), 0, "more than 400 days older");
    cr_assert_eq(count(s, "news.example.com", "gmail", 19600), 2, "400 days older: kept");
    cr_assert_eq(count(s, "news.example.com", "gmail", 20000), 3);
    cr_assert_eq(warmup_first_day(s, "news.example.com", "gmail", 20000, &first, NULL), 0);
    cr_assert_eq(first, 19000, "first days are kept");
    warmup_store_close(s);
}

Test(warmup, the_file_is_private, .fini = scratch_remove)
{
    char path[512];
    struct stat st;
    mode_t old = umask(0);

    store_path(path, sizeof path);
    warmup_store_close(open_ok(path));
    umask(old);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned)(st.st_mode & 0777));
}

static void shared_file_works(const char *path)
{
    struct suppress_entry e = {"ada@example.com", SUPPRESS_HARD, "dsn-5.1.1", NULL, 1, NULL};
    struct suppressdb *db = NULL;
    struct warmup_store *s;
    struct blast_error err;
    size_t n = 0;

    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open(path, true, &db, &err), 0, "%s", err.text);
    s = open_ok(path);
    cr_assert_eq(suppressdb_add(db, &e, &err), 0, "%s", err.text);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 100, 60), 60);
    cr_assert_eq(suppressdb_count(db, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 1);
    suppressdb_close(db);
    warmup_store_close(s);

    /* and again, each opening a file the other has written, the other way round */
    s = open_ok(path);
    db = NULL;
    cr_assert_eq(suppressdb_open(path, false, &db, &err), 0, "%s", err.text);
    cr_assert_eq(suppressdb_find(db, "Ada@example.com", NULL, NULL, &err), 1);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 100, 60), 40);
    suppressdb_close(db);
    warmup_store_close(s);
}

Test(warmup, a_file_shared_with_the_suppression_database, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db = NULL;
    struct blast_error err;

    /* the suppression database first */
    snprintf(path, sizeof path, "%s/suppression.db", scratch_make());
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open(path, true, &db, &err), 0, "%s", err.text);
    suppressdb_close(db);
    shared_file_works(path);

    /* the warm-up store first */
    snprintf(path, sizeof path, "%s/warmup-first.db", scratch_dir);
    warmup_store_close(open_ok(path));
    shared_file_works(path);
}

Test(warmup, files_it_cannot_use_are_named, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s = NULL;
    struct blast_error err;
    sqlite3 *other;

    blast_error_clear(&err);
    snprintf(path, sizeof path, "%s/missing/warmup.db", scratch_make());
    cr_assert_eq(warmup_store_open(path, &s, &err), BLAST_EIO);
    cr_assert_null(s);
    cr_assert_str_eq(err.source, path);
    cr_assert_not_null(strstr(err.text, "cannot open the warm-up store"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "No such file or directory"), "%s", err.text);

    scratch_write_file(scratch_dir, "notes.txt", "This is not a database, but it is long enough.\n",
                       path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(warmup_store_open(path, &s, &err), BLAST_EIO);
    cr_assert_null(s);
    cr_assert_str_eq(err.source, path);
    cr_assert_not_null(strstr(err.text, "cannot open the warm-up store"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "not a database"), "%s", err.text);

    snprintf(path, sizeof path, "%s/other.db", scratch_dir);
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    blast_error_clear(&err);
    cr_assert_eq(warmup_store_open(path, &s, &err), BLAST_EINVAL);
    cr_assert_null(s);
    cr_assert_str_eq(err.source, path);
    cr_assert_not_null(strstr(err.text, "not a blast database"), "%s", err.text);

    /* warm-up tables of a later version */
    snprintf(path, sizeof path, "%s/later.db", scratch_dir);
    warmup_store_close(open_ok(path));
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "UPDATE warmup_meta SET value = '7' WHERE name = 'version'",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(other);
    blast_error_clear(&err);
    cr_assert_eq(warmup_store_open(path, &s, &err), BLAST_EINVAL);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err.text, "version 7"), "%s", err.text);
}

Test(warmup, a_lock_held_too_long_is_said_so, .fini = scratch_remove, .timeout = 60)
{
    char path[512];
    struct warmup_store *s;
    struct blast_error err;
    uint64_t g = 7;
    sqlite3 *other;

    store_path(path, sizeof path);
    s = open_ok(path);
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    blast_error_clear(&err);
    cr_assert_eq(warmup_reserve(s, "news.example.com", "gmail", 20100, 100, 5, &g, &err),
                 BLAST_EIO);
    cr_assert_eq(g, 0);
    cr_assert_str_eq(err.source, path);
    cr_assert_not_null(strstr(err.text, "locked by another process for more than 10 s"), "%s",
                       err.text);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    cr_assert_eq(reserve(s, "news.example.com", "gmail", 20100, 100, 5), 5, "and then it works");
    warmup_store_close(s);
}

Test(warmup, first_known_reads_without_recording, .fini = scratch_remove)
{
    char path[512];
    struct warmup_store *s;
    struct blast_error err;
    int64_t first = -7;
    bool found = true;

    store_path(path, sizeof path);
    s = open_ok(path);
    blast_error_clear(&err);
    cr_assert_eq(warmup_first_known(s, "news.example.com", "google", &first, &found, &err), 0);
    cr_assert(!found);
    cr_assert_eq(first, -7, "untouched");
    cr_assert_eq(warmup_first_known(s, "news.example.com", "google", &first, &found, &err), 0);
    cr_assert(!found, "still nothing recorded");
    cr_assert_eq(warmup_first_day(s, "news.example.com", "google", 20100, &first, &err), 0);
    cr_assert_eq(warmup_first_known(s, "NEWS.example.com", "google", &first, &found, &err), 0);
    cr_assert(found);
    cr_assert_eq(first, 20100);
    warmup_store_close(s);
}

static int count_rows(void *arg, const struct warmup_row *r)
{
    (void)r;
    (*(int *)arg)++;
    return 0;
}

Test(warmup, a_store_opened_to_read_changes_nothing, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db = NULL;
    struct warmup_store *s;
    struct blast_error err;
    struct stat before, after;
    uint64_t n = 99;
    int rows = 0;

    /* a suppression database without warm-up tables reads as empty */
    snprintf(path, sizeof path, "%s/suppression.db", scratch_make());
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open(path, true, &db, &err), 0, "%s", err.text);
    suppressdb_close(db);
    cr_assert_eq(stat(path, &before), 0);
    cr_assert_eq(warmup_store_open_read(path, &s, &err), 0, "%s", err.text);
    cr_assert_eq(warmup_count(s, "news.example.com", "google", 20100, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 0);
    cr_assert_eq(warmup_each(s, "news.example.com", 20100, count_rows, &rows, &err), 0);
    cr_assert_eq(rows, 0);
    warmup_store_close(s);
    cr_assert_eq(stat(path, &after), 0);
    cr_assert_eq(before.st_size, after.st_size);
    cr_assert_eq(before.st_mtime, after.st_mtime);
    /* a store with counts reads them */
    store_path(path, sizeof path);
    s = open_ok(path);
    cr_assert_eq(reserve(s, "news.example.com", "google", 20100, 10, 4), 4);
    warmup_store_close(s);
    cr_assert_eq(warmup_store_open_read(path, &s, &err), 0, "%s", err.text);
    cr_assert_eq(count(s, "news.example.com", "google", 20100), 4);
    warmup_store_close(s);
    /* a file that is not there is an error naming it (check does not create it) */
    snprintf(path, sizeof path, "%s/none.db", scratch_dir);
    blast_error_clear(&err);
    cr_assert_lt(warmup_store_open_read(path, &s, &err), 0);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(access(path, F_OK), -1);
}
