/*
 * campaign - the campaign file (YAML) loaded into one validated struct campaign.
 *
 * Owns: parsing with libyaml, the set of known keys and their types, defaults,
 * resolving relative paths against the campaign file's directory, and the place
 * (line and column, 1-based) of every value that a later stage may need to blame.
 * Does not own: reading the files the campaign points at (recipients, templates),
 * nor the journal's fingerprint of them (fingerprint), nor secrets: a relay names
 * where its password comes from, and secret_relay_password() (secret) fetches it
 * only when it is needed.
 *
 * The contract is docs/campaign.md.
 */
#ifndef BLAST_CAMPAIGN_H
#define BLAST_CAMPAIGN_H

#include "breaker.h"
#include "warmup.h"
#include "window.h"
#include "error.h"
#include "smtp.h"

#include <stdbool.h>
#include <stddef.h>

/* Where a value sits in the campaign file; 0 when the value is a default. */
struct campaign_place {
    int line;
    int column;
};

/* A rate "N/s", "N/m" or "N/h". */
struct campaign_rate {
    bool set;
    long count;        /* N > 0 */
    char unit;         /* 's', 'm' or 'h' */
    double per_second; /* count / unit length */
    struct campaign_place place;
};

struct campaign_relay {
    char *name; /* defaults to host; unique */
    char *host;
    int port; /* default 587 (starttls), 465 (tls) or 25 (none) */
    enum smtp_tls_mode tls;
    bool verify;      /* certificate and host name verification, default true */
    char *ca_file;    /* resolved path, or NULL for the system store */
    char *pin_sha256; /* hex SHA-256 of the certificate's public key, or NULL */
    char *username;
    /* exactly one of these when username is set */
    char *password_env;  /* name of the environment variable */
    char *password_file; /* resolved path of a file holding the secret */
    char *password_cmd;  /* shell command printing the secret */
    enum smtp_auth_choice auth;
    bool allow_plaintext;        /* tls: none, or AUTH without TLS, to a non-loopback host */
    int connections;             /* parallel sessions, default 2 */
    int messages_per_connection; /* then QUIT and reconnect; default 100, 0: no limit */
    int weight;                  /* share of the traffic among relays, default 1 */
    struct campaign_rate rate;
    struct smtp_timeouts timeouts;        /* 0: the RFC 5321 §4.5.3.2 default (smtp.h) */
    struct campaign_place place;          /* the relay's entry */
    struct campaign_place password_place; /* where the secret is named */
};

/* What `blast bounces` does with a message it has recorded (docs/bounces.md). */
enum campaign_bounces_after {
    CAMPAIGN_BOUNCES_SEEN = 0, /* IMAP: flag it \Seen (the default for IMAP) */
    CAMPAIGN_BOUNCES_MOVE,     /* IMAP: move it to 'folder' */
    CAMPAIGN_BOUNCES_DELETE,   /* delete it (POP3: the only choice, and its default) */
};
extern const char *const campaign_bounces_after_names[]; /* "seen", "move", "delete" */

/* The bounce mailbox: 'bounces' in the campaign. url is NULL when there is none. */
struct campaign_bounces {
    char *url; /* imaps://, imap:// (STARTTLS required), pop3s://, pop3:// (STARTTLS required) */
    bool pop3; /* the url is a POP3 one */
    char *username;
    /* exactly one of these */
    char *password_env;
    char *password_file; /* resolved */
    char *password_cmd;
    bool xoauth2;  /* 'auth: xoauth2': the secret is an OAuth 2.0 bearer token */
    bool verify;   /* certificate and host name verification, default true */
    char *ca_file; /* resolved, or NULL for the system store */
    enum campaign_bounces_after after;
    char *folder;     /* where 'after: move' moves messages */
    int soft_count;   /* soft bounces that suppress an address, default 3 */
    long soft_window; /* within this long (ms), default 30 days */
    struct campaign_place place, url_place, password_place;
};

/* An attachment or an inline part. */
struct campaign_part {
    char *path;         /* resolved */
    char *name;         /* file name shown to the reader; default: the path's last part */
    char *content_type; /* NULL: from the file name */
    char *cid;          /* inline parts only: referenced as cid:NAME */
    struct campaign_place place;
};

struct campaign_header {
    char *name;  /* field name, checked against RFC 5322 ftext */
    char *value; /* a template */
    struct campaign_place place;
};

enum campaign_dkim_alg { CAMPAIGN_DKIM_RSA_SHA256 = 0, CAMPAIGN_DKIM_ED25519_SHA256 };

struct campaign_dkim {
    char *domain;
    char *selector;
    char *key; /* resolved path of the PEM private key */
    enum campaign_dkim_alg algorithm;
    struct campaign_place place;
    struct campaign_place key_place;
};

struct campaign_domain_rate {
    char *domain; /* lower-case A-label form */
    struct campaign_rate rate;
};

/*
 * dns: how recipient domains are looked up (docs/campaign.md, "Providers"): MX records
 * tell which provider hosts a domain's mail, and which domains accept none. The
 * environment's BLAST_DNS_SERVERS, when set, overrides servers ("off": no lookups).
 */
