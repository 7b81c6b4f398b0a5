/*
 * audit_keyarchive.h - the archive JWKS of audit head keys (public keys only).
 *
 * The gateway signs audit heads with its active assertion key.  After a key
 * rollover the old key leaves the published JWKS, and heads it signed would
 * fail `darvaza audit verify` with unknown_kid.  The archive keeps every
 * public key the gateway ever published, by kid, for the life of the log;
 * `darvaza audit verify` reads it (--archive, default AUDIT_DIR/audit-keys.jwks).
 */
#ifndef DZ_AUDIT_KEYARCHIVE_H
#define DZ_AUDIT_KEYARCHIVE_H

#include <stddef.h>

/* File name of the archive next to the audit log when none is configured. */
#define DZ_AUDIT_KEY_ARCHIVE_NAME "audit-keys.jwks"

/*
 * Add every key of jwks_json ({"keys":[...]}, the published set) whose kid
 * is not yet in the archive at path; create the archive if it does not
 * exist.  Never removes or changes an archived key (a kid published again
 * with another key is logged and the archived key kept).  The file is
 * replaced atomically and fsync'ed; nothing is written when nothing is new.
 * *added (may be NULL) gets the number of keys added.
 * Returns 0; DZ_ERR_INVAL (jwks_json not a key set), DZ_ERR_PARSE (the
 * archive exists but is not a key set: it is left alone, logged),
 * DZ_ERR_IO (cannot write, logged), DZ_ERR_NOMEM.
 * Blocking file I/O: main thread (start-up, reload), never a loop thread.
 */
int dz_audit_key_archive_update(const char *path, const char *jwks_json, size_t *added);

/* DIR/audit-keys.jwks for the audit file DIR/NAME (malloc'd; NULL: no memory). */
char *dz_audit_key_archive_default(const char *audit_file);

#endif
