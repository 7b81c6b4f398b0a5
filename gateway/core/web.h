/*
 * web.h - the portal's static pages (docs/portal.md): a bounded set of
 * files read from gateway.web_root when a configuration generation is
 * built, held in memory, and served by the gateway itself at GET / and
 * GET /static/<name> with a strict Content-Security-Policy.
 *
 * Owns: a struct dz_web (the files' names, bytes, content types and ETags)
 * (the endpoint that serves them is gateway/portal/portal.c).  It never reads the disk on a request
 * (SIGHUP builds a new generation, and with it a new set), never serves a file that was not in the
 * directory at load, and never lists the directory.
 *
 * Bounds: at most DZ_WEB_MAX_FILES regular files of at most
 * DZ_WEB_MAX_FILE_BYTES each, names [a-z0-9._-]{1,64} not starting with
 * '.', with a known extension (.html .js .css .svg .png .ico .json .txt);
 * hidden files (".x") are ignored; anything else in the directory (another
 * name, a subdirectory, a device) makes the load fail with a clear error.
 * index.html must be there.
 *
 * Thread affinity: dz_web_load/free on the main thread (they belong to a
 * generation); a loaded set is immutable and read from every worker
 * without locks.  The endpoints run on a worker loop thread.
 */
#ifndef DZ_WEB_H
#define DZ_WEB_H

#include <stdbool.h>
#include <stddef.h>

#define DZ_WEB_MAX_FILES 64
#define DZ_WEB_MAX_FILE_BYTES (1024 * 1024)
#define DZ_WEB_NAME_MAX 64

/* The policy every page is served with (also documented in docs/portal.md). */
#define DZ_WEB_CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

struct dz_web;

struct dz_web_file {
    char name[DZ_WEB_NAME_MAX + 1];
    const char *content_type; /* static string */
    unsigned char *data;
    size_t len;
    char etag[20]; /* "\"" + 16 hex digits of SHA-256 + "\"" */
};

/*
 * Read every file of dir into a new set.  0 and *out owns it (dz_web_free);
 * else *out stays NULL and err says "web_root DIR: reason" (DZ_ERR_IO: a
 * file or the directory cannot be read; DZ_ERR_INVAL: a name, type or
 * missing index.html; DZ_ERR_TOOBIG: too many or too large files;
 * DZ_ERR_NOMEM).  Blocking (file system): main thread only.
 */
int dz_web_load(const char *dir, struct dz_web **out, char *err, size_t err_len);

/* Free a set; NULL is a no-op. */
void dz_web_free(struct dz_web *w);

/* Number of files in a set, and the file called name (len bytes, not
 * NUL-terminated), or NULL. */
size_t dz_web_count(const struct dz_web *w);
const struct dz_web_file *dz_web_find(const struct dz_web *w, const char *name, size_t len);

/* ---- pure helpers (no I/O; unit-tested and fuzzed) -------------------- */

/* Is name (len bytes) a name this module would serve: [a-z0-9._-]{1,64},
 * not starting with '.', no "..", with a known extension? */
bool dz_web_name_ok(const char *name, size_t len);

/* The content type for a served name (by its extension), or NULL. */
const char *dz_web_content_type(const char *name, size_t len);

/*
 * The file name asked for by a request path "/static/<name>[?query]":
 * 0 and name copied (NUL-terminated) into out (at least
 * DZ_WEB_NAME_MAX + 1 bytes); DZ_ERR_NOTFOUND for any other path
 * (another prefix, an empty or bad name, a '/' or '%' in it).
 */
int dz_web_static_name(const char *path, char *out, size_t out_len);

/* Does an If-None-Match header value (a list of entity tags, or "*") match
 * etag?  Weak tags (W/"...") compare by their opaque part. */
bool dz_web_etag_match(const char *if_none_match, const char *etag);

#endif
