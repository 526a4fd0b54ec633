/*
 * runstats - what a campaign's runs looked like, counted while its report streams by.
 * See runstats.h.
 */
#include "runstats.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const int64_t runstats_latency_bounds[RUNSTATS_LATENCY_BUCKETS - 1] = {
    1, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400,
};
const char *const runstats_latency_names[RUNSTATS_LATENCY_BUCKETS] = {
    "under 1 s",    "1 s to 1 min",  "1 to 10 min", "10 min to 1 h",
    "1 to 6 hours", "6 to 24 hours", "1 to 7 days", "7 days or more",
};

/* Each step divides the next, so that bins aligned to one step merge into the next. */
static const int64_t ladder[] = {
    1,        2,         10,        30,        60,        120,        600,        1800,
    3600,     7200,      21600,     43200,     86400,     604800,     2419200,    29030400,
    58060800, 116121600, 232243200, 464486400, 928972800, 1857945600, 3715891200, 7431782400,
};
#define LADDER_STEPS (sizeof ladder / sizeof ladder[0])

static int64_t floor_to(int64_t t, int64_t width)
{
    int64_t q = t / width;
    if (t % width != 0 && t < 0)
        q--;
    return q * width;
}

static int64_t next_step(int64_t width)
{
    size_t i;

    for (i = 0; i + 1 < LADDER_STEPS; i++)
        if (ladder[i] == width)
            return ladder[i + 1];
    return width * 2; /* past the ladder: doubling still divides */
}

/*
 * Re-bin tl's counts into out's grid (out->base, out->width, out->nbins, bins zeroed),
 * whose width is a multiple of tl's: each old bin falls wholly into one new one.
 */
static void rebin(const struct runstats_timeline *tl, struct runstats_timeline *out)
{
    size_t i, k;

    for (i = 0; i < tl->nbins; i++) {
        int64_t t = tl->base + (int64_t)i * tl->width;
        size_t j = (size_t)((t - out->base) / out->width);
        for (k = 0; k < RUNSTATS_SERIES; k++)
            out->bins[j][k] += tl->bins[i][k];
    }
}

int runstats_timeline_add(struct runstats_timeline *tl, int64_t t, enum runstats_series series)
{
    if (tl->width == 0) {
        tl->width = 1;
        tl->base = t;
        tl->nbins = 1;
        tl->bins = calloc(1, sizeof *tl->bins);
        if (tl->bins == NULL) {
            tl->width = 0;
            tl->nbins = 0;
            return BLAST_ENOMEM;
        }
    }
    int64_t end = tl->base + (int64_t)tl->nbins * tl->width;
    if (t < tl->base || t >= end) {
        int64_t lo = t < tl->base ? t : tl->base, hi = t >= end ? t : end - 1;
        struct runstats_timeline n = {0};
        n.width = tl->width;
        /* the narrowest step that spans lo..hi in RUNSTATS_MAX_BINS bins */
        while ((hi - floor_to(lo, n.width)) / n.width + 1 > RUNSTATS_MAX_BINS)
            n.width = next_step(n.width);
        n.base = floor_to(lo, n.width);
        n.nbins = (size_t)((hi - n.base) / n.width + 1);
        n.bins = calloc(n.nbins, sizeof *n.bins);
        if (n.bins == NULL)
            return BLAST_ENOMEM;
        rebin(tl, &n);
        free(tl->bins);
        n.points = tl->points;
        *tl = n;
    }
    tl->bins[(t - tl->base) / tl->width][series]++;
    tl->points++;
    return 0;
}

static bool bin_empty(const struct runstats_timeline *tl, size_t i)
{
    uint32_t any = 0;
    size_t k;

    for (k = 0; k < RUNSTATS_SERIES; k++)
        any |= tl->bins[i][k];
    return any == 0;
}

int runstats_timeline_view(const struct runstats_timeline *tl, int64_t from, int64_t to,
                           size_t max_bins, struct runstats_timeline *out)
{
    int64_t width = tl->width, lo, hi;
    size_t first, last, i, k;

    memset(out, 0, sizeof *out);
    if (tl->nbins == 0 || max_bins == 0)
        return 0;
    /* the bins that meet the window, without the empty ones at either end */
    for (first = 0; first < tl->nbins; first++)
        if (tl->base + (int64_t)(first + 1) * tl->width > from && !bin_empty(tl, first))
            break;
    for (last = tl->nbins; last > first; last--)
        if (tl->base + (int64_t)(last - 1) * tl->width <= to && !bin_empty(tl, last - 1))
            break;
    if (first >= last)
        return 0;
    lo = tl->base + (int64_t)first * tl->width;
    hi = tl->base + (int64_t)last * tl->width - 1;
    while ((hi - floor_to(lo, width)) / width + 1 > (int64_t)max_bins &&
           width < ladder[LADDER_STEPS - 1])
        width = next_step(width);
    out->width = width;
    out->base = floor_to(lo, width);
    out->nbins = (size_t)((hi - out->base) / width + 1);
    out->bins = calloc(out->nbins, sizeof *out->bins);
    if (out->bins == NULL) {
        memset(out, 0, sizeof *out);
        return BLAST_ENOMEM;
    }
    for (i = first; i < last; i++) {
        size_t j = (size_t)((tl->base + (int64_t)i * tl->width - out->base) / width);
        for (k = 0; k < RUNSTATS_SERIES; k++) {
            out->bins[j][k] += tl->bins[i][k];
            out->points += tl->bins[i][k];
        }
    }
    return 0;
}

