/*
 * secret - a relay's secret, from the environment, a file or a command. See secret.h.
 *
 * Every failure is placed at the key that names the source (r->password_place) and
 * says which relay, never what was read. What held the secret on its way (a line
 * read from the file, the command's output) is wiped before it goes out of scope.
 */
#include "secret.h"
#include "verp.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A secret is the first line of at most this many bytes, its NUL included. */
#define SECRET_LINE_MAX 4096
/* password_cmd must have exited within this. */
#define SECRET_CMD_TIMEOUT_S 30

static int secret_fail(const struct secret_source *s, struct blast_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int secret_fail(const struct secret_source *s, struct blast_error *err, const char *fmt, ...)
{
    char text[BLAST_ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return blast_error_set(err, BLAST_EINVAL, s->path, s->place.line, s->place.column, "%s: %s",
                           s->owner, text);
}

static int oom(struct blast_error *err)
{
    return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
}

/* The first line of text, without its line end. */
static void first_line(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
}

static int from_env(const struct secret_source *s, char **out, struct blast_error *err)
{
    const char *v = getenv(s->env);

    if (v == NULL || v[0] == '\0')
        return secret_fail(s, err, "environment variable %s is %s", s->env,
                           v == NULL ? "not set" : "empty");
    if ((*out = strdup(v)) == NULL)
        return oom(err);
    return 0;
}

static int open_secret_file(const struct secret_source *s, const struct log *lg, FILE **out,
                            struct blast_error *err)
{
    struct stat st;
    FILE *f = fopen(s->file, "r");

    *out = NULL;
    if (f == NULL)
        return secret_fail(s, err, "cannot read %s %s: %s", s->file_key, s->file, strerror(errno));
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        log_msg(lg, LOG_LEVEL_WARN, "%s:%d:%d: %s: %s %s can be read by others (chmod 600 %s)",
                s->path, s->place.line, s->place.column, s->owner, s->file_key, s->file, s->file);
    *out = f;
    return 0;
}

static int from_file(const struct secret_source *s, const struct log *lg, char **out,
                     struct blast_error *err)
{
    char line[SECRET_LINE_MAX];
    FILE *f;
    int rc;

    if ((rc = open_secret_file(s, lg, &f, err)) < 0)
        return rc;
    if (fgets(line, sizeof line, f) == NULL)
        line[0] = '\0';
    fclose(f);
    first_line(line);
    if (line[0] == '\0')
        rc = secret_fail(s, err, "%s %s is empty", s->file_key, s->file);
    else if ((*out = strdup(line)) == NULL)
        rc = oom(err);
    OPENSSL_cleanse(line, sizeof line);
    return rc;
}

/* Start password_cmd through /bin/sh, its standard output into a pipe that *fd reads. */
static int start_cmd(const struct secret_source *s, pid_t *pid, int *fd, struct blast_error *err)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) != 0)
        return secret_fail(s, err, "%s: cannot create a pipe: %s", s->cmd_key, strerror(errno));
    *pid = fork();
    if (*pid < 0) {
        int e = errno;

        close(fds[0]);
        close(fds[1]);
        return secret_fail(s, err, "%s: cannot start: %s", s->cmd_key, strerror(e));
    }
    if (*pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", s->cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    *fd = fds[0];
    return 0;
}

/*
 * Read the command's output from fd into buf (size bytes, the NUL included) until its
 * end, a full buffer or the deadline; at the deadline the command is killed.
 */
static int read_cmd_output(const struct secret_source *s, int fd, pid_t pid, int64_t deadline,
                           char *buf, size_t size, struct blast_error *err)
{
    size_t len = 0;
    int rc = 0;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - timeutil_mono_ms();
        ssize_t n;

        if (left <= 0) {
            kill(pid, SIGKILL);
            rc = secret_fail(s, err, "%s did not finish within %d seconds", s->cmd_key,
                             SECRET_CMD_TIMEOUT_S);
            break;
        }
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        n = read(fd, buf + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == size - 1)
            break;
    }
    buf[len] = '\0';
    return rc;
}

