/*
 * warmup - the ramp of daily caps, and the store of what was sent, in SQLite. See
 * warmup.h.
 *
 * The schema (warmup_meta 'version' 1), which operators may query with sqlite3:
 *
 *   CREATE TABLE warmup_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
 *   CREATE TABLE warmup_first (      -- the ramp's day 1 of a sender at a provider
 *     sender TEXT NOT NULL, provider TEXT NOT NULL, day INTEGER NOT NULL,
 *     PRIMARY KEY (sender, provider)) WITHOUT ROWID;
 *   CREATE TABLE warmup_count (      -- what a sender sent to a provider on a day
 *     sender TEXT NOT NULL, provider TEXT NOT NULL, day INTEGER NOT NULL,
 *     sent INTEGER NOT NULL, PRIMARY KEY (sender, provider, day)) WITHOUT ROWID;
 *
 * Senders and providers are kept lower-cased (SQLite's lower() folds ASCII only, which
 * is what domains in A-labels and provider names are). Days are days since 1970-01-01
 * in the campaign's time zone.
 *
 * Sharing a file with core/suppressdb: the application_id and user_version of the file
 * are suppressdb's (it refuses a file with a user_version it does not know), so the
 * warm-up tables carry their version in warmup_meta instead, and suppressdb makes its
 * tables in a file that has only warm-up tables. A file is taken as blast's when its
 * application_id is blast's, or when it has none and every table in it is a warm-up one.
 *
 * synchronous=NORMAL, not suppressdb's FULL: a count lost to a power cut lets a few
 * more messages out that day, which is not worth an fsync on every reservation.
 */
#include "warmup.h"
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define APPLICATION_ID 0x626c7374 /* suppressdb's: "blst" */
#define WARMUP_VERSION 1
#define BUSY_MS        10000

/* ---- the schedule ---- */

void warmup_schedule_default(struct warmup_schedule *s)
{
    memset(s, 0, sizeof *s);
    s->first = 200;
    s->growth = 1.4;
    s->until = 100000;
}

int warmup_schedule_check(const struct warmup_schedule *s, struct blast_error *err)
{
    size_t i;

    if (s->ndaily > 0) {
        if (s->daily == NULL)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "warm-up: no daily caps");
        for (i = 0; i < s->ndaily; i++)
            if (s->daily[i] < 1 || s->daily[i] > WARMUP_MAX_CAP)
                return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                       "warm-up: the cap of day %zu is %llu; a daily cap is "
                                       "from 1 to %llu",
                                       i + 1, (unsigned long long)s->daily[i],
                                       (unsigned long long)WARMUP_MAX_CAP);
        return 0;
    }
    if (s->first < 1 || s->first > WARMUP_MAX_CAP)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "warm-up: the first day's cap is %llu; it is from 1 to %llu",
                               (unsigned long long)s->first, (unsigned long long)WARMUP_MAX_CAP);
    /* written this way round so that NaN fails too */
    if (!(s->growth >= WARMUP_GROWTH_MIN && s->growth <= WARMUP_GROWTH_MAX))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "warm-up: the growth is %g; it is from %g to %g a day", s->growth,
                               WARMUP_GROWTH_MIN, WARMUP_GROWTH_MAX);
    if (s->until <= s->first || s->until > WARMUP_MAX_CAP)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "warm-up: the ramp ends at %llu; that is above the first day's "
                               "cap (%llu) and at most %llu",
                               (unsigned long long)s->until, (unsigned long long)s->first,
                               (unsigned long long)WARMUP_MAX_CAP);
    return 0;
}

/*
 * The growth in millionths: integer arithmetic rounds down exactly as one would by
 * hand (200 x 1.4 is 280, where doubles may give 279.99...), and a cap below until
 * (at most 10^12) times at most 10^7 stays below 2^64.
 */
static uint64_t growth_ppm(double g)
{
    if (!(g >= WARMUP_GROWTH_MIN))
        g = WARMUP_GROWTH_MIN;
    if (g > WARMUP_GROWTH_MAX)
        g = WARMUP_GROWTH_MAX;
    return (uint64_t)llround(g * 1e6);
}

