/*
 * suppress - `blast suppress DATABASE list|export|add|remove`: the suppression
 * database that campaigns name with suppression_db, for an operator (core/suppressdb).
 */
#include "cli.h"
#include "../../core/suppressdb.h"
#include "../../core/timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cli_suppress_usage[] =
    "usage: blast suppress DATABASE list [--format text|csv]\n"
    "       blast suppress DATABASE export\n"
    "       blast suppress DATABASE add ADDRESS... [--class CLASS] [--rule RULE]\n"
    "                                   [--campaign NAME]\n"
    "       blast suppress DATABASE remove ADDRESS...\n"
    "       blast suppress DATABASE import FILE [--class CLASS] [--rule RULE]\n"
    "                                   [--campaign NAME]\n"
    "\n"
    "The suppression database that campaigns name with suppression_db: every\n"
    "campaign skips its addresses (reported 'suppressed' with the entry's class).\n"
    "\n"
    "commands:\n"
    "  list      every entry, ordered by address: address, class, rule, campaign,\n"
    "            day; --format csv as export\n"
    "  export    RFC 4180 CSV with a header row: address, class, rule, campaign,\n"
    "            time (RFC 3339), source; a text field that starts with = + - @, a\n"
    "            tab or a carriage return gets a leading '\n"
    "  add       add entries, or replace an address's entry; the database is made\n"
    "            when it is not there (mode 0600). --class is manual (the default),\n"
    "            hard, soft, complaint or unsubscribe; --rule says why (default\n"
    "            \"manual\")\n"
    "  remove    remove entries: an operator's decision, a data-protection request\n"
    "  import    add every address of FILE (one a line; blank lines and lines that\n"
    "            start with # skipped), all or none: a line that is not an address\n"
    "            stops it, naming FILE:LINE, and nothing is added\n"
    "\n"
    "options:\n"
    "  --format FORMAT  list's: text (the default) or csv\n"
    "  --class CLASS    add's and import's: manual (the default), hard, soft,\n"
    "                   complaint or unsubscribe\n"
    "  --rule RULE      add's and import's: why (default \"manual\")\n"
    "  --campaign NAME  add's and import's: the campaign the entries are for\n"
    "  -h, --help       this text\n"
    "\n"
    "exit codes: 0 done; 1 an address to remove had no entry (the others were\n"
    "removed); 2 usage error, an address that is not one, or a database that cannot\n"
    "be opened or is not blast's.\n";

enum action { LIST, EXPORT, ADD, REMOVE, IMPORT };

struct suppress_opts {
    const char *db;
    enum action action;
    bool csv;
    enum suppress_class class;
    const char *rule, *campaign;
    char **addresses;
    int naddresses;
};

static int parse_action(const char *word, enum action *out)
{
    static const char *const names[] = {"list", "export", "add", "remove", "import"};
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(word, names[i]) == 0) {
            *out = (enum action)i;
            return 0;
        }
    cli_fail("suppress: no command '%s': list, export, add, remove or import", word);
    return -1;
}

static int parse_args(int argc, char **argv, struct suppress_opts *o)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'}, {"class", required_argument, NULL, 'c'},
        {"rule", required_argument, NULL, 'r'},   {"campaign", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c, k;

    memset(o, 0, sizeof *o);
    o->class = SUPPRESS_MANUAL;
    o->rule = "manual";
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "text") != 0) {
                cli_fail("suppress: --format is text or csv, not '%s'", optarg);
                return -1;
            }
            o->csv = strcmp(optarg, "csv") == 0;
            break;
        case 'c':
            if ((k = suppress_class_parse(optarg)) < 0) {
                cli_fail("suppress: --class is manual, hard, soft, complaint or unsubscribe, "
                         "not '%s'",
                         optarg);
                return -1;
            }
            o->class = (enum suppress_class)k;
            break;
        case 'r':
            o->rule = optarg;
            break;
        case 'n':
            o->campaign = optarg;
            break;
        case 'h':
            fputs(cli_suppress_usage, stdout);
            return 1;
        default:
            cli_bad_option("suppress", argv, optopt);
            return -1;
        }
    }
    if (argc - optind < 2) {
        cli_fail("suppress: usage: blast suppress DATABASE list|export|add|remove [ADDRESS...]");
        return -1;
    }
    o->db = argv[optind];
    if (parse_action(argv[optind + 1], &o->action) < 0)
        return -1;
    o->addresses = argv + optind + 2;
    o->naddresses = argc - optind - 2;
    if ((o->action == ADD || o->action == REMOVE) && o->naddresses == 0) {
        cli_fail("suppress: %s needs at least one address", o->action == ADD ? "add" : "remove");
        return -1;
    }
    if (o->action == IMPORT && o->naddresses != 1) {
        cli_fail("suppress: import takes one file");
        return -1;
    }
    if ((o->action == LIST || o->action == EXPORT) && o->naddresses > 0) {
        cli_fail("suppress: unexpected argument '%s'", o->addresses[0]);
        return -1;
    }
    return 0;
}

