/*
 * parse.c - strict ranged value parsers; see parse.h.  Owns no state, does
 * no I/O and never allocates: every function reads its argument and writes
 * its out-parameter, nothing else, so a hostile string can at worst be
 * refused.
 */
#include "base/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"

#include "base/compat.h"

/* Longest digit run we look at: 20 digits is already past UINT64_MAX. */
#define MAX_DIGITS 20

/*
 * Read an unsigned decimal at s: at least one digit, no leading zero unless
 * the number is exactly 0.  On success *end points after the digits.
 * Overflow is DZ_ERR_INVAL (well-formed, out of range).
 */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
    const char *p = s;
    uint64_t v = 0;
    bool overflow = false;

    *out = 0;
    if (*p < '0' || *p > '9')
        return DZ_ERR_PARSE;
    if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
        return DZ_ERR_PARSE; /* "08": octal in some YAML loaders; refuse */
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        /* Keep scanning after an overflow so *end still lands after the whole
         * number: the caller can then tell "too big" (INVAL) from junk (PARSE). */
        if (p - s >= MAX_DIGITS || v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    *end = p;
    if (overflow)
        return DZ_ERR_INVAL;
    *out = v;
    return 0;
}

int dz_parse_int(const char *s, long long min, long long max, long long *out)
{
    const char *digits = s;
    char *end = NULL;
    long long v;

    *out = 0;
    if (!s)
        return DZ_ERR_PARSE;
    if (*digits == '-')
        digits++;
    /* strtoll would skip blanks and accept '+'; insist on a bare number. */
    if (*digits < '0' || *digits > '9')
        return DZ_ERR_PARSE;
    /* Same rule as parse_digits: "010" would be 8 to a YAML 1.1 loader. */
    if (digits[0] == '0' && digits[1] != '\0')
        return DZ_ERR_PARSE;
    if (digits != s && digits[0] == '0')
        return DZ_ERR_PARSE; /* "-0" */
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return DZ_ERR_PARSE;
    if (errno == ERANGE || v < min || v > max)
        return DZ_ERR_INVAL;
    *out = v;
    return 0;
}

struct unit {
    const char *name;
    uint64_t factor;
};

static int parse_with_unit(const char *s, const struct unit *units, uint64_t min, uint64_t max,
                           uint64_t *out)
{
    const char *end = NULL;
    uint64_t v = 0;
    int rc;

    *out = 0;
    if (!s)
        return DZ_ERR_PARSE;
    rc = parse_digits(s, &v, &end);
    /* An overflow (INVAL) still gets its suffix checked first, so
     * "99999999999999999999xyz" is reported as malformed, not out of range. */
    if (rc == DZ_ERR_PARSE)
        return rc;
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(end, u->name) != 0)
            continue;
        if (rc != 0 || v > UINT64_MAX / u->factor)
            return DZ_ERR_INVAL;
        v *= u->factor;
        if (v < min || v > max)
            return DZ_ERR_INVAL;
        *out = v;
        return 0;
    }
    return DZ_ERR_PARSE;
}

static const struct unit size_units[] = {
    /* Binary units only, written in full: "1M" or "1MB" would leave the reader
     * to guess 10^6 or 2^20, so they are refused rather than interpreted. */
    {"", 1},   {"B", 1}, {"KiB", 1024ULL}, {"MiB", 1024ULL * 1024}, {"GiB", 1024ULL * 1024 * 1024},
    {NULL, 0},
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000ULL}, {"m", 60ULL * 1000}, {"h", 3600ULL * 1000}, {"d", 86400ULL * 1000},
    {NULL, 0},
};

int dz_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    return parse_with_unit(s, size_units, min, max, out);
}

int dz_parse_duration(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms)
{
    return parse_with_unit(s, duration_units, min_ms, max_ms, out_ms);
}

int dz_parse_rate(const char *s, struct dz_rate *out)
{
    const char *end = NULL;
    uint64_t n = 0;
    uint32_t period;
    int rc;

    out->count = 0;
    out->period_ms = 0;
    if (!s)
        return DZ_ERR_PARSE;
    rc = parse_digits(s, &n, &end);
    if (rc == DZ_ERR_PARSE || end[0] != '/')
        return DZ_ERR_PARSE;
    if (strcmp(end + 1, "s") == 0)
        period = 1000;
    else if (strcmp(end + 1, "m") == 0)
        period = 60 * 1000;
    else if (strcmp(end + 1, "h") == 0)
        period = 3600 * 1000;
    else
        return DZ_ERR_PARSE;
    /* Count 0 means "no limit" to its users (a route inherits its service's
     * rate, forward.c skips the check), so a written rate must be at least
     * 1: "0/s" cannot quietly switch limiting off. */
    if (rc != 0 || n < 1 || n > 1000000)
        return DZ_ERR_INVAL;
    out->count = (uint32_t)n;
    out->period_ms = period;
    return 0;
}

int dz_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int dz_parse_bool(const char *s, bool *out)
{
    *out = false;
    if (!s)
        return DZ_ERR_PARSE;
    if (strcmp(s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "false") == 0)
        return 0;
    return DZ_ERR_PARSE;
}

static bool is_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A DNS name: labels of [A-Za-z0-9-], 1..63 long, no '-' at either end,
 * 253 characters at most, and not all-numeric in its last label (which would
 * be a malformed IPv4 address such as "1.2.3" or "010.0.0.1"). */
static bool is_dns_name(const char *h, size_t len)
{
    size_t label = 0;
    bool last_numeric = true;

    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? h[i] : '.';
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            if (i < len)
                last_numeric = true;
            label = 0;
            continue;
        }
        if (!is_alnum((unsigned char)c) && c != '-')
            return false;
        if (label == 0 && c == '-')
            return false;
        if (!(c >= '0' && c <= '9'))
            last_numeric = false;
        if (++label > 63)
            return false;
    }
    return !last_numeric;
}

