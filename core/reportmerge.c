/*
 * reportmerge - a campaign's shard reports made into one. See reportmerge.h.
 *
 * Each shard's report lists its rows in row order (report is written from the
 * journal, row by row), and the shards are disjoint, so the campaign's report is
 * their k-way merge by row: a heap of the inputs keyed by the row of the
 * recipient each stands on. Nothing about the rows is assumed without checking:
 * an input whose rows do not increase, or a row two inputs both hold, stops the
 * merge with the place.
 */
#include "reportmerge.h"
#include "outcome.h"
#include "report.h"
#include "reportread.h"
#include "timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_SHARDS 10000 /* as core/shard allows */
/* the read buffers of all inputs together, at most (each between 4 and 64 KiB) */
#define READ_BUDGET (16u * 1024 * 1024)

struct input {
    const char *path;
    struct reportread *rd;
    unsigned index; /* the shard's */
    json_t *entry;  /* the recipient it stands on; NULL when it has no more */
    struct reportread_place at;
    json_int_t row;
    size_t taken; /* recipients read so far */
};

struct merge {
    struct input *in;
    size_t n;
    struct input **heap; /* by row, smallest first */
    size_t nheap;
    unsigned count;       /* the shard count the inputs name */
    struct input **shard; /* by shard index: the input that is that shard */
};

/* Enough descriptors for every input at once: the soft limit raised toward the hard. */
static int descriptors(size_t n, struct blast_error *err)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n + 32;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "%zu reports need %llu open files at once, and the limit is %llu "
                               "(ulimit -n)",
                               n, (unsigned long long)need, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return blast_error_set(err, BLAST_EIO, NULL, 0, 0, "cannot raise the open file limit: %s",
                               strerror(errno));
    return 0;
}

static const char *string_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The shard an input's campaign names, checked against the first input's. */
static int check_campaign(struct merge *m, struct input *in, const struct input *first,
                          struct blast_error *err)
{
    const json_t *c = reportread_campaign(in->rd), *c0;
    const json_t *shard;
    const char *name, *fp;
    json_int_t index, count;

    if (c == NULL)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "no \"campaign\" before the recipients: not a report blast wrote");
    name = string_of(c, "name");
    fp = string_of(c, "fingerprint");
    shard = json_object_get(c, "shard");
    if (name == NULL)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0, "the campaign has no name");
    if (!json_is_object(shard))
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "not a shard's report: its campaign.shard is null (a whole "
                               "campaign's report has nothing to merge with)");
    index = json_integer_value(json_object_get(shard, "index"));
    count = json_integer_value(json_object_get(shard, "count"));
    if (count < 2 || count > MAX_SHARDS || index < 0 || index >= count)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "campaign.shard is not a shard I of N (index %" JSON_INTEGER_FORMAT
                               ", count %" JSON_INTEGER_FORMAT ")",
                               index, count);
    if (fp == NULL)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "the report has no campaign fingerprint (written by an older "
                               "blast?): its campaign cannot be told from another");
    in->index = (unsigned)index;
    if (first == NULL) {
        m->count = (unsigned)count;
        return 0;
    }
    c0 = reportread_campaign(first->rd);
    if (strcmp(name, string_of(c0, "name")) != 0)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "a report of campaign \"%s\", but %s is of campaign \"%s\": only "
                               "the shards of one campaign merge",
                               name, first->path, string_of(c0, "name"));
    if (strcmp(fp, string_of(c0, "fingerprint")) != 0)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "campaign \"%s\" with other inputs than in %s (fingerprint "
                               "%.12s..., not %.12s...): its file, templates or list changed "
                               "between the shards",
                               name, first->path, fp, string_of(c0, "fingerprint"));
    if (json_is_true(json_object_get(c, "dry_run")) != json_is_true(json_object_get(c0, "dry_run")))
        return blast_error_set(
            err, BLAST_EINVAL, in->path, 0, 0,
            "%s, but %s is %s: a dry run and a send do not merge",
            json_is_true(json_object_get(c, "dry_run")) ? "a dry run" : "a send", first->path,
            json_is_true(json_object_get(c0, "dry_run")) ? "a dry run" : "a send");
    if ((unsigned)count != m->count)
        return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                               "shard %u of %" JSON_INTEGER_FORMAT
                               ", but %s is a shard of %u: the campaign was split two ways",
                               in->index, count, first->path, m->count);
    return 0;
}