/*
 * Walk the ramp to day (or to its end when day is INT64_MAX): the cap of that day, or
 * WARMUP_NO_CAP; *last gets the last capped day walked. Bounded: every step adds at
 * least 1% (and at least 1), so a ramp reaches 10^12 in under 3,000 steps.
 */
static uint64_t ramp(const struct warmup_schedule *s, int64_t day, int64_t *last)
{
    uint64_t until = s->until < WARMUP_MAX_CAP ? s->until : WARMUP_MAX_CAP;
    uint64_t g = growth_ppm(s->growth), cap = s->first > 0 ? s->first : 1, next;
    int64_t n = 1;

    *last = 0;
    if (cap >= until)
        return WARMUP_NO_CAP;
    for (;;) {
        *last = n;
        if (n >= day)
            return cap;
        next = cap * g / 1000000;
        if (next <= cap)
            next = cap + 1; /* rounding down must not stall a small ramp */
        if (next >= until)
            return WARMUP_NO_CAP;
        cap = next;
        n++;
    }
}

uint64_t warmup_cap(const struct warmup_schedule *s, int64_t day)
{
    int64_t last;

    if (day < 1)
        day = 1;
    if (s->ndaily > 0)
        return s->daily != NULL && (uint64_t)day <= s->ndaily ? s->daily[day - 1] : WARMUP_NO_CAP;
    return ramp(s, day, &last);
}

int64_t warmup_days(const struct warmup_schedule *s)
{
    int64_t last = 0;
    size_t i;

    if (s->ndaily > 0) {
        for (i = s->ndaily; s->daily != NULL && i > 0; i--)
            if (s->daily[i - 1] != WARMUP_NO_CAP)
                return (int64_t)i;
        return 0;
    }
    ramp(s, INT64_MAX, &last);
    return last;
}

int64_t warmup_ramp_day(int64_t first_day, int64_t today)
{
    if (today <= first_day)
        return 1;
    /* unsigned: today - first_day may not fit an int64 */
    uint64_t d = (uint64_t)today - (uint64_t)first_day;
    return d >= (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d + 1;
}

/* ---- the store ---- */

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_GET,
    ST_PUT,
    ST_RELEASE,
    ST_FIRST_ADD,
    ST_FIRST_GET,
    ST_FIRST_FORGET,
    ST_COUNT
};

/* Prepared once each, on first use: a send reserves for every batch of a run. */
static const char *const sql_of[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET] = "SELECT sent FROM warmup_count WHERE sender = lower(?1) AND provider = lower(?2) "
               "AND day = ?3",
    [ST_PUT] = "INSERT OR REPLACE INTO warmup_count (sender, provider, day, sent) "
               "VALUES (lower(?1), lower(?2), ?3, ?4)",
    [ST_RELEASE] = "UPDATE warmup_count SET sent = CASE WHEN sent > ?4 THEN sent - ?4 ELSE 0 END "
                   "WHERE sender = lower(?1) AND provider = lower(?2) AND day = ?3",
    [ST_FIRST_ADD] = "INSERT OR IGNORE INTO warmup_first (sender, provider, day) "
                     "VALUES (lower(?1), lower(?2), ?3)",
    [ST_FIRST_GET] = "SELECT day FROM warmup_first WHERE sender = lower(?1) AND "
                     "provider = lower(?2)",
    [ST_FIRST_FORGET] = "DELETE FROM warmup_first WHERE sender = lower(?1) AND "
                        "provider = lower(?2) AND day = ?3",
};

struct warmup_store {
    sqlite3 *db;
    char *path;
    bool no_tables; /* opened to read, and the file has no warm-up tables yet */
    sqlite3_stmt *st[ST_COUNT];
};

