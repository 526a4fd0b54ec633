/*
 * secret - a secret (a relay's AUTH password or XOAUTH2 token, the return path's HMAC
 * key), fetched when it is needed.
 *
 * Owns: fetching it from where the relay names it (password_env, password_file,
 * password_cmd) and checking it is there; the rules for each source (a file's first
 * line, with a warning when others may read it; a command's first line of output, run
 * through /bin/sh, which must exit 0 within 30 seconds); and keeping the secret out
 * of sight: it never appears in err or in the log, and the buffers that held it are
 * wiped (OPENSSL_cleanse).
 * Does not own: where the secret is named and the rule that a relay with a username
 * names exactly one source (the campaign loader); using it (smtp); the notify
 * webhook's Authorization value, which notify reads where it makes the request and
 * checks with the webhook's other settings outside the campaign file
 * (notify_check_settings()), since it is part of that request, not a relay's login.
 */
#ifndef BLAST_SECRET_H
#define BLAST_SECRET_H

#include "campaign.h"
#include "error.h"
#include "log.h"

/* Where a secret comes from, and how messages name it. */
struct secret_source {
    const char *env;             /* an environment variable's name, or NULL */
    const char *file;            /* a file (resolved path) whose first line it is, or NULL */
    const char *cmd;             /* a command whose first line of output it is, or NULL */
    const char *owner;           /* who it is for, in messages: "relay 'primary'", "return_path" */
    const char *file_key;        /* the campaign's name for file: "password_file", "secret_file" */
    const char *cmd_key;         /* and for cmd: "password_cmd" */
    const char *path;            /* the campaign file, for messages */
    struct campaign_place place; /* where the source is named in it */
};

/*
 * Fetch the secret into a new string the caller must wipe and free: from the
 * environment variable, the file (its first line; a warning goes to lg when others
 * may read it; lg may be NULL) or the command (its first line of output; it must
 * exit 0 within 30 seconds). Fails with BLAST_EINVAL at s->place, naming s->owner,
 * or BLAST_ENOMEM. The secret itself never appears in err or in the log.
 */
int secret_fetch(const struct secret_source *s, const struct log *lg, char **out,
                 struct blast_error *err);

/* Check that the secret is there without keeping it; a command is not run. */
int secret_check(const struct secret_source *s, const struct log *lg, struct blast_error *err);

/*
 * Fetch relay r's secret into a new string the caller must wipe and free (*out is NULL
 * when the relay has no username): from the environment variable, the file (its first
 * line; a warning goes to lg when others may read it; lg may be NULL) or the command
 * (its first line of output; it must exit 0 within 30 seconds). Fails with
 * BLAST_EINVAL naming the place in c's file where the secret is configured, or
 * BLAST_ENOMEM. The secret itself never appears in err or in the log.
 */
int secret_relay_password(const struct campaign *c, const struct campaign_relay *r,
                          const struct log *lg, char **out, struct blast_error *err);

/*
 * Check that relay r's secret is available without keeping it: the variable is set,
 * the file is readable (warning when others may read it). A password_cmd is not run
 * here. Errors as secret_relay_password().
 */
int secret_relay_password_check(const struct campaign *c, const struct campaign_relay *r,
                                const struct log *lg, struct blast_error *err);

/*
 * The campaign's return_path secret (from secret_env or secret_file) into a new
 * string the caller wipes and frees, at least VERP_SECRET_MIN bytes long. Errors as
 * secret_fetch(), placed at the secret's key; a shorter secret is BLAST_EINVAL.
 */
int secret_return_path(const struct campaign *c, const struct log *lg, char **out,
                       struct blast_error *err);

/* Where the campaign's bounce mailbox secret ('bounces', docs/campaign.md) comes from. */
void secret_bounces_source(const struct campaign *c, struct secret_source *s);

/*
 * Where the password of the campaign's shared limits' Redis ('limits', docs/campaign.md)
 * comes from; nowhere (env and file NULL) when it has none.
 */
void secret_limits_source(const struct campaign *c, struct secret_source *s);

#endif
