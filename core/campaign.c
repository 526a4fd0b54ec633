/*
 * campaign - load and validate the campaign file (docs/campaign.md).
 *
 * Two steps. First libyaml's event stream is turned into a small tree of nodes
 * that keep their line and column (campaign files are a few dozen lines, so a tree
 * costs nothing and lets every later error point at the exact value). Then the
 * tree is walked against the known keys: types are checked, defaults applied,
 * paths resolved, and the first problem becomes the error, with its place.
 *
 * Anchors and aliases are followed by sharing the node, so the tree stays small;
 * but 'vars' are copied into the campaign, an alias once per use. So an alias is
 * refused when it would make the file bigger than CAMPAIGN_ALIAS_MAX_VALUES values
 * or CAMPAIGN_ALIAS_MAX_BYTES bytes of text once every alias is replaced by a copy
 * (a "billion laughs" file of 500 bytes asked for gigabytes), when it refers to a
 * node that contains it (a cycle: no copy ends), or when it would nest the values
 * deeper than YDOC_MAX_DEPTH. Merge keys ("<<") are not part of the contract.
 */
#include "campaign.h"
#include "verp.h"
#include "address.h"
#include "buf.h"
#include "conn.h"
#include "provider.h"
#include "sharedlimit.h"
#include "url.h"
#include "text.h"
#include "timeutil.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Nesting deeper than this is not a campaign file. */
#define YDOC_MAX_DEPTH 32

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
    enum ynode_kind kind;
    int line, column; /* 1-based */
    char *value;      /* scalar text, NUL-terminated; NULL for a map or a list */
    size_t len;
    bool plain;           /* an unquoted scalar: may be null, a number, a boolean */
    bool quoted;          /* '...' or "...": the text starts one column after the node */
    bool open;            /* a map or list whose end has not been read yet */
    struct ynode **items; /* map: key, value, key, value...; seq: elements */
    size_t nitems, capitems;
    /* with every alias inside replaced by a copy: */
    size_t values; /* scalars, maps and lists, this one included */
    size_t bytes;  /* scalar text */
    int levels;    /* maps and lists on the deepest path, this one included */
};

struct ydoc {
    struct ynode *root;
    size_t alias_values, alias_bytes; /* what the aliases add, copied */
    struct ynode **all;               /* every node, for freeing: aliases share nodes */
    size_t nall, capall;
    struct {
        char *name;
        struct ynode *node;
    } * anchors;
    size_t nanchors, capanchors;
};

struct loader {
    const char *path;
    struct blast_error *err;
    struct campaign *c;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    size_t n;
    void *q;

    if (need <= *cap)
        return p;
    n = *cap != 0 ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    q = realloc(p, n * size);
    if (q != NULL)
        *cap = n;
    return q;
}

static void ydoc_free(struct ydoc *d)
{
    size_t i;

    for (i = 0; i < d->nall; i++) {
        free(d->all[i]->value);
        free(d->all[i]->items);
        free(d->all[i]);
    }
    free(d->all);
    for (i = 0; i < d->nanchors; i++)
        free(d->anchors[i].name);
    free(d->anchors);
    memset(d, 0, sizeof *d);
}

static struct ynode *ydoc_new_node(struct ydoc *d, enum ynode_kind kind, yaml_mark_t mark)
{
    struct ynode *n, **all;

    all = grow(d->all, &d->capall, d->nall + 1, sizeof *d->all);
    if (all == NULL)
        return NULL;
    d->all = all;
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->column = (int)mark.column + 1;
    n->open = kind != YNODE_SCALAR;
    n->values = 1;
    n->levels = kind != YNODE_SCALAR;
    d->all[d->nall++] = n;
    return n;
}

/* A complete child of parent counts in parent's size once its aliases are copied. */
static void ynode_add_size(struct ynode *parent, const struct ynode *child)
{
    parent->values += child->values;
    parent->bytes += child->bytes;
    if (child->levels + 1 > parent->levels)
        parent->levels = child->levels + 1;
}

static int ynode_push(struct ynode *parent, struct ynode *child)
{
    struct ynode **items;

    items = grow(parent->items, &parent->capitems, parent->nitems + 1, sizeof *items);
    if (items == NULL)
        return BLAST_ENOMEM;
    parent->items = items;
    parent->items[parent->nitems++] = child;
    return 0;
}

static int ydoc_anchor(struct ydoc *d, const yaml_char_t *anchor, struct ynode *node)
{
    void *a;

    if (anchor == NULL)
        return 0;
    a = grow(d->anchors, &d->capanchors, d->nanchors + 1, sizeof *d->anchors);
    if (a == NULL)
        return BLAST_ENOMEM;
    d->anchors = a;
    d->anchors[d->nanchors].name = strdup((const char *)anchor);
    if (d->anchors[d->nanchors].name == NULL)
        return BLAST_ENOMEM;
    d->anchors[d->nanchors++].node = node;
    return 0;
}

static struct ynode *ydoc_find_anchor(const struct ydoc *d, const yaml_char_t *name)
{
    size_t i;

    for (i = d->nanchors; i-- > 0;)
        if (strcmp(d->anchors[i].name, (const char *)name) == 0)
            return d->anchors[i].node;
    return NULL;
}

static int yaml_syntax_error(const char *path, const yaml_parser_t *p, struct blast_error *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory reading YAML");
    if (p->error == YAML_READER_ERROR)
        /* The reader reports a byte offset, not a line: the file is not UTF-8 text. */
        return blast_error_set(err, BLAST_ESYNTAX, path, 0, 0,
                               "not a UTF-8 text file (%s at byte %zu)", p->problem,
                               p->problem_offset);
    if (p->context != NULL && p->context_mark.line != p->problem_mark.line)
        return blast_error_set(err, BLAST_ESYNTAX, path, (int)p->problem_mark.line + 1,
                               (int)p->problem_mark.column + 1,
                               "YAML syntax error: %s %s (which started at line %d, column %d)",
                               p->problem, p->context, (int)p->context_mark.line + 1,
                               (int)p->context_mark.column + 1);
    if (p->context != NULL)
        return blast_error_set(err, BLAST_ESYNTAX, path, (int)p->problem_mark.line + 1,
                               (int)p->problem_mark.column + 1, "YAML syntax error: %s %s",
                               p->problem, p->context);
    return blast_error_set(err, BLAST_ESYNTAX, path, (int)p->problem_mark.line + 1,
                           (int)p->problem_mark.column + 1, "YAML syntax error: %s",
                           p->problem != NULL ? p->problem : "unknown problem");
}

/*
 * An alias to node, read with depth maps and lists open around it: refused when
 * node is one of them (a cycle), when the copy would nest deeper than
 * YDOC_MAX_DEPTH, or when the copies the aliases make would pass the limits.
 */
static int check_alias(struct ydoc *d, const struct ynode *node, size_t depth,
                       const yaml_event_t *ev, const char *path, struct blast_error *err)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = (int)ev->start_mark.line + 1, column = (int)ev->start_mark.column + 1;

    if (node->open)
        return blast_error_set(err, BLAST_EINVAL, path, line, column,
                               "the alias '*%s' is inside the node it names (line %d): a copy of "
                               "it would never end",
                               name, node->line);
    if (depth + (size_t)node->levels > YDOC_MAX_DEPTH)
        return blast_error_set(err, BLAST_EINVAL, path, line, column,
                               "the alias '*%s' nests values deeper than %d levels", name,
                               YDOC_MAX_DEPTH);
    d->alias_values += node->values;
    d->alias_bytes += node->bytes;
    if (d->alias_values > CAMPAIGN_ALIAS_MAX_VALUES)
        return blast_error_set(err, BLAST_EINVAL, path, line, column,
                               "the alias '*%s' makes the aliases of this file copy more than %d "
                               "values (each use of an alias is a copy)",
                               name, CAMPAIGN_ALIAS_MAX_VALUES);
    if (d->alias_bytes > CAMPAIGN_ALIAS_MAX_BYTES)
        return blast_error_set(err, BLAST_EINVAL, path, line, column,
                               "the alias '*%s' makes the aliases of this file copy more than %d "
                               "bytes of text (each use of an alias is a copy)",
                               name, CAMPAIGN_ALIAS_MAX_BYTES);
    return 0;
}

/* The tree being built from the parser's events. */
struct ybuild {
    struct ydoc *d;
    struct ynode *stack[YDOC_MAX_DEPTH]; /* the maps and lists still open, outermost first */
    size_t depth;
    int docs; /* documents started */
    const char *path;
    struct blast_error *err;
};

/* A scalar event's node: its text copied, its style, its anchor. NULL when out of memory. */
static struct ynode *ydoc_scalar(struct ydoc *d, const yaml_event_t *ev)
{
    struct ynode *node = ydoc_new_node(d, YNODE_SCALAR, ev->start_mark);

    if (node == NULL)
        return NULL;
    node->value = malloc(ev->data.scalar.length + 1);
    if (node->value == NULL)
        return NULL;
    memcpy(node->value, ev->data.scalar.value, ev->data.scalar.length);
    node->value[ev->data.scalar.length] = '\0';
    node->len = ev->data.scalar.length;
    node->bytes = node->len;
    node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    node->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                   ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    if (ydoc_anchor(d, ev->data.scalar.anchor, node) < 0)
        return NULL;
    return node;
}

/* A mapping's or a list's start event's node, with its anchor. NULL when out of memory. */
static struct ynode *ydoc_collection(struct ydoc *d, const yaml_event_t *ev)
{
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    struct ynode *node = ydoc_new_node(d, map ? YNODE_MAP : YNODE_SEQ, ev->start_mark);

    if (node == NULL ||
        ydoc_anchor(d, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor, node) <
            0)
        return NULL;
    return node;
}

/*
 * Put node where it belongs: the root, or the next item of the innermost open map or
 * list. A node that is complete (a scalar, or what an alias names) counts in its
 * parent's size now; a map or list that starts (starts) does at its end, and is the
 * innermost open one until then.
 */
static int ydoc_attach(struct ybuild *b, struct ynode *node, bool starts)
{
    if (b->depth == 0)
        b->d->root = node;
    else if (ynode_push(b->stack[b->depth - 1], node) < 0)
        return blast_error_set(b->err, BLAST_ENOMEM, b->path, 0, 0, "out of memory");
    else if (!starts)
        ynode_add_size(b->stack[b->depth - 1], node);
    if (!starts)
        return 0;
    if (b->depth == YDOC_MAX_DEPTH)
        return blast_error_set(b->err, BLAST_ESYNTAX, b->path, node->line, node->column,
                               "nested deeper than %d levels", YDOC_MAX_DEPTH);
    b->stack[b->depth++] = node;
    return 0;
}

/* One event of the parser into the tree; *done at the end of the stream. */
static int ydoc_event(struct ybuild *b, const yaml_event_t *ev, bool *done)
{
    struct ynode *node = NULL;
    int rc;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1)
            return blast_error_set(b->err, BLAST_ESYNTAX, b->path, (int)ev->start_mark.line + 1,
                                   (int)ev->start_mark.column + 1,
                                   "a campaign file holds one YAML document, found a second");
        return 0;
    case YAML_SCALAR_EVENT:
        node = ydoc_scalar(b->d, ev);
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        node = ydoc_collection(b->d, ev);
        break;
    case YAML_ALIAS_EVENT:
        node = ydoc_find_anchor(b->d, ev->data.alias.anchor);
        if (node == NULL)
            return blast_error_set(b->err, BLAST_ESYNTAX, b->path, (int)ev->start_mark.line + 1,
                                   (int)ev->start_mark.column + 1, "unknown alias '*%s'",
                                   (const char *)ev->data.alias.anchor);
        if ((rc = check_alias(b->d, node, b->depth, ev, b->path, b->err)) < 0)
            return rc;
        return ydoc_attach(b, node, false);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        b->stack[--b->depth]->open = false;
        if (b->depth > 0)
            ynode_add_size(b->stack[b->depth - 1], b->stack[b->depth]);
        return 0;
    default:
        return 0;
    }
    if (node == NULL)
        return blast_error_set(b->err, BLAST_ENOMEM, b->path, 0, 0, "out of memory");
    return ydoc_attach(b, node, ev->type != YAML_SCALAR_EVENT);
}

/* Build the node tree of the only document in file. */
static int ydoc_load(FILE *file, const char *path, struct ydoc *d, struct blast_error *err)
{
    struct ybuild b;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool done = false;
    int rc = 0;

    memset(d, 0, sizeof *d);
    memset(&b, 0, sizeof b);
    b.d = d;
    b.path = path;
    b.err = err;
    if (!yaml_parser_initialize(&parser))
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    yaml_parser_set_input_file(&parser, file);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_syntax_error(path, &parser, err);
            goto out;
        }
        rc = ydoc_event(&b, &ev, &done);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto out;
    }
    if (d->root == NULL)
        rc = blast_error_set(err, BLAST_EINVAL, path, 1, 1, "the campaign file is empty");
