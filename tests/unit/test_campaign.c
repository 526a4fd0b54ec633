/*
 * test_campaign - the campaign file: a valid file with its defaults and resolved
 * paths, every key of the format with its place (../fixtures/campaigns/every_key.yml),
 * durations, rates, vars reached with dots, and the golden invalid cases of
 * ../fixtures/invalid/<case>/: each holds a campaign.yml and, in error, the exact
 * message blast_error_format() must give, with the file named "campaign.yml" (the
 * test puts the case directory in front).
 */
#include "../../core/campaign.h"
#include "../../core/log.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURES "../fixtures"
#define INVALID  FIXTURES "/invalid"

static struct campaign *load_ok(const char *path)
{
    struct campaign *c = NULL;
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = campaign_load(path, &c, &err);
    cr_assert_eq(rc, 0, "%s", blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(c);
    return c;
}

/* Read a small text file into out, without its final line feed. */
static void read_text(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

/*
 * Load the golden case name: the load must fail with code (any error when code is
 * 0), and the formatted error must be the case's error file with the directory in
 * front. Returns true, or false with why filled in.
 */
static bool golden_case(const char *name, int code, char *why, size_t size)
{
    char path[512], errpath[512], expected[2048], want[2600], got[2600];
    struct campaign *c = NULL;
    struct blast_error err;
    int rc;

    snprintf(path, sizeof path, INVALID "/%s/campaign.yml", name);
    snprintf(errpath, sizeof errpath, INVALID "/%s/error", name);
    read_text(errpath, expected, sizeof expected);
    snprintf(want, sizeof want, INVALID "/%s/%s", name, expected);
    blast_error_clear(&err);
    rc = campaign_load(path, &c, &err);
    blast_error_format(&err, got, sizeof got);
    if (rc == 0) {
        campaign_free(c);
        snprintf(why, size, "%s: loaded, but it is invalid (expected '%s')", name, want);
        return false;
    }
    if (c != NULL)
        snprintf(why, size, "%s: *out is not NULL after a failure", name);
    else if ((code != 0 && rc != code) || err.code != rc)
        snprintf(why, size, "%s: rc %d, err.code %d, expected %d", name, rc, err.code, code);
    else if (strcmp(err.source, path) != 0 || err.line <= 0 || err.column <= 0)
        snprintf(why, size, "%s: the error must name the file, a line and a column: '%s'", name,
                 got);
    else if (strcmp(got, want) != 0)
        snprintf(why, size, "%s:\n  got      '%s'\n  expected '%s'", name, got, want);
    else
        return true;
    return false;
}

static void check_invalid(const char *name, int code)
{
    char why[8192];

    cr_assert(golden_case(name, code, why, sizeof why), "%s", why);
}

/* ---- a valid campaign ---------------------------------------------------------------- */

Test(campaign, minimal_file_gets_the_defaults)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/minimal.yml");
    const struct campaign_relay *r;

    cr_assert_str_eq(c->path, FIXTURES "/campaigns/minimal.yml");
    cr_assert_str_eq(c->dir, FIXTURES "/campaigns");
    cr_assert_str_eq(c->name, "minimal");
    cr_assert_str_eq(c->from, "news@acme.example");
    cr_assert_eq(c->from_place.line, 2);
    cr_assert_eq(c->from_place.column, 7);
    cr_assert_null(c->envelope_from);
    cr_assert_null(c->reply_to);
    cr_assert_str_eq(c->subject, "Hello");
    cr_assert_eq(c->subject_place.line, 3);
    cr_assert_eq(c->subject_place.column, 10);
    cr_assert_str_eq(c->recipients.email_column, "email");
    cr_assert_eq(c->recipients.email_column_place.line, 0, "a default has no place");
    cr_assert_null(c->recipients.name_column);
    cr_assert_eq(c->recipients.delimiter, ',');
    cr_assert_null(c->body.html);
    cr_assert_null(c->report);

    cr_assert_eq(c->nrelays, 1);
    r = &c->relays[0];
    cr_assert_str_eq(r->host, "smtp.relay.example");
    cr_assert_str_eq(r->name, "smtp.relay.example", "the name defaults to the host");
    cr_assert_eq(r->port, 587);
    cr_assert_eq(r->tls, SMTP_TLS_STARTTLS);
    cr_assert(r->verify);
    cr_assert_null(r->ca_file);
    cr_assert_null(r->username);
    cr_assert_null(r->password_env);
    cr_assert_eq(r->auth, SMTP_AUTH_CHOICE_AUTO);
    cr_assert_eq(r->place.line, 9);
    cr_assert_eq(r->place.column, 5);
    campaign_free(c);
}

Test(campaign, relative_paths_resolve_against_the_file_directory)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/minimal.yml");

    cr_assert_str_eq(c->recipients.path, FIXTURES "/campaigns/../csv/basic.csv");
    cr_assert_str_eq(c->body.text, FIXTURES "/campaigns/templates/news.txt");
    cr_assert_eq(access(c->recipients.path, R_OK), 0, "%s", c->recipients.path);
    cr_assert_eq(access(c->body.text, R_OK), 0, "%s", c->body.text);
    cr_assert_eq(c->recipients.path_place.line, 5);
    cr_assert_eq(c->recipients.path_place.column, 9);
    cr_assert_eq(c->body.text_place.line, 7);
    campaign_free(c);
}

Test(campaign, every_supported_key_is_read)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/full.yml");
    const struct campaign_relay *r;

    cr_assert_str_eq(c->name, "unit-full_1.0");
    cr_assert_str_eq(c->from, "Acme News <news@acme.example>");
    cr_assert_str_eq(c->envelope_from, "bounces@acme.example");
    cr_assert_eq(c->envelope_from_place.line, 4);
    cr_assert_str_eq(c->reply_to, "Acme Help <help@acme.example>");
    cr_assert_eq(c->reply_to_place.line, 5);
    cr_assert_str_eq(c->subject, "{{first_name}}, your update");
    cr_assert_str_eq(c->recipients.path, FIXTURES "/campaigns/../csv/semicolon.csv");
    cr_assert_str_eq(c->recipients.email_column, "email");
    cr_assert_eq(c->recipients.email_column_place.line, 10);
    cr_assert_eq(c->recipients.email_column_place.column, 17);
    cr_assert_str_eq(c->recipients.name_column, "name");
    cr_assert_eq(c->recipients.name_column_place.line, 11);
    cr_assert_eq(c->recipients.delimiter, ';');
    cr_assert_str_eq(c->body.text, FIXTURES "/campaigns/templates/news.txt");
    cr_assert_str_eq(c->body.html, FIXTURES "/campaigns/templates/news.html");
    cr_assert_eq(c->body.html_place.line, 16);
    cr_assert_str_eq(c->report, FIXTURES "/campaigns/reports/full.json");

    cr_assert_eq(c->nrelays, 3);
    r = &c->relays[0];
    cr_assert_str_eq(r->name, "primary");
    cr_assert_str_eq(r->host, "smtp.relay.example");
    cr_assert_eq(r->port, 2525);
    cr_assert_eq(r->tls, SMTP_TLS_STARTTLS);
    cr_assert_not(r->verify);
    cr_assert_str_eq(r->ca_file, FIXTURES "/campaigns/ca.pem");
    cr_assert_str_eq(r->username, "news@acme.example");
    cr_assert_str_eq(r->password_env, "BLAST_UNIT_PASSWORD");
    cr_assert_eq(r->password_place.line, 26);
    cr_assert_eq(r->password_place.column, 19);
    cr_assert_eq(r->auth, SMTP_AUTH_CHOICE_CRAM_MD5);
    cr_assert_eq(r->place.line, 19);
    cr_assert_eq(r->place.column, 5);

    r = &c->relays[1];
    cr_assert_str_eq(r->name, "smtps.relay.example");
    cr_assert_eq(r->tls, SMTP_TLS_IMPLICIT);
    cr_assert_eq(r->port, 465, "implicit TLS defaults to port 465");
    cr_assert(r->verify);

    r = &c->relays[2];
    cr_assert_str_eq(r->name, "local");
    cr_assert_str_eq(r->host, "127.0.0.1");
    cr_assert_eq(r->tls, SMTP_TLS_NONE, "plaintext is allowed to loopback");
    cr_assert_eq(r->port, 25, "tls none defaults to port 25");
    campaign_free(c);
}

