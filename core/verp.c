/*
 * verp - per-recipient envelope senders with an authenticated token. See verp.h.
 *
 * The token's 17 bytes: version (1), row (5, big-endian), campaign tag (3), MAC (8).
 * The MAC is HMAC-SHA256 under the secret of "blast-verp-1", NUL, the campaign's
 * name, NUL, and the row as 8 bytes big-endian, cut to 8 bytes: 64 bits are enough
 * against forgery here (a guess costs the forger a bounce delivered to us, and an
 * attacker gets nothing but one more suppressed row for it), and they keep the
 * local part short (RFC 5321 §4.5.3.1.1: at most 64 octets).
 */
#include "verp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#define VERSION          1
#define RAW_LEN          17
#define TAG_LEN          3
#define MAC_LEN          8
#define TEMPLATE         "{token}"
#define DOMAIN_SEPARATOR "blast-verp-1"

/* RFC 4648 base32, lower case: letters and 2-7 are safe in a local part, in any case. */
static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static void base32(const unsigned char *in, size_t len, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 5) {
            out[n++] = alphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[n++] = alphabet[(acc << (5 - bits)) & 31];
    out[n] = '\0';
}

/* Decode len base32 characters (either case) into out; -1 on a character outside it. */
static int unbase32(const char *in, size_t len, unsigned char *out, size_t size)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        char c = in[i];
        int v = c >= 'a' && c <= 'z'   ? c - 'a'
                : c >= 'A' && c <= 'Z' ? c - 'A'
                : c >= '2' && c <= '7' ? c - '2' + 26
                                       : -1;
        if (v < 0)
            return -1;
        acc = acc << 5 | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (n == size)
                return -1;
            out[n++] = (unsigned char)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    /* the padding bits of the last character must be zero: one spelling per token */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (int)n;
}

static void campaign_tag(const char *campaign, unsigned char out[TAG_LEN])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (EVP_Digest(campaign, strlen(campaign), digest, &dlen, EVP_sha256(), NULL) != 1)
        memset(digest, 0, sizeof digest);
    memcpy(out, digest, TAG_LEN);
}

static int mac_of(const void *secret, size_t len, const char *campaign, uint64_t row,
                  unsigned char out[MAC_LEN])
{
    unsigned char msg[512], digest[EVP_MAX_MD_SIZE];
    size_t clen = strlen(campaign), n = 0;
    unsigned int dlen = 0;
    int i;

    if (sizeof DOMAIN_SEPARATOR + clen + 1 + 8 > sizeof msg)
        return -1;
    memcpy(msg, DOMAIN_SEPARATOR, sizeof DOMAIN_SEPARATOR); /* with its NUL */
    n = sizeof DOMAIN_SEPARATOR;
    memcpy(msg + n, campaign, clen + 1);
    n += clen + 1;
    for (i = 7; i >= 0; i--)
        msg[n++] = (unsigned char)(row >> (8 * i));
    if (HMAC(EVP_sha256(), secret, (int)len, msg, n, digest, &dlen) == NULL)
        return -1;
    memcpy(out, digest, MAC_LEN);
    OPENSSL_cleanse(digest, sizeof digest);
    return 0;
}

int verp_token(const void *secret, size_t len, const char *campaign, uint64_t row,
               char out[VERP_TOKEN_SIZE], struct blast_error *err)
{
    unsigned char raw[RAW_LEN];
    int i;

    out[0] = '\0';
    if (row == 0 || row > VERP_ROW_MAX)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "row %llu cannot go in a return path token",
                               (unsigned long long)row);
    if (len < VERP_SECRET_MIN)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "the return path's secret must be at least %d bytes",
                               VERP_SECRET_MIN);
    raw[0] = VERSION;
    for (i = 0; i < 5; i++)
        raw[1 + i] = (unsigned char)(row >> (8 * (4 - i)));
    campaign_tag(campaign, raw + 6);
    if (mac_of(secret, len, campaign, row, raw + 6 + TAG_LEN) < 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "cannot make a return path token for this campaign's name");
    base32(raw, RAW_LEN, out);
    return 0;
}

int verp_parse(const char *token, size_t len, struct verp_claim *out)
{
    unsigned char raw[RAW_LEN];
    int i;

    memset(out, 0, sizeof *out);
    if (len != VERP_TOKEN_LEN || unbase32(token, len, raw, sizeof raw) != RAW_LEN ||
        raw[0] != VERSION)
        return BLAST_EINVAL;
    for (i = 0; i < 5; i++)
        out->row = out->row << 8 | raw[1 + i];
    if (out->row == 0)
        return BLAST_EINVAL;
    memcpy(out->campaign_tag, raw + 6, TAG_LEN);
    memcpy(out->mac, raw + 6 + TAG_LEN, MAC_LEN);
    return 0;
}

bool verp_verify(const void *secret, size_t len, const char *campaign,
                 const struct verp_claim *claim)
{
    unsigned char tag[TAG_LEN], mac[MAC_LEN];

    if (len < VERP_SECRET_MIN || claim->row == 0 || claim->row > VERP_ROW_MAX)
        return false;
    campaign_tag(campaign, tag);
    if (mac_of(secret, len, campaign, claim->row, mac) < 0)
        return false;
    /* both compared whole, in constant time: no early exit says which part was wrong */
    return (CRYPTO_memcmp(tag, claim->campaign_tag, TAG_LEN) |
            CRYPTO_memcmp(mac, claim->mac, MAC_LEN)) == 0;
}

int verp_template_check(const char *tmpl, struct blast_error *err)
{
    const char *at = strstr(tmpl, TEMPLATE), *sign;

    if (at == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "it needs {token} in its local part, as in "
                               "bounces+{token}@acme.example");
    if (strstr(at + 1, TEMPLATE) != NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "it may hold {token} once only");
    sign = strrchr(tmpl, '@');
    if (sign == NULL || sign < at)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "{token} must be in the local part, before the '@'");
    /* RFC 5321 §4.5.3.1.1: a local part is at most 64 octets */
    if ((size_t)(sign - tmpl) - strlen(TEMPLATE) + VERP_TOKEN_LEN > 64)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "with its %d-character token the local part would be longer than "
                               "64 characters",
                               VERP_TOKEN_LEN);
    return 0;
}

int verp_address(const char *tmpl, const char *token, char *out, size_t size,
                 struct blast_error *err)
{
    const char *at = strstr(tmpl, TEMPLATE);
    size_t head, tail, tlen = strlen(token);

    if (at == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "no {token} in the return path");
    head = (size_t)(at - tmpl);
    tail = strlen(at + strlen(TEMPLATE));
    if (head + tlen + tail + 1 > size)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "the return path is too long");
    memcpy(out, tmpl, head);
    memcpy(out + head, token, tlen);
    memcpy(out + head + tlen, at + strlen(TEMPLATE), tail + 1);
    return 0;
}

size_t verp_find_token(const char *tmpl, const char *address, char *out, size_t size)
{
    const char *at = strstr(tmpl, TEMPLATE);
    size_t head, tail, alen = strlen(address), n;

    if (size > 0)
        out[0] = '\0';
    if (at == NULL)
        return 0;
    head = (size_t)(at - tmpl);
    tail = strlen(at + strlen(TEMPLATE));
    if (alen <= head + tail || strncasecmp(address, tmpl, head) != 0 ||
        strcasecmp(address + alen - tail, at + strlen(TEMPLATE)) != 0)
        return 0;
    n = alen - head - tail;
    if (n + 1 > size)
        return 0;
    memcpy(out, address + head, n);
    out[n] = '\0';
    return n;
}
