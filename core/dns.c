/*
 * dns - mail-routing facts of domains from DNS, with c-ares. See dns.h.
 *
 * Every name asked is an entry of the cache, an open-addressing table keyed by
 * SipHash under a random key (the names come from recipient lists: nobody can make
 * them collide). A call marks the entries it must ask, then runs c-ares' event loop
 * (poll() over the sockets c-ares reports through its socket-state callback, with
 * ares_timeout()), sending new queries while fewer than max_inflight are out: the A
 * and AAAA queries of names whose MX query came back empty first, then the MX query of
 * the next name. Callbacks only record; nothing is sent from inside c-ares.
 *
 * dns_lookup()'s entries share the table and the loop: their key is the kind's prefix
 * and the name ("txt:example.com"; a colon is never in a name, so they never meet a
 * mail entry), and they send one query, of their kind. Their answers are read by our
 * own walk over the message rather than c-ares' ares_parse_*_reply(): one walk serves
 * the five kinds, follows a CNAME by its owner name, sees a TXT string's NUL bytes,
 * and bounds what is kept.
 */
#include "dns.h"
#include "addrset.h"
#include "timeutil.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_TRIES      2
#define DEFAULT_INFLIGHT   64
#define CACHE_MIN          64
#define WHY_DEADLINE       "the lookups' deadline passed"
#define WHY_BUDGET         "the lookups' budget was spent"
#define WHY_SIZE           sizeof(((struct dns_answer *)NULL)->why)

enum qtype { Q_MX, Q_A, Q_AAAA, Q_REC, Q_N }; /* Q_REC: a dns_lookup() entry's one query */

enum state {
    ST_NEW,    /* not asked yet, or a call was cut short before its answer */
    ST_QUEUED, /* to be asked by this call */
    ST_ASKING, /* queries out */
    ST_DONE,   /* answered: e->ans holds the answer */
};

/* What an A or AAAA query said. */
enum addr { ADDR_WAITING, ADDR_YES, ADDR_NO, ADDR_ERROR };

struct entry;

/* A query's callback argument: no allocation per query. */
struct slot {
    struct dns *d;
    struct entry *e;
    enum qtype type;
};

struct entry {
    char *name;        /* lower case, no trailing dot: the key */
    const char *qname; /* the name asked: name, past a record entry's prefix */
    int rr;            /* a record entry's enum dns_rr; -1 for a mail entry */
    uint64_t hash;
    enum state state;
    unsigned long call; /* the call that queued it ... */
    size_t first;       /* ... for its names[first] */
    bool want[2];       /* A, AAAA still to be sent */
    enum addr addr[2];  /* what A and AAAA said */
    char addr_why[WHY_SIZE];
    struct dns_answer ans;
    struct dns_records rec; /* a record entry's answer */
    struct entry *next;     /* in d->follow */
    struct slot slot[Q_N];
};

struct dns {
    ares_channel ch;
    int max_inflight;
    long deadline_ms;
    uint8_t key[16];
    struct entry **table; /* the cache */
    size_t cap, count;
    struct dns_stats stats;
    /* the sockets c-ares has open and what it waits for; a copy to poll */
    struct pollfd *socks, *polled;
    size_t nsocks, socks_cap;
    bool broken; /* a socket could not be recorded: every call fails */
    int inflight;
    unsigned long call;
    struct entry *follow, *follow_tail; /* names whose A and AAAA are to be sent */
    bool nomem;                         /* in this call */
    int64_t until;                      /* dns_set_limits(): no lookup past it; 0: none */
    size_t budget;                      /* dns_set_limits(): queries dns_lookup may send */
};

/* ---- names --------------------------------------------------------------------------------- */

/*
 * The cache key of name (lower case, without its one trailing dot) into key
 * (DNS_NAME_MAX + 1 bytes); false when it is not a domain name.
 */
static bool domain_key(const char *name, char *key)
{
    size_t len = strlen(name), i, label = 0;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            label++;
        } else if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
            label++;
        } else {
            return false;
        }
        if (label > 63)
            return false;
        key[i] = c;
    }
    key[len] = '\0';
    return label > 0;
}

