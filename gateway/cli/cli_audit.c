/*
 * cli_audit.c - `darvaza audit verify FILE|DIR... [--jwks FILE | --key
 * PUBKEY.pem] [--archive KEYS.jwks] [--from-header] [--head SEQ:HEX]`:
 * checks an audit log's hash chain - one file or a rotated history of
 * segments, ordered by seq and linked by their headers, one chain per
 * instance - and, given public keys, its signed heads, and names the first
 * bad line as FILE:LINE.  --head takes a head
 * recorded elsewhere (the "audit_head" lines of the gateway's shipped logs)
 * and fails unless the file still holds that head: the check that catches
 * lines cut from the end, even when the gateway went on writing after the
 * cut.  It only reads: it never repairs a log and never needs a private key.
 */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "audit/audit_keyarchive.h"
#include "base/err.h"
#include "base/parse.h"
#include "keys/jws.h"

#include "base/compat.h"

static int usage(void)
{
    fputs("usage: darvaza audit verify FILE|DIR... [--jwks JWKS.json | --key PUBKEY.pem]\n"
          "                            [--archive KEYS.jwks | --no-archive]\n"
          "                            [--from-header] [--head SEQ:HEX]\n"
          "  Checks the hash chain of an audit log - one file, or every segment of a\n"
          "  rotated history (files, or DIR: its *.log files), ordered by seq, linked by\n"
          "  their segment headers, one chain per instance - and, with keys, the\n"
          "  signatures of its signed heads (--key: one PEM public key for every kid).\n"
          "  --archive: the key archive of retired keys (default: audit-keys.jwks next\n"
          "  to the first FILE or in DIR); heads of kids not in --jwks are checked with it.\n"
          "  With --jwks/--key the last head must be signed by one of those keys (or by\n"
          "  a key of an archive named with --archive), not by one found only next to\n"
          "  the log.\n"
          "  --from-header: the history may start after seq 1 (earlier segments deleted\n"
          "  on purpose); the first segment's header is taken as given.\n"
          "  --head SEQ:HEX: also require the head line at seq SEQ to carry head HEX,\n"
          "  as recorded by an \"audit_head\" entry of the gateway's log; this finds\n"
          "  lines cut from the end of the file.\n"
          "  Exit 0 intact, 1 damaged, 2 usage.\n",
          stderr);
    return 2;
}

struct keys {
    struct dz_jwks *jwks;    /* --jwks: heads are checked with the key of their kid */
    EVP_PKEY *pem;           /* --key: every head is checked with this one key */
    struct dz_jwks *archive; /* retired keys, for kids --jwks does not have */
    bool archive_chosen;     /* --archive: the operator's own copy, trusted like --jwks */
    /* The key of the latest head looked up came from the archive found next
     * to the log (the heads are checked in chain order, so after a chain
     * this is its last head). */
    bool last_from_default_archive;
    char last_kid[128];
};

static EVP_PKEY *find_key(void *arg, const char *kid)
{
    struct keys *k = arg;

    /* --key serves every kid: fine for one key, but a log that spans a key
     * rotation needs --jwks so each head is checked with its own key. */
    EVP_PKEY *p;

    k->last_from_default_archive = false;
    snprintf(k->last_kid, sizeof(k->last_kid), "%s", kid);
    if (k->pem)
        return k->pem;
    p = k->jwks ? dz_jwks_find(k->jwks, kid) : NULL;
    if (p || !k->archive)
        return p;
    p = dz_jwks_find(k->archive, kid);
    k->last_from_default_archive = p && !k->archive_chosen;
    return p;
}

static int load_jwks(const char *path, struct dz_jwks **out)
{
    int rc = dz_jwks_load_file(path, out);

    if (rc == DZ_ERR_IO)
        fprintf(stderr, "darvaza audit: %s: %s\n", path, strerror(errno));
    else if (rc != 0)
        fprintf(stderr, "darvaza audit: %s: not a usable JWK set (%s)\n", path, dz_err_str(rc));
    return rc;
}

