/*
 * test_template - what blast's Mustache engine adds to the specification (whose
 * own tests are in test_mustache_spec.c): the escaping of {{x}} per mode (HTML,
 * URL, text) and the raw forms in every mode; the places (line:column, counted in
 * characters) of syntax errors and of a missing partial; partials compiled once
 * per name and indentation and shared through their lib; the nesting limit that
 * stops a partial including itself forever; and template_visit, which lists the
 * names a template uses with the sections around them and their places.
 *
 * Data is JSON (jansson) described through a struct template_data; partials come
 * from a table in the test, with a count of how often the lib asked for each.
 */
#include "../../core/template.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON data ------------------------------------------------------------------------ */

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

static void json_text(void *ctx, struct template_value v, const char **s, size_t *len)
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

static const struct template_data json_data = {NULL,      json_kind,  json_get,
                                               json_text, json_count, json_item};

/* The default data of these tests. */
static const char default_json[] = "{\"first_name\": \"Ada\", \"city\": \"London\","
                                   " \"html\": \"<b>\\\"Tom\\\" & 'Jerry'</b>\","
                                   " \"url\": \"a b&c=d/e?f#g%h+i\","
                                   " \"utf8\": \"Jos\\u00e9 \\u20ac\","
                                   " \"safe\": \"AZaz09-._~\","
                                   " \"items\": [{\"name\": \"x<\"}, {\"name\": \"y&\"}]}";

/* ---- endless data: every name resolves to another map, forever ------------------------- */

static enum template_kind endless_kind(void *ctx, struct template_value v)
{
    (void)ctx;
    (void)v;
    return TEMPLATE_MAP;
}

static bool endless_get(void *ctx, struct template_value map, const char *key,
                        struct template_value *out)
{
    (void)ctx;
    (void)key;
    out->p = map.p;
    out->tag = map.tag + 1;
    return true;
}

static void endless_text(void *ctx, struct template_value v, const char **s, size_t *len)
{
    (void)ctx;
    (void)v;
    *s = "";
    *len = 0;
}

static size_t endless_count(void *ctx, struct template_value list)
{
    (void)ctx;
    (void)list;
    return 0;
}

static struct template_value endless_item(void *ctx, struct template_value list, size_t i)
{
    (void)ctx;
    (void)i;
    return list;
}

static const struct template_data endless_data = {NULL,         endless_kind,  endless_get,
                                                  endless_text, endless_count, endless_item};

/* ---- partials from a table ------------------------------------------------------------ */

struct partial {
    const char *name, *text;
};

#define MAX_FINDS 32

struct finder {
    const struct partial *table; /* ends with a NULL name */
    int finds;                   /* calls of find */
    char names[MAX_FINDS][64];   /* the name asked for in each call */
    char sources[MAX_FINDS][64]; /* the including template's source in each call */
    enum template_mode modes[MAX_FINDS];
    int fail_with; /* when not 0: find fails with this code */
};

static int find_partial(void *arg, const char *name, const char *source, enum template_mode mode,
                        char **text, size_t *len, char **path, struct blast_error *err)
{
    struct finder *f = arg;
    const struct partial *p;

    if (f->finds < MAX_FINDS) {
        snprintf(f->names[f->finds], sizeof f->names[0], "%s", name);
        snprintf(f->sources[f->finds], sizeof f->sources[0], "%s", source);
        f->modes[f->finds] = mode;
    }
    f->finds++;
    if (f->fail_with != 0)
        return blast_error_set(err, f->fail_with, "partials.db", 7, 0, "cannot read '%s'", name);
    for (p = f->table; p->name != NULL; p++)
        if (strcmp(p->name, name) == 0) {
            char where[128];
            snprintf(where, sizeof where, "partials/%s.mustache", name);
            *len = strlen(p->text);
            *text = strdup(p->text);
            *path = strdup(where);
            cr_assert_not_null(*text);
            cr_assert_not_null(*path);
            return 1;
        }
    return 0;
}

static const struct partial no_partials[] = {{NULL, NULL}};

/* A lib whose partials come from table; missing ones are errors with this hint. */
static struct template_lib *lib_with(struct finder *f, const struct partial *table,
                                     bool missing_is_error, const char *hint)
{
    struct template_partials tp;
    struct template_lib *lib;

    memset(f, 0, sizeof *f);
    f->table = table;
    tp.find = find_partial;
    tp.arg = f;
    tp.missing_is_error = missing_is_error;
    tp.hint = hint;
    lib = template_lib_new(&tp);
    cr_assert_not_null(lib);
    return lib;
}

/* ---- helpers -------------------------------------------------------------------------- */

