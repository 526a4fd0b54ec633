/*
 * mailbox - the bounce mailbox over IMAP or POP3 with libcurl. See mailbox.h.
 *
 * One easy handle keeps one connection: libcurl logs in once and, for IMAP,
 * remembers the mailbox it selected, so each message costs one command and its
 * answer. Commands libcurl has no option for (UID SEARCH, UID STORE, UID MOVE, UID
 * EXPUNGE, UIDL, DELE) go as custom requests; their untagged answers come to the
 * write callback.
 */
#include "mailbox.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * UIDs in one STORE, MOVE or EXPUNGE. Each expunged message is an untagged line of
 * the answer, and libcurl 7.88 counts the lines of one read against its 300 KB cap
 * on a response's headers in a way that grows with their square: 200 lines of one
 * read overran it. 50 keep far below it, and the command line short.
 */
#define UIDS_PER_COMMAND 50

/*
 * libcurl's receive buffer: an untagged line longer than it is garbled (a SEARCH
 * answer of 10,000 UIDs is 60 KB), so it is as large as libcurl allows (512 KB up
 * to 7.87); ESEARCH (below) keeps answers short anyway.
 */
#define RECEIVE_BUFFER (512L * 1024)

struct mailbox {
    const struct mailbox_options *o;
    CURL *curl;
    char *base;      /* the URL without a trailing '/', with the mailbox for IMAP */
    struct buf body; /* what a request wrote */
    size_t max;      /* the most a request may write */
    bool too_big;
    bool folder_made; /* CREATE sent for the folder of 'after: move' */
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct mailbox *mb = arg;
    size_t len = size * n;

    if (mb->body.len + len > mb->max) {
        mb->too_big = true;
        return 0; /* libcurl stops the transfer */
    }
    return buf_append(&mb->body, data, len) == 0 ? len : 0;
}

static void configure(struct mailbox *mb);

int mailbox_open(const struct mailbox_options *o, struct mailbox **out, struct blast_error *err)
{
    struct mailbox *mb = calloc(1, sizeof *mb);
    size_t len = strlen(o->url);
    const char *path;

    *out = NULL;
    if (mb == NULL || (mb->curl = curl_easy_init()) == NULL)
        goto oom;
    mb->o = o;
    buf_init(&mb->body);
    configure(mb);
    while (len > 0 && o->url[len - 1] == '/')
        len--;
    path = strstr(o->url, "://");
    path = path != NULL ? strchr(path + 3, '/') : NULL;
    if (asprintf(&mb->base, "%.*s%s", (int)len, o->url,
                 o->pop3 || (path != NULL && (size_t)(path - o->url) < len) ? "" : "/INBOX") < 0) {
        mb->base = NULL;
        goto oom;
    }
    *out = mb;
    return 0;
oom:
    mailbox_close(mb);
    return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
}

void mailbox_close(struct mailbox *mb)
{
    if (mb == NULL)
        return;
    if (mb->curl != NULL)
        curl_easy_cleanup(mb->curl); /* QUIT / LOGOUT: POP3 carries out its DELEs now */
    buf_free(&mb->body);
    free(mb->base);
    free(mb);
}

/* The error code and words for what libcurl said. */
static int fail(struct mailbox *mb, CURLcode c, const char *doing, struct blast_error *err)
{
    int code;

    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        code = BLAST_ECONNECT;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = BLAST_ETIMEOUT;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CACERT_BADFILE:
        code = BLAST_ETLS;
        break;
    case CURLE_LOGIN_DENIED:
        code = BLAST_EAUTH;
        break;
    default:
        code = BLAST_EPROTO;
    }
    return blast_error_set(err, code, mb->o->url, 0, 0, "%s: %s", doing,
                           mb->errbuf[0] != '\0' ? mb->errbuf : curl_easy_strerror(c));
}

