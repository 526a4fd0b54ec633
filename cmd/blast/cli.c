/*
 * cli - helpers shared by the subcommands. See cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_error(const struct blast_error *err)
{
    char text[BLAST_ERROR_SOURCE_MAX + BLAST_ERROR_TEXT_MAX + 32];

    fprintf(stderr, "blast: %s\n", blast_error_format(err, text, sizeof text));
}

void cli_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("blast: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void stderr_sink(void *arg, enum log_level level, const char *message)
{
    (void)arg;
    if (level <= LOG_LEVEL_WARN)
        fprintf(stderr, "blast: %s: %s\n", log_level_name(level), message);
    else
        fprintf(stderr, "blast: %s\n", message);
}

void cli_log_init(struct log *lg, enum log_level max)
{
    lg->sink = stderr_sink;
    lg->arg = NULL;
    lg->max = max;
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
