/*
 * addrset - a set of email addresses in constant memory per address.
 *
 * Owns: remembering which addresses were seen (dedupe) or listed (suppression)
 * without keeping the addresses themselves. Each member is a 64-bit keyed hash
 * (SipHash-2-4 with a key drawn at random for each set) in an open-addressing
 * table, 8 bytes a member at most 70% load: a million addresses take about 11 MB
 * rather than the 50 MB or more the strings would. The random key means nobody can
 * craft two addresses that collide; by chance, two different addresses among a
 * million collide with a probability of about 3 in 100 million.
 * Does not own: deciding what makes two addresses the same (the caller passes a
 * normalised form).
 */
#ifndef BLAST_ADDRSET_H
#define BLAST_ADDRSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addrset;

/* A new empty set, or NULL when out of memory. Free with addrset_free(). */
struct addrset *addrset_new(void);
void addrset_free(struct addrset *s);

/*
 * Add key (len bytes). Returns 1 when it was added, 0 when it was already a
 * member, BLAST_ENOMEM when the table could not grow.
 */
int addrset_add(struct addrset *s, const char *key, size_t len);

bool addrset_contains(const struct addrset *s, const char *key, size_t len);
size_t addrset_size(const struct addrset *s);

/*
 * A new empty set whose hashes are taken under key rather than a random one: for a
 * set whose members' hashes were computed elsewhere under the same key (a
 * suppression database keeps them), added with addrset_add_hash(). key must stay
 * secret where the members come from outside, or collisions can be made.
 */
struct addrset *addrset_new_keyed(const uint8_t key[16]);

/*
 * Make room for n more members at once: one table of the final size (no rehashing
 * on the way, and the old table is freed before a later one would be needed).
 * Errors: BLAST_ENOMEM.
 */
int addrset_reserve(struct addrset *s, size_t n);

/* Add a member by its hash. Returns as addrset_add(). */
int addrset_add_hash(struct addrset *s, uint64_t h);

/* SipHash-2-4 of data under a 128-bit key (exposed for tests against the reference vectors). */
uint64_t addrset_siphash(const uint8_t key[16], const void *data, size_t len);

#endif
