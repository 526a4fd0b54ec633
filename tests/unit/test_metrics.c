/*
 * test_metrics - the Prometheus text format: label values escaped and made UTF-8,
 * the exact output for a fixed set of figures, a report's campaign and summary
 * read into them, the last success carried over from the file being replaced, and
 * the atomic write (no temporary file left, mode 0644, a failed write keeps the
 * old file).
 */
#include "../../core/metrics.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BLAST_VERSION
#define BLAST_VERSION "unknown"
#endif

static char *label(const char *s)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(metrics_label_value(&b, s), 0);
    return buf_steal(&b);
}

static void assert_label(const char *in, const char *want)
{
    char *got = label(in);

    cr_assert_str_eq(got, want, "label value of [%s]", in);
    free(got);
}

Test(metrics, label_values_escape_backslash_quote_and_newline)
{
    assert_label("news", "\"news\"");
    assert_label("", "\"\"");
    assert_label("say \"hi\"", "\"say \\\"hi\\\"\"");
    assert_label("C:\\mail\\", "\"C:\\\\mail\\\\\"");
    assert_label("two\nlines", "\"two\\nlines\"");
    /* only those three: a tab or a carriage return is a character like another */
    assert_label("a\tb\rc", "\"a\tb\rc\"");
    assert_label("\\n", "\"\\\\n\"");
}

