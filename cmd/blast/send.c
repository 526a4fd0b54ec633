/*
 * send - `blast send CAMPAIGN.yml`: validate everything, then deliver and report.
 *
 * Order of work, so that a bad input never sends half a campaign:
 *   1. load the campaign, open the list, compile the templates against its header,
 *      and read the whole list once through the screening rules: a structural
 *      error (broken quoting, invalid UTF-8, a missing column) stops here, exit 2;
 *   2. fetch every relay's secret; open the journal (taking its lock, checking
 *      that the campaign did not change since it was started);
 *   3. start the pool, read the list again and hand it each recipient that is not
 *      already done (delivered, failed, skipped by rule, or unknown);
 *   4. wait for the pool; rebuild the report from the journal, so that it covers
 *      the whole campaign across runs; exit with the code of docs/delivery.md.
 *
 * A test send (--to) and a dry run keep their journal in a temporary file: they
 * never touch the campaign's own.
 */
#include "cli.h"
#include "prepare.h"
#include "progress.h"
#include "../../core/intake.h"
#include "../../core/countmap.h"
#include "../../core/dns.h"
#include "../../core/journal.h"
#include "../../core/provider.h"
#include "../../core/metrics.h"
#include "../../core/shard.h"
#include "../../core/notify.h"
#include "../../core/policy.h"
#include "../../core/private.h"
#include "../../core/pool.h"
#include "../../core/report.h"
#include "../../core/retention.h"
#include "../../core/secret.h"
#include "../../core/sharedlimit.h"
#include "../../core/timeutil.h"
#include "../../core/preflight.h"
#include "../../core/tzone.h"
#include "../../core/warmup.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_send_usage[] =
    "usage: blast send CAMPAIGN.yml [OPTIONS]\n"
    "\n"
    "Render one message per recipient and deliver it through the campaign's relays;\n"
    "keep every outcome in the campaign's journal and write the JSON report. A second\n"
    "run resumes: nobody who got the message, was refused for good, or whose message\n"
    "may have gone (unknown) is sent it again.\n"
    "\n"
    "options:\n"
    "  --dry-run DIR        render every message into DIR/<row>.eml; connect to nothing\n"
    "  --limit N            handle only the first N recipients of the list\n"
    "  --to ADDRESS         test send: every message goes to ADDRESS instead; the\n"
    "                       journal is not touched\n"
    "  --report PATH        where to write the report ('-' for standard output);\n"
    "                       default: the campaign's 'report', else reports/NAME.json\n"
    "  --journal PATH       the journal; default: the campaign's 'journal', else\n"
    "                       .blast/NAME.journal beside the campaign file\n"
    "  --fresh              forget the journal and start the campaign over\n"
    "  --force              resume even though the campaign, templates or list changed;\n"
    "                       send even though 'preflight: dns' found errors\n"
    "  --resend-unknown     send again the messages whose fate is unknown\n"
    "  --no-breaker         send on whatever the first attempts say (the campaign's\n"
    "                       'breaker' stops a run whose first attempts are mostly\n"
    "                       refused, blocked or throttled, and its 'seeds' one\n"
    "                       whose seeds are all refused: exit 5)\n"
    "  --no-compact         keep the journal whole when the run leaves every\n"
    "                       recipient final (by default it is compacted then:\n"
    "                       'blast journal compact')\n"
    "  --exclude-report PREV.json\n"
    "                       skip whom PREV.json (another campaign's report) shows\n"
    "                       delivered: reported as suppressed, \"delivered in PREV.json\"\n"
    "  --suppress-from PREV.json\n"
    "                       suppress whom PREV.json shows failed for a bad address\n"
    "                       (enhanced code 5.1.x, e.g. 5.1.1 no such mailbox); both\n"
    "                       may be given several times and count in the journal's\n"
    "                       check that a resumed campaign has not changed\n"
    "  --shard I/N          send shard I (0-based) of N: the recipients whose address\n"
    "                       hashes to it (docs/sharding.md); its own journal and\n"
    "                       report (NAME.shard-I-of-N), 1/N of every rate (unless the\n"
    "                       campaign shares them: 'limits: shared'). Default:\n"
    "                       from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or\n"
    "                       JOB_COMPLETION_INDEX with --shard-count or BLAST_SHARD_COUNT\n"
    "  --shard-count N      the number of shards of a Kubernetes Indexed Job\n"
    "  --deadline DURATION  stop taking recipients after DURATION (90s, 5m, 1h30m);\n"
    "                       those not sent stay deferred for the next run\n"
    "  --metrics PATH       at the end of the run, whatever its exit code, write\n"
    "                       its figures to PATH in the Prometheus text format for\n"
    "                       node_exporter's textfile collector (docs/metrics.md);\n"
    "                       not with --dry-run or --to (not runs of the campaign)\n"
    "  --progress           a progress bar even when stderr is not a terminal\n"
    "  --log-format FORMAT  text (default) or json: one JSON object a line\n"
    "  -q, --quiet          only warnings and errors on stderr; no progress\n"
    "  -v, --verbose        more detail; -vv adds the SMTP transcript (secrets masked)\n"
    "  -h, --help           this text\n";

/* Set by the signal handler: the first SIGINT or SIGTERM asks for a clean stop. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    if (interrupted)
        _exit(BLAST_EXIT_INTERRUPTED); /* the second: at once; the journal is whole records */
    interrupted = sig;
}

#define MAX_REPORTS 32

struct send_opts {
    const char *campaign;
    const char *dry_run;
    const char *to;
    const char *report;
    const char *journal;
    const char *metrics; /* --metrics PATH, or NULL */
    long limit;          /* 0: no limit */
    const char *shard;   /* --shard I/N, or NULL */
    long shard_count;    /* --shard-count N, 0: none */
    long deadline_ms;    /* 0: none */
    bool fresh, force, resend_unknown, no_compact, no_breaker;
    int verbose;
    bool quiet;
    bool progress;
    struct prepare_report reports[MAX_REPORTS]; /* --exclude-report, --suppress-from */
    size_t nreports;
};

static int parse_args(int argc, char **argv, struct send_opts *o)
{
    enum {
        O_DRY = 256,
        O_LIMIT,
        O_TO,
        O_REPORT,
        O_JOURNAL,
        O_FRESH,
        O_FORCE,
        O_UNKNOWN,
        O_DEADLINE,
        O_PROGRESS,
        O_LOG_FORMAT,
        O_EXCLUDE,
        O_SUPPRESS_FROM,
        O_SHARD,
        O_SHARD_COUNT,
        O_METRICS,
        O_NO_COMPACT,
        O_NO_BREAKER
    };
    static const struct option longopts[] = {
        {"dry-run", required_argument, NULL, O_DRY},
        {"limit", required_argument, NULL, O_LIMIT},
        {"to", required_argument, NULL, O_TO},
        {"report", required_argument, NULL, O_REPORT},
        {"journal", required_argument, NULL, O_JOURNAL},
        {"fresh", no_argument, NULL, O_FRESH},
        {"force", no_argument, NULL, O_FORCE},
        {"resend-unknown", no_argument, NULL, O_UNKNOWN},
        {"deadline", required_argument, NULL, O_DEADLINE},
        {"progress", no_argument, NULL, O_PROGRESS},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"exclude-report", required_argument, NULL, O_EXCLUDE},
        {"suppress-from", required_argument, NULL, O_SUPPRESS_FROM},
        {"shard", required_argument, NULL, O_SHARD},
        {"shard-count", required_argument, NULL, O_SHARD_COUNT},
        {"metrics", required_argument, NULL, O_METRICS},
        {"no-compact", no_argument, NULL, O_NO_COMPACT},
        {"no-breaker", no_argument, NULL, O_NO_BREAKER},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case O_DRY:
            o->dry_run = optarg;
            break;
        case O_LIMIT:
            if (cli_positive("send", "--limit", optarg, &o->limit) < 0)
                return -1;
            break;
        case O_TO:
            o->to = optarg;
            break;
        case O_REPORT:
            o->report = optarg;
            break;
        case O_JOURNAL:
            o->journal = optarg;
            break;
        case O_NO_COMPACT:
            o->no_compact = true;
            break;
        case O_NO_BREAKER:
            o->no_breaker = true;
            break;
        case O_FRESH:
            o->fresh = true;
            break;
        case O_FORCE:
            o->force = true;
            break;
        case O_UNKNOWN:
            o->resend_unknown = true;
            break;
        case O_DEADLINE:
            if (campaign_parse_duration(optarg, &o->deadline_ms) < 0) {
                cli_fail("send: --deadline needs a duration such as 90s, 5m or 1h30m, not '%s'",
                         optarg);
                return -1;
            }
            break;
        case O_PROGRESS:
            o->progress = true;
            break;
        case O_LOG_FORMAT:
            if (cli_log_format("send", optarg) < 0)
                return -1;
            break;
        case O_SHARD:
            o->shard = optarg;
            break;
        case O_SHARD_COUNT:
            if (cli_positive("send", "shard-count", optarg, &o->shard_count) < 0)
                return -1;
            break;
        case O_METRICS:
            o->metrics = optarg;
            break;
        case O_EXCLUDE:
        case O_SUPPRESS_FROM:
            if (o->nreports == MAX_REPORTS) {
                cli_fail("send: at most %d reports with --exclude-report and --suppress-from",
                         MAX_REPORTS);
                return -1;
            }
            o->reports[o->nreports].rule =
                c == O_EXCLUDE ? SCREEN_EXCLUDE_DELIVERED : SCREEN_SUPPRESS_BAD_ADDRESSES;
            o->reports[o->nreports++].path = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'v':
            o->verbose++;
            break;
        case 'h':
            fputs(cli_send_usage, stdout);
            return 1;
        default:
            cli_bad_option("send", argv, optopt);
            return -1;
        }
    }
    if (o->fresh && o->force) {
        cli_fail("send: --fresh starts over and --force resumes: give one of them");
        return -1;
    }
    if (o->metrics != NULL && (o->dry_run != NULL || o->to != NULL)) {
        /* a dashboard would read its figures as the campaign's (docs/metrics.md) */
        cli_fail("send: --metrics is for runs of the campaign, not with %s: its figures would "
                 "read as the campaign's on a dashboard",
                 o->dry_run != NULL ? "--dry-run" : "--to");
        return -1;
    }
    return cli_one_operand("send", argc, argv, &o->campaign);
}

