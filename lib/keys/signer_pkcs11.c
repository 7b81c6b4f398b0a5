/*
 * signer_pkcs11.c - the signer backend whose private key stays on a PKCS#11
 * token (an HSM, or SoftHSM2 in tests), found through an RFC 7512 URI and
 * used through libp11.  This file parses the URI, loads the module, logs in
 * once with the PIN from a file (wiped right after; a wrong PIN is never
 * retried, so we cannot lock the token), and signs digests on the token.
 * It must never extract, copy or log the private key or the PIN: libp11
 * gives us an EVP_PKEY whose sign operation is a C_Sign call on the token.
 *
 * Tokens and PKCS#11 sessions are not built for concurrent use from many
 * threads, so every token operation runs under one mutex; signing blocks and
 * belongs on the gateway's blocking pool (dz_signer_is_blocking).
 */
#include "keys/signer.h"
#include "keys/signer_int.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secret.h"

#include "base/compat.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define URI_MAX 2048
#define ATTR_MAX 256 /* decoded bytes of one attribute value */
#define ID_MAX 64

struct p11_uri {
    char token[ATTR_MAX + 1];
    char manufacturer[ATTR_MAX + 1];
    char model[ATTR_MAX + 1];
    char serial[ATTR_MAX + 1];
    char object[ATTR_MAX + 1];
    char type[ATTR_MAX + 1];
    char module_path[ATTR_MAX + 1];
    char pin_source[ATTR_MAX + 1];
    char slot_id[ATTR_MAX + 1];
    unsigned char id[ID_MAX];
    size_t id_len;
    /* Which attributes were given (an empty value still counts). */
    unsigned seen;
};

enum {
    A_TOKEN = 1u << 0,
    A_MANUFACTURER = 1u << 1,
    A_MODEL = 1u << 2,
    A_SERIAL = 1u << 3,
    A_OBJECT = 1u << 4,
    A_TYPE = 1u << 5,
    A_MODULE_PATH = 1u << 6,
    A_PIN_SOURCE = 1u << 7,
    A_SLOT_ID = 1u << 8,
    A_ID = 1u << 9,
};

struct p11_impl {
    pthread_mutex_t lock; /* serialises every call into the module */
    PKCS11_CTX *ctx;
    PKCS11_SLOT *slots;
    unsigned int nslots;
    EVP_PKEY *priv;     /* a handle: the key material stays on the token */
    EVP_PKEY *pub;      /* provider-native public copy */
    EVP_PKEY_CTX *sctx; /* reused under the lock */
};

/* Percent-decode [v, v+n) into out (at most cap bytes).  Text values may not
 * decode to NUL; binary ones (id) may.  Returns the length or -1. */
static long pct_decode(const char *v, size_t n, unsigned char *out, size_t cap, bool binary)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3)
                return -1;
            hi = dz_hex_digit(v[i + 1]);
            lo = dz_hex_digit(v[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c <= 0x20 || c >= 0x7f) {
            return -1;
        }
        if (c == 0 && !binary)
            return -1;
        if (o >= cap)
            return -1;
        out[o++] = c;
    }
    return (long)o;
}

struct attr_def {
    const char *name;
    unsigned bit;
    size_t offset;
    bool in_query;
};

static const struct attr_def attr_defs[] = {
    {"token", A_TOKEN, offsetof(struct p11_uri, token), false},
    {"manufacturer", A_MANUFACTURER, offsetof(struct p11_uri, manufacturer), false},
    {"model", A_MODEL, offsetof(struct p11_uri, model), false},
    {"serial", A_SERIAL, offsetof(struct p11_uri, serial), false},
    {"object", A_OBJECT, offsetof(struct p11_uri, object), false},
    {"type", A_TYPE, offsetof(struct p11_uri, type), false},
    {"slot-id", A_SLOT_ID, offsetof(struct p11_uri, slot_id), false},
    {"id", A_ID, 0, false},
    {"module-path", A_MODULE_PATH, offsetof(struct p11_uri, module_path), true},
    {"pin-source", A_PIN_SOURCE, offsetof(struct p11_uri, pin_source), true},
};

