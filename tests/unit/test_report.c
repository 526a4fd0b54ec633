/*
 * test_report - the JSON delivery report: read back with jansson, recipients in
 * order, the summary counts, and the atomic finish (commit replaces, abort and
 * failures leave the previous report and no temporary file).
 */
#include "../../core/report.h"
#include "../../core/reportread.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct scratch {
    char dir[64];
    char path[128];
};

static void scratch_new(struct scratch *s)
{
    snprintf(s->dir, sizeof s->dir, "%s", scratch_make());
    snprintf(s->path, sizeof s->path, "%s/report.json", s->dir);
}

/* Number of entries in the scratch directory (besides . and ..). */
static int entries(const struct scratch *s)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void scratch_free(struct scratch *s)
{
    unlink(s->path);
    cr_assert_eq(rmdir(s->dir), 0, "%s left files behind", s->dir);
}

static const struct report_info info = {"november-news", "campaigns/november.yml", false, NULL};

static struct report *open_ok(const char *path, const struct report_info *ri)
{
    struct report *r = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(report_open(path, ri, &r, &err), 0, "%s", err.text);
    cr_assert_not_null(r);
    return r;
}

static void add_ok(struct report *r, const struct outcome *e)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(report_add(r, e, &err), 0, "%s", err.text);
}

static void commit_ok(struct report *r)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(report_commit(r, &err), 0, "%s", err.text);
}

static json_t *load(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);

    cr_assert_not_null(j, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    return j;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static json_int_t int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    cr_assert(json_is_integer(v), "'%s' is not an integer", key);
    return json_integer_value(v);
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    cr_assert(json_is_string(v), "'%s' is not a string", key);
    return json_string_value(v);
}

/* Three recipients: delivered and failed through relay-a, one invalid never sent. */
static void add_three(struct report *r)
{
    struct outcome e;

    outcome_init(&e);
    e.email = "ada@Example.COM";
    e.row = 1;
    e.status = OUTCOME_DELIVERED;
    e.code = 250;
    snprintf(e.enhanced, sizeof e.enhanced, "2.0.0");
    e.reply = "Ok: queued as ABC123";
    e.step = SMTP_END_OF_DATA;
    e.relay = "relay-a";
    e.attempts = 1;
    e.message_id = "<1.2@acme.example>";
    e.queue_id = "ABC123";
    e.size = 4096;
    e.first.sec = 1700000000;
    e.first.usec = 250000;
    e.last = e.first;
    add_ok(r, &e);

    outcome_init(&e);
    e.email = "nobody@example.org";
    e.row = 2;
    e.status = OUTCOME_FAILED;
    e.code = 550;
    snprintf(e.enhanced, sizeof e.enhanced, "5.1.1");
    e.reply = "<nobody@example.org>: Recipient address rejected";
    e.step = SMTP_RCPT;
    e.relay = "relay-a";
    e.attempts = 1;
    e.first.sec = 1700000001;
    e.last.sec = 1700000001;
    add_ok(r, &e);

    outcome_init(&e);
    e.email = "not-an-address";
    e.row = 3;
    e.status = OUTCOME_INVALID;
    e.detail = "invalid address 'not-an-address': no '@'";
    add_ok(r, &e);
}

