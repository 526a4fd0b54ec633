/*
 * dkim - DKIM-Signature header fields for a finished message. See dkim.h.
 *
 * One signature, RFC 6376 §5 step by step:
 *   1. the body hash: SHA-256 over the relaxed body (§3.4.4, §3.7), computed once
 *      per message and shared by every signature (all use relaxed and SHA-256);
 *   2. the fields to sign (§5.4): the ones of signed_names[] the message has, from
 *      the bottom up when a name occurs more than once (§5.4.2), plus one more
 *      mention of the oversigned names, which then cannot be added (§8.15);
 *   3. the header data: each selected field in relaxed form with its CRLF, then
 *      the DKIM-Signature field itself with an empty b= and without CRLF (§3.7);
 *   4. the signature: RSASSA-PKCS1-v1_5 with SHA-256 over the header data
 *      (§3.3.1), or Ed25519 (PureEdDSA) over the SHA-256 of the header data
 *      (RFC 8463 §3); base64 into b=, folded with FWS, which §3.5 allows anywhere
 *      in the value and verifiers remove before checking.
 * No l= tag: a body that grows after signing breaks the signature, as it should.
 */
#include "dkim.h"
#include "log.h"
#include "taglist.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sodium.h>

/*
 * OpenSSL 3 looks a method up each time an algorithm is named by an EVP_sha256()
 * or a key, under a lock the signing threads share: so SHA-256 is fetched once,
 * and each RSA signature's context is set up once (base) and copied per message.
 * Both are only read once made, which OpenSSL allows from several threads.
 *
 * Ed25519 signs with libsodium (crypto_sign_ed25519_detached), in half the time
 * OpenSSL 3.0's EVP Ed25519 takes (docs/architecture.md). Ed25519 signatures are
 * deterministic (RFC 8032 §5.1.6), so both give the same bytes; OpenSSL still
 * reads and judges the key, and hands libsodium its 32-byte seed.
 */
struct dkim_signer {
    const struct campaign_dkim *cfg;
    EVP_PKEY *key;
    EVP_MD_CTX *base;                                /* RSA: EVP_DigestSignInit done */
    unsigned char ed_sk[crypto_sign_SECRETKEYBYTES]; /* Ed25519: seed and public key */
};

struct dkim {
    const struct campaign *c;
    EVP_MD *sha256;
    struct dkim_signer *s;
    size_t n;
};

/*
 * The fields signed when present, in h= order. Received, Return-Path and Bcc are
 * never signed: relays add or remove them on the way.
 */
static const struct {
    const char *name;
    bool oversign; /* named once more than present (RFC 6376 §8.15) */
} signed_names[] = {
    {"From", true},
    {"To", false},
    {"Subject", true},
    {"Date", false},
    {"Message-ID", false},
    {"MIME-Version", false},
    {"Content-Type", false},
    {"Reply-To", false},
    {"List-Unsubscribe", true},
    {"List-Unsubscribe-Post", true},
    {"List-Id", false},
    {"Feedback-ID", false},
};

#define NSIGNED (sizeof signed_names / sizeof signed_names[0])