static int parse_attr(struct p11_uri *u, const char *a, size_t n, bool in_query)
{
    const char *eq = memchr(a, '=', n);
    size_t name_len;
    long len;

    if (!eq) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri", "attribute without '=' in PKCS#11 URI");
        return DZ_ERR_INVAL;
    }
    name_len = (size_t)(eq - a);
    if (name_len == 9 && memcmp(a, "pin-value", 9) == 0) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri",
               "a PIN in the PKCS#11 URI is refused: give a PIN file instead");
        return DZ_ERR_INVAL;
    }
    for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++) {
        const struct attr_def *d = &attr_defs[i];
        if (strlen(d->name) != name_len || memcmp(d->name, a, name_len) != 0)
            continue;
        /* RFC 7512 puts module-path/pin-source in the query; we also accept
         * them as path attributes (as libp11 and p11-kit do) but not the
         * other way round. */
        if (in_query && !d->in_query)
            break;
        if (u->seen & d->bit) {
            dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri", "attribute %s given twice", d->name);
            return DZ_ERR_INVAL;
        }
        u->seen |= d->bit;
        if (d->bit == A_ID) {
            len = pct_decode(eq + 1, n - name_len - 1, u->id, sizeof(u->id), true);
            if (len > 0)
                u->id_len = (size_t)len;
        } else {
            len = pct_decode(eq + 1, n - name_len - 1, (unsigned char *)u + d->offset, ATTR_MAX,
                             false);
            if (len >= 0)
                ((char *)u + d->offset)[len] = '\0';
        }
        if (len < 0 || (len == 0 && d->bit == A_ID)) {
            dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri", "bad value for attribute %s", d->name);
            return DZ_ERR_INVAL;
        }
        return 0;
    }
    dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri", "unsupported PKCS#11 URI attribute '%.*s'",
           (int)(name_len > 64 ? 64 : name_len), a);
    return DZ_ERR_INVAL;
}

/* Parse "pkcs11:" path-attrs [ "?" query-attrs ].  Pure function. */
static int parse_uri(const char *uri, struct p11_uri *u)
{
    size_t len = strlen(uri);
    const char *p;
    const char *end;
    const char *q;
    int rc;

    memset(u, 0, sizeof(*u));
    if (len > URI_MAX || strncmp(uri, "pkcs11:", 7) != 0)
        return DZ_ERR_INVAL;
    p = uri + 7;
    end = uri + len;
    q = memchr(p, '?', (size_t)(end - p));
    for (const char *seg_end = q ? q : end; p < seg_end;) {
        const char *semi = memchr(p, ';', (size_t)(seg_end - p));
        const char *e = semi ? semi : seg_end;
        if (e == p)
            return DZ_ERR_INVAL;
        if ((rc = parse_attr(u, p, (size_t)(e - p), false)) != 0)
            return rc;
        p = semi ? semi + 1 : seg_end;
        if (semi && p == seg_end)
            return DZ_ERR_INVAL; /* trailing ';' */
    }
    if (q) {
        if (q + 1 == end)
            return DZ_ERR_INVAL; /* "?" with no attribute */
        for (p = q + 1; p < end;) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *e = amp ? amp : end;
            if (e == p)
                return DZ_ERR_INVAL;
            if ((rc = parse_attr(u, p, (size_t)(e - p), true)) != 0)
                return rc;
            p = amp ? amp + 1 : end;
            if (amp && p == end)
                return DZ_ERR_INVAL;
        }
    }
    if (!(u->seen & (A_OBJECT | A_ID))) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri", "the PKCS#11 URI names no object or id");
        return DZ_ERR_INVAL;
    }
    if ((u->seen & A_TYPE) && strcmp(u->type, "private") != 0) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11_uri", "type must be 'private' for a signing key");
        return DZ_ERR_INVAL;
    }
    return 0;
}

static bool token_matches(const struct p11_uri *u, PKCS11_SLOT *slot)
{
    const PKCS11_TOKEN *t = slot->token;

    if (!t || !t->initialized)
        return false;
    if ((u->seen & A_TOKEN) && (!t->label || strcmp(t->label, u->token) != 0))
        return false;
    if ((u->seen & A_MANUFACTURER) &&
        (!t->manufacturer || strcmp(t->manufacturer, u->manufacturer) != 0))
        return false;
    if ((u->seen & A_MODEL) && (!t->model || strcmp(t->model, u->model) != 0))
        return false;
    if ((u->seen & A_SERIAL) && (!t->serialnr || strcmp(t->serialnr, u->serial) != 0))
        return false;
    if (u->seen & A_SLOT_ID) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lu", PKCS11_get_slotid_from_slot(slot));
        if (strcmp(buf, u->slot_id) != 0)
            return false;
    }
    return true;
}

