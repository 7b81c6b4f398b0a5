/*
 * version_print.c - the text of --version (see version.h): the release,
 * the commit, and the versions of the shared libraries actually loaded.
 */
#include "base/version.h"

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>

void dz_version_print(FILE *to, const char *program)
{
    const nghttp2_info *h2 = nghttp2_version(0);

    fprintf(to, "%s %s (commit %s)\n", program, dz_version(), dz_version_commit());
    fprintf(to, "%s, nghttp2 %s\n", OpenSSL_version(OPENSSL_VERSION),
            h2 ? h2->version_str : "unknown");
}
