/*
 * Unit tests for core/policy, table-driven, with the clock injected (no sleeps):
 * what becomes of a recipient after every reply class at every step of a
 * transaction, a 421 at every step, a connection lost before and after the end of
 * data, the retry window and attempts at their edges, the backoff and its jitter,
 * --deadline, slowing down and speeding up, and relay health.
 *
 * Each case reads the reply as the engine does (smtp_reply_outcome()), so that a
 * change to the reply table and a change to the policy are both caught here.
 */
#include "../../core/policy.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define NOW_MONO 5000000
#define NOW_WALL 1764000000

static const struct policy_retry retry = {
    .attempts = 5, .initial_ms = 60000, .max_ms = 1800000, .window_ms = 4 * 3600 * 1000L};

static const struct policy_clock now = {NOW_MONO, {NOW_WALL, 0}};

/* A recipient's attempt decided at step by code (0: no reply: the connection was lost). */
static struct smtp_rcpt attempt(enum smtp_state step, int code, const char *enhanced,
                                bool eod_may_have_left)
{
    struct smtp_rcpt r;

    memset(&r, 0, sizeof r);
    r.address = "ada@example.com";
    r.step = step;
    r.reply.code = code;
    snprintf(r.reply.enhanced, sizeof r.reply.enhanced, "%s", enhanced);
    if (code != 0) {
        snprintf(r.reply.text, sizeof r.reply.text, "reply %d", code);
        r.outcome = smtp_reply_outcome(&r.reply, step);
    } else {
        /* the engine's rule: unknown once the end of data may have left, else deferred */
        r.outcome = eod_may_have_left ? SMTP_OUTCOME_UNKNOWN : SMTP_OUTCOME_DEFERRED;
        snprintf(r.detail, sizeof r.detail, "the connection was lost");
    }
    return r;
}

enum retry_kind { NOW, LATER };

struct rule {
    const char *name;
    enum smtp_state step;
    int code;
    const char *enhanced;
    bool eod_left;
    /* expected */
    enum policy_verdict verdict;
    enum outcome_status status;
    bool charged;
    enum retry_kind when; /* POLICY_RETRY only */
    bool renew, slow;
};

static const struct rule rules[] = {
    /* 2yz: accepted at the end of data, delivered */
    {"250 to end of data", SMTP_END_OF_DATA, 250, "2.0.0", false, POLICY_RECORD, OUTCOME_DELIVERED,
     false, NOW, false, false},
    /* 4yz at every step: deferred, charged, later */
    {"451 to MAIL", SMTP_MAIL, 451, "4.3.0", false, POLICY_RETRY, OUTCOME_DEFERRED, true, LATER,
     false, false},
    {"450 to RCPT", SMTP_RCPT, 450, "4.2.0", false, POLICY_RETRY, OUTCOME_DEFERRED, true, LATER,
     false, false},
    {"451 to DATA", SMTP_DATA, 451, "", false, POLICY_RETRY, OUTCOME_DEFERRED, true, LATER, false,
     false},
    {"452 to end of data", SMTP_END_OF_DATA, 452, "4.3.1", false, POLICY_RETRY, OUTCOME_DEFERRED,
     true, LATER, false, false},
    /* 4.7.x: policy, usually a rate limit: slow the relay down too */
    {"450 4.7.1 to RCPT", SMTP_RCPT, 450, "4.7.1", false, POLICY_RETRY, OUTCOME_DEFERRED, true,
     LATER, false, true},
    {"451 4.7.0 to end of data", SMTP_END_OF_DATA, 451, "4.7.0", false, POLICY_RETRY,
     OUTCOME_DEFERRED, true, LATER, false, true},
    /* 5yz at every step: failed */
    {"550 to MAIL", SMTP_MAIL, 550, "5.7.1", false, POLICY_RECORD, OUTCOME_FAILED, false, NOW,
     false, false},
    {"550 5.1.1 to RCPT", SMTP_RCPT, 550, "5.1.1", false, POLICY_RECORD, OUTCOME_FAILED, false, NOW,
     false, false},
    {"554 to DATA", SMTP_DATA, 554, "5.5.1", false, POLICY_RECORD, OUTCOME_FAILED, false, NOW,
     false, false},
    {"554 to end of data", SMTP_END_OF_DATA, 554, "5.6.0", false, POLICY_RECORD, OUTCOME_FAILED,
     false, NOW, false, false},
    /* RFC 3463 persistent transient conditions in a 5yz: retried */
    {"552 5.2.2 to RCPT (mailbox full)", SMTP_RCPT, 552, "5.2.2", false, POLICY_RETRY,
     OUTCOME_DEFERRED, true, LATER, false, false},
    {"552 5.2.2 to end of data", SMTP_END_OF_DATA, 552, "5.2.2", false, POLICY_RETRY,
     OUTCOME_DEFERRED, true, LATER, false, false},
    /* RFC 5321 §4.5.3.1.10: too many recipients: next transaction, fresh session, no charge */
    {"452 4.5.3 to RCPT", SMTP_RCPT, 452, "4.5.3", false, POLICY_RETRY, OUTCOME_DEFERRED, false,
     NOW, true, false},
    {"552 to RCPT without a detail code", SMTP_RCPT, 552, "", false, POLICY_RETRY, OUTCOME_DEFERRED,
     false, NOW, true, false},
    /* 421 at every step: the session, not the recipient: at once, not charged, slow down */
    {"421 to MAIL", SMTP_MAIL, 421, "4.3.2", false, POLICY_RETRY, OUTCOME_DEFERRED, false, NOW,
     false, true},
    {"421 to RCPT", SMTP_RCPT, 421, "", false, POLICY_RETRY, OUTCOME_DEFERRED, false, NOW, false,
     true},
    {"421 to DATA", SMTP_DATA, 421, "4.4.2", false, POLICY_RETRY, OUTCOME_DEFERRED, false, NOW,
     false, true},
    {"421 to end of data", SMTP_END_OF_DATA, 421, "4.3.0", false, POLICY_RETRY, OUTCOME_DEFERRED,
     false, NOW, false, true},
    /* the connection lost: before the end of data left, at once; after, unknown */
    {"lost before MAIL's reply", SMTP_MAIL, 0, "", false, POLICY_RETRY, OUTCOME_DEFERRED, false,
     NOW, false, false},
    {"lost during DATA", SMTP_DATA, 0, "", false, POLICY_RETRY, OUTCOME_DEFERRED, false, NOW, false,
     false},
    {"lost before the end of data left", SMTP_END_OF_DATA, 0, "", false, POLICY_RETRY,
     OUTCOME_DEFERRED, false, NOW, false, false},
    {"lost after the end of data left", SMTP_END_OF_DATA, 0, "", true, POLICY_RECORD,
     OUTCOME_UNKNOWN, false, NOW, false, false},
};

