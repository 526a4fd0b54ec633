/*
 * journal - the append-only journal of a campaign. See journal.h.
 *
 * In memory: for each row, the offset of its last record, its state and its
 * attempts (8 bytes a row: 8 MB for a million), so resuming, skipping and rebuilding the report
 * never scan the file twice. The file is opened with O_APPEND and only ever grows at its end;
 * a record cut short (a crash, a full disk) fails its checksum and is cut off at the next open,
 * since it can only be the last one.
 *
 * Who writes: in a durable journal, the journal's own thread (the writer). Callers append
 * a formatted record to a buffer in memory under the lock, and the writer writes what has
 * gathered with one write(), then runs fdatasync() when someone wants more made durable,
 * and so on. A sending session therefore never waits for the file system to take a record
 * (a write() that grows the file can stall behind the commit an fdatasync started), and
 * many records share one write and one sync. A record reaches the kernel within about one
 * fdatasync of being appended; a crash in between loses it as it would a record being
 * formatted, and the row's state stays what the file says (docs/delivery.md). A journal
 * that is not durable (tests, dry runs) is written directly by its callers.
 */
#include "journal.h"
#include "buf.h"
#include "jsontape.h"
#include "outcome.h"
#include "private.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct rowinfo {
    int64_t offset : 48;    /* of the row's last record; -1 when none */
    uint64_t attempts : 12; /* capped at ATTEMPTS_MAX */
    uint64_t state : 4;     /* enum journal_state */
};
_Static_assert(sizeof(struct rowinfo) == 8, "a row's index entry is 8 bytes");

#define ATTEMPTS_MAX 4095

static unsigned capped_attempts(int64_t n)
{
    return n < 0 ? 0 : n > ATTEMPTS_MAX ? ATTEMPTS_MAX : (unsigned)n;
}

struct journal {
    char *path;
    int fd, lockfd;
    bool durable;
    const struct log *log;
    pthread_mutex_t mu;
    pthread_cond_t synced; /* durable_upto or written moved on */
    pthread_cond_t kick;   /* the writer: there is something to write or to sync */
    int64_t end;           /* bytes appended: written + pend_len */
    int64_t written;       /* bytes in the file */
    char *pend;            /* appended records the writer has not taken yet */
    size_t pend_len, pend_cap;
    struct mention *pmen; /* what they say of their rows: indexed once written */
    size_t npmen, cappmen;
    int64_t durable_upto; /* read without the mutex on the fast path: atomic */
    int64_t wanted;       /* the furthest offset asked to be made durable */
    size_t waiters;       /* threads waiting on synced */
    bool busy;            /* the writer is at work: it looks again before it sleeps */
    bool stop;
    pthread_t syncer;
    bool syncer_started;
    int failed; /* sticky: after a write or sync error nothing more is accepted */
    char failure[256];
    struct rowinfo *rows;
    size_t nrows, caprows; /* entries in use and allocated (every row: by row number) */
    /* a journal that keeps some rows only (journal_options.only): which, and their ranks */
    uint64_t *only;
    size_t only_rows;
    uint32_t *rank; /* set bits before each block of 8 words */
    struct rowinfo elsewhere;
    size_t done_before;
};

/* ---- CRC-32 ------------------------------------------------------------------------- */

