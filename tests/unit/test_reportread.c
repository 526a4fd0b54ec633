/*
 * test_reportread - reading a report back, one recipient at a time: the writer's
 * own layout, one line, pretty-printed, strings full of brackets and escaped
 * quotes, empty recipients; and every way a file is not a report, each named at
 * its line and column: truncated at any byte, garbage, another schema_version,
 * invalid JSON inside a recipient, brackets that do not match. And the same
 * reports gzip'ed: read alike, places in the text, truncated or corrupt refused.
 */
#include "../../core/outcome.h"
#include "../../core/report.h"
#include "../../core/reportread.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* What the callback saw. */
struct seen {
    size_t n;
    size_t rows[8];
    char emails[8][64];
    struct reportread_place at[8];
    size_t stop_at; /* return BLAST_EINVAL at this index + 1 (0: never) */
};

static int collect(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                   struct blast_error *err)
{
    struct seen *s = arg;

    cr_assert_eq(index, s->n);
    if (s->n < 8) {
        s->rows[s->n] = (size_t)json_integer_value(json_object_get(entry, "row"));
        snprintf(s->emails[s->n], sizeof s->emails[s->n], "%s",
                 json_string_value(json_object_get(entry, "email")) != NULL
                     ? json_string_value(json_object_get(entry, "email"))
                     : "");
        s->at[s->n] = *at;
    }
    s->n++;
    if (s->stop_at > 0 && s->n == s->stop_at)
        return blast_error_set(err, BLAST_EINVAL, at->source, at->line, at->column,
                               "stopped by the callback");
    return 0;
}

/* Read text as a report named "mem.json". */
static int read_text(const char *text, struct seen *s, struct reportread_result *out,
                     struct blast_error *err)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int rc;

    cr_assert_not_null(f, "fmemopen: %s", strerror(errno));
    blast_error_clear(err);
    rc = reportread_stream(f, "mem.json", collect, s, out, err);
    fclose(f);
    return rc;
}

/* Expect text to be refused with code at line:column, the message containing part. */
static void refused(const char *text, int code, int line, int column, const char *part)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    int rc;

    memset(&s, 0, sizeof s);
    rc = read_text(text, &s, &out, &err);
    cr_assert_eq(rc, code, "rc %d (%s), wanted %d for: %s", rc, err.text, code, text);
    cr_assert_eq(err.code, code);
    cr_assert_str_eq(err.source, "mem.json");
    cr_assert_eq(err.line, line, "line %d, wanted %d: %s", err.line, line, err.text);
    cr_assert_eq(err.column, column, "column %d, wanted %d: %s", err.column, column, err.text);
    cr_assert_not_null(strstr(err.text, part), "'%s' does not say '%s'", err.text, part);
    cr_assert_null(out.campaign);
    cr_assert_null(out.summary);
}

static const char one_line[] =
    "{\"schema_version\":1,\"campaign\":{\"name\":\"nov\",\"file\":\"c.yml\"},"
    "\"recipients\":[{\"email\":\"a@x.example\",\"row\":1,\"status\":\"delivered\"},"
    "{\"email\":\"b@x.example\",\"row\":2,\"status\":\"failed\"}],"
    "\"summary\":{\"total\":2}}";

static void check_one_line_document(int rc, const struct seen *s,
                                    const struct reportread_result *out,
                                    const struct blast_error *err)
{
    cr_assert_eq(rc, 0, "%s:%d:%d: %s", err->source, err->line, err->column, err->text);
    cr_assert_eq(s->n, 2);
    cr_assert_eq(out->recipients, 2);
    cr_assert_eq(out->schema_version, 1);
    cr_assert_eq(s->rows[0], 1);
    cr_assert_eq(s->rows[1], 2);
    cr_assert_str_eq(s->emails[0], "a@x.example");
    cr_assert_str_eq(s->emails[1], "b@x.example");
    cr_assert_str_eq(json_string_value(json_object_get(out->campaign, "name")), "nov");
    cr_assert_eq(json_integer_value(json_object_get(out->summary, "total")), 2);
}

Test(reportread, one_line_document)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    int rc;

    memset(&s, 0, sizeof s);
    rc = read_text(one_line, &s, &out, &err);
    check_one_line_document(rc, &s, &out, &err);
    cr_assert_eq(s.at[0].line, 1);
    cr_assert_eq(s.at[0].column, (int)(strchr(one_line, '[') - one_line) + 2);
    cr_assert_str_eq(s.at[0].source, "mem.json");
    reportread_result_free(&out);
}

Test(reportread, pretty_printed_document)
{
    json_t *doc = json_loads(one_line, 0, NULL);
    char *text;
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    int rc;

    cr_assert_not_null(doc);
    text = json_dumps(doc, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    cr_assert_not_null(text);
    memset(&s, 0, sizeof s);
    rc = read_text(text, &s, &out, &err);
    check_one_line_document(rc, &s, &out, &err);
    /* "recipients": [ on line 7, its first object on line 8, indented by 8 */
    cr_assert_eq(s.at[0].line, 8, "%d\n%s", s.at[0].line, text);
    cr_assert_eq(s.at[0].column, 9);
    reportread_result_free(&out);
    free(text);
    json_decref(doc);
}

Test(reportread, whitespace_everywhere_and_crlf)
{
    static const char text[] =
        "\r\n\t {  \"schema_version\" :\r\n 1 ,\"recipients\"\n:\n[\n\n  {\"row\" : 7 , "
        "\"email\":\"c@x\"}\r\n ,\t{\"row\":8}\n ]\n,\"campaign\":{}}\n\n";
    struct seen s;
    struct reportread_result out;
    struct blast_error err;

    memset(&s, 0, sizeof s);
    cr_assert_eq(read_text(text, &s, &out, &err), 0, "%d:%d: %s", err.line, err.column, err.text);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.rows[0], 7);
    cr_assert_eq(s.rows[1], 8);
    cr_assert_eq(s.at[0].line, 7);
    cr_assert_eq(s.at[0].column, 3);
    cr_assert_not_null(out.campaign);
    cr_assert_null(out.summary, "a report without a summary still reads");
    reportread_result_free(&out);
}

