/*
 * dmarc - DMARC policy records, organizational domains, alignment (RFC 7489).
 * See dmarc.h.
 */
#include "dmarc.h"
#include "taglist.h"

#include <libpsl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* §6.6.3 step 3: a DMARC record is one that starts with the v tag, value DMARC1. */
static bool starts_dmarc1(const char *s)
{
    while (is_ws(*s))
        s++;
    if (*s != 'v' && *s != 'V')
        return false;
    for (s++; is_ws(*s); s++)
        ;
    if (*s++ != '=')
        return false;
    while (is_ws(*s))
        s++;
    /* §6.3: "MUST match precisely": the ABNF spells it in %x values, so with case */
    if (strncmp(s, "DMARC1", 6) != 0)
        return false;
    for (s += 6; is_ws(*s); s++)
        ;
    return *s == ';' || *s == '\0';
}

/* The value as a C string into out (size bytes), cut when it does not fit. */
static void copy_value(const struct taglist_tag *t, char *out, size_t size)
{
    size_t n = t->valuelen < size - 1 ? t->valuelen : size - 1;

    memcpy(out, t->value, n);
    out[n] = '\0';
}

/* A policy value (§6.3 p, sp) in lower case into out[16], or false. */
static bool policy_value(const struct taglist_tag *t, char out[16])
{
    static const char *const policies[] = {"none", "quarantine", "reject"};
    size_t k;

    for (k = 0; k < sizeof policies / sizeof policies[0]; k++)
        if (taglist_value_is(t, policies[k], true)) {
            snprintf(out, 16, "%s", policies[k]);
            return true;
        }
    return false;
}

/* §6.3 adkim, aspf: "r" or "s", any case; absent is 'r'. */
static bool mode_value(const struct taglist *l, const char *name, char *out)
{
    const struct taglist_tag *t = taglist_find(l, name);

    *out = 'r';
    if (t == NULL)
        return true;
    if (t->valuelen != 1 || ((t->value[0] | 0x20) != 'r' && (t->value[0] | 0x20) != 's'))
        return false;
    *out = (char)(t->value[0] | 0x20);
    return true;
}

/* §6.3 pct: an integer 0 to 100; absent is 100. */
static bool pct_value(const struct taglist *l, int *out)
{
    const struct taglist_tag *t = taglist_find(l, "pct");
    size_t k;
    int v = 0;

    *out = 100;
    if (t == NULL)
        return true;
    if (t->valuelen == 0 || t->valuelen > 3)
        return false;
    for (k = 0; k < t->valuelen; k++) {
        if (t->value[k] < '0' || t->value[k] > '9')
            return false;
        v = v * 10 + (t->value[k] - '0');
    }
    if (v > 100)
        return false;
    *out = v;
    return true;
}

/*
 * §6.6.3 step 6: does rua name at least one syntactically valid URI? A URI here is
 * RFC 3986's scheme ":" and something after it; §6.4's "!size" suffix is allowed.
 */
static bool rua_has_uri(const struct taglist_tag *t)
{
    const char *s = t->value, *end = t->value + t->valuelen;

    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s)), *e = comma != NULL ? comma : end;
        const char *p = s;
        bool ok;
        while (p < e && is_ws(*p))
            p++;
        ok = p < e && ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z');
        for (; ok && p < e && *p != ':'; p++)
            ok = ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9') ||
                 *p == '+' || *p == '-' || *p == '.';
        if (ok && p < e && *p == ':' && p + 1 < e && !is_ws(p[1]) && p[1] != '!')
            return true;
        s = comma != NULL ? comma + 1 : end;
    }
    return false;
}

/* "name=value" as written, for why; a long value is shortened. */
static void tag_problem(char *why, size_t whysize, const struct taglist_tag *t, const char *what)
{
    snprintf(why, whysize, "%.*s=%.*s%s %s", (int)t->namelen, t->name,
             (int)(t->valuelen > 40 ? 40 : t->valuelen), t->value, t->valuelen > 40 ? "..." : "",
             what);
}