/*
 * Slicing by 8 (Intel's, as zlib has it): eight bytes a step through eight tables.
 * Every record is checksummed when it is written, twice per message, so the
 * byte-at-a-time loop showed in profiles.
 */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    uint32_t c;
    int n, k;

    for (n = 0; n < 256; n++) {
        c = (uint32_t)n;
        for (k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (n = 0; n < 256; n++)
        for (k = 1; k < 8; k++)
            crc_table[k][n] = crc_table[0][crc_table[k - 1][n] & 0xFF] ^ (crc_table[k - 1][n] >> 8);
}

unsigned long journal_crc32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;

    pthread_once(&crc_once, crc_init);
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
            crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
            crc_table[2][(hi >> 8) & 0xFF] ^ crc_table[1][(hi >> 16) & 0xFF] ^
            crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- rows ------------------------------------------------------------------------------- */

/*
 * Where row's entry is in j->rows: the row itself, or, for a journal that keeps
 * only some rows (journal_options.only), its rank among them; -1 for a row it does
 * not keep.
 */
static long slot(const struct journal *j, size_t row)
{
    size_t w, k;
    long r;

    if (j->only == NULL)
        return row < j->nrows ? (long)row : -1;
    if (row >= j->only_rows || ((j->only[row >> 6] >> (row & 63)) & 1) == 0)
        return -1;
    w = row >> 6;
    r = (long)j->rank[w >> 3];
    for (k = w & ~(size_t)7; k < w; k++)
        r += __builtin_popcountll(j->only[k]);
    return r + __builtin_popcountll(j->only[w] & ((1ULL << (row & 63)) - 1));
}

static struct rowinfo *row_info(struct journal *j, size_t row)
{
    if (j->only != NULL) {
        long s = slot(j, row);
        if (s >= 0)
            return &j->rows[s];
        /* a row another shard keeps: noted nowhere */
        j->elsewhere = (struct rowinfo){-1, 0, JOURNAL_NONE};
        return &j->elsewhere;
    }
    if (row >= j->caprows) {
        size_t cap = j->caprows != 0 ? j->caprows : 1024, i;
        struct rowinfo *r;
        while (cap <= row)
            cap *= 2;
        r = realloc(j->rows, cap * sizeof *r);
        if (r == NULL)
            return NULL;
        for (i = j->caprows; i < cap; i++) {
            r[i].offset = -1;
            r[i].attempts = 0;
            r[i].state = JOURNAL_NONE;
        }
        j->rows = r;
        j->caprows = cap;
    }
    if (row >= j->nrows)
        j->nrows = row + 1;
    return &j->rows[row];
}

/* A journal that keeps only the rows of o->only: their bits, ranks and entries. */
static int keep_only(struct journal *j, const struct journal_rowset *only)
{
    size_t words = (only->nrows + 63) / 64, i, n = 0;

    j->only_rows = only->nrows;
    j->only = malloc((words ? words : 1) * sizeof *j->only);
    j->rank = malloc((words / 8 + 1) * sizeof *j->rank);
    if (j->only == NULL || j->rank == NULL)
        return BLAST_ENOMEM;
    if (words > 0)
        memcpy(j->only, only->bits, words * sizeof *j->only);
    for (i = 0; i < words; i++) {
        if (i % 8 == 0)
            j->rank[i / 8] = (uint32_t)n;
        n += (size_t)__builtin_popcountll(j->only[i]);
    }
    j->rows = malloc((n ? n : 1) * sizeof *j->rows);
    if (j->rows == NULL)
        return BLAST_ENOMEM;
    for (i = 0; i < n; i++)
        j->rows[i] = (struct rowinfo){-1, 0, JOURNAL_NONE};
    j->caprows = j->nrows = n; /* entries, by rank */
    return 0;
}

/* The row's state after a result with this status. */
static enum journal_state state_of_status(int status)
{
    if (status < 0)
        return JOURNAL_NONE;
    if (status == OUTCOME_DEFERRED)
        return JOURNAL_DEFERRED;
    if (status == OUTCOME_UNKNOWN)
        return JOURNAL_UNKNOWN;
    if (status == OUTCOME_RENDERED)
        return JOURNAL_NONE; /* a dry run decides nothing */
    return JOURNAL_FINAL;    /* and a status a later version wrote: it was decided */
}

/* What a record says of its row, to be indexed once it is in the file (row 0: nothing). */
struct mention {
    size_t row;
    int64_t offset;
    unsigned attempts;
    enum journal_state state;
};

/* A record's member (absent, or of another type: NULL or 0), as jansson's getters read them. */
static const char *str(const struct jsontape_node *rec, const char *key)
{
    return jsontape_string(jsontape_member(rec, key));
}

static int64_t num(const struct jsontape_node *rec, const char *key)
{
    return jsontape_integer(jsontape_member(rec, key));
}

static struct mention mention_of(const struct jsontape_node *rec, int64_t offset)
{
    const char *t = str(rec, "t");
    int64_t row = num(rec, "row");
    struct mention m = {0, offset, 0, JOURNAL_NONE};

    if (t == NULL || strcmp(t, "run") == 0 || row <= 0)
        return m;
    m.row = (size_t)row;
    if (strcmp(t, "sending") == 0) {
        m.state = JOURNAL_SENDING;
        m.attempts = capped_attempts(num(rec, "attempt"));
    } else {
        const char *status = str(rec, "status");
        m.state = status != NULL ? state_of_status(outcome_status_parse(status)) : JOURNAL_NONE;
        if (status != NULL && outcome_status_parse(status) < 0)
            m.state = JOURNAL_FINAL;
        m.attempts = capped_attempts(num(rec, "attempts"));
    }
    return m;
}

/* Account for a record in the file: the row's state follows its last record. */
static int index_mention(struct journal *j, const struct mention *m)
{
    struct rowinfo *ri;

    if (m->row == 0)
        return 0;
    if ((ri = row_info(j, m->row)) == NULL)
        return BLAST_ENOMEM;
    ri->offset = m->offset;
    ri->state = (uint8_t)m->state;
    ri->attempts = m->attempts;
    return 0;
}

static int index_record(struct journal *j, const struct jsontape_node *rec, int64_t offset)
{
    struct mention m = mention_of(rec, offset);

    return index_mention(j, &m);
}

/* ---- records ------------------------------------------------------------------------------- */

/*
 * Parse "CRC JSON" (without the newline) onto t: the record, which t holds until
 * its next parse, or NULL when torn or damaged. The tape accepts exactly what
 * jansson did here, so a record the journal took before is taken now.
 */
static const struct jsontape_node *parse_line(struct jsontape *t, const char *line, size_t len)
{
    char *end;
    unsigned long crc;

    if (len < 10 || line[8] != ' ')
        return NULL;
    crc = strtoul(line, &end, 16);
    if (end != line + 8 || crc != journal_crc32(line + 9, len - 9))
        return NULL;
    if (jsontape_parse(t, line + 9, len - 9, 0, NULL) < 0)
        return NULL;
    return jsontape_root(t);
}

static int fail_io(struct journal *j, struct blast_error *err, const char *what)
{
    if (!j->failed) {
        snprintf(j->failure, sizeof j->failure, "%s: %s", what, strerror(errno));
        __atomic_store_n(&j->failed, BLAST_EIO, __ATOMIC_RELEASE);
    }
    return blast_error_set(err, BLAST_EIO, j->path, 0, 0, "%s", j->failure);
}

/* ---- durability ------------------------------------------------------------------------ */

/*
 * The writer: one thread that writes what callers appended, and runs fdatasync()
 * whenever someone wants more made durable than is. A sync covers everything
 * written before it starts, so the records of every connection that arrive while
 * one runs share the next write and the next sync (group commit), and a caller
 * that asked early (journal_sending() with a mark) does not wait at all when the
 * disk was quicker than its round trips. Each turn writes, then syncs: records
 * that keep arriving cannot hold a sync back.
 */
static void *syncer_main(void *arg)
{
    struct journal *j = arg;
    char *batch = NULL;
    struct mention *men = NULL;
    size_t batch_cap = 0, men_cap = 0;

    pthread_mutex_lock(&j->mu);
    for (;;) {
        int64_t upto;
        int r;

        while (!j->stop && !j->failed && j->pend_len == 0 && j->durable_upto >= j->wanted) {
            j->busy = false;
            pthread_cond_wait(&j->kick, &j->mu);
        }
        j->busy = true;
        if (j->failed || (j->stop && j->pend_len == 0 && j->durable_upto >= j->wanted))
            break;
        if (j->pend_len > 0) {
            /* take the buffers whole; callers go on appending to the other ones */
            char *b = j->pend;
            struct mention *m = j->pmen;
            size_t len = j->pend_len, cap = j->pend_cap, nm = j->npmen, capm = j->cappmen, i;
            ssize_t w;
            j->pend = batch;
            j->pend_cap = batch_cap;
            j->pend_len = 0;
            j->pmen = men;
            j->cappmen = men_cap;
            j->npmen = 0;
            batch = b;
            batch_cap = cap;
            men = m;
            men_cap = capm;
            pthread_mutex_unlock(&j->mu);
            w = write(j->fd, batch, len);
            pthread_mutex_lock(&j->mu);
            if (w != (ssize_t)len) {
                if (w >= 0)
                    errno = ENOSPC;
                fail_io(j, NULL, "cannot write the journal");
                break;
            }
            j->written += (int64_t)len;
            /* the index only ever points into the file */
            for (i = 0; i < nm; i++)
                if (index_mention(j, &men[i]) < 0) {
                    errno = ENOMEM;
                    fail_io(j, NULL, "cannot index the journal");
                    break;
                }
            if (j->failed)
                break;
            if (j->waiters > 0)
                pthread_cond_broadcast(&j->synced);
        }
        if (j->durable_upto >= j->wanted || j->durable_upto >= j->written)
            continue;
        upto = j->written;
        pthread_mutex_unlock(&j->mu);
        r = fdatasync(j->fd);
        pthread_mutex_lock(&j->mu);
        if (r != 0) {
            fail_io(j, NULL, "cannot flush the journal to disk");
            break;
        }
        if (upto > j->durable_upto)
            __atomic_store_n(&j->durable_upto, upto, __ATOMIC_RELEASE);
        if (j->waiters > 0)
            pthread_cond_broadcast(&j->synced);
    }
    /* whoever still waits learns of the failure */
    j->busy = false;
    pthread_cond_broadcast(&j->synced);
    pthread_mutex_unlock(&j->mu);
    free(batch);
    free(men);
    return NULL;
}

/* Wake the writer if it sleeps; the caller holds the mutex. */
static void kick(struct journal *j)
{
    /* a writer at work looks again before it sleeps: no wake-up needed */
    if (!j->busy)
        pthread_cond_signal(&j->kick);
}

/* Ask for everything up to mark to be made durable; the caller holds the mutex. */
static void want(struct journal *j, int64_t mark)
{
    if (mark <= j->wanted)
        return;
    j->wanted = mark;
    kick(j);
}

/*
 * Start a record's line in b: room for the "CRC " in front, filled by
 * line_finish() once the JSON after it is complete.
 */
static int line_start(struct buf *b)
{
    buf_reset(b);
    return buf_append(b, "00000000 ", 9);
}

/* Fill in the CRC of the JSON and end the line. */
static int line_finish(struct buf *b)
{
    char crc[9];

    snprintf(crc, sizeof crc, "%08lx", journal_crc32(b->data + 9, b->len - 9));
    memcpy(b->data, crc, 8);
    return buf_putc(b, '\n');
}

/*
 * Append a record, formatted as line (see format_record), whose mention m of its
 * row is indexed once it is in the file; the caller holds the mutex, so that the
 * offsets follow the order of the writes.
 */
static int append_line(struct journal *j, struct mention *m, const char *line, size_t n,
                       struct blast_error *err)
{
    ssize_t w;
    int rc;

    m->offset = j->end;
    if (j->failed)
        return blast_error_set(err, j->failed, j->path, 0, 0, "%s", j->failure);
    if (j->syncer_started) {
        /* the writer writes it (see the top of this file) */
        if (j->pend_len + n > j->pend_cap) {
            size_t cap = j->pend_cap > 0 ? j->pend_cap : 64 * 1024;
            char *bigger;
            while (cap < j->pend_len + n)
                cap *= 2;
            if ((bigger = realloc(j->pend, cap)) == NULL)
                return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
            j->pend = bigger;
            j->pend_cap = cap;
        }
        if (j->npmen == j->cappmen) {
            size_t cap = j->cappmen > 0 ? j->cappmen * 2 : 256;
            struct mention *bigger = realloc(j->pmen, cap * sizeof *bigger);
            if (bigger == NULL)
                return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
            j->pmen = bigger;
            j->cappmen = cap;
        }
        j->pmen[j->npmen++] = *m;
        memcpy(j->pend + j->pend_len, line, n);
        j->pend_len += n;
        j->end += (int64_t)n;
        kick(j);
        return 0;
    }
    /* one write, appended whole or recognised as torn later */
    w = write(j->fd, line, n);
    if (w != (ssize_t)n) {
        if (w >= 0)
            errno = ENOSPC;
        return fail_io(j, err, "cannot write the journal");
    }
    j->written += (int64_t)n;
    rc = index_mention(j, m);
    if (rc < 0)
        blast_error_set(err, rc, j->path, 0, 0, "out of memory");
    j->end += (int64_t)n;
    if (!j->durable)
        __atomic_store_n(&j->durable_upto, j->end, __ATOMIC_RELEASE);
    return rc;
}

/* Append a finished line (line_finish) that says m of its row; *mark (may be NULL): its end. */
static int append(struct journal *j, struct mention *m, const struct buf *line, int64_t *mark,
                  struct blast_error *err)
{
    int rc;

    pthread_mutex_lock(&j->mu);
    rc = append_line(j, m, line->data, line->len, err);
    if (rc == 0 && mark != NULL) {
        *mark = j->end;
        want(j, j->end);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* Read the record at offset (pread until its newline into b) onto t; NULL when it cannot be. */
static const struct jsontape_node *read_at(struct journal *j, int64_t offset, struct buf *b,
                                           struct jsontape *t)
{
    char *nl = NULL;

    buf_reset(b);
    for (;;) {
        ssize_t n;
        if (buf_reserve(b, 4096) < 0)
            return NULL;
        n = pread(j->fd, b->data + b->len, b->cap - b->len - 1, offset + (int64_t)b->len);
        if (n <= 0)
            return NULL;
        nl = memchr(b->data + b->len, '\n', (size_t)n);
        b->len += (size_t)n;
        if (nl != NULL)
            return parse_line(t, b->data, (size_t)(nl - b->data));
    }
}

/* ---- opening ------------------------------------------------------------------------------- */

static int take_lock(struct journal *j, struct blast_error *err)
{
    size_t n = strlen(j->path) + 6;
    char *lock = malloc(n);

    if (lock == NULL)
        return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
    snprintf(lock, n, "%s.lock", j->path);
    /* empty, but its name says which campaign is being sent: private like the journal */
    j->lockfd = private_open(lock, O_RDWR);
    if (j->lockfd < 0 || flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        blast_error_set(err, BLAST_EIO, j->path, 0, 0,
                        e == EWOULDBLOCK ? "another 'blast send' of this campaign is running "
                                           "(it holds %s)"
                                         : "cannot lock %s: %s",
                        lock, strerror(e));
        free(lock);
        return BLAST_EIO;
    }
    free(lock);
    return 0;
}

/* Read earlier runs' records: index them, check the hash, cut a torn last record. */
static int replay(struct journal *j, const struct journal_options *o, struct blast_error *err)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int64_t offset = 0;
    int rc = 0;
    int dupfd = dup(j->fd);
    char *last_hash = NULL; /* the campaign as the last run saw it */
    size_t last_hash_line = 0;
    struct jsontape tape;

    if (dupfd < 0 || (f = fdopen(dupfd, "r")) == NULL) {
        if (dupfd >= 0)
            close(dupfd);
        return fail_io(j, err, "cannot read the journal");
    }
    jsontape_init(&tape);
    rewind(f);
    while ((n = getline(&line, &cap, f)) > 0) {
        bool complete = line[n - 1] == '\n';
        const struct jsontape_node *rec = complete ? parse_line(&tape, line, (size_t)n - 1) : NULL;
        const char *t;

        lineno++;
        if (rec == NULL) {
            /* damaged: fine only as the very last record, torn by a crash */
            if (getc(f) != EOF) {
                rc = blast_error_set(err, BLAST_EINVAL, j->path, (int)lineno, 0,
                                     "record %zu of the journal is damaged; move the file "
                                     "aside (and the report with it) to start over",
                                     lineno);
                break;
            }
            log_msg(o->log, LOG_LEVEL_WARN,
                    "%s:%zu: the journal's last record was torn (a crash?); it is cut off", j->path,
                    lineno);
            if (ftruncate(j->fd, offset) != 0)
                rc = fail_io(j, err, "cannot cut the torn record");
            break;
        }
        t = str(rec, "t");
        if (t != NULL && strcmp(t, "run") == 0) {
            const char *h = str(rec, "hash");
            if (h != NULL) {
                free(last_hash);
                if ((last_hash = strdup(h)) == NULL) {
                    rc = blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
                    break;
                }
                last_hash_line = lineno;
            }
        } else if ((rc = index_record(j, rec, offset)) < 0) {
            blast_error_set(err, rc, j->path, 0, 0, "out of memory");
            break;
        }
        offset += n;
    }
    free(line);
    jsontape_free(&tape);
    fclose(f);
    /*
     * Only the last run counts: once a changed campaign was resumed with --force,
     * the journal goes on with that campaign, and the next resume needs no --force.
     */
    if (rc == 0 && o->hash != NULL && last_hash != NULL && strcmp(last_hash, o->hash) != 0 &&
        (o->legacy_hash == NULL || strcmp(last_hash, o->legacy_hash) != 0) && !o->force)
        rc = blast_error_set(err, BLAST_EINVAL, j->path, (int)last_hash_line, 0,
                             "the campaign changed since this journal's last run (its file, "
                             "templates, list, or the reports given to --exclude-report and "
                             "--suppress-from): resuming could send someone the mail twice; "
                             "--force resumes anyway, --fresh starts over");
    free(last_hash);
    j->end = rc == 0 ? offset : j->end;
    return rc;
}

int journal_open(const char *path, const struct journal_options *o, struct journal **out,
                 struct blast_error *err)
{
    struct journal *j;
    struct buf run = BUF_INIT;
    struct mention none = {0, 0, 0, JOURNAL_NONE};
    char when[40];
    size_t i;
    int rc;

    *out = NULL;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    j->fd = j->lockfd = -1;
    j->durable = o->durable;
    j->log = o->log;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->synced, NULL);
    pthread_cond_init(&j->kick, NULL);
    if ((j->path = strdup(path)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    /* the directories and files hold recipients' addresses: the owner's only (docs/files.md) */
    if (private_mkdir_parents(path) != 0) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot create its directory: %s",
                             strerror(errno));
        goto out;
    }
    if (o->lock && (rc = take_lock(j, err)) < 0)
        goto out;
    j->fd = private_open(path, O_RDWR | O_APPEND);
    if (j->fd < 0) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open the journal: %s",
                             strerror(errno));
        goto out;
    }
    if (o->fresh && ftruncate(j->fd, 0) != 0) {
        rc = fail_io(j, err, "cannot empty the journal");
        goto out;
    }
    if (o->only != NULL && keep_only(j, o->only) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = replay(j, o, err)) < 0)
        goto out;
    /* what earlier runs wrote was synced at close */
    j->written = j->durable_upto = j->wanted = j->end;
    if (j->durable) {
        if ((rc = pthread_create(&j->syncer, NULL, syncer_main, j)) != 0) {
            errno = rc;
            rc = fail_io(j, err, "cannot start the journal's writer thread");
            goto out;
        }
        j->syncer_started = true;
    }
    for (i = 0; i < j->nrows; i++) {
        /* a message on its way when an earlier run stopped: it may have gone */
        if (j->rows[i].state == JOURNAL_SENDING)
            j->rows[i].state = JOURNAL_UNKNOWN;
        j->done_before += j->rows[i].state != JOURNAL_NONE;
    }
    timeutil_rfc3339(timeutil_now(), when, sizeof when);
    if (line_start(&run) < 0 || buf_puts(&run, "{\"t\":\"run\",\"hash\":") < 0 ||
        text_json_string(&run, o->hash) < 0 || buf_printf(&run, ",\"time\":\"%s\"}", when) < 0 ||
        line_finish(&run) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = append(j, &none, &run, NULL, err)) < 0 || (rc = journal_sync(j, err)) < 0)
        goto out;
    *out = j;
    j = NULL;
