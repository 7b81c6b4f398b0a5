/*
 * fuzz_card_answer.c - arbitrary bytes as the body of POST /auth/card
 * through gateway/auth/card_answer.c (darvaza-card answers and Web eID
 * authentication tokens), then the signed-data builder over what it gave.
 * Promises checked: an accepted answer has a non-empty nonce, certificate
 * and signature; a Web eID one a "web-eid:1" format and a printable
 * appVersion; the signed data is two digests of one hash (64, 96 or 128
 * bytes) or refused; a refusal says why and leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/card_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    struct dz_card_answer a;
    unsigned char msg[DZ_CARD_ANSWER_MSG_MAX];
    size_t len = 1;
    const char *why = NULL;

    if (!j)
        return 0;
    if (dz_card_answer_parse(j, &a, &why) != 0) {
        if (!why || a.cert_der || a.sig || a.nonce)
            abort();
        json_decref(j);
        return 0;
    }
    if (why || !a.nonce || !a.nonce[0] || !a.cert_len || !a.sig_len || !a.algorithm[0])
        abort();
    if (a.format == DZ_CARD_ANSWER_WEBEID) {
        if (strncmp(a.token_format, "web-eid:1", 9) != 0)
            abort();
        for (const char *p = a.app_version; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                abort();
    } else if (a.token_format[0] || a.app_version[0]) {
        abort();
    }
    if (dz_card_answer_message(&a, "https://gw.test", msg, &len) == 0) {
        if (len != 64 && len != 96 && len != 128)
            abort();
    } else if (len != 0) {
        abort();
    }
    dz_card_answer_cleanup(&a);
    json_decref(j);
    return 0;
}
