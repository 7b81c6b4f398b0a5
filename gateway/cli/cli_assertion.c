/*
 * cli_assertion.c - two subcommands of the `darvaza` tool around the
 * Darvaza-Assertion:
 *   darvaza verify-assertion  checks a token the way a back end must
 *                             (lib/keys/assertion.h) and prints its claims;
 *   darvaza jwks              prints the JWK set for the gateway's keys.
 * A CLI may block: the JWKS URL is fetched with libcurl's easy interface.
 * It never prints or logs a PIN or a private key; `jwks` only ever turns a
 * key into its public JWK.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "keys/assertion.h"
#include "keys/jws.h"
#include "keys/signer.h"

#include "base/compat.h"

#define BODY_MAX (64 * 1024 * 1024) /* largest --body file we read */
#define JWKS_KEYS_CLI 16            /* --key/--kid pairs */
#define FETCH_TIMEOUT_S 10L

static int usage_verify(void)
{
    fputs("usage: darvaza verify-assertion --jwks FILE|URL [--cacert FILE] [--iss NAME]\n"
          "           [--aud NAME] [--htm METHOD] [--htu PATH] [--body FILE]\n"
          "           [--leeway SECONDS] [--now EPOCH] TOKEN|-\n"
          "  Verifies a Darvaza-Assertion, signed alone or batch-signed (signature or\n"
          "  inclusion path, typ, issuer, audience, freshness, method, path, body\n"
          "  digest) and prints its claims as JSON (exit 0), or\n"
          "  \"invalid: <reason>\" (exit 1).  Checks whose option is not given are skipped;\n"
          "  without --body the body digest is not checked.  '-' reads the token from\n"
          "  stdin.  A back end must also refuse a jti it has already seen.\n",
          stderr);
    return 2;
}

static int usage_jwks(void)
{
    fputs("usage: darvaza jwks --key SPEC --kid KID [--key SPEC --kid KID ...]\n"
          "           [--pin-file FILE]\n"
          "  Prints the JWK set (RFC 7517) of the given signing keys.  SPEC is a PEM\n"
          "  file or a pkcs11: URI; --pin-file holds the token PIN (or the PEM\n"
          "  passphrase) for every key.\n",
          stderr);
    return 2;
}

/* Read at most max bytes of a file ("-" = stdin) into b.  DZ_ERR_TOOBIG if
 * there is more. */
static int read_all(const char *path, size_t max, struct dz_buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char chunk[16384];
    size_t n;
    int rc = 0;

    dz_buf_init(b, max);
    if (!f) {
        fprintf(stderr, "darvaza: %s: %s\n", path, strerror(errno));
        return DZ_ERR_IO;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if ((rc = dz_buf_append(b, chunk, n)) != 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = DZ_ERR_IO;
    if (f != stdin)
        fclose(f);
    if (rc != 0)
        fprintf(stderr, "darvaza: %s: %s\n", path,
                rc == DZ_ERR_TOOBIG ? "too large" : dz_err_str(rc));
    return rc;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    /* A failing append frees the buffer: returning short stops curl. */
    return dz_buf_append(arg, p, size * nmemb) == 0 ? size * nmemb : 0;
}

static int fetch_jwks(const char *url, const char *cacert, struct dz_buf *b)
{
    CURL *c = NULL;
    CURLcode cc;
    long status = 0;
    int rc = DZ_ERR_UNAVAILABLE;

    dz_buf_init(b, DZ_JWKS_JSON_MAX);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c = curl_easy_init()))
        return DZ_ERR_NOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    /* No file:, ftp: or other schemes, and no redirects: the keys that
     * decide what verifies come from exactly the URL the operator named. */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, FETCH_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, FETCH_TIMEOUT_S);
    /* Refuses early when the length is announced; the bounded buffer in
     * on_body catches a chunked answer that grows past it. */
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DZ_JWKS_JSON_MAX);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "darvaza: %s: %s\n", url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    /* An error page is not a key set, even if it parses as JSON. */
    if (status != 200) {
        fprintf(stderr, "darvaza: %s: HTTP status %ld\n", url, status);
        goto out;
    }
    rc = 0;
out:
    curl_easy_cleanup(c);
    curl_global_cleanup();
    if (rc != 0)
        dz_buf_cleanup(b);
    return rc;
}

static int load_jwks(const char *where, const char *cacert, struct dz_jwks **out)
{
    struct dz_buf b;
    int rc;

    *out = NULL;
    if (strncmp(where, "https://", 8) == 0 || strncmp(where, "http://", 7) == 0)
        rc = fetch_jwks(where, cacert, &b);
    else
        rc = read_all(where, DZ_JWKS_JSON_MAX, &b);
    if (rc != 0)
        return rc;
    rc = dz_jwks_parse(dz_buf_cstr(&b), b.len, out);
    if (rc != 0)
        fprintf(stderr, "darvaza: %s: not a usable JWK set (%s)\n", where, dz_err_str(rc));
    dz_buf_cleanup(&b);
    return rc;
}