out:
    yaml_parser_delete(&parser);
    if (rc < 0)
        ydoc_free(d);
    return rc;
}

/* ---- validation helpers ------------------------------------------------------------ */

static struct campaign_place place_of(const struct ynode *n)
{
    struct campaign_place p = {n->line, n->column};
    return p;
}

static int fail(struct loader *L, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *L, const struct ynode *at, const char *fmt, ...)
{
    char text[BLAST_ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return blast_error_set(L->err, BLAST_EINVAL, L->path, at != NULL ? at->line : 0,
                           at != NULL ? at->column : 0, "%s", text);
}

static const char *kind_name(const struct ynode *n)
{
    switch (n->kind) {
    case YNODE_MAP:
        return "a mapping";
    case YNODE_SEQ:
        return "a list";
    default:
        return "a scalar";
    }
}

static bool is_null(const struct ynode *n)
{
    return n->kind == YNODE_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
            strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0);
}

static bool in_list(const char *const *list, const char *key)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

/*
 * Check that map is a mapping with scalar, unique, known keys. where names the
 * mapping in messages ("the campaign", "relay 'primary'").
 */
static int check_map(struct loader *L, const struct ynode *map, const char *const *known,
                     const char *where)
{
    size_t i, j;

    if (map->kind != YNODE_MAP)
        return fail(L, map, "%s must be a mapping of keys to values, found %s", where,
                    kind_name(map));
    for (i = 0; i + 1 < map->nitems; i += 2) {
        const struct ynode *k = map->items[i];
        const char *near;

        if (k->kind != YNODE_SCALAR)
            return fail(L, k, "keys in %s must be plain words, found %s", where, kind_name(k));
        for (j = 0; j < i; j += 2)
            if (strcmp(map->items[j]->value, k->value) == 0)
                return fail(L, k, "duplicate key '%s' in %s (first at line %d)", k->value, where,
                            map->items[j]->line);
        if (in_list(known, k->value))
            continue;
        near = text_nearest(k->value, known);
        if (near != NULL)
            return fail(L, k, "unknown key '%s' in %s (did you mean '%s'?)", k->value, where, near);
        return fail(L, k, "unknown key '%s' in %s", k->value, where);
    }
    return 0;
}

static const struct ynode *map_get(const struct ynode *map, const char *key)
{
    size_t i;

    /* a key that is a map or a list names nothing (check_map refuses it with its place) */
    for (i = 0; i + 1 < map->nitems; i += 2)
        if (map->items[i]->kind == YNODE_SCALAR && strcmp(map->items[i]->value, key) == 0)
            return map->items[i + 1];
    return NULL;
}

/*
 * A string value. Absent or null: *out stays NULL, and required makes it an error
 * placed at the mapping. Empty strings are refused: they are never meant.
 */
static int get_string(struct loader *L, const struct ynode *map, const char *key, bool required,
                      const char *where, char **out, struct campaign_place *place)
{
    const struct ynode *v = map_get(map, key);

    if (v == NULL || is_null(v)) {
        if (required)
            return fail(L, v != NULL ? v : map, "missing required key '%s' in %s", key, where);
        return 0;
    }
    if (v->kind != YNODE_SCALAR)
        return fail(L, v, "'%s' must be a string, found %s", key, kind_name(v));
    if (v->len == 0)
        return fail(L, v, "'%s' must not be empty", key);
    if (strlen(v->value) != v->len)
        return fail(L, v, "'%s' contains a NUL character", key);
    *out = strdup(v->value);
    if (*out == NULL)
        return blast_error_set(L->err, BLAST_ENOMEM, L->path, 0, 0, "out of memory");
    if (place != NULL)
        *place = place_of(v);
    return 0;
}

/*
 * A string that is a template: its place is that of its first character, inside
 * the quotes, since template errors count columns from there.
 */
static int get_template(struct loader *L, const struct ynode *map, const char *key, bool required,
                        const char *where, char **out, struct campaign_place *place)
{
    const struct ynode *v = map_get(map, key);
    int rc = get_string(L, map, key, required, where, out, place);

    if (rc == 0 && *out != NULL && v != NULL)
        place->column += v->quoted;
    return rc;
}

static int get_int(struct loader *L, const struct ynode *map, const char *key, long min, long max,
                   int *out, bool *present)
{
    const struct ynode *v = map_get(map, key);
    char *end;
    long n;

    if (present != NULL)
        *present = false;
    if (v == NULL || is_null(v))
        return 0;
    if (v->kind != YNODE_SCALAR || !v->plain || v->len == 0)
        return fail(L, v, "'%s' must be a whole number", key);
    errno = 0;
    n = strtol(v->value, &end, 10);
    if (*end != '\0' || errno != 0)
        return fail(L, v, "'%s' must be a whole number, found '%s'", key, v->value);
    if (n < min || n > max)
        return fail(L, v, "'%s' must be between %ld and %ld, found %ld", key, min, max, n);
    *out = (int)n;
    if (present != NULL)
        *present = true;
    return 0;
}

static int get_bool(struct loader *L, const struct ynode *map, const char *key, bool *out)
{
    const struct ynode *v = map_get(map, key);

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind == YNODE_SCALAR && v->plain) {
        if (strcmp(v->value, "true") == 0 || strcmp(v->value, "True") == 0 ||
            strcmp(v->value, "TRUE") == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(v->value, "false") == 0 || strcmp(v->value, "False") == 0 ||
            strcmp(v->value, "FALSE") == 0) {
            *out = false;
            return 0;
        }
    }
    return fail(L, v, "'%s' must be true or false", key);
}

/* Resolve a path from the campaign file against the file's directory. */
static int resolve_path(struct loader *L, char **path)
{
    char *full;
    size_t n;

    if (*path == NULL || (*path)[0] == '/' || strcmp(L->c->dir, ".") == 0)
        return 0;
    n = strlen(L->c->dir) + strlen(*path) + 2;
    full = malloc(n);
    if (full == NULL)
        return blast_error_set(L->err, BLAST_ENOMEM, L->path, 0, 0, "out of memory");
    snprintf(full, n, "%s/%s", L->c->dir, *path);
    free(*path);
    *path = full;
    return 0;
}

static int get_path(struct loader *L, const struct ynode *map, const char *key, bool required,
                    const char *where, char **out, struct campaign_place *place)
{
    int rc = get_string(L, map, key, required, where, out, place);

    if (rc < 0)
        return rc;
    return resolve_path(L, out);
}

/* A mailbox-valued key ("Name <a@b>" or "a@b"), checked now so mistakes surface early. */
static int check_mailbox(struct loader *L, const struct ynode *map, const char *key,
                         bool bare_address_only)
{
    const struct ynode *v = map_get(map, key);
    struct address a;
    struct blast_error aerr;
    int rc;

    if (v == NULL || v->kind != YNODE_SCALAR || is_null(v))
        return 0;
    blast_error_clear(&aerr);
    rc = bare_address_only ? address_parse(v->value, &a, &aerr)
                           : address_parse_mailbox(v->value, &a, &aerr);
    if (rc < 0)
        return fail(L, v, "'%s': %s", key, aerr.text);
    address_free(&a);
    return 0;
}

static int oom(struct loader *L)
{
    return blast_error_set(L->err, BLAST_ENOMEM, L->path, 0, 0, "out of memory");
}

/* ---- durations, rates ---------------------------------------------------------------- */

int campaign_parse_duration(const char *text, long *ms)
{
    const char *p = text;
    long total = 0;

    if (*p == '\0')
        return BLAST_EINVAL;
    while (*p != '\0') {
        long n = 0, unit;
        int digits = 0;

        while (*p >= '0' && *p <= '9') {
            if (n > 100000000L)
                return BLAST_EINVAL;
            n = n * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0)
            return BLAST_EINVAL;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            unit = 24 * 3600 * 1000L;
            p++;
        } else {
            return BLAST_EINVAL;
        }
        if (n > (LONG_MAX - total) / unit)
            return BLAST_EINVAL;
        total += n * unit;
    }
    if (total <= 0)
        return BLAST_EINVAL;
    *ms = total;
    return 0;
}

int campaign_parse_rate(const char *text, struct campaign_rate *out)
{
    const char *p = text;
    long n = 0;
    int digits = 0;

    while (*p >= '0' && *p <= '9') {
        if (n > 1000000000L)
            return BLAST_EINVAL;
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || n <= 0 || p[0] != '/' || p[1] == '\0' || p[2] != '\0' ||
        strchr("smh", p[1]) == NULL)
        return BLAST_EINVAL;
    out->set = true;
    out->count = n;
    out->unit = p[1];
    out->per_second = (double)n / (p[1] == 's' ? 1.0 : p[1] == 'm' ? 60.0 : 3600.0);
    return 0;
}

static int get_duration(struct loader *L, const struct ynode *map, const char *key, long *ms)
{
    const struct ynode *v = map_get(map, key);

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind != YNODE_SCALAR || campaign_parse_duration(v->value, ms) < 0)
        return fail(
            L, v, "'%s' must be a duration such as 90s, 5m, 4h or 1h30m (greater than zero)", key);
    return 0;
}

static int rate_of(struct loader *L, const struct ynode *v, const char *what,
                   struct campaign_rate *out)
{
    if (v->kind != YNODE_SCALAR || campaign_parse_rate(v->value, out) < 0)
        return fail(L, v, "%s must be a rate N/s, N/m or N/h with N a whole number above zero",
                    what);
    out->place = place_of(v);
    return 0;
}

static int get_rate(struct loader *L, const struct ynode *map, const char *key,
                    struct campaign_rate *out)
{
    const struct ynode *v = map_get(map, key);
    char what[64];

    if (v == NULL || is_null(v))
        return 0;
    snprintf(what, sizeof what, "'%s'", key);
    return rate_of(L, v, what, out);
}

/* ---- the campaign ------------------------------------------------------------------ */

static const char *const top_known[] = {"name",
                                        "from",
                                        "envelope_from",
                                        "reply_to",
                                        "subject",
                                        "helo",
                                        "recipients",
                                        "suppression",
                                        "body",
                                        "attachments",
                                        "inline",
                                        "headers",
                                        "list_unsubscribe",
                                        "feedback_id",
                                        "dkim",
                                        "relays",
                                        "rate",
                                        "domain_rates",
                                        "retry",
                                        "dsn",
                                        "chunking",
                                        "vars",
                                        "report",
                                        "journal",
                                        "notify",
                                        "return_path",
                                        "bounces",
                                        "suppression_db",
                                        "limits",
                                        "dns",
                                        "providers",
                                        "breaker",
                                        "seeds",
                                        "timezone",
                                        "warmup",
                                        "window",
                                        "preflight",
                                        NULL};
static const char *const window_known[] = {"days", "hours", "zone_column", NULL};
static const char *const warmup_known[] = {"daily", "first", "growth",    "until",
                                           "start", "store", "providers", NULL};
static const char *const warmup_ramp_known[] = {"daily", "first", "growth", "until", NULL};
static const char *const seeds_known[] = {"addresses", "wait", NULL};
static const char *const breaker_known[] = {"after", "failures", "blocks", "throttles", NULL};
static const char *const dns_known[] = {"lookups", "servers", "timeout", "outbound", NULL};
static const char *const provider_known[] = {"rate", "mx", NULL};
static const char *const limits_known[] = {"shared",          "password_env", "password_file",
                                           "allow_plaintext", "max_outage",   NULL};
static const char *const bounces_known[] = {
    "url",    "username", "password_env", "password_file", "password_cmd", "auth",
    "verify", "ca_file",  "after",        "folder",        "soft_bounces", NULL};
static const char *const soft_bounces_known[] = {"count", "window", NULL};
const char *const campaign_bounces_after_names[] = {"seen", "move", "delete", NULL};
static const char *const bounces_auth_names[] = {"password", "xoauth2", NULL};
static const char *const return_path_known[] = {"address", "secret_env", "secret_file", NULL};
static const char *const recipients_known[] = {"path", "email_column", "name_column", "delimiter",
                                               NULL};
static const char *const body_known[] = {"text", "html", NULL};
static const char *const part_known[] = {"path", "name", "content_type", "cid", NULL};
static const char *const unsub_known[] = {"url", "mailto", "one_click", NULL};
static const char *const dkim_known[] = {"domain", "selector", "key", "algorithm", NULL};
static const char *const retry_known[] = {"attempts", "initial", "max", "window", NULL};
static const char *const dsn_known[] = {"notify", "ret", NULL};
static const char *const notify_known[] = {"url",     "headers", "authorization_env", "timeout",
                                           "retries", "verify",  "ca_file",           NULL};
