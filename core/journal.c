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
 *
 * Packs (journal_compact()): a pack record's "z" is the zlib stream of lines "ROW JSON\n",
 * rows ascending, each row's earlier "sending" records that may have gone first and its
 * last record last; "rows" lists the rows whose last record it holds, as ranges
 * ("1-1024,1030"), so that opening a compacted journal indexes them without inflating
 * anything: the index points such a row at its pack, which is inflated when the row's
 * record is read (journal_each() keeps the last pack it inflated, so each is inflated once).
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
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

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
    size_t loose; /* row records outside packs: in the file at open, and appended since */
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

    j->loose += m.row != 0;
    return index_mention(j, &m);
}

static int pack_ranges(const char *s, int (*fn)(void *arg, size_t first, size_t last), void *arg);

/* The most records a pack read back may say it has (compaction writes at most PACK_ROWS
 * rows, each with its last record and the "sending" records kept before it). */
#define PACK_RECORDS_MAX (1u << 20)

struct pack_indexing {
    struct journal *j;
    int64_t offset;
    size_t left; /* rows the pack may still list: one record at least each */
};

/* Each range's size is checked before any row of it is indexed: a damaged list cannot
 * make the index grow beyond what the pack's records could hold. */
static int count_pack_range(void *arg, size_t first, size_t last)
{
    struct pack_indexing *x = arg;

    if (last - first + 1 > x->left)
        return -1;
    x->left -= last - first + 1;
    return 0;
}

