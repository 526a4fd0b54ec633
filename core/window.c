/*
 * window - a campaign's send window on a zone's wall clock. See window.h.
 */
#include "window.h"

#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DAY     86400
#define MINUTES 1440
/* How far window_open() looks for the next opening: a week and a day, so a window of
 * one day a week is always found, whatever a DST change does to that day. */
#define HORIZON (8 * DAY)

static const char *const day_names[] = {"monday", "tuesday",  "wednesday", "thursday",
                                        "friday", "saturday", "sunday"};
static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* s[0..n) without the blanks around it. */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* An input quoted in a reason: enough of it to recognise. */
#define QUOTED(n) (int)((n) > 40 ? 40 : (n))

static int fail(char *why, size_t whysize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whysize, const char *fmt, ...)
{
    va_list ap;

    if (whysize > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whysize, fmt, ap);
        va_end(ap);
    }
    return BLAST_EINVAL;
}

/* ---- days ---------------------------------------------------------------------------- */

/* 0 (Monday) to 6, or -1: three letters or the whole name, any case. */
static int day_index(const char *s, size_t n)
{
    int i;

    for (i = 0; i < 7; i++)
        if ((n == 3 || n == strlen(day_names[i])) && strncasecmp(s, day_names[i], n) == 0)
            return i;
    return -1;
}

/* Bits a to b, wrapping past Sunday ("fri-mon"). */
static uint8_t day_range(int a, int b)
{
    uint8_t bits = 0;

    for (;;) {
        bits |= (uint8_t)(1u << a);
        if (a == b)
            return bits;
        a = (a + 1) % 7;
    }
}

static int parse_day_item(const char *s, size_t n, uint8_t *days, char *why, size_t whysize)
{
    const char *dash = memchr(s, '-', n);
    int a, b;

    trim(&s, &n);
    if (n == 0)
        return fail(why, whysize, "a day is missing");
    if ((n == 9 && strncasecmp(s, "every day", 9) == 0) ||
        (n == 5 && strncasecmp(s, "daily", 5) == 0)) {
        *days |= WINDOW_EVERY_DAY;
        return 0;
    }
    if (n == 8 && strncasecmp(s, "weekdays", 8) == 0) {
        *days |= day_range(0, 4);
        return 0;
    }
    if (n == 8 && strncasecmp(s, "weekends", 8) == 0) {
        *days |= day_range(5, 6);
        return 0;
    }
    if (dash == NULL) {
        if ((a = day_index(s, n)) < 0)
            return fail(why, whysize, "unknown day '%.*s'", QUOTED(n), s);
        *days |= (uint8_t)(1u << a);
        return 0;
    }
    {
        const char *l = s, *r = dash + 1;
        size_t ln = (size_t)(dash - s), rn = n - ln - 1;

        trim(&l, &ln);
        trim(&r, &rn);
        if (ln == 0 || rn == 0)
            return fail(why, whysize, "'%.*s' is not a range of days (as mon-fri)", QUOTED(n), s);
        if ((a = day_index(l, ln)) < 0)
            return fail(why, whysize, "unknown day '%.*s'", QUOTED(ln), l);
        if ((b = day_index(r, rn)) < 0)
            return fail(why, whysize, "unknown day '%.*s'", QUOTED(rn), r);
        *days |= day_range(a, b);
    }
    return 0;
}

int window_parse_days(const char *s, uint8_t *days, char *why, size_t whysize)
{
    uint8_t bits = 0;
    int rc;

    if (s == NULL || *skip_space(s) == '\0')
        return fail(why, whysize, "no days given");
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma != NULL ? (size_t)(comma - s) : strlen(s);

        if ((rc = parse_day_item(s, n, &bits, why, whysize)) != 0)
            return rc;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    *days = bits;
    return 0;
}

/* ---- hours --------------------------------------------------------------------------- */

