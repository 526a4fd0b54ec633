/*
 * compose - from a recipient row to message bytes. See compose.h.
 */
#include "compose.h"
#include "verp.h"
#include "mime.h"
#include "template.h"
#include "text.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

const char *const compose_builtins[] = {"email", "name", "campaign", "row", NULL};

enum builtin { BUILTIN_EMAIL, BUILTIN_NAME, BUILTIN_CAMPAIGN, BUILTIN_ROW };

struct compose {
    const struct campaign *c;
    const struct recipients *list;
    struct template_lib *lib;
    const struct template *subject, *text, *html, *url, *feedback_id;
    const struct template **headers; /* c->nheaders */
    struct mime_part *attachments, *inline_parts;
    int email_col;
    int name_col; /* -1 when the campaign has no name column */
    struct address from, envelope_from, reply_to;
    /* the unsubscribe URL's host as written (UTF-8) and its A-label, when they differ */
    char *url_host, *url_host_ascii;
    char *mailto_uri; /* "<mailto:...?subject=unsubscribe>", ASCII, or NULL */
    char *list_id;    /* "<label.domain>" (RFC 2919) with List-Unsubscribe, or NULL */
    bool has_reply_to;
    const struct dkim *dkim;    /* NULL: messages are not signed */
    unsigned char *verp_secret; /* return_path's HMAC key (wiped at free), or NULL */
    size_t verp_secret_len;
    size_t ntemplates, nplaceholders;
    /* checking names */
    const struct blast_diag *diag;
    struct blast_error *err;
    int check_rc;
    const char **candidates;
};

/* ---- the data a template sees ------------------------------------------------------------ */

/* What a template lookup sees while one row is being rendered. */
struct row_data {
    const struct compose *cp;
    const struct recipients_row *row;
    char rownum[24];
};

/* template_value tags: the kind of thing p points at, and an index where needed */
enum { TAG_ROW, TAG_FIELD, TAG_VAR, TAG_BUILTIN };
#define TAG(kind, index) ((uintptr_t)(kind) | ((uintptr_t)(index) << 2))
#define TAG_KIND(tag)    ((int)((tag)&3))
#define TAG_INDEX(tag)   ((size_t)((tag) >> 2))

static void builtin_text(const struct row_data *d, size_t which, const char **s, size_t *len)
{
    switch (which) {
    case BUILTIN_EMAIL:
        *s = d->row->fields[d->cp->email_col];
        *len = d->row->lens[d->cp->email_col];
        return;
    case BUILTIN_NAME:
        *s = d->row->fields[d->cp->name_col];
        *len = d->row->lens[d->cp->name_col];
        return;
    case BUILTIN_CAMPAIGN:
        *s = d->cp->c->name;
        *len = strlen(*s);
        return;
    default:
        *s = d->rownum;
        *len = strlen(*s);
        return;
    }
}

static enum template_kind data_kind(void *ctx, struct template_value v)
{
    const struct row_data *d = ctx;
    const struct campaign_value *cv;
    const char *s;
    size_t len;

    switch (TAG_KIND(v.tag)) {
    case TAG_ROW:
        return TEMPLATE_MAP;
    case TAG_FIELD:
        /* docs/campaign.md: a CSV value is true when it is not empty */
        return d->row->lens[TAG_INDEX(v.tag)] > 0 ? TEMPLATE_SCALAR : TEMPLATE_FALSE;
    case TAG_BUILTIN:
        builtin_text(d, TAG_INDEX(v.tag), &s, &len);
        return len > 0 ? TEMPLATE_SCALAR : TEMPLATE_FALSE;
    default:
        cv = v.p;
        if (cv->kind == CAMPAIGN_VALUE_MAP)
            return TEMPLATE_MAP;
        if (cv->kind == CAMPAIGN_VALUE_LIST)
            return TEMPLATE_LIST;
        return cv->string[0] != '\0' ? TEMPLATE_SCALAR : TEMPLATE_FALSE;
    }
}

static bool var_get(const struct campaign_value *map, const char *key, struct template_value *out)
{
    size_t i;

    for (i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0) {
            out->p = &map->items[i];
            out->tag = TAG(TAG_VAR, 0);
            return true;
        }
    return false;
}

static bool data_get(void *ctx, struct template_value map, const char *key,
                     struct template_value *out)
{
    const struct row_data *d = ctx;
    int col;
    size_t i;

