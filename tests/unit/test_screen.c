/*
 * test_screen - the rules a recipient row goes through before a message is made:
 * the address and name columns found in the list's header (or refused, naming the
 * campaign's setting or the list's header row), invalid addresses, duplicates
 * (local part exact, domain without regard to case or script), suppression lists
 * (text files and CSV files, without regard to case), and screen_restart.
 *
 * Each test writes its campaign, list and suppression files into a scratch
 * directory, so the places in errors can be checked to the column.
 */
#include "../../core/screen.h"
#include "../../core/suppressdb.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* scratch_dir/name in out. */
static void scratch_path(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", scratch_dir, name);
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    scratch_path(name, path, sizeof path);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
}

struct setup {
    struct campaign *c;
    struct recipients *list;
    struct screen *screen;
    struct screen_result who;
};

/*
 * Write campaign.yml (recipients_extra goes inside 'recipients', top_extra at the
 * end) and list.csv into a fresh scratch directory, then load the campaign and
 * open the list. Line 6 of campaign.yml is the first line of recipients_extra.
 */
static void prepare(const char *recipients_extra, const char *top_extra, const char *csv,
                    struct setup *s)
{
    char yml[2048], path[512], msg[2048];
    struct recipients_options opt = {0, 0, 0};
    struct blast_error err;