static const char *const relay_known[] = {"name",
                                          "host",
                                          "port",
                                          "tls",
                                          "verify",
                                          "ca_file",
                                          "pin_sha256",
                                          "username",
                                          "password_env",
                                          "password_file",
                                          "password_cmd",
                                          "auth",
                                          "allow_plaintext",
                                          "connections",
                                          "messages_per_connection",
                                          "weight",
                                          "rate",
                                          "timeouts",
                                          NULL};
static const char *const timeout_known[] = {
    "connect", "greeting", "ehlo",        "starttls", "auth", "mail", "rcpt",
    "data",    "block",    "end_of_data", "rset",     "quit", NULL};

static int load_recipients(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "recipients");
    struct campaign *c = L->c;
    char *delim = NULL;
    struct campaign_place dplace = {0, 0};
    int rc;

    if (m == NULL || is_null(m))
        return fail(L, root, "missing required key 'recipients' in the campaign");
    if ((rc = check_map(L, m, recipients_known, "'recipients'")) < 0)
        return rc;
    if ((rc = get_path(L, m, "path", true, "'recipients'", &c->recipients.path,
                       &c->recipients.path_place)) < 0 ||
        (rc = get_string(L, m, "email_column", false, "'recipients'", &c->recipients.email_column,
                         &c->recipients.email_column_place)) < 0 ||
        (rc = get_string(L, m, "name_column", false, "'recipients'", &c->recipients.name_column,
                         &c->recipients.name_column_place)) < 0 ||
        (rc = get_string(L, m, "delimiter", false, "'recipients'", &delim, &dplace)) < 0)
        return rc;
    c->recipients.delimiter = ',';
    if (delim != NULL) {
        bool ok = strlen(delim) == 1 && delim[0] != '"' && delim[0] != '\r' && delim[0] != '\n';
        if (strcmp(delim, "\\t") == 0 || strcmp(delim, "tab") == 0) {
            delim[0] = '\t';
            ok = true;
        }
        c->recipients.delimiter = delim[0];
        free(delim);
        if (!ok)
            return blast_error_set(L->err, BLAST_EINVAL, L->path, dplace.line, dplace.column,
                                   "'delimiter' must be one character (or \"tab\"), not a quote "
                                   "or a line break");
    }
    if (c->recipients.email_column == NULL &&
        (c->recipients.email_column = strdup("email")) == NULL)
        return oom(L);
    return 0;
}

static int load_body(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "body");
    struct campaign *c = L->c;
    int rc;

    if (m == NULL || is_null(m))
        return fail(L, root, "missing required key 'body' in the campaign");
    if ((rc = check_map(L, m, body_known, "'body'")) < 0)
        return rc;
    if ((rc = get_path(L, m, "text", false, "'body'", &c->body.text, &c->body.text_place)) < 0 ||
        (rc = get_path(L, m, "html", false, "'body'", &c->body.html, &c->body.html_place)) < 0)
        return rc;
    if (c->body.text == NULL && c->body.html == NULL)
        return fail(L, m, "'body' needs at least one of 'text' and 'html'");
    return 0;
}

/* A path, or a list of paths: suppression. */
static int load_suppression(struct loader *L, const struct ynode *root)
{
    const struct ynode *v = map_get(root, "suppression");
    struct campaign *c = L->c;
    size_t i, n;
    int rc;

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind == YNODE_MAP)
        return fail(L, v, "'suppression' must be a file or a list of files");
    n = v->kind == YNODE_SEQ ? v->nitems : 1;
    c->suppression = calloc(n, sizeof *c->suppression);
    c->suppression_places = calloc(n, sizeof *c->suppression_places);
    if (c->suppression == NULL || c->suppression_places == NULL)
        return oom(L);
    for (i = 0; i < n; i++) {
        const struct ynode *item = v->kind == YNODE_SEQ ? v->items[i] : v;
        if (item->kind != YNODE_SCALAR || is_null(item) || item->len == 0)
            return fail(L, item, "each entry of 'suppression' must be a file name");
        if ((c->suppression[i] = strdup(item->value)) == NULL)
            return oom(L);
        c->nsuppression = i + 1;
        c->suppression_places[i] = place_of(item);
        if ((rc = resolve_path(L, &c->suppression[i])) < 0)
            return rc;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

/* attachments / inline: a list of paths or of {path, name, content_type, cid}. */
static int load_parts(struct loader *L, const struct ynode *root, const char *key, bool inline_,
                      struct campaign_part **out, size_t *nout)
{
    const struct ynode *v = map_get(root, key);
    char where[64];
    size_t i, j;
    int rc;

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind != YNODE_SEQ)
        return fail(L, v, "'%s' must be a list", key);
    *out = calloc(v->nitems + 1, sizeof **out);
    if (*out == NULL)
        return oom(L);
    for (i = 0; i < v->nitems; i++) {
        const struct ynode *item = v->items[i];
        struct campaign_part *p = &(*out)[i];

        *nout = i + 1;
        p->place = place_of(item);
        snprintf(where, sizeof where, "'%s' entry %zu", key, i + 1);
        if (item->kind == YNODE_SCALAR && !inline_) {
            if (item->len == 0 || (p->path = strdup(item->value)) == NULL)
                return item->len == 0 ? fail(L, item, "%s: empty file name", where) : oom(L);
            if ((rc = resolve_path(L, &p->path)) < 0)
                return rc;
        } else {
            if ((rc = check_map(L, item, part_known, where)) < 0 ||
                (rc = get_path(L, item, "path", true, where, &p->path, NULL)) < 0 ||
                (rc = get_string(L, item, "name", false, where, &p->name, NULL)) < 0 ||
                (rc = get_string(L, item, "content_type", false, where, &p->content_type, NULL)) <
                    0 ||
                (rc = get_string(L, item, "cid", inline_, where, &p->cid, NULL)) < 0)
                return rc;
            if (!inline_ && p->cid != NULL)
                return fail(L, map_get(item, "cid"),
                            "'cid' belongs to 'inline' parts, not attachments");
            if (p->content_type != NULL && strchr(p->content_type, '/') == NULL)
                return fail(L, map_get(item, "content_type"),
                            "'content_type' must look like type/subtype, e.g. image/png");
            if (p->cid != NULL && strpbrk(p->cid, "<> \t\r\n\"") != NULL)
                return fail(L, map_get(item, "cid"),
                            "'cid' may not contain spaces, quotes or angle brackets");
        }
        if (p->name == NULL && (p->name = strdup(base_name(p->path))) == NULL)
            return oom(L);
        if (strpbrk(p->name, "\r\n\"\\/") != NULL)
            return fail(L, item,
                        "%s: the file name may not contain line breaks, quotes, "
                        "backslashes or slashes",
                        where);
        for (j = 0; inline_ && j < i; j++)
            if (strcmp((*out)[j].cid, p->cid) == 0)
                return fail(L, item, "two inline parts use cid '%s'", p->cid);
    }
    return 0;
}

/* Headers blast writes itself, or that a sender must never set. */
static const char *const reserved_headers[] = {"from",
                                               "to",
                                               "cc",
                                               "bcc",
                                               "subject",
                                               "date",
                                               "message-id",
                                               "mime-version",
                                               "content-type",
                                               "content-transfer-encoding",
                                               "content-disposition",
                                               "reply-to",
                                               "list-unsubscribe",
                                               "list-unsubscribe-post",
                                               "feedback-id",
                                               "dkim-signature",
                                               "received",
                                               "return-path",
                                               "sender",
                                               NULL};

static int load_headers(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "headers");
    struct campaign *c = L->c;
    size_t i, k;

    if (m == NULL || is_null(m))
        return 0;
    if (m->kind != YNODE_MAP)
        return fail(L, m, "'headers' must be a mapping of header names to values");
    c->headers = calloc(m->nitems / 2 + 1, sizeof *c->headers);
    if (c->headers == NULL)
        return oom(L);
    for (i = 0; i + 1 < m->nitems; i += 2) {
        const struct ynode *k_ = m->items[i], *v = m->items[i + 1];
        struct campaign_header *h = &c->headers[c->nheaders];
        char lower[128];
        const char *p;

        if (k_->kind != YNODE_SCALAR || k_->len == 0 || k_->len >= sizeof lower)
            return fail(L, k_, "a header name must be a word of at most 127 characters");
        /* RFC 5322 §3.6.8: printable ASCII except ':' */
        for (p = k_->value; *p != '\0'; p++)
            if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == ':')
                return fail(L, k_,
                            "'%s' is not a valid header name (printable ASCII without "
                            "':' or spaces)",
                            k_->value);
        for (k = 0; k <= k_->len; k++)
            lower[k] = (char)(k_->value[k] >= 'A' && k_->value[k] <= 'Z' ? k_->value[k] + 32
                                                                         : k_->value[k]);
        if (in_list(reserved_headers, lower) || strncmp(lower, "content-", 8) == 0)
            return fail(L, k_,
                        "header '%s' is written by blast (or must not be set); use the "
                        "campaign's own keys",
                        k_->value);
        for (k = 0; k < c->nheaders; k++)
            if (strcasecmp(c->headers[k].name, k_->value) == 0)
                return fail(L, k_, "duplicate header '%s'", k_->value);
        if (v->kind != YNODE_SCALAR)
            return fail(L, v, "the value of header '%s' must be a string", k_->value);
        h->name = strdup(k_->value);
        h->value = strdup(v->value);
        if (h->name == NULL || h->value == NULL)
            return oom(L);
        h->place = place_of(v);
        h->place.column += v->quoted; /* a template: its first character */
        c->nheaders++;
    }
    return 0;
}

static int load_unsubscribe(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "list_unsubscribe");
    struct campaign *c = L->c;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    if ((rc = check_map(L, m, unsub_known, "'list_unsubscribe'")) < 0 ||
        (rc = get_template(L, m, "url", false, "'list_unsubscribe'", &c->list_unsubscribe.url,
                           &c->list_unsubscribe.url_place)) < 0 ||
        (rc = get_string(L, m, "mailto", false, "'list_unsubscribe'", &c->list_unsubscribe.mailto,
                         NULL)) < 0 ||
        (rc = check_mailbox(L, m, "mailto", true)) < 0 ||
        (rc = get_bool(L, m, "one_click", &c->list_unsubscribe.one_click)) < 0)
        return rc;
    c->list_unsubscribe.place = place_of(m);
    if (c->list_unsubscribe.url == NULL && c->list_unsubscribe.mailto == NULL)
        return fail(L, m, "'list_unsubscribe' needs 'url', 'mailto' or both");
    /* RFC 8058 §3.1: one-click needs an HTTPS URI */
    if (c->list_unsubscribe.url != NULL && strncmp(c->list_unsubscribe.url, "https://", 8) != 0)
        return fail(L, map_get(m, "url"), "'url' must be an https:// address (RFC 8058)");
    if (c->list_unsubscribe.one_click && c->list_unsubscribe.url == NULL)
        return fail(L, map_get(m, "one_click"), "'one_click' needs an https 'url'");
    return 0;
}

static int parse_enum(struct loader *L, const struct ynode *map, const char *key,
                      const char *const *names, int *out)
{
    const struct ynode *v = map_get(map, key);
    char list[256] = "";
    size_t used = 0;
    int i;

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind == YNODE_SCALAR)
        for (i = 0; names[i] != NULL; i++)
            if (strcmp(v->value, names[i]) == 0) {
                *out = i;
                return 0;
            }
    for (i = 0; names[i] != NULL && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    return fail(L, v, "'%s' must be one of %s", key, list);
}

static const char *const dkim_alg_names[] = {"rsa-sha256", "ed25519-sha256", NULL};

static bool domain_ok(const char *d)
{
    struct address a;
    struct blast_error e;
    char probe[300];
    bool ok;

    if (strlen(d) > 253)
        return false;
    blast_error_clear(&e);
    snprintf(probe, sizeof probe, "x@%s", d);
    ok = address_parse(probe, &a, &e) == 0 && d[0] != '[';
    address_free(&a);
    return ok;
}

static int load_one_dkim(struct loader *L, const struct ynode *m, const char *where,
                         struct campaign_dkim *d)
{
    int alg = CAMPAIGN_DKIM_RSA_SHA256, rc;
    const char *p;