    if (TAG_KIND(map.tag) == TAG_VAR)
        return var_get(map.p, key, out);
    /* the row: its columns, then vars, then the built-ins */
    col = recipients_column_index(d->cp->list, key);
    if (col >= 0 && (size_t)col < d->row->nfields) {
        out->p = d;
        out->tag = TAG(TAG_FIELD, col);
        return true;
    }
    if (var_get(&d->cp->c->vars, key, out))
        return true;
    for (i = 0; compose_builtins[i] != NULL; i++)
        if (strcmp(key, compose_builtins[i]) == 0) {
            if (i == BUILTIN_NAME && d->cp->name_col < 0)
                return false;
            out->p = d;
            out->tag = TAG(TAG_BUILTIN, i);
            return true;
        }
    return false;
}

static void data_text(void *ctx, struct template_value v, const char **s, size_t *len)
{
    const struct row_data *d = ctx;

    switch (TAG_KIND(v.tag)) {
    case TAG_FIELD:
        *s = d->row->fields[TAG_INDEX(v.tag)];
        *len = d->row->lens[TAG_INDEX(v.tag)];
        return;
    case TAG_BUILTIN:
        builtin_text(d, TAG_INDEX(v.tag), s, len);
        return;
    case TAG_VAR:
        *s = ((const struct campaign_value *)v.p)->string;
        *len = strlen(*s);
        return;
    default:
        *s = "";
        *len = 0;
        return;
    }
}

static size_t data_count(void *ctx, struct template_value list)
{
    (void)ctx;
    return ((const struct campaign_value *)list.p)->n;
}

static struct template_value data_item(void *ctx, struct template_value list, size_t i)
{
    struct template_value v = {&((const struct campaign_value *)list.p)->items[i], TAG(TAG_VAR, 0)};

    (void)ctx;
    return v;
}

static const struct template_data row_data_ops = {NULL,      data_kind,  data_get,
                                                  data_text, data_count, data_item};

/* ---- partials ------------------------------------------------------------------------ */

static char *join(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash == NULL ? strdup(".") : strndup(path, (size_t)(slash - path));
}

static int read_file(const char *path, char **text, size_t *len, struct blast_error *err)
{
    struct buf b = BUF_INIT;
    int rc = buf_read_file(&b, path, err);

    *len = b.len;
    if (rc == 0 && (*text = buf_steal(&b)) == NULL)
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
    buf_free(&b);
    return rc;
}

static int find_partial(void *arg, const char *name, const char *source, enum template_mode mode,
                        char **text, size_t *len, char **path, struct blast_error *err)
{
    const struct compose *cp = arg;
    const char *exts[] = {"", ".mustache", mode == TEMPLATE_HTML ? ".html" : ".txt"};
    char *dirs[3] = {NULL, NULL, NULL};
    size_t d, e;
    int rc = 0;

    /* partial names stay inside the template directories */
    if (name[0] == '/' || strstr(name, "..") != NULL)
        return 0;
    dirs[0] = dir_of(source);
    dirs[1] = join(cp->c->dir, "templates", "");
    dirs[2] = join(cp->c->dir, "../templates", "");
    for (d = 0; d < 3 && rc == 0; d++) {
        if (dirs[d] == NULL) {
            rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            break;
        }
        for (e = 0; e < 3 && rc == 0; e++) {
            char *p = join(dirs[d], name, exts[e]);
            struct stat st;
            if (p == NULL) {
                rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
                break;
            }
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                rc = read_file(p, text, len, err);
                if (rc == 0) {
                    *path = p;
                    rc = 1;
                } else {
                    free(p);
                }
                break;
            }
            free(p);
        }
        if (rc == 1)
            break;
    }
    for (d = 0; d < 3; d++)
        free(dirs[d]);
    return rc;
}

/* ---- checking names ------------------------------------------------------------------- */

/* What a section makes the context, as far as can be known before any row is read. */
struct static_ctx {
    bool root;                      /* the row itself */
    const struct campaign_value *v; /* a vars map or list; NULL: a scalar or unknown */
};