    memset(s, 0, sizeof *s);
    screen_result_init(&s->who);
    scratch_make();
    snprintf(yml, sizeof yml,
             "name: screen\n"
             "from: news@acme.example\n"
             "subject: Hi\n"
             "recipients:\n"
             "  path: list.csv\n"
             "%s"
             "body: {text: body.txt}\n"
             "relays: [{host: 127.0.0.1, tls: none}]\n"
             "%s",
             recipients_extra, top_extra);
    write_file("campaign.yml", yml);
    write_file("list.csv", csv);
    write_file("body.txt", "Hello\n");
    scratch_path("campaign.yml", path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(campaign_load(path, &s->c, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
    opt.delimiter = s->c->recipients.delimiter;
    cr_assert_eq(recipients_open(s->c->recipients.path, &opt, &s->list, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
}

static void setup_ok(const char *recipients_extra, const char *top_extra, const char *csv,
                     struct setup *s)
{
    struct blast_error err;
    char msg[2048];

    prepare(recipients_extra, top_extra, csv, s);
    blast_error_clear(&err);
    cr_assert_eq(screen_new(s->c, s->list, &s->screen, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(s->screen);
}

static void teardown(struct setup *s)
{
    screen_result_free(&s->who);
    screen_free(s->screen);
    recipients_close(s->list);
    campaign_free(s->c);
    memset(s, 0, sizeof *s);
}

/* screen_new must fail: returns its code, with everything released. */
static int screen_fails(struct setup *s, struct blast_error *err)
{
    int rc;

    blast_error_clear(err);
    s->screen = (struct screen *)0x1;
    rc = screen_new(s->c, s->list, &s->screen, err);
    cr_assert_null(s->screen, "*out is NULL after a failure");
    teardown(s);
    return rc;
}

/* Screen the next row; returns its verdict. */
static enum screen_verdict next(struct setup *s)
{
    struct recipients_row row;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(recipients_next(s->list, &row, &err), 1, "%s", err.text);
    cr_assert_eq(screen_row(s->screen, &row, &s->who, &err), 0, "%s", err.text);
    return s->who.verdict;
}

/* Screen every row left, writing one verdict letter a row (o, i, d, s) into out. */
static void verdicts(struct setup *s, char *out, size_t size)
{
    static const char letters[] = "oids";
    struct recipients_row row;
    struct blast_error err;
    size_t n = 0;
    int rc;

    blast_error_clear(&err);
    while ((rc = recipients_next(s->list, &row, &err)) == 1) {
        cr_assert_eq(screen_row(s->screen, &row, &s->who, &err), 0, "%s", err.text);
        cr_assert_lt(n + 1, size);
        out[n++] = letters[s->who.verdict];
    }
    cr_assert_eq(rc, 0, "%s", err.text);
    out[n] = '\0';
}

/* ---- columns ------------------------------------------------------------------------- */

Test(screen, default_columns_are_found, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("", "", "first_name,email\nAda,ada@example.com\n", &s);
    cr_assert_eq(screen_email_column(s.screen), 1);
    cr_assert_eq(screen_name_column(s.screen), -1, "no name column unless the campaign names it");
    cr_assert_eq(screen_suppression_size(s.screen), 0);
    teardown(&s);
}

Test(screen, named_columns_are_found, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("  email_column: address\n  name_column: full name\n", "",
             "full name,city,address\nAda Lovelace,London,ada@example.com\n", &s);
    cr_assert_eq(screen_email_column(s.screen), 2);
    cr_assert_eq(screen_name_column(s.screen), 0);
    cr_assert_eq(next(&s), SCREEN_OK, "%s", s.who.reason);
    cr_assert_str_eq(s.who.email, "ada@example.com");
    cr_assert_str_eq(s.who.to.envelope, "ada@example.com");
    cr_assert_str_eq(s.who.to.display, "Ada Lovelace");
    teardown(&s);
}

Test(screen, missing_default_email_column_blames_the_header_row, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char list[512];
    int rc;

    prepare("", "", "mail,first_name\nada@example.com,Ada\n", &s);
    scratch_path("list.csv", list, sizeof list);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_eq(err.code, BLAST_EINVAL);
    cr_assert_str_eq(err.source, list, "the list's header is to blame");
    cr_assert_eq(err.line, 1);
    cr_assert_eq(err.column, 1);
    cr_assert_str_eq(err.text, "no 'email' column in the header row (its columns: 'mail', "
                               "'first_name'); name the address column with "
                               "recipients.email_column");
}

Test(screen, missing_named_email_column_blames_the_campaign, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char campaign[512], list[512], want[1200];
    int rc;

    /* line 6: "  email_column: address", the value at column 17 */
    prepare("  email_column: address\n", "", "email,first_name\nada@example.com,Ada\n", &s);
    scratch_path("campaign.yml", campaign, sizeof campaign);
    scratch_path("list.csv", list, sizeof list);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, campaign, "the campaign's setting is to blame");
    cr_assert_eq(err.line, 6);
    cr_assert_eq(err.column, 17);
    snprintf(want, sizeof want,
             "the recipient list %s has no column 'address' (its columns: 'email', 'first_name')",
             list);
    cr_assert_str_eq(err.text, want);
}

Test(screen, missing_name_column_blames_the_campaign, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char campaign[512];
    int rc;

    /* line 6: "  name_column: name", the value at column 16 */
    prepare("  name_column: name\n", "", "email,first_name\nada@example.com,Ada\n", &s);
    scratch_path("campaign.yml", campaign, sizeof campaign);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, campaign);
    cr_assert_eq(err.line, 6);
    cr_assert_eq(err.column, 16);
    cr_assert_not_null(strstr(err.text, "no column 'name'"), "%s", err.text);
}

/* ---- verdicts ------------------------------------------------------------------------ */

Test(screen, invalid_address_gives_the_reason, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("", "", "email,first_name\nnot-an-address,Bad\nada@example.com,Ada\n", &s);
    cr_assert_eq(next(&s), SCREEN_INVALID);
    cr_assert_str_eq(s.who.reason, "invalid address 'not-an-address': no '@'");
    cr_assert_str_eq(s.who.email, "not-an-address", "the address as written");
    cr_assert_null(s.who.to.envelope, "no recipient for an invalid row");
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_str_empty(s.who.reason, "the reason is reset for the next row");
    cr_assert_str_eq(s.who.to.envelope, "ada@example.com");
    teardown(&s);
}

Test(screen, empty_address_is_invalid, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("", "", "email,first_name\n,Empty\n", &s);
    cr_assert_eq(next(&s), SCREEN_INVALID);
    cr_assert_str_eq(s.who.reason, "no address in column 'email'");
    cr_assert_str_empty(s.who.email);
    cr_assert_null(s.who.to.envelope);
    teardown(&s);
}

Test(screen, line_breaks_and_angle_brackets_are_invalid, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("", "",
             "email\n"
             "\"a\r\nb@example.com\"\n"
             "\"<a@example.com>\"\n"
             "a@nodot\n",
             &s);
    cr_assert_eq(next(&s), SCREEN_INVALID);
    cr_assert_str_eq(s.who.reason, "invalid address 'a\\r\\nb@example.com': contains a line break "
                                   "or an angle bracket");
    cr_assert_eq(next(&s), SCREEN_INVALID);
    cr_assert_not_null(strstr(s.who.reason, "angle bracket"), "%s", s.who.reason);
    cr_assert_eq(next(&s), SCREEN_INVALID);
    cr_assert_not_null(strstr(s.who.reason, "'a@nodot'"), "%s", s.who.reason);
    teardown(&s);
}

Test(screen, a_huge_address_is_invalid_and_shown_truncated, .fini = scratch_remove)
{
    struct setup s;
    char csv[1200];

    snprintf(csv, sizeof csv, "email\n%0600d@example.com\n", 0);
    setup_ok("", "", csv, &s);
    cr_assert_eq(next(&s), SCREEN_INVALID);
    cr_assert_eq(strlen(s.who.email), sizeof s.who.email - 1);
    cr_assert_eq(strncmp(s.who.email, "0000", 4), 0);
    cr_assert_not_null(strstr(s.who.reason, "64 octets"), "%s", s.who.reason);
    teardown(&s);
}

Test(screen, empty_name_gives_no_display_name, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("  name_column: name\n", "", "email,name\nada@example.com,\n", &s);
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_null(s.who.to.display);
    teardown(&s);
}

Test(screen, duplicates_compare_the_local_part_exactly_and_the_domain_in_any_case,
     .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    setup_ok("", "",
             "email\n"
             "a@example.com\n"  /* o */
             "a@EXAMPLE.COM\n"  /* d: the domain's case does not matter */
             "A@example.com\n"  /* o: a different local part */
             "a@Example.Com\n"  /* d */
             "A@EXAMPLE.com\n", /* d: of row 3 */
             &s);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "ododd");
    teardown(&s);
}

Test(screen, duplicate_reason_and_address, .fini = scratch_remove)
{
    struct setup s;

    setup_ok("", "", "email\na@example.com\na@EXAMPLE.COM\n", &s);
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_eq(next(&s), SCREEN_DUPLICATE);
    cr_assert_str_eq(s.who.email, "a@EXAMPLE.COM");
    cr_assert_str_not_empty(s.who.reason);
    cr_assert_str_eq(s.who.to.envelope, "a@example.com", "the envelope's domain is lower-case");
    teardown(&s);
}

Test(screen, international_domains_dedupe_in_their_ascii_form, .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    setup_ok("", "",
             "email\n"
             "d@пример.рф\n"
             "d@xn--e1afmkfd.xn--p1ai\n"
             "d@XN--E1AFMKFD.XN--P1AI\n",
             &s);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "odd");
    teardown(&s);
}

Test(screen, invalid_rows_are_not_remembered, .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    setup_ok("", "", "email\nbad\nbad\n\"\"\n\"\"\n", &s);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "iiii", "an invalid row is never a duplicate");
    teardown(&s);
}

/* ---- suppression --------------------------------------------------------------------- */

Test(screen, text_suppression_list_skips_comments_blanks_and_spaces, .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    prepare("", "suppression: stop.txt\n",
            "email\n"
            "a@example.com\n"
            "b@example.com\n"
            "c@example.com\n"
            "d@example.com\n"
            "e@example.com\n",
            &s);
    write_file("stop.txt", "\xef\xbb\xbf"
                           "b@example.com\r\n"
                           "# c@example.com is only a comment\n"
                           "\n"
                           "   \t\n"
                           "  d@example.com \t\n"
                           "e@example.com");
    {
        struct blast_error err;
        blast_error_clear(&err);
        cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    }
    cr_assert_eq(screen_suppression_size(s.screen), 3);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "ososs");
    teardown(&s);
}

/* ---- the suppression database ----------------------------------------------------- */

Test(screen, the_suppression_database_suppresses_with_its_reason, .fini = scratch_remove)
{
    struct setup s;
    struct suppressdb *db = NULL;
    struct blast_error err;
    char path[512];
    struct suppress_entry hard = {"Bob@Example.com", SUPPRESS_HARD, "dsn-5.1.1", "old",
                                  1764892800,        NULL};
    struct suppress_entry unsub = {"dee@example.org", SUPPRESS_UNSUBSCRIBE, NULL, NULL, 0, NULL};

    prepare("", "suppression_db: suppression.db\n",
            "email\n"
            "ann@example.com\n"
            "BOB@example.COM\n"
            "cy@example.com\n"
            "dee@example.org\n",
            &s);
    scratch_path("suppression.db", path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(suppressdb_open(path, true, &db, &err), 0, "%s", err.text);
    cr_assert_eq(suppressdb_add(db, &hard, &err), 0, "%s", err.text);
    cr_assert_eq(suppressdb_add(db, &unsub, &err), 0, "%s", err.text);
    suppressdb_close(db);
    cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED, "matched without regard to case");
    cr_assert_str_eq(s.who.reason, "in the suppression database", "no entry read yet");
    screen_explain(s.screen, &s.who);
    cr_assert_str_eq(s.who.reason,
                     "in the suppression database: hard (dsn-5.1.1) since 2025-12-05");
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_not(s.who.from_db);
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED);
    screen_explain(s.screen, &s.who);
    cr_assert_str_eq(s.who.reason, "in the suppression database: unsubscribe");
    teardown(&s);
}

