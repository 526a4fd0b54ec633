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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        *mode = st.st_mode & 07777;
    return bits != 0;
}

const char *private_exposure(mode_t mode, bool is_dir)
{
    if (mode & (S_IRGRP | S_IROTH))
        return "readable by other users";
    if (mode & (S_IWGRP | S_IWOTH))
        return "writable by other users";
    return is_dir ? "searchable by other users" : "open to other users";
}
