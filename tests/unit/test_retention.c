/*
 * Unit tests for core/retention: which names are a journal's, a report's and a dry-run
 * directory's (shards, locks, compaction leftovers, .gz twins, temporary files, and
 * names that only look alike); the files found beside a journal and a report, symbolic
 * links listed and not followed; a dry-run directory's entries; the marker written
 * 0600 and read back, and markers that are not blast's.
 */
#include "../../core/retention.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- names --------------------------------------------------------------------------- */

Test(retention, journal_names)
{
    static const struct {
        const char *name;
        enum retention_role role;
    } cases[] = {
        {"news.journal", RETENTION_DATA},
        {"news.journal.lock", RETENTION_LOCK},
        {"news.journal.compacting", RETENTION_DATA},
        {"news.journal.seeds", RETENTION_DATA},
        {"news.shard-0-of-4.journal", RETENTION_DATA},
        {"news.shard-0-of-4.journal.seeds", RETENTION_DATA},
        {"news.shard-3-of-4.journal.lock", RETENTION_LOCK},
        {"news.shard-12-of-10000.journal.compacting", RETENTION_DATA},
        {"news.shard-4-of-4.journal", RETENTION_NOT_OURS},     /* index past the count */
        {"news.shard-0-of-1.journal", RETENTION_NOT_OURS},     /* one shard is none */
        {"news.shard-01-of-4.journal", RETENTION_NOT_OURS},    /* not as blast writes it */
        {"news.shard-0-of-10001.journal", RETENTION_NOT_OURS}, /* past SHARD_MAX */
        {"news.shard-x-of-4.journal", RETENTION_NOT_OURS},
        {"news.shard-0-of-4.json", RETENTION_NOT_OURS},
        {"news.journal.shard-0-of-4", RETENTION_NOT_OURS},
        {"news-2.journal", RETENTION_NOT_OURS},
        {"news.journal.bak", RETENTION_NOT_OURS},
        {"news.journal.lock.lock", RETENTION_NOT_OURS},
        {"xnews.journal", RETENTION_NOT_OURS},
        {"news.journal.tmp.abc123", RETENTION_NOT_OURS},
        {"news.json", RETENTION_NOT_OURS},
        {"", RETENTION_NOT_OURS},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(retention_journal_role("news.journal", cases[i].name), cases[i].role, "%s",
                     cases[i].name);
    /* a journal's name without an extension takes the shard's part at its end */
    cr_expect_eq(retention_journal_role("state", "state.shard-1-of-2"), RETENTION_DATA);
    cr_expect_eq(retention_journal_role("state", "state.shard-1-of-2.lock"), RETENTION_LOCK);
    cr_expect_eq(retention_journal_role("state", "state.lock"), RETENTION_LOCK);
    cr_expect_eq(retention_journal_role("", "news.journal"), RETENTION_NOT_OURS);
}

Test(retention, report_names)
{
    static const struct {
        const char *name;
        bool ours;
    } cases[] = {
        {"news.json", true},
        {"news.json.gz", true},
        {"news.json.tmp.Ab12xZ", true},
        {"news.json.gz.tmp.000000", true},
        {"news.shard-1-of-4.json", true},
        {"news.shard-1-of-4.json.gz", true},
        {"news.json.shard-1-of-4.gz", true}, /* report: news.json.gz, sharded */
        {"news.shard-1-of-4.json.tmp.qwerty", true},
        {"news.json.tmp.abc12", false},   /* five, not six */
        {"news.json.tmp.abc1234", false}, /* seven */
        {"news.json.tmp.abc-12", false},
        {"news.json.tmp.", false},
        {"news.json.bak", false},
        {"news.json.gz.gz", false},
        {"news.csv", false},
        {"news.html", false},
        {"news.journal", false},
        {"other.json", false},
        {"news.shard-4-of-4.json", false},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(retention_report_role("news.json", cases[i].name),
                     cases[i].ours ? RETENTION_DATA : RETENTION_NOT_OURS, "%s", cases[i].name);
    /* a report that is .gz already has no twin */
    cr_expect_eq(retention_report_role("news.json.gz", "news.json.gz"), RETENTION_DATA);
    cr_expect_eq(retention_report_role("news.json.gz", "news.json.shard-0-of-2.gz"),
                 RETENTION_DATA);
    cr_expect_eq(retention_report_role("news.json.gz", "news.json.gz.gz"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_report_role("news.json.gz", "news.json"), RETENTION_NOT_OURS);
}

Test(retention, dry_run_names)
{
    cr_expect_eq(retention_dry_run_role(".blast-dry-run"), RETENTION_MARK);
    cr_expect_eq(retention_dry_run_role(".blast-dry-run.tmp.a1B2c3"), RETENTION_DATA);
    cr_expect_eq(retention_dry_run_role("1.eml"), RETENTION_DATA);
    cr_expect_eq(retention_dry_run_role("1234567.eml"), RETENTION_DATA);
    cr_expect_eq(retention_dry_run_role("0.eml"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_dry_run_role("01.eml"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_dry_run_role(".eml"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_dry_run_role("1a.eml"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_dry_run_role("1.eml.bak"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_dry_run_role("notes.txt"), RETENTION_NOT_OURS);
    cr_expect_eq(retention_dry_run_role(".blast-dry-run.bak"), RETENTION_NOT_OURS);
}

/* ---- listing ------------------------------------------------------------------------- */

static void touch(const char *dir, const char *name)
{
    char path[512];

    scratch_write_file(dir, name, "x", path, sizeof path);
}

static void sub(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", scratch_dir, name);
    cr_assert_eq(mkdir(out, 0700), 0, "%s: %s", out, strerror(errno));
}

static const struct retention_file *find(const struct retention_list *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->files[i].path, path) == 0)
            return &l->files[i];
    return NULL;
}

Test(retention, campaign_files, .fini = scratch_remove)
{
    struct retention_list l = {0};
    struct blast_error err;
    char journals[256], reports[256], journal[300], report[300], path[400];
    const struct retention_file *f;

    scratch_make();
    sub(".blast", journals, sizeof journals);
    sub("reports", reports, sizeof reports);
    touch(journals, "news.journal");
    touch(journals, "news.journal.lock");
    touch(journals, "news.shard-1-of-2.journal");
    touch(journals, "news.shard-1-of-2.journal.lock");
    touch(journals, "news.journal.compacting");
    touch(journals, "news.journal.seeds");
    touch(journals, "other.journal");
    touch(reports, "news.json.gz");
    touch(reports, "news.json.tmp.ABCdef");
    touch(reports, "news.csv");
    touch(reports, "other.json");
    snprintf(path, sizeof path, "%s/news.json", reports);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    snprintf(journal, sizeof journal, "%s/news.journal", journals);
    snprintf(report, sizeof report, "%s/news.json", reports);
    blast_error_clear(&err);
    cr_assert_eq(retention_campaign_files(journal, report, &l, &err), 0, "%s", err.text);
    cr_expect_eq(l.n, 9, "%zu files", l.n);
    cr_assert_not_null(f = find(&l, journal));
    cr_expect_eq(f->role, RETENTION_DATA);
    cr_expect_eq(f->keep, RETENTION_REMOVABLE);
    cr_expect_eq(f->size, 1);
    snprintf(path, sizeof path, "%s.lock", journal);
    cr_assert_not_null(f = find(&l, path));
    cr_expect_eq(f->role, RETENTION_LOCK);
    snprintf(path, sizeof path, "%s/news.shard-1-of-2.journal.lock", journals);
    cr_assert_not_null(f = find(&l, path));
    cr_expect_eq(f->role, RETENTION_LOCK);
    /* the link is listed as a link, not as what it points to */
    cr_assert_not_null(f = find(&l, report));
    cr_expect_eq(f->keep, RETENTION_KEEP_LINK);
    snprintf(path, sizeof path, "%s/news.json.tmp.ABCdef", reports);
    cr_expect_not_null(find(&l, path));
    snprintf(path, sizeof path, "%s/news.csv", reports);
    cr_expect_null(find(&l, path));
    /* asked again, nothing is listed twice */
    cr_assert_eq(retention_campaign_files(journal, report, &l, &err), 0);
    cr_expect_eq(l.n, 9);
    retention_list_free(&l);
    cr_expect_eq(l.n, 0);
}

Test(retention, missing_directories_are_no_files, .fini = scratch_remove)
{
    struct retention_list l = {0};
    struct blast_error err;
    char journal[256];

    scratch_make();
    snprintf(journal, sizeof journal, "%s/.blast/news.journal", scratch_dir);
    blast_error_clear(&err);
    cr_assert_eq(retention_campaign_files(journal, NULL, &l, &err), 0);
    cr_expect_eq(l.n, 0);
    cr_assert_eq(retention_campaign_files(NULL, NULL, &l, &err), 0);
}

Test(retention, dry_run_directory, .fini = scratch_remove)
{
    struct retention_list l = {0};
    struct blast_error err;
    char out[256], path[400], inner[300];
    const struct retention_file *f;

    scratch_make();
    sub("out", out, sizeof out);
    touch(out, "1.eml");
    touch(out, "2.eml");
    touch(out, ".blast-dry-run");
    touch(out, "notes.txt");
    snprintf(path, sizeof path, "%s/3.eml", out);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    snprintf(inner, sizeof inner, "%s/4.eml", out);
    cr_assert_eq(mkdir(inner, 0700), 0);
    touch(inner, "secret");
    blast_error_clear(&err);
    cr_assert_eq(retention_dry_run_files(out, &l, &err), 0, "%s", err.text);
    cr_expect_eq(l.n, 6, "%zu entries", l.n); /* not the file inside 4.eml/ */
    snprintf(path, sizeof path, "%s/1.eml", out);
    cr_assert_not_null(f = find(&l, path));
    cr_expect_eq(f->keep, RETENTION_REMOVABLE);
    snprintf(path, sizeof path, "%s/.blast-dry-run", out);
    cr_assert_not_null(f = find(&l, path));
    cr_expect_eq(f->role, RETENTION_MARK);
    snprintf(path, sizeof path, "%s/notes.txt", out);
    cr_assert_not_null(f = find(&l, path));
    cr_expect_eq(f->keep, RETENTION_KEEP_FOREIGN);
    snprintf(path, sizeof path, "%s/3.eml", out);
    cr_assert_not_null(f = find(&l, path));
    cr_expect_eq(f->keep, RETENTION_KEEP_LINK);
    cr_assert_not_null(f = find(&l, inner));
    cr_expect_eq(f->keep, RETENTION_KEEP_OTHER);
    retention_list_free(&l);
    /* one that is not there is an error naming it */
    snprintf(path, sizeof path, "%s/missing", scratch_dir);
    cr_expect_eq(retention_dry_run_files(path, &l, &err), BLAST_EIO);
    cr_expect_str_eq(err.source, path);
}

/* ---- the marker ---------------------------------------------------------------------- */

Test(retention, marker_written_private_and_read_back, .fini = scratch_remove)
{
    struct retention_mark m;
    struct blast_error err;
    char out[256], campaign[300], path[400], cwd[256];
    struct stat st;

    scratch_make();
    sub("out", out, sizeof out);
    touch(scratch_dir, "news.yml");
    snprintf(campaign, sizeof campaign, "%s/news.yml", scratch_dir);
    blast_error_clear(&err);
    cr_assert_eq(retention_mark_read(out, &m, &err), 0);
    umask(0);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    /* a relative path is made absolute */
    cr_assert_eq(chdir(scratch_dir), 0);
    cr_assert_eq(retention_mark_write("out", "news", "news.yml", &err), 0, "%s", err.text);
    cr_assert_eq(chdir(cwd), 0);
    snprintf(path, sizeof path, "%s/.blast-dry-run", out);
    cr_assert_eq(lstat(path, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0600);
    cr_assert_eq(retention_mark_read(out, &m, &err), 1, "%s", err.text);
    cr_expect_str_eq(m.campaign, "news");
    cr_expect_str_eq(m.campaign_file, campaign);
    cr_expect_eq(strlen(m.time), 24, "%s", m.time);
    retention_mark_free(&m);
    /* written again over the first, nothing left beside it */
    cr_assert_eq(retention_mark_write(out, "news", campaign, &err), 0, "%s", err.text);
    struct retention_list l = {0};
    cr_assert_eq(retention_dry_run_files(out, &l, &err), 0);
    cr_expect_eq(l.n, 1);
    retention_list_free(&l);
}

Test(retention, markers_that_are_not_blasts, .fini = scratch_remove)
{
    static const char *const bad[] = {
        "", "not json", "[]", "{\"campaign\": \"x\"}",
        "{\"campaign\": 1, \"campaign_file\": \"/a\", \"time\": \"t\"}"};
    struct retention_mark m;
    struct blast_error err;
    char out[256], path[400];

    scratch_make();
    sub("out", out, sizeof out);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        scratch_write_file(out, ".blast-dry-run", bad[i], path, sizeof path);
        blast_error_clear(&err);
        cr_expect_eq(retention_mark_read(out, &m, &err), BLAST_EINVAL, "'%s'", bad[i]);
        cr_expect_str_eq(err.source, path);
        cr_expect_null(m.campaign);
    }
    /* a link is not followed, even to a good marker */
    cr_assert_eq(unlink(path), 0);
    scratch_write_file(scratch_dir, "elsewhere",
                       "{\"campaign\": \"x\", \"campaign_file\": \"/a\", \"time\": \"t\"}", path,
                       sizeof path);
    snprintf(path, sizeof path, "%s/.blast-dry-run", out);
    cr_assert_eq(symlink("../elsewhere", path), 0);
    blast_error_clear(&err);
    cr_expect_eq(retention_mark_read(out, &m, &err), BLAST_EINVAL);
    cr_expect(strstr(err.text, "symbolic link") != NULL, "%s", err.text);
    /* a directory of that name is not one either */
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    blast_error_clear(&err);
    cr_expect_eq(retention_mark_read(out, &m, &err), BLAST_EINVAL);
}
