/*
 * warmup - a new sender's daily caps per mailbox provider, counted across runs and
 * campaigns: mailbox providers distrust a new sending domain that sends a lot at once.
 *
 * Owns: the ramp of daily caps (a list, or first/growth/until) and the day of the ramp
 * a calendar day is; the store of what each sending domain has sent to each provider on
 * each day, and the day it first sent to it, in SQLite (the schema is in warmup.c). The
 * store may be the suppression database's own file: its tables are named warmup_* and
 * it leaves the file's application_id and user_version to core/suppressdb. Several
 * processes may reserve from the same cap at once (BEGIN IMMEDIATE, WAL, a wait of up
 * to 10 seconds for a lock another process holds).
 *
 * Does not own: the clock (days are integers, days since 1970-01-01 in the campaign's
 * time zone, computed by the caller), which provider a domain belongs to (provider; a
 * domain of none is counted under "other", the caller's word), parsing the campaign's
 * warmup: setting (campaign), deferring what is over the cap (send).
 */
#ifndef BLAST_WARMUP_H
#define BLAST_WARMUP_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No cap: the day is past the ramp (or past the list). */
#define WARMUP_NO_CAP UINT64_MAX

/* The largest cap a ramp computes or warmup_schedule_check() accepts (10^12). */
#define WARMUP_MAX_CAP 1000000000000ULL

/* The growth a ramp accepts; a ramp's growth outside is taken as the nearer bound. */
#define WARMUP_GROWTH_MIN 1.01
#define WARMUP_GROWTH_MAX 10.0

/* The provider name of recipients whose domain belongs to no known provider. */
#define WARMUP_OTHER "other"

struct warmup_schedule {
    /*
     * Either an explicit list of daily caps (used when ndaily > 0): day 1 = daily[0],
     * past the end no cap. The list belongs to whoever built the schedule (campaign),
     * who frees it; warmup only reads it and keeps no pointer to it.
     */
    uint64_t *daily;
    size_t ndaily;
    /*
     * Or a ramp: day 1 = first, each next day the day before x growth (rounded down,
     * and at least one more), until a cap reaches until: that day and the days after
     * have no cap. growth is taken to six decimals.
     */
    uint64_t first;
    double growth;
    uint64_t until;
};

/* The default ramp: 200 a day per provider on day 1, x1.4 a day, until 100,000 (19 capped days). */
void warmup_schedule_default(struct warmup_schedule *s);

/*
 * Whether s is one blast will send by: a list of caps from 1 to WARMUP_MAX_CAP (a
 * list need not grow: a provider may have asked for less); a ramp's first from 1 to
 * WARMUP_MAX_CAP, growth from WARMUP_GROWTH_MIN to WARMUP_GROWTH_MAX, until above
 * first and at most WARMUP_MAX_CAP. Errors: BLAST_EINVAL, saying which value and why
 * (source left empty: the caller knows the campaign file and line).
 */
int warmup_schedule_check(const struct warmup_schedule *s, struct blast_error *err);

/*
 * Today's cap on day `day` of the ramp (1-based; day <= 0 is taken as day 1), or
 * WARMUP_NO_CAP once the ramp or the list is over. Never overflows: a ramp's caps
 * stop at until (itself taken as at most WARMUP_MAX_CAP), and they never decrease.
 */
uint64_t warmup_cap(const struct warmup_schedule *s, int64_t day);

/* The day of the ramp of the last capped day (the warm-up ends on it); 0 when no day is capped. */
int64_t warmup_days(const struct warmup_schedule *s);

/* The day of the ramp that calendar day today is for a provider first sent to on first_day. */
int64_t warmup_ramp_day(int64_t first_day, int64_t today);

/* Counts this many days older than the latest day counted are dropped on opening. */
#define WARMUP_KEEP_DAYS 400

struct warmup_store;

