/*
 * cli_cert.c - `darvaza cert check CERT [options]`: runs the gateway's own
 * certificate validator (lib/pki/x509check.h) on a certificate from a file, so
 * an operator sees exactly what a login would decide, and the NIST PKITS
 * suite can be run through it (`--batch FILE`: one case per line, the
 * options of one check separated by blanks).  It only reads files and, for
 * OCSP / CRL, asks the URLs named in the certificate; it never changes a
 * file and never prints more of the certificate than FIN, role and digest.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/parse.h"
#include "base/secret.h"
#include "pki/ocsp.h"
#include "pki/x509check.h"

#include "base/compat.h"

#define MAX_FILES 32    /* of each of --ca, --untrusted, --crl */
#define MAX_POLICIES 16 /* of each of --policy, --initial-policy */
#define MAX_LINE 8192   /* one --batch line */
#define MAX_ARGS 256    /* words in one --batch line */

static void usage_text(FILE *to)
{
    fputs("usage: darvaza cert check CERT [--ca FILE]... [--untrusted FILE]... [--crl FILE]...\n"
          "         [--at TIME] [--policy OID]... [--purpose auth|sign|any]\n"
          "         [--no-revocation | --ocsp] [--require-fin] [--timeout MS]\n"
          "         [--explicit-policy] [--inhibit-policy-mapping] [--inhibit-any-policy]\n"
          "         [--initial-policy OID]... [--min-rsa-bits N] [--min-ec-bits N]\n"
          "         [--legacy-algorithms]\n"
          "       darvaza cert check --batch FILE\n"
          "  Validates CERT (PEM or DER; further certificates in the file are offered as\n"
          "  intermediates) against the --ca anchors, as the gateway's logins do.\n"
          "  Revocation: OCSP from the certificate's AIA, then CRL (files or its CDP);\n"
          "  with --crl and without --ocsp, CRL files only for every certificate of the path.\n"
          "  TIME: RFC 3339 (2011-04-15T00:00:00Z) or unix seconds.  --purpose default any.\n"
          "  Key floor as the gateway's: RSA >= 2048 bits, EC P-256/P-384/P-521, no MD5 or\n"
          "  SHA-1 signatures (raise with --min-rsa-bits / --min-ec-bits, as trust: in the\n"
          "  config); --legacy-algorithms drops it, for conformance suites (PKITS) only.\n"
          "  Prints 'valid: FIN=... role=... sha256=...' (exit 0) or\n"
          "  'invalid: REASON: DETAIL' (exit 1); usage errors exit 2.\n"
          "  --batch: each line of FILE holds the options of one check (blank-separated,\n"
          "  no quoting; '#' starts a comment line); prints 'LINE: <result>' for each;\n"
          "  exit 0 when every line ran, 2 when a line was unusable.\n",
          to);
}

/* RFC 3339 date-time (seconds precision, Z or +hh:mm / -hh:mm) or unix
 * seconds.  0 or DZ_ERR_INVAL. */
static int parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, used = 0;
    long long v;
    char sign = 'Z';
    const char *z;
    time_t tt;

    *out = 0;
    /* 253402300799 is 9999-12-31T23:59:59Z, the last instant RFC 3339
     * (and an X.509 GeneralizedTime) can write. */
    if (dz_parse_int(s, 0, 253402300799LL, &v) == 0) {
        *out = v;
        return 0;
    }
    if (strlen(s) < 20 ||
        sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        used != 19)
        return DZ_ERR_INVAL;
    for (int i = 0; i < 19; i++) {
        if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16)
            continue;
        if (!isdigit((unsigned char)s[i]))
            return DZ_ERR_INVAL;
    }
    z = s + 19;
    if ((z[0] == 'Z' || z[0] == 'z') && z[1] == '\0') {
        sign = 'Z';
    } else if ((z[0] == '+' || z[0] == '-') && strlen(z) == 6 && isdigit((unsigned char)z[1]) &&
               isdigit((unsigned char)z[2]) && z[3] == ':' && isdigit((unsigned char)z[4]) &&
               isdigit((unsigned char)z[5])) {
        sign = z[0];
        oh = (z[1] - '0') * 10 + (z[2] - '0');
        om = (z[4] - '0') * 10 + (z[5] - '0');
        if (oh > 23 || om > 59)
            return DZ_ERR_INVAL;
    } else {
        return DZ_ERR_INVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return DZ_ERR_INVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    /* A leap second (RFC 3339 §5.7 allows :60) has no time_t of its own;
     * the second before it is the closest instant a check can use. */
    tm.tm_sec = sec == 60 ? 59 : sec;
    tt = timegm(&tm);
    if (tm.tm_mday != d) /* 31 February and the like */
        return DZ_ERR_INVAL;
    *out = (int64_t)tt;
    /* "+02:00" is two hours ahead of UTC, so UTC is earlier: subtract. */
    if (sign == '+')
        *out -= (int64_t)oh * 3600 + om * 60;
    else if (sign == '-')
        *out += (int64_t)oh * 3600 + om * 60;
    return 0;
}

