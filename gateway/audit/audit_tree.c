/*
 * audit_tree.c - the on-disk Merkle tree of an audit history and its signed
 * heads (see audit_tree.h).  Everything here is derived from the log: it
 * never writes the log, never trusts its own files over the log, and never
 * sees a private key (heads are signed through the writer's callback).  A
 * tree that disagrees with the log stops the start (audit_restore.h): it is
 * moved aside and rebuilt only after the operator acknowledged a restore,
 * and the rebuild is recorded in the log.
 */
#include "audit/audit_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_restore.h"
#include "audit/merkle.h"
#include "base/err.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/timefmt.h"

#include "base/compat.h"

#define HEADS_NAME "heads.jsonl"

struct dz_audit_tree {
    char *audit_path;
    char *dir;
    char instance[DZ_AUDIT_INSTANCE_MAX + 1];
    pthread_mutex_t mu; /* fd, n, head */
    int fd[DZ_MERKLE_LEVELS];
    uint64_t n[DZ_MERKLE_LEVELS];
    /* The last node of each level (valid when n > 0): an append needs the
     * left sibling, which is always the last node, so it is never read back
     * from the file. */
    unsigned char last[DZ_MERKLE_LEVELS][32];
    struct dz_audit_sth head;
    bool has_head;
    bool broken;      /* writer thread only: stop growing after a failure */
    int heads_fd;     /* heads.jsonl, O_APPEND */
    json_t *restored; /* the audit_restore record still to append, or NULL */
};

/* ------------------------------------------------------------- levels --- */

static int level_fd(struct dz_audit_tree *t, unsigned level, bool create)
{
    char path[4096];

    if (t->fd[level] >= 0 || !create)
        return t->fd[level];
    snprintf(path, sizeof(path), "%s/L%02u", t->dir, level);
    t->fd[level] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return t->fd[level];
}

