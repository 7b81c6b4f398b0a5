/*
 * card_answer.c - see card_answer.h.  Parsing only: what comes out is still
 * a claim (an unverified certificate and a signature) for auth_card.c to
 * check.
 */
#include "auth/card_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/b64.h"
#include "base/err.h"
#include "keys/sigverify.h"
#include "pki/x509check.h"

#include "base/compat.h"

#define MAX_CERT_B64 ((DZ_X509_MAX_CERT_DER / 3 + 1) * 4)
#define MAX_SIG_B64 2048
#define MAX_NONCE 64

/* A string member no longer than max, or NULL. */
static const char *str_member(const json_t *obj, const char *key, size_t max)
{
    const json_t *v = json_object_get(obj, key);
    const char *s = json_string_value(v);

    if (!s || json_string_length(v) > max || strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

/* Base64 of a non-empty value.  Web eID sends standard base64; the URL-safe
 * alphabet is tolerated for tokens passed through URL-minded code. */
static int decode(const char *v, bool url_too, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (dz_b64_decode(v, strlen(v), false, out, out_len) == 0 && *out_len > 0)
        return 0;
    free(*out);
    *out = NULL;
    *out_len = 0;
    if (url_too && dz_b64_decode(v, strlen(v), true, out, out_len) == 0 && *out_len > 0)
        return 0;
    free(*out);
    *out = NULL;
    *out_len = 0;
    return DZ_ERR_INVAL;
}

/* "web-eid:1" or "web-eid:1.<digits>": version 1, any minor (minor versions
 * are backwards compatible, a new major is not). */
static bool webeid_v1(const char *f)
{
    static const char prefix[] = "web-eid:1";
    const char *p = f + sizeof(prefix) - 1;

    if (strncmp(f, prefix, sizeof(prefix) - 1) != 0)
        return false;
    if (*p == '\0')
        return true;
    if (*p != '.' || p[1] == '\0')
        return false;
    return strspn(p + 1, "0123456789") == strlen(p + 1);
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int dz_card_answer_parse(const json_t *body, struct dz_card_answer *out, const char **why)
{
    struct dz_card_answer a;
    const json_t *tok = body;
    const char *cert;
    const char *sig;
    const char *alg;
    int rc = DZ_ERR_INVAL;

    if (out)
        memset(out, 0, sizeof(*out));
    *why = "the body must be an object";
    memset(&a, 0, sizeof(a));
    if (!out || !json_is_object(body))
        return DZ_ERR_INVAL;
    if (json_object_get(body, "authToken")) {
        tok = json_object_get(body, "authToken");
        a.format = DZ_CARD_ANSWER_WEBEID;
        if (!json_is_object(tok)) {
            *why = "authToken must be an object";
            goto out;
        }
    } else if (json_object_get(body, "unverifiedCertificate")) {
        a.format = DZ_CARD_ANSWER_WEBEID;
    }
    a.nonce = str_member(body, "nonce", MAX_NONCE);
    alg = str_member(tok, "algorithm", sizeof(a.algorithm) - 1);
    if (!a.nonce || !a.nonce[0] || !alg || !alg[0]) {
        *why = "nonce and algorithm are required strings";
        goto out;
    }
    snprintf(a.algorithm, sizeof(a.algorithm), "%s", alg);
    if (a.format == DZ_CARD_ANSWER_WEBEID) {
        const char *f = str_member(tok, "format", sizeof(a.token_format) - 1);
        const json_t *av = json_object_get(tok, "appVersion");
        const char *app = str_member(tok, "appVersion", sizeof(a.app_version) - 1);

        if (!f || !webeid_v1(f)) {
            *why = "format must be web-eid:1 (a Web eID authentication token)";
            goto out;
        }
        snprintf(a.token_format, sizeof(a.token_format), "%s", f);
        /* Informative only (it names the app that made the token), yet it
         * reaches the audit log: bounded, printable, or refused. */
        if (av && (!app || !printable(app))) {
            *why = "appVersion must be a short printable string";
            goto out;
        }
        if (app)
            snprintf(a.app_version, sizeof(a.app_version), "%s", app);
        cert = str_member(tok, "unverifiedCertificate", MAX_CERT_B64);
    } else {
        cert = str_member(tok, "certificate", MAX_CERT_B64);
    }
    sig = str_member(tok, "signature", MAX_SIG_B64);
    if (!cert || decode(cert, a.format == DZ_CARD_ANSWER_WEBEID, &a.cert_der, &a.cert_len) != 0) {
        *why = a.format == DZ_CARD_ANSWER_WEBEID ? "unverifiedCertificate must be base64"
                                                 : "certificate must be base64";
        goto out;
    }
    if (!sig || decode(sig, a.format == DZ_CARD_ANSWER_WEBEID, &a.sig, &a.sig_len) != 0) {
        *why = "signature must be base64";
        goto out;
    }
    *out = a;
    memset(&a, 0, sizeof(a));
    *why = NULL;
    rc = 0;
out:
    dz_card_answer_cleanup(&a);
    return rc;
}

void dz_card_answer_cleanup(struct dz_card_answer *a)
{
    if (!a)
        return;
    free(a->cert_der);
    free(a->sig);
    a->cert_der = NULL;
    a->sig = NULL;
    a->cert_len = a->sig_len = 0;
}

static int digest(const EVP_MD *md, const char *s, unsigned char *out, unsigned *out_len)
{
    return EVP_Digest(s, strlen(s), out, out_len, md, NULL) == 1 ? 0 : DZ_ERR_CRYPTO;
}

int dz_card_answer_message(const struct dz_card_answer *a, const char *origin,
                           unsigned char out[DZ_CARD_ANSWER_MSG_MAX], size_t *out_len)
{
    /* darvaza-card always hashes with SHA-256 (docs/api.md); Web eID with
     * the hash of the signature algorithm (its token specification). */
    const EVP_MD *md =
        a->format == DZ_CARD_ANSWER_WEBEID ? dz_sig_alg_md(a->algorithm) : EVP_sha256();
    unsigned n1 = 0;
    unsigned n2 = 0;

    *out_len = 0;
    if (!md || EVP_MD_get_size(md) * 2 > DZ_CARD_ANSWER_MSG_MAX)
        return DZ_ERR_INVAL;
    if (digest(md, origin, out, &n1) != 0 || digest(md, a->nonce, out + n1, &n2) != 0)
        return DZ_ERR_CRYPTO;
    *out_len = (size_t)n1 + n2;
    return 0;
}