Test(reportread, the_writers_own_report_reads_back)
{
    char path[] = "/tmp/blast-unit-reportread-XXXXXX";
    struct report_info info = {"nov", "c.yml", false, NULL, NULL, {0, 0}};
    struct report *r;
    struct outcome e;
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    int fd = mkstemp(path), i;

    cr_assert_geq(fd, 0);
    close(fd);
    blast_error_clear(&err);
    cr_assert_eq(report_open(path, &info, &r, &err), 0, "%s", err.text);
    for (i = 1; i <= 5; i++) {
        char email[32];
        outcome_init(&e);
        snprintf(email, sizeof email, "u%d@x.example", i);
        e.email = email;
        e.row = (size_t)i;
        e.status = i == 3 ? OUTCOME_FAILED : OUTCOME_DELIVERED;
        e.code = i == 3 ? 550 : 250;
        snprintf(e.enhanced, sizeof e.enhanced, "%s", i == 3 ? "5.1.1" : "2.0.0");
        e.reply = i == 3 ? "<u3@x.example>: Recipient address rejected: {\"]\"}" : "Ok";
        cr_assert_eq(report_add(r, &e, &err), 0, "%s", err.text);
    }
    cr_assert_eq(report_commit(r, &err), 0, "%s", err.text);
    memset(&s, 0, sizeof s);
    cr_assert_eq(reportread_file(path, collect, &s, &out, &err), 0, "%s:%d:%d: %s", err.source,
                 err.line, err.column, err.text);
    unlink(path);
    cr_assert_eq(s.n, 5);
    cr_assert_eq(s.rows[4], 5);
    cr_assert_str_eq(s.emails[2], "u3@x.example");
    cr_assert_str_eq(s.at[0].source, path);
    cr_assert_eq(s.at[0].line, 4, "one recipient a line after the head");
    cr_assert_eq(s.at[1].line, 5);
    cr_assert_eq(json_integer_value(json_object_get(out.summary, "total")), 5);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(out.summary, "by_status"), "failed")),
        1);
    reportread_result_free(&out);
}

Test(reportread, strings_with_brackets_braces_and_escaped_quotes)
{
    static const char text[] =
        "{\"schema_version\":1,\"x-note\":\"]}[{\\\"\",\"x-more\":[{\"a\":\"}\"},\"\\\\\"],"
        "\"recipients\":[{\"email\":\"a@x\",\"row\":1,\"reply\":\"550 ]} {[ \\\"quoted\\\" "
        "\\\\\"},{\"email\":\"b@x\",\"row\":2,\"reply\":\"\\\\\\\"]\"}],"
        "\"summary\":{\"k}\":\"v]\"}}";
    struct seen s;
    struct reportread_result out;
    struct blast_error err;

    memset(&s, 0, sizeof s);
    cr_assert_eq(read_text(text, &s, &out, &err), 0, "%d:%d: %s", err.line, err.column, err.text);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.emails[1], "b@x");
    cr_assert_str_eq(json_string_value(json_object_get(out.summary, "k}")), "v]");
    reportread_result_free(&out);
}

Test(reportread, empty_recipients)
{
    static const char *const texts[] = {
        "{\"schema_version\":1,\"recipients\":[]}",
        "{\"schema_version\": 1,\n\"recipients\": [\n\n],\n\"summary\": {\"total\": 0}\n}\n",
    };
    size_t i;

    for (i = 0; i < 2; i++) {
        struct seen s;
        struct reportread_result out;
        struct blast_error err;
        memset(&s, 0, sizeof s);
        cr_assert_eq(read_text(texts[i], &s, &out, &err), 0, "%s", err.text);
        cr_assert_eq(s.n, 0);
        cr_assert_eq(out.recipients, 0);
        reportread_result_free(&out);
    }
}

Test(reportread, truncated_at_every_byte_is_an_error_with_a_place)
{
    size_t len = strlen(one_line), cut;
    char *text = malloc(len + 1);

    cr_assert_not_null(text);
    for (cut = 0; cut < len; cut++) {
        struct seen s;
        struct reportread_result out;
        struct blast_error err;
        int rc;
        memcpy(text, one_line, cut);
        text[cut] = '\0';
        memset(&s, 0, sizeof s);
        rc = read_text(text, &s, &out, &err);
        cr_assert_lt(rc, 0, "cut at %zu read as a report", cut);
        cr_assert(rc == BLAST_ESYNTAX, "cut at %zu: %d %s", cut, rc, err.text);
        cr_assert_eq(err.line, 1, "cut at %zu: no line: %s", cut, err.text);
        cr_assert_gt(err.column, 0, "cut at %zu: no column: %s", cut, err.text);
        cr_assert_null(out.summary);
    }
    free(text);
}

Test(reportread, truncated_inside_a_recipient_names_it_and_the_end)
{
    static const char text[] = "{\"schema_version\": 1,\n"
                               "\"recipients\": [\n"
                               "{\"email\":\"a@x\",\"row\":1},\n"
                               "{\"email\":\"b@x\",\"ro";

    refused(text, BLAST_ESYNTAX, 4, 19, "ends inside recipient 2 (is the report truncated?)");
    refused("{\"schema_version\": 1,\n\"recipients\": [\n{\"row\":1}\n", BLAST_ESYNTAX, 4, 1,
            "ends inside the \"recipients\" array");
}

