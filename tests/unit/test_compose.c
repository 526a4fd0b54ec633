/*
 * test_compose - from a fixture campaign and recipient list to messages: each row
 * is screened first (screen.h decides who the recipient is), then composed for
 * the screened address or a test address. Placeholders are filled from columns,
 * vars (nested ones with dots, lists in sections, true and false) and built-ins;
 * unknown names, in sections over vars lists too, are named with their place, the
 * first one alone or every one through a struct blast_diag. Partials are found
 * beside the template, in templates/ and in ../templates/, and a missing one is
 * named. The campaign's custom headers, List-Unsubscribe (URL values
 * percent-encoded, mailto, one-click), Feedback-ID, attachments and inline parts
 * are read back from the message (mime_parse.h); an unsubscribe URL over
 * COMPOSE_URL_MAX makes the row invalid.
 */
#include "../../core/compose.h"
#include "../../core/verp.h"
#include "mime_parse.h"
#include "scratch.h"

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

/* Sections nested over a list multiply: past the render budget the error says so. */
Test(compose, a_template_past_the_render_budget_is_refused_with_why, .timeout = 30,
     .fini = scratch_remove)
{
    char path[512], body[512] = "", msg[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct recipients_row row;
    struct blast_error err;
    int i;

    for (i = 0; i < 30; i++)
        strncat(body, "{{#w}}", sizeof body - strlen(body) - 1);
    strncat(body, "x", sizeof body - strlen(body) - 1);
    for (i = 0; i < 30; i++)
        strncat(body, "{{/w}}", sizeof body - strlen(body) - 1);
    vars_campaign("vars: {w: [a, b]}\n", "Hi", body, path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    seek_row(&s, 1, &row, &who);
    blast_error_clear(&err);
    cr_assert_eq(compose_row(s.cp, &row, &who.to, &res, &err), BLAST_EINVAL);
    blast_error_format(&err, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "1,000,000 steps"), "%s", msg);
    cr_assert_not_null(strstr(msg, "sections nested over a list multiply"), "%s", msg);
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
    cr_assert_lt(rc, 0, "rc %d", rc);
    cr_assert(out_null);
    snprintf(want, sizeof want,
             "%s/campaign.yml:3:13: unknown placeholder '{{firstname}}': not a column of "
             "%s/list.csv, a var or a built-in (did you mean 'first_name'?)\n"
             "%s/body.txt:1:6: unknown placeholder '{{frist_name}}': not a column of "
             "%s/list.csv, a var or a built-in (did you mean 'first_name'?)\n"
             "%s/body.txt:2:1: unknown placeholder '{{nope}}': not a column of %s/list.csv, a "
             "var or a built-in\n"
             "%s/campaign.yml:7:9: body.html: %s/missing.html: cannot open: No such "
             "file or directory\n",
             scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir,
             scratch_dir, scratch_dir);
    cr_assert_eq(k.n, 4, "%s", k.text);
    cr_assert_str_eq(k.text, want);
    cr_assert_eq(err.code, BLAST_EINVAL, "err keeps the first problem");
    cr_assert_eq(err.line, 3);
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

/* ---- scratch campaigns ------------------------------------------------------------------ */

static void make_dir(const char *name)
{
    char path[512];

    snprintf(path, sizeof path, "%s/%s", scratch_dir, name);
    cr_assert_eq(mkdir(path, 0755), 0, "%s: %s", path, strerror(errno));
}

static void write_bytes(const char *name, const void *data, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", scratch_dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/*
 * name (a path under the scratch directory) as a campaign sending list.csv with
 * this subject, body mapping and further keys; the caller writes the other files.
 */
static void write_campaign(const char *name, const char *subject, const char *body,
                           const char *extra, char *path, size_t size)
{
    char yml[4096];

    snprintf(yml, sizeof yml,
             "name: unit\n"
             "from: news@acme.example\n"
             "subject: \"%s\"\n"
             "recipients: {path: list.csv, name_column: first_name}\n"
             "body: %s\n"
             "relays: [{host: 127.0.0.1, tls: none}]\n"
             "%s",
             subject, body, extra);
    write_file(name, yml, path, size);
}

/* A text-only campaign in the scratch directory: list.csv, body.txt and campaign.yml. */
static void text_campaign(const char *csv, const char *text, const char *extra, char *path,
                          size_t size)
{
    scratch_make();
    write_file("list.csv", csv, NULL, 0);
    write_file("body.txt", text, NULL, 0);
    write_campaign("campaign.yml", "Hi {{first_name}}", "{text: body.txt}", extra, path, size);
}

/* The message of res as a MIME entity. */
static void entity_of(const struct compose_result *res, struct mp_entity *e)
{
    cr_assert_not(res->invalid, "%s", res->reason);
    cr_assert_not_null(res->message.data);
    mp_split(res->message.data, res->message.len, e);
}

/* Every line CRLF-terminated and within 998 octets. */
static void assert_lines_ok(const struct buf *m)
{
    size_t i, col = 0;

    for (i = 0; i < m->len; i++) {
        if (m->data[i] == '\r') {
            cr_assert(i + 1 < m->len && m->data[i + 1] == '\n', "bare CR at %zu", i);
            continue;
        }
        if (m->data[i] == '\n') {
            cr_assert(i > 0 && m->data[i - 1] == '\r', "bare LF at %zu", i);
            col = 0;
            continue;
        }
        cr_assert_lt(++col, 999, "a line over 998 octets at %zu", i);
    }
    cr_assert(m->len >= 2 && m->data[m->len - 2] == '\r' && m->data[m->len - 1] == '\n');
}

/* ---- custom headers, List-Unsubscribe, Feedback-ID ------------------------------------------ */

Test(compose, custom_headers_are_rendered_for_each_row, .fini = scratch_remove)
{
    char path[512], v[1024];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name\n"
                  "ada@example.com,Ada\n"
                  "bob@example.com,\"Bob\r\nBcc: victim@example.net\"\n",
                  "Hello\n",
                  "headers:\n"
                  "  X-Campaign: \"news-{{campaign}}\"\n"
                  "  X-Greeting: \"Hi {{first_name}} (row {{row}})\"\n"
                  "  X-Static: \"42\"\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_lines_ok(&res.message);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "X-Campaign", v, sizeof v));
    cr_assert_str_eq(v, "news-unit");
    cr_assert(mp_header(&e, "X-Greeting", v, sizeof v));
    cr_assert_str_eq(v, "Hi Ada (row 1)");
    cr_assert(mp_header(&e, "X-Static", v, sizeof v));
    cr_assert_str_eq(v, "42");
    cr_assert_lt(strstr(res.message.data, "X-Campaign:"), strstr(res.message.data, "X-Greeting:"),
                 "the campaign's order");

    /* the same result for the next row: its own values, made safe */
    compose(&s, 2, NULL, &who, &res);
    assert_lines_ok(&res.message);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "X-Greeting", v, sizeof v));
    cr_assert_str_eq(v, "Hi Bob Bcc: victim@example.net (row 2)");
    cr_assert_null(strstr(res.message.data, "\r\nBcc:"), "a value never starts a field");
    cr_assert_eq(count(res.message.data, "\r\nX-Greeting:"), 1);
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, list_unsubscribe_url_values_are_percent_encoded, .fini = scratch_remove)
{
    char path[512], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name\nada+news@example.com,José Ä&b=c\n", "Hello\n",
                  "list_unsubscribe:\n"
                  "  url: \"https://acme.example/u?e={{email}}&n={{first_name}}\"\n"
                  "  mailto: unsubscribe@acme.example\n"
                  "  one_click: true\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_lines_ok(&res.message);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, "<https://acme.example/u?e=ada%2bnews%40example.com"
                        "&n=Jos%c3%a9%20%c3%84%26b%3dc>, "
                        "<mailto:unsubscribe@acme.example?subject=unsubscribe>");
    cr_assert(mp_header(&e, "List-Unsubscribe-Post", v, sizeof v));
    cr_assert_str_eq(v, "List-Unsubscribe=One-Click");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, international_list_unsubscribe_hosts_are_a_labels, .fini = scratch_remove)
{
    char path[512], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name\nivan@пример.рф,Иван\n", "Hello\n",
                  "list_unsubscribe:\n"
                  "  url: \"https://lists.bücher.example/u?e={{email}}\"\n"
                  "  mailto: \"désinscription@bücher.example\"\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_lines_ok(&res.message);
    entity_of(&res, &e);
    /* the host is an A-label, values are %xx in lower case (SpamAssassin's
     * UNRESOLVED_TEMPLATE scores "%BF"), and the mailto domain is an A-label too */
    cr_assert(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, "<https://lists.xn--bcher-kva.example/u?e=ivan%40%d0%bf%d1%80%d0%b8%d0%bc"
                        "%d0%b5%d1%80.%d1%80%d1%84>, "
                        "<mailto:d%c3%a9sinscription@xn--bcher-kva.example?subject=unsubscribe>");
    /* RFC 2919: the list's fields come together */
    cr_assert(mp_header(&e, "List-Id", v, sizeof v));
    cr_assert_str_eq(v, "<unit.acme.example>");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, one_click_header_only_when_set, .fini = scratch_remove)
{
    char path[512], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name\nada@example.com,Ada\n", "Hello\n",
                  "list_unsubscribe: {url: \"https://acme.example/u/{{row}}\"}\n", path,
                  sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, "<https://acme.example/u/1>");
    cr_assert_not(mp_header(&e, "List-Unsubscribe-Post", v, sizeof v));
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, list_unsubscribe_mailto_alone, .fini = scratch_remove)
{
    char path[512], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name\nada@example.com,Ada\n", "Hello\n",
                  "list_unsubscribe: {mailto: unsubscribe@acme.example}\n", path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, "<mailto:unsubscribe@acme.example?subject=unsubscribe>");
    cr_assert_not(mp_header(&e, "List-Unsubscribe-Post", v, sizeof v));
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, no_list_or_feedback_headers_unless_configured, .fini = scratch_remove)
{
    char path[512], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name\nada@example.com,Ada\n", "Hello\n", "", path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    entity_of(&res, &e);
    cr_assert_not(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_not(mp_header(&e, "List-Unsubscribe-Post", v, sizeof v));
    cr_assert_not(mp_header(&e, "Feedback-ID", v, sizeof v));
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, feedback_id_is_rendered, .fini = scratch_remove)
{
    char path[512], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e;

    text_campaign("email,first_name,segment\nada@example.com,Ada,vip\n", "Hello\n",
                  "feedback_id: \"{{campaign}}:{{segment}}:acme\"\n", path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "Feedback-ID", v, sizeof v));
    cr_assert_str_eq(v, "unit:vip:acme");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, an_unsubscribe_url_over_the_limit_makes_the_row_invalid, .fini = scratch_remove)
{
    /* "https://acme.example/u?t=" is 25 characters: 875 more make 900, 876 make 901 */
    char path[512], csv[4096], v[2048];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct recipients_row row;
    struct blast_error err;
    struct mp_entity e;
    size_t n = 0;

    n += (size_t)snprintf(csv, sizeof csv, "email,first_name,t\nada@example.com,Ada,");
    memset(csv + n, 'a', 875);
    n += 875;
    n += (size_t)snprintf(csv + n, sizeof csv - n, "\nbob@example.com,Bob,");
    memset(csv + n, 'b', 876);
    n += 876;
    snprintf(csv + n, sizeof csv - n, "\ncy@example.com,Cy,short\n");
    text_campaign(csv, "Hello\n", "list_unsubscribe: {url: \"https://acme.example/u?t={{t}}\"}\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_eq(strlen(v), COMPOSE_URL_MAX + 2, "900 characters fit");
    assert_lines_ok(&res.message);

    seek_row(&s, 2, &row, &who);
    cr_assert_eq(who.verdict, SCREEN_OK);
    blast_error_clear(&err);
    cr_assert_eq(compose_row(s.cp, &row, &who.to, &res, &err), 0, "%s", err.text);
    cr_assert(res.invalid, "901 characters do not");
    cr_assert_not_null(strstr(res.reason, "unsubscribe URL"), "%s", res.reason);
    cr_assert_not_null(strstr(res.reason, "901"), "%s", res.reason);
    cr_assert_eq(res.message.len, 0, "no message for an invalid row");

    compose(&s, 3, NULL, &who, &res);
    cr_assert_not(res.invalid, "the next row is judged afresh");
    cr_assert_str_eq(res.reason, "");
    entity_of(&res, &e);
    cr_assert(mp_header(&e, "List-Unsubscribe", v, sizeof v));
    cr_assert_str_eq(v, "<https://acme.example/u?t=short>");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, an_unsubscribe_url_is_measured_as_it_is_sent, .fini = scratch_remove)
{
    /* a raw {{{t}}} is not encoded when rendered, but each of its 800 bytes is when the
     * header is made: 825 characters rendered, 2425 sent */
    char path[512], csv[2048];
    struct setup s;
    struct screen_result who;
    struct recipients_row row;
    struct compose_result res;
    struct blast_error err;
    size_t n, i;

    n = (size_t)snprintf(csv, sizeof csv, "email,first_name,t\nada@example.com,Ada,");
    for (i = 0; i < 400; i++)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "é");
    snprintf(csv + n, sizeof csv - n, "\n");
    text_campaign(csv, "Hello\n", "list_unsubscribe: {url: \"https://acme.example/u?t={{{t}}}\"}\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    seek_row(&s, 1, &row, &who);
    blast_error_clear(&err);
    cr_assert_eq(compose_row(s.cp, &row, &who.to, &res, &err), 0, "%s", err.text);
    cr_assert(res.invalid, "a List-Unsubscribe line of %zu octets was built",
              res.message.data != NULL && strstr(res.message.data, "List-Unsubscribe: ") != NULL
                  ? strcspn(strstr(res.message.data, "List-Unsubscribe: "), "\r")
                  : (size_t)0);
    cr_assert_not_null(strstr(res.reason, "unsubscribe URL"), "%s", res.reason);
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

/* ---- attachments and inline parts ------------------------------------------------------- */

static void expect_bytes(const struct mp_entity *e, const char *type, const char *disposition,
                         const char *filename, const void *data, size_t len)
{
    char v[2048], t[128], name[512];
    struct buf back = BUF_INIT;
    bool ext;

    mp_type(e, t, sizeof t);
    cr_assert_str_eq(t, type);
    cr_assert(mp_header(e, "Content-Disposition", v, sizeof v));
    mp_value(v, t, sizeof t);
    cr_assert_str_eq(t, disposition);
    cr_assert(mp_param(v, "filename", name, sizeof name, &ext), "%s", v);
    cr_assert_str_eq(name, filename);
    cr_assert(mp_header(e, "Content-Transfer-Encoding", v, sizeof v));
    cr_assert_str_eq(v, "base64");
    mp_base64_lines(e->body, e->body_len, &back);
    cr_assert_eq(back.len, len, "%s: %zu bytes, not %zu", filename, back.len, len);
    cr_assert_eq(memcmp(back.data, data, len), 0, "%s: the bytes differ", filename);
    buf_free(&back);
}

Test(compose, attachments_and_inline_parts_round_trip, .fini = scratch_remove)
{
    unsigned char pdf[5000], png[999];
    char path[512], v[256];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct mp_entity e, mixed[4], alt[4], rel[4];
    char b[128];
    size_t i, row;

    for (i = 0; i < sizeof pdf; i++)
        pdf[i] = (unsigned char)(i * 7 + (i >> 8));
    for (i = 0; i < sizeof png; i++)
        png[i] = (unsigned char)(255 - i % 251);
    scratch_make();
    make_dir("files");
    write_bytes("files/prices.pdf", pdf, sizeof pdf);
    write_bytes("files/logo.png", png, sizeof png);
    write_file("files/notes", "plain notes\n", NULL, 0);
    write_file("list.csv", "email,first_name\nada@example.com,Ada\nbob@example.com,Bob\n", NULL, 0);
    write_file("body.txt", "Hello {{first_name}}\n", NULL, 0);
    write_file("body.html", "<p>Hello {{first_name}} <img src=\"cid:logo\"></p>\n", NULL, 0);
    write_campaign("campaign.yml", "Prices", "{text: body.txt, html: body.html}",
                   "attachments:\n"
                   "  - files/prices.pdf\n"
                   "  - {path: files/notes, name: Notizen für Ada.txt}\n"
                   "inline:\n"
                   "  - {path: files/logo.png, cid: logo}\n",
                   path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    for (row = 1; row <= 2; row++) {
        compose(&s, row, NULL, &who, &res);
        assert_lines_ok(&res.message);
        entity_of(&res, &e);
        cr_assert_eq(mp_parts(&e, "mixed", mixed, 4, b, sizeof b), 3);
        cr_assert_eq(mp_parts(&mixed[0], "alternative", alt, 4, b, sizeof b), 2);
        cr_assert_eq(mp_parts(&alt[1], "related", rel, 4, b, sizeof b), 2);
        mp_type(&alt[0], v, sizeof v);
        cr_assert_str_eq(v, "text/plain");
        mp_type(&rel[0], v, sizeof v);
        cr_assert_str_eq(v, "text/html");
        cr_assert_not_null(memmem(rel[0].body, rel[0].body_len, row == 1 ? "Ada" : "Bob", 3));
        expect_bytes(&rel[1], "image/png", "inline", "logo.png", png, sizeof png);
        cr_assert(mp_header(&rel[1], "Content-ID", v, sizeof v));
        cr_assert_str_eq(v, "<logo>");
        expect_bytes(&mixed[1], "application/pdf", "attachment", "prices.pdf", pdf, sizeof pdf);
        expect_bytes(&mixed[2], "text/plain", "attachment", "Notizen für Ada.txt", "plain notes\n",
                     12);
    }
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, a_missing_attachment_is_blamed_on_the_campaign_line, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    text_campaign("email,first_name\nada@example.com,Ada\n", "Hello\n",
                  "attachments:\n  - files/nowhere.pdf\n", path, sizeof path);
    load(path, &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EIO, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    cr_assert_str_eq(err.source, path);
    cr_assert_eq(err.line, 8);
    cr_assert_eq(err.column, 5);
    cr_assert_not_null(strstr(err.text, "nowhere.pdf"), "%s", err.text);
}

/* ---- names inside sections, partials, booleans ------------------------------------------- */

Test(compose, names_inside_a_section_over_a_vars_list_are_checked_against_its_items,
     .fini = scratch_remove)
{
    char path[512], want[4096];
    struct setup s;
    struct blast_error err;
    struct collected k = {0, ""};
    struct blast_diag diag = {collect, &k};
    bool out_null;
    int rc;

    /* title is in one item only, first_name is a column: both resolve; link does not */
    text_campaign("email,first_name\nada@example.com,Ada\n",
                  "{{#links}}\n"
                  "* {{title}}: {{url}} for {{first_name}}\n"
                  "  {{link}}\n"
                  "{{/links}}\n"
                  "{{#nolist}}x{{/nolist}}{{^gone}}y{{/gone}}\n",
                  "vars:\n"
                  "  links:\n"
                  "    - {url: \"https://acme.example/a\", title: A}\n"
                  "    - {url: \"https://acme.example/b\"}\n",
                  path, sizeof path);
    load(path, &s);
    rc = compose_fails(&s, &diag, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    snprintf(want, sizeof want,
             "%s/body.txt:3:3: unknown placeholder '{{link}}': not a column of %s/list.csv, a "
             "var or a built-in (did you mean 'links'?)\n"
             "%s/body.txt:5:1: unknown section '{{#nolist}}': not a column of %s/list.csv, a "
             "var or a built-in\n"
             "%s/body.txt:5:24: unknown section '{{^gone}}': not a column of %s/list.csv, a "
             "var or a built-in\n",
             scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir, scratch_dir);
    cr_assert_str_eq(k.text, want);
    cr_assert_eq(k.n, 3);
}

Test(compose, sections_over_vars_lists_render_each_item, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    text_campaign("email,first_name\nada@example.com,Ada\n",
                  "{{#links}}\n"
                  "* {{title}}{{^title}}untitled{{/title}}: {{url}} for {{first_name}}\n"
                  "{{/links}}\n",
                  "vars:\n"
                  "  links:\n"
                  "    - {url: \"https://acme.example/a\", title: A}\n"
                  "    - {url: \"https://acme.example/b\"}\n",
                  path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_contains(res.message.data, "\r\n\r\n* A: https://acme.example/a for Ada\r\n"
                                      "* untitled: https://acme.example/b for Ada\r\n");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, vars_booleans_in_sections, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    text_campaign("email,first_name,vip\nada@example.com,Ada,\n",
                  "[{{#yes}}Y{{/yes}}][{{#no}}N{{/no}}][{{^no}}not no{{/no}}]"
                  "[{{#quoted}}Q{{/quoted}}][{{yes}}][{{no}}][{{quoted}}]"
                  "[{{#vip}}V{{/vip}}{{^vip}}not vip{{/vip}}]\n",
                  "vars: {yes: true, no: false, quoted: \"false\"}\n", path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_contains(res.message.data, "\r\n\r\n[Y][][not no][Q][true][][false][not vip]\r\n");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, a_missing_partial_names_the_partial_and_where_it_was_looked_for,
     .fini = scratch_remove)
{
    char path[512], body[600];
    struct setup s;
    struct blast_error err;
    bool out_null;
    int rc;

    text_campaign("email,first_name\nada@example.com,Ada\n", "Hi\n  {{> footer}}\n", "", path,
                  sizeof path);
    load(path, &s);
    rc = compose_fails(&s, NULL, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    cr_assert(out_null);
    snprintf(body, sizeof body, "%s/body.txt", scratch_dir);
    cr_assert_str_eq(err.source, body);
    cr_assert_eq(err.line, 2);
    cr_assert_eq(err.column, 3);
    cr_assert_str_eq(err.text, "partial 'footer' not found (looked for NAME, NAME.mustache, "
                               "NAME.html or NAME.txt beside the template, in templates/ beside "
                               "the campaign file and in ../templates/)");
}

Test(compose, partials_are_found_beside_the_template_then_in_templates, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    /* scratch/camp/campaign.yml, scratch/camp/mail/body.*, scratch/camp/templates/, and
     * scratch/templates/ (../templates/ from the campaign) */
    scratch_make();
    make_dir("camp");
    make_dir("camp/mail");
    make_dir("camp/templates");
    make_dir("templates");
    write_file("camp/list.csv", "email,first_name\nada@example.com,Ada\n", NULL, 0);
    write_file("camp/mail/body.txt", "{{> sig}}|{{> head}}|{{> shared}}|{{> both}}\n", NULL, 0);
    write_file("camp/mail/body.html", "{{> sig}}|{{> head}}|{{> shared}}|{{> both}}\n", NULL, 0);
    write_file("camp/mail/sig.txt", "sig.txt beside {{first_name}}", NULL, 0);
    write_file("camp/mail/sig.html", "sig.html beside <{{first_name}}>", NULL, 0);
    write_file("camp/templates/sig", "sig in templates/", NULL, 0);
    write_file("camp/templates/head.mustache", "head.mustache", NULL, 0);
    write_file("camp/templates/head.txt", "head.txt", NULL, 0);
    write_file("templates/shared.txt", "../templates/shared.txt", NULL, 0);
    write_file("templates/shared.html", "../templates/shared.html", NULL, 0);
    write_file("camp/templates/both", "both", NULL, 0);
    write_file("camp/templates/both.mustache", "both.mustache", NULL, 0);
    write_campaign("camp/campaign.yml", "Hi", "{text: mail/body.txt, html: mail/body.html}", "",
                   path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_contains(res.message.data,
                    "sig.txt beside Ada|head.mustache|../templates/shared.txt|both\r\n");
    assert_contains(res.message.data,
                    "sig.html beside <Ada>|head.mustache|../templates/shared.html|both\r\n");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, a_partial_name_is_looked_up_beside_each_template_that_uses_it, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;

    /* the subject (in campaign.yml) and the text body (in mail/) both use {{> part}} */
    scratch_make();
    make_dir("mail");
    make_dir("templates");
    write_file("list.csv", "email,first_name\nada@example.com,Ada\n", NULL, 0);
    write_file("mail/body.txt", "Body: {{> part}}\n", NULL, 0);
    write_file("mail/part.txt", "the part beside the body", NULL, 0);
    write_file("templates/part.txt", "the part in templates", NULL, 0);
    write_campaign("campaign.yml", "{{> part}}", "{text: mail/body.txt}", "", path, sizeof path);
    load_ok(path, &s);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    assert_contains(res.message.data, "\r\nSubject: the part in templates\r\n");
    assert_contains(res.message.data, "\r\n\r\nBody: the part beside the body\r\n");
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, an_unknown_name_in_an_indented_partial_is_reported_once_at_its_place,
     .fini = scratch_remove)
{
    char path[512], want[2048];
    struct setup s;
    struct blast_error err;
    struct collected k = {0, ""};
    struct blast_diag diag = {collect, &k};
    bool out_null;
    int rc;

    text_campaign("email,first_name\nada@example.com,Ada\n", "Hi\n{{> footer}}\n  {{> footer}}\n",
                  "", path, sizeof path);
    write_file("footer.txt", "-- \n{{nope}}\n", NULL, 0);
    load(path, &s);
    rc = compose_fails(&s, &diag, &err, &out_null);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, err.text);
    snprintf(want, sizeof want,
             "%s/footer.txt:2:1: unknown placeholder '{{nope}}': not a column of %s/list.csv, a "
             "var or a built-in (did you mean 'name'?)\n",
             scratch_dir, scratch_dir);
    cr_assert_str_eq(k.text, want);
}

/* ---- return_path ------------------------------------------------------------------------ */

static void return_path_campaign(char *path, size_t size)
{
    scratch_make();
    write_file("list.csv",
               "email,first_name\n"
               "ada@example.com,Ada\n"
               "grace@example.org,Grace\n",
               NULL, 0);
    write_file("body.txt", "Hello {{first_name}}\n", NULL, 0);
    write_file("campaign.yml",
               "name: verp-news\n"
               "from: news@acme.example\n"
               "subject: Hi\n"
               "recipients: {path: list.csv}\n"
               "body: {text: body.txt}\n"
               "relays: [{host: 127.0.0.1, tls: none}]\n"
               "return_path: {address: 'bounces+{token}@acme.example', secret_env: K}\n",
               path, size);
}

Test(compose, return_path_gives_each_row_its_own_envelope_sender, .fini = scratch_remove)
{
    static const char secret[] = "a-secret-of-more-than-sixteen-bytes";
    char path[512], found[64], first[320];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct blast_error err;
    struct verp_claim claim;
    size_t n;

    return_path_campaign(path, sizeof path);
    load_ok(path, &s);
    blast_error_clear(&err);
    cr_assert_eq(compose_set_return_path(s.cp, secret, sizeof secret - 1, &err), 0, "%s", err.text);
    screen_result_init(&who);
    compose_result_init(&res);
    compose(&s, 1, NULL, &who, &res);
    snprintf(first, sizeof first, "%s", res.envelope_from);
    compose(&s, 2, NULL, &who, &res);
    cr_assert_str_neq(first, res.envelope_from);
    n = verp_find_token(s.c->return_path.address, res.envelope_from, found, sizeof found);
    cr_assert_eq(n, VERP_TOKEN_LEN, "%s", res.envelope_from);
    cr_assert_eq(verp_parse(found, n, &claim), 0);
    cr_assert_eq(claim.row, 2);
    cr_assert(verp_verify(secret, sizeof secret - 1, "verp-news", &claim));
    /* the message itself does not carry it: the receiving MTA adds Return-Path */
    cr_assert_null(strstr(res.message.data, "bounces+"));
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}

Test(compose, return_path_needs_its_secret, .fini = scratch_remove)
{
    char path[512];
    struct setup s;
    struct screen_result who;
    struct compose_result res;
    struct recipients_row row;
    struct blast_error err;

    return_path_campaign(path, sizeof path);
    load_ok(path, &s);
    blast_error_clear(&err);
    cr_assert_eq(compose_set_return_path(s.cp, "short", 5, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "at least 16 bytes") != NULL, "%s", err.text);
    cr_assert_gt(err.line, 0, "placed at the secret's key");
    screen_result_init(&who);
    compose_result_init(&res);
    seek_row(&s, 1, &row, &who);
    blast_error_clear(&err);
    cr_assert_eq(compose_row(s.cp, &row, &who.to, &res, &err), BLAST_EINVAL,
                 "no tokens without a secret");
    cr_assert(strstr(err.text, "no secret") != NULL, "%s", err.text);
    compose_result_free(&res);
    screen_result_free(&who);
    unload(&s);
}