static int lv_count(void *arg, unsigned level, uint64_t *out)
{
    struct dz_audit_tree *t = arg;

    pthread_mutex_lock(&t->mu);
    *out = level < DZ_MERKLE_LEVELS ? t->n[level] : 0;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int lv_get(void *arg, unsigned level, uint64_t index, unsigned char out[32])
{
    struct dz_audit_tree *t = arg;
    int fd;
    uint64_t n;
    ssize_t r;

    if (level >= DZ_MERKLE_LEVELS)
        return DZ_ERR_NOTFOUND;
    pthread_mutex_lock(&t->mu);
    fd = t->fd[level];
    n = t->n[level];
    if (n > 0 && index == n - 1)
        memcpy(out, t->last[level], 32);
    pthread_mutex_unlock(&t->mu);
    if (fd < 0 || index >= n)
        return DZ_ERR_NOTFOUND;
    if (index == n - 1)
        return 0;
    do
        r = pread(fd, out, 32, (off_t)(index * 32));
    while (r < 0 && errno == EINTR);
    return r == 32 ? 0 : DZ_ERR_IO;
}

static int lv_append(void *arg, unsigned level, const unsigned char h[32])
{
    struct dz_audit_tree *t = arg;
    int fd;
    ssize_t r;
    int rc = DZ_ERR_IO;

    if (level >= DZ_MERKLE_LEVELS)
        return DZ_ERR_TOOBIG;
    pthread_mutex_lock(&t->mu);
    fd = level_fd(t, level, true);
    if (fd >= 0) {
        do
            r = pwrite(fd, h, 32, (off_t)(t->n[level] * 32));
        while (r < 0 && errno == EINTR);
        /* Counted only once written: a reader never sees a node before. */
        if (r == 32) {
            t->n[level]++;
            memcpy(t->last[level], h, 32);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static struct dz_merkle_levels levels_of(struct dz_audit_tree *t)
{
    return (struct dz_merkle_levels){lv_count, lv_get, lv_append, t};
}

/* ------------------------------------------------------------- staged --- */

/*
 * A batch's leaves are added in memory first: each level's new nodes are
 * hashed from the level's last node kept in memory (the left sibling of a
 * new right child always is that last node), then written with one
 * pwrite(2) per level, and the counts published under one lock.  Adding a
 * leaf at a time cost a locked pwrite per node and a pread per pair.
 * The files get the same bytes in the same order (lower levels first), so
 * what a crash leaves is what load_levels already repairs; a reader sees
 * the batch's nodes only once all of them are written.
 */
struct stage {
    uint64_t n0[DZ_MERKLE_LEVELS]; /* published counts when staging began */
    uint64_t n[DZ_MERKLE_LEVELS];  /* counts with the staged nodes */
    unsigned char last[DZ_MERKLE_LEVELS][32];
    size_t off[DZ_MERKLE_LEVELS]; /* where each level's new nodes start in node */
    unsigned char node[][32];
};

/* A stage for `leaves` new leaves, or NULL (out of memory).  A level gains
 * a node each time the count below it becomes even: counted exactly, so
 * the room is what stage_leaf will fill, whatever the counts. */
static struct stage *stage_begin(struct dz_audit_tree *t, size_t leaves)
{
    uint64_t n0[DZ_MERKLE_LEVELS];
    uint64_t add = leaves;
    size_t total = 0;
    struct stage *s;
    size_t off[DZ_MERKLE_LEVELS];

    pthread_mutex_lock(&t->mu);
    memcpy(n0, t->n, sizeof(n0));
    pthread_mutex_unlock(&t->mu);
    for (unsigned l = 0; l < DZ_MERKLE_LEVELS; l++) {
        off[l] = total;
        total += (size_t)add;
        add = (n0[l] + add) / 2 - n0[l] / 2;
    }
    s = malloc(sizeof(*s) + total * 32);
    if (!s)
        return NULL;
    memcpy(s->off, off, sizeof(off));
    /* Only the writer thread appends: what was read above is still true. */
    pthread_mutex_lock(&t->mu);
    memcpy(s->n0, t->n, sizeof(s->n0));
    memcpy(s->last, t->last, sizeof(s->last));
    pthread_mutex_unlock(&t->mu);
    memcpy(s->n, s->n0, sizeof(s->n));
    return s;
}

/* dz_merkle_append in memory: the leaf, then each parent it completes. */
static void stage_leaf(struct stage *s, const unsigned char leaf[32])
{
    unsigned char h[32];

    memcpy(h, leaf, 32);
    for (unsigned level = 0;; level++) {
        unsigned char left[32];
        bool right = s->n[level] % 2 == 1;

        memcpy(left, s->last[level], 32);
        memcpy(s->node[s->off[level] + (s->n[level] - s->n0[level])], h, 32);
        memcpy(s->last[level], h, 32);
        s->n[level]++;
        if (!right || level + 1 >= DZ_MERKLE_LEVELS)
            break;
        dz_merkle_node_hash(left, h, h);
    }
}

static int write_all_at(int fd, const unsigned char *p, size_t len, off_t at)
{
    while (len > 0) {
        ssize_t r = pwrite(fd, p, len, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return DZ_ERR_IO;
        p += r;
        len -= (size_t)r;
        at += r;
    }
    return 0;
}

/* Write every level's new nodes, lowest first, then publish the counts. */
static int stage_commit(struct dz_audit_tree *t, struct stage *s)
{
    for (unsigned l = 0; l < DZ_MERKLE_LEVELS && s->n[l] > s->n0[l]; l++) {
        int fd;
        pthread_mutex_lock(&t->mu);
        fd = level_fd(t, l, true);
        pthread_mutex_unlock(&t->mu);
        if (fd < 0 || write_all_at(fd, s->node[s->off[l]], (size_t)(s->n[l] - s->n0[l]) * 32,
                                   (off_t)(s->n0[l] * 32)) != 0)
            return DZ_ERR_IO;
    }
    pthread_mutex_lock(&t->mu);
    memcpy(t->n, s->n, sizeof(t->n));
    memcpy(t->last, s->last, sizeof(t->last));
    pthread_mutex_unlock(&t->mu);
    memcpy(s->n0, s->n, sizeof(s->n0));
    return 0;
}

/* ------------------------------------------------------------ history --- */

struct seg {
    uint64_t first;
    char *path;
};

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a;
    const struct seg *y = b;

    return x->first < y->first ? -1 : x->first > y->first;
}

/* Closed segments of the live file DIR/STEM.log: DIR/STEM-<16>-<12 digits>.log
 * (audit.c, rotated_path). */
static int list_segments(const char *audit_path, struct seg **out, size_t *n_out)
{
    const char *slash = strrchr(audit_path, '/');
    const char *name = slash ? slash + 1 : audit_path;
    char dir[4096];
    size_t stem = strlen(name);
    DIR *d;
    struct dirent *de;
    struct seg *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    if (stem > 4 && strcmp(name + stem - 4, ".log") == 0)
        stem -= 4;
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - audit_path) : 1,
             slash ? audit_path : ".");
    if (slash == audit_path)
        snprintf(dir, sizeof(dir), "/");
    d = opendir(dir);
    if (!d)
        return DZ_ERR_IO;
    while ((de = readdir(d)) != NULL) {
        const char *e = de->d_name;
        size_t len = strlen(e);
        char *end = NULL;
        unsigned long long first;
        /* STEM - 16 - 12 .log */
        if (len != stem + 1 + 16 + 1 + 12 + 4 || strncmp(e, name, stem) != 0 || e[stem] != '-' ||
            e[stem + 17] != '-' || strcmp(e + len - 4, ".log") != 0)
            continue;
        errno = 0;
        first = strtoull(e + stem + 18, &end, 10);
        if (errno != 0 || end != e + len - 4)
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            struct seg *p = realloc(v, c * sizeof(*v));
            if (!p) {
                rc = DZ_ERR_NOMEM;
                break;
            }
            v = p;
            cap = c;
        }
        size_t plen = strlen(dir) + len + 2;
        v[n].path = malloc(plen);
        if (!v[n].path) {
            rc = DZ_ERR_NOMEM;
            break;
        }
        snprintf(v[n].path, plen, "%s/%s", dir, e);
        v[n++].first = first;
    }
    closedir(d);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i].path);
        free(v);
        return rc;
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_seg);
    *out = v;
    *n_out = n;
    return 0;
}

