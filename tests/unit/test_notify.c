/*
 * test_notify - the end-of-run webhook: the payload's shape, the masked URL, the rules
 * of its URL (each reason exact, none quoting the URL), the check of its settings
 * outside the campaign file (the Authorization variable named at its place, never
 * quoted; the ca_file), and notify_post() against a small HTTP server on 127.0.0.1 run
 * by the test in a thread (answers scripted per request: 200, 503, 429, 404, a
 * redirect, or silence), so that retries, their bounds, the headers sent, and the
 * secrets never shown are checked on real requests made by libcurl.
 */
#include "../../core/notify.h"
#include "scratch.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN "Bearer tok3n-unit"

/* ---- a scripted HTTP server ------------------------------------------------------------ */

struct hook {
    int fd, port;
    pthread_t thread;
    int statuses[8]; /* the status of request i; past the end, the last one */
    int nstatuses;
    bool silent; /* read the request, never answer */
    volatile int stop;
    int requests;
    char request[16384]; /* the last request: head and body */
};

static void hook_read_request(int c, char *out, size_t size)
{
    size_t len = 0;
    char *end;

    out[0] = '\0';
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        ssize_t n;
        long body = 0;
        const char *cl;

        if (poll(&p, 1, 2000) <= 0)
            return;
        n = read(c, out + len, size - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        out[len] = '\0';
        end = strstr(out, "\r\n\r\n");
        if (end == NULL)
            continue;
        cl = strcasestr(out, "\r\nContent-Length:");
        if (cl != NULL)
            body = strtol(cl + 17, NULL, 10);
        if ((long)(len - (size_t)(end + 4 - out)) >= body || len + 1 >= size)
            return;
    }
}

static void *hook_run(void *arg)
{
    struct hook *h = arg;
    int turns = 0;

    /* until the test stops it; 60 s at most (50 ms a turn) if a test forgets to */
    while (!h->stop && turns++ < 1200) {
        struct pollfd p = {h->fd, POLLIN, 0};
        char reply[256];
        int c, status;

        if (poll(&p, 1, 50) <= 0)
            continue;
        c = accept(h->fd, NULL, NULL);
        if (c < 0)
            continue;
        hook_read_request(c, h->request, sizeof h->request);
        status = h->statuses[h->requests < h->nstatuses ? h->requests : h->nstatuses - 1];
        h->requests++;
        if (h->silent) {
            /* say nothing until the test is done with it: at most 30 s, polled */
            for (int waited = 0; !h->stop && waited < 1500; waited++)
                usleep(20000);
            close(c);
            break;
        }
        snprintf(reply, sizeof reply,
                 "HTTP/1.1 %d Scripted\r\nContent-Length: 2\r\nConnection: close\r\n%s\r\nok",
                 status,
                 status >= 300 && status <= 399 ? "Location: https://elsewhere.example/\r\n" : "");
        if (write(c, reply, strlen(reply)) < 0)
            cr_log_warn("hook: write: %s", strerror(errno));
        close(c);
    }
    return NULL;
}

static void hook_start(struct hook *h, const int *statuses, int n)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int i;

    memset(h, 0, sizeof *h);
    for (i = 0; i < n && i < 8; i++)
        h->statuses[i] = statuses[i];
    h->nstatuses = n > 0 ? n : 1;
    if (n == 0)
        h->statuses[0] = 200;
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(h->fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(h->fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    cr_assert_eq(listen(h->fd, 8), 0);
    cr_assert_eq(getsockname(h->fd, (struct sockaddr *)&a, &alen), 0);
    h->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&h->thread, NULL, hook_run, h), 0);
}

static void hook_stop(struct hook *h)
{
    h->stop = 1;
    pthread_join(h->thread, NULL);
    close(h->fd);
}

/* A webhook on the hook's port, with a secret in its query. */
static void hook_notify(const struct hook *h, struct campaign_notify *n, char *url, size_t size)
{
    static struct campaign_header headers[] = {{"X-Team", "news", {0, 0}}};

    snprintf(url, size, "http://127.0.0.1:%d/hook?key=qs3cret", h->port);
    memset(n, 0, sizeof *n);
    n->url = url;
    n->headers = headers;
    n->nheaders = 1;
    n->authorization_env = "BLAST_UNIT_HOOK_TOKEN";
    n->timeout = 2000;
    n->retries = 3;
    n->verify = true;
    n->loopback = true;
}

static json_t *payload(void)
{
    json_t *summary = json_pack("{s:i, s:{s:i}}", "total", 3, "by_status", "delivered", 3);
    struct notify_event ev = {"november-news", "campaigns/nov.yml", 0, "reports/nov.json", summary};
    json_t *p = notify_payload(&ev);

    json_decref(summary);
    cr_assert_not_null(p);
    return p;
}

