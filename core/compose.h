/*
 * compose - one recipient in, one finished message out.
 *
 * Owns: the campaign's compiled templates (subject, text and HTML bodies), the
 * template data of a row (its CSV columns, then the campaign's vars, then the
 * built-ins email, name, campaign and row), the check that every placeholder has
 * a source, and the Message-ID. Hands the parts to mime for the bytes.
 * Does not own: reading the list (recipients), judging rows (screen), sending
 * (smtp).
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
#include "screen.h"

#include <stdbool.h>

struct compose;

/* Names every template may use besides the CSV columns and vars. */
extern const char *const compose_builtins[];

/*
 * Compile the campaign's templates and check every placeholder against the
 * columns of list, the vars and the built-ins. Fails, naming the place, when a
 * template file cannot be read or parsed or a placeholder has no source; with a
 * diag, every such problem is reported to it before failing. The caller frees
 * *out with compose_free(). c, list and s must outlive the compose object.
 */
int compose_new(const struct campaign *c, const struct recipients *list, const struct screen *s,
                const struct blast_diag *diag, struct compose **out, struct blast_error *err);
void compose_free(struct compose *cp);

/* The MAIL FROM address (envelope_from, or the From address). */
const struct address *compose_envelope_from(const struct compose *cp);

/* How many templates and placeholders were compiled (for check's summary). */
size_t compose_ntemplates(const struct compose *cp);
size_t compose_nplaceholders(const struct compose *cp);

struct compose_result {
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
 * Build the message for row, addressed to to (the row's screened address, or a
 * test address). Returns 0, or BLAST_ENOMEM.
 */
int compose_row(struct compose *cp, const struct recipients_row *row, const struct address *to,
                struct compose_result *res, struct blast_error *err);

#endif