static int load_pem(const char *path, EVP_PKEY **out)
{
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (!f) {
        fprintf(stderr, "darvaza audit: %s: %s\n", path, strerror(errno));
        return DZ_ERR_IO;
    }
    *out = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    /* A failed PEM read leaves errors queued; the message below says it. */
    ERR_clear_error();
    if (!*out || !EVP_PKEY_is_a(*out, "EC")) {
        fprintf(stderr, "darvaza audit: %s: not a PEM EC public key\n", path);
        EVP_PKEY_free(*out);
        *out = NULL;
        return DZ_ERR_PARSE;
    }
    return 0;
}

/* "SEQ:HEX" with SEQ >= 1 and HEX 64 lower-case hex digits. */
static int parse_head_arg(const char *s, uint64_t *seq, char hex[65])
{
    const char *colon = strchr(s, ':');
    char num[24];
    long long v = 0;

    if (!colon || (size_t)(colon - s) >= sizeof(num) || strlen(colon + 1) != 64 ||
        strspn(colon + 1, "0123456789abcdef") != 64)
        return DZ_ERR_INVAL;
    memcpy(num, s, (size_t)(colon - s));
    num[colon - s] = '\0';
    if (dz_parse_int(num, 1, LLONG_MAX, &v) != 0)
        return DZ_ERR_INVAL;
    *seq = (uint64_t)v;
    memcpy(hex, colon + 1, 65);
    return 0;
}

/* In a segment whose chain verified, line n holds seq first_seq + n - 1:
 * read line lineno and check it is a head line carrying hex.  Returns 1
 * match, 0 mismatch. */
static int head_matches(const char *file, uint64_t lineno, const char *hex)
{
    FILE *f = fopen(file, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = -1;
    json_t *obj = NULL;
    json_t *head;
    int ok = 0;

    if (!f)
        return 0;
    for (uint64_t n = 0; n < lineno; n++) {
        len = getline(&line, &cap, f);
        if (len <= 0)
            goto out;
    }
    obj = json_loadb(line, (size_t)len - 1, JSON_REJECT_DUPLICATES, NULL);
    head = json_object_get(obj, "head");
    ok = json_is_string(head) && strcmp(json_string_value(head), hex) == 0 &&
         json_is_string(json_object_get(obj, "type")) &&
         strcmp(json_string_value(json_object_get(obj, "type")), "head") == 0;
out:
    json_decref(obj);
    free(line);
    fclose(f);
    return ok;
}

/* One file of a history, as its first line announces it. */
struct seg {
    char *path;
    const char *name;   /* its file name */
    uint64_t first_seq; /* 0: empty, or line 1 is not an audit line */
    bool has_header;
    struct dz_audit_segment_header header;
    char group[DZ_AUDIT_INSTANCE_MAX + 1]; /* the instance whose chain it belongs to (a copy:
                                            * the array is sorted, pointers would move) */
};

struct history {
    struct seg *segs;
    size_t n;
    size_t cap;
};

static int add_seg(struct history *h, const char *path)
{
    struct seg *s;
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct dz_audit_line l;

    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 16;
        struct seg *ns = realloc(h->segs, nc * sizeof(*ns));
        if (!ns)
            return DZ_ERR_NOMEM;
        h->segs = ns;
        h->cap = nc;
    }
    s = &h->segs[h->n];
    memset(s, 0, sizeof(*s));
    s->path = strdup(path);
    if (!s->path)
        return DZ_ERR_NOMEM;
    s->name = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
    h->n++;
    f = fopen(path, "rb");
    if (!f)
        return 0; /* reported when the segment is verified */
    len = getline(&line, &cap, f);
    fclose(f);
    if (len > 1 && line[len - 1] == '\n' && (size_t)len - 1 <= DZ_AUDIT_VERIFY_LINE_MAX) {
        if (dz_audit_parse_segment_header(line, (size_t)len - 1, &s->header) == 0) {
            s->has_header = true;
            s->first_seq = s->header.seq;
        } else if (dz_audit_parse_line(line, (size_t)len - 1, &l) == 0) {
            s->first_seq = l.seq;
        }
    }
    free(line);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DIR: its *.log files (the live segment and the closed ones). */
static int add_dir(struct history *h, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    size_t cap = 0;
    int rc = 0;

    if (!d) {
        fprintf(stderr, "darvaza audit: %s: %s\n", dir, strerror(errno));
        return DZ_ERR_IO;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[PATH_MAX];
        struct stat st;

        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".log") != 0)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof(*nn));
            if (!nn) {
                rc = DZ_ERR_NOMEM;
                goto out;
            }
            names = nn;
            cap = nc;
        }
        names[n] = strdup(path);
        if (!names[n]) {
            rc = DZ_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    if (n == 0)
        fprintf(stderr, "darvaza audit: %s: no *.log file\n", dir);
    qsort(names, n, sizeof(*names), cmp_name);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_seg(h, names[i]);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static void history_free(struct history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->segs[i].path);
    free(h->segs);
}

