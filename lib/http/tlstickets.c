/*
 * tlstickets.c - session ticket keys read from files; see tlstickets.h.
 * Owns the key files' reading and the ticket callback.  It must never log,
 * return or leave behind key bytes: every buffer that held one is wiped, on
 * every path, and the installed keys when their context is freed.
 */
#include "http/tlstickets.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/err.h"
#include "base/log.h"
#include "base/secretfile.h"

#include "base/compat.h"

#define NAME_LEN 16
#define HMAC_LEN 32
#define AES_LEN 32

struct ticket_key {
    unsigned char name[NAME_LEN];
    unsigned char hmac[HMAC_LEN];
    unsigned char aes[AES_LEN];
};

/* Immutable once installed: worker threads read it in the callback without
 * a lock. */
struct ticket_keys {
    size_t n;
    struct ticket_key key[DZ_TLS_TICKET_KEYS_MAX];
};

_Static_assert(sizeof(struct ticket_key) == DZ_TLS_TICKET_KEY_FILE_LEN,
               "a key file is the key, byte for byte");

static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int keys_index = -1;

static void keys_wipe_free(struct ticket_keys *tk)
{
    if (!tk)
        return;
    OPENSSL_cleanse(tk, sizeof(*tk));
    free(tk);
}

/* OpenSSL calls this for our slot when the context is freed. */
static void keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    keys_wipe_free(ptr);
}

static void index_init(void)
{
    keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, keys_free);
}

static int set_mac_key(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, HMAC_LEN);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/*
 * enc 1: a new ticket, under the first key.  enc 0: the ticket's key name
 * looked up among all keys; unknown -> 0 (OpenSSL then makes a full
 * handshake, never an error); the first key -> 1; another -> 2 (resume, and
 * OpenSSL issues a new ticket under the first key).  -1 only when OpenSSL
 * itself fails, which ends the handshake: fail closed.
 */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    const struct ticket_keys *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), keys_index);
    const EVP_CIPHER *cipher = EVP_aes_256_cbc();
    int iv_len = EVP_CIPHER_get_iv_length(cipher);
    size_t found = DZ_TLS_TICKET_KEYS_MAX;

    if (!tk || tk->n == 0 || iv_len <= 0 || iv_len > EVP_MAX_IV_LENGTH)
        return -1;
    if (enc) {
        const struct ticket_key *k = &tk->key[0];
        if (RAND_bytes(iv, iv_len) != 1)
            return -1;
        memcpy(key_name, k->name, NAME_LEN);
        if (EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1 || set_mac_key(hctx, k) != 0)
            return -1;
        return 1;
    }
    /* Every key compared, in constant time: which key (and whether any)
     * matched shows in the outcome anyway, but not through timing.  (The
     * names are no secret: every ticket carries one in clear.) */
    for (size_t i = 0; i < tk->n; i++) {
        bool match = CRYPTO_memcmp(key_name, tk->key[i].name, NAME_LEN) == 0;
        if (match && found == DZ_TLS_TICKET_KEYS_MAX)
            found = i;
    }
    if (found == DZ_TLS_TICKET_KEYS_MAX)
        return 0;
    if (set_mac_key(hctx, &tk->key[found]) != 0 ||
        EVP_DecryptInit_ex(cctx, cipher, NULL, tk->key[found].aes, iv) != 1)
        return -1;
    return found == 0 ? 1 : 2;
}

/* One key file into *k: exactly DZ_TLS_TICKET_KEY_FILE_LEN bytes. */
static int read_key(const char *path, struct ticket_key *k, char *why, size_t why_cap)
{
    /* One byte more than a key, to tell "too long" from "exactly right"
     * whatever st_size said.  Symbolic links are followed, as for every key
     * file darvaza reads: a link "current.key" -> a dated file is a usual
     * way to rotate. */
    unsigned char buf[DZ_TLS_TICKET_KEY_FILE_LEN + 1];
    size_t got = 0;
    int rc = dz_secret_file_read_raw(path, buf, sizeof(buf), &got, why, why_cap);

    if (rc == 0 && got != DZ_TLS_TICKET_KEY_FILE_LEN) {
        dz_why(why, why_cap,
               "%s: %s than %d bytes; a ticket key file is exactly %d (openssl rand %d)", path,
               got > DZ_TLS_TICKET_KEY_FILE_LEN ? "more" : "fewer", DZ_TLS_TICKET_KEY_FILE_LEN,
               DZ_TLS_TICKET_KEY_FILE_LEN, DZ_TLS_TICKET_KEY_FILE_LEN);
        rc = DZ_ERR_INVAL;
    }
    if (rc == 0) {
        memcpy(k->name, buf, NAME_LEN);
        memcpy(k->hmac, buf + NAME_LEN, HMAC_LEN);
        memcpy(k->aes, buf + NAME_LEN + HMAC_LEN, AES_LEN);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int dz_tls_ticket_keys_set(SSL_CTX *ctx, const char *const *files, size_t n, char *why,
                           size_t why_cap)
{
    struct ticket_keys *tk = NULL;
    int rc = DZ_ERR_INVAL;

    if (why && why_cap)
        why[0] = '\0';
    if (!ctx || !files || n == 0 || n > DZ_TLS_TICKET_KEYS_MAX) {
        dz_why(why, why_cap, "1 to %d ticket key files", DZ_TLS_TICKET_KEYS_MAX);
        return DZ_ERR_INVAL;
    }
    /* The card listener's context: it issues no tickets at all, and keys
     * must not quietly turn them back on. */
    if (SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET) {
        dz_why(why, why_cap,
               "this listener asks for client certificates and issues no session tickets");
        return DZ_ERR_INVAL;
    }
    if (pthread_once(&index_once, index_init) != 0 || keys_index < 0) {
        dz_why(why, why_cap, "cannot attach the keys to the TLS context");
        return DZ_ERR_CRYPTO;
    }
    if (SSL_CTX_get_ex_data(ctx, keys_index)) {
        dz_why(why, why_cap, "ticket keys are already set on this TLS context");
        return DZ_ERR_INVAL;
    }
    tk = calloc(1, sizeof(*tk));
    if (!tk) {
        dz_why(why, why_cap, "out of memory");
        return DZ_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!files[i]) {
            dz_why(why, why_cap, "a ticket key file name is missing");
            rc = DZ_ERR_INVAL;
            goto out;
        }
        rc = read_key(files[i], &tk->key[i], why, why_cap);
        if (rc != 0)
            goto out;
        tk->n = i + 1;
        /* The same name twice: a copied file instead of a new key; the
         * second could never decrypt anything. */
        for (size_t j = 0; j < i; j++) {
            if (CRYPTO_memcmp(tk->key[i].name, tk->key[j].name, NAME_LEN) == 0) {
                dz_why(why, why_cap,
                       "%s: the same key name as %s (make each key with openssl rand 80)", files[i],
                       files[j]);
                rc = DZ_ERR_INVAL;
                goto out;
            }
        }
    }
    if (SSL_CTX_set_ex_data(ctx, keys_index, tk) != 1) {
        dz_why(why, why_cap, "cannot attach the keys to the TLS context");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
        SSL_CTX_set_ex_data(ctx, keys_index, NULL); /* nothing installed: wiped below */
        dz_why(why, why_cap, "cannot install the ticket key callback");
        dz_log_openssl("tls_config");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    tk = NULL; /* the context's now: keys_free wipes it */
    rc = 0;
out:
    keys_wipe_free(tk);
    return rc;
}
