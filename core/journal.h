/*
 * journal - what happened to each recipient, kept across runs (docs/delivery.md, "The journal").
 *
 * Owns: one append-only file per campaign, one record per state change, each a
 * line "CRC32 JSON\n" so that a record torn by a crash is recognised (and cut off)
 * when the file is opened again; the campaign's hash, recorded at the start of
 * every run and checked when a run resumes; the lock that keeps a second `blast
 * send` of the same campaign out; durability: journal_sync() makes everything
 * appended so far reach the disk; one thread of its own writes the records
 * appended and runs fdatasync() for everyone, so that records of several
 * connections share one write and one sync (group commit) and a caller that
 * announces a record early finds it durable when it needs it.
 * Does not own: deciding outcomes, nor the report, which is rebuilt from the
 * journal's last record of each row (journal_each()).
 *
 * Records: {"t":"run", "hash", "time"}, {"t":"sending", "row", "email",
 * "message_id", "attempt", "relay", "time"} made durable before the end of data is
 * written (and written up to three round trips before it), and {"t":"result",
 * ...the report's entry...}. A row's state is its last record: a result decides
 * it; a "sending" with no result after it means the message may have gone: unknown.
 *
 * Compaction (journal_compact()) rewrites the file once its work is done: the run
 * records, then {"t":"pack", "rows", "records", "size", "z"} records, each holding
 * the last records of up to 1,024 rows in a final state (with the "sending" records
 * of their earlier attempts that may have gone), deflated and base64'ed, then the
 * last records of the other rows as they were. Nothing a resume, the report, or the
 * bounce intake reads is lost: a row's last record comes back byte for byte.
 *
 * Thread-safe: appends and syncs may come from any thread.
 */
#ifndef BLAST_JOURNAL_H
#define BLAST_JOURNAL_H

#include "error.h"
#include "log.h"
#include "outcome.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal;

enum journal_state {
    JOURNAL_NONE = 0, /* never seen */
    JOURNAL_FINAL,    /* delivered, failed, invalid, duplicate, suppressed: never sent again */
    JOURNAL_DEFERRED, /* to be tried again */
    JOURNAL_UNKNOWN,  /* sent, fate unknown: not resent unless asked */
    JOURNAL_SENDING,  /* (this run) its end of data is on its way */
};

/*
 * The rows a journal keeps, when it is not every row of the list (a shard's, send
 * --shard): bit r of bits (bits[r / 64] >> r % 64) is set for each row r kept, for
 * rows below nrows. The journal copies it at open. Its index then takes 8 bytes a
 * kept row and a bit a row of the list, not 8 bytes a row of the list; records of
 * rows it does not keep (there should be none) are not indexed.
 */
struct journal_rowset {
    const uint64_t *bits;
    size_t nrows;
};

struct journal_options {
    const char *hash;        /* the campaign's hash, hex */
    const char *legacy_hash; /* its earlier form, accepted too (fingerprint_campaign_both) */
    const struct journal_rowset *only; /* NULL: every row */
    bool fresh;                        /* forget what the file holds: start over */
    bool force;                        /* resume even when the hash differs */
    bool durable; /* fdatasync on journal_sync (false for throwaway journals) */
    bool lock;    /* take the lock file PATH.lock */
    bool no_run;  /* append no "run" record: opened to compact it, not for a run */
    const struct log *log;
};

/*
 * Open (creating it and its directory) the journal at path and read what earlier
 * runs left. Errors: BLAST_EIO (cannot read or write it; or the lock is held by
 * another run, said so), BLAST_EINVAL (the campaign changed since: its hash
 * differs, and force is not set; or a record in the middle is damaged).
 */
int journal_open(const char *path, const struct journal_options *o, struct journal **out,
                 struct blast_error *err);

/* Close (releasing the lock) and free. Accepts NULL. */
void journal_close(struct journal *j);

/* Delete the file (for throwaway journals), then close. */
void journal_discard(struct journal *j);

/*
 * The state of row (1-based) as the journal's file says; attempts so far in
 * *attempts. A record appended a moment ago shows once the journal's thread has
 * written it (journal_result() and journal_each() wait for that); it never waits.
 */
enum journal_state journal_state(struct journal *j, size_t row, int *attempts);

