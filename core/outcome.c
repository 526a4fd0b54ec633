/*
 * outcome - a recipient's result, and its one JSON form. See outcome.h.
 *
 * The JSON is written by hand, not through a jansson tree: a record is formatted
 * once per recipient per attempt on the sending path, and building thirty nodes to
 * print them at once cost more than the printing (docs/performance.md). The text
 * is what jansson's compact dump gives for the same object (same key order, same
 * escapes), so journals and reports read the same either way. Reading back goes
 * through jansson: it is not on the sending path, and its parser is fuzzed.
 */
#include "outcome.h"
#include "text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[OUTCOME_STATUS_COUNT] = {
    [OUTCOME_DELIVERED] = "delivered",   [OUTCOME_DEFERRED] = "deferred",
    [OUTCOME_FAILED] = "failed",         [OUTCOME_UNKNOWN] = "unknown",
    [OUTCOME_SUPPRESSED] = "suppressed", [OUTCOME_INVALID] = "invalid",
    [OUTCOME_DUPLICATE] = "duplicate",   [OUTCOME_RENDERED] = "rendered",
    [OUTCOME_BOUNCED] = "bounced",       [OUTCOME_COMPLAINED] = "complained",
};

const char *outcome_status_name(enum outcome_status s)
{
    return s >= 0 && s < OUTCOME_STATUS_COUNT ? status_names[s] : "?";
}

int outcome_status_parse(const char *s)
{
    int i;

    for (i = 0; s != NULL && i < OUTCOME_STATUS_COUNT; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

bool outcome_status_final(enum outcome_status s)
{
    /* docs/delivery.md: deferred goes again, unknown only when asked, rendered decides nothing */
    return s != OUTCOME_DEFERRED && s != OUTCOME_UNKNOWN && s != OUTCOME_RENDERED &&
           s < OUTCOME_STATUS_COUNT;
}

enum outcome_status outcome_of_smtp(enum smtp_outcome so)
{
    switch (so) {
    case SMTP_OUTCOME_DELIVERED:
        return OUTCOME_DELIVERED;
    case SMTP_OUTCOME_FAILED:
        return OUTCOME_FAILED;
    case SMTP_OUTCOME_UNKNOWN:
        return OUTCOME_UNKNOWN;
    default:
        return OUTCOME_DEFERRED;
    }
}

/* ---- the record ------------------------------------------------------------------------- */

void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof *o);
    o->step = OUTCOME_STEP_NONE;
}

void outcome_attempt_free(struct outcome_attempt *a)
{
    free(a->relay);
    free(a->host);
    free(a->reply);
    free(a->queue_id);
    free(a->detail);
    a->relay = a->host = a->reply = a->queue_id = a->detail = NULL;
}

void outcome_free(struct outcome *o)
{
    size_t i;

    free(o->email);
    free(o->reply);
    free(o->detail);
    free(o->relay);
    free(o->message_id);
    free(o->queue_id);
    for (i = 0; i < o->nhistory; i++)
        outcome_attempt_free(&o->history[i]);
    free(o->history);
    free(o->bounce.rule);
    free(o->bounce.diagnostic);
    free(o->bounce.source);
    outcome_init(o);
}

