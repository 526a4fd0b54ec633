/*
 * Unit tests for core/intake: one message at a time (intake_message), against a
 * real suppression database and a campaign's real journal, without a server:
 * attribution by VERP token, by recipient and by Message-ID; a forged token; what
 * each class leads to; a message read twice; and what a report shows afterwards.
 */
#include "../../core/intake.h"
#include "../../core/journal.h"
#include "../../core/verp.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "throwaway-unit-secret-0123456789"

static struct campaign *c;
static struct suppressdb *db;
static struct intake *in;
static struct intake_campaign ic;
static struct intake_options o;
static char journal_path[256];

static int64_t fixed_now(void)
{
    return 1796400000; /* 2026-12-04 */
}

static void setup(void)
{
    const char *dir = scratch_make();
    char path[256], dbpath[256];
    struct blast_error err = {0};
    struct journal *j;
    struct journal_options jo = {"hash", false, false, false, false, NULL};
    static const char *const rows[] = {"ada@example.com", "bob@example.com", "cy@example.org"};

    scratch_write_file(dir, "list.csv", "email\nada@example.com\n", path, sizeof path);
    scratch_write_file(dir, "body.txt", "Hi\n", path, sizeof path);
    scratch_write_file(dir, "c.yml",
                       "name: unit-news\nfrom: news@acme.example\nsubject: Hi\n"
                       "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                       "relays: [{host: 127.0.0.1, tls: none}]\n"
                       "list_unsubscribe: {mailto: unsubscribe@acme.example}\n"
                       "return_path: {address: \"bounces+{token}@acme.example\", "
                       "secret_env: UNIT_SECRET}\n",
                       path, sizeof path);
    cr_assert_eq(campaign_load(path, &c, &err), 0, "%s", err.text);
    snprintf(journal_path, sizeof journal_path, "%s/c.journal", dir);
    cr_assert_eq(journal_open(journal_path, &jo, &j, &err), 0, "%s", err.text);
    for (size_t i = 0; i < 3; i++) {
        char id[64];
        snprintf(id, sizeof id, "<m%zu@acme.example>", i + 1);
        cr_assert_eq(journal_sending(j, i + 1, rows[i], id, 1, "r", NULL, &err), 0);
    }
    cr_assert_eq(journal_sync(j, &err), 0);
    journal_close(j);
    snprintf(dbpath, sizeof dbpath, "%s/s.db", dir);
    cr_assert_eq(suppressdb_open(dbpath, true, &db, &err), 0, "%s", err.text);
    ic = (struct intake_campaign){c, SECRET, strlen(SECRET), journal_path, NULL, 0};
    o = (struct intake_options){&ic,
                                1,
                                db,
                                "imaps://unit/INBOX",
                                CAMPAIGN_BOUNCES_DELETE,
                                NULL,
                                false,
                                2,
                                7L * 24 * 3600 * 1000,
                                0,
                                0,
                                1 << 20,
                                NULL,
                                fixed_now,
                                NULL};
    cr_assert_eq(intake_new(&o, &in, &err), 0);
}

static void teardown(void)
{
    intake_free(in);
    suppressdb_close(db);
    campaign_free(c);
    scratch_remove();
}

TestSuite(intake, .init = setup, .fini = teardown);

static char *dsn(const char *to, const char *rcpt, const char *status, const char *id)
{
    char *m = NULL;
    cr_assert(asprintf(&m,
                       "From: MAILER-DAEMON@mx.example\r\nTo: %s\r\nDelivered-To: %s\r\n"
                       "Message-ID: <dsn-%s-%s@mx.example>\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: multipart/report; report-type=delivery-status; "
                       "boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
                       "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
                       "mx.example\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\n"
                       "Status: %s\r\nDiagnostic-Code: smtp; 550 %s no\r\n\r\n--B\r\n"
                       "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: %s\r\n\r\n--B--\r\n",
                       to, to, rcpt, status, rcpt, status, status, id ? id : "<none@x>") > 0);
    return m;
}

static char *verp_for(size_t row)
{
    char token[VERP_TOKEN_SIZE], *addr = malloc(128);
    struct blast_error err = {0};
    cr_assert_eq(verp_token(SECRET, strlen(SECRET), "unit-news", row, token, &err), 0);
    cr_assert_eq(verp_address("bounces+{token}@acme.example", token, addr, 128, &err), 0);
    return addr;
}

static enum intake_result feed(const char *msg, struct intake_stats *st)
{
    enum intake_result r;
    struct blast_error err = {0};
    cr_assert_eq(intake_message(in, msg, strlen(msg), "1", &r, st, &err), 0, "%s", err.text);
    return r;
}

static int count_cb(void *arg, const struct suppress_entry *e)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

static int suppressed(const char *address)
{
    int n = 0;
    struct blast_error err = {0};
    cr_assert_geq(suppressdb_find(db, address, count_cb, &n, &err), 0);
    return n;
}