Test(policy, every_reply_class_at_every_step)
{
    size_t i;

    for (i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const struct rule *c = &rules[i];
        struct smtp_rcpt a = attempt(c->step, c->code, c->enhanced, c->eod_left);
        struct policy_recipient r = {1, 0, {NOW_WALL - 10, 0}};
        struct policy_next next;

        policy_after_attempt(&retry, &a, &r, &now, false, 500, &next);
        cr_assert_eq(next.verdict, c->verdict, "%s: verdict %d", c->name, next.verdict);
        cr_assert_eq(next.status, c->status, "%s: status %s", c->name,
                     outcome_status_name(next.status));
        cr_assert_eq(r.charged, c->charged ? 1 : 0, "%s: charged %d", c->name, r.charged);
        cr_assert_eq(next.renew_session, c->renew, "%s: renew", c->name);
        cr_assert_eq(next.slow_down, c->slow, "%s: slow down", c->name);
        cr_assert_str_eq(next.detail, "", "%s: %s", c->name, next.detail);
        if (c->verdict == POLICY_RETRY && c->when == NOW)
            cr_assert_eq(next.not_before, NOW_MONO, "%s: at once", c->name);
        if (c->verdict == POLICY_RETRY && c->when == LATER)
            /* random 500: the jitter's middle, the initial wait itself */
            cr_assert_eq(next.not_before, NOW_MONO + retry.initial_ms, "%s: after %lld ms", c->name,
                         (long long)(next.not_before - NOW_MONO));
    }
}

Test(policy, a_run_ending_records_deferred_with_the_last_reply)
{
    size_t i;

    for (i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const struct rule *c = &rules[i];
        struct smtp_rcpt a = attempt(c->step, c->code, c->enhanced, c->eod_left);
        struct policy_recipient r = {1, 0, {NOW_WALL, 0}};
        struct policy_next next;

        policy_after_attempt(&retry, &a, &r, &now, true, 0, &next);
        cr_assert_eq(next.verdict, POLICY_RECORD, "%s", c->name);
        cr_assert_eq(next.status, c->status, "%s", c->name);
        cr_assert_str_eq(next.detail, "", "%s: its own reply says why", c->name);
    }
}

Test(policy, the_last_charged_attempt_fails_with_the_last_reply)
{
    struct smtp_rcpt a = attempt(SMTP_RCPT, 450, "4.2.0", false);
    struct policy_recipient r = {4, 3, {NOW_WALL - 600, 0}};
    struct policy_next next;

    policy_after_attempt(&retry, &a, &r, &now, false, 0, &next);
    cr_assert_eq(next.verdict, POLICY_RETRY, "charged 4 of 5: once more");
    cr_assert_eq(r.charged, 4);
    r.attempts = 5;
    policy_after_attempt(&retry, &a, &r, &now, false, 0, &next);
    cr_assert_eq(next.verdict, POLICY_RECORD);
    cr_assert_eq(next.status, OUTCOME_FAILED);
    cr_assert_eq(r.charged, 5);
    cr_assert_str_eq(next.detail, "still deferred after 5 attempts");
}

