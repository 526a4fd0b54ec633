/*
 * test_spf - core/spf's check_host() against a real DNS server: dnsmasq started by
 * each test on 127.0.0.1 with a free port, serving the zone test. (--local=/test/:
 * a name without records is NXDOMAIN, nothing is forwarded) from the records given on
 * its command line, as test_dns.c does; and a UDP socket that never answers, for
 * timeouts. The macro expander is also tested alone, through spf_expand().
 */
#include "../../core/spf.h"
#include "../../core/timeutil.h"

#include <arpa/inet.h>
#include "dnsmasq.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the server (tests/unit/dnsmasq.h) ---------------------------------------------------- */

static struct {
    pid_t main;
    int port;
    int silent_fd, silent_port; /* a bound UDP socket nobody reads */
} srv = {.silent_fd = -1};

static void servers_stop(void)
{
    dnsmasq_stop(&srv.main);
    if (srv.silent_fd >= 0)
        close(srv.silent_fd);
    srv.silent_fd = -1;
}

/* dnsmasq's TXT records: on its command line a comma starts another string */
static const char *const zone[] = {
    "--local=/test/",
    "--txt-record=ip4.test,v=spf1 ip4:192.0.2.0/24 -all",
    "--txt-record=ip4.test,google-site-verification=abc",
    "--txt-record=a.test,v=spf1 a -all",
    "--host-record=a.test,192.0.2.20",
    "--txt-record=mx.test,v=spf1 mx/28 -all",
    "--mx-host=mx.test,mail.mx.test,10",
    "--host-record=mail.mx.test,192.0.2.30",
    "--txt-record=inc.test,v=spf1 include:_spf.prov.test -all",
    "--txt-record=_spf.prov.test,v=spf1 ip4:203.0.113.0/24 ~all",
    "--txt-record=redir.test,v=spf1 redirect=_spf.prov.test",
    "--txt-record=soft.test,v=spf1 ~all",
    "--txt-record=neutral.test,v=spf1 ?all",
    "--txt-record=nothing-matches.test,v=spf1 ip4:10.0.0.1",
    "--txt-record=nospf.test,hello",
    "--txt-record=nospf.test,v=spf10 -all",
    "--txt-record=two.test,v=spf1 -all",
    "--txt-record=two.test,v=spf1 +all",
    "--txt-record=incnone.test,v=spf1 include:nospf.test -all",
    "--txt-record=redirnone.test,v=spf1 redirect=nowhere.test",
    "--txt-record=loopa.test,v=spf1 include:loopb.test -all",
    "--txt-record=loopb.test,v=spf1 include:loopa.test -all",
    "--txt-record=ten.test,v=spf1 include:i1.test include:i2.test include:i3.test "
    "include:i4.test include:i5.test include:i6.test include:i7.test include:i8.test "
    "include:i9.test include:i10.test -all",
    "--txt-record=eleven.test,v=spf1 include:i1.test include:i2.test include:i3.test "
    "include:i4.test include:i5.test include:i6.test include:i7.test include:i8.test "
    "include:i9.test include:i10.test include:i11.test -all",
    "--txt-record=i1.test,v=spf1 -all",
    "--txt-record=i2.test,v=spf1 -all",
    "--txt-record=i3.test,v=spf1 -all",
    "--txt-record=i4.test,v=spf1 -all",
    "--txt-record=i5.test,v=spf1 -all",
    "--txt-record=i6.test,v=spf1 -all",
    "--txt-record=i7.test,v=spf1 -all",
    "--txt-record=i8.test,v=spf1 -all",
    "--txt-record=i9.test,v=spf1 -all",
    "--txt-record=i10.test,v=spf1 -all",
    "--txt-record=i11.test,v=spf1 -all",
    "--txt-record=void2.test,v=spf1 a:n1.test mx:n2.test +all",
    "--txt-record=void3.test,v=spf1 a:n1.test mx:n2.test exists:n3.test +all",
    "--txt-record=exists.test,v=spf1 exists:%{i}._spf.exists.test -all",
    "--host-record=192.0.2.40._spf.exists.test,127.0.0.2",
    "--txt-record=ip6.test,v=spf1 ip6:2001:db8::/32 -all",
    "--txt-record=dual.test,v=spf1 a:host.dual.test/24//64 -all",
    "--host-record=host.dual.test,192.0.2.1,2001:db8:1::1",
    "--txt-record=ptr.test,v=spf1 ptr -all",
    "--ptr-record=50.2.0.192.in-addr.arpa,mail.ptr.test",
    "--host-record=mail.ptr.test,192.0.2.50",
    "--ptr-record=51.2.0.192.in-addr.arpa,liar.ptr.test",
    "--host-record=liar.ptr.test,192.0.2.99",
    "--txt-record=bad.test,v=spf1 ip5:1.2.3.4 -all",
    "--txt-record=badlate.test,v=spf1 +all foo:bar",
    "--txt-record=incbad.test,v=spf1 include:bad.test -all",
    "--txt-record=badcidr.test,v=spf1 ip4:192.0.2.0/33 -all",
    "--txt-record=badmacro.test,v=spf1 exists:%{x}.test -all",
    "--txt-record=tworedir.test,v=spf1 redirect=a.test redirect=a.test",
    "--txt-record=mods.test,v=spf1 exp=explain.%{d} foo=%{c}bar ip4:192.0.2.0/24 -all",
    "--txt-record=Upper.test,V=SPF1 IP4:192.0.2.0/24 -ALL",
    "--txt-record=mx11.test,v=spf1 mx -all",
    "--mx-host=mx11.test,m1.test,1",
    "--mx-host=mx11.test,m2.test,2",
    "--mx-host=mx11.test,m3.test,3",
    "--mx-host=mx11.test,m4.test,4",
    "--mx-host=mx11.test,m5.test,5",
    "--mx-host=mx11.test,m6.test,6",
    "--mx-host=mx11.test,m7.test,7",
    "--mx-host=mx11.test,m8.test,8",
    "--mx-host=mx11.test,m9.test,9",
    "--mx-host=mx11.test,m10.test,10",
    "--mx-host=mx11.test,m11.test,11",
    "--txt-record=local.test,v=spf1 exists:%{l}.users.local.test -all",
    "--host-record=alice.users.local.test,127.0.0.2",
    NULL,
};

