/*
 * sharedlimit - the campaign's rate limits in Redis. See sharedlimit.h.
 */
#include "sharedlimit.h"
#include "buf.h"
#include "ratelimit.h"
#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * GCRA over every key of one message, all or nothing (docs/sharding.md, "Limits").
 * KEYS: the limits that apply; ARGV: each key's interval and tolerance in
 * microseconds, then how long a key outlives its last use (ms). The time is the
 * server's (TIME: allowed in a script since Redis 5 replicates a script's effects,
 * the only way in Redis 7), so the shards' clocks do not matter. A key holds the
 * theoretical arrival time (TAT) in microseconds. A message may go when now >=
 * TAT - tolerance for every key; then each TAT becomes max(TAT, now) + interval, a
 * TAT less than a millisecond behind counting as now (as ratelimit.c does, so that
 * waits rounded up to milliseconds do not add up to a slower rate). Returns 0, or
 * each key's wait in milliseconds (0 for the keys that would let it go).
 */
static const char script[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local n = #KEYS\n"
    "local idle = tonumber(ARGV[2 * n + 1])\n"
    "local tats, waits, blocked = {}, {}, false\n"
    "for i = 1, n do\n"
    "  local interval, tolerance = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])\n"
    "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0\n"
    "  local wait = tat - tolerance - now\n"
    "  if wait > 0 then\n"
    "    waits[i] = math.ceil(wait / 1000)\n"
    "    blocked = true\n"
    "  else\n"
    "    waits[i] = 0\n"
    "  end\n"
    "  if now - tat >= 1000 then tat = now end\n"
    "  tats[i] = tat + interval\n"
    "end\n"
    "if blocked then return waits end\n"
    "for i = 1, n do\n"
    "  local ttl = math.ceil((tats[i] - now) / 1000) + idle\n"
    "  redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', ttl)\n"
    "end\n"
    "return 0\n";

/* One limit: its key and its GCRA parameters. */
struct limit {
    char *key;
    char interval[24], tolerance[24]; /* microseconds, as the script's arguments */
};

struct sharedlimit {
    const struct campaign *c;
    struct sharedlimit_url url;
    char *password; /* wiped when freed */
    const struct log *log;
    pthread_mutex_t mu; /* everything below, and every round trip */
    redisContext *ctx;  /* NULL while disconnected */
    char sha[41];       /* the script's SHA-1, as SCRIPT LOAD gave it */
    struct limit global;
    struct limit *relays;    /* one per c->relays; key NULL when it has no rate */
    struct limit *domains;   /* one per c->domain_rates */
    struct limit *providers; /* one per entry of the providers' table; key NULL: no pace */
    size_t nproviders;
    bool down; /* lost, and not back yet */
    int64_t down_since, next_try, backoff;
    size_t failures; /* attempts that failed during this outage */
};

/* ---- the URL ----------------------------------------------------------------------------- */

static int bad_url(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad_url(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return BLAST_EINVAL;
}

static bool host_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_';
}

/* digits only, within [min, max] */
static bool whole(const char *s, size_t n, long min, long max, long *out)
{
    long v = 0;
    size_t i;

    if (n == 0 || n > 10)
        return false;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

int sharedlimit_parse_url(const char *url, struct sharedlimit_url *out, char *why, size_t size)
{
    const char *p, *end, *host, *host_end, *port = NULL;
    size_t i, n;
    long v;

    memset(out, 0, sizeof *out);
    out->port = SHAREDLIMIT_DEFAULT_PORT;
    if (strncasecmp(url, "rediss://", 9) == 0)
        return bad_url(why, size,
                       "rediss:// (TLS) is not supported: blast's Redis client has no TLS; use "
                       "redis:// on a private network, or a TLS tunnel to a loopback port");
    if (strncasecmp(url, "redis://", 8) != 0)
        return bad_url(why, size, "must be redis://HOST[:PORT][/DB]");
    for (i = 0; url[i] != '\0'; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f || strchr("?#\\", url[i]) != NULL)
            return bad_url(why, size,
                           "must be redis://HOST[:PORT][/DB], without spaces, '?', '#' or '\\'");
    p = url + 8;
    end = p + strcspn(p, "/");
    if (memchr(p, '@', (size_t)(end - p)) != NULL)
        return bad_url(why, size,
                       "must not hold credentials: name the password with 'password_env' or "
                       "'password_file'");
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL || host_end == host)
            return bad_url(why, size, "an IPv6 address must be written [ADDRESS]");
        for (const char *q = host; q < host_end; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return bad_url(why, size, "'%.*s' is not an IPv6 address", (int)(host_end - host),
                               host);
        if (host_end + 1 < end && host_end[1] != ':')
            return bad_url(why, size, "only ':PORT' may follow ']'");
        if (host_end + 1 < end)
            port = host_end + 2;
    } else {
        host = p;
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        else
            port = host_end + 1;
        for (const char *q = host; q < host_end; q++)
            if (!host_char(*q))
                return bad_url(why, size, "the host '%.*s' is not a host name or an address",
                               (int)(host_end - host), host);
    }
    n = (size_t)(host_end - host);
    if (n == 0)
        return bad_url(why, size, "names no host");
    if (n >= sizeof out->host)
        return bad_url(why, size, "the host name is too long");
    memcpy(out->host, host, n);
    out->host[n] = '\0';
    if (port != NULL) {
        if (!whole(port, (size_t)(end - port), 1, 65535, &v))
            return bad_url(why, size, "the port must be a number from 1 to 65535");
        out->port = (int)v;
    }
    if (*end == '/' && end[1] != '\0') {
        if (strchr(end + 1, '/') != NULL || !whole(end + 1, strlen(end + 1), 0, INT_MAX, &v))
            return bad_url(why, size, "the path must be the database's number: /0, /1, ...");
        out->db = v;
    }
    return 0;
}

/* ---- keys and parameters ----------------------------------------------------------------- */

static int hash_rate(struct buf *b, const char *what, const char *name,
                     const struct campaign_rate *r)
{
    /* names are length-prefixed: a name holding spaces or line breaks is still one name */
    if (!r->set)
        return buf_printf(b, "%s %zu:%s -\n", what, strlen(name), name);
    return buf_printf(b, "%s %zu:%s %ld/%c\n", what, strlen(name), name, r->count, r->unit);
}

/* 12 hex digits of SHA-256 over every rate of the campaign, as written (not divided). */
static int rates_hash(const struct campaign *c, char out[13])
{
    static const char hex[] = "0123456789abcdef";
    struct buf b = BUF_INIT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    size_t i;
    int rc = BLAST_ENOMEM;

    if (hash_rate(&b, "rate", "", &c->rate) < 0)
        goto out;
    for (i = 0; i < c->nrelays; i++)
        if (hash_rate(&b, "relay", c->relays[i].name, &c->relays[i].rate) < 0)
            goto out;
    for (i = 0; i < c->ndomain_rates; i++)
        if (hash_rate(&b, "domain", c->domain_rates[i].domain, &c->domain_rates[i].rate) < 0)
            goto out;
    if (EVP_Digest(b.data, b.len, md, &len, EVP_sha256(), NULL) != 1)
        goto out;
    for (i = 0; i < 6; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[12] = '\0';
    rc = 0;
out:
    buf_free(&b);
    return rc;
}

int sharedlimit_key_name(const struct campaign *c, enum sharedlimit_kind kind, size_t index,
                         char *out, size_t size)
{
    char hash[13];
    int n;

    if (rates_hash(c, hash) < 0)
        return BLAST_ENOMEM;
    if (kind == SHAREDLIMIT_RELAY && index < c->nrelays)
        n = snprintf(out, size, "blast:{%s:%s}:relay:%s", c->name, hash, c->relays[index].name);
    else if (kind == SHAREDLIMIT_DOMAIN && index < c->ndomain_rates)
        n = snprintf(out, size, "blast:{%s:%s}:domain:%s", c->name, hash,
                     c->domain_rates[index].domain);
    else if (kind == SHAREDLIMIT_GLOBAL)
        n = snprintf(out, size, "blast:{%s:%s}:global", c->name, hash);
    else
        return BLAST_EINVAL;
    return n < 0 || (size_t)n >= size ? BLAST_EINVAL : 0;
}

void sharedlimit_params(double per_second, int64_t *interval_us, int64_t *tolerance_us)
{
    double interval = ceil(1e6 / per_second);

    *interval_us = interval < 1 ? 1 : (int64_t)interval;
    *tolerance_us = (int64_t)(ratelimit_default_burst(per_second) - 1) * *interval_us;
}

/* A limit of per_second under key (copied), its GCRA parameters as the script's arguments. */
static int limit_set(struct limit *l, const char *key, double per_second)
{
    int64_t interval, tolerance;

    if ((l->key = strdup(key)) == NULL)
        return BLAST_ENOMEM;
    sharedlimit_params(per_second, &interval, &tolerance);
    snprintf(l->interval, sizeof l->interval, "%lld", (long long)interval);
    snprintf(l->tolerance, sizeof l->tolerance, "%lld", (long long)tolerance);
    return 0;
}

static int limit_init(const struct campaign *c, enum sharedlimit_kind kind, size_t index,
                      const struct campaign_rate *r, struct limit *l)
{
    char key[1024];
    int rc;

    if (!r->set)
        return 0;
    if ((rc = sharedlimit_key_name(c, kind, index, key, sizeof key)) < 0)
        return rc;
    return limit_set(l, key, r->per_second);
}

/* ---- the connection (under s->mu) --------------------------------------------------------- */

static void disconnect(struct sharedlimit *s)
{
    if (s->ctx != NULL)
        redisFree(s->ctx);
    s->ctx = NULL;
}

/* One command's reply, or NULL with why filled in (the connection is then gone). */
static redisReply *command(struct sharedlimit *s, int argc, const char **argv, const size_t *lens,
                           char *why, size_t size)
{
    redisReply *r = redisCommandArgv(s->ctx, argc, argv, lens);

    if (r == NULL) {
        /* a timeout reads as EAGAIN: say what it means */
        snprintf(why, size, "%s",
                 s->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                     ? "no answer within the timeout"
                 : s->ctx->errstr[0] != '\0' ? s->ctx->errstr
                                             : "the connection failed");
        disconnect(s);
    }
    return r;
}

/*
 * Connect, authenticate, select the database, load the script. Returns 0 or a
 * BLAST_E* code with why (size bytes) saying what went wrong; the password never
 * appears in it.
 */
static int connect_redis(struct sharedlimit *s, char *why, size_t size)
{
    struct timeval tv = {SHAREDLIMIT_TIMEOUT_MS / 1000, (SHAREDLIMIT_TIMEOUT_MS % 1000) * 1000};
    redisReply *r = NULL;
    char db[24];
    const char *argv[3];
    size_t lens[3];
    int rc = BLAST_ECONNECT;

    s->ctx = redisConnectWithTimeout(s->url.host, s->url.port, tv);
    if (s->ctx == NULL) {
        snprintf(why, size, "out of memory");
        return BLAST_ENOMEM;
    }
    if (s->ctx->err != 0) {
        snprintf(why, size, "%s", s->ctx->errstr);
        goto out;
    }
    if (redisSetTimeout(s->ctx, tv) != REDIS_OK) {
        snprintf(why, size, "cannot set the timeout: %s", s->ctx->errstr);
        goto out;
    }
    if (s->password != NULL) {
        argv[0] = "AUTH";
        argv[1] = s->password;
        lens[0] = 4;
        lens[1] = strlen(s->password);
        if ((r = command(s, 2, argv, lens, why, size)) == NULL)
            goto out;
        if (r->type == REDIS_REPLY_ERROR) {
            /* the server's words, which never repeat the password */
            snprintf(why, size, "the password was refused: %s", r->str);
            rc = BLAST_EAUTH;
            goto out;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (s->url.db != 0) {
        snprintf(db, sizeof db, "%ld", s->url.db);
        argv[0] = "SELECT";
        argv[1] = db;
        lens[0] = 6;
        lens[1] = strlen(db);
        if ((r = command(s, 2, argv, lens, why, size)) == NULL)
            goto out;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, size, "SELECT %s: %s", db, r->str);
            rc = BLAST_EPROTO;
            goto out;
        }
        freeReplyObject(r);
        r = NULL;
    }
    argv[0] = "SCRIPT";
    argv[1] = "LOAD";
    argv[2] = script;
    lens[0] = 6;
    lens[1] = 4;
    lens[2] = sizeof script - 1;
    if ((r = command(s, 3, argv, lens, why, size)) == NULL)
        goto out;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(why, size, "SCRIPT LOAD: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply");
        rc = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0 ? BLAST_EAUTH
                                                                               : BLAST_EPROTO;
        goto out;
    }
    memcpy(s->sha, r->str, 40);
    s->sha[40] = '\0';
    rc = 0;
out:
    if (r != NULL)
        freeReplyObject(r);
    if (rc < 0)
        disconnect(s);
    return rc;
}

/* Redis could not be used: the next attempt after the back-off; logged once an outage. */
static void lost(struct sharedlimit *s, const char *why)
{
    int64_t now = timeutil_mono_ms();

    disconnect(s);
    if (!s->down) {
        s->down = true;
        s->down_since = now;
        s->failures = 0;
        s->backoff = SHAREDLIMIT_BACKOFF_MIN_MS;
        log_msg(s->log, LOG_LEVEL_WARN,
                "shared limits: %s cannot be used (%s): no message goes until it is back; "
                "trying again every %d s at most",
                s->c->limits.shared, why, SHAREDLIMIT_BACKOFF_MAX_MS / 1000);
    } else {
        s->backoff = s->backoff * 2 > SHAREDLIMIT_BACKOFF_MAX_MS ? SHAREDLIMIT_BACKOFF_MAX_MS
                                                                 : s->backoff * 2;
        log_msg(s->log, LOG_LEVEL_DEBUG, "shared limits: %s: still cannot be used (%s)",
                s->c->limits.shared, why);
    }
    s->failures++;
    s->next_try = now + s->backoff;
}

/* ---- the module ---------------------------------------------------------------------------- */

int sharedlimit_open(const struct campaign *c, const char *password, const struct log *lg,
                     struct sharedlimit **out, struct blast_error *err)
{
    struct sharedlimit *s = NULL;
    char why[512];
    size_t i;
    int rc = BLAST_ENOMEM;

    *out = NULL;
    if (c->limits.shared == NULL)
        return blast_error_set(err, BLAST_EINVAL, c->path, 0, 0,
                               "the campaign has no 'limits: shared'");
    if ((s = calloc(1, sizeof *s)) == NULL)
        goto out;
    pthread_mutex_init(&s->mu, NULL);
    s->c = c;
    s->log = lg;
    if (sharedlimit_parse_url(c->limits.shared, &s->url, why, sizeof why) < 0) {
        rc = blast_error_set(err, BLAST_EINVAL, c->path, c->limits.shared_place.line,
                             c->limits.shared_place.column, "'limits': 'shared' %s", why);
        goto out;
    }
    if (password != NULL && (s->password = strdup(password)) == NULL)
        goto out;
    s->relays = calloc(c->nrelays + 1, sizeof *s->relays);
    s->domains = calloc(c->ndomain_rates + 1, sizeof *s->domains);
    if (s->relays == NULL || s->domains == NULL ||
        limit_init(c, SHAREDLIMIT_GLOBAL, 0, &c->rate, &s->global) < 0)
        goto out;
    for (i = 0; i < c->nrelays; i++)
        if (limit_init(c, SHAREDLIMIT_RELAY, i, &c->relays[i].rate, &s->relays[i]) < 0)
            goto out;
    for (i = 0; i < c->ndomain_rates; i++)
        if (limit_init(c, SHAREDLIMIT_DOMAIN, i, &c->domain_rates[i].rate, &s->domains[i]) < 0)
            goto out;
    if ((rc = connect_redis(s, why, sizeof why)) < 0) {
        rc = blast_error_set(
            err, rc, c->path, c->limits.shared_place.line, c->limits.shared_place.column,
            "'limits': the shared limits' Redis at %s cannot be used: %s", c->limits.shared, why);
        goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    sharedlimit_free(s);
    return rc;
}

int sharedlimit_add_providers(struct sharedlimit *s, const struct provider_table *t,
                              struct blast_error *err)
{
    char hash[13], key[1024];
    size_t i;
    int n;

    if (s->providers != NULL || t == NULL || t->n == 0)
        return 0;
    if (rates_hash(s->c, hash) < 0 || (s->providers = calloc(t->n, sizeof *s->providers)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    s->nproviders = t->n;
    for (i = 0; i < t->n; i++) {
        if (t->p[i].rate <= 0)
            continue;
        n = snprintf(key, sizeof key, "blast:{%s:%s}:provider:%s:%g", s->c->name, hash,
                     t->p[i].name, t->p[i].rate);
        if (n < 0 || (size_t)n >= sizeof key)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "shared limits: the provider name '%.40s...' is too long",
                                   t->p[i].name);
        if (limit_set(&s->providers[i], key, t->p[i].rate) < 0)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    return 0;
}

/* The reply of the script: 0, or one wait a key. */
static int read_answer(const redisReply *r, const enum sharedlimit_kind *kinds, int n,
                       struct sharedlimit_answer *a, char *why, size_t size)
{
    int i;
    bool any = false;

    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || (int)r->elements != n) {
        snprintf(why, size, "the script gave an unexpected reply%s%s",
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        return BLAST_EPROTO;
    }
    for (i = 0; i < n; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_INTEGER || e->integer < 0) {
            snprintf(why, size, "the script gave an unexpected reply");
            return BLAST_EPROTO;
        }
        a->wait_ms[kinds[i]] = e->integer;
        any = any || e->integer > 0;
    }
    if (!any) /* said no without a wait: ask again in a moment rather than at once */
        a->wait_ms[kinds[0]] = 1;
    return 1;
}

int sharedlimit_acquire(struct sharedlimit *s, size_t relay, long domain, long provider,
                        struct sharedlimit_answer *a, struct blast_error *err)
{
    const struct limit *ls[SHAREDLIMIT_KINDS];
    enum sharedlimit_kind kinds[SHAREDLIMIT_KINDS];
    const char *argv[3 + 3 * SHAREDLIMIT_KINDS + 1];
    size_t lens[3 + 3 * SHAREDLIMIT_KINDS + 1];
    char idle[24], keys[8], why[512];
    redisReply *r = NULL;
    int n = 0, argc, i, rc;

    memset(a, 0, sizeof *a);
    if (s->global.key != NULL) {
        kinds[n] = SHAREDLIMIT_GLOBAL;
        ls[n++] = &s->global;
    }
    if (relay < s->c->nrelays && s->relays[relay].key != NULL) {
        kinds[n] = SHAREDLIMIT_RELAY;
        ls[n++] = &s->relays[relay];
    }
    if (domain >= 0 && (size_t)domain < s->c->ndomain_rates && s->domains[domain].key != NULL) {
        kinds[n] = SHAREDLIMIT_DOMAIN;
        ls[n++] = &s->domains[domain];
    }
    if (provider >= 0 && (size_t)provider < s->nproviders && s->providers[provider].key != NULL) {
        kinds[n] = SHAREDLIMIT_PROVIDER;
        ls[n++] = &s->providers[provider];
    }
    if (n == 0)
        return 0; /* no limit applies: nothing to ask */
    snprintf(keys, sizeof keys, "%d", n);
    snprintf(idle, sizeof idle, "%d", SHAREDLIMIT_IDLE_MS);
    argv[1] = s->sha;
    argv[2] = keys;
    for (i = 0; i < n; i++) {
        argv[3 + i] = ls[i]->key;
        argv[3 + n + 2 * i] = ls[i]->interval;
        argv[3 + n + 2 * i + 1] = ls[i]->tolerance;
    }
    argc = 3 + 3 * n;
    argv[argc++] = idle;
    pthread_mutex_lock(&s->mu);
    if (s->ctx == NULL) {
        int64_t now = timeutil_mono_ms();
        if (s->down && now < s->next_try) {
            rc = BLAST_ECONNECT;
            snprintf(why, sizeof why, "waiting to try again");
            goto out;
        }
        if ((rc = connect_redis(s, why, sizeof why)) < 0) {
            lost(s, why);
            goto out;
        }
        if (s->down) {
            log_msg(s->log, LOG_LEVEL_INFO,
                    "shared limits: %s is back after %.1f s (%zu attempt%s): sending resumes",
                    s->c->limits.shared, (double)(timeutil_mono_ms() - s->down_since) / 1000.0,
                    s->failures, s->failures == 1 ? "" : "s");
            s->down = false;
        }
    }
    argv[0] = "EVALSHA";
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = command(s, argc, argv, lens, why, sizeof why);
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* the server forgot the script (SCRIPT FLUSH, or a restart we did not see) */
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = script;
        lens[0] = 4;
        lens[1] = sizeof script - 1;
        r = command(s, argc, argv, lens, why, sizeof why);
    }
    if (r == NULL) {
        rc = BLAST_ECONNECT;
        lost(s, why);
        goto out;
    }
    if ((rc = read_answer(r, kinds, n, a, why, sizeof why)) < 0)
        lost(s, why); /* an error reply (LOADING, OOM, NOAUTH...): reconnect, from scratch */
out:
    if (rc < 0) {
        a->retry_at = s->next_try;
        a->down_since = s->down_since;
        blast_error_set(err, rc, NULL, 0, 0, "shared limits: %s: %s", s->c->limits.shared, why);
    }
    pthread_mutex_unlock(&s->mu);
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int sharedlimit_ping(struct sharedlimit *s, char *out, size_t size, struct blast_error *err)
{
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    char why[512];
    redisReply *r = NULL;
    int rc = BLAST_ECONNECT;

    pthread_mutex_lock(&s->mu);
    if (s->ctx == NULL && (rc = connect_redis(s, why, sizeof why)) < 0)
        goto out;
    if ((r = command(s, 1, argv, lens, why, sizeof why)) == NULL) {
        rc = BLAST_ECONNECT;
        goto out;
    }
    if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_STRING) {
        snprintf(why, sizeof why, "PING: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        rc = BLAST_EPROTO;
        goto out;
    }
    snprintf(out, size, "%s", r->str);
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    if (r != NULL)
        freeReplyObject(r);
    if (rc < 0)
        blast_error_set(err, rc, NULL, 0, 0, "shared limits: %s: %s", s->c->limits.shared, why);
    return rc;
}

const char *sharedlimit_url(const struct sharedlimit *s)
{
    return s->c->limits.shared;
}

void sharedlimit_free(struct sharedlimit *s)
{
    size_t i;

    if (s == NULL)
        return;
    disconnect(s);
    if (s->password != NULL) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->global.key);
    for (i = 0; s->relays != NULL && i < s->c->nrelays; i++)
        free(s->relays[i].key);
    for (i = 0; s->domains != NULL && i < s->c->ndomain_rates; i++)
        free(s->domains[i].key);
    for (i = 0; s->providers != NULL && i < s->nproviders; i++)
        free(s->providers[i].key);
    free(s->relays);
    free(s->domains);
    free(s->providers);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
