/*
 * report - stream the JSON report with jansson. See report.h.
 *
 * The document is written in three parts: a head ({"schema_version", "campaign",
 * "recipients": [), one compact object per recipient, one per line, and a tail
 * (], "summary": {...}}). Only the summary's counters live in memory: totals by
 * status and maps by relay, recipient domain and reply code, whose size is the
 * number of distinct relays, domains and codes, not recipients; and the failure
 * reasons, capped at MAX_REASONS distinct ones.
 */
#include "report.h"
#include "private.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct report {
    char *path;
    char *tmp; /* NULL when writing to a caller's stream */
    FILE *f;
    bool borrowed; /* f belongs to the caller */
    int gz_fd;     /* a .gz report's temporary file, under f's gzip stream; else -1 */
    struct report_tally tally;
    json_t *campaign;
    size_t this_run; /* entries decided during this run (last_attempt >= start) */
    struct timeutil_stamp start;
    struct timeutil_stamp end; /* with fixed_run: report_set_merged()'s, or the first summary's */
    bool fixed_run;
    json_t *shards;  /* a merged report's, for the summary */
    char *breaker;   /* report_info.breaker, copied; NULL: none */
    json_t *seeds;   /* report_info.seeds as entries; NULL: none */
    json_t *warmup;  /* report_info.warmup; NULL: none */
    struct buf line; /* the entry being written */
};

#define MAX_REASONS 1000 /* distinct failure reasons kept for top_failures */
#define TOP_REASONS 10

static int io_fail(struct report *r, struct blast_error *err, const char *what)
{
    return blast_error_set(err, BLAST_EIO, r->path, 0, 0, "%s: %s", what, strerror(errno));
}

