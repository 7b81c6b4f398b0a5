/*
 * main.c - darvaza-card's command line (see card.h): `list`, `login`,
 * `sign-challenge`, and `sign` / `verify` (CAdES, DESIGN §4.7, in
 * card_sign.c).  Exit codes: 0 done, 1 refused or failed, 2 usage.
 * The PIN is never taken from argv or the environment: a file
 * (--pin-file) or the terminal; it is wiped as soon as the card has it.
 */
#include "card.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/log.h"
#include "base/version.h"
#include "pki/certid.h"

#include "base/compat.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

static void usage(FILE *to)
{
    fputs("usage: darvaza-card list [--module PATH]\n"
          "       darvaza-card --version\n"
          "       darvaza-card login --gateway URL [--token LABEL] [--key LABEL]\n"
          "                    [--pin-file FILE] [--cacert FILE] [--cookie-jar FILE]\n"
          "                    [--origin ORIGIN] [--timeout SECONDS] [--module PATH]\n"
          "                    [--tls-session FILE] [--verbose]\n"
          "       darvaza-card sign-challenge --origin ORIGIN --nonce NONCE [--token LABEL]\n"
          "                    [--key LABEL] [--pin-file FILE] [--module PATH]\n"
          "\n"
          "  list            the cards (PKCS#11 tokens) and their certificates: subject,\n"
          "                  FIN, role, validity, use\n"
          "  login           log in to the gateway with the card: the card's authentication\n"
          "                  key signs the gateway's challenge (SHA-256(origin) ||\n"
          "                  SHA-256(nonce)); prints the session JSON, then the session\n"
          "                  token alone on the last line\n"
          "  sign-challenge  only sign: prints the POST /auth/card body for ORIGIN and NONCE\n"
          "\n"
          "  --module PATH   PKCS#11 module (default $" DZ_CARD_MODULE_ENV
          ", else " DZ_CARD_DEFAULT_MODULE ")\n"
          "  --token LABEL   the card's token label (needed when several cards are present)\n"
          "  --key LABEL     the certificate/key to use (default \"" DZ_CARD_DEFAULT_KEY
          "\", else id 01)\n"
          "  --pin-file FILE read the PIN from FILE; without it the PIN is asked on the\n"
          "                  terminal without echo.  A wrong PIN is never retried.\n"
          "  --cacert FILE   CA certificates (PEM) that the gateway's TLS certificate\n"
          "                  chains to (default: the system's)\n"
          "  --cookie-jar F  also store the session cookie in F (mode 0600, curl format)\n"
          "  --origin O      the origin the signature covers (default: from --gateway);\n"
          "                  it must be the gateway's configured origin\n"
          "  --timeout S     per request, 1..300 seconds (default 30)\n"
          "  --tls-session F keep the gateway's TLS session in F (mode 0600; no PIN, key or\n"
          "                  certificate of the card) and resume it at the next login: a\n"
          "                  shorter handshake for both sides.  It logs nobody in: the card\n"
          "                  still signs a fresh challenge\n"
          "  --verbose       say on stderr whether the TLS session was resumed\n"
          "\n"
          "  sign FILE / verify FILE SIG: CAdES document signatures with the card's\n"
          "  signing key (run `darvaza-card sign` or `darvaza-card verify` for their usage).\n"
          "Exit: 0 done, 1 refused or failed, 2 usage.\n",
          to);
}

struct args {
    const char *cmd;
    const char *module;
    const char *gateway;
    const char *token;
    const char *key;
    const char *pin_file;
    const char *cacert;
    const char *cookie_jar;
    const char *origin;
    const char *nonce;
    const char *tls_session;
    bool verbose;
    long timeout_s;
};

/* Strict 1..300. */
static int parse_timeout(const char *s, long *out)
{
    char *end = NULL;
    long v;

    if (!s || *s < '0' || *s > '9')
        return DZ_ERR_INVAL;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 1 || v > 300)
        return DZ_ERR_INVAL;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {
        {"--module", offsetof(struct args, module)},
        {"--gateway", offsetof(struct args, gateway)},
        {"--token", offsetof(struct args, token)},
        {"--key", offsetof(struct args, key)},
        {"--pin-file", offsetof(struct args, pin_file)},
        {"--cacert", offsetof(struct args, cacert)},
        {"--cookie-jar", offsetof(struct args, cookie_jar)},
        {"--origin", offsetof(struct args, origin)},
        {"--nonce", offsetof(struct args, nonce)},
        {"--tls-session", offsetof(struct args, tls_session)},
    };

    memset(a, 0, sizeof(*a));
    if (argc < 2)
        return DZ_ERR_INVAL;
    a->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        bool known = false;

        if (strcmp(o, "--pin") == 0 || strncmp(o, "--pin=", 6) == 0) {
            fputs("darvaza-card: a PIN on the command line is refused (others can read it): "
                  "use --pin-file or type it when asked\n",
                  stderr);
            return DZ_ERR_INVAL;
        }
        if (strcmp(o, "--verbose") == 0) {
            a->verbose = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "darvaza-card: %s: unknown option or missing value\n", o);
            return DZ_ERR_INVAL;
        }
        if (strcmp(o, "--timeout") == 0) {
            if (parse_timeout(argv[i + 1], &a->timeout_s) != 0) {
                fprintf(stderr, "darvaza-card: --timeout wants 1..300 seconds\n");
                return DZ_ERR_INVAL;
            }
            i++;
            continue;
        }
        for (size_t j = 0; j < sizeof(opts) / sizeof(opts[0]); j++) {
            const char **slot = (const char **)((char *)a + opts[j].off);
            if (strcmp(o, opts[j].name) != 0)
                continue;
            if (*slot) {
                fprintf(stderr, "darvaza-card: %s given twice\n", o);
                return DZ_ERR_INVAL;
            }
            if (argv[i + 1][0] == '\0') {
                fprintf(stderr, "darvaza-card: %s: empty value\n", o);
                return DZ_ERR_INVAL;
            }
            *slot = argv[++i];
            known = true;
            break;
        }
        if (!known) {
            fprintf(stderr, "darvaza-card: %s: unknown option\n", o);
            return DZ_ERR_INVAL;
        }
    }
    return 0;
}

