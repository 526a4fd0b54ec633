/*
 * progress - the bar on a terminal, a status line in the log elsewhere. See progress.h.
 */
#include "progress.h"

#include "../../core/timeutil.h"
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_PERIOD_MS  250   /* at most four redraws a second */
#define LOG_PERIOD_MS  10000 /* without a terminal: a line every 10 s */
#define RATE_WINDOW_MS 10000 /* the current rate is over the last 10 s */
#define SAMPLES        64

struct sample {
    int64_t at;
    size_t delivered;
};

struct progress {
    enum progress_mode mode;
    int period_ms;
    progress_poll_fn poll;
    void *arg;
    const struct log *log;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    struct sample samples[SAMPLES]; /* a ring, for the current rate */
    size_t nsamples, next;
    int64_t started;
};

/* 1234567 -> "1,234,567" */
static void grouped(size_t n, char *out, size_t size)
{
    char digits[32];
    size_t len, i, k = 0;

    len = (size_t)snprintf(digits, sizeof digits, "%zu", n);
    for (i = 0; i < len && k + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

static void duration(double secs, char *out, size_t size)
{
    long s = secs < 0 ? 0 : secs > 359999 ? 359999 : (long)(secs + 0.5);

    if (s >= 3600)
        snprintf(out, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, size, "%lds", s);
}

void progress_format(const struct progress_counts *c, double rate, int width, char *out,
                     size_t size)
{
    char done[32], total[32], dl[32], df[32], fl[32], eta[32], tail[256];
    size_t settled = c->settled > c->total ? c->total : c->settled;
    double frac = c->total > 0 ? (double)settled / (double)c->total : 1.0;
    int bar, fill, i, k = 0;

    grouped(settled, done, sizeof done);
    grouped(c->total, total, sizeof total);
    grouped(c->delivered, dl, sizeof dl);
    grouped(c->deferred + c->retrying, df, sizeof df);
    grouped(c->failed, fl, sizeof fl);
    if (settled >= c->total)
        snprintf(eta, sizeof eta, "done");
    else if (rate > 0.05) {
        char d[16];
        duration((double)(c->total - settled) / rate, d, sizeof d);
        snprintf(eta, sizeof eta, "ETA %s", d);
    } else
        snprintf(eta, sizeof eta, "ETA ?");
    snprintf(tail, sizeof tail, "%3d%% %s/%s sent %s deferred %s failed %s %.1f/s %s",
             (int)(frac * 100.0), done, total, dl, df, fl, rate, eta);
    /*
     * The bar takes what a typical line leaves (a fixed share, so that it does not
     * come and go as the numbers grow), when that is enough to mean something.
     */
    bar = width - 68;
    if (bar > 40)
        bar = 40;
    if (bar >= 10 && size > (size_t)bar + 3) {
        fill = (int)(frac * bar);
        out[k++] = '[';
        for (i = 0; i < bar; i++)
            out[k++] = i < fill ? '#' : '.';
        out[k++] = ']';
        out[k++] = ' ';
    }
    snprintf(out + k, size - (size_t)k, "%s", tail);
}

static int terminal_width(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Messages a second over the last RATE_WINDOW_MS, from the ring of samples. */
static double current_rate(struct progress *p, int64_t now, size_t delivered)
{
    const struct sample *oldest = NULL;
    size_t i;

    p->samples[p->next] = (struct sample){now, delivered};
    p->next = (p->next + 1) % SAMPLES;
    if (p->nsamples < SAMPLES)
        p->nsamples++;
    for (i = 0; i < p->nsamples; i++) {
        const struct sample *s = &p->samples[i];
        if (now - s->at <= RATE_WINDOW_MS && (oldest == NULL || s->at < oldest->at))
            oldest = s;
    }
    if (oldest == NULL || now - oldest->at < 500)
        /* too early for a window: the average since the start */
        return now > p->started ? (double)delivered * 1000.0 / (double)(now - p->started) : 0;
    return (double)(delivered - oldest->delivered) * 1000.0 / (double)(now - oldest->at);
}

static void show(struct progress *p)
{
    struct progress_counts c;
    char line[512];
    int64_t now = timeutil_mono_ms();
    double rate;

    memset(&c, 0, sizeof c);
    p->poll(p->arg, &c);
    rate = current_rate(p, now, c.delivered);
    if (p->mode == PROGRESS_BAR) {
        progress_format(&c, rate, terminal_width() - 1, line, sizeof line);
        cli_status(line);
    } else {
        progress_format(&c, rate, 0, line, sizeof line);
        log_msg(p->log, LOG_LEVEL_INFO, "progress: %s", line);
    }
}

static void *run(void *arg)
{
    struct progress *p = arg;
    struct timespec until;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += p->period_ms / 1000;
        until.tv_nsec += (long)(p->period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!p->stop && pthread_cond_timedwait(&p->cond, &p->mu, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        show(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int progress_start(enum progress_mode mode, int interval_ms, progress_poll_fn poll, void *arg,
                   const struct log *log, struct progress **out)
{
    struct progress *p;
    pthread_condattr_t ca;

    *out = NULL;
    if (mode == PROGRESS_OFF)
        return 0;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -1;
    p->mode = mode;
    p->period_ms = mode == PROGRESS_BAR ? BAR_PERIOD_MS
                   : interval_ms > 0    ? interval_ms
                                        : LOG_PERIOD_MS;
    p->poll = poll;
    p->arg = arg;
    p->log = log;
    p->started = timeutil_mono_ms();
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void progress_stop(struct progress *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    if (p->mode == PROGRESS_BAR) {
        show(p); /* the final counts */
        cli_status(NULL);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