Test(screen, a_suppression_database_not_there_yet_is_made_empty, .fini = scratch_remove)
{
    struct setup s;
    char path[512];
    struct stat st;

    setup_ok("", "suppression_db: new.db\n", "email\nann@example.com\n", &s);
    cr_assert_eq(next(&s), SCREEN_OK);
    scratch_path("new.db", path, sizeof path);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    teardown(&s);
}

Test(screen, a_file_that_is_not_a_suppression_database_is_an_error_at_its_key,
     .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;

    prepare("", "suppression_db: list.csv\n", "email\nann@example.com\n", &s);
    cr_assert_neq(screen_fails(&s, &err), 0);
    cr_assert_eq(err.line, 8, "the key's line: %d", err.line);
    cr_assert(strstr(err.text, "suppression_db") != NULL, "%s", err.text);
}

Test(screen, suppression_ignores_case_entirely, .fini = scratch_remove)
{
    struct setup s;

    prepare("", "suppression: [stop.txt]\n",
            "email\n"
            "b@example.com\n"
            "B@EXAMPLE.COM\n"
            "c@example.com\n",
            &s);
    write_file("stop.txt", "B@Example.COM\nC@EXAMPLE.com\n");
    {
        struct blast_error err;
        blast_error_clear(&err);
        cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    }
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED);
    cr_assert_str_eq(s.who.email, "b@example.com");
    cr_assert_str_not_empty(s.who.reason);
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED, "a suppressed address is never a duplicate");
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED);
    teardown(&s);
}