Test(metrics, label_values_are_made_valid_utf8)
{
    /* valid UTF-8 stays as it is */
    assert_label("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\xAC",
                 "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\xAC\"");
    /* each byte that is not part of valid UTF-8 becomes U+FFFD */
    assert_label("a\xFF"
                 "b",
                 "\"a\xEF\xBF\xBD"
                 "b\"");
    assert_label("\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");                 /* an overlong '/' */
    assert_label("\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""); /* a surrogate */
    assert_label("end\xF0\x9F", "\"end\xEF\xBF\xBD\xEF\xBF\xBD\"");           /* cut short */
    assert_label("\xE2\x82", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

/* A fixed set of figures: a campaign of 21 rows, two relays, a finished run. */
static void fixed(struct metrics *m, const char *relay)
{
    metrics_init(m);
    cr_assert_eq(metrics_set_campaign(m, "news"), 0);
    m->has_counts = true;
    m->recipients[OUTCOME_DELIVERED] = 17;
    m->recipients[OUTCOME_DEFERRED] = 1;
    m->recipients[OUTCOME_FAILED] = 2;
    m->recipients[OUTCOME_INVALID] = 1;
    m->relays = calloc(2, sizeof *m->relays);
    cr_assert_not_null(m->relays);
    m->nrelays = 2;
    m->relays[0].name = strdup("backup");
    m->relays[0].recipients[OUTCOME_DELIVERED] = 5;
    m->relays[1].name = strdup(relay);
    m->relays[1].recipients[OUTCOME_DELIVERED] = 12;
    m->relays[1].recipients[OUTCOME_DEFERRED] = 1;
    m->relays[1].recipients[OUTCOME_FAILED] = 2;
    m->has_totals = true;
    m->attempts = 24;
    m->messages_accepted = 17;
    m->accepted_bytes = 24650;
    m->has_run_messages = true;
    m->run_messages = 9;
    m->has_run = true;
    m->run_start = 1764000000.25;
    m->run_end = 1764000012.5;
    m->run_duration = 12.25;
    m->has_exit_code = true;
    m->exit_code = 1;
    m->has_last_success = true;
    m->last_success = 1764000012.5;
}

static char *format(const struct metrics *m)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(metrics_format(m, &b), 0);
    return buf_steal(&b);
}

static const char golden[] =
    "# HELP blast_build_info The blast that wrote this file: its version.\n"
    "# TYPE blast_build_info gauge\n"
    "blast_build_info{campaign=\"news\",version=\"" BLAST_VERSION "\"} 1\n"
    "# HELP blast_recipients The campaign's recipients by status, across its runs, as its "
    "report counts them.\n"
    "# TYPE blast_recipients gauge\n"
    "blast_recipients{campaign=\"news\",status=\"delivered\"} 17\n"
    "blast_recipients{campaign=\"news\",status=\"deferred\"} 1\n"
    "blast_recipients{campaign=\"news\",status=\"failed\"} 2\n"
    "blast_recipients{campaign=\"news\",status=\"unknown\"} 0\n"
    "blast_recipients{campaign=\"news\",status=\"suppressed\"} 0\n"
    "blast_recipients{campaign=\"news\",status=\"invalid\"} 1\n"
    "blast_recipients{campaign=\"news\",status=\"duplicate\"} 0\n"
    "blast_recipients{campaign=\"news\",status=\"rendered\"} 0\n"
    "blast_recipients{campaign=\"news\",status=\"bounced\"} 0\n"
    "blast_recipients{campaign=\"news\",status=\"complained\"} 0\n"
    "# HELP blast_relay_recipients The campaign's recipients by the relay that took or refused "
    "their message, and by status.\n"
    "# TYPE blast_relay_recipients gauge\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"backup\",status=\"delivered\"} 5\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"backup\",status=\"deferred\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"backup\",status=\"failed\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"backup\",status=\"unknown\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"backup\",status=\"bounced\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"backup\",status=\"complained\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"main \\\"eu\\\"\",status=\"delivered\"} 12\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"main \\\"eu\\\"\",status=\"deferred\"} 1\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"main \\\"eu\\\"\",status=\"failed\"} 2\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"main \\\"eu\\\"\",status=\"unknown\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"main \\\"eu\\\"\",status=\"bounced\"} 0\n"
    "blast_relay_recipients{campaign=\"news\",relay=\"main \\\"eu\\\"\",status=\"complained\"} "
    "0\n"
    "# HELP blast_delivery_attempts Delivery attempts made for the campaign's recipients, across "
    "its runs.\n"
    "# TYPE blast_delivery_attempts gauge\n"
    "blast_delivery_attempts{campaign=\"news\"} 24\n"
    "# HELP blast_messages_accepted The campaign's recipients whose message a relay accepted "
    "(delivered, bounced or complained), across its runs.\n"
    "# TYPE blast_messages_accepted gauge\n"
    "blast_messages_accepted{campaign=\"news\"} 17\n"
    "# HELP blast_accepted_bytes The size of the messages relays accepted for the campaign, "
    "across its runs.\n"
    "# TYPE blast_accepted_bytes gauge\n"
    "blast_accepted_bytes{campaign=\"news\"} 24650\n"
    "# HELP blast_run_messages Messages the last run delivered (or rendered, in a dry run).\n"
    "# TYPE blast_run_messages gauge\n"
    "blast_run_messages{campaign=\"news\"} 9\n"
    "# HELP blast_run_start_timestamp_seconds When the last run started, in seconds since the "
    "epoch.\n"
    "# TYPE blast_run_start_timestamp_seconds gauge\n"
    "blast_run_start_timestamp_seconds{campaign=\"news\"} 1764000000.25\n"
    "# HELP blast_run_end_timestamp_seconds When the last run ended, in seconds since the "
    "epoch.\n"
    "# TYPE blast_run_end_timestamp_seconds gauge\n"
    "blast_run_end_timestamp_seconds{campaign=\"news\"} 1764000012.5\n"
    "# HELP blast_run_duration_seconds How long the last run took.\n"
    "# TYPE blast_run_duration_seconds gauge\n"
    "blast_run_duration_seconds{campaign=\"news\"} 12.25\n"
    "# HELP blast_run_exit_code The last run's exit code: 0 all delivered, 1 finished with some "
    "not, 2 usage or campaign error, 3 interrupted, 4 no relay usable.\n"
    "# TYPE blast_run_exit_code gauge\n"
    "blast_run_exit_code{campaign=\"news\"} 1\n"
    "# HELP blast_last_success_timestamp_seconds When the last run that went through its list "
    "(exit code 0 or 1) ended, in seconds since the epoch.\n"
    "# TYPE blast_last_success_timestamp_seconds gauge\n"
    "blast_last_success_timestamp_seconds{campaign=\"news\"} 1764000012.5\n";

Test(metrics, exact_output_for_fixed_figures)
{
    struct metrics m;
    char *text;

    fixed(&m, "main \"eu\"");
    text = format(&m);
    cr_assert_str_eq(text, golden);
    free(text);
    metrics_free(&m);
}

Test(metrics, write_to_a_stream_is_the_format)
{
    struct metrics m;
    struct blast_error err;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cr_assert_not_null(f);
    fixed(&m, "main \"eu\"");
    blast_error_clear(&err);
    cr_assert_eq(metrics_write(f, &m, &err), 0, "%s", err.text);
    cr_assert_eq(fclose(f), 0);
    cr_assert_str_eq(text, golden);
    free(text);
    metrics_free(&m);
}

Test(metrics, a_shard_labels_every_sample)
{
    struct metrics m;
    char *text, *line, *save = NULL;
    int samples = 0;

    fixed(&m, "main");
    m.shard_index = 1;
    m.shard_count = 4;
    text = format(&m);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        samples++;
        cr_assert_not_null(strstr(line, "{campaign=\"news\",shard=\"1/4\""), "%s", line);
    }
    cr_assert_eq(samples, 1 + 10 + 12 + 3 + 1 + 3 + 2);
    free(text);
    metrics_free(&m);
}

Test(metrics, groups_not_known_are_left_out)
{
    struct metrics m;
    char *text;

    metrics_init(&m);
    cr_assert_eq(metrics_set_campaign(&m, "news"), 0);
    m.has_exit_code = true;
    m.exit_code = 2;
    text = format(&m);
    cr_assert_not_null(strstr(text, "blast_run_exit_code{campaign=\"news\"} 2\n"));
    cr_assert_not_null(strstr(text, "blast_build_info{"));
    cr_assert_null(strstr(text, "blast_recipients"), "no counts: no sample, not zeros");
    cr_assert_null(strstr(text, "blast_delivery_attempts"));
    cr_assert_null(strstr(text, "blast_run_start"));
    cr_assert_null(strstr(text, "blast_last_success"));
    free(text);
    /* counts, but no relay: no relay family at all */
    m.has_counts = true;
    text = format(&m);
    cr_assert_not_null(strstr(text, "blast_recipients{"));
    cr_assert_null(strstr(text, "blast_relay_recipients"));
    free(text);
    metrics_free(&m);
}

Test(metrics, numbers_take_the_fewest_digits_that_give_them_back)
{
    struct metrics m;
    char *text;

    metrics_init(&m);
    cr_assert_eq(metrics_set_campaign(&m, "n"), 0);
    m.has_run = true;
    m.run_start = 1764000000.123;
    m.run_end = 1764000000.1;
    m.run_duration = 1.0 / 3.0;
    text = format(&m);
    cr_assert_not_null(strstr(text, "blast_run_start_timestamp_seconds{campaign=\"n\"} "
                                    "1764000000.123\n"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "} 1764000000.1\n"));
    cr_assert_not_null(strstr(text, "blast_run_duration_seconds{campaign=\"n\"} "
                                    "0.3333333333333333\n"));
    free(text);
    metrics_free(&m);
}

/* ---- from a report ------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);

    cr_assert_not_null(j, "%s", jerr.text);
    return j;
}

Test(metrics, from_a_report_summary)
{
    json_t *c = parse("{\"name\":\"news\",\"shard\":{\"index\":2,\"count\":3}}");
    json_t *s = parse("{\"total\":4,\"by_status\":{\"delivered\":2,\"failed\":1,\"invalid\":1,"
                      "\"later\":7},"
                      "\"by_relay\":{\"zeta\":{\"delivered\":1},\"alpha\":{\"delivered\":1,"
                      "\"failed\":1}},"
                      "\"start\":\"2025-11-24T16:00:00.250Z\",\"end\":\"2025-11-24T16:00:02.500Z\","
                      "\"duration_seconds\":2.25,\"messages_this_run\":2,"
                      "\"attempts\":5,\"messages_accepted\":2,\"bytes_accepted\":3000}");
    struct metrics m;
    struct blast_error err;

    metrics_init(&m);
    blast_error_clear(&err);
    cr_assert_eq(metrics_from_report("r.json", c, s, &m, &err), 0, "%s", err.text);
    cr_assert_str_eq(m.campaign, "news");
    cr_assert_eq(m.shard_index, 2);
    cr_assert_eq(m.shard_count, 3);
    cr_assert(m.has_counts);
    cr_assert_eq(m.recipients[OUTCOME_DELIVERED], 2);
    cr_assert_eq(m.recipients[OUTCOME_FAILED], 1);
    cr_assert_eq(m.recipients[OUTCOME_INVALID], 1);
    cr_assert_eq(m.recipients[OUTCOME_DEFERRED], 0);
    cr_assert_eq(m.nrelays, 2);
    cr_assert_str_eq(m.relays[0].name, "alpha", "relays in name order");
    cr_assert_eq(m.relays[0].recipients[OUTCOME_FAILED], 1);
    cr_assert_str_eq(m.relays[1].name, "zeta");
    cr_assert(m.has_totals);
    cr_assert_eq(m.attempts, 5);
    cr_assert_eq(m.messages_accepted, 2);
    cr_assert_eq(m.accepted_bytes, 3000);
    cr_assert(m.has_run_messages);
    cr_assert_eq(m.run_messages, 2);
    cr_assert(m.has_run);
    cr_assert_float_eq(m.run_start, 1764000000.25, 1e-6);
    cr_assert_float_eq(m.run_end, 1764000002.5, 1e-6);
    cr_assert_float_eq(m.run_duration, 2.25, 1e-9);
    cr_assert_not(m.has_exit_code, "a report has no exit code");
    cr_assert_not(m.has_last_success);
    metrics_free(&m);
    json_decref(c);
    json_decref(s);
}

Test(metrics, an_older_summary_has_no_totals)
{
    json_t *c = parse("{\"name\":\"news\",\"shard\":null}");
    json_t *s = parse("{\"by_status\":{\"delivered\":1},\"messages_this_run\":1}");
    struct metrics m;
    struct blast_error err;

    metrics_init(&m);
    blast_error_clear(&err);
    cr_assert_eq(metrics_from_report("old.json", c, s, &m, &err), 0, "%s", err.text);
    cr_assert_eq(m.shard_count, 0);
    cr_assert(m.has_counts);
    cr_assert_eq(m.nrelays, 0);
    cr_assert_not(m.has_totals, "a report written before them lacks them");
    cr_assert_not(m.has_run, "no start or end");
    metrics_free(&m);
    /* no summary at all: the campaign only */
    metrics_init(&m);
    cr_assert_eq(metrics_from_report("old.json", c, NULL, &m, &err), 0, "%s", err.text);
    cr_assert_not(m.has_counts);
    metrics_free(&m);
    json_decref(c);
    json_decref(s);
}

