/*
 * text - small text utilities shared by several modules: UTF-8 validation and
 * the edit distance behind "did you mean" suggestions.
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

#endif
