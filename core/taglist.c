/*
 * taglist - tag=value lists (RFC 6376 §3.2). See taglist.h.
 */
#include "taglist.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* FWS as it reaches us: TXT strings joined, perhaps with the zone file's line breaks. */
static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool same_name(const struct taglist_tag *t, const char *name, size_t len, bool nocase)
{
    if (t->namelen != len)
        return false;
    return nocase ? strncasecmp(t->name, name, len) == 0 : memcmp(t->name, name, len) == 0;
}

/* One tag-spec, [s, e) without its ';'. */
static int parse_one(const char *s, const char *e, struct taglist *l, char *why, size_t whysize)
{
    const char *name, *p, *v, *ve;
    struct taglist_tag *t;
    size_t k, namelen;

    while (s < e && is_ws(*s))
        s++;
    while (e > s && is_ws(e[-1]))
        e--;
    if (s == e)
        return 0; /* an empty tag: skipped (see taglist.h) */
    /* §3.2: tag-name = ALPHA *ALNUMPUNC */
    name = s;
    for (p = s; p < e && (is_alpha(*p) || (p > s && (is_digit(*p) || *p == '_'))); p++)
        ;
    namelen = (size_t)(p - name);
    while (p < e && is_ws(*p))
        p++;
    if (namelen == 0 || p == e || *p != '=') {
        const char *stop = memchr(s, '=', (size_t)(e - s));
        int shown = (int)((stop != NULL ? stop : e) - s);
        while (shown > 0 && is_ws(s[shown - 1]))
            shown--;
        snprintf(why, whysize, namelen == 0 ? "'%.*s' is not a tag name" : "'%.*s' has no '='",
                 shown > 40 ? 40 : shown, s);
        return -1;
    }
    for (v = p + 1; v < e && is_ws(*v); v++)
        ;
    ve = e;
    /* §3.2: VALCHAR is %x21-3A / %x3C-7E, with FWS between runs of it */
    for (p = v; p < ve; p++)
        if (!is_ws(*p) && ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)) {
            snprintf(why, whysize, "a control or non-ASCII character in tag %.*s", (int)namelen,
                     name);
            return -1;
        }
    /* §3.2: a tag named twice makes the whole list invalid */
    for (k = 0; k < l->n; k++)
        if (same_name(&l->tag[k], name, namelen, l->nocase)) {
            snprintf(why, whysize, "tag %.*s appears twice", (int)namelen, name);
            return -1;
        }
    if (l->n == TAGLIST_MAX) {
        snprintf(why, whysize, "more than %d tags", TAGLIST_MAX);
        return -1;
    }
    t = &l->tag[l->n++];
    t->name = name;
    t->namelen = namelen;
    t->value = v;
    t->valuelen = (size_t)(ve - v);
    return 0;
}

int taglist_parse(const char *txt, bool nocase, struct taglist *l, char *why, size_t whysize)
{
    const char *s = txt, *semi;

    l->n = 0;
    l->nocase = nocase;
    for (;;) {
        semi = strchr(s, ';');
        if (parse_one(s, semi != NULL ? semi : s + strlen(s), l, why, whysize) < 0)
            return -1;
        if (semi == NULL)
            return 0;
        s = semi + 1;
    }
}

const struct taglist_tag *taglist_find(const struct taglist *l, const char *name)
{
    size_t k, len = strlen(name);

    for (k = 0; k < l->n; k++)
        if (same_name(&l->tag[k], name, len, l->nocase))
            return &l->tag[k];
    return NULL;
}

bool taglist_value_is(const struct taglist_tag *t, const char *word, bool nocase)
{
    size_t len = strlen(word);

    if (t->valuelen != len)
        return false;
    return nocase ? strncasecmp(t->value, word, len) == 0 : memcmp(t->value, word, len) == 0;
}
