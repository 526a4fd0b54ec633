/*
 * mime - the bytes of one message: RFC 5322 headers and a MIME body.
 *
 * Owns: header fields and their folding (RFC 5322 §2.2.3: lines of at most 78
 * characters where possible, never over 998), RFC 2047 encoded-words for non-ASCII
 * subjects and display names (Q or B, each word whole UTF-8 characters, only the
 * last B word padded), file name parameters (quoted, or RFC 2231 continued between
 * characters beside RFC 2047 words in Content-Type's name), the List-Id beside
 * List-Unsubscribe, quoted-printable and base64 text bodies (RFC 2045 §6.7, §6.8;
 * docs/campaign.md says which), multipart/alternative for text + HTML (RFC 2046 §5.1.4)
 * with boundaries that cannot occur in the content, Message-ID and Date, and CRLF
 * discipline: every line of the result ends in CRLF and no bare CR or LF remains.
 * Does not own: rendering templates (compose), dot-stuffing (smtp), signing (dkim).
 *
 * Header injection: values are never copied into a header raw. Subjects and names
 * have their control characters (CR and LF included) replaced by spaces before
 * encoding, so no value can start a header line of its own.
 */
#ifndef BLAST_MIME_H
#define BLAST_MIME_H

#include "address.h"
#include "buf.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* RFC 5322 §2.1.1 */
#define MIME_LINE_SOFT 78
#define MIME_LINE_HARD 998

/* A file part (attachment or inline image), base64-encoded once for every message. */
struct mime_part {
    char *filename;     /* shown to the reader (UTF-8) */
    char *content_type; /* "application/pdf" */
    char *cid;          /* inline parts: the Content-ID without brackets, else NULL */
    char *body;         /* base64, lines of 76 characters, each ending in CRLF */
    size_t len;
    size_t size; /* the file's size in bytes */
};

/* An extra header field: name and UTF-8 value, made safe like the Subject. */
struct mime_header {
    const char *name;
    const char *value;
    size_t len;
};

struct mime_message {
    const struct address *from;     /* required */
    const struct address *to;       /* required */
    const struct address *reply_to; /* optional */
    const char *subject;            /* UTF-8 */
    size_t subject_len;
    const char *text; /* UTF-8 text body, or NULL */
    size_t text_len;
    const char *html; /* UTF-8 HTML body, or NULL; at least one body is set */
    size_t html_len;
    const char *message_id; /* "<...@...>", see mime_message_id() */
    time_t date;
    /* RFC 2369 / RFC 8058: the complete List-Unsubscribe value ("<https://...>, <mailto:...>") */
    const char *list_unsubscribe;
    bool one_click;          /* adds List-Unsubscribe-Post: List-Unsubscribe=One-Click */
    const char *list_id;     /* RFC 2919: "<label.domain>" (ASCII), or NULL */
    const char *feedback_id; /* or NULL */
    size_t feedback_id_len;
    const struct mime_header *headers;
    size_t nheaders;
    const struct mime_part *attachments; /* multipart/mixed */
    size_t nattachments;
    const struct mime_part *inline_parts; /* multipart/related with the HTML body */
    size_t ninline;
};

/*
 * Read path and encode it as a part: base64 in lines of 76 characters (RFC 2045
 * §6.8). content_type NULL takes mime_content_type() of the file name; cid is for
 * inline parts. Free with mime_part_free(). Errors: BLAST_EIO, BLAST_ENOMEM.
 */
int mime_part_load(const char *path, const char *filename, const char *content_type,
                   const char *cid, struct mime_part *out, struct blast_error *err);
void mime_part_free(struct mime_part *p);

/* The content type for a file name, from its extension; application/octet-stream if unknown. */
const char *mime_content_type(const char *filename);

/* Base64 of data in lines of at most 76 characters, each ending in CRLF. */
int mime_base64_lines(struct buf *out, const void *data, size_t len);

/*
 * Append the complete message (headers, blank line, body; CRLF line ends, not
 * dot-stuffed) to out. Errors: BLAST_EINVAL (no body), BLAST_ENOMEM.
 */
int mime_build(const struct mime_message *m, struct buf *out, struct blast_error *err);

/*
 * A new unique Message-ID "<random.time@domain>" for the given (ASCII) domain,
 * written into out (at least 128 bytes). Returns 0, or BLAST_EINVAL when it does
 * not fit.
 */
int mime_message_id(const char *domain, char *out, size_t size);

/*
 * Append a header field "Name: value" to out, with value (UTF-8) made safe:
 * control characters become spaces, and the value is RFC 2047-encoded when it is
 * not plain ASCII, contains "=?" or cannot be folded at single spaces, in lines of
 * MIME_LINE_SOFT. For unstructured fields such as Subject.
 */
int mime_header_text(struct buf *out, const char *name, const char *value, size_t len);

/*
 * Append a mailbox header "Name: Display <addr>" (From, To, Reply-To), encoding
 * the display name as needed and keeping the address intact on one line.
 */
int mime_header_mailbox(struct buf *out, const char *name, const struct address *a);

/* Quoted-printable encoding of a text body (line ends normalised to CRLF). */
int mime_qp_encode(struct buf *out, const char *in, size_t len);

/* True when in needs no transfer encoding: ASCII, no NUL, no bare CR, lines <= 998. */
int mime_is_7bit_clean(const char *in, size_t len);

#endif
