/*
 * prune - `blast prune [--older-than AGE] [--dry-run] PATH...`: remove the files blast
 * keeps for campaigns (docs/files.md, "Retention"): their journals and locks, the
 * shards' journals, the reports and the shards' reports, the temporary files a crash
 * leaves, and the dry-run directories that name them (core/retention finds them).
 *
 * A campaign's files go together: with --older-than, all of them when the newest is
 * older than AGE, none otherwise. A campaign that a `blast send` is running (its
 * journal's lock held) is skipped. Removes no symbolic link, no campaign file, list,
 * template, attachment or suppression database, nothing blast did not name. Every
 * operand is checked before anything is removed. Meant for cron.
 */
#include "cli.h"
#include "../../core/retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char cli_prune_usage[] =
    "usage: blast prune [--older-than AGE] [--dry-run] [--quiet] PATH...\n"
    "\n"
    "Remove the files blast keeps for campaigns (docs/files.md): the journal and its\n"
    "lock, the shards' journals and locks, what a journal's compaction left, the\n"
    "report and the shards' reports (.gz too), the temporary files of a report, and\n"
    "the dry-run directories that name the campaign (send --dry-run DIR: the\n"
    "messages and the marker, then DIR when nothing else is in it). Never the\n"
    "campaign file, its list, templates or attachments, the suppression database, a\n"
    "symbolic link, or a file blast did not write.\n"
    "\n"
    "PATH is a campaign file (its files, and the dry-run directories beside it that\n"
    "name it), a dry-run directory, or a directory: every campaign file (*.yml,\n"
    "*.yaml) and dry-run directory directly in it, with --older-than only.\n"
    "A campaign that a blast send is running (its journal's lock held) is skipped.\n"
    "\n"
    "options:\n"
    "  --older-than AGE     only the campaigns whose newest file is older than AGE\n"
    "                       (30d, 12h, 1d12h): a campaign's files go together, or\n"
    "                       none of them\n"
    "  --dry-run            say what would be removed; remove nothing\n"
    "  -q, --quiet          nothing but errors: no list, no total, no warnings\n"
    "  --log-format FORMAT  text (the default) or json: errors and warnings as JSON\n"
    "                       lines\n"
    "  -h, --help           this text\n"
    "\n"
    "Each file removed is a line on standard output, \"removed PATH (SIZE)\", then\n"
    "\"total: removed N files, B bytes\".\n"
    "\n"
    "exit codes: 0 done; 1 a campaign was skipped (a send holds its lock) or a file\n"
    "could not be removed; 2 usage error, or a PATH that is none of these (nothing\n"
    "is removed).\n";

struct prune_opts {
    long older_ms; /* 0: no --older-than */
    bool dry_run;
    bool quiet;
    char **paths;
    int npaths;
};

/* A file by its device and inode. */
struct ident {
    dev_t dev;
    ino_t ino;
    bool used;
};

/* A set of files: open addressing, cap a power of two, at most half full. */
struct idset {
    struct ident *v;
    size_t n, cap;
};

/* A dry-run directory: its entries, whether it is removed once empty. */
struct dry_dir {
    char *path;
    struct retention_list files;
    bool via_link; /* named through a symbolic link: the link is not removed */
};

/* What is removed together, or not at all: one campaign's files, or one dry run's. */
struct unit {
    char *what; /* "campaign news (news.yml)", "dry-run directory out" */
    struct retention_list files;
    struct dry_dir *dirs;
    size_t ndirs;
    bool broken; /* a directory of its files could not be read: left whole */
};

/* A directory directly in a campaigns' directory that holds a dry-run marker. */
struct found {
    char *path;
    struct stat st;       /* the directory's (lstat) */
    char *campaign_file;  /* the marker's; NULL when the marker is not blast's */
    struct stat campaign; /* that file's, when has_campaign */
    bool has_campaign;
    char *problem; /* why the marker is not blast's */
};

struct prune {
    struct prune_opts opt;
    struct log log;
    struct unit *units;
    size_t nunits;
    char *scanned;       /* the directory whose dry runs found holds, or NULL */
    struct found *found; /* sorted by name */
    size_t nfound;
    struct idset claimed_dirs; /* dry-run directories already in a unit */
    struct idset claimed;      /* files already in a unit */
    struct idset inputs;       /* what the campaigns read: never removed */
    size_t files, dirs;        /* removed (or that would be) */
    unsigned long long bytes;
    int failures;
};

