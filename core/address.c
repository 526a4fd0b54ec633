/*
 * address - RFC 5321/5322/6531 address syntax and IDNA. See address.h.
 */
#include "address.h"
#include "text.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5322 §3.2.3 atext, extended by RFC 6531 §3.3 with any UTF-8 non-ASCII byte. */
static bool is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* The address as it can be shown in a message: control characters escaped, cut at 200 bytes. */
static void shown(const char *text, char *out, size_t size)
{
    size_t n = 0;

    for (; *text != '\0' && n + 5 < size && n < 200; text++) {
        unsigned char c = (unsigned char)*text;
        if (c < 0x20 || c == 0x7F)
            n += (size_t)snprintf(out + n, size - n,
                                  c == '\r'   ? "\\r"
                                  : c == '\n' ? "\\n"
                                              : "\\x%02x",
                                  c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
}

static int bad(struct blast_error *err, const char *text, const char *why)
{
    char s[256];

    shown(text, s, sizeof s);
    return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "invalid address '%s': %s", s, why);
}

/* Dot-string: Atom *("." Atom). */
static bool dot_string_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (!is_atext((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Quoted-string (RFC 5321 §4.1.2): qtextSMTP and quoted-pairSMTP, UTF-8 allowed (RFC 6531). */
static bool quoted_string_ok(const char *s, size_t len)
{
    size_t i;

    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        return false;
    for (i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (i + 1 >= len - 1 || (unsigned char)s[i + 1] < 32 || s[i + 1] == 127)
                return false;
            i++;
        } else if (c == '"' || (c < 32) || c == 127) {
            return false;
        }
    }
    return true;
}

/* An LDH label (RFC 5321 §4.1.2 sub-domain, RFC 1035 lengths). */
static bool ldh_domain_ok(const char *d)
{
    size_t label = 0, labels = 0, i, n = strlen(d);

    if (n == 0 || n > ADDRESS_DOMAIN_MAX || d[n - 1] == '.')
        return false;
    for (i = 0; i <= n; i++) {
        char c = d[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || d[i - 1] == '-')
                return false;
            labels++;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c == '-' && label > 0)))
            return false;
        label++;
    }
    /* A dotless domain is legal SMTP but never a real recipient of a campaign. */
    return labels >= 2;
}

static bool address_literal_ok(const char *d)
{
    size_t n = strlen(d);
    char inner[64];
    unsigned char bin[16];

    if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n - 2 >= sizeof inner)
        return false;
    memcpy(inner, d + 1, n - 2);
    inner[n - 2] = '\0';
    if (strncmp(inner, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, inner + 5, bin) == 1;
    return inet_pton(AF_INET, inner, bin) == 1;
}

static bool is_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

int address_domain_ascii(const char *domain, char **out, struct blast_error *err)
{
    char *ascii = NULL, *p;
    int irc;

    *out = NULL;
    if (is_ascii(domain)) {
        ascii = strdup(domain);
        if (ascii == NULL)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    } else {
        /* IDNA2008 with UTS #46 non-transitional mapping, as browsers and MTAs do */
        irc = idn2_to_ascii_8z(domain, &p, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (irc != IDN2_OK)
            return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "domain '%.200s': %s", domain,
                                   idn2_strerror(irc));
        /* libidn2 allocates with its own allocator; idn2_free matches it */
        ascii = strdup(p);
        idn2_free(p);
        if (ascii == NULL)
            return blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
    }
    for (p = ascii; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (!ldh_domain_ok(ascii)) {
        free(ascii);
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0,
                               "domain '%.200s' is not a valid host name", domain);
    }
    *out = ascii;
    return 0;
}

