/*
 * card_token.c - darvaza-card's access to the cards through libp11 (see
 * card.h): load a PKCS#11 module, list its tokens and their certificates,
 * pick a card's certificate, log in once with the PIN, sign on the card.
 * The private key never leaves the card: libp11's EVP_PKEY forwards the
 * signature to C_Sign.  This file never keeps, prints or retries the PIN: a
 * wrong PIN is reported with what the token says about the tries left, and
 * the program stops (each retry walks a real card towards being blocked).
 */
#include "card.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libp11.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/secret.h"
#include "keys/ecdsa_sig.h"
#include "keys/sigverify.h"
#include "pki/certid.h"

#include "base/compat.h"

/* PKCS#11 return values libp11 reports as reasons of its CKR error library
 * (its header does not carry pkcs11.h). */
#define P11_CKR_PIN_INCORRECT 0xA0UL
#define P11_CKR_PIN_INVALID 0xA1UL
#define P11_CKR_PIN_LEN_RANGE 0xA2UL
#define P11_CKR_PIN_EXPIRED 0xA3UL
#define P11_CKR_PIN_LOCKED 0xA4UL

#define MAX_ID 64

struct dz_card_module {
    char path[1024];
    PKCS11_CTX *ctx;
    PKCS11_SLOT *slots;
    unsigned int nslots;
};

struct dz_card_key {
    struct dz_card_module *m;
    unsigned long slot_id; /* to find the slot again after PKCS11_update_slots */
    char token_label[64];
    char key_label[64];
    unsigned char id[MAX_ID];
    size_t id_len;
    X509 *cert;
    EVP_PKEY *priv; /* a handle: C_Sign on the card */
    bool logged_in;
    char warning[128];
};

/* The PKCS#11 reason libp11 left in the error queue (0 if none); the
 * queue is emptied. */
static unsigned long take_ckr(void)
{
    int lib = ERR_get_CKR_code();
    unsigned long e;
    unsigned long ckr = 0;

    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == lib && ckr == 0)
            ckr = (unsigned long)ERR_GET_REASON(e);
    }
    return ckr;
}

/* The first OpenSSL/libp11 error as text, for a message; the queue is
 * emptied. */