Test(campaign, absolute_paths_are_kept, .fini = scratch_remove)
{
    char path[512];
    const char *dir = scratch_make();
    struct campaign *c;

    scratch_write_file(dir, "abs.yml",
                       "name: abs\n"
                       "from: news@acme.example\n"
                       "subject: Hi\n"
                       "recipients:\n"
                       "  path: /srv/lists/list.csv\n"
                       "  delimiter: tab\n"
                       "body:\n"
                       "  html: /srv/templates/t.html\n"
                       "relays:\n"
                       "  - host: relay.example\n"
                       "    tls: none\n"
                       "    allow_plaintext: true\n"
                       "report: out.json\n",
                       path, sizeof path);
    c = load_ok(path);
    cr_assert_str_eq(c->recipients.path, "/srv/lists/list.csv");
    cr_assert_str_eq(c->body.html, "/srv/templates/t.html");
    cr_assert_null(c->body.text);
    cr_assert_eq(c->recipients.delimiter, '\t', "\"tab\" names the tab delimiter");
    cr_assert_eq(c->relays[0].tls, SMTP_TLS_NONE, "allow_plaintext permits a remote host");
    cr_assert_str_eq(c->dir, dir);
    {
        char want[600];
        snprintf(want, sizeof want, "%s/out.json", dir);
        cr_assert_str_eq(c->report, want);
    }
    campaign_free(c);
}

Test(campaign, plaintext_is_allowed_to_loopback_hosts, .fini = scratch_remove)
{
    char path[512];
    const char *dir = scratch_make();
    struct campaign *c;
    size_t i;

    scratch_write_file(dir, "loop.yml",
                       "name: loop\n"
                       "from: news@acme.example\n"
                       "subject: Hi\n"
                       "recipients: {path: list.csv}\n"
                       "body: {text: t.txt}\n"
                       "relays:\n"
                       "  - {host: 127.0.0.1, tls: none}\n"
                       "  - {host: 127.1.2.3, tls: none}\n"
                       "  - {host: localhost, tls: none}\n"
                       "  - {host: \"::1\", tls: none}\n"
                       "  - {host: \"[::1]\", tls: none, port: 2525}\n",
                       path, sizeof path);
    c = load_ok(path);
    cr_assert_eq(c->nrelays, 5);
    for (i = 0; i < c->nrelays; i++)
        cr_assert_eq(c->relays[i].tls, SMTP_TLS_NONE);
    cr_assert_eq(c->relays[4].port, 2525);
    cr_assert_eq(c->relays[0].port, 25);
    campaign_free(c);
}

Test(campaign, missing_file_is_an_io_error)
{
    struct campaign *c = NULL;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(campaign_load(FIXTURES "/campaigns/no-such-file.yml", &c, &err), BLAST_EIO);
    cr_assert_null(c);
    cr_assert_str_eq(err.source, FIXTURES "/campaigns/no-such-file.yml");
}

Test(campaign, free_accepts_null)
{
    campaign_free(NULL);
}

Test(campaign, tls_and_auth_names)
{
    cr_assert_str_eq(smtp_tls_mode_name(SMTP_TLS_STARTTLS), "starttls");
    cr_assert_str_eq(smtp_tls_mode_name(SMTP_TLS_IMPLICIT), "tls");
    cr_assert_str_eq(smtp_tls_mode_name(SMTP_TLS_NONE), "none");
    cr_assert_str_eq(smtp_auth_choice_name(SMTP_AUTH_CHOICE_AUTO), "auto");
    cr_assert_str_eq(smtp_auth_choice_name(SMTP_AUTH_CHOICE_CRAM_MD5), "cram-md5");
    cr_assert_str_eq(smtp_auth_choice_name(SMTP_AUTH_CHOICE_XOAUTH2), "xoauth2");
}

/* ---- golden invalid cases ------------------------------------------------------------ */

Test(campaign, yaml_syntax_error)
{
    check_invalid("yaml_syntax", BLAST_ESYNTAX);
}

Test(campaign, two_documents)
{
    check_invalid("two_documents", BLAST_ESYNTAX);
}

Test(campaign, empty_file)
{
    check_invalid("empty_file", BLAST_EINVAL);
}

Test(campaign, not_a_mapping)
{
    check_invalid("not_a_mapping", BLAST_EINVAL);
}

Test(campaign, unknown_key_with_suggestion)
{
    check_invalid("unknown_key", BLAST_EINVAL);
}

Test(campaign, unknown_relay_key_with_suggestion)
{
    check_invalid("unknown_relay_key", BLAST_EINVAL);
}

Test(campaign, dkim_without_selector)
{
    check_invalid("dkim_without_selector", BLAST_EINVAL);
}

Test(campaign, wrong_type_relays_not_a_list)
{
    check_invalid("relays_not_list", BLAST_EINVAL);
}

Test(campaign, wrong_type_subject_is_a_list)
{
    check_invalid("subject_not_string", BLAST_EINVAL);
}

Test(campaign, wrong_type_verify_not_boolean)
{
    check_invalid("verify_not_bool", BLAST_EINVAL);
}

Test(campaign, missing_required_key)
{
    check_invalid("missing_from", BLAST_EINVAL);
}

Test(campaign, missing_required_nested_key)
{
    check_invalid("missing_recipients_path", BLAST_EINVAL);
}

Test(campaign, duplicate_key)
{
    check_invalid("duplicate_key", BLAST_EINVAL);
}

Test(campaign, empty_relays)
{
    check_invalid("empty_relays", BLAST_EINVAL);
}

Test(campaign, relay_without_host)
{
    check_invalid("relay_without_host", BLAST_EINVAL);
}

Test(campaign, duplicate_relay_name)
{
    check_invalid("duplicate_relay_name", BLAST_EINVAL);
}

Test(campaign, tls_none_to_a_remote_host)
{
    check_invalid("tls_none_remote", BLAST_EINVAL);
}

Test(campaign, tls_none_to_a_dns_name_that_starts_like_loopback)
{
    /* "127.0.0.1.relay.example" is a DNS name that can point anywhere */
    check_invalid("tls_none_host_named_like_loopback", BLAST_EINVAL);
}

Test(campaign, unknown_tls_mode)
{
    check_invalid("bad_tls", BLAST_EINVAL);
}

Test(campaign, port_out_of_range)
{
    check_invalid("port_out_of_range", BLAST_EINVAL);
}

Test(campaign, port_zero)
{
    check_invalid("port_zero", BLAST_EINVAL);
}

Test(campaign, port_not_a_number)
{
    check_invalid("port_not_number", BLAST_EINVAL);
}

Test(campaign, bad_campaign_name)
{
    check_invalid("bad_name", BLAST_EINVAL);
}

Test(campaign, bad_from_address)
{
    check_invalid("bad_from", BLAST_EINVAL);
}

Test(campaign, body_without_text_or_html)
{
    check_invalid("body_without_text_or_html", BLAST_EINVAL);
}

Test(campaign, username_without_a_secret)
{
    check_invalid("username_without_secret", BLAST_EINVAL);
}

Test(campaign, bad_delimiter)
{
    check_invalid("bad_delimiter", BLAST_EINVAL);
}

Test(campaign, bad_duration)
{
    check_invalid("bad_duration", BLAST_EINVAL);
}

Test(campaign, rate_zero)
{
    check_invalid("rate_zero", BLAST_EINVAL);
}