    d->place = place_of(m);
    if ((rc = check_map(L, m, dkim_known, where)) < 0 ||
        (rc = get_string(L, m, "domain", true, where, &d->domain, NULL)) < 0 ||
        (rc = get_string(L, m, "selector", true, where, &d->selector, NULL)) < 0 ||
        (rc = get_path(L, m, "key", true, where, &d->key, &d->key_place)) < 0 ||
        (rc = parse_enum(L, m, "algorithm", dkim_alg_names, &alg)) < 0)
        return rc;
    d->algorithm = (enum campaign_dkim_alg)alg;
    if (!domain_ok(d->domain))
        return fail(L, map_get(m, "domain"), "'domain' is not a valid domain name");
    /* RFC 6376 §3.1: the selector is a dot-separated list of sub-domain labels */
    for (p = d->selector; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            return fail(L, map_get(m, "selector"),
                        "'selector' may contain letters, digits, '-', '_' and '.' only");
    return 0;
}

static int load_dkim(struct loader *L, const struct ynode *root)
{
    const struct ynode *v = map_get(root, "dkim");
    struct campaign *c = L->c;
    char where[32];
    size_t i, n;
    int rc;

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind == YNODE_SCALAR)
        return fail(L, v, "'dkim' must be a signature (domain, selector, key) or a list of them");
    n = v->kind == YNODE_SEQ ? v->nitems : 1;
    if (n == 0)
        return 0;
    c->dkim = calloc(n, sizeof *c->dkim);
    if (c->dkim == NULL)
        return oom(L);
    for (i = 0; i < n; i++) {
        snprintf(where, sizeof where, n > 1 ? "'dkim' entry %zu" : "'dkim'", i + 1);
        c->ndkim = i + 1;
        if ((rc = load_one_dkim(L, v->kind == YNODE_SEQ ? v->items[i] : v, where, &c->dkim[i])) < 0)
            return rc;
    }
    return 0;
}

/* A timeout is at most a day: longer is no timeout anyone meant (and fits an int of ms). */
#define TIMEOUT_MAX_MS 86400000L

static int load_timeouts(struct loader *L, const struct ynode *relay, struct smtp_timeouts *t)
{
    const struct ynode *m = map_get(relay, "timeouts");
    int *slots[] = {&t->connect, &t->greeting, &t->ehlo,  &t->starttls,    &t->auth, &t->mail,
                    &t->rcpt,    &t->data,     &t->block, &t->end_of_data, &t->rset, &t->quit};
    size_t i;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    if ((rc = check_map(L, m, timeout_known, "'timeouts'")) < 0)
        return rc;
    for (i = 0; timeout_known[i] != NULL; i++) {
        long ms = 0;
        if ((rc = get_duration(L, m, timeout_known[i], &ms)) < 0)
            return rc;
        *slots[i] = (int)(ms > TIMEOUT_MAX_MS ? TIMEOUT_MAX_MS : ms);
    }
    return 0;
}

static bool is_hex_pin(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (*s == ':')
            continue;
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
        n++;
    }
    return n == 64;
}

/*
 * The key that names the relay's secret (the first of password_env, password_file and
 * password_cmd) becomes the secret's place; a username needs exactly one of them, and a
 * secret (xoauth2's token too) needs a username.
 */
static int check_relay_secret(struct loader *L, const struct ynode *m, struct campaign_relay *r)
{
    int secrets =
        (r->password_env != NULL) + (r->password_file != NULL) + (r->password_cmd != NULL);
    const struct ynode *v = map_get(m, "password_env");

    if (v == NULL)
        v = map_get(m, "password_file");
    if (v == NULL)
        v = map_get(m, "password_cmd");
    if (v != NULL)
        r->password_place = place_of(v);
    if (r->username != NULL && secrets == 0)
        return fail(L, m,
                    "relay '%s' has a username but no secret: add password_env, password_file "
                    "or password_cmd",
                    r->name);
    if (secrets > 1)
        return fail(L, v, "relay '%s': use one of password_env, password_file and password_cmd",
                    r->name);
    if (secrets == 1 && r->username == NULL)
        return fail(L, v, "relay '%s' has a password but no 'username'", r->name);
    if (r->auth == SMTP_AUTH_CHOICE_XOAUTH2 && r->username == NULL)
        return fail(L, map_get(m, "auth"),
                    "relay '%s': 'auth: xoauth2' needs a username and a "
                    "token (password_env, password_file or password_cmd)",
                    r->name);
    return 0;
}

/*
 * docs/architecture.md: never plaintext (and so never AUTH in the clear) to a remote host
 * unless the campaign says so; and a certificate pin needs a certificate.
 */
static int check_relay_plaintext(struct loader *L, const struct ynode *m,
                                 const struct campaign_relay *r)
{
    if (r->tls == SMTP_TLS_NONE && !r->allow_plaintext && !conn_host_is_loopback(r->host))
        return fail(L, map_get(m, "tls"),
                    "relay '%s': 'tls: none' sends mail and passwords in the clear; it is "
                    "only allowed to a loopback host unless 'allow_plaintext: true'",
                    r->name);
    if (r->pin_sha256 != NULL && r->tls == SMTP_TLS_NONE)
        return fail(L, map_get(m, "pin_sha256"), "relay '%s': a certificate pin needs TLS",
                    r->name);
    return 0;
}

static int load_relay(struct loader *L, const struct ynode *m, size_t index,
                      struct campaign_relay *r)
{
    char where[64];
    bool has_port = false, b = false;
    int tls = SMTP_TLS_STARTTLS, auth = SMTP_AUTH_CHOICE_AUTO, rc;

    snprintf(where, sizeof where, "relay %zu", index + 1);
    r->place = place_of(m);
    r->password_place = r->place;
    r->verify = true;
    r->connections = 2;
    r->messages_per_connection = 100;
    r->weight = 1;
    if ((rc = check_map(L, m, relay_known, where)) < 0)
        return rc;
    if ((rc = get_string(L, m, "host", true, where, &r->host, NULL)) < 0 ||
        (rc = get_string(L, m, "name", false, where, &r->name, NULL)) < 0 ||
        (rc = get_int(L, m, "port", 1, 65535, &r->port, &has_port)) < 0 ||
        (rc = parse_enum(L, m, "tls", smtp_tls_mode_names, &tls)) < 0 ||
        (rc = get_bool(L, m, "verify", &r->verify)) < 0 ||
        (rc = get_path(L, m, "ca_file", false, where, &r->ca_file, NULL)) < 0 ||
        (rc = get_string(L, m, "pin_sha256", false, where, &r->pin_sha256, NULL)) < 0 ||
        (rc = get_string(L, m, "username", false, where, &r->username, NULL)) < 0 ||
        (rc = get_string(L, m, "password_env", false, where, &r->password_env, NULL)) < 0 ||
        (rc = get_path(L, m, "password_file", false, where, &r->password_file, NULL)) < 0 ||
        (rc = get_string(L, m, "password_cmd", false, where, &r->password_cmd, NULL)) < 0 ||
        (rc = parse_enum(L, m, "auth", smtp_auth_choice_names, &auth)) < 0 ||
        (rc = get_bool(L, m, "allow_plaintext", &r->allow_plaintext)) < 0 ||
        (rc = get_int(L, m, "connections", 1, 100, &r->connections, &b)) < 0 ||
        (rc = get_int(L, m, "messages_per_connection", 0, 1000000, &r->messages_per_connection,
                      &b)) < 0 ||
        (rc = get_int(L, m, "weight", 1, 1000, &r->weight, &b)) < 0 ||
        (rc = get_rate(L, m, "rate", &r->rate)) < 0 || (rc = load_timeouts(L, m, &r->timeouts)) < 0)
        return rc;
    r->tls = (enum smtp_tls_mode)tls;
    r->auth = (enum smtp_auth_choice)auth;
    if (!has_port)
        r->port = r->tls == SMTP_TLS_IMPLICIT ? 465 : r->tls == SMTP_TLS_NONE ? 25 : 587;
    if (r->name == NULL && (r->name = strdup(r->host)) == NULL)
        return oom(L);
    if (r->pin_sha256 != NULL && !is_hex_pin(r->pin_sha256))
        return fail(L, map_get(m, "pin_sha256"),
                    "'pin_sha256' must be 64 hexadecimal digits (colons allowed)");
    if ((rc = check_relay_secret(L, m, r)) < 0)
        return rc;
    return check_relay_plaintext(L, m, r);
}

static int load_relays(struct loader *L, const struct ynode *root)
{
    const struct ynode *seq = map_get(root, "relays");
    struct campaign *c = L->c;
    size_t i, j;
    int rc;

    if (seq == NULL || is_null(seq))
        return fail(L, root, "missing required key 'relays' in the campaign (at least one relay)");
    if (seq->kind != YNODE_SEQ)
        return fail(L, seq, "'relays' must be a list of relays, found %s", kind_name(seq));
    if (seq->nitems == 0)
        return fail(L, seq, "'relays' is empty: at least one relay is needed");
    c->relays = calloc(seq->nitems, sizeof *c->relays);
    if (c->relays == NULL)
        return oom(L);
    for (i = 0; i < seq->nitems; i++) {
        c->nrelays = i + 1;
        if ((rc = load_relay(L, seq->items[i], i, &c->relays[i])) < 0)
            return rc;
        for (j = 0; j < i; j++)
            if (strcmp(c->relays[j].name, c->relays[i].name) == 0)
                return fail(L, seq->items[i],
                            "two relays are named '%s'; give each a distinct 'name'",
                            c->relays[i].name);
    }
    return 0;
}

static int load_domain_rates(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "domain_rates");
    struct campaign *c = L->c;
    size_t i, k;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    if (m->kind != YNODE_MAP)
        return fail(L, m, "'domain_rates' must map domains to rates, e.g. {gmail.com: 10/s}");
    c->domain_rates = calloc(m->nitems / 2 + 1, sizeof *c->domain_rates);
    if (c->domain_rates == NULL)
        return oom(L);
    for (i = 0; i + 1 < m->nitems; i += 2) {
        const struct ynode *k_ = m->items[i];
        struct campaign_domain_rate *d = &c->domain_rates[c->ndomain_rates];
        char what[300];
        struct blast_error e;

        if (k_->kind != YNODE_SCALAR || !domain_ok(k_->value))
            return fail(L, k_, "'%s' is not a domain name",
                        k_->kind == YNODE_SCALAR ? k_->value : "?");
        blast_error_clear(&e);
        if ((rc = address_domain_ascii(k_->value, &d->domain, &e)) < 0)
            return rc == BLAST_ENOMEM ? oom(L) : fail(L, k_, "%s", e.text);
        c->ndomain_rates++;
        for (k = 0; k + 1 < c->ndomain_rates; k++)
            if (strcmp(c->domain_rates[k].domain, d->domain) == 0)
                return fail(L, k_, "domain '%s' has two rates", k_->value);
        snprintf(what, sizeof what, "the rate of '%s'", k_->value);
        if ((rc = rate_of(L, m->items[i + 1], what, &d->rate)) < 0)
            return rc;
    }
    return 0;
}

static int load_retry(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "retry");
    struct campaign *c = L->c;
    int rc;

    c->retry.attempts = 5;
    c->retry.initial = 60 * 1000L;
    c->retry.max = 30 * 60 * 1000L;
    c->retry.window = 4 * 3600 * 1000L;
    if (m == NULL || is_null(m))
        return 0;
    c->retry.place = place_of(m);
    if ((rc = check_map(L, m, retry_known, "'retry'")) < 0 ||
        (rc = get_int(L, m, "attempts", 1, 100, &c->retry.attempts, NULL)) < 0 ||
        (rc = get_duration(L, m, "initial", &c->retry.initial)) < 0 ||
        (rc = get_duration(L, m, "max", &c->retry.max)) < 0 ||
        (rc = get_duration(L, m, "window", &c->retry.window)) < 0)
        return rc;
    if (c->retry.max < c->retry.initial)
        return fail(L, map_get(m, "max") ? map_get(m, "max") : m,
                    "retry 'max' is shorter than 'initial'");
    return 0;
}

/*
 * return_path: a MAIL FROM of its own for every recipient, made from a template
 * whose {token} names the row under an HMAC (core/verp), and the secret's source.
 */
static int load_return_path(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "return_path"), *v;
    struct campaign *c = L->c;
    char token[VERP_TOKEN_SIZE], sample[512];
    struct blast_error e;
    struct address a;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    c->return_path.place = place_of(m);
    if ((rc = check_map(L, m, return_path_known, "'return_path'")) < 0 ||
        (rc = get_string(L, m, "address", true, "'return_path'", &c->return_path.address, NULL)) <
            0 ||
        (rc = get_string(L, m, "secret_env", false, "'return_path'", &c->return_path.secret_env,
                         NULL)) < 0 ||
        (rc = get_path(L, m, "secret_file", false, "'return_path'", &c->return_path.secret_file,
                       NULL)) < 0)
        return rc;
    v = map_get(m, "address");
    blast_error_clear(&e);
    memset(token, 'a', VERP_TOKEN_LEN);
    token[VERP_TOKEN_LEN] = '\0';
    if (verp_template_check(c->return_path.address, &e) < 0 ||
        verp_address(c->return_path.address, token, sample, sizeof sample, &e) < 0)
        return fail(L, v, "'return_path': 'address': %s", e.text);
    if (address_parse(sample, &a, &e) < 0)
        return fail(L, v, "'return_path': 'address' with its token is not an address: %s", e.text);
    address_free(&a);
    if ((c->return_path.secret_env != NULL) == (c->return_path.secret_file != NULL))
        return fail(L, m,
                    "'return_path' names its secret with one of 'secret_env' and 'secret_file'");
    v = map_get(m, c->return_path.secret_env != NULL ? "secret_env" : "secret_file");
    c->return_path.secret_place = place_of(v);
    if (c->envelope_from != NULL)
        return fail(L, m,
                    "'return_path' gives every recipient an envelope sender of its own: "
                    "'envelope_from' cannot be set with it");
    return 0;
}