static const char *take_error(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();

    if (e == 0) {
        snprintf(buf, len, "no details from the module");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* Load m->path and read its slots into m.  0 or DZ_ERR_PKCS11 / NOMEM
 * (the reason on stderr); m->ctx is NULL on error. */
static int module_load(struct dz_card_module *m)
{
    char err[256];

    m->ctx = PKCS11_CTX_new();
    if (!m->ctx)
        return DZ_ERR_NOMEM;
    if (PKCS11_CTX_load(m->ctx, m->path) != 0) {
        fprintf(stderr, "darvaza-card: cannot load the PKCS#11 module %s (%s)\n", m->path,
                take_error(err, sizeof(err)));
        PKCS11_CTX_free(m->ctx);
        m->ctx = NULL;
        return DZ_ERR_PKCS11;
    }
    if (PKCS11_enumerate_slots(m->ctx, &m->slots, &m->nslots) != 0) {
        fprintf(stderr, "darvaza-card: %s: cannot list the card readers (%s)\n", m->path,
                take_error(err, sizeof(err)));
        m->slots = NULL;
        m->nslots = 0;
        PKCS11_CTX_unload(m->ctx);
        PKCS11_CTX_free(m->ctx);
        m->ctx = NULL;
        return DZ_ERR_PKCS11;
    }
    return 0;
}

static void module_unload(struct dz_card_module *m)
{
    if (!m->ctx)
        return;
    if (m->slots)
        PKCS11_release_all_slots(m->ctx, m->slots, m->nslots);
    m->slots = NULL;
    m->nslots = 0;
    PKCS11_CTX_unload(m->ctx);
    PKCS11_CTX_free(m->ctx);
    m->ctx = NULL;
}

int dz_card_module_open(const char *module, struct dz_card_module **out)
{
    struct dz_card_module *m;
    int rc;

    *out = NULL;
    if (!module || !*module)
        module = getenv(DZ_CARD_MODULE_ENV);
    if (!module || !*module)
        module = DZ_CARD_DEFAULT_MODULE;
    m = calloc(1, sizeof(*m));
    if (!m)
        return DZ_ERR_NOMEM;
    if (strlen(module) >= sizeof(m->path)) {
        fprintf(stderr, "darvaza-card: the module path is too long\n");
        free(m);
        return DZ_ERR_INVAL;
    }
    memcpy(m->path, module, strlen(module) + 1);
    if ((rc = module_load(m)) != 0) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void dz_card_module_close(struct dz_card_module *m)
{
    if (!m)
        return;
    module_unload(m);
    free(m);
}

static bool has_token(const PKCS11_SLOT *s)
{
    return s->token && s->token->initialized;
}

/* ------------------------------------------------------------------ list */

static void print_time(FILE *to, const ASN1_TIME *t)
{
    struct tm tm;

    if (t && ASN1_TIME_to_tm(t, &tm) == 1)
        fprintf(to, "%04d-%02d-%02d %02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        fputs("?", to);
}

/* The name as one UTF-8 line, control characters escaped. */
static void print_name(FILE *to, const X509_NAME *n)
{
    unsigned long flags = (XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
    BIO *b = BIO_new_fp(to, BIO_NOCLOSE);

    if (!b)
        return;
    X509_NAME_print_ex(b, n, 0, flags);
    BIO_free(b);
}

static void print_id(FILE *to, const unsigned char *id, size_t len)
{
    if (len == 0) {
        fputs("-", to);
        return;
    }
    for (size_t i = 0; i < len && i < MAX_ID; i++)
        fprintf(to, "%02x", id[i]);
}

static const char *pin_state(const PKCS11_TOKEN *t)
{
    if (t->userPinLocked)
        return "PIN blocked";
    if (t->userPinFinalTry)
        return "PIN: last try";
    if (t->userPinCountLow)
        return "PIN: tries running low";
    if (t->secureLogin)
        return "PIN pad";
    if (!t->loginRequired)
        return "no PIN";
    if (!t->userPinSet)
        return "PIN not set";
    return "PIN set";
}

static void print_cert(FILE *to, const PKCS11_CERT *c)
{
    X509 *x = c->x509;
    struct dz_certid id;
    uint32_t ku;
    uint32_t xku;
    int cur;

    fprintf(to, "  certificate \"%s\" id ", c->label ? c->label : "");
    print_id(to, c->id, c->id_len);
    if (!x) {
        fputs(": (unreadable)\n", to);
        return;
    }
    if (dz_certid_extract(x, &id) != 0)
        fputs(": FIN malformed", to);
    else if (id.has_fin)
        fprintf(to, ": FIN %s, %s", id.fin, id.role);
    else
        fputs(": no FIN", to);
    fputc('\n', to);
    fputs("    subject: ", to);
    print_name(to, X509_get_subject_name(x));
    fputs("\n    issuer:  ", to);
    print_name(to, X509_get_issuer_name(x));
    fputs("\n    valid:   ", to);
    print_time(to, X509_get0_notBefore(x));
    fputs(" .. ", to);
    print_time(to, X509_get0_notAfter(x));
    cur = X509_cmp_current_time(X509_get0_notAfter(x));
    if (cur < 0)
        fputs(" (EXPIRED)", to);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        fputs(" (not yet valid)", to);
    ku = X509_get_key_usage(x);
    xku = X509_get_extended_key_usage(x);
    fputs("\n    use:     ", to);
    if ((ku & KU_DIGITAL_SIGNATURE) && !(ku & KU_NON_REPUDIATION))
        fputs("authentication (login)", to);
    else if ((ku & KU_NON_REPUDIATION) && !(ku & KU_DIGITAL_SIGNATURE))
        fputs("signing (documents)", to);
    else if (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))
        fputs("authentication and signing", to);
    else
        fputs("other", to);
    if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) && (xku & XKU_SSL_CLIENT))
        fputs(", TLS client", to);
    fputs("\n    policy:  ", to);
    if (id.has_card_policy)
        fputs("e-signature card", to);
    else if (id.has_mobile_policy)
        fputs("mobile signature (not a card certificate)", to);
    else
        fputs("none of darvaza's", to);
    if (id.has_judge_policy && id.has_judge_title)
        fputs(", judge", to);
    fputc('\n', to);
}

/* Certificates in id order (auth 01 before sign 02), whatever order the
 * module returns them in. */
static int cert_cmp(const void *a, const void *b)
{
    const PKCS11_CERT *x = *(const PKCS11_CERT *const *)a;
    const PKCS11_CERT *y = *(const PKCS11_CERT *const *)b;
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = n ? memcmp(x->id, y->id, n) : 0;

    if (c != 0)
        return c;
    return x->id_len < y->id_len ? -1 : x->id_len > y->id_len;
}

int dz_card_module_list(struct dz_card_module *m, FILE *to)
{
    int n = 0;

    for (unsigned int i = 0; i < m->nslots; i++) {
        PKCS11_SLOT *s = &m->slots[i];
        PKCS11_TOKEN *t = s->token;
        PKCS11_CERT *certs = NULL;
        unsigned int ncerts = 0;

        if (!has_token(s))
            continue;
        n++;
        fprintf(to, "token \"%s\": %s %s, serial %s, slot %lu, %s\n", t->label ? t->label : "",
                t->manufacturer ? t->manufacturer : "?", t->model ? t->model : "?",
                t->serialnr ? t->serialnr : "?", PKCS11_get_slotid_from_slot(s), pin_state(t));
        if (PKCS11_enumerate_certs(t, &certs, &ncerts) != 0) {
            char err[256];
            fprintf(to, "  (cannot read its certificates: %s)\n", take_error(err, sizeof(err)));
            continue;
        }
        if (ncerts == 0)
            fputs("  no certificates\n", to);
        if (ncerts > 0) {
            PKCS11_CERT **order = calloc(ncerts, sizeof(*order));
            for (unsigned int j = 0; order && j < ncerts; j++)
                order[j] = &certs[j];
            if (order)
                qsort(order, ncerts, sizeof(*order), cert_cmp);
            for (unsigned int j = 0; j < ncerts; j++)
                print_cert(to, order ? order[j] : &certs[j]);
            free(order);
        }
    }
    if (n == 0)
        fputs("no cards (no initialised token in any slot)\n", to);
    return n;
}

/* ------------------------------------------------------------------- key */

static PKCS11_SLOT *slot_of(const struct dz_card_key *k)
{
    if (!k->m->ctx)
        return NULL;
    for (unsigned int i = 0; i < k->m->nslots; i++)
        if (PKCS11_get_slotid_from_slot(&k->m->slots[i]) == k->slot_id)
            return &k->m->slots[i];
    return NULL;
}

static PKCS11_SLOT *find_token(struct dz_card_module *m, const char *label)
{
    PKCS11_SLOT *found = NULL;
    int count = 0;

    for (unsigned int i = 0; i < m->nslots; i++) {
        PKCS11_SLOT *s = &m->slots[i];
        if (!has_token(s))
            continue;
        count++;
        if (label && s->token->label && strcmp(s->token->label, label) == 0) {
            if (found) {
                fprintf(stderr, "darvaza-card: two cards are labelled \"%s\"\n", label);
                return NULL;
            }
            found = s;
        }
    }
    if (label) {
        if (!found)
            fprintf(stderr,
                    "darvaza-card: no card labelled \"%s\" (darvaza-card list shows the cards)\n",
                    label);
        return found;
    }
    if (count == 1) {
        for (unsigned int i = 0; i < m->nslots; i++)
            if (has_token(&m->slots[i]))
                return &m->slots[i];
    }
    if (count == 0)
        fprintf(stderr, "darvaza-card: no card found (is the card in the reader? is "
                        "the module right?)\n");
    else
        fprintf(stderr,
                "darvaza-card: %d cards present: choose one with --token LABEL "
                "(darvaza-card list shows them)\n",
                count);
    return NULL;
}

int dz_card_key_open(struct dz_card_module *m, const char *token_label, const char *key_label,
                     struct dz_card_key **out)
{
    struct dz_card_key *k = NULL;
    PKCS11_SLOT *slot;
    PKCS11_CERT *certs = NULL;
    PKCS11_CERT *cert = NULL;
    unsigned int ncerts = 0;
    bool by_default = !key_label;
    char err[256];
    int rc;

    *out = NULL;
    if (!key_label)
        key_label = DZ_CARD_DEFAULT_KEY;
    slot = find_token(m, token_label);
    if (!slot)
        return DZ_ERR_NOTFOUND;
    if (PKCS11_enumerate_certs(slot->token, &certs, &ncerts) != 0) {
        fprintf(stderr, "darvaza-card: cannot read the certificates on \"%s\" (%s)\n",
                slot->token->label, take_error(err, sizeof(err)));
        return DZ_ERR_PKCS11;
    }
    for (unsigned int i = 0; i < ncerts; i++) {
        if (certs[i].label && strcmp(certs[i].label, key_label) == 0) {
            if (cert) {
                fprintf(stderr, "darvaza-card: two certificates on \"%s\" are labelled \"%s\"\n",
                        slot->token->label, key_label);
                return DZ_ERR_INVAL;
            }
            cert = &certs[i];
        }
    }
    /* Cards label their objects as their issuer likes: without an "auth"
     * label the authentication certificate is the one with id 01. */
    for (unsigned int i = 0; !cert && by_default && i < ncerts; i++)
        if (certs[i].id_len == 1 && certs[i].id[0] == 0x01)
            cert = &certs[i];
    if (!cert || !cert->x509) {
        fprintf(stderr, "darvaza-card: no certificate \"%s\" on the card \"%s\"\n", key_label,
                slot->token->label);
        return DZ_ERR_NOTFOUND;
    }
    if (cert->id_len == 0 || cert->id_len > MAX_ID) {
        fprintf(stderr, "darvaza-card: the certificate \"%s\" has no usable id\n", key_label);
        return DZ_ERR_INVAL;
    }
    k = calloc(1, sizeof(*k));
    if (!k)
        return DZ_ERR_NOMEM;
    k->m = m;
    k->slot_id = PKCS11_get_slotid_from_slot(slot);
    snprintf(k->token_label, sizeof(k->token_label), "%s", slot->token->label);
    snprintf(k->key_label, sizeof(k->key_label), "%s", cert->label ? cert->label : key_label);
    memcpy(k->id, cert->id, cert->id_len);
    k->id_len = cert->id_len;
    if (X509_up_ref(cert->x509) != 1) {
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    k->cert = cert->x509;
    if (slot->token->userPinLocked)
        snprintf(k->warning, sizeof(k->warning), "the card's PIN is blocked");
    else if (slot->token->userPinFinalTry)
        snprintf(k->warning, sizeof(k->warning),
                 "this is the last PIN try: a wrong PIN blocks the card");
    else if (slot->token->userPinCountLow)
        snprintf(k->warning, sizeof(k->warning), "wrong PINs were entered: few tries are left");
    *out = k;
    k = NULL;
    rc = 0;
out:
    dz_card_key_free(k);
    return rc;
}

void dz_card_key_free(struct dz_card_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->priv);
    X509_free(k->cert);
    free(k);
}

X509 *dz_card_key_cert(const struct dz_card_key *k)
{
    return k->cert;
}

const char *dz_card_key_token_label(const struct dz_card_key *k)
{
    return k->token_label;
}

const char *dz_card_key_pin_warning(const struct dz_card_key *k)
{
    return k->warning;
}

bool dz_card_key_needs_pin(const struct dz_card_key *k, bool *pinpad)
{
    PKCS11_SLOT *s = slot_of(k);

    *pinpad = s && s->token && s->token->secureLogin;
    return !s || !s->token || s->token->loginRequired;
}

/* After a refused PIN: what the token now says about the tries left. */
static void wrong_pin_text(struct dz_card_key *k, unsigned long ckr, char *why, size_t why_len)
{
    PKCS11_SLOT *s;

    if (ckr == P11_CKR_PIN_LOCKED) {
        snprintf(why, why_len, "the PIN is blocked: the card must be unblocked with its PUK");
        return;
    }
    if (ckr == P11_CKR_PIN_EXPIRED) {
        snprintf(why, why_len, "the PIN has expired: change it first");
        return;
    }
    if (ckr == P11_CKR_PIN_LEN_RANGE || ckr == P11_CKR_PIN_INVALID) {
        snprintf(why, why_len, "wrong PIN (not a valid PIN for this card)");
        return;
    }
    /* Re-read the token flags, the only count PKCS#11 gives.  libp11's
     * PKCS11_update_slots crashes here (0.4.12), and the key is of no more
     * use after a refused PIN: load the module afresh (C_Finalize, then
     * C_Initialize) and read the token info again. */
    EVP_PKEY_free(k->priv);
    k->priv = NULL;
    k->logged_in = false;
    module_unload(k->m);
    s = module_load(k->m) == 0 ? slot_of(k) : NULL;
    ERR_clear_error();
    if (s && s->token && s->token->userPinLocked)
        snprintf(why, why_len, "wrong PIN: the PIN is now blocked");
    else if (s && s->token && s->token->userPinFinalTry)
        snprintf(why, why_len, "wrong PIN (1 try left)");
    else if (s && s->token && s->token->userPinCountLow)
        snprintf(why, why_len, "wrong PIN (few tries left)");
    else
        snprintf(why, why_len, "wrong PIN");
}

int dz_card_key_login(struct dz_card_key *k, const char *pin, char *why, size_t why_len)
{
    PKCS11_SLOT *slot = slot_of(k);
    PKCS11_KEY *keys = NULL;
    PKCS11_KEY *key = NULL;
    unsigned int nkeys = 0;
    int logged = 0;
    char err[256];

    why[0] = '\0';
    if (!slot || !slot->token) {
        snprintf(why, why_len, "the card \"%s\" is gone", k->token_label);
        return DZ_ERR_PKCS11;
    }
    if (slot->token->loginRequired && (PKCS11_is_logged_in(slot, 0, &logged) != 0 || !logged)) {
        if (PKCS11_open_session(slot, 0) != 0) {
            snprintf(why, why_len, "cannot open a session with the card (%s)",
                     take_error(err, sizeof(err)));
            return DZ_ERR_PKCS11;
        }
        /* Exactly one attempt (see the file comment). */
        if (PKCS11_login(slot, 0, pin) != 0) {
            unsigned long ckr = take_ckr();
            if (ckr == P11_CKR_PIN_INCORRECT || ckr == P11_CKR_PIN_LOCKED ||
                ckr == P11_CKR_PIN_EXPIRED || ckr == P11_CKR_PIN_LEN_RANGE ||
                ckr == P11_CKR_PIN_INVALID) {
                wrong_pin_text(k, ckr, why, why_len);
                return DZ_ERR_DENIED;
            }
            snprintf(why, why_len, "the card refused the login (PKCS#11 error 0x%lx)", ckr);
            return DZ_ERR_PKCS11;
        }
    }
    k->logged_in = true;
    if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
        snprintf(why, why_len, "cannot list the card's keys (%s)", take_error(err, sizeof(err)));
        return DZ_ERR_PKCS11;
    }
    for (unsigned int i = 0; i < nkeys; i++) {
        if (keys[i].isPrivate && keys[i].id_len == k->id_len &&
            memcmp(keys[i].id, k->id, k->id_len) == 0) {
            key = &keys[i];
            break;
        }
    }
    if (!key) {
        snprintf(why, why_len, "the card has no private key for the certificate \"%s\"",
                 k->key_label);
        return DZ_ERR_NOTFOUND;
    }
    k->priv = PKCS11_get_private_key(key);
    if (!k->priv) {
        snprintf(why, why_len, "cannot use the card's private key (%s)",
                 take_error(err, sizeof(err)));
        return DZ_ERR_PKCS11;
    }
    return 0;
}

/* ------------------------------------------------------------------ sign */

/* The algorithm that fits the certificate's key, and the EC field size. */
static int choose_alg(EVP_PKEY *pub, char alg[DZ_CARD_ALG_MAX], size_t *field_len,
                      const EVP_MD **md)
{
    char group[64];
    size_t glen = 0;

    switch (EVP_PKEY_get_base_id(pub)) {
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1)
            return DZ_ERR_INVAL;
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            snprintf(alg, DZ_CARD_ALG_MAX, "ES256");
            *field_len = 32;
            *md = EVP_sha256();
            return 0;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            snprintf(alg, DZ_CARD_ALG_MAX, "ES384");
            *field_len = 48;
            *md = EVP_sha384();
            return 0;
        }
        return DZ_ERR_INVAL;
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(pub) < 2048 || EVP_PKEY_get_size(pub) > DZ_CARD_SIG_MAX)
            return DZ_ERR_INVAL;
        snprintf(alg, DZ_CARD_ALG_MAX, "RS256");
        *field_len = 0;
        *md = EVP_sha256();
        return 0;
    default:
        return DZ_ERR_INVAL;
    }
}

