/*
 * template - a Mustache engine. See template.h.
 *
 * Compiling turns the text into a flat array of operations: literal text,
 * variables, sections (which record where their body ends) and partials (which
 * point at another compiled template). Rendering walks the array with a stack of
 * contexts and never looks at the source text again.
 *
 * Standalone lines (Mustache specification, "Standalone"): a section, inverted
 * section, closing, comment, partial or delimiter tag that is alone on its line,
 * apart from spaces and tabs, takes the whole line with it. A standalone partial
 * is indented by the whitespace before it: every line of its text gets that
 * prefix, so each (partial, indentation, mode) is compiled once and cached.
 */
#include "template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING   100 /* sections and partials inside each other, when rendering */
#define MAX_DELIMITER 16

enum op_kind { OP_TEXT, OP_VAR, OP_RAW, OP_SECTION, OP_INVERTED, OP_PARTIAL };

struct op {
    enum op_kind kind;
    size_t off, len;                /* OP_TEXT: bytes of the template's text */
    struct template_use use;        /* names of VAR, RAW, SECTION, INVERTED */
    size_t end;                     /* SECTION, INVERTED: the first op after the body */
    const struct template *partial; /* OP_PARTIAL; NULL for a missing one */
};

struct template
{
    struct template_lib *lib;
    char *source;
    char *text;
    size_t len;
    enum template_mode mode;
    struct op *ops;
    size_t nops, capops;
    char *partial_name; /* for partials: the cache key with indent and mode */
    char *indent;
};

struct template_lib {
    struct template_partials partials;
    bool has_partials;
    struct template **all;
    size_t n, cap;
};

/* ---- the lib ----------------------------------------------------------------------- */

struct template_lib *template_lib_new(const struct template_partials *partials)
{
    struct template_lib *lib = calloc(1, sizeof *lib);

    if (lib != NULL && partials != NULL) {
        lib->partials = *partials;
        lib->has_partials = true;
    }
    return lib;
}

static void op_free(struct op *op)
{
    size_t i;

    free((char *)op->use.name);
    for (i = 0; i < op->use.nparts; i++)
        free((char *)op->use.parts[i]);
    free((char **)op->use.parts);
}

static void template_free(struct template *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->nops; i++)
        op_free(&t->ops[i]);
    free(t->ops);
    free(t->source);
    free(t->text);
    free(t->partial_name);
    free(t->indent);
    free(t);
}

void template_lib_free(struct template_lib *lib)
{
    size_t i;

    if (lib == NULL)
        return;
    for (i = 0; i < lib->n; i++)
        template_free(lib->all[i]);
    free(lib->all);
    free(lib);
}

/* A new empty template registered with lib (so lib frees it, even half-built). */
static struct template *lib_add(struct template_lib *lib, const char *source,
                                enum template_mode mode)
{
    struct template *t;