struct reader {
    uint64_t from;
    uint64_t next; /* the seq expected next (after from was seen) */
    int (*fn)(void *arg, uint64_t seq, const char *line, size_t len);
    void *arg;
};

/* 1: stopped by fn (its value in *fn_rc), 0: end of file, <0: error. */
static int read_file(const char *path, struct reader *r, int *fn_rc)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;

    if (!f)
        return errno == ENOENT ? 0 : DZ_ERR_IO;
    while ((len = getline(&line, &cap, f)) > 0) {
        struct dz_audit_line l;
        /* A line still being written has no newline yet: not part of the
         * history until it has. */
        if (line[len - 1] != '\n')
            break;
        len--;
        if (dz_audit_parse_line(line, (size_t)len, &l) != 0) {
            rc = DZ_ERR_STATE;
            break;
        }
        if (l.seq < r->from)
            continue;
        if (r->next == 0 && r->from != 0 && l.seq != r->from) {
            rc = DZ_ERR_NOTFOUND;
            break;
        }
        if (r->next != 0 && l.seq != r->next) {
            rc = DZ_ERR_STATE;
            break;
        }
        r->next = l.seq + 1;
        *fn_rc = r->fn(r->arg, l.seq, line, (size_t)len);
        if (*fn_rc != 0) {
            rc = 1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int dz_audit_read_history(const char *audit_path, uint64_t from,
                          int (*fn)(void *arg, uint64_t seq, const char *line, size_t len),
                          void *arg)
{
    struct seg *segs = NULL;
    size_t n = 0;
    struct reader r = {from, 0, fn, arg};
    int fn_rc = 0;
    int rc;

    rc = list_segments(audit_path, &segs, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* A segment wholly before from is skipped unread. */
        if (r.next == 0 && i + 1 < n && segs[i + 1].first <= from)
            continue;
        rc = read_file(segs[i].path, &r, &fn_rc);
    }
    if (rc == 0)
        rc = read_file(audit_path, &r, &fn_rc);
    for (size_t i = 0; i < n; i++)
        free(segs[i].path);
    free(segs);
    if (rc == 1)
        return fn_rc;
    if (rc == 0 && r.next == 0)
        return DZ_ERR_NOTFOUND;
    return rc;
}

/* The seq of a file's first line; 0 when it has none that parses. */
static uint64_t first_seq(const char *path)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct dz_audit_line l;
    uint64_t seq = 0;

    if (!f)
        return 0;
    len = getline(&line, &cap, f);
    if (len > 0 && line[len - 1] == '\n' && dz_audit_parse_line(line, (size_t)len - 1, &l) == 0)
        seq = l.seq;
    free(line);
    fclose(f);
    return seq;
}

/* One file of a history into the verdict; false once it holds a fault. */
static bool verify_one(const char *path, const struct dz_audit_keys *keys,
                       struct dz_audit_chain *chain, bool first, struct dz_audit_history_check *out)
{
    struct dz_audit_report r;
    /* A history whose oldest segments were moved away starts where its
     * first file does (its chain is taken as given there); one that starts
     * at seq 1 must start from zeros. */
    int rc = dz_audit_verify_segment(path, keys, first && first_seq(path) > 1 ? NULL : chain, &r);

    if (rc != 0 || r.first_bad_line) {
        snprintf(out->path, sizeof(out->path), "%s", path);
        out->line = r.first_bad_line;
        out->reason = rc != 0 ? "unreadable" : r.reason;
        snprintf(out->detail, sizeof(out->detail), "%s", r.detail[0] ? r.detail : dz_err_str(rc));
        return false;
    }
    if (r.lines == 0)
        return true; /* a new live file before its first line adds nothing */
    out->lines += r.lines;
    out->heads_verified += r.heads_verified;
    out->unsigned_tail = r.heads_seen > 0 ? r.unsigned_tail : out->unsigned_tail + r.lines;
    if (r.heads_seen > 0) {
        snprintf(out->head_path, sizeof(out->head_path), "%s", path);
        out->head_line = r.last_head_seq - r.first_seq + 1;
        out->head_seq = r.last_head_seq;
    }
    chain->seq = r.last_seq;
    memcpy(chain->hash, r.last_hash, 32);
    return true;
}

int dz_audit_verify_history(const char *audit_path, uint64_t from, const struct dz_audit_keys *keys,
                            struct dz_audit_history_check *out)
{
    struct seg *segs = NULL;
    size_t n = 0;
    struct dz_audit_chain chain;
    bool good = true;
    bool started = false;
    uint64_t live_first;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&chain, 0, sizeof(chain));
    if ((rc = list_segments(audit_path, &segs, &n)) != 0)
        return rc;
    live_first = first_seq(audit_path);
    for (size_t i = 0; i < n && good; i++) {
        uint64_t next = i + 1 < n ? segs[i + 1].first : live_first;
        /* A file wholly before from is left unread. */
        if (next != 0 && next <= from)
            continue;
        good = verify_one(segs[i].path, keys, &chain, !started, out);
        started = true;
    }
    /* No live file yet (a first start) holds no line to check. */
    if (good && access(audit_path, F_OK) == 0)
        good = verify_one(audit_path, keys, &chain, !started, out);
    for (size_t i = 0; i < n; i++)
        free(segs[i].path);
    free(segs);
    return out->reason && strcmp(out->reason, "unreadable") == 0 ? DZ_ERR_IO : 0;
}

