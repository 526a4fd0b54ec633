/*
 * campaign - load and validate the campaign file (DESIGN.md §5).
 *
 * Two steps. First libyaml's event stream is turned into a small tree of nodes
 * that keep their line and column (campaign files are a few dozen lines, so a tree
 * costs nothing and lets every later error point at the exact value). Then the
 * tree is walked against the known keys: types are checked, defaults applied,
 * paths resolved, and the first problem becomes the error, with its place.
 *
 * Anchors and aliases are followed by sharing the node (no copies, so a "billion
 * laughs" document stays small). Merge keys ("<<") are not part of the contract.
 */
#include "campaign.h"
#include "address.h"
#include "text.h"

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
    char *value;      /* scalar text, NUL-terminated */
    size_t len;
    bool plain;           /* an unquoted scalar: may be null, a number, a boolean */
    struct ynode **items; /* map: key, value, key, value...; seq: elements */
    size_t nitems, capitems;
};

struct ydoc {
    struct ynode *root;
    struct ynode **all; /* every node, for freeing: aliases share nodes */
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
    d->all[d->nall++] = n;
    return n;
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
    if (p->context != NULL)
        return blast_error_set(err, BLAST_ESYNTAX, path, (int)p->problem_mark.line + 1,
                               (int)p->problem_mark.column + 1, "YAML syntax error: %s %s",
                               p->problem, p->context);
    return blast_error_set(err, BLAST_ESYNTAX, path, (int)p->problem_mark.line + 1,
                           (int)p->problem_mark.column + 1, "YAML syntax error: %s",
                           p->problem != NULL ? p->problem : "unknown problem");
}

/* Build the node tree of the only document in file. */
static int ydoc_load(FILE *file, const char *path, struct ydoc *d, struct blast_error *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct ynode *stack[YDOC_MAX_DEPTH];
    size_t depth = 0;
    int docs = 0, rc = 0, done = 0;

    memset(d, 0, sizeof *d);
    if (!yaml_parser_initialize(&parser))
        return blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    yaml_parser_set_input_file(&parser, file);

    while (!done) {
        struct ynode *node = NULL;

        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_syntax_error(path, &parser, err);
            goto out;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                rc = blast_error_set(err, BLAST_ESYNTAX, path, (int)ev.start_mark.line + 1,
                                     (int)ev.start_mark.column + 1,
                                     "a campaign file holds one YAML document, found a second");
            }
            break;
        case YAML_SCALAR_EVENT:
            node = ydoc_new_node(d, YNODE_SCALAR, ev.start_mark);
            if (node == NULL)
                break;
            node->value = malloc(ev.data.scalar.length + 1);
            if (node->value == NULL) {
                node = NULL;
                break;
            }
            memcpy(node->value, ev.data.scalar.value, ev.data.scalar.length);
            node->value[ev.data.scalar.length] = '\0';
            node->len = ev.data.scalar.length;
            node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (ydoc_anchor(d, ev.data.scalar.anchor, node) < 0)
                node = NULL;
            break;
        case YAML_ALIAS_EVENT:
            node = ydoc_find_anchor(d, ev.data.alias.anchor);
            if (node == NULL) {
                rc = blast_error_set(err, BLAST_ESYNTAX, path, (int)ev.start_mark.line + 1,
                                     (int)ev.start_mark.column + 1, "unknown alias '*%s'",
                                     (const char *)ev.data.alias.anchor);
            }
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            node = ydoc_new_node(d, ev.type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ,
                                 ev.start_mark);
            if (node != NULL &&
                ydoc_anchor(d,
                            ev.type == YAML_MAPPING_START_EVENT ? ev.data.mapping_start.anchor
                                                                : ev.data.sequence_start.anchor,
                            node) < 0)
                node = NULL;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (rc == 0 && node == NULL &&
            (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_MAPPING_START_EVENT ||
             ev.type == YAML_SEQUENCE_START_EVENT))
            rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        if (rc == 0 && node != NULL) {
            if (depth == 0)
                d->root = node;
            else if (ynode_push(stack[depth - 1], node) < 0)
                rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
            if (rc == 0 &&
                (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)) {
                if (depth == YDOC_MAX_DEPTH)
                    rc = blast_error_set(err, BLAST_ESYNTAX, path, node->line, node->column,
                                         "nested deeper than %d levels", YDOC_MAX_DEPTH);
                else
                    stack[depth++] = node;
            }
        }
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

/* Keys of the contract that this version recognises but does not act on yet. */
struct keyset {
    const char *const *known;
    const char *const *later;
};

static bool in_list(const char *const *list, const char *key)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

static const char *nearest(const struct keyset *ks, const char *key)
{
    const char *a = text_nearest(key, ks->known), *b = text_nearest(key, ks->later);

    if (a == NULL || b == NULL)
        return a != NULL ? a : b;
    return text_edit_distance(key, a) <= text_edit_distance(key, b) ? a : b;
}

/*
 * Check that map is a mapping with scalar, unique, known keys. where names the
 * mapping in messages ("the campaign", "relay 'primary'").
 */
static int check_map(struct loader *L, const struct ynode *map, const struct keyset *ks,
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
        if (in_list(ks->known, k->value))
            continue;
        if (in_list(ks->later, k->value))
            return fail(L, k,
                        "'%s' is part of the campaign format but not supported by this "
                        "version of blast",
                        k->value);
        near = nearest(ks, k->value);
        if (near != NULL)
            return fail(L, k, "unknown key '%s' in %s (did you mean '%s'?)", k->value, where, near);
        return fail(L, k, "unknown key '%s' in %s", k->value, where);
    }
    return 0;
}