int outcome_set(char **field, const char *s)
{
    char *copy = NULL;

    if (s != NULL && s[0] != '\0' && (copy = strdup(s)) == NULL)
        return BLAST_ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

/* A copy of a's strings into c (whose strings are NULL). */
static int attempt_copy(struct outcome_attempt *c, const struct outcome_attempt *a)
{
    *c = *a;
    c->relay = c->host = c->reply = c->queue_id = c->detail = NULL;
    if (outcome_set(&c->relay, a->relay) < 0 || outcome_set(&c->host, a->host) < 0 ||
        outcome_set(&c->reply, a->reply) < 0 || outcome_set(&c->queue_id, a->queue_id) < 0 ||
        outcome_set(&c->detail, a->detail) < 0) {
        outcome_attempt_free(c);
        return BLAST_ENOMEM;
    }
    return 0;
}

int outcome_add_attempt(struct outcome *o, const struct outcome_attempt *a)
{
    struct outcome_attempt c;

    if (attempt_copy(&c, a) < 0)
        return BLAST_ENOMEM;
    if (o->history == NULL) {
        /* every record that gets one attempt may get more: room for all at once */
        o->history = malloc(OUTCOME_HISTORY_MAX * sizeof *o->history);
        if (o->history == NULL) {
            outcome_attempt_free(&c);
            return BLAST_ENOMEM;
        }
    }
    if (o->nhistory == OUTCOME_HISTORY_MAX) {
        outcome_attempt_free(&o->history[0]);
        memmove(o->history, o->history + 1, (OUTCOME_HISTORY_MAX - 1) * sizeof *o->history);
        o->nhistory--;
    }
    o->history[o->nhistory++] = c;
    return 0;
}

int outcome_copy(struct outcome *dst, const struct outcome *src)
{
    size_t i;

    outcome_init(dst);
    dst->row = src->row;
    dst->status = src->status;
    dst->step = src->step;
    dst->code = src->code;
    memcpy(dst->enhanced, src->enhanced, sizeof dst->enhanced);
    dst->attempts = src->attempts;
    dst->size = src->size;
    dst->first = src->first;
    dst->last = src->last;
    if (outcome_set(&dst->email, src->email) < 0 || outcome_set(&dst->reply, src->reply) < 0 ||
        outcome_set(&dst->detail, src->detail) < 0 || outcome_set(&dst->relay, src->relay) < 0 ||
        outcome_set(&dst->message_id, src->message_id) < 0 ||
        outcome_set(&dst->queue_id, src->queue_id) < 0)
        goto fail;
    for (i = 0; i < src->nhistory; i++)
        if (outcome_add_attempt(dst, &src->history[i]) < 0)
            goto fail;
    dst->bounce = src->bounce;
    dst->bounce.rule = dst->bounce.diagnostic = dst->bounce.source = NULL;
    if (outcome_set(&dst->bounce.rule, src->bounce.rule) < 0 ||
        outcome_set(&dst->bounce.diagnostic, src->bounce.diagnostic) < 0 ||
        outcome_set(&dst->bounce.source, src->bounce.source) < 0)
        goto fail;
    return 0;
fail:
    outcome_free(dst);
    return BLAST_ENOMEM;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* ,"key": (the formatting is by hand: printf per key showed in profiles) */
static int put_key(struct buf *b, const char *key)
{
    size_t n = strlen(key);

    if (buf_reserve(b, n + 4) < 0)
        return BLAST_ENOMEM;
    b->data[b->len++] = ',';
    b->data[b->len++] = '"';
    memcpy(b->data + b->len, key, n);
    b->len += n;
    b->data[b->len++] = '"';
    b->data[b->len++] = ':';
    b->data[b->len] = '\0';
    return 0;
}

/* A number >= 0 in decimal. */
static int put_uint(struct buf *b, unsigned long long v)
{
    char digits[24];
    size_t n = sizeof digits;

    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return buf_append(b, digits + n, sizeof digits - n);
}

static int put_time(struct buf *b, struct timeutil_stamp t)
{
    char when[40];

    if (t.sec == 0)
        return buf_append(b, "null", 4);
    timeutil_rfc3339(t, when, sizeof when);
    if (buf_putc(b, '"') < 0 || buf_puts(b, when) < 0)
        return BLAST_ENOMEM;
    return buf_putc(b, '"');
}

static int put_step(struct buf *b, enum smtp_state step)
{
    return step >= 0 && step < SMTP_STATE_COUNT ? text_json_string(b, smtp_state_name(step))
                                                : buf_append(b, "null", 4);
}

static int put_code(struct buf *b, int code)
{
    return code > 0 ? put_uint(b, (unsigned)code) : buf_append(b, "null", 4);
}

static int put_attempt(struct buf *b, const struct outcome_attempt *a)
{
    if (buf_puts(b, "{\"time\":") < 0 || put_time(b, a->time) < 0 || put_key(b, "status") < 0 ||
        text_json_string(b, outcome_status_name(a->status)) < 0 || put_key(b, "relay") < 0 ||
        text_json_string(b, a->relay) < 0 || put_key(b, "host") < 0 ||
        text_json_string(b, a->host) < 0 || put_key(b, "port") < 0 ||
        (a->port > 0 ? put_uint(b, (unsigned)a->port) : buf_append(b, "null", 4)) < 0 ||
        put_key(b, "tls") < 0 || text_json_string(b, a->tls) < 0 || put_key(b, "cipher") < 0 ||
        text_json_string(b, a->cipher) < 0 || put_key(b, "step") < 0 || put_step(b, a->step) < 0 ||
        put_key(b, "code") < 0 || put_code(b, a->code) < 0 || put_key(b, "enhanced_code") < 0 ||
        text_json_string(b, a->enhanced) < 0 || put_key(b, "reply") < 0 ||
        text_json_string(b, a->reply) < 0 || put_key(b, "queue_id") < 0 ||
        text_json_string(b, a->queue_id) < 0 || put_key(b, "detail") < 0 ||
        text_json_string(b, a->detail) < 0 || buf_putc(b, '}') < 0)
        return BLAST_ENOMEM;
    return 0;
}

/* RFC 3463 code, "" as null. */
static int put_small(struct buf *b, const char *s)
{
    return s[0] != '\0' ? text_json_string(b, s) : buf_append(b, "null", 4);
}

static int put_bounce(struct buf *b, const struct outcome_bounce *x)
{
    if (buf_puts(b, ",\"bounce\":{\"kind\":") < 0 || put_small(b, x->kind) < 0 ||
        put_key(b, "class") < 0 || put_small(b, x->class_) < 0 || put_key(b, "rule") < 0 ||
        text_json_string(b, x->rule) < 0 || put_key(b, "status") < 0 ||
        put_small(b, x->enhanced) < 0 || put_key(b, "diagnostic") < 0 ||
        text_json_string(b, x->diagnostic) < 0 || put_key(b, "source") < 0 ||
        text_json_string(b, x->source) < 0 || put_key(b, "time") < 0 || put_time(b, x->time) < 0 ||
        buf_putc(b, '}') < 0)
        return BLAST_ENOMEM;
    return 0;
}

int outcome_format_json(const struct outcome *o, bool journal, struct buf *out)
{
    size_t before = out->len, i;

    if (buf_puts(out, journal ? "{\"t\":\"result\",\"email\":" : "{\"email\":") < 0 ||
        text_json_string(out, o->email) < 0 || put_key(out, "row") < 0 ||
        put_uint(out, o->row) < 0 || put_key(out, "status") < 0 ||
        text_json_string(out, outcome_status_name(o->status)) < 0 || put_key(out, "code") < 0 ||
        put_code(out, o->code) < 0 || put_key(out, "enhanced_code") < 0 ||
        text_json_string(out, o->enhanced) < 0 || put_key(out, "reply") < 0 ||
        text_json_string(out, o->reply) < 0 || put_key(out, "step") < 0 ||
        put_step(out, o->step) < 0 || put_key(out, "detail") < 0 ||
        text_json_string(out, o->detail) < 0 || put_key(out, "relay") < 0 ||
        text_json_string(out, o->relay) < 0 || put_key(out, "attempts") < 0 ||
        put_uint(out, o->attempts > 0 ? (unsigned)o->attempts : 0) < 0 ||
        put_key(out, "message_id") < 0 || text_json_string(out, o->message_id) < 0 ||
        put_key(out, "queue_id") < 0 || text_json_string(out, o->queue_id) < 0 ||
        put_key(out, "size") < 0 ||
        (o->size > 0 ? put_uint(out, o->size) : buf_append(out, "null", 4)) < 0 ||
        put_key(out, "first_attempt") < 0 || put_time(out, o->first) < 0 ||
        put_key(out, "last_attempt") < 0 || put_time(out, o->last) < 0 ||
        buf_puts(out, ",\"history\":[") < 0)
        goto fail;
    for (i = 0; i < o->nhistory; i++)
        if ((i > 0 && buf_putc(out, ',') < 0) || put_attempt(out, &o->history[i]) < 0)
            goto fail;
    if (buf_putc(out, ']') < 0 || (o->bounce.set && put_bounce(out, &o->bounce) < 0) ||
        buf_putc(out, '}') < 0)
        goto fail;
    return 0;
fail:
    out->len = before;
    if (out->data != NULL)
        out->data[before] = '\0';
    return BLAST_ENOMEM;
}

/* ---- reading ---------------------------------------------------------------------------- */

struct reader {
    json_t *obj;
    const char *where; /* "", or "history[3]: " */
    struct blast_error *err;
};

static int wrong(struct reader *r, const char *key, const char *want)
{
    return blast_error_set(r->err, BLAST_EINVAL, NULL, 0, 0, "%s\"%s\" is not %s", r->where, key,
                           want);
}

/* A string or null (absent: null) into *field. */
static int get_string(struct reader *r, const char *key, char **field)
{
    json_t *v = json_object_get(r->obj, key);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return wrong(r, key, "a string");
    if (outcome_set(field, json_string_value(v)) < 0)
        return blast_error_set(r->err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return 0;
}

/* A short string or null into a fixed buffer. */
static int get_small(struct reader *r, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(r->obj, key);

    out[0] = '\0';
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= size)
        return wrong(r, key, "a short string");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* An integer from lo to hi, or null (0). */
static int get_int(struct reader *r, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(r->obj, key);

    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return wrong(r, key, "a number in range");
    *out = json_integer_value(v);
    return 0;
}

static int get_time(struct reader *r, const char *key, struct timeutil_stamp *out)
{
    json_t *v = json_object_get(r->obj, key);

    out->sec = 0;
    out->usec = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || timeutil_parse_rfc3339(json_string_value(v), out) < 0)
        return wrong(r, key, "an RFC 3339 time");
    return 0;
}

static int get_step(struct reader *r, enum smtp_state *out)
{
    json_t *v = json_object_get(r->obj, "step");
    int s;

    *out = OUTCOME_STEP_NONE;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || (s = smtp_state_parse(json_string_value(v))) < 0)
        return wrong(r, "step", "an SMTP step");
    *out = (enum smtp_state)s;
    return 0;
}

static int get_status(struct reader *r, enum outcome_status *out)
{
    json_t *v = json_object_get(r->obj, "status");
    int s;

    if (!json_is_string(v))
        return wrong(r, "status", "a status");
    s = outcome_status_parse(json_string_value(v));
    *out = s >= 0 ? (enum outcome_status)s : OUTCOME_STATUS_COUNT;
    return 0;
}

static int read_attempt(json_t *v, size_t index, struct outcome_attempt *a, struct blast_error *err)
{
    char where[40];
    struct reader r = {v, where, err};
    json_int_t code, port;
    int rc;

    snprintf(where, sizeof where, "history[%zu]: ", index);
    memset(a, 0, sizeof *a);
    if (!json_is_object(v))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "history[%zu] is not an object",
                               index);
    if ((rc = get_time(&r, "time", &a->time)) < 0 || (rc = get_status(&r, &a->status)) < 0 ||
        (rc = get_step(&r, &a->step)) < 0 || (rc = get_int(&r, "code", 0, 999, &code)) < 0 ||
        (rc = get_int(&r, "port", 0, 65535, &port)) < 0 ||
        (rc = get_small(&r, "enhanced_code", a->enhanced, sizeof a->enhanced)) < 0 ||
        (rc = get_small(&r, "tls", a->tls, sizeof a->tls)) < 0 ||
        (rc = get_small(&r, "cipher", a->cipher, sizeof a->cipher)) < 0 ||
        (rc = get_string(&r, "relay", &a->relay)) < 0 ||
        (rc = get_string(&r, "host", &a->host)) < 0 ||
        (rc = get_string(&r, "reply", &a->reply)) < 0 ||
        (rc = get_string(&r, "queue_id", &a->queue_id)) < 0 ||
        (rc = get_string(&r, "detail", &a->detail)) < 0) {
        outcome_attempt_free(a);
        return rc;
    }
    a->code = (int)code;
    a->port = (int)port;
    return 0;
}

