/*
 * metrics - a campaign's figures in the Prometheus text exposition format (version
 * 0.0.4), for node_exporter's textfile collector (docs/metrics.md).
 *
 * Owns: the metric names, their HELP and TYPE lines, the labels (campaign, shard,
 * relay, status) and the escaping of their values, the number format, the rule for
 * blast_last_success_timestamp_seconds (a run that succeeded sets it to its end;
 * any other run carries over what the file it replaces holds for the same campaign
 * and shard), the atomic write of a .prom file, and turning a report's campaign and
 * summary (docs/report.md) into the figures.
 * Does not own: counting (report), exit codes and deciding whether a run succeeded
 * (cmd/, which says so in run_succeeded), nor reading reports (reportread).
 *
 * No recipient's address ever becomes a label: the labels are the campaign's name,
 * its shard, a relay's name (from the campaign file) and a status name.
 *
 * Ownership: a struct metrics owns its strings and its relays; metrics_init() makes
 * it empty, metrics_free() releases what it holds.
 */
#ifndef BLAST_METRICS_H
#define BLAST_METRICS_H

#include "buf.h"
#include "error.h"
#include "outcome.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One relay's recipients by status (the report's summary.by_relay). */
struct metrics_relay {
    char *name;
    unsigned long long recipients[OUTCOME_STATUS_COUNT];
};

/*
 * The figures. Each has_* says whether a group is known: a group that is not is
 * left out of the output (no sample rather than a made-up zero).
 */
struct metrics {
    char *campaign;       /* the campaign's name; required */
    unsigned shard_index; /* with shard_count >= 2: every sample is labelled shard="I/N" */
    unsigned shard_count;

    /* the campaign's recipients by status, across its runs, and by relay and status */
    bool has_counts;
    unsigned long long recipients[OUTCOME_STATUS_COUNT];
    struct metrics_relay *relays; /* in name order */
    size_t nrelays;

    /* delivery attempts, messages a relay accepted and their bytes, across runs */
    bool has_totals;
    unsigned long long attempts, messages_accepted, accepted_bytes;

    /* messages delivered (or rendered) by this run */
    bool has_run_messages;
    unsigned long long run_messages;

    /* this run's start and end (seconds since the epoch) and its length in seconds */
    bool has_run;
    double run_start, run_end, run_duration;

    /* send only: its exit code, and whether it went through its list (see above) */
    bool has_exit_code;
    int exit_code;
    bool run_succeeded;

    bool has_last_success;
    double last_success; /* seconds since the epoch */
};

void metrics_init(struct metrics *m);

/* Release what m holds and make it empty again. */
void metrics_free(struct metrics *m);

/* Set the campaign's name (copied). Errors: BLAST_ENOMEM. */
int metrics_set_campaign(struct metrics *m, const char *name);

/*
 * Replace m's relays with those of by_relay, a JSON object {relay: {status: count}}
 * as the report's summary and struct report_tally hold it. Statuses this version
 * does not know are left out. Errors: BLAST_EINVAL (a count that is not a whole
 * number >= 0, err names it), BLAST_ENOMEM.
 */
struct json_t;
int metrics_set_relays(struct metrics *m, const struct json_t *by_relay, struct blast_error *err);

/*
 * Fill m (empty) from a report's "campaign" and "summary" objects (summary may be
 * NULL): the campaign's name and shard, and from the summary by_status and by_relay
 * (has_counts), attempts, messages_accepted and bytes_accepted (has_totals, when
 * all three are there: a report written before them lacks them), messages_this_run,
 * and start, end and duration_seconds (has_run). No exit code, no last success.
 * source names the report in errors. Errors: BLAST_EINVAL (no campaign name, a
 * value of the wrong type), BLAST_ENOMEM; m is then to be freed all the same.
 */
int metrics_from_report(const char *source, const struct json_t *campaign,
                        const struct json_t *summary, struct metrics *m, struct blast_error *err);

/*
 * Append s to out as a label value between double quotes: backslash, double quote
 * and line feed escaped as the format asks (\\, \", \n), each byte that is not part
 * of valid UTF-8 replaced by U+FFFD. Errors: BLAST_ENOMEM.
 */
int metrics_label_value(struct buf *out, const char *s);

/* Append m in the exposition format to out. Errors: BLAST_ENOMEM. */
int metrics_format(const struct metrics *m, struct buf *out);

/* Write m in the exposition format to f. Errors: BLAST_EIO, BLAST_ENOMEM. */
int metrics_write(FILE *f, const struct metrics *m, struct blast_error *err);

/*
 * The blast_last_success_timestamp_seconds sample that the file at path holds for
 * m's campaign and shard, as metrics_format() writes it: 1 with *out set, 0 when
 * there is none (no file, not a regular file, unreadable, or no such sample).
 * At most the first 16 MiB of the file are read.
 */
int metrics_read_last_success(const char *path, const struct metrics *m, double *out);

/*
 * Write m to path, atomically: a temporary file beside it whose name does not end
 * in .prom (node_exporter reads only *.prom), mode 0644 (it holds no recipient's
 * data, and node_exporter runs as another user), flushed to disk, then renamed
 * over path. The last success: m's run_end when run_succeeded (and has_run), else
 * m's own last_success when it has one, else what path held before
 * (metrics_read_last_success()), else none. Errors: BLAST_EIO naming path (the
 * temporary file is removed and the old file kept), BLAST_ENOMEM.
 */
int metrics_write_file(const char *path, const struct metrics *m, struct blast_error *err);

#endif
