/*
 * journal - `blast journal compact`: a campaign's journals rewritten to what their
 * rows need (core/journal, journal_compact()), for an operator or a cron job; and
 * the line that says what a compaction did, which `send` prints too when it
 * compacts on its own at the end of a run that left every recipient final.
 */
#include "cli.h"
#include "prepare.h"
#include "../../core/journal.h"
#include "../../core/timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char cli_journal_usage[] =
    "usage: blast journal compact CAMPAIGN.yml [--quiet]\n"
    "       blast journal compact --journal PATH [--quiet]\n"
    "\n"
    "Rewrite a campaign's journal, and the journals of its shards beside it, to\n"
    "what a resume, the report and the bounce intake need: the last record of\n"
    "each row, those of rows in a final state packed and compressed (about 50\n"
    "bytes a recipient instead of 800). The new journal is made durable beside the\n"
    "old one and renamed over it: a crash leaves one or the other, whole. 'send'\n"
    "does this on its own when a run leaves every recipient in a final state\n"
    "(unless --no-compact). A journal a running send holds is left alone.\n"
    "\n"
    "options:\n"
    "  --journal PATH   compact this journal file (instead of a campaign's)\n"
    "  -q, --quiet      print errors only\n"
    "  -h, --help       this text\n"
    "\n"
    "exit codes: 0 compacted (or no journal to compact); 1 a journal could not be\n"
    "compacted (held by a running send, or a read or write error: it is left as\n"
    "it was); 2 usage or campaign error.\n";

struct journal_opts {
    const char *campaign;
    const char *journal;
    bool quiet;
};

static int parse_args(int argc, char **argv, struct journal_opts *o)
{
    static const struct option longopts[] = {
        {"journal", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o->journal = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            fputs(cli_journal_usage, stdout);
            return 1;
        default:
            cli_bad_option("journal", argv, optopt);
            return -1;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "compact") != 0) {
        if (optind < argc)
            cli_fail("journal: no command '%s' (there is 'compact')", argv[optind]);
        else
            cli_fail("journal: usage: blast journal compact CAMPAIGN.yml | --journal PATH");
        return -1;
    }
    optind++;
    if (o->journal == NULL && argc - optind != 1) {
        cli_fail("journal: compact takes one campaign file, or --journal PATH");
        return -1;
    }
    if (o->journal != NULL && argc - optind != 0) {
        cli_fail("journal: compact takes a campaign file or --journal PATH, not both");
        return -1;
    }
    o->campaign = o->journal == NULL ? argv[optind] : NULL;
    return 0;
}

void cli_log_compaction(const struct log *lg, const char *path, const struct journal_compaction *st,
                        double secs)
{
    log_msg(lg, LOG_LEVEL_INFO,
            "%s: compacted in %.1f s: %zu records, %lld bytes -> %zu rows (%zu packed, %zu as "
            "they were), %lld bytes (%.0f bytes a row)",
            path, secs, st->records_before, (long long)st->bytes_before, st->rows, st->packed,
            st->plain, (long long)st->bytes_after,
            st->rows > 0 ? (double)st->bytes_after / (double)st->rows : 0.0);
}

/* One journal file (silent_missing: say nothing when it is not there). Returns an exit code. */
static int compact_one(const char *path, const struct log *lg, bool quiet, bool silent_missing)
{
    struct journal_options jo;
    struct journal_compaction st;
    struct journal *j = NULL;
    struct blast_error err;
    struct stat sb;
    int64_t t0 = timeutil_mono_ms();
    int code = BLAST_EXIT_OK;

    blast_error_clear(&err);
    /* opening would make it: a campaign never sent has nothing to compact */
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) {
            if (!quiet && !silent_missing)
                log_msg(lg, LOG_LEVEL_INFO, "%s: no journal: nothing to compact", path);
            return BLAST_EXIT_OK;
        }
        cli_fail("%s: %s", path, strerror(errno));
        return BLAST_EXIT_INCOMPLETE;
    }
    memset(&jo, 0, sizeof jo);
    jo.log = lg;
    jo.durable = true;
    jo.lock = true;
    jo.no_run = true;
    if (journal_open(path, &jo, &j, &err) < 0 || journal_compact(j, &st, &err) < 0) {
        cli_error(&err);
        cli_fail("%s: not compacted; it is as it was", path);
        code = BLAST_EXIT_INCOMPLETE;
    } else if (!quiet) {
        cli_log_compaction(lg, path, &st, (double)(timeutil_mono_ms() - t0) / 1000.0);
    }
    journal_close(j);
    return code;
}

int cmd_journal(int argc, char **argv)
{
    struct journal_opts o;
    struct campaign *c = NULL;
    struct blast_error err;
    struct log lg;
    glob_t shards;
    char *own = NULL;
    size_t i;
    int rc, code;

    if ((rc = parse_args(argc, argv, &o)) != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&lg, cli_log_level(o.quiet, 0));
    if (o.journal != NULL)
        return compact_one(o.journal, &lg, o.quiet, false);
    blast_error_clear(&err);
    memset(&shards, 0, sizeof shards);
    if (campaign_load(o.campaign, &c, &err) < 0) {
        cli_error(&err);
        return BLAST_EXIT_USAGE;
    }
    if ((own = prepare_journal_of(c)) == NULL || prepare_shard_journals(own, &shards) < 0) {
        cli_fail("journal: out of memory");
        code = BLAST_EXIT_USAGE;
        goto out;
    }
    code = compact_one(own, &lg, o.quiet, shards.gl_pathc > 0);
    for (i = 0; i < shards.gl_pathc; i++) {
        int k = compact_one(shards.gl_pathv[i], &lg, o.quiet, false);
        if (k > code)
            code = k;
    }
out:
    globfree(&shards);
    free(own);
    campaign_free(c);
    return code;
}
