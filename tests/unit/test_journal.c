/*
 * test_journal - the append-only journal of a campaign, in scratch directories under
 * /tmp: creating it, the state of each row after reopening (final, deferred,
 * unknown) and its attempts, a torn last record cut off, a damaged record in the
 * middle refused with its place, the campaign's hash (and --force, --fresh), the
 * lock, CRC-32, journal_each's report entries, and journal_sync (also from threads).
 */
#include "../../core/journal.h"
#include "../../core/outcome.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HASH_A "9f2c6e1d0b7a43558e0c1f2d3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"
#define HASH_B "0000000000000000000000000000000000000000000000000000000000000001"

/* A journal path in a fresh scratch directory. */
static void scratch_journal(char *path, size_t size)
{
    snprintf(path, size, "%s/campaign.journal", scratch_make());
}

/* ---- what the log says ------------------------------------------------------------------- */

static char logged[4096];

static void capture(void *arg, enum log_level level, const char *message)
{
    size_t n = strlen(logged);

    (void)arg;
    snprintf(logged + n, sizeof logged - n, "%s: %s\n", log_level_name(level), message);
}

static const struct log capture_log = {capture, NULL, LOG_LEVEL_DEBUG};

/* ---- opening ------------------------------------------------------------------------------- */

static struct journal_options options(const char *hash)
{
    struct journal_options o;

    memset(&o, 0, sizeof o);
    o.hash = hash;
    o.durable = false;
    o.lock = true;
    o.log = &capture_log;
    return o;
}

static struct journal *open_with(const char *path, const struct journal_options *o)
{
    struct journal *j = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(journal_open(path, o, &j, &err), 0, "%s: %s", path, err.text);
    cr_assert_not_null(j);
    return j;
}

static struct journal *open_ok(const char *path)
{
    struct journal_options o = options(HASH_A);

    return open_with(path, &o);
}

/* A durable journal (its own thread writes and syncs) at a new scratch path. */
static struct journal *open_durable(char *path, size_t size)
{
    struct journal_options o = options(HASH_A);

    scratch_journal(path, size);
    o.durable = true;
    return open_with(path, &o);
}

/* Open expected to fail with code; the error is left in err. */
static void open_fails(const char *path, const struct journal_options *o, int code,
                       struct blast_error *err)
{
    struct journal *j = (struct journal *)&j; /* journal_open must set it to NULL */

    blast_error_clear(err);
    cr_assert_eq(journal_open(path, o, &j, err), code, "%s: %s", path, err->text);
    cr_assert_null(j, "a failed open leaves no journal");
    cr_assert_eq(err->code, code);
}

/* ---- writing ------------------------------------------------------------------------------- */

/* An outcome as its JSON (a new reference), as the journal and the report write it. */
static json_t *as_json(const struct outcome *o)
{
    struct buf b = BUF_INIT;
    json_error_t jerr;
    json_t *v;

    cr_assert_eq(outcome_format_json(o, false, &b), 0);
    v = json_loadb(b.data, b.len, 0, &jerr);
    cr_assert_not_null(v, "%s: %s", jerr.text, b.data);
    buf_free(&b);
    return v;
}

/* A recipient's outcome with replies that fit its status (free with outcome_free). */
static void fill(struct outcome *e, size_t row, const char *email, enum outcome_status status,
                 int attempts)
{
    const char *reply = NULL, *enhanced = "";

    outcome_init(e);
    e->row = row;
    e->status = status;
    e->attempts = attempts;
    if (status == OUTCOME_DELIVERED) {
        e->code = 250;
        enhanced = "2.0.0";
        reply = "Ok: queued as ABC123";
        e->step = SMTP_END_OF_DATA;
        cr_assert_eq(outcome_set(&e->queue_id, "ABC123"), 0);
    } else if (status == OUTCOME_DEFERRED) {
        e->code = 451;
        enhanced = "4.3.0";
        reply = "try again later";
        e->step = SMTP_RCPT;
    } else if (status == OUTCOME_FAILED) {
        e->code = 550;
        enhanced = "5.1.1";
        reply = "no such user";
        e->step = SMTP_RCPT;
    }
    snprintf(e->enhanced, sizeof e->enhanced, "%s", enhanced);
    cr_assert_eq(outcome_set(&e->email, email), 0);
    cr_assert_eq(outcome_set(&e->reply, reply), 0);
    cr_assert_eq(outcome_set(&e->relay, attempts > 0 ? "primary" : NULL), 0);
    if (attempts > 0) {
        char mid[64];
        /* the message of its last attempt, as sending_ok() names it */
        snprintf(mid, sizeof mid, "<%zu.%d@acme.example>", row, attempts);
        cr_assert_eq(outcome_set(&e->message_id, mid), 0);
        e->size = 2048;
        e->first.sec = 1700000000;
        e->last.sec = 1700000000 + attempts;
    }
}

/* A report entry as the report writes it (a new reference). */
static json_t *entry(size_t row, const char *email, enum outcome_status status, int attempts)
{
    struct outcome e;
    json_t *o;

    fill(&e, row, email, status, attempts);
    o = as_json(&e);
    outcome_free(&e);
    return o;
}

/* The row's last result as JSON (a new reference), or NULL when it has none. */
static json_t *result_json(struct journal *j, size_t row)
{
    struct outcome o;
    struct blast_error err;
    json_t *v;
    int rc;

    blast_error_clear(&err);
    rc = journal_result(j, row, &o, &err);
    cr_assert_geq(rc, 0, "%s", err.text);
    if (rc == 0)
        return NULL;
    v = as_json(&o);
    outcome_free(&o);
    return v;
}

static void sending_ok(struct journal *j, size_t row, const char *email, int attempt)
{
    struct blast_error err;
    char mid[64];

    snprintf(mid, sizeof mid, "<%zu.%d@acme.example>", row, attempt);
    blast_error_clear(&err);
    cr_assert_eq(journal_sending(j, row, email, mid, attempt, "primary", NULL, &err), 0, "%s",
                 err.text);
}

static void record_ok(struct journal *j, size_t row, const char *email, enum outcome_status status,
                      int attempts)
{
    struct blast_error err;
    struct outcome e;

    fill(&e, row, email, status, attempts);
    blast_error_clear(&err);
    cr_assert_eq(journal_record(j, &e, &err), 0, "%s", err.text);
    outcome_free(&e);
}

static void sync_ok(struct journal *j)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(journal_sync(j, &err), 0, "%s", err.text);
}

/* ---- the file ------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spew(const char *path, const char *data, size_t len, const char *mode)
{
    FILE *f = fopen(path, mode);

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static size_t file_size(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return (size_t)st.st_size;
}

/*
 * Check that the file is made of whole records "CRC32 JSON\n" with the right CRCs;
 * returns them as a JSON array (a new reference).
 */
static json_t *records(const char *path)
{
    size_t len, at = 0, lineno = 0;
    char *b = slurp(path, &len);
    json_t *all = json_array();

    cr_assert_not_null(all);
    while (at < len) {
        char *nl = memchr(b + at, '\n', len - at), *end;
        size_t n;
        unsigned long crc;
        json_error_t jerr;
        json_t *rec;

        lineno++;
        cr_assert_not_null(nl, "%s: record %zu has no line end", path, lineno);
        n = (size_t)(nl - (b + at));
        cr_assert_gt(n, 9, "%s: record %zu is too short", path, lineno);
        cr_assert_eq(b[at + 8], ' ', "%s: record %zu: no space after the CRC", path, lineno);
        crc = strtoul(b + at, &end, 16);
        cr_assert_eq(end, b + at + 8, "%s: record %zu: the CRC is not 8 hex digits", path, lineno);
        cr_assert_eq(crc, journal_crc32(b + at + 9, n - 9), "%s: record %zu: wrong CRC", path,
                     lineno);
        rec = json_loadb(b + at + 9, n - 9, 0, &jerr);
        cr_assert_not_null(rec, "%s: record %zu: %s", path, lineno, jerr.text);
        cr_assert(json_is_object(rec));
        json_array_append_new(all, rec);
        at += n + 1;
    }
    free(b);
    return all;
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    cr_assert(json_is_string(v), "'%s' is not a string", key);
    return json_string_value(v);
}

