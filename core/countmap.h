/*
 * countmap - counts by recipient status for each of many names: the recipient domains
 * and relays of a report's summary (report_tally), kept compactly.
 *
 * Owns: a name's counts (one per status, and "other" for a status this version does
 * not know), names copied into blocks of its own, an open-addressed index, entries in
 * the order they were first counted, and the JSON form the summary writes
 * ({"name": {"status": count}}, statuses that were counted only).
 * Does not own: what a name is (the tally lower-cases domains), nor which status a
 * recipient has.
 *
 * Why not a jansson object of objects: a list with a long tail of domains (a B2B list
 * has about as many domains as recipients) made that some 500 bytes a domain, 50 MB for
 * 100,000 domains, held while a report streams; here it is about 80.
 */
#ifndef BLAST_COUNTMAP_H
#define BLAST_COUNTMAP_H

#include "outcome.h"

#include <stddef.h>
#include <stdint.h>

/* The counts' slots: one per enum outcome_status, then this one. */
#define COUNTMAP_OTHER    OUTCOME_STATUS_COUNT
#define COUNTMAP_STATUSES (OUTCOME_STATUS_COUNT + 1)

struct countmap_entry {
    const char *name; /* owned by the map */
    uint64_t total;
    uint32_t counts[COUNTMAP_STATUSES];
};

struct countmap;
struct json_t;

/* An empty map, or NULL when out of memory. Free with countmap_free() (accepts NULL). */
struct countmap *countmap_new(void);
void countmap_free(struct countmap *m);

/*
 * Count n recipients of name with status slot (an enum outcome_status, or
 * COUNTMAP_OTHER). Errors: BLAST_ENOMEM (the map is unchanged).
 */
int countmap_add(struct countmap *m, const char *name, size_t slot, uint32_t n);

/* The entry of name, or NULL. */
const struct countmap_entry *countmap_get(const struct countmap *m, const char *name);

/* Entries, 0 .. countmap_size() - 1, in the order their names were first counted. */
size_t countmap_size(const struct countmap *m);
const struct countmap_entry *countmap_at(const struct countmap *m, size_t i);

/*
 * The JSON form, {"name": {"status": count, ...}, ...} with only the statuses counted
 * ("other" for COUNTMAP_OTHER): a new reference, or NULL when out of memory.
 */
struct json_t *countmap_to_json(const struct countmap *m);

#endif
