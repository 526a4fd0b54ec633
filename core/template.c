/*
 * template - compile placeholders into a flat list of operations. See template.h.
 *
 * Compiling splits the text into literal runs and variables once; rendering walks
 * that list and never re-parses, so the per-recipient cost is the copying of bytes
 * and one lookup per variable.
 */
#include "template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op_kind { OP_TEXT, OP_VAR, OP_RAW };

struct op {
    enum op_kind kind;
    size_t off, len; /* literal bytes in t->text, or the name in t->names */
    char *name;
    int line, column;
};

struct template
{
    char *source;
    char *text;
    size_t len;
    enum template_mode mode;
    struct op *ops;
    size_t nops, capops;
    /* variables only, for template_name() */
    size_t *vars;
    size_t nvars;
};

static int push_op(struct template *t, struct op op)
{
    if (t->nops == t->capops) {
        size_t cap = t->capops != 0 ? t->capops * 2 : 16;
        struct op *o = realloc(t->ops, cap * sizeof *o);
        if (o == NULL)
            return BLAST_ENOMEM;
        t->ops = o;
        t->capops = cap;
    }
    t->ops[t->nops++] = op;
    return 0;
}

/* Advance line/column over text[from, to). Columns count characters, not bytes. */
static void advance(const char *text, size_t from, size_t to, int *line, int *column)
{
    size_t i;

    for (i = from; i < to; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*column)++;
        }
    }
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || (unsigned char)c >= 0x80;
}

static int compile(struct template *t, int line, int column, struct blast_error *err)
{
    const char *s = t->text;
    size_t i = 0, lit = 0;
    int rc;

    while (i < t->len) {
        const char *open = memmem(s + i, t->len - i, "{{", 2);
        size_t tag, body, end, close_len = 2, nb, ne;
        int tline, tcol;
        enum op_kind kind = OP_VAR;
        struct op op;

        if (open == NULL)
            break;
        tag = (size_t)(open - s);
        advance(s, lit, tag, &line, &column);
        lit = tag;
        tline = line;
        tcol = column;
        body = tag + 2;
        if (body < t->len && s[body] == '{') {
            kind = OP_RAW;
            body++;
            close_len = 3;
        }
        {
            const char *close =
                memmem(s + body, t->len - body, close_len == 3 ? "}}}" : "}}", close_len);
            if (close == NULL)
                return blast_error_set(err, BLAST_ESYNTAX, t->source, tline, tcol,
                                       "unclosed tag: '%s' without a matching '%s'",
                                       close_len == 3 ? "{{{" : "{{",
                                       close_len == 3 ? "}}}" : "}}");
            end = (size_t)(close - s);
        }
        nb = body;
        ne = end;
        if (kind == OP_VAR && nb < ne) {
            char sigil = s[nb];
            if (sigil == '!') {
                /* comment: emit the literal before it and skip the whole tag */
                op.kind = OP_TEXT;
                op.off = i;
                op.len = tag - i;
                op.name = NULL;
                op.line = op.column = 0;
                if (op.len > 0 && (rc = push_op(t, op)) < 0)
                    return rc;
                advance(s, tag, end + close_len, &line, &column);
                i = lit = end + close_len;
                continue;
            }
            if (sigil == '&') {
                kind = OP_RAW;
                nb++;
            } else if (strchr("#^/>=<$", sigil) != NULL) {
                return blast_error_set(err, BLAST_ESYNTAX, t->source, tline, tcol,
                                       "'{{%c' tags are not supported; use {{name}}, {{{name}}}, "
                                       "{{& name}} or {{! comment}}",
                                       sigil);
            }
        }
        while (nb < ne && (s[nb] == ' ' || s[nb] == '\t'))
            nb++;
        while (ne > nb && (s[ne - 1] == ' ' || s[ne - 1] == '\t'))
            ne--;
        if (nb == ne)
            return blast_error_set(err, BLAST_ESYNTAX, t->source, tline, tcol,
                                   "empty tag: a placeholder needs a name, as in {{first_name}}");
        for (size_t k = nb; k < ne; k++)
            if (!name_char_ok(s[k]))
                return blast_error_set(err, BLAST_ESYNTAX, t->source, tline, tcol,
                                       "invalid character in placeholder name '%.*s'",
                                       (int)(ne - nb), s + nb);
        op.kind = OP_TEXT;
        op.off = i;
        op.len = tag - i;
        op.name = NULL;
        op.line = op.column = 0;
        if (op.len > 0 && (rc = push_op(t, op)) < 0)
            return rc;
        op.kind = kind;
        op.off = 0;
        op.len = ne - nb;
        op.name = strndup(s + nb, ne - nb);
        op.line = tline;
        op.column = tcol;
        if (op.name == NULL)
            return BLAST_ENOMEM;
        if ((rc = push_op(t, op)) < 0) {
            free(op.name);
            return rc;
        }
        advance(s, tag, end + close_len, &line, &column);
        i = lit = end + close_len;
    }
    if (i < t->len) {
        struct op op = {OP_TEXT, i, t->len - i, NULL, 0, 0};
        if ((rc = push_op(t, op)) < 0)
            return rc;
    }
    return 0;
}

