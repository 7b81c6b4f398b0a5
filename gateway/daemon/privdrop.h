/*
 * privdrop.h - darvazad gives up root after binding its listeners
 * (gateway.user / gateway.group in darvaza.yaml).
 *
 * Started as root (to bind :443 without a capability), the daemon binds,
 * then becomes the configured account for good: supplementary groups from
 * the group database (initgroups), then the real, effective and saved gid,
 * then the real, effective and saved uid, and finally it checks that none
 * of them is still 0 and that setuid(0) fails.  Files opened before the
 * drop (the accounts database, the audit log, the listeners) stay open;
 * everything read later (reloads: config, certificates, keys, policies)
 * must be readable by the account.
 */
#ifndef DZ_PRIVDROP_H
#define DZ_PRIVDROP_H

#include <stddef.h>

/* Become `user` (and `group`, or the user's primary group when NULL).
 * user NULL: nothing to do, returns 0.  Already running as that user and
 * group (e.g. systemd's User=): 0 without a change.  Not root and not
 * that user, an unknown account, user "root", a failed set*id call or a
 * process that could still regain root: DZ_ERR_INVAL, DZ_ERR_NOTFOUND or
 * DZ_ERR_IO with a sentence in err (never NULL, err_len > 0).
 * Main thread, before or after other threads start (glibc applies set*id
 * to every thread of the process). */
int dz_privdrop(const char *user, const char *group, char *err, size_t err_len);

#endif
