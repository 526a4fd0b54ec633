/*
 * test_address - RFC 5321 mailbox syntax, its length limits, RFC 6531 UTF-8
 * local parts, IDNA2008 domains in the envelope, and the RFC 5322
 * "Display Name <addr>" form.
 */
#include "../../core/address.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* Parse text as a bare address and expect success; the caller frees *a. */
static void parse_ok(const char *text, struct address *a)
{
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = address_parse(text, a, &err);
    cr_assert_eq(rc, 0, "'%s' refused: %s", text, err.text);
    cr_assert_eq(err.code, 0);
}

/* Expect text to be refused as a bare address with BLAST_EINVAL and a message. */
static void parse_bad(const char *text)
{
    struct address a;
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = address_parse(text, &a, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "'%s' accepted (rc %d)", text, rc);
    cr_assert_eq(err.code, BLAST_EINVAL);
    cr_assert_str_not_empty(err.text);
    cr_assert_null(a.local, "nothing to free after a failed parse");
    cr_assert_null(a.domain);
    cr_assert_null(a.envelope);
    cr_assert_null(a.display);
}

static void mailbox_bad(const char *text)
{
    struct address a;
    struct blast_error err;
    int rc;

    blast_error_clear(&err);
    rc = address_parse_mailbox(text, &a, &err);
    cr_assert_eq(rc, BLAST_EINVAL, "'%s' accepted (rc %d)", text, rc);
    cr_assert_str_not_empty(err.text);
    cr_assert_null(a.envelope);
    cr_assert_null(a.display);
}

static char *repeat(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
    return out;
}

Test(address, simple_dot_atom)
{
    struct address a;

    parse_ok("ada.lovelace@example.com", &a);
    cr_assert_str_eq(a.local, "ada.lovelace");
    cr_assert_str_eq(a.domain, "example.com");
    cr_assert_str_eq(a.envelope, "ada.lovelace@example.com");
    cr_assert_null(a.display);
    cr_assert_not(a.needs_smtputf8);
    address_free(&a);
}

Test(address, atext_specials_are_allowed)
{
    struct address a;

    parse_ok("a!#$%&'*+-/=?^_`{|}~z@example.com", &a);
    cr_assert_str_eq(a.local, "a!#$%&'*+-/=?^_`{|}~z");
    address_free(&a);
    parse_ok("user+tag@sub.example.co.uk", &a);
    cr_assert_str_eq(a.envelope, "user+tag@sub.example.co.uk");
    address_free(&a);
}

Test(address, bad_dot_atoms_are_refused)
{
    parse_bad(".ada@example.com");
    parse_bad("ada.@example.com");
    parse_bad("ada..lovelace@example.com");
    parse_bad("ada lovelace@example.com");
    parse_bad("ada,lovelace@example.com");
    parse_bad("ada(comment)@example.com");
    parse_bad("ada\"x@example.com");
    parse_bad("ada@@example.com");
}

Test(address, missing_parts_are_refused)
{
    parse_bad("");
    parse_bad("ada");
    parse_bad("ada.example.com");
    parse_bad("@example.com");
    parse_bad("ada@");
}

Test(address, quoted_local_part)
{
    struct address a;

    parse_ok("\"john doe\"@example.com", &a);
    cr_assert_str_eq(a.local, "\"john doe\"", "the quoted form is kept");
    cr_assert_str_eq(a.envelope, "\"john doe\"@example.com");
    cr_assert_not(a.needs_smtputf8);
    address_free(&a);

    parse_ok("\"a@b\"@example.com", &a);
    cr_assert_str_eq(a.local, "\"a@b\"");
    cr_assert_str_eq(a.domain, "example.com");
    address_free(&a);

    parse_ok("\"escaped \\\" quote and \\\\ backslash\"@example.com", &a);
    cr_assert_str_eq(a.local, "\"escaped \\\" quote and \\\\ backslash\"");
    address_free(&a);

    parse_ok("\"..\"@example.com", &a);
    address_free(&a);
}

Test(address, bad_quoted_local_parts_are_refused)
{
    parse_bad("\"unterminated@example.com");
    parse_bad("\"a\"b@example.com");
    parse_bad("\"a\"\"b\"@example.com");
    parse_bad("\"ends in backslash\\\"@example.com");
    parse_bad("\"tab\there\"@example.com");
}

Test(address, local_part_length_limit_is_64)
{
    char local[80], text[160];
    struct address a;

    repeat(local, 'a', 64);
    snprintf(text, sizeof text, "%s@example.com", local);
    parse_ok(text, &a);
    cr_assert_eq(strlen(a.local), 64);
    address_free(&a);

    repeat(local, 'a', 65);
    snprintf(text, sizeof text, "%s@example.com", local);
    parse_bad(text);
}

