/*
 * test_dkim - the DKIM signer: relaxed canonicalization against the examples of
 * RFC 6376 §3.4.5, the body hash of an empty body, the DKIM-Signature field (tags,
 * h= with oversigning, lines of at most 78 characters), key loading and its
 * errors with the place of 'key' (missing file, not a key, wrong type, algorithm
 * mismatch, RSA of 512 bits) and warnings (1024 bits, a key readable by others),
 * and the DNS TXT record. An Ed25519 signature (made with libsodium) is checked
 * with OpenSSL's verifier over header data rebuilt from h=. The keys are throwaway
 * keys made by each test with OpenSSL; whole messages are checked by an
 * independent verifier in tests/integration/test_dkim.py.
 */
#include "../../core/dkim.h"
#include "../../core/log.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static char *canon_header(const char *field)
{
    struct buf b = BUF_INIT;
    cr_assert_eq(dkim_canon_header(&b, field, strlen(field)), 0);
    return buf_steal(&b);
}

static char *canon_body(const char *body)
{
    struct buf b = BUF_INIT;
    cr_assert_eq(dkim_canon_body(&b, body, strlen(body)), 0);
    return buf_steal(&b);
}

/* A throwaway key written to scratch_dir/name as PEM (PKCS#8, or "type-specific"). */
static void write_key(EVP_PKEY *key, const char *name, const char *structure, mode_t mode,
                      char *path, size_t size)
{
    OSSL_ENCODER_CTX *ectx;
    BIO *bio;

    snprintf(path, size, "%s/%s", scratch_dir, name);
    bio = BIO_new_file(path, "w");
    cr_assert_not_null(bio);
    ectx = OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_KEYPAIR, "PEM", structure, NULL);
    cr_assert_not_null(ectx);
    cr_assert_eq(OSSL_ENCODER_to_bio(ectx, bio), 1);
    OSSL_ENCODER_CTX_free(ectx);
    BIO_free(bio);
    cr_assert_eq(chmod(path, mode), 0);
}

static EVP_PKEY *rsa_key(unsigned bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    cr_assert_not_null(k);
    return k;
}

static EVP_PKEY *ed25519_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(k);
    return k;
}

struct captured {
    char text[4096];
    int warnings;
};

static void capture(void *arg, enum log_level level, const char *message)
{
    struct captured *c = arg;
    size_t n = strlen(c->text);
    if (level == LOG_LEVEL_WARN)
        c->warnings++;
    snprintf(c->text + n, sizeof c->text - n, "%s\n", message);
}

/* A campaign with one signature of alg over the key at path, 'key' at line 7, column 8. */
static void one_signature(struct campaign *c, struct campaign_dkim *d, const char *path,
                          enum campaign_dkim_alg alg)
{
    memset(c, 0, sizeof *c);
    memset(d, 0, sizeof *d);
    c->path = (char *)"campaign.yml";
    d->domain = (char *)"acme.example";
    d->selector = (char *)"s2026";
    d->key = (char *)path;
    d->algorithm = alg;
    d->key_place.line = 7;
    d->key_place.column = 8;
    c->dkim = d;
    c->ndkim = 1;
}

static const char MESSAGE[] = "Date: Sun, 22 Nov 2026 20:33:32 +0000\r\n"
                              "From: Acme <news@acme.example>\r\n"
                              "To: Ann <ann@example.com>\r\n"
                              "Subject: Hello\r\n"
                              "Message-ID: <1.2@acme.example>\r\n"
                              "List-Unsubscribe: <https://acme.example/u?e=ann>\r\n"
                              "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
                              "List-Id: <news.acme.example>\r\n"
                              "X-Campaign: not signed\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "\r\n"
                              "Hello Ann\r\n";

/* ---- canonicalization ---------------------------------------------------------------------- */

Test(dkim, relaxed_header_rfc6376_example)
{
    /* RFC 6376 §3.4.5: "A: X" and "B : Y<TAB><CRLF><TAB>Z  " become "a:X" and "b:Y Z" */
    char *a = canon_header("A: X");
    char *b = canon_header("B : Y\t\r\n\tZ  ");
    cr_assert_str_eq(a, "a:X");
    cr_assert_str_eq(b, "b:Y Z");
    free(a);
    free(b);
}

Test(dkim, relaxed_header_compresses_and_trims)
{
    char *s = canon_header("SUBJECT:\t  many   spaces \t here \t ");
    cr_assert_str_eq(s, "subject:many spaces here");
    free(s);
    s = canon_header("Empty:   ");
    cr_assert_str_eq(s, "empty:");
    free(s);
}

Test(dkim, relaxed_body_rfc6376_example)
{
    /* RFC 6376 §3.4.5: " C <CRLF>D <TAB> E<CRLF><CRLF><CRLF>" becomes " C<CRLF>D E<CRLF>" */
    char *s = canon_body(" C \r\nD \t E\r\n\r\n\r\n");
    cr_assert_str_eq(s, " C\r\nD E\r\n");
    free(s);
}

Test(dkim, relaxed_body_edges)
{
    char *s = canon_body("");
    cr_assert_str_eq(s, "", "an empty body stays empty (§3.4.4)");
    free(s);
    s = canon_body("\r\n\r\n  \r\n\t\r\n");
    cr_assert_str_eq(s, "", "empty and blank lines only: empty");
    free(s);
    s = canon_body("no line end");
    cr_assert_str_eq(s, "no line end\r\n", "a CRLF is added");
    free(s);
    s = canon_body("a\r\n\r\nb  \r\n");
    cr_assert_str_eq(s, "a\r\n\r\nb\r\n", "empty lines inside stay");
    free(s);
}

