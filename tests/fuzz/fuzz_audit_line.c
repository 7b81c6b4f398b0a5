/*
 * fuzz_audit_line.c - arbitrary bytes as an audit log, through the verifier
 * (buffer and file readers) and the per-line parser the writer uses to
 * continue a chain.  Head signatures are checked against a fixed public key
 * (kid "fuzz-1"); the seed corpus was written with its private key, so the
 * fuzzer starts from logs whose heads verify.  Property checked besides "no
 * crash": the file reader (chunked, bounded line buffer) and the buffer
 * reader reach the same verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "audit/audit.h"

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

static void load_key(void)
{
    BIO *b;

    if (pub)
        return;
    b = BIO_new_mem_buf(pub_pem, -1);
    pub = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!pub)
        abort();
}

static void same(const struct dz_audit_report *a, const struct dz_audit_report *b)
{
    if (a->lines != b->lines || a->first_bad_line != b->first_bad_line ||
        a->heads_verified != b->heads_verified || a->heads_seen != b->heads_seen ||
        a->last_seq != b->last_seq || a->unsigned_tail != b->unsigned_tail ||
        (a->reason == NULL) != (b->reason == NULL) ||
        (a->reason && strcmp(a->reason, b->reason) != 0)) {
        fprintf(stderr, "buffer and file verdicts differ: %s@%llu vs %s@%llu\n",
                a->reason ? a->reason : "ok", (unsigned long long)a->first_bad_line,
                b->reason ? b->reason : "ok", (unsigned long long)b->first_bad_line);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dz_audit_keys keys = {find_key, NULL};
    struct dz_audit_report r_buf;
    struct dz_audit_report r_file;
    struct dz_audit_report r_nokeys;
    struct dz_audit_line l;
    const uint8_t *p = data;
    const uint8_t *end = data + size;
    char path[64];
    int fd;

    load_key();
    if (dz_audit_verify_buf(data, size, &keys, &r_buf) != 0)
        return 0;
    if (dz_audit_verify_buf(data, size, NULL, &r_nokeys) != 0)
        return 0;
    /* Without keys nothing can fail earlier than with them. */
    if (r_nokeys.first_bad_line &&
        (!r_buf.first_bad_line || r_nokeys.first_bad_line < r_buf.first_bad_line))
        abort();

    /* Each line through the writer's tail parser. */
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (dz_audit_parse_line((const char *)p, len, &l) == 0 && l.seq == 0)
            abort();
        p += len + 1;
    }

    /* The same bytes as a file: the chunked reader must agree. */
    fd = memfd_create("audit", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (dz_audit_verify_file(path, &keys, &r_file) == 0)
            same(&r_buf, &r_file);
    }
    close(fd);
    return 0;
}
