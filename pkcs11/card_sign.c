/*
 * card_sign.c - `darvaza-card sign` and `darvaza-card verify` (DESIGN
 * §4.7): a detached CAdES-B signature made with the card's non-repudiation
 * key (label "sign", else id 02) through libp11, and the validation report
 * of a signature.  lib/pki/cades.c builds the signed attributes (content-type,
 * message-digest, signing-time, ESS signing-certificate-v2) and their DER
 * SET OF; the card signs it (C_Sign, the key never leaves the token) and the
 * raw r||s becomes the ECDSA-Sig-Value CMS wants.  The PIN comes from a
 * file or the terminal, is wiped once the card has it, and is never
 * retried.  It never sends anything anywhere.
 */
#include "card.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "base/err.h"
#include "base/secret.h"
#include "keys/ecdsa_sig.h"
#include "pki/cades.h"
#include "pki/tsp.h"
#include "pki/x509check.h"

#include "base/compat.h"

#define DOC_MAX DZ_CADES_MAX_DOC

static int read_file(const char *path, size_t max, unsigned char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = DZ_ERR_IO;

    *out = NULL;
    *out_len = 0;
    if (!f) {
        fprintf(stderr, "darvaza-card: cannot read %s\n", path);
        return DZ_ERR_IO;
    }
    buf = malloc(max + 1);
    if (!buf) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f))
        goto out;
    if (n > max) {
        fprintf(stderr, "darvaza-card: %s is larger than %zu bytes\n", path, max);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return NULL;
}

/* The positional arguments (those not an option or an option's value). */
static int positional(int argc, char **argv, const char **pos, int max)
{
    int n = 0;

    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            i++;
            continue;
        }
        if (n >= max)
            return -1;
        pos[n++] = argv[i];
    }
    return n;
}

static bool only_known(int argc, char **argv, const char *const *known)
{
    for (int i = 2; i < argc; i++) {
        bool ok = false;
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        for (const char *const *k = known; *k; k++)
            ok = ok || strcmp(argv[i], *k) == 0;
        if (!ok || i + 1 >= argc) {
            fprintf(stderr, "darvaza-card: %s: unknown option or missing value\n", argv[i]);
            return false;
        }
        i++;
    }
    return true;
}

struct card_signer {
    struct dz_card_key *key;
    char alg[DZ_CARD_ALG_MAX];
};

/* dz_cades_sign_fn: the card signs the DER of the signed attributes. */
static int card_sign_cb(void *arg, const unsigned char *tbs, size_t tbs_len, unsigned char **sig,
                        size_t *sig_len)
{
    struct card_signer *s = arg;
    unsigned char raw[DZ_CARD_SIG_MAX];
    size_t raw_len = sizeof(raw);
    int rc;

    *sig = NULL;
    *sig_len = 0;
    rc = dz_card_key_sign(s->key, tbs, tbs_len, s->alg, raw, &raw_len);
    if (rc)
        return rc;
    if (strcmp(s->alg, "ES256") == 0) {
        unsigned char der[DZ_ECDSA_SIG_DER_MAX];
        size_t der_len = 0;
        rc = dz_ecdsa_sig_raw_to_der(raw, raw_len, 32, der, sizeof(der), &der_len);
        if (rc)
            return rc;
        /* cades frees with free(): hand over a malloc'd copy. */
        *sig = malloc(der_len);
        if (!*sig)
            return DZ_ERR_NOMEM;
        memcpy(*sig, der, der_len);
        *sig_len = der_len;
        return 0;
    }
    if (strcmp(s->alg, "RS256") == 0) {
        *sig = malloc(raw_len);
        if (!*sig)
            return DZ_ERR_NOMEM;
        memcpy(*sig, raw, raw_len);
        *sig_len = raw_len;
        return 0;
    }
    /* The SignedData says SHA-256: a P-384 key would sign with SHA-384. */
    fprintf(stderr, "darvaza-card: sign: the card's key (%s) is not supported for CAdES here\n",
            s->alg);
    return DZ_ERR_INVAL;
}