static json_int_t int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    cr_assert(json_is_integer(v), "'%s' is not an integer", key);
    return json_integer_value(v);
}

/* Offset of the start of line n (1-based) in b. */
static size_t line_start(const char *b, size_t len, size_t n)
{
    size_t at = 0;

    while (--n > 0) {
        const char *nl = memchr(b + at, '\n', len - at);
        cr_assert_not_null(nl);
        at = (size_t)(nl - b) + 1;
    }
    return at;
}

/* Rows 1 delivered, 2 deferred twice, 3 on its way without a result, 5 invalid. */
static void write_four_rows(struct journal *j)
{
    sending_ok(j, 1, "ada@example.com", 1);
    sync_ok(j);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);

    sending_ok(j, 2, "grace@example.org", 1);
    record_ok(j, 2, "grace@example.org", OUTCOME_DEFERRED, 1);
    sending_ok(j, 2, "grace@example.org", 2);
    record_ok(j, 2, "grace@example.org", OUTCOME_DEFERRED, 2);

    sending_ok(j, 3, "alan@example.net", 1);
    sync_ok(j);

    record_ok(j, 5, "not-an-address", OUTCOME_INVALID, 0);
}

/* ---- opening ------------------------------------------------------------------------------- */

Test(journal, open_creates_the_file_and_its_directory, .fini = scratch_remove)
{
    char path[256], lock[270];
    struct journal *j;
    struct stat st;
    json_t *recs, *run;
    int attempts = -1;

    snprintf(path, sizeof path, "%s/.blast/deep/er/campaign.journal", scratch_make());
    j = open_ok(path);
    cr_assert_eq(stat(path, &st), 0, "the journal exists");
    cr_assert(S_ISREG(st.st_mode));
    snprintf(lock, sizeof lock, "%s.lock", path);
    cr_assert_eq(stat(lock, &st), 0, "the lock file exists");
    cr_assert_eq(journal_done_before(j), 0);
    cr_assert_eq(journal_state(j, 1, &attempts), JOURNAL_NONE);
    cr_assert_eq(attempts, 0);
    cr_assert_null(result_json(j, 1));
    journal_close(j);

    /* one record: the run, with the campaign's hash and a time */
    recs = records(path);
    cr_assert_eq(json_array_size(recs), 1);
    run = json_array_get(recs, 0);
    cr_assert_str_eq(str_at(run, "t"), "run");
    cr_assert_str_eq(str_at(run, "hash"), HASH_A);
    cr_assert_eq(strlen(str_at(run, "time")), strlen("2026-11-22T16:30:42.174Z"));
    json_decref(recs);
}

