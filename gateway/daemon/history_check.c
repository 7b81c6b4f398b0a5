/*
 * history_check.c - the log's signed heads checked before its tree takes
 * lines it does not hold (see history_check.h).
 */
#include "daemon/history_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_keyarchive.h"
#include "audit/audit_tree.h"
#include "base/err.h"
#include "base/log.h"
#include "core/config.h"
#include "core/gen.h"
#include "keys/jws.h"

#include "base/compat.h"

struct keys {
    struct dz_jwks *own;     /* the key set this gateway publishes */
    struct dz_jwks *archive; /* retired keys (the archive beside the log) */
    /* Heads are looked up in chain order: after a good history this says
     * whether its last head's key came from the archive only. */
    bool last_from_archive;
    char last_kid[128];
};

static EVP_PKEY *find_key(void *arg, const char *kid)
{
    struct keys *k = arg;
    EVP_PKEY *p = dz_jwks_find(k->own, kid);

    snprintf(k->last_kid, sizeof(k->last_kid), "%s", kid);
    k->last_from_archive = !p;
    if (!p && k->archive)
        p = dz_jwks_find(k->archive, kid);
    return p;
}

/* The archive at path, or NULL in *out when there is none. */
static int load_archive(const char *path, struct dz_jwks **out)
{
    int rc = dz_jwks_load_file(path, out);

    return rc == DZ_ERR_IO && errno == ENOENT ? 0 : rc;
}

static void refuse(const char *file, uint64_t from, uint64_t to, const char *why)
{
    fprintf(stderr,
            "darvazad: %s: the audit tree is to take lines %" PRIu64 "..%" PRIu64
            " from the log (it does not hold them: it was deleted, cut or is rebuilt), but "
            "%s. Not started, nothing signed: a history changed and its tree removed must not "
            "get new heads. If the log is genuine (check it with `darvaza audit verify` and the "
            "JWKS that published its keys), put the key that signed its last head back in the "
            "gateway's key set and start again.\n",
            file, from, to, why);
    dz_logj(DZ_LOG_ERROR, "audit_history_refused",
            json_pack("{s:s, s:I, s:I, s:s}", "log", file, "from", (json_int_t)from, "to",
                      (json_int_t)to, "reason", why));
}

int dz_history_check(const struct dz_gen *g, const struct dz_audit *a)
{
    const struct dz_config_audit *ca = &g->config->audit;
    char *def = NULL;
    struct keys k;
    struct dz_audit_keys ak = {find_key, &k};
    struct dz_audit_history_check *c = NULL;
    char why[4600];
    uint64_t vouched = dz_audit_tree_vouched(ca->file, NULL);
    int rc;

    /* The tree holds every line (a clean stop): nothing to check.  A log
     * shorter than the tree is refused by the tree's own open. */
    if (dz_audit_seq_at_open(a) <= vouched)
        return 0;
    memset(&k, 0, sizeof(k));
    if ((rc = dz_jwks_parse(g->jwks_json, strlen(g->jwks_json), &k.own)) != 0)
        fprintf(stderr, "darvazad: the published key set cannot be read (%s)\n", dz_err_str(rc));
    if (rc == 0 && !ca->key_archive && !(def = dz_audit_key_archive_default(ca->file)))
        rc = DZ_ERR_NOMEM;
    if (rc == 0 && (rc = load_archive(ca->key_archive ? ca->key_archive : def, &k.archive)) != 0)
        fprintf(stderr, "darvazad: %s: the audit key archive cannot be read (%s)\n",
                ca->key_archive ? ca->key_archive : def, dz_err_str(rc));
    if (rc == 0 && !(c = malloc(sizeof(*c))))
        rc = DZ_ERR_NOMEM;
    if (rc == 0 && (rc = dz_audit_verify_history(ca->file, vouched, &ak, c)) != 0)
        fprintf(stderr, "darvazad: %s: cannot read the audit history (%s)\n",
                c->path[0] ? c->path : ca->file, c->detail[0] ? c->detail : dz_err_str(rc));
    if (rc != 0)
        goto out;
    if (c->reason) {
        snprintf(why, sizeof(why), "%s:%" PRIu64 ": %s: %s", c->path, c->line, c->reason,
                 c->detail);
        refuse(ca->file, vouched + 1, dz_audit_seq_at_open(a), why);
        rc = DZ_ERR_STATE;
    } else if (c->head_seq > vouched && k.last_from_archive) {
        snprintf(why, sizeof(why),
                 "%s:%" PRIu64 ": untrusted_key: its last signed head (seq %" PRIu64
                 ") is signed by kid \"%s\", a key this gateway does not publish, found only in "
                 "the key archive, which whoever can write the log can write too",
                 c->head_path, c->head_line, c->head_seq, k.last_kid);
        refuse(ca->file, vouched + 1, dz_audit_seq_at_open(a), why);
        rc = DZ_ERR_STATE;
    } else {
        dz_log(DZ_LOG_INFO, "audit_history",
               "%s: lines %" PRIu64 "..%" PRIu64 " not in the tree: %" PRIu64
               " line(s) read, %" PRIu64 " signed heads verified, %" PRIu64
               " line(s) after the last head signed by nothing yet",
               ca->file, vouched + 1, dz_audit_seq_at_open(a), c->lines, c->heads_verified,
               c->unsigned_tail);
    }
out:
    free(c);
    free(def);
    dz_jwks_free(k.own);
    dz_jwks_free(k.archive);
    return rc;
}
