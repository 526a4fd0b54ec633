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
 */
#include "../../core/outcome.h"
#include "../../core/reportread.h"
#include "fuzz.h"

#include <jansson.h>
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
    return 0;
}
