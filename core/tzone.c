/*
 * tzone - IANA time zones from TZif files (RFC 8536), without tzset(). See tzone.h.
 *
 * A zone is its transitions (UTC instants, strictly ascending) each with the index of
 * its local time type, the types, and the footer's POSIX TZ rule for instants on or
 * after the last transition (RFC 8536 §3.2). Debian's files may be "slim", with no
 * transitions beyond the point the rule takes over, so the rule is what says
 * today's offsets. A POSIX TZ string from $TZ is a zone with no transitions and that
 * rule alone.
 */
#include "tzone.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Real files are under 10 KiB; anything much larger is not a zone. */
#define FILE_MAX (256 * 1024)
/* RFC 8536 §3.2 asks utoff to be within -89999..93599: offsets beyond a day are not
 * time zones, and the searches of tzone_utc() rely on this bound. */
#define UTOFF_MIN (-89999)
#define UTOFF_MAX 93599
/* About ±10^9 years: room for any offset and rule arithmetic without overflow. */
#define UTC_LIMIT ((int64_t)1 << 55)

#define DAY 86400

/* What read_block() says when an allocation fails: not the file's fault. */
static const char oom[] = "out of memory";

struct ttype {
    int32_t utoff;
    bool isdst;
    char abbr[16];
};

/* A date of a POSIX TZ rule (RFC 8536 §3.3): Jn, n or Mm.w.d, and the local time. */
struct rule {
    char kind; /* 'J': Julian day 1-365 without Feb 29; 'N': 0-365; 'M': month.week.day */
    int a, b, c;
    int32_t time; /* seconds after local midnight, -167 to 167 hours (§3.3.1) */
};

struct posix {
    struct ttype std, dst;
    bool has_dst;
    struct rule start, end; /* start: into DST, in standard time; end: out, in DST */
};

struct tzone {
    char name[TZONE_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;
    uint8_t *idx;
    size_t ntypes;
    struct ttype *types;
    bool has_rule;
    struct posix rule;
};

/* ---- calendar -------------------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days from 1970-01-01 to y-m-d (m 1-12), proleptic Gregorian (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floordiv(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floordiv(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && leap(y) ? 29 : n[m - 1];
}

static int64_t clamp(int64_t t)
{
    return t < -UTC_LIMIT ? -UTC_LIMIT : t > UTC_LIMIT ? UTC_LIMIT : t;
}

/* ---- POSIX TZ strings (RFC 8536 §3.3) ---------------------------------------------- */

/* A designation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static const char *parse_abbr(const char *s, char out[16])
{
    size_t n = 0;

    if (*s == '<') {
        s++;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-')
            n++;
        if (s[n] != '>' || n < 3 || n > 15)
            return NULL;
        memcpy(out, s, n);
        out[n] = '\0';
        return s + n + 1;
    }
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
        n++;
    if (n < 3 || n > 15)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return s + n;
}

static const char *parse_num(const char *s, int digits_max, int max, int *out)
{
    int v = 0, n = 0;

    while (*s >= '0' && *s <= '9' && n < digits_max) {
        v = v * 10 + (*s++ - '0');
        n++;
    }
    if (n == 0 || v > max)
        return NULL;
    *out = v;
    return s;
}

/* [+-]hh[:mm[:ss]], hours up to hmax. */
static const char *parse_hms(const char *s, int hmax, int32_t *out)
{
    int sign = 1, h, m = 0, sec = 0;

    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    s = parse_num(s, 3, hmax, &h);
    if (s != NULL && *s == ':') {
        s = parse_num(s + 1, 2, 59, &m);
        if (s != NULL && *s == ':')
            s = parse_num(s + 1, 2, 59, &sec);
    }
    if (s == NULL)
        return NULL;
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *parse_rule(const char *s, struct rule *r)
{
    r->time = 2 * 3600; /* POSIX's default: 02:00 */
    r->b = r->c = 0;
    if (*s == 'J') {
        r->kind = 'J';
        s = parse_num(s + 1, 3, 365, &r->a);
        if (s != NULL && r->a < 1)
            return NULL;
    } else if (*s == 'M') {
        r->kind = 'M';
        s = parse_num(s + 1, 2, 12, &r->a);
        if (s == NULL || r->a < 1 || *s != '.')
            return NULL;
        s = parse_num(s + 1, 1, 5, &r->b);
        if (s == NULL || r->b < 1 || *s != '.')
            return NULL;
        s = parse_num(s + 1, 1, 6, &r->c);
    } else {
        r->kind = 'N';
        s = parse_num(s, 3, 365, &r->a);
    }
    if (s != NULL && *s == '/')
        s = parse_hms(s + 1, 167, &r->time); /* RFC 8536 §3.3.1: -167 to 167 hours */
    return s;
}

/*
 * std offset [dst [offset] [,start[/time],end[/time]]]. Offsets are west of UTC in the
 * string ("CET-1" is UTC+1), kept east of UTC here like the types of the file.
 */
static bool parse_posix(const char *s, struct posix *p)
{
    int32_t off;

    memset(p, 0, sizeof *p);
    s = parse_abbr(s, p->std.abbr);
    if (s == NULL || (s = parse_hms(s, 24, &off)) == NULL)
        return false;
    p->std.utoff = -off;
    if (*s == '\0')
        return true;
    s = parse_abbr(s, p->dst.abbr);
    if (s == NULL)
        return false;
    p->has_dst = true;
    p->dst.isdst = true;
    p->dst.utoff = p->std.utoff + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = parse_hms(s, 24, &off)) == NULL)
            return false;
        p->dst.utoff = -off;
    }
    if (*s == '\0') {
        /* no rule: the US rules, as the C library's default (posixrules) has them */
        p->start = (struct rule){'M', 3, 2, 0, 7200};
        p->end = (struct rule){'M', 11, 1, 0, 7200};
        return true;
    }
    if (*s != ',' || (s = parse_rule(s + 1, &p->start)) == NULL || *s != ',' ||
        (s = parse_rule(s + 1, &p->end)) == NULL)
        return false;
    return *s == '\0';
}