static struct notify_options fast(void)
{
    struct notify_options o;

    memset(&o, 0, sizeof o);
    o.backoff_ms = 10;
    o.backoff_max_ms = 40;
    return o;
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("BLAST_UNIT_HOOK_TOKEN", TOKEN, 1);
}

static void teardown(void)
{
    unsetenv("BLAST_UNIT_HOOK_TOKEN");
    curl_global_cleanup();
}

static void assert_no_secret(const struct blast_error *err)
{
    char msg[2048];

    blast_error_format(err, msg, sizeof msg);
    cr_assert_null(strstr(msg, "tok3n"), "%s", msg);
    cr_assert_null(strstr(msg, "qs3cret"), "%s", msg);
}

/* ---- the payload and the URL in messages ----------------------------------------------- */

Test(notify, payload_has_the_documented_shape)
{
    json_t *summary = json_pack("{s:i}", "total", 7);
    struct notify_event ev = {"nov", "c.yml", 3, NULL, summary};
    json_t *p = notify_payload(&ev);

    cr_assert_not_null(p);
    cr_assert_eq(json_integer_value(json_object_get(p, "schema_version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(p, "event")), "campaign.finished");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "campaign"), "name")),
                     "nov");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "campaign"), "file")),
                     "c.yml");
    cr_assert_eq(json_integer_value(json_object_get(p, "exit_code")), 3);
    cr_assert(json_is_null(json_object_get(p, "report")));
    cr_assert_eq(json_object_get(p, "summary"), summary, "the same object, borrowed");
    cr_assert_eq(json_object_size(p), 6);
    json_decref(p);
    cr_assert_eq(summary->refcount, 1);
    json_decref(summary);

    ev.summary = NULL;
    ev.report = "r.json";
    p = notify_payload(&ev);
    cr_assert(json_is_null(json_object_get(p, "summary")));
    cr_assert_str_eq(json_string_value(json_object_get(p, "report")), "r.json");
    json_decref(p);
}

Test(notify, url_display_masks_userinfo_and_query)
{
    static const char *const cases[][2] = {
        {"https://hooks.example/blast", "https://hooks.example/blast"},
        {"https://hooks.example/blast?key=s3cret&x=1", "https://hooks.example/blast?***"},
        {"https://user:pw@hooks.example:8443/b", "https://***@hooks.example:8443/b"},
        {"http://127.0.0.1:9/h#frag?x", "http://127.0.0.1:9/h"},
        {"https://hooks.example?k=v", "https://hooks.example?***"},
        {"https://a@b@hooks.example/", "https://***@hooks.example/"},
    };
    char out[256];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        notify_url_display(cases[i][0], out, sizeof out);
        cr_assert_str_eq(out, cases[i][1]);
    }
    notify_url_display("https://hooks.example/a-long-path?key=s3cret", out, 12);
    cr_assert_str_eq(out, "https://hoo", "cut, never overflowing");
}

/* ---- the URL, as the campaign file gives it ------------------------------------------- */

/* A campaign with only what notify_check_settings() reads: the file's name and 'notify'. */
static void settings_campaign(struct campaign *c, struct campaign_notify *n, char *ca_file)
{
    static char path[] = "hooks.yml", env[] = "BLAST_UNIT_HOOK_TOKEN";

    memset(c, 0, sizeof *c);
    memset(n, 0, sizeof *n);
    c->path = path;
    c->notify = n;
    n->authorization_env = env;
    n->authorization_place = (struct campaign_place){87, 22};
    n->ca_file = ca_file;
    n->ca_file_place = (struct campaign_place){91, 12};
}

Test(notify, check_settings_does_nothing_without_notify)
{
    struct campaign c;
    struct blast_error err;

    memset(&c, 0, sizeof c);
    unsetenv("BLAST_UNIT_HOOK_TOKEN");
    blast_error_clear(&err);
    cr_assert_eq(notify_check_settings(&c, &err), 0);
    cr_assert_eq(err.code, 0);
}

