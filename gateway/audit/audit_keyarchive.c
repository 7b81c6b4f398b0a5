/*
 * audit_keyarchive.c - the archive JWKS of every public key that has signed
 * (or may sign) audit heads, so heads written before a key rollover still
 * verify once the retired key is no longer published.  It only ever adds:
 * a kid already archived is never changed or dropped, and the file is
 * replaced atomically (write a temporary file, fsync, rename, fsync the
 * directory), so a crash leaves the old archive or the new one, never less.
 * It handles public keys only; it never sees a private key.
 */
#include "audit/audit_keyarchive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "base/log.h"

#include "base/compat.h"

/* The key of kid in a {"keys":[...]} document, or NULL. */
static json_t *find_kid(json_t *keys, const char *kid)
{
    size_t i;
    json_t *k;

    json_array_foreach(keys, i, k)
    {
        const char *x = json_string_value(json_object_get(k, "kid"));
        if (x && strcmp(x, kid) == 0)
            return k;
    }
    return NULL;
}

/* Same public key: the members that define it (RFC 7638). */
static bool same_key(json_t *a, json_t *b)
{
    static const char *const members[] = {"kty", "crv", "x", "y"};

    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        if (!json_equal(json_object_get(a, members[i]), json_object_get(b, members[i])))
            return false;
    }
    return true;
}

/* The archive as it is: {"keys":[]} when the file does not exist.  Anything
 * else unreadable is an error: overwriting it could lose keys. */
static int load_archive(const char *path, json_t **out)
{
    json_error_t jerr;
    json_t *doc;

    struct stat st;

    *out = NULL;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        *out = json_pack("{s:[]}", "keys");
        return *out ? 0 : DZ_ERR_NOMEM;
    }
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        dz_log(DZ_LOG_ERROR, "audit_key_archive", "%s:%d: not a JSON document: %s", path, jerr.line,
               jerr.text);
        return DZ_ERR_PARSE;
    }
    if (!json_is_array(json_object_get(doc, "keys"))) {
        dz_log(DZ_LOG_ERROR, "audit_key_archive", "%s: no \"keys\" array", path);
        json_decref(doc);
        return DZ_ERR_PARSE;
    }
    *out = doc;
    return 0;
}

static int write_atomically(const char *path, const char *text)
{
    size_t n = strlen(path) + sizeof(".tmp");
    char *tmp = malloc(n);
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t len = strlen(text);
    size_t off = 0;
    int fd = -1;
    int rc = DZ_ERR_NOMEM;

    if (!tmp)
        goto out;
    snprintf(tmp, n, "%s.tmp", path);
    rc = DZ_ERR_IO;
    /* Public keys only: readable by the auditors who verify with them. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        (void)fsync(fd);
    rc = 0;
out:
    if (rc != 0) {
        dz_log(DZ_LOG_ERROR, "audit_key_archive", "%s: cannot write: %s", path, strerror(errno));
        if (tmp)
            unlink(tmp);
    }
    if (fd >= 0)
        close(fd);
    free(tmp);
    return rc;
}

int dz_audit_key_archive_update(const char *path, const char *jwks_json, size_t *added)
{
    json_error_t jerr;
    json_t *pub = NULL;
    json_t *doc = NULL;
    json_t *keys;
    json_t *k;
    char *text = NULL;
    size_t i;
    size_t n = 0;
    int rc = DZ_ERR_INVAL;

    if (added)
        *added = 0;
    pub = jwks_json ? json_loads(jwks_json, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!pub || !json_is_array(json_object_get(pub, "keys")))
        goto out;
    rc = load_archive(path, &doc);
    if (rc != 0)
        goto out;
    keys = json_object_get(doc, "keys");
    json_array_foreach(json_object_get(pub, "keys"), i, k)
    {
        const char *kid = json_string_value(json_object_get(k, "kid"));
        json_t *old;

        if (!kid)
            continue;
        old = find_kid(keys, kid);
        if (old) {
            /* A kid names one key forever: heads signed under it must keep
             * verifying with the key that signed them. */
            if (!same_key(old, k))
                dz_log(DZ_LOG_ERROR, "audit_key_archive",
                       "%s: kid \"%s\" is archived with another public key; the archived one is "
                       "kept (give the new key a new kid)",
                       path, kid);
            continue;
        }
        rc = DZ_ERR_NOMEM;
        if (json_array_append(keys, k) != 0)
            goto out;
        n++;
    }
    rc = 0;
    if (n == 0)
        goto out;
    rc = DZ_ERR_NOMEM;
    text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        goto out;
    rc = write_atomically(path, text);
    if (rc == 0 && added)
        *added = n;
out:
    free(text);
    json_decref(pub);
    json_decref(doc);
    return rc;
}

char *dz_audit_key_archive_default(const char *audit_file)
{
    const char *slash = strrchr(audit_file, '/');
    size_t dir_len = slash ? (size_t)(slash - audit_file) + 1 : 0;
    size_t n = dir_len + sizeof(DZ_AUDIT_KEY_ARCHIVE_NAME);
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%.*s%s", (int)dir_len, audit_file, DZ_AUDIT_KEY_ARCHIVE_NAME);
    return p;
}