/* Run password_cmd with its time limit; its first output line is the secret. */
static int from_cmd(const struct secret_source *s, char **out, struct blast_error *err)
{
    char buf[SECRET_LINE_MAX];
    int64_t deadline = timeutil_mono_ms() + SECRET_CMD_TIMEOUT_S * 1000L;
    int fd = -1, status = 0, rc;
    pid_t pid = -1;

    if ((rc = start_cmd(s, &pid, &fd, err)) < 0)
        return rc;
    rc = read_cmd_output(s, fd, pid, deadline, buf, sizeof buf, err);
    close(fd);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = secret_fail(s, err, "%s failed (exit status %d)", s->cmd_key,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (rc == 0) {
        first_line(buf);
        if (buf[0] == '\0')
            rc = secret_fail(s, err, "%s printed nothing", s->cmd_key);
        else if ((*out = strdup(buf)) == NULL)
            rc = oom(err);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

int secret_fetch(const struct secret_source *s, const struct log *lg, char **out,
                 struct blast_error *err)
{
    *out = NULL;
    if (s->env != NULL)
        return from_env(s, out, err);
    if (s->file != NULL)
        return from_file(s, lg, out, err);
    if (s->cmd != NULL)
        return from_cmd(s, out, err);
    return secret_fail(s, err, "no secret is named");
}

int secret_check(const struct secret_source *s, const struct log *lg, struct blast_error *err)
{
    char *secret = NULL;
    int rc;

    if (s->env == NULL && s->file == NULL)
        return 0; /* a command is not run to check it */
    rc = secret_fetch(s, lg, &secret, err);
    if (secret != NULL) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    return rc;
}

/* Relay r's source, named as messages name it ("relay 'primary'"), into s and owner. */
static void relay_source(const struct campaign *c, const struct campaign_relay *r,
                         struct secret_source *s, char *owner, size_t size)
{
    snprintf(owner, size, "relay '%s'", r->name);
    s->env = r->password_env;
    s->file = r->password_file;
    s->cmd = r->password_cmd;
    s->owner = owner;
    s->file_key = "password_file";
    s->cmd_key = "password_cmd";
    s->path = c->path;
    s->place = r->password_place;
}

int secret_relay_password(const struct campaign *c, const struct campaign_relay *r,
                          const struct log *lg, char **out, struct blast_error *err)
{
    struct secret_source s;
    char owner[160];

    *out = NULL;
    if (r->username == NULL)
        return 0;
    relay_source(c, r, &s, owner, sizeof owner);
    return secret_fetch(&s, lg, out, err);
}

int secret_relay_password_check(const struct campaign *c, const struct campaign_relay *r,
                                const struct log *lg, struct blast_error *err)
{
    struct secret_source s;
    char owner[160];

    if (r->username == NULL)
        return 0;
    relay_source(c, r, &s, owner, sizeof owner);
    return secret_check(&s, lg, err);
}

/* The source of the campaign's return_path secret (secret_env or secret_file). */
static void return_path_source(const struct campaign *c, struct secret_source *s)
{
    memset(s, 0, sizeof *s);
    s->env = c->return_path.secret_env;
    s->file = c->return_path.secret_file;
    s->owner = "return_path";
    s->file_key = "secret_file";
    s->cmd_key = "secret_cmd";
    s->path = c->path;
    s->place = c->return_path.secret_place;
}

int secret_return_path(const struct campaign *c, const struct log *lg, char **out,
                       struct blast_error *err)
{
    struct secret_source s;
    int rc;

    return_path_source(c, &s);
    if ((rc = secret_fetch(&s, lg, out, err)) < 0)
        return rc;
    if (strlen(*out) < VERP_SECRET_MIN) {
        OPENSSL_cleanse(*out, strlen(*out));
        free(*out);
        *out = NULL;
        return secret_fail(&s, err, "the secret must be at least %d bytes", VERP_SECRET_MIN);
    }
    return 0;
}

void secret_bounces_source(const struct campaign *c, struct secret_source *s)
{
    const struct campaign_bounces *b = &c->bounces;

    *s = (struct secret_source){b->password_env, b->password_file, b->password_cmd,
                                "'bounces'",     "password_file",  "password_cmd",
                                c->path,         b->password_place};
}

void secret_limits_source(const struct campaign *c, struct secret_source *s)
{
    const struct campaign_limits *l = &c->limits;

    *s = (struct secret_source){l->password_env, l->password_file, NULL,    "'limits'",
                                "password_file", "password_cmd",   c->path, l->password_place};
}