Test(screen, csv_suppression_list_uses_its_email_column, .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    prepare("", "suppression: [stop.txt, bounces.csv, more.CSV]\n",
            "email\n"
            "a@example.com\n"
            "b@example.com\n"
            "c@example.com\n"
            "d@example.com\n"
            "e@пример.рф\n",
            &s);
    write_file("stop.txt", "b@example.com\n");
    write_file("bounces.csv", "when,email,why\n"
                              "2026-01-01,C@Example.com,\"bounced, hard\"\n"
                              "2026-01-02,,empty rows are skipped\n"
                              "2026-01-03,b@example.com,on two lists\n");
    write_file("more.CSV", "email\ne@xn--e1afmkfd.xn--p1ai\n");
    {
        struct blast_error err;
        blast_error_clear(&err);
        cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    }
    cr_assert_eq(screen_suppression_size(s.screen), 3, "b, c and e, each once");
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "ossos");
    teardown(&s);
}

Test(screen, csv_suppression_list_follows_the_campaign_email_column, .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    prepare("  email_column: address\n", "suppression: [bounces.csv]\n",
            "address\n"
            "a@example.com\n"
            "b@example.com\n",
            &s);
    write_file("bounces.csv", "email,address\n"
                              "a@example.com,b@example.com\n");
    {
        struct blast_error err;
        blast_error_clear(&err);
        cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    }
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "os", "the column named like email_column wins over 'email'");
    teardown(&s);
}

