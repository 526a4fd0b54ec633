/*
 * compose - one recipient row in, one finished message out.
 *
 * Owns: the campaign's compiled templates (subject, text and HTML bodies), the
 * template data of a row (its CSV columns, then the built-ins email, name,
 * campaign and row), the check that every placeholder has a source, the
 * recipient's address (an invalid one makes the row "invalid", with the reason),
 * and the Message-ID. Hands the parts to mime for the bytes.
 * Does not own: reading the list (recipients) or sending (smtp).
 *
 * Hot path: compose_row() reuses the buffers inside struct compose_result, so a
 * result kept across rows stops allocating once it has held the largest message.
 */
#ifndef BLAST_COMPOSE_H
#define BLAST_COMPOSE_H

#include "address.h"
#include "buf.h"
#include "campaign.h"
#include "error.h"
#include "recipients.h"

#include <stdbool.h>

struct compose;

/* Names every template may use besides the CSV columns. */
extern const char *const compose_builtins[];

/*
 * Compile the campaign's templates against the columns of list. Fails, naming
 * the place, when a template file cannot be read or parsed, when the email (or
 * name) column is missing from the header, or when a placeholder is neither a
 * column nor a built-in. The caller frees *out with compose_free(). c and list
 * must outlive the compose object.
 */
int compose_new(const struct campaign *c, const struct recipients *list, struct compose **out,
                struct blast_error *err);
void compose_free(struct compose *cp);

/* The MAIL FROM address (envelope_from, or the From address). */
const struct address *compose_envelope_from(const struct compose *cp);

struct compose_result {
    bool invalid; /* the row cannot become a message; reason says why */
    char reason[512];
    char email[512];    /* the row's address as written in the list (truncated if huge) */
    struct address to;  /* the parsed recipient (empty when invalid) */
    struct buf message; /* the message bytes, CRLF, not dot-stuffed */
    char message_id[256];
    bool smtputf8;      /* the envelope needs SMTPUTF8 (RFC 6531) */
    struct buf scratch; /* rendering space, reused */
    struct buf scratch2;
    struct buf scratch3;
};

void compose_result_init(struct compose_result *res);
void compose_result_free(struct compose_result *res);

/*
 * Build the message for row into res. test_to, when not NULL, replaces the
 * recipient (a test send: the row's data, another mailbox). Returns 0 (check
 * res->invalid), or BLAST_ENOMEM.
 */
int compose_row(struct compose *cp, const struct recipients_row *row, const struct address *test_to,
                struct compose_result *res, struct blast_error *err);

#endif
