/*
 * text - small text utilities shared by several modules: UTF-8 validation, the
 * edit distance behind "did you mean" suggestions, and JSON strings for the
 * records written by hand (outcome, journal).
 */
#ifndef BLAST_TEXT_H
#define BLAST_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s (len bytes) is valid UTF-8: no overlong forms, surrogates or > U+10FFFF. */
bool text_utf8_valid(const char *s, size_t len);

/* Levenshtein distance between two short strings; (size_t)-1 when either is over 62 bytes. */
size_t text_edit_distance(const char *a, const char *b);

/*
 * The candidate nearest to word, if it is close enough to be a likely typo
 * (distance at most max(2, len/3 + 1)); NULL otherwise. candidates ends with NULL.
 */
const char *text_nearest(const char *word, const char *const *candidates);

struct buf;

/*
 * Append s to b as a JSON string, escaped as jansson's compact dump escapes it
 * (", \\ and control characters; UTF-8 as it is), each byte that is not part of
 * valid UTF-8 replaced by U+FFFD; NULL and "" as null. Errors: BLAST_ENOMEM.
 */
int text_json_string(struct buf *b, const char *s);

#endif