Test(journal, its_files_and_directories_are_private, .fini = scratch_remove)
{
    static const char *const made[] = {".blast", ".blast/deep", ".blast/deep/campaign.journal",
                                       ".blast/deep/campaign.journal.lock"};
    char path[256], p[300];
    struct journal *j;
    struct stat st;
    size_t i;

    /* a umask that would let anyone read them */
    umask(0);
    snprintf(path, sizeof path, "%s/.blast/deep/campaign.journal", scratch_make());
    j = open_ok(path);
    journal_close(j);
    for (i = 0; i < sizeof made / sizeof made[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", scratch_dir, made[i]);
        cr_assert_eq(stat(p, &st), 0, "%s", p);
        cr_expect_eq(st.st_mode & 07777, S_ISDIR(st.st_mode) ? 0700 : 0600, "%s: %o", made[i],
                     st.st_mode & 07777);
    }
}

Test(journal, every_open_records_a_run, .fini = scratch_remove)
{
    char path[128];
    json_t *recs;
    size_t i;

    scratch_journal(path, sizeof path);
    for (i = 0; i < 3; i++)
        journal_close(open_ok(path));
    recs = records(path);
    cr_assert_eq(json_array_size(recs), 3);
    for (i = 0; i < 3; i++)
        cr_assert_str_eq(str_at(json_array_get(recs, i), "t"), "run");
    json_decref(recs);
}

Test(journal, close_accepts_null)
{
    journal_close(NULL);
    journal_discard(NULL);
}

Test(journal, discard_removes_the_file, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    journal_discard(j);
    cr_assert_neq(access(path, F_OK), 0, "the journal is gone");
}

/* ---- states ------------------------------------------------------------------------------- */

Test(journal, states_follow_the_last_record_in_this_run, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    int attempts;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    sending_ok(j, 7, "ada@example.com", 1);
    cr_assert_eq(journal_state(j, 7, &attempts), JOURNAL_SENDING);
    cr_assert_eq(attempts, 1);
    record_ok(j, 7, "ada@example.com", OUTCOME_DEFERRED, 1);
    cr_assert_eq(journal_state(j, 7, &attempts), JOURNAL_DEFERRED);
    cr_assert_eq(attempts, 1);
    sending_ok(j, 7, "ada@example.com", 2);
    cr_assert_eq(journal_state(j, 7, &attempts), JOURNAL_SENDING);
    cr_assert_eq(attempts, 2);
    record_ok(j, 7, "ada@example.com", OUTCOME_DELIVERED, 2);
    cr_assert_eq(journal_state(j, 7, &attempts), JOURNAL_FINAL);
    cr_assert_eq(attempts, 2);
    cr_assert_eq(journal_state(j, 6, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_state(j, 100000, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_done_before(j), 0, "nothing from earlier runs");
    journal_close(j);
}

Test(journal, states_and_attempts_after_reopening, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    enum journal_state st;
    int attempts;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_four_rows(j);
    journal_close(j);

    j = open_ok(path);
    cr_assert_eq(journal_state(j, 1, &attempts), JOURNAL_FINAL, "delivered is final");
    cr_assert_eq(attempts, 1);
    cr_assert_eq(journal_state(j, 2, &attempts), JOURNAL_DEFERRED);
    cr_assert_eq(attempts, 2);
    /* a sending without a result: may have gone, neither final, deferred nor new */
    st = journal_state(j, 3, &attempts);
    cr_assert(st == JOURNAL_UNKNOWN || st == JOURNAL_SENDING, "row 3 is in state %d", (int)st);
    cr_assert_eq(attempts, 1);
    cr_assert_eq(journal_state(j, 4, &attempts), JOURNAL_NONE);
    cr_assert_eq(attempts, 0);
    cr_assert_eq(journal_state(j, 5, &attempts), JOURNAL_FINAL, "invalid is final");
    cr_assert_eq(attempts, 0);
    journal_close(j);
}

/*
 * journal.h: "a 'sending' with no result after it means the message may have gone:
 * unknown", and JOURNAL_SENDING is for this run only.
 */
Test(journal, sending_without_result_is_unknown_after_reopening, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    int attempts;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    sending_ok(j, 3, "alan@example.net", 1);
    journal_close(j);

    j = open_ok(path);
    cr_assert_eq(journal_state(j, 3, &attempts), JOURNAL_UNKNOWN);
    cr_assert_eq(attempts, 1);
    journal_close(j);
}

Test(journal, every_final_status_is_final, .fini = scratch_remove)
{
    static const enum outcome_status finals[] = {OUTCOME_DELIVERED, OUTCOME_FAILED, OUTCOME_INVALID,
                                                 OUTCOME_DUPLICATE, OUTCOME_SUPPRESSED};
    char path[128];
    struct journal *j;
    size_t i, n = sizeof finals / sizeof finals[0];

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    for (i = 0; i < n; i++)
        record_ok(j, i + 1, "x@example.com", finals[i], 1);
    record_ok(j, n + 1, "x@example.com", OUTCOME_UNKNOWN, 1);
    journal_close(j);

    j = open_ok(path);
    for (i = 0; i < n; i++)
        cr_assert_eq(journal_state(j, i + 1, NULL), JOURNAL_FINAL, "%s",
                     outcome_status_name(finals[i]));
    cr_assert_eq(journal_state(j, n + 1, NULL), JOURNAL_UNKNOWN, "an explicit unknown");
    journal_close(j);
}

Test(journal, result_is_the_report_entry, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    json_t *want = entry(1, "ada@example.com", OUTCOME_DELIVERED, 1), *got;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    got = result_json(j, 1);
    cr_assert_not_null(got);
    cr_assert(json_equal(got, want), "in this run: %s", json_dumps(got, JSON_COMPACT));
    json_decref(got);
    journal_close(j);

    j = open_ok(path);
    got = result_json(j, 1);
    cr_assert_not_null(got);
    cr_assert_null(json_object_get(got, "t"), "the record's type is not part of the entry");
    cr_assert(json_equal(got, want), "after reopening: %s", json_dumps(got, JSON_COMPACT));
    json_decref(got);
    cr_assert_null(result_json(j, 2));
    journal_close(j);
    json_decref(want);
}

Test(journal, done_before_counts_the_rows_of_earlier_runs, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    cr_assert_eq(journal_done_before(j), 0);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    record_ok(j, 2, "grace@example.org", OUTCOME_DEFERRED, 1);
    record_ok(j, 4, "alan@example.net", OUTCOME_FAILED, 1);
    record_ok(j, 4, "alan@example.net", OUTCOME_FAILED, 2); /* the same row again */
    cr_assert_eq(journal_done_before(j), 0, "this run's records do not count");
    journal_close(j);

    j = open_ok(path);
    cr_assert_eq(journal_done_before(j), 3);
    record_ok(j, 3, "edsger@example.com", OUTCOME_DELIVERED, 1);
    record_ok(j, 2, "grace@example.org", OUTCOME_DELIVERED, 2);
    cr_assert_eq(journal_done_before(j), 3);
    journal_close(j);

    j = open_ok(path);
    cr_assert_eq(journal_done_before(j), 4);
    journal_close(j);
}

/* ---- a torn last record ----------------------------------------------------------------- */

Test(journal, torn_last_record_is_cut_off, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    size_t len, cut, len2;
    char *before, *after;
    json_t *recs;
    int attempts;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_four_rows(j);
    record_ok(j, 4, "edsger@example.com", OUTCOME_DELIVERED, 1); /* the one to tear */
    journal_close(j);

    recs = records(path);
    before = slurp(path, &len);
    /* where the last record starts; then tear it */
    cut = line_start(before, len, json_array_size(recs));
    json_decref(recs);
    cr_assert_eq(truncate(path, (off_t)(len - 5)), 0);

    logged[0] = '\0';
    j = open_ok(path);
    cr_assert_not_null(strstr(logged, "torn"), "a warning: %s", logged);
    cr_assert_eq(journal_state(j, 4, &attempts), JOURNAL_NONE, "the torn record is gone");
    cr_assert_eq(journal_state(j, 1, &attempts), JOURNAL_FINAL, "earlier records survive");
    cr_assert_eq(journal_state(j, 2, &attempts), JOURNAL_DEFERRED);
    cr_assert_eq(attempts, 2);
    cr_assert_eq(journal_state(j, 5, &attempts), JOURNAL_FINAL);
    journal_close(j);

    /* the file: what came before the torn record, then this run's record, all whole */
    after = slurp(path, &len2);
    cr_assert_eq(memcmp(before, after, cut), 0, "the records before it are untouched");
    recs = records(path);
    cr_assert_str_eq(str_at(json_array_get(recs, json_array_size(recs) - 1), "t"), "run");
    cr_assert_eq(line_start(after, len2, json_array_size(recs)), cut,
                 "this run's record starts where the torn one did");
    json_decref(recs);
    free(before);
    free(after);
}

Test(journal, torn_record_of_a_single_byte_is_cut_off, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    size_t len;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    journal_close(j);
    len = file_size(path);
    spew(path, "3", 1, "ab");

    j = open_ok(path);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL);
    journal_close(j);
    json_decref(records(path));
    cr_assert_gt(file_size(path), len);
}

Test(journal, garbage_without_a_line_end_is_cut_off, .fini = scratch_remove)
{
    static const char garbage[] = "5c1a0e3f {\"t\":\"result\",\"row\":9,\"status\":\"deli";
    char path[128];
    struct journal *j;
    json_t *recs;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_four_rows(j);
    journal_close(j);
    spew(path, garbage, strlen(garbage), "ab");

    logged[0] = '\0';
    j = open_ok(path);
    cr_assert_not_null(strstr(logged, "torn"), "a warning: %s", logged);
    cr_assert_eq(journal_state(j, 9, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(j, 2, NULL), JOURNAL_DEFERRED);
    record_ok(j, 9, "x@example.com", OUTCOME_DELIVERED, 1);
    journal_close(j);

    /* whole records only, the garbage gone; and it opens again without complaint */
    recs = records(path);
    json_decref(recs);
    logged[0] = '\0';
    j = open_ok(path);
    cr_assert_null(strstr(logged, "torn"), "%s", logged);
    cr_assert_eq(journal_state(j, 9, NULL), JOURNAL_FINAL);
    journal_close(j);
}

Test(journal, damaged_whole_last_line_is_cut_off_too, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    journal_close(j);
    spew(path, "not a record\n", 13, "ab");

    j = open_ok(path);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL);
    journal_close(j);
    json_decref(records(path));
}

/* ---- a damaged record in the middle --------------------------------------------------------- */

/* Flip one byte of line n (at column col, 0-based), check the open is refused. */
static void check_damaged(size_t n, size_t col)
{
    char path[128], where[160], msg[2048];
    struct journal *j;
    struct journal_options o = options(HASH_A);
    struct blast_error err;
    size_t len, at, len2;
    char *b, *after;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_four_rows(j);
    journal_close(j);

    b = slurp(path, &len);
    at = line_start(b, len, n) + col;
    cr_assert_neq(b[at], '\n');
    b[at] ^= 0x01;
    spew(path, b, len, "wb");

    open_fails(path, &o, BLAST_EINVAL, &err);
    cr_assert_str_eq(err.source, path, "the message names the file");
    cr_assert_eq(err.line, (int)n, "the message names line %zu, not %d", n, err.line);
    snprintf(where, sizeof where, "record %zu", n);
    cr_assert_not_null(strstr(err.text, where), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "damaged"), "%s", err.text);
    blast_error_format(&err, msg, sizeof msg);
    snprintf(where, sizeof where, "%s:%zu", path, n);
    cr_assert_not_null(strstr(msg, where), "%s", msg);

    /* nothing is cut, nothing is added */
    after = slurp(path, &len2);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(after, b, len), 0);
    free(after);
    free(b);
}

Test(journal, damaged_record_in_the_middle_is_refused_with_its_place, .fini = scratch_remove)
{
    check_damaged(3, 20); /* in the JSON of row 1's result */
}

Test(journal, damaged_crc_in_the_middle_is_refused_with_its_place, .fini = scratch_remove)
{
    check_damaged(4, 2); /* in the CRC of row 2's first sending */
}

Test(journal, damaged_first_record_is_refused, .fini = scratch_remove)
{
    check_damaged(1, 12); /* the run record */
}

/* A record as the journal writes it: its CRC, a space, its JSON, a newline. */
static void append_record(const char *path, const char *json)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%08lx %s\n", journal_crc32(json, strlen(json)), json);

    cr_assert(n > 0 && (size_t)n < sizeof line);
    spew(path, line, (size_t)n, "ab");
}

/*
 * A record whose checksum holds but whose JSON a strict reader refuses (a lone
 * surrogate, as jansson refused it) is damaged; what a strict reader takes is read
 * back, escapes decoded.
 */
Test(journal, records_are_read_as_strictly_as_jansson_read_them, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_A);
    struct blast_error err;
    struct outcome out;
    int attempts;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    journal_close(j);
    append_record(path, "{\"t\":\"result\",\"email\":\"Zo\\u00eb\\ud83d\\ude00@x.example\","
                        "\"row\":1,\"status\":\"failed\",\"status\":\"delivered\",\"attempts\":2}");
    j = open_ok(path);
    cr_assert_eq(journal_state(j, 1, &attempts), JOURNAL_FINAL);
    cr_assert_eq(attempts, 2);
    blast_error_clear(&err);
    cr_assert_eq(journal_result(j, 1, &out, &err), 1, "%s", err.text);
    cr_assert_str_eq(out.email, "Zo\xc3\xab\xf0\x9f\x98\x80@x.example");
    cr_assert_eq(out.status, OUTCOME_DELIVERED, "of a key given twice, the last");
    outcome_free(&out);
    journal_close(j);

    append_record(path,
                  "{\"t\":\"result\",\"email\":\"\\ud800@x\",\"row\":2,\"status\":\"failed\"}");
    append_record(path, "{\"t\":\"result\",\"email\":\"c@x\",\"row\":3,\"status\":\"failed\"}");
    open_fails(path, &o, BLAST_EINVAL, &err);
    cr_assert_not_null(strstr(err.text, "damaged"), "%s", err.text);
    cr_assert_eq(err.line, 4, "after two runs and a result: %s", err.text);
}

