/*
 * private - files and directories that hold recipients' data, kept to their owner.
 * See private.h.
 *
 * The umask only ever removes bits, so open(..., 0600) and mkdir(..., 0700) already
 * give at most those modes; the fchmod and chmod that follow are there for file
 * systems and default ACLs that add permissions the umask does not govern.
 */
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* group or others may read or write; a directory also when others may enter it */
#define FILE_EXPOSED (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)
#define DIR_EXPOSED  (FILE_EXPOSED | S_IXOTH)

int private_open(const char *path, int flags)
{
    int fd, tries;

    flags |= O_CLOEXEC;
    flags &= ~(O_CREAT | O_EXCL);
    /* O_EXCL tells a file made now from one that was there, whose mode stays its owner's */
    for (tries = 0; tries < 4; tries++) {
        fd = open(path, flags | O_CREAT | O_EXCL, PRIVATE_FILE_MODE);
        if (fd >= 0) {
            if (fchmod(fd, PRIVATE_FILE_MODE) != 0) {
                int e = errno;
                close(fd);
                unlink(path);
                errno = e;
                return -1;
            }
            return fd;
        }
        if (errno != EEXIST)
            return -1;
        fd = open(path, flags);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        /* removed between the two opens: try again */
    }
    return -1;
}

int private_mkstemp(char *tmpl)
{
    int fd = mkostemp(tmpl, O_CLOEXEC);

    if (fd >= 0 && fchmod(fd, PRIVATE_FILE_MODE) != 0) {
        int e = errno;
        close(fd);
        unlink(tmpl);
        errno = e;
        return -1;
    }
    return fd;
}

