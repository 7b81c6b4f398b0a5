/*
 * fuzz_fin.c - feeds arbitrary bytes to the FIN and document-number parsers
 * (lib/base/fin.c) and to the password UTF-8 check (gateway/auth/auth_password.c), and
 * checks their promises: success means the normal form is well formed and
 * stable under a second pass; failure leaves "" behind; a text is valid
 * UTF-8 exactly when the text written twice is, with twice the characters.
 * The first byte picks the document pattern (default or a looser one).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_password.h"
#include "base/fin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dz_docpat *pats[2];

static void check_doc(const struct dz_docpat *p, const char *in, size_t n)
{
    char out[DZ_DOC_MAX + 1];
    char again[DZ_DOC_MAX + 1];
    size_t i;
    size_t len;

    if (dz_docpat_match(p, in, n, out, sizeof(out)) != 0) {
        if (out[0] != '\0')
            abort();
        return;
    }
    len = strlen(out);
    if (len == 0 || len > DZ_DOC_MAX)
        abort();
    for (i = 0; i < len; i++)
        if (!((out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9')))
            abort();
    if (dz_docpat_match(p, out, len, again, sizeof(again)) != 0 || strcmp(out, again) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char fin[DZ_FIN_LEN + 1];
    char again[DZ_FIN_LEN + 1];
    const char *in = (const char *)data;

    if (!pats[0]) {
        if (dz_docpat_compile(DZ_DOCPAT_DEFAULT, &pats[0], NULL, 0) != 0 ||
            dz_docpat_compile("[A-Z]{1,4}[0-9]{0,12}|[0-9A-Z]*", &pats[1], NULL, 0) != 0)
            abort();
    }

    if (dz_fin_normalize(in, size, fin) == 0) {
        if (size != DZ_FIN_LEN || !dz_fin_is_normal(fin))
            abort();
        if (dz_fin_normalize(fin, DZ_FIN_LEN, again) != 0 || memcmp(fin, again, 8) != 0)
            abort();
    } else if (fin[0] != '\0') {
        abort();
    }

    if (size > 0)
        check_doc(pats[data[0] & 1], in + 1, size - 1);
    if (size <= 4096) {
        static char twice[8192];
        size_t n1 = 0;
        size_t n2 = 0;
        bool v1 = dz_auth_utf8_check(in, size, &n1);
        bool v2;

        memcpy(twice, in, size);
        memcpy(twice + size, in, size);
        v2 = dz_auth_utf8_check(twice, 2 * size, &n2);
        if (v1 != v2 || (v1 && (n2 != 2 * n1 || n1 > size)) || (!v1 && (n1 || n2)))
            abort();
    }
    check_doc(pats[0], in, size);
    return 0;
}
