/*
 * dns - the mail-routing facts of recipient domains, from DNS, with c-ares: where a
 * domain's mail goes (its MX hosts, or the domain itself when it has only an address
 * record), that it takes none (a null MX, a name that does not exist, a name with no
 * record that could route mail), or that DNS could not say. And one name's records of
 * one kind (A, AAAA, MX, TXT, PTR) as text, for the checks of a sending domain's
 * authentication (spf; DKIM and DMARC records; PTR).
 *
 * Owns: the queries, sent concurrently through one c-ares channel (MX first; A and
 * AAAA only when the name exists without MX records), the verdict they make (RFC 5321
 * §5.1, RFC 7505), the bounds (names checked before any query, DNS_MX_MAX hosts a
 * name, queries in flight, a per-try timeout, a deadline for a whole call) and a cache
 * of every name answered on a struct dns, kept for its life (TTLs are not honoured:
 * one struct serves one run).
 * Does not own: what the records mean (spf, the caller), turning international names into their
 * A-label form (address), which provider a host belongs to, what becomes of a recipient whose
 * domain takes no mail (the caller), connecting to the hosts (conn), nor validating DNSSEC (the
 * resolver's job, whose answer is taken as it comes).
 *
 * A SERVFAIL or REFUSED from a server is taken as that name's answer (DNS_UNKNOWN,
 * naming the code) rather than passed to the next server: c-ares 1.18 would try the
 * others and then report only "connection refused". A server that does not answer
 * in time, or cannot be reached, is passed over for the next one, tries times each.
 *
 * Threads: one struct dns is used by one thread at a time; different ones are
 * independent. Memory grows with the distinct names asked, not with the calls.
 */
#ifndef BLAST_DNS_H
#define BLAST_DNS_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest domain name asked (RFC 1035 §2.3.4, without a trailing dot). */
#define DNS_NAME_MAX 253
/* The most MX hosts kept for one name, the most preferred first. */
#define DNS_MX_MAX 64
/* The most servers in dns_options.servers. */
#define DNS_SERVERS_MAX 16

enum dns_verdict {
    DNS_MAIL,    /* mail goes somewhere: MX records, or no MX but an address record (A or
                    AAAA), the domain itself then being the implicit MX (RFC 5321 §5.1) */
    DNS_NULL_MX, /* RFC 7505: the only MX's exchange is "." (the domain takes no mail) */
    DNS_NO_MAIL, /* the name does not exist (NXDOMAIN), has neither MX nor A nor AAAA, or
                    is not a domain name (asked without a query) */
    DNS_UNKNOWN, /* DNS did not say: a timeout, SERVFAIL, REFUSED, a malformed answer, the
                    call's deadline; callers fall back to whatever they do without DNS */
};

struct dns_mx {
    unsigned preference;
    char *host; /* lower case, no trailing dot */
};

struct dns_answer {
    enum dns_verdict verdict;
    /*
     * DNS_MAIL only: the hosts, sorted by preference then host; an MX whose exchange
     * is "." beside others is left out, and so is one whose exchange is not a host
     * name. Without MX records, the one implicit MX: the domain itself, preference 0,
     * with implicit true. NULL and 0 otherwise.
     */
    struct dns_mx *mx;
    size_t nmx;
    bool implicit;
    /*
     * Why, for every verdict but DNS_MAIL (then ""), in a few words: "NXDOMAIN", "no
     * MX, A or AAAA record", "null MX (RFC 7505)", "not a domain name", "timed out",
     * "SERVFAIL", "REFUSED", "a malformed answer", "the lookups' deadline passed"...
     */
    char why[96];
};

struct dns_options {
    /*
     * The servers, in the order they are tried: "127.0.0.1:5353", or a comma-separated
     * list of IPv4 addresses and IPv6 addresses in brackets, each with an optional
     * :PORT (53 by default): "192.0.2.1, [2001:db8::1]:5353". NULL: the system's
     * resolver configuration (/etc/resolv.conf).
     */
    const char *servers;
    long timeout_ms;  /* a try's timeout (c-ares doubles it after each round of servers);
                         0: 2000 */
    int tries;        /* tries of each server for a query; 0: 2 */
    int max_inflight; /* queries out at once; 0: 64 */
    long deadline_ms; /* a whole dns_resolve_mail() call; 0: none. Names not answered by
                         then are DNS_UNKNOWN "the lookups' deadline passed", and asked
                         again by a later call */
};

struct dns;

/*
 * A resolver with options o (NULL: every default) into *out, which the caller frees
 * with dns_close(). Errors: BLAST_EINVAL (a servers string that does not parse, saying
 * which entry; a negative or oversized number), BLAST_EIO (c-ares could not start),
 * BLAST_ENOMEM.
 */
int dns_open(const struct dns_options *o, struct dns **out, struct blast_error *err);

/* Close the channel and free the cache. Accepts NULL. */
void dns_close(struct dns *d);

/*
 * Answer each of names[0..n), concurrently, into answers[0..n), which the caller
 * allocates and frees each of with dns_answer_free(). A name is an ASCII domain name
 * (international names in their xn-- form), absolute (no search list; one trailing
 * dot allowed), matched without regard to case; one longer than DNS_NAME_MAX, with an
 * empty label, a label over 63 characters or a character other than a letter, a
 * digit, '-' or '_' is DNS_NO_MAIL "not a domain name", without a query. A name asked
 * before on d, in this call or an earlier one, is answered from the cache without a
 * query (a deadline's DNS_UNKNOWN is not kept: that name is asked again).
 * Returns 0, or BLAST_ENOMEM: answers then hold nothing to free, and this call's names
 * are asked again by the next one.
 */