struct campaign_dns {
    bool lookups;    /* false: none (no provider pace, no null-MX check) */
    char *servers;   /* "127.0.0.1:5353,[::1]:53"; NULL: the system's resolver */
    long timeout_ms; /* each lookup's try */
    struct campaign_place place;
    /*
     * outbound: the addresses (or host names) mail leaves the relays from, for the
     * DNS checks' SPF and PTR (core/preflight); none: the relays' own addresses.
     */
    char **outbound;
    size_t noutbound;
    struct campaign_place outbound_place;
};

/*
 * providers: changes to the shipped table of mailbox providers (core/provider): a
 * provider's rate, one of the campaign's own (with the MX host names that make it),
 * or one switched off (its domains then count alone).
 */
struct campaign_provider {
    char *name;
    bool off;
    struct campaign_rate rate; /* .set false: the shipped one */
    char **mx;                 /* host names or their parent domains; NULL: the shipped ones */
    size_t nmx;
    struct campaign_place place;
};

/*
 * notify: the webhook told when a `blast send` run ends (docs/report.md, "Webhook").
 * The Authorization value is never in the campaign file: authorization_env names the
 * variable that holds it, read when the request is made.
 */
struct campaign_notify {
    char *url; /* https://, or http:// to a loopback host; no user:password@ */
    struct campaign_place url_place;
    struct campaign_header *headers; /* extra request headers; plain values, not templates */
    size_t nheaders;
    char *authorization_env; /* the variable holding the Authorization value, or NULL */
    struct campaign_place authorization_place;
    long timeout;  /* ms per attempt, default 10 s */
    int retries;   /* attempts after the first, default 3 */
    bool verify;   /* TLS certificate and host name verification, default true */
    char *ca_file; /* resolved path, or NULL for the system store */
    struct campaign_place ca_file_place;
    bool loopback;               /* the host is loopback: never reached through a proxy */
    struct campaign_place place; /* the notify mapping */
};

/*
 * limits: where the campaign's rates are kept (docs/sharding.md, "Limits"). Without
 * 'shared' each process keeps its own, and each of N shards takes 1/N of every rate;
 * with it, the shards ask one Redis before each message (core/sharedlimit).
 */
struct campaign_limits {
    char *shared;         /* redis://HOST[:PORT][/DB], or NULL */
    char *password_env;   /* the variable holding Redis's password, or NULL */
    char *password_file;  /* or the file (resolved) whose first line it is, or NULL */
    bool allow_plaintext; /* the password may go in the clear to a host that is not loopback */
    long max_outage;      /* ms: a run stops when Redis cannot be used this long; default 10 min */
    struct campaign_place place, shared_place, password_place;
};

/*
 * Aliases: each use of an alias in the file is a copy of the node it names (vars
 * are copied into the campaign). What these copies add is bounded, so that a
 * small file cannot ask for gigabytes ("billion laughs"): at most this many
 * values (each scalar, list and mapping, keys included) and bytes of text, for
 * all the aliases of the file together (docs/campaign.md).
 */
#define CAMPAIGN_ALIAS_MAX_VALUES 10000
#define CAMPAIGN_ALIAS_MAX_BYTES  (1024 * 1024)

/* vars: a tree of strings, maps and lists, for templates. */
enum campaign_value_kind { CAMPAIGN_VALUE_STRING = 0, CAMPAIGN_VALUE_MAP, CAMPAIGN_VALUE_LIST };

struct campaign_value {
    enum campaign_value_kind kind;
    char *string;                 /* STRING */
    bool boolean;                 /* a STRING written as plain true or false: \"true\" or \"\" */
    char **keys;                  /* MAP: keys[i] names items[i] */
    struct campaign_value *items; /* MAP and LIST */
    size_t n;
};

/* A provider's own warm-up (warmup: providers:). */
struct campaign_warmup_provider {
    char *name;
    bool off; /* false in the file: no warm-up for it */
    struct warmup_schedule schedule;
    struct campaign_place place;
};

struct campaign {
    char *path; /* the campaign file as given */
    char *dir;  /* its directory, against which relative paths were resolved */
    char *name; /* [A-Za-z0-9._-]+ */
    char *from; /* header value, e.g. "Acme News <news@acme.example>" */
    struct campaign_place from_place;
    char *envelope_from; /* MAIL FROM address; NULL means the From address */
    struct campaign_place envelope_from_place;
    struct {
        char *address;     /* template with {token} (core/verp), or NULL: no return path */
        char *secret_env;  /* the HMAC key's environment variable, or NULL */
        char *secret_file; /* or the file (resolved path) whose first line it is */
        struct campaign_place place, secret_place;
    } return_path;
    char *reply_to; /* NULL when absent */
    struct campaign_place reply_to_place;
    char *subject; /* a template */
    struct campaign_place subject_place;
    char *helo; /* EHLO name; NULL: the host name if qualified, else an address literal */

    struct {
        char *path; /* resolved */
        struct campaign_place path_place;
        char *email_column; /* default "email" */
        struct campaign_place email_column_place;
        char *name_column; /* NULL when absent */
        struct campaign_place name_column_place;
        char delimiter; /* default ',' */
    } recipients;