/* ---- the campaign's hash ----------------------------------------------------------------------
 */

Test(journal, another_hash_is_refused_unless_forced, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_B);
    struct blast_error err;
    size_t len;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    journal_close(j);
    len = file_size(path);

    open_fails(path, &o, BLAST_EINVAL, &err);
    cr_assert_str_eq(err.source, path);
    cr_assert_not_null(strstr(err.text, "changed"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "--force"), "%s", err.text);
    cr_assert_eq(file_size(path), len, "a refused open writes nothing");

    /* the same hash still resumes */
    j = open_ok(path);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL);
    journal_close(j);

    o.force = true;
    j = open_with(path, &o);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL, "forced: what was done is kept");
    cr_assert_eq(journal_done_before(j), 1);
    journal_close(j);

    /* the forced run made the journal the changed campaign's: it resumes without --force */
    o.force = false;
    j = open_with(path, &o);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL);
    journal_close(j);
    /* and the campaign as it was before is now the changed one */
    o = options(HASH_A);
    open_fails(path, &o, BLAST_EINVAL, &err);
    cr_assert_not_null(strstr(err.text, "changed"), "%s", err.text);
}

/*
 * A journal holding the campaign's hash in its earlier form (before the fingerprint
 * named files relative to the campaign) resumes, and goes on with the new form.
 */
Test(journal, the_earlier_form_of_the_hash_resumes, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_B);
    struct blast_error err;

    scratch_journal(path, sizeof path);
    j = open_ok(path); /* HASH_A: what an earlier blast wrote */
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    journal_close(j);

    o.legacy_hash = HASH_A;
    j = open_with(path, &o);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_FINAL, "resumed, nothing forced");
    journal_close(j);
    /* that run was recorded with the new form: it alone resumes now */
    o.legacy_hash = NULL;
    j = open_with(path, &o);
    journal_close(j);
    o = options(HASH_A);
    open_fails(path, &o, BLAST_EINVAL, &err);
    cr_assert_not_null(strstr(err.text, "changed"), "%s", err.text);
}

