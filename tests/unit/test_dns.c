/*
 * test_dns - core/dns against a real DNS server: dnsmasq (Debian's dnsmasq-base, the
 * program without its system service) started by each test on 127.0.0.1 with free
 * ports and its records given on the command line, stopped after it.
 *
 * The one the module asks answers for the zone test. itself (--local=/test/: a name it
 * has no record for is NXDOMAIN, never forwarded): MX records, an A or AAAA only, a
 * null MX and a "." beside a real MX as raw MX rdata (--dns-rr), a name with a TXT
 * record only. Everything else it forwards to a second dnsmasq while validating
 * DNSSEC under a made-up root trust anchor: what the second one answers
 * (servfail.example) fails validation and comes back SERVFAIL, and what it refuses is
 * REFUSED. slow.example is forwarded to a UDP socket of the test's that never answers,
 * and so is every query of a resolver pointed at that socket itself: timeouts.
 */
#include "../../core/dns.h"
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

#define BULK     500
#define MANY     (DNS_MX_MAX + 6)
#define TXT_MANY 40
#define LONG_TXT 3000

/* ---- the servers --------------------------------------------------------------------------- */

static struct {
    pid_t main, upstream;
    int port, upstream_port;
    int silent_fd, silent_port; /* a bound UDP socket nobody reads */
} srv = {.silent_fd = -1};

static void servers_stop(void)
{
    dnsmasq_stop(&srv.main);
    dnsmasq_stop(&srv.upstream);
    if (srv.silent_fd >= 0)
        close(srv.silent_fd);
    srv.silent_fd = -1;
}

static void servers_start(void)
{
    static const char *const upstream[] = {
        "--local=/example/",
        "--host-record=servfail.example,127.0.0.3",
        "--mx-host=servfail.example,mx.servfail.example,5",
        NULL,
    };
    char up[64], slow[64], bulk[BULK / 5][64], many[MANY][64], txts[TXT_MANY][40];
    char addrs[DNS_RECORDS_MAX + 1][48], longtxt[LONG_TXT + 64];
    const char *args[96 + BULK / 5 + MANY + TXT_MANY + DNS_RECORDS_MAX + 1];
    size_t n = 0, i;

    if (access(DNSMASQ, X_OK) != 0)
        cr_skip_test("%s is not installed (Debian's dnsmasq-base; make deps installs it)", DNSMASQ);
    srv.silent_fd = dnsmasq_silent_socket(&srv.silent_port);
    srv.upstream_port = dnsmasq_start(upstream, &srv.upstream);
    snprintf(up, sizeof up, "--server=127.0.0.1#%d", srv.upstream_port);
    snprintf(slow, sizeof slow, "--server=/slow.example/127.0.0.1#%d", srv.silent_port);
    args[n++] = "--local=/test/";
    args[n++] = "--mx-host=google-hosted.test,aspmx.l.google.com,1";
    args[n++] = "--mx-host=multi.test,alt2.aspmx.l.google.com,20";
    args[n++] = "--mx-host=multi.test,aspmx.l.google.com,10";
    args[n++] = "--mx-host=multi.test,alt1.aspmx.l.google.com,20";
    args[n++] = "--host-record=aonly.test,127.0.0.2";
    args[n++] = "--host-record=v6only.test,::2";
    /* MX rdata: preference 0, then the root name */
    args[n++] = "--dns-rr=nullmx.test,15,000000";
    /* a "." of preference 5 beside a real MX */
    args[n++] = "--mx-host=mixed.test,mx1.mixed.test,10";
    args[n++] = "--dns-rr=mixed.test,15,000500";
    /* MX 5 MX.UPPER.TEST, upper case on the wire (dnsmasq's own MX records are lowered) */
    args[n++] = "--dns-rr=upper.test,15,0005024D58055550504552045445535400";
    args[n++] = "--txt-record=txtonly.test,no mail here";
    for (i = 0; i < BULK / 5; i++) {
        snprintf(bulk[i], sizeof bulk[i], "--mx-host=n%zu.test,mx%zu.bulk.test,%zu", i * 5, i,
                 i % 7);
        args[n++] = bulk[i];
    }
    /* more MX records than are kept, more than a UDP answer holds: asked again over TCP;
       listed from the least preferred, so that those kept are not the first given */
    for (i = 0; i < MANY; i++) {
        snprintf(many[i], sizeof many[i], "--mx-host=many.test,mx%02zu.many.test,%zu", MANY - 1 - i,
                 MANY - 1 - i);
        args[n++] = many[i];
    }
    /* records of each kind for dns_lookup() */
    /* on dnsmasq's command line a comma starts another string, and quotes are text */
    args[n++] = "--txt-record=parts.test,v=spf1 ,ip4:192.0.2.0/24, -all";
    args[n++] = "--txt-record=two.test,first";
    args[n++] = "--txt-record=two.test,second";
    /* TXT rdata: the strings "a\0b" and "c"; beside it a record without a NUL */
    args[n++] = "--dns-rr=nul.test,16,0361006201"
                "63";
    args[n++] = "--txt-record=nul.test,clean";
    args[n++] = "--dns-rr=onlynul.test,16,0100";
    args[n++] = "--host-record=both.test,192.0.2.1,2001:db8::1";
    args[n++] = "--host-record=both.test,192.0.2.2";
    args[n++] = "--cname=alias.test,both.test";
    args[n++] = "--ptr-record=1.2.0.192.in-addr.arpa,Host.Test";
    args[n++] =
        "--ptr-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa,"
        "v6host.test";
    /* over a UDP answer's 512 bytes: asked again over TCP */
    memcpy(longtxt, "--txt-record=long.test", 22);
    for (i = 0; i < LONG_TXT / 250; i++) {
        longtxt[22 + i * 250] = ',';
        memset(longtxt + 22 + i * 250 + 1, 'a' + (int)i, 249);
    }
    longtxt[22 + LONG_TXT / 250 * 250] = '\0';
    args[n++] = longtxt;
    for (i = 0; i < TXT_MANY; i++) {
        snprintf(txts[i], sizeof txts[i], "--txt-record=txts.test,record %zu", i);
        args[n++] = txts[i];
    }
    for (i = 0; i <= DNS_RECORDS_MAX; i++) {
        snprintf(addrs[i], sizeof addrs[i], "--host-record=toomany.test,10.0.%zu.%zu", i / 256,
                 i % 256);
        args[n++] = addrs[i];
    }
    args[n++] = slow;
    /* the rest goes to the upstream, through DNSSEC validation that cannot succeed */
    args[n++] = up;
    args[n++] = "--dnssec";
    args[n++] = "--trust-anchor=.,12345,8,2,"
                "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
    args[n] = NULL;
    srv.port = dnsmasq_start(args, &srv.main);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static struct dns *open_at(const char *servers, long timeout_ms, int tries, int inflight,
                           long deadline_ms)
{
    struct dns_options o = {.servers = servers,
                            .timeout_ms = timeout_ms,
                            .tries = tries,
                            .max_inflight = inflight,
                            .deadline_ms = deadline_ms};
    struct blast_error err;
    struct dns *d = NULL;
    int rc;

    blast_error_clear(&err);
    rc = dns_open(&o, &d, &err);
    cr_assert_eq(rc, 0, "dns_open(%s): %s", servers, err.text);
    cr_assert_not_null(d);
    return d;
}

/* A resolver asking the test's dnsmasq. */
static struct dns *open_local(int inflight, long deadline_ms)
{
    char servers[64];

    snprintf(servers, sizeof servers, "127.0.0.1:%d", srv.port);
    return open_at(servers, 1000, 2, inflight, deadline_ms);
}

static void resolve(struct dns *d, const char *const *names, size_t n, struct dns_answer *out)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(dns_resolve_mail(d, names, n, out, &err), 0, "%s", err.text);
}