Test(campaign, rate_negative)
{
    check_invalid("rate_negative", BLAST_EINVAL);
}

Test(campaign, relay_rate_with_an_unknown_unit)
{
    check_invalid("relay_rate_bad_unit", BLAST_EINVAL);
}

Test(campaign, missing_subject)
{
    check_invalid("missing_subject", BLAST_EINVAL);
}

Test(campaign, header_blast_writes_itself)
{
    check_invalid("header_reserved", BLAST_EINVAL);
}

Test(campaign, list_unsubscribe_url_must_be_https)
{
    check_invalid("unsubscribe_http_url", BLAST_EINVAL);
}

Test(campaign, one_click_needs_a_url)
{
    check_invalid("one_click_without_url", BLAST_EINVAL);
}

Test(campaign, two_secrets_on_one_relay)
{
    check_invalid("two_secrets", BLAST_EINVAL);
}

Test(campaign, inline_part_without_cid)
{
    check_invalid("inline_without_cid", BLAST_EINVAL);
}

/* Every case directory is checked, including ones added without a test of their own. */
Test(campaign, every_golden_invalid_case_fails_as_recorded)
{
    DIR *d = opendir(INVALID);
    struct dirent *e;
    int n = 0, failed = 0;
    char why[8192], all[16384] = "";

    cr_assert_not_null(d, "%s: %s", INVALID, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char path[512];
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, INVALID "/%s", e->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (!golden_case(e->d_name, 0, why, sizeof why)) {
            failed++;
            snprintf(all + strlen(all), sizeof all - strlen(all), "\n%s", why);
        }
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 35, "only %d golden cases found", n);
    cr_assert_eq(failed, 0, "%d of %d golden cases differ:%s", failed, n, all);
}

/* ---- defaults of the newer keys ------------------------------------------------------- */

Test(campaign, minimal_file_gets_the_defaults_of_every_optional_key)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/minimal.yml");
    const struct campaign_relay *r = &c->relays[0];
    static const struct smtp_timeouts zero;

    cr_assert_eq(r->connections, 2);
    cr_assert_eq(r->messages_per_connection, 100);
    cr_assert_eq(r->weight, 1);
    cr_assert_not(r->rate.set);
    cr_assert_eq(memcmp(&r->timeouts, &zero, sizeof zero), 0, "0: the RFC 5321 defaults");
    cr_assert_null(r->pin_sha256);
    cr_assert_null(r->password_file);
    cr_assert_null(r->password_cmd);
    cr_assert_not(r->allow_plaintext);

    cr_assert_eq(c->retry.attempts, 5);
    cr_assert_eq(c->retry.initial, 60 * 1000L);
    cr_assert_eq(c->retry.max, 30 * 60 * 1000L);
    cr_assert_eq(c->retry.window, 4 * 3600 * 1000L);
    cr_assert_eq(c->retry.place.line, 0, "the defaults have no place");

    cr_assert_null(c->helo);
    cr_assert_eq(c->nsuppression, 0);
    cr_assert_eq(c->nattachments, 0);
    cr_assert_eq(c->ninline, 0);
    cr_assert_eq(c->nheaders, 0);
    cr_assert_null(c->list_unsubscribe.url);
    cr_assert_null(c->list_unsubscribe.mailto);
    cr_assert_not(c->list_unsubscribe.one_click);
    cr_assert_null(c->feedback_id);
    cr_assert_eq(c->ndkim, 0);
    cr_assert_not(c->rate.set);
    cr_assert_eq(c->ndomain_rates, 0);
    cr_assert_eq(c->dsn.notify, 0);
    cr_assert_eq(c->dsn.ret, SMTP_DSN_RET_DEFAULT);
    cr_assert_not(c->chunking);
    cr_assert_eq(c->vars.kind, CAMPAIGN_VALUE_MAP);
    cr_assert_eq(c->vars.n, 0);
    cr_assert_null(c->journal);
    cr_assert_null(campaign_var(c, "anything"));
    campaign_free(c);
}

/* ---- every key of the format ------------------------------------------------------------ */

#define EVERY FIXTURES "/campaigns/every_key.yml"
#define HERE  FIXTURES "/campaigns/"

static void assert_place(struct campaign_place p, int line, int column, const char *what)
{
    cr_assert(p.line == line && p.column == column, "%s at %d:%d, expected %d:%d", what, p.line,
              p.column, line, column);
}

Test(campaign, every_key_top_level)
{
    struct campaign *c = load_ok(EVERY);

    cr_assert_str_eq(c->name, "every-key");
    cr_assert_str_eq(c->envelope_from, "bounces@acme.example");
    cr_assert_str_eq(c->reply_to, "Acme Help <help@acme.example>");
    cr_assert_str_eq(c->helo, "mta.acme.example");
    assert_place(c->helo_place, 7, 7, "helo");
    cr_assert_str_eq(c->recipients.name_column, "first_name");
    cr_assert_eq(c->recipients.delimiter, '\t');

    cr_assert_eq(c->nsuppression, 2);
    cr_assert_str_eq(c->suppression[0], HERE "unsubscribed.txt");
    cr_assert_str_eq(c->suppression[1], "/srv/lists/bounces.csv", "absolute paths are kept");
    assert_place(c->suppression_places[0], 13, 15, "suppression[0]");
    assert_place(c->suppression_places[1], 13, 33, "suppression[1]");

    cr_assert_str_eq(c->feedback_id, "november:news:{{campaign}}");
    assert_place(c->feedback_id_place, 30, 15, "feedback_id (a template: inside the quotes)");

    cr_assert(c->rate.set);
    cr_assert_eq(c->rate.count, 100);
    cr_assert_eq(c->rate.unit, 's');
    cr_assert_float_eq(c->rate.per_second, 100.0, 1e-9);
    assert_place(c->rate.place, 72, 7, "rate");

    cr_assert_eq(c->ndomain_rates, 3);
    cr_assert_str_eq(c->domain_rates[0].domain, "gmail.com");
    cr_assert_eq(c->domain_rates[0].rate.count, 10);
    cr_assert_str_eq(c->domain_rates[1].domain, "example.org", "lower-case");
    cr_assert_float_eq(c->domain_rates[1].rate.per_second, 5.0, 1e-9);
    cr_assert_str_eq(c->domain_rates[2].domain, "xn--e1afmkfd.xn--p1ai", "the A-label form");
    cr_assert_eq(c->domain_rates[2].rate.unit, 'h');

    cr_assert_eq(c->retry.attempts, 8);
    cr_assert_eq(c->retry.initial, 90 * 1000L);
    cr_assert_eq(c->retry.max, 90 * 60 * 1000L);
    cr_assert_eq(c->retry.window, 2 * 24 * 3600 * 1000L);
    assert_place(c->retry.place, 74, 8, "retry");

    cr_assert_eq(c->dsn.notify, SMTP_DSN_FAILURE | SMTP_DSN_DELAY);
    cr_assert_eq(c->dsn.ret, SMTP_DSN_RET_HDRS);
    assert_place(c->dsn.place, 75, 6, "dsn");

    cr_assert(c->chunking);
    assert_place(c->chunking_place, 76, 11, "chunking");

    cr_assert_str_eq(c->report, HERE "reports/every.json");
    cr_assert_str_eq(c->journal, HERE ".blast/every.journal");
    assert_place(c->journal_place, 83, 10, "journal");
    campaign_free(c);
}

