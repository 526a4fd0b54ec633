/*
 * dmarc - the pure parts of checking a sending domain's DMARC policy (RFC 7489):
 * reading the policy record found at _dmarc.DOMAIN, choosing it among the TXT
 * records there, the organizational domain, and identifier alignment.
 *
 * Owns: the record's syntax and defaults (§6.3, §6.4, with taglist), the choice
 * of the one record (§6.6.3), the organizational domain from the Public Suffix
 * List through libpsl (§3.2), strict and relaxed alignment (§3.1).
 * Does not own: the DNS lookups, nor the fall-back from a domain's record to its
 * organizational domain's (the caller asks both), nor SPF and DKIM results, nor
 * what a check prints.
 *
 * Threads: every function may be called from several threads; the list is read
 * once per process, on the first call that needs it, and kept.
 */
#ifndef BLAST_DMARC_H
#define BLAST_DMARC_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/* Room for any domain name in text (RFC 1035 §2.3.4: 253 characters), with its NUL. */
#define DMARC_DOMAIN_MAX 256

struct dmarc_record {
    char p[16];              /* "none", "quarantine", "reject" (lower case) */
    bool p_implied;          /* no p=, taken as none because rua= is valid (§6.6.3) */
    char sp[16];             /* "" when absent (then p applies to subdomains) */
    char adkim, aspf;        /* 'r' (default) or 's' */
    int pct;                 /* 0-100, default 100 */
    char rua[256], ruf[256]; /* as written, "" when absent; a longer value is cut to 255 */
};

/*
 * Parse a TXT value found at _dmarc.DOMAIN (its strings joined), "v=DMARC1;
 * p=none; ...", into *out. Tag names are taken without case, values of p, sp,
 * adkim and aspf too; v's value must be DMARC1 exactly (§6.3) and v the first
 * tag; p may stand anywhere after it. Unknown tags are ignored.
 *
 * Decided where §6.6.3 leaves room: a record without p= but with a rua= naming a
 * URI is taken as p=none, as receivers do (p_implied says so); a p= or sp= with a
 * value that is not a policy makes the record invalid, though a receiver would fall
 * back to none, because the policy its author wrote is not in force. pct, adkim and
 * aspf outside their values make it invalid too (a receiver would use the default).
 *
 * 0, or BLAST_EINVAL with why (whysize bytes, may be 0): "does not start with
 * v=DMARC1", "p=maybe is not none, quarantine or reject", "pct=150 is not 0 to
 * 100", "no p= (and no rua= to take it as p=none)", or the tag-list's own fault.
 * *out is filled only on success.
 */
int dmarc_parse(const char *txt, struct dmarc_record *out, char *why, size_t whysize);

/*
 * Of the n TXT values at _dmarc.DOMAIN (NULL entries skipped), the DMARC ones:
 * those that start with v=DMARC1 (§6.6.3 step 3), whether or not the rest
 * parses. The index of the only one; -1 when there is none, -2 when there are
 * several (§6.6.3: either way, no policy applies).
 */
int dmarc_pick(const char *const *txts, size_t n);

/*
 * The organizational domain of domain (§3.2): the public suffix under it plus one
 * label, "news.acme.co.uk" -> "acme.co.uk", from the system's Public Suffix List
 * (Debian's publicsuffix) or libpsl's own copy. domain is an A-label or lower-case
 * UTF-8 name; a final dot is dropped, ASCII letters are lowered. out gets the
 * result (DMARC_DOMAIN_MAX bytes hold any). BLAST_EINVAL for an empty or
 * malformed name, a public suffix itself ("co.uk", "com"), or an out too small;
 * BLAST_ENOMEM when the list cannot be loaded.
 */
int dmarc_org_domain(const char *domain, char *out, size_t size, struct blast_error *err);

/*
 * Identifier alignment (§3.1) of the RFC5322.From domain with a DKIM d= or SPF
 * domain: mode 's' (or 'S') strict, equal without case; anything else relaxed,
 * the default (§6.3): the same organizational domain. Equal names are aligned in
 * both modes, even where no organizational domain exists. NULL or "" is never
 * aligned.
 */
bool dmarc_aligned(const char *from_domain, const char *other_domain, char mode);

#endif
