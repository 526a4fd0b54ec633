/*
 * Unit tests for core/classify: what real mail systems say when they bounce, and
 * the class and rule each gets (docs/bounces.md, "Classes and rules").
 */
#include "../../core/classify.h"

#include <criterion/criterion.h>
#include <string.h>

struct bounce_case {
    const char *who; /* the mail system the text comes from */
    const char *status, *action, *diagnostic;
    enum bounce_class class;
    const char *rule;
};

static const struct bounce_case cases[] = {
    {"Postfix, unknown user", "5.1.1", "failed",
     "smtp; 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in "
     "virtual mailbox table",
     BOUNCE_HARD, "status-5.1.x-bad-mailbox"},
    {"Gmail, no such account", "5.1.1", "failed",
     "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", BOUNCE_HARD,
     "status-5.1.x-bad-mailbox"},
    {"Gmail, unsolicited", "5.7.1", "failed",
     "smtp; 550-5.7.1 Our system has detected that this message is likely unsolicited mail",
     BOUNCE_POLICY, "status-x.7-security-policy"},
    {"Outlook, banned IP", "5.7.606", "failed",
     "smtp; 550 5.7.606 Access denied, banned sending IP [192.0.2.1]", BOUNCE_POLICY,
     "status-x.7-security-policy"},
    {"Spamhaus listing under 5.0.0", "5.0.0", "failed",
     "smtp; 554 5.0.0 Service unavailable; Client host [192.0.2.1] blocked using "
     "zen.spamhaus.org",
     BOUNCE_POLICY, "text-policy-block"},
    {"a spam block that says 5.1.1", "5.1.1", "failed", "smtp; 550 5.1.1 Message rejected as spam",
     BOUNCE_POLICY, "text-policy-block"},
    {"mailbox full, 5.2.2", "5.2.2", "failed", "smtp; 552 5.2.2 <ada@example.com>: Mailbox full",
     BOUNCE_SOFT, "status-x.2.2-or-text-mailbox-full"},
    {"Gmail, over quota", "4.2.2", "delayed",
     "smtp; 452-4.2.2 The email account that you tried to reach is over quota.", BOUNCE_SOFT,
     "status-x.2.2-or-text-mailbox-full"},
    {"a delay", "4.4.1", "delayed", "smtp; 421 4.4.1 connection timed out", BOUNCE_SOFT,
     "status-4-transient"},
    {"delayed without a code", NULL, "delayed", NULL, BOUNCE_SOFT, "status-4-transient"},
    {"no route to the domain", "5.4.4", "failed", "Host or domain name not found", BOUNCE_HARD,
     "status-5.1.2-bad-domain"},
    {"null MX (RFC 7505)", "5.1.10", "failed", "smtp; 556 5.1.10 Recipient address has null MX",
     BOUNCE_HARD, "status-5.1.2-bad-domain"},
    {"bad syntax", "5.1.3", "failed", "smtp; 501 5.1.3 Bad recipient address syntax", BOUNCE_HARD,
     "status-5.1.3-bad-syntax"},
    {"mailbox disabled", "5.2.1", "failed", "smtp; 550 5.2.1 The email account is disabled",
     BOUNCE_HARD, "status-5.2.1-mailbox-disabled"},
    {"5.0.0 that says user unknown", "5.0.0", "failed", "smtp; 550 5.0.0 User unknown", BOUNCE_HARD,
     "text-no-such-mailbox"},
    {"5.5.0 mailbox unavailable", NULL, "failed",
     "smtp; 550 5.5.0 Requested action not taken: mailbox unavailable", BOUNCE_HARD,
     "text-no-such-mailbox"},
    {"Exim, plain text, no code", NULL, NULL, "Unrouteable address", BOUNCE_HARD,
     "text-no-such-mailbox"},
    {"Exim, plain text, full", NULL, NULL, "mailbox is full: retry timeout exceeded", BOUNCE_SOFT,
     "status-x.2.2-or-text-mailbox-full"},
    {"mail system full", "5.3.1", "failed", "smtp; 552 5.3.1 Mail system full", BOUNCE_SOFT,
     "status-5-network-or-system"},
    {"a 5yz nobody recognises", "5.6.0", "failed", "smtp; 554 5.6.0 Something else", BOUNCE_UNKNOWN,
     "status-5-other"},
    {"delivered: not a bounce", "2.0.0", "delivered", "smtp; 250 2.0.0 OK", BOUNCE_UNKNOWN,
     "status-2-not-a-failure"},
    {"relayed: not a bounce", NULL, "relayed", NULL, BOUNCE_UNKNOWN, "status-2-not-a-failure"},
    {"nothing at all", NULL, NULL, NULL, BOUNCE_UNKNOWN, "no-status"},
    {"the code only in the text", NULL, "failed",
     "smtp; 550 5.1.1 <x@example.com>: Recipient address rejected", BOUNCE_HARD,
     "status-5.1.x-bad-mailbox"},
};

Test(classify, real_bounces_get_their_class_and_rule)
{
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bounce_verdict v;
        classify_dsn(cases[i].status, cases[i].action, cases[i].diagnostic, &v);
        cr_assert_eq(v.class, cases[i].class, "%s: %s (%s)", cases[i].who,
                     bounce_class_name(v.class), v.rule);
        cr_assert_str_eq(v.rule, cases[i].rule, "%s", cases[i].who);
    }
}

Test(classify, class_names)
{
    cr_assert_str_eq(bounce_class_name(BOUNCE_HARD), "hard");
    cr_assert_str_eq(bounce_class_name(BOUNCE_AUTOREPLY), "auto-reply");
    cr_assert_str_eq(bounce_class_name(BOUNCE_CLASS_COUNT), "?");
}

static void status_is(const char *text, const char *want)
{
    char out[16];
    int rc = classify_find_status(text, out, sizeof out);

    if (want == NULL) {
        cr_assert_eq(rc, -1, "'%s' gave %s", text, out);
        return;
    }
    cr_assert_eq(rc, 0, "'%s'", text);
    cr_assert_str_eq(out, want, "'%s'", text);
}

Test(classify, status_codes_in_text)
{
    status_is("550-5.1.1 The email account", "5.1.1");
    status_is("smtp; 554 5.0.0 Service unavailable", "5.0.0");
    status_is("452 4.2.2 over quota", "4.2.2");
    status_is("556 5.1.10 null MX", "5.1.10");
    status_is("5.7.606 Access denied", "5.7.606");
    status_is("version 1.2.3", NULL);
    status_is("from 25.1.1 on", NULL);
    status_is("host 5.6.7.8 said no", NULL);
    status_is("5.1.1234 too long", NULL);
    status_is("", NULL);
}
