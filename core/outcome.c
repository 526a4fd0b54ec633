/*
 * outcome - a recipient's result, and its one JSON form. See outcome.h.
 *
 * The JSON is written by hand, not through a jansson tree: a record is formatted
 * once per recipient per attempt on the sending path, and building thirty nodes to
 * print them at once cost more than the printing (docs/performance.md). The text
 * is what jansson's compact dump gives for the same object (same key order, same
 * escapes), so journals and reports read the same either way. Reading back is
 * from a tape (jsontape): reports of a million recipients and the journal's
 * records are read that way, and a jansson tree is copied onto one first.
 */
#include "outcome.h"
#include "jsontape.h"
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

/*
 * Every key the readers know, of the entry, of an attempt of its history and of its
 * bounce. An object's members are looked at once, each known key's value put in its
 * slot (the last one, when a key comes twice, as jansson keeps it); the readers then
 * take the slots in their own order, so that the first problem named is always the
 * same one, whatever the order of the members.
 */
#define KEYS(X)                                                                                    \
    X(STATUS, "status")                                                                            \
    X(STEP, "step")                                                                                \
    X(ROW, "row")                                                                                  \
    X(CODE, "code")                                                                                \
    X(ATTEMPTS, "attempts")                                                                        \
    X(SIZE, "size")                                                                                \
    X(ENHANCED, "enhanced_code")                                                                   \
    X(EMAIL, "email")                                                                              \
    X(REPLY, "reply")                                                                              \
    X(DETAIL, "detail")                                                                            \
    X(RELAY, "relay")                                                                              \
    X(MESSAGE_ID, "message_id")                                                                    \
    X(QUEUE_ID, "queue_id")                                                                        \
    X(FIRST, "first_attempt")                                                                      \
    X(LAST, "last_attempt")                                                                        \
    X(HISTORY, "history")                                                                          \
    X(BOUNCE, "bounce")                                                                            \
    X(TIME, "time")                                                                                \
    X(PORT, "port")                                                                                \
    X(TLS, "tls")                                                                                  \
    X(CIPHER, "cipher")                                                                            \
    X(HOST, "host")                                                                                \
    X(KIND, "kind")                                                                                \
    X(CLASS, "class")                                                                              \
    X(RULE, "rule")                                                                                \
    X(DIAGNOSTIC, "diagnostic")                                                                    \
    X(SOURCE, "source")

#define AS_ENUM(id, name) K_##id,
enum key { KEYS(AS_ENUM) K_COUNT };

#define AS_NAME(id, name) [K_##id] = {name, sizeof name - 1},
static const struct {
    const char *name;
    size_t len;
} keys[K_COUNT] = {KEYS(AS_NAME)};

/*
 * The keys by their first letter, each + 1 (0 ends a list): a member's key is
 * compared with two or three names, not all of them, since this runs for every
 * member of every recipient of a report. The round-trip tests read every key back.
 */
static const unsigned char by_letter[26][5] = {
    ['a' - 'a'] = {K_ATTEMPTS + 1},
    ['b' - 'a'] = {K_BOUNCE + 1},
    ['c' - 'a'] = {K_CODE + 1, K_CIPHER + 1, K_CLASS + 1},
    ['d' - 'a'] = {K_DETAIL + 1, K_DIAGNOSTIC + 1},
    ['e' - 'a'] = {K_EMAIL + 1, K_ENHANCED + 1},
    ['f' - 'a'] = {K_FIRST + 1},
    ['h' - 'a'] = {K_HISTORY + 1, K_HOST + 1},
    ['k' - 'a'] = {K_KIND + 1},
    ['l' - 'a'] = {K_LAST + 1},
    ['m' - 'a'] = {K_MESSAGE_ID + 1},
    ['p' - 'a'] = {K_PORT + 1},
    ['q' - 'a'] = {K_QUEUE_ID + 1},
    ['r' - 'a'] = {K_ROW + 1, K_REPLY + 1, K_RELAY + 1, K_RULE + 1},
    ['s' - 'a'] = {K_STATUS + 1, K_STEP + 1, K_SIZE + 1, K_SOURCE + 1},
    ['t' - 'a'] = {K_TIME + 1, K_TLS + 1},
};

