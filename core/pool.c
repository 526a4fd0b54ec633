/*
 * pool - connection threads, the queue, rate limits, retries. See pool.h.
 *
 * One mutex guards the shared state (queue, retry heap, limiters, relay health,
 * counters); threads never hold it across I/O, rendering or journal writes. A
 * connection thread loops: wait for work its relay may take, open a session when
 * it has none, and hand the engine a feed whose next() picks the first recipient
 * that every limiter lets go now (retries that are due first), renders it, and
 * returns it; done() records the outcome or schedules a retry.
 */
#include "pool.h"
#include "provider.h"
#include "outcome.h"
#include "policy.h"
#include "ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SCAN_MAX    256   /* queued recipients looked at for one that may go now */
#define HEAP_MAX    20000 /* deferred recipients waiting to be retried in this run */
#define SHARE_SLACK 16    /* how far a relay may run ahead of its weight's share */

struct job {
    size_t row, line;
    char *email; /* as written in the list */
    struct address to;
    char domain[256]; /* lower-case ASCII, for domain_rates */
    long drate;       /* its entry in domain_rates (and p->domains), or -1 */
    long prate;       /* its provider's entry in o.providers (and p->providers), or -1 */
    struct buf fields;
    const char **ptrs;
    size_t *lens;
    size_t nfields;
    int attempts; /* made, across runs */
    int charged;  /* deferrals that were about the recipient (not a 421, not a lost session) */
    struct timeutil_stamp first;
    int64_t not_before;       /* monotonic ms */
    const struct tzone *zone; /* its send window's (o.window), or NULL */
    struct smtp_rcpt last;
    char last_relay[128];
    struct outcome rec; /* what is recorded: its email and history (every attempt, across runs) */
    /* while in flight */
    struct worker *worker;
    struct smtp_txn t;
    struct smtp_rcpt rcpt;
    char message_id[256];
    char mail_from[320]; /* its own envelope sender (return_path), or "" */
    char envid[192];
    size_t size;
    int64_t mark; /* where its "sending" record ends in the journal; -1: not written yet */
};

struct relay_state {
    const struct campaign_relay *cfg;
    struct conn_tls *tls;
    const char *password;
    struct ratelimit limit;
    int64_t shared_hold; /* shared limits: Redis said the relay's rate is spent until then */
    int64_t last_throttle, last_recover;
    int64_t times[64]; /* when the last messages left, for the rate seen */
    size_t ntimes;
    size_t sent;                /* since the working relays last changed: for weights */
    bool working;               /* counted among the working relays by share_ok() */
    struct policy_relay health; /* failures, 421s, sessions out of step; out, backing off */
    int connecting;             /* workers opening a session now */
    int open;                   /* sessions open now */
    bool ever_connected;        /* until then one worker tries alone: no storm of failed logins */
    char last_failure[200];     /* why it last failed, for recipients left untried */
};

struct worker {
    struct pool *p;
    struct relay_state *rs;
    pthread_t thread;
    bool started;
    struct smtp_session *session; /* set and cleared under the pool's mutex */
    size_t on_session;
    size_t answered; /* outcomes with a server reply on this session */
    bool renew;      /* too many recipients: the session takes no more transactions */
    int64_t idle_since;
    int64_t wake_at;
    uint32_t rng; /* jitter(); 0 until seeded */
    struct compose_result res;
};

struct pool {
    struct pool_options o;
    const struct campaign *c;
    struct policy_retry retry;
    pthread_mutex_t mu;
    pthread_cond_t work, space, changed;
    /*
     * Written to once nothing is left to send (or the pool stops): sessions still
     * being opened give up at once instead of waiting for a slow greeting.
     */
    int cancel[2];
    bool cancelled;
    struct job **ready;
    size_t rcap, rhead, rcount;
    struct job **heap;
    size_t hcount, hcap;
    size_t inflight;
    bool producer_done, stopping, interrupted_sessions;
    char stop_reason[160];
    int64_t drain_until;
    int fatal;
    struct blast_error fatal_err;
    struct ratelimit global;
    struct ratelimit *domains;
    struct ratelimit *providers; /* one a provider of o.providers that has a pace */
    struct breaker breaker;      /* the first attempts judged (under mu) */
    /*
     * Shared limits (o.shared, docs/sharding.md): until when Redis said the global
     * rate and each domain's are spent, and when it may be asked again after it
     * could not be used. What a relay's rate is spent is in its relay_state.
     */
    int64_t global_hold, shared_retry;
    int64_t *domain_holds;
    int64_t *provider_holds; /* shared limits: until when Redis holds each provider's domains */
    struct relay_state *relays;
    size_t nrelays;
    struct worker *workers;
    size_t nworkers, live;
    size_t submitted, sessions, messages, round_trips;
    size_t held_window;                   /* deferred: their window closed while they waited */
    size_t results[OUTCOME_STATUS_COUNT]; /* atomic: counted outside the mutex */
};

static void relay_event(struct pool *p, struct relay_state *rs, enum policy_relay_event ev,
                        const char *why);

/* ---- options for a relay's sessions ---------------------------------------------------- */

void pool_smtp_options(const struct campaign *c, const struct campaign_relay *relay,
                       struct conn_tls *tls, const char *password, const struct log *lg,
                       struct smtp_options *so)
{
    memset(so, 0, sizeof *so);
    so->host = relay->host;
    so->port = relay->port;
    so->label = relay->name;
    so->tls = relay->tls;
    so->tls_ctx = tls;
    so->helo_name = c->helo;
    so->username = relay->username;
    so->password = password;
    so->auth = relay->auth;
    so->allow_plaintext_auth = relay->allow_plaintext;
    so->chunking = c->chunking;
    so->dsn_notify = c->dsn.notify;
    so->dsn_ret = c->dsn.ret;
    so->log = lg;
    smtp_timeouts_default(&so->timeouts);
    smtp_timeouts_override(&so->timeouts, &relay->timeouts);
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    outcome_free(&j->rec); /* j->email with it */
    address_free(&j->to);
    buf_free(&j->fields);
    free((void *)j->ptrs);
    free(j->lens);
    free(j);
}

static struct job *job_new(const struct recipients_row *row, const struct address *to,
                           const char *email)
{
    struct job *j = calloc(1, sizeof *j);
    const char *at;
    size_t i;
    struct blast_error e;

    if (j == NULL)
        return NULL;
    blast_error_clear(&e);
    outcome_init(&j->rec);
    j->row = j->rec.row = row->row;
    j->line = row->line;
    j->nfields = row->nfields;
    j->email = j->rec.email = strdup(email);
    j->ptrs = calloc(row->nfields + 1, sizeof *j->ptrs);
    j->lens = calloc(row->nfields + 1, sizeof *j->lens);
    if (j->email == NULL || j->ptrs == NULL || j->lens == NULL ||
        address_parse(to->envelope, &j->to, &e) < 0 ||
        (to->display != NULL && (j->to.display = strdup(to->display)) == NULL))
        goto fail;
    for (i = 0; i < row->nfields; i++) {
        j->lens[i] = j->fields.len; /* an offset until the buffer stops moving */
        if (buf_append(&j->fields, row->fields[i], row->lens[i]) < 0 ||
            buf_putc(&j->fields, '\0') < 0)
            goto fail;
    }
    for (i = 0; i < row->nfields; i++) {
        j->ptrs[i] = j->fields.data + j->lens[i];
        j->lens[i] = row->lens[i];
    }
    at = strrchr(j->to.envelope, '@');
    snprintf(j->domain, sizeof j->domain, "%s", at != NULL ? at + 1 : "");
    return j;
fail:
    job_free(j);
    return NULL;
}

