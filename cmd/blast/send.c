/*
 * send - `blast send CAMPAIGN.yml`: validate everything, then deliver and report.
 *
 * Order of work, so that a bad input never sends half a campaign:
 *   1. load the campaign; open the list and compile the templates against its
 *      header; read the whole list once to find structural errors (exit 2);
 *   2. fetch the relay's secret, open the report;
 *   3. open a session to the first relay that accepts us (exit 4 if none);
 *   4. for each row: compose, send, record the outcome in the report;
 *   5. QUIT, commit the report atomically, exit with the DESIGN.md §4 code.
 */
#include "cli.h"
#include "../../core/compose.h"
#include "../../core/conn.h"
#include "../../core/report.h"
#include "../../core/smtp.h"
#include "../../core/timeutil.h"

#include <errno.h>
#include <getopt.h>
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
    "write every outcome to the JSON report.\n"
    "\n"
    "options:\n"
    "  --dry-run DIR      render every message into DIR/<row>.eml; connect to nothing\n"
    "  --limit N          handle only the first N recipients of the list\n"
    "  --to ADDRESS       test send: every message goes to ADDRESS instead\n"
    "  --report PATH      where to write the report ('-' for standard output);\n"
    "                     default: the campaign's 'report', else reports/NAME.json\n"
    "                     beside the campaign file\n"
    "  -q, --quiet        only warnings and errors on stderr\n"
    "  -v, --verbose      more detail; -vv adds the SMTP transcript (secrets masked)\n"
    "  -h, --help         this text\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

struct send_opts {
    const char *campaign;
    const char *dry_run;
    const char *to;
    const char *report;
    long limit; /* 0: no limit */
    int verbose;
    bool quiet;
};

static int parse_args(int argc, char **argv, struct send_opts *o)
{
    static const struct option longopts[] = {
        {"dry-run", required_argument, NULL, 'd'}, {"limit", required_argument, NULL, 'l'},
        {"to", required_argument, NULL, 't'},      {"report", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},         {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;
    char *end;

    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dry_run = optarg;
            break;
        case 'l':
            errno = 0;
            o->limit = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || o->limit <= 0) {
                cli_fail("send: --limit needs a positive whole number, not '%s'", optarg);
                return -1;
            }
            break;
        case 't':
            o->to = optarg;
            break;
        case 'r':
            o->report = optarg;
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
            if (optopt != 0 && strchr("dltr", optopt) == NULL)
                cli_fail("send: unknown option '-%c' (see 'blast help send')", optopt);
            else
                cli_fail("send: unknown or incomplete option '%s' (see 'blast help send')",
                         argv[optind - 1]);
            return -1;
        }
    }
    if (optind >= argc) {
        cli_fail("send: which campaign? usage: blast send CAMPAIGN.yml [OPTIONS]");
        return -1;
    }
    if (optind + 1 < argc) {
        cli_fail("send: unexpected argument '%s' (one campaign file at a time)", argv[optind + 1]);
        return -1;
    }
    o->campaign = argv[optind];
    return 0;
}

/* Everything one run holds; freed by run_free(). */
struct run {
    struct send_opts opt;
    struct log log;
    struct campaign *c;
    struct recipients *list;
    struct compose *cp;
    struct address test_to;
    bool has_test_to;
    char *password;
    char *report_path;
    struct report *report;
    struct conn_tls *tls;
    struct smtp_session *session;
    const struct campaign_relay *relay;
    struct compose_result msg;
    size_t rows;      /* data rows in the list (after --limit) */
    size_t attempted; /* transactions tried */
    bool relay_down;  /* the relay could not be reached again: the rest is deferred */
};

static void run_free(struct run *r)
{
    if (r->session != NULL) {
        smtp_session_quit(r->session);
        smtp_session_free(r->session);
    }
    conn_tls_free(r->tls);
    report_abort(r->report);
    if (r->password != NULL) {
        OPENSSL_cleanse(r->password, strlen(r->password));
        free(r->password);
    }
    free(r->report_path);
    compose_result_free(&r->msg);
    address_free(&r->test_to);
    compose_free(r->cp);
    recipients_close(r->list);
    campaign_free(r->c);
}

