/*
 * Unit tests for core/outcome: the status names, the record's ownership, its JSON
 * form written by hand (the same text jansson's compact dump gives), and reading it
 * back, from a tape and from a jansson tree alike.
 */
#include "../../core/jsontape.h"
#include "../../core/outcome.h"
#include "../../core/text.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void set_ok(char **field, const char *s)
{
    cr_assert_eq(outcome_set(field, s), 0);
}

/* A delivered recipient after a deferral: every field set, two attempts. */
static void sample(struct outcome *o)
{
    struct outcome_attempt a;

    outcome_init(o);
    o->row = 42;
    o->status = OUTCOME_DELIVERED;
    o->step = SMTP_END_OF_DATA;
    o->code = 250;
    snprintf(o->enhanced, sizeof o->enhanced, "2.0.0");
    set_ok(&o->email, "Ada.Lovelace@Example.com");
    set_ok(&o->reply, "Ok: queued as 3F2A1");
    set_ok(&o->relay, "primary");
    set_ok(&o->message_id, "<42.x@acme.example>");
    set_ok(&o->queue_id, "3F2A1");
    o->attempts = 2;
    o->size = 4321;
    o->first = (struct timeutil_stamp){1764000000, 123000};
    o->last = (struct timeutil_stamp){1764000090, 456000};

    memset(&a, 0, sizeof a);
    a.time = o->first;
    a.status = OUTCOME_DEFERRED;
    a.step = SMTP_RCPT;
    a.code = 451;
    snprintf(a.enhanced, sizeof a.enhanced, "4.7.1");
    a.port = 587;
    snprintf(a.tls, sizeof a.tls, "TLSv1.3");
    snprintf(a.cipher, sizeof a.cipher, "TLS_AES_256_GCM_SHA384");
    a.relay = (char *)"primary";
    a.host = (char *)"smtp.example.net";
    a.reply = (char *)"greylisted, try again";
    cr_assert_eq(outcome_add_attempt(o, &a), 0);

    memset(&a, 0, sizeof a);
    a.time = o->last;
    a.status = OUTCOME_DELIVERED;
    a.step = SMTP_END_OF_DATA;
    a.code = 250;
    snprintf(a.enhanced, sizeof a.enhanced, "2.0.0");
    a.port = 587;
    a.relay = (char *)"primary";
    a.host = (char *)"smtp.example.net";
    a.reply = (char *)"Ok: queued as 3F2A1";
    a.queue_id = (char *)"3F2A1";
    cr_assert_eq(outcome_add_attempt(o, &a), 0);
}

static char *format(const struct outcome *o, bool journal)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(outcome_format_json(o, journal, &b), 0);
    return buf_steal(&b);
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);

    cr_assert_not_null(v, "%s: %s", jerr.text, text);
    return v;
}

Test(outcome, every_status_has_a_name_that_parses_back)
{
    int i;

    for (i = 0; i < OUTCOME_STATUS_COUNT; i++) {
        const char *name = outcome_status_name((enum outcome_status)i);
        cr_assert_str_neq(name, "?");
        cr_assert_eq(outcome_status_parse(name), i, "%s", name);
    }
    cr_assert_str_eq(outcome_status_name(OUTCOME_DELIVERED), "delivered");
    cr_assert_str_eq(outcome_status_name(OUTCOME_RENDERED), "rendered");
    cr_assert_str_eq(outcome_status_name(OUTCOME_STATUS_COUNT), "?");
    cr_assert_eq(outcome_status_parse("opened"), -1);
    cr_assert_str_eq(outcome_status_name(OUTCOME_BOUNCED), "bounced");
    cr_assert_str_eq(outcome_status_name(OUTCOME_COMPLAINED), "complained");
    cr_assert_eq(outcome_status_parse(NULL), -1);
}

Test(outcome, final_statuses_are_those_never_sent_again)
{
    cr_assert(outcome_status_final(OUTCOME_DELIVERED));
    cr_assert(outcome_status_final(OUTCOME_FAILED));
    cr_assert(outcome_status_final(OUTCOME_INVALID));
    cr_assert(outcome_status_final(OUTCOME_DUPLICATE));
    cr_assert(outcome_status_final(OUTCOME_SUPPRESSED));
    cr_assert_not(outcome_status_final(OUTCOME_DEFERRED));
    cr_assert_not(outcome_status_final(OUTCOME_UNKNOWN));
    cr_assert_not(outcome_status_final(OUTCOME_RENDERED));
}

