/*
 * Unit tests for core/suppressdb: entries added, replaced, found without regard to
 * case, removed and listed; the file private and recognised as blast's; another
 * process writing while this one reads.
 */
#include "../../core/addrset.h"
#include "../../core/suppressdb.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct suppressdb *open_ok(const char *path, bool create)
{
    struct suppressdb *db = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open(path, create, &db, &err), 0, "%s", err.text);
    cr_assert_not_null(db);
    return db;
}

static void db_path(char *out, size_t size)
{
    snprintf(out, size, "%s/suppression.db", scratch_make());
}

static void add_ok(struct suppressdb *db, const char *address, enum suppress_class c,
                   const char *rule, int64_t time)
{
    struct suppress_entry e = {address, c, rule, "november-news", time, "<dsn.1@mx.example>"};
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(suppressdb_add(db, &e, &err), 0, "%s", err.text);
}

struct seen {
    char address[128], rule[64], campaign[64], source[64];
    enum suppress_class class;
    int64_t time;
    int calls;
};

static int remember(void *arg, const struct suppress_entry *e)
{
    struct seen *s = arg;

    snprintf(s->address, sizeof s->address, "%s", e->address);
    snprintf(s->rule, sizeof s->rule, "%s", e->rule != NULL ? e->rule : "");
    snprintf(s->campaign, sizeof s->campaign, "%s", e->campaign != NULL ? e->campaign : "");
    snprintf(s->source, sizeof s->source, "%s", e->source != NULL ? e->source : "");
    s->class = e->class;
    s->time = e->time;
    s->calls++;
    return 0;
}

Test(suppressdb, class_names)
{
    int i;

    for (i = 0; i < SUPPRESS_CLASS_COUNT; i++)
        cr_assert_eq(suppress_class_parse(suppress_class_name((enum suppress_class)i)), i);
    cr_assert_str_eq(suppress_class_name(SUPPRESS_COMPLAINT), "complaint");
    cr_assert_eq(suppress_class_parse("policy"), -1, "a policy block suppresses nobody");
}

Test(suppressdb, entries_are_kept_and_found_without_regard_to_case, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db;
    struct blast_error err;
    struct seen s;
    struct stat st;

    db_path(path, sizeof path);
    db = open_ok(path, true);
    add_ok(db, "Ada@Example.COM", SUPPRESS_HARD, "dsn-5.1.1", 1764900000);
    suppressdb_close(db);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "it holds recipients' addresses: private");

    db = open_ok(path, false);
    memset(&s, 0, sizeof s);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_find(db, "ada@example.com", remember, &s, &err), 1, "%s", err.text);
    cr_assert_str_eq(s.address, "Ada@Example.COM", "kept as it was given");
    cr_assert_eq(s.class, SUPPRESS_HARD);
    cr_assert_str_eq(s.rule, "dsn-5.1.1");
    cr_assert_str_eq(s.campaign, "november-news");
    cr_assert_str_eq(s.source, "<dsn.1@mx.example>");
    cr_assert_eq(s.time, 1764900000);
    cr_assert_eq(suppressdb_find(db, "ADA@EXAMPLE.COM", NULL, NULL, &err), 1);
    cr_assert_eq(suppressdb_find(db, "grace@example.com", remember, &s, &err), 0);
    suppressdb_close(db);
}

Test(suppressdb, a_later_entry_replaces_the_earlier, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db;
    struct blast_error err;
    struct seen s;
    size_t n;

    db_path(path, sizeof path);
    db = open_ok(path, true);
    add_ok(db, "ada@example.com", SUPPRESS_SOFT, "soft-count", 100);
    add_ok(db, "ADA@example.com", SUPPRESS_COMPLAINT, "arf-abuse", 200);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_count(db, &n, &err), 0);
    cr_assert_eq(n, 1);
    memset(&s, 0, sizeof s);
    cr_assert_eq(suppressdb_find(db, "ada@example.com", remember, &s, &err), 1);
    cr_assert_eq(s.class, SUPPRESS_COMPLAINT);
    cr_assert_eq(s.time, 200);
    suppressdb_close(db);
}

Test(suppressdb, remove, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db;
    struct blast_error err;
    bool removed = true;

    db_path(path, sizeof path);
    db = open_ok(path, true);
    add_ok(db, "ada@example.com", SUPPRESS_MANUAL, "manual", 1);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_remove(db, "Ada@Example.com", &removed, &err), 0, "%s", err.text);
    cr_assert(removed);
    cr_assert_eq(suppressdb_remove(db, "ada@example.com", &removed, &err), 0);
    cr_assert_not(removed, "nothing left to remove");
    cr_assert_eq(suppressdb_find(db, "ada@example.com", NULL, NULL, &err), 0);
    suppressdb_close(db);
}

static int count_hashes(void *arg, uint64_t h)
{
    size_t *n = arg;

    cr_assert_neq(h, 0);
    (*n)++;
    return 0;
}

static int collect_addresses(void *arg, const struct suppress_entry *e)
{
    strcat(arg, e->address);
    strcat(arg, ";");
    return 0;
}

static int stop_at_two(void *arg, const struct suppress_entry *e)
{
    int *n = arg;

    (void)e;
    return ++*n == 2 ? 7 : 0;
}

