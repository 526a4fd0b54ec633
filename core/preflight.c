/*
 * preflight - a sending domain's authentication checked from DNS; see preflight.h.
 */
#include "preflight.h"
#include "address.h"
#include "buf.h"
#include "dmarc.h"
#include "dns.h"
#include "spf.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RELAY_ADDRS_MAX       32   /* addresses checked (the relays' hosts may have several) */
#define PREFLIGHT_QUERIES_MAX 2000 /* queries in all: SPF of 2 domains x 32 addresses, bounded */

struct relay_addr {
    char ip[64];
    char relay[160]; /* "relay NAME", or "outbound" */
};

struct run {
    const struct campaign *c;
    const struct dkim *keys;
    struct dns *d;
    void (*fn)(void *arg, const struct preflight_finding *f);
    void *arg;
    struct preflight_counts *counts;
    char from[256];     /* the From address's domain */
    char envelope[256]; /* MAIL FROM's domain: return_path's, envelope_from's, else from */
    struct relay_addr addrs[RELAY_ADDRS_MAX];
    size_t naddrs;
    size_t dropped;       /* addresses past RELAY_ADDRS_MAX */
    bool dkim_aligned_ok; /* a key that is published and aligns (for DMARC) */
    bool silent;          /* the resolver timed out once: nothing more is asked */
};

const char *preflight_level_name(enum preflight_level l)
{
    return l == PREFLIGHT_OK ? "ok" : l == PREFLIGHT_WARNING ? "warning" : "error";
}