Test(journal, fresh_forgets_what_the_file_holds, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_B);
    json_t *recs;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_four_rows(j);
    journal_close(j);

    o.fresh = true; /* even with another hash */
    j = open_with(path, &o);
    cr_assert_eq(journal_done_before(j), 0);
    cr_assert_eq(journal_state(j, 1, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_state(j, 2, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_state(j, 3, NULL), JOURNAL_NONE);
    cr_assert_null(result_json(j, 1));
    journal_close(j);

    recs = records(path);
    cr_assert_eq(json_array_size(recs), 1, "only the new run");
    cr_assert_str_eq(str_at(json_array_get(recs, 0), "hash"), HASH_B);
    json_decref(recs);

    /* the old hash is gone with the rest: the new one resumes */
    o.fresh = false;
    j = open_with(path, &o);
    cr_assert_eq(journal_done_before(j), 0);
    journal_close(j);
}

/* ---- the lock ------------------------------------------------------------------------------- */

Test(journal, lock_keeps_a_second_open_out_until_closed, .fini = scratch_remove)
{
    char path[128];
    struct journal *first, *second;
    struct journal_options o = options(HASH_A);
    struct blast_error err;
    size_t len;

    scratch_journal(path, sizeof path);
    first = open_ok(path);
    record_ok(first, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    len = file_size(path);

    open_fails(path, &o, BLAST_EIO, &err);
    cr_assert_not_null(strstr(err.text, "lock"), "%s", err.text);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(file_size(path), len, "the second open wrote nothing");

    /* the first is unharmed */
    record_ok(first, 2, "grace@example.org", OUTCOME_DELIVERED, 1);
    sync_ok(first);
    journal_close(first);

    second = open_with(path, &o);
    cr_assert_eq(journal_state(second, 1, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(second, 2, NULL), JOURNAL_FINAL);
    journal_close(second);
}

Test(journal, without_lock_a_second_open_is_not_refused, .fini = scratch_remove)
{
    char path[128];
    struct journal *first, *second;
    struct journal_options o = options(HASH_A);

    scratch_journal(path, sizeof path);
    first = open_ok(path);
    o.lock = false;
    second = open_with(path, &o);
    journal_close(second);
    journal_close(first);
}

/* ---- CRC-32 ---------------------------------------------------------------------------------- */

/* CRC-32 a bit at a time, as the standard defines it. */
static unsigned long crc_by_bits(const unsigned char *p, size_t len)
{
    unsigned long c = 0xFFFFFFFFUL;
    int k;

    while (len-- > 0) {
        c ^= *p++;
        for (k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320UL ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFUL;
}

Test(journal, crc32_agrees_with_the_definition_at_every_length_and_offset)
{
    unsigned char data[300];
    size_t i, off, len;

    for (i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    for (off = 0; off < 8; off++)
        for (len = 0; off + len <= sizeof data; len += len < 40 ? 1 : 37)
            cr_assert_eq(journal_crc32(data + off, len), crc_by_bits(data + off, len),
                         "offset %zu, %zu bytes", off, len);
}

Test(journal, crc32_check_values)
{
    cr_assert_eq(journal_crc32("123456789", 9), 0xCBF43926UL);
    cr_assert_eq(journal_crc32("", 0), 0);
    cr_assert_eq(journal_crc32("a", 1), 0xE8B7BE43UL);
    cr_assert_eq(journal_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414FA339UL);
}

/* ---- journal_each ---------------------------------------------------------------------------- */

struct visit {
    size_t rows[16];
    json_t *entries[16];
    size_t n;
    size_t stop_at; /* return an error at this row; 0: never */
};

static int visit(void *arg, const struct outcome *o, struct blast_error *err)
{
    struct visit *v = arg;
    size_t row = o->row;

    cr_assert_lt(v->n, 16);
    v->rows[v->n] = row;
    v->entries[v->n] = as_json(o);
    v->n++;
    if (row == v->stop_at)
        return blast_error_set(err, BLAST_EIO, "visit", 0, 0, "stop at row %zu", row);
    return 0;
}

static void visit_free(struct visit *v)
{
    size_t i;

    for (i = 0; i < v->n; i++)
        json_decref(v->entries[i]);
    memset(v, 0, sizeof *v);
}

static void check_each(struct journal *j)
{
    struct visit v;
    struct blast_error err;
    json_t *e, *want;

    memset(&v, 0, sizeof v);
    blast_error_clear(&err);
    cr_assert_eq(journal_each(j, 10, visit, &v, &err), 0, "%s", err.text);
    cr_assert_eq(v.n, 3, "rows 1, 3 and 5; %zu visited", v.n);
    cr_assert_eq(v.rows[0], 1);
    cr_assert_eq(v.rows[1], 3);
    cr_assert_eq(v.rows[2], 5);

    /* row 1: its last record, the delivered result, as the report's entry */
    want = entry(1, "ada@example.com", OUTCOME_DELIVERED, 2);
    cr_assert(json_equal(v.entries[0], want), "%s", json_dumps(v.entries[0], JSON_COMPACT));
    json_decref(want);

    /* row 3: a sending becomes an unknown entry */
    e = v.entries[1];
    cr_assert_null(json_object_get(e, "t"));
    cr_assert_str_eq(str_at(e, "status"), "unknown");
    cr_assert_eq(outcome_status_parse(str_at(e, "status")), OUTCOME_UNKNOWN);
    cr_assert_eq(int_at(e, "row"), 3);
    cr_assert_str_eq(str_at(e, "email"), "alan@example.net");
    cr_assert_eq(int_at(e, "attempts"), 1);
    cr_assert_str_eq(str_at(e, "message_id"), "<3.1@acme.example>");
    cr_assert_str_eq(str_at(e, "relay"), "primary");
    cr_assert(json_is_null(json_object_get(e, "code")));
    cr_assert(json_is_string(json_object_get(e, "detail")));
    cr_assert(json_is_string(json_object_get(e, "first_attempt")));

    /* row 5: deferred */
    cr_assert_str_eq(str_at(v.entries[2], "status"), "deferred");
    cr_assert_eq(int_at(v.entries[2], "row"), 5);
    visit_free(&v);

    /* only rows 1..rows */
    cr_assert_eq(journal_each(j, 4, visit, &v, &err), 0, "%s", err.text);
    cr_assert_eq(v.n, 2);
    cr_assert_eq(v.rows[1], 3);
    visit_free(&v);

    /* an error from fn stops it and is returned */
    v.stop_at = 3;
    cr_assert_eq(journal_each(j, 10, visit, &v, &err), BLAST_EIO);
    cr_assert_eq(v.n, 2);
    cr_assert_str_eq(err.text, "stop at row 3");
    visit_free(&v);
}

/* The records check_each() expects: written out of order, and row 1 twice. */
static void append_out_of_order(struct journal *j)
{
    sending_ok(j, 5, "grace@example.org", 1);
    record_ok(j, 5, "grace@example.org", OUTCOME_DEFERRED, 1);
    record_ok(j, 1, "ada@example.com", OUTCOME_DEFERRED, 1);
    sending_ok(j, 3, "alan@example.net", 1);
    sending_ok(j, 1, "ada@example.com", 2);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 2);
}

Test(journal, each_visits_rows_in_order_as_report_entries, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    append_out_of_order(j);
    check_each(j);
    journal_close(j);

    j = open_ok(path);
    check_each(j);
    journal_close(j);
}

/*
 * A durable journal's records are written by its own thread: what was appended a
 * moment ago may not be in the file yet, but journal_result() and journal_each()
 * read it back, and once they have, journal_state() shows it too.
 */
Test(journal, a_durable_journal_reads_back_what_was_just_appended, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    json_t *got;
    int attempts;

    j = open_durable(path, sizeof path);
    append_out_of_order(j); /* and no sync in between */
    got = result_json(j, 1);
    cr_assert_not_null(got);
    cr_assert_str_eq(str_at(got, "status"), "delivered");
    json_decref(got);
    cr_assert_eq(journal_state(j, 1, &attempts), JOURNAL_FINAL);
    cr_assert_eq(attempts, 2);
    check_each(j);
    journal_close(j);

    j = open_ok(path);
    check_each(j);
    journal_close(j);
}

static int count_entry(void *arg, const struct outcome *o, struct blast_error *err)
{
    size_t *n = arg;

    (void)err;
    cr_assert_eq(o->row, *n + 1, "rows in order, none skipped");
    (*n)++;
    return 0;
}

/*
 * journal_each() first thing after appending, as a run's summary does it: the rows
 * whose records the journal's thread has not written yet are visited too.
 */
Test(journal, each_on_a_durable_journal_visits_what_was_just_appended, .fini = scratch_remove)
{
    char path[128], addr[64];
    struct journal *j;
    struct blast_error err;
    size_t row, n = 0;

    j = open_durable(path, sizeof path);
    /* row 1 last: its record is the one most likely still in the writer's hands */
    for (row = 300; row >= 1; row--) {
        snprintf(addr, sizeof addr, "user%zu@example.com", row);
        record_ok(j, row, addr, OUTCOME_DEFERRED, 1);
    }
    blast_error_clear(&err);
    cr_assert_eq(journal_each(j, 300, count_entry, &n, &err), 0, "%s", err.text);
    cr_assert_eq(n, 300);
    journal_close(j);
}

Test(journal, each_of_an_empty_journal_visits_nothing, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct visit v;
    struct blast_error err;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    memset(&v, 0, sizeof v);
    blast_error_clear(&err);
    cr_assert_eq(journal_each(j, 1000, visit, &v, &err), 0, "%s", err.text);
    cr_assert_eq(v.n, 0);
    journal_close(j);
}

/* ---- journal_sync ---------------------------------------------------------------------------- */

Test(journal, sync_makes_records_durable, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    json_t *recs;

    j = open_durable(path, sizeof path);
    sync_ok(j); /* nothing new: fine */
    sending_ok(j, 1, "ada@example.com", 1);
    sync_ok(j);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    sync_ok(j);
    sync_ok(j);

    /* on disk while still open: the run, the sending, the result */
    recs = records(path);
    cr_assert_eq(json_array_size(recs), 3);
    cr_assert_str_eq(str_at(json_array_get(recs, 1), "t"), "sending");
    cr_assert_eq(int_at(json_array_get(recs, 1), "attempt"), 1);
    cr_assert_str_eq(str_at(json_array_get(recs, 2), "t"), "result");
    cr_assert_str_eq(str_at(json_array_get(recs, 2), "status"), "delivered");
    json_decref(recs);
    journal_close(j);
}

Test(journal, a_marked_sending_record_is_durable_once_waited_for, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_A);
    struct blast_error err;
    int64_t mark1 = -1, mark2 = -1;
    json_t *recs;

    j = open_durable(path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(
        journal_sending(j, 1, "ada@example.com", "<m1@acme.example>", 1, "primary", &mark1, &err),
        0, "%s", err.text);
    cr_assert_eq(
        journal_sending(j, 2, "bob@example.com", "<m2@acme.example>", 1, "primary", &mark2, &err),
        0, "%s", err.text);
    cr_assert_gt(mark1, 0);
    cr_assert_gt(mark2, mark1, "a later record ends further on");
    /* in any order, any number of times */
    cr_assert_eq(journal_wait_durable(j, mark2, &err), 0, "%s", err.text);
    cr_assert_eq(journal_wait_durable(j, mark1, &err), 0, "%s", err.text);
    cr_assert_eq(journal_wait_durable(j, mark2, &err), 0, "%s", err.text);
    cr_assert_eq(journal_state(j, 2, NULL), JOURNAL_SENDING);

    recs = records(path);
    cr_assert_eq(json_array_size(recs), 3, "the run and both sending records");
    cr_assert_str_eq(str_at(json_array_get(recs, 2), "message_id"), "<m2@acme.example>");
    json_decref(recs);
    journal_close(j);

    /* a journal that is not durable never makes anyone wait */
    o.durable = false;
    o.fresh = true;
    j = open_with(path, &o);
    cr_assert_eq(
        journal_sending(j, 1, "ada@example.com", "<m1@acme.example>", 1, "primary", &mark1, &err),
        0, "%s", err.text);
    cr_assert_eq(journal_wait_durable(j, mark1, &err), 0, "%s", err.text);
    journal_close(j);
}

/*
 * fdatasync() as the journal calls it, counted: this definition takes the place of
 * libc's in the test binary (core/ is linked in statically), and passes the call on
 * to the kernel.
 */
static int fdatasync_calls;

int fdatasync(int fd)
{
    __atomic_fetch_add(&fdatasync_calls, 1, __ATOMIC_SEQ_CST);
    return (int)syscall(SYS_fdatasync, fd);
}

/* The guarantee the crash semantics rest on: waited for, a record has been synced. */
Test(journal, a_record_waited_for_has_been_through_fdatasync, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_A);
    struct blast_error err;
    int64_t mark = -1;
    int before;

    j = open_durable(path, sizeof path);
    blast_error_clear(&err);
    before = __atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST);
    cr_assert_eq(
        journal_sending(j, 1, "ada@example.com", "<m1@acme.example>", 1, "primary", &mark, &err), 0,
        "%s", err.text);
    cr_assert_eq(journal_wait_durable(j, mark, &err), 0, "%s", err.text);
    cr_assert_gt(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST), before,
                 "journal_wait_durable() returned before any fdatasync()");
    before = __atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    sync_ok(j);
    cr_assert_gt(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST), before,
                 "journal_sync() returned before any fdatasync()");
    journal_close(j);

    /* a journal that is not durable (tests, dry runs) never syncs */
    o.durable = false;
    j = open_with(path, &o);
    before = __atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST);
    cr_assert_eq(
        journal_sending(j, 2, "bob@example.com", "<m2@acme.example>", 1, "primary", &mark, &err), 0,
        "%s", err.text);
    cr_assert_eq(journal_wait_durable(j, mark, &err), 0, "%s", err.text);
    sync_ok(j);
    journal_close(j);
    cr_assert_eq(__atomic_load_n(&fdatasync_calls, __ATOMIC_SEQ_CST), before);
}