/* The mailbox URL: a scheme blast reads, a host, no credentials, a mailbox for IMAP only. */
static int check_bounces_url(struct loader *L, const struct ynode *v, struct campaign_bounces *b)
{
    static const char *const schemes[] = {"imaps://", "imap://", "pop3s://", "pop3://", NULL};
    const char *u = b->url, *host;
    size_t i;

    for (i = 0; schemes[i] != NULL; i++)
        if (strncasecmp(u, schemes[i], strlen(schemes[i])) == 0)
            break;
    if (schemes[i] == NULL)
        return fail(L, v,
                    "'bounces': 'url' must start with imaps://, imap:// (STARTTLS), pop3s:// "
                    "or pop3:// (STARTTLS)");
    b->pop3 = i >= 2;
    host = u + strlen(schemes[i]);
    if (host[0] == '\0' || host[0] == '/')
        return fail(L, v, "'bounces': 'url' names no host");
    if (memchr(host, '@', strcspn(host, "/")) != NULL)
        return fail(L, v,
                    "'bounces': 'url' must not hold credentials: use 'username' and "
                    "'password_env', 'password_file' or 'password_cmd'");
    if (strpbrk(u, " \t\r\n;?#") != NULL)
        return fail(L, v,
                    "'bounces': 'url' must be scheme://host[:port][/mailbox], without spaces, "
                    "';', '?' or '#'");
    if (b->pop3 && strchr(host, '/') != NULL && strchr(host, '/')[1] != '\0')
        return fail(L, v, "'bounces': a POP3 'url' names no mailbox: pop3s://host[:port]");
    return 0;
}

static int load_soft_bounces(struct loader *L, const struct ynode *m, struct campaign_bounces *b)
{
    const struct ynode *s = map_get(m, "soft_bounces");
    bool has = false;
    int rc;

    b->soft_count = 3;
    b->soft_window = 30L * 24 * 3600 * 1000;
    if (s == NULL || is_null(s))
        return 0;
    if ((rc = check_map(L, s, soft_bounces_known, "'soft_bounces'")) < 0 ||
        (rc = get_int(L, s, "count", 1, 1000, &b->soft_count, &has)) < 0)
        return rc;
    return get_duration(L, s, "window", &b->soft_window);
}

static int check_bounces_choices(struct loader *L, const struct ynode *m,
                                 struct campaign_bounces *b, bool after_given)
{
    int secrets =
        (b->password_env != NULL) + (b->password_file != NULL) + (b->password_cmd != NULL);

    if (secrets != 1)
        return fail(L, m,
                    "'bounces' names its secret with exactly one of 'password_env', "
                    "'password_file' and 'password_cmd'");
    b->password_place = place_of(map_get(m, b->password_env    ? "password_env"
                                            : b->password_file ? "password_file"
                                                               : "password_cmd"));
    if (!after_given)
        b->after = b->pop3 ? CAMPAIGN_BOUNCES_DELETE : CAMPAIGN_BOUNCES_SEEN;
    if (b->pop3 && b->after != CAMPAIGN_BOUNCES_DELETE)
        return fail(L, map_get(m, "after"),
                    "'bounces': POP3 has no flags nor folders: 'after' must be 'delete'");
    if ((b->after == CAMPAIGN_BOUNCES_MOVE) != (b->folder != NULL))
        return fail(L, b->folder ? map_get(m, "folder") : map_get(m, "after"),
                    "'bounces': 'after: move' and 'folder' go together");
    if (b->folder != NULL && strpbrk(b->folder, "\"\\\r\n") != NULL)
        return fail(L, map_get(m, "folder"),
                    "'bounces': 'folder' holds a quote, a backslash or a line break");
    return 0;
}

static int load_bounces(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "bounces");
    struct campaign_bounces *b = &L->c->bounces;
    int after = CAMPAIGN_BOUNCES_SEEN, auth = 0, rc;

    b->verify = true;
    if (m == NULL || is_null(m))
        return 0;
    b->place = place_of(m);
    if ((rc = check_map(L, m, bounces_known, "'bounces'")) < 0 ||
        (rc = get_string(L, m, "url", true, "'bounces'", &b->url, &b->url_place)) < 0 ||
        (rc = check_bounces_url(L, map_get(m, "url"), b)) < 0 ||
        (rc = get_string(L, m, "username", true, "'bounces'", &b->username, NULL)) < 0 ||
        (rc = get_string(L, m, "password_env", false, "'bounces'", &b->password_env, NULL)) < 0 ||
        (rc = get_path(L, m, "password_file", false, "'bounces'", &b->password_file, NULL)) < 0 ||
        (rc = get_string(L, m, "password_cmd", false, "'bounces'", &b->password_cmd, NULL)) < 0 ||
        (rc = parse_enum(L, m, "auth", bounces_auth_names, &auth)) < 0 ||
        (rc = get_bool(L, m, "verify", &b->verify)) < 0 ||
        (rc = get_path(L, m, "ca_file", false, "'bounces'", &b->ca_file, NULL)) < 0 ||
        (rc = parse_enum(L, m, "after", campaign_bounces_after_names, &after)) < 0 ||
        (rc = get_string(L, m, "folder", false, "'bounces'", &b->folder, NULL)) < 0 ||
        (rc = load_soft_bounces(L, m, b)) < 0)
        return rc;
    b->xoauth2 = auth == 1;
    b->after = (enum campaign_bounces_after)after;
    return check_bounces_choices(L, m, b, map_get(m, "after") != NULL);
}

/*
 * limits: the rates kept in Redis for every shard (docs/sharding.md, "Limits"). Redis
 * is reached without TLS, so a password goes to a remote host only when allowed.
 */
static int load_limits(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "limits"), *v;
    struct campaign_limits *l = &L->c->limits;
    struct sharedlimit_url url;
    char why[256];
    int rc;

    l->max_outage = 10L * 60 * 1000;
    if (m == NULL || is_null(m))
        return 0;
    l->place = place_of(m);
    if ((rc = check_map(L, m, limits_known, "'limits'")) < 0 ||
        (rc = get_string(L, m, "shared", true, "'limits'", &l->shared, &l->shared_place)) < 0 ||
        (rc = get_string(L, m, "password_env", false, "'limits'", &l->password_env, NULL)) < 0 ||
        (rc = get_path(L, m, "password_file", false, "'limits'", &l->password_file, NULL)) < 0 ||
        (rc = get_bool(L, m, "allow_plaintext", &l->allow_plaintext)) < 0 ||
        (rc = get_duration(L, m, "max_outage", &l->max_outage)) < 0)
        return rc;
    if (sharedlimit_parse_url(l->shared, &url, why, sizeof why) < 0)
        return fail(L, map_get(m, "shared"), "'limits': 'shared' %s", why);
    if (l->password_env != NULL && l->password_file != NULL)
        return fail(L, map_get(m, "password_file"),
                    "'limits': use one of 'password_env' and 'password_file'");
    v = map_get(m, l->password_env != NULL ? "password_env" : "password_file");
    if (v != NULL)
        l->password_place = place_of(v);
    if (v != NULL && !l->allow_plaintext && !conn_host_is_loopback(url.host))
        return fail(L, v,
                    "'limits': the connection to Redis has no TLS, so the password would "
                    "cross the network in the clear to '%s': only to a loopback host unless "
                    "'allow_plaintext: true'",
                    url.host);
    return 0;
}

/* What an IP address with an optional port is made of (core/dns checks the rest). */
#define SERVER_CHARS "0123456789abcdefABCDEF.:[]"

/* dns: lookups on or off, the servers to ask (a string or a list of them), each try's timeout. */
static int load_dns(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "dns"), *v;
    struct campaign_dns *d = &L->c->dns;
    struct buf list = BUF_INIT;
    size_t i;
    int rc;

    d->lookups = true;
    d->timeout_ms = 2000;
    if (m == NULL || is_null(m))
        return 0;
    d->place = place_of(m);
    if ((rc = check_map(L, m, dns_known, "'dns'")) < 0 ||
        (rc = get_bool(L, m, "lookups", &d->lookups)) < 0 ||
        (rc = get_duration(L, m, "timeout", &d->timeout_ms)) < 0)
        return rc;
    if (d->timeout_ms > 60000)
        return fail(L, map_get(m, "timeout"), "'dns': 'timeout' is at most 60s");
    if ((v = map_get(m, "outbound")) != NULL && !is_null(v)) {
        d->outbound_place = place_of(v);
        if (v->kind != YNODE_SEQ || v->nitems == 0 || v->nitems > 32)
            return fail(L, v,
                        "'dns': 'outbound' is a list of the addresses (or host names) mail "
                        "leaves the relays from, at most 32, e.g. [198.51.100.7]");
        if ((d->outbound = calloc(v->nitems, sizeof *d->outbound)) == NULL)
            return oom(L);
        for (i = 0; i < v->nitems; i++) {
            const struct ynode *it = v->items[i];
            if (it->kind != YNODE_SCALAR || it->value[0] == '\0' || strlen(it->value) > 253 ||
                strspn(it->value, "0123456789abcdefABCDEF.:-_abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(it->value))
                return fail(L, it, "'dns': 'outbound': '%s' is not an address or a host name",
                            it->kind == YNODE_SCALAR ? it->value : "?");
            if ((d->outbound[i] = strdup(it->value)) == NULL)
                return oom(L);
            d->noutbound++;
        }
    }
    v = map_get(m, "servers");
    if (v == NULL || is_null(v))
        return 0;
    if (v->kind == YNODE_SCALAR) {
        if ((d->servers = strdup(v->value)) == NULL)
            return oom(L);
    } else if (v->kind == YNODE_SEQ && v->nitems > 0) {
        for (i = 0; i < v->nitems; i++) {
            const struct ynode *it = v->items[i];
            if (it->kind != YNODE_SCALAR || it->value[0] == '\0' ||
                strspn(it->value, SERVER_CHARS) != strlen(it->value)) {
                buf_free(&list);
                return fail(L, it,
                            "'dns': 'servers' are IP addresses with an optional port "
                            "(HOST:PORT, [IPv6]:PORT), not '%s'",
                            it->kind == YNODE_SCALAR ? it->value : "?");
            }
            if ((i > 0 && buf_putc(&list, ',') < 0) || buf_puts(&list, v->items[i]->value) < 0) {
                buf_free(&list);
                return oom(L);
            }
        }
        if ((d->servers = buf_steal(&list)) == NULL)
            return oom(L);
    } else {
        return fail(L, v,
                    "'dns': 'servers' is HOST:PORT or a list of them, e.g. "
                    "[127.0.0.1:53]");
    }
    if (strspn(d->servers, SERVER_CHARS ",") != strlen(d->servers))
        return fail(L, v,
                    "'dns': 'servers' are IP addresses with an optional port (HOST:PORT, "
                    "[IPv6]:PORT), not '%s'",
                    d->servers);
    return 0;
}

/* A share written "N%" (0 to 100, decimals allowed) into *out (0 to 1); absent: unchanged. */
static int get_share(struct loader *L, const struct ynode *map, const char *key, double *out)
{
    const struct ynode *v = map_get(map, key);
    char *end;
    double x;

    if (v == NULL)
        return 0;
    if (v->kind == YNODE_SCALAR) {
        errno = 0;
        x = strtod(v->value, &end);
        if (end != v->value && strcmp(end, "%") == 0 && errno == 0 && x >= 0 && x <= 100) {
            *out = x / 100.0;
            return 0;
        }
    }
    return fail(L, v, "'breaker': '%s' is a share such as 30%% (0%% to 100%%; 0%%: not judged)",
                key);
}

/*
 * breaker: false (off), or {after, failures, blocks, throttles}: the first attempts
 * judged and the share of each kind that stops the run (core/breaker). Absent: the
 * defaults.
 */
static int load_breaker(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "breaker");
    struct breaker_options *b = &L->c->breaker;
    int after;
    int rc;

    breaker_defaults(b);
    if (m == NULL || is_null(m))
        return 0;
    L->c->breaker_place = place_of(m);
    if (m->kind == YNODE_SCALAR && strcmp(m->value, "false") == 0) {
        b->after = 0;
        return 0;
    }
    if (m->kind != YNODE_MAP)
        return fail(L, m,
                    "'breaker' is false or {after: N, failures: 30%%, blocks: 10%%, "
                    "throttles: 50%%}");
    after = (int)b->after;
    if ((rc = check_map(L, m, breaker_known, "'breaker'")) < 0 ||
        (rc = get_int(L, m, "after", 1, 1000000, &after, NULL)) < 0 ||
        (rc = get_share(L, m, "failures", &b->failures)) < 0 ||
        (rc = get_share(L, m, "blocks", &b->blocks)) < 0 ||
        (rc = get_share(L, m, "throttles", &b->throttles)) < 0)
        return rc;
    b->after = (size_t)after;
    return 0;
}

