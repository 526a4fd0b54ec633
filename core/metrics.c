/*
 * metrics - the Prometheus text exposition format. See metrics.h.
 *
 * Every metric is a gauge: the figures are the campaign's state when the file was
 * written (a fresh start may make them fall), not counters that only grow; so none
 * ends in _total. Names end in their base unit (_seconds, _bytes,
 * _timestamp_seconds). The HELP texts are constants: node_exporter merges the files
 * of its textfile directory, and one metric must have one HELP in all of them;
 * every sample carries the campaign (and the shard) so that two files never hold the
 * same series.
 */
#include "metrics.h"
#include "private.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BLAST_VERSION
#define BLAST_VERSION "unknown"
#endif

#define LAST_SUCCESS   "blast_last_success_timestamp_seconds"
#define READ_MAX       (16u * 1024 * 1024) /* of an existing file, looking for the last success */
#define LINE_MAX_BYTES 4096

/* The statuses shown by relay: those a relay's answer (or a later bounce) decides. */
static const enum outcome_status relay_statuses[] = {
    OUTCOME_DELIVERED, OUTCOME_DEFERRED, OUTCOME_FAILED,
    OUTCOME_UNKNOWN,   OUTCOME_BOUNCED,  OUTCOME_COMPLAINED,
};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
}

static void free_relays(struct metrics *m)
{
    size_t i;

    for (i = 0; i < m->nrelays; i++)
        free(m->relays[i].name);
    free(m->relays);
    m->relays = NULL;
    m->nrelays = 0;
}

void metrics_free(struct metrics *m)
{
    free_relays(m);
    free(m->campaign);
    memset(m, 0, sizeof *m);
}

int metrics_set_campaign(struct metrics *m, const char *name)
{
    char *copy = strdup(name != NULL ? name : "");

    if (copy == NULL)
        return BLAST_ENOMEM;
    free(m->campaign);
    m->campaign = copy;
    return 0;
}

/* ---- from a report ------------------------------------------------------------------- */

/* A count: absent is 0 (*v untouched), else a whole number >= 0. */
static int count_of(const json_t *obj, const char *key, unsigned long long *v, const char *source,
                    const char *where, struct blast_error *err)
{
    const json_t *n = json_object_get(obj, key);

    if (n == NULL)
        return 0;
    if (!json_is_integer(n) || json_integer_value(n) < 0)
        return blast_error_set(err, BLAST_EINVAL, source, 0, 0,
                               "%s\"%s\" is not a count (a whole number >= 0)", where, key);
    *v = (unsigned long long)json_integer_value(n);
    return 0;
}

/* The counts of statuses this version knows, from {status: count}. */
static int counts_of(const json_t *obj, unsigned long long out[OUTCOME_STATUS_COUNT],
                     const char *source, const char *where, struct blast_error *err)
{
    int i, rc;

    for (i = 0; i < OUTCOME_STATUS_COUNT; i++) {
        out[i] = 0;
        if ((rc = count_of(obj, outcome_status_name((enum outcome_status)i), &out[i], source, where,
                           err)) < 0)
            return rc;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct metrics_relay *)a)->name, ((const struct metrics_relay *)b)->name);
}