/* Everything one run holds; freed by run_free(). */
/* One provider's warm-up in this run (docs/campaign.md, "warmup"). */
struct warm {
    const char *name;                   /* the provider's, or WARMUP_OTHER */
    const struct warmup_schedule *ramp; /* NULL: no warm-up for it */
    bool started;                       /* its ramp day and cap are known */
    int64_t ramp_day;
    uint64_t cap;        /* today's, for the sender, or WARMUP_NO_CAP */
    uint64_t part;       /* a shard's part of it (cap / N), counted under its own key too */
    uint64_t held;       /* taken from the store and not used yet */
    uint64_t used;       /* recipients sent under it in this run */
    bool exhausted;      /* the store gave nothing more today */
    bool first_found;    /* the store knew the ramp's first day */
    bool first_recorded; /* this run recorded today as the first day */
    size_t deferred;     /* recipients held by it in this run */
};

struct run {
    struct send_opts opt;
    struct log log;
    struct prepared p;
    struct campaign *c; /* p.c */
    struct address test_to;
    bool has_test_to;
    char **passwords; /* one per relay */
    char *report_path;
    char *journal_path;
    bool throwaway; /* a temporary journal (test send, dry run) */
    struct journal *journal;
    struct pool *pool;
    struct sharedlimit *shared; /* the campaign's limits in Redis, or NULL */
    struct countmap *domains;   /* the recipients' domains (validate()), for the lookups */
    struct provider_table providers;
    struct provider_routes *routes; /* NULL: no lookups (docs/campaign.md, "Providers") */
    struct screen_result who;
    struct compose_result msg; /* dry runs render here */
    size_t rows;               /* data rows in the list (after --limit) */
    size_t skipped;            /* rows done in an earlier run (atomic: progress reads it) */
    size_t ruled;              /* rows settled here, not by the pool (atomic) */
    size_t rendered;           /* dry runs: messages rendered (atomic) */
    bool stopped;              /* a signal or the deadline stopped the run */
    bool tripped;              /* the circuit breaker stopped it (exit 5) */
    struct outcome *seeds; /* the seeds' outcomes (send_seeds); for the report, nseeds of them */
    bool *seed_have;
    size_t nseeds;
    int64_t clock;      /* the campaign clock's offset (prepare_clock) */
    struct tzone *zone; /* the campaign's time zone */
    int64_t today;      /* the run's day in it (days since 1970-01-01), at its start */
    char day_text[16];  /* the same, "2026-12-07" */
    struct warmup_store *warm_store;
    struct prepare_window window; /* the send window, and the list's zones */
    size_t held_window;           /* recipients it held in this run (atomic) */
    struct warm *warm;            /* a provider's warm-up each, and "other" last; NULL: none */
    size_t nwarm;
    char sender[300];    /* the From domain the warm-up counts for */
    char shard_key[320]; /* a shard's own key beside it ("acme.example (shard 1/4)") */
    bool warm_settled;   /* warm_settle() ran */
    uint64_t *warm_bits; /* the rows that took a warm-up count in this run, a bit each */
    size_t warm_words;
    char breaker_why[256]; /* its figures, for the report */
    struct timeutil_stamp started;
    struct shard shard;  /* count 0: the whole list */
    size_t others;       /* rows of other shards */
    json_t *summary;     /* the report's summary, for the webhook */
    bool report_written; /* report_commit() succeeded */
    char hash[65];       /* the campaign's fingerprint; "" before the journal opens */
    uint64_t *mine;      /* a shard's rows (validate()), a bit each */
    size_t mine_words;
    uint64_t *dups; /* the rows validate() found duplicates, a bit each */
    size_t dup_words;
};

/* What was taken from the warm-up store and not used goes back (the run is over). */
static void warm_release(struct run *r)
{
    struct blast_error e;

    for (size_t i = 0; i < r->nwarm; i++) {
        struct warm *w = &r->warm[i];
        blast_error_clear(&e);
        if (w->held > 0 &&
            (warmup_release(r->warm_store, r->sender, w->name, r->today, w->held, &e) < 0 ||
             (r->shard.count > 1 &&
              warmup_release(r->warm_store, r->shard_key, w->name, r->today, w->held, &e) < 0)))
            log_msg(&r->log, LOG_LEVEL_WARN, "%s: %s", e.source, e.text);
        w->held = 0;
        /* the ramp's day 1 is the first day something went: not this one after all */
        blast_error_clear(&e);
        if (w->first_recorded && w->used == 0) {
            if (warmup_first_forget(r->warm_store, r->sender, w->name, r->today, &e) < 0)
                log_msg(&r->log, LOG_LEVEL_WARN, "%s: %s", e.source, e.text);
            w->first_recorded = false;
        }
    }
}

static void warm_settle(struct run *r);
static void seeds_forget(struct run *r);

static void run_free(struct run *r)
{
    size_t i;

    pool_free(r->pool);
    warm_settle(r); /* a run that ended early: what it did not send goes back */
    warmup_store_close(r->warm_store);
    free(r->warm);
    free(r->warm_bits);
    prepare_window_close(&r->window);
    tzone_free(r->zone);
    sharedlimit_free(r->shared);
    countmap_free(r->domains);
    provider_table_free(&r->providers);
    provider_routes_free(r->routes);
    if (r->throwaway)
        journal_discard(r->journal);
    else
        journal_close(r->journal);
    for (i = 0; r->passwords != NULL && r->c != NULL && i < r->c->nrelays; i++)
        if (r->passwords[i] != NULL) {
            OPENSSL_cleanse(r->passwords[i], strlen(r->passwords[i]));
            free(r->passwords[i]);
        }
    free(r->passwords);
    free(r->report_path);
    free(r->journal_path);
    compose_result_free(&r->msg);
    screen_result_free(&r->who);
    address_free(&r->test_to);
    json_decref(r->summary);
    seeds_forget(r);
    free(r->mine);
    free(r->dups);
    prepare_close(&r->p);
}

/*
 * Bit row of a growing bitmap. validate() keeps two: a shard's own rows, for its
 * journal to keep only those (journal_options.only: a bit a row of the list
 * instead of 8 bytes, 80 MB against 20 MB for a shard of 10,000,000 rows and 4
 * shards), and the duplicates, so that the send pass needs no set of every address
 * (screen_use_duplicates()).
 */
static int set_bit(uint64_t **bits, size_t *words, size_t row, struct blast_error *err)
{
    size_t w = row / 64;

    if (w >= *words) {
        size_t n = *words ? *words * 2 : 1024;
        uint64_t *b;
        while (n <= w)
            n *= 2;
        if ((b = realloc(*bits, n * sizeof *b)) == NULL)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        memset(b + *words, 0, (n - *words) * sizeof *b);
        *bits = b;
        *words = n;
    }
    (*bits)[w] |= 1ULL << (row % 64);
    return 0;
}

/*
 * After the first SIZING_ROWS rows, the set that finds duplicates is made as large
 * as the rest of the file will need (the addresses kept so far, times the file's
 * size over what was read), in one step: growing by doubling holds the old table
 * and one twice its size at once, which for the 2,500,000 addresses of a shard of
 * 10,000,000 rows is 48 MB for a moment instead of 32. A guess that falls short
 * only means the set grows as before.
 */
#define SIZING_ROWS 16384

static int size_the_set(struct run *r, struct blast_error *err)
{
    unsigned long long read, size;
    size_t kept = screen_seen_size(r->p.screen);

    recipients_progress(r->p.list, &read, &size);
    if (read == 0 || size <= read || kept == 0)
        return 0;
    /* a tenth more, for a list whose first rows are shorter than the rest */
    return screen_reserve(r->p.screen, (size_t)((double)kept * ((double)size / read - 1) * 1.1),
                          err);
}

/*
 * The screened recipient's domain, as the pool keys it: the envelope's, already in its
 * lower-case A-label form (core/address). NULL for none.
 */
static const char *domain_of(const struct run *r)
{
    const char *at = strrchr(r->who.to.envelope, '@');

    return at != NULL ? at + 1 : NULL;
}

