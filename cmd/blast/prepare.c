/*
 * prepare - the common first steps of the subcommands. See prepare.h.
 */
#include "prepare.h"
#include "../../core/shard.h"
#include "../../core/buf.h"
#include "../../core/fingerprint.h"
#include "../../core/private.h"
#include "../../core/secret.h"
#include "../../core/sharedlimit.h"
#include "../../core/timeutil.h"
#include "../../core/tzone.h"
#include "../../core/preflight.h"
#include "../../core/countmap.h"
#include "../../core/dns.h"
#include "../../core/provider.h"
#include "cli.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int prepare_list(const struct campaign *c, struct recipients **out, struct blast_error *err)
{
    struct recipients_options ro = {c->recipients.delimiter, 0};
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    rc = recipients_open(c->recipients.path, &ro, out, &e);
    if (rc == BLAST_EIO && e.line == 0)
        return blast_error_set(err, rc, c->path, c->recipients.path_place.line,
                               c->recipients.path_place.column, "recipients.path: %s: %s",
                               c->recipients.path, e.text);
    if (rc < 0)
        return blast_error_set(err, rc, e.source, e.line, e.column, "%s", e.text);
    return 0;
}

int prepare_open(const char *path, struct prepared *p, const struct log *lg,
                 struct blast_error *err)
{
    int rc;

