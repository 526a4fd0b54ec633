/*
 * Unit tests for core/jsontape: valid and invalid texts, escapes and surrogate
 * pairs, UTF-8 checks, numbers at their limits, the depth rule, errors placed at
 * their byte, the accessors, storage reused from text to text, jansson trees
 * copied onto a tape; and, throughout, the same verdict and values as jansson on
 * the same text (tests/fuzz/jsondiff.h), on a list of hand-picked texts and on
 * many texts mutated from them.
 */
#include "../../core/jsontape.h"
#include "../fuzz/jsondiff.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Both parsers on text (NUL-terminated unless len given), expecting verdict (1 read, 0 refused). */
static void agree_n(const char *text, size_t len, unsigned flags, int verdict)
{
    struct jsontape t;
    char why[512];
    int got;

    jsontape_init(&t);
    got = jsondiff_check(&t, text, len, flags, why, sizeof why);
    cr_assert_neq(got, -1, "'%.*s': %s", (int)len, text, why);
    cr_assert_eq(got, verdict, "'%.*s' was %s", (int)len, text, got ? "read" : "refused");
    jsontape_free(&t);
}

static void agree(const char *text, unsigned flags, int verdict)
{
    agree_n(text, strlen(text), flags, verdict);
}

/* Parse text, which must read; the tape is the caller's to free. */
static const struct jsontape_node *parse_ok(struct jsontape *t, const char *text, unsigned flags)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(jsontape_parse(t, text, strlen(text), flags, &err), 0, "'%s': %s", text, err.text);
    cr_assert_not_null(jsontape_root(t));
    return jsontape_root(t);
}

/* text must be refused with a message containing says, at line:column and byte offset. */
static void refused_at(const char *text, unsigned flags, const char *says, int line, int column,
                       size_t offset)
{
    struct jsontape t;
    struct blast_error err;

    jsontape_init(&t);
    blast_error_clear(&err);
    cr_assert_eq(jsontape_parse(&t, text, strlen(text), flags, &err), BLAST_ESYNTAX, "'%s'", text);
    cr_assert_null(jsontape_root(&t));
    cr_assert(strstr(err.text, says) != NULL, "'%s': '%s' does not say '%s'", text, err.text, says);
    cr_assert_eq(err.line, line, "'%s': line %d: %s", text, err.line, err.text);
    cr_assert_eq(err.column, column, "'%s': column %d: %s", text, err.column, err.text);
    cr_assert_eq(t.error_offset, offset, "'%s': offset %zu: %s", text, t.error_offset, err.text);
    jsontape_free(&t);
}

static const char *const valid[] = {
    "{}",
    "[]",
    " \t\r\n[ 1 , 2 ]\n ",
    "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
    "{\"a\":1,\"a\":2,\"b\":3,\"a\":{\"x\":[]}}",
    "[-0]",
    "[-0.0]",
    "[0.5e-3, 1E+2, 1e2, -1.25E-2, 0e0, 10.010]",
    "[9223372036854775807, -9223372036854775808]",
    "[1e308, 1e-400, 4.9e-324, 123456789012345678901234567890.5]",
    "[\"\\u00e9\\ud83d\\ude00\\u20ac\\uFFFF\\uD800\\uDC00\\uDBFF\\uDFFF\"]",
    "[\"\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac\xef\xbf\xbf\xf4\x8f\xbf\xbf\"]",
    "[\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
    "[\"a string longer than eight bytes, with \\\"quotes\\\" in the middle of it\"]",
    "[\"\x7f\"]",
    "{\"\":\"\"}",
    "[[[[[[[[[[{\"deep\":[[[]]]}]]]]]]]]]]",
    "{\"recipients\":[{\"email\":\"a@x\",\"row\":1,\"history\":[{\"time\":null}]}]}",
};

