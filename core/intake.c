/*
 * intake - the bounce mailbox read into the database. See intake.h.
 *
 * A forged bounce must not suppress anyone: a message that carries a VERP token
 * is attributed by that token alone, and a token that does not verify under any
 * campaign's secret makes the message one to ignore, whatever addresses its report
 * names. Without a token, only an address or a Message-ID that a campaign's
 * journal shows was sent counts; an unsubscribe request counts for its sender.
 */
#include "intake.h"
#include "addrset.h"
#include "journal.h"
#include "timeutil.h"
#include "verp.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Messages fetched between two commits: one sync per batch, not per message. */
#define BATCH 200

/* One journal's index: row -> address, and the hashes of addresses and Message-IDs. */
struct sent_index {
    bool loaded;
    struct buf arena; /* the addresses, NUL-terminated */
    size_t *row_at;   /* row -> offset in arena + 1 (0: not sent) */
    size_t nrows;
    struct hashrow *by_address; /* sorted by hash */
    size_t naddress, address_cap;
    struct hashrow *by_id;
    size_t nid, id_cap;
};

struct hashrow {
    uint64_t hash;
    size_t row;
};

struct intake {
    const struct intake_options *o;
    struct sent_index *index; /* one per campaign */
    unsigned char (*tags)[3]; /* the campaigns' VERP tags */
    const char **unsubscribe; /* the campaigns' mailto addresses */
    size_t nunsubscribe;
};

static const uint8_t hash_key[16] = {0};

static uint64_t hash_lower(const char *s)
{
    char buf[512];
    size_t n = 0;
    for (; n < sizeof buf && s[n] != '\0'; n++)
        buf[n] = (char)(s[n] >= 'A' && s[n] <= 'Z' ? s[n] - 'A' + 'a' : s[n]);
    return addrset_siphash(hash_key, buf, n);
}

int intake_new(const struct intake_options *o, struct intake **out, struct blast_error *err)
{
    struct intake *in = calloc(1, sizeof *in);

    *out = NULL;
    if (in == NULL || (in->index = calloc(o->ncampaigns + 1, sizeof *in->index)) == NULL ||
        (in->tags = calloc(o->ncampaigns + 1, sizeof *in->tags)) == NULL ||
        (in->unsubscribe = calloc(o->ncampaigns + 1, sizeof *in->unsubscribe)) == NULL) {
        intake_free(in);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    in->o = o;
    for (size_t i = 0; i < o->ncampaigns; i++) {
        unsigned char md[32];
        const struct campaign *c = o->campaigns[i].c;
        EVP_Digest(c->name, strlen(c->name), md, NULL, EVP_sha256(), NULL);
        memcpy(in->tags[i], md, 3);
        if (c->list_unsubscribe.mailto != NULL)
            in->unsubscribe[in->nunsubscribe++] = c->list_unsubscribe.mailto;
    }
    *out = in;
    return 0;
}

static void index_free(struct sent_index *x)
{
    buf_free(&x->arena);
    free(x->row_at);
    free(x->by_address);
    free(x->by_id);
}

void intake_free(struct intake *in)
{
    if (in == NULL)
        return;
    for (size_t i = 0; in->index != NULL && i < in->o->ncampaigns; i++)
        index_free(&in->index[i]);
    free(in->index);
    free(in->tags);
    free(in->unsubscribe);
    free(in);
}

/* ---- the journals' index ----------------------------------------------------------------- */

static int push_hash(struct hashrow **v, size_t *n, size_t *cap, uint64_t h, size_t row)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        struct hashrow *g = realloc(*v, ncap * sizeof *g);
        if (g == NULL)
            return BLAST_ENOMEM;
        *v = g;
        *cap = ncap;
    }
    (*v)[(*n)++] = (struct hashrow){h, row};
    return 0;
}

