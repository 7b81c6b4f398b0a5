/*
 * fuzz_session_token.c - arbitrary bytes as the session token a client
 * presents (cookie or Bearer), through dz_session_lookup and
 * dz_session_delete against an in-process store holding one real session.
 * Promises checked besides "no crash": a guessed token never finds a
 * session (the answer is DZ_ERR_NOTFOUND and the out-parameter stays
 * zeroed), nothing the input does removes the real session, and the real
 * token still works after every input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "state/session.h"
#include "state/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dz_store *st;
static struct dz_session_limits lim;
static char token[DZ_SESSION_TOKEN_LEN + 1];

static void setup(void)
{
    struct dz_session s;

    if (st)
        return;
    memset(&s, 0, sizeof(s));
    memcpy(s.fin, "AB12C3D", 8);
    memcpy(s.method, "password", 9);
    memcpy(s.acr, "low", 4);
    s.amr = DZ_AMR_PWD;
    s.auth_time = 1764000000;
    dz_session_limits_default(&lim);
    if (dz_store_mem_new(1, NULL, &st) != 0 || dz_session_create(st, &lim, &s, token) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct dz_session zero;
    struct dz_session out;
    char *tok = malloc(size ? size : 1);
    int rc;

    setup();
    if (!tok)
        return 0;
    if (size)
        memcpy(tok, data, size);
    /* Only the real token may find the session (2^-256 for a guess). */
    if (size == DZ_SESSION_TOKEN_LEN && memcmp(tok, token, size) == 0) {
        free(tok);
        return 0;
    }
    rc = dz_session_lookup(st, &lim, tok, size, &out);
    if (rc != DZ_ERR_NOTFOUND || memcmp(&out, &zero, sizeof(out)) != 0)
        abort();
    if (dz_session_delete(st, tok, size) != DZ_ERR_NOTFOUND)
        abort();
    if (dz_session_lookup(st, &lim, token, DZ_SESSION_TOKEN_LEN, &out) != 0)
        abort();
    free(tok);
    return 0;
}