Test(screen, csv_suppression_list_without_the_column_is_refused, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char path[512];
    int rc;

    prepare("", "suppression: [bounces.csv]\n", "email\na@example.com\n", &s);
    write_file("bounces.csv", "mail\na@example.com\n");
    scratch_path("bounces.csv", path, sizeof path);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 1);
    cr_assert_not_null(strstr(err.text, "no 'email' column"), "%s", err.text);
}

Test(screen, bad_entry_in_a_text_list_names_the_file_and_line, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char path[512];
    int rc;

    prepare("", "suppression: stop.txt\n", "email\na@example.com\n", &s);
    write_file("stop.txt", "# unsubscribed\n\nb@example.com\nnot an address\n");
    scratch_path("stop.txt", path, sizeof path);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 4);
    cr_assert_str_eq(err.text, "suppression list: invalid address 'not an address': no '@'");
}

Test(screen, bad_entry_in_a_csv_list_names_the_file_and_line, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char path[512];
    int rc;

    prepare("", "suppression: bounces.csv\n", "email\na@example.com\n", &s);
    write_file("bounces.csv", "email\nb@example.com\n\"multi\nline\"\nx@nodot\n");
    scratch_path("bounces.csv", path, sizeof path);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 3, "the row starts on line 3");
    cr_assert_not_null(strstr(err.text, "suppression list: invalid address"), "%s", err.text);
}

Test(screen, missing_suppression_file_blames_the_campaign_line, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char campaign[512];
    int rc;

    /* line 8: "suppression: [stop.txt, nope.txt]"; nope.txt starts at column 25 */
    prepare("", "suppression: [stop.txt, nope.txt]\n", "email\na@example.com\n", &s);
    write_file("stop.txt", "b@example.com\n");
    scratch_path("campaign.yml", campaign, sizeof campaign);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EIO, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, campaign);
    cr_assert_eq(err.line, 8);
    cr_assert_eq(err.column, 25);
    cr_assert_not_null(strstr(err.text, "nope.txt: cannot open suppression list: No such file"),
                       "%s", err.text);
}

Test(screen, missing_csv_suppression_file_is_called_a_suppression_list, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char campaign[512], want[1200];
    int rc;

    /* line 8: "suppression: bounces.csv", the name at column 14 */
    prepare("", "suppression: bounces.csv\n", "email\na@example.com\n", &s);
    scratch_path("campaign.yml", campaign, sizeof campaign);
    rc = screen_fails(&s, &err);
    cr_assert_eq(rc, BLAST_EIO, "rc %d: %s", rc, err.text);
    cr_assert_str_eq(err.source, campaign);
    cr_assert_eq(err.line, 8);
    cr_assert_eq(err.column, 14);
    snprintf(want, sizeof want,
             "suppression: %s/bounces.csv: cannot open suppression list: No such file or "
             "directory",
             scratch_dir);
    cr_assert_str_eq(err.text, want, "a missing suppression file is not the recipient list: %s",
                     err.text);
}

/* ---- restart ----------------------------------------------------------------------- */

Test(screen, restart_forgets_the_addresses_seen_but_not_the_suppressed, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char first[16], second[16];

    prepare("", "suppression: stop.txt\n",
            "email\n"
            "a@example.com\n"
            "b@example.com\n"
            "a@example.com\n",
            &s);
    write_file("stop.txt", "b@example.com\n");
    blast_error_clear(&err);
    cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    verdicts(&s, first, sizeof first);
    cr_assert_str_eq(first, "osd");

    /* without a restart, a second pass finds every address already seen */
    cr_assert_eq(recipients_rewind(s.list, &err), 0, "%s", err.text);
    verdicts(&s, second, sizeof second);
    cr_assert_str_eq(second, "dsd");

    cr_assert_eq(recipients_rewind(s.list, &err), 0, "%s", err.text);
    cr_assert_eq(screen_restart(s.screen, &err), 0, "%s", err.text);
    verdicts(&s, second, sizeof second);
    cr_assert_str_eq(second, first, "the same verdicts as the first pass");
    cr_assert_eq(screen_suppression_size(s.screen), 1);
    teardown(&s);
}