/* One name's answer (freed by the caller). */
static struct dns_answer one(struct dns *d, const char *name)
{
    struct dns_answer a;

    resolve(d, &name, 1, &a);
    return a;
}

static void expect(struct dns *d, const char *name, enum dns_verdict v, const char *why)
{
    struct dns_answer a = one(d, name);

    cr_assert_eq(a.verdict, v, "%s: %s (%s), not %s", name, dns_verdict_name(a.verdict), a.why,
                 dns_verdict_name(v));
    cr_assert_str_eq(a.why, why, "%s", name);
    if (v != DNS_MAIL) {
        cr_assert_null(a.mx, "%s", name);
        cr_assert_eq(a.nmx, 0, "%s", name);
    }
    dns_answer_free(&a);
}

static void expect_mx(const struct dns_answer *a, size_t i, unsigned pref, const char *host)
{
    cr_assert(i < a->nmx, "MX %zu of %zu", i, a->nmx);
    cr_assert_eq(a->mx[i].preference, pref, "MX %zu: %u", i, a->mx[i].preference);
    cr_assert_str_eq(a->mx[i].host, host, "MX %zu", i);
}

static double seconds_since(int64_t start)
{
    return (double)(timeutil_mono_ms() - start) / 1000.0;
}

/* ---- verdicts ------------------------------------------------------------------------------ */