Test(campaign, every_key_parts)
{
    struct campaign *c = load_ok(EVERY);
    const struct campaign_part *p;

    cr_assert_eq(c->nattachments, 2);
    p = &c->attachments[0];
    cr_assert_str_eq(p->path, HERE "files/prices.pdf");
    cr_assert_str_eq(p->name, "prices.pdf", "the name defaults to the path's last part");
    cr_assert_null(p->content_type, "NULL: from the file name");
    cr_assert_null(p->cid);
    assert_place(p->place, 18, 5, "attachments[0]");
    p = &c->attachments[1];
    cr_assert_str_eq(p->path, HERE "files/terms.txt");
    cr_assert_str_eq(p->name, "Terms and conditions.txt");
    cr_assert_str_eq(p->content_type, "text/plain");
    assert_place(p->place, 19, 5, "attachments[1]");

    cr_assert_eq(c->ninline, 2);
    p = &c->inline_parts[0];
    cr_assert_str_eq(p->path, HERE "files/logo.png");
    cr_assert_str_eq(p->cid, "logo");
    cr_assert_str_eq(p->name, "logo.png");
    cr_assert_null(p->content_type);
    p = &c->inline_parts[1];
    cr_assert_str_eq(p->cid, "banner@acme");
    cr_assert_str_eq(p->name, "top.jpg");
    cr_assert_str_eq(p->content_type, "image/jpeg");
    assert_place(p->place, 22, 5, "inline[1]");
    campaign_free(c);
}

Test(campaign, every_key_headers_unsubscribe_and_dkim)
{
    struct campaign *c = load_ok(EVERY);

    cr_assert_eq(c->nheaders, 2);
    cr_assert_str_eq(c->headers[0].name, "X-Campaign");
    cr_assert_str_eq(c->headers[0].value, "november-{{campaign}}");
    cr_assert_eq(c->headers[0].place.line, 24);
    cr_assert_str_eq(c->headers[1].name, "X-Mailer-Id");
    cr_assert_str_eq(c->headers[1].value, "42");

    cr_assert_str_eq(c->list_unsubscribe.url, "https://acme.example/u?e={{email}}");
    cr_assert_str_eq(c->list_unsubscribe.mailto, "unsubscribe@acme.example");
    cr_assert(c->list_unsubscribe.one_click);
    assert_place(c->list_unsubscribe.place, 27, 3, "list_unsubscribe");
    assert_place(c->list_unsubscribe.url_place, 27, 9, "url (a template: inside the quotes)");

    cr_assert_eq(c->ndkim, 2);
    cr_assert_str_eq(c->dkim[0].domain, "acme.example");
    cr_assert_str_eq(c->dkim[0].selector, "s2026");
    cr_assert_str_eq(c->dkim[0].key, HERE "keys/s2026.pem");
    cr_assert_eq(c->dkim[0].algorithm, CAMPAIGN_DKIM_RSA_SHA256, "the default algorithm");
    assert_place(c->dkim[0].place, 32, 5, "dkim[0]");
    assert_place(c->dkim[0].key_place, 34, 10, "dkim[0].key");
    cr_assert_str_eq(c->dkim[1].domain, "mail.acme.example");
    cr_assert_str_eq(c->dkim[1].selector, "ed.2026");
    cr_assert_str_eq(c->dkim[1].key, "/etc/blast/ed2026.pem");
    cr_assert_eq(c->dkim[1].algorithm, CAMPAIGN_DKIM_ED25519_SHA256);
    cr_assert_str_eq(campaign_dkim_alg_name(CAMPAIGN_DKIM_RSA_SHA256), "rsa-sha256");
    cr_assert_str_eq(campaign_dkim_alg_name(CAMPAIGN_DKIM_ED25519_SHA256), "ed25519-sha256");
    campaign_free(c);
}

Test(campaign, every_key_relays)
{
    struct campaign *c = load_ok(EVERY);
    const struct campaign_relay *r;

    cr_assert_eq(c->nrelays, 3);
    r = &c->relays[0];
    cr_assert_str_eq(r->name, "primary");
    cr_assert_eq(r->port, 2587);
    cr_assert_str_eq(r->ca_file, HERE "ca.pem");
    cr_assert_str_eq(r->pin_sha256, "AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:"
                                    "23:45:67:89:ab:cd:ef:01:23:45:67:89");
    cr_assert_str_eq(r->password_env, "BLAST_UNIT_PASSWORD");
    assert_place(r->password_place, 47, 19, "password_env");
    cr_assert_eq(r->auth, SMTP_AUTH_CHOICE_PLAIN);
    cr_assert_eq(r->connections, 4);
    cr_assert_eq(r->messages_per_connection, 250);
    cr_assert_eq(r->weight, 3);
    cr_assert(r->rate.set);
    cr_assert_eq(r->rate.count, 20);
    cr_assert_eq(r->rate.unit, 's');
    assert_place(r->rate.place, 52, 11, "relay rate");
    cr_assert_eq(r->timeouts.connect, 10000);
    cr_assert_eq(r->timeouts.greeting, 60000);
    cr_assert_eq(r->timeouts.ehlo, 61000);
    cr_assert_eq(r->timeouts.starttls, 30000);
    cr_assert_eq(r->timeouts.auth, 45000);
    cr_assert_eq(r->timeouts.mail, 120000);
    cr_assert_eq(r->timeouts.rcpt, 180000);
    cr_assert_eq(r->timeouts.data, 90000);
    cr_assert_eq(r->timeouts.block, 90000);
    cr_assert_eq(r->timeouts.end_of_data, 300000);
    cr_assert_eq(r->timeouts.rset, 20000);
    cr_assert_eq(r->timeouts.quit, 500);
    assert_place(r->place, 40, 5, "relay 1");

    r = &c->relays[1];
    cr_assert_str_eq(r->name, "backup");
    cr_assert_eq(r->tls, SMTP_TLS_IMPLICIT);
    cr_assert_eq(r->port, 465);
    cr_assert_null(r->password_env);
    cr_assert_str_eq(r->password_file, HERE "secrets/backup.txt", "resolved like every path");
    assert_place(r->password_place, 58, 20, "password_file");
    cr_assert_eq(r->auth, SMTP_AUTH_CHOICE_LOGIN);
    cr_assert_eq(r->messages_per_connection, 0, "0: no limit");
    cr_assert_eq(r->connections, 2);
    cr_assert_eq(r->rate.count, 600);
    cr_assert_eq(r->rate.unit, 'm');
    cr_assert_float_eq(r->rate.per_second, 10.0, 1e-9);

    r = &c->relays[2];
    cr_assert_str_eq(r->name, "vault");
    cr_assert_eq(r->tls, SMTP_TLS_NONE);
    cr_assert(r->allow_plaintext, "allow_plaintext permits a remote host");
    cr_assert_eq(r->port, 25);
    cr_assert_str_eq(r->password_cmd, "pass show mail/relay");
    assert_place(r->password_place, 67, 19, "password_cmd");
    cr_assert_eq(r->auth, SMTP_AUTH_CHOICE_XOAUTH2);
    cr_assert_eq(r->connections, 100);
    cr_assert_eq(r->weight, 1000);
    cr_assert_float_eq(r->rate.per_second, 1.0, 1e-9);
    campaign_free(c);
}

/* ---- vars ------------------------------------------------------------------------------ */

Test(campaign, vars_are_a_tree_reached_with_dots)
{
    struct campaign *c = load_ok(EVERY);
    const struct campaign_value *v;

    cr_assert_eq(c->vars.kind, CAMPAIGN_VALUE_MAP);
    cr_assert_eq(c->vars.n, 4);
    cr_assert_str_eq(c->vars.keys[0], "company");

    v = campaign_var(c, "company");
    cr_assert_not_null(v);
    cr_assert_eq(v->kind, CAMPAIGN_VALUE_STRING);
    cr_assert_str_eq(v->string, "Acme");

    v = campaign_var(c, "address");
    cr_assert_not_null(v);
    cr_assert_eq(v->kind, CAMPAIGN_VALUE_MAP);
    cr_assert_eq(v->n, 3);

    v = campaign_var(c, "address.city");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->string, "Springfield");
    v = campaign_var(c, "address.geo.lat");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->string, "39.8");
    v = campaign_var(c, "address.geo.lon");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->string, "-89.6");

    v = campaign_var(c, "offices");
    cr_assert_not_null(v);
    cr_assert_eq(v->kind, CAMPAIGN_VALUE_LIST);
    cr_assert_eq(v->n, 2);
    cr_assert_str_eq(v->items[1].string, "Paris");

    v = campaign_var(c, "empty");
    cr_assert_not_null(v, "a null value is an empty string");
    cr_assert_eq(v->kind, CAMPAIGN_VALUE_STRING);
    cr_assert_str_empty(v->string);

    cr_assert_null(campaign_var(c, "nope"));
    cr_assert_null(campaign_var(c, "address.nope"));
    cr_assert_null(campaign_var(c, "address.geo.lat.more"), "a string has no members");
    cr_assert_null(campaign_var(c, "company.name"));
    cr_assert_null(campaign_var(c, "offices.0"), "lists are not indexed");
    cr_assert_null(campaign_var(c, "addr"), "names match whole");
    cr_assert_null(campaign_var(c, "address.cit"));
    cr_assert_null(campaign_var(c, ""));
    campaign_free(c);
}