static bool var_path(const struct campaign_value *v, const struct template_use *u, size_t from,
                     const struct campaign_value **out)
{
    size_t k, i;

    for (k = from; k < u->nparts; k++) {
        const struct campaign_value *next = NULL;
        if (v->kind == CAMPAIGN_VALUE_LIST) {
            /* a name inside a list section is looked up in its items */
            for (i = 0; i < v->n && next == NULL; i++)
                if (v->items[i].kind == CAMPAIGN_VALUE_MAP)
                    for (size_t j = 0; j < v->items[i].n; j++)
                        if (strcmp(v->items[i].keys[j], u->parts[k]) == 0)
                            next = &v->items[i].items[j];
        } else if (v->kind == CAMPAIGN_VALUE_MAP) {
            for (i = 0; i < v->n; i++)
                if (strcmp(v->keys[i], u->parts[k]) == 0)
                    next = &v->items[i];
        }
        if (next == NULL)
            return false;
        v = next;
    }
    *out = v;
    return true;
}

/*
 * Resolve u in the static contexts, innermost first, as the renderer will: true
 * when it names something; *var is the vars value it reaches, if any.
 */
static bool resolve_static(const struct compose *cp, const struct static_ctx *ctx, size_t n,
                           const struct template_use *u, const struct campaign_value **var)
{
    size_t i, k;

    *var = NULL;
    if (u->nparts == 0)
        return true;
    for (i = n; i-- > 0;) {
        if (ctx[i].root) {
            if (recipients_column_index(cp->list, u->parts[0]) >= 0)
                return u->nparts == 1;
            if (var_path(&cp->c->vars, u, 0, var))
                return true;
            for (k = 0; compose_builtins[k] != NULL; k++)
                if (strcmp(u->parts[0], compose_builtins[k]) == 0)
                    return u->nparts == 1 && (k != BUILTIN_NAME || cp->name_col >= 0);
            return false;
        }
        if (ctx[i].v != NULL && var_path(ctx[i].v, u, 0, var))
            return true;
    }
    return false;
}

static void check_use(void *arg, const struct template_use *use,
                      const struct template_use *const *sections, size_t nsections)
{
    struct compose *cp = arg;
    struct static_ctx ctx[101];
    const struct campaign_value *v;
    struct blast_error e;
    const char *near;
    size_t i, n = 1;

    cp->nplaceholders++;
    ctx[0].root = true;
    ctx[0].v = NULL;
    for (i = 0; i < nsections && n < 101; i++) {
        if (sections[i]->kind == TEMPLATE_USE_INVERTED)
            continue;
        ctx[n].root = false;
        ctx[n].v = resolve_static(cp, ctx, n, sections[i], &v) && v != NULL &&
                           v->kind != CAMPAIGN_VALUE_STRING
                       ? v
                       : NULL;
        n++;
    }
    blast_error_clear(&e);
    if (resolve_static(cp, ctx, n, use, &v)) {
        if (use->kind != TEMPLATE_USE_VARIABLE || v == NULL || v->kind == CAMPAIGN_VALUE_STRING)
            return;
        /* a map or a list prints as nothing: surely not what was meant */
        blast_error_set(&e, BLAST_EINVAL, use->source, use->line, use->column,
                        "placeholder '{{%s}}' names a %s of vars, not a value: use a dotted "
                        "name or a section",
                        use->name, v->kind == CAMPAIGN_VALUE_MAP ? "group" : "list");
        goto report;
    }
    near = text_nearest(use->name, cp->candidates);
    blast_error_set(&e, BLAST_EINVAL, use->source, use->line, use->column,
                    "unknown %s '{{%s%s}}': not a column of %s, a var or a built-in%s%s%s",
                    use->kind == TEMPLATE_USE_VARIABLE ? "placeholder" : "section",
                    use->kind == TEMPLATE_USE_SECTION    ? "#"
                    : use->kind == TEMPLATE_USE_INVERTED ? "^"
                                                         : "",
                    use->name, recipients_path(cp->list), near ? " (did you mean '" : "",
                    near ? near : "", near ? "'?)" : "");
report:
    if (cp->check_rc == 0 || cp->diag != NULL)
        blast_error_set(cp->err, e.code, e.source, e.line, e.column, "%s", e.text);
    cp->check_rc = BLAST_EINVAL;
    if (cp->diag != NULL)
        cp->diag->report(cp->diag->arg, &e);
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
        if (i != BUILTIN_NAME || cp->name_col >= 0)
            c[k++] = compose_builtins[i];
    return c;
}

/* ---- compiling --------------------------------------------------------------------------- */

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

/* Report one problem: to the diag (and on), or as the error (and stop). */
static int problem(struct compose *cp, struct blast_error *e, int rc)
{
    blast_error_set(cp->err, rc, e->source, e->line, e->column, "%s", e->text);
    if (cp->diag != NULL)
        cp->diag->report(cp->diag->arg, e);
    return rc;
}