/* The local midnight (in seconds since the epoch, as if local time were UTC) of r's day
 * in year y, plus its time. */
static int64_t rule_local(const struct rule *r, int64_t y)
{
    int64_t days;

    if (r->kind == 'J') {
        /* Julian 1-365: February 29 is never counted, so day 60 is always March 1 */
        days = days_from_civil(y, 1, 1) + r->a - 1 + (leap(y) && r->a >= 60);
    } else if (r->kind == 'N') {
        days = days_from_civil(y, 1, 1) + r->a;
    } else {
        int64_t first = days_from_civil(y, r->a, 1);
        int wday = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
        int d = 1 + (r->c - wday + 7) % 7 + (r->b - 1) * 7;

        while (d > month_days(y, r->a))
            d -= 7; /* week 5: the last such day of the month */
        days = first + d - 1;
    }
    return days * DAY + r->time;
}

/* The year (UTC) of an instant. */
static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;

    civil_from_days(floordiv(t, DAY), &y, &m, &d);
    return y;
}

/*
 * The rule's changes in the years around t's: events[2i] into DST, events[2i+1] out
 * of it. The start is given in standard time, the end in DST (RFC 8536 §3.3).
 */
static void rule_events(const struct posix *p, int64_t t, int64_t events[8])
{
    int64_t y = year_of(t) - 1;
    int i;

    for (i = 0; i < 4; i++) {
        events[2 * i] = rule_local(&p->start, y + i) - p->std.utoff;
        events[2 * i + 1] = rule_local(&p->end, y + i) - p->dst.utoff;
    }
}

/*
 * The type in effect at t: that of the last change at or before t. A start and an end
 * at the same instant (DST all year, "EST5EDT,0/0,J365/25") leave DST on.
 */
static const struct ttype *rule_type(const struct posix *p, int64_t t)
{
    int64_t events[8], best = INT64_MIN;
    bool dst = false;
    int i;

    if (!p->has_dst)
        return &p->std;
    rule_events(p, t, events);
    for (i = 0; i < 8; i++) {
        if (events[i] > t)
            continue;
        if (events[i] > best || (events[i] == best && i % 2 == 0)) {
            best = events[i];
            dst = i % 2 == 0;
        }
    }
    return dst ? &p->dst : &p->std;
}

