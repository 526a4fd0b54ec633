/*
 * fuzz_jsontape - the tape parser (jsontape_parse) against jansson on the same
 * text, and the outcome reader on what they read.
 *
 * The first byte chooses the flags (bit 0: JSONTAPE_DECODE_ANY, bit 1:
 * JSONTAPE_ALLOW_NUL), the rest is the text. Checks (tests/fuzz/jsondiff.h): both
 * accept it or both refuse it; what both accept reads to the same values; what
 * both refuse, they refuse in the same words at the same place. Then, on what was
 * read: the jansson tree copied onto a tape (jsontape_from_json) reads to the
 * same values again; outcome_from_tape() on the tape and outcome_from_json() on
 * the tree give the same record or the same error; a record that reads is written
 * by outcome_format_json(), and that text parses and reads back to the same text.
 * One tape is kept from input to input, as the readers keep theirs.
 */
#include "../../core/jsontape.h"
#include "../../core/outcome.h"
#include "fuzz.h"
#include "jsondiff.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct jsontape tape, copy, again;
static int ready;

static void round_trip(const struct outcome *o)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    struct blast_error err;
    struct outcome back;

    if (outcome_format_json(o, false, &a) < 0)
        fuzz_fail("an outcome cannot be written");
    blast_error_clear(&err);
    if (jsontape_parse(&again, a.data, a.len, 0, &err) < 0)
        fuzz_fail("an outcome written as text that does not parse: %s\n%s", err.text, a.data);
    if (outcome_from_tape(jsontape_root(&again), &back, &err) < 0)
        fuzz_fail("an outcome written as text that does not read back: %s\n%s", err.text, a.data);
    if (outcome_format_json(&back, false, &b) < 0 || a.len != b.len ||
        memcmp(a.data, b.data, a.len) != 0)
        fuzz_fail("an outcome reads back different:\n%s\n%s", a.data, b.data);
    outcome_free(&back);
    buf_free(&a);
    buf_free(&b);
}

/* The record from the tape and from jansson's tree: the same, or the same error. */
static void outcomes(json_t *tree)
{
    struct outcome a, b;
    struct blast_error ea, eb;
    struct buf ta = BUF_INIT, tb = BUF_INIT;
    int ra, rb;

    blast_error_clear(&ea);
    blast_error_clear(&eb);
    ra = outcome_from_tape(jsontape_root(&tape), &a, &ea);
    rb = outcome_from_json(tree, &b, &eb);
    if (ra != rb || strcmp(ea.text, eb.text) != 0)
        fuzz_fail("outcome from the tape %d (%s), from the tree %d (%s)", ra, ea.text, rb, eb.text);
    if (ra < 0) {
        if (ea.text[0] == '\0' || a.email != NULL || a.history != NULL)
            fuzz_fail("an outcome refused without a reason, or half read");
        return;
    }
    if (outcome_format_json(&a, false, &ta) < 0 || outcome_format_json(&b, false, &tb) < 0 ||
        ta.len != tb.len || memcmp(ta.data, tb.data, ta.len) != 0)
        fuzz_fail("outcomes differ:\n%s\n%s", ta.data, tb.data);
    round_trip(&a);
    outcome_free(&a);
    outcome_free(&b);
    buf_free(&ta);
    buf_free(&tb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned flags;
    char why[512];
    json_error_t je;
    struct blast_error err;
    json_t *tree;
    size_t jflags;
    int verdict;

    if (size == 0)
        return 0;
    if (!ready) {
        jsontape_init(&tape);
        jsontape_init(&copy);
        jsontape_init(&again);
        ready = 1;
    }
    flags = data[0] & (JSONTAPE_DECODE_ANY | JSONTAPE_ALLOW_NUL);
    data++;
    size--;
    verdict = jsondiff_check(&tape, data, size, flags, why, sizeof why);
    if (verdict < 0)
        fuzz_fail("the tape and jansson differ: %s", why);
    if (verdict == 0)
        return 0;
    jflags = ((flags & JSONTAPE_DECODE_ANY) ? JSON_DECODE_ANY : 0) |
             ((flags & JSONTAPE_ALLOW_NUL) ? JSON_ALLOW_NUL : 0);
    tree = json_loadb((const char *)data, size, jflags, &je);
    if (tree == NULL)
        fuzz_fail("jansson refuses what it accepted: %s", je.text);
    blast_error_clear(&err);
    if (jsontape_from_json(&copy, tree, &err) < 0)
        fuzz_fail("a tree does not copy onto a tape: %s", err.text);
    if (jsondiff_same(jsontape_root(&copy), tree, why, sizeof why) < 0)
        fuzz_fail("a tree copied onto a tape differs: %s", why);
    outcomes(tree);
    json_decref(tree);
    return 0;
}