static const struct template *compile_in(struct template_lib *lib, const char *text,
                                         enum template_mode mode)
{
    const struct template *t = NULL;
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = template_compile(lib, text, strlen(text), "t.txt", 1, 1, mode, &t, &err);
    cr_assert_eq(rc, 0, "'%s': %s", text, blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(t);
    return t;
}

/* Render t with the JSON document json into out (made a C string; the caller frees it). */
static int render_json(const struct template *t, const char *json, struct buf *out)
{
    json_error_t jerr;
    json_t *doc = json_loads(json, 0, &jerr);
    struct template_value root;
    int rc;

    cr_assert_not_null(doc, "bad test JSON: %s", jerr.text);
    root.p = doc;
    root.tag = 0;
    buf_init(out);
    rc = template_render(t, &json_data, root, out);
    if (out->data == NULL)
        buf_puts(out, "");
    json_decref(doc);
    return rc;
}

/* Compile text in a lib of its own (no partials), render it with json and compare. */
static void expect_render_json(const char *text, enum template_mode mode, const char *json,
                               const char *want)
{
    struct template_lib *lib = template_lib_new(NULL);
    struct buf out;

    cr_assert_not_null(lib);
    cr_assert_eq(render_json(compile_in(lib, text, mode), json, &out), 0);
    cr_assert_str_eq(out.data, want, "rendering '%s' in mode %d", text, (int)mode);
    buf_free(&out);
    template_lib_free(lib);
}

static void expect_render(const char *text, enum template_mode mode, const char *want)
{
    expect_render_json(text, mode, default_json, want);
}

/* Compile text in lib, which must fail with code at line:column; the message holds fragment. */
static void expect_error_in(struct template_lib *lib, const char *text, int code, int line,
                            int column, const char *fragment)
{
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = template_compile(lib, text, strlen(text), "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err);
    blast_error_format(&err, msg, sizeof msg);
    cr_assert_eq(rc, code, "'%s': rc %d, expected %d (%s)", text, rc, code, msg);
    cr_assert_eq(err.code, code);
    cr_assert_null(t, "no template after a failure");
    cr_assert_str_eq(err.source, "t.txt", "'%s': %s", text, msg);
    cr_assert_eq(err.line, line, "'%s': %s", text, msg);
    cr_assert_eq(err.column, column, "'%s': %s", text, msg);
    if (fragment != NULL)
        cr_assert_not_null(strstr(err.text, fragment), "'%s' not in '%s'", fragment, err.text);
}

static void expect_error(const char *text, int line, int column, const char *fragment)
{
    struct template_lib *lib = template_lib_new(NULL);

    cr_assert_not_null(lib);
    expect_error_in(lib, text, BLAST_ESYNTAX, line, column, fragment);
    template_lib_free(lib);
}

/* ---- escaping per mode ------------------------------------------------------------------ */

Test(template, html_mode_escapes_the_five_characters)
{
    expect_render("<p>{{html}}</p>", TEMPLATE_HTML,
                  "<p>&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>");
    expect_render("{{utf8}} {{safe}} {{url}}", TEMPLATE_HTML,
                  "Jos\xc3\xa9 \xe2\x82\xac AZaz09-._~ a b&amp;c=d/e?f#g%h+i");
}

Test(template, url_mode_percent_encodes_all_but_unreserved_characters)
{
    /* RFC 3986 §2.3: ALPHA DIGIT - . _ ~ stay; every other byte is %XX, upper-case */
    expect_render("{{safe}}", TEMPLATE_URL, "AZaz09-._~");
    expect_render("{{url}}", TEMPLATE_URL, "a%20b%26c%3dd%2fe%3ff%23g%25h%2bi");
    expect_render("{{html}}", TEMPLATE_URL, "%3cb%3e%22Tom%22%20%26%20%27Jerry%27%3c%2fb%3e");
    expect_render_json("{{v}}", TEMPLATE_URL, "{\"v\": \":@!$()*,;[]\"}",
                       "%3a%40%21%24%28%29%2a%2c%3b%5b%5d");
}

Test(template, url_mode_encodes_each_utf8_byte)
{
    /* é is C3 A9, € is E2 82 AC */
    expect_render("{{utf8}}", TEMPLATE_URL, "Jos%c3%a9%20%e2%82%ac");
    expect_render_json("{{v}}", TEMPLATE_URL, "{\"v\": \"\\u65e5\\u672c\"}", "%e6%97%a5%e6%9c%ac");
}

Test(template, url_mode_leaves_the_literal_url_alone)
{
    expect_render("https://acme.example/u?e={{url}}&n={{first_name}}#top", TEMPLATE_URL,
                  "https://acme.example/u?e=a%20b%26c%3dd%2fe%3ff%23g%25h%2bi&n=Ada#top");
}

Test(template, text_mode_never_escapes)
{
    expect_render("{{html}}|{{url}}|{{utf8}}", TEMPLATE_TEXT,
                  "<b>\"Tom\" & 'Jerry'</b>|a b&c=d/e?f#g%h+i|Jos\xc3\xa9 \xe2\x82\xac");
}

Test(template, triple_braces_and_ampersand_are_raw_in_every_mode)
{
    static const enum template_mode modes[] = {TEMPLATE_TEXT, TEMPLATE_HTML, TEMPLATE_URL};
    size_t i;

    for (i = 0; i < 3; i++) {
        expect_render("{{{html}}}", modes[i], "<b>\"Tom\" & 'Jerry'</b>");
        expect_render("{{{ url }}}", modes[i], "a b&c=d/e?f#g%h+i");
        expect_render("{{&utf8}}", modes[i], "Jos\xc3\xa9 \xe2\x82\xac");
        expect_render("{{& html}}", modes[i], "<b>\"Tom\" & 'Jerry'</b>");
    }
}

Test(template, escaping_applies_inside_sections_and_to_the_implicit_iterator)
{
    expect_render("{{#items}}[{{name}}|{{{name}}}]{{/items}}", TEMPLATE_HTML,
                  "[x&lt;|x<][y&amp;|y&]");
    expect_render("{{#items}}{{name}},{{/items}}", TEMPLATE_URL, "x%3c,y%26,");
    expect_render_json("{{#list}}{{.}};{{/list}}", TEMPLATE_URL, "{\"list\": [\"a b\", \"c/d\"]}",
                       "a%20b;c%2fd;");
}

Test(template, literal_text_is_never_escaped)
{
    expect_render("<a href=\"x?a=1&b=2\">{{first_name}}</a>", TEMPLATE_HTML,
                  "<a href=\"x?a=1&b=2\">Ada</a>");
}

Test(template, missing_names_render_nothing_in_every_mode)
{
    expect_render("[{{nobody}}][{{{nobody}}}][{{& nobody}}][{{a.b.c}}]", TEMPLATE_HTML, "[][][][]");
    expect_render("[{{nobody}}]", TEMPLATE_URL, "[]");
}

/* ---- compiling and rendering ----------------------------------------------------------- */

Test(template, source_and_mode_are_kept)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t;

    cr_assert_not_null(lib);
    t = compile_in(lib, "x", TEMPLATE_URL);
    cr_assert_str_eq(template_source(t), "t.txt");
    cr_assert_eq(template_mode(t), TEMPLATE_URL);
    template_lib_free(lib);
}

Test(template, compile_keeps_its_own_copy_and_length_decides)
{
    char text[] = "Hi {{first_name}}! and more";
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = NULL;
    struct blast_error err;
    struct buf out;

    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, text, 18, "t", 1, 1, TEMPLATE_TEXT, &t, &err), 0, "%s",
                 err.text);
    memset(text, 'X', sizeof text - 1);
    cr_assert_eq(render_json(t, default_json, &out), 0);
    cr_assert_str_eq(out.data, "Hi Ada!");
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, render_appends_to_the_buffer)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t;
    json_t *doc = json_loads(default_json, 0, NULL);
    struct template_value root = {doc, 0};
    struct buf out = BUF_INIT;

    cr_assert_not_null(lib);
    cr_assert_not_null(doc);
    t = compile_in(lib, "{{first_name}}", TEMPLATE_TEXT);
    cr_assert_eq(buf_puts(&out, "Dear "), 0);
    cr_assert_eq(template_render(t, &json_data, root, &out), 0);
    cr_assert_eq(template_render(t, &json_data, root, &out), 0);
    cr_assert_str_eq(out.data, "Dear AdaAda");
    buf_free(&out);
    json_decref(doc);
    template_lib_free(lib);
}

