/*
 * oidc_state.c - see oidc_state.h.
 */
#include "oidc/oidc_state.h"

#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "state/store.h"

#include "base/compat.h"

#define VALUE_MAX (16 * 1024)

int dz_oidc_secret_new(char out[DZ_OIDC_SECRET_LEN + 1])
{
    unsigned char rnd[32];

    out[0] = '\0';
    if (dz_random(rnd, sizeof(rnd)) != 0)
        return DZ_ERR_CRYPTO;
    dz_b64_encode_to(rnd, sizeof(rnd), true, out);
    dz_secret_wipe(rnd, sizeof(rnd));
    return 0;
}

int dz_oidc_state_put(struct dz_store *st, const char *ns, const char *key, const json_t *val,
                      uint64_t ttl_ms, int flags)
{
    unsigned char h[32];
    char *text = json_dumps(val, JSON_COMPACT);
    int rc;

    if (!text)
        return DZ_ERR_NOMEM;
    dz_sha256(key, strlen(key), h);
    rc = dz_store_put(st, ns, h, sizeof(h), text, strlen(text), ttl_ms, flags);
    dz_secret_free_str(text);
    return rc;
}

int dz_oidc_state_get(struct dz_store *st, const char *ns, const char *key, bool take, json_t **out)
{
    unsigned char h[32];
    struct dz_buf b;
    json_t *j;
    int rc;

    *out = NULL;
    dz_buf_init(&b, VALUE_MAX);
    dz_sha256(key, strlen(key), h);
    rc = take ? dz_store_take(st, ns, h, sizeof(h), &b) : dz_store_get(st, ns, h, sizeof(h), &b);
    if (rc == 0) {
        j = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            rc = DZ_ERR_PARSE;
        } else {
            *out = j;
        }
    }
    dz_buf_wipe(&b);
    return rc;
}

int dz_oidc_state_del(struct dz_store *st, const char *ns, const char *key)
{
    unsigned char h[32];

    dz_sha256(key, strlen(key), h);
    return dz_store_del(st, ns, h, sizeof(h));
}

int dz_oidc_sid_add(struct dz_store *st, const char *sid_b64, const char *client_id,
                    uint64_t ttl_ms)
{
    json_t *rec = NULL;
    json_t *list;
    size_t i;
    json_t *v;
    int rc;

    /* Read, add, write: two code exchanges of one session at the same
     * moment could lose one client from the list; the loss is a missed
     * logout notice, and the session's own end still logs the person out
     * at the gateway. */
    if (dz_oidc_state_get(st, DZ_OIDC_NS_SID, sid_b64, false, &rec) != 0)
        rec = json_object();
    if (!rec)
        return DZ_ERR_NOMEM;
    list = json_object_get(rec, "clients");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(rec, "clients", list);
    }
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), client_id) == 0) {
            json_decref(rec);
            return 0;
        }
    }
    if (json_array_size(list) >= 64) {
        json_decref(rec);
        return DZ_ERR_FULL;
    }
    json_array_append_new(list, json_string(client_id));
    rc = dz_oidc_state_put(st, DZ_OIDC_NS_SID, sid_b64, rec, ttl_ms, 0);
    json_decref(rec);
    return rc;
}

int dz_oidc_sid_take(struct dz_store *st, const char *sid_b64, json_t **out)
{
    json_t *rec = NULL;
    json_t *list;

    *out = NULL;
    if (dz_oidc_state_get(st, DZ_OIDC_NS_SID, sid_b64, true, &rec) != 0) {
        *out = json_array();
        return *out ? 0 : DZ_ERR_NOMEM;
    }
    list = json_object_get(rec, "clients");
    *out = json_is_array(list) ? json_incref(list) : json_array();
    json_decref(rec);
    return *out ? 0 : DZ_ERR_NOMEM;
}