static void servers_start(void)
{
    if (access(DNSMASQ, X_OK) != 0)
        cr_skip_test("%s is not installed (Debian's dnsmasq-base; make deps installs it)", DNSMASQ);
    srv.silent_fd = dnsmasq_silent_socket(&srv.silent_port);
    srv.port = dnsmasq_start(zone, &srv.main);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static struct dns *open_port(int port, long timeout_ms)
{
    struct dns_options o = {.timeout_ms = timeout_ms, .tries = 1};
    char servers[64];
    struct blast_error err;
    struct dns *d = NULL;

    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    o.servers = servers;
    blast_error_clear(&err);
    cr_assert_eq(dns_open(&o, &d, &err), 0, "%s", err.text);
    return d;
}

static struct spf_verdict check(const char *ip, const char *domain, const char *sender)
{
    struct dns *d = open_port(srv.port, 1000);
    struct spf_verdict v;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(spf_check(d, ip, domain, sender, &v, &err), 0, "%s", err.text);
    dns_close(d);
    return v;
}

/* check_host(ip, domain) is result, decided by mechanism, for why. */
static struct spf_verdict expect(const char *ip, const char *domain, enum spf_result result,
                                 const char *mechanism, const char *why)
{
    struct spf_verdict v = check(ip, domain, NULL);

    cr_assert_eq(v.result, result, "%s for %s: %s (%s; %s), not %s", domain, ip,
                 spf_result_name(v.result), v.mechanism, v.why, spf_result_name(result));
    cr_assert_str_eq(v.mechanism, mechanism, "%s for %s", domain, ip);
    cr_assert_str_eq(v.why, why, "%s for %s", domain, ip);
    return v;
}

/* ---- results ------------------------------------------------------------------------------- */

Test(spf, pass_and_fail_by_ip4, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v = expect("192.0.2.10", "ip4.test", SPF_PASS, "ip4:192.0.2.0/24", "");

    /* the SPF record among the domain's TXT records, as published */
    cr_assert_str_eq(v.record, "v=spf1 ip4:192.0.2.0/24 -all");
    cr_assert_eq(v.lookups, 0);
    expect("198.51.100.1", "ip4.test", SPF_FAIL, "-all", "");
    /* an IPv4-mapped IPv6 address is its IPv4 address (RFC 7208 §5) */
    expect("::ffff:192.0.2.10", "ip4.test", SPF_PASS, "ip4:192.0.2.0/24", "");
    /* names, mechanisms and the version without regard to case */
    expect("192.0.2.10", "UPPER.test.", SPF_PASS, "IP4:192.0.2.0/24", "");
    expect("192.0.2.10", "upper.test", SPF_PASS, "IP4:192.0.2.0/24", "");
}

Test(spf, pass_by_a_and_by_mx, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v = expect("192.0.2.20", "a.test", SPF_PASS, "a", "");

    cr_assert_eq(v.lookups, 1);
    expect("192.0.2.21", "a.test", SPF_FAIL, "-all", "");
    /* mx/28: 192.0.2.16-31 around mail.mx.test's 192.0.2.30 */
    v = expect("192.0.2.17", "mx.test", SPF_PASS, "mx/28", "");
    cr_assert_eq(v.lookups, 1);
    expect("192.0.2.32", "mx.test", SPF_FAIL, "-all", "");
    /* an IPv6 client compares AAAA records: there are none */
    expect("2001:db8::1", "a.test", SPF_FAIL, "-all", "");
}

Test(spf, include_and_redirect, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v = expect("203.0.113.5", "inc.test", SPF_PASS,
                                  "include:_spf.prov.test -> ip4:203.0.113.0/24", "");

    cr_assert_str_eq(v.record, "v=spf1 include:_spf.prov.test -all");
    cr_assert_eq(v.lookups, 1);
    /* the include's softfail is no match: the including record's -all decides */
    expect("198.51.100.1", "inc.test", SPF_FAIL, "-all", "");
    expect("203.0.113.5", "redir.test", SPF_PASS, "redirect=_spf.prov.test -> ip4:203.0.113.0/24",
           "");
    /* a redirect's result is the result, softfail too */
    expect("198.51.100.1", "redir.test", SPF_SOFTFAIL, "redirect=_spf.prov.test -> ~all", "");
}

Test(spf, softfail_neutral_none, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v;

    expect("192.0.2.1", "soft.test", SPF_SOFTFAIL, "~all", "");
    expect("192.0.2.1", "neutral.test", SPF_NEUTRAL, "?all", "");
    expect("192.0.2.1", "nothing-matches.test", SPF_NEUTRAL, "default neutral (no term matched)",
           "");
    /* TXT records, none of them SPF ("v=spf10" is not "v=spf1") */
    v = expect("192.0.2.1", "nospf.test", SPF_NONE, "", "nospf.test has no SPF record");
    cr_assert_str_eq(v.record, "");
    expect("192.0.2.1", "nowhere.test", SPF_NONE, "", "nowhere.test does not exist");
    /* RFC 7208 §4.3: not a multi-label domain name */
    expect("192.0.2.1", "localhost", SPF_NONE, "",
           "'localhost' is not a domain name (RFC 7208 §4.3)");
    expect("192.0.2.1", "a..test", SPF_NONE, "", "'a..test' is not a domain name (RFC 7208 §4.3)");
}

Test(spf, permerrors, .init = servers_start, .fini = servers_stop)
{
    expect("192.0.2.1", "two.test", SPF_PERMERROR, "",
           "two.test has two SPF records (RFC 7208 §4.5)");
    expect("192.0.2.1", "incnone.test", SPF_PERMERROR, "include:nospf.test",
           "include:nospf.test has no SPF record");
    expect("192.0.2.1", "redirnone.test", SPF_PERMERROR, "redirect=nowhere.test",
           "redirect=nowhere.test has no SPF record");
    expect("192.0.2.1", "bad.test", SPF_PERMERROR, "", "unknown mechanism 'ip5'");
    /* §4.6: a syntax error anywhere, even after a term that would match */
    expect("192.0.2.1", "badlate.test", SPF_PERMERROR, "", "unknown mechanism 'foo'");
    expect("192.0.2.1", "incbad.test", SPF_PERMERROR, "include:bad.test",
           "bad.test: unknown mechanism 'ip5'");
    expect("192.0.2.1", "badcidr.test", SPF_PERMERROR, "",
           "'ip4:192.0.2.0/33': a CIDR length out of range");
    expect("192.0.2.1", "badmacro.test", SPF_PERMERROR, "",
           "an unknown macro in '%{x}.test' (RFC 7208 §7.2)");
    expect("192.0.2.1", "tworedir.test", SPF_PERMERROR, "",
           "more than one redirect= modifier (RFC 7208 §6)");
    /* exp= is checked and not fetched; unknown modifiers are ignored, c allowed there */
    expect("192.0.2.1", "mods.test", SPF_PASS, "ip4:192.0.2.0/24", "");
}

Test(spf, the_lookup_limit, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v;
    char chain[256];

    /* a includes b includes a ...: ended by the limit, the path shows the loop */
    v = check("192.0.2.1", "loopa.test", NULL);
    cr_assert_eq(v.result, SPF_PERMERROR, "%s", spf_result_name(v.result));
    cr_assert_str_eq(v.why, "more than 10 DNS lookups (RFC 7208 §4.6.4)");
    cr_assert_eq(v.lookups, 10);
    snprintf(chain, sizeof chain, "include:loopb.test -> include:loopa.test -> include:loopb.test");
    cr_assert(strncmp(v.mechanism, chain, strlen(chain)) == 0, "%s", v.mechanism);

    /* ten includes are allowed; the eleventh is not */
    v = expect("192.0.2.1", "ten.test", SPF_FAIL, "-all", "");
    cr_assert_eq(v.lookups, 10);
    v = expect("192.0.2.1", "eleven.test", SPF_PERMERROR, "include:i11.test",
               "more than 10 DNS lookups (RFC 7208 §4.6.4)");
    cr_assert_eq(v.lookups, 10);
    /* §4.6.4: at most 10 MX names */
    expect("192.0.2.1", "mx11.test", SPF_PERMERROR, "mx",
           "mx11.test has 11 MX records, more than 10 (RFC 7208 §4.6.4)");
}

Test(spf, void_lookups, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v = expect("192.0.2.1", "void2.test", SPF_PASS, "+all", "");

    cr_assert_eq(v.lookups, 2);
    expect("192.0.2.1", "void3.test", SPF_PERMERROR, "exists:n3.test",
           "more than 2 void lookups (RFC 7208 §4.6.4)");
}

Test(spf, exists_with_macros, .init = servers_start, .fini = servers_stop)
{
    struct spf_verdict v;

    expect("192.0.2.40", "exists.test", SPF_PASS, "exists:%{i}._spf.exists.test", "");
    expect("192.0.2.41", "exists.test", SPF_FAIL, "-all", "");
    v = check("192.0.2.1", "local.test", "alice@local.test");
    cr_assert_eq(v.result, SPF_PASS, "%s %s", spf_result_name(v.result), v.why);
    v = check("192.0.2.1", "local.test", "bob@local.test");
    cr_assert_eq(v.result, SPF_FAIL);
    /* a local part that is not a DNS label: as if the name did not exist */
    v = check("192.0.2.1", "local.test", "a+b@local.test");
    cr_assert_eq(v.result, SPF_FAIL, "%s %s", spf_result_name(v.result), v.why);
}

Test(spf, ip6_and_dual_cidr, .init = servers_start, .fini = servers_stop)
{
    expect("2001:db8::5", "ip6.test", SPF_PASS, "ip6:2001:db8::/32", "");
    expect("2001:db9::5", "ip6.test", SPF_FAIL, "-all", "");
    expect("192.0.2.1", "ip6.test", SPF_FAIL, "-all", "");
    /* a:host.dual.test/24//64: /24 around its A, /64 around its AAAA */
    expect("192.0.2.200", "dual.test", SPF_PASS, "a:host.dual.test/24//64", "");
    expect("192.0.3.1", "dual.test", SPF_FAIL, "-all", "");
    expect("2001:db8:1::ffff", "dual.test", SPF_PASS, "a:host.dual.test/24//64", "");
    expect("2001:db8:2::1", "dual.test", SPF_FAIL, "-all", "");
}

Test(spf, ptr, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_port(srv.port, 1000);
    char out[256];

    expect("192.0.2.50", "ptr.test", SPF_PASS, "ptr", "");
    /* a PTR name whose addresses do not include the client is not validated */
    expect("192.0.2.51", "ptr.test", SPF_FAIL, "-all", "");
    expect("192.0.2.52", "ptr.test", SPF_FAIL, "-all", "");
    cr_assert_eq(spf_expand(d, "%{p}", "192.0.2.50", "ptr.test", NULL, out, sizeof out, NULL), 0);
    cr_assert_str_eq(out, "mail.ptr.test");
    cr_assert_eq(spf_expand(d, "%{p}", "192.0.2.51", "ptr.test", NULL, out, sizeof out, NULL), 0);
    cr_assert_str_eq(out, "unknown");
    dns_close(d);
}

Test(spf, a_server_that_never_answers_is_a_temperror_quickly, .init = servers_start,
     .fini = servers_stop)
{
    struct dns *d = open_port(srv.silent_port, 200);
    struct spf_verdict v;
    int64_t start = timeutil_mono_ms();

    cr_assert_eq(spf_check(d, "192.0.2.1", "ip4.test", NULL, &v, NULL), 0);
    cr_assert_lt(timeutil_mono_ms() - start, 2000);
    cr_assert_eq(v.result, SPF_TEMPERROR);
    cr_assert_str_eq(v.why, "looking up the TXT records of ip4.test: timed out");
    cr_assert_str_eq(v.mechanism, "");
    dns_close(d);
}

Test(spf, bad_arguments)
{
    struct dns *d = NULL;
    struct dns_options o = {.servers = "127.0.0.1:9"};
    struct spf_verdict v;
    struct blast_error err;
    char big[400];

    cr_assert_eq(dns_open(&o, &d, NULL), 0);
    blast_error_clear(&err);
    cr_assert_eq(spf_check(d, "192.0.2", "ip4.test", NULL, &v, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.text, "spf: '192.0.2' is not an IP address");
    cr_assert_eq(spf_check(d, "192.0.2.1", NULL, NULL, &v, NULL), BLAST_EINVAL);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(spf_check(d, "192.0.2.1", "ip4.test", big, &v, NULL), BLAST_EINVAL);
    dns_close(d);
    cr_assert_str_eq(spf_result_name(SPF_PASS), "pass");
    cr_assert_str_eq(spf_result_name(SPF_FAIL), "fail");
    cr_assert_str_eq(spf_result_name(SPF_SOFTFAIL), "softfail");
    cr_assert_str_eq(spf_result_name(SPF_NEUTRAL), "neutral");
    cr_assert_str_eq(spf_result_name(SPF_NONE), "none");
    cr_assert_str_eq(spf_result_name(SPF_TEMPERROR), "temperror");
    cr_assert_str_eq(spf_result_name(SPF_PERMERROR), "permerror");
}

/* ---- macros -------------------------------------------------------------------------------- */

static void expands(const char *spec, const char *ip, const char *want)
{
    char out[512];
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(spf_expand(NULL, spec, ip, "email.example.com", "strong-bad@email.example.com",
                            out, sizeof out, &err),
                 0, "%s: %s", spec, err.text);
    cr_assert_str_eq(out, want, "%s", spec);
}

/* RFC 7208 §7.4's examples */
Test(spf, macro_examples_of_rfc_7208)
{
    expands("%{s}", "192.0.2.3", "strong-bad@email.example.com");
    expands("%{o}", "192.0.2.3", "email.example.com");
    expands("%{d}", "192.0.2.3", "email.example.com");
    expands("%{d4}", "192.0.2.3", "email.example.com");
    expands("%{d3}", "192.0.2.3", "email.example.com");
    expands("%{d2}", "192.0.2.3", "example.com");
    expands("%{d1}", "192.0.2.3", "com");
    expands("%{dr}", "192.0.2.3", "com.example.email");
    expands("%{d2r}", "192.0.2.3", "example.email");
    expands("%{l}", "192.0.2.3", "strong-bad");
    expands("%{l-}", "192.0.2.3", "strong.bad");
    expands("%{lr}", "192.0.2.3", "strong-bad");
    expands("%{lr-}", "192.0.2.3", "bad.strong");
    expands("%{l1r-}", "192.0.2.3", "strong");
    expands("%{ir}.%{v}._spf.%{d2}", "192.0.2.3", "3.2.0.192.in-addr._spf.example.com");
    expands("%{lr-}.lp._spf.%{d2}", "192.0.2.3", "bad.strong.lp._spf.example.com");
    expands("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "192.0.2.3",
            "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    expands("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "192.0.2.3",
            "3.2.0.192.in-addr.strong.lp._spf.example.com");
    expands("%{d2}.trusted-domains.example.net", "192.0.2.3",
            "example.com.trusted-domains.example.net");
    expands("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01",
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

Test(spf, macro_escapes_and_errors)
{
    char out[64];
    struct blast_error err;

    expands("a%%b%_c%-d", "192.0.2.3", "a%b c%20d");
    /* upper case: URL-escaped (§7.3) */
    expands("%{S}", "192.0.2.3", "strong-bad%40email.example.com");
    expands("%{i}", "::ffff:192.0.2.3", "192.0.2.3");
    expands("%{v}", "::ffff:192.0.2.3", "in-addr");
    expands("%{h}", "192.0.2.3", "email.example.com");
    expands("%{p}", "192.0.2.3", "unknown");
    expands("%{d99}", "192.0.2.3", "email.example.com");
    expands("%{l.-}", "192.0.2.3", "strong.bad");

    {
        const char *bad[] = {"%{x}", "%{d0}", "%{c}", "%{t}", "%", "%{d", "%a", "%{d2r", "é"};
        size_t i;

        for (i = 0; i < sizeof bad / sizeof *bad; i++) {
            blast_error_clear(&err);
            cr_assert_eq(
                spf_expand(NULL, bad[i], "192.0.2.3", "example.com", NULL, out, sizeof out, &err),
                BLAST_ESYNTAX, "%s", bad[i]);
            cr_assert(strncmp(err.text, "spf: ", 5) == 0, "%s", err.text);
        }
    }
    /* no sender: postmaster@domain; a sender without a local part gets postmaster */
    cr_assert_eq(spf_expand(NULL, "%{s}", "192.0.2.3", "example.com", NULL, out, sizeof out, NULL),
                 0);
    cr_assert_str_eq(out, "postmaster@example.com");
    cr_assert_eq(spf_expand(NULL, "%{l}@%{o}", "192.0.2.3", "example.com", "@other.example", out,
                            sizeof out, NULL),
                 0);
    cr_assert_str_eq(out, "postmaster@other.example");
    cr_assert_eq(spf_expand(NULL, "%{s}%{s}%{s}", "192.0.2.3", "example.com", NULL, out, 20, NULL),
                 BLAST_EINVAL);
    cr_assert_str_eq(out, "");
}
