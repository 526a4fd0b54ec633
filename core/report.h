/*
 * report - the JSON delivery report (docs/report.md), streamed.
 *
 * Owns: the report's layout and schema_version, writing one recipient object at a
 * time (so memory does not grow with the list), the summary counts, and the
 * atomic finish: the report is written to a temporary file beside the target,
 * flushed, fsync'ed and renamed, so a reader only ever sees a whole report, and a
 * run that fails leaves the previous report untouched.
 * Does not own: deciding outcomes (smtp, the sender), nor reading reports back.
 *
 * Server text is data: it arrives here already sanitised by smtp, and jansson
 * escapes whatever control characters remain.
 */
#ifndef BLAST_REPORT_H
#define BLAST_REPORT_H

#include "error.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define REPORT_SCHEMA_VERSION 1

enum report_status {
    REPORT_DELIVERED = 0,
    REPORT_DEFERRED,
    REPORT_FAILED,
    REPORT_UNKNOWN,
    REPORT_SUPPRESSED,
    REPORT_INVALID,
    REPORT_DUPLICATE,
    REPORT_RENDERED, /* dry runs only: the message was written to a file, not sent */
    REPORT_STATUS_COUNT
};

/* "delivered", "deferred", ... as written in reports. */
const char *report_status_name(enum report_status s);

struct report_info {
    const char *campaign;      /* campaign name */
    const char *campaign_file; /* path as given on the command line */
    bool dry_run;
    const char *test_to;         /* --to ADDRESS, or NULL */
    struct timeutil_stamp start; /* when this run started; sec == 0: when the report opens */
};

struct report_entry {
    const char *email; /* as in the list */
    size_t row;
    enum report_status status;
    int code;             /* last SMTP reply code, 0 when none */
    const char *enhanced; /* "" or NULL when none */
    const char *reply;    /* sanitised reply text, or NULL */
    const char *step;     /* SMTP step that decided it ("RCPT TO"), or NULL */
    const char *detail;   /* blast's explanation when there is no reply, or NULL */
    const char *relay;    /* relay name, or NULL */
    int attempts;         /* delivery attempts made (0 when never tried) */
    const char *message_id;
    const char *queue_id;
    size_t size;                 /* message bytes, 0 when never built */
    struct timeutil_stamp first; /* sec == 0 when never attempted */
    struct timeutil_stamp last;
    struct json_t *history; /* the attempts, oldest first (borrowed); NULL: none */
};

/* At most this many attempts are kept in an entry's history: the latest ones. */
#define REPORT_HISTORY_MAX 20

struct report;

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

/* Append one recipient. Errors: BLAST_EIO (disk full...), BLAST_ENOMEM. */
int report_add(struct report *r, const struct report_entry *e, struct blast_error *err);

/*
 * The JSON object of one recipient, as the report writes it (a new reference the
 * caller releases with json_decref), or NULL when out of memory. The journal keeps
 * these objects, so a report can be rebuilt from it.
 */
struct json_t;
struct json_t *report_entry_json(const struct report_entry *e);

/*
 * Append one recipient given as its JSON object (borrowed; an empty "history" is
 * added to it when it has none). Errors as report_add().
 */
int report_add_json(struct report *r, struct json_t *entry, struct blast_error *err);

/*
 * The counts a summary is made of, kept while entries stream by: by status, by
 * relay, by recipient domain, by reply code, and failure reasons (at most 1,000
 * distinct ones). The report keeps one; `blast report` keeps one for a report
 * whose summary lacks something. Memory grows with distinct relays, domains,
 * codes and reasons, not with recipients.
 */
struct report_tally {
    size_t entries;
    size_t counts[REPORT_STATUS_COUNT];
    size_t other_status;      /* entries with a status this version does not know */
    struct json_t *by_relay;  /* relay -> {status: count} */
    struct json_t *by_domain; /* lower-cased domain -> {status: count} */
    struct json_t *by_code;   /* "550 5.1.1" -> count */
    struct json_t *reasons;   /* key -> {status, code, enhanced_code, reason, count} */
    size_t other_reasons;     /* failures past the distinct reasons kept */
};

/* Errors: BLAST_ENOMEM. Free with report_tally_free() (also after a failed init). */
int report_tally_init(struct report_tally *t);
void report_tally_free(struct report_tally *t);

/* Count one entry (borrowed). Errors: BLAST_EINVAL (no status), BLAST_ENOMEM. */
int report_tally_add(struct report_tally *t, struct json_t *entry);

/* The summary's top_failures: the ten most frequent reasons (a new reference), or NULL. */
struct json_t *report_tally_top_failures(const struct report_tally *t);

/*
 * A failure's reason, as top_failures groups them: code, enhanced code and the
 * reply with what is inside angle brackets (an address, usually) left out; or
 * blast's own detail when there was no reply.
 */
void report_reason(struct json_t *entry, char *out, size_t size);

/* The status named s ("delivered"...), or -1. */
int report_status_parse(const char *s);

/*
 * The summary as it stands (what report_commit() writes): a new reference the
 * caller releases, or NULL when out of memory.
 */
struct json_t *report_summary(struct report *r);

/* Counts so far, by status. */
size_t report_count(const struct report *r, enum report_status s);

/*
 * Write the summary, make the file durable and move it into place; frees r.
 * Errors: BLAST_EIO (the temporary file is removed, the old report is kept).
 */
int report_commit(struct report *r, struct blast_error *err);

/* Drop an unfinished report (the temporary file is removed); frees r. Accepts NULL. */
void report_abort(struct report *r);

#endif
