/*
 * fuzz_campaign - the campaign loader (campaign_load) on a fuzzed campaign file.
 *
 * The input is written to a file in memory and loaded; a campaign that loads has
 * its vars looked up and is freed. The loader must not act on what it reads: a
 * fuzzed file names password commands, password files, CA files and paths
 * anywhere. So while campaign_load runs, this harness stands in for the C
 * library's ways of running a program (fork, exec*, posix_spawn*, popen, system)
 * and of opening a file (fopen, open, openat): any of them aborts, a finding,
 * except opening the campaign file itself. Outside campaign_load they pass the call
 * on, since libFuzzer uses some of them.
 */
#include "../../core/campaign.h"
#include "fuzz.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int guarding;        /* inside campaign_load */
static const char *allowed; /* the campaign file's path */

static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);

    if (f == NULL)
        fuzz_fail("no %s in the C library", name);
    return f;
}

static void refuse(const char *what, const char *arg)
{
    if (guarding)
        fuzz_fail("campaign_load called %s(%s): the loader must not run programs or read files",
                  what, arg != NULL ? arg : "");
}

static void refuse_path(const char *what, const char *path)
{
    if (guarding && (allowed == NULL || path == NULL || strcmp(path, allowed) != 0))
        refuse(what, path);
}

pid_t fork(void)
{
    refuse("fork", NULL);
    return ((pid_t(*)(void))real("fork"))();
}

pid_t vfork(void)
{
    /* vfork's child must not return from this function: fork is what it gets */
    refuse("vfork", NULL);
    return ((pid_t(*)(void))real("fork"))();
}

int execve(const char *path, char *const argv[], char *const envp[])
{
    refuse("execve", path);
    return ((int (*)(const char *, char *const[], char *const[]))real("execve"))(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
    refuse("execv", path);
    return ((int (*)(const char *, char *const[]))real("execv"))(path, argv);
}

int execvp(const char *file, char *const argv[])
{
    refuse("execvp", file);
    return ((int (*)(const char *, char *const[]))real("execvp"))(file, argv);
}

int execl(const char *path, const char *arg, ...)
{
    char *argv[64];
    va_list ap;
    int n = 0;

    refuse("execl", path);
    argv[n++] = (char *)arg;
    va_start(ap, arg);
    while (argv[n - 1] != NULL && n < 63)
        argv[n++] = va_arg(ap, char *);
    va_end(ap);
    argv[n] = NULL;
    return execv(path, argv);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    refuse("posix_spawn", path);
    return ((int (*)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                     const posix_spawnattr_t *, char *const[], char *const[]))real("posix_spawn"))(
        pid, path, fa, attr, argv, envp);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    refuse("posix_spawnp", file);
    return ((int (*)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                     const posix_spawnattr_t *, char *const[], char *const[]))real("posix_spawnp"))(
        pid, file, fa, attr, argv, envp);
}

FILE *popen(const char *command, const char *type)
{
    refuse("popen", command);
    return ((FILE * (*)(const char *, const char *)) real("popen"))(command, type);
}

int system(const char *command)
{
    refuse("system", command);
    return ((int (*)(const char *))real("system"))(command);
}

FILE *fopen(const char *path, const char *mode)
{
    refuse_path("fopen", path);
    return ((FILE * (*)(const char *, const char *)) real("fopen"))(path, mode);
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    refuse_path("open", path);
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return ((int (*)(const char *, int, ...))real("open"))(path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    refuse_path("openat", path);
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return ((int (*)(int, const char *, int, ...))real("openat"))(dir, path, flags, mode);
}

/* Look every var up by its dotted name, as templates do: each must be found. */
static void lookup_all(const struct campaign *c, const struct campaign_value *v, char *name,
                       size_t len, size_t size, int depth)
{
    size_t i;

    if (depth > 40)
        fuzz_fail("vars nested %d deep", depth);
    if (v->kind != CAMPAIGN_VALUE_MAP)
        return;
    for (i = 0; i < v->n; i++) {
        size_t n = strlen(v->keys[i]);
        if (len + n + 2 > size)
            continue;
        if (len > 0)
            name[len] = '.';
        memcpy(name + len + (len > 0), v->keys[i], n + 1);
        if (campaign_var(c, name) == NULL)
            fuzz_fail("var '%s' is not found by its name", name);
        lookup_all(c, &v->items[i], name, len + n + (len > 0), size, depth + 1);
        name[len] = '\0';
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct campaign *c = NULL;
    struct blast_error err;
    char path[64], name[1024] = "";
    int fd, rc;

    fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    blast_error_clear(&err);
    allowed = path;
    guarding = 1;
    rc = campaign_load(path, &c, &err);
    guarding = 0;
    allowed = NULL;
    if (rc < 0) {
        if (c != NULL || err.code != rc)
            fuzz_fail("failed (%d) with a campaign or another error code (%d)", rc, err.code);
        if (err.code != BLAST_ENOMEM && (err.line < 0 || err.column < 0 || err.source[0] == '\0'))
            fuzz_fail("an error without its place: %s", err.text);
    } else {
        if (c == NULL || c->nrelays < 1 || c->name == NULL || c->subject == NULL)
            fuzz_fail("a campaign without what it requires");
        lookup_all(c, &c->vars, name, 0, sizeof name, 0);
        campaign_free(c);
    }
    close(fd);
    return 0;
}
