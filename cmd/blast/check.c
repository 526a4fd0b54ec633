/*
 * check - `blast check CAMPAIGN.yml [--connect]`: validate everything, send nothing.
 *
 * Unlike send, check does not stop at the first problem where it can go on: it
 * reports every unknown placeholder, every invalid row, every relay whose secret
 * is missing, each with its place, then prints a summary. Exit 0 when clean, 2
 * otherwise. Duplicates and suppressed rows are rules at work, not problems.
 */
#include "cli.h"
#include "../../core/shard.h"
#include "prepare.h"
#include "../../core/notify.h"
#include "../../core/pool.h"
#include "../../core/secret.h"
#include "../../core/sharedlimit.h"
#include "../../core/address.h"
#include "../../core/provider.h"
#include "../../core/countmap.h"
#include "../../core/dns.h"
#include "../../core/preflight.h"
#include "../../core/tzone.h"
#include "../../core/warmup.h"
#include "../../core/window.h"

#include <unistd.h>

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_check_usage[] =
    "usage: blast check CAMPAIGN.yml [OPTIONS]\n"
    "\n"
    "Validate the campaign file, its recipient list, suppression lists, templates,\n"
    "relay secrets and the notify webhook's variable; print every problem with its\n"
    "place and a summary. Sends nothing (the webhook is not called). Exit 0 when\n"
    "clean, 2 otherwise.\n"
    "\n"
    "options:\n"
    "  --connect          also open each relay: TLS, AUTH, capabilities; then QUIT;\n"
    "                     and PING the shared limits' Redis ('limits: shared')\n"
    "  --dns              also look up the sending domain's DKIM keys, DMARC policy,\n"
    "                     SPF records (for each relay's address) and the relays' PTR\n"
    "                     names; an error is a problem, with what to publish\n"
    "                     (docs/authentication.md)\n"
    "  --limit N          check only the first N recipients of the list\n"
    "  --max-problems N   list at most N invalid rows (default 100); all are counted\n"
    "  --shard I/N        check shard I of N only, as 'send --shard' would send it\n"
    "                     (default: from the job engine's environment, docs/sharding.md)\n"
    "  --shard-count N    the number of shards of a Kubernetes Indexed Job\n"
    "  -q, --quiet        no summary, only problems\n"
    "  -v, --verbose      also list duplicates and suppressed rows\n"
    "  --log-format FORMAT  text (default) or json: errors and problems as JSON lines\n"
    "  -h, --help         this text\n";

struct check {
    const char *campaign;
    bool connect;
    bool dns;                 /* --dns: the sending domain's DKIM, DMARC, SPF and PTR records */
    struct countmap *domains; /* --dns: the valid recipients' domains, for their providers */
    bool quiet;
    int verbose;
    long limit;
    long max_problems;
    const char *shard;
    long shard_count;
    size_t problems;
    size_t listed_rows; /* row problems printed */
    struct shard sh;    /* the shard checked; count 0: the whole list */
    char pong[64];      /* --connect: the shared limits' Redis answered PING with this */
    struct log log;
    int64_t clock;                /* the campaign clock's offset (BLAST_NOW) */
    struct tzone *zone;           /* the campaign's time zone, or NULL when it failed */
    struct prepare_window window; /* the send window over the list */
};

static void problem(void *arg, const struct blast_error *e)
{
    struct check *k = arg;

    k->problems++;
    cli_error(e);
}

