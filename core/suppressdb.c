/*
 * suppressdb - the suppression database, in SQLite. See suppressdb.h.
 *
 * The schema (user_version 2), which operators may query with sqlite3:
 *
 *   CREATE TABLE suppression (
 *     key      TEXT PRIMARY KEY,  -- the address lower-cased: what a list is matched on
 *     address  TEXT NOT NULL,     -- as it was given
 *     class    TEXT NOT NULL,     -- hard, soft, complaint, unsubscribe, manual
 *     rule     TEXT,              -- the rule that decided it
 *     campaign TEXT,              -- the campaign it came from
 *     time     INTEGER NOT NULL,  -- seconds since the epoch, UTC
 *     source   TEXT,              -- the Message-ID of the bounce or report
 *     hash     INTEGER NOT NULL   -- SipHash-2-4 of key under meta 'hash_key'
 *   ) WITHOUT ROWID;
 *   CREATE INDEX suppression_hash ON suppression (hash);
 *   CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
 *   -- version 2: what came back, and the messages it came in
 *   CREATE TABLE event (
 *     id INTEGER PRIMARY KEY, time INTEGER NOT NULL, key TEXT NOT NULL,
 *     address TEXT NOT NULL, campaign TEXT, row INTEGER, kind TEXT NOT NULL,
 *     class TEXT NOT NULL, rule TEXT NOT NULL, status TEXT, diagnostic TEXT,
 *     source TEXT, via TEXT, action TEXT);
 *   CREATE INDEX event_key ON event (key, time);
 *   CREATE INDEX event_campaign ON event (campaign, row);
 *   CREATE TABLE intake (
 *     digest TEXT PRIMARY KEY, time INTEGER NOT NULL, mailbox TEXT NOT NULL,
 *     uid TEXT, message_id TEXT, result TEXT NOT NULL, detail TEXT) WITHOUT ROWID;
 *   CREATE TABLE intake_pending (  -- IMAP messages about to be fetched (which sets \Seen)
 *     mailbox TEXT NOT NULL, uid TEXT NOT NULL, PRIMARY KEY (mailbox, uid)) WITHOUT ROWID;
 *
 * A file of version 1 gains the tables of version 2 when it is opened.
 * The file may also hold core/warmup's tables (warmup_*, versioned in their own
 * warmup_meta): a file with only those is still made a suppression database.
 *
 * A list is screened against the hashes, loaded from the index alone (8 bytes an
 * entry, read as integers): at a million entries that is a tenth of the time that
 * reading and hashing the keys takes. The hash key is drawn at random when the file
 * is made, so that nobody can make entries whose hashes collide.
 *
 * The file says it is blast's with PRAGMA application_id 0x626c7374 ("blst"). WAL
 * lets a send read while an intake writes; synchronous=FULL makes a committed entry
 * survive a power cut, since an intake deletes a bounce from the server once its
 * entry is committed. A handle is used by one thread (no mutex). No mmap: the
 * kernel maps the pages around each one read, and a scan of the hash index would
 * show the whole file in the process's RSS.
 */
#include "suppressdb.h"
#include "address.h"
#include "addrset.h"
#include "buf.h"
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define APPLICATION_ID 0x626c7374
#define SCHEMA_VERSION 2
#define BUSY_MS        10000

static const char *const class_names[SUPPRESS_CLASS_COUNT] = {
    [SUPPRESS_HARD] = "hard",           [SUPPRESS_SOFT] = "soft",
    [SUPPRESS_COMPLAINT] = "complaint", [SUPPRESS_UNSUBSCRIBE] = "unsubscribe",
    [SUPPRESS_MANUAL] = "manual",
};

const char *suppress_class_name(enum suppress_class c)
{
    return c >= 0 && c < SUPPRESS_CLASS_COUNT ? class_names[c] : "?";
}

int suppress_class_parse(const char *s)
{
    int i;

    for (i = 0; s != NULL && i < SUPPRESS_CLASS_COUNT; i++)
        if (strcmp(s, class_names[i]) == 0)
            return i;
    return -1;
}

struct suppressdb {
    sqlite3 *db;
    char *path;
    uint8_t hash_key[16]; /* the SipHash key of the hash column (meta 'hash_key') */
    sqlite3_stmt *find;   /* SELECT_ENTRY by key, prepared once */
    sqlite3_stmt *event_add, *intake_find, *intake_add; /* the intake's, prepared once */
};