static bool is_wsp(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool is_wsp_or_eol(char ch)
{
    return is_wsp(ch) || ch == '\r' || ch == '\n';
}

/* ---- scratch ---------------------------------------------------------------------------- */

void dkim_scratch_init(struct dkim_scratch *s)
{
    buf_init(&s->fields);
    buf_init(&s->canon);
    s->hash = NULL;
    s->sign = NULL;
}

void dkim_scratch_free(struct dkim_scratch *s)
{
    buf_free(&s->fields);
    buf_free(&s->canon);
    EVP_MD_CTX_free(s->hash);
    EVP_MD_CTX_free(s->sign);
    s->hash = NULL;
    s->sign = NULL;
}

/* ---- canonicalization (RFC 6376 §3.4) ------------------------------------------------------- */

/*
 * Relaxed header canonicalization (§3.4.2): the name in lower case, the field
 * unfolded, every run of WSP made one SP, WSP at the end of the value and around
 * the colon removed.
 */
int dkim_canon_header(struct buf *out, const char *field, size_t len)
{
    size_t i = 0, colon;
    bool wsp = false, started = false;
    int rc;

    for (colon = 0; colon < len && field[colon] != ':'; colon++)
        ;
    if ((rc = buf_reserve(out, len + 1)) < 0)
        return rc;
    /* the name: no WSP belongs to it, so what stands before the colon is dropped */
    for (i = 0; i < colon; i++)
        if (!is_wsp(field[i]) && field[i] != '\r' && field[i] != '\n')
            out->data[out->len++] =
                (field[i] >= 'A' && field[i] <= 'Z') ? (char)(field[i] + 32) : field[i];
    out->data[out->len++] = ':';
    for (i = colon + 1; i < len; i++) {
        char ch = field[i];
        if (ch == '\r' || ch == '\n')
            continue; /* unfolding: the WSP that follows stays and is compressed */
        if (is_wsp(ch)) {
            wsp = true;
            continue;
        }
        if (wsp && started)
            out->data[out->len++] = ' ';
        out->data[out->len++] = ch;
        wsp = false;
        started = true;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Where relaxed body bytes go: a buffer, or a SHA-256 context. */
struct body_sink {
    struct buf *out;
    EVP_MD_CTX *md;
    int rc;
};

static void sink_put(struct body_sink *k, const char *s, size_t len)
{
    if (len == 0 || k->rc < 0)
        return;
    if (k->out != NULL)
        k->rc = buf_append(k->out, s, len);
    else if (EVP_DigestUpdate(k->md, s, len) != 1)
        k->rc = BLAST_EIO;
}

static bool is_crlf(const char *p, const char *end)
{
    return p + 1 < end && p[0] == '\r' && p[1] == '\n';
}

/*
 * The first byte from p on that relaxing may change: a tab, or an SP followed by
 * WSP or CR. Sixteen bytes at a time where SSE2 is there; the last ones (and every
 * byte elsewhere) are left to the caller's byte-by-byte loop.
 */
static const char *skip_relaxed(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'), cr = _mm_set1_epi8('\r');

    while (end - p >= 17) { /* the byte after the sixteen is read too */
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
        __m128i next = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, sp), _mm_cmpeq_epi8(b, tab)),
                                    _mm_cmpeq_epi8(b, cr));
        __m128i bad =
            _mm_or_si128(_mm_cmpeq_epi8(a, tab), _mm_and_si128(_mm_cmpeq_epi8(a, sp), next));
        int m = _mm_movemask_epi8(bad);
        if (m != 0)
            return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
#else
    (void)end;
#endif
    return p;
}

/*
 * Relaxed body canonicalization (§3.4.4): WSP at line ends removed, runs of WSP
 * inside a line made one SP, empty lines at the end removed; a non-empty body
 * ends with CRLF, an empty one stays empty.
 *
 * Most of a body is already relaxed: mime writes CRLF line ends, single spaces
 * between words and no trailing space. So the output is the input in spans,
 * broken only where a WSP run is not one SP before content; the spans go to the
 * sink as they are, and the sink sees a handful of pieces per message rather
 * than every byte.
 */
static void canon_body(struct body_sink *k, const char *body, size_t len)
{
    const char *end = body + len, *p, *span;

    /*
     * Cut the empty lines at the end, and the WSP of the last line with content:
     * what remains ends with content, so every CRLF and WSP run in it is followed
     * by more content on some line. A CRLF pair cannot overlap another, so pairing
     * from the end agrees with pairing from the start.
     */
    while (end > body) {
        if (is_wsp(end[-1]))
            end--;
        else if (end - body >= 2 && end[-2] == '\r' && end[-1] == '\n')
            end -= 2;
        else
            break;
    }
    if (end == body)
        return; /* no content: the relaxed body is empty */
    for (p = span = body; p < end;) {
        const char *run;
        if ((p = skip_relaxed(p, end)) == end)
            break;
        if (!is_wsp(*p)) {
            p++;
            continue;
        }
        for (run = p; p < end && is_wsp(*p); p++)
            ;
        if (p - run == 1 && *run == ' ' && !is_crlf(p, end))
            continue; /* one SP before content: already relaxed */
        sink_put(k, span, (size_t)(run - span));
        if (!is_crlf(p, end))
            sink_put(k, " ", 1); /* a run before content becomes one SP */
        span = p;                /* a run before CRLF is dropped */
    }
    sink_put(k, span, (size_t)(end - span));
    sink_put(k, "\r\n", 2);
}

int dkim_canon_body(struct buf *out, const char *body, size_t len)
{
    struct body_sink k;

    k.out = out;
    k.md = NULL;
    k.rc = 0;
    canon_body(&k, body, len);
    return k.rc;
}

/* bh=: base64 of SHA-256 (sha256) over the relaxed body into out (45 bytes), with ctx. */
static int body_hash(const EVP_MD *sha256, EVP_MD_CTX *ctx, const char *body, size_t len, char *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    struct body_sink k;

    k.out = NULL;
    k.rc = 0;
    k.md = ctx;
    if (EVP_DigestInit_ex(k.md, sha256, NULL) != 1)
        return BLAST_EIO;
    canon_body(&k, body, len);
    if (k.rc < 0 || EVP_DigestFinal_ex(k.md, digest, &dlen) != 1 || dlen != 32)
        return BLAST_EIO;
    EVP_EncodeBlock((unsigned char *)out, digest, (int)dlen);
    return 0;
}

int dkim_body_hash(const char *body, size_t len, char out[45])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc;

    if (ctx == NULL)
        return BLAST_ENOMEM;
    rc = body_hash(EVP_sha256(), ctx, body, len, out);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- keys ----------------------------------------------------------------------------------- */

/* Encrypted keys are refused rather than prompted for: blast runs unattended. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int key_problem(const struct campaign *c, const struct campaign_dkim *d, int code,
                       struct blast_error *e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int key_problem(const struct campaign *c, const struct campaign_dkim *d, int code,
                       struct blast_error *e, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return blast_error_set(e, code, c->path, d->key_place.line, d->key_place.column,
                           "dkim key %s: %s", d->key, text);
}

/* Load and judge the key of one signature. */
static int load_key(const struct campaign *c, const struct campaign_dkim *d, const struct log *lg,
                    EVP_PKEY **out, struct blast_error *e)
{
    const char *want = campaign_dkim_alg_name(d->algorithm);
    EVP_PKEY *key = NULL;
    struct stat st;
    BIO *bio = NULL;
    int rc = 0, id, bits;

    *out = NULL;
    if (stat(d->key, &st) < 0 || (bio = BIO_new_file(d->key, "r")) == NULL) {
        rc = key_problem(c, d, BLAST_EIO, e, "cannot read: %s", strerror(errno));
        goto out;
    }
    if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0)
        log_msg(lg, LOG_LEVEL_WARN,
                "%s:%d:%d: dkim key %s is readable by %s (chmod 600 it): a private key is a "
                "secret",
                c->path, d->key_place.line, d->key_place.column, d->key,
                (st.st_mode & S_IROTH) != 0 ? "everyone" : "its group");
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ERR_clear_error();
    if (key == NULL) {
        rc = key_problem(c, d, BLAST_EINVAL, e,
                         "no unencrypted PEM private key in it (PKCS#8 \"BEGIN PRIVATE KEY\" or "
                         "\"BEGIN RSA PRIVATE KEY\")");
        goto out;
    }
    id = EVP_PKEY_get_base_id(key);
    if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
        const char *type = EVP_PKEY_get0_type_name(key);
        rc = key_problem(c, d, BLAST_EINVAL, e, "a %s key; DKIM signs with RSA or Ed25519",
                         type != NULL ? type : "unknown");
        goto out;
    }
    if ((id == EVP_PKEY_RSA) != (d->algorithm == CAMPAIGN_DKIM_RSA_SHA256)) {
        rc = key_problem(c, d, BLAST_EINVAL, e, "an %s key, but algorithm is %s",
                         id == EVP_PKEY_RSA ? "RSA" : "Ed25519", want);
        goto out;
    }
    if (id == EVP_PKEY_RSA) {
        bits = EVP_PKEY_get_bits(key);
        if (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS) {
            /* RFC 8301 §3.2: verifiers may ignore keys under 1024 bits */
            rc = key_problem(c, d, BLAST_EINVAL, e,
                             "an RSA key of %d bits; DKIM keys have 1024 to 4096 bits (2048 "
                             "recommended)",
                             bits);
            goto out;
        }
        if (bits < DKIM_RSA_WARN_BITS)
            log_msg(lg, LOG_LEVEL_WARN,
                    "%s:%d:%d: dkim key %s has %d bits; 2048 or more is recommended (RFC 8301 "
                    "§3.2)",
                    c->path, d->key_place.line, d->key_place.column, d->key, bits);
    }
    *out = key;
    key = NULL;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