static bool provider_name_ok(const char *s);

/* A whole number 1..WARMUP_MAX_CAP (what a cap may be). */
static int cap_of(struct loader *L, const struct ynode *v, const char *what, uint64_t *out)
{
    char *end;
    unsigned long long n;

    if (v->kind == YNODE_SCALAR && v->plain && v->len > 0 && v->value[0] >= '0' &&
        v->value[0] <= '9') {
        errno = 0;
        n = strtoull(v->value, &end, 10);
        if (*end == '\0' && errno == 0 && n >= 1 && n <= WARMUP_MAX_CAP) {
            *out = n;
            return 0;
        }
    }
    return fail(L, v, "'warmup': %s is a whole number of messages a day, 1 to %llu", what,
                (unsigned long long)WARMUP_MAX_CAP);
}

/* A ramp: daily: [caps], or first/growth/until (each optional: the default's). */
static int load_ramp(struct loader *L, const struct ynode *m, struct warmup_schedule *s)
{
    const struct ynode *daily = map_get(m, "daily"), *v;
    struct blast_error e;
    size_t i;
    int rc;

    warmup_schedule_default(s);
    if (daily != NULL && !is_null(daily)) {
        if (map_get(m, "first") != NULL || map_get(m, "growth") != NULL ||
            map_get(m, "until") != NULL)
            return fail(L, daily,
                        "'warmup': 'daily' lists each day's cap; 'first', 'growth' and 'until' "
                        "make a ramp instead: give one or the other");
        if (daily->kind != YNODE_SEQ || daily->nitems == 0 || daily->nitems > 3650)
            return fail(L, daily,
                        "'warmup': 'daily' is a list of daily caps (day 1 first), e.g. [200, 500, "
                        "1000]");
        if ((s->daily = calloc(daily->nitems, sizeof *s->daily)) == NULL)
            return oom(L);
        s->ndaily = daily->nitems;
        for (i = 0; i < daily->nitems; i++) {
            char what[48];
            snprintf(what, sizeof what, "day %zu of 'daily'", i + 1);
            if ((rc = cap_of(L, daily->items[i], what, &s->daily[i])) < 0)
                return rc;
        }
        return 0;
    }
    if ((v = map_get(m, "first")) != NULL && (rc = cap_of(L, v, "'first'", &s->first)) < 0)
        return rc;
    if ((v = map_get(m, "until")) != NULL && (rc = cap_of(L, v, "'until'", &s->until)) < 0)
        return rc;
    if ((v = map_get(m, "growth")) != NULL) {
        char *end;
        double g = v->kind == YNODE_SCALAR ? strtod(v->value, &end) : 0;
        if (v->kind != YNODE_SCALAR || *end != '\0' || !(g >= WARMUP_GROWTH_MIN) ||
            g > WARMUP_GROWTH_MAX)
            return fail(L, v, "'warmup': 'growth' is a factor from %.2f to %.0f, e.g. 1.4",
                        WARMUP_GROWTH_MIN, WARMUP_GROWTH_MAX);
        s->growth = g;
    }
    blast_error_clear(&e);
    if (warmup_schedule_check(s, &e) < 0)
        return fail(L, m, "'warmup': %s", e.text);
    return 0;
}

/* "2026-12-01" into days since 1970-01-01; -1 when it is not such a date. */
static int64_t day_of_date(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d;
    char tail;

    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || y < 1970 ||
        y > 9999 || mo < 1 || mo > 12 || d < 1)
        return -1;
    if (d > mdays[mo - 1] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
        return -1;
    return timeutil_days_from_civil(y, mo, d);
}

/*
 * warmup: true (the default ramp), false/absent (none), or {daily | first, growth,
 * until; start; store; providers: {NAME: ramp | false}}.
 */
static int load_warmup(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "warmup"), *v, *ps;
    struct campaign *c = L->c;
    size_t i;
    int rc;

    c->warmup.start = -1;
    if (m == NULL || is_null(m))
        return 0;
    c->warmup.place = place_of(m);
    if (m->kind == YNODE_SCALAR &&
        (strcmp(m->value, "false") == 0 || strcmp(m->value, "true") == 0)) {
        c->warmup.enabled = m->value[0] == 't';
        warmup_schedule_default(&c->warmup.schedule);
        return 0;
    }
    if (m->kind != YNODE_MAP)
        return fail(L, m,
                    "'warmup' is true (the default ramp), false, or {daily: [...]} or {first: "
                    "200, growth: 1.4, until: 100000}, with start, store and providers");
    c->warmup.enabled = true;
    if ((rc = check_map(L, m, warmup_known, "'warmup'")) < 0 ||
        (rc = load_ramp(L, m, &c->warmup.schedule)) < 0 ||
        (rc = get_path(L, m, "store", false, "'warmup'", &c->warmup.store,
                       &c->warmup.store_place)) < 0)
        return rc;
    if ((v = map_get(m, "start")) != NULL && !is_null(v)) {
        if (v->kind != YNODE_SCALAR || (c->warmup.start = day_of_date(v->value)) < 0)
            return fail(L, v,
                        "'warmup': 'start' is the ramp's first day, a date such as 2026-12-01");
    }
    if ((ps = map_get(m, "providers")) == NULL || is_null(ps))
        return 0;
    if (ps->kind != YNODE_MAP)
        return fail(L, ps,
                    "'warmup': 'providers' maps provider names to their own ramp or false, e.g. "
                    "{google: {daily: [100, 300]}}");
    if ((c->warmup.providers = calloc(ps->nitems / 2 + 1, sizeof *c->warmup.providers)) == NULL)
        return oom(L);
    for (i = 0; i + 1 < ps->nitems; i += 2) {
        const struct ynode *key = ps->items[i], *r = ps->items[i + 1];
        struct campaign_warmup_provider *p = &c->warmup.providers[c->warmup.nproviders];

        if (key->kind != YNODE_SCALAR ||
            (!provider_name_ok(key->value) && strcmp(key->value, WARMUP_OTHER) != 0))
            return fail(L, key,
                        "'warmup': 'providers': '%s' is not a provider name (lower-case letters, "
                        "digits and '-')",
                        key->kind == YNODE_SCALAR ? key->value : "?");
        if ((p->name = strdup(key->value)) == NULL)
            return oom(L);
        p->place = place_of(key);
        c->warmup.nproviders++;
        if (r->kind == YNODE_SCALAR && strcmp(r->value, "false") == 0) {
            p->off = true;
            continue;
        }
        if (r->kind != YNODE_MAP)
            return fail(
                L, r,
                "'warmup': 'providers': '%s' is a ramp {daily | first, growth, until} or false",
                key->value);
        if ((rc = check_map(L, r, warmup_ramp_known, "'warmup': 'providers'")) < 0 ||
            (rc = load_ramp(L, r, &p->schedule)) < 0)
            return rc;
    }
    return 0;
}

/* A scalar, or a list of scalars joined with sep, into buf (for the window's texts). */
static int joined(struct loader *L, const struct ynode *v, const char *sep, const char *what,
                  struct buf *out)
{
    size_t i;

    if (v->kind == YNODE_SCALAR)
        return buf_puts(out, v->value) < 0 ? oom(L) : 0;
    if (v->kind != YNODE_SEQ || v->nitems == 0)
        return fail(L, v, "'window': %s", what);
    for (i = 0; i < v->nitems; i++) {
        if (v->items[i]->kind != YNODE_SCALAR)
            return fail(L, v->items[i], "'window': %s", what);
        if ((i > 0 && buf_puts(out, sep) < 0) || buf_puts(out, v->items[i]->value) < 0)
            return oom(L);
    }
    return 0;
}

/*
 * window: {days, hours, zone_column}: the days ("mon-fri", [mon, wed]) and hours
 * ("09:00-17:00", ["08:00-12:00", "14:00-18:00"]) recipients may be sent to, on their
 * wall clock. Absent: any time.
 */
static int load_window(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "window"), *v;
    struct campaign *c = L->c;
    char why[160];
    struct buf b;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    c->window.place = place_of(m);
    if (m->kind != YNODE_MAP)
        return fail(L, m,
                    "'window' is {days: mon-fri, hours: \"09:00-17:00\", zone_column: tz} (each "
                    "optional)");
    if ((rc = check_map(L, m, window_known, "'window'")) < 0 ||
        (rc = get_string(L, m, "zone_column", false, "'window'", &c->window.zone_column,
                         &c->window.zone_column_place)) < 0)
        return rc;
    c->window.set = true;
    buf_init(&b);
    if ((v = map_get(m, "days")) != NULL && !is_null(v)) {
        if ((rc = joined(L, v, ",", "'days' is a text such as mon-fri, or a list of days", &b)) < 0)
            goto out;
        if (window_parse_days(b.data, &c->window.w.days, why, sizeof why) < 0) {
            rc = fail(L, v, "'window': 'days': %s", why);
            goto out;
        }
    }
    buf_reset(&b);
    if ((v = map_get(m, "hours")) != NULL && !is_null(v)) {
        if ((rc = joined(L, v, ", ", "'hours' is a text such as \"09:00-17:00\", or a list of them",
                         &b)) < 0)
            goto out;
        if (window_parse_hours(b.data, &c->window.w, why, sizeof why) < 0) {
            rc = fail(L, v, "'window': 'hours': %s", why);
            goto out;
        }
    }
    rc = 0;
out:
    buf_free(&b);
    return rc;
}

/* preflight: dns (or [dns]), or false: what send checks before its first message. */
static int load_preflight(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "preflight");
    size_t i;

    if (m == NULL || is_null(m))
        return 0;
    L->c->preflight_place = place_of(m);
    if (m->kind == YNODE_SCALAR && strcmp(m->value, "false") == 0)
        return 0;
    if (m->kind == YNODE_SCALAR && strcmp(m->value, "dns") == 0) {
        L->c->preflight_dns = true;
        return 0;
    }
    if (m->kind == YNODE_SEQ) {
        for (i = 0; i < m->nitems; i++) {
            if (m->items[i]->kind != YNODE_SCALAR || strcmp(m->items[i]->value, "dns") != 0)
                return fail(L, m->items[i], "'preflight': the only check is dns");
            L->c->preflight_dns = true;
        }
        return 0;
    }
    return fail(L, m, "'preflight' is dns (check the sending domain's DNS records first) or false");
}

#define SEEDS_MAX 100

/*
 * seeds: a list of mailboxes, or {addresses, wait}. They get the message first (the
 * first recipient's, cmd/blast/send.c); a seed written twice is an error, as a
 * duplicate would be mailed twice.
 */
static int load_seeds(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "seeds"), *list = m;
    struct campaign *c = L->c;
    size_t i, k;
    int rc;

    c->seeds.wait = 60000;
    if (m == NULL || is_null(m))
        return 0;
    c->seeds.place = place_of(m);
    if (m->kind == YNODE_MAP) {
        if ((rc = check_map(L, m, seeds_known, "'seeds'")) < 0 ||
            (rc = get_duration(L, m, "wait", &c->seeds.wait)) < 0)
            return rc;
        if ((list = map_get(m, "addresses")) == NULL)
            return fail(L, m, "'seeds' needs 'addresses', a list of mailboxes");
    }
    if (list->kind != YNODE_SEQ || list->nitems == 0)
        return fail(L, list,
                    "'seeds' is a list of mailboxes (the team's own), e.g. [qa@example.com], or "
                    "{addresses: [...], wait: 60s}");
    if (list->nitems > SEEDS_MAX)
        return fail(L, list->items[SEEDS_MAX], "'seeds': at most %d addresses", SEEDS_MAX);
    if ((c->seeds.addresses = calloc(list->nitems, sizeof *c->seeds.addresses)) == NULL ||
        (c->seeds.places = calloc(list->nitems, sizeof *c->seeds.places)) == NULL)
        return oom(L);
    for (i = 0; i < list->nitems; i++) {
        const struct ynode *it = list->items[i];
        struct address a;
        struct blast_error aerr;

        if (it->kind != YNODE_SCALAR || it->value[0] == '\0')
            return fail(L, it, "'seeds': each item is a mailbox such as qa@example.com");
        blast_error_clear(&aerr);
        if (address_parse_mailbox(it->value, &a, &aerr) < 0)
            return fail(L, it, "'seeds': %s", aerr.text);
        for (k = 0; k < i; k++) {
            struct address b;
            bool same;
            if (address_parse_mailbox(c->seeds.addresses[k], &b, &aerr) < 0)
                continue;
            same = strcasecmp(a.envelope, b.envelope) == 0;
            address_free(&b);
            if (same) {
                address_free(&a);
                return fail(L, it, "'seeds': %s is listed twice (line %d)", it->value,
                            c->seeds.places[k].line);
            }
        }
        address_free(&a);
        if ((c->seeds.addresses[i] = strdup(it->value)) == NULL)
            return oom(L);
        c->seeds.places[i] = place_of(it);
        c->seeds.n++;
    }
    return 0;
}