/* ---- names and NULL ------------------------------------------------------------------ */

Test(screen, verdict_names)
{
    cr_assert_str_eq(screen_verdict_name(SCREEN_OK), "ok");
    cr_assert_str_eq(screen_verdict_name(SCREEN_INVALID), "invalid");
    cr_assert_str_eq(screen_verdict_name(SCREEN_DUPLICATE), "duplicate");
    cr_assert_str_eq(screen_verdict_name(SCREEN_SUPPRESSED), "suppressed");
}

Test(screen, free_accepts_null)
{
    struct screen_result res;

    screen_free(NULL);
    screen_result_init(&res);
    screen_result_free(&res);
    screen_result_free(&res);
}

/* ---- reports of earlier runs (send --exclude-report, --suppress-from) ---------------- */

/* A report whose recipients are given as (email, status, enhanced code) lines. */
static const char prev_report[] =
    "{\"schema_version\": 1,\n"
    "\"campaign\": {\"name\":\"prev\",\"file\":\"prev.yml\",\"dry_run\":false,\"test_to\":null},\n"
    "\"recipients\": [\n"
    "{\"email\":\"Sent@Example.COM\",\"row\":1,\"status\":\"delivered\",\"enhanced_code\":\"2.0."
    "0\"},\n"
    "{\"email\":\"gone@example.com\",\"row\":2,\"status\":\"failed\",\"enhanced_code\":\"5.1.1\"},"
    "\n"
    "{\"email\":\"nodomain@example.net\",\"row\":3,\"status\":\"failed\",\"enhanced_code\":\"5.1."
    "2\"},\n"
    "{\"email\":\"full@example.com\",\"row\":4,\"status\":\"failed\",\"enhanced_code\":\"5.2.2\"},"
    "\n"
    "{\"email\":\"later@example.com\",\"row\":5,\"status\":\"deferred\",\"enhanced_code\":\"4.1."
    "1\"},\n"
    "{\"email\":\"not an address\",\"row\":6,\"status\":\"delivered\"}\n"
    "],\n"
    "\"summary\": {\"total\": 6}\n"
    "}\n";

static const char prev_list[] =
    "email\n"
    "Sent@example.com\n" /* delivered before: the domain's case differs */
    "sent@example.com\n" /* another local part: not the same recipient */
    "GONE@example.com\n" /* a 5.1.1 failure: suppression ignores case */
    "nodomain@example.net\n"
    "full@example.com\n"  /* 5.2.2 is about the mailbox, not the address */
    "later@example.com\n" /* deferred is not final */
    "new@example.com\n";

static void add_report(struct setup *s, enum screen_report_rule rule)
{
    char path[512];
    struct blast_error err;

    scratch_path("prev.json", path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(screen_add_report(s->screen, path, rule, &err), 0, "%s:%d:%d: %s", err.source,
                 err.line, err.column, err.text);
}

Test(screen, exclude_report_skips_whom_it_shows_delivered, .fini = scratch_remove)
{
    struct setup s;
    char got[16], path[512], want[600];

    setup_ok("", "", prev_list, &s);
    write_file("prev.json", prev_report);
    add_report(&s, SCREEN_EXCLUDE_DELIVERED);
    cr_assert_eq(screen_report_size(s.screen), 1, "the unparsable address is passed over");
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED);
    scratch_path("prev.json", path, sizeof path);
    snprintf(want, sizeof want, "delivered in %s", path);
    cr_assert_str_eq(s.who.reason, want);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "oooooo");
    teardown(&s);
}