/*
 * What signs for s, set up once: the RSA context copied for every message, or the
 * Ed25519 key in libsodium's form (see struct dkim_signer).
 */
static int sign_setup(const struct dkim *d, struct dkim_signer *s)
{
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES],
        want[crypto_sign_PUBLICKEYBYTES];
    size_t seedlen = sizeof seed, wantlen = sizeof want;
    int rc = BLAST_EINVAL;

    if (s->cfg->algorithm == CAMPAIGN_DKIM_RSA_SHA256) {
        /* RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 with SHA-256 */
        if ((s->base = EVP_MD_CTX_new()) == NULL)
            return BLAST_ENOMEM;
        if (EVP_DigestSignInit(s->base, NULL, d->sha256, NULL, s->key) != 1)
            goto out;
        return 0;
    }
    /* RFC 8032 §5.1.5: the private key is a 32-byte seed; libsodium keeps seed || A */
    if (EVP_PKEY_get_raw_private_key(s->key, seed, &seedlen) != 1 || seedlen != sizeof seed ||
        EVP_PKEY_get_raw_public_key(s->key, want, &wantlen) != 1 || wantlen != sizeof want ||
        crypto_sign_ed25519_seed_keypair(pk, s->ed_sk, seed) != 0)
        goto out;
    /* both libraries must see the same key pair, or the published record would not verify */
    if (sodium_memcmp(pk, want, sizeof pk) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(seed, sizeof seed);
    ERR_clear_error();
    return rc;
}

int dkim_new(const struct campaign *c, const struct log *lg, const struct blast_diag *diag,
             struct dkim **out, struct blast_error *err)
{
    struct dkim *d = NULL;
    struct blast_error e;
    size_t i;
    int rc = 0, r;