int dz_parse_url(const char *s, struct dz_url *out)
{
    const char *p;
    const char *host;
    const char *host_end;
    size_t host_len;

    memset(out, 0, sizeof(*out));
    if (!s)
        return DZ_ERR_PARSE;
    for (p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        /* Refused before anything is split, so a space, CR/LF or an escape can
         * never be carried into a Host header or a log line built from the URL. */
        if (c <= 0x20 || c >= 0x7f)
            return DZ_ERR_PARSE; /* blanks, controls, non-ASCII */
    }
    if (strncmp(s, "https://", 8) == 0) {
        out->is_https = true;
        p = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        p = s + 7;
    } else {
        return DZ_ERR_PARSE;
    }
    host = p;
    if (*p == '[') {
        struct in6_addr a6;
        const char *close = strchr(p, ']');
        if (!close || (size_t)(close - p - 1) >= sizeof(out->host))
            return DZ_ERR_PARSE;
        memcpy(out->host, p + 1, (size_t)(close - p - 1));
        out->host[close - p - 1] = '\0';
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return DZ_ERR_PARSE;
        out->is_ip = true;
        out->is_loopback = IN6_IS_ADDR_LOOPBACK(&a6);
        host_end = close + 1;
    } else {
        struct in_addr a4;
        /* '@' ends the host too, so "https://good@evil" cannot pass with "good"
         * read as the host: it is refused just below. */
        host_end = p + strcspn(p, ":/?#@");
        host_len = (size_t)(host_end - host);
        if (host_len == 0 || host_len >= sizeof(out->host))
            return DZ_ERR_PARSE;
        memcpy(out->host, host, host_len);
        out->host[host_len] = '\0';
        if (inet_pton(AF_INET, out->host, &a4) == 1) {
            out->is_ip = true;
            /* All of 127.0.0.0/8 is loopback (RFC 1122 §3.2.1.3), not only
             * 127.0.0.1; is_loopback is what allows plain http (parse.h). */
            out->is_loopback = (ntohl(a4.s_addr) >> 24) == 127;
        } else if (is_dns_name(out->host, host_len)) {
            /* Only the exact name: "localhost.example" may resolve anywhere
             * (RFC 6761 §6.3 reserves "localhost." itself). */
            out->is_loopback = strcasecmp(out->host, "localhost") == 0;
        } else {
            return DZ_ERR_PARSE;
        }
    }
    p = host_end;
    if (*p == '@')
        return DZ_ERR_PARSE; /* user info: credentials never belong in a URL here */
    if (*p == ':') {
        long long port = 0;
        char digits[8];
        size_t n = strcspn(p + 1, "/?#");
        if (n == 0 || n >= sizeof(digits))
            return DZ_ERR_PARSE;
        memcpy(digits, p + 1, n);
        digits[n] = '\0';
        int rc = dz_parse_int(digits, 1, 65535, &port);
        if (rc != 0)
            return rc;
        out->port = (uint16_t)port;
        out->has_port = true;
        p += 1 + n;
    } else {
        out->port = out->is_https ? 443 : 80;
    }
    if (*p != '\0' && *p != '/')
        return DZ_ERR_PARSE;
    /* After the port: a query, fragment or '@' anywhere in the path is
     * refused as well (parse.h), not kept for a caller to mishandle. */
    if (strpbrk(p, "?#@") != NULL)
        return DZ_ERR_PARSE;
    out->path_off = (size_t)(p - s);
    return 0;
}

int dz_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const struct {
        const char *name;
        uint64_t factor;
    } u[] = {{"GiB", 1024ULL * 1024 * 1024}, {"MiB", 1024ULL * 1024}, {"KiB", 1024}};
    const char *name = "B";
    uint64_t v = bytes;
    int n;

    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]) && bytes; i++) {
        if (bytes % u[i].factor == 0) {
            v = bytes / u[i].factor;
            name = u[i].name;
            break;
        }
    }
    n = snprintf(buf, len, "%llu%s", (unsigned long long)v, name);
    return n < 0 || (size_t)n >= len ? DZ_ERR_TOOBIG : 0;
}

int dz_format_duration(uint64_t ms, char *buf, size_t len)
{
    const char *name = "ms";
    uint64_t v = ms;
    int n;

    if (ms && ms % 3600000 == 0) {
        v = ms / 3600000;
        name = "h";
    } else if (ms && ms % 60000 == 0) {
        v = ms / 60000;
        name = "m";
    } else if (ms && ms % 1000 == 0) {
        v = ms / 1000;
        name = "s";
    }
    n = snprintf(buf, len, "%llu%s", (unsigned long long)v, name);
    return n < 0 || (size_t)n >= len ? DZ_ERR_TOOBIG : 0;
}

int dz_format_rate(const struct dz_rate *r, char *buf, size_t len)
{
    const char *unit = r->period_ms == 3600000 ? "h" : r->period_ms == 60000 ? "m" : "s";
    int n = snprintf(buf, len, "%u/%s", (unsigned)r->count, unit);
    return n < 0 || (size_t)n >= len ? DZ_ERR_TOOBIG : 0;
}

const char *dz_outbound_url_problem(const char *s, struct dz_url *out)
{
    struct dz_url u;

    if (!s || dz_parse_url(s, &u) != 0)
        return "expected an http(s)://host[:port][/path] URL without user info or query";
    if (!u.is_https && !u.is_loopback)
        return "must be https (http only for a loopback host)";
    if (out)
        *out = u;
    return NULL;
}