/* The error of the last SQLite call, worded for the operator; a lock held too long said so. */
static int db_fail(struct warmup_store *s, struct blast_error *err, const char *what)
{
    int code = s->db != NULL ? sqlite3_errcode(s->db) & 0xff : SQLITE_NOMEM;

    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return blast_error_set(err, BLAST_EIO, s->path, 0, 0,
                               "the warm-up store is locked by another process for more than "
                               "%d s",
                               BUSY_MS / 1000);
    if (code == SQLITE_NOMEM)
        return blast_error_set(err, BLAST_ENOMEM, s->path, 0, 0, "%s: out of memory", what);
    return blast_error_set(err, BLAST_EIO, s->path, 0, 0, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct warmup_store *s, const char *sql, const char *what, struct blast_error *err)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(s, err, what);
}

/* The statement i, ready to bind (prepared on first use, reset after the last). */
static int stmt(struct warmup_store *s, int i, sqlite3_stmt **out, struct blast_error *err)
{
    if (s->st[i] == NULL && sqlite3_prepare_v2(s->db, sql_of[i], -1, &s->st[i], NULL) != SQLITE_OK)
        return db_fail(s, err, "cannot read the warm-up store");
    *out = s->st[i];
    return 0;
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run statement i, which returns no rows, to its end. */
static int run(struct warmup_store *s, int i, const char *what, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = stmt(s, i, &st, err)) < 0)
        return rc;
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, what);
    sqlite3_reset(st);
    return rc;
}

/* One integer from a query of one row; 0 when it has none. */
static int query_int(struct warmup_store *s, const char *sql, int64_t *out, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, step;

    *out = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "cannot open the warm-up store");
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE)
        rc = db_fail(s, err, "cannot open the warm-up store");
    sqlite3_finalize(st);
    return rc;
}

