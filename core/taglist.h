/*
 * taglist - the tag=value lists of DKIM key records and DMARC policy records
 * (RFC 6376 §3.2, which RFC 7489 §6.4 borrows): split into tags, checked for the
 * list's syntax and for a tag named twice.
 *
 * Owns: the syntax only. Does not own: what a tag means or which tags a record
 * needs (dkim, dmarc), nor looking the record up (the caller).
 *
 * Pure: no allocation, no I/O. The tags point into the text they came from.
 */
#ifndef BLAST_TAGLIST_H
#define BLAST_TAGLIST_H

#include <stdbool.h>
#include <stddef.h>

/* More tags than this in one record make it invalid; real records have fewer than ten. */
#define TAGLIST_MAX 32

struct taglist_tag {
    const char *name; /* not NUL-terminated */
    size_t namelen;
    const char *value; /* whitespace around it removed; may be empty */
    size_t valuelen;
};

struct taglist {
    struct taglist_tag tag[TAGLIST_MAX];
    size_t n;
    bool nocase; /* names compared without case (DMARC), or with it (DKIM, §3.2) */
};

/*
 * Split txt into l. nocase: tag names are compared without regard to case. 0, or
 * -1 with why ("'p' has no '='", "tag p appears twice", "a control character in
 * tag rua") when txt is not a tag-list. Empty tags (";;", a final ';') are
 * skipped: receivers do not refuse a record for them.
 */
int taglist_parse(const char *txt, bool nocase, struct taglist *l, char *why, size_t whysize);

/* The tag called name, or NULL. */
const struct taglist_tag *taglist_find(const struct taglist *l, const char *name);

/* True when t's value is word (compared without case when nocase). */
bool taglist_value_is(const struct taglist_tag *t, const char *word, bool nocase);

#endif