int address_parse(const char *text, struct address *out, struct blast_error *err)
{
    const char *at;
    size_t len, local_len;
    char *ascii_domain = NULL;
    int rc = BLAST_EINVAL;

    memset(out, 0, sizeof *out);
    len = strlen(text);
    if (len == 0)
        return blast_error_set(err, BLAST_EINVAL, NULL, 0, 0, "empty address");
    if (strpbrk(text, "\r\n<>") != NULL)
        return bad(err, text, "contains a line break or an angle bracket");
    if (!text_utf8_valid(text, len))
        return bad(err, text, "not valid UTF-8");
    at = strrchr(text, '@');
    if (at == NULL)
        return bad(err, text, "no '@'");
    local_len = (size_t)(at - text);
    if (local_len == 0)
        return bad(err, text, "empty local part");
    if (local_len > ADDRESS_LOCAL_MAX)
        return bad(err, text, "local part longer than 64 octets (RFC 5321 §4.5.3.1.1)");
    if (text[0] == '"' ? !quoted_string_ok(text, local_len) : !dot_string_ok(text, local_len))
        return bad(err, text, "local part is not a dot-atom or a quoted string");

    out->local = strndup(text, local_len);
    out->domain = strdup(at + 1);
    if (out->local == NULL || out->domain == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (out->domain[0] == '[') {
        if (!address_literal_ok(out->domain)) {
            rc = bad(err, text, "malformed address literal");
            goto out;
        }
        ascii_domain = strdup(out->domain);
    } else {
        struct blast_error derr;
        blast_error_clear(&derr);
        rc = address_domain_ascii(out->domain, &ascii_domain, &derr);
        if (rc == BLAST_ENOMEM)
            goto out;
        if (rc < 0) {
            rc = bad(err, text, "the domain is not a valid host name");
            goto out;
        }
    }
    if (ascii_domain == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (local_len + 1 + strlen(ascii_domain) + 2 > ADDRESS_PATH_MAX) {
        rc = bad(err, text, "longer than 254 octets (RFC 5321 §4.5.3.1.3)");
        goto out;
    }
    len = local_len + 1 + strlen(ascii_domain) + 1;
    out->envelope = malloc(len);
    if (out->envelope == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    memcpy(out->envelope, text, local_len);
    out->envelope[local_len] = '@';
    memcpy(out->envelope + local_len + 1, ascii_domain, strlen(ascii_domain) + 1);
    out->needs_smtputf8 = !is_ascii(out->local);
    rc = 0;
out:
    free(ascii_domain);
    if (rc == BLAST_ENOMEM)
        blast_error_set(err, rc, NULL, 0, 0, "out of memory");
    if (rc < 0)
        address_free(out);
    return rc;
}

static char *trim_dup(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return strndup(s, len);
}

/* The display name: an RFC 5322 quoted-string is unquoted, anything else kept as text. */
static char *display_name(const char *s, size_t len)
{
    char *t = trim_dup(s, len), *r, *w;
    size_t n;

    if (t == NULL)
        return NULL;
    n = strlen(t);
    if (n >= 2 && t[0] == '"' && t[n - 1] == '"') {
        t[n - 1] = '\0';
        for (r = t + 1, w = t; *r != '\0'; r++) {
            if (*r == '\\' && r[1] != '\0')
                r++;
            *w++ = *r;
        }
        *w = '\0';
    }
    return t;
}

int address_parse_mailbox(const char *text, struct address *out, struct blast_error *err)
{
    const char *lt, *gt;
    char *inner = NULL, *name = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (strpbrk(text, "\r\n") != NULL)
        return bad(err, text, "contains a line break");
    lt = strrchr(text, '<');
    if (lt == NULL)
        return address_parse(text, out, err);
    gt = strchr(lt, '>');
    if (gt == NULL || gt[strspn(gt + 1, " \t") + 1] != '\0')
        return bad(err, text, "'<' without a closing '>' at the end");
    inner = strndup(lt + 1, (size_t)(gt - lt - 1));
    name = display_name(text, (size_t)(lt - text));
    if (inner == NULL || name == NULL) {
        rc = blast_error_set(err, BLAST_ENOMEM, NULL, 0, 0, "out of memory");
        goto out;
    }
    if (!text_utf8_valid(name, strlen(name))) {
        rc = bad(err, text, "display name is not valid UTF-8");
        goto out;
    }
    if ((rc = address_parse(inner, out, err)) < 0)
        goto out;
    if (name[0] != '\0') {
        out->display = name;
        name = NULL;
    }
out:
    free(inner);
    free(name);
    return rc;
}

void address_free(struct address *a)
{
    if (a == NULL)
        return;
    free(a->display);
    free(a->local);
    free(a->domain);
    free(a->envelope);
    memset(a, 0, sizeof *a);
}

int address_mailbox_domain(const char *mailbox, char *out, size_t size)
{
    struct address a;
    struct blast_error e;
    const char *at;
    size_t i;

    out[0] = '\0';
    blast_error_clear(&e);
    if (address_parse_mailbox(mailbox, &a, &e) < 0)
        return -1;
    at = strrchr(a.envelope, '@');
    snprintf(out, size, "%s", at != NULL ? at + 1 : "");
    for (i = 0; out[i] != '\0'; i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = (char)(out[i] - 'A' + 'a');
    address_free(&a);
    return out[0] != '\0' ? 0 : -1;
}