/* The known key k (n bytes, no NUL inside), or -1. */
static int key_of(const char *k, size_t n)
{
    const unsigned char *c;

    if (n == 0 || k[0] < 'a' || k[0] > 'z')
        return -1;
    for (c = by_letter[k[0] - 'a']; *c != 0; c++)
        if (keys[*c - 1].len == n && memcmp(keys[*c - 1].name, k, n) == 0)
            return *c - 1;
    return -1;
}

struct reader {
    const struct jsontape_node *v[K_COUNT]; /* NULL: not there */
    const char *where;                      /* "", "bounce: "; NULL: "history[index]: " */
    size_t index;
    struct blast_error *err;
};

static void gather(struct reader *r, const struct jsontape_node *obj, const char *where,
                   size_t index, struct blast_error *err)
{
    const struct jsontape_node *k;
    int i;

    memset(r->v, 0, sizeof r->v);
    r->where = where;
    r->index = index;
    r->err = err;
    for (k = jsontape_first(obj); k != NULL; k = jsontape_next(obj, k + 1))
        if ((i = key_of(jsontape_string(k), jsontape_size(k))) >= 0)
            r->v[i] = k + 1;
}

static int wrong(struct reader *r, enum key key, const char *want)
{
    char where[40];

    /* formatted only now: the reader runs for every attempt of every recipient */
    if (r->where == NULL)
        snprintf(where, sizeof where, "history[%zu]: ", r->index);
    return blast_error_set(r->err, BLAST_EINVAL, NULL, 0, 0, "%s\"%s\" is not %s",
                           r->where != NULL ? r->where : where, keys[key].name, want);
}

/* Not there, or null. */
static bool none(const struct jsontape_node *v)
{
    return v == NULL || jsontape_is(v, JSONTAPE_NULL);
}

