/*
 * runstats - what a campaign's runs looked like, counted while its report streams by
 * (the HTML page of `blast report --format html`, core/htmlreport).
 *
 * Owns: attempts over time (a timeline whose bins widen as the span grows, so that
 * memory stays bounded however long the campaign ran), attempts per recipient, time
 * from the first attempt to the final outcome, the TLS versions and ciphers of the
 * attempts, the bounce and complaint classes with their rules, and, through
 * report_tally, the counts by status, recipient domain, relay and failure reason.
 * Does not own: reading the report (reportread), what an entry means (outcome),
 * drawing any of it (htmlreport).
 *
 * Memory grows with distinct domains and relays (report_tally), never with
 * recipients: the timeline keeps at most RUNSTATS_MAX_BINS bins, the TLS and bounce
 * tables at most RUNSTATS_MAX_KEYS keys each (the rest counted as "other").
 */
#ifndef BLAST_RUNSTATS_H
#define BLAST_RUNSTATS_H

#include "outcome.h"
#include "report.h"

#include <stddef.h>
#include <stdint.h>

/* The timeline's series: what an attempt came to (a dry run's renderings apart). */
enum runstats_series {
    RUNSTATS_DELIVERED = 0,
    RUNSTATS_DEFERRED,
    RUNSTATS_FAILED,
    RUNSTATS_UNKNOWN,
    RUNSTATS_RENDERED,
    RUNSTATS_SERIES
};

#define RUNSTATS_MAX_BINS 4096
#define RUNSTATS_MAX_KEYS 256

/*
 * Attempts per bin of width seconds; bin i covers [base + i*width, base + (i+1)*width).
 * Bins are aligned to multiples of width since the epoch and widths are steps of a
 * ladder where each divides the next (1 s, 2 s, 10 s, 30 s, 1 min, 2 min, 10 min, 30 min,
 * 1 h, 2 h, 6 h, 12 h, 1 day, 1 week, 4 weeks, ...), so a timeline re-binned to a
 * wider step stays exact.
 */
struct runstats_timeline {
    int64_t base;  /* seconds since the epoch, a multiple of width */
    int64_t width; /* seconds; 0 while empty */
    size_t nbins;
    uint32_t (*bins)[RUNSTATS_SERIES]; /* owned */
    size_t points;                     /* attempts counted */
};

/* Attempts per recipient: 0 (never tried), 1 ... 9, and 10 or more. */
#define RUNSTATS_ATTEMPT_BUCKETS 11

/*
 * Time from a recipient's first attempt to its final outcome (delivered, failed,
 * unknown, and delivered ones that later bounced or complained), in buckets whose
 * upper bounds are runstats_latency_bounds[] seconds (the last one open).
 */
#define RUNSTATS_LATENCY_BUCKETS 8
extern const int64_t runstats_latency_bounds[RUNSTATS_LATENCY_BUCKETS - 1];
extern const char *const runstats_latency_names[RUNSTATS_LATENCY_BUCKETS];

/* A bounded table of counts by text key (TLS versions, ciphers, bounce rules). */
struct runstats_keys {
    struct json_t *counts; /* key -> integer */
    size_t other;          /* counted past RUNSTATS_MAX_KEYS distinct keys */
};

struct runstats {
    struct report_tally tally; /* status, domain, relay, reply code, reasons */
    struct runstats_timeline timeline;
    size_t attempts[RUNSTATS_ATTEMPT_BUCKETS];
    size_t latency[RUNSTATS_LATENCY_BUCKETS];
    size_t final;          /* recipients counted in latency */
    size_t tls_attempts;   /* attempts that went over TLS */
    size_t plain_attempts; /* attempts with a session that had no TLS */
    struct runstats_keys tls_versions, ciphers;
    struct runstats_keys bounces; /* "class rule" -> recipients (rule "" when none) */
};

/* Errors: BLAST_ENOMEM. Free with runstats_free() (also after a failed init). */
int runstats_init(struct runstats *s);
void runstats_free(struct runstats *s);

/* Count one recipient. Errors: BLAST_ENOMEM. */
int runstats_add(struct runstats *s, const struct outcome *o);

/* Count one attempt at time t (seconds since the epoch) in series. Errors: BLAST_ENOMEM. */
int runstats_timeline_add(struct runstats_timeline *tl, int64_t t, enum runstats_series series);

/*
 * The timeline re-binned for drawing: the bins that meet [from, to] (seconds since the
 * epoch; INT64_MIN and INT64_MAX for all of it), without the empty ones at either end,
 * at the narrowest ladder step, at least the timeline's own, that shows them in at most
 * max_bins bins (when even the widest step would need more, the widest). A bin that
 * straddles from or to is taken whole. out gets base, width, nbins and points (the
 * attempts it holds); its bins are a new array the caller frees with
 * runstats_timeline_free(). Nothing to show gives an empty view. Errors: BLAST_ENOMEM.
 */
int runstats_timeline_view(const struct runstats_timeline *tl, int64_t from, int64_t to,
                           size_t max_bins, struct runstats_timeline *out);
void runstats_timeline_free(struct runstats_timeline *tl);

#endif