Test(template, many_templates_share_one_lib)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *a, *b;
    struct buf out;

    cr_assert_not_null(lib);
    a = compile_in(lib, "{{html}}", TEMPLATE_HTML);
    b = compile_in(lib, "{{html}}", TEMPLATE_TEXT);
    cr_assert_neq(a, b);
    cr_assert_eq(render_json(a, default_json, &out), 0);
    cr_assert_str_eq(out.data, "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;");
    buf_free(&out);
    cr_assert_eq(render_json(b, default_json, &out), 0);
    cr_assert_str_eq(out.data, "<b>\"Tom\" & 'Jerry'</b>");
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, load_reads_a_file)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = NULL;
    struct blast_error err;
    struct buf out;
    const char *path = "../fixtures/campaigns/templates/news.txt";

    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(template_load(lib, path, TEMPLATE_TEXT, &t, &err), 0, "%s", err.text);
    cr_assert_str_eq(template_source(t), path);
    cr_assert_eq(render_json(t, default_json, &out), 0);
    cr_assert_str_eq(out.data, "Hello Ada,\n\nThis is the news.\n");
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, load_of_a_missing_file_is_an_io_error)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(template_load(lib, "../fixtures/no-such-template.txt", TEMPLATE_TEXT, &t, &err),
                 BLAST_EIO);
    cr_assert_null(t);
    cr_assert_str_eq(err.source, "../fixtures/no-such-template.txt");
    template_lib_free(lib);
}

Test(template, lib_free_accepts_null)
{
    template_lib_free(NULL);
}

/* ---- error places ------------------------------------------------------------------------ */

Test(template, unclosed_tag)
{
    expect_error("Hello {{first_name", 1, 7, "unclosed tag");
    expect_error("line one\nline two {{city}}\n  {{ first_name }\n", 3, 3, "unclosed tag");
    expect_error("ok {{city}} then {{{raw}}", 1, 18, "unclosed tag");
    expect_error("{{=<% %>=}}\nHi <%name %", 2, 4, "'<%'");
}

Test(template, columns_count_characters_not_bytes)
{
    /* "Grüße, " is 7 characters and 9 bytes; "日本 " 3 characters and 7 bytes */
    expect_error("Grüße, {{name", 1, 8, "unclosed");
    expect_error("a\n日本 {{#x}}", 2, 4, "never closed");
}

Test(template, error_place_starts_where_the_text_starts)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;
    static const char text[] = "Hi {{name";
    static const char two_lines[] = "Hi\n{{name";

    /* a subject at campaign.yml line 4, column 10: only the first line is shifted */
    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(
        template_compile(lib, text, strlen(text), "campaign.yml", 4, 10, TEMPLATE_TEXT, &t, &err),
        BLAST_ESYNTAX);
    cr_assert_null(t);
    cr_assert_str_eq(err.source, "campaign.yml");
    cr_assert_eq(err.line, 4);
    cr_assert_eq(err.column, 13);
    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, two_lines, strlen(two_lines), "campaign.yml", 4, 10,
                                  TEMPLATE_TEXT, &t, &err),
                 BLAST_ESYNTAX);
    cr_assert_eq(err.line, 5);
    cr_assert_eq(err.column, 1);
    template_lib_free(lib);
}

Test(template, unclosed_section_points_at_its_opening_tag)
{
    expect_error("a\n  {{#items}}x", 2, 3, "the section 'items' is never closed");
    expect_error("{{#a}}{{#b}}{{/b}}\n{{^c}}", 2, 1, "'c'");
    expect_error("{{#outer}}\n  {{^inner}}\n{{/outer}}", 3, 1, "'inner'");
}

Test(template, section_closed_by_another_name)
{
    expect_error("{{#a}}x{{/b}}", 1, 8, "'{{/b}}' closes the section 'a' opened at line 1");
    expect_error("{{#a}}\n{{#b}}\n  {{/a}}\n{{/b}}", 3, 3, "opened at line 2");
}