static bool provider_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/*
 * providers: NAME: false (switched off), or {rate, mx}: another rate for a shipped
 * provider, or a provider of the campaign's own, which needs its mx.
 */
static int load_providers(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "providers");
    struct campaign *c = L->c;
    size_t i, k;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    if (m->kind != YNODE_MAP)
        return fail(L, m,
                    "'providers' maps provider names to {rate, mx} or false, e.g. "
                    "{google: {rate: 20/s}}");
    if ((c->providers = calloc(m->nitems / 2 + 1, sizeof *c->providers)) == NULL)
        return oom(L);
    for (i = 0; i + 1 < m->nitems; i += 2) {
        const struct ynode *key = m->items[i], *v = m->items[i + 1], *mx;
        struct campaign_provider *p = &c->providers[c->nproviders];
        char what[96];

        if (key->kind != YNODE_SCALAR || !provider_name_ok(key->value))
            return fail(L, key,
                        "'providers': a provider's name is lower-case letters, digits "
                        "and '-', not '%s'",
                        key->kind == YNODE_SCALAR ? key->value : "?");
        for (k = 0; k < c->nproviders; k++)
            if (strcmp(c->providers[k].name, key->value) == 0)
                return fail(L, key, "'providers': '%s' is there twice", key->value);
        if ((p->name = strdup(key->value)) == NULL)
            return oom(L);
        p->place = place_of(key);
        c->nproviders++;
        if (v->kind == YNODE_SCALAR && strcmp(v->value, "false") == 0) {
            p->off = true;
            continue;
        }
        if (v->kind != YNODE_MAP)
            return fail(L, v, "'providers': '%s' is {rate: N/s, mx: [HOST, ...]} or false",
                        key->value);
        snprintf(what, sizeof what, "'providers': '%s'", key->value);
        if ((rc = check_map(L, v, provider_known, what)) < 0 ||
            (rc = get_rate(L, v, "rate", &p->rate)) < 0)
            return rc;
        mx = map_get(v, "mx");
        if ((mx == NULL || is_null(mx)) && !provider_shipped(p->name)) {
            const char *near = provider_suggest(p->name);
            return fail(L, key,
                        "'providers': '%s' is not a provider blast knows%s%s%s; give its "
                        "'mx' host names to make it one",
                        p->name, near != NULL ? " (did you mean '" : "", near != NULL ? near : "",
                        near != NULL ? "'?)" : "");
        }
        if (mx == NULL || is_null(mx))
            continue;
        if (mx->kind == YNODE_SCALAR)
            mx = NULL; /* one name: below, as a list of one */
        if (mx != NULL && (mx->kind != YNODE_SEQ || mx->nitems == 0))
            return fail(L, map_get(v, "mx"), "%s: 'mx' is a list of host names", what);
        p->nmx = mx != NULL ? mx->nitems : 1;
        if ((p->mx = calloc(p->nmx, sizeof *p->mx)) == NULL)
            return oom(L);
        for (k = 0; k < p->nmx; k++) {
            const struct ynode *h = mx != NULL ? mx->items[k] : map_get(v, "mx");
            if (h->kind != YNODE_SCALAR || !domain_ok(h->value))
                return fail(L, h, "%s: '%s' is not a host name", what,
                            h->kind == YNODE_SCALAR ? h->value : "?");
            if ((p->mx[k] = strdup(h->value)) == NULL)
                return oom(L);
        }
    }
    return 0;
}

static int load_dsn(struct loader *L, const struct ynode *root)
{
    const char *const *notify_names = smtp_dsn_notify_names;
    const struct ynode *m = map_get(root, "dsn"), *n;
    struct campaign *c = L->c;
    size_t i, count;
    int ret = 0, rc;

    if (m == NULL || is_null(m))
        return 0;
    c->dsn.place = place_of(m);
    if ((rc = check_map(L, m, dsn_known, "'dsn'")) < 0 ||
        (rc = parse_enum(L, m, "ret", smtp_dsn_ret_names, &ret)) < 0)
        return rc;
    c->dsn.ret = (enum smtp_dsn_ret)ret;
    n = map_get(m, "notify");
    if (n != NULL && !is_null(n)) {
        count = n->kind == YNODE_SEQ ? n->nitems : 1;
        for (i = 0; i < count; i++) {
            const struct ynode *item = n->kind == YNODE_SEQ ? n->items[i] : n;
            int k;
            if (item->kind != YNODE_SCALAR)
                return fail(L, item, "'notify' lists never, success, failure or delay");
            for (k = 0; notify_names[k] != NULL; k++)
                if (strcmp(item->value, notify_names[k]) == 0)
                    break;
            if (notify_names[k] == NULL)
                return fail(L, item, "'notify' lists never, success, failure or delay, not '%s'",
                            item->value);
            c->dsn.notify |= 1u << k;
        }
        /* RFC 3461 §4.1: NEVER stands alone */
        if ((c->dsn.notify & SMTP_DSN_NEVER) && c->dsn.notify != SMTP_DSN_NEVER)
            return fail(L, n, "'never' cannot be combined with other 'notify' values");
    }
    return 0;
}

/* ---- notify ------------------------------------------------------------------------ */

#define NOTIFY_TIMEOUT_DEFAULT_MS 10000L
#define NOTIFY_TIMEOUT_MAX_MS     (5 * 60 * 1000L)
#define NOTIFY_RETRIES_DEFAULT    3
#define NOTIFY_RETRIES_MAX        10
#define NOTIFY_HEADER_VALUE_MAX   4096

/* Request headers that blast writes itself, or that change how the request is framed. */
static const char *const notify_reserved_headers[] = {"host",
                                                      "content-type",
                                                      "content-length",
                                                      "content-encoding",
                                                      "transfer-encoding",
                                                      "te",
                                                      "trailer",
                                                      "connection",
                                                      "keep-alive",
                                                      "proxy-connection",
                                                      "upgrade",
                                                      "expect",
                                                      "user-agent",
                                                      NULL};

/* The URL's rules are core/url's (url_check_webhook); its reason is placed at the value. */
static int check_notify_url(struct loader *L, const struct ynode *v, struct campaign_notify *n)
{
    char why[BLAST_ERROR_TEXT_MAX];
    int rc = url_check_webhook(n->url, &n->loopback, why, sizeof why);

    if (rc == BLAST_ENOMEM)
        return oom(L);
    return rc < 0 ? fail(L, v, "%s", why) : 0;
}

/* RFC 9110 §5.6.2: a field name is a token. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return false;
    return true;
}

static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* notify.headers: name -> plain value, checked so that no value can add a header. */
static int load_notify_headers(struct loader *L, const struct ynode *notify,
                               struct campaign_notify *n)
{
    const struct ynode *m = map_get(notify, "headers");
    size_t i, k;

    if (m == NULL || is_null(m))
        return 0;
    if (m->kind != YNODE_MAP)
        return fail(L, m, "'headers' in 'notify' must be a mapping of header names to values");
    n->headers = calloc(m->nitems / 2 + 1, sizeof *n->headers);
    if (n->headers == NULL)
        return oom(L);
    for (i = 0; i + 1 < m->nitems; i += 2) {
        const struct ynode *k_ = m->items[i], *v = m->items[i + 1];
        struct campaign_header *h = &n->headers[n->nheaders];
        char lower[128];
        const unsigned char *p;

        if (k_->kind != YNODE_SCALAR || k_->len == 0 || k_->len >= sizeof lower ||
            strlen(k_->value) != k_->len || has_control(k_->value))
            return fail(L, k_,
                        "a header name in 'notify' must be one word of at most 127 "
                        "characters, without line breaks or control characters");
        if (!is_token(k_->value))
            return fail(L, k_,
                        "'%s' is not a valid header name (letters, digits and "
                        "!#$%%&'*+-.^_`|~ only: no ':' or spaces)",
                        k_->value);
        for (k = 0; k <= k_->len; k++)
            lower[k] = (char)(k_->value[k] >= 'A' && k_->value[k] <= 'Z' ? k_->value[k] + 32
                                                                         : k_->value[k]);
        if (strcmp(lower, "authorization") == 0 || strcmp(lower, "proxy-authorization") == 0 ||
            strcmp(lower, "cookie") == 0)
            return fail(L, k_,
                        "header '%s' would keep a secret in the campaign file: name the "
                        "environment variable that holds the Authorization value with "
                        "'authorization_env'",
                        k_->value);
        if (in_list(notify_reserved_headers, lower))
            return fail(L, k_, "header '%s' is written by blast (or must not be set)", k_->value);
        for (k = 0; k < n->nheaders; k++)
            if (strcasecmp(n->headers[k].name, k_->value) == 0)
                return fail(L, k_, "duplicate header '%s' in 'notify'", k_->value);
        if (v->kind != YNODE_SCALAR || is_null(v) || v->len == 0)
            return fail(L, v, "the value of header '%s' must be a string, not empty", k_->value);
        /* the value is not quoted back: it may be a token someone pasted */
        if (strlen(v->value) != v->len || v->len > NOTIFY_HEADER_VALUE_MAX)
            return fail(L, v, "the value of header '%s' is too long or holds a NUL character",
                        k_->value);
        for (p = (const unsigned char *)v->value; *p != '\0'; p++)
            if ((*p < ' ' && *p != '\t') || *p >= 0x7f)
                return fail(L, v,
                            "the value of header '%s' holds a line break, a control character "
                            "or a non-ASCII character",
                            k_->value);
        h->name = strdup(k_->value);
        h->value = strdup(v->value);
        if (h->name == NULL || h->value == NULL)
            return oom(L);
        h->place = place_of(v);
        n->nheaders++;
    }
    return 0;
}

static int load_notify(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "notify"), *v;
    struct campaign_notify *n;
    const char *p;
    int rc;

    if (m == NULL || is_null(m))
        return 0;
    if ((rc = check_map(L, m, notify_known, "'notify'")) < 0)
        return rc;
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return oom(L);
    L->c->notify = n;
    n->place = place_of(m);
    n->timeout = NOTIFY_TIMEOUT_DEFAULT_MS;
    n->retries = NOTIFY_RETRIES_DEFAULT;
    n->verify = true;
    if ((rc = get_string(L, m, "url", true, "'notify'", &n->url, &n->url_place)) < 0 ||
        (rc = check_notify_url(L, map_get(m, "url"), n)) < 0 ||
        (rc = load_notify_headers(L, m, n)) < 0 ||
        (rc = get_string(L, m, "authorization_env", false, "'notify'", &n->authorization_env,
                         &n->authorization_place)) < 0 ||
        (rc = get_duration(L, m, "timeout", &n->timeout)) < 0 ||
        (rc = get_int(L, m, "retries", 0, NOTIFY_RETRIES_MAX, &n->retries, NULL)) < 0 ||
        (rc = get_bool(L, m, "verify", &n->verify)) < 0 ||
        (rc = get_path(L, m, "ca_file", false, "'notify'", &n->ca_file, &n->ca_file_place)) < 0)
        return rc;
    if (n->timeout > NOTIFY_TIMEOUT_MAX_MS)
        return fail(L, map_get(m, "timeout"), "'timeout' of 'notify' must be at most 5m");
    /* a name, never the value: the message does not quote what was written */
    if ((v = map_get(m, "authorization_env")) != NULL && n->authorization_env != NULL) {
        for (p = n->authorization_env; *p != '\0'; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
                  (*p >= '0' && *p <= '9' && p != n->authorization_env)))
                return fail(L, v,
                            "'authorization_env' names the environment variable that holds the "
                            "Authorization value (letters, digits and '_'), not the value");
    }
    return 0;
}

