/*
 * test_error - the error record: first error wins, replace overwrites, and the
 * "source:line:column: text" format leaves out the parts that are unknown.
 */
#include "../../core/error.h"

#include <criterion/criterion.h>
#include <string.h>

Test(error, clear_means_no_error)
{
    struct blast_error err;

    memset(&err, 0x5A, sizeof err);
    blast_error_clear(&err);
    cr_assert_eq(err.code, 0);
    cr_assert_str_empty(err.source);
    cr_assert_eq(err.line, 0);
    cr_assert_eq(err.column, 0);
    cr_assert_str_empty(err.text);
    blast_error_clear(NULL); /* accepted */
}

Test(error, set_records_everything_and_returns_the_code)
{
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = blast_error_set(&err, BLAST_EINVAL, "campaign.yml", 12, 5, "unknown key '%s'", "form");
    cr_assert_eq(rc, BLAST_EINVAL);
    cr_assert_eq(err.code, BLAST_EINVAL);
    cr_assert_str_eq(err.source, "campaign.yml");
    cr_assert_eq(err.line, 12);
    cr_assert_eq(err.column, 5);
    cr_assert_str_eq(err.text, "unknown key 'form'");
}

Test(error, first_error_wins)
{
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_ECONNECT, "relay-a", 0, 0, "connection refused");
    rc = blast_error_set(&err, BLAST_EIO, "other", 3, 4, "vaguer cause");
    cr_assert_eq(rc, BLAST_EIO, "set returns its own code even when it records nothing");
    cr_assert_eq(err.code, BLAST_ECONNECT);
    cr_assert_str_eq(err.source, "relay-a");
    cr_assert_eq(err.line, 0);
    cr_assert_str_eq(err.text, "connection refused");
}

Test(error, replace_overwrites)
{
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_ECONNECT, "relay-a", 1, 2, "first");
    rc = blast_error_replace(&err, BLAST_ETIMEOUT, NULL, 0, 0, "timed out after %d s", 30);
    cr_assert_eq(rc, BLAST_ETIMEOUT);
    cr_assert_eq(err.code, BLAST_ETIMEOUT);
    cr_assert_str_empty(err.source);
    cr_assert_eq(err.line, 0);
    cr_assert_eq(err.column, 0);
    cr_assert_str_eq(err.text, "timed out after 30 s");
}

Test(error, set_after_clear_records_again)
{
    struct blast_error err;

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_EIO, NULL, 0, 0, "one");
    blast_error_clear(&err);
    blast_error_set(&err, BLAST_EPROTO, NULL, 0, 0, "two");
    cr_assert_eq(err.code, BLAST_EPROTO);
    cr_assert_str_eq(err.text, "two");
}

Test(error, null_record_is_accepted)
{
    cr_assert_eq(blast_error_set(NULL, BLAST_EINVAL, "x", 1, 1, "y"), BLAST_EINVAL);
    cr_assert_eq(blast_error_replace(NULL, BLAST_EIO, "x", 1, 1, "y"), BLAST_EIO);
}

Test(error, format_with_full_place)
{
    struct blast_error err;
    char out[256];

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_EINVAL, "campaigns/x.yml", 12, 5,
                    "unknown key 'form' (did you mean 'from'?)");
    cr_assert_str_eq(blast_error_format(&err, out, sizeof out),
                     "campaigns/x.yml:12:5: unknown key 'form' (did you mean 'from'?)");
}

Test(error, format_with_line_but_no_column)
{
    struct blast_error err;
    char out[256];

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_ESYNTAX, "list.csv", 7, 0, "row 6 has 3 fields");
    cr_assert_str_eq(blast_error_format(&err, out, sizeof out), "list.csv:7: row 6 has 3 fields");
}

Test(error, format_with_source_only)
{
    struct blast_error err;
    char out[256];

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_EIO, "list.csv", 0, 0, "cannot open");
    cr_assert_str_eq(blast_error_format(&err, out, sizeof out), "list.csv: cannot open");
}

Test(error, format_without_place)
{
    struct blast_error err;
    char out[256];

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_ECONNECT, NULL, 3, 4, "cannot connect");
    cr_assert_str_eq(blast_error_format(&err, out, sizeof out), "cannot connect");
}

Test(error, format_without_text_uses_strerror)
{
    struct blast_error err;
    char out[256];

    blast_error_clear(&err);
    err.code = BLAST_ETIMEOUT;
    cr_assert_str_eq(blast_error_format(&err, out, sizeof out), blast_strerror(BLAST_ETIMEOUT));
}

Test(error, format_truncates_to_the_buffer)
{
    struct blast_error err;
    char out[12];

    blast_error_clear(&err);
    blast_error_set(&err, BLAST_EINVAL, "campaign.yml", 1, 1, "a long message");
    blast_error_format(&err, out, sizeof out);
    cr_assert_eq(strlen(out), sizeof out - 1);
    cr_assert_str_eq(out, "campaign.ym");
}

Test(error, long_text_and_source_are_truncated_not_overflowed)
{
    struct blast_error err;
    char big[4096];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    blast_error_clear(&err);
    blast_error_set(&err, BLAST_EINVAL, big, 1, 1, "%s", big);
    cr_assert_eq(strlen(err.source), BLAST_ERROR_SOURCE_MAX - 1);
    cr_assert_eq(strlen(err.text), BLAST_ERROR_TEXT_MAX - 1);
}

Test(error, strerror_names_every_code)
{
    static const int codes[] = {BLAST_OK,     BLAST_ENOMEM,   BLAST_EIO,      BLAST_ESYNTAX,
                                BLAST_EINVAL, BLAST_ECONNECT, BLAST_ETIMEOUT, BLAST_EPROTO,
                                BLAST_ETLS,   BLAST_EAUTH,    BLAST_EREPLY,   BLAST_ECLOSED};
    const char *unknown = blast_strerror(-999);
    size_t i, j;

    cr_assert_not_null(unknown);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = blast_strerror(codes[i]);
        cr_assert_not_null(s);
        cr_assert_str_not_empty(s);
        cr_assert_str_neq(s, unknown, "code %d has no description of its own", codes[i]);
        for (j = 0; j < i; j++)
            cr_assert_str_neq(s, blast_strerror(codes[j]), "codes %d and %d read the same",
                              codes[i], codes[j]);
    }
}
