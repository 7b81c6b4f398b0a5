/*
 * audit_restore.c - what differs between the audit tree and its log, the
 * operator's acknowledgement of a restore, and the record of it (see
 * audit_restore.h).
 */
#include "audit/audit_restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/merkle.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/secret.h"
#include "base/timefmt.h"

#include "base/compat.h"

/* ---------------------------------------------------------------- scan --- */

void dz_audit_scan_init(struct dz_audit_scan *s, uint64_t tree_size,
                        int (*leaf)(void *arg, uint64_t index, unsigned char out[32]), void *arg,
                        struct dz_audit_mismatch *m)
{
    memset(s, 0, sizeof(*s));
    s->tree_size = tree_size;
    s->leaf = leaf;
    s->arg = arg;
    s->m = m;
    m->tree_size = tree_size;
    m->log_end = 0;
    memset(m->log_last, 0, sizeof(m->log_last));
    m->seq = 0;
    m->readable = true;
    m->what[0] = '\0';
}

int dz_audit_scan_line(void *scan, uint64_t seq, const char *line, size_t len)
{
    struct dz_audit_scan *s = scan;

    s->m->log_end = seq;
    dz_sha256(line, len, s->m->log_last);
    if (s->differ == 0 && seq <= s->tree_size) {
        unsigned char want[32];
        unsigned char have[32];
        int rc = s->leaf(s->arg, seq - 1, want);
        if (rc != 0) {
            s->err = rc;
            return 1;
        }
        dz_merkle_leaf_hash(line, len, have);
        if (memcmp(want, have, 32) != 0) {
            s->differ = seq;
            memcpy(s->tree_leaf, want, 32);
            memcpy(s->line_leaf, have, 32);
        }
    }
    return 0;
}

