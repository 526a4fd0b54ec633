/*
 * error - the error record shared by every core module. See error.h.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *blast_strerror(int code)
{
    switch (code) {
    case BLAST_OK:
        return "success";
    case BLAST_ENOMEM:
        return "out of memory";
    case BLAST_EIO:
        return "input/output error";
    case BLAST_ESYNTAX:
        return "syntax error";
    case BLAST_EINVAL:
        return "invalid value";
    case BLAST_ECONNECT:
        return "connection failed";
    case BLAST_ETIMEOUT:
        return "timed out";
    case BLAST_EPROTO:
        return "protocol error";
    case BLAST_ETLS:
        return "TLS error";
    case BLAST_EAUTH:
        return "authentication refused";
    case BLAST_EREPLY:
        return "error reply from server";
    case BLAST_ECLOSED:
        return "connection closed by peer";
    default:
        return "unknown error";
    }
}

void blast_error_clear(struct blast_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->source[0] = '\0';
    err->line = 0;
    err->column = 0;
    err->text[0] = '\0';
}

static void error_vset(struct blast_error *err, int code, const char *source, int line, int column,
                       const char *fmt, va_list ap)
{
    err->code = code;
    snprintf(err->source, sizeof err->source, "%s", source != NULL ? source : "");
    err->line = line;
    err->column = column;
    vsnprintf(err->text, sizeof err->text, fmt, ap);
}

int blast_error_set(struct blast_error *err, int code, const char *source, int line, int column,
                    const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err->code != 0)
        return code;
    va_start(ap, fmt);
    error_vset(err, code, source, line, column, fmt, ap);
    va_end(ap);
    return code;
}

int blast_error_replace(struct blast_error *err, int code, const char *source, int line, int column,
                        const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    va_start(ap, fmt);
    error_vset(err, code, source, line, column, fmt, ap);
    va_end(ap);
    return code;
}

const char *blast_error_format(const struct blast_error *err, char *out, size_t size)
{
    const char *text;

    if (size == 0)
        return out;
    text = err->text[0] != '\0' ? err->text : blast_strerror(err->code);
    if (err->source[0] == '\0')
        snprintf(out, size, "%s", text);
    else if (err->line <= 0)
        snprintf(out, size, "%s: %s", err->source, text);
    else if (err->column <= 0)
        snprintf(out, size, "%s:%d: %s", err->source, err->line, text);
    else
        snprintf(out, size, "%s:%d:%d: %s", err->source, err->line, err->column, text);
    return out;
}
