/*
 * htmlreport - a delivery report as one self-contained HTML page. See htmlreport.h.
 *
 * Everything drawn is computed here from counts; nothing from the report is ever
 * written into the page but through htmlreport_escape(), and never into a style,
 * a URL or an SVG attribute other than <title> text.
 */
#include "htmlreport.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOP_DOMAINS   15
#define TOP_RELAYS    30
#define TIMELINE_BINS 120
#define REASON_CHARS  300
#define NAME_CHARS    80

/* The colours of the statuses, in enum outcome_status order. */
static const char *const status_colour[OUTCOME_STATUS_COUNT] = {
    "#2e7d32", /* delivered */
    "#f2a900", /* deferred */
    "#c62828", /* failed */
    "#7b1fa2", /* unknown */
    "#78909c", /* suppressed */
    "#6d4c41", /* invalid */
    "#b0bec5", /* duplicate */
    "#1565c0", /* rendered */
    "#e65100", /* bounced */
    "#ad1457", /* complained */
};

static const enum outcome_status series_status[RUNSTATS_SERIES] = {
    OUTCOME_DELIVERED, OUTCOME_DEFERRED, OUTCOME_FAILED, OUTCOME_UNKNOWN, OUTCOME_RENDERED,
};
static const char *const series_label[RUNSTATS_SERIES] = {
    "delivered", "deferred (retried)", "failed", "unknown", "rendered",
};

/* ---- text ------------------------------------------------------------------------------ */

/* The length of the UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n, i;
    uint32_t c;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, c = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, c = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, c = p[0] & 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    /* overlong forms, surrogates and what lies past U+10FFFF are not UTF-8 */
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

void htmlreport_escape(FILE *out, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t chars = 0, n;

    while (*p != '\0') {
        if (max > 0 && chars == max) {
            fputs("\xe2\x80\xa6", out); /* … */
            return;
        }
        chars++;
        n = utf8_len(p);
        if (n == 0) {
            fputs("\xef\xbf\xbd", out);
            p++;
            continue;
        }
        if (n == 2 && p[0] == 0xC2 && p[1] <= 0x9F) {
            fputs("\xef\xbf\xbd", out); /* C1 controls */
            p += 2;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, n, out);
            p += n;
            continue;
        }
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                fputs("\xef\xbf\xbd", out);
            else
                fputc(*p, out);
        }
        p++;
    }
}

/* Text from the report: escaped, cut at max characters, and isolated for bidi. */
static void put_text(FILE *out, const char *s, size_t max)
{
    fputs("<bdi>", out);
    htmlreport_escape(out, s, max);
    fputs("</bdi>", out);
}

/* 1234567 as "1,234,567". */
static void put_count(FILE *out, uintmax_t n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ju", n), i;

    for (i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            fputc(',', out);
        fputc(digits[i], out);
    }
}

static void put_percent(FILE *out, double part, double whole)
{
    double p = whole > 0 ? 100.0 * part / whole : 0.0;

    if (p > 0 && p < 0.1)
        fputs("&lt;0.1%", out);
    else
        fprintf(out, "%.1f%%", p);
}

static const char *string_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* "2 minutes", "second", "6 hours": what one bin of width seconds spans. */
static void put_width(FILE *out, int64_t width)
{
    static const struct {
        int64_t secs;
        const char *one, *many;
    } units[] = {
        {604800, "week", "weeks"}, {86400, "day", "days"},   {3600, "hour", "hours"},
        {60, "minute", "minutes"}, {1, "second", "seconds"},
    };
    size_t i;

    for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (width % units[i].secs == 0) {
            int64_t n = width / units[i].secs;
            if (n == 1)
                fputs(units[i].one, out);
            else
                fprintf(out, "%lld %s", (long long)n, units[i].many);
            return;
        }
}

/* ---- the page's frame ------------------------------------------------------------------ */

static const char style[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--panel:#f6f8fa}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica "
    "Neue',Arial,sans-serif;color:var(--fg);background:var(--bg);"
    "-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "header,main,footer{max-width:1100px;margin:0 auto;padding:0 16px}"
    "header{padding-top:20px}"
    "h1{font-size:1.6em;margin:0 0 4px;overflow-wrap:anywhere}"
    "h2{font-size:1.15em;margin:0 0 10px}"
    "h3{font-size:1em;margin:14px 0 6px}"
    ".sub{color:var(--muted);margin:0 0 6px;overflow-wrap:anywhere}"
    "section{border-top:1px solid var(--line);padding:16px 0;break-inside:avoid}"
    ".tiles{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 12px;padding:0;list-style:none}"
    ".tile{flex:1 1 130px;border:1px solid var(--line);border-left:6px solid "
    "var(--c);border-radius:6px;padding:8px 10px;background:var(--panel)}"
    ".tile .n{display:block;font-size:1.5em;font-weight:600}"
    ".tile .l,.tile .p{color:var(--muted)}"
    ".rates{margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:6px 24px}"
    "dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}"
    "dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}"
    ".scroll{overflow-x:auto}"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);"
    "vertical-align:top}"
    "th{font-weight:600;color:var(--muted);font-size:.9em}"
    "td.num,th.num{text-align:right;white-space:nowrap}"
    "td.name{max-width:28em;overflow-wrap:anywhere}"
    "td.reason{overflow-wrap:anywhere}"
    "td.bar{width:40%;min-width:120px}"
    "svg.bar{display:block;width:100%;height:14px}"
    "svg.chart{display:block;width:100%;height:auto}"
    "svg text{font:11px system-ui,sans-serif;fill:var(--muted)}"
    "figure{margin:0}figcaption{color:var(--muted);font-size:.9em;margin-top:6px}"
    ".legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0 0;padding:0;"
    "list-style:none;font-size:.9em}"
    ".legend li::before{content:'';display:inline-block;width:10px;height:10px;"
    "margin-right:5px;background:var(--c);border-radius:2px}"
    ".none{color:var(--muted)}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;"
    "overflow-wrap:anywhere}"
    "footer{border-top:1px solid var(--line);padding:16px;color:var(--muted);font-size:.9em}"
    "@media (max-width:600px){body{font-size:14px}td.bar{min-width:80px}"
    "dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:6px}}"
    "@media print{body{font-size:10pt}header,main,footer{max-width:none}"
    "a{color:inherit;text-decoration:none}.scroll{overflow:visible}}";