/* The job's outcome, recorded in the journal. */
static int record(struct pool *p, struct job *j, enum outcome_status status,
                  const struct smtp_rcpt *r, const char *detail, const char *relay,
                  struct blast_error *err)
{
    struct outcome *o = &j->rec;
    int rc;

    o->status = status;
    o->step = OUTCOME_STEP_NONE;
    o->code = 0;
    o->enhanced[0] = '\0';
    o->attempts = j->attempts;
    o->first = o->last = (struct timeutil_stamp){0, 0};
    o->size = 0;
    if (r != NULL) {
        o->code = r->reply.code;
        memcpy(o->enhanced, r->reply.enhanced, sizeof o->enhanced);
        if (r->reply.code > 0 || r->detail[0] != '\0')
            o->step = r->step;
        if (detail == NULL && r->detail[0] != '\0')
            detail = r->detail;
    }
    if (outcome_set(&o->reply, r != NULL && r->reply.code > 0 ? r->reply.text : NULL) < 0 ||
        outcome_set(&o->detail, detail) < 0 || outcome_set(&o->relay, relay) < 0 ||
        outcome_set(&o->queue_id, r != NULL && status == OUTCOME_DELIVERED ? j->t.queue_id : NULL) <
            0 ||
        outcome_set(&o->message_id, j->attempts > 0 ? j->message_id : NULL) < 0)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    if (j->attempts > 0) {
        o->first = j->first;
        o->last = timeutil_now();
        o->size = j->size;
    }
    rc = journal_record(p->o.journal, o, err);
    if (rc == 0)
        __atomic_fetch_add(&p->results[status], 1, __ATOMIC_RELAXED);
    return rc;
}

/* Record, and on failure stop the pool (the journal cannot keep up: nothing more goes). */
static void record_or_fail(struct pool *p, struct job *j, enum outcome_status status,
                           const struct smtp_rcpt *r, const char *detail, const char *relay)
{
    struct blast_error e;

    blast_error_clear(&e);
    if (record(p, j, status, r, detail, relay, &e) < 0) {
        pthread_mutex_lock(&p->mu);
        if (!p->fatal) {
            p->fatal = e.code;
            p->fatal_err = e;
        }
        pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->space);
        pthread_mutex_unlock(&p->mu);
    }
}

/*
 * A job that will not be sent in this run: deferred, with its last attempt's own
 * reason when it had one (it says more than reason, "the run stopped"); freed.
 */
static void record_unsent(struct pool *p, struct job *j, const char *reason)
{
    if (j->attempts > 0)
        record_or_fail(p, j, OUTCOME_DEFERRED, &j->last,
                       j->last.detail[0] != '\0' || j->last.reply.code != 0 ? NULL : reason,
                       j->last_relay);
    else
        record_or_fail(p, j, OUTCOME_DEFERRED, NULL, reason, NULL);
    job_free(j);
}

/* ---- the queue and the retry heap (under the mutex) ----------------------------------- */

static struct job *ready_at(struct pool *p, size_t i)
{
    return p->ready[(p->rhead + i) % p->rcap];
}

static struct job *ready_remove(struct pool *p, size_t i)
{
    struct job *j = ready_at(p, i);
    size_t k;

    for (k = i; k > 0; k--)
        p->ready[(p->rhead + k) % p->rcap] = p->ready[(p->rhead + k - 1) % p->rcap];
    p->rhead = (p->rhead + 1) % p->rcap;
    p->rcount--;
    return j;
}

static void heap_swap(struct pool *p, size_t a, size_t b)
{
    struct job *t = p->heap[a];
    p->heap[a] = p->heap[b];
    p->heap[b] = t;
}

static bool heap_push(struct pool *p, struct job *j)
{
    size_t i;

    if (p->hcount == p->hcap) {
        size_t cap = p->hcap != 0 ? p->hcap * 2 : 64;
        struct job **h;
        if (cap > HEAP_MAX)
            cap = HEAP_MAX;
        if (p->hcount == cap)
            return false;
        h = realloc(p->heap, cap * sizeof *h);
        if (h == NULL)
            return false;
        p->heap = h;
        p->hcap = cap;
    }
    i = p->hcount++;
    p->heap[i] = j;
    while (i > 0 && p->heap[(i - 1) / 2]->not_before > p->heap[i]->not_before) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return true;
}

static struct job *heap_pop(struct pool *p)
{
    struct job *top = p->heap[0];
    size_t i = 0;

    p->heap[0] = p->heap[--p->hcount];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->hcount && p->heap[l]->not_before < p->heap[m]->not_before)
            m = l;
        if (r < p->hcount && p->heap[r]->not_before < p->heap[m]->not_before)
            m = r;
        if (m == i)
            break;
        heap_swap(p, i, m);
        i = m;
    }
    return top;
}

/* The index of the domain's entry in domain_rates, or -1. */
static long domain_index(const struct pool *p, const char *domain)
{
    size_t i;

    for (i = 0; i < p->c->ndomain_rates; i++)
        if (strcmp(p->c->domain_rates[i].domain, domain) == 0)
            return (long)i;
    return -1;
}

/* The index of the provider whose pace the domain keeps, or -1. */
static long provider_index(const struct pool *p, const char *domain)
{
    const struct provider_route *r = provider_routes_get(p->o.routes, domain);

    if (r == NULL || r->provider < 0 || p->o.providers == NULL ||
        (size_t)r->provider >= p->o.providers->n || p->o.providers->p[r->provider].rate <= 0)
        return -1;
    return r->provider;
}

static int64_t held(int64_t until, int64_t now)
{
    return until > now ? until - now : 0;
}

/*
 * How long j's domain limit holds it back: the local one, or what Redis said; and its
 * provider's pace, which all the provider's domains share.
 */
static int64_t domain_wait(const struct pool *p, const struct job *j, int64_t now)
{
    long d = j->drate;
    int64_t w = 0, h = 0;

    if (d >= 0) {
        w = ratelimit_wait(&p->domains[d], now);
        h = held(p->domain_holds[d], now);
    }
    if (j->prate >= 0) {
        int64_t pw = ratelimit_wait(&p->providers[j->prate], now),
                ph = held(p->provider_holds[j->prate], now);
        h = h > pw ? h : pw;
        h = h > ph ? h : ph;
    }
    return w > h ? w : h;
}

/*
 * May this relay take one more, given the weights of the relays that are working
 * now? A relay that is out (given up, backing off, failing, or without a session
 * open) does not hold the others back; when the set of working relays changes, the shares start
 * over, so one that comes back does not stall the others while it "catches up".
 */