/* ---- lookups ------------------------------------------------------------------------- */

/* The index of the last transition at or before t; t is at or after trans[0]. */
static size_t last_at_or_before(const struct tzone *z, int64_t t)
{
    size_t lo = 0, hi = z->ntrans; /* trans[lo] <= t < trans[hi] */

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static const struct ttype *type_at(const struct tzone *z, int64_t t)
{
    /* RFC 8536 §3.2: type 0 before the first transition; the footer's rule on and after
     * the last one, or for all time when there are none; else the last type stays */
    if (z->ntrans > 0 && t < z->trans[0])
        return &z->types[0];
    if (z->ntrans > 0 && (t < z->trans[z->ntrans - 1] || !z->has_rule))
        return &z->types[z->idx[last_at_or_before(z, t)]];
    if (z->has_rule)
        return rule_type(&z->rule, t);
    return &z->types[0];
}

int64_t tzone_next_change(const struct tzone *z, int64_t utc)
{
    int64_t t = clamp(utc), events[8], best = INT64_MAX;
    int i;

    if (z->ntrans > 0 && t < z->trans[z->ntrans - 1])
        return t < z->trans[0] ? z->trans[0] : z->trans[last_at_or_before(z, t) + 1];
    if (!z->has_rule || !z->rule.has_dst || t >= UTC_LIMIT)
        return INT64_MAX;
    rule_events(&z->rule, t, events);
    for (i = 0; i < 8; i++)
        if (events[i] > t && events[i] < best)
            best = events[i];
    return best;
}

void tzone_local(const struct tzone *z, int64_t utc, struct tzone_tm *out)
{
    int64_t t = clamp(utc), local, days, y;
    const struct ttype *ty = type_at(z, t);

    local = t + ty->utoff;
    days = floordiv(local, DAY);
    civil_from_days(days, &y, &out->month, &out->day);
    out->year = (int)y;
    local -= days * DAY;
    out->hour = (int)(local / 3600);
    out->minute = (int)(local / 60 % 60);
    out->second = (int)(local % 60);
    out->wday = (int)((days % 7 + 11) % 7);
    out->gmtoff = ty->utoff;
    out->isdst = ty->isdst;
    memcpy(out->abbr, ty->abbr, sizeof out->abbr);
}

int64_t tzone_utc(const struct tzone *z, int year, int month, int day, int hour, int minute)
{
    int64_t y = (int64_t)year + floordiv((int64_t)month - 1, 12);
    int m = (int)((int64_t)month - 1 - floordiv((int64_t)month - 1, 12) * 12) + 1;
    int64_t local = clamp((days_from_civil(y, m, 1) + day - 1) * DAY + (int64_t)hour * 3600 +
                          (int64_t)minute * 60);
    int64_t p = local - 2 * DAY, end = local + 2 * DAY, gap = INT64_MIN;
    int32_t before = 0;
    bool first = true;

    /*
     * Any instant whose wall clock reads local lies within two days of it (offsets are
     * under 26 hours), so walk the stretches of constant type in that range: in each,
     * local - utoff is the answer when it falls inside. The first such is the earliest
     * reading. When none does, local lies in a gap: the transition whose jump passes
     * over it is where the clock goes on.
     */
    while (p <= end) {
        const struct ttype *ty = type_at(z, p);
        int64_t next = tzone_next_change(z, p), t = local - ty->utoff;

        if (t >= p && t < next)
            return t;
        if (!first && gap == INT64_MIN && p + before <= local && local < p + ty->utoff)
            gap = p;
        before = ty->utoff;
        first = false;
        if (next == INT64_MAX)
            break;
        p = next;
    }
    return gap != INT64_MIN ? gap : local - type_at(z, local)->utoff;
}

const char *tzone_name(const struct tzone *z)
{
    return z->name;
}

void tzone_free(struct tzone *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->idx);
    free(z->types);
    free(z);
}

/* ---- TZif (RFC 8536 §3) -------------------------------------------------------------- */