Test(report, document_parses_with_schema_campaign_and_recipients, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    json_t *j, *recips, *o, *campaign;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    add_three(r);
    commit_ok(r);
    j = load(s.path);

    cr_assert_eq(int_at(j, "schema_version"), REPORT_SCHEMA_VERSION);
    campaign = json_object_get(j, "campaign");
    cr_assert(json_is_object(campaign));
    cr_assert_str_eq(str_at(campaign, "name"), "november-news");
    cr_assert_str_eq(str_at(campaign, "file"), "campaigns/november.yml");
    cr_assert(json_is_false(json_object_get(campaign, "dry_run")));

    recips = json_object_get(j, "recipients");
    cr_assert(json_is_array(recips));
    cr_assert_eq(json_array_size(recips), 3);

    o = json_array_get(recips, 0);
    cr_assert_str_eq(str_at(o, "email"), "ada@Example.COM");
    cr_assert_eq(int_at(o, "row"), 1);
    cr_assert_str_eq(str_at(o, "status"), "delivered");
    cr_assert_eq(int_at(o, "code"), 250);
    cr_assert_str_eq(str_at(o, "enhanced_code"), "2.0.0");
    cr_assert_str_eq(str_at(o, "reply"), "Ok: queued as ABC123");
    cr_assert_str_eq(str_at(o, "relay"), "relay-a");
    cr_assert_eq(int_at(o, "attempts"), 1);
    cr_assert_str_eq(str_at(o, "message_id"), "<1.2@acme.example>");
    cr_assert_str_eq(str_at(o, "queue_id"), "ABC123");
    cr_assert_eq(int_at(o, "size"), 4096);
    cr_assert_str_eq(str_at(o, "first_attempt"), "2023-11-14T22:13:20.250Z");
    cr_assert_str_eq(str_at(o, "last_attempt"), "2023-11-14T22:13:20.250Z");

    o = json_array_get(recips, 1);
    cr_assert_str_eq(str_at(o, "email"), "nobody@example.org");
    cr_assert_eq(int_at(o, "row"), 2);
    cr_assert_str_eq(str_at(o, "status"), "failed");
    cr_assert_eq(int_at(o, "code"), 550);
    cr_assert_str_eq(str_at(o, "enhanced_code"), "5.1.1");
    cr_assert(json_is_null(json_object_get(o, "queue_id")));

    o = json_array_get(recips, 2);
    cr_assert_eq(int_at(o, "row"), 3);
    cr_assert_str_eq(str_at(o, "status"), "invalid");
    cr_assert(json_is_null(json_object_get(o, "code")), "no reply, no code");
    cr_assert(json_is_null(json_object_get(o, "relay")));
    cr_assert(json_is_null(json_object_get(o, "first_attempt")), "never attempted");
    cr_assert_eq(int_at(o, "attempts"), 0);
    json_decref(j);
    scratch_free(&s);
}

