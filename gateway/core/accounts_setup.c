/*
 * accounts_setup.c - the configured accounts backend (see accounts_setup.h).
 */
#include "core/accounts_setup.h"

#include <string.h>

#include "base/err.h"
#include "base/secret.h"
#include "keys/signer.h"

#include "base/compat.h"

/* Fill *p from the config, reading the conninfo file into *text (caller
 * frees with dz_secret_free_str). */
static int pg_params(const struct dz_config_accounts *a, struct dz_accounts_pg_params *p,
                     char **text)
{
    size_t n;
    int rc = dz_signer_read_secret(a->pg_conninfo_file, text);

    if (rc < 0)
        return rc;
    n = strlen(*text);
    while (n && ((*text)[n - 1] == '\n' || (*text)[n - 1] == '\r' || (*text)[n - 1] == ' '))
        (*text)[--n] = '\0';
    if (n == 0)
        return DZ_ERR_INVAL;
    p->conninfo = *text;
    p->pool = a->pg_pool;
    p->connect_timeout_ms = (unsigned)a->pg_connect_timeout_ms;
    p->statement_timeout_ms = (unsigned)a->pg_statement_timeout_ms;
    return 0;
}

int dz_accounts_setup_open(const struct dz_config_accounts *a,
                           const unsigned char seed_key[DZ_SEED_KEY_LEN], struct dz_accounts **out,
                           const char **what)
{
    struct dz_argon2_params ap = {(uint32_t)(a->argon2_memory / 1024), a->argon2_iterations,
                                  a->argon2_parallelism};
    struct dz_accounts_pg_params p;
    char *text = NULL;
    void *impl = NULL;
    int rc;

    *out = NULL;
    if (a->backend != DZ_ACCOUNTS_POSTGRESQL) {
        *what = a->database;
        return dz_accounts_open(a->database, seed_key, &ap, out);
    }
    *what = a->pg_conninfo_file;
    rc = pg_params(a, &p, &text);
    if (rc == 0) {
        *what = "postgresql";
        rc = dz_accounts_pg_open(&p, &impl);
    }
    if (text)
        dz_secret_free_str(text);
    if (rc < 0)
        return rc;
    return dz_accounts_new(&dz_accounts_pg_ops, impl, seed_key, &ap, out);
}

int dz_accounts_setup_migrate(const struct dz_config_accounts *a, int *from, int *to,
                              const char **what)
{
    struct dz_accounts_pg_params p;
    char *text = NULL;
    void *impl = NULL;
    int rc;

    *from = 0;
    *to = 0;
    if (a->backend != DZ_ACCOUNTS_POSTGRESQL) {
        /* SQLite creates its schema when it opens; a newer one is refused. */
        *what = a->database;
        rc = dz_accounts_sqlite_open(a->database, &impl);
        if (rc == 0) {
            dz_accounts_sqlite_ops.free(impl);
            *from = *to = 1;
        }
        return rc;
    }
    *what = a->pg_conninfo_file;
    rc = pg_params(a, &p, &text);
    if (rc == 0) {
        *what = "postgresql";
        rc = dz_accounts_pg_migrate(&p, from, to);
    }
    if (text)
        dz_secret_free_str(text);
    return rc;
}
