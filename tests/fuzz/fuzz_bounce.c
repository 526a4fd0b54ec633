/*
 * fuzz_bounce - one inbound message (core/bounce.h) from fuzzed bytes: what anyone
 * who knows the bounce address can send.
 *
 * Checks: a message is read or refused with an error, never more; its kind and every
 * verdict are in range with a rule; the counts stay within their bounds; every text
 * kept is valid UTF-8 without control characters and at most BOUNCE_TEXT_MAX bytes.
 */
#include "../../core/bounce.h"
#include "fuzz.h"

#include <glib.h>
#include <string.h>

static void check_text(const char *what, const char *s)
{
    size_t len;

    if (s == NULL)
        return;
    len = strlen(s);
    if (len == 0 || len > BOUNCE_TEXT_MAX + 2) /* "<" and ">" around a kept id */
        fuzz_fail("%s of %zu bytes", what, len);
    if (!g_utf8_validate(s, (gssize)len, NULL))
        fuzz_fail("%s is not UTF-8", what);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            fuzz_fail("%s holds control character 0x%02x", what, (unsigned char)s[i]);
}

static void check_verdict(const struct bounce_verdict *v)
{
    if (v->class < 0 || v->class >= BOUNCE_CLASS_COUNT || v->rule == NULL || v->rule[0] == '\0')
        fuzz_fail("a verdict without a class or a rule");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const unsub[] = {"unsubscribe@acme.example"};
    const struct bounce_options opt = {unsub, 1};
    struct bounce_message m;
    struct blast_error err = {0};
    int rc = bounce_parse(data, size, &opt, &m, &err);

    if (rc < 0 && rc != BLAST_ESYNTAX && rc != BLAST_ENOMEM)
        fuzz_fail("bounce_parse returned %d", rc);
    if (rc == 0) {
        if (m.kind < 0 || m.kind >= BOUNCE_KIND_COUNT)
            fuzz_fail("kind %d", (int)m.kind);
        if (m.nrecipients > BOUNCE_RECIPIENTS_MAX || m.ndelivered_to > BOUNCE_ADDRESSES_MAX)
            fuzz_fail("%zu recipients, %zu addresses", m.nrecipients, m.ndelivered_to);
        check_verdict(&m.verdict);
        check_text("message_id", m.message_id);
        check_text("about_message_id", m.about_message_id);
        check_text("from", m.from);
        check_text("subject", m.subject);
        check_text("feedback_type", m.feedback_type);
        for (size_t i = 0; i < m.ndelivered_to; i++)
            check_text("delivered_to", m.delivered_to[i]);
        for (size_t i = 0; i < m.nrecipients; i++) {
            const struct bounce_recipient *r = &m.recipients[i];
            check_verdict(&r->verdict);
            check_text("final_recipient", r->final_recipient);
            check_text("original_recipient", r->original_recipient);
            check_text("action", r->action);
            check_text("status", r->status);
            check_text("diagnostic", r->diagnostic);
        }
    }
    bounce_message_free(&m);
    return 0;
}