Test(report, the_file_is_private_under_any_umask, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    struct stat st;

    scratch_new(&s);
    /* a umask that would let anyone read it, and an older report that anyone could */
    umask(0);
    write_text(s.path, "{}");
    cr_assert_eq(chmod(s.path, 0644), 0);
    r = open_ok(s.path, &info);
    add_three(r);
    commit_ok(r);
    cr_assert_eq(stat(s.path, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_expect_eq(entries(&s), 1, "no temporary file left");
    scratch_free(&s);
}

Test(report, summary_counts_by_status_relay_domain_and_code, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    json_t *j, *sum, *by;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    add_three(r);
    commit_ok(r);
    j = load(s.path);
    sum = json_object_get(j, "summary");
    cr_assert(json_is_object(sum));
    cr_assert_eq(int_at(sum, "total"), 3);

    by = json_object_get(sum, "by_status");
    cr_assert(json_is_object(by));
    cr_assert_eq(int_at(by, "delivered"), 1);
    cr_assert_eq(int_at(by, "failed"), 1);
    cr_assert_eq(int_at(by, "invalid"), 1);
    cr_assert_eq(int_at(by, "deferred"), 0);
    cr_assert_eq(int_at(by, "unknown"), 0);
    cr_assert_eq(int_at(by, "suppressed"), 0);
    cr_assert_eq(int_at(by, "duplicate"), 0);

    by = json_object_get(sum, "by_relay");
    cr_assert(json_is_object(by));
    cr_assert_eq(json_object_size(by), 1, "the invalid row went through no relay");
    cr_assert_eq(int_at(json_object_get(by, "relay-a"), "delivered"), 1);
    cr_assert_eq(int_at(json_object_get(by, "relay-a"), "failed"), 1);

    by = json_object_get(sum, "by_domain");
    cr_assert(json_is_object(by));
    cr_assert_eq(int_at(json_object_get(by, "example.com"), "delivered"), 1,
                 "domains are counted in lower case");
    cr_assert_null(json_object_get(by, "Example.COM"));
    cr_assert_eq(int_at(json_object_get(by, "example.org"), "failed"), 1);

    by = json_object_get(sum, "by_code");
    cr_assert(json_is_object(by));
    cr_assert_eq(json_object_size(by), 2);
    cr_assert_eq(int_at(by, "250 2.0.0"), 1);
    cr_assert_eq(int_at(by, "550 5.1.1"), 1);

    cr_assert(json_is_string(json_object_get(sum, "start")));
    cr_assert(json_is_string(json_object_get(sum, "end")));
    cr_assert(json_is_number(json_object_get(sum, "duration_seconds")));
    cr_assert(json_is_number(json_object_get(sum, "messages_per_second")));
    json_decref(j);
    scratch_free(&s);
}

Test(report, summary_sums_attempts_and_what_relays_accepted, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    struct outcome e;
    json_t *j, *sum;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    add_three(r); /* delivered (1 attempt, 4096 bytes), failed (1 attempt), invalid */
    outcome_init(&e);
    e.email = "bob@example.net";
    e.row = 4;
    e.status = OUTCOME_BOUNCED; /* the relay took it: accepted, though it came back */
    e.relay = "relay-b";
    e.attempts = 3;
    e.size = 1000;
    add_ok(r, &e);
    outcome_init(&e);
    e.email = "eve@example.net";
    e.row = 5;
    e.status = OUTCOME_DEFERRED; /* built, tried twice, not taken: not accepted */
    e.relay = "relay-b";
    e.attempts = 2;
    e.size = 777;
    add_ok(r, &e);
    commit_ok(r);
    j = load(s.path);
    sum = json_object_get(j, "summary");
    cr_assert_eq(int_at(sum, "attempts"), 1 + 1 + 0 + 3 + 2);
    cr_assert_eq(int_at(sum, "messages_accepted"), 2);
    cr_assert_eq(int_at(sum, "bytes_accepted"), 4096 + 1000);
    json_decref(j);
    scratch_free(&s);
}

Test(report, campaign_names_its_rate_and_dkim_entries_not_keys, .fini = scratch_remove)
{
    static const struct report_dkim dkim[] = {{"acme.example", "nov2026", "rsa-sha256"},
                                              {"acme.example", "ed2026", "ed25519-sha256"}};
    struct report_info ri = info;
    struct scratch s;
    json_t *j, *c, *d;

    scratch_new(&s);
    ri.rate_per_second = 20.0 / 60.0;
    ri.dkim = dkim;
    ri.ndkim = 2;
    commit_ok(open_ok(s.path, &ri));
    j = load(s.path);
    c = json_object_get(j, "campaign");
    cr_assert(json_is_real(json_object_get(c, "rate_per_second")));
    cr_assert_float_eq(json_real_value(json_object_get(c, "rate_per_second")), 20.0 / 60.0, 1e-12);
    d = json_object_get(c, "dkim");
    cr_assert_eq(json_array_size(d), 2);
    cr_assert_str_eq(str_at(json_array_get(d, 1), "selector"), "ed2026");
    cr_assert_str_eq(str_at(json_array_get(d, 1), "algorithm"), "ed25519-sha256");
    cr_assert_eq(json_object_size(json_array_get(d, 0)), 3, "domain, selector, algorithm only");
    json_decref(j);

    /* none set: null and an empty array; settings_unknown: neither key */
    ri.rate_per_second = 0;
    ri.ndkim = 0;
    commit_ok(open_ok(s.path, &ri));
    j = load(s.path);
    c = json_object_get(j, "campaign");
    cr_assert(json_is_null(json_object_get(c, "rate_per_second")));
    cr_assert_eq(json_array_size(json_object_get(c, "dkim")), 0);
    cr_assert(json_is_array(json_object_get(c, "dkim")));
    json_decref(j);
    ri.settings_unknown = true;
    commit_ok(open_ok(s.path, &ri));
    j = load(s.path);
    c = json_object_get(j, "campaign");
    cr_assert_null(json_object_get(c, "rate_per_second"));
    cr_assert_null(json_object_get(c, "dkim"));
    json_decref(j);
    scratch_free(&s);
}

Test(report, summary_times_stay_those_of_the_first_summary, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    json_t *first, *j;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    add_three(r);
    first = report_summary(r);
    cr_assert_not_null(first);
    commit_ok(r);
    j = load(s.path);
    cr_assert_str_eq(str_at(json_object_get(j, "summary"), "end"), str_at(first, "end"));
    cr_assert_float_eq(
        json_real_value(json_object_get(json_object_get(j, "summary"), "duration_seconds")),
        json_real_value(json_object_get(first, "duration_seconds")), 1e-9);
    json_decref(first);
    json_decref(j);
    scratch_free(&s);
}

Test(report, counts_so_far, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    cr_assert_eq(report_count(r, OUTCOME_DELIVERED), 0);
    add_three(r);
    cr_assert_eq(report_count(r, OUTCOME_DELIVERED), 1);
    cr_assert_eq(report_count(r, OUTCOME_FAILED), 1);
    cr_assert_eq(report_count(r, OUTCOME_INVALID), 1);
    cr_assert_eq(report_count(r, OUTCOME_DEFERRED), 0);
    report_abort(r);
    scratch_free(&s);
}

Test(report, empty_report_is_valid_json, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    json_t *j;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    commit_ok(r);
    j = load(s.path);
    cr_assert_eq(json_array_size(json_object_get(j, "recipients")), 0);
    cr_assert_eq(int_at(json_object_get(j, "summary"), "total"), 0);
    json_decref(j);
    scratch_free(&s);
}

Test(report, many_entries_stay_in_order, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    struct outcome e;
    char email[64];
    json_t *j, *recips;
    size_t i;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    for (i = 1; i <= 500; i++) {
        outcome_init(&e);
        snprintf(email, sizeof email, "user%zu@d%zu.example", i, i % 7);
        e.email = email;
        e.row = i;
        e.status = i % 10 == 0 ? OUTCOME_DEFERRED : OUTCOME_DELIVERED;
        e.code = i % 10 == 0 ? 451 : 250;
        e.relay = i % 2 ? "odd" : "even";
        add_ok(r, &e);
    }
    commit_ok(r);
    j = load(s.path);
    recips = json_object_get(j, "recipients");
    cr_assert_eq(json_array_size(recips), 500);
    for (i = 0; i < 500; i++)
        cr_assert_eq(int_at(json_array_get(recips, i), "row"), (json_int_t)(i + 1));
    cr_assert_eq(int_at(json_object_get(json_object_get(j, "summary"), "by_status"), "deferred"),
                 50);
    cr_assert_eq(int_at(json_object_get(json_object_get(j, "summary"), "by_code"), "451"), 50);
    json_decref(j);
    scratch_free(&s);
}

Test(report, test_send_and_dry_run_are_recorded, .fini = scratch_remove)
{
    static const struct report_info ti = {"x", "x.yml", true, "tester@qa.example"};
    struct scratch s;
    struct report *r;
    json_t *j, *campaign;

    scratch_new(&s);
    r = open_ok(s.path, &ti);
    commit_ok(r);
    j = load(s.path);
    campaign = json_object_get(j, "campaign");
    cr_assert(json_is_true(json_object_get(campaign, "dry_run")));
    cr_assert_str_eq(str_at(campaign, "test_to"), "tester@qa.example");
    json_decref(j);
    scratch_free(&s);
}

Test(report, a_run_the_breaker_stopped_says_why, .fini = scratch_remove)
{
    struct report_info bi = info;
    struct scratch s;
    struct report *r;
    json_t *j, *summary;

    scratch_new(&s);
    bi.breaker = "10 of the first 14 attempts were blocked by policy (5.7.x)";
    r = open_ok(s.path, &bi);
    add_three(r);
    commit_ok(r);
    j = load(s.path);
    summary = json_object_get(j, "summary");
    cr_assert_str_eq(str_at(json_object_get(summary, "breaker"), "reason"),
                     "10 of the first 14 attempts were blocked by policy (5.7.x)");
    json_decref(j);
    /* a run it did not stop: no breaker at all */
    r = open_ok(s.path, &info);
    commit_ok(r);
    j = load(s.path);
    cr_assert_null(json_object_get(json_object_get(j, "summary"), "breaker"));
    json_decref(j);
    scratch_free(&s);
}

static void add_deferred(struct report *r, size_t row, const char *detail)
{
    struct outcome o;
    struct blast_error err;

    outcome_init(&o);
    o.row = row;
    o.status = OUTCOME_DEFERRED;
    o.email = (char *)"x@example.com";
    o.detail = (char *)detail;
    blast_error_clear(&err);
    cr_assert_eq(report_add(r, &o, &err), 0, "%s", err.text);
}

Test(report, held_recipients_and_seeds_are_in_the_summary, .fini = scratch_remove)
{
    struct report_info si = info;
    struct outcome seeds[2];
    struct scratch s;
    struct report *r;
    json_t *j, *summary, *held, *a;

    scratch_new(&s);
    outcome_init(&seeds[0]);
    outcome_init(&seeds[1]);
    seeds[0].row = 1;
    seeds[0].status = OUTCOME_DELIVERED;
    seeds[0].email = (char *)"qa@team.example";
    seeds[1].row = 2;
    seeds[1].status = OUTCOME_FAILED;
    seeds[1].code = 550;
    seeds[1].email = (char *)"qa2@team.example";
    si.seeds = seeds;
    si.nseeds = 2;
    r = open_ok(s.path, &si);
    add_deferred(r, 1, "send window: closed for America/New_York (Mon-Fri 09:00-17:00)");
    add_deferred(r, 2, "warm-up cap: google has had today's 200");
    add_deferred(r, 3, "warm-up cap: other has had today's 200");
    add_deferred(r, 4, "not attempted: the run was interrupted");
    add_deferred(r, 5, "the reply said send window: no");
    commit_ok(r);
    j = load(s.path);
    summary = json_object_get(j, "summary");
    held = json_object_get(summary, "held");
    cr_assert_eq(json_integer_value(json_object_get(held, "window")), 1);
    cr_assert_eq(json_integer_value(json_object_get(held, "warmup")), 2);
    a = json_object_get(summary, "seeds");
    cr_assert_eq(json_array_size(a), 2);
    cr_assert_str_eq(str_at(json_array_get(a, 0), "email"), "qa@team.example");
    cr_assert_str_eq(str_at(json_array_get(a, 1), "status"), "failed");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(a, 1), "row")), 2);
    json_decref(j);
    /* none held, no seeds: neither key */
    r = open_ok(s.path, &info);
    add_three(r);
    commit_ok(r);
    j = load(s.path);
    cr_assert_null(json_object_get(json_object_get(j, "summary"), "held"));
    cr_assert_null(json_object_get(json_object_get(j, "summary"), "seeds"));
    json_decref(j);
    scratch_free(&s);
}

