/*
 * retention - the files blast keeps for a campaign, found so that `blast prune` can
 * remove them (docs/files.md, "Retention"), and the marker that makes a dry run's
 * directory recognisable as blast's.
 *
 * Owns: which names belong to a campaign's journal (the journal, its lock, a
 * compaction's leftover JOURNAL.compacting, the seeds' JOURNAL.seeds, the same for
 * each shard's journal) and to its report (the report, its .gz twin, each shard's
 * report, the temporary files REPORT.tmp.XXXXXX a crash leaves), found in the directories that hold
 * them; the dry-run marker DIR/.blast-dry-run (JSON: the campaign's name, its file's absolute path,
 * the time; 0600), written by `send --dry-run` and read here; which files of a dry-run directory
 * are blast's (the marker and ROW.eml) and which are not. Does not own: where a campaign's journal
 * and report are (the caller: the campaign's settings or the defaults beside its file), whether a
 * run holds a journal's lock, what to remove and when, removing (cmd/blast/prune.c).
 *
 * Only reads, with lstat(2): a symbolic link is listed as one, never followed, and a
 * directory inside a dry-run directory is not entered.
 */
#ifndef BLAST_RETENTION_H
#define BLAST_RETENTION_H

#include "error.h"

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* The marker's name in a dry-run directory. */
#define RETENTION_MARK_NAME ".blast-dry-run"

/* What a name is to blast. */
enum retention_role {
    RETENTION_NOT_OURS = 0, /* none of the names below */
    RETENTION_DATA,         /* a journal, report, message or leftover temporary file */
    RETENTION_LOCK,         /* a journal's lock (JOURNAL.lock) */
    RETENTION_MARK,         /* a dry-run directory's marker */
};

/* Whether a listed file may go, or why it stays. */
enum retention_keep {
    RETENTION_REMOVABLE = 0, /* blast's, a regular file */
    RETENTION_KEEP_LINK,     /* a symbolic link: never followed, never removed */
    RETENTION_KEEP_OTHER,    /* one of blast's names, but not a regular file */
    RETENTION_KEEP_FOREIGN,  /* in a dry-run directory, a file blast did not write */
};

struct retention_file {
    char *path; /* the directory's path as given, '/', the name */
    enum retention_role role;
    enum retention_keep keep;
    off_t size;   /* lstat's st_size */
    time_t mtime; /* lstat's st_mtime */
    dev_t dev;
    ino_t ino;
};

/* A growing list of files; zeroed is empty. */
struct retention_list {
    struct retention_file *files;
    size_t n, cap;
};

void retention_list_free(struct retention_list *l);

/*
 * What name (a file name, no directory) is to the journal whose file name is base
 * ("news.journal"): base, base.lock, base.compacting and base.seeds, and the same for each shard's
 * journal ("news.shard-2-of-4.journal", docs/sharding.md: the shard's part before the
 * name's extension, 0 <= I < N, 1 < N <= SHARD_MAX, written as blast writes them).
 */
enum retention_role retention_journal_role(const char *base, const char *name);

/*
 * What name is to the report whose file name is base ("news.json"): base, and base.gz
 * when base does not end in .gz, each shard's report of either (and a shard's with
 * .gz added), and each of those followed by a temporary file's ".tmp.XXXXXX" (six
 * letters or digits, as mkstemp(3) makes them). RETENTION_DATA or RETENTION_NOT_OURS.
 */
enum retention_role retention_report_role(const char *base, const char *name);

/*
 * What name is in a dry-run directory: the marker (and a temporary file of it), or a
 * message ROW.eml (a row number: digits, no leading zero, then .eml).
 */
enum retention_role retention_dry_run_role(const char *name);

/*
 * Append to out every file beside journal and beside report that is theirs
 * (retention_journal_role, retention_report_role), in the order the directories
 * list them; either may be NULL. A directory that is not there adds nothing. A name
 * listed already (the same path) is not added again. Errors: BLAST_EIO naming the
 * directory, BLAST_ENOMEM; out keeps what was added.
 */
int retention_campaign_files(const char *journal, const char *report, struct retention_list *out,
                             struct blast_error *err);

/*
 * Append to out every entry of the dry-run directory dir, each with its role: blast's
 * own (RETENTION_REMOVABLE when a regular file), and the rest RETENTION_KEEP_FOREIGN
 * (a directory in it is listed, not entered). Errors: BLAST_EIO naming dir,
 * BLAST_ENOMEM.
 */
int retention_dry_run_files(const char *dir, struct retention_list *out, struct blast_error *err);

/* A dry-run directory's marker, as read. */
struct retention_mark {
    char *campaign;      /* the campaign's name */
    char *campaign_file; /* its file's absolute path when the dry run was made */
    char *time;          /* RFC 3339 */
};

/*
 * Write dir's marker (through core/private: whole or not at all, 0600): the campaign
 * named name, whose file is campaign_file (made absolute here), now. Errors: BLAST_EIO
 * naming the marker, BLAST_ENOMEM.
 */
int retention_mark_write(const char *dir, const char *name, const char *campaign_file,
                         struct blast_error *err);

/*
 * Read dir's marker into out (freed by retention_mark_free). 1 when it is there and
 * blast's; 0 when dir has none; BLAST_EINVAL naming the marker when it is not a
 * regular file (a symbolic link is not followed), not JSON or without its fields;
 * BLAST_EIO when it cannot be read; BLAST_ENOMEM.
 */
int retention_mark_read(const char *dir, struct retention_mark *out, struct blast_error *err);

void retention_mark_free(struct retention_mark *m);

#endif