Test(reportread, garbage)
{
    refused("", BLAST_ESYNTAX, 1, 1, "empty");
    refused("  \n\n", BLAST_ESYNTAX, 3, 1, "empty");
    refused("hello", BLAST_ESYNTAX, 1, 1, "not a blast report: expected '{', not 'h'");
    refused("\n  [1, 2]", BLAST_ESYNTAX, 2, 3, "expected '{', not '['");
    refused("\x01\x02", BLAST_ESYNTAX, 1, 1, "byte 0x01");
    refused("{\"schema_version\":1,\"recipients\":[]}x", BLAST_ESYNTAX, 1, 37,
            "unexpected text after the end");
    refused("{schema_version:1}", BLAST_ESYNTAX, 1, 2, "expected a key in quotes");
    refused("{\"schema_version\" 1}", BLAST_ESYNTAX, 1, 19, "expected ':' after the key");
    refused("{\"schema_version\":1 \"recipients\":[]}", BLAST_ESYNTAX, 1, 21,
            "expected ',' or '}'");
    refused("{\"schema_version\":1,\"recipients\":[{\"row\":1} {\"row\":2}]}", BLAST_ESYNTAX, 1, 45,
            "expected ',' or ']' after recipient 1");
    refused("{\"schema_version\":1,\"recipients\":[{\"row\":[1}]}", BLAST_ESYNTAX, 1, 44,
            "'}' where ']' was to be closed, in recipient 1");
    refused("{\"schema_version\":1,\"recipients\":[,]}", BLAST_ESYNTAX, 1, 35,
            "expected the start of recipient 1, not ','");
}

Test(reportread, unknown_keys_are_skipped_but_must_balance)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;

    memset(&s, 0, sizeof s);
    cr_assert_eq(read_text("{\"schema_version\":1,\"later\":{\"a\":[1,{\"b\":\"]\"}]},"
                           "\"recipients\":[{\"row\":1}],\"also\":-1.5e3}",
                           &s, &out, &err),
                 0, "%s", err.text);
    cr_assert_eq(s.n, 1);
    reportread_result_free(&out);
    refused("{\"schema_version\":1,\"later\":[1,2}", BLAST_ESYNTAX, 1, 33,
            "'}' where ']' was to be closed, in the value of \"later\"");
    refused("{\"schema_version\":1,\"later\":[1,2", BLAST_ESYNTAX, 1, 33,
            "the file ends inside the value of \"later\"");
}

Test(reportread, not_a_report)
{
    refused("{}", BLAST_EINVAL, 1, 1, "no \"schema_version\"");
    refused("{\"schema_version\":1}", BLAST_EINVAL, 1, 1, "no \"recipients\" array");
    refused("{\"schema_version\":1,\"recipients\":{}}", BLAST_EINVAL, 1, 34,
            "\"recipients\" is not an array");
    refused("{\"recipients\":[],\"schema_version\":1}", BLAST_EINVAL, 1, 2,
            "\"recipients\" comes before \"schema_version\"");
    refused("{\"schema_version\":1,\"recipients\":[1]}", BLAST_EINVAL, 1, 35,
            "recipient 1 is not a JSON object");
    refused("{\"schema_version\":1,\"summary\":[],\"recipients\":[]}", BLAST_EINVAL, 1, 31,
            "\"summary\" is not a JSON object");
    refused("{\"schema_version\":1,\"schema_version\":1,\"recipients\":[]}", BLAST_EINVAL, 1, 21,
            "\"schema_version\" appears twice");
}

Test(reportread, wrong_schema_version)
{
    refused("{\n  \"schema_version\": 2,\n\"recipients\": []}", BLAST_EINVAL, 2, 21,
            "unsupported schema_version 2: this blast reads version 1");
    refused("{\"schema_version\":\"1\",\"recipients\":[]}", BLAST_EINVAL, 1, 19,
            "\"schema_version\" is not a whole number");
    refused("{\"schema_version\":1.0,\"recipients\":[]}", BLAST_EINVAL, 1, 19,
            "not a whole number");
}

Test(reportread, invalid_json_inside_a_recipient_is_placed_in_the_file)
{
    /* jansson's complaint, mapped from its place in the value to the file's */
    refused("{\"schema_version\": 1,\n\"recipients\": [\n{\"email\":\"a@x\",\"row\":1},\n"
            "{\"email\":\"b@x\",\"row\":2x}\n]}",
            BLAST_ESYNTAX, 4, 23, "invalid JSON in recipient 2");
    /* columns count characters, not bytes, as jansson does */
    refused("{\"schema_version\": 1,\n\"recipients\": [\n{\"name\":\"Zoë Ünal\", \"row\":tru}]}",
            BLAST_ESYNTAX, 3, 29, "invalid JSON in recipient 1");
    refused("{\"schema_version\":1,\"recipients\":[{\"a\":\"tab\there\"}]}", BLAST_ESYNTAX, 1, 43,
            "invalid JSON in recipient 1");
}

Test(reportread, the_callback_can_stop_the_reading)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;

    memset(&s, 0, sizeof s);
    s.stop_at = 1;
    cr_assert_eq(read_text(one_line, &s, &out, &err), BLAST_EINVAL);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(err.text, "stopped by the callback");
    cr_assert_eq(err.line, 1);
    cr_assert_null(out.campaign);
}

Test(reportread, a_missing_file_is_named)
{
    struct reportread_result out;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(reportread_file("/nonexistent/r.json", NULL, NULL, &out, &err), BLAST_EIO);
    cr_assert_str_eq(err.source, "/nonexistent/r.json");
    cr_assert_not_null(strstr(err.text, "cannot open the report"));
}

