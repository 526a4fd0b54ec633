/*
 * notify - the end-of-run webhook: build the payload, POST it with libcurl, retry
 * what may pass. See notify.h.
 *
 * One easy handle serves every attempt: its options are set once, then each attempt
 * is one curl_easy_perform(). An attempt's outcome is either a libcurl error (no
 * HTTP answer) or an HTTP status; retryable() decides from that alone. The waits
 * between attempts are slept in short slices so that opt->stop is noticed at once.
 */
#include "notify.h"
#include "conn.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef BLAST_VERSION
#define BLAST_VERSION "unknown"
#endif

#define NOTIFY_SLEEP_SLICE_MS 100

json_t *notify_payload(const struct notify_event *ev)
{
    json_t *summary = ev->summary != NULL ? ev->summary : json_null();

    return json_pack("{s:i, s:s, s:{s:s, s:s}, s:i, s:s?, s:O}", "schema_version",
                     NOTIFY_SCHEMA_VERSION, "event", NOTIFY_EVENT_FINISHED, "campaign", "name",
                     ev->campaign, "file", ev->campaign_file, "exit_code", ev->exit_code, "report",
                     ev->report, "summary", summary);
}

void notify_url_display(const char *url, char *out, size_t size)
{
    const char *rest, *auth_end, *host_end, *query, *fragment;
    size_t scheme_len = 0;
    int n;

    if (size == 0)
        return;
    rest = strstr(url, "://");
    if (rest != NULL) {
        scheme_len = (size_t)(rest - url) + 3;
        rest += 3;
    } else {
        rest = url;
    }
    host_end = rest + strcspn(rest, "/?#");
    /* the last '@' before the path ends the user name and password */
    auth_end = NULL;
    for (const char *p = rest; p < host_end; p++)
        if (*p == '@')
            auth_end = p;
    fragment = strchr(host_end, '#');
    query = strchr(host_end, '?');
    if (query != NULL && fragment != NULL && query > fragment)
        query = NULL;
    if (auth_end != NULL)
        rest = auth_end + 1;
    n = snprintf(out, size, "%.*s%s%.*s%s", (int)scheme_len, url, auth_end != NULL ? "***@" : "",
                 (int)((query != NULL      ? query
                        : fragment != NULL ? fragment
                                           : url + strlen(url)) -
                       rest),
                 rest, query != NULL ? "?***" : "");
    if (n < 0)
        out[0] = '\0';
}

/*
 * Copy text into out with every occurrence of each secret (those at least 3 bytes
 * long, so that a short one does not blank out ordinary words) replaced by "***".
 */
static void scrub(const char *text, const char *const *secrets, size_t nsecrets, char *out,
                  size_t size)
{
    size_t o = 0, i;

    while (*text != '\0' && o + 1 < size) {
        size_t hit = 0;

        for (i = 0; i < nsecrets && hit == 0; i++)
            if (secrets[i] != NULL && strlen(secrets[i]) >= 3 &&
                strncmp(text, secrets[i], strlen(secrets[i])) == 0)
                hit = strlen(secrets[i]);
        if (hit > 0) {
            o += (size_t)snprintf(out + o, size - o, "***");
            if (o >= size)
                o = size - 1;
            text += hit;
        } else {
            out[o++] = *text++;
        }
    }
    out[o] = '\0';
}

/* Errors that another attempt may not meet: no connection, a timeout, a cut answer. */
static bool retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* HTTP 429 (too many requests) and 5xx are the server's own "try again later". */
static bool retryable_status(long status)
{
    return status == 429 || (status >= 500 && status <= 599);
}

static int curl_rc(CURLcode c)
{
    switch (c) {
    case CURLE_OUT_OF_MEMORY:
        return BLAST_ENOMEM;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_ABORTED_BY_CALLBACK:
        return BLAST_ETIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
        return BLAST_ETLS;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return BLAST_ECONNECT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return BLAST_ECLOSED;
    default:
        return BLAST_EPROTO;
    }
}

/* The body of the answer is not read: a server may echo the request's headers in it. */
static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int check_stop(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    volatile sig_atomic_t *stop = arg;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return *stop != 0;
}

static bool stopped(const struct notify_options *opt)
{
    return opt->stop != NULL && *opt->stop != 0;
}