/*
 * §3.4.4 read line by line, as a reference: split at CRLF, in each line make WSP
 * runs one SP and drop the WSP at its end, drop the empty lines at the end, and
 * end what remains with CRLF.
 */
static char *canon_body_reference(const char *body, size_t len)
{
    char *out = malloc(len + 3);
    size_t o = 0, i = 0, kept = 0; /* kept: out's length up to the last line with content */

    cr_assert_not_null(out);
    while (i < len) {
        size_t lstart = o;
        bool wsp = false;
        for (; i < len && !(body[i] == '\r' && i + 1 < len && body[i + 1] == '\n'); i++) {
            if (body[i] == ' ' || body[i] == '\t') {
                wsp = true;
                continue;
            }
            if (wsp)
                out[o++] = ' '; /* at the start of a line too: a run like any other */
            out[o++] = body[i];
            wsp = false;
        }
        if (o > lstart)
            kept = o + 2;
        out[o++] = '\r';
        out[o++] = '\n';
        i += 2; /* past the CRLF (or past the end: the loop stops) */
    }
    out[kept] = '\0';
    return out;
}

Test(dkim, relaxed_body_matches_the_line_by_line_reading)
{
    static const char dense[] = {' ', '\t', '\r', '\n', 'a', 'b'};
    static const char sparse[] = {' ', '\t', '\r', '\n', 'a', 'b', 'a', 'a', 'a', ' ',
                                  'a', 'a',  ' ',  'a',  'a', 'a', ' ', 'a', 'a', 'a'};
    char body[100];
    unsigned seed = 12345;
    int round;

    /*
     * Bodies made of the characters that matter, every length up to 99: dense
     * ones, and ones of mostly words and single spaces, as the 16-byte scan sees.
     */
    for (round = 0; round < 40000; round++) {
        size_t len = (size_t)round % sizeof body, i;
        const char *alphabet = round % 2 == 0 ? dense : sparse;
        size_t n = round % 2 == 0 ? sizeof dense : sizeof sparse;
        char *want, *got;
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            body[i] = alphabet[(seed >> 16) % n];
        }
        body[len] = '\0';
        want = canon_body_reference(body, len);
        {
            struct buf b = BUF_INIT;
            cr_assert_eq(dkim_canon_body(&b, body, len), 0);
            got = buf_steal(&b);
        }
        cr_assert_str_eq(got, want, "body of %zu bytes, round %d", len, round);
        free(want);
        free(got);
    }
}