int template_compile(const char *text, size_t len, const char *source, int first_line,
                     int first_column, enum template_mode mode, struct template **out,
                     struct blast_error *err)
{
    struct template *t;
    size_t i;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return blast_error_set(err, BLAST_ENOMEM, source, 0, 0, "out of memory");
    t->mode = mode;
    t->len = len;
    t->source = strdup(source != NULL ? source : "");
    t->text = malloc(len + 1);
    if (t->source == NULL || t->text == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, source, 0, 0, "out of memory");
        goto out;
    }
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    if ((rc = compile(t, first_line, first_column, err)) < 0) {
        if (rc == BLAST_ENOMEM)
            blast_error_set(err, rc, source, 0, 0, "out of memory");
        goto out;
    }
    t->vars = malloc((t->nops + 1) * sizeof *t->vars);
    if (t->vars == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, source, 0, 0, "out of memory");
        goto out;
    }
    for (i = 0; i < t->nops; i++)
        if (t->ops[i].kind != OP_TEXT)
            t->vars[t->nvars++] = i;
    *out = t;
    t = NULL;
    rc = 0;
out:
    template_free(t);
    return rc;
}

int template_load(const char *path, enum template_mode mode, struct template **out,
                  struct blast_error *err)
{
    struct buf b = BUF_INIT;
    char chunk[16384];
    FILE *f;
    size_t n;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open template: %s",
                               strerror(errno));
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) < 0) {
            rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
            goto out;
        }
    if (ferror(f)) {
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "read error: %s", strerror(errno));
        goto out;
    }
    rc = template_compile(b.data != NULL ? b.data : "", b.len, path, 1, 1, mode, out, err);
out:
    fclose(f);
    buf_free(&b);
    return rc;
}

void template_free(struct template *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->nops; i++)
        free(t->ops[i].name);
    free(t->ops);
    free(t->vars);
    free(t->text);
    free(t->source);
    free(t);
}

/* HTML escaping of & < > " ' (the Mustache set). */
static int append_html(struct buf *out, const char *v, size_t len)
{
    size_t i, run = 0;
    int rc;

    for (i = 0; i < len; i++) {
        const char *rep;
        switch (v[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        if ((rc = buf_append(out, v + run, i - run)) < 0 || (rc = buf_puts(out, rep)) < 0)
            return rc;
        run = i + 1;
    }
    return buf_append(out, v + run, len - run);
}

int template_render(const struct template *t, template_lookup_fn lookup, void *arg, struct buf *out)
{
    size_t i;
    int rc;

    for (i = 0; i < t->nops; i++) {
        const struct op *op = &t->ops[i];
        const char *v;
        size_t vlen;

        if (op->kind == OP_TEXT) {
            rc = buf_append(out, t->text + op->off, op->len);
        } else if (!lookup(arg, op->name, &v, &vlen)) {
            continue;
        } else if (op->kind == OP_VAR && t->mode == TEMPLATE_HTML) {
            rc = append_html(out, v, vlen);
        } else {
            rc = buf_append(out, v, vlen);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

size_t template_nnames(const struct template *t)
{
    return t->nvars;
}

const char *template_name(const struct template *t, size_t i, int *line, int *column)
{
    const struct op *op;

    if (i >= t->nvars)
        return NULL;
    op = &t->ops[t->vars[i]];
    if (line != NULL)
        *line = op->line;
    if (column != NULL)
        *column = op->column;
    return op->name;
}

const char *template_source(const struct template *t)
{
    return t->source;
}
