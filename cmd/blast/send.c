/*
 * send - `blast send CAMPAIGN.yml`: validate everything, then deliver and report.
 *
 * Order of work, so that a bad input never sends half a campaign:
 *   1. load the campaign, open the list, compile the templates against its header,
 *      and read the whole list once through the screening rules: a structural
 *      error (broken quoting, invalid UTF-8, a missing column) stops here, exit 2;
 *   2. fetch every relay's secret, open the report;
 *   3. open a session to the first relay that accepts us (exit 4 if none);
 *   4. for each row: screen, compose, send, record the outcome in the report;
 *   5. QUIT, commit the report atomically, exit with the DESIGN.md §4 code.
 */
#include "cli.h"
#include "prepare.h"
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

    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dry_run = optarg;
            break;
        case 'l':
            if (cli_positive("send", "--limit", optarg, &o->limit) < 0)
                return -1;
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
            cli_bad_option("send", argv, optopt);
            return -1;
        }
    }
    if (cli_one_operand("send", argc, argv, &o->campaign) < 0)
        return -1;
    return 0;
}

/* Everything one run holds; freed by run_free(). */
struct run {
    struct send_opts opt;
    struct log log;
    struct prepared p;
    struct campaign *c; /* p.c */
    struct address test_to;
    bool has_test_to;
    char *password;
    char *report_path;
    struct report *report;
    struct conn_tls *tls;
    struct smtp_session *session;
    const struct campaign_relay *relay;
    size_t session_messages; /* messages on the current session */
    struct screen_result who;
    struct compose_result msg;
    size_t rows;      /* data rows in the list (after --limit) */
    size_t attempted; /* transactions tried */
    bool relay_down;  /* the relay could not be reached again: the rest is deferred */
};

static void forget_password(struct run *r)
{
    if (r->password != NULL) {
        OPENSSL_cleanse(r->password, strlen(r->password));
        free(r->password);
        r->password = NULL;
    }
}

static void close_session(struct run *r, bool quit)
{
    const struct smtp_stats *st;

    if (r->session == NULL)
        return;
    st = smtp_session_stats(r->session);
    if (st->messages > 0)
        log_msg(&r->log, LOG_LEVEL_DEBUG,
                "%s: session done: %zu messages, %zu writes, %zu round trips (%.2f a message)",
                r->relay != NULL ? r->relay->name : "relay", st->messages, st->writes,
                st->round_trips,
                st->messages > 0 ? (double)st->round_trips / (double)st->messages : 0.0);
    if (quit)
        smtp_session_quit(r->session);
    smtp_session_free(r->session);
    r->session = NULL;
    r->session_messages = 0;
}

static void run_free(struct run *r)
{
    close_session(r, true);
    conn_tls_free(r->tls);
    report_abort(r->report);
    forget_password(r);
    free(r->report_path);
    compose_result_free(&r->msg);
    screen_result_free(&r->who);
    address_free(&r->test_to);
    prepare_close(&r->p);
}

/*
 * Features of the campaign format that this version does not act on yet: refusing
 * them is honest; ignoring them would send something other than what was asked.
 */
static int refuse_unsupported(const struct campaign *c, struct blast_error *err)
{
    const struct campaign_place none = {0, 0};
    const struct campaign_place *at = &none;
    const char *what = NULL;
    size_t i;

    if (c->ndkim > 0) {
        what = "DKIM signing";
        at = &c->dkim[0].place;
    } else if (c->rate.set) {
        what = "a global rate";
        at = &c->rate.place;
    } else if (c->ndomain_rates > 0) {
        what = "domain_rates";
        at = &c->domain_rates[0].rate.place;
    } else if (c->retry.place.line > 0) {
        what = "retry settings";
        at = &c->retry.place;
    } else if (c->journal != NULL) {
        what = "a journal";
        at = &c->journal_place;
    }
    for (i = 0; what == NULL && i < c->nrelays; i++) {
        if (c->relays[i].rate.set) {
            what = "relay rates";
            at = &c->relays[i].rate.place;
        }
    }
    if (what == NULL)
        return 0;
    return blast_error_set(err, BLAST_EINVAL, c->path, at->line, at->column,
                           "this version of blast does not send campaigns with %s yet "
                           "('blast check' validates them)",
                           what);
}