/* A string or null (absent: null) into *field. */
static int get_string(struct reader *r, enum key key, char **field)
{
    const struct jsontape_node *v = r->v[key];

    if (none(v))
        return 0;
    if (!jsontape_is(v, JSONTAPE_STRING))
        return wrong(r, key, "a string");
    if (outcome_set(field, jsontape_string(v)) < 0)
        return blast_error_set(r->err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    return 0;
}

/* A short string or null into a fixed buffer. */
static int get_small(struct reader *r, enum key key, char *out, size_t size)
{
    const struct jsontape_node *v = r->v[key];

    out[0] = '\0';
    if (none(v))
        return 0;
    if (!jsontape_is(v, JSONTAPE_STRING) || jsontape_size(v) >= size)
        return wrong(r, key, "a short string");
    memcpy(out, jsontape_string(v), jsontape_size(v) + 1);
    return 0;
}

/* An integer from lo to hi, or null (0). */
static int get_int(struct reader *r, enum key key, int64_t lo, int64_t hi, int64_t *out)
{
    const struct jsontape_node *v = r->v[key];

    *out = 0;
    if (none(v))
        return 0;
    if (!jsontape_is(v, JSONTAPE_INTEGER) || jsontape_integer(v) < lo || jsontape_integer(v) > hi)
        return wrong(r, key, "a number in range");
    *out = jsontape_integer(v);
    return 0;
}

static int get_time(struct reader *r, enum key key, struct timeutil_stamp *out)
{
    const struct jsontape_node *v = r->v[key];

    out->sec = 0;
    out->usec = 0;
    if (none(v))
        return 0;
    if (!jsontape_is(v, JSONTAPE_STRING) || timeutil_parse_rfc3339(jsontape_string(v), out) < 0)
        return wrong(r, key, "an RFC 3339 time");
    return 0;
}

static int get_step(struct reader *r, enum smtp_state *out)
{
    const struct jsontape_node *v = r->v[K_STEP];
    int s;

    *out = OUTCOME_STEP_NONE;
    if (none(v))
        return 0;
    if (!jsontape_is(v, JSONTAPE_STRING) || (s = smtp_state_parse(jsontape_string(v))) < 0)
        return wrong(r, K_STEP, "an SMTP step");
    *out = (enum smtp_state)s;
    return 0;
}

static int get_status(struct reader *r, enum outcome_status *out)
{
    const struct jsontape_node *v = r->v[K_STATUS];
    int s;

    if (!jsontape_is(v, JSONTAPE_STRING))
        return wrong(r, K_STATUS, "a status");
    s = outcome_status_parse(jsontape_string(v));
    *out = s >= 0 ? (enum outcome_status)s : OUTCOME_STATUS_COUNT;
    return 0;
}

static int read_attempt(const struct jsontape_node *v, size_t index, struct outcome_attempt *a,
                        struct blast_error *err)
{
    struct reader r;
    int64_t code, port;
    int rc;

    memset(a, 0, sizeof *a);
    if (!jsontape_is(v, JSONTAPE_OBJECT))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "history[%zu] is not an object",
                               index);
    gather(&r, v, NULL, index, err);
    if ((rc = get_time(&r, K_TIME, &a->time)) < 0 || (rc = get_status(&r, &a->status)) < 0 ||
        (rc = get_step(&r, &a->step)) < 0 || (rc = get_int(&r, K_CODE, 0, 999, &code)) < 0 ||
        (rc = get_int(&r, K_PORT, 0, 65535, &port)) < 0 ||
        (rc = get_small(&r, K_ENHANCED, a->enhanced, sizeof a->enhanced)) < 0 ||
        (rc = get_small(&r, K_TLS, a->tls, sizeof a->tls)) < 0 ||
        (rc = get_small(&r, K_CIPHER, a->cipher, sizeof a->cipher)) < 0 ||
        (rc = get_string(&r, K_RELAY, &a->relay)) < 0 ||
        (rc = get_string(&r, K_HOST, &a->host)) < 0 ||
        (rc = get_string(&r, K_REPLY, &a->reply)) < 0 ||
        (rc = get_string(&r, K_QUEUE_ID, &a->queue_id)) < 0 ||
        (rc = get_string(&r, K_DETAIL, &a->detail)) < 0) {
        outcome_attempt_free(a);
        return rc;
    }
    a->code = (int)code;
    a->port = (int)port;
    return 0;
}

static int read_bounce(const struct jsontape_node *v, struct outcome_bounce *x,
                       struct blast_error *err)
{
    struct reader r;
    int rc;

    if (!jsontape_is(v, JSONTAPE_OBJECT))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "\"bounce\" is not an object");
    gather(&r, v, "bounce: ", 0, err);
    if ((rc = get_small(&r, K_KIND, x->kind, sizeof x->kind)) < 0 ||
        (rc = get_small(&r, K_CLASS, x->class_, sizeof x->class_)) < 0 ||
        (rc = get_small(&r, K_STATUS, x->enhanced, sizeof x->enhanced)) < 0 ||
        (rc = get_string(&r, K_RULE, &x->rule)) < 0 ||
        (rc = get_string(&r, K_DIAGNOSTIC, &x->diagnostic)) < 0 ||
        (rc = get_string(&r, K_SOURCE, &x->source)) < 0 ||
        (rc = get_time(&r, K_TIME, &x->time)) < 0)
        return rc;
    x->set = true;
    return 0;
}

/*
 * Append a, whose strings o now owns, to o's history. The reader keeps at most
 * OUTCOME_HISTORY_MAX, so there is room, and the strings are not copied again as
 * outcome_add_attempt() would.
 */
static int take_attempt(struct outcome *o, const struct outcome_attempt *a)
{
    if (o->history == NULL &&
        (o->history = malloc(OUTCOME_HISTORY_MAX * sizeof *o->history)) == NULL)
        return BLAST_ENOMEM;
    o->history[o->nhistory++] = *a;
    return 0;
}