struct header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The header at p (44 bytes, §3.1), or why not. */
static const char *read_header(const unsigned char *p, size_t len, struct header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return "not a TZif file";
    h->version = (char)p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->version != 0 && (h->version < '2' || h->version > '9'))
        return "unknown TZif version";
    if (h->isutcnt > FILE_MAX || h->isstdcnt > FILE_MAX || h->leapcnt > FILE_MAX ||
        h->timecnt > FILE_MAX || h->typecnt > FILE_MAX || h->charcnt > FILE_MAX)
        return "counts larger than the file";
    return NULL;
}

/* The length of the data block after a header, for times of tsize bytes (§3.2). */
static size_t block_size(const struct header *h, size_t tsize)
{
    return h->timecnt * tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* The block's transitions and types into z, checked (§3.2), or why not. */
static const char *read_block(const unsigned char *p, const struct header *h, size_t tsize,
                              struct tzone *z)
{
    const unsigned char *idx = p + h->timecnt * tsize, *types = idx + h->timecnt;
    const char *chars = (const char *)(types + h->typecnt * 6);
    size_t i;

    if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0)
        return "no local time types";
    if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return "inconsistent counts";
    z->ntrans = h->timecnt;
    z->ntypes = h->typecnt;
    z->trans = malloc((h->timecnt > 0 ? h->timecnt : 1) * sizeof *z->trans);
    z->idx = malloc(h->timecnt > 0 ? h->timecnt : 1);
    z->types = calloc(h->typecnt, sizeof *z->types);
    if (z->trans == NULL || z->idx == NULL || z->types == NULL)
        return oom;
    for (i = 0; i < h->timecnt; i++) {
        z->trans[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return "transitions out of order";
        if (z->trans[i] < -UTC_LIMIT || z->trans[i] > UTC_LIMIT)
            return "transition out of range";
        if (idx[i] >= h->typecnt)
            return "transition to a type that does not exist";
        z->idx[i] = idx[i];
    }
    for (i = 0; i < h->typecnt; i++) {
        const unsigned char *t = types + i * 6;
        int32_t off = (int32_t)be32(t);
        const char *abbr = chars + t[5], *nul;
        size_t n;

        if (off < UTOFF_MIN || off > UTOFF_MAX)
            return "offset out of range";
        if (t[4] > 1 || t[5] >= h->charcnt)
            return "bad local time type";
        nul = memchr(abbr, '\0', h->charcnt - t[5]);
        if (nul == NULL)
            return "unterminated designation";
        n = (size_t)(nul - abbr);
        n = n < sizeof z->types[i].abbr ? n : sizeof z->types[i].abbr - 1;
        z->types[i].utoff = off;
        z->types[i].isdst = t[4] == 1;
        memcpy(z->types[i].abbr, abbr, n);
        z->types[i].abbr[n] = '\0';
    }
    return NULL;
}

/* The whole file's contents checked into z, or why not (oom: out of memory). */
static const char *read_tzif(const unsigned char *p, size_t len, struct tzone *z)
{
    struct header h;
    const char *why = read_header(p, len, &h);
    size_t size, flen;
    char footer[TZONE_NAME_MAX + 1];
    const unsigned char *nl;

    if (why != NULL)
        return why;
    size = block_size(&h, 4);
    if (size > len - 44)
        return "truncated";
    if (h.version == 0)
        return read_block(p + 44, &h, 4, z); /* version 1: the 32-bit data alone */
    /* versions 2 and later: skip the 32-bit data for the 64-bit data and the footer */
    p += 44 + size;
    len -= 44 + size;
    if ((why = read_header(p, len, &h)) != NULL)
        return why;
    size = block_size(&h, 8);
    if (size > len - 44)
        return "truncated";
    if ((why = read_block(p + 44, &h, 8, z)) != NULL)
        return why;
    p += 44 + size;
    len -= 44 + size;
    /* §3.3: the footer is a TZ string between two newlines, possibly empty */
    if (len < 2 || p[0] != '\n' || (nl = memchr(p + 1, '\n', len - 1)) == NULL)
        return "no footer";
    flen = (size_t)(nl - (p + 1));
    if (flen == 0)
        return NULL;
    if (flen > TZONE_NAME_MAX)
        return "footer too long";
    memcpy(footer, p + 1, flen);
    footer[flen] = '\0';
    if (!parse_posix(footer, &z->rule))
        return "bad TZ string in the footer";
    z->has_rule = true;
    return NULL;
}

static struct tzone *zone_new(const char *name)
{
    struct tzone *z = calloc(1, sizeof *z);

    if (z != NULL)
        snprintf(z->name, sizeof z->name, "%s", name);
    return z;
}

/* UTC: what the C library falls back to, and what an empty TZ means. */
static int zone_utc(const char *name, struct tzone **out, struct blast_error *err)
{
    struct tzone *z = zone_new(name);

    if (z == NULL || (z->types = calloc(1, sizeof *z->types)) == NULL) {
        tzone_free(z);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    z->ntypes = 1;
    snprintf(z->types[0].abbr, sizeof z->types[0].abbr, "UTC");
    *out = z;
    return 0;
}

/*
 * Read the file at path as the zone called name. A missing file, or one that is not a
 * regular file or not TZif, is an unknown zone; a TZif file that does not check out is
 * a damaged one.
 */
static int load_path(const char *path, const char *name, struct tzone **out,
                     struct blast_error *err)
{
    unsigned char *data = NULL;
    struct tzone *z = NULL;
    struct stat st;
    const char *why;
    size_t got = 0;
    int fd, rc = 0;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG || errno == ELOOP)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "unknown time zone '%s'", name);
        return blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read time zone '%s': %s", name,
                               strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 44 || st.st_size > FILE_MAX) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "unknown time zone '%s'", name);
        goto out;
    }
    data = malloc((size_t)st.st_size);
    z = zone_new(name);
    if (data == NULL || z == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = blast_error_set(err, BLAST_EIO, path, 0, 0, "cannot read time zone '%s': %s", name,
                                 n < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        got += (size_t)n;
    }
    if (memcmp(data, "TZif", 4) != 0) {
        rc = blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "unknown time zone '%s'", name);
        goto out;
    }
    why = read_tzif(data, got, z);
    if (why == oom) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (why != NULL) {
        rc = blast_error_set(err, BLAST_EINVAL, path, 0, 0, "time zone '%s': damaged file: %s",
                             name, why);
        goto out;
    }
    *out = z;
    z = NULL;
