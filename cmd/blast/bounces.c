/*
 * bounces - `blast bounces CAMPAIGN.yml...`: read the bounce mailbox a campaign
 * names ('bounces' in the campaign file) and record what came back in its
 * suppression database (core/intake).
 *
 * Every campaign given takes part in attribution (its return_path secret, its
 * journal, its List-Unsubscribe address); those that name a mailbox must name the
 * same one and the same database. Meant for cron, beside `blast send`: bounded by
 * --limit and --deadline, stopped cleanly by SIGINT or SIGTERM.
 */
#include "cli.h"
#include "prepare.h"
#include "../../core/buf.h"
#include "../../core/intake.h"
#include "../../core/secret.h"
#include "../../core/timeutil.h"

#include <getopt.h>
#include <glob.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_bounces_usage[] =
    "usage: blast bounces CAMPAIGN.yml... [--limit N] [--deadline DURATION]\n"
    "                     [--quiet] [-v] [--log-format text|json]\n"
    "\n"
    "Read the bounce mailbox that the campaigns name ('bounces' in the campaign file)\n"
    "over IMAP or POP3, and record what came back in their suppression database:\n"
    "bounces, spam complaints, automatic replies, unsubscribe requests\n"
    "(docs/bounces.md). A message is flagged, moved or deleted on the server only\n"
    "once what it says is committed; one that cannot be read or says nothing about a\n"
    "recipient of these campaigns stays on the server.\n"
    "\n"
    "Give every campaign whose bounces may be in the mailbox: its return_path secret\n"
    "checks VERP tokens, its journal tells which address a row or Message-ID was.\n"
    "\n"
    "options:\n"
    "  --limit N            read at most N messages this run\n"
    "  --deadline DURATION  start no message after DURATION (90s, 5m)\n"
    "  -q, --quiet          no summary line\n"
    "  -v, --verbose        say what each message was\n"
    "  --log-format FORMAT  text (the default) or json: one JSON object a line\n"
    "  -h, --help           this text\n"
    "\n"
    "exit codes: 0 done; 1 done, but some messages could not be read (left on the\n"
    "server); 2 usage or campaign error, or the database failed; 3 interrupted; 4 the\n"
    "mailbox cannot be reached, refused the login or failed a command (what was\n"
    "committed stays committed: run it again).\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    if (interrupted)
        _exit(BLAST_EXIT_INTERRUPTED); /* the second: at once; the database is transactions */
    interrupted = sig;
}

struct bounces_opts {
    char **campaigns;
    int ncampaigns;
    long limit;
    long deadline_ms;
    bool quiet;
    int verbose;
};

static int parse_args(int argc, char **argv, struct bounces_opts *o)
{
    enum { O_LIMIT = 256, O_DEADLINE, O_LOG_FORMAT };
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, O_LIMIT},
        {"deadline", required_argument, NULL, O_DEADLINE},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
        switch (c) {
        case O_LIMIT:
            if (cli_positive("bounces", "limit", optarg, &o->limit) < 0)
                return -1;
            break;
        case O_DEADLINE:
            if (campaign_parse_duration(optarg, &o->deadline_ms) < 0) {
                cli_fail("bounces: --deadline needs a duration such as 90s or 5m, not '%s'",
                         optarg);
                return -1;
            }
            break;
        case O_LOG_FORMAT:
            if (cli_log_format("bounces", optarg) < 0)
                return -1;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'v':
            o->verbose++;
            break;
        case 'h':
            fputs(cli_bounces_usage, stdout);
            return 1;
        default:
            cli_bad_option("bounces", argv, optopt);
            return -1;
        }
    }
    if (optind >= argc) {
        cli_fail("bounces: which campaigns? (blast bounces CAMPAIGN.yml...)");
        return -1;
    }
    o->campaigns = argv + optind;
    o->ncampaigns = argc - optind;
    return 0;
}

struct bounces_run {
    struct bounces_opts opt;
    struct log log;
    struct campaign **c;
    struct intake_campaign *ic;
    char **journals;
    glob_t *shard_journals;         /* per campaign: NAME.shard-I-of-N.journal (send --shard) */
    const struct campaign *mailbox; /* the campaign whose 'bounces' is read */
    char *secret;                   /* the mailbox's */
    struct suppressdb *db;
    struct mailbox *mb;
    struct intake *in;
};