/*
 * Record the outcome of compiling one template and check its names. With a diag
 * a failure is reported and 0 returned, so the next template is checked too; the
 * failure is kept in cp->check_rc.
 */
static int took_template(struct compose *cp, int rc, const char *key,
                         const struct campaign_place *place, struct blast_error *e,
                         const struct template *t)
{
    if (rc == BLAST_EIO && e->line == 0 && place != NULL && place->line > 0) {
        /* a missing file: blame the campaign line that names it */
        char detail[BLAST_ERROR_TEXT_MAX];
        snprintf(detail, sizeof detail, "%s: %s: %s", key, e->source, e->text);
        blast_error_replace(e, rc, cp->c->path, place->line, place->column, "%s", detail);
    }
    if (rc < 0) {
        problem(cp, e, rc);
        cp->check_rc = rc;
        return cp->diag != NULL && rc != BLAST_ENOMEM ? 0 : rc;
    }
    cp->ntemplates++;
    rc = template_visit(t, check_use, cp);
    if (rc < 0)
        return blast_error_set(cp->err, rc, NULL, 0, 0, "out of memory");
    return cp->diag != NULL ? 0 : cp->check_rc;
}

/* A template written in the campaign file itself (subject, header values, URL). */
static int add_inline_template(struct compose *cp, const char *key, const char *text,
                               const struct campaign_place *place, enum template_mode mode,
                               const struct template **out)
{
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    rc = template_compile(cp->lib, text, strlen(text), cp->c->path, place->line, place->column,
                          mode, out, &e);
    return took_template(cp, rc, key, place, &e, *out);
}

/* A template file named by the campaign (body.text, body.html). */
static int add_file_template(struct compose *cp, const char *key, const char *path,
                             const struct campaign_place *place, enum template_mode mode,
                             const struct template **out)
{
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    rc = template_load(cp->lib, path, mode, out, &e);
    return took_template(cp, rc, key, place, &e, *out);
}

static int load_parts(struct compose *cp, const struct campaign_part *in, size_t n,
                      struct mime_part **out)
{
    struct blast_error e;
    size_t i;
    int rc;

    if (n == 0)
        return 0;
    *out = calloc(n, sizeof **out);
    if (*out == NULL)
        return blast_error_set(cp->err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < n; i++) {
        blast_error_clear(&e);
        rc = mime_part_load(in[i].path, in[i].name, in[i].content_type, in[i].cid, &(*out)[i], &e);
        if (rc < 0) {
            char detail[BLAST_ERROR_TEXT_MAX];
            snprintf(detail, sizeof detail, "%s: %s", e.source, e.text);
            blast_error_replace(&e, rc, cp->c->path, in[i].place.line, in[i].place.column, "%s",
                                detail);
            problem(cp, &e, rc);
            cp->check_rc = rc;
            if (cp->diag == NULL || rc == BLAST_ENOMEM)
                return rc;
        }
    }
    return 0;
}

static int compile_all(struct compose *cp)
{
    const struct campaign *c = cp->c;
    size_t i;
    int rc;

    if ((rc = add_inline_template(cp, "subject", c->subject, &c->subject_place, TEMPLATE_TEXT,
                                  &cp->subject)) < 0 ||
        (c->body.text != NULL &&
         (rc = add_file_template(cp, "body.text", c->body.text, &c->body.text_place, TEMPLATE_TEXT,
                                 &cp->text)) < 0) ||
        (c->body.html != NULL &&
         (rc = add_file_template(cp, "body.html", c->body.html, &c->body.html_place, TEMPLATE_HTML,
                                 &cp->html)) < 0))
        return rc;
    if (c->list_unsubscribe.url != NULL &&
        (rc = add_inline_template(cp, "list_unsubscribe.url", c->list_unsubscribe.url,
                                  &c->list_unsubscribe.url_place, TEMPLATE_URL, &cp->url)) < 0)
        return rc;
    if (c->feedback_id != NULL &&
        (rc = add_inline_template(cp, "feedback_id", c->feedback_id, &c->feedback_id_place,
                                  TEMPLATE_TEXT, &cp->feedback_id)) < 0)
        return rc;
    if (c->nheaders > 0 && (cp->headers = calloc(c->nheaders, sizeof *cp->headers)) == NULL)
        return blast_error_set(cp->err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    for (i = 0; i < c->nheaders; i++)
        if ((rc = add_inline_template(cp, c->headers[i].name, c->headers[i].value,
                                      &c->headers[i].place, TEMPLATE_TEXT, &cp->headers[i])) < 0)
            return rc;
    if ((rc = load_parts(cp, c->attachments, c->nattachments, &cp->attachments)) < 0 ||
        (rc = load_parts(cp, c->inline_parts, c->ninline, &cp->inline_parts)) < 0)
        return rc;
    if (c->ninline > 0 && c->body.html == NULL) {
        struct blast_error e;
        blast_error_clear(&e);
        blast_error_set(&e, BLAST_EINVAL, c->path, c->inline_parts[0].place.line,
                        c->inline_parts[0].place.column,
                        "inline parts are shown by an HTML body: add body.html");
        cp->check_rc = problem(cp, &e, BLAST_EINVAL);
        if (cp->diag == NULL)
            return cp->check_rc;
    }
    return cp->check_rc;
}

/* RFC 6068 §2: what a mailto address may hold as it is; the rest is %xx (lower case,
 * as in the URL: see template.c), commas included (RFC 2369 §2). */
static bool mailto_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$'*+", c) != NULL);
}

