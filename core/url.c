/*
 * url - the rules a webhook URL must meet, checked without the network. See url.h.
 */
#include "url.h"
#include "conn.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int refuse(char *why, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* rc, with the reason formatted into why. */
static int refuse(char *why, size_t size, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return rc;
}

/*
 * Parsed by libcurl itself, so that what is checked here is what the request will
 * use. The reasons never quote the URL: its query may hold a secret.
 */
int url_check_webhook(const char *url, bool *loopback, char *why, size_t size)
{
    CURLU *u = NULL;
    CURLUcode uc;
    char *host = NULL, *user = NULL, *password = NULL;
    const char *p;
    bool http;
    int rc = 0;

    *loopback = false;
    for (p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return refuse(why, size, BLAST_EINVAL,
                          "'url' may hold printable ASCII only, without spaces (percent-encode "
                          "the rest; international host names in their xn-- form)");
    http = strncasecmp(url, "http://", 7) == 0;
    if (!http && strncasecmp(url, "https://", 8) != 0)
        return refuse(why, size, BLAST_EINVAL,
                      "'url' must be an https:// address (http:// only to a loopback host)");
    /* libcurl would read "https:///x" as host x, and some parsers take '\' for '/' */
    if (url[http ? 7 : 8] == '/' || strchr(url, '\\') != NULL)
        return refuse(why, size, BLAST_EINVAL,
                      "'url' must name its host right after the '//', and hold no '\\'");
    u = curl_url();
    if (u == NULL)
        return refuse(why, size, BLAST_ENOMEM, "out of memory");
    if ((uc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK) {
        rc = uc == CURLUE_OUT_OF_MEMORY
                 ? refuse(why, size, BLAST_ENOMEM, "out of memory")
                 : refuse(why, size, BLAST_EINVAL, "'url' is not a valid URL (%s)",
                          curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        rc = refuse(why, size, BLAST_EINVAL,
                    "'url' must not hold a user name or password: put the credentials in an "
                    "environment variable named by 'authorization_env'");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rc = refuse(why, size, BLAST_EINVAL, "'url' names no host");
        goto out;
    }
    *loopback = conn_host_is_loopback(host);
    /* the summary must not cross a network in the clear */
    if (http && !*loopback)
        rc = refuse(why, size, BLAST_EINVAL,
                    "'url' must be an https:// address: http:// is only allowed to a loopback "
                    "host (127.0.0.1, ::1, localhost)");
out:
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}
