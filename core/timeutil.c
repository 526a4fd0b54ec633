/*
 * timeutil - monotonic deadlines and date formatting. See timeutil.h.
 */
#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

int64_t timeutil_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timeutil_stamp timeutil_now(void)
{
    struct timeval tv;
    struct timeutil_stamp s;

    gettimeofday(&tv, NULL);
    s.sec = tv.tv_sec;
    s.usec = (long)tv.tv_usec;
    return s;
}

void timeutil_rfc5322(time_t t, char *out, size_t size)
{
    /* Day and month names are fixed English tokens (RFC 5322 §3.3), not locale text. */
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    long off;
    char sign;

    localtime_r(&t, &tm);
    off = tm.tm_gmtoff / 60;
    sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, size, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60,
             off % 60);
}

static void two(char *at, int v)
{
    at[0] = (char)('0' + v / 10 % 10);
    at[1] = (char)('0' + v % 10);
}

void timeutil_rfc3339(struct timeutil_stamp t, char *out, size_t size)
{
    struct tm tm;

    char text[25];
    int year, ms = (int)(t.usec / 1000);

    gmtime_r(&t.sec, &tm);
    year = tm.tm_year + 1900;
    if (year < 0 || year > 9999 || ms < 0 || ms > 999) {
        snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        return;
    }
    /* by hand: it runs several times for every message (journal, report, history) */
    text[0] = (char)('0' + year / 1000);
    text[1] = (char)('0' + year / 100 % 10);
    text[2] = (char)('0' + year / 10 % 10);
    text[3] = (char)('0' + year % 10);
    text[4] = '-';
    two(text + 5, tm.tm_mon + 1);
    text[7] = '-';
    two(text + 8, tm.tm_mday);
    text[10] = 'T';
    two(text + 11, tm.tm_hour);
    text[13] = ':';
    two(text + 14, tm.tm_min);
    text[16] = ':';
    two(text + 17, tm.tm_sec);
    text[19] = '.';
    text[20] = (char)('0' + ms / 100);
    two(text + 21, ms % 100);
    text[23] = 'Z';
    text[24] = '\0';
    if (size > 0) {
        size_t n = size - 1 < 24 ? size - 1 : 24;
        memcpy(out, text, n);
        out[n] = '\0';
    }
}

int timeutil_parse_rfc3339(const char *s, struct timeutil_stamp *out)
{
    struct tm tm;
    int ms = 0, n = 0;

    memset(&tm, 0, sizeof tm);
    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 ||
        s[n] != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    out->sec = timegm(&tm);
    out->usec = ms * 1000L;
    return out->sec == (time_t)-1 ? -1 : 0;
}