Test(metrics, a_report_with_wrong_values_is_refused)
{
    json_t *c = parse("{\"name\":\"news\"}"), *nameless = parse("{\"file\":\"x.yml\"}");
    json_t *s1 = parse("{\"by_status\":{\"delivered\":-1}}");
    json_t *s2 = parse("{\"by_status\":{},\"by_relay\":{\"r\":{\"failed\":\"two\"}}}");
    json_t *s3 = parse("{\"attempts\":1.5}");
    struct metrics m;
    struct blast_error err;

    metrics_init(&m);
    blast_error_clear(&err);
    cr_assert_eq(metrics_from_report("r.json", nameless, NULL, &m, &err), BLAST_EINVAL);
    metrics_free(&m);
    blast_error_clear(&err);
    cr_assert_eq(metrics_from_report("r.json", c, s1, &m, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "delivered"), "%s", err.text);
    cr_assert_str_eq(err.source, "r.json");
    metrics_free(&m);
    blast_error_clear(&err);
    cr_assert_eq(metrics_from_report("r.json", c, s2, &m, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "failed"), "%s", err.text);
    metrics_free(&m);
    blast_error_clear(&err);
    cr_assert_eq(metrics_from_report("r.json", c, s3, &m, &err), BLAST_EINVAL);
    metrics_free(&m);
    json_decref(c);
    json_decref(nameless);
    json_decref(s1);
    json_decref(s2);
    json_decref(s3);
}

