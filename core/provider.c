/*
 * provider - mailbox providers by their MX hosts, and their pace. See provider.h.
 */
#include "provider.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The shipped table (docs/campaign.md, "Providers"). The host names are those the
 * providers publish for the domains they host (their own and their customers'); the
 * rates are where a sender with an established reputation starts, not a provider's
 * published limit (none publishes one): a provider that finds a sender too fast says
 * so with 421 or 4.7.x replies, which slow the relay down (docs/delivery.md).
 */
static const struct {
    const char *name;
    const char *mx[6];
    double rate;
} shipped[] = {
    {"google", {"google.com", "googlemail.com", NULL}, 50},
    {"microsoft", {"outlook.com", "hotmail.com", NULL}, 50},
    {"yahoo", {"yahoodns.net", NULL}, 20},
    {"apple", {"icloud.com", "me.com", NULL}, 20},
    {"mailru", {"mail.ru", NULL}, 20},
    {"yandex", {"yandex.net", "yandex.ru", NULL}, 20},
    {"gmx", {"gmx.net", "web.de", "1und1.de", "ionos.com", NULL}, 20},
    {"zoho", {"zoho.com", "zoho.eu", "zohomail.com", NULL}, 20},
    {"proton", {"protonmail.ch", NULL}, 20},
    {"fastmail", {"messagingengine.com", NULL}, 20},
};

#define NSHIPPED (sizeof shipped / sizeof shipped[0])

bool provider_shipped(const char *name)
{
    size_t i;

    for (i = 0; i < NSHIPPED; i++)
        if (strcmp(shipped[i].name, name) == 0)
            return true;
    return false;
}

const char *provider_suggest(const char *name)
{
    const char *best = NULL;
    size_t i, d, least = 3; /* at most two edits away */

    for (i = 0; i < NSHIPPED; i++)
        if ((d = text_edit_distance(name, shipped[i].name)) < least) {
            least = d;
            best = shipped[i].name;
        }
    return best;
}

void provider_table_free(struct provider_table *t)
{
    size_t i, k;

    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++) {
        free(t->p[i].name);
        for (k = 0; k < t->p[i].nmx; k++)
            free(t->p[i].mx[k]);
        free(t->p[i].mx);
    }
    free(t->p);
    t->p = NULL;
    t->n = 0;
}

/* A copy of names[0..n) into p->mx, lower-case, without a final dot. */
static int set_mx(struct provider *p, const char *const *names, size_t n)
{
    size_t k;

    for (k = 0; k < p->nmx; k++)
        free(p->mx[k]);
    free(p->mx);
    p->nmx = 0;
    if ((p->mx = calloc(n ? n : 1, sizeof *p->mx)) == NULL)
        return BLAST_ENOMEM;
    for (k = 0; k < n; k++) {
        size_t len = strlen(names[k]), i;
        char *m;
        if (len > 0 && names[k][len - 1] == '.')
            len--;
        if ((m = strndup(names[k], len)) == NULL)
            return BLAST_ENOMEM;
        for (i = 0; i < len; i++)
            if (m[i] >= 'A' && m[i] <= 'Z')
                m[i] = (char)(m[i] - 'A' + 'a');
        p->mx[p->nmx++] = m;
    }
    return 0;
}

static struct provider *find(struct provider_table *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (strcmp(t->p[i].name, name) == 0)
            return &t->p[i];
    return NULL;
}