Test(notify, check_settings_names_the_variable_and_its_place_never_the_value)
{
    char ca_file[] = "/nonexistent/hook-ca.pem";
    struct campaign c;
    struct campaign_notify n;
    struct blast_error err;
    char msg[2048];

    settings_campaign(&c, &n, ca_file);
    unsetenv("BLAST_UNIT_HOOK_TOKEN");
    blast_error_clear(&err);
    cr_assert_eq(notify_check_settings(&c, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.source, "hooks.yml");
    cr_assert_eq(err.line, 87);
    cr_assert_eq(err.column, 22);
    cr_assert_str_eq(err.text, "notify: environment variable BLAST_UNIT_HOOK_TOKEN is not set");

    setenv("BLAST_UNIT_HOOK_TOKEN", "", 1);
    blast_error_clear(&err);
    cr_assert_eq(notify_check_settings(&c, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.text, "notify: environment variable BLAST_UNIT_HOOK_TOKEN is empty");

    setenv("BLAST_UNIT_HOOK_TOKEN", "Bearer tok3n\r\nX-Evil: 1", 1);
    blast_error_clear(&err);
    cr_assert_eq(notify_check_settings(&c, &err), BLAST_EINVAL);
    blast_error_format(&err, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "holds a line break"), "%s", msg);
    cr_assert_null(strstr(msg, "tok3n"), "%s", msg);

    /* the variable is fine now; the ca_file does not exist */
    setenv("BLAST_UNIT_HOOK_TOKEN", "Bearer tok3n", 1);
    blast_error_clear(&err);
    cr_assert_eq(notify_check_settings(&c, &err), BLAST_EINVAL);
    cr_assert_eq(err.line, 91);
    cr_assert_eq(err.column, 12);
    cr_assert_str_eq(err.text, "notify: cannot read ca_file /nonexistent/hook-ca.pem: No such "
                               "file or directory");
    unsetenv("BLAST_UNIT_HOOK_TOKEN");
}

Test(notify, check_settings_passes_when_all_is_there, .fini = scratch_remove)
{
    char ca_file[128];
    struct campaign c;
    struct campaign_notify n;
    struct blast_error err;
    FILE *f;

    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", scratch_make());
    f = fopen(ca_file, "w");
    cr_assert_not_null(f, "%s: %s", ca_file, strerror(errno));
    fputs("not checked for content here\n", f);
    fclose(f);
    settings_campaign(&c, &n, ca_file);
    setenv("BLAST_UNIT_HOOK_TOKEN", "Bearer tok3n", 1);
    blast_error_clear(&err);
    cr_assert_eq(notify_check_settings(&c, &err), 0, "%s", err.text);
    n.authorization_env = NULL;
    n.ca_file = NULL;
    unsetenv("BLAST_UNIT_HOOK_TOKEN");
    cr_assert_eq(notify_check_settings(&c, &err), 0, "neither is needed: %s", err.text);
    cr_assert_eq(err.code, 0);
}

/* ---- requests ------------------------------------------------------------------------ */

TestSuite(notify_post, .init = setup, .fini = teardown);

Test(notify_post, one_post_with_the_json_and_the_headers)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload(), *got;
    const char *body;

    hook_start(&h, (const int[]){200}, 1);
    hook_notify(&h, &n, url, sizeof url);
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), 0, "%s", err.text);
    hook_stop(&h);
    cr_assert_eq(res.attempts, 1);
    cr_assert_eq(res.status, 200);
    cr_assert_eq(h.requests, 1);
    cr_assert(strncmp(h.request, "POST /hook?key=qs3cret HTTP/1.1\r\n", 33) == 0, "%s", h.request);
    cr_assert_not_null(strcasestr(h.request, "\r\nContent-Type: application/json\r\n"));
    cr_assert_not_null(strcasestr(h.request, "\r\nUser-Agent: blast/"));
    cr_assert_not_null(strstr(h.request, "\r\nAuthorization: " TOKEN "\r\n"));
    cr_assert_not_null(strstr(h.request, "\r\nX-Team: news\r\n"));
    cr_assert_null(strcasestr(h.request, "\r\nExpect:"), "no 100-continue round trip");
    body = strstr(h.request, "\r\n\r\n") + 4;
    got = json_loads(body, 0, NULL);
    cr_assert_not_null(got, "%s", body);
    cr_assert(json_equal(got, p));
    json_decref(got);
    json_decref(p);
}

Test(notify_post, retries_503_then_succeeds)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, (const int[]){503, 429, 200}, 3);
    hook_notify(&h, &n, url, sizeof url);
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), 0, "%s", err.text);
    hook_stop(&h);
    cr_assert_eq(res.attempts, 3);
    cr_assert_eq(h.requests, 3);
    json_decref(p);
}

Test(notify_post, server_errors_until_the_retries_run_out)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, (const int[]){500}, 1);
    hook_notify(&h, &n, url, sizeof url);
    n.retries = 2;
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_EREPLY);
    hook_stop(&h);
    cr_assert_eq(res.attempts, 3);
    cr_assert_eq(h.requests, 3);
    cr_assert_eq(res.status, 500);
    cr_assert_not_null(strstr(err.text, "HTTP 500 (3 attempts)"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "http://127.0.0.1:"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "/hook?***"), "%s", err.text);
    assert_no_secret(&err);
    json_decref(p);
}