out:
    buf_free(&run);
    journal_close(j);
    return rc;
}

void journal_close(struct journal *j)
{
    if (j == NULL)
        return;
    if (j->syncer_started) {
        /* the syncer makes what is left durable, then ends */
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        want(j, j->end);
        pthread_cond_signal(&j->kick); /* a stop is news even to a busy writer */
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->syncer, NULL);
    }
    if (j->fd >= 0)
        close(j->fd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the flock */
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->synced);
    pthread_cond_destroy(&j->kick);
    free(j->pend);
    free(j->pmen);
    free(j->rows);
    free(j->only);
    free(j->rank);
    free(j->path);
    free(j);
}

void journal_discard(struct journal *j)
{
    if (j == NULL)
        return;
    unlink(j->path);
    journal_close(j);
}

/* ---- using it ---------------------------------------------------------------------------- */

enum journal_state journal_state(struct journal *j, size_t row, int *attempts)
{
    enum journal_state st = JOURNAL_NONE;
    int n = 0;

    pthread_mutex_lock(&j->mu);
    long k = slot(j, row);
    if (k >= 0) {
        st = (enum journal_state)j->rows[k].state;
        n = j->rows[k].attempts;
    }
    pthread_mutex_unlock(&j->mu);
    if (attempts != NULL)
        *attempts = n;
    return st;
}