struct check_args {
    const char *cert;
    const char *ca[MAX_FILES];
    size_t nca;
    const char *untrusted[MAX_FILES];
    size_t nuntrusted;
    const char *crl[MAX_FILES];
    size_t ncrl;
    const char *policy[MAX_POLICIES];
    size_t npolicy;
    const char *initial[MAX_POLICIES];
    size_t ninitial;
    struct dz_x509_opts o;
    struct dz_keyfloor floor; /* --min-rsa-bits, --min-ec-bits, --legacy-algorithms */
    bool no_revocation;
    bool ocsp;
};

static int add(const char **list, size_t *n, size_t max, const char *v, const char *opt)
{
    if (*n >= max) {
        fprintf(stderr, "darvaza cert: too many %s (at most %zu)\n", opt, max);
        return DZ_ERR_TOOBIG;
    }
    list[(*n)++] = v;
    return 0;
}

/* Parse one check's options (argv[0] is the first option or CERT).
 * 0 or DZ_ERR_INVAL (message printed). */
static int parse_args(int argc, char **argv, struct check_args *a)
{
    int i;

    memset(a, 0, sizeof(*a));
    a->o.purpose = DZ_X509_PURPOSE_ANY;
    for (i = 0; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        int rc = 0;

        if (strcmp(s, "--ca") == 0 && v)
            rc = add(a->ca, &a->nca, MAX_FILES, v, s);
        else if (strcmp(s, "--untrusted") == 0 && v)
            rc = add(a->untrusted, &a->nuntrusted, MAX_FILES, v, s);
        else if (strcmp(s, "--crl") == 0 && v)
            rc = add(a->crl, &a->ncrl, MAX_FILES, v, s);
        else if (strcmp(s, "--policy") == 0 && v)
            rc = add(a->policy, &a->npolicy, MAX_POLICIES, v, s);
        else if (strcmp(s, "--initial-policy") == 0 && v)
            rc = add(a->initial, &a->ninitial, MAX_POLICIES, v, s);
        else if (strcmp(s, "--at") == 0 && v) {
            /* 0 means "now" in dz_x509_opts, so "--at 0" cannot be honoured
             * and is refused rather than silently checked against today. */
            if (parse_time(v, &a->o.at) != 0 || a->o.at == 0) {
                fprintf(stderr, "darvaza cert: --at %s: not RFC 3339 or unix seconds\n", v);
                return DZ_ERR_INVAL;
            }
        } else if (strcmp(s, "--purpose") == 0 && v) {
            if (strcmp(v, "auth") == 0)
                a->o.purpose = DZ_X509_PURPOSE_AUTH;
            else if (strcmp(v, "sign") == 0)
                a->o.purpose = DZ_X509_PURPOSE_SIGN;
            else if (strcmp(v, "any") == 0)
                a->o.purpose = DZ_X509_PURPOSE_ANY;
            else {
                fprintf(stderr, "darvaza cert: --purpose %s: auth, sign or any\n", v);
                return DZ_ERR_INVAL;
            }
        } else if ((strcmp(s, "--min-rsa-bits") == 0 || strcmp(s, "--min-ec-bits") == 0) && v) {
            bool rsa = strcmp(s, "--min-rsa-bits") == 0;
            long long bits;
            /* Upwards only, as the gateway's trust: section. */
            if (dz_parse_int(v, rsa ? DZ_KEYFLOOR_RSA_BITS : DZ_KEYFLOOR_EC_BITS,
                             rsa ? DZ_KEYFLOOR_RSA_MAX : DZ_KEYFLOOR_EC_MAX, &bits) != 0) {
                fprintf(stderr, "darvaza cert: %s %s: %u..%u\n", s, v,
                        rsa ? DZ_KEYFLOOR_RSA_BITS : DZ_KEYFLOOR_EC_BITS,
                        rsa ? DZ_KEYFLOOR_RSA_MAX : DZ_KEYFLOOR_EC_MAX);
                return DZ_ERR_INVAL;
            }
            if (rsa)
                a->floor.rsa_bits = (unsigned)bits;
            else
                a->floor.ec_bits = (unsigned)bits;
        } else if (strcmp(s, "--timeout") == 0 && v) {
            long long ms;
            if (dz_parse_int(v, 1, 600000, &ms) != 0) {
                fprintf(stderr, "darvaza cert: --timeout %s: 1..600000 ms\n", v);
                return DZ_ERR_INVAL;
            }
            a->o.fetch_timeout_ms = (uint32_t)ms;
        } else {
            takes = false;
            if (strcmp(s, "--no-revocation") == 0)
                a->no_revocation = true;
            else if (strcmp(s, "--ocsp") == 0)
                a->ocsp = true;
            else if (strcmp(s, "--legacy-algorithms") == 0)
                a->floor.off = true;
            else if (strcmp(s, "--require-fin") == 0)
                a->o.require_fin = true;
            else if (strcmp(s, "--explicit-policy") == 0)
                a->o.explicit_policy = true;
            else if (strcmp(s, "--inhibit-policy-mapping") == 0)
                a->o.inhibit_policy_mapping = true;
            else if (strcmp(s, "--inhibit-any-policy") == 0)
                a->o.inhibit_any_policy = true;
            else if (s[0] != '-' && a->cert == NULL)
                a->cert = s;
            else {
                fprintf(stderr, "darvaza cert: unexpected argument '%s'\n", s);
                return DZ_ERR_INVAL;
            }
        }
        if (rc != 0)
            return DZ_ERR_INVAL;
        if (takes)
            i++;
    }
    if (a->cert == NULL) {
        fputs("darvaza cert: no certificate given\n", stderr);
        return DZ_ERR_INVAL;
    }
    if (a->no_revocation && a->ocsp) {
        fputs("darvaza cert: --no-revocation and --ocsp exclude each other\n", stderr);
        return DZ_ERR_INVAL;
    }
    if (a->no_revocation)
        a->o.revocation = DZ_X509_REV_NONE;
    /* CRL files given and no --ocsp: check from those files alone, as the
     * PKITS cases expect (they come with CRLs and no responders), instead
     * of asking URLs from test certificates that lead nowhere. */
    else if (a->ncrl > 0 && !a->ocsp)
        a->o.revocation = DZ_X509_REV_CRL_ONLY;
    else
        a->o.revocation = DZ_X509_REV_OCSP_CRL;
    a->o.policies = a->policy;
    a->o.npolicies = a->npolicy;
    a->o.initial_policies = a->initial;
    a->o.ninitial = a->ninitial;
    return 0;
}