static bool share_ok(struct pool *p, const struct relay_state *rs, int64_t now)
{
    size_t total = 0, weights = 0, i;
    bool changed = false;

    for (i = 0; i < p->nrelays; i++) {
        struct relay_state *o = &p->relays[i];
        /* a relay with no session open (still connecting, say) cannot take its share */
        bool working = policy_relay_working(&o->health, now) && o->open > 0;
        changed = changed || working != o->working;
        o->working = working;
    }
    if (changed)
        for (i = 0; i < p->nrelays; i++)
            p->relays[i].sent = 0;
    for (i = 0; i < p->nrelays; i++)
        if (p->relays[i].working) {
            total += p->relays[i].sent;
            weights += (size_t)p->relays[i].cfg->weight;
        }
    /* a relay on probation sends to show it is back; its share starts then */
    if (!rs->working || weights == (size_t)rs->cfg->weight)
        return true;
    return rs->sent * weights <= (total + SHARE_SLACK) * (size_t)rs->cfg->weight;
}

static double seen_rate(const struct relay_state *rs, int64_t now)
{
    size_t n = rs->ntimes < 64 ? rs->ntimes : 64, k = 0, i;

    for (i = 0; i < n; i++)
        k += now - rs->times[i] <= 5000;
    return (double)k / 5.0;
}

/*
 * The next recipient this worker may send now: a due retry first, else the first
 * queued one every limiter lets go (with shared limits, as far as Redis said last).
 * NULL, with *wake set to when to look again. The job is taken off the queue; the
 * limiters count it only in take().
 */
static struct job *pick(struct pool *p, struct worker *w, int64_t now, int64_t *wake)
{
    struct relay_state *rs = w->rs;
    int64_t base, best = INT64_MAX, dw;
    struct job *j = NULL;
    size_t i, n;

    *wake = now + 1000;
    if (!share_ok(p, rs, now)) {
        *wake = now + 20;
        return NULL;
    }
    if (rs->limit.limited && policy_recover_due(rs->last_throttle, rs->last_recover, now)) {
        ratelimit_recover(&rs->limit);
        rs->last_recover = now;
    }
    base = ratelimit_wait(&p->global, now);
    dw = ratelimit_wait(&rs->limit, now);
    base = base > dw ? base : dw;
    if (p->o.shared != NULL) {
        /* Redis said the global or the relay's rate is spent, or cannot be asked yet */
        dw = held(p->global_hold, now);
        base = base > dw ? base : dw;
        dw = held(rs->shared_hold, now);
        base = base > dw ? base : dw;
        dw = held(p->shared_retry, now);
        base = base > dw ? base : dw;
    }
    if (base > 0) {
        *wake = now + base;
        return NULL;
    }
    if (p->hcount > 0) {
        if (p->heap[0]->not_before <= now) {
            dw = domain_wait(p, p->heap[0], now);
            if (dw == 0)
                j = heap_pop(p);
            else
                best = dw;
        } else {
            best = p->heap[0]->not_before - now;
        }
    }
    n = p->rcount < SCAN_MAX ? p->rcount : SCAN_MAX;
    for (i = 0; j == NULL && i < n; i++) {
        struct job *c = ready_at(p, i);
        dw = domain_wait(p, c, now);
        if (dw == 0) {
            j = ready_remove(p, i);
            /*
             * The producer refills from half empty: woken once per half a queue, not
             * once per message (a context switch each on a small machine).
             */
            if (p->rcount == p->rcap / 2)
                pthread_cond_signal(&p->space);
        } else if (dw < best) {
            best = dw;
        }
    }
    if (j == NULL && best != INT64_MAX)
        *wake = now + best;
    return j;
}

/* j goes now: every local limiter counts it, and the relay's share. */
static void take(struct pool *p, struct relay_state *rs, const struct job *j, int64_t now)
{
    long d = j->drate;

    ratelimit_take(&p->global, now);
    ratelimit_take(&rs->limit, now);
    if (d >= 0)
        ratelimit_take(&p->domains[d], now);
    if (j->prate >= 0)
        ratelimit_take(&p->providers[j->prate], now);
    rs->times[rs->ntimes++ % 64] = now;
    rs->sent++;
}

static void stop_locked(struct pool *p, const char *reason);
static bool all_done(const struct pool *p);

/*
 * Shared limits: the relay's, the domain's and the global rate were spent (Redis
 * said how long each holds), or Redis could not be used. Under the mutex.
 */
static void shared_refused(struct pool *p, struct relay_state *rs, const struct job *j, int rc,
                           const struct sharedlimit_answer *a, int64_t now)
{
    long d = j->drate;
    int64_t outage;
    char why[300];

    if (rc > 0) {
        if (a->wait_ms[SHAREDLIMIT_GLOBAL] > 0)
            p->global_hold = now + a->wait_ms[SHAREDLIMIT_GLOBAL];
        if (a->wait_ms[SHAREDLIMIT_RELAY] > 0)
            rs->shared_hold = now + a->wait_ms[SHAREDLIMIT_RELAY];
        if (a->wait_ms[SHAREDLIMIT_DOMAIN] > 0 && d >= 0)
            p->domain_holds[d] = now + a->wait_ms[SHAREDLIMIT_DOMAIN];
        if (a->wait_ms[SHAREDLIMIT_PROVIDER] > 0 && j->prate >= 0)
            p->provider_holds[j->prate] = now + a->wait_ms[SHAREDLIMIT_PROVIDER];
        return;
    }
    /* sharedlimit said it once; nothing goes until it is back, or the outage is too long */
    if (a->retry_at > p->shared_retry)
        p->shared_retry = a->retry_at;
    outage = now - a->down_since;
    if (p->stopping || outage < p->c->limits.max_outage)
        return;
    snprintf(why, sizeof why,
             "not attempted: the shared limits' Redis (%s) could not be used for %lld s; left "
             "for the next run",
             p->c->limits.shared, (long long)(outage / 1000));
    log_msg(p->o.log, LOG_LEVEL_WARN,
            "shared limits: %s could not be used for %lld s: the run stops", p->c->limits.shared,
            (long long)(outage / 1000));
    stop_locked(p, why);
}

/*
 * Shared limits: ask Redis whether j may go now, holding no lock while it answers
 * (one round trip; at most about a second while Redis does not answer). Called and
 * returning under the mutex. True: j goes, every limiter counted it. False: j is
 * back in the queue (or, when the run is stopping, recorded as not sent), and what
 * Redis said holds back the next pick().
 */
static bool granted(struct pool *p, struct worker *w, struct job *j)
{
    struct relay_state *rs = w->rs;
    struct sharedlimit_answer a;
    struct blast_error e;
    int64_t now;
    int rc;

    p->inflight++; /* not in the queue while Redis answers: the run is not done */
    pthread_mutex_unlock(&p->mu);
    blast_error_clear(&e);
    rc = sharedlimit_acquire(p->o.shared, (size_t)(rs - p->relays), j->drate, j->prate, &a, &e);
    now = timeutil_mono_ms();
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    if (rc == 0 && !p->fatal && !p->stopping && !rs->health.dead) {
        take(p, rs, j, now);
        return true;
    }
    if (rc != 0)
        shared_refused(p, rs, j, rc, &a, now);
    /* the grant, if any, goes unused: the limits only ever count more than was sent */
    j->not_before = now;
    if (!p->stopping && !p->fatal && heap_push(p, j)) {
        pthread_cond_broadcast(&p->work);
        return false;
    }
    pthread_mutex_unlock(&p->mu);
    record_unsent(p, j, p->stopping ? p->stop_reason : "not attempted: the run stopped");
    pthread_mutex_lock(&p->mu);
    if (all_done(p)) {
        pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->changed);
    }
    return false;
}

/* ---- the feed --------------------------------------------------------------------------- */

