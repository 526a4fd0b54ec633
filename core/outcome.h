/*
 * outcome - what became of one recipient, as one typed record (docs/report.md).
 *
 * Owns: the statuses and their names, the record of a recipient's result (status,
 * the step and the reply that decided it, relay, attempts with their times, queue
 * id, Message-ID, size) with its history of attempts, and the record's JSON form:
 * outcome_format_json() writes a report entry (and, behind the journal's "t", a
 * journal record) straight from the struct, outcome_from_tape() reads one back
 * from a parsed text (outcome_from_json() from a jansson tree, through it).
 * Those are the only places where an outcome's JSON keys and status names are
 * spelt; every other module works on the struct.
 * Does not own: deciding a status (smtp makes an attempt's outcome, policy says
 * what happens next), nor files (journal, report).
 *
 * Ownership: a struct outcome owns its strings and its history; outcome_init()
 * makes it empty, outcome_free() releases what it holds (it may then be reused).
 * The setters copy what they are given.
 */
#ifndef BLAST_OUTCOME_H
#define BLAST_OUTCOME_H

#include "buf.h"
#include "error.h"
#include "smtp.h"
#include "timeutil.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * A recipient's status. Adding one is a value here and a row in the names table
 * (core/outcome.c); docs/report.md says what each means.
 */
enum outcome_status {
    OUTCOME_DELIVERED = 0, /* the relay accepted it: 2yz after the end of data */
    OUTCOME_DEFERRED,      /* not sent yet: the next run tries again */
    OUTCOME_FAILED,        /* refused for good, or still refused after the last retry */
    OUTCOME_UNKNOWN,       /* the end of data may have left; its reply never came */
    OUTCOME_SUPPRESSED,    /* on a suppression list */
    OUTCOME_INVALID,       /* the row cannot become a message */
    OUTCOME_DUPLICATE,     /* the address came earlier in the list */
    OUTCOME_RENDERED,      /* dry runs only: the message went to a file */
    OUTCOME_BOUNCED,       /* delivered to the relay, then came back (a DSN, see 'bounce') */
    OUTCOME_COMPLAINED,    /* delivered, then reported as spam by its recipient (ARF) */
    OUTCOME_STATUS_COUNT
};

/* "delivered", "deferred", ...; "?" for a value out of range. */
const char *outcome_status_name(enum outcome_status s);

/* The status named s, or -1 for a name this version does not know. */
int outcome_status_parse(const char *s);

/* A status that ends the recipient's story: it is never sent again. */
bool outcome_status_final(enum outcome_status s);

/* No step: the outcome was decided before any SMTP (an invalid row, the run stopped). */
#define OUTCOME_STEP_NONE SMTP_STATE_COUNT

/* At most this many attempts are kept in a record's history: the latest ones. */
#define OUTCOME_HISTORY_MAX 20

/* One delivery attempt, as the history lists it. Strings owned, NULL when none. */
struct outcome_attempt {
    struct timeutil_stamp time; /* when its outcome was known */
    enum outcome_status status; /* delivered, deferred, failed or unknown */
    enum smtp_state step;       /* OUTCOME_STEP_NONE: none */
    int code;                   /* 0: no reply */
    char enhanced[16];          /* "" when none */
    int port;                   /* 0: not known */
    char tls[16];               /* "TLSv1.3", "" without TLS */
    char cipher[64];            /* "" without TLS */
    char *relay, *host, *reply, *queue_id, *detail;
};

/*
 * What came back after the relay's 250 (docs/bounces.md): the event that made a
 * delivered recipient bounced or complained. Strings owned, NULL when none.
 */
struct outcome_bounce {
    bool set;
    char kind[16];     /* "dsn", "arf", "plain" */
    char class_[16];   /* "hard", "soft", "policy", "complaint" */
    char enhanced[16]; /* the RFC 3463 code, "" when none */
    char *rule, *diagnostic, *source;
    struct timeutil_stamp time; /* when the intake recorded it */
};

/* A recipient's result. Strings owned, NULL when none. */
struct outcome {
    size_t row; /* data row, 1-based */
    char *email;
    enum outcome_status status;
    /* what decided it: the reply at step, or blast's own words (detail) */
    enum smtp_state step; /* OUTCOME_STEP_NONE: none */
    int code;             /* 0: no reply */
    char enhanced[16];
    char *reply, *detail;
    char *relay;
    int attempts; /* delivery attempts made, across runs */
    char *message_id, *queue_id;
    size_t size;                       /* message bytes, 0 when never built */
    struct timeutil_stamp first, last; /* sec == 0: never attempted */
    struct outcome_attempt *history;   /* oldest first */
    size_t nhistory;
    struct outcome_bounce bounce; /* for OUTCOME_BOUNCED and OUTCOME_COMPLAINED */
};

void outcome_init(struct outcome *o);

/* Release what o holds and make it empty again. Accepts an empty record. */
void outcome_free(struct outcome *o);

/* Replace *field with a copy of s ("" and NULL: none). Errors: BLAST_ENOMEM. */
int outcome_set(char **field, const char *s);

/*
 * Append a copy of a to o's history, dropping the oldest beyond
 * OUTCOME_HISTORY_MAX. Errors: BLAST_ENOMEM (o unchanged).
 */
int outcome_add_attempt(struct outcome *o, const struct outcome_attempt *a);

/* Release an attempt's strings (the struct itself is the caller's). */
void outcome_attempt_free(struct outcome_attempt *a);

/* Make dst (empty or freed) a deep copy of src. Errors: BLAST_ENOMEM (dst left empty). */
int outcome_copy(struct outcome *dst, const struct outcome *src);

/*
 * Append o as one compact JSON object to out, keys in the report's order
 * (docs/report.md). With journal set, the object starts with "t":"result", as
 * journal records do. Strings that are not valid UTF-8 have each bad byte
 * replaced by U+FFFD. Errors: BLAST_ENOMEM (out keeps what it had).
 */
int outcome_format_json(const struct outcome *o, bool journal, struct buf *out);

/*
 * Fill o (empty) from a report entry or a journal "result" record, a JSON object
 * parsed onto a tape (entry may be NULL: not an object). Keys it does not know are
 * ignored; a status it does not know is read as OUTCOME_STATUS_COUNT ("another
 * status", for reports of a later version); a known key with a value of the wrong
 * type is an error; of a key given twice the last counts; of a history longer
 * than OUTCOME_HISTORY_MAX the latest are kept. Errors: BLAST_EINVAL (err says
 * which key), BLAST_ENOMEM. On failure o is left empty. entry is only read.
 */
struct jsontape_node;
int outcome_from_tape(const struct jsontape_node *entry, struct outcome *o,
                      struct blast_error *err);

/* The same from a jansson tree (copied onto a tape, then read as above). */
struct json_t;
int outcome_from_json(struct json_t *entry, struct outcome *o, struct blast_error *err);

/* The attempt's status from what the SMTP session made of the recipient. */
enum outcome_status outcome_of_smtp(enum smtp_outcome so);

#endif