static void say(struct run *r, enum preflight_level level, const char *check, const char *record,
                const char *publish, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Text for a finding: what came from DNS may hold any byte (a record is anyone's), and
 * goes to a terminal and into JSON: bytes outside printable ASCII are written \xNN.
 */
static void printable(char *s, size_t size)
{
    char tmp[2048];
    size_t i, n = 0;

    for (i = 0; s[i] != '\0' && n + 5 < sizeof tmp; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            tmp[n++] = (char)c;
        else
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "\\x%02x", c);
    }
    tmp[n] = '\0';
    snprintf(s, size, "%s", tmp);
}

static void say(struct run *r, enum preflight_level level, const char *check, const char *record,
                const char *publish, const char *fmt, ...)
{
    struct preflight_finding f;
    va_list ap;

    memset(&f, 0, sizeof f);
    f.level = level;
    f.check = check;
    snprintf(f.record, sizeof f.record, "%s", record);
    snprintf(f.publish, sizeof f.publish, "%s", publish != NULL ? publish : "");
    va_start(ap, fmt);
    vsnprintf(f.text, sizeof f.text, fmt, ap);
    va_end(ap);
    printable(f.record, sizeof f.record);
    printable(f.text, sizeof f.text);
    printable(f.publish, sizeof f.publish);
    if (level == PREFLIGHT_OK)
        r->counts->ok++;
    else if (level == PREFLIGHT_WARNING)
        r->counts->warnings++;
    else
        r->counts->errors++;
    r->fn(r->arg, &f);
}

/*
 * A lookup, unless the resolver has already failed to answer: then it is not asked
 * again (DNS_FAILED at once), so that a dead resolver costs one timeout, not one for
 * every record.
 */
static int ask(struct run *r, const char *name, enum dns_rr type, struct dns_records *x,
               struct blast_error *err)
{
    int rc;

    memset(x, 0, sizeof *x);
    if (r->silent) {
        x->status = DNS_FAILED;
        snprintf(x->why, sizeof x->why, "not asked: the resolver timed out on an earlier lookup");
        return 0;
    }
    if ((rc = dns_lookup(r->d, name, type, x, err)) < 0)
        return rc;
    if (x->status == DNS_FAILED &&
        (strstr(x->why, "timed out") != NULL || strstr(x->why, "deadline") != NULL))
        r->silent = true;
    return 0;
}

/* Why a lookup gave no records, for a finding. */
static const char *no_answer(const struct dns_records *x)
{
    switch (x->status) {
    case DNS_NXDOMAIN:
        return "NXDOMAIN";
    case DNS_NODATA:
        return "no TXT record";
    case DNS_FAILED:
        return x->why[0] != '\0' ? x->why : "the lookup failed";
    case DNS_FOUND:
        break;
    }
    return "";
}

/* ---- DKIM ------------------------------------------------------------------------- */

static int check_dkim(struct run *r, struct blast_error *err)
{
    size_t i, n = r->keys != NULL ? dkim_count(r->keys) : 0;
    struct buf name, value;
    int rc = 0;

    if (n == 0 && r->c->ndkim > 0) {
        say(r, PREFLIGHT_ERROR, "dkim", r->from, NULL,
            "the campaign's DKIM keys could not be loaded (the problem is named above): "
            "their records are not checked");
        return 0;
    }
    if (n == 0) {
        say(r, PREFLIGHT_ERROR, "dkim", r->from, NULL,
            "the campaign signs with no DKIM key: providers filter unsigned bulk mail, and "
            "DMARC cannot pass through DKIM (add 'dkim' to the campaign; docs/campaign.md)");
        return 0;
    }
    buf_init(&name);
    buf_init(&value);
    for (i = 0; i < n; i++) {
        struct dns_records x;
        char why[256];
        enum dkim_record_verdict v;
        const struct campaign_dkim *k = &r->c->dkim[i];

        buf_reset(&name);
        buf_reset(&value);
        if (dkim_record_name(r->keys, i, &name) < 0 || dkim_public_record(r->keys, i, &value) < 0 ||
            buf_putc(&name, '\0') < 0 || buf_putc(&value, '\0') < 0) {
            rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto out;
        }
        if ((rc = ask(r, name.data, DNS_RR_TXT, &x, err)) < 0)
            goto out;
        if (x.status == DNS_FAILED) {
            say(r, PREFLIGHT_ERROR, "dkim", name.data, NULL, "could not be looked up: %s",
                no_answer(&x));
        } else if (x.status != DNS_FOUND) {
            say(r, PREFLIGHT_ERROR, "dkim", name.data, value.data,
                "no key is published (%s): receivers cannot verify the signatures of %s",
                no_answer(&x), k->domain);
        } else {
            v = dkim_record_check(r->keys, i, (const char *const *)x.v, x.n, why, sizeof why);
            if (v == DKIM_RECORD_MATCHES) {
                say(r, PREFLIGHT_OK, "dkim", name.data, NULL,
                    "the published key is the one blast signs with (%s)",
                    campaign_dkim_alg_name(k->algorithm));
                if (dmarc_aligned(r->from, k->domain, 'r'))
                    r->dkim_aligned_ok = true;
            } else {
                say(r, PREFLIGHT_ERROR, "dkim", name.data, value.data, "%s",
                    why[0] != '\0' ? why : dkim_record_verdict_name(v));
            }
        }
        dns_records_free(&x);
    }
out:
    buf_free(&name);
    buf_free(&value);
    return rc;
}

/* ---- DMARC ------------------------------------------------------------------------ */

/*
 * The record txt with tag's value (p or sp, which was none) made quarantine, every
 * other tag as written; false when it does not fit or the tag is not there.
 */
static bool policy_raised(const char *txt, const char *tag, char *out, size_t size)
{
    size_t n = 0, len = strlen(tag);
    const char *p = txt;
    bool done = false;

    out[0] = '\0';
    while (*p != '\0') {
        const char *end = strchr(p, ';'), *s = p, *eq;
        size_t plen;
        int w;

        if (end == NULL)
            end = p + strlen(p);
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        plen = (size_t)(end - s);
        while (plen > 0 && (s[plen - 1] == ' ' || s[plen - 1] == '\t'))
            plen--;
        eq = memchr(s, '=', plen);
        if (plen > 0) {
            size_t name = eq != NULL ? (size_t)(eq - s) : plen;
            while (name > 0 && (s[name - 1] == ' ' || s[name - 1] == '\t'))
                name--;
            if (!done && eq != NULL && name == len && strncasecmp(s, tag, len) == 0) {
                w = snprintf(out + n, size - n, "%s%s=quarantine", n ? "; " : "", tag);
                done = true;
            } else {
                w = snprintf(out + n, size - n, "%s%.*s", n ? "; " : "", (int)plen, s);
            }
            if (w < 0 || (size_t)w >= size - n)
                return false;
            n += (size_t)w;
        }
        p = *end == ';' ? end + 1 : end;
    }
    return done;
}

static int check_dmarc(struct run *r, struct blast_error *err)
{
    struct dmarc_record rec;
    struct dns_records x;
    char name[300], org[256], why[200], publish[400], used[300];
    const char *policy;
    bool at_org = false, any_aligned = false, strict_miss = false;
    size_t i;
    int rc, pick;

    snprintf(publish, sizeof publish, "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@%s",
             r->from);
    snprintf(name, sizeof name, "_dmarc.%s", r->from);
    snprintf(used, sizeof used, "%s", name);
    if ((rc = ask(r, name, DNS_RR_TXT, &x, err)) < 0)
        return rc;
    pick = x.status == DNS_FOUND ? dmarc_pick((const char *const *)x.v, x.n) : -1;
    /* RFC 7489 §6.6.3: none at the From domain: the organizational domain's */
    if (x.status != DNS_FAILED && pick == -1) {
        struct blast_error e;
        blast_error_clear(&e);
        if (dmarc_org_domain(r->from, org, sizeof org, &e) == 0 && strcasecmp(org, r->from) != 0) {
            dns_records_free(&x);
            snprintf(used, sizeof used, "_dmarc.%s", org);
            if ((rc = ask(r, used, DNS_RR_TXT, &x, err)) < 0)
                return rc;
            pick = x.status == DNS_FOUND ? dmarc_pick((const char *const *)x.v, x.n) : -1;
            at_org = true;
        }
    }
    if (x.status == DNS_FAILED) {
        say(r, PREFLIGHT_ERROR, "dmarc", used, NULL, "could not be looked up: %s", no_answer(&x));
        goto out;
    }
    if (pick == -2) {
        say(r, PREFLIGHT_ERROR, "dmarc", used, publish,
            "several DMARC records: receivers take that as none (RFC 7489 §6.6.3); keep one");
        goto out;
    }
    if (pick < 0) {
        say(r, PREFLIGHT_ERROR, "dmarc", name, publish,
            "no DMARC record for %s%s: Gmail and Yahoo require one of bulk senders (start "
            "with p=none while you read the reports, then quarantine)",
            r->from, at_org ? " nor its organizational domain" : "");
        goto out;
    }
    if (dmarc_parse(x.v[pick], &rec, why, sizeof why) < 0) {
        say(r, PREFLIGHT_ERROR, "dmarc", used, publish, "the record does not parse: %s", why);
        goto out;
    }
    policy = at_org && rec.sp[0] != '\0' ? rec.sp : rec.p;
    /* the signatures' alignment, as the record asks (adkim) */
    for (i = 0; r->c != NULL && i < r->c->ndkim; i++) {
        if (dmarc_aligned(r->from, r->c->dkim[i].domain, rec.adkim))
            any_aligned = true;
        else if (dmarc_aligned(r->from, r->c->dkim[i].domain, 'r'))
            strict_miss = true;
    }
    if (r->c->ndkim > 0 && !any_aligned)
        say(r, PREFLIGHT_ERROR, "dmarc", used, NULL,
            "no DKIM signature aligns with the From domain %s (adkim=%c%s): DMARC fails "
            "unless SPF aligns; sign with d=%s",
            r->from, rec.adkim, strict_miss ? ", strict: d= must equal it" : "", r->from);
    else if (r->c->ndkim > 0 && !r->dkim_aligned_ok)
        say(r, PREFLIGHT_ERROR, "dmarc", used, NULL,
            "a DKIM d= aligns with the From domain %s (adkim=%c), but its key is not published "
            "as blast signs with it (the dkim finding above): DMARC fails unless SPF aligns",
            r->from, rec.adkim);
    else if (r->c->ndkim > 0)
        say(r, PREFLIGHT_OK, "dmarc", used, NULL,
            "DKIM d= aligns with the From domain %s (adkim=%c)", r->from, rec.adkim);
    if (!dmarc_aligned(r->from, r->envelope, rec.aspf))
        say(r, PREFLIGHT_WARNING, "dmarc", used, NULL,
            "the envelope domain %s does not align with %s (aspf=%c): DMARC rests on DKIM alone",
            r->envelope, r->from, rec.aspf);
    if (strcmp(policy, "none") == 0) {
        char better[1536];
        /* the tag that decided, changed; every other tag kept as written */
        if (!policy_raised(x.v[pick], at_org && rec.sp[0] != '\0' ? "sp" : "p", better,
                           sizeof better))
            better[0] = '\0';
        say(r, PREFLIGHT_WARNING, "dmarc", used, better,
            "p=none: receivers are asked to do nothing with mail that fails; a bulk sender "
            "should move to quarantine or reject once the reports are clean");
    } else {
        say(r, PREFLIGHT_OK, "dmarc", used, NULL, "policy %s%s%s", policy,
            rec.pct < 100 ? ", pct=" : "", rec.pct < 100 ? "below 100" : "");
    }
out:
    dns_records_free(&x);
    return 0;
}

/* ---- SPF -------------------------------------------------------------------------- */

/* "ip4:192.0.2.1 ip6:2001:db8::1" for the relays' addresses, into out; false if too long. */
static bool relay_terms(const struct run *r, char *out, size_t size)
{
    size_t i, n = 0;

    out[0] = '\0';
    for (i = 0; i < r->naddrs; i++) {
        int w = snprintf(out + n, size - n, "%s%s:%s", i ? " " : "",
                         strchr(r->addrs[i].ip, ':') != NULL ? "ip6" : "ip4", r->addrs[i].ip);
        if (w < 0 || (size_t)w >= size - n)
            return false;
        n += (size_t)w;
    }
    return true;
}

/*
 * What to publish: the record with the relays' terms after "v=spf1" (record NULL: a
 * record of them alone); "" when blast cannot say it whole (a record it holds cut
 * short, or too long a result).
 */
static void spf_publish(const struct run *r, const char *record, size_t record_size, char *out,
                        size_t size)
{
    char terms[1024];
    int w;

    out[0] = '\0';
    if (!relay_terms(r, terms, sizeof terms))
        return;
    if (record != NULL && strlen(record) + 1 >= record_size)
        return; /* the record as blast holds it may be cut short */
    if (record != NULL && strncasecmp(record, "v=spf1", 6) == 0)
        w = snprintf(out, size, "v=spf1 %s%s", terms, record + 6);
    else
        w = snprintf(out, size, "v=spf1 %s -all", terms);
    if (w < 0 || (size_t)w >= size)
        out[0] = '\0';
}

/*
 * SPF of domain for each outbound address. judged: the envelope domain, which
 * receivers check (RFC 7208 §2.4): its misses are errors; the From domain, when it
 * differs, matters only for mail sent as it from elsewhere: its misses are warnings.
 */
static int check_spf_domain(struct run *r, const char *domain, bool judged, struct blast_error *err)
{
    char sender[320], publish[1536], note[160] = "";
    enum preflight_level bad = judged ? PREFLIGHT_ERROR : PREFLIGHT_WARNING;
    size_t i;
    int rc;

    if (!judged)
        snprintf(note, sizeof note,
                 " (receivers check the envelope domain %s for this campaign's mail)", r->envelope);
    snprintf(sender, sizeof sender, "postmaster@%s", domain);
    for (i = 0; i < r->naddrs; i++) {
        struct spf_verdict v;
        const char *ip = r->addrs[i].ip;
        if (r->silent) {
            say(r, bad, "spf", domain, NULL,
                "not evaluated for %s: the resolver timed out on an earlier lookup", ip);
            continue;
        }
        if ((rc = spf_check(r->d, ip, domain, sender, &v, err)) < 0)
            return rc;
        if (v.result == SPF_TEMPERROR &&
            (strstr(v.why, "timed out") != NULL || strstr(v.why, "deadline") != NULL ||
             strstr(v.why, "budget") != NULL))
            r->silent = true;
        spf_publish(r, v.record[0] != '\0' ? v.record : NULL, sizeof v.record, publish,
                    sizeof publish);
        switch (v.result) {
        case SPF_PASS:
            say(r, PREFLIGHT_OK, "spf", domain, NULL, "pass for %s (%s): %s", ip, r->addrs[i].relay,
                v.mechanism);
            break;
        case SPF_SOFTFAIL:
        case SPF_NEUTRAL:
            say(r, PREFLIGHT_WARNING, "spf", domain, publish,
                "%s for %s (%s): %s; the record does not cover it%s", spf_result_name(v.result), ip,
                r->addrs[i].relay, v.mechanism, note);
            break;
        case SPF_FAIL:
            say(r, bad, "spf", domain, publish,
                "fail for %s (%s): %s; receivers may refuse the mail%s", ip, r->addrs[i].relay,
                v.mechanism, note);
            break;
        case SPF_NONE:
            say(r, bad, "spf", domain, publish, "no SPF record%s%s%s", v.why[0] ? ": " : "", v.why,
                note);
            break;
        case SPF_PERMERROR:
            /* a broken record is not mended by a suggestion that drops what it covers */
            say(r, bad, "spf", domain, NULL,
                "permerror for %s: %s (receivers treat the record as broken): make it valid%s "
                "and have it cover %s%s",
                ip, v.why,
                strstr(v.why, "lookups") != NULL
                    ? " (fewer lookups: flatten or drop nested includes)"
                    : "",
                ip, note);
            break;
        case SPF_TEMPERROR:
            say(r, bad, "spf", domain, NULL, "could not be evaluated for %s: %s", ip, v.why);
            break;
        }
    }
    return 0;
}

static int check_spf(struct run *r, struct blast_error *err)
{
    int rc;

    if (r->naddrs == 0) {
        say(r, PREFLIGHT_WARNING, "spf", r->envelope, NULL,
            "not checked: no address mail leaves from is known (set 'dns': 'outbound' to the "
            "relays' public addresses)");
        return 0;
    }
    if ((rc = check_spf_domain(r, r->envelope, true, err)) < 0)
        return rc;
    if (strcasecmp(r->envelope, r->from) != 0)
        rc = check_spf_domain(r, r->from, false, err);
    return rc;
}

/* ---- PTR -------------------------------------------------------------------------- */

static int check_ptr(struct run *r, struct blast_error *err)
{
    size_t i, k, j;
    int rc;

    for (i = 0; i < r->naddrs; i++) {
        const char *ip = r->addrs[i].ip;
        bool v6 = strchr(ip, ':') != NULL, back = false;
        char rev[128], names[512] = "";
        struct dns_records x;

        if (dns_reverse_name(ip, rev, sizeof rev) < 0)
            continue;
        if ((rc = ask(r, rev, DNS_RR_PTR, &x, err)) < 0)
            return rc;
        if (x.status != DNS_FOUND) {
            say(r, PREFLIGHT_WARNING, "ptr", rev, NULL,
                "no PTR name for %s (%s): %s; providers distrust a sending address "
                "without one (the relay's operator sets it)",
                ip, r->addrs[i].relay, x.status == DNS_FAILED ? no_answer(&x) : "none published");
            dns_records_free(&x);
            continue;
        }
        /* at most 10 names, as SPF's ptr takes (RFC 7208 §4.6.4) */
        for (k = 0; k < x.n && k < 10 && !back; k++) {
            struct dns_records f;
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "", x.v[k]);
            if ((rc = ask(r, x.v[k], v6 ? DNS_RR_AAAA : DNS_RR_A, &f, err)) < 0) {
                dns_records_free(&x);
                return rc;
            }
            for (j = 0; f.status == DNS_FOUND && j < f.n; j++) {
                unsigned char a[16], b[16];
                int fam = v6 ? AF_INET6 : AF_INET;
                if (inet_pton(fam, f.v[j], a) == 1 && inet_pton(fam, ip, b) == 1 &&
                    memcmp(a, b, v6 ? 16 : 4) == 0)
                    back = true;
            }
            if (back)
                say(r, PREFLIGHT_OK, "ptr", rev, NULL, "%s is %s, which points back to it", ip,
                    x.v[k]);
            dns_records_free(&f);
        }
        if (!back)
            say(r, PREFLIGHT_WARNING, "ptr", rev, NULL,
                "%s (%s) is named %s, which does not point back to it (no matching %s "
                "record): the relay's operator should make them agree",
                ip, r->addrs[i].relay, names, v6 ? "AAAA" : "A");
        dns_records_free(&x);
    }
    return 0;
}