static void run_free(struct bounces_run *r)
{
    intake_free(r->in);
    mailbox_close(r->mb);
    suppressdb_close(r->db);
    if (r->secret != NULL) {
        OPENSSL_cleanse(r->secret, strlen(r->secret));
        free(r->secret);
    }
    for (int i = 0; r->ic != NULL && i < r->opt.ncampaigns; i++)
        if (r->ic[i].secret != NULL) {
            OPENSSL_cleanse((char *)r->ic[i].secret, r->ic[i].secret_len);
            free((char *)r->ic[i].secret);
        }
    for (int i = 0; r->c != NULL && i < r->opt.ncampaigns; i++)
        campaign_free(r->c[i]);
    for (int i = 0; r->journals != NULL && i < r->opt.ncampaigns; i++)
        free(r->journals[i]);
    free(r->journals);
    for (int i = 0; r->shard_journals != NULL && i < r->opt.ncampaigns; i++)
        globfree(&r->shard_journals[i]);
    free(r->shard_journals);
    free(r->ic);
    free(r->c);
}

/* Load the campaigns and check that those naming a mailbox agree. Returns an exit code or 0. */
static int load(struct bounces_run *r, struct blast_error *err)
{
    int n = r->opt.ncampaigns;

    r->c = calloc((size_t)n, sizeof *r->c);
    r->ic = calloc((size_t)n, sizeof *r->ic);
    r->journals = calloc((size_t)n, sizeof *r->journals);
    r->shard_journals = calloc((size_t)n, sizeof *r->shard_journals);
    if (r->c == NULL || r->ic == NULL || r->journals == NULL || r->shard_journals == NULL) {
        cli_fail("bounces: out of memory");
        return BLAST_EXIT_USAGE;
    }
    for (int i = 0; i < n; i++) {
        struct campaign *c;
        if (campaign_load(r->opt.campaigns[i], &r->c[i], err) < 0) {
            cli_error(err);
            return BLAST_EXIT_USAGE;
        }
        c = r->c[i];
        if ((r->journals[i] = prepare_journal_of(c)) == NULL ||
            prepare_shard_journals(r->journals[i], &r->shard_journals[i]) < 0) {
            cli_fail("bounces: out of memory");
            return BLAST_EXIT_USAGE;
        }
        r->ic[i] = (struct intake_campaign){c,
                                            NULL,
                                            0,
                                            r->journals[i],
                                            (const char *const *)r->shard_journals[i].gl_pathv,
                                            r->shard_journals[i].gl_pathc};
        if (c->return_path.address != NULL) {
            char *s = NULL;
            if (secret_return_path(c, &r->log, &s, err) < 0) {
                cli_error(err);
                return BLAST_EXIT_USAGE;
            }
            r->ic[i].secret = s;
            r->ic[i].secret_len = strlen(s);
        }
        if (c->bounces.url == NULL)
            continue;
        if (r->mailbox == NULL) {
            r->mailbox = c;
        } else if (strcmp(r->mailbox->bounces.url, c->bounces.url) != 0 ||
                   strcmp(r->mailbox->bounces.username, c->bounces.username) != 0) {
            blast_error_set(err, BLAST_EINVAL, c->path, c->bounces.url_place.line,
                            c->bounces.url_place.column,
                            "'bounces' names another mailbox than %s does: run blast bounces "
                            "once per mailbox",
                            r->mailbox->path);
            cli_error(err);
            return BLAST_EXIT_USAGE;
        }
        if (strcmp(c->suppression_db, r->mailbox->suppression_db) != 0) {
            blast_error_set(err, BLAST_EINVAL, c->path, c->bounces.place.line,
                            c->bounces.place.column,
                            "the campaigns that read one mailbox must name one suppression_db");
            cli_error(err);
            return BLAST_EXIT_USAGE;
        }
    }
    if (r->mailbox == NULL) {
        cli_fail("bounces: none of the campaigns names a bounce mailbox ('bounces' in the "
                 "campaign file, docs/bounces.md)");
        return BLAST_EXIT_USAGE;
    }
    return 0;
}

