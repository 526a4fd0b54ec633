/*
 * test_fingerprint - the campaign's fingerprint for the journal: its value for a fixed
 * campaign, pinned (journals written before hold it and must keep resuming), and the
 * further inputs of a run (a report's label, name and contents) that change it.
 */
#include "../../core/fingerprint.h"
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The inputs of a run beyond the campaign's own files count too. */
Test(fingerprint, more_inputs_count, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[512], list[512], prev[512], base[65], same[65], one[65], other_label[65], changed[65];
    struct fingerprint_input extra = {"exclude-report", NULL};
    struct blast_error err;
    struct campaign *c;

    scratch_write_file(dir, "list.csv", "email\na@example.com\n", list, sizeof list);
    scratch_write_file(dir, "body.txt", "Hi\n", path, sizeof path);
    scratch_write_file(dir, "prev.json", "{\"schema_version\":1,\"recipients\":[]}", prev,
                       sizeof prev);
    scratch_write_file(
        dir, "c.yml",
        "name: h\nfrom: news@acme.example\nsubject: Hi\nrecipients: {path: list.csv}\n"
        "body: {text: body.txt}\nrelays: [{host: 127.0.0.1, tls: none}]\n",
        path, sizeof path);
    c = load_ok(path);
    blast_error_clear(&err);
    cr_assert_eq(fingerprint_campaign(c, base, &err), 0, "%s", err.text);
    cr_assert_eq(fingerprint_campaign_with(c, NULL, 0, same, &err), 0, "%s", err.text);
    cr_assert_str_eq(same, base, "no more inputs: the hash journals already hold");
    extra.path = prev;
    cr_assert_eq(fingerprint_campaign_with(c, &extra, 1, one, &err), 0, "%s", err.text);
    cr_assert_str_neq(one, base);
    extra.label = "suppress-from";
    cr_assert_eq(fingerprint_campaign_with(c, &extra, 1, other_label, &err), 0, "%s", err.text);
    cr_assert_str_neq(other_label, one, "the role of a file counts");
    scratch_write_file(dir, "prev.json", "{\"schema_version\":1,\"recipients\":[{}]}", prev,
                       sizeof prev);
    cr_assert_eq(fingerprint_campaign_with(c, &extra, 1, changed, &err), 0, "%s", err.text);
    cr_assert_str_neq(changed, other_label, "the contents count");
    extra.path = "/nonexistent/prev.json";
    cr_assert_eq(fingerprint_campaign_with(c, &extra, 1, changed, &err), BLAST_EIO);
    cr_assert_str_eq(err.source, "/nonexistent/prev.json");
    campaign_free(c);
}

/*
 * The fingerprint of a fixed campaign, pinned: a journal written before holds this
 * digest, and must still resume. The files are written in the scratch directory, which
 * is made the current one so that every path the hash covers (their names count) is
 * relative and the same on every run. Every kind of input is there, so the order in
 * which they are fed is pinned too.
 */
Test(fingerprint, a_fixed_campaign_is_pinned, .fini = scratch_remove)
{
    static const char *const files[][2] = {
        {"list.csv", "email,name\na@example.com,A\nb@example.com,B\n"},
        {"body.txt", "Hello {{name}}\n"},
        {"body.html", "<p>Hello {{name}}</p>\n"},
        {"stop.txt", "c@example.com\n"},
        {"terms.pdf", "%PDF-1.4 not really\n"},
        {"logo.png", "\x89PNG not really\n"},
        {"prev.json", "{\"schema_version\":1,\"recipients\":[]}"},
        {"campaign.yml", "name: pinned\n"
                         "from: news@acme.example\n"
                         "subject: Hi\n"
                         "recipients: {path: list.csv}\n"
                         "suppression: stop.txt\n"
                         "body: {text: body.txt, html: body.html}\n"
                         "attachments: [terms.pdf]\n"
                         "inline: [{path: logo.png, cid: logo}]\n"
                         "relays: [{host: 127.0.0.1, tls: none}]\n"},
    };
    struct fingerprint_input extra = {"exclude-report", "prev.json"};
    char cwd[4096], path[512], plain[65], with[65];
    struct blast_error err;
    struct campaign *c;
    size_t i;

    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    scratch_make();
    for (i = 0; i < sizeof files / sizeof files[0]; i++)
        scratch_write_file(scratch_dir, files[i][0], files[i][1], path, sizeof path);
    cr_assert_eq(chdir(scratch_dir), 0, "%s", strerror(errno));
    c = load_ok("campaign.yml");
    blast_error_clear(&err);
    cr_assert_eq(fingerprint_campaign(c, plain, &err), 0, "%s", err.text);
    cr_assert_eq(fingerprint_campaign_with(c, &extra, 1, with, &err), 0, "%s", err.text);
    campaign_free(c);
    cr_assert_eq(chdir(cwd), 0, "%s", strerror(errno));
    cr_assert_str_eq(plain, "779b0a853ec461f0289fe21f4eeb0c57ed354874eea5c1d6e46315d2dbc9cfe0");
    cr_assert_str_eq(with, "58601368682a7d68afab32ea789390846d84fd75591834156d556cf9e082d407");
}

