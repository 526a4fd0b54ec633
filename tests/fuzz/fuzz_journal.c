/*
 * fuzz_journal - a journal file as a crash, a full disk or another hand may leave it
 * (core/journal): the input is the file, its first byte a switch: odd, each line's
 * CRC is set right first (so that what lies behind the CRC is reached, as a record
 * written by a faulty version would be); journal_read_sent reads it as the bounce
 * intake does (never writing), then journal_open reads and indexes it as send does
 * (cutting a torn last record), and every row's state and result is asked for.
 *
 * Checks: what journal_read_sent yields has a row of at least 1 and an email; every row
 * journal_each yields is within the rows asked, in order, with a known status or "another status";
 * journal_state and journal_result agree on whether a row has a result; a failure says why.
 */
#include "../../core/journal.h"
#include "../../core/outcome.h"
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 4096 /* rows asked of the journal (records for others are still read) */

static int on_sent(void *arg, const struct journal_sent *s)
{
    (void)arg;
    /* a "sending" record may lack its Message-ID: the intake matches by address then */
    if (s->row == 0 || s->email == NULL)
        fuzz_fail("a sent record of row %zu without its email", s->row);
    return 0;
}

struct walk {
    size_t last;
};

static int on_row(void *arg, const struct outcome *o, struct blast_error *err)
{
    struct walk *w = arg;

    (void)err;
    if (o->row == 0 || o->row > ROWS || o->row <= w->last)
        fuzz_fail("journal_each gave row %zu after %zu", o->row, w->last);
    if ((int)o->status < 0 || o->status > OUTCOME_STATUS_COUNT)
        fuzz_fail("row %zu with status %d", o->row, (int)o->status);
    w->last = o->row;
    return 0;
}

/* Each line "XXXXXXXX json" given the CRC of its json (the journal's line form). */
static void fix_crcs(uint8_t *d, size_t n)
{
    size_t start = 0, i;

    for (i = 0; i <= n; i++) {
        if (i < n && d[i] != '\n')
            continue;
        if (i - start > 9 && d[start + 8] == ' ') {
            char crc[9];
            snprintf(crc, sizeof crc, "%08lx", journal_crc32(d + start + 9, i - start - 9));
            memcpy(d + start, crc, 8);
        }
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct journal_options o;
    struct journal *j = NULL;
    struct blast_error err;
    struct walk w = {0};
    char path[64];
    size_t row;
    int fd, rc;

    uint8_t *copy;

    if (size == 0 || (copy = malloc(size)) == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1)
        fix_crcs(copy, size - 1);
    fd = fuzz_memfile(copy, size - 1, path, sizeof path);
    free(copy);
    if (fd < 0)
        return 0;
    blast_error_clear(&err);
    rc = journal_read_sent(path, on_sent, NULL, &err);
    if (rc < 0 && err.text[0] == '\0')
        fuzz_fail("journal_read_sent failed (%d) without saying why", rc);
    memset(&o, 0, sizeof o);
    o.force = true; /* whatever campaign wrote it */
    o.no_run = true;
    blast_error_clear(&err);
    if (journal_open(path, &o, &j, &err) < 0) {
        if (err.text[0] == '\0')
            fuzz_fail("journal_open failed without saying why");
        close(fd);
        return 0;
    }
    blast_error_clear(&err);
    if (journal_each(j, ROWS, on_row, &w, &err) < 0 && err.text[0] == '\0')
        fuzz_fail("journal_each failed without saying why");
    for (row = 1; row <= 64; row++) {
        struct outcome out;
        int attempts = 0, have;
        enum journal_state st = journal_state(j, row, &attempts);
        blast_error_clear(&err);
        have = journal_result(j, row, &out, &err);
        if (have < 0)
            continue;
        if (have > 0) {
            if (out.row != row)
                fuzz_fail("journal_result of row %zu gave row %zu", row, out.row);
            outcome_free(&out);
        }
        if (st == JOURNAL_NONE && have > 0)
            fuzz_fail("row %zu: no state, yet a result", row);
    }
    journal_close(j);
    close(fd);
    return 0;
}
