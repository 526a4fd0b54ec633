/*
 * reportread - read a blast JSON report back, one recipient at a time.
 *
 * Owns: scanning the report's top-level object (docs/report.md: "schema_version",
 * "campaign", "recipients", "summary") with a small tokenizer that knows strings,
 * escapes and nesting, and not the line layout the writer happens to use; handing
 * the exact text of each element of "recipients" to jansson and the parsed object
 * to a callback, or (the outcome forms, much faster) parsing it onto a tape
 * (jsontape) and handing it over as a struct outcome, so that memory stays flat
 * whatever the number of recipients;
 * returning "campaign" and "summary" whole; refusing what is not a report this
 * blast reads (no "schema_version" before the recipients, another version, no
 * "recipients" array) and a file that ends early. Every error names the place,
 * file:line:column, 1-based, columns counted in characters as jansson counts them.
 * Other top-level keys are skipped (their brackets and strings must still balance).
 * Does not own: writing reports (report), nor what the entries mean (the callers).
 *
 * Limits: one recipient object may take REPORTREAD_MAX_ENTRY bytes, "campaign" and
 * "summary" REPORTREAD_MAX_OBJECT each (the summary grows with distinct domains,
 * not recipients); values nest at most REPORTREAD_MAX_DEPTH deep.
 */
#ifndef BLAST_REPORTREAD_H
#define BLAST_REPORTREAD_H

#include "error.h"

#include <stddef.h>
#include <stdio.h>

#define REPORTREAD_MAX_ENTRY  (1024 * 1024)
#define REPORTREAD_MAX_OBJECT (256 * 1024 * 1024)
#define REPORTREAD_MAX_DEPTH  512

struct json_t;

/* Where a recipient object starts in the report. */
struct reportread_place {
    const char *source; /* the name given to reportread_file() or reportread_stream() */
    int line;
    int column;
};

/*
 * Called once per element of "recipients", in order. entry is a JSON object,
 * borrowed: it is released after the call (json_incref() to keep it). index counts
 * from 0. Return 0 to go on, or a negative BLAST_E* code (with err filled, at is
 * there to name the place) to stop the reading with that code.
 */
typedef int (*reportread_fn)(void *arg, struct json_t *entry, size_t index,
                             const struct reportread_place *at, struct blast_error *err);

struct reportread_result {
    int schema_version;
    struct json_t *campaign; /* new reference, NULL when the report has none */
    struct json_t *summary;  /* new reference, NULL when the report has none */
    size_t recipients;       /* elements of "recipients" */
};

/*
 * Read the report at path, calling each (which may be NULL) for every recipient;
 * while they stream by, out->campaign is there already when the report has it
 * before its recipients, as blast writes it. On success out holds the campaign and
 * the summary; free with
 * reportread_result_free(). On failure out is empty, and recipients before the
 * problem may have been handed to each already.
 * Errors: BLAST_EIO (cannot open or read), BLAST_ESYNTAX (not JSON, or ends early),
 * BLAST_EINVAL (JSON, but not a report this blast reads), BLAST_ENOMEM, or what
 * each returned.
 */
int reportread_file(const char *path, reportread_fn each, void *arg, struct reportread_result *out,
                    struct blast_error *err);

/* The same from an open stream the caller owns (standard input); name is for errors. */
int reportread_stream(FILE *f, const char *name, reportread_fn each, void *arg,
                      struct reportread_result *out, struct blast_error *err);

/*
 * A recipient handed to a reportread_fn, read as its outcome (outcome_from_json())
 * into o, which the caller frees with outcome_free(). Errors: those of
 * outcome_from_json(), with the recipient's place and number, "recipient 3: ...".
 */
struct outcome;
int reportread_outcome(struct json_t *entry, size_t index, const struct reportread_place *at,
                       struct outcome *o, struct blast_error *err);

/*
 * Called once per element of "recipients", in order, read as its outcome: the
 * outcome forms below. o is borrowed, and freed after the call: the callback may
 * take what it keeps (outcome_copy(), or its pointers, leaving NULL behind). index
 * counts from 0. Return 0 to go on, or a negative BLAST_E* code (with err filled)
 * to stop the reading with that code.
 */
