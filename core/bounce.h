/*
 * bounce - what one message that came back to the sender says: a delivery status
 * notification, a spam complaint, an automatic reply, an unsubscribe request, or
 * nothing blast acts on.
 *
 * Owns: reading one inbound message with GMime, a MIME parser made for mail from
 * strangers (docs/architecture.md says why): multipart/report with
 * message/delivery-status (RFC 3464) or message/global-delivery-status (RFC 6533),
 * ARF feedback reports (RFC 5965), automatic replies (RFC 3834 Auto-Submitted and the
 * headers and subjects vacation programs use), requests sent to a campaign's
 * List-Unsubscribe mailto address, and bounces that are not standard DSNs (the prose
 * of MTAs that still write it); each recipient it speaks of, with the verdict of
 * the rules (core/classify, and the rules for complaints, replies and requests here);
 * the addresses it was delivered to and the Message-ID of the message it is about,
 * which attribute it to a campaign's recipient.
 * Does not own: fetching messages (intake), deciding which campaign and row a
 * message is about (intake, with verp and the journals), nor what a verdict leads to
 * (intake and suppressdb).
 *
 * Everything taken from the message is data: text is made valid UTF-8 without
 * control characters and cut to a bounded length; counts are bounded; a message
 * that cannot be read is an error for that message alone.
 */
#ifndef BLAST_BOUNCE_H
#define BLAST_BOUNCE_H

#include "classify.h"
#include "error.h"

#include <stddef.h>

enum bounce_kind {
    BOUNCE_KIND_DSN = 0,     /* multipart/report; report-type=delivery-status */
    BOUNCE_KIND_ARF,         /* multipart/report; report-type=feedback-report */
    BOUNCE_KIND_PLAIN,       /* a bounce in prose, from a mailer daemon */
    BOUNCE_KIND_AUTOREPLY,   /* RFC 3834, or a vacation program's reply */
    BOUNCE_KIND_UNSUBSCRIBE, /* sent to a List-Unsubscribe mailto address */
    BOUNCE_KIND_OTHER,       /* none of these: nothing to act on */
    BOUNCE_KIND_COUNT
};

/* "dsn", "arf", "plain", "auto-reply", "unsubscribe", "other". */
const char *bounce_kind_name(enum bounce_kind k);

/* Bounds on what is kept from one message. */
#define BOUNCE_RECIPIENTS_MAX 100  /* recipients of one report */
#define BOUNCE_ADDRESSES_MAX  32   /* addresses it was delivered to */
#define BOUNCE_TEXT_MAX       1000 /* bytes of a diagnostic or other text kept */

/* One recipient the message speaks of. Strings are owned by the bounce_message. */
struct bounce_recipient {
    char *final_recipient;    /* the address (type prefix and brackets removed), or NULL */
    char *original_recipient; /* the Original-Recipient (or ARF Original-Rcpt-To), or NULL */
    char *action;             /* RFC 3464 Action ("failed", "delayed"), or NULL */
    char *status;             /* RFC 3463 code ("5.1.1"), or NULL */
    char *diagnostic;         /* Diagnostic-Code text, or the prose about it, or NULL */
    struct bounce_verdict verdict;
};

/* A message, read. Every string is owned by it; bounce_message_free() frees them. */
struct bounce_message {
    enum bounce_kind kind;
    char *message_id;       /* its own Message-ID, "<...>", or NULL */
    char *about_message_id; /* the Message-ID of the message it is about, or NULL */
    char *from;             /* its From address, or NULL */
    char *subject;          /* its Subject, or NULL */
    char *feedback_type;    /* ARF Feedback-Type, or NULL */
    char **delivered_to;    /* where it was delivered and addressed (see bounce.c) */
    size_t ndelivered_to;
    struct bounce_recipient *recipients;
    size_t nrecipients;
    struct bounce_verdict verdict; /* the message's own verdict when it names no recipient */
};

/* What a message is read against. */
struct bounce_options {
    const char *const *unsubscribe_to; /* the campaigns' List-Unsubscribe mailto addresses */
    size_t nunsubscribe_to;
};

/*
 * Read the message of len bytes at data into *out (which the caller frees with
 * bounce_message_free(), also after an error). Errors: BLAST_ESYNTAX (not a message
 * GMime can read; err says why), BLAST_ENOMEM.
 */
int bounce_parse(const void *data, size_t len, const struct bounce_options *opt,
                 struct bounce_message *out, struct blast_error *err);

/* Free what *m holds and empty it. Accepts an empty one. */
void bounce_message_free(struct bounce_message *m);

#endif