/* Render the job's message and point its transaction at it. */
static int build(struct worker *w, struct job *j, struct blast_error *err)
{
    struct pool *p = w->p;
    const struct address *to = p->o.test_to != NULL ? p->o.test_to : &j->to;
    struct recipients_row row;
    int rc;

    row.row = p->o.seeds ? 0 : j->row;
    row.line = j->line;
    row.nfields = j->nfields;
    row.fields = j->ptrs;
    row.lens = j->lens;
    if ((rc = compose_row(p->o.compose, &row, to, &w->res, err)) < 0)
        return rc;
    memset(&j->t, 0, sizeof j->t);
    memset(&j->rcpt, 0, sizeof j->rcpt);
    j->rcpt.address = to->envelope;
    /*
     * return_path: this row's own envelope sender, else the campaign's. Copied into
     * the job: the session takes transactions ahead, and w->res is the next one's.
     */
    if (w->res.envelope_from[0] != '\0') {
        snprintf(j->mail_from, sizeof j->mail_from, "%s", w->res.envelope_from);
        j->t.mail_from = j->mail_from;
    } else {
        j->t.mail_from = compose_envelope_from(p->o.compose)->envelope;
    }
    j->t.smtputf8 = w->res.smtputf8;
    j->t.rcpts = &j->rcpt;
    j->t.nrcpts = 1;
    j->t.data = w->res.message.data;
    j->t.len = w->res.message.len;
    j->t.user = j;
    snprintf(j->envid, sizeof j->envid, "%s.%zu", p->c->name, p->o.seeds ? 0 : j->row);
    j->t.envid = j->envid;
    snprintf(j->message_id, sizeof j->message_id, "%s", w->res.message_id);
    j->size = w->res.message.len;
    j->worker = w;
    return 0;
}

/*
 * Whether j's send window is closed in_ms from now, on the campaign clock (under the
 * mutex: pure, a lookup in its zone's transitions); *opens: when it opens again.
 */
static bool window_closed(const struct pool *p, const struct job *j, int64_t in_ms, int64_t *opens)
{
    if (p->o.window == NULL || j->zone == NULL)
        return false;
    return !window_open(p->o.window, j->zone,
                        (int64_t)time(NULL) + p->o.clock_offset + (in_ms + 999) / 1000, opens);
}

/*
 * jobs[0..n), taken off the queue, waited past their window's closing: not sent in
 * this run, each deferred with when it opens (and its last reply in this run, when it
 * had one), and freed. Under the mutex, which it lets go while recording.
 */
static void hold_for_window(struct pool *p, struct job **jobs, const int64_t *opens, size_t n)
{
    size_t i;

    p->inflight += n; /* not done until their results are written */
    p->held_window += n;
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < n; i++) {
        struct job *j = jobs[i];
        bool replied = j->last.reply.code != 0 || j->last.detail[0] != '\0';
        char why[400];

        window_explain(p->o.window, j->zone, opens[i], why, sizeof why);
        record_or_fail(p, j, OUTCOME_DEFERRED, replied ? &j->last : NULL, why,
                       replied ? j->last_relay : NULL);
        job_free(j);
    }
    pthread_mutex_lock(&p->mu);
    p->inflight -= n;
    pthread_cond_broadcast(&p->space); /* room in the queue for the producer */
    if (all_done(p))
        pthread_cond_broadcast(&p->work); /* idle workers: time to QUIT */
    pthread_cond_broadcast(&p->changed);
}

/*
 * Before a session is opened for them: the queued recipients whose window has closed
 * are held now, up to 64 at a time (a session opened only to hold them would be for
 * nothing, and one that failed would give them its reason rather than their window's).
 * Under the mutex, which it lets go while recording; returns how many it held.
 */
static size_t hold_closed_queue(struct pool *p)
{
    struct job *held[64];
    int64_t opens[64];
    size_t n = 0, i = 0;

    if (p->o.window == NULL)
        return 0;
    while (i < p->rcount && n < 64) {
        if (window_closed(p, ready_at(p, i), 0, &opens[n]))
            held[n++] = ready_remove(p, i); /* the next one is at i now */
        else
            i++;
    }
    if (n > 0)
        hold_for_window(p, held, opens, n);
    return n;
}

static struct smtp_txn *feed_next(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    const struct campaign_relay *cfg = w->rs->cfg;

    for (;;) {
        struct blast_error e;
        int64_t now = timeutil_mono_ms(), opens;
        struct job *j;

        pthread_mutex_lock(&p->mu);
        if (p->fatal || p->stopping || w->rs->health.dead || w->renew ||
            (cfg->messages_per_connection > 0 &&
             w->on_session >= (size_t)cfg->messages_per_connection)) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        j = pick(p, w, now, &w->wake_at);
        if (j == NULL) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        if (window_closed(p, j, 0, &opens)) {
            hold_for_window(p, &j, &opens, 1);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        if (p->o.shared == NULL) {
            take(p, w->rs, j, now);
        } else if (!granted(p, w, j)) {
            /* pick again: another recipient's domain may have room, or nothing may */
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        /* it found work: no reason to wait (pick's wake time is for when it finds none) */
        w->wake_at = 0;
        w->on_session++;
        p->inflight++;
        j->attempts++;
        if (j->first.sec == 0)
            j->first = timeutil_now();
        pthread_mutex_unlock(&p->mu);

        blast_error_clear(&e);
        if (build(w, j, &e) < 0) {
            record_or_fail(p, j, OUTCOME_DEFERRED, NULL, e.text, NULL);
        } else if (w->res.invalid) {
            /* nothing was sent: an attempt it was not */
            j->attempts--;
            record_or_fail(p, j, OUTCOME_INVALID, NULL, w->res.reason, NULL);
        } else {
            j->mark = -1; /* this attempt's "sending" record is still to come */
            return &j->t;
        }
        pthread_mutex_lock(&p->mu);
        p->inflight--;
        if (all_done(p))
            pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
        job_free(j);
    }
}

/* The journal failed: nothing more may leave. */
static void journal_failed(struct pool *p, int rc, const struct blast_error *e)
{
    pthread_mutex_lock(&p->mu);
    if (!p->fatal) {
        p->fatal = rc;
        p->fatal_err = *e;
    }
    pthread_cond_broadcast(&p->work);
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->mu);
}

/*
 * The envelope goes out, its end of data in the next write: the "sending" record
 * now, so that its fdatasync runs during this round trip rather than before the
 * next. The price: a crash within that round trip leaves the message unknown
 * though its end of data never left; a duplicate it can never cause.
 */
static int feed_leaving(void *arg, struct smtp_txn *t)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    struct job *j = t->user;
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    rc = journal_sending(p->o.journal, j->row, j->email, j->message_id, j->attempts,
                         w->rs->cfg->name, &j->mark, &e);
    if (rc < 0)
        journal_failed(p, rc, &e);
    return rc;
}

/* Before the end of data leaves: the journal says so, durably (shared fdatasync). */
static int feed_sending(void *arg, struct smtp_txn *t)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    struct job *j = t->user;
    struct blast_error e;
    int rc = 0;

    blast_error_clear(&e);
    if (j->mark < 0)
        rc = journal_sending(p->o.journal, j->row, j->email, j->message_id, j->attempts,
                             w->rs->cfg->name, &j->mark, &e);
    if (rc == 0)
        rc = journal_wait_durable(p->o.journal, j->mark, &e);
    if (rc < 0)
        journal_failed(p, rc, &e);
    return rc;
}