uint64_t dz_audit_tree_vouched(const char *audit_path, const char *dir)
{
    char path[4200];
    struct stat st;

    if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, DZ_AUDIT_ACCEPT_NAME);
    else
        snprintf(path, sizeof(path), "%s.tree/%s", audit_path, DZ_AUDIT_ACCEPT_NAME);
    if (stat(path, &st) == 0)
        return 0;
    if (dir)
        snprintf(path, sizeof(path), "%s/L00", dir);
    else
        snprintf(path, sizeof(path), "%s.tree/L00", audit_path);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size / 32 : 0;
}

/* --------------------------------------------------------------- tree --- */

static int add_leaf(void *arg, uint64_t seq, const char *line, size_t len)
{
    struct dz_audit_tree *t = arg;
    struct dz_merkle_levels lv = levels_of(t);
    unsigned char leaf[32];
    uint64_t have;

    lv_count(t, 0, &have);
    if (seq <= have)
        return 0; /* already a leaf */
    if (seq != have + 1)
        return DZ_ERR_STATE;
    dz_merkle_leaf_hash(line, len, leaf);
    return dz_merkle_append(&lv, leaf);
}

/* Add every line of the history the tree lacks.  0 when the log ends where
 * the tree does. */
static int catch_up(struct dz_audit_tree *t)
{
    uint64_t have;
    int rc;

    lv_count(t, 0, &have);
    rc = dz_audit_read_history(t->audit_path, have + 1, add_leaf, t);
    return rc == DZ_ERR_NOTFOUND ? 0 : rc;
}

struct leaf_check {
    unsigned char want[32];
    bool same;
};

static int check_leaf(void *arg, uint64_t seq, const char *line, size_t len)
{
    struct leaf_check *c = arg;
    unsigned char h[32];

    dz_merkle_leaf_hash(line, len, h);
    c->same = memcmp(h, c->want, 32) == 0;
    return 1; /* one line is enough */
}

static void close_levels(struct dz_audit_tree *t)
{
    for (unsigned i = 0; i < DZ_MERKLE_LEVELS; i++) {
        if (t->fd[i] >= 0)
            close(t->fd[i]);
        t->fd[i] = -1;
        t->n[i] = 0;
    }
    if (t->heads_fd >= 0)
        close(t->heads_fd);
    t->heads_fd = -1;
    t->has_head = false;
}

/* Open the level files that exist, cut them to whole hashes and to what the
 * level below supports, and compute missing parents. */