    memset(p, 0, sizeof *p);
    if ((rc = campaign_load(path, &p->c, err)) < 0 ||
        (rc = prepare_list(p->c, &p->list, err)) < 0 ||
        (rc = screen_new(p->c, p->list, &p->screen, err)) < 0 ||
        (rc = compose_new(p->c, p->list, p->screen, NULL, &p->cp, err)) < 0 ||
        (rc = dkim_new(p->c, lg, NULL, &p->dkim, err)) < 0)
        return rc;
    compose_set_dkim(p->cp, p->dkim);
    if (p->c->return_path.address != NULL) {
        char *secret = NULL;
        if ((rc = secret_return_path(p->c, lg, &secret, err)) == 0)
            rc = compose_set_return_path(p->cp, secret, strlen(secret), err);
        if (secret != NULL) {
            OPENSSL_cleanse(secret, strlen(secret));
            free(secret);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int prepare_reports(struct prepared *p, const struct prepare_report *reports, size_t n,
                    const char *own, struct blast_error *err)
{
    struct stat mine, theirs;
    bool have_own = own != NULL && strcmp(own, "-") != 0 && stat(own, &mine) == 0;
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        if (have_own && stat(reports[i].path, &theirs) == 0 && theirs.st_dev == mine.st_dev &&
            theirs.st_ino == mine.st_ino)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                   "send: --%s %s is the report this run writes; the journal "
                                   "already keeps this campaign's outcomes",
                                   screen_report_rule_name(reports[i].rule), reports[i].path);
        if ((rc = screen_add_report(p->screen, reports[i].path, reports[i].rule, err)) < 0)
            return rc;
    }
    return 0;
}

int prepare_hash(const struct prepared *p, const struct prepare_report *reports, size_t n,
                 char out[65], char legacy[65], struct blast_error *err)
{
    struct fingerprint_input *extra = n > 0 ? calloc(n, sizeof *extra) : NULL;
    size_t i;
    int rc;

    if (n > 0 && extra == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    /* by the file's full name, so that "prev.json" and "./prev.json" are the same input */
    for (i = 0; i < n; i++) {
        char *full = realpath(reports[i].path, NULL);
        extra[i].label = screen_report_rule_name(reports[i].rule);
        extra[i].path = full != NULL ? full : reports[i].path;
    }
    rc = fingerprint_campaign_both(p->c, extra, n, out, legacy, err);
    for (i = 0; i < n; i++)
        if (extra[i].path != reports[i].path)
            free((char *)extra[i].path);
    free(extra);
    return rc;
}

void prepare_close(struct prepared *p)
{
    compose_free(p->cp);
    dkim_free(p->dkim);
    screen_free(p->screen);
    recipients_close(p->list);
    campaign_free(p->c);
    memset(p, 0, sizeof *p);
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

int prepare_shard(struct prepared *p, const char *text, long count, struct shard *out,
                  struct blast_error *err)
{
    struct campaign *c = p->c;
    int rc;

    rc = text != NULL ? shard_parse(text, out, err)
                      : shard_from_env(env_get, (unsigned)(count > 0 ? count : 0), out, err);
    if (rc < 0)
        return rc;
    if (out->count <= 1)
        return 0;
    screen_set_shard(p->screen, out);
    if (c->limits.shared != NULL)
        return 0; /* the shards ask Redis: each may use what the others leave */
    /* the campaign's limits are the whole campaign's: each shard takes its part */
    c->rate.per_second /= out->count;
    for (size_t i = 0; i < c->nrelays; i++)
        c->relays[i].rate.per_second /= out->count;
    for (size_t i = 0; i < c->ndomain_rates; i++)
        c->domain_rates[i].rate.per_second /= out->count;
    return 0;
}

const char *prepare_shard_place(const char *path)
{
    const char *base = strrchr(path, '/'), *dot;

    base = base != NULL ? base + 1 : path;
    dot = strrchr(base, '.');
    return dot == NULL || dot == base ? path + strlen(path) : dot;
}

char *prepare_shard_path(const char *path, const struct shard *s)
{
    const char *dot = prepare_shard_place(path);
    char *out = NULL;

    if (s->count <= 1)
        return strdup(path);
    if (asprintf(&out, "%.*s.shard-%u-of-%u%s", (int)(dot - path), path, s->index, s->count, dot) <
        0)
        return NULL;
    return out;
}

int prepare_limits(const struct campaign *c, const struct log *lg, struct sharedlimit **out,
                   struct blast_error *err)
{
    struct secret_source src;
    char *password = NULL;
    int rc;

    *out = NULL;
    if (c->limits.shared == NULL)
        return 0;
    secret_limits_source(c, &src);
    if ((src.env != NULL || src.file != NULL) && (rc = secret_fetch(&src, lg, &password, err)) < 0)
        return rc;
    rc = sharedlimit_open(c, password, lg, out, err);
    if (password != NULL) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    return rc;
}

/* ---- files others can read ----------------------------------------------------------- */

#define EXPOSED_MAX 12

struct exposed {
    const struct log *lg;
    char *seen[EXPOSED_MAX]; /* the paths warned about (or found private), each once */
    size_t nseen;
};

/* One path: a warning when it is there and open to others, once however often named. */
static void warn_path(struct exposed *x, const char *path, const char *why)
{
    mode_t mode;
    size_t i;

    for (i = 0; i < x->nseen; i++)
        if (strcmp(x->seen[i], path) == 0)
            return;
    if (x->nseen < EXPOSED_MAX && (x->seen[x->nseen] = strdup(path)) != NULL)
        x->nseen++;
    if (private_exposed(path, &mode) <= 0)
        return;
    log_msg(x->lg, LOG_LEVEL_WARN, "%s is %s (mode %04o): %s; chmod %s it", path,
            private_exposure(mode), (unsigned)(mode & 07777), why, S_ISDIR(mode) ? "700" : "600");
}

/*
 * The file, then the directory that holds it: only when the file is there, since a
 * directory open to others exposes nothing of blast's until it holds one.
 */
static void warn_file(struct exposed *x, const char *path, const char *why)
{
    char *d;

    if (path == NULL || strcmp(path, "-") == 0 || access(path, F_OK) != 0)
        return;
    warn_path(x, path, why);
    if ((d = strdup(path)) != NULL)
        warn_path(x, dirname(d), "it holds files with recipients' addresses");
    free(d);
}

/* The setting, else dir/sub/NAME.ext; in the shard's name either way. */
static char *default_path(const struct campaign *c, const struct shard *s, const char *setting,
                          const char *sub, const char *ext)
{
    size_t n = strlen(c->dir) + strlen(sub) + strlen(c->name) + strlen(ext) + 4;
    char *d = NULL, *path;

    if (setting == NULL) {
        if ((d = malloc(n)) == NULL)
            return NULL;
        snprintf(d, n, "%s/%s/%s%s", c->dir, sub, c->name, ext);
    }
    path = prepare_shard_path(d != NULL ? d : setting, s);
    free(d);
    return path;
}

void prepare_warn_exposed(const struct campaign *c, const struct shard *s, const char *journal,
                          const char *report, const char *dry_run, const struct log *lg)
{
    struct exposed x = {lg, {NULL}, 0};
    char *j =
        journal != NULL ? strdup(journal) : default_path(c, s, c->journal, ".blast", ".journal");
    char *r = report != NULL ? strdup(report) : default_path(c, s, c->report, "reports", ".json");
    char *lock = NULL;
    size_t i, n;

    warn_file(&x, j, "it holds recipients' addresses");
    if (j != NULL && (lock = malloc(n = strlen(j) + 6)) != NULL) {
        snprintf(lock, n, "%s.lock", j);
        warn_file(&x, lock, "it is the journal's lock");
    }
    warn_file(&x, r, "it holds recipients' addresses");
    warn_file(&x, c->suppression_db, "it holds recipients' addresses");
    if (dry_run != NULL)
        warn_path(&x, dry_run, "it holds the messages rendered for recipients");
    for (i = 0; i < x.nseen; i++)
        free(x.seen[i]);
    free(lock);
    free(j);
    free(r);
}

/* The journal a campaign's send keeps (its 'journal', else .blast/NAME.journal beside it). */
char *prepare_journal_of(const struct campaign *c)
{
    char *p = NULL;
    if (c->journal != NULL)
        return strdup(c->journal);
    if (asprintf(&p, "%s/.blast/%s.journal", c->dir, c->name) < 0)
        return NULL;
    return p;
}

/* s with the characters glob(3) takes for patterns escaped, appended to out. */
static int glob_escaped(struct buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((strchr("*?[\\", s[i]) != NULL && buf_append(out, "\\", 1) < 0) ||
            buf_append(out, s + i, 1) < 0)
            return -1;
    return 0;
}

/*
 * The journals of the campaign's shards beside its own (docs/sharding.md: the
 * shard's part before the extension of the journal's name), each a whole shard
 * name ("NAME.shard-2-of-4.journal"), found by glob(3) into g. Returns -1 when out
 * of memory; no shard journal is not an error.
 */
int prepare_shard_journals(const char *journal, glob_t *g)
{
    const char *dot = prepare_shard_place(journal);
    struct buf pat;
    size_t i, kept = 0;
    int rc = -1;

    memset(g, 0, sizeof *g);
    buf_init(&pat);
    if (glob_escaped(&pat, journal, (size_t)(dot - journal)) < 0 ||
        buf_append(&pat, ".shard-*-of-*", 13) < 0 || glob_escaped(&pat, dot, strlen(dot)) < 0 ||
        buf_append(&pat, "", 1) < 0)
        goto out;
    rc = glob(pat.data, 0, NULL, g);
    if (rc == GLOB_NOSPACE)
        goto out;
    rc = 0;
    /* only I-of-N where the stars stand: a name that merely looks alike is not a shard's */
    for (i = 0; i < g->gl_pathc; i++) {
        const char *p = g->gl_pathv[i] + (dot - journal) + 7;
        unsigned si, sn;
        int end = 0;
        if (sscanf(p, "%u-of-%u%n", &si, &sn, &end) == 2 && strcmp(p + end, dot) == 0 && si < sn)
            g->gl_pathv[kept++] = g->gl_pathv[i];
        else
            free(g->gl_pathv[i]);
    }
    if (g->gl_pathv != NULL)
        g->gl_pathv[kept] = NULL;
    g->gl_pathc = kept;
out:
    buf_free(&pat);
    return rc;
}

int prepare_clock(int64_t *offset, struct blast_error *err)
{
    const char *s = getenv("BLAST_NOW");
    struct timeutil_stamp at;
    char canon[32];
    int y, mo, d, h, mi, sec, n = 0;

    *offset = 0;
    if (s == NULL || *s == '\0')
        return 0;
    /* whole seconds ("...:00Z") or what reports write ("...:00.000Z") */
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
        s[n] == '\0') {
        snprintf(canon, sizeof canon, "%04d-%02d-%02dT%02d:%02d:%02d.000Z", y, mo, d, h, mi, sec);
        s = canon;
    }
    if (timeutil_parse_rfc3339(s, &at) < 0)
        return blast_error_set(err, BLAST_EINVAL, "BLAST_NOW", 0, 0,
                               "not an instant such as 2026-12-07T08:30:00Z: '%.40s'",
                               getenv("BLAST_NOW"));
    *offset = (int64_t)at.sec - (int64_t)time(NULL);
    return 0;
}

int64_t prepare_clock_now(int64_t offset)
{
    return (int64_t)time(NULL) + offset;
}

int prepare_zone(const struct campaign *c, struct tzone **out, struct blast_error *err)
{
    struct blast_error e;
    int rc;

    if (c->timezone == NULL)
        return tzone_load_local(out, err);
    blast_error_clear(&e);
    if ((rc = tzone_load(c->timezone, out, &e)) < 0)
        return blast_error_set(err, rc, c->path, c->timezone_place.line, c->timezone_place.column,
                               "'timezone': %s", e.text);
    return 0;
}

int prepare_window_open(const struct campaign *c, const struct recipients *list,
                        const struct tzone *zone, struct prepare_window *pw,
                        struct blast_error *err)
{
    memset(pw, 0, sizeof *pw);
    pw->col = -1;
    if (!c->window.set)
        return 0;
    pw->w = &c->window.w;
    pw->zone = zone;
    if (c->window.zone_column == NULL)
        return 0;
    if ((pw->col = recipients_column_index(list, c->window.zone_column)) < 0)
        return blast_error_set(err, BLAST_EINVAL, c->path, c->window.zone_column_place.line,
                               c->window.zone_column_place.column,
                               "'window': 'zone_column': the list %s has no column '%s'",
                               recipients_path(list), c->window.zone_column);
    return tzone_cache_new(&pw->cache, err);
}

int prepare_window_zone(struct prepare_window *pw, const struct campaign *c,
                        const struct recipients *list, const struct recipients_row *row,
                        const struct tzone **z, struct blast_error *err)
{
    char name[128];
    const char *s;
    size_t n;
    struct blast_error e;

    *z = pw->zone;
    if (pw->col < 0 || (size_t)pw->col >= row->nfields)
        return 0;
    s = row->fields[pw->col];
    n = row->lens[pw->col];
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0)
        return 0; /* no zone of its own: the campaign's */
    blast_error_clear(&e);
    if (n >= sizeof name || memchr(s, '\0', n) != NULL)
        blast_error_set(&e, BLAST_EINVAL, NULL, 0, 0, "not a time zone name");
    else {
        memcpy(name, s, n);
        name[n] = '\0';
        if (tzone_cache_get(pw->cache, name, z, &e) == 0)
            return 0;
    }
    return blast_error_set(err, e.code, recipients_path(list), (int)row->line, 0,
                           "row %zu, column '%s': %s", row->row, c->window.zone_column, e.text);
}

void prepare_window_close(struct prepare_window *pw)
{
    tzone_cache_free(pw->cache);
    pw->cache = NULL;
}

struct finding_out {
    FILE *out;
    const struct log *lg;
};

static void on_finding(void *arg, const struct preflight_finding *f)
{
    const struct finding_out *fo = arg;
    const char *level = preflight_level_name(f->level);

    if (cli_finding(f->check, level, f->record, f->text, f->publish))
        return;
    if (fo->out != NULL) {
        size_t n = strlen(f->publish), i;
        fprintf(fo->out, "dns         %-7s  %-5s  %s: %s\n", level, f->check, f->record, f->text);
        if (n == 0)
            return;
        /* a zone file's form: strings of at most 255 bytes (RFC 1035 §3.3), joined by readers */
        fputs("                           publish:", fo->out);
        for (i = 0; i < n; i += 255)
            fprintf(fo->out, " \"%.*s\"", (int)(n - i < 255 ? n - i : 255), f->publish + i);
        fputc('\n', fo->out);
        return;
    }
    log_msg(fo->lg,
            f->level == PREFLIGHT_ERROR     ? LOG_LEVEL_ERROR
            : f->level == PREFLIGHT_WARNING ? LOG_LEVEL_WARN
                                            : LOG_LEVEL_DEBUG,
            "%s: %s: %s%s%s%s", f->check, f->record, f->text, f->publish[0] ? "; publish: \"" : "",
            f->publish, f->publish[0] ? "\"" : "");
}

int prepare_preflight(const struct campaign *c, const struct dkim *keys, FILE *out,
                      const struct log *lg, struct preflight_counts *n, struct blast_error *err)
{
    const char *env = getenv("BLAST_DNS_SERVERS");
    struct preflight_options o;
    struct finding_out fo = {out, lg};

    memset(&o, 0, sizeof o);
    if (env != NULL && strcmp(env, "off") == 0)
        return blast_error_set(err, BLAST_EINVAL, "BLAST_DNS_SERVERS", 0, 0,
                               "off: the DNS checks need lookups (unset it, or name a server)");
    o.servers = prepare_dns_servers(c);
    o.timeout_ms = c->dns.timeout_ms;
    o.deadline_ms = 60000;
    return preflight_run(c, keys, &o, on_finding, &fo, n, err);
}

const char *prepare_dns_servers(const struct campaign *c)
{
    const char *env = getenv("BLAST_DNS_SERVERS");

    return env != NULL && env[0] != '\0' ? env : c->dns.servers;
}

int prepare_routes(const struct campaign *c, const char *servers, const struct countmap *domains,
                   struct provider_table *t, struct provider_routes **out, struct blast_error *err)
{
    size_t n = countmap_size(domains), i;
    const char **names = calloc(n + 1, sizeof *names);
    struct dns_options o;
    struct dns *d = NULL;
    int rc;

