/*
 * oidc_code.c - see oidc_code.h.
 */
#include "oidc/oidc_code.h"

#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/err.h"
#include "state/store.h"

#include "base/compat.h"

int dz_oidc_code_claim(struct dz_store *st, const char *code, const char *at_key,
                       const char *client)
{
    json_t *mark = json_pack("{s:s, s:s}", "at", at_key, "client", client);
    int rc;

    if (!mark)
        return DZ_ERR_NOMEM;
    rc = dz_oidc_state_put(st, DZ_OIDC_NS_USED, code, mark, DZ_OIDC_CODE_USED_TTL_MS, DZ_STORE_NX);
    json_decref(mark);
    return rc;
}

/* Flag the mark, then revoke the token it names.  In that order: a first
 * exchange storing its token after the delete looks at the mark after
 * that, and finds the flag.  Each step's failure stops here (fail closed):
 * the flag not written lets the first exchange issue its token, the token
 * not deleted for good lets it live. */
int dz_oidc_code_replayed(struct dz_store *st, const char *code, char **first_client)
{
    json_t *used = NULL;
    const char *at_key;
    unsigned char *raw = NULL;
    size_t n = 0;
    int rc;

    if (first_client)
        *first_client = NULL;
    rc = dz_oidc_state_get(st, DZ_OIDC_NS_USED, code, false, &used);
    if (rc != 0)
        /* Gone since the claim saw it (it outlives the token it names by
         * minutes): nothing left to revoke. */
        return rc == DZ_ERR_NOTFOUND ? 0 : rc;
    if (first_client)
        *first_client = strdup(json_string_value(json_object_get(used, "client")) ?: "");
    json_object_set_new(used, "replayed", json_true());
    rc = dz_oidc_state_put(st, DZ_OIDC_NS_USED, code, used, DZ_OIDC_CODE_USED_TTL_MS, 0);
    at_key = json_string_value(json_object_get(used, "at"));
    if (rc == 0 && at_key && dz_b64_decode(at_key, strlen(at_key), true, &raw, &n) == 0 &&
        n == 32) {
        rc = dz_store_del_durable(st, DZ_OIDC_NS_TOKEN, raw, n);
        if (rc == DZ_ERR_NOTFOUND) /* not stored yet (the flag stops it), or expired */
            rc = 0;
    }
    free(raw);
    json_decref(used);
    return rc;
}

void dz_oidc_code_unclaim(struct dz_store *st, const char *code)
{
    dz_oidc_state_del(st, DZ_OIDC_NS_USED, code);
}

int dz_oidc_code_confirm(struct dz_store *st, const char *code)
{
    json_t *used = NULL;
    int rc = dz_oidc_state_get(st, DZ_OIDC_NS_USED, code, false, &used);

    if (rc == 0 && json_is_true(json_object_get(used, "replayed")))
        rc = DZ_ERR_EXISTS;
    json_decref(used);
    /* A mark gone (it lives minutes, the exchange milliseconds) cannot say
     * no second use came: not confirmed. */
    return rc == DZ_ERR_NOTFOUND ? DZ_ERR_STATE : rc;
}
