/*
 * shard - a campaign's list split among the tasks of a job engine. See shard.h.
 *
 * SHA-256 rather than the hashes of addrset: those are keyed per run (SipHash with a
 * random key, against collisions made on purpose), and a shard must be the same in
 * every task and every run; anyone can compute this one (docs/sharding.md shows it
 * in three lines of Python).
 */
#include "shard.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* A number 0..max from text, whole: no sign, no spaces, no trailing bytes. */
static int whole_number(const char *text, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

int shard_parse(const char *text, struct shard *out, struct blast_error *err)
{
    const char *slash = text != NULL ? strchr(text, '/') : NULL;
    char index[24];
    unsigned long i, n;

    if (slash == NULL || (size_t)(slash - text) >= sizeof index)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "a shard is I/N (0-based I, N shards), not '%s'",
                               text != NULL ? text : "");
    memcpy(index, text, (size_t)(slash - text));
    index[slash - text] = '\0';
    if (whole_number(index, SHARD_MAX, &i) < 0 || whole_number(slash + 1, SHARD_MAX, &n) < 0 ||
        n == 0 || i >= n)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "a shard is I/N with 0 <= I < N <= %d, not '%s'", SHARD_MAX, text);
    out->index = (unsigned)i;
    out->count = (unsigned)n;
    return 0;
}

static int env_number(const char *(*get)(const char *), const char *name, unsigned long max,
                      unsigned long *out, struct blast_error *err)
{
    const char *v = get(name);

    if (whole_number(v, max, out) < 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "%s is '%s': a whole number up to %lu is needed", name, v, max);
    return 0;
}

int shard_from_env(const char *(*get)(const char *name), unsigned count, struct shard *out,
                   struct blast_error *err)
{
    unsigned long i, n = count;
    int rc;

    out->index = 0;
    out->count = 0;
    /*
     * An explicit count (--shard-count, BLAST_SHARD_COUNT) wins over Slurm's: a task
     * rerun alone (sbatch --array=2) is an array of one, SLURM_ARRAY_TASK_COUNT=1.
     */
    if (n == 0 && get("BLAST_SHARD_COUNT") != NULL &&
        (rc = env_number(get, "BLAST_SHARD_COUNT", SHARD_MAX, &n, err)) < 0)
        return rc;
    if (get("SLURM_ARRAY_TASK_ID") != NULL) {
        if ((rc = env_number(get, "SLURM_ARRAY_TASK_ID", SHARD_MAX, &i, err)) < 0)
            return rc;
        if (n == 0 && get("SLURM_ARRAY_TASK_COUNT") == NULL)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is "
                                   "not: run blast in a job array (sbatch --array=0-N)");
        if (n == 0 && (rc = env_number(get, "SLURM_ARRAY_TASK_COUNT", SHARD_MAX, &n, err)) < 0)
            return rc;
    } else if (get("JOB_COMPLETION_INDEX") != NULL) {
        if ((rc = env_number(get, "JOB_COMPLETION_INDEX", SHARD_MAX, &i, err)) < 0)
            return rc;
        if (n == 0)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "JOB_COMPLETION_INDEX is set: give the number of shards "
                                   "with --shard-count or BLAST_SHARD_COUNT (the Job's "
                                   "completions)");
    } else {
        return 0;
    }
    if (n == 0 || i >= n)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "the environment names shard %lu of %lu: the index must be "
                               "below the count (Slurm: --array=0-%lu)",
                               i, n, n > 0 ? n - 1 : 0);
    out->index = (unsigned)i;
    out->count = (unsigned)n;
    return 0;
}

unsigned shard_of(const void *key, size_t len, unsigned count)
{
    unsigned char md[32];
    unsigned long long h = 0;

    if (count <= 1)
        return 0;
    EVP_Digest(key, len, md, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 8; i++)
        h = h << 8 | md[i];
    return (unsigned)(h % count);
}

bool shard_mine(const struct shard *s, const void *key, size_t len)
{
    return s == NULL || s->count <= 1 || shard_of(key, len, s->count) == s->index;
}

struct shard_hasher {
    EVP_MD *sha256;
    EVP_MD_CTX *ctx;
};

struct shard_hasher *shard_hasher_new(void)
{
    struct shard_hasher *h = calloc(1, sizeof *h);

    if (h == NULL)
        return NULL;
    h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (h->sha256 == NULL || h->ctx == NULL) {
        shard_hasher_free(h);
        return NULL;
    }
    return h;
}

void shard_hasher_free(struct shard_hasher *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->sha256);
    free(h);
}

bool shard_hasher_mine(struct shard_hasher *h, const struct shard *s, const void *key, size_t len)
{
    unsigned char md[32];
    unsigned long long v = 0;

    if (h == NULL)
        return shard_mine(s, key, len);
    if (s == NULL || s->count <= 1)
        return true;
    if (EVP_DigestInit_ex(h->ctx, h->sha256, NULL) != 1 ||
        EVP_DigestUpdate(h->ctx, key, len) != 1 || EVP_DigestFinal_ex(h->ctx, md, NULL) != 1)
        return shard_mine(s, key, len); /* the same answer the slow way */
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return (unsigned)(v % s->count) == s->index;
}