/* Step 1: read the whole list once; a structural error stops everything. */
static int validate(struct run *r, struct blast_error *err)
{
    struct recipients_row row;
    int rc;

    while ((rc = recipients_next(r->p.list, &row, err)) == 1) {
        if ((rc = screen_row(r->p.screen, &row, &r->who, err)) < 0)
            return rc;
        r->rows++;
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
    return 0;
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

/* Open a session to the relay; on failure err names the relay's place in the campaign. */
static int connect_relay(struct run *r, const struct campaign_relay *relay, struct blast_error *err)
{
    struct smtp_options so;
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    if (r->tls == NULL && relay->tls != CAMPAIGN_TLS_NONE) {
        struct conn_tls_options to = {relay->verify, relay->ca_file, relay->pin_sha256};
        if ((rc = conn_tls_new(&to, &r->tls, &e)) < 0)
            goto fail;
    }
    cli_smtp_options(r->c, relay, r->tls, r->password, &r->log, &so);
    if ((rc = smtp_session_open(&so, &r->session, &e)) < 0) {
        cli_session_failure(r->session, &e);
        close_session(r, false);
        goto fail;
    }
    r->relay = relay;
    r->session_messages = 0;
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

static enum report_status status_of_verdict(enum screen_verdict v)
{
    return v == SCREEN_DUPLICATE    ? REPORT_DUPLICATE
           : v == SCREEN_SUPPRESSED ? REPORT_SUPPRESSED
                                    : REPORT_INVALID;
}

/*
 * A message on its way: the transaction the engine sees, and what the report
 * needs when its outcome comes back. The row is kept (a copy of its fields) so a
 * message lost with its connection can be built again and retried once.
 */
#define SLOTS 48 /* more than the engine keeps in flight (BDAT window + 2) */

struct slot {
    bool used;
    struct smtp_txn t;
    struct smtp_rcpt rcpt;
    struct address to;
    size_t row, line;
    char email[512];
    char message_id[256];
    char envid[128]; /* RFC 3461 ENVID: campaign and row, so a DSN finds its row */
    size_t size;
    int attempts;
    struct timeutil_stamp first;
    /* the row's fields, for a retry */
    struct buf fields;
    size_t *lens;
    const char **ptrs;
    size_t nfields;
};

struct sender {
    struct run *r;
    struct slot slots[SLOTS];
    struct slot *retry[SLOTS]; /* messages lost with their connection, to send again */
    size_t nretry;
    bool eof;   /* the list is read to its end */
    int failed; /* a local error (report, memory): stop */
    struct blast_error err;
    size_t done_on_session;
    size_t answered; /* messages the relay answered (any reply): progress */
};

static int record_entry(struct run *r, size_t row, const char *email, enum report_status status,
                        const struct smtp_rcpt *rc, const char *queue_id, int attempts,
                        struct timeutil_stamp first, const char *detail, const char *message_id,
                        size_t size, struct blast_error *err)
{
    struct report_entry e;

    memset(&e, 0, sizeof e);
    e.email = email;
    e.row = row;
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
        e.queue_id = status == REPORT_DELIVERED ? queue_id : NULL;
    }
    e.message_id = message_id;
    e.size = size;
    return report_add(r->report, &e, err);
}

/* A row that is not sent: record why. */
static int record_row(struct run *r, const struct recipients_row *row, enum report_status status,
                      const char *detail, bool built, struct blast_error *err)
{
    struct timeutil_stamp never = {0, 0};

    return record_entry(r, row->row, r->who.email, status, NULL, NULL, 0, never, detail,
                        built ? r->msg.message_id : NULL, built ? r->msg.message.len : 0, err);
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

static struct slot *slot_take(struct sender *sd)
{
    size_t i;

    for (i = 0; i < SLOTS; i++)
        if (!sd->slots[i].used) {
            sd->slots[i].used = true;
            return &sd->slots[i];
        }
    return NULL;
}

static void slot_release(struct slot *sl)
{
    address_free(&sl->to);
    sl->used = false;
}

static void slots_free(struct sender *sd)
{
    size_t i;

    for (i = 0; i < SLOTS; i++) {
        address_free(&sd->slots[i].to);
        buf_free(&sd->slots[i].fields);
        free(sd->slots[i].lens);
        free((void *)sd->slots[i].ptrs);
    }
}

/* Keep a copy of the row's fields in the slot (for a retry). */
static int slot_keep_row(struct slot *sl, const struct recipients_row *row)
{
    size_t i;

    buf_reset(&sl->fields);
    if (sl->nfields < row->nfields || sl->lens == NULL) {
        size_t *l = realloc(sl->lens, row->nfields * sizeof *l);
        const char **p = l != NULL ? realloc((void *)sl->ptrs, row->nfields * sizeof *p) : NULL;
        if (l != NULL)
            sl->lens = l;
        if (p == NULL)
            return BLAST_ENOMEM;
        sl->ptrs = p;
    }
    sl->nfields = row->nfields;
    for (i = 0; i < row->nfields; i++) {
        sl->lens[i] = sl->fields.len; /* offset for now */
        if (buf_append(&sl->fields, row->fields[i], row->lens[i]) < 0 ||
            buf_putc(&sl->fields, '\0') < 0)
            return BLAST_ENOMEM;
    }
    for (i = 0; i < row->nfields; i++) {
        sl->ptrs[i] = sl->fields.data + sl->lens[i];
        sl->lens[i] = row->lens[i];
    }
    return 0;
}

/* Build the message of the slot's row into r->msg and point the transaction at it. */
static int slot_compose(struct run *r, struct slot *sl, const struct recipients_row *row,
                        struct blast_error *err)
{
    int rc;

    if ((rc = compose_row(r->p.cp, row, &sl->to, &r->msg, err)) < 0)
        return rc;
    memset(&sl->t, 0, sizeof sl->t);
    memset(&sl->rcpt, 0, sizeof sl->rcpt);
    sl->rcpt.address = sl->to.envelope;
    sl->t.mail_from = compose_envelope_from(r->p.cp)->envelope;
    sl->t.smtputf8 = r->msg.smtputf8;
    sl->t.eightbit = false; /* mime makes every part 7bit, quoted-printable or base64 */
    sl->t.rcpts = &sl->rcpt;
    sl->t.nrcpts = 1;
    sl->t.data = r->msg.message.data;
    sl->t.len = r->msg.message.len;
    sl->t.user = sl;
    snprintf(sl->envid, sizeof sl->envid, "%s.%zu", r->c->name, sl->row);
    sl->t.envid = sl->envid;
    snprintf(sl->message_id, sizeof sl->message_id, "%s", r->msg.message_id);
    sl->size = r->msg.message.len;
    if (sl->attempts == 0)
        sl->first = timeutil_now();
    sl->attempts++;
    r->attempted++;
    return 0;
}

/* A message lost with its connection goes out again, once, with the same row. */
static struct smtp_txn *next_retry(struct sender *sd)
{
    struct run *r = sd->r;
    struct slot *sl = sd->retry[--sd->nretry];
    struct recipients_row row;

    row.row = sl->row;
    row.line = sl->line;
    row.nfields = sl->nfields;
    row.fields = sl->ptrs;
    row.lens = sl->lens;
    if (slot_compose(r, sl, &row, &sd->err) < 0) {
        sd->failed = sd->err.code;
        slot_release(sl);
        return NULL;
    }
    return &sl->t;
}

/* One row: record it if it is not to be sent, else make its message. NULL: nothing to send. */
static struct smtp_txn *next_row(struct sender *sd, const struct recipients_row *row)
{
    struct run *r = sd->r;
    struct blast_error *err = &sd->err;
    const struct address *to;
    struct slot *sl;
    int rc;

    if ((rc = screen_row(r->p.screen, row, &r->who, err)) < 0)
        goto fail;
    if (r->who.verdict != SCREEN_OK) {
        if (r->who.verdict == SCREEN_INVALID)
            log_msg(&r->log, LOG_LEVEL_WARN, "%s:%zu: row %zu: %s", r->c->recipients.path,
                    row->line, row->row, r->who.reason);
        rc = record_row(r, row, status_of_verdict(r->who.verdict), r->who.reason, false, err);
        goto out;
    }
    if (interrupted || r->relay_down) {
        rc = record_row(r, row, REPORT_DEFERRED,
                        interrupted ? "not attempted: the run was interrupted"
                                    : "not attempted: no relay could be reached",
                        false, err);
        goto out;
    }
    to = r->has_test_to ? &r->test_to : &r->who.to;
    if (r->opt.dry_run != NULL) {
        if ((rc = compose_row(r->p.cp, row, to, &r->msg, err)) < 0)
            goto fail;
        if (r->msg.invalid)
            rc = record_row(r, row, REPORT_INVALID, r->msg.reason, false, err);
        else if ((rc = write_eml(r, row, err)) == 0)
            rc = record_row(r, row, REPORT_RENDERED, NULL, true, err);
        goto out;
    }
    sl = slot_take(sd);
    if (sl == NULL) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "too many messages in flight");
        goto fail;
    }
    sl->row = row->row;
    sl->line = row->line;
    sl->attempts = 0;
    snprintf(sl->email, sizeof sl->email, "%s", r->who.email);
    address_free(&sl->to);
    if ((rc = address_parse(to->envelope, &sl->to, err)) < 0 ||
        (to->display != NULL && (sl->to.display = strdup(to->display)) == NULL) ||
        (rc = slot_keep_row(sl, row)) < 0 || (rc = slot_compose(r, sl, row, err)) < 0) {
        slot_release(sl);
        rc = rc < 0 ? rc : BLAST_ENOMEM;
        goto fail;
    }
    if (r->msg.invalid) {
        rc = record_row(r, row, REPORT_INVALID, r->msg.reason, false, err);
        r->attempted--;
        slot_release(sl);
        if (rc == 0)
            log_msg(&r->log, LOG_LEVEL_WARN, "%s:%zu: row %zu: %s", r->c->recipients.path,
                    row->line, row->row, r->msg.reason);
        goto out;
    }
    return &sl->t;
out:
    if (rc == 0)
        return NULL;
fail:
    sd->failed = rc < 0 ? rc : BLAST_ENOMEM;
    blast_error_set(err, sd->failed, NULL, 0, 0, "out of memory");
    return NULL;
}

/* The feed's next: retries first, then the list, row after row. */
static struct smtp_txn *feed_next(void *arg)
{
    struct sender *sd = arg;
    struct run *r = sd->r;
    struct recipients_row row;
    struct smtp_txn *t = NULL;
    int rc;

    if (sd->failed)
        return NULL;
    if (r->session != NULL && r->relay->messages_per_connection > 0 &&
        sd->done_on_session >= (size_t)r->relay->messages_per_connection)
        return NULL; /* time for a new connection */
    if (sd->nretry > 0 && !interrupted)
        return next_retry(sd);
    while (t == NULL && !sd->eof && !sd->failed) {
        rc = recipients_next(r->p.list, &row, &sd->err);
        if (rc < 0) {
            sd->failed = rc;
            return NULL;
        }
        if (rc == 0 || (r->opt.limit > 0 && (long)row.row > r->opt.limit)) {
            sd->eof = true;
            break;
        }
        t = next_row(sd, &row);
    }
    if (t != NULL)
        sd->done_on_session++;
    return t;
}

/* The feed's done: a message has its outcome. One lost with its connection is retried once. */
static void feed_done(void *arg, struct smtp_txn *t)
{
    struct sender *sd = arg;
    struct run *r = sd->r;
    struct slot *sl = t->user;
    const struct smtp_rcpt *rc = &sl->rcpt;
    enum report_status status = status_of(rc->outcome);

    if (status == REPORT_DEFERRED && rc->reply.code == 0 && sl->attempts < 2 && !interrupted &&
        sd->nretry < SLOTS) {
        log_msg(&r->log, LOG_LEVEL_DEBUG, "row %zu %s: %s; trying again", sl->row, sl->email,
                rc->detail);
        sd->retry[sd->nretry++] = sl;
        return;
    }
    log_msg(&r->log, LOG_LEVEL_DEBUG, "row %zu %s: %s %d %s", sl->row, sl->email,
            report_status_name(status), rc->reply.code, rc->reply.text);
    sd->answered += rc->reply.code != 0;
    if (!sd->failed && record_entry(r, sl->row, sl->email, status, rc, t->queue_id, sl->attempts,
                                    sl->first, NULL, sl->message_id, sl->size, &sd->err) < 0)
        sd->failed = sd->err.code;
    slot_release(sl);
}

/* Retries that will not happen (the relay is gone, or a signal came): deferred. */
static void drop_retries(struct sender *sd)
{
    while (sd->nretry > 0) {
        struct slot *sl = sd->retry[--sd->nretry];
        if (!sd->failed &&
            record_entry(sd->r, sl->row, sl->email, REPORT_DEFERRED, &sl->rcpt, NULL, sl->attempts,
                         sl->first, NULL, sl->message_id, sl->size, &sd->err) < 0)
            sd->failed = sd->err.code;
        slot_release(sl);
    }
}

/*
 * Step 4: feed the list to the relay through one session at a time: reconnect
 * when the session reaches messages_per_connection or dies; give up on the relay
 * after it fails twice in a row without a message delivered in between.
 */
static int send_all(struct run *r, struct blast_error *err)
{
    struct sender sd;
    struct smtp_feed feed = {feed_next, feed_done, &sd};
    int failures = 0, rc = 0;

    memset(&sd, 0, sizeof sd);
    sd.r = r;
    blast_error_clear(&sd.err);
    while (!sd.failed) {
        struct blast_error e;
        size_t before = sd.answered;

        if (r->opt.dry_run == NULL && !r->relay_down && r->session == NULL) {
            blast_error_clear(&e);
            if (connect_relay(r, r->relay, &e) < 0) {
                log_msg(&r->log, LOG_LEVEL_WARN, "%s", e.text);
                r->relay_down = ++failures >= 2;
                if (!r->relay_down)
                    continue;
            }
        }
        if (r->session == NULL) {
            /* dry run, or no relay: the rest of the list is recorded without a session */
            drop_retries(&sd);
            while (feed_next(&sd) != NULL)
                ;
            break;
        }
        sd.done_on_session = 0;
        blast_error_clear(&e);
        rc = smtp_session_run(r->session, &feed, &e);
        if (rc < 0) {
            log_msg(&r->log, LOG_LEVEL_WARN, "%s: %s", r->relay->name, e.text);
            close_session(r, false);
            /* a relay that answers nothing twice in a row is not coming back this run */
            failures = sd.answered > before ? 0 : failures + 1;
            if (failures >= 2)
                r->relay_down = true;
            continue;
        }
        if (interrupted)
            drop_retries(&sd);
        if (sd.eof && sd.nretry == 0)
            break;
        /* messages_per_connection reached: QUIT, and a new session takes over */
        close_session(r, true);
        failures = 0;
    }
    slots_free(&sd);
    if (sd.failed) {
        blast_error_set(err, sd.err.code, sd.err.source, sd.err.line, sd.err.column, "%s",
                        sd.err.text);
        return sd.failed;
    }
    return 0;
}

static void print_summary(const struct run *r, double secs)
{
    if (r->opt.quiet)
        return;
    if (r->opt.dry_run != NULL) {
        fprintf(stderr,
                "blast: %s: %zu rendered into %s, %zu invalid, %zu duplicate, %zu suppressed; "
                "report: %s\n",
                r->c->name, report_count(r->report, REPORT_RENDERED), r->opt.dry_run,
                report_count(r->report, REPORT_INVALID), report_count(r->report, REPORT_DUPLICATE),
                report_count(r->report, REPORT_SUPPRESSED), r->report_path);
        return;
    }
    fprintf(stderr,
            "blast: %s: %zu delivered, %zu deferred, %zu failed, %zu unknown, %zu invalid, "
            "%zu duplicate, %zu suppressed in %.1f s%s; report: %s\n",
            r->c->name, report_count(r->report, REPORT_DELIVERED),
            report_count(r->report, REPORT_DEFERRED), report_count(r->report, REPORT_FAILED),
            report_count(r->report, REPORT_UNKNOWN), report_count(r->report, REPORT_INVALID),
            report_count(r->report, REPORT_DUPLICATE), report_count(r->report, REPORT_SUPPRESSED),
            secs, r->has_test_to ? " (test send)" : "", r->report_path);
}

/* Exit code of a finished run (DESIGN.md §4). */
static int exit_code(const struct run *r)
{
    size_t delivered = report_count(r->report, REPORT_DELIVERED);
    size_t undone =
        report_count(r->report, REPORT_DEFERRED) + report_count(r->report, REPORT_FAILED) +
        report_count(r->report, REPORT_UNKNOWN) + report_count(r->report, REPORT_INVALID);

    if (interrupted)
        return BLAST_EXIT_INTERRUPTED;
    if (r->relay_down && delivered == 0)
        return BLAST_EXIT_NO_RELAY;
    /* duplicates and suppressed recipients are skipped by rule */
    return undone == 0 ? BLAST_EXIT_OK : BLAST_EXIT_INCOMPLETE;
}

/* Steps 1 and 2: everything that can be refused before a connection is opened. */
static int prepare(struct run *r, struct blast_error *err)
{
    size_t i;
    int rc;

    if ((rc = prepare_open(r->opt.campaign, &r->p, err)) < 0)
        return rc;
    r->c = r->p.c;
    if ((rc = refuse_unsupported(r->c, err)) < 0 || (rc = validate(r, err)) < 0)
        return rc;
    if (r->opt.to != NULL) {
        struct blast_error aerr;
        blast_error_clear(&aerr);
        if (address_parse(r->opt.to, &r->test_to, &aerr) < 0)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "send: --to: %s", aerr.text);
        r->has_test_to = true;
    }
    if (r->opt.dry_run != NULL && mkdir(r->opt.dry_run, 0755) != 0 && errno != EEXIST)
        return blast_error_set(err, BLAST_EIO, r->opt.dry_run, 0, 0, "cannot create: %s",
                               strerror(errno));
    /* every relay's secret must be there before anything connects */
    for (i = 0; r->opt.dry_run == NULL && i < r->c->nrelays; i++)
        if ((rc = campaign_relay_password_check(r->c, &r->c->relays[i], &r->log, err)) < 0)
            return rc;
    return make_report_path(r, err);
}