static int on_sent(void *arg, const struct journal_sent *s)
{
    struct sent_index *x = arg;

    if (s->row >= x->nrows) {
        size_t n = s->row + 1 > x->nrows * 2 ? s->row + 1 : x->nrows * 2;
        size_t *g = realloc(x->row_at, n * sizeof *g);
        if (g == NULL)
            return BLAST_ENOMEM;
        memset(g + x->nrows, 0, (n - x->nrows) * sizeof *g);
        x->row_at = g;
        x->nrows = n;
    }
    if (x->row_at[s->row] == 0) { /* a retry sends to the same address: indexed once */
        x->row_at[s->row] = x->arena.len + 1;
        if (buf_append(&x->arena, s->email, strlen(s->email) + 1) < 0 ||
            push_hash(&x->by_address, &x->naddress, &x->address_cap, hash_lower(s->email), s->row) <
                0)
            return BLAST_ENOMEM;
    }
    if (s->message_id != NULL &&
        push_hash(&x->by_id, &x->nid, &x->id_cap, hash_lower(s->message_id), s->row) < 0)
        return BLAST_ENOMEM;
    return 0;
}

static int cmp_hash(const void *a, const void *b)
{
    const struct hashrow *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (x->row > y->row) - (x->row < y->row);
}

/* The campaign's index, read from its journal the first time it is needed. */
static struct sent_index *index_of(struct intake *in, size_t k, struct blast_error *err)
{
    struct sent_index *x = &in->index[k];
    const struct intake_campaign *ic = &in->o->campaigns[k];
    struct blast_error e = {0};
    int rc;

    if (x->loaded)
        return x;
    x->loaded = true;
    buf_init(&x->arena);
    /* a shard's rows are disjoint from the others' and numbered as in the list */
    for (size_t i = 0; i <= ic->nshard_journals; i++) {
        const char *path = i == 0 ? ic->journal : ic->shard_journals[i - 1];
        if (path == NULL)
            continue;
        rc = journal_read_sent(path, on_sent, x, &e);
        if (rc == BLAST_ENOMEM) {
            blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            return NULL;
        }
        if (rc < 0) /* no journal yet: nothing was sent, nothing is attributed to it */
            log_msg(in->o->log, LOG_LEVEL_DEBUG, "campaign '%s': %s", ic->c->name, e.text);
    }
    qsort(x->by_address, x->naddress, sizeof *x->by_address, cmp_hash);
    qsort(x->by_id, x->nid, sizeof *x->by_id, cmp_hash);
    return x;
}

static const char *address_of_row(const struct sent_index *x, size_t row)
{
    return row < x->nrows && x->row_at[row] != 0 ? x->arena.data + x->row_at[row] - 1 : NULL;
}

/* The last row whose hash is h and (for addresses) whose address is s; 0 when none. */
static size_t find_row(const struct sent_index *x, const struct hashrow *v, size_t n, const char *s,
                       bool check_address)
{
    uint64_t h = hash_lower(s);
    size_t lo = 0, hi = n, row = 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n && v[lo].hash == h; lo++) {
        const char *a = address_of_row(x, v[lo].row);
        if (!check_address || (a != NULL && strcasecmp(a, s) == 0))
            row = v[lo].row;
    }
    return row;
}

/* ---- attribution --------------------------------------------------------------------------- */

/* Whom a message is about. */
struct target {
    size_t campaign; /* index into o->campaigns, or ncampaigns: none */
    size_t row;
    const char *address;
    const char *via;
};

enum token_state {
    TOKEN_NONE,   /* no token: attribution by the report's recipients */
    TOKEN_VALID,  /* a campaign's, for a row its journal sent: t says which */
    TOKEN_FORGED, /* a token no campaign's secret verifies */
    TOKEN_NO_ROW, /* verified, but the campaign's journal never sent that row */
};

/* A VERP token in the addresses it was delivered to, checked under the campaigns' secrets. */
static enum token_state by_token(struct intake *in, const struct bounce_message *m,
                                 struct target *t, struct blast_error *err)
{
    const struct intake_options *o = in->o;
    enum token_state state = TOKEN_NONE;