Test(suppressdb, listing_and_keys, .fini = scratch_remove)
{
    char path[512], addresses[512] = "";
    size_t hashes = 0;
    struct suppressdb *db;
    struct blast_error err;
    int n = 0;

    db_path(path, sizeof path);
    db = open_ok(path, true);
    add_ok(db, "Zed@example.com", SUPPRESS_HARD, NULL, 1);
    add_ok(db, "ada@example.com", SUPPRESS_UNSUBSCRIBE, "mailto-unsubscribe", 2);
    add_ok(db, "grace@EXAMPLE.org", SUPPRESS_COMPLAINT, NULL, 3);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_each(db, collect_addresses, addresses, &err), 0, "%s", err.text);
    cr_assert_str_eq(addresses, "ada@example.com;grace@EXAMPLE.org;Zed@example.com;",
                     "ordered by key");
    cr_assert_eq(suppressdb_hashes(db, count_hashes, &hashes, &err), 0);
    cr_assert_eq(hashes, 3);
    cr_assert_eq(suppressdb_each(db, stop_at_two, &n, &err), 7, "fn's value stops it");
    cr_assert_eq(n, 2);
    suppressdb_close(db);
}

Test(suppressdb, what_is_not_an_address_is_refused, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db;
    struct blast_error err;
    struct suppress_entry e = {"not an address", SUPPRESS_MANUAL, NULL, NULL, 1, NULL};

    db_path(path, sizeof path);
    db = open_ok(path, true);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_add(db, &e, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "'not an address'"), "%s", err.text);
    cr_assert_null(strstr(strstr(err.text, "'not an address'") + 1, "'not an address'"),
                   "named once: %s", err.text);
    suppressdb_close(db);
}

Test(suppressdb, a_file_that_is_not_ours_is_refused, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db = NULL;
    struct blast_error err;
    sqlite3 *other;

    db_path(path, sizeof path);
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open(path, true, &db, &err), BLAST_EINVAL);
    cr_assert_null(db);
    cr_assert_not_null(strstr(err.text, "not a blast suppression database"), "%s", err.text);
    cr_assert_str_eq(err.source, path);

    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open("/nonexistent/dir/s.db", false, &db, &err), BLAST_EIO);
    cr_assert_null(db);
}

/* An intake writing in another process while a send reads: neither waits forever or fails. */
Test(suppressdb, another_process_writes_while_this_one_reads, .fini = scratch_remove, .timeout = 60)
{
    char path[512], address[64];
    struct suppressdb *db;
    struct blast_error err;
    size_t n = 0;
    int i, status = 0, rounds = 0;
    pid_t pid;

    db_path(path, sizeof path);
    suppressdb_close(open_ok(path, true));
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct suppressdb *w = NULL;
        struct blast_error e;
        blast_error_clear(&e);
        if (suppressdb_open(path, false, &w, &e) < 0)
            _exit(2);
        for (i = 0; i < 200; i++) {
            struct suppress_entry en = {address, SUPPRESS_HARD, "dsn-5.1.1", NULL, i, NULL};
            snprintf(address, sizeof address, "user%d@example.com", i);
            if (suppressdb_add(w, &en, &e) < 0)
                _exit(3);
        }
        suppressdb_close(w);
        _exit(0);
    }
    db = open_ok(path, false);
    blast_error_clear(&err);
    /* read until the writer is done: bounded by the test's timeout and 100,000 rounds */
    while (n < 200 && rounds++ < 100000) {
        cr_assert_eq(suppressdb_count(db, &n, &err), 0, "%s", err.text);
        cr_assert_leq(n, 200);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer: %d", status);
    cr_assert_eq(suppressdb_count(db, &n, &err), 0);
    cr_assert_eq(n, 200);
    suppressdb_close(db);
}

/* A set keyed as the database, loaded from its hashes, holds its entries' keys. */
static int add_hash(void *arg, uint64_t h)
{
    cr_assert_geq(addrset_add_hash(arg, h), 0);
    return 0;
}

Test(suppressdb, hashes_match_the_keys_a_screen_computes, .fini = scratch_remove)
{
    char path[512];
    struct suppressdb *db;
    struct addrset *set;
    struct blast_error err;
    uint8_t key[16];

    db_path(path, sizeof path);
    db = open_ok(path, true);
    add_ok(db, "Ada@Example.COM", SUPPRESS_HARD, NULL, 1);
    add_ok(db, "bob@example.org", SUPPRESS_HARD, NULL, 1);
    memcpy(key, suppressdb_hash_key(db), sizeof key);
    suppressdb_close(db);

    db = open_ok(path, false);
    cr_assert_eq(memcmp(key, suppressdb_hash_key(db), sizeof key), 0, "the key is kept");
    set = addrset_new_keyed(suppressdb_hash_key(db));
    cr_assert_not_null(set);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_hashes(db, add_hash, set, &err), 0, "%s", err.text);
    cr_assert(addrset_contains(set, "ada@example.com", 15));
    cr_assert(addrset_contains(set, "bob@example.org", 15));
    cr_assert_not(addrset_contains(set, "Ada@Example.COM", 15), "keys are lower-cased");
    cr_assert_not(addrset_contains(set, "cy@example.org", 14));
    addrset_free(set);
    suppressdb_close(db);

    /* two databases draw different keys */
    snprintf(path, sizeof path, "%s/other.db", scratch_dir);
    db = open_ok(path, true);
    cr_assert_neq(memcmp(key, suppressdb_hash_key(db), sizeof key), 0);
    suppressdb_close(db);
}