Test(dns, mx_records_sorted_by_preference_then_host, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_answer a = one(d, "google-hosted.test");

    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    cr_assert_not(a.implicit);
    cr_assert_str_eq(a.why, "");
    cr_assert_eq(a.nmx, 1);
    expect_mx(&a, 0, 1, "aspmx.l.google.com");
    dns_answer_free(&a);
    cr_assert_null(a.mx);
    cr_assert_eq(a.nmx, 0);

    a = one(d, "multi.test");
    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    cr_assert_eq(a.nmx, 3);
    expect_mx(&a, 0, 10, "aspmx.l.google.com");
    expect_mx(&a, 1, 20, "alt1.aspmx.l.google.com");
    expect_mx(&a, 2, 20, "alt2.aspmx.l.google.com");
    dns_answer_free(&a);
    dns_close(d);
}

Test(dns, at_most_DNS_MX_MAX_hosts_the_most_preferred, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_answer a = one(d, "many.test");
    char host[32];
    size_t i;

    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    cr_assert_eq(a.nmx, DNS_MX_MAX);
    for (i = 0; i < DNS_MX_MAX; i++) {
        snprintf(host, sizeof host, "mx%02zu.many.test", i);
        expect_mx(&a, i, (unsigned)i, host);
    }
    dns_answer_free(&a);
    dns_close(d);
}

Test(dns, an_address_record_alone_is_the_implicit_mx, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    const char *names[] = {"aonly.test", "v6only.test"};
    struct dns_answer a[2];
    size_t i;

    resolve(d, names, 2, a);
    for (i = 0; i < 2; i++) {
        cr_assert_eq(a[i].verdict, DNS_MAIL, "%s: %s", names[i], a[i].why);
        cr_assert(a[i].implicit, "%s", names[i]);
        cr_assert_eq(a[i].nmx, 1);
        expect_mx(&a[i], 0, 0, names[i]);
        dns_answer_free(&a[i]);
    }
    dns_close(d);
}

Test(dns, null_mx, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_answer a;
    struct dns_stats st;

    expect(d, "nullmx.test", DNS_NULL_MX, "null MX (RFC 7505)");
    /* no A or AAAA asked: the MX said it all */
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 1);

    /* a "." beside a real MX is left out */
    a = one(d, "mixed.test");
    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    cr_assert_eq(a.nmx, 1);
    expect_mx(&a, 0, 10, "mx1.mixed.test");
    dns_answer_free(&a);
    dns_close(d);
}

Test(dns, no_mail, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_stats st;

    /* --local=/test/: a name of the zone without records does not exist */
    expect(d, "nothing.test", DNS_NO_MAIL, "NXDOMAIN");
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 1, "NXDOMAIN on MX asks nothing more: %zu", st.queries);
    /* the name exists (a TXT record), with nothing to route mail by: MX, A, AAAA asked */
    expect(d, "txtonly.test", DNS_NO_MAIL, "no MX, A or AAAA record");
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 4);
    dns_close(d);
}

Test(dns, names_that_are_not_domain_names_are_not_asked, .init = servers_start,
     .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    char long_name[300], long_label[80];
    struct dns_stats st;
    size_t i;

    /* "aa.a.a. ... a.test": 253 characters, the most allowed */
    memcpy(long_name, "aa.", 3);
    for (i = 0; i < 123; i++)
        memcpy(long_name + 3 + 2 * i, "a.", 2);
    snprintf(long_name + 249, sizeof long_name - 249, "test");
    cr_assert_eq(strlen(long_name), 253);
    memset(long_label, 'b', 64);
    snprintf(long_label + 64, sizeof long_label - 64, ".test");
    {
        const char *bad[] = {"",
                             ".",
                             "a..test",
                             ".test",
                             "test..",
                             "ex ample.test",
                             "b\xc3\xbc"
                             "cher.test",
                             "x\\.y.test",
                             "[127.0.0.1]",
                             "a@b.test",
                             long_label};

        for (i = 0; i < sizeof bad / sizeof *bad; i++)
            expect(d, bad[i], DNS_NO_MAIL, "not a domain name");
    }
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 0);
    /* 253 characters is a name (that does not exist), with a trailing dot too; 254 is not */
    expect(d, long_name, DNS_NO_MAIL, "NXDOMAIN");
    long_name[253] = '.';
    long_name[254] = '\0';
    expect(d, long_name, DNS_NO_MAIL, "NXDOMAIN");
    long_name[253] = 's';
    cr_assert_eq(strlen(long_name), 254); /* ".tests" */
    expect(d, long_name, DNS_NO_MAIL, "not a domain name");
    /* a 63-character label is fine */
    long_label[63] = '\0';
    snprintf(long_label + 63, sizeof long_label - 63, ".test");
    expect(d, long_label, DNS_NO_MAIL, "NXDOMAIN");
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 2, "the name with a trailing dot is the same: %zu", st.queries);
    dns_close(d);
}

Test(dns, servfail_and_refused_are_unknown, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_stats st;

    /* the upstream's answer fails DNSSEC validation in the dnsmasq asked: SERVFAIL */
    expect(d, "servfail.example", DNS_UNKNOWN, "SERVFAIL");
    /* the upstream serves only example.: REFUSED, passed on */
    expect(d, "refused.invalid", DNS_UNKNOWN, "REFUSED");
    dns_stats(d, &st);
    cr_assert_eq(st.timeouts, 0);
    dns_close(d);
}