Test(dkim, body_hash_of_empty_body)
{
    char bh[45];

    /* SHA-256 of nothing: relaxed canonicalization leaves an empty body empty */
    cr_assert_eq(dkim_body_hash("", 0, bh), 0);
    cr_assert_str_eq(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    cr_assert_eq(dkim_body_hash("\r\n\r\n", 4, bh), 0);
    cr_assert_str_eq(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    /* SHA-256 of CRLF */
    cr_assert_eq(dkim_body_hash("  \r\nx", 5, bh), 0);
    cr_assert_str_neq(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

/* ---- signing ------------------------------------------------------------------------------- */

/* Sign MESSAGE with the signatures of c; the result, checked for shape, is returned. */
static char *sign(const struct campaign *c, size_t nsig)
{
    struct dkim *d = NULL;
    struct dkim_scratch s;
    struct blast_error err;
    struct buf m = BUF_INIT;
    const char *line, *end;
    size_t n = 0;

    blast_error_clear(&err);
    cr_assert_eq(dkim_new(c, NULL, NULL, &d, &err), 0, "%s", err.text);
    cr_assert_eq(dkim_count(d), nsig);
    dkim_scratch_init(&s);
    cr_assert_eq(buf_puts(&m, MESSAGE), 0);
    cr_assert_eq(dkim_sign(d, &m, 1795379612, &s, &err), 0, "%s", err.text);
    /* every line of the header at most 78 characters; the message follows unchanged */
    for (line = m.data; (end = strstr(line, "\r\n")) != NULL && end != line; line = end + 2)
        cr_assert_leq(end - line, DKIM_LINE_MAX, "line too long: %.*s", (int)(end - line), line);
    for (line = m.data; (line = strstr(line, "DKIM-Signature:")) != NULL; line++)
        n++;
    cr_assert_eq(n, nsig);
    line = strstr(m.data, "Date: ");
    cr_assert_not_null(line);
    cr_assert_str_eq(line, MESSAGE);
    dkim_scratch_free(&s);
    dkim_free(d);
    return buf_steal(&m);
}

/* The unfolded value of tag in the first DKIM-Signature field of m (WSP removed). */
static void tag_value(const char *m, const char *tag, char *out, size_t size)
{
    const char *p = m;
    size_t n = 0;

    /* the tag after a space or a fold's tab: "s=" is not the end of "bh=...s=" */
    while ((p = strstr(p + 1, tag)) != NULL && p[-1] != ' ' && p[-1] != '\t')
        ;
    cr_assert_not_null(p, "no %s", tag);
    for (p += strlen(tag); *p != '\0' && *p != ';' && n + 1 < size; p++) {
        if (p[0] == '\r' && p[1] == '\n' && p[2] != ' ' && p[2] != '\t')
            break; /* the end of the field */
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            out[n++] = *p;
    }
    out[n] = '\0';
}

Test(dkim, rsa_signature_field, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    char path[512], v[1024];
    EVP_PKEY *k = rsa_key(2048);
    char *m;

    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-rsa.pem", "PrivateKeyInfo", 0600, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_RSA_SHA256);
    m = sign(&c, 1);
    cr_assert(strncmp(m, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.example; ",
                      70) == 0,
              "%s", m);
    tag_value(m, "s=", v, sizeof v);
    cr_assert_str_eq(v, "s2026");
    tag_value(m, "t=", v, sizeof v);
    cr_assert_str_eq(v, "1795379612");
    tag_value(m, "h=", v, sizeof v);
    cr_assert_str_eq(v, "From:From:To:Subject:Subject:Date:Message-ID:MIME-Version:Content-Type:"
                        "List-Unsubscribe:List-Unsubscribe:List-Unsubscribe-Post:"
                        "List-Unsubscribe-Post:List-Id");
    cr_assert_null(strstr(m, "l="), "no l= tag");
    tag_value(m, "b=", v, sizeof v);
    cr_assert_eq(strlen(v), 344, "2048 bits: 256 bytes, 344 base64 characters");
    free(m);
    EVP_PKEY_free(k);
}

Test(dkim, two_signatures_each_prepended, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d[2];
    char rsa[512], ed[512], v[256];
    EVP_PKEY *k1 = rsa_key(2048), *k2 = ed25519_key();
    char *m;

    scratch_make();
    write_key(k1, "THROWAWAY-TEST-ONLY-rsa.pem", "PrivateKeyInfo", 0600, rsa, sizeof rsa);
    write_key(k2, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0600, ed, sizeof ed);
    one_signature(&c, &d[0], rsa, CAMPAIGN_DKIM_RSA_SHA256);
    d[1] = d[0];
    d[1].key = ed;
    d[1].selector = (char *)"ed";
    d[1].algorithm = CAMPAIGN_DKIM_ED25519_SHA256;
    c.dkim = d;
    c.ndkim = 2;
    m = sign(&c, 2);
    cr_assert_not_null(strstr(m, "a=ed25519-sha256;"));
    tag_value(strstr(m, "a=ed25519"), "b=", v, sizeof v);
    cr_assert_eq(strlen(v), 88, "64 bytes: 88 base64 characters");
    free(m);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* The field of MESSAGE named name (each occurs once), NULL when it has none. */
static const char *message_field(const char *name, size_t *len)
{
    const char *p = MESSAGE, *end;
    size_t n = strlen(name);

    for (; (end = strstr(p, "\r\n")) != NULL && end != p; p = end + 2)
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            *len = (size_t)(end - p);
            return p;
        }
    return NULL;
}

/*
 * The Ed25519 signature, signed with libsodium, checked with OpenSSL's Ed25519 over
 * the header data rebuilt here from h= (RFC 6376 §3.7, RFC 8463 §3): two
 * implementations agree, and a changed byte of that data fails.
 */
Test(dkim, ed25519_signature_verifies_with_openssl, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    char path[512], h[512], b[128], *name, *save = NULL;
    const char *names[16], *f, *bpos;
    unsigned char sig[96], digest[32];
    struct buf data = BUF_INIT;
    size_t len = 0, seen = 0, i;
    EVP_PKEY *k = ed25519_key();
    EVP_MD_CTX *v;
    char *m;
    int siglen;

    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0600, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_ED25519_SHA256);
    m = sign(&c, 1);
    tag_value(m, "h=", h, sizeof h);
    tag_value(m, "b=", b, sizeof b);
    /* each signed field once, in h= order; an oversigned name's second mention adds nothing */
    for (name = strtok_r(h, ":", &save); name != NULL; name = strtok_r(NULL, ":", &save)) {
        bool again = false;
        for (i = 0; i < seen; i++)
            again = again || strcasecmp(names[i], name) == 0;
        f = message_field(name, &len);
        cr_assert(f != NULL || again, "%s signed but not in the message", name);
        if (again)
            continue;
        cr_assert_lt(seen, 16);
        names[seen] = name;
        cr_assert_eq(dkim_canon_header(&data, f, len), 0);
        cr_assert_eq(buf_append(&data, "\r\n", 2), 0);
        seen++;
    }
    cr_assert_eq(seen, 10, "the ten signable fields of MESSAGE");
    /* the DKIM-Signature field itself, its b= value empty, without CRLF */
    bpos = strstr(m, " b=");
    cr_assert_not_null(bpos);
    cr_assert_eq(dkim_canon_header(&data, m, (size_t)(bpos + 3 - m)), 0);
    cr_assert_eq(EVP_Digest(data.data, data.len, digest, NULL, EVP_sha256(), NULL), 1);
    siglen = EVP_DecodeBlock(sig, (const unsigned char *)b, (int)strlen(b));
    cr_assert_eq(siglen, 66, "64 bytes and the padding's two zero bytes");
    v = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit_ex(v, NULL, NULL, NULL, NULL, k, NULL), 1);
    cr_assert_eq(EVP_DigestVerify(v, sig, 64, digest, sizeof digest), 1);
    digest[0] ^= 1;
    cr_assert_eq(EVP_DigestVerifyInit_ex(v, NULL, NULL, NULL, NULL, k, NULL), 1);
    cr_assert_neq(EVP_DigestVerify(v, sig, 64, digest, sizeof digest), 1);
    EVP_MD_CTX_free(v);
    buf_free(&data);
    free(m);
    EVP_PKEY_free(k);
}

Test(dkim, long_domain_folds_before_it, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    char path[512];
    EVP_PKEY *k = ed25519_key();
    char *m;

    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0600, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_ED25519_SHA256);
    d.domain = (char *)"a-rather-long-subdomain-name.of-a-long-domain-name.example";
    m = sign(&c, 1); /* sign() checks every line against DKIM_LINE_MAX */
    cr_assert_not_null(
        strstr(m, "\r\n\td=a-rather-long-subdomain-name.of-a-long-domain-name.example;"));
    free(m);
    EVP_PKEY_free(k);
}

Test(dkim, no_signatures_no_change)
{
    struct dkim_scratch s;
    struct blast_error err;
    struct buf m = BUF_INIT;

    dkim_scratch_init(&s);
    blast_error_clear(&err);
    cr_assert_eq(buf_puts(&m, MESSAGE), 0);
    cr_assert_eq(dkim_sign(NULL, &m, 0, &s, &err), 0);
    cr_assert_str_eq(m.data, MESSAGE);
    buf_free(&m);
    dkim_scratch_free(&s);
}

/* ---- keys ---------------------------------------------------------------------------------- */

/* Load c's keys; returns the code and leaves the error and the log's text in err and cap. */
static int load(const struct campaign *c, struct blast_error *err, struct captured *cap)
{
    struct log lg = {capture, cap, LOG_LEVEL_DEBUG};
    struct dkim *d = NULL;
    int rc;

    memset(cap, 0, sizeof *cap);
    blast_error_clear(err);
    rc = dkim_new(c, &lg, NULL, &d, err);
    if (rc < 0)
        cr_assert_null(d);
    dkim_free(d);
    return rc;
}

Test(dkim, key_missing_file_names_the_place)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;

    one_signature(&c, &d, "/nonexistent/THROWAWAY-TEST-ONLY.pem", CAMPAIGN_DKIM_RSA_SHA256);
    cr_assert_eq(load(&c, &err, &cap), BLAST_EIO);
    cr_assert_str_eq(err.source, "campaign.yml");
    cr_assert_eq(err.line, 7);
    cr_assert_eq(err.column, 8);
    cr_assert_not_null(strstr(err.text, "/nonexistent/THROWAWAY-TEST-ONLY.pem"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "cannot read"), "%s", err.text);
}