/* Order within an instance: by seq, never by name (names are only a hint,
 * and a renamed file must not reorder the chain). */
static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a;
    const struct seg *y = b;
    int c = strcmp(x->group, y->group);

    if (c != 0)
        return c;
    if (x->first_seq != y->first_seq)
        return x->first_seq < y->first_seq ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Each file joins the chain of the instance its header names.  A file with
 * no header (a log from before segments, or the first of a history written
 * without an instance id) joins the only instance present, or stays alone. */
static void assign_groups(struct history *h)
{
    const char *only = NULL;
    bool several = false;

    for (size_t i = 0; i < h->n; i++) {
        const char *inst = h->segs[i].has_header ? h->segs[i].header.instance : NULL;
        if (!inst)
            continue;
        if (!only)
            only = inst;
        else if (strcmp(only, inst) != 0)
            several = true;
    }
    for (size_t i = 0; i < h->n; i++) {
        struct seg *s = &h->segs[i];
        const char *g = s->has_header ? s->header.instance : (!several && only) ? only : "";
        snprintf(s->group, sizeof(s->group), "%s", g);
    }
    qsort(h->segs, h->n, sizeof(*h->segs), cmp_seg);
}

struct totals {
    uint64_t lines;
    uint64_t heads_seen;
    uint64_t heads_verified;
    uint64_t forwards_sent;
    uint64_t forwards_open;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t unsigned_tail;
    const char *head_path; /* the file and line of the last signed head */
    uint64_t head_line;
    uint64_t head_seq;
};

/*
 * Verify the segments [b, e) of one instance in seq order.  Prints the first
 * fault as FILE:LINE: reason: detail.  Returns true when the chain holds.
 */