#define THREADS         8
#define ROWS_PER_THREAD 40

struct worker {
    struct journal *j;
    size_t first_row;
    int rc;
    char text[256];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct blast_error err;
    size_t i;

    blast_error_clear(&err);
    for (i = 0; i < ROWS_PER_THREAD && w->rc == 0; i++) {
        size_t row = w->first_row + i;
        struct outcome e;
        fill(&e, row, "x@example.com", OUTCOME_DELIVERED, 1);
        w->rc = journal_sending(w->j, row, "x@example.com", "<m@acme.example>", 1, "primary", NULL,
                                &err);
        if (w->rc == 0)
            w->rc = journal_sync(w->j, &err);
        if (w->rc == 0)
            w->rc = journal_record(w->j, &e, &err);
        outcome_free(&e);
    }
    if (w->rc == 0)
        w->rc = journal_sync(w->j, &err);
    snprintf(w->text, sizeof w->text, "%s", err.text);
    return NULL;
}

Test(journal, sync_from_several_threads_at_once, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct worker w[THREADS];
    pthread_t t[THREADS];
    json_t *recs;
    size_t i, row;

    j = open_durable(path, sizeof path);
    for (i = 0; i < THREADS; i++) {
        w[i].j = j;
        w[i].first_row = 1 + i * ROWS_PER_THREAD;
        w[i].rc = 0;
        w[i].text[0] = '\0';
        cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].rc, 0, "thread %zu: %s", i, w[i].text);
    }
    journal_close(j);

    recs = records(path);
    cr_assert_eq(json_array_size(recs), 1 + 2 * THREADS * ROWS_PER_THREAD);
    json_decref(recs);
    j = open_ok(path);
    for (row = 1; row <= THREADS * ROWS_PER_THREAD; row++)
        cr_assert_eq(journal_state(j, row, NULL), JOURNAL_FINAL, "row %zu", row);
    cr_assert_eq(journal_done_before(j), THREADS * ROWS_PER_THREAD);
    journal_close(j);
}

/*
 * A shard's journal keeps only its rows (journal_options.only): their states and
 * records as any journal's, across a reopen; rows it does not keep read as never
 * touched, and journal_each visits its rows only, in order.
 */
Test(journal, a_shards_journal_keeps_its_rows_only, .fini = scratch_remove)
{
    static const size_t kept[] = {2, 5, 64, 130, 1000};
    uint64_t bits[16] = {0};
    struct journal_rowset only = {bits, 16 * 64};
    char path[128];
    struct journal *j;
    struct journal_options o = options(HASH_A);
    struct visit v;
    struct blast_error err;
    size_t i;
    int attempts;

    for (i = 0; i < sizeof kept / sizeof kept[0]; i++)
        bits[kept[i] / 64] |= 1ULL << (kept[i] % 64);
    o.only = &only;
    scratch_journal(path, sizeof path);
    j = open_with(path, &o);
    record_ok(j, 5, "ada@example.com", OUTCOME_DELIVERED, 1);
    record_ok(j, 130, "bob@example.com", OUTCOME_DEFERRED, 2);
    record_ok(j, 1000, "cy@example.com", OUTCOME_FAILED, 3);
    cr_assert_eq(journal_state(j, 5, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(j, 2, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_state(j, 3, NULL), JOURNAL_NONE, "not a row of this shard");
    journal_close(j);

    j = open_with(path, &o);
    cr_assert_eq(journal_done_before(j), 3);
    cr_assert_eq(journal_state(j, 5, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(j, 130, &attempts), JOURNAL_DEFERRED);
    cr_assert_eq(attempts, 2);
    cr_assert_eq(journal_state(j, 1000, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(j, 64, NULL), JOURNAL_NONE);
    cr_assert_eq(journal_state(j, 5000, NULL), JOURNAL_NONE, "past the list");
    memset(&v, 0, sizeof v);
    blast_error_clear(&err);
    cr_assert_eq(journal_each(j, 1000, visit, &v, &err), 0, "%s", err.text);
    cr_assert_eq(v.n, 3);
    cr_assert_eq(v.rows[0], 5);
    cr_assert_eq(v.rows[1], 130);
    cr_assert_eq(v.rows[2], 1000);
    visit_free(&v);
    journal_close(j);

    /* the same file read as a whole list's journal: the same records */
    o.only = NULL;
    j = open_with(path, &o);
    cr_assert_eq(journal_done_before(j), 3);
    cr_assert_eq(journal_state(j, 130, NULL), JOURNAL_DEFERRED);
    journal_close(j);
}

/* ---- compaction ------------------------------------------------------------------------------ */

/* Every row's entry as journal_each() gives it, dumped, in order (free with free_dumps). */
struct dumps {
    char **text;
    size_t *rows;
    size_t n, cap;
};

static int dump_one(void *arg, const struct outcome *o, struct blast_error *err)
{
    struct dumps *d = arg;
    struct buf b = BUF_INIT;

    (void)err;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->text = realloc(d->text, d->cap * sizeof *d->text);
        d->rows = realloc(d->rows, d->cap * sizeof *d->rows);
        cr_assert(d->text != NULL && d->rows != NULL);
    }
    cr_assert_eq(outcome_format_json(o, false, &b), 0);
    d->rows[d->n] = o->row;
    d->text[d->n++] = buf_steal(&b);
    return 0;
}

static struct dumps dump_all(struct journal *j, size_t rows)
{
    struct dumps d;
    struct blast_error err;

    memset(&d, 0, sizeof d);
    blast_error_clear(&err);
    cr_assert_eq(journal_each(j, rows, dump_one, &d, &err), 0, "%s", err.text);
    return d;
}

static void same_dumps(const struct dumps *a, const struct dumps *b)
{
    size_t i;

    cr_assert_eq(a->n, b->n, "%zu rows before, %zu after", a->n, b->n);
    for (i = 0; i < a->n; i++) {
        cr_assert_eq(a->rows[i], b->rows[i]);
        cr_assert_str_eq(a->text[i], b->text[i], "row %zu differs", a->rows[i]);
    }
}

static void free_dumps(struct dumps *d)
{
    size_t i;

    for (i = 0; i < d->n; i++)
        free(d->text[i]);
    free(d->text);
    free(d->rows);
    memset(d, 0, sizeof *d);
}

#define MANY 2600 /* rows: three packs of at most 1,024 */

/*
 * Rows 1..MANY: mostly delivered; every 7th failed, every 11th deferred (not final),
 * every 13th invalid, every 97th on its way when the run stopped (unknown), and every
 * 50th sent twice: a first attempt whose end of data got no reply (the process died),
 * then delivered with --resend-unknown.
 */
static void write_many(struct journal *j)
{
    size_t row;

    for (row = 1; row <= MANY; row++) {
        char email[64];
        snprintf(email, sizeof email, "reader.%zu@d%zu.example.com", row, row % 17);
        if (row % 13 == 0) {
            record_ok(j, row, "not an address", OUTCOME_INVALID, 0);
        } else if (row % 97 == 0) {
            sending_ok(j, row, email, 1);
        } else if (row % 50 == 0) {
            sending_ok(j, row, email, 1);
            sending_ok(j, row, email, 2);
            record_ok(j, row, email, OUTCOME_DELIVERED, 2);
        } else {
            enum outcome_status st = row % 7 == 0    ? OUTCOME_FAILED
                                     : row % 11 == 0 ? OUTCOME_DEFERRED
                                                     : OUTCOME_DELIVERED;
            sending_ok(j, row, email, 1);
            record_ok(j, row, email, st, 1);
        }
    }
}

static void compact_ok(struct journal *j, struct journal_compaction *st)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(journal_compact(j, st, &err), 0, "%s", err.text);
}

/* What journal_read_sent() yields, as "ROW EMAIL MESSAGE-ID" lines, sorted. */
struct sent_list {
    char **s;
    size_t n, cap;
};

static int on_sent(void *arg, const struct journal_sent *s)
{
    struct sent_list *l = arg;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->s = realloc(l->s, l->cap * sizeof *l->s);
        cr_assert_not_null(l->s);
    }
    cr_assert(asprintf(&l->s[l->n++], "%zu %s %s", s->row, s->email,
                       s->message_id ? s->message_id : "-") > 0);
    return 0;
}

static bool sent_has(const struct sent_list *l, const char *line)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->s[i], line) == 0)
            return true;
    return false;
}