static int parse_args(int argc, char **argv, struct check *k)
{
    static const struct option longopts[] = {
        {"connect", no_argument, NULL, 'c'},
        {"dns", no_argument, NULL, 'd'},
        {"limit", required_argument, NULL, 'l'},
        {"max-problems", required_argument, NULL, 'm'},
        {"shard", required_argument, NULL, 's'},
        {"shard-count", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"log-format", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 1;
    k->max_problems = 100;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            k->connect = true;
            break;
        case 'd':
            k->dns = true;
            break;
        case 'l':
            if (cli_positive("check", "--limit", optarg, &k->limit) < 0)
                return -1;
            break;
        case 'm':
            if (cli_positive("check", "--max-problems", optarg, &k->max_problems) < 0)
                return -1;
            break;
        case 's':
            k->shard = optarg;
            break;
        case 'n':
            if (cli_positive("check", "--shard-count", optarg, &k->shard_count) < 0)
                return -1;
            break;
        case 'q':
            k->quiet = true;
            break;
        case 'v':
            k->verbose++;
            break;
        case 'L':
            if (cli_log_format("check", optarg) < 0)
                return -1;
            break;
        case 'h':
            fputs(cli_check_usage, stdout);
            return 1;
        default:
            cli_bad_option("check", argv, optopt);
            return -1;
        }
    }
    return cli_one_operand("check", argc, argv, &k->campaign);
}

struct list_counts {
    size_t rows, valid, invalid, duplicate, suppressed, others;
    size_t open_now; /* valid rows whose send window is open on the campaign clock */
    bool read;       /* the whole list (or --limit rows) was read */
};

static void row_problem(struct check *k, const struct prepared *p, const struct recipients_row *row,
                        const struct screen_result *who)
{
    struct blast_error e;

    if ((long)k->listed_rows >= k->max_problems)
        return;
    k->listed_rows++;
    blast_error_clear(&e);
    blast_error_set(&e, BLAST_EINVAL, recipients_path(p->list), (int)row->line, 0,
                    "row %zu, column '%s': %s", row->row, p->c->recipients.email_column,
                    who->reason);
    cli_error(&e);
}

static int scan_list(struct check *k, struct prepared *p, struct list_counts *n)
{
    struct recipients_row row;
    struct screen_result who;
    struct blast_error err;
    int rc;

    screen_result_init(&who);
    blast_error_clear(&err);
    while ((rc = recipients_next(p->list, &row, &err)) == 1) {
        if ((rc = screen_row(p->screen, &row, &who, &err)) < 0)
            break;
        n->rows++;
        switch (who.verdict) {
        case SCREEN_OK:
            n->valid++;
            if (k->domains != NULL && who.to.envelope != NULL &&
                strrchr(who.to.envelope, '@') != NULL &&
                countmap_add(k->domains, strrchr(who.to.envelope, '@') + 1, 0, 1) < 0) {
                countmap_free(k->domains); /* out of memory: no provider summary */
                k->domains = NULL;
            }
            if (k->window.w != NULL) {
                const struct tzone *z;
                struct blast_error ze;
                int64_t opens;
                blast_error_clear(&ze);
                if (prepare_window_zone(&k->window, p->c, p->list, &row, &z, &ze) < 0) {
                    k->problems++;
                    if ((long)k->listed_rows < k->max_problems) {
                        k->listed_rows++;
                        cli_error(&ze);
                    }
                } else if (window_open(k->window.w, z, prepare_clock_now(k->clock), &opens)) {
                    n->open_now++;
                }
            }
            break;
        case SCREEN_INVALID:
            n->invalid++;
            k->problems++;
            row_problem(k, p, &row, &who);
            break;
        case SCREEN_DUPLICATE:
            n->duplicate++;
            break;
        case SCREEN_SUPPRESSED:
            n->suppressed++;
            break;
        case SCREEN_OTHER_SHARD:
            n->others++;
            break;
        }
        if (who.verdict >= SCREEN_DUPLICATE && who.verdict != SCREEN_OTHER_SHARD && k->verbose > 0)
            log_msg(&k->log, LOG_LEVEL_INFO, "%s:%zu: row %zu: %s: %s", recipients_path(p->list),
                    row.line, row.row, screen_verdict_name(who.verdict), who.email);
        if (k->limit > 0 && (long)n->rows >= k->limit)
            break;
    }
    screen_result_free(&who);
    if (rc < 0) {
        problem(k, &err);
        return rc;
    }
    n->read = true;
    if (n->invalid > (size_t)k->max_problems)
        cli_fail("... and %zu more invalid rows (--max-problems to list more)",
                 n->invalid - (size_t)k->max_problems);
    if (n->rows == 0) {
        blast_error_set(&err, BLAST_EINVAL, recipients_path(p->list), 0, 0,
                        "the list has a header row but no recipients");
        problem(k, &err);
    }
    return 0;
}