static int db_fail(struct suppressdb *d, struct blast_error *err, const char *what)
{
    return blast_error_set(err, BLAST_EIO, d->path, 0, 0, "%s: %s", what,
                           d->db != NULL ? sqlite3_errmsg(d->db) : "out of memory");
}

static int exec(struct suppressdb *d, const char *sql, struct blast_error *err)
{
    return sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : db_fail(d, err, "cannot set up the suppression database");
}

/* One integer from a query of one row (a PRAGMA). */
static int query_int(struct suppressdb *d, const char *sql, int *out, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : db_fail(d, err,
                                                           "cannot read the suppression "
                                                           "database");
}

/* The tables version 2 added: the intake's events and the messages it has recorded. */
#define TABLES_V2                                                                                  \
    "CREATE TABLE IF NOT EXISTS event ("                                                           \
    " id INTEGER PRIMARY KEY, time INTEGER NOT NULL, key TEXT NOT NULL,"                           \
    " address TEXT NOT NULL, campaign TEXT, row INTEGER, kind TEXT NOT NULL,"                      \
    " class TEXT NOT NULL, rule TEXT NOT NULL, status TEXT, diagnostic TEXT,"                      \
    " source TEXT, via TEXT, action TEXT);"                                                        \
    "CREATE INDEX IF NOT EXISTS event_key ON event (key, time);"                                   \
    "CREATE INDEX IF NOT EXISTS event_campaign ON event (campaign, row);"                          \
    "CREATE TABLE IF NOT EXISTS intake ("                                                          \
    " digest TEXT PRIMARY KEY, time INTEGER NOT NULL, mailbox TEXT NOT NULL,"                      \
    " uid TEXT, message_id TEXT, result TEXT NOT NULL, detail TEXT) WITHOUT ROWID;"                \
    "CREATE TABLE IF NOT EXISTS intake_pending ("                                                  \
    " mailbox TEXT NOT NULL, uid TEXT NOT NULL, PRIMARY KEY (mailbox, uid)) WITHOUT ROWID;"

/* A new database gets its tables; an existing one must be blast's, of a version we read. */
static int schema(struct suppressdb *d, bool create, struct blast_error *err)
{
    char sql[2048];
    int app = 0, version = 0, rc;

    if ((rc = query_int(d, "PRAGMA application_id", &app, err)) < 0 ||
        (rc = query_int(d, "PRAGMA user_version", &version, err)) < 0)
        return rc;
    if (app == 0 && version == 0) {
        int tables = 0;
        /* core/warmup's tables may be there first: the file can hold both */
        if ((rc = query_int(d,
                            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE "
                            "'warmup\\_%' ESCAPE '\\'",
                            &tables, err)) < 0)
            return rc;
        if (tables > 0 || !create)
            return blast_error_set(err, BLAST_EINVAL, d->path, 0, 0,
                                   tables > 0 ? "not a blast suppression database"
                                              : "the suppression database is empty (not made "
                                                "by blast)");
        unsigned char key[16];
        char hex[33];
        size_t i;
        /* the hashes' key: random, so that nobody can make entries that collide */
        if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key)
            return blast_error_set(err, BLAST_EIO, d->path, 0, 0, "cannot draw a random key: %s",
                                   strerror(errno));
        for (i = 0; i < sizeof key; i++)
            snprintf(hex + 2 * i, 3, "%02x", key[i]);
        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE;"
                 "CREATE TABLE suppression ("
                 " key TEXT PRIMARY KEY, address TEXT NOT NULL, class TEXT NOT NULL,"
                 " rule TEXT, campaign TEXT, time INTEGER NOT NULL, source TEXT,"
                 " hash INTEGER NOT NULL"
                 ") WITHOUT ROWID;"
                 "CREATE INDEX suppression_hash ON suppression (hash);"
                 "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);" TABLES_V2
                 "INSERT INTO meta VALUES ('hash_key', '%s');"
                 "PRAGMA application_id = %d;"
                 "PRAGMA user_version = %d;"
                 "COMMIT;",
                 hex, APPLICATION_ID, SCHEMA_VERSION);
        return exec(d, sql, err);
    }
    if (app != APPLICATION_ID)
        return blast_error_set(err, BLAST_EINVAL, d->path, 0, 0,
                               "not a blast suppression database");
    if (version == 1) {
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;" TABLES_V2 "PRAGMA user_version = %d;COMMIT;",
                 SCHEMA_VERSION);
        if ((rc = exec(d, sql, err)) < 0)
            return rc;
        version = SCHEMA_VERSION;
    }
    if (version != SCHEMA_VERSION)
        return blast_error_set(err, BLAST_EINVAL, d->path, 0, 0,
                               "a suppression database of schema version %d; this blast reads "
                               "version %d",
                               version, SCHEMA_VERSION);
    return 0;
}

