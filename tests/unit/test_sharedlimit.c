/*
 * test_sharedlimit - what can be checked without a Redis server: the rules of the
 * `limits.shared` URL, the campaign's `limits` key and its errors with their place,
 * the names of the keys (what the hash covers and what it does not), the GCRA
 * parameters (the burst of ratelimit.h), and a Redis that cannot be reached at
 * start. The script itself runs against a real redis-server in
 * tests/integration/test_shared_limits.py.
 */
#include "../../core/campaign.h"
#include "../../core/sharedlimit.h"
#include "scratch.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the URL ---------------------------------------------------------------------------- */

static void url_ok(const char *url, const char *host, int port, long db)
{
    struct sharedlimit_url u;
    char why[256] = "";

    cr_assert_eq(sharedlimit_parse_url(url, &u, why, sizeof why), 0, "%s: %s", url, why);
    cr_assert_str_eq(u.host, host, "%s", url);
    cr_assert_eq(u.port, port, "%s: port %d", url, u.port);
    cr_assert_eq(u.db, db, "%s: db %ld", url, u.db);
}

static void url_bad(const char *url, const char *reason)
{
    struct sharedlimit_url u;
    char why[256] = "";

    cr_assert_eq(sharedlimit_parse_url(url, &u, why, sizeof why), BLAST_EINVAL, "%s", url);
    cr_assert(strstr(why, reason) != NULL, "%s: '%s' does not say '%s'", url, why, reason);
}

Test(sharedlimit, url_forms)
{
    url_ok("redis://127.0.0.1:6380/2", "127.0.0.1", 6380, 2);
    url_ok("redis://localhost", "localhost", 6379, 0);
    url_ok("redis://localhost/", "localhost", 6379, 0);
    url_ok("REDIS://limits.acme.example:7000", "limits.acme.example", 7000, 0);
    url_ok("redis://[::1]:6390/15", "::1", 6390, 15);
    url_ok("redis://[::1]", "::1", 6379, 0);
}

Test(sharedlimit, url_refusals)
{
    url_bad("rediss://127.0.0.1:6380/0", "rediss:// (TLS) is not supported");
    url_bad("http://127.0.0.1:6379/0", "must be redis://HOST[:PORT][/DB]");
    url_bad("127.0.0.1:6379", "must be redis://HOST[:PORT][/DB]");
    url_bad("redis://", "names no host");
    url_bad("redis:///0", "names no host");
    url_bad("redis://:6379/0", "names no host");
    url_bad("redis://h:0/0", "the port must be a number from 1 to 65535");
    url_bad("redis://h:65536", "the port must be a number from 1 to 65535");
    url_bad("redis://h:/0", "the port must be a number from 1 to 65535");
    url_bad("redis://h:63x9", "the port must be a number from 1 to 65535");
    url_bad("redis://h/x", "the path must be the database's number");
    url_bad("redis://h/1/2", "the path must be the database's number");
    url_bad("redis://h/-1", "the path must be the database's number");
    url_bad("redis://h/99999999999", "the path must be the database's number");
    url_bad("redis://h/0?timeout=1", "without spaces, '?', '#' or '\\'");
    url_bad("redis://h /0", "without spaces");
    url_bad("redis://h\r\n/0", "without spaces");
    url_bad("redis://[zz::1]/0", "is not an IPv6 address");
    url_bad("redis://[::1/0", "an IPv6 address must be written [ADDRESS]");
    url_bad("redis://[::1]x/0", "only ':PORT' may follow ']'");
    url_bad("redis://host,other/0", "is not a host name or an address");
}

Test(sharedlimit, credentials_in_the_url_are_refused_without_repeating_them)
{
    struct sharedlimit_url u;
    char why[256] = "";

    cr_assert_eq(
        sharedlimit_parse_url("redis://user:hunter22@127.0.0.1:6379/0", &u, why, sizeof why),
        BLAST_EINVAL);
    cr_assert(strstr(why, "must not hold credentials") != NULL, "%s", why);
    cr_assert_null(strstr(why, "hunter22"), "the password repeated: %s", why);
    cr_assert_eq(sharedlimit_parse_url("redis://:hunter22@127.0.0.1", &u, why, sizeof why),
                 BLAST_EINVAL);
    cr_assert_null(strstr(why, "hunter22"), "%s", why);
}