Test(intake, a_verp_token_names_the_row_whatever_the_report_says)
{
    struct intake_stats st = {0};
    char *to = verp_for(2), *m = dsn(to, "someone-else@example.net", "5.1.1", NULL);

    cr_assert_eq(feed(m, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("bob@example.com"), 1, "the journal's address for row 2");
    cr_assert_eq(suppressed("someone-else@example.net"), 0, "not the report's");
    cr_assert_eq(st.by_class[BOUNCE_HARD], 1);
    free(m);
    free(to);
}

Test(intake, a_forged_token_records_nothing)
{
    struct intake_stats st = {0};
    char *to = verp_for(2);
    to[strlen("bounces+") + 10] ^= 1; /* one character changed */
    char *m = dsn(to, "bob@example.com", "5.1.1", "<m2@acme.example>");

    cr_assert_eq(feed(m, &st), INTAKE_IGNORED);
    cr_assert_eq(suppressed("bob@example.com"), 0);
    cr_assert_eq(st.events, 0);
    free(m);
    free(to);
}

Test(intake, without_a_token_by_recipient_then_by_message_id)
{
    struct intake_stats st = {0};
    char *a = dsn("news@acme.example", "ADA@example.com", "5.1.1", NULL);
    char *b = dsn("news@acme.example", "redacted@example.org", "5.1.1", "<m3@acme.example>");
    char *n = dsn("news@acme.example", "nobody@example.org", "5.1.1", "<nope@acme.example>");

    cr_assert_eq(feed(a, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("ada@example.com"), 1, "matched without regard to case");
    cr_assert_eq(feed(b, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("cy@example.org"), 1, "row 3 by its Message-ID");
    cr_assert_eq(feed(n, &st), INTAKE_IGNORED, "a stranger is not ours to suppress");
    cr_assert_eq(suppressed("nobody@example.org"), 0);
    free(a);
    free(b);
    free(n);
}

Test(intake, a_message_read_twice_is_recorded_once)
{
    struct intake_stats st = {0};
    char *to = verp_for(1), *m = dsn(to, "ada@example.com", "5.1.1", NULL);

    cr_assert_eq(feed(m, &st), INTAKE_RECORDED);
    cr_assert_eq(feed(m, &st), INTAKE_AGAIN);
    cr_assert_eq(st.events, 1);
    cr_assert_eq(st.again, 1);
    free(m);
    free(to);
}

Test(intake, soft_bounces_suppress_at_the_count_and_policy_never)
{
    struct intake_stats st = {0};
    char *to = verp_for(1);
    char *s1 = dsn(to, "ada@example.com", "4.2.2", "<a@x>");
    char *s2 = dsn(to, "ada@example.com", "4.2.2", "<b@x>"); /* another message */
    char *to2 = verp_for(2), *p = dsn(to2, "bob@example.com", "5.7.1", NULL);

    cr_assert_eq(feed(s1, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("ada@example.com"), 0, "one soft bounce of two");
    cr_assert_eq(feed(s2, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("ada@example.com"), 1, "the second within the window");
    cr_assert_eq(feed(p, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("bob@example.com"), 0, "a policy block is the sender's");
    cr_assert_eq(st.by_class[BOUNCE_POLICY], 1);
    free(s1);
    free(s2);
    free(p);
    free(to);
    free(to2);
}

Test(intake, an_unsubscribe_request_suppresses_its_sender)
{
    struct intake_stats st = {0};
    const char *m = "From: Cy <CY@example.org>\r\nTo: unsubscribe@acme.example\r\n"
                    "Subject: unsubscribe\r\nMessage-ID: <u@example.org>\r\n\r\nunsubscribe\r\n";

    cr_assert_eq(feed(m, &st), INTAKE_RECORDED);
    cr_assert_eq(suppressed("cy@example.org"), 1);
    cr_assert_eq(st.by_class[BOUNCE_UNSUBSCRIBE], 1);
}

Test(intake, unreadable_and_unrelated_messages_stay)
{
    struct intake_stats st = {0};

    cr_assert_eq(feed("no header, just words\r\n", &st), INTAKE_ERROR);
    cr_assert_eq(
        feed("From: a@example.com\r\nTo: news@acme.example\r\nSubject: hi\r\n\r\nhello\r\n", &st),
        INTAKE_IGNORED);
    cr_assert_eq(st.errors, 1);
    cr_assert_eq(st.ignored, 1);
}

Test(intake, a_report_shows_who_bounced_later)
{
    struct intake_stats st = {0};
    struct intake_later *l;
    struct blast_error err = {0};
    struct outcome a, b;
    char *to = verp_for(2), *m = dsn(to, "bob@example.com", "5.1.1", NULL);

    cr_assert_eq(feed(m, &st), INTAKE_RECORDED);
    cr_assert_eq(intake_later_load(db, "unit-news", &l, &err), 0, "%s", err.text);
    cr_assert_eq(intake_later_count(l), 1);
    outcome_init(&a);
    outcome_init(&b);
    a.row = 2;
    a.status = OUTCOME_DELIVERED;
    outcome_set(&a.email, "bob@example.com");
    b.row = 1;
    b.status = OUTCOME_DELIVERED;
    outcome_set(&b.email, "ada@example.com");
    cr_assert_eq(intake_later_apply(l, &a), 1);
    cr_assert_eq(a.status, OUTCOME_BOUNCED);
    cr_assert_str_eq(a.bounce.class_, "hard");
    cr_assert_str_eq(a.bounce.enhanced, "5.1.1");
    cr_assert_eq(a.bounce.time.sec, fixed_now());
    cr_assert_eq(intake_later_apply(l, &b), 0, "row 1 did not bounce");
    cr_assert_eq(b.status, OUTCOME_DELIVERED);
    outcome_free(&a);
    outcome_free(&b);
    intake_later_free(l);
    free(m);
    free(to);
}

/* A token verified for a row the journal never sent: not recorded, and said so. */
Test(intake, a_valid_token_for_a_row_never_sent_records_nothing)
{
    struct intake_stats st = {0};
    char *to = verp_for(9), *m = dsn(to, "ada@example.com", "5.1.1", NULL);

    cr_assert_eq(feed(m, &st), INTAKE_IGNORED);
    cr_assert_eq(suppressed("ada@example.com"), 0);
    cr_assert_eq(st.events, 0);
    free(m);
    free(to);
}
