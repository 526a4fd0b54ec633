/*
 * preflight - a sending domain's authentication checked from DNS; see preflight.h.
 */
#include "preflight.h"
#include "address.h"
#include "buf.h"
#include "dmarc.h"
#include "dns.h"
#include "spf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RELAY_ADDRS_MAX 32 /* addresses checked (the relays' hosts may have several) */

struct relay_addr {
    char ip[64];
    const char *relay; /* the campaign relay's name */
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
    bool dkim_aligned_ok; /* a key that is published and aligns (for DMARC) */
    bool silent;          /* the resolver timed out once: nothing more is asked */
};

const char *preflight_level_name(enum preflight_level l)
{
    return l == PREFLIGHT_OK ? "ok" : l == PREFLIGHT_WARNING ? "warning" : "error";
}

static void say(struct run *r, enum preflight_level level, const char *check, const char *record,
                const char *publish, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

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
    if (level == PREFLIGHT_OK)
        r->counts->ok++;
    else if (level == PREFLIGHT_WARNING)
        r->counts->warnings++;
    else
        r->counts->errors++;
    r->fn(r->arg, &f);
}

/* The domain of an address as written ("Acme <news@acme.example>"), A-label, lower case. */
static void domain_of(const char *mailbox, bool bare, char *out, size_t size)
{
    struct address a;
    struct blast_error e;
    const char *at;
    size_t i;

    out[0] = '\0';
    blast_error_clear(&e);
    if ((bare ? address_parse(mailbox, &a, &e) : address_parse_mailbox(mailbox, &a, &e)) < 0)
        return;
    at = strrchr(a.envelope, '@');
    snprintf(out, size, "%s", at != NULL ? at + 1 : "");
    for (i = 0; out[i] != '\0'; i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = (char)(out[i] - 'A' + 'a');
    address_free(&a);
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
    else if (r->c->ndkim > 0)
        say(r, PREFLIGHT_OK, "dmarc", used, NULL,
            "DKIM d= aligns with the From domain %s (adkim=%c)", r->from, rec.adkim);
    if (!dmarc_aligned(r->from, r->envelope, rec.aspf))
        say(r, PREFLIGHT_WARNING, "dmarc", used, NULL,
            "the envelope domain %s does not align with %s (aspf=%c): DMARC rests on DKIM alone",
            r->envelope, r->from, rec.aspf);
    if (strcmp(policy, "none") == 0) {
        char better[400];
        snprintf(better, sizeof better, "v=DMARC1; p=quarantine%s%s", rec.rua[0] ? "; rua=" : "",
                 rec.rua);
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

/* "ip4:192.0.2.1 ip6:2001:db8::1" for the relays' addresses, into out. */
static void relay_terms(const struct run *r, char *out, size_t size)
{
    size_t i, n = 0;

    out[0] = '\0';
    for (i = 0; i < r->naddrs && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s:%s", i ? " " : "",
                              strchr(r->addrs[i].ip, ':') != NULL ? "ip6" : "ip4", r->addrs[i].ip);
}

/* What to publish: the record with the relays' terms after "v=spf1", or a new one. */
static void spf_publish(const struct run *r, const char *record, char *out, size_t size)
{
    char terms[1024];

    relay_terms(r, terms, sizeof terms);
    if (record != NULL && strncasecmp(record, "v=spf1", 6) == 0)
        snprintf(out, size, "v=spf1 %s%s", terms, record + 6);
    else
        snprintf(out, size, "v=spf1 %s -all", terms);
}

static int check_spf_domain(struct run *r, const char *domain, struct blast_error *err)
{
    char sender[320], publish[1536];
    size_t i;
    int rc;

    snprintf(sender, sizeof sender, "postmaster@%s", domain);
    for (i = 0; i < r->naddrs; i++) {
        struct spf_verdict v;
        const char *ip = r->addrs[i].ip;
        if (r->silent) {
            say(r, PREFLIGHT_ERROR, "spf", domain, NULL,
                "not evaluated for %s: the resolver timed out on an earlier lookup", ip);
            continue;
        }
        if ((rc = spf_check(r->d, ip, domain, sender, &v, err)) < 0)
            return rc;
        if (v.result == SPF_TEMPERROR && strstr(v.why, "timed out") != NULL)
            r->silent = true;
        spf_publish(r, v.record[0] != '\0' ? v.record : NULL, publish, sizeof publish);
        switch (v.result) {
        case SPF_PASS:
            say(r, PREFLIGHT_OK, "spf", domain, NULL, "pass for %s (relay %s): %s", ip,
                r->addrs[i].relay, v.mechanism);
            break;
        case SPF_SOFTFAIL:
        case SPF_NEUTRAL:
            say(r, PREFLIGHT_WARNING, "spf", domain, publish,
                "%s for %s (relay %s): %s; the record does not cover the relay",
                spf_result_name(v.result), ip, r->addrs[i].relay, v.mechanism);
            break;
        case SPF_FAIL:
            say(r, PREFLIGHT_ERROR, "spf", domain, publish,
                "fail for %s (relay %s): %s; receivers may refuse the mail", ip, r->addrs[i].relay,
                v.mechanism);
            break;
        case SPF_NONE:
            say(r, PREFLIGHT_ERROR, "spf", domain, publish, "no SPF record%s%s",
                v.why[0] ? ": " : "", v.why);
            break;
        case SPF_PERMERROR:
            /* a broken record is not mended by adding to it: a record of the relays only */
            spf_publish(r, NULL, publish, sizeof publish);
            say(r, PREFLIGHT_ERROR, "spf", domain, publish,
                "permerror for %s: %s (receivers treat the record as broken)", ip, v.why);
            break;
        case SPF_TEMPERROR:
            say(r, PREFLIGHT_ERROR, "spf", domain, NULL, "could not be evaluated for %s: %s", ip,
                v.why);
            break;
        }
    }
    return 0;
}

static int check_spf(struct run *r, struct blast_error *err)
{
    int rc;

    if (r->naddrs == 0) {
        say(r, PREFLIGHT_ERROR, "spf", r->from, NULL,
            "no relay address to check: none of the relays' hosts resolved");
        return 0;
    }
    if ((rc = check_spf_domain(r, r->from, err)) < 0)
        return rc;
    if (strcasecmp(r->envelope, r->from) != 0)
        rc = check_spf_domain(r, r->envelope, err);
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
                "no PTR name for %s (relay %s): %s; providers distrust a sending address "
                "without one (the relay's operator sets it)",
                ip, r->addrs[i].relay, x.status == DNS_FAILED ? no_answer(&x) : "none published");
            dns_records_free(&x);
            continue;
        }
        for (k = 0; k < x.n && !back; k++) {
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
                "%s (relay %s) is named %s, which does not point back to it (no matching %s "
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
    if (r->naddrs == RELAY_ADDRS_MAX)
        return;
    snprintf(r->addrs[r->naddrs].ip, sizeof r->addrs[r->naddrs].ip, "%s", ip);
    r->addrs[r->naddrs].relay = relay;
    r->naddrs++;
}

static int relay_addrs(struct run *r, struct blast_error *err)
{
    static const enum dns_rr kinds[] = {DNS_RR_A, DNS_RR_AAAA};
    size_t i, k, j;
    int rc;

    for (i = 0; i < r->c->nrelays; i++) {
        const struct campaign_relay *rl = &r->c->relays[i];
        unsigned char buf[16];
        bool found = false, failed = false;
        char why[96] = "";

        if (inet_pton(AF_INET, rl->host, buf) == 1 || inet_pton(AF_INET6, rl->host, buf) == 1) {
            add_addr(r, rl->host, rl->name);
            continue;
        }
        for (k = 0; k < 2; k++) {
            struct dns_records x;
            if ((rc = ask(r, rl->host, kinds[k], &x, err)) < 0)
                return rc;
            for (j = 0; x.status == DNS_FOUND && j < x.n; j++) {
                add_addr(r, x.v[j], rl->name);
                found = true;
            }
            if (x.status == DNS_FAILED && !failed) {
                failed = true;
                snprintf(why, sizeof why, "%s", x.why);
            }
            dns_records_free(&x);
        }
        if (!found)
            say(r, PREFLIGHT_ERROR, "dns", rl->host, NULL,
                "the relay %s's host does not resolve (%s): its address cannot be checked",
                rl->name, failed ? why : "no A or AAAA record");
    }
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
    domain_of(c->from, false, r.from, sizeof r.from);
    if (c->return_path.address != NULL) {
        const char *at = strrchr(c->return_path.address, '@');
        snprintf(r.envelope, sizeof r.envelope, "%s", at != NULL ? at + 1 : "");
        for (size_t i = 0; r.envelope[i] != '\0'; i++)
            if (r.envelope[i] >= 'A' && r.envelope[i] <= 'Z')
                r.envelope[i] = (char)(r.envelope[i] - 'A' + 'a');
    } else if (c->envelope_from != NULL) {
        domain_of(c->envelope_from, true, r.envelope, sizeof r.envelope);
    }
    if (r.envelope[0] == '\0')
        snprintf(r.envelope, sizeof r.envelope, "%s", r.from);
    memset(&dopt, 0, sizeof dopt);
    dopt.servers = o != NULL ? o->servers : NULL;
    dopt.timeout_ms = o != NULL && o->timeout_ms > 0 ? o->timeout_ms : 2000;
    dopt.tries = 2;
    dopt.max_inflight = 8;
    dopt.deadline_ms = o != NULL && o->deadline_ms > 0 ? o->deadline_ms : 30000;
    if ((rc = dns_open(&dopt, &r.d, err)) < 0)
        return rc;
    if ((rc = relay_addrs(&r, err)) < 0 || (rc = check_dkim(&r, err)) < 0 ||
        (rc = check_dmarc(&r, err)) < 0 || (rc = check_spf(&r, err)) < 0 ||
        (rc = check_ptr(&r, err)) < 0)
        goto out;
out:
    dns_close(r.d);
    return rc;
}
