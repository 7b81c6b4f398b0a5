/*
 * fuzz_peer_query.c - the peers' parsers of request and command-line text
 * (peers/main.c): dz_peer_query_find over an arbitrary ":path" and
 * dz_peer_parse_listen over an arbitrary address.  Checks their promises:
 * a value found is exactly the bytes after "name=" up to '&' or the end and
 * fits the buffer; a failure leaves "" behind; a parsed address has a
 * non-empty host without brackets and a port 1..65535.
 * Input: NAME '\n' TARGET (no newline: the whole input is both).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* The peers' shared runtime, without the binary's main() and modes. */
#include "../../peers/runtime.c"

static void check_query(const char *target, const char *name)
{
    char buf[16];
    int rc = dz_peer_query_find(target, name, buf, sizeof(buf));
    const char *q, *at;
    size_t nl = strlen(name);

    if (rc != 0) {
        if (buf[0] != '\0' || (rc != DZ_ERR_NOTFOUND && rc != DZ_ERR_TOOBIG))
            abort();
        return;
    }
    /* The value must be what follows "name=" in the query, up to '&'. */
    q = strchr(target, '?');
    if (!q || nl == 0 || strlen(buf) >= sizeof(buf) || strchr(buf, '&'))
        abort();
    for (at = q + 1; at; at = strchr(at, '&')) {
        if (*at == '&')
            at++;
        if (strncmp(at, name, nl) == 0 && at[nl] == '=') {
            if (strncmp(at + nl + 1, buf, strlen(buf)) != 0)
                abort();
            return;
        }
    }
    abort();
}

static void check_listen(const char *s)
{
    char host[64];
    uint16_t port = 1;

    if (dz_peer_parse_listen(s, host, sizeof(host), &port) != 0) {
        if (port != 0 || host[0] != '\0')
            abort();
        return;
    }
    if (port == 0 || host[0] == '\0' || strchr(host, '[') || strchr(host, ']'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    char *nl;

    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    nl = strchr(in, '\n');
    if (nl) {
        *nl = '\0';
        check_query(nl + 1, in);
    } else {
        check_query(in, in);
    }
    check_listen(in);
    free(in);
    return 0;
}