/* A campaign input that cannot be read is an error naming it, and leaves no value. */
Test(fingerprint, an_unreadable_input_is_an_io_error, .fini = scratch_remove)
{
    const char *dir = scratch_make();
    char path[512], body[512], out[FINGERPRINT_HEX_SIZE];
    struct blast_error err;
    struct campaign *c;

    scratch_write_file(dir, "list.csv", "email\na@example.com\n", path, sizeof path);
    scratch_write_file(
        dir, "c.yml",
        "name: h\nfrom: news@acme.example\nsubject: Hi\nrecipients: {path: list.csv}\n"
        "body: {text: body.txt}\nrelays: [{host: 127.0.0.1, tls: none}]\n",
        path, sizeof path);
    snprintf(body, sizeof body, "%s/body.txt", dir);
    c = load_ok(path);
    blast_error_clear(&err);
    memset(out, 'x', sizeof out);
    cr_assert_eq(fingerprint_campaign(c, out, &err), BLAST_EIO);
    cr_assert_str_eq(out, "");
    cr_assert_str_eq(err.source, body);
    cr_assert_not_null(strstr(err.text, "cannot read"), "%s", err.text);
    campaign_free(c);
}

/*
 * The spelling of the campaign's path does not count: a bare name in its directory,
 * "./", an absolute path and a path from the parent give one fingerprint (a shard
 * rerun by a job engine with an absolute path resumes; shards' reports merge). The
 * earlier digest, by the paths as resolved, is still there for the journals that
 * hold it: for a bare name it was the same value.
 */
Test(fingerprint, the_path_to_the_campaign_does_not_count, .fini = scratch_remove)
{
    char cwd[4096], path[512], abs[4096], dir[4096], parent[4096];
    char base[65], legacy[65], fp[65], old[65];
    const char *spellings[3];
    struct blast_error err;
    struct campaign *c;

    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    scratch_make();
    scratch_write_file(scratch_dir, "list.csv", "email\na@example.com\n", path, sizeof path);
    scratch_write_file(scratch_dir, "body.txt", "Hello\n", path, sizeof path);
    scratch_write_file(scratch_dir, "campaign.yml",
                       "name: spelled\nfrom: news@acme.example\nsubject: Hi\n"
                       "recipients: {path: list.csv}\nbody: {text: body.txt}\n"
                       "relays: [{host: 127.0.0.1, tls: none}]\n",
                       path, sizeof path);
    cr_assert_eq(chdir(scratch_dir), 0, "%s", strerror(errno));
    c = load_ok("campaign.yml");
    blast_error_clear(&err);
    cr_assert_eq(fingerprint_campaign_both(c, NULL, 0, base, legacy, &err), 0, "%s", err.text);
    cr_assert_str_eq(base, legacy, "a bare name: the same bytes as before");
    campaign_free(c);

    cr_assert_not_null(realpath("campaign.yml", abs));
    /* from the scratch directory's parent: "blast-unit-XXXXXX/campaign.yml" */
    snprintf(dir, sizeof dir, "%s", abs);
    *strrchr(dir, '/') = '\0';
    snprintf(parent, sizeof parent, "%s/campaign.yml", strrchr(dir, '/') + 1);
    spellings[0] = "./campaign.yml";
    spellings[1] = abs;
    spellings[2] = parent;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(chdir(scratch_dir), 0);
        if (i == 2)
            cr_assert_eq(chdir(".."), 0);
        c = load_ok(spellings[i]);
        cr_assert_eq(fingerprint_campaign_both(c, NULL, 0, fp, old, &err), 0, "%s", err.text);
        cr_assert_str_eq(fp, base, "%s", spellings[i]);
        cr_assert_str_neq(old, base, "%s: the earlier digest named the paths as given",
                          spellings[i]);
        campaign_free(c);
    }
    cr_assert_eq(chdir(cwd), 0, "%s", strerror(errno));
}