/* ---- time ---------------------------------------------------------------------------------- */

Test(dns, a_server_that_does_not_answer_times_out, .init = servers_start, .fini = servers_stop)
{
    char servers[64];
    struct dns *d;
    struct dns_stats st;
    const char *names[] = {"google-hosted.test", "aonly.test", "example.com"};
    struct dns_answer a[3];
    int64_t start;
    size_t i;

    snprintf(servers, sizeof servers, "127.0.0.1:%d", srv.silent_port);
    d = open_at(servers, 200, 1, 0, 0);
    start = timeutil_mono_ms();
    resolve(d, names, 3, a);
    cr_assert_lt(seconds_since(start), 3.0, "%.2f s", seconds_since(start));
    for (i = 0; i < 3; i++) {
        cr_assert_eq(a[i].verdict, DNS_UNKNOWN, "%s", names[i]);
        cr_assert_str_eq(a[i].why, "timed out");
        dns_answer_free(&a[i]);
    }
    dns_stats(d, &st);
    cr_assert_eq(st.timeouts, 3);
    cr_assert_eq(st.queries, 3);
    dns_close(d);
}

Test(dns, the_deadline_bounds_a_call, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 400);
    const char *names[] = {"x.slow.example", "google-hosted.test", "y.slow.example",
                           "x.slow.example"};
    struct dns_answer a[4];
    struct dns_stats st;
    int64_t start;
    size_t i;

    start = timeutil_mono_ms();
    resolve(d, names, 4, a);
    /* dnsmasq forwards slow.example to a socket that never answers: only the deadline ends
       the call, long before its two tries (1 s, then 2 s) would have timed out */
    cr_assert_lt(seconds_since(start), 2.0, "%.2f s", seconds_since(start));
    cr_assert_geq(seconds_since(start), 0.39, "%.2f s", seconds_since(start));
    cr_assert_eq(a[1].verdict, DNS_MAIL, "%s", a[1].why);
    for (i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        cr_assert_eq(a[i].verdict, DNS_UNKNOWN, "%s", names[i]);
        cr_assert_str_eq(a[i].why, "the lookups' deadline passed");
    }
    for (i = 0; i < 4; i++)
        dns_answer_free(&a[i]);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 3);
    cr_assert_eq(st.cached, 0);

    /* not kept: asked again (and cut again) by the next call */
    start = timeutil_mono_ms();
    a[0] = one(d, "x.slow.example");
    cr_assert_lt(seconds_since(start), 2.0, "%.2f s", seconds_since(start));
    cr_assert_str_eq(a[0].why, "the lookups' deadline passed");
    dns_answer_free(&a[0]);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 4);
    cr_assert_eq(st.cached, 0);
    dns_close(d);
}

/* ---- the cache ----------------------------------------------------------------------------- */

Test(dns, a_name_asked_before_is_answered_from_the_cache, .init = servers_start,
     .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    const char *names[] = {"google-hosted.test", "aonly.test", "nothing.test", "nullmx.test",
                           "servfail.example"};
    struct dns_answer first[5], again[5];
    struct dns_stats before, after;
    size_t i, j;

    resolve(d, names, 5, first);
    dns_stats(d, &before);
    /* MX each; A and AAAA for aonly.test, of which the first back settles it */
    cr_assert(before.queries >= 6 && before.queries <= 7, "%zu", before.queries);
    cr_assert_eq(before.cached, 0);

    resolve(d, names, 5, again);
    dns_stats(d, &after);
    cr_assert_eq(after.queries, before.queries);
    cr_assert_eq(after.cached, 5);
    for (i = 0; i < 5; i++) {
        cr_assert_eq(again[i].verdict, first[i].verdict, "%s", names[i]);
        cr_assert_str_eq(again[i].why, first[i].why, "%s", names[i]);
        cr_assert_eq(again[i].implicit, first[i].implicit, "%s", names[i]);
        cr_assert_eq(again[i].nmx, first[i].nmx, "%s", names[i]);
        for (j = 0; j < first[i].nmx; j++) {
            cr_assert_neq(again[i].mx[j].host, first[i].mx[j].host, "a copy each");
            cr_assert_str_eq(again[i].mx[j].host, first[i].mx[j].host);
        }
        dns_answer_free(&first[i]);
        dns_answer_free(&again[i]);
    }
    dns_close(d);
}

