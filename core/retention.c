/*
 * retention - the files blast keeps for a campaign, and the dry-run marker. See
 * retention.h.
 */
#include "retention.h"
#include "private.h"
#include "shard.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A marker is a few hundred bytes; anything much larger is not one. */
#define MARK_MAX (64 * 1024)

/* ".tmp.XXXXXX": what private_file_open() adds to a name for its temporary file. */
#define TMP_LEN 11

void retention_list_free(struct retention_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->files[i].path);
    free(l->files);
    memset(l, 0, sizeof *l);
}

/* ---- names --------------------------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether the last TMP_LEN bytes of the n bytes of s are ".tmp." and six letters or digits. */
static bool tmp_suffix(const char *s, size_t n)
{
    const char *t;

    if (n <= TMP_LEN || memcmp(s + n - TMP_LEN, ".tmp.", 5) != 0)
        return false;
    for (t = s + n - 6; t < s + n; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9')))
            return false;
    return true;
}

/*
 * Where a shard's part goes in the file name base: before its extension, or at its
 * end; the rule of prepare_shard_place() (cmd/blast/prepare.c), for a file name.
 */
static size_t shard_place(const char *base)
{
    const char *dot = strrchr(base, '.');

    return dot == NULL || dot == base ? strlen(base) : (size_t)(dot - base);
}

/* A whole number as "%u" writes it at s (no sign, no leading zero), at most SHARD_MAX:
 * the digits' count, 0 when there is none. */
static size_t shard_number(const char *s, size_t n, unsigned *out)
{
    unsigned long v = 0;
    size_t i;

    if (n > 0 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > SHARD_MAX)
            return 0;
    }
    *out = (unsigned)v;
    return i;
}

/* Whether the n bytes of s are base, or base with a shard's ".shard-I-of-N" in its place. */
static bool base_or_shard(const char *s, size_t n, const char *base)
{
    size_t len = strlen(base), place = shard_place(base), k;
    unsigned index, count;
    const char *p = s + place, *end = s + n;

    if (n == len && memcmp(s, base, n) == 0)
        return true;
    if (n <= len || memcmp(s, base, place) != 0)
        return false;
    if ((size_t)(end - p) < 7 || memcmp(p, ".shard-", 7) != 0)
        return false;
    p += 7;
    if ((k = shard_number(p, (size_t)(end - p), &index)) == 0)
        return false;
    p += k;
    if ((size_t)(end - p) < 4 || memcmp(p, "-of-", 4) != 0)
        return false;
    p += 4;
    if ((k = shard_number(p, (size_t)(end - p), &count)) == 0)
        return false;
    p += k;
    return index < count && count > 1 && (size_t)(end - p) == len - place &&
           memcmp(p, base + place, len - place) == 0;
}

enum retention_role retention_journal_role(const char *base, const char *name)
{
    static const char *const suffixes[] = {"", ".lock", ".compacting", ".seeds"};
    size_t n = strlen(name);

    if (base[0] == '\0')
        return RETENTION_NOT_OURS;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (ends_with(name, n, suffixes[i]) && base_or_shard(name, n - strlen(suffixes[i]), base))
            return i == 1 ? RETENTION_LOCK : RETENTION_DATA;
    return RETENTION_NOT_OURS;
}

/* Whether the n bytes of s are the report base's, its .gz twin's, or a shard's of either. */
static bool report_name(const char *s, size_t n, const char *base)
{
    size_t len = strlen(base);
    char gz[NAME_MAX + 4];
    bool plain = !ends_with(base, len, ".gz");

    if (base_or_shard(s, n, base))
        return true;
    if (!plain || len > NAME_MAX)
        return false;
    snprintf(gz, sizeof gz, "%s.gz", base);
    /* base.gz and its shards ("news.json.shard-1-of-4.gz"), and a shard's with .gz added */
    return base_or_shard(s, n, gz) || (ends_with(s, n, ".gz") && base_or_shard(s, n - 3, base));
}

enum retention_role retention_report_role(const char *base, const char *name)
{
    size_t n = strlen(name);

    if (base[0] == '\0')
        return RETENTION_NOT_OURS;
    if (report_name(name, n, base) || (tmp_suffix(name, n) && report_name(name, n - TMP_LEN, base)))
        return RETENTION_DATA;
    return RETENTION_NOT_OURS;
}

enum retention_role retention_dry_run_role(const char *name)
{
    size_t n = strlen(name), mark = strlen(RETENTION_MARK_NAME), i;