/* What every request of the session shares: set once, when the handle is made. */
static void configure(struct mailbox *mb)
{
    const struct mailbox_options *o = mb->o;
    CURL *c = mb->curl;

    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->pop3 ? "pop3,pop3s" : "imap,imaps");
    curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL); /* STARTTLS or nothing */
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(c, CURLOPT_USERNAME, o->username);
    if (o->xoauth2) {
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, o->secret);
        curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
    } else {
        curl_easy_setopt(c, CURLOPT_PASSWORD, o->secret);
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, RECEIVE_BUFFER);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, mb->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mb);
}

/*
 * One request: url (the base when NULL) with the custom command cmd (NULL: libcurl's
 * own, a FETCH or RETR for a message URL); its answer in mb->body.
 */
static CURLcode request(struct mailbox *mb, const char *url, const char *cmd, bool nobody,
                        size_t max)
{
    CURL *c = mb->curl;

    buf_reset(&mb->body);
    mb->max = max;
    mb->too_big = false;
    mb->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url != NULL ? url : mb->base);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, cmd);
    curl_easy_setopt(c, CURLOPT_NOBODY, nobody ? 1L : 0L);
    return curl_easy_perform(c);
}

/* Append a message (id, and uid as its printable name) to the growing list. */
static int push_item(struct mailbox_item **items, size_t *n, size_t *cap, uint64_t id,
                     const char *uid)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct mailbox_item *g = realloc(*items, ncap * sizeof *g);
        if (g == NULL)
            return BLAST_ENOMEM;
        *items = g;
        *cap = ncap;
    }
    (*items)[*n].id = id;
    snprintf((*items)[*n].uid, sizeof(*items)[*n].uid, "%s", uid);
    (*n)++;
    return 0;
}

