/*
 * classify - what a bounce says about its recipient, by rules with ids
 * (docs/bounces.md, "Classes and rules").
 *
 * Owns: the classes (hard, soft, policy, complaint, auto-reply, unsubscribe,
 * unknown) and the ordered table of rules that map a delivery status (RFC 3463
 * code, RFC 3464 Action) and the diagnostic text a mail system gave with it to a
 * class; each verdict names the rule that decided it.
 * Does not own: reading the message the status came in (the intake's parser), nor
 * what a class leads to (suppression: soft bounces only after several, policy
 * never, since a block for the sender's reputation says nothing of the recipient).
 *
 * Pure: no I/O, no allocation.
 */
#ifndef BLAST_CLASSIFY_H
#define BLAST_CLASSIFY_H

#include <stddef.h>

enum bounce_class {
    BOUNCE_HARD = 0,    /* the mailbox or the domain does not exist, or is disabled for good */
    BOUNCE_SOFT,        /* full, unavailable for now, a delay: may work later */
    BOUNCE_POLICY,      /* blocked for the sender's reputation or content: not the recipient's */
    BOUNCE_COMPLAINT,   /* the recipient reported the message as spam (RFC 5965) */
    BOUNCE_AUTOREPLY,   /* a vacation message or other automatic answer (RFC 3834) */
    BOUNCE_UNSUBSCRIBE, /* a request to be taken off the list */
    BOUNCE_UNKNOWN,     /* nothing the rules recognise */
    BOUNCE_CLASS_COUNT
};

/* "hard", "soft", "policy", "complaint", "auto-reply", "unsubscribe", "unknown". */
const char *bounce_class_name(enum bounce_class c);

struct bounce_verdict {
    enum bounce_class class;
    const char *rule; /* the rule's id ("status-5.1.1", "text-mailbox-full"): static */
};

/*
 * A delivery status notification's word on one recipient: status is the RFC 3463
 * code ("5.1.1"), from the Status field or the diagnostic; action the RFC 3464
 * Action ("failed", "delayed", ...); diagnostic the Diagnostic-Code text or the
 * prose of a bounce that is not a standard DSN. Any of them may be NULL.
 */
void classify_dsn(const char *status, const char *action, const char *diagnostic,
                  struct bounce_verdict *out);

/*
 * The RFC 3463 code that a diagnostic text carries ("550 5.1.1 <a@b>: ..." gives
 * "5.1.1"), into out (at least 16 bytes); returns 0, or -1 when there is none.
 */
int classify_find_status(const char *text, char *out, size_t size);

#endif