static bool verify_chain(struct seg *segs, size_t b, size_t e, const struct dz_audit_keys *ak,
                         bool from_header, struct totals *t)
{
    struct dz_audit_chain chain;
    struct dz_audit_report r;
    const struct seg *prev = NULL;

    memset(t, 0, sizeof(*t));
    memset(&chain, 0, sizeof(chain));
    for (size_t i = b; i < e; i++) {
        const struct seg *s = &segs[i];
        const struct dz_audit_chain *from = &chain;
        int rc;

        if (!prev && s->first_seq > 1) {
            if (!from_header) {
                printf("%s:1: missing_segment: the history starts at seq %" PRIu64
                       "%s%s%s: the segments before it are missing (give them, or "
                       "--from-header to start here)\n",
                       s->path, s->first_seq, s->has_header ? " and continues \"" : "",
                       s->has_header ? s->header.prev_file : "", s->has_header ? "\"" : "");
                return false;
            }
            from = NULL;
        } else if (prev && s->first_seq != t->last_seq + 1) {
            if (s->first_seq > t->last_seq + 1)
                printf("%s:1: seq_gap: seq %" PRIu64 "..%" PRIu64 " missing between %s (ends at "
                       "seq %" PRIu64 ") and this segment: a segment was deleted, or %s was cut "
                       "at its end\n",
                       s->path, t->last_seq + 1, s->first_seq - 1, prev->path, t->last_seq,
                       prev->name);
            else
                printf("%s:1: overlap: the segment starts at seq %" PRIu64 " but %s already "
                       "reaches seq %" PRIu64 ": a copy, or a segment of another history\n",
                       s->path, s->first_seq, prev->path, t->last_seq);
            return false;
        } else if (prev && (!s->has_header || strcmp(s->header.prev_file, prev->name) != 0)) {
            /* The chain alone would accept two segments whose names were
             * swapped; the header records which file came before. */
            printf("%s:1: segment_swapped: %s; it follows %s here: files were renamed or "
                   "swapped\n",
                   s->path,
                   s->has_header ? "its header names another file as the previous segment"
                                 : "it has no segment header",
                   prev->path);
            return false;
        }
        rc = dz_audit_verify_segment(s->path, ak, from, &r);
        if (rc != 0) {
            printf("%s: %s\n", s->path, r.detail[0] ? r.detail : dz_err_str(rc));
            return false;
        }
        if (r.first_bad_line) {
            printf("%s:%" PRIu64 ": %s: %s\n", s->path, r.first_bad_line, r.reason, r.detail);
            return false;
        }
        /* An empty file (a new log before its first line) adds nothing. */
        if (r.lines == 0)
            continue;
        if (!prev)
            t->first_seq = r.first_seq;
        t->lines += r.lines;
        t->heads_seen += r.heads_seen;
        t->heads_verified += r.heads_verified;
        t->forwards_sent += r.forwards_sent;
        t->forwards_open += r.forwards_open;
        t->last_seq = r.last_seq;
        t->unsigned_tail = r.unsigned_tail;
        if (r.heads_seen > 0) {
            t->head_path = s->path;
            t->head_line = r.last_head_seq - r.first_seq + 1;
            t->head_seq = r.last_head_seq;
        }
        chain.seq = r.last_seq;
        memcpy(chain.hash, r.last_hash, 32);
        prev = s;
    }
    return true;
}

/*
 * The archive found next to the log can be written by whoever can write the
 * log: a key added there would make a rewritten history "verify".  So when
 * the operator gave keys of their own (--jwks, --key), the history must end
 * under a head signed by one of them (or by a key of an archive they chose
 * with --archive).  Heads before it need the archive only for their own
 * signature: the chain ties every earlier line to that last head anyway.
 */
static bool last_head_trusted(const struct keys *k, const struct totals *t, bool own_keys)
{
    if (!own_keys || t->heads_verified == 0 || !k->last_from_default_archive)
        return true;
    printf("%s:%" PRIu64 ": untrusted_key: the last signed head (seq %" PRIu64
           ") is signed by kid \"%s\", a key found only in the archive next to the log, which "
           "whoever can write the log can write too: give the JWKS that published it (--jwks) "
           "or your own copy of the archive (--archive)\n",
           t->head_path, t->head_line, t->head_seq, k->last_kid);
    return false;
}

static int load_keys(struct keys *keys, const char *jwks_path, const char *key_path,
                     const char *archive_path)
{
    if (jwks_path && load_jwks(jwks_path, &keys->jwks) != 0)
        return -1;
    if (key_path && load_pem(key_path, &keys->pem) != 0)
        return -1;
    if (archive_path && load_jwks(archive_path, &keys->archive) != 0)
        return -1;
    return 0;
}