const char *dns_verdict_name(enum dns_verdict v)
{
    switch (v) {
    case DNS_MAIL:
        return "mail";
    case DNS_NULL_MX:
        return "null MX";
    case DNS_NO_MAIL:
        return "no mail";
    case DNS_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

/* A failed query's status in a few words. */
static const char *failure(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        return "timed out";
    case ARES_ESERVFAIL:
        return "SERVFAIL";
    case ARES_EREFUSED:
        return "REFUSED";
    case ARES_EFORMERR:
        return "FORMERR";
    case ARES_ENOTIMP:
        return "NOTIMP";
    case ARES_EBADRESP:
    case ARES_EBADNAME:
        return "a malformed answer";
    case ARES_ECONNREFUSED:
        return "connection refused";
    case ARES_ENOMEM:
        return "out of memory";
    default:
        return ares_strerror(status);
    }
}

/* ---- answers ------------------------------------------------------------------------------- */

void dns_answer_free(struct dns_answer *a)
{
    size_t i;

    if (a == NULL)
        return;
    for (i = 0; i < a->nmx; i++)
        free(a->mx[i].host);
    free(a->mx);
    memset(a, 0, sizeof *a);
}

/* A deep copy of from into to. Returns 0 or BLAST_ENOMEM (to then empty). */
static int answer_copy(struct dns_answer *to, const struct dns_answer *from)
{
    *to = *from;
    to->mx = NULL;
    to->nmx = 0;
    if (from->nmx == 0)
        return 0;
    to->mx = calloc(from->nmx, sizeof *to->mx);
    if (to->mx == NULL)
        return BLAST_ENOMEM;
    for (; to->nmx < from->nmx; to->nmx++) {
        to->mx[to->nmx].preference = from->mx[to->nmx].preference;
        to->mx[to->nmx].host = strdup(from->mx[to->nmx].host);
        if (to->mx[to->nmx].host == NULL) {
            dns_answer_free(to);
            return BLAST_ENOMEM;
        }
    }
    return 0;
}

static void settle(struct entry *e, enum dns_verdict v, const char *why)
{
    e->ans.verdict = v;
    snprintf(e->ans.why, sizeof e->ans.why, "%s", why);
    e->state = ST_DONE;
}

/* The name has only address records: itself is its MX (RFC 5321 §5.1). */
static void settle_implicit(struct dns *d, struct entry *e)
{
    e->ans.mx = calloc(1, sizeof *e->ans.mx);
    if (e->ans.mx == NULL || (e->ans.mx[0].host = strdup(e->name)) == NULL) {
        free(e->ans.mx);
        e->ans.mx = NULL;
        d->nomem = true;
        settle(e, DNS_UNKNOWN, "out of memory");
        return;
    }
    e->ans.nmx = 1;
    e->ans.implicit = true;
    settle(e, DNS_MAIL, "");
}

static int mx_order(const void *a, const void *b)
{
    const struct dns_mx *x = a, *y = b;

    if (x->preference != y->preference)
        return x->preference < y->preference ? -1 : 1;
    return strcmp(x->host, y->host);
}

/* Send the A and AAAA queries of e when a slot is free. */
static void want_addresses(struct dns *d, struct entry *e)
{
    e->want[0] = e->want[1] = true;
    e->next = NULL;
    if (d->follow_tail != NULL)
        d->follow_tail->next = e;
    else
        d->follow = e;
    d->follow_tail = e;
}

/* An MX answer with records: the hosts, a null MX, or nothing usable. */
static void mx_records(struct dns *d, struct entry *e, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *list = NULL, *r;
    struct dns_mx *mx = NULL;
    size_t n = 0, total = 0, nulls = 0, i;
    char host[DNS_NAME_MAX + 1];
    int st;

    st = ares_parse_mx_reply(abuf, alen, &list);
    if (st == ARES_ENODATA || (st == ARES_SUCCESS && list == NULL)) {
        /* the answer held only a CNAME: no MX record */
        want_addresses(d, e);
        return;
    }
    if (st != ARES_SUCCESS) {
        if (st == ARES_ENOMEM)
            d->nomem = true;
        settle(e, DNS_UNKNOWN, st == ARES_ENOMEM ? "out of memory" : "a malformed answer");
        return;
    }
    for (r = list; r != NULL; r = r->next)
        total++;
    mx = calloc(total, sizeof *mx);
    if (mx == NULL)
        goto nomem;
    for (r = list; r != NULL; r = r->next) {
        if (r->host[0] == '\0' || strcmp(r->host, ".") == 0) {
            nulls++;
            continue;
        }
        /* c-ares writes other bytes escaped ("\\046"): not a host to connect to */
        if (!domain_key(r->host, host))
            continue;
        mx[n].preference = r->priority;
        mx[n].host = strdup(host);
        if (mx[n].host == NULL)
            goto nomem;
        n++;
    }
    ares_free_data(list);
    list = NULL;
    if (n == 0) {
        free(mx);
        if (nulls == total)
            settle(e, DNS_NULL_MX, "null MX (RFC 7505)");
        else
            settle(e, DNS_UNKNOWN, "no MX host is a host name");
        return;
    }
    qsort(mx, n, sizeof *mx, mx_order);
    for (i = DNS_MX_MAX; i < n; i++)
        free(mx[i].host);
    e->ans.mx = mx;
    e->ans.nmx = n < DNS_MX_MAX ? n : DNS_MX_MAX;
    e->ans.implicit = false;
    settle(e, DNS_MAIL, "");
    return;

nomem:
    if (mx != NULL)
        for (i = 0; i < n; i++)
            free(mx[i].host);
    free(mx);
    ares_free_data(list);
    d->nomem = true;
    settle(e, DNS_UNKNOWN, "out of memory");
}

static void on_mx(struct dns *d, struct entry *e, int status, const unsigned char *abuf, int alen)
{
    switch (status) {
    case ARES_SUCCESS:
        mx_records(d, e, abuf, alen);
        break;
    case ARES_ENODATA:
        want_addresses(d, e);
        break;
    case ARES_ENOTFOUND:
        settle(e, DNS_NO_MAIL, "NXDOMAIN");
        break;
    default:
        if (status == ARES_ENOMEM)
            d->nomem = true;
        settle(e, DNS_UNKNOWN, failure(status));
        break;
    }
}

/* Whether an A (which 0) or AAAA (1) answer holds an address, past any CNAME. */
static enum addr addresses(int which, const unsigned char *abuf, int alen)
{
    struct ares_addrttl a[1];
    struct ares_addr6ttl a6[1];
    int n = 1, st;

    st = which == 0 ? ares_parse_a_reply(abuf, alen, NULL, a, &n)
                    : ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
    if (st == ARES_SUCCESS || st == ARES_ENODATA)
        return st == ARES_SUCCESS && n > 0 ? ADDR_YES : ADDR_NO;
    return ADDR_ERROR;
}

static void on_address(struct dns *d, struct entry *e, int which, int status,
                       const unsigned char *abuf, int alen)
{
    const char *why = NULL;

    if (status == ARES_SUCCESS) {
        e->addr[which] = addresses(which, abuf, alen);
        if (e->addr[which] == ADDR_ERROR)
            why = "a malformed answer";
    } else if (status == ARES_ENODATA || status == ARES_ENOTFOUND) {
        e->addr[which] = ADDR_NO;
    } else {
        if (status == ARES_ENOMEM)
            d->nomem = true;
        e->addr[which] = ADDR_ERROR;
        why = failure(status);
    }
    if (why != NULL && e->addr_why[0] == '\0')
        snprintf(e->addr_why, sizeof e->addr_why, "%s", why);
    if (e->addr[which] == ADDR_YES) {
        /* one is enough: the other, if still out, is ignored when it comes back */
        settle_implicit(d, e);
        return;
    }
    if (e->addr[0] == ADDR_WAITING || e->addr[1] == ADDR_WAITING)
        return;
    if (e->addr[0] == ADDR_NO && e->addr[1] == ADDR_NO)
        settle(e, DNS_NO_MAIL, "no MX, A or AAAA record");
    else
        settle(e, DNS_UNKNOWN, e->addr_why);
}

/* ---- records of one kind ------------------------------------------------------------------- */

static const struct {
    const char *name, *prefix; /* the prefix of its entries' keys */
    int type;
} kinds[] = {
    [DNS_RR_A] = {"A", "a:", ns_t_a},         [DNS_RR_AAAA] = {"AAAA", "aaaa:", ns_t_aaaa},
    [DNS_RR_MX] = {"MX", "mx:", ns_t_mx},     [DNS_RR_TXT] = {"TXT", "txt:", ns_t_txt},
    [DNS_RR_PTR] = {"PTR", "ptr:", ns_t_ptr},
};

#define KEY_PREFIX_MAX 5
_Static_assert(DNS_RECORDS_MAX == 256 && DNS_TXT_MAX == 65536, "the whys below name them");

const char *dns_rr_name(enum dns_rr type)
{
    if ((unsigned)type >= sizeof kinds / sizeof *kinds)
        return "?";
    return kinds[type].name;
}

void dns_records_free(struct dns_records *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    free(r->pref);
    memset(r, 0, sizeof *r);
}

static int records_copy(struct dns_records *to, const struct dns_records *from)
{
    *to = *from;
    to->v = NULL;
    to->pref = NULL;
    to->n = 0;
    if (from->status != DNS_FOUND || from->n == 0)
        return 0;
    to->v = calloc(from->n, sizeof *to->v);
    if (to->v == NULL)
        goto nomem;
    if (from->pref != NULL) {
        to->pref = malloc(from->n * sizeof *to->pref);
        if (to->pref == NULL)
            goto nomem;
        memcpy(to->pref, from->pref, from->n * sizeof *to->pref);
    }
    for (; to->n < from->n; to->n++)
        if ((to->v[to->n] = strdup(from->v[to->n])) == NULL)
            goto nomem;
    return 0;
nomem:
    dns_records_free(to);
    return BLAST_ENOMEM;
}

/* One resource record of a message, as the walk finds it. */
struct rr {
    char *owner; /* c-ares' allocation */
    int type;
    const unsigned char *rdata;
    size_t rdlen;
};

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The name at p into *name (ares_free_string()); false when it runs off the message. */
static bool name_at(const unsigned char *p, const unsigned char *abuf, int alen, char **name,
                    size_t *used)
{
    long len;

    if (ares_expand_name(p, abuf, alen, name, &len) != ARES_SUCCESS)
        return false;
    *used = (size_t)len;
    return true;
}

/*
 * The answer section's record at *off (advanced past it) into *rr. False when the
 * message is malformed.
 */
static bool rr_next(const unsigned char *abuf, int alen, size_t *off, struct rr *rr)
{
    size_t used;

    rr->owner = NULL;
    if (!name_at(abuf + *off, abuf, alen, &rr->owner, &used))
        return false;
    *off += used;
    if (*off + 10 > (size_t)alen)
        goto bad;
    rr->type = (int)get16(abuf + *off);
    rr->rdlen = get16(abuf + *off + 8);
    rr->rdata = abuf + *off + 10;
    *off += 10;
    if (*off + rr->rdlen > (size_t)alen)
        goto bad;
    *off += rr->rdlen;
    return true;
bad:
    ares_free_string(rr->owner);
    rr->owner = NULL;
    return false;
}

/* The offset of the answer section, past the questions; 0 when malformed. */
static size_t answers_at(const unsigned char *abuf, int alen, size_t *count)
{
    size_t off = HFIXEDSZ, q, used;

    if (alen < HFIXEDSZ)
        return 0;
    *count = get16(abuf + 6);
    for (q = get16(abuf + 4); q > 0; q--) {
        char *name;

        if (!name_at(abuf + off, abuf, alen, &name, &used))
            return 0;
        ares_free_string(name);
        off += used + QFIXEDSZ;
        if (off > (size_t)alen)
            return 0;
    }
    return off;
}

/* Lower case in place (names compare without regard to case; c-ares keeps the wire's). */
static void lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* One record's rdata as text into *out (malloc'd; NULL: left out). Returns a why or NULL. */
static const char *rdata_text(enum dns_rr type, const struct rr *rr, const unsigned char *abuf,
                              int alen, char **out, unsigned *pref)
{
    char buf[INET6_ADDRSTRLEN], *name;
    size_t used, i, len;
    const unsigned char *p;

    *out = NULL;
    switch (type) {
    case DNS_RR_A:
    case DNS_RR_AAAA:
        if (rr->rdlen != (type == DNS_RR_A ? 4u : 16u) ||
            inet_ntop(type == DNS_RR_A ? AF_INET : AF_INET6, rr->rdata, buf, sizeof buf) == NULL)
            return "a malformed answer";
        *out = strdup(buf);
        break;
    case DNS_RR_MX:
    case DNS_RR_PTR:
        p = rr->rdata;
        if (type == DNS_RR_MX) {
            if (rr->rdlen < 3)
                return "a malformed answer";
            *pref = get16(p);
            p += 2;
        }
        if (!name_at(p, abuf, alen, &name, &used))
            return "a malformed answer";
        if ((size_t)(p - rr->rdata) + used != rr->rdlen) {
            ares_free_string(name);
            return "a malformed answer";
        }
        /* c-ares 1.18 writes the root as "" (a null MX's exchange); keep it so */
        lower(name);
        *out = strdup(strcmp(name, ".") == 0 ? "" : name);
        ares_free_string(name);
        break;
    case DNS_RR_TXT:
        /* RFC 7208 §3.3: the character-strings joined without anything between */
        for (i = 0, len = 0; i < rr->rdlen; i += 1 + rr->rdata[i])
            len += rr->rdata[i];
        if (i != rr->rdlen)
            return "a malformed answer";
        *out = malloc(len + 1);
        if (*out == NULL)
            break;
        for (i = 0, len = 0; i < rr->rdlen; i += 1 + rr->rdata[i]) {
            memcpy(*out + len, rr->rdata + i + 1, rr->rdata[i]);
            len += rr->rdata[i];
        }
        (*out)[len] = '\0';
        if (strlen(*out) != len) {
            free(*out);
            *out = NULL;
            return NULL; /* a NUL inside: left out (dns.h) */
        }
        return NULL;
    }
    return *out == NULL ? "out of memory" : NULL;
}

