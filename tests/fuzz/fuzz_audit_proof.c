/*
 * fuzz_audit_proof.c - arbitrary bytes as a transparency proof document
 * (audit/audit_proof.h): parsed, then checked without keys and with a
 * fixed public key (kid "fuzz-1").  Properties besides "no crash": a proof
 * that checks with the key also checks without it (keys only add
 * refusals), and the RFC 9162 verifiers never accept a path longer than
 * the bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "audit/audit_proof.h"
#include "audit/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7eFHYbhg2l6Cxs/5GyWnAtIZz9mn\n"
                              "snEQ79oYq/1qBeHkatYhSrqg5Tt4GcVTfkc9m1khPY2SaMpeGwhQ6RPFJg==\n"
                              "-----END PUBLIC KEY-----\n";

static EVP_PKEY *pub;

static EVP_PKEY *find_key(void *arg, const char *kid)
{
    (void)arg;
    return strcmp(kid, "fuzz-1") == 0 ? pub : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dz_audit_proof p;
    struct dz_audit_keys keys = {find_key, NULL};
    const char *reason = NULL;
    int with_keys;
    int without;

    if (!pub) {
        BIO *b = BIO_new_mem_buf(pub_pem, -1);
        pub = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!pub)
            abort();
    }
    if (dz_audit_proof_parse((const char *)data, size, &p) != 0)
        return 0;
    if (p.path_len > DZ_MERKLE_PATH_MAX)
        abort();
    without = dz_audit_proof_check(&p, NULL, &reason);
    with_keys = dz_audit_proof_check(&p, &keys, &reason);
    if (with_keys == 0 && without != 0)
        abort();
    if (with_keys != 0 && !reason)
        abort();
    /* The raw verifiers over the parsed numbers, whatever they are. */
    (void)dz_merkle_verify_consistency(p.old.tree_size, p.head.tree_size, p.old.root, p.head.root,
                                       (const unsigned char(*)[32])p.path, p.path_len);
    (void)dz_merkle_verify_inclusion(p.head.root, p.seq, p.head.tree_size,
                                     (const unsigned char(*)[32])p.path, p.path_len, p.old.root);
    dz_audit_proof_cleanup(&p);
    return 0;
}
