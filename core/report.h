/*
 * report - the JSON delivery report (docs/report.md), streamed.
 *
 * Owns: the report's layout and schema_version, writing one recipient object at a
 * time (so memory does not grow with the list), the summary counts, and the
 * atomic finish: the report is written to a temporary file beside the target,
 * flushed, fsync'ed and renamed, so a reader only ever sees a whole report, and a
 * run that fails leaves the previous report untouched.
 * Does not own: deciding outcomes (smtp, the sender), an entry's JSON form
 * (outcome), nor reading reports back.
 *
 * Server text is data: it arrives here already sanitised by smtp, and jansson
 * escapes whatever control characters remain.
 */
#ifndef BLAST_REPORT_H
#define BLAST_REPORT_H

#include "countmap.h"
#include "error.h"
#include "outcome.h"
#include "timeutil.h"
#include "window.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define REPORT_SCHEMA_VERSION 1

/* A DKIM entry of the campaign, as the report names it: never the key. Strings borrowed. */
struct report_dkim {
    const char *domain;
    const char *selector;
    const char *algorithm; /* "rsa-sha256", "ed25519-sha256" */
};

/* A provider's warm-up in the run (docs/report.md, summary.warmup). Strings borrowed. */
struct report_warmup {
    const char *provider;
    long long ramp_day; /* 1: the ramp's first day */
    uint64_t cap;       /* today's */
    uint64_t sent;      /* counted today, by every run of the sender */
    size_t held;        /* recipients of this run it held back */
};

struct report_info {
    const char *campaign;      /* campaign name */
    const char *campaign_file; /* path as given on the command line */
    bool dry_run;
    const char *test_to;         /* --to ADDRESS, or NULL */
    const char *suppression_db;  /* the campaign's suppression_db, or NULL */
    struct timeutil_stamp start; /* when this run started; sec == 0: when the report opens */
    unsigned shard_index;        /* the shard this report is of (core/shard) */
    unsigned shard_count;        /* 0: the whole campaign */
    const char *fingerprint;     /* the campaign's (core/fingerprint), or NULL */
    struct json_t *shards;       /* borrowed: the shards a merged report is made of, or NULL */
    /*
     * The campaign's settings: its global rate, for the whole campaign (0: none), and
     * its DKIM entries (borrowed, ndkim of them). settings_unknown leaves both out of
     * the report (a merge of shard reports written before they were).
     */
    double rate_per_second;
    const struct report_dkim *dkim;
    size_t ndkim;
    bool settings_unknown;
    /* this run was stopped by the circuit breaker (core/breaker): its figures; else NULL */
    const char *breaker;
    /* the campaign's seeds' last outcomes (borrowed, nseeds of them; docs/report.md) */
    const struct outcome *seeds;
    size_t nseeds;
    /* the warm-up's caps this run went by (borrowed; nwarmup 0: none), its sender and day */
    const struct report_warmup *warmup;
    size_t nwarmup;
    const char *warmup_sender; /* "acme.example" */
    const char *warmup_day;    /* "2026-12-07", in the campaign's time zone */
};

struct report;
struct json_t;

/*
 * Start a report at path, written atomically at report_commit(). The target
 * directory must exist. Errors: BLAST_EIO naming the path.
 */
int report_open(const char *path, const struct report_info *info, struct report **out,
                struct blast_error *err);

/*
 * Start a report written to an open stream that the caller owns (standard output
 * for `--report -`): no temporary file, no rename; the stream is flushed, not
 * closed. name is used in messages.
 */
int report_open_stream(FILE *f, const char *name, const struct report_info *info,
                       struct report **out, struct blast_error *err);

/*
 * Append one recipient, formatted by outcome_format_json(). Errors: BLAST_EIO
 * (disk full...), BLAST_EINVAL (a status this version does not write), BLAST_ENOMEM.
 */
int report_add(struct report *r, const struct outcome *o, struct blast_error *err);

/*
 * The counts a summary is made of, kept while entries stream by: by status, by
 * relay, by recipient domain, by reply code, and failure reasons (at most 1,000
 * distinct ones). The report keeps one; `blast report` keeps one for a report
 * whose summary lacks something. Memory grows with distinct relays, domains,
 * codes and reasons, not with recipients.
 */
/*
 * How the reasons of recipients held back on purpose begin (cmd/blast/send.c and,
 * for a window that closed while they waited, the pool write them): the tally
 * counts the deferred entries whose detail starts so.
 */
#define REPORT_HELD_WINDOW WINDOW_HELD_PREFIX
#define REPORT_HELD_WARMUP "warm-up cap: "

struct report_tally {
    size_t entries;
    size_t counts[OUTCOME_STATUS_COUNT];
    size_t other_status;        /* entries with a status this version does not know ("other") */
    struct countmap *by_relay;  /* relay -> counts by status */
    struct countmap *by_domain; /* lower-cased domain -> counts by status */
    struct json_t *by_code;     /* "550 5.1.1" -> count */
    struct json_t *reasons;     /* key -> {status, code, enhanced_code, reason, count} */
    size_t other_reasons;       /* failures past the distinct reasons kept */
    /*
     * The recipients' delivery attempts, summed; the recipients a relay accepted
     * (delivered, bounced, complained) and their messages' sizes, summed.
     */
    unsigned long long attempts;
    size_t accepted;
    unsigned long long accepted_bytes;
    /* deferred, not sent now: outside their send window, past a warm-up cap */
    size_t held_window, held_warmup;
};

/* Errors: BLAST_ENOMEM. Free with report_tally_free() (also after a failed init). */
int report_tally_init(struct report_tally *t);
void report_tally_free(struct report_tally *t);

/* Count one recipient. Errors: BLAST_ENOMEM. */
int report_tally_add(struct report_tally *t, const struct outcome *o);

/* The summary's top_failures: the ten most frequent reasons (a new reference), or NULL. */
struct json_t *report_tally_top_failures(const struct report_tally *t);

/*
 * A failure's reason, as top_failures groups them: code, enhanced code and the
 * reply with what is inside angle brackets (an address, usually) left out; or
 * blast's own detail when there was no reply.
 */
void report_reason(const struct outcome *o, char *out, size_t size);

/*
 * The summary as it stands (what report_commit() writes): a new reference the
 * caller releases, or NULL when out of memory. The first call fixes the run's end,
 * so that a later call and report_commit() give the same times (the webhook's
 * summary and the file's agree).
 */
struct json_t *report_summary(struct report *r);

/*
 * A merged report's run: from the first shard's start to the last one's end, and
 * the messages the shards' last runs sent together (instead of the clock at
 * report_commit() and the entries decided since start); shards (borrowed, may be
 * NULL) goes into the summary as "shards".
 */
void report_set_merged(struct report *r, struct timeutil_stamp start, struct timeutil_stamp end,
                       size_t messages, struct json_t *shards);

/* Counts so far, by status. */
size_t report_count(const struct report *r, enum outcome_status s);

/*
 * Write the summary, make the file durable and move it into place; frees r.
 * Errors: BLAST_EIO (the temporary file is removed, the old report is kept).
 */
int report_commit(struct report *r, struct blast_error *err);

/* Drop an unfinished report (the temporary file is removed); frees r. Accepts NULL. */
void report_abort(struct report *r);

#endif
