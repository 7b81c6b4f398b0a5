/*
 * restartkeys.c - warn about reloaded settings that only a restart applies
 * (see restartkeys.h).
 */
#include "daemon/restartkeys.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"

static bool same_str(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static size_t warn(const char *key)
{
    dz_logj(DZ_LOG_WARN, "reload_needs_restart",
            json_pack("{s:s, s:s}", "key", key, "detail",
                      "changed in the file but still as at start: restart to apply"));
    return 1;
}

static bool listeners_differ(const struct dz_config *a, const struct dz_config *b)
{
    if (a->n_listeners != b->n_listeners)
        return true;
    for (size_t i = 0; i < a->n_listeners; i++) {
        if (a->listeners[i].port != b->listeners[i].port ||
            !same_str(a->listeners[i].address, b->listeners[i].address))
            return true;
    }
    return false;
}

static bool strv_differ(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return true;
    for (size_t i = 0; i < na; i++) {
        if (!same_str(a[i], b[i]))
            return true;
    }
    return false;
}

size_t dz_restartkeys_warn(const struct dz_config *old, const struct dz_config *new_cf)
{
    size_t n = 0;

    if (listeners_differ(old, new_cf))
        n += warn("listeners");
    if (old->management.enabled != new_cf->management.enabled ||
        !same_str(old->management.listen, new_cf->management.listen))
        n += warn("management.listen");
    if (strv_differ(old->management.hosts, old->management.n_hosts, new_cf->management.hosts,
                    new_cf->management.n_hosts))
        n += warn("management.hosts");
    if (old->accounts.backend != new_cf->accounts.backend ||
        !same_str(old->accounts.database, new_cf->accounts.database) ||
        !same_str(old->accounts.pg_conninfo_file, new_cf->accounts.pg_conninfo_file))
        n += warn("accounts");
    /* The account store hashes with the cost it was opened with (its dummy
     * hash for unknown FINs too, so the two stay the same price). */
    if (old->accounts.argon2_memory != new_cf->accounts.argon2_memory ||
        old->accounts.argon2_iterations != new_cf->accounts.argon2_iterations ||
        old->accounts.argon2_parallelism != new_cf->accounts.argon2_parallelism)
        n += warn("accounts.argon2");
    if (!same_str(old->audit.file, new_cf->audit.file) ||
        !same_str(old->audit.key_archive, new_cf->audit.key_archive) ||
        !same_str(old->audit.instance, new_cf->audit.instance) ||
        old->audit.rotate.size != new_cf->audit.rotate.size ||
        old->audit.rotate.every_ms != new_cf->audit.rotate.every_ms ||
        old->audit.batch_max != new_cf->audit.batch_max ||
        old->audit.head_interval_ms != new_cf->audit.head_interval_ms)
        n += warn("audit");
    if (!same_str(old->gateway.user, new_cf->gateway.user) ||
        !same_str(old->gateway.group, new_cf->gateway.group))
        n += warn("gateway.user");
    return n;
}
