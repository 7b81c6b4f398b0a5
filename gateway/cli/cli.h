/*
 * cli.h - subcommands of the `darvaza` operator tool.  Each takes the
 * arguments after its name (argv[0] is the subcommand) and returns the
 * process exit code: 0 success/valid, 1 invalid/failed check, 2 usage error.
 */
#ifndef DZ_CLI_H
#define DZ_CLI_H

#include <stdbool.h>

int dz_cli_verify_assertion(int argc, char **argv); /* cli_assertion.c */
int dz_cli_jwks(int argc, char **argv);             /* cli_assertion.c */
int dz_cli_audit(int argc, char **argv);            /* cli_audit.c */
int dz_cli_audit_tree(int argc, char **argv);       /* cli_transparency.c */
int dz_cli_audit_restore(int argc, char **argv);    /* cli_restore.c */

/* Does a gateway write the audit log at path?  It holds an exclusive flock
 * on it for its whole life (audit.c).  cli_restore.c. */
bool dz_cli_log_in_use(const char *path);
int dz_cli_cert(int argc, char **argv);     /* cli_cert.c */
int dz_cli_accounts(int argc, char **argv); /* cli_accounts.c */

#endif
