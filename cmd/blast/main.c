/*
 * blast - the command line: dispatch to a subcommand, help and version.
 */
#include "cli.h"

#include <curl/curl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: blast COMMAND [OPTIONS]\n"
    "\n"
    "Send personalised mail campaigns through authenticated SMTP relays.\n"
    "\n"
    "commands:\n"
    "  send CAMPAIGN.yml    render and deliver the campaign, write its JSON report\n"
    "  check CAMPAIGN.yml   validate the campaign, its list and templates; send nothing\n"
    "  preview CAMPAIGN.yml write one recipient's message (--row N or --email ADDRESS)\n"
    "  report REPORT.json   print a delivery report (text, json, csv, html, prometheus),\n"
    "                       or merge the reports of a campaign's shards\n"
    "  suppress DATABASE    list, export, add, remove or import suppression entries\n"
    "  bounces CAMPAIGN.yml read the bounce mailbox: bounces, complaints, unsubscribes\n"
    "  journal compact CAMPAIGN.yml\n"
    "                       shrink the campaign's journals to what their rows need\n"
    "  prune PATH...        remove old campaigns' journals, reports and dry-run output\n"
    "  version              print the versions of blast and of its libraries\n"
    "  help [COMMAND]       this text, or a command's options\n"
    "\n"
    "options:\n"
    "  -h, --help           this text (as 'blast help')\n"
    "  --version            the version (as 'blast version')\n"
    "\n"
    "exit codes: 0 all delivered (or skipped by rule), 1 some failed or deferred,\n"
    "2 usage or campaign error (nothing sent), 3 interrupted, 4 no relay usable,\n"
    "5 stopped by the circuit breaker (the rest deferred).\n"
    "The campaign file: blast-campaign(5); the report and the journal: blast-report(5).\n";

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"send", cmd_send, cli_send_usage},
    {"check", cmd_check, cli_check_usage},
    {"preview", cmd_preview, cli_preview_usage},
    {"report", cmd_report, cli_report_usage},
    {"suppress", cmd_suppress, cli_suppress_usage},
    {"bounces", cmd_bounces, cli_bounces_usage},
    {"journal", cmd_journal, cli_journal_usage},
    {"prune", cmd_prune, cli_prune_usage},
    {"version", cmd_version, cli_version_usage},
};

static int help(const char *topic)
{
    size_t i;

    /* `blast help --help` is the help itself, not a command of that name */
    if (topic == NULL || strcmp(topic, "--help") == 0 || strcmp(topic, "-h") == 0) {
        fputs(usage, stdout);
        return BLAST_EXIT_OK;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(topic, commands[i].name) == 0) {
            fputs(commands[i].usage, stdout);
            return BLAST_EXIT_OK;
        }
    cli_fail("no such command '%s' (try 'blast help')", topic);
    return BLAST_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    size_t i;

    /* a server closing the connection must be an error we report, not a silent death;
     * a file over its size limit, a write error the journal reports (EFBIG) */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
#ifdef __GLIBC__
    /*
     * Large tables (the set of addresses seen while a list is checked, a journal's
     * index) in mappings of their own, given back when freed. glibc would raise its
     * threshold after the first such free and take the next ones from the heap,
     * whose freed middle stays resident: a shard of a 10,000,000-row list then kept
     * the check's 32 MB set in memory through the whole send.
     */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
#endif
    if (argc < 2) {
        fputs(usage, stderr);
        return BLAST_EXIT_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0)
        return help(argc > 2 ? argv[2] : NULL);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            int code;
            /* once, before any thread starts: libcurl is not initialised anywhere else
             * (send's webhook, core/notify.c) */
            if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                cli_fail("cannot initialise libcurl");
                return BLAST_EXIT_USAGE;
            }
            code = commands[i].run(argc - 1, argv + 1);
            curl_global_cleanup();
            return code;
        }
    cli_fail("unknown command '%s' (try 'blast help')", argv[1]);
    return BLAST_EXIT_USAGE;
}