Test(dkim, key_not_a_private_key, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;
    char path[512];
    FILE *f;

    scratch_make();
    snprintf(path, sizeof path, "%s/THROWAWAY-TEST-ONLY-garbage.pem", scratch_dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n", f);
    fclose(f);
    chmod(path, 0600);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_RSA_SHA256);
    cr_assert_eq(load(&c, &err, &cap), BLAST_EINVAL);
    cr_assert_eq(err.line, 7);
    cr_assert_not_null(strstr(err.text, "no unencrypted PEM private key"), "%s", err.text);
}

Test(dkim, key_of_wrong_type, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;
    char path[512];
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    cr_assert_not_null(k);
    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-ec.pem", "PrivateKeyInfo", 0600, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_RSA_SHA256);
    cr_assert_eq(load(&c, &err, &cap), BLAST_EINVAL);
    cr_assert_eq(err.line, 7);
    cr_assert_not_null(strstr(err.text, "EC key; DKIM signs with RSA or Ed25519"), "%s", err.text);
    EVP_PKEY_free(k);
}

Test(dkim, key_does_not_match_algorithm, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;
    char path[512];
    EVP_PKEY *k = ed25519_key();

    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0600, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_RSA_SHA256);
    cr_assert_eq(load(&c, &err, &cap), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "an Ed25519 key, but algorithm is rsa-sha256"), "%s",
                       err.text);
    EVP_PKEY_free(k);
}

Test(dkim, rsa_512_bits_refused, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;
    char path[512];
    EVP_PKEY *k = rsa_key(512);

    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-rsa512.pem", "PrivateKeyInfo", 0600, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_RSA_SHA256);
    cr_assert_eq(load(&c, &err, &cap), BLAST_EINVAL);
    cr_assert_eq(err.line, 7);
    cr_assert_eq(err.column, 8);
    cr_assert_not_null(strstr(err.text, "an RSA key of 512 bits"), "%s", err.text);
    EVP_PKEY_free(k);
}

Test(dkim, rsa_1024_bits_warned_traditional_pem_loads, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;
    char path[512], head[64] = "";
    EVP_PKEY *k = rsa_key(1024);
    FILE *f;

    scratch_make();
    /* "type-specific": the traditional "BEGIN RSA PRIVATE KEY" form */
    write_key(k, "THROWAWAY-TEST-ONLY-rsa1024.pem", "type-specific", 0600, path, sizeof path);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(head, sizeof head, f));
    fclose(f);
    cr_assert_str_eq(head, "-----BEGIN RSA PRIVATE KEY-----\n");
    one_signature(&c, &d, path, CAMPAIGN_DKIM_RSA_SHA256);
    cr_assert_eq(load(&c, &err, &cap), 0, "%s", err.text);
    cr_assert_eq(cap.warnings, 1, "%s", cap.text);
    cr_assert_not_null(strstr(cap.text, "campaign.yml:7:8: dkim key"), "%s", cap.text);
    cr_assert_not_null(strstr(cap.text, "has 1024 bits; 2048 or more is recommended"), "%s",
                       cap.text);
    EVP_PKEY_free(k);
}

