/*
 * report - `blast report REPORT.json [--format text|json|csv|html|prometheus]`: a delivery report
 * read back (core/reportread, one recipient at a time) and printed for an
 * operator (text), for a program (json: the summary) or for a spreadsheet (csv:
 * one row per recipient).
 *
 * Memory stays flat with the number of recipients: the text view counts while it
 * streams, keeping only maps by recipient domain and relay (as large as the
 * distinct domains and relays) and a bounded set of failure reasons
 * (struct report_tally, shared with the report's own summary); csv
 * writes each row as it is read. The text view prefers what the report's summary
 * says; what the summary lacks (an older or partial report) is computed from the
 * recipients instead.
 *
 * Text from the report is data: control characters are shown as '?' on the
 * terminal, and csv fields that a spreadsheet would run as a formula are defused.
 */
#include "cli.h"
#include "../../core/htmlreport.h"
#include "../../core/intake.h"
#include "../../core/metrics.h"
#include "../../core/private.h"
#include "../../core/report.h"
#include "../../core/reportmerge.h"
#include "../../core/reportread.h"
#include "../../core/timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_report_usage[] =
    "usage: blast report REPORT.json [--format text|json|csv|html|prometheus]\n"
    "                    [--db PATH | --no-db] [-o PATH]\n"
    "       blast report --merge SHARD.json... -o MERGED.json\n"
    "\n"
    "Print a delivery report written by 'blast send' (REPORT.json may be '-' for\n"
    "standard input). The report is read one recipient at a time, so a report of a\n"
    "million recipients takes little memory.\n"
    "\n"
    "options:\n"
    "  --format text   one screen for an operator (the default): the campaign, totals\n"
    "                  by status, the run's duration and pace, failures grouped by\n"
    "                  reason (most frequent first), the ten busiest recipient domains\n"
    "                  and every relay\n"
    "  --format json   the report's summary object, pretty-printed\n"
    "  --format csv    RFC 4180: a header row, then one row per recipient with the\n"
    "                  columns row, email, status, code, enhanced_code, reply, step,\n"
    "                  detail, relay, attempts, message_id, queue_id, size,\n"
    "                  first_attempt, last_attempt, bounce_class, bounce_rule,\n"
    "                  bounce_status, bounce_time; a text field that starts with\n"
    "                  = + - @, a tab or a carriage return gets a leading ' so that a\n"
    "                  spreadsheet shows it rather than running it as a formula\n"
    "  --format html   one self-contained page (inline CSS and SVG, no script, nothing\n"
    "                  fetched) with the totals, the run, attempts over time, domains,\n"
    "                  relays, failure reasons, retries, bounces, DKIM and TLS\n"
    "                  (docs/report-page.md): blast report R.json --format html > R.html\n"
    "  --format prometheus\n"
    "                  the report's figures in the Prometheus text format, as\n"
    "                  'blast send --metrics' writes them, without the exit code and\n"
    "                  the last success (docs/metrics.md)\n"
    "  --db PATH       the suppression database whose events tell which delivered\n"
    "                  recipients later bounced or complained (docs/bounces.md);\n"
    "                  default: the campaign's suppression_db, as the report names it\n"
    "  --no-db         the report as written, without what came back later\n"
    "  --merge         merge the reports of a campaign's shards (send --shard) into\n"
    "                  one report of the campaign, by row (docs/sharding.md): every\n"
    "                  shard once, of one campaign and fingerprint, or nothing is\n"
    "                  written\n"
    "  -o, --output PATH  where the output goes rather than standard output ('-'), and\n"
    "                  with --merge where the merged report goes; written atomically,\n"
    "                  mode 0600 (it holds recipients' addresses), 0644 for\n"
    "                  --format prometheus (docs/files.md); a PATH ending in .gz\n"
    "                  is written gzip'ed\n"
    "  -h, --help      this text\n"
    "\n"
    "exit codes: 0 printed (merged); 2 usage error, a file that cannot be read or is\n"
    "not a blast report (the message names FILE:LINE:COL), reports that do not merge\n"
    "(another campaign, a missing or repeated shard), or output that cannot be\n"
    "written.\n";

enum format { FORMAT_TEXT, FORMAT_JSON, FORMAT_CSV, FORMAT_HTML, FORMAT_PROMETHEUS };

struct report_opts {
    const char *path;
    enum format format;
    bool format_set;
    const char *db; /* --db */
    bool no_db;     /* --no-db */
    bool merge;     /* --merge: the reports are argv[first..argc) */
    const char *output;
    char **inputs;
    size_t ninputs;
};