/* Sleep ms, in slices, unless opt->stop rises. */
static void wait_ms(const struct notify_options *opt, long ms)
{
    int64_t until = timeutil_mono_ms() + ms;

    while (!stopped(opt)) {
        int64_t left = until - timeutil_mono_ms();
        struct timespec ts;

        if (left <= 0)
            break;
        if (left > NOTIFY_SLEEP_SLICE_MS)
            left = NOTIFY_SLEEP_SLICE_MS;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
}

/* "Name: value" (or "Name:" when value is NULL) appended to *list, which libcurl copies. */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t n = strlen(name) + (value != NULL ? strlen(value) : 0) + 3;
    char *line = malloc(n);
    struct curl_slist *l;

    if (line == NULL)
        return BLAST_ENOMEM;
    snprintf(line, n, "%s:%s%s", name, value != NULL ? " " : "", value != NULL ? value : "");
    l = curl_slist_append(*list, line);
    OPENSSL_cleanse(line, n);
    free(line);
    if (l == NULL)
        return BLAST_ENOMEM;
    *list = l;
    return 0;
}

/* Free a header list, wiping it first: it may hold the Authorization value. */
static void free_headers(struct curl_slist *list)
{
    struct curl_slist *l;

    for (l = list; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

static int build_headers(const struct campaign_notify *n, const char *authorization,
                         struct curl_slist **out)
{
    struct curl_slist *list = NULL;
    size_t i;
    int rc = 0;

    *out = NULL;
    /* "Expect:" with no value keeps libcurl from waiting for a 100 Continue */
    if ((rc = add_header(&list, "Content-Type", "application/json")) < 0 ||
        (rc = add_header(&list, "Expect", NULL)) < 0)
        goto out;
    for (i = 0; i < n->nheaders; i++)
        if ((rc = add_header(&list, n->headers[i].name, n->headers[i].value)) < 0)
            goto out;
    if (authorization != NULL && (rc = add_header(&list, "Authorization", authorization)) < 0)
        goto out;
    *out = list;
    list = NULL;
out:
    free_headers(list);
    return rc;
}

/* Every option, set once for all attempts; the first one libcurl refuses is returned. */
static CURLcode setup(CURL *h, const struct campaign_notify *n, const struct notify_options *opt,
                      struct curl_slist *headers, const char *body, char *errbuf)
{
    CURLcode c = CURLE_OK;

    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_URL, n->url);
    /* nothing but HTTP(S), and no redirect that would carry the headers elsewhere */
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_USERAGENT, "blast/" BLAST_VERSION);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, n->timeout);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, n->timeout);
    /* no SIGALRM for name resolution: blast has threads and its own signal handlers */
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, n->verify ? 1L : 0L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, n->verify ? 2L : 0L);
    if (c == CURLE_OK && n->ca_file != NULL)
        c = curl_easy_setopt(h, CURLOPT_CAINFO, n->ca_file);
    /* a proxy from the environment is for leaving the machine, not for a local receiver */
    if (c == CURLE_OK && n->loopback)
        c = curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (c == CURLE_OK)
        c = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (c == CURLE_OK && opt->stop != NULL) {
        c = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, check_stop);
        if (c == CURLE_OK)
            c = curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)opt->stop);
        if (c == CURLE_OK)
            c = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    return c;
}

/* A control character, a line break among them, would add a header of its own. */
static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* The variable authorization_env names: set, not empty, no control character. */
static int authorization_value(const struct campaign_notify *n, const char *where, const char **out,
                               struct blast_error *err)
{
    const char *v;

    *out = NULL;
    if (n->authorization_env == NULL)
        return 0;
    v = getenv(n->authorization_env);
    if (v == NULL || v[0] == '\0')
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "notify %s: environment variable %s is %s", where,
                               n->authorization_env, v == NULL ? "not set" : "empty");
    if (has_control(v))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "notify %s: environment variable %s holds a line break or "
                               "another control character",
                               where, n->authorization_env);
    *out = v;
    return 0;
}

/*
 * The same rules as authorization_value(), checked before the run with the places of
 * the campaign file, and the ca_file readable.
 */
int notify_check_settings(const struct campaign *c, struct blast_error *err)
{
    const struct campaign_notify *n = c->notify;
    const struct campaign_place *at;

    if (n == NULL)
        return 0;
    if (n->authorization_env != NULL) {
        const char *v = getenv(n->authorization_env);

        at = &n->authorization_place;
        if (v == NULL || v[0] == '\0')
            return blast_error_set(err, BLAST_EINVAL, c->path, at->line, at->column,
                                   "notify: environment variable %s is %s", n->authorization_env,
                                   v == NULL ? "not set" : "empty");
        if (has_control(v))
            return blast_error_set(err, BLAST_EINVAL, c->path, at->line, at->column,
                                   "notify: environment variable %s holds a line break or "
                                   "another control character",
                                   n->authorization_env);
    }
    at = &n->ca_file_place;
    if (n->ca_file != NULL && access(n->ca_file, R_OK) != 0)
        return blast_error_set(err, BLAST_EINVAL, c->path, at->line, at->column,
                               "notify: cannot read ca_file %s: %s", n->ca_file, strerror(errno));
    return 0;
}