/* ---- durations and rates --------------------------------------------------------------- */

Test(campaign, durations)
{
    static const struct {
        const char *text;
        long ms;
    } good[] = {
        {"90s", 90000},   {"5m", 300000},    {"1h30m", 5400000}, {"500ms", 500},
        {"4h", 14400000}, {"2d", 172800000}, {"1m30s", 90000},   {"1d2h3m4s5ms", 93784005},
    };
    static const char *const bad[] = {"0s",   "5 minutes", "-1m",   "",    "5",   "m",
                                      "1.5h", "5M",        "10sec", "0ms", " 5m", "5m "};
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        long ms = -1;
        cr_assert_eq(campaign_parse_duration(good[i].text, &ms), 0, "'%s'", good[i].text);
        cr_assert_eq(ms, good[i].ms, "'%s': %ld ms, expected %ld", good[i].text, ms, good[i].ms);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long ms = -1;
        cr_assert_eq(campaign_parse_duration(bad[i], &ms), BLAST_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_eq(ms, -1, "'%s': the output is left alone", bad[i]);
    }
}

Test(campaign, rates)
{
    static const struct {
        const char *text;
        long count;
        char unit;
        double per_second;
    } good[] = {
        {"10/s", 10, 's', 10.0},
        {"600/m", 600, 'm', 10.0},
        {"3600/h", 3600, 'h', 1.0},
        {"1/h", 1, 'h', 1.0 / 3600.0},
    };
    static const char *const bad[] = {"0/s", "-5/m",  "5/d",   "x/s", "10/", "/s",
                                      "10",  "10/ss", "10 /s", "",    "5/S", "1.5/s"};
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct campaign_rate r;
        memset(&r, 0, sizeof r);
        cr_assert_eq(campaign_parse_rate(good[i].text, &r), 0, "'%s'", good[i].text);
        cr_assert(r.set, "'%s'", good[i].text);
        cr_assert_eq(r.count, good[i].count, "'%s'", good[i].text);
        cr_assert_eq(r.unit, good[i].unit, "'%s'", good[i].text);
        cr_assert_float_eq(r.per_second, good[i].per_second, 1e-9, "'%s'", good[i].text);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct campaign_rate r;
        memset(&r, 0, sizeof r);
        cr_assert_eq(campaign_parse_rate(bad[i], &r), BLAST_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_not(r.set, "'%s'", bad[i]);
    }
}

/* ---- more loader rules ------------------------------------------------------------------ */

/* A campaign in the scratch directory; extra goes after the relays. */
static void small_campaign(const char *relay_extra, const char *extra, char *path, size_t size)
{
    char yml[2048];

    snprintf(yml, sizeof yml,
             "name: small\n"
             "from: news@acme.example\n"
             "subject: Hi\n"
             "recipients: {path: list.csv}\n"
             "body: {text: body.txt}\n"
             "relays:\n"
             "  - host: smtp.relay.example\n"
             "%s"
             "%s",
             relay_extra, extra);
    scratch_write_file(scratch_make(), "campaign.yml", yml, path, size);
}

/* Load path, which must fail; returns the formatted error in msg. */
static int load_fails(const char *path, char *msg, size_t size)
{
    struct campaign *c = (struct campaign *)0x1;
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = campaign_load(path, &c, &err);
    if (rc == 0)
        campaign_free(c);
    else
        cr_assert_null(c);
    blast_error_format(&err, msg, size);
    return rc;
}

Test(campaign, single_dkim_mapping_and_single_suppression_file, .fini = scratch_remove)
{
    char path[512], want[600];
    struct campaign *c;

    small_campaign(
        "", "suppression: stop.txt\ndkim: {domain: acme.example, selector: s1, key: k.pem}\n", path,
        sizeof path);
    c = load_ok(path);
    cr_assert_eq(c->nsuppression, 1);
    snprintf(want, sizeof want, "%s/stop.txt", scratch_dir);
    cr_assert_str_eq(c->suppression[0], want);
    cr_assert_eq(c->ndkim, 1);
    cr_assert_str_eq(c->dkim[0].selector, "s1");
    snprintf(want, sizeof want, "%s/k.pem", scratch_dir);
    cr_assert_str_eq(c->dkim[0].key, want);
    campaign_free(c);
}

/* ---- return_path ----------------------------------------------------------------------- */

Test(campaign, return_path_with_its_secret, .fini = scratch_remove)
{
    char path[512], want[600];
    struct campaign *c;

    small_campaign("",
                   "return_path:\n"
                   "  address: bounces+{token}@acme.example\n"
                   "  secret_file: verp.key\n",
                   path, sizeof path);
    c = load_ok(path);
    cr_assert_str_eq(c->return_path.address, "bounces+{token}@acme.example");
    cr_assert_null(c->return_path.secret_env);
    snprintf(want, sizeof want, "%s/verp.key", scratch_dir);
    cr_assert_str_eq(c->return_path.secret_file, want, "resolved beside the campaign");
    assert_place(c->return_path.place, 9, 3, "return_path");
    assert_place(c->return_path.secret_place, 10, 16, "secret_file");
    cr_assert_null(c->envelope_from);
    campaign_free(c);
}

static void return_path_fails(const char *extra, const char *says)
{
    char path[512], msg[BLAST_ERROR_TEXT_MAX + 600];

    small_campaign("", extra, path, sizeof path);
    cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL, "%s", extra);
    cr_assert(strstr(msg, says) != NULL, "'%s' says '%s'", msg, says);
    cr_assert(strstr(msg, "campaign.yml:") != NULL, "a place: %s", msg);
}

Test(campaign, return_path_refusals, .fini = scratch_remove)
{
    return_path_fails("return_path: {address: bounces@acme.example, secret_env: K}\n",
                      "needs {token}");
    return_path_fails("return_path: {address: 'b+{token}+{token}@acme.example', secret_env: K}\n",
                      "once");
    return_path_fails("return_path: {address: 'bounces@{token}.example', secret_env: K}\n",
                      "before the '@'");
    return_path_fails("return_path: {address: 'b c+{token}@acme.example', secret_env: K}\n",
                      "not an address");
    return_path_fails("return_path: {address: 'b+{token}@acme.example'}\n",
                      "one of 'secret_env' and 'secret_file'");
    return_path_fails(
        "return_path: {address: 'b+{token}@acme.example', secret_env: K, secret_file: f}\n",
        "one of 'secret_env' and 'secret_file'");
    return_path_fails("return_path: {secret_env: K}\n", "address");
    return_path_fails("return_path: {address: 'b+{token}@acme.example', secret_env: K, x: 1}\n",
                      "x");
    return_path_fails("envelope_from: b@acme.example\n"
                      "return_path: {address: 'b+{token}@acme.example', secret_env: K}\n",
                      "'envelope_from' cannot be set with it");
}

/* ---- vars and aliases ---------------------------------------------------------------- */

Test(campaign, vars_key_that_is_a_list_is_refused_with_its_place)
{
    check_invalid("vars_key_not_a_scalar", BLAST_EINVAL);
}

