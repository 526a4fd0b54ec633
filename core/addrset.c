/*
 * addrset - keyed-hash set of addresses. See addrset.h.
 *
 * Slots hold the 64-bit hash; 0 marks an empty slot, so a hash that happens to be
 * 0 is stored as 1 (one more value in 2^64 that collides, which changes nothing).
 * Linear probing; the table doubles at 70% load.
 */
#include "addrset.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct addrset {
    uint64_t *slots;
    size_t cap; /* a power of two */
    size_t size;
    uint8_t key[16];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012), as in the reference implementation. */
uint64_t addrset_siphash(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data, *end = in + (len - len % 8);
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56, m;
    size_t left = len % 8;

    for (; in != end; in += 8) {
        m = load64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    while (left > 0) {
        left--;
        b |= (uint64_t)in[left] << (8 * left);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct addrset *addrset_new(void)
{
    struct addrset *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->cap = 1024;
    s->slots = calloc(s->cap, sizeof *s->slots);
    if (s->slots == NULL) {
        free(s);
        return NULL;
    }
    if (getrandom(s->key, sizeof s->key, 0) != (ssize_t)sizeof s->key) {
        /* without a random key the set still works; it is only predictable */
        memset(s->key, 0x5a, sizeof s->key);
    }
    return s;
}

void addrset_free(struct addrset *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s);
}

static uint64_t hash_of(const struct addrset *s, const char *key, size_t len)
{
    uint64_t h = addrset_siphash(s->key, key, len);
    return h != 0 ? h : 1;
}

/*
 * A hash's first slot: its top bits. Members added in the order of their hashes
 * (a suppression database hands them over sorted, from its index) then fill the
 * table from one end to the other instead of at random, which at a million
 * members is the difference between a cache miss each and none.
 */
static size_t slot_of(uint64_t h, size_t cap)
{
    return (size_t)(h >> (64 - __builtin_ctzll((unsigned long long)cap)));
}

/* Insert h into slots without growing; returns 1 added, 0 present. */
static int place(uint64_t *slots, size_t cap, uint64_t h)
{
    size_t i = slot_of(h, cap);

    while (slots[i] != 0) {
        if (slots[i] == h)
            return 0;
        i = (i + 1) & (cap - 1);
    }
    slots[i] = h;
    return 1;
}

/* A table of cap slots (a power of two, larger than now), the members moved over. */
static int grow_to(struct addrset *s, size_t cap)
{
    size_t i;
    uint64_t *slots = calloc(cap, sizeof *slots);

    if (slots == NULL)
        return BLAST_ENOMEM;
    for (i = 0; i < s->cap; i++)
        if (s->slots[i] != 0)
            place(slots, cap, s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static int grow(struct addrset *s)
{
    return grow_to(s, s->cap * 2);
}

int addrset_add(struct addrset *s, const char *key, size_t len)
{
    int added;

    if ((s->size + 1) * 10 > s->cap * 7 && grow(s) < 0)
        return BLAST_ENOMEM;
    added = place(s->slots, s->cap, hash_of(s, key, len));
    s->size += (size_t)added;
    return added;
}

bool addrset_contains(const struct addrset *s, const char *key, size_t len)
{
    uint64_t h = hash_of(s, key, len);
    size_t i = slot_of(h, s->cap);

    while (s->slots[i] != 0) {
        if (s->slots[i] == h)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

size_t addrset_size(const struct addrset *s)
{
    return s->size;
}

struct addrset *addrset_new_keyed(const uint8_t key[16])
{
    struct addrset *s = addrset_new();

    if (s != NULL)
        memcpy(s->key, key, sizeof s->key);
    return s;
}

int addrset_add_hash(struct addrset *s, uint64_t h)
{
    int added;

    if (h == 0)
        h = 1; /* 0 marks an empty slot: as hash_of() does */
    if ((s->size + 1) * 10 > s->cap * 7 && grow(s) < 0)
        return BLAST_ENOMEM;
    added = place(s->slots, s->cap, h);
    s->size += (size_t)added;
    return added;
}

int addrset_reserve(struct addrset *s, size_t n)
{
    size_t cap = s->cap;

    /* the same load as addrset_add() keeps: at most 70%; one move to the final size,
     * so the old and the new tables are never both large */
    while ((s->size + n) * 10 > cap * 7)
        cap *= 2;
    return cap > s->cap ? grow_to(s, cap) : 0;
}
