/*
 * fuzz_template - the Mustache engine: compile with partials, visit, render.
 *
 * Input: one flags byte, then the template, then after a NUL byte the partial
 * "p", then after another NUL byte the partial "q" (each may include the others,
 * or itself). Flags: bits 0-1 the mode (text, html, url), bit 2 a missing partial
 * is an error. The data is a small fixed JSON document: strings that need escaping,
 * lists, a nested map, true, false and null.
 *
 * One lib compiles the template, then "{{> p}}" (a partial is reused from the
 * cache, or compiled again after it failed), then the template in the next mode.
 * Checks on every template that compiles: template_visit hands out names with
 * their parts, places and sections; template_render ends (0, or BLAST_EINVAL
 * for nesting), and renders the same twice.
 */
#include "../../core/buf.h"
#include "../../core/template.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *doc;

static const char doc_text[] =
    "{\"name\": \"Ada <&> \\\"'\", \"u\": \"Jos\\u00e9 \\u20ac\", \"empty\": \"\", \"num\": \"42\","
    " \"t\": true, \"f\": false, \"n\": null, \"map\": {\"a\": {\"b\": \"c d\"}},"
    " \"list\": [{\"x\": \"1\"}, {\"x\": \"2<\", \"list\": []}], \"words\": [\"a\", \"b/c\"]}";

static enum template_kind j_kind(void *ctx, struct template_value v)
{
    const json_t *j = v.p;

    (void)ctx;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return TEMPLATE_MAP;
    case JSON_ARRAY:
        return TEMPLATE_LIST;
    case JSON_TRUE:
        return TEMPLATE_TRUE;
    case JSON_FALSE:
        return TEMPLATE_FALSE;
    case JSON_NULL:
        return TEMPLATE_NULL;
    default:
        return TEMPLATE_SCALAR;
    }
}

static bool j_get(void *ctx, struct template_value map, const char *key, struct template_value *out)
{
    json_t *v = json_object_get(map.p, key);

    (void)ctx;
    if (v == NULL)
        return false;
    out->p = v;
    out->tag = 0;
    return true;
}

static void j_text(void *ctx, struct template_value v, const char **s, size_t *len)
{
    const json_t *j = v.p;

    (void)ctx;
    if (json_is_string(j)) {
        *s = json_string_value(j);
        *len = json_string_length(j);
    } else {
        *s = json_is_true(j) ? "true" : "";
        *len = strlen(*s);
    }
}

static size_t j_count(void *ctx, struct template_value list)
{
    (void)ctx;
    return json_array_size(list.p);
}

static struct template_value j_item(void *ctx, struct template_value list, size_t i)
{
    struct template_value v = {json_array_get(list.p, i), 0};

    (void)ctx;
    if (v.p == NULL)
        fuzz_fail("item %zu of a list of %zu", i, json_array_size(list.p));
    return v;
}

static const struct template_data data_ops = {NULL, j_kind, j_get, j_text, j_count, j_item};

/* The partials of one input: "p" and "q". */
struct parts {
    const char *p, *q;
    size_t plen, qlen;
};

static int find(void *arg, const char *name, const char *source, enum template_mode mode,
                char **text, size_t *len, char **path, struct blast_error *err)
{
    const struct parts *ps = arg;
    const char *t;
    size_t n;

    (void)source;
    (void)mode;
    (void)err;
    if (strcmp(name, "p") == 0) {
        t = ps->p;
        n = ps->plen;
    } else if (strcmp(name, "q") == 0) {
        t = ps->q;
        n = ps->qlen;
    } else {
        return 0;
    }
    if (t == NULL)
        return 0;
    *text = malloc(n + 1);
    *path = strdup(name);
    if (*text == NULL || *path == NULL) {
        free(*text);
        free(*path);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    memcpy(*text, t, n);
    (*text)[n] = '\0';
    *len = n;
    return 1;
}

static void visited(void *arg, const struct template_use *use,
                    const struct template_use *const *sections, size_t nsections)
{
    size_t i;

    (void)arg;
    if (use->name == NULL || use->source == NULL)
        fuzz_fail("a use without its name or source");
    if ((strcmp(use->name, ".") == 0) != (use->nparts == 0))
        fuzz_fail("'%s' has %zu parts", use->name, use->nparts);
    for (i = 0; i < use->nparts; i++)
        if (use->parts[i] == NULL || use->parts[i][0] == '\0' || strchr(use->parts[i], '.'))
            fuzz_fail("'%s': part %zu is not a name", use->name, i);
    if (use->line < 1 || use->column < 1)
        fuzz_fail("'%s' at %d:%d", use->name, use->line, use->column);
    if (nsections > 100)
        fuzz_fail("%zu sections around '%s'", nsections, use->name);
    for (i = 0; i < nsections; i++)
        if (sections[i] == NULL || sections[i]->kind == TEMPLATE_USE_VARIABLE)
            fuzz_fail("section %zu around '%s' is not a section", i, use->name);
}

static void exercise(const struct template *t)
{
    struct template_value root = {doc, 0};
    struct buf a = BUF_INIT, b = BUF_INIT;
    int ra, rb;

    if (template_visit(t, visited, NULL) < 0)
        return;
    ra = template_render(t, &data_ops, root, &a);
    rb = template_render(t, &data_ops, root, &b);
    if (ra != 0 && ra != BLAST_EINVAL && ra != BLAST_ENOMEM)
        fuzz_fail("template_render returned %d", ra);
    if (ra != rb || (ra == 0 && (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len)))))
        fuzz_fail("two renderings differ");
    buf_free(&a);
    buf_free(&b);
}

static void compile(struct template_lib *lib, const char *text, size_t len, enum template_mode mode)
{
    const struct template *t = NULL;
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = template_compile(lib, text, len, "t", 1, 1, mode, &t, &err);
    if (rc == 0 && t == NULL)
        fuzz_fail("compiled without a template");
    if (rc < 0 && (t != NULL || err.code == 0))
        fuzz_fail("failed (%d) with a template or without an error", rc);
    if (rc == 0)
        exercise(t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_error_t e;

    (void)argc;
    (void)argv;
    doc = json_loads(doc_text, 0, &e);
    if (doc == NULL)
        fuzz_fail("the harness's JSON: %s", e.text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct template_partials tp;
    struct template_lib *lib;
    struct parts ps;
    const char *s = (const char *)data + 1, *end = (const char *)data + size, *z;
    enum template_mode mode;
    size_t len;

    if (size < 1)
        return 0;
    mode = (enum template_mode)((data[0] & 3) % 3);
    memset(&ps, 0, sizeof ps);
    z = memchr(s, '\0', (size_t)(end - s));
    len = z != NULL ? (size_t)(z - s) : (size_t)(end - s);
    if (z != NULL) {
        ps.p = z + 1;
        z = memchr(ps.p, '\0', (size_t)(end - ps.p));
        ps.plen = z != NULL ? (size_t)(z - ps.p) : (size_t)(end - ps.p);
        if (z != NULL) {
            ps.q = z + 1;
            ps.qlen = (size_t)(end - ps.q);
        }
    }
    tp.find = find;
    tp.arg = &ps;
    tp.missing_is_error = (data[0] & 4) != 0;
    tp.hint = NULL;
    lib = template_lib_new(&tp);
    if (lib == NULL)
        return 0;
    compile(lib, s, len, mode);
    compile(lib, "{{> p}}", 7, mode);
    compile(lib, s, len, (enum template_mode)((mode + 1) % 3));
    template_lib_free(lib);
    return 0;
}