/*
 * The records of kind type for qname in an answer (rcode 0) into r: DNS_FOUND or
 * DNS_NODATA, or the why of a DNS_FAILED (r then empty).
 */
static const char *records_parse(const unsigned char *abuf, int alen, const char *qname,
                                 enum dns_rr type, struct dns_records *r)
{
    size_t start, count, off, i, txt = 0, cap, matched = 0;
    char *owner = NULL;
    const char *why = NULL;
    struct rr rr = {0};
    int hops;

    start = answers_at(abuf, alen, &count);
    if (start == 0)
        return "a malformed answer";
    owner = strdup(qname);
    if (owner == NULL)
        return "out of memory";
    /* follow CNAMEs from the name asked, in whatever order they come */
    for (hops = 0; hops < 16; hops++) {
        bool moved = false;

        for (off = start, i = 0; i < count && !moved; i++) {
            if (!rr_next(abuf, alen, &off, &rr))
                goto malformed;
            if (rr.type == ns_t_cname && strcasecmp(rr.owner, owner) == 0) {
                char *target;
                size_t used;

                if (!name_at(rr.rdata, abuf, alen, &target, &used))
                    goto malformed;
                free(owner);
                owner = strdup(target);
                ares_free_string(target);
                if (owner == NULL) {
                    why = "out of memory";
                    goto out;
                }
                moved = true;
            }
            ares_free_string(rr.owner);
            rr.owner = NULL;
        }
        if (!moved)
            break;
    }
    cap = count < DNS_RECORDS_MAX ? count : DNS_RECORDS_MAX;
    if (cap > 0) {
        r->v = calloc(cap, sizeof *r->v);
        if (r->v == NULL ||
            (type == DNS_RR_MX && (r->pref = calloc(cap, sizeof *r->pref)) == NULL)) {
            why = "out of memory";
            goto out;
        }
    }
    for (off = start, i = 0; i < count; i++) {
        char *text;
        unsigned pref = 0;

        if (!rr_next(abuf, alen, &off, &rr))
            goto malformed;
        if (rr.type != kinds[type].type || strcasecmp(rr.owner, owner) != 0) {
            ares_free_string(rr.owner);
            rr.owner = NULL;
            continue;
        }
        ares_free_string(rr.owner);
        rr.owner = NULL;
        matched++;
        if (r->n == DNS_RECORDS_MAX) {
            why = "more than 256 records";
            goto out;
        }
        if ((why = rdata_text(type, &rr, abuf, alen, &text, &pref)) != NULL)
            goto out;
        if (text == NULL)
            continue;
        txt += strlen(text);
        if (type == DNS_RR_TXT && txt > DNS_TXT_MAX) {
            free(text);
            why = "more than 65536 bytes of TXT records";
            goto out;
        }
        if (r->pref != NULL)
            r->pref[r->n] = pref;
        r->v[r->n++] = text;
    }
    /* MX by preference, then exchange: the order does not depend on the server's */
    for (i = 1; type == DNS_RR_MX && i < r->n; i++) {
        size_t j = i;

        while (j > 0 && (r->pref[j - 1] > r->pref[j] ||
                         (r->pref[j - 1] == r->pref[j] && strcmp(r->v[j - 1], r->v[j]) > 0))) {
            char *t = r->v[j];
            unsigned p = r->pref[j];

            r->v[j] = r->v[j - 1];
            r->pref[j] = r->pref[j - 1];
            r->v[j - 1] = t;
            r->pref[j - 1] = p;
            j--;
        }
    }
    if (matched == 0) {
        /* nothing of the kind: a CNAME alone, or records of other kinds */
        dns_records_free(r);
        r->status = DNS_NODATA;
    } else {
        r->status = DNS_FOUND;
    }
    goto out;

malformed:
    why = "a malformed answer";
out:
    ares_free_string(rr.owner);
    free(owner);
    if (why != NULL)
        dns_records_free(r);
    return why;
}

