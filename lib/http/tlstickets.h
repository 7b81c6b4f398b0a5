/*
 * tlstickets.h - TLS session ticket keys from files, so that several
 * instances (and one instance across reloads) take each other's tickets.
 *
 * Without them OpenSSL encrypts the tickets of a server context with random
 * keys of its own, made when the context is: a client that reconnects to
 * another instance behind a load balancer, or to the same one after a
 * reload, makes a full handshake.  With them the context encrypts new
 * tickets under the first key and takes tickets under any of the keys
 * (rotation: a new key first, the old one second for the tickets' lifetime).
 *
 * Key file: exactly 80 bytes, as nginx's ssl_session_ticket_key reads them
 * (`openssl rand 80 > FILE`): a 16-byte key name (sent in clear in every
 * ticket), a 32-byte HMAC-SHA256 key, a 32-byte AES-256-CBC key.  A regular
 * file that neither group nor others may access (base/secretfile.h's rule).
 *
 * Never on a context that asks for client certificates (tls.c sets
 * SSL_OP_NO_TICKET there: a resumed session would carry the certificate of
 * its first handshake without a new signature): refused.  Never logs or
 * returns key bytes; the keys are wiped when the context is freed.
 */
#ifndef DZ_TLSTICKETS_H
#define DZ_TLSTICKETS_H

#include <stddef.h>

#include <openssl/ssl.h>

#define DZ_TLS_TICKET_KEY_FILE_LEN 80 /* name 16, HMAC key 32, AES key 32 */
#define DZ_TLS_TICKET_KEYS_MAX 8

/*
 * Read the key files (files[0] encrypts new tickets; every one decrypts) and
 * install them on ctx with SSL_CTX_set_tlsext_ticket_key_evp_cb.  The keys
 * belong to ctx from then on (wiped and freed with it).  A ticket under a key
 * not listed is not an error: the client makes a full handshake; one under a
 * key other than the first resumes and gets a new ticket under the first.
 *
 * Call before ctx is shared with other threads, once per context.  Returns 0;
 * on error nothing is installed and, when why is not NULL, why (why_cap bytes)
 * gets one line naming the file and never its content: DZ_ERR_INVAL (n is 0
 * or above DZ_TLS_TICKET_KEYS_MAX, a NULL argument, keys already installed,
 * ctx issues no tickets: it asks for client certificates, a file not exactly
 * 80 bytes, two files with the same key name), DZ_ERR_IO (cannot open or
 * read, not a regular file), DZ_ERR_DENIED (group or others have access),
 * DZ_ERR_CRYPTO, DZ_ERR_NOMEM.  Blocking file I/O: start-up or reload, any
 * thread.
 */
int dz_tls_ticket_keys_set(SSL_CTX *ctx, const char *const *files, size_t n, char *why,
                           size_t why_cap);

#endif
