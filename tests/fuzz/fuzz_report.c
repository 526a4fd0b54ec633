/*
 * fuzz_report - the report reader (reportread_stream) on a fuzzed report, read
 * from memory.
 *
 * Checks: every recipient handed over is a JSON object, counted from 0; a report
 * that reads has as many recipients as were handed over, and a summary and a
 * campaign that are objects when present; a failure is an error with its place.
 * Each recipient also goes through outcome_from_json(): one that reads is written
 * again by outcome_format_json(), and that text must be JSON that reads back to
 * the same text (the journal relies on it); one that does not read says why.
 * Then the same report is read by the outcome form (reportread_stream_outcomes(),
 * each recipient onto a tape): it must hand over the same outcomes at the same
 * places and end the same way, with the same error (code, place, words) as the
 * json_t form with reportread_outcome() in its callback.
 */
#include "../../core/outcome.h"
#include "../../core/reportread.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void round_trip(json_t *entry, size_t index)
{
    struct outcome o, back;
    struct blast_error err;
    struct buf a = BUF_INIT, b = BUF_INIT;
    json_error_t jerr;
    json_t *v;

    blast_error_clear(&err);
    if (outcome_from_json(entry, &o, &err) < 0) {
        if (err.text[0] == '\0' || o.email != NULL || o.history != NULL)
            fuzz_fail("recipient %zu refused without a reason, or half read", index);
        return;
    }
    if (outcome_format_json(&o, false, &a) < 0)
        fuzz_fail("recipient %zu cannot be written", index);
    v = json_loadb(a.data, a.len, 0, &jerr);
    if (v == NULL)
        fuzz_fail("recipient %zu written as text that is not JSON: %s", index, jerr.text);
    if (outcome_from_json(v, &back, &err) < 0)
        fuzz_fail("recipient %zu written as text that does not read back: %s", index, err.text);
    if (outcome_format_json(&back, false, &b) < 0 || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        fuzz_fail("recipient %zu reads back different:\n%s\n%s", index, a.data, b.data);
    json_decref(v);
    outcome_free(&o);
    outcome_free(&back);
    buf_free(&a);
    buf_free(&b);
}

/* What one form read: each outcome as text with its place, and how it ended. */
struct reading {
    struct buf text;
    size_t n;
    int rc;
    struct blast_error err;
};

static void note(struct reading *r, const struct outcome *o, const struct reportread_place *at)
{
    if (outcome_format_json(o, false, &r->text) < 0 ||
        buf_printf(&r->text, " @%d:%d\n", at->line, at->column) < 0)
        fuzz_fail("out of memory");
    r->n++;
}

static int via_json(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                    struct blast_error *err)
{
    struct outcome o;
    int rc = reportread_outcome(entry, index, at, &o, err);

    if (rc < 0)
        return rc;
    note(arg, &o, at);
    outcome_free(&o);
    return 0;
}

static int via_tape(void *arg, struct outcome *o, size_t index, const struct reportread_place *at,
                    struct blast_error *err)
{
    struct reading *r = arg;

    (void)err;
    if (index != r->n)
        fuzz_fail("outcome %zu handed over as %zu", r->n, index);
    note(r, o, at);
    return 0;
}

static void read_form(const uint8_t *data, size_t size, bool tape, struct reading *r)
{
    struct reportread_result res = {0};
    FILE *f = fmemopen((void *)data, size, "r");

    if (f == NULL)
        fuzz_fail("fmemopen");
    blast_error_clear(&r->err);
    r->rc = tape ? reportread_stream_outcomes(f, "fuzz.json", via_tape, r, &res, &r->err)
                 : reportread_stream(f, "fuzz.json", via_json, r, &res, &r->err);
    if (r->rc == 0 && res.recipients != r->n)
        fuzz_fail("%zu recipients counted, %zu outcomes handed over", res.recipients, r->n);
    reportread_result_free(&res);
    fclose(f);
}

/* The outcome form against the json_t form with reportread_outcome(): the same reading. */
static void both_forms(const uint8_t *data, size_t size)
{
    struct reading a, b;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    read_form(data, size, false, &a);
    read_form(data, size, true, &b);
    if (a.rc != b.rc || a.n != b.n || a.text.len != b.text.len ||
        (a.text.len > 0 && memcmp(a.text.data, b.text.data, a.text.len) != 0))
        fuzz_fail("the outcome form read %zu (%d: %s), through jansson %zu (%d: %s)", b.n, b.rc,
                  b.err.text, a.n, a.rc, a.err.text);
    if (a.rc < 0 &&
        (a.err.code != b.err.code || a.err.line != b.err.line || a.err.column != b.err.column ||
         strcmp(a.err.text, b.err.text) != 0 || strcmp(a.err.source, b.err.source) != 0))
        fuzz_fail("the outcome form failed at %d:%d (%s), through jansson at %d:%d (%s)",
                  b.err.line, b.err.column, b.err.text, a.err.line, a.err.column, a.err.text);
    buf_free(&a.text);
    buf_free(&b.text);
}

static int each(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                struct blast_error *err)
{
    size_t *seen = arg;

    (void)err;
    if (entry == NULL || !json_is_object(entry))
        fuzz_fail("recipient %zu is not an object", index);
    if (index != *seen)
        fuzz_fail("recipient %zu handed over as %zu", *seen, index);
    if (at == NULL || at->line < 1 || at->column < 1)
        fuzz_fail("recipient %zu without its place", index);
    round_trip(entry, index);
    (*seen)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reportread_result res = {0};
    struct blast_error err;
    size_t seen = 0;
    FILE *f;
    int rc;

    if (size == 0)
        return 0;
    f = fmemopen((void *)data, size, "r");
    if (f == NULL)
        return 0;
    blast_error_clear(&err);
    rc = reportread_stream(f, "fuzz.json", each, &seen, &res, &err);
    if (rc == 0) {
        if (res.recipients != seen)
            fuzz_fail("%zu recipients counted, %zu handed over", res.recipients, seen);
        if ((res.summary != NULL && !json_is_object(res.summary)) ||
            (res.campaign != NULL && !json_is_object(res.campaign)))
            fuzz_fail("a summary or a campaign that is not an object");
    } else if (err.code != rc || err.source[0] == '\0') {
        fuzz_fail("error %d without its record or its source", rc);
    }
    reportread_result_free(&res);
    fclose(f);
    both_forms(data, size);
    return 0;
}