/* Every index once: none twice (overlap), none missing. */
static int check_shards(struct merge *m, struct blast_error *err)
{
    char missing[512];
    size_t i, nmissing = 0, used = 0;

    m->shard = calloc(m->count, sizeof *m->shard);
    if (m->shard == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < m->n; i++) {
        struct input *in = &m->in[i];
        if (m->shard[in->index] != NULL)
            return blast_error_set(err, BLAST_EINVAL, in->path, 0, 0,
                                   "shard %u of %u again: %s is that shard too (overlapping "
                                   "shards; give each shard's report once)",
                                   in->index, m->count, m->shard[in->index]->path);
        m->shard[in->index] = in;
    }
    missing[0] = '\0';
    for (i = 0; i < m->count; i++) {
        if (m->shard[i] != NULL)
            continue;
        if (nmissing < 20 && used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%zu",
                                     nmissing > 0 ? ", " : "", i);
        nmissing++;
    }
    if (nmissing > 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "%zu of the %u shards missing: %s%s (their reports were not "
                               "given, or those shards have not run)",
                               nmissing, m->count, missing, nmissing > 20 ? ", ..." : "");
    return 0;
}

/* The input's next recipient and its row, checked to follow the one before. */
static int advance(struct input *in, struct blast_error *err)
{
    json_int_t before = in->entry != NULL ? in->row : 0;
    json_t *row;
    int rc;

    json_decref(in->entry);
    in->entry = NULL;
    if ((rc = reportread_next(in->rd, &in->entry, &in->at, err)) <= 0)
        return rc;
    in->taken++;
    row = json_object_get(in->entry, "row");
    if (!json_is_integer(row) || json_integer_value(row) < 1)
        return blast_error_set(err, BLAST_EINVAL, in->at.source, in->at.line, in->at.column,
                               "recipient %zu has no row number", in->taken);
    in->row = json_integer_value(row);
    if (in->row <= before)
        return blast_error_set(err, BLAST_EINVAL, in->at.source, in->at.line, in->at.column,
                               "row %" JSON_INTEGER_FORMAT " after row %" JSON_INTEGER_FORMAT
                               ": the report's rows are not in order, as blast writes them",
                               in->row, before);
    return 1;
}

static bool before(const struct input *a, const struct input *b)
{
    return a->row < b->row || (a->row == b->row && a->index < b->index);
}

static void heap_push(struct merge *m, struct input *in)
{
    size_t i = m->nheap++;

    while (i > 0 && before(in, m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = in;
}

static struct input *heap_pop(struct merge *m)
{
    struct input *top = m->heap[0], *last = m->heap[--m->nheap];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->nheap)
            break;
        if (c + 1 < m->nheap && before(m->heap[c + 1], m->heap[c]))
            c++;
        if (!before(m->heap[c], last))
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->nheap > 0)
        m->heap[i] = last;
    return top;
}