static int parse_args(int argc, char **argv, struct report_opts *o)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"db", required_argument, NULL, 'd'},
        {"no-db", no_argument, NULL, 'n'},
        {"merge", no_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->merge = true;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'f':
            o->format_set = true;
            if (strcmp(optarg, "text") == 0)
                o->format = FORMAT_TEXT;
            else if (strcmp(optarg, "json") == 0)
                o->format = FORMAT_JSON;
            else if (strcmp(optarg, "csv") == 0)
                o->format = FORMAT_CSV;
            else if (strcmp(optarg, "html") == 0)
                o->format = FORMAT_HTML;
            else if (strcmp(optarg, "prometheus") == 0)
                o->format = FORMAT_PROMETHEUS;
            else {
                cli_fail("report: --format is text, json, csv, html or prometheus, not '%s'",
                         optarg);
                return -1;
            }
            break;
        case 'd':
            o->db = optarg;
            break;
        case 'n':
            o->no_db = true;
            break;
        case 'h':
            fputs(cli_report_usage, stdout);
            return 1;
        default:
            cli_bad_option("report", argv, optopt);
            return -1;
        }
    }
    if (o->merge) {
        if (o->format_set || o->db != NULL || o->no_db) {
            cli_fail("report: --merge writes a report: --format, --db and --no-db are for "
                     "reading one (blast report MERGED.json)");
            return -1;
        }
        if (o->output == NULL) {
            cli_fail("report: --merge needs -o MERGED.json (or -o - for standard output)");
            return -1;
        }
        if (optind >= argc) {
            cli_fail("report: --merge needs the shards' reports: blast report --merge "
                     "SHARD.json... -o MERGED.json");
            return -1;
        }
        o->inputs = argv + optind;
        o->ninputs = (size_t)(argc - optind);
        return 0;
    }
    if (optind >= argc) {
        cli_fail("report: which report? usage: blast report REPORT.json [--format "
                 "text|json|csv]");
        return -1;
    }
    if (optind + 1 < argc) {
        cli_fail("report: unexpected argument '%s' (one report at a time)", argv[optind + 1]);
        return -1;
    }
    if (o->db != NULL && o->no_db) {
        cli_fail("report: --db and --no-db together");
        return -1;
    }
    o->path = argv[optind];
    return 0;
}

/* where the output goes: -o PATH, else standard output */
static const char *out_name = "standard output";

static int write_failed(struct blast_error *err)
{
    return blast_error_set(err, BLAST_EIO, out_name, 0, 0, "cannot write: %s", strerror(errno));
}

/* ---- csv ----------------------------------------------------------------------------- */

static const char *const csv_columns[] = {
    "row",        "email",    "status", "code",          "enhanced_code",
    "reply",      "step",     "detail", "relay",         "attempts",
    "message_id", "queue_id", "size",   "first_attempt", "last_attempt",
};

/* The columns of what came back later: the keys of a recipient's "bounce". */
static const char *const csv_bounce_columns[] = {"class", "rule", "status", "time"};

/*
 * One field, RFC 4180: quoted when it holds a comma, a quote or a line break, quotes
 * doubled. Text that starts with = + - @, a tab or a carriage return is what
 * spreadsheets take for a formula (OWASP "CSV injection"): a leading ' makes it text.
 */

static void csv_value(FILE *out, json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        cli_csv_field(out, json_string_value(v), true);
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        cli_csv_field(out, num, false);
        break;
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        cli_csv_field(out, num, false);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        cli_csv_field(out, json_is_true(v) ? "true" : "false", false);
        break;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        cli_csv_field(out, text != NULL ? text : "", true);
        free(text);
        break;
    }
    case JSON_NULL:
        break;
    }
}

static int csv_row(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                   struct blast_error *err)
{
    FILE *out = arg;
    size_t i;

    (void)index;
    (void)at;
    for (i = 0; i < sizeof csv_columns / sizeof csv_columns[0]; i++) {
        json_t *v = json_object_get(entry, csv_columns[i]);
        if (i > 0)
            fputc(',', out);
        if (v != NULL)
            csv_value(out, v);
    }
    for (i = 0; i < sizeof csv_bounce_columns / sizeof csv_bounce_columns[0]; i++) {
        json_t *v = json_object_get(json_object_get(entry, "bounce"), csv_bounce_columns[i]);
        fputc(',', out);
        if (v != NULL)
            csv_value(out, v);
    }
    fputs("\r\n", out);
    return ferror(out) ? write_failed(err) : 0;
}

/* ---- what came back later ------------------------------------------------------------ */

/*
 * Between the reader and the format's callback: each recipient that was delivered
 * and later bounced or complained (the campaign's events in the suppression
 * database, core/intake) is shown so; its JSON is changed before the format sees it.
 */
struct overlay {
    const struct report_opts *opt;
    const struct reportread_result *res; /* its campaign is read before the recipients */
    bool loaded;
    struct intake_later *later;
    size_t changed;
    json_t *rules;                  /* "class rule" -> count */
    reportread_fn next;             /* csv: the recipients as JSON */
    reportread_outcome_fn next_out; /* the other formats: as outcomes */
    void *next_arg;
};