int dz_card_key_sign(struct dz_card_key *k, const unsigned char *msg, size_t len,
                     char alg[DZ_CARD_ALG_MAX], unsigned char *sig, size_t *sig_len)
{
    EVP_PKEY *pub = X509_get0_pubkey(k->cert);
    EVP_PKEY_CTX *ctx = NULL;
    const EVP_MD *md = NULL;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    unsigned char der[DZ_CARD_SIG_MAX + 16];
    size_t der_len = sizeof(der);
    size_t field_len = 0;
    char err[256];
    int rc;

    alg[0] = '\0';
    *sig_len = 0;
    if (!k->logged_in || !k->priv)
        return DZ_ERR_STATE;
    if (!pub || choose_alg(pub, alg, &field_len, &md) != 0) {
        fprintf(stderr, "darvaza-card: the card's key is not one the gateway accepts "
                        "(EC P-256, P-384 or RSA >= 2048 bits)\n");
        alg[0] = '\0';
        return DZ_ERR_INVAL;
    }
    if (EVP_Digest(msg, len, digest, &dlen, md, NULL) != 1) {
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    ctx = EVP_PKEY_CTX_new(k->priv, NULL);
    if (!ctx || EVP_PKEY_sign_init(ctx) != 1) {
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    if (field_len == 0 && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
                           EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)) {
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    if (EVP_PKEY_sign(ctx, der, &der_len, digest, dlen) != 1) {
        fprintf(stderr, "darvaza-card: the card did not sign (%s)\n", take_error(err, sizeof(err)));
        rc = DZ_ERR_PKCS11;
        goto out;
    }
    if (field_len) {
        if (dz_ecdsa_sig_der_to_raw(der, der_len, field_len, sig) != 0) {
            fprintf(stderr, "darvaza-card: the card returned a malformed ECDSA signature\n");
            rc = DZ_ERR_PKCS11;
            goto out;
        }
        *sig_len = 2 * field_len;
    } else {
        if (der_len > DZ_CARD_SIG_MAX) {
            rc = DZ_ERR_PKCS11;
            goto out;
        }
        memcpy(sig, der, der_len);
        *sig_len = der_len;
    }
    /* A card whose key does not belong to its certificate fails here, with
     * a message that says so, instead of as a bad_signature at the gateway. */
    if (dz_sig_verify(pub, alg, msg, len, sig, *sig_len) != 0) {
        fprintf(stderr, "darvaza-card: the card's signature does not verify with its "
                        "certificate: key and certificate do not belong together\n");
        rc = DZ_ERR_CRYPTO;
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        alg[0] = '\0';
        *sig_len = 0;
        ERR_clear_error();
    }
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_cleanse(digest, sizeof(digest));
    return rc;
}