Test(screen, suppress_from_takes_bad_addresses_only, .fini = scratch_remove)
{
    struct setup s;
    char got[16];

    setup_ok("", "", prev_list, &s);
    write_file("prev.json", prev_report);
    add_report(&s, SCREEN_SUPPRESS_BAD_ADDRESSES);
    cr_assert_eq(screen_report_size(s.screen), 2);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "oossooo");
    cr_assert_eq(screen_suppression_size(s.screen), 0, "the campaign's own lists are apart");
    teardown(&s);
}

Test(screen, both_rules_and_the_campaign_list_together, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char got[16];

    prepare("", "suppression: stop.txt\n", prev_list, &s);
    write_file("stop.txt", "new@example.com\n");
    write_file("prev.json", prev_report);
    blast_error_clear(&err);
    cr_assert_eq(screen_new(s.c, s.list, &s.screen, &err), 0, "%s", err.text);
    add_report(&s, SCREEN_EXCLUDE_DELIVERED);
    add_report(&s, SCREEN_SUPPRESS_BAD_ADDRESSES);
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED);
    cr_assert_not_null(strstr(s.who.reason, "delivered in "));
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_eq(next(&s), SCREEN_SUPPRESSED);
    cr_assert_not_null(strstr(s.who.reason, "failed for good (5.1.x) in "), "%s", s.who.reason);
    verdicts(&s, got, sizeof got);
    cr_assert_str_eq(got, "soos");
    cr_assert_str_eq(s.who.reason, "on a suppression list");
    teardown(&s);
}