static void load_later(struct overlay *ov)
{
    const char *name = json_string_value(json_object_get(ov->res->campaign, "name"));
    const char *db = ov->opt->db != NULL
                         ? ov->opt->db
                         : json_string_value(json_object_get(ov->res->campaign, "suppression_db"));
    struct blast_error e;

    ov->loaded = true;
    if (ov->opt->no_db || name == NULL || db == NULL)
        return;
    blast_error_clear(&e);
    if (ov->opt->db == NULL && access(db, F_OK) != 0) {
        cli_fail("report: warning: the campaign's suppression database %s is not there (run "
                 "from the campaign's directory, or --db PATH): later bounces not shown",
                 db);
        return;
    }
    if (intake_later_open(db, name, &ov->later, &e) < 0) {
        char text[BLAST_ERROR_TEXT_MAX + BLAST_ERROR_SOURCE_MAX + 64];
        cli_fail("report: warning: later bounces not shown: %s",
                 blast_error_format(&e, text, sizeof text));
    }
}

/* What came back later, into o: 1 when o changed (counted by class and rule), 0, or < 0. */
static int overlay_apply(struct overlay *ov, struct outcome *o, struct blast_error *err)
{
    int rc;
    char key[96];

    if (!ov->loaded)
        load_later(ov);
    if (intake_later_count(ov->later) == 0)
        return 0;
    if ((rc = intake_later_apply(ov->later, o)) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (rc == 1) {
        snprintf(key, sizeof key, "%s %s", o->bounce.class_, o->bounce.rule ? o->bounce.rule : "");
        json_object_set_new(ov->rules, key,
                            json_integer(json_integer_value(json_object_get(ov->rules, key)) + 1));
        ov->changed++;
    }
    return rc;
}

static int overlay_entry(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                         struct blast_error *err)
{
    struct overlay *ov = arg;
    struct outcome o;
    int rc;

    if (!ov->loaded)
        load_later(ov);
    if (intake_later_count(ov->later) > 0) {
        if ((rc = reportread_outcome(entry, index, at, &o, err)) < 0)
            return rc;
        rc = overlay_apply(ov, &o, err);
        if (rc == 1) {
            const struct outcome_bounce *b = &o.bounce;
            char when[40];
            timeutil_rfc3339(b->time, when, sizeof when);
            json_object_set_new(entry, "status", json_string(outcome_status_name(o.status)));
            json_object_set_new(entry, "bounce",
                                json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s}", "kind",
                                          b->kind, "class", b->class_, "rule", b->rule, "status",
                                          b->enhanced[0] ? b->enhanced : NULL, "diagnostic",
                                          b->diagnostic, "source", b->source, "time", when));
        }
        outcome_free(&o);
        if (rc < 0)
            return rc;
    }
    return ov->next != NULL ? ov->next(ov->next_arg, entry, index, at, err) : 0;
}

/* The same for a recipient read as its outcome: o is changed in place. */
static int overlay_outcome(void *arg, struct outcome *o, size_t index,
                           const struct reportread_place *at, struct blast_error *err)
{
    struct overlay *ov = arg;
    int rc;

    if ((rc = overlay_apply(ov, o, err)) < 0)
        return rc;
    return ov->next_out != NULL ? ov->next_out(ov->next_arg, o, index, at, err) : 0;
}

/* ---- text ---------------------------------------------------------------------------- */

#define TOP_REASONS 10
#define TOP_DOMAINS 10

static int count_outcome(void *arg, struct outcome *o, size_t index,
                         const struct reportread_place *at, struct blast_error *err)
{
    (void)index;
    if (report_tally_add(arg, o) < 0)
        return blast_error_set(err, BLAST_ENOMEM, at->source, 0, 0, "out of memory");
    return 0;
}

/*
 * Text from the report, shown on a terminal: control characters (C0, DEL and the
 * C1 range, which terminals take for escape sequences) become '?', and at most
 * width characters are shown ("..." ends a cut).
 */
static void put_safe(FILE *out, const char *s, size_t width)
{
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

    for (; *p != '\0'; p++) {
        if ((*p & 0xC0) != 0x80 && ++chars > width) {
            fputs("...", out);
            return;
        }
        if (*p < 0x20 || *p == 0x7f)
            fputc('?', out);
        else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
            fputc('?', out);
            p++;
        } else
            fputc(*p, out);
    }
}

/* Characters put_safe() shows of s, at most width (+3 for the "..."). */
static size_t shown_width(const char *s, size_t width)
{
    size_t chars = 0;

    for (; *s != '\0'; s++)
        if ((*s & 0xC0) != 0x80)
            chars++;
    return chars > width ? width + 3 : chars;
}

