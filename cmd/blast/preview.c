/*
 * preview - `blast preview CAMPAIGN.yml [--row N | --email ADDRESS] [-o FILE]`:
 * one recipient's message, exactly as send would hand it to the relay (before
 * SMTP's dot-stuffing), on standard output or in FILE. Sends nothing.
 */
#include "cli.h"
#include "prepare.h"
#include "../../core/private.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_preview_usage[] =
    "usage: blast preview CAMPAIGN.yml [--row N | --email ADDRESS] [-o FILE]\n"
    "\n"
    "Write one recipient's message (headers and MIME body, CRLF line ends) to standard\n"
    "output or FILE. Sends nothing.\n"
    "\n"
    "options:\n"
    "  --row N            the Nth data row of the list (1 = the first row after the\n"
    "                     header; the default)\n"
    "  --email ADDRESS    the first row with this address\n"
    "  -o, --output FILE  write to FILE instead of standard output\n"
    "  -h, --help         this text\n";

struct preview_opts {
    const char *campaign;
    const char *email;
    const char *output;
    long row;
};

static int parse_args(int argc, char **argv, struct preview_opts *o)
{
    static const struct option longopts[] = {
        {"row", required_argument, NULL, 'r'},
        {"email", required_argument, NULL, 'e'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (cli_positive("preview", "--row", optarg, &o->row) < 0)
                return -1;
            break;
        case 'e':
            o->email = optarg;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 'h':
            fputs(cli_preview_usage, stdout);
            return 1;
        default:
            cli_bad_option("preview", argv, optopt);
            return -1;
        }
    }
    if (o->row > 0 && o->email != NULL) {
        cli_fail("preview: --row and --email choose the recipient: give one of them");
        return -1;
    }
    if (o->row == 0 && o->email == NULL)
        o->row = 1;
    return cli_one_operand("preview", argc, argv, &o->campaign);
}

/* Find the row: by number, or the first whose address is the same recipient. */
static int find_row(struct prepared *p, const struct preview_opts *o, struct recipients_row *row,
                    struct screen_result *who, const struct address *want, struct blast_error *err)
{
    int rc;

    while ((rc = recipients_next(p->list, row, err)) == 1) {
        if ((rc = screen_row(p->screen, row, who, err)) < 0)
            return rc;
        if (o->row > 0 && (long)row->row == o->row)
            return 1;
        if (want != NULL && who->verdict != SCREEN_INVALID &&
            strcmp(who->to.envelope, want->envelope) == 0)
            return 1;
    }
    if (rc < 0)
        return rc;
    if (o->row > 0)
        return blast_error_set(err, BLAST_EINVAL, recipients_path(p->list), 0, 0,
                               "there is no row %ld (the list has %zu rows)", o->row, row->row);
    return blast_error_set(err, BLAST_EINVAL, recipients_path(p->list), 0, 0,
                           "no row has the address %s", o->email);
}

int cmd_preview(int argc, char **argv)
{
    struct preview_opts o;
    struct prepared p;
    struct blast_error err;
    struct recipients_row row;
    struct screen_result who;
    struct compose_result msg;
    struct address want;
    struct log lg;
    FILE *f = stdout;
    int code = BLAST_EXIT_USAGE, rc;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? BLAST_EXIT_OK : BLAST_EXIT_USAGE;
    memset(&want, 0, sizeof want);
    memset(&row, 0, sizeof row);
    screen_result_init(&who);
    compose_result_init(&msg);
    blast_error_clear(&err);
    cli_log_init(&lg, cli_log_level(false, 0));
    if (o.email != NULL && address_parse(o.email, &want, &err) < 0) {
        cli_fail("preview: --email: %s", err.text);
        goto out_nop;
    }
    if (prepare_open(o.campaign, &p, &lg, &err) < 0 ||
        find_row(&p, &o, &row, &who, o.email != NULL ? &want : NULL, &err) < 0)
        goto fail;
    if (who.verdict == SCREEN_INVALID) {
        rc = blast_error_set(&err, BLAST_EINVAL, recipients_path(p.list), (int)row.line, 0,
                             "row %zu: %s", row.row, who.reason);
        goto fail;
    }
    if (who.verdict != SCREEN_OK)
        cli_fail("note: row %zu is %s (%s): send skips it", row.row,
                 screen_verdict_name(who.verdict), who.reason);
    if (compose_row(p.cp, &row, &who.to, &msg, &err) < 0)
        goto fail;
    if (msg.invalid) {
        blast_error_set(&err, BLAST_EINVAL, recipients_path(p.list), (int)row.line, 0,
                        "row %zu: %s", row.row, msg.reason);
        goto fail;
    }
    if (o.output != NULL) {
        /* one recipient's message: the owner's only, like the dry run's (docs/files.md) */
        int fd = private_open(o.output, O_WRONLY | O_TRUNC);
        if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
            blast_error_set(&err, BLAST_EIO, o.output, 0, 0, "cannot write: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail;
        }
    }
    if (fwrite(msg.message.data, 1, msg.message.len, f) != msg.message.len || fflush(f) != 0 ||
        (f != stdout && fclose(f) != 0)) {
        if (f != stdout)
            f = NULL;
        blast_error_set(&err, BLAST_EIO, o.output != NULL ? o.output : "standard output", 0, 0,
                        "cannot write: %s", strerror(errno));
        goto fail;
    }
    code = BLAST_EXIT_OK;
    goto out;
fail:
    cli_error(&err);
out:
    prepare_close(&p);
out_nop:
    address_free(&want);
    screen_result_free(&who);
    compose_result_free(&msg);
    return code;
}
