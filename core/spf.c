/*
 * spf - RFC 7208 check_host() over core/dns. See spf.h.
 *
 * A record is parsed whole into terms first (§4.6: a syntax error anywhere is a
 * permerror before anything is evaluated), then its terms are evaluated in order, an
 * include or a redirect by a nested check_host() sharing the evaluation's counts.
 * Nesting is bounded by the lookup limit (each include and redirect counts before it
 * recurses) and, in case that ever changes, by DEPTH_MAX.
 *
 * Not libspf2 (Debian's libspf2-2): it resolves only through the system resolver, so
 * it could neither be pointed at a test server nor kept within our deadline.
 */
#include "spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOOKUPS_MAX 10 /* RFC 7208 §4.6.4 */
#define VOIDS_MAX   2  /* RFC 7208 §4.6.4 */
#define MX_MAX      10 /* RFC 7208 §4.6.4 */
#define PTR_MAX     10 /* RFC 7208 §4.6.4 */
#define DEPTH_MAX   12
#define EXPAND_MAX  2048 /* a domain-spec's expansion, before the cut to 253 bytes */
#define VALUE_MAX   1024 /* a macro's value: the sender, a domain, an address */
#define SENDER_MAX  320
#define TEXT_MAX    256

struct ip {
    int family; /* AF_INET (b[0..4)) or AF_INET6 */
    unsigned char b[16];
};

/* One evaluation: what the macros read, and the counts of §4.6.4. */
struct eval {
    struct dns *d;
    struct blast_error *err;
    struct ip ip;
    char sender[SENDER_MAX + 16], local[SENDER_MAX + 16], sdomain[SENDER_MAX + 16];
    int lookups, voids;
};

/* What a check_host() level says. */
struct hop {
    enum spf_result result;
    char mech[TEXT_MAX];
    char why[TEXT_MAX];
};

enum kind { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct term {
    const char *text; /* as written */
    char qual;        /* '+', '-', '~' or '?' */
    enum kind kind;
    const char *spec; /* the domain-spec, NULL when none */
    size_t speclen;
    int cidr4, cidr6; /* -1 when not given */
    struct ip net;    /* ip4, ip6 */
};

struct record {
    char *buf; /* the record's copy, its terms NUL-terminated in place */
    struct term *terms;
    size_t n;
    const char *redirect; /* redirect='s domain-spec, or NULL */
    size_t redirect_len;
};

enum match { NO_MATCH, MATCH, ERROR };

const char *spf_result_name(enum spf_result r)
{
    switch (r) {
    case SPF_NONE:
        return "none";
    case SPF_NEUTRAL:
        return "neutral";
    case SPF_PASS:
        return "pass";
    case SPF_FAIL:
        return "fail";
    case SPF_SOFTFAIL:
        return "softfail";
    case SPF_TEMPERROR:
        return "temperror";
    case SPF_PERMERROR:
        return "permerror";
    }
    return "none";
}

static enum match fail(struct hop *h, enum spf_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record an error result with its why. */
static enum match fail(struct hop *h, enum spf_result r, const char *fmt, ...)
{
    va_list ap;

    h->result = r;
    va_start(ap, fmt);
    vsnprintf(h->why, sizeof h->why, fmt, ap);
    va_end(ap);
    return ERROR;
}

/* ---- addresses ----------------------------------------------------------------------------- */

/* ip as text into *out; an IPv4-mapped IPv6 address is its IPv4 address (RFC 7208 §5). */
static bool ip_parse(const char *text, struct ip *out)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->b) == 1) {
        out->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->b) != 1)
        return false;
    out->family = AF_INET6;
    if (memcmp(out->b, mapped, sizeof mapped) == 0) {
        memmove(out->b, out->b + 12, 4);
        memset(out->b + 4, 0, 12);
        out->family = AF_INET;
    }
    return true;
}

/* Whether a and b share their first bits bits (same family). */
static bool cidr_match(const struct ip *a, const struct ip *b, int bits)
{
    int i;

    if (a->family != b->family)
        return false;
    for (i = 0; bits >= 8; i++, bits -= 8)
        if (a->b[i] != b->b[i])
            return false;
    return bits == 0 || ((a->b[i] ^ b->b[i]) & (0xff00 >> bits)) == 0;
}

/* ---- names --------------------------------------------------------------------------------- */

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 7208 §12 toplabel: letters, digits, inner hyphens; not all digits without a hyphen. */
static bool toplabel(const char *s, size_t len)
{
    bool alpha = false, hyphen = false;
    size_t i;

    if (len == 0 || len > 63 || !alnum(s[0]) || !alnum(s[len - 1]))
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] == '-')
            hyphen = true;
        else if (!alnum(s[i]))
            return false;
        else if (!(s[i] >= '0' && s[i] <= '9'))
            alpha = true;
    }
    return alpha || hyphen;
}