/* ---- GCRA parameters ---------------------------------------------------------------------- */

Test(sharedlimit, params_carry_the_documented_burst)
{
    int64_t interval, tolerance;

    /* 200/s: a message every 5 ms, a burst of 20 (a tenth of a second's worth) */
    sharedlimit_params(200, &interval, &tolerance);
    cr_assert_eq(interval, 5000);
    cr_assert_eq(tolerance, 19 * 5000);
    /* 10/s and slower burst 1: no tolerance */
    sharedlimit_params(10, &interval, &tolerance);
    cr_assert_eq(interval, 100000);
    cr_assert_eq(tolerance, 0);
    sharedlimit_params(1.0 / 3600, &interval, &tolerance);
    cr_assert_eq(interval, 3600000000LL);
    cr_assert_eq(tolerance, 0);
    /* rounded up: the shards together are never faster than the rate (3/s: 333,334 us) */
    sharedlimit_params(3, &interval, &tolerance);
    cr_assert_eq(interval, 333334);
    sharedlimit_params(3000, &interval, &tolerance);
    cr_assert_eq(interval, 334);
    cr_assert_eq(tolerance, 299 * 334);
}

/* ---- the campaign's 'limits' ---------------------------------------------------------- */

#define HEAD                                                                                       \
    "name: news-1\n"                                                                               \
    "from: news@acme.example\n"                                                                    \
    "subject: Hello\n"                                                                             \
    "recipients: {path: list.csv}\n"                                                               \
    "body: {text: body.txt}\n"                                                                     \
    "relays:\n"                                                                                    \
    "  - {host: smtp.relay.example, name: primary, rate: 50/s}\n"                                  \
    "  - {host: smtp2.relay.example, name: second}\n"                                              \
    "rate: 200/s\n"                                                                                \
    "domain_rates: {gmail.com: 10/s, example.org: 5/m}\n"

static int load(const char *yml, struct campaign **c, char *text, size_t size)
{
    char path[512];
    struct blast_error err;
    int rc;

    scratch_write_file(scratch_dir[0] != '\0' ? scratch_dir : scratch_make(), "campaign.yml", yml,
                       path, sizeof path);
    blast_error_clear(&err);
    *c = NULL;
    rc = campaign_load(path, c, &err);
    blast_error_format(&err, text, size);
    /* the directory in front, so that the tests compare the rest */
    if (strncmp(text, scratch_dir, strlen(scratch_dir)) == 0)
        memmove(text, text + strlen(scratch_dir) + 1, strlen(text + strlen(scratch_dir) + 1) + 1);
    return rc;
}

static void refused(const char *limits, const char *expected)
{
    struct campaign *c;
    char yml[2048], text[2048];

    snprintf(yml, sizeof yml, HEAD "%s", limits);
    cr_assert_eq(load(yml, &c, text, sizeof text), BLAST_EINVAL, "loaded: %s", limits);
    cr_assert_null(c);
    cr_assert_str_eq(text, expected);
}

Test(sharedlimit, campaign_key_is_read, .fini = scratch_remove)
{
    struct campaign *c;
    char text[2048];

    cr_assert_eq(load(HEAD "limits:\n"
                           "  shared: redis://127.0.0.1:6390/3\n"
                           "  password_env: BLAST_REDIS_PASSWORD\n"
                           "  max_outage: 90s\n",
                      &c, text, sizeof text),
                 0, "%s", text);
    cr_assert_str_eq(c->limits.shared, "redis://127.0.0.1:6390/3");
    cr_assert_eq(c->limits.shared_place.line, 12);
    cr_assert_eq(c->limits.shared_place.column, 11);
    cr_assert_str_eq(c->limits.password_env, "BLAST_REDIS_PASSWORD");
    cr_assert_eq(c->limits.password_place.line, 13);
    cr_assert_eq(c->limits.max_outage, 90000);
    campaign_free(c);

    /* absent: each process keeps its own; the outage bound has its default anyway */
    cr_assert_eq(load(HEAD, &c, text, sizeof text), 0, "%s", text);
    cr_assert_null(c->limits.shared);
    cr_assert_eq(c->limits.max_outage, 10 * 60 * 1000);
    campaign_free(c);

    /* a remote host with a password only when the campaign says so */
    cr_assert_eq(load(HEAD "limits: {shared: 'redis://10.1.2.3/0', password_file: redis.key,\n"
                           "         allow_plaintext: true}\n",
                      &c, text, sizeof text),
                 0, "%s", text);
    cr_assert(c->limits.allow_plaintext);
    cr_assert(strstr(c->limits.password_file, "/redis.key") != NULL, "resolved: %s",
              c->limits.password_file);
    campaign_free(c);
    /* and without a password, anywhere */
    cr_assert_eq(
        load(HEAD "limits: {shared: 'redis://limits.acme.example'}\n", &c, text, sizeof text), 0,
        "%s", text);
    campaign_free(c);
}