    if (names == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < n; i++)
        names[i] = countmap_at(domains, i)->name;

    memset(&o, 0, sizeof o);
    o.servers = servers;
    o.timeout_ms = c->dns.timeout_ms;
    o.tries = 2;
    o.max_inflight = 64;
    o.deadline_ms = 60000;
    if ((rc = provider_table_load(c, t, err)) == 0 && (rc = dns_open(&o, &d, err)) == 0)
        rc = provider_routes_build(t, d, names, n, out, err);
    if (rc == BLAST_EINVAL) {
        /* a server that is not one: said where it was set */
        char why[sizeof err->text];
        const char *w = err->text;
        bool campaigns = servers == c->dns.servers;
        if (strncmp(w, "dns servers", 11) == 0)
            w += 11 + (w[11] == ':');
        snprintf(why, sizeof why, "%s", w + strspn(w, " "));
        blast_error_replace(err, rc, campaigns ? c->path : NULL, campaigns ? c->dns.place.line : 0,
                            campaigns ? c->dns.place.column : 0, "%s: %s",
                            campaigns ? "'dns': 'servers'" : "BLAST_DNS_SERVERS", why);
    }
    dns_close(d);
    free(names);
    return rc;
}

char *prepare_warmup_store(const struct campaign *c, bool make_dir, struct blast_error *err)
{
    char *path = NULL;

    if (c->warmup.store != NULL || c->suppression_db != NULL) {
        path = strdup(c->warmup.store != NULL ? c->warmup.store : c->suppression_db);
    } else if (asprintf(&path, "%s/.blast", c->dir) >= 0) {
        /* .blast/warmup.db beside the campaign file: the campaigns beside it share it */
        if (make_dir && private_mkdir(path, false) != 0) {
            blast_error_set(err, BLAST_EIO, c->path, 0, 0, "cannot create the directory %s: %s",
                            path, strerror(errno));
            free(path);
            return NULL;
        }
        free(path);
        if (asprintf(&path, "%s/.blast/warmup.db", c->dir) < 0)
            path = NULL;
    } else {
        path = NULL;
    }
    if (path == NULL)
        blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return path;
}
