/*
 * fingerprint - the campaign's fingerprint for the journal. See fingerprint.h.
 *
 * One SHA-256 over every input in a fixed order; each file goes in as its name (with
 * the NUL) followed by its contents, read in chunks. Nothing here may change the
 * bytes fed or their order: journals hold the result.
 *
 * A campaign's own files are named relative to the campaign file's directory (the
 * campaign file by its base name), so that `blast send campaign.yml` and `blast
 * send /srv/news/campaign.yml` are the same campaign: a shard rerun by a job engine
 * with another spelling of the path resumes, and the shards' reports merge. Before,
 * the names were the paths as resolved from the command line; for a campaign given
 * by a bare file name, in its own directory, both are the same bytes. The earlier
 * digest ("legacy") is still computed, in the same pass, for journals that hold it.
 */
#include "fingerprint.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* Where the digests go: the fingerprint, and the earlier one when asked for. */
struct sink {
    EVP_MD_CTX *md;
    EVP_MD_CTX *legacy; /* NULL: not asked for */
};

static void feed(const struct sink *k, const void *data, size_t n)
{
    EVP_DigestUpdate(k->md, data, n);
    if (k->legacy != NULL)
        EVP_DigestUpdate(k->legacy, data, n);
}

/* path's name relative to the campaign file's directory, when it is under it. */
static const char *relative(const struct campaign *c, const char *path)
{
    size_t n = strlen(c->dir);

    if (strcmp(c->dir, "/") == 0)
        return path[0] == '/' ? path + 1 : path;
    if (strncmp(path, c->dir, n) == 0 && path[n] == '/')
        return path + n + 1;
    return path;
}

/* The name (c: relative to the campaign; NULL: as given), then the contents at path. */
static int feed_file(const struct sink *k, const struct campaign *c, const char *path,
                     struct blast_error *err)
{
    unsigned char chunk[65536];
    const char *name = c != NULL ? relative(c, path) : path;
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
    /* the name too, so that moving content between files changes the hash */
    EVP_DigestUpdate(k->md, name, strlen(name) + 1);
    if (k->legacy != NULL)
        EVP_DigestUpdate(k->legacy, path, strlen(path) + 1);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        feed(k, chunk, n);
    if (ferror(f))
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "read error: %s", strerror(errno));
    fclose(f);
    return rc;
}

/* The campaign's own files: the campaign file, bodies, list, suppression, parts. */
static int feed_campaign(const struct sink *k, const struct campaign *c, struct blast_error *err)
{
    size_t i;
    int rc;

    rc = feed_file(k, c, c->path, err);
    if (rc == 0 && c->body.text != NULL)
        rc = feed_file(k, c, c->body.text, err);
    if (rc == 0 && c->body.html != NULL)
        rc = feed_file(k, c, c->body.html, err);
    if (rc == 0)
        rc = feed_file(k, c, c->recipients.path, err);
    for (i = 0; rc == 0 && i < c->nsuppression; i++)
        rc = feed_file(k, c, c->suppression[i], err);
    for (i = 0; rc == 0 && i < c->nattachments; i++)
        rc = feed_file(k, c, c->attachments[i].path, err);
    for (i = 0; rc == 0 && i < c->ninline; i++)
        rc = feed_file(k, c, c->inline_parts[i].path, err);
    return rc;
}

static void hex(EVP_MD_CTX *md, char out[FINGERPRINT_HEX_SIZE])
{
    unsigned char digest[32];
    unsigned int dlen = 0, i;

    out[0] = '\0';
    if (EVP_DigestFinal_ex(md, digest, &dlen) == 1)
        for (i = 0; i < dlen && i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", digest[i]);
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
    return fingerprint_campaign_both(c, extra, nextra, out, NULL, err);
}

int fingerprint_campaign_both(const struct campaign *c, const struct fingerprint_input *extra,
                              size_t nextra, char out[FINGERPRINT_HEX_SIZE],
                              char legacy[FINGERPRINT_HEX_SIZE], struct blast_error *err)
{
    struct sink k = {EVP_MD_CTX_new(), legacy != NULL ? EVP_MD_CTX_new() : NULL};
    size_t i;
    int rc = 0;

    out[0] = '\0';
    if (legacy != NULL)
        legacy[0] = '\0';
    if (k.md == NULL || EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1 ||
        (legacy != NULL &&
         (k.legacy == NULL || EVP_DigestInit_ex(k.legacy, EVP_sha256(), NULL) != 1))) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    rc = feed_campaign(&k, c, err);
    for (i = 0; rc == 0 && i < nextra; i++) {
        /* the label too, so that a file moving from one role to another counts */
        feed(&k, extra[i].label, strlen(extra[i].label) + 1);
        rc = feed_file(&k, NULL, extra[i].path, err);
    }
    if (rc == 0) {
        hex(k.md, out);
        if (legacy != NULL)
            hex(k.legacy, legacy);
    }
out:
    EVP_MD_CTX_free(k.md);
    EVP_MD_CTX_free(k.legacy);
    return rc;
}