/* ---- the relays' addresses --------------------------------------------------------- */

static void add_addr(struct run *r, const char *ip, const char *relay)
{
    size_t i;

    for (i = 0; i < r->naddrs; i++)
        if (strcmp(r->addrs[i].ip, ip) == 0)
            return;
    if (r->naddrs == RELAY_ADDRS_MAX) {
        r->dropped++;
        return;
    }
    snprintf(r->addrs[r->naddrs].ip, sizeof r->addrs[r->naddrs].ip, "%s", ip);
    snprintf(r->addrs[r->naddrs].relay, sizeof r->addrs[r->naddrs].relay, "%s", relay);
    r->naddrs++;
}

static bool private_address(const char *ip);

/* An address to check, unless it is a relay's private one (said once). */
static void take_addr(struct run *r, const char *ip, const char *label, bool explicit_)
{
    if (!explicit_ && private_address(ip)) {
        say(r, PREFLIGHT_WARNING, "dns", ip, NULL,
            "%s is at %s, a loopback or private address: mail leaves it from another "
            "address, not known here; SPF and PTR are not checked for it (set 'dns': "
            "'outbound' to its public addresses)",
            label, ip);
        return;
    }
    add_addr(r, ip, label);
}

/* Loopback, private (RFC 1918, RFC 4193), link-local or unspecified: not where mail leaves. */
static bool private_address(const char *ip)
{
    unsigned char a[16];

    if (inet_pton(AF_INET, ip, a) == 1)
        return a[0] == 127 || a[0] == 10 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
               (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
               (a[0] == 100 && (a[1] & 0xc0) == 64); /* RFC 6598 shared space */
    if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char loop[16] = {[15] = 1}, any[16] = {0};
        return memcmp(a, loop, 16) == 0 || memcmp(a, any, 16) == 0 || (a[0] & 0xfe) == 0xfc ||
               (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
    }
    return false;
}

/*
 * The addresses of host (an address, or a name asked of DNS), each passed to take
 * with label; false (and why) when it has none.
 */
static int resolve_host(struct run *r, const char *host, const char *label, bool explicit_,
                        bool *found, char *why, size_t whysize, struct blast_error *err)
{
    static const enum dns_rr kinds[] = {DNS_RR_A, DNS_RR_AAAA};
    unsigned char buf[16];
    size_t k, j;
    int rc;

    *found = false;
    why[0] = '\0';
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        take_addr(r, host, label, explicit_);
        *found = true;
        return 0;
    }
    for (k = 0; k < 2; k++) {
        struct dns_records x;
        if ((rc = ask(r, host, kinds[k], &x, err)) < 0)
            return rc;
        for (j = 0; x.status == DNS_FOUND && j < x.n; j++) {
            take_addr(r, x.v[j], label, explicit_);
            *found = true;
        }
        if (x.status == DNS_FAILED && why[0] == '\0')
            snprintf(why, whysize, "%s", x.why);
        dns_records_free(&x);
    }
    if (!*found && why[0] == '\0')
        snprintf(why, whysize, "no A or AAAA record");
    return 0;
}