Test(template, stray_closing_tag)
{
    expect_error("x {{/items}}", 1, 3, "never opened");
    expect_error("{{#a}}{{/a}}\n\t{{/a}}", 2, 2, "'{{/a}}'");
}

Test(template, bad_set_delimiter_tags)
{
    expect_error("{{=<%=}}", 1, 1, "two delimiters");
    expect_error("ab {{= =}}", 1, 4, "two delimiters");
    expect_error("\n{{=<% %> x=}}", 2, 1, "two delimiters");
    expect_error("{{=<=% %>=}}", 1, 1, "without '='");
    expect_error("{{=<<<<<<<<<<<<<<<<< >=}}", 1, 1, "at most 16");
    expect_error("x {{=<% %>}}", 1, 3, "unclosed tag");
}

Test(template, empty_names)
{
    expect_error("a {{}} b", 1, 3, "empty tag");
    expect_error("a {{   }} b", 1, 3, "empty tag");
    expect_error("a {{{}}} b", 1, 3, "empty tag");
    expect_error("a {{& }} b", 1, 3, "empty tag");
    expect_error("\n {{#}}{{/}}", 2, 2, "empty tag");
    expect_error("{{^ }}{{/ }}", 1, 1, "empty tag");
    expect_error("x{{>}}", 1, 2, "a partial needs a name");
}

Test(template, a_partial_name_longer_than_255_bytes_is_refused_as_such)
{
    char text[400] = "\n  {{> ";

    memset(text + strlen(text), 'a', 256);
    strcat(text, "}}");
    expect_error(text, 2, 3, "a partial's name is at most 255 bytes");
}

Test(template, malformed_names)
{
    expect_error("a {{first name}} b", 1, 3, "cannot contain spaces");
    expect_error("a {{a..b}}", 1, 3, "empty part");
    expect_error("{{.a}}", 1, 1, "empty part");
    expect_error("{{a.}}", 1, 1, "empty part");
}

/* Compile len bytes of text, which must fail at 1:column with a NUL byte in a tag. */
static void expect_nul_refused(const char *text, size_t len, int column)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, text, len, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
                 BLAST_ESYNTAX, "a tag with a NUL byte compiled (%zu bytes)", len);
    cr_assert_null(t);
    cr_assert_eq(err.line, 1);
    cr_assert_eq(err.column, column, "column %d", err.column);
    cr_assert_not_null(strstr(err.text, "NUL byte"), "%s", err.text);
    template_lib_free(lib);
}

/* A template is read with its length: a NUL byte inside a tag must not cut the name short. */
Test(template, a_nul_byte_in_a_tag_is_refused)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = NULL;
    struct blast_error err;
    struct buf out;

    expect_nul_refused("{{a\0b}}", 7, 1);
    expect_nul_refused("x {{{a\0}}}", 10, 3);
    expect_nul_refused("{{#a\0b}}x{{/a}}", 15, 1);
    expect_nul_refused("{{#a}}x{{/a\0b}}", 15, 8);
    expect_nul_refused("{{> p\0q}}", 9, 1);
    expect_nul_refused("{{=<\0 >=}}", 10, 1);
    /* in a comment or in the text a NUL byte is only a byte */
    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(
        template_compile(lib, "{{! a\0b }}x\0y", 13, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err), 0,
        "%s", err.text);
    cr_assert_eq(render_json(t, default_json, &out), 0);
    cr_assert_eq(out.len, 3);
    cr_assert_eq(memcmp(out.data, "x\0y", 3), 0);
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, sections_nest_at_most_100_deep)
{
    struct template_lib *lib = template_lib_new(NULL);
    struct buf text = BUF_INIT, out;
    const struct template *t;
    int i;

    cr_assert_not_null(lib);
    for (i = 0; i < 100; i++)
        buf_puts(&text, "{{#a}}");
    buf_puts(&text, "{{b}}");
    for (i = 0; i < 100; i++)
        buf_puts(&text, "{{/a}}");
    t = compile_in(lib, text.data, TEMPLATE_TEXT);
    cr_assert_eq(render_json(t, "{\"a\": true, \"b\": \"deep\"}", &out), 0);
    cr_assert_str_eq(out.data, "deep");
    buf_free(&out);
    buf_reset(&text);
    for (i = 0; i < 101; i++)
        buf_puts(&text, "{{#a}}");
    expect_error_in(lib, text.data, BLAST_ESYNTAX, 1, 601, "deeper than 100");
    buf_free(&text);
    template_lib_free(lib);
}

/* ---- partials ------------------------------------------------------------------------- */

Test(template, partials_without_a_finder_are_an_error)
{
    expect_error("x\n  {{> footer}}", 2, 3, "partials ({{> footer}}) are not available");
}

Test(template, missing_partial_is_an_error_naming_it_with_the_hint)
{
    struct finder f;
    struct template_lib *lib =
        lib_with(&f, no_partials, true, "(looked in templates/ and ../templates/)");

    expect_error_in(lib, "Hello\n  {{> footer }}\n", BLAST_EINVAL, 2, 3,
                    "partial 'footer' not found (looked in templates/ and ../templates/)");
    cr_assert_eq(f.finds, 1);
    cr_assert_str_eq(f.names[0], "footer");
    cr_assert_str_eq(f.sources[0], "t.txt");
    template_lib_free(lib);
}

Test(template, missing_partial_without_a_hint)
{
    struct finder f;
    struct template_lib *lib = lib_with(&f, no_partials, true, NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, "{{> gone}}", 10, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
                 BLAST_EINVAL);
    cr_assert_str_eq(err.text, "partial 'gone' not found");
    template_lib_free(lib);
}

