/*
 * template - Mustache-style placeholders, compiled once, rendered per recipient.
 *
 * Owns: the template syntax and its errors (with file, line and column),
 * HTML-escaping of values in HTML bodies, and the list of names a template uses
 * (so a campaign can be checked before anything is sent).
 * Supported: {{name}} (escaped when rendering HTML), {{{name}}} and {{& name}}
 * (never escaped), {{! comment}}. Other Mustache tags are refused with a clear
 * error at compile time.
 * Does not own: where values come from. The caller passes a lookup function that
 * maps a name to its value for the recipient being rendered.
 */
#ifndef BLAST_TEMPLATE_H
#define BLAST_TEMPLATE_H

#include "buf.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>

struct template;

enum template_mode {
    TEMPLATE_TEXT = 0, /* values inserted as they are (text bodies, headers) */
    TEMPLATE_HTML,     /* {{name}} values are HTML-escaped */
};

/*
 * Compile text (len bytes, UTF-8). source names the file for errors; first_line
 * and first_column say where text starts in it (1, 1 for a whole file). On
 * success *out is a template the caller frees with template_free(); it keeps its
 * own copy of text. Errors: BLAST_ESYNTAX with the place of the bad tag,
 * BLAST_ENOMEM.
 */
int template_compile(const char *text, size_t len, const char *source, int first_line,
                     int first_column, enum template_mode mode, struct template **out,
                     struct blast_error *err);

/* Read and compile a whole template file. Errors as above, and BLAST_EIO. */
int template_load(const char *path, enum template_mode mode, struct template **out,
                  struct blast_error *err);

void template_free(struct template *t);

/*
 * Look a name up for the recipient being rendered: return true and set *value and
 * *len, or false when the name has no value (it renders as nothing).
 */
typedef bool (*template_lookup_fn)(void *arg, const char *name, const char **value, size_t *len);

/* Append the rendering to out. Returns 0 or BLAST_ENOMEM. */
int template_render(const struct template *t, template_lookup_fn lookup, void *arg,
                    struct buf *out);

/* The placeholders a template uses, in order, with their places (for checks). */
size_t template_nnames(const struct template *t);
const char *template_name(const struct template *t, size_t i, int *line, int *column);
const char *template_source(const struct template *t);

#endif
