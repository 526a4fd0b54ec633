/*
 * log - leveled logging through a caller-supplied sink. See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

int log_enabled(const struct log *lg, enum log_level level)
{
    return lg != NULL && lg->sink != NULL && level <= lg->max;
}

void log_msg(const struct log *lg, enum log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list ap;

    if (!log_enabled(lg, level))
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    lg->sink(lg->arg, level, text);
}

const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR:
        return "error";
    case LOG_LEVEL_WARN:
        return "warning";
    case LOG_LEVEL_INFO:
        return "info";
    case LOG_LEVEL_DEBUG:
        return "debug";
    case LOG_LEVEL_TRACE:
        return "trace";
    }
    return "?";
}