static const char *const invalid[] = {
    "",
    " ",
    "1",
    "\"s\"",
    "null",
    "[",
    "{",
    "[1,]",
    "[,1]",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\":1,}",
    "{,}",
    "{1:2}",
    "[01]",
    "[-01]",
    "[1.]",
    "[.5]",
    "[1e]",
    "[1e+]",
    "[1.e5]",
    "[-]",
    "[+1]",
    "[9223372036854775808]",
    "[-9223372036854775809]",
    "[99999999999999999999]",
    "[1e309]",
    "[-1e309]",
    "[\"\\ud800\"]",
    "[\"\\udc00\"]",
    "[\"\\ud800\\u0041\"]",
    "[\"\\ud800\\n\"]",
    "[\"\\ud800\\ud800\"]",
    "[\"\\u0000\"]",
    "{\"\\u0000\":1}",
    "{\"a\\u0000\":1}",
    "[\"\xc0\x80\"]",
    "[\"\xc1\xbf\"]",
    "[\"\xe0\x80\x80\"]",
    "[\"\xed\xa0\x80\"]",
    "[\"\xf0\x80\x80\x80\"]",
    "[\"\xf4\x90\x80\x80\"]",
    "[\"\xf5\x80\x80\x80\"]",
    "[\"\xe2\x82\"]",
    "[\"\xe2\x82",
    "[\"\x80\"]",
    "[\"\xff\"]",
    "[\"a\x01\"]",
    "[\"a\nb\"]",
    "[\"a\tb\"]",
    "[\"\\x\"]",
    "[\"\\u12\"]",
    "[\"\\u12g4\"]",
    "[\"\\U0041\"]",
    "[\"abc",
    "[\"abc\\",
    "[\"abc\\u00",
    "[tru]",
    "[truex]",
    "[True]",
    "[nul]",
    "[NaN]",
    "[Infinity]",
    "[-Infinity]",
    "[1] x",
    "[1] [2]",
    "[1 2]",
    "{\"a\":1 \"b\":2}",
    "{\"a\" 1}",
    "['a']",
    "\xef\xbb\xbf[1]",
    "[\xc3\xa9]",
    "[\xff]",
    "[1}",
    "{\"a\":1]",
    "[1,2",
    "{\"a\":1,",
    "[/* no */]",
    /* what jansson's lexer finds in a token comes before what the parser finds of it */
    "{\"email\"\x87:1}",
    "[1\x87]",
    "[1 \x87]",
    "[tru\x87]",
    "[true\x87]",
    "[-\x87]",
    "[1.\x87]",
    "[1e\x87]",
    "[99999999999999999999\x87]",
    "[\"\\\x87\"]",
    "[\"\\u12\x87\"]",
    "{\"a\" \"b\x01\"}",
    "{\"a\" \"\\ud800\"}",
    "{\"a\" 99999999999999999999}",
    "{\"a\":1 1e999}",
    "[\"\\ud800\x01\"]",
    "[\"\\ud800\\x\"]",
    "[\"\\udc00\\u12\"]",
    "[\"\\ud800\\u0041\xff\"]",
    "[\"\\u0000\\ud800\"]",
    "{\"\\u0000\x01\":1}",
    "[\x01]",
    "[\x7f]",
    "1\x87",
    "[\"abc\" \x87]",
    "{\"a\":1}\x87",
    " \x87",
    "[\xc3\xa9\x87]",
};

Test(jsontape, reads_what_jansson_reads)
{
    size_t i;

    for (i = 0; i < sizeof valid / sizeof valid[0]; i++)
        agree(valid[i], 0, 1);
}

Test(jsontape, refuses_what_jansson_refuses)
{
    size_t i;

    for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        agree(invalid[i], 0, 0);
    /* NUL bytes in the text, inside a string and out */
    agree_n("[\"a\0b\"]", 7, 0, 0);
    agree_n("[1]\0", 4, 0, 0);
    agree_n("[\0]", 3, 0, 0);
    agree_n("\0", 1, 0, 0);
}

