/*
 * progress - what `blast send` shows while it sends: on a terminal, a bar with
 * sent / deferred / failed, the current rate and the time left, redrawn four
 * times a second (cli_status(), so log lines scroll above it); elsewhere (cron,
 * a pipe), a one-line status in the log every 10 seconds. Owns a thread that
 * samples the counts; does not own the counts (the caller's poll function reads
 * them, from that thread).
 */
#ifndef BLAST_PROGRESS_H
#define BLAST_PROGRESS_H

#include "../../core/log.h"

#include <stddef.h>

enum progress_mode {
    PROGRESS_OFF = 0,
    PROGRESS_BAR, /* a terminal: the bar */
    PROGRESS_LOG, /* no terminal: a status line in the log every interval */
};

struct progress_counts {
    size_t total;     /* rows this run will settle (the list after --limit) */
    size_t settled;   /* rows with a final state: earlier runs, skipped by rule, decided now */
    size_t delivered; /* this run */
    size_t deferred;  /* this run: recorded deferred (left for the next run) */
    size_t retrying;  /* waiting for a retry */
    size_t failed;    /* this run: failed, unknown or invalid */
};

typedef void (*progress_poll_fn)(void *arg, struct progress_counts *out);

struct progress;

/*
 * Start showing progress (mode OFF: nothing, *out is NULL). interval_ms: how
 * often the log line comes in PROGRESS_LOG mode (0: 10 s). Returns 0, or -1 when
 * the thread cannot start (then there is simply no progress).
 */
int progress_start(enum progress_mode mode, int interval_ms, progress_poll_fn poll, void *arg,
                   const struct log *log, struct progress **out);

/* Show the final counts (the bar stays on screen), stop the thread and free. Accepts NULL. */
void progress_stop(struct progress *p);

/* The line progress shows for these counts, rate (messages a second) and width. */
void progress_format(const struct progress_counts *c, double rate, int width, char *out,
                     size_t size);

#endif
