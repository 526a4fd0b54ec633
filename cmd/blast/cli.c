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

void cli_smtp_options(const struct campaign *c, const struct campaign_relay *relay,
                      struct conn_tls *tls, const char *password, const struct log *lg,
                      struct smtp_options *so)
{
    const struct campaign_timeouts *t = &relay->timeouts;

    memset(so, 0, sizeof *so);
    so->host = relay->host;
    so->port = relay->port;
    so->label = relay->name;
    so->tls = relay->tls == CAMPAIGN_TLS_IMPLICIT ? SMTP_TLS_IMPLICIT
              : relay->tls == CAMPAIGN_TLS_NONE   ? SMTP_TLS_NONE
                                                  : SMTP_TLS_STARTTLS;
    so->tls_ctx = tls;
    so->helo_name = c->helo;
    so->username = relay->username;
    so->password = password;
    so->auth = (enum smtp_auth_choice)relay->auth;
    so->allow_plaintext_auth = relay->allow_plaintext;
    so->chunking = c->chunking;
    so->dsn_notify = (c->dsn.notify & CAMPAIGN_DSN_NEVER ? SMTP_DSN_NEVER : 0) |
                     (c->dsn.notify & CAMPAIGN_DSN_SUCCESS ? SMTP_DSN_SUCCESS : 0) |
                     (c->dsn.notify & CAMPAIGN_DSN_FAILURE ? SMTP_DSN_FAILURE : 0) |
                     (c->dsn.notify & CAMPAIGN_DSN_DELAY ? SMTP_DSN_DELAY : 0);
    so->dsn_ret = c->dsn.ret == CAMPAIGN_DSN_RET_FULL   ? SMTP_DSN_RET_FULL
                  : c->dsn.ret == CAMPAIGN_DSN_RET_HDRS ? SMTP_DSN_RET_HDRS
                                                        : SMTP_DSN_RET_DEFAULT;
    so->log = lg;
    smtp_timeouts_default(&so->timeouts);
#define TIMEOUT(f)                                                                                 \
    if (t->f > 0)                                                                                  \
    so->timeouts.f = (int)(t->f > 86400000L ? 86400000L : t->f)
    TIMEOUT(connect);
    TIMEOUT(greeting);
    TIMEOUT(ehlo);
    TIMEOUT(starttls);
    TIMEOUT(auth);
    TIMEOUT(mail);
    TIMEOUT(rcpt);
    TIMEOUT(data);
    TIMEOUT(block);
    TIMEOUT(end_of_data);
    TIMEOUT(rset);
    TIMEOUT(quit);
#undef TIMEOUT
}

void cli_session_failure(const struct smtp_session *s, struct blast_error *e)
{
    char text[BLAST_ERROR_TEXT_MAX];

    if (s == NULL || smtp_session_state(s) <= SMTP_CONNECT)
        return;
    snprintf(text, sizeof text, "%s (during %s)", e->text, smtp_state_name(smtp_session_state(s)));
    snprintf(e->text, sizeof e->text, "%s", text);
}