/*
 * The backoff's jitter: any number will do, but not the same for everyone. A
 * xorshift per worker, seeded once: no system call per message.
 */
static uint32_t jitter(struct worker *w)
{
    uint32_t x = w->rng;

    if (x == 0 && (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x || x == 0))
        x = (uint32_t)time(NULL) | 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return x;
}

/*
 * One attempt for the job's history: when, where (relay, host, port, TLS), the
 * step that decided it and the reply, or blast's own words. The oldest attempts
 * go once there are OUTCOME_HISTORY_MAX. Out of memory only loses the entry.
 */
static void add_history(struct job *j, const struct worker *w, const struct smtp_rcpt *r,
                        enum outcome_status status)
{
    const struct conn *cn = w->session != NULL ? smtp_session_conn(w->session) : NULL;
    const struct campaign_relay *cfg = w->rs->cfg;
    const char *tls = cn != NULL ? conn_tls_version(cn) : NULL;
    const char *cipher = cn != NULL ? conn_tls_cipher(cn) : NULL;
    struct outcome_attempt a;

    memset(&a, 0, sizeof a);
    a.time = timeutil_now();
    a.status = status;
    a.step = r->reply.code > 0 || r->detail[0] != '\0' ? r->step : OUTCOME_STEP_NONE;
    a.code = r->reply.code;
    memcpy(a.enhanced, r->reply.enhanced, sizeof a.enhanced);
    a.port = cfg->port;
    snprintf(a.tls, sizeof a.tls, "%s", tls != NULL ? tls : "");
    snprintf(a.cipher, sizeof a.cipher, "%s", cipher != NULL ? cipher : "");
    /* borrowed: outcome_add_attempt() copies them */
    a.relay = (char *)cfg->name;
    a.host = (char *)cfg->host;
    a.reply = r->reply.code > 0 ? (char *)r->reply.text : NULL;
    a.queue_id = r->outcome == SMTP_OUTCOME_DELIVERED ? j->t.queue_id : NULL;
    a.detail = (char *)r->detail;
    (void)outcome_add_attempt(&j->rec, &a);
}

static bool all_done(const struct pool *p)
{
    return p->producer_done && p->rcount == 0 && p->hcount == 0 && p->inflight == 0;
}

/*
 * A session took j ahead and ended before writing any of it: no attempt was
 * made. Back to the queue at once (no history, no charge); or, when the run is
 * stopping, left for the next run like the recipients never tried.
 */
static void give_back(struct pool *p, struct job *j, int64_t now)
{
    const char *reason;

    pthread_mutex_lock(&p->mu);
    if (--j->attempts == 0)
        j->first.sec = 0;
    j->not_before = now;
    p->inflight--;
    if (!p->stopping && !p->fatal && heap_push(p, j)) {
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    reason = p->stopping ? p->stop_reason : "not attempted: the session ended";
    if (all_done(p)) {
        pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
    record_unsent(p, j, reason);
}

static void feed_done(void *arg, struct smtp_txn *t)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    struct relay_state *rs = w->rs;
    struct job *j = t->user;
    const struct smtp_rcpt *r = &j->rcpt;
    enum outcome_status status = outcome_of_smtp(r->outcome);
    const char *detail = NULL;
    struct policy_recipient pr;
    struct policy_clock clock;
    struct policy_next next;
    int64_t now = timeutil_mono_ms(), opens = 0;
    bool window_held = false;
    char held_why[400];

    if (t->untried) {
        give_back(p, j, now);
        return;
    }
    add_history(j, w, r, status);
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    if (breaker_note(&p->breaker, r->reply.code, r->reply.enhanced)) {
        char why[400];
        log_msg(p->o.log, LOG_LEVEL_ERROR,
                "the circuit breaker stopped the run: %s; the rest stay deferred for the next "
                "run ('breaker:' in the campaign, or send --no-breaker)",
                p->breaker.why);
        snprintf(why, sizeof why, "not attempted: the circuit breaker stopped the run (%s)",
                 p->breaker.why);
        stop_locked(p, why);
    }
    w->answered += r->reply.code != 0;
    if (r->reply.code != 0)
        relay_event(p, rs, r->reply.code == 421 ? POLICY_RELAY_REFUSED : POLICY_RELAY_ANSWERED,
                    NULL);
    pr.attempts = j->attempts;
    pr.charged = j->charged;
    pr.first = j->first;
    clock.mono_ms = now;
    clock.wall = timeutil_now();
    policy_after_attempt(&p->retry, r, &pr, &clock, p->stopping || p->fatal, jitter(w), &next);
    j->charged = pr.charged;
    status = next.status;
    detail = next.detail[0] != '\0' ? next.detail : NULL;
    if (next.renew_session)
        w->renew = true;
    if (next.slow_down) {
        ratelimit_slow(&rs->limit, seen_rate(rs, now));
        rs->last_throttle = now;
        log_msg(p->o.log, LOG_LEVEL_INFO, "%s: asked to slow down (%d %s): now %.2f messages/s",
                rs->cfg->name, r->reply.code, r->reply.enhanced, rs->limit.rate);
    }
    if (status == OUTCOME_DEFERRED) {
        j->last = *r;
        snprintf(j->last_relay, sizeof j->last_relay, "%s", rs->cfg->name);
    }
    if (next.verdict == POLICY_RETRY) {
        j->not_before = next.not_before;
        /* its window closes before the retry is due: held now, not waited for in vain */
        if (window_closed(p, j, next.not_before - now, &opens)) {
            window_held = true;
            p->held_window++;
        } else if (heap_push(p, j)) {
            pthread_cond_broadcast(&p->work);
            pthread_cond_broadcast(&p->changed);
            pthread_mutex_unlock(&p->mu);
            return;
        } else {
            detail = "too many recipients waiting for a retry; left for the next run";
        }
    }
    /* nobody waits on an ordinary outcome: pool_finish() waits for the workers to end */
    if (all_done(p)) {
        pthread_cond_broadcast(&p->work); /* idle workers: time to QUIT */
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
    if (window_held) {
        window_explain(p->o.window, j->zone, opens, held_why, sizeof held_why);
        detail = held_why;
    }
    record_or_fail(p, j, status, r, detail, rs->cfg->name);
    job_free(j);
}

/* ---- the connection threads ------------------------------------------------------------ */

static bool relay_alive(const struct pool *p)
{
    size_t i;

    for (i = 0; i < p->nrelays; i++)
        if (!p->relays[i].health.dead)
            return true;
    return false;
}

/* Is some other relay still carrying the campaign (usable, and not failing)? */
static bool others_working(const struct pool *p, const struct relay_state *rs)
{
    size_t i;

    for (i = 0; i < p->nrelays; i++)
        if (&p->relays[i] != rs && !p->relays[i].health.dead && p->relays[i].health.failures == 0)
            return true;
    return false;
}

/*
 * Something happened that says how the relay is doing (docs/delivery.md, "Relay
 * health"): the policy decides, this says so and wakes whoever waits on it. why
 * is the failure's own reason, kept for the recipients it leaves untried.
 */
static void relay_event(struct pool *p, struct relay_state *rs, enum policy_relay_event ev,
                        const char *why)
{
    const char *because = NULL;
    /* the other relays and the time matter only to an event that may take this one out */
    bool failing = ev != POLICY_RELAY_ANSWERED && ev != POLICY_RELAY_IN_STEP;
    enum policy_relay_verdict v =
        policy_relay_event(&rs->health, ev, failing && others_working(p, rs),
                           failing ? timeutil_mono_ms() : 0, &because);

    if (because != NULL)
        why = because;
    if (v != POLICY_RELAY_OK && why != NULL)
        snprintf(rs->last_failure, sizeof rs->last_failure, "%s", why);
    if (v == POLICY_RELAY_OUT) {
        log_msg(p->o.log, LOG_LEVEL_WARN,
                "%s:%d:%d: relay '%s' (%s port %d): %s; not used again in this run", p->c->path,
                rs->cfg->place.line, rs->cfg->place.column, rs->cfg->name, rs->cfg->host,
                rs->cfg->port, why != NULL ? why : "it failed");
        pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->space);
        pthread_cond_broadcast(&p->changed);
    } else if (v == POLICY_RELAY_BACK_OFF) {
        log_msg(p->o.log, LOG_LEVEL_DEBUG, "%s: %s; trying again in %lld s", rs->cfg->name,
                why != NULL ? why : "it failed",
                (long long)((rs->health.down_until - timeutil_mono_ms() + 999) / 1000));
    }
}

/* Close the worker's session (QUIT when it is healthy), adding up its statistics. */
static void close_session(struct worker *w, bool quit)
{
    struct pool *p = w->p;
    struct smtp_session *s;

    pthread_mutex_lock(&p->mu);
    s = w->session;
    w->session = NULL;
    if (s != NULL) {
        const struct smtp_stats *st = smtp_session_stats(s);
        w->rs->open--;
        p->messages += st->messages;
        p->round_trips += st->round_trips;
        if (st->messages > 0)
            log_msg(p->o.log, LOG_LEVEL_DEBUG,
                    "%s: session done: %zu messages, %zu writes, %zu round trips (%.2f a "
                    "message)",
                    w->rs->cfg->name, st->messages, st->writes, st->round_trips,
                    (double)st->round_trips / (double)st->messages);
    }
    pthread_mutex_unlock(&p->mu);
    if (s == NULL)
        return;
    if (quit)
        smtp_session_quit(s);
    smtp_session_free(s);
}

static int open_session(struct worker *w)
{
    struct pool *p = w->p;
    struct relay_state *rs = w->rs;
    struct smtp_options so;
    struct smtp_session *s = NULL;
    struct blast_error e;
    char why[BLAST_ERROR_TEXT_MAX + 64];
    int rc;

    /* the caller counted this worker in rs->connecting, under the same lock as its check */
    blast_error_clear(&e);
    pool_smtp_options(p->c, rs->cfg, rs->tls, rs->password, p->o.log, &so);
    so.cancel_fd = &p->cancel[0];
    rc = smtp_session_open(&so, &s, &e);
    pthread_mutex_lock(&p->mu);
    rs->connecting--;
    pthread_cond_broadcast(&p->changed);
    if (rc < 0 && p->cancelled) {
        /* nothing left for it to do: not the relay's fault */
        pthread_mutex_unlock(&p->mu);
        smtp_session_free(s);
        return rc;
    }
    if (rc < 0) {
        if (s != NULL && smtp_session_state(s) > SMTP_CONNECT)
            snprintf(why, sizeof why, "%s (during %s)", e.text,
                     smtp_state_name(smtp_session_state(s)));
        else
            snprintf(why, sizeof why, "%s", e.text);
        relay_event(
            p, rs,
            s != NULL && smtp_session_give_up(s) ? POLICY_RELAY_GIVE_UP : POLICY_RELAY_FAILED, why);
        pthread_mutex_unlock(&p->mu);
        smtp_session_free(s);
        return rc;
    }
    rs->ever_connected = true;
    w->session = s;
    w->on_session = 0;
    w->answered = 0;
    w->renew = false;
    w->idle_since = timeutil_mono_ms();
    p->sessions++;
    rs->open++;
    pthread_mutex_unlock(&p->mu);
    if (conn_is_tls(smtp_session_conn(s)))
        log_msg(p->o.log, LOG_LEVEL_DEBUG, "%s: ready (TLS %s, %s)", rs->cfg->name,
                conn_tls_version(smtp_session_conn(s)), conn_tls_cipher(smtp_session_conn(s)));
    else
        log_msg(p->o.log, LOG_LEVEL_DEBUG, "%s: ready (no TLS)", rs->cfg->name);
    return 0;
}

static void wait_until(struct pool *p, pthread_cond_t *cv, int64_t mono_ms)
{
    struct timespec ts;
    int64_t now = timeutil_mono_ms(), ms = mono_ms - now;

    if (ms <= 0)
        return;
    if (ms > 1000)
        ms = 1000; /* look around once a second in any case */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, &p->mu, &ts);
}