static int open_list(struct run *r, struct blast_error *err)
{
    struct recipients_options ro = {r->c->recipients.delimiter, 0};
    int rc;

    recipients_close(r->list);
    r->list = NULL;
    rc = recipients_open(r->c->recipients.path, &ro, &r->list, err);
    if (rc == BLAST_EIO && err->line == 0) {
        /* blame the campaign line that names the file */
        char text[BLAST_ERROR_TEXT_MAX];
        snprintf(text, sizeof text, "recipients.path: %s: %s", r->c->recipients.path, err->text);
        blast_error_replace(err, rc, r->c->path, r->c->recipients.path_place.line,
                            r->c->recipients.path_place.column, "%s", text);
    }
    return rc;
}

/* Step 1: read the whole list once; a structural error stops everything. */
static int validate(struct run *r, struct blast_error *err)
{
    struct recipients_row row;
    int rc;

    if ((rc = open_list(r, err)) < 0 || (rc = compose_new(r->c, r->list, &r->cp, err)) < 0)
        return rc;
    while ((rc = recipients_next(r->list, &row, err)) == 1) {
        r->rows++;
        if (r->opt.limit > 0 && (long)r->rows >= r->opt.limit)
            break;
    }
    if (rc < 0)
        return rc;
    if (r->rows == 0)
        return blast_error_set(err, BLAST_EINVAL, r->c->recipients.path, 0, 0,
                               "the list has a header row but no recipients");
    return recipients_rewind(r->list, err);
}

static int make_report_path(struct run *r, struct blast_error *err)
{
    const char *p = r->opt.report != NULL ? r->opt.report : r->c->report;
    size_t n;

    if (p != NULL) {
        r->report_path = strdup(p);
    } else {
        char *dir;
        n = strlen(r->c->dir) + strlen(r->c->name) + 32;
        dir = malloc(n);
        r->report_path = malloc(n);
        if (dir == NULL || r->report_path == NULL) {
            free(dir);
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        }
        snprintf(dir, n, "%s/reports", r->c->dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(dir);
            return blast_error_set(err, BLAST_EIO, r->c->path, 0, 0,
                                   "cannot create the report directory %s/reports: %s", r->c->dir,
                                   strerror(e));
        }
        free(dir);
        snprintf(r->report_path, n, "%s/reports/%s.json", r->c->dir, r->c->name);
    }
    if (r->report_path == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return 0;
}

static enum smtp_tls_mode tls_mode(enum campaign_tls t)
{
    return t == CAMPAIGN_TLS_IMPLICIT ? SMTP_TLS_IMPLICIT
           : t == CAMPAIGN_TLS_NONE   ? SMTP_TLS_NONE
                                      : SMTP_TLS_STARTTLS;
}

/* Open a session to the relay; on failure err names the relay's place in the campaign. */
static int connect_relay(struct run *r, const struct campaign_relay *relay, struct blast_error *err)
{
    struct smtp_options so;
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    if (r->tls == NULL && relay->tls != CAMPAIGN_TLS_NONE) {
        struct conn_tls_options to = {relay->verify, relay->ca_file};
        if ((rc = conn_tls_new(&to, &r->tls, &e)) < 0)
            goto fail;
    }
    memset(&so, 0, sizeof so);
    so.host = relay->host;
    so.port = relay->port;
    so.label = relay->name;
    so.tls = tls_mode(relay->tls);
    so.tls_ctx = r->tls;
    so.username = relay->username;
    so.password = r->password;
    so.auth = (enum smtp_auth_choice)relay->auth;
    so.log = &r->log;
    smtp_timeouts_default(&so.timeouts);
    if ((rc = smtp_session_open(&so, &r->session, &e)) < 0) {
        if (r->session != NULL && smtp_session_state(r->session) > SMTP_CONNECT) {
            char text[BLAST_ERROR_TEXT_MAX];
            snprintf(text, sizeof text, "%s (during %s)", e.text,
                     smtp_state_name(smtp_session_state(r->session)));
            snprintf(e.text, sizeof e.text, "%s", text);
        }
        smtp_session_free(r->session);
        r->session = NULL;
        goto fail;
    }
    r->relay = relay;
    log_msg(&r->log, LOG_LEVEL_DEBUG, "%s: ready (%s%s)", relay->name,
            conn_is_tls(smtp_session_conn(r->session)) ? "TLS " : "no TLS",
            conn_is_tls(smtp_session_conn(r->session))
                ? conn_tls_version(smtp_session_conn(r->session))
                : "");
    return 0;
fail:
    return blast_error_set(err, rc, r->c->path, relay->place.line, relay->place.column,
                           "relay '%s' (%s port %d): %s", relay->name, relay->host, relay->port,
                           e.text);
}

static enum report_status status_of(enum smtp_outcome o)
{
    switch (o) {
    case SMTP_OUTCOME_DELIVERED:
        return REPORT_DELIVERED;
    case SMTP_OUTCOME_FAILED:
        return REPORT_FAILED;
    case SMTP_OUTCOME_UNKNOWN:
        return REPORT_UNKNOWN;
    default:
        return REPORT_DEFERRED;
    }
}

static int record(struct run *r, const struct recipients_row *row, enum report_status status,
                  const struct smtp_rcpt *rc, const struct smtp_txn *t, int attempts,
                  struct timeutil_stamp first, const char *detail, struct blast_error *err)
{
    struct report_entry e;

    memset(&e, 0, sizeof e);
    e.email = r->msg.email;
    e.row = row->row;
    e.status = status;
    e.detail = detail;
    if (rc != NULL) {
        e.code = rc->reply.code;
        e.enhanced = rc->reply.enhanced;
        e.reply = rc->reply.code > 0 ? rc->reply.text : NULL;
        e.step = smtp_state_name(rc->step);
        if (e.detail == NULL && rc->detail[0] != '\0')
            e.detail = rc->detail;
    }
    if (attempts > 0) {
        e.relay = r->relay != NULL ? r->relay->name : NULL;
        e.attempts = attempts;
        e.first = first;
        e.last = timeutil_now();
        e.queue_id = t != NULL && status == REPORT_DELIVERED ? t->queue_id : NULL;
    }
    if (!r->msg.invalid) {
        e.message_id = r->msg.message_id;
        e.size = r->msg.message.len;
    }
    return report_add(r->report, &e, err);
}

static int write_eml(struct run *r, const struct recipients_row *row, struct blast_error *err)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%zu.eml", r->opt.dry_run, row->row);
    f = fopen(path, "wb");
    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write: %s", strerror(errno));
    if (fwrite(r->msg.message.data, 1, r->msg.message.len, f) != r->msg.message.len) {
        fclose(f);
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write: %s", strerror(errno));
    }
    if (fclose(f) != 0)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write: %s", strerror(errno));
    return 0;
}

