/*
 * Unit tests for core/bounce: messages as mail systems send them back
 * (../fixtures/bounces/), each read as the kind it is, with its recipients, their
 * verdicts, the addresses it was delivered to and the message it is about; and
 * hostile input read without harm.
 */
#include "../../core/bounce.h"
#include "../../core/buf.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BOUNCES "../fixtures/bounces/"

static const char *const unsubscribe_to[] = {"unsubscribe@acme.example"};
static const struct bounce_options opts = {unsubscribe_to, 1};

static void parse_file(const char *name, struct bounce_message *m)
{
    struct buf b;
    struct blast_error err = {0};
    char path[256];
    buf_init(&b);
    snprintf(path, sizeof path, BOUNCES "%s", name);
    cr_assert_eq(buf_read_file(&b, path, &err), 0, "%s: %s", path, err.text);
    cr_assert_eq(bounce_parse(b.data, b.len, &opts, m, &err), 0, "%s: %s", name, err.text);
    buf_free(&b);
}

static bool delivered_to(const struct bounce_message *m, const char *addr)
{
    for (size_t i = 0; i < m->ndelivered_to; i++)
        if (strcasecmp(m->delivered_to[i], addr) == 0)
            return true;
    return false;
}

struct expect {
    const char *file;
    enum bounce_kind kind;
    size_t nrecipients;
    const char *recipient; /* the first recipient's final (or else original) address */
    enum bounce_class class;
    const char *rule;    /* the first recipient's verdict, or the message's without one */
    const char *status;  /* the first recipient's status */
    const char *about;   /* the message it is about */
    const char *address; /* one of the addresses it was delivered to */
};

static const struct expect cases[] = {
    {"postfix-user-unknown.eml", BOUNCE_KIND_DSN, 1, "unknown1@nowhere.test", BOUNCE_HARD,
     "status-5.1.x-bad-mailbox", "5.1.1", "<17649114.1.aaaa@acme.example>",
     "bounces+aaaqaaaaabjk6aan4mtb5wwgxcia@acme.example"},
    {"gmail-over-quota-delayed.eml", BOUNCE_KIND_DSN, 1, "ada@example.com", BOUNCE_SOFT,
     "status-x.2.2-or-text-mailbox-full", "4.2.2", "<17649114.2.bbbb@acme.example>",
     "bounces@acme.example"},
    {"office365-not-found.eml", BOUNCE_KIND_DSN, 1, "nobody@contoso.example", BOUNCE_HARD,
     "status-5.1.2-bad-domain", "5.1.10", "<17649114.3.cccc@acme.example>",
     "bounces+aaaqaaaaacbbbbbbbbbbbbbbbbbb@acme.example"},
    {"global-utf8.eml", BOUNCE_KIND_DSN, 1, "\xe5\xb1\xb1\xe7\x94\xb0@example.jp", BOUNCE_HARD,
     "status-5.1.x-bad-mailbox", "5.1.1", "<17649114.4.dddd@acme.example>", "bounces@acme.example"},
    {"arf-yahoo.eml", BOUNCE_KIND_ARF, 1, "redacted@yahoo.example", BOUNCE_COMPLAINT,
     "arf-complaint", NULL, "<17649114.5.eeee@acme.example>",
     "bounces+aaaqaaaaaddddddddddddddddddd@acme.example"},
    {"arf-headers-only.eml", BOUNCE_KIND_ARF, 1, "carol@isp.example", BOUNCE_COMPLAINT,
     "arf-complaint", NULL, "<17649114.6.ffff@acme.example>", "abuse@acme.example"},
    {"arf-not-spam.eml", BOUNCE_KIND_ARF, 1, "dave@isp.example", BOUNCE_UNKNOWN,
     "arf-not-a-complaint", NULL, NULL, "abuse@acme.example"},
    {"autoreply-rfc3834.eml", BOUNCE_KIND_AUTOREPLY, 0, NULL, BOUNCE_AUTOREPLY, "auto-submitted",
     NULL, "<17649114.7.gggg@acme.example>", "bounces+aaaqaaaaaeeeeeeeeeeeeeeeeeee@acme.example"},
    {"vacation-outlook.eml", BOUNCE_KIND_AUTOREPLY, 0, NULL, BOUNCE_AUTOREPLY, "autoreply-header",
     NULL, "<17649114.8.hhhh@acme.example>", "news@acme.example"},
    {"unsubscribe-request.eml", BOUNCE_KIND_UNSUBSCRIBE, 0, NULL, BOUNCE_UNSUBSCRIBE,
     "mailto-unsubscribe", NULL, NULL, "unsubscribe@acme.example"},
    {"exim-plain.eml", BOUNCE_KIND_PLAIN, 1, "frank@example.net", BOUNCE_HARD,
     "status-5.1.x-bad-mailbox", "5.1.1", "<17649114.9.iiii@acme.example>",
     "bounces+aaaqaaaaafffffffffffffffffff@acme.example"},
    {"qmail-plain.eml", BOUNCE_KIND_PLAIN, 1, "grace@example.org", BOUNCE_SOFT,
     "status-x.2.2-or-text-mailbox-full", "5.2.2", NULL, "bounces@acme.example"},
    {"human-reply.eml", BOUNCE_KIND_OTHER, 0, NULL, BOUNCE_UNKNOWN, "not-a-bounce", NULL, NULL,
     "news@acme.example"},
};