Test(address, label_length_limit_is_63)
{
    char label[80], text[160];
    struct address a;

    repeat(label, 'b', 63);
    snprintf(text, sizeof text, "a@%s.example", label);
    parse_ok(text, &a);
    address_free(&a);

    repeat(label, 'b', 64);
    snprintf(text, sizeof text, "a@%s.example", label);
    parse_bad(text);
}

/* A domain of n octets made of 63-octet labels (and a shorter last one). */
static void make_domain(char *out, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        out[i] = (i + 1) % 64 == 0 ? '.' : 'd';
    out[n] = '\0';
    cr_assert_neq(out[n - 1], '.');
}

Test(address, path_length_limit_is_254)
{
    char domain[300], text[400];
    struct address a;

    /* 1 + 1 + 252 = 254 octets: the longest address that fits <...> in 256 */
    make_domain(domain, 252);
    snprintf(text, sizeof text, "a@%s", domain);
    cr_assert_eq(strlen(text), 254);
    parse_ok(text, &a);
    address_free(&a);

    make_domain(domain, 253);
    snprintf(text, sizeof text, "a@%s", domain);
    cr_assert_eq(strlen(text), 255);
    parse_bad(text);
}

Test(address, domain_length_limit_is_255)
{
    char domain[300], text[400];

    make_domain(domain, 258); /* 256 octets would end in a dot */
    snprintf(text, sizeof text, "a@%s", domain);
    parse_bad(text);
}

Test(address, dotless_domain_is_refused)
{
    parse_bad("root@localhost");
    parse_bad("user@com");
}

Test(address, bad_domains_are_refused)
{
    parse_bad("a@-example.com");
    parse_bad("a@example-.com");
    parse_bad("a@example..com");
    parse_bad("a@.example.com");
    parse_bad("a@example.com.");
    parse_bad("a@exa_mple.com");
    parse_bad("a@exa mple.com");
}

Test(address, hyphens_inside_labels_are_fine)
{
    struct address a;

    parse_ok("a@my-host.ex-ample.com", &a);
    address_free(&a);
    parse_ok("a@123.example", &a);
    address_free(&a);
}

Test(address, idn_domain_becomes_a_label_in_the_envelope)
{
    struct address a;

    parse_ok("user@пример.рф", &a);
    cr_assert_str_eq(a.domain, "пример.рф", "the domain is kept as written");
    cr_assert_str_eq(a.envelope, "user@xn--e1afmkfd.xn--p1ai");
    cr_assert_not(a.needs_smtputf8, "an IDN domain alone does not need SMTPUTF8");
    address_free(&a);

    parse_ok("info@bücher.example", &a);
    cr_assert_str_eq(a.envelope, "info@xn--bcher-kva.example");
    address_free(&a);
}

Test(address, idn_domain_in_upper_case_is_mapped)
{
    struct address a;

    parse_ok("user@Пример.РФ", &a);
    cr_assert_str_eq(a.envelope, "user@xn--e1afmkfd.xn--p1ai");
    address_free(&a);
}

Test(address, idn_mapping_is_nontransitional)
{
    struct address a;

    /* UTS #46 non-transitional: ß stays ß (xn--fa-hia), not "ss" */
    parse_ok("a@faß.de", &a);
    cr_assert_str_eq(a.envelope, "a@xn--fa-hia.de");
    address_free(&a);
}

Test(address, invalid_idn_is_refused)
{
    parse_bad("a@\xe2\x98\x83\xe2\x98\x83.example"); /* symbols are not IDNA2008 */
}

Test(address, utf8_local_part_needs_smtputf8)
{
    struct address a;

    parse_ok("josé@example.com", &a);
    cr_assert_str_eq(a.local, "josé");
    cr_assert_str_eq(a.envelope, "josé@example.com");
    cr_assert(a.needs_smtputf8);
    address_free(&a);

    parse_ok("用户@例子.广告", &a);
    cr_assert(a.needs_smtputf8);
    cr_assert_str_eq(a.envelope, "用户@xn--fsqu00a.xn--4rr70v");
    address_free(&a);

    parse_ok("ascii@example.com", &a);
    cr_assert_not(a.needs_smtputf8);
    address_free(&a);
}

Test(address, invalid_utf8_is_refused)
{
    parse_bad("jos\xe9@example.com");
    parse_bad("a@ex\xc3.com");
}

Test(address, line_breaks_and_angle_brackets_are_refused)
{
    parse_bad("ada@example.com\r\nRCPT TO:<evil@example.net>");
    parse_bad("ada@example.com\n");
    parse_bad("ada\r@example.com");
    parse_bad("<ada@example.com>");
    parse_bad("ada>@example.com");
    parse_bad("ada@exa<mple.com");
}

Test(address, nul_ends_the_text)
{
    struct address a;
    static const char text[] = "ada@example.com\0@evil.example";

    /* a C string cannot carry a NUL: whatever follows one is never seen */
    parse_ok(text, &a);
    cr_assert_str_eq(a.envelope, "ada@example.com");
    address_free(&a);
}

