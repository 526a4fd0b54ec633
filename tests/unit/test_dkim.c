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