/*
 * What the List-Unsubscribe and List-Id fields need of the campaign, made once: the
 * URL's host in its A-label form when it is written in Unicode (an IRI host would
 * otherwise be percent-encoded into a name no resolver knows), the mailto URI with
 * the domain's A-label and the local part percent-encoded, and the List-Id.
 */
static int prepare_list_headers(struct compose *cp)
{
    const struct campaign *c = cp->c;
    const char *url = c->list_unsubscribe.url, *host, *p;
    struct blast_error e;
    struct address a;
    struct buf b = BUF_INIT;
    size_t i, n;
    bool ascii = true;
    int rc = 0;

    blast_error_clear(&e);
    memset(&a, 0, sizeof a);
    if (url != NULL && strncmp(url, "https://", 8) == 0) {
        host = url + 8;
        n = strcspn(host, "/?#:");
        for (i = 0; i < n; i++)
            ascii = ascii && (unsigned char)host[i] < 0x80;
        if (!ascii && memmem(host, n, "{{", 2) == NULL) {
            if ((cp->url_host = strndup(host, n)) == NULL) {
                rc = BLAST_ENOMEM;
                goto out;
            }
            if ((rc = address_domain_ascii(cp->url_host, &cp->url_host_ascii, &e)) < 0) {
                if (rc != BLAST_ENOMEM) {
                    char detail[BLAST_ERROR_TEXT_MAX];
                    snprintf(detail, sizeof detail, "list_unsubscribe.url: %s", e.text);
                    blast_error_replace(&e, rc, c->path, c->list_unsubscribe.url_place.line,
                                        c->list_unsubscribe.url_place.column, "%s", detail);
                    rc = problem(cp, &e, rc);
                }
                goto out;
            }
        }
    }
    if (c->list_unsubscribe.mailto != NULL) {
        /* campaign.c checked the address; its envelope form has the domain's A-label */
        if ((rc = address_parse(c->list_unsubscribe.mailto, &a, &e)) < 0 ||
            (rc = buf_puts(&b, "<mailto:")) < 0)
            goto out;
        for (p = a.local; rc == 0 && *p != '\0'; p++)
            rc = mailto_plain((unsigned char)*p) ? buf_putc(&b, *p)
                                                 : buf_printf(&b, "%%%02x", (unsigned char)*p);
        if (rc < 0 ||
            (rc = buf_printf(&b, "%s?subject=unsubscribe>", a.envelope + strlen(a.local))) < 0 ||
            (cp->mailto_uri = buf_steal(&b)) == NULL) {
            rc = BLAST_ENOMEM;
            goto out;
        }
    }
    if (url != NULL || c->list_unsubscribe.mailto != NULL) {
        /* RFC 2919 §2: a List-Id beside List-Unsubscribe, unless the campaign writes one;
         * the label is the campaign's name, a dot-atom unless it has stray dots */
        const char *name = c->name, *domain = strchr(cp->from.envelope, '@') + 1;
        bool dots_ok = name[0] != '.' && name[strlen(name) - 1] != '.' && !strstr(name, "..");
        for (i = 0; i < c->nheaders; i++)
            if (strcasecmp(c->headers[i].name, "List-Id") == 0)
                goto out;
        buf_reset(&b);
        rc = buf_putc(&b, '<');
        for (p = name; rc == 0 && *p != '\0'; p++)
            rc = buf_putc(&b, *p == '.' && !dots_ok ? '-' : *p);
        if (rc < 0 || (rc = buf_printf(&b, ".%s>", domain)) < 0 ||
            (cp->list_id = buf_steal(&b)) == NULL)
            rc = BLAST_ENOMEM;
    }
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(cp->err, rc, NULL, 0, 0, "out of memory");
    address_free(&a);
    buf_free(&b);
    return rc;
}

