/*
 * spf - Sender Policy Framework (RFC 7208): whether an IP address may send mail for a
 * domain, by check_host() (§4) over the domain's published SPF record, with its
 * includes and redirects.
 *
 * Owns: choosing the record among the domain's TXT records (§4.5), its syntax (§12:
 * every term checked before any is evaluated, as §4.6 requires), the mechanisms and
 * modifiers (§5, §6), macro expansion (§7), the limits (§4.6.4: 10 terms that cause
 * DNS queries over the whole evaluation, 2 void lookups, 10 MX names, 10 PTR names)
 * and the verdict in words.
 * Does not own: the queries (dns: its servers, timeouts, deadline and cache; a
 * failure there is a temperror here), explanations (exp= is parsed and checked, its
 * text never fetched: the check is not an SMTP server rejecting a message), the HELO
 * identity (we check MAIL FROM's domain; %{h} expands to the sender's domain), nor
 * what blast check makes of the verdict.
 *
 * Threads: a call uses d, which is one thread's at a time (dns.h).
 */
#ifndef BLAST_SPF_H
#define BLAST_SPF_H

#include "dns.h"
#include "error.h"

#include <stddef.h>

enum spf_result {
    SPF_NONE,      /* no SPF record, the domain does not exist, or is not a domain name */
    SPF_NEUTRAL,   /* ?qualifier, or no term matched and no redirect= */
    SPF_PASS,      /* the address may send */
    SPF_FAIL,      /* -qualifier: it may not */
    SPF_SOFTFAIL,  /* ~qualifier: probably not */
    SPF_TEMPERROR, /* DNS failed (timeout, SERVFAIL, the resolver's deadline...) */
    SPF_PERMERROR, /* the record cannot be evaluated: syntax, two records, the limits */
};

struct spf_verdict {
    enum spf_result result;
    /* the checked domain's own SPF record as published ("" when none; cut at 511
       bytes) */
    char record[512];
    /*
     * The term that decided, as written, with the path to it through includes and
     * redirects: "ip4:127.0.0.0/8", "include:_spf.example.net -> ip4:192.0.2.0/24",
     * "redirect=_spf.example.net -> -all", "-all", or "default neutral (no term
     * matched)". For an error, the path to the term where it arose ("" when the record
     * itself is at fault at the top).
     */
    char mechanism[256];
    /*
     * For none, temperror and permerror, in plain words: "no SPF record", "more than 10
     * DNS lookups (RFC 7208 §4.6.4)", "two SPF records (RFC 7208 §4.5)",
     * "include:x.test has no SPF record", "looking up the TXT records of x.test: timed
     * out", "unknown mechanism 'ip5'"; an error in an included record's syntax names
     * that domain first ("x.test: unknown mechanism 'ip5'"). "" otherwise.
     */
    char why[256];
    int lookups; /* the terms that cause DNS queries evaluated (at most 10, §4.6.4) */
};

/*
 * check_host(ip, domain, sender) of RFC 7208 §4 into *out: ip an IPv4 or IPv6 address
 * as text (an IPv4-mapped IPv6 address is taken as its IPv4 address, §5); domain the
 * domain whose record is evaluated; sender the MAIL FROM address, for macros
 * (NULL: "postmaster@" domain; one without '@' or with an empty local part gets
 * "postmaster" for its local part, §4.3). Every query goes through d, within its
 * timeouts and deadline (each dns_lookup() call has its own), and its cache.
 * Returns 0 whatever the result (out filled), BLAST_EINVAL (ip is not an address, no
 * domain, a sender over 320 bytes) or BLAST_ENOMEM.
 */
int spf_check(struct dns *d, const char *ip, const char *domain, const char *sender,
              struct spf_verdict *out, struct blast_error *err);

/* "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror". */
const char *spf_result_name(enum spf_result r);

/*
 * Whether text is an SPF record as RFC 7208 writes them: v=spf1, then terms of §12's
 * syntax. 0 yes, 1 no (why says what, as spf_check()'s permerrors do), BLAST_ENOMEM.
 * No lookup: for checking a record before it is published, and for tests.
 */
int spf_parse(const char *text, char *why, size_t size);

/*
 * The macro-string spec expanded as check_host(ip, domain, sender) expands a term's
 * domain-spec (RFC 7208 §7), into out (size bytes): to show what a term asks, and for
 * tests. %{p} asks d for ip's validated name (d NULL: "unknown"); names are not cut to
 * 253 characters, as they are before a query. Returns 0, BLAST_ESYNTAX (not a
 * macro-string, a letter that only explanations may use, a 0 transformer: err says
 * which), BLAST_EINVAL (ip, domain or sender as for spf_check(); the text longer than
 * size - 1) or BLAST_ENOMEM.
 */
int spf_expand(struct dns *d, const char *spec, const char *ip, const char *domain,
               const char *sender, char *out, size_t size, struct blast_error *err);

#endif
