/*
 * accounts_setup.h - open the accounts backend the config names
 * (accounts.backend: sqlite | postgresql), for the gateway and for
 * `darvaza accounts migrate`.  The PostgreSQL conninfo is read from
 * accounts.postgresql.conninfo_file (0600) and wiped once the backend has
 * its copy.  Start-up thread; blocks (connects, may create the schema).
 */
#ifndef DZ_ACCOUNTS_SETUP_H
#define DZ_ACCOUNTS_SETUP_H

#include "core/config.h"
#include "state/accounts.h"

/* dz_accounts_open for the configured backend.  0 or a negative dz_err;
 * *what names what failed (a path, or "postgresql"), never a secret. */
int dz_accounts_setup_open(const struct dz_config_accounts *a,
                           const unsigned char seed_key[DZ_SEED_KEY_LEN], struct dz_accounts **out,
                           const char **what);

/* Create or migrate the schema of the configured backend and close it.
 * *from: the version found (0: empty), *to: the version now. */
int dz_accounts_setup_migrate(const struct dz_config_accounts *a, int *from, int *to,
                              const char **what);

#endif