/*
 * Nothing this worker may send now: wait (under the mutex) until there may be,
 * closing its session when it has sat idle for idle_close_ms.
 */
static void worker_idle(struct worker *w, int64_t now, bool has_work)
{
    struct pool *p = w->p;
    int64_t until = !has_work && p->hcount > 0 ? p->heap[0]->not_before : now + 1000;

    if (has_work && w->wake_at > now)
        until = w->wake_at;
    if (w->session != NULL && now - w->idle_since >= p->o.idle_close_ms) {
        pthread_mutex_unlock(&p->mu);
        log_msg(p->o.log, LOG_LEVEL_DEBUG, "%s: idle, closing", w->rs->cfg->name);
        close_session(w, true);
        pthread_mutex_lock(&p->mu);
        return;
    }
    if (w->session != NULL && until > w->idle_since + p->o.idle_close_ms)
        until = w->idle_since + p->o.idle_close_ms;
    wait_until(p, &p->work, until);
}

/*
 * Drive the worker's session through the feed until it has nothing to send (the
 * mutex is not held; it is on return). A session that ends with an error is
 * closed without QUIT, and what it says of the relay goes to the relay's health:
 * a 421 alone is a refusal, replies out of step are counted as such, a session
 * that died without an answer is a failure.
 */
static void worker_send(struct worker *w, const struct smtp_feed *feed)
{
    struct pool *p = w->p;
    struct relay_state *rs = w->rs;
    struct blast_error e;
    size_t before = w->answered;
    bool astray, closing;
    int rc;

    blast_error_clear(&e);
    rc = smtp_session_run(w->session, feed, &e);
    if (rc == 0) {
        pthread_mutex_lock(&p->mu);
        if (w->answered > before)
            relay_event(p, rs, POLICY_RELAY_IN_STEP, NULL);
        w->idle_since = timeutil_mono_ms();
        if (w->renew || (rs->cfg->messages_per_connection > 0 &&
                         w->on_session >= (size_t)rs->cfg->messages_per_connection)) {
            w->renew = false;
            pthread_mutex_unlock(&p->mu);
            close_session(w, true);
            pthread_mutex_lock(&p->mu);
        }
        return;
    }
    astray = smtp_session_out_of_step(w->session);
    /* a 421 on its own, say to an idle session: the server closing, not failing */
    closing = rc == BLAST_ECLOSED && smtp_session_reply(w->session)->code == 421;
    log_msg(p->o.log, LOG_LEVEL_WARN, "%s: %s", rs->cfg->name, e.text);
    /* out of step: nothing more is written to it, QUIT included */
    close_session(w, false);
    pthread_mutex_lock(&p->mu);
    if (closing && w->answered == before)
        relay_event(p, rs, POLICY_RELAY_REFUSED, NULL);
    else if (astray)
        relay_event(p, rs, POLICY_RELAY_OUT_OF_STEP, NULL);
    else if (w->answered == before)
        relay_event(p, rs, POLICY_RELAY_FAILED, e.text);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    struct relay_state *rs = w->rs;
    struct smtp_feed feed = {.next = feed_next,
                             .done = feed_done,
                             .sending = feed_sending,
                             .leaving = feed_leaving,
                             .arg = w};
    bool quit = true;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        int64_t now = timeutil_mono_ms();
        bool has_work = p->rcount > 0 || (p->hcount > 0 && p->heap[0]->not_before <= now);

        /* stopping: the transactions in flight have finished, this session is done */
        if (p->fatal || rs->health.dead || all_done(p) || p->stopping)
            break;
        if (rs->health.down_until > now) {
            wait_until(p, &p->work, rs->health.down_until);
            continue;
        }
        if (!has_work || w->wake_at > now) {
            worker_idle(w, now, has_work);
            continue;
        }
        if (w->session == NULL && hold_closed_queue(p) > 0)
            continue; /* the state changed while the lock was let go: look again */
        if (w->session == NULL && !rs->ever_connected && rs->connecting > 0) {
            /* the relay's first session is being tried: wait for its outcome */
            wait_until(p, &p->changed, now + 1000);
            continue;
        }
        /*
         * Counted before the lock is let go: otherwise a second worker could pass the
         * check above too, and a refused password would be tried twice.
         */
        if (w->session == NULL)
            rs->connecting++;
        pthread_mutex_unlock(&p->mu);
        if (w->session == NULL && open_session(w) < 0) {
            pthread_mutex_lock(&p->mu);
            continue;
        }
        worker_send(w, &feed);
    }
    quit = !p->fatal;
    p->live--;
    pthread_cond_broadcast(&p->changed);
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->mu);
    close_session(w, quit);
    return NULL;
}