static void on_record(struct dns *d, struct entry *e, int status, const unsigned char *abuf,
                      int alen)
{
    const char *why = NULL;

    switch (status) {
    case ARES_SUCCESS:
        why = records_parse(abuf, alen, e->qname, (enum dns_rr)e->rr, &e->rec);
        break;
    case ARES_ENODATA:
        e->rec.status = DNS_NODATA;
        break;
    case ARES_ENOTFOUND:
        e->rec.status = DNS_NXDOMAIN;
        break;
    default:
        why = failure(status);
        break;
    }
    if (why != NULL) {
        if (strcmp(why, "out of memory") == 0 || status == ARES_ENOMEM)
            d->nomem = true;
        e->rec.status = DNS_FAILED;
        snprintf(e->rec.why, sizeof e->rec.why, "%s", why);
    }
    e->state = ST_DONE;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct slot *s = arg;
    struct dns *d = s->d;
    struct entry *e = s->e;

    (void)timeouts;
    d->inflight--;
    /* the deadline (ares_cancel) or dns_close (ares_destroy): nothing to record */
    if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION)
        return;
    if (status == ARES_ETIMEOUT)
        d->stats.timeouts++;
    if (e->state != ST_ASKING)
        return;
    if (s->type == Q_REC)
        on_record(d, e, status, abuf, alen);
    else if (s->type == Q_MX)
        on_mx(d, e, status, abuf, alen);
    else
        on_address(d, e, s->type == Q_A ? 0 : 1, status, abuf, alen);
}

