/*
 * tzone - IANA time zones read from the system's TZif files (RFC 8536), for the send
 * windows of recipients in zones of their own.
 *
 * Owns: reading and checking a zone's file (version 1's 32-bit data, version 2 and
 * later's 64-bit data and its POSIX TZ footer, RFC 8536 §3.3, with the §3.3.1
 * extensions), UTC to local time and back, the process's own zone as $TZ or
 * /etc/localtime name it, and a cache of zones by name.
 * Does not own: the process's TZ and tzset(), which it never touches, so the threads
 * that write Date headers with localtime_r() are not disturbed; what a send window is
 * (window).
 *
 * A loaded zone is immutable: one may be read by any number of threads at once.
 * Leap seconds ("right/" zones) are not applied: instants are POSIX times.
 */
#ifndef BLAST_TZONE_H
#define BLAST_TZONE_H

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

#define TZONE_NAME_MAX 255 /* the longest name or TZ string accepted */

struct tzone;

/*
 * Load the zone called name ("Europe/Paris", "UTC", "Etc/GMT+5") from $TZDIR, else
 * /usr/share/zoneinfo. Names that are empty, absolute, hold "..", characters other
 * than letters, digits and "/_-+.", or that name no TZif file are refused with
 * BLAST_EINVAL ("unknown time zone 'Europe/Pariss'"); a file that is damaged with
 * BLAST_EINVAL too, saying what is wrong; a file that cannot be read with BLAST_EIO.
 * On success *out is the caller's, freed with tzone_free().
 */
int tzone_load(const char *name, struct tzone **out, struct blast_error *err);

/*
 * The process's zone as the C library would take it, read without tzset(): $TZ
 * (":Name", "Name", an absolute path, or a POSIX TZ string such as
 * "CET-1CEST,M3.5.0,M10.5.0/3"; empty is UTC), else /etc/localtime, else UTC. A $TZ
 * that is none of these is an error (the C library would quietly use UTC).
 */
int tzone_load_local(struct tzone **out, struct blast_error *err);

/* The name it was loaded by ("Europe/Paris", the TZ string, "UTC"). Owned by z. */
const char *tzone_name(const struct tzone *z);

/* Local time at an instant. */
struct tzone_tm {
    int year, month /* 1-12 */, day /* 1-31 */, hour, minute, second;
    int wday;       /* 0 = Sunday */
    int32_t gmtoff; /* seconds east of UTC */
    bool isdst;
    char abbr[16]; /* "CEST", "+0530" */
};

/* The local time in z at utc (seconds since the epoch; clamped to about ±10^9 years). */
void tzone_local(const struct tzone *z, int64_t utc, struct tzone_tm *out);

/*
 * The instant at which the wall clock in z reads year-month-day hour:minute:00. Fields
 * out of range carry over (day 32 is the next month's first, hour 24 the next day's
 * midnight). A time a gap skips (spring forward) maps to the gap's end, the first
 * instant that exists after it; a time the clock reads twice (fall back) to the first.
 */
int64_t tzone_utc(const struct tzone *z, int year, int month, int day, int hour, int minute);

/*
 * The first instant after utc at which the offset, abbreviation or DST flag of z may
 * change (a transition of its file or of its TZ rule), or INT64_MAX when none does.
 */
int64_t tzone_next_change(const struct tzone *z, int64_t utc);

/* Accepts NULL. */
void tzone_free(struct tzone *z);

/*
 * Zones by name for a list with a zone on every row: each name is loaded once, and a
 * name that failed fails again with the same error without touching the disk. For one
 * thread; the zones it hands out are owned by the cache and live until
 * tzone_cache_free(), and may be shared with other threads meanwhile.
 */
struct tzone_cache;

int tzone_cache_new(struct tzone_cache **out, struct blast_error *err);
int tzone_cache_get(struct tzone_cache *c, const char *name, const struct tzone **out,
                    struct blast_error *err);
/* Accepts NULL. */
void tzone_cache_free(struct tzone_cache *c);

#endif