size_t journal_done_before(const struct journal *j)
{
    return j->done_before;
}

int journal_sending(struct journal *j, size_t row, const char *email, const char *message_id,
                    int attempt, const char *relay, int64_t *mark, struct blast_error *err)
{
    struct mention m = {row, 0, capped_attempts(attempt), JOURNAL_SENDING};
    struct buf line = BUF_INIT;
    char when[40];
    int rc;

    timeutil_rfc3339(timeutil_now(), when, sizeof when);
    if (line_start(&line) < 0 ||
        buf_printf(&line, "{\"t\":\"sending\",\"row\":%zu,\"email\":", row) < 0 ||
        text_json_string(&line, email) < 0 || buf_puts(&line, ",\"message_id\":") < 0 ||
        text_json_string(&line, message_id) < 0 ||
        buf_printf(&line, ",\"attempt\":%d,\"relay\":", attempt) < 0 ||
        text_json_string(&line, relay) < 0 || buf_printf(&line, ",\"time\":\"%s\"}", when) < 0 ||
        line_finish(&line) < 0) {
        buf_free(&line);
        return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
    }
    rc = append(j, &m, &line, mark, err);
    buf_free(&line);
    return rc;
}

int journal_record(struct journal *j, const struct outcome *o, struct blast_error *err)
{
    struct mention m = {o->row, 0, capped_attempts(o->attempts), state_of_status((int)o->status)};
    struct buf line = BUF_INIT;
    int rc;

    if (line_start(&line) < 0 || outcome_format_json(o, true, &line) < 0 ||
        line_finish(&line) < 0) {
        buf_free(&line);
        return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
    }
    rc = append(j, &m, &line, NULL, err);
    buf_free(&line);
    return rc;
}