static void put_padded(FILE *out, const char *s, size_t width, size_t pad)
{
    size_t w = shown_width(s, width);

    put_safe(out, s, width);
    for (; w < pad; w++)
        fputc(' ', out);
}

static json_int_t count_in(json_t *counts, const char *status)
{
    return json_integer_value(json_object_get(counts, status));
}

static json_int_t total_in(json_t *counts)
{
    const char *key;
    json_t *v;
    json_int_t n = 0;

    json_object_foreach(counts, key, v) n += json_integer_value(v);
    return n;
}

struct row {
    const char *name;
    json_t *counts;
    json_int_t total;
};

static int by_total(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const char *const table_statuses[] = {"delivered", "deferred", "failed", "unknown"};
#define NAME_WIDTH 40

static void print_cells(FILE *out, const char *name, size_t pad, json_int_t total,
                        const json_int_t counts[4], json_int_t other, bool totals)
{
    size_t i;

    fputs("  ", out);
    put_padded(out, name, NAME_WIDTH, pad);
    if (totals)
        fprintf(out, " %9" JSON_INTEGER_FORMAT, total);
    for (i = 0; i < 4; i++)
        fprintf(out, " %9" JSON_INTEGER_FORMAT, counts[i]);
    if (totals)
        fprintf(out, " %9" JSON_INTEGER_FORMAT, other);
    fputc('\n', out);
}

/*
 * A table of map ({name: {status: count}}), busiest first: the first top rows
 * (all when top is 0) and one row for the rest. totals adds a total and an
 * "other" column (suppressed, invalid, duplicate, rendered).
 */
static int print_table(FILE *out, const char *title, const char *noun, json_t *map, size_t top,
                       bool totals)
{
    size_t n = json_object_size(map), i = 0, k, shown, pad = strlen(noun);
    struct row *rows = n > 0 ? calloc(n, sizeof *rows) : NULL;
    json_int_t rest[4] = {0, 0, 0, 0}, rest_total = 0, rest_other = 0;
    const char *key;
    json_t *v;

    if (n == 0) {
        fprintf(out, "\n%s: none\n", title);
        return 0;
    }
    if (rows == NULL)
        return BLAST_ENOMEM;
    json_object_foreach(map, key, v)
    {
        rows[i].name = key;
        rows[i].counts = v;
        rows[i].total = total_in(v);
        i++;
    }
    qsort(rows, n, sizeof *rows, by_total);
    shown = top > 0 && n > top ? top : n;
    for (k = 0; k < shown; k++)
        if (shown_width(rows[k].name, NAME_WIDTH) > pad)
            pad = shown_width(rows[k].name, NAME_WIDTH);
    if (shown < n && pad < 20)
        pad = 20; /* "others (N ...)" */
    if (shown < n)
        fprintf(out, "\n%s (the %zu busiest of %zu)\n", title, shown, n);
    else
        fprintf(out, "\n%s\n", title);
    fputs("  ", out);
    put_padded(out, noun, NAME_WIDTH, pad);
    if (totals)
        fprintf(out, " %9s", "total");
    for (k = 0; k < 4; k++)
        fprintf(out, " %9s", table_statuses[k]);
    if (totals)
        fprintf(out, " %9s", "other");
    fputc('\n', out);
    for (k = 0; k < n; k++) {
        json_int_t c[4], known = 0;
        for (i = 0; i < 4; i++) {
            c[i] = count_in(rows[k].counts, table_statuses[i]);
            known += c[i];
        }
        if (k < shown) {
            print_cells(out, rows[k].name, pad, rows[k].total, c, rows[k].total - known, totals);
            continue;
        }
        for (i = 0; i < 4; i++)
            rest[i] += c[i];
        rest_total += rows[k].total;
        rest_other += rows[k].total - known;
    }
    if (shown < n) {
        char label[64];
        snprintf(label, sizeof label, "others (%zu %s)", n - shown,
                 strcmp(noun, "domain") == 0 ? "domains" : "more");
        print_cells(out, label, pad, rest_total, rest, rest_other, totals);
    }
    free(rows);
    return 0;
}

/*
 * The failure reasons, most frequent first: the summary's top_failures, or, for a
 * report without them, the same list made from the counts taken while reading.
 */
static int print_failures(FILE *out, json_t *summary, const struct report_tally *t,
                          json_int_t failures)
{
    json_t *top = json_object_get(summary, "top_failures"), *v;
    json_int_t listed = 0;
    size_t k;

    if (failures == 0) {
        fputs("\nfailures: none\n", out);
        return 0;
    }
    top = json_is_array(top) ? json_incref(top) : report_tally_top_failures(t);
    if (top == NULL)
        return BLAST_ENOMEM;
    fputs("\nfailures by reason (most frequent first)\n", out);
    fprintf(out, "  %9s  %-10s %s\n", "count", "status", "reason");
    json_array_foreach(top, k, v)
    {
        json_int_t c = json_integer_value(json_object_get(v, "count"));
        const char *status = json_string_value(json_object_get(v, "status"));
        if (k >= TOP_REASONS)
            break;
        listed += c;
        fprintf(out, "  %9" JSON_INTEGER_FORMAT "  ", c);
        put_padded(out, status != NULL ? status : "?", 10, 10);
        fputc(' ', out);
        put_safe(out, json_string_value(json_object_get(v, "reason")), 160);
        fputc('\n', out);
    }
    if (failures > listed)
        fprintf(out, "  %9" JSON_INTEGER_FORMAT "  with other reasons\n", failures - listed);
    json_decref(top);
    return 0;
}

/* Recipients held back on purpose (summary.held), deferred for a later run. */
static void print_held(FILE *out, json_t *summary)
{
    json_t *held = json_object_get(summary, "held");
    json_int_t window = json_integer_value(json_object_get(held, "window"));
    json_int_t warmup = json_integer_value(json_object_get(held, "warmup"));

    if (window <= 0 && warmup <= 0)
        return;
    fputs("held        ", out);
    if (window > 0)
        fprintf(out, "%" JSON_INTEGER_FORMAT " outside their send window", window);
    if (warmup > 0)
        fprintf(out, "%s%" JSON_INTEGER_FORMAT " past a warm-up cap", window > 0 ? ", " : "",
                warmup);
    fputs(" (deferred for a later run)\n", out);
}

/* The seeds (summary.seeds): how many had the message, and the first refusal. */
static void print_seeds(FILE *out, json_t *summary)
{
    json_t *seeds = json_object_get(summary, "seeds"), *e;
    size_t i, delivered = 0;
    const char *refused = NULL;

    if (!json_is_array(seeds) || json_array_size(seeds) == 0)
        return;
    json_array_foreach(seeds, i, e)
    {
        const char *st = json_string_value(json_object_get(e, "status"));
        if (st != NULL && strcmp(st, "delivered") == 0)
            delivered++;
        else if (refused == NULL && st != NULL && strcmp(st, "failed") == 0)
            refused = json_string_value(json_object_get(e, "email"));
    }
    fprintf(out, "seeds       %zu of %zu delivered", delivered, json_array_size(seeds));
    if (refused != NULL) {
        fputs("; refused: ", out);
        put_safe(out, refused, 200);
    }
    fputc('\n', out);
}

static void print_head(FILE *out, const char *path, json_t *campaign, json_t *summary)
{
    const char *name = json_string_value(json_object_get(campaign, "name"));
    const char *file = json_string_value(json_object_get(campaign, "file"));
    const char *test_to = json_string_value(json_object_get(campaign, "test_to"));
    json_t *dry = json_object_get(campaign, "dry_run");
    json_t *secs = json_object_get(summary, "duration_seconds");
    json_t *rate = json_object_get(summary, "messages_per_second");
    json_t *this_run = json_object_get(summary, "messages_this_run");
    const char *start = json_string_value(json_object_get(summary, "start"));
    const char *end = json_string_value(json_object_get(summary, "end"));
    const char *breaker =
        json_string_value(json_object_get(json_object_get(summary, "breaker"), "reason"));

    fputs("report      ", out);
    put_safe(out, path, 200);
    fputs("\ncampaign    ", out);
    put_safe(out, name != NULL ? name : "(no name)", 200);
    if (file != NULL) {
        fputs(" (", out);
        put_safe(out, file, 200);
        fputc(')', out);
    }
    fputc('\n', out);
    fputs("mode        ", out);
    if (json_is_true(dry))
        fputs("dry run: messages rendered into files, nothing sent", out);
    if (test_to != NULL) {
        fputs(json_is_true(dry) ? "; " : "", out);
        fputs("test send: every message went to ", out);
        put_safe(out, test_to, 200);
    }
    if (!json_is_true(dry) && test_to == NULL)
        fputs(json_is_false(dry) ? "sent to the list (not a dry run, not a test send)" : "?", out);
    fputc('\n', out);
    if (start != NULL && end != NULL) {
        fputs("run         ", out);
        put_safe(out, start, 40);
        fputs(" to ", out);
        put_safe(out, end, 40);
        fputc('\n', out);
    }
    if (json_is_number(secs)) {
        fprintf(out, "duration    %.1f s", json_number_value(secs));
        if (json_is_integer(this_run))
            fprintf(out, ", %" JSON_INTEGER_FORMAT " %s this run", json_integer_value(this_run),
                    json_is_true(dry) ? "rendered" : "delivered");
        if (json_is_number(rate))
            fprintf(out, ", %.1f messages a second", json_number_value(rate));
        fputc('\n', out);
    }
    if (breaker != NULL) {
        fputs("stopped     by the circuit breaker: ", out);
        put_safe(out, breaker, 300);
        fputs("; the rest are deferred\n", out);
    }
    print_held(out, summary);
    print_seeds(out, summary);
}

/* A rule and how often it was shown, for sorting. */
struct rule_count {
    const char *key;
    json_int_t count;
};

static int by_count(const void *a, const void *b)
{
    const struct rule_count *x = a, *y = b;
    return (y->count > x->count) - (y->count < x->count);
}

/* The bounces and complaints shown, by class and rule, most frequent first. */
static void print_later(FILE *out, const struct overlay *ov)
{
    struct rule_count *v;
    const char *key;
    json_t *n;
    size_t count = 0;

    if (ov->changed == 0 || (v = calloc(json_object_size(ov->rules), sizeof *v)) == NULL)
        return;
    json_object_foreach(ov->rules, key, n) v[count++] =
        (struct rule_count){key, json_integer_value(n)};
    qsort(v, count, sizeof *v, by_count);
    fprintf(out, "\nlater bounces and complaints (%zu, from the suppression database)\n",
            ov->changed);
    for (size_t i = 0; i < count; i++) {
        fprintf(out, "  %9" JSON_INTEGER_FORMAT "  ", v[i].count);
        put_safe(out, v[i].key, 80);
        fputc('\n', out);
    }
    free(v);
}

static int print_text(FILE *out, const char *path, const struct reportread_result *res,
                      const struct report_tally *t, const struct overlay *ov)
{
    json_t *summary = res->summary;
    /* the summary was written before the bounces came back: count them as read instead */
    json_t *by_status = ov->changed == 0 ? json_object_get(summary, "by_status") : NULL;
    json_t *by_domain = json_object_get(summary, "by_domain");
    json_t *by_relay = json_object_get(summary, "by_relay");
    json_int_t total = (json_int_t)t->entries, failures = 0;
    int i, rc;

    if (!json_is_object(by_status))
        by_status = NULL;
    print_head(out, path, res->campaign, summary);
    fprintf(out, "\nrecipients  %" JSON_INTEGER_FORMAT "\n", total);
    for (i = 0; i < OUTCOME_STATUS_COUNT; i++) {
        const char *name = outcome_status_name((enum outcome_status)i);
        json_int_t n = by_status != NULL ? count_in(by_status, name) : (json_int_t)t->counts[i];
        if (n == 0)
            continue;
        fprintf(out, "  %-11s %9" JSON_INTEGER_FORMAT "  %5.1f%%\n", name, n,
                total > 0 ? 100.0 * (double)n / (double)total : 0.0);
        if (i == OUTCOME_FAILED || i == OUTCOME_DEFERRED || i == OUTCOME_UNKNOWN ||
            i == OUTCOME_INVALID)
            failures += n;
    }
    if (by_status == NULL && t->other_status > 0)
        fprintf(out, "  %-11s %9zu\n", "(other)", t->other_status);
    if ((rc = print_failures(out, summary, t, failures)) < 0)
        return rc;
    print_later(out, ov);
    /* what the summary lacks (an older or partial report), as counted while reading */
    json_t *counted_domains = json_is_object(by_domain) ? NULL : countmap_to_json(t->by_domain);
    json_t *counted_relays = json_is_object(by_relay) ? NULL : countmap_to_json(t->by_relay);
    if ((!json_is_object(by_domain) && counted_domains == NULL) ||
        (!json_is_object(by_relay) && counted_relays == NULL))
        rc = BLAST_ENOMEM;
    else if ((rc = print_table(out, "recipient domains", "domain",
                               counted_domains != NULL ? counted_domains : by_domain, TOP_DOMAINS,
                               true)) == 0)
        rc = print_table(out, "relays", "relay", counted_relays != NULL ? counted_relays : by_relay,
                         0, false);
    json_decref(counted_domains);
    json_decref(counted_relays);
    return rc;
}

/* ---- html ---------------------------------------------------------------------------- */

static int stats_outcome(void *arg, struct outcome *o, size_t index,
                         const struct reportread_place *at, struct blast_error *err)
{
    (void)index;
    if (runstats_add(arg, o) < 0)
        return blast_error_set(err, BLAST_ENOMEM, at->source, 0, 0, "out of memory");
    return 0;
}

/*
 * The page, with a link to the rows as CSV beside the report (R.json or R.json.gz:
 * R.csv) and the command that writes it.
 */
static int print_html(FILE *out, const char *path, const struct reportread_result *res,
                      const struct runstats *st, const struct overlay *ov, struct blast_error *err)
{
    struct htmlreport_input in = {0};
    char *href = NULL, *command = NULL;
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    size_t n = strlen(base);
    int rc;

    if (strcmp(path, "-") != 0 && n > 0) {
        size_t stem = n > 8 && strcmp(base + n - 8, ".json.gz") == 0 ? n - 8
                      : n > 5 && strcmp(base + n - 5, ".json") == 0  ? n - 5
                                                                     : n;
        if (asprintf(&href, "%.*s.csv", (int)stem, base) < 0 ||
            asprintf(&command, "blast report %s --format csv > %s", base, href) < 0) {
            free(href);
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        }
    }
    in.source = strcmp(path, "-") == 0 ? "standard input" : path;
    in.csv_href = href;
    in.csv_command = command != NULL ? command : "blast report REPORT.json --format csv";
    in.generator = "blast " BLAST_VERSION;
    in.campaign = res->campaign;
    in.summary = res->summary;
    in.stats = st;
    in.later = ov->changed;
    rc = htmlreport_write(out, out_name, &in, err);
    free(href);
    free(command);
    return rc;
}

/* ---- prometheus ---------------------------------------------------------------------- */

/*
 * The report's figures in the Prometheus text format (core/metrics): its campaign and
 * summary, and what the summary lacks (a report written before attempts,
 * messages_accepted and bytes_accepted) counted from the recipients as they were
 * read. By relay too when what came back later changed statuses: the summary's
 * by_relay was written before.
 */
static int print_prometheus(FILE *out, const char *name, const struct reportread_result *res,
                            const struct report_tally *t, const struct overlay *ov,
                            struct blast_error *err)
{
    json_t *by_relay = json_object_get(res->summary, "by_relay");
    struct metrics m;
    int i, rc;

    metrics_init(&m);
    if ((rc = metrics_from_report(name, res->campaign, res->summary, &m, err)) < 0)
        goto out;
    if (!m.has_counts) {
        for (i = 0; i < OUTCOME_STATUS_COUNT; i++)
            m.recipients[i] = t->counts[i];
        m.has_counts = true;
    }
    if (ov->changed > 0 || !json_is_object(by_relay)) {
        json_t *counted = countmap_to_json(t->by_relay);
        rc = counted != NULL ? metrics_set_relays(&m, counted, err)
                             : blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        json_decref(counted);
        if (rc < 0)
            goto out;
    }
    if (!m.has_totals) {
        m.attempts = t->attempts;
        m.messages_accepted = t->accepted;
        m.accepted_bytes = t->accepted_bytes;
        m.has_totals = true;
    }
    rc = metrics_write(out, &m, err);
out:
    metrics_free(&m);
    return rc;
}

/* ---- the command --------------------------------------------------------------------- */

/* --merge: the shards' reports into one (core/reportmerge). */
static int merge(const struct report_opts *o)
{
    struct reportmerge_stats st;
    struct blast_error err;
    size_t i;

    blast_error_clear(&err);
    for (i = 0; i < o->ninputs; i++)
        if (strcmp(o->inputs[i], "-") == 0) {
            cli_fail("report: --merge reads files, not standard input");
            return BLAST_EXIT_USAGE;
        }
    bool out = strcmp(o->output, "-") == 0;
    if (reportmerge_run((const char *const *)o->inputs, o->ninputs,
                        out ? "standard output" : o->output, out ? stdout : NULL, &st, &err) < 0) {
        cli_error(&err);
        return BLAST_EXIT_USAGE;
    }
    fprintf(stderr, "blast: merged %zu shards of %zu: %zu recipients into %s\n", st.shards,
            st.count, st.recipients, out ? "standard output" : o->output);
    return BLAST_EXIT_OK;
}

/*
 * The report's recipients handed to each as outcomes, through the pull reader so that
 * the summary's keys in skip (NULL-terminated, or NULL) are left out when it is read.
 */
static int read_outcomes(const char *path, const char *name, const char *const *skip,
                         reportread_outcome_fn each, void *arg, struct reportread_result *out,
                         struct blast_error *err)
{
    struct reportread *rd = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    rc = strcmp(path, "-") == 0 ? reportread_open_stream(stdin, name, &rd, err)
                                : reportread_open(path, 0, &rd, err);
    if (rc < 0)
        return rc;
    reportread_skip_summary(rd, skip);
    return reportread_each_outcome(rd, each, arg, out, err);
}

int cmd_report(int argc, char **argv)
{
    static const char *const lean_summary[] = {"by_domain", NULL};
    struct report_opts o;
    struct reportread_result res;
    struct blast_error err;
    struct report_tally t;
    struct runstats st;
    struct overlay ov = {0};
    struct private_file pf = {0};
    FILE *out = stdout;
    reportread_fn each = NULL;
    reportread_outcome_fn each_out = NULL;
    void *arg = NULL;
    const char *name;
    char *text = NULL;
    int code = BLAST_EXIT_USAGE, rc;
    size_t i;

    memset(&res, 0, sizeof res);
    memset(&t, 0, sizeof t);
    memset(&st, 0, sizeof st);
    blast_error_clear(&err);
    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    if (o.merge)
        return merge(&o);
    name = strcmp(o.path, "-") == 0 ? "standard input" : o.path;
    if (o.output != NULL && strcmp(o.output, "-") != 0) {
        /* recipients' data, the owner's only; the metrics name none and are for
           node_exporter, which runs as another user (docs/files.md) */
        if ((rc = private_file_open(&pf, o.output,
                                    o.format == FORMAT_PROMETHEUS ? 0644 : PRIVATE_FILE_MODE,
                                    &err)) < 0 ||
            (private_wants_gzip(o.output) && (rc = private_file_gzip(&pf, &err)) < 0))
            goto fail;
        out = pf.f;
        out_name = o.output;
    }

    if (o.format == FORMAT_CSV) {
        for (i = 0; i < sizeof csv_columns / sizeof csv_columns[0]; i++)
            fprintf(out, "%s%s", i > 0 ? "," : "", csv_columns[i]);
        for (i = 0; i < sizeof csv_bounce_columns / sizeof csv_bounce_columns[0]; i++)
            fprintf(out, ",bounce_%s", csv_bounce_columns[i]);
        fputs("\r\n", out);
        each = csv_row;
        arg = out;
    } else if (o.format == FORMAT_HTML) {
        if (runstats_init(&st) < 0) {
            rc = blast_error_set(&err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto fail;
        }
        each_out = stats_outcome;
        arg = &st;
    } else {
        if (report_tally_init(&t) < 0) {
            rc = blast_error_set(&err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto fail;
        }
        each_out = count_outcome;
        arg = &t;
    }
    ov = (struct overlay){&o, &res, false, NULL, 0, json_object(), each, each_out, arg};
    if (ov.rules == NULL) {
        rc = blast_error_set(&err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto fail;
    }
    /* csv writes each recipient's JSON fields; the others count outcomes, read straight
       from the text (core/jsontape) */
    if (each != NULL && strcmp(o.path, "-") == 0)
        rc = reportread_stream(stdin, name, overlay_entry, &ov, &res, &err);
    else if (each != NULL)
        rc = reportread_file(o.path, overlay_entry, &ov, &res, &err);
    else
        /* the page and the metrics count domains from the recipients: the summary's
           by_domain, as large as the list's distinct domains, is not read */
        rc = read_outcomes(o.path, name,
                           o.format == FORMAT_HTML || o.format == FORMAT_PROMETHEUS ? lean_summary
                                                                                    : NULL,
                           overlay_outcome, &ov, &res, &err);
    if (rc < 0)
        goto fail;
    if (ov.changed > 0 && res.summary != NULL) {
        /* the summary's counts as they stand now, bounced and complained included */
        json_t *by_status = json_object();
        for (i = 0; by_status != NULL && i < OUTCOME_STATUS_COUNT; i++)
            json_object_set_new(
                by_status, outcome_status_name((enum outcome_status)i),
                json_integer(
                    (json_int_t)(o.format == FORMAT_HTML ? st.tally.counts[i] : t.counts[i])));
        json_object_set_new(res.summary, "by_status", by_status);
    }

    if (o.format == FORMAT_JSON) {
        if (res.summary == NULL) {
            rc = blast_error_set(&err, BLAST_EINVAL, name, 0, 0, "the report has no \"summary\"");
            goto fail;
        }
        /* 15 significant digits give back the decimals the report was written with */
        text =
            json_dumps(res.summary, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        if (text == NULL) {
            rc = blast_error_set(&err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            goto fail;
        }
        fprintf(out, "%s\n", text);
    } else if (o.format == FORMAT_HTML) {
        if ((rc = print_html(out, o.path, &res, &st, &ov, &err)) < 0)
            goto fail;
    } else if (o.format == FORMAT_TEXT) {
        if ((rc = print_text(out, name, &res, &t, &ov)) < 0) {
            blast_error_set(&err, rc, NULL, 0, 0, "out of memory");
            goto fail;
        }
    } else if (o.format == FORMAT_PROMETHEUS) {
        if ((rc = print_prometheus(out, name, &res, &t, &ov, &err)) < 0)
            goto fail;
    }
    if (fflush(out) != 0 || ferror(out)) {
        rc = write_failed(&err);
        goto fail;
    }
    if (pf.f != NULL && (rc = private_file_commit(&pf, &err)) < 0)
        goto fail;
    code = BLAST_EXIT_OK;
    goto out;
fail:
    cli_error(&err);
    code = BLAST_EXIT_USAGE;
out:
    private_file_abort(&pf);
    free(text);
    report_tally_free(&t);
    runstats_free(&st);
    reportread_result_free(&res);
    intake_later_free(ov.later);
    json_decref(ov.rules);
    return code;
}