/* --connect: open a session, show what the relay offers, QUIT. */
static void probe_relay(struct check *k, const struct campaign *c, const struct campaign_relay *r)
{
    struct blast_error e;
    struct conn_tls *tls = NULL;
    struct smtp_session *s = NULL;
    struct smtp_options so;
    char *password = NULL;
    unsigned caps;
    int rc;

    blast_error_clear(&e);
    if ((rc = secret_relay_password(c, r, &k->log, &password, &e)) < 0) {
        problem(k, &e);
        return;
    }
    if (r->tls != SMTP_TLS_NONE) {
        struct conn_tls_options to = {r->verify, r->ca_file, r->pin_sha256};
        rc = conn_tls_new(&to, &tls, &e);
    }
    if (rc == 0) {
        pool_smtp_options(c, r, tls, password, &k->log, &so);
        rc = smtp_session_open(&so, &s, &e);
    }
    if (rc < 0) {
        struct blast_error placed;
        cli_session_failure(s, &e);
        blast_error_clear(&placed);
        blast_error_set(&placed, rc, c->path, r->place.line, r->place.column,
                        "relay '%s' (%s port %d): %s", r->name, r->host, r->port, e.text);
        problem(k, &placed);
    } else if (!k->quiet) {
        const struct conn *cn = smtp_session_conn(s);
        caps = smtp_session_caps(s);
        printf("relay       %s: connected to %s port %d%s%s%s; %s\n", r->name, r->host, r->port,
               conn_is_tls(cn) ? ", " : ", no TLS", conn_is_tls(cn) ? conn_tls_version(cn) : "",
               conn_is_tls(cn) ? "" : "",
               r->username != NULL ? "authenticated" : "no AUTH configured");
        printf("            capabilities:%s%s%s%s%s%s%s%s\n",
               caps & SMTP_CAP_PIPELINING ? " PIPELINING" : "", caps & SMTP_CAP_SIZE ? " SIZE" : "",
               caps & SMTP_CAP_8BITMIME ? " 8BITMIME" : "",
               caps & SMTP_CAP_SMTPUTF8 ? " SMTPUTF8" : "",
               caps & SMTP_CAP_ENHANCED ? " ENHANCEDSTATUSCODES" : "",
               caps & SMTP_CAP_DSN ? " DSN" : "", caps & SMTP_CAP_CHUNKING ? " CHUNKING" : "",
               caps & SMTP_CAP_AUTH ? " AUTH" : "");
        if (conn_is_tls(cn)) {
            char subject[512];
            conn_tls_subject(cn, subject, sizeof subject);
            printf("            cipher: %s\n            certificate: %s\n", conn_tls_cipher(cn),
                   subject);
        }
    }
    if (s != NULL && rc == 0)
        smtp_session_quit(s);
    smtp_session_free(s);
    conn_tls_free(tls);
    if (password != NULL) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
}

static void print_relays(const struct campaign *c)
{
    size_t i;

    for (i = 0; i < c->nrelays; i++) {
        const struct campaign_relay *r = &c->relays[i];
        const char *secret = r->password_env    ? "password_env"
                             : r->password_file ? "password_file"
                             : r->password_cmd  ? "password_cmd"
                                                : NULL;
        printf("%-12s%s: %s port %d, tls %s%s, %d connection%s", i == 0 ? "relays" : "", r->name,
               r->host, r->port, smtp_tls_mode_name(r->tls),
               r->tls != SMTP_TLS_NONE && !r->verify ? " (not verified)" : "", r->connections,
               r->connections == 1 ? "" : "s");
        if (r->username != NULL)
            printf(", AUTH %s as %s (secret from %s)", smtp_auth_choice_name(r->auth), r->username,
                   secret);
        printf("\n");
    }
}

