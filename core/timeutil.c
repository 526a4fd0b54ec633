/*
 * timeutil - monotonic deadlines and date formatting. See timeutil.h.
 */
#include "timeutil.h"

#include <stdbool.h>
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

/* Days from 1970-01-01 to y-m-d (m 1 to 12) of the proleptic Gregorian calendar, as timegm()
 * counts. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/*
 * Exactly the form timeutil_rfc3339() writes, read without sscanf() and timegm(),
 * which took a quarter of the time of reading a report back: every recipient has
 * three times. The fields are what sscanf() would read from that form, and out of
 * range ones (a month 13, a second 60) carry over as timegm() carries them.
 */
static bool parse_canonical(const char *s, struct timeutil_stamp *out)
{
    int y, mo, d, h, mi, sec, ms;
    int64_t t;

    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[23] != 'Z' || s[24] != '\0' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
        !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec) || !digits(s + 20, 3, &ms))
        return false;
    mo -= 1; /* 0-based, -1 for "00": December of the year before */
    if (mo < 0) {
        y -= 1;
        mo += 12;
    }
    y += mo / 12;
    mo %= 12;
    t = (days_from_civil(y, mo + 1, 1) + d - 1) * 86400 + (int64_t)h * 3600 + mi * 60 + sec;
    out->sec = (time_t)t;
    out->usec = ms * 1000L;
    return true;
}

int timeutil_parse_rfc3339(const char *s, struct timeutil_stamp *out)
{
    struct tm tm;
    int ms = 0, n = 0;

    if (s != NULL && strnlen(s, 25) == 24 && parse_canonical(s, out))
        return out->sec == (time_t)-1 ? -1 : 0;
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

int64_t timeutil_days_from_civil(int year, int month, int day)
{
    /* H. Hinnant's days_from_civil: eras of 400 years, years starting in March */
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}
