/*
 * mgmthost.c - the management listener's Host check (see mgmthost.h).
 */
#include "ops/mgmthost.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "base/compat.h"

/* ":" and up to five digits, or nothing (RFC 3986 port = *DIGIT). */
static bool port_ok(const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (p[0] != ':' || n > 6)
        return false;
    for (size_t i = 1; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return true;
}

/* name equals h (a NUL-terminated name without its final dot), ignoring
 * case and one final dot of name. */
static bool same_name(const char *h, size_t hlen, const char *name)
{
    size_t nlen = strlen(name);

    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    return nlen == hlen && strncasecmp(h, name, hlen) == 0;
}

bool dz_mgmt_host_allowed(const char *host, size_t len, char *const *names, size_t n)
{
    char h[256];
    const char *end;
    size_t hlen;
    struct in6_addr a6;
    struct in_addr a4;

    if (!host)
        return true;
    if (len == 0 || len >= sizeof(h))
        return false;
    if (host[0] == '[') {
        end = memchr(host, ']', len);
        if (!end || !port_ok(end + 1, len - (size_t)(end + 1 - host)))
            return false;
        hlen = (size_t)(end - host - 1);
        memcpy(h, host + 1, hlen);
        h[hlen] = '\0';
        return inet_pton(AF_INET6, h, &a6) == 1;
    }
    end = memchr(host, ':', len);
    hlen = end ? (size_t)(end - host) : len;
    if (hlen == 0 || !port_ok(host + hlen, len - hlen))
        return false;
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    if (inet_pton(AF_INET, h, &a4) == 1)
        return true;
    if (h[hlen - 1] == '.')
        h[--hlen] = '\0';
    if (hlen == 0)
        return false;
    if (same_name(h, hlen, "localhost"))
        return true;
    for (size_t i = 0; i < n; i++) {
        if (same_name(h, hlen, names[i]))
            return true;
    }
    return false;
}
