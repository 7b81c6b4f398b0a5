/*
 * fake_pki.c - see fake_pki.h.
 */
#include "fake_pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/conf.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static void need(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fake_pki: %s failed\n", what);
        abort();
    }
}

EVP_PKEY *fake_pki_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    need(k != NULL, "EVP_EC_gen");
    return k;
}

X509 *fake_pki_cert(const char *subject, long serial, EVP_PKEY *key, X509 *issuer,
                    EVP_PKEY *issuer_key, const char *const *exts)
{
    int64_t now = (int64_t)time(NULL);

    return fake_pki_cert_at(subject, serial, key, issuer, issuer_key, now - 3600, now + 86400, NULL,
                            exts);
}

X509 *fake_pki_cert_at(const char *subject, long serial, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, int64_t not_before, int64_t not_after,
                       const EVP_MD *md, const char *const *exts)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    CONF *conf = NCONF_new(NULL);
    X509V3_CTX ctx;
    char buf[512];
    char *save = NULL;

    need(x && n && conf, "X509_new");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after);
    snprintf(buf, sizeof(buf), "%s", subject);
    for (char *f = strtok_r(buf, "/", &save); f; f = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(f, '=');
        need(eq != NULL, "subject syntax");
        *eq = '\0';
        need(X509_NAME_add_entry_by_txt(n, f, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0) ==
                 1,
             "subject entry");
    }
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509V3_set_nconf(&ctx, conf);
    for (; exts && *exts; exts++) {
        char name[64];
        const char *eq = strchr(*exts, '=');
        X509_EXTENSION *e;
        need(eq != NULL, "extension syntax");
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *exts), *exts);
        e = X509V3_EXT_nconf(conf, &ctx, name, eq + 1);
        need(e != NULL, *exts);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    NCONF_free(conf);
    need(X509_sign(x, issuer_key ? issuer_key : key, md ? md : EVP_sha256()) > 0, "X509_sign");
    return x;
}

void fake_pki_write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");

    need(f != NULL, path);
    /* The signer refuses (warns about) a key others may read. */
    need(fchmod(fileno(f), 0600) == 0, "fchmod");
    need(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1, "PEM_write_PrivateKey");
    fclose(f);
}

void fake_pki_write_cert(const char *path, X509 *cert)
{
    FILE *f = fopen(path, "a");

    need(f != NULL, path);
    need(PEM_write_X509(f, cert) == 1, "PEM_write_X509");
    fclose(f);
}

static char *b64(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);

    need(out != NULL, "malloc");
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

char *fake_pki_cert_b64(X509 *cert)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    char *out;

    need(n > 0, "i2d_X509");
    out = b64(der, (size_t)n);
    OPENSSL_free(der);
    return out;
}

char *fake_pki_sign_es256_b64(EVP_PKEY *key, const unsigned char *msg, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    const unsigned char *p = der;
    size_t dlen = sizeof(der);
    unsigned char raw[64];
    ECDSA_SIG *sig;
    const BIGNUM *r;
    const BIGNUM *s;
    char *out;

    need(md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(md, der, &dlen, msg, len) == 1,
         "EVP_DigestSign");
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    need(sig != NULL, "d2i_ECDSA_SIG");
    ECDSA_SIG_get0(sig, &r, &s);
    need(BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32, "BN_bn2binpad");
    ECDSA_SIG_free(sig);
    out = b64(raw, sizeof(raw));
    return out;
}

void fake_pki_ca_init(struct fake_pki_ca *ca, const char *name)
{
    static const char *const root_ext[] = {"basicConstraints=critical,CA:true",
                                           "keyUsage=critical,keyCertSign,cRLSign",
                                           "subjectKeyIdentifier=hash", NULL};
    static const char *const ca_ext[] = {
        "basicConstraints=critical,CA:true,pathlen:0", "keyUsage=critical,keyCertSign,cRLSign",
        "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", NULL};
    char subject[128];

    ca->root_key = fake_pki_key();
    ca->ca_key = fake_pki_key();
    snprintf(subject, sizeof(subject), "CN=%s Root", name);
    ca->root = fake_pki_cert(subject, 1, ca->root_key, NULL, NULL, root_ext);
    snprintf(subject, sizeof(subject), "CN=%s CA", name);
    ca->ca = fake_pki_cert(subject, 2, ca->ca_key, ca->root, ca->root_key, ca_ext);
}

void fake_pki_ca_cleanup(struct fake_pki_ca *ca)
{
    EVP_PKEY_free(ca->root_key);
    EVP_PKEY_free(ca->ca_key);
    X509_free(ca->root);
    X509_free(ca->ca);
    memset(ca, 0, sizeof(*ca));
}

void fake_pki_ca_write(const struct fake_pki_ca *ca, const char *path)
{
    fake_pki_write_cert(path, ca->root);
    fake_pki_write_cert(path, ca->ca);
}

X509 *fake_pki_person(const struct fake_pki_ca *ca, EVP_PKEY *key, const char *fin,
                      const char *policy_oid, bool judge, long serial)
{
    char policies[160];
    char subject[256];
    const char *exts[] = {"keyUsage=critical,digitalSignature",
                          "extendedKeyUsage=clientAuth,emailProtection",
                          policies,
                          "subjectKeyIdentifier=hash",
                          "authorityKeyIdentifier=keyid:always",
                          NULL};

    snprintf(policies, sizeof(policies), "certificatePolicies=%s%s%s", policy_oid, judge ? "," : "",
             judge ? "1.3.6.1.4.1.55555.1.2.1" : "");
    snprintf(subject, sizeof(subject),
             "C=AZ/SN=Quliyeva/GN=Ayten/CN=Ayten Quliyeva%s/serialNumber=PNOAZ-%s",
             judge ? "/title=Judge" : "", fin);
    return fake_pki_cert(subject, serial, key, ca->ca, ca->ca_key, exts);
}

char *fake_pki_person_b64(const struct fake_pki_ca *ca, EVP_PKEY *key, const char *fin,
                          const char *policy_oid, bool judge, long serial)
{
    X509 *x = fake_pki_person(ca, key, fin, policy_oid, judge, serial);
    char *out = fake_pki_cert_b64(x);

    X509_free(x);
    return out;
}