/* The numbers of IMAP's "* SEARCH 1 2 3" lines (RFC 9051 §7.3.4). */
static int parse_search(struct mailbox *mb, struct mailbox_item **items, size_t *n)
{
    size_t cap = 0;
    const char *p = mb->body.data, *end = p + mb->body.len;

    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *stop = eol != NULL ? eol : end;
        if ((size_t)(stop - p) > 8 && strncasecmp(p, "* SEARCH", 8) == 0) {
            const char *q = p + 8;
            while (q < stop) {
                char *e;
                unsigned long long uid = strtoull(q, &e, 10);
                if (e == q) {
                    q++;
                    continue;
                }
                char name[24];
                snprintf(name, sizeof name, "%llu", uid);
                if (push_item(items, n, &cap, uid, name) < 0)
                    return BLAST_ENOMEM;
                q = e;
            }
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return 0;
}

/*
 * RFC 4731 ESEARCH: "* ESEARCH (TAG "x") UID COUNT n ALL 1:3,7" — the UIDs as a
 * sequence set, whose ranges keep the answer short. Returns 1 when the answer was
 * one (its count checked against the UIDs it lists), 0 when not, or an error.
 */
static int parse_esearch(struct mailbox *mb, struct mailbox_item **items, size_t *n)
{
    const char *p = mb->body.data, *end = p + mb->body.len, *line = NULL;
    size_t cap = 0;
    unsigned long long count = 0;
    bool has_count = false;

    for (const char *q = p; q != NULL && q < end;) {
        if ((size_t)(end - q) > 9 && strncasecmp(q, "* ESEARCH", 9) == 0)
            line = q;
        q = memchr(q, '\n', (size_t)(end - q));
        q = q != NULL ? q + 1 : NULL;
    }
    if (line == NULL)
        return 0;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    eol = eol != NULL ? eol : end;
    const char *c = strcasestr(line, " COUNT ");
    if (c != NULL && c < eol) {
        count = strtoull(c + 7, NULL, 10);
        has_count = true;
    }
    const char *all = strcasestr(line, " ALL ");
    if (all != NULL && all < eol) {
        const char *q = all + 5;
        while (q < eol && *q >= '0' && *q <= '9') {
            char *e;
            unsigned long long lo = strtoull(q, &e, 10), hi = lo;
            if (*e == ':')
                hi = strtoull(e + 1, &e, 10);
            if (hi < lo) {
                unsigned long long t = lo;
                lo = hi;
                hi = t;
            }
            if (hi - lo > 10000000ULL)
                return BLAST_EPROTO;
            for (unsigned long long u = lo; u <= hi; u++) {
                char name[24];
                snprintf(name, sizeof name, "%llu", u);
                if (push_item(items, n, &cap, u, name) < 0)
                    return BLAST_ENOMEM;
            }
            if (*e != ',')
                break;
            q = e + 1;
        }
    }
    if (has_count && count != *n)
        return BLAST_EPROTO;
    return 1;
}

/* POP3's UIDL answer: "N UIDL" lines (RFC 1939 §7). */
static int parse_uidl(struct mailbox *mb, struct mailbox_item **items, size_t *n)
{
    size_t cap = 0;
    const char *p = mb->body.data, *end = p + mb->body.len;

    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        char line[128];
        unsigned long long num;
        size_t len = (size_t)((eol != NULL ? eol : end) - p);

        if (len < sizeof line) {
            memcpy(line, p, len);
            line[len] = '\0';
            char uid[72];
            if (sscanf(line, "%llu %71[!-~]", &num, uid) == 2 &&
                push_item(items, n, &cap, num, uid) < 0)
                return BLAST_ENOMEM;
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return 0;
}

int mailbox_list(struct mailbox *mb, struct mailbox_item **items, size_t *n,
                 struct blast_error *err)
{
    CURLcode c;
    int rc;

    *items = NULL;
    *n = 0;
    /*
     * Without \Seen for after: seen; else every message, \Deleted ones included: a run
     * stopped between flagging and expunging leaves them, and they are recorded already.
     */
    const char *which = mb->o->unseen_only ? "UNSEEN" : "ALL";
    char cmd[64];

    if (mb->o->pop3) {
        c = request(mb, NULL, "UIDL", false, 64u << 20);
        rc = c == CURLE_OK ? parse_uidl(mb, items, n) : 0;
    } else {
        /* RFC 4731 ESEARCH where the server has it: ranges, and a count to check them by */
        snprintf(cmd, sizeof cmd, "UID SEARCH RETURN (COUNT ALL) %s", which);
        c = request(mb, NULL, cmd, false, 64u << 20);
        rc = c == CURLE_OK ? parse_esearch(mb, items, n) : 0;
        /* a server without ESEARCH says BAD (CURLE_QUOTE_ERROR) or answers plainly */
        if ((c == CURLE_OK && rc == 0) || c == CURLE_QUOTE_ERROR) {
            free(*items);
            *items = NULL;
            *n = 0;
            snprintf(cmd, sizeof cmd, "UID SEARCH %s", which);
            c = request(mb, NULL, cmd, false, 64u << 20);
            rc = c == CURLE_OK ? parse_search(mb, items, n) : 0;
        }
    }
    if (c != CURLE_OK)
        return fail(mb, c,
                    mb->o->pop3 ? "cannot list the messages (UIDL)"
                                : "cannot list the messages (UID SEARCH)",
                    err);
    if (rc < 0) {
        free(*items);
        *items = NULL;
        *n = 0;
        return rc == BLAST_ENOMEM
                   ? blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory")
                   : blast_error_set(err, BLAST_EPROTO, mb->o->url, 0, 0,
                                     "the server's list of messages does not add up (ESEARCH "
                                     "COUNT against its UIDs)");
    }
    return 0;
}

int mailbox_fetch(struct mailbox *mb, const struct mailbox_item *it, struct buf *out, size_t max,
                  struct blast_error *err)
{
    char url[4096];
    CURLcode c;

    buf_reset(out);
    if (mb->o->pop3)
        snprintf(url, sizeof url, "%s/%llu", mb->base, (unsigned long long)it->id);
    else
        snprintf(url, sizeof url, "%s/;UID=%llu", mb->base, (unsigned long long)it->id);
    c = request(mb, url, NULL, false, max);
    if (mb->too_big)
        return blast_error_set(err, BLAST_EINVAL, mb->o->url, 0, 0,
                               "message %s is larger than %zu bytes", it->uid, max);
    if (c != CURLE_OK)
        return fail(mb, c, "cannot fetch a message", err);
    /* the buffers swap: the message leaves without a copy */
    struct buf t = *out;
    *out = mb->body;
    mb->body = t;
    return 0;
}

/* "UID VERB SET ARGS" for items [from, to): the set as a comma list. */
static int uid_command(struct mailbox *mb, const char *verb, const char *args,
                       const struct mailbox_item *items, size_t from, size_t to,
                       struct blast_error *err)
{
    struct buf cmd = BUF_INIT;
    CURLcode c;
    int rc = buf_printf(&cmd, "UID %s ", verb);

    for (size_t i = from; rc == 0 && i < to; i++)
        rc = buf_printf(&cmd, "%s%llu", i > from ? "," : "", (unsigned long long)items[i].id);
    if (rc == 0 && args != NULL)
        rc = buf_printf(&cmd, " %s", args);
    if (rc < 0) {
        buf_free(&cmd);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    c = request(mb, NULL, cmd.data, false, 1u << 20);
    buf_free(&cmd);
    if (c != CURLE_OK) {
        char what[64];
        snprintf(what, sizeof what, "UID %s failed", verb);
        return fail(mb, c, what, err);
    }
    return 0;
}

/* RFC 6851 MOVE; where the server lacks it, COPY, \Deleted and UID EXPUNGE. */
static int imap_move(struct mailbox *mb, const struct mailbox_item *items, size_t from, size_t to,
                     const char *folder, struct blast_error *err)
{
    char quoted[512];
    struct blast_error e = {0};

    snprintf(quoted, sizeof quoted, "\"%s\"", folder);
    if (!mb->folder_made) {
        /* RFC 9051 §6.3.4: a folder that exists already makes CREATE fail, which is fine */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "CREATE %s", quoted);
        request(mb, NULL, cmd, false, 1u << 16);
        mb->folder_made = true;
    }
    if (uid_command(mb, "MOVE", quoted, items, from, to, &e) == 0)
        return 0;
    int rc = uid_command(mb, "COPY", quoted, items, from, to, err);
    if (rc == 0)
        rc = uid_command(mb, "STORE", "+FLAGS.SILENT (\\Deleted)", items, from, to, err);
    if (rc == 0)
        rc = uid_command(mb, "EXPUNGE", NULL, items, from, to, err);
    return rc;
}

int mailbox_finish(struct mailbox *mb, const struct mailbox_item *items, size_t n,
                   enum campaign_bounces_after after, const char *folder, struct blast_error *err)
{
    int rc = 0;

    if (mb->o->pop3) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "DELE %llu", (unsigned long long)items[i].id);
            CURLcode c = request(mb, NULL, cmd, true, 1u << 16);
            if (c != CURLE_OK)
                rc = fail(mb, c, "DELE failed", err);
        }
        return rc;
    }
    for (size_t from = 0; rc == 0 && from < n; from += UIDS_PER_COMMAND) {
        size_t to = from + UIDS_PER_COMMAND < n ? from + UIDS_PER_COMMAND : n;
        switch (after) {
        case CAMPAIGN_BOUNCES_SEEN:
            rc = uid_command(mb, "STORE", "+FLAGS.SILENT (\\Seen)", items, from, to, err);
            break;
        case CAMPAIGN_BOUNCES_MOVE:
            rc = imap_move(mb, items, from, to, folder, err);
            break;
        case CAMPAIGN_BOUNCES_DELETE:
            rc = uid_command(mb, "STORE", "+FLAGS.SILENT (\\Deleted)", items, from, to, err);
            if (rc == 0) /* RFC 4315 §2.1: only these; a plain EXPUNGE would take others' too */
                rc = uid_command(mb, "EXPUNGE", NULL, items, from, to, err);
            break;
        }
    }
    return rc;
}
