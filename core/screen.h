/*
 * screen - the campaign's rules, applied to each recipient row before a message
 * is made for it.
 *
 * Owns: finding the address (and display name) columns in the list's header,
 * checking each address (address), dedupe within the list (the second occurrence
 * of an address is a duplicate; local parts compare exactly, domains without
 * regard to case, RFC 5321 §2.4), and the suppression lists (files of one address
 * a line, or CSV files with an email column) loaded once per run.
 * Also owns the rules taken from the reports of earlier runs (blast send
 * --exclude-report, --suppress-from, read with reportread): whom a report shows
 * delivered, or refused for good because the address is bad.
 * Does not own: reading the list (recipients), nor rendering (compose).
 *
 * Memory: the dedupe and suppression sets keep an 8-byte hash per address
 * (addrset), not the addresses.
 */
#ifndef BLAST_SCREEN_H
#define BLAST_SCREEN_H

#include "address.h"
#include "campaign.h"
#include "error.h"
#include "recipients.h"
#include "shard.h"

#include <stdbool.h>
#include <stddef.h>

struct screen;

enum screen_verdict {
    SCREEN_OK = 0,
    SCREEN_INVALID,     /* the row has no usable address; reason says why */
    SCREEN_DUPLICATE,   /* the address was on an earlier row */
    SCREEN_SUPPRESSED,  /* the address is on a suppression list */
    SCREEN_OTHER_SHARD, /* another shard's row (screen_set_shard): not this run's at all */
};

struct screen_result {
    enum screen_verdict verdict;
    char reason[512];
    char email[512];   /* the address as written in the list (truncated when huge) */
    struct address to; /* the parsed recipient with its display name (when not INVALID) */
    bool from_db;      /* SUPPRESSED by the suppression database: screen_explain() says why */
};

/*
 * Find the columns and load the suppression lists. Errors name the place: the
 * campaign's email_column or name_column when the header lacks them, the list's
 * first line when the default "email" column is missing, a suppression file's
 * line for a bad entry. The caller frees *out with screen_free(); c and list must
 * outlive it.
 */
int screen_new(const struct campaign *c, const struct recipients *list, struct screen **out,
               struct blast_error *err);
void screen_free(struct screen *s);

/*
 * Screen only the rows of shard sh (core/shard: by the address as suppression
 * matches it; a row without a usable address by its text, lower-cased): the others
 * are SCREEN_OTHER_SHARD before any other rule, so that dedupe and suppression see
 * this shard's rows alone.
 */
void screen_set_shard(struct screen *s, const struct shard *sh);

/*
 * A row the suppression database suppressed: its reason becomes the entry's class,
 * rule and day ("in the suppression database: hard (dsn-5.1.1) since 2026-12-05"),
 * read from the database. Done only when asked (a send's report needs it, a check
 * does not): a screen of a million rows reads no entry. Nothing for other rows.
 */
void screen_explain(struct screen *s, struct screen_result *res);

/* What a report of an earlier run adds to the rules (screen_add_report). */
enum screen_report_rule {
    /*
     * --exclude-report: skip whom the report shows "delivered"; the same recipient
     * as in dedupe (local part exact, domain without regard to case).
     */
    SCREEN_EXCLUDE_DELIVERED = 0,
    /*
     * --suppress-from: suppress whom the report shows "failed" with an enhanced
     * code 5.1.x (RFC 3463 addressing status: 5.1.1 bad mailbox, 5.1.2 bad domain,
     * ...); without regard to case, like the suppression lists.
     */
    SCREEN_SUPPRESS_BAD_ADDRESSES,
};

/* "exclude-report" or "suppress-from", as the options are named. */
const char *screen_report_rule_name(enum screen_report_rule rule);

/*
 * Read the report of an earlier run at path and add the recipients it names under
 * rule: from then on, a row with such an address gets SCREEN_SUPPRESSED with the
 * reason "delivered in PATH" or "failed for good (5.1.x) in PATH". Each report
 * keeps its own set (8 bytes an address, addrset); campaign suppression lists are
 * checked first. A test send's report (its campaign has a test_to) is refused: its
 * messages all went to one test mailbox and say nothing about the recipients.
 * Addresses in the report that do not parse are passed over (the same row of the
 * list would be invalid anyway).
 * Errors: those of reportread_file(), naming the place in the report; BLAST_EINVAL
 * for a test send's report; BLAST_ENOMEM.
 */
int screen_add_report(struct screen *s, const char *path, enum screen_report_rule rule,
                      struct blast_error *err);

/* Addresses taken from reports so far (all rules). */
size_t screen_report_size(const struct screen *s);

/* Judge one row. Returns 0, or BLAST_ENOMEM. res->to is replaced each call. */
int screen_row(struct screen *s, const struct recipients_row *row, struct screen_result *res,
               struct blast_error *err);

/* Forget the addresses seen so far (before a second pass over the same list). */
int screen_restart(struct screen *s, struct blast_error *err);

/*
 * For a second pass over the same list: the rows the first found duplicates (bit
 * r of bits for row r, rows below nrows; bits NULL when there were none;
 * borrowed until screen_free()), so that
 * the second needs no set of the addresses seen, which for a few million
 * addresses is tens of megabytes. Call after screen_restart().
 */
void screen_use_duplicates(struct screen *s, const uint64_t *bits, size_t nrows);

int screen_email_column(const struct screen *s);
int screen_name_column(const struct screen *s); /* -1 when none */
size_t screen_suppression_size(const struct screen *s);

/*
 * Room for n more addresses in the set that finds duplicates, made at once: a
 * caller that can tell how many rows are coming spares the set's doubling on the
 * way (for a moment, the old table and one twice its size). Errors: BLAST_ENOMEM.
 */
int screen_reserve(struct screen *s, size_t n, struct blast_error *err);

/* Addresses kept to find duplicates (none in a pass told them: screen_use_duplicates()). */
size_t screen_seen_size(const struct screen *s);

void screen_result_init(struct screen_result *res);
void screen_result_free(struct screen_result *res);

const char *screen_verdict_name(enum screen_verdict v);

#endif