Test(report, control_characters_in_server_text_stay_json, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    struct outcome e;
    json_t *j;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    outcome_init(&e);
    e.email = "a@example.com";
    e.row = 1;
    e.status = OUTCOME_DEFERRED;
    e.code = 451;
    e.reply = "line one\nline \"two\"\t\x01 end \\";
    add_ok(r, &e);
    commit_ok(r);
    j = load(s.path);
    cr_assert_str_eq(str_at(json_array_get(json_object_get(j, "recipients"), 0), "reply"),
                     "line one\nline \"two\"\t\x01 end \\");
    json_decref(j);
    scratch_free(&s);
}

Test(report, abort_leaves_no_file, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;

    scratch_new(&s);
    r = open_ok(s.path, &info);
    add_three(r);
    cr_assert_eq(entries(&s), 1, "the report is written to a temporary file meanwhile");
    cr_assert_neq(access(s.path, F_OK), 0, "nothing at the target before commit");
    report_abort(r);
    cr_assert_neq(access(s.path, F_OK), 0);
    cr_assert_eq(entries(&s), 0, "the temporary file is gone");
    scratch_free(&s);
}

Test(report, abort_keeps_the_previous_report, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    char buf[64];
    FILE *f;

    scratch_new(&s);
    write_text(s.path, "{\"previous\": true}\n");
    r = open_ok(s.path, &info);
    add_three(r);
    report_abort(r);
    f = fopen(s.path, "rb");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "{\"previous\": true}\n");
    cr_assert_eq(entries(&s), 1);
    scratch_free(&s);
}

