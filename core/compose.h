/*
 * compose - one recipient in, one finished message out.
 *
 * Owns: the campaign's templates, compiled once (subject, text and HTML bodies,
 * custom header values, the unsubscribe URL, the Feedback-ID) with their partials;
 * the attachments and inline images, read and base64-encoded once; the template
 * data of a row (its CSV columns, then the campaign's vars, then the built-ins
 * email, name, campaign and row); the check that every name a template uses has a
 * source; and the per-recipient List-Unsubscribe value (its Unicode hosts in A-label
 * form) with the campaign's List-Id. Hands the parts to mime
 * for the bytes.
 * Does not own: reading the list (recipients), judging rows (screen), sending
 * (smtp), loading DKIM keys and signing (dkim: compose only calls dkim_sign() on
 * each finished message, so dry runs and previews carry the same signatures).
 *
 * Partials ({{> name}}) are looked up, in order, beside the template that uses
 * them, in templates/ beside the campaign file, and in templates/ one level up;
 * as NAME, NAME.mustache, then NAME.html (HTML) or NAME.txt (text). A missing
 * partial is an error.
 *
 * Hot path: compose_row() reuses the buffers inside struct compose_result, so a
 * result kept across rows stops allocating once it has held the largest message.
 * A compose object may be shared by threads, each with its own result.
 */
#ifndef BLAST_COMPOSE_H
#define BLAST_COMPOSE_H

#include "address.h"
#include "buf.h"
#include "campaign.h"
#include "dkim.h"
#include "error.h"
#include "mime.h"
#include "recipients.h"
#include "screen.h"

#include <stdbool.h>

struct compose;

/* Names every template may use besides the CSV columns and vars. */
extern const char *const compose_builtins[];

/* The longest List-Unsubscribe URL: it must fit one header line (RFC 5322 §2.1.1). */
#define COMPOSE_URL_MAX 900

/*
 * Compile the campaign's templates, load its attachments, and check every name
 * against the columns of list, the vars and the built-ins. Fails, naming the
 * place, when a template or partial cannot be read or parsed, a file part cannot
 * be read, or a name has no source; with a diag, every such problem is reported
 * to it before failing. The caller frees *out with compose_free(). c, list and s
 * must outlive the compose object.
 */
int compose_new(const struct campaign *c, const struct recipients *list, const struct screen *s,
                const struct blast_diag *diag, struct compose **out, struct blast_error *err);
void compose_free(struct compose *cp);

/*
 * Sign every message from now on with d (NULL: no signing). d must outlive cp.
 * Callers load it with dkim_new() from the same campaign.
 */
void compose_set_dkim(struct compose *cp, const struct dkim *d);

/*
 * With the campaign's return_path: every message gets a MAIL FROM of its own, whose
 * token (core/verp) is made under secret (len bytes, copied, wiped when cp is freed).
 * Errors: BLAST_EINVAL (shorter than VERP_SECRET_MIN, placed at the secret's key in
 * the campaign), BLAST_ENOMEM. Without it, compose_row() fails on such a campaign.
 */
int compose_set_return_path(struct compose *cp, const char *secret, size_t len,
                            struct blast_error *err);

/*
 * The MAIL FROM address (envelope_from, or the From address); with return_path,
 * each row's own is in its compose_result's envelope_from.
 */
const struct address *compose_envelope_from(const struct compose *cp);

/* How many templates and names were compiled (for check's summary). */
size_t compose_ntemplates(const struct compose *cp);
size_t compose_nplaceholders(const struct compose *cp);

struct compose_result {
    bool invalid;       /* the row's values cannot be made into a safe message */
    char reason[256];   /* why, when invalid */
    struct buf message; /* the message bytes, CRLF, not dot-stuffed */
    char message_id[256];
    bool smtputf8;           /* the envelope needs SMTPUTF8 (RFC 6531) */
    char envelope_from[320]; /* this row's MAIL FROM from return_path, or "" without one */
    /* rendering space, reused from row to row */
    struct buf subject, text, html, url, feedback_id, headers;
    size_t *header_ends;              /* end offset of each header value in headers */
    struct mime_header *mime_headers; /* the campaign's headers with this row's values */
    struct dkim_scratch dkim;         /* signing space */
};

void compose_result_init(struct compose_result *res);
void compose_result_free(struct compose_result *res);

/*
 * Build the message for row, addressed to to (the row's screened address, or a
 * test address). With a dkim set, the finished message is signed (DKIM-Signature
 * fields first), before any dot-stuffing. Returns 0 (check res->invalid), or BLAST_ENOMEM /
 * BLAST_EINVAL (templates nested too deep).
 */
int compose_row(struct compose *cp, const struct recipients_row *row, const struct address *to,
                struct compose_result *res, struct blast_error *err);

#endif