/*
 * jansson loses one NUL byte right after a number or a word (it reads a byte past
 * the token and puts it back, and a NUL put back reads as nothing): the tape
 * does the same, and no other NUL passes (found by fuzz_jsontape).
 */
Test(jsontape, one_nul_after_a_number_or_a_word_is_skipped_as_jansson_skips_it)
{
    static const struct {
        const char *text;
        size_t len;
        int verdict;
    } cases[] = {
        {"[0\0]", 4, 1},       {"[true\0]", 7, 1},  {"[null\0 ]", 8, 1},
        {"{\"a\":1\0}", 8, 1}, {"[1.5\0]", 6, 1},   {"[1e5\0]", 6, 1},
        {"[-1\0,2]", 7, 1},    {"[0\0\n]", 5, 1},   {"[9223372036854775807\0]", 22, 1},
        {"[0\0\0]", 5, 0},     {"[\"a\"\0]", 6, 0}, {"[0 \0]", 5, 0},
        {"[0\0x]", 5, 0},      {"[[]\0]", 5, 0},    {"[1]\0", 4, 0},
        {"[truex\0]", 8, 0},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        agree_n(cases[i].text, cases[i].len, 0, cases[i].verdict);
    agree_n("0\0", 2, JSONTAPE_DECODE_ANY, 1);
    agree_n("0\0 ", 3, JSONTAPE_DECODE_ANY | JSONTAPE_ALLOW_NUL, 1);
}

Test(jsontape, flags_as_jansson_has_them)
{
    agree("1", JSONTAPE_DECODE_ANY, 1);
    agree(" \"s\" ", JSONTAPE_DECODE_ANY, 1);
    agree("null", JSONTAPE_DECODE_ANY, 1);
    agree("-5e-1", JSONTAPE_DECODE_ANY, 1);
    agree("", JSONTAPE_DECODE_ANY, 0);
    agree("-", JSONTAPE_DECODE_ANY, 0);
    agree("1 2", JSONTAPE_DECODE_ANY, 0);
    agree("[\"a\\u0000b\"]", JSONTAPE_ALLOW_NUL, 1);
    agree("{\"\\u0000\":1}", JSONTAPE_ALLOW_NUL, 0);
}

Test(jsontape, values_and_accessors)
{
    struct jsontape t;
    const struct jsontape_node *root, *v, *k;
    size_t n = 0;

    jsontape_init(&t);
    root = parse_ok(&t,
                    "{\"s\":\"caf\\u00e9 \\ud83d\\ude00\",\"i\":-42,\"r\":2.5,\"t\":true,"
                    "\"f\":false,\"n\":null,\"a\":[1,[2,3],{\"x\":4},5],\"o\":{},\"s\":\"again\"}",
                    0);
    cr_assert_eq(jsontape_type(root), JSONTAPE_OBJECT);
    cr_assert_eq(jsontape_size(root), 9, "every member, the duplicate too");
    cr_assert_str_eq(jsontape_string(jsontape_member(root, "s")), "again", "the last one counts");
    cr_assert_eq(jsontape_integer(jsontape_member(root, "i")), -42);
    cr_assert_eq(jsontape_real(jsontape_member(root, "r")), 2.5);
    cr_assert(jsontape_is(jsontape_member(root, "t"), JSONTAPE_TRUE));
    cr_assert(jsontape_is(jsontape_member(root, "f"), JSONTAPE_FALSE));
    cr_assert(jsontape_is(jsontape_member(root, "n"), JSONTAPE_NULL));
    cr_assert_null(jsontape_member(root, "missing"));
    cr_assert_not(jsontape_is(NULL, JSONTAPE_NULL));
    cr_assert_null(jsontape_member(jsontape_member(root, "a"), "x"), "not an object");
    cr_assert_null(jsontape_string(jsontape_member(root, "i")));
    cr_assert_eq(jsontape_integer(jsontape_member(root, "s")), 0);
    cr_assert_eq(jsontape_real(jsontape_member(root, "i")), 0);
    cr_assert_null(jsontape_first(jsontape_member(root, "o")));
    cr_assert_eq(jsontape_size(jsontape_member(root, "o")), 0);

    /* the first string, by walking the members */
    k = jsontape_first(root);
    cr_assert_str_eq(jsontape_string(k), "s");
    cr_assert_str_eq(jsontape_string(k + 1), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    cr_assert_eq(jsontape_size(k + 1), 10);
    for (; k != NULL; k = jsontape_next(root, k + 1))
        n++;
    cr_assert_eq(n, 9);

    /* the array's elements, nested values skipped whole */
    v = jsontape_member(root, "a");
    cr_assert_eq(jsontape_size(v), 4);
    k = jsontape_first(v);
    cr_assert_eq(jsontape_integer(k), 1);
    k = jsontape_next(v, k);
    cr_assert_eq(jsontape_type(k), JSONTAPE_ARRAY);
    cr_assert_eq(jsontape_integer(jsontape_next(k, jsontape_first(k))), 3);
    k = jsontape_next(v, k);
    cr_assert_eq(jsontape_integer(jsontape_member(k, "x")), 4);
    k = jsontape_next(v, k);
    cr_assert_eq(jsontape_integer(k), 5);
    cr_assert_null(jsontape_next(v, k));
    jsontape_free(&t);
}

Test(jsontape, numbers_at_their_limits)
{
    struct jsontape t;
    const struct jsontape_node *a, *e;

    jsontape_init(&t);
    a = parse_ok(&t, "[9223372036854775807,-9223372036854775808,-0,0,1e-400,-0.0,1.5E3]", 0);
    e = jsontape_first(a);
    cr_assert_eq(jsontape_integer(e), INT64_MAX);
    e = jsontape_next(a, e);
    cr_assert_eq(jsontape_integer(e), INT64_MIN);
    e = jsontape_next(a, e);
    cr_assert_eq(jsontape_type(e), JSONTAPE_INTEGER, "-0 is an integer, as in jansson");
    cr_assert_eq(jsontape_integer(e), 0);
    e = jsontape_next(a, jsontape_next(a, e)); /* past 0 */
    cr_assert_eq(jsontape_type(e), JSONTAPE_REAL, "an underflow reads as a real");
    cr_assert_eq(jsontape_real(e), 0);
    e = jsontape_next(a, e);
    cr_assert(signbit(jsontape_real(e)));
    e = jsontape_next(a, e);
    cr_assert_eq(jsontape_real(e), 1500.0);
    jsontape_free(&t);

    refused_at("[9223372036854775808]", 0, "too big integer near '9223372036854775808'", 1, 20, 19);
    refused_at("[-9223372036854775809]", 0, "too big negative integer", 1, 21, 20);
    refused_at("[1e400]", 0, "real number overflow near '1e400'", 1, 6, 5);
}

Test(jsontape, errors_name_their_byte_in_jansson_words)
{
    refused_at("[1,]", 0, "unexpected token near ']'", 1, 4, 3);
    refused_at("{\n\"a\" 1}", 0, "':' expected near '1'", 2, 5, 6);
    refused_at("[tru]", 0, "invalid token near 'tru'", 1, 4, 3);
    refused_at("{\"a\":1 \"bcd\"}", 0, "'}' expected near '\"bcd\"'", 1, 12, 11);
    refused_at("{\"a\":1,", 0, "string or '}' expected near end of file", 1, 7, 6);
    refused_at("", 0, "'[' or '{' expected near end of file", 1, 1, 0);
    refused_at("[\"ab\x01\"]", 0, "control character 0x1 near '\"ab'", 1, 4, 3);
    refused_at("[\"\\q\"]", 0, "invalid escape near '\"\\q'", 1, 4, 3);
    refused_at("[\"\\ud800x\"]", 0, "invalid Unicode '\\uD800' near '\"\\ud800x\"'", 1, 10, 9);
    refused_at("[\"\\u0000\"]", 0, "\\u0000 is not allowed", 1, 9, 8);
    /* columns count characters, as jansson's do */
    refused_at("[\"\xc3\xa9\xc3\xa9\", \xff]", 0, "unable to decode byte 0xff", 1, 7, 8);
    refused_at("[\"\xc3\xa9\", tru]", 0, "invalid token near 'tru'", 1, 9, 9);
    refused_at("[\x01]", 0, "invalid token", 1, 2, 1);
}

/*
 * Where jansson reports a fault (its position: the last byte it read) and in what
 * words, the tape does too, on every refused text of the list. reportread relies
 * on the place: it shows it in the file, as it did when jansson read the entries.
 */
Test(jsontape, errors_are_placed_and_worded_as_jansson_does)
{
    struct jsontape t;
    size_t i;

    jsontape_init(&t);
    for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const char *text = invalid[i];
        json_error_t je;
        struct blast_error err;
        size_t at;
        json_t *j = json_loadb(text, strlen(text), 0, &je);

        cr_assert_null(j, "'%s'", text);
        blast_error_clear(&err);
        cr_assert_lt(jsontape_parse(&t, text, strlen(text), 0, &err), 0, "'%s'", text);
        at = je.position > 0 ? (size_t)je.position - 1 : 0;
        cr_assert_eq(t.error_offset, at, "'%s': at %zu, jansson %zu (%s / %s)", text,
                     t.error_offset, at, err.text, je.text);
        cr_assert_eq(err.line, je.line, "'%s': line %d, jansson %d", text, err.line, je.line);
        if (je.column > 0)
            cr_assert_eq(err.column, je.column, "'%s': column %d, jansson %d", text, err.column,
                         je.column);
        cr_assert_str_eq(err.text, je.text, "'%s'", text);
    }
    jsontape_free(&t);
}

/* The tape refuses text[0..len) where jansson does, in its words, at its place. */
static void placed_as_jansson(struct jsontape *t, const char *text, size_t len)
{
    json_error_t je;
    struct blast_error err;
    size_t at;
    json_t *j = json_loadb(text, len, 0, &je);

    cr_assert_null(j, "'%.*s'", (int)len, text);
    blast_error_clear(&err);
    cr_assert_lt(jsontape_parse(t, text, len, 0, &err), 0, "'%.*s'", (int)len, text);
    at = je.position > 0 ? (size_t)je.position - 1 : 0;
    cr_assert_eq(t->error_offset, at, "'%.*s': at %zu, jansson %zu (%s / %s)", (int)len, text,
                 t->error_offset, at, err.text, je.text);
    cr_assert_eq(err.line, je.line, "'%.*s': line %d, jansson %d", (int)len, text, err.line,
                 je.line);
    if (je.column > 0)
        cr_assert_eq(err.column, je.column, "'%.*s': column %d, jansson %d", (int)len, text,
                     err.column, je.column);
    cr_assert_str_eq(err.text, je.text, "'%.*s'", (int)len, text);
}

/*
 * A NUL that jansson skips after a number or a word is not counted in its places
 * either: a later fault is placed one byte (and one column) earlier for each
 * (found by fuzz_report).
 */
Test(jsontape, faults_after_a_skipped_nul_are_placed_as_jansson_places_them)
{
    static const struct {
        const char *text;
        size_t len;
    } cases[] = {
        {"[0\0\0]", 5},         {"[0\0 x]", 6},        {"[0\0", 3},
        {"[true\0,1\0 2]", 13}, {"[1\0,\n2\0 x]", 10}, {"{\"a\":0\0\0\0}", 9},
        {"[1\0,\"\x01\"]", 8},  {"[\"\\u02\0\"]", 8},  {"[\"\\u\0\"]", 6},
        {"[0\0\x87]", 5},
    };
    struct jsontape t;
    size_t i;

    jsontape_init(&t);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        placed_as_jansson(&t, cases[i].text, cases[i].len);
    jsontape_free(&t);
}

/* A value counts as deep as jansson counts it: the top one at 1, at most 2048. */
Test(jsontape, depth_as_jansson_counts_it)
{
    size_t n = JSONTAPE_MAX_DEPTH + 1, i;
    char *text = malloc(2 * n + 2);
    struct jsontape t;
    struct blast_error err;

    cr_assert_not_null(text);
    for (i = 0; i < JSONTAPE_MAX_DEPTH; i++) {
        text[i] = '[';
        text[JSONTAPE_MAX_DEPTH + i] = ']';
    }
    agree_n(text, 2 * JSONTAPE_MAX_DEPTH, 0, 1);
    /* one more array, or a scalar in the deepest one: too deep */
    memmove(text + JSONTAPE_MAX_DEPTH + 1, text + JSONTAPE_MAX_DEPTH, JSONTAPE_MAX_DEPTH);
    text[JSONTAPE_MAX_DEPTH] = '1';
    agree_n(text, 2 * JSONTAPE_MAX_DEPTH + 1, 0, 0);
    text[JSONTAPE_MAX_DEPTH] = '[';
    text[2 * JSONTAPE_MAX_DEPTH + 1] = ']';
    agree_n(text, 2 * JSONTAPE_MAX_DEPTH + 2, 0, 0);

    /* a lower limit of the caller's */
    jsontape_init(&t);
    t.max_depth = 3;
    blast_error_clear(&err);
    cr_assert_eq(jsontape_parse(&t, "[[1]]", 5, 0, &err), 0, "%s", err.text);
    cr_assert_eq(jsontape_parse(&t, "[[[1]]]", 7, 0, &err), BLAST_ESYNTAX);
    cr_assert(strstr(err.text, "maximum parsing depth") != NULL, "%s", err.text);
    cr_assert_eq(t.error_offset, 3);
    jsontape_free(&t);
    free(text);
}

/* Once grown to the largest text, the tape parses text after text in the same storage. */
Test(jsontape, storage_is_reused)
{
    static const char big[] = "{\"email\":\"someone@example.com\",\"row\":1,\"history\":[{\"a\":1},"
                              "{\"b\":[1,2,3,4,5,6,7,8,9,10]}],\"reply\":\"250 2.0.0 Ok\"}";
    static const char small[] = "{\"email\":\"x@y\",\"row\":2}";
    struct jsontape t;
    struct jsontape_node *nodes;
    char *text;
    int i;

    jsontape_init(&t);
    parse_ok(&t, big, 0);
    nodes = t.nodes;
    text = t.text;
    for (i = 0; i < 1000; i++) {
        const struct jsontape_node *root = parse_ok(&t, i % 2 ? big : small, 0);
        cr_assert_eq(jsontape_integer(jsontape_member(root, "row")), i % 2 ? 1 : 2);
        cr_assert_str_eq(jsontape_string(jsontape_member(root, "email")),
                         i % 2 ? "someone@example.com" : "x@y");
    }
    cr_assert_eq(t.nodes, nodes, "no node storage allocated again");
    cr_assert_eq(t.text, text, "no string storage allocated again");
    /* a failed parse leaves no root, and the next one reads again */
    cr_assert_lt(jsontape_parse(&t, "{\"a\":", 5, 0, NULL), 0);
    cr_assert_null(jsontape_root(&t));
    parse_ok(&t, small, 0);
    jsontape_free(&t);
    jsontape_free(&t);
}

/* A tree copied onto a tape is the tape its text parses to. */
Test(jsontape, a_jansson_tree_copies_onto_a_tape)
{
    static const char text[] = "{\"s\":\"caf\\u00e9\",\"i\":-42,\"r\":2.5,\"t\":true,\"f\":false,"
                               "\"n\":null,\"a\":[1,[2,3],{\"x\":4},[]],\"o\":{}}";
    json_t *j = json_loads(text, 0, NULL), *nul;
    struct jsontape a, b;
    struct blast_error err;
    size_t i;

    cr_assert_not_null(j);
    jsontape_init(&a);
    jsontape_init(&b);
    parse_ok(&a, text, 0);
    blast_error_clear(&err);
    cr_assert_eq(jsontape_from_json(&b, j, &err), 0, "%s", err.text);
    cr_assert_eq(a.nnodes, b.nnodes);
    for (i = 0; i < a.nnodes; i++) {
        cr_assert_eq(a.nodes[i].type, b.nodes[i].type, "node %zu", i);
        cr_assert_eq(a.nodes[i].size, b.nodes[i].size, "node %zu", i);
        cr_assert_eq(a.nodes[i].span, b.nodes[i].span, "node %zu", i);
        if (a.nodes[i].type == JSONTAPE_STRING)
            cr_assert_str_eq(a.nodes[i].u.string, b.nodes[i].u.string);
        else if (a.nodes[i].type == JSONTAPE_INTEGER)
            cr_assert_eq(a.nodes[i].u.integer, b.nodes[i].u.integer);
        else if (a.nodes[i].type == JSONTAPE_REAL)
            cr_assert_eq(a.nodes[i].u.real, b.nodes[i].u.real);
    }
    json_decref(j);

    /* a string's NUL bytes come along, its length with them */
    nul = json_stringn("a\0b", 3);
    cr_assert_eq(jsontape_from_json(&b, nul, &err), 0);
    cr_assert_eq(jsontape_size(jsontape_root(&b)), 3);
    cr_assert_eq(memcmp(jsontape_string(jsontape_root(&b)), "a\0b", 4), 0);
    json_decref(nul);

    /* deeper than the tape allows */
    b.max_depth = 2;
    j = json_loads("[[[1]]]", 0, NULL);
    cr_assert_eq(jsontape_from_json(&b, j, &err), BLAST_EINVAL);
    cr_assert_null(jsontape_root(&b));
    json_decref(j);
    jsontape_free(&a);
    jsontape_free(&b);
}

/* xorshift: the same mutations on every run. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Texts mutated from the lists above: byte flips, insertions, deletions, cuts. */
Test(jsontape, agrees_with_jansson_on_mutated_texts)
{
    static const char pieces[] = "{}[]\",:\\u0dDeE+-.019 \n\t\x01\x7f\x80\xbf\xc2\xe0\xed\xf0\xf4"
                                 "tfnrl";
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    struct jsontape t;
    char buf[256], why[512];
    size_t i, agreed[2] = {0, 0};

    jsontape_init(&t);
    for (i = 0; i < 60000; i++) {
        const char *base = i % 2 ? valid[i / 2 % (sizeof valid / sizeof valid[0])]
                                 : invalid[i / 2 % (sizeof invalid / sizeof invalid[0])];
        size_t len = strlen(base), k, edits = 1 + next_random(&seed) % 3;
        int got;
        if (len >= sizeof buf - 8)
            len = sizeof buf - 8;
        memcpy(buf, base, len);
        for (k = 0; k < edits; k++) {
            size_t at = len ? next_random(&seed) % (len + 1) : 0;
            char c = pieces[next_random(&seed) % (sizeof pieces - 1)];
            switch (next_random(&seed) % 4) {
            case 0: /* replace */
                if (at < len)
                    buf[at] = c;
                break;
            case 1: /* insert */
                if (len < sizeof buf - 8) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = c;
                    len++;
                }
                break;
            case 2: /* delete */
                if (at < len) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                }
                break;
            default: /* cut */
                len = at;
                break;
            }
        }
        got = jsondiff_check(&t, buf, len, (i / 7) % 2 ? JSONTAPE_DECODE_ANY : 0, why, sizeof why);
        cr_assert_neq(got, -1, "'%.*s': %s", (int)len, buf, why);
        agreed[got]++;
    }
    cr_assert_gt(agreed[0], 1000, "many refused");
    cr_assert_gt(agreed[1], 1000, "many read");
    jsontape_free(&t);
}
