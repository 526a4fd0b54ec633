/*
 * Unit tests for core/shard: the form I/N, the job engines' environment, and the
 * stable rule (SHA-256 of the key, first 8 bytes big-endian, modulo N) checked
 * against values computed apart (Python's hashlib).
 */
#include "../../core/shard.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(shard, parse)
{
    struct shard s;
    struct blast_error err = {0};

    cr_assert_eq(shard_parse("0/1", &s, &err), 0);
    cr_assert_eq(s.index, 0);
    cr_assert_eq(s.count, 1);
    cr_assert_eq(shard_parse("3/4", &s, &err), 0);
    cr_assert_eq(s.index, 3);
    cr_assert_eq(s.count, 4);
    static const char *const bad[] = {"4/4",
                                      "1",
                                      "/4",
                                      "1/",
                                      "-1/4",
                                      "1/0",
                                      "a/4",
                                      "1/4x",
                                      " 1/4",
                                      "1/10001",
                                      "99999999999999999999/4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        blast_error_clear(&err);
        cr_expect_eq(shard_parse(bad[i], &s, &err), BLAST_EINVAL, "%s", bad[i]);
        cr_expect(strstr(err.text, "I/N") != NULL, "%s: %s", bad[i], err.text);
    }
}

/* A fake environment: NAME=VALUE pairs. */
static const char *const *env;

static const char *get(const char *name)
{
    for (size_t i = 0; env[i] != NULL; i += 2)
        if (strcmp(env[i], name) == 0)
            return env[i + 1];
    return NULL;
}

static int from_env(const char *const *e, unsigned count, struct shard *s, struct blast_error *err)
{
    env = e;
    blast_error_clear(err);
    return shard_from_env(get, count, s, err);
}

Test(shard, environment)
{
    struct shard s;
    struct blast_error err;
    static const char *const none[] = {NULL};
    static const char *const slurm[] = {"SLURM_ARRAY_TASK_ID", "2", "SLURM_ARRAY_TASK_COUNT", "4",
                                        NULL};
    static const char *const slurm_alone[] = {"SLURM_ARRAY_TASK_ID", "2", NULL};
    static const char *const slurm_past[] = {"SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_COUNT",
                                             "4", NULL};
    static const char *const k8s[] = {"JOB_COMPLETION_INDEX", "1", NULL};
    static const char *const k8s_env[] = {"JOB_COMPLETION_INDEX", "1", "BLAST_SHARD_COUNT", "8",
                                          NULL};
    static const char *const k8s_bad[] = {"JOB_COMPLETION_INDEX", "one", NULL};

    cr_assert_eq(from_env(none, 0, &s, &err), 0);
    cr_assert_eq(s.count, 0, "no engine: the whole list");
    cr_assert_eq(from_env(slurm, 0, &s, &err), 0);
    cr_assert_eq(s.index, 2);
    cr_assert_eq(s.count, 4);
    cr_assert_eq(from_env(slurm_alone, 0, &s, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "SLURM_ARRAY_TASK_COUNT") != NULL, "%s", err.text);
    cr_assert_eq(from_env(slurm_past, 0, &s, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "--array=0-3") != NULL, "%s", err.text);
    cr_assert_eq(from_env(k8s, 0, &s, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "--shard-count") != NULL, "%s", err.text);
    cr_assert_eq(from_env(k8s, 3, &s, &err), 0);
    cr_assert_eq(s.index, 1);
    cr_assert_eq(s.count, 3);
    cr_assert_eq(from_env(k8s_env, 0, &s, &err), 0);
    cr_assert_eq(s.count, 8, "BLAST_SHARD_COUNT when there is no --shard-count");
    static const char *const slurm_rerun[] = {
        "SLURM_ARRAY_TASK_ID", "2", "SLURM_ARRAY_TASK_COUNT", "1", "BLAST_SHARD_COUNT", "4", NULL};
    cr_assert_eq(from_env(slurm_rerun, 0, &s, &err), 0, "%s", err.text);
    cr_assert_eq(s.index, 2);
    cr_assert_eq(s.count, 4, "one task rerun alone: the explicit count wins");
    cr_assert_eq(from_env(slurm_rerun, 5, &s, &err), 0);
    cr_assert_eq(s.count, 5, "--shard-count first");
    cr_assert_eq(from_env(k8s_bad, 3, &s, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "JOB_COMPLETION_INDEX is 'one'") != NULL, "%s", err.text);
}

/* int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % n, computed in Python */
Test(shard, the_rule_is_sha256_modulo_n)
{
    static const struct {
        const char *key;
        unsigned n, want;
    } cases[] = {
        {"ada@example.com", 4, 0},
        {"bob@example.com", 4, 0},
        {"user1@example.com", 4, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(shard_of(cases[i].key, strlen(cases[i].key), cases[i].n), cases[i].want, "%s",
                     cases[i].key);
    cr_assert_eq(shard_of("x", 1, 0), 0);
    cr_assert_eq(shard_of("x", 1, 1), 0);
}

Test(shard, shards_are_even_and_cover_every_key)
{
    unsigned counts[4] = {0};
    char key[64];
    struct shard all = {0, 0};

    for (int i = 0; i < 40000; i++) {
        int n = snprintf(key, sizeof key, "user%d@example.com", i);
        unsigned k = shard_of(key, (size_t)n, 4);
        struct shard mine = {k, 4};
        cr_assert(k < 4);
        cr_assert(shard_mine(&mine, key, (size_t)n));
        cr_assert(shard_mine(&all, key, (size_t)n), "not sharded: every key");
        counts[k]++;
    }
    for (int k = 0; k < 4; k++)
        cr_expect(counts[k] > 9500 && counts[k] < 10500, "shard %d has %u of 40000", k, counts[k]);
}

Test(shard, the_hasher_places_keys_as_shard_of_does)
{
    struct shard_hasher *h = shard_hasher_new();
    char key[64];

    cr_assert_not_null(h);
    for (unsigned n = 2; n <= 17; n += 5)
        for (int i = 0; i < 2000; i++) {
            int len = snprintf(key, sizeof key, "user%d@example.com", i);
            unsigned want = shard_of(key, (size_t)len, n);
            for (unsigned k = 0; k < n; k++) {
                struct shard s = {k, n};
                cr_assert_eq(shard_hasher_mine(h, &s, key, (size_t)len), k == want,
                             "%s in %u of %u", key, k, n);
            }
        }
    struct shard whole = {0, 0};
    cr_assert(shard_hasher_mine(h, &whole, "x", 1), "a whole list takes every key");
    cr_assert(shard_hasher_mine(NULL, &whole, "x", 1));
    shard_hasher_free(h);
    shard_hasher_free(NULL);
}
