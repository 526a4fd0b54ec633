/*
 * policy - retries, relay health and slowing down, as pure functions. See policy.h.
 */
#include "policy.h"

#include <stdio.h>
#include <string.h>

int64_t policy_backoff_ms(const struct policy_retry *cfg, int charged, uint32_t random)
{
    double ms = (double)cfg->initial_ms;
    int i;

    for (i = 1; i < charged && ms < (double)cfg->max_ms; i++)
        ms *= 2.0;
    if (ms > (double)cfg->max_ms)
        ms = (double)cfg->max_ms;
    /* ±20%, in 1,001 steps */
    return (int64_t)(ms * (0.8 + 0.4 * (double)(random % 1001) / 1000.0));
}

bool policy_slows_down(const struct smtp_reply *r)
{
    return r->code == 421 ||
           (r->code >= 400 && r->code < 500 && strncmp(r->enhanced, "4.7.", 4) == 0);
}

bool policy_recover_due(int64_t last_slow, int64_t last_recover, int64_t now_ms)
{
    return last_slow > 0 && now_ms - last_slow >= POLICY_RECOVER_MS &&
           now_ms - last_recover >= POLICY_RECOVER_MS;
}

bool policy_deadline_passed(int64_t deadline_ms, int64_t now_ms)
{
    return deadline_ms > 0 && now_ms >= deadline_ms;
}

void policy_after_attempt(const struct policy_retry *cfg, const struct smtp_rcpt *a,
                          struct policy_recipient *r, const struct policy_clock *now,
                          bool run_ending, uint32_t random, struct policy_next *out)
{
    bool in_window, too_many, about_rcpt, exhausted, capped;

    memset(out, 0, sizeof *out);
    out->verdict = POLICY_RECORD;
    out->status = outcome_of_smtp(a->outcome);
    if (out->status != OUTCOME_DEFERRED)
        return;
    out->slow_down = policy_slows_down(&a->reply);
    in_window = r->first.sec == 0 ||
                (int64_t)(now->wall.sec - r->first.sec) * 1000 < (int64_t)cfg->window_ms;
    /*
     * A 421 or a lost session says nothing about the recipient: another session may
     * take it. Nor does "too many recipients": it goes in the next transaction, on a
     * fresh session (RFC 5321 §4.5.3.1.10).
     */
    too_many = smtp_reply_too_many_recipients(&a->reply, a->step);
    about_rcpt = a->reply.code != 0 && a->reply.code != 421 && !too_many;
    out->renew_session = too_many;
    if (about_rcpt)
        r->charged++;
    exhausted = r->charged >= cfg->attempts || !in_window;
    capped = r->attempts >= POLICY_SESSION_ATTEMPTS_FACTOR * cfg->attempts;
    if (run_ending)
        return; /* deferred, with its own reply: the next run goes on */
    if (!exhausted && !capped) {
        /*
         * Refused for now: after a while. Lost with its session or turned away with
         * it (421): again at once, on whichever session comes next; the relay's own
         * backoff paces a relay that keeps failing.
         */
        out->verdict = POLICY_RETRY;
        out->not_before =
            now->mono_ms + (about_rcpt ? policy_backoff_ms(cfg, r->charged, random) : 0);
        return;
    }
    if (exhausted) {
        /* docs/delivery.md: after the last attempt or the window, failed with the last reply */
        out->status = OUTCOME_FAILED;
        if (a->detail[0] == '\0')
            snprintf(out->detail, sizeof out->detail, "still deferred after %d attempt%s%s",
                     r->attempts, r->attempts == 1 ? "" : "s",
                     in_window ? "" : " (the retry window has passed)");
        return;
    }
    /* the sessions kept failing, not the recipient: nothing says it is bad */
    snprintf(out->detail, sizeof out->detail,
             "%d attempts in this run ended with the session (421 or lost); left for the next run",
             r->attempts);
}

/* ---- relay health ------------------------------------------------------------------------ */

static enum policy_relay_verdict failed(struct policy_relay *h, bool for_the_run,
                                        bool others_working, int64_t now_ms)
{
    int64_t wait = 1000;
    int i;

    h->failures++;
    /*
     * docs/delivery.md: a refused password is not tried again (no loop that could
     * lock the account), nor a server that broke the AUTH exchange; a relay that
     * keeps failing while no other carries the campaign is given up, so that a run
     * with no working relay ends rather than waits.
     */
    if (for_the_run || (h->failures >= POLICY_RELAY_MAX_FAILS && !others_working)) {
        h->dead = true;
        return POLICY_RELAY_OUT;
    }
    for (i = 1; i < h->failures && wait < POLICY_RELAY_BACKOFF_MAX_MS; i++)
        wait *= 2;
    if (wait > POLICY_RELAY_BACKOFF_MAX_MS)
        wait = POLICY_RELAY_BACKOFF_MAX_MS;
    h->down_until = now_ms + wait;
    return POLICY_RELAY_BACK_OFF;
}

enum policy_relay_verdict policy_relay_event(struct policy_relay *h, enum policy_relay_event ev,
                                             bool others_working, int64_t now_ms, const char **why)
{
    if (why != NULL)
        *why = NULL;
    if (h->dead)
        return POLICY_RELAY_OK; /* out already: nothing changes */
    switch (ev) {
    case POLICY_RELAY_ANSWERED:
        h->failures = 0; /* it answers: it works */
        h->refusals = 0;
        return POLICY_RELAY_OK;
    case POLICY_RELAY_IN_STEP:
        h->astray = 0;
        return POLICY_RELAY_OK;
    case POLICY_RELAY_REFUSED:
        /* docs/delivery.md: a relay that keeps answering 421 is taken out for a while */
        if (++h->refusals < POLICY_RELAY_MAX_FAILS)
            return POLICY_RELAY_OK;
        h->refusals = 0;
        if (why != NULL)
            *why = "it keeps answering 421";
        return failed(h, false, others_working, now_ms);
    case POLICY_RELAY_OUT_OF_STEP:
        /* its transactions are retried on a fresh session; only one that keeps doing it is out */
        if (++h->astray < POLICY_RELAY_MAX_FAILS)
            return POLICY_RELAY_OK;
        h->astray = 0;
        if (why != NULL)
            *why = "its replies went out of step with the commands in several sessions in a row";
        return failed(h, false, others_working, now_ms);
    case POLICY_RELAY_FAILED:
        return failed(h, false, others_working, now_ms);
    case POLICY_RELAY_GIVE_UP:
        return failed(h, true, others_working, now_ms);
    }
    return POLICY_RELAY_OK;
}

bool policy_relay_working(const struct policy_relay *h, int64_t now_ms)
{
    return !h->dead && h->failures == 0 && h->down_until <= now_ms;
}
