/*
 * fuzz_report - the report reader (reportread_stream) on a fuzzed report, read
 * from memory.
 *
 * Checks: every recipient handed over is a JSON object, counted from 0; a report
 * that reads has as many recipients as were handed over, and a summary and a
 * campaign that are objects when present; a failure is an error with its place.
 */
#include "../../core/reportread.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdio.h>

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