Test(dns, a_name_twice_in_one_call_is_asked_once, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    const char *names[] = {"multi.test", "MULTI.test", "multi.test.", "nothing.test",
                           "Nothing.Test"};
    struct dns_answer a[5];
    struct dns_stats st;
    size_t i;

    resolve(d, names, 5, a);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 2);
    cr_assert_eq(st.cached, 3);
    for (i = 0; i < 3; i++) {
        cr_assert_eq(a[i].verdict, DNS_MAIL);
        cr_assert_eq(a[i].nmx, 3);
        expect_mx(&a[i], 0, 10, "aspmx.l.google.com");
    }
    for (i = 3; i < 5; i++)
        cr_assert_str_eq(a[i].why, "NXDOMAIN");
    for (i = 0; i < 5; i++)
        dns_answer_free(&a[i]);
    dns_close(d);
}

Test(dns, names_and_hosts_are_matched_without_regard_to_case, .init = servers_start,
     .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_answer a = one(d, "GOOGLE-Hosted.TEST");
    struct dns_stats st;

    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    expect_mx(&a, 0, 1, "aspmx.l.google.com");
    dns_answer_free(&a);
    a = one(d, "google-hosted.test.");
    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    dns_answer_free(&a);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.cached, 1);

    /* the exchange came in upper case */
    a = one(d, "Upper.Test");
    cr_assert_eq(a.verdict, DNS_MAIL, "%s", a.why);
    expect_mx(&a, 0, 5, "mx.upper.test");
    dns_answer_free(&a);
    /* the implicit MX is the name as asked, lowered */
    a = one(d, "AOnly.TEST.");
    cr_assert(a.implicit);
    expect_mx(&a, 0, 0, "aonly.test");
    dns_answer_free(&a);
    dns_close(d);
}

Test(dns, five_hundred_names_eight_at_a_time, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(8, 0);
    static char names_buf[BULK][32];
    const char *names[BULK];
    static struct dns_answer a[BULK];
    struct dns_stats st;
    size_t i, mail = 0;
    char host[32];

    for (i = 0; i < BULK; i++) {
        snprintf(names_buf[i], sizeof names_buf[i], "n%zu.test", i);
        names[i] = names_buf[i];
    }
    resolve(d, names, BULK, a);
    for (i = 0; i < BULK; i++) {
        if (i % 5 == 0) {
            cr_assert_eq(a[i].verdict, DNS_MAIL, "%s: %s", names[i], a[i].why);
            snprintf(host, sizeof host, "mx%zu.bulk.test", i / 5);
            expect_mx(&a[i], 0, (unsigned)(i / 5 % 7), host);
            mail++;
        } else {
            cr_assert_eq(a[i].verdict, DNS_NO_MAIL, "%s: %s", names[i], a[i].why);
            cr_assert_str_eq(a[i].why, "NXDOMAIN");
        }
        dns_answer_free(&a[i]);
    }
    cr_assert_eq(mail, BULK / 5);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, BULK);
    cr_assert_eq(st.timeouts, 0);
    dns_close(d);
}

/* ---- records of one kind ------------------------------------------------------------------- */

/* name's records of kind type (freed by the caller), the call itself succeeding. */
static struct dns_records lookup(struct dns *d, const char *name, enum dns_rr type)
{
    struct dns_records r;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(dns_lookup(d, name, type, &r, &err), 0, "%s: %s", name, err.text);
    return r;
}

static void expect_status(struct dns *d, const char *name, enum dns_rr type, enum dns_status st,
                          const char *why)
{
    struct dns_records r = lookup(d, name, type);

    cr_assert_eq(r.status, st, "%s %s: status %d (%s), not %d", name, dns_rr_name(type),
                 (int)r.status, r.why, (int)st);
    cr_assert_str_eq(r.why, why, "%s %s", name, dns_rr_name(type));
    cr_assert_null(r.v);
    cr_assert_eq(r.n, 0);
    dns_records_free(&r);
}

Test(dns, txt_strings_are_joined_and_each_record_is_one_string, .init = servers_start,
     .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_records r = lookup(d, "parts.test", DNS_RR_TXT);

    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_str_eq(r.why, "");
    cr_assert_eq(r.n, 1);
    cr_assert_null(r.pref);
    cr_assert_str_eq(r.v[0], "v=spf1 ip4:192.0.2.0/24 -all");
    dns_records_free(&r);
    cr_assert_null(r.v);

    r = lookup(d, "two.test", DNS_RR_TXT);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 2);
    cr_assert((strcmp(r.v[0], "first") == 0 && strcmp(r.v[1], "second") == 0) ||
              (strcmp(r.v[0], "second") == 0 && strcmp(r.v[1], "first") == 0));
    dns_records_free(&r);

    /* a record with a NUL byte is left out; one made only of such is FOUND with none */
    r = lookup(d, "nul.test", DNS_RR_TXT);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.v[0], "clean");
    dns_records_free(&r);
    r = lookup(d, "onlynul.test", DNS_RR_TXT);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 0);
    dns_records_free(&r);
    dns_close(d);
}