/* Whether the file is blast's (or new), read before anything is written to it. */
static int recognise(struct warmup_store *s, struct blast_error *err)
{
    int64_t app, others;
    int rc;

    if ((rc = query_int(s, "PRAGMA application_id", &app, err)) < 0 ||
        (rc = query_int(s,
                        "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'warmup\\_%' "
                        "ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                        &others, err)) < 0)
        return rc;
    if (app == APPLICATION_ID || (app == 0 && others == 0))
        return 0;
    return blast_error_set(err, BLAST_EINVAL, s->path, 0, 0,
                           "cannot open the warm-up store: not a blast database");
}

#define TABLES                                                                                     \
    "CREATE TABLE IF NOT EXISTS warmup_meta ("                                                     \
    " name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"                                  \
    "CREATE TABLE IF NOT EXISTS warmup_first ("                                                    \
    " sender TEXT NOT NULL, provider TEXT NOT NULL, day INTEGER NOT NULL,"                         \
    " PRIMARY KEY (sender, provider)) WITHOUT ROWID;"                                              \
    "CREATE TABLE IF NOT EXISTS warmup_count ("                                                    \
    " sender TEXT NOT NULL, provider TEXT NOT NULL, day INTEGER NOT NULL,"                         \
    " sent INTEGER NOT NULL, PRIMARY KEY (sender, provider, day)) WITHOUT ROWID;"                  \
    "INSERT OR IGNORE INTO warmup_meta VALUES ('version', '1');"

/*
 * The tables, made in one transaction so that two processes opening a new file at once
 * do not trip over each other; old days' counts go (the file is opened for writing).
 */
static int schema(struct warmup_store *s, struct blast_error *err)
{
    char sql[256];
    int64_t version;
    int rc;

    if ((rc = exec(s, "BEGIN IMMEDIATE;" TABLES, "cannot set up the warm-up store", err)) < 0)
        goto out;
    if ((rc = query_int(s, "SELECT CAST(value AS INTEGER) FROM warmup_meta WHERE name = 'version'",
                        &version, err)) < 0)
        goto out;
    if (version != WARMUP_VERSION) {
        rc = blast_error_set(err, BLAST_EINVAL, s->path, 0, 0,
                             "warm-up tables of version %lld; this blast reads version %d",
                             (long long)version, WARMUP_VERSION);
        goto out;
    }
    /* relative to the latest day counted, since the store never reads the clock */
    snprintf(sql, sizeof sql,
             "DELETE FROM warmup_count WHERE day < (SELECT max(day) FROM warmup_count) - %d;"
             "COMMIT;",
             WARMUP_KEEP_DAYS);
    rc = exec(s, sql, "cannot set up the warm-up store", err);
out:
    if (rc < 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int warmup_store_open(const char *path, struct warmup_store **out, struct blast_error *err)
{
    struct warmup_store *s;
    int fd, rc;

    *out = NULL;
    if ((s = calloc(1, sizeof *s)) == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    }
    /* made private before SQLite opens it: its WAL files take the same mode */
    if ((fd = private_open(path, O_RDWR)) < 0) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open the warm-up store: %s",
                             strerror(errno));
        goto fail;
    }
    close(fd);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(s, err, "cannot open the warm-up store");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_MS);
    if ((rc = recognise(s, err)) < 0 ||
        (rc = exec(s, "PRAGMA journal_mode=WAL", "cannot open the warm-up store", err)) < 0 ||
        (rc = exec(s, "PRAGMA synchronous=NORMAL", "cannot open the warm-up store", err)) < 0 ||
        (rc = schema(s, err)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    warmup_store_close(s);
    return rc;
}

int warmup_store_open_read(const char *path, struct warmup_store **out, struct blast_error *err)
{
    struct warmup_store *s;
    int64_t tables;
    int rc;

    *out = NULL;
    if ((s = calloc(1, sizeof *s)) == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = db_fail(s, err, "cannot open the warm-up store");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_MS);
    if ((rc = recognise(s, err)) < 0 ||
        (rc = query_int(s,
                        "SELECT count(*) FROM sqlite_master WHERE name IN ('warmup_first', "
                        "'warmup_count')",
                        &tables, err)) < 0)
        goto fail;
    s->no_tables = tables < 2;
    *out = s;
    return 0;
fail:
    warmup_store_close(s);
    return rc;
}

void warmup_store_close(struct warmup_store *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static int check_names(const char *sender, const char *provider, struct blast_error *err)
{
    if (sender == NULL || sender[0] == '\0')
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "warm-up: no sending domain");
    if (provider == NULL || provider[0] == '\0')
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "warm-up: no provider");
    return 0;
}

/* SQLite keeps integers signed: counts and caps stop at INT64_MAX. */
static int64_t clamp(uint64_t n)
{
    return n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

static void bind_key(sqlite3_stmt *st, const char *sender, const char *provider, int64_t day)
{
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, provider, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, day);
}

int warmup_first_day(struct warmup_store *s, const char *sender, const char *provider,
                     int64_t today, int64_t *first, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    *first = today;
    if ((rc = check_names(sender, provider, err)) < 0 || (rc = stmt(s, ST_FIRST_ADD, &st, err)) < 0)
        return rc;
    bind_key(st, sender, provider, today);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, "cannot write to the warm-up store");
    done(st);
    if (rc < 0 || (rc = stmt(s, ST_FIRST_GET, &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, provider, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *first = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(s, err, "cannot read the warm-up store");
    done(st);
    return rc;
}

int warmup_first_known(struct warmup_store *s, const char *sender, const char *provider,
                       int64_t *first, bool *found, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    *found = false;
    if ((rc = check_names(sender, provider, err)) < 0 || (rc = stmt(s, ST_FIRST_GET, &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, provider, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *first = sqlite3_column_int64(st, 0);
        *found = true;
    } else if (step != SQLITE_DONE) {
        rc = db_fail(s, err, "cannot read the warm-up store");
    }
    done(st);
    return rc;
}

int warmup_first_forget(struct warmup_store *s, const char *sender, const char *provider,
                        int64_t day, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = check_names(sender, provider, err)) < 0 ||
        (rc = stmt(s, ST_FIRST_FORGET, &st, err)) < 0)
        return rc;
    bind_key(st, sender, provider, day);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, "cannot write to the warm-up store");
    done(st);
    return rc;
}

/* The count of (sender, provider, day) as stored (0 when there is no row). */
static int get(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
               int64_t *sent, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    *sent = 0;
    if ((rc = stmt(s, ST_GET, &st, err)) < 0)
        return rc;
    bind_key(st, sender, provider, day);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *sent = sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE)
        rc = db_fail(s, err, "cannot read the warm-up store");
    done(st);
    return rc;
}

int warmup_reserve(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
                   uint64_t cap, uint64_t want, uint64_t *granted, struct blast_error *err)
{
    const char *what = "cannot write to the warm-up store";
    sqlite3_stmt *st = NULL;
    int64_t sent, limit = clamp(cap), take;
    int rc;

    *granted = 0;
    if ((rc = check_names(sender, provider, err)) < 0 || want == 0)
        return rc;
    /* IMMEDIATE: the write lock before the read, so no other process reads the same count */
    if ((rc = run(s, ST_BEGIN, what, err)) < 0)
        return rc;
    if ((rc = get(s, sender, provider, day, &sent, err)) < 0)
        goto out;
    take = sent < limit ? limit - sent : 0;
    if ((uint64_t)take > want)
        take = (int64_t)want;
    if (take > 0) {
        if ((rc = stmt(s, ST_PUT, &st, err)) < 0)
            goto out;
        bind_key(st, sender, provider, day);
        sqlite3_bind_int64(st, 4, sent + take);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, what);
        done(st);
        if (rc < 0)
            goto out;
    }
    if ((rc = run(s, ST_COMMIT, what, err)) == 0)
        *granted = (uint64_t)take;
out:
    if (rc < 0 && !sqlite3_get_autocommit(s->db))
        run(s, ST_ROLLBACK, what, NULL);
    return rc;
}

int warmup_release(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
                   uint64_t n, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = check_names(sender, provider, err)) < 0 || n == 0)
        return rc;
    /* one statement: atomic by itself, and a count already at 0 stays there */
    if ((rc = stmt(s, ST_RELEASE, &st, err)) < 0)
        return rc;
    bind_key(st, sender, provider, day);
    sqlite3_bind_int64(st, 4, clamp(n));
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, "cannot write to the warm-up store");
    done(st);
    return rc;
}