static void head(FILE *out, const struct htmlreport_input *in, const char *name)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          /* a second wall: were anything ever written unescaped, it still could not
             run a script, load anything or send a form */
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'\">\n"
          "<meta name=\"referrer\" content=\"no-referrer\">\n",
          out);
    if (in->generator != NULL) {
        fputs("<meta name=\"generator\" content=\"", out);
        htmlreport_escape(out, in->generator, 100);
        fputs("\">\n", out);
    }
    fputs("<title>", out);
    htmlreport_escape(out, name != NULL ? name : "campaign", NAME_CHARS);
    fputs(": delivery report</title>\n<style>", out);
    fputs(style, out);
    fputs("</style>\n</head>\n<body>\n", out);
}

/* ---- statuses ---------------------------------------------------------------------------- */

/* The count of status, as the recipients were read. */
static size_t count_of(const struct runstats *s, enum outcome_status st)
{
    return s->tally.counts[st];
}

static void outcome_section(FILE *out, const struct htmlreport_input *in)
{
    const struct runstats *s = in->stats;
    size_t total = s->tally.entries, i;
    size_t accepted = count_of(s, OUTCOME_DELIVERED) + count_of(s, OUTCOME_BOUNCED) +
                      count_of(s, OUTCOME_COMPLAINED);
    size_t sendable = total - count_of(s, OUTCOME_SUPPRESSED) - count_of(s, OUTCOME_DUPLICATE) -
                      count_of(s, OUTCOME_INVALID);
    bool dry = json_is_true(json_object_get(in->campaign, "dry_run"));

    fputs("<section id=\"outcome\">\n<h2>Outcome</h2>\n", out);
    fputs("<p class=\"total\"><span class=\"n\">", out);
    put_count(out, total);
    fputs("</span> recipients</p>\n", out);
    if (total == 0) {
        fputs("<p class=\"none\">This report has no recipients: the list was empty or no "
              "row reached a run.</p>\n</section>\n",
              out);
        return;
    }
    fputs("<ul class=\"tiles\">\n", out);
    for (i = 0; i < OUTCOME_STATUS_COUNT; i++) {
        size_t n = count_of(s, (enum outcome_status)i);
        const char *name = outcome_status_name((enum outcome_status)i);
        /* the four outcomes of sending are always shown, the others when they happened */
        if (n == 0 && (dry || i > OUTCOME_UNKNOWN))
            continue;
        fprintf(out, "<li class=\"tile\" id=\"status-%s\" style=\"--c:%s\"><span class=\"n\">",
                name, status_colour[i]);
        put_count(out, n);
        fprintf(out, "</span><span class=\"l\">%s</span> <span class=\"p\">", name);
        put_percent(out, (double)n, (double)total);
        fputs("</span></li>\n", out);
    }
    if (s->tally.other_status > 0) {
        fputs("<li class=\"tile\" id=\"status-other\" style=\"--c:#000\"><span class=\"n\">", out);
        put_count(out, s->tally.other_status);
        fputs("</span><span class=\"l\">a status this blast does not know</span></li>\n", out);
    }
    fputs("</ul>\n<ul class=\"rates\">\n", out);
    if (dry) {
        fputs("<li id=\"rate-rendered\">rendered: <b>", out);
        put_percent(out, (double)count_of(s, OUTCOME_RENDERED), (double)sendable);
        fputs("</b> of the recipients that could be sent</li>\n", out);
    } else {
        fputs("<li id=\"rate-accepted\">accepted by a relay: <b>", out);
        put_percent(out, (double)accepted, (double)sendable);
        fputs("</b> of the recipients that could be sent (", out);
        put_count(out, sendable);
        fputs(")</li>\n", out);
        static const enum outcome_status shown[] = {OUTCOME_DEFERRED, OUTCOME_FAILED,
                                                    OUTCOME_UNKNOWN};
        for (i = 0; i < sizeof shown / sizeof shown[0]; i++) {
            fprintf(out, "<li id=\"rate-%s\">%s: <b>", outcome_status_name(shown[i]),
                    outcome_status_name(shown[i]));
            put_percent(out, (double)count_of(s, shown[i]), (double)sendable);
            fputs("</b></li>\n", out);
        }
        if (count_of(s, OUTCOME_BOUNCED) + count_of(s, OUTCOME_COMPLAINED) > 0 ||
            json_is_string(json_object_get(in->campaign, "suppression_db"))) {
            fputs("<li id=\"rate-bounced\">bounced later: <b>", out);
            put_percent(out, (double)count_of(s, OUTCOME_BOUNCED), (double)accepted);
            fputs("</b> of those accepted</li>\n<li id=\"rate-complained\">complained: <b>", out);
            put_percent(out, (double)count_of(s, OUTCOME_COMPLAINED), (double)accepted);
            fputs("</b> of those accepted</li>\n", out);
        }
    }
    fputs("</ul>\n", out);
    if (in->later > 0) {
        fputs("<p class=\"none\">", out);
        put_count(out, in->later);
        fputs(" delivered recipients are shown bounced or complained from the campaign's "
              "suppression database (what came back after the report was written).</p>\n",
              out);
    }
    fputs("</section>\n", out);
}

