/*
 * fuzz_records - the grammars of the DNS TXT records blast reads from anyone's zone
 * (core/taglist, core/dmarc, core/spf): a record, as a resolver would hand it over
 * (strings joined), goes to taglist_parse in both modes, dmarc_parse and
 * spf_parse_record.
 *
 * Checks: every tag of a parsed tag-list lies inside the input with a name of at
 * least one byte, and no name twice; a parsed DMARC record has a policy among none,
 * quarantine and reject, a pct of 0 to 100, and alignment modes 'r' or 's'; what
 * fails to parse says why.
 */
#include "../../core/dmarc.h"
#include "../../core/spf.h"
#include "../../core/taglist.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void check_taglist(const char *txt, bool nocase)
{
    struct taglist l;
    char why[160];
    size_t i, k, n = strlen(txt);

    why[0] = '\0';
    if (taglist_parse(txt, nocase, &l, why, sizeof why) < 0) {
        if (why[0] == '\0')
            fuzz_fail("taglist_parse refused '%.80s' without saying why", txt);
        return;
    }
    if (l.n > TAGLIST_MAX)
        fuzz_fail("%zu tags", l.n);
    for (i = 0; i < l.n; i++) {
        const struct taglist_tag *t = &l.tag[i];
        if (t->namelen == 0 || t->name < txt || t->name + t->namelen > txt + n ||
            (t->valuelen > 0 && (t->value < txt || t->value + t->valuelen > txt + n)))
            fuzz_fail("tag %zu lies outside the record", i);
        for (k = 0; k < i; k++)
            if (l.tag[k].namelen == t->namelen &&
                (nocase ? strncasecmp(l.tag[k].name, t->name, t->namelen)
                        : strncmp(l.tag[k].name, t->name, t->namelen)) == 0)
                fuzz_fail("tag '%.*s' twice", (int)t->namelen, t->name);
    }
}

static void check_dmarc(const char *txt)
{
    struct dmarc_record r;
    char why[160];

    why[0] = '\0';
    if (dmarc_parse(txt, &r, why, sizeof why) < 0) {
        if (why[0] == '\0')
            fuzz_fail("dmarc_parse refused '%.80s' without saying why", txt);
        return;
    }
    if (strcmp(r.p, "none") != 0 && strcmp(r.p, "quarantine") != 0 && strcmp(r.p, "reject") != 0)
        fuzz_fail("a policy '%s'", r.p);
    if (r.pct < 0 || r.pct > 100)
        fuzz_fail("pct=%d", r.pct);
    if ((r.adkim != 'r' && r.adkim != 's') || (r.aspf != 'r' && r.aspf != 's'))
        fuzz_fail("alignment modes '%c' '%c'", r.adkim, r.aspf);
}

static void check_spf(const char *txt)
{
    char why[256], out[1024];
    struct blast_error err;
    int rc;

    why[0] = '\0';
    rc = spf_parse(txt, why, sizeof why);
    if (rc < 0 && rc != BLAST_ENOMEM)
        fuzz_fail("spf_parse returned %d", rc);
    if (rc == 1 && why[0] == '\0')
        fuzz_fail("spf_parse refused '%.80s' without saying why", txt);
    /* the record as a macro-string: the expander, without DNS (%{p} is "unknown") */
    blast_error_clear(&err);
    rc = spf_expand(NULL, txt, "192.0.2.3", "example.org", "strong-bad@email.example.com", out,
                    sizeof out, &err);
    if (rc == 0 && strlen(out) >= sizeof out)
        fuzz_fail("an expansion longer than its buffer");
    if (rc < 0 && err.text[0] == '\0' && rc != BLAST_ENOMEM)
        fuzz_fail("spf_expand failed without saying why");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *txt = malloc(size + 1);

    if (txt == NULL)
        return 0;
    memcpy(txt, data, size);
    txt[size] = '\0';
    check_taglist(txt, false);
    check_taglist(txt, true);
    check_dmarc(txt);
    check_spf(txt);
    free(txt);
    return 0;
}