/* ---- the file ------------------------------------------------------------------------ */

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    struct buf b = BUF_INIT;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(buf_read_file(&b, path, &err), 0, "%s", err.text);
    return buf_steal(&b);
}

static void write_ok(const char *path, const struct metrics *m)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(metrics_write_file(path, m, &err), 0, "%s", err.text);
}

Test(metrics, atomic_write_leaves_only_the_file_readable_by_all, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[128];
    struct metrics m;
    struct stat st;
    char *text;

    snprintf(path, sizeof path, "%s/blast-news.prom", dir);
    fixed(&m, "main \"eu\"");
    umask(077); /* a cron job's umask does not make the file unreadable to node_exporter */
    write_ok(path, &m);
    write_ok(path, &m); /* and replacing it */
    cr_assert_eq(entries(dir), 1, "no temporary file left beside it");
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0644);
    text = slurp(path);
    cr_assert_str_eq(text, golden);
    free(text);
    metrics_free(&m);
}

Test(metrics, a_success_sets_the_last_success_to_the_run_end, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[128];
    struct metrics m;
    char *text;

    snprintf(path, sizeof path, "%s/m.prom", dir);
    fixed(&m, "main");
    m.has_last_success = false;
    m.run_succeeded = true;
    m.run_end = 1764000099.75;
    write_ok(path, &m);
    text = slurp(path);
    cr_assert_not_null(strstr(text, "\nblast_last_success_timestamp_seconds{campaign=\"news\"} "
                                    "1764000099.75\n"),
                       "%s", text);
    free(text);
    metrics_free(&m);
}

