/*
 * screen - address checks, dedupe and suppression. See screen.h.
 */
#include "screen.h"
#include "outcome.h"
#include "addrset.h"
#include "buf.h"
#include "reportread.h"
#include "suppressdb.h"
#include "timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The addresses one report of an earlier run contributes (screen_add_report). */
struct screen_report {
    enum screen_report_rule rule;
    char *path;
    struct addrset *set;
};

struct screen {
    const struct campaign *c;
    const struct recipients *list;
    int email_col, name_col;
    struct addrset *seen;
    struct addrset *suppressed;
    struct suppressdb *db;   /* the campaign's suppression database, or NULL */
    struct addrset *db_keys; /* its entries' keys, loaded once */
    struct screen_report *reports;
    size_t nreports;
    struct buf key;
    struct shard shard;          /* count 0: every row */
    struct shard_hasher *hasher; /* with a shard: places the rows */
    bool dups_known;             /* screen_use_duplicates(): the first pass's duplicates */
    const uint64_t *dups;        /* NULL: none */
    size_t dup_rows;
};

const char *screen_verdict_name(enum screen_verdict v)
{
    switch (v) {
    case SCREEN_OK:
        return "ok";
    case SCREEN_INVALID:
        return "invalid";
    case SCREEN_DUPLICATE:
        return "duplicate";
    case SCREEN_SUPPRESSED:
        return "suppressed";
    case SCREEN_OTHER_SHARD:
        return "another shard's";
    }
    return "?";
}

static int column(const struct screen *s, const char *name, const struct campaign_place *place,
                  int *out, struct blast_error *err)
{
    struct buf cols = BUF_INIT;
    size_t i;
    int rc;

    *out = recipients_column_index(s->list, name);
    if (*out >= 0)
        return 0;
    for (i = 0; i < recipients_ncolumns(s->list); i++)
        buf_printf(&cols, "%s'%s'", i ? ", " : "", recipients_column_name(s->list, i));
    if (place->line > 0)
        rc = blast_error_set(err, BLAST_EINVAL, s->c->path, place->line, place->column,
                             "the recipient list %s has no column '%s' (its columns: %s)",
                             recipients_path(s->list), name, cols.data ? cols.data : "");
    else
        rc = blast_error_set(err, BLAST_EINVAL, recipients_path(s->list), 1, 1,
                             "no '%s' column in the header row (its columns: %s); name the "
                             "address column with recipients.email_column",
                             name, cols.data ? cols.data : "");
    buf_free(&cols);
    return rc;
}

/*
 * The key that makes two addresses the same recipient: the local part as written
 * and the domain in lower-case A-label form (address_parse gives that envelope).
 */
static int dedupe_key(struct screen *s, const struct address *a)
{
    buf_reset(&s->key);
    return buf_puts(&s->key, a->envelope);
}

/*
 * Suppression matches without regard to case at all: sending to someone who asked
 * not to be mailed is worse than skipping a rare case-sensitive twin.
 */
static int suppression_key(struct buf *key, const char *envelope)
{
    size_t i;
    int rc;

    buf_reset(key);
    if ((rc = buf_puts(key, envelope)) < 0)
        return rc;
    for (i = 0; i < key->len; i++)
        if (key->data[i] >= 'A' && key->data[i] <= 'Z')
            key->data[i] = (char)(key->data[i] - 'A' + 'a');
    return 0;
}

static int suppress_address(struct screen *s, const char *text, const char *path, size_t line,
                            struct blast_error *err)
{
    struct address a;
    struct blast_error aerr;
    int rc;