Test(dns, a_long_txt_record_and_many_come_over_tcp, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_records r = lookup(d, "long.test", DNS_RR_TXT);
    bool seen[TXT_MANY] = {false};
    size_t i;

    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(strlen(r.v[0]), LONG_TXT / 250 * 249);
    for (i = 0; i < LONG_TXT / 250; i++)
        cr_assert_eq(r.v[0][i * 249], 'a' + (int)i, "string %zu", i);
    dns_records_free(&r);

    r = lookup(d, "txts.test", DNS_RR_TXT);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, TXT_MANY);
    for (i = 0; i < r.n; i++) {
        unsigned k;

        cr_assert_eq(sscanf(r.v[i], "record %u", &k), 1, "%s", r.v[i]);
        cr_assert(k < TXT_MANY && !seen[k]);
        seen[k] = true;
    }
    dns_records_free(&r);

    /* one more than DNS_RECORDS_MAX: not kept, and said */
    r = lookup(d, "toomany.test", DNS_RR_A);
    cr_assert_eq(r.status, DNS_FAILED);
    cr_assert_str_eq(r.why, "more than 256 records");
    cr_assert_eq(r.n, 0);
    dns_records_free(&r);
    dns_close(d);
}

Test(dns, addresses_exchanges_and_pointers, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_records r = lookup(d, "both.test", DNS_RR_A);
    char rev[DNS_REVERSE_MAX];

    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 2);
    cr_assert((strcmp(r.v[0], "192.0.2.1") == 0 && strcmp(r.v[1], "192.0.2.2") == 0) ||
              (strcmp(r.v[0], "192.0.2.2") == 0 && strcmp(r.v[1], "192.0.2.1") == 0));
    dns_records_free(&r);
    r = lookup(d, "both.test", DNS_RR_AAAA);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.v[0], "2001:db8::1");
    dns_records_free(&r);
    /* through a CNAME: the records of the name it points to */
    r = lookup(d, "Alias.TEST.", DNS_RR_AAAA);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.v[0], "2001:db8::1");
    dns_records_free(&r);

    r = lookup(d, "multi.test", DNS_RR_MX);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 3);
    cr_assert_not_null(r.pref);
    cr_assert_str_eq(r.v[0], "aspmx.l.google.com");
    cr_assert_eq(r.pref[0], 10);
    cr_assert_str_eq(r.v[1], "alt1.aspmx.l.google.com");
    cr_assert_str_eq(r.v[2], "alt2.aspmx.l.google.com");
    cr_assert_eq(r.pref[2], 20);
    dns_records_free(&r);
    cr_assert_null(r.pref);
    /* a null MX's exchange is "" */
    r = lookup(d, "nullmx.test", DNS_RR_MX);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.v[0], "");
    cr_assert_eq(r.pref[0], 0);
    dns_records_free(&r);
    r = lookup(d, "upper.test", DNS_RR_MX);
    cr_assert_str_eq(r.v[0], "mx.upper.test");
    dns_records_free(&r);

    cr_assert_eq(dns_reverse_name("192.0.2.1", rev, sizeof rev), 0);
    r = lookup(d, rev, DNS_RR_PTR);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.v[0], "host.test");
    dns_records_free(&r);
    cr_assert_eq(dns_reverse_name("2001:db8::1", rev, sizeof rev), 0);
    r = lookup(d, rev, DNS_RR_PTR);
    cr_assert_eq(r.status, DNS_FOUND, "%s", r.why);
    cr_assert_str_eq(r.v[0], "v6host.test");
    dns_records_free(&r);
    dns_close(d);
}

Test(dns, nxdomain_nodata_and_names_not_asked, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_records r;
    struct dns_stats st;

    expect_status(d, "nothing.test", DNS_RR_TXT, DNS_NXDOMAIN, "");
    expect_status(d, "_dmarc.nothing.test", DNS_RR_TXT, DNS_NXDOMAIN, "");
    /* the name exists with other records; a CNAME alone is no record either */
    expect_status(d, "both.test", DNS_RR_TXT, DNS_NODATA, "");
    expect_status(d, "aonly.test", DNS_RR_AAAA, DNS_NODATA, "");
    expect_status(d, "txtonly.test", DNS_RR_MX, DNS_NODATA, "");
    expect_status(d, "alias.test", DNS_RR_MX, DNS_NODATA, "");
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 6);
    expect_status(d, "a..test", DNS_RR_TXT, DNS_NXDOMAIN, "not a domain name");
    expect_status(d, "user+tag.test", DNS_RR_A, DNS_NXDOMAIN, "not a domain name");
    expect_status(d, "", DNS_RR_A, DNS_NXDOMAIN, "not a domain name");
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 6);
    cr_assert_eq(dns_lookup(d, "x.test", (enum dns_rr)9, &r, NULL), BLAST_EINVAL);
    cr_assert_eq(r.n, 0);
    dns_close(d);
}

