/*
 * test_provider - the shipped table of mailbox providers and the campaign's changes
 * to it: which provider a domain's MX hosts make (the first host that is one of a
 * provider's, on a label boundary, whatever the case and a final dot), and the
 * errors of a change that names no provider.
 */
#include "../../core/provider.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static struct provider_table shipped_table(void)
{
    struct provider_table t;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(provider_table_load(NULL, &t, &err), 0, "%s", err.text);
    return t;
}

static const char *matched(const struct provider_table *t, const char *const *hosts, size_t n)
{
    long i = provider_match(t, hosts, n);

    return i < 0 ? "(none)" : t->p[i].name;
}

static const char *one(const struct provider_table *t, const char *host)
{
    return matched(t, &host, 1);
}

Test(provider, the_shipped_providers_by_their_mx_hosts)
{
    struct provider_table t = shipped_table();

    cr_assert_str_eq(one(&t, "aspmx.l.google.com"), "google");
    cr_assert_str_eq(one(&t, "ALT1.ASPMX.L.GOOGLE.COM."), "google", "case and a final dot");
    cr_assert_str_eq(one(&t, "smtp.google.com"), "google", "Google Workspace's newer MX");
    cr_assert_str_eq(one(&t, "gmail-smtp-in.l.google.com"), "google");
    cr_assert_str_eq(one(&t, "acme-example.mail.protection.outlook.com"), "microsoft");
    cr_assert_str_eq(one(&t, "hotmail-com.olc.protection.outlook.com"), "microsoft");
    cr_assert_str_eq(one(&t, "mta5.am0.yahoodns.net"), "yahoo");
    cr_assert_str_eq(one(&t, "mx01.mail.icloud.com"), "apple");
    cr_assert_str_eq(one(&t, "mxs.mail.ru"), "mailru");
    cr_assert_str_eq(one(&t, "mx.yandex.net"), "yandex");
    cr_assert_str_eq(one(&t, "mx00.gmx.net"), "gmx");
    cr_assert_str_eq(one(&t, "mx-ha03.web.de"), "gmx");
    cr_assert_str_eq(one(&t, "in1-smtp.messagingengine.com"), "fastmail");
    cr_assert_str_eq(one(&t, "google.com"), "google", "the name itself");
    /* only on a label boundary, and only at the end */
    cr_assert_str_eq(one(&t, "notgoogle.com"), "(none)");
    cr_assert_str_eq(one(&t, "google.com.evil.example"), "(none)");
    cr_assert_str_eq(one(&t, "mx.acme.example"), "(none)");
    cr_assert_str_eq(one(&t, ""), "(none)");
    for (size_t i = 0; i < t.n; i++)
        cr_assert_gt(t.p[i].rate, 0, "%s has a pace", t.p[i].name);
    provider_table_free(&t);
}

Test(provider, the_most_preferred_host_that_is_a_providers_decides)
{
    struct provider_table t = shipped_table();
    const char *a[] = {"mx.acme.example", "aspmx.l.google.com", "mta5.am0.yahoodns.net"};
    const char *b[] = {"mta5.am0.yahoodns.net", "aspmx.l.google.com"};

    cr_assert_str_eq(matched(&t, a, 3), "google", "a filter in front, then Google");
    cr_assert_str_eq(matched(&t, b, 2), "yahoo");
    cr_assert_str_eq(matched(&t, NULL, 0), "(none)");
    provider_table_free(&t);
}

Test(provider, names_and_suggestions)
{
    cr_assert(provider_shipped("google"));
    cr_assert(!provider_shipped("Google"));
    cr_assert(!provider_shipped("acme"));
    cr_assert_str_eq(provider_suggest("gogle"), "google");
    cr_assert_str_eq(provider_suggest("yaho"), "yahoo");
    cr_assert_str_eq(provider_suggest("microsft"), "microsoft");
    cr_assert_null(provider_suggest("acme-mail"));
    cr_assert_null(provider_suggest(""));
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);

    cr_assert_not_null(d);
    return d;
}

Test(provider, the_campaigns_changes)
{
    struct campaign c;
    struct campaign_provider cp[3];
    struct provider_table t;
    struct blast_error err;
    char *mx[] = {dup_or_die("mx1.acme-mail.example"), dup_or_die("ACME-MAIL.NET.")};
    long g;

    memset(&c, 0, sizeof c);
    memset(cp, 0, sizeof cp);
    c.path = "campaign.yml";
    cp[0].name = "google";
    cp[0].rate = (struct campaign_rate){true, 5, 's', 5.0, {3, 5}};
    cp[1].name = "acme-mail";
    cp[1].place = (struct campaign_place){4, 5};
    cp[1].mx = mx;
    cp[1].nmx = 2;
    cp[1].rate = (struct campaign_rate){true, 60, 'm', 1.0, {4, 5}};
    cp[2].name = "yahoo";
    cp[2].off = true;
    c.providers = cp;
    c.nproviders = 3;
    blast_error_clear(&err);
    cr_assert_eq(provider_table_load(&c, &t, &err), 0, "%s", err.text);
    g = provider_match(&t, (const char *[]){"aspmx.l.google.com"}, 1);
    cr_assert_geq(g, 0);
    cr_assert_float_eq(t.p[g].rate, 5.0, 1e-9, "the campaign's rate");
    cr_assert_str_eq(one(&t, "mx1.acme-mail.example"), "acme-mail");
    cr_assert_str_eq(one(&t, "mx.acme-mail.net"), "acme-mail", "lower-cased, final dot gone");
    cr_assert_str_eq(one(&t, "mta5.am0.yahoodns.net"), "(none)", "switched off");
    cr_assert_str_eq(one(&t, "mx.yandex.net"), "yandex", "the others as shipped");
    provider_table_free(&t);

    /* a provider without mx that blast does not know: named, with its place */
    cp[1].mx = NULL;
    cp[1].nmx = 0;
    cp[1].name = "gogle";
    cr_assert_eq(provider_table_load(&c, &t, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.source, "campaign.yml");
    cr_assert_eq(err.line, 4);
    cr_assert(strstr(err.text, "'gogle' is not a provider blast knows (did you mean 'google'?)") !=
                  NULL,
              "%s", err.text);
    cr_assert_null(t.p);
    free(mx[0]);
    free(mx[1]);
}