/* DIR/audit-keys.jwks for a DIR argument, else next to the first FILE. */
static char *default_archive(const char *arg)
{
    struct stat st;
    char *p = NULL;
    bool is_dir = stat(arg, &st) == 0 && S_ISDIR(st.st_mode);

    if (is_dir) {
        size_t n = strlen(arg) + sizeof("/" DZ_AUDIT_KEY_ARCHIVE_NAME);
        p = malloc(n);
        if (p)
            snprintf(p, n, "%s/%s", arg, DZ_AUDIT_KEY_ARCHIVE_NAME);
    } else {
        p = dz_audit_key_archive_default(arg);
    }
    if (p && access(p, R_OK) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

static int verify(int argc, char **argv)
{
    const char *jwks_path = NULL;
    const char *key_path = NULL;
    const char *archive_arg = NULL;
    char *archive_path = NULL;
    bool no_archive = false;
    bool from_header = false;
    const char *head_arg = NULL;
    uint64_t head_seq = 0;
    char head_hex[65] = "";
    struct keys keys = {.jwks = NULL};
    struct dz_audit_keys ak = {find_key, &keys};
    struct history h = {NULL, 0, 0};
    const char *first_arg = NULL;
    size_t nargs = 0;
    size_t groups = 0;
    size_t bad = 0;
    struct totals t;
    int code = 2;

    memset(&t, 0, sizeof(t));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jwks") == 0 && i + 1 < argc && !jwks_path)
            jwks_path = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc && !key_path)
            key_path = argv[++i];
        else if (strcmp(argv[i], "--archive") == 0 && i + 1 < argc && !archive_arg)
            archive_arg = argv[++i];
        else if (strcmp(argv[i], "--no-archive") == 0)
            no_archive = true;
        else if (strcmp(argv[i], "--from-header") == 0)
            from_header = true;
        else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc && !head_arg)
            head_arg = argv[++i];
        else if (argv[i][0] == '-')
            return usage();
        else if (nargs++ == 0)
            first_arg = argv[i];
    }
    if (nargs == 0 || (jwks_path && key_path) || (archive_arg && no_archive))
        return usage();
    if (head_arg && parse_head_arg(head_arg, &head_seq, head_hex) != 0)
        return usage();
    if (archive_arg)
        archive_path = strdup(archive_arg);
    else if (!no_archive && !key_path)
        archive_path = default_archive(first_arg);
    if (load_keys(&keys, jwks_path, key_path, archive_path) != 0)
        goto out;
    keys.archive_chosen = archive_arg != NULL;

    code = 1;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int rc;

        if (argv[i][0] == '-') {
            if (strcmp(argv[i], "--no-archive") != 0 && strcmp(argv[i], "--from-header") != 0)
                i++;
            continue;
        }
        rc = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? add_dir(&h, argv[i])
                                                            : add_seg(&h, argv[i]);
        if (rc != 0) {
            fprintf(stderr, "darvaza audit: %s: %s\n", argv[i], dz_err_str(rc));
            goto out;
        }
    }
    if (h.n == 0)
        goto out;
    assign_groups(&h);
    for (size_t b = 0; b < h.n;) {
        size_t e = b + 1;
        size_t bad0 = bad;
        while (e < h.n && strcmp(h.segs[e].group, h.segs[b].group) == 0)
            e++;
        groups++;
        keys.last_from_default_archive = false;
        if (!verify_chain(h.segs, b, e, (jwks_path || key_path || keys.archive) ? &ak : NULL,
                          from_header, &t) ||
            !last_head_trusted(&keys, &t, jwks_path || key_path)) {
            bad++;
        } else if (head_arg && groups == 1 && e == h.n) {
            /* --head: the segment holding that seq must still hold that head
             * (the cut-from-the-end check of a single history). */
            const struct seg *hs = NULL;
            for (size_t i = b; i < e; i++) {
                if (h.segs[i].first_seq <= head_seq)
                    hs = &h.segs[i];
            }
            if (head_seq > t.last_seq) {
                printf("%s:%" PRIu64 ": truncated: the history ends at seq %" PRIu64
                       " but the recorded head is at seq %" PRIu64
                       ": lines were cut from the end\n",
                       h.segs[e - 1].path, t.last_seq - h.segs[e - 1].first_seq + 2, t.last_seq,
                       head_seq);
                bad++;
            } else if (!hs || !head_matches(hs->path, head_seq - hs->first_seq + 1, head_hex)) {
                printf("%s:%" PRIu64 ": head_mismatch: this is not the recorded head: the lines "
                       "before it were replaced, or the log was cut and written again\n",
                       hs ? hs->path : h.segs[b].path, hs ? head_seq - hs->first_seq + 1 : 1);
                bad++;
            }
        } else if (head_arg) {
            fprintf(stderr, "darvaza audit: --head needs the files of one instance only\n");
            bad++;
        }
        if (bad == bad0) {
            /* The old one-file wording when it is one file. */
            if (h.n == 1)
                printf("ok: %" PRIu64 " lines, %" PRIu64 " signed heads verified\n", t.lines,
                       t.heads_verified);
            else
                printf("ok: instance %s: %zu segment(s), seq %" PRIu64 "..%" PRIu64 ", %" PRIu64
                       " lines, %" PRIu64 " signed heads verified\n",
                       h.segs[b].group[0] ? h.segs[b].group : "(none)", e - b, t.first_seq,
                       t.last_seq, t.lines, t.heads_verified);
            /* Several instances: each one's unsigned tail is its own (the
             * note after the loop covers a single history). */
            if (t.unsigned_tail > 0 && !(groups == 1 && e == h.n))
                fprintf(stderr,
                        "note: instance %s: the last %" PRIu64 " line(s) (seq %" PRIu64 "..%" PRIu64
                        ") follow its last signed head: nothing signs them, so "
                        "cutting, changing or adding them would not show here\n",
                        h.segs[b].group[0] ? h.segs[b].group : "(none)", t.unsigned_tail,
                        t.last_seq - t.unsigned_tail + 1, t.last_seq);
        }
        b = e;
    }
    if (bad > 0)
        goto out;
    if (t.forwards_sent > 0 && groups == 1)
        printf("forwards: %" PRIu64 " recorded before they left, %" PRIu64
               " without an outcome line (in flight when the log ended, or cut by a crash)\n",
               t.forwards_sent, t.forwards_open);
    if (keys.archive && (jwks_path || key_path || archive_arg))
        fprintf(stderr, "note: retired keys from the archive %s\n", archive_path);
    else if (keys.archive && t.heads_verified > 0)
        fprintf(stderr,
                "note: heads checked only with the archive %s, which whoever can rewrite the log "
                "can rewrite too: give --jwks (or --archive with a copy you keep) for signatures "
                "that prove something\n",
                archive_path);
    if (!jwks_path && !key_path && !keys.archive && t.heads_seen > 0)
        fprintf(stderr,
                "note: %" PRIu64 " head signature(s) not checked: give --jwks, --key or "
                "--archive\n",
                t.heads_seen);
    if (t.unsigned_tail > 0 && groups == 1)
        fprintf(stderr,
                "note: the last %" PRIu64 " line(s) (seq %" PRIu64 "..%" PRIu64
                ") follow the last signed head: nothing signs them, so cutting, changing or "
                "adding them would not show here\n",
                t.unsigned_tail, t.last_seq - t.unsigned_tail + 1, t.last_seq);
    if (!head_arg)
        fprintf(stderr, "note: give --head SEQ:HEX from the latest \"audit_head\" entry of "
                        "the gateway's log to detect lines cut from the end\n");
    code = 0;
out:
    history_free(&h);
    free(archive_path);
    dz_jwks_free(keys.jwks);
    dz_jwks_free(keys.archive);
    EVP_PKEY_free(keys.pem);
    return code;
}

int dz_cli_audit(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage();
        return 0;
    }
    /* The Merkle proofs (cli_transparency.c). */
    if (argc >= 2 && (strcmp(argv[1], "prove") == 0 || strcmp(argv[1], "check-proof") == 0 ||
                      strcmp(argv[1], "consistency") == 0))
        return dz_cli_audit_tree(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "accept-restore") == 0)
        return dz_cli_audit_restore(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return usage();
    return verify(argc - 1, argv + 1);
}