/* The seeds' outcomes as report entries (row: the seed's place in the campaign's seeds). */
static json_t *seed_entries(const struct report_info *info)
{
    json_t *a = json_array();
    struct buf b;
    size_t i;

    buf_init(&b);
    for (i = 0; a != NULL && i < info->nseeds; i++) {
        json_t *e;
        buf_reset(&b);
        if (outcome_format_json(&info->seeds[i], false, &b) < 0 ||
            (e = json_loadb(b.data, b.len, 0, NULL)) == NULL) {
            json_decref(a);
            a = NULL;
            break;
        }
        if (json_array_append_new(a, e) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    buf_free(&b);
    return a;
}

/* summary.warmup: {sender, day, providers: {NAME: {ramp_day, cap, sent, held, reached}}}. */
static json_t *warmup_object(const struct report_info *info)
{
    json_t *ps = json_object(), *w;
    size_t i;

    if (ps == NULL)
        return NULL;
    for (i = 0; i < info->nwarmup; i++) {
        const struct report_warmup *x = &info->warmup[i];
        json_t *e = json_pack("{s:I, s:I, s:I, s:I, s:b}", "ramp_day", (json_int_t)x->ramp_day,
                              "cap", (json_int_t)x->cap, "sent", (json_int_t)x->sent, "held",
                              (json_int_t)x->held, "reached", x->sent >= x->cap);
        if (e == NULL || json_object_set_new(ps, x->provider, e) < 0) {
            json_decref(ps);
            return NULL;
        }
    }
    w = json_pack("{s:s, s:s, s:o}", "sender", info->warmup_sender ? info->warmup_sender : "",
                  "day", info->warmup_day ? info->warmup_day : "", "providers", ps);
    return w;
}

/* The campaign's rate_per_second and dkim: the settings a dashboard shows beside the figures. */
static int add_settings(json_t *campaign, const struct report_info *info)
{
    json_t *dkim = json_array();
    size_t i;

    if (dkim == NULL || json_object_set_new(campaign, "dkim", dkim) < 0)
        return BLAST_ENOMEM;
    for (i = 0; i < info->ndkim; i++) {
        const struct report_dkim *d = &info->dkim[i];
        json_t *e = json_pack("{s:s, s:s, s:s}", "domain", d->domain != NULL ? d->domain : "",
                              "selector", d->selector != NULL ? d->selector : "", "algorithm",
                              d->algorithm != NULL ? d->algorithm : "");
        if (e == NULL || json_array_append_new(dkim, e) < 0)
            return BLAST_ENOMEM;
    }
    if (json_object_set_new(campaign, "rate_per_second",
                            info->rate_per_second > 0 ? json_real(info->rate_per_second)
                                                      : json_null()) < 0)
        return BLAST_ENOMEM;
    return 0;
}

static int start(const char *path, FILE *stream, const struct report_info *info,
                 struct report **out, struct blast_error *err)
{
    struct report *r;
    char *head = NULL;
    int fd = -1, rc;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    r->gz_fd = -1;
    r->start = info->start.sec != 0 ? info->start : timeutil_now();
    r->path = strdup(path);
    if (info->breaker != NULL && (r->breaker = strdup(info->breaker)) == NULL) {
        free(r->path);
        free(r);
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    }
    if ((info->nseeds > 0 && (r->seeds = seed_entries(info)) == NULL) ||
        (info->nwarmup > 0 && (r->warmup = warmup_object(info)) == NULL)) {
        json_decref(r->seeds);
        free(r->breaker);
        free(r->path);
        free(r);
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    }
    json_t *shard = info->shard_count > 1
                        ? json_pack("{s:I, s:I}", "index", (json_int_t)info->shard_index, "count",
                                    (json_int_t)info->shard_count)
                        : json_null();
    r->campaign =
        json_pack("{s:s, s:s, s:s?, s:b, s:s?, s:s?, s:o}", "name", info->campaign, "file",
                  info->campaign_file, "fingerprint", info->fingerprint, "dry_run", info->dry_run,
                  "test_to", info->test_to, "suppression_db", info->suppression_db, "shard", shard);
    if (r->campaign != NULL &&
        ((info->shards != NULL && json_object_set(r->campaign, "shards", info->shards) < 0) ||
         (!info->settings_unknown && add_settings(r->campaign, info) < 0))) {
        json_decref(r->campaign);
        r->campaign = NULL;
    }
    if (r->path == NULL || r->campaign == NULL || report_tally_init(&r->tally) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if (stream != NULL) {
        r->f = stream;
        r->borrowed = true;
    } else {
        size_t n = strlen(path) + 16;
        r->tmp = malloc(n);
        if (r->tmp == NULL) {
            rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
            goto out;
        }
        /* same directory as the target, so rename() is atomic */
        snprintf(r->tmp, n, "%s.tmp.XXXXXX", path);
        /* 0600: the report lists every recipient; rename() keeps the mode (docs/files.md) */
        fd = private_mkstemp(r->tmp);
        if (fd < 0) {
            free(r->tmp);
            r->tmp = NULL;
            rc = io_fail(r, err, "cannot create the report");
            goto out;
        }
        if (private_wants_gzip(path)) {
            r->gz_fd = fd;
            r->f = private_gzip_stream(fd);
            if (r->f == NULL) {
                rc = io_fail(r, err, "cannot start the compressed report");
                goto out;
            }
        } else {
            r->f = fdopen(fd, "w");
        }
        if (r->f == NULL) {
            close(fd);
            rc = io_fail(r, err, "cannot create the report");
            goto out;
        }
    }
    head = json_dumps(r->campaign, JSON_COMPACT);
    if (head == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if (fprintf(r->f, "{\"schema_version\": %d,\n\"campaign\": %s,\n\"recipients\": [",
                REPORT_SCHEMA_VERSION, head) < 0) {
        rc = io_fail(r, err, "cannot write the report");
        goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    free(head);
    report_abort(r);
    return rc;
}

int report_open(const char *path, const struct report_info *info, struct report **out,
                struct blast_error *err)
{
    return start(path, NULL, info, out, err);
}

int report_open_stream(FILE *f, const char *name, const struct report_info *info,
                       struct report **out, struct blast_error *err)
{
    return start(name, f, info, out, err);
}

static json_t *time_or_null(struct timeutil_stamp t)
{
    char when[40];

    if (t.sec == 0)
        return json_null();
    timeutil_rfc3339(t, when, sizeof when);
    return json_string(when);
}

/* counts[key][status] += 1 */
static const char *domain_of(const char *email)
{
    const char *at = strrchr(email, '@');

    return at != NULL && at[1] != '\0' ? at + 1 : "(none)";
}

/* Sent or rendered during this run: its last attempt is not older than the run. */
static bool counts_this_run(const struct report *r, const struct outcome *o)
{
    if (o->status == OUTCOME_RENDERED)
        return true; /* a dry run renders everything anew */
    if (o->status != OUTCOME_DELIVERED || o->last.sec == 0)
        return false;
    /* to the millisecond, the precision of the times entries carry */
    return o->last.sec > r->start.sec ||
           (o->last.sec == r->start.sec && o->last.usec / 1000 >= r->start.usec / 1000);
}

int report_add(struct report *r, const struct outcome *o, struct blast_error *err)
{
    buf_reset(&r->line);
    if (o->status >= OUTCOME_STATUS_COUNT)
        return blast_error_set(err, BLAST_EINVAL, r->path, 0, 0,
                               "the entry of row %zu has no status", o->row);
    if (buf_puts(&r->line, r->tally.entries > 0 ? ",\n" : "\n") < 0 ||
        outcome_format_json(o, false, &r->line) < 0)
        return blast_error_set(err, BLAST_ENOMEM, r->path, 0, 0, "out of memory");
    if (fwrite(r->line.data, 1, r->line.len, r->f) != r->line.len)
        return io_fail(r, err, "cannot write the report");
    if (report_tally_add(&r->tally, o) < 0)
        return blast_error_set(err, BLAST_ENOMEM, r->path, 0, 0, "out of memory");
    if (counts_this_run(r, o))
        r->this_run++;
    return 0;
}

/*
 * The reason of a failure, for grouping: code, enhanced code and the reply with
 * whatever is in angle brackets (an address, usually) left out, so that "550 5.1.1
 * <ada@x>: unknown" and "550 5.1.1 <bob@x>: unknown" are one reason; or blast's
 * own detail when there is no reply.
 */
void report_reason(const struct outcome *o, char *out, size_t size)
{
    const char *text = o->reply != NULL ? o->reply : o->detail != NULL ? o->detail : "";
    const char *enhanced = o->enhanced[0] != '\0' ? o->enhanced : NULL;
    int code = o->code;
    size_t n = 0;
    int depth = 0;

    if (code > 0)
        n = (size_t)snprintf(out, size, "%d %s%s", code, enhanced != NULL ? enhanced : "",
                             enhanced != NULL ? " " : "");
    if (n >= size)
        n = size - 1;
    for (; *text != '\0' && n + 1 < size && n < 160; text++) {
        if (*text == '<' && depth++ == 0) {
            out[n++] = '<';
            continue;
        }
        if (*text == '>' && depth > 0 && --depth == 0) {
            out[n++] = '>';
            continue;
        }
        if (depth == 0)
            out[n++] = *text;
    }
    out[n] = '\0';
}

static int add_reason(struct report_tally *t, const struct outcome *o)
{
    const char *status = outcome_status_name(o->status);
    char text[256], key[300];
    json_t *have, *n, *reason;

    report_reason(o, text, sizeof text);
    snprintf(key, sizeof key, "%s\t%s", status, text);
    have = json_object_get(t->reasons, key);
    if (have != NULL) {
        n = json_object_get(have, "count");
        return json_integer_set(n, json_integer_value(n) + 1) < 0 ? BLAST_ENOMEM : 0;
    }
    if (json_object_size(t->reasons) >= MAX_REASONS) {
        t->other_reasons++;
        return 0;
    }
    reason = json_pack("{s:s, s:o, s:o, s:s, s:i}", "status", status, "code",
                       o->code > 0 ? json_integer(o->code) : json_null(), "enhanced_code",
                       o->enhanced[0] != '\0' ? json_string(o->enhanced) : json_null(), "reason",
                       text, "count", 1);
    if (reason == NULL || json_object_set_new(t->reasons, key, reason) < 0)
        return BLAST_ENOMEM;
    return 0;
}

static int by_count(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "count"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "count"));

    if (x != y)
        return x > y ? -1 : 1;
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "reason")),
                  json_string_value(json_object_get(*(json_t *const *)b, "reason")));
}