/*
 * Deliver the current message. A session lost before the end of data is
 * reopened and the message tried once more (the relay may close after a number
 * of messages); the result is in rcpt.
 */
static int deliver(struct run *r, struct smtp_rcpt *rcpt, struct smtp_txn *t, int *attempts)
{
    struct blast_error e;
    int rc;

    for (;;) {
        blast_error_clear(&e);
        if (r->session == NULL) {
            if ((rc = connect_relay(r, r->relay, &e)) < 0) {
                rcpt->outcome = SMTP_OUTCOME_DEFERRED;
                rcpt->step = SMTP_CONNECT;
                memset(&rcpt->reply, 0, sizeof rcpt->reply);
                snprintf(rcpt->detail, sizeof rcpt->detail, "%s", e.text);
                log_msg(&r->log, LOG_LEVEL_WARN, "%s", e.text);
                return rc;
            }
        }
        memset(rcpt, 0, sizeof *rcpt);
        rcpt->address = r->msg.to.envelope;
        t->rcpts = rcpt;
        (*attempts)++;
        r->attempted++;
        rc = smtp_session_send(r->session, t, &e);
        if (rc == 0)
            return 0;
        log_msg(&r->log, LOG_LEVEL_WARN, "%s: %s", r->relay->name, e.text);
        smtp_session_free(r->session);
        r->session = NULL;
        if (rcpt->outcome != SMTP_OUTCOME_DEFERRED || rcpt->reply.code != 0 || *attempts >= 2)
            return 0;
    }
}

