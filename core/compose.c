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
    int i = recipients_column_index(d->cp->list, name);

    if (i >= 0 && (size_t)i < d->row->nfields) {
        *value = d->row->fields[i];
        *len = d->row->lens[i];
        return true;
    }
    if (strcmp(name, "email") == 0) {
        *value = d->row->fields[d->cp->email_col];
        *len = d->row->lens[d->cp->email_col];
        return true;
    }
    if (strcmp(name, "name") == 0) {
        if (d->cp->name_col < 0)
            return false;
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

/* Every placeholder of t must be a column or a built-in. */
static int check_names(const struct compose *cp, const struct template *t, struct blast_error *err)
{
    size_t i, n = recipients_ncolumns(cp->list), k;
    const char **candidates;
    int rc = 0;

    candidates = calloc(n + 5, sizeof *candidates);
    if (candidates == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (k = 0; k < n; k++)
        candidates[k] = recipients_column_name(cp->list, k);
    for (i = 0; compose_builtins[i] != NULL; i++)
        candidates[k++] = compose_builtins[i];
    for (i = 0; i < template_nnames(t); i++) {
        int line, col;
        const char *name = template_name(t, i, &line, &col), *near;
        bool known = recipients_column_index(cp->list, name) >= 0;

        for (k = 0; !known && compose_builtins[k] != NULL; k++)
            known = strcmp(name, compose_builtins[k]) == 0;
        if (strcmp(name, "name") == 0 && cp->name_col < 0 &&
            recipients_column_index(cp->list, name) < 0)
            known = false;
        if (known)
            continue;
        near = text_nearest(name, candidates);
        rc =
            blast_error_set(err, BLAST_EINVAL, template_source(t), line, col,
                            "unknown placeholder '{{%s}}': not a column of %s nor a built-in%s%s%s",
                            name, recipients_path(cp->list), near ? " (did you mean '" : "",
                            near ? near : "", near ? "'?)" : "");
        break;
    }
    free(candidates);
    return rc;
}

static int column(const struct compose *cp, const char *name, const struct campaign_place *place,
                  int *out, struct blast_error *err)
{
    struct buf cols = BUF_INIT;
    size_t i;
    int rc;

    *out = recipients_column_index(cp->list, name);
    if (*out >= 0)
        return 0;
    for (i = 0; i < recipients_ncolumns(cp->list); i++)
        buf_printf(&cols, "%s'%s'", i ? ", " : "", recipients_column_name(cp->list, i));
    if (place->line > 0)
        rc = blast_error_set(err, BLAST_EINVAL, cp->c->path, place->line, place->column,
                             "the recipient list %s has no column '%s' (its columns: %s)",
                             recipients_path(cp->list), name, cols.data ? cols.data : "");
    else
        rc = blast_error_set(err, BLAST_EINVAL, recipients_path(cp->list), 1, 1,
                             "no '%s' column in the header row (its columns: %s); name the "
                             "address column with recipients.email_column",
                             name, cols.data ? cols.data : "");
    buf_free(&cols);
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

int compose_new(const struct campaign *c, const struct recipients *list, struct compose **out,
                struct blast_error *err)
{
    struct compose *cp;
    int rc;

    *out = NULL;
    cp = calloc(1, sizeof *cp);
    if (cp == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    cp->c = c;
    cp->list = list;
    cp->name_col = -1;
    if ((rc = column(cp, c->recipients.email_column, &c->recipients.email_column_place,
                     &cp->email_col, err)) < 0)
        goto out;
    if (c->recipients.name_column != NULL &&
        (rc = column(cp, c->recipients.name_column, &c->recipients.name_column_place, &cp->name_col,
                     err)) < 0)
        goto out;
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
    if ((rc = template_compile(c->subject, strlen(c->subject), c->path, c->subject_place.line,
                               c->subject_place.column, TEMPLATE_TEXT, &cp->subject, err)) < 0 ||
        (rc = check_names(cp, cp->subject, err)) < 0)
        goto out;
    if (c->body.text != NULL &&
        ((rc = template_load(c->body.text, TEMPLATE_TEXT, &cp->text, err)) < 0 ||
         (rc = check_names(cp, cp->text, err)) < 0))
        goto out;
    if (c->body.html != NULL &&
        ((rc = template_load(c->body.html, TEMPLATE_HTML, &cp->html, err)) < 0 ||
         (rc = check_names(cp, cp->html, err)) < 0))
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
    address_free(&res->to);
    buf_free(&res->message);
    buf_free(&res->scratch);
    buf_free(&res->scratch2);
    buf_free(&res->scratch3);
}

static int recipient(const struct compose *cp, const struct recipients_row *row,
                     struct compose_result *res)
{
    struct blast_error aerr;
    const char *email = row->fields[cp->email_col];
    int rc;

    blast_error_clear(&aerr);
    if (row->lens[cp->email_col] == 0) {
        snprintf(res->reason, sizeof res->reason, "row %zu has no address in column '%s'", row->row,
                 cp->c->recipients.email_column);
        res->invalid = true;
        return 0;
    }
    rc = address_parse(email, &res->to, &aerr);
    if (rc == BLAST_ENOMEM)
        return rc;
    if (rc < 0) {
        snprintf(res->reason, sizeof res->reason, "%s", aerr.text);
        res->invalid = true;
        return 0;
    }
    if (cp->name_col >= 0 && row->lens[cp->name_col] > 0) {
        res->to.display = strdup(row->fields[cp->name_col]);
        if (res->to.display == NULL)
            return BLAST_ENOMEM;
    }
    return 0;
}

int compose_row(struct compose *cp, const struct recipients_row *row, const struct address *test_to,
                struct compose_result *res, struct blast_error *err)
{
    struct row_data d;
    struct mime_message m;
    int rc;

    address_free(&res->to);
    buf_reset(&res->message);
    buf_reset(&res->scratch);
    buf_reset(&res->scratch2);
    buf_reset(&res->scratch3);
    res->invalid = false;
    res->reason[0] = '\0';
    res->smtputf8 = false;
    snprintf(res->email, sizeof res->email, "%s", row->fields[cp->email_col]);

    if ((rc = recipient(cp, row, res)) < 0)
        goto out;
    if (res->invalid)
        return 0;
    if (test_to != NULL) {
        /* a test send: this row's content, delivered to the tester's mailbox */
        address_free(&res->to);
        if ((rc = address_parse(test_to->envelope, &res->to, err)) < 0)
            goto out;
    }
    res->smtputf8 = res->to.needs_smtputf8 || cp->envelope_from.needs_smtputf8;

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
    m.to = &res->to;
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