    for (size_t a = 0; a < m->ndelivered_to; a++)
        for (size_t k = 0; k < o->ncampaigns; k++) {
            const struct intake_campaign *ic = &o->campaigns[k];
            char token[VERP_TOKEN_SIZE];
            struct verp_claim claim;
            if (ic->secret == NULL || ic->c->return_path.address == NULL ||
                verp_find_token(ic->c->return_path.address, m->delivered_to[a], token,
                                sizeof token) == 0)
                continue;
            if (state != TOKEN_NO_ROW)
                state = TOKEN_FORGED; /* until a campaign's secret verifies it */
            if (verp_parse(token, strlen(token), &claim) < 0)
                continue;
            for (size_t j = 0; j < o->ncampaigns; j++) {
                const struct intake_campaign *jc = &o->campaigns[j];
                if (jc->secret == NULL || memcmp(claim.campaign_tag, in->tags[j], 3) != 0 ||
                    !verp_verify(jc->secret, jc->secret_len, jc->c->name, &claim))
                    continue;
                struct sent_index *x = index_of(in, j, err);
                if (x == NULL)
                    return TOKEN_NONE;
                const char *addr = address_of_row(x, (size_t)claim.row);
                if (addr == NULL) { /* the journal never sent it (or is gone): nothing to act on */
                    state = TOKEN_NO_ROW;
                    continue;
                }
                *t = (struct target){j, (size_t)claim.row, addr, "verp"};
                return TOKEN_VALID;
            }
        }
    return state;
}

/* The campaign and row that sent to address, or whose Message-ID is id. */
static bool lookup(struct intake *in, const char *address, const char *id, const char *via,
                   struct target *t, struct blast_error *err)
{
    for (size_t k = 0; k < in->o->ncampaigns; k++) {
        struct sent_index *x = index_of(in, k, err);
        size_t row = 0;
        if (x == NULL)
            return false;
        if (id != NULL)
            row = find_row(x, x->by_id, x->nid, id, false);
        else if (address != NULL)
            row = find_row(x, x->by_address, x->naddress, address, true);
        if (row != 0) {
            *t = (struct target){k, row, address_of_row(x, row), via};
            return true;
        }
    }
    return false;
}

/* ---- recording ----------------------------------------------------------------------------- */

struct recording {
    struct intake *in;
    const struct bounce_message *m;
    int64_t now;
    struct intake_stats *st;
    size_t events;
};

static int suppress_class_of(enum bounce_class c)
{
    switch (c) {
    case BOUNCE_HARD:
        return SUPPRESS_HARD;
    case BOUNCE_COMPLAINT:
        return SUPPRESS_COMPLAINT;
    case BOUNCE_UNSUBSCRIBE:
        return SUPPRESS_UNSUBSCRIBE;
    case BOUNCE_SOFT:
        return SUPPRESS_SOFT;
    default:
        return -1;
    }
}

/* One event, and the suppression it leads to. */
static int record(struct recording *r, const struct target *t, const struct bounce_recipient *rcpt,
                  const struct bounce_verdict *v, struct blast_error *err)
{
    const struct intake_options *o = r->in->o;
    const char *campaign = t->campaign < o->ncampaigns ? o->campaigns[t->campaign].c->name : NULL;
    struct suppress_event e = {t->address,
                               campaign,
                               t->row,
                               bounce_kind_name(r->m->kind),
                               bounce_class_name(v->class),
                               v->rule,
                               rcpt != NULL ? rcpt->status : NULL,
                               rcpt != NULL ? rcpt->diagnostic : NULL,
                               r->m->message_id,
                               t->via,
                               rcpt != NULL ? rcpt->action : NULL,
                               r->now};
    int sc = suppress_class_of(v->class), rc;
    size_t soft = 0;
    struct blast_error e2 = {0};

    if ((rc = suppressdb_event_add(o->db, &e, &e2)) < 0) {
        if (rc == BLAST_EINVAL) /* not an address we could ever send to: nothing to keep */
            return 0;
        return blast_error_set(err, rc, e2.source, 0, 0, "%s", e2.text);
    }
    r->events++;
    r->st->events++;
    r->st->by_class[v->class]++;
    if (sc == SUPPRESS_SOFT) {
        if ((rc = suppressdb_event_count(o->db, t->address, "soft", r->now - o->soft_window / 1000,
                                         &soft, err)) < 0)
            return rc;
        if (soft < (size_t)o->soft_count)
            return 0;
    }
    if (sc < 0)
        return 0;
    struct suppress_entry s = {t->address, (enum suppress_class)sc, v->rule, campaign,
                               r->now,     r->m->message_id};
    if ((rc = suppressdb_add(o->db, &s, err)) < 0)
        return rc;
    r->st->suppressed++;
    log_msg(o->log, LOG_LEVEL_INFO, "suppressed %s: %s (%s)%s%s", t->address,
            bounce_class_name(v->class), v->rule, campaign ? ", campaign " : "",
            campaign ? campaign : "");
    return 0;
}

