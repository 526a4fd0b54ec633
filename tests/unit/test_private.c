/*
 * Unit tests for core/private: files 0600 and directories 0700 under a umask that
 * would let anyone read them (000) and one that would not (077), missing parents made,
 * existing files and directories left as they are; and which modes count as exposed.
 */
#include "../../core/private.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static mode_t mode_of(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void in_scratch(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", scratch_dir[0] ? scratch_dir : scratch_make(), name);
}

static void file_is_private_under(mode_t mask)
{
    char path[256];
    int fd;

    in_scratch(path, sizeof path, "f.journal");
    umask(mask);
    fd = private_open(path, O_RDWR | O_APPEND);
    cr_assert_geq(fd, 0, "%s", strerror(errno));
    cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    close(fd);
    cr_expect_eq(mode_of(path), 0600, "mode %o under umask %03o", mode_of(path), mask);
}

Test(private, file_0600_under_umask_000, .fini = scratch_remove)
{
    file_is_private_under(0);
}

Test(private, file_0600_under_umask_077, .fini = scratch_remove)
{
    file_is_private_under(077);
}

Test(private, existing_file_keeps_its_mode, .fini = scratch_remove)
{
    char path[256];
    int fd;

    in_scratch(path, sizeof path, "old.json");
    umask(0);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
    fd = private_open(path, O_RDWR | O_APPEND);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_expect_eq(mode_of(path), 0644);
    /* and its contents are there: no O_TRUNC was asked for */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, 1);
}

Test(private, mkstemp_0600, .fini = scratch_remove)
{
    char tmpl[256];
    int fd;

    in_scratch(tmpl, sizeof tmpl, "r.json.tmp.XXXXXX");
    umask(0);
    fd = private_mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    cr_expect_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    close(fd);
    cr_expect_eq(mode_of(tmpl), 0600);
}

Test(private, directories_0700_with_parents, .fini = scratch_remove)
{
    char top[256], deep[256];

    in_scratch(top, sizeof top, "a");
    in_scratch(deep, sizeof deep, "a/b//c/");
    umask(0);
    cr_assert_eq(private_mkdir(deep, true), 0, "%s", strerror(errno));
    cr_expect_eq(mode_of(top), 0700);
    in_scratch(deep, sizeof deep, "a/b");
    cr_expect_eq(mode_of(deep), 0700);
    in_scratch(deep, sizeof deep, "a/b/c");
    cr_expect_eq(mode_of(deep), 0700);
    /* again: nothing to do */
    cr_expect_eq(private_mkdir(deep, true), 0);
    cr_expect_eq(private_mkdir(deep, false), 0);
}

Test(private, directory_0700_under_umask_077, .fini = scratch_remove)
{
    char path[256];

    in_scratch(path, sizeof path, "reports");
    umask(077);
    cr_assert_eq(private_mkdir(path, false), 0);
    cr_expect_eq(mode_of(path), 0700);
}

Test(private, parents_of_a_file, .fini = scratch_remove)
{
    char path[256], dir[256];

    in_scratch(path, sizeof path, ".blast/x/news.journal");
    in_scratch(dir, sizeof dir, ".blast/x");
    umask(0);
    cr_assert_eq(private_mkdir_parents(path), 0);
    cr_expect_eq(mode_of(dir), 0700);
    cr_expect_eq(access(path, F_OK), -1, "the file itself is not made");
}

Test(private, existing_directory_keeps_its_mode, .fini = scratch_remove)
{
    char path[256];

    in_scratch(path, sizeof path, "shared");
    umask(0);
    cr_assert_eq(mkdir(path, 0755), 0);
    cr_assert_eq(private_mkdir(path, true), 0);
    cr_expect_eq(mode_of(path), 0755);
}

Test(private, a_file_in_the_way, .fini = scratch_remove)
{
    char path[256], below[256];
    int fd;

    in_scratch(path, sizeof path, "plain");
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    close(fd);
    in_scratch(below, sizeof below, "plain/dir");
    cr_expect_eq(private_mkdir(path, false), -1);
    cr_expect_eq(errno, ENOTDIR);
    cr_expect_eq(private_mkdir(below, true), -1);
}

