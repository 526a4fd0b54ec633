/*
 * test_secret - a relay's secret: from the environment, a file (its first line; a
 * warning when others may read it) or a command (its first line of output; it must
 * succeed), each failure placed where the campaign names the source, and the secret
 * never in an error or the log; the check that does not run the command.
 */
#include "../../core/secret.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURES "../fixtures"

static struct campaign *load_ok(const char *path)
{
    struct campaign *c = NULL;
    struct blast_error err;
    char msg[2048];

    blast_error_clear(&err);
    cr_assert_eq(campaign_load(path, &c, &err), 0, "%s", blast_error_format(&err, msg, sizeof msg));
    cr_assert_not_null(c);
    return c;
}

/* ---- from the environment -------------------------------------------------------------- */

#define SECRET "s3cr3t-Pa55w0rd!"

Test(secret, relay_password_from_the_environment)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/full.yml");
    struct blast_error err;
    char *pw = NULL;

    setenv("BLAST_UNIT_PASSWORD", SECRET, 1);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), 0, "%s", err.text);
    cr_assert_str_eq(pw, SECRET);
    cr_assert_eq(err.code, 0);
    cr_assert_null(strstr(err.text, SECRET));
    free(pw);
    campaign_free(c);
}

Test(secret, relay_password_unset_names_the_variable_and_its_place)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/full.yml");
    struct blast_error err;
    char *pw = (char *)0x1, msg[2048];

    unsetenv("BLAST_UNIT_PASSWORD");
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), BLAST_EINVAL);
    cr_assert_null(pw);
    cr_assert_str_eq(err.source, FIXTURES "/campaigns/full.yml");
    cr_assert_eq(err.line, 26);
    cr_assert_eq(err.column, 19);
    cr_assert(strstr(err.text, "BLAST_UNIT_PASSWORD") != NULL, "%s", err.text);
    cr_assert(strstr(err.text, "not set") != NULL, "%s", err.text);
    blast_error_format(&err, msg, sizeof msg);
    cr_assert_null(strstr(msg, SECRET));
    campaign_free(c);
}

Test(secret, relay_password_empty_is_refused)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/full.yml");
    struct blast_error err;
    char *pw = NULL;

    setenv("BLAST_UNIT_PASSWORD", "", 1);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), BLAST_EINVAL);
    cr_assert_null(pw);
    cr_assert(strstr(err.text, "empty") != NULL, "%s", err.text);
    campaign_free(c);
}

Test(secret, relay_password_secret_never_reaches_the_error)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/full.yml");
    struct blast_error err;
    char *pw = NULL, msg[2048];

    /* an error already recorded stays first, and the secret is not added to it */
    setenv("BLAST_UNIT_PASSWORD", SECRET, 1);
    blast_error_clear(&err);
    blast_error_set(&err, BLAST_ECONNECT, "relay", 0, 0, "earlier failure");
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), 0);
    cr_assert_str_eq(pw, SECRET);
    blast_error_format(&err, msg, sizeof msg);
    cr_assert_null(strstr(msg, SECRET), "%s", msg);
    cr_assert_null(strstr(err.source, SECRET));
    free(pw);
    campaign_free(c);
}

Test(secret, relay_without_username_has_no_password)
{
    struct campaign *c = load_ok(FIXTURES "/campaigns/full.yml");
    struct blast_error err;
    char *pw = (char *)0x1;

    unsetenv("BLAST_UNIT_PASSWORD");
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[1], NULL, &pw, &err), 0);
    cr_assert_null(pw);
    cr_assert_eq(err.code, 0);
    campaign_free(c);
}

/* ---- secrets from files and commands --------------------------------------------------- */

struct captured {
    int n, warnings;
    char text[4096];
};

static void capture(void *arg, enum log_level level, const char *message)
{
    struct captured *k = arg;
    size_t used = strlen(k->text);

    k->n++;
    k->warnings += level == LOG_LEVEL_WARN;
    snprintf(k->text + used, sizeof k->text - used, "%s\n", message);
}

