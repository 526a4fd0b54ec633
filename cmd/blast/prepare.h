/*
 * prepare - what send, check and preview do first: load the campaign, open its
 * recipient list, set up the screening rules and compile the templates.
 */
#ifndef BLAST_PREPARE_H
#define BLAST_PREPARE_H

#include "../../core/campaign.h"
#include "../../core/compose.h"
#include "../../core/recipients.h"
#include "../../core/screen.h"

struct prepared {
    struct campaign *c;
    struct recipients *list;
    struct screen *screen;
    struct compose *cp;
};

/* Open the campaign's list; an unreadable file is blamed on the campaign's recipients.path. */
int prepare_list(const struct campaign *c, struct recipients **out, struct blast_error *err);

/* All of it, stopping at the first problem. Free with prepare_close() either way. */
int prepare_open(const char *path, struct prepared *p, struct blast_error *err);
void prepare_close(struct prepared *p);

#endif