/*
 * Each signature's DNS TXT record, to publish before sending, in zone-file form: a
 * TXT string holds at most 255 characters (RFC 1035 §3.3.14), so a longer value
 * (any RSA key) is written as several strings, which verifiers join (RFC 6376 §3.6.2.2).
 */
static void print_dkim(const struct dkim *d)
{
    struct buf name = BUF_INIT, value = BUF_INIT;
    size_t i;

    for (i = 0; i < dkim_count(d); i++) {
        buf_reset(&name);
        buf_reset(&value);
        if (dkim_record_name(d, i, &name) < 0 || dkim_public_record(d, i, &value) < 0) {
            cli_fail("check: out of memory");
            break;
        }
        printf("dkim        %s TXT", name.data);
        for (size_t at = 0; at < value.len; at += 255)
            printf(" \"%.*s\"", (int)(value.len - at < 255 ? value.len - at : 255),
                   value.data + at);
        putchar('\n');
    }
    buf_free(&name);
    buf_free(&value);
}

/* --connect: reach the shared limits' Redis as send would, and PING it. */
static void probe_limits(struct check *k, const struct campaign *c)
{
    struct sharedlimit *s = NULL;
    struct blast_error e;

    if (c->limits.shared == NULL)
        return;
    blast_error_clear(&e);
    if (prepare_limits(c, &k->log, &s, &e) < 0 ||
        sharedlimit_ping(s, k->pong, sizeof k->pong, &e) < 0)
        problem(k, &e);
    sharedlimit_free(s);
}

/* Where the rates are kept: with 'limits: shared', in Redis under the campaign's keys. */
/* A rate per second, as a person reads it: "25/s", "2.5/s", "0.0833/s". */
static void rate_text(double per_second, char *out, size_t size)
{
    snprintf(out, size, "%.3g/s", per_second);
}

/*
 * The rates the run keeps: the campaign's, each relay's, each domain's; a shard's
 * part of them when the shards divide them (prepare_shard() did).
 */
static void print_rates(const struct check *k, const struct campaign *c)
{
    char r[32];
    const char *sep = "";
    size_t i;

    bool any = c->rate.set || c->ndomain_rates > 0;

    for (i = 0; i < c->nrelays; i++)
        any = any || c->relays[i].rate.set;
    if (!any)
        return;
    printf("rates       ");
    if (c->rate.set) {
        rate_text(c->rate.per_second, r, sizeof r);
        printf("campaign %s", r);
        sep = "; ";
    }
    for (i = 0; i < c->nrelays; i++)
        if (c->relays[i].rate.set) {
            rate_text(c->relays[i].rate.per_second, r, sizeof r);
            printf("%srelay %s %s", sep, c->relays[i].name, r);
            sep = "; ";
        }
    for (i = 0; i < c->ndomain_rates; i++) {
        rate_text(c->domain_rates[i].rate.per_second, r, sizeof r);
        printf("%s%s %s", sep, c->domain_rates[i].domain, r);
        sep = "; ";
    }
    if (k->sh.count > 1 && c->limits.shared == NULL)
        printf(" (this shard's 1/%u)", k->sh.count);
    else if (k->sh.count > 1)
        printf(" (the campaign's, shared by its shards)");
    printf("\n");
}

static void print_limits(const struct check *k, const struct campaign *c)
{
    const struct campaign_limits *l = &c->limits;
    const char *secret = l->password_env != NULL    ? "password_env"
                         : l->password_file != NULL ? "password_file"
                                                    : NULL;
    char key[1024];
    char *brace;

    if (l->shared == NULL)
        return;
    if (sharedlimit_key_name(c, SHAREDLIMIT_GLOBAL, 0, key, sizeof key) < 0)
        snprintf(key, sizeof key, "?");
    if ((brace = strchr(key, '}')) != NULL)
        brace[1] = '\0'; /* the campaign's prefix: blast:{NAME:HASH} */
    printf("limits      shared through %s%s%s: keys %s:*, asked before each message; a run "
           "stops after %ld s without it%s%s\n",
           l->shared, secret != NULL ? ", password from " : "", secret != NULL ? secret : "", key,
           l->max_outage / 1000, k->pong[0] != '\0' ? "; PING: " : "", k->pong);
}