Test(dkim, key_readable_by_others_warned, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d;
    struct blast_error err;
    struct captured cap;
    char path[512];
    EVP_PKEY *k = ed25519_key();

    scratch_make();
    write_key(k, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0644, path, sizeof path);
    one_signature(&c, &d, path, CAMPAIGN_DKIM_ED25519_SHA256);
    cr_assert_eq(load(&c, &err, &cap), 0, "%s", err.text);
    cr_assert_eq(cap.warnings, 1, "%s", cap.text);
    cr_assert_not_null(strstr(cap.text, "is readable by everyone (chmod 600 it)"), "%s", cap.text);
    cr_assert_eq(chmod(path, 0640), 0);
    cr_assert_eq(load(&c, &err, &cap), 0, "%s", err.text);
    cr_assert_not_null(strstr(cap.text, "is readable by its group"), "%s", cap.text);
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(load(&c, &err, &cap), 0, "%s", err.text);
    cr_assert_eq(cap.warnings, 0, "%s", cap.text);
    EVP_PKEY_free(k);
}

static void count_problem(void *arg, const struct blast_error *e)
{
    (void)e;
    (*(int *)arg)++;
}

Test(dkim, diag_reports_every_bad_key)
{
    struct campaign c;
    struct campaign_dkim d[2];
    struct blast_error err;
    struct dkim *out = NULL;
    int n = 0;
    struct blast_diag diag = {count_problem, &n};

    one_signature(&c, &d[0], "/nonexistent/a.pem", CAMPAIGN_DKIM_RSA_SHA256);
    d[1] = d[0];
    d[1].key = (char *)"/nonexistent/b.pem";
    d[1].key_place.line = 12;
    c.dkim = d;
    c.ndkim = 2;
    blast_error_clear(&err);
    cr_assert_eq(dkim_new(&c, NULL, &diag, &out, &err), BLAST_EIO);
    cr_assert_null(out);
    cr_assert_eq(n, 2);
    cr_assert_eq(err.line, 7, "the first problem is the error");
}

Test(dkim, no_dkim_no_object)
{
    struct campaign c;
    struct blast_error err;
    struct dkim *out = (struct dkim *)&c;

    memset(&c, 0, sizeof c);
    blast_error_clear(&err);
    cr_assert_eq(dkim_new(&c, NULL, NULL, &out, &err), 0);
    cr_assert_null(out);
    cr_assert_eq(dkim_count(out), 0);
}

/* ---- the DNS record ------------------------------------------------------------------------ */