Test(screen, a_test_sends_report_is_refused, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char path[512];

    setup_ok("", "", prev_list, &s);
    write_file("prev.json", "{\"schema_version\":1,\"campaign\":{\"name\":\"p\",\"test_to\":"
                            "\"me@acme.example\"},\"recipients\":[{\"email\":\"a@example.com\","
                            "\"status\":\"delivered\"}],\"summary\":{}}");
    scratch_path("prev.json", path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(screen_add_report(s.screen, path, SCREEN_EXCLUDE_DELIVERED, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.source, path);
    cr_assert_not_null(strstr(err.text, "--exclude-report: the report of a test send"), "%s",
                       err.text);
    cr_assert_not_null(strstr(err.text, "me@acme.example"));
    cr_assert_eq(screen_report_size(s.screen), 0);
    cr_assert_eq(next(&s), SCREEN_OK);
    teardown(&s);
}

Test(screen, a_damaged_report_names_its_place, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;
    char path[512];

    setup_ok("", "", prev_list, &s);
    write_file("prev.json", "{\"schema_version\": 1,\n\"recipients\": [\n{\"email\":\"a@x\",");
    scratch_path("prev.json", path, sizeof path);
    blast_error_clear(&err);
    cr_assert_eq(screen_add_report(s.screen, path, SCREEN_SUPPRESS_BAD_ADDRESSES, &err),
                 BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 3);
    cr_assert_eq(err.column, 16);
    cr_assert_str_eq(screen_report_rule_name(SCREEN_SUPPRESS_BAD_ADDRESSES), "suppress-from");
    cr_assert_str_eq(screen_report_rule_name(SCREEN_EXCLUDE_DELIVERED), "exclude-report");
    teardown(&s);
}

/*
 * send --shard (docs/sharding.md): a row belongs to the shard of its key, the
 * envelope lower-cased, or the text lower-cased without an address. Every row of
 * the list is taken by exactly one of N shards, the one its key names, whether it
 * was placed before any parse (ASCII) or after (an international domain, whose key
 * is its A-label form); what a shard takes is screened as without shards.
 */
Test(screen, each_row_is_one_shards_by_its_key)
{
    static const struct {
        const char *key;
        char verdict; /* in its own shard: o ok, i invalid, d duplicate */
    } want[] = {
        {"ada@example.com", 'o'},      {"bob@example.com", 'o'},
        {"\"a b\"@example.org", 'o'},  {"x@[127.0.0.1]", 'o'},
        {"not-an-address", 'i'},       {"a..b@example.com", 'i'},
        {"ada@xn--bcher-kva.de", 'o'}, {"ada@xn--bcher-kva.de", 'd'},
        {"ada@example.com", 'd'},      {"", 'i'},
    };
    const char *csv = "email\n"
                      "ada@example.com\n"
                      "Bob@EXAMPLE.com\n"
                      "\"\"\"a b\"\"@Example.ORG\"\n"
                      "x@[127.0.0.1]\n"
                      "not-an-address\n"
                      "A..b@example.com\n"
                      "ada@b\xc3\xbc"
                      "cher.de\n"
                      "ada@XN--BCHER-KVA.DE\n"
                      "ada@Example.Com\n"
                      "\"\"\n";
    const unsigned n = 3;
    unsigned taken[10] = {0};

    for (unsigned i = 0; i < n; i++) {
        struct shard sh = {i, n};
        struct setup s;
        setup_ok("", "", csv, &s);
        screen_set_shard(s.screen, &sh);
        for (size_t r = 0; r < sizeof want / sizeof want[0]; r++) {
            enum screen_verdict v = next(&s);
            unsigned mine = shard_of(want[r].key, strlen(want[r].key), n);
            if (mine != i) {
                cr_assert_eq(v, SCREEN_OTHER_SHARD, "row %zu in shard %u, its key's is %u", r + 1,
                             i, mine);
                continue;
            }
            taken[r]++;
            char got = v == SCREEN_OK          ? 'o'
                       : v == SCREEN_INVALID   ? 'i'
                       : v == SCREEN_DUPLICATE ? 'd'
                                               : '?';
            cr_assert_eq(got, want[r].verdict, "row %zu: '%c', wanted '%c'", r + 1, got,
                         want[r].verdict);
        }
        teardown(&s);
    }
    for (size_t r = 0; r < sizeof want / sizeof want[0]; r++)
        cr_assert_eq(taken[r], 1, "row %zu taken by %u shards", r + 1, taken[r]);
}

/*
 * A second pass told the first pass's duplicates (screen_use_duplicates) judges
 * every row as the first did, without a set of the addresses seen.
 */
Test(screen, a_second_pass_takes_the_first_ones_duplicates, .fini = scratch_remove)
{
    const char *csv = "email\n"
                      "ada@example.com\n"
                      "bob@example.com\n"
                      "ADA@example.com\n" /* another mailbox: local parts keep their case */
                      "ada@EXAMPLE.com\n" /* the same one: domains do not */
                      "not-an-address\n"
                      "bob@example.com\n"
                      "cy@example.com\n"
                      "Cy@Example.com\n";
    char first[16] = {0}, second[16] = {0};
    uint64_t dups[1] = {0};
    struct setup s;
    struct blast_error err;

    setup_ok("", "", csv, &s);
    verdicts(&s, first, sizeof first);
    cr_assert_str_eq(first, "ooodidoo");
    for (size_t r = 1; first[r - 1] != '\0'; r++)
        if (first[r - 1] == 'd')
            dups[0] |= 1ULL << r;
    blast_error_clear(&err);
    cr_assert_eq(recipients_rewind(s.list, &err), 0, "%s", err.text);
    cr_assert_eq(screen_restart(s.screen, &err), 0, "%s", err.text);
    screen_use_duplicates(s.screen, dups, 64);
    verdicts(&s, second, sizeof second);
    cr_assert_str_eq(second, first);
    cr_assert_eq(screen_seen_size(s.screen), 0, "no address kept in the second pass");
    teardown(&s);
}

/* A first pass without duplicates: the second takes none, and keeps no set either. */
Test(screen, no_duplicates_in_the_first_pass_none_in_the_second, .fini = scratch_remove)
{
    struct setup s;
    struct blast_error err;

    setup_ok("", "", "email\nada@example.com\nbob@example.com\n", &s);
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_eq(next(&s), SCREEN_OK);
    blast_error_clear(&err);
    cr_assert_eq(recipients_rewind(s.list, &err), 0, "%s", err.text);
    cr_assert_eq(screen_restart(s.screen, &err), 0, "%s", err.text);
    screen_use_duplicates(s.screen, NULL, 0);
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_eq(next(&s), SCREEN_OK);
    cr_assert_eq(screen_seen_size(s.screen), 0, "no address kept");
    teardown(&s);
}