Test(campaign, vars_alias_inside_the_node_it_names_is_refused_with_its_place)
{
    check_invalid("vars_alias_cycle", BLAST_EINVAL);
}

Test(campaign, vars_billion_laughs_is_refused_at_the_alias_that_passes_the_limit)
{
    check_invalid("vars_alias_billion_laughs", BLAST_EINVAL);
}

Test(campaign, vars_duplicate_key_in_a_nested_mapping_is_refused)
{
    check_invalid("vars_nested_duplicate_key", BLAST_EINVAL);
}

/* Load a small campaign with extra appended; it must fail at line:column with fragment. */
static void expect_vars_error(const char *extra, int line, int column, const char *fragment)
{
    static const char head[] = "name: small\n"
                               "from: news@acme.example\n"
                               "subject: Hi\n"
                               "recipients: {path: list.csv}\n"
                               "body: {text: body.txt}\n"
                               "relays:\n"
                               "  - host: smtp.relay.example\n";
    char path[512], msg[2048], want[64], *yml;
    int rc;

    /* extra may be larger than small_campaign() takes */
    yml = malloc(sizeof head + strlen(extra));
    cr_assert_not_null(yml);
    memcpy(yml, head, sizeof head - 1);
    memcpy(yml + sizeof head - 1, extra, strlen(extra) + 1);
    scratch_write_file(scratch_make(), "campaign.yml", yml, path, sizeof path);
    free(yml);
    rc = load_fails(path, msg, sizeof msg);
    cr_assert_eq(rc, BLAST_EINVAL, "rc %d: %s", rc, msg);
    snprintf(want, sizeof want, "campaign.yml:%d:%d: ", line, column);
    cr_assert_not_null(strstr(msg, want), "'%s' not in '%s'", want, msg);
    cr_assert_not_null(strstr(msg, fragment), "'%s' not in '%s'", fragment, msg);
}

Test(campaign, vars_keys_must_be_scalars_at_every_level, .fini = scratch_remove)
{
    expect_vars_error("vars:\n  ? [x]\n  : 1\n", 9, 5, "found a list");
    expect_vars_error("vars:\n  a: 1\n  ? {k: v}\n  : 1\n", 10, 5, "found a mapping");
    expect_vars_error("vars:\n  a:\n    ? [x]\n    : 1\n", 10, 7, "found a list");
}

Test(campaign, vars_aliases_that_contain_themselves_are_refused, .fini = scratch_remove)
{
    expect_vars_error("vars:\n  b: &l [*l]\n", 9, 10, "inside the node it names (line 9)");
    expect_vars_error("vars:\n  b: &m {x: [1, {y: *m}]}\n", 9, 21, "inside the node it names");
}

/*
 * Aliases are copied into vars: what the copies add is bounded by the values and
 * the bytes of text they make, wherever the limit is passed.
 */
Test(campaign, vars_alias_copies_are_bounded, .fini = scratch_remove)
{
    char extra[4096], *big;
    size_t n, i;

    /* 9^5 copies: small enough to load before there was a limit, too many now */
    snprintf(extra, sizeof extra, "vars:\n  a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (i = 0; i < 4; i++) {
        n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "  %c: &%c [", (char)('b' + i), (char)('b' + i));
        for (int k = 0; k < 9; k++) {
            n = strlen(extra);
            snprintf(extra + n, sizeof extra - n, "%s*%c", k > 0 ? ", " : "", (char)('a' + i));
        }
        n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "]\n");
    }
    expect_vars_error(extra, 13, 10, "more than 10000 values");

    /* a 100 KB scalar copied eleven times is more than 1 MiB of text */
    n = 100 * 1024;
    big = malloc(n + 4096);
    cr_assert_not_null(big);
    memcpy(big, "vars:\n  a: &a ", 14);
    memset(big + 14, 'x', n);
    snprintf(big + 14 + n, 4096 - 14, "\n  b: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n");
    expect_vars_error(big, 10, 47, "more than 1048576 bytes");
    free(big);
}

Test(campaign, vars_aliases_within_the_limits_are_copies, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;
    const struct campaign_value *v;

    small_campaign("",
                   "vars:\n  office: &o {city: Paris, tags: [a, b]}\n  home: *o\n"
                   "  list: [*o, *o]\n",
                   path, sizeof path);
    c = load_ok(path);
    v = campaign_var(c, "home.city");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->string, "Paris");
    v = campaign_var(c, "list");
    cr_assert_not_null(v);
    cr_assert_eq(v->kind, CAMPAIGN_VALUE_LIST);
    cr_assert_eq(v->n, 2);
    cr_assert_eq(v->items[1].kind, CAMPAIGN_VALUE_MAP);
    cr_assert_str_eq(v->items[1].items[1].items[1].string, "b");
    campaign_free(c);
}

Test(campaign, vars_alias_cannot_nest_deeper_than_the_parser_allows, .fini = scratch_remove)
{
    char extra[4096];
    size_t n;
    int i;

    /* 20 levels, then an alias of them 20 levels down: 40 in all */
    snprintf(extra, sizeof extra, "vars:\n  a: &deep ");
    for (i = 0; i < 20; i++) {
        n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "[");
    }
    n = strlen(extra);
    snprintf(extra + n, sizeof extra - n, "x");
    for (i = 0; i < 20; i++) {
        n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "]");
    }
    n = strlen(extra);
    snprintf(extra + n, sizeof extra - n, "\n  b: ");
    for (i = 0; i < 20; i++) {
        n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "[");
    }
    n = strlen(extra);
    snprintf(extra + n, sizeof extra - n, "*deep");
    for (i = 0; i < 20; i++) {
        n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "]");
    }
    n = strlen(extra);
    snprintf(extra + n, sizeof extra - n, "\n");
    expect_vars_error(extra, 10, 26, "deeper than 32 levels");
}

Test(campaign, vars_value_with_a_nul_character_is_refused, .fini = scratch_remove)
{
    expect_vars_error("vars:\n  a: \"x\\0y\"\n", 9, 6, "NUL character");
}

Test(campaign, content_header_fields_belong_to_blast, .fini = scratch_remove)
{
    /* docs/campaign.md: blast's own fields, Content-* among them, are refused */
    static const char *const names[] = {"Content-Type",        "content-transfer-encoding",
                                        "Content-Disposition", "Content-ID",
                                        "Content-Language",    "Content-Description"};
    char path[512], extra[256], msg[2048];
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(extra, sizeof extra, "headers: {%s: x}\n", names[i]);
        small_campaign("", extra, path, sizeof path);
        cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL, "%s accepted", names[i]);
        cr_assert_not_null(strstr(msg, "is written by blast"), "%s", msg);
        scratch_remove();
    }
}

Test(campaign, pin_needs_64_hex_digits, .fini = scratch_remove)
{
    char path[512], msg[2048];

    small_campaign("    pin_sha256: abcd\n", "", path, sizeof path);
    cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL);
    cr_assert_not_null(strstr(msg, ":8:17: 'pin_sha256' must be 64 hexadecimal digits"), "%s", msg);
}

/* ---- notify: the webhook told when a send ends ----------------------------------------- */

Test(campaign, every_key_notify)
{
    struct campaign *c = load_ok(EVERY);
    const struct campaign_notify *n = c->notify;

    cr_assert_not_null(n);
    cr_assert_str_eq(n->url, "https://hooks.acme.example/blast?key=k1");
    assert_place(n->url_place, 85, 8, "notify.url");
    assert_place(n->place, 85, 3, "notify");
    cr_assert_eq(n->nheaders, 2);
    cr_assert_str_eq(n->headers[0].name, "X-Team");
    cr_assert_str_eq(n->headers[0].value, "news");
    assert_place(n->headers[0].place, 86, 21, "notify.headers.X-Team");
    cr_assert_str_eq(n->headers[1].name, "X-Trace-Id");
    cr_assert_str_eq(n->headers[1].value, "42");
    cr_assert_str_eq(n->authorization_env, "BLAST_UNIT_HOOK_TOKEN");
    assert_place(n->authorization_place, 87, 22, "notify.authorization_env");
    cr_assert_eq(n->timeout, 2500);
    cr_assert_eq(n->retries, 0);
    cr_assert_not(n->verify);
    cr_assert_str_eq(n->ca_file, FIXTURES "/campaigns/hook-ca.pem", "relative to the campaign");
    assert_place(n->ca_file_place, 91, 12, "notify.ca_file");
    campaign_free(c);
}