int dz_cli_verify_assertion(int argc, char **argv)
{
    const char *jwks_arg = NULL, *cacert = NULL, *body_path = NULL, *token_arg = NULL;
    const char *leeway_arg = NULL, *now_arg = NULL;
    struct dz_assertion_expect e = {.skip_body = true, .leeway_s = 5};
    struct dz_jwks *jwks = NULL;
    struct dz_buf body = {0};
    struct dz_buf tok = {0};
    json_t *claims = NULL;
    const char *reason = "internal_error";
    char *out = NULL;
    long long v;
    int code = 2;
    int rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--jwks") == 0)
            slot = &jwks_arg;
        else if (strcmp(a, "--cacert") == 0)
            slot = &cacert;
        else if (strcmp(a, "--iss") == 0)
            slot = &e.iss;
        else if (strcmp(a, "--aud") == 0)
            slot = &e.aud;
        else if (strcmp(a, "--htm") == 0)
            slot = &e.htm;
        else if (strcmp(a, "--htu") == 0)
            slot = &e.htu;
        else if (strcmp(a, "--body") == 0)
            slot = &body_path;
        else if (strcmp(a, "--leeway") == 0)
            slot = &leeway_arg;
        else if (strcmp(a, "--now") == 0)
            slot = &now_arg;
        else if ((a[0] == '-' && a[1] != '\0') || token_arg)
            return usage_verify();
        else
            token_arg = a;
        if (slot) {
            if (*slot || i + 1 >= argc)
                return usage_verify();
            *slot = argv[++i];
        }
    }
    if (!jwks_arg || !token_arg)
        return usage_verify();
    if (leeway_arg) {
        if (dz_parse_int(leeway_arg, 0, DZ_ASSERTION_LEEWAY_MAX, &v) != 0)
            return usage_verify();
        e.leeway_s = (int)v;
    }
    if (now_arg) {
        /* From 1: 0 in e.now means "the clock", so it cannot be asked for. */
        if (dz_parse_int(now_arg, 1, 253402300799LL, &v) != 0)
            return usage_verify();
        e.now = v;
    }

    code = 1;
    if (body_path) {
        if (read_all(body_path, BODY_MAX, &body) != 0)
            goto out;
        e.skip_body = false;
        e.body = body.data;
        e.body_len = body.len;
    }
    if (load_jwks(jwks_arg, cacert, &jwks) != 0)
        goto out;
    if (strcmp(token_arg, "-") == 0) {
        /* +2: room for a trailing CR LF, so a token of the maximum length with
         * a newline still fits, and anything longer is refused, never cut. */
        rc = read_all("-", DZ_JWS_TOKEN_MAX + 2, &tok);
    } else {
        dz_buf_init(&tok, DZ_JWS_TOKEN_MAX + 2);
        rc = dz_buf_append_str(&tok, token_arg);
    }
    if (rc == DZ_ERR_IO || rc == DZ_ERR_NOMEM)
        goto out;
    /* A token pasted or piped usually ends in a newline. */
    while (rc == 0 && tok.len > 0 &&
           (tok.data[tok.len - 1] == '\n' || tok.data[tok.len - 1] == '\r' ||
            tok.data[tok.len - 1] == ' '))
        tok.data[--tok.len] = '\0';
    /* Too long, or a NUL inside that would hide the rest from a C string. */
    if (rc != 0 || memchr(dz_buf_cstr(&tok), '\0', tok.len)) {
        printf("invalid: malformed\n");
        goto out;
    }
    if (dz_assertion_verify(dz_buf_cstr(&tok), jwks, &e, &claims, &reason) != 0) {
        printf("invalid: %s\n", reason);
        goto out;
    }
    out = json_dumps(claims, JSON_INDENT(2));
    if (!out) {
        printf("invalid: internal_error\n");
        goto out;
    }
    printf("%s\n", out);
    code = 0;
out:
    free(out);
    json_decref(claims);
    dz_jwks_free(jwks);
    dz_buf_cleanup(&tok);
    dz_buf_cleanup(&body);
    return code;
}

int dz_cli_jwks(int argc, char **argv)
{
    const char *keys[JWKS_KEYS_CLI], *kids[JWKS_KEYS_CLI];
    size_t nkeys = 0, nkids = 0;
    const char *pin_file = NULL;
    struct dz_jwks *jwks = NULL;
    char *json = NULL;
    int code = 1;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage_jwks();
        if (strcmp(argv[i], "--key") == 0 && nkeys < JWKS_KEYS_CLI)
            keys[nkeys++] = argv[++i];
        else if (strcmp(argv[i], "--kid") == 0 && nkids < JWKS_KEYS_CLI)
            kids[nkids++] = argv[++i];
        else if (strcmp(argv[i], "--pin-file") == 0 && !pin_file)
            pin_file = argv[++i];
        else
            return usage_jwks();
    }
    /* --key and --kid pair up by order; an unpaired one is a usage error
     * rather than a key published under a guessed kid. */
    if (nkeys == 0 || nkeys != nkids)
        return usage_jwks();
    if (dz_jwks_new(&jwks) != 0)
        goto out;
    for (size_t i = 0; i < nkeys; i++) {
        struct dz_signer *s = NULL;
        rc = dz_signer_open(keys[i], pin_file, &s);
        if (rc != 0) {
            fprintf(stderr, "darvaza jwks: %s: cannot open the key (%s)\n", keys[i],
                    dz_err_str(rc));
            goto out;
        }
        rc = dz_jwks_add(jwks, kids[i], dz_signer_public_key(s));
        dz_signer_free(s);
        if (rc != 0) {
            fprintf(stderr, "darvaza jwks: kid '%s': %s\n", kids[i],
                    rc == DZ_ERR_EXISTS ? "given twice" : dz_err_str(rc));
            goto out;
        }
    }
    if (dz_jwks_to_json(jwks, &json) != 0)
        goto out;
    printf("%s\n", json);
    code = 0;
out:
    free(json);
    dz_jwks_free(jwks);
    return code;
}
