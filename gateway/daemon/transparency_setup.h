/*
 * transparency_setup.h - the daemon's side of the audit log's transparency
 * (docs/transparency.md): open the Merkle tree beside the audit log and the
 * access index in the accounts database, and feed both from the audit
 * writer.  Main thread.
 */
#ifndef DZ_TRANSPARENCY_SETUP_H
#define DZ_TRANSPARENCY_SETUP_H

struct dz_gw;

/* After the accounts and the audit log are open: gw->audit_tree and
 * gw->accesswatch.  Errors are printed to stderr; the gateway must not
 * start then (a history it cannot prove, or an index it cannot fill, would
 * break what the access list promises).  0 or a negative dz_err. */
int dz_transparency_setup_open(struct dz_gw *gw);

/* After dz_audit_close (the writer no longer calls the observer). */
void dz_transparency_setup_close(struct dz_gw *gw);

#endif
