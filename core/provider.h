/*
 * provider - the mailbox providers that host the mail of many domains, known by the
 * host names of their MX records, and the pace blast keeps for each
 * (docs/campaign.md, "Providers").
 *
 * Owns: the shipped table (each provider's name, the MX host names that make it, its
 * default rate, and why), the campaign's changes to it (`providers:` in the
 * campaign: another rate, a provider of its own, one switched off), and which
 * provider a domain's MX hosts belong to. A Google Workspace domain's MX is
 * aspmx.l.google.com like gmail.com's, so both are Google's, and share its pace.
 * The routes of a list's domains (provider_routes): each domain's provider and DNS
 * verdict, looked up once before a run (core/dns) and read by the pool's threads.
 * Does not own: the DNS queries (core/dns), keeping the pace (core/ratelimit,
 * core/pool), what becomes of a recipient whose domain takes no mail (send).
 *
 * Ownership: a struct provider_table owns its entries and strings;
 * provider_table_free() releases them.
 */
#ifndef BLAST_PROVIDER_H
#define BLAST_PROVIDER_H

#include "campaign.h"
#include "dns.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>

struct provider {
    char *name;
    char **mx; /* host names or parent domains: "google.com" makes aspmx.l.google.com */
    size_t nmx;
    double rate; /* messages a second handed to the relays for its domains; 0: no pace */
    bool shipped;
};

struct provider_table {
    struct provider *p;
    size_t n;
};

/*
 * The shipped table, with the campaign's changes (c->providers; c may be NULL).
 * Errors: BLAST_EINVAL (a change that names no shipped provider and gives no mx,
 * naming it and its place), BLAST_ENOMEM.
 */
int provider_table_load(const struct campaign *c, struct provider_table *t,
                        struct blast_error *err);

void provider_table_free(struct provider_table *t);

/* Whether name is a shipped provider's. */
bool provider_shipped(const char *name);

/* The shipped provider nearest to name (a misspelling), or NULL. */
const char *provider_suggest(const char *name);

/*
 * The provider of a domain whose MX hosts are hosts[0..n), most preferred first: the
 * first host that is one of a provider's (equal to one of its names, or under it,
 * case-insensitively, a final dot ignored). Its index in t, or -1 for none.
 */
long provider_match(const struct provider_table *t, const char *const *hosts, size_t n);

/* A recipient domain as DNS answered for it: its provider, and whether it takes mail. */
struct provider_route {
    const char *domain; /* lower case, A-label form; owned by the map */
    long provider;      /* index in the table, -1: none (or DNS did not say) */
    enum dns_verdict verdict;
    char why[96]; /* for DNS_NULL_MX, DNS_NO_MAIL, DNS_UNKNOWN: dns_answer.why */
};

/* The routes of a list's domains: made once before a run, read by every thread. */
struct provider_routes;

/*
 * Look domains[0..n) up through d and match each to a provider of t (t and the
 * strings are the caller's; the routes copy the names). Errors: BLAST_ENOMEM.
 */
int provider_routes_build(const struct provider_table *t, struct dns *d, const char *const *domains,
                          size_t n, struct provider_routes **out, struct blast_error *err);

/* The route of domain (lower case), or NULL for a domain not looked up. */
const struct provider_route *provider_routes_get(const struct provider_routes *r,
                                                 const char *domain);

/* Routes 0 .. provider_routes_count() - 1, sorted by domain. */
size_t provider_routes_count(const struct provider_routes *r);
const struct provider_route *provider_routes_at(const struct provider_routes *r, size_t i);

void provider_routes_free(struct provider_routes *r);

#endif