/* ---- the run --------------------------------------------------------------------------- */

static double rate_of(const struct htmlreport_input *in, bool *shard_share)
{
    json_t *r = json_object_get(in->campaign, "rate_per_second");
    json_t *shard = json_object_get(in->campaign, "shard");
    double rate = json_is_number(r) ? json_number_value(r) : 0.0;
    json_int_t count = json_integer_value(json_object_get(shard, "count"));

    *shard_share = false;
    if (rate > 0 && count > 1) {
        /* each of N shards takes 1/N of the campaign's rate (docs/sharding.md) */
        rate /= (double)count;
        *shard_share = true;
    }
    return rate;
}

static void fact(FILE *out, const char *term, const char *id)
{
    fprintf(out, "<dt>%s</dt><dd id=\"%s\">", term, id);
}

/* The breaker's decision, the seeds, and who was held back on purpose (summary). */
static void held_facts(FILE *out, const json_t *sum)
{
    json_t *held = json_object_get(sum, "held"), *seeds = json_object_get(sum, "seeds"), *e;
    const char *breaker = string_of(json_object_get(sum, "breaker"), "reason");
    json_int_t window = json_integer_value(json_object_get(held, "window"));
    json_int_t warmup = json_integer_value(json_object_get(held, "warmup"));
    size_t i, delivered = 0;

    if (breaker != NULL) {
        fact(out, "stopped", "breaker");
        fputs("by the circuit breaker: ", out);
        put_text(out, breaker, 300);
        fputs("; the rest are deferred</dd>\n", out);
    }
    if (json_is_array(seeds) && json_array_size(seeds) > 0) {
        json_array_foreach(seeds, i, e)
        {
            const char *st = string_of(e, "status");
            delivered += st != NULL && strcmp(st, "delivered") == 0;
        }
        fact(out, "seeds", "seeds");
        put_count(out, delivered);
        fputs(" of ", out);
        put_count(out, json_array_size(seeds));
        fputs(" delivered</dd>\n", out);
    }
    if (window > 0) {
        fact(out, "held by the send window", "held-window");
        put_count(out, (uintmax_t)window);
        fputs(" deferred for a later run</dd>\n", out);
    }
    if (warmup > 0) {
        fact(out, "held by warm-up caps", "held-warmup");
        put_count(out, (uintmax_t)warmup);
        fputs(" deferred for a later run</dd>\n", out);
    }
}

static void run_section(FILE *out, const struct htmlreport_input *in)
{
    const json_t *c = in->campaign, *sum = in->summary;
    json_t *shard = json_object_get(c, "shard"), *shards = json_object_get(sum, "shards");
    json_t *secs = json_object_get(sum, "duration_seconds");
    json_t *this_run = json_object_get(sum, "messages_this_run");
    bool dry = json_is_true(json_object_get(c, "dry_run")), share;
    const char *test_to = string_of(c, "test_to");
    double rate = rate_of(in, &share);
    size_t i;

    fputs("<section id=\"run\">\n<h2>Campaign and run</h2>\n<dl class=\"facts\">\n", out);
    fact(out, "campaign", "campaign-name");
    put_text(out, string_of(c, "name") != NULL ? string_of(c, "name") : "(no name)", 200);
    fputs("</dd>\n", out);
    if (string_of(c, "file") != NULL) {
        fact(out, "campaign file", "campaign-file");
        fputs("<code>", out);
        put_text(out, string_of(c, "file"), 300);
        fputs("</code></dd>\n", out);
    }
    fact(out, "mode", "mode");
    if (dry)
        fputs("dry run: messages rendered into files, nothing sent", out);
    if (test_to != NULL) {
        fputs(dry ? "; " : "", out);
        fputs("test send: every message went to ", out);
        put_text(out, test_to, 200);
    }
    if (!dry && test_to == NULL)
        fputs("sent to the list", out);
    fputs("</dd>\n", out);
    if (json_is_object(shard)) {
        fact(out, "shard", "shard");
        fprintf(out, "%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " (indexes from 0)",
                json_integer_value(json_object_get(shard, "index")),
                json_integer_value(json_object_get(shard, "count")));
        fputs("</dd>\n", out);
    }
    if (json_is_array(shards) && json_array_size(shards) > 0) {
        fact(out, "merged from", "merged");
        put_count(out, json_array_size(shards));
        fputs(" shard reports</dd>\n", out);
    }
    if (string_of(sum, "start") != NULL && string_of(sum, "end") != NULL) {
        fact(out, json_is_array(shards) ? "runs" : "this run", "run-time");
        put_text(out, string_of(sum, "start"), 40);
        fputs(" to ", out);
        put_text(out, string_of(sum, "end"), 40);
        fputs("</dd>\n", out);
    }
    if (json_is_number(secs)) {
        fact(out, "duration", "duration");
        fprintf(out, "%.1f s</dd>\n", json_number_value(secs));
    }
    if (json_is_integer(this_run)) {
        fact(out, dry ? "rendered this run" : "delivered this run", "this-run");
        put_count(out, (uintmax_t)json_integer_value(this_run));
        fputs("</dd>\n", out);
    }
    if (json_is_number(secs) && json_is_integer(this_run) && json_number_value(secs) > 0) {
        double pace = (double)json_integer_value(this_run) / json_number_value(secs);
        fact(out, "pace", "pace");
        fprintf(out, "%.1f messages a second", pace);
        if (rate > 0 && !dry)
            fprintf(out, " (%.0f%% of the configured rate)", 100.0 * pace / rate);
        fputs("</dd>\n", out);
    }
    if (rate > 0) {
        fact(out, "configured rate", "rate");
        fprintf(out, "%.6g a second%s", rate,
                share ? ", this shard's share of the campaign's" : "");
        fputs("</dd>\n", out);
    }
    held_facts(out, sum);
    if (string_of(c, "fingerprint") != NULL) {
        fact(out, "fingerprint", "fingerprint");
        fputs("<code>", out);
        htmlreport_escape(out, string_of(c, "fingerprint"), 64);
        fputs("</code></dd>\n", out);
    }
    fputs("</dl>\n", out);
    if (json_is_array(shards) && json_array_size(shards) > 0) {
        json_t *v;
        fputs("<h3>Shards</h3>\n<div class=\"scroll\"><table id=\"shards\">\n<tr><th "
              "class=\"num\">shard</th><th class=\"num\">recipients</th><th>start</th><th>"
              "end</th><th class=\"num\">this run</th></tr>\n",
              out);
        json_array_foreach(shards, i, v)
        {
            fprintf(out, "<tr><td class=\"num\">%" JSON_INTEGER_FORMAT "</td><td class=\"num\">",
                    json_integer_value(json_object_get(v, "index")));
            put_count(out, (uintmax_t)json_integer_value(json_object_get(v, "recipients")));
            fputs("</td><td>", out);
            put_text(out, string_of(v, "start"), 40);
            fputs("</td><td>", out);
            put_text(out, string_of(v, "end"), 40);
            fputs("</td><td class=\"num\">", out);
            put_count(out, (uintmax_t)json_integer_value(json_object_get(v, "messages_this_run")));
            fputs("</td></tr>\n", out);
        }
        fputs("</table></div>\n", out);
    }
    fputs("</section>\n", out);
}

