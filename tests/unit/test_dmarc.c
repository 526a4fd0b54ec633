/*
 * test_dmarc - DMARC policy records (RFC 7489 §6.3, §6.4): good records with their
 * defaults, tag names and policies in any case, whitespace around ';' and '=',
 * unknown tags; bad ones with the words that say why; p= missing with and without
 * a rua= (§6.6.3); the choice among a name's TXT records; organizational domains
 * from the system's Public Suffix List (co.uk, com, a private suffix); strict and
 * relaxed alignment. No DNS: the records are the texts a lookup would find.
 */
#include "../../core/dmarc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* Parse txt, which must be invalid, and return why. */
static const char *bad(const char *txt)
{
    static char why[256];
    struct dmarc_record r;

    why[0] = '\0';
    cr_assert_eq(dmarc_parse(txt, &r, why, sizeof why), BLAST_EINVAL, "%s", txt);
    return why;
}

static struct dmarc_record good(const char *txt)
{
    struct dmarc_record r;
    char why[256] = "";

    cr_assert_eq(dmarc_parse(txt, &r, why, sizeof why), 0, "%s: %s", txt, why);
    return r;
}

/* ---- dmarc_parse ---------------------------------------------------------------------------- */

Test(dmarc, minimal_record_takes_the_defaults)
{
    struct dmarc_record r = good("v=DMARC1; p=none");

    cr_assert_str_eq(r.p, "none");
    cr_assert_not(r.p_implied);
    cr_assert_str_eq(r.sp, "");
    cr_assert_eq(r.adkim, 'r');
    cr_assert_eq(r.aspf, 'r');
    cr_assert_eq(r.pct, 100);
    cr_assert_str_eq(r.rua, "");
    cr_assert_str_eq(r.ruf, "");
}

Test(dmarc, every_tag)
{
    struct dmarc_record r = good("v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=s; pct=25; "
                                 "rua=mailto:dmarc@acme.example,mailto:agg@reports.example!10m; "
                                 "ruf=mailto:forensic@acme.example; fo=1; rf=afrf; ri=86400;");

    cr_assert_str_eq(r.p, "reject");
    cr_assert_str_eq(r.sp, "quarantine");
    cr_assert_eq(r.adkim, 's');
    cr_assert_eq(r.aspf, 's');
    cr_assert_eq(r.pct, 25);
    cr_assert_str_eq(r.rua, "mailto:dmarc@acme.example,mailto:agg@reports.example!10m");
    cr_assert_str_eq(r.ruf, "mailto:forensic@acme.example");
}

Test(dmarc, case_whitespace_and_unknown_tags)
{
    struct dmarc_record r =
        good("  v = DMARC1 ;\tP = Quarantine ;  ADKIM=S;aspf = R ; Pct=0 ; future=thing ; ");

    cr_assert_str_eq(r.p, "quarantine");
    cr_assert_eq(r.adkim, 's');
    cr_assert_eq(r.aspf, 'r');
    cr_assert_eq(r.pct, 0);
    r = good("v=DMARC1;p=reject");
    cr_assert_str_eq(r.p, "reject");
    /* p after other tags is still taken */
    r = good("v=DMARC1; rua=mailto:d@acme.example; p=none");
    cr_assert_str_eq(r.p, "none");
}

Test(dmarc, missing_p_with_rua_is_none)
{
    /* RFC 7489 §6.6.3 step 6.1 */
    struct dmarc_record r = good("v=DMARC1; rua=mailto:dmarc@acme.example");

    cr_assert_str_eq(r.p, "none");
    cr_assert(r.p_implied);
    cr_assert_str_eq(r.rua, "mailto:dmarc@acme.example");
    cr_assert_str_eq(bad("v=DMARC1; pct=50"), "no p= (and no rua= to take it as p=none)");
    cr_assert_str_eq(bad("v=DMARC1; rua=not a uri"), "no p= (and no rua= to take it as p=none)");
    cr_assert_str_eq(bad("v=DMARC1"), "no p= (and no rua= to take it as p=none)");
}

