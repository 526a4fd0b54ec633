/*
 * suppressdb - the addresses no campaign may mail again, kept in SQLite across
 * campaigns: hard bounces, complaints, unsubscribe requests, soft bounces that kept
 * coming, and operators' own entries.
 *
 * Owns: the database file and its schema, one entry per address (matched without regard to case, as
 * text suppression lists are) with its class, the rule that decided it, the campaign, the time and
 * the message it came from (the schema is in suppressdb.c); adding (a later entry for the same
 * address replaces the earlier one), removing, listing, and handing every entry's key to whoever
 * screens a list. Several processes may use the same file at once (a send reading while an intake
 * writes): WAL journaling, and a wait of up to 10 seconds for a lock another process holds. Does
 * not own: deciding what suppresses (the classifier), nor screening rows (screen), nor the output
 * format of listings (cmd).
 */
#ifndef BLAST_SUPPRESSDB_H
#define BLAST_SUPPRESSDB_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why an address is suppressed. One value and one row of the names table each. */
enum suppress_class {
    SUPPRESS_HARD = 0,    /* the mailbox or the domain does not exist */
    SUPPRESS_SOFT,        /* temporary failures that kept coming (a count within a window) */
    SUPPRESS_COMPLAINT,   /* marked as spam (an ARF report) */
    SUPPRESS_UNSUBSCRIBE, /* asked to be taken off (List-Unsubscribe mailto) */
    SUPPRESS_MANUAL,      /* an operator's entry, or a data-protection request */
    SUPPRESS_CLASS_COUNT
};

/* "hard", "soft", "complaint", "unsubscribe", "manual"; "?" out of range. */
const char *suppress_class_name(enum suppress_class c);

/* The class named s, or -1. */
int suppress_class_parse(const char *s);

/* One entry. Strings are borrowed from the caller (adding) or from the database (listing). */
struct suppress_entry {
    const char *address; /* as it was given */
    enum suppress_class class;
    const char *rule;     /* the rule that decided it ("dsn-5.1.1", "manual"), or NULL */
    const char *campaign; /* the campaign it came from, or NULL */
    int64_t time;         /* when it was decided, seconds since the epoch */
    const char *source;   /* the Message-ID of the bounce or report, or NULL */
};

struct suppressdb;

/*
 * Open the database at path, creating the file (mode 0600: it holds recipients'
 * addresses) and its tables when create is set. Errors: BLAST_EIO (cannot open or
 * create it; err says why), BLAST_EINVAL (the file is not a blast suppression
 * database, or one of a later schema version).
 */
int suppressdb_open(const char *path, bool create, struct suppressdb **out,
                    struct blast_error *err);

/* Close and free. Accepts NULL. */
void suppressdb_close(struct suppressdb *db);

/*
 * Add or replace the entry for e->address (which must be an address blast would
 * send to). Errors: BLAST_EINVAL (not an address), BLAST_EIO.
 */
int suppressdb_add(struct suppressdb *db, const struct suppress_entry *e, struct blast_error *err);

/* Remove address's entry; *removed says whether there was one. Errors: BLAST_EINVAL, BLAST_EIO. */
int suppressdb_remove(struct suppressdb *db, const char *address, bool *removed,
                      struct blast_error *err);

/*
 * The entry for address, if any: fn is called once with it (strings valid during
 * the call). Returns 1 when found, 0 when not, or a negative code.
 */
int suppressdb_find(struct suppressdb *db, const char *address,
                    int (*fn)(void *arg, const struct suppress_entry *e), void *arg,
                    struct blast_error *err);

/*
 * Every entry, ordered by address; fn returning non-zero stops with that value.
 * Strings are valid during the call only.
 */
int suppressdb_each(struct suppressdb *db, int (*fn)(void *arg, const struct suppress_entry *e),
                    void *arg, struct blast_error *err);

/*
 * The hash of every entry (SipHash-2-4 of its key under suppressdb_hash_key(), as
 * an addrset made with that key keeps it): for loading a screen. fn returning
 * non-zero stops with that value.
 */
int suppressdb_hashes(struct suppressdb *db, int (*fn)(void *arg, uint64_t h), void *arg,
                      struct blast_error *err);

/* The key of the hashes (16 bytes, owned by db). */
const uint8_t *suppressdb_hash_key(const struct suppressdb *db);