/* RFC 7208 §4.3: a domain check_host() can evaluate: labels of 1 to 63 bytes, at least
   two of them, 253 bytes at most without the one trailing dot allowed. */
static bool domain_ok(const char *s)
{
    size_t len = strlen(s), label = 0, labels = 0, i;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    for (i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63)
                return false;
            labels++;
            label = 0;
        } else {
            label++;
        }
    }
    return labels >= 2;
}

/* RFC 7208 §7.3: a name over 253 bytes loses labels on its left until it fits. */
static const char *cut_name(const char *s)
{
    while (strlen(s) > DNS_NAME_MAX) {
        const char *dot = strchr(s, '.');

        if (dot == NULL)
            break;
        s = dot + 1;
    }
    return s;
}

/* Whether name is domain or a name under it, without regard to case. */
static bool same_or_under(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);

    if (d > 0 && domain[d - 1] == '.')
        d--;
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == d)
        return strncasecmp(name, domain, d) == 0;
    return n > d && name[n - d - 1] == '.' && strncasecmp(name + n - d, domain, d) == 0;
}

/* ---- macros (RFC 7208 §7) ------------------------------------------------------------------ */

static bool delimiter(char c)
{
    return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/*
 * Whether s[0..len) is a macro-string (§7.1); with domain, also a domain-spec: it
 * ends in "." toplabel (a trailing dot allowed) or a macro-expand. exp_letters allows
 * c, r and t (§7.2: explanations only; our unknown modifiers too, never expanded).
 * The problem into why.
 */
static bool macro_string_ok(const char *s, size_t len, bool domain, bool exp_letters, char *why,
                            size_t size)
{
    size_t i = 0, literal = 0; /* where the literal text after the last macro starts */

    while (i < len) {
        unsigned char c = (unsigned char)s[i];

        if (c != '%') {
            if (c < 0x21 || c > 0x7e) {
                snprintf(why, size, "a byte 0x%02x in '%.*s'", c, (int)len, s);
                return false;
            }
            i++;
            continue;
        }
        if (i + 1 < len && (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '-')) {
            i += 2;
            literal = i;
            continue;
        }
        if (i + 1 >= len || s[i + 1] != '{') {
            snprintf(why, size, "a '%%' that is not a macro in '%.*s' (RFC 7208 §7.1)", (int)len,
                     s);
            return false;
        }
        {
            size_t j = i + 2, digits = 0;
            char letter = j < len ? (char)tolower((unsigned char)s[j]) : '\0';
            bool zero = true;

            if (letter == '\0' || strchr("slodiphcrtv", letter) == NULL) {
                snprintf(why, size, "an unknown macro in '%.*s' (RFC 7208 §7.2)", (int)len, s);
                return false;
            }
            if (!exp_letters && strchr("crt", letter) != NULL) {
                snprintf(why, size, "macro '%c' in '%.*s' is for explanations only (RFC 7208 §7.2)",
                         s[j], (int)len, s);
                return false;
            }
            for (j++; j < len && s[j] >= '0' && s[j] <= '9'; j++, digits++)
                if (s[j] != '0')
                    zero = false;
            if (digits > 0 && zero) {
                snprintf(why, size, "a macro keeping 0 parts in '%.*s' (RFC 7208 §7.3)", (int)len,
                         s);
                return false;
            }
            if (j < len && (s[j] == 'r' || s[j] == 'R'))
                j++;
            while (j < len && delimiter(s[j]))
                j++;
            if (j >= len || s[j] != '}') {
                snprintf(why, size, "a macro not closed by '}' in '%.*s' (RFC 7208 §7.1)", (int)len,
                         s);
                return false;
            }
            i = j + 1;
            literal = i;
        }
    }
    if (!domain || (literal == len && len > 0))
        return true;
    /* "." toplabel ["."] at the end, the dot being literal text too */
    {
        size_t end = len, start;

        if (end > literal && s[end - 1] == '.')
            end--;
        start = end;
        while (start > literal && s[start - 1] != '.')
            start--;
        if (start > literal && toplabel(s + start, end - start))
            return true;
    }
    snprintf(why, size, "'%.*s' is not a domain (RFC 7208 §7.1)", (int)len, s);
    return false;
}

/* Append n bytes of s to out (at *len, size bytes); false when they do not fit. */
static bool put(char *out, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + n >= size)
        return false;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return true;
}

static int validated_name(struct eval *ev, const char *target, bool for_ptr, char *out, size_t size,
                          bool *matched, enum dns_status *ptrs);