    *out = NULL;
    if (c->ndkim == 0)
        return 0;
    d = calloc(1, sizeof *d);
    if (d == NULL || (d->s = calloc(c->ndkim, sizeof *d->s)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    d->c = c;
    d->n = c->ndkim;
    if ((d->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
        ERR_clear_error();
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "dkim: OpenSSL has no SHA-256");
        goto out;
    }
    /* thread-safe and idempotent; before any other libsodium call */
    if (sodium_init() < 0) {
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "dkim: libsodium cannot start");
        goto out;
    }
    for (i = 0; i < c->ndkim; i++) {
        d->s[i].cfg = &c->dkim[i];
        blast_error_clear(&e);
        if ((r = load_key(c, &c->dkim[i], lg, &d->s[i].key, &e)) == 0 &&
            (r = sign_setup(d, &d->s[i])) == 0)
            continue;
        if (r == BLAST_ENOMEM)
            blast_error_set(&e, r, NULL, 0, 0, "out of memory");
        else if (e.text[0] == '\0')
            key_problem(c, &c->dkim[i], r, &e, "cannot sign with it");
        blast_error_set(err, e.code, e.source, e.line, e.column, "%s", e.text);
        if (rc == 0)
            rc = r;
        if (diag == NULL)
            goto out;
        diag->report(diag->arg, &e);
    }
    if (rc == 0) {
        *out = d;
        d = NULL;
    }
out:
    dkim_free(d);
    return rc;
}

void dkim_free(struct dkim *d)
{
    size_t i;

    if (d == NULL)
        return;
    for (i = 0; d->s != NULL && i < d->n; i++) {
        EVP_MD_CTX_free(d->s[i].base);
        EVP_PKEY_free(d->s[i].key);
        sodium_memzero(d->s[i].ed_sk, sizeof d->s[i].ed_sk);
    }
    EVP_MD_free(d->sha256);
    free(d->s);
    free(d);
}

size_t dkim_count(const struct dkim *d)
{
    return d != NULL ? d->n : 0;
}

int dkim_record_name(const struct dkim *d, size_t i, struct buf *out)
{
    return buf_printf(out, "%s._domainkey.%s", d->s[i].cfg->selector, d->s[i].cfg->domain);
}

/* Room for p='s bytes: a 4096-bit RSA key's SubjectPublicKeyInfo DER takes 550. */
#define PUBKEY_MAX 1024

/*
 * The bytes p= carries for signature i, into out (PUBKEY_MAX): RFC 6376 §3.6.1's
 * DER SubjectPublicKeyInfo for RSA, RFC 8463 §4's raw 32-byte key for Ed25519.
 */
static int public_key_bytes(const struct dkim *d, size_t i, unsigned char *out, size_t *len)
{
    EVP_PKEY *key = d->s[i].key;
    unsigned char *p = out;
    int n;

    *len = PUBKEY_MAX;
    if (d->s[i].cfg->algorithm == CAMPAIGN_DKIM_RSA_SHA256) {
        if ((n = i2d_PUBKEY(key, NULL)) <= 0 || n > PUBKEY_MAX || i2d_PUBKEY(key, &p) != n) {
            ERR_clear_error();
            return BLAST_EIO;
        }
        *len = (size_t)n;
        return 0;
    }
    if (EVP_PKEY_get_raw_public_key(key, out, len) != 1) {
        ERR_clear_error();
        return BLAST_EIO;
    }
    return 0;
}

int dkim_public_record(const struct dkim *d, size_t i, struct buf *out)
{
    unsigned char pub[PUBKEY_MAX];
    char b64[PUBKEY_MAX / 3 * 4 + 8];
    size_t len;
    int rc;

    if ((rc = public_key_bytes(d, i, pub, &len)) < 0)
        return rc;
    EVP_EncodeBlock((unsigned char *)b64, pub, (int)len);
    return buf_printf(out, "v=DKIM1; k=%s; p=%s",
                      d->s[i].cfg->algorithm == CAMPAIGN_DKIM_RSA_SHA256 ? "rsa" : "ed25519", b64);
}

/* ---- the published key record (RFC 6376 §3.6.1) ------------------------------------------- */

const char *dkim_record_verdict_name(enum dkim_record_verdict v)
{
    switch (v) {
    case DKIM_RECORD_MATCHES:
        return "matches";
    case DKIM_RECORD_MISSING:
        return "missing";
    case DKIM_RECORD_INVALID:
        return "invalid";
    case DKIM_RECORD_REVOKED:
        return "revoked";
    case DKIM_RECORD_WRONG_TYPE:
        return "wrong type";
    case DKIM_RECORD_OTHER_KEY:
        return "another key";
    }
    return "invalid";
}

/* What one TXT value says, once it parses as a key record. */
struct key_record {
    struct taglist l;
    const struct taglist_tag *k, *h, *s, *t, *p;
    unsigned char key[PUBKEY_MAX]; /* p= decoded */
    size_t keylen;
};

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/*
 * p='s base64 (§3.6.1: FWS allowed anywhere in it, the padding optional) into out
 * (PUBKEY_MAX), or -1.
 */
static int b64_decode(const char *s, size_t len, unsigned char *out, size_t *outlen)
{
    unsigned acc = 0;
    size_t k, n = 0, bits = 0, digits = 0, pad = 0;

    for (k = 0; k < len; k++) {
        int v;
        if (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n')
            continue;
        if (s[k] == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || (v = b64_value(s[k])) < 0)
            return -1; /* a digit after the padding, or not base64 */
        digits++;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == PUBKEY_MAX)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* one digit left over is never whole bytes; padding only fills the last group */
    if (digits % 4 == 1 || pad > 2 || (pad > 0 && (digits + pad) % 4 != 0))
        return -1;
    *outlen = n;
    return 0;
}

/* Does the colon-separated list of t (§3.6.1 h=, s=) name word, or "*" when star? */
static bool list_has(const struct taglist_tag *t, const char *word, bool star)
{
    const char *s = t->value, *end = t->value + t->valuelen;
    size_t wl = strlen(word);

    while (s <= end) {
        const char *colon = memchr(s, ':', (size_t)(end - s)), *e = colon != NULL ? colon : end;
        const char *a = s;
        while (a < e && is_wsp_or_eol(*a))
            a++;
        while (e > a && is_wsp_or_eol(e[-1]))
            e--;
        if (((size_t)(e - a) == wl && strncasecmp(a, word, wl) == 0) ||
            (star && e - a == 1 && *a == '*'))
            return true;
        if (colon == NULL)
            break;
        s = colon + 1;
    }
    return false;
}

/* One TXT value as a key record (§3.6.1), or -1 with why. */
static int parse_key_record(const char *txt, struct key_record *r, char *why, size_t whysize)
{
    const struct taglist_tag *v;

    memset(r, 0, sizeof *r);
    /* §3.2: tag names with case */
    if (taglist_parse(txt, false, &r->l, why, whysize) < 0)
        return -1;
    if ((v = taglist_find(&r->l, "v")) != NULL) {
        /* §3.6.1: "MUST be the first tag"; any other value: "MUST be discarded" */
        if (v != &r->l.tag[0]) {
            snprintf(why, whysize, "v= is not the first tag");
            return -1;
        }
        if (!taglist_value_is(v, "DKIM1", false)) {
            snprintf(why, whysize, "v=%.*s is not DKIM1",
                     (int)(v->valuelen > 20 ? 20 : v->valuelen), v->value);
            return -1;
        }
    }
    r->k = taglist_find(&r->l, "k");
    r->h = taglist_find(&r->l, "h");
    r->s = taglist_find(&r->l, "s");
    r->t = taglist_find(&r->l, "t");
    if ((r->p = taglist_find(&r->l, "p")) == NULL) {
        snprintf(why, whysize, "no p= tag");
        return -1;
    }
    if (b64_decode(r->p->value, r->p->valuelen, r->key, &r->keylen) < 0) {
        snprintf(why, whysize,
                 memchr(r->p->value, '"', r->p->valuelen) != NULL
                     ? "p= is not base64: it holds quote marks (the zone file's quoting, "
                       "published as text?)"
                     : "p= is not base64");
        return -1;
    }
    return 0;
}

/* "sha256:" and the hex of SHA-256 over bytes into out (72 bytes). */
static void fingerprint(const struct dkim *d, const unsigned char *bytes, size_t len, char *out)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t k;

    if (EVP_Digest(bytes, len, md, &mdlen, d->sha256, NULL) != 1 || mdlen != sizeof md) {
        ERR_clear_error();
        snprintf(out, 72, "sha256:?");
        return;
    }
    memcpy(out, "sha256:", 7);
    for (k = 0; k < sizeof md; k++)
        snprintf(out + 7 + 2 * k, 3, "%02x", md[k]);
}

/*
 * The published RSA key in the form blast publishes (SubjectPublicKeyInfo DER) into
 * out: §3.6.1 has it so, though RFC 6376's text once said RSAPublicKey (PKCS#1),
 * which some publish and verifiers accept.
 */
static int rsa_as_spki(const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen)
{
    const unsigned char *p = in;
    unsigned char *o = out;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)inlen);
    int n, rc = -1;

    if (key == NULL || p != in + inlen) {
        EVP_PKEY_free(key);
        p = in;
        key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)inlen);
        if (key == NULL || p != in + inlen)
            goto out;
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || (n = i2d_PUBKEY(key, NULL)) <= 0 ||
        n > PUBKEY_MAX || i2d_PUBKEY(key, &o) != n)
        goto out;
    *outlen = (size_t)n;
    rc = 0;