static int load_levels(struct dz_audit_tree *t)
{
    struct dz_merkle_levels lv = levels_of(t);

    for (unsigned i = 0; i < DZ_MERKLE_LEVELS; i++) {
        char path[4096];
        struct stat st;
        uint64_t n;
        snprintf(path, sizeof(path), "%s/L%02u", t->dir, i);
        /* Every level's file is opened now, created if need be: after a
         * privilege drop the directory may no longer be writable. */
        t->fd[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (t->fd[i] < 0)
            return DZ_ERR_IO;
        if (fstat(t->fd[i], &st) != 0)
            return DZ_ERR_IO;
        n = (uint64_t)st.st_size / 32;
        /* Parents beyond what their children make were written for leaves
         * that did not survive (a crash): they are recomputed. */
        if (i > 0 && n > t->n[i - 1] / 2)
            n = t->n[i - 1] / 2;
        if ((uint64_t)st.st_size != n * 32 && ftruncate(t->fd[i], (off_t)(n * 32)) != 0)
            return DZ_ERR_IO;
        if (n > 0 && pread(t->fd[i], t->last[i], 32, (off_t)((n - 1) * 32)) != 32)
            return DZ_ERR_IO;
        t->n[i] = n;
    }
    return dz_merkle_repair(&lv);
}

/* The last head in heads.jsonl that this tree can prove against. */
static void load_head(struct dz_audit_tree *t)
{
    char path[4096];
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    snprintf(path, sizeof(path), "%s/" HEADS_NAME, t->dir);
    f = fopen(path, "re");
    if (!f)
        return;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        struct dz_audit_sth h;
        unsigned char root[32];
        struct dz_merkle_levels lv = levels_of(t);
        /* A head whose root the tree does not reproduce is not ours to serve. */
        if (o && dz_audit_sth_parse(o, &h) == 0 && strcmp(h.instance, t->instance) == 0 &&
            h.tree_size <= t->n[0] && dz_merkle_root(&lv, h.tree_size, root) == 0 &&
            memcmp(root, h.root, 32) == 0) {
            t->head = h;
            t->has_head = true;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
}

bool dz_audit_tree_last_head(const char *dir, const char *instance, struct dz_audit_sth *out)
{
    char path[4096];
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool found = false;

    snprintf(path, sizeof(path), "%s/" HEADS_NAME, dir);
    f = fopen(path, "re");
    if (!f)
        return false;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        struct dz_audit_sth h;
        if (o && dz_audit_sth_parse(o, &h) == 0 &&
            (!instance || strcmp(h.instance, instance) == 0)) {
            *out = h;
            found = true;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return found;
}

static int leaf_at(void *arg, uint64_t index, unsigned char out[32])
{
    return lv_get(arg, 0, index, out);
}

/*
 * Load the tree and hold it against the log: its last leaf must be the hash
 * of the log's line with that seq, and once it has caught up with the log it
 * must still reproduce the last head it signed.  0: they agree (the tree
 * has caught up); DZ_ERR_STATE: they do not, m says how (nothing was moved
 * or signed); another error: the tree or the log cannot be read.
 */
static int examine(struct dz_audit_tree *t, const char *instance, struct dz_audit_mismatch *m)
{
    struct dz_merkle_levels lv = levels_of(t);
    struct dz_audit_sth h;
    bool has_head;
    bool head_lost = false;
    bool differ = false;
    int rc = load_levels(t);

    if (rc != 0)
        return rc;
    if (t->n[0] > 0) {
        struct leaf_check c = {{0}, false};
        int hrc;
        if ((rc = lv_get(t, 0, t->n[0] - 1, c.want)) != 0)
            return rc;
        hrc = dz_audit_read_history(t->audit_path, t->n[0], check_leaf, &c);
        if (hrc == DZ_ERR_IO)
            return hrc;
        differ = hrc != 1 || !c.same;
    }
    has_head = dz_audit_tree_last_head(t->dir, instance, &h);
    if (!differ) {
        unsigned char root[32];
        if ((rc = catch_up(t)) != 0)
            return rc;
        head_lost =
            has_head && (h.tree_size > t->n[0] || dz_merkle_root(&lv, h.tree_size, root) != 0 ||
                         memcmp(root, h.root, 32) != 0);
        if (!head_lost)
            return 0;
    }
    memset(m, 0, sizeof(*m));
    {
        struct dz_audit_scan s;
        dz_audit_scan_init(&s, t->n[0], leaf_at, t, m);
        rc = dz_audit_scan_finish(&s,
                                  dz_audit_read_history(t->audit_path, 0, dz_audit_scan_line, &s));
    }
    if (rc < 0)
        return rc;
    if (t->n[0] > 0 && (rc = dz_merkle_root(&lv, t->n[0], m->root)) != 0)
        return rc;
    if (m->what[0] == '\0' && head_lost) {
        /* Line by line the tree is the log: the tree was cut or rebuilt
         * along with it, and only the last signed head remembers. */
        char hex[65];
        dz_hex(h.root, 32, hex);
        m->seq = h.tree_size > t->n[0] ? t->n[0] + 1 : h.tree_size;
        snprintf(m->what, sizeof(m->what),
                 "%s holds a head signed over %" PRIu64 " lines (root %.16s...) that the tree of "
                 "this log does not reproduce: a line up to seq %" PRIu64
                 " was cut or changed, and the tree with it",
                 HEADS_NAME, h.tree_size, hex, h.tree_size);
    } else if (m->what[0] == '\0') {
        m->seq = t->n[0];
        snprintf(m->what, sizeof(m->what), "the tree's last leaf is not the log's line %" PRIu64,
                 t->n[0]);
    }
    return DZ_ERR_STATE;
}

/* The operator acknowledged a restore: keep the tree as evidence (with the
 * acknowledgement in it), start anew, and hold the record of it until the
 * log has it (dz_audit_tree_restore_pending). */
static int restore(struct dz_audit_tree *t, const char *instance, const struct dz_audit_mismatch *m,
                   const char *reason)
{
    char bad[4200];
    const char *kept;
    struct dz_audit_sth h;
    bool has_head = dz_audit_tree_last_head(t->dir, instance, &h);
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    close_levels(t);
    gmtime_r(&now, &tm);
    snprintf(bad, sizeof(bad), "%s.bad-%04d%02d%02dT%02d%02d%02dZ", t->dir, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    kept = strrchr(bad, '/') ? strrchr(bad, '/') + 1 : bad;
    t->restored = dz_audit_restore_record(m, has_head ? &h : NULL, kept, reason);
    if (!t->restored)
        return DZ_ERR_NOMEM;
    if (rename(t->dir, bad) != 0 || mkdir(t->dir, 0700) != 0)
        return DZ_ERR_IO;
    dz_logj(DZ_LOG_WARN, "audit_tree_restore", json_deep_copy(t->restored));
    /* The record first: from here on, a start that stops before the line is
     * in the log finds it in the new tree and appends it then. */
    if ((rc = dz_audit_pending_write(t->dir, t->restored)) != 0)
        return rc;
    if ((rc = load_levels(t)) != 0)
        return rc;
    return catch_up(t);
}

static void log_mismatch(const struct dz_audit_tree *t, const struct dz_audit_mismatch *m,
                         int accept_rc)
{
    dz_logj(DZ_LOG_ERROR, "audit_tree_mismatch",
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "log", t->audit_path, "tree", t->dir,
                      "seq", (json_int_t)m->seq, "tree_size", (json_int_t)m->tree_size, "log_end",
                      (json_int_t)m->log_end, "reason", m->what, "msg",
                      accept_rc == DZ_ERR_STATE
                          ? "the audit tree disagrees with the log; the accept-restore on file was "
                            "made for another state and is void: not started, nothing signed"
                          : "the audit tree disagrees with the log (was it cut or changed?): not "
                            "started, nothing signed; after a restore from a backup, run darvaza "
                            "audit accept-restore"));
}

static struct dz_audit_tree *tree_new(const char *audit_path, const char *dir, const char *instance)
{
    struct dz_audit_tree *t = calloc(1, sizeof(*t));
    size_t n = strlen(audit_path) + sizeof(".tree");

    if (!t)
        return NULL;
    for (unsigned i = 0; i < DZ_MERKLE_LEVELS; i++)
        t->fd[i] = -1;
    t->heads_fd = -1;
    pthread_mutex_init(&t->mu, NULL);
    memcpy(t->instance, instance, strlen(instance));
    t->audit_path = strdup(audit_path);
    t->dir = dir ? strdup(dir) : malloc(n);
    if (!t->audit_path || !t->dir) {
        dz_audit_tree_close(t);
        return NULL;
    }
    if (!dir)
        snprintf(t->dir, n, "%s.tree", audit_path);
    return t;
}

int dz_audit_tree_open(const char *audit_path, const char *dir, const char *instance,
                       struct dz_audit_tree **out, struct dz_audit_mismatch *mismatch)
{
    struct dz_audit_tree *t = NULL;
    struct dz_audit_mismatch m;
    int rc;

    *out = NULL;
    if (mismatch)
        memset(mismatch, 0, sizeof(*mismatch));
    if (!instance || strlen(instance) == 0 || strlen(instance) > DZ_AUDIT_INSTANCE_MAX)
        return DZ_ERR_INVAL;
    if (!(t = tree_new(audit_path, dir, instance)))
        return DZ_ERR_NOMEM;
    rc = DZ_ERR_IO;
    if (mkdir(t->dir, 0700) != 0 && errno != EEXIST) {
        dz_log(DZ_LOG_ERROR, "audit_tree", "%s: cannot create: %s", t->dir, strerror(errno));
        goto out;
    }
    rc = examine(t, instance, &m);
    if (rc == DZ_ERR_STATE) {
        char *reason = NULL;
        int arc = dz_audit_accept_read(t->dir, &m, &reason);
        if (arc == 0 && m.readable)
            rc = restore(t, instance, &m, reason);
        free(reason);
        if (arc != 0 || !m.readable) {
            log_mismatch(t, &m, arc);
            if (mismatch)
                *mismatch = m;
            goto out;
        }
    } else if (rc == 0) {
        char acc[4200];
        int prc;
        /* A restore whose line did not reach the log yet (the gateway
         * stopped in between): it is appended at this start. */
        t->restored = dz_audit_pending_read(t->dir, &prc);
        if (prc == DZ_ERR_STATE || prc == DZ_ERR_IO) {
            rc = prc;
            dz_log(DZ_LOG_ERROR, "audit_tree", "%s/%s: cannot be read", t->dir,
                   DZ_AUDIT_PENDING_NAME);
            goto out;
        }
        /* An acknowledgement the tree does not need (they agree) must not
         * wait for a later disagreement. */
        snprintf(acc, sizeof(acc), "%s/%s", t->dir, DZ_AUDIT_ACCEPT_NAME);
        if (unlink(acc) == 0)
            dz_log(DZ_LOG_WARN, "audit_tree",
                   "%s: removed: the tree agrees with the log, nothing to accept", acc);
    }
    if (rc != 0) {
        dz_log(DZ_LOG_ERROR, "audit_tree", "%s: cannot build the tree from %s: %s", t->dir,
               audit_path, dz_err_str(rc));
        goto out;
    }
    load_head(t);
    {
        char hp[4096];
        snprintf(hp, sizeof(hp), "%s/" HEADS_NAME, t->dir);
        t->heads_fd = open(hp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (t->heads_fd < 0) {
            rc = DZ_ERR_IO;
            dz_log(DZ_LOG_ERROR, "audit_tree", "%s: cannot open: %s", hp, strerror(errno));
            goto out;
        }
    }
    dz_log(DZ_LOG_INFO, "audit_tree", "%s: %" PRIu64 " leaves", t->dir, t->n[0]);
    *out = t;
    t = NULL;
    rc = 0;
out:
    dz_audit_tree_close(t);
    return rc;
}

int dz_audit_tree_accept_restore(const char *audit_path, const char *dir, const char *reason,
                                 struct dz_audit_mismatch *m)
{
    struct dz_audit_tree *t;
    struct stat st;
    int rc;

    memset(m, 0, sizeof(*m));
    if (!(t = tree_new(audit_path, dir, "-")))
        return DZ_ERR_NOMEM;
    /* No tree, nothing to accept: the gateway builds one from the log. */
    rc = stat(t->dir, &st) == 0 ? examine(t, NULL, m) : DZ_ERR_NOTFOUND;
    if (rc == 0)
        rc = DZ_ERR_NOTFOUND;
    else if (rc == DZ_ERR_STATE)
        rc = m->readable ? dz_audit_accept_write(t->dir, m, reason) : DZ_ERR_PARSE;
    dz_audit_tree_close(t);
    return rc;
}

json_t *dz_audit_tree_restore_pending(struct dz_audit_tree *t)
{
    return t->restored;
}

int dz_audit_tree_restore_done(struct dz_audit_tree *t)
{
    int rc = dz_audit_pending_done(t->dir);

    if (rc == 0) {
        json_decref(t->restored);
        t->restored = NULL;
    }
    return rc;
}

/* Sign a head over the whole tree and publish it (heads.jsonl, the log). */
static int sign_head(struct dz_audit_tree *t, const struct dz_audit_batch *b)
{
    struct dz_merkle_levels lv = levels_of(t);
    struct dz_audit_sth h;
    char msg[DZ_AUDIT_STH_MSG_MAX];
    size_t len;
    char *line = NULL;
    json_t *o = NULL;
    int fd = -1;
    int rc;

    memset(&h, 0, sizeof(h));
    memcpy(h.instance, t->instance, sizeof(h.instance));
    lv_count(t, 0, &h.tree_size);
    if (h.tree_size == 0 || strlen(b->kid) >= sizeof(h.kid))
        return DZ_ERR_STATE;
    memcpy(h.kid, b->kid, strlen(b->kid));
    {
        char when[DZ_RFC3339_MS_MAX];
        dz_rfc3339_now(when);
        snprintf(h.time, sizeof(h.time), "%.*s", DZ_AUDIT_TIME_MAX, when);
    }
    if ((rc = dz_merkle_root(&lv, h.tree_size, h.root)) != 0)
        return rc;
    len = dz_audit_sth_message(&h, msg);
    if (len == 0)
        return DZ_ERR_TOOBIG;
    if ((rc = b->sign(b->sign_arg, msg, len, h.sig)) != 0)
        return rc;
    rc = DZ_ERR_NOMEM;
    o = dz_audit_sth_json(&h);
    line = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!line)
        goto out;
    rc = DZ_ERR_IO;
    fd = t->heads_fd;
    len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
    if (fd < 0 || write(fd, line, len + 1) != (ssize_t)(len + 1) || fdatasync(fd) != 0)
        goto out;
    line[len] = '\0';
    pthread_mutex_lock(&t->mu);
    t->head = h;
    t->has_head = true;
    pthread_mutex_unlock(&t->mu);
    /* Shipped off the host with the other logs: a witness of every head. */
    dz_logj(DZ_LOG_INFO, "audit_tree_head", o);
    o = NULL;
    rc = 0;
out:
    free(line);
    json_decref(o);
    return rc;
}

/* Lines in a batch's data: each ends with a newline. */
static size_t count_lines(const char *p, const char *end)
{
    size_t n = 0;

    while (p && p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* Add the batch's lines (those the tree lacks), staged and written once. */
static int add_batch(struct dz_audit_tree *t, const struct dz_audit_batch *b, uint64_t *seq)
{
    const char *p = b->data;
    const char *end = b->data ? b->data + b->len : NULL;
    struct stage *s = stage_begin(t, count_lines(p, end));
    int rc = s ? 0 : DZ_ERR_NOMEM;

    for (; s && p && p < end && rc == 0; (*seq)++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        unsigned char leaf[32];
        if (!nl)
            break;
        /* Lines the tree missed (written before it was attached) come from
         * the log, which holds this batch too by now: what is staged is
         * written first, catch_up appends after it. */
        if (*seq > s->n[0] + 1) {
            if ((rc = stage_commit(t, s)) != 0 || (rc = catch_up(t)) != 0)
                break;
            free(s);
            if (!(s = stage_begin(t, count_lines(p, end)))) {
                rc = DZ_ERR_NOMEM;
                break;
            }
        }
        if (*seq == s->n[0] + 1) {
            dz_merkle_leaf_hash(p, (size_t)(nl - p), leaf);
            stage_leaf(s, leaf);
        } else if (*seq > s->n[0]) {
            rc = DZ_ERR_STATE;
            break;
        } /* else: already a leaf */
        p = nl + 1;
    }
    if (rc == 0 && s)
        rc = stage_commit(t, s);
    free(s);
    return rc;
}

void dz_audit_tree_observe(void *tree, const struct dz_audit_batch *b)
{
    struct dz_audit_tree *t = tree;
    uint64_t seq = b->first_seq;
    int rc = 0;

    if (t->broken)
        return;
    rc = add_batch(t, b, &seq);
    if (rc != 0) {
        t->broken = true;
        dz_log(DZ_LOG_ERROR, "audit_tree",
               "%s: cannot add line %" PRIu64 " (%s); the tree stops here until a restart "
               "rebuilds it from the log",
               t->dir, seq, dz_err_str(rc));
        return;
    }
    if (b->sign) {
        uint64_t have;
        bool behind;
        lv_count(t, 0, &have);
        pthread_mutex_lock(&t->mu);
        behind = !t->has_head || t->head.tree_size < have;
        pthread_mutex_unlock(&t->mu);
        if (behind && (rc = sign_head(t, b)) != 0)
            dz_log(DZ_LOG_ERROR, "audit_tree", "%s: cannot sign a tree head: %s", t->dir,
                   dz_err_str(rc));
    }
}

uint64_t dz_audit_tree_size(struct dz_audit_tree *t)
{
    uint64_t n;

    lv_count(t, 0, &n);
    return n;
}

int dz_audit_tree_head(struct dz_audit_tree *t, struct dz_audit_sth *out)
{
    int rc = DZ_ERR_NOTFOUND;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&t->mu);
    if (t->has_head) {
        *out = t->head;
        rc = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int dz_audit_tree_inclusion(struct dz_audit_tree *t, uint64_t seq, uint64_t tree_size,
                            unsigned char path[][32], size_t *path_len)
{
    struct dz_merkle_levels lv = levels_of(t);

    *path_len = 0;
    if (seq < 1 || seq > tree_size)
        return DZ_ERR_INVAL;
    return dz_merkle_inclusion(&lv, seq - 1, tree_size, path, path_len);
}

void dz_audit_tree_close(struct dz_audit_tree *t)
{
    if (!t)
        return;
    close_levels(t);
    json_decref(t->restored);
    pthread_mutex_destroy(&t->mu);
    free(t->audit_path);
    free(t->dir);
    free(t);
}

/* ------------------------------------------------------ published heads --- */

#define HEAD_LINE_MAX 4096 /* a head line is a few hundred bytes */

/* The first line of heads.jsonl that starts at off or later: its start,
 * the offset after its newline, and the head it holds.  DZ_ERR_NOTFOUND:
 * none starts there; DZ_ERR_PARSE: not a head; DZ_ERR_IO. */
static int head_line_at(int fd, off_t off, off_t *next, struct dz_audit_sth *h)
{
    char buf[HEAD_LINE_MAX];
    off_t start = off;
    ssize_t r;
    char *nl;
    json_t *o;
    int rc;

    if (off > 0) {
        /* The line that holds byte off-1 ends somewhere; the next begins
         * after its newline. */
        r = pread(fd, buf, sizeof(buf), off - 1);
        if (r < 0)
            return DZ_ERR_IO;
        nl = memchr(buf, '\n', (size_t)r);
        if (!nl)
            return r < (ssize_t)sizeof(buf) ? DZ_ERR_NOTFOUND : DZ_ERR_PARSE;
        start = off - 1 + (nl - buf) + 1;
    }
    r = pread(fd, buf, sizeof(buf), start);
    if (r < 0)
        return DZ_ERR_IO;
    nl = memchr(buf, '\n', (size_t)r);
    if (r == 0 || !nl)
        return r == 0 ? DZ_ERR_NOTFOUND : DZ_ERR_PARSE;
    *next = start + (nl - buf) + 1;
    o = json_loadb(buf, (size_t)(nl - buf), JSON_REJECT_DUPLICATES, NULL);
    rc = o && dz_audit_sth_parse(o, h) == 0 ? 0 : DZ_ERR_PARSE;
    json_decref(o);
    return rc;
}

int dz_audit_tree_published(struct dz_audit_tree *t, uint64_t size, struct dz_audit_sth *out)
{
    struct dz_merkle_levels lv = levels_of(t);
    char path[4096];
    struct stat st;
    off_t lo = 0;
    off_t hi;
    int fd;
    int rc = DZ_ERR_NOTFOUND;

    memset(out, 0, sizeof(*out));
    if (size < 1 || size > dz_audit_tree_size(t))
        return DZ_ERR_NOTFOUND;
    snprintf(path, sizeof(path), "%s/" HEADS_NAME, t->dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return DZ_ERR_IO;
    }
    /* Heads are appended as the tree grows: their sizes only increase, so
     * the one asked for is found by halving the file, not by reading it
     * (it gains a line every audit.head_interval while lines arrive). */
    hi = st.st_size;
    while (lo < hi) {
        off_t mid = lo + (hi - lo) / 2;
        off_t next = 0;
        struct dz_audit_sth h;
        int lrc = head_line_at(fd, mid, &next, &h);
        if (lrc == DZ_ERR_NOTFOUND) {
            hi = mid;
            continue;
        }
        if (lrc != 0) {
            rc = lrc;
            break;
        }
        if (h.tree_size == size) {
            unsigned char root[32];
            /* Only a head of this instance that this tree reproduces. */
            if (strcmp(h.instance, t->instance) == 0 && dz_merkle_root(&lv, size, root) == 0 &&
                memcmp(root, h.root, 32) == 0) {
                *out = h;
                rc = 0;
            }
            break;
        }
        if (h.tree_size < size)
            lo = next;
        else
            hi = mid;
    }
    close(fd);
    return rc;
}

int dz_audit_tree_consistency(struct dz_audit_tree *t, uint64_t m, uint64_t n,
                              unsigned char path[][32], size_t *path_len)
{
    struct dz_merkle_levels lv = levels_of(t);

    *path_len = 0;
    if (m < 1 || m > n || n > dz_audit_tree_size(t))
        return DZ_ERR_INVAL;
    return dz_merkle_consistency(&lv, m, n, path, path_len);
}