/* Open the module and the card's key, ask the PIN, log in.  0 or
 * EXIT_REFUSED (the reason on stderr). */
static int open_and_login(const struct args *a, struct dz_card_module **m, struct dz_card_key **k)
{
    char *pin = NULL;
    char why[192];
    char prompt[160];
    bool pinpad = false;
    int rc;

    if (dz_card_module_open(a->module, m) != 0)
        return EXIT_REFUSED;
    if (dz_card_key_open(*m, a->token, a->key, k) != 0)
        return EXIT_REFUSED;
    if (dz_card_key_needs_pin(*k, &pinpad) && !pinpad) {
        if (dz_card_key_pin_warning(*k)[0])
            fprintf(stderr, "darvaza-card: warning: %s\n", dz_card_key_pin_warning(*k));
        if (a->pin_file) {
            rc = dz_card_pin_from_file(a->pin_file, &pin);
        } else {
            snprintf(prompt, sizeof(prompt),
                     "PIN of the card \"%s\": ", dz_card_key_token_label(*k));
            rc = dz_card_pin_prompt(prompt, &pin);
        }
        if (rc != 0)
            return EXIT_REFUSED;
    } else if (pinpad) {
        fprintf(stderr, "darvaza-card: enter the PIN on the card reader's pad\n");
    }
    rc = dz_card_key_login(*k, pin, why, sizeof(why));
    dz_card_pin_free(pin);
    if (rc != 0) {
        fprintf(stderr, "darvaza-card: %s\n", why[0] ? why : "login to the card failed");
        return EXIT_REFUSED;
    }
    return 0;
}

static int cmd_list(const struct args *a)
{
    struct dz_card_module *m = NULL;
    int n;

    if (a->gateway || a->token || a->key || a->pin_file || a->cacert || a->cookie_jar ||
        a->origin || a->nonce || a->timeout_s || a->tls_session || a->verbose) {
        fputs("darvaza-card: list takes only --module\n", stderr);
        return EXIT_USAGE;
    }
    if (dz_card_module_open(a->module, &m) != 0)
        return EXIT_REFUSED;
    n = dz_card_module_list(m, stdout);
    dz_card_module_close(m);
    return n > 0 ? 0 : EXIT_REFUSED;
}

static int cmd_login(const struct args *a)
{
    struct dz_card_module *m = NULL;
    struct dz_card_key *k = NULL;
    struct dz_card_login_opts o;
    int rc;

    if (!a->gateway || a->nonce) {
        fputs("darvaza-card: login needs --gateway URL (and takes no --nonce)\n", stderr);
        return EXIT_USAGE;
    }
    memset(&o, 0, sizeof(o));
    o.gateway = a->gateway;
    o.origin = a->origin;
    o.cacert = a->cacert;
    o.cookie_jar = a->cookie_jar;
    o.tls_session = a->tls_session;
    o.verbose = a->verbose;
    o.timeout_ms = a->timeout_s * 1000;
    rc = open_and_login(a, &m, &k);
    if (rc == 0)
        rc = dz_card_login(&o, k, stdout) == DZ_CARD_OK ? 0 : EXIT_REFUSED;
    dz_card_key_free(k);
    dz_card_module_close(m);
    return rc;
}

static int cmd_sign_challenge(const struct args *a)
{
    struct dz_card_module *m = NULL;
    struct dz_card_key *k = NULL;
    int rc;

    if (!a->origin || !a->nonce || a->gateway || a->cookie_jar || a->cacert || a->tls_session) {
        fputs("darvaza-card: sign-challenge needs --origin and --nonce (and no --gateway)\n",
              stderr);
        return EXIT_USAGE;
    }
    if (strlen(a->nonce) > DZ_CARD_NONCE_MAX) {
        fprintf(stderr, "darvaza-card: --nonce: at most %d characters\n", DZ_CARD_NONCE_MAX);
        return EXIT_USAGE;
    }
    rc = open_and_login(a, &m, &k);
    if (rc == 0 && dz_card_sign_challenge(k, a->origin, a->nonce, stdout) != 0)
        rc = EXIT_REFUSED;
    dz_card_key_free(k);
    dz_card_module_close(m);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a;
    int rc;

    /* The library modules darvaza-card links log JSON on stderr; this is a
     * program for people, which speaks for itself. */
    dz_log_set_level(DZ_LOG_ERROR);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
        dz_version_print(stdout, "darvaza-card");
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "sign") == 0)
        return dz_card_cmd_sign(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return dz_card_cmd_verify(argc, argv);
    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("darvaza-card: cannot initialise libcurl\n", stderr);
        return EXIT_REFUSED;
    }
    if (strcmp(a.cmd, "list") == 0) {
        rc = cmd_list(&a);
    } else if (strcmp(a.cmd, "login") == 0) {
        rc = cmd_login(&a);
    } else if (strcmp(a.cmd, "sign-challenge") == 0) {
        rc = cmd_sign_challenge(&a);
    } else {
        fprintf(stderr, "darvaza-card: unknown command \"%s\"\n", a.cmd);
        usage(stderr);
        rc = EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