Test(campaign, no_notify_without_the_key)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/minimal.yml");

    cr_assert_null(c->notify);
    campaign_free(c);
}

Test(campaign, notify_defaults, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;

    small_campaign("", "notify: {url: \"https://hooks.example/blast\"}\n", path, sizeof path);
    c = load_ok(path);
    cr_assert_not_null(c->notify);
    cr_assert_eq(c->notify->timeout, 10000, "10 s");
    cr_assert_eq(c->notify->retries, 3);
    cr_assert(c->notify->verify);
    cr_assert_null(c->notify->ca_file);
    cr_assert_null(c->notify->authorization_env);
    cr_assert_eq(c->notify->nheaders, 0);
    campaign_free(c);
}

/* The URL's rules are url_check_webhook()'s (test_url.c); the loader places them. */
Test(campaign, notify_url_is_checked_at_its_place, .fini = scratch_remove)
{
    static const struct {
        const char *url;
        bool loopback;
    } ok[] = {{"http://127.0.0.1:8080/hook", true}, {"https://hooks.example/", false}};
    static const char *const refused[] = {"http://hooks.example/hook", "https:///hook"};
    char path[512], extra[256], msg[2048];
    struct campaign *c;
    size_t i;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(extra, sizeof extra, "notify: {url: \"%s\"}\n", ok[i].url);
        small_campaign("", extra, path, sizeof path);
        c = load_ok(path);
        cr_assert_str_eq(c->notify->url, ok[i].url);
        cr_assert_eq(c->notify->loopback, ok[i].loopback, "%s", ok[i].url);
        campaign_free(c);
        scratch_remove();
    }
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(extra, sizeof extra, "notify: {url: \"%s\"}\n", refused[i]);
        small_campaign("", extra, path, sizeof path);
        cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL, "%s accepted", refused[i]);
        cr_assert_not_null(strstr(msg, ":8:15: 'url' "), "%s: %s", refused[i], msg);
        scratch_remove();
    }
}

Test(campaign, notify_errors_never_quote_what_may_be_a_secret, .fini = scratch_remove)
{
    /* a pasted token, a password in the URL, a query key: named, never repeated */
    static const char *const cases[] = {
        "notify: {url: \"https://hooks.example/x\", authorization_env: \"Bearer tok3n\"}\n",
        "notify: {url: \"https://u:tok3n@hooks.example/x\"}\n",
        "notify: {url: \"https://hooks.example/x?key=tok3n zz\"}\n",
        "notify: {url: \"https://hooks.example/x\", headers: {X-Key: \"tok3n\\r\\nX: y\"}}\n",
        "notify: {url: \"http://hooks.example/x?key=tok3n\"}\n",
    };
    char path[512], msg[2048];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        small_campaign("", cases[i], path, sizeof path);
        cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL, "%s accepted", cases[i]);
        cr_assert_null(strstr(msg, "tok3n"), "%s", msg);
        scratch_remove();
    }
}

Test(campaign, notify_header_names_are_tokens_and_values_single_lines, .fini = scratch_remove)
{
    static const char *const bad[] = {
        "{\"X-Team:\": a}",       "{\"X Team\": a}",
        "{\"X-Team\\n\": a}",     "{X-Team: \"a\\rb\"}",
        "{X-Team: \"a\\nb\"}",    "{X-Team: \"caf\\u00e9\"}",
        "{X-Team: a, x-team: b}", "{Authorization: Basic x}",
        "{Host: a.example}",      "{User-Agent: me}",
        "{X-Team: [a]}",          "{X-Team: ~}",
    };
    char path[512], extra[256], msg[2048];
    struct campaign *c;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(extra, sizeof extra, "notify: {url: \"https://hooks.example/\", headers: %s}\n",
                 bad[i]);
        small_campaign("", extra, path, sizeof path);
        cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL, "%s accepted", bad[i]);
        cr_assert_not_null(strstr(msg, "campaign.yml:8:"), "%s", msg);
        scratch_remove();
    }
    small_campaign("",
                   "notify: {url: \"https://hooks.example/\", headers: {X-A: \"a\\tb c\", "
                   "\"X_b!#$%&'*+.^`|~\": \"1\"}}\n",
                   path, sizeof path);
    c = load_ok(path);
    cr_assert_eq(c->notify->nheaders, 2);
    cr_assert_str_eq(c->notify->headers[0].value, "a\tb c");
    campaign_free(c);
}

Test(campaign, notify_timeout_and_retries_have_bounds, .fini = scratch_remove)
{
    static const char *const bad[] = {"timeout: 0s", "timeout: 5m1s", "timeout: soon",
                                      "retries: -1", "retries: 11",   "verify: maybe"};
    char path[512], extra[256], msg[2048];
    struct campaign *c;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(extra, sizeof extra, "notify:\n  url: https://hooks.example/\n  %s\n", bad[i]);
        small_campaign("", extra, path, sizeof path);
        cr_assert_eq(load_fails(path, msg, sizeof msg), BLAST_EINVAL, "%s accepted", bad[i]);
        cr_assert_not_null(strstr(msg, "campaign.yml:10:"), "%s", msg);
        scratch_remove();
    }
    small_campaign("", "notify:\n  url: https://hooks.example/\n  timeout: 5m\n  retries: 10\n",
                   path, sizeof path);
    c = load_ok(path);
    cr_assert_eq(c->notify->timeout, 5 * 60 * 1000L);
    cr_assert_eq(c->notify->retries, 10);
    campaign_free(c);
}

Test(campaign, notify_golden_cases)
{
    static const char *const cases[] = {
        "notify_unknown_key",          "notify_missing_url",         "notify_not_a_mapping",
        "notify_http_remote",          "notify_bad_scheme",          "notify_url_not_a_url",
        "notify_url_with_password",    "notify_url_with_space",      "notify_header_name_colon",
        "notify_header_name_crlf",     "notify_header_value_crlf",   "notify_header_authorization",
        "notify_header_reserved",      "notify_authorization_value", "notify_timeout_too_long",
        "notify_retries_out_of_range",
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_invalid(cases[i], BLAST_EINVAL);
}

Test(campaign, every_key_bounces)
{
    struct campaign *c = load_ok(EVERY);
    const struct campaign_bounces *b = &c->bounces;

    cr_assert_str_eq(b->url, "imap://imap.acme.example:1143/Bounces");
    cr_assert_not(b->pop3);
    cr_assert_str_eq(b->username, "bounces@acme.example");
    cr_assert_null(b->password_env);
    cr_assert_str_eq(b->password_file, FIXTURES "/campaigns/imap-password.txt");
    cr_assert(b->xoauth2);
    cr_assert_not(b->verify);
    cr_assert_str_eq(b->ca_file, FIXTURES "/campaigns/imap-ca.pem");
    cr_assert_eq(b->after, CAMPAIGN_BOUNCES_MOVE);
    cr_assert_str_eq(b->folder, "Done");
    cr_assert_eq(b->soft_count, 5);
    cr_assert_eq(b->soft_window, 2L * 24 * 3600 * 1000);
    cr_assert_gt(b->url_place.line, 0);
    cr_assert_gt(b->password_place.line, 0);
    campaign_free(c);
}

Test(campaign, a_campaign_without_the_key_has_no_bounce_mailbox)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/minimal.yml");

    cr_assert_null(c->bounces.url, "no bounces: no mailbox");
    campaign_free(c);
}