    blast_error_clear(&aerr);
    if (address_parse(text, &a, &aerr) < 0)
        return blast_error_set(err, BLAST_EINVAL, path, (int)line, 0, "suppression list: %s",
                               aerr.text);
    rc = suppression_key(&s->key, a.envelope);
    if (rc == 0)
        rc = addrset_add(s->suppressed, s->key.data, s->key.len);
    address_free(&a);
    return rc < 0 ? blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory") : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* A .csv suppression file: a header row, addresses in its email column. */
static int load_csv(struct screen *s, const char *path, struct blast_error *err)
{
    struct recipients_options ro = {',', 0};
    struct recipients *r = NULL;
    struct recipients_row row;
    int col, rc;

    if ((rc = recipients_open(path, &ro, &r, err)) < 0) {
        const char *what = "cannot open recipient list";
        if (rc == BLAST_EIO && err->line == 0 && strncmp(err->text, what, strlen(what)) == 0) {
            char rest[BLAST_ERROR_TEXT_MAX];
            snprintf(rest, sizeof rest, "%s", err->text + strlen(what));
            blast_error_replace(err, rc, path, 0, 0, "cannot open suppression list%s", rest);
        }
        goto out;
    }
    col = recipients_column_index(r, s->c->recipients.email_column);
    if (col < 0)
        col = recipients_column_index(r, "email");
    if (col < 0) {
        rc = blast_error_set(err, BLAST_EINVAL, path, 1, 1,
                             "suppression list: no '%s' column in the header row",
                             s->c->recipients.email_column);
        goto out;
    }
    while ((rc = recipients_next(r, &row, err)) == 1) {
        if (row.lens[col] == 0)
            continue;
        if ((rc = suppress_address(s, row.fields[col], path, row.line, err)) < 0)
            goto out;
    }
out:
    recipients_close(r);
    return rc;
}

/* A text suppression file: one address a line; blank lines and '#' comments skipped. */
static int load_lines(struct screen *s, const char *path, struct blast_error *err)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t n = 0;
    int rc = 0;

    if (f == NULL)
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot open suppression list: %s",
                               strerror(errno));
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = line, *end;
        n++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            rc = blast_error_set(err, BLAST_EINVAL, path, (int)n, 0,
                                 "suppression list: line longer than %zu bytes", sizeof line - 2);
            break;
        }
        if (n == 1 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
            (unsigned char)p[2] == 0xBF)
            p += 3;
        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strcspn(p, "\r\n");
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        *end = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        if ((rc = suppress_address(s, p, path, n, err)) < 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "read error: %s", strerror(errno));
    fclose(f);
    return rc;
}

static int load_suppression(struct screen *s, struct blast_error *err)
{
    size_t i;
    int rc;

    for (i = 0; i < s->c->nsuppression; i++) {
        const char *path = s->c->suppression[i];
        const struct campaign_place *place = &s->c->suppression_places[i];
        struct blast_error e;

        blast_error_clear(&e);
        rc = ends_with(path, ".csv") ? load_csv(s, path, &e) : load_lines(s, path, &e);
        if (rc == BLAST_EIO && e.line == 0) {
            /* a missing file: blame the campaign line that names it */
            return blast_error_set(err, rc, s->c->path, place->line, place->column,
                                   "suppression: %s: %s", path, e.text);
        }
        if (rc < 0)
            return blast_error_set(err, rc, e.source, e.line, e.column, "%s", e.text);
    }
    return 0;
}

static int add_db_hash(void *arg, uint64_t h)
{
    return addrset_add_hash(arg, h) < 0 ? BLAST_ENOMEM : 0;
}

/*
 * The campaign's suppression database: opened (an empty one is made when the file
 * is not there yet: it suppresses nobody, which is true), its keys loaded into a
 * set by their hashes; an entry itself is read only to explain a row it holds
 * (screen_explain()).
 */
static int load_suppression_db(struct screen *s, struct blast_error *err)
{
    const struct campaign *c = s->c;
    struct blast_error e;
    int rc;

    if (c->suppression_db == NULL)
        return 0;
    blast_error_clear(&e);
    if ((rc = suppressdb_open(c->suppression_db, true, &s->db, &e)) == 0) {
        /* the set hashes as the database does: its hashes load without the keys */
        size_t n = 0;
        if ((s->db_keys = addrset_new_keyed(suppressdb_hash_key(s->db))) == NULL)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        if ((rc = suppressdb_count(s->db, &n, &e)) == 0 &&
            (rc = addrset_reserve(s->db_keys, n)) < 0)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        if (rc == 0)
            rc = suppressdb_hashes(s->db, add_db_hash, s->db_keys, &e);
    }
    if (rc < 0)
        return blast_error_set(err, rc, c->path, c->suppression_db_place.line,
                               c->suppression_db_place.column, "suppression_db %s: %s",
                               c->suppression_db, rc == BLAST_ENOMEM ? "out of memory" : e.text);
    return 0;
}