/* The key the hash column was made under, from the meta table. */
static int read_hash_key(struct suppressdb *d, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *hex = NULL;
    size_t i;
    int rc = 0;

    if (sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE name = 'hash_key'", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    if (sqlite3_step(st) == SQLITE_ROW)
        hex = (const char *)sqlite3_column_text(st, 0);
    if (hex == NULL || strlen(hex) != 32)
        rc = blast_error_set(err, BLAST_EINVAL, d->path, 0, 0,
                             "the suppression database has no hash key (damaged?)");
    for (i = 0; rc == 0 && i < sizeof d->hash_key; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            rc = blast_error_set(err, BLAST_EINVAL, d->path, 0, 0,
                                 "the suppression database's hash key is damaged");
        d->hash_key[i] = (uint8_t)v;
    }
    sqlite3_finalize(st);
    return rc;
}

int suppressdb_open(const char *path, bool create, struct suppressdb **out, struct blast_error *err)
{
    struct suppressdb *d;
    int fd, rc;

    *out = NULL;
    if ((d = calloc(1, sizeof *d)) == NULL || (d->path = strdup(path)) == NULL) {
        free(d);
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    }
    /* made private before SQLite opens it: its WAL files take the same mode */
    if (create && (fd = private_open(path, O_RDWR)) >= 0)
        close(fd);
    if (sqlite3_open_v2(path, &d->db,
                        SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = db_fail(d, err, "cannot open the suppression database");
        goto fail;
    }
    sqlite3_busy_timeout(d->db, BUSY_MS);
    if ((rc = schema(d, create, err)) < 0 || (rc = exec(d, "PRAGMA journal_mode=WAL", err)) < 0 ||
        (rc = exec(d, "PRAGMA synchronous=FULL", err)) < 0 || (rc = read_hash_key(d, err)) < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    suppressdb_close(d);
    return rc;
}

void suppressdb_close(struct suppressdb *d)
{
    if (d == NULL)
        return;
    sqlite3_finalize(d->find);
    sqlite3_finalize(d->event_add);
    sqlite3_finalize(d->intake_find);
    sqlite3_finalize(d->intake_add);
    sqlite3_close(d->db);
    free(d->path);
    free(d);
}

/* The key an address is stored and matched under, in key; BLAST_EINVAL when not an address. */
static int key_of(const char *address, struct buf *key, struct blast_error *err)
{
    struct address a;
    struct blast_error e;
    size_t i;
    int rc;

    blast_error_clear(&e);
    if (address_parse(address, &a, &e) < 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "%s", e.text);
    buf_reset(key);
    rc = buf_puts(key, a.envelope);
    address_free(&a);
    if (rc < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    /* as screen matches suppression: without regard to case at all */
    for (i = 0; i < key->len; i++)
        if (key->data[i] >= 'A' && key->data[i] <= 'Z')
            key->data[i] = (char)(key->data[i] - 'A' + 'a');
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL && s[0] != '\0')
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* The hash of key (an address lower-cased) as the database keeps it, and addrset too. */
static uint64_t hash_of(const struct suppressdb *d, const char *key, size_t len)
{
    uint64_t h = addrset_siphash(d->hash_key, key, len);
    return h != 0 ? h : 1; /* as addrset keeps it */
}

int suppressdb_add(struct suppressdb *d, const struct suppress_entry *e, struct blast_error *err)
{
    struct buf key = BUF_INIT;
    sqlite3_stmt *st = NULL;
    int rc;

    if (e->class < 0 || e->class >= SUPPRESS_CLASS_COUNT) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "no such suppression class");
        goto out;
    }
    if ((rc = key_of(e->address, &key, err)) < 0)
        goto out;
    if (sqlite3_prepare_v2(d->db,
                           "INSERT OR REPLACE INTO suppression "
                           "(key, address, class, rule, campaign, time, source, hash) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(d, err, "cannot add to the suppression database");
        goto out;
    }
    sqlite3_bind_text(st, 1, key.data, (int)key.len, SQLITE_TRANSIENT);
    bind_text(st, 2, e->address);
    bind_text(st, 3, suppress_class_name(e->class));
    bind_text(st, 4, e->rule);
    bind_text(st, 5, e->campaign);
    sqlite3_bind_int64(st, 6, e->time);
    bind_text(st, 7, e->source);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)hash_of(d, key.data, key.len));
    rc = sqlite3_step(st) == SQLITE_DONE
             ? 0
             : db_fail(d, err, "cannot add to the suppression database");
out:
    sqlite3_finalize(st);
    buf_free(&key);
    return rc;
}

int suppressdb_remove(struct suppressdb *d, const char *address, bool *removed,
                      struct blast_error *err)
{
    struct buf key = BUF_INIT;
    sqlite3_stmt *st = NULL;
    int rc;

    *removed = false;
    if ((rc = key_of(address, &key, err)) < 0)
        goto out;
    if (sqlite3_prepare_v2(d->db, "DELETE FROM suppression WHERE key = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(d, err, "cannot remove from the suppression database");
        goto out;
    }
    sqlite3_bind_text(st, 1, key.data, (int)key.len, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(d, err, "cannot remove from the suppression database");
        goto out;
    }
    *removed = sqlite3_changes(d->db) > 0;
out:
    sqlite3_finalize(st);
    buf_free(&key);
    return rc;
}

/* The entry of the statement's current row (columns as in SELECT_ENTRY). */
#define SELECT_ENTRY "SELECT address, class, rule, campaign, time, source FROM suppression"

static void entry_of(sqlite3_stmt *st, struct suppress_entry *e)
{
    int c = suppress_class_parse((const char *)sqlite3_column_text(st, 1));

    e->address = (const char *)sqlite3_column_text(st, 0);
    e->class = c >= 0 ? (enum suppress_class)c : SUPPRESS_MANUAL;
    e->rule = (const char *)sqlite3_column_text(st, 2);
    e->campaign = (const char *)sqlite3_column_text(st, 3);
    e->time = sqlite3_column_int64(st, 4);
    e->source = (const char *)sqlite3_column_text(st, 5);
}

int suppressdb_find_key(struct suppressdb *d, const char *key, size_t len,
                        int (*fn)(void *arg, const struct suppress_entry *e), void *arg,
                        struct blast_error *err)
{
    struct suppress_entry e;
    int rc = 0, step;

    /* prepared once: a send may look up many rows */
    if (d->find == NULL &&
        sqlite3_prepare_v2(d->db, SELECT_ENTRY " WHERE key = ?", -1, &d->find, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    sqlite3_bind_text(d->find, 1, key, (int)len, SQLITE_TRANSIENT);
    step = sqlite3_step(d->find);
    if (step == SQLITE_ROW) {
        entry_of(d->find, &e);
        rc = fn != NULL ? fn(arg, &e) : 0;
        rc = rc < 0 ? rc : 1;
    } else if (step != SQLITE_DONE) {
        rc = db_fail(d, err, "cannot read the suppression database");
    }
    sqlite3_reset(d->find);
    sqlite3_clear_bindings(d->find);
    return rc;
}

int suppressdb_find(struct suppressdb *d, const char *address,
                    int (*fn)(void *arg, const struct suppress_entry *e), void *arg,
                    struct blast_error *err)
{
    struct buf key = BUF_INIT;
    int rc;

    if ((rc = key_of(address, &key, err)) == 0)
        rc = suppressdb_find_key(d, key.data, key.len, fn, arg, err);
    buf_free(&key);
    return rc;
}

int suppressdb_each(struct suppressdb *d, int (*fn)(void *arg, const struct suppress_entry *e),
                    void *arg, struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    struct suppress_entry e;
    int rc = 0, step = SQLITE_DONE;

    if (sqlite3_prepare_v2(d->db, SELECT_ENTRY " ORDER BY key", -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        entry_of(st, &e);
        rc = fn(arg, &e);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(d, err, "cannot read the suppression database");
    sqlite3_finalize(st);
    return rc;
}

const uint8_t *suppressdb_hash_key(const struct suppressdb *d)
{
    return d->hash_key;
}

int suppressdb_hashes(struct suppressdb *d, int (*fn)(void *arg, uint64_t h), void *arg,
                      struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, step = SQLITE_DONE;

    /* the index on hash covers the query: the entries themselves are not read */
    if (sqlite3_prepare_v2(d->db, "SELECT hash FROM suppression INDEXED BY suppression_hash", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(arg, (uint64_t)sqlite3_column_int64(st, 0));
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(d, err, "cannot read the suppression database");
    sqlite3_finalize(st);
    return rc;
}

int suppressdb_count(struct suppressdb *d, size_t *out, struct blast_error *err)
{
    int n = 0, rc;

    *out = 0;
    if ((rc = query_int(d, "SELECT count(*) FROM suppression INDEXED BY suppression_hash", &n,
                        err)) < 0)
        return rc;
    *out = (size_t)n;
    return 0;
}

int suppressdb_begin(struct suppressdb *d, struct blast_error *err)
{
    return sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : db_fail(d, err, "cannot write to the suppression database");
}

int suppressdb_commit(struct suppressdb *d, struct blast_error *err)
{
    return sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : db_fail(d, err, "cannot write to the suppression database");
}

void suppressdb_rollback(struct suppressdb *d)
{
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
}

int suppressdb_event_add(struct suppressdb *d, const struct suppress_event *e,
                         struct blast_error *err)
{
    struct buf key = BUF_INIT;
    int rc;

    if ((rc = key_of(e->address, &key, err)) < 0)
        goto out;
    if (d->event_add == NULL &&
        sqlite3_prepare_v2(d->db,
                           "INSERT INTO event (time, key, address, campaign, row, kind, class, "
                           "rule, status, diagnostic, source, via, action) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &d->event_add, NULL) != SQLITE_OK) {
        rc = db_fail(d, err, "cannot add to the suppression database");
        goto out;
    }
    sqlite3_bind_int64(d->event_add, 1, e->time);
    sqlite3_bind_text(d->event_add, 2, key.data, (int)key.len, SQLITE_TRANSIENT);
    bind_text(d->event_add, 3, e->address);
    bind_text(d->event_add, 4, e->campaign);
    if (e->row > 0)
        sqlite3_bind_int64(d->event_add, 5, (sqlite3_int64)e->row);
    else
        sqlite3_bind_null(d->event_add, 5);
    bind_text(d->event_add, 6, e->kind);
    bind_text(d->event_add, 7, e->class_name);
    bind_text(d->event_add, 8, e->rule);
    bind_text(d->event_add, 9, e->status);
    bind_text(d->event_add, 10, e->diagnostic);
    bind_text(d->event_add, 11, e->source);
    bind_text(d->event_add, 12, e->via);
    bind_text(d->event_add, 13, e->action);
    rc = sqlite3_step(d->event_add) == SQLITE_DONE
             ? 0
             : db_fail(d, err, "cannot add to the suppression database");
    sqlite3_reset(d->event_add);
    sqlite3_clear_bindings(d->event_add);
out:
    buf_free(&key);
    return rc;
}

int suppressdb_event_count(struct suppressdb *d, const char *address, const char *class_name,
                           int64_t since, size_t *out, struct blast_error *err)
{
    struct buf key = BUF_INIT;
    sqlite3_stmt *st = NULL;
    int rc;

    *out = 0;
    if ((rc = key_of(address, &key, err)) < 0)
        goto out;
    if (sqlite3_prepare_v2(d->db,
                           "SELECT count(*) FROM event WHERE key = ? AND class = ? AND time >= ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(d, err, "cannot read the suppression database");
        goto out;
    }
    sqlite3_bind_text(st, 1, key.data, (int)key.len, SQLITE_TRANSIENT);
    bind_text(st, 2, class_name);
    sqlite3_bind_int64(st, 3, since);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = (size_t)sqlite3_column_int64(st, 0);
    else
        rc = db_fail(d, err, "cannot read the suppression database");
out:
    sqlite3_finalize(st);
    buf_free(&key);
    return rc;
}

int suppressdb_events(struct suppressdb *d, const char *campaign,
                      int (*fn)(void *arg, const struct suppress_event *e), void *arg,
                      struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    struct suppress_event e;
    int rc = 0, step = SQLITE_DONE;

    if (sqlite3_prepare_v2(d->db,
                           "SELECT time, address, campaign, row, kind, class, rule, status, "
                           "diagnostic, source, via, action FROM event WHERE campaign = ? "
                           "ORDER BY row, time, id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    bind_text(st, 1, campaign);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        e.time = sqlite3_column_int64(st, 0);
        e.address = (const char *)sqlite3_column_text(st, 1);
        e.campaign = (const char *)sqlite3_column_text(st, 2);
        e.row = (uint64_t)sqlite3_column_int64(st, 3);
        e.kind = (const char *)sqlite3_column_text(st, 4);
        e.class_name = (const char *)sqlite3_column_text(st, 5);
        e.rule = (const char *)sqlite3_column_text(st, 6);
        e.status = (const char *)sqlite3_column_text(st, 7);
        e.diagnostic = (const char *)sqlite3_column_text(st, 8);
        e.source = (const char *)sqlite3_column_text(st, 9);
        e.via = (const char *)sqlite3_column_text(st, 10);
        e.action = (const char *)sqlite3_column_text(st, 11);
        rc = fn(arg, &e);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(d, err, "cannot read the suppression database");
    sqlite3_finalize(st);
    return rc;
}

int suppressdb_intake_find(struct suppressdb *d, const char *digest, char *result, size_t size,
                           struct blast_error *err)
{
    int rc = 0, step;

    if (d->intake_find == NULL &&
        sqlite3_prepare_v2(d->db, "SELECT result FROM intake WHERE digest = ?", -1, &d->intake_find,
                           NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    sqlite3_bind_text(d->intake_find, 1, digest, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(d->intake_find);
    if (step == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(d->intake_find, 0);
        if (result != NULL && size > 0)
            snprintf(result, size, "%s", r != NULL ? r : "");
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = db_fail(d, err, "cannot read the suppression database");
    }
    sqlite3_reset(d->intake_find);
    sqlite3_clear_bindings(d->intake_find);
    return rc;
}

int suppressdb_intake_add(struct suppressdb *d, const struct suppress_intake *m,
                          struct blast_error *err)
{
    int rc;

    if (d->intake_add == NULL &&
        sqlite3_prepare_v2(d->db,
                           "INSERT OR REPLACE INTO intake (digest, time, mailbox, uid, "
                           "message_id, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           -1, &d->intake_add, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot add to the suppression database");
    bind_text(d->intake_add, 1, m->digest);
    sqlite3_bind_int64(d->intake_add, 2, m->time);
    bind_text(d->intake_add, 3, m->mailbox);
    bind_text(d->intake_add, 4, m->uid);
    bind_text(d->intake_add, 5, m->message_id);
    bind_text(d->intake_add, 6, m->result);
    bind_text(d->intake_add, 7, m->detail);
    rc = sqlite3_step(d->intake_add) == SQLITE_DONE
             ? 0
             : db_fail(d, err, "cannot add to the suppression database");
    sqlite3_reset(d->intake_add);
    sqlite3_clear_bindings(d->intake_add);
    return rc;
}

int suppressdb_pending(struct suppressdb *d, const char *mailbox, const char *uid, bool add,
                       struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(d->db,
                           add ? "INSERT OR IGNORE INTO intake_pending VALUES (?, ?)"
                               : "DELETE FROM intake_pending WHERE mailbox = ? AND uid = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot write to the suppression database");
    bind_text(st, 1, mailbox);
    bind_text(st, 2, uid);
    rc = sqlite3_step(st) == SQLITE_DONE
             ? 0
             : db_fail(d, err, "cannot write to the suppression database");
    sqlite3_finalize(st);
    return rc;
}

int suppressdb_pending_each(struct suppressdb *d, const char *mailbox,
                            int (*fn)(void *arg, const char *uid), void *arg,
                            struct blast_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, step = SQLITE_DONE;

    if (sqlite3_prepare_v2(d->db, "SELECT uid FROM intake_pending WHERE mailbox = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(d, err, "cannot read the suppression database");
    bind_text(st, 1, mailbox);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(arg, (const char *)sqlite3_column_text(st, 0));
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(d, err, "cannot read the suppression database");
    sqlite3_finalize(st);
    return rc;
}
