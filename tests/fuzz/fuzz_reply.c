/*
 * fuzz_reply - the SMTP reply reader (smtp_reply_parse) on server bytes, reply
 * after reply as a session reads them, and the queue id taken from a reply's text;
 * then smtp_dot_stuff on the same bytes as a message body.
 *
 * Checks: a reply spans at least one byte and no more than it was given, has a
 * code 200..599 and a NUL-terminated text within its array; a complete reply is
 * read the same from exactly its own bytes (nothing after it matters); dot-stuffed
 * output ends with CRLF.CRLF and has no bare CR or LF (SMTP smuggling).
 */
#include "../../core/buf.h"
#include "../../core/smtp.h"
#include "fuzz.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void check_reply(const struct smtp_reply *r)
{
    if (r->code < 200 || r->code > 599)
        fuzz_fail("reply code %d", r->code);
    if (memchr(r->text, '\0', sizeof r->text) == NULL)
        fuzz_fail("reply text not terminated");
    if (memchr(r->enhanced, '\0', sizeof r->enhanced) == NULL)
        fuzz_fail("enhanced code not terminated");
    if (r->lines < 1)
        fuzz_fail("a reply of %d lines", r->lines);
}

static void replies(const char *in, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        struct smtp_reply r, again;
        struct blast_error err;
        char queue_id[128];
        size_t used = 0, used_again = 0;
        int rc;

        blast_error_clear(&err);
        rc = smtp_reply_parse(in + pos, len - pos, &r, &used, &err);
        if (rc < 0 && err.code == 0)
            fuzz_fail("error %d without its text", rc);
        if (rc != 1)
            return;
        if (used == 0 || used > len - pos)
            fuzz_fail("a reply of %zu bytes out of %zu", used, len - pos);
        check_reply(&r);
        /* the reply from exactly its own bytes, in a buffer of that size */
        {
            char *own = malloc(used);
            if (own == NULL)
                return;
            memcpy(own, in + pos, used);
            blast_error_clear(&err);
            if (smtp_reply_parse(own, used, &again, &used_again, &err) != 1 || used_again != used ||
                again.code != r.code || strcmp(again.text, r.text) != 0 ||
                strcmp(again.enhanced, r.enhanced) != 0)
                fuzz_fail("a reply reads differently without the bytes after it");
            free(own);
        }
        smtp_queue_id(r.text, queue_id, sizeof queue_id);
        if (memchr(queue_id, '\0', sizeof queue_id) == NULL)
            fuzz_fail("queue id not terminated");
        pos += used;
    }
}

/* Undo the stuffing as a server does (RFC 5321 §4.5.2): the message comes back. */
static void undo_stuffing(const char *in, size_t len, const struct buf *out)
{
    size_t i = 0, o = 0, end = out->len - 3; /* without the final ".\r\n" */
    bool bol = true;

    for (; i < end; i++) {
        if (bol && out->data[i] == '.')
            i++; /* the dot that was added */
        if (i >= end)
            fuzz_fail("a dot-stuffed line ends after its added dot");
        if (o < len && out->data[i] != in[o])
            fuzz_fail("unstuffed byte %zu differs from the message", o);
        bol = out->data[i] == '\n';
        o++;
    }
    /* a message without its last CRLF gets one */
    if (o != len && !(len > 0 && o == len + 2 && in[len - 1] != '\n'))
        fuzz_fail("unstuffed %zu bytes from a message of %zu", o, len);
}

static void dot_stuff(const char *in, size_t len)
{
    struct buf out = BUF_INIT;
    struct blast_error err;
    size_t i;

    blast_error_clear(&err);
    if (smtp_dot_stuff(&out, in, len, &err) == 0) {
        if (out.len < 5 || memcmp(out.data + out.len - 5, "\r\n.\r\n", 5) != 0) {
            if (!(out.len == 3 && memcmp(out.data, ".\r\n", 3) == 0))
                fuzz_fail("dot-stuffed data does not end with CRLF.CRLF");
        }
        for (i = 0; i < out.len; i++) {
            if (out.data[i] == '\r' && (i + 1 == out.len || out.data[i + 1] != '\n'))
                fuzz_fail("bare CR at %zu", i);
            if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
                fuzz_fail("bare LF at %zu", i);
        }
        undo_stuffing(in, len, &out);
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    replies((const char *)data, size);
    dot_stuff((const char *)data, size);
    return 0;
}