void runstats_timeline_free(struct runstats_timeline *tl)
{
    free(tl->bins);
    memset(tl, 0, sizeof *tl);
}

static int keys_add(struct runstats_keys *k, const char *key)
{
    json_t *n = json_object_get(k->counts, key);

    if (n != NULL)
        return json_integer_set(n, json_integer_value(n) + 1) < 0 ? BLAST_ENOMEM : 0;
    if (json_object_size(k->counts) >= RUNSTATS_MAX_KEYS) {
        k->other++;
        return 0;
    }
    return json_object_set_new(k->counts, key, json_integer(1)) < 0 ? BLAST_ENOMEM : 0;
}

int runstats_init(struct runstats *s)
{
    memset(s, 0, sizeof *s);
    s->tls_versions.counts = json_object();
    s->ciphers.counts = json_object();
    s->bounces.counts = json_object();
    if (report_tally_init(&s->tally) < 0 || s->tls_versions.counts == NULL ||
        s->ciphers.counts == NULL || s->bounces.counts == NULL)
        return BLAST_ENOMEM;
    return 0;
}

void runstats_free(struct runstats *s)
{
    report_tally_free(&s->tally);
    runstats_timeline_free(&s->timeline);
    json_decref(s->tls_versions.counts);
    json_decref(s->ciphers.counts);
    json_decref(s->bounces.counts);
    memset(s, 0, sizeof *s);
}

static enum runstats_series series_of(enum outcome_status st)
{
    switch (st) {
    case OUTCOME_DELIVERED:
    case OUTCOME_BOUNCED:
    case OUTCOME_COMPLAINED:
        return RUNSTATS_DELIVERED;
    case OUTCOME_FAILED:
        return RUNSTATS_FAILED;
    case OUTCOME_UNKNOWN:
        return RUNSTATS_UNKNOWN;
    case OUTCOME_RENDERED:
        return RUNSTATS_RENDERED;
    default:
        return RUNSTATS_DEFERRED;
    }
}

static int count_attempts(struct runstats *s, const struct outcome *o)
{
    size_t i;
    int rc;

    if (o->nhistory == 0) {
        /* no history (a dry run's rendering, an older report): the last attempt's time */
        if (o->last.sec != 0 && (o->status == OUTCOME_RENDERED || o->attempts > 0))
            return runstats_timeline_add(&s->timeline, o->last.sec, series_of(o->status));
        return 0;
    }
    for (i = 0; i < o->nhistory; i++) {
        const struct outcome_attempt *a = &o->history[i];
        if ((rc = runstats_timeline_add(&s->timeline, a->time.sec, series_of(a->status))) < 0)
            return rc;
        if (a->tls[0] == '\0') {
            /* a session that ended before it could have had TLS is neither */
            if (a->step < SMTP_AUTH || a->step >= SMTP_STATE_COUNT)
                continue;
            s->plain_attempts++;
            continue;
        }
        s->tls_attempts++;
        if ((rc = keys_add(&s->tls_versions, a->tls)) < 0 ||
            (a->cipher[0] != '\0' && (rc = keys_add(&s->ciphers, a->cipher)) < 0))
            return rc;
    }
    return 0;
}

int runstats_add(struct runstats *s, const struct outcome *o)
{
    int rc;

    if ((rc = report_tally_add(&s->tally, o)) < 0 || (rc = count_attempts(s, o)) < 0)
        return rc;
    s->attempts[o->attempts < RUNSTATS_ATTEMPT_BUCKETS - 1 ? (o->attempts > 0 ? o->attempts : 0)
                                                           : RUNSTATS_ATTEMPT_BUCKETS - 1]++;
    if ((o->status == OUTCOME_DELIVERED || o->status == OUTCOME_FAILED ||
         o->status == OUTCOME_UNKNOWN || o->status == OUTCOME_BOUNCED ||
         o->status == OUTCOME_COMPLAINED) &&
        o->first.sec != 0 && o->last.sec != 0) {
        int64_t ms =
            (int64_t)(o->last.sec - o->first.sec) * 1000 + (o->last.usec - o->first.usec) / 1000;
        size_t b = 0;
        while (b < RUNSTATS_LATENCY_BUCKETS - 1 && ms >= runstats_latency_bounds[b] * 1000)
            b++;
        s->latency[b]++;
        s->final++;
    }
    if (o->bounce.set) {
        char key[160];
        snprintf(key, sizeof key, "%s %s", o->bounce.class_,
                 o->bounce.rule != NULL ? o->bounce.rule : "");
        if ((rc = keys_add(&s->bounces, key)) < 0)
            return rc;
    }
    return 0;
}