Test(private, exposed, .fini = scratch_remove)
{
    char f[256], d[256], missing[256];
    mode_t m = 0;
    static const struct {
        mode_t mode;
        int file, dir;
    } cases[] = {
        {0600, 0, 0}, {0400, 0, 0}, {0644, 1, 1}, {0640, 1, 1}, {0604, 1, 1},
        {0620, 1, 1}, {0602, 1, 1}, {0700, 0, 0}, {0711, 0, 1}, {0710, 0, 0},
        {0701, 0, 1}, {0755, 1, 1}, {0750, 1, 1},
    };
    size_t i;
    int fd;

    in_scratch(f, sizeof f, "file");
    in_scratch(d, sizeof d, "dir");
    in_scratch(missing, sizeof missing, "missing");
    fd = open(f, O_WRONLY | O_CREAT, 0600);
    close(fd);
    cr_assert_eq(mkdir(d, 0700), 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(chmod(f, cases[i].mode), 0);
        cr_assert_eq(chmod(d, cases[i].mode), 0);
        cr_expect_eq(private_exposed(f, &m), cases[i].file, "file %o", cases[i].mode);
        cr_expect_eq(private_exposed(d, &m), cases[i].dir, "dir %o", cases[i].mode);
        cr_expect_eq(m & 07777, cases[i].mode);
        cr_expect(S_ISDIR(m));
    }
    chmod(d, 0700);
    cr_expect_eq(private_exposed(missing, &m), 0);
    cr_expect_str_eq(private_exposure(S_IFREG | 0644), "readable by other users");
    cr_expect_str_eq(private_exposure(S_IFREG | 0622), "writable by other users");
    cr_expect_str_eq(private_exposure(S_IFDIR | 0711), "searchable by other users");
}

/* What is in dir besides the file named keep: nothing, once a private_file is done. */
static int others_in(const char *dir, const char *keep)
{
    char cmd[512];
    FILE *p;
    int n = 0;
    char line[256];

    snprintf(cmd, sizeof cmd, "ls -A '%s'", dir);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, keep) != 0)
            n++;
    }
    pclose(p);
    return n;
}

static void write_whole(const char *path, mode_t mode, const char *text)
{
    struct private_file pf;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(private_file_open(&pf, path, mode, &err), 0, "%s", err.text);
    cr_assert_eq(fputs(text, pf.f) >= 0, 1);
    cr_assert_eq(private_file_commit(&pf, &err), 0, "%s", err.text);
    cr_expect_null(pf.tmp);
}

Test(private, a_file_written_whole, .fini = scratch_remove)
{
    char path[256], text[64] = "";
    FILE *f;

    in_scratch(path, sizeof path, "out.csv");
    umask(0);
    write_whole(path, PRIVATE_FILE_MODE, "row,email\r\n");
    cr_expect_eq(mode_of(path), 0600);
    /* again over an older file that others could read: replaced, private */
    cr_assert_eq(chmod(path, 0644), 0);
    write_whole(path, PRIVATE_FILE_MODE, "second\n");
    cr_expect_eq(mode_of(path), 0600);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(text, sizeof text, f));
    fclose(f);
    cr_expect_str_eq(text, "second\n");
    cr_expect_eq(others_in(scratch_dir, "out.csv"), 0, "no temporary file left");
}

Test(private, metrics_are_written_0644, .fini = scratch_remove)
{
    char path[256];

    in_scratch(path, sizeof path, "blast.prom");
    umask(077);
    write_whole(path, 0644, "blast_up 1\n");
    cr_expect_eq(mode_of(path), 0644);
}

Test(private, a_file_abandoned_leaves_nothing, .fini = scratch_remove)
{
    struct private_file pf;
    struct blast_error err;
    char path[256];

    in_scratch(path, sizeof path, "half.json");
    blast_error_clear(&err);
    cr_assert_eq(private_file_open(&pf, path, PRIVATE_FILE_MODE, &err), 0);
    fputs("{\"recipients\": [", pf.f);
    private_file_abort(&pf);
    cr_expect_eq(access(path, F_OK), -1);
    cr_expect_eq(others_in(scratch_dir, ""), 0);
    /* a directory that is not there: the error names the file */
    in_scratch(path, sizeof path, "missing/out.json");
    cr_expect_eq(private_file_open(&pf, path, PRIVATE_FILE_MODE, &err), BLAST_EIO);
    cr_expect(strstr(err.source, "missing/out.json") != NULL, "%s", err.source);
}