static int index_pack_range(void *arg, size_t first, size_t last)
{
    const struct pack_indexing *x = arg;
    size_t row;

    for (row = first; row <= last; row++) {
        /* a pack holds rows in a final state only (journal_compact) */
        struct mention m = {row, x->offset, 0, JOURNAL_FINAL};
        int rc = index_mention(x->j, &m);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * A pack's rows point at it. BLAST_EINVAL when its list of rows is not one, or lists
 * more rows than it has records (at most PACK_RECORDS_MAX).
 */
static int index_pack(struct journal *j, const struct jsontape_node *rec, int64_t offset)
{
    int64_t records = num(rec, "records");
    struct pack_indexing x = {j, offset, 0};
    int rc;

    if (records <= 0 || records > PACK_RECORDS_MAX)
        return BLAST_EINVAL;
    x.left = (size_t)records;
    if (pack_ranges(str(rec, "rows"), count_pack_range, &x) < 0)
        return BLAST_EINVAL;
    rc = pack_ranges(str(rec, "rows"), index_pack_range, &x);
    return rc == -1 ? BLAST_EINVAL : rc;
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
    j->loose += m->row != 0;
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

/* ---- packs --------------------------------------------------------------------------------- */

#define PACK_ROWS     1024                /* rows a pack holds at most */
#define PACK_TEXT_MAX (4u * 1024 * 1024)  /* and inflated bytes, beyond which it is full */
#define PACK_SIZE_MAX (64u * 1024 * 1024) /* the largest inflated size read back */
#define PACK_LEVEL    3                   /* level 6 saves 14% of the size for 25% more time */

/*
 * Call fn for each range of "1-1024,1030" (first <= last, ascending). -1 when the
 * text is not such a list, or fn's negative value.
 */
static int pack_ranges(const char *s, int (*fn)(void *arg, size_t first, size_t last), void *arg)
{
    size_t prev = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (;;) {
        char *end;
        unsigned long long a, b;
        int rc;
        if (*s < '1' || *s > '9')
            return -1;
        a = strtoull(s, &end, 10);
        b = a;
        if (*end == '-') {
            if (end[1] < '1' || end[1] > '9')
                return -1;
            b = strtoull(end + 1, &end, 10);
        }
        if (a == 0 || b < a || a <= prev || b > (1ULL << 40))
            return -1;
        if ((rc = fn(arg, (size_t)a, (size_t)b)) < 0)
            return rc;
        prev = (size_t)b;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
}

/* A pack inflated: its text, and where each of its records starts. */
struct packrec {
    size_t row;
    uint32_t start, len; /* the record's JSON in text, without the row and the newline */
};

struct packview {
    int64_t offset; /* of its line in the file; -1: none loaded */
    struct buf text;
    struct buf bin; /* the deflated bytes, scratch */
    struct packrec *recs;
    size_t nrecs, caprecs;
};

static void packview_init(struct packview *v)
{
    memset(v, 0, sizeof *v);
    v->offset = -1;
}

static void packview_free(struct packview *v)
{
    buf_free(&v->text);
    buf_free(&v->bin);
    free(v->recs);
    packview_init(v);
}

/*
 * Inflate the pack record rec (a parsed line, offset its place) into v: its "z"
 * decoded, inflated to its "size" and cut into records. -1 when it is damaged.
 */
static int packview_load(struct packview *v, const struct jsontape_node *rec, int64_t offset)
{
    const struct jsontape_node *z = jsontape_member(rec, "z");
    const char *b64 = jsontape_string(z);
    size_t b64len = jsontape_size(z), pads = 0, nrec = 0, pos;
    int64_t size = jsontape_integer(jsontape_member(rec, "size"));
    int64_t records = jsontape_integer(jsontape_member(rec, "records"));
    uLongf got;
    int n;

    v->offset = -1;
    v->nrecs = 0;
    if (b64 == NULL || b64len == 0 || b64len % 4 != 0 || b64len > INT32_MAX || size <= 0 ||
        size > PACK_SIZE_MAX || records <= 0 || records > PACK_RECORDS_MAX)
        return -1;
    pads = (b64[b64len - 1] == '=') + (b64[b64len - 2] == '=');
    buf_reset(&v->bin);
    buf_reset(&v->text);
    if (buf_reserve(&v->bin, b64len / 4 * 3 + 1) < 0 || buf_reserve(&v->text, (size_t)size + 1) < 0)
        return -1;
    n = EVP_DecodeBlock((unsigned char *)v->bin.data, (const unsigned char *)b64, (int)b64len);
    if (n < 0 || (size_t)n < pads)
        return -1;
    v->bin.len = (size_t)n - pads;
    got = (uLongf)size;
    if (uncompress((Bytef *)v->text.data, &got, (const Bytef *)v->bin.data, (uLong)v->bin.len) !=
            Z_OK ||
        got != (uLongf)size)
        return -1;
    v->text.len = (size_t)size;
    v->text.data[v->text.len] = '\0';
    /* "ROW JSON\n", rows ascending */
    for (pos = 0; pos < v->text.len;) {
        char *end, *nl = memchr(v->text.data + pos, '\n', v->text.len - pos);
        unsigned long long row;
        if (nl == NULL || v->text.data[pos] < '1' || v->text.data[pos] > '9')
            return -1;
        row = strtoull(v->text.data + pos, &end, 10);
        if (*end != ' ' || end >= nl || (nrec > 0 && row < v->recs[nrec - 1].row))
            return -1;
        if (nrec == v->caprecs) {
            size_t cap = v->caprecs ? v->caprecs * 2 : 1024;
            struct packrec *r = realloc(v->recs, cap * sizeof *r);
            if (r == NULL)
                return -1;
            v->recs = r;
            v->caprecs = cap;
        }
        v->recs[nrec].row = (size_t)row;
        v->recs[nrec].start = (uint32_t)(end + 1 - v->text.data);
        v->recs[nrec].len = (uint32_t)(nl - end - 1);
        nrec++;
        pos = (size_t)(nl - v->text.data) + 1;
    }
    if (nrec != (size_t)records)
        return -1;
    v->nrecs = nrec;
    v->offset = offset;
    return 0;
}

/* The first of row's records in v (they follow one another), or -1. */
static long packview_first(const struct packview *v, size_t row)
{
    size_t lo = 0, hi = v->nrecs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->recs[mid].row < row)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->nrecs && v->recs[lo].row == row ? (long)lo : -1;
}

/* The last of row's records in v: its last record. -1 when v has none of it. */
static long packview_last(const struct packview *v, size_t row)
{
    long k = packview_first(v, row);

    if (k < 0)
        return -1;
    while ((size_t)k + 1 < v->nrecs && v->recs[k + 1].row == row)
        k++;
    return k;
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

/*
 * A compaction that a crash cut short left PATH.compacting: the journal itself is
 * whole (the old one, never touched), so the leftover goes. Only with the lock held.
 */
static int remove_leftover(struct journal *j, struct blast_error *err)
{
    char *tmp = NULL;
    int rc = 0;

    if (asprintf(&tmp, "%s.compacting", j->path) < 0)
        return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
    if (unlink(tmp) == 0)
        log_msg(j->log, LOG_LEVEL_INFO, "%s: removed %s, left by a compaction that did not end",
                j->path, tmp);
    else if (errno != ENOENT)
        rc = blast_error_set(err, BLAST_EIO, tmp, 0, 0, "cannot remove: %s", strerror(errno));
    free(tmp);
    return rc;
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
        } else if (t != NULL && strcmp(t, "pack") == 0) {
            if ((rc = index_pack(j, rec, offset)) < 0) {
                blast_error_set(err, rc, j->path, (int)lineno, 0,
                                rc == BLAST_EINVAL ? "record %zu of the journal: a pack whose "
                                                     "rows cannot be read"
                                                   : "out of memory",
                                lineno);
                break;
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
    if (o->lock && (rc = remove_leftover(j, err)) < 0)
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
    if (!o->no_run &&
        ((rc = append(j, &none, &run, NULL, err)) < 0 || (rc = journal_sync(j, err)) < 0))
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
 * The record at offset as an outcome in o (empty); when it is a pack, row's last
 * record in it. b, t and v are scratch, the caller's, so that journal_each() reads
 * every row in the same memory and inflates each pack once (v keeps the last one).
 */
static int outcome_at(struct journal *j, int64_t offset, size_t row, struct outcome *o,
                      struct buf *b, struct jsontape *t, struct packview *v,
                      struct blast_error *err)
{
    const struct jsontape_node *rec;
    const struct packrec *pr;
    long k;

    if (v->offset != offset) {
        const char *type;
        if ((rec = read_at(j, offset, b, t)) == NULL)
            return blast_error_set(err, BLAST_EIO, j->path, 0, 0,
                                   "cannot read back the record of row %zu", row);
        type = str(rec, "t");
        if (type == NULL || strcmp(type, "pack") != 0)
            return outcome_from_record(j, rec, row, o, err);
        if (packview_load(v, rec, offset) < 0)
            return blast_error_set(err, BLAST_EINVAL, j->path, 0, 0,
                                   "the pack holding row %zu is damaged", row);
    }
    if ((k = packview_last(v, row)) < 0)
        return blast_error_set(err, BLAST_EINVAL, j->path, 0, 0,
                               "the pack that should hold row %zu does not", row);
    pr = &v->recs[k];
    if (jsontape_parse(t, v->text.data + pr->start, pr->len, 0, NULL) < 0)
        return blast_error_set(err, BLAST_EINVAL, j->path, 0, 0,
                               "the packed record of row %zu is damaged", row);
    return outcome_from_record(j, jsontape_root(t), row, o, err);
}

int journal_result(struct journal *j, size_t row, struct outcome *o, struct blast_error *err)
{
    int64_t offset = row_offset(j, row);
    struct buf b = BUF_INIT;
    struct jsontape t;
    struct packview v;
    int rc;

    if (offset < 0)
        return 0;
    jsontape_init(&t);
    packview_init(&v);
    rc = outcome_at(j, offset, row, o, &b, &t, &v, err);
    packview_free(&v);
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
    struct packview v;
    struct outcome o;
    size_t row;
    int rc = 0;

    jsontape_init(&t);
    packview_init(&v);
    for (row = 1; row <= rows && rc == 0; row++) {
        /* under the lock and after the writer caught up: a row appended a moment ago counts */
        int64_t offset = row_offset(j, row);
        if (offset < 0)
            continue;
        if ((rc = outcome_at(j, offset, row, &o, &b, &t, &v, err)) < 0)
            break;
        rc = fn(arg, &o, err);
        outcome_free(&o);
    }
    packview_free(&v);
    jsontape_free(&t);
    buf_free(&b);
    return rc;
}

/* ---- compaction ---------------------------------------------------------------------------- */

/*
 * The file read through a window of WINDOW bytes: the rows' records come mostly in
 * the file's order, so each byte is read about once, not a pread() a record.
 */
#define WINDOW (1024 * 1024)

struct window {
    char *data;
    int64_t start; /* the file offset of data[0] */
    size_t len;
    struct buf big; /* a record longer than the window */
};

/*
 * The line at offset (without its newline; not NUL-terminated), valid until the
 * next call: its length, or -1 when it cannot be read or does not look like a
 * record. Its checksum is not checked again: compact_scan() read every record.
 */
static long line_at(struct journal *j, struct window *w, int64_t offset, const char **line)
{
    char *nl;
    size_t len;

    if (w->data == NULL && (w->data = malloc(WINDOW)) == NULL)
        return -1;
    if (offset < w->start || offset >= w->start + (int64_t)w->len ||
        (nl = memchr(w->data + (offset - w->start), '\n', w->len - (size_t)(offset - w->start))) ==
            NULL) {
        ssize_t n = pread(j->fd, w->data, WINDOW, offset);
        if (n <= 0)
            return -1;
        w->start = offset;
        w->len = (size_t)n;
        nl = memchr(w->data, '\n', w->len);
        if (nl == NULL) {
            /* longer than the window: read it whole on its own */
            buf_reset(&w->big);
            for (;;) {
                if (buf_reserve(&w->big, WINDOW) < 0)
                    return -1;
                n = pread(j->fd, w->big.data + w->big.len, WINDOW, offset + (int64_t)w->big.len);
                if (n <= 0)
                    return -1;
                nl = memchr(w->big.data + w->big.len, '\n', (size_t)n);
                w->big.len += (size_t)n;
                if (nl != NULL)
                    break;
            }
            len = (size_t)(nl - w->big.data);
            *line = w->big.data;
            w->len = 0; /* the window's contents are stale: next time, read again */
            return len < 10 || w->big.data[8] != ' ' ? -1 : (long)len;
        }
    }
    *line = w->data + (offset - w->start);
    len = (size_t)(nl - *line);
    return len < 10 || (*line)[8] != ' ' ? -1 : (long)len;
}

/* Every record blast writes starts with its type: a pack is known without parsing it. */
static bool is_pack(const char *json)
{
    return strncmp(json, "{\"t\":\"pack\"", 11) == 0;
}

/* An earlier attempt's "sending" record, kept: its message may have gone. */
struct kept {
    size_t row;
    int64_t offset;
};

static int kept_cmp(const void *a, const void *b)
{
    const struct kept *x = a, *y = b;

    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

struct compactor {
    struct journal *j;
    struct private_file pf;
    struct buf runs; /* the run records' lines, in order */
    struct kept *kept;
    size_t nkept, capkept;
    int64_t *pending;      /* by slot: an unanswered "sending", offset << 16 | attempt; -1: none */
    uint32_t *pending_mid; /* by slot: that "sending"'s Message-ID, hashed (mid_hash) */
    size_t npending;
    size_t *plain; /* rows whose last record stays as it is */
    size_t nplain, capplain;
    /* the pack being filled */
    struct buf text, ranges, z, line;
    size_t first, last; /* its open range of rows; 0: none */
    size_t pack_rows, pack_records;
    struct packview old; /* a pack of the file being compacted, carried over */
    struct jsontape t;
    struct window w;
    struct journal_compaction st;
};

/* A record's "message_id", hashed (FNV-1a; none hashes as ""): to tell one attempt's
 * message from another's. */
static uint32_t mid_hash(const struct jsontape_node *rec)
{
    const struct jsontape_node *m = jsontape_member(rec, "message_id");
    const char *s = jsontape_string(m);
    size_t n = s != NULL ? jsontape_size(m) : 0, i;
    uint32_t h = 2166136261u;

    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int keep_sending(struct compactor *c, size_t row, int64_t offset)
{
    if (c->nkept == c->capkept) {
        size_t cap = c->capkept ? c->capkept * 2 : 64;
        struct kept *k = realloc(c->kept, cap * sizeof *k);
        if (k == NULL)
            return BLAST_ENOMEM;
        c->kept = k;
        c->capkept = cap;
    }
    c->kept[c->nkept++] = (struct kept){row, offset};
    return 0;
}

/*
 * Pass 1, over the file in order: the run records, and the "sending" records that
 * are not a row's last one but whose message may have gone (no result of their own
 * came after them, or an "unknown" one did): the bounce intake may still need their
 * Message-ID. A result answers the "sending" of the same attempt and message; one of
 * another attempt (a result carried over by an earlier compaction), or one that made no
 * attempt of its own (same count, no message), answers nothing. A row
 * not in a final state keeps every "sending" (its result is not packed, so it does
 * not stand in for its attempt's "sending" in journal_read_sent()).
 */
static int compact_scan(struct compactor *c, struct blast_error *err)
{
    struct journal *j = c->j;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0, i;
    ssize_t n;
    int64_t offset = 0;
    int rc = 0, dupfd;

    c->npending = j->nrows;
    c->pending = malloc((c->npending ? c->npending : 1) * sizeof *c->pending);
    c->pending_mid = malloc((c->npending ? c->npending : 1) * sizeof *c->pending_mid);
    if (c->pending == NULL || c->pending_mid == NULL)
        return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
    for (i = 0; i < c->npending; i++)
        c->pending[i] = -1;
    if ((dupfd = dup(j->fd)) < 0 || (f = fdopen(dupfd, "r")) == NULL) {
        if (dupfd >= 0)
            close(dupfd);
        return blast_error_set(err, BLAST_EIO, j->path, 0, 0, "cannot read the journal: %s",
                               strerror(errno));
    }
    rewind(f);
    while ((n = getline(&line, &cap, f)) > 0 && offset < j->written) {
        /* every checksum was checked when the journal was opened, or written by us since */
        const struct jsontape_node *rec =
            n > 10 && line[n - 1] == '\n' && line[8] == ' ' &&
                    jsontape_parse(&c->t, line + 9, (size_t)n - 10, 0, NULL) == 0
                ? jsontape_root(&c->t)
                : NULL;
        const char *t = str(rec, "t");
        long k;

        lineno++;
        if (rec == NULL) {
            rc = blast_error_set(err, BLAST_EINVAL, j->path, (int)lineno, 0,
                                 "record %zu of the journal is damaged", lineno);
            break;
        }
        c->st.records_before++;
        if (t != NULL && strcmp(t, "run") == 0) {
            if (buf_append(&c->runs, line, (size_t)n) < 0) {
                rc = blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
                break;
            }
        } else if (t != NULL && (strcmp(t, "sending") == 0 || strcmp(t, "result") == 0) &&
                   num(rec, "row") > 0 && (k = slot(j, (size_t)num(rec, "row"))) >= 0 &&
                   (size_t)k < c->npending) {
            size_t row = (size_t)num(rec, "row");
            int64_t p = c->pending[k];
            bool sending = strcmp(t, "sending") == 0;
            const char *status = str(rec, "status");
            /*
             * A row not final keeps its records as they were, "sending" included. A
             * result answers a "sending" of the same attempt and the same message: a
             * result that made no attempt of its own (a recipient carried over from an
             * earlier run, then held or not tried) has the count and no message
             */
            if (p >= 0 &&
                (sending || j->rows[k].state != JOURNAL_FINAL ||
                 (status != NULL && strcmp(status, "unknown") == 0) ||
                 (num(rec, "attempts") & 0xFFFF) != (p & 0xFFFF) ||
                 mid_hash(rec) != c->pending_mid[k]) &&
                keep_sending(c, row, p >> 16) < 0) {
                rc = blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
                break;
            }
            c->pending[k] = sending ? offset << 16 | (num(rec, "attempt") & 0xFFFF) : -1;
            if (sending)
                c->pending_mid[k] = mid_hash(rec);
        }
        offset += n;
    }
    if (rc == 0 && ferror(f))
        rc = blast_error_set(err, BLAST_EIO, j->path, 0, 0, "cannot read the journal: %s",
                             strerror(errno));
    free(line);
    fclose(f);
    if (rc == 0 && c->nkept > 1)
        qsort(c->kept, c->nkept, sizeof *c->kept, kept_cmp);
    return rc;
}

static int compact_write(struct compactor *c, const void *data, size_t len, struct blast_error *err)
{
    if (len > 0 && fwrite(data, 1, len, c->pf.f) != len)
        return blast_error_set(err, BLAST_EIO, c->pf.tmp, 0, 0, "cannot write: %s",
                               strerror(errno));
    c->st.bytes_after += (int64_t)len;
    return 0;
}

/* The open range of rows, first..last, onto the pack's list ("1-10,12"). */
static int end_range(struct compactor *c)
{
    if (buf_printf(&c->ranges, "%s%zu", c->ranges.len > 0 ? "," : "", c->first) < 0 ||
        (c->last > c->first && buf_printf(&c->ranges, "-%zu", c->last) < 0))
        return BLAST_ENOMEM;
    return 0;
}

/* The pack being filled, deflated and written as one record. */
static int pack_flush(struct compactor *c, struct blast_error *err)
{
    uLongf zlen;
    size_t b64;

    if (c->pack_rows == 0)
        return 0;
    if (c->text.len > PACK_SIZE_MAX)
        return blast_error_set(err, BLAST_EINVAL, c->j->path, 0, 0,
                               "rows %zu to %zu make a pack larger than %u bytes", c->first,
                               c->last, PACK_SIZE_MAX);
    if (end_range(c) < 0)
        goto nomem;
    zlen = compressBound((uLong)c->text.len);
    buf_reset(&c->z);
    if (buf_reserve(&c->z, zlen) < 0)
        goto nomem;
    if (compress2((Bytef *)c->z.data, &zlen, (const Bytef *)c->text.data, (uLong)c->text.len,
                  PACK_LEVEL) != Z_OK)
        goto nomem;
    b64 = (zlen + 2) / 3 * 4;
    if (line_start(&c->line) < 0 || buf_puts(&c->line, "{\"t\":\"pack\",\"rows\":\"") < 0 ||
        buf_append(&c->line, c->ranges.data, c->ranges.len) < 0 ||
        buf_printf(&c->line, "\",\"records\":%zu,\"size\":%zu,\"z\":\"", c->pack_records,
                   c->text.len) < 0 ||
        buf_reserve(&c->line, b64 + 1) < 0)
        goto nomem;
    EVP_EncodeBlock((unsigned char *)c->line.data + c->line.len, (const unsigned char *)c->z.data,
                    (int)zlen);
    c->line.len += b64;
    if (buf_puts(&c->line, "\"}") < 0 || line_finish(&c->line) < 0)
        goto nomem;
    c->st.packs++;
    buf_reset(&c->text);
    buf_reset(&c->ranges);
    c->first = c->last = 0;
    c->pack_rows = c->pack_records = 0;
    return compact_write(c, c->line.data, c->line.len, err);
nomem:
    return blast_error_set(err, BLAST_ENOMEM, c->j->path, 0, 0, "out of memory");
}

/* "ROW JSON\n" into the pack being filled. */
static int pack_put(struct compactor *c, size_t row, const char *json, size_t len)
{
    c->pack_records++;
    if (buf_printf(&c->text, "%zu ", row) < 0 || buf_append(&c->text, json, len) < 0 ||
        buf_putc(&c->text, '\n') < 0)
        return BLAST_ENOMEM;
    return 0;
}

/* The pack of the old file at offset, in c->old. */
static int old_pack(struct compactor *c, int64_t offset, size_t row, struct blast_error *err)
{
    const struct jsontape_node *rec;
    const char *line;
    long len;

    if (c->old.offset == offset)
        return 0;
    if ((len = line_at(c->j, &c->w, offset, &line)) < 0 ||
        (rec = parse_line(&c->t, line, (size_t)len)) == NULL ||
        packview_load(&c->old, rec, offset) < 0 || packview_first(&c->old, row) < 0)
        return blast_error_set(err, BLAST_EINVAL, c->j->path, 0, 0,
                               "the pack that should hold row %zu cannot be read", row);
    return 0;
}

/* A row's earlier "sending" records that may have gone (c->kept from *ki on), as lines in b. */
static int kept_lines(struct compactor *c, size_t row, size_t *ki,
                      int (*put)(struct compactor *c, size_t row, const char *line, size_t len,
                                 struct blast_error *err),
                      struct blast_error *err)
{
    int rc;

    while (*ki < c->nkept && c->kept[*ki].row < row)
        (*ki)++;
    for (; *ki < c->nkept && c->kept[*ki].row == row; (*ki)++) {
        const char *line;
        long len = line_at(c->j, &c->w, c->kept[*ki].offset, &line);
        if (len < 0)
            return blast_error_set(err, BLAST_EIO, c->j->path, 0, 0,
                                   "cannot read back a record of row %zu", row);
        c->st.kept_sending++;
        if ((rc = put(c, row, line, (size_t)len, err)) < 0)
            return rc;
    }
    return 0;
}

static int put_packed(struct compactor *c, size_t row, const char *line, size_t len,
                      struct blast_error *err)
{
    if (pack_put(c, row, line + 9, len - 9) < 0)
        return blast_error_set(err, BLAST_ENOMEM, c->j->path, 0, 0, "out of memory");
    return 0;
}

/* A row in a final state: its records into the pack being filled. */
static int pack_row(struct compactor *c, size_t row, int64_t offset, size_t *ki,
                    struct blast_error *err)
{
    const char *line = NULL;
    long len = -1;
    int rc;

    if ((rc = kept_lines(c, row, ki, put_packed, err)) < 0)
        return rc;
    if (c->old.offset == offset ||
        ((len = line_at(c->j, &c->w, offset, &line)) >= 0 && is_pack(line + 9))) {
        long k;
        if ((rc = old_pack(c, offset, row, err)) < 0)
            return rc;
        for (k = packview_first(&c->old, row);
             (size_t)k < c->old.nrecs && c->old.recs[k].row == row; k++)
            if (pack_put(c, row, c->old.text.data + c->old.recs[k].start, c->old.recs[k].len) < 0)
                return blast_error_set(err, BLAST_ENOMEM, c->j->path, 0, 0, "out of memory");
    } else if (len < 0) {
        return blast_error_set(err, BLAST_EIO, c->j->path, 0, 0,
                               "cannot read back the record of row %zu", row);
    } else if (pack_put(c, row, line + 9, (size_t)len - 9) < 0) {
        return blast_error_set(err, BLAST_ENOMEM, c->j->path, 0, 0, "out of memory");
    }
    if (c->last != 0 && c->last + 1 == row) {
        c->last = row;
    } else {
        if (c->last != 0 && end_range(c) < 0)
            return blast_error_set(err, BLAST_ENOMEM, c->j->path, 0, 0, "out of memory");
        c->first = c->last = row;
    }
    c->pack_rows++;
    c->st.packed++;
    if (c->pack_rows >= PACK_ROWS || c->text.len >= PACK_TEXT_MAX ||
        c->pack_records >= PACK_RECORDS_MAX / 2)
        return pack_flush(c, err);
    return 0;
}

static int put_plain(struct compactor *c, size_t row, const char *line, size_t len,
                     struct blast_error *err)
{
    int rc;

    (void)row;
    if ((rc = compact_write(c, line, len, err)) < 0 || (rc = compact_write(c, "\n", 1, err)) < 0)
        return rc;
    return 0;
}

/* A row in another state: its records as they were, one line each. */
static int plain_row(struct compactor *c, size_t row, int64_t offset, size_t *ki,
                     struct blast_error *err)
{
    const char *line;
    long len;
    int rc;

    if ((rc = kept_lines(c, row, ki, put_plain, err)) < 0)
        return rc;
    if ((len = line_at(c->j, &c->w, offset, &line)) < 0)
        return blast_error_set(err, BLAST_EIO, c->j->path, 0, 0,
                               "cannot read back the record of row %zu", row);
    if (is_pack(line + 9)) {
        /* only rows in a final state go into packs: not one of blast's journals */
        return blast_error_set(err, BLAST_EINVAL, c->j->path, 0, 0,
                               "row %zu is in a pack but not in a final state", row);
    }
    c->st.plain++;
    if (compact_write(c, line, (size_t)len, err) < 0 || compact_write(c, "\n", 1, err) < 0)
        return BLAST_EIO;
    return 0;
}

/* Pass 2: the new file, rows in order: packs of final rows, then the others' records. */
static int compact_rows(struct compactor *c, struct blast_error *err)
{
    struct journal *j = c->j;
    size_t maxrow = j->only != NULL ? j->only_rows : j->nrows, row, ki = 0, i;
    int rc;

    if ((rc = compact_write(c, c->runs.data, c->runs.len, err)) < 0)
        return rc;
    for (row = 1; row < maxrow; row++) {
        long k = slot(j, row);
        if (k < 0 || j->rows[k].offset < 0)
            continue;
        c->st.rows++;
        if (j->rows[k].state == JOURNAL_FINAL) {
            if ((rc = pack_row(c, row, j->rows[k].offset, &ki, err)) < 0)
                return rc;
            continue;
        }
        if (c->nplain == c->capplain) {
            size_t cap = c->capplain ? c->capplain * 2 : 256;
            size_t *p = realloc(c->plain, cap * sizeof *p);
            if (p == NULL)
                return blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
            c->plain = p;
            c->capplain = cap;
        }
        c->plain[c->nplain++] = row;
    }
    if ((rc = pack_flush(c, err)) < 0)
        return rc;
    for (i = 0, ki = 0; i < c->nplain; i++) {
        long k = slot(j, c->plain[i]);
        if ((rc = plain_row(c, c->plain[i], j->rows[k].offset, &ki, err)) < 0)
            return rc;
    }
    return 0;
}

size_t journal_loose_records(struct journal *j)
{
    size_t n;

    pthread_mutex_lock(&j->mu);
    n = j->loose;
    pthread_mutex_unlock(&j->mu);
    return n;
}

bool journal_all_final(struct journal *j, size_t rows)
{
    bool all = true;
    size_t row;

    pthread_mutex_lock(&j->mu);
    for (row = 1; row <= rows && all; row++) {
        long k = slot(j, row);
        if (k < 0)
            all = j->only != NULL; /* another shard's row; or, for the whole list, none yet */
        else
            all = j->rows[k].offset >= 0 && j->rows[k].state == JOURNAL_FINAL;
    }
    pthread_mutex_unlock(&j->mu);
    return all;
}

/* The journal goes on in the file at its path, indexed afresh. */
static int reopen(struct journal *j, struct blast_error *err)
{
    struct journal_options o;
    int fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
    size_t i;
    int rc;

    if (fd < 0)
        return fail_io(j, err, "cannot open the compacted journal");
    memset(&o, 0, sizeof o);
    o.log = j->log;
    pthread_mutex_lock(&j->mu);
    close(j->fd);
    j->fd = fd;
    for (i = 0; i < j->caprows; i++)
        j->rows[i] = (struct rowinfo){-1, 0, JOURNAL_NONE};
    if (j->only == NULL)
        j->nrows = 0;
    j->loose = 0;
    rc = replay(j, &o, err);
    if (rc == 0) {
        for (i = 0; i < j->nrows; i++)
            if (j->rows[i].state == JOURNAL_SENDING)
                j->rows[i].state = JOURNAL_UNKNOWN;
        j->written = j->durable_upto = j->wanted = j->end;
    } else if (!j->failed) {
        snprintf(j->failure, sizeof j->failure, "%s", err->text);
        __atomic_store_n(&j->failed, rc, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int journal_compact(struct journal *j, struct journal_compaction *st, struct blast_error *err)
{
    struct compactor c;
    char *tmp = NULL;
    int rc;

    memset(&c, 0, sizeof c);
    c.j = j;
    packview_init(&c.old);
    jsontape_init(&c.t);
    if ((rc = journal_sync(j, err)) < 0)
        goto out;
    c.st.bytes_before = j->written;
    if (asprintf(&tmp, "%s.compacting", j->path) < 0) {
        tmp = NULL;
        rc = blast_error_set(err, BLAST_ENOMEM, j->path, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = compact_scan(&c, err)) < 0 ||
        (rc = private_file_open_fixed(&c.pf, j->path, tmp, PRIVATE_FILE_MODE,
                                      "the compacted journal", err)) < 0 ||
        (rc = compact_rows(&c, err)) < 0)
        goto out;
    /* the old journal stays whole until the new one is durable and renamed over it */
    if ((rc = private_file_commit(&c.pf, err)) < 0)
        goto out;
    rc = reopen(j, err);
out:
    if (c.pf.tmp != NULL)
        private_file_abort(&c.pf);
    if (rc == 0 && st != NULL)
        *st = c.st;
    free(tmp);
    free(c.kept);
    free(c.pending);
    free(c.pending_mid);
    free(c.plain);
    buf_free(&c.runs);
    buf_free(&c.text);
    buf_free(&c.ranges);
    buf_free(&c.z);
    buf_free(&c.line);
    free(c.w.data);
    buf_free(&c.w.big);
    packview_free(&c.old);
    jsontape_free(&c.t);
    return rc;
}

/*
 * A pack's messages that may have gone: its "sending" records, and its results that
 * name a Message-ID (the attempt that decided them; compaction drops its "sending").
 */
static int read_sent_pack(const struct packview *v, struct jsontape *tape,
                          int (*fn)(void *arg, const struct journal_sent *s), void *arg)
{
    size_t k;
    int rc = 0;

    for (k = 0; k < v->nrecs && rc == 0; k++) {
        const struct packrec *pr = &v->recs[k];
        const struct jsontape_node *rec;
        struct journal_sent sent;
        const char *t;
        if (jsontape_parse(tape, v->text.data + pr->start, pr->len, 0, NULL) < 0)
            continue; /* as a damaged line is */
        rec = jsontape_root(tape);
        t = str(rec, "t");
        sent.row = pr->row;
        sent.email = str(rec, "email");
        sent.message_id = str(rec, "message_id");
        if (t != NULL && sent.email != NULL &&
            (strcmp(t, "sending") == 0 || (strcmp(t, "result") == 0 && sent.message_id != NULL)))
            rc = fn(arg, &sent);
    }
    return rc;
}

int journal_read_sent(const char *path, int (*fn)(void *arg, const struct journal_sent *s),
                      void *arg, struct blast_error *err)
{
    FILE *f = fopen(path, "re");
    struct packview v;
    struct jsontape tape;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read the journal: %s",
                               strerror(errno));
    jsontape_init(&tape);
    packview_init(&v);
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        const struct jsontape_node *rec =
            line[n - 1] == '\n' ? parse_line(&tape, line, (size_t)n - 1) : NULL;
        const char *t = str(rec, "t");
        int64_t row = num(rec, "row");
        struct journal_sent sent = {(size_t)row, str(rec, "email"), str(rec, "message_id")};
        if (t != NULL && strcmp(t, "pack") == 0 && packview_load(&v, rec, 0) == 0)
            rc = read_sent_pack(&v, &tape, fn, arg);
        else if (t != NULL && strcmp(t, "sending") == 0 && row > 0 && sent.email != NULL)
            rc = fn(arg, &sent);
    }
    packview_free(&v);
    if (rc == 0 && ferror(f))
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read the journal: %s",
                             strerror(errno));
    free(line);
    jsontape_free(&tape);
    fclose(f);
    return rc;
}
