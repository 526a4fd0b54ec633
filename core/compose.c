/*
 * compose - from a recipient row to message bytes. See compose.h.
 */
#include "compose.h"
#include "mime.h"
#include "template.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const compose_builtins[] = {"email", "name", "campaign", "row", NULL};

struct compose {
    const struct campaign *c;
    const struct recipients *list;
    struct template *subject, *text, *html;
    int email_col;
    int name_col; /* -1 when the campaign has no name column */
    struct address from, envelope_from, reply_to;
    bool has_reply_to;
    size_t ntemplates, nplaceholders;
};

/* What a template lookup sees while one row is being rendered. */
struct row_data {
    const struct compose *cp;
    const struct recipients_row *row;
    char rownum[24];
};

static bool lookup(void *arg, const char *name, const char **value, size_t *len)
{
    const struct row_data *d = arg;
    const struct campaign_value *v;
    int i = recipients_column_index(d->cp->list, name);

    if (i >= 0 && (size_t)i < d->row->nfields) {
        *value = d->row->fields[i];
        *len = d->row->lens[i];
        return true;
    }
    v = campaign_var(d->cp->c, name);
    if (v != NULL && v->kind == CAMPAIGN_VALUE_STRING) {
        *value = v->string;
        *len = strlen(v->string);
        return true;
    }
    if (strcmp(name, "email") == 0) {
        *value = d->row->fields[d->cp->email_col];
        *len = d->row->lens[d->cp->email_col];
        return true;
    }
    if (strcmp(name, "name") == 0 && d->cp->name_col >= 0) {
        *value = d->row->fields[d->cp->name_col];
        *len = d->row->lens[d->cp->name_col];
        return true;
    }
    if (strcmp(name, "campaign") == 0) {
        *value = d->cp->c->name;
        *len = strlen(d->cp->c->name);
        return true;
    }
    if (strcmp(name, "row") == 0) {
        *value = d->rownum;
        *len = strlen(d->rownum);
        return true;
    }
    return false;
}

static bool known_name(const struct compose *cp, const char *name)
{
    const struct campaign_value *v;
    size_t k;

    if (recipients_column_index(cp->list, name) >= 0)
        return true;
    v = campaign_var(cp->c, name);
    if (v != NULL)
        return v->kind == CAMPAIGN_VALUE_STRING;
    if (strcmp(name, "name") == 0)
        return cp->name_col >= 0;
    for (k = 0; compose_builtins[k] != NULL; k++)
        if (strcmp(name, compose_builtins[k]) == 0)
            return true;
    return false;
}

