/*
 * countmap - counts by recipient status for each of many names. See countmap.h.
 */
#include "countmap.h"

#include "error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NAME_BLOCK (64 * 1024)

struct name_block {
    struct name_block *next;
    size_t used, size;
    char data[];
};

struct countmap {
    struct countmap_entry *entries;
    size_t n, cap;
    uint32_t *index; /* entry + 1, 0: free; size a power of two */
    size_t slots;
    struct name_block *names;
};

/* FNV-1a: short keys, no adversary that gains from collisions but a slower report */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct countmap *countmap_new(void)
{
    struct countmap *m = calloc(1, sizeof *m);

    if (m == NULL)
        return NULL;
    m->slots = 64;
    m->index = calloc(m->slots, sizeof *m->index);
    if (m->index == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void countmap_free(struct countmap *m)
{
    if (m == NULL)
        return;
    while (m->names != NULL) {
        struct name_block *b = m->names;
        m->names = b->next;
        free(b);
    }
    free(m->entries);
    free(m->index);
    free(m);
}

static size_t find(const struct countmap *m, const char *name, uint64_t h)
{
    size_t mask = m->slots - 1, i = (size_t)h & mask;

    while (m->index[i] != 0 && strcmp(m->entries[m->index[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

const struct countmap_entry *countmap_get(const struct countmap *m, const char *name)
{
    size_t i = find(m, name, hash(name));

    return m->index[i] != 0 ? &m->entries[m->index[i] - 1] : NULL;
}

static int grow_index(struct countmap *m)
{
    size_t slots = m->slots * 2, i, k;
    uint32_t *index = calloc(slots, sizeof *index);

    if (index == NULL)
        return BLAST_ENOMEM;
    for (k = 0; k < m->n; k++) {
        i = (size_t)hash(m->entries[k].name) & (slots - 1);
        while (index[i] != 0)
            i = (i + 1) & (slots - 1);
        index[i] = (uint32_t)(k + 1);
    }
    free(m->index);
    m->index = index;
    m->slots = slots;
    return 0;
}

/* A copy of name in the map's blocks (a name longer than a block gets its own). */
static const char *keep_name(struct countmap *m, const char *name)
{
    size_t len = strlen(name) + 1;
    struct name_block *b = m->names;

    if (b == NULL || b->size - b->used < len) {
        size_t size = len > NAME_BLOCK ? len : NAME_BLOCK;
        struct name_block *nb = malloc(sizeof *nb + size);
        if (nb == NULL)
            return NULL;
        nb->used = 0;
        nb->size = size;
        nb->next = m->names;
        m->names = nb;
        b = nb;
    }
    memcpy(b->data + b->used, name, len);
    b->used += len;
    return b->data + b->used - len;
}

int countmap_add(struct countmap *m, const char *name, size_t slot, uint32_t n)
{
    uint64_t h = hash(name);
    size_t i = find(m, name, h);
    struct countmap_entry *e;

    if (slot >= COUNTMAP_STATUSES)
        slot = COUNTMAP_OTHER;
    if (m->index[i] == 0) {
        if (m->n >= UINT32_MAX - 1)
            return BLAST_ENOMEM;
        /* at most half full, so that probes stay short */
        if ((m->n + 1) * 2 > m->slots) {
            if (grow_index(m) < 0)
                return BLAST_ENOMEM;
            i = find(m, name, h);
        }
        if (m->n == m->cap) {
            size_t cap = m->cap > 0 ? m->cap * 2 : 16;
            struct countmap_entry *v = realloc(m->entries, cap * sizeof *v);
            if (v == NULL)
                return BLAST_ENOMEM;
            m->entries = v;
            m->cap = cap;
        }
        const char *kept = keep_name(m, name);
        if (kept == NULL)
            return BLAST_ENOMEM;
        e = &m->entries[m->n];
        memset(e, 0, sizeof *e);
        e->name = kept;
        m->index[i] = (uint32_t)(++m->n);
    }
    e = &m->entries[m->index[i] - 1];
    e->counts[slot] += n;
    e->total += n;
    return 0;
}

size_t countmap_size(const struct countmap *m)
{
    return m->n;
}

const struct countmap_entry *countmap_at(const struct countmap *m, size_t i)
{
    return i < m->n ? &m->entries[i] : NULL;
}

json_t *countmap_to_json(const struct countmap *m)
{
    json_t *all = json_object(), *one;
    size_t k, s;

    for (k = 0; all != NULL && k < m->n; k++) {
        const struct countmap_entry *e = &m->entries[k];
        if ((one = json_object()) == NULL || json_object_set_new(all, e->name, one) < 0) {
            json_decref(all);
            return NULL;
        }
        for (s = 0; s < COUNTMAP_STATUSES; s++) {
            if (e->counts[s] == 0)
                continue;
            if (json_object_set_new(
                    one,
                    s == COUNTMAP_OTHER ? "other" : outcome_status_name((enum outcome_status)s),
                    json_integer((json_int_t)e->counts[s])) < 0) {
                json_decref(all);
                return NULL;
            }
        }
    }
    return all;
}
