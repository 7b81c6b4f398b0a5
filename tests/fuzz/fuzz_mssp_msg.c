/*
 * fuzz_mssp_msg.c - the mobile-signature message parsers (peers/mssp_msg.c)
 * over arbitrary bytes: a relying party's start request, the job a phone is
 * handed, the phone's answer, the MSSP's phones file and a QR payload.
 * Every input goes to all five.  Checks their promises: what is accepted is
 * well formed (a valid phone number, a normal FIN, a digest of its type's
 * length, a verification code that is the hash's, a signature only with
 * OK), and a refusal leaves the output cleared with a reason.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../peers/mssp_msg.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_start(const uint8_t *data, size_t size)
{
    struct dz_mssp_start s;
    const char *why = NULL;

    if (dz_mssp_parse_start(data, size, &s, &why) == 0) {
        assert(why == NULL);
        assert(dz_mssp_phone_valid(s.phone));
        assert(dz_fin_is_normal(s.fin));
        assert(s.hash_len == dz_mssp_hash_len(s.hash_type));
        assert(s.relying_party[0] != '\0');
        assert(strlen(s.display_text) <= DZ_MSSP_TEXT_MAX);
        assert(s.verification_code == -1 ||
               s.verification_code == dz_mid_verification_code(s.hash, s.hash_len));
    } else {
        assert(why != NULL);
        assert(s.phone[0] == '\0' && s.hash_len == 0 && s.verification_code == -1);
    }
}

static void check_job(const uint8_t *data, size_t size)
{
    struct dz_mssp_job j;
    const char *why = NULL;

    if (dz_mssp_parse_job(data, size, &j, &why) == 0) {
        assert(dz_mssp_sid_valid(j.session_id));
        assert(j.hash_len == dz_mssp_hash_len(j.hash_type));
        assert(strlen(j.verification_code) == DZ_MID_CODE_LEN);
    } else {
        assert(why != NULL && j.session_id[0] == '\0' && j.hash_len == 0);
    }
}

static void check_answer(const uint8_t *data, size_t size)
{
    struct dz_mssp_answer a;
    const char *why = NULL;

    if (dz_mssp_parse_answer(data, size, &a, &why) == 0) {
        assert(dz_mssp_sid_valid(a.session_id));
        assert((a.result == DZ_MSSP_OK) == (a.signature_len > 0));
        assert(a.signature_len <= DZ_MSSP_SIG_MAX);
        assert(a.result == DZ_MSSP_OK || a.result == DZ_MSSP_USER_CANCELLED);
    } else {
        assert(why != NULL && a.signature_len == 0 && a.session_id[0] == '\0');
    }
}

static void check_holders(const uint8_t *data, size_t size)
{
    struct dz_mssp_holder *h = NULL;
    size_t n = 0;
    long bad = 0;
    const char *why = NULL;
    int rc = dz_mssp_parse_holders(data, size, &h, &n, &bad, &why);

    if (rc == 0) {
        assert(n >= 1 && n <= DZ_MSSP_HOLDERS_MAX && bad == -1);
        for (size_t i = 0; i < n; i++) {
            assert(dz_mssp_phone_valid(h[i].phone));
            assert(dz_fin_is_normal(h[i].fin));
            assert(h[i].cert_file[0] != '\0');
            for (size_t j = 0; j < i; j++)
                assert(strcmp(h[i].phone, h[j].phone) != 0);
        }
    } else {
        assert(h == NULL && n == 0);
        assert(rc == DZ_ERR_NOMEM || why != NULL);
    }
    free(h);
}

static void check_qr(const uint8_t *data, size_t size)
{
    struct dz_qr_payload q;

    if (dz_qr_payload_parse((const char *)data, size, &q) == 0) {
        size_t idl = strlen(q.id);

        assert(size > 13 && memcmp(data, "darvaza-qr:1:", 13) == 0);
        assert(idl >= 1 && idl <= DZ_QR_ID_MAX);
        assert(memcmp(data + 13, q.id, idl) == 0 && data[13 + idl] == ':');
        assert(q.t <= 86400);
        assert(strlen(q.code) >= 16 && strlen(q.code) <= 64);
        assert(memcmp(data + size - strlen(q.code), q.code, strlen(q.code)) == 0);
    } else {
        assert(q.id[0] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_start(data, size);
    check_job(data, size);
    check_answer(data, size);
    check_holders(data, size);
    check_qr(data, size);
    return 0;
}