Test(address, address_literals)
{
    struct address a;

    parse_ok("postmaster@[192.0.2.1]", &a);
    cr_assert_str_eq(a.domain, "[192.0.2.1]");
    cr_assert_str_eq(a.envelope, "postmaster@[192.0.2.1]");
    address_free(&a);

    parse_ok("postmaster@[IPv6:2001:db8::1]", &a);
    cr_assert_str_eq(a.envelope, "postmaster@[IPv6:2001:db8::1]");
    address_free(&a);
}

Test(address, bad_address_literals_are_refused)
{
    parse_bad("a@[192.0.2.256]");
    parse_bad("a@[192.0.2]");
    parse_bad("a@[2001:db8::1]"); /* IPv6 needs its tag */
    parse_bad("a@[IPv6:192.0.2.1.1]");
    parse_bad("a@[192.0.2.1");
    parse_bad("a@[]");
}

Test(address, mailbox_bare_and_bracketed)
{
    struct address a;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(address_parse_mailbox("ada@example.com", &a, &err), 0, "%s", err.text);
    cr_assert_null(a.display);
    cr_assert_str_eq(a.envelope, "ada@example.com");
    address_free(&a);

    cr_assert_eq(address_parse_mailbox("<ada@example.com>", &a, &err), 0, "%s", err.text);
    cr_assert_null(a.display, "no name before '<' means no display name");
    cr_assert_str_eq(a.envelope, "ada@example.com");
    address_free(&a);
}

Test(address, mailbox_with_display_name)
{
    struct address a;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(address_parse_mailbox("Ada Lovelace <ada@example.com>", &a, &err), 0, "%s",
                 err.text);
    cr_assert_str_eq(a.display, "Ada Lovelace");
    cr_assert_str_eq(a.local, "ada");
    cr_assert_str_eq(a.domain, "example.com");
    cr_assert_str_eq(a.envelope, "ada@example.com");
    address_free(&a);

    cr_assert_eq(address_parse_mailbox("  Acme News\t<news@acme.example>  ", &a, &err), 0, "%s",
                 err.text);
    cr_assert_str_eq(a.display, "Acme News", "surrounding blanks are trimmed");
    cr_assert_str_eq(a.envelope, "news@acme.example");
    address_free(&a);
}

Test(address, mailbox_with_quoted_display_name_and_escapes)
{
    struct address a;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(address_parse_mailbox("\"Lovelace, Ada\" <ada@example.com>", &a, &err), 0, "%s",
                 err.text);
    cr_assert_str_eq(a.display, "Lovelace, Ada", "quotes removed");
    address_free(&a);

    cr_assert_eq(
        address_parse_mailbox("\"Ada \\\"The Countess\\\" \\\\ L.\" <ada@example.com>", &a, &err),
        0, "%s", err.text);
    cr_assert_str_eq(a.display, "Ada \"The Countess\" \\ L.", "quoted pairs unescaped");
    address_free(&a);

    cr_assert_eq(address_parse_mailbox("\"Acme <News>\" <news@acme.example>", &a, &err), 0, "%s",
                 err.text);
    cr_assert_str_eq(a.display, "Acme <News>");
    cr_assert_str_eq(a.envelope, "news@acme.example");
    address_free(&a);
}

Test(address, mailbox_with_utf8_name_and_idn)
{
    struct address a;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(address_parse_mailbox("René Descartes <rené@пример.рф>", &a, &err), 0, "%s",
                 err.text);
    cr_assert_str_eq(a.display, "René Descartes");
    cr_assert_str_eq(a.envelope, "rené@xn--e1afmkfd.xn--p1ai");
    cr_assert(a.needs_smtputf8);
    address_free(&a);
}

Test(address, bad_mailboxes_are_refused)
{
    mailbox_bad("Ada <ada@example.com");
    mailbox_bad("Ada <ada@example.com> trailing");
    mailbox_bad("Ada <>");
    mailbox_bad("Ada <ada@localhost>");
    mailbox_bad("Ada\r\nBcc: evil@example.net <ada@example.com>");
    mailbox_bad("Ada <ada@example.com>\r\nBcc: evil@example.net");
    mailbox_bad("Ada <ada@example.com\n>");
    mailbox_bad("Gr\xe9"
                "ce <grace@example.org>");
    mailbox_bad("Ada ada@example.com");
}

Test(address, error_names_the_address)
{
    struct address a;
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(address_parse("not-an-address", &a, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "not-an-address") != NULL, "%s", err.text);
}

Test(address, free_is_null_safe_and_zeroes)
{
    struct address a;
    struct address zero;

    address_free(NULL);
    memset(&zero, 0, sizeof zero);
    address_free(&zero);
    parse_ok("ada@example.com", &a);
    address_free(&a);
    cr_assert_null(a.local);
    cr_assert_null(a.envelope);
    address_free(&a);
}