/* "9", "09", "9:30", "09:30", "24:00" into minutes after midnight, or -1. */
static int parse_time(const char *s, size_t n)
{
    int h = 0, m = 0;
    size_t i = 0, hd = 0;

    while (i < n && s[i] >= '0' && s[i] <= '9' && hd < 2) {
        h = h * 10 + (s[i++] - '0');
        hd++;
    }
    if (hd == 0)
        return -1;
    if (i < n) {
        if (s[i] != ':' || n - i != 3 || s[i + 1] < '0' || s[i + 1] > '5' || s[i + 2] < '0' ||
            s[i + 2] > '9')
            return -1;
        m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    }
    if (h > 24 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

static void format_span(const struct window_span *sp, char *out, size_t size)
{
    snprintf(out, size, "%02d:%02d-%02d:%02d", sp->from / 60, sp->from % 60, sp->to / 60,
             sp->to % 60);
}

/* The minutes of the clock a span covers: one or two intervals [lo, hi). */
static int clock_parts(const struct window_span *sp, int lo[2], int hi[2])
{
    if (sp->to > sp->from) {
        lo[0] = sp->from;
        hi[0] = sp->to;
        return 1;
    }
    lo[0] = sp->from;
    hi[0] = MINUTES;
    lo[1] = 0;
    hi[1] = sp->to;
    return 2;
}

static bool overlap(const struct window_span *a, const struct window_span *b)
{
    int alo[2], ahi[2], blo[2], bhi[2], na = clock_parts(a, alo, ahi),
                                        nb = clock_parts(b, blo, bhi);
    int i, j;

    for (i = 0; i < na; i++)
        for (j = 0; j < nb; j++)
            if (alo[i] < bhi[j] && blo[j] < ahi[i])
                return true;
    return false;
}

static int parse_span(const char *s, size_t n, struct window_span *sp, char *why, size_t whysize)
{
    const char *dash, *l, *r;
    size_t ln, rn;
    int from, to;

    trim(&s, &n);
    if (n == 0)
        return fail(why, whysize, "a span is missing");
    dash = memchr(s, '-', n);
    if (dash == NULL)
        return fail(why, whysize, "'%.*s' is not a span of hours (as 09:00-17:00)", QUOTED(n), s);
    l = s;
    ln = (size_t)(dash - s);
    r = dash + 1;
    rn = n - ln - 1;
    trim(&l, &ln);
    trim(&r, &rn);
    if ((from = parse_time(l, ln)) < 0)
        return fail(why, whysize, "'%.*s' is not a time of day (00:00 to 24:00)", QUOTED(ln), l);
    if ((to = parse_time(r, rn)) < 0)
        return fail(why, whysize, "'%.*s' is not a time of day (00:00 to 24:00)", QUOTED(rn), r);
    if (from == MINUTES)
        return fail(why, whysize, "'%.*s' starts at 24:00, the end of the day", QUOTED(n), s);
    if (from == to)
        return fail(why, whysize, "'%.*s' is empty", QUOTED(n), s);
    sp->from = (uint16_t)from;
    sp->to = (uint16_t)(to == 0 ? MINUTES : to); /* "22:00-00:00": until midnight */
    return 0;
}

int window_parse_hours(const char *s, struct window *w, char *why, size_t whysize)
{
    struct window_span spans[WINDOW_SPANS_MAX];
    size_t n = 0, i, j;
    int rc;

    if (s == NULL || *skip_space(s) == '\0')
        return fail(why, whysize, "no hours given");
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);

        if (n == WINDOW_SPANS_MAX) {
            return fail(why, whysize, "more than %d spans of hours", WINDOW_SPANS_MAX);
        }
        if ((rc = parse_span(s, len, &spans[n], why, whysize)) != 0)
            return rc;
        n++;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (overlap(&spans[i], &spans[j])) {
                char a[16], b[16];

                format_span(&spans[i], a, sizeof a);
                format_span(&spans[j], b, sizeof b);
                return fail(why, whysize, "%s and %s overlap", a, b);
            }
    /* sorted by start, for the canonical text (at most 8: insertion) */
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && spans[j].from < spans[j - 1].from; j--) {
            struct window_span t = spans[j];

            spans[j] = spans[j - 1];
            spans[j - 1] = t;
        }
    memcpy(w->spans, spans, n * sizeof spans[0]);
    w->nspans = n;
    return 0;
}

/* ---- open or closed ------------------------------------------------------------------ */

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The spans in effect: none listed is the whole day. */
static size_t spans_of(const struct window *w, const struct window_span **spans)
{
    static const struct window_span whole = {0, MINUTES};

    if (w->nspans == 0 || w->nspans > WINDOW_SPANS_MAX) {
        *spans = &whole;
        return 1;
    }
    *spans = w->spans;
    return w->nspans;
}

/* Whether the local day number (days since 1970-01-01 on the wall clock) is listed. */
static bool listed(const struct window *w, int64_t day)
{
    int monday0 = (int)(((day % 7) + 10) % 7); /* 1970-01-01 was a Thursday: 3 */
    uint8_t days = w->days != 0 ? w->days : WINDOW_EVERY_DAY;

    return (days >> monday0) & 1;
}

static int span_length(const struct window_span *sp)
{
    return sp->to > sp->from ? sp->to - sp->from : sp->to + MINUTES - sp->from;
}

/* Open by the wall clock: local seconds (UTC seconds plus the offset) in a span. */
static bool open_by_clock(const struct window *w, int64_t local)
{
    const struct window_span *spans;
    size_t n = spans_of(w, &spans), i;
    int64_t day = floordiv(local, DAY);
    int m = (int)((local - day * DAY) / 60);

    for (i = 0; i < n; i++) {
        const struct window_span *sp = &spans[i];

        if (listed(w, day) && m >= sp->from && m < (sp->to > sp->from ? sp->to : MINUTES))
            return true;
        if (sp->to < sp->from && listed(w, day - 1) && m < sp->to)
            return true; /* the rest of yesterday's span */
    }
    return false;
}

/*
 * Open through a span a gap swallowed whole: it runs from the gap's end for its usual
 * length. The gaps that can matter ended within the longest span (a day and less).
 */