/*
 * A campaign whose only relay has a username and, on line 8, secret_line (one of
 * password_file, password_cmd, password_env).
 */
static struct campaign *secret_campaign(const char *secret_line)
{
    char path[512], yml[1024];

    snprintf(yml, sizeof yml,
             "name: secrets\n"
             "from: news@acme.example\n"
             "subject: Hi\n"
             "recipients: {path: list.csv}\n"
             "body: {text: body.txt}\n"
             "relays:\n"
             "  - host: smtp.relay.example\n"
             "%s\n"
             "    username: news@acme.example\n",
             secret_line);
    if (scratch_dir[0] == '\0')
        scratch_make();
    scratch_write_file(scratch_dir, "campaign.yml", yml, path, sizeof path);
    return load_ok(path);
}

static void write_secret(const char *text, mode_t mode)
{
    char path[512];

    scratch_write_file(scratch_dir, "secret.txt", text, path, sizeof path);
    cr_assert_eq(chmod(path, mode), 0, "%s", strerror(errno));
}

Test(secret, password_file_gives_its_first_line, .fini = scratch_remove)
{
    struct campaign *c = secret_campaign("    password_file: secret.txt");
    struct captured k = {0, 0, ""};
    struct log lg = {capture, &k, LOG_LEVEL_TRACE};
    struct blast_error err;
    char *pw = NULL;

    write_secret(SECRET "\r\nsecond line\n", 0600);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], &lg, &pw, &err), 0, "%s", err.text);
    cr_assert_str_eq(pw, SECRET);
    cr_assert_eq(k.n, 0, "nothing to say about a private file: %s", k.text);
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], &lg, &err), 0, "%s", err.text);
    cr_assert_eq(k.n, 0, "%s", k.text);
    free(pw);
    campaign_free(c);
}

Test(secret, password_file_others_may_read_gives_a_warning, .fini = scratch_remove)
{
    struct campaign *c = secret_campaign("    password_file: secret.txt");
    struct captured k = {0, 0, ""};
    struct log lg = {capture, &k, LOG_LEVEL_TRACE};
    struct blast_error err;
    char *pw = NULL, want[600];

    write_secret(SECRET "\n", 0644);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], &lg, &pw, &err), 0, "%s", err.text);
    cr_assert_str_eq(pw, SECRET, "a warning, not a refusal");
    cr_assert_eq(k.warnings, 1, "%s", k.text);
    snprintf(want, sizeof want, "%s/campaign.yml:8:20: relay 'smtp.relay.example': password_file",
             scratch_dir);
    cr_assert_not_null(strstr(k.text, want), "%s", k.text);
    cr_assert_not_null(strstr(k.text, "can be read by others (chmod 600"), "%s", k.text);
    cr_assert_null(strstr(k.text, SECRET), "the secret reached the log");

    /* the check warns the same way, and works without a log */
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], &lg, &err), 0, "%s", err.text);
    cr_assert_eq(k.warnings, 2, "%s", k.text);
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], NULL, &err), 0, "%s", err.text);
    cr_assert_eq(err.code, 0);
    free(pw);
    campaign_free(c);
}

Test(secret, password_file_missing_or_empty_is_an_error_with_its_place, .fini = scratch_remove)
{
    struct campaign *c = secret_campaign("    password_file: secret.txt");
    struct blast_error err;
    char *pw = (char *)0x1;

    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), BLAST_EINVAL);
    cr_assert_null(pw);
    cr_assert_str_eq(err.source, c->path);
    cr_assert_eq(err.line, 8);
    cr_assert_eq(err.column, 20);
    cr_assert_not_null(strstr(err.text, "cannot read password_file"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "No such file or directory"), "%s", err.text);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], NULL, &err), BLAST_EINVAL);
    cr_assert_not_null(strstr(err.text, "cannot read password_file"), "%s", err.text);

    write_secret("\n" SECRET "\n", 0600);
    blast_error_clear(&err);
    pw = (char *)0x1;
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), BLAST_EINVAL);
    cr_assert_null(pw);
    cr_assert_not_null(strstr(err.text, "is empty"), "an empty first line: %s", err.text);
    cr_assert_null(strstr(err.text, SECRET));
    campaign_free(c);
}