typedef int (*reportread_outcome_fn)(void *arg, struct outcome *o, size_t index,
                                     const struct reportread_place *at, struct blast_error *err);

/*
 * reportread_file() and reportread_stream() with each recipient read straight
 * from its text into a struct outcome, without a jansson tree: the same checks,
 * and the errors a json_t callback calling reportread_outcome() would meet, in
 * the same order, at the same places, in the same words ("recipient 3: ..." at
 * the recipient's place, "invalid JSON in recipient 3: ..." where the fault is).
 * each may be NULL. Allocates nothing per recipient but the outcome's own strings.
 */
int reportread_file_outcomes(const char *path, reportread_outcome_fn each, void *arg,
                             struct reportread_result *out, struct blast_error *err);
int reportread_stream_outcomes(FILE *f, const char *name, reportread_outcome_fn each, void *arg,
                               struct reportread_result *out, struct blast_error *err);

/*
 * The pull form, for a reader that takes recipients from several reports at once
 * (the merge). reportread_open() reads the report up to its first recipient (or
 * to its end when it has none), so the "campaign" that precedes the recipients,
 * as blast writes it, is known then. The reader holds one chunk of input and one
 * recipient at a time; reportread_open() reads through an unbuffered stream of its
 * own, so that many reports may be open at once without a second buffer each.
 * The path (or name) is borrowed until reportread_close(): places point at it.
 * Free with reportread_close(), whatever happened.
 */
struct reportread;

/*
 * Errors: those of reportread_file() up to the first recipient. chunk: the bytes
 * read at a time (0: 64 KiB; at least 4 KiB), smaller when many are open at once.
 */
int reportread_open(const char *path, size_t chunk, struct reportread **out,
                    struct blast_error *err);

/* The same from a stream the caller owns and closes after reportread_close(). */
int reportread_open_stream(FILE *f, const char *name, struct reportread **out,
                           struct blast_error *err);

/* The report's "campaign" (borrowed), or NULL when it has none before its recipients. */
const struct json_t *reportread_campaign(const struct reportread *rd);

/*
 * Leave the values of these keys of "summary" out when it is read after this call
 * (keys: NULL-terminated, borrowed until reportread_close(); NULL: read it whole).
 * For a reader that does not need them and would rather not hold them: a summary's
 * "by_domain" grows with the list's distinct domains. The values skipped must still
 * balance their brackets and strings; what is inside is not checked.
 */
void reportread_skip_summary(struct reportread *rd, const char *const *keys);

/* The name given at open, for messages. */
const char *reportread_name(const struct reportread *rd);

/*
 * The next recipient: 1 with *entry a new reference (the caller releases it) and
 * at its place; 0 after the last one, when the rest of the report (the "summary")
 * has been read and checked too; or a negative code as reportread_file() has.
 * After an error every call returns it again.
 */
int reportread_next(struct reportread *rd, struct json_t **entry, struct reportread_place *at,
                    struct blast_error *err);

/*
 * The next recipient read straight into o (outcome_from_tape()), which the caller
 * frees with outcome_free() whatever is returned: 1 with o filled and at its
 * place; 0 after the last one; or a negative code, those of reportread_next() and
 * then those of reportread_outcome(), in its words. After an error every call
 * returns it again. The two forms may be mixed on one reader.
 */
int reportread_next_outcome(struct reportread *rd, struct outcome *o, struct reportread_place *at,
                            struct blast_error *err);

/*
 * The recipients not taken yet skipped (still checked), then the result into out
 * (the campaign and summary move there: free with reportread_result_free()).
 */
int reportread_finish(struct reportread *rd, struct reportread_result *out,
                      struct blast_error *err);

void reportread_close(struct reportread *rd);

/*
 * The outcome forms' reading on a reader already open (after reportread_skip_summary(),
 * say): every recipient handed to each (which may be NULL) as reportread_file_outcomes()
 * hands them, then the result into out. Closes rd, whatever happens.
 */
int reportread_each_outcome(struct reportread *rd, reportread_outcome_fn each, void *arg,
                            struct reportread_result *out, struct blast_error *err);

/* Release what a result holds and empty it. Accepts an empty result. */
void reportread_result_free(struct reportread_result *r);

#endif