Test(template, missing_partial_inside_a_partial_is_placed_in_that_partial)
{
    static const struct partial table[] = {{"outer", "line 1\nand {{> inner}}\n"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, "{{> outer}}", 11, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
                 BLAST_EINVAL);
    cr_assert_str_eq(err.source, "partials/outer.mustache");
    cr_assert_eq(err.line, 2);
    cr_assert_eq(err.column, 5);
    cr_assert_not_null(strstr(err.text, "'inner'"), "%s", err.text);
    cr_assert_eq(f.finds, 2);
    cr_assert_str_eq(f.sources[1], "partials/outer.mustache", "the finder is told who includes");
    template_lib_free(lib);
}

Test(template, syntax_error_inside_a_partial_is_placed_in_that_partial)
{
    static const struct partial table[] = {{"p", "ok\n{{#s}}\n"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, "a {{> p}}", 9, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
                 BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, "partials/p.mustache");
    cr_assert_eq(err.line, 2);
    cr_assert_eq(err.column, 1);
    template_lib_free(lib);
}

Test(template, errors_in_an_indented_partial_are_placed_in_its_file)
{
    /* a standalone partial is indented when included, but its places are its own file's */
    static const struct partial table[] = {{"p", "ok\n{{#s}}\n"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(
        template_compile(lib, "a\n    {{> p}}\n", 15, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
        BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, "partials/p.mustache");
    cr_assert_eq(err.line, 2);
    cr_assert_eq(err.column, 1, "column %d: the indentation is not in the partial's file",
                 err.column);
    template_lib_free(lib);
}

Test(template, a_missing_partial_renders_nothing_unless_it_is_an_error)
{
    struct finder f;
    struct template_lib *lib = lib_with(&f, no_partials, false, NULL);
    struct buf out;

    cr_assert_eq(render_json(compile_in(lib, "[{{> nowhere}}]", TEMPLATE_TEXT), "{}", &out), 0);
    cr_assert_str_eq(out.data, "[]");
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, a_failing_finder_stops_the_compile_with_its_error)
{
    struct finder f;
    struct template_lib *lib = lib_with(&f, no_partials, true, NULL);
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    f.fail_with = BLAST_EIO;
    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, "{{> p}}", 7, "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
                 BLAST_EIO);
    cr_assert_null(t);
    cr_assert_str_eq(err.source, "partials.db");
    cr_assert_str_eq(err.text, "cannot read 'p'");
    template_lib_free(lib);
}

Test(template, partials_are_shared_and_indented_where_they_stand)
{
    static const struct partial table[] = {
        {"p", "<{{first_name}}>\n"}, {"q", "q{{> p}}"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    const struct template *a, *b;
    struct buf out;

    /* indentations "", "  ", "    ", "  " and "" again (inside q) */
    a = compile_in(lib, "[{{> p}}]\n  {{> p}}\n    {{> p}}\n  {{> p}}\n{{> q}}", TEMPLATE_TEXT);
    /* each tag asks the finder (beside which file?); each file is compiled once */
    cr_assert_eq(f.finds, 6, "p four times, q, and p inside q: %d finds", f.finds);
    cr_assert_str_eq(f.names[0], "p");
    cr_assert_str_eq(f.names[4], "q");
    cr_assert_eq(render_json(a, default_json, &out), 0);
    cr_assert_str_eq(out.data, "[<Ada>\n]\n  <Ada>\n    <Ada>\n  <Ada>\nq<Ada>\n");
    buf_free(&out);

    /* another template of the same lib and mode shares them */
    b = compile_in(lib, "{{> p}}{{> q}}\n  {{> p}}\n", TEMPLATE_TEXT);
    cr_assert_eq(f.finds, 9, "q is shared, so p inside it is not looked for: %d finds", f.finds);
    cr_assert_eq(render_json(b, default_json, &out), 0);
    cr_assert_str_eq(out.data, "<Ada>\nq<Ada>\n\n  <Ada>\n");
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, a_partial_takes_the_mode_of_the_template_that_includes_it)
{
    static const struct partial table[] = {{"p", "{{html}}"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    const struct template *html, *text, *url;
    struct buf out;

    html = compile_in(lib, "{{> p}}", TEMPLATE_HTML);
    text = compile_in(lib, "{{> p}}", TEMPLATE_TEXT);
    url = compile_in(lib, "{{> p}}", TEMPLATE_URL);
    cr_assert_eq(f.finds, 3, "compiled once per mode");
    cr_assert_eq(f.modes[0], TEMPLATE_HTML);
    cr_assert_eq(f.modes[1], TEMPLATE_TEXT);
    cr_assert_eq(f.modes[2], TEMPLATE_URL);
    cr_assert_eq(render_json(html, default_json, &out), 0);
    cr_assert_str_eq(out.data, "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;");
    buf_free(&out);
    cr_assert_eq(render_json(text, default_json, &out), 0);
    cr_assert_str_eq(out.data, "<b>\"Tom\" & 'Jerry'</b>");
    buf_free(&out);
    cr_assert_eq(render_json(url, default_json, &out), 0);
    cr_assert_str_eq(out.data, "%3cb%3e%22Tom%22%20%26%20%27Jerry%27%3c%2fb%3e");
    buf_free(&out);
    template_lib_free(lib);
}

/* ---- a partial that includes itself ------------------------------------------------------ */

static const struct partial tree[] = {{"node", "{{name}}({{#children}}{{> node}}{{/children}})"},
                                      {NULL, NULL}};

Test(template, a_recursive_partial_renders_finitely_with_finite_data)
{
    struct finder f;
    struct template_lib *lib = lib_with(&f, tree, true, NULL);
    const struct template *t = compile_in(lib, "{{> node}}", TEMPLATE_HTML);
    struct buf out;

    cr_assert_eq(f.finds, 2, "the partial, then itself, found once more and shared");
    cr_assert_eq(
        render_json(t,
                    "{\"name\": \"root\", \"children\": ["
                    " {\"name\": \"a\", \"children\": [{\"name\": \"a<1\", \"children\": []}]},"
                    " {\"name\": \"b\", \"children\": []}]}",
                    &out),
        0);
    cr_assert_str_eq(out.data, "root(a(a&lt;1())b())");
    buf_free(&out);
    template_lib_free(lib);
}

Test(template, a_recursive_partial_goes_90_levels_deep)
{
    struct finder f;
    struct template_lib *lib = lib_with(&f, tree, true, NULL);
    const struct template *t = compile_in(lib, "{{> node}}", TEMPLATE_TEXT);
    struct buf json = BUF_INIT, out, want = BUF_INIT;
    int i;

    for (i = 0; i < 90; i++)
        buf_puts(&json, "{\"name\": \"n\", \"children\": [");
    buf_puts(&json, "{\"name\": \"leaf\", \"children\": []}");
    for (i = 0; i < 90; i++) {
        buf_puts(&json, "]}");
        buf_puts(&want, "n(");
    }
    buf_puts(&want, "leaf()");
    for (i = 0; i < 90; i++)
        buf_puts(&want, ")");
    cr_assert_eq(render_json(t, json.data, &out), 0);
    cr_assert_str_eq(out.data, want.data);
    buf_free(&out);
    buf_free(&want);
    buf_free(&json);
    template_lib_free(lib);
}

Test(template, a_recursive_partial_with_endless_data_fails_past_100_levels)
{
    static const struct partial self[] = {{"self", "x{{#r}}{{> self}}{{/r}}"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, self, true, NULL);
    const struct template *t = compile_in(lib, "{{> self}}", TEMPLATE_TEXT);
    struct template_value root = {"root", 0};
    struct buf out = BUF_INIT;
    size_t i;

    cr_assert_eq(template_render(t, &endless_data, root, &out), BLAST_EINVAL);
    cr_assert_geq(out.len, 90, "it went deep before stopping: %zu", out.len);
    cr_assert_leq(out.len, 102, "it stopped near 100 levels: %zu", out.len);
    for (i = 0; i < out.len; i++)
        cr_assert_eq(out.data[i], 'x');
    buf_free(&out);
    template_lib_free(lib);
}

/* Render text (compiled in a lib of its own) with json: its code and output length. */
static int render_length(const char *text, const char *json, size_t *len)
{
    struct template_lib *lib = template_lib_new(NULL);
    struct buf out;
    int rc;

    cr_assert_not_null(lib);
    rc = render_json(compile_in(lib, text, TEMPLATE_TEXT), json, &out);
    *len = out.len;
    buf_free(&out);
    template_lib_free(lib);
    return rc;
}

/*
 * Sections nested over lists multiply: 30 of them over a list of two items would
 * run 2^30 times (hours). The rendering stops past TEMPLATE_RENDER_MAX_STEPS.
 */
Test(template, nested_sections_that_multiply_stop_past_the_budget_of_steps, .timeout = 20)
{
    char text[1024] = "";
    size_t i, len;

    for (i = 0; i < 30; i++)
        strcat(text, "{{#w}}");
    strcat(text, "x");
    for (i = 0; i < 30; i++)
        strcat(text, "{{/w}}");
    cr_assert_eq(render_length(text, "{\"w\": [\"a\", \"b\"]}", &len), BLAST_EINVAL);
    cr_assert_lt(len, TEMPLATE_RENDER_MAX_STEPS, "%zu bytes", len);
    /* 2^10 passes are within the budget */
    cr_assert_eq(render_length("{{#w}}{{#w}}{{#w}}{{#w}}{{#w}}{{#w}}{{#w}}{{#w}}{{#w}}{{#w}}x"
                               "{{/w}}{{/w}}{{/w}}{{/w}}{{/w}}{{/w}}{{/w}}{{/w}}{{/w}}{{/w}}",
                               "{\"w\": [\"a\", \"b\"]}", &len),
                 0);
    cr_assert_eq(len, 1024);
}

/* A list of 100 items through two sections around 10 KB of text is 100 MB: too much. */
Test(template, a_rendering_stops_past_the_budget_of_bytes, .timeout = 20)
{
    size_t n = 10 * 1024, len, i;
    char *text = malloc(n + 64), json[2048] = "{\"w\": [";

    cr_assert_not_null(text);
    memcpy(text, "{{#w}}{{#w}}", 12);
    memset(text + 12, 'x', n);
    memcpy(text + 12 + n, "{{/w}}{{/w}}", 13);
    for (i = 0; i < 100; i++)
        strcat(json, i > 0 ? ", 1" : "1");
    strcat(json, "]}");
    cr_assert_eq(render_length(text, json, &len), BLAST_EINVAL);
    cr_assert_leq(len, TEMPLATE_RENDER_MAX_BYTES + n, "%zu bytes", len);
    free(text);
}

Test(template, a_partial_that_includes_itself_unconditionally_fails)
{
    static const struct partial loop[] = {{"loop", "a{{> loop}}"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, loop, true, NULL);
    struct buf out;

    cr_assert_eq(render_json(compile_in(lib, "{{> loop}}", TEMPLATE_TEXT), "{}", &out),
                 BLAST_EINVAL);
    buf_free(&out);
    template_lib_free(lib);
}

/* ---- template_visit ------------------------------------------------------------------- */

#define MAX_USES 32

struct seen_use {
    enum template_use_kind kind;
    char name[64];
    char parts[128]; /* the parts joined by '|' */
    size_t nparts;
    char source[64];
    int line, column;
    char sections[128]; /* enclosing sections, outermost first: "#a ^b" */
};

struct seen {
    int n;
    struct seen_use u[MAX_USES];
};

static void record(void *arg, const struct template_use *use,
                   const struct template_use *const *sections, size_t nsections)
{
    struct seen *s = arg;
    struct seen_use *u;
    size_t i, len;

    cr_assert_lt(s->n, MAX_USES);
    u = &s->u[s->n++];
    memset(u, 0, sizeof *u);
    u->kind = use->kind;
    snprintf(u->name, sizeof u->name, "%s", use->name);
    u->nparts = use->nparts;
    for (i = 0; i < use->nparts; i++) {
        len = strlen(u->parts);
        snprintf(u->parts + len, sizeof u->parts - len, "%s%s", i > 0 ? "|" : "", use->parts[i]);
    }
    snprintf(u->source, sizeof u->source, "%s", use->source);
    u->line = use->line;
    u->column = use->column;
    for (i = 0; i < nsections; i++) {
        cr_assert_neq(sections[i]->kind, TEMPLATE_USE_VARIABLE, "a variable is not a section");
        len = strlen(u->sections);
        snprintf(u->sections + len, sizeof u->sections - len, "%s%c%s", i > 0 ? " " : "",
                 sections[i]->kind == TEMPLATE_USE_SECTION ? '#' : '^', sections[i]->name);
    }
}

static void expect_use(const struct seen *s, int i, enum template_use_kind kind, const char *name,
                       const char *source, int line, int column, const char *sections)
{
    cr_assert_lt(i, s->n, "only %d uses", s->n);
    cr_assert_eq(s->u[i].kind, kind, "use %d (%s): kind %d", i, s->u[i].name, (int)s->u[i].kind);
    cr_assert_str_eq(s->u[i].name, name, "use %d", i);
    cr_assert_str_eq(s->u[i].source, source, "use %d (%s)", i, name);
    cr_assert_eq(s->u[i].line, line, "use %d (%s): line %d", i, name, s->u[i].line);
    cr_assert_eq(s->u[i].column, column, "use %d (%s): column %d", i, name, s->u[i].column);
    cr_assert_str_eq(s->u[i].sections, sections, "use %d (%s)", i, name);
}

Test(template, visit_lists_names_with_their_sections_and_places)
{
    static const char text[] = "Hello {{first_name}},\n"
                               "{{! not a name }}\n"
                               "{{#items}}\n"
                               "  * {{{ title }}}{{^done}} ({{& state.label}}){{/done}}\n"
                               "{{/items}}\n"
                               "é{{^items}}{{.}}{{/items}}";
    struct template_lib *lib = template_lib_new(NULL);
    struct seen s;

    cr_assert_not_null(lib);
    memset(&s, 0, sizeof s);
    cr_assert_eq(template_visit(compile_in(lib, text, TEMPLATE_HTML), record, &s), 0);
    cr_assert_eq(s.n, 7, "%d uses", s.n);
    expect_use(&s, 0, TEMPLATE_USE_VARIABLE, "first_name", "t.txt", 1, 7, "");
    expect_use(&s, 1, TEMPLATE_USE_SECTION, "items", "t.txt", 3, 1, "");
    expect_use(&s, 2, TEMPLATE_USE_VARIABLE, "title", "t.txt", 4, 5, "#items");
    expect_use(&s, 3, TEMPLATE_USE_INVERTED, "done", "t.txt", 4, 18, "#items");
    expect_use(&s, 4, TEMPLATE_USE_VARIABLE, "state.label", "t.txt", 4, 29, "#items ^done");
    expect_use(&s, 5, TEMPLATE_USE_INVERTED, "items", "t.txt", 6, 2, "");
    expect_use(&s, 6, TEMPLATE_USE_VARIABLE, ".", "t.txt", 6, 12, "^items");
    cr_assert_eq(s.u[4].nparts, 2);
    cr_assert_str_eq(s.u[4].parts, "state|label");
    cr_assert_eq(s.u[6].nparts, 0, "the implicit iterator has no parts");
    cr_assert_eq(s.u[0].nparts, 1);
    cr_assert_str_eq(s.u[0].parts, "first_name");
    template_lib_free(lib);
}

Test(template, visit_places_follow_the_first_line_and_column)
{
    struct template_lib *lib = template_lib_new(NULL);
    const struct template *t = NULL;
    struct blast_error err;
    struct seen s;
    static const char text[] = "Hi {{a}}\n{{b}}";

    cr_assert_not_null(lib);
    blast_error_clear(&err);
    cr_assert_eq(
        template_compile(lib, text, strlen(text), "campaign.yml", 3, 14, TEMPLATE_TEXT, &t, &err),
        0);
    memset(&s, 0, sizeof s);
    cr_assert_eq(template_visit(t, record, &s), 0);
    cr_assert_eq(s.n, 2);
    expect_use(&s, 0, TEMPLATE_USE_VARIABLE, "a", "campaign.yml", 3, 17, "");
    expect_use(&s, 1, TEMPLATE_USE_VARIABLE, "b", "campaign.yml", 4, 1, "");
    template_lib_free(lib);
}

Test(template, visit_goes_into_each_partial_once)
{
    static const struct partial table[] = {
        {"item", "{{title}}\n{{> link}}"}, {"link", "<{{url}}>"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    struct seen s;

    memset(&s, 0, sizeof s);
    cr_assert_eq(template_visit(compile_in(lib,
                                           "{{#links}}{{> item}}{{/links}}\n"
                                           "{{> item}} {{> link}}",
                                           TEMPLATE_TEXT),
                                record, &s),
                 0);
    cr_assert_eq(s.n, 3, "links, title, url: %d uses", s.n);
    expect_use(&s, 0, TEMPLATE_USE_SECTION, "links", "t.txt", 1, 1, "");
    expect_use(&s, 1, TEMPLATE_USE_VARIABLE, "title", "partials/item.mustache", 1, 1, "#links");
    expect_use(&s, 2, TEMPLATE_USE_VARIABLE, "url", "partials/link.mustache", 1, 2, "#links");
    template_lib_free(lib);
}

Test(template, visit_goes_into_a_partial_once_whatever_its_indentation)
{
    static const struct partial table[] = {{"footer", "-- \n{{sender}}\n"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    struct seen s;

    memset(&s, 0, sizeof s);
    cr_assert_eq(template_visit(compile_in(lib, "{{> footer}}\n  {{> footer}}\n", TEMPLATE_TEXT),
                                record, &s),
                 0);
    cr_assert_eq(s.n, 1, "{{sender}} is listed %d times", s.n);
    expect_use(&s, 0, TEMPLATE_USE_VARIABLE, "sender", "partials/footer.mustache", 2, 1, "");
    template_lib_free(lib);
}

Test(template, visit_places_in_an_indented_partial_are_those_of_its_file)
{
    static const struct partial table[] = {{"footer", "-- \n{{sender}}\n"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    struct seen s;

    memset(&s, 0, sizeof s);
    cr_assert_eq(
        template_visit(compile_in(lib, "Hi\n    {{> footer}}\n", TEMPLATE_TEXT), record, &s), 0);
    cr_assert_eq(s.n, 1);
    expect_use(&s, 0, TEMPLATE_USE_VARIABLE, "sender", "partials/footer.mustache", 2, 1, "");
    template_lib_free(lib);
}

Test(template, visit_of_a_recursive_partial_ends)
{
    struct finder f;
    struct template_lib *lib = lib_with(&f, tree, true, NULL);
    struct seen s;

    memset(&s, 0, sizeof s);
    cr_assert_eq(template_visit(compile_in(lib, "{{> node}}", TEMPLATE_TEXT), record, &s), 0);
    cr_assert_eq(s.n, 2);
    expect_use(&s, 0, TEMPLATE_USE_VARIABLE, "name", "partials/node.mustache", 1, 1, "");
    expect_use(&s, 1, TEMPLATE_USE_SECTION, "children", "partials/node.mustache", 1, 10, "");
    template_lib_free(lib);
}

Test(template, visit_skips_comments_and_delimiter_changes)
{
    struct template_lib *lib = template_lib_new(NULL);
    struct seen s;

    cr_assert_not_null(lib);
    memset(&s, 0, sizeof s);
    cr_assert_eq(
        template_visit(
            compile_in(lib, "{{! {{a}} }}{{=<% %>=}}<%b%> {{c}}<%={{ }}=%>{{d}}", TEMPLATE_TEXT),
            record, &s),
        0);
    cr_assert_eq(s.n, 2);
    expect_use(&s, 0, TEMPLATE_USE_VARIABLE, "b", "t.txt", 1, 24, "");
    expect_use(&s, 1, TEMPLATE_USE_VARIABLE, "d", "t.txt", 1, 46, "");
    template_lib_free(lib);
}

/* ---- partials that failed ------------------------------------------------------------ */

/* Compile text in lib, which must fail with a syntax error at source:line:column. */
static void expect_partial_error(struct template_lib *lib, const char *text, const char *source,
                                 int line, int column, const char *fragment)
{
    const struct template *t = (const struct template *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(template_compile(lib, text, strlen(text), "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err),
                 BLAST_ESYNTAX, "'%s' compiled", text);
    cr_assert_null(t);
    cr_assert_str_eq(err.source, source);
    cr_assert_eq(err.line, line, "'%s': line %d", text, err.line);
    cr_assert_eq(err.column, column, "'%s': column %d", text, err.column);
    cr_assert_not_null(strstr(err.text, fragment), "'%s' not in '%s'", fragment, err.text);
}

/*
 * A partial that failed to compile is not kept: the next template that includes it
 * gets the same error, not the half-built partial (a section without its end made
 * template_visit loop forever in blast check, an operation without its name made
 * it read a NULL name).
 */
Test(template, a_partial_that_failed_is_compiled_again_and_fails_again, .timeout = 10)
{
    static const struct partial table[] = {
        {"open", "ok\n{{#s}}\n"}, {"bad", "x {{a b}}"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);
    struct seen s;

    expect_partial_error(lib, "a {{> open}}", "partials/open.mustache", 2, 1, "never closed");
    expect_partial_error(lib, "b {{> open}}", "partials/open.mustache", 2, 1, "never closed");
    expect_partial_error(lib, "a {{> bad}}", "partials/bad.mustache", 1, 3, "cannot contain");
    expect_partial_error(lib, "b {{> bad}}", "partials/bad.mustache", 1, 3, "cannot contain");
    cr_assert_eq(f.finds, 4, "each include looked for its partial again");
    memset(&s, 0, sizeof s);
    cr_assert_eq(template_visit(compile_in(lib, "{{c}}", TEMPLATE_TEXT), record, &s), 0);
    cr_assert_eq(s.n, 1, "the lib still works");
    template_lib_free(lib);
}

/* A partial that compiled while one around it failed points at that one: not kept either. */
Test(template, a_partial_compiled_inside_a_failed_one_is_not_kept, .timeout = 10)
{
    static const struct partial table[] = {
        {"outer", "{{> inner}}\n{{#left_open}}"}, {"inner", "[{{> outer}}]"}, {NULL, NULL}};
    struct finder f;
    struct template_lib *lib = lib_with(&f, table, true, NULL);

    expect_partial_error(lib, "{{> outer}}", "partials/outer.mustache", 2, 1, "never closed");
    expect_partial_error(lib, "{{> inner}}", "partials/outer.mustache", 2, 1, "never closed");
    template_lib_free(lib);
}