json_t *report_tally_top_failures(const struct report_tally *t)
{
    size_t n = json_object_size(t->reasons), i = 0, k;
    json_t **all = n > 0 ? malloc(n * sizeof *all) : NULL, *out = json_array(), *v;
    const char *key;

    if (out == NULL || (n > 0 && all == NULL)) {
        free(all);
        json_decref(out);
        return NULL;
    }
    json_object_foreach(t->reasons, key, v) all[i++] = v;
    if (n > 0)
        qsort(all, n, sizeof *all, by_count);
    for (k = 0; k < n && k < TOP_REASONS; k++)
        if (json_array_append(out, all[k]) < 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    free(all);
    return out;
}

int report_tally_init(struct report_tally *t)
{
    memset(t, 0, sizeof *t);
    t->by_relay = countmap_new();
    t->by_domain = countmap_new();
    t->by_code = json_object();
    t->reasons = json_object();
    if (t->by_relay == NULL || t->by_domain == NULL || t->by_code == NULL || t->reasons == NULL) {
        report_tally_free(t);
        return BLAST_ENOMEM;
    }
    return 0;
}

void report_tally_free(struct report_tally *t)
{
    countmap_free(t->by_relay);
    countmap_free(t->by_domain);
    json_decref(t->by_code);
    json_decref(t->reasons);
    memset(t, 0, sizeof *t);
}

int report_tally_add(struct report_tally *t, const struct outcome *o)
{
    bool known = o->status < OUTCOME_STATUS_COUNT;
    /* a status a later version wrote is counted as "other" */
    size_t slot = known ? (size_t)o->status : COUNTMAP_OTHER;
    char domain[256];
    size_t i;

    t->entries++;
    if (known)
        t->counts[o->status]++;
    else
        t->other_status++;
    if (o->attempts > 0)
        t->attempts += (unsigned long long)o->attempts;
    if (o->status == OUTCOME_DELIVERED || o->status == OUTCOME_BOUNCED ||
        o->status == OUTCOME_COMPLAINED) {
        t->accepted++;
        t->accepted_bytes += o->size;
    }
    if (o->status == OUTCOME_DEFERRED && o->detail != NULL) {
        t->held_window += strncmp(o->detail, REPORT_HELD_WINDOW, strlen(REPORT_HELD_WINDOW)) == 0;
        t->held_warmup += strncmp(o->detail, REPORT_HELD_WARMUP, strlen(REPORT_HELD_WARMUP)) == 0;
    }
    /* domains are case-insensitive (RFC 5321 §2.4) */
    snprintf(domain, sizeof domain, "%s", domain_of(o->email != NULL ? o->email : ""));
    for (i = 0; domain[i] != '\0'; i++)
        if (domain[i] >= 'A' && domain[i] <= 'Z')
            domain[i] = (char)(domain[i] - 'A' + 'a');
    if (countmap_add(t->by_domain, domain, slot, 1) < 0 ||
        (o->relay != NULL && countmap_add(t->by_relay, o->relay, slot, 1) < 0))
        return BLAST_ENOMEM;
    if (o->code > 0) {
        char key[32];
        json_t *n;
        snprintf(key, sizeof key, "%d%s%s", o->code, o->enhanced[0] != '\0' ? " " : "",
                 o->enhanced);
        n = json_object_get(t->by_code, key);
        if (n == NULL ? json_object_set_new(t->by_code, key, json_integer(1)) < 0
                      : json_integer_set(n, json_integer_value(n) + 1) < 0)
            return BLAST_ENOMEM;
    }
    if ((o->status == OUTCOME_FAILED || o->status == OUTCOME_DEFERRED ||
         o->status == OUTCOME_UNKNOWN || o->status == OUTCOME_INVALID) &&
        add_reason(t, o) < 0)
        return BLAST_ENOMEM;
    return 0;
}

size_t report_count(const struct report *r, enum outcome_status s)
{
    return s >= 0 && s < OUTCOME_STATUS_COUNT ? r->tally.counts[s] : 0;
}

void report_set_merged(struct report *r, struct timeutil_stamp start, struct timeutil_stamp end,
                       size_t messages, json_t *shards)
{
    r->start = start;
    r->end = end;
    r->fixed_run = true;
    r->this_run = messages;
    json_decref(r->shards);
    r->shards = json_incref(shards);
}

json_t *report_summary(struct report *r)
{
    struct timeutil_stamp end;
    double secs;
    json_t *by_status, *top, *campaign = r->campaign;
    int i;

    if (!r->fixed_run) {
        /* the run ends when its summary is first made: later calls agree with it */
        r->end = timeutil_now();
        r->fixed_run = true;
    }
    end = r->end;
    secs = (double)(end.sec - r->start.sec) + (double)(end.usec - r->start.usec) / 1e6;
    by_status = json_object();
    if (by_status == NULL)
        return NULL;
    for (i = 0; i < OUTCOME_STATUS_COUNT; i++)
        json_object_set_new(by_status, outcome_status_name((enum outcome_status)i),
                            json_integer((json_int_t)r->tally.counts[i]));
    if ((top = report_tally_top_failures(&r->tally)) == NULL) {
        json_decref(by_status);
        return NULL;
    }
    if (secs < 0)
        secs = 0;
    json_t *s = json_pack(
        "{s:I, s:o, s:o, s:o, s:O, s:o, s:I, s:o, s:o, s:f, s:I, s:f, s:I, s:I, s:I, s:O, s:O}",
        "total", (json_int_t)r->tally.entries, "by_status", by_status, "by_relay",
        countmap_to_json(r->tally.by_relay), "by_domain", countmap_to_json(r->tally.by_domain),
        "by_code", r->tally.by_code, "top_failures", top, "other_failure_reasons",
        (json_int_t)r->tally.other_reasons, "start", time_or_null(r->start), "end",
        time_or_null(end), "duration_seconds", secs, "messages_this_run", (json_int_t)r->this_run,
        "messages_per_second", secs > 0 ? (double)r->this_run / secs : 0.0, "attempts",
        (json_int_t)r->tally.attempts, "messages_accepted", (json_int_t)r->tally.accepted,
        "bytes_accepted", (json_int_t)r->tally.accepted_bytes, "dry_run",
        json_object_get(campaign, "dry_run"), "test_to", json_object_get(campaign, "test_to"));
    if (s != NULL && r->shards != NULL && json_object_set(s, "shards", r->shards) < 0) {
        json_decref(s);
        return NULL;
    }
    /* docs/report.md: only when some were held */
    if (s != NULL && (r->tally.held_window > 0 || r->tally.held_warmup > 0) &&
        json_object_set_new(s, "held",
                            json_pack("{s:I, s:I}", "window", (json_int_t)r->tally.held_window,
                                      "warmup", (json_int_t)r->tally.held_warmup)) < 0) {
        json_decref(s);
        return NULL;
    }
    if (s != NULL && r->warmup != NULL && json_object_set(s, "warmup", r->warmup) < 0) {
        json_decref(s);
        return NULL;
    }
    if (s != NULL && r->seeds != NULL && json_object_set(s, "seeds", r->seeds) < 0) {
        json_decref(s);
        return NULL;
    }
    /* docs/report.md: only in the report of the run the breaker stopped */
    if (s != NULL && r->breaker != NULL &&
        json_object_set_new(s, "breaker", json_pack("{s:s}", "reason", r->breaker)) < 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

int report_commit(struct report *r, struct blast_error *err)
{
    json_t *s = report_summary(r);
    char *text = NULL;
    int rc = 0, fd;

    if (s == NULL || (text = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                               JSON_REAL_PRECISION(10))) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, r->path, 0, 0, "out of memory");
        goto out;
    }
    if (fprintf(r->f, "\n],\n\"summary\": %s\n}\n", text) < 0 || fflush(r->f) != 0) {
        rc = io_fail(r, err, "cannot write the report");
        goto out;
    }
    if (r->tmp != NULL) {
        char *dir = strdup(r->path);
        /* a .gz report's trailer is written when its stream closes: fsync() after that */
        bool gz = r->gz_fd >= 0;
        fd = gz ? r->gz_fd : fileno(r->f);
        if (!gz && fsync(fd) != 0) {
            free(dir);
            rc = io_fail(r, err, "cannot flush the report to disk");
            goto out;
        }
        if (fclose(r->f) != 0) {
            r->f = NULL;
            free(dir);
            rc = io_fail(r, err, "cannot write the report");
            goto out;
        }
        r->f = NULL;
        if (gz) {
            int synced = fsync(fd);
            int closed = close(fd);
            r->gz_fd = -1;
            if (synced != 0 || closed != 0) {
                free(dir);
                rc = io_fail(r, err, "cannot flush the report to disk");
                goto out;
            }
        }
        if (rename(r->tmp, r->path) != 0) {
            free(dir);
            rc = io_fail(r, err, "cannot move the report into place");
            goto out;
        }
        free(r->tmp);
        r->tmp = NULL;
        /* make the rename itself durable */
        if (dir != NULL) {
            int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
out:
    json_decref(s);
    free(text);
    report_abort(r);
    return rc;
}

void report_abort(struct report *r)
{
    if (r == NULL)
        return;
    if (r->f != NULL && !r->borrowed)
        fclose(r->f);
    else if (r->f != NULL)
        fflush(r->f);
    if (r->gz_fd >= 0)
        close(r->gz_fd);
    if (r->tmp != NULL) {
        unlink(r->tmp);
        free(r->tmp);
    }
    json_decref(r->campaign);
    json_decref(r->shards);
    report_tally_free(&r->tally);
    buf_free(&r->line);
    free(r->breaker);
    json_decref(r->seeds);
    json_decref(r->warmup);
    free(r->path);
    free(r);
}
