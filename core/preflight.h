/*
 * preflight - a sending domain's authentication checked from DNS before the first
 * message (docs/authentication.md): the campaign's DKIM keys published as blast signs
 * with them (RFC 6376 §3.6.1), a DMARC policy for the From domain that the DKIM
 * signatures align with (RFC 7489), SPF records of the From and envelope domains that
 * pass each relay's address (RFC 7208), and each relay address's PTR name that points
 * back to it (forward-confirmed reverse DNS).
 *
 * Owns: which records are asked for, in which order, and what each answer means for a
 * bulk sender: a finding (ok, warning or error) naming the record, what was found, and
 * what to publish instead when blast can say it (the exact TXT value for a DKIM key,
 * a starting DMARC record, an SPF record that covers the relays).
 * Does not own: the lookups (dns), the SPF evaluation (spf), the DMARC and DKIM record
 * grammars (dmarc, dkim), printing the findings (cmd), refusing to send (cmd).
 */
#ifndef BLAST_PREFLIGHT_H
#define BLAST_PREFLIGHT_H

#include "campaign.h"
#include "dkim.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>

enum preflight_level { PREFLIGHT_OK, PREFLIGHT_WARNING, PREFLIGHT_ERROR };

/* One finding. Strings are the struct's own; a callback copies what it keeps. */
struct preflight_finding {
    enum preflight_level level;
    const char *check; /* "dkim", "dmarc", "spf", "ptr", "dns" */
    char record[320];  /* the name looked at: "s1._domainkey.acme.example", "_dmarc.acme.example" */
    char text[768];    /* what was found, in plain words */
    char publish[1536]; /* the TXT value (or PTR name) to publish instead; "" when none */
};

struct preflight_options {
    const char *servers; /* the resolver (core/dns syntax); NULL: the system's */
    long timeout_ms;     /* each try of a lookup; 0: 2000 */
    long deadline_ms;    /* all the lookups together (and at most 2,000 queries); 0: 60000 */
};

struct preflight_counts {
    size_t ok, warnings, errors;
};

/* "ok", "warning", "error". */
const char *preflight_level_name(enum preflight_level l);

/*
 * Look up and judge the campaign's records, calling fn for each finding in order
 * (DKIM, DMARC, SPF, PTR). keys: the campaign's DKIM keys (NULL when it signs with
 * none). A resolver that does not answer gives error findings, bounded by the
 * deadline, not a failure. Errors: BLAST_EINVAL (servers that do not parse),
 * BLAST_EIO (the resolver cannot start), BLAST_ENOMEM.
 */
int preflight_run(const struct campaign *c, const struct dkim *keys,
                  const struct preflight_options *o,
                  void (*fn)(void *arg, const struct preflight_finding *f), void *arg,
                  struct preflight_counts *counts, struct blast_error *err);

#endif