static struct sent_list read_sent(const char *path)
{
    struct sent_list l;
    struct blast_error err;

    memset(&l, 0, sizeof l);
    blast_error_clear(&err);
    cr_assert_eq(journal_read_sent(path, on_sent, &l, &err), 0, "%s", err.text);
    return l;
}

static void free_sent(struct sent_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
}

Test(journal, compaction_keeps_each_rows_last_record_byte_for_byte, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_compaction st;
    struct dumps before, after, reopened;
    enum journal_state states[MANY + 1];
    int attempts[MANY + 1];
    size_t row, packed = 0, plain = 0, deferred = 0;
    json_t *recs;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_many(j);
    journal_close(j);

    j = open_ok(path);
    before = dump_all(j, MANY + 10);
    for (row = 1; row <= MANY; row++) {
        states[row] = journal_state(j, row, &attempts[row]);
        if (states[row] == JOURNAL_FINAL)
            packed++;
        else
            plain++;
        deferred += states[row] == JOURNAL_DEFERRED;
    }
    cr_assert_gt(journal_loose_records(j), 0);
    compact_ok(j, &st);
    cr_assert_eq(st.rows, MANY);
    cr_assert_eq(st.packed, packed);
    cr_assert_eq(st.plain, plain);
    cr_assert_eq(st.packs, (packed + 1023) / 1024);
    cr_assert_eq(st.kept_sending, MANY / 50 - MANY / 650 + deferred,
                 "the first attempts of rows sent twice, and the deferred rows' attempts");
    cr_assert_eq((size_t)st.bytes_after, file_size(path));
    cr_assert_lt(st.bytes_after, st.bytes_before / 4, "%lld -> %lld", (long long)st.bytes_before,
                 (long long)st.bytes_after);
    cr_assert_eq(journal_loose_records(j), plain + deferred,
                 "only the records of rows not final stay loose");

    /* the same journal goes on: the same entries, states, attempts */
    after = dump_all(j, MANY + 10);
    same_dumps(&before, &after);
    for (row = 1; row <= MANY; row++) {
        int n;
        cr_assert_eq(journal_state(j, row, &n), states[row], "row %zu", row);
        if (states[row] != JOURNAL_FINAL)
            cr_assert_eq(n, attempts[row], "row %zu", row);
    }
    /* a record appended after it is read back too */
    record_ok(j, 11, "reader.11@d11.example.com", OUTCOME_DELIVERED, 2);
    cr_assert_eq(journal_state(j, 11, NULL), JOURNAL_FINAL);
    journal_close(j);

    /* and so does a later run */
    j = open_ok(path);
    reopened = dump_all(j, MANY + 10);
    cr_assert_eq(reopened.n, before.n);
    for (row = 0; row < before.n; row++)
        if (reopened.rows[row] != 11)
            cr_assert_str_eq(reopened.text[row], before.text[row]);
    cr_assert_eq(journal_state(j, 11, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(j, 97, NULL), JOURNAL_UNKNOWN);
    cr_assert_eq(journal_state(j, 22, NULL), JOURNAL_DEFERRED);
    journal_close(j);

    /* whole records: the run records first, then packs, then the rest as they were */
    recs = records(path);
    cr_assert_str_eq(str_at(json_array_get(recs, 0), "t"), "run");
    cr_assert_str_eq(str_at(json_array_get(recs, 1), "t"), "run", "each run's, in order");
    json_array_remove(recs, 0);
    cr_assert_str_eq(str_at(json_array_get(recs, 1), "t"), "pack");
    {
        /* the first pack: the first 1,024 rows in a final state, as ranges */
        char want[4096] = "";
        size_t n = 0, first = 0, last = 0, len = 0;
        for (row = 1; row <= MANY && n < 1024; row++) {
            if (states[row] != JOURNAL_FINAL)
                continue;
            n++;
            if (last != 0 && row == last + 1) {
                last = row;
                continue;
            }
            if (last != 0)
                len +=
                    (size_t)snprintf(want + len, sizeof want - len, "%s%zu", len ? "," : "", first);
            if (last > first)
                len += (size_t)snprintf(want + len, sizeof want - len, "-%zu", last);
            first = last = row;
        }
        len += (size_t)snprintf(want + len, sizeof want - len, "%s%zu", len ? "," : "", first);
        if (last > first)
            snprintf(want + len, sizeof want - len, "-%zu", last);
        cr_assert_str_eq(str_at(json_array_get(recs, 1), "rows"), want);
        cr_assert_eq(int_at(json_array_get(recs, 1), "records"), 1024 + 21,
                     "1,024 rows, 21 of them sent twice");
    }
    json_decref(recs);
    free_dumps(&before);
    free_dumps(&after);
    free_dumps(&reopened);
}

Test(journal, compaction_keeps_what_the_bounce_intake_reads, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct sent_list before, after;
    size_t i;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_many(j);
    before = read_sent(path);
    compact_ok(j, NULL);
    journal_close(j);
    after = read_sent(path);
    /* a first attempt that may have gone, then the one delivered: both Message-IDs */
    cr_assert(sent_has(&after, "50 reader.50@d16.example.com <50.1@acme.example>"));
    cr_assert(sent_has(&before, "50 reader.50@d16.example.com <50.1@acme.example>"));
    /* the attempt a result answered: its result names the message */
    cr_assert(sent_has(&after, "1 reader.1@d1.example.com <1.1@acme.example>"));
    /* a message on its way when the run stopped: kept as it was */
    cr_assert(sent_has(&after, "97 reader.97@d12.example.com <97.1@acme.example>"));
    /* every address sent to before is still found, by address */
    for (i = 0; i < before.n; i++) {
        char row_email[128];
        size_t k;
        bool found = false;
        snprintf(row_email, sizeof row_email, "%.*s",
                 (int)(strrchr(before.s[i], ' ') - before.s[i]), before.s[i]);
        for (k = 0; k < after.n && !found; k++)
            found = strncmp(after.s[k], row_email, strlen(row_email)) == 0 &&
                    after.s[k][strlen(row_email)] == ' ';
        cr_assert(found, "%s is gone", row_email);
    }
    free_sent(&before);
    free_sent(&after);
}

Test(journal, a_result_without_an_attempt_answers_no_sending, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct sent_list after;
    struct blast_error err;
    struct outcome e;

    /*
     * An attempt whose message may have gone (its "sending" unanswered: resent on
     * request), a result of a run that did not try it again (the same count, no
     * message: held by its window, or left when that run stopped), then the attempt
     * that delivered it: the first message stays known to the bounce intake.
     */
    scratch_journal(path, sizeof path);
    j = open_ok(path);
    sending_ok(j, 1, "a@example.com", 1);
    outcome_init(&e);
    e.row = 1;
    e.status = OUTCOME_DEFERRED;
    e.attempts = 1;
    cr_assert_eq(outcome_set(&e.email, "a@example.com"), 0);
    cr_assert_eq(outcome_set(&e.detail, "send window: closed in UTC (Mon-Fri 09:00-17:00)"), 0);
    blast_error_clear(&err);
    cr_assert_eq(journal_record(j, &e, &err), 0, "%s", err.text);
    outcome_free(&e);
    sending_ok(j, 1, "a@example.com", 2);
    record_ok(j, 1, "a@example.com", OUTCOME_DELIVERED, 2);
    compact_ok(j, NULL);
    journal_close(j);
    after = read_sent(path);
    cr_assert(sent_has(&after, "1 a@example.com <1.1@acme.example>"), "the first message");
    cr_assert(sent_has(&after, "1 a@example.com <1.2@acme.example>"), "the one delivered");
    free_sent(&after);
}

Test(journal, compacting_again_after_more_runs, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct journal_compaction st;
    struct dumps a, b;
    size_t row;

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_many(j);
    compact_ok(j, &st);
    journal_close(j);

    /* the next run settles the rows left: deferred and unknown, delivered now */
    j = open_ok(path);
    for (row = 1; row <= MANY; row++)
        if (journal_state(j, row, NULL) != JOURNAL_FINAL) {
            char email[64];
            snprintf(email, sizeof email, "reader.%zu@d%zu.example.com", row, row % 17);
            sending_ok(j, row, email, 3);
            record_ok(j, row, email, OUTCOME_DELIVERED, 3);
        }
    cr_assert(journal_all_final(j, MANY));
    cr_assert(!journal_all_final(j, MANY + 1), "a row without a record is not final");
    a = dump_all(j, MANY);
    compact_ok(j, &st);
    cr_assert_eq(st.plain, 0);
    cr_assert_eq(st.packed, MANY);
    cr_assert_eq(journal_loose_records(j), 0);
    b = dump_all(j, MANY);
    same_dumps(&a, &b);
    free_dumps(&b);
    journal_close(j);

    /* a run that finds it done adds a run record only; compacting a third time changes nothing */
    j = open_ok(path);
    cr_assert_eq(journal_loose_records(j), 0);
    compact_ok(j, &st);
    cr_assert_eq(st.packed, MANY);
    b = dump_all(j, MANY);
    same_dumps(&a, &b);
    free_dumps(&b);
    free_dumps(&a);
    journal_close(j);
}

Test(journal, compaction_of_a_shards_journal, .fini = scratch_remove)
{
    uint64_t bits[64] = {0};
    struct journal_rowset only = {bits, 64 * 64};
    struct journal_options o = options(HASH_A);
    struct journal_compaction st;
    struct journal *j;
    struct dumps a, b;
    char path[128];
    size_t row;

    for (row = 3; row < 64 * 64; row += 3)
        bits[row / 64] |= 1ULL << (row % 64);
    o.only = &only;
    scratch_journal(path, sizeof path);
    j = open_with(path, &o);
    for (row = 3; row < 64 * 64; row += 3)
        record_ok(j, row, "ada@example.com", row % 9 ? OUTCOME_DELIVERED : OUTCOME_DEFERRED, 1);
    cr_assert(!journal_all_final(j, 64 * 64 - 1));
    a = dump_all(j, 64 * 64);
    compact_ok(j, &st);
    cr_assert_eq(st.rows, (64 * 64 - 1) / 3);
    cr_assert_eq(st.plain, (64 * 64 - 1) / 9);
    journal_close(j);
    j = open_with(path, &o);
    b = dump_all(j, 64 * 64);
    same_dumps(&a, &b);
    cr_assert_eq(journal_state(j, 9, NULL), JOURNAL_DEFERRED);
    cr_assert_eq(journal_state(j, 6, NULL), JOURNAL_FINAL);
    cr_assert_eq(journal_state(j, 4, NULL), JOURNAL_NONE);
    free_dumps(&a);
    free_dumps(&b);
    journal_close(j);
}

Test(journal, compacted_journal_is_private_and_leaves_no_file_behind, .fini = scratch_remove)
{
    char path[128], tmp[160];
    struct journal *j;
    struct stat sb;
    mode_t old = umask(0);

    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_many(j);
    compact_ok(j, NULL);
    journal_close(j);
    umask(old);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
    snprintf(tmp, sizeof tmp, "%s.compacting", path);
    cr_assert_neq(access(tmp, F_OK), 0, "%s is left", tmp);
}

/*
 * A compaction cut short by a crash leaves PATH.compacting beside a journal that was
 * never touched: the next open reads the journal as it was and removes the leftover.
 */
Test(journal, a_compaction_cut_short_leaves_the_journal_whole, .fini = scratch_remove)
{
    char path[128], tmp[160];
    struct journal *j;
    struct dumps a, b;
    size_t len;
    char *half;

    /* what a crash halfway through would leave: half of a compacted copy */
    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_many(j);
    compact_ok(j, NULL);
    journal_close(j);
    half = slurp(path, &len);
    scratch_journal(path, sizeof path);
    j = open_ok(path);
    write_many(j);
    a = dump_all(j, MANY);
    journal_close(j);
    snprintf(tmp, sizeof tmp, "%s.compacting", path);
    spew(tmp, half, len / 2, "wb");
    free(half);
    memset(logged, 0, sizeof logged);
    j = open_ok(path);
    cr_assert_neq(access(tmp, F_OK), 0, "the leftover is removed");
    cr_assert(strstr(logged, "left by a compaction that did not end") != NULL, "%s", logged);
    b = dump_all(j, MANY);
    same_dumps(&a, &b);
    free_dumps(&a);
    free_dumps(&b);
    journal_close(j);
}

/* A pack whose checksum holds but whose contents do not inflate: an error naming the row. */
Test(journal, a_damaged_pack_is_an_error_naming_the_row, .fini = scratch_remove)
{
    char path[128], line[4096];
    struct journal *j;
    struct blast_error err;
    struct dumps d;
    const char *json = "{\"t\":\"pack\",\"rows\":\"1-2\",\"records\":2,\"size\":40,\"z\":\"AAAA\"}";
    int n;

    scratch_journal(path, sizeof path);
    n = snprintf(line, sizeof line, "%08lx %s\n", journal_crc32(json, strlen(json)), json);
    spew(path, line, (size_t)n, "wb");
    j = open_ok(path);
    cr_assert_eq(journal_state(j, 2, NULL), JOURNAL_FINAL);
    memset(&d, 0, sizeof d);
    blast_error_clear(&err);
    cr_assert_eq(journal_each(j, 5, dump_one, &d, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "the pack holding row 1 is damaged") != NULL, "%s", err.text);
    journal_close(j);

    /* a list of rows that is not one: refused at open, with its place */
    json = "{\"t\":\"pack\",\"rows\":\"5-2\",\"records\":2,\"size\":40,\"z\":\"AAAA\"}";
    n = snprintf(line, sizeof line, "%08lx %s\n", journal_crc32(json, strlen(json)), json);
    spew(path, line, (size_t)n, "wb");
    open_fails(path, &(struct journal_options){.hash = HASH_A, .lock = true, .log = &capture_log},
               BLAST_EINVAL, &err);
    cr_assert_eq(err.line, 1);
    cr_assert(strstr(err.text, "a pack whose rows cannot be read") != NULL, "%s", err.text);

    /* more rows than records: refused before the index grows for them */
    json = "{\"t\":\"pack\",\"rows\":\"1-1000000000\",\"records\":2,\"size\":40,\"z\":\"AAAA\"}";
    n = snprintf(line, sizeof line, "%08lx %s\n", journal_crc32(json, strlen(json)), json);
    spew(path, line, (size_t)n, "wb");
    open_fails(path, &(struct journal_options){.hash = HASH_A, .lock = true, .log = &capture_log},
               BLAST_EINVAL, &err);
    cr_assert(strstr(err.text, "a pack whose rows cannot be read") != NULL, "%s", err.text);
}

/* A record longer than the window compaction reads the file through (1 MiB). */
Test(journal, compaction_of_a_record_longer_than_its_window, .fini = scratch_remove)
{
    char path[128];
    struct journal *j;
    struct blast_error err;
    struct outcome e;
    struct dumps a, b;
    size_t n = 3 * 1024 * 1024 / 2;
    char *big = malloc(n + 1);

    cr_assert_not_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    scratch_journal(path, sizeof path);
    j = open_ok(path);
    record_ok(j, 1, "ada@example.com", OUTCOME_DELIVERED, 1);
    fill(&e, 2, "bob@example.com", OUTCOME_FAILED, 1);
    cr_assert_eq(outcome_set(&e.detail, big), 0);
    blast_error_clear(&err);
    cr_assert_eq(journal_record(j, &e, &err), 0, "%s", err.text);
    outcome_free(&e);
    record_ok(j, 3, "cy@example.com", OUTCOME_DELIVERED, 1);
    a = dump_all(j, 3);
    compact_ok(j, NULL);
    b = dump_all(j, 3);
    same_dumps(&a, &b);
    free_dumps(&b);
    journal_close(j);
    j = open_ok(path);
    b = dump_all(j, 3);
    same_dumps(&a, &b);
    free_dumps(&a);
    free_dumps(&b);
    journal_close(j);
    free(big);
}