Test(dns, servfail_and_refused_records_are_failed, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);

    expect_status(d, "servfail.example", DNS_RR_A, DNS_FAILED, "SERVFAIL");
    expect_status(d, "refused.invalid", DNS_RR_TXT, DNS_FAILED, "REFUSED");
    dns_close(d);
}

Test(dns, a_lookup_of_a_silent_server_fails_quickly, .init = servers_start, .fini = servers_stop)
{
    char servers[64];
    struct dns *d;
    struct dns_stats st;
    int64_t start;

    snprintf(servers, sizeof servers, "127.0.0.1:%d", srv.silent_port);
    d = open_at(servers, 200, 1, 0, 0);
    start = timeutil_mono_ms();
    expect_status(d, "example.test", DNS_RR_TXT, DNS_FAILED, "timed out");
    cr_assert_lt(seconds_since(start), 2.0, "%.2f s", seconds_since(start));
    /* kept: the same question is not asked again */
    start = timeutil_mono_ms();
    expect_status(d, "example.test", DNS_RR_TXT, DNS_FAILED, "timed out");
    cr_assert_lt(seconds_since(start), 0.1, "%.2f s", seconds_since(start));
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.timeouts, 1);
    cr_assert_eq(st.cached, 1);
    dns_close(d);

    /* the deadline cuts a lookup short, and is not kept */
    d = open_local(0, 300);
    start = timeutil_mono_ms();
    expect_status(d, "x.slow.example", DNS_RR_TXT, DNS_FAILED, "the lookups' deadline passed");
    cr_assert_lt(seconds_since(start), 1.5, "%.2f s", seconds_since(start));
    expect_status(d, "x.slow.example", DNS_RR_TXT, DNS_FAILED, "the lookups' deadline passed");
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 2);
    cr_assert_eq(st.cached, 0);
    dns_close(d);
}

Test(dns, records_are_cached_by_name_and_kind, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_records a = lookup(d, "both.test", DNS_RR_A), b;
    struct dns_answer m;
    struct dns_stats st;

    b = lookup(d, "BOTH.test.", DNS_RR_A);
    cr_assert_eq(b.n, a.n);
    cr_assert_neq(b.v, a.v, "a copy each");
    cr_assert_str_eq(b.v[0], a.v[0]);
    dns_records_free(&a);
    dns_records_free(&b);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.cached, 1);
    /* another kind of the same name is another question, and so is its mail routing */
    a = lookup(d, "both.test", DNS_RR_AAAA);
    dns_records_free(&a);
    m = one(d, "both.test");
    cr_assert_eq(m.verdict, DNS_MAIL, "%s", m.why);
    cr_assert(m.implicit);
    dns_answer_free(&m);
    expect_status(d, "nothing.test", DNS_RR_A, DNS_NXDOMAIN, "");
    expect_status(d, "nothing.test", DNS_RR_A, DNS_NXDOMAIN, "");
    dns_stats(d, &st);
    cr_assert_eq(st.cached, 2);
    /* A AAAA; the mail entry's MX and one or two address queries; nothing.test once */
    cr_assert(st.queries >= 5 && st.queries <= 6, "%zu", st.queries);
    dns_close(d);
}

Test(dns, limits_bound_every_later_lookup, .init = servers_start, .fini = servers_stop)
{
    struct dns *d = open_local(0, 0);
    struct dns_records a;
    struct dns_stats st;

    /* a budget of one query: the first is asked, the next is not (nor cached) */
    dns_set_limits(d, 0, 1);
    a = lookup(d, "both.test", DNS_RR_A);
    cr_assert_eq(a.status, DNS_FOUND);
    dns_records_free(&a);
    expect_status(d, "both.test", DNS_RR_AAAA, DNS_FAILED, "the lookups' budget was spent");
    a = lookup(d, "both.test", DNS_RR_A);
    cr_assert_eq(a.status, DNS_FOUND, "what is cached is still answered");
    dns_records_free(&a);
    dns_stats(d, &st);
    cr_assert_eq(st.queries, 1);
    /* a deadline already past: nothing more is asked */
    dns_set_limits(d, timeutil_mono_ms() - 1, 0);
    expect_status(d, "both.test", DNS_RR_AAAA, DNS_FAILED, "the lookups' deadline passed");
    /* lifted: asked again */
    dns_set_limits(d, 0, 0);
    a = lookup(d, "both.test", DNS_RR_AAAA);
    cr_assert_eq(a.status, DNS_FOUND);
    dns_records_free(&a);
    dns_close(d);
}

