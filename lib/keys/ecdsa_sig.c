/* ecdsa_sig.c - see ecdsa_sig.h.  OpenSSL does the encoding; the decoding
 * is a strict DER parser of its own (the signer decodes every signature it
 * makes), checked against OpenSSL's decoder in test_ecdsa_sig.c; both
 * directions make the checks OpenSSL does not (trailing bytes, canonical
 * form, range) in one place. */
#include "keys/ecdsa_sig.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "base/err.h"

#include "base/compat.h"

/* The group orders, big-endian at the field size (SEC 2 / FIPS 186-4
 * D.1.2), so the range check is a memcmp on the raw form.
 * test_ecdsa_sig.c compares them with OpenSSL's EC_GROUP_get0_order. */
static const unsigned char order_p256[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const unsigned char order_p384[48] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73};
static const unsigned char order_p521[66] = {
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x51, 0x86, 0x87, 0x83, 0xbf, 0x2f, 0x96, 0x6b,
    0x7f, 0xcc, 0x01, 0x48, 0xf7, 0x09, 0xa5, 0xd0, 0x3b, 0xb5, 0xc9, 0xb8, 0x89, 0x9c,
    0x47, 0xae, 0xbb, 0x6f, 0xb7, 0x1e, 0x91, 0x38, 0x64, 0x09};

static const unsigned char *order_for(size_t field_len)
{
    switch (field_len) {
    case 32:
        return order_p256;
    case 48:
        return order_p384;
    case 66:
        return order_p521;
    default:
        return NULL;
    }
}

/* The largest DER form for a field size: SEQUENCE header (3 with a long
 * length) and two INTEGERs of field_len bytes plus a sign byte. */
static size_t der_max(size_t field_len)
{
    return 3 + 2 * (2 + field_len + 1);
}

/* 1 <= v < order, v and order big-endian of the same length. */
static bool in_range(const unsigned char *v, const unsigned char *order, size_t len)
{
    unsigned char any = 0;

    for (size_t i = 0; i < len; i++)
        any |= v[i];
    return any != 0 && memcmp(v, order, len) < 0;
}

size_t dz_ecdsa_sig_field_len(const EVP_PKEY *pkey)
{
    char group[64];
    size_t len = 0;
    int nid;

    if (!pkey || !EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len))
        return 0;
    nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    switch (nid) {
    case NID_X9_62_prime256v1:
        return 32;
    case NID_secp384r1:
        return 48;
    case NID_secp521r1:
        return 66;
    default:
        return 0;
    }
}

int dz_ecdsa_sig_raw_to_der(const unsigned char *raw, size_t raw_len, size_t field_len,
                            unsigned char *der, size_t der_cap, size_t *der_len)
{
    const unsigned char *order = order_for(field_len);
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL;
    BIGNUM *s = NULL;
    unsigned char *p;
    int n;
    int rc;

    if (der_len)
        *der_len = 0;
    if (!raw || !der || !der_len || !order || raw_len != 2 * field_len)
        return DZ_ERR_INVAL;
    if (!in_range(raw, order, field_len) || !in_range(raw + field_len, order, field_len))
        return DZ_ERR_PARSE;
    rc = DZ_ERR_NOMEM;
    es = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int)field_len, NULL);
    s = BN_bin2bn(raw + field_len, (int)field_len, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by es */
    n = i2d_ECDSA_SIG(es, NULL);
    if (n <= 0)
        goto out;
    if ((size_t)n > der_cap) {
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    p = der;
    if (i2d_ECDSA_SIG(es, &p) != n)
        goto out;
    *der_len = (size_t)n;
    rc = 0;
out:
    ERR_clear_error();
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

/* One DER INTEGER at *p (before end) that is a positive value of at most
 * field_len bytes, in its one DER form (minimal length, no superfluous
 * leading zero), into out[field_len] left-padded.  Advances *p. */
static bool der_uint(const unsigned char **p, const unsigned char *end, size_t field_len,
                     unsigned char *out)
{
    const unsigned char *q = *p;
    size_t len;

    /* Tag, then a short-form length: an INTEGER of 66 bytes and a sign
     * byte still has one (a long form for under 128 bytes is not DER). */
    if (end - q < 2 || q[0] != 0x02 || q[1] >= 0x80)
        return false;
    len = q[1];
    q += 2;
    if (len == 0 || (size_t)(end - q) < len)
        return false;
    if (q[0] & 0x80)
        return false; /* negative */
    if (q[0] == 0x00 && len > 1) {
        if (!(q[1] & 0x80))
            return false; /* a leading zero DER would not write */
        q++;
        len--;
    }
    if (len > field_len)
        return false;
    memset(out, 0, field_len - len);
    memcpy(out + field_len - len, q, len);
    *p = q + len;
    return true;
}

/* Parsed by hand rather than d2i_ECDSA_SIG plus two i2d_ECDSA_SIG to check
 * the form: the signer converts every signature it makes, and that round
 * trip through OpenSSL cost about 1 us, 5 % of an ES256 signature. */
int dz_ecdsa_sig_der_to_raw(const unsigned char *der, size_t der_len, size_t field_len,
                            unsigned char *raw)
{
    const unsigned char *order = order_for(field_len);
    const unsigned char *p = der;
    const unsigned char *end;
    size_t body;
    int rc = DZ_ERR_PARSE;

    if (!der || !raw || !order)
        return DZ_ERR_INVAL;
    memset(raw, 0, 2 * field_len);
    if (der_len < 2 || der_len > der_max(field_len) || p[0] != 0x30)
        return DZ_ERR_PARSE;
    /* SEQUENCE length: short form below 128, else 0x81 and one byte of at
     * least 128 (the only DER forms for what der_max allows). */
    if (p[1] < 0x80) {
        body = p[1];
        p += 2;
    } else if (p[1] == 0x81 && der_len >= 3 && p[2] >= 0x80) {
        body = p[2];
        p += 3;
    } else {
        return DZ_ERR_PARSE;
    }
    /* Bytes after the SEQUENCE mean a token or library gave us something
     * we do not understand: refuse rather than guess. */
    if (body != der_len - (size_t)(p - der))
        return DZ_ERR_PARSE;
    end = der + der_len;
    if (!der_uint(&p, end, field_len, raw) || !der_uint(&p, end, field_len, raw + field_len) ||
        p != end)
        goto out;
    if (!in_range(raw, order, field_len) || !in_range(raw + field_len, order, field_len))
        goto out;
    rc = 0;
out:
    if (rc != 0)
        memset(raw, 0, 2 * field_len);
    return rc;
}
