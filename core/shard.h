/*
 * shard - which part of a campaign's list one task of a cluster sends
 * (docs/sharding.md).
 *
 * Owns: the shard's form ("I/N", 0-based I), taking it from the environment a job
 * engine sets (Slurm's SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, Kubernetes'
 * JOB_COMPLETION_INDEX with a count given apart), and the stable rule that puts an
 * address in a shard: the first 8 bytes of the SHA-256 of its key (the address as
 * suppression matches it: the envelope form, lower-cased), big-endian, modulo N.
 * The same address lands on the same shard whatever the list's order, so dedupe and
 * suppression within a shard are the campaign's.
 * Does not own: what a row's key is (screen), the names of a shard's files (cmd).
 *
 * Pure: no I/O; the environment is read through a function the caller passes.
 */
#ifndef BLAST_SHARD_H
#define BLAST_SHARD_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/* At most this many shards. */
#define SHARD_MAX 10000

struct shard {
    unsigned index; /* 0-based */
    unsigned count; /* 0: not sharded (the whole list) */
};

/* "I/N" into out: 0 <= I < N <= SHARD_MAX. Errors: BLAST_EINVAL, err saying why. */
int shard_parse(const char *text, struct shard *out, struct blast_error *err);

/*
 * The shard a job engine's environment names, read with get (getenv, or a test's):
 * the index from SLURM_ARRAY_TASK_ID (Slurm job arrays; the IDs must run from 0:
 * --array=0-(N-1)), else JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); the count
 * from count (--shard-count) when not 0, else BLAST_SHARD_COUNT, else (Slurm only)
 * SLURM_ARRAY_TASK_COUNT, which is 1 for one task rerun alone. *out is {0, 0} when
 * no index is set. Errors: BLAST_EINVAL naming the variable.
 */
int shard_from_env(const char *(*get)(const char *name), unsigned count, struct shard *out,
                   struct blast_error *err);

/* The shard (0..count-1) of key (len bytes); 0 when count is 0 or 1. */
unsigned shard_of(const void *key, size_t len, unsigned count);

/* Whether key belongs to s (always, when s is not sharded). */
bool shard_mine(const struct shard *s, const void *key, size_t len);

/*
 * The same rule for many keys: a SHA-256 fetched once and a digest context used
 * again, where shard_of() sets one up for every key (three times the work, which
 * a shard pays on every row of the list). One thread at a time. Allocated by
 * shard_hasher_new() (NULL when out of memory), freed by shard_hasher_free().
 */
struct shard_hasher;
struct shard_hasher *shard_hasher_new(void);
void shard_hasher_free(struct shard_hasher *h);

/* shard_mine() through h; h NULL: shard_mine() itself. */
bool shard_hasher_mine(struct shard_hasher *h, const struct shard *s, const void *key, size_t len);

#endif
