/*
 * address - one email address, checked the way an SMTP server will check it.
 *
 * Owns: RFC 5321 §4.1.2 mailbox syntax (dot-atom and quoted local parts, domain
 * names and address literals), the §4.5.3.1 length limits, RFC 6531 UTF-8 local
 * parts (which make a message need SMTPUTF8), international domain names turned
 * into their A-label form with libidn2 (IDNA2008, RFC 5891) for the envelope, and
 * the RFC 5322 "Display Name <addr>" form used in From:, To: and Reply-To:.
 * Does not own: deciding whether two addresses are the same recipient (dedupe
 * lives with the recipients), nor encoding display names into headers (mime).
 *
 * Anything containing CR, LF, NUL or an angle bracket inside the address is
 * refused: such a value is an injection attempt or a broken list, never mail.
 */
#ifndef BLAST_ADDRESS_H
#define BLAST_ADDRESS_H

#include "error.h"

#include <stdbool.h>

/* RFC 5321 §4.5.3.1.1-3 */
#define ADDRESS_LOCAL_MAX  64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_PATH_MAX   256 /* including the angle brackets */

/*
 * A parsed address. Every string is owned by the struct and freed by
 * address_free(); after a failed parse the struct holds nothing to free.
 */
struct address {
    char *display;       /* display name as UTF-8 text (unquoted), or NULL */
    char *local;         /* local part exactly as written (quoted form kept) */
    char *domain;        /* domain as written (may be a U-label form) */
    char *envelope;      /* local@A-label-domain: what MAIL FROM / RCPT TO carry */
    bool needs_smtputf8; /* the local part is not ASCII (RFC 6531) */
};

/* Parse a bare address ("user@example.com"). Errors: BLAST_EINVAL, BLAST_ENOMEM. */
int address_parse(const char *text, struct address *out, struct blast_error *err);

/*
 * Parse a mailbox: a bare address, "<addr>", or "Display Name <addr>" where the
 * name may be a quoted string. Errors as address_parse().
 */
int address_parse_mailbox(const char *text, struct address *out, struct blast_error *err);

/*
 * The ASCII (A-label) form of a domain name, lower-cased, as a new string the
 * caller frees: "Пример.РФ" -> "xn--e1afmkfd.xn--p1ai". Errors: BLAST_EINVAL (not
 * a valid host name), BLAST_ENOMEM.
 */
int address_domain_ascii(const char *domain, char **out, struct blast_error *err);

/* Free what a successful parse allocated. Accepts NULL and zeroed structs. */
void address_free(struct address *a);

/*
 * The domain of a mailbox as written ("Acme <news@Acme.example>", or a bare address),
 * in its A-label form and lower case, into out: what DNS records and warm-up counts
 * are kept under. Returns 0, or -1 (out "") when it does not parse.
 */
int address_mailbox_domain(const char *mailbox, char *out, size_t size);

#endif
