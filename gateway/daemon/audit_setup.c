/*
 * audit_setup.c - opens the audit log for the daemon and keeps its head
 * signer and key archive in step with reloads (see audit_setup.h).  It holds
 * a reference on the generation whose key signs heads, so a reload never
 * frees a signer under the audit writer; it never sees a private key (the
 * generation's signer does the signing).
 */
#include "daemon/audit_setup.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_keyarchive.h"
#include "base/err.h"
#include "base/log.h"
#include "core/gen.h"
#include "keys/signer.h"

#include "base/compat.h"

static int head_sign(void *arg, const void *data, size_t len, unsigned char sig[64])
{
    struct dz_gen *g = arg;

    return dz_signer_sign_es256(g->signers[g->active], data, len, sig);
}

static void gen_release(void *arg)
{
    dz_gen_unref(arg);
}

static int archive_keys(const struct dz_gen *g)
{
    const struct dz_config_audit *ca = &g->config->audit;
    char *def = ca->key_archive ? NULL : dz_audit_key_archive_default(ca->file);
    const char *path = ca->key_archive ? ca->key_archive : def;
    size_t added = 0;
    int rc = DZ_ERR_NOMEM;

    if (path)
        rc = dz_audit_key_archive_update(path, g->jwks_json, &added);
    if (rc == 0 && added > 0)
        dz_log(DZ_LOG_INFO, "audit_key_archive", "%s: %zu key(s) added", path, added);
    free(def);
    return rc;
}

/* A token for the segment headers and every line: audit.instance (checked
 * at load), else gateway.id when it is one, else the host name.  Several
 * instances of one gateway share gateway.id (the assertions' issuer), so a
 * cluster sets audit.instance per instance. */
const char *dz_audit_setup_instance(const struct dz_gen *g, char *host, size_t host_len)
{
    const char *id = g->config->gateway.id;

    if (g->config->audit.instance)
        return g->config->audit.instance;
    size_t n = strlen(id);

    if (n > 0 && n <= DZ_AUDIT_INSTANCE_MAX &&
        strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                   "nopqrstuvwxyz0123456789._:-") == n)
        return id;
    if (gethostname(host, host_len) != 0 || host[0] == '\0')
        snprintf(host, host_len, "darvazad");
    host[host_len - 1] = '\0';
    return host;
}

int dz_audit_setup_open(struct dz_gen *g, struct dz_audit **out)
{
    const struct dz_config_audit *ca = &g->config->audit;
    struct dz_audit *a = NULL;
    char host[HOST_NAME_MAX + 1] = "";
    struct dz_audit_rotation rot;
    int rc;

    *out = NULL;
    rc = archive_keys(g);
    if (rc != 0) {
        fprintf(stderr, "darvazad: cannot update the audit key archive (%s); see the log\n",
                dz_err_str(rc));
        return rc;
    }
    rc = dz_audit_open(ca->file, &a);
    if (rc != 0) {
        fprintf(stderr, "darvazad: %s: cannot open the audit log (%s)\n", ca->file, dz_err_str(rc));
        return rc;
    }
    memset(&rot, 0, sizeof(rot));
    rot.size = ca->rotate.size;
    rot.every_ms = ca->rotate.every_ms;
    rot.instance = dz_audit_setup_instance(g, host, sizeof(host));
    dz_gen_ref(g);
    if ((rc = dz_audit_set_limits(a, DZ_AUDIT_QUEUE_MAX, ca->batch_max)) != 0 ||
        (rc = dz_audit_set_rotation(a, &rot)) != 0 ||
        (rc = dz_audit_set_head_signer(a, head_sign, g, g->kids[g->active],
                                       (uint32_t)ca->head_interval_ms)) != 0 ||
        (rc = dz_audit_swap_head_signer(a, head_sign, g, gen_release, g->kids[g->active])) != 0) {
        /* The reference is dropped here: the writer never took it over. */
        dz_audit_close(a);
        dz_gen_unref(g);
        fprintf(stderr, "darvazad: cannot set up the audit log (%s)\n", dz_err_str(rc));
        return rc;
    }
    *out = a;
    return 0;
}

void dz_audit_setup_reload(struct dz_audit *a, struct dz_gen *g)
{
    int rc = archive_keys(g);

    if (rc != 0) {
        dz_log(DZ_LOG_ERROR, "audit_key_archive",
               "audit heads keep the previous key: the key archive could not be updated (%s)",
               dz_err_str(rc));
        return;
    }
    dz_gen_ref(g);
    if (dz_audit_swap_head_signer(a, head_sign, g, gen_release, g->kids[g->active]) != 0)
        dz_gen_unref(g);
}