out:
    close(fd);
    free(data);
    tzone_free(z);
    return rc;
}

/* Names are paths under the zone directory, but never outside it. */
static bool name_ok(const char *name)
{
    size_t i, n = strnlen(name, TZONE_NAME_MAX + 1);

    if (n == 0 || n > TZONE_NAME_MAX || name[0] == '/' || strstr(name, "..") != NULL)
        return false;
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+' || c == '.'))
            return false;
    }
    return true;
}

int tzone_load(const char *name, struct tzone **out, struct blast_error *err)
{
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];

    *out = NULL;
    if (name == NULL || !name_ok(name))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "unknown time zone '%.*s'",
                               TZONE_NAME_MAX, name != NULL ? name : "");
    if (dir == NULL || dir[0] == '\0')
        dir = "/usr/share/zoneinfo";
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "unknown time zone '%s'", name);
    return load_path(path, name, out, err);
}

/* /etc/localtime, named after the zone its link points to when it is one. */
static int load_etc_localtime(struct tzone **out, struct blast_error *err)
{
    static const char etc[] = "/etc/localtime";
    char target[PATH_MAX];
    const char *name = "localtime", *at;
    ssize_t n = readlink(etc, target, sizeof target - 1);
    struct stat st;

    if (n > 0) {
        target[n] = '\0';
        if ((at = strstr(target, "zoneinfo/")) != NULL && name_ok(at + 9))
            name = at + 9;
    }
    if (stat(etc, &st) != 0)
        return zone_utc("UTC", out, err);
    return load_path(etc, name, out, err);
}