out:
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

/* Is this 44-byte p= an Ed25519 SubjectPublicKeyInfo rather than RFC 8463's raw key? */
static bool ed25519_spki(const unsigned char *in, size_t inlen)
{
    const unsigned char *p = in;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)inlen);
    bool yes = key != NULL && EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;

    EVP_PKEY_free(key);
    ERR_clear_error();
    return yes;
}

/* The verdict on the one key record r against signature i. */
static enum dkim_record_verdict judge(const struct dkim *d, size_t i, struct key_record *r,
                                      char *why, size_t whysize)
{
    bool rsa = d->s[i].cfg->algorithm == CAMPAIGN_DKIM_RSA_SHA256;
    const char *ours = rsa ? "rsa" : "ed25519";
    unsigned char pub[PUBKEY_MAX], theirs[PUBKEY_MAX];
    size_t publen, theirlen;
    char fp1[72], fp2[72];

    /* §3.6.1 p=: "An empty value means that this public key has been revoked." */
    if (r->p->valuelen == 0 || r->keylen == 0) {
        snprintf(why, whysize, "p= is empty: the key is revoked");
        return DKIM_RECORD_REVOKED;
    }
    /* §3.6.1 k=: rsa when absent */
    if (r->k == NULL ? !rsa : !taglist_value_is(r->k, ours, true)) {
        if (r->k == NULL)
            snprintf(why, whysize, "no k= (so rsa) but blast signs with ed25519");
        else
            snprintf(why, whysize, "k=%.*s but blast signs with %s",
                     (int)(r->k->valuelen > 20 ? 20 : r->k->valuelen), r->k->value, ours);
        return DKIM_RECORD_WRONG_TYPE;
    }
    /* h=: the hashes the key may sign with; both of blast's algorithms use sha256 */
    if (r->h != NULL && !list_has(r->h, "sha256", false)) {
        snprintf(why, whysize, "h=%.*s but blast signs with sha256",
                 (int)(r->h->valuelen > 30 ? 30 : r->h->valuelen), r->h->value);
        return DKIM_RECORD_WRONG_TYPE;
    }
    /* s=: the services the key is for; "email" or "*" */
    if (r->s != NULL && !list_has(r->s, "email", true)) {
        snprintf(why, whysize, "s=%.*s: the key is not for email",
                 (int)(r->s->valuelen > 30 ? 30 : r->s->valuelen), r->s->value);
        return DKIM_RECORD_WRONG_TYPE;
    }
    if (public_key_bytes(d, i, pub, &publen) < 0) {
        snprintf(why, whysize, "blast's own public key could not be derived");
        return DKIM_RECORD_INVALID;
    }
    if (rsa) {
        if (rsa_as_spki(r->key, r->keylen, theirs, &theirlen) < 0) {
            snprintf(why, whysize, "p= is not an RSA public key");
            return DKIM_RECORD_INVALID;
        }
    } else {
        if (r->keylen != 32) {
            snprintf(why, whysize,
                     ed25519_spki(r->key, r->keylen)
                         ? "p= holds the Ed25519 key as SubjectPublicKeyInfo; RFC 8463 §4 "
                           "wants the raw 32 bytes"
                         : "p= holds %zu bytes; an Ed25519 key has 32",
                     r->keylen);
            return DKIM_RECORD_INVALID;
        }
        memcpy(theirs, r->key, 32);
        theirlen = 32;
    }
    if (theirlen != publen || memcmp(theirs, pub, publen) != 0) {
        fingerprint(d, theirs, theirlen, fp1);
        fingerprint(d, pub, publen, fp2);
        snprintf(why, whysize, "another key is published (fingerprint %s, blast's is %s)", fp1,
                 fp2);
        return DKIM_RECORD_OTHER_KEY;
    }
    /* §3.6.1 t=y: verifiers may treat failures as if unsigned */
    snprintf(why, whysize,
             r->t != NULL && list_has(r->t, "y", false)
                 ? "the key matches; t=y: the domain is testing DKIM"
                 : "the key matches");
    return DKIM_RECORD_MATCHES;
}