/* Run one check and print its line (prefix before it, for --batch).
 * Returns 0 valid, 1 invalid, 2 unusable input (files). */
static int run_check(struct check_args *a, struct dz_ocsp_cache *cache, const char *prefix)
{
    struct dz_x509_trust *t = NULL;
    STACK_OF(X509) *leafs = NULL;
    STACK_OF(X509) *untrusted = NULL;
    STACK_OF(X509) *more = NULL;
    struct dz_x509_result res;
    char hex[65];
    X509 *leaf = NULL;
    size_t i;
    int exit_code = 2;
    int rc;

    a->o.ocsp_cache = cache;
    if (dz_x509_trust_new(&t) != 0 || dz_x509_trust_set_floor(t, &a->floor) != 0 ||
        (untrusted = sk_X509_new_null()) == NULL) {
        fprintf(stderr, "darvaza cert: out of memory\n");
        goto out;
    }
    for (i = 0; i < a->nca; i++) {
        rc = dz_x509_trust_add_ca_file(t, a->ca[i]);
        if (rc != 0) {
            fprintf(stderr, "darvaza cert: --ca %s: %s\n", a->ca[i], dz_err_str(rc));
            goto out;
        }
    }
    for (i = 0; i < a->ncrl; i++) {
        rc = dz_x509_trust_add_crl_file(t, a->crl[i]);
        if (rc != 0) {
            fprintf(stderr, "darvaza cert: --crl %s: %s\n", a->crl[i], dz_err_str(rc));
            goto out;
        }
    }
    rc = dz_x509_load_file(a->cert, &leafs);
    if (rc != 0) {
        fprintf(stderr, "darvaza cert: %s: %s\n", a->cert, dz_err_str(rc));
        goto out;
    }
    leaf = sk_X509_shift(leafs);
    while (sk_X509_num(leafs) > 0) {
        X509 *x = sk_X509_shift(leafs);
        if (sk_X509_push(untrusted, x) <= 0) { /* bounded by load_file; out of memory */
            X509_free(x);
            fprintf(stderr, "darvaza cert check: out of memory\n");
            rc = DZ_ERR_NOMEM;
            goto out;
        }
    }
    for (i = 0; i < a->nuntrusted; i++) {
        rc = dz_x509_load_file(a->untrusted[i], &more);
        if (rc != 0) {
            fprintf(stderr, "darvaza cert: --untrusted %s: %s\n", a->untrusted[i], dz_err_str(rc));
            goto out;
        }
        while (sk_X509_num(more) > 0) {
            X509 *x = sk_X509_shift(more);
            if (!sk_X509_push(untrusted, x))
                X509_free(x);
        }
        sk_X509_free(more);
        more = NULL;
    }
    /* Only a warning: with no anchor every path is refused anyway, which
     * is itself a useful answer when testing a certificate. */
    if (dz_x509_trust_anchors(t) == 0)
        fprintf(stderr, "darvaza cert: warning: no trust anchor given (--ca)\n");

    rc = dz_x509_validate(t, leaf, untrusted, &a->o, &res);
    if (rc == 0 && res.valid) {
        dz_hex(res.sha256, sizeof(res.sha256), hex);
        printf("%svalid: FIN=%s role=%s sha256=%s\n", prefix, res.fin[0] ? res.fin : "-", res.role,
               hex);
        exit_code = 0;
    } else {
        printf("%sinvalid: %s: %s\n", prefix, res.reason, res.detail[0] ? res.detail : "-");
        exit_code = 1;
    }
out:
    fflush(stdout);
    X509_free(leaf);
    sk_X509_pop_free(leafs, X509_free);
    sk_X509_pop_free(more, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    dz_x509_trust_free(t);
    return exit_code;
}

static int run_batch(const char *path)
{
    struct dz_ocsp_cache *cache = NULL;
    char line[MAX_LINE + 2];
    char *words[MAX_ARGS];
    char prefix[32];
    unsigned long lineno = 0;
    int exit_code = 0;
    FILE *f;

    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "darvaza cert: %s: %s\n", path, strerror(errno));
        return 2;
    }
    /* One OCSP cache for the whole batch, as the gateway keeps one per
     * process, so a responder is asked once per certificate, not per line. */
    if (dz_ocsp_cache_new(0, &cache) != 0) {
        if (f != stdin)
            fclose(f);
        return 2;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct check_args a;
        char *save = NULL;
        char *w;
        int n = 0;
        size_t len = strlen(line);

        lineno++;
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            fprintf(stderr, "darvaza cert: %s:%lu: line too long\n", path, lineno);
            exit_code = 2;
            break;
        }
        for (w = strtok_r(line, " \t\r\n", &save); w != NULL && n < MAX_ARGS;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[n++] = w;
        if (n == 0 || words[0][0] == '#')
            continue;
        /* w != NULL: more than MAX_ARGS words; dropping the rest would run a
         * different check from the one written, so the line is refused. */
        if (w != NULL || parse_args(n, words, &a) != 0) {
            printf("%lu: usage\n", lineno);
            exit_code = 2;
            continue;
        }
        snprintf(prefix, sizeof(prefix), "%lu: ", lineno);
        if (run_check(&a, cache, prefix) == 2) {
            printf("%lu: unusable\n", lineno);
            exit_code = 2;
        }
    }
    if (ferror(f))
        exit_code = 2;
    if (f != stdin)
        fclose(f);
    dz_ocsp_cache_free(cache);
    return exit_code;
}

int dz_cli_cert(int argc, char **argv)
{
    struct check_args a;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage_text(stdout);
        return 0;
    }
    if (argc < 3 || strcmp(argv[1], "check") != 0) {
        usage_text(stderr);
        return 2;
    }
    if (strcmp(argv[2], "--batch") == 0) {
        if (argc != 4) {
            usage_text(stderr);
            return 2;
        }
        return run_batch(argv[3]);
    }
    if (parse_args(argc - 2, argv + 2, &a) != 0) {
        usage_text(stderr);
        return 2;
    }
    return run_check(&a, NULL, "");
}