static bool open_by_gap(const struct window *w, const struct tzone *z, int64_t now)
{
    const struct window_span *spans;
    size_t n = spans_of(w, &spans), i;
    int64_t t;

    for (t = tzone_next_change(z, now - 2 * DAY); t <= now; t = tzone_next_change(z, t)) {
        struct tzone_tm before, after;
        int64_t lo, hi, day;

        tzone_local(z, t - 1, &before);
        tzone_local(z, t, &after);
        if (after.gmtoff <= before.gmtoff)
            continue;
        lo = t + before.gmtoff; /* the local times [lo, hi) do not exist */
        hi = t + after.gmtoff;
        for (day = floordiv(lo, DAY) - 1; day <= floordiv(hi, DAY); day++) {
            if (!listed(w, day))
                continue;
            for (i = 0; i < n; i++) {
                int64_t start = day * DAY + spans[i].from * 60, len = span_length(&spans[i]) * 60;

                if (start >= lo && start + len <= hi && now < t + len)
                    return true;
            }
        }
    }
    return false;
}

/* The first span start on the wall clock after local (local seconds), in the next days. */
static int64_t next_start(const struct window *w, int64_t local)
{
    const struct window_span *spans;
    size_t n = spans_of(w, &spans), i;
    int64_t day, best = INT64_MAX;

    for (day = floordiv(local, DAY); day <= floordiv(local, DAY) + 8 && best == INT64_MAX; day++) {
        if (!listed(w, day))
            continue;
        for (i = 0; i < n; i++) {
            int64_t start = day * DAY + spans[i].from * 60;

            if (start > local && start < best)
                best = start;
        }
    }
    return best;
}

bool window_open(const struct window *w, const struct tzone *z, int64_t now, int64_t *opens)
{
    int64_t t = now, limit = now + HORIZON;
    int steps;

    /*
     * Open or closed changes only where the wall clock reaches a span's start or end,
     * or where the zone's offset changes; from now, step to the nearer of the next
     * start and the next change until it is open. Steps are bounded: a start or a
     * change each, 8 spans a day for 8 days and a zone's few changes.
     */
    for (steps = 0; steps < 1024 && t <= limit; steps++) {
        struct tzone_tm tm;
        int64_t local, start, change, next;

        tzone_local(z, t, &tm);
        local = t + tm.gmtoff;
        if (open_by_clock(w, local) || open_by_gap(w, z, t)) {
            if (opens != NULL)
                *opens = t;
            return t == now;
        }
        start = next_start(w, local);
        change = tzone_next_change(z, t);
        next = start != INT64_MAX ? t + (start - local) : INT64_MAX;
        next = change < next ? change : next;
        if (next == INT64_MAX)
            break;
        t = next;
    }
    if (opens != NULL)
        *opens = INT64_MAX;
    return false;
}

/* ---- text ---------------------------------------------------------------------------- */

static void append(char *out, size_t size, size_t *at, const char *s)
{
    size_t n = strlen(s);

    if (size == 0)
        return;
    if (*at + n >= size)
        n = size - 1 - *at;
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = '\0';
}

void window_describe(const struct window *w, char *out, size_t size)
{
    uint8_t days = w->days != 0 ? w->days : WINDOW_EVERY_DAY;
    const struct window_span *spans;
    size_t n = spans_of(w, &spans), at = 0, i;
    bool first = true;
    int d;

    if (size > 0)
        out[0] = '\0';
    if (days == WINDOW_EVERY_DAY) {
        append(out, size, &at, "every day");
    } else {
        /* runs of consecutive days, wrapping past Sunday, each from a day whose eve is
         * not listed: "Mon-Fri", "Fri-Mon", "Mon,Wed,Fri" */
        for (d = 0; d < 7; d++) {
            int end = d;

            if (!((days >> d) & 1) || ((days >> ((d + 6) % 7)) & 1))
                continue;
            while ((days >> ((end + 1) % 7)) & 1)
                end = (end + 1) % 7;
            append(out, size, &at, first ? "" : ",");
            append(out, size, &at, day_short[d]);
            if (end != d) {
                append(out, size, &at, "-");
                append(out, size, &at, day_short[end]);
            }
            first = false;
        }
    }
    for (i = 0; i < n; i++) {
        char span[16];

        format_span(&spans[i], span, sizeof span);
        append(out, size, &at, i == 0 ? " " : ", ");
        append(out, size, &at, span);
    }
}

void window_explain(const struct window *w, const struct tzone *z, int64_t opens, char *out,
                    size_t size)
{
    char text[160], when[96];

    window_describe(w, text, sizeof text);
    if (opens == INT64_MAX) {
        snprintf(when, sizeof when, "not within a week");
    } else {
        time_t t = (time_t)opens;
        struct tzone_tm tm;
        struct tm u;
        char utc[32];

        tzone_local(z, opens, &tm);
        gmtime_r(&t, &u);
        strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", &u);
        snprintf(when, sizeof when, "%04d-%02d-%02d %02d:%02d %s (%s)", tm.year, tm.month, tm.day,
                 tm.hour, tm.minute, tm.abbr, utc);
    }
    snprintf(out, size, WINDOW_HELD_PREFIX "closed in %s (%s); opens %s", tzone_name(z), text,
             when);
}