/* The webhook as send will call it; the URL masked as in every message. */
static void print_notify(const struct campaign *c)
{
    const struct campaign_notify *n = c->notify;
    char url[512];

    if (n == NULL)
        return;
    notify_url_display(n->url, url, sizeof url);
    printf("notify      POST to %s when a send ends: timeout %.1f s, %d retr%s%s", url,
           (double)n->timeout / 1000.0, n->retries, n->retries == 1 ? "y" : "ies",
           strncasecmp(n->url, "https", 5) == 0 && !n->verify ? ", TLS not verified" : "");
    if (n->nheaders > 0)
        printf(", %zu extra header%s", n->nheaders, n->nheaders == 1 ? "" : "s");
    if (n->authorization_env != NULL)
        printf(", Authorization from %s", n->authorization_env);
    printf("\n");
}

static void print_seeds(const struct campaign *c)
{
    if (c->seeds.n == 0)
        return;
    printf("seeds       %zu (%s%s), sent first; the list waits up to %.0f s for them\n", c->seeds.n,
           c->seeds.addresses[0], c->seeds.n > 1 ? ", ..." : "", (double)c->seeds.wait / 1000.0);
}

/* The window, and whom a run started now would send (on the campaign clock). */
static void print_window(const struct check *k, const struct campaign *c,
                         const struct list_counts *n)
{
    char text[160];

    if (!c->window.set || k->zone == NULL)
        return;
    window_describe(&c->window.w, text, sizeof text);
    printf("window      %s, ", text);
    if (c->window.zone_column != NULL)
        printf("each recipient's zone from column '%s' (else %s)", c->window.zone_column,
               tzone_name(k->zone));
    else
        printf("in %s", tzone_name(k->zone));
    if (n->read)
        printf(": open now for %zu of %zu valid recipient%s", n->open_now, n->valid,
               n->valid == 1 ? "" : "s");
    putchar('\n');
}

struct warm_print {
    const struct campaign *c;
    int64_t today;
    size_t shown;
};

static int print_warm_row(void *arg, const struct warmup_row *w)
{
    struct warm_print *wp = arg;
    const struct warmup_schedule *ramp = campaign_warmup_ramp(wp->c, w->provider);
    int64_t day = wp->c->warmup.start >= 0 ? warmup_ramp_day(wp->c->warmup.start, wp->today)
                                           : warmup_ramp_day(w->first_day, wp->today);
    uint64_t cap;

    if (ramp == NULL)
        return 0;
    cap = warmup_cap(ramp, day);
    if (cap == WARMUP_NO_CAP)
        printf("            %s: day %lld, past the ramp: no cap\n", w->provider, (long long)day);
    else
        printf("            %s: day %lld of %lld: %llu today, %llu sent, %llu left\n", w->provider,
               (long long)day, (long long)warmup_days(ramp), (unsigned long long)cap,
               (unsigned long long)w->sent,
               (unsigned long long)(w->sent < cap ? cap - w->sent : 0));
    wp->shown++;
    return 0;
}

/*
 * The warm-up: today's caps and what remains, from the store (not created here), for
 * the providers the sender has sent to; the others start at day 1 of their ramp.
 */
