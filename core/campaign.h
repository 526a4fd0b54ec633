/*
 * campaign - the campaign file (YAML) loaded into one validated struct campaign.
 *
 * Owns: parsing with libyaml, the set of known keys and their types, defaults,
 * resolving relative paths against the campaign file's directory, and the place
 * (line and column, 1-based) of every value that a later stage may need to blame.
 * Does not own: reading the files the campaign points at (recipients, templates),
 * nor secrets: a relay names where its password comes from, and
 * campaign_relay_password() fetches it only when it is needed.
 *
 * The contract is ../shared/DESIGN.md §5 and docs/campaign.md.
 */
#ifndef BLAST_CAMPAIGN_H
#define BLAST_CAMPAIGN_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/* Where a value sits in the campaign file; 0 when the value is a default. */
struct campaign_place {
    int line;
    int column;
};

enum campaign_tls {
    CAMPAIGN_TLS_STARTTLS = 0, /* RFC 3207, required: never a plaintext fallback */
    CAMPAIGN_TLS_IMPLICIT,     /* RFC 8314 implicit TLS, usually port 465 */
    CAMPAIGN_TLS_NONE,         /* plaintext: loopback only unless allowed */
};

enum campaign_auth {
    CAMPAIGN_AUTH_AUTO = 0, /* strongest mechanism the server offers */
    CAMPAIGN_AUTH_PLAIN,
    CAMPAIGN_AUTH_LOGIN,
    CAMPAIGN_AUTH_CRAM_MD5,
    CAMPAIGN_AUTH_XOAUTH2,
};

struct campaign_relay {
    char *name; /* defaults to host */
    char *host;
    int port; /* default 587 (starttls), 465 (tls) or 25 (none) */
    enum campaign_tls tls;
    bool verify;   /* certificate and host name verification, default true */
    char *ca_file; /* resolved path, or NULL for the system store */
    char *username;
    char *password_env; /* name of the environment variable, or NULL */
    enum campaign_auth auth;
    struct campaign_place place;          /* the relay's entry */
    struct campaign_place password_place; /* password_env, or the entry */
};

struct campaign {
    char *path; /* the campaign file as given */
    char *dir;  /* its directory, against which relative paths were resolved */
    char *name; /* [A-Za-z0-9._-]+ */
    char *from; /* header value, e.g. "Acme News <news@acme.example>" */
    struct campaign_place from_place;
    char *envelope_from; /* MAIL FROM address; NULL means the From address */
    struct campaign_place envelope_from_place;
    char *reply_to; /* NULL when absent */
    struct campaign_place reply_to_place;
    char *subject; /* a template */
    struct campaign_place subject_place;

    struct {
        char *path; /* resolved */
        struct campaign_place path_place;
        char *email_column; /* default "email" */
        struct campaign_place email_column_place;
        char *name_column; /* NULL when absent */
        struct campaign_place name_column_place;
        char delimiter; /* default ',' */
    } recipients;

    struct {
        char *text; /* resolved template paths; at least one is set */
        struct campaign_place text_place;
        char *html;
        struct campaign_place html_place;
    } body;

    struct campaign_relay *relays;
    size_t nrelays;

    char *report; /* resolved; NULL means the default chosen by the caller */
};

/*
 * Read and validate the campaign file at path. On success *out is a new campaign
 * the caller frees with campaign_free(). On failure returns BLAST_EIO (cannot
 * read), BLAST_ESYNTAX (not YAML) or BLAST_EINVAL (a key or value is wrong), with
 * err naming path, line and column.
 */
int campaign_load(const char *path, struct campaign **out, struct blast_error *err);

/* Free a campaign and everything it owns. Accepts NULL. */
void campaign_free(struct campaign *c);

/*
 * Fetch a relay's secret into a new string the caller must wipe and free (NULL
 * and 0 when the relay has no username). Fails with BLAST_EINVAL, naming the place
 * of password_env, when the variable is unset or empty. The secret itself never
 * appears in err.
 */
int campaign_relay_password(const struct campaign *c, const struct campaign_relay *r, char **out,
                            struct blast_error *err);

const char *campaign_tls_name(enum campaign_tls tls);
const char *campaign_auth_name(enum campaign_auth auth);

#endif