/*
 * The addresses mail leaves from: 'dns': 'outbound' when the campaign gives them
 * (explicit: taken whatever they are), else the relays' own. A relay at a loopback or
 * private address hands mail to a server that sends it from another address, which
 * blast cannot see: said, and not checked.
 */
static int relay_addrs(struct run *r, struct blast_error *err)
{
    const struct campaign_dns *dn = &r->c->dns;
    char why[96];
    bool found;
    size_t i;
    int rc;

    for (i = 0; i < dn->noutbound; i++) {
        if ((rc = resolve_host(r, dn->outbound[i], "outbound", true, &found, why, sizeof why,
                               err)) < 0)
            return rc;
        if (!found)
            say(r, PREFLIGHT_ERROR, "dns", dn->outbound[i], NULL,
                "an outbound host of 'dns' that does not resolve (%s)", why);
    }
    for (i = 0; dn->noutbound == 0 && i < r->c->nrelays; i++) {
        const struct campaign_relay *rl = &r->c->relays[i];
        char label[160];
        snprintf(label, sizeof label, "relay %s", rl->name);
        if ((rc = resolve_host(r, rl->host, label, false, &found, why, sizeof why, err)) < 0)
            return rc;
        if (!found)
            say(r, PREFLIGHT_WARNING, "dns", rl->host, NULL,
                "the relay %s's host is not in DNS (%s): the address mail leaves it from is "
                "not known here; set 'dns': 'outbound' to check SPF and PTR for it",
                rl->name, why);
    }
    if (r->dropped > 0)
        say(r, PREFLIGHT_WARNING, "dns", r->from, NULL,
            "%zu more addresses than the %d checked were left out", r->dropped, RELAY_ADDRS_MAX);
    return 0;
}

