/*
 * htmlreport - a delivery report as one self-contained HTML page (`blast report
 * --format html`, docs/report-page.md): inline CSS and SVG charts drawn here, no
 * script, no font, nothing fetched; readable on a phone and printable.
 *
 * Owns: the page's layout, its sections (outcome, runs, attempts over time, domains,
 * relays, failure reasons, retries, bounces and complaints, DKIM and TLS), the
 * charts, and the escaping of every value that came from the list, a template or a
 * server: HTML-escaped, control characters replaced, long text cut, right-to-left
 * text isolated (<bdi>). A Content-Security-Policy forbids scripts and fetches even
 * if some text ever got through unescaped.
 * Does not own: reading the report or counting (reportread, runstats); the page holds
 * aggregates only, so its size does not grow with recipients.
 */
#ifndef BLAST_HTMLREPORT_H
#define BLAST_HTMLREPORT_H

#include "error.h"
#include "runstats.h"

#include <stdio.h>

struct json_t;

struct htmlreport_input {
    const char *source;            /* the report's name, shown in the header */
    const char *csv_href;          /* a relative link to the rows as CSV, or NULL */
    const char *csv_command;       /* the command that writes that CSV, or NULL */
    const char *generator;         /* "blast 1.2.3", for <meta name="generator"> */
    const struct json_t *campaign; /* the report's "campaign" (borrowed), or NULL */
    const struct json_t *summary;  /* the report's "summary" (borrowed), or NULL */
    const struct runstats *stats;  /* counted from the recipients */
    size_t later;                  /* recipients shown bounced or complained from the
                                      suppression database rather than the report */
};

/*
 * Write the page to out. The output depends only on the input (no clock), so a fixed
 * report gives a fixed page. Errors: BLAST_ENOMEM, BLAST_EIO (out failed; the message
 * names out_name).
 */
int htmlreport_write(FILE *out, const char *out_name, const struct htmlreport_input *in,
                     struct blast_error *err);

/*
 * s as HTML text (also fit for an attribute value in double quotes): & < > " '
 * escaped, C0 and C1 controls and DEL as U+FFFD, a byte that is not UTF-8 as
 * U+FFFD, at most max characters (then "…"; 0: no limit).
 */
void htmlreport_escape(FILE *out, const char *s, size_t max);

#endif
