/*
 * fuzz_page - a fuzzed report made into the HTML page (reportread's outcome reader with
 * the summary's by_domain left out, runstats, htmlreport), as `blast report --format
 * html` does.
 *
 * Checks, whatever the report holds: the page is written; it is whole (it ends with
 * </html>); every '<' in it opens or closes one of the elements the page is made of,
 * so nothing from the report became markup (a <script>, an <img>, an attribute
 * smuggled in by a quote would all show as another tag or break one); and no
 * attribute value holds a quote or an angle bracket of the report's.
 */
#include "../../core/htmlreport.h"
#include "../../core/reportread.h"
#include "../../core/runstats.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The elements the page is made of (core/htmlreport.c). */
static const char *const elements[] = {
    "!DOCTYPE", "html",       "head",    "meta", "title", "style", "body", "header",
    "main",     "footer",     "section", "h1",   "h2",    "h3",    "p",    "span",
    "b",        "ul",         "li",      "dl",   "dt",    "dd",    "div",  "table",
    "tr",       "th",         "td",      "svg",  "line",  "text",  "g",    "rect",
    "figure",   "figcaption", "bdi",     "code", "a",
};

static void check_markup(const char *page, size_t len)
{
    const char *p = page, *end = page + len;
    size_t i;

    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        const char *name = p + 1 + (p[1] == '/');
        size_t n = strspn(name, "!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
        bool known = false;
        for (i = 0; i < sizeof elements / sizeof elements[0]; i++)
            if (strlen(elements[i]) == n && strncmp(name, elements[i], n) == 0)
                known = true;
        if (!known || (name[n] != '>' && name[n] != ' ' && name[n] != '\n'))
            fuzz_fail("the page holds markup it does not make: %.60s", p);
        /* inside a tag: attribute values are ours, quoted, without '<' */
        const char *close = memchr(name, '>', (size_t)(end - name));
        if (close == NULL)
            fuzz_fail("a tag that never closes: %.60s", p);
        size_t quotes = 0;
        for (const char *q = name; q < close; q++) {
            if (*q == '"')
                quotes++;
            if (*q == '<')
                fuzz_fail("'<' inside a tag: %.60s", p);
        }
        if (quotes % 2 != 0)
            fuzz_fail("a tag with an odd number of quotes: %.80s", p);
        p = close;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const lean[] = {"by_domain", NULL};
    struct reportread_result res = {0};
    struct htmlreport_input in = {0};
    struct reportread *rd = NULL;
    struct reportread_place at;
    struct outcome o;
    struct runstats st;
    struct blast_error err;
    char *page = NULL;
    size_t len = 0;
    FILE *f, *out;
    int rc;

    if (size == 0)
        return 0;
    f = fmemopen((void *)data, size, "r");
    if (f == NULL)
        return 0;
    if (runstats_init(&st) < 0)
        fuzz_fail("runstats_init");
    blast_error_clear(&err);
    /* as `blast report --format html` reads: outcomes, the summary without by_domain */
    if ((rc = reportread_open_stream(f, "fuzz.json", &rd, &err)) == 0) {
        reportread_skip_summary(rd, lean);
        while ((rc = reportread_next_outcome(rd, &o, &at, &err)) > 0) {
            if (runstats_add(&st, &o) < 0)
                fuzz_fail("runstats_add");
            outcome_free(&o);
        }
        outcome_free(&o);
        if (rc == 0)
            rc = reportread_finish(rd, &res, &err);
    }
    reportread_close(rd);
    if (rc == 0) {
        out = open_memstream(&page, &len);
        if (out == NULL)
            fuzz_fail("open_memstream");
        in.source = "fuzz.json";
        in.csv_href = "fuzz.csv";
        in.campaign = res.campaign;
        in.summary = res.summary;
        in.stats = &st;
        if (htmlreport_write(out, "memory", &in, &err) < 0)
            fuzz_fail("the page was not written: %s", err.text);
        fclose(out);
        if (len < 8 || strcmp(page + len - 8, "</html>\n") != 0)
            fuzz_fail("the page is not whole");
        check_markup(page, len);
        free(page);
    } else if (err.code != rc || err.source[0] == '\0') {
        fuzz_fail("error %d without its source", rc);
    }
    runstats_free(&st);
    reportread_result_free(&res);
    fclose(f);
    return 0;
}