static void value_free(struct campaign_value *v)
{
    size_t i;

    free(v->string);
    for (i = 0; i < v->n; i++) {
        if (v->keys != NULL)
            free(v->keys[i]);
        value_free(&v->items[i]);
    }
    free(v->keys);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/*
 * Copy a YAML node into a vars value, an alias once per use. The parser bounds the
 * depth and what the copies add (CAMPAIGN_ALIAS_MAX_VALUES and _BYTES).
 */
static int load_value(struct loader *L, const struct ynode *n, struct campaign_value *out)
{
    size_t i, j, count;
    int rc;

    memset(out, 0, sizeof *out);
    if (n->kind == YNODE_SCALAR) {
        if (strlen(n->value) != n->len)
            return fail(L, n, "a value in 'vars' contains a NUL character");
        bool yes = n->plain && (strcmp(n->value, "true") == 0 || strcmp(n->value, "True") == 0 ||
                                strcmp(n->value, "TRUE") == 0);
        bool no = n->plain && (strcmp(n->value, "false") == 0 || strcmp(n->value, "False") == 0 ||
                               strcmp(n->value, "FALSE") == 0);
        out->kind = CAMPAIGN_VALUE_STRING;
        out->boolean = yes || no;
        /* false is kept as "" so a section skips it and it prints as nothing */
        out->string = strdup(is_null(n) || no ? "" : yes ? "true" : n->value);
        return out->string != NULL ? 0 : oom(L);
    }
    out->kind = n->kind == YNODE_MAP ? CAMPAIGN_VALUE_MAP : CAMPAIGN_VALUE_LIST;
    count = n->kind == YNODE_MAP ? n->nitems / 2 : n->nitems;
    out->items = calloc(count + 1, sizeof *out->items);
    if (out->items == NULL ||
        (n->kind == YNODE_MAP && (out->keys = calloc(count + 1, sizeof *out->keys)) == NULL))
        return oom(L);
    for (i = 0; i < count; i++) {
        const struct ynode *item = n->kind == YNODE_MAP ? n->items[2 * i + 1] : n->items[i];
        if (n->kind == YNODE_MAP) {
            const struct ynode *k = n->items[2 * i];
            const char *p;
            if (k->kind != YNODE_SCALAR || k->len == 0)
                return fail(L, k, "keys in 'vars' must be names, found %s",
                            k->kind == YNODE_SCALAR ? "an empty one" : kind_name(k));
            for (p = k->value; p < k->value + k->len; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                    return fail(L, k,
                                "'%s': names in 'vars' may contain letters, digits, '_' "
                                "and '-' (a '.' reaches into nested values)",
                                k->value);
            /* only the first of two equal keys could ever be reached */
            for (j = 0; j < i; j++)
                if (strcmp(out->keys[j], k->value) == 0)
                    return fail(L, k, "duplicate key '%s' in 'vars' (first at line %d)", k->value,
                                n->items[2 * j]->line);
            if ((out->keys[i] = strdup(k->value)) == NULL)
                return oom(L);
        }
        out->n = i + 1;
        if ((rc = load_value(L, item, &out->items[i])) < 0)
            return rc;
    }
    return 0;
}

static int load_vars(struct loader *L, const struct ynode *root)
{
    const struct ynode *m = map_get(root, "vars");

    L->c->vars.kind = CAMPAIGN_VALUE_MAP;
    if (m == NULL || is_null(m))
        return 0;
    if (m->kind != YNODE_MAP)
        return fail(L, m, "'vars' must be a mapping of names to values");
    return load_value(L, m, &L->c->vars);
}

static int check_name(struct loader *L, const struct ynode *root)
{
    const char *p;

    for (p = L->c->name; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return fail(L, map_get(root, "name"),
                        "'name' may only contain letters, digits, '.', '_' and '-'");
    return 0;
}

static int load_root(struct loader *L, const struct ynode *root)
{
    struct campaign *c = L->c;
    int rc;

    if ((rc = check_map(L, root, top_known, "the campaign")) < 0)
        return rc;
    if ((rc = get_string(L, root, "name", true, "the campaign", &c->name, NULL)) < 0 ||
        (rc = check_name(L, root)) < 0 ||
        (rc = get_string(L, root, "from", true, "the campaign", &c->from, &c->from_place)) < 0 ||
        (rc = check_mailbox(L, root, "from", false)) < 0 ||
        (rc = get_string(L, root, "envelope_from", false, "the campaign", &c->envelope_from,
                         &c->envelope_from_place)) < 0 ||
        (rc = check_mailbox(L, root, "envelope_from", true)) < 0 ||
        (rc = get_string(L, root, "reply_to", false, "the campaign", &c->reply_to,
                         &c->reply_to_place)) < 0 ||
        (rc = check_mailbox(L, root, "reply_to", false)) < 0 ||
        (rc = get_template(L, root, "subject", true, "the campaign", &c->subject,
                           &c->subject_place)) < 0 ||
        (rc = get_string(L, root, "helo", false, "the campaign", &c->helo, &c->helo_place)) < 0 ||
        (rc = load_recipients(L, root)) < 0 || (rc = load_suppression(L, root)) < 0 ||
        (rc = load_body(L, root)) < 0 ||
        (rc = load_parts(L, root, "attachments", false, &c->attachments, &c->nattachments)) < 0 ||
        (rc = load_parts(L, root, "inline", true, &c->inline_parts, &c->ninline)) < 0 ||
        (rc = load_headers(L, root)) < 0 || (rc = load_unsubscribe(L, root)) < 0 ||
        (rc = get_template(L, root, "feedback_id", false, "the campaign", &c->feedback_id,
                           &c->feedback_id_place)) < 0 ||
        (rc = load_dkim(L, root)) < 0 || (rc = load_relays(L, root)) < 0 ||
        (rc = get_rate(L, root, "rate", &c->rate)) < 0 || (rc = load_domain_rates(L, root)) < 0 ||
        (rc = load_retry(L, root)) < 0 || (rc = load_dsn(L, root)) < 0 ||
        (rc = get_bool(L, root, "chunking", &c->chunking)) < 0 || (rc = load_vars(L, root)) < 0 ||
        (rc = get_path(L, root, "report", false, "the campaign", &c->report, NULL)) < 0 ||
        (rc = get_path(L, root, "journal", false, "the campaign", &c->journal, &c->journal_place)) <
            0 ||
        (rc = load_notify(L, root)) < 0 || (rc = load_return_path(L, root)) < 0 ||
        (rc = load_bounces(L, root)) < 0 || (rc = load_limits(L, root)) < 0 ||
        (rc = load_dns(L, root)) < 0 || (rc = load_providers(L, root)) < 0 ||
        (rc = load_breaker(L, root)) < 0 || (rc = load_seeds(L, root)) < 0 ||
        (rc = load_warmup(L, root)) < 0 || (rc = load_window(L, root)) < 0 ||
        (rc = load_preflight(L, root)) < 0 ||
        (rc = get_string(L, root, "timezone", false, "the campaign", &c->timezone,
                         &c->timezone_place)) < 0 ||
        (rc = get_path(L, root, "suppression_db", false, "the campaign", &c->suppression_db,
                       &c->suppression_db_place)) < 0)
        return rc;
    if (map_get(root, "chunking") != NULL)
        c->chunking_place = place_of(map_get(root, "chunking"));
    if (c->helo != NULL && !domain_ok(c->helo))
        return fail(L, map_get(root, "helo"), "'helo' must be a fully qualified domain name");
    if (c->bounces.url != NULL && c->suppression_db == NULL)
        return fail(L, map_get(root, "bounces"),
                    "'bounces' records what comes back in a suppression database: add "
                    "'suppression_db'");
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int campaign_load(const char *path, struct campaign **out, struct blast_error *err)
{
    struct loader L;
    struct ydoc doc;
    struct campaign *c = NULL;
    FILE *f = NULL;
    int rc;

    memset(&doc, 0, sizeof doc);
    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open campaign file: %s",
                             strerror(errno));
        goto out;
    }
    if ((rc = ydoc_load(f, path, &doc, err)) < 0)
        goto out;
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = strdup(path)) == NULL || (c->dir = dir_of(path)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    L.path = path;
    L.err = err;
    L.c = c;
    if ((rc = load_root(&L, doc.root)) < 0)
        goto out;
    *out = c;
    c = NULL;
out:
    campaign_free(c);
    ydoc_free(&doc);
    if (f != NULL)
        fclose(f);
    return rc;
}

static void parts_free(struct campaign_part *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(p[i].path);
        free(p[i].name);
        free(p[i].content_type);
        free(p[i].cid);
    }
    free(p);
}

static void notify_free(struct campaign_notify *n)
{
    size_t i;

    if (n == NULL)
        return;
    for (i = 0; i < n->nheaders; i++) {
        free(n->headers[i].name);
        free(n->headers[i].value);
    }
    free(n->headers);
    free(n->url);
    free(n->authorization_env);
    free(n->ca_file);
    free(n);
}

void campaign_free(struct campaign *c)
{
    size_t i;

    if (c == NULL)
        return;
    notify_free(c->notify);
    for (i = 0; i < c->nrelays; i++) {
        struct campaign_relay *r = &c->relays[i];
        free(r->name);
        free(r->host);
        free(r->ca_file);
        free(r->pin_sha256);
        free(r->username);
        free(r->password_env);
        free(r->password_file);
        free(r->password_cmd);
    }
    free(c->relays);
    for (i = 0; i < c->nsuppression; i++)
        free(c->suppression[i]);
    free(c->suppression);
    free(c->suppression_places);
    parts_free(c->attachments, c->nattachments);
    parts_free(c->inline_parts, c->ninline);
    for (i = 0; i < c->nheaders; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    free(c->headers);
    for (i = 0; i < c->ndkim; i++) {
        free(c->dkim[i].domain);
        free(c->dkim[i].selector);
        free(c->dkim[i].key);
    }
    free(c->dkim);
    for (i = 0; i < c->ndomain_rates; i++)
        free(c->domain_rates[i].domain);
    free(c->domain_rates);
    free(c->dns.servers);
    for (size_t o = 0; o < c->dns.noutbound; o++)
        free(c->dns.outbound[o]);
    free(c->dns.outbound);
    for (i = 0; i < c->nproviders; i++) {
        size_t k;
        free(c->providers[i].name);
        for (k = 0; k < c->providers[i].nmx; k++)
            free(c->providers[i].mx[k]);
        free(c->providers[i].mx);
    }
    free(c->providers);
    value_free(&c->vars);
    free(c->list_unsubscribe.url);
    free(c->list_unsubscribe.mailto);
    free(c->feedback_id);
    free(c->path);
    free(c->dir);
    free(c->name);
    free(c->from);
    free(c->envelope_from);
    free(c->suppression_db);
    free(c->bounces.url);
    free(c->bounces.username);
    free(c->bounces.password_env);
    free(c->bounces.password_file);
    free(c->bounces.password_cmd);
    free(c->bounces.ca_file);
    free(c->bounces.folder);
    free(c->limits.shared);
    free(c->limits.password_env);
    free(c->limits.password_file);
    free(c->return_path.address);
    free(c->return_path.secret_env);
    free(c->return_path.secret_file);
    free(c->timezone);
    free(c->window.zone_column);
    free(c->warmup.schedule.daily);
    free(c->warmup.store);
    for (size_t w = 0; w < c->warmup.nproviders; w++) {
        free(c->warmup.providers[w].name);
        free(c->warmup.providers[w].schedule.daily);
    }
    free(c->warmup.providers);
    for (size_t s = 0; s < c->seeds.n; s++)
        free(c->seeds.addresses[s]);
    free(c->seeds.addresses);
    free(c->seeds.places);
    free(c->reply_to);
    free(c->subject);
    free(c->helo);
    free(c->recipients.path);
    free(c->recipients.email_column);
    free(c->recipients.name_column);
    free(c->body.text);
    free(c->body.html);
    free(c->report);
    free(c->journal);
    free(c);
}

const struct campaign_value *campaign_var(const struct campaign *c, const char *dotted)
{
    const struct campaign_value *v = &c->vars;
    const char *p = dotted;

    while (v != NULL && *p != '\0') {
        size_t n = strcspn(p, "."), i;
        const struct campaign_value *next = NULL;

        if (v->kind != CAMPAIGN_VALUE_MAP)
            return NULL;
        for (i = 0; i < v->n; i++)
            if (strlen(v->keys[i]) == n && strncmp(v->keys[i], p, n) == 0) {
                next = &v->items[i];
                break;
            }
        v = next;
        p += n;
        if (*p == '.')
            p++;
    }
    return v == &c->vars ? NULL : v;
}

const char *campaign_dkim_alg_name(enum campaign_dkim_alg alg)
{
    return alg >= CAMPAIGN_DKIM_RSA_SHA256 && alg <= CAMPAIGN_DKIM_ED25519_SHA256
               ? dkim_alg_names[alg]
               : "?";
}

const struct warmup_schedule *campaign_warmup_ramp(const struct campaign *c, const char *provider)
{
    for (size_t i = 0; i < c->warmup.nproviders; i++)
        if (strcmp(c->warmup.providers[i].name, provider) == 0)
            return c->warmup.providers[i].off ? NULL : &c->warmup.providers[i].schedule;
    return &c->warmup.schedule;
}