Test(policy, a_lost_connection_keeps_its_own_words_when_it_fails)
{
    struct smtp_rcpt a = attempt(SMTP_RCPT, 450, "4.2.0", false);
    struct policy_recipient r = {5, 4, {NOW_WALL, 0}};
    struct policy_next next;

    snprintf(a.detail, sizeof a.detail, "greylisted by the relay");
    policy_after_attempt(&retry, &a, &r, &now, false, 0, &next);
    cr_assert_eq(next.status, OUTCOME_FAILED);
    cr_assert_str_eq(next.detail, "", "the attempt's own detail stays");
}

Test(policy, retry_window_edges)
{
    struct smtp_rcpt a = attempt(SMTP_RCPT, 451, "4.3.0", false);
    long window_s = retry.window_ms / 1000;
    struct policy_next next;
    struct policy_recipient inside = {2, 1, {NOW_WALL - window_s + 1, 0}};
    struct policy_recipient at = {2, 1, {NOW_WALL - window_s, 0}};
    struct policy_recipient never = {0, 0, {0, 0}};

    policy_after_attempt(&retry, &a, &inside, &now, false, 500, &next);
    cr_assert_eq(next.verdict, POLICY_RETRY, "a second inside the window");
    policy_after_attempt(&retry, &a, &at, &now, false, 500, &next);
    cr_assert_eq(next.verdict, POLICY_RECORD, "at the window's end");
    cr_assert_eq(next.status, OUTCOME_FAILED);
    cr_assert_str_eq(next.detail, "still deferred after 2 attempts (the retry window has passed)");
    policy_after_attempt(&retry, &a, &never, &now, false, 500, &next);
    cr_assert_eq(next.verdict, POLICY_RETRY, "no first attempt yet: inside");
}

Test(policy, the_window_counts_for_session_failures_too)
{
    struct smtp_rcpt a = attempt(SMTP_MAIL, 421, "", false);
    struct policy_recipient r = {2, 0, {NOW_WALL - retry.window_ms / 1000, 0}};
    struct policy_next next;

    policy_after_attempt(&retry, &a, &r, &now, false, 0, &next);
    cr_assert_eq(next.status, OUTCOME_FAILED);
    cr_assert_eq(r.charged, 0, "a 421 is never charged");
}

Test(policy, sessions_that_keep_failing_leave_the_recipient_for_the_next_run)
{
    struct smtp_rcpt a = attempt(SMTP_DATA, 0, "", false);
    int cap = POLICY_SESSION_ATTEMPTS_FACTOR * retry.attempts;
    struct policy_recipient below = {cap - 1, 0, {NOW_WALL, 0}};
    struct policy_recipient at = {cap, 0, {NOW_WALL, 0}};
    struct policy_next next;

    policy_after_attempt(&retry, &a, &below, &now, false, 0, &next);
    cr_assert_eq(next.verdict, POLICY_RETRY);
    policy_after_attempt(&retry, &a, &at, &now, false, 0, &next);
    cr_assert_eq(next.verdict, POLICY_RECORD);
    cr_assert_eq(next.status, OUTCOME_DEFERRED, "nothing says the recipient is bad");
    cr_assert_str_eq(next.detail, "15 attempts in this run ended with the session (421 or lost); "
                                  "left for the next run");
}