/* ---- dns and providers ------------------------------------------------------------------ */

Test(campaign, providers_unknown_with_suggestion)
{
    check_invalid("providers_unknown", BLAST_EINVAL);
}

Test(campaign, providers_bad_value)
{
    check_invalid("providers_bad_value", BLAST_EINVAL);
}

Test(campaign, providers_bad_mx)
{
    check_invalid("providers_bad_mx", BLAST_EINVAL);
}

Test(campaign, dns_bad_servers)
{
    check_invalid("dns_bad_servers", BLAST_EINVAL);
}

Test(campaign, dns_unknown_key)
{
    check_invalid("dns_unknown_key", BLAST_EINVAL);
}

Test(campaign, dns_and_providers_are_read, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;
    FILE *f;

    snprintf(path, sizeof path, "%s/campaign.yml", scratch_make());
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n"
          "dns: {servers: [127.0.0.1:5353, \"[::1]:53\"], timeout: 500ms}\n"
          "providers:\n  google: {rate: 20/s}\n  yahoo: false\n"
          "  acme-mail: {mx: [mx1.acme-mail.example, mx2.acme-mail.example], rate: 1/s}\n"
          "  one: {mx: mx.one.example}\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert(c->dns.lookups);
    cr_assert_str_eq(c->dns.servers, "127.0.0.1:5353,[::1]:53");
    cr_assert_eq(c->dns.timeout_ms, 500);
    cr_assert_eq(c->nproviders, 4);
    cr_assert_str_eq(c->providers[0].name, "google");
    cr_assert(c->providers[0].rate.set);
    cr_assert_float_eq(c->providers[0].rate.per_second, 20.0, 1e-9);
    cr_assert(c->providers[1].off);
    cr_assert_eq(c->providers[2].nmx, 2);
    cr_assert_str_eq(c->providers[2].mx[1], "mx2.acme-mail.example");
    cr_assert_eq(c->providers[3].nmx, 1, "one name, not a list");
    cr_assert(!c->providers[3].rate.set);
    campaign_free(c);

    /* the defaults */
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n"
          "dns: {lookups: false}\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert(!c->dns.lookups);
    cr_assert_null(c->dns.servers);
    cr_assert_eq(c->dns.timeout_ms, 2000);
    cr_assert_eq(c->nproviders, 0);
    campaign_free(c);
}

Test(campaign, breaker_bad_share)
{
    check_invalid("breaker_bad_share", BLAST_EINVAL);
}

Test(campaign, breaker_not_a_map)
{
    check_invalid("breaker_not_a_map", BLAST_EINVAL);
}

Test(campaign, window_and_warmup_errors)
{
    check_invalid("window_bad_hours", BLAST_EINVAL);
    check_invalid("window_bad_days", BLAST_EINVAL);
    check_invalid("warmup_daily_and_ramp", BLAST_EINVAL);
    check_invalid("warmup_bad_growth", BLAST_EINVAL);
    check_invalid("warmup_bad_start", BLAST_EINVAL);
    check_invalid("warmup_bad_cap", BLAST_EINVAL);
}

Test(campaign, window_warmup_and_timezone_are_read, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;
    FILE *f;

    snprintf(path, sizeof path, "%s/campaign.yml", scratch_make());
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n"
          "timezone: Europe/Paris\n"
          "window: {days: [mon, tue], hours: [\"08:30-12:00\", \"14:00-18:00\"], zone_column: tz}\n"
          "warmup:\n  first: 500\n  growth: 1.5\n  until: 200000\n  start: 2026-12-01\n"
          "  store: counts.db\n  providers: {google: {daily: [100, 300]}, other: false}\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert_str_eq(c->timezone, "Europe/Paris");
    cr_assert(c->window.set);
    cr_assert_eq(c->window.w.days, 0x03);
    cr_assert_eq(c->window.w.nspans, 2);
    cr_assert_eq(c->window.w.spans[0].from, 8 * 60 + 30);
    cr_assert_eq(c->window.w.spans[1].to, 18 * 60);
    cr_assert_str_eq(c->window.zone_column, "tz");
    cr_assert(c->warmup.enabled);
    cr_assert_eq(c->warmup.schedule.first, 500);
    cr_assert_float_eq(c->warmup.schedule.growth, 1.5, 1e-9);
    cr_assert_eq(c->warmup.schedule.until, 200000);
    cr_assert_eq(c->warmup.start, 20788, "2026-12-01: %lld", (long long)c->warmup.start);
    cr_assert_not_null(strstr(c->warmup.store, "/counts.db"));
    cr_assert_eq(c->warmup.nproviders, 2);
    cr_assert_str_eq(c->warmup.providers[0].name, "google");
    cr_assert_eq(c->warmup.providers[0].schedule.ndaily, 2);
    cr_assert_eq(c->warmup.providers[0].schedule.daily[1], 300);
    cr_assert(c->warmup.providers[1].off);
    campaign_free(c);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\nwarmup: true\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert(c->warmup.enabled);
    cr_assert_eq(warmup_cap(&c->warmup.schedule, 1), 200, "the default ramp");
    cr_assert_eq(c->warmup.start, -1);
    cr_assert(!c->window.set);
    cr_assert_null(c->timezone);
    campaign_free(c);
}

Test(campaign, preflight_is_read, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;
    FILE *f;

    check_invalid("preflight_unknown", BLAST_EINVAL);
    snprintf(path, sizeof path, "%s/campaign.yml", scratch_make());
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\npreflight: dns\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert(c->preflight_dns);
    cr_assert_eq(c->preflight_place.line, 7);
    campaign_free(c);
}

Test(campaign, seeds_errors)
{
    check_invalid("seeds_twice", BLAST_EINVAL);
    check_invalid("seeds_bad_address", BLAST_EINVAL);
    check_invalid("seeds_not_a_list", BLAST_EINVAL);
}

Test(campaign, seeds_are_read, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;
    FILE *f;

    snprintf(path, sizeof path, "%s/campaign.yml", scratch_make());
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n"
          "seeds: [qa@team.example, \"QA Two <qa2@team.example>\"]\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert_eq(c->seeds.n, 2);
    cr_assert_str_eq(c->seeds.addresses[1], "QA Two <qa2@team.example>");
    cr_assert_eq(c->seeds.places[1].line, 7);
    cr_assert_eq(c->seeds.wait, 60000, "the default");
    campaign_free(c);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n"
          "seeds: {addresses: [qa@team.example], wait: 2m}\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert_eq(c->seeds.n, 1);
    cr_assert_eq(c->seeds.wait, 120000);
    campaign_free(c);
}

Test(campaign, breaker_is_read, .fini = scratch_remove)
{
    char path[512];
    struct campaign *c;
    FILE *f;

    snprintf(path, sizeof path, "%s/campaign.yml", scratch_make());
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n"
          "breaker: {after: 200, failures: 20%, blocks: 2.5%, throttles: 0%}\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert_eq(c->breaker.after, 200);
    cr_assert_float_eq(c->breaker.failures, 0.20, 1e-9);
    cr_assert_float_eq(c->breaker.blocks, 0.025, 1e-9);
    cr_assert_float_eq(c->breaker.throttles, 0.0, 1e-9);
    campaign_free(c);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\nbreaker: false\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert_eq(c->breaker.after, 0, "off");
    campaign_free(c);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: test\nfrom: news@acme.example\nsubject: Hello\nrecipients: {path: list.csv}\n"
          "body: {text: body.txt}\nrelays: [{host: smtp.relay.example}]\n",
          f);
    fclose(f);
    c = load_ok(path);
    cr_assert_eq(c->breaker.after, 100, "the default");
    cr_assert_float_eq(c->breaker.blocks, 0.10, 1e-9);
    campaign_free(c);
}
