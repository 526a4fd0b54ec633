/*
 * mailbox - the bounce mailbox, read over IMAP (RFC 9051) or POP3 (RFC 1939) with
 * libcurl.
 *
 * Owns: one session with the server (TLS always: implicit for imaps:// and pop3s://,
 * STARTTLS required for imap:// and pop3://; the certificate and host name checked,
 * TLS 1.2 at least), logging in with a password or an OAuth 2.0 bearer token
 * (XOAUTH2), listing the messages to read (IMAP: UID SEARCH; POP3: UIDL), fetching one
 * (IMAP: UID FETCH BODY[], which sets \Seen on the server: the intake keeps the UIDs
 * it is about to fetch, so that a crash does not hide a message; POP3: RETR), and
 * what is done with the messages
 * read: flagged \Seen, moved to a folder (RFC 6851 MOVE, or COPY, \Deleted and
 * EXPUNGE where the server lacks it), or deleted (IMAP: \Deleted and UID EXPUNGE,
 * RFC 4315; POP3: DELE, which the server carries out at QUIT).
 * Does not own: deciding when a message may go (the intake does it once the result
 * is durable), reading the message (bounce), the secret (secret).
 *
 * The secret never appears in err: libcurl's own messages do not carry it.
 */
#ifndef BLAST_MAILBOX_H
#define BLAST_MAILBOX_H

#include "buf.h"
#include "campaign.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mailbox_options {
    const char *url; /* imaps://host[:port][/MAILBOX] (INBOX by default), pop3s://host[:port] */
    bool pop3;       /* the url is a POP3 one */
    const char *username;
    const char *secret; /* the password, or the bearer token with xoauth2 */
    bool xoauth2;
    bool verify;         /* check the certificate and the host name */
    const char *ca_file; /* or NULL for the system's store */
    long timeout_ms;     /* for each command and its answer */
    bool unseen_only;    /* IMAP: list only the messages without \Seen */
};

/* A message on the server. */
struct mailbox_item {
    uint64_t id;  /* IMAP: its UID; POP3: its number in this session */
    char uid[72]; /* printable: the IMAP UID in decimal, or the POP3 UIDL */
};

struct mailbox;

/*
 * Make a session (it connects when first used). The options' strings must outlive
 * it. Errors: BLAST_ENOMEM.
 */
int mailbox_open(const struct mailbox_options *o, struct mailbox **out, struct blast_error *err);

/*
 * The messages to read, oldest first, in a new array the caller frees (*n of them).
 * Errors: BLAST_ECONNECT, BLAST_ETLS, BLAST_EAUTH, BLAST_EPROTO, BLAST_ETIMEOUT,
 * BLAST_ENOMEM, with err naming the mailbox and saying what failed.
 */
int mailbox_list(struct mailbox *mb, struct mailbox_item **items, size_t *n,
                 struct blast_error *err);

/*
 * The bytes of it into out (emptied first), at most max: a larger message is
 * BLAST_EINVAL ("larger than ..."), and the session goes on. Other errors as
 * mailbox_list().
 */
int mailbox_fetch(struct mailbox *mb, const struct mailbox_item *it, struct buf *out, size_t max,
                  struct blast_error *err);

/*
 * Do with the n messages what after says (folder for CAMPAIGN_BOUNCES_MOVE). For
 * POP3 the deletions take effect at mailbox_close(). Errors as mailbox_list().
 */
int mailbox_finish(struct mailbox *mb, const struct mailbox_item *items, size_t n,
                   enum campaign_bounces_after after, const char *folder, struct blast_error *err);

/* End the session (POP3: QUIT, which carries out the deletions) and free. Accepts NULL. */
void mailbox_close(struct mailbox *mb);

#endif
