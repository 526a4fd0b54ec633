/*
 * prepare - what send, check and preview do first: load the campaign, open its
 * recipient list, set up the screening rules and compile the templates.
 */
#ifndef BLAST_PREPARE_H
#define BLAST_PREPARE_H

#include "../../core/campaign.h"
#include "../../core/compose.h"
#include "../../core/dkim.h"
#include "../../core/log.h"
#include "../../core/recipients.h"
#include "../../core/screen.h"

#include <glob.h>
#include <stdio.h>

struct prepared {
    struct campaign *c;
    struct recipients *list;
    struct screen *screen;
    struct compose *cp;
    struct dkim *dkim; /* the campaign's keys, NULL without dkim; cp signs with them */
};

/* Open the campaign's list; an unreadable file is blamed on the campaign's recipients.path. */
int prepare_list(const struct campaign *c, struct recipients **out, struct blast_error *err);

/* A report of an earlier run that send takes into account (--exclude-report, --suppress-from). */
struct prepare_report {
    enum screen_report_rule rule;
    const char *path;
};

/*
 * Add the reports' rules to p's screen (screen_add_report), in order. own is the
 * report this run writes (NULL or "-" when none): naming it is refused, because
 * every run rewrites it (and the journal already keeps the campaign's outcomes).
 */
int prepare_reports(struct prepared *p, const struct prepare_report *reports, size_t n,
                    const char *own, struct blast_error *err);

/*
 * The campaign's fingerprint for the journal (fingerprint_campaign_both), the reports'
 * contents included; and into legacy (may be NULL) its earlier form, which an older
 * journal may hold.
 */
int prepare_hash(const struct prepared *p, const struct prepare_report *reports, size_t n,
                 char out[65], char legacy[65], struct blast_error *err);

/*
 * All of it, the DKIM keys included (their warnings go to lg), stopping at the
 * first problem. Free with prepare_close() either way.
 */
int prepare_open(const char *path, struct prepared *p, const struct log *lg,
                 struct blast_error *err);
void prepare_close(struct prepared *p);

/*
 * The shard this run sends (docs/sharding.md): --shard I/N (text, or NULL), else
 * the job engine's environment (SLURM_ARRAY_TASK_ID and _COUNT, or
 * JOB_COMPLETION_INDEX with count, or BLAST_SHARD_COUNT); {0, 0} when none. With
 * one, the screen takes only its rows and the campaign's rates (global, relays,
 * domains) become 1/N each, unless the campaign shares them through Redis
 * ('limits: shared'). Errors: BLAST_EINVAL.
 */
struct shard;
int prepare_shard(struct prepared *p, const char *text, long count, struct shard *out,
                  struct blast_error *err);

/*
 * path with ".shard-I-of-N" before its file name's extension ("x.journal" ->
 * "x.shard-1-of-4.journal"), in a new string; a copy of path when not sharded.
 * NULL on ENOMEM.
 */
char *prepare_shard_path(const char *path, const struct shard *s);

/* Where in path a shard's ".shard-I-of-N" goes: its file name's extension, or its end. */
const char *prepare_shard_place(const char *path);

/* The journal a campaign's send keeps (its 'journal', else .blast/NAME.journal beside it): new. */
char *prepare_journal_of(const struct campaign *c);

/*
 * The journals of the campaign's shards beside its journal (docs/sharding.md), each
 * a whole shard name ("NAME.shard-2-of-4.journal"), found by glob(3) into g (the
 * caller's, globfree() it). -1 when out of memory; no shard journal is not an error.
 */
int prepare_shard_journals(const char *journal, glob_t *g);

/*
 * Warn on lg about each of the campaign's files that exists and that other users (or
 * the group) can read (core/private, docs/files.md): the journal and its lock, the
 * report, the suppression database, the dry run's directory, and the directories
 * holding them. journal and report are the run's (NULL: the campaign's setting, else
 * the default beside the campaign file, in the shard's name); dry_run may be NULL.
 * Warnings only: nothing is refused.
 */
void prepare_warn_exposed(const struct campaign *c, const struct shard *s, const char *journal,
                          const char *report, const char *dry_run, const struct log *lg);