/* A macro letter's value (§7.3) into buf. Returns 0 or BLAST_ENOMEM. */
static int macro_value(struct eval *ev, char letter, const char *domain, char *buf, size_t size)
{
    size_t i, n = 0;
    enum dns_status ptrs;
    bool matched;

    switch (letter) {
    case 's':
        snprintf(buf, size, "%s", ev->sender);
        break;
    case 'l':
        snprintf(buf, size, "%s", ev->local);
        break;
    case 'o':
    case 'h': /* no HELO identity here (spf.h) */
        snprintf(buf, size, "%s", ev->sdomain);
        break;
    case 'd':
        snprintf(buf, size, "%s", domain);
        break;
    case 'v':
        snprintf(buf, size, "%s", ev->ip.family == AF_INET ? "in-addr" : "ip6");
        break;
    case 'i':
        if (ev->ip.family == AF_INET) {
            inet_ntop(AF_INET, ev->ip.b, buf, (socklen_t)size);
            break;
        }
        /* §7.3: an IPv6 address as dot-separated nibbles, the highest first */
        for (i = 0; i < 16 && n + 4 < size; i++) {
            static const char hex[] = "0123456789abcdef";

            buf[n++] = hex[ev->ip.b[i] >> 4];
            buf[n++] = '.';
            buf[n++] = hex[ev->ip.b[i] & 0xf];
            buf[n++] = '.';
        }
        buf[n > 0 ? n - 1 : 0] = '\0';
        break;
    case 'p':
        if (ev->d == NULL) {
            snprintf(buf, size, "unknown");
            break;
        }
        return validated_name(ev, domain, false, buf, size, &matched, &ptrs);
    default:
        buf[0] = '\0';
        break;
    }
    return 0;
}

/*
 * spec[0..len) expanded for domain into out (size bytes). Returns 0, 1 when the text
 * does not fit, or BLAST_ENOMEM. spec was checked by macro_string_ok().
 */
