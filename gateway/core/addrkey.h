/*
 * addrkey.h - the key under which a client address is counted (failures,
 * locks, unauthenticated starts): 4 bytes for IPv4 (also IPv4-mapped IPv6),
 * the /64 prefix for IPv6 (one host holds a whole /64, so counting single
 * IPv6 addresses would give an attacker 2^64 fresh budgets), else the text
 * itself.  A tag byte keeps the three kinds apart.  Pure; any thread.
 */
#ifndef DZ_ADDRKEY_H
#define DZ_ADDRKEY_H

#include <stddef.h>

#define DZ_CLIENT_ADDR_MAX 64 /* longest client address string accepted */

struct dz_addr_key {
    unsigned char b[1 + DZ_CLIENT_ADDR_MAX];
    size_t len;
};

/* 0, or DZ_ERR_INVAL for NULL, "" or an address over DZ_CLIENT_ADDR_MAX. */
int dz_addr_key(const char *ip, struct dz_addr_key *k);

#endif