/* ---- attempts over time ------------------------------------------------------------------ */

/* The smallest 1, 2 or 5 times a power of ten that is at least v. */
static double nice_ceiling(double v)
{
    double p = 1;

    if (v <= 1)
        return 1;
    while (p * 10 < v)
        p *= 10;
    if (v <= p)
        return p;
    if (v <= 2 * p)
        return 2 * p;
    if (v <= 5 * p)
        return 5 * p;
    return 10 * p;
}

static void put_clock(FILE *out, int64_t t, int64_t span, int64_t width)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char text[40];

    gmtime_r(&tt, &tm);
    if (span > 2 * 86400 && width >= 86400)
        strftime(text, sizeof text, "%Y-%m-%d", &tm);
    else if (span > 86400)
        strftime(text, sizeof text, "%m-%d %H:%M", &tm);
    else if (width < 60)
        strftime(text, sizeof text, "%H:%M:%S", &tm);
    else
        strftime(text, sizeof text, "%H:%M", &tm);
    fputs(text, out);
}

#define CHART_W 1000
#define CHART_H 300
#define PLOT_X0 64
#define PLOT_X1 990
#define PLOT_Y0 14
#define PLOT_Y1 262

static void timeline_chart(FILE *out, const struct htmlreport_input *in,
                           const struct runstats_timeline *v)
{
    bool share, dry = json_is_true(json_object_get(in->campaign, "dry_run"));
    double rate = dry ? 0 : rate_of(in, &share), line = rate * (double)v->width, top = 0, ymax;
    double bw = (double)(PLOT_X1 - PLOT_X0) / (double)v->nbins;
    int64_t span = (int64_t)v->nbins * v->width;
    size_t i, k, step;

    for (i = 0; i < v->nbins; i++) {
        double sum = 0;
        for (k = 0; k < RUNSTATS_SERIES; k++)
            sum += v->bins[i][k];
        if (sum > top)
            top = sum;
    }
    ymax = nice_ceiling(top > line * 1.05 ? top : line * 1.05);
    fprintf(out,
            "<figure><svg class=\"chart\" id=\"timeline-chart\" viewBox=\"0 0 %d %d\" "
            "role=\"img\" aria-label=\"attempts over time\">\n",
            CHART_W, CHART_H);
    /* the grid and the counts on the left */
    for (k = 0; k <= 4; k++) {
        double y = PLOT_Y1 - (PLOT_Y1 - PLOT_Y0) * (double)k / 4.0;
        fprintf(out,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d1d9e0\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
                PLOT_X0, PLOT_X1, y, y, PLOT_X0 - 6, y + 4);
        put_count(out, (uintmax_t)llround(ymax * (double)k / 4.0));
        fputs("</text>\n", out);
    }
    for (i = 0; i < v->nbins; i++) {
        double y = PLOT_Y1, x = PLOT_X0 + bw * (double)i;
        bool any = false;
        for (k = 0; k < RUNSTATS_SERIES; k++) {
            double h = (PLOT_Y1 - PLOT_Y0) * (double)v->bins[i][k] / ymax;
            if (v->bins[i][k] == 0)
                continue;
            if (!any)
                fputs("<g>", out);
            any = true;
            y -= h;
            fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>",
                    x, y, bw > 2 ? bw - 0.6 : bw, h, status_colour[series_status[k]]);
        }
        if (!any)
            continue;
        fputs("<title>", out);
        put_clock(out, v->base + (int64_t)i * v->width, span, v->width);
        for (k = 0; k < RUNSTATS_SERIES; k++)
            if (v->bins[i][k] > 0)
                fprintf(out, ", %s %u", series_label[k], (unsigned)v->bins[i][k]);
        fputs("</title></g>\n", out);
    }
    if (line > 0) {
        double y = PLOT_Y1 - (PLOT_Y1 - PLOT_Y0) * line / ymax;
        fprintf(out,
                "<line id=\"rate-line\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#1f2328\" stroke-dasharray=\"6 4\" stroke-width=\"1.5\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">configured rate</text>\n",
                PLOT_X0, PLOT_X1, y, y, PLOT_X1, y - 4);
    }
    /* about six times along the bottom */
    step = v->nbins > 6 ? (v->nbins + 5) / 6 : 1;
    for (i = 0; i < v->nbins; i += step) {
        double x = PLOT_X0 + bw * (double)i;
        fprintf(out,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#59636e\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">",
                x, x, PLOT_Y1, PLOT_Y1 + 5, x, PLOT_Y1 + 20, i == 0 ? "start" : "middle");
        put_clock(out, v->base + (int64_t)i * v->width, span, v->width);
        fputs("</text>\n", out);
    }
    fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#59636e\"/>\n</svg>\n",
            PLOT_X0, PLOT_X1, PLOT_Y1, PLOT_Y1);
    fputs("<ul class=\"legend\">", out);
    for (k = 0; k < RUNSTATS_SERIES; k++) {
        if (k == RUNSTATS_RENDERED && !dry)
            continue;
        if (k != RUNSTATS_RENDERED && dry)
            continue;
        fprintf(out, "<li style=\"--c:%s\">%s</li>", status_colour[series_status[k]],
                series_label[k]);
    }
    fputs("</ul>\n<figcaption>", out);
    fputs(dry ? "Messages rendered per " : "Delivery attempts per ", out);
    put_width(out, v->width);
    fputs(" (UTC)", out);
    if (!dry)
        fputs(", stacked by what each attempt came to", out);
    if (line > 0) {
        fprintf(out, "; dashed: the configured rate, %.6g a second (", rate);
        put_count(out, (uintmax_t)llround(line));
        fputs(" a bin)", out);
    }
    fputs(".</figcaption></figure>\n", out);
}

