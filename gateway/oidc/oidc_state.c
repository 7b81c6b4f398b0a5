/*
 * oidc_state.c - see oidc_state.h.
 */
#include "oidc/oidc_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"
#include "policy/policy.h"
#include "policy/policy_oidc.h"
#include "state/session.h"
#include "state/store.h"

#include "base/compat.h"

#define VALUE_MAX (16 * 1024)
#define PAIR_KEY_MAX (DZ_SESSION_TOKEN_LEN + DZ_OIDC_CLIENT_ID_MAX + 2)

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

int dz_oidc_state_del_durable(struct dz_store *st, const char *ns, const char *key)
{
    unsigned char h[32];

    dz_sha256(key, strlen(key), h);
    return dz_store_del_durable(st, ns, h, sizeof(h));
}

int dz_oidc_session_alive(struct dz_store *st, const char *sid_b64)
{
    unsigned char *sid = NULL;
    size_t n = 0;
    uint64_t left = 0;
    int rc;

    if (!sid_b64 || dz_b64_decode(sid_b64, strlen(sid_b64), true, &sid, &n) != 0 || n != 32) {
        free(sid);
        return DZ_ERR_NOTFOUND;
    }
    /* The session's entry is under its sid, and lives exactly as long as
     * the session (idle and absolute expiry, deleted at logout). */
    rc = dz_store_ttl(st, DZ_SESSION_NS, sid, n, &left);
    free(sid);
    return rc;
}

/* The key of one (session, client) pair: the session id and the client id
 * separated by a character neither can hold. */
static int pair_key(const char *sid_b64, const char *client_id, char *out, size_t len)
{
    int n = snprintf(out, len, "%s %s", sid_b64, client_id);

    return n > 0 && (size_t)n < len ? 0 : DZ_ERR_TOOBIG;
}

int dz_oidc_sid_add(struct dz_store *st, const char *sid_b64, const char *client_id,
                    uint64_t ttl_ms)
{
    static const char one[] = "1";
    char key[PAIR_KEY_MAX];
    unsigned char h[32];
    int rc = pair_key(sid_b64, client_id, key, sizeof(key));

    /* One entry per (session, client), written whole by one put: two code
     * exchanges of one session at the same moment on two instances each
     * write their own entry, so neither can lose the other's client (a
     * list read, extended and written back could). */
    if (rc != 0)
        return rc;
    dz_sha256(key, strlen(key), h);
    return dz_store_put(st, DZ_OIDC_NS_SID, h, sizeof(h), one, sizeof(one) - 1, ttl_ms, 0);
}

int dz_oidc_sid_take(struct dz_store *st, const struct dz_policy_set *ps, const char *sid_b64,
                     json_t **out)
{
    char key[PAIR_KEY_MAX];
    unsigned char h[32];
    struct dz_buf b;
    int rc = 0;

    *out = json_array();
    if (!*out)
        return DZ_ERR_NOMEM;
    /* The candidates are the clients the policies register with a
     * back-channel URI: only those were ever recorded, and a client the
     * policies no longer hold has nowhere to be told. */
    for (size_t i = 0; ps && i < ps->n_services; i++) {
        const struct dz_policy_oidc *o = ps->services[i].oidc;
        int r;

        if (!o || !o->backchannel_logout_uri || pair_key(sid_b64, o->client_id, key, sizeof(key)))
            continue;
        dz_sha256(key, strlen(key), h);
        dz_buf_init(&b, 16);
        r = dz_store_take(st, DZ_OIDC_NS_SID, h, sizeof(h), &b);
        dz_buf_wipe(&b);
        if (r == 0)
            json_array_append_new(*out, json_string(o->client_id));
        else if (r != DZ_ERR_NOTFOUND && rc == 0)
            rc = r;
    }
    return rc;
}
