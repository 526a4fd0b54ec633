/*
 * report_read_bench - how fast a report's recipients become struct outcome, in
 * process, by each way core/reportread offers.
 *
 * usage: report_read_bench MODE REPORT.json
 *   json   reportread_file(), each entry a jansson tree, then reportread_outcome()
 *          (what `blast report` does for its text summary)
 *   tape   reportread_file_outcomes(): each entry's text onto a tape, then the outcome
 *   pull   reportread_open() and reportread_next_outcome() one by one
 *   parse  reportread_file() with no callback: the scan and jansson's parse only
 * Prints the recipients, a checksum of what was read (the same in every mode), the
 * seconds, recipients per second and the peak RSS.
 */
#include "../core/outcome.h"
#include "../core/reportread.h"
#include "../core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct tally {
    size_t n;
    unsigned long long sum; /* of rows, statuses, codes, history lengths and email bytes */
};

static void count(struct tally *t, const struct outcome *o)
{
    t->n++;
    t->sum += o->row + (unsigned)o->status * 7u + (unsigned)o->code + o->nhistory * 13u +
              (o->email != NULL ? strlen(o->email) : 0);
}

static int from_json(void *arg, struct json_t *entry, size_t index,
                     const struct reportread_place *at, struct blast_error *err)
{
    struct outcome o;
    int rc = reportread_outcome(entry, index, at, &o, err);

    if (rc < 0)
        return rc;
    count(arg, &o);
    outcome_free(&o);
    return 0;
}

static int from_tape(void *arg, struct outcome *o, size_t index, const struct reportread_place *at,
                     struct blast_error *err)
{
    (void)index;
    (void)at;
    (void)err;
    count(arg, o);
    return 0;
}

static int pull(const char *path, struct tally *t, struct blast_error *err)
{
    struct reportread *rd;
    struct reportread_result res;
    struct reportread_place at;
    struct outcome o;
    int rc;

    if ((rc = reportread_open(path, 0, &rd, err)) < 0)
        return rc;
    while ((rc = reportread_next_outcome(rd, &o, &at, err)) > 0) {
        count(t, &o);
        outcome_free(&o);
    }
    if (rc == 0 && (rc = reportread_finish(rd, &res, err)) == 0)
        reportread_result_free(&res);
    reportread_close(rd);
    return rc;
}

int main(int argc, char **argv)
{
    struct reportread_result res;
    struct blast_error err;
    struct tally t = {0, 0};
    struct rusage ru;
    int64_t t0, t1;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: report_read_bench json|tape|pull|parse REPORT.json\n");
        return 2;
    }
    blast_error_clear(&err);
    t0 = timeutil_mono_ms();
    if (strcmp(argv[1], "json") == 0) {
        rc = reportread_file(argv[2], from_json, &t, &res, &err);
    } else if (strcmp(argv[1], "tape") == 0) {
        rc = reportread_file_outcomes(argv[2], from_tape, &t, &res, &err);
    } else if (strcmp(argv[1], "parse") == 0) {
        rc = reportread_file(argv[2], NULL, NULL, &res, &err);
        t.n = res.recipients;
    } else if (strcmp(argv[1], "pull") == 0) {
        memset(&res, 0, sizeof res);
        rc = pull(argv[2], &t, &err);
    } else {
        fprintf(stderr, "report_read_bench: no mode %s\n", argv[1]);
        return 2;
    }
    t1 = timeutil_mono_ms();
    if (rc < 0) {
        char text[2048];
        fprintf(stderr, "report_read_bench: %s\n", blast_error_format(&err, text, sizeof text));
        return 1;
    }
    reportread_result_free(&res);
    getrusage(RUSAGE_SELF, &ru);
    printf("%-5s %zu recipients (checksum %llu) in %.2f s: %.0f recipients/s, peak RSS %ld KB\n",
           argv[1], t.n, t.sum, (double)(t1 - t0) / 1000.0,
           (double)t.n * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1), ru.ru_maxrss);
    return 0;
}