static bool stamp_of(const json_t *summary, const char *key, int64_t *out)
{
    const char *text = string_of(summary, key);
    struct timeutil_stamp st;

    if (text == NULL || timeutil_parse_rfc3339(text, &st) != 0)
        return false;
    *out = (int64_t)st.sec;
    return true;
}

/*
 * Attempts over time. A resumed campaign's report holds its earlier runs' attempts
 * too: when there are any, the chart shows this run (the summary's start to end, or
 * for a merged report the first shard's start to the last one's end), drawn at a
 * scale that fits it, and says what it leaves out.
 */
static int timeline_section(FILE *out, const struct htmlreport_input *in)
{
    const struct runstats_timeline *tl = &in->stats->timeline;
    struct runstats_timeline v;
    int64_t from = INT64_MIN, to = INT64_MAX;
    size_t outside;

    fputs("<section id=\"timeline\">\n<h2>Over time</h2>\n", out);
    if (stamp_of(in->summary, "start", &from) && stamp_of(in->summary, "end", &to)) {
        if (runstats_timeline_view(tl, from, to, TIMELINE_BINS, &v) < 0)
            return BLAST_ENOMEM;
        if (v.points == tl->points || v.points == 0) {
            /* nothing before this run (or nothing in it): the whole timeline */
            runstats_timeline_free(&v);
            from = INT64_MIN;
            to = INT64_MAX;
        }
    }
    if (from == INT64_MIN && runstats_timeline_view(tl, from, to, TIMELINE_BINS, &v) < 0)
        return BLAST_ENOMEM;
    if (v.nbins == 0) {
        fputs("<p class=\"none\">No attempt was made.</p>\n</section>\n", out);
        return 0;
    }
    timeline_chart(out, in, &v);
    outside = tl->points - v.points;
    if (outside > 0) {
        fputs("<p id=\"earlier-runs\">The chart shows this run. ", out);
        put_count(out, outside);
        fputs(outside == 1 ? " attempt" : " attempts", out);
        fputs(" of the campaign's other runs, from ", out);
        {
            time_t tt = (time_t)tl->base;
            struct tm tm;
            char text[40];
            gmtime_r(&tt, &tm);
            strftime(text, sizeof text, "%Y-%m-%d %H:%M", &tm);
            fputs(text, out);
        }
        fputs(" UTC on, ", out);
        fputs(outside == 1 ? "is" : "are", out);
        fputs(" counted everywhere else on this page.</p>\n", out);
    }
    runstats_timeline_free(&v);
    fputs("</section>\n", out);
    return 0;
}

/* ---- tables with bars ------------------------------------------------------------------ */