int journal_wait_durable(struct journal *j, int64_t mark, struct blast_error *err)
{
    int rc = 0;

    /* the usual case once the syncer keeps ahead: no lock, no wait */
    if (__atomic_load_n(&j->durable_upto, __ATOMIC_ACQUIRE) >= mark &&
        !__atomic_load_n(&j->failed, __ATOMIC_RELAXED))
        return 0;
    pthread_mutex_lock(&j->mu);
    if (!j->failed && j->durable_upto < mark) {
        want(j, mark);
        j->waiters++;
        while (!j->failed && j->durable_upto < mark)
            pthread_cond_wait(&j->synced, &j->mu);
        j->waiters--;
    }
    if (j->failed)
        rc = blast_error_set(err, j->failed, j->path, 0, 0, "%s", j->failure);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int journal_sync(struct journal *j, struct blast_error *err)
{
    int64_t mark;

    pthread_mutex_lock(&j->mu);
    mark = j->end;
    pthread_mutex_unlock(&j->mu);
    return journal_wait_durable(j, mark, err);
}

/*
 * A record as the row's outcome: a result as it was written; a "sending" left by a
 * run that stopped before its result: unknown, since the message may have gone.
 */
static int as_outcome(const struct jsontape_node *rec, struct outcome *o, struct blast_error *err)
{
    const char *t = str(rec, "t");

    if (t == NULL || strcmp(t, "sending") != 0)
        return outcome_from_tape(rec, o, err);
    outcome_init(o);
    o->row = (size_t)num(rec, "row");
    o->status = OUTCOME_UNKNOWN;
    o->attempts = (int)num(rec, "attempt");
    if (timeutil_parse_rfc3339(str(rec, "time"), &o->first) < 0)
        o->first.sec = 0;
    o->last = o->first;
    if (outcome_set(&o->email, str(rec, "email")) < 0 ||
        outcome_set(&o->relay, str(rec, "relay")) < 0 ||
        outcome_set(&o->message_id, str(rec, "message_id")) < 0 ||
        outcome_set(&o->detail, "the message was on its way when the run stopped; it may have "
                                "been delivered") < 0) {
        outcome_free(o);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    return 0;
}

/*
 * Where row's last record starts, -1 for none. The index points only at records in
 * the file (see syncer_main): first let it catch up with everything appended so far.
 */
static int64_t row_offset(struct journal *j, size_t row)
{
    int64_t offset;

    pthread_mutex_lock(&j->mu);
    if (j->written < j->end && !j->failed) {
        int64_t upto = j->end;
        j->waiters++;
        while (!j->failed && j->written < upto) {
            kick(j);
            pthread_cond_wait(&j->synced, &j->mu);
        }
        j->waiters--;
    }
    long k = slot(j, row);
    offset = k >= 0 ? j->rows[k].offset : -1;
    pthread_mutex_unlock(&j->mu);
    return offset;
}

static int outcome_from_record(struct journal *j, const struct jsontape_node *rec, size_t row,
                               struct outcome *o, struct blast_error *err)
{
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    if ((rc = as_outcome(rec, o, &e)) < 0)
        return blast_error_set(err, rc, j->path, 0, 0, "the record of row %zu: %s", row, e.text);
    return 0;
}

/*
 * The record at offset as an outcome in o (empty). b and t are scratch, the
 * caller's, so that journal_each() reads every row in the same memory.
 */
static int outcome_at(struct journal *j, int64_t offset, size_t row, struct outcome *o,
                      struct buf *b, struct jsontape *t, struct blast_error *err)
{
    const struct jsontape_node *rec = read_at(j, offset, b, t);

    if (rec == NULL)
        return blast_error_set(err, BLAST_EIO, j->path, 0, 0,
                               "cannot read back the record of row %zu", row);
    return outcome_from_record(j, rec, row, o, err);
}

int journal_result(struct journal *j, size_t row, struct outcome *o, struct blast_error *err)
{
    int64_t offset = row_offset(j, row);
    struct buf b = BUF_INIT;
    struct jsontape t;
    int rc;

    if (offset < 0)
        return 0;
    jsontape_init(&t);
    rc = outcome_at(j, offset, row, o, &b, &t, err);
    jsontape_free(&t);
    buf_free(&b);
    return rc < 0 ? rc : 1;
}

int journal_each(struct journal *j, size_t rows,
                 int (*fn)(void *arg, const struct outcome *o, struct blast_error *err), void *arg,
                 struct blast_error *err)
{
    struct buf b = BUF_INIT;
    struct jsontape t;
    struct outcome o;
    size_t row;
    int rc = 0;

    jsontape_init(&t);
    for (row = 1; row <= rows && rc == 0; row++) {
        /* under the lock and after the writer caught up: a row appended a moment ago counts */
        int64_t offset = row_offset(j, row);
        if (offset < 0)
            continue;
        if ((rc = outcome_at(j, offset, row, &o, &b, &t, err)) < 0)
            break;
        rc = fn(arg, &o, err);
        outcome_free(&o);
    }
    jsontape_free(&t);
    buf_free(&b);
    return rc;
}

int journal_read_sent(const char *path, int (*fn)(void *arg, const struct journal_sent *s),
                      void *arg, struct blast_error *err)
{
    FILE *f = fopen(path, "re");
    struct jsontape tape;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read the journal: %s",
                               strerror(errno));
    jsontape_init(&tape);
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        const struct jsontape_node *rec =
            line[n - 1] == '\n' ? parse_line(&tape, line, (size_t)n - 1) : NULL;
        const char *t = str(rec, "t");
        int64_t row = num(rec, "row");
        struct journal_sent sent = {(size_t)row, str(rec, "email"), str(rec, "message_id")};
        if (t != NULL && strcmp(t, "sending") == 0 && row > 0 && sent.email != NULL)
            rc = fn(arg, &sent);
    }
    if (rc == 0 && ferror(f))
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read the journal: %s",
                             strerror(errno));
    free(line);
    jsontape_free(&tape);
    fclose(f);
    return rc;
}
