/*
 * classify - bounces to classes by an ordered table of rules. See classify.h.
 *
 * The first rule that matches decides. Texts are matched without regard to case.
 * A status code's class (the first digit) and detail come from RFC 3463; the text
 * rules catch what mail systems say in words, since many send 5.0.0 or no code at
 * all, and since a block for spam often comes with a 5.1.x or 5.0.0 that would
 * otherwise read as a bad address. docs/bounces.md holds the same table.
 */
#include "classify.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char *const class_names[BOUNCE_CLASS_COUNT] = {
    [BOUNCE_HARD] = "hard",
    [BOUNCE_SOFT] = "soft",
    [BOUNCE_POLICY] = "policy",
    [BOUNCE_COMPLAINT] = "complaint",
    [BOUNCE_AUTOREPLY] = "auto-reply",
    [BOUNCE_UNSUBSCRIBE] = "unsubscribe",
    [BOUNCE_UNKNOWN] = "unknown",
};

const char *bounce_class_name(enum bounce_class c)
{
    return c >= 0 && c < BOUNCE_CLASS_COUNT ? class_names[c] : "?";
}

/* Words that say the sender was blocked, whatever code came with them. */
static const char *const policy_words[] = {"spam",
                                           "blocklist",
                                           "blacklist",
                                           "block list",
                                           "black list",
                                           "listed at",
                                           "listed in",
                                           "spamhaus",
                                           "reputation",
                                           "rejected for policy",
                                           "policy violation",
                                           "content rejected",
                                           "dmarc",
                                           "not authorized to send",
                                           "sender denied",
                                           "too many complaints",
                                           NULL};

/* Words that say the mailbox or the domain is not there. */
static const char *const gone_words[] = {"user unknown",
                                         "unknown user",
                                         "no such user",
                                         "no such recipient",
                                         "no such mailbox",
                                         "does not exist",
                                         "doesn't exist",
                                         "invalid recipient",
                                         "invalid mailbox",
                                         "mailbox unavailable",
                                         "recipient unknown",
                                         "unknown recipient",
                                         "address rejected",
                                         "not found",
                                         "no mailbox",
                                         "account disabled",
                                         "account has been disabled",
                                         "host not found",
                                         "domain not found",
                                         "no mx",
                                         "unrouteable address",
                                         NULL};

/* Words that say the mailbox is full. */
static const char *const full_words[] = {
    "mailbox full",     "mailbox is full",      "over quota",     "quota exceeded",
    "exceeded storage", "insufficient storage", "out of storage", NULL};

static bool any(const char *text, const char *const *words)
{
    size_t i;

    for (i = 0; text != NULL && words[i] != NULL; i++)
        if (strcasestr(text, words[i]) != NULL)
            return true;
    return false;
}

int classify_find_status(const char *text, char *out, size_t size)
{
    const char *p;

    out[0] = '\0';
    for (p = text; p != NULL && *p != '\0'; p++) {
        const char *q = p;
        size_t n;
        /* class "2", "4" or "5", a dot, 1-3 digits, a dot, 1-3 digits, not in a word */
        if ((*q != '2' && *q != '4' && *q != '5') || q[1] != '.' ||
            (p > text && (p[-1] == '.' || (p[-1] >= '0' && p[-1] <= '9'))))
            continue;
        q += 2;
        for (n = 0; n < 3 && *q >= '0' && *q <= '9'; n++)
            q++;
        if (n == 0 || *q != '.')
            continue;
        q++;
        for (n = 0; n < 3 && *q >= '0' && *q <= '9'; n++)
            q++;
        if (n == 0 || (*q >= '0' && *q <= '9') || *q == '.')
            continue;
        if ((size_t)(q - p) + 1 > size)
            return -1;
        memcpy(out, p, (size_t)(q - p));
        out[q - p] = '\0';
        return 0;
    }
    return -1;
}

/* The detail of a code: "5.1.1" is 1.1. */
static bool detail_is(const char *status, const char *detail)
{
    return status[0] != '\0' && status[1] == '.' && strcmp(status + 2, detail) == 0;
}

static bool subject_is(const char *status, char subject)
{
    return status[0] != '\0' && status[1] == '.' && status[2] == subject && status[3] == '.';
}

void classify_dsn(const char *status, const char *action, const char *diagnostic,
                  struct bounce_verdict *out)
{
    char code[16] = "";
    bool delayed = action != NULL && strcasecmp(action, "delayed") == 0;

    if (status != NULL && status[0] != '\0')
        classify_find_status(status, code, sizeof code);
    if (code[0] == '\0' && diagnostic != NULL)
        classify_find_status(diagnostic, code, sizeof code);

    enum bounce_class c;
    const char *rule;

    /* not a failure: a delivery, a relay or an expansion report */
    if (code[0] == '2' || (action != NULL && (strcasecmp(action, "delivered") == 0 ||
                                              strcasecmp(action, "relayed") == 0 ||
                                              strcasecmp(action, "expanded") == 0))) {
        c = BOUNCE_UNKNOWN;
        rule = "status-2-not-a-failure";
    } else if (any(diagnostic, policy_words)) {
        /* the sender was blocked, whatever the code says */
        c = BOUNCE_POLICY;
        rule = "text-policy-block";
    } else if (subject_is(code, '7')) {
        c = BOUNCE_POLICY;
        rule = "status-x.7-security-policy";
    } else if (detail_is(code, "2.2") || any(diagnostic, full_words)) {
        /* RFC 3463: a full mailbox is a persistent transient condition */
        c = BOUNCE_SOFT;
        rule = "status-x.2.2-or-text-mailbox-full";
    } else if (code[0] == '4' || delayed) {
        c = BOUNCE_SOFT;
        rule = "status-4-transient";
    } else if (detail_is(code, "1.1") || detail_is(code, "1.0") || detail_is(code, "1.6")) {
        c = BOUNCE_HARD;
        rule = "status-5.1.x-bad-mailbox";
    } else if (detail_is(code, "1.2") || detail_is(code, "1.10") || detail_is(code, "4.4")) {
        c = BOUNCE_HARD;
        rule = "status-5.1.2-bad-domain";
    } else if (detail_is(code, "1.3")) {
        c = BOUNCE_HARD;
        rule = "status-5.1.3-bad-syntax";
    } else if (detail_is(code, "2.1")) {
        c = BOUNCE_HARD;
        rule = "status-5.2.1-mailbox-disabled";
    } else if (any(diagnostic, gone_words)) {
        c = BOUNCE_HARD;
        rule = "text-no-such-mailbox";
    } else if (subject_is(code, '4') || subject_is(code, '3') || detail_is(code, "2.0") ||
               detail_is(code, "2.4")) {
        c = BOUNCE_SOFT;
        rule = "status-5-network-or-system";
    } else if (code[0] == '5') {
        c = BOUNCE_UNKNOWN;
        rule = "status-5-other";
    } else {
        c = BOUNCE_UNKNOWN;
        rule = "no-status";
    }
    out->class = c;
    out->rule = rule;
}