Test(sharedlimit, campaign_errors_name_their_place, .fini = scratch_remove)
{
    refused("limits: redis://127.0.0.1/0\n",
            "campaign.yml:11:9: 'limits' must be a mapping of keys to values, found a scalar");
    refused("limits: {password_env: X}\n",
            "campaign.yml:11:9: missing required key 'shared' in 'limits'");
    refused("limits:\n  shared: rediss://127.0.0.1:6380/0\n",
            "campaign.yml:12:11: 'limits': 'shared' rediss:// (TLS) is not supported: blast's "
            "Redis client has no TLS; use redis:// on a private network, or a TLS tunnel to a "
            "loopback port");
    refused("limits:\n  shared: 127.0.0.1:6379\n",
            "campaign.yml:12:11: 'limits': 'shared' must be redis://HOST[:PORT][/DB]");
    refused("limits:\n  shared: redis://127.0.0.1:6379/zero\n",
            "campaign.yml:12:11: 'limits': 'shared' the path must be the database's number: /0, "
            "/1, ...");
    refused("limits:\n  shared: redis://u:hunter22@127.0.0.1/0\n",
            "campaign.yml:12:11: 'limits': 'shared' must not hold credentials: name the password "
            "with 'password_env' or 'password_file'");
    refused("limits:\n  shared: redis://127.0.0.1/0\n  max_outag: 5m\n",
            "campaign.yml:13:3: unknown key 'max_outag' in 'limits' (did you mean "
            "'max_outage'?)");
    refused("limits:\n  shared: redis://127.0.0.1/0\n  max_outage: soon\n",
            "campaign.yml:13:15: 'max_outage' must be a duration such as 90s, 5m, 4h or 1h30m "
            "(greater than zero)");
    refused("limits:\n  shared: redis://127.0.0.1/0\n  password_env: A\n  password_file: b\n",
            "campaign.yml:14:18: 'limits': use one of 'password_env' and 'password_file'");
    refused("limits:\n  shared: redis://10.1.2.3:6379/0\n  password_env: BLAST_REDIS\n",
            "campaign.yml:13:17: 'limits': the connection to Redis has no TLS, so the password "
            "would cross the network in the clear to '10.1.2.3': only to a loopback host unless "
            "'allow_plaintext: true'");
    refused("limits:\n  shared: redis://127.0.0.1/0\n  allow_plaintext: sure\n",
            "campaign.yml:13:20: 'allow_plaintext' must be true or false");
}

/* ---- the keys ------------------------------------------------------------------------------ */

static void key(const struct campaign *c, enum sharedlimit_kind kind, size_t i, char *out,
                size_t size)
{
    cr_assert_eq(sharedlimit_key_name(c, kind, i, out, size), 0);
}

static void matches(const char *text, const char *pattern)
{
    regex_t re;

    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regexec(&re, text, 0, NULL, 0), 0, "'%s' does not match %s", text, pattern);
    regfree(&re);
}

