/*
 * private - files and directories that hold recipients' data, kept to their owner.
 *
 * Every file blast writes with recipients' addresses in it (the journal and its lock,
 * the report, dry-run messages, exports with -o, the suppression database) is created
 * with mode 0600 and every directory blast creates for them 0700, whatever the umask
 * (docs/files.md). An existing file or directory is never changed: its owner chose its
 * mode, and private_exposed() tells the commands which ones to warn about.
 *
 * These functions set errno and return -1 on failure, like the system calls they wrap,
 * so that callers word the error for the file they were making.
 */
#ifndef BLAST_PRIVATE_H
#define BLAST_PRIVATE_H

#include "error.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define PRIVATE_FILE_MODE 0600
#define PRIVATE_DIR_MODE  0700

/*
 * open(path, flags | O_CREAT | O_CLOEXEC): a file that did not exist is created 0600
 * (fchmod after the open, so neither the umask nor a default ACL widens it); one that
 * exists keeps its mode. flags holds the access mode and the rest (O_APPEND, O_TRUNC).
 * Returns the descriptor, or -1 with errno set.
 */
int private_open(const char *path, int flags);

/* mkstemp(tmpl), the file made 0600 to be sure, close-on-exec. -1 with errno set. */
int private_mkstemp(char *tmpl);

/*
 * The directory path, created 0700 if it is not there; with parents, the missing
 * directories above it too (each 0700). Directories that exist are left as they are.
 * 0, or -1 with errno set (ENOTDIR when path or a parent is not a directory).
 */
int private_mkdir(const char *path, bool parents);

/* The directories above the file path (not path itself), as private_mkdir(.., true). */
int private_mkdir_parents(const char *path);

/*
 * Whether the existing file or directory path is open to other users: a file readable
 * or writable by its group or others, a directory readable or writable by its group or
 * others or searchable by others. 1 when it is, 0 when it is private or not there, -1
 * with errno set when it cannot be examined. mode (may be NULL) gets its st_mode, type
 * bits included, when it is there.
 */
int private_exposed(const char *path, mode_t *mode);

/*
 * How a mode found open by private_exposed() is open, for a warning: "readable by other
 * users", "writable by other users" or "searchable by other users".
 */
const char *private_exposure(mode_t mode);

/*
 * A file written whole or not at all: a temporary file beside path (so that rename()
 * is atomic) of the given mode, whatever the umask; private_file_commit() syncs it and
 * moves it into place (the rename keeps the mode, and replaces a file that was there),
 * private_file_abort() removes it. mode is PRIVATE_FILE_MODE for anything that holds
 * recipients' data; 0644 only for what others must read and holds none (the metrics).
 */
struct private_file {
    char *path;       /* where it goes */
    const char *what; /* for messages ("the metrics file"), borrowed; NULL: none */
    char *tmp;        /* the temporary file, NULL once committed or aborted */
    FILE *f;
    int fd; /* the temporary file's descriptor once f is a gzip stream, else -1 (0 zeroed) */
};

/* Errors: BLAST_EIO (naming path), BLAST_ENOMEM. */
int private_file_open(struct private_file *pf, const char *path, mode_t mode,
                      struct blast_error *err);

/* The same, messages saying what the file is: "cannot create the metrics file: ...". */
int private_file_open_named(struct private_file *pf, const char *path, mode_t mode,
                            const char *what, struct blast_error *err);

/*
 * The same with a temporary file of a fixed name, tmp, that the caller alone may
 * write (it holds a lock): what a crash left there is replaced. Its name then says
 * what it is, so that the next run can remove it (the journal's JOURNAL.compacting).
 */
int private_file_open_fixed(struct private_file *pf, const char *path, const char *tmp, mode_t mode,
                            const char *what, struct blast_error *err);

/*
 * Make what is written through pf->f gzip'ed (level 6), as for a path ending in ".gz"
 * (private_wants_gzip()). Right after the open, before anything is written.
 * Errors: BLAST_EIO (pf is then to be aborted).
 */
int private_file_gzip(struct private_file *pf, struct blast_error *err);

/* Flush, fsync, rename, fsync the directory; the file is gone on failure. Frees pf's parts. */
int private_file_commit(struct private_file *pf, struct blast_error *err);

/* Remove the temporary file and free pf's parts; accepts one never opened (zeroed). */
void private_file_abort(struct private_file *pf);

/* A path ending in ".gz" asks for gzip'ed contents (reports, exports). */
bool private_wants_gzip(const char *path);

/*
 * A stdio stream that gzip's what is written to it (level 6, gzip's own default) into
 * the file fd, through a descriptor of its own (so that fd stays open for an fsync()
 * after the trailer, which fclose() writes). NULL with errno set on failure.
 */
FILE *private_gzip_stream(int fd);

#endif