int dz_card_cmd_sign(int argc, char **argv)
{
    const char *pos[1];
    const char *out_path = NULL;
    char out_buf[4096];
    const char *chain_path = opt(argc, argv, "--chain");
    struct dz_card_module *m = NULL;
    struct card_signer s = {0};
    STACK_OF(X509) *chain = NULL;
    unsigned char *doc = NULL, *sig = NULL;
    size_t doc_len = 0, sig_len = 0;
    char *pin = NULL;
    char why[128] = "";
    bool pinpad = false;
    FILE *f = NULL;
    int rc = 1;

    /* "-o" is not "--"-prefixed: take it out of the positional scan. */
    for (int i = 2; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-o") == 0) {
            out_path = argv[i + 1];
            argv[i] = (char *)"--o";
        }
    }
    if (!only_known(argc, argv,
                    (const char *const[]){"--module", "--token", "--key", "--pin-file", "--chain",
                                          "--o", NULL}) ||
        positional(argc, argv, pos, 1) != 1) {
        fputs("usage: darvaza-card sign FILE [-o OUT] [--token LABEL] [--key LABEL]\n"
              "                         [--pin-file FILE] [--chain CA.pem] [--module PATH]\n",
              stderr);
        return 2;
    }
    if (!out_path) {
        snprintf(out_buf, sizeof(out_buf), "%s.p7s", pos[0]);
        out_path = out_buf;
    }
    if (read_file(pos[0], DOC_MAX, &doc, &doc_len) != 0)
        goto out;
    {
        /* What is about to be signed, before the PIN is asked: the judge
         * compares it with the SHA-256 the portal showed for the document
         * (docs/portal.md "The judge's workspace"). */
        unsigned char md[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256(doc, doc_len, md);
        dz_hex(md, sizeof(md), hex);
        fprintf(stderr, "darvaza-card: signing %s (%zu bytes), SHA-256 %s\n", pos[0], doc_len, hex);
    }
    if (chain_path && dz_x509_load_file(chain_path, &chain) != 0) {
        fprintf(stderr, "darvaza-card: cannot read the chain %s\n", chain_path);
        goto out;
    }
    if (dz_card_module_open(opt(argc, argv, "--module"), &m) != 0 ||
        dz_card_key_open(m, opt(argc, argv, "--token"),
                         opt(argc, argv, "--key") ? opt(argc, argv, "--key") : "sign", &s.key) != 0)
        goto out;
    if (dz_card_key_needs_pin(s.key, &pinpad) && !pinpad) {
        const char *warn = dz_card_key_pin_warning(s.key);
        if (warn && warn[0])
            fprintf(stderr, "darvaza-card: %s\n", warn);
        if ((opt(argc, argv, "--pin-file")
                 ? dz_card_pin_from_file(opt(argc, argv, "--pin-file"), &pin)
                 : dz_card_pin_prompt("Signature PIN: ", &pin)) != 0)
            goto out;
    }
    if (dz_card_key_login(s.key, pin, why, sizeof(why)) != 0) {
        fprintf(stderr, "darvaza-card: sign: %s\n", why[0] ? why : "cannot log in to the card");
        goto out;
    }
    dz_card_pin_free(pin);
    pin = NULL;
    if (dz_cades_sign(doc, doc_len, dz_card_key_cert(s.key), chain, 0, card_sign_cb, &s, &sig,
                      &sig_len) != 0) {
        fputs("darvaza-card: sign: the card could not sign\n", stderr);
        goto out;
    }
    f = fopen(out_path, "wb");
    if (!f || fwrite(sig, 1, sig_len, f) != sig_len || fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "darvaza-card: cannot write %s\n", out_path);
        goto out;
    }
    f = NULL;
    printf("%s\n", out_path);
    rc = 0;
out:
    if (f)
        fclose(f);
    dz_card_pin_free(pin);
    OPENSSL_free(sig);
    free(doc);
    sk_X509_pop_free(chain, X509_free);
    dz_card_key_free(s.key);
    dz_card_module_close(m);
    return rc;
}

int dz_card_cmd_verify(int argc, char **argv)
{
    static const char *const known[] = {"--ca", "--tsa-ca", "--tsa-policy", "--revocation", NULL};
    const char *pos[2];
    const char *ca = opt(argc, argv, "--ca");
    const char *tsa = opt(argc, argv, "--tsa-ca");
    const char *tsa_pol = opt(argc, argv, "--tsa-policy");
    const char *rev = opt(argc, argv, "--revocation");
    struct dz_x509_trust *t = NULL;
    struct dz_cades_verify_opts o;
    struct dz_cades_report r;
    unsigned char *doc = NULL, *sig = NULL;
    size_t doc_len = 0, sig_len = 0;
    json_t *j = NULL;
    char *text = NULL;
    int rc = 1, vrc;

    memset(&o, 0, sizeof(o));
    if (!only_known(argc, argv, known) || positional(argc, argv, pos, 2) != 2 || !ca ||
        !tsa != !tsa_pol ||
        (rev && strcmp(rev, "ocsp") && strcmp(rev, "crl") && strcmp(rev, "none"))) {
        fputs("usage: darvaza-card verify FILE SIG --ca CHAIN.pem\n"
              "                           [--tsa-ca TSA-CA.pem --tsa-policy OID]\n"
              "                           [--revocation ocsp|crl|none]\n"
              "  prints the validation report (JSON); exit 0 only for TOTAL_PASSED\n",
              stderr);
        return 2;
    }
    if (read_file(pos[0], DOC_MAX, &doc, &doc_len) != 0 ||
        read_file(pos[1], DZ_CADES_MAX_SIG, &sig, &sig_len) != 0)
        goto out;
    if (dz_x509_trust_new(&t) != 0 || dz_x509_trust_add_ca_file(t, ca) != 0) {
        fprintf(stderr, "darvaza-card: cannot read the CA file %s\n", ca);
        goto out;
    }
    if (tsa && dz_tsp_trust_load(tsa, &o.tsa_trust) != 0) {
        fprintf(stderr, "darvaza-card: cannot read the TSA CA file %s\n", tsa);
        goto out;
    }
    if (tsa && dz_tsp_trust_set_policies(o.tsa_trust, &tsa_pol, 1) != 0) {
        fprintf(stderr, "darvaza-card: --tsa-policy is not a numeric OID\n");
        goto out;
    }
    o.anchors[0].trust = t;
    o.nanchors = 1;
    o.revocation = !rev || strcmp(rev, "ocsp") == 0 ? DZ_X509_REV_OCSP_CRL
                   : strcmp(rev, "crl") == 0        ? DZ_X509_REV_CRL_ONLY
                                                    : DZ_X509_REV_NONE;
    vrc = dz_cades_verify(doc, doc_len, sig, sig_len, &o, &r);
    if (vrc) {
        fprintf(stderr, "darvaza-card: verify: %s is not a CMS signature (%s)\n", pos[1],
                dz_err_str(vrc));
        goto out;
    }
    j = dz_cades_report_json(&r);
    text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (text)
        printf("%s\n", text);
    rc = strcmp(r.indication, "TOTAL_PASSED") == 0 ? 0 : 1;
out:
    free(text);
    json_decref(j);
    X509_STORE_free(o.tsa_trust);
    dz_x509_trust_free(t);
    free(doc);
    free(sig);
    return rc;
}