/* ---- the pool ------------------------------------------------------------------------------- */

/* Each relay's state: its limiter, its TLS context (CA file, pin), its password. */
static int relays_init(struct pool *p, struct blast_error *err)
{
    const struct campaign *c = p->c;
    size_t i;
    int rc;

    p->nrelays = c->nrelays;
    for (i = 0; i < c->nrelays; i++) {
        struct relay_state *rs = &p->relays[i];
        struct conn_tls_options to;
        struct blast_error e;
        rs->cfg = &c->relays[i];
        rs->password = p->o.passwords != NULL ? p->o.passwords[i] : NULL;
        /* shared: Redis keeps the relay's rate; this one only slows down (421, 4.7.x) */
        if (p->o.shared != NULL)
            ratelimit_init_open(&rs->limit, rs->cfg->rate.set ? rs->cfg->rate.per_second : 0);
        else
            ratelimit_init(&rs->limit, rs->cfg->rate.set ? rs->cfg->rate.per_second : 0);
        if (rs->cfg->tls == SMTP_TLS_NONE)
            continue;
        to = (struct conn_tls_options){rs->cfg->verify, rs->cfg->ca_file, rs->cfg->pin_sha256};
        blast_error_clear(&e);
        if ((rc = conn_tls_new(&to, &rs->tls, &e)) < 0)
            return blast_error_set(err, rc, c->path, rs->cfg->place.line, rs->cfg->place.column,
                                   "relay '%s': %s", rs->cfg->name, e.text);
    }
    return 0;
}

int pool_start(const struct pool_options *o, struct pool **out, struct blast_error *err)
{
    const struct campaign *c = o->c;
    struct pool *p;
    size_t i, k, n = 0;
    int rc = 0;

    *out = NULL;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    p->cancel[0] = p->cancel[1] = -1;
    p->o = *o;
    p->c = c;
    p->retry.attempts = c->retry.attempts;
    p->retry.initial_ms = c->retry.initial;
    p->retry.max_ms = c->retry.max;
    p->retry.window_ms = c->retry.window;
    if (p->o.queue_size == 0)
        p->o.queue_size = 1024;
    if (p->o.idle_close_ms == 0)
        p->o.idle_close_ms = 5000;
    if (p->o.drain_ms == 0)
        p->o.drain_ms = 30000;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->space, NULL);
    pthread_cond_init(&p->changed, NULL);
    if (pipe2(p->cancel, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = blast_error_set(err, BLAST_EIO, NULL, 0, 0, "cannot create a pipe: %s",
                             strerror(errno));
        goto fail;
    }
    p->rcap = p->o.queue_size;
    p->ready = calloc(p->rcap, sizeof *p->ready);
    p->relays = calloc(c->nrelays, sizeof *p->relays);
    p->domains = calloc(c->ndomain_rates + 1, sizeof *p->domains);
    p->domain_holds = calloc(c->ndomain_rates + 1, sizeof *p->domain_holds);
    p->providers = calloc(o->providers != NULL ? o->providers->n + 1 : 1, sizeof *p->providers);
    p->provider_holds =
        calloc(o->providers != NULL ? o->providers->n + 1 : 1, sizeof *p->provider_holds);
    for (i = 0; i < c->nrelays; i++)
        n += (size_t)c->relays[i].connections;
    p->workers = calloc(n, sizeof *p->workers);
    if (p->ready == NULL || p->relays == NULL || p->domains == NULL || p->domain_holds == NULL ||
        p->providers == NULL || p->provider_holds == NULL || p->workers == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto fail;
    }
    /* shared limits: Redis keeps the global, the domains' and the providers' rates */
    ratelimit_init(&p->global, c->rate.set && o->shared == NULL ? c->rate.per_second : 0);
    for (i = 0; i < c->ndomain_rates; i++)
        ratelimit_init(&p->domains[i], o->shared == NULL ? c->domain_rates[i].rate.per_second : 0);
    for (i = 0; o->providers != NULL && i < o->providers->n; i++)
        ratelimit_init(&p->providers[i], o->shared == NULL ? o->providers->p[i].rate : 0);
    breaker_init(&p->breaker, &o->breaker);
    if ((rc = relays_init(p, err)) < 0)
        goto fail;
    for (i = 0, k = 0; i < c->nrelays; i++)
        for (int j = 0; j < c->relays[i].connections; j++, k++) {
            p->workers[k].p = p;
            p->workers[k].rs = &p->relays[i];
            compose_result_init(&p->workers[k].res);
        }
    p->nworkers = n;
    pthread_mutex_lock(&p->mu);
    for (k = 0; k < n; k++) {
        int e = pthread_create(&p->workers[k].thread, NULL, worker_main, &p->workers[k]);
        if (e != 0) {
            p->fatal = BLAST_ENOMEM;
            blast_error_set(&p->fatal_err, BLAST_ENOMEM, NULL, 0, 0,
                            "cannot start connection thread %zu of %zu: %s", k + 1, n, strerror(e));
            break;
        }
        p->workers[k].started = true;
        p->live++;
    }
    pthread_mutex_unlock(&p->mu);
    *out = p;
    if (p->fatal)
        /* the threads that did start stop at once; the caller still calls pool_finish() */
        return blast_error_set(err, p->fatal, NULL, 0, 0, "%s", p->fatal_err.text);
    return 0;
fail:
    pool_free(p);
    return rc;
}