Test(bounce, real_messages)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct expect *e = &cases[i];
        struct bounce_message m;
        parse_file(e->file, &m);
        cr_expect_eq(m.kind, e->kind, "%s: kind %s", e->file, bounce_kind_name(m.kind));
        cr_expect_eq(m.nrecipients, e->nrecipients, "%s: %zu recipients", e->file, m.nrecipients);
        const struct bounce_verdict *v = &m.verdict;
        if (e->nrecipients > 0 && m.nrecipients > 0) {
            const struct bounce_recipient *r = &m.recipients[0];
            const char *addr = r->final_recipient ? r->final_recipient : r->original_recipient;
            cr_expect_str_eq(addr ? addr : "(none)", e->recipient, "%s", e->file);
            cr_expect_str_eq(r->status ? r->status : "(none)", e->status ? e->status : "(none)",
                             "%s", e->file);
            v = &r->verdict;
        }
        cr_expect_eq(v->class, e->class, "%s: class %s", e->file, bounce_class_name(v->class));
        cr_expect_str_eq(v->rule, e->rule, "%s", e->file);
        cr_expect_str_eq(m.about_message_id ? m.about_message_id : "(none)",
                         e->about ? e->about : "(none)", "%s", e->file);
        cr_expect(delivered_to(&m, e->address), "%s: not delivered to %s", e->file, e->address);
        bounce_message_free(&m);
    }
}

Test(bounce, dsn_fields)
{
    struct bounce_message m;
    parse_file("postfix-user-unknown.eml", &m);
    cr_assert_eq(m.nrecipients, 1);
    cr_expect_str_eq(m.recipients[0].original_recipient, "unknown1@nowhere.test");
    cr_expect_str_eq(m.recipients[0].action, "failed");
    /* a folded Diagnostic-Code is one line, its type left out */
    cr_expect_str_eq(m.recipients[0].diagnostic,
                     "550 5.1.1 <unknown1@nowhere.test>: Recipient address rejected: User unknown");
    cr_expect_str_eq(m.message_id, "<20261205051011.4B2F1200A1@mx.nowhere.test>");
    cr_expect_str_eq(m.from, "MAILER-DAEMON@mx.nowhere.test");
    bounce_message_free(&m);
}

Test(bounce, prose_reads_no_address_of_the_returned_copy)
{
    struct bounce_message m;
    parse_file("exim-plain.eml", &m);
    for (size_t i = 0; i < m.nrecipients; i++)
        cr_expect(strcmp(m.recipients[i].final_recipient, "help@acme.example") != 0 &&
                      strcmp(m.recipients[i].final_recipient, "news@acme.example") != 0,
                  "%s read from the copy", m.recipients[i].final_recipient);
    bounce_message_free(&m);
}

static int parse_text(const char *text, size_t len, struct bounce_message *m)
{
    struct blast_error err = {0};
    return bounce_parse(text, len, &opts, m, &err);
}

Test(bounce, not_a_message)
{
    struct bounce_message m;
    cr_expect_eq(parse_text("", 0, &m), BLAST_ESYNTAX);
    bounce_message_free(&m);
    cr_expect_eq(parse_text("just words, no header at all\n", 29, &m), BLAST_ESYNTAX);
    bounce_message_free(&m);
}

/* A DSN whose fields carry NUL bytes, control characters and broken UTF-8. */
Test(bounce, hostile_field_values)
{
    static const char msg[] =
        "From: MAILER-DAEMON@x.example\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=Z\r\n\r\n"
        "--Z\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        "Final-Recipient: rfc822; a\0b@x.example\r\nAction: fai\x01led\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 \xff\xfe bad \x1b[31m text\r\n\r\n--Z--\r\n";
    struct bounce_message m;
    cr_assert_eq(parse_text(msg, sizeof msg - 1, &m), 0);
    cr_assert_eq(m.kind, BOUNCE_KIND_DSN);
    for (size_t i = 0; i < m.nrecipients; i++) {
        const char *d = m.recipients[i].diagnostic;
        for (const char *c = d; c && *c; c++)
            cr_expect((unsigned char)*c >= 0x20 && *c != 0x7f, "control character kept");
        cr_expect(!d || !strstr(d, "\xff"), "broken UTF-8 kept");
    }
    bounce_message_free(&m);
}

/* Multiparts nested far deeper than any bounce: read (or refused) without harm. */
Test(bounce, deep_nesting)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "From: MAILER-DAEMON@x.example\nSubject: Undelivered\nMIME-Version: 1.0\n");
    for (int i = 0; i < 5000; i++)
        buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    buf_puts(&b, "Content-Type: text/plain\n\n550 5.1.1 <x@y.example> user unknown\n");
    struct bounce_message m;
    int rc = parse_text(b.data, b.len, &m);
    cr_expect(rc == 0 || rc == BLAST_ESYNTAX);
    bounce_message_free(&m);
    buf_free(&b);
}

/* A report of more recipients than kept: the first BOUNCE_RECIPIENTS_MAX. */
Test(bounce, recipients_bounded)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "From: MAILER-DAEMON@x.example\nMIME-Version: 1.0\nContent-Type: multipart/report;"
                 " report-type=delivery-status; boundary=Z\n\n--Z\nContent-Type: "
                 "message/delivery-status\n\nReporting-MTA: dns; x\n\n");
    for (int i = 0; i < 500; i++)
        buf_printf(&b, "Final-Recipient: rfc822; r%d@x.example\nAction: failed\nStatus: 5.1.1\n\n",
                   i);
    buf_puts(&b, "--Z--\n");
    struct bounce_message m;
    cr_assert_eq(parse_text(b.data, b.len, &m), 0);
    cr_expect_eq(m.nrecipients, BOUNCE_RECIPIENTS_MAX);
    cr_expect_str_eq(m.recipients[0].final_recipient, "r0@x.example");
    bounce_message_free(&m);
    buf_free(&b);
}