enum dkim_record_verdict dkim_record_check(const struct dkim *d, size_t i, const char *const *txts,
                                           size_t n, char *why, size_t whysize)
{
    struct key_record *r = NULL, *one = NULL;
    char first[200] = "", scratch[8];
    size_t k, parsed = 0, seen = 0;
    enum dkim_record_verdict v;

    if (why == NULL || whysize == 0) {
        why = scratch;
        whysize = sizeof scratch;
    }
    if (d == NULL || i >= d->n) {
        snprintf(why, whysize, "no signature %zu to check", i);
        return DKIM_RECORD_INVALID;
    }
    /* two records' worth: the first that parses, and the one being tried */
    if ((r = calloc(2, sizeof *r)) == NULL) {
        snprintf(why, whysize, "out of memory");
        v = DKIM_RECORD_INVALID;
        goto out;
    }
    for (k = 0; k < n; k++) {
        char w[200];
        if (txts[k] == NULL)
            continue;
        seen++;
        if (parse_key_record(txts[k], &r[parsed > 0 ? 1 : 0], w, sizeof w) < 0) {
            if (first[0] == '\0')
                snprintf(first, sizeof first, "%s", w);
            continue;
        }
        if (++parsed == 1)
            one = &r[0];
    }
    if (seen == 0) {
        snprintf(why, whysize, "no TXT record");
        v = DKIM_RECORD_MISSING;
    } else if (parsed > 1) {
        /* RFC 6376 §6.1.2 lets a verifier take any of them: which one would be luck */
        snprintf(why, whysize, "several records (%zu) hold a DKIM key", parsed);
        v = DKIM_RECORD_INVALID;
    } else if (one == NULL) {
        if (seen == 1)
            snprintf(why, whysize, "%s", first);
        else
            snprintf(why, whysize, "none of the %zu records is a DKIM key: %s", seen, first);
        v = DKIM_RECORD_INVALID;
    } else {
        v = judge(d, i, one, why, whysize);
    }
out:
    free(r);
    return v;
}

/* ---- signing -------------------------------------------------------------------------------- */

/* The header fields of a message: where they end, and where the body starts. */
struct head {
    const char *p;
    size_t len;  /* the header block, the CRLF of its last field included */
    size_t body; /* offset of the body */
};