/*
 * The last result of row in o (empty; the caller frees it with outcome_free()):
 * returns 1, or 0 when the row has none. A "sending" with no result after it reads
 * as unknown. First waits until every record appended so far is in the file (or
 * the journal failed). Errors: BLAST_EIO (the record cannot be read back),
 * BLAST_EINVAL (it is not a record this blast reads), BLAST_ENOMEM.
 */
int journal_result(struct journal *j, size_t row, struct outcome *o, struct blast_error *err);

/* Rows earlier runs left a state for: a result, or unknown (a "sending" without one). */
size_t journal_done_before(const struct journal *j);

/*
 * Record that row's message may leave: its end of data may follow. With mark (may
 * be NULL), *mark is where the record ends and a durable journal starts making it
 * durable at once, in the background: journal_wait_durable(mark) before the end
 * of data is written.
 */
int journal_sending(struct journal *j, size_t row, const char *email, const char *message_id,
                    int attempt, const char *relay, int64_t *mark, struct blast_error *err);

/*
 * Wait until every record up to mark is durable (at once when it is already, or
 * when the journal is not durable). Errors: BLAST_EIO (the journal failed; every
 * later call fails too).
 */
int journal_wait_durable(struct journal *j, int64_t mark, struct blast_error *err);

/* Record a row's result (o->row says which), formatted by outcome_format_json(). */
int journal_record(struct journal *j, const struct outcome *o, struct blast_error *err);

/* Make everything appended so far durable. Errors: BLAST_EIO (and every later call fails). */
int journal_sync(struct journal *j, struct blast_error *err);

/*
 * Call fn for rows 1..rows in order with the row's last record as its outcome
 * (borrowed for the call; a "sending" reads as unknown); rows without a record are
 * skipped. Like journal_result(), sees every record appended before the call.
 */
int journal_each(struct journal *j, size_t rows,
                 int (*fn)(void *arg, const struct outcome *o, struct blast_error *err), void *arg,
                 struct blast_error *err);

/*
 * Records of rows the journal holds outside packs (read at open or appended since):
 * 0 for a journal just compacted, whose runs since added nothing but run records.
 */
size_t journal_loose_records(struct journal *j);

/* Whether every row in 1..rows that the journal keeps has a final state (and a record). */
bool journal_all_final(struct journal *j, size_t rows);

/* What journal_compact() did. */
struct journal_compaction {
    size_t rows;           /* rows with a record */
    size_t packed;         /* rows in a final state: their last records went into packs */
    size_t plain;          /* the other rows: their last records kept as they were */
    size_t kept_sending;   /* earlier attempts' "sending" records kept (they may have gone) */
    size_t packs;          /* pack records written */
    size_t records_before; /* records in the file before */
    int64_t bytes_before, bytes_after;
};

/*
 * Rewrite the journal to what its rows need (see the top of this file): written to
 * PATH.compacting, made durable, then renamed over PATH, so that a crash at any
 * moment leaves either the old journal or the new one, both whole; the journal then
 * goes on in the new file, appends included. The caller holds the journal open with
 * its lock (journal_options.lock), and no other thread uses it during the call.
 * st (may be NULL) says what was done. Errors: BLAST_EIO (the journal is left as it
 * was), BLAST_EINVAL (a record cannot be read back), BLAST_ENOMEM.
 */
int journal_compact(struct journal *j, struct journal_compaction *st, struct blast_error *err);

/* A message a journal says was sent: for the bounce intake. Strings valid during the call. */
struct journal_sent {
    size_t row;
    const char *email;
    const char *message_id;
};

/*
 * Read the journal at path without writing to it or taking its lock (a send may be
 * running): fn is called for each "sending" record, in the file's order, and, in a
 * compacted journal, for each packed result that names a Message-ID (the sending
 * record of the attempt it decided is not kept); a record that is torn or damaged
 * is skipped. fn returning non-zero stops with that value.
 * Errors: BLAST_EIO (cannot read it), BLAST_ENOMEM.
 */
int journal_read_sent(const char *path, int (*fn)(void *arg, const struct journal_sent *s),
                      void *arg, struct blast_error *err);

/* CRC-32 (IEEE 802.3), as the records carry it. */
unsigned long journal_crc32(const void *data, size_t len);

#endif