static int send_all(struct run *r, struct blast_error *err)
{
    struct recipients_row row;
    struct smtp_txn t;
    struct smtp_rcpt rcpt;
    int rc;

    while ((rc = recipients_next(r->list, &row, err)) == 1) {
        struct timeutil_stamp first = {0, 0};
        int attempts = 0;

        if (r->opt.limit > 0 && (long)row.row > r->opt.limit)
            break;
        if ((rc = compose_row(r->cp, &row, r->has_test_to ? &r->test_to : NULL, &r->msg, err)) < 0)
            return rc;
        if (r->msg.invalid) {
            if ((rc = record(r, &row, REPORT_INVALID, NULL, NULL, 0, first, r->msg.reason, err)) <
                0)
                return rc;
            log_msg(&r->log, LOG_LEVEL_WARN, "%s:%zu: row %zu: %s", r->c->recipients.path, row.line,
                    row.row, r->msg.reason);
            continue;
        }
        if (interrupted || r->relay_down) {
            rc = record(r, &row, REPORT_DEFERRED, NULL, NULL, 0, first,
                        interrupted ? "not attempted: the run was interrupted"
                                    : "not attempted: the relay became unusable",
                        err);
            if (rc < 0)
                return rc;
            continue;
        }
        if (r->opt.dry_run != NULL) {
            if ((rc = write_eml(r, &row, err)) < 0 ||
                (rc = record(r, &row, REPORT_RENDERED, NULL, NULL, 0, first, NULL, err)) < 0)
                return rc;
            continue;
        }
        memset(&t, 0, sizeof t);
        t.mail_from = compose_envelope_from(r->cp)->envelope;
        t.smtputf8 = r->msg.smtputf8;
        t.eightbit = false; /* mime makes every part 7bit or quoted-printable */
        t.nrcpts = 1;
        t.data = r->msg.message.data;
        t.len = r->msg.message.len;
        first = timeutil_now();
        if (deliver(r, &rcpt, &t, &attempts) < 0)
            r->relay_down = true;
        if ((rc = record(r, &row, status_of(rcpt.outcome), &rcpt, &t, attempts, first, NULL, err)) <
            0)
            return rc;
        log_msg(&r->log, LOG_LEVEL_DEBUG, "row %zu %s: %s %d %s", row.row, r->msg.email,
                report_status_name(status_of(rcpt.outcome)), rcpt.reply.code, rcpt.reply.text);
    }
    return rc < 0 ? rc : 0;
}

static void print_summary(const struct run *r, double secs)
{
    if (r->opt.quiet)
        return;
    if (r->opt.dry_run != NULL) {
        fprintf(stderr, "blast: %s: %zu rendered into %s, %zu invalid; report: %s\n", r->c->name,
                report_count(r->report, REPORT_RENDERED), r->opt.dry_run,
                report_count(r->report, REPORT_INVALID), r->report_path);
        return;
    }
    fprintf(stderr,
            "blast: %s: %zu delivered, %zu deferred, %zu failed, %zu unknown, %zu invalid "
            "in %.1f s%s; report: %s\n",
            r->c->name, report_count(r->report, REPORT_DELIVERED),
            report_count(r->report, REPORT_DEFERRED), report_count(r->report, REPORT_FAILED),
            report_count(r->report, REPORT_UNKNOWN), report_count(r->report, REPORT_INVALID), secs,
            r->has_test_to ? " (test send)" : "", r->report_path);
}