static int read_history(struct reader *r, const struct jsontape_node *h, struct outcome *o)
{
    const struct jsontape_node *e;
    size_t i = 0, from;
    int rc;

    if (none(h))
        return 0;
    if (!jsontape_is(h, JSONTAPE_ARRAY))
        return wrong(r, K_HISTORY, "an array");
    /* the latest ones, as the writer keeps them */
    from = jsontape_size(h) > OUTCOME_HISTORY_MAX ? jsontape_size(h) - OUTCOME_HISTORY_MAX : 0;
    for (e = jsontape_first(h); e != NULL; e = jsontape_next(h, e), i++) {
        struct outcome_attempt a;
        if (i < from)
            continue;
        if ((rc = read_attempt(e, i, &a, r->err)) < 0)
            return rc;
        if (take_attempt(o, &a) < 0) {
            outcome_attempt_free(&a);
            return blast_error_set(r->err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        }
    }
    return 0;
}

int outcome_from_tape(const struct jsontape_node *entry, struct outcome *o, struct blast_error *err)
{
    struct reader r;
    int64_t row, code, attempts, size;
    int rc;

    outcome_init(o);
    if (!jsontape_is(entry, JSONTAPE_OBJECT))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "a recipient is not an object");
    gather(&r, entry, "", 0, err);
    if ((rc = get_status(&r, &o->status)) < 0 || (rc = get_step(&r, &o->step)) < 0 ||
        (rc = get_int(&r, K_ROW, 0, INT64_MAX, &row)) < 0 ||
        (rc = get_int(&r, K_CODE, 0, 999, &code)) < 0 ||
        (rc = get_int(&r, K_ATTEMPTS, 0, 1000000, &attempts)) < 0 ||
        (rc = get_int(&r, K_SIZE, 0, INT64_MAX, &size)) < 0 ||
        (rc = get_small(&r, K_ENHANCED, o->enhanced, sizeof o->enhanced)) < 0 ||
        (rc = get_string(&r, K_EMAIL, &o->email)) < 0 ||
        (rc = get_string(&r, K_REPLY, &o->reply)) < 0 ||
        (rc = get_string(&r, K_DETAIL, &o->detail)) < 0 ||
        (rc = get_string(&r, K_RELAY, &o->relay)) < 0 ||
        (rc = get_string(&r, K_MESSAGE_ID, &o->message_id)) < 0 ||
        (rc = get_string(&r, K_QUEUE_ID, &o->queue_id)) < 0 ||
        (rc = get_time(&r, K_FIRST, &o->first)) < 0 || (rc = get_time(&r, K_LAST, &o->last)) < 0)
        goto fail;
    o->row = (size_t)row;
    o->code = (int)code;
    o->attempts = (int)attempts;
    o->size = (size_t)size;
    if ((rc = read_history(&r, r.v[K_HISTORY], o)) < 0)
        goto fail;
    if (!none(r.v[K_BOUNCE]) && (rc = read_bounce(r.v[K_BOUNCE], &o->bounce, err)) < 0)
        goto fail;
    return 0;
fail:
    outcome_free(o);
    return rc;
}

/*
 * A tree is read by copying it onto a tape and reading that: the keys, their
 * types, ranges and messages are then known in one place, outcome_from_tape(),
 * which the fast readers (reportread, journal) use straight from the text. The
 * copy costs less than the lookups it replaces (jsontape_from_json() walks the
 * tree once; each key was a hash lookup), and it is exact: strings keep their
 * length, numbers their type, and a tree that jansson parsed never nests deeper
 * than a tape allows (both stop at 2048).
 */
int outcome_from_json(json_t *entry, struct outcome *o, struct blast_error *err)
{
    struct jsontape t;
    int rc = 0;

    outcome_init(o);
    jsontape_init(&t);
    if (entry != NULL)
        rc = jsontape_from_json(&t, entry, err);
    if (rc == 0)
        rc = outcome_from_tape(jsontape_root(&t), o, err);
    jsontape_free(&t);
    return rc;
}
