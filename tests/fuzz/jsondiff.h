/*
 * jsondiff - the tape (core/jsontape) and jansson on the same text: both accept it
 * or both refuse it, and what both accept reads to the same values. Shared by the
 * fuzz harness (fuzz_jsontape.c) and the unit tests (test_jsontape.c), header only.
 *
 * Values compare exactly: strings byte for byte with their length, integers and
 * reals by type and value (a real's sign too), objects by their keys (the tape
 * keeps every member of a duplicated key, jansson the last one: the tape's last
 * must be jansson's), arrays element by element.
 */
#ifndef BLAST_TEST_JSONDIFF_H
#define BLAST_TEST_JSONDIFF_H

#include "../../core/jsontape.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int jsondiff_differ(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int jsondiff_differ(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* Whether n and j hold the same value; why says where they do not. */
static int jsondiff_same(const struct jsontape_node *n, json_t *j, char *why, size_t size)
{
    const struct jsontape_node *k, *e;
    size_t i, distinct = 0;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        if (!jsontape_is(n, JSONTAPE_OBJECT))
            return jsondiff_differ(why, size, "jansson has an object, the tape type %d", n->type);
        for (k = jsontape_first(n); k != NULL; k = jsontape_next(n, k + 1)) {
            json_t *m = json_object_getn(j, jsontape_string(k), jsontape_size(k));
            if (m == NULL)
                return jsondiff_differ(why, size, "key \"%s\" only on the tape",
                                       jsontape_string(k));
            if (jsontape_member(n, jsontape_string(k)) != k + 1)
                continue; /* a duplicate that a later member replaces */
            distinct++;
            if (jsondiff_same(k + 1, m, why, size) < 0)
                return -1;
        }
        if (distinct != json_object_size(j))
            return jsondiff_differ(why, size, "%zu keys on the tape, %zu in jansson's object",
                                   distinct, json_object_size(j));
        return 0;
    case JSON_ARRAY:
        if (!jsontape_is(n, JSONTAPE_ARRAY) || jsontape_size(n) != json_array_size(j))
            return jsondiff_differ(why, size, "an array of %zu in jansson, type %d size %zu",
                                   json_array_size(j), n->type, jsontape_size(n));
        for (i = 0, e = jsontape_first(n); e != NULL; e = jsontape_next(n, e), i++)
            if (jsondiff_same(e, json_array_get(j, i), why, size) < 0)
                return -1;
        if (i != json_array_size(j))
            return jsondiff_differ(why, size, "%zu elements walked, %zu in the array", i,
                                   json_array_size(j));
        return 0;
    case JSON_STRING:
        if (!jsontape_is(n, JSONTAPE_STRING) || jsontape_size(n) != json_string_length(j) ||
            memcmp(jsontape_string(n), json_string_value(j), json_string_length(j)) != 0 ||
            jsontape_string(n)[jsontape_size(n)] != '\0')
            return jsondiff_differ(why, size, "string \"%s\" in jansson, type %d \"%s\"",
                                   json_string_value(j), n->type,
                                   jsontape_string(n) ? jsontape_string(n) : "");
        return 0;
    case JSON_INTEGER:
        if (!jsontape_is(n, JSONTAPE_INTEGER) || jsontape_integer(n) != json_integer_value(j))
            return jsondiff_differ(why, size, "integer %lld in jansson, type %d %lld",
                                   (long long)json_integer_value(j), n->type,
                                   (long long)jsontape_integer(n));
        return 0;
    case JSON_REAL:
        if (!jsontape_is(n, JSONTAPE_REAL) || jsontape_real(n) != json_real_value(j) ||
            signbit(jsontape_real(n)) != signbit(json_real_value(j)))
            return jsondiff_differ(why, size, "real %.17g in jansson, type %d %.17g",
                                   json_real_value(j), n->type, jsontape_real(n));
        return 0;
    case JSON_TRUE:
        return jsontape_is(n, JSONTAPE_TRUE) ? 0 : jsondiff_differ(why, size, "true in jansson");
    case JSON_FALSE:
        return jsontape_is(n, JSONTAPE_FALSE) ? 0 : jsondiff_differ(why, size, "false in jansson");
    default:
        return jsontape_is(n, JSONTAPE_NULL) ? 0 : jsondiff_differ(why, size, "null in jansson");
    }
}

/*
 * Parse data with both (flags are the tape's, given to jansson as its own) onto t.
 * Returns 1 when both accept it and agree, 0 when both refuse it with the same
 * words at the same place (jansson's position less one, the tape's offset), -1
 * when they disagree (why says how).
 */
static int jsondiff_check(struct jsontape *t, const void *data, size_t len, unsigned flags,
                          char *why, size_t size)
{
    size_t jflags = ((flags & JSONTAPE_DECODE_ANY) ? JSON_DECODE_ANY : 0) |
                    ((flags & JSONTAPE_ALLOW_NUL) ? JSON_ALLOW_NUL : 0);
    json_error_t je;
    json_t *j = json_loadb(data, len, jflags, &je);
    struct blast_error err;
    int rc, verdict;

    blast_error_clear(&err);
    rc = jsontape_parse(t, data, len, flags, &err);
    if (j == NULL && rc < 0) {
        size_t at = je.position > 0 ? (size_t)je.position - 1 : 0;
        verdict = 0;
        if (rc != BLAST_ESYNTAX || err.code != rc || err.line < 1 || err.column < 1 ||
            t->error_offset > len || jsontape_root(t) != NULL)
            verdict = jsondiff_differ(why, size, "the tape's error is not placed: %d %d:%d @%zu %s",
                                      rc, err.line, err.column, t->error_offset, err.text);
        else if (t->error_offset != at || strcmp(err.text, je.text) != 0)
            verdict = jsondiff_differ(why, size, "the tape says %s at %zu, jansson %s at %zu",
                                      err.text, t->error_offset, je.text, at);
    } else if (j == NULL || rc < 0) {
        verdict = jsondiff_differ(why, size, "jansson %s (%s), the tape %s (%s)",
                                  j != NULL ? "accepts" : "refuses", j != NULL ? "" : je.text,
                                  rc == 0 ? "accepts" : "refuses", rc == 0 ? "" : err.text);
    } else {
        verdict = jsondiff_same(jsontape_root(t), j, why, size) < 0 ? -1 : 1;
    }
    json_decref(j);
    return verdict;
}

#endif
