/*
 * notify - tell a webhook how a `blast send` run ended: one JSON POST, with libcurl.
 *
 * Owns: the payload's layout (schema_version 1, event "campaign.finished"; see
 * docs/report.md, "Webhook"), the request (POST, Content-Type: application/json,
 * User-Agent: blast/VERSION, the campaign's extra headers, and the Authorization value
 * read from the variable that authorization_env names), its limits (http and https
 * only, no redirect followed, TLS 1.2 or newer with the certificate and host name
 * verified unless the campaign says otherwise, a timeout per attempt) and its
 * retries: after a connection error, a timeout, HTTP 429 or 5xx, with a wait that
 * doubles from one second up to a bound; never after another 4xx. The rules for its
 * URL (url_check_webhook(), core/url: https, or http to a loopback host; no credentials in it),
 * which the campaign loader applies. And the check, before a run, that the webhook's
 * settings living outside the campaign file are there (notify_check_settings(): the
 * authorization_env variable and the ca_file): they belong to the request, not to a
 * relay's login, so that check lives here with the request that reads them rather
 * than in secret.
 *
 * Secrets: messages name the webhook by notify_url_display() (no user:password@, the
 * query as "?***"); the Authorization value is never in a message or a log line and
 * is wiped from memory after the request; the response body is discarded unread,
 * since a server may echo the request's headers back in it.
 *
 * Does not own: reading the 'notify' mapping of the campaign file, its other keys'
 * rules and the places of its errors (campaign); libcurl's global set-up (curl_global_init() is
 * called once, by cmd/blast/main.c, before any thread starts); whether a run notifies at all, and
 * what a failure means for the exit code (cmd/blast/send.c); the summary (report).
 */
#ifndef BLAST_NOTIFY_H
#define BLAST_NOTIFY_H

#include "campaign.h"
#include "error.h"
#include "log.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#define NOTIFY_SCHEMA_VERSION 1
#define NOTIFY_EVENT_FINISHED "campaign.finished"
#define NOTIFY_BACKOFF_MS     1000L  /* the first wait between attempts */
#define NOTIFY_BACKOFF_MAX_MS 30000L /* no wait is longer */

/* What the payload says about the run. */
struct notify_event {
    const char *campaign;      /* the campaign's name */
    const char *campaign_file; /* the campaign file as given on the command line */
    int exit_code;             /* blast send's exit code (docs/delivery.md) */
    const char *report;        /* the report file written, or NULL (none, or stdout) */
    struct json_t *summary;    /* borrowed: report_summary()'s object, or NULL */
};

/*
 * The payload {"schema_version", "event", "campaign": {name, file}, "exit_code",
 * "report", "summary"}: a new reference the caller releases, or NULL when out of
 * memory.
 */
struct json_t *notify_payload(const struct notify_event *ev);

struct notify_options {
    const struct log *log;       /* each attempt that failed, at info level; may be NULL */
    long backoff_ms;             /* the first wait between attempts; 0: NOTIFY_BACKOFF_MS */
    long backoff_max_ms;         /* the longest wait; 0: NOTIFY_BACKOFF_MAX_MS */
    volatile sig_atomic_t *stop; /* non-zero: give up now, even mid-request; may be NULL */
};

struct notify_result {
    int attempts; /* requests made */
    long status;  /* the last HTTP status, 0 when no response came */
};

/*
 * POST payload (borrowed) to the webhook n describes, making at most 1 + n->retries
 * attempts; opt may be NULL for the defaults, res may be NULL. Returns 0 once the
 * webhook answered 2xx. Errors, with err naming the webhook by its masked URL:
 * BLAST_EINVAL (the authorization variable is unset, empty or holds a control
 * character: named, never quoted), BLAST_ENOMEM, BLAST_ECONNECT (no connection),
 * BLAST_ETIMEOUT (an attempt timed out, or opt->stop was raised), BLAST_ETLS (the
 * handshake or the certificate failed), BLAST_EREPLY (an HTTP status other than 2xx,
 * a redirect included), BLAST_EPROTO (not an HTTP answer).
 */
int notify_post(const struct campaign_notify *n, struct json_t *payload,
                const struct notify_options *opt, struct notify_result *res,
                struct blast_error *err);

/*
 * Check, before a run, what the webhook of campaign c needs from outside the campaign
 * file: the variable authorization_env names is set, not empty and holds no line break
 * or other control character; the ca_file is readable. Does nothing when c has no
 * 'notify'. Fails with BLAST_EINVAL naming the variable (never its value) or the
 * file, at its place in c's file.
 */
int notify_check_settings(const struct campaign *c, struct blast_error *err);

/*
 * The URL as messages show it: scheme://host[:port]/path, with "***@" for a user
 * name or password and "?***" for the query. Never longer than size - 1 bytes.
 */
void notify_url_display(const char *url, char *out, size_t size);

#endif