Test(sharedlimit, key_names, .fini = scratch_remove)
{
    struct campaign *c, *other;
    char text[2048], g[512], r0[512], r1[512], d0[512], d1[512], again[512];
    const char *limits = "limits: {shared: 'redis://127.0.0.1/0'}\n";
    char yml[2048];

    snprintf(yml, sizeof yml, HEAD "%s", limits);
    cr_assert_eq(load(yml, &c, text, sizeof text), 0, "%s", text);
    key(c, SHAREDLIMIT_GLOBAL, 0, g, sizeof g);
    key(c, SHAREDLIMIT_RELAY, 0, r0, sizeof r0);
    key(c, SHAREDLIMIT_RELAY, 1, r1, sizeof r1);
    key(c, SHAREDLIMIT_DOMAIN, 0, d0, sizeof d0);
    key(c, SHAREDLIMIT_DOMAIN, 1, d1, sizeof d1);
    matches(g, "^blast:\\{news-1:[0-9a-f]{12}\\}:global$");
    matches(r0, "^blast:\\{news-1:[0-9a-f]{12}\\}:relay:primary$");
    matches(r1, "^blast:\\{news-1:[0-9a-f]{12}\\}:relay:second$");
    matches(d0, "^blast:\\{news-1:[0-9a-f]{12}\\}:domain:gmail\\.com$");
    matches(d1, "^blast:\\{news-1:[0-9a-f]{12}\\}:domain:example\\.org$");
    /* one prefix for all: one Redis Cluster slot, one campaign */
    cr_assert_eq(strncmp(g, r0, strlen("blast:{news-1:") + 13), 0, "%s / %s", g, r0);
    cr_assert_eq(strncmp(g, d1, strlen("blast:{news-1:") + 13), 0, "%s / %s", g, d1);
    cr_assert_eq(sharedlimit_key_name(c, SHAREDLIMIT_RELAY, 2, again, sizeof again), BLAST_EINVAL);
    cr_assert_eq(sharedlimit_key_name(c, SHAREDLIMIT_GLOBAL, 0, again, 10), BLAST_EINVAL,
                 "too short a buffer");

    /* what a shard divides (per_second, without limits.shared) is not what the hash covers */
    c->rate.per_second /= 4;
    c->relays[0].rate.per_second /= 4;
    key(c, SHAREDLIMIT_GLOBAL, 0, again, sizeof again);
    cr_assert_str_eq(again, g);
    campaign_free(c);

    /* anything but a rate: the same keys, so that a resumed campaign keeps its pace */
    snprintf(yml, sizeof yml, "%s", HEAD);
    memcpy(strstr(yml, "Hello"), "Howdy", 5);
    strncat(yml, limits, sizeof yml - strlen(yml) - 1);
    cr_assert_eq(load(yml, &other, text, sizeof text), 0, "%s", text);
    key(other, SHAREDLIMIT_GLOBAL, 0, again, sizeof again);
    cr_assert_str_eq(again, g);
    campaign_free(other);

    /* another rate: other keys, none of the old pace carried over */
    snprintf(yml, sizeof yml, "%s", HEAD);
    memcpy(strstr(yml, "10/s"), "20/s", 4);
    strncat(yml, limits, sizeof yml - strlen(yml) - 1);
    cr_assert_eq(load(yml, &other, text, sizeof text), 0, "%s", text);
    key(other, SHAREDLIMIT_GLOBAL, 0, again, sizeof again);
    cr_assert_str_neq(again, g);
    campaign_free(other);
}

/* ---- Redis that cannot be reached -------------------------------------------------------- */

Test(sharedlimit, unreachable_at_start_names_the_url, .fini = scratch_remove)
{
    struct campaign *c;
    struct sharedlimit *s = (struct sharedlimit *)1;
    struct blast_error err;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    char yml[2048], text[2048], want[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    /* a port nothing listens on: bound, never listened to */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    snprintf(yml, sizeof yml, HEAD "limits: {shared: 'redis://127.0.0.1:%d/0'}\n", port);
    cr_assert_eq(load(yml, &c, text, sizeof text), 0, "%s", text);
    blast_error_clear(&err);
    cr_assert_eq(sharedlimit_open(c, "hunter22", NULL, &s, &err), BLAST_ECONNECT);
    close(fd);
    cr_assert_null(s);
    cr_assert_eq(err.line, 11);
    cr_assert_eq(err.column, 18);
    snprintf(want, sizeof want,
             "'limits': the shared limits' Redis at redis://127.0.0.1:%d/0 cannot be used: ", port);
    cr_assert_eq(strncmp(err.text, want, strlen(want)), 0, "%s", err.text);
    cr_assert_null(strstr(err.text, "hunter22"));
    campaign_free(c);
}
