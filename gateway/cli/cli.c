/*
 * cli.c - `darvaza`, the operator tool: dispatches to one subcommand per file
 * (cli_*.c).  Each subcommand prints its own usage and returns 0/1/2.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "base/version.h"

#include "base/compat.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    /* Subcommand files add their line here. */
    {"verify-assertion", dz_cli_verify_assertion, "check a Darvaza-Assertion, print its claims"},
    {"jwks", dz_cli_jwks, "print the JWK set of signing keys (PEM or pkcs11: URI)"},
    {"audit", dz_cli_audit,
     "verify FILE: check the audit log's hash chain and signed heads;\n"
     "                     prove|check-proof|consistency: its Merkle proofs;\n"
     "                     accept-restore LOG: acknowledge a log restored from a backup"},
    {"cert", dz_cli_cert, "check CERT: validate a certificate as logins do (path, OCSP/CRL)"},
    {"accounts", dz_cli_accounts,
     "backup|restore|migrate: copy the accounts database, create its schema"},
    {NULL, NULL, NULL},
};

static int usage(FILE *to)
{
    fputs("usage: darvaza COMMAND [ARGS]\n       darvaza --version\n\ncommands:\n", to);
    for (const struct subcommand *s = subcommands; s->name; s++)
        fprintf(to, "  %-18s %s\n", s->name, s->summary);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        dz_version_print(stdout, "darvaza");
        return 0;
    }
    for (const struct subcommand *s = subcommands; s->name; s++) {
        if (strcmp(argv[1], s->name) == 0)
            return s->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "darvaza: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