/* "Not attempted", and why no relay could be used: the first one's last failure. */
static const char *no_relay(const struct pool *p, char *buf, size_t size)
{
    size_t i;

    for (i = 0; i < p->nrelays; i++)
        if (p->relays[i].last_failure[0] != '\0') {
            snprintf(buf, size, "not attempted: no relay could be used (relay '%s': %s)",
                     p->relays[i].cfg->name, p->relays[i].last_failure);
            return buf;
        }
    return "not attempted: no relay could be used";
}

int pool_submit(struct pool *p, const struct recipients_row *row, const struct address *to,
                const char *email, const struct outcome *earlier, const struct tzone *zone,
                struct blast_error *err)
{
    struct job *j = job_new(row, to, email);
    const char *reason = NULL;
    char why[400];
    size_t i;

    if (j == NULL)
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    j->drate = domain_index(p, j->domain); /* once, not at every pick */
    j->prate = provider_index(p, j->domain);
    j->zone = zone;
    if (earlier != NULL) {
        j->attempts = earlier->attempts;
        j->charged = j->attempts; /* earlier runs: counted in full, to stay bounded */
        j->first = earlier->first;
        for (i = 0; i < earlier->nhistory; i++)
            if (outcome_add_attempt(&j->rec, &earlier->history[i]) < 0) {
                job_free(j);
                return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
            }
    }
    pthread_mutex_lock(&p->mu);
    p->submitted++;
    while (!p->fatal && !p->stopping && p->live > 0 && p->rcount == p->rcap)
        pthread_cond_wait(&p->space, &p->mu);
    if (p->fatal) {
        int rc = p->fatal;
        blast_error_set(err, rc, p->fatal_err.source, p->fatal_err.line, p->fatal_err.column, "%s",
                        p->fatal_err.text);
        pthread_mutex_unlock(&p->mu);
        job_free(j);
        return rc;
    }
    if (p->stopping)
        reason = p->stop_reason;
    else if (p->live == 0 || !relay_alive(p))
        reason = no_relay(p, why, sizeof why);
    if (reason == NULL) {
        p->ready[(p->rhead + p->rcount++) % p->rcap] = j;
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    pthread_mutex_unlock(&p->mu);
    record_or_fail(p, j, OUTCOME_DEFERRED, NULL, reason, NULL);
    job_free(j);
    return p->fatal;
}

static void stop_locked(struct pool *p, const char *reason)
{
    if (!p->stopping) {
        p->stopping = true;
        snprintf(p->stop_reason, sizeof p->stop_reason, "%s", reason);
        p->drain_until = timeutil_mono_ms() + p->o.drain_ms;
    }
    pthread_cond_broadcast(&p->work);
    pthread_cond_broadcast(&p->space);
    pthread_cond_broadcast(&p->changed);
}

void pool_stop(struct pool *p, const char *reason)
{
    pthread_mutex_lock(&p->mu);
    stop_locked(p, reason);
    pthread_mutex_unlock(&p->mu);
}

/* What never went out when the pool stopped: deferred, with the reason. */
static void record_leftovers(struct pool *p)
{
    const char *reason;
    struct job *j;
    char why[400];

    pthread_mutex_lock(&p->mu);
    reason = p->stopping ? p->stop_reason : no_relay(p, why, sizeof why);
    while (p->rcount > 0 || p->hcount > 0) {
        j = p->rcount > 0 ? ready_remove(p, 0) : heap_pop(p);
        pthread_mutex_unlock(&p->mu);
        record_unsent(p, j, reason);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

int pool_finish(struct pool *p, volatile sig_atomic_t *interrupted, int64_t deadline,
                struct blast_error *err)
{
    size_t k;

    pthread_mutex_lock(&p->mu);
    p->producer_done = true;
    pthread_cond_broadcast(&p->work);
    while (p->live > 0) {
        int64_t now = timeutil_mono_ms();
        if (!p->stopping &&
            ((interrupted != NULL && *interrupted) || policy_deadline_passed(deadline, now))) {
            pthread_mutex_unlock(&p->mu);
            pool_stop(p, interrupted != NULL && *interrupted
                             ? "not attempted: the run was interrupted"
                             : "not attempted: the --deadline passed; left for the next run");
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (p->stopping && !p->interrupted_sessions && now >= p->drain_until) {
            /* the drain took too long: cut what is still open (unknown if past its end of data) */
            log_msg(p->o.log, LOG_LEVEL_WARN, "transactions still open after %d s: cutting them",
                    p->o.drain_ms / 1000);
            for (k = 0; k < p->nworkers; k++)
                smtp_session_interrupt(p->workers[k].session);
            p->interrupted_sessions = true;
        }
        if (!p->cancelled && (all_done(p) || p->stopping || p->fatal)) {
            /* no new session is needed: those still opening give up */
            p->cancelled = write(p->cancel[1], "x", 1) == 1;
        }
        /* a short wait: the signal handler cannot wake us */
        wait_until(p, &p->changed, now + 100);
    }
    pthread_mutex_unlock(&p->mu);
    for (k = 0; k < p->nworkers; k++)
        if (p->workers[k].started) {
            pthread_join(p->workers[k].thread, NULL);
            p->workers[k].started = false;
        }
    if (!p->fatal)
        record_leftovers(p);
    if (p->fatal)
        return blast_error_set(err, p->fatal, p->fatal_err.source, p->fatal_err.line,
                               p->fatal_err.column, "%s", p->fatal_err.text);
    return 0;
}

void pool_stats(struct pool *p, struct pool_stats *out)
{
    size_t i;

    pthread_mutex_lock(&p->mu);
    memset(out, 0, sizeof *out);
    out->submitted = p->submitted;
    out->sessions = p->sessions;
    out->messages = p->messages;
    out->round_trips = p->round_trips;
    for (i = 0; i < p->nrelays; i++)
        out->relays_usable += !p->relays[i].health.dead;
    out->no_relay = out->relays_usable == 0;
    for (i = 0; i < OUTCOME_STATUS_COUNT; i++)
        out->results[i] = __atomic_load_n(&p->results[i], __ATOMIC_RELAXED);
    out->queued = p->rcount;
    out->retrying = p->hcount;
    out->inflight = p->inflight;
    out->tripped = p->breaker.tripped;
    out->held_window = p->held_window;
    snprintf(out->breaker_why, sizeof out->breaker_why, "%s", p->breaker.why);
    pthread_mutex_unlock(&p->mu);
}

void pool_free(struct pool *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nworkers; i++) {
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
        compose_result_free(&p->workers[i].res);
    }
    for (i = 0; i < p->rcount; i++)
        job_free(ready_at(p, i));
    for (i = 0; i < p->hcount; i++)
        job_free(p->heap[i]);
    for (i = 0; p->relays != NULL && i < p->nrelays; i++)
        conn_tls_free(p->relays[i].tls);
    free(p->ready);
    free(p->heap);
    free(p->relays);
    free(p->domains);
    free(p->domain_holds);
    free(p->provider_holds);
    free(p->providers);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->space);
    pthread_cond_destroy(&p->changed);
    if (p->cancel[0] >= 0)
        close(p->cancel[0]);
    if (p->cancel[1] >= 0)
        close(p->cancel[1]);
    free(p);
}