/* The report's recipient that is t's address, or else its first. */
static const struct bounce_recipient *recipient_for(const struct bounce_message *m,
                                                    const char *address)
{
    for (size_t i = 0; i < m->nrecipients; i++) {
        const struct bounce_recipient *r = &m->recipients[i];
        if ((r->final_recipient && strcasecmp(r->final_recipient, address) == 0) ||
            (r->original_recipient && strcasecmp(r->original_recipient, address) == 0))
            return r;
    }
    return m->nrecipients > 0 ? &m->recipients[0] : NULL;
}

static int record_one(struct recording *r, const struct target *t, struct blast_error *err)
{
    const struct bounce_recipient *rcpt = NULL;
    const struct bounce_verdict *v = &r->m->verdict;

    if (r->m->kind == BOUNCE_KIND_DSN || r->m->kind == BOUNCE_KIND_PLAIN ||
        r->m->kind == BOUNCE_KIND_ARF) {
        rcpt = recipient_for(r->m, t->address);
        if (rcpt != NULL)
            v = &rcpt->verdict;
    }
    return record(r, t, rcpt, v, err);
}

/* Without a token: each recipient a report names that a campaign sent to, or the message it
 * returns. */
static int record_untokened(struct recording *r, const char **why, struct blast_error *err)
{
    const struct bounce_message *m = r->m;
    struct target t;
    int rc;

    if (m->kind == BOUNCE_KIND_UNSUBSCRIBE || m->kind == BOUNCE_KIND_AUTOREPLY) {
        if (m->from == NULL) {
            *why = "a reply or request without a From address";
            return 0;
        }
        if (!lookup(r->in, m->about_message_id ? NULL : m->from, m->about_message_id,
                    m->about_message_id ? "message-id" : "from", &t, err) &&
            !lookup(r->in, m->from, NULL, "from", &t, err)) {
            if (m->kind == BOUNCE_KIND_AUTOREPLY) {
                *why = "a reply from an address no campaign sent to";
                return 0;
            }
            t = (struct target){r->in->o->ncampaigns, 0, m->from, "from"};
        }
        if (m->kind == BOUNCE_KIND_UNSUBSCRIBE)
            t.address = m->from; /* the request is its sender's */
        return record(r, &t, NULL, &m->verdict, err);
    }
    for (size_t i = 0; i < m->nrecipients; i++) {
        const struct bounce_recipient *rc2 = &m->recipients[i];
        const char *a = rc2->final_recipient ? rc2->final_recipient : rc2->original_recipient;
        bool found = a != NULL && lookup(r->in, a, NULL, "recipient", &t, err);
        if (!found && rc2->original_recipient != NULL && a != rc2->original_recipient)
            found = lookup(r->in, rc2->original_recipient, NULL, "recipient", &t, err);
        if (found && (rc = record(r, &t, rc2, &rc2->verdict, err)) < 0)
            return rc;
    }
    if (r->events == 0 && m->about_message_id != NULL &&
        lookup(r->in, NULL, m->about_message_id, "message-id", &t, err))
        return record_one(r, &t, err);
    if (r->events == 0)
        *why = "names no recipient the campaigns sent to";
    return 0;
}

static void digest_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int64_t wall_now(const struct intake_options *o)
{
    return o->now != NULL ? o->now() : (int64_t)time(NULL);
}

int intake_message(struct intake *in, const void *data, size_t len, const char *uid,
                   enum intake_result *result, struct intake_stats *st, struct blast_error *err)
{
    const struct intake_options *o = in->o;
    struct bounce_options bo = {in->unsubscribe, in->nunsubscribe};
    struct bounce_message m;
    struct blast_error perr = {0};
    struct recording r = {in, &m, wall_now(o), st, 0};
    char digest[65], seen[32], detail[BLAST_ERROR_TEXT_MAX + 64];
    const char *why = NULL, *res;
    struct target t;
    int rc;