int dz_audit_scan_finish(struct dz_audit_scan *s, int rc)
{
    struct dz_audit_mismatch *m = s->m;
    char a[65];
    char b[65];

    if (s->err != 0)
        return s->err;
    if (rc != 0 && rc != DZ_ERR_NOTFOUND) {
        /* A line that is not an audit line, or a seq that does not follow
         * (a segment missing in the middle): the log is not whole. */
        m->readable = false;
        m->seq = m->log_end + 1;
        snprintf(m->what, sizeof(m->what),
                 "the log cannot be read past seq %" PRIu64
                 " (a line that is not an audit line, a gap in the seq, or an unreadable "
                 "file: %s)",
                 m->log_end, dz_err_str(rc));
        return 1;
    }
    if (s->differ != 0) {
        dz_hex(s->tree_leaf, 32, a);
        dz_hex(s->line_leaf, 32, b);
        m->seq = s->differ;
        snprintf(m->what, sizeof(m->what),
                 "line %" PRIu64 " is not the line the tree holds (leaf %.16s..., the line "
                 "hashes to %.16s...): the log was changed",
                 s->differ, a, b);
        return 1;
    }
    if (m->log_end < s->tree_size) {
        m->seq = m->log_end + 1;
        snprintf(m->what, sizeof(m->what),
                 "the log ends at seq %" PRIu64 " but the tree has %" PRIu64
                 " leaves: lines %" PRIu64 "..%" PRIu64 " were cut (restored from an older copy?)",
                 m->log_end, s->tree_size, m->log_end + 1, s->tree_size);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- files --- */

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* text + newline into DIR/NAME: aside, fsync'ed, renamed, the directory
 * fsync'ed (a crash leaves the old file or the new one). */
static int write_file(const char *dir, const char *name, const char *text)
{
    char path[4200];
    char tmp[4210];
    size_t len = strlen(text);
    int fd;
    int rc = DZ_ERR_IO;

    path_in(path, sizeof(path), dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return DZ_ERR_IO;
    if (write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0)
        rc = 0;
    if (close(fd) != 0)
        rc = DZ_ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = DZ_ERR_IO;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0)
            rc = DZ_ERR_IO;
        close(fd);
    }
    return rc;
}

static int write_json(const char *dir, const char *name, const json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    int rc;

    if (!text)
        return DZ_ERR_NOMEM;
    rc = write_file(dir, name, text);
    free(text);
    return rc;
}

static json_t *read_json(const char *dir, const char *name, int *rc)
{
    char path[4200];
    json_t *o;

    path_in(path, sizeof(path), dir, name);
    if (access(path, F_OK) != 0) {
        *rc = errno == ENOENT ? DZ_ERR_NOTFOUND : DZ_ERR_IO;
        return NULL;
    }
    o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    *rc = json_is_object(o) ? 0 : DZ_ERR_STATE;
    if (*rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------ accept --- */

static bool reason_ok(const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;

    if (n == 0 || n > DZ_AUDIT_REASON_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)reason[i] < 0x20 || reason[i] == 0x7f)
            return false;
    }
    return true;
}

/* What an acknowledgement is bound to: the tree and the log as they are. */
static json_t *binding(const struct dz_audit_mismatch *m)
{
    char root[65];
    char last[65];

    dz_hex(m->root, 32, root);
    dz_hex(m->log_last, 32, last);
    return json_pack("{s:I, s:s, s:I, s:s, s:I}", "tree_size", (json_int_t)m->tree_size, "root",
                     root, "log_end", (json_int_t)m->log_end, "log_last", last, "seq",
                     (json_int_t)m->seq);
}

int dz_audit_accept_write(const char *dir, const struct dz_audit_mismatch *m, const char *reason)
{
    char when[DZ_RFC3339_MS_MAX];
    json_t *o;
    int rc;

    if (!reason_ok(reason))
        return DZ_ERR_INVAL;
    o = binding(m);
    dz_rfc3339_now(when);
    if (!o || json_object_set_new(o, "reason", json_string(reason)) != 0 ||
        json_object_set_new(o, "accepted", json_string(when)) != 0 ||
        json_object_set_new(o, "what", json_string(m->what)) != 0) {
        json_decref(o);
        return DZ_ERR_NOMEM;
    }
    rc = write_json(dir, DZ_AUDIT_ACCEPT_NAME, o);
    json_decref(o);
    return rc;
}

int dz_audit_accept_read(const char *dir, const struct dz_audit_mismatch *m, char **reason)
{
    json_t *o;
    json_t *want;
    const char *r;
    int rc;
    bool same = true;

    *reason = NULL;
    o = read_json(dir, DZ_AUDIT_ACCEPT_NAME, &rc);
    if (!o)
        return rc;
    want = binding(m);
    if (!want) {
        json_decref(o);
        return DZ_ERR_NOMEM;
    }
    {
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) same = same && json_equal(v, json_object_get(o, k));
    }
    r = json_string_value(json_object_get(o, "reason"));
    rc = DZ_ERR_STATE;
    if (same && reason_ok(r)) {
        *reason = strdup(r);
        rc = *reason ? 0 : DZ_ERR_NOMEM;
    }
    json_decref(want);
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------ record --- */

json_t *dz_audit_restore_record(const struct dz_audit_mismatch *m,
                                const struct dz_audit_sth *old_head, const char *kept_at,
                                const char *reason)
{
    char root[65];
    json_t *o;

    dz_hex(m->root, 32, root);
    o = json_pack("{s:s, s:I, s:s, s:I, s:I, s:s, s:s, s:s}", "type", "audit_restore",
                  "old_tree_size", (json_int_t)m->tree_size, "old_root", root, "log_end",
                  (json_int_t)m->log_end, "differs_at", (json_int_t)m->seq, "kept_at", kept_at,
                  "what", m->what, "reason", reason);
    if (o && old_head) {
        char hr[65];
        dz_hex(old_head->root, 32, hr);
        if (json_object_set_new(o, "old_head_size",
                                json_integer((json_int_t)old_head->tree_size)) != 0 ||
            json_object_set_new(o, "old_head_root", json_string(hr)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int dz_audit_pending_write(const char *dir, json_t *record)
{
    return write_json(dir, DZ_AUDIT_PENDING_NAME, record);
}

json_t *dz_audit_pending_read(const char *dir, int *rc)
{
    json_t *o = read_json(dir, DZ_AUDIT_PENDING_NAME, rc);
    const char *type = json_string_value(json_object_get(o, "type"));

    if (o && (!type || strcmp(type, "audit_restore") != 0 || json_object_get(o, "seq") ||
              json_object_get(o, "prev") || json_object_get(o, "time"))) {
        json_decref(o);
        *rc = DZ_ERR_STATE;
        return NULL;
    }
    return o;
}

int dz_audit_pending_done(const char *dir)
{
    char path[4200];

    path_in(path, sizeof(path), dir, DZ_AUDIT_PENDING_NAME);
    return unlink(path) == 0 || errno == ENOENT ? 0 : DZ_ERR_IO;
}