Test(secret, password_cmd_gives_its_first_line_of_output, .fini = scratch_remove)
{
    struct campaign *c =
        secret_campaign("    password_cmd: 'echo \"" SECRET "\"; echo second line'");
    struct blast_error err;
    char *pw = NULL;

    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), 0, "%s", err.text);
    cr_assert_str_eq(pw, SECRET);
    cr_assert_eq(err.code, 0);
    free(pw);
    campaign_free(c);
}

Test(secret, password_cmd_failing_is_an_error_without_the_secret, .fini = scratch_remove)
{
    struct campaign *c = secret_campaign("    password_cmd: 'echo \"" SECRET "\"; exit 3'");
    struct captured k = {0, 0, ""};
    struct log lg = {capture, &k, LOG_LEVEL_TRACE};
    struct blast_error err;
    char *pw = (char *)0x1, msg[2048];

    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], &lg, &pw, &err), BLAST_EINVAL);
    cr_assert_null(pw);
    cr_assert_str_eq(err.source, c->path);
    cr_assert_eq(err.line, 8);
    cr_assert_eq(err.column, 19);
    blast_error_format(&err, msg, sizeof msg);
    cr_assert_not_null(
        strstr(msg, "relay 'smtp.relay.example': password_cmd failed (exit status 3)"), "%s", msg);
    cr_assert_null(strstr(msg, SECRET), "the secret is in the error: %s", msg);
    cr_assert_null(strstr(k.text, SECRET), "the secret is in the log: %s", k.text);
    campaign_free(c);
}

Test(secret, password_cmd_printing_nothing_is_an_error, .fini = scratch_remove)
{
    struct campaign *c = secret_campaign("    password_cmd: 'true'");
    struct blast_error err;
    char *pw = (char *)0x1;

    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), BLAST_EINVAL);
    cr_assert_null(pw);
    cr_assert_not_null(strstr(err.text, "printed nothing"), "%s", err.text);
    campaign_free(c);
}

Test(secret, password_check_does_not_run_the_command, .fini = scratch_remove)
{
    char line[700], marker[600];
    struct campaign *c;
    struct blast_error err;
    char *pw = NULL;

    snprintf(marker, sizeof marker, "%s/ran", scratch_make());
    snprintf(line, sizeof line, "    password_cmd: 'touch %s; echo " SECRET "'", marker);
    c = secret_campaign(line);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], NULL, &err), 0, "%s", err.text);
    cr_assert_neq(access(marker, F_OK), 0, "check ran password_cmd");
    cr_assert_eq(secret_relay_password(c, &c->relays[0], NULL, &pw, &err), 0, "%s", err.text);
    cr_assert_eq(access(marker, F_OK), 0, "fetching the secret runs it");
    cr_assert_str_eq(pw, SECRET);
    free(pw);
    campaign_free(c);
}

Test(secret, password_env_check, .fini = scratch_remove)
{
    struct campaign *c = secret_campaign("    password_env: BLAST_UNIT_PASSWORD");
    struct blast_error err;

    setenv("BLAST_UNIT_PASSWORD", SECRET, 1);
    blast_error_clear(&err);
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], NULL, &err), 0, "%s", err.text);
    unsetenv("BLAST_UNIT_PASSWORD");
    cr_assert_eq(secret_relay_password_check(c, &c->relays[0], NULL, &err), BLAST_EINVAL);
    cr_assert_eq(err.line, 8);
    cr_assert_eq(err.column, 19);
    cr_assert_not_null(strstr(err.text, "not set"), "%s", err.text);
    campaign_free(c);
}