/* The recipient's domain into r->domains, when lookups are on. */
static int count_domain(struct run *r, struct blast_error *err)
{
    const char *domain = domain_of(r);

    if (r->domains == NULL || domain == NULL)
        return 0;
    if (countmap_add(r->domains, domain, OUTCOME_DELIVERED, 1) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return 0;
}

/*
 * Whether this run looks the recipients' domains up (docs/campaign.md, "Providers"):
 * the campaign's dns.lookups, unless BLAST_DNS_SERVERS is "off"; never for a dry run
 * or a test send, which deliver to no provider. *servers: the environment's, else the
 * campaign's, else NULL (the system's resolver).
 */
static bool lookups_wanted(const struct run *r, const char **servers)
{
    *servers = prepare_dns_servers(r->c);
    if (r->opt.dry_run != NULL || r->opt.to != NULL || !r->c->dns.lookups)
        return false;
    return *servers == NULL || strcmp(*servers, "off") != 0;
}

/*
 * The recipients' domains looked up once, before anything is sent: which provider's
 * pace each keeps, and which take no mail (core/dns, core/provider). A lookup that
 * fails leaves that domain to its own limits; lookups that cannot start at all (a bad
 * server) are an error, since the campaign asked for them.
 */
static int resolve_domains(struct run *r, struct blast_error *err)
{
    const char *servers;
    size_t n, i, nomail = 0, unknown = 0;
    int rc;

    if (r->domains == NULL || (n = countmap_size(r->domains)) == 0)
        return 0;
    lookups_wanted(r, &servers);
    rc = prepare_routes(r->c, servers, r->domains, &r->providers, &r->routes, err);
    /*
     * With shared limits, the paces are kept in Redis with the campaign's other rates, whole;
     * else a shard keeps 1/N of each, as of the others (docs/sharding.md)
     */
    if (rc == 0 && r->shared != NULL)
        rc = sharedlimit_add_providers(r->shared, &r->providers, err);
    for (i = 0; rc == 0 && r->shared == NULL && r->shard.count > 1 && i < r->providers.n; i++)
        r->providers.p[i].rate /= r->shard.count;
    /* the routes hold the names now */
    countmap_free(r->domains);
    r->domains = NULL;
    if (rc < 0)
        return rc;
    for (i = 0; i < provider_routes_count(r->routes); i++) {
        const struct provider_route *x = provider_routes_at(r->routes, i);
        nomail += x->verdict == DNS_NULL_MX || x->verdict == DNS_NO_MAIL;
        unknown += x->verdict == DNS_UNKNOWN;
    }
    log_msg(&r->log, LOG_LEVEL_INFO,
            "%s: %zu recipient domain%s looked up: %zu take no mail, %zu not known (their own "
            "limits only)",
            r->c->name, n, n == 1 ? "" : "s", nomail, unknown);
    for (i = 0; i < provider_routes_count(r->routes); i++) {
        const struct provider_route *x = provider_routes_at(r->routes, i);
        if (x->provider >= 0)
            log_msg(&r->log, LOG_LEVEL_DEBUG, "%s: %s is %s's (%.3g/s)", r->c->name, x->domain,
                    r->providers.p[x->provider].name, r->providers.p[x->provider].rate);
        else if (x->verdict != DNS_MAIL)
            log_msg(&r->log, LOG_LEVEL_DEBUG, "%s: %s: %s (%s)", r->c->name, x->domain,
                    dns_verdict_name(x->verdict), x->why);
    }
    return 0;
}

/*
 * A domain that DNS says takes no mail: its recipients fail before any relay is
 * asked, with the enhanced code a relay would give (RFC 7505 §4.3: 5.1.10 for a null
 * MX; RFC 3463: 5.1.2, a bad destination system), so that --suppress-from takes them
 * as bad addresses. 0: the row's domain takes mail (or was not looked up).
 */
/* The route of the screened row's domain when DNS says it takes no mail, else NULL. */
static const struct provider_route *no_mail_route(const struct run *r)
{
    const char *domain = domain_of(r);
    const struct provider_route *x;

    if (r->routes == NULL || domain == NULL)
        return NULL;
    x = provider_routes_get(r->routes, domain);
    return x != NULL && (x->verdict == DNS_NULL_MX || x->verdict == DNS_NO_MAIL) ? x : NULL;
}

/*
 * Whether an earlier run settled the row: it is not sent again (unknown: on request).
 * Its journal state into *st, and the attempts earlier runs made into *attempts.
 */
static bool settled_before(struct run *r, size_t row, enum journal_state *st, int *attempts)
{
    *st = journal_state(r->journal, row, attempts);
    return *st == JOURNAL_FINAL ||
           ((*st == JOURNAL_UNKNOWN || *st == JOURNAL_SENDING) && !r->opt.resend_unknown);
}

static int no_mail(struct run *r, const struct recipients_row *row, const struct outcome *earlier,
                   struct blast_error *err)
{
    const struct provider_route *x = no_mail_route(r);
    const char *domain = domain_of(r);
    char detail[256];
    struct outcome o;
    int rc;

    if (x == NULL)
        return 0;
    snprintf(detail, sizeof detail, "the domain %s takes no mail: %s", domain, x->why);
    /* the attempts earlier runs made (before its domain stopped taking mail) stay counted */
    if (earlier != NULL && earlier->attempts > 0) {
        if (outcome_copy(&o, earlier) < 0)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        o.step = OUTCOME_STEP_NONE;
        o.code = 0;
        if (outcome_set(&o.reply, NULL) < 0 || outcome_set(&o.relay, NULL) < 0) {
            outcome_free(&o);
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        }
    } else {
        outcome_init(&o);
    }
    o.row = row->row;
    o.status = OUTCOME_FAILED;
    snprintf(o.enhanced, sizeof o.enhanced, "%s", x->verdict == DNS_NULL_MX ? "5.1.10" : "5.1.2");
    if (outcome_set(&o.email, r->who.email) < 0 || outcome_set(&o.detail, detail) < 0) {
        outcome_free(&o);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    rc = journal_record(r->journal, &o, err);
    outcome_free(&o);
    if (rc < 0)
        return rc;
    __atomic_fetch_add(&r->ruled, 1, __ATOMIC_RELAXED);
    return 1;
}

/* Step 1: read the whole list once; a structural error stops everything. */
static int validate(struct run *r, struct blast_error *err)
{
    struct recipients_row row;
    int rc;

    while ((rc = recipients_next(r->p.list, &row, err)) == 1) {
        if ((rc = screen_row(r->p.screen, &row, &r->who, err)) < 0)
            return rc;
        if (r->window.col >= 0 && r->who.verdict == SCREEN_OK) {
            const struct tzone *z;
            if ((rc = prepare_window_zone(&r->window, r->c, r->p.list, &row, &z, err)) < 0)
                return rc;
        }
        r->rows++;
        r->others += r->who.verdict == SCREEN_OTHER_SHARD;
        if (r->who.verdict == SCREEN_OK && (rc = count_domain(r, err)) < 0)
            return rc;
        if (r->shard.count > 1 && r->who.verdict != SCREEN_OTHER_SHARD &&
            (rc = set_bit(&r->mine, &r->mine_words, r->rows, err)) < 0)
            return rc;
        if (r->who.verdict == SCREEN_DUPLICATE &&
            (rc = set_bit(&r->dups, &r->dup_words, r->rows, err)) < 0)
            return rc;
        if (r->rows == SIZING_ROWS && (rc = size_the_set(r, err)) < 0)
            return rc;
        if (r->opt.limit > 0 && (long)r->rows >= r->opt.limit)
            break;
    }
    if (rc < 0)
        return rc;
    if (r->rows == 0)
        return blast_error_set(err, BLAST_EINVAL, r->c->recipients.path, 0, 0,
                               "the list has a header row but no recipients");
    if ((rc = recipients_rewind(r->p.list, err)) < 0 || (rc = screen_restart(r->p.screen, err)) < 0)
        return rc;
    /* the send pass takes the duplicates from here: no second set of every address */
    screen_use_duplicates(r->p.screen, r->dups, r->dup_words * 64);
    return 0;
}

/* A path beside the campaign file: dir/sub/NAME.ext, its directory created. */
static char *beside(struct run *r, const char *sub, const char *ext, struct blast_error *err)
{
    size_t n = strlen(r->c->dir) + strlen(sub) + strlen(r->c->name) + strlen(ext) + 4;
    char *path = malloc(n);

    if (path == NULL) {
        blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        return NULL;
    }
    snprintf(path, n, "%s/%s", r->c->dir, sub);
    /* it holds reports or journals, which list the recipients (docs/files.md) */
    if (private_mkdir(path, false) != 0) {
        blast_error_set(err, BLAST_EIO, r->c->path, 0, 0, "cannot create the directory %s: %s",
                        path, strerror(errno));
        free(path);
        return NULL;
    }
    snprintf(path, n, "%s/%s/%s%s", r->c->dir, sub, r->c->name, ext);
    return path;
}

/*
 * One of the run's files: as the command line gives it, else the campaign's
 * setting, else beside the campaign file (sub/NAME.ext); the last two with the
 * shard's part in the name (docs/sharding.md). NULL with err set on failure.
 */
static char *own_file(struct run *r, const char *given, const char *setting, const char *sub,
                      const char *ext, struct blast_error *err)
{
    char *d = NULL, *path;

    if (given != NULL)
        path = strdup(given);
    else if (setting == NULL && (d = beside(r, sub, ext, err)) == NULL)
        return NULL;
    else
        path = prepare_shard_path(d != NULL ? d : setting, &r->shard);
    free(d);
    if (path == NULL)
        blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return path;
}

static int open_journal(struct run *r, struct blast_error *err)
{
    struct journal_options jo;
    struct journal_rowset only;
    char legacy[65];
    int rc;

    memset(&jo, 0, sizeof jo);
    jo.log = &r->log;
    /* the report carries it too, so the shards of one campaign can be told apart */
    if ((rc = prepare_hash(&r->p, r->opt.reports, r->opt.nreports, r->hash, legacy, err)) < 0)
        return rc;
    if (r->opt.dry_run != NULL || r->has_test_to) {
        char tmpl[] = "/tmp/blast-journal.XXXXXX";
        int fd = private_mkstemp(tmpl);
        if (fd < 0)
            return blast_error_set(err, BLAST_EIO, tmpl, 0, 0, "cannot create: %s",
                                   strerror(errno));
        close(fd);
        r->throwaway = true;
        r->journal_path = strdup(tmpl);
        jo.fresh = true;
    } else {
        r->journal_path = own_file(r, r->opt.journal, r->c->journal, ".blast", ".journal", err);
        if (r->journal_path == NULL)
            return err->code;
        jo.hash = r->hash;
        jo.legacy_hash = legacy;
        jo.fresh = r->opt.fresh;
        jo.force = r->opt.force;
        jo.durable = true;
        jo.lock = true;
    }
    if (r->journal_path == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (r->shard.count > 1) {
        only.bits = r->mine;
        only.nrows = r->mine_words * 64;
        jo.only = &only;
    }
    return journal_open(r->journal_path, &jo, &r->journal, err);
}

static int make_report_path(struct run *r, struct blast_error *err)
{
    r->report_path = own_file(r, r->opt.report, r->c->report, "reports", ".json", err);
    return r->report_path == NULL ? err->code : 0;
}

static int warm_start(struct run *r, struct blast_error *err);

/* The run's day: the one instant t falls on in the campaign's time zone. */
static void run_day(struct run *r, int64_t t)
{
    struct tzone_tm tm;

    tzone_local(r->zone, t, &tm);
    r->today = timeutil_days_from_civil(tm.year, tm.month, tm.day);
    snprintf(r->day_text, sizeof r->day_text, "%04d-%02d-%02d", tm.year, tm.month, tm.day);
}

/*
 * preflight: dns (docs/authentication.md): the sending domain's records checked once
 * before anything is sent; an error refuses the run unless --force. Not for a dry
 * run or a test send, which reach no receiver that would judge them.
 */
static int preflight(struct run *r, struct blast_error *err)
{
    struct preflight_counts n;
    int rc;

    if (!r->c->preflight_dns || r->opt.dry_run != NULL || r->opt.to != NULL)
        return 0;
    memset(&n, 0, sizeof n);
    if (r->opt.force && prepare_dns_servers(r->c) != NULL &&
        strcmp(prepare_dns_servers(r->c), "off") == 0) {
        log_msg(&r->log, LOG_LEVEL_WARN,
                "%s: preflight: DNS checks skipped: BLAST_DNS_SERVERS=off (--force)", r->c->name);
        return 0;
    }
    if ((rc = prepare_preflight(r->c, r->p.dkim, NULL, &r->log, &n, err)) < 0)
        return rc;
    log_msg(&r->log, LOG_LEVEL_INFO, "%s: DNS checks: %zu ok, %zu warning%s, %zu error%s",
            r->c->name, n.ok, n.warnings, n.warnings == 1 ? "" : "s", n.errors,
            n.errors == 1 ? "" : "s");
    if (n.errors > 0 && !r->opt.force)
        return blast_error_set(err, BLAST_EINVAL, r->c->path, r->c->preflight_place.line,
                               r->c->preflight_place.column,
                               "preflight: the DNS checks found %zu error%s (above): nothing "
                               "sent; publish the records, or send --force to go on anyway",
                               n.errors, n.errors == 1 ? "" : "s");
    if (n.errors > 0)
        log_msg(&r->log, LOG_LEVEL_WARN, "%s: sending despite %zu DNS error%s (--force)",
                r->c->name, n.errors, n.errors == 1 ? "" : "s");
    return 0;
}

/* Steps 1 and 2: everything that can be refused before a connection is opened. */
static int prepare(struct run *r, struct blast_error *err)
{
    size_t i;
    int rc;

    if ((rc = prepare_open(r->opt.campaign, &r->p, &r->log, err)) < 0)
        return rc;
    r->c = r->p.c;
    if ((rc = prepare_shard(&r->p, r->opt.shard, r->opt.shard_count, &r->shard, err)) < 0)
        return rc;
    if (r->shard.count > 1 && r->c->limits.shared != NULL)
        log_msg(&r->log, LOG_LEVEL_INFO, "%s: shard %u of %u (0-based): rates shared through %s",
                r->c->name, r->shard.index, r->shard.count, r->c->limits.shared);
    else if (r->shard.count > 1)
        log_msg(&r->log, LOG_LEVEL_INFO, "%s: shard %u of %u (0-based): every rate is 1/%u",
                r->c->name, r->shard.index, r->shard.count, r->shard.count);
    {
        const char *servers;
        if (lookups_wanted(r, &servers) && (r->domains = countmap_new()) == NULL)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    /* the clock and the zones first: validate() checks every row's zone */
    if ((rc = prepare_clock(&r->clock, err)) < 0)
        return rc;
    /* the zone only for what needs it: a TZ the C library takes blocks nothing else */
    if (((r->c->window.set || r->c->warmup.enabled) &&
         (rc = prepare_zone(r->c, &r->zone, err)) < 0) ||
        (rc = prepare_window_open(r->c, r->p.list, r->zone, &r->window, err)) < 0)
        return rc;
    if (r->zone != NULL)
        run_day(r, prepare_clock_now(r->clock));
    if ((rc = validate(r, err)) < 0 || (rc = preflight(r, err)) < 0)
        return rc;
    if (r->opt.to != NULL) {
        struct blast_error aerr;
        blast_error_clear(&aerr);
        if (address_parse(r->opt.to, &r->test_to, &aerr) < 0)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "send: --to: %s", aerr.text);
        r->has_test_to = true;
    }
    /* one message a recipient in it: the owner's only, its missing parents too */
    if (r->opt.dry_run != NULL && private_mkdir(r->opt.dry_run, true) != 0)
        return blast_error_set(err, BLAST_EIO, r->opt.dry_run, 0, 0, "cannot create: %s",
                               strerror(errno));
    /* and a marker that says whose messages they are, for blast prune (docs/files.md) */
    if (r->opt.dry_run != NULL &&
        (rc = retention_mark_write(r->opt.dry_run, r->c->name, r->opt.campaign, err)) < 0)
        return rc;
    /* every relay's secret must be there before anything connects */
    r->passwords = calloc(r->c->nrelays, sizeof *r->passwords);
    if (r->passwords == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; r->opt.dry_run == NULL && i < r->c->nrelays; i++)
        if ((rc = secret_relay_password(r->c, &r->c->relays[i], &r->log, &r->passwords[i], err)) <
            0)
            return rc;
    /* the webhook's variable too: refused now rather than missed after the campaign */
    if (r->opt.dry_run == NULL && r->opt.to == NULL && (rc = notify_check_settings(r->c, err)) < 0)
        return rc;
    /* Redis must answer before anything is sent: no message goes without its grant */
    if (r->opt.dry_run == NULL && (rc = prepare_limits(r->c, &r->log, &r->shared, err)) < 0)
        return rc;
    if ((rc = make_report_path(r, err)) < 0 ||
        (rc = prepare_reports(&r->p, r->opt.reports, r->opt.nreports, r->report_path, err)) < 0 ||
        (rc = open_journal(r, err)) < 0)
        return rc;
    /* after the opens, which make what is missing private: only older files are named */
    prepare_warn_exposed(r->c, &r->shard, r->throwaway ? r->opt.journal : r->journal_path,
                         r->report_path, r->opt.dry_run, &r->log);
    if ((rc = resolve_domains(r, err)) < 0)
        return rc;
    return warm_start(r, err);
}

static int record_row(struct run *r, const struct recipients_row *row, enum outcome_status status,
                      const char *detail, bool built, struct blast_error *err)
{
    struct outcome o;
    int rc;

    outcome_init(&o);
    o.row = row->row;
    o.status = status;
    if (outcome_set(&o.email, r->who.email) < 0 || outcome_set(&o.detail, detail) < 0 ||
        (built && outcome_set(&o.message_id, r->msg.message_id) < 0)) {
        outcome_free(&o);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    if (built)
        o.size = r->msg.message.len;
    rc = journal_record(r->journal, &o, err);
    outcome_free(&o);
    if (rc == 0) {
        __atomic_fetch_add(&r->ruled, 1, __ATOMIC_RELAXED);
        if (status == OUTCOME_RENDERED)
            __atomic_fetch_add(&r->rendered, 1, __ATOMIC_RELAXED);
    }
    return rc;
}

/*
 * A row held back on purpose (its send window, a warm-up cap): deferred with why.
 * What earlier runs made of it goes on (attempts, first attempt, last reply, history),
 * so that a run that did not try it starts neither its retry count nor its retry
 * window over; earlier may be NULL.
 */
static int record_held(struct run *r, const struct recipients_row *row, const char *detail,
                       const struct outcome *earlier, struct blast_error *err)
{
    struct outcome o;
    int rc;

    /*
     * Not after an unanswered "sending" (a row resent with --resend-unknown): a result with
     * its attempt count would read as that attempt's answer when the journal is compacted
     */
    if (earlier == NULL || earlier->attempts == 0 || earlier->status == OUTCOME_UNKNOWN)
        return record_row(r, row, OUTCOME_DEFERRED, detail, false, err);
    if (outcome_copy(&o, earlier) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    o.row = row->row;
    o.status = OUTCOME_DEFERRED;
    o.size = 0; /* no message was built for it in this run */
    if (outcome_set(&o.email, r->who.email) < 0 || outcome_set(&o.detail, detail) < 0 ||
        outcome_set(&o.message_id, NULL) < 0 || outcome_set(&o.queue_id, NULL) < 0) {
        outcome_free(&o);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    rc = journal_record(r->journal, &o, err);
    outcome_free(&o);
    if (rc == 0)
        __atomic_fetch_add(&r->ruled, 1, __ATOMIC_RELAXED);
    return rc;
}

static int write_eml(struct run *r, const struct recipients_row *row, struct blast_error *err)
{
    char path[4096];
    FILE *f;
    int fd;

    snprintf(path, sizeof path, "%s/%zu.eml", r->opt.dry_run, row->row);
    fd = private_open(path, O_WRONLY | O_TRUNC);
    if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write: %s", strerror(e));
    }
    if (fwrite(r->msg.message.data, 1, r->msg.message.len, f) != r->msg.message.len) {
        fclose(f);
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write: %s", strerror(errno));
    }
    if (fclose(f) != 0)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write: %s", strerror(errno));
    return 0;
}

/* A dry run: the message goes to a file. */
static int render_row(struct run *r, const struct recipients_row *row, struct blast_error *err)
{
    const struct address *to = r->has_test_to ? &r->test_to : &r->who.to;
    int rc;

    if ((rc = compose_row(r->p.cp, row, to, &r->msg, err)) < 0)
        return rc;
    if (r->msg.invalid)
        return record_row(r, row, OUTCOME_INVALID, r->msg.reason, false, err);
    if ((rc = write_eml(r, row, err)) < 0)
        return rc;
    return record_row(r, row, OUTCOME_RENDERED, NULL, true, err);
}

/*
 * Whether the send window lets this row go now: 0 yes (*zone: the zone it is read
 * in, for the pool to look again before each attempt; NULL without a window), 1 no
 * (recorded deferred, "send window: ...", with when it opens). On the campaign clock.
 */
static int window_hold(struct run *r, const struct recipients_row *row,
                       const struct outcome *earlier, const struct tzone **zone,
                       struct blast_error *err)
{
    const struct tzone *z;
    char detail[400];
    int64_t opens;
    int rc;

    *zone = NULL;
    if (r->window.w == NULL || r->has_test_to)
        return 0;
    if ((rc = prepare_window_zone(&r->window, r->c, r->p.list, row, &z, err)) < 0)
        return rc;
    *zone = z;
    if (window_open(r->window.w, z, prepare_clock_now(r->clock), &opens))
        return 0;
    window_explain(r->window.w, z, opens, detail, sizeof detail);
    if ((rc = record_held(r, row, detail, earlier, err)) < 0)
        return rc;
    __atomic_fetch_add(&r->held_window, 1, __ATOMIC_RELAXED);
    return 1;
}

/* The warm-up entry of a recipient's domain ("other" for a domain of no provider). */
static struct warm *warm_of(struct run *r, const char *domain)
{
    const struct provider_route *x =
        r->routes != NULL && domain != NULL ? provider_routes_get(r->routes, domain) : NULL;

    return &r->warm[x != NULL && x->provider >= 0 ? (size_t)x->provider : r->nwarm - 1];
}

/*
 * The warm-up of a run that sends (docs/campaign.md, "warmup"): its store opened,
 * and a ramp for each provider (the campaign's own for it, its default, or none).
 * The counts are the From domain's; a shard keeps its own, with 1/N of each cap.
 */
static int warm_start(struct run *r, struct blast_error *err)
{
    const struct campaign *c = r->c;
    char *path;
    size_t i, k;
    int rc;

    if (!c->warmup.enabled || r->opt.dry_run != NULL || r->has_test_to)
        return 0;
    if (r->providers.p == NULL && (rc = provider_table_load(c, &r->providers, err)) < 0)
        return rc;
    for (k = 0; k < c->warmup.nproviders; k++) {
        const struct campaign_warmup_provider *cp = &c->warmup.providers[k];
        bool known = strcmp(cp->name, WARMUP_OTHER) == 0;
        for (i = 0; !known && i < r->providers.n; i++)
            known = strcmp(r->providers.p[i].name, cp->name) == 0;
        if (!known)
            return blast_error_set(err, BLAST_EINVAL, c->path, cp->place.line, cp->place.column,
                                   "'warmup': 'providers': no provider is called '%s' (the "
                                   "shipped ones, those of 'providers', or other)",
                                   cp->name);
    }
    if ((r->warm = calloc(r->providers.n + 1, sizeof *r->warm)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    r->nwarm = r->providers.n + 1;
    for (i = 0; i < r->nwarm; i++) {
        struct warm *w = &r->warm[i];
        w->name = i < r->providers.n ? r->providers.p[i].name : WARMUP_OTHER;
        w->ramp = campaign_warmup_ramp(c, w->name);
    }
    /* the From address was checked when the campaign loaded */
    address_mailbox_domain(c->from, r->sender, sizeof r->sender);
    if (r->shard.count > 1)
        snprintf(r->shard_key, sizeof r->shard_key, "%s (shard %u/%u)", r->sender, r->shard.index,
                 r->shard.count);
    if ((path = prepare_warmup_store(c, true, err)) == NULL)
        return err->code;
    rc = warmup_store_open(path, &r->warm_store, err);
    free(path);
    return rc;
}

/*
 * A provider's first recipient in this run: its day of the ramp (from the campaign's
 * start, or the first day the store saw the sender send to it, else today) and cap.
 * Today is recorded as the first day with the first count taken (warm_hold), and
 * forgotten if the run sends nothing after all (warm_release).
 */
static int warm_begin(struct run *r, struct warm *w, struct blast_error *err)
{
    int64_t first = r->c->warmup.start;
    bool found = true;
    int rc;

    if (first < 0 &&
        (rc = warmup_first_known(r->warm_store, r->sender, w->name, &first, &found, err)) < 0)
        return rc;
    w->first_found = found;
    if (!found)
        first = r->today;
    w->ramp_day = warmup_ramp_day(first, r->today);
    w->cap = warmup_cap(w->ramp, w->ramp_day);
    w->part = w->cap != WARMUP_NO_CAP && r->shard.count > 1 ? w->cap / r->shard.count : w->cap;
    w->started = true;
    if (w->cap == WARMUP_NO_CAP)
        return 0;
    if (r->shard.count > 1)
        log_msg(&r->log, w->part > 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
                "%s: warm-up: %s, day %lld of the ramp: %llu today, this shard's part %llu",
                r->c->name, w->name, (long long)w->ramp_day, (unsigned long long)w->cap,
                (unsigned long long)w->part);
    else
        log_msg(&r->log, LOG_LEVEL_INFO, "%s: warm-up: %s, day %lld of the ramp: %llu today",
                r->c->name, w->name, (long long)w->ramp_day, (unsigned long long)w->cap);
    return 0;
}

/*
 * Whether the warm-up lets this row go today: 0 yes (one of its provider's cap taken),
 * 1 no (recorded deferred, "warm-up cap: ..."). Reservations are taken from the store
 * a few at a time, so that other runs counting for the same sender see them at once.
 */
static int warm_hold(struct run *r, const struct recipients_row *row, const struct outcome *earlier,
                     struct blast_error *err)
{
    const char *domain = domain_of(r);
    struct warm *w;
    char detail[400];
    uint64_t got;
    int rc;

    if (r->warm == NULL)
        return 0;
    w = warm_of(r, domain);
    if (w->ramp == NULL)
        return 0;
    if (!w->started && (rc = warm_begin(r, w, err)) < 0)
        return rc;
    if (w->cap == WARMUP_NO_CAP)
        return 0;
    if (w->held == 0 && !w->exhausted) {
        /*
         * The sender's count keeps the day's cap whoever sends; a shard's own count
         * keeps its part of it, so that shards with stores of their own stay under
         * the cap together too.
         */
        if ((rc = warmup_reserve(r->warm_store, r->sender, w->name, r->today, w->cap, 32, &got,
                                 err)) < 0)
            return rc;
        if (r->shard.count > 1 && got > 0) {
            uint64_t mine;
            if ((rc = warmup_reserve(r->warm_store, r->shard_key, w->name, r->today, w->part, got,
                                     &mine, err)) < 0 ||
                (mine < got && (rc = warmup_release(r->warm_store, r->sender, w->name, r->today,
                                                    got - mine, err)) < 0))
                return rc;
            got = mine;
        }
        w->held = got;
        w->exhausted = got == 0;
        /*
         * The ramp starts today: recorded with the first count taken, so that a run
         * killed after it keeps it; a run that sends nothing after all forgets it.
         */
        if (got > 0 && !w->first_found && !w->first_recorded && r->c->warmup.start < 0) {
            int64_t first;
            if ((rc = warmup_first_day(r->warm_store, r->sender, w->name, r->today, &first, err)) <
                0)
                return rc;
            w->first_recorded = first == r->today;
        }
    }
    if (w->held > 0) {
        w->held--;
        w->used++;
        return set_bit(&r->warm_bits, &r->warm_words, row->row, err);
    }
    w->deferred++;
    snprintf(detail, sizeof detail,
             REPORT_HELD_WARMUP "%s has had today's %llu from %s%s (day %lld of the ramp); left "
                                "for a later run",
             w->name, (unsigned long long)(r->shard.count > 1 ? w->part : w->cap), r->sender,
             r->shard.count > 1 ? ", this shard's part" : "", (long long)w->ramp_day);
    if ((rc = record_held(r, row, detail, earlier, err)) < 0)
        return rc;
    return 1;
}

/* Step 3: each row, unless an earlier run already settled it. */
static int feed_rows(struct run *r, int64_t deadline, struct blast_error *err)
{
    struct recipients_row row;
    int rc;

    while ((rc = recipients_next(r->p.list, &row, err)) == 1) {
        const struct tzone *zone = NULL;
        enum journal_state st;
        int tried;

        if (r->opt.limit > 0 && (long)row.row > r->opt.limit)
            break;
        if (!r->stopped && r->pool != NULL &&
            (interrupted || policy_deadline_passed(deadline, timeutil_mono_ms()))) {
            r->stopped = true;
            pool_stop(r->pool, interrupted ? "not attempted: the run was interrupted"
                                           : "not attempted: the --deadline passed; left for "
                                             "the next run");
        }
        /* every row is screened, so duplicates are recognised across runs too */
        if ((rc = screen_row(r->p.screen, &row, &r->who, err)) < 0)
            return rc;
        if (r->who.verdict == SCREEN_OTHER_SHARD)
            continue; /* another shard's: its run reports it */
        if (settled_before(r, row.row, &st, &tried)) {
            __atomic_fetch_add(&r->skipped, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (r->who.verdict != SCREEN_OK) {
            screen_explain(r->p.screen, &r->who); /* the report says which entry */
            if (r->who.verdict == SCREEN_INVALID)
                log_msg(&r->log, LOG_LEVEL_WARN, "%s:%zu: row %zu: %s", r->c->recipients.path,
                        row.line, row.row, r->who.reason);
            rc = record_row(r, &row,
                            r->who.verdict == SCREEN_DUPLICATE    ? OUTCOME_DUPLICATE
                            : r->who.verdict == SCREEN_SUPPRESSED ? OUTCOME_SUPPRESSED
                                                                  : OUTCOME_INVALID,
                            r->who.reason, false, err);
        } else if (r->opt.dry_run != NULL) {
            rc = render_row(r, &row, err);
        } else {
            /*
             * What earlier runs left, when they tried it: failed, held or sent, its attempts
             * go on (read only then: a read waits for the journal's writer)
             */
            struct outcome earlier;
            int have = st == JOURNAL_NONE || tried == 0
                           ? 0
                           : journal_result(r->journal, row.row, &earlier, err);
            const struct outcome *e = have ? &earlier : NULL;
            if (have < 0)
                return have;
            if ((rc = no_mail(r, &row, e, err)) != 0 ||
                (!r->stopped && ((rc = window_hold(r, &row, e, &zone, err)) != 0 ||
                                 (rc = warm_hold(r, &row, e, err)) != 0)))
                rc = rc < 0 ? rc : 0;
            else
                rc = pool_submit(r->pool, &row, &r->who.to, r->who.email, e, zone, err);
            if (have)
                outcome_free(&earlier);
        }
        if (rc < 0)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

/* ---- seeds ------------------------------------------------------------------------- */

/*
 * Whether feed_rows() would hand this row to the pool (the row just screened into
 * r->who): the first such row is what the seeds are sent.
 */
static int to_be_sent(struct run *r, const struct recipients_row *row, struct blast_error *err)
{
    const struct tzone *z;
    enum journal_state st;
    int tried;
    int64_t opens;
    int rc;

    if (r->who.verdict != SCREEN_OK || settled_before(r, row->row, &st, &tried) ||
        no_mail_route(r) != NULL)
        return 0;
    /* held by its send window now? */
    if (r->window.w != NULL) {
        if ((rc = prepare_window_zone(&r->window, r->c, r->p.list, row, &z, err)) < 0)
            return rc;
        if (!window_open(r->window.w, z, prepare_clock_now(r->clock), &opens))
            return 0;
    }
    /* past its provider's warm-up cap already? (read, not reserved) */
    if (r->warm != NULL) {
        struct warm *w = warm_of(r, domain_of(r));
        uint64_t sent = 0, mine = 0;
        if (w->ramp == NULL)
            return 1;
        if (!w->started && (rc = warm_begin(r, w, err)) < 0)
            return rc;
        if (w->cap == WARMUP_NO_CAP || w->exhausted)
            return w->cap == WARMUP_NO_CAP;
        if ((rc = warmup_count(r->warm_store, r->sender, w->name, r->today, &sent, err)) < 0 ||
            (r->shard.count > 1 &&
             (rc = warmup_count(r->warm_store, r->shard_key, w->name, r->today, &mine, err)) < 0))
            return rc;
        if (sent >= w->cap || (r->shard.count > 1 && mine >= w->part)) {
            w->exhausted = true; /* warm_hold() need not ask the store again */
            return 0;
        }
    }
    return 1;
}

/* Whether email is the address of seed i (1-based) of the campaign. */
static bool seed_is(const struct run *r, size_t i, const char *email)
{
    struct address a;
    struct blast_error e;
    bool same;

    if (email == NULL || i == 0 || i > r->c->seeds.n)
        return false;
    blast_error_clear(&e);
    if (address_parse_mailbox(r->c->seeds.addresses[i - 1], &a, &e) < 0)
        return false;
    same = strcasecmp(a.envelope, email) == 0;
    address_free(&a);
    return same;
}

/*
 * The seeds' outcomes found by address in their journal (docs/delivery.md, "Seeds"):
 * seeds[k] for the campaign's seed k, when have[k]. A seed's record is at its place
 * in the list when it was sent; the list may have been edited since, so each record
 * is matched to the seed of its address, a delivery first, then the record at the
 * seed's own place.
 */
struct seed_read {
    struct run *r;
    struct outcome *v; /* c->seeds.n */
    bool *have;
};

static int read_seed(void *arg, const struct outcome *o, struct blast_error *err)
{
    struct seed_read *sr = arg;

    for (size_t k = 0; k < sr->r->c->seeds.n; k++) {
        if (!seed_is(sr->r, k + 1, o->email))
            continue;
        if (sr->have[k] && (sr->v[k].status == OUTCOME_DELIVERED ||
                            (o->status != OUTCOME_DELIVERED && o->row != k + 1)))
            continue;
        if (sr->have[k])
            outcome_free(&sr->v[k]);
        outcome_init(&sr->v[k]);
        if (outcome_copy(&sr->v[k], o) < 0)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        sr->v[k].row = k + 1;
        sr->have[k] = true;
    }
    return 0;
}

static void seeds_forget(struct run *r)
{
    for (size_t k = 0; r->seeds != NULL && k < r->c->seeds.n; k++)
        if (r->seed_have[k])
            outcome_free(&r->seeds[k]);
    free(r->seeds);
    free(r->seed_have);
    r->seeds = NULL;
    r->seed_have = NULL;
}

static int seeds_read(struct run *r, struct journal *sj, struct blast_error *err)
{
    struct seed_read sr;

    seeds_forget(r);
    r->seeds = calloc(r->c->seeds.n, sizeof *r->seeds);
    r->seed_have = calloc(r->c->seeds.n, sizeof *r->seed_have);
    if (r->seeds == NULL || r->seed_have == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    sr.r = r;
    sr.v = r->seeds;
    sr.have = r->seed_have;
    /* every place a seed may have had: at most SEEDS_MAX (core/campaign.c) */
    return journal_each(sj, 100, read_seed, &sr, err);
}

/*
 * Whether seed k (0-based) is to be sent in this run: unless it was delivered (or
 * its message may have gone), whatever refused it may have been put right since.
 */
static bool seed_pending(const struct run *r, size_t k)
{
    return !r->seed_have[k] ||
           (r->seeds[k].status != OUTCOME_DELIVERED && r->seeds[k].status != OUTCOME_UNKNOWN);
}

/*
 * Hand the seeds that were not delivered yet the message of the first row this
 * run sends, through a pool of their own; 1 when a seed was submitted (the list
 * was not touched), 0 when there was nothing to send them. The list is rewound
 * for feed_rows() either way.
 */
static int submit_seeds(struct run *r, struct pool *sp, struct blast_error *err)
{
    struct recipients_row row;
    struct address to;
    size_t i, sent = 0;
    bool found = false;
    int rc;

    while ((rc = recipients_next(r->p.list, &row, err)) == 1) {
        if (r->opt.limit > 0 && (long)row.row > r->opt.limit)
            break;
        if ((rc = screen_row(r->p.screen, &row, &r->who, err)) < 0)
            return rc;
        if (r->who.verdict == SCREEN_OTHER_SHARD)
            continue;
        if ((rc = to_be_sent(r, &row, err)) < 0)
            return rc;
        if (rc == 1) {
            found = true;
            break;
        }
    }
    if (rc < 0)
        return rc;
    for (i = 0; found && i < r->c->seeds.n; i++) {
        if (!seed_pending(r, i))
            continue;
        if (address_parse_mailbox(r->c->seeds.addresses[i], &to, err) < 0)
            return err->code;
        struct recipients_row as = row;
        as.row = i + 1; /* the seed's own row in its journal; the pool sends row 0 */
        rc = pool_submit(sp, &as, &to, to.envelope, NULL, NULL, err);
        address_free(&to);
        if (rc < 0)
            return rc;
        sent++;
    }
    if ((rc = recipients_rewind(r->p.list, err)) < 0 || (rc = screen_restart(r->p.screen, err)) < 0)
        return rc;
    return sent > 0;
}

/*
 * The seeds' verdict: the run goes on unless every seed that was answered was
 * refused for good (a template a filter rejects, a blocked sender), which stops
 * it as the circuit breaker does, before any recipient.
 */
static void judge_seeds(struct run *r)
{
    size_t i, failed = 0, answered = 0;
    const struct outcome *first = NULL;

    for (i = 0; i < r->nseeds; i++) {
        const struct outcome *o = &r->seeds[i];
        if (o->status == OUTCOME_DELIVERED || o->status == OUTCOME_FAILED)
            answered++;
        if (o->status == OUTCOME_FAILED) {
            failed++;
            if (first == NULL)
                first = o;
        }
    }
    if (answered == 0 || failed < answered)
        return;
    if (r->opt.no_breaker) {
        log_msg(&r->log, LOG_LEVEL_WARN,
                "%s: every seed was refused; sending the list anyway (--no-breaker)", r->c->name);
        return;
    }
    r->tripped = true;
    snprintf(r->breaker_why, sizeof r->breaker_why, "%zu of %zu seeds refused: %s: %d %s%s%s",
             failed, r->nseeds, first->email != NULL ? first->email : "?", first->code,
             first->enhanced, first->enhanced[0] != '\0' ? " " : "",
             first->reply != NULL    ? first->reply
             : first->detail != NULL ? first->detail
                                     : "");
    log_msg(&r->log, LOG_LEVEL_ERROR,
            "%s: the seeds were refused (%s); the list is not sent: it stays deferred for the "
            "next run ('seeds:' in the campaign, or send --no-breaker)",
            r->c->name, r->breaker_why);
}

/*
 * Step 2b (docs/campaign.md, "seeds"): the seeds get the message first, through
 * their own pool and journal (JOURNAL.seeds), and the list waits for their
 * outcomes, at most seeds.wait. Only a real run of the whole campaign or of its
 * first shard sends them, once: a seed with a final outcome is not sent again.
 */
static int send_seeds(struct run *r, int64_t deadline, struct blast_error *err)
{
    struct journal_options jo;
    struct journal *sj = NULL;
    struct pool *sp = NULL;
    struct pool_options po;
    struct blast_error ferr;
    char *path = NULL;
    size_t i, pending;
    bool sent = false;
    int64_t until;
    int rc;

    if (r->c->seeds.n == 0 || r->opt.dry_run != NULL || r->has_test_to || r->throwaway ||
        (r->shard.count > 1 && r->shard.index != 0))
        return 0;
    if (asprintf(&path, "%s.seeds", r->journal_path) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    memset(&jo, 0, sizeof jo);
    jo.log = &r->log;
    jo.hash = r->hash;
    jo.fresh = r->opt.fresh;
    jo.force = true; /* the campaign's own journal has judged a changed campaign */
    jo.durable = true;
    if ((rc = journal_open(path, &jo, &sj, err)) < 0)
        goto out;
    if ((rc = seeds_read(r, sj, err)) < 0)
        goto out;
    for (pending = 0, i = 0; i < r->c->seeds.n; i++)
        pending += seed_pending(r, i);
    if (pending == 0)
        goto judge;
    memset(&po, 0, sizeof po);
    po.c = r->c;
    po.compose = r->p.cp;
    po.journal = sj;
    po.passwords = r->passwords;
    po.log = &r->log;
    po.seeds = true;
    if ((rc = pool_start(&po, &sp, err)) < 0)
        goto out;
    rc = submit_seeds(r, sp, err);
    if (rc < 0)
        pool_stop(sp, "not attempted: the run stopped on an error");
    else if (rc > 0)
        log_msg(&r->log, LOG_LEVEL_INFO, "%s: sending to the seeds first", r->c->name);
    sent = rc > 0;
    until = timeutil_mono_ms() + r->c->seeds.wait;
    if (deadline > 0 && deadline < until)
        until = deadline;
    blast_error_clear(&ferr);
    if (pool_finish(sp, &interrupted, until, &ferr) < 0 && rc >= 0) {
        *err = ferr;
        rc = ferr.code;
    }
    if (rc < 0)
        goto out;
    /* every seed's last outcome, sent in this run or an earlier one */
    if ((rc = seeds_read(r, sj, err)) < 0)
        goto out;
judge:
    /* for the report: the seeds that have an outcome, in the campaign's order */
    for (i = 0; i < r->c->seeds.n; i++)
        if (r->seed_have[i]) {
            if (i != r->nseeds) {
                r->seeds[r->nseeds] = r->seeds[i];
                r->seed_have[r->nseeds] = true;
                r->seed_have[i] = false;
            }
            r->nseeds++;
        }
    /* judged when they were sent in this run: an earlier run's refusal stopped that run */
    if (sent)
        judge_seeds(r);
out:
    pool_free(sp);
    journal_close(sj);
    free(path);
    return rc < 0 ? rc : 0;
}

/* Step 4: the report from the journal, every row of the list in order. */
/* The report being written, and what came back for the campaign since it was sent. */
struct adding {
    struct report *rep;
    const struct intake_later *later;
};

static int add_entry(void *arg, const struct outcome *o, struct blast_error *err)
{
    const struct adding *a = arg;
    struct outcome copy;
    int rc;

    if (a->later == NULL || intake_later_count(a->later) == 0)
        return report_add(a->rep, o, err);
    if (outcome_copy(&copy, o) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    rc = intake_later_apply(a->later, &copy);
    rc = rc < 0 ? blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory")
                : report_add(a->rep, &copy, err);
    outcome_free(&copy);
    return rc;
}

/*
 * What the bounce intake recorded for the campaign (docs/bounces.md), when it names
 * a suppression database that exists; NULL otherwise, or when it cannot be read
 * (a warning: the report is still written, without it).
 */
static struct intake_later *load_later(struct run *r)
{
    struct intake_later *l = NULL;
    struct blast_error e;

    if (r->c->suppression_db == NULL || r->opt.dry_run != NULL || r->opt.to != NULL ||
        access(r->c->suppression_db, F_OK) != 0)
        return NULL;
    blast_error_clear(&e);
    if (intake_later_open(r->c->suppression_db, r->c->name, &l, &e) < 0) {
        char text[BLAST_ERROR_TEXT_MAX + BLAST_ERROR_SOURCE_MAX + 64];
        log_msg(&r->log, LOG_LEVEL_WARN, "the report leaves out later bounces: %s",
                blast_error_format(&e, text, sizeof text));
    }
    return l;
}

static void print_summary(const struct run *r, const struct report *rep, double secs)
{
    if (r->opt.quiet)
        return;
    if (r->opt.dry_run != NULL) {
        log_msg(&r->log, LOG_LEVEL_INFO,
                "%s: %zu rendered into %s, %zu invalid, %zu duplicate, %zu suppressed; "
                "report: %s",
                r->c->name, report_count(rep, OUTCOME_RENDERED), r->opt.dry_run,
                report_count(rep, OUTCOME_INVALID), report_count(rep, OUTCOME_DUPLICATE),
                report_count(rep, OUTCOME_SUPPRESSED), r->report_path);
        return;
    }
    log_msg(&r->log, LOG_LEVEL_INFO,
            "%s: %zu delivered, %zu deferred, %zu failed, %zu unknown, %zu invalid, "
            "%zu duplicate, %zu suppressed in %.1f s%s%s; report: %s",
            r->c->name, report_count(rep, OUTCOME_DELIVERED), report_count(rep, OUTCOME_DEFERRED),
            report_count(rep, OUTCOME_FAILED), report_count(rep, OUTCOME_UNKNOWN),
            report_count(rep, OUTCOME_INVALID), report_count(rep, OUTCOME_DUPLICATE),
            report_count(rep, OUTCOME_SUPPRESSED), secs, r->has_test_to ? " (test send)" : "",
            r->skipped > 0 ? " (resumed)" : "", r->report_path);
    size_t warm = 0;
    for (size_t i = 0; i < r->nwarm; i++)
        warm += r->warm[i].deferred;
    if (r->held_window > 0 || warm > 0)
        log_msg(&r->log, LOG_LEVEL_INFO,
                "%s: held back on purpose: %zu outside their send window, %zu past a warm-up "
                "cap; deferred for a later run",
                r->c->name, r->held_window, warm);
}

/* The exit code of a finished run (docs/delivery.md, "Exit codes"). */
static int exit_code(const struct run *r, const struct report *rep, bool no_relay)
{
    size_t undone = report_count(rep, OUTCOME_DEFERRED) + report_count(rep, OUTCOME_FAILED) +
                    report_count(rep, OUTCOME_UNKNOWN) + report_count(rep, OUTCOME_INVALID);

    if (interrupted)
        return BLAST_EXIT_INTERRUPTED;
    if (r->tripped)
        return BLAST_EXIT_BREAKER;
    if (no_relay && report_count(rep, OUTCOME_DELIVERED) == 0)
        return BLAST_EXIT_NO_RELAY;
    /* duplicates and suppressed recipients are skipped by rule */
    return undone == 0 ? BLAST_EXIT_OK : BLAST_EXIT_INCOMPLETE;
}

/*
 * The campaign's global rate for the whole campaign, in messages a second (0: none):
 * from the file's N/unit, since a shard's copy holds its part of it (prepare_shard).
 */
static double whole_rate(const struct campaign_rate *rate)
{
    if (!rate->set)
        return 0;
    return (double)rate->count / (rate->unit == 'h' ? 3600.0 : rate->unit == 'm' ? 60.0 : 1.0);
}

static int unsent_entry(void *arg, const struct outcome *o, struct blast_error *err)
{
    struct run *r = arg;
    struct address a;
    struct blast_error e;
    const char *at;
    struct warm *w;
    size_t k = o->row / 64;

    (void)err;
    /*
     * Only the rows that took a count in this run (warm_hold) and were never tried:
     * left when the run stopped, or held by the pool when their window closed before
     * their turn (with no reply in this run: a row tried and then held keeps its count)
     */
    if (o->status != OUTCOME_DEFERRED || o->detail == NULL || o->email == NULL ||
        k >= r->warm_words || !((r->warm_bits[k] >> (o->row % 64)) & 1))
        return 0;
    if (strncmp(o->detail, "not attempted: ", 15) != 0 &&
        (strncmp(o->detail, REPORT_HELD_WINDOW, strlen(REPORT_HELD_WINDOW)) != 0 || o->code != 0 ||
         o->step != OUTCOME_STEP_NONE))
        return 0;
    /* the domain as the run routed it: the envelope's (an A-label, lower case) */
    blast_error_clear(&e);
    if (address_parse(o->email, &a, &e) < 0)
        return 0;
    at = strrchr(a.envelope, '@');
    w = warm_of(r, at != NULL ? at + 1 : NULL);
    address_free(&a);
    if (w->started && w->cap != WARMUP_NO_CAP && w->used > 0) {
        w->used--;
        w->held++;
    }
    return 0;
}

/*
 * A run that stopped early (a signal, --deadline, the breaker, no relay) took
 * warm-up counts for recipients it never tried ("not attempted: ..."), and so did one
 * whose recipients' window closed before their turn ("send window: ..."): they go back,
 * so that a later run the same day may send them. (A run killed outright cannot: its recipients
 * waiting to be sent stay counted for that day, which errs on the safe side.)
 */
static void warm_settle(struct run *r)
{
    struct blast_error e;
    bool used = false;

    if (r->warm_settled || r->journal == NULL)
        return;
    r->warm_settled = true;
    for (size_t i = 0; i < r->nwarm; i++)
        used |= r->warm[i].used > 0;
    blast_error_clear(&e);
    if (used && journal_each(r->journal, r->rows, unsent_entry, r, &e) < 0)
        log_msg(&r->log, LOG_LEVEL_WARN, "%s: warm-up counts not given back: %s", r->c->name,
                e.text);
    warm_release(r);
}

/*
 * The warm-up's figures for the report: each provider whose cap this run went by,
 * with what the store counts for today (every run of the sender). info->warmup is
 * the caller's to free.
 */
static int warm_figures(struct run *r, struct report_info *info, struct blast_error *err)
{
    struct report_warmup *v;
    size_t i, n = 0;
    int rc;

    if (r->warm == NULL)
        return 0;
    if ((v = calloc(r->nwarm, sizeof *v)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < r->nwarm; i++) {
        const struct warm *w = &r->warm[i];
        if (!w->started || w->cap == WARMUP_NO_CAP)
            continue;
        v[n].provider = w->name;
        v[n].ramp_day = (long long)w->ramp_day;
        v[n].cap = w->cap;
        v[n].held = w->deferred;
        if ((rc = warmup_count(r->warm_store, r->sender, w->name, r->today, &v[n].sent, err)) < 0) {
            free(v);
            return rc;
        }
        n++;
    }
    info->warmup = v;
    info->nwarmup = n;
    info->warmup_sender = r->sender;
    info->warmup_day = r->day_text;
    return 0;
}

static int write_report(struct run *r, double secs, bool no_relay, int *code,
                        struct blast_error *err)
{
    struct report_info info;
    struct report *rep = NULL;
    struct report_dkim *dkim = NULL;
    size_t i;
    int rc;

    if (r->c->ndkim > 0 && (dkim = calloc(r->c->ndkim, sizeof *dkim)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < r->c->ndkim; i++) {
        dkim[i].domain = r->c->dkim[i].domain;
        dkim[i].selector = r->c->dkim[i].selector;
        dkim[i].algorithm = campaign_dkim_alg_name(r->c->dkim[i].algorithm);
    }
    memset(&info, 0, sizeof info);
    info.campaign = r->c->name;
    info.campaign_file = r->opt.campaign;
    info.dry_run = r->opt.dry_run != NULL;
    info.test_to = r->opt.to;
    info.suppression_db = r->c->suppression_db;
    info.shard_index = r->shard.index;
    info.shard_count = r->shard.count;
    info.fingerprint = r->hash[0] != '\0' ? r->hash : NULL;
    info.start = r->started;
    info.rate_per_second = whole_rate(&r->c->rate);
    info.breaker = r->tripped ? r->breaker_why : NULL;
    info.seeds = r->seeds;
    info.nseeds = r->nseeds;
    if ((rc = warm_figures(r, &info, err)) < 0) {
        free(dkim);
        return rc;
    }
    info.dkim = dkim;
    info.ndkim = r->c->ndkim;
    if (strcmp(r->report_path, "-") == 0)
        rc = report_open_stream(stdout, "standard output", &info, &rep, err);
    else
        rc = report_open(r->report_path, &info, &rep, err);
    free(dkim); /* the report holds its own copy */
    free((void *)info.warmup);
    if (rc < 0)
        return rc;
    struct adding a = {rep, load_later(r)};
    rc = journal_each(r->journal, r->rows, add_entry, &a, err);
    intake_later_free((struct intake_later *)a.later);
    if (rc < 0) {
        report_abort(rep);
        return rc;
    }
    print_summary(r, rep, secs);
    *code = exit_code(r, rep, no_relay);
    r->summary = report_summary(rep); /* for the webhook: report_commit() frees rep */
    if ((rc = report_commit(rep, err)) == 0)
        r->report_written = true;
    return rc;
}

/*
 * The summary when no report was written (exit 4 before any session, or a run stopped
 * on an error): the journal read through a report that goes to /dev/null. NULL when
 * it cannot be made; the webhook then says "summary": null.
 */
static json_t *journal_summary(struct run *r)
{
    struct report_info info;
    struct report *rep = NULL;
    struct blast_error err;
    json_t *s = NULL;
    FILE *f = fopen("/dev/null", "w");

    if (f == NULL || r->journal == NULL)
        goto out;
    memset(&info, 0, sizeof info);
    info.campaign = r->c->name;
    info.campaign_file = r->opt.campaign;
    info.start = r->started;
    blast_error_clear(&err);
    struct adding a = {NULL, NULL};
    if (report_open_stream(f, "/dev/null", &info, &rep, &err) == 0 &&
        (a.rep = rep, journal_each(r->journal, r->rows, add_entry, &a, &err) == 0))
        s = report_summary(rep);
    report_abort(rep);
out:
    if (f != NULL)
        fclose(f);
    return s;
}

/*
 * --metrics PATH (docs/metrics.md): the run's figures for node_exporter's textfile
 * collector, written whatever the exit code once the campaign is loaded, so that a
 * dashboard sees the runs that failed too. The counts are the report's summary, or
 * the journal's when no report was written, or none without a journal (a campaign
 * error before it opened): then the exit code and the run's times only. The last
 * success moves to this run's end when the run went through its list: exit 0 or 1
 * with its report written (a --deadline stop included: the rest is deferred for the
 * next run, as it would be on a refusal); any other run keeps the one the file had.
 * Written before the webhook, which may take its time and may be cut short by a
 * second signal. A failure is a warning: the exit code says how the mail went.
 */
static void write_metrics(struct run *r, int code)
{
    const struct campaign *c = r->c != NULL ? r->c : r->p.c;
    char text[BLAST_ERROR_TEXT_MAX + BLAST_ERROR_SOURCE_MAX + 64];
    struct blast_error err;
    struct metrics m;
    json_t *campaign;

    if (r->opt.metrics == NULL || c == NULL)
        return;
    if (r->summary == NULL && r->c != NULL && r->journal != NULL)
        r->summary = journal_summary(r);
    metrics_init(&m);
    blast_error_clear(&err);
    campaign =
        json_pack("{s:s, s:o}", "name", c->name, "shard",
                  r->shard.count > 1 ? json_pack("{s:I, s:I}", "index", (json_int_t)r->shard.index,
                                                 "count", (json_int_t)r->shard.count)
                                     : json_null());
    if (campaign == NULL)
        blast_error_set(&err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    else if (metrics_from_report(r->opt.metrics, campaign, r->summary, &m, &err) == 0) {
        if (!m.has_run) {
            struct timeutil_stamp now = timeutil_now();
            m.run_start = (double)r->started.sec + (double)r->started.usec / 1e6;
            m.run_end = (double)now.sec + (double)now.usec / 1e6;
            m.run_duration = m.run_end > m.run_start ? m.run_end - m.run_start : 0;
            m.has_run = true;
        }
        m.has_exit_code = true;
        m.exit_code = code;
        m.run_succeeded =
            (code == BLAST_EXIT_OK || code == BLAST_EXIT_INCOMPLETE) && r->report_written;
        metrics_write_file(r->opt.metrics, &m, &err);
    }
    if (err.code != 0)
        log_msg(&r->log, LOG_LEVEL_WARN, "metrics: %s; the run itself is unaffected (exit code %d)",
                blast_error_format(&err, text, sizeof text), code);
    else
        log_msg(&r->log, LOG_LEVEL_DEBUG, "metrics: written to %s", r->opt.metrics);
    metrics_free(&m);
    json_decref(campaign);
}

/*
 * The webhook (docs/report.md, "Webhook"): told how a run ended, whatever its exit
 * code, after the report is written. Not for a dry run or a test send. A failure is
 * a warning only: the exit code says how the mail went, not how the webhook did. A
 * first signal during the call cuts it short; after a run a signal stopped, the
 * second signal ends blast at once, as always.
 */
static void notify_run(struct run *r, int code)
{
    struct notify_event ev;
    struct notify_options no;
    struct blast_error err;
    json_t *payload;

    if (r->c == NULL || r->c->notify == NULL)
        return;
    if (r->opt.dry_run != NULL || r->has_test_to) {
        log_msg(&r->log, LOG_LEVEL_DEBUG, "notify: the webhook is not called for a %s",
                r->opt.dry_run != NULL ? "dry run" : "test send");
        return;
    }
    if (r->summary == NULL)
        r->summary = journal_summary(r);
    memset(&ev, 0, sizeof ev);
    ev.campaign = r->c->name;
    ev.campaign_file = r->opt.campaign;
    ev.exit_code = code;
    ev.report = r->report_written && strcmp(r->report_path, "-") != 0 ? r->report_path : NULL;
    ev.summary = r->summary;
    memset(&no, 0, sizeof no);
    no.log = &r->log;
    no.stop = interrupted ? NULL : &interrupted;
    blast_error_clear(&err);
    payload = notify_payload(&ev);
    if (payload == NULL)
        blast_error_set(&err, BLAST_ENOMEM, NULL, 0, 0, "notify: out of memory");
    else
        notify_post(r->c->notify, payload, &no, NULL, &err);
    if (err.code != 0)
        log_msg(&r->log, LOG_LEVEL_WARN, "%s; the run itself is unaffected (exit code %d)",
                err.text, code);
    json_decref(payload);
}

/*
 * A run that left every recipient of the campaign (or of its shard) final: nothing
 * will be sent again, so the journal shrinks to what the report, a resume and the
 * bounce intake need (docs/delivery.md, "Compaction"). After the report, which is
 * written from the journal either way; a failure leaves the journal as it was and
 * changes no exit code. Not when the journal holds nothing new (a run that found it
 * done and compacted), nor for throwaway journals.
 */
static void compact_journal(struct run *r)
{
    struct journal_compaction st;
    struct blast_error err;
    int64_t t0 = timeutil_mono_ms();

    /* --limit: the rows past it were not looked at, whatever the first ones became */
    if (r->throwaway || r->opt.no_compact || r->opt.limit > 0 ||
        journal_loose_records(r->journal) == 0 || !journal_all_final(r->journal, r->rows))
        return;
    blast_error_clear(&err);
    if (journal_compact(r->journal, &st, &err) < 0) {
        char text[512];
        log_msg(&r->log, LOG_LEVEL_WARN,
                "%s: the journal was not compacted (%s); it is whole as it was, and 'blast "
                "journal compact' can try again",
                r->c->name, blast_error_format(&err, text, sizeof text));
        return;
    }
    if (!r->opt.quiet)
        cli_log_compaction(&r->log, r->journal_path, &st,
                           (double)(timeutil_mono_ms() - t0) / 1000.0);
}

/* The counts progress shows (called from its thread). */
static void poll_counts(void *arg, struct progress_counts *out)
{
    struct run *r = arg;
    struct pool_stats st;

    out->total = r->rows - r->others;
    out->settled = __atomic_load_n(&r->skipped, __ATOMIC_RELAXED) +
                   __atomic_load_n(&r->ruled, __ATOMIC_RELAXED);
    out->delivered = __atomic_load_n(&r->rendered, __ATOMIC_RELAXED);
    if (r->pool == NULL)
        return;
    pool_stats(r->pool, &st);
    out->settled += st.results[OUTCOME_DELIVERED] + st.results[OUTCOME_FAILED] +
                    st.results[OUTCOME_UNKNOWN] + st.results[OUTCOME_DEFERRED] +
                    st.results[OUTCOME_INVALID];
    out->delivered += st.results[OUTCOME_DELIVERED];
    out->deferred = st.results[OUTCOME_DEFERRED];
    out->retrying = st.retrying;
    out->failed =
        st.results[OUTCOME_FAILED] + st.results[OUTCOME_UNKNOWN] + st.results[OUTCOME_INVALID];
}

/* A bar on a terminal (or with --progress), a line in the log elsewhere; none when quiet. */
static enum progress_mode progress_mode(const struct send_opts *o)
{
    if (o->quiet || o->to != NULL)
        return PROGRESS_OFF;
    if (o->progress || isatty(STDERR_FILENO))
        return PROGRESS_BAR;
    return PROGRESS_LOG;
}

int cmd_send(int argc, char **argv)
{
    struct run r;
    struct blast_error err;
    struct sigaction sa;
    struct pool_stats st;
    struct progress *prog = NULL;
    int64_t t0 = timeutil_mono_ms(), deadline;
    int code = BLAST_EXIT_USAGE, rc;

    memset(&r, 0, sizeof r);
    r.started = timeutil_now();
    memset(&st, 0, sizeof st);
    compose_result_init(&r.msg);
    screen_result_init(&r.who);
    blast_error_clear(&err);
    rc = parse_args(argc, argv, &r.opt);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&r.log, cli_log_level(r.opt.quiet, r.opt.verbose));
    deadline = r.opt.deadline_ms > 0 ? t0 + r.opt.deadline_ms : 0;

    if ((rc = prepare(&r, &err)) < 0)
        goto fail;
    if (journal_done_before(r.journal) > 0 && !r.opt.quiet)
        log_msg(&r.log, LOG_LEVEL_INFO, "%s: resuming: the journal knows %zu rows already",
                r.c->name, journal_done_before(r.journal));

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if ((rc = send_seeds(&r, deadline, &err)) < 0) {
        cli_error(&err);
        cli_fail("%s: stopped while sending to the seeds; the journal %s keeps what was done, "
                 "and the next run resumes",
                 r.c->name, r.journal_path);
        code = BLAST_EXIT_INCOMPLETE;
        goto out;
    }
    if (r.opt.dry_run == NULL) {
        struct pool_options po;
        memset(&po, 0, sizeof po);
        po.c = r.c;
        po.compose = r.p.cp;
        po.journal = r.journal;
        po.passwords = r.passwords;
        po.test_to = r.has_test_to ? &r.test_to : NULL;
        po.log = &r.log;
        po.shared = r.shared;
        po.providers = r.routes != NULL ? &r.providers : NULL;
        po.breaker = r.c->breaker;
        if (r.opt.no_breaker)
            po.breaker.after = 0;
        po.routes = r.routes;
        /* a window that closes while recipients wait holds them back too (none for --to) */
        po.window = r.has_test_to ? NULL : r.window.w;
        po.clock_offset = r.clock;
        if ((rc = pool_start(&po, &r.pool, &err)) < 0)
            goto fail;
        if (r.tripped) {
            /* the seeds were refused: no recipient is tried (judge_seeds) */
            char why[400];
            snprintf(why, sizeof why, "not attempted: the seeds were refused (%s)", r.breaker_why);
            r.stopped = true;
            pool_stop(r.pool, why);
        }
    }
    if (progress_start(progress_mode(&r.opt), 0, poll_counts, &r, &r.log, &prog) < 0)
        log_msg(&r.log, LOG_LEVEL_DEBUG, "no progress display: cannot start its thread");
    rc = feed_rows(&r, deadline, &err);
    if (r.pool != NULL) {
        /* a signal or the deadline may still come while the last transactions finish */
        struct blast_error ferr;
        blast_error_clear(&ferr);
        if (rc < 0)
            pool_stop(r.pool, "not attempted: the run stopped on an error");
        if (pool_finish(r.pool, &interrupted, deadline, &ferr) < 0 && rc == 0) {
            err = ferr;
            rc = ferr.code;
        }
        pool_stats(r.pool, &st);
        r.held_window += st.held_window;
        if (st.tripped) {
            r.tripped = true;
            snprintf(r.breaker_why, sizeof r.breaker_why, "%s", st.breaker_why);
        }
    }
    progress_stop(prog);
    if (rc < 0) {
        /* the journal holds what happened; the report would be incomplete */
        cli_error(&err);
        cli_fail("%s: stopped; the journal %s keeps what was done, and the next run resumes",
                 r.c->name, r.journal_path);
        code = BLAST_EXIT_INCOMPLETE;
        goto out;
    }
    if (st.no_relay && st.sessions == 0 && !interrupted) {
        /* nothing could be sent: the reason is above; the journal keeps every row deferred */
        code = BLAST_EXIT_NO_RELAY;
        goto out;
    }
    warm_settle(&r);
    if ((rc = write_report(&r, (double)(timeutil_mono_ms() - t0) / 1000.0, st.no_relay, &code,
                           &err)) < 0) {
        cli_error(&err);
        code = BLAST_EXIT_INCOMPLETE;
    } else {
        compact_journal(&r);
    }
    if (st.messages > 0)
        log_msg(&r.log, LOG_LEVEL_DEBUG, "%zu sessions, %zu messages, %.2f round trips a message",
                st.sessions, st.messages, (double)st.round_trips / (double)st.messages);
    goto out;
fail:
    cli_error(&err);
    code = BLAST_EXIT_USAGE;
out:
    write_metrics(&r, code);
    if (code != BLAST_EXIT_USAGE)
        notify_run(&r, code);
    run_free(&r);
    return code;
}