    if (lib->n == lib->cap) {
        size_t cap = lib->cap != 0 ? lib->cap * 2 : 8;
        struct template **all = realloc(lib->all, cap * sizeof *all);
        if (all == NULL)
            return NULL;
        lib->all = all;
        lib->cap = cap;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->source = strdup(source != NULL ? source : "");
    if (t->source == NULL) {
        free(t);
        return NULL;
    }
    t->lib = lib;
    t->mode = mode;
    lib->all[lib->n++] = t;
    return t;
}

const char *template_source(const struct template *t)
{
    return t->source;
}

enum template_mode template_mode(const struct template *t)
{
    return t->mode;
}

/* ---- the parser ---------------------------------------------------------------------- */

struct parser {
    struct template *t;
    const char *s;
    size_t len;
    char otag[MAX_DELIMITER + 1], ctag[MAX_DELIMITER + 1];
    size_t olen, clen;
    size_t cur; /* place tracking: offset, line and column reached so far */
    int line, column;
    int indent; /* a standalone partial's indentation, not part of its file's columns */
    size_t open[MAX_NESTING]; /* ops of the sections not yet closed */
    size_t depth;
    struct blast_error *err;
};

/* Line and column of offset off (offsets are asked in increasing order). */
static void place(struct parser *p, size_t off, int *line, int *column)
{
    for (; p->cur < off; p->cur++) {
        if (p->s[p->cur] == '\n') {
            p->line++;
            p->column = 1;
        } else if (((unsigned char)p->s[p->cur] & 0xC0) != 0x80) {
            p->column++;
        }
    }
    *line = p->line;
    *column = p->column - p->indent > 0 ? p->column - p->indent : 1;
}

static int syntax(struct parser *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int syntax(struct parser *p, size_t off, const char *fmt, ...)
{
    char text[BLAST_ERROR_TEXT_MAX];
    int line, column;
    va_list ap;

    place(p, off, &line, &column);
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return blast_error_set(p->err, BLAST_ESYNTAX, p->t->source, line, column, "%s", text);
}

static int oom(struct parser *p)
{
    return blast_error_set(p->err, BLAST_ENOMEM, p->t->source, 0, 0, "out of memory");
}

static struct op *push_op(struct parser *p, enum op_kind kind)
{
    struct template *t = p->t;
    struct op *op;

    if (t->nops == t->capops) {
        size_t cap = t->capops != 0 ? t->capops * 2 : 16;
        struct op *ops = realloc(t->ops, cap * sizeof *ops);
        if (ops == NULL)
            return NULL;
        t->ops = ops;
        t->capops = cap;
    }
    op = &t->ops[t->nops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

static int emit_text(struct parser *p, size_t from, size_t to)
{
    struct op *op;

    if (to <= from)
        return 0;
    op = push_op(p, OP_TEXT);
    if (op == NULL)
        return oom(p);
    op->off = from;
    op->len = to - from;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Fill op->use with the name s[from, to) (already trimmed), split at dots. */
static int set_name(struct parser *p, struct op *op, size_t from, size_t to, size_t tag)
{
    const char *s = p->s + from;
    size_t n = to - from, i, start, k = 0, parts = 1;
    char **v;

    for (i = 0; i < n; i++)
        if (is_space(s[i]))
            return syntax(p, tag, "a name cannot contain spaces: '%.*s'", (int)n, s);
    op->use.name = strndup(s, n);
    if (op->use.name == NULL)
        return oom(p);
    place(p, tag, &op->use.line, &op->use.column);
    op->use.source = p->t->source;
    if (n == 1 && s[0] == '.')
        return 0; /* the implicit iterator: no parts */
    for (i = 0; i < n; i++)
        parts += s[i] == '.';
    v = calloc(parts, sizeof *v);
    if (v == NULL)
        return oom(p);
    op->use.parts = (const char *const *)v;
    for (i = 0, start = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (i == start)
            return syntax(p, tag, "empty part in the dotted name '%.*s'", (int)n, s);
        v[k] = strndup(s + start, i - start);
        if (v[k] == NULL)
            return oom(p);
        op->use.nparts = ++k;
        start = i + 1;
    }
    return 0;
}

static int compile_text(struct template *t, int first_line, int first_column,
                        struct blast_error *err);

/* Every line of text prefixed with indent (the Mustache rule for standalone partials). */
static char *indent_text(const char *text, size_t len, const char *indent, size_t *outlen)
{
    size_t ni = strlen(indent), lines = 1, i, o = 0;
    char *out;

    for (i = 0; i < len; i++)
        lines += text[i] == '\n';
    out = malloc(len + lines * ni + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        if (i == 0 || text[i - 1] == '\n') {
            memcpy(out + o, indent, ni);
            o += ni;
        }
        out[o++] = text[i];
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/*
 * The partial name as seen from this template: found by the lib's finder (beside
 * the including file first), then compiled once per file, indentation and mode.
 */
static int get_partial(struct parser *p, const char *name, const char *indent, size_t tag,
                       const struct template **out)
{
    struct template_lib *lib = p->t->lib;
    struct template *t;
    char *text = NULL, *path = NULL, *indented = NULL;
    size_t len = 0, i;
    int rc;

    *out = NULL;
    if (!lib->has_partials)
        return syntax(p, tag, "partials ({{> %s}}) are not available here", name);
    rc = lib->partials.find(lib->partials.arg, name, p->t->source, p->t->mode, &text, &len, &path,
                            p->err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        int line, column;
        if (!lib->partials.missing_is_error)
            return 0;
        place(p, tag, &line, &column);
        return blast_error_set(p->err, BLAST_EINVAL, p->t->source, line, column,
                               "partial '%s' not found%s%s", name,
                               lib->partials.hint != NULL ? " " : "",
                               lib->partials.hint != NULL ? lib->partials.hint : "");
    }
    for (i = 0; i < lib->n; i++) {
        t = lib->all[i];
        if (t->partial_name != NULL && strcmp(t->source, path) == 0 &&
            strcmp(t->indent, indent) == 0 && t->mode == p->t->mode) {
            *out = t;
            rc = 0;
            goto out;
        }
    }
    t = lib_add(lib, path, p->t->mode);
    if (t == NULL || (t->partial_name = strdup(name)) == NULL ||
        (t->indent = strdup(indent)) == NULL) {
        rc = oom(p);
        goto out;
    }
    if (indent[0] != '\0') {
        indented = indent_text(text, len, indent, &len);
        if (indented == NULL) {
            rc = oom(p);
            goto out;
        }
        free(text);
        text = indented;
    }
    t->text = text;
    t->len = len;
    text = NULL;
    /* registered before compiling, so a partial that includes itself finds itself */
    *out = t;
    rc = compile_text(t, 1, 1, p->err);
out:
    free(text);
    free(path);
    return rc;
}

/* A tag as found in the template, and where the text around it ends and resumes. */
struct tag {
    char sigil;      /* '#', '^', '/', '!', '>', '=', '{', '&', or '\0' for a variable */
    size_t at;       /* where its opening delimiter starts */
    size_t inner;    /* its inside starts (after the delimiter and the sigil) */
    size_t end;      /* its inside ends (where the closing delimiter starts) */
    size_t from, to; /* the inside without the spaces around it */
    size_t indent;   /* where the blanks before it on its line start */
    bool standalone; /* alone on its line: the line goes with it (Mustache spec) */
    size_t text_end; /* the text before the tag ends here */
    size_t next;     /* the template goes on from here */
};

/* Read the tag whose opening delimiter is at o; pos is where the text before it starts. */
static int find_tag(struct parser *p, const char *o, size_t pos, struct tag *t)
{
    const char *s = p->s, *c;
    char close[MAX_DELIMITER + 2];
    size_t after, i, j;
    bool can_stand;

    t->at = (size_t)(o - s);
    t->inner = t->at + p->olen;
    t->sigil = t->inner < p->len ? s[t->inner] : '\0';
    if (t->sigil == '{' || t->sigil == '=') {
        close[0] = t->sigil == '{' ? '}' : '=';
        memcpy(close + 1, p->ctag, p->clen + 1);
    } else {
        memcpy(close, p->ctag, p->clen + 1);
    }
    if (strchr("{&#^/!>=", t->sigil) != NULL && t->sigil != '\0')
        t->inner++;
    c = memmem(s + t->inner, p->len - t->inner, close, strlen(close));
    if (c == NULL)
        return syntax(p, t->at, "unclosed tag: '%s' without its '%s'", p->otag, close);
    t->end = (size_t)(c - s);
    after = t->end + strlen(close);
    t->from = t->inner;
    t->to = t->end;
    while (t->from < t->to && is_space(s[t->from]))
        t->from++;
    while (t->to > t->from && is_space(s[t->to - 1]))
        t->to--;

    /* standalone: only spaces between the line's start and the tag, and after it */
    can_stand = t->sigil != '\0' && strchr("#^/!>=", t->sigil) != NULL;
    i = t->at;
    while (i > pos && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    j = after;
    while (j < p->len && (s[j] == ' ' || s[j] == '\t'))
        j++;
    t->indent = i;
    t->standalone =
        can_stand && (i == 0 || s[i - 1] == '\n') &&
        (j == p->len || s[j] == '\n' || (s[j] == '\r' && j + 1 < p->len && s[j + 1] == '\n'));
    t->text_end = t->standalone ? i : t->at;
    t->next = !t->standalone ? after : j == p->len ? j : s[j] == '\n' ? j + 1 : j + 2;
    return 0;
}

/* {{/name}}: it must close the section opened last. */
static int close_section(struct parser *p, const struct tag *t)
{
    const char *s = p->s;
    struct op *op;

    if (p->depth == 0)
        return syntax(p, t->at, "'%s/%.*s%s' closes a section that was never opened", p->otag,
                      (int)(t->to - t->from), s + t->from, p->ctag);
    op = &p->t->ops[p->open[p->depth - 1]];
    if (strlen(op->use.name) != t->to - t->from ||
        memcmp(op->use.name, s + t->from, t->to - t->from) != 0)
        return syntax(p, t->at, "'%s/%.*s%s' closes the section '%s' opened at line %d", p->otag,
                      (int)(t->to - t->from), s + t->from, p->ctag, op->use.name, op->use.line);
    op->end = p->t->nops;
    p->depth--;
    return 0;
}

/* {{> name}}: the partial, compiled (once) with the indentation of a standalone tag. */
static int add_partial(struct parser *p, const struct tag *t)
{
    char name[256], indent[256];
    const struct template *partial = NULL;
    size_t index;
    int rc;

    if (t->to == t->from)
        return syntax(p, t->at, "a partial needs a name: {{> footer}}");
    if (t->to - t->from >= sizeof name)
        return syntax(p, t->at, "a partial's name is at most %zu bytes", sizeof name - 1);
    memcpy(name, p->s + t->from, t->to - t->from);
    name[t->to - t->from] = '\0';
    snprintf(indent, sizeof indent, "%.*s", t->standalone ? (int)(t->at - t->indent) : 0,
             p->s + t->indent);
    if (push_op(p, OP_PARTIAL) == NULL)
        return oom(p);
    index = p->t->nops - 1;
    if ((rc = get_partial(p, name, indent, t->at, &partial)) < 0)
        return rc;
    /* get_partial may have grown this template's ops: index, not pointer */
    p->t->ops[index].partial = partial;
    return 0;
}

/* A variable, a raw variable, or the start of a section or an inverted section. */
static int add_use(struct parser *p, const struct tag *t)
{
    char sigil = t->sigil;
    struct op *op;
    int rc;

    if (t->to == t->from)
        return syntax(p, t->at, "empty tag: a placeholder needs a name, as in {{first_name}}");
    op = push_op(p, sigil == '#'                   ? OP_SECTION
                    : sigil == '^'                 ? OP_INVERTED
                    : sigil == '{' || sigil == '&' ? OP_RAW
                                                   : OP_VAR);
    if (op == NULL)
        return oom(p);
    op->use.kind = sigil == '#'   ? TEMPLATE_USE_SECTION
                   : sigil == '^' ? TEMPLATE_USE_INVERTED
                                  : TEMPLATE_USE_VARIABLE;
    if ((rc = set_name(p, op, t->from, t->to, t->at)) < 0)
        return rc;
    if (sigil == '#' || sigil == '^') {
        if (p->depth == MAX_NESTING)
            return syntax(p, t->at, "sections nested deeper than %d", MAX_NESTING);
        p->open[p->depth++] = p->t->nops - 1;
    }
    return 0;
}

/* "{{=<% %>=}}": two new delimiters, without spaces or '=' in them. */
static int set_delimiters(struct parser *p, size_t from, size_t to, size_t tag)
{
    const char *s = p->s;
    size_t a = from, b, c, d;

    while (a < to && is_space(s[a]))
        a++;
    b = a;
    while (b < to && !is_space(s[b]))
        b++;
    c = b;
    while (c < to && is_space(s[c]))
        c++;
    d = c;
    while (d < to && !is_space(s[d]))
        d++;
    while (d < to && is_space(s[d]))
        d++;
    if (b == a || d == c || d != to)
        return syntax(p, tag, "a delimiter tag needs two delimiters: {{=<%% %%>=}}");
    while (d > c && is_space(s[d - 1]))
        d--;
    if (b - a > MAX_DELIMITER || d - c > MAX_DELIMITER || memchr(s + a, '=', b - a) != NULL ||
        memchr(s + c, '=', d - c) != NULL)
        return syntax(p, tag, "delimiters are at most %d characters, without '='", MAX_DELIMITER);
    memcpy(p->otag, s + a, b - a);
    p->otag[b - a] = '\0';
    p->olen = b - a;
    memcpy(p->ctag, s + c, d - c);
    p->ctag[d - c] = '\0';
    p->clen = d - c;
    return 0;
}

static int parse(struct parser *p)
{
    size_t pos = 0;
    int rc;

    while (pos < p->len) {
        const char *o = memmem(p->s + pos, p->len - pos, p->otag, p->olen);
        struct tag t = {0};

        if (o == NULL)
            return emit_text(p, pos, p->len);
        if ((rc = find_tag(p, o, pos, &t)) < 0 || (rc = emit_text(p, pos, t.text_end)) < 0)
            return rc;
        /*
         * Templates are read with their length, so a NUL byte can sit in a tag; C
         * strings would cut a name or a delimiter there and use another one.
         */
        if (t.sigil != '!' && memchr(p->s + t.inner, '\0', t.end - t.inner) != NULL)
            return syntax(p, t.at, "a tag cannot contain a NUL byte");
        switch (t.sigil) {
        case '!':
            rc = 0;
            break;
        case '=':
            rc = set_delimiters(p, t.inner, t.end, t.at);
            break;
        case '/':
            rc = close_section(p, &t);
            break;
        case '>':
            rc = add_partial(p, &t);
            break;
        default:
            rc = add_use(p, &t);
            break;
        }
        if (rc < 0)
            return rc;
        pos = t.next;
    }
    return 0;
}

static int compile_text(struct template *t, int first_line, int first_column,
                        struct blast_error *err)
{
    struct parser p;
    int rc;

    memset(&p, 0, sizeof p);
    p.t = t;
    p.s = t->text;
    p.len = t->len;
    memcpy(p.otag, "{{", 3);
    memcpy(p.ctag, "}}", 3);
    p.olen = p.clen = 2;
    p.line = first_line;
    p.column = first_column;
    p.indent = t->indent != NULL ? (int)strlen(t->indent) : 0;
    p.err = err;
    if ((rc = parse(&p)) < 0)
        return rc;
    if (p.depth > 0) {
        const struct op *op = &t->ops[p.open[p.depth - 1]];
        return blast_error_set(err, BLAST_ESYNTAX, t->source, op->use.line, op->use.column,
                               "the section '%s' is never closed (no {{/%s}})", op->use.name,
                               op->use.name);
    }
    return 0;
}

/*
 * Forget every template registered since the lib held first ones: a compile
 * failed, so they are half-built (a section without its end, an operation without
 * its name) or point at one that is. Left in the cache, a partial that failed
 * would be handed to the next template that includes it, as if it had compiled.
 * Nothing older points at them: templates compiled before are complete.
 */
static void lib_drop_from(struct template_lib *lib, size_t first)
{
    while (lib->n > first)
        template_free(lib->all[--lib->n]);
}

int template_compile(struct template_lib *lib, const char *text, size_t len, const char *source,
                     int first_line, int first_column, enum template_mode mode,
                     const struct template **out, struct blast_error *err)
{
    size_t first = lib->n;
    struct template *t;
    int rc;

    *out = NULL;
    t = lib_add(lib, source, mode);
    if (t == NULL || (t->text = malloc(len + 1)) == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, source, 0, 0, "out of memory");
        goto out;
    }
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    t->len = len;
    if ((rc = compile_text(t, first_line, first_column, err)) < 0)
        goto out;
    *out = t;
out:
    if (rc < 0)
        lib_drop_from(lib, first);
    return rc;
}

int template_load(struct template_lib *lib, const char *path, enum template_mode mode,
                  const struct template **out, struct blast_error *err)
{
    struct buf b = BUF_INIT;
    int rc;

    *out = NULL;
    if ((rc = buf_read_file(&b, path, err)) < 0)
        goto out;
    rc = template_compile(lib, b.data != NULL ? b.data : "", b.len, path, 1, 1, mode, out, err);
out:
    buf_free(&b);
    return rc;
}

/* ---- rendering ----------------------------------------------------------------------- */

struct render {
    const struct template_data *d;
    struct buf *out;
    size_t out_start; /* out's length when the rendering began */
    size_t steps;     /* operations run and list items entered so far */
    struct template_value stack[MAX_NESTING + 2];
    size_t depth;
    int nesting;
};

/*
 * Sections nested over lists multiply: 30 sections over a list of 2 run 2^30
 * times, and a few partials that each include the next twice do the same. So a
 * rendering stops past a budget of work and of output (template.h).
 */
static bool over_budget(struct render *r)
{
    return ++r->steps > TEMPLATE_RENDER_MAX_STEPS ||
           r->out->len - r->out_start > TEMPLATE_RENDER_MAX_BYTES;
}

static bool resolve(const struct render *r, const struct template_use *use,
                    struct template_value *v)
{
    const struct template_data *d = r->d;
    size_t i, k;

    if (use->nparts == 0) {
        *v = r->stack[r->depth - 1];
        return true;
    }
    /* the first part is looked up from the innermost context out; the rest only inside it */
    for (i = r->depth; i-- > 0;)
        if (d->kind(d->ctx, r->stack[i]) == TEMPLATE_MAP &&
            d->get(d->ctx, r->stack[i], use->parts[0], v))
            break;
    if (i == (size_t)-1)
        return false;
    for (k = 1; k < use->nparts; k++)
        if (d->kind(d->ctx, *v) != TEMPLATE_MAP || !d->get(d->ctx, *v, use->parts[k], v))
            return false;
    return true;
}

static const char hex[] = "0123456789abcdef";

static int append_escaped(struct buf *out, enum template_mode mode, const char *v, size_t len)
{
    size_t i, run = 0;
    int rc;

    if (mode == TEMPLATE_TEXT)
        return buf_append(out, v, len);
    if ((rc = buf_reserve(out, len + len / 4)) < 0)
        return rc;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        const char *rep = NULL;
        char pct[3];
        size_t rlen;

        if (mode == TEMPLATE_HTML) {
            rep = c == '&'    ? "&amp;"
                  : c == '<'  ? "&lt;"
                  : c == '>'  ? "&gt;"
                  : c == '"'  ? "&quot;"
                  : c == '\'' ? "&#39;"
                              : NULL;
            if (rep == NULL)
                continue;
            rlen = strlen(rep);
        } else {
            /* RFC 3986 §2.3: unreserved characters stay, everything else is %xx, in
             * lower case (§2.1 makes the cases equivalent): SpamAssassin's
             * UNRESOLVED_TEMPLATE takes "%BF" in a header for an unfilled template */
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~')
                continue;
            pct[0] = '%';
            pct[1] = hex[c >> 4];
            pct[2] = hex[c & 15];
            rep = pct;
            rlen = 3;
        }
        if ((rc = buf_append(out, v + run, i - run)) < 0 || (rc = buf_append(out, rep, rlen)) < 0)
            return rc;
        run = i + 1;
    }
    return buf_append(out, v + run, len - run);
}

static int render_ops(struct render *r, const struct template *t, size_t from, size_t to);

static int render_section(struct render *r, const struct template *t, size_t i)
{
    const struct op *op = &t->ops[i];
    const struct template_data *d = r->d;
    struct template_value v;
    enum template_kind k = TEMPLATE_NULL;
    size_t n, j;
    int rc = 0;

    if (resolve(r, &op->use, &v))
        k = d->kind(d->ctx, v);
    n = k == TEMPLATE_LIST ? d->count(d->ctx, v) : 0;
    if (op->kind == OP_INVERTED) {
        if (k == TEMPLATE_NULL || k == TEMPLATE_FALSE || (k == TEMPLATE_LIST && n == 0))
            rc = render_ops(r, t, i + 1, op->end);
        return rc;
    }
    if (k == TEMPLATE_NULL || k == TEMPLATE_FALSE)
        return 0;
    if (r->depth > MAX_NESTING)
        return BLAST_EINVAL;
    if (k != TEMPLATE_LIST) {
        r->stack[r->depth++] = v;
        rc = render_ops(r, t, i + 1, op->end);
        r->depth--;
        return rc;
    }
    for (j = 0; j < n && rc == 0; j++) {
        if (over_budget(r))
            return BLAST_EINVAL;
        r->stack[r->depth++] = d->item(d->ctx, v, j);
        rc = render_ops(r, t, i + 1, op->end);
        r->depth--;
    }
    return rc;
}

static int render_ops(struct render *r, const struct template *t, size_t from, size_t to)
{
    const struct template_data *d = r->d;
    size_t i;
    int rc = 0;

    for (i = from; i < to && rc == 0; i++) {
        const struct op *op = &t->ops[i];
        struct template_value v;
        enum template_kind k;
        const char *s;
        size_t len;

        if (over_budget(r))
            return BLAST_EINVAL;
        switch (op->kind) {
        case OP_TEXT:
            rc = buf_append(r->out, t->text + op->off, op->len);
            break;
        case OP_VAR:
        case OP_RAW:
            if (!resolve(r, &op->use, &v))
                break;
            k = d->kind(d->ctx, v);
            if (k == TEMPLATE_NULL || k == TEMPLATE_LIST || k == TEMPLATE_MAP)
                break;
            d->text(d->ctx, v, &s, &len);
            rc = append_escaped(r->out, op->kind == OP_RAW ? TEMPLATE_TEXT : t->mode, s, len);
            break;
        case OP_SECTION:
        case OP_INVERTED:
            rc = render_section(r, t, i);
            i = op->end - 1;
            break;
        case OP_PARTIAL:
            if (op->partial == NULL)
                break;
            if (++r->nesting > MAX_NESTING)
                return BLAST_EINVAL;
            rc = render_ops(r, op->partial, 0, op->partial->nops);
            r->nesting--;
            break;
        }
    }
    return rc;
}

int template_render(const struct template *t, const struct template_data *data,
                    struct template_value root, struct buf *out)
{
    struct render r;

    r.d = data;
    r.out = out;
    r.out_start = out->len;
    r.steps = 0;
    r.stack[0] = root;
    r.depth = 1;
    r.nesting = 0;
    return render_ops(&r, t, 0, t->nops);
}

/* ---- visiting names -------------------------------------------------------------------- */

struct visit {
    template_visit_fn fn;
    void *arg;
    const struct template_use *sections[MAX_NESTING + 1];
    size_t depth;
    const struct template **seen;
    size_t nseen, capseen;
};

static int visit_ops(struct visit *v, const struct template *t, size_t from, size_t to)
{
    size_t i, k;
    int rc;

    for (i = from; i < to; i++) {
        const struct op *op = &t->ops[i];

        if (op->kind == OP_VAR || op->kind == OP_RAW) {
            v->fn(v->arg, &op->use, v->sections, v->depth);
        } else if (op->kind == OP_SECTION || op->kind == OP_INVERTED) {
            v->fn(v->arg, &op->use, v->sections, v->depth);
            if (v->depth < MAX_NESTING) {
                v->sections[v->depth++] = &op->use;
                rc = visit_ops(v, t, i + 1, op->end);
                v->depth--;
                if (rc < 0)
                    return rc;
            }
            i = op->end - 1;
        } else if (op->kind == OP_PARTIAL && op->partial != NULL) {
            /* once per file, whatever its indentation */
            for (k = 0; k < v->nseen; k++)
                if (strcmp(v->seen[k]->source, op->partial->source) == 0)
                    break;
            if (k < v->nseen)
                continue;
            if (v->nseen == v->capseen) {
                size_t cap = v->capseen != 0 ? v->capseen * 2 : 8;
                const struct template **seen = realloc(v->seen, cap * sizeof *seen);
                if (seen == NULL)
                    return BLAST_ENOMEM;
                v->seen = seen;
                v->capseen = cap;
            }
            v->seen[v->nseen++] = op->partial;
            if ((rc = visit_ops(v, op->partial, 0, op->partial->nops)) < 0)
                return rc;
        }
    }
    return 0;
}

int template_visit(const struct template *t, template_visit_fn fn, void *arg)
{
    struct visit v;
    int rc;

    memset(&v, 0, sizeof v);
    v.fn = fn;
    v.arg = arg;
    rc = visit_ops(&v, t, 0, t->nops);
    free(v.seen);
    return rc;
}