Test(dmarc, not_dmarc)
{
    cr_assert_str_eq(bad("v=spf1 -all"), "does not start with v=DMARC1");
    cr_assert_str_eq(bad("p=none; v=DMARC1"), "does not start with v=DMARC1");
    cr_assert_str_eq(bad("v=dmarc1; p=none"), "does not start with v=DMARC1", "DMARC1 exactly");
    cr_assert_str_eq(bad("v=DMARC2; p=none"), "does not start with v=DMARC1");
    cr_assert_str_eq(bad("v=DMARC1p=none"), "does not start with v=DMARC1");
    cr_assert_str_eq(bad(""), "does not start with v=DMARC1");
    cr_assert_str_eq(bad("hello world"), "does not start with v=DMARC1");
}

Test(dmarc, bad_values_say_why)
{
    cr_assert_str_eq(bad("v=DMARC1; p=maybe"), "p=maybe is not none, quarantine or reject");
    cr_assert_str_eq(bad("v=DMARC1; p="), "p= is not none, quarantine or reject");
    cr_assert_str_eq(bad("v=DMARC1; p=none; sp=strict"),
                     "sp=strict is not none, quarantine or reject");
    cr_assert_str_eq(bad("v=DMARC1; p=none; pct=150"), "pct=150 is not 0 to 100");
    cr_assert_str_eq(bad("v=DMARC1; p=none; pct=-1"), "pct=-1 is not 0 to 100");
    cr_assert_str_eq(bad("v=DMARC1; p=none; pct=half"), "pct=half is not 0 to 100");
    cr_assert_str_eq(bad("v=DMARC1; p=none; adkim=x"), "adkim=x is not r or s");
    cr_assert_str_eq(bad("v=DMARC1; p=none; aspf=relaxed"), "aspf=relaxed is not r or s");
    /* a policy that names p twice is not one policy (RFC 6376 §3.2) */
    cr_assert_str_eq(bad("v=DMARC1; p=none; P=reject"), "tag P appears twice");
    cr_assert_str_eq(bad("v=DMARC1; p=none; oops"), "'oops' has no '='");
    cr_assert_str_eq(bad("v=DMARC1; p=none; =x"), "'' is not a tag name");
}

Test(dmarc, no_why_buffer_and_long_rua)
{
    struct dmarc_record r;
    char txt[700];

    cr_assert_eq(dmarc_parse("v=DMARC1; p=maybe", &r, NULL, 0), BLAST_EINVAL);
    snprintf(txt, sizeof txt, "v=DMARC1; p=none; rua=mailto:%0400d@acme.example", 0);
    cr_assert_eq(dmarc_parse(txt, &r, NULL, 0), 0);
    cr_assert_eq(strlen(r.rua), 255, "cut to what the record holds");
}

/* ---- dmarc_pick ----------------------------------------------------------------------------- */

Test(dmarc, pick_the_only_dmarc_record)
{
    const char *one[] = {"google-site-verification=abc", "v=DMARC1; p=none", "v=spf1 -all"};
    const char *two[] = {"v=DMARC1; p=none", "v=DMARC1; p=reject"};
    const char *none[] = {"v=spf1 -all", "v=DMARC2; p=none"};
    const char *broken[] = {NULL, "v=DMARC1; p=maybe"};

    cr_assert_eq(dmarc_pick(one, 3), 1);
    cr_assert_eq(dmarc_pick(two, 2), -2);
    cr_assert_eq(dmarc_pick(none, 2), -1);
    cr_assert_eq(dmarc_pick(NULL, 0), -1);
    /* it is the one record, even though it does not parse (§6.6.3 step 3) */
    cr_assert_eq(dmarc_pick(broken, 2), 1);
}

/* ---- organizational domains ----------------------------------------------------------------- */

