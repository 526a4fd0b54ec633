/*
 * verp - an envelope sender of its own for every recipient (variable envelope return
 * path), whose token says which campaign and row a bounce is about and proves that
 * this blast made it.
 *
 * Owns: the token (a version, the recipient's row, a tag of the campaign's name and
 * an HMAC-SHA256 of them under the operator's secret, in lower-case base32, so that
 * a mail system that folds the case of a local part does not break it), checking
 * one, and putting it into and finding it in an address made from a template such
 * as "bounces+{token}@acme.example".
 * Does not own: where the secret comes from (secret), which address a row was sent
 * to (the journal knows the row's address), nor reading bounces (intake).
 *
 * A forged token, or one with a character changed, does not verify: without the
 * secret nobody can make a token for another row or campaign.
 */
#ifndef BLAST_VERP_H
#define BLAST_VERP_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The token's length in characters (17 bytes in base32, no padding), and with its NUL. */
#define VERP_TOKEN_LEN  28
#define VERP_TOKEN_SIZE (VERP_TOKEN_LEN + 1)

/* The longest row a token can name: 40 bits. */
#define VERP_ROW_MAX (((uint64_t)1 << 40) - 1)

/* At least this many bytes of secret: an HMAC key shorter than that is guessable. */
#define VERP_SECRET_MIN 16

/* What a token says, before it is checked. */
struct verp_claim {
    uint64_t row;
    unsigned char campaign_tag[3]; /* the first bytes of SHA-256 of the campaign's name */
    unsigned char mac[8];
};

/*
 * The token of row in the campaign named campaign, under secret (len bytes, at
 * least VERP_SECRET_MIN), into out. Errors: BLAST_EINVAL (a row of 0 or over
 * VERP_ROW_MAX, a secret too short), BLAST_ENOMEM.
 */
int verp_token(const void *secret, size_t len, const char *campaign, uint64_t row,
               char out[VERP_TOKEN_SIZE], struct blast_error *err);

/*
 * Read a token (either case) without checking it. Returns 0, or BLAST_EINVAL when it
 * is not a token of this version (length, alphabet, version byte, row 0).
 */
int verp_parse(const char *token, size_t len, struct verp_claim *out);

/* Whether the claim was made under secret for the campaign named campaign (constant time). */
bool verp_verify(const void *secret, size_t len, const char *campaign,
                 const struct verp_claim *claim);

/*
 * Whether a template of return_path is usable: exactly one "{token}", in the local
 * part, and an '@' after it. Returns 0, or BLAST_EINVAL with err saying why (no place:
 * the caller gives it).
 */
int verp_template_check(const char *tmpl, struct blast_error *err);

/* The template with its "{token}" replaced by token, into out. Errors: BLAST_EINVAL (too long). */
int verp_address(const char *tmpl, const char *token, char *out, size_t size,
                 struct blast_error *err);

/*
 * The token in address, an address made from tmpl (the text around "{token}" compared
 * without regard to case, as mail systems may fold it), into out. Returns its length,
 * or 0 when address is not one of the template's.
 */
size_t verp_find_token(const char *tmpl, const char *address, char *out, size_t size);

#endif