Test(outcome, smtp_outcomes_map_to_statuses)
{
    cr_assert_eq(outcome_of_smtp(SMTP_OUTCOME_DELIVERED), OUTCOME_DELIVERED);
    cr_assert_eq(outcome_of_smtp(SMTP_OUTCOME_FAILED), OUTCOME_FAILED);
    cr_assert_eq(outcome_of_smtp(SMTP_OUTCOME_UNKNOWN), OUTCOME_UNKNOWN);
    cr_assert_eq(outcome_of_smtp(SMTP_OUTCOME_DEFERRED), OUTCOME_DEFERRED);
    cr_assert_eq(outcome_of_smtp(SMTP_OUTCOME_NONE), OUTCOME_DEFERRED);
}

/* The hand-written text is byte for byte what jansson dumps for the same object. */
Test(outcome, format_is_what_jansson_would_write)
{
    struct outcome o;
    char *text, *again;
    json_t *v;

    sample(&o);
    text = format(&o, false);
    v = parse(text);
    again = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert_str_eq(text, again);
    cr_assert_str_eq(json_string_value(json_object_get(v, "status")), "delivered");
    cr_assert_str_eq(json_string_value(json_object_get(v, "step")), "end of data");
    cr_assert_str_eq(json_string_value(json_object_get(v, "first_attempt")),
                     "2025-11-24T16:00:00.123Z");
    cr_assert_eq(json_array_size(json_object_get(v, "history")), 2);
    free(again);
    free(text);
    json_decref(v);
    outcome_free(&o);
}

Test(outcome, report_key_order)
{
    static const char *const keys[] = {"email",         "row",           "status",       "code",
                                       "enhanced_code", "reply",         "step",         "detail",
                                       "relay",         "attempts",      "message_id",   "queue_id",
                                       "size",          "first_attempt", "last_attempt", "history"};
    struct outcome o;
    char *text;
    const char *at;
    size_t i;

    sample(&o);
    text = format(&o, false);
    at = text;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char quoted[40];
        snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
        at = strstr(at, quoted);
        cr_assert_not_null(at, "%s in order in %s", keys[i], text);
    }
    free(text);
    outcome_free(&o);
}

Test(outcome, journal_form_starts_with_its_type)
{
    struct outcome o;
    char *text;

    sample(&o);
    text = format(&o, true);
    cr_assert_eq(strncmp(text, "{\"t\":\"result\",\"email\":", 22), 0, "%s", text);
    free(text);
    outcome_free(&o);
}

Test(outcome, empty_fields_are_null)
{
    struct outcome o;
    char *text;

    outcome_init(&o);
    o.row = 3;
    o.status = OUTCOME_INVALID;
    set_ok(&o.detail, "invalid address");
    text = format(&o, false);
    cr_assert_str_eq(text, "{\"email\":null,\"row\":3,\"status\":\"invalid\",\"code\":null,"
                           "\"enhanced_code\":null,\"reply\":null,\"step\":null,\"detail\":"
                           "\"invalid address\",\"relay\":null,\"attempts\":0,\"message_id\":null,"
                           "\"queue_id\":null,\"size\":null,\"first_attempt\":null,"
                           "\"last_attempt\":null,\"history\":[]}");
    free(text);
    outcome_free(&o);
}

Test(outcome, strings_are_escaped_as_jansson_escapes_them)
{
    static const char *const texts[] = {
        "quote \" backslash \\ slash /",
        "tab\tnewline\ncr\rbs\bff\f",
        "\x01\x1f\x7f end",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7",
    };
    size_t i;

    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct buf b = BUF_INIT;
        json_t *s = json_string(texts[i]);
        char *want;
        cr_assert_not_null(s);
        want = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
        cr_assert_eq(text_json_string(&b, texts[i]), 0);
        cr_assert_str_eq(b.data, want);
        free(want);
        json_decref(s);
        buf_free(&b);
    }
}