/* Many recipients through a pipe-like stream: every one arrives, in order, in small memory. */
Test(reportread, many_recipients_stream_through)
{
    char path[] = "/tmp/blast-unit-reportread-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    size_t i, n = 100000;

    cr_assert_geq(fd, 0);
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs("{\"schema_version\":1,\"recipients\":[", f);
    for (i = 1; i <= n; i++)
        fprintf(f, "%s{\"email\":\"user%zu@example.com\",\"row\":%zu,\"reply\":\"%s\"}",
                i > 1 ? "," : "", i, i, i % 7 == 0 ? "a \\\"quoted\\\" ]}" : "ok");
    fputs("],\"summary\":{}}", f);
    cr_assert_eq(fclose(f), 0);
    memset(&s, 0, sizeof s);
    blast_error_clear(&err);
    cr_assert_eq(reportread_file(path, collect, &s, &out, &err), 0, "%s", err.text);
    unlink(path);
    cr_assert_eq(s.n, n);
    cr_assert_eq(out.recipients, n);
    reportread_result_free(&out);
}

Test(reportread, a_huge_recipient_is_refused)
{
    size_t n = REPORTREAD_MAX_ENTRY + 100;
    const char *head = "{\"schema_version\":1,\"recipients\":[{\"reply\":\"";
    char *text = malloc(strlen(head) + n + 16);

    cr_assert_not_null(text);
    memcpy(text, head, strlen(head));
    memset(text + strlen(head), 'x', n);
    memcpy(text + strlen(head) + n, "\"}]}", 5);
    refused(text, BLAST_EINVAL, 1, 35, "recipient 1 is larger than");
    free(text);
}

/* The pull form: the campaign is known at open, recipients come one per call. */
Test(reportread, pull_takes_one_recipient_at_a_time)
{
    const char *text = "{\"schema_version\": 1,\n\"campaign\": {\"name\":\"n\"},\n"
                       "\"recipients\": [\n{\"row\":1,\"email\":\"a@x\"},\n"
                       "{\"row\":3,\"email\":\"b@x\"}\n],\n\"summary\": {\"total\": 2}\n}\n";
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    struct reportread *rd = NULL;
    struct reportread_place at;
    struct reportread_result res;
    struct blast_error err;
    json_t *e = NULL;

    blast_error_clear(&err);
    cr_assert_eq(reportread_open_stream(f, "mem.json", &rd, &err), 0, "%s", err.text);
    cr_assert_str_eq(json_string_value(json_object_get(reportread_campaign(rd), "name")), "n");
    cr_assert_str_eq(reportread_name(rd), "mem.json");
    cr_assert_eq(reportread_next(rd, &e, &at, &err), 1);
    cr_assert_eq(json_integer_value(json_object_get(e, "row")), 1);
    cr_assert_eq(at.line, 4);
    cr_assert_eq(at.column, 1);
    json_decref(e);
    cr_assert_eq(reportread_next(rd, &e, &at, &err), 1);
    cr_assert_eq(json_integer_value(json_object_get(e, "row")), 3);
    cr_assert_eq(at.line, 5);
    json_decref(e);
    cr_assert_eq(reportread_next(rd, &e, &at, &err), 0, "%s", err.text);
    cr_assert_null(e);
    cr_assert_eq(reportread_next(rd, &e, &at, &err), 0, "the end stays the end");
    cr_assert_eq(reportread_finish(rd, &res, &err), 0, "%s", err.text);
    cr_assert_eq(res.recipients, 2);
    cr_assert_eq(json_integer_value(json_object_get(res.summary, "total")), 2);
    reportread_result_free(&res);
    reportread_close(rd);
    fclose(f);
}

Test(reportread, pull_finish_skips_the_rest_and_an_error_sticks)
{
    const char *text = "{\"schema_version\": 1, \"campaign\": {}, \"recipients\": "
                       "[{\"row\":1}, {\"row\":2}, {\"row\":3}], \"summary\": {}}";
    const char *broken = "{\"schema_version\": 1, \"recipients\": [{\"row\":1}, {\"row\":2] }";
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    struct reportread *rd = NULL;
    struct reportread_place at;
    struct reportread_result res;
    struct blast_error err;
    json_t *e = NULL;

    blast_error_clear(&err);
    cr_assert_eq(reportread_open_stream(f, "mem.json", &rd, &err), 0, "%s", err.text);
    cr_assert_eq(reportread_next(rd, &e, &at, &err), 1);
    json_decref(e);
    cr_assert_eq(reportread_finish(rd, &res, &err), 0, "%s", err.text);
    cr_assert_eq(res.recipients, 3, "the ones not taken are read (and checked) too");
    reportread_result_free(&res);
    reportread_close(rd);
    fclose(f);

    f = fmemopen((void *)broken, strlen(broken), "r");
    cr_assert_eq(reportread_open_stream(f, "mem.json", &rd, &err), 0, "%s", err.text);
    cr_assert_null(reportread_campaign(rd), "no campaign in this one");
    cr_assert_eq(reportread_next(rd, &e, &at, &err), 1);
    json_decref(e);
    cr_assert_eq(reportread_next(rd, &e, &at, &err), BLAST_ESYNTAX);
    cr_assert_null(e);
    cr_assert_eq(err.column, 57, "%d: %s", err.column, err.text);
    blast_error_clear(&err);
    cr_assert_eq(reportread_next(rd, &e, &at, &err), BLAST_ESYNTAX, "the error sticks");
    reportread_close(rd);
    fclose(f);
}

Test(reportread, pull_an_empty_file_fails_at_open)
{
    char path[] = "/tmp/blast-rr-XXXXXX";
    int fd = mkstemp(path);
    struct reportread *rd = (struct reportread *)1;
    struct blast_error err;

    cr_assert_geq(fd, 0);
    close(fd);
    blast_error_clear(&err);
    cr_assert_eq(reportread_open(path, 4096, &rd, &err), BLAST_ESYNTAX);
    cr_assert_null(rd);
    cr_assert_not_null(strstr(err.text, "empty"), "%s", err.text);
    unlink(path);
}

