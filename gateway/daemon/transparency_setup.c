/*
 * transparency_setup.c - opens the audit tree and the access index and
 * makes the audit writer feed them (see transparency_setup.h).  The
 * observer runs on the writer thread: the tree is appended there (its own
 * files), the index only gets a copy of the bytes.
 */
#include "daemon/transparency_setup.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_tree.h"
#include "base/err.h"
#include "base/secret.h"
#include "core/accesswatch.h"
#include "core/config.h"
#include "core/gen.h"
#include "daemon/audit_setup.h"
#include "daemon/history_check.h"
#include "keys/signer.h"
#include "state/accessidx.h"

#include "base/compat.h"

static void observe(void *arg, const struct dz_audit_batch *b)
{
    struct dz_gw *gw = arg;

    dz_audit_tree_observe(gw->audit_tree, b);
    dz_accesswatch_offer(gw->accesswatch, b);
}

static int open_index(const struct dz_config_accounts *a, const struct dz_accessidx_ops **ops,
                      void **impl)
{
    char *text = NULL;
    size_t n;
    int rc;

    if (a->backend != DZ_ACCOUNTS_POSTGRESQL) {
        *ops = &dz_accessidx_sqlite_ops;
        return dz_accessidx_sqlite_open(a->database, impl);
    }
    *ops = &dz_accessidx_pg_ops;
    rc = dz_signer_read_secret(a->pg_conninfo_file, &text);
    if (rc < 0)
        return rc;
    n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        text[--n] = '\0';
    rc = dz_accessidx_pg_open(text, (unsigned)a->pg_connect_timeout_ms,
                              (unsigned)a->pg_statement_timeout_ms, impl);
    dz_secret_free_str(text);
    return rc;
}

struct wait_line {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int result;
};

static void line_written(void *arg, int result)
{
    struct wait_line *w = arg;

    pthread_mutex_lock(&w->mu);
    w->result = result;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* An accepted restore is recorded in the history itself before anything
 * is served: its line is durable (and the head asked for next covers it),
 * or the gateway does not start. */
static int record_restore(struct dz_gw *gw)
{
    json_t *rec = dz_audit_tree_restore_pending(gw->audit_tree);
    struct wait_line w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    int rc;

    if (!rec)
        return 0;
    rc = dz_audit_append(gw->audit, json_deep_copy(rec), NULL, line_written, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.result;
    }
    if (rc == 0)
        rc = dz_audit_tree_restore_done(gw->audit_tree);
    if (rc != 0)
        fprintf(stderr, "darvazad: %s: cannot record the accepted restore in the audit log (%s)\n",
                gw->gen->config->audit.file, dz_err_str(rc));
    return rc;
}

int dz_transparency_setup_open(struct dz_gw *gw)
{
    const struct dz_config *cf = gw->gen->config;
    char host[HOST_NAME_MAX + 1] = "";
    const char *instance = dz_audit_setup_instance(gw->gen, host, sizeof(host));
    const struct dz_accessidx_ops *ops = NULL;
    void *impl = NULL;
    int rc;

    struct dz_audit_mismatch m;

    /* Lines the tree does not hold are vouched for by the log's heads only. */
    if ((rc = dz_history_check(gw->gen, gw->audit)) != 0)
        return rc;
    rc = dz_audit_tree_open(cf->audit.file, NULL, instance, &gw->audit_tree, &m);
    if (rc == DZ_ERR_STATE) {
        /* Rebuilding would sign new heads over a history that was cut or
         * changed: the operator decides (docs/operations.md, restore). */
        fprintf(stderr,
                "darvazad: %s: the audit log disagrees with its Merkle tree at seq %" PRIu64
                ": %s. Not started, nothing signed. If the log was restored from a backup, run "
                "`darvaza audit accept-restore %s --reason TEXT` and start again.\n",
                cf->audit.file, m.seq, m.what, cf->audit.file);
        return rc;
    }
    if (rc != 0) {
        fprintf(stderr, "darvazad: %s.tree: cannot open the audit tree (%s); see the log\n",
                cf->audit.file, dz_err_str(rc));
        return rc;
    }
    rc = open_index(&cf->accounts, &ops, &impl);
    if (rc == 0 && dz_audit_tree_restore_pending(gw->audit_tree)) {
        /* The index mirrors the log: rows of lines the restore cut would
         * stand in for the lines written at their seqs from now on (and
         * keep those out of the index), and its watermark would skip them. */
        json_t *end = json_object_get(dz_audit_tree_restore_pending(gw->audit_tree), "log_end");
        rc = json_is_integer(end) && json_integer_value(end) >= 0
                 ? ops->rewind(impl, instance, (uint64_t)json_integer_value(end))
                 : DZ_ERR_STATE;
    }
    if (rc == 0)
        rc = dz_accesswatch_start(ops, impl, cf->audit.file, instance, &gw->accesswatch);
    if (rc != 0) {
        fprintf(stderr, "darvazad: cannot open the access index in the accounts database (%s)\n",
                dz_err_str(rc));
        return rc;
    }
    dz_audit_set_observer(gw->audit, observe, gw);
    if ((rc = record_restore(gw)) != 0)
        return rc;
    /* A head at once (when the tree has lines no head covers), so the
     * published head and the proofs are there from the start. */
    dz_audit_request_head(gw->audit);
    return 0;
}

void dz_transparency_setup_close(struct dz_gw *gw)
{
    dz_accesswatch_stop(gw->accesswatch);
    gw->accesswatch = NULL;
    dz_audit_tree_close(gw->audit_tree);
    gw->audit_tree = NULL;
}
