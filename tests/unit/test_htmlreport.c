/*
 * test_htmlreport - the report page's counting (runstats: a timeline that widens its
 * bins exactly and stays bounded, attempts, time to the final outcome, TLS, bounces)
 * and its writing (htmlreport: escaping of whatever the report holds, the sections
 * of an empty, a dry-run and a sent campaign).
 */
#include "../../core/htmlreport.h"
#include "../../core/runstats.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *escaped(const char *s, size_t max)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    htmlreport_escape(f, s, max);
    fclose(f);
    return buf;
}

Test(htmlreport, escapes_markup_and_quotes)
{
    char *s = escaped("<script>alert(\"x\")</script> & 'y'", 0);
    cr_assert_str_eq(s, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
    free(s);
}

Test(htmlreport, replaces_controls_and_bad_utf8)
{
    /* a tab, an escape, DEL, a C1 control (U+0085), a lone continuation byte, an
       overlong slash, a surrogate */
    char *s = escaped("a\tb\x1b\x7f\xc2\x85\x80\xc0\xaf\xed\xa0\x80z", 0);
    char want[64] = "a\xef\xbf\xbd"
                    "b";
    for (int i = 0; i < 9; i++)
        strcat(want, "\xef\xbf\xbd");
    strcat(want, "z");
    cr_assert_str_eq(s, want);
    free(s);
}

Test(htmlreport, keeps_utf8_and_cuts_by_characters)
{
    /* Hebrew and an emoji pass through; the cut counts characters, not bytes */
    char *s = escaped("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xf0\x9f\x93\xa7!", 0);
    cr_assert_str_eq(s, "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xf0\x9f\x93\xa7!");
    free(s);
    s = escaped("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", 2);
    cr_assert_str_eq(s, "\xd7\xa9\xd7\x9c\xe2\x80\xa6");
    free(s);
    s = escaped("abc", 3);
    cr_assert_str_eq(s, "abc");
    free(s);
}

Test(runstats, timeline_starts_at_one_second)
{
    struct runstats_timeline tl = {0};

    cr_assert_eq(runstats_timeline_add(&tl, 1000, RUNSTATS_DELIVERED), 0);
    cr_assert_eq(runstats_timeline_add(&tl, 1002, RUNSTATS_FAILED), 0);
    cr_assert_eq(runstats_timeline_add(&tl, 999, RUNSTATS_DELIVERED), 0);
    cr_assert_eq(tl.width, 1);
    cr_assert_eq(tl.base, 999);
    cr_assert_eq(tl.nbins, 4);
    cr_assert_eq(tl.bins[0][RUNSTATS_DELIVERED], 1);
    cr_assert_eq(tl.bins[1][RUNSTATS_DELIVERED], 1);
    cr_assert_eq(tl.bins[3][RUNSTATS_FAILED], 1);
    cr_assert_eq(tl.points, 3);
    runstats_timeline_free(&tl);
}

/* Whatever the span, the bins stay bounded and every count is kept. */
Test(runstats, timeline_widens_exactly_and_stays_bounded)
{
    struct runstats_timeline tl = {0}, v;
    uint64_t sum = 0;
    size_t i, k;
    int64_t t0 = 1764950400; /* 2025-12-05T16:00:00Z */

    for (i = 0; i < 20000; i++)
        cr_assert_eq(runstats_timeline_add(&tl, t0 + (int64_t)i * 7, (enum runstats_series)(i % 4)),
                     0);
    /* a resumed campaign: another run ten days later */
    for (i = 0; i < 500; i++)
        cr_assert_eq(runstats_timeline_add(&tl, t0 + 10 * 86400 + (int64_t)i, RUNSTATS_DEFERRED),
                     0);
    cr_assert_leq(tl.nbins, RUNSTATS_MAX_BINS);
    cr_assert_eq(tl.base % tl.width, 0);
    for (i = 0; i < tl.nbins; i++)
        for (k = 0; k < RUNSTATS_SERIES; k++)
            sum += tl.bins[i][k];
    cr_assert_eq(sum, 20500);
    cr_assert_eq(tl.points, 20500);

    cr_assert_eq(runstats_timeline_view(&tl, INT64_MIN, INT64_MAX, 120, &v), 0);
    cr_assert_leq(v.nbins, 120);
    cr_assert_eq(v.width % tl.width, 0);
    cr_assert_eq(v.base % v.width, 0);
    cr_assert_leq(v.base, t0);
    cr_assert_geq(v.base + (int64_t)v.nbins * v.width, t0 + 10 * 86400 + 500);
    for (sum = 0, i = 0; i < v.nbins; i++)
        for (k = 0; k < RUNSTATS_SERIES; k++)
            sum += v.bins[i][k];
    cr_assert_eq(sum, 20500);
    runstats_timeline_free(&v);
    runstats_timeline_free(&tl);
}

/* A short run is drawn by the second; a view trims the empty ends. */
Test(runstats, view_of_a_short_run)
{
    struct runstats_timeline tl = {0}, v;

    cr_assert_eq(runstats_timeline_add(&tl, 5000, RUNSTATS_DELIVERED), 0);
    cr_assert_eq(runstats_timeline_add(&tl, 5030, RUNSTATS_DELIVERED), 0);
    cr_assert_eq(runstats_timeline_view(&tl, INT64_MIN, INT64_MAX, 120, &v), 0);
    cr_assert_eq(v.width, 1);
    cr_assert_eq(v.nbins, 31);
    cr_assert_eq(v.base, 5000);
    runstats_timeline_free(&v);
    cr_assert_eq(runstats_timeline_view(&tl, INT64_MIN, INT64_MAX, 10, &v), 0);
    cr_assert_eq(v.width, 10);
    cr_assert_eq(v.nbins, 4); /* 5000..5039 */
    runstats_timeline_free(&v);
    /* a window: the last run only */
    cr_assert_eq(runstats_timeline_add(&tl, 9000, RUNSTATS_FAILED), 0);
    cr_assert_eq(runstats_timeline_view(&tl, 5020, 9000, 120, &v), 0);
    cr_assert_eq(v.points, 2);
    cr_assert_eq(v.width, 60);
    cr_assert_eq(v.base, 4980); /* 5030 in a bin aligned to the minute */
    runstats_timeline_free(&v);
    cr_assert_eq(runstats_timeline_view(&tl, 6000, 7000, 120, &v), 0);
    cr_assert_eq(v.nbins, 0);
    runstats_timeline_free(&tl);
    memset(&tl, 0, sizeof tl);
    cr_assert_eq(runstats_timeline_view(&tl, INT64_MIN, INT64_MAX, 10, &v), 0);
    cr_assert_eq(v.nbins, 0);
}

static void attempt(struct outcome *o, time_t when, enum outcome_status st, const char *tls)
{
    struct outcome_attempt a;

    memset(&a, 0, sizeof a);
    a.time.sec = when;
    a.status = st;
    a.step = SMTP_END_OF_DATA;
    snprintf(a.tls, sizeof a.tls, "%s", tls);
    if (tls[0] != '\0')
        snprintf(a.cipher, sizeof a.cipher, "TLS_AES_256_GCM_SHA384");
    cr_assert_eq(outcome_add_attempt(o, &a), 0);
}

Test(runstats, counts_attempts_latency_tls_and_bounces)
{
    struct runstats s;
    struct outcome o;

    cr_assert_eq(runstats_init(&s), 0);
    /* deferred twice, then delivered 20 minutes after the first attempt, over TLS */
    outcome_init(&o);
    o.row = 1;
    cr_assert_eq(outcome_set(&o.email, "a@Example.COM"), 0);
    o.status = OUTCOME_DELIVERED;
    o.attempts = 3;
    o.first.sec = 100000;
    o.last.sec = 100000 + 1200;
    attempt(&o, 100000, OUTCOME_DEFERRED, "TLSv1.3");
    attempt(&o, 100600, OUTCOME_DEFERRED, "TLSv1.3");
    attempt(&o, 101200, OUTCOME_DELIVERED, "TLSv1.2");
    cr_assert_eq(runstats_add(&s, &o), 0);
    outcome_free(&o);
    /* delivered at once without TLS, and later bounced */
    outcome_init(&o);
    o.row = 2;
    cr_assert_eq(outcome_set(&o.email, "b@example.org"), 0);
    o.status = OUTCOME_BOUNCED;
    o.attempts = 1;
    o.first.sec = o.last.sec = 100010;
    attempt(&o, 100010, OUTCOME_DELIVERED, "");
    o.bounce.set = true;
    snprintf(o.bounce.class_, sizeof o.bounce.class_, "hard");
    cr_assert_eq(outcome_set(&o.bounce.rule, "dsn-5.1.1"), 0);
    cr_assert_eq(runstats_add(&s, &o), 0);
    outcome_free(&o);
    /* suppressed: never tried */
    outcome_init(&o);
    o.row = 3;
    cr_assert_eq(outcome_set(&o.email, "c@example.org"), 0);
    o.status = OUTCOME_SUPPRESSED;
    cr_assert_eq(runstats_add(&s, &o), 0);
    outcome_free(&o);

    cr_assert_eq(s.tally.entries, 3);
    cr_assert_eq(s.attempts[0], 1);
    cr_assert_eq(s.attempts[1], 1);
    cr_assert_eq(s.attempts[3], 1);
    cr_assert_eq(s.final, 2);
    cr_assert_eq(s.latency[0], 1); /* under a second */
    cr_assert_eq(s.latency[3], 1); /* 10 min to 1 h */
    cr_assert_eq(s.timeline.points, 4);
    cr_assert_eq(s.tls_attempts, 3);
    cr_assert_eq(s.plain_attempts, 1);
    cr_assert_eq(json_integer_value(json_object_get(s.tls_versions.counts, "TLSv1.3")), 2);
    cr_assert_eq(json_integer_value(json_object_get(s.tls_versions.counts, "TLSv1.2")), 1);
    cr_assert_eq(json_integer_value(json_object_get(s.bounces.counts, "hard dsn-5.1.1")), 1);
    cr_assert_not_null(countmap_get(s.tally.by_domain, "example.com"));
    runstats_free(&s);
}

/* Past RUNSTATS_MAX_KEYS distinct ciphers, the rest are counted, not kept. */
Test(runstats, key_tables_are_bounded)
{
    struct runstats s;
    struct outcome o;
    size_t i;

    cr_assert_eq(runstats_init(&s), 0);
    for (i = 0; i < RUNSTATS_MAX_KEYS + 50; i++) {
        struct outcome_attempt a;
        outcome_init(&o);
        o.status = OUTCOME_DELIVERED;
        o.attempts = 1;
        memset(&a, 0, sizeof a);
        a.time.sec = 1000;
        a.status = OUTCOME_DELIVERED;
        a.step = SMTP_END_OF_DATA;
        snprintf(a.tls, sizeof a.tls, "TLSv1.3");
        snprintf(a.cipher, sizeof a.cipher, "CIPHER-%zu", i);
        cr_assert_eq(outcome_add_attempt(&o, &a), 0);
        cr_assert_eq(runstats_add(&s, &o), 0);
        outcome_free(&o);
    }
    cr_assert_eq(json_object_size(s.ciphers.counts), RUNSTATS_MAX_KEYS);
    cr_assert_eq(s.ciphers.other, 50);
    runstats_free(&s);
}

/* ---- the page --------------------------------------------------------------------------- */

static char *page(const struct runstats *s, json_t *campaign, json_t *summary)
{
    struct htmlreport_input in = {0};
    struct blast_error err;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    blast_error_clear(&err);
    in.source = "r.json";
    in.csv_href = "r.csv";
    in.csv_command = "blast report r.json --format csv > r.csv";
    in.generator = "blast test";
    in.campaign = campaign;
    in.summary = summary;
    in.stats = s;
    cr_assert_eq(htmlreport_write(f, "memory", &in, &err), 0, "%s", err.text);
    fclose(f);
    return buf;
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

Test(htmlreport, empty_campaign)
{
    struct runstats s;
    json_t *c = json_pack("{s:s, s:b}", "name", "empty", "dry_run", 0);
    char *html;

    cr_assert_eq(runstats_init(&s), 0);
    html = page(&s, c, NULL);
    cr_assert_not_null(strstr(html, "<!DOCTYPE html>"));
    cr_assert_not_null(strstr(html, "This report has no recipients"));
    cr_assert_not_null(strstr(html, "No attempt was made."));
    cr_assert_not_null(strstr(html, "No domains."));
    cr_assert_not_null(strstr(html, "</html>\n"));
    /* every section once */
    cr_assert_eq(occurrences(html, "<section id="), 9);
    cr_assert_null(strstr(html, "<script"));
    free(html);
    json_decref(c);
    runstats_free(&s);
}

Test(htmlreport, hostile_values_stay_text)
{
    struct runstats s;
    struct outcome o;
    json_t *c =
        json_pack("{s:s, s:b, s:[{s:s, s:s, s:s}]}", "name", "<script>document.title='x'</script>",
                  "dry_run", 0, "dkim", "domain", "\"><img src=x onerror=alert(1)>", "selector",
                  "s1", "algorithm", "rsa-sha256");
    json_t *sum = json_pack("{s:s, s:s}", "start", "<marquee>", "end", "</style><script>");
    char *html;

    cr_assert_eq(runstats_init(&s), 0);
    outcome_init(&o);
    o.status = OUTCOME_FAILED;
    o.attempts = 1;
    o.code = 550;
    cr_assert_eq(outcome_set(&o.email, "x@<script>.example"), 0);
    cr_assert_eq(outcome_set(&o.relay, "relay\"<iframe>"), 0);
    cr_assert_eq(outcome_set(&o.reply, "<script>alert(1)</script> \xe2\x80\xae"
                                       "txet"),
                 0);
    cr_assert_eq(runstats_add(&s, &o), 0);
    outcome_free(&o);
    html = page(&s, c, sum);
    cr_assert_null(strstr(html, "<script"));
    cr_assert_null(strstr(html, "<img"));
    cr_assert_null(strstr(html, "<iframe"));
    cr_assert_null(strstr(html, "<marquee"));
    cr_assert_not_null(strstr(html, "&lt;script&gt;document.title=&#39;x&#39;&lt;/script&gt;"));
    /* right-to-left text is isolated */
    cr_assert_not_null(strstr(html, "<bdi>550 &lt;&gt;alert(1)&lt;&gt; \xe2\x80\xae"
                                    "txet</bdi>"));
    free(html);
    json_decref(c);
    json_decref(sum);
    runstats_free(&s);
}