int preflight_run(const struct campaign *c, const struct dkim *keys,
                  const struct preflight_options *o,
                  void (*fn)(void *arg, const struct preflight_finding *f), void *arg,
                  struct preflight_counts *counts, struct blast_error *err)
{
    struct dns_options dopt;
    struct run r;
    int rc;

    memset(counts, 0, sizeof *counts);
    memset(&r, 0, sizeof r);
    r.c = c;
    r.keys = keys;
    r.fn = fn;
    r.arg = arg;
    r.counts = counts;
    address_mailbox_domain(c->from, r.from, sizeof r.from);
    if (c->return_path.address != NULL) {
        const char *at = strrchr(c->return_path.address, '@');
        snprintf(r.envelope, sizeof r.envelope, "%s", at != NULL ? at + 1 : "");
        for (size_t i = 0; r.envelope[i] != '\0'; i++)
            if (r.envelope[i] >= 'A' && r.envelope[i] <= 'Z')
                r.envelope[i] = (char)(r.envelope[i] - 'A' + 'a');
    } else if (c->envelope_from != NULL) {
        address_mailbox_domain(c->envelope_from, r.envelope, sizeof r.envelope);
    }
    if (r.envelope[0] == '\0')
        snprintf(r.envelope, sizeof r.envelope, "%s", r.from);
    memset(&dopt, 0, sizeof dopt);
    dopt.servers = o != NULL ? o->servers : NULL;
    dopt.timeout_ms = o != NULL && o->timeout_ms > 0 ? o->timeout_ms : 2000;
    dopt.tries = 2;
    dopt.max_inflight = 8;
    dopt.deadline_ms = o != NULL && o->deadline_ms > 0 ? o->deadline_ms : 60000;
    if ((rc = dns_open(&dopt, &r.d, err)) < 0)
        return rc;
    /* all the lookups together, whatever a zone makes SPF ask (docs/authentication.md) */
    dns_set_limits(r.d, timeutil_mono_ms() + dopt.deadline_ms, PREFLIGHT_QUERIES_MAX);
    if ((rc = relay_addrs(&r, err)) < 0 || (rc = check_dkim(&r, err)) < 0 ||
        (rc = check_dmarc(&r, err)) < 0 || (rc = check_spf(&r, err)) < 0 ||
        (rc = check_ptr(&r, err)) < 0)
        goto out;
out:
    dns_close(r.d);
    return rc;
}
