/*
 * fingerprint - the campaign's fingerprint for the journal.
 *
 * Owns: which inputs of a run the fingerprint covers, the bytes fed for each (its
 * name with its NUL, then its contents; a label with its NUL before each further
 * input) and their order, and the digest (SHA-256, hex). Journals hold the value, so
 * a change to any of that makes every existing journal refuse to resume: the value
 * of a fixed campaign is pinned by tests/unit/test_fingerprint.c.
 * Does not own: what a journal does with it (journal), nor which further inputs a
 * run has (cmd/blast/prepare.c names the reports of --exclude-report and
 * --suppress-from), nor reading the campaign file (campaign).
 */
#ifndef BLAST_FINGERPRINT_H
#define BLAST_FINGERPRINT_H

#include "campaign.h"
#include "error.h"

#include <stddef.h>

/* The hex digest with its NUL. */
#define FINGERPRINT_HEX_SIZE 65

/*
 * SHA-256 (hex) over the campaign file, its body templates, the recipient list, the
 * suppression lists and the attached and inline files, each named relative to the
 * campaign file's directory (the campaign file by its base name), so a run refuses
 * to resume a journal made for other inputs, whatever the spelling of the path that
 * named the campaign. Errors: BLAST_EIO naming the file that cannot be
 * read, BLAST_ENOMEM; out is "" then.
 */
int fingerprint_campaign(const struct campaign *c, char out[FINGERPRINT_HEX_SIZE],
                         struct blast_error *err);

/* A further input of a run that the fingerprint covers: a label for its role, and a file. */
struct fingerprint_input {
    const char *label; /* "exclude-report", ... */
    const char *path;
};

/*
 * The same, with nextra more files (the reports blast send --exclude-report and
 * --suppress-from read), each with its label, name and contents, so that a resume
 * with other inputs is noticed. With nextra 0 it is fingerprint_campaign().
 */
int fingerprint_campaign_with(const struct campaign *c, const struct fingerprint_input *extra,
                              size_t nextra, char out[FINGERPRINT_HEX_SIZE],
                              struct blast_error *err);

/*
 * The same, and into legacy (when not NULL) the digest blast wrote before the names
 * were made relative (each file named by its path as resolved from the command
 * line), in one reading of the files: a journal holding that one still resumes.
 */
int fingerprint_campaign_both(const struct campaign *c, const struct fingerprint_input *extra,
                              size_t nextra, char out[FINGERPRINT_HEX_SIZE],
                              char legacy[FINGERPRINT_HEX_SIZE], struct blast_error *err);

#endif