static int expand(struct eval *ev, const char *spec, size_t len, const char *domain, char *out,
                  size_t size)
{
    char value[VALUE_MAX], *parts[VALUE_MAX + 1];
    size_t i = 0, o = 0;
    int rc;

    out[0] = '\0';
    while (i < len) {
        size_t j, nparts = 0, keep = 0, k, first;
        char letter, delims[8] = "";
        bool reverse = false, upper;

        if (spec[i] != '%') {
            if (!put(out, size, &o, spec + i, 1))
                return 1;
            i++;
            continue;
        }
        if (spec[i + 1] != '{') {
            const char *s = spec[i + 1] == '%' ? "%" : spec[i + 1] == '_' ? " " : "%20";

            if (!put(out, size, &o, s, strlen(s)))
                return 1;
            i += 2;
            continue;
        }
        j = i + 2;
        upper = spec[j] >= 'A' && spec[j] <= 'Z';
        letter = (char)tolower((unsigned char)spec[j++]);
        for (; spec[j] >= '0' && spec[j] <= '9'; j++)
            if (keep < 10000)
                keep = keep * 10 + (size_t)(spec[j] - '0');
        if (spec[j] == 'r' || spec[j] == 'R') {
            reverse = true;
            j++;
        }
        for (k = 0; delimiter(spec[j]); j++)
            if (k < sizeof delims - 1 && strchr(delims, spec[j]) == NULL)
                delims[k++] = spec[j];
        i = j + 1; /* past '}' */
        if ((rc = macro_value(ev, letter, domain, value, sizeof value)) != 0)
            return rc;
        if (delims[0] == '\0')
            delims[0] = '.';
        /* §7.3: split on the delimiters, reverse, keep the rightmost parts, join by dots */
        parts[nparts++] = value;
        for (k = 0; value[k] != '\0'; k++)
            if (strchr(delims, value[k]) != NULL) {
                value[k] = '\0';
                parts[nparts++] = value + k + 1;
            }
        if (reverse)
            for (k = 0; k < nparts / 2; k++) {
                char *t = parts[k];

                parts[k] = parts[nparts - 1 - k];
                parts[nparts - 1 - k] = t;
            }
        first = keep > 0 && keep < nparts ? nparts - keep : 0;
        for (k = first; k < nparts; k++) {
            const char *p;

            if (k > first && !put(out, size, &o, ".", 1))
                return 1;
            for (p = parts[k]; *p != '\0'; p++) {
                char esc[4];
                bool plain = alnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~';

                /* §7.3: an upper-case letter URL-escapes all but the unreserved characters */
                if (upper && !plain) {
                    snprintf(esc, sizeof esc, "%%%02X", (unsigned char)*p);
                    if (!put(out, size, &o, esc, 3))
                        return 1;
                } else if (!put(out, size, &o, p, 1)) {
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* ---- parsing ------------------------------------------------------------------------------- */

static void record_free(struct record *r)
{
    free(r->buf);
    free(r->terms);
    memset(r, 0, sizeof *r);
}

/* A CIDR length "0" or without a leading zero, at most max; -1 when not one. */
static int cidr_len(const char *s, size_t len, int max)
{
    int v = 0;
    size_t i;

    if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/*
 * The dual-cidr-length ("/24", "//64", "/24//64") at the end of s[0..*len): taken off
 * *len into t. False when one is there but out of range.
 */
static bool dual_cidr(const char *s, size_t *len, struct term *t)
{
    size_t end = *len, i = end;

    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
        i--;
    if (i >= 2 && i < end && s[i - 1] == '/' && s[i - 2] == '/') {
        if ((t->cidr6 = cidr_len(s + i, end - i, 128)) < 0)
            return false;
        end = i - 2;
        i = end;
        while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
            i--;
    }
    if (i >= 1 && i < end && s[i - 1] == '/') {
        if ((t->cidr4 = cidr_len(s + i, end - i, 32)) < 0)
            return false;
        end = i - 1;
    }
    *len = end;
    return true;
}

/* One directive (§5) into t. False with why when it does not parse. */
static bool parse_mechanism(char *text, struct term *t, char *why, size_t size)
{
    static const struct {
        const char *name;
        enum kind kind;
    } names[] = {{"all", M_ALL}, {"include", M_INCLUDE}, {"a", M_A},     {"mx", M_MX},
                 {"ptr", M_PTR}, {"ip4", M_IP4},         {"ip6", M_IP6}, {"exists", M_EXISTS}};
    const char *p = text, *rest;
    size_t namelen, restlen, k;

    t->text = text;
    t->qual = '+';
    t->cidr4 = t->cidr6 = -1;
    if (*p == '+' || *p == '-' || *p == '~' || *p == '?')
        t->qual = *p++;
    namelen = strcspn(p, ":/");
    for (k = 0; k < sizeof names / sizeof *names; k++)
        if (strlen(names[k].name) == namelen && strncasecmp(p, names[k].name, namelen) == 0)
            break;
    if (k == sizeof names / sizeof *names) {
        snprintf(why, size, "unknown mechanism '%.*s'", (int)namelen, p);
        return false;
    }
    t->kind = names[k].kind;
    rest = p + namelen;
    restlen = strlen(rest);
    switch (t->kind) {
    case M_ALL:
        if (restlen != 0)
            goto bad;
        return true;
    case M_A:
    case M_MX:
        if (!dual_cidr(rest, &restlen, t)) {
            snprintf(why, size, "'%s': a CIDR length out of range", text);
            return false;
        }
        /* fall through - to the domain-spec */
    case M_INCLUDE:
    case M_EXISTS:
    case M_PTR:
        /* RFC 7208 §5: required after include and exists, optional after a, mx and ptr */
        if (restlen == 0 && t->kind != M_INCLUDE && t->kind != M_EXISTS)
            return true;
        if (rest[0] != ':' || restlen < 2)
            goto bad;
        t->spec = rest + 1;
        t->speclen = restlen - 1;
        break;
    case M_IP4:
    case M_IP6: {
        char net[64];
        size_t netlen;
        int family = t->kind == M_IP4 ? AF_INET : AF_INET6, max = t->kind == M_IP4 ? 32 : 128;

        if (rest[0] != ':')
            goto bad;
        rest++;
        netlen = strcspn(rest, "/");
        if (netlen == 0 || netlen >= sizeof net)
            goto bad;
        memcpy(net, rest, netlen);
        net[netlen] = '\0';
        /* §5.6: the network as written, no parts left out */
        if (inet_pton(family, net, t->net.b) != 1) {
            snprintf(why, size, "'%s': not an IPv%c network", text, family == AF_INET ? '4' : '6');
            return false;
        }
        t->net.family = family;
        if (rest[netlen] == '/') {
            int v = cidr_len(rest + netlen + 1, strlen(rest + netlen + 1), max);

            if (v < 0) {
                snprintf(why, size, "'%s': a CIDR length out of range", text);
                return false;
            }
            if (family == AF_INET)
                t->cidr4 = v;
            else
                t->cidr6 = v;
        }
        return true;
    }
    }
    return macro_string_ok(t->spec, t->speclen, true, false, why, size);
bad:
    snprintf(why, size, "'%s' does not parse (RFC 7208 §5)", text);
    return false;
}

/*
 * The record (v=spf1 checked) into r. Returns 0, 1 with why for a syntax error, or
 * BLAST_ENOMEM.
 */
static int parse_record(const char *text, struct record *r, char *why, size_t size)
{
    size_t cap = 0;
    char *p;
    bool exp = false;

    memset(r, 0, sizeof *r);
    r->buf = strdup(text + 6);
    if (r->buf == NULL)
        return BLAST_ENOMEM;
    for (p = r->buf; *p != '\0'; p++)
        if (*p == ' ' && p[1] != ' ' && p[1] != '\0')
            cap++;
    if (cap > 0 && (r->terms = calloc(cap, sizeof *r->terms)) == NULL) {
        record_free(r);
        return BLAST_ENOMEM;
    }
    /* §4.6.1: terms separated by spaces (1*SP; nothing else) */
    for (p = r->buf; *p != '\0';) {
        char *term, *eq;
        size_t namelen;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        term = p;
        p += strcspn(p, " ");
        if (*p != '\0')
            *p++ = '\0';
        /* §12: a modifier is name "=", its name a letter then letters, digits, - _ . */
        namelen = strspn(term, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
        eq = term + namelen;
        if (namelen > 0 && isalpha((unsigned char)term[0]) && *eq == '=') {
            bool redirect = namelen == 8 && strncasecmp(term, "redirect", 8) == 0;
            bool is_exp = namelen == 3 && strncasecmp(term, "exp", 3) == 0;

            /* §6: redirect and exp at most once each */
            if ((redirect && r->redirect != NULL) || (is_exp && exp)) {
                snprintf(why, size, "more than one %.*s= modifier (RFC 7208 §6)", (int)namelen,
                         term);
                return 1;
            }
            if (!macro_string_ok(eq + 1, strlen(eq + 1), redirect || is_exp, !(redirect || is_exp),
                                 why, size))
                return 1;
            if (redirect) {
                r->redirect = eq + 1;
                r->redirect_len = strlen(eq + 1);
            }
            exp = exp || is_exp;
            continue; /* §6: unknown modifiers are ignored */
        }
        if (!parse_mechanism(term, &r->terms[r->n], why, size))
            return 1;
        r->n++;
    }
    return 0;
}

int spf_parse(const char *text, char *why, size_t size)
{
    struct record r;
    int rc;

    if (why != NULL && size > 0)
        why[0] = '\0';
    if (strncasecmp(text, "v=spf1", 6) != 0 || (text[6] != ' ' && text[6] != '\0')) {
        snprintf(why, size, "not an SPF record: it does not start with v=spf1");
        return 1;
    }
    rc = parse_record(text, &r, why, size);
    record_free(&r);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static int check_host(struct eval *ev, const char *domain, int depth, struct hop *h, char *record,
                      size_t record_size);

/* §4.6.4: a term that causes DNS queries, counted; false (a permerror) past the limit. */
static bool count_lookup(struct eval *ev, struct hop *h)
{
    if (ev->lookups >= LOOKUPS_MAX) {
        fail(h, SPF_PERMERROR, "more than %d DNS lookups (RFC 7208 §4.6.4)", LOOKUPS_MAX);
        return false;
    }
    ev->lookups++;
    return true;
}

/* §4.6.4: a query that found nothing, counted; false (a permerror) past the limit. */
static bool count_void(struct eval *ev, struct hop *h)
{
    if (++ev->voids > VOIDS_MAX) {
        fail(h, SPF_PERMERROR, "more than %d void lookups (RFC 7208 §4.6.4)", VOIDS_MAX);
        return false;
    }
    return true;
}

/* A lookup through d; rc < 0 on BLAST_ENOMEM. */
static int lookup(struct eval *ev, const char *name, enum dns_rr type, struct dns_records *r)
{
    return dns_lookup(ev->d, cut_name(name), type, r, ev->err);
}

/*
 * Whether one of name's addresses (A for an IPv4 client, AAAA for IPv6) is within the
 * given CIDR lengths of ip (§5.3). voids: whether finding none counts as a void
 * lookup. *rc gets BLAST_ENOMEM.
 */
static enum match addresses(struct eval *ev, const char *name, int cidr4, int cidr6, bool voids,
                            struct hop *h, int *rc)
{
    enum dns_rr type = ev->ip.family == AF_INET ? DNS_RR_A : DNS_RR_AAAA;
    int bits = ev->ip.family == AF_INET ? (cidr4 < 0 ? 32 : cidr4) : (cidr6 < 0 ? 128 : cidr6);
    struct dns_records r;
    enum match m = NO_MATCH;
    size_t i;

    if ((*rc = lookup(ev, name, type, &r)) != 0)
        return ERROR;
    switch (r.status) {
    case DNS_FAILED:
        m = fail(h, SPF_TEMPERROR, "looking up the %s records of %s: %s", dns_rr_name(type),
                 cut_name(name), r.why);
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        if (voids && !count_void(ev, h))
            m = ERROR;
        break;
    case DNS_FOUND:
        for (i = 0; i < r.n && m == NO_MATCH; i++) {
            struct ip a;

            if (ip_parse(r.v[i], &a) && cidr_match(&ev->ip, &a, bits))
                m = MATCH;
        }
        break;
    }
    dns_records_free(&r);
    return m;
}

/*
 * §5.5 and §7.3: ip's validated name into out: of its first PTR_MAX PTR names, one
 * whose own addresses include ip, preferring target itself, then a name under it,
 * then any ("unknown" when none). for_ptr (the ptr mechanism) validates only names
 * that are target or under it: the others cannot make it match. *matched: the name is
 * target or under it; *ptrs: what the PTR query found. DNS errors only skip a name
 * (§5.5). Returns 0 or BLAST_ENOMEM.
 */
static int validated_name(struct eval *ev, const char *target, bool for_ptr, char *out, size_t size,
                          bool *matched, enum dns_status *ptrs)
{
    char rev[DNS_REVERSE_MAX], addr[INET6_ADDRSTRLEN];
    struct dns_records r;
    struct hop ignored;
    int best = 0, rc = 0; /* 3: target itself, 2: under it, 1: another name */
    size_t i;

    *matched = false;
    *ptrs = DNS_FAILED;
    snprintf(out, size, "unknown");
    inet_ntop(ev->ip.family, ev->ip.b, addr, sizeof addr);
    if (dns_reverse_name(addr, rev, sizeof rev) != 0)
        return 0;
    if ((rc = dns_lookup(ev->d, rev, DNS_RR_PTR, &r, ev->err)) != 0)
        return rc;
    *ptrs = r.status;
    for (i = 0; r.status == DNS_FOUND && i < r.n && i < PTR_MAX && best < 3; i++) {
        bool under = same_or_under(r.v[i], target);
        int rank = !under ? 1 : strcasecmp(r.v[i], target) == 0 ? 3 : 2;
        enum match m;

        if (rank <= best || (for_ptr && !under))
            continue;
        m = addresses(ev, r.v[i], -1, -1, false, &ignored, &rc);
        if (rc != 0)
            break;
        if (m == MATCH) {
            best = rank;
            snprintf(out, size, "%s", r.v[i]);
        }
    }
    *matched = best >= 2;
    dns_records_free(&r);
    return rc;
}

/* The target of t (its domain-spec expanded, or domain) into out. */
static enum match target(struct eval *ev, const struct term *t, const char *domain, char *out,
                         size_t size, struct hop *h, int *rc)
{
    if (t->spec == NULL) {
        snprintf(out, size, "%s", domain);
        return NO_MATCH;
    }
    *rc = expand(ev, t->spec, t->speclen, domain, out, size);
    if (*rc < 0)
        return ERROR;
    if (*rc == 1) {
        *rc = 0;
        return fail(h, SPF_PERMERROR, "'%s' expands to more than %d bytes", t->text,
                    EXPAND_MAX - 1);
    }
    return NO_MATCH;
}

/* Whether t matches; an ERROR's result and why in h, or *rc < 0. */
static enum match evaluate(struct eval *ev, const struct term *t, const char *domain, int depth,
                           struct hop *h, int *rc)
{
    char name[EXPAND_MAX];
    struct dns_records r;
    struct hop sub;
    enum match m = NO_MATCH;
    size_t i;
    bool matched;

    switch (t->kind) {
    case M_ALL:
        return MATCH;
    case M_IP4:
    case M_IP6:
        return cidr_match(&ev->ip, &t->net,
                          t->kind == M_IP4 ? (t->cidr4 < 0 ? 32 : t->cidr4)
                                           : (t->cidr6 < 0 ? 128 : t->cidr6))
                   ? MATCH
                   : NO_MATCH;
    default:
        break;
    }
    if (!count_lookup(ev, h))
        return ERROR;
    if (target(ev, t, domain, name, sizeof name, h, rc) == ERROR)
        return ERROR;
    switch (t->kind) {
    case M_A:
        return addresses(ev, name, t->cidr4, t->cidr6, true, h, rc);
    case M_EXISTS:
        /* §5.7: an A query whatever the client's family */
        if ((*rc = lookup(ev, name, DNS_RR_A, &r)) != 0)
            return ERROR;
        if (r.status == DNS_FAILED)
            m = fail(h, SPF_TEMPERROR, "looking up the A records of %s: %s", cut_name(name), r.why);
        else if (r.status != DNS_FOUND)
            m = count_void(ev, h) ? NO_MATCH : ERROR;
        else
            m = r.n > 0 ? MATCH : NO_MATCH;
        dns_records_free(&r);
        return m;
    case M_MX:
        if ((*rc = lookup(ev, name, DNS_RR_MX, &r)) != 0)
            return ERROR;
        if (r.status == DNS_FAILED) {
            m = fail(h, SPF_TEMPERROR, "looking up the MX records of %s: %s", cut_name(name),
                     r.why);
        } else if (r.status != DNS_FOUND) {
            m = count_void(ev, h) ? NO_MATCH : ERROR;
        } else if (r.n > MX_MAX) {
            /* §4.6.4: at most 10 MX names looked up, or a permerror */
            m = fail(h, SPF_PERMERROR, "%s has %zu MX records, more than %d (RFC 7208 §4.6.4)",
                     cut_name(name), r.n, MX_MAX);
        } else {
            for (i = 0; i < r.n && m == NO_MATCH; i++)
                if (r.v[i][0] != '\0') /* a null MX has no address to compare */
                    m = addresses(ev, r.v[i], t->cidr4, t->cidr6, false, h, rc);
        }
        dns_records_free(&r);
        return m;
    case M_PTR: {
        char found[DNS_NAME_MAX + 1];
        enum dns_status ptrs;

        if ((*rc = validated_name(ev, cut_name(name), true, found, sizeof found, &matched,
                                  &ptrs)) != 0)
            return ERROR;
        if ((ptrs == DNS_NXDOMAIN || ptrs == DNS_NODATA) && !count_void(ev, h))
            return ERROR;
        return matched ? MATCH : NO_MATCH;
    }
    case M_INCLUDE:
        memset(&sub, 0, sizeof sub);
        if ((*rc = check_host(ev, cut_name(name), depth + 1, &sub, NULL, 0)) != 0)
            return ERROR;
        /* §5.2: pass matches; fail, softfail and neutral do not; none is a permerror */
        switch (sub.result) {
        case SPF_PASS:
            snprintf(h->mech, sizeof h->mech, "%s", sub.mech);
            return MATCH;
        case SPF_FAIL:
        case SPF_SOFTFAIL:
        case SPF_NEUTRAL:
            return NO_MATCH;
        case SPF_NONE:
            return fail(h, SPF_PERMERROR, "include:%s has no SPF record", cut_name(name));
        case SPF_TEMPERROR:
        case SPF_PERMERROR:
            h->result = sub.result;
            snprintf(h->why, sizeof h->why, "%s", sub.why);
            snprintf(h->mech, sizeof h->mech, "%s", sub.mech);
            return ERROR;
        }
        return NO_MATCH;
    default:
        return NO_MATCH;
    }
}

/* h->mech = "head -> h->mech" (or head alone when h->mech is ""). */
static void chain(struct hop *h, const char *head)
{
    char tail[sizeof h->mech];

    snprintf(tail, sizeof tail, "%s", h->mech);
    if (tail[0] == '\0')
        snprintf(h->mech, sizeof h->mech, "%s", head);
    else
        snprintf(h->mech, sizeof h->mech, "%s -> %s", head, tail);
}

/* The one SPF record of domain's TXT records (§4.5) into *rec, or a result in h. */
static enum match select_record(const char *domain, const struct dns_records *r, const char **rec,
                                struct hop *h)
{
    size_t i, n = 0;

    *rec = NULL;
    for (i = 0; i < r->n; i++) {
        /* "v=spf1" then a space or the end; ABNF literals are case-insensitive (RFC 5234) */
        if (strncasecmp(r->v[i], "v=spf1", 6) == 0 && (r->v[i][6] == ' ' || r->v[i][6] == '\0')) {
            n++;
            *rec = r->v[i];
        }
    }
    if (n == 0) {
        h->result = SPF_NONE;
        snprintf(h->why, sizeof h->why, "%s has no SPF record", domain);
        return ERROR;
    }
    if (n > 1) {
        *rec = NULL;
        if (n == 2)
            return fail(h, SPF_PERMERROR, "%s has two SPF records (RFC 7208 §4.5)", domain);
        return fail(h, SPF_PERMERROR, "%s has %zu SPF records (RFC 7208 §4.5)", domain, n);
    }
    return MATCH;
}

static enum spf_result qualifier(char q)
{
    switch (q) {
    case '-':
        return SPF_FAIL;
    case '~':
        return SPF_SOFTFAIL;
    case '?':
        return SPF_NEUTRAL;
    default:
        return SPF_PASS;
    }
}

/*
 * check_host() of RFC 7208 §4 for domain into h; the record into record when given.
 * Returns 0 or BLAST_ENOMEM.
 */
static int check_host(struct eval *ev, const char *domain, int depth, struct hop *h, char *record,
                      size_t record_size)
{
    struct dns_records txt = {0};
    struct record rec = {0};
    const char *text;
    char why[TEXT_MAX];
    size_t i;
    int rc = 0;

    h->result = SPF_NEUTRAL;
    h->mech[0] = h->why[0] = '\0';
    if (depth > DEPTH_MAX) {
        fail(h, SPF_PERMERROR, "includes and redirects nested deeper than %d", DEPTH_MAX);
        goto out;
    }
    /* §4.3: a malformed domain, or one that is not multi-label, is none */
    if (!domain_ok(domain)) {
        h->result = SPF_NONE;
        snprintf(h->why, sizeof h->why, "'%s' is not a domain name (RFC 7208 §4.3)", domain);
        goto out;
    }
    if ((rc = lookup(ev, domain, DNS_RR_TXT, &txt)) != 0)
        goto out;
    switch (txt.status) {
    case DNS_FAILED:
        /* §4.4: a DNS error other than "does not exist" is a temperror */
        fail(h, SPF_TEMPERROR, "looking up the TXT records of %s: %s", cut_name(domain), txt.why);
        goto out;
    case DNS_NXDOMAIN:
        h->result = SPF_NONE;
        snprintf(h->why, sizeof h->why, "%s does not exist", domain);
        goto out;
    case DNS_NODATA:
    case DNS_FOUND:
        break;
    }
    if (select_record(domain, &txt, &text, h) != MATCH)
        goto out;
    if (record != NULL)
        snprintf(record, record_size, "%s", text);
    rc = parse_record(text, &rec, why, sizeof why);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        rc = 0;
        if (depth == 0)
            fail(h, SPF_PERMERROR, "%s", why);
        else
            fail(h, SPF_PERMERROR, "%s: %s", domain, why);
        goto out;
    }
    for (i = 0; i < rec.n; i++) {
        const struct term *t = &rec.terms[i];
        enum match m = evaluate(ev, t, domain, depth, h, &rc);

        if (rc != 0)
            goto out;
        if (m == NO_MATCH)
            continue;
        if (m == MATCH)
            h->result = qualifier(t->qual);
        chain(h, t->text);
        goto out;
    }
    /* §6.1: redirect only when no mechanism matched */
    if (rec.redirect != NULL) {
        struct term t = {.spec = rec.redirect, .speclen = rec.redirect_len};
        char name[EXPAND_MAX], head[TEXT_MAX];

        snprintf(head, sizeof head, "redirect=%.*s", (int)rec.redirect_len, rec.redirect);
        t.text = head;
        if (!count_lookup(ev, h) || target(ev, &t, domain, name, sizeof name, h, &rc) == ERROR) {
            chain(h, head);
            goto out;
        }
        if ((rc = check_host(ev, cut_name(name), depth + 1, h, NULL, 0)) != 0)
            goto out;
        if (h->result == SPF_NONE) {
            /* §6.1: a target without a record is a permerror */
            fail(h, SPF_PERMERROR, "redirect=%s has no SPF record", cut_name(name));
            h->mech[0] = '\0';
        }
        chain(h, head);
        goto out;
    }
    h->result = SPF_NEUTRAL;
    snprintf(h->mech, sizeof h->mech, "default neutral (no term matched)");
out:
    record_free(&rec);
    dns_records_free(&txt);
    return rc;
}

/* ---- the interface ------------------------------------------------------------------------- */

/* ev's client and sender; BLAST_EINVAL (with err) when they are not acceptable. */
static int eval_init(struct eval *ev, struct dns *d, const char *ip, const char *domain,
                     const char *sender, struct blast_error *err)
{
    const char *at;

    memset(ev, 0, sizeof *ev);
    ev->d = d;
    ev->err = err;
    if (ip == NULL || !ip_parse(ip, &ev->ip))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "spf: '%s' is not an IP address",
                               ip != NULL ? ip : "");
    if (domain == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "spf: no domain to check");
    if (sender == NULL || sender[0] == '\0') {
        snprintf(ev->local, sizeof ev->local, "postmaster");
        snprintf(ev->sdomain, sizeof ev->sdomain, "%.*s", SENDER_MAX, domain);
    } else {
        if (strlen(sender) > SENDER_MAX)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "spf: a sender of more than %d bytes", SENDER_MAX);
        at = strrchr(sender, '@');
        /* §4.3: no local part is "postmaster"; no '@' at all is a domain alone */
        if (at == NULL || at == sender)
            snprintf(ev->local, sizeof ev->local, "postmaster");
        else
            snprintf(ev->local, sizeof ev->local, "%.*s", (int)(at - sender), sender);
        snprintf(ev->sdomain, sizeof ev->sdomain, "%s", at != NULL ? at + 1 : sender);
    }
    snprintf(ev->sender, sizeof ev->sender, "%s@%s", ev->local, ev->sdomain);
    return 0;
}

int spf_check(struct dns *d, const char *ip, const char *domain, const char *sender,
              struct spf_verdict *out, struct blast_error *err)
{
    struct eval ev;
    struct hop h;
    int rc;

    memset(out, 0, sizeof *out);
    out->result = SPF_NONE;
    if ((rc = eval_init(&ev, d, ip, domain, sender, err)) != 0)
        return rc;
    rc = check_host(&ev, domain, 0, &h, out->record, sizeof out->record);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->result = h.result;
    out->lookups = ev.lookups;
    snprintf(out->mechanism, sizeof out->mechanism, "%s", h.mech);
    if (h.result == SPF_NONE || h.result == SPF_TEMPERROR || h.result == SPF_PERMERROR)
        snprintf(out->why, sizeof out->why, "%s", h.why);
    return 0;
}

int spf_expand(struct dns *d, const char *spec, const char *ip, const char *domain,
               const char *sender, char *out, size_t size, struct blast_error *err)
{
    struct eval ev;
    char why[TEXT_MAX];
    int rc;

    if (size > 0)
        out[0] = '\0';
    if ((rc = eval_init(&ev, d, ip, domain, sender, err)) != 0)
        return rc;
    if (!macro_string_ok(spec, strlen(spec), false, false, why, sizeof why))
        return blast_error_set(err, BLAST_ESYNTAX, NULL, 0, 0, "spf: %s", why);
    if (size == 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "spf: no room for the expansion");
    rc = expand(&ev, spec, strlen(spec), domain, out, size);
    if (rc == 1) {
        out[0] = '\0';
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "spf: '%s' expands to more than %zu bytes", spec, size - 1);
    }
    return rc;
}
