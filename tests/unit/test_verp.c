/*
 * Unit tests for core/verp: tokens made, read back and checked; a forged or altered
 * token never verifies; templates and the addresses made from them.
 */
#include "../../core/verp.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char secret[] = "0123456789abcdef-test-secret";
#define SECRET_LEN (sizeof secret - 1)

static void token_ok(const char *campaign, uint64_t row, char out[VERP_TOKEN_SIZE])
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(verp_token(secret, SECRET_LEN, campaign, row, out, &err), 0, "%s", err.text);
}

static bool verifies(const char *token, const char *campaign)
{
    struct verp_claim claim;

    if (verp_parse(token, strlen(token), &claim) < 0)
        return false;
    return verp_verify(secret, SECRET_LEN, campaign, &claim);
}

/* The same bytes as an independent implementation (Python's hmac and base64) gives. */
Test(verp, known_answer)
{
    char token[VERP_TOKEN_SIZE];

    token_ok("november-news", 42, token);
    cr_assert_str_eq(token, "aeaaaaaaflqfvbvbidpw7e4qae3q");
}

Test(verp, a_token_reads_back_and_verifies)
{
    static const uint64_t rows[] = {1, 2, 255, 256, 65536, 1000000, VERP_ROW_MAX};
    char token[VERP_TOKEN_SIZE];
    struct verp_claim claim;
    size_t i, k;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        token_ok("november-news", rows[i], token);
        cr_assert_eq(strlen(token), VERP_TOKEN_LEN);
        for (k = 0; token[k] != '\0'; k++)
            cr_assert(islower((unsigned char)token[k]) || (token[k] >= '2' && token[k] <= '7'),
                      "'%c' in %s", token[k], token);
        cr_assert_eq(verp_parse(token, strlen(token), &claim), 0);
        cr_assert_eq(claim.row, rows[i]);
        cr_assert(verp_verify(secret, SECRET_LEN, "november-news", &claim));
    }
}

Test(verp, case_folded_by_a_mail_system_still_verifies)
{
    char token[VERP_TOKEN_SIZE];
    size_t k;

    token_ok("november-news", 7, token);
    for (k = 0; token[k] != '\0'; k++)
        token[k] = (char)toupper((unsigned char)token[k]);
    cr_assert(verifies(token, "november-news"));
}

Test(verp, another_secret_or_campaign_does_not_verify)
{
    char token[VERP_TOKEN_SIZE];
    struct verp_claim claim;
    static const char other[] = "0123456789abcdef-test-secreT";

    token_ok("november-news", 42, token);
    cr_assert_eq(verp_parse(token, strlen(token), &claim), 0);
    cr_assert_not(verp_verify(other, sizeof other - 1, "november-news", &claim));
    cr_assert_not(verp_verify(secret, SECRET_LEN, "december-news", &claim));
    cr_assert_not(verp_verify(secret, 8, "november-news", &claim), "a secret too short");
}

/* Every token one character away from a real one: none verifies. */
Test(verp, every_altered_token_is_refused)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz234567";
    char token[VERP_TOKEN_SIZE], altered[VERP_TOKEN_SIZE];
    size_t k, c, tried = 0;

    token_ok("november-news", 42, token);
    for (k = 0; k < VERP_TOKEN_LEN; k++)
        for (c = 0; c < sizeof chars - 1; c++) {
            if (chars[c] == token[k])
                continue;
            memcpy(altered, token, sizeof altered);
            altered[k] = chars[c];
            cr_assert_not(verifies(altered, "november-news"), "%s verifies", altered);
            tried++;
        }
    cr_assert_eq(tried, VERP_TOKEN_LEN * 31);
}

/* A forger who knows the format but not the secret: its tokens read, and are refused. */
Test(verp, a_forged_token_is_refused)
{
    static const char guess[] = "a-guessed-secret-of-enough-length";
    char forged[VERP_TOKEN_SIZE];
    struct blast_error err;
    struct verp_claim claim;

    blast_error_clear(&err);
    cr_assert_eq(verp_token(guess, sizeof guess - 1, "november-news", 42, forged, &err), 0);
    cr_assert_eq(verp_parse(forged, strlen(forged), &claim), 0, "it has the right form");
    cr_assert_eq(claim.row, 42);
    cr_assert_not(verp_verify(secret, SECRET_LEN, "november-news", &claim));
}