/* Candidates for "did you mean": columns, top-level vars, built-ins. */
static const char **candidates_of(const struct compose *cp)
{
    size_t n = recipients_ncolumns(cp->list), k = 0, i;
    const char **c = calloc(n + cp->c->vars.n + 8, sizeof *c);

    if (c == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        c[k++] = recipients_column_name(cp->list, i);
    for (i = 0; i < cp->c->vars.n; i++)
        c[k++] = cp->c->vars.keys[i];
    for (i = 0; compose_builtins[i] != NULL; i++)
        if (strcmp(compose_builtins[i], "name") != 0 || cp->name_col >= 0)
            c[k++] = compose_builtins[i];
    return c;
}

/* Every placeholder of t must be a column, a var or a built-in. */
static int check_names(struct compose *cp, const struct template *t, const struct blast_diag *diag,
                       struct blast_error *err)
{
    const char **candidates = candidates_of(cp);
    size_t i;
    int rc = 0;

    if (candidates == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    cp->ntemplates++;
    for (i = 0; i < template_nnames(t); i++) {
        int line, col;
        const char *name = template_name(t, i, &line, &col), *near;
        const struct campaign_value *v;
        struct blast_error e;

        cp->nplaceholders++;
        if (known_name(cp, name))
            continue;
        blast_error_clear(&e);
        v = campaign_var(cp->c, name);
        near = text_nearest(name, candidates);
        if (v != NULL)
            blast_error_set(&e, BLAST_EINVAL, template_source(t), line, col,
                            "placeholder '{{%s}}' names a group of vars, not a value", name);
        else
            blast_error_set(&e, BLAST_EINVAL, template_source(t), line, col,
                            "unknown placeholder '{{%s}}': not a column of %s, a var or a "
                            "built-in%s%s%s",
                            name, recipients_path(cp->list), near ? " (did you mean '" : "",
                            near ? near : "", near ? "'?)" : "");
        rc = blast_error_set(err, e.code, e.source, e.line, e.column, "%s", e.text);
        if (diag == NULL)
            break;
        diag->report(diag->arg, &e);
    }
    free(candidates);
    return rc;
}

static int parse_campaign_mailbox(const struct campaign *c, const char *value,
                                  const struct campaign_place *place, bool bare,
                                  struct address *out, struct blast_error *err)
{
    struct blast_error aerr;

    blast_error_clear(&aerr);
    if ((bare ? address_parse(value, out, &aerr) : address_parse_mailbox(value, out, &aerr)) < 0)
        return blast_error_set(err, aerr.code, c->path, place->line, place->column, "%s",
                               aerr.text);
    return 0;
}

/* Load and check one template; with a diag, a failure is reported and the next goes on. */
static int load_checked(struct compose *cp, struct template **t, int rc_load, const char *key,
                        const struct campaign_place *place, const struct blast_diag *diag,
                        struct blast_error *e, struct blast_error *err)
{
    int rc = rc_load;

    if (rc == BLAST_EIO && e->line == 0 && place != NULL) {
        /* a missing file: blame the campaign line that names it */
        char text[BLAST_ERROR_TEXT_MAX];
        snprintf(text, sizeof text, "%s: %s: %s", key, e->source, e->text);
        blast_error_replace(e, rc, cp->c->path, place->line, place->column, "%s", text);
    }

    if (rc == 0)
        rc = check_names(cp, *t, diag, e);
    else if (diag != NULL)
        diag->report(diag->arg, e);
    if (rc < 0)
        blast_error_set(err, rc, e->source, e->line, e->column, "%s", e->text);
    return rc;
}

int compose_new(const struct campaign *c, const struct recipients *list, const struct screen *s,
                const struct blast_diag *diag, struct compose **out, struct blast_error *err)
{
    struct compose *cp;
    struct blast_error e;
    int rc, first = 0;

    *out = NULL;
    cp = calloc(1, sizeof *cp);
    if (cp == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    cp->c = c;
    cp->list = list;
    cp->email_col = screen_email_column(s);
    cp->name_col = screen_name_column(s);
    if ((rc = parse_campaign_mailbox(c, c->from, &c->from_place, false, &cp->from, err)) < 0 ||
        (rc = parse_campaign_mailbox(c, c->envelope_from ? c->envelope_from : cp->from.envelope,
                                     c->envelope_from ? &c->envelope_from_place : &c->from_place,
                                     true, &cp->envelope_from, err)) < 0)
        goto out;
    if (c->reply_to != NULL) {
        if ((rc = parse_campaign_mailbox(c, c->reply_to, &c->reply_to_place, false, &cp->reply_to,
                                         err)) < 0)
            goto out;
        cp->has_reply_to = true;
    }
    /* each template is checked even when an earlier one failed, so check lists them all */
    blast_error_clear(&e);
    rc = template_compile(c->subject, strlen(c->subject), c->path, c->subject_place.line,
                          c->subject_place.column, TEMPLATE_TEXT, &cp->subject, &e);
    if ((rc = load_checked(cp, &cp->subject, rc, "subject", NULL, diag, &e, err)) < 0 &&
        diag == NULL)
        goto out;
    first = rc;
    if (c->body.text != NULL) {
        blast_error_clear(&e);
        rc = template_load(c->body.text, TEMPLATE_TEXT, &cp->text, &e);
        if ((rc = load_checked(cp, &cp->text, rc, "body.text", &c->body.text_place, diag, &e,
                               err)) < 0 &&
            diag == NULL)
            goto out;
        first = first < 0 ? first : rc;
    }
    if (c->body.html != NULL) {
        blast_error_clear(&e);
        rc = template_load(c->body.html, TEMPLATE_HTML, &cp->html, &e);
        if ((rc = load_checked(cp, &cp->html, rc, "body.html", &c->body.html_place, diag, &e,
                               err)) < 0 &&
            diag == NULL)
            goto out;
        first = first < 0 ? first : rc;
    }
    if ((rc = first) < 0)
        goto out;
    *out = cp;
    cp = NULL;
out:
    compose_free(cp);
    return rc;
}

void compose_free(struct compose *cp)
{
    if (cp == NULL)
        return;
    template_free(cp->subject);
    template_free(cp->text);
    template_free(cp->html);
    address_free(&cp->from);
    address_free(&cp->envelope_from);
    address_free(&cp->reply_to);
    free(cp);
}

const struct address *compose_envelope_from(const struct compose *cp)
{
    return &cp->envelope_from;
}

size_t compose_ntemplates(const struct compose *cp)
{
    return cp->ntemplates;
}

size_t compose_nplaceholders(const struct compose *cp)
{
    return cp->nplaceholders;
}

void compose_result_init(struct compose_result *res)
{
    memset(res, 0, sizeof *res);
    buf_init(&res->message);
    buf_init(&res->scratch);
    buf_init(&res->scratch2);
    buf_init(&res->scratch3);
}

void compose_result_free(struct compose_result *res)
{
    buf_free(&res->message);
    buf_free(&res->scratch);
    buf_free(&res->scratch2);
    buf_free(&res->scratch3);
}

int compose_row(struct compose *cp, const struct recipients_row *row, const struct address *to,
                struct compose_result *res, struct blast_error *err)
{
    struct row_data d;
    struct mime_message m;
    int rc;

    buf_reset(&res->message);
    buf_reset(&res->scratch);
    buf_reset(&res->scratch2);
    buf_reset(&res->scratch3);
    res->smtputf8 = to->needs_smtputf8 || cp->envelope_from.needs_smtputf8;

    d.cp = cp;
    d.row = row;
    snprintf(d.rownum, sizeof d.rownum, "%zu", row->row);
    if ((rc = template_render(cp->subject, lookup, &d, &res->scratch)) < 0 ||
        (cp->text != NULL && (rc = template_render(cp->text, lookup, &d, &res->scratch2)) < 0) ||
        (cp->html != NULL && (rc = template_render(cp->html, lookup, &d, &res->scratch3)) < 0))
        goto out;
    if (mime_message_id(cp->from.envelope + strlen(cp->from.local) + 1, res->message_id,
                        sizeof res->message_id) < 0) {
        rc =
            blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "From domain too long for a Message-ID");
        goto out;
    }
    memset(&m, 0, sizeof m);
    m.from = &cp->from;
    m.to = to;
    m.reply_to = cp->has_reply_to ? &cp->reply_to : NULL;
    m.subject = res->scratch.data != NULL ? res->scratch.data : "";
    m.subject_len = res->scratch.len;
    if (cp->text != NULL) {
        m.text = res->scratch2.data != NULL ? res->scratch2.data : "";
        m.text_len = res->scratch2.len;
    }
    if (cp->html != NULL) {
        m.html = res->scratch3.data != NULL ? res->scratch3.data : "";
        m.html_len = res->scratch3.len;
    }
    m.message_id = res->message_id;
    m.date = time(NULL);
    rc = mime_build(&m, &res->message, err);
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    return rc;
}