static const struct ynode *map_get(const struct ynode *map, const char *key)
{
    size_t i;

    for (i = 0; i + 1 < map->nitems; i += 2)
        if (strcmp(map->items[i]->value, key) == 0)
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

static bool is_loopback_host(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

/* ---- the campaign ------------------------------------------------------------------ */

static const char *const top_known[] = {"name",    "from",       "envelope_from", "reply_to",
                                        "subject", "recipients", "body",          "relays",
                                        "report",  NULL};
static const char *const top_later[] = {
    "suppression", "attachments", "inline",       "headers", "list_unsubscribe",
    "dkim",        "rate",        "domain_rates", "retry",   "journal",
    "vars",        NULL};
static const char *const recipients_known[] = {"path", "email_column", "name_column", "delimiter",
                                               NULL};
static const char *const body_known[] = {"text", "html", NULL};
static const char *const relay_known[] = {
    "name",    "host",     "port",         "tls",  "verify",
    "ca_file", "username", "password_env", "auth", "allow_plaintext",
    NULL};
static const char *const relay_later[] = {"connections",   "messages_per_connection",
                                          "rate",          "timeouts",
                                          "password_file", "password_cmd",
                                          "weight",        NULL};

static int load_recipients(struct loader *L, const struct ynode *root)
{
    static const struct keyset ks = {recipients_known, NULL};
    const struct ynode *m = map_get(root, "recipients");
    struct campaign *c = L->c;
    char *delim = NULL;
    struct campaign_place dplace = {0, 0};
    int rc;

    if (m == NULL || is_null(m))
        return fail(L, root, "missing required key 'recipients' in the campaign");
    if ((rc = check_map(L, m, &ks, "'recipients'")) < 0)
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
    if (c->recipients.email_column == NULL) {
        c->recipients.email_column = strdup("email");
        if (c->recipients.email_column == NULL)
            return blast_error_set(L->err, BLAST_ENOMEM, L->path, 0, 0, "out of memory");
    }
    return 0;
}

static int load_body(struct loader *L, const struct ynode *root)
{
    static const struct keyset ks = {body_known, NULL};
    const struct ynode *m = map_get(root, "body");
    struct campaign *c = L->c;
    int rc;

    if (m == NULL || is_null(m))
        return fail(L, root, "missing required key 'body' in the campaign");
    if ((rc = check_map(L, m, &ks, "'body'")) < 0)
        return rc;
    if ((rc = get_path(L, m, "text", false, "'body'", &c->body.text, &c->body.text_place)) < 0 ||
        (rc = get_path(L, m, "html", false, "'body'", &c->body.html, &c->body.html_place)) < 0)
        return rc;
    if (c->body.text == NULL && c->body.html == NULL)
        return fail(L, m, "'body' needs at least one of 'text' and 'html'");
    return 0;
}

static int parse_enum(struct loader *L, const struct ynode *map, const char *key,
                      const char *const *names, int *out)
{
    const struct ynode *v = map_get(map, key);
    int i;

    if (v == NULL || is_null(v))
        return 0;
    if (v->kind == YNODE_SCALAR)
        for (i = 0; names[i] != NULL; i++)
            if (strcmp(v->value, names[i]) == 0) {
                *out = i;
                return 0;
            }
    {
        char list[256] = "";
        size_t used = 0;
        for (i = 0; names[i] != NULL; i++)
            used +=
                (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        return fail(L, v, "'%s' must be one of %s", key, list);
    }
}

static const char *const tls_names[] = {"starttls", "tls", "none", NULL};
static const char *const auth_names[] = {"auto", "plain", "login", "cram-md5", "xoauth2", NULL};

static int load_relay(struct loader *L, const struct ynode *m, size_t index,
                      struct campaign_relay *r)
{
    static const struct keyset ks = {relay_known, relay_later};
    char where[64];
    bool has_port = false, allow_plain = false;
    int tls = CAMPAIGN_TLS_STARTTLS, auth = CAMPAIGN_AUTH_AUTO, rc;
    const struct ynode *v;

    snprintf(where, sizeof where, "relay %zu", index + 1);
    r->place = place_of(m);
    r->password_place = r->place;
    r->verify = true;
    if ((rc = check_map(L, m, &ks, where)) < 0)
        return rc;
    if ((rc = get_string(L, m, "host", true, where, &r->host, NULL)) < 0 ||
        (rc = get_string(L, m, "name", false, where, &r->name, NULL)) < 0 ||
        (rc = get_int(L, m, "port", 1, 65535, &r->port, &has_port)) < 0 ||
        (rc = parse_enum(L, m, "tls", tls_names, &tls)) < 0 ||
        (rc = get_bool(L, m, "verify", &r->verify)) < 0 ||
        (rc = get_path(L, m, "ca_file", false, where, &r->ca_file, NULL)) < 0 ||
        (rc = get_string(L, m, "username", false, where, &r->username, NULL)) < 0 ||
        (rc = get_string(L, m, "password_env", false, where, &r->password_env,
                         &r->password_place)) < 0 ||
        (rc = parse_enum(L, m, "auth", auth_names, &auth)) < 0 ||
        (rc = get_bool(L, m, "allow_plaintext", &allow_plain)) < 0)
        return rc;
    r->tls = (enum campaign_tls)tls;
    r->auth = (enum campaign_auth)auth;
    if (!has_port)
        r->port = r->tls == CAMPAIGN_TLS_IMPLICIT ? 465 : r->tls == CAMPAIGN_TLS_NONE ? 25 : 587;
    if (r->name == NULL && (r->name = strdup(r->host)) == NULL)
        return blast_error_set(L->err, BLAST_ENOMEM, L->path, 0, 0, "out of memory");
    if (r->username != NULL && r->password_env == NULL)
        return fail(L, m, "relay '%s' has a username but no 'password_env'", r->name);
    if (r->password_env != NULL && r->username == NULL)
        return fail(L, map_get(m, "password_env"), "relay '%s' has a password but no 'username'",
                    r->name);
    /* DESIGN.md §3: never plaintext (and so never AUTH in the clear) to a remote host
     * unless the campaign says so. */
    if (r->tls == CAMPAIGN_TLS_NONE && !allow_plain && !is_loopback_host(r->host)) {
        v = map_get(m, "tls");
        return fail(L, v,
                    "relay '%s': 'tls: none' sends mail and passwords in the clear; it is "
                    "only allowed to a loopback host unless 'allow_plaintext: true'",
                    r->name);
    }
    return 0;
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
        return blast_error_set(L->err, BLAST_ENOMEM, L->path, 0, 0, "out of memory");
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
    static const struct keyset ks = {top_known, top_later};
    struct campaign *c = L->c;
    int rc;

    if ((rc = check_map(L, root, &ks, "the campaign")) < 0)
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
        (rc = get_string(L, root, "subject", true, "the campaign", &c->subject,
                         &c->subject_place)) < 0 ||
        (rc = load_recipients(L, root)) < 0 || (rc = load_body(L, root)) < 0 ||
        (rc = load_relays(L, root)) < 0 ||
        (rc = get_path(L, root, "report", false, "the campaign", &c->report, NULL)) < 0)
        return rc;
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

void campaign_free(struct campaign *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nrelays; i++) {
        struct campaign_relay *r = &c->relays[i];
        free(r->name);
        free(r->host);
        free(r->ca_file);
        free(r->username);
        free(r->password_env);
    }
    free(c->relays);
    free(c->path);
    free(c->dir);
    free(c->name);
    free(c->from);
    free(c->envelope_from);
    free(c->reply_to);
    free(c->subject);
    free(c->recipients.path);
    free(c->recipients.email_column);
    free(c->recipients.name_column);
    free(c->body.text);
    free(c->body.html);
    free(c->report);
    free(c);
}

int campaign_relay_password(const struct campaign *c, const struct campaign_relay *r, char **out,
                            struct blast_error *err)
{
    const char *v;

    *out = NULL;
    if (r->username == NULL)
        return 0;
    v = getenv(r->password_env);
    if (v == NULL || v[0] == '\0')
        return blast_error_set(err, BLAST_EINVAL, c->path, r->password_place.line,
                               r->password_place.column,
                               "relay '%s': environment variable %s is %s", r->name,
                               r->password_env, v == NULL ? "not set" : "empty");
    *out = strdup(v);
    if (*out == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return 0;
}

const char *campaign_tls_name(enum campaign_tls tls)
{
    return tls >= CAMPAIGN_TLS_STARTTLS && tls <= CAMPAIGN_TLS_NONE ? tls_names[tls] : "?";
}

const char *campaign_auth_name(enum campaign_auth auth)
{
    return auth >= CAMPAIGN_AUTH_AUTO && auth <= CAMPAIGN_AUTH_XOAUTH2 ? auth_names[auth] : "?";
}