/* The campaign, written before the recipients, is in the result while they stream by. */
static int sees_campaign(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                         struct blast_error *err)
{
    const struct reportread_result *r = arg;

    (void)entry;
    (void)index;
    (void)at;
    (void)err;
    cr_assert_not_null(r->campaign, "the campaign is known during the recipients");
    cr_assert_str_eq(json_string_value(json_object_get(r->campaign, "name")), "n");
    return 0;
}

Test(reportread, the_campaign_is_known_while_recipients_stream)
{
    const char *text = "{\"schema_version\": 1, \"campaign\": {\"name\":\"n\"}, "
                       "\"recipients\": [{\"row\":1}], \"summary\": {}}";
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    struct reportread_result res;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(reportread_stream(f, "mem.json", sees_campaign, &res, &res, &err), 0, "%s",
                 err.text);
    cr_assert_not_null(res.campaign);
    cr_assert_not_null(res.summary);
    reportread_result_free(&res);
    fclose(f);
}

/* ---- the outcome forms: each recipient straight into a struct outcome ------------------- */

/* What a json_t callback gets through reportread_outcome(), or the outcome form, as text. */
struct outcomes {
    struct buf text; /* each outcome as outcome_format_json() writes it, one a line */
    struct buf places;
    size_t n;
};

static void note(struct outcomes *s, const struct outcome *o, size_t index,
                 const struct reportread_place *at)
{
    cr_assert_eq(index, s->n);
    cr_assert_eq(outcome_format_json(o, false, &s->text), 0);
    cr_assert_eq(buf_putc(&s->text, '\n'), 0);
    cr_assert_eq(buf_printf(&s->places, "%s:%d:%d\n", at->source, at->line, at->column), 0);
    s->n++;
}

static int via_json(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                    struct blast_error *err)
{
    struct outcome o;
    int rc = reportread_outcome(entry, index, at, &o, err);

    if (rc < 0)
        return rc;
    note(arg, &o, index, at);
    outcome_free(&o);
    return 0;
}

static int via_tape(void *arg, struct outcome *o, size_t index, const struct reportread_place *at,
                    struct blast_error *err)
{
    (void)err;
    note(arg, o, index, at);
    return 0;
}

/*
 * text read both ways, through a stream: the same outcomes at the same places, or
 * the same error (code, place and words). Returns the code.
 */
static int both_ways(const char *text, size_t len)
{
    struct outcomes a, b;
    struct reportread_result ra, rb;
    struct blast_error ea, eb;
    FILE *f;
    int rc_a, rc_b;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    blast_error_clear(&ea);
    blast_error_clear(&eb);
    f = fmemopen((void *)text, len, "r");
    cr_assert_not_null(f);
    rc_a = reportread_stream(f, "mem.json", via_json, &a, &ra, &ea);
    fclose(f);
    f = fmemopen((void *)text, len, "r");
    cr_assert_not_null(f);
    rc_b = reportread_stream_outcomes(f, "mem.json", via_tape, &b, &rb, &eb);
    fclose(f);
    cr_assert_eq(rc_b, rc_a, "%d (%s), through jansson %d (%s): %.*s", rc_b, eb.text, rc_a, ea.text,
                 (int)len, text);
    cr_assert_eq(a.n, b.n, "%.*s", (int)len, text);
    if (rc_a < 0) {
        cr_assert_eq(eb.code, ea.code);
        cr_assert_str_eq(eb.text, ea.text, "%.*s", (int)len, text);
        cr_assert_str_eq(eb.source, ea.source);
        cr_assert_eq(eb.line, ea.line, "%s: line %d, through jansson %d", eb.text, eb.line,
                     ea.line);
        cr_assert_eq(eb.column, ea.column, "%s: column %d, through jansson %d", eb.text, eb.column,
                     ea.column);
    } else {
        cr_assert_eq(rb.recipients, ra.recipients);
        cr_assert_eq(rb.schema_version, ra.schema_version);
        cr_assert(json_equal(rb.campaign, ra.campaign) || (!rb.campaign && !ra.campaign));
        cr_assert(json_equal(rb.summary, ra.summary) || (!rb.summary && !ra.summary));
        reportread_result_free(&ra);
        reportread_result_free(&rb);
    }
    if (a.n > 0) {
        cr_assert_str_eq(b.text.data, a.text.data);
        cr_assert_str_eq(b.places.data, a.places.data);
    }
    buf_free(&a.text);
    buf_free(&a.places);
    buf_free(&b.text);
    buf_free(&b.places);
    return rc_a;
}

static int both(const char *text)
{
    return both_ways(text, strlen(text));
}

Test(reportread, outcomes_read_as_through_jansson)
{
    cr_assert_eq(both(one_line), 0);
    cr_assert_eq(both("{\"schema_version\":1,\"recipients\":[]}"), 0);
    cr_assert_eq(both("\r\n\t {  \"schema_version\" :\r\n 1 ,\"recipients\"\n:\n[\n\n  "
                      "{\"row\" : 7 , \"email\":\"c@x\", \"status\":\"failed\"}\r\n ,\t{\"row\":8, "
                      "\"status\":\"delivered\",\"history\":[{\"status\":\"delivered\",\"time\":"
                      "\"2026-12-05T10:51:42.948Z\",\"port\":25}]}\n ]\n,\"campaign\":{}}\n\n"),
                 0);
    /* a NUL byte after a number, which jansson skips */
    cr_assert_eq(
        both_ways("{\"schema_version\":1,\"recipients\":[{\"row\":1\0,\"status\":\"x\"}]}", 59), 0);
    cr_assert_eq(both("{\"schema_version\":1,\"recipients\":[{\"status\":\"x\",\"reply\":"
                      "\"\\u00e9\\ud83d\\ude00 ]} {[ \\\"q\\\"\",\"email\":\"a\",\"email\":\"b\"}],"
                      "\"summary\":{\"k}\":\"v]\"}}"),
                 0);
}

