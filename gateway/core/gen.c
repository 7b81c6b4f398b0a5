/*
 * gen.c - building and releasing configuration generations (see gen.h).
 * Runs on the main thread at start and on SIGHUP; a failure leaves nothing
 * behind and the caller keeps the generation it has.
 */
#include "core/gen.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"
#include "base/secret.h"
#include "core/web.h"
#include "http/tls.h"
#include "http/tlstickets.h"
#include "keys/jws.h"
#include "keys/signer.h"
#include "pki/keyfloor.h"
#include "pki/tsp.h"
#include "pki/x509check.h"

#include "base/compat.h"

void dz_gen_ref(struct dz_gen *g)
{
    /* Atomic: workers take and drop references on their own threads while
     * the main thread swaps generations on SIGHUP. */
    atomic_fetch_add(&g->refs, 1);
}

static void gen_free(struct dz_gen *g)
{
    for (size_t i = 0; i < g->nsigners; i++)
        dz_signer_free(g->signers[i]);
    /* Free every slot, not just the ones built: a failed load may stop
     * halfway, and SSL_CTX_free(NULL) is a no-op. */
    for (size_t i = 0; i < DZ_GEN_MAX_LISTENERS; i++)
        SSL_CTX_free(g->tls[i]);
    free(g->jwks_json);
    dz_x509_trust_free(g->card_trust);
    dz_x509_trust_free(g->mobile_trust);
    dz_secret_free_str(g->mssp_secret);
    X509_STORE_free(g->tsa_trust);
    dz_web_free(g->web);
    dz_policy_set_free(g->policies);
    dz_config_free(g->config);
    free(g);
}

void dz_gen_unref(struct dz_gen *g)
{
    /* fetch_sub returns the old value: 1 means this was the last user, so
     * the old generation outlives every request that started under it. */
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        gen_free(g);
}