Test(notify_post, other_4xx_are_not_retried)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, (const int[]){404, 200}, 2);
    hook_notify(&h, &n, url, sizeof url);
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_EREPLY);
    hook_stop(&h);
    cr_assert_eq(res.attempts, 1);
    cr_assert_eq(h.requests, 1);
    cr_assert_not_null(strstr(err.text, "HTTP 404 (1 attempt)"), "%s", err.text);
    assert_no_secret(&err);
    json_decref(p);
}

Test(notify_post, redirects_are_not_followed)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, (const int[]){302}, 1);
    hook_notify(&h, &n, url, sizeof url);
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_EREPLY);
    hook_stop(&h);
    cr_assert_eq(res.attempts, 1);
    cr_assert_eq(h.requests, 1);
    cr_assert_not_null(strstr(err.text, "does not follow redirects"), "%s", err.text);
    json_decref(p);
}

Test(notify_post, no_connection_is_retried_then_an_error)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, NULL, 0);
    hook_stop(&h); /* its port is free again: nothing listens there */
    hook_notify(&h, &n, url, sizeof url);
    n.retries = 1;
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_ECONNECT);
    cr_assert_eq(res.attempts, 2);
    cr_assert_eq(res.status, 0);
    assert_no_secret(&err);
    json_decref(p);
}

Test(notify_post, a_silent_server_is_bounded_by_timeout_and_retries)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();
    struct timespec t0, t1;
    double secs;

    hook_start(&h, NULL, 0);
    h.silent = true;
    hook_notify(&h, &n, url, sizeof url);
    n.timeout = 300;
    n.retries = 1;
    blast_error_clear(&err);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_ETIMEOUT, "%s", err.text);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hook_stop(&h);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_eq(res.attempts, 2);
    cr_assert(secs >= 0.55 && secs < 2.0, "took %.2f s", secs);
    assert_no_secret(&err);
    json_decref(p);
}

Test(notify_post, the_authorization_variable_must_be_set)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, NULL, 0);
    hook_notify(&h, &n, url, sizeof url);
    unsetenv("BLAST_UNIT_HOOK_TOKEN");
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, NULL, &res, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "environment variable BLAST_UNIT_HOOK_TOKEN is not set"),
                       "%s", err.text);
    cr_assert_eq(res.attempts, 0);

    setenv("BLAST_UNIT_HOOK_TOKEN", "Bearer tok3n\r\nX-Evil: 1", 1);
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, NULL, &res, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "holds a line break"), "%s", err.text);
    assert_no_secret(&err);
    hook_stop(&h);
    cr_assert_eq(h.requests, 0);
    json_decref(p);
}

Test(notify_post, a_raised_stop_flag_ends_the_retries)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    volatile sig_atomic_t stop = 1;
    char url[128];
    json_t *p = payload();

    hook_start(&h, (const int[]){503}, 1);
    hook_notify(&h, &n, url, sizeof url);
    o.stop = &stop;
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_ETIMEOUT);
    hook_stop(&h);
    cr_assert_eq(res.attempts, 1);
    cr_assert_not_null(strstr(err.text, "stopped by a signal"), "%s", err.text);
    json_decref(p);
}

Test(notify_post, only_http_and_https)
{
    struct campaign_notify n;
    struct notify_result res;
    struct blast_error err;
    json_t *p = payload();

    memset(&n, 0, sizeof n);
    n.url = "file:///etc/passwd";
    n.timeout = 1000;
    n.retries = 3;
    blast_error_clear(&err);
    cr_assert_lt(notify_post(&n, p, NULL, &res, &err), 0);
    cr_assert_eq(res.attempts, 1, "refused by libcurl, not retried");
    json_decref(p);
}

Test(notify_post, a_loopback_webhook_never_goes_through_a_proxy)
{
    struct hook h;
    struct campaign_notify n;
    struct notify_result res;
    struct notify_options o = fast();
    struct blast_error err;
    char url[128];
    json_t *p = payload();

    hook_start(&h, (const int[]){200}, 1);
    hook_notify(&h, &n, url, sizeof url);
    n.retries = 0;
    /* a proxy nobody listens on: used, the request fails */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    n.loopback = false;
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), BLAST_ECONNECT, "%s", err.text);
    cr_assert_eq(h.requests, 0);
    n.loopback = true;
    blast_error_clear(&err);
    cr_assert_eq(notify_post(&n, p, &o, &res, &err), 0, "%s", err.text);
    unsetenv("http_proxy");
    hook_stop(&h);
    cr_assert_eq(h.requests, 1);
    json_decref(p);
}