/* One directory: made 0700 if missing; 0 when it is (now) a directory. */
static int make_one(const char *path)
{
    struct stat st;

    if (mkdir(path, PRIVATE_DIR_MODE) == 0)
        return chmod(path, PRIVATE_DIR_MODE);
    if (errno != EEXIST)
        return -1;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Every directory in p above its last component; p is written to and restored. */
static int make_above(char *p)
{
    char *s;

    for (s = p + 1; (s = strchr(s, '/')) != NULL; s++) {
        if (s[-1] == '/')
            continue; /* "a//b" */
        *s = '\0';
        if (make_one(p) != 0) {
            *s = '/';
            return -1;
        }
        *s = '/';
    }
    return 0;
}

int private_mkdir(const char *path, bool parents)
{
    char *p;
    size_t n;
    int rc = -1, e;

    if (!parents)
        return make_one(path);
    if ((p = strdup(path)) == NULL)
        return -1;
    /* "a/b/" is the directory a/b */
    n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    if (make_above(p) == 0)
        rc = make_one(p);
    e = errno;
    free(p);
    errno = e;
    return rc;
}

int private_mkdir_parents(const char *path)
{
    char *p = strdup(path);
    int rc, e;

    if (p == NULL)
        return -1;
    rc = make_above(p);
    e = errno;
    free(p);
    errno = e;
    return rc;
}

int private_exposed(const char *path, mode_t *mode)
{
    struct stat st;
    mode_t bits;

    if (stat(path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    bits = st.st_mode & (S_ISDIR(st.st_mode) ? DIR_EXPOSED : FILE_EXPOSED);
    if (mode != NULL)
        *mode = st.st_mode;
    return bits != 0;
}

const char *private_exposure(mode_t mode)
{
    if (mode & (S_IRGRP | S_IROTH))
        return "readable by other users";
    if (mode & (S_IWGRP | S_IWOTH))
        return "writable by other users";
    return S_ISDIR(mode) ? "searchable by other users" : "open to other users";
}

bool private_wants_gzip(const char *path)
{
    size_t n = strlen(path);

    return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* fopencookie()'s write: the bytes into the gzip stream, in pieces gzwrite() takes. */
static ssize_t gz_cookie_write(void *cookie, const char *data, size_t n)
{
    size_t done = 0;

    while (done < n) {
        unsigned piece = n - done > (1u << 30) ? (1u << 30) : (unsigned)(n - done);
        int w = gzwrite((gzFile)cookie, data + done, piece);
        if (w <= 0) {
            int zerr;
            gzerror((gzFile)cookie, &zerr);
            if (zerr != Z_ERRNO)
                errno = EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)done;
}

/* fopencookie()'s close: the gzip trailer is written as the stream ends. */
static int gz_cookie_close(void *cookie)
{
    int rc = gzclose((gzFile)cookie);

    if (rc == Z_OK)
        return 0;
    if (rc != Z_ERRNO)
        errno = EIO;
    return -1;
}

FILE *private_gzip_stream(int fd)
{
    static const cookie_io_functions_t io = {.write = gz_cookie_write, .close = gz_cookie_close};
    int gfd = dup(fd);
    gzFile gz;
    FILE *f;

    if (gfd < 0)
        return NULL;
    gz = gzdopen(gfd, "wb6");
    if (gz == NULL) {
        close(gfd);
        errno = errno != 0 ? errno : ENOMEM;
        return NULL;
    }
    f = fopencookie(gz, "w", io);
    if (f == NULL)
        gzclose(gz);
    return f;
}

/* "cannot create: ..." or, with a name, "cannot create the metrics file: ..." */
static int io_error(const struct private_file *pf, const char *path, const char *verb, int e,
                    struct blast_error *err)
{
    return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot %s%s%s: %s", verb,
                           pf->what != NULL ? " " : "", pf->what != NULL ? pf->what : "",
                           strerror(e));
}

int private_file_open(struct private_file *pf, const char *path, mode_t mode,
                      struct blast_error *err)
{
    return private_file_open_named(pf, path, mode, NULL, err);
}

/*
 * The temporary file pf->tmp: tmpl set makes it with mkstemp() from that template,
 * else it is made at that fixed name, replacing a leftover. Then mode and a stream.
 */
static int open_tmp(struct private_file *pf, const char *path, bool tmpl, mode_t mode,
                    struct blast_error *err)
{
    int fd;

    if (tmpl) {
        fd = private_mkstemp(pf->tmp);
    } else {
        /* a leftover of a crash: made again from nothing, so its mode is ours */
        if (unlink(pf->tmp) != 0 && errno != ENOENT)
            return io_error(pf, pf->tmp, "remove", errno, err);
        fd = open(pf->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, PRIVATE_FILE_MODE);
    }
    if (fd < 0) {
        int e = errno;
        if (tmpl) {
            free(pf->tmp); /* nothing was made: nothing to remove */
            pf->tmp = NULL;
        }
        return io_error(pf, path, "create", e, err);
    }
    if ((mode != PRIVATE_FILE_MODE && fchmod(fd, mode) != 0) || (pf->f = fdopen(fd, "w")) == NULL) {
        int e = errno;
        close(fd);
        return io_error(pf, path, "create", e, err);
    }
    return 0;
}

int private_file_open_named(struct private_file *pf, const char *path, mode_t mode,
                            const char *what, struct blast_error *err)
{
    size_t n = strlen(path) + 16;
    int rc;

    memset(pf, 0, sizeof *pf);
    pf->fd = -1;
    pf->what = what;
    if ((pf->path = strdup(path)) == NULL || (pf->tmp = malloc(n)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    /* same directory as the target, so rename() is atomic */
    snprintf(pf->tmp, n, "%s.tmp.XXXXXX", path);
    rc = open_tmp(pf, path, true, mode, err);
out:
    if (rc < 0)
        private_file_abort(pf);
    return rc;
}

int private_file_open_fixed(struct private_file *pf, const char *path, const char *tmp, mode_t mode,
                            const char *what, struct blast_error *err)
{
    int rc;

    memset(pf, 0, sizeof *pf);
    pf->fd = -1;
    pf->what = what;
    if ((pf->path = strdup(path)) == NULL || (pf->tmp = strdup(tmp)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    rc = open_tmp(pf, tmp, false, mode, err);
out:
    if (rc < 0)
        private_file_abort(pf);
    return rc;
}

int private_file_gzip(struct private_file *pf, struct blast_error *err)
{
    int fd = fileno(pf->f);
    FILE *gz;

    /* the gzip stream writes through a descriptor of its own: fd stays for the fsync */
    if ((pf->fd = dup(fd)) < 0 || (gz = private_gzip_stream(fd)) == NULL)
        return io_error(pf, pf->path, "create", errno, err);
    fclose(pf->f);
    pf->f = gz;
    return 0;
}

int private_file_commit(struct private_file *pf, struct blast_error *err)
{
    char *dir = NULL;
    int rc = 0, e, dfd;

    if (pf->fd >= 0) {
        /* gzip'ed: its trailer is written as the stream closes, then the file is synced */
        e = fclose(pf->f);
        pf->f = NULL;
        if (e != 0 || fsync(pf->fd) != 0) {
            rc = io_error(pf, pf->path, "write", errno, err);
            goto out;
        }
    } else if (fflush(pf->f) != 0 || ferror(pf->f) || fsync(fileno(pf->f)) != 0) {
        rc = io_error(pf, pf->path, "write", errno, err);
        goto out;
    }
    e = pf->f != NULL ? fclose(pf->f) : 0;
    pf->f = NULL;
    if (e != 0 || rename(pf->tmp, pf->path) != 0) {
        rc = io_error(pf, pf->path, "write", errno, err);
        goto out;
    }
    free(pf->tmp);
    pf->tmp = NULL;
    /* make the rename itself durable */
    if ((dir = strdup(pf->path)) != NULL &&
        (dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    free(dir);
    private_file_abort(pf);
    return rc;
}

void private_file_abort(struct private_file *pf)
{
    if (pf->f != NULL)
        fclose(pf->f);
    if (pf->fd > 0)
        close(pf->fd);
    if (pf->tmp != NULL)
        unlink(pf->tmp);
    free(pf->tmp);
    free(pf->path);
    memset(pf, 0, sizeof *pf);
}