/* ---- the cache ----------------------------------------------------------------------------- */

static struct entry *cache_find(const struct dns *d, const char *key, uint64_t h)
{
    size_t i = (size_t)h & (d->cap - 1);

    for (; d->table[i] != NULL; i = (i + 1) & (d->cap - 1))
        if (d->table[i]->hash == h && strcmp(d->table[i]->name, key) == 0)
            return d->table[i];
    return NULL;
}

static int cache_grow(struct dns *d)
{
    size_t cap = d->cap * 2, i, j;
    struct entry **t = calloc(cap, sizeof *t);

    if (t == NULL)
        return BLAST_ENOMEM;
    for (i = 0; i < d->cap; i++) {
        if (d->table[i] == NULL)
            continue;
        for (j = (size_t)d->table[i]->hash & (cap - 1); t[j] != NULL; j = (j + 1) & (cap - 1))
            ;
        t[j] = d->table[i];
    }
    free(d->table);
    d->table = t;
    d->cap = cap;
    return 0;
}

/*
 * The entry of key, made when there is none: a record entry of kind rr (-1: a mail
 * entry) whose name starts skip bytes into key. NULL when out of memory.
 */
static struct entry *cache_entry(struct dns *d, const char *key, int rr, size_t skip)
{
    uint64_t h = addrset_siphash(d->key, key, strlen(key));
    struct entry *e = cache_find(d, key, h);
    size_t i;
    int k;

    if (e != NULL)
        return e;
    if ((d->count + 1) * 2 > d->cap && cache_grow(d) != 0)
        return NULL;
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->name = strdup(key)) == NULL) {
        free(e);
        return NULL;
    }
    e->hash = h;
    e->rr = rr;
    e->qname = e->name + skip;
    for (k = 0; k < Q_N; k++) {
        e->slot[k].d = d;
        e->slot[k].e = e;
        e->slot[k].type = (enum qtype)k;
    }
    for (i = (size_t)h & (d->cap - 1); d->table[i] != NULL; i = (i + 1) & (d->cap - 1))
        ;
    d->table[i] = e;
    d->count++;
    return e;
}

/* ---- c-ares -------------------------------------------------------------------------------- */

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_status = ARES_SUCCESS;

/* ares_library_init() is not thread-safe and does nothing on Linux but count: done once. */
static void library_init(void)
{
    library_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* c-ares says which sockets it wants watched, and for what. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    short events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
    size_t i;

    for (i = 0; i < d->nsocks; i++) {
        if (d->socks[i].fd != fd)
            continue;
        if (events == 0)
            d->socks[i] = d->socks[--d->nsocks];
        else
            d->socks[i].events = events;
        return;
    }
    if (events == 0)
        return;
    if (d->nsocks == d->socks_cap) {
        size_t cap = d->socks_cap * 2;
        struct pollfd *s = realloc(d->socks, cap * sizeof *s), *p;

        if (s == NULL) {
            d->broken = true;
            return;
        }
        d->socks = s;
        p = realloc(d->polled, cap * sizeof *p);
        if (p == NULL) {
            d->broken = true;
            return;
        }
        d->polled = p;
        d->socks_cap = cap;
    }
    d->socks[d->nsocks].fd = fd;
    d->socks[d->nsocks].events = events;
    d->socks[d->nsocks].revents = 0;
    d->nsocks++;
}

static void send_query(struct dns *d, struct entry *e, enum qtype type)
{
    static const int rrtype[Q_REC] = {ns_t_mx, ns_t_a, ns_t_aaaa};

    d->inflight++;
    d->stats.queries++;
    /* the callback may run at once (out of memory, no server): it only records */
    ares_query(d->ch, e->qname, ns_c_in, type == Q_REC ? kinds[e->rr].type : rrtype[type],
               on_answer, &e->slot[type]);
}