static int print_text(void *arg, const struct suppress_entry *e)
{
    char when[40] = "";

    (void)arg;
    if (e->time > 0) {
        timeutil_rfc3339((struct timeutil_stamp){(time_t)e->time, 0}, when, sizeof when);
        when[10] = '\0';
    }
    printf("%-40s %-11s %-24s %-20s %s\n", e->address, suppress_class_name(e->class),
           e->rule != NULL ? e->rule : "-", e->campaign != NULL ? e->campaign : "-",
           when[0] != '\0' ? when : "-");
    return ferror(stdout) ? BLAST_EIO : 0;
}

static int print_csv(void *arg, const struct suppress_entry *e)
{
    char when[40] = "";

    (void)arg;
    if (e->time > 0)
        timeutil_rfc3339((struct timeutil_stamp){(time_t)e->time, 0}, when, sizeof when);
    cli_csv_field(stdout, e->address, true);
    fputc(',', stdout);
    cli_csv_field(stdout, suppress_class_name(e->class), true);
    fputc(',', stdout);
    cli_csv_field(stdout, e->rule != NULL ? e->rule : "", true);
    fputc(',', stdout);
    cli_csv_field(stdout, e->campaign != NULL ? e->campaign : "", true);
    fputc(',', stdout);
    cli_csv_field(stdout, when, false);
    fputc(',', stdout);
    cli_csv_field(stdout, e->source != NULL ? e->source : "", true);
    fputs("\r\n", stdout);
    return ferror(stdout) ? BLAST_EIO : 0;
}

/* add or remove each address; returns the exit code. */
static int change(struct suppressdb *db, const struct suppress_opts *o)
{
    struct blast_error err;
    int i, code = BLAST_EXIT_OK;

    for (i = 0; i < o->naddresses; i++) {
        blast_error_clear(&err);
        if (o->action == ADD) {
            struct suppress_entry e = {o->addresses[i],     o->class, o->rule, o->campaign,
                                       (int64_t)time(NULL), NULL};
            if (suppressdb_add(db, &e, &err) < 0) {
                cli_error(&err);
                return BLAST_EXIT_USAGE;
            }
        } else {
            bool removed = false;
            if (suppressdb_remove(db, o->addresses[i], &removed, &err) < 0) {
                cli_error(&err);
                return BLAST_EXIT_USAGE;
            }
            if (!removed) {
                cli_fail("suppress: %s had no entry", o->addresses[i]);
                code = BLAST_EXIT_INCOMPLETE;
            }
        }
    }
    return code;
}

/* import: every address of the file in one transaction; returns the exit code. */
static int import(struct suppressdb *db, const struct suppress_opts *o)
{
    const char *path = o->addresses[0];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    struct blast_error err;
    char *line = NULL;
    size_t cap = 0, lineno = 0, added = 0;
    ssize_t n;
    int rc = 0;

    blast_error_clear(&err);
    if (f == NULL) {
        cli_fail("suppress: cannot read %s: %s", path, strerror(errno));
        return BLAST_EXIT_USAGE;
    }
    if ((rc = suppressdb_begin(db, &err)) == 0) {
        int64_t now = (int64_t)time(NULL);
        while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
            struct suppress_entry e = {line, o->class, o->rule, o->campaign, now, NULL};
            lineno++;
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0' || line[0] == '#')
                continue;
            if ((rc = suppressdb_add(db, &e, &err)) == BLAST_EINVAL) {
                char why[BLAST_ERROR_TEXT_MAX];
                snprintf(why, sizeof why, "%s", err.text);
                blast_error_replace(&err, rc, path, (int)lineno, 0, "%s", why);
            }
            added += rc == 0;
        }
        if (rc == 0 && ferror(f))
            rc = blast_error_set(&err, BLAST_EIO, path, 0, 0, "read error");
        if (rc == 0)
            rc = suppressdb_commit(db, &err);
        else
            suppressdb_rollback(db);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    if (rc < 0) {
        cli_error(&err);
        cli_fail("suppress: nothing was imported");
        return BLAST_EXIT_USAGE;
    }
    fprintf(stderr, "blast: suppress: %zu addresses imported from %s\n", added, path);
    return BLAST_EXIT_OK;
}

int cmd_suppress(int argc, char **argv)
{
    struct suppress_opts o;
    struct suppressdb *db = NULL;
    struct blast_error err;
    int rc, code;

    if ((rc = parse_args(argc, argv, &o)) != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    blast_error_clear(&err);
    if (suppressdb_open(o.db, o.action == ADD || o.action == IMPORT, &db, &err) < 0) {
        cli_error(&err);
        return BLAST_EXIT_USAGE;
    }
    if (o.action == ADD || o.action == REMOVE) {
        code = change(db, &o);
    } else if (o.action == IMPORT) {
        code = import(db, &o);
    } else {
        bool csv = o.csv || o.action == EXPORT;
        if (csv)
            fputs("address,class,rule,campaign,time,source\r\n", stdout);
        rc = suppressdb_each(db, csv ? print_csv : print_text, NULL, &err);
        if (rc == 0 && fflush(stdout) != 0)
            rc = BLAST_EIO;
        if (rc < 0 && err.code == 0)
            blast_error_set(&err, rc, "standard output", 0, 0, "cannot write");
        if (rc < 0)
            cli_error(&err);
        code = rc < 0 ? BLAST_EXIT_USAGE : BLAST_EXIT_OK;
    }
    suppressdb_close(db);
    return code;
}
