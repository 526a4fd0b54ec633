/*
 * dkim - DKIM-Signature header fields for a finished message (RFC 6376).
 *
 * Owns: loading the campaign's private keys (PEM: PKCS#8, or traditional RSA) and
 * judging them (type against the algorithm, RSA size, file permissions); relaxed
 * canonicalization of header and body (RFC 6376 §3.4.2, §3.4.4); the body hash;
 * the choice of header fields to sign, with oversigning; signing with rsa-sha256
 * (RFC 6376 §3.3.1) through OpenSSL's EVP API or ed25519-sha256 (RFC 8463) through
 * libsodium; the folding of the DKIM-Signature field; the public key's DNS TXT
 * record text, and the judgement of the record found published (its tags with
 * taglist).
 * Does not own: building the message (mime), dot-stuffing (smtp), publishing the
 * record in DNS (the user), looking it up (the caller of dkim_record_check()), nor deciding when to
 * sign (compose signs each message once it is final).
 *
 * The message handed to dkim_sign() must be final: CRLF line ends, 7-bit or 8-bit
 * safe, not dot-stuffed. Every signature is made over the message as mime built
 * it, so several signatures (RSA and Ed25519) are independent of one another.
 *
 * Threads: a struct dkim is read-only once made; dkim_sign() may be called from
 * several threads at once, each with its own struct dkim_scratch. The keys, the
 * fetched SHA-256 and each RSA signature's prepared context are shared read-only,
 * as OpenSSL 3 allows; a thread signs with its own copy of the context. libsodium
 * signs from the shared key directly.
 */
#ifndef BLAST_DKIM_H
#define BLAST_DKIM_H

#include "buf.h"
#include "campaign.h"
#include "error.h"

#include <stddef.h>
#include <time.h>

struct log;
struct dkim;

/* RSA key sizes: below MIN refused, below WARN a warning (RFC 8301 §3.2). */
#define DKIM_RSA_MIN_BITS  1024
#define DKIM_RSA_WARN_BITS 2048
#define DKIM_RSA_MAX_BITS  4096

/* Lines of the DKIM-Signature field are folded to at most this many characters. */
#define DKIM_LINE_MAX 78

/*
 * Per-thread scratch space for dkim_sign(), reused from message to message; its
 * OpenSSL contexts are made by the first dkim_sign() that needs them and freed by
 * dkim_scratch_free().
 */
struct evp_md_ctx_st;
struct dkim_scratch {
    struct buf fields;          /* the DKIM-Signature fields being built */
    struct buf canon;           /* canonicalized header data of one signature */
    struct evp_md_ctx_st *hash; /* SHA-256 of the body, and of the header data (Ed25519) */
    struct evp_md_ctx_st *sign; /* a copy of one RSA signature's prepared context */
};

void dkim_scratch_init(struct dkim_scratch *s);
void dkim_scratch_free(struct dkim_scratch *s);

/*
 * Load the keys of every signature of c (c->dkim, c->ndkim). *out is NULL when
 * the campaign has no dkim. Each problem names the place of its 'key' value in
 * c->path: an unreadable file or one that holds no PEM private key (BLAST_EIO,
 * BLAST_EINVAL), a key that is not RSA or Ed25519 or does not match 'algorithm',
 * an RSA key outside DKIM_RSA_MIN_BITS..DKIM_RSA_MAX_BITS (BLAST_EINVAL).
 * Warnings go to lg (may be NULL): an RSA key shorter than DKIM_RSA_WARN_BITS, a
 * key file readable by its group or others. With a diag, every problem is
 * reported to it and loading goes on; the first one is returned. c must outlive
 * the result; free it with dkim_free().
 */
int dkim_new(const struct campaign *c, const struct log *lg, const struct blast_diag *diag,
             struct dkim **out, struct blast_error *err);
void dkim_free(struct dkim *d);

/* How many signatures d makes (0 for NULL). */
size_t dkim_count(const struct dkim *d);

/* The TXT record's name: "selector._domainkey.domain". */
int dkim_record_name(const struct dkim *d, size_t i, struct buf *out);

/*
 * The TXT record's value for signature i, appended to out: "v=DKIM1; k=rsa;
 * p=BASE64" with the SubjectPublicKeyInfo DER (RFC 6376 §3.6.1), or "v=DKIM1;
 * k=ed25519; p=BASE64" with the raw 32-byte public key (RFC 8463 §4).
 */
int dkim_public_record(const struct dkim *d, size_t i, struct buf *out);

/* What the TXT record published for a signature says, against blast's key. */
enum dkim_record_verdict {
    DKIM_RECORD_MATCHES,    /* the key blast signs with */
    DKIM_RECORD_MISSING,    /* no TXT record at the name */
    DKIM_RECORD_INVALID,    /* no key record, several, or one whose key does not parse */
    DKIM_RECORD_REVOKED,    /* p= empty */
    DKIM_RECORD_WRONG_TYPE, /* k=, h= or s= refuses what blast signs */
    DKIM_RECORD_OTHER_KEY,  /* a good record with another key */
};

/*
 * Judge the TXT values found at dkim_record_name(d, i) (n of them; NULL entries
 * skipped; each one record's strings joined with nothing between, RFC 6376
 * §3.6.2.2) against signature i's key (RFC 6376 §3.6.1): tag names with case; v=,
 * if there, first and DKIM1; k= rsa when absent; h= and s=, if there, must allow
 * sha256 and email; p= required, whitespace in it ignored, empty when revoked;
 * unknown tags ignored. Of several values the one that parses as a key record is
 * judged; when several do, INVALID ("several records": a verifier may take either,
 * §6.1.2). An RSA key published as PKCS#1 RSAPublicKey rather than
 * SubjectPublicKeyInfo matches too.
 *
 * why gets a short phrase (whysize bytes; may be 0): "p= is empty: the key is
 * revoked", "k=rsa but blast signs with ed25519", "another key is published
 * (fingerprint sha256:HEX, blast's is sha256:HEX)" (SHA-256 over the key's bytes
 * as blast publishes them: for RSA `openssl pkey -pubout -outform DER | sha256sum`),
 * "the key matches" (with "; t=y: the domain is testing DKIM" when so).
 */
enum dkim_record_verdict dkim_record_check(const struct dkim *d, size_t i, const char *const *txts,
                                           size_t n, char *why, size_t whysize);

/* "matches", "missing", "invalid", "revoked", "wrong type", "another key". */
const char *dkim_record_verdict_name(enum dkim_record_verdict v);

/*
 * Sign message (the whole message, headers and body) with every signature of d,
 * prepending one DKIM-Signature field each; now is the t= value. Errors:
 * BLAST_EINVAL (no header/body separator), BLAST_ENOMEM, BLAST_EIO (OpenSSL
 * refused to sign); message is unchanged on failure.
 */
int dkim_sign(const struct dkim *d, struct buf *message, time_t now, struct dkim_scratch *s,
              struct blast_error *err);

/* ---- the parts, for tests ------------------------------------------------------------------ */

/* Append the relaxed form of one header field ("Name: value", folded, without its final CRLF). */
int dkim_canon_header(struct buf *out, const char *field, size_t len);

/* Append the relaxed form of a body (RFC 6376 §3.4.4). */
int dkim_canon_body(struct buf *out, const char *body, size_t len);

/* The bh= value: base64 of SHA-256 over the relaxed body, NUL-terminated (45 bytes). */
int dkim_body_hash(const char *body, size_t len, char out[45]);

#endif
