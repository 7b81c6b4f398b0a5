/*
 * signer.h - the gateway's ES256 signing key behind one narrow interface.
 *
 * A signer makes ECDSA P-256 / SHA-256 signatures and hands out its public
 * key; it knows nothing of where the private key lives.  Two backends sit
 * behind a small ops table: a PEM file (signer_file.c) and a PKCS#11 token
 * reached through an RFC 7512 URI with libp11 (signer_pkcs11.c), in which
 * case the private key never enters this process.  Moving the key into a
 * separate key process later is one more backend, nothing else changes.
 *
 * Thread affinity: dz_signer_open/dz_signer_free on one thread (start-up,
 * reload).  dz_signer_sign_es256 may be called from many threads at once:
 * the file backend signs in parallel, the PKCS#11 backend serialises on a
 * mutex and blocks while the token works, so callers on an event loop must
 * send it to the blocking pool when dz_signer_is_blocking() says so.
 */
#ifndef DZ_SIGNER_H
#define DZ_SIGNER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

struct dz_signer;

/* Open a signer.
 *   spec      "pkcs11:token=...;object=...[;id=%01][?module-path=...&pin-source=...]"
 *             (RFC 7512; the module defaults to $DARVAZA_PKCS11_MODULE, then
 *             /usr/lib/softhsm/libsofthsm2.so), or the path of a PEM file with
 *             an EC P-256 private key.
 *   pin_file  file holding the token PIN (PKCS#11) or the PEM passphrase
 *             (file); NULL when none is needed.  One line; a trailing newline
 *             is ignored.  Group or others must have no access to it (mode
 *             0600 or stricter; see base/secretfile.h).  Its contents are
 *             wiped from memory after use and never logged.  A PIN in the URI itself ("pin-value")
 * is refused. On success *out owns the signer (dz_signer_free).  *out is NULL on error. Returns 0,
 * DZ_ERR_INVAL (bad spec, key not EC P-256, PIN needed but not given), DZ_ERR_IO (a file could not
 * be read; the path is logged), DZ_ERR_DENIED (the PIN file is open to group or others),
 * DZ_ERR_CRYPTO (the PEM could not be decoded), DZ_ERR_NOTFOUND (no such
 * token or key object), DZ_ERR_PKCS11 (module load, login - a wrong PIN is
 * tried exactly once - or another libp11 failure), DZ_ERR_TOOBIG, DZ_ERR_NOMEM.
 * Blocking (file and token I/O): start-up or the blocking pool only. */
int dz_signer_open(const char *spec, const char *pin_file, struct dz_signer **out);

/* Sign len bytes of data with ES256: SHA-256, ECDSA P-256, and write the
 * JOSE form of the signature (RFC 7518 §3.4: r || s, 32 bytes each,
 * big-endian) into sig.  sig is cleared on error.
 * Returns 0, DZ_ERR_CRYPTO, DZ_ERR_PKCS11 (token failure) or DZ_ERR_NOMEM.
 * Any thread; blocks when dz_signer_is_blocking(). */
int dz_signer_sign_es256(struct dz_signer *s, const void *data, size_t len, unsigned char sig[64]);

/* The public key, borrowed: valid until dz_signer_free.  It is an ordinary
 * OpenSSL (provider) key, never a handle on the token.  Any thread. */
EVP_PKEY *dz_signer_public_key(const struct dz_signer *s);

/* True when signing waits on a device (PKCS#11): the gateway then signs on
 * its blocking pool.  Any thread. */
bool dz_signer_is_blocking(const struct dz_signer *s);

/* "file" or "pkcs11", for logs.  Any thread. */
const char *dz_signer_kind(const struct dz_signer *s);

/* Free the signer and close its token session.  NULL is a no-op.  No other
 * thread may be signing with it. */
void dz_signer_free(struct dz_signer *s);

/* True when pkey is an EC key on P-256 (prime256v1). */
bool dz_signer_key_is_p256(const EVP_PKEY *pkey);

/* Read a short secret (PIN, passphrase, seed key, bearer secret) from path
 * with dz_secret_file_read (base/secretfile.h: a file group or others can
 * access is refused; one line, one trailing newline dropped) at most 255
 * bytes, and log the reason of a failure (never the content).  *out is a
 * malloc'd C string the caller must release with dz_secret_free_str.
 * Returns 0, DZ_ERR_IO, DZ_ERR_DENIED (mode too open), DZ_ERR_INVAL,
 * DZ_ERR_TOOBIG, DZ_ERR_NOMEM. */
int dz_signer_read_secret(const char *path, char **out);

#endif