/* Send queries while slots are free: A and AAAA first, then the next name's MX. */
static void launch(struct dns *d, struct entry **which, size_t n, size_t *next)
{
    while (d->inflight < d->max_inflight) {
        struct entry *e = d->follow;

        if (e != NULL) {
            int k = e->want[0] ? 0 : 1;

            e->want[k] = false;
            if (!e->want[0] && !e->want[1]) {
                d->follow = e->next;
                if (d->follow == NULL)
                    d->follow_tail = NULL;
                e->next = NULL;
            }
            /* settled meanwhile by its other address query: nothing to ask */
            if (e->state == ST_ASKING)
                send_query(d, e, k == 0 ? Q_A : Q_AAAA);
            continue;
        }
        while (*next < n && (which[*next] == NULL || which[*next]->state != ST_QUEUED))
            (*next)++;
        if (*next == n)
            return;
        e = which[*next];
        e->state = ST_ASKING;
        send_query(d, e, e->rr < 0 ? Q_MX : Q_REC);
    }
}

/* Milliseconds to wait for: what c-ares asks for, within the deadline. */
static int wait_ms(struct dns *d, int64_t now, int64_t deadline)
{
    struct timeval max, tv, *t;
    int64_t ms;

    if (deadline != 0) {
        ms = deadline - now;
        max.tv_sec = (time_t)(ms / 1000);
        max.tv_usec = (suseconds_t)(ms % 1000 * 1000);
        t = ares_timeout(d->ch, &max, &tv);
    } else {
        t = ares_timeout(d->ch, NULL, &tv);
    }
    if (t == NULL)
        return 1000;
    ms = (int64_t)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
    return ms > 60000 ? 60000 : (int)ms;
}

/*
 * Run queries until every name in which[] is answered, or the deadline passes or
 * the loop fails: then the rest are cancelled, and the reason is returned (NULL when
 * everything was answered).
 */
static const char *run(struct dns *d, struct entry **which, size_t n, int64_t deadline, char *why,
                       size_t size)
{
    size_t next = 0, polled, i;

    for (;;) {
        int64_t now;
        int ready;

        if (d->broken || d->nomem) {
            d->nomem = true;
            snprintf(why, size, "out of memory");
            break;
        }
        now = timeutil_mono_ms();
        if (deadline != 0 && now >= deadline) {
            snprintf(why, size, WHY_DEADLINE);
            break;
        }
        launch(d, which, n, &next);
        if (d->inflight == 0)
            return NULL;
        polled = d->nsocks;
        memcpy(d->polled, d->socks, polled * sizeof *d->polled);
        ready = poll(d->polled, (nfds_t)polled, wait_ms(d, now, deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            snprintf(why, size, "poll() failed: %s", strerror(errno));
            break;
        }
        if (ready == 0) {
            ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        /* the callbacks may change d->socks, never the copy that was polled */
        for (i = 0; i < polled; i++) {
            short r = d->polled[i].revents;

            if (r == 0)
                continue;
            ares_process_fd(d->ch,
                            (r & (POLLIN | POLLERR | POLLHUP)) ? d->polled[i].fd : ARES_SOCKET_BAD,
                            (r & POLLOUT) ? d->polled[i].fd : ARES_SOCKET_BAD);
        }
    }
    /* every callback runs now, with ARES_ECANCELLED */
    ares_cancel(d->ch);
    d->follow = d->follow_tail = NULL;
    return why;
}

/* ---- the interface ------------------------------------------------------------------------- */

/* One entry of servers ("ADDRESS", "ADDRESS:PORT", "[IPV6]", "[IPV6]:PORT") into node. */
static bool parse_server(const char *item, size_t len, struct ares_addr_port_node *node)
{
    char buf[64], *host = buf, *port = NULL, *end;
    unsigned long p = 53;

    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, item, len);
    buf[len] = '\0';
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');

        if (close == NULL)
            return false;
        *close = '\0';
        host = buf + 1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return false;
        node->family = AF_INET6;
    } else {
        char *colon = strchr(buf, ':');

        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            *colon = '\0';
            port = colon + 1;
        }
        /* two colons or more: an IPv6 address without brackets, so without a port */
        node->family = colon != NULL && port == NULL ? AF_INET6 : AF_INET;
    }
    if (inet_pton(node->family, host,
                  node->family == AF_INET ? (void *)&node->addr.addr4
                                          : (void *)&node->addr.addr6) != 1)
        return false;
    if (port != NULL) {
        if (port[0] < '0' || port[0] > '9')
            return false;
        errno = 0;
        p = strtoul(port, &end, 10);
        if (errno != 0 || *end != '\0' || p == 0 || p > 65535)
            return false;
    }
    node->udp_port = node->tcp_port = (int)p;
    return true;
}

static void free_servers(struct ares_addr_port_node *list)
{
    while (list != NULL) {
        struct ares_addr_port_node *next = list->next;

        free(list);
        list = next;
    }
}

