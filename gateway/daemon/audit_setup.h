/*
 * audit_setup.h - the gateway's side of the audit log: open it with its
 * rotation policy and instance id, keep the key archive up to date, and
 * hand the head signer a new key on reload (key rollover).  Main thread.
 */
#ifndef DZ_AUDIT_SETUP_H
#define DZ_AUDIT_SETUP_H

#include <stddef.h>

struct dz_audit;
struct dz_gen;

/*
 * Add g's published keys to the key archive (audit.key_archive, default
 * AUDIT_DIR/audit-keys.jwks), open the audit log (audit.file), set its
 * rotation (audit.rotate) and instance (gateway.id, or the host name when
 * the id is not a usable token), and sign heads with g's active key (g is
 * referenced until the audit log is closed or the signer replaced).
 * Errors are printed to stderr.  Returns 0 or a negative dz_err: the
 * gateway must not start.
 */
int dz_audit_setup_open(struct dz_gen *g, struct dz_audit **out);

/*
 * After a successful reload to g: archive g's keys, then let the audit
 * writer sign with g's active key.  When the archive cannot be written the
 * heads stay with the old key (logged), so no head is ever signed by a key
 * the archive lacks.
 */
void dz_audit_setup_reload(struct dz_audit *a, struct dz_gen *g);

/* The instance id of g's audit history: gateway.id when it is a usable
 * token, else the host name (written into host, host_len bytes). */
const char *dz_audit_setup_instance(const struct dz_gen *g, char *host, size_t host_len);

#endif