static int find_head(const struct buf *m, struct head *h)
{
    const char *end;

    h->p = m->data;
    if (m->len >= 2 && m->data[0] == '\r' && m->data[1] == '\n') {
        h->len = 0;
        h->body = 2;
        return 0;
    }
    end = m->len >= 4 ? memmem(m->data, m->len, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return BLAST_EINVAL;
    h->len = (size_t)(end - m->data) + 2;
    h->body = h->len + 2;
    return 0;
}

/* The next field from *pos: its start and length without the final CRLF. */
static bool next_field(const struct head *h, size_t *pos, const char **f, size_t *flen)
{
    size_t i = *pos;

    if (i >= h->len)
        return false;
    *f = h->p + i;
    for (;;) {
        const char *crlf = memmem(h->p + i, h->len - i, "\r\n", 2);
        i = crlf != NULL ? (size_t)(crlf - h->p) + 2 : h->len;
        if (i >= h->len || !is_wsp(h->p[i]))
            break; /* a line that starts with WSP continues the field (§3.4.2 unfolding) */
    }
    *flen = (size_t)(h->p + i - *f);
    if (*flen >= 2 && (*f)[*flen - 2] == '\r')
        *flen -= 2;
    *pos = i;
    return true;
}

/* The index of the name of field f in signed_names[], or -1. */
static int signed_index(const char *f, size_t flen)
{
    size_t n, i, k;

    for (n = 0; n < flen && f[n] != ':' && !is_wsp(f[n]); n++)
        ;
    for (i = n; i < flen && is_wsp(f[i]); i++)
        ;
    if (i == flen || f[i] != ':')
        return -1;
    for (k = 0; k < NSIGNED; k++)
        if (strlen(signed_names[k].name) == n && strncasecmp(f, signed_names[k].name, n) == 0)
            return (int)k;
    return -1;
}

/*
 * Where the fields to sign are, found in one pass over the header and shared by
 * every signature: for each name of signed_names[], its last FIELDS_MAX instances
 * (only the bottom ones are signed, §5.4.2), in header order.
 */
#define FIELDS_MAX 16

struct fields {
    struct {
        const char *f[FIELDS_MAX];
        size_t len[FIELDS_MAX];
        size_t n;
    } name[NSIGNED];
};

static void index_fields(const struct head *h, struct fields *fs)
{
    size_t pos = 0, cl;
    const char *cf;
    int k;

    memset(fs, 0, sizeof *fs);
    while (next_field(h, &pos, &cf, &cl)) {
        if ((k = signed_index(cf, cl)) < 0)
            continue;
        if (fs->name[k].n == FIELDS_MAX) { /* keep the last FIELDS_MAX */
            memmove(fs->name[k].f, fs->name[k].f + 1, (FIELDS_MAX - 1) * sizeof fs->name[k].f[0]);
            memmove(fs->name[k].len, fs->name[k].len + 1,
                    (FIELDS_MAX - 1) * sizeof fs->name[k].len[0]);
            fs->name[k].n--;
        }
        fs->name[k].f[fs->name[k].n] = cf;
        fs->name[k].len[fs->name[k].n++] = cl;
    }
}

/* Writes a header field, folding between tokens to lines of at most DKIM_LINE_MAX. */
struct folder {
    struct buf *out;
    size_t col;
    int rc;
};

/* Append tok; before it a space (sep) or nothing, or a fold when it would not fit. */
static void fold_put(struct folder *w, const char *tok, size_t len, bool sep)
{
    if (w->rc < 0)
        return;
    if (w->col + (sep ? 1 : 0) + len > DKIM_LINE_MAX && w->col > 1) {
        w->rc = buf_append(w->out, "\r\n\t", 3);
        w->col = 1;
    } else if (sep) {
        w->rc = buf_putc(w->out, ' ');
        w->col++;
    }
    if (w->rc == 0)
        w->rc = buf_append(w->out, tok, len);
    w->col += len;
}

/* Append the token a b c (b and c may be NULL), before it a space or a fold. */
static void fold_put3(struct folder *w, const char *a, const char *b, const char *c, bool sep)
{
    char tok[600];
    size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0, lc = c != NULL ? strlen(c) : 0;

    if (la + lb + lc > sizeof tok) {
        w->rc = BLAST_EINVAL;
        return;
    }
    memcpy(tok, a, la);
    if (lb > 0)
        memcpy(tok + la, b, lb);
    if (lc > 0)
        memcpy(tok + la + lb, c, lc);
    fold_put(w, tok, la + lb + lc, sep);
}

/* Append the tag "name=value;" (value NULL: name holds the whole tag). */
static void fold_tag(struct folder *w, const char *name, const char *value)
{
    fold_put3(w, name, value, ";", true);
}

/* The signature proper over data (the header data of §3.7), base64 into b64. */
static int sign_data(const struct dkim *d, const struct dkim_signer *s, struct dkim_scratch *x,
                     const unsigned char *data, size_t len, char *b64, size_t b64size)
{
    unsigned char sig[DKIM_RSA_MAX_BITS / 8], digest[32];
    size_t siglen = sizeof sig;
    unsigned int dlen = 0;
    int rc = BLAST_EIO;

    if (s->cfg->algorithm == CAMPAIGN_DKIM_RSA_SHA256) {
        /* RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 with SHA-256 */
        if (x->sign == NULL && (x->sign = EVP_MD_CTX_new()) == NULL)
            return BLAST_ENOMEM;
        if (EVP_MD_CTX_copy_ex(x->sign, s->base) != 1 ||
            EVP_DigestSign(x->sign, sig, &siglen, data, len) != 1)
            goto out;
    } else {
        /* RFC 8463 §3: PureEdDSA over the SHA-256 hash of the header data */
        unsigned long long edlen = 0;
        if (EVP_DigestInit_ex(x->hash, d->sha256, NULL) != 1 ||
            EVP_DigestUpdate(x->hash, data, len) != 1 ||
            EVP_DigestFinal_ex(x->hash, digest, &dlen) != 1 || dlen != sizeof digest ||
            crypto_sign_ed25519_detached(sig, &edlen, digest, sizeof digest, s->ed_sk) != 0)
            goto out;
        siglen = (size_t)edlen;
    }
    if ((siglen + 2) / 3 * 4 + 1 > b64size)
        goto out;
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
    rc = 0;
out:
    ERR_clear_error();
    return rc;
}

/* One DKIM-Signature field for s, appended to out (with its CRLF). */
static int sign_one(const struct dkim *d, const struct dkim_signer *s, const struct fields *fs,
                    const char *bh, const char *now, struct dkim_scratch *x, struct buf *out)
{
    struct buf *canon = &x->canon;
    struct folder w = {out, 0, 0};
    char b64[DKIM_RSA_MAX_BITS / 8 / 3 * 4 + 8];
    size_t start = out->len, i, k, times, len;
    bool first = true;
    int rc;

    buf_reset(canon);
    w.rc = buf_puts(out, "DKIM-Signature:");
    w.col = strlen("DKIM-Signature:");
    fold_tag(&w, "v=1", NULL);
    fold_tag(&w, "a=", campaign_dkim_alg_name(s->cfg->algorithm));
    fold_tag(&w, "c=relaxed/relaxed", NULL);
    fold_tag(&w, "d=", s->cfg->domain);
    fold_tag(&w, "s=", s->cfg->selector);
    fold_tag(&w, "t=", now);
    /* h=, and the header data in the same order (§5.4.2: instances from the bottom up) */
    for (i = 0; w.rc == 0 && i < NSIGNED; i++) {
        size_t have = fs->name[i].n;
        times = have + (signed_names[i].oversign ? 1 : 0);
        for (k = 0; w.rc == 0 && k < times; k++) {
            fold_put3(&w, first ? "h=" : "", signed_names[i].name, ":", first);
            first = false;
            /* the k-th instance from the bottom; past the first instance, oversigning */
            if (k < have && ((w.rc = dkim_canon_header(canon, fs->name[i].f[have - 1 - k],
                                                       fs->name[i].len[have - 1 - k])) < 0 ||
                             (w.rc = buf_append(canon, "\r\n", 2)) < 0))
                break;
        }
    }
    if (w.rc == 0 && !first)
        out->data[out->len - 1] = ';'; /* the last name's ':' ends the tag */
    fold_tag(&w, "bh=", bh);
    fold_put(&w, "b=", 2, true);
    if ((rc = w.rc) < 0)
        goto out;
    /* §3.7: the field itself with an empty b=, relaxed, without its CRLF, signed last */
    if ((rc = dkim_canon_header(canon, out->data + start, out->len - start)) < 0 ||
        (rc = sign_data(d, s, x, (const unsigned char *)canon->data, canon->len, b64, sizeof b64)) <
            0)
        goto out;
    /* b= folded anywhere in its value: FWS in b= is ignored by verifiers (§3.5) */
    len = strlen(b64);
    for (i = 0; w.rc == 0 && i < len;) {
        size_t room = w.col < DKIM_LINE_MAX ? DKIM_LINE_MAX - w.col : 0, n;
        if (room == 0) {
            w.rc = buf_append(out, "\r\n\t", 3);
            w.col = 1;
            continue;
        }
        n = len - i < room ? len - i : room;
        w.rc = buf_append(out, b64 + i, n);
        w.col += n;
        i += n;
    }
    if ((rc = w.rc) == 0)
        rc = buf_append(out, "\r\n", 2);
out:
    return rc;
}

int dkim_sign(const struct dkim *d, struct buf *message, time_t now, struct dkim_scratch *s,
              struct blast_error *err)
{
    struct head h;
    struct fields fs;
    char bh[48], t[24];
    size_t i;
    int rc;

    if (d == NULL || d->n == 0)
        return 0;
    if (message->data == NULL || find_head(message, &h) < 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "dkim: the message has no blank line after its header");
    buf_reset(&s->fields);
    if (s->hash == NULL && (s->hash = EVP_MD_CTX_new()) == NULL) {
        rc = BLAST_ENOMEM;
        goto out;
    }
    if ((rc = body_hash(d->sha256, s->hash, message->data + h.body, message->len - h.body, bh)) < 0)
        goto out;
    index_fields(&h, &fs);
    snprintf(t, sizeof t, "%lld", (long long)now);
    for (i = 0; i < d->n; i++)
        if ((rc = sign_one(d, &d->s[i], &fs, bh, t, s, &s->fields)) < 0)
            goto out;
    /* prepend the fields: one move of the message within its own buffer */
    if ((rc = buf_reserve(message, s->fields.len)) < 0)
        goto out;
    memmove(message->data + s->fields.len, message->data, message->len + 1);
    memcpy(message->data, s->fields.data, s->fields.len);
    message->len += s->fields.len;
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    else if (rc < 0)
        blast_error_set(err, rc, NULL, 0, 0, "dkim: could not sign the message");
    return rc;
}