/* The recipients of every input, by row, into rep. */
static int merge_rows(struct merge *m, struct report *rep, size_t *written, struct blast_error *err)
{
    const struct input *prev = NULL;
    json_int_t prev_row = 0;
    size_t i;
    int rc;

    for (i = 0; i < m->n; i++) {
        if ((rc = advance(&m->in[i], err)) < 0)
            return rc;
        if (rc > 0)
            heap_push(m, &m->in[i]);
    }
    while (m->nheap > 0) {
        struct input *in = heap_pop(m);
        struct outcome o;

        if (prev != NULL && in->row == prev_row)
            return blast_error_set(err, BLAST_EINVAL, in->at.source, in->at.line, in->at.column,
                                   "row %" JSON_INTEGER_FORMAT
                                   " is in shard %u's report (%s) too: overlapping shards",
                                   in->row, prev->index, prev->path);
        outcome_init(&o);
        if ((rc = reportread_outcome(in->entry, in->taken - 1, &in->at, &o, err)) < 0)
            return rc;
        rc = report_add(rep, &o, err);
        outcome_free(&o);
        if (rc < 0)
            return rc;
        (*written)++;
        prev = in;
        prev_row = in->row;
        if ((rc = advance(in, err)) < 0)
            return rc;
        if (rc > 0)
            heap_push(m, in);
    }
    return 0;
}

static struct timeutil_stamp stamp_of(const json_t *summary, const char *key)
{
    struct timeutil_stamp t = {0, 0};
    const char *s = string_of(summary, key);

    if (s == NULL || timeutil_parse_rfc3339(s, &t) < 0)
        t.sec = 0;
    return t;
}

static bool earlier(struct timeutil_stamp a, struct timeutil_stamp b)
{
    return a.sec < b.sec || (a.sec == b.sec && a.usec < b.usec);
}

/*
 * Each input read to its end (its summary checked by reportread); the merged run
 * from their summaries, and each shard's figures into shards.
 */
static int finish_inputs(struct merge *m, struct report *rep, json_t *shards,
                         struct blast_error *err)
{
    struct timeutil_stamp first = {0, 0}, last = {0, 0};
    size_t messages = 0, i;
    int rc;

    for (i = 0; i < m->count; i++) {
        struct input *in = m->shard[i];
        struct reportread_result res;
        struct timeutil_stamp s, e;
        json_int_t sent;

        if ((rc = reportread_finish(in->rd, &res, err)) < 0)
            return rc;
        s = stamp_of(res.summary, "start");
        e = stamp_of(res.summary, "end");
        sent = json_integer_value(json_object_get(res.summary, "messages_this_run"));
        if (s.sec != 0 && (first.sec == 0 || earlier(s, first)))
            first = s;
        if (e.sec != 0 && earlier(last, e))
            last = e;
        messages += sent > 0 ? (size_t)sent : 0;
        json_t *item =
            json_pack("{s:I, s:I, s:s?, s:s?, s:I}", "index", (json_int_t)in->index, "recipients",
                      (json_int_t)res.recipients, "start", string_of(res.summary, "start"), "end",
                      string_of(res.summary, "end"), "messages_this_run", sent > 0 ? sent : 0);
        reportread_result_free(&res);
        if (item == NULL || json_array_append_new(shards, item) < 0)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    if (first.sec == 0)
        first = timeutil_now();
    if (last.sec == 0 || earlier(last, first))
        last = first;
    report_set_merged(rep, first, last, messages, shards);
    return 0;
}

/*
 * The campaign's settings as the first shard's report names them (the shards share
 * one campaign file: the fingerprints agree): its rate and DKIM entries, borrowed
 * from c0 into info; *dkim is the array to free. A report written before they were
 * leaves them out of the merged one too.
 */
static int copy_settings(const json_t *c0, struct report_info *info, struct report_dkim **dkim)
{
    const json_t *entries = json_object_get(c0, "dkim"),
                 *rate = json_object_get(c0, "rate_per_second"), *e;
    size_t i, n = 0;

    *dkim = NULL;
    if (!json_is_array(entries)) {
        info->settings_unknown = true;
        return 0;
    }
    if (json_array_size(entries) > 0 &&
        (*dkim = calloc(json_array_size(entries), sizeof **dkim)) == NULL)
        return BLAST_ENOMEM;
    json_array_foreach(entries, i, e)
    {
        if (string_of(e, "domain") == NULL || string_of(e, "selector") == NULL ||
            string_of(e, "algorithm") == NULL)
            continue;
        (*dkim)[n].domain = string_of(e, "domain");
        (*dkim)[n].selector = string_of(e, "selector");
        (*dkim)[n].algorithm = string_of(e, "algorithm");
        n++;
    }
    info->dkim = *dkim;
    info->ndkim = n;
    info->rate_per_second = json_is_number(rate) ? json_number_value(rate) : 0;
    return 0;
}

static int open_output(const struct merge *m, const char *output, FILE *stream, json_t *heads,
                       struct report **rep, struct blast_error *err)
{
    const json_t *c0 = reportread_campaign(m->shard[0]->rd);
    struct report_info info;
    struct report_dkim *dkim = NULL;
    size_t i;
    int rc;