/* Busiest first, then by name, so that a page is the same for the same report. */
static int by_total(const void *a, const void *b)
{
    const struct countmap_entry *x = *(const struct countmap_entry *const *)a;
    const struct countmap_entry *y = *(const struct countmap_entry *const *)b;

    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* A stacked bar: one segment per status of counts, each as long as its share of scale. */
static void bar(FILE *out, const json_int_t *counts, json_int_t scale)
{
    double x = 0;
    size_t i;

    fputs("<svg class=\"bar\" viewBox=\"0 0 1000 14\" preserveAspectRatio=\"none\" "
          "aria-hidden=\"true\">",
          out);
    for (i = 0; i < OUTCOME_STATUS_COUNT; i++) {
        double w;
        if (counts[i] <= 0 || scale <= 0)
            continue;
        w = 1000.0 * (double)counts[i] / (double)scale;
        fprintf(out, "<rect x=\"%.2f\" width=\"%.2f\" height=\"14\" fill=\"%s\"><title>%s ", x, w,
                status_colour[i], outcome_status_name((enum outcome_status)i));
        put_count(out, (uintmax_t)counts[i]);
        fputs("</title></rect>", out);
        x += w;
    }
    fputs("</svg>", out);
}

static const enum outcome_status column_status[] = {OUTCOME_DELIVERED, OUTCOME_DEFERRED,
                                                    OUTCOME_FAILED, OUTCOME_UNKNOWN};
#define COLUMNS (sizeof column_status / sizeof column_status[0])

static void cells(FILE *out, const char *name, const char *cls, const json_int_t *counts,
                  json_int_t total, json_int_t scale)
{
    json_int_t known = 0;
    size_t i;

    fprintf(out, "<tr%s><td class=\"name\">", cls);
    put_text(out, name, NAME_CHARS);
    fputs("</td><td class=\"bar\">", out);
    bar(out, counts, scale);
    fputs("</td><td class=\"num\">", out);
    put_count(out, (uintmax_t)total);
    for (i = 0; i < COLUMNS; i++) {
        fputs("</td><td class=\"num\">", out);
        put_count(out, (uintmax_t)counts[column_status[i]]);
        known += counts[column_status[i]];
    }
    fputs("</td><td class=\"num\">", out);
    put_count(out, (uintmax_t)(total - known));
    fputs("</td></tr>\n", out);
}

/* map's names as a table of bars, busiest first: the first top rows and one for the rest. */
static int bar_table(FILE *out, const char *id, const char *title, const char *noun,
                     const char *plural, const struct countmap *map, size_t top)
{
    size_t n = countmap_size(map), i, k, shown;
    const struct countmap_entry **rows;
    json_int_t rest[OUTCOME_STATUS_COUNT] = {0}, rest_total = 0;

    fprintf(out, "<section id=\"%s\">\n<h2>%s</h2>\n", id, title);
    if (n == 0) {
        fprintf(out, "<p class=\"none\">No %s.</p>\n</section>\n", plural);
        return 0;
    }
    if ((rows = calloc(n, sizeof *rows)) == NULL)
        return BLAST_ENOMEM;
    for (k = 0; k < n; k++)
        rows[k] = countmap_at(map, k);
    qsort(rows, n, sizeof *rows, by_total);
    shown = n > top ? top : n;
    /* shares, not volumes: a small domain that struggled shows as plainly as a big one */
    if (shown < n)
        fprintf(out, "<p>The busiest %s by what became of their recipients", plural);
    else
        fprintf(out, "<p>%c%s by what became of their recipients", plural[0] - 'a' + 'A',
                plural + 1);
    if (shown < n)
        fprintf(out, " (%zu of %zu)", shown, n);
    fputs("; each bar is one row's recipients.</p>\n", out);
    fprintf(out,
            "<div class=\"scroll\"><table>\n<tr><th>%s</th><th></th><th class=\"num\">total"
            "</th><th class=\"num\">delivered</th><th class=\"num\">deferred</th><th "
            "class=\"num\">failed</th><th class=\"num\">unknown</th><th "
            "class=\"num\">other</th></tr>\n",
            noun);
    for (k = 0; k < n; k++) {
        json_int_t c[OUTCOME_STATUS_COUNT];
        for (i = 0; i < OUTCOME_STATUS_COUNT; i++)
            c[i] = (json_int_t)rows[k]->counts[i];
        if (k < shown) {
            cells(out, rows[k]->name, "", c, (json_int_t)rows[k]->total,
                  (json_int_t)rows[k]->total);
            continue;
        }
        for (i = 0; i < OUTCOME_STATUS_COUNT; i++)
            rest[i] += c[i];
        rest_total += (json_int_t)rows[k]->total;
    }
    if (shown < n) {
        char label[64];
        snprintf(label, sizeof label, "%zu other %s", n - shown, plural);
        cells(out, label, " class=\"rest\"", rest, rest_total, rest_total);
    }
    fputs("</table></div>\n</section>\n", out);
    free(rows);
    return 0;
}

/* ---- failures, retries, bounces, security ------------------------------------------------ */

static int failures_section(FILE *out, const struct runstats *s)
{
    json_t *top, *v;
    size_t k;
    json_int_t listed = 0, failures = 0;

    fputs("<section id=\"failures\">\n<h2>Failure reasons</h2>\n", out);
    failures = (json_int_t)(s->tally.counts[OUTCOME_FAILED] + s->tally.counts[OUTCOME_DEFERRED] +
                            s->tally.counts[OUTCOME_UNKNOWN] + s->tally.counts[OUTCOME_INVALID]);
    if (failures == 0) {
        fputs("<p class=\"none\">No recipient failed, was deferred, unknown or "
              "invalid.</p>\n</section>\n",
              out);
        return 0;
    }
    if ((top = report_tally_top_failures(&s->tally)) == NULL)
        return BLAST_ENOMEM;
    fputs("<p>Failed, deferred, unknown and invalid recipients by reason, most frequent "
          "first (what is inside angle brackets is left out, so one cause is one line).</p>\n"
          "<div class=\"scroll\"><table>\n<tr><th class=\"num\">recipients</th><th>status"
          "</th><th>code</th><th>reason</th></tr>\n",
          out);
    json_array_foreach(top, k, v)
    {
        json_int_t c = json_integer_value(json_object_get(v, "count"));
        const char *status = string_of(v, "status");
        int st = status != NULL ? outcome_status_parse(status) : -1;
        listed += c;
        fputs("<tr class=\"reason\"><td class=\"num\">", out);
        put_count(out, (uintmax_t)c);
        fprintf(out, "</td><td><span style=\"color:%s\">&#9632;</span> ",
                st >= 0 ? status_colour[st] : "#000");
        put_text(out, status, 20);
        fputs("</td><td>", out);
        if (json_is_integer(json_object_get(v, "code")))
            fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(v, "code")));
        if (string_of(v, "enhanced_code") != NULL) {
            fputc(' ', out);
            put_text(out, string_of(v, "enhanced_code"), 16);
        }
        fputs("</td><td class=\"reason\">", out);
        put_text(out, string_of(v, "reason"), REASON_CHARS);
        fputs("</td></tr>\n", out);
    }
    json_decref(top);
    if (failures > listed) {
        fputs("<tr class=\"rest\"><td class=\"num\">", out);
        put_count(out, (uintmax_t)(failures - listed));
        fputs("</td><td></td><td></td><td>other reasons</td></tr>\n", out);
    }
    fputs("</table></div>\n</section>\n", out);
    return 0;
}