/* Every fault, in both forms: the same code, place and words. */
Test(reportread, outcome_faults_are_those_through_jansson)
{
    static const char *const texts[] = {
        "",
        "hello",
        "{\"schema_version\":1,\"recipients\":[{\"row\":1} {\"row\":2}]}",
        "{\"schema_version\":1,\"recipients\":[{\"row\":[1}]}",
        "{\"schema_version\":1,\"recipients\":[,]}",
        "{\"schema_version\":1,\"recipients\":[1]}",
        "{\"schema_version\":1,\"recipients\":[\"a\"]}",
        "{\"schema_version\": 1,\n\"recipients\": [\n{\"email\":\"a@x\",\"row\":1,\"status\":"
        "\"failed\"},\n{\"email\":\"b@x\",\"row\":2x}\n]}",
        "{\"schema_version\": 1,\n\"recipients\": [\n{\"name\":\"Zo\xc3\xab \xc3\x9cnal\", "
        "\"row\":tru}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":\"tab\there\"}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":\"\\ud800\"}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":\"\xff\"}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":01}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":1,}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\" 1}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":99999999999999999999}]}",
        /* what jansson's lexer finds in a token is named before the token's misplacement */
        "{\"schema_version\":1,\"recipients\":[{\"email\"\x87:1}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\" \"b\x01\"}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":\"\\ud800\x01\"}]}",
        "{\"schema_version\":1,\"recipients\":[{\"a\":\x01}]}",
        /* the outcome's own faults, named as reportread_outcome() names them */
        "{\"schema_version\":1,\"recipients\":[{\"status\":\"failed\"},\n  {\"status\":7}]}",
        "{\"schema_version\":1,\"recipients\":[{\"status\":\"failed\",\"history\":[{\"status\":"
        "\"failed\",\"port\":70000}]}]}",
        "{\"schema_version\":1,\"recipients\":[{\"status\":\"failed\",\"code\":550.0}]}",
        /* the last recipient's fault comes after what follows it is checked, as through jansson */
        "{\"schema_version\":1,\"recipients\":[{\"status\":7}],\"summary\":[]}",
        "{\"schema_version\":1,\"recipients\":[{\"status\":7}] x",
        "{\"schema_version\":1,\"recipients\":[{\"status\":7} {\"status\":8}]}",
    };
    size_t i;

    for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
        cr_assert_lt(both(texts[i]), 0, "%s", texts[i]);
}

Test(reportread, outcome_forms_truncated_at_every_byte)
{
    static const char text[] =
        "{\"schema_version\":1,\"campaign\":{\"name\":\"nov\"},\"recipients\":[{\"email\":"
        "\"a@x.example\",\"row\":1,\"status\":\"delivered\",\"history\":[{\"status\":"
        "\"delivered\",\"reply\":\"Ok \\\"]}\\\"\"}]},{\"email\":\"b@x\",\"row\":2,\"status\":"
        "\"failed\"}],\"summary\":{\"total\":2}}";
    size_t cut;

    for (cut = 0; cut < sizeof text - 1; cut++)
        cr_assert_eq(both_ways(text, cut), BLAST_ESYNTAX, "cut at %zu", cut);
    cr_assert_eq(both_ways(text, sizeof text - 1), 0);
}