/* A temporary file of a fixed name (the journal's JOURNAL.compacting): a leftover that
 * others could read is replaced by a private one, and the rename leaves nothing. */
Test(private, a_file_written_whole_through_a_fixed_name, .fini = scratch_remove)
{
    struct private_file pf;
    struct blast_error err;
    char path[256], tmp[300];
    FILE *f;

    in_scratch(path, sizeof path, "j.journal");
    snprintf(tmp, sizeof tmp, "%s.compacting", path);
    umask(0);
    f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs("half of an earlier try\n", f);
    fclose(f);
    cr_assert_eq(chmod(tmp, 0644), 0);
    blast_error_clear(&err);
    cr_assert_eq(private_file_open_fixed(&pf, path, tmp, PRIVATE_FILE_MODE, "the journal", &err), 0,
                 "%s", err.text);
    cr_expect_eq(mode_of(tmp), 0600);
    cr_assert_eq(fputs("whole\n", pf.f) >= 0, 1);
    cr_assert_eq(private_file_commit(&pf, &err), 0, "%s", err.text);
    cr_expect_eq(mode_of(path), 0600);
    cr_expect_eq(others_in(scratch_dir, "j.journal"), 0, "no temporary file left");
    /* a directory in its place cannot be removed: the error names it */
    cr_assert_eq(mkdir(tmp, 0700), 0);
    cr_assert_eq(private_file_open_fixed(&pf, path, tmp, PRIVATE_FILE_MODE, "the journal", &err),
                 BLAST_EIO);
    cr_expect(strstr(err.text, "cannot remove the journal") != NULL, "%s", err.text);
    cr_expect_str_eq(err.source, tmp);
}

/* A file written whole, gzip'ed: whole (its trailer written before the rename) and private. */
Test(private, a_file_written_whole_gzipped, .fini = scratch_remove)
{
    struct private_file pf;
    struct blast_error err;
    char path[256], text[64] = "";
    gzFile gz;
    int i, n;

    in_scratch(path, sizeof path, "out.csv.gz");
    umask(0);
    cr_assert(private_wants_gzip(path));
    cr_assert(!private_wants_gzip("out.gz.csv"));
    cr_assert(!private_wants_gzip(".gz"));
    blast_error_clear(&err);
    cr_assert_eq(private_file_open(&pf, path, PRIVATE_FILE_MODE, &err), 0, "%s", err.text);
    cr_assert_eq(private_file_gzip(&pf, &err), 0, "%s", err.text);
    for (i = 0; i < 10000; i++)
        cr_assert_eq(fputs("row,email\n", pf.f) >= 0, 1);
    cr_assert_eq(private_file_commit(&pf, &err), 0, "%s", err.text);
    cr_expect_eq(mode_of(path), 0600);
    cr_expect_eq(others_in(scratch_dir, "out.csv.gz"), 0, "no temporary file left");
    gz = gzopen(path, "rb");
    cr_assert_not_null(gz);
    for (i = 0; (n = gzread(gz, text, 10)) == 10; i++)
        cr_assert_eq(memcmp(text, "row,email\n", 10), 0);
    cr_expect_eq(i, 10000);
    cr_expect_eq(n, 0, "the stream ends where it should");
    gzclose(gz);

    /* abandoned: nothing left */
    cr_assert_eq(private_file_open(&pf, path, PRIVATE_FILE_MODE, &err), 0, "%s", err.text);
    cr_assert_eq(private_file_gzip(&pf, &err), 0, "%s", err.text);
    fputs("half", pf.f);
    private_file_abort(&pf);
    cr_expect_eq(others_in(scratch_dir, "out.csv.gz"), 0, "no temporary file left");
}