    if (strcmp(name, RETENTION_MARK_NAME) == 0)
        return RETENTION_MARK;
    if (n == mark + TMP_LEN && memcmp(name, RETENTION_MARK_NAME, mark) == 0 && tmp_suffix(name, n))
        return RETENTION_DATA;
    /* ROW.eml: the row as "%zu" writes it, from 1 */
    if (!ends_with(name, n, ".eml") || n == 4 || name[0] == '0')
        return RETENTION_NOT_OURS;
    for (i = 0; i < n - 4; i++)
        if (name[i] < '0' || name[i] > '9')
            return RETENTION_NOT_OURS;
    return RETENTION_DATA;
}

/* ---- listing ------------------------------------------------------------------------- */

/* once: a path that l holds already is not added again (a campaign's few files; a
 * dry-run directory's, which may be a million, are listed once each by one scan) */
static int add(struct retention_list *l, const char *dir, const char *name,
               enum retention_role role, const struct stat *st, enum retention_keep keep, bool once,
               struct blast_error *err)
{
    struct retention_file *f;
    size_t dn = strlen(dir);
    char *path = NULL;

    if (asprintf(&path, "%s%s%s", dir, dn > 0 && dir[dn - 1] == '/' ? "" : "/", name) < 0)
        return blast_error_set(err, BLAST_ENOMEM, dir, 0, 0, "out of memory");
    for (size_t i = 0; once && i < l->n; i++)
        if (strcmp(l->files[i].path, path) == 0) {
            free(path);
            return 0;
        }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if ((f = realloc(l->files, cap * sizeof *f)) == NULL) {
            free(path);
            return blast_error_set(err, BLAST_ENOMEM, dir, 0, 0, "out of memory");
        }
        l->files = f;
        l->cap = cap;
    }
    f = &l->files[l->n++];
    f->path = path;
    f->role = role;
    f->keep = keep;
    f->size = st->st_size;
    f->mtime = st->st_mtime;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    return 0;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct retention_file *)a)->path,
                  ((const struct retention_file *)b)->path);
}

/*
 * The entries of dir whose role (role(base, name), or retention_dry_run_role when role
 * is NULL) is blast's, or every entry when all; sorted by path. A missing dir is none
 * unless all (a dry-run directory that was named).
 */
static int scan(const char *dir, const char *base,
                enum retention_role (*role)(const char *, const char *), bool all,
                struct retention_list *out, struct blast_error *err)
{
    size_t first = out->n;
    struct dirent *e;
    DIR *d = opendir(dir);
    int rc = 0;

    if (d == NULL) {
        if (!all && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        return blast_error_set(err, BLAST_EIO, dir, 0, 0, "cannot read the directory: %s",
                               strerror(errno));
    }
    while (rc == 0) {
        enum retention_role r;
        enum retention_keep keep;
        struct stat st;
        char *path = NULL;
        int fail;

        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0)
                rc = blast_error_set(err, BLAST_EIO, dir, 0, 0, "cannot read the directory: %s",
                                     strerror(errno));
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        r = role != NULL ? role(base, e->d_name) : retention_dry_run_role(e->d_name);
        if (r == RETENTION_NOT_OURS && !all)
            continue;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
            rc = blast_error_set(err, BLAST_ENOMEM, dir, 0, 0, "out of memory");
            break;
        }
        fail = lstat(path, &st) != 0 ? errno : 0;
        free(path);
        if (fail == ENOENT)
            continue; /* gone since the directory was read */
        if (fail != 0) {
            rc = blast_error_set(err, BLAST_EIO, dir, 0, 0, "cannot examine %s: %s", e->d_name,
                                 strerror(fail));
            break;
        }
        if (r == RETENTION_NOT_OURS)
            keep = RETENTION_KEEP_FOREIGN;
        else if (S_ISLNK(st.st_mode))
            keep = RETENTION_KEEP_LINK;
        else if (!S_ISREG(st.st_mode))
            keep = RETENTION_KEEP_OTHER;
        else
            keep = RETENTION_REMOVABLE;
        rc = add(out, dir, e->d_name, r, &st, keep, !all, err);
    }
    closedir(d);
    if (out->n > first)
        qsort(out->files + first, out->n - first, sizeof *out->files, by_path);
    return rc;
}

/* The directory part of path ("." when it has none) and its file name, in new strings. */
static int split(const char *path, char **dir, char **base, struct blast_error *err)
{
    const char *slash = strrchr(path, '/');

    *dir = slash == NULL   ? strdup(".")
           : slash == path ? strdup("/")
                           : strndup(path, (size_t)(slash - path));
    *base = strdup(slash != NULL ? slash + 1 : path);
    if (*dir == NULL || *base == NULL) {
        free(*dir);
        free(*base);
        *dir = *base = NULL;
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    }
    return 0;
}

static int scan_beside(const char *path, enum retention_role (*role)(const char *, const char *),
                       struct retention_list *out, struct blast_error *err)
{
    char *dir, *base;
    int rc;

