/*
 * Unit tests for core/url: the webhook URL's rules, and reasons that never quote it.
 */
#include "../../core/url.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define HTTP_REMOTE                                                                                \
    "'url' must be an https:// address: http:// is only allowed to a loopback host "               \
    "(127.0.0.1, ::1, localhost)"
#define NOT_HTTP "'url' must be an https:// address (http:// only to a loopback host)"
#define NO_HOST  "'url' must name its host right after the '//', and hold no '\\'"
#define NOT_ASCII                                                                                  \
    "'url' may hold printable ASCII only, without spaces (percent-encode the rest; "               \
    "international host names in their xn-- form)"
#define USERINFO                                                                                   \
    "'url' must not hold a user name or password: put the credentials in an environment "          \
    "variable named by 'authorization_env'"

Test(url, url_https_or_http_to_loopback)
{
    static const struct {
        const char *url;
        bool loopback;
    } ok[] = {
        {"http://127.0.0.1:8080/hook", true},
        {"http://localhost/hook", true},
        {"http://[::1]:9/hook", true},
        {"HTTP://127.0.0.2/hook", true},
        {"https://hooks.example/", false},
        {"https://hooks.example:8443/a?b=c", false},
        {"https://127.0.0.1.example/hook", false},
    };
    char why[BLAST_ERROR_TEXT_MAX];
    size_t i;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bool loopback = !ok[i].loopback;

        why[0] = '\0';
        cr_assert_eq(url_check_webhook(ok[i].url, &loopback, why, sizeof why), 0, "%s: %s",
                     ok[i].url, why);
        cr_assert_eq(loopback, ok[i].loopback, "%s", ok[i].url);
    }
}

Test(url, url_refused_with_its_reason)
{
    static const char *const cases[][2] = {
        {"http://hooks.example/hook", HTTP_REMOTE},
        {"http://127.0.0.1.example/hook", HTTP_REMOTE},
        {"http://10.0.0.1/hook", HTTP_REMOTE},
        {"ftp://127.0.0.1/hook", NOT_HTTP},
        {"hooks.example/hook", NOT_HTTP},
        {"https:///hook", NO_HOST},
        {"https://a.example\\@b.example/", NO_HOST},
        {"https://hooks.example/a b", NOT_ASCII},
        {"https://caf\xc3\xa9.example/", NOT_ASCII},
        {"https://u:pw@hooks.example/", USERINFO},
        {"https://u@hooks.example/", USERINFO},
    };
    char why[BLAST_ERROR_TEXT_MAX];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool loopback;

        why[0] = '\0';
        cr_assert_eq(url_check_webhook(cases[i][0], &loopback, why, sizeof why), BLAST_EINVAL,
                     "%s accepted", cases[i][0]);
        cr_assert_str_eq(why, cases[i][1], "%s", cases[i][0]);
    }
}

Test(url, url_reasons_never_quote_the_url)
{
    /* a password, a query key, a host: named, never repeated */
    static const char *const cases[] = {
        "https://u:tok3n@hooks.example/x",  "https://hooks.example/x?key=tok3n zz",
        "http://hooks.example/x?key=tok3n", "https://hooks.example:99999/x?key=tok3n",
        "https://tok3n.example:x/",
    };
    char why[BLAST_ERROR_TEXT_MAX];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool loopback;

        why[0] = '\0';
        cr_assert_eq(url_check_webhook(cases[i], &loopback, why, sizeof why), BLAST_EINVAL,
                     "%s accepted", cases[i]);
        cr_assert_neq(why[0], '\0', "%s", cases[i]);
        cr_assert_null(strstr(why, "tok3n"), "%s", why);
    }
    cr_assert_eq(
        url_check_webhook("https://hooks.example:99999/x", &(bool){false}, why, sizeof why),
        BLAST_EINVAL);
    cr_assert_eq(strncmp(why, "'url' is not a valid URL (", 26), 0, "%s", why);
}

/* ---- the settings outside the campaign file ------------------------------------------ */