Test(outcome, bytes_that_are_not_utf8_become_replacement_characters)
{
    struct buf b = BUF_INIT;

    /* a lone continuation byte, a truncated sequence, an overlong form, a surrogate */
    cr_assert_eq(text_json_string(&b, "a\x80"
                                      "b\xc3"
                                      "c\xc0\xaf"
                                      "d\xed\xa0\x80"
                                      "e"),
                 0);
    cr_assert_str_eq(b.data, "\"a\xef\xbf\xbd"
                             "b\xef\xbf\xbd"
                             "c\xef\xbf\xbd\xef\xbf\xbd"
                             "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                             "e\"");
    buf_free(&b);
}

Test(outcome, history_keeps_the_latest_attempts)
{
    struct outcome o;
    struct outcome_attempt a;
    int i;

    outcome_init(&o);
    for (i = 1; i <= OUTCOME_HISTORY_MAX + 5; i++) {
        char reply[32];
        memset(&a, 0, sizeof a);
        a.status = OUTCOME_DEFERRED;
        a.step = OUTCOME_STEP_NONE;
        a.time.sec = 1764000000 + i;
        snprintf(reply, sizeof reply, "try %d", i);
        a.reply = reply;
        cr_assert_eq(outcome_add_attempt(&o, &a), 0);
    }
    cr_assert_eq(o.nhistory, OUTCOME_HISTORY_MAX);
    cr_assert_str_eq(o.history[0].reply, "try 6");
    cr_assert_str_eq(o.history[OUTCOME_HISTORY_MAX - 1].reply, "try 25");
    outcome_free(&o);
    cr_assert_null(o.history);
    cr_assert_eq(o.nhistory, 0);
}

Test(outcome, copy_is_deep)
{
    struct outcome o, c;
    char *a, *b;

    sample(&o);
    cr_assert_eq(outcome_copy(&c, &o), 0);
    a = format(&o, false);
    outcome_free(&o); /* the copy owns its own strings */
    b = format(&c, false);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    outcome_free(&c);
}

Test(outcome, reads_back_what_it_wrote)
{
    struct outcome o, back;
    struct blast_error err;
    char *text, *again;
    json_t *v;

    sample(&o);
    text = format(&o, true);
    v = parse(text);
    blast_error_clear(&err);
    cr_assert_eq(outcome_from_json(v, &back, &err), 0, "%s", err.text);
    again = format(&back, true);
    cr_assert_str_eq(again, text);
    cr_assert_eq(back.status, OUTCOME_DELIVERED);
    cr_assert_eq(back.step, SMTP_END_OF_DATA);
    cr_assert_eq(back.history[0].step, SMTP_RCPT);
    cr_assert_eq(back.history[0].port, 587);
    cr_assert_str_eq(back.history[0].cipher, "TLS_AES_256_GCM_SHA384");
    free(text);
    free(again);
    json_decref(v);
    outcome_free(&o);
    outcome_free(&back);
}

Test(outcome, a_status_of_a_later_version_reads_as_another_status)
{
    struct outcome o;
    struct blast_error err;
    json_t *v = parse("{\"email\":\"a@x.example\",\"row\":1,\"status\":\"opened\"}");

    blast_error_clear(&err);
    cr_assert_eq(outcome_from_json(v, &o, &err), 0, "%s", err.text);
    cr_assert_eq(o.status, OUTCOME_STATUS_COUNT);
    cr_assert_str_eq(o.email, "a@x.example");
    outcome_free(&o);
    json_decref(v);
}

static void refused(const char *text, const char *says)
{
    struct outcome o;
    struct blast_error err;
    json_t *v = parse(text);

    blast_error_clear(&err);
    cr_assert_eq(outcome_from_json(v, &o, &err), BLAST_EINVAL, "%s", text);
    cr_assert(strstr(err.text, says) != NULL, "'%s' says '%s'", err.text, says);
    cr_assert_null(o.email, "nothing is left half read");
    cr_assert_null(o.history);
    json_decref(v);
}