int dz_gen_load(const char *config_path, uint64_t number, struct dz_gen **out, char *err,
                size_t err_len)
{
    struct dz_gen *g = calloc(1, sizeof(*g));
    struct dz_jwks *jwks = NULL;
    const struct dz_config *cf;
    struct dz_keyfloor floor;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    if (!g) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    atomic_init(&g->refs, 1);
    g->number = number;
    rc = dz_config_load(config_path, &g->config, err, err_len);
    if (rc != 0)
        goto out;
    cf = g->config;
    rc = dz_policy_load_dir(cf->policies, &g->policies, err, err_len);
    if (rc != 0)
        goto out;

    /* Every configured key is opened and published in the JWKS, not only
     * the active one: verifiers pick by kid (docs/internals/signing.md), so
     * an assertion signed with the previous key still verifies while that
     * key stays listed. */
    rc = dz_jwks_new(&jwks);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < cf->signing.n_keys && i < DZ_GEN_MAX_KEYS; i++) {
        const struct dz_config_signing_key *k = &cf->signing.keys[i];
        rc = dz_signer_open(k->key, k->pin_file, &g->signers[i]);
        if (rc != 0) {
            snprintf(err, err_len, "%s:%d: signing key %s: cannot open (%s)", cf->path, k->line,
                     k->kid, dz_err_str(rc));
            goto out;
        }
        g->nsigners++;
        g->kids[i] = k->kid;
        if (strcmp(k->kid, cf->signing.active) == 0)
            g->active = i;
        rc = dz_jwks_add(jwks, k->kid, dz_signer_public_key(g->signers[i]));
        if (rc != 0)
            goto out;
    }
    rc = dz_jwks_to_json(jwks, &g->jwks_json);
    if (rc != 0)
        goto out;

    for (size_t i = 0; i < cf->n_listeners && i < DZ_GEN_MAX_LISTENERS; i++) {
        const struct dz_config_listener *l = &cf->listeners[i];
        bool asks = l->tls.client_auth != DZ_CLIENT_AUTH_NONE;
        if (!l->tls.enabled)
            continue;
        /* Only a listener with client_auth optional or required asks for a
         * client certificate in the handshake (docs/cards.md); the others
         * load no client CA, so they never request one.  Both let the
         * handshake finish whatever the client sends: the card check (with
         * revocation) decides, and the card listener can then tell a person
         * without a card what went wrong instead of a browser's TLS error. */
        rc = dz_tls_server_ctx_new(l->tls.certificate, l->tls.key, asks ? l->tls.client_ca : NULL,
                                   asks, &g->tls[i]);
        if (rc != 0) {
            snprintf(err, err_len, "%s:%d: listener %s:%u: cannot load TLS certificate or key",
                     cf->path, l->line, l->address, (unsigned)l->port);
            goto out;
        }
        /* Read at every load, so a reload (SIGHUP) takes a rotated key
         * list; the old generation's context keeps its keys until its
         * last connection lets go. */
        if (l->tls.n_ticket_keys > 0) {
            char why[PATH_MAX + 160];
            rc = dz_tls_ticket_keys_set(g->tls[i], (const char *const *)l->tls.ticket_keys,
                                        l->tls.n_ticket_keys, why, sizeof(why));
            if (rc != 0) {
                snprintf(err, err_len, "%s:%d: listener %s:%u: tls.ticket_keys: %s", cf->path,
                         l->line, l->address, (unsigned)l->port, why);
                goto out;
            }
        }
    }
    /* The key and signature floor of every trust below (trust: section;
     * the config check already refused values under the fixed floor). */
    floor.rsa_bits = cf->trust.min_rsa_bits;
    floor.ec_bits = cf->trust.min_ec_bits;
    floor.off = false;
    if (cf->cards.ca) {
        if ((rc = dz_x509_trust_new(&g->card_trust)) != 0 ||
            (rc = dz_x509_trust_add_ca_file(g->card_trust, cf->cards.ca)) != 0 ||
            (cf->cards.crl &&
             (rc = dz_x509_trust_add_crl_file(g->card_trust, cf->cards.crl)) != 0)) {
            snprintf(err, err_len, "%s: cards: cannot load %s (%s)", cf->path,
                     rc != 0 && cf->cards.crl ? "the CA or CRL file" : "the CA file",
                     dz_err_str(rc));
            goto out;
        }
    }
    if (g->card_trust && (rc = dz_x509_trust_set_floor(g->card_trust, &floor)) != 0) {
        snprintf(err, err_len, "%s: trust: cannot set the floor (%s)", cf->path, dz_err_str(rc));
        goto out;
    }
    if (cf->mobile.mssp_url) {
        const struct dz_config_mobile *m = &cf->mobile;
        /* Without the CA no mobile certificate could be validated, and
         * without the secret the MSSP refuses our calls: fail the load (the
         * old generation stays), not every mobile request later. */
        if (!m->ca || !m->rp_secret_file) {
            snprintf(err, err_len, "%s: mobile: ca and rp_secret_file are required with mssp_url",
                     cf->path);
            rc = DZ_ERR_INVAL;
            goto out;
        }
        if ((rc = dz_x509_trust_new(&g->mobile_trust)) != 0 ||
            (rc = dz_x509_trust_add_ca_file(g->mobile_trust, m->ca)) != 0 ||
            (m->crl && (rc = dz_x509_trust_add_crl_file(g->mobile_trust, m->crl)) != 0) ||
            (rc = dz_signer_read_secret(m->rp_secret_file, &g->mssp_secret)) != 0) {
            snprintf(err, err_len, "%s: mobile: cannot load the CA, CRL or secret file (%s)",
                     cf->path, dz_err_str(rc));
            goto out;
        }
        if ((rc = dz_x509_trust_set_floor(g->mobile_trust, &floor)) != 0) {
            snprintf(err, err_len, "%s: trust: cannot set the floor (%s)", cf->path,
                     dz_err_str(rc));
            goto out;
        }
    }
    if (cf->documents.tsa_url) {
        if (!cf->documents.tsa_ca) {
            snprintf(err, err_len, "%s: documents: tsa_ca is required with tsa_url", cf->path);
            rc = DZ_ERR_INVAL;
            goto out;
        }
        if ((rc = dz_tsp_trust_load(cf->documents.tsa_ca, &g->tsa_trust)) != 0) {
            snprintf(err, err_len, "%s: documents: cannot load tsa_ca %s (%s)", cf->path,
                     cf->documents.tsa_ca, dz_err_str(rc));
            goto out;
        }
        if ((rc = dz_keyfloor_store_set(g->tsa_trust, &floor)) != 0) {
            snprintf(err, err_len, "%s: trust: cannot set the floor (%s)", cf->path,
                     dz_err_str(rc));
            goto out;
        }
        if ((rc = dz_tsp_trust_set_policies(g->tsa_trust,
                                            (const char *const *)cf->documents.tsa_policies,
                                            cf->documents.n_tsa_policies)) != 0) {
            snprintf(err, err_len, "%s: documents: tsa_policies cannot be used (%s)", cf->path,
                     dz_err_str(rc));
            goto out;
        }
    }
    if (cf->gateway.web_root) {
        rc = dz_web_load(cf->gateway.web_root, &g->web, err, err_len);
        if (rc != 0)
            goto out;
    }
    /* session.c knows no config: it gets these limits from the
     * generation a request started under, so a reload changes them only
     * for requests that start after it. */
    g->session_limits.idle_ms = cf->sessions.idle_ms;
    g->session_limits.idle_high_ms = cf->sessions.idle_high_ms;
    g->session_limits.absolute_ms = cf->sessions.absolute_ms;
    *out = g;
    g = NULL;
    rc = 0;
out:
    dz_jwks_free(jwks);
    if (g)
        gen_free(g);
    return rc;
}