/* The servers string as c-ares' list, in its order. */
static int parse_servers(const char *s, struct ares_addr_port_node **out, struct blast_error *err)
{
    struct ares_addr_port_node *head = NULL, **tail = &head;
    const char *p = s;
    size_t count = 0;
    int rc = 0;

    for (;;) {
        const char *end = strchr(p, ','), *a, *b;
        struct ares_addr_port_node *node;

        if (end == NULL)
            end = p + strlen(p);
        for (a = p; a < end && (*a == ' ' || *a == '\t'); a++)
            ;
        for (b = end; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
            ;
        if (++count > DNS_SERVERS_MAX) {
            rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                 "dns servers '%s': at most %d servers", s, DNS_SERVERS_MAX);
            goto out;
        }
        node = calloc(1, sizeof *node);
        if (node == NULL) {
            rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto out;
        }
        *tail = node;
        tail = &node->next;
        if (!parse_server(a, (size_t)(b - a), node)) {
            if (b == a)
                rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                     "dns servers '%s': an empty entry", s);
            else
                rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                     "dns servers: '%.*s' is not an IP address with an optional "
                                     ":PORT (1-65535; IPv6 in brackets: [::1]:53)",
                                     (int)(b - a > 100 ? 100 : b - a), a);
            goto out;
        }
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *out = head;
    head = NULL;
out:
    free_servers(head);
    return rc;
}

int dns_open(const struct dns_options *o, struct dns **out, struct blast_error *err)
{
    static const struct dns_options defaults;
    struct ares_addr_port_node *servers = NULL;
    struct ares_options ao;
    struct dns *d = NULL;
    int st, rc = 0;

    *out = NULL;
    if (o == NULL)
        o = &defaults;
    if (o->timeout_ms < 0 || o->timeout_ms > INT_MAX || o->tries < 0 || o->max_inflight < 0 ||
        o->deadline_ms < 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "dns: the timeout (%ld ms), tries (%d), queries at once (%d) and "
                               "deadline (%ld ms) must be 0 (the default) or more",
                               o->timeout_ms, o->tries, o->max_inflight, o->deadline_ms);
    if (o->servers != NULL && (rc = parse_servers(o->servers, &servers, err)) != 0)
        return rc;
    pthread_once(&library_once, library_init);
    if (library_status != ARES_SUCCESS) {
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "dns: c-ares did not start: %s",
                             ares_strerror(library_status));
        goto out;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL)
        goto nomem;
    d->max_inflight = o->max_inflight > 0 ? o->max_inflight : DEFAULT_INFLIGHT;
    d->deadline_ms = o->deadline_ms;
    if (getrandom(d->key, sizeof d->key, 0) != (ssize_t)sizeof d->key)
        memset(d->key, 0x5a, sizeof d->key); /* predictable, still correct */
    d->cap = CACHE_MIN;
    d->table = calloc(d->cap, sizeof *d->table);
    d->socks_cap = 4;
    d->socks = calloc(d->socks_cap, sizeof *d->socks);
    d->polled = calloc(d->socks_cap, sizeof *d->polled);
    if (d->table == NULL || d->socks == NULL || d->polled == NULL)
        goto nomem;

    memset(&ao, 0, sizeof ao);
    /* absolute names; a server's SERVFAIL or REFUSED is its answer (dns.h) */
    ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP;
    ao.timeout = o->timeout_ms > 0 ? (int)o->timeout_ms : DEFAULT_TIMEOUT_MS;
    ao.tries = o->tries > 0 ? o->tries : DEFAULT_TRIES;
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = d;
    st = ares_init_options(
        &d->ch, &ao, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (st != ARES_SUCCESS) {
        d->ch = NULL;
        if (st == ARES_ENOMEM)
            goto nomem;
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "dns: c-ares did not start: %s",
                             ares_strerror(st));
        goto out;
    }
    if (servers != NULL && (st = ares_set_servers_ports(d->ch, servers)) != ARES_SUCCESS) {
        if (st == ARES_ENOMEM)
            goto nomem;
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "dns: c-ares took no servers: %s",
                             ares_strerror(st));
        goto out;
    }
    *out = d;
    d = NULL;
    goto out;

nomem:
    rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
out:
    free_servers(servers);
    dns_close(d);
    return rc;
}

void dns_close(struct dns *d)
{
    size_t i;

    if (d == NULL)
        return;
    if (d->ch != NULL)
        ares_destroy(d->ch);
    if (d->table != NULL) {
        for (i = 0; i < d->cap; i++) {
            struct entry *e = d->table[i];

            if (e == NULL)
                continue;
            dns_answer_free(&e->ans);
            dns_records_free(&e->rec);
            free(e->name);
            free(e);
        }
    }
    free(d->table);
    free(d->socks);
    free(d->polled);
    free(d);
}

void dns_stats(const struct dns *d, struct dns_stats *out)
{
    *out = d->stats;
}

/* Make e ready to be asked: nothing of an earlier, unfinished lookup left. */
static void entry_reset(struct entry *e)
{
    dns_answer_free(&e->ans);
    dns_records_free(&e->rec);
    e->state = ST_NEW;
    e->want[0] = e->want[1] = false;
    e->addr[0] = e->addr[1] = ADDR_WAITING;
    e->addr_why[0] = '\0';
    e->next = NULL;
}

int dns_resolve_mail(struct dns *d, const char *const *names, size_t n, struct dns_answer *answers,
                     struct blast_error *err)
{
    struct entry **which = NULL;
    int64_t deadline = d->deadline_ms > 0 ? timeutil_mono_ms() + d->deadline_ms : 0;
    char key[DNS_NAME_MAX + 1], why[sizeof answers->why];
    const char *cut;
    size_t i, cached = 0;
    int rc = 0;

