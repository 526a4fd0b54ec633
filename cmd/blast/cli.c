/*
 * cli - helpers shared by the subcommands. See cli.h.
 */
#include "cli.h"

#include "../../core/timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Everything blast says on stderr goes through emit(), under one lock: log lines
 * from several threads do not interleave, and a status line (the progress bar)
 * is taken off before a message and drawn again under it.
 */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static bool json_lines;       /* --log-format json */
static char status_line[512]; /* the status line on screen, when status_shown */
static bool status_shown;

static void emit_json(enum log_level level, const char *message, const struct blast_error *err)
{
    char when[40], *text;
    json_t *o;

    timeutil_rfc3339(timeutil_now(), when, sizeof when);
    o = json_pack("{s:s, s:s, s:s}", "time", when, "level", log_level_name(level), "message",
                  message);
    if (o != NULL && err != NULL && err->source[0] != '\0') {
        json_object_set_new(o, "source", json_string(err->source));
        if (err->line > 0)
            json_object_set_new(o, "line", json_integer(err->line));
        if (err->column > 0)
            json_object_set_new(o, "column", json_integer(err->column));
    }
    text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    if (text != NULL)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(o);
}

/* prefix: print "level: " before the message (log lines), or not (errors of the CLI) */
static void emit(enum log_level level, bool prefix, const char *message, const char *json_message,
                 const struct blast_error *err)
{
    pthread_mutex_lock(&out_mu);
    if (status_shown)
        fputs("\r\033[K", stderr);
    if (json_lines)
        emit_json(level, json_message, err);
    else if (prefix && level <= LOG_LEVEL_WARN)
        fprintf(stderr, "blast: %s: %s\n", log_level_name(level), message);
    else
        fprintf(stderr, "blast: %s\n", message);
    if (status_shown)
        fputs(status_line, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&out_mu);
}

void cli_error(const struct blast_error *err)
{
    char text[BLAST_ERROR_SOURCE_MAX + BLAST_ERROR_TEXT_MAX + 32];

    emit(LOG_LEVEL_ERROR, false, blast_error_format(err, text, sizeof text), err->text, err);
}

void cli_fail(const char *fmt, ...)
{
    char text[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    emit(LOG_LEVEL_ERROR, false, text, text, NULL);
}

static void stderr_sink(void *arg, enum log_level level, const char *message)
{
    (void)arg;
    emit(level, true, message, message, NULL);
}

void cli_log_init(struct log *lg, enum log_level max)
{
    lg->sink = stderr_sink;
    lg->arg = NULL;
    lg->max = max;
}

int cli_log_format(const char *cmd, const char *name)
{
    if (strcmp(name, "json") == 0 || strcmp(name, "text") == 0) {
        json_lines = strcmp(name, "json") == 0;
        return 0;
    }
    cli_fail("%s: --log-format is text or json, not '%s'", cmd, name);
    return -1;
}

bool cli_finding(const char *check, const char *finding, const char *record, const char *text,
                 const char *publish)
{
    char when[40], *out;
    json_t *o;

    if (!json_lines)
        return false;
    timeutil_rfc3339(timeutil_now(), when, sizeof when);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "time", when, "level",
                  strcmp(finding, "error") == 0     ? "error"
                  : strcmp(finding, "warning") == 0 ? "warn"
                                                    : "info",
                  "message", text, "check", check, "finding", finding, "record", record);
    if (o == NULL) /* text jansson refuses (not UTF-8): said, not dropped */
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "time", when, "level", "error", "message",
                      "(a finding whose text is not UTF-8)", "check", check, "finding", finding,
                      "record", "?");
    if (o != NULL && publish != NULL && publish[0] != '\0')
        json_object_set_new(o, "publish", json_string(publish));
    out = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    pthread_mutex_lock(&out_mu);
    if (out != NULL)
        fprintf(stderr, "%s\n", out);
    fflush(stderr);
    pthread_mutex_unlock(&out_mu);
    free(out);
    json_decref(o);
    return true;
}

void cli_status(const char *line)
{
    pthread_mutex_lock(&out_mu);
    if (line != NULL) {
        snprintf(status_line, sizeof status_line, "\r%s\033[K", line);
        fputs(status_line, stderr);
        status_shown = true;
    } else if (status_shown) {
        fputc('\n', stderr); /* the last state stays on screen */
        status_shown = false;
    }
    fflush(stderr);
    pthread_mutex_unlock(&out_mu);
}

enum log_level cli_log_level(bool quiet, int verbose)
{
    if (quiet)
        return LOG_LEVEL_WARN;
    if (verbose >= 2)
        return LOG_LEVEL_TRACE;
    return verbose == 1 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
}

int cli_positive(const char *cmd, const char *option, const char *arg, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || errno != 0 || *out <= 0) {
        cli_fail("%s: %s needs a positive whole number, not '%s'", cmd, option, arg);
        return -1;
    }
    return 0;
}

void cli_bad_option(const char *cmd, char **argv, int optopt)
{
    if (optopt != 0 && optopt < 128 && argv[optind - 1][1] != '-')
        cli_fail("%s: unknown option '-%c' (see 'blast help %s')", cmd, optopt, cmd);
    else
        cli_fail("%s: unknown or incomplete option '%s' (see 'blast help %s')", cmd,
                 argv[optind - 1], cmd);
}

int cli_one_operand(const char *cmd, int argc, char **argv, const char **out)
{
    if (optind >= argc) {
        cli_fail("%s: which campaign? usage: blast %s CAMPAIGN.yml [OPTIONS]", cmd, cmd);
        return -1;
    }
    if (optind + 1 < argc) {
        cli_fail("%s: unexpected argument '%s' (one campaign file at a time)", cmd,
                 argv[optind + 1]);
        return -1;
    }
    *out = argv[optind];
    return 0;
}

void cli_session_failure(const struct smtp_session *s, struct blast_error *e)
{
    char text[BLAST_ERROR_TEXT_MAX];

    if (s == NULL || smtp_session_state(s) <= SMTP_CONNECT)
        return;
    snprintf(text, sizeof text, "%s (during %s)", e->text, smtp_state_name(smtp_session_state(s)));
    snprintf(e->text, sizeof e->text, "%s", text);
}

void cli_csv_field(FILE *out, const char *s, bool text)
{
    bool guard = text && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = strpbrk(s, ",\"\r\n") != NULL;

    if (quote)
        fputc('"', out);
    if (guard)
        fputc('\'', out);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    if (quote)
        fputc('"', out);
}