Test(verp, what_is_not_a_token)
{
    struct verp_claim claim;
    char token[VERP_TOKEN_SIZE];

    token_ok("n", 1, token);
    cr_assert_eq(verp_parse(token, VERP_TOKEN_LEN - 1, &claim), BLAST_EINVAL, "too short");
    cr_assert_eq(verp_parse("", 0, &claim), BLAST_EINVAL);
    cr_assert_eq(verp_parse("aeaaaaaaflqfvbvbidpw7e4qae3!", VERP_TOKEN_LEN, &claim), BLAST_EINVAL);
    cr_assert_eq(verp_parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaa", VERP_TOKEN_LEN, &claim), BLAST_EINVAL,
                 "version 0");
    /* version 1, row 0 */
    cr_assert_eq(verp_parse("aeaaaaaaaaaaaaaaaaaaaaaaaaaa", VERP_TOKEN_LEN, &claim), BLAST_EINVAL);
    /* the last character's unused bits set: another spelling of a real token */
    memcpy(token, "aeaaaaaaflqfvbvbidpw7e4qae3q", sizeof token);
    token[VERP_TOKEN_LEN - 1] = 'r';
    cr_assert_eq(verp_parse(token, VERP_TOKEN_LEN, &claim), BLAST_EINVAL);
}

Test(verp, rows_and_secrets_out_of_range)
{
    char token[VERP_TOKEN_SIZE];
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(verp_token(secret, SECRET_LEN, "n", 0, token, &err), BLAST_EINVAL);
    cr_assert_eq(verp_token(secret, SECRET_LEN, "n", VERP_ROW_MAX + 1, token, &err), BLAST_EINVAL);
    blast_error_clear(&err);
    cr_assert_eq(verp_token(secret, VERP_SECRET_MIN - 1, "n", 1, token, &err), BLAST_EINVAL);
    cr_assert(strstr(err.text, "at least 16 bytes") != NULL, "%s", err.text);
    cr_assert_null(strstr(err.text, secret), "the secret is never in a message");
}

static void template_bad(const char *tmpl, const char *says)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(verp_template_check(tmpl, &err), BLAST_EINVAL, "%s", tmpl);
    cr_assert(strstr(err.text, says) != NULL, "%s: '%s'", tmpl, err.text);
}

Test(verp, templates)
{
    struct blast_error err;

    blast_error_clear(&err);
    cr_assert_eq(verp_template_check("bounces+{token}@acme.example", &err), 0, "%s", err.text);
    cr_assert_eq(verp_template_check("{token}@bounces.acme.example", &err), 0, "%s", err.text);
    template_bad("bounces@acme.example", "needs {token}");
    template_bad("b+{token}+{token}@acme.example", "once");
    template_bad("bounces@{token}.acme.example", "before the '@'");
    template_bad("bounces+{token}", "before the '@'");
    template_bad("a-very-long-prefix-for-bounces-that-goes-on+{token}@acme.example", "64");
}

Test(verp, addresses_made_and_found)
{
    const char *tmpl = "bounces+{token}@acme.example";
    char token[VERP_TOKEN_SIZE], address[128], found[64];
    struct blast_error err;

    token_ok("november-news", 42, token);
    blast_error_clear(&err);
    cr_assert_eq(verp_address(tmpl, token, address, sizeof address, &err), 0, "%s", err.text);
    cr_assert_str_eq(address, "bounces+aeaaaaaaflqfvbvbidpw7e4qae3q@acme.example");
    cr_assert_eq(verp_find_token(tmpl, address, found, sizeof found), VERP_TOKEN_LEN);
    cr_assert_str_eq(found, token);
    /* a mail system may fold the case of what it hands back */
    cr_assert_eq(verp_find_token(tmpl, "BOUNCES+AEAAAAAAFLQFVBVBIDPW7E4QAE3Q@Acme.Example", found,
                                 sizeof found),
                 VERP_TOKEN_LEN);
    cr_assert(verifies(found, "november-news"));
    cr_assert_eq(verp_find_token(tmpl, "postmaster@acme.example", found, sizeof found), 0);
    cr_assert_eq(verp_find_token(tmpl, "bounces+@acme.example", found, sizeof found), 0);
    cr_assert_eq(verp_find_token(tmpl, "bounces+x@acme.example.evil", found, sizeof found), 0);
    cr_assert_eq(verp_address(tmpl, token, address, 20, &err), BLAST_EINVAL, "too small");
}