    if (n == 0)
        return 0;
    memset(answers, 0, n * sizeof *answers);
    d->call++;
    d->nomem = false;
    which = calloc(n, sizeof *which);
    if (which == NULL)
        goto nomem;
    for (i = 0; i < n; i++) {
        struct entry *e;

        if (!domain_key(names[i], key)) {
            answers[i].verdict = DNS_NO_MAIL;
            snprintf(answers[i].why, sizeof answers[i].why, "not a domain name");
            continue;
        }
        e = cache_entry(d, key, -1, 0);
        if (e == NULL)
            goto nomem;
        if (e->state == ST_NEW) {
            entry_reset(e);
            e->state = ST_QUEUED;
            e->call = d->call;
            e->first = i;
        }
        which[i] = e;
    }

    cut = run(d, which, n, deadline, why, sizeof why);
    if (d->nomem)
        goto nomem;
    for (i = 0; i < n; i++) {
        struct entry *e = which[i];

        if (e == NULL)
            continue;
        if (e->state != ST_DONE) {
            answers[i].verdict = DNS_UNKNOWN;
            snprintf(answers[i].why, sizeof answers[i].why, "%s", cut != NULL ? cut : "no answer");
            continue;
        }
        if (answer_copy(&answers[i], &e->ans) != 0)
            goto nomem;
        if (e->call != d->call || e->first != i)
            cached++;
    }
    d->stats.cached += cached;
    goto out;

nomem:
    rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < n; i++)
        dns_answer_free(&answers[i]);
    /* this call's lookups are not kept: some may hold "out of memory" for an answer */
    for (i = 0; which != NULL && i < n; i++)
        if (which[i] != NULL && which[i]->call == d->call)
            entry_reset(which[i]);
out:
    /* lookups cut short are asked again by a later call */
    for (i = 0; which != NULL && i < n; i++)
        if (which[i] != NULL && which[i]->state != ST_DONE)
            entry_reset(which[i]);
    free(which);
    return rc;
}

void dns_set_limits(struct dns *d, int64_t until_ms, size_t queries)
{
    d->until = until_ms;
    d->budget = queries > 0 ? d->stats.queries + queries : 0;
}

int dns_lookup(struct dns *d, const char *name, enum dns_rr type, struct dns_records *out,
               struct blast_error *err)
{
    char key[KEY_PREFIX_MAX + DNS_NAME_MAX + 1], why[sizeof out->why];
    int64_t deadline = d->deadline_ms > 0 ? timeutil_mono_ms() + d->deadline_ms : 0;
    size_t skip;
    struct entry *e;
    const char *cut = NULL;
    bool asked = false;
    int rc = 0;

    memset(out, 0, sizeof *out);
    if ((unsigned)type >= sizeof kinds / sizeof *kinds)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "dns: record kind %d", (int)type);
    skip = strlen(kinds[type].prefix);
    memcpy(key, kinds[type].prefix, skip);
    if (!domain_key(name, key + skip)) {
        out->status = DNS_NXDOMAIN;
        snprintf(out->why, sizeof out->why, "not a domain name");
        return 0;
    }
    d->call++;
    d->nomem = false;
    e = cache_entry(d, key, (int)type, skip);
    if (e == NULL)
        goto nomem;
    if (d->until != 0 && (deadline == 0 || d->until < deadline))
        deadline = d->until;
    if (e->state == ST_NEW && d->budget != 0 && d->stats.queries >= d->budget) {
        /* the caller's budget spent: not asked (and asked again by a later call) */
        out->status = DNS_FAILED;
        snprintf(out->why, sizeof out->why, "%s", WHY_BUDGET);
        goto out;
    }
    if (e->state == ST_NEW && deadline != 0 && timeutil_mono_ms() >= deadline) {
        out->status = DNS_FAILED;
        snprintf(out->why, sizeof out->why, "%s", WHY_DEADLINE);
        goto out;
    }
    if (e->state == ST_NEW) {
        entry_reset(e);
        e->state = ST_QUEUED;
        e->call = d->call;
        e->first = 0;
        asked = true;
        cut = run(d, &e, 1, deadline, why, sizeof why);
    }
    if (d->nomem)
        goto nomem;
    if (e->state != ST_DONE) {
        out->status = DNS_FAILED;
        snprintf(out->why, sizeof out->why, "%s", cut != NULL ? cut : "no answer");
        entry_reset(e); /* asked again by a later call */
        goto out;
    }
    if (records_copy(out, &e->rec) != 0)
        goto nomem;
    if (!asked)
        d->stats.cached++;
    goto out;

nomem:
    rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    dns_records_free(out);
    /* not kept when asked now: its answer may be "out of memory" */
    if (e != NULL && (e->state != ST_DONE || asked))
        entry_reset(e);
out:
    return rc;
}

int dns_reverse_name(const char *ip, char *out, size_t size)
{
    unsigned char a[16];
    size_t len = 0, i;
    int n;

    if (size > 0)
        out[0] = '\0';
    if (inet_pton(AF_INET, ip, a) == 1) {
        n = snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        if (n < 0 || (size_t)n >= size)
            goto small;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, a) != 1)
        return BLAST_EINVAL;
    /* RFC 3596 §2.5: the nibbles from the lowest, each a label */
    if (size < DNS_REVERSE_MAX)
        goto small;
    for (i = 16; i > 0; i--) {
        static const char hex[] = "0123456789abcdef";

        out[len++] = hex[a[i - 1] & 0xf];
        out[len++] = '.';
        out[len++] = hex[a[i - 1] >> 4];
        out[len++] = '.';
    }
    memcpy(out + len, "ip6.arpa", sizeof "ip6.arpa");
    return 0;
small:
    if (size > 0)
        out[0] = '\0';
    return BLAST_EINVAL;
}