static int parse_args(int argc, char **argv, struct prune_opts *o)
{
    enum { O_OLDER = 256, O_DRY, O_LOG_FORMAT };
    static const struct option longopts[] = {
        {"older-than", required_argument, NULL, O_OLDER},
        {"dry-run", no_argument, NULL, O_DRY},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
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
        case O_OLDER:
            if (campaign_parse_duration(optarg, &o->older_ms) < 0) {
                cli_fail("prune: --older-than needs an age such as 30d, 12h or 1d12h, not '%s'",
                         optarg);
                return -1;
            }
            break;
        case O_DRY:
            o->dry_run = true;
            break;
        case O_LOG_FORMAT:
            if (cli_log_format("prune", optarg) < 0)
                return -1;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            fputs(cli_prune_usage, stdout);
            return 1;
        default:
            cli_bad_option("prune", argv, optopt);
            return -1;
        }
    }
    if (optind >= argc) {
        cli_fail("prune: which campaigns? (blast prune [--older-than AGE] PATH...)");
        return -1;
    }
    o->paths = argv + optind;
    o->npaths = argc - optind;
    return 0;
}

/* ---- sets of files ------------------------------------------------------------------- */

static size_t idset_slot(const struct idset *s, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4FULL;
    size_t i = (size_t)(h ^ (h >> 29)) & (s->cap - 1);

    while (s->v[i].used && (s->v[i].dev != dev || s->v[i].ino != ino))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static bool idset_has(const struct idset *s, dev_t dev, ino_t ino)
{
    return s->cap > 0 && s->v[idset_slot(s, dev, ino)].used;
}

static int idset_add(struct idset *s, dev_t dev, ino_t ino)
{
    size_t i;

    if ((s->n + 1) * 2 > s->cap) {
        struct idset bigger = {NULL, 0, s->cap ? s->cap * 2 : 64};
        if ((bigger.v = calloc(bigger.cap, sizeof *bigger.v)) == NULL)
            return -1;
        for (i = 0; i < s->cap; i++)
            if (s->v[i].used) {
                bigger.v[idset_slot(&bigger, s->v[i].dev, s->v[i].ino)] = s->v[i];
                bigger.n++;
            }
        free(s->v);
        *s = bigger;
    }
    i = idset_slot(s, dev, ino);
    if (!s->v[i].used) {
        s->v[i] = (struct ident){dev, ino, true};
        s->n++;
    }
    return 0;
}

/* The file path names (followed), when it is there. -1 only when out of memory. */
static int idset_add_path(struct idset *s, const char *path)
{
    struct stat st;

    if (path == NULL || stat(path, &st) != 0)
        return 0;
    return idset_add(s, st.st_dev, st.st_ino);
}

/* ---- finding ------------------------------------------------------------------------- */

static void unit_free(struct unit *u)
{
    for (size_t i = 0; i < u->ndirs; i++) {
        free(u->dirs[i].path);
        retention_list_free(&u->dirs[i].files);
    }
    free(u->dirs);
    retention_list_free(&u->files);
    free(u->what);
}

static void found_free(struct prune *p)
{
    for (size_t i = 0; i < p->nfound; i++) {
        free(p->found[i].path);
        free(p->found[i].campaign_file);
        free(p->found[i].problem);
    }
    free(p->found);
    free(p->scanned);
    p->found = NULL;
    p->nfound = 0;
    p->scanned = NULL;
}

static void prune_free(struct prune *p)
{
    for (size_t i = 0; i < p->nunits; i++)
        unit_free(&p->units[i]);
    free(p->units);
    found_free(p);
    free(p->claimed_dirs.v);
    free(p->claimed.v);
    free(p->inputs.v);
}

static struct unit *new_unit(struct prune *p)
{
    struct unit *u = realloc(p->units, (p->nunits + 1) * sizeof *u);

    if (u == NULL)
        return NULL;
    p->units = u;
    u = &p->units[p->nunits++];
    memset(u, 0, sizeof *u);
    return u;
}

/* Add the dry-run directory path to u, unless a unit has it already. -1: out of memory. */
static int add_dry_dir(struct prune *p, struct unit *u, const char *path, const struct stat *st,
                       bool via_link)
{
    struct dry_dir *d;
    struct blast_error err;

    if (idset_has(&p->claimed_dirs, st->st_dev, st->st_ino))
        return 0;
    if (idset_add(&p->claimed_dirs, st->st_dev, st->st_ino) < 0 ||
        (d = realloc(u->dirs, (u->ndirs + 1) * sizeof *d)) == NULL)
        return -1;
    u->dirs = d;
    d = &u->dirs[u->ndirs];
    memset(d, 0, sizeof *d);
    if ((d->path = strdup(path)) == NULL)
        return -1;
    d->via_link = via_link;
    u->ndirs++;
    blast_error_clear(&err);
    if (retention_dry_run_files(path, &d->files, &err) < 0) {
        cli_error(&err);
        u->broken = true;
    }
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * The directories directly in dir that hold a dry-run marker, into p->found (kept for
 * the next campaign of the same directory: a directory of campaigns is read once).
 * Symbolic links are not followed. -1: dir cannot be read (errno); -2: out of memory.
 */
static int scan_dry_runs(struct prune *p, const char *dir)
{
    struct dirent **names = NULL;
    int n, i, rc = 0;

    if (p->scanned != NULL && strcmp(p->scanned, dir) == 0)
        return 0;
    found_free(p);
    if ((n = scandir(dir, &names, NULL, by_name)) < 0)
        return -1;
    if ((p->scanned = strdup(dir)) == NULL ||
        (p->found = calloc((size_t)n, sizeof *p->found)) == NULL)
        rc = -2;
    for (i = 0; i < n && rc == 0; i++) {
        struct found *f = &p->found[p->nfound];
        struct retention_mark m;
        struct blast_error err;
        char text[BLAST_ERROR_SOURCE_MAX + BLAST_ERROR_TEXT_MAX + 32];
        const char *name = names[i]->d_name;
        size_t dn = strlen(dir);
        int got;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (asprintf(&f->path, "%s%s%s", dir, dir[dn - 1] == '/' ? "" : "/", name) < 0) {
            f->path = NULL;
            rc = -2;
            break;
        }
        blast_error_clear(&err);
        if (lstat(f->path, &f->st) != 0 || !S_ISDIR(f->st.st_mode) ||
            (got = retention_mark_read(f->path, &m, &err)) == 0) {
            free(f->path);
            f->path = NULL;
            continue;
        }
        if (got == 1) {
            f->campaign_file = m.campaign_file;
            m.campaign_file = NULL;
            f->has_campaign = stat(f->campaign_file, &f->campaign) == 0;
            retention_mark_free(&m);
        } else if ((f->problem = strdup(blast_error_format(&err, text, sizeof text))) == NULL) {
            rc = -2;
        }
        p->nfound++;
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Whether the dry run f is of the campaign file c_path (the same file, or the same path). */
static bool names_campaign(const struct found *f, const char *c_path, const struct stat *c_st)
{
    char *full;
    bool same;

    if (f->campaign_file == NULL)
        return false;
    if (f->has_campaign)
        return f->campaign.st_dev == c_st->st_dev && f->campaign.st_ino == c_st->st_ino;
    full = realpath(c_path, NULL);
    same = full != NULL && strcmp(full, f->campaign_file) == 0;
    free(full);
    return same;
}

/*
 * The dry-run directories directly in the campaign's directory whose marker names its
 * file, into u. A directory that cannot be read has none. -2: out of memory.
 */
static int find_dry_runs_of(struct prune *p, struct unit *u, const struct campaign *c)
{
    struct stat c_st;
    int rc;

    if (stat(c->path, &c_st) != 0 || (rc = scan_dry_runs(p, c->dir)) == -1)
        return 0;
    for (size_t i = 0; rc == 0 && i < p->nfound; i++)
        if (names_campaign(&p->found[i], c->path, &c_st) &&
            add_dry_dir(p, u, p->found[i].path, &p->found[i].st, false) < 0)
            rc = -2;
    return rc;
}

/* The files the campaign reads, so that none of them is ever taken for one of its own. */
static int protect_inputs(struct prune *p, const struct campaign *c)
{
    static const char *const db_parts[] = {"", "-wal", "-shm", "-journal"};
    int rc = 0;

    rc |= idset_add_path(&p->inputs, c->path);
    rc |= idset_add_path(&p->inputs, c->recipients.path);
    rc |= idset_add_path(&p->inputs, c->body.text);
    rc |= idset_add_path(&p->inputs, c->body.html);
    rc |= idset_add_path(&p->inputs, c->return_path.secret_file);
    for (size_t i = 0; i < c->nsuppression; i++)
        rc |= idset_add_path(&p->inputs, c->suppression[i]);
    for (size_t i = 0; i < c->nattachments; i++)
        rc |= idset_add_path(&p->inputs, c->attachments[i].path);
    for (size_t i = 0; i < c->ninline; i++)
        rc |= idset_add_path(&p->inputs, c->inline_parts[i].path);
    for (size_t i = 0; i < c->ndkim; i++)
        rc |= idset_add_path(&p->inputs, c->dkim[i].key);
    for (size_t i = 0; i < c->nrelays; i++)
        rc |= idset_add_path(&p->inputs, c->relays[i].password_file);
    for (size_t i = 0; c->suppression_db != NULL && i < sizeof db_parts / sizeof db_parts[0]; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s%s", c->suppression_db, db_parts[i]) < 0)
            return -1;
        rc |= idset_add_path(&p->inputs, path);
        free(path);
    }
    return rc;
}

/*
 * The campaign file path: its journal and report (the campaign's settings, else the
 * defaults beside it, as send names them) and what is beside them, and its dry-run
 * directories. Named on the command line (named), a file that does not load is an
 * error (-1); found in a directory, a warning, and skipped. -2: out of memory.
 */
static int add_campaign(struct prune *p, const char *path, bool named)
{
    struct campaign *c = NULL;
    struct blast_error err;
    char *journal = NULL, *report = NULL;
    struct unit *u;
    int rc = -2;

    blast_error_clear(&err);
    if (campaign_load(path, &c, &err) < 0) {
        char text[BLAST_ERROR_SOURCE_MAX + BLAST_ERROR_TEXT_MAX + 32];
        if (named) {
            cli_error(&err);
            return -1;
        }
        log_msg(&p->log, LOG_LEVEL_WARN, "skipped %s: not a campaign blast can read: %s", path,
                blast_error_format(&err, text, sizeof text));
        return 0;
    }
    if (c->journal != NULL)
        journal = strdup(c->journal);
    else if (asprintf(&journal, "%s/.blast/%s.journal", c->dir, c->name) < 0)
        journal = NULL;
    if (c->report != NULL)
        report = strdup(c->report);
    else if (asprintf(&report, "%s/reports/%s.json", c->dir, c->name) < 0)
        report = NULL;
    if (journal == NULL || report == NULL || protect_inputs(p, c) < 0 ||
        (u = new_unit(p)) == NULL || asprintf(&u->what, "campaign %s (%s)", c->name, path) < 0)
        goto out;
    if (retention_campaign_files(journal, report, &u->files, &err) < 0) {
        cli_error(&err);
        u->broken = true;
    }
    if (find_dry_runs_of(p, u, c) < 0)
        goto out;
    rc = 0;
out:
    free(journal);
    free(report);
    campaign_free(c);
    return rc;
}

/* The dry-run directory path, a unit of its own. -2: out of memory. */
static int add_dry_run(struct prune *p, const char *path, const struct stat *st, bool via_link)
{
    struct unit *u;

    if (idset_has(&p->claimed_dirs, st->st_dev, st->st_ino))
        return 0;
    if ((u = new_unit(p)) == NULL || asprintf(&u->what, "dry-run directory %s", path) < 0 ||
        add_dry_dir(p, u, path, st, via_link) < 0)
        return -2;
    return 0;
}

static bool campaign_name(const char *name)
{
    size_t n = strlen(name);

    return (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".yaml") == 0);
}

/*
 * Every campaign file directly in dir, then every dry-run directory directly in it that
 * none of them named. Symbolic links are not followed. -1: dir cannot be read; -2: out
 * of memory.
 */
static int add_directory(struct prune *p, const char *dir)
{
    struct dirent **names = NULL;
    size_t dn = strlen(dir);
    int n = scandir(dir, &names, NULL, by_name), rc = 0, i;

    if (n < 0) {
        cli_fail("prune: %s: cannot read the directory: %s", dir, strerror(errno));
        return -1;
    }
    /* the campaigns first, so that their dry-run directories go with them */
    for (i = 0; i < n && rc == 0; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        char *path = NULL;

        if (!campaign_name(name))
            continue;
        if (asprintf(&path, "%s%s%s", dir, dir[dn - 1] == '/' ? "" : "/", name) < 0)
            rc = -2;
        else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = add_campaign(p, path, false);
        free(path);
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0 && (rc = scan_dry_runs(p, dir)) == -1) {
        cli_fail("prune: %s: cannot read the directory: %s", dir, strerror(errno));
        return -1;
    }
    for (size_t k = 0; rc == 0 && k < p->nfound; k++) {
        const struct found *f = &p->found[k];
        if (f->problem != NULL)
            log_msg(&p->log, LOG_LEVEL_WARN, "skipped %s: %s", f->path, f->problem);
        else
            rc = add_dry_run(p, f->path, &f->st, false);
    }
    return rc;
}

/*
 * One operand: a campaign file, a dry-run directory, or (with --older-than) a
 * directory of them. -1 when it is none of these or cannot be read (a usage error:
 * nothing is removed then); -2 when out of memory.
 */
static int add_operand(struct prune *p, const char *path)
{
    struct retention_mark m;
    struct blast_error err;
    struct stat st, lst;
    int found;

    if (stat(path, &st) != 0) {
        cli_fail("prune: %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode))
        return add_campaign(p, path, true);
    if (!S_ISDIR(st.st_mode)) {
        cli_fail("prune: %s is neither a campaign file nor a directory", path);
        return -1;
    }
    blast_error_clear(&err);
    found = retention_mark_read(path, &m, &err);
    retention_mark_free(&m);
    if (found < 0) {
        cli_error(&err);
        return -1;
    }
    if (found == 1)
        return add_dry_run(p, path, &st, lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode));
    if (p->opt.older_ms == 0) {
        cli_fail("prune: %s is a directory, and every campaign in it is too broad without an "
                 "age: give --older-than AGE (30d), or name the campaign files",
                 path);
        return -1;
    }
    return add_directory(p, path);
}

/* ---- removing ------------------------------------------------------------------------ */

static const char *human(unsigned long long n, char *out, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t i = 0;

    if (n < 1024) {
        snprintf(out, size, "%llu bytes", n);
        return out;
    }
    for (v /= 1024; v >= 1024 && i < 3; i++)
        v /= 1024;
    snprintf(out, size, "%.1f %s", v, units[i]);
    return out;
}

/*
 * Keep what a campaign reads; with claim, drop from l what another unit has already
 * (a campaign's files: two campaign files may name one journal; a dry-run directory
 * is in one unit only, add_dry_dir). -1: out of memory.
 */
static int settle(struct prune *p, struct retention_list *l, bool claim)
{
    size_t kept = 0;

    for (size_t i = 0; i < l->n; i++) {
        struct retention_file *f = &l->files[i];
        if (claim && idset_has(&p->claimed, f->dev, f->ino)) {
            free(f->path);
            continue;
        }
        if (claim && idset_add(&p->claimed, f->dev, f->ino) < 0)
            return -1;
        if (f->keep == RETENTION_REMOVABLE && idset_has(&p->inputs, f->dev, f->ino)) {
            log_msg(&p->log, LOG_LEVEL_WARN, "kept %s: a campaign reads it", f->path);
            f->keep = RETENTION_KEEP_OTHER;
        }
        l->files[kept++] = *f;
    }
    l->n = kept;
    return 0;
}

/* The newest modification among what u would remove; 0 when nothing. */
static time_t newest(const struct unit *u, size_t *count)
{
    time_t t = 0;

    *count = 0;
    for (size_t i = 0; i <= u->ndirs; i++) {
        const struct retention_list *l = i == 0 ? &u->files : &u->dirs[i - 1].files;
        for (size_t k = 0; k < l->n; k++)
            if (l->files[k].keep == RETENTION_REMOVABLE) {
                ++*count;
                if (l->files[k].mtime > t)
                    t = l->files[k].mtime;
            }
    }
    return t;
}

/* Close the lock descriptors of fds (n of them). */
static void unlock_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/*
 * Take every journal lock of u (flock, as send takes it), so that no send starts
 * while its files go. false, saying why, when a send holds one or one cannot be
 * opened: u is skipped. fds gets one descriptor per lock (-1 for none).
 */
static bool lock_all(const struct unit *u, int *fds)
{
    for (size_t i = 0; i < u->files.n; i++) {
        const struct retention_file *f = &u->files.files[i];
        fds[i] = -1;
        if (f->role != RETENTION_LOCK)
            continue;
        fds[i] = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fds[i] < 0 && errno == ENOENT)
            continue;
        if (fds[i] < 0 || flock(fds[i], LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK)
                cli_fail("prune: skipped %s: a blast send is running it (%s is locked)", u->what,
                         f->path);
            else
                cli_fail("prune: skipped %s: cannot lock %s: %s", u->what, f->path,
                         strerror(errno));
            unlock_all(fds, i + 1);
            return false;
        }
    }
    return true;
}

/* Remove one file of blast's, or say it would. false when it could not be removed. */
static bool remove_file(struct prune *p, const struct retention_file *f)
{
    char size[32];

    if (!p->opt.dry_run && unlink(f->path) != 0) {
        if (errno == ENOENT)
            return true; /* gone already */
        cli_fail("prune: cannot remove %s: %s", f->path, strerror(errno));
        p->failures++;
        return false;
    }
    p->files++;
    p->bytes += (unsigned long long)f->size;
    if (!p->opt.quiet)
        printf("%s %s (%s)\n", p->opt.dry_run ? "would remove" : "removed", f->path,
               human((unsigned long long)f->size, size, sizeof size));
    return true;
}

/* Remove the files of l in role (every removable one but marks and locks, for DATA). */
static bool remove_role(struct prune *p, const struct retention_list *l, enum retention_role role)
{
    bool ok = true;

    for (size_t i = 0; i < l->n; i++) {
        const struct retention_file *f = &l->files[i];
        if (f->keep != RETENTION_REMOVABLE || f->role != role)
            continue;
        ok = remove_file(p, f) && ok;
    }
    return ok;
}

/* Say which files of u stay, and why (those of a dry-run directory: in one line for it). */
static void name_kept(struct prune *p, const struct unit *u)
{
    for (size_t i = 0; i < u->files.n; i++) {
        const struct retention_file *f = &u->files.files[i];
        if (f->keep == RETENTION_KEEP_LINK)
            log_msg(&p->log, LOG_LEVEL_WARN, "kept %s: a symbolic link (prune removes none)",
                    f->path);
        else if (f->keep == RETENTION_KEEP_OTHER && f->role != RETENTION_NOT_OURS &&
                 !idset_has(&p->inputs, f->dev, f->ino))
            log_msg(&p->log, LOG_LEVEL_WARN, "kept %s: not a regular file", f->path);
    }
}

/* The dry-run directory d, once its files are gone: removed when nothing else is in it. */
static void remove_dir(struct prune *p, const struct dry_dir *d)
{
    char names[512] = "";
    size_t kept = 0, used = 0;

    for (size_t i = 0; i < d->files.n; i++) {
        const struct retention_file *f = &d->files.files[i];
        const char *base = strrchr(f->path, '/') + 1;
        if (f->keep == RETENTION_REMOVABLE)
            continue;
        if (kept < 3 && used < sizeof names)
            used +=
                (size_t)snprintf(names + used, sizeof names - used, "%s%s", kept ? ", " : "", base);
        kept++;
    }
    if (kept > 3 && used < sizeof names)
        snprintf(names + used, sizeof names - used, " and %zu more", kept - 3);
    if (kept > 0) {
        log_msg(&p->log, LOG_LEVEL_WARN, "kept %s: it holds files blast did not write (%s)",
                d->path, names);
        return;
    }
    if (d->via_link) {
        log_msg(&p->log, LOG_LEVEL_WARN, "kept %s: a symbolic link (prune removes none)", d->path);
        return;
    }
    if (!p->opt.dry_run && rmdir(d->path) != 0) {
        if (errno == ENOTEMPTY || errno == EEXIST)
            log_msg(&p->log, LOG_LEVEL_WARN, "kept %s: it holds files blast did not write",
                    d->path);
        else if (errno != ENOENT) {
            cli_fail("prune: cannot remove %s: %s", d->path, strerror(errno));
            p->failures++;
        }
        return;
    }
    p->dirs++;
    if (!p->opt.quiet)
        printf("%s %s/ (directory)\n", p->opt.dry_run ? "would remove" : "removed", d->path);
}

/*
 * One unit: nothing when some of its files could not be listed, --older-than keeps it
 * or a send holds its lock; else its files (the markers and locks last, and only when
 * the rest went, so that a second run finds what a failed one left), then its dry-run
 * directories. -1: out of memory.
 */
static int prune_unit(struct prune *p, struct unit *u, time_t cutoff)
{
    size_t count, i;
    time_t t;
    int *fds;
    bool ok = true;

    if (settle(p, &u->files, true) < 0)
        return -1;
    for (i = 0; i < u->ndirs; i++)
        if (settle(p, &u->dirs[i].files, false) < 0)
            return -1;
    if (u->broken) {
        cli_fail("prune: skipped %s: not all of its files could be listed", u->what);
        p->failures++;
        return 0;
    }
    t = newest(u, &count);
    if (count == 0 && u->ndirs == 0) {
        if (p->opt.older_ms == 0)
            name_kept(p, u);
        return 0;
    }
    if (p->opt.older_ms > 0 && t >= cutoff)
        return 0; /* recent: all of it stays */
    if ((fds = calloc(u->files.n + 1, sizeof *fds)) == NULL)
        return -1;
    if (!lock_all(u, fds)) {
        p->failures++;
        free(fds);
        return 0;
    }
    ok = remove_role(p, &u->files, RETENTION_DATA);
    for (i = 0; i < u->ndirs; i++)
        ok = remove_role(p, &u->dirs[i].files, RETENTION_DATA) && ok;
    for (i = 0; ok && i < u->ndirs; i++)
        ok = remove_role(p, &u->dirs[i].files, RETENTION_MARK) && ok;
    if (ok)
        ok = remove_role(p, &u->files, RETENTION_LOCK);
    unlock_all(fds, u->files.n);
    free(fds);
    name_kept(p, u);
    for (i = 0; ok && i < u->ndirs; i++)
        remove_dir(p, &u->dirs[i]);
    return 0;
}

static void total(const struct prune *p)
{
    char size[32];

    if (p->opt.quiet)
        return;
    printf("total: %s %zu file%s", p->opt.dry_run ? "would remove" : "removed", p->files,
           p->files == 1 ? "" : "s");
    if (p->dirs > 0)
        printf(" and %zu director%s", p->dirs, p->dirs == 1 ? "y" : "ies");
    printf(", %llu bytes", p->bytes);
    if (p->bytes >= 1024)
        printf(" (%s)", human(p->bytes, size, sizeof size));
    printf("\n");
}

int cmd_prune(int argc, char **argv)
{
    struct prune p;
    time_t cutoff;
    bool bad = false;
    int rc, i;

    memset(&p, 0, sizeof p);
    rc = parse_args(argc, argv, &p.opt);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    cli_log_init(&p.log, p.opt.quiet ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN);
    /* every operand first: one that is wrong and nothing is removed */
    for (i = 0; i < p.opt.npaths; i++) {
        rc = add_operand(&p, p.opt.paths[i]);
        if (rc == -2) {
            cli_fail("prune: out of memory");
            prune_free(&p);
            return BLAST_EXIT_USAGE;
        }
        bad |= rc < 0;
    }
    if (bad) {
        cli_fail("prune: nothing removed");
        prune_free(&p);
        return BLAST_EXIT_USAGE;
    }
    cutoff = time(NULL) - (time_t)(p.opt.older_ms / 1000);
    for (size_t u = 0; u < p.nunits; u++)
        if (prune_unit(&p, &p.units[u], cutoff) < 0) {
            cli_fail("prune: out of memory");
            p.failures++;
            break;
        }
    total(&p);
    fflush(stdout);
    rc = p.failures > 0 ? BLAST_EXIT_INCOMPLETE : BLAST_EXIT_OK;
    prune_free(&p);
    return rc;
}