/* The reason a row the database holds is suppressed: its entry's class, rule and day. */
static int db_reason(void *arg, const struct suppress_entry *e)
{
    struct screen_result *res = arg;
    size_t n;

    n = (size_t)snprintf(res->reason, sizeof res->reason, "in the suppression database: %s",
                         suppress_class_name(e->class));
    if (e->rule != NULL && n < sizeof res->reason)
        n += (size_t)snprintf(res->reason + n, sizeof res->reason - n, " (%s)", e->rule);
    if (e->time > 0 && n < sizeof res->reason) {
        char when[40];
        timeutil_rfc3339((struct timeutil_stamp){(time_t)e->time, 0}, when, sizeof when);
        when[10] = '\0'; /* the day */
        snprintf(res->reason + n, sizeof res->reason - n, " since %s", when);
    }
    return 0;
}

void screen_explain(struct screen *s, struct screen_result *res)
{
    struct blast_error e;

    if (!res->from_db || s->db == NULL || suppression_key(&s->key, res->to.envelope) < 0)
        return;
    blast_error_clear(&e);
    /* the generic reason stays when the entry cannot be read back now */
    (void)suppressdb_find_key(s->db, s->key.data, s->key.len, db_reason, res, &e);
}

int screen_new(const struct campaign *c, const struct recipients *list, struct screen **out,
               struct blast_error *err)
{
    struct screen *s;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    s->c = c;
    s->list = list;
    s->name_col = -1;
    buf_init(&s->key);
    s->seen = addrset_new();
    s->suppressed = addrset_new();
    if (s->seen == NULL || s->suppressed == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = column(s, c->recipients.email_column, &c->recipients.email_column_place,
                     &s->email_col, err)) < 0)
        goto out;
    if (c->recipients.name_column != NULL &&
        (rc = column(s, c->recipients.name_column, &c->recipients.name_column_place, &s->name_col,
                     err)) < 0)
        goto out;
    if ((rc = load_suppression(s, err)) < 0 || (rc = load_suppression_db(s, err)) < 0)
        goto out;
    *out = s;
    s = NULL;
out:
    screen_free(s);
    return rc;
}

void screen_free(struct screen *s)
{
    size_t i;

    if (s == NULL)
        return;
    addrset_free(s->seen);
    addrset_free(s->suppressed);
    addrset_free(s->db_keys);
    suppressdb_close(s->db);
    for (i = 0; i < s->nreports; i++) {
        addrset_free(s->reports[i].set);
        free(s->reports[i].path);
    }
    free(s->reports);
    buf_free(&s->key);
    shard_hasher_free(s->hasher);
    free(s);
}