/*
 * Open the store at path, creating the file (mode 0600, whatever the umask) and its
 * tables when they are missing, and dropping counts more than WARMUP_KEEP_DAYS older
 * than the latest day counted. The file may already be a blast suppression database.
 * Errors: BLAST_EIO (cannot open or create it, or it is locked for more than 10 s;
 * err names the path), BLAST_EINVAL (a SQLite file that is not blast's, or warm-up
 * tables of a later version), BLAST_ENOMEM. *out is the caller's, for warmup_store_close().
 */
int warmup_store_open(const char *path, struct warmup_store **out, struct blast_error *err);

/* Close and free. Accepts NULL. */
void warmup_store_close(struct warmup_store *s);

/*
 * The store opened to read only (blast check): nothing is created, pruned or switched
 * to WAL; a file without the warm-up tables (a suppression database) reads as empty.
 * Only warmup_each() and warmup_count() may be used on it.
 */
int warmup_store_open_read(const char *path, struct warmup_store **out, struct blast_error *err);

/*
 * sender is the sending domain (the From address's domain), provider a provider's
 * name or WARMUP_OTHER; both are matched without regard to case (ASCII) and kept
 * lower-cased. An empty or NULL one is BLAST_EINVAL. A handle is used by one thread.
 */

/*
 * The first day recorded for this sender and provider, without recording one: *found
 * false (and *first untouched) when there is none yet. Errors: BLAST_EIO, BLAST_EINVAL.
 */
int warmup_first_known(struct warmup_store *s, const char *sender, const char *provider,
                       int64_t *first, bool *found, struct blast_error *err);

/*
 * Forget the first day recorded for this sender and provider when it is day (a run
 * that recorded it and then sent nothing after all). Errors: BLAST_EIO, BLAST_EINVAL.
 */
int warmup_first_forget(struct warmup_store *s, const char *sender, const char *provider,
                        int64_t day, struct blast_error *err);

/*
 * The first day this sender sent to this provider (the ramp's day 1) in *first,
 * recording today when there is none yet; an earlier one is kept. Errors: BLAST_EIO,
 * BLAST_EINVAL.
 */
int warmup_first_day(struct warmup_store *s, const char *sender, const char *provider,
                     int64_t today, int64_t *first, struct blast_error *err);

/*
 * Take up to want of what remains of cap for (sender, provider, day), atomically even
 * between processes: *granted is what was taken, 0 once the cap is reached. cap may
 * be WARMUP_NO_CAP (everything is granted, and counted). Errors: BLAST_EIO (also
 * when another process holds the lock for more than 10 s; nothing is taken then),
 * BLAST_EINVAL.
 */
int warmup_reserve(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
                   uint64_t cap, uint64_t want, uint64_t *granted, struct blast_error *err);

/*
 * Give back n that was reserved but not used (a run that stopped early); the count
 * never goes below 0. Errors: BLAST_EIO, BLAST_EINVAL.
 */
int warmup_release(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
                   uint64_t n, struct blast_error *err);

/* What was counted for (sender, provider, day); 0 when nothing. Errors: BLAST_EIO, BLAST_EINVAL. */
int warmup_count(struct warmup_store *s, const char *sender, const char *provider, int64_t day,
                 uint64_t *sent, struct blast_error *err);

/* One provider of a sender, as warmup_each() hands it. */
struct warmup_row {
    const char *provider; /* lower-cased; valid during the call */
    int64_t first_day;    /* the recorded first day, else the earliest day counted */
    uint64_t sent;        /* what was counted on the day asked about */
};

/*
 * Every provider sender has counts or a first day for, ordered by name (for blast
 * check and the report); fn returning non-zero stops with that value. Errors:
 * BLAST_EIO, BLAST_EINVAL.
 */
int warmup_each(struct warmup_store *s, const char *sender, int64_t day,
                int (*fn)(void *arg, const struct warmup_row *r), void *arg,
                struct blast_error *err);

#endif