    /* suppression lists: resolved paths */
    char **suppression;
    struct campaign_place *suppression_places;
    size_t nsuppression;
    char *suppression_db; /* resolved path of the suppression database (core/suppressdb), or NULL */
    struct campaign_place suppression_db_place;

    struct {
        char *text; /* resolved template paths; at least one is set */
        struct campaign_place text_place;
        char *html;
        struct campaign_place html_place;
    } body;

    struct campaign_part *attachments;
    size_t nattachments;
    struct campaign_part *inline_parts;
    size_t ninline;

    struct campaign_header *headers;
    size_t nheaders;

    struct {
        char *url;      /* a template (https only), or NULL */
        char *mailto;   /* an address, or NULL */
        bool one_click; /* RFC 8058 List-Unsubscribe-Post; needs url */
        struct campaign_place place;
        struct campaign_place url_place;
    } list_unsubscribe;

    char *feedback_id; /* a template, or NULL */
    struct campaign_place feedback_id_place;

    struct campaign_dkim *dkim;
    size_t ndkim;

    struct campaign_relay *relays;
    size_t nrelays;

    struct campaign_rate rate; /* global cap */
    struct campaign_domain_rate *domain_rates;
    size_t ndomain_rates;

    struct campaign_limits limits;
    struct campaign_dns dns;
    struct breaker_options breaker; /* breaker: (after 0: off) */
    struct campaign_place breaker_place;
    struct campaign_provider *providers;
    size_t nproviders;

    /*
     * window: when recipients may be sent to (core/window), on the wall clock of the
     * campaign's time zone, or of each recipient's from the list's zone_column.
     */
    struct {
        bool set;
        struct window w;
        char *zone_column; /* NULL: every recipient in the campaign's zone */
        struct campaign_place place, zone_column_place;
    } window;

    /* preflight: dns: send checks the sending domain's DNS records first (core/preflight) */
    bool preflight_dns;
    struct campaign_place preflight_place;

    /* timezone: an IANA zone name for windows and warm-up days, or NULL: the system's */
    char *timezone;
    struct campaign_place timezone_place;

    /*
     * warmup: a new sender's daily caps per mailbox provider (core/warmup), counted
     * in store across runs and campaigns. Schedules' lists are owned here.
     */
    struct {
        bool enabled;
        struct warmup_schedule schedule; /* every provider's, unless below */
        struct campaign_warmup_provider *providers;
        size_t nproviders;
        int64_t start; /* day 1 of the ramp (days since 1970-01-01), or -1: the store's */
        char *store;   /* resolved path; NULL: suppression_db, else .blast/warmup.db */
        struct campaign_place place, store_place;
    } warmup;

    /*
     * seeds: the team's own mailboxes, sent the message before the list (a canary):
     * addresses as written (a mailbox, "Name <a@b>" allowed), each with its place.
     */
    struct {
        char **addresses;
        struct campaign_place *places;
        size_t n;
        long wait; /* ms the list waits for the seeds' outcomes, default 60 s */
        struct campaign_place place;
    } seeds;

    struct {
        struct campaign_place place; /* line 0: the defaults */
        int attempts;                /* delivery attempts in all, default 5 */
        long initial;                /* ms before the first retry, default 1 min */
        long max;                    /* longest wait between retries, default 30 min */
        long window;                 /* give up this long after the first attempt, default 4 h */
    } retry;

    struct {
        unsigned notify; /* SMTP_DSN_* bits (RFC 3461 NOTIFY), 0: not set */
        enum smtp_dsn_ret ret;
        struct campaign_place place;
    } dsn;

    bool chunking; /* BDAT (RFC 3030) instead of DATA when offered */

    struct campaign_value vars; /* a MAP, possibly empty */

    struct campaign_notify *notify; /* NULL when the campaign has no 'notify' */

    struct campaign_bounces bounces; /* the mailbox what comes back is read from (blast bounces) */

    char *report;  /* resolved; NULL means the default chosen by the caller */
    char *journal; /* resolved; NULL means the default chosen by the caller */
    struct campaign_place journal_place;
    struct campaign_place chunking_place;
    struct campaign_place helo_place;
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

/* Parse "90s", "5m", "4h", "2d", "500ms" or sums of them ("1h30m") into milliseconds > 0. */
int campaign_parse_duration(const char *text, long *ms);

/* Parse "N/s", "N/m" or "N/h" with N > 0. */
int campaign_parse_rate(const char *text, struct campaign_rate *out);

/* Look a dotted name ("company.address") up in vars; NULL when absent. */
const struct campaign_value *campaign_var(const struct campaign *c, const char *dotted);

const char *campaign_dkim_alg_name(enum campaign_dkim_alg alg);

/*
 * The warm-up ramp of a provider (or WARMUP_OTHER): its own from 'warmup':
 * 'providers', else the campaign's; NULL when it is set false (no warm-up for it).
 */
const struct warmup_schedule *campaign_warmup_ramp(const struct campaign *c, const char *provider);

#endif