Test(outcome, wrong_types_are_named)
{
    refused("[1]", "not an object");
    refused("{\"row\":1}", "\"status\"");
    refused("{\"status\":7}", "\"status\"");
    refused("{\"status\":\"failed\",\"email\":\"a@x\",\"code\":\"550\"}", "\"code\"");
    refused("{\"status\":\"failed\",\"email\":\"a@x\",\"code\":5500}", "\"code\"");
    refused("{\"status\":\"failed\",\"row\":-1}", "\"row\"");
    refused("{\"status\":\"failed\",\"step\":\"HELLO\"}", "\"step\"");
    refused("{\"status\":\"failed\",\"first_attempt\":\"yesterday\"}", "\"first_attempt\"");
    refused("{\"status\":\"failed\",\"enhanced_code\":\"5.1.1.1.1.1.1.1.1.1.1\"}",
            "\"enhanced_code\"");
    refused("{\"status\":\"failed\",\"email\":\"a@x\",\"history\":{}}", "\"history\"");
    refused("{\"status\":\"failed\",\"email\":\"a@x\",\"history\":[{\"status\":\"deferred\","
            "\"port\":70000}]}",
            "history[0]: \"port\"");
    refused("{\"status\":\"failed\",\"email\":\"a@x\",\"history\":[3]}", "history[0]");
}

/* What came back after the 250 is written with the entry and read back the same. */
Test(outcome, a_bounce_round_trips)
{
    struct outcome o, back;
    struct blast_error err;
    struct buf b = BUF_INIT;
    json_t *v;

    outcome_init(&o);
    o.row = 7;
    o.status = OUTCOME_BOUNCED;
    cr_assert_eq(outcome_set(&o.email, "ada@example.com"), 0);
    o.bounce.set = true;
    strcpy(o.bounce.kind, "dsn");
    strcpy(o.bounce.class_, "hard");
    strcpy(o.bounce.enhanced, "5.1.1");
    cr_assert_eq(outcome_set(&o.bounce.rule, "status-5.1.x-bad-mailbox"), 0);
    cr_assert_eq(outcome_set(&o.bounce.diagnostic, "550 5.1.1 \"quoted\" <ada>"), 0);
    cr_assert_eq(outcome_set(&o.bounce.source, "<dsn@mx.example>"), 0);
    o.bounce.time.sec = 1796447658;
    cr_assert_eq(outcome_format_json(&o, false, &b), 0);
    cr_assert(strstr(b.data, ",\"bounce\":{\"kind\":\"dsn\",\"class\":\"hard\",\"rule\":"
                             "\"status-5.1.x-bad-mailbox\",\"status\":\"5.1.1\"") != NULL,
              "%s", b.data);
    v = parse(b.data);
    blast_error_clear(&err);
    cr_assert_eq(outcome_from_json(v, &back, &err), 0, "%s", err.text);
    cr_assert_eq(back.status, OUTCOME_BOUNCED);
    cr_assert(back.bounce.set);
    cr_assert_str_eq(back.bounce.class_, "hard");
    cr_assert_str_eq(back.bounce.rule, "status-5.1.x-bad-mailbox");
    cr_assert_str_eq(back.bounce.diagnostic, "550 5.1.1 \"quoted\" <ada>");
    cr_assert_str_eq(back.bounce.source, "<dsn@mx.example>");
    cr_assert_eq(back.bounce.time.sec, 1796447658);
    json_decref(v);
    outcome_free(&back);
    outcome_free(&o);
    buf_free(&b);
}