Test(dns, reverse_names)
{
    char out[DNS_REVERSE_MAX], small[20];

    cr_assert_eq(dns_reverse_name("192.0.2.1", out, sizeof out), 0);
    cr_assert_str_eq(out, "1.2.0.192.in-addr.arpa");
    cr_assert_eq(dns_reverse_name("2001:db8::567:89ab", out, sizeof out), 0);
    cr_assert_str_eq(out,
                     "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    cr_assert_eq(strlen(out) + 1, DNS_REVERSE_MAX);
    cr_assert_eq(dns_reverse_name("::ffff:192.0.2.1", out, sizeof out), 0);
    cr_assert(strstr(out, "f.f.f.f.0.0.0.0") != NULL, "%s", out);
    cr_assert_eq(dns_reverse_name("192.0.2", out, sizeof out), BLAST_EINVAL);
    cr_assert_str_eq(out, "");
    cr_assert_eq(dns_reverse_name("example.com", out, sizeof out), BLAST_EINVAL);
    cr_assert_eq(dns_reverse_name("", out, sizeof out), BLAST_EINVAL);
    cr_assert_eq(dns_reverse_name("192.0.2.1", small, 10), BLAST_EINVAL);
    cr_assert_str_eq(small, "");
    cr_assert_eq(dns_reverse_name("::1", small, sizeof small), BLAST_EINVAL);
    cr_assert_str_eq(dns_rr_name(DNS_RR_TXT), "TXT");
    cr_assert_str_eq(dns_rr_name(DNS_RR_PTR), "PTR");
    dns_records_free(NULL);
}

/* ---- opening ------------------------------------------------------------------------------- */

static void bad_servers(const char *servers, const char *says)
{
    struct dns_options o = {.servers = servers};
    struct blast_error err;
    struct dns *d = (struct dns *)&o;

    blast_error_clear(&err);
    cr_assert_eq(dns_open(&o, &d, &err), BLAST_EINVAL, "%s", servers);
    cr_assert_null(d);
    cr_assert(strstr(err.text, says) != NULL, "%s: '%s' does not say '%s'", servers, err.text,
              says);
}

Test(dns, a_bad_servers_string_is_refused_naming_the_entry)
{
    bad_servers("127.0.0.1:99999", "'127.0.0.1:99999' is not an IP address");
    bad_servers("127.0.0.1:0", "'127.0.0.1:0'");
    bad_servers("127.0.0.1:", "'127.0.0.1:'");
    bad_servers("127.0.0.1:53x", "'127.0.0.1:53x'");
    bad_servers("localhost", "'localhost' is not an IP address");
    bad_servers("192.0.2.1, 300.1.1.1:53", "'300.1.1.1:53'");
    bad_servers("[::1", "'[::1'");
    bad_servers("[::1]53", "'[::1]53'");
    bad_servers("[127.0.0.1]:53", "'[127.0.0.1]:53'");
    bad_servers("", "an empty entry");
    bad_servers("192.0.2.1,,192.0.2.2", "an empty entry");
    bad_servers("192.0.2.1,", "an empty entry");
    bad_servers("1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9,1.1.1.10,"
                "1.1.1.11,1.1.1.12,1.1.1.13,1.1.1.14,1.1.1.15,1.1.1.16,1.1.1.17",
                "at most 16 servers");
}

Test(dns, server_forms_and_options)
{
    struct dns_options o = {0};
    struct blast_error err;
    struct dns *d = NULL;

    dns_close(open_at("127.0.0.1", 0, 0, 0, 0));
    dns_close(open_at("192.0.2.1:5353, [2001:db8::1]:53,[::1] , ::1", 0, 0, 0, 0));
    /* the system's configuration, and every default */
    cr_assert_eq(dns_open(NULL, &d, NULL), 0);
    dns_close(d);
    blast_error_clear(&err);
    o.tries = -1;
    cr_assert_eq(dns_open(&o, &d, &err), BLAST_EINVAL);
    cr_assert_null(d);
    cr_assert(strstr(err.text, "must be 0 (the default) or more") != NULL, "%s", err.text);
    dns_close(NULL);
    dns_answer_free(NULL);
}

Test(dns, an_empty_call_and_the_verdict_names)
{
    struct dns *d = open_at("127.0.0.1:9", 0, 0, 0, 0);
    struct dns_stats st;

    cr_assert_eq(dns_resolve_mail(d, NULL, 0, NULL, NULL), 0);
    dns_stats(d, &st);
    cr_assert_eq(st.queries + st.cached + st.timeouts, 0);
    dns_close(d);
    cr_assert_str_eq(dns_verdict_name(DNS_MAIL), "mail");
    cr_assert_str_eq(dns_verdict_name(DNS_NULL_MX), "null MX");
    cr_assert_str_eq(dns_verdict_name(DNS_NO_MAIL), "no mail");
    cr_assert_str_eq(dns_verdict_name(DNS_UNKNOWN), "unknown");
}