/* Step 3: the first relay that lets us in carries the campaign. */
static int open_first_relay(struct run *r, struct blast_error *err)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < r->c->nrelays; i++) {
        struct blast_error e;
        blast_error_clear(&e);
        forget_password(r);
        conn_tls_free(r->tls);
        r->tls = NULL;
        if ((rc = campaign_relay_password(r->c, &r->c->relays[i], &r->log, &r->password, err)) < 0)
            return BLAST_EINVAL;
        if ((rc = connect_relay(r, &r->c->relays[i], &e)) == 0)
            return 0;
        if (i + 1 < r->c->nrelays)
            log_msg(&r->log, LOG_LEVEL_WARN, "%s:%d:%d: %s; trying the next relay", e.source,
                    e.line, e.column, e.text);
        else
            blast_error_set(err, e.code, e.source, e.line, e.column, "%s", e.text);
    }
    return rc;
}

int cmd_send(int argc, char **argv)
{
    struct run r;
    struct blast_error err;
    struct report_info info;
    struct sigaction sa;
    int64_t t0 = timeutil_mono_ms();
    int code = BLAST_EXIT_USAGE, rc;

    memset(&r, 0, sizeof r);
    compose_result_init(&r.msg);
    screen_result_init(&r.who);
    blast_error_clear(&err);
    rc = parse_args(argc, argv, &r.opt);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&r.log, cli_log_level(r.opt.quiet, r.opt.verbose));

    if ((rc = prepare(&r, &err)) < 0)
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
    if (r.opt.dry_run == NULL && (rc = open_first_relay(&r, &err)) < 0) {
        cli_error(&err);
        code = rc == BLAST_EINVAL ? BLAST_EXIT_USAGE : BLAST_EXIT_NO_RELAY;
        goto out;
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
    close_session(&r, true);
    print_summary(&r, (double)(timeutil_mono_ms() - t0) / 1000.0);
    code = exit_code(&r);
    rc = report_commit(r.report, &err);
    r.report = NULL;
    if (rc < 0) {
        cli_error(&err);
        code = r.attempted > 0 ? BLAST_EXIT_INCOMPLETE : BLAST_EXIT_USAGE;
    }
    goto out;
fail:
    cli_error(&err);
    code = BLAST_EXIT_USAGE;
out:
    run_free(&r);
    return code;
}