Test(metrics, a_failed_run_carries_the_last_success_over, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[128], other[160];
    struct metrics m;
    double t = 0;
    char *text;

    snprintf(path, sizeof path, "%s/m.prom", dir);
    fixed(&m, "main");
    m.has_last_success = false;
    m.run_succeeded = true;
    m.run_end = 1764000012.5;
    write_ok(path, &m); /* a run that went through its list */

    m.run_succeeded = false; /* then one that did not (exit 4) */
    m.exit_code = 4;
    m.run_end = 1764003600;
    cr_assert_eq(metrics_read_last_success(path, &m, &t), 1);
    cr_assert_float_eq(t, 1764000012.5, 1e-6);
    write_ok(path, &m);
    text = slurp(path);
    cr_assert_not_null(strstr(text, "blast_run_exit_code{campaign=\"news\"} 4\n"));
    cr_assert_not_null(strstr(text, "blast_last_success_timestamp_seconds{campaign=\"news\"} "
                                    "1764000012.5\n"),
                       "%s", text);
    free(text);
    write_ok(path, &m); /* and one more: still the same */
    text = slurp(path);
    cr_assert_not_null(strstr(text, "{campaign=\"news\"} 1764000012.5\n"));
    free(text);

    /* another campaign's file, or another shard's sample, is not ours */
    snprintf(other, sizeof other, "%s/other.prom", dir);
    scratch_write_file(dir, "other.prom",
                       "# TYPE blast_last_success_timestamp_seconds gauge\n"
                       "blast_last_success_timestamp_seconds{campaign=\"old\"} 1700000000\n"
                       "blast_last_success_timestamp_seconds{campaign=\"news\",shard=\"0/2\"} "
                       "1700000001\n",
                       other, sizeof other);
    cr_assert_eq(metrics_read_last_success(other, &m, &t), 0);
    write_ok(other, &m);
    text = slurp(other);
    cr_assert_null(strstr(text, "blast_last_success"), "%s", text);
    free(text);
    m.shard_index = 0;
    m.shard_count = 2;
    scratch_write_file(dir, "other.prom",
                       "blast_last_success_timestamp_seconds{campaign=\"news\",shard=\"0/2\"} "
                       "1700000001\n",
                       other, sizeof other);
    cr_assert_eq(metrics_read_last_success(other, &m, &t), 1);
    cr_assert_float_eq(t, 1700000001.0, 1e-6);
    metrics_free(&m);
}

Test(metrics, no_file_no_fifo_no_garbage_means_no_last_success, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[160];
    struct metrics m;
    double t = 0;

    fixed(&m, "main");
    snprintf(path, sizeof path, "%s/missing.prom", dir);
    cr_assert_eq(metrics_read_last_success(path, &m, &t), 0);
    snprintf(path, sizeof path, "%s/fifo.prom", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(metrics_read_last_success(path, &m, &t), 0, "a FIFO is not read (nor waited on)");
    scratch_write_file(dir, "bad.prom",
                       "blast_last_success_timestamp_seconds{campaign=\"news\"} soon\n"
                       "blast_last_success_timestamp_seconds{campaign=\"news\"} NaN\n"
                       "blast_last_success_timestamp_seconds{campaign=\"news\"} -5\n"
                       "blast_last_success_timestamp_seconds{campaign=\"news\"} 12 34\n",
                       path, sizeof path);
    cr_assert_eq(metrics_read_last_success(path, &m, &t), 0);
    metrics_free(&m);
}

Test(metrics, a_failed_write_keeps_the_old_file, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[128], *before, *after;
    struct metrics m;
    struct blast_error err;
    struct rlimit rl = {200, 200};

    snprintf(path, sizeof path, "%s/m.prom", dir);
    fixed(&m, "main");
    write_ok(path, &m);
    before = slurp(path);
    /* files may not grow past 200 bytes: the new file's write fails (EFBIG) */
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    m.exit_code = 3;
    blast_error_clear(&err);
    cr_assert_eq(metrics_write_file(path, &m, &err), BLAST_EIO);
    cr_assert_str_eq(err.source, path);
    after = slurp(path);
    cr_assert_str_eq(after, before, "the old file is whole");
    cr_assert_eq(entries(dir), 1, "the temporary file is removed");
    free(before);
    free(after);

    /* a directory that is not there: an error naming the path, nothing written */
    snprintf(path, sizeof path, "%s/no/such/dir/m.prom", dir);
    blast_error_clear(&err);
    cr_assert_eq(metrics_write_file(path, &m, &err), BLAST_EIO);
    cr_assert_str_eq(err.source, path);
    metrics_free(&m);
}
