/*
 * test_template - Mustache-style placeholders: {{name}}, {{{name}}}, {{& name}},
 * {{! comment}}; HTML escaping of {{name}} in HTML mode only; errors with file,
 * line and column; the list of names a template uses.
 */
#include "../../core/template.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

struct kv {
    const char *name, *value;
};

/* A lookup over a NULL-terminated array of name/value pairs. */
static bool lookup(void *arg, const char *name, const char **value, size_t *len)
{
    const struct kv *p;

    for (p = arg; p->name != NULL; p++)
        if (strcmp(p->name, name) == 0) {
            *value = p->value;
            *len = strlen(p->value);
            return true;
        }
    return false;
}

static const struct kv vars[] = {
    {"first_name", "Ada"}, {"city", "London"}, {"html", "<b>\"Tom\" & 'Jerry'</b>"},
    {"empty", ""},         {NULL, NULL},
};

static struct template *compile_ok(const char *text, enum template_mode mode)
{
    struct template *t = NULL;
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = template_compile(text, strlen(text), "t.txt", 1, 1, mode, &t, &err);
    cr_assert_eq(rc, 0, "'%s': %s", text, blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(t);
    return t;
}

/* Compile and render text with vars; the result is in out (caller frees). */
static void render(const char *text, enum template_mode mode, struct buf *out)
{
    struct template *t = compile_ok(text, mode);

    buf_init(out);
    cr_assert_eq(template_render(t, lookup, (void *)vars, out), 0);
    if (out->data == NULL)
        cr_assert_eq(buf_puts(out, ""), 0);
    template_free(t);
}

static void expect_render(const char *text, enum template_mode mode, const char *want)
{
    struct buf out;

    render(text, mode, &out);
    cr_assert_str_eq(out.data, want, "rendering '%s'", text);
    buf_free(&out);
}

static void expect_error(const char *text, int line, int column, const char *fragment)
{
    struct template *t = (struct template *)0x1;
    struct blast_error err;
    char msg[2048];
    int rc;

    blast_error_clear(&err);
    rc = template_compile(text, strlen(text), "t.txt", 1, 1, TEMPLATE_TEXT, &t, &err);
    cr_assert_eq(rc, BLAST_ESYNTAX, "'%s' compiled (rc %d)", text, rc);
    cr_assert_null(t);
    cr_assert_str_eq(err.source, "t.txt");
    cr_assert_eq(err.line, line, "'%s': %s", text, blast_error_format(&err, msg, sizeof msg));
    cr_assert_eq(err.column, column, "'%s': %s", text, blast_error_format(&err, msg, sizeof msg));
    if (fragment != NULL)
        cr_assert(strstr(err.text, fragment) != NULL, "'%s' not in '%s'", fragment, err.text);
}

Test(template, variables_are_replaced)
{
    expect_render("Hello {{first_name}} from {{city}}!", TEMPLATE_TEXT, "Hello Ada from London!");
    expect_render("{{first_name}}{{city}}", TEMPLATE_TEXT, "AdaLondon");
    expect_render("{{ first_name }} / {{\tcity\t}}", TEMPLATE_TEXT, "Ada / London");
    expect_render("no tags at all", TEMPLATE_TEXT, "no tags at all");
    expect_render("", TEMPLATE_TEXT, "");
}

Test(template, text_around_tags_is_kept_byte_for_byte)
{
    expect_render("line 1\r\n{{first_name}}\n\ttabs } and { braces }}", TEMPLATE_TEXT,
                  "line 1\r\nAda\n\ttabs } and { braces }}");
    expect_render("é {{city}} ü", TEMPLATE_TEXT, "é London ü");
}

Test(template, missing_names_render_empty)
{
    expect_render("[{{nobody}}]", TEMPLATE_TEXT, "[]");
    expect_render("[{{{nobody}}}][{{& nobody}}]", TEMPLATE_HTML, "[][]");
    expect_render("[{{empty}}]", TEMPLATE_TEXT, "[]");
}

Test(template, text_mode_never_escapes)
{
    expect_render("{{html}}", TEMPLATE_TEXT, "<b>\"Tom\" & 'Jerry'</b>");
    expect_render("{{{html}}}", TEMPLATE_TEXT, "<b>\"Tom\" & 'Jerry'</b>");
    expect_render("{{& html}}", TEMPLATE_TEXT, "<b>\"Tom\" & 'Jerry'</b>");
}

Test(template, html_mode_escapes_double_braces)
{
    expect_render("<p>{{html}}</p>", TEMPLATE_HTML,
                  "<p>&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>");
    expect_render("<p>{{first_name}}</p>", TEMPLATE_HTML, "<p>Ada</p>");
}

Test(template, html_mode_triple_braces_and_ampersand_are_raw)
{
    expect_render("{{{html}}}", TEMPLATE_HTML, "<b>\"Tom\" & 'Jerry'</b>");
    expect_render("{{{ html }}}", TEMPLATE_HTML, "<b>\"Tom\" & 'Jerry'</b>");
    expect_render("{{&html}}", TEMPLATE_HTML, "<b>\"Tom\" & 'Jerry'</b>");
    expect_render("{{& html}}", TEMPLATE_HTML, "<b>\"Tom\" & 'Jerry'</b>");
}

Test(template, literal_text_is_never_escaped)
{
    expect_render("<a href=\"x?a=1&b=2\">{{first_name}}</a>", TEMPLATE_HTML,
                  "<a href=\"x?a=1&b=2\">Ada</a>");
}

Test(template, comments_render_nothing)
{
    expect_render("a{{! a comment }}b", TEMPLATE_TEXT, "ab");
    expect_render("a{{!}}b", TEMPLATE_TEXT, "ab");
    expect_render("a{{! spans\nlines }}b {{first_name}}", TEMPLATE_TEXT, "ab Ada");
    expect_render("{{!first_name}}", TEMPLATE_TEXT, "");
}

Test(template, comments_are_not_names)
{
    struct template *t = compile_ok("{{! city }}{{first_name}}", TEMPLATE_TEXT);

    cr_assert_eq(template_nnames(t), 1);
    cr_assert_str_eq(template_name(t, 0, NULL, NULL), "first_name");
    template_free(t);
}

Test(template, render_appends_to_the_buffer)
{
    struct template *t = compile_ok("{{first_name}}", TEMPLATE_TEXT);
    struct buf out = BUF_INIT;

    cr_assert_eq(buf_puts(&out, "Dear "), 0);
    cr_assert_eq(template_render(t, lookup, (void *)vars, &out), 0);
    cr_assert_eq(template_render(t, lookup, (void *)vars, &out), 0);
    cr_assert_str_eq(out.data, "Dear AdaAda");
    buf_free(&out);
    template_free(t);
}

Test(template, compile_keeps_its_own_copy)
{
    char text[] = "Hi {{first_name}}!";
    struct template *t = compile_ok(text, TEMPLATE_TEXT);
    struct buf out = BUF_INIT;

    memset(text, 'X', sizeof text - 1);
    cr_assert_eq(template_render(t, lookup, (void *)vars, &out), 0);
    cr_assert_str_eq(out.data, "Hi Ada!");
    buf_free(&out);
    template_free(t);
}

Test(template, length_not_nul_decides_the_text)
{
    struct template *t = NULL;
    struct blast_error err;
    struct buf out = BUF_INIT;

    blast_error_clear(&err);
    cr_assert_eq(
        template_compile("Hi {{first_name}}! and more", 18, "t", 1, 1, TEMPLATE_TEXT, &t, &err), 0);
    cr_assert_eq(template_render(t, lookup, (void *)vars, &out), 0);
    cr_assert_str_eq(out.data, "Hi Ada!");
    buf_free(&out);
    template_free(t);
}

Test(template, unclosed_tag_error_has_line_and_column)
{
    expect_error("Hello {{first_name", 1, 7, "unclosed");
    expect_error("line one\nline two {{city}}\n  {{ first_name }\n", 3, 3, "unclosed");
    expect_error("ok {{city}} then {{{raw}}", 1, 18, "unclosed");
}

Test(template, columns_count_characters_not_bytes)
{
    /* "Grüße, " is 7 characters and 9 bytes */
    expect_error("Grüße, {{name", 1, 8, "unclosed");
}

Test(template, error_place_starts_where_the_text_starts)
{
    struct template *t = (struct template *)0x1;
    struct blast_error err;
    static const char text[] = "Hi {{name";

    /* a subject at campaign.yml line 4, column 10 */
    blast_error_clear(&err);
    cr_assert_eq(
        template_compile(text, strlen(text), "campaign.yml", 4, 10, TEMPLATE_TEXT, &t, &err),
        BLAST_ESYNTAX);
    cr_assert_str_eq(err.source, "campaign.yml");
    cr_assert_eq(err.line, 4);
    cr_assert_eq(err.column, 13);
}

Test(template, unsupported_tags_are_refused)
{
    expect_error("{{#items}}x{{/items}}", 1, 1, "not supported");
    expect_error("a\n {{^empty}}none{{/empty}}", 2, 2, "not supported");
    expect_error("x {{/items}}", 1, 3, "not supported");
    expect_error("{{> partial}}", 1, 1, "not supported");
    expect_error("{{=<% %>=}}", 1, 1, "not supported");
}

Test(template, empty_and_malformed_names_are_refused)
{
    expect_error("a {{}} b", 1, 3, NULL);
    expect_error("a {{   }} b", 1, 3, NULL);
    expect_error("a {{first name}} b", 1, 3, NULL);
    expect_error("a {{{}}} b", 1, 3, NULL);
}

Test(template, names_are_listed_with_their_places)
{
    static const char text[] = "Hello {{first_name}},\n"
                               "{{! not a name }}\n"
                               "  from {{{ city }}} and {{& first_name}}\n"
                               "é{{email}}";
    struct template *t = compile_ok(text, TEMPLATE_HTML);
    int line = 0, column = 0;

    cr_assert_str_eq(template_source(t), "t.txt");
    cr_assert_eq(template_nnames(t), 4);
    cr_assert_str_eq(template_name(t, 0, &line, &column), "first_name");
    cr_assert_eq(line, 1);
    cr_assert_eq(column, 7);
    cr_assert_str_eq(template_name(t, 1, &line, &column), "city");
    cr_assert_eq(line, 3);
    cr_assert_eq(column, 8);
    cr_assert_str_eq(template_name(t, 2, &line, &column), "first_name");
    cr_assert_eq(line, 3);
    cr_assert_eq(column, 25);
    cr_assert_str_eq(template_name(t, 3, &line, &column), "email");
    cr_assert_eq(line, 4);
    cr_assert_eq(column, 2);
    cr_assert_null(template_name(t, 4, &line, &column));
    template_free(t);
}

Test(template, load_reads_a_file)
{
    struct template *t = NULL;
    struct blast_error err;
    const char *path = "../fixtures/campaigns/templates/unknown.txt";
    int line, column;

    blast_error_clear(&err);
    cr_assert_eq(template_load(path, TEMPLATE_TEXT, &t, &err), 0, "%s", err.text);
    cr_assert_str_eq(template_source(t), path);
    cr_assert_eq(template_nnames(t), 2);
    cr_assert_str_eq(template_name(t, 1, &line, &column), "cty");
    cr_assert_eq(line, 3);
    cr_assert_eq(column, 12);
    template_free(t);
}

Test(template, load_of_a_missing_file_is_an_io_error)
{
    struct template *t = (struct template *)0x1;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(template_load("../fixtures/no-such-template.txt", TEMPLATE_TEXT, &t, &err),
                 BLAST_EIO);
    cr_assert_null(t);
    cr_assert_str_eq(err.source, "../fixtures/no-such-template.txt");
}

/* ---- the Mustache spec (../shared/conformance/mustache), the subset blast supports ---- */

#define MUSTACHE_SPEC "../../../shared/conformance/mustache/"

/* A lookup over a flat JSON object: strings as they are, numbers printed, null missing. */
static bool json_lookup(void *arg, const char *name, const char **value, size_t *len)
{
    static char number[64];
    json_t *v = json_object_get(arg, name);

    if (json_is_string(v)) {
        *value = json_string_value(v);
        *len = json_string_length(v);
        return true;
    }
    if (json_is_integer(v))
        snprintf(number, sizeof number, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(number, sizeof number, "%.15g", json_real_value(v));
    else
        return false;
    *value = number;
    *len = strlen(number);
    return true;
}

/*
 * Run the cases of one spec file, except those whose name contains one of skip:
 * features outside blast's subset (sections, dotted names, standalone lines).
 * Returns how many cases ran.
 */
static int run_spec(const char *file, const char *const *skip)
{
    json_error_t jerr;
    json_t *spec = json_load_file(file, 0, &jerr), *tests, *t;
    size_t i;
    int ran = 0;

    cr_assert_not_null(spec, "%s:%d: %s", file, jerr.line, jerr.text);
    tests = json_object_get(spec, "tests");
    json_array_foreach(tests, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *text = json_string_value(json_object_get(t, "template"));
        const char *want = json_string_value(json_object_get(t, "expected"));
        json_t *data = json_object_get(t, "data");
        struct template *tp = NULL;
        struct blast_error err;
        struct buf out = BUF_INIT;
        const char *const *s;
        bool skipped = false;

        for (s = skip; *s != NULL; s++)
            skipped = skipped || strstr(name, *s) != NULL;
        if (skipped || !json_is_object(data))
            continue;
        blast_error_clear(&err);
        cr_assert_eq(template_compile(text, strlen(text), name, 1, 1, TEMPLATE_HTML, &tp, &err), 0,
                     "spec '%s': %s", name, err.text);
        cr_assert_eq(template_render(tp, json_lookup, data, &out), 0);
        cr_assert_str_eq(out.data != NULL ? out.data : "", want, "spec '%s'", name);
        buf_free(&out);
        template_free(tp);
        ran++;
    }
    json_decref(spec);
    return ran;
}

Test(template, mustache_spec_interpolation)
{
    static const char *const skip[] = {"Dotted Names", "Implicit Iterators", NULL};

    cr_assert_geq(run_spec(MUSTACHE_SPEC "interpolation.json", skip), 20);
}

Test(template, mustache_spec_inline_comments)
{
    static const char *const skip[] = {"Standalone", NULL};

    cr_assert_geq(run_spec(MUSTACHE_SPEC "comments.json", skip), 5);
}

Test(template, free_accepts_null)
{
    template_free(NULL);
}