/* A table of a few labelled counts, each with a bar as long as its share of the most. */
static void count_rows(FILE *out, const char *const *labels, const size_t *counts, size_t n,
                       const char *colour)
{
    size_t most = 0, i;

    for (i = 0; i < n; i++)
        if (counts[i] > most)
            most = counts[i];
    for (i = 0; i < n; i++) {
        fputs("<tr><td>", out);
        fputs(labels[i], out);
        fputs("</td><td class=\"num\">", out);
        put_count(out, counts[i]);
        fputs("</td><td class=\"bar\"><svg class=\"bar\" viewBox=\"0 0 1000 14\" "
              "preserveAspectRatio=\"none\" aria-hidden=\"true\">",
              out);
        if (counts[i] > 0)
            fprintf(out, "<rect width=\"%.2f\" height=\"14\" fill=\"%s\"/>",
                    1000.0 * (double)counts[i] / (double)most, colour);
        fputs("</svg></td></tr>\n", out);
    }
}

static void retries_section(FILE *out, const struct runstats *s)
{
    static const char *const attempt_labels[RUNSTATS_ATTEMPT_BUCKETS] = {
        "none", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10 or more",
    };
    size_t last = RUNSTATS_ATTEMPT_BUCKETS;

    fputs("<section id=\"retries\">\n<h2>Retries</h2>\n", out);
    if (s->tally.entries == 0) {
        fputs("<p class=\"none\">No recipients.</p>\n</section>\n", out);
        return;
    }
    size_t first = s->attempts[0] > 0 ? 0 : 1, lat = RUNSTATS_LATENCY_BUCKETS;

    /* no rows past the largest count of attempts seen, nor "none yet" when all were tried */
    while (last > 2 && s->attempts[last - 1] == 0)
        last--;
    while (lat > 1 && s->latency[lat - 1] == 0)
        lat--;
    fputs("<h3>Attempts per recipient</h3>\n<div class=\"scroll\"><table id=\"attempts\">\n"
          "<tr><th>attempts</th><th class=\"num\">recipients</th><th></th></tr>\n",
          out);
    count_rows(out, attempt_labels + first, s->attempts + first, last - first, "#1565c0");
    fputs("</table></div>\n<h3>From the first attempt to the final outcome</h3>\n", out);
    if (s->final == 0) {
        fputs("<p class=\"none\">No recipient reached a final outcome by an attempt.</p>\n", out);
    } else {
        fputs("<div class=\"scroll\"><table id=\"latency\">\n<tr><th>time</th><th "
              "class=\"num\">recipients</th><th></th></tr>\n",
              out);
        count_rows(out, runstats_latency_names, s->latency, lat, "#2e7d32");
        fputs("</table></div>\n", out);
    }
    fputs("</section>\n", out);
}

struct key_count {
    const char *key;
    json_int_t count;
};

