/*
 * scratch - the running unit test's directory under /tmp. See scratch.h.
 */
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char scratch_dir[64];

const char *scratch_make(void)
{
    snprintf(scratch_dir, sizeof scratch_dir, "/tmp/blast-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(scratch_dir), "mkdtemp: %s", strerror(errno));
    return scratch_dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void scratch_remove(void)
{
    if (scratch_dir[0] != '\0')
        nftw(scratch_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    scratch_dir[0] = '\0';
}

void scratch_write_file(const char *dir, const char *name, const char *text, char *out, size_t size)
{
    FILE *f;

    snprintf(out, size, "%s/%s", dir, name);
    f = fopen(out, "wb");
    cr_assert_not_null(f, "%s: %s", out, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
}