/* What went wrong in one attempt, in words, with every secret masked. */
static void describe(CURLcode c, long status, const char *errbuf, const char *const *secrets,
                     char *out, size_t size)
{
    char raw[CURL_ERROR_SIZE + 160];

    if (c == CURLE_OK && status >= 300 && status <= 399)
        snprintf(raw, sizeof raw,
                 "HTTP %ld, a redirect: blast does not follow redirects (point 'url' at the "
                 "final address)",
                 status);
    else if (c == CURLE_OK)
        snprintf(raw, sizeof raw, "HTTP %ld", status);
    else if (c == CURLE_PEER_FAILED_VERIFICATION)
        snprintf(raw, sizeof raw, "%s (trust its CA with 'ca_file' in 'notify')",
                 errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c));
    else if (c == CURLE_ABORTED_BY_CALLBACK)
        snprintf(raw, sizeof raw, "stopped by a signal");
    else
        snprintf(raw, sizeof raw, "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c));
    scrub(raw, secrets, 2, out, size);
}

int notify_post(const struct campaign_notify *n, json_t *payload,
                const struct notify_options *options, struct notify_result *res,
                struct blast_error *err)
{
    static const struct notify_options defaults;
    const struct notify_options *opt = options != NULL ? options : &defaults;
    long backoff_max = opt->backoff_max_ms > 0 ? opt->backoff_max_ms : NOTIFY_BACKOFF_MAX_MS;
    long backoff = opt->backoff_ms > 0 ? opt->backoff_ms : NOTIFY_BACKOFF_MS;
    struct notify_result local;
    struct curl_slist *headers = NULL;
    const char *authorization = NULL, *secrets[2];
    char where[512], errbuf[CURL_ERROR_SIZE], last[CURL_ERROR_SIZE + 200];
    char *body = NULL;
    CURL *h = NULL;
    CURLcode c;
    int rc = 0, attempt, rc_last = 0;

    if (backoff > backoff_max)
        backoff = backoff_max;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);
    notify_url_display(n->url, where, sizeof where);
    if ((rc = authorization_value(n, where, &authorization, err)) < 0)
        goto out;
    /* what must never show: the Authorization value and the URL's query */
    secrets[0] = authorization;
    secrets[1] = strchr(n->url, '?') != NULL ? strchr(n->url, '?') + 1 : NULL;
    body = json_dumps(payload, JSON_COMPACT | JSON_REAL_PRECISION(10));
    h = curl_easy_init();
    if (body == NULL || h == NULL || build_headers(n, authorization, &headers) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "notify %s: out of memory", where);
        goto out;
    }
    errbuf[0] = '\0';
    if ((c = setup(h, n, opt, headers, body, errbuf)) != CURLE_OK) {
        rc = blast_error_set(err, c == CURLE_OUT_OF_MEMORY ? BLAST_ENOMEM : BLAST_EINVAL, NULL, 0,
                             0, "notify %s: libcurl refused an option: %s", where,
                             curl_easy_strerror(c));
        goto out;
    }
    for (attempt = 1;; attempt++) {
        bool again;

        errbuf[0] = '\0';
        res->status = 0;
        c = curl_easy_perform(h);
        res->attempts = attempt;
        if (c == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
        if (c == CURLE_OK && res->status >= 200 && res->status <= 299) {
            log_msg(opt->log, LOG_LEVEL_INFO, "notify: %s answered HTTP %ld (attempt %d)", where,
                    res->status, attempt);
            rc = 0;
            goto out;
        }
        describe(c, res->status, errbuf, secrets, last, sizeof last);
        rc_last = c == CURLE_OK ? BLAST_EREPLY : curl_rc(c);
        again = c == CURLE_OK ? retryable_status(res->status) : retryable_curl(c);
        if (!again || attempt > n->retries || stopped(opt))
            break;
        log_msg(opt->log, LOG_LEVEL_INFO,
                "notify: %s: %s (attempt %d of %d); trying again in %.1f s", where, last, attempt,
                n->retries + 1, (double)backoff / 1000.0);
        wait_ms(opt, backoff);
        if (stopped(opt)) {
            snprintf(last, sizeof last, "stopped by a signal");
            rc_last = BLAST_ETIMEOUT;
            break;
        }
        backoff = backoff > backoff_max / 2 ? backoff_max : backoff * 2;
    }
    rc = blast_error_set(err, rc_last, NULL, 0, 0, "notify %s: %s (%d attempt%s)", where, last,
                         res->attempts, res->attempts == 1 ? "" : "s");
out:
    free_headers(headers);
    curl_easy_cleanup(h);
    free(body);
    return rc;
}
