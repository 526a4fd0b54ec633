/*
 * fuzz_address - the address parser (core/address.h) on fuzzed text.
 *
 * The input, made a C string, goes to address_parse, address_parse_mailbox and
 * address_domain_ascii.
 *
 * Checks: a parsed address has an envelope within RFC 5321's length, without CR,
 * LF or angle brackets, whose domain part is ASCII; parsing that envelope again
 * gives the same envelope; an A-label domain is lower-case ASCII and converts to
 * itself.
 */
#include "../../core/address.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void check_envelope(const struct address *a, const char *what)
{
    struct address again;
    struct blast_error err;
    const char *at, *p;

    if (a->local == NULL || a->domain == NULL || a->envelope == NULL)
        fuzz_fail("%s: an address without its parts", what);
    if (strlen(a->envelope) > ADDRESS_PATH_MAX - 2)
        fuzz_fail("%s: an envelope of %zu bytes", what, strlen(a->envelope));
    if (strpbrk(a->envelope, "\r\n<>") != NULL)
        fuzz_fail("%s: CR, LF or an angle bracket in '%s'", what, a->envelope);
    at = strrchr(a->envelope, '@');
    if (at == NULL)
        fuzz_fail("%s: no @ in '%s'", what, a->envelope);
    for (p = at + 1; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            fuzz_fail("%s: the envelope's domain is not ASCII: '%s'", what, a->envelope);
    if (!a->needs_smtputf8)
        for (p = a->envelope; *p != '\0'; p++)
            if ((unsigned char)*p >= 0x80)
                fuzz_fail("%s: a non-ASCII envelope without SMTPUTF8: '%s'", what, a->envelope);
    blast_error_clear(&err);
    if (address_parse(a->envelope, &again, &err) < 0)
        fuzz_fail("%s: the envelope '%s' does not parse: %s", what, a->envelope, err.text);
    if (strcmp(again.envelope, a->envelope) != 0)
        fuzz_fail("%s: '%s' parses to '%s'", what, a->envelope, again.envelope);
    address_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct address a;
    struct blast_error err;
    char *text = malloc(size + 1), *ascii = NULL, *again = NULL;
    const char *p;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    blast_error_clear(&err);
    if (address_parse(text, &a, &err) == 0) {
        if (a.display != NULL)
            fuzz_fail("a bare address with a display name");
        check_envelope(&a, "address_parse");
        address_free(&a);
    } else if (err.code == 0) {
        fuzz_fail("address_parse failed without an error");
    }

    blast_error_clear(&err);
    if (address_parse_mailbox(text, &a, &err) == 0) {
        check_envelope(&a, "address_parse_mailbox");
        address_free(&a);
    } else if (err.code == 0) {
        fuzz_fail("address_parse_mailbox failed without an error");
    }

    blast_error_clear(&err);
    if (address_domain_ascii(text, &ascii, &err) == 0) {
        for (p = ascii; *p != '\0'; p++)
            if ((unsigned char)*p >= 0x80 || (*p >= 'A' && *p <= 'Z'))
                fuzz_fail("'%s' is not lower-case ASCII", ascii);
        blast_error_clear(&err);
        if (address_domain_ascii(ascii, &again, &err) < 0 || strcmp(again, ascii) != 0)
            fuzz_fail("'%s' converts to '%s'", ascii, again != NULL ? again : err.text);
    }
    free(again);
    free(ascii);
    free(text);
    return 0;
}
