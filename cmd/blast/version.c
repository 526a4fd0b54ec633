/*
 * version - `blast version` (and `blast --version`): blast's version, then each
 * library blast links with, the version its headers had when blast was built and
 * the one the running process loaded. The two differ after a library was upgraded
 * under an installed blast (a security update of OpenSSL or libcurl, say): a bug
 * report that quotes this output says which code ran.
 */
#include "cli.h"

#include <ares.h>
#include <csv.h>
#include <curl/curl.h>
#include <getopt.h>
#include <gmime/gmime.h>
#include <hiredis/hiredis.h>
#include <idn2.h>
#include <jansson.h>
#include <libpsl.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#ifndef BLAST_VERSION
#define BLAST_VERSION "unknown"
#endif

const char cli_version_usage[] =
    "usage: blast version\n"
    "       blast --version\n"
    "\n"
    "Print blast's version on the first line, then one line for each library blast\n"
    "links with: its name, the version blast was built with and the version it runs\n"
    "with ('-' where the library does not say).\n"
    "\n"
    "options:\n"
    "  -h, --help   this text\n";

/* What the library reports at run time, or "-" for a library that cannot say. */
static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static void line(const char *name, const char *built, const char *running)
{
    printf("%-10s %-12s %s\n", name, or_dash(built), or_dash(running));
}

static void print_versions(void)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    char gmime_built[32], gmime_running[32], glib_built[32], glib_running[32], csv[32], hiredis[32],
        psl[32];
    const char *psl_full = psl_get_version();

    /* these give numbers, not strings (GMime's and GLib's as unsigned constants) */
    snprintf(gmime_built, sizeof gmime_built, "%u.%u.%u", (unsigned)GMIME_MAJOR_VERSION,
             (unsigned)GMIME_MINOR_VERSION, (unsigned)GMIME_MICRO_VERSION);
    snprintf(gmime_running, sizeof gmime_running, "%u.%u.%u", gmime_major_version,
             gmime_minor_version, gmime_micro_version);
    snprintf(glib_built, sizeof glib_built, "%u.%u.%u", (unsigned)GLIB_MAJOR_VERSION,
             (unsigned)GLIB_MINOR_VERSION, (unsigned)GLIB_MICRO_VERSION);
    snprintf(glib_running, sizeof glib_running, "%u.%u.%u", glib_major_version, glib_minor_version,
             glib_micro_version);
    snprintf(csv, sizeof csv, "%d.%d.%d", CSV_MAJOR, CSV_MINOR, CSV_RELEASE);
    snprintf(hiredis, sizeof hiredis, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    /* libpsl adds the IDN library it was built with: "0.21.2 (+libidn2/2.3.3)" */
    snprintf(psl, sizeof psl, "%.*s", psl_full != NULL ? (int)strcspn(psl_full, " ") : 0,
             psl_full != NULL ? psl_full : "");

    printf("blast %s\n", BLAST_VERSION);
    printf("%-10s %-12s %s\n", "library", "built with", "running with");
    line("OpenSSL", OPENSSL_VERSION_STR, OpenSSL_version(OPENSSL_VERSION_STRING));
    line("libcurl", LIBCURL_VERSION, curl != NULL ? curl->version : NULL);
    line("jansson", JANSSON_VERSION, jansson_version_str());
    /* libyaml's header carries no version: only the library can say */
    line("libyaml", NULL, yaml_get_version_string());
    /* libcsv and hiredis have no call that says which one is loaded */
    line("libcsv", csv, NULL);
    line("SQLite", SQLITE_VERSION, sqlite3_libversion());
    line("libidn2", IDN2_VERSION, idn2_check_version(NULL));
    line("GMime", gmime_built, gmime_running);
    /* GMime's own library, which blast calls too */
    line("GLib", glib_built, glib_running);
    line("hiredis", hiredis, NULL);
    line("libsodium", SODIUM_VERSION_STRING, sodium_version_string());
    line("zlib", ZLIB_VERSION, zlibVersion());
    line("c-ares", ARES_VERSION_STR, ares_version(NULL));
    line("libpsl", PSL_VERSION, psl);
}

int cmd_version(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(cli_version_usage, stdout);
            return BLAST_EXIT_OK;
        default:
            cli_bad_option("version", argv, optopt);
            return BLAST_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_fail("version: unexpected operand '%s' (see 'blast help version')", argv[optind]);
        return BLAST_EXIT_USAGE;
    }
    print_versions();
    return BLAST_EXIT_OK;
}
