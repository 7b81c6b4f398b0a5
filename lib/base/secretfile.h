/*
 * secretfile.h - read a short secret (a PIN, a passphrase, a bearer secret,
 * a seed key) from a file: the one reader for the gateway, its CLIs, the
 * peers and the card client.
 *
 * The file must be a regular file that neither its group nor others may
 * read, write or execute (mode & 077 == 0): a looser file is REFUSED, not
 * warned about, as sshd does for private keys, because a secret anyone on
 * the machine can read is already lost.  The owner is not checked (the
 * services may run as root or in containers with mapped uids).  Every file
 * the demo and certs/ scripts create is 0600.
 */
#ifndef DZ_SECRETFILE_H
#define DZ_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The rule above on a file's mode: true when neither group nor others have
 * any access.  For checks that look before reading (darvazad --check). */
bool dz_secret_file_mode_ok(mode_t mode);

/*
 * The raw bytes of a secret file (binary keys): the same checks (a regular
 * file, the mode rule, no blocking on a FIFO), then up to cap bytes into
 * the caller's buf, *len of them; read cap + 1 to tell "too long".  The
 * caller wipes buf.  0, DZ_ERR_IO or DZ_ERR_DENIED (why as below).
 * Blocking file I/O, as below.
 */
int dz_secret_file_read_raw(const char *path, void *buf, size_t cap, size_t *len, char *why,
                            size_t why_cap);

#define DZ_SECRET_FILE_MAX 4096 /* the largest max_len a caller may ask for */

/*
 * Read the secret in path: the whole file, one trailing "\n" or "\r\n"
 * dropped, then 1..max_len bytes with no NUL, CR or LF inside (one line).
 * max_len is 1..DZ_SECRET_FILE_MAX.  At most max_len + 3 bytes are read.
 * *out is a malloc'd C string: release it with dz_secret_free_str.  Every
 * buffer that held the secret is wiped on every path.
 *
 * On error *out is NULL and, when why is not NULL, why (why_cap bytes) gets
 * a one-line reason with the path and never the content, for the caller to
 * report its own way (the gateway's log, the card client's stderr).
 * Returns 0, DZ_ERR_IO (cannot open or read, not a regular file; errno's
 * words in why), DZ_ERR_DENIED (group or others have access), DZ_ERR_TOOBIG
 * (longer than max_len), DZ_ERR_INVAL (empty, a NUL byte, more than one
 * line, bad arguments), DZ_ERR_NOMEM.
 * Blocking file I/O: start-up, the blocking pool or a CLI.  Any thread.
 */
int dz_secret_file_read(const char *path, size_t max_len, char **out, char *why, size_t why_cap);

#endif