int dmarc_parse(const char *txt, struct dmarc_record *out, char *why, size_t whysize)
{
    struct dmarc_record r;
    struct taglist l;
    const struct taglist_tag *t, *rua;
    char scratch[8];

    if (why == NULL || whysize == 0) {
        why = scratch;
        whysize = sizeof scratch;
    }
    memset(&r, 0, sizeof r);
    if (txt == NULL || !starts_dmarc1(txt)) {
        snprintf(why, whysize, "does not start with v=DMARC1");
        return BLAST_EINVAL;
    }
    /* RFC 7489 §6.4: DKIM's tag-list syntax; tag names, as ABNF literals, without case */
    if (taglist_parse(txt, true, &l, why, whysize) < 0)
        return BLAST_EINVAL;
    rua = taglist_find(&l, "rua");
    if ((t = taglist_find(&l, "p")) != NULL) {
        if (!policy_value(t, r.p)) {
            tag_problem(why, whysize, t, "is not none, quarantine or reject");
            return BLAST_EINVAL;
        }
    } else if (rua != NULL && rua_has_uri(rua)) {
        /* §6.6.3 step 6.1: as if p=none were published, so that reports still flow */
        snprintf(r.p, sizeof r.p, "none");
        r.p_implied = true;
    } else {
        snprintf(why, whysize, "no p= (and no rua= to take it as p=none)");
        return BLAST_EINVAL;
    }
    if ((t = taglist_find(&l, "sp")) != NULL && !policy_value(t, r.sp)) {
        tag_problem(why, whysize, t, "is not none, quarantine or reject");
        return BLAST_EINVAL;
    }
    if (!mode_value(&l, "adkim", &r.adkim)) {
        tag_problem(why, whysize, taglist_find(&l, "adkim"), "is not r or s");
        return BLAST_EINVAL;
    }
    if (!mode_value(&l, "aspf", &r.aspf)) {
        tag_problem(why, whysize, taglist_find(&l, "aspf"), "is not r or s");
        return BLAST_EINVAL;
    }
    if (!pct_value(&l, &r.pct)) {
        tag_problem(why, whysize, taglist_find(&l, "pct"), "is not 0 to 100");
        return BLAST_EINVAL;
    }
    if (rua != NULL)
        copy_value(rua, r.rua, sizeof r.rua);
    if ((t = taglist_find(&l, "ruf")) != NULL)
        copy_value(t, r.ruf, sizeof r.ruf);
    *out = r;
    return 0;
}

int dmarc_pick(const char *const *txts, size_t n)
{
    size_t k;
    int found = -1;

    for (k = 0; k < n; k++) {
        if (txts[k] == NULL || !starts_dmarc1(txts[k]))
            continue;
        if (found >= 0)
            return -2;
        found = (int)k;
    }
    return found;
}

/* ---- organizational domains ------------------------------------------------------------ */

/*
 * The list, read once: psl_latest() takes the newer of the system's file and
 * libpsl's built-in copy. Kept for the process's life; libpsl only reads it after.
 */
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl;

static void psl_load(void)
{
    psl_ctx_t *latest = psl_latest(NULL);

    psl = latest != NULL ? latest : psl_builtin();
}

/* domain in lower case without its final dot into out (DMARC_DOMAIN_MAX), or false. */
static bool normalize(const char *domain, char *out)
{
    size_t len, k, label = 0;

    if (domain == NULL)
        return false;
    len = strlen(domain);
    if (len > 0 && domain[len - 1] == '.')
        len--;
    /* RFC 1035 §2.3.4: 253 characters in text, labels of 1 to 63 */
    if (len == 0 || len > 253)
        return false;
    for (k = 0; k < len; k++) {
        char c = domain[k];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((unsigned char)c <= ' ' || c == 0x7f || c == '@' || ++label > 63) {
            return false;
        }
        out[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[len] = '\0';
    return label > 0;
}

int dmarc_org_domain(const char *domain, char *out, size_t size, struct blast_error *err)
{
    char name[DMARC_DOMAIN_MAX];
    const char *org;
    size_t len;

    if (!normalize(domain, name))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "dmarc: '%s' is not a domain name",
                               domain != NULL ? domain : "");
    pthread_once(&psl_once, psl_load);
    if (psl == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0,
                               "dmarc: the Public Suffix List could not be loaded");
    /* §3.2: the public suffix and one label more; a suffix itself has none */
    org = psl_registrable_domain(psl, name);
    if (org == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "dmarc: %s is a public suffix: it has no organizational domain",
                               name);
    len = strlen(org);
    if (len + 1 > size)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "dmarc: the organizational domain of %s does not fit in %zu bytes",
                               name, size);
    memcpy(out, org, len + 1);
    return 0;
}

bool dmarc_aligned(const char *from_domain, const char *other_domain, char mode)
{
    char a[DMARC_DOMAIN_MAX], b[DMARC_DOMAIN_MAX], oa[DMARC_DOMAIN_MAX], ob[DMARC_DOMAIN_MAX];

    if (!normalize(from_domain, a) || !normalize(other_domain, b))
        return false;
    /* §3.1.1, §3.1.2: strict is the same name; the same name is relaxed alignment too */
    if (strcmp(a, b) == 0)
        return true;
    if (mode == 's' || mode == 'S')
        return false;
    return dmarc_org_domain(a, oa, sizeof oa, NULL) == 0 &&
           dmarc_org_domain(b, ob, sizeof ob, NULL) == 0 && strcmp(oa, ob) == 0;
}
