/*
 * log - leveled messages from core/ to whoever is listening.
 *
 * Core modules never print. They call log_msg() on the struct log they were given,
 * and the sink (set up by cmd/) decides where the text goes. A NULL struct log, or
 * one without a sink, discards everything. The sink must be safe to call from
 * several threads if the log is shared between them.
 *
 * Secrets never reach a log: callers mask them before formatting (see smtp.c's
 * transcript, which prints "AUTH PLAIN ********").
 */
#ifndef BLAST_LOG_H
#define BLAST_LOG_H

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3, /* -v */
    LOG_LEVEL_TRACE = 4, /* -vv: SMTP transcript */
};

typedef void (*log_sink_fn)(void *arg, enum log_level level, const char *message);

struct log {
    log_sink_fn sink;
    void *arg;
    enum log_level max; /* messages above this level are dropped before formatting */
};

/* True when a message at this level would be delivered (so callers can skip work). */
int log_enabled(const struct log *lg, enum log_level level);

void log_msg(const struct log *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "error", "warning", "info", "debug", "trace". */
const char *log_level_name(enum log_level level);

#endif