int metrics_set_relays(struct metrics *m, const json_t *by_relay, struct blast_error *err)
{
    size_t n = json_object_size(by_relay), k = 0, i;
    struct metrics_relay *relays = NULL;
    const char *key;
    json_t *v;
    int rc = 0;

    if (n > 0 && (relays = calloc(n, sizeof *relays)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    /* json_object_foreach takes no const object; nothing is changed through it */
    json_object_foreach((json_t *)by_relay, key, v)
    {
        char where[160];
        if (!json_is_object(v)) {
            rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                                 "summary.by_relay: a relay's counts are not an object");
            goto out;
        }
        snprintf(where, sizeof where, "summary.by_relay: relay %.100s: ", key);
        if ((rc = counts_of(v, relays[k].recipients, NULL, where, err)) < 0)
            goto out;
        if ((relays[k].name = strdup(key)) == NULL) {
            rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto out;
        }
        k++;
    }
    if (k > 0)
        qsort(relays, k, sizeof *relays, by_name);
    free_relays(m);
    m->relays = relays;
    m->nrelays = k;
    relays = NULL;
out:
    for (i = 0; relays != NULL && i < n; i++)
        free(relays[i].name);
    free(relays);
    return rc;
}

static bool stamp_of(const json_t *obj, const char *key, double *out)
{
    const char *s = json_string_value(json_object_get(obj, key));
    struct timeutil_stamp t;

    if (s == NULL || timeutil_parse_rfc3339(s, &t) < 0)
        return false;
    *out = (double)t.sec + (double)t.usec / 1e6;
    return true;
}

int metrics_from_report(const char *source, const json_t *campaign, const json_t *summary,
                        struct metrics *m, struct blast_error *err)
{
    static const char *const totals[] = {"attempts", "messages_accepted", "bytes_accepted"};
    const char *name = json_string_value(json_object_get(campaign, "name"));
    const json_t *shard = json_object_get(campaign, "shard"), *v;
    unsigned long long *dest[] = {&m->attempts, &m->messages_accepted, &m->accepted_bytes};
    size_t i, have = 0;
    int rc;

    if (name == NULL)
        return blast_error_set(err, BLAST_EINVAL, source, 0, 0,
                               "the report's campaign has no name: not a report blast wrote");
    if (metrics_set_campaign(m, name) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (json_is_object(shard)) {
        json_int_t index = json_integer_value(json_object_get(shard, "index"));
        json_int_t count = json_integer_value(json_object_get(shard, "count"));
        if (count >= 2 && count <= 10000 && index >= 0 && index < count) {
            m->shard_index = (unsigned)index;
            m->shard_count = (unsigned)count;
        }
    }
    if (!json_is_object(summary))
        return 0;
    if (json_is_object(v = json_object_get(summary, "by_status"))) {
        if ((rc = counts_of(v, m->recipients, source, "summary.by_status: ", err)) < 0)
            return rc;
        m->has_counts = true;
        if (json_is_object(v = json_object_get(summary, "by_relay")) &&
            (rc = metrics_set_relays(m, v, err)) < 0)
            return rc;
    }
    for (i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        if (json_object_get(summary, totals[i]) == NULL)
            continue;
        if ((rc = count_of(summary, totals[i], dest[i], source, "summary: ", err)) < 0)
            return rc;
        have++;
    }
    m->has_totals = have == sizeof totals / sizeof totals[0];
    if (json_object_get(summary, "messages_this_run") != NULL) {
        if ((rc = count_of(summary, "messages_this_run", &m->run_messages, source,
                           "summary: ", err)) < 0)
            return rc;
        m->has_run_messages = true;
    }
    if (stamp_of(summary, "start", &m->run_start) && stamp_of(summary, "end", &m->run_end)) {
        v = json_object_get(summary, "duration_seconds");
        m->run_duration = json_is_number(v) && json_number_value(v) >= 0
                              ? json_number_value(v)
                              : (m->run_end > m->run_start ? m->run_end - m->run_start : 0);
        m->has_run = true;
    }
    return 0;
}

/* ---- the format ---------------------------------------------------------------------- */

int metrics_label_value(struct buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t len = strlen((const char *)p), i = 0;

    if (buf_putc(out, '"') < 0)
        return BLAST_ENOMEM;
    while (i < len) {
        unsigned char c = p[i];
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        int rc;

        if (c == '\\')
            rc = buf_append(out, "\\\\", 2);
        else if (c == '"')
            rc = buf_append(out, "\\\"", 2);
        else if (c == '\n')
            rc = buf_append(out, "\\n", 2);
        else if (c < 0x80)
            rc = buf_putc(out, (char)c);
        else if (n <= len - i && text_utf8_valid((const char *)p + i, n))
            rc = buf_append(out, p + i, n);
        else {
            rc = buf_append(out, "\xEF\xBF\xBD", 3); /* U+FFFD for the one bad byte */
            n = 1;
        }
        if (rc < 0)
            return BLAST_ENOMEM;
        i += n;
    }
    return buf_putc(out, '"');
}

/* A float as Go's ParseFloat reads it, in the fewest digits that give it back. */
static int put_double(struct buf *out, double v)
{
    char text[40];
    int p;

    for (p = 1; p <= 17; p++) {
        snprintf(text, sizeof text, "%.*g", p, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return buf_puts(out, text);
}

static int put_family(struct buf *out, const char *name, const char *help)
{
    return buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/*
 * The start of a sample: NAME{campaign="...",shard="I/N"; the caller adds its own
 * labels and the closing brace.
 */
static int put_start(struct buf *out, const struct metrics *m, const char *name)
{
    if (buf_printf(out, "%s{campaign=", name) < 0 || metrics_label_value(out, m->campaign) < 0)
        return BLAST_ENOMEM;
    if (m->shard_count >= 2 &&
        buf_printf(out, ",shard=\"%u/%u\"", m->shard_index, m->shard_count) < 0)
        return BLAST_ENOMEM;
    return 0;
}

/* NAME{campaign=...} VALUE, the value a count. */
static int put_count(struct buf *out, const struct metrics *m, const char *name, const char *help,
                     unsigned long long v)
{
    if (put_family(out, name, help) < 0 || put_start(out, m, name) < 0 ||
        buf_printf(out, "} %llu\n", v) < 0)
        return BLAST_ENOMEM;
    return 0;
}

/* NAME{campaign=...} VALUE, the value a float; nothing for one that is not finite. */
static int put_real(struct buf *out, const struct metrics *m, const char *name, const char *help,
                    double v)
{
    if (!isfinite(v))
        return 0;
    if (put_family(out, name, help) < 0 || put_start(out, m, name) < 0 || buf_puts(out, "} ") < 0 ||
        put_double(out, v) < 0 || buf_putc(out, '\n') < 0)
        return BLAST_ENOMEM;
    return 0;
}

static int put_status(struct buf *out, enum outcome_status s, unsigned long long v)
{
    return buf_printf(out, ",status=\"%s\"} %llu\n", outcome_status_name(s), v);
}

static bool relay_status(enum outcome_status s)
{
    size_t i;

    for (i = 0; i < sizeof relay_statuses / sizeof relay_statuses[0]; i++)
        if (relay_statuses[i] == s)
            return true;
    return false;
}

static int put_counts(struct buf *out, const struct metrics *m)
{
    size_t i;
    int s;

    if (put_family(out, "blast_recipients",
                   "The campaign's recipients by status, across its runs, as its report "
                   "counts them.") < 0)
        return BLAST_ENOMEM;
    for (s = 0; s < OUTCOME_STATUS_COUNT; s++)
        if (put_start(out, m, "blast_recipients") < 0 ||
            put_status(out, (enum outcome_status)s, m->recipients[s]) < 0)
            return BLAST_ENOMEM;
    if (m->nrelays == 0)
        return 0;
    if (put_family(out, "blast_relay_recipients",
                   "The campaign's recipients by the relay that took or refused their message, "
                   "and by status.") < 0)
        return BLAST_ENOMEM;
    for (i = 0; i < m->nrelays; i++)
        for (s = 0; s < OUTCOME_STATUS_COUNT; s++) {
            const struct metrics_relay *r = &m->relays[i];
            /* the statuses a relay decides, zeros included; any other that has a count */
            if (!relay_status((enum outcome_status)s) && r->recipients[s] == 0)
                continue;
            if (put_start(out, m, "blast_relay_recipients") < 0 || buf_puts(out, ",relay=") < 0 ||
                metrics_label_value(out, r->name) < 0 ||
                put_status(out, (enum outcome_status)s, r->recipients[s]) < 0)
                return BLAST_ENOMEM;
        }
    return 0;
}

int metrics_format(const struct metrics *m, struct buf *out)
{
    if (put_family(out, "blast_build_info", "The blast that wrote this file: its version.") < 0 ||
        put_start(out, m, "blast_build_info") < 0 || buf_puts(out, ",version=") < 0 ||
        metrics_label_value(out, BLAST_VERSION) < 0 || buf_puts(out, "} 1\n") < 0)
        return BLAST_ENOMEM;
    if (m->has_counts && put_counts(out, m) < 0)
        return BLAST_ENOMEM;
    if (m->has_totals &&
        (put_count(out, m, "blast_delivery_attempts",
                   "Delivery attempts made for the campaign's recipients, across its runs.",
                   m->attempts) < 0 ||
         put_count(out, m, "blast_messages_accepted",
                   "The campaign's recipients whose message a relay accepted (delivered, bounced "
                   "or complained), across its runs.",
                   m->messages_accepted) < 0 ||
         put_count(out, m, "blast_accepted_bytes",
                   "The size of the messages relays accepted for the campaign, across its runs.",
                   m->accepted_bytes) < 0))
        return BLAST_ENOMEM;
    if (m->has_run_messages &&
        put_count(out, m, "blast_run_messages",
                  "Messages the last run delivered (or rendered, in a dry run).",
                  m->run_messages) < 0)
        return BLAST_ENOMEM;
    if (m->has_run &&
        (put_real(out, m, "blast_run_start_timestamp_seconds",
                  "When the last run started, in seconds since the epoch.", m->run_start) < 0 ||
         put_real(out, m, "blast_run_end_timestamp_seconds",
                  "When the last run ended, in seconds since the epoch.", m->run_end) < 0 ||
         put_real(out, m, "blast_run_duration_seconds", "How long the last run took.",
                  m->run_duration) < 0))
        return BLAST_ENOMEM;
    if (m->has_exit_code &&
        put_real(out, m, "blast_run_exit_code",
                 "The last run's exit code: 0 all delivered, 1 finished with some not, 2 usage "
                 "or campaign error, 3 interrupted, 4 no relay usable.",
                 (double)m->exit_code) < 0)
        return BLAST_ENOMEM;
    if (m->has_last_success &&
        put_real(out, m, LAST_SUCCESS,
                 "When the last run that went through its list (exit code 0 or 1) ended, in "
                 "seconds since the epoch.",
                 m->last_success) < 0)
        return BLAST_ENOMEM;
    return 0;
}

int metrics_write(FILE *f, const struct metrics *m, struct blast_error *err)
{
    struct buf text = BUF_INIT;
    int rc = 0;

    if (metrics_format(m, &text) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (fwrite(text.data, 1, text.len, f) != text.len)
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "cannot write the metrics: %s",
                             strerror(errno));
out:
    buf_free(&text);
    return rc;
}

/* ---- the file ------------------------------------------------------------------------ */

int metrics_read_last_success(const char *path, const struct metrics *m, double *out)
{
    struct buf prefix = BUF_INIT;
    char line[LINE_MAX_BYTES];
    size_t taken = 0;
    struct stat st;
    FILE *f = NULL;
    int fd, found = 0;

    /* O_NONBLOCK: a FIFO in its place must not hang the run; only a regular file is read */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (f = fdopen(fd, "r")) == NULL) {
        close(fd);
        goto out;
    }
    if (put_start(&prefix, m, LAST_SUCCESS) < 0 || buf_puts(&prefix, "} ") < 0)
        goto out;
    while (taken < READ_MAX && fgets(line, sizeof line, f) != NULL) {
        size_t n = strlen(line);
        char *end;
        double v;

        taken += n;
        if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
            /* longer than any line of ours: skip the rest of it */
            int c;
            while (taken < READ_MAX && (c = fgetc(f)) != EOF && c != '\n')
                taken++;
            continue;
        }
        if (strncmp(line, prefix.data, prefix.len) != 0)
            continue;
        errno = 0;
        v = strtod(line + prefix.len, &end);
        if (end == line + prefix.len || errno != 0 || !isfinite(v) || v <= 0)
            continue;
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end != '\0')
            continue;
        *out = v;
        found = 1;
    }
out:
    if (f != NULL)
        fclose(f);
    buf_free(&prefix);
    return found;
}

int metrics_write_file(const char *path, const struct metrics *m, struct blast_error *err)
{
    struct metrics copy = *m; /* shallow: only the last success changes */
    struct private_file pf;
    struct buf text = BUF_INIT;
    int rc;
    double before;

    memset(&pf, 0, sizeof pf);
    if (copy.run_succeeded && copy.has_run) {
        copy.has_last_success = true;
        copy.last_success = copy.run_end;
    } else if (!copy.has_last_success && metrics_read_last_success(path, m, &before) == 1) {
        copy.has_last_success = true;
        copy.last_success = before;
    }
    if (metrics_format(&copy, &text) < 0) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    /* written whole beside the target, under a name that is not *.prom, so node_exporter
       never reads half a file; 0644, unlike the files that hold recipients' data:
       node_exporter reads it as another user, and nothing in it names a recipient
       (docs/files.md) */
    if ((rc = private_file_open_named(&pf, path, 0644, "the metrics file", err)) < 0)
        goto out;
    if (fwrite(text.data, 1, text.len, pf.f) != text.len) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot write the metrics file: %s",
                             strerror(errno));
        goto out;
    }
    rc = private_file_commit(&pf, err);
out:
    private_file_abort(&pf);
    buf_free(&text);
    return rc;
}
