/*
 * template - Mustache templates: compiled once per campaign, rendered per recipient.
 *
 * Owns: the Mustache syntax (https://mustache.github.io/mustache.5.html and the
 * specification's tests): variables ({{x}}, escaped by the template's mode;
 * {{{x}}} and {{& x}} never escaped), sections and inverted sections, comments,
 * partials, set delimiters, dotted names and the implicit iterator {{.}}; the
 * removal of standalone tag lines and the indentation of standalone partials; the
 * escaping of values in HTML bodies and URLs; the names a template uses, with
 * their places, so a campaign can be checked before anything is sent.
 * Does not own: the data. The caller describes its values through struct
 * template_data (a row of a CSV file, the campaign's vars, a JSON document), and
 * finds partials through struct template_partials.
 *
 * Ownership: a struct template_lib owns every template compiled through it,
 * partials included; templates are freed with their lib and never alone.
 */
#ifndef BLAST_TEMPLATE_H
#define BLAST_TEMPLATE_H

#include "buf.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum template_mode {
    TEMPLATE_TEXT = 0, /* values inserted as they are (text bodies, headers) */
    TEMPLATE_HTML,     /* {{x}} values are HTML-escaped (& < > " ') */
    TEMPLATE_URL,      /* {{x}} values are percent-encoded (RFC 3986 §2.1), for links */
};

/* ---- data ---------------------------------------------------------------------------- */

enum template_kind {
    TEMPLATE_NULL = 0, /* missing or null: falsy, renders as nothing */
    TEMPLATE_FALSE,    /* falsy; still has a text (an empty CSV value: "") */
    TEMPLATE_TRUE,     /* truthy scalar without a context of its own */
    TEMPLATE_SCALAR,   /* a truthy string or number */
    TEMPLATE_LIST,     /* sections iterate; falsy when empty */
    TEMPLATE_MAP,      /* a context for names */
};

/* A value as the data provider sees it: a pointer and a tag it interprets. */
struct template_value {
    const void *p;
    uintptr_t tag;
};

struct template_data {
    void *ctx;
    enum template_kind (*kind)(void *ctx, struct template_value v);
    /* a key of a MAP; false when absent */
    bool (*get)(void *ctx, struct template_value map, const char *key, struct template_value *out);
    /* the text of a FALSE, TRUE or SCALAR value */
    void (*text)(void *ctx, struct template_value v, const char **s, size_t *len);
    size_t (*count)(void *ctx, struct template_value list);
    struct template_value (*item)(void *ctx, struct template_value list, size_t i);
};

/* ---- partials ------------------------------------------------------------------------ */

struct template_partials {
    /*
     * Find partial name, used by the template compiled from source: return 1 with
     * *text (len bytes) and *path in new strings the lib frees, 0 when there is no
     * such partial, or a negative code with err filled.
     */
    int (*find)(void *arg, const char *name, const char *source, enum template_mode mode,
                char **text, size_t *len, char **path, struct blast_error *err);
    void *arg;
    bool missing_is_error; /* the specification renders a missing partial as nothing */
    const char *hint;      /* where partials are looked for, added to "not found" errors */
};

/* ---- compiling ------------------------------------------------------------------------- */

struct template;
struct template_lib;

/* A new lib; partials may be NULL (then {{> x}} is an error). NULL when out of memory. */
struct template_lib *template_lib_new(const struct template_partials *partials);
void template_lib_free(struct template_lib *lib);

/*
 * Compile text (len bytes, UTF-8). source names it in errors; first_line and
 * first_column say where text starts there (1, 1 for a whole file). The template
 * and the partials it uses stay owned by lib. Errors: BLAST_ESYNTAX with the
 * place of the bad tag (unclosed tag or section, a section closed by another
 * name, bad delimiters, an empty name, a NUL byte in a tag), BLAST_EINVAL (a
 * partial that cannot be found, when that is an error), BLAST_EIO, BLAST_ENOMEM.
 * A compile that fails leaves nothing in lib: the partials it compiled are
 * compiled again (and fail again) when another template includes them.
 */
int template_compile(struct template_lib *lib, const char *text, size_t len, const char *source,
                     int first_line, int first_column, enum template_mode mode,
                     const struct template **out, struct blast_error *err);

/* Read and compile a whole file. Errors as above, and BLAST_EIO naming the file. */
int template_load(struct template_lib *lib, const char *path, enum template_mode mode,
                  const struct template **out, struct blast_error *err);

const char *template_source(const struct template *t);
enum template_mode template_mode(const struct template *t);

/* ---- rendering ----------------------------------------------------------------------- */

/*
 * What one rendering may do: run this many operations (a piece of text, a name, a
 * section, a partial, each item of a list a section goes through) and append this
 * many bytes. Sections nested over lists multiply, so a short template could
 * otherwise run for ever: 30 sections over a list of two items are 2^30 passes.
 */
#define TEMPLATE_RENDER_MAX_STEPS 1000000
#define TEMPLATE_RENDER_MAX_BYTES (64 * 1024 * 1024)

/*
 * Append the rendering of t with root as the outermost context to out. Returns 0,
 * BLAST_ENOMEM, or BLAST_EINVAL when sections and partials nest deeper than 100
 * (a partial that includes itself forever) or the rendering passes the limits
 * above; out then holds what was rendered until then.
 */
int template_render(const struct template *t, const struct template_data *data,
                    struct template_value root, struct buf *out);

/* ---- the names a template uses ----------------------------------------------------- */

enum template_use_kind { TEMPLATE_USE_VARIABLE, TEMPLATE_USE_SECTION, TEMPLATE_USE_INVERTED };

struct template_use {
    enum template_use_kind kind;
    const char *name;         /* as written: "a.b", "." */
    const char *const *parts; /* the dotted name split; nparts 0 for "." */
    size_t nparts;
    const char *source; /* the file (or campaign) it is written in */
    int line, column;
};

/*
 * Call fn for every name t uses, partials included (each partial once), with the
 * sections around it, outermost first: enough to tell which context a name is
 * looked up in.
 */
typedef void (*template_visit_fn)(void *arg, const struct template_use *use,
                                  const struct template_use *const *sections, size_t nsections);
int template_visit(const struct template *t, template_visit_fn fn, void *arg);

#endif