    for (i = 0; i < m->count; i++) {
        json_t *h = json_pack("{s:I, s:I, s:s}", "index", (json_int_t)i, "count",
                              (json_int_t)m->count, "report", m->shard[i]->path);
        if (h == NULL || json_array_append_new(heads, h) < 0)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    memset(&info, 0, sizeof info);
    info.campaign = string_of(c0, "name");
    info.campaign_file = string_of(c0, "file") != NULL ? string_of(c0, "file") : "";
    info.fingerprint = string_of(c0, "fingerprint");
    info.dry_run = json_is_true(json_object_get(c0, "dry_run"));
    info.test_to = string_of(c0, "test_to");
    info.suppression_db = string_of(c0, "suppression_db");
    info.shards = heads;
    if (copy_settings(c0, &info, &dkim) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (stream != NULL)
        rc = report_open_stream(stream, output, &info, rep, err);
    else
        rc = report_open(output, &info, rep, err);
out:
    free(dkim);
    return rc;
}

int reportmerge_run(const char *const *paths, size_t n, const char *output, FILE *stream,
                    struct reportmerge_stats *stats, struct blast_error *err)
{
    struct merge m;
    struct report *rep = NULL;
    json_t *heads = json_array(), *shards = json_array();
    size_t i, chunk, written = 0;
    int rc;

    memset(&m, 0, sizeof m);
    memset(stats, 0, sizeof *stats);
    if (n == 0) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "no reports to merge");
        goto out;
    }
    if (n > MAX_SHARDS) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                             "%zu reports: a campaign has at most %d shards", n, MAX_SHARDS);
        goto out;
    }
    if ((rc = descriptors(n, err)) < 0)
        goto out;
    m.in = calloc(n, sizeof *m.in);
    m.heap = calloc(n, sizeof *m.heap);
    if (m.in == NULL || m.heap == NULL || heads == NULL || shards == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    m.n = n;
    chunk = READ_BUDGET / n;
    chunk = chunk > 65536 ? 65536 : chunk;
    for (i = 0; i < n; i++) {
        m.in[i].path = paths[i];
        if ((rc = reportread_open(paths[i], chunk, &m.in[i].rd, err)) < 0)
            goto out;
        if ((rc = check_campaign(&m, &m.in[i], i > 0 ? &m.in[0] : NULL, err)) < 0)
            goto out;
    }
    if ((rc = check_shards(&m, err)) < 0 ||
        (rc = open_output(&m, output, stream, heads, &rep, err)) < 0)
        goto out;
    if ((rc = merge_rows(&m, rep, &written, err)) < 0 ||
        (rc = finish_inputs(&m, rep, shards, err)) < 0)
        goto out;
    rc = report_commit(rep, err);
    rep = NULL;
    if (rc == 0) {
        stats->shards = n;
        stats->count = m.count;
        stats->recipients = written;
    }
out:
    report_abort(rep);
    for (i = 0; m.in != NULL && i < m.n; i++) {
        json_decref(m.in[i].entry);
        reportread_close(m.in[i].rd);
    }
    free(m.in);
    free(m.heap);
    free(m.shard);
    json_decref(heads);
    json_decref(shards);
    return rc;
}