static void print_warmup(struct check *k, const struct campaign *c)
{
    struct warmup_store *st = NULL;
    struct warm_print wp = {c, 0, 0};
    struct blast_error err;
    char *path, sender[300];
    struct tzone_tm tm;

    if (!c->warmup.enabled || k->zone == NULL)
        return;
    blast_error_clear(&err);
    if ((path = prepare_warmup_store(c, false, &err)) == NULL) {
        problem(k, &err);
        return;
    }
    address_mailbox_domain(c->from, sender, sizeof sender);
    tzone_local(k->zone, prepare_clock_now(k->clock), &tm);
    wp.today = timeutil_days_from_civil(tm.year, tm.month, tm.day);
    printf("warm-up     %s on %04d-%02d-%02d (%s), counted in %s\n", sender, tm.year, tm.month,
           tm.day, tzone_name(k->zone), path);
    if (access(path, F_OK) == 0) {
        if (warmup_store_open_read(path, &st, &err) < 0 ||
            warmup_each(st, sender, wp.today, print_warm_row, &wp, &err) < 0)
            problem(k, &err);
        warmup_store_close(st);
    }
    printf("            %s %llu on its day 1\n",
           wp.shown > 0 ? "a provider not sent to yet starts at" : "each provider starts at",
           (unsigned long long)warmup_cap(&c->warmup.schedule, 1));
    free(path);
}

/*
 * --dns: the list's domains looked up as send looks them up (docs/campaign.md,
 * "Providers"): how many recipients each provider's pace and warm-up will hold, and
 * which domains take no mail (send fails their recipients before any relay).
 */
static void print_providers(struct check *k, const struct campaign *c, FILE *out)
{
    const char *servers = prepare_dns_servers(c);
    struct provider_table t = {0};
    struct provider_routes *routes = NULL;
    struct blast_error err;
    size_t n, i, *per = NULL, *doms = NULL, none = 0, none_d = 0, unknown = 0, unknown_d = 0;
    size_t nomail = 0, nomail_d = 0, shown = 0;

    if (k->domains == NULL || (n = countmap_size(k->domains)) == 0 || out == NULL ||
        (servers != NULL && strcmp(servers, "off") == 0) || !c->dns.lookups)
        return;
    blast_error_clear(&err);
    if (prepare_routes(c, servers, k->domains, &t, &routes, &err) < 0 ||
        (per = calloc(t.n + 1, sizeof *per)) == NULL ||
        (doms = calloc(t.n + 1, sizeof *doms)) == NULL) {
        if (err.code != 0)
            problem(k, &err);
        goto out;
    }
    for (i = 0; i < n; i++) {
        const struct countmap_entry *e = countmap_at(k->domains, i);
        const struct provider_route *x = provider_routes_get(routes, e->name);
        size_t count = (size_t)e->total;
        if (x != NULL && (x->verdict == DNS_NULL_MX || x->verdict == DNS_NO_MAIL)) {
            nomail += count;
            nomail_d++;
        } else if (x != NULL && x->provider >= 0) {
            per[x->provider] += count;
            doms[x->provider]++;
        } else if (x != NULL && x->verdict == DNS_UNKNOWN) {
            unknown += count;
            unknown_d++;
        } else {
            none += count;
            none_d++;
        }
    }
    fputs("providers  ", out);
    for (i = 0; i < t.n; i++)
        if (per[i] > 0)
            fprintf(out, "%s %s %zu (%zu domain%s)", shown++ ? "," : "", t.p[i].name, per[i],
                    doms[i], doms[i] == 1 ? "" : "s");
    if (none > 0)
        fprintf(out, "%s no provider %zu (%zu domain%s)", shown++ ? "," : "", none, none_d,
                none_d == 1 ? "" : "s");
    if (unknown > 0)
        fprintf(out, "%s DNS did not say %zu (%zu domain%s)", shown++ ? "," : "", unknown,
                unknown_d, unknown_d == 1 ? "" : "s");
    fputc('\n', out);
    if (nomail > 0) {
        fprintf(out, "            take no mail: %zu recipient%s of %zu domain%s (send fails them):",
                nomail, nomail == 1 ? "" : "s", nomail_d, nomail_d == 1 ? "" : "s");
        for (i = 0, shown = 0; i < n && shown < 5; i++) {
            const struct provider_route *x =
                provider_routes_get(routes, countmap_at(k->domains, i)->name);
            if (x != NULL && (x->verdict == DNS_NULL_MX || x->verdict == DNS_NO_MAIL))
                fprintf(out, "%s %s (%s)", shown++ ? ";" : "", x->domain, x->why);
        }
        fputs(nomail_d > 5 ? "; ...\n" : "\n", out);
    }
out:
    provider_routes_free(routes);
    provider_table_free(&t);
    free(per);
    free(doms);
}