static int read_bounce(json_t *v, struct outcome_bounce *x, struct blast_error *err)
{
    struct reader r = {v, "bounce: ", err};
    int rc;

    if (!json_is_object(v))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "\"bounce\" is not an object");
    if ((rc = get_small(&r, "kind", x->kind, sizeof x->kind)) < 0 ||
        (rc = get_small(&r, "class", x->class_, sizeof x->class_)) < 0 ||
        (rc = get_small(&r, "status", x->enhanced, sizeof x->enhanced)) < 0 ||
        (rc = get_string(&r, "rule", &x->rule)) < 0 ||
        (rc = get_string(&r, "diagnostic", &x->diagnostic)) < 0 ||
        (rc = get_string(&r, "source", &x->source)) < 0 ||
        (rc = get_time(&r, "time", &x->time)) < 0)
        return rc;
    x->set = true;
    return 0;
}

int outcome_from_json(json_t *entry, struct outcome *o, struct blast_error *err)
{
    struct reader r = {entry, "", err};
    json_int_t row, code, attempts, size;
    json_t *h, *v;
    size_t i, from;
    int rc;

    outcome_init(o);
    if (!json_is_object(entry))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "a recipient is not an object");
    if ((rc = get_status(&r, &o->status)) < 0 || (rc = get_step(&r, &o->step)) < 0 ||
        (rc = get_int(&r, "row", 0, INT64_MAX, &row)) < 0 ||
        (rc = get_int(&r, "code", 0, 999, &code)) < 0 ||
        (rc = get_int(&r, "attempts", 0, 1000000, &attempts)) < 0 ||
        (rc = get_int(&r, "size", 0, INT64_MAX, &size)) < 0 ||
        (rc = get_small(&r, "enhanced_code", o->enhanced, sizeof o->enhanced)) < 0 ||
        (rc = get_string(&r, "email", &o->email)) < 0 ||
        (rc = get_string(&r, "reply", &o->reply)) < 0 ||
        (rc = get_string(&r, "detail", &o->detail)) < 0 ||
        (rc = get_string(&r, "relay", &o->relay)) < 0 ||
        (rc = get_string(&r, "message_id", &o->message_id)) < 0 ||
        (rc = get_string(&r, "queue_id", &o->queue_id)) < 0 ||
        (rc = get_time(&r, "first_attempt", &o->first)) < 0 ||
        (rc = get_time(&r, "last_attempt", &o->last)) < 0)
        goto fail;
    o->row = (size_t)row;
    o->code = (int)code;
    o->attempts = (int)attempts;
    o->size = (size_t)size;
    h = json_object_get(entry, "history");
    if (h != NULL && !json_is_null(h)) {
        if (!json_is_array(h)) {
            rc = wrong(&r, "history", "an array");
            goto fail;
        }
        /* the latest ones, as the writer keeps them */
        from =
            json_array_size(h) > OUTCOME_HISTORY_MAX ? json_array_size(h) - OUTCOME_HISTORY_MAX : 0;
        for (i = from; i < json_array_size(h); i++) {
            struct outcome_attempt a;
            v = json_array_get(h, i);
            if ((rc = read_attempt(v, i, &a, err)) < 0)
                goto fail;
            rc = outcome_add_attempt(o, &a);
            outcome_attempt_free(&a);
            if (rc < 0) {
                rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
                goto fail;
            }
        }
    }
    v = json_object_get(entry, "bounce");
    if (v != NULL && !json_is_null(v) && (rc = read_bounce(v, &o->bounce, err)) < 0)
        goto fail;
    return 0;
fail:
    outcome_free(o);
    return rc;
}