/* A report larger than the chunk, values across its edges: both forms, and the pull one. */
Test(reportread, outcome_forms_across_chunks)
{
    char path[] = "/tmp/blast-unit-reportread-XXXXXX";
    int fd = mkstemp(path);
    struct buf all = BUF_INIT;
    struct reportread *rd;
    struct reportread_place at;
    struct outcome o;
    struct blast_error err;
    FILE *f;
    size_t i, n = 3000, got = 0;
    int rc;

    cr_assert_geq(fd, 0);
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs("{\"schema_version\":1,\n\"recipients\":[", f);
    for (i = 1; i <= n; i++) {
        fprintf(f, "%s\n{\"email\":\"user%zu@example.com\",\"row\":%zu,\"status\":\"%s\",",
                i > 1 ? "," : "", i, i, i % 3 ? "delivered" : "deferred");
        /* now and then a reply longer than a 4 KiB chunk, with escapes in it */
        fputs("\"reply\":\"", f);
        if (i % 97 == 0)
            for (rc = 0; rc < 600; rc++)
                fputs("ab\\\"cd\\u00e9\\\\", f);
        fputs("ok\",\"history\":[{\"status\":\"deferred\",\"time\":\"2026-12-05T10:51:42.948Z\"}]}",
              f);
    }
    fputs("],\"summary\":{}}", f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(buf_read_file(&all, path, NULL), 0);
    cr_assert_eq(both_ways(all.data, all.len), 0);

    /* the pull form with the smallest chunk, both forms mixed */
    blast_error_clear(&err);
    cr_assert_eq(reportread_open(path, 4096, &rd, &err), 0, "%s", err.text);
    for (;;) {
        json_t *e = NULL;
        if (got % 2) {
            rc = reportread_next(rd, &e, &at, &err);
            if (rc > 0) {
                cr_assert_eq(json_integer_value(json_object_get(e, "row")), (json_int_t)got + 1);
                json_decref(e);
            }
        } else {
            rc = reportread_next_outcome(rd, &o, &at, &err);
            if (rc > 0) {
                cr_assert_eq(o.row, got + 1);
                cr_assert_eq(o.nhistory, 1);
                cr_assert_eq(o.history[0].time.usec, 948000);
                cr_assert_eq(at.line, (int)got + 3);
                cr_assert_eq(at.column, 1);
                if ((got + 1) % 97 == 0)
                    cr_assert_eq(strlen(o.reply), 600 * 8 + 2);
            }
            outcome_free(&o);
        }
        if (rc <= 0)
            break;
        got++;
    }
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(got, n);
    reportread_close(rd);
    unlink(path);
    buf_free(&all);
}

/* An outcome fault stops the pull form and sticks, as any fault does. */
Test(reportread, pull_outcome_fault_sticks)
{
    const char *text = "{\"schema_version\": 1, \"recipients\": [{\"row\":1,\"status\":\"failed\"},"
                       " {\"row\":2,\"status\":[]}, {\"row\":3,\"status\":\"failed\"}]}";
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    struct reportread *rd = NULL;
    struct reportread_place at;
    struct blast_error err;
    struct outcome o;

    blast_error_clear(&err);
    cr_assert_eq(reportread_open_stream(f, "mem.json", &rd, &err), 0, "%s", err.text);
    cr_assert_eq(reportread_next_outcome(rd, &o, &at, &err), 1, "%s", err.text);
    cr_assert_eq(o.row, 1);
    outcome_free(&o);
    cr_assert_eq(reportread_next_outcome(rd, &o, &at, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.text, "recipient 2: \"status\" is not a status");
    cr_assert_eq(err.column, 67, "at the recipient: %d", err.column);
    cr_assert_null(o.email);
    blast_error_clear(&err);
    cr_assert_eq(reportread_next_outcome(rd, &o, &at, &err), BLAST_EINVAL, "the error sticks");
    reportread_close(rd);
    fclose(f);
}

/* A summary read without some of its keys: the others as written, the skipped absent. */
static int skip_summary_read(const char *text, json_t **summary, struct blast_error *err)
{
    static const char *const skip[] = {"by_domain", "big", NULL};
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    struct reportread *rd = NULL;
    struct reportread_result res;
    int rc;

    cr_assert_not_null(f);
    blast_error_clear(err);
    *summary = NULL;
    cr_assert_eq(reportread_open_stream(f, "mem.json", &rd, err), 0, "%s", err->text);
    reportread_skip_summary(rd, skip);
    rc = reportread_finish(rd, &res, err);
    if (rc == 0) {
        *summary = json_incref(res.summary);
        reportread_result_free(&res);
    }
    reportread_close(rd);
    fclose(f);
    return rc;
}

Test(reportread, summary_keys_left_out)
{
    json_t *s;
    struct blast_error err;
    char *text;

    cr_assert_eq(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{\"row\":1}],\n"
                                   "\"summary\": {\"total\": 1, \"by_domain\": {\"x.example\": "
                                   "{\"delivered\": 1}, \"y\": [\"}\", \"{\"]},\n"
                                   "\"by_relay\": {\"r\": {\"delivered\": 1}}, \"big\": [[[]]],"
                                   " \"end\": \"2026\"}}\n",
                                   &s, &err),
                 0, "%s", err.text);
    text = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert_str_eq(text, "{\"total\":1,\"by_relay\":{\"r\":{\"delivered\":1}},\"end\":\"2026\"}");
    free(text);
    json_decref(s);
    /* an empty summary */
    cr_assert_eq(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{}], "
                                   "\"summary\": { }}",
                                   &s, &err),
                 0, "%s", err.text);
    cr_assert_eq(json_object_size(s), 0);
    json_decref(s);
}

Test(reportread, a_summary_read_without_keys_is_still_checked)
{
    json_t *s;
    struct blast_error err;

    /* a skipped value must balance */
    cr_assert_lt(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{}], \"summary\": "
                                   "{\"by_domain\": {\"a\": [}}, \"total\": 1}",
                                   &s, &err),
                 0);
    cr_assert_eq(err.line, 1);
    /* the others are parsed */
    cr_assert_eq(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{}], \"summary\": "
                                   "{\"total\": tru, \"by_domain\": {}}",
                                   &s, &err),
                 BLAST_ESYNTAX);
    cr_assert_not_null(strstr(err.text, "summary"), "%s", err.text);
    /* not an object, a missing colon, a missing comma */
    cr_assert_eq(skip_summary_read(
                     "{\"schema_version\": 1, \"recipients\": [{}], \"summary\": [1]}", &s, &err),
                 BLAST_EINVAL);
    cr_assert_lt(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{}], \"summary\": "
                                   "{\"total\" 1}",
                                   &s, &err),
                 0);
    cr_assert_lt(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{}], \"summary\": "
                                   "{\"total\": 1 \"end\": 2}",
                                   &s, &err),
                 0);
    cr_assert_lt(skip_summary_read("{\"schema_version\": 1, \"recipients\": [{}], \"summary\": "
                                   "{\"total\": 1,",
                                   &s, &err),
                 0);
    cr_assert_not_null(strstr(err.text, "ends"), "%s", err.text);
}

/* text gzip'ed, in members (1 or 2, split at its middle), into out (malloc'ed). */
static size_t gzip_text(const char *text, int members, unsigned char **out)
{
    size_t len = strlen(text), cap = len + 256, used = 0;
    unsigned char *buf = malloc(cap);
    int m;

    cr_assert_not_null(buf);
    for (m = 0; m < members; m++) {
        size_t from = m == 0 ? 0 : len / 2, to = members == 1 || m == 1 ? len : len / 2;
        z_stream z;
        memset(&z, 0, sizeof z);
        cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (unsigned char *)text + from;
        z.avail_in = (uInt)(to - from);
        z.next_out = buf + used;
        z.avail_out = (uInt)(cap - used);
        cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
        used = cap - z.avail_out;
        deflateEnd(&z);
    }
    *out = buf;
    return used;
}

/* Read n bytes as a report named "mem.json.gz". */
static int read_bytes(const unsigned char *data, size_t n, struct seen *s,
                      struct reportread_result *out, struct blast_error *err)
{
    FILE *f = fmemopen((void *)data, n, "r");
    int rc;

