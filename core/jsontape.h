/*
 * jsontape - one JSON text parsed into a flat array of nodes (a "tape"), for
 * readers that take many small texts one after another (a report's recipients,
 * a journal's records) and want them fast, without a tree of allocations each.
 *
 * Owns: a strict RFC 8259 parser that accepts exactly the texts jansson's
 * json_loadb() accepts with the same flags (JSONTAPE_DECODE_ANY, JSONTAPE_ALLOW_NUL
 * are its JSON_DECODE_ANY and JSON_ALLOW_NUL) and reads them to the same values:
 * strings decoded (escapes, \uXXXX with surrogate pairs; invalid UTF-8, lone or
 * unpaired surrogates and control characters refused, as jansson refuses them:
 * nothing is ever replaced), integers as int64 (one out of range is an error, as
 * jansson's "too big integer"), numbers with a fraction or an exponent as doubles
 * (an overflow is an error, an underflow is not), true, false, null, objects and
 * arrays nested at most max_depth deep (jansson's 2048 unless lowered); copying a
 * jansson tree onto a tape (jsontape_from_json()); and the accessors.
 * Errors name the fault as jansson names it: its words ("invalid token near
 * 'tru'", "'}' expected near ','"), its place (the last byte jansson read, as a
 * byte offset in the text, and its line and column). One quirk of jansson's is
 * kept for that: a NUL byte right after a number or a word is skipped.
 * Does not own: what the values mean (outcome, journal, reportread).
 *
 * Layout: the values in document order; an array's node is followed by its
 * elements, an object's by its members, each a key (a string node) then its
 * value. A node's span counts it and everything inside it, so the value after
 * v is v + v->span. Duplicate keys are all kept, in order; jsontape_member()
 * finds the last one, which is what jansson keeps.
 *
 * Ownership: struct jsontape is the caller's. jsontape_init() makes it empty;
 * each jsontape_parse() replaces what the last one left and keeps the memory, so
 * a tape reused for text after text stops allocating once it has grown to the
 * largest; jsontape_free() releases it. Nodes and strings belong to the tape and
 * stay valid until its next parse or free.
 *
 * Limits: a text of at most JSONTAPE_MAX_TEXT bytes (sizes are 32 bits).
 */
#ifndef BLAST_JSONTAPE_H
#define BLAST_JSONTAPE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONTAPE_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */
#define JSONTAPE_MAX_TEXT  ((size_t)UINT32_MAX - 1)

/* Flags of jsontape_parse(). */
#define JSONTAPE_DECODE_ANY 0x1u /* any value at the top, not only an object or an array */
#define JSONTAPE_ALLOW_NUL  0x2u /* "\u0000" in string values (never in keys) */

enum jsontape_type {
    JSONTAPE_OBJECT,
    JSONTAPE_ARRAY,
    JSONTAPE_STRING,
    JSONTAPE_INTEGER,
    JSONTAPE_REAL,
    JSONTAPE_TRUE,
    JSONTAPE_FALSE,
    JSONTAPE_NULL,
};

/* One value. Read it through the accessors below. */
struct jsontape_node {
    uint8_t type;  /* enum jsontape_type */
    uint32_t size; /* string: bytes (its NUL not counted); array: elements; object: members */
    uint32_t span; /* nodes from this one to the end of its contents, itself included */
    union {
        int64_t integer;
        double real;
        const char *string; /* NUL-terminated; may hold NULs with JSONTAPE_ALLOW_NUL */
    } u;
};

struct jsontape {
    struct jsontape_node *nodes;
    size_t nnodes, capnodes;
    char *text; /* the decoded strings, each followed by a NUL */
    size_t ntext, captext;
    uint32_t *stack; /* the containers open while parsing */
    size_t capstack;
    size_t max_depth;    /* JSONTAPE_MAX_DEPTH after jsontape_init(); lower it at will */
    size_t error_offset; /* after a failed parse: the byte of the text the error is at */
    bool ok;             /* the last parse succeeded: the root is there */
};

void jsontape_init(struct jsontape *t);

/* Release what t holds; t is then as after jsontape_init(). Accepts an empty tape. */
void jsontape_free(struct jsontape *t);

/*
 * Parse the len bytes at text (no NUL needed) onto t. Errors: BLAST_ESYNTAX, err
 * with the line and column of the fault in text (1-based, columns in characters as
 * jansson counts them) and jansson's message, t->error_offset its byte offset;
 * BLAST_EINVAL (the text is larger than JSONTAPE_MAX_TEXT); BLAST_ENOMEM. After an
 * error the tape has no root.
 */
int jsontape_parse(struct jsontape *t, const char *text, size_t len, unsigned flags,
                   struct blast_error *err);

/*
 * Copy the jansson value v onto t, as if its text had been parsed: for readers
 * written against the tape that are handed a tree. Errors: BLAST_EINVAL (v nests
 * deeper than t->max_depth, or holds a string larger than the tape's limit),
 * BLAST_ENOMEM.
 */
struct json_t;
int jsontape_from_json(struct jsontape *t, const struct json_t *v, struct blast_error *err);

/* The top value, or NULL when the last parse failed (or there was none). */
const struct jsontape_node *jsontape_root(const struct jsontape *t);

/* v's type (v not NULL); jsontape_is() also takes the NULL of a member not there: false. */
enum jsontape_type jsontape_type(const struct jsontape_node *v);
bool jsontape_is(const struct jsontape_node *v, enum jsontape_type type);

/* A string's bytes (NUL-terminated), or NULL when v is not a string. */
const char *jsontape_string(const struct jsontape_node *v);

/* A string's length in bytes, an array's elements, an object's members; 0 otherwise. */
size_t jsontape_size(const struct jsontape_node *v);

/* An integer's value, or 0 when v is not an integer (as json_integer_value()). */
int64_t jsontape_integer(const struct jsontape_node *v);

/* A real's value, or 0 when v is not a real (as json_real_value()). */
double jsontape_real(const struct jsontape_node *v);

/*
 * The value of the member key of object obj (the last one when the key is there
 * more than once), or NULL when obj is not an object or has no such member.
 */
const struct jsontape_node *jsontape_member(const struct jsontape_node *obj, const char *key);

/*
 * The values inside a container, in order: for an array its elements; for an
 * object its keys and values alternately (key, value, key, ...). NULL at the end.
 *
 *   for (e = jsontape_first(arr); e != NULL; e = jsontape_next(arr, e))
 *   for (k = jsontape_first(obj); k != NULL; k = jsontape_next(obj, k + 1))
 *       ... key jsontape_string(k), value k + 1 ...
 */
const struct jsontape_node *jsontape_first(const struct jsontape_node *container);
const struct jsontape_node *jsontape_next(const struct jsontape_node *container,
                                          const struct jsontape_node *v);

#endif
