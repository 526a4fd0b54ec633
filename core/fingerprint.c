/*
 * fingerprint - the campaign's fingerprint for the journal. See fingerprint.h.
 *
 * One SHA-256 over every input in a fixed order; each file goes in as its name (with
 * the NUL) followed by its contents, read in chunks. Nothing here may change the
 * bytes fed or their order: journals hold the result.
 */
#include "fingerprint.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* The name, then the contents of the file at path. */
static int feed_file(EVP_MD_CTX *md, const char *path, struct blast_error *err)
{
    unsigned char chunk[65536];
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
    /* the name too, so that moving content between files changes the hash */
    EVP_DigestUpdate(md, path, strlen(path) + 1);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        EVP_DigestUpdate(md, chunk, n);
    if (ferror(f))
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "read error: %s", strerror(errno));
    fclose(f);
    return rc;
}

/* The campaign's own files: the campaign file, bodies, list, suppression, parts. */
static int feed_campaign(EVP_MD_CTX *md, const struct campaign *c, struct blast_error *err)
{
    size_t i;
    int rc;

    rc = feed_file(md, c->path, err);
    if (rc == 0 && c->body.text != NULL)
        rc = feed_file(md, c->body.text, err);
    if (rc == 0 && c->body.html != NULL)
        rc = feed_file(md, c->body.html, err);
    if (rc == 0)
        rc = feed_file(md, c->recipients.path, err);
    for (i = 0; rc == 0 && i < c->nsuppression; i++)
        rc = feed_file(md, c->suppression[i], err);
    for (i = 0; rc == 0 && i < c->nattachments; i++)
        rc = feed_file(md, c->attachments[i].path, err);
    for (i = 0; rc == 0 && i < c->ninline; i++)
        rc = feed_file(md, c->inline_parts[i].path, err);
    return rc;
}

int fingerprint_campaign(const struct campaign *c, char out[FINGERPRINT_HEX_SIZE],
                         struct blast_error *err)
{
    return fingerprint_campaign_with(c, NULL, 0, out, err);
}

int fingerprint_campaign_with(const struct campaign *c, const struct fingerprint_input *extra,
                              size_t nextra, char out[FINGERPRINT_HEX_SIZE],
                              struct blast_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int dlen = 0;
    size_t i;
    int rc = 0;

    out[0] = '\0';
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    rc = feed_campaign(md, c, err);
    for (i = 0; rc == 0 && i < nextra; i++) {
        /* the label too, so that a file moving from one role to another counts */
        EVP_DigestUpdate(md, extra[i].label, strlen(extra[i].label) + 1);
        rc = feed_file(md, extra[i].path, err);
    }
    if (rc == 0 && EVP_DigestFinal_ex(md, digest, &dlen) == 1)
        for (i = 0; i < dlen && i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", digest[i]);
out:
    EVP_MD_CTX_free(md);
    return rc;
}