/*
 * The campaign's shared limits ('limits: shared', docs/sharding.md), for a run that
 * sends: the password fetched (and wiped after use), Redis reached, the script
 * loaded. *out is NULL when the campaign has none. Errors name the URL, never the
 * password; nothing may be sent then.
 */
struct sharedlimit;
int prepare_limits(const struct campaign *c, const struct log *lg, struct sharedlimit **out,
                   struct blast_error *err);

/*
 * The campaign clock, which send windows and warm-up days are judged by (docs/
 * campaign.md, "The campaign clock"): the real time, or, with BLAST_NOW set to an
 * instant ("2026-12-07T08:30:00Z"), that instant at the start of the run, going on
 * from there. *offset is what is added to the real time. Errors: BLAST_EINVAL, a
 * BLAST_NOW that is not such an instant.
 */
int prepare_clock(int64_t *offset, struct blast_error *err);
int64_t prepare_clock_now(int64_t offset); /* seconds since the epoch */

/*
 * The campaign's time zone ('timezone', else the system's, core/tzone). Errors name
 * the campaign's place for an unknown zone. *out is the caller's to tzone_free().
 */
struct tzone;
int prepare_zone(const struct campaign *c, struct tzone **out, struct blast_error *err);

/*
 * The campaign's send window (docs/campaign.md, "window") over a list: each row's
 * zone, from the list's zone_column (loaded once per name) or the campaign's.
 */
struct tzone_cache;
struct prepare_window {
    const struct window *w;   /* NULL: the campaign has no window */
    const struct tzone *zone; /* the campaign's (borrowed) */
    int col;                  /* the zone column's index, or -1 */
    struct tzone_cache *cache;
};
/* Errors: the zone_column is not a column of the list (its place in the campaign). */
int prepare_window_open(const struct campaign *c, const struct recipients *list,
                        const struct tzone *zone, struct prepare_window *pw,
                        struct blast_error *err);
/* The row's zone; an unknown name is an error naming the list, its line, row and column. */
int prepare_window_zone(struct prepare_window *pw, const struct campaign *c,
                        const struct recipients *list, const struct recipients_row *row,
                        const struct tzone **z, struct blast_error *err);
void prepare_window_close(struct prepare_window *pw);

/*
 * The resolver the campaign's lookups go to: BLAST_DNS_SERVERS when set and not
 * empty, else its 'dns': 'servers', else NULL (the system's resolver). "off" means
 * no lookups (docs/campaign.md, "Providers").
 */
const char *prepare_dns_servers(const struct campaign *c);

/*
 * The routes of the domains counted in domains (core/provider): the campaign's provider table
 * loaded into *t (the caller frees it with provider_table_free(), and *out with
 * provider_routes_free()), each domain looked up once through servers, within a
 * minute in all. Errors: a servers string that is not one, named where it was set
 * (the campaign's 'dns': 'servers' or BLAST_DNS_SERVERS); BLAST_EIO, BLAST_ENOMEM.
 */
struct provider_table;
struct provider_routes;
struct countmap;
int prepare_routes(const struct campaign *c, const char *servers, const struct countmap *domains,
                   struct provider_table *t, struct provider_routes **out, struct blast_error *err);

/*
 * The warm-up store's path (docs/campaign.md, "Warm-up"): 'warmup': 'store', else the
 * suppression_db, else .blast/warmup.db beside the campaign file, whose directory is
 * made (0700) when make_dir. The caller frees it; NULL on an error.
 */
char *prepare_warmup_store(const struct campaign *c, bool make_dir, struct blast_error *err);

/*
 * The DNS checks of the sending domain (core/preflight, docs/authentication.md)
 * through BLAST_DNS_SERVERS, else the campaign's dns servers, else the system's
 * resolver; BLAST_DNS_SERVERS=off is an error here (the checks are nothing but
 * lookups). Each finding goes to cli_finding() with --log-format json, else to out
 * (blast check's report) when out is set, else to lg (warnings and errors; ok at
 * debug). keys: the campaign's DKIM keys, or NULL.
 */
struct preflight_counts;
int prepare_preflight(const struct campaign *c, const struct dkim *keys, FILE *out,
                      const struct log *lg, struct preflight_counts *n, struct blast_error *err);

#endif