    cr_assert_not_null(f, "fmemopen: %s", strerror(errno));
    blast_error_clear(err);
    rc = reportread_stream(f, "mem.json.gz", collect, s, out, err);
    fclose(f);
    return rc;
}

Test(reportread, gzip_stream_reads_as_its_text)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    unsigned char *gz;
    int members;

    for (members = 1; members <= 2; members++) {
        size_t n = gzip_text(one_line, members, &gz);
        memset(&s, 0, sizeof s);
        check_one_line_document(read_bytes(gz, n, &s, &out, &err), &s, &out, &err);
        reportread_result_free(&out);
        free(gz);
    }
}

Test(reportread, gzip_file_reads_as_the_plain_one)
{
    char plain[] = "/tmp/blast-unit-reportread-XXXXXX";
    char packed[64];
    struct report_info info = {"nov", "c.yml", false, NULL, NULL, {0, 0}};
    struct report *r;
    struct outcome e;
    struct seen a, b;
    struct reportread_result ra, rb;
    struct blast_error err;
    int fd = mkstemp(plain), i;

    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(packed, sizeof packed, "%s.gz", plain);
    blast_error_clear(&err);
    /* the writer's own .gz, and the same entries plain */
    for (int pass = 0; pass < 2; pass++) {
        cr_assert_eq(report_open(pass == 0 ? plain : packed, &info, &r, &err), 0, "%s", err.text);
        for (i = 1; i <= 5; i++) {
            char email[32];
            outcome_init(&e);
            snprintf(email, sizeof email, "u%d@x.example", i);
            e.email = email;
            e.row = (size_t)i;
            e.status = i == 3 ? OUTCOME_FAILED : OUTCOME_DELIVERED;
            e.code = i == 3 ? 550 : 250;
            cr_assert_eq(report_add(r, &e, &err), 0, "%s", err.text);
        }
        cr_assert_eq(report_commit(r, &err), 0, "%s", err.text);
    }
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    cr_assert_eq(reportread_file(plain, collect, &a, &ra, &err), 0, "%s", err.text);
    cr_assert_eq(reportread_file(packed, collect, &b, &rb, &err), 0, "%s:%d:%d: %s", err.source,
                 err.line, err.column, err.text);
    unlink(plain);
    unlink(packed);
    cr_assert_eq(b.n, 5);
    cr_assert_eq(a.n, b.n);
    for (i = 0; i < 5; i++) {
        cr_assert_eq(a.rows[i], b.rows[i]);
        cr_assert_str_eq(a.emails[i], b.emails[i]);
        cr_assert_eq(a.at[i].line, b.at[i].line, "places in the text, not the compressed bytes");
        cr_assert_eq(a.at[i].column, b.at[i].column);
    }
    cr_assert_str_eq(b.at[0].source, packed);
    cr_assert_eq(json_integer_value(json_object_get(rb.summary, "total")), 5);
    cr_assert(json_equal(json_object_get(ra.summary, "by_status"),
                         json_object_get(rb.summary, "by_status")));
    reportread_result_free(&ra);
    reportread_result_free(&rb);
}

Test(reportread, gzip_errors_are_placed_in_the_text)
{
    const char *text = "{\"schema_version\":1,\"recipients\":[\n{\"row\":1},\n{\"row\" 2}]}";
    struct seen s;
    struct reportread_result out;
    struct blast_error plain, err;
    unsigned char *gz;
    size_t n = gzip_text(text, 1, &gz);

    memset(&s, 0, sizeof s);
    cr_assert_lt(read_text(text, &s, &out, &plain), 0);
    memset(&s, 0, sizeof s);
    cr_assert_eq(read_bytes(gz, n, &s, &out, &err), plain.code);
    free(gz);
    cr_assert_str_eq(err.source, "mem.json.gz");
    cr_assert_eq(err.line, plain.line);
    cr_assert_eq(err.column, plain.column);
    cr_assert_str_eq(err.text, plain.text);
}

Test(reportread, truncated_gzip_is_refused_with_the_name)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    unsigned char *gz;
    size_t n = gzip_text(one_line, 1, &gz), cut;

    /* in the header, in the data, in the trailer: every length but the whole */
    for (cut = 2; cut < n; cut++) {
        memset(&s, 0, sizeof s);
        cr_assert_eq(read_bytes(gz, cut, &s, &out, &err), BLAST_ESYNTAX, "cut at %zu: %s", cut,
                     err.text);
        cr_assert_str_eq(err.source, "mem.json.gz");
        cr_assert_not_null(strstr(err.text, "the compressed report ends early"), "cut at %zu: %s",
                           cut, err.text);
        cr_assert_null(out.summary);
    }
    free(gz);
}

Test(reportread, corrupt_gzip_is_refused_with_zlibs_reason)
{
    struct seen s;
    struct reportread_result out;
    struct blast_error err;
    unsigned char *gz;
    size_t n = gzip_text(one_line, 1, &gz);

    gz[n - 8] ^= 0xff; /* the CRC-32 of the text */
    memset(&s, 0, sizeof s);
    cr_assert_eq(read_bytes(gz, n, &s, &out, &err), BLAST_ESYNTAX, "%s", err.text);
    cr_assert_str_eq(err.source, "mem.json.gz");
    cr_assert_not_null(strstr(err.text, "is not a valid gzip stream: incorrect data check"), "%s",
                       err.text);
    gz[n - 8] ^= 0xff;
    gz[2] = 7; /* a compression method gzip does not have */
    cr_assert_eq(read_bytes(gz, n, &s, &out, &err), BLAST_ESYNTAX, "%s", err.text);
    cr_assert_not_null(strstr(err.text, "is not a valid gzip stream"), "%s", err.text);
    free(gz);
}