    if (path == NULL || path[0] == '\0')
        return 0;
    if ((rc = split(path, &dir, &base, err)) < 0)
        return rc;
    rc = scan(dir, base, role, false, out, err);
    free(dir);
    free(base);
    return rc;
}

int retention_campaign_files(const char *journal, const char *report, struct retention_list *out,
                             struct blast_error *err)
{
    int rc;

    if ((rc = scan_beside(journal, retention_journal_role, out, err)) < 0)
        return rc;
    return scan_beside(report, retention_report_role, out, err);
}

int retention_dry_run_files(const char *dir, struct retention_list *out, struct blast_error *err)
{
    return scan(dir, NULL, NULL, true, out, err);
}

/* ---- the marker ---------------------------------------------------------------------- */

void retention_mark_free(struct retention_mark *m)
{
    free(m->campaign);
    free(m->campaign_file);
    free(m->time);
    memset(m, 0, sizeof *m);
}

int retention_mark_write(const char *dir, const char *name, const char *campaign_file,
                         struct blast_error *err)
{
    struct private_file pf;
    char when[40], *path = NULL, *text = NULL, *full = realpath(campaign_file, NULL);
    json_t *o = NULL;
    int rc;

    memset(&pf, 0, sizeof pf);
    if (asprintf(&path, "%s/%s", dir, RETENTION_MARK_NAME) < 0) {
        path = NULL;
        rc = blast_error_set(err, BLAST_ENOMEM, dir, 0, 0, "out of memory");
        goto out;
    }
    if (full == NULL) {
        rc = blast_error_set(err, BLAST_EIO, campaign_file, 0, 0,
                             "cannot find the campaign file's full path for %s: %s", path,
                             strerror(errno));
        goto out;
    }
    timeutil_rfc3339(timeutil_now(), when, sizeof when);
    o = json_pack("{s:s, s:s, s:s}", "campaign", name, "campaign_file", full, "time", when);
    if (o == NULL) {
        /* json_pack refuses a string that is not UTF-8 */
        rc = blast_error_set(err, BLAST_EINVAL, path, 0, 0,
                             "cannot write the dry run's marker: the campaign file's path %s is "
                             "not UTF-8",
                             full);
        goto out;
    }
    if ((text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = private_file_open_named(&pf, path, PRIVATE_FILE_MODE, "the dry run's marker", err)) <
        0)
        goto out;
    if (fputs(text, pf.f) < 0 || fputc('\n', pf.f) == EOF) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write the dry run's marker: %s",
                             strerror(errno));
        goto out;
    }
    rc = private_file_commit(&pf, err);
out:
    private_file_abort(&pf);
    json_decref(o);
    free(text);
    free(full);
    free(path);
    return rc;
}

int retention_mark_read(const char *dir, struct retention_mark *out, struct blast_error *err)
{
    const char *campaign, *file, *when;
    json_error_t je;
    json_t *o = NULL;
    struct stat st;
    char *path = NULL;
    int fd = -1, rc;

    memset(out, 0, sizeof *out);
    if (asprintf(&path, "%s/%s", dir, RETENTION_MARK_NAME) < 0)
        return blast_error_set(err, BLAST_ENOMEM, dir, 0, 0, "out of memory");
    /* O_NONBLOCK: a FIFO of that name must not hold the reader up */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = 0;
        else if (errno == ELOOP)
            rc = blast_error_set(err, BLAST_EINVAL, path, 0, 0,
                                 "a symbolic link, not blast's dry-run marker");
        else
            rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MARK_MAX) {
        rc = blast_error_set(err, BLAST_EINVAL, path, 0, 0,
                             "not blast's dry-run marker (not a small regular file)");
        goto out;
    }
    if ((o = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je)) == NULL) {
        rc = blast_error_set(err, BLAST_EINVAL, path, je.line > 0 ? je.line : 0,
                             je.column > 0 ? je.column : 0, "not blast's dry-run marker: %s",
                             je.text);
        goto out;
    }
    if (json_unpack(o, "{s:s, s:s, s:s}", "campaign", &campaign, "campaign_file", &file, "time",
                    &when) != 0) {
        rc = blast_error_set(err, BLAST_EINVAL, path, 0, 0,
                             "not blast's dry-run marker: campaign, campaign_file or time "
                             "missing");
        goto out;
    }
    if ((out->campaign = strdup(campaign)) == NULL || (out->campaign_file = strdup(file)) == NULL ||
        (out->time = strdup(when)) == NULL) {
        retention_mark_free(out);
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    rc = 1;
out:
    if (fd >= 0)
        close(fd);
    json_decref(o);
    free(path);
    return rc;
}
