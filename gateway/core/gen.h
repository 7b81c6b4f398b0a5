/*
 * gen.h - the gateway's process-wide objects and its configuration
 * generations.
 *
 * A generation (struct dz_gen) is everything a reload may change: the
 * config, the compiled policies, the assertion signers and the JWKS they
 * publish, the TLS contexts.  It is built and validated off the request
 * path, then handed to every worker with dz_worker_post; each worker keeps
 * its own reference, and each request takes one for its lifetime, so a
 * reload never changes the rules under a request in flight.  The old
 * generation is freed when its last user lets go.
 *
 * Process-lifetime objects (store, accounts, audit, metrics, pool, httpd)
 * do not change on reload.
 */
#ifndef DZ_GEN_H
#define DZ_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/config.h"
#include "policy/policy.h"
#include "state/session.h"

struct dz_accounts;
struct dz_audit;
struct dz_batchsign;
struct dz_audit_tree;
struct dz_accesswatch;
struct dz_httpc;
struct dz_httpd;
struct dz_jwks;
struct dz_metrics;
struct dz_pool;
struct dz_signer;
struct dz_store;
struct dz_worker;
struct dz_x509_trust;
struct dz_web;
struct dz_ocsp_cache;

#define DZ_GEN_MAX_KEYS 8
#define DZ_GEN_MAX_LISTENERS 16

struct dz_gen {
    atomic_int refs;
    uint64_t number; /* 1, 2, ... one per successful load */
    struct dz_config *config;
    struct dz_policy_set *policies;
    struct dz_signer *signers[DZ_GEN_MAX_KEYS];
    const char *kids[DZ_GEN_MAX_KEYS]; /* borrowed from config */
    size_t nsigners;
    size_t active;                      /* index of the signing key */
    char *jwks_json;                    /* the published key set */
    SSL_CTX *tls[DZ_GEN_MAX_LISTENERS]; /* per listener; NULL for h2c */
    struct dz_session_limits session_limits;
    struct dz_x509_trust *card_trust;   /* NULL: card login off */
    struct dz_x509_trust *mobile_trust; /* NULL: mobile and QR login off */
    char *mssp_secret;                  /* relying-party secret (wiped on free) */
    X509_STORE *tsa_trust;              /* documents.tsa_ca; NULL: no TSA (no level T) */
    struct dz_web *web;                 /* the portal's pages (web.h); NULL: none */
};

/* Build a generation from a config file; err gets `file:line: reason`.
 * Main thread (reads files, may talk to a PKCS#11 token). */
int dz_gen_load(const char *config_path, uint64_t number, struct dz_gen **out, char *err,
                size_t err_len);
void dz_gen_ref(struct dz_gen *g);
void dz_gen_unref(struct dz_gen *g);

struct dz_gw {
    struct dz_gen *gen; /* main thread's current generation */
    struct dz_store *store;
    struct dz_accounts *accounts;
    struct dz_audit *audit;
    struct dz_audit_tree *audit_tree;   /* the log's Merkle tree (audit_tree.h) */
    struct dz_accesswatch *accesswatch; /* the access index (accesswatch.h) */
    struct dz_metrics *metrics;
    struct dz_pool *pool;
    struct dz_httpd *httpd;
    struct dz_ocsp_cache *ocsp_cache; /* shared by every generation */
    atomic_bool ready;
    atomic_bool draining;
    struct dz_gw_worker *workers[64];
    unsigned nworkers;
};

/* Per worker thread; created by the engine's worker_init. */
struct dz_gw_worker {
    struct dz_gw *gw;
    struct dz_worker *worker;
    struct dz_gen *gen;     /* this worker's reference */
    struct dz_httpc *httpc; /* outbound client on this loop */
    char rid_prefix[13];    /* random per worker, so ids differ across restarts */
    uint64_t rid_counter;
    struct dz_batchsign *batch; /* batch-signed assertions (core/batchsign.h), lazily */
};

#endif