int dns_resolve_mail(struct dns *d, const char *const *names, size_t n, struct dns_answer *answers,
                     struct blast_error *err);

/* Free what an answer holds and leave it empty. Accepts NULL. */
void dns_answer_free(struct dns_answer *a);

/* "mail", "null MX", "no mail", "unknown". */
const char *dns_verdict_name(enum dns_verdict v);

/* ---- records of one kind ----------------------------------------------------------------- */

/* The most records kept from one answer: an answer with more is DNS_FAILED. */
#define DNS_RECORDS_MAX 256
/* The most bytes of TXT text (all of one answer's records together) kept. */
#define DNS_TXT_MAX 65536
/* The longest reverse name dns_reverse_name() writes, with its NUL (ip6.arpa's). */
#define DNS_REVERSE_MAX 73

enum dns_rr { DNS_RR_A, DNS_RR_AAAA, DNS_RR_MX, DNS_RR_TXT, DNS_RR_PTR };

enum dns_status {
    DNS_FOUND,    /* records of the kind asked, in v[0..n) */
    DNS_NXDOMAIN, /* the name does not exist (RCODE 3), or is not a domain name (asked
                     without a query: why says "not a domain name") */
    DNS_NODATA,   /* the name exists without records of that kind (a CNAME alone counts) */
    DNS_FAILED,   /* DNS did not say: why says what happened */
};

struct dns_records {
    enum dns_status status;
    /*
     * DNS_FOUND only (NULL and 0 otherwise), each string the records' own, freed by
     * dns_records_free():
     *   A, AAAA: the address as text ("192.0.2.1", "2001:db8::1");
     *   MX: the exchange, lower case, without its trailing dot; a null MX's (RFC 7505)
     *       is "". Sorted by preference, then exchange;
     *   TXT: each record's character-strings concatenated (RFC 7208 §3.3), its bytes as
     *       they are; a record with a NUL byte cannot be one C string and is left out,
     *       so that n may be 0 when every record had one;
     *   PTR: the name, lower case, without its trailing dot.
     * Names (MX, PTR) are as c-ares writes them: a byte that is not printable, or is
     * a dot inside a label, escaped ("\\046"); dns_lookup() then takes them for names
     * that are not domain names. Records of the other kinds in the answer are left
     * out; a CNAME is followed (the records of the name it points to, when the answer
     * holds them).
     */
    char **v;
    unsigned *pref; /* MX only: v[i]'s preference */
    size_t n;
    /*
     * Why, for DNS_FAILED ("timed out", "SERVFAIL", "REFUSED", "a malformed answer",
     * "more than 256 records", "more than 65536 bytes of TXT records", "the lookups'
     * deadline passed"...) and a DNS_NXDOMAIN without a query ("not a domain name");
     * "" otherwise.
     */
    char why[96];
};

/*
 * The records of kind type of name into *out, which the caller frees with
 * dns_records_free(), synchronously: bounded by the resolver's timeout and tries, and
 * by its deadline_ms when set (a call that reaches it is DNS_FAILED "the lookups'
 * deadline passed", and not kept). name is checked as dns_resolve_mail() checks its
 * names (underscores allowed: "_dmarc.example.com", "s1._domainkey.example.com"); one
 * that is not a domain name is DNS_NXDOMAIN "not a domain name", without a query,
 * which is what asking it would come to. Answers are cached on d by name and kind,
 * failures too, but for the deadline's (dns_stats' cached counts the calls answered
 * from the cache). Returns 0 (out filled, whatever DNS said), BLAST_EINVAL (type is
 * not a dns_rr) or BLAST_ENOMEM (out then empty).
 */
int dns_lookup(struct dns *d, const char *name, enum dns_rr type, struct dns_records *out,
               struct blast_error *err);

/*
 * Bounds for the dns_lookup() calls that follow, whoever makes them (core/spf too):
 * none waits past until_ms (monotonic, 0: no such bound), and at most queries more
 * are sent (0: no such bound). A lookup past either is DNS_FAILED, "the lookups'
 * deadline passed" or "the lookups' budget was spent", and is not cached.
 */
void dns_set_limits(struct dns *d, int64_t until_ms, size_t queries);

/* Free what r holds and leave it empty. Accepts NULL. */
void dns_records_free(struct dns_records *r);

/* "A", "AAAA", "MX", "TXT", "PTR". */
const char *dns_rr_name(enum dns_rr type);

/*
 * The name under which ip's PTR records are published, into out (size bytes;
 * DNS_REVERSE_MAX are always enough): "1.2.0.192.in-addr.arpa" for "192.0.2.1", the
 * 32 nibbles under ip6.arpa for an IPv6 address (RFC 3596 §2.5). Returns 0, or
 * BLAST_EINVAL when ip is not an IPv4 or IPv6 address or out is too small ("" then
 * written when size > 0).
 */
int dns_reverse_name(const char *ip, char *out, size_t size);

/* Counters, for tests and logs, since dns_open(). */
struct dns_stats {
    size_t queries;  /* queries sent (MX, A and AAAA each count, and dns_lookup()'s;
                        c-ares' own retries do not) */
    size_t cached;   /* names answered from the cache */
    size_t timeouts; /* queries that ended timed out */
};
void dns_stats(const struct dns *d, struct dns_stats *out);

#endif