int provider_table_load(const struct campaign *c, struct provider_table *t, struct blast_error *err)
{
    size_t i, nc = c != NULL ? c->nproviders : 0, n;
    int rc = 0;

    t->n = 0;
    if ((t->p = calloc(NSHIPPED + nc, sizeof *t->p)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < NSHIPPED; i++) {
        struct provider *p = &t->p[t->n++];
        for (n = 0; shipped[i].mx[n] != NULL; n++)
            ;
        p->shipped = true;
        p->rate = shipped[i].rate;
        if ((p->name = strdup(shipped[i].name)) == NULL ||
            set_mx(p, (const char *const *)shipped[i].mx, n) < 0)
            goto nomem;
    }
    for (i = 0; i < nc; i++) {
        const struct campaign_provider *cp = &c->providers[i];
        struct provider *p = find(t, cp->name);
        if (p == NULL && cp->mx == NULL && !cp->off) {
            const char *near = provider_suggest(cp->name);
            rc = blast_error_set(err, BLAST_EINVAL, c->path, cp->place.line, cp->place.column,
                                 "'providers': '%s' is not a provider blast knows%s%s%s; give "
                                 "its 'mx' host names to make it one",
                                 cp->name, near != NULL ? " (did you mean '" : "",
                                 near != NULL ? near : "", near != NULL ? "'?)" : "");
            goto fail;
        }
        if (p == NULL) {
            p = &t->p[t->n++];
            if ((p->name = strdup(cp->name)) == NULL)
                goto nomem;
        }
        if (cp->mx != NULL && set_mx(p, (const char *const *)cp->mx, cp->nmx) < 0)
            goto nomem;
        if (cp->rate.set)
            p->rate = cp->rate.per_second;
        if (cp->off && set_mx(p, NULL, 0) < 0) /* nothing is its own: its domains count alone */
            goto nomem;
    }
    return 0;
nomem:
    rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
fail:
    provider_table_free(t);
    return rc;
}

/* Whether host (a final dot allowed) is name or under it, case-insensitively. */
static bool under(const char *host, size_t len, const char *name)
{
    size_t n = strlen(name);

    if (len < n || strncasecmp(host + len - n, name, n) != 0)
        return false;
    return len == n || host[len - n - 1] == '.';
}

long provider_match(const struct provider_table *t, const char *const *hosts, size_t n)
{
    size_t h, i, k;

    for (h = 0; h < n; h++) {
        size_t len = strlen(hosts[h]);
        if (len > 0 && hosts[h][len - 1] == '.')
            len--;
        for (i = 0; i < t->n; i++)
            for (k = 0; k < t->p[i].nmx; k++)
                if (under(hosts[h], len, t->p[i].mx[k]))
                    return (long)i;
    }
    return -1;
}

struct provider_routes {
    struct provider_route *r;
    size_t n;
};

static int route_cmp(const void *a, const void *b)
{
    return strcmp(((const struct provider_route *)a)->domain,
                  ((const struct provider_route *)b)->domain);
}

void provider_routes_free(struct provider_routes *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        free((char *)r->r[i].domain);
    free(r->r);
    free(r);
}

int provider_routes_build(const struct provider_table *t, struct dns *d, const char *const *domains,
                          size_t n, struct provider_routes **out, struct blast_error *err)
{
    struct provider_routes *r = calloc(1, sizeof *r);
    struct dns_answer *a = calloc(n ? n : 1, sizeof *a);
    const char **hosts = NULL;
    size_t i, k;
    int rc = 0;

    *out = NULL;
    if (r == NULL || a == NULL || (r->r = calloc(n ? n : 1, sizeof *r->r)) == NULL ||
        (hosts = calloc(DNS_MX_MAX, sizeof *hosts)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = dns_resolve_mail(d, domains, n, a, err)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        struct provider_route *x = &r->r[r->n];
        if ((x->domain = strdup(domains[i])) == NULL) {
            rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto out;
        }
        r->n++;
        x->verdict = a[i].verdict;
        x->provider = -1;
        snprintf(x->why, sizeof x->why, "%s", a[i].why);
        for (k = 0; k < a[i].nmx && k < DNS_MX_MAX; k++)
            hosts[k] = a[i].mx[k].host;
        if (a[i].verdict == DNS_MAIL)
            x->provider = provider_match(t, hosts, k);
    }
    qsort(r->r, r->n, sizeof *r->r, route_cmp);
    *out = r;
    r = NULL;
out:
    for (i = 0; a != NULL && i < n; i++)
        dns_answer_free(&a[i]);
    free(a);
    free(hosts);
    provider_routes_free(r);
    return rc;
}

const struct provider_route *provider_routes_get(const struct provider_routes *r,
                                                 const char *domain)
{
    struct provider_route key = {domain, -1, DNS_UNKNOWN, ""};

    if (r == NULL || r->n == 0)
        return NULL;
    return bsearch(&key, r->r, r->n, sizeof *r->r, route_cmp);
}

size_t provider_routes_count(const struct provider_routes *r)
{
    return r != NULL ? r->n : 0;
}

const struct provider_route *provider_routes_at(const struct provider_routes *r, size_t i)
{
    return &r->r[i];
}
