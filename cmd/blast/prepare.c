/*
 * prepare - the common first steps of the subcommands. See prepare.h.
 */
#include "prepare.h"

#include <stdio.h>
#include <string.h>

int prepare_list(const struct campaign *c, struct recipients **out, struct blast_error *err)
{
    struct recipients_options ro = {c->recipients.delimiter, 0};
    struct blast_error e;
    int rc;

    blast_error_clear(&e);
    rc = recipients_open(c->recipients.path, &ro, out, &e);
    if (rc == BLAST_EIO && e.line == 0)
        return blast_error_set(err, rc, c->path, c->recipients.path_place.line,
                               c->recipients.path_place.column, "recipients.path: %s: %s",
                               c->recipients.path, e.text);
    if (rc < 0)
        return blast_error_set(err, rc, e.source, e.line, e.column, "%s", e.text);
    return 0;
}

int prepare_open(const char *path, struct prepared *p, struct blast_error *err)
{
    int rc;

    memset(p, 0, sizeof *p);
    if ((rc = campaign_load(path, &p->c, err)) < 0 ||
        (rc = prepare_list(p->c, &p->list, err)) < 0 ||
        (rc = screen_new(p->c, p->list, &p->screen, err)) < 0 ||
        (rc = compose_new(p->c, p->list, p->screen, NULL, &p->cp, err)) < 0)
        return rc;
    return 0;
}

void prepare_close(struct prepared *p)
{
    compose_free(p->cp);
    screen_free(p->screen);
    recipients_close(p->list);
    campaign_free(p->c);
    memset(p, 0, sizeof *p);
}