    digest_hex(data, len, digest);
    if ((rc = suppressdb_intake_find(o->db, digest, seen, sizeof seen, err)) < 0)
        return rc;
    if (rc == 1) {
        *result = strcmp(seen, "recorded") == 0 ? INTAKE_AGAIN
                  : strcmp(seen, "error") == 0  ? INTAKE_ERROR
                                                : INTAKE_IGNORED;
        if (*result == INTAKE_AGAIN)
            st->again++;
        return 0;
    }
    st->read++;
    detail[0] = '\0';
    if (bounce_parse(data, len, &bo, &m, &perr) < 0) {
        if (perr.code == BLAST_ENOMEM) {
            bounce_message_free(&m);
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        }
        *result = INTAKE_ERROR;
        snprintf(detail, sizeof detail, "%s", perr.text);
    } else if (m.kind == BOUNCE_KIND_OTHER) {
        *result = INTAKE_IGNORED;
        snprintf(detail, sizeof detail, "not a bounce, complaint, reply or request");
    } else {
        enum token_state ts = by_token(in, &m, &t, err);
        if (err->code != 0)
            rc = err->code;
        else if (ts == TOKEN_VALID)
            rc = record_one(&r, &t, err);
        else if (ts == TOKEN_FORGED)
            why = "its VERP token does not verify (forged or altered): nothing recorded";
        else if (ts == TOKEN_NO_ROW)
            why = "its VERP token is a campaign's, for a row its journal does not show sent "
                  "(is the journal gone?): nothing recorded";
        else
            rc = record_untokened(&r, &why, err);
        if (rc < 0) {
            bounce_message_free(&m);
            return rc;
        }
        *result = r.events > 0 ? INTAKE_RECORDED : INTAKE_IGNORED;
        if (why != NULL)
            snprintf(detail, sizeof detail, "%s %s", bounce_kind_name(m.kind), why);
        else
            snprintf(detail, sizeof detail, "%s: %zu event%s", bounce_kind_name(m.kind), r.events,
                     r.events == 1 ? "" : "s");
    }
    res = *result == INTAKE_RECORDED ? "recorded" : *result == INTAKE_ERROR ? "error" : "ignored";
    if (*result == INTAKE_RECORDED)
        st->recorded++;
    else if (*result == INTAKE_ERROR)
        st->errors++;
    else
        st->ignored++;
    if (*result != INTAKE_RECORDED)
        log_msg(o->log, *result == INTAKE_ERROR ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
                "message %s%s%s: %s; left on the server", uid, m.message_id ? " " : "",
                m.message_id ? m.message_id : "", detail);
    struct suppress_intake rec = {digest, o->mailbox_url, uid, m.message_id, res, detail, r.now};
    rc = suppressdb_intake_add(o->db, &rec, err);
    bounce_message_free(&m);
    return rc;
}

/* ---- the run ------------------------------------------------------------------------------- */

static bool should_stop(const struct intake_options *o, size_t done)
{
    return (o->limit > 0 && done >= o->limit) ||
           (o->deadline > 0 && timeutil_mono_ms() >= o->deadline) || (o->stop != NULL && *o->stop);
}

struct pending_list {
    struct mailbox_item **items;
    size_t *n;
};

