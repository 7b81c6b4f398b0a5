/*
 * mgmthost.h - which Host the management listener answers (mgmt.c): a
 * page on an attacker's name that resolves to the listener's address (DNS
 * rebinding) makes the operator's browser send that name, and must be
 * refused; scrapers, curl and health checks send an IP address, localhost
 * or a name the operator listed (management.hosts).  A pure function.
 */
#ifndef DZ_OPS_MGMTHOST_H
#define DZ_OPS_MGMTHOST_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether a request whose Host field is host[0..len) may be answered: an
 * IPv4 address, an [IPv6] address, "localhost", or one of names[0..n)
 * (case-insensitive, a final dot ignored), each with an optional ":port"
 * of digits.  host NULL (an HTTP/1.0 request without Host, which no
 * browser sends): true.  Anything else, an empty Host or a zone index
 * included: false.  Any thread.
 */
bool dz_mgmt_host_allowed(const char *host, size_t len, char *const *names, size_t n);

#endif