/* text read from its tape and from jansson's tree: the same record, or the same error. */
static void both_read(const char *text, struct outcome *from_tape, struct blast_error *tape_err,
                      int *rc)
{
    struct jsontape t;
    struct outcome o;
    struct blast_error err;
    json_t *v = parse(text);
    char *a, *b;
    int rc_json;

    jsontape_init(&t);
    blast_error_clear(tape_err);
    blast_error_clear(&err);
    cr_assert_eq(jsontape_parse(&t, text, strlen(text), 0, &err), 0, "%s", err.text);
    *rc = outcome_from_tape(jsontape_root(&t), from_tape, tape_err);
    rc_json = outcome_from_json(v, &o, &err);
    cr_assert_eq(*rc, rc_json, "%s", text);
    cr_assert_str_eq(tape_err->text, err.text);
    if (*rc == 0) {
        a = format(from_tape, false);
        b = format(&o, false);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    outcome_free(&o);
    json_decref(v);
    jsontape_free(&t);
}

Test(outcome, reads_from_a_tape_as_from_a_tree)
{
    struct outcome o, back;
    struct blast_error err;
    char *text, *again;
    int rc;

    sample(&o);
    o.bounce.set = true;
    strcpy(o.bounce.kind, "dsn");
    strcpy(o.bounce.class_, "soft");
    cr_assert_eq(outcome_set(&o.bounce.rule, "status-4.x.x"), 0);
    text = format(&o, true);
    both_read(text, &back, &err, &rc);
    cr_assert_eq(rc, 0, "%s", err.text);
    again = format(&back, true);
    cr_assert_str_eq(again, text);
    free(text);
    free(again);
    outcome_free(&o);
    outcome_free(&back);

    /* the first problem named is the same, whatever the order of the members */
    both_read("{\"code\":\"x\",\"row\":-1,\"status\":\"failed\"}", &back, &err, &rc);
    cr_assert_eq(rc, BLAST_EINVAL);
    cr_assert_str_eq(err.text, "\"row\" is not a number in range");
    both_read("{\"status\":\"failed\",\"history\":[{\"status\":\"failed\"},"
              "{\"status\":\"failed\",\"tls\":\"a string far too long for it\"}]}",
              &back, &err, &rc);
    cr_assert_str_eq(err.text, "history[1]: \"tls\" is not a short string");
    both_read("{\"status\":\"bounced\",\"bounce\":[]}", &back, &err, &rc);
    cr_assert_str_eq(err.text, "\"bounce\" is not an object");
    cr_assert_null(back.email);
}

/* Of a key given twice the last counts on the tape, as in jansson's tree. */
Test(outcome, a_key_given_twice_reads_as_its_last)
{
    struct outcome o;
    struct blast_error err;
    int rc;

    both_read("{\"email\":\"a@x\",\"status\":7,\"row\":1,\"status\":\"failed\","
              "\"email\":\"b@x\"}",
              &o, &err, &rc);
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_str_eq(o.email, "b@x");
    cr_assert_eq(o.status, OUTCOME_FAILED);
    outcome_free(&o);
}

/* A history longer than the writer keeps reads as its latest OUTCOME_HISTORY_MAX. */
Test(outcome, a_long_history_reads_as_its_latest)
{
    struct buf b = BUF_INIT;
    struct outcome o;
    struct blast_error err;
    int i, rc;

    cr_assert_eq(buf_puts(&b, "{\"status\":\"deferred\",\"history\":["), 0);
    for (i = 0; i < OUTCOME_HISTORY_MAX + 7; i++)
        cr_assert_eq(
            buf_printf(&b, "%s{\"status\":\"deferred\",\"reply\":\"try %d\"}", i ? "," : "", i), 0);
    cr_assert_eq(buf_puts(&b, "]}"), 0);
    both_read(b.data, &o, &err, &rc);
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(o.nhistory, OUTCOME_HISTORY_MAX);
    cr_assert_str_eq(o.history[0].reply, "try 7");
    cr_assert_str_eq(o.history[OUTCOME_HISTORY_MAX - 1].reply, "try 26");
    outcome_free(&o);
    buf_free(&b);

    /* the ones dropped are not read: a fault there is not one */
    both_read("{\"status\":\"deferred\",\"history\":[7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,"
              "{\"status\":\"deferred\"}]}",
              &o, &err, &rc);
    cr_assert_eq(rc, BLAST_EINVAL, "the 20 latest include a 7");
    cr_assert_str_eq(err.text, "history[1] is not an object");
}

Test(outcome, not_an_object_on_a_tape_either)
{
    struct blast_error err;
    struct outcome o;

    blast_error_clear(&err);
    cr_assert_eq(outcome_from_tape(NULL, &o, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.text, "a recipient is not an object");
    blast_error_clear(&err);
    cr_assert_eq(outcome_from_json(NULL, &o, &err), BLAST_EINVAL);
    cr_assert_str_eq(err.text, "a recipient is not an object");
}
