/*
 * reportmerge - the reports of a campaign's shards made into the campaign's one
 * report (docs/sharding.md, "Merging the reports").
 *
 * Owns: the checks that the inputs are the shards of one campaign (the same name,
 * fingerprint, dry run and shard count; every index once: none missing, none
 * twice), the merge of their recipients by row (a k-way merge, one recipient of
 * each input in memory at a time, so memory grows with the number of shards, not
 * of recipients), the refusal of a row that two shards both report, and the
 * merged report's run (the first shard's start to the last one's end).
 * Does not own: reading a report (reportread), writing one (report), the command
 * line (cmd/blast/report.c).
 *
 * The output is written atomically by report: a merge that fails half-way leaves
 * no merged report, and an earlier one untouched.
 */
#ifndef BLAST_REPORTMERGE_H
#define BLAST_REPORTMERGE_H

#include "error.h"

#include <stddef.h>
#include <stdio.h>

/* What a merge did, for the caller's message. */
struct reportmerge_stats {
    size_t shards;     /* reports merged */
    size_t count;      /* the shard count they name */
    size_t recipients; /* recipients written */
};

/*
 * Merge the n shard reports at paths into one report at output, or, when stream
 * is not NULL, onto that stream (the caller's; output names it in messages).
 * Errors: BLAST_EINVAL naming the report and the problem (another
 * campaign or fingerprint, not a shard's report, missing or repeated shards, a row
 * in two shards, rows out of order), and those of reportread (BLAST_EIO,
 * BLAST_ESYNTAX with file:line:column) and report (BLAST_EIO); BLAST_ENOMEM.
 */
int reportmerge_run(const char *const *paths, size_t n, const char *output, FILE *stream,
                    struct reportmerge_stats *stats, struct blast_error *err);

#endif
