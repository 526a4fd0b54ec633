/*
 * window - a campaign's send window: the days and hours at which a recipient may
 * receive mail, read on the wall clock of a time zone (the campaign's, or the
 * recipient's own).
 *
 * Owns: the window's text forms ("mon-fri", "09:00-17:00, 20:00-22:00") read and
 * written, and whether it is open at an instant and when it next opens.
 * Does not own: the zones (tzone), where the settings sit in the campaign and their
 * places in its file (campaign), holding a recipient back until the window opens
 * (pool). Pure: no clock, no I/O, no allocation; safe from any thread.
 *
 * How it reads the clock:
 *   - Open when the local wall-clock time, as the clock shows it, lies within a span
 *     of a listed day. Through a fall-back fold the clock is read as it is: the hour
 *     that happens twice is in the window both times (or neither).
 *   - A span belongs to the day it starts on: a Friday "22:00-06:00" runs into
 *     Saturday morning even when Saturday is not a listed day.
 *   - A spring-forward gap skips the times in it: a span that starts in the gap opens
 *     at the gap's end (the first instant that exists); a span that lies wholly in the
 *     gap ("02:00-03:00" on the night 02:00 becomes 03:00) opens at the gap's end for
 *     its usual length rather than being lost.
 *   - Spans are whole minutes, from inclusive, to exclusive.
 */
#ifndef BLAST_WINDOW_H
#define BLAST_WINDOW_H

#include "tzone.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WINDOW_SPANS_MAX 8
#define WINDOW_EVERY_DAY 0x7f

/*
 * Minutes after local midnight. from is 0 to 1439; to is 1 to 1440 (24:00) and after
 * from, or before from for a span that crosses midnight into the next day
 * ("22:00-06:00": 1320, 360). Never equal.
 */
struct window_span {
    uint16_t from, to;
};

/*
 * days: bit 0 Monday ... bit 6 Sunday; 0 (never set) is every day. No spans: the
 * whole of each listed day. A zeroed struct window is always open.
 */
struct window {
    uint8_t days;
    struct window_span spans[WINDOW_SPANS_MAX]; /* sorted by from, none overlapping */
    size_t nspans;
};

/*
 * The days of a campaign's text: "mon-fri", "mon,wed,fri", "sat-sun", "fri-mon"
 * (wraps past Sunday), full names ("Monday"), any case, "weekdays", "weekends",
 * "every day" or "daily". On success *days is never 0. On error: BLAST_EINVAL, and why
 * holds a short phrase without a place ("unknown day 'funday'"), for the caller to put
 * its file, line and column in front of.
 */
int window_parse_days(const char *s, uint8_t *days, char *why, size_t whysize);

/*
 * The hours of a campaign's text into w's spans (w's days are left as they are):
 * "09:00-17:00", "9-17", "08:30-12:00, 14:00-18:00", "22:00-06:00" (crosses midnight),
 * "00:00-24:00" (the whole day); "22:00-00:00" ends at midnight. Refused, with
 * BLAST_EINVAL and why: empty text, a time that is not one, a span that is empty or
 * starts at 24:00, more than WINDOW_SPANS_MAX spans, spans that share a minute of the
 * clock (on whatever day: "22:00-06:00, 05:00-09:00" overlap). w is unchanged on error.
 */
int window_parse_hours(const char *s, struct window *w, char *why, size_t whysize);

/*
 * Whether w is open at now (UTC seconds) in zone z. When it is, *opens = now; when
 * not, *opens is the next instant it opens, searched up to 8 days ahead (INT64_MAX if
 * none is found there, which a window with a listed day and a span cannot give).
 * opens may be NULL.
 */
bool window_open(const struct window *w, const struct tzone *z, int64_t now, int64_t *opens);

/*
 * The canonical text: "Mon-Fri 09:00-17:00", "Mon,Wed,Fri 08:30-12:00, 14:00-18:00",
 * "Fri-Mon 22:00-06:00", "every day 00:00-24:00". Truncated to size.
 */
void window_describe(const struct window *w, char *out, size_t size);

/*
 * How the reason of a recipient held back by its window begins: the report counts
 * the deferred entries whose detail starts so (report.h).
 */
#define WINDOW_HELD_PREFIX "send window: "

/*
 * Why a recipient is not sent now, for its report entry: "send window: closed in
 * America/New_York (Mon-Fri 09:00-17:00); opens 2026-12-07 09:00 EST
 * (2026-12-07T14:00:00Z)", opens being what window_open() said (INT64_MAX: "not
 * within a week"). Truncated to size.
 */
void window_explain(const struct window *w, const struct tzone *z, int64_t opens, char *out,
                    size_t size);

#endif
