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
#include <sys/stat.h>
#include <unistd.h>

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
