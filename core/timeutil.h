/*
 * timeutil - clocks and the two date formats blast writes.
 *
 * Deadlines are milliseconds on the monotonic clock, so a wall-clock jump cannot
 * stretch or cut a timeout. Dates in messages use RFC 5322 §3.3 (local time with its
 * offset); dates in reports use RFC 3339 in UTC.
 */
#ifndef BLAST_TIMEUTIL_H
#define BLAST_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t timeutil_mono_ms(void);

/* Wall-clock time as seconds and microseconds since the epoch. */
struct timeutil_stamp {
    time_t sec;
    long usec;
};
struct timeutil_stamp timeutil_now(void);

/* "Sun, 22 Nov 2026 16:20:00 +0100" (RFC 5322 §3.3). out holds at least 40 bytes. */
void timeutil_rfc5322(time_t t, char *out, size_t size);

/* "2026-11-22T15:20:00.123Z" (RFC 3339, UTC, milliseconds). out holds at least 32 bytes. */
void timeutil_rfc3339(struct timeutil_stamp t, char *out, size_t size);

/* Parse what timeutil_rfc3339() writes ("2026-11-22T15:20:00.123Z"). Returns 0 or -1. */
int timeutil_parse_rfc3339(const char *s, struct timeutil_stamp *out);

/*
 * Days since 1970-01-01 of a date of the proleptic Gregorian calendar (month 1-12;
 * a day out of range carries over, as mktime's does).
 */
int64_t timeutil_days_from_civil(int year, int month, int day);

#endif