int compose_new(const struct campaign *c, const struct recipients *list, const struct screen *s,
                const struct blast_diag *diag, struct compose **out, struct blast_error *err)
{
    struct template_partials partials;
    struct compose *cp;
    int rc;

    *out = NULL;
    cp = calloc(1, sizeof *cp);
    if (cp == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    cp->c = c;
    cp->list = list;
    cp->diag = diag;
    cp->err = err;
    cp->email_col = screen_email_column(s);
    cp->name_col = screen_name_column(s);
    partials.find = find_partial;
    partials.arg = cp;
    partials.missing_is_error = true;
    partials.hint = "(looked for NAME, NAME.mustache, NAME.html or NAME.txt beside the template, "
                    "in templates/ beside the campaign file and in ../templates/)";
    cp->lib = template_lib_new(&partials);
    cp->candidates = candidates_of(cp);
    if (cp->lib == NULL || cp->candidates == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
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
    if ((rc = compile_all(cp)) < 0 || (rc = prepare_list_headers(cp)) < 0) {
        /* with a diag, later problems were reported too: the first one is the error */
        rc = err->code < 0 ? err->code : rc;
        goto out;
    }
    cp->diag = NULL;
    cp->err = NULL;
    *out = cp;
    cp = NULL;
out:
    compose_free(cp);
    return rc;
}

static void free_parts(struct mime_part *p, size_t n)
{
    size_t i;

    for (i = 0; p != NULL && i < n; i++)
        mime_part_free(&p[i]);
    free(p);
}

void compose_free(struct compose *cp)
{
    if (cp == NULL)
        return;
    template_lib_free(cp->lib);
    free(cp->headers);
    free_parts(cp->attachments, cp->c->nattachments);
    free_parts(cp->inline_parts, cp->c->ninline);
    free(cp->candidates);
    address_free(&cp->from);
    address_free(&cp->envelope_from);
    address_free(&cp->reply_to);
    free(cp->url_host);
    free(cp->url_host_ascii);
    free(cp->mailto_uri);
    free(cp->list_id);
    if (cp->verp_secret != NULL) {
        OPENSSL_cleanse(cp->verp_secret, cp->verp_secret_len);
        free(cp->verp_secret);
    }
    free(cp);
}

int compose_set_return_path(struct compose *cp, const char *secret, size_t len,
                            struct blast_error *err)
{
    const struct campaign *c = cp->c;

    if (len < VERP_SECRET_MIN)
        return blast_error_set(err, BLAST_EINVAL, c->path, c->return_path.secret_place.line,
                               c->return_path.secret_place.column,
                               "return_path: the secret must be at least %d bytes (it is %zu)",
                               VERP_SECRET_MIN, len);
    if (cp->verp_secret != NULL) {
        OPENSSL_cleanse(cp->verp_secret, cp->verp_secret_len);
        free(cp->verp_secret);
    }
    if ((cp->verp_secret = malloc(len)) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    memcpy(cp->verp_secret, secret, len);
    cp->verp_secret_len = len;
    return 0;
}

/* The row's MAIL FROM made from return_path, in res->envelope_from ("" without one). */
static int row_return_path(const struct compose *cp, const struct recipients_row *row,
                           struct compose_result *res, struct blast_error *err)
{
    char token[VERP_TOKEN_SIZE];
    int rc;

    res->envelope_from[0] = '\0';
    if (cp->c->return_path.address == NULL)
        return 0;
    if (cp->verp_secret == NULL)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "return_path: no secret was given to make its tokens");
    if ((rc = verp_token(cp->verp_secret, cp->verp_secret_len, cp->c->name, row->row, token, err)) <
        0)
        return rc;
    return verp_address(cp->c->return_path.address, token, res->envelope_from,
                        sizeof res->envelope_from, err);
}

void compose_set_dkim(struct compose *cp, const struct dkim *d)
{
    cp->dkim = d;
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

/* ---- one row ------------------------------------------------------------------------- */

void compose_result_init(struct compose_result *res)
{
    memset(res, 0, sizeof *res);
    dkim_scratch_init(&res->dkim);
}

void compose_result_free(struct compose_result *res)
{
    buf_free(&res->message);
    buf_free(&res->subject);
    buf_free(&res->text);
    buf_free(&res->html);
    buf_free(&res->url);
    buf_free(&res->feedback_id);
    buf_free(&res->headers);
    free(res->header_ends);
    free(res->mime_headers);
    dkim_scratch_free(&res->dkim);
    res->header_ends = NULL;
    res->mime_headers = NULL;
}

static int render(const struct template *t, struct row_data *d, struct buf *out)
{
    struct template_data data = row_data_ops;
    struct template_value root = {d, TAG(TAG_ROW, 0)};

    data.ctx = d;
    buf_reset(out);
    return template_render(t, &data, root, out);
}

/*
 * The List-Unsubscribe value: "<https://...>, <mailto:...>". The URL's values were
 * percent-encoded when rendered, and a Unicode host is written as its A-label;
 * anything else that may not stand in a header URI is encoded here (%xx in lower
 * case, as template.c does), so no byte of it can break the header.
 */
static int unsubscribe_value(const struct compose *cp, struct compose_result *res)
{
    struct buf v = BUF_INIT;
    size_t i = 0;
    int rc = 0;

    if (cp->url != NULL) {
        const unsigned char *u = (const unsigned char *)(res->url.data ? res->url.data : "");
        size_t hl = cp->url_host != NULL ? strlen(cp->url_host) : 0;
        rc = buf_putc(&v, '<');
        if (hl > 0 && res->url.len >= 8 + hl && memcmp(u + 8, cp->url_host, hl) == 0 &&
            (res->url.len == 8 + hl || strchr("/?#:", u[8 + hl]) != NULL)) {
            if (rc == 0 && (rc = buf_puts(&v, "https://")) == 0)
                rc = buf_puts(&v, cp->url_host_ascii);
            i = 8 + hl;
        }
        for (; rc == 0 && i < res->url.len; i++) {
            if (u[i] > 0x20 && u[i] < 0x7F && u[i] != '<' && u[i] != '>' && u[i] != '"')
                rc = buf_putc(&v, (char)u[i]);
            else
                rc = buf_printf(&v, "%%%02x", u[i]);
        }
        if (rc == 0)
            rc = buf_putc(&v, '>');
        /* measured as it is sent: it has to fit one header line (RFC 5322 §2.1.1) */
        if (rc == 0 && v.len - 2 > COMPOSE_URL_MAX) {
            res->invalid = true;
            snprintf(res->reason, sizeof res->reason,
                     "the unsubscribe URL is %zu characters long once encoded; at most %d fit a "
                     "header line",
                     v.len - 2, COMPOSE_URL_MAX);
            buf_free(&v);
            return 0;
        }
    }
    if (rc == 0 && cp->mailto_uri != NULL)
        rc = buf_printf(&v, "%s%s", v.len > 0 ? ", " : "", cp->mailto_uri);
    /* the value replaces the rendered URL, which is no longer needed */
    buf_reset(&res->url);
    if (rc == 0)
        rc = buf_append(&res->url, v.data, v.len);
    buf_free(&v);
    return rc;
}

/* The campaign's extra headers, rendered for the row into res->headers and res->mime_headers. */
static int render_headers(struct compose *cp, struct row_data *d, struct compose_result *res)
{
    const struct campaign *c = cp->c;
    size_t i;
    int rc;

    if (res->header_ends == NULL &&
        ((res->header_ends = calloc(c->nheaders, sizeof *res->header_ends)) == NULL ||
         (res->mime_headers = calloc(c->nheaders, sizeof *res->mime_headers)) == NULL))
        return BLAST_ENOMEM;
    buf_reset(&res->headers);
    for (i = 0; i < c->nheaders; i++) {
        struct template_data data = row_data_ops;
        struct template_value root = {d, TAG(TAG_ROW, 0)};
        data.ctx = d;
        if ((rc = template_render(cp->headers[i], &data, root, &res->headers)) < 0)
            return rc;
        res->header_ends[i] = res->headers.len;
    }
    /* pointers only once the buffer has stopped moving */
    for (i = 0; i < c->nheaders; i++) {
        size_t start = i == 0 ? 0 : res->header_ends[i - 1];
        res->mime_headers[i].name = c->headers[i].name;
        res->mime_headers[i].value = res->headers.data != NULL ? res->headers.data + start : "";
        res->mime_headers[i].len = res->header_ends[i] - start;
    }
    return 0;
}

/* What mime_build() needs, pointing into what was rendered for the row. */
static void message_of(const struct compose *cp, const struct address *to,
                       const struct compose_result *res, struct mime_message *m)
{
    const struct campaign *c = cp->c;

    memset(m, 0, sizeof *m);
    m->from = &cp->from;
    m->to = to;
    m->reply_to = cp->has_reply_to ? &cp->reply_to : NULL;
    m->subject = res->subject.data != NULL ? res->subject.data : "";
    m->subject_len = res->subject.len;
    if (cp->text != NULL) {
        m->text = res->text.data != NULL ? res->text.data : "";
        m->text_len = res->text.len;
    }
    if (cp->html != NULL) {
        m->html = res->html.data != NULL ? res->html.data : "";
        m->html_len = res->html.len;
    }
    m->message_id = res->message_id;
    m->date = time(NULL);
    if (cp->url != NULL || c->list_unsubscribe.mailto != NULL) {
        m->list_unsubscribe = res->url.data;
        m->one_click = c->list_unsubscribe.one_click;
        m->list_id = cp->list_id;
    }
    if (cp->feedback_id != NULL) {
        m->feedback_id = res->feedback_id.data != NULL ? res->feedback_id.data : "";
        m->feedback_id_len = res->feedback_id.len;
    }
    m->headers = res->mime_headers;
    m->nheaders = c->nheaders;
    m->attachments = cp->attachments;
    m->nattachments = c->nattachments;
    m->inline_parts = cp->inline_parts;
    m->ninline = c->ninline;
}

int compose_row(struct compose *cp, const struct recipients_row *row, const struct address *to,
                struct compose_result *res, struct blast_error *err)
{
    const struct campaign *c = cp->c;
    struct row_data d;
    struct mime_message m;
    int rc = 0;

    buf_reset(&res->message);
    res->invalid = false;
    res->reason[0] = '\0';
    res->smtputf8 = to->needs_smtputf8 || cp->envelope_from.needs_smtputf8;
    d.cp = cp;
    d.row = row;
    snprintf(d.rownum, sizeof d.rownum, "%zu", row->row);

    if ((rc = render(cp->subject, &d, &res->subject)) < 0 ||
        (cp->text != NULL && (rc = render(cp->text, &d, &res->text)) < 0) ||
        (cp->html != NULL && (rc = render(cp->html, &d, &res->html)) < 0) ||
        (cp->feedback_id != NULL && (rc = render(cp->feedback_id, &d, &res->feedback_id)) < 0))
        goto out;
    buf_reset(&res->url);
    if (cp->url != NULL && (rc = render(cp->url, &d, &res->url)) < 0)
        goto out;
    if ((cp->url != NULL || c->list_unsubscribe.mailto != NULL) &&
        ((rc = unsubscribe_value(cp, res)) < 0 || res->invalid))
        goto out;
    if (c->nheaders > 0 && (rc = render_headers(cp, &d, res)) < 0)
        goto out;
    if (mime_message_id(cp->from.envelope + strlen(cp->from.local) + 1, res->message_id,
                        sizeof res->message_id) < 0) {
        rc =
            blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "From domain too long for a Message-ID");
        goto out;
    }
    if ((rc = row_return_path(cp, row, res, err)) < 0)
        goto out;
    message_of(cp, to, res, &m);
    /* the message is final here (CRLF, 7-bit or 8-bit safe); smtp dot-stuffs it later */
    if ((rc = mime_build(&m, &res->message, err)) == 0 && cp->dkim != NULL)
        rc = dkim_sign(cp->dkim, &res->message, m.date, &res->dkim, err);
out:
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    else if (rc == BLAST_EINVAL && err != NULL && err->code == 0)
        blast_error_set(err, rc, NULL, 0, 0,
                        "the templates cannot be rendered within the limits: sections and "
                        "partials nest deeper than 100 levels (a partial that includes "
                        "itself?), or take more than 1,000,000 steps or 64 MiB of output "
                        "(sections nested over a list multiply)");
    return rc;
}