/* --dns: the findings (core/preflight); each error is a problem, warnings are not. */
static void run_dns(struct check *k, const struct prepared *p, FILE *out)
{
    struct preflight_counts n;
    struct blast_error err;

    if (!k->dns)
        return;
    blast_error_clear(&err);
    memset(&n, 0, sizeof n);
    if (prepare_preflight(p->c, p->dkim, out, &k->log, &n, &err) < 0) {
        problem(k, &err);
        return;
    }
    k->problems += n.errors;
    if (out != NULL)
        fprintf(out, "dns         %zu ok, %zu warning%s, %zu error%s\n", n.ok, n.warnings,
                n.warnings == 1 ? "" : "s", n.errors, n.errors == 1 ? "" : "s");
    print_providers(k, p->c, out);
}

int cmd_check(int argc, char **argv)
{
    struct check k;
    struct prepared p;
    struct blast_error err;
    struct blast_diag diag;
    struct list_counts n;
    size_t i;
    int rc;

    memset(&k, 0, sizeof k);
    memset(&p, 0, sizeof p);
    memset(&n, 0, sizeof n);
    rc = parse_args(argc, argv, &k);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&k.log, cli_log_level(false, k.verbose));
    diag.report = problem;
    diag.arg = &k;
    blast_error_clear(&err);

    /* without a campaign there is nothing else to check */
    if (campaign_load(k.campaign, &p.c, &err) < 0) {
        cli_error(&err);
        return BLAST_EXIT_USAGE;
    }
    for (i = 0; i < p.c->nrelays; i++) {
        blast_error_clear(&err);
        if (secret_relay_password_check(p.c, &p.c->relays[i], &k.log, &err) < 0)
            problem(&k, &err);
    }
    if (p.c->return_path.address != NULL) {
        /* the secret is there, and long enough to make tokens with */
        char *secret = NULL;
        blast_error_clear(&err);
        if (secret_return_path(p.c, &k.log, &secret, &err) < 0)
            problem(&k, &err);
        if (secret != NULL) {
            OPENSSL_cleanse(secret, strlen(secret));
            free(secret);
        }
    }
    if (p.c->limits.shared != NULL && !k.connect) {
        /* the Redis password is there (--connect fetches it to connect) */
        struct secret_source src;
        secret_limits_source(p.c, &src);
        blast_error_clear(&err);
        if (secret_check(&src, &k.log, &err) < 0)
            problem(&k, &err);
    }
    if (p.c->bounces.url != NULL) {
        /* the bounce mailbox's secret is there (a password_cmd is not run) */
        struct secret_source src;
        secret_bounces_source(p.c, &src);
        blast_error_clear(&err);
        if (secret_check(&src, &k.log, &err) < 0)
            problem(&k, &err);
    }
    blast_error_clear(&err);
    if (notify_check_settings(p.c, &err) < 0)
        problem(&k, &err);
    blast_error_clear(&err);
    if (dkim_new(p.c, &k.log, &diag, &p.dkim, &err) < 0 && err.code == BLAST_ENOMEM)
        problem(&k, &err);
    blast_error_clear(&err);
    if (prepare_clock(&k.clock, &err) < 0)
        problem(&k, &err);
    blast_error_clear(&err);
    if ((p.c->window.set || p.c->warmup.enabled) && prepare_zone(p.c, &k.zone, &err) < 0)
        problem(&k, &err);
    blast_error_clear(&err);
    if (prepare_list(p.c, &p.list, &err) < 0) {
        problem(&k, &err);
    } else if (screen_new(p.c, p.list, &p.screen, &err) < 0) {
        problem(&k, &err);
    } else if (prepare_shard(&p, k.shard, k.shard_count, &k.sh, &err) < 0) {
        problem(&k, &err);
    } else {
        blast_error_clear(&err);
        if (compose_new(p.c, p.list, p.screen, &diag, &p.cp, &err) < 0 && k.problems == 0)
            problem(&k, &err);
        blast_error_clear(&err);
        if ((k.zone != NULL || !p.c->window.set) &&
            prepare_window_open(p.c, p.list, k.zone, &k.window, &err) < 0)
            problem(&k, &err);
        if (k.dns)
            k.domains = countmap_new(); /* NULL: no provider summary, nothing else lost */
        scan_list(&k, &p, &n);
    }
    /* warnings, not problems: the exit code stays what the campaign makes it */
    prepare_warn_exposed(p.c, &k.sh, NULL, NULL, NULL, &k.log);
    for (i = 0; k.connect && i < p.c->nrelays; i++)
        probe_relay(&k, p.c, &p.c->relays[i]);
    if (k.connect)
        probe_limits(&k, p.c);

    if (!k.quiet) {
        printf("campaign    %s (%s)\n", p.c->name, p.c->path);
        if (n.read || n.rows > 0)
            printf("recipients  %s: %zu row%s, %zu valid, %zu invalid, %zu duplicate%s, "
                   "%zu suppressed%s\n",
                   p.c->recipients.path, n.rows, n.rows == 1 ? "" : "s", n.valid, n.invalid,
                   n.duplicate, n.duplicate == 1 ? "" : "s", n.suppressed,
                   n.read ? "" : " (stopped at a problem)");
        if (k.sh.count > 1 && p.c->limits.shared != NULL)
            printf("shard       %u of %u (0-based): %zu rows, %zu of other shards; rates shared\n",
                   k.sh.index, k.sh.count, n.rows - n.others, n.others);
        else if (k.sh.count > 1)
            printf("shard       %u of %u (0-based): %zu rows, %zu of other shards; every rate "
                   "1/%u\n",
                   k.sh.index, k.sh.count, n.rows - n.others, n.others, k.sh.count);
        if (p.screen != NULL && p.c->nsuppression > 0)
            printf("suppression %zu list%s, %zu address%s\n", p.c->nsuppression,
                   p.c->nsuppression == 1 ? "" : "s", screen_suppression_size(p.screen),
                   screen_suppression_size(p.screen) == 1 ? "" : "es");
        if (p.cp != NULL)
            printf("templates   %zu (subject%s%s%s%s), %zu name%s used, all known\n",
                   compose_ntemplates(p.cp), p.c->body.text ? ", text" : "",
                   p.c->body.html ? ", html" : "", p.c->nheaders > 0 ? ", headers" : "",
                   p.c->list_unsubscribe.url != NULL ? ", unsubscribe URL" : "",
                   compose_nplaceholders(p.cp), compose_nplaceholders(p.cp) == 1 ? "" : "s");
        print_relays(p.c);
        print_rates(&k, p.c);
        print_limits(&k, p.c);
        print_notify(p.c);
        print_dkim(p.dkim);
        print_seeds(p.c);
        print_window(&k, p.c, &n);
        print_warmup(&k, p.c);
        run_dns(&k, &p, stdout);
        if (k.problems == 0)
            printf("result      ok: nothing to fix\n");
        else
            printf("result      %zu problem%s (listed above)\n", k.problems,
                   k.problems == 1 ? "" : "s");
    }
    if (k.quiet)
        run_dns(&k, &p, NULL);
    countmap_free(k.domains);
    prepare_window_close(&k.window);
    tzone_free(k.zone);
    prepare_close(&p);
    return k.problems == 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
}