int warmup_count(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
                 uint64_t *sent, struct blast_error *err)
{
    int64_t n = 0;
    int rc;

    *sent = 0;
    if ((rc = check_names(sender, provider, err)) < 0)
        return rc;
    if (s->no_tables)
        return 0;
    if ((rc = get(s, sender, provider, day, &n, err)) < 0)
        return rc;
    *sent = n > 0 ? (uint64_t)n : 0;
    return 0;
}

int warmup_each(struct warmup_store *s, const char *sender, int64_t day,
                int (*fn)(void *arg, const struct warmup_row *r), void *arg,
                struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    struct warmup_row r;
    int rc = 0, step = SQLITE_DONE;

    if (s->no_tables)
        return 0; /* nothing counted yet */
    if (sender == NULL || sender[0] == '\0')
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "warm-up: no sending domain");
    if (sqlite3_prepare_v2(s->db,
                           "SELECT provider, coalesce(min(first), min(counted)), sum(today) FROM ("
                           " SELECT provider, day AS first, NULL AS counted, 0 AS today"
                           " FROM warmup_first WHERE sender = lower(?1)"
                           " UNION ALL SELECT provider, NULL, day, CASE WHEN day = ?2 THEN sent"
                           " ELSE 0 END FROM warmup_count WHERE sender = lower(?1))"
                           " GROUP BY provider ORDER BY provider",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "cannot read the warm-up store");
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, day);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sent = sqlite3_column_int64(st, 2);
        r.provider = (const char *)sqlite3_column_text(st, 0);
        r.first_day = sqlite3_column_int64(st, 1);
        r.sent = sent > 0 ? (uint64_t)sent : 0;
        rc = fn(arg, &r);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, "cannot read the warm-up store");
    sqlite3_finalize(st);
    return rc;
}
