/*
 * intake - what comes back, recorded: each message of the bounce mailbox read,
 * attributed to a campaign's recipient, turned into events and suppression
 * entries, and only then removed from the server (docs/bounces.md).
 *
 * Owns: attribution (a VERP token checked against the campaigns' secrets first; else
 * the Message-ID of the returned message, else the recipients a report names, else
 * the sender of a reply or request, looked up in the campaigns' journals); what a
 * verdict leads to (hard bounces, complaints and unsubscribe requests suppress at
 * once, soft bounces after soft_count within soft_window, the rest are events only);
 * the order that makes a run safe to kill: the results of a batch of messages are
 * committed to the database (durable) before any of them is flagged, moved or
 * deleted on the server, and a message already recorded (by the SHA-256 of its
 * bytes) is never recorded again.
 * Does not own: reading a message (bounce), the server (mailbox), the database
 * (suppressdb), the classes and rules (classify), fetching secrets (the caller).
 */
#ifndef BLAST_INTAKE_H
#define BLAST_INTAKE_H

#include "bounce.h"
#include "campaign.h"
#include "error.h"
#include "log.h"
#include "mailbox.h"
#include "outcome.h"
#include "suppressdb.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A campaign whose bounces may be in the mailbox. Borrowed from the caller. */
struct intake_campaign {
    const struct campaign *c;
    const char *secret; /* its return_path secret, or NULL without return_path */
    size_t secret_len;
    const char *journal; /* its journal's path (read, never written), or NULL */
    /* the journals of its shards (send --shard), read as well: their rows are the list's */
    const char *const *shard_journals;
    size_t nshard_journals;
};

struct intake_options {
    const struct intake_campaign *campaigns;
    size_t ncampaigns;
    struct suppressdb *db;
    const char *mailbox_url; /* for the intake table */
    enum campaign_bounces_after after;
    const char *folder;
    bool pending;       /* keep the UIDs about to be fetched (IMAP, after: seen) */
    int soft_count;     /* soft bounces within soft_window that suppress */
    long soft_window;   /* ms */
    size_t limit;       /* messages to read at most; 0: all */
    int64_t deadline;   /* timeutil_mono_ms() after which no message is started; 0: none */
    size_t message_max; /* bytes */
    const volatile sig_atomic_t *stop; /* set by a signal: no message is started; may be NULL */
    int64_t (*now)(void);              /* the wall clock in seconds (time(NULL) when NULL) */
    const struct log *log;
};

/* What a run did. */
struct intake_stats {
    size_t listed;     /* messages the server listed */
    size_t read;       /* fetched and read */
    size_t recorded;   /* that led to events */
    size_t again;      /* recorded by an earlier run: only finished on the server now */
    size_t ignored;    /* nothing to act on (left on the server) */
    size_t errors;     /* could not be read (left on the server) */
    size_t events;     /* events recorded */
    size_t suppressed; /* suppression entries added or renewed */
    size_t by_class[BOUNCE_CLASS_COUNT]; /* events by class */
    size_t finished;                     /* messages flagged, moved or deleted */
};

/* The state of a run: the campaigns' journal indexes, loaded when first needed. */
struct intake;

/* Make one. Errors: BLAST_ENOMEM. */
int intake_new(const struct intake_options *o, struct intake **out, struct blast_error *err);
void intake_free(struct intake *in);

/* How one message came out. */
enum intake_result {
    INTAKE_RECORDED = 0, /* events recorded: the message may go */
    INTAKE_AGAIN,        /* recorded before: the message may go */
    INTAKE_IGNORED,      /* nothing to act on: it stays */
    INTAKE_ERROR,        /* could not be read: it stays */
};

/*
 * Read one message (len bytes, uid as the server names it) and record what it says
 * in the database, within the caller's transaction. *result says what came of it.
 * Errors (the database, ENOMEM) stop the run; a message that cannot be read is
 * not an error but INTAKE_ERROR, recorded with its reason.
 */
int intake_message(struct intake *in, const void *data, size_t len, const char *uid,
                   enum intake_result *result, struct intake_stats *st, struct blast_error *err);

/*
 * Read the mailbox: list, then in batches fetch, record and commit, then finish on
 * the server the messages whose results are durable. Errors: the server's
 * (mailbox.h), the database's; what was committed stays committed.
 */
int intake_run(struct intake *in, struct mailbox *mb, struct intake_stats *st,
               struct blast_error *err);

/*
 * What came back for one campaign, for its report: the event that decides each
 * row's later status (a complaint over a hard bounce over a policy block over a
 * soft bounce the mail system gave up on: Action "failed" or a 5.x.x status; a
 * delayed soft bounce, a reply, a request change nothing), loaded from the database.
 */
struct intake_later;

/* Load the campaign's events. Errors: BLAST_EIO, BLAST_ENOMEM. */
int intake_later_load(struct suppressdb *db, const char *campaign, struct intake_later **out,
                      struct blast_error *err);

/* intake_later_load() from the database at path (not made when missing: BLAST_EIO). */
int intake_later_open(const char *path, const char *campaign, struct intake_later **out,
                      struct blast_error *err);

/* How many rows bounced or complained. */
size_t intake_later_count(const struct intake_later *l);

/*
 * Make o say what came back, when its row (sent to the same address) was delivered
 * or unknown and later bounced or complained: its status becomes OUTCOME_BOUNCED or
 * OUTCOME_COMPLAINED and o->bounce is filled. Returns 1 when o changed, 0 when
 * not, BLAST_ENOMEM.
 */
int intake_later_apply(const struct intake_later *l, struct outcome *o);

void intake_later_free(struct intake_later *l);

#endif