Test(policy, backoff_doubles_up_to_its_maximum)
{
    static const struct {
        int charged;
        int64_t ms;
    } want[] = {{1, 60000}, {2, 120000}, {3, 240000}, {5, 960000}, {6, 1800000}, {40, 1800000}};
    size_t i;

    for (i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(policy_backoff_ms(&retry, want[i].charged, 500), want[i].ms, "charged %d",
                     want[i].charged);
}

Test(policy, jitter_is_twenty_percent_either_way)
{
    cr_assert_eq(policy_backoff_ms(&retry, 1, 0), 48000);
    cr_assert_eq(policy_backoff_ms(&retry, 1, 1000), 72000);
    cr_assert_eq(policy_backoff_ms(&retry, 1, 1001), 48000, "taken modulo 1,001");
    cr_assert_eq(policy_backoff_ms(&retry, 1, 0xFFFFFFFFu),
                 policy_backoff_ms(&retry, 1, 0xFFFFFFFFu % 1001));
}

Test(policy, deadline_edges)
{
    cr_assert_not(policy_deadline_passed(0, NOW_MONO), "no deadline");
    cr_assert_not(policy_deadline_passed(NOW_MONO + 1, NOW_MONO));
    cr_assert(policy_deadline_passed(NOW_MONO, NOW_MONO), "at the deadline itself");
    cr_assert(policy_deadline_passed(NOW_MONO - 1, NOW_MONO));
}

Test(policy, slowing_down_and_speeding_up)
{
    struct smtp_reply r;

    memset(&r, 0, sizeof r);
    r.code = 421;
    cr_assert(policy_slows_down(&r));
    r.code = 450;
    snprintf(r.enhanced, sizeof r.enhanced, "4.7.1");
    cr_assert(policy_slows_down(&r));
    snprintf(r.enhanced, sizeof r.enhanced, "4.2.0");
    cr_assert_not(policy_slows_down(&r));
    r.code = 550;
    snprintf(r.enhanced, sizeof r.enhanced, "5.7.1");
    cr_assert_not(policy_slows_down(&r), "a refusal, not a rate limit");

    cr_assert_not(policy_recover_due(0, 0, NOW_MONO), "never slowed");
    cr_assert_not(policy_recover_due(NOW_MONO - POLICY_RECOVER_MS + 1, 0, NOW_MONO));
    cr_assert(policy_recover_due(NOW_MONO - POLICY_RECOVER_MS, 0, NOW_MONO));
    cr_assert_not(policy_recover_due(NOW_MONO - 60000, NOW_MONO - 1, NOW_MONO),
                  "a step a moment ago");
    cr_assert(policy_recover_due(NOW_MONO - 60000, NOW_MONO - POLICY_RECOVER_MS, NOW_MONO));
}

/* ---- relay health ------------------------------------------------------------------------ */

Test(policy, a_failing_relay_backs_off_doubling_to_a_minute)
{
    static const int64_t waits[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    struct policy_relay h;
    size_t i;

    memset(&h, 0, sizeof h);
    for (i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_FAILED, true, NOW_MONO, NULL),
                     POLICY_RELAY_BACK_OFF, "failure %zu, others carry the campaign", i + 1);
        cr_assert_eq(h.down_until, NOW_MONO + waits[i], "failure %zu", i + 1);
        cr_assert_not(policy_relay_working(&h, NOW_MONO + waits[i] - 1));
    }
    cr_assert_not(h.dead);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_ANSWERED, true, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(h.failures, 0, "it answers: it works");
    cr_assert(policy_relay_working(&h, h.down_until), "working again once the wait is over");
}

Test(policy, the_only_relay_is_taken_out_after_three_failures)
{
    struct policy_relay h;
    const char *why = "unset";

    memset(&h, 0, sizeof h);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_FAILED, false, NOW_MONO, &why),
                 POLICY_RELAY_BACK_OFF);
    cr_assert_null(why, "the failure's own reason stands");
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_FAILED, false, NOW_MONO, NULL),
                 POLICY_RELAY_BACK_OFF);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_FAILED, false, NOW_MONO, NULL),
                 POLICY_RELAY_OUT);
    cr_assert(h.dead);
    cr_assert_not(policy_relay_working(&h, NOW_MONO + 3600000));
    /* out for the run: nothing brings it back */
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_ANSWERED, false, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert(h.dead);
}

Test(policy, a_refused_password_is_out_at_once)
{
    struct policy_relay h;

    memset(&h, 0, sizeof h);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_GIVE_UP, true, NOW_MONO, NULL),
                 POLICY_RELAY_OUT, "even with other relays working");
    cr_assert(h.dead);
}

Test(policy, three_421s_in_a_row_count_as_a_failure)
{
    struct policy_relay h;
    const char *why = NULL;

    memset(&h, 0, sizeof h);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_REFUSED, true, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_ANSWERED, true, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(h.refusals, 0, "an answer in between starts the count again");
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_REFUSED, true, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_REFUSED, true, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_REFUSED, true, NOW_MONO, &why),
                 POLICY_RELAY_BACK_OFF);
    cr_assert_str_eq(why, "it keeps answering 421");
    cr_assert_eq(h.refusals, 0);
    cr_assert_eq(h.failures, 1);
}

Test(policy, sessions_out_of_step_three_in_a_row_count_as_a_failure)
{
    struct policy_relay h;
    const char *why = NULL;

    memset(&h, 0, sizeof h);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_OUT_OF_STEP, false, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_OUT_OF_STEP, false, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_IN_STEP, false, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(h.astray, 0, "a session in step in between starts the count again");
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_OUT_OF_STEP, false, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_OUT_OF_STEP, false, NOW_MONO, NULL),
                 POLICY_RELAY_OK);
    cr_assert_eq(policy_relay_event(&h, POLICY_RELAY_OUT_OF_STEP, false, NOW_MONO, &why),
                 POLICY_RELAY_BACK_OFF);
    cr_assert(strstr(why, "out of step") != NULL);
    cr_assert_not(h.dead, "one failure is not enough to take it out");
}
