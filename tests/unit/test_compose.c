/*
 * test_compose - from a fixture campaign and recipient list to messages: each row
 * is screened first (screen.h decides who the recipient is), then composed for
 * the screened address or a test address. Placeholders are filled from columns,
 * vars (nested ones with dots) and built-ins; unknown placeholders are named with
 * their place, the first one alone or every one through a struct blast_diag.
 */
#include "../../core/compose.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CAMPAIGNS "../fixtures/campaigns/"

struct setup {
    struct campaign *c;
    struct recipients *list;
    struct screen *screen;
    struct compose *cp;
};

/*
 * The scratch directory of the running test, made fresh under /tmp (Criterion
 * runs each test in its own process). Tests that make one name scratch_remove as
 * their .fini, so it goes away even when an assertion fails half-way.
 */
static char scratch_dir[64];

static const char *scratch_make(void)
{
    snprintf(scratch_dir, sizeof scratch_dir, "/tmp/blast-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(scratch_dir), "mkdtemp: %s", strerror(errno));
    return scratch_dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void scratch_remove(void)
{
    if (scratch_dir[0] != '\0')
        nftw(scratch_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    scratch_dir[0] = '\0';
}

/* Write text to scratch_dir/name; the path goes to out when out is not NULL. */
static void write_file(const char *name, const char *text, char *out, size_t size)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", scratch_dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
    if (out != NULL)
        snprintf(out, size, "%s", path);
}

/* Load a campaign, open its list and screen it; the caller checks compose_new itself. */
static void load(const char *path, struct setup *s)
{
    struct blast_error err;
    struct recipients_options opt = {0, 0, 0};
    char msg[2048];

    memset(s, 0, sizeof *s);
    blast_error_clear(&err);
    cr_assert_eq(campaign_load(path, &s->c, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
    opt.delimiter = s->c->recipients.delimiter;
    cr_assert_eq(recipients_open(s->c->recipients.path, &opt, &s->list, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
    cr_assert_eq(screen_new(s->c, s->list, &s->screen, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
}

static void load_ok(const char *path, struct setup *s)
{
    struct blast_error err;
    char msg[2048];

    load(path, s);
    blast_error_clear(&err);
    cr_assert_eq(compose_new(s->c, s->list, s->screen, NULL, &s->cp, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(s->cp);
}

static void unload(struct setup *s)
{
    compose_free(s->cp);
    screen_free(s->screen);
    recipients_close(s->list);
    campaign_free(s->c);
    memset(s, 0, sizeof *s);
}

/* Read data rows until row number n, screening each (so dedupe sees them all). */
static void seek_row(struct setup *s, size_t n, struct recipients_row *row,
                     struct screen_result *who)
{
    struct blast_error err;

    blast_error_clear(&err);
    do {
        cr_assert_eq(recipients_next(s->list, row, &err), 1, "%s", err.text);
        cr_assert_eq(screen_row(s->screen, row, who, &err), 0, "%s", err.text);
    } while (row->row < n);
}

/*
 * Screen row n, which must be accepted, and compose it for test_to, or for the
 * screened address when test_to is NULL. who keeps the screening result.
 */
static void compose(struct setup *s, size_t n, const struct address *test_to,
                    struct screen_result *who, struct compose_result *res)
{
    struct recipients_row row;
    struct blast_error err;
    char msg[2048];

    seek_row(s, n, &row, who);
    cr_assert_eq(who->verdict, SCREEN_OK, "row %zu: %s: %s", n, screen_verdict_name(who->verdict),
                 who->reason);
    blast_error_clear(&err);
    cr_assert_eq(compose_row(s->cp, &row, test_to != NULL ? test_to : &who->to, res, &err), 0, "%s",
                 blast_error_format(&err, msg, sizeof msg));
}

/* The header block of a message, as a C string in out. */
static void headers_of(const struct compose_result *res, char *out, size_t size)
{
    const char *end = strstr(res->message.data, "\r\n\r\n");

    cr_assert_not_null(end);
    cr_assert_lt((size_t)(end - res->message.data) + 2, size);
    memcpy(out, res->message.data, (size_t)(end - res->message.data) + 2);
    out[end - res->message.data + 2] = '\0';
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    const char *p = hay;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

static void assert_contains(const char *hay, const char *needle)
{
    cr_assert_not_null(strstr(hay, needle), "'%s' not found in:\n%s", needle, hay);
}

Test(compose, placeholders_are_filled)
{
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    char headers[4096];

    load_ok(CAMPAIGNS "compose.yml", &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    cr_assert_str_eq(who.email, "ada@example.com");
    cr_assert_str_eq(who.to.envelope, "ada@example.com");
    cr_assert_str_eq(who.to.display, "Ada Lovelace", "the name column gives the display name");
    cr_assert_not(res.smtputf8);
    cr_assert_str_not_empty(res.message_id);
    cr_assert_not_null(strstr(res.message_id, "@acme.example>"), "%s", res.message_id);

    headers_of(&res, headers, sizeof headers);
    assert_contains(headers, "\r\nSubject: Hello Ada from Rock & Roll\r\n");
    assert_contains(headers, "\r\nTo: Ada Lovelace <ada@example.com>\r\n");
    assert_contains(headers, "\r\nFrom: Acme News <news@acme.example>\r\n");
    assert_contains(headers, "\r\nReply-To: Acme Help <help@acme.example>\r\n");
    {
        char want[300];
        snprintf(want, sizeof want, "\r\nMessage-ID: %s\r\n", res.message_id);
        assert_contains(headers, want);
    }
    assert_contains(res.message.data,
                    "Hello Ada,\r\n\r\nNews from Rock & Roll for ada@example.com (row 1 of "
                    "unit-compose).\r\n");
    assert_contains(res.message.data, "<p>Hello Ada, news from Rock &amp; Roll (Rock & Roll).</p>");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, result_is_reused_across_rows)
{
    struct setup s;
    struct compose_result res;
    struct screen_result who;
    struct recipients_row row;
    struct blast_error err;
    size_t n = 0, valid = 0;
    int rc;

    load_ok(CAMPAIGNS "compose.yml", &s);
    compose_result_init(&res);
    screen_result_init(&who);
    blast_error_clear(&err);
    while ((rc = recipients_next(s.list, &row, &err)) == 1) {
        n++;
        cr_assert_eq(screen_row(s.screen, &row, &who, &err), 0, "%s", err.text);
        if (who.verdict != SCREEN_OK) {
            cr_assert_eq(who.verdict, SCREEN_INVALID, "row %zu", row.row);
            cr_assert_str_not_empty(who.reason);
            continue;
        }
        cr_assert_eq(compose_row(s.cp, &row, &who.to, &res, &err), 0, "%s", err.text);
        valid++;
        cr_assert_eq(strncmp(res.message.data, "Date: ", 6), 0, "row %zu", row.row);
        cr_assert_eq(count(res.message.data, "\r\nMIME-Version: 1.0\r\n"), 1,
                     "row %zu: one message, not the previous one and this", row.row);
        cr_assert_eq(count(res.message.data, "\r\nTo: "), 1, "row %zu", row.row);
    }
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(n, 4);
    cr_assert_eq(valid, 2);
    screen_result_free(&who);
    compose_result_free(&res);
    unload(&s);
}

Test(compose, utf8_address_needs_smtputf8)
{
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    load_ok(CAMPAIGNS "compose.yml", &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 4, NULL, &who, &res);
    cr_assert_str_eq(who.to.envelope, "josé@example.com");
    cr_assert(res.smtputf8);
    cr_assert_not_null(strstr(res.message.data, "\r\nContent-Transfer-Encoding: quoted-printable"),
                       "the body has non-ASCII text");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, smtputf8_follows_the_address_given)
{
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct address tester;
    struct blast_error err;

    /* row 4 is josé@example.com; a test send to an ASCII address needs no SMTPUTF8 */
    load_ok(CAMPAIGNS "compose.yml", &s);
    blast_error_clear(&err);
    cr_assert_eq(address_parse("tester@qa.example", &tester, &err), 0);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 4, &tester, &who, &res);
    cr_assert_not(res.smtputf8);
    address_free(&tester);
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, test_to_replaces_the_recipient)
{
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct address tester;
    struct blast_error err;
    char headers[4096];

    load_ok(CAMPAIGNS "compose.yml", &s);
    blast_error_clear(&err);
    cr_assert_eq(address_parse("tester@qa.example", &tester, &err), 0);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, &tester, &who, &res);
    cr_assert_str_eq(who.email, "ada@example.com", "the row's address is still reported");
    headers_of(&res, headers, sizeof headers);
    assert_contains(headers, "\r\nTo: tester@qa.example\r\n");
    cr_assert_null(strstr(headers, "ada@example.com"), "the real recipient is not addressed");
    assert_contains(headers, "\r\nSubject: Hello Ada from Rock & Roll\r\n");
    assert_contains(res.message.data, "for ada@example.com (row 1");
    address_free(&tester);
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, envelope_from_defaults_to_the_from_address)
{
    struct setup s;

    load_ok(CAMPAIGNS "compose.yml", &s);
    cr_assert_str_eq(compose_envelope_from(s.cp)->envelope, "news@acme.example");
    unload(&s);
}

Test(compose, builtins_are_listed)
{
    size_t i;
    bool email = false, name = false, campaign = false, row = false;

    for (i = 0; compose_builtins[i] != NULL; i++) {
        email = email || strcmp(compose_builtins[i], "email") == 0;
        name = name || strcmp(compose_builtins[i], "name") == 0;
        campaign = campaign || strcmp(compose_builtins[i], "campaign") == 0;
        row = row || strcmp(compose_builtins[i], "row") == 0;
    }
    cr_assert(email && name && campaign && row);
}

Test(compose, templates_and_placeholders_are_counted)
{
    struct setup s;

    /* subject 2, text 5 ({{first_name}} {{city}} {{email}} {{row}} {{campaign}}), html 3 */
    load_ok(CAMPAIGNS "compose.yml", &s);
    cr_assert_eq(compose_ntemplates(s.cp), 3);
    cr_assert_eq(compose_nplaceholders(s.cp), 10);
    unload(&s);
}

/* ---- vars ------------------------------------------------------------------------------ */

/* A campaign in the scratch directory with these vars, subject and text body. */
static void vars_campaign(const char *extra, const char *subject, const char *text, char *path,
                          size_t size)
{
    char yml[2048];

    scratch_make();
    write_file("list.csv",
               "email,first_name,company\n"
               "ada@example.com,Ada,Analytical Engines\n",
               NULL, 0);
    write_file("body.txt", text, NULL, 0);
    snprintf(yml, sizeof yml,
             "name: vars\n"
             "from: news@acme.example\n"
             "envelope_from: bounces@acme.example\n"
             "subject: \"%s\"\n"
             "recipients: {path: list.csv}\n"
             "body: {text: body.txt}\n"
             "relays: [{host: 127.0.0.1, tls: none}]\n"
             "%s",
             subject, extra);
    write_file("campaign.yml", yml, path, size);
}

Test(compose, vars_fill_placeholders_and_dots_reach_nested_values, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    vars_campaign("vars:\n"
                  "  sender: The Acme Team\n"
                  "  address: {street: 1 Main St, city: {name: Springfield, zip: \"12345\"}}\n",
                  "News from {{sender}}",
                  "Dear {{first_name}},\n"
                  "{{sender}}, {{address.street}}, {{address.city.name}} {{address.city.zip}}\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_contains(res.message.data, "\r\nSubject: News from The Acme Team\r\n");
    assert_contains(res.message.data,
                    "Dear Ada,\r\nThe Acme Team, 1 Main St, Springfield 12345\r\n");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, a_column_wins_over_a_var_of_the_same_name, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    vars_campaign("vars: {company: Acme}\n", "Hi", "{{company}}\n", path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_contains(res.message.data, "\r\n\r\nAnalytical Engines\r\n");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, envelope_from_is_used_when_set, .fini = scratch_remove)
{
    char path[512];
    struct setup s;

    vars_campaign("", "Hi", "Hello\n", path, sizeof path);
    load_ok(path, &s);
    cr_assert_str_eq(compose_envelope_from(s.cp)->envelope, "bounces@acme.example");
    unload(&s);
}

/*
 * Run compose_new, which should fail, and release everything before the caller
 * asserts. Returns its code; *out_null says whether *out was left NULL.
 */
static int compose_fails(struct setup *s, const struct blast_diag *diag, struct blast_error *err,
                         bool *out_null)
{
    int rc;

    blast_error_clear(err);
    s->cp = (struct compose *)0x1;
    rc = compose_new(s->c, s->list, s->screen, diag, &s->cp, err);
    *out_null = s->cp == NULL;
    if (rc == 0)
        compose_free(s->cp);
    s->cp = NULL;
    unload(s);
    return rc;
}

Test(compose, a_group_of_vars_is_not_a_value, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    vars_campaign("vars: {address: {city: Springfield}}\n", "Hi", "Dear {{address}}\n", path,
                  sizeof path);
    load(path, &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    cr_assert_eq(err.line, 1);
    cr_assert_eq(err.column, 6);
    cr_assert_not_null(strstr(err.source, "body.txt"), "%s", err.source);
    cr_assert_not_null(strstr(err.text, "'{{address}}' names a group of vars"), "%s", err.text);
}

Test(compose, name_is_a_builtin_only_with_a_name_column, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    vars_campaign("", "Hi", "Dear {{name}}\n", path, sizeof path);
    load(path, &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    cr_assert_not_null(strstr(err.text, "unknown placeholder '{{name}}'"), "%s", err.text);
}

/* ---- unknown placeholders and missing templates ---------------------------------------- */

Test(compose, unknown_placeholder_names_the_template_place)
{
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    load(CAMPAIGNS "compose_unknown.yml", &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_eq(err.code, BLAST_EINVAL);
    cr_assert(out_null, "*out is NULL after a failure");
    cr_assert_str_eq(err.source, CAMPAIGNS "templates/unknown.txt");
    cr_assert_eq(err.line, 3);
    cr_assert_eq(err.column, 12);
    cr_assert_not_null(strstr(err.text, "cty"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "did you mean 'city'"), "%s", err.text);
}

Test(compose, unknown_placeholder_in_a_plain_subject)
{
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    /* subject: Hi {{nme}}   ("{{" at column 13 of line 3) */
    load(CAMPAIGNS "compose_subject_plain.yml", &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_eq(err.code, BLAST_EINVAL);
    cr_assert(out_null, "*out is NULL after a failure");
    cr_assert_str_eq(err.source, CAMPAIGNS "compose_subject_plain.yml");
    cr_assert_eq(err.line, 3);
    cr_assert_eq(err.column, 13);
    cr_assert_not_null(strstr(err.text, "nme"), "%s", err.text);
}

Test(compose, unknown_placeholder_in_a_quoted_subject)
{
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    /* subject: "Hi {{nme}}"   (the quote is column 10, "{{" column 14 of line 3) */
    load(CAMPAIGNS "compose_subject_quoted.yml", &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert_eq(err.code, BLAST_EINVAL);
    cr_assert(out_null, "*out is NULL after a failure");
    cr_assert_str_eq(err.source, CAMPAIGNS "compose_subject_quoted.yml");
    cr_assert_eq(err.line, 3);
    cr_assert_eq(err.column, 14, "the error points at '{{', not %d", err.column);
}

/* What a diag collects: each problem formatted, one a line. */
struct collected {
    int n;
    char text[8192];
};

static void collect(void *arg, const struct blast_error *problem)
{
    struct collected *k = arg;
    char line[2048];
    size_t used = strlen(k->text);

    k->n++;
    blast_error_format(problem, line, sizeof line);
    snprintf(k->text + used, sizeof k->text - used, "%s\n", line);
}

/* Three unknown placeholders over two templates, and an HTML template that is missing. */
static void problems_campaign(char *path, size_t size)
{
    scratch_make();
    write_file("list.csv", "email,first_name\nada@example.com,Ada\n", NULL, 0);
    write_file("body.txt", "Dear {{frist_name}},\n{{nope}} and {{first_name}}\n", NULL, 0);
    write_file("campaign.yml",
               "name: problems\n"
               "from: news@acme.example\n"
               "subject: Hi {{firstname}}\n"
               "recipients: {path: list.csv}\n"
               "body:\n"
               "  text: body.txt\n"
               "  html: missing.html\n"
               "relays: [{host: 127.0.0.1, tls: none}]\n",
               path, size);
}

Test(compose, diag_receives_every_problem, .fini = scratch_remove)
{
    char path[512], want[4096];
    struct setup s;
    struct blast_error err;
    struct collected k = {0, ""};
    struct blast_diag diag = {collect, &k};
    bool out_null;
    int rc;

    problems_campaign(path, sizeof path);
    load(path, &s);
    rc = compose_fails(&s, &diag, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    snprintf(want, sizeof want,
             "%s/campaign.yml:3:13: unknown placeholder '{{firstname}}': not a column of "
             "%s/list.csv, a var or a built-in (did you mean 'first_name'?)\n"
             "%s/body.txt:1:6: unknown placeholder '{{frist_name}}': not a column of "
             "%s/list.csv, a var or a built-in (did you mean 'first_name'?)\n"
             "%s/body.txt:2:1: unknown placeholder '{{nope}}': not a column of %s/list.csv, a "
             "var or a built-in\n"
             "%s/campaign.yml:7:9: body.html: %s/missing.html: cannot open template: No such "
             "file or directory\n",
             scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir,
             scratch_dir, scratch_dir);
    cr_assert_eq(k.n, 4, "%s", k.text);
    cr_assert_str_eq(k.text, want);
    cr_assert_eq(err.line, 3, "err keeps the first problem");
    cr_assert_eq(err.column, 13);
}

Test(compose, without_a_diag_the_first_problem_is_the_error, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    problems_campaign(path, sizeof path);
    load(path, &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 3);
    cr_assert_eq(err.column, 13);
    cr_assert_not_null(strstr(err.text, "'{{firstname}}'"), "%s", err.text);
}

Test(compose, a_missing_template_is_blamed_on_the_campaign_line, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    scratch_make();
    write_file("list.csv", "email\nada@example.com\n", NULL, 0);
    write_file("campaign.yml",
               "name: missing\n"
               "from: news@acme.example\n"
               "subject: Hi\n"
               "recipients: {path: list.csv}\n"
               "body:\n"
               "  text: nowhere.txt\n"
               "relays: [{host: 127.0.0.1, tls: none}]\n",
               path, sizeof path);
    load(path, &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EIO, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 6);
    cr_assert_eq(err.column, 9);
    cr_assert_not_null(strstr(err.text, "body.text"), "%s", err.text);
}

Test(compose, free_accepts_null)
{
    struct compose_result res;

    compose_free(NULL);
    compose_result_init(&res);
    compose_result_free(&res);
}