static bool key_matches(const struct p11_uri *u, const PKCS11_KEY *k)
{
    if ((u->seen & A_OBJECT) && (!k->label || strcmp(k->label, u->object) != 0))
        return false;
    if ((u->seen & A_ID) &&
        (k->id_len != u->id_len || !k->id || memcmp(k->id, u->id, u->id_len) != 0))
        return false;
    return true;
}

static int p11_sign(void *impl, const unsigned char digest[32], unsigned char sig[64])
{
    struct p11_impl *k = impl;
    unsigned char der[80];
    size_t der_len = sizeof(der);
    int ok;

    pthread_mutex_lock(&k->lock);
    ok = EVP_PKEY_sign(k->sctx, der, &der_len, digest, 32) == 1;
    pthread_mutex_unlock(&k->lock);
    if (!ok) {
        dz_log_openssl("signer_pkcs11_sign");
        return DZ_ERR_PKCS11;
    }
    return dz_signer_sig_from_der(der, der_len, sig);
}

static EVP_PKEY *p11_public_key(const void *impl)
{
    const struct p11_impl *k = impl;
    return k->pub;
}

static void p11_free(void *impl)
{
    struct p11_impl *k = impl;

    if (!k)
        return;
    /* The EVP_PKEY handles point into libp11's slot objects: free them first. */
    EVP_PKEY_CTX_free(k->sctx);
    EVP_PKEY_free(k->priv);
    EVP_PKEY_free(k->pub);
    if (k->ctx) {
        if (k->slots)
            PKCS11_release_all_slots(k->ctx, k->slots, k->nslots);
        PKCS11_CTX_unload(k->ctx);
        PKCS11_CTX_free(k->ctx);
    }
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static const struct dz_signer_ops p11_ops = {
    .kind = "pkcs11",
    .is_blocking = true,
    .sign_digest = p11_sign,
    .public_key = p11_public_key,
    .free = p11_free,
};

/* Sign a fixed digest and verify it with the public copy: proves at start-up
 * that the token key and the key we will publish belong together. */
static int self_test(struct p11_impl *k)
{
    unsigned char digest[32];
    unsigned char der[80];
    size_t der_len = sizeof(der);
    EVP_PKEY_CTX *v = NULL;
    int rc = DZ_ERR_PKCS11;

    memset(digest, 0x5a, sizeof(digest));
    if (EVP_PKEY_sign(k->sctx, der, &der_len, digest, sizeof(digest)) != 1) {
        dz_log_openssl("signer_pkcs11_selftest");
        goto out;
    }
    v = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL);
    if (!v || EVP_PKEY_verify_init(v) != 1 ||
        EVP_PKEY_verify(v, der, der_len, digest, sizeof(digest)) != 1) {
        dz_log_openssl("signer_pkcs11_selftest");
        dz_log(DZ_LOG_ERROR, "signer_pkcs11",
               "the token's signature does not verify with its public key");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_CTX_free(v);
    return rc;
}

int dz_signer_pkcs11_open(const char *uri, const char *pin_file, struct dz_signer **out)
{
    struct p11_uri *u = NULL;
    struct p11_impl *k = NULL;
    PKCS11_SLOT *slot = NULL;
    PKCS11_KEY *keys = NULL;
    PKCS11_KEY *key = NULL;
    unsigned int nkeys = 0;
    const char *module;
    const char *pin_path;
    char *pin = NULL;
    int rc;

    *out = NULL;
    u = calloc(1, sizeof(*u));
    if (!u)
        return DZ_ERR_NOMEM;
    if ((rc = parse_uri(uri, u)) != 0)
        goto out;

    module = (u->seen & A_MODULE_PATH) ? u->module_path : getenv("DARVAZA_PKCS11_MODULE");
    if (!module || !*module)
        module = DEFAULT_MODULE;
    pin_path = pin_file;
    if (!pin_path && (u->seen & A_PIN_SOURCE))
        pin_path = strncmp(u->pin_source, "file:", 5) == 0 ? u->pin_source + 5 : u->pin_source;

    k = calloc(1, sizeof(*k));
    if (!k) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_init(&k->lock, NULL);
    k->ctx = PKCS11_CTX_new();
    if (!k->ctx) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    if (PKCS11_CTX_load(k->ctx, module) != 0) {
        dz_log_openssl("signer_pkcs11_load");
        dz_log(DZ_LOG_ERROR, "signer_pkcs11", "%s: cannot load PKCS#11 module", module);
        PKCS11_CTX_free(k->ctx);
        k->ctx = NULL;
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    if (PKCS11_enumerate_slots(k->ctx, &k->slots, &k->nslots) != 0) {
        dz_log_openssl("signer_pkcs11_slots");
        k->slots = NULL;
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    for (unsigned int i = 0; i < k->nslots; i++) {
        if (!token_matches(u, &k->slots[i]))
            continue;
        if (slot) {
            dz_log(DZ_LOG_ERROR, "signer_pkcs11",
                   "the PKCS#11 URI matches more than one token: name it more precisely");
            rc = DZ_ERR_INVAL;
            goto out;
        }
        slot = &k->slots[i];
    }
    if (!slot) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11", "no initialised token matches the PKCS#11 URI");
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }

    if (slot->token->loginRequired) {
        if (!pin_path) {
            dz_log(DZ_LOG_ERROR, "signer_pkcs11", "token '%s' needs a PIN file",
                   slot->token->label);
            rc = DZ_ERR_INVAL;
            goto out;
        }
        if ((rc = dz_signer_read_secret(pin_path, &pin)) != 0)
            goto out;
        /* One attempt only: retrying a wrong PIN walks the token towards
         * lock-out, which an operator must see, not a loop. */
        if (PKCS11_open_session(slot, 0) != 0 || PKCS11_login(slot, 0, pin) != 0) {
            dz_log_openssl("signer_pkcs11_login");
            dz_log(DZ_LOG_ERROR, "signer_pkcs11", "login to token '%s' failed", slot->token->label);
            rc = DZ_ERR_PKCS11;
            goto out;
        }
        dz_secret_free_str(pin);
        pin = NULL;
    }

    if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
        dz_log_openssl("signer_pkcs11_keys");
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    for (unsigned int i = 0; i < nkeys; i++) {
        if (!key_matches(u, &keys[i]))
            continue;
        if (key) {
            dz_log(DZ_LOG_ERROR, "signer_pkcs11",
                   "the PKCS#11 URI matches more than one private key");
            rc = DZ_ERR_INVAL;
            goto out;
        }
        key = &keys[i];
    }
    if (!key) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11", "no private key on token '%s' matches the URI",
               slot->token->label);
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    if (PKCS11_get_key_type(key) != EVP_PKEY_EC) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11", "key '%s' is not an EC key",
               key->label ? key->label : "");
        rc = DZ_ERR_INVAL;
        goto out;
    }
    k->priv = PKCS11_get_private_key(key);
    if (!k->priv) {
        dz_log_openssl("signer_pkcs11_key");
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    /* libp11 fills in the public point of the private key's EVP_PKEY (from
     * the matching public object); PKCS11_get_public_key would give the same
     * point but leaks in libp11 0.4.12. */
    k->pub = dz_signer_public_copy(k->priv);
    if (!k->pub) {
        dz_log_openssl("signer_pkcs11_key");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    if (!dz_signer_key_is_p256(k->pub)) {
        dz_log(DZ_LOG_ERROR, "signer_pkcs11", "key '%s' is not on P-256",
               key->label ? key->label : "");
        rc = DZ_ERR_INVAL;
        goto out;
    }
    k->sctx = EVP_PKEY_CTX_new(k->priv, NULL);
    if (!k->sctx || EVP_PKEY_sign_init(k->sctx) != 1) {
        dz_log_openssl("signer_pkcs11_init");
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    if ((rc = self_test(k)) != 0)
        goto out;
    rc = dz_signer_new(&p11_ops, k, out);
    k = NULL; /* owned by the signer now, even on error */
out:
    dz_secret_free_str(pin);
    p11_free(k);
    free(u);
    return rc;
}