static int open_all(struct bounces_run *r, struct mailbox_options *mo, struct blast_error *err)
{
    const struct campaign_bounces *b = &r->mailbox->bounces;
    struct secret_source src;

    secret_bounces_source(r->mailbox, &src);
    if (secret_fetch(&src, &r->log, &r->secret, err) < 0) {
        cli_error(err);
        return BLAST_EXIT_USAGE;
    }
    if (suppressdb_open(r->mailbox->suppression_db, true, &r->db, err) < 0) {
        cli_error(err);
        return BLAST_EXIT_USAGE;
    }
    *mo = (struct mailbox_options){b->url,     b->pop3,    b->username,
                                   r->secret,  b->xoauth2, b->verify,
                                   b->ca_file, 60000,      b->after == CAMPAIGN_BOUNCES_SEEN};
    if (mailbox_open(mo, &r->mb, err) < 0) {
        cli_error(err);
        return BLAST_EXIT_USAGE;
    }
    return 0;
}

static void summary(const struct bounces_run *r, const struct intake_stats *st)
{
    char classes[256] = "";
    size_t used = 0;

    for (int k = 0; k < BOUNCE_CLASS_COUNT; k++)
        if (st->by_class[k] > 0 && used < sizeof classes)
            used += (size_t)snprintf(classes + used, sizeof classes - used, "%s%s %zu",
                                     used ? ", " : " (", bounce_class_name(k), st->by_class[k]);
    if (used > 0 && used < sizeof classes - 1)
        snprintf(classes + used, sizeof classes - used, ")");
    log_msg(&r->log, LOG_LEVEL_INFO,
            "bounces: %zu listed, %zu read, %zu recorded, %zu recorded before, %zu ignored, "
            "%zu unreadable; %zu event%s%s; %zu suppressed; %zu %s",
            st->listed, st->read, st->recorded, st->again, st->ignored, st->errors, st->events,
            st->events == 1 ? "" : "s", classes, st->suppressed, st->finished,
            r->mailbox->bounces.after == CAMPAIGN_BOUNCES_SEEN   ? "flagged \\Seen"
            : r->mailbox->bounces.after == CAMPAIGN_BOUNCES_MOVE ? "moved"
                                                                 : "deleted");
}

int cmd_bounces(int argc, char **argv)
{
    struct bounces_run r;
    struct mailbox_options mo;
    struct intake_stats st;
    struct blast_error err;
    struct sigaction sa;
    int rc;

    memset(&r, 0, sizeof r);
    memset(&st, 0, sizeof st);
    blast_error_clear(&err);
    rc = parse_args(argc, argv, &r.opt);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&r.log, cli_log_level(r.opt.quiet, r.opt.verbose));
    if ((rc = load(&r, &err)) != 0 || (rc = open_all(&r, &mo, &err)) != 0)
        goto out;
    const struct campaign_bounces *b = &r.mailbox->bounces;
    struct intake_options io = {r.ic,
                                (size_t)r.opt.ncampaigns,
                                r.db,
                                b->url,
                                b->after,
                                b->folder,
                                !b->pop3 && b->after == CAMPAIGN_BOUNCES_SEEN,
                                b->soft_count,
                                b->soft_window,
                                (size_t)r.opt.limit,
                                r.opt.deadline_ms > 0 ? timeutil_mono_ms() + r.opt.deadline_ms : 0,
                                (size_t)25 << 20,
                                &interrupted,
                                NULL,
                                &r.log};
    if (intake_new(&io, &r.in, &err) < 0) {
        cli_error(&err);
        rc = BLAST_EXIT_USAGE;
        goto out;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = intake_run(r.in, r.mb, &st, &err);
    if (!r.opt.quiet)
        summary(&r, &st);
    if (rc < 0) {
        cli_error(&err);
        /* the server's failures are 4; the database's and memory's 2 */
        rc = err.code == BLAST_ECONNECT || err.code == BLAST_ETLS || err.code == BLAST_EAUTH ||
                     err.code == BLAST_ETIMEOUT || err.code == BLAST_EPROTO
                 ? BLAST_EXIT_NO_RELAY
                 : BLAST_EXIT_USAGE;
    } else if (interrupted) {
        rc = BLAST_EXIT_INTERRUPTED;
    } else {
        rc = st.errors > 0 ? BLAST_EXIT_INCOMPLETE : BLAST_EXIT_OK;
    }
out:
    run_free(&r);
    return rc;
}
