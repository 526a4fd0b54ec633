/*
 * cli - what the subcommands of the blast command share: exit codes (the
 * contract of docs/delivery.md), error printing, option helpers, the log sink on
 * stderr, and turning a campaign relay into SMTP session options.
 * Only cmd/ prints to the terminal or exits; core/ returns errors.
 */
#ifndef BLAST_CLI_H
#define BLAST_CLI_H

#include "../../core/campaign.h"
#include "../../core/conn.h"
#include "../../core/error.h"
#include "../../core/log.h"
#include "../../core/smtp.h"

#include <stdbool.h>
#include <stdio.h>

enum blast_exit {
    BLAST_EXIT_OK = 0,          /* every recipient delivered or skipped by rule */
    BLAST_EXIT_INCOMPLETE = 1,  /* finished, but some recipients failed or are deferred */
    BLAST_EXIT_USAGE = 2,       /* usage or campaign error: nothing sent */
    BLAST_EXIT_INTERRUPTED = 3, /* stopped by a signal; a rerun resumes */
    BLAST_EXIT_NO_RELAY = 4,    /* no relay usable */
    BLAST_EXIT_BREAKER = 5,     /* the circuit breaker stopped the run; the rest is deferred */
};

/* Print "blast: FILE:LINE:COL: message" for err to stderr. */
void cli_error(const struct blast_error *err);

/* Print "blast: message" to stderr. */
void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A log that writes "blast: [level: ]message" lines to stderr, up to max; or,
 * after cli_log_format("json"), one JSON object a line: {"time", "level",
 * "message"[, "source", "line", "column"]}. Errors of cli_error() and cli_fail()
 * take the same form. Safe from any thread.
 */
void cli_log_init(struct log *lg, enum log_level max);

/* --log-format NAME (text or json); prints the problem and returns -1 for others. */
int cli_log_format(const char *cmd, const char *name);

/*
 * A DNS check's finding (core/preflight): with --log-format json, one JSON line on
 * stderr: {"time", "level" (info, warn, error), "message", "check", "finding" (ok,
 * warning, error), "record", "publish"?}; as text, nothing here (the command prints
 * it in its own report): returns whether it was written.
 */
bool cli_finding(const char *check, const char *finding, const char *record, const char *text,
                 const char *publish);

/*
 * A status line on stderr (a terminal's progress bar), redrawn in place: log
 * messages go above it. NULL ends it, leaving its last state on screen.
 */
void cli_status(const char *line);
enum log_level cli_log_level(bool quiet, int verbose);

/* Option helpers for getopt_long loops: they print the problem and return -1. */
int cli_positive(const char *cmd, const char *option, const char *arg, long *out);
void cli_bad_option(const char *cmd, char **argv, int optopt);

/*
 * One RFC 4180 field: quoted when it holds a comma, a quote or a line break, quotes
 * doubled. A text field (text set) that starts with = + - @, a tab or a carriage
 * return gets a leading ' so that a spreadsheet shows it rather than running it.
 */
void cli_csv_field(FILE *out, const char *s, bool text);
int cli_one_operand(const char *cmd, int argc, char **argv, const char **out);

/* Add "(during STEP)" to a session-open error when the session got past connecting. */
void cli_session_failure(const struct smtp_session *s, struct blast_error *e);

/* Subcommands: each returns an exit code. */
int cmd_send(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_preview(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_suppress(int argc, char **argv);
int cmd_bounces(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_journal(int argc, char **argv);

/* Usage texts, for `blast help COMMAND` and `blast COMMAND --help`. */
extern const char cli_send_usage[];
extern const char cli_check_usage[];
extern const char cli_preview_usage[];
extern const char cli_report_usage[];
extern const char cli_suppress_usage[];
extern const char cli_bounces_usage[];
extern const char cli_prune_usage[];
extern const char cli_version_usage[];
extern const char cli_journal_usage[];

/* "PATH: compacted in S s: ..." at info level: what journal_compact() did. */
struct journal_compaction;
void cli_log_compaction(const struct log *lg, const char *path, const struct journal_compaction *st,
                        double secs);

#endif