Test(dkim, txt_records, .fini = scratch_remove)
{
    struct campaign c;
    struct campaign_dkim d[2];
    struct blast_error err;
    struct dkim *out = NULL;
    struct buf name = BUF_INIT, rsa = BUF_INIT, ed = BUF_INIT;
    char p1[512], p2[512], b64[64];
    unsigned char raw[32], *der = NULL;
    size_t rawlen = sizeof raw;
    EVP_PKEY *k1 = rsa_key(2048), *k2 = ed25519_key();
    int derlen;
    char *want;

    scratch_make();
    write_key(k1, "THROWAWAY-TEST-ONLY-rsa.pem", "PrivateKeyInfo", 0600, p1, sizeof p1);
    write_key(k2, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0600, p2, sizeof p2);
    one_signature(&c, &d[0], p1, CAMPAIGN_DKIM_RSA_SHA256);
    d[1] = d[0];
    d[1].key = p2;
    d[1].selector = (char *)"ed.2026";
    d[1].domain = (char *)"mail.acme.example";
    d[1].algorithm = CAMPAIGN_DKIM_ED25519_SHA256;
    c.dkim = d;
    c.ndkim = 2;
    blast_error_clear(&err);
    cr_assert_eq(dkim_new(&c, NULL, NULL, &out, &err), 0, "%s", err.text);
    cr_assert_eq(dkim_record_name(out, 0, &name), 0);
    cr_assert_str_eq(name.data, "s2026._domainkey.acme.example");
    buf_reset(&name);
    cr_assert_eq(dkim_record_name(out, 1, &name), 0);
    cr_assert_str_eq(name.data, "ed.2026._domainkey.mail.acme.example");

    /* RSA: the SubjectPublicKeyInfo DER */
    cr_assert_eq(dkim_public_record(out, 0, &rsa), 0);
    derlen = i2d_PUBKEY(k1, &der);
    cr_assert_gt(derlen, 0);
    want = malloc((size_t)derlen * 2 + 64);
    memcpy(want, "v=DKIM1; k=rsa; p=", 18);
    EVP_EncodeBlock((unsigned char *)want + 18, der, derlen);
    cr_assert_str_eq(rsa.data, want);
    cr_assert(strncmp(rsa.data, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", 50) == 0);

    /* Ed25519: the raw 32-byte key */
    cr_assert_eq(dkim_public_record(out, 1, &ed), 0);
    cr_assert_eq(EVP_PKEY_get_raw_public_key(k2, raw, &rawlen), 1);
    EVP_EncodeBlock((unsigned char *)b64, raw, 32);
    cr_assert_eq(strlen(b64), 44);
    cr_assert_eq(strncmp(ed.data, "v=DKIM1; k=ed25519; p=", 22), 0, "%s", ed.data);
    cr_assert_str_eq(ed.data + 22, b64);

    free(want);
    OPENSSL_free(der);
    buf_free(&name);
    buf_free(&rsa);
    buf_free(&ed);
    dkim_free(out);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* ---- the published record against the key (dkim_record_check) ------------------------------ */

/* A campaign signing with a throwaway RSA key (signature 0) and an Ed25519 one (1). */
struct keyed {
    struct campaign c;
    struct campaign_dkim d[2];
    struct dkim *dk;
    EVP_PKEY *rsa, *ed;
    char p1[512], p2[512];
};

static void keyed_make(struct keyed *k)
{
    struct blast_error err;

    memset(k, 0, sizeof *k);
    k->rsa = rsa_key(2048);
    k->ed = ed25519_key();
    scratch_make();
    write_key(k->rsa, "THROWAWAY-TEST-ONLY-rsa.pem", "PrivateKeyInfo", 0600, k->p1, sizeof k->p1);
    write_key(k->ed, "THROWAWAY-TEST-ONLY-ed25519.pem", "PrivateKeyInfo", 0600, k->p2,
              sizeof k->p2);
    one_signature(&k->c, &k->d[0], k->p1, CAMPAIGN_DKIM_RSA_SHA256);
    k->d[1] = k->d[0];
    k->d[1].key = k->p2;
    k->d[1].selector = (char *)"ed2026";
    k->d[1].algorithm = CAMPAIGN_DKIM_ED25519_SHA256;
    k->c.dkim = k->d;
    k->c.ndkim = 2;
    blast_error_clear(&err);
    cr_assert_eq(dkim_new(&k->c, NULL, NULL, &k->dk, &err), 0, "%s", err.text);
}

static void keyed_free(struct keyed *k)
{
    dkim_free(k->dk);
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ed);
}

/* Base64 of bytes, made here rather than by dkim. */
static char *b64_of(const unsigned char *bytes, size_t len)
{
    char *s = malloc((len + 2) / 3 * 4 + 1);

    cr_assert_not_null(s);
    EVP_EncodeBlock((unsigned char *)s, bytes, (int)len);
    return s;
}

/* p='s value for key: SubjectPublicKeyInfo DER for RSA (or PKCS#1), the raw key for Ed25519. */
static char *p_of(EVP_PKEY *key, bool pkcs1)
{
    unsigned char *der = NULL, raw[32];
    size_t rawlen = sizeof raw;
    char *s;
    int n;

    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
        cr_assert_eq(EVP_PKEY_get_raw_public_key(key, raw, &rawlen), 1);
        return b64_of(raw, rawlen);
    }
    n = pkcs1 ? i2d_PublicKey(key, &der) : i2d_PUBKEY(key, &der);
    cr_assert_gt(n, 0);
    s = b64_of(der, (size_t)n);
    OPENSSL_free(der);
    return s;
}

static enum dkim_record_verdict check_one(const struct keyed *k, size_t i, const char *txt,
                                          char *why, size_t whysize)
{
    const char *txts[1] = {txt};

    why[0] = '\0';
    return dkim_record_check(k->dk, i, txts, 1, why, whysize);
}

/* The verdict on "prefix" P "suffix", P being key's p= value spaced out every `every` characters.
 */
static enum dkim_record_verdict check_fmt(const struct keyed *k, size_t i, const char *prefix,
                                          EVP_PKEY *key, const char *suffix, size_t every,
                                          char *why, size_t whysize)
{
    char *p = p_of(key, false), txt[4096];
    size_t len = strlen(p), at, n = 0;
    enum dkim_record_verdict v;

    n = (size_t)snprintf(txt, sizeof txt, "%s", prefix);
    for (at = 0; at < len; at++) {
        if (every > 0 && at > 0 && at % every == 0)
            n += (size_t)snprintf(txt + n, sizeof txt - n, "%s", at % (2 * every) ? " " : "\r\n\t");
        txt[n++] = p[at];
    }
    snprintf(txt + n, sizeof txt - n, "%s", suffix);
    v = check_one(k, i, txt, why, whysize);
    free(p);
    return v;
}

Test(dkim, record_matches_as_published, .fini = scratch_remove)
{
    struct keyed k;
    struct buf rec = BUF_INIT;
    char why[256];
    size_t i;

    keyed_make(&k);
    for (i = 0; i < 2; i++) {
        buf_reset(&rec);
        cr_assert_eq(dkim_public_record(k.dk, i, &rec), 0);
        cr_assert_eq(check_one(&k, i, rec.data, why, sizeof why), DKIM_RECORD_MATCHES, "%s", why);
        cr_assert_str_eq(why, "the key matches");
    }
    buf_free(&rec);
    keyed_free(&k);
}

Test(dkim, record_matches_spaced_split_reordered, .fini = scratch_remove)
{
    struct keyed k;
    char why[256];
    char *p = NULL, *joined = NULL;
    const char *txts[1];
    size_t len;

    keyed_make(&k);
    /* whitespace and line breaks inside p= (RFC 6376 §3.6.1), tags in another order, no v= */
    cr_assert_eq(check_fmt(&k, 0, "k=rsa; p=", k.rsa, "; n=made by hand", 50, why, sizeof why),
                 DKIM_RECORD_MATCHES, "%s", why);
    cr_assert_eq(check_fmt(&k, 0, "v=DKIM1;p= ", k.rsa, " ;k=RSA;h=sha1:sha256;s=email;x=y;", 7,
                           why, sizeof why),
                 DKIM_RECORD_MATCHES, "%s", why);
    cr_assert_eq(check_fmt(&k, 1, " p=", k.ed, "; k=ed25519 ; v=DKIM1", 0, why, sizeof why),
                 DKIM_RECORD_INVALID, "v= must come first");
    cr_assert_str_eq(why, "v= is not the first tag");
    cr_assert_eq(check_fmt(&k, 1, "t=y; k=ed25519; s=*; p=", k.ed, "", 11, why, sizeof why),
                 DKIM_RECORD_MATCHES, "%s", why);
    cr_assert_str_eq(why, "the key matches; t=y: the domain is testing DKIM");

    /* a 2048-bit key's record is over 255 bytes: the lookup joins its strings (§3.6.2.2) */
    p = p_of(k.rsa, false);
    len = strlen(p);
    cr_assert_gt(len, 255);
    joined = malloc(len + 64);
    snprintf(joined, len + 64, "v=DKIM1; k=rsa; p=%.*s%s", 200, p, p + 200);
    txts[0] = joined;
    cr_assert_eq(dkim_record_check(k.dk, 0, txts, 1, why, sizeof why), DKIM_RECORD_MATCHES, "%s",
                 why);
    free(joined);
    free(p);

    /* RSAPublicKey (PKCS#1) rather than SubjectPublicKeyInfo: the same key */
    p = p_of(k.rsa, true);
    joined = malloc(strlen(p) + 64);
    snprintf(joined, strlen(p) + 64, "v=DKIM1; p=%s", p);
    cr_assert_eq(check_one(&k, 0, joined, why, sizeof why), DKIM_RECORD_MATCHES, "%s", why);
    free(joined);
    free(p);
    keyed_free(&k);
}

Test(dkim, record_missing_and_revoked, .fini = scratch_remove)
{
    struct keyed k;
    char why[256];
    const char *nulls[2] = {NULL, NULL};

    keyed_make(&k);
    cr_assert_eq(dkim_record_check(k.dk, 0, NULL, 0, why, sizeof why), DKIM_RECORD_MISSING);
    cr_assert_str_eq(why, "no TXT record");
    cr_assert_eq(dkim_record_check(k.dk, 0, nulls, 2, why, sizeof why), DKIM_RECORD_MISSING);
    cr_assert_eq(check_one(&k, 0, "v=DKIM1; k=rsa; p=", why, sizeof why), DKIM_RECORD_REVOKED);
    cr_assert_str_eq(why, "p= is empty: the key is revoked");
    cr_assert_eq(check_one(&k, 1, "v=DKIM1; k=ed25519; p= ;", why, sizeof why),
                 DKIM_RECORD_REVOKED);
    keyed_free(&k);
}

Test(dkim, record_of_another_type, .fini = scratch_remove)
{
    struct keyed k;
    char why[256];

    keyed_make(&k);
    cr_assert_eq(check_fmt(&k, 1, "v=DKIM1; k=rsa; p=", k.rsa, "", 0, why, sizeof why),
                 DKIM_RECORD_WRONG_TYPE);
    cr_assert_str_eq(why, "k=rsa but blast signs with ed25519");
    cr_assert_eq(check_fmt(&k, 0, "v=DKIM1; k=ed25519; p=", k.ed, "", 0, why, sizeof why),
                 DKIM_RECORD_WRONG_TYPE);
    cr_assert_str_eq(why, "k=ed25519 but blast signs with rsa");
    /* k= absent means rsa */
    cr_assert_eq(check_fmt(&k, 1, "v=DKIM1; p=", k.ed, "", 0, why, sizeof why),
                 DKIM_RECORD_WRONG_TYPE);
    cr_assert_str_eq(why, "no k= (so rsa) but blast signs with ed25519");
    cr_assert_eq(check_fmt(&k, 0, "v=DKIM1; h=sha1; p=", k.rsa, "", 0, why, sizeof why),
                 DKIM_RECORD_WRONG_TYPE);
    cr_assert_str_eq(why, "h=sha1 but blast signs with sha256");
    cr_assert_eq(check_fmt(&k, 0, "v=DKIM1; s=tls; p=", k.rsa, "", 0, why, sizeof why),
                 DKIM_RECORD_WRONG_TYPE);
    cr_assert_str_eq(why, "s=tls: the key is not for email");
    cr_assert_eq(check_fmt(&k, 0, "v=DKIM1; s=tls : email; p=", k.rsa, "", 0, why, sizeof why),
                 DKIM_RECORD_MATCHES, "%s", why);
    keyed_free(&k);
}

Test(dkim, record_with_another_key, .fini = scratch_remove)
{
    struct keyed k;
    char why[512], want[160];
    EVP_PKEY *other_rsa = rsa_key(2048), *other_ed = ed25519_key();
    unsigned char *der = NULL, md[32];
    int n, j;

    keyed_make(&k);
    cr_assert_eq(check_fmt(&k, 0, "v=DKIM1; k=rsa; p=", other_rsa, "", 0, why, sizeof why),
                 DKIM_RECORD_OTHER_KEY);
    /* blast's fingerprint is SHA-256 over the SubjectPublicKeyInfo DER */
    n = i2d_PUBKEY(k.rsa, &der);
    cr_assert_gt(n, 0);
    SHA256(der, (size_t)n, md);
    OPENSSL_free(der);
    n = snprintf(want, sizeof want, ", blast's is sha256:");
    for (j = 0; j < 32; j++)
        n += snprintf(want + n, sizeof want - (size_t)n, "%02x", md[j]);
    snprintf(want + n, sizeof want - (size_t)n, ")");
    cr_assert(strncmp(why, "another key is published (fingerprint sha256:",
                      strlen("another key is published (fingerprint sha256:")) == 0,
              "%s", why);
    cr_assert_not_null(strstr(why, want), "%s", why);
    cr_assert_eq(strlen(why),
                 strlen("another key is published (fingerprint sha256:") + 64 + strlen(want));
    cr_assert_eq(check_fmt(&k, 1, "v=DKIM1; k=ed25519; p=", other_ed, "", 0, why, sizeof why),
                 DKIM_RECORD_OTHER_KEY);
    EVP_PKEY_free(other_rsa);
    EVP_PKEY_free(other_ed);
    keyed_free(&k);
}

Test(dkim, record_garbage_is_invalid, .fini = scratch_remove)
{
    struct keyed k;
    char why[256];
    unsigned char *der = NULL;
    char *spki, txt[256];
    int n;

    keyed_make(&k);
    cr_assert_eq(check_one(&k, 0, "hello world", why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "'hello world' has no '='");
    cr_assert_eq(check_one(&k, 0, "v=spf1 -all", why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "v=spf1 -all is not DKIM1");
    cr_assert_eq(check_one(&k, 0, "v=DKIM1; k=rsa", why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "no p= tag");
    cr_assert_eq(check_one(&k, 0, "v=DKIM1; p=MIIB$$$", why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "p= is not base64");
    cr_assert_eq(check_one(&k, 0, "v=DKIM1; p=MIIB\" \"AAAA", why, sizeof why),
                 DKIM_RECORD_INVALID);
    cr_assert_not_null(strstr(why, "quote marks"), "%s", why);
    cr_assert_eq(check_one(&k, 0, "v=DKIM1; p=aGVsbG8gd29ybGQ=", why, sizeof why),
                 DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "p= is not an RSA public key");
    cr_assert_eq(
        check_one(&k, 0, "v=DKIM1; p=aGVsbG8gd29ybGQ=; p=aGVsbG8gd29ybGQ=", why, sizeof why),
        DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "tag p appears twice");
    cr_assert_eq(check_one(&k, 1, "v=DKIM1; k=ed25519; p=aGVsbG8gd29ybGQ=", why, sizeof why),
                 DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "p= holds 11 bytes; an Ed25519 key has 32");
    /* RFC 8463 §4 wants the raw key, not the SubjectPublicKeyInfo OpenSSL prints */
    n = i2d_PUBKEY(k.ed, &der);
    cr_assert_gt(n, 0);
    spki = b64_of(der, (size_t)n);
    snprintf(txt, sizeof txt, "v=DKIM1; k=ed25519; p=%s", spki);
    cr_assert_eq(check_one(&k, 1, txt, why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_not_null(strstr(why, "wants the raw 32 bytes"), "%s", why);
    /* no signature 2; no why buffer */
    cr_assert_eq(check_one(&k, 2, "v=DKIM1; p=", why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_eq(dkim_record_check(k.dk, 0, NULL, 0, NULL, 0), DKIM_RECORD_MISSING);
    OPENSSL_free(der);
    free(spki);
    keyed_free(&k);
}

Test(dkim, record_among_several, .fini = scratch_remove)
{
    struct keyed k;
    struct buf rec = BUF_INIT;
    char why[256];
    const char *txts[3];

    keyed_make(&k);
    cr_assert_eq(dkim_public_record(k.dk, 0, &rec), 0);
    /* the one that parses is judged */
    txts[0] = "v=spf1 -all";
    txts[1] = rec.data;
    txts[2] = "some verification token";
    cr_assert_eq(dkim_record_check(k.dk, 0, txts, 3, why, sizeof why), DKIM_RECORD_MATCHES, "%s",
                 why);
    /* two that parse: a verifier may take either */
    txts[2] = "v=DKIM1; k=rsa; p=";
    cr_assert_eq(dkim_record_check(k.dk, 0, txts, 3, why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "several records (2) hold a DKIM key");
    txts[2] = rec.data;
    cr_assert_eq(dkim_record_check(k.dk, 0, txts, 3, why, sizeof why), DKIM_RECORD_INVALID);
    /* none that parses */
    txts[1] = "hello";
    txts[2] = "v=DKIM2; p=x";
    cr_assert_eq(dkim_record_check(k.dk, 0, txts, 3, why, sizeof why), DKIM_RECORD_INVALID);
    cr_assert_str_eq(why, "none of the 3 records is a DKIM key: v=spf1 -all is not DKIM1");
    buf_free(&rec);
    keyed_free(&k);
}

Test(dkim, record_verdict_names)
{
    cr_assert_str_eq(dkim_record_verdict_name(DKIM_RECORD_MATCHES), "matches");
    cr_assert_str_eq(dkim_record_verdict_name(DKIM_RECORD_MISSING), "missing");
    cr_assert_str_eq(dkim_record_verdict_name(DKIM_RECORD_INVALID), "invalid");
    cr_assert_str_eq(dkim_record_verdict_name(DKIM_RECORD_REVOKED), "revoked");
    cr_assert_str_eq(dkim_record_verdict_name(DKIM_RECORD_WRONG_TYPE), "wrong type");
    cr_assert_str_eq(dkim_record_verdict_name(DKIM_RECORD_OTHER_KEY), "another key");
}