static int add_pending(void *arg, const char *uid)
{
    struct pending_list *p = arg;
    unsigned long long id = strtoull(uid, NULL, 10);
    for (size_t i = 0; i < *p->n; i++)
        if ((*p->items)[i].id == id)
            return 0;
    struct mailbox_item *g = realloc(*p->items, (*p->n + 1) * sizeof *g);
    if (g == NULL)
        return BLAST_ENOMEM;
    *p->items = g;
    g[*p->n].id = id;
    snprintf(g[*p->n].uid, sizeof g[*p->n].uid, "%llu", id);
    (*p->n)++;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    const struct mailbox_item *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Keep the UIDs of items [from, to) as pending (add) or forget them, in the open transaction. */
static int mark_pending(struct intake *in, const struct mailbox_item *items, size_t from, size_t to,
                        bool add, struct blast_error *err)
{
    int rc = 0;
    for (size_t i = from; rc == 0 && i < to; i++)
        rc = suppressdb_pending(in->o->db, in->o->mailbox_url, items[i].uid, add, err);
    return rc;
}

/* One batch: fetch and record [from, to) in one transaction, commit, then finish them. */
static int run_batch(struct intake *in, struct mailbox *mb, struct mailbox_item *items, size_t from,
                     size_t to, size_t *done, struct intake_stats *st, struct blast_error *err)
{
    const struct intake_options *o = in->o;
    struct mailbox_item *go = malloc((to - from + 1) * sizeof *go);
    struct buf msg = BUF_INIT;
    size_t ngo = 0, i;
    int rc = 0;

    if (go == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (o->pending && ((rc = suppressdb_begin(o->db, err)) < 0 ||
                       (rc = mark_pending(in, items, from, to, true, err)) < 0 ||
                       (rc = suppressdb_commit(o->db, err)) < 0))
        goto out;
    if ((rc = suppressdb_begin(o->db, err)) < 0)
        goto out;
    for (i = from; i < to && !should_stop(o, *done); i++) {
        enum intake_result res;
        struct blast_error ferr = {0};
        rc = mailbox_fetch(mb, &items[i], &msg, o->message_max, &ferr);
        if (rc == BLAST_EINVAL) { /* too large: an error of that message alone */
            log_msg(o->log, LOG_LEVEL_WARN, "%s; left on the server", ferr.text);
            st->errors++;
            rc = 0;
            (*done)++;
            continue;
        }
        if (rc < 0) {
            *err = ferr;
            break;
        }
        if ((rc = intake_message(in, msg.data, msg.len, items[i].uid, &res, st, err)) < 0)
            break;
        (*done)++;
        if (res == INTAKE_RECORDED || res == INTAKE_AGAIN)
            go[ngo++] = items[i];
    }
    /* what was read so far is committed even when the server failed in the middle */
    if (o->pending) {
        struct blast_error perr = {0};
        int prc = mark_pending(in, items, from, i, false, &perr);
        if (prc < 0 && rc == 0) {
            *err = perr;
            rc = prc;
        }
    }
    if (rc < 0 && err->code == BLAST_ENOMEM) {
        suppressdb_rollback(o->db);
        goto out;
    }
    {
        struct blast_error cerr = {0};
        int crc = suppressdb_commit(o->db, &cerr);
        if (crc < 0) {
            suppressdb_rollback(o->db);
            if (rc == 0)
                *err = cerr;
            rc = crc;
            goto out;
        }
    }
    /* durable now: the server may forget them */
    if (ngo > 0) {
        struct blast_error ferr = {0};
        int frc = mailbox_finish(mb, go, ngo, o->after, o->folder, &ferr);
        if (frc < 0 && rc == 0) {
            *err = ferr;
            rc = frc;
        } else if (frc == 0) {
            st->finished += ngo;
        }
    }
out:
    buf_free(&msg);
    free(go);
    return rc;
}

int intake_run(struct intake *in, struct mailbox *mb, struct intake_stats *st,
               struct blast_error *err)
{
    const struct intake_options *o = in->o;
    struct mailbox_item *items = NULL;
    size_t n = 0, done = 0;
    int rc;

    if ((rc = mailbox_list(mb, &items, &n, err)) < 0)
        return rc;
    if (o->pending) {
        struct pending_list p = {&items, &n};
        if ((rc = suppressdb_pending_each(o->db, o->mailbox_url, add_pending, &p, err)) < 0)
            goto out;
        if (n > 1)
            qsort(items, n, sizeof *items, cmp_item);
    }
    st->listed = n;
    log_msg(o->log, LOG_LEVEL_DEBUG, "%zu message%s to read", n, n == 1 ? "" : "s");
    for (size_t from = 0; from < n && !should_stop(o, done); from += BATCH) {
        size_t to = from + BATCH < n ? from + BATCH : n;
        if ((rc = run_batch(in, mb, items, from, to, &done, st, err)) < 0)
            break;
    }
out:
    free(items);
    return rc;
}

/* ---- what came back, for the report ------------------------------------------------------- */

struct later_row {
    size_t row;
    int rank;
    char *address, *rule, *diagnostic, *source;
    char kind[16], class_[16], enhanced[16];
    int64_t time;
};

struct intake_later {
    struct later_row *v;
    size_t n, cap;
};

static void later_row_free(struct later_row *x)
{
    free(x->address);
    free(x->rule);
    free(x->diagnostic);
    free(x->source);
}

/* How much an event says about a delivered message's fate (0: nothing). */
static int later_rank(const struct suppress_event *e)
{
    if (strcmp(e->class_name, "complaint") == 0)
        return 4;
    if (strcmp(e->class_name, "hard") == 0)
        return 3;
    if (strcmp(e->class_name, "policy") == 0)
        return 2;
    /* a soft bounce the mail system gave up on (RFC 3464 "failed"), not a delay */
    if (strcmp(e->class_name, "soft") == 0 &&
        ((e->status != NULL && e->status[0] == '5') ||
         (e->action != NULL && strcmp(e->action, "failed") == 0)))
        return 1;
    return 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s != NULL ? strdup(s) : NULL;
    if (s != NULL && d == NULL)
        *oom = true;
    return d;
}

static int on_event(void *arg, const struct suppress_event *e)
{
    struct intake_later *l = arg;
    int rank = later_rank(e);
    struct later_row *x;
    bool oom = false;

    if (rank == 0 || e->row == 0)
        return 0;
    if (l->n > 0 && l->v[l->n - 1].row == e->row) { /* the same row: the weightier, or later */
        x = &l->v[l->n - 1];
        if (rank < x->rank)
            return 0;
        later_row_free(x);
    } else {
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 64;
            struct later_row *g = realloc(l->v, ncap * sizeof *g);
            if (g == NULL)
                return BLAST_ENOMEM;
            l->v = g;
            l->cap = ncap;
        }
        x = &l->v[l->n++];
    }
    memset(x, 0, sizeof *x);
    x->row = (size_t)e->row;
    x->rank = rank;
    x->time = e->time;
    snprintf(x->kind, sizeof x->kind, "%s", e->kind != NULL ? e->kind : "");
    snprintf(x->class_, sizeof x->class_, "%s", e->class_name);
    snprintf(x->enhanced, sizeof x->enhanced, "%s", e->status != NULL ? e->status : "");
    x->address = dup_or_null(e->address, &oom);
    x->rule = dup_or_null(e->rule, &oom);
    x->diagnostic = dup_or_null(e->diagnostic, &oom);
    x->source = dup_or_null(e->source, &oom);
    return oom ? BLAST_ENOMEM : 0;
}

int intake_later_load(struct suppressdb *db, const char *campaign, struct intake_later **out,
                      struct blast_error *err)
{
    struct intake_later *l = calloc(1, sizeof *l);
    int rc;

    *out = NULL;
    if (l == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    rc = suppressdb_events(db, campaign, on_event, l, err); /* ordered by row */
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (rc < 0) {
        intake_later_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int intake_later_open(const char *path, const char *campaign, struct intake_later **out,
                      struct blast_error *err)
{
    struct suppressdb *db = NULL;
    int rc;

    *out = NULL;
    if ((rc = suppressdb_open(path, false, &db, err)) == 0)
        rc = intake_later_load(db, campaign, out, err);
    suppressdb_close(db);
    return rc;
}

size_t intake_later_count(const struct intake_later *l)
{
    return l != NULL ? l->n : 0;
}

int intake_later_apply(const struct intake_later *l, struct outcome *o)
{
    size_t lo = 0, hi = l != NULL ? l->n : 0;
    const struct later_row *x;

    if (o->status != OUTCOME_DELIVERED && o->status != OUTCOME_UNKNOWN)
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].row < o->row)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == l->n || l->v[lo].row != o->row)
        return 0;
    x = &l->v[lo];
    if (o->email == NULL || x->address == NULL || strcasecmp(o->email, x->address) != 0)
        return 0; /* the row was another address then: the list changed since */
    o->status = x->rank == 4 ? OUTCOME_COMPLAINED : OUTCOME_BOUNCED;
    o->bounce.set = true;
    memcpy(o->bounce.kind, x->kind, sizeof o->bounce.kind);
    memcpy(o->bounce.class_, x->class_, sizeof o->bounce.class_);
    memcpy(o->bounce.enhanced, x->enhanced, sizeof o->bounce.enhanced);
    o->bounce.time = (struct timeutil_stamp){x->time, 0};
    if (outcome_set(&o->bounce.rule, x->rule) < 0 ||
        outcome_set(&o->bounce.diagnostic, x->diagnostic) < 0 ||
        outcome_set(&o->bounce.source, x->source) < 0)
        return BLAST_ENOMEM;
    return 1;
}

void intake_later_free(struct intake_later *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        later_row_free(&l->v[i]);
    free(l->v);
    free(l);
}