/* suppressdb_find() by key (the address lower-cased, as screen matches it). */
int suppressdb_find_key(struct suppressdb *db, const char *key, size_t len,
                        int (*fn)(void *arg, const struct suppress_entry *e), void *arg,
                        struct blast_error *err);

/*
 * Many changes as one: after suppressdb_begin(), adds and removes are committed
 * together by suppressdb_commit() (one sync for all) or dropped by
 * suppressdb_rollback(). Errors: BLAST_EIO.
 */
int suppressdb_begin(struct suppressdb *db, struct blast_error *err);
int suppressdb_commit(struct suppressdb *db, struct blast_error *err);
void suppressdb_rollback(struct suppressdb *db);

/*
 * One thing that came back about an address (the event table): a bounce, a
 * complaint, a reply, a request. Strings are borrowed (adding) or the database's
 * (reading, valid during the call).
 */
struct suppress_event {
    const char *address;
    const char *campaign;   /* the campaign it is about, or NULL */
    uint64_t row;           /* the campaign's row, or 0 */
    const char *kind;       /* what the message was: "dsn", "arf", "plain", "auto-reply", ... */
    const char *class_name; /* the verdict's class: "hard", "soft", "policy", ... */
    const char *rule;       /* the rule that decided it */
    const char *status;     /* the RFC 3463 code, or NULL */
    const char *diagnostic; /* what the mail system said, or NULL */
    const char *source;     /* the Message-ID of the message it came in, or NULL */
    const char *via;        /* how it was attributed: "verp", "message-id", "recipient", ... */
    const char *action;     /* the RFC 3464 Action ("failed", "delayed"), or NULL */
    int64_t time;           /* when it was recorded, seconds since the epoch */
};

/* Record an event. Errors: BLAST_EINVAL (not an address), BLAST_EIO. */
int suppressdb_event_add(struct suppressdb *db, const struct suppress_event *e,
                         struct blast_error *err);

/* How many events of class_name address has had since since (seconds). Errors: BLAST_EIO. */
int suppressdb_event_count(struct suppressdb *db, const char *address, const char *class_name,
                           int64_t since, size_t *out, struct blast_error *err);

/*
 * Every event about the campaign named campaign, ordered by row and time; fn
 * returning non-zero stops with that value. Errors: BLAST_EIO.
 */
int suppressdb_events(struct suppressdb *db, const char *campaign,
                      int (*fn)(void *arg, const struct suppress_event *e), void *arg,
                      struct blast_error *err);

/* A message the intake has read (the intake table), by the SHA-256 of its bytes. */
struct suppress_intake {
    const char *digest;     /* hex */
    const char *mailbox;    /* the URL it was read from */
    const char *uid;        /* its IMAP UID or POP3 UIDL, or NULL */
    const char *message_id; /* or NULL */
    const char *result;     /* "recorded", "ignored" (nothing to act on), "error" */
    const char *detail;     /* why, for "ignored" and "error", or NULL */
    int64_t time;
};

/*
 * Whether the message of digest was read before: 1 (its result copied to result,
 * size bytes), 0, or BLAST_EIO.
 */
int suppressdb_intake_find(struct suppressdb *db, const char *digest, char *result, size_t size,
                           struct blast_error *err);

/* Record a message read (replacing an earlier record of it). Errors: BLAST_EIO. */
int suppressdb_intake_add(struct suppressdb *db, const struct suppress_intake *m,
                          struct blast_error *err);

/*
 * The IMAP messages an intake is about to fetch from mailbox (fetching sets \Seen,
 * which would hide them from the next search if the intake stopped before
 * recording them): add (or, !add, remove) uid. Errors: BLAST_EIO.
 */
int suppressdb_pending(struct suppressdb *db, const char *mailbox, const char *uid, bool add,
                       struct blast_error *err);

/* Every pending uid of mailbox; fn returning non-zero stops with that value. */
int suppressdb_pending_each(struct suppressdb *db, const char *mailbox,
                            int (*fn)(void *arg, const char *uid), void *arg,
                            struct blast_error *err);

/* How many entries. Errors: BLAST_EIO. */
int suppressdb_count(struct suppressdb *db, size_t *out, struct blast_error *err);

#endif