static int by_count(const void *a, const void *b)
{
    const struct key_count *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* A bounded key table (runstats_keys), most frequent first; split: "class rule" keys. */
static int keys_table(FILE *out, const char *id, const char *head, const char *noun,
                      const struct runstats_keys *k, bool split)
{
    size_t n = json_object_size(k->counts), i = 0;
    struct key_count *v;
    const char *key;
    json_t *c;

    if ((v = calloc(n > 0 ? n : 1, sizeof *v)) == NULL)
        return BLAST_ENOMEM;
    json_object_foreach(k->counts, key, c) v[i++] = (struct key_count){key, json_integer_value(c)};
    qsort(v, n, sizeof *v, by_count);
    fprintf(out, "<div class=\"scroll\"><table id=\"%s\">\n<tr>%s<th class=\"num\">%s</th></tr>\n",
            id, head, noun);
    for (i = 0; i < n; i++) {
        fputs("<tr>", out);
        if (split) {
            const char *sp = strchr(v[i].key, ' ');
            size_t len = sp != NULL ? (size_t)(sp - v[i].key) : strlen(v[i].key);
            char cls[32];
            snprintf(cls, sizeof cls, "%.*s", (int)(len < sizeof cls ? len : sizeof cls - 1),
                     v[i].key);
            fputs("<td>", out);
            put_text(out, cls, 20);
            fputs("</td><td><code>", out);
            put_text(out, sp != NULL && sp[1] != '\0' ? sp + 1 : "(none)", NAME_CHARS);
            fputs("</code></td>", out);
        } else {
            fputs("<td>", out);
            put_text(out, v[i].key, NAME_CHARS);
            fputs("</td>", out);
        }
        fputs("<td class=\"num\">", out);
        put_count(out, (uintmax_t)v[i].count);
        fputs("</td></tr>\n", out);
    }
    if (k->other > 0) {
        fprintf(out, "<tr class=\"rest\"><td%s>others</td><td class=\"num\">",
                split ? " colspan=\"2\"" : "");
        put_count(out, k->other);
        fputs("</td></tr>\n", out);
    }
    fputs("</table></div>\n", out);
    free(v);
    return 0;
}

static int bounces_section(FILE *out, const struct htmlreport_input *in)
{
    const struct runstats *s = in->stats;
    int rc = 0;

    fputs("<section id=\"bounces\">\n<h2>Bounces and complaints</h2>\n", out);
    if (json_object_size(s->bounces.counts) == 0 && s->bounces.other == 0) {
        if (json_is_string(json_object_get(in->campaign, "suppression_db")))
            fputs("<p class=\"none\">None came back, as far as the campaign's suppression "
                  "database knows (<code>blast bounces</code> fills it).</p>\n",
                  out);
        else
            fputs("<p class=\"none\">None recorded: the campaign has no suppression database "
                  "to learn them from.</p>\n",
                  out);
    } else {
        fputs("<p>What came back after a relay accepted the message, by class and the rule "
              "that classified it (docs/bounces.md).</p>\n",
              out);
        rc = keys_table(out, "bounce-rules", "<th>class</th><th>rule</th>", "recipients",
                        &s->bounces, true);
    }
    fputs("</section>\n", out);
    return rc;
}

static int security_section(FILE *out, const struct htmlreport_input *in)
{
    const struct runstats *s = in->stats;
    json_t *dkim = json_object_get(in->campaign, "dkim"), *v;
    size_t i;
    int rc;

    fputs("<section id=\"security\">\n<h2>DKIM and TLS</h2>\n<h3>DKIM signatures</h3>\n", out);
    if (!json_is_array(dkim))
        fputs("<p class=\"none\">This report does not say how its messages were signed.</p>\n",
              out);
    else if (json_array_size(dkim) == 0)
        fputs("<p id=\"dkim-none\">Messages were not DKIM-signed.</p>\n", out);
    else {
        fputs("<div class=\"scroll\"><table id=\"dkim\">\n<tr><th>domain (d=)</th><th>selector "
              "(s=)</th><th>algorithm (a=)</th></tr>\n",
              out);
        json_array_foreach(dkim, i, v)
        {
            fputs("<tr><td>", out);
            put_text(out, string_of(v, "domain"), NAME_CHARS);
            fputs("</td><td>", out);
            put_text(out, string_of(v, "selector"), NAME_CHARS);
            fputs("</td><td>", out);
            put_text(out, string_of(v, "algorithm"), 40);
            fputs("</td></tr>\n", out);
        }
        fputs("</table></div>\n", out);
    }
    fputs("<h3>TLS</h3>\n", out);
    if (s->tls_attempts + s->plain_attempts == 0) {
        fputs("<p class=\"none\">No session reached a relay's commands.</p>\n</section>\n", out);
        return 0;
    }
    fputs("<p id=\"tls-share\">", out);
    put_count(out, s->tls_attempts);
    fputs(" attempts over TLS, ", out);
    put_count(out, s->plain_attempts);
    fputs(" without.</p>\n", out);
    if (s->tls_attempts > 0) {
        if ((rc = keys_table(out, "tls-versions", "<th>version</th>", "attempts", &s->tls_versions,
                             false)) < 0 ||
            (rc = keys_table(out, "tls-ciphers", "<th>cipher</th>", "attempts", &s->ciphers,
                             false)) < 0)
            return rc;
    }
    fputs("</section>\n", out);
    return 0;
}

static void footer(FILE *out, const struct htmlreport_input *in)
{
    fputs("<footer>\n<p id=\"rows\">This page shows totals only. ", out);
    if (in->csv_href != NULL) {
        fputs("Every recipient's row: <a href=\"", out);
        htmlreport_escape(out, in->csv_href, 0);
        fputs("\">", out);
        htmlreport_escape(out, in->csv_href, 200);
        fputs("</a>", out);
        if (in->csv_command != NULL) {
            fputs(", written by <code>", out);
            htmlreport_escape(out, in->csv_command, 400);
            fputs("</code>", out);
        }
        fputs(".", out);
    } else if (in->csv_command != NULL) {
        fputs("Every recipient's row: <code>", out);
        htmlreport_escape(out, in->csv_command, 400);
        fputs("</code>.", out);
    }
    fputs("</p>\n<p>From ", out);
    put_text(out, in->source != NULL ? in->source : "a report", 300);
    if (in->generator != NULL) {
        fputs(", by ", out);
        htmlreport_escape(out, in->generator, 100);
    }
    fputs(". Times are UTC.</p>\n</footer>\n", out);
}

int htmlreport_write(FILE *out, const char *out_name, const struct htmlreport_input *in,
                     struct blast_error *err)
{
    const char *name = string_of(in->campaign, "name");
    int rc;

    head(out, in, name);
    fputs("<header>\n<h1 id=\"title\">", out);
    put_text(out, name != NULL ? name : "(a campaign without a name)", 200);
    fputs("</h1>\n<p class=\"sub\">Delivery report", out);
    if (json_is_true(json_object_get(in->campaign, "dry_run")))
        fputs(" of a dry run", out);
    if (string_of(in->summary, "end") != NULL) {
        fputs(", ", out);
        put_text(out, string_of(in->summary, "end"), 40);
    }
    fputs("</p>\n</header>\n<main>\n", out);
    outcome_section(out, in);
    run_section(out, in);
    if ((rc = timeline_section(out, in)) < 0 ||
        (rc = bar_table(out, "domains", "Recipient domains", "domain", "domains",
                        in->stats->tally.by_domain, TOP_DOMAINS)) < 0 ||
        (rc = bar_table(out, "relays", "Relays", "relay", "relays", in->stats->tally.by_relay,
                        TOP_RELAYS)) < 0 ||
        (rc = failures_section(out, in->stats)) < 0)
        goto fail;
    retries_section(out, in->stats);
    if ((rc = bounces_section(out, in)) < 0 || (rc = security_section(out, in)) < 0)
        goto fail;
    fputs("</main>\n", out);
    footer(out, in);
    fputs("</body>\n</html>\n", out);
    if (fflush(out) != 0 || ferror(out))
        return blast_error_set(err, BLAST_EIO, out_name, 0, 0, "cannot write the page");
    return 0;
fail:
    return blast_error_set(err, rc, NULL, 0, 0, "out of memory");
}