static const char *org(const char *domain)
{
    static char out[DMARC_DOMAIN_MAX];
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(dmarc_org_domain(domain, out, sizeof out, &err), 0, "%s: %s", domain, err.text);
    return out;
}

Test(dmarc, organizational_domains)
{
    cr_assert_str_eq(org("news.acme.co.uk"), "acme.co.uk");
    cr_assert_str_eq(org("acme.co.uk"), "acme.co.uk");
    cr_assert_str_eq(org("a.b.c.acme.com"), "acme.com");
    cr_assert_str_eq(org("Mail.ACME.Com."), "acme.com", "lower case, no final dot");
    /* a private suffix of the list: each project's pages are their own organization */
    cr_assert_str_eq(org("www.acme.github.io"), "acme.github.io");
    cr_assert_str_eq(org("xn--bcher-kva.de"), "xn--bcher-kva.de");
}

Test(dmarc, a_public_suffix_has_none)
{
    struct blast_error err;
    char out[DMARC_DOMAIN_MAX];
    const char *suffixes[] = {"co.uk", "com", "github.io", "uk"};
    size_t k;

    for (k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
        blast_error_clear(&err);
        cr_assert_eq(dmarc_org_domain(suffixes[k], out, sizeof out, &err), BLAST_EINVAL, "%s",
                     suffixes[k]);
        cr_assert_not_null(strstr(err.text, "is a public suffix"), "%s", err.text);
    }
}

Test(dmarc, malformed_names_and_small_out)
{
    struct blast_error err;
    char out[DMARC_DOMAIN_MAX], small[8];
    const char *names[] = {"", ".", "a..b.com", ".acme.com", "acme com", "user@acme.com"};
    size_t k;

    for (k = 0; k < sizeof names / sizeof names[0]; k++) {
        blast_error_clear(&err);
        cr_assert_eq(dmarc_org_domain(names[k], out, sizeof out, &err), BLAST_EINVAL, "'%s'",
                     names[k]);
        cr_assert_not_null(strstr(err.text, "is not a domain name"), "%s", err.text);
    }
    cr_assert_eq(dmarc_org_domain(NULL, out, sizeof out, NULL), BLAST_EINVAL);
    blast_error_clear(&err);
    cr_assert_eq(dmarc_org_domain("news.acme.co.uk", small, sizeof small, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "does not fit"), "%s", err.text);
}

/* ---- alignment ------------------------------------------------------------------------------ */

Test(dmarc, relaxed_alignment)
{
    cr_assert(dmarc_aligned("acme.co.uk", "mail.acme.co.uk", 'r'));
    cr_assert(dmarc_aligned("news.acme.co.uk", "bounces.acme.co.uk", 'r'));
    cr_assert(dmarc_aligned("ACME.com", "acme.com.", 'r'));
    cr_assert_not(dmarc_aligned("acme.co.uk", "other.co.uk", 'r'));
    cr_assert_not(dmarc_aligned("acme.github.io", "other.github.io", 'r'), "a private suffix");
    cr_assert_not(dmarc_aligned("acme.com", "acme.net", 'r'));
    /* anything but s is relaxed, the default */
    cr_assert(dmarc_aligned("acme.com", "esp.acme.com", '\0'));
    /* equal names align even where there is no organizational domain */
    cr_assert(dmarc_aligned("co.uk", "co.uk", 'r'));
    cr_assert_not(dmarc_aligned("a.co.uk", "co.uk", 'r'));
}

Test(dmarc, strict_alignment)
{
    cr_assert(dmarc_aligned("acme.com", "ACME.COM", 's'));
    cr_assert(dmarc_aligned("acme.com", "acme.com.", 'S'));
    cr_assert_not(dmarc_aligned("acme.com", "mail.acme.com", 's'));
    cr_assert_not(dmarc_aligned("", "", 's'));
    cr_assert_not(dmarc_aligned(NULL, "acme.com", 'r'));
}