int cmd_send(int argc, char **argv)
{
    struct run r;
    struct blast_error err;
    struct report_info info;
    struct sigaction sa;
    int64_t t0 = timeutil_mono_ms();
    int code = BLAST_EXIT_USAGE, rc;
    size_t i;

    memset(&r, 0, sizeof r);
    compose_result_init(&r.msg);
    blast_error_clear(&err);
    rc = parse_args(argc, argv, &r.opt);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&r.log, r.opt.quiet          ? LOG_LEVEL_WARN
                         : r.opt.verbose >= 2 ? LOG_LEVEL_TRACE
                         : r.opt.verbose == 1 ? LOG_LEVEL_DEBUG
                                              : LOG_LEVEL_INFO);

    if ((rc = campaign_load(r.opt.campaign, &r.c, &err)) < 0 || (rc = validate(&r, &err)) < 0)
        goto fail;
    if (r.opt.to != NULL) {
        struct blast_error aerr;
        blast_error_clear(&aerr);
        if (address_parse(r.opt.to, &r.test_to, &aerr) < 0) {
            cli_fail("send: --to: %s", aerr.text);
            goto out;
        }
        r.has_test_to = true;
    }
    if (r.opt.dry_run != NULL && mkdir(r.opt.dry_run, 0755) != 0 && errno != EEXIST) {
        rc = blast_error_set(&err, BLAST_EIO, r.opt.dry_run, 0, 0, "cannot create: %s",
                             strerror(errno));
        goto fail;
    }
    /* every relay's secret must be there before anything connects */
    for (i = 0; r.opt.dry_run == NULL && i < r.c->nrelays; i++) {
        if ((rc = campaign_relay_password(r.c, &r.c->relays[i], &r.password, &err)) < 0)
            goto fail;
        if (i + 1 < r.c->nrelays && r.password != NULL) {
            OPENSSL_cleanse(r.password, strlen(r.password));
            free(r.password);
            r.password = NULL;
        }
    }
    if ((rc = make_report_path(&r, &err)) < 0)
        goto fail;

    memset(&info, 0, sizeof info);
    info.campaign = r.c->name;
    info.campaign_file = r.opt.campaign;
    info.dry_run = r.opt.dry_run != NULL;
    info.test_to = r.opt.to;
    if (strcmp(r.report_path, "-") == 0)
        rc = report_open_stream(stdout, "standard output", &info, &r.report, &err);
    else
        rc = report_open(r.report_path, &info, &r.report, &err);
    if (rc < 0)
        goto fail;

    if (r.opt.dry_run == NULL) {
        /* the first relay that lets us in carries the campaign */
        for (i = 0; i < r.c->nrelays; i++) {
            struct blast_error e;
            blast_error_clear(&e);
            if (r.c->nrelays > 1) {
                OPENSSL_cleanse(r.password, r.password ? strlen(r.password) : 0);
                free(r.password);
                r.password = NULL;
                conn_tls_free(r.tls);
                r.tls = NULL;
                if ((rc = campaign_relay_password(r.c, &r.c->relays[i], &r.password, &err)) < 0)
                    goto fail;
            }
            if ((rc = connect_relay(&r, &r.c->relays[i], &e)) == 0)
                break;
            if (i + 1 < r.c->nrelays)
                log_msg(&r.log, LOG_LEVEL_WARN, "%s:%d:%d: %s; trying the next relay", e.source,
                        e.line, e.column, e.text);
            else
                err = e;
        }
        if (r.session == NULL) {
            cli_error(&err);
            code = BLAST_EXIT_NO_RELAY;
            goto out;
        }
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if ((rc = send_all(&r, &err)) < 0) {
        /* the report would be incomplete: keep the previous one, say why */
        cli_error(&err);
        if (r.attempted > 0)
            cli_fail("%s: stopped after %zu messages; no report was written", r.c->name,
                     r.attempted);
        code = r.attempted > 0 ? BLAST_EXIT_INCOMPLETE : BLAST_EXIT_USAGE;
        goto out;
    }
    if (r.session != NULL) {
        smtp_session_quit(r.session);
        smtp_session_free(r.session);
        r.session = NULL;
    }
    {
        size_t delivered = report_count(r.report, REPORT_DELIVERED);
        size_t rendered = report_count(r.report, REPORT_RENDERED);
        size_t total = 0;
        for (i = 0; i < REPORT_STATUS_COUNT; i++)
            total += report_count(r.report, (enum report_status)i);
        print_summary(&r, (double)(timeutil_mono_ms() - t0) / 1000.0);
        if (interrupted)
            code = BLAST_EXIT_INTERRUPTED;
        else if (r.relay_down && delivered == 0)
            code = BLAST_EXIT_NO_RELAY;
        else
            code = delivered + rendered == total ? BLAST_EXIT_OK : BLAST_EXIT_INCOMPLETE;
    }
    rc = report_commit(r.report, &err);
    r.report = NULL;
    if (rc < 0) {
        cli_error(&err);
        code = BLAST_EXIT_USAGE;
    }
    goto out;
fail:
    cli_error(&err);
    code = BLAST_EXIT_USAGE;
out:
    run_free(&r);
    return code;
}