Test(report, commit_replaces_an_existing_report_atomically, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    json_t *j;
    ino_t before;
    struct stat st;

    scratch_new(&s);
    write_text(s.path, "{\"previous\": true}\n");
    cr_assert_eq(stat(s.path, &st), 0);
    before = st.st_ino;
    r = open_ok(s.path, &info);
    add_three(r);
    /* until commit, readers see the whole previous report */
    j = load(s.path);
    cr_assert(json_is_true(json_object_get(j, "previous")));
    json_decref(j);
    commit_ok(r);
    j = load(s.path);
    cr_assert_null(json_object_get(j, "previous"));
    cr_assert_eq(json_array_size(json_object_get(j, "recipients")), 3);
    json_decref(j);
    cr_assert_eq(stat(s.path, &st), 0);
    cr_assert_neq(st.st_ino, before, "a new file renamed into place, not rewritten in place");
    cr_assert_eq(entries(&s), 1, "no temporary file left");
    scratch_free(&s);
}

Test(report, failed_commit_removes_the_temporary_file, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    struct blast_error err;
    char inner[200];

    /* the target is a non-empty directory: rename() cannot replace it */
    scratch_new(&s);
    cr_assert_eq(mkdir(s.path, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", s.path);
    write_text(inner, "kept\n");
    r = open_ok(s.path, &info);
    add_three(r);
    cr_assert_eq(entries(&s), 2);
    blast_error_clear(&err);
    cr_assert_eq(report_commit(r, &err), BLAST_EIO);
    cr_assert_str_eq(err.source, s.path);
    cr_assert_eq(entries(&s), 1, "the temporary file is removed");
    cr_assert_eq(access(inner, F_OK), 0, "what was there is untouched");
    cr_assert_eq(unlink(inner), 0);
    cr_assert_eq(rmdir(s.path), 0);
    scratch_free(&s);
}

Test(report, missing_directory_is_an_io_error)
{
    struct report *r = (struct report *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(report_open("/tmp/blast-unit-no-such-dir/x/report.json", &info, &r, &err),
                 BLAST_EIO);
    cr_assert_null(r);
    cr_assert_str_eq(err.source, "/tmp/blast-unit-no-such-dir/x/report.json");
}

Test(report, stream_report_to_a_caller_stream)
{
    struct report *r = NULL;
    struct blast_error err;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    json_error_t jerr;
    json_t *j;

    cr_assert_not_null(f);
    blast_error_clear(&err);
    cr_assert_eq(report_open_stream(f, "-", &info, &r, &err), 0, "%s", err.text);
    add_three(r);
    commit_ok(r);
    cr_assert_neq(fputs("\n", f), EOF, "the stream stays open for the caller");
    cr_assert_eq(fclose(f), 0);
    j = json_loads(text, 0, &jerr);
    cr_assert_not_null(j, "%d: %s", jerr.line, jerr.text);
    cr_assert_eq(json_array_size(json_object_get(j, "recipients")), 3);
    json_decref(j);
    free(text);
}

Test(report, status_names)
{
    cr_assert_str_eq(outcome_status_name(OUTCOME_DELIVERED), "delivered");
    cr_assert_str_eq(outcome_status_name(OUTCOME_DEFERRED), "deferred");
    cr_assert_str_eq(outcome_status_name(OUTCOME_FAILED), "failed");
    cr_assert_str_eq(outcome_status_name(OUTCOME_UNKNOWN), "unknown");
    cr_assert_str_eq(outcome_status_name(OUTCOME_SUPPRESSED), "suppressed");
    cr_assert_str_eq(outcome_status_name(OUTCOME_INVALID), "invalid");
    cr_assert_str_eq(outcome_status_name(OUTCOME_DUPLICATE), "duplicate");
}

Test(report, abort_accepts_null)
{
    report_abort(NULL);
}

Test(report, a_gz_path_is_written_compressed_and_private, .fini = scratch_remove)
{
    struct scratch s;
    struct report *r;
    struct reportread_result out;
    struct blast_error err;
    struct stat st;
    char text[65536];
    unsigned char magic[2];
    gzFile gz;
    FILE *f;
    int n;
    json_t *j;
    json_error_t jerr;

    scratch_new(&s);
    snprintf(s.path, sizeof s.path, "%s/report.json.gz", s.dir);
    umask(0);
    r = open_ok(s.path, &info);
    add_three(r);
    commit_ok(r);
    cr_assert_eq(stat(s.path, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_expect_eq(entries(&s), 1, "no temporary file left");
    f = fopen(s.path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(magic, 1, 2, f), 2);
    fclose(f);
    cr_assert(magic[0] == 0x1f && magic[1] == 0x8b, "gzip's magic bytes");
    gz = gzopen(s.path, "rb");
    cr_assert_not_null(gz);
    n = gzread(gz, text, sizeof text - 1);
    cr_assert_gt(n, 0);
    text[n] = '\0';
    cr_assert_eq(gzclose(gz), Z_OK, "a whole gzip stream, trailer and all");
    j = json_loads(text, 0, &jerr);
    cr_assert_not_null(j, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
    cr_assert_eq(json_array_size(json_object_get(j, "recipients")), 3);
    json_decref(j);
    blast_error_clear(&err);
    cr_assert_eq(reportread_file(s.path, NULL, NULL, &out, &err), 0, "%s", err.text);
    cr_assert_eq(out.recipients, 3);
    cr_assert_eq(int_at(out.summary, "total"), 3);
    reportread_result_free(&out);
    scratch_free(&s);
}
