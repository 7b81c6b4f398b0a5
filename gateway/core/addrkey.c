/*
 * addrkey.c - a client address as a counting key (see addrkey.h).
 */
#include "core/addrkey.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "base/err.h"

int dz_addr_key(const char *ip, struct dz_addr_key *k)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char a6[16];
    struct in_addr a4;
    size_t n;

    k->len = 0;
    if (!ip)
        return DZ_ERR_INVAL;
    n = strnlen(ip, DZ_CLIENT_ADDR_MAX + 1);
    if (n == 0 || n > DZ_CLIENT_ADDR_MAX)
        return DZ_ERR_INVAL;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        k->b[0] = '4';
        memcpy(k->b + 1, &a4, 4);
        k->len = 5;
    } else if (inet_pton(AF_INET6, ip, a6) == 1) {
        if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
            k->b[0] = '4';
            memcpy(k->b + 1, a6 + 12, 4);
            k->len = 5;
        } else {
            k->b[0] = '6';
            memcpy(k->b + 1, a6, 8);
            k->len = 9;
        }
    } else {
        k->b[0] = 's';
        memcpy(k->b + 1, ip, n);
        k->len = n + 1;
    }
    return 0;
}
