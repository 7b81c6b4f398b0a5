/*
 * restartkeys.h - what a SIGHUP reload reads but cannot apply.
 *
 * A reload builds a whole new generation, but some settings belong to
 * things made once at start: the sockets (listeners, the management
 * listener), the accounts database, the audit log, the account the process
 * runs as.  An operator who edits one of them and sends SIGHUP would
 * otherwise see "reloaded" and believe it in force; nginx and haproxy say
 * so in the same situation.  The reload still goes ahead (everything else
 * in it applies); each setting that needs a restart is logged once as a
 * warning `reload_needs_restart` naming its key.
 */
#ifndef DZ_RESTARTKEYS_H
#define DZ_RESTARTKEYS_H

#include <stddef.h>

#include "core/config.h"

/* Log one warning per restart-only setting that differs between old (in
 * force) and new (just loaded); the number of them. */
size_t dz_restartkeys_warn(const struct dz_config *old, const struct dz_config *new_cf);

#endif