int screen_restart(struct screen *s, struct blast_error *err)
{
    struct addrset *fresh = addrset_new();

    if (fresh == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    addrset_free(s->seen);
    s->seen = fresh;
    return 0;
}

void screen_use_duplicates(struct screen *s, const uint64_t *bits, size_t nrows)
{
    s->dups_known = true;
    s->dups = bits;
    s->dup_rows = bits != NULL ? nrows : 0;
}

int screen_email_column(const struct screen *s)
{
    return s->email_col;
}

int screen_name_column(const struct screen *s)
{
    return s->name_col;
}

int screen_reserve(struct screen *s, size_t n, struct blast_error *err)
{
    if (addrset_reserve(s->seen, n) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return 0;
}

size_t screen_seen_size(const struct screen *s)
{
    return addrset_size(s->seen);
}

size_t screen_suppression_size(const struct screen *s)
{
    return addrset_size(s->suppressed);
}

const char *screen_report_rule_name(enum screen_report_rule rule)
{
    return rule == SCREEN_EXCLUDE_DELIVERED ? "exclude-report" : "suppress-from";
}

/* The key of an address under a report's rule, in s->key. */
static int report_key(struct screen *s, enum screen_report_rule rule, const struct address *a)
{
    return rule == SCREEN_EXCLUDE_DELIVERED ? dedupe_key(s, a)
                                            : suppression_key(&s->key, a->envelope);
}

/* Whether an earlier outcome is one the rule takes. */
static bool rule_takes(enum screen_report_rule rule, const struct outcome *o)
{
    if (rule == SCREEN_EXCLUDE_DELIVERED)
        return o->status == OUTCOME_DELIVERED;
    /* RFC 3463 X.1.Y: addressing status, the address itself is bad */
    return o->status == OUTCOME_FAILED && strncmp(o->enhanced, "5.1.", 4) == 0;
}

struct report_load {
    struct screen *s;
    struct screen_report *rep;
};

/* One recipient of an earlier run's report: into the set when the rule takes it. */
static int take_entry(void *arg, json_t *entry, size_t index, const struct reportread_place *at,
                      struct blast_error *err)
{
    struct report_load *l = arg;
    struct outcome o;
    struct address a;
    struct blast_error e;
    int rc;

    if ((rc = reportread_outcome(entry, index, at, &o, err)) < 0)
        return rc;
    blast_error_clear(&e);
    if (o.email == NULL || !rule_takes(l->rep->rule, &o)) {
        outcome_free(&o);
        return 0;
    }
    rc = address_parse(o.email, &a, &e);
    outcome_free(&o);
    if (rc == BLAST_ENOMEM)
        return blast_error_set(err, rc, at->source, at->line, at->column, "out of memory");
    if (rc < 0)
        return 0; /* the same text in the list is an invalid row: nothing to match */
    rc = report_key(l->s, l->rep->rule, &a);
    if (rc == 0)
        rc = addrset_add(l->rep->set, l->s->key.data, l->s->key.len);
    address_free(&a);
    return rc < 0 ? blast_error_set(err, BLAST_ENOMEM, at->source, 0, 0, "out of memory") : 0;
}

int screen_add_report(struct screen *s, const char *path, enum screen_report_rule rule,
                      struct blast_error *err)
{
    struct screen_report rep = {rule, NULL, NULL}, *grown;
    struct report_load load = {s, &rep};
    struct reportread_result res;
    const char *test_to;
    int rc;

    memset(&res, 0, sizeof res);
    rep.path = strdup(path);
    rep.set = addrset_new();
    if (rep.path == NULL || rep.set == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    if ((rc = reportread_file(path, take_entry, &load, &res, err)) < 0)
        goto out;
    test_to = json_string_value(json_object_get(res.campaign, "test_to"));
    if (test_to != NULL) {
        rc = blast_error_set(err, BLAST_EINVAL, path, 0, 0,
                             "--%s: the report of a test send (every message went to %s) says "
                             "nothing about its recipients",
                             screen_report_rule_name(rule), test_to);
        goto out;
    }
    grown = realloc(s->reports, (s->nreports + 1) * sizeof *grown);
    if (grown == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, path, 0, 0, "out of memory");
        goto out;
    }
    s->reports = grown;
    s->reports[s->nreports++] = rep;
    rep.path = NULL;
    rep.set = NULL;
out:
    reportread_result_free(&res);
    addrset_free(rep.set);
    free(rep.path);
    return rc;
}

size_t screen_report_size(const struct screen *s)
{
    size_t i, n = 0;

    for (i = 0; i < s->nreports; i++)
        n += addrset_size(s->reports[i].set);
    return n;
}

void screen_result_init(struct screen_result *res)
{
    memset(res, 0, sizeof *res);
}

void screen_result_free(struct screen_result *res)
{
    address_free(&res->to);
}

static bool ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

void screen_set_shard(struct screen *s, const struct shard *sh)
{
    s->shard = *sh;
    if (sh->count > 1 && s->hasher == NULL)
        s->hasher = shard_hasher_new(); /* NULL: shard_mine()'s slower way, the same answer */
}

/*
 * The shard of text (an envelope, or a row's text) by its suppression key, left in
 * s->key: 0 when it is this shard's, 1 when another's (res says so), or an error.
 */
static int place(struct screen *s, const char *text, struct screen_result *res,
                 struct blast_error *err)
{
    int rc;

    if ((rc = suppression_key(&s->key, text)) < 0)
        return blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    if (shard_hasher_mine(s->hasher, &s->shard, s->key.data, s->key.len))
        return 0;
    res->verdict = SCREEN_OTHER_SHARD;
    return 1;
}

int screen_row(struct screen *s, const struct recipients_row *row, struct screen_result *res,
               struct blast_error *err)
{
    struct blast_error aerr;
    bool placed;
    size_t i;
    int rc;

    address_free(&res->to);
    res->verdict = SCREEN_OK;
    res->from_db = false;
    res->reason[0] = '\0';
    snprintf(res->email, sizeof res->email, "%s", row->fields[s->email_col]);
    blast_error_clear(&aerr);
    /* a shard places each row once, by its key (core/shard); a whole list takes every row */
    placed = s->shard.count <= 1;
    if (!placed && ascii(row->fields[s->email_col], row->lens[s->email_col])) {
        /*
         * An ASCII field's key is its text lower-cased, valid or not: the envelope
         * form keeps an ASCII address as written (address_parse() changes only the
         * case of its domain, which the key ignores), and a row without an address
         * is placed by its text. So another shard's row is known before any parse:
         * a shard skips the others' rows for the price of a hash.
         */
        if ((rc = place(s, row->fields[s->email_col], res, err)) != 0)
            return rc < 0 ? rc : 0;
        placed = true;
    }
    if (row->lens[s->email_col] == 0) {
        res->verdict = SCREEN_INVALID;
        snprintf(res->reason, sizeof res->reason, "no address in column '%s'",
                 s->c->recipients.email_column);
        return 0;
    }
    rc = address_parse(row->fields[s->email_col], &res->to, &aerr);
    if (rc == BLAST_ENOMEM)
        return blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    if (rc < 0) {
        int prc;
        /* no address: the row's text decides, the same in every shard */
        if (!placed && (prc = place(s, row->fields[s->email_col], res, err)) != 0)
            return prc < 0 ? prc : 0;
        res->verdict = SCREEN_INVALID;
        snprintf(res->reason, sizeof res->reason, "%s", aerr.text);
        return 0;
    }
    if (s->name_col >= 0 && row->lens[s->name_col] > 0 &&
        (res->to.display = strdup(row->fields[s->name_col])) == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    /* the suppression key, which places the row too when nothing placed it yet */
    if (!placed) {
        if ((rc = place(s, res->to.envelope, res, err)) != 0)
            return rc < 0 ? rc : 0;
    } else if ((rc = suppression_key(&s->key, res->to.envelope)) < 0) {
        return blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    }
    /* an empty set is not asked: a hash a row saved */
    if (addrset_size(s->suppressed) > 0 &&
        addrset_contains(s->suppressed, s->key.data, s->key.len)) {
        res->verdict = SCREEN_SUPPRESSED;
        snprintf(res->reason, sizeof res->reason, "on a suppression list");
        return 0;
    }
    if (s->db_keys != NULL && addrset_contains(s->db_keys, s->key.data, s->key.len)) {
        res->verdict = SCREEN_SUPPRESSED;
        res->from_db = true;
        snprintf(res->reason, sizeof res->reason, "in the suppression database");
        return 0;
    }
    for (i = 0; i < s->nreports; i++) {
        const struct screen_report *rep = &s->reports[i];
        if ((rc = report_key(s, rep->rule, &res->to)) < 0)
            return blast_error_set(err, rc, NULL, 0, 0, "out of memory");
        if (addrset_contains(rep->set, s->key.data, s->key.len)) {
            res->verdict = SCREEN_SUPPRESSED;
            snprintf(res->reason, sizeof res->reason,
                     rep->rule == SCREEN_EXCLUDE_DELIVERED ? "delivered in %s"
                                                           : "failed for good (5.1.x) in %s",
                     rep->path);
            return 0;
        }
    }
    if (s->dups_known) /* the first pass said */
        rc = row->row < s->dup_rows && ((s->dups[row->row / 64] >> (row->row % 64)) & 1) ? 0 : 1;
    else if ((rc = dedupe_key(s, &res->to)) < 0 ||
             (rc = addrset_add(s->seen, s->key.data, s->key.len)) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (rc == 0) {
        res->verdict = SCREEN_DUPLICATE;
        snprintf(res->reason, sizeof res->reason, "the same address is on an earlier row");
    }
    return 0;
}
