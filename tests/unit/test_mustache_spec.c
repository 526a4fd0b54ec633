/*
 * test_mustache_spec - the Mustache specification's own tests, kept unchanged
 * with their licence in tests/fixtures/mustache/: every test of every file must
 * render exactly as the specification says. The data of each test
 * is JSON, described to the engine through a template_data over jansson values;
 * templates render in HTML mode, as the specification assumes ({{x}} escaped).
 */
#include "../../core/template.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC "../fixtures/mustache"

static enum template_kind json_kind(void *ctx, struct template_value v)
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

static bool json_get(void *ctx, struct template_value map, const char *key,
                     struct template_value *out)
{
    json_t *v = json_object_get(map.p, key);

    (void)ctx;
    if (v == NULL)
        return false;
    out->p = v;
    out->tag = 0;
    return true;
}

/* Numbers as JSON writes them: integers plainly, reals in their shortest form. */
static char numbuf[64];

static void json_text(void *ctx, struct template_value v, const char **s, size_t *len)
{
    const json_t *j = v.p;

    (void)ctx;
    if (json_is_string(j)) {
        *s = json_string_value(j);
        *len = json_string_length(j);
        return;
    }
    if (json_is_integer(j))
        snprintf(numbuf, sizeof numbuf, "%lld", (long long)json_integer_value(j));
    else if (json_is_real(j))
        snprintf(numbuf, sizeof numbuf, "%.15g", json_real_value(j));
    else
        snprintf(numbuf, sizeof numbuf, "%s", json_is_true(j) ? "true" : "false");
    *s = numbuf;
    *len = strlen(numbuf);
}

static size_t json_count(void *ctx, struct template_value list)
{
    (void)ctx;
    return json_array_size(list.p);
}

static struct template_value json_item(void *ctx, struct template_value list, size_t i)
{
    struct template_value v = {json_array_get(list.p, i), 0};

    (void)ctx;
    return v;
}

/* Partials come from the test's "partials" object. */
static int find_partial(void *arg, const char *name, const char *source, enum template_mode mode,
                        char **text, size_t *len, char **path, struct blast_error *err)
{
    json_t *p = json_object_get(arg, name);

    (void)source;
    (void)mode;
    (void)err;
    if (p == NULL || !json_is_string(p))
        return 0;
    *len = json_string_length(p);
    *text = strndup(json_string_value(p), *len);
    *path = strdup(name);
    return *text != NULL && *path != NULL ? 1 : BLAST_ENOMEM;
}

/* Run one spec file; returns the number of failures and counts the tests. */
static int run_file(const char *file, int *total)
{
    static const struct template_data data = {NULL,      json_kind,  json_get,
                                              json_text, json_count, json_item};
    char path[256];
    json_error_t jerr;
    json_t *doc, *tests, *test;
    size_t i;
    int failures = 0;

    snprintf(path, sizeof path, SPEC "/%s", file);
    doc = json_load_file(path, 0, &jerr);
    cr_assert_not_null(doc, "%s: %s", path, jerr.text);
    tests = json_object_get(doc, "tests");
    json_array_foreach(tests, i, test)
    {
        json_t *partials = json_object_get(test, "partials");
        struct template_partials tp = {find_partial, partials, false, NULL};
        struct template_lib *lib = template_lib_new(partials != NULL ? &tp : NULL);
        const char *tpl = json_string_value(json_object_get(test, "template"));
        const char *want = json_string_value(json_object_get(test, "expected"));
        const char *name = json_string_value(json_object_get(test, "name"));
        const struct template *t = NULL;
        struct template_value root = {json_object_get(test, "data"), 0};
        struct blast_error err;
        struct buf out = BUF_INIT;
        int rc;

        (*total)++;
        blast_error_clear(&err);
        rc = template_compile(lib, tpl, strlen(tpl), name, 1, 1, TEMPLATE_HTML, &t, &err);
        if (rc == 0)
            rc = template_render(t, &data, root, &out);
        if (rc < 0 || strcmp(out.data != NULL ? out.data : "", want) != 0) {
            failures++;
            cr_log_error("%s: %s: got '%s' (rc %d: %s), expected '%s'", file, name,
                         out.data != NULL ? out.data : "", rc, err.text, want);
        }
        buf_free(&out);
        template_lib_free(lib);
    }
    json_decref(doc);
    return failures;
}

Test(mustache_spec, every_test_of_every_file_passes)
{
    static const char *const files[] = {"comments.json", "delimiters.json", "interpolation.json",
                                        "inverted.json", "partials.json",   "sections.json"};
    int total = 0, failures = 0;
    size_t i;

    for (i = 0; i < sizeof files / sizeof files[0]; i++)
        failures += run_file(files[i], &total);
    cr_log_info("mustache spec: %d of %d tests pass", total - failures, total);
    fprintf(stderr, "mustache spec: %d of %d tests pass\n", total - failures, total);
    cr_assert_eq(failures, 0, "%d of %d spec tests fail", failures, total);
    cr_assert_geq(total, 136);
}