int tzone_load_local(struct tzone **out, struct blast_error *err)
{
    const char *tz = getenv("TZ"), *name;
    struct blast_error quiet;
    struct tzone *z;
    struct posix p;
    int rc;

    *out = NULL;
    if (tz == NULL)
        return load_etc_localtime(out, err);
    name = tz[0] == ':' ? tz + 1 : tz;
    if (name[0] == '\0')
        return zone_utc("UTC", out, err);
    if (strnlen(name, TZONE_NAME_MAX + 1) > TZONE_NAME_MAX)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "TZ: unknown time zone '%.*s...'", 32,
                               name);
    if (name[0] == '/')
        return load_path(name, name, out, err);
    blast_error_clear(&quiet);
    rc = tzone_load(name, out, &quiet);
    if (rc != BLAST_EINVAL || strncmp(quiet.text, "unknown", 7) != 0 || tz[0] == ':') {
        if (rc != 0)
            blast_error_set(err, rc, quiet.source[0] != '\0' ? quiet.source : NULL, 0, 0, "TZ: %s",
                            quiet.text);
        return rc;
    }
    /* not a file: a POSIX TZ string, a zone with that rule alone */
    if (!parse_posix(name, &p))
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "TZ: unknown time zone '%s'", name);
    rc = zone_utc(name, &z, err);
    if (rc != 0)
        return rc;
    z->types[0] = p.std;
    z->rule = p;
    z->has_rule = true;
    *out = z;
    return 0;
}

/* ---- the cache ---------------------------------------------------------------------- */

struct slot {
    char *name;      /* NULL: empty */
    struct tzone *z; /* NULL: the name failed, with this error */
    int rc;
    char *why;
};

struct tzone_cache {
    struct slot *slots;
    size_t cap, used; /* cap a power of two, used at most half of it */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */

    while (*s != '\0') {
        h ^= (unsigned char)*s++;
        h *= 1099511628211u;
    }
    return h;
}

static struct slot *find(struct slot *slots, size_t cap, const char *name)
{
    size_t i = (size_t)hash(name) & (cap - 1);

    while (slots[i].name != NULL && strcmp(slots[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

int tzone_cache_new(struct tzone_cache **out, struct blast_error *err)
{
    struct tzone_cache *c = calloc(1, sizeof *c);

    *out = NULL;
    if (c == NULL || (c->slots = calloc(16, sizeof *c->slots)) == NULL) {
        free(c);
        return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    c->cap = 16;
    *out = c;
    return 0;
}

static bool grow(struct tzone_cache *c)
{
    struct slot *slots = calloc(c->cap * 2, sizeof *slots);
    size_t i;

    if (slots == NULL)
        return false;
    for (i = 0; i < c->cap; i++)
        if (c->slots[i].name != NULL)
            *find(slots, c->cap * 2, c->slots[i].name) = c->slots[i];
    free(c->slots);
    c->slots = slots;
    c->cap *= 2;
    return true;
}

int tzone_cache_get(struct tzone_cache *c, const char *name, const struct tzone **out,
                    struct blast_error *err)
{
    struct blast_error mine;
    struct slot *s;
    char *copy = NULL, *why = NULL;
    struct tzone *z = NULL;
    int rc;

    *out = NULL;
    if (name == NULL || !name_ok(name))
        return tzone_load(name, &z, err); /* refused without looking: nothing to keep */
    s = find(c->slots, c->cap, name);
    if (s->name != NULL) {
        *out = s->z;
        return s->z != NULL ? 0 : blast_error_set(err, s->rc, NULL, 0, 0, "%s", s->why);
    }
    blast_error_clear(&mine);
    rc = tzone_load(name, &z, &mine);
    if (rc == BLAST_ENOMEM || rc == BLAST_EIO) /* may pass: not remembered */
        return blast_error_set(err, rc, mine.source, 0, 0, "%s", mine.text);
    copy = strdup(name);
    why = rc != 0 ? strdup(mine.text) : NULL;
    if (copy == NULL || (rc != 0 && why == NULL) || (c->used + 1 > c->cap / 2 && !grow(c))) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    s = find(c->slots, c->cap, name);
    *s = (struct slot){copy, z, rc, why};
    c->used++;
    copy = why = NULL;
    *out = z;
    if (rc != 0)
        blast_error_set(err, rc, mine.source[0] != '\0' ? mine.source : NULL, 0, 0, "%s",
                        mine.text);
    z = NULL;
out:
    free(copy);
    free(why);
    tzone_free(z);
    return rc;
}

void tzone_cache_free(struct tzone_cache *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->cap; i++) {
        free(c->slots[i].name);
        free(c->slots[i].why);
        tzone_free(c->slots[i].z);
    }
    free(c->slots);
    free(c);
}
