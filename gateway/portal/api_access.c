/*
 * api_access.c - the person's access list and the published tree head (see
 * api_access.h).  The index is only a way to find lines fast: every entry
 * handed out is checked against the signed Merkle tree first, so a row
 * changed in the database shows as "mismatch", never as a proof.  It never
 * lists one person's entries to another (the FIN is the session's, not a
 * parameter).
 */
#include "portal/api_access.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_proof.h"
#include "audit/audit_tree.h"
#include "audit/merkle.h"
#include "base/err.h"
#include "base/log.h"
#include "core/accesswatch.h"
#include "core/gwasync.h"
#include "state/store.h"

#include "base/compat.h"

/* Ask the writer for a signed head, at most once a second whoever asks:
 * each head is a line and a signature, and a client asking in a loop must
 * not turn into a stream of them. */
static void want_head(struct dz_rctx *c)
{
    static _Atomic int64_t last_ms;
    int64_t now = dz_unix_ms();
    int64_t prev = atomic_load(&last_ms);

    if (now - prev >= 1000 && atomic_compare_exchange_strong(&last_ms, &prev, now))
        dz_audit_request_head(c->gw->audit);
}

void dz_ep_audit_head(struct dz_rctx *c)
{
    struct dz_audit_sth h;

    if (!c->gw->audit_tree || dz_audit_tree_head(c->gw->audit_tree, &h) != 0) {
        /* None signed yet: one is asked for. */
        want_head(c);
        dz_rctx_problem(c, "service_unavailable", "no signed tree head yet");
        return;
    }
    dz_rctx_json(c, 200, dz_audit_sth_json(&h), NULL, 0);
}

/* "before" and "limit" from the query: digits only, in range.  Other
 * parameters are ignored.  0 or DZ_ERR_INVAL. */
static int parse_query(const char *path, int64_t *before, size_t *limit)
{
    const char *q = strchr(path, '?');

    *before = 0;
    *limit = DZ_ACCESS_LIMIT_DEFAULT;
    while (q && *q) {
        const char *name = q + 1;
        const char *eq = strchr(name, '=');
        const char *end = name + strcspn(name, "&");
        char digits[20];
        size_t n;
        long long v = 0;
        bool is_before = eq && eq < end && (size_t)(eq - name) == 6 && !strncmp(name, "before", 6);
        bool is_limit = eq && eq < end && (size_t)(eq - name) == 5 && !strncmp(name, "limit", 5);

        if (is_before || is_limit) {
            n = (size_t)(end - eq - 1);
            if (n == 0 || n >= sizeof(digits) - 1 || strspn(eq + 1, "0123456789") < n)
                return DZ_ERR_INVAL;
            memcpy(digits, eq + 1, n);
            digits[n] = '\0';
            for (size_t i = 0; i < n; i++)
                v = v * 10 + (digits[i] - '0');
            if (is_before)
                *before = v;
            else if (v < 1 || v > DZ_ACCESSIDX_PAGE_MAX)
                return DZ_ERR_INVAL;
            else
                *limit = (size_t)v;
        }
        q = *end ? end : NULL;
    }
    return 0;
}

struct access_op {
    struct dz_rctx *c; /* held while the count is asked for */
    struct dz_gw *gw;  /* read on the pool: the tree, the index */
    char fin[8];
    int64_t before;
    size_t limit;
    int rc;
    bool want_head; /* an entry no head covers yet */
    json_t *entries;
    int64_t next;
};

static json_t *split_fields(const char *rel)
{
    json_t *a = json_array();
    const char *p = rel;

    while (a && p && *p) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

/* What the person reads: when, who (name, FIN and role of a person, or the
 * system), which fields, what for, and the decision. */
static json_t *entry_of(const struct dz_accessidx_row *r, json_t *line)
{
    const char *fin = json_string_value(json_object_get(line, "fin"));
    const char *decision = json_string_value(json_object_get(line, "decision"));
    json_t *e = json_pack("{s:I, s:s, s:s, s:I, s:s}", "id", (json_int_t)r->id, "time", r->time,
                          "instance", r->instance, "seq", (json_int_t)r->seq, "decision",
                          decision ? decision : "allow");
    json_t *actor;

    if (!e)
        return NULL;
    if (fin) {
        actor = json_pack("{s:s, s:s}", "kind", "person", "fin", fin);
        /* The name the line holds (what the proof covers); null when the
         * line has none: written before lines carried names, or a login
         * means that gives none (password). */
        if (actor)
            json_object_set(actor, "name",
                            json_is_string(json_object_get(line, "name"))
                                ? json_object_get(line, "name")
                                : json_null());
        if (actor && json_is_string(json_object_get(line, "role")))
            json_object_set(actor, "role", json_object_get(line, "role"));
        if (actor && json_is_string(json_object_get(line, "means")))
            json_object_set(actor, "means", json_object_get(line, "means"));
    } else {
        /* No session: an information system's own request, or (refused)
         * someone who did not sign in. */
        actor = json_pack("{s:s}", "kind",
                          decision && strcmp(decision, "deny") == 0 ? "unknown" : "system");
    }
    json_object_set_new(e, "actor", actor ? actor : json_null());
    json_object_set(e, "service", json_object_get(line, "service"));
    json_object_set_new(e, "fields", split_fields(json_string_value(json_object_get(line, "rel"))));
    if (json_is_string(json_object_get(line, "pur")))
        json_object_set(e, "purpose", json_object_get(line, "pur"));
    if (json_is_string(json_object_get(line, "reason")))
        json_object_set(e, "reason", json_object_get(line, "reason"));
    return e;
}

/* The entry's proof against the latest head, checked before it is given:
 * "ok", "pending" (no head covers it yet), "other_instance" (another
 * gateway's history holds it) or "mismatch" (the index row is not the
 * line the tree holds: the index was changed). */
static const char *prove(struct dz_gw *gw, const struct dz_accessidx_row *r, json_t **proof)
{
    static _Thread_local unsigned char path[DZ_MERKLE_PATH_MAX][32];
    struct dz_audit_tree *t = gw->audit_tree;
    struct dz_audit_sth h;
    unsigned char leaf[32];
    size_t len = 0;

    *proof = NULL;
    if (!t || strcmp(r->instance, dz_accesswatch_instance(gw->accesswatch)) != 0)
        return "other_instance";
    if (dz_audit_tree_head(t, &h) != 0 || r->seq > h.tree_size)
        return "pending";
    if (dz_audit_tree_inclusion(t, r->seq, h.tree_size, path, &len) != 0)
        return "unavailable";
    dz_merkle_leaf_hash(r->line, r->line_len, leaf);
    if (!dz_merkle_verify_inclusion(leaf, r->seq - 1, h.tree_size, (const void *)path, len,
                                    h.root)) {
        dz_log(DZ_LOG_ERROR, "access_index",
               "the index row for %s seq %llu is not the audit line the tree holds", r->instance,
               (unsigned long long)r->seq);
        return "mismatch";
    }
    *proof = dz_audit_inclusion_json(r->seq, r->line, r->line_len, (const void *)path, len, &h);
    return *proof ? "ok" : "unavailable";
}

/* The row's name column says what its line says (a column too short for
 * the line's name holds NULL): a row changed in the database shows as
 * "mismatch", as a changed line does. */
static bool name_matches(const struct dz_accessidx_row *r, json_t *line)
{
    const char *name = json_string_value(json_object_get(line, "name"));

    if (!r->has_actor_name)
        return !name || strlen(name) >= sizeof(r->actor_name);
    return name && strcmp(name, r->actor_name) == 0;
}

/* The line is about fin: the row's tgt column is a copy, like its name,
 * and a row moved to another person in the database must not hand that
 * person someone else's access (the FIN looked up, the purpose, the
 * actor).  Such a row is left out and logged, not shown as a mismatch. */
static bool about(const struct dz_accessidx_row *r, json_t *line, const char *fin)
{
    const char *tgt = json_string_value(json_object_get(line, "tgt"));

    if (tgt && strcmp(tgt, fin) == 0)
        return true;
    dz_log(DZ_LOG_ERROR, "access_index",
           "the index row for %s seq %llu is not about the person it is listed for", r->instance,
           (unsigned long long)r->seq);
    return false;
}

static void access_work(void *arg)
{
    struct access_op *op = arg;
    struct dz_accessidx_row rows[DZ_ACCESSIDX_PAGE_MAX];
    size_t n = 0;

    op->rc = dz_accesswatch_list(op->gw->accesswatch, op->fin, op->before, op->limit, rows, &n);
    if (op->rc != 0)
        return;
    op->entries = json_array();
    for (size_t i = 0; op->entries && i < n; i++) {
        json_t *line = json_loadb(rows[i].line, rows[i].line_len, 0, NULL);
        json_t *e = line && about(&rows[i], line, op->fin) ? entry_of(&rows[i], line) : NULL;
        json_t *proof = NULL;
        const char *status;
        if (!e) {
            json_decref(line);
            continue;
        }
        status = name_matches(&rows[i], line) ? prove(op->gw, &rows[i], &proof) : "mismatch";
        op->want_head |= strcmp(status, "pending") == 0;
        json_decref(line);
        json_object_set_new(e, "proof_status", json_string(status));
        json_object_set_new(e, "proof", proof ? proof : json_null());
        json_array_append_new(op->entries, e);
    }
    op->next = n == op->limit && n > 0 ? rows[n - 1].id : 0;
    dz_accessidx_rows_free(rows, n);
}

static void access_done(struct dz_rctx *c, void *arg)
{
    struct access_op *op = arg;
    json_t *body;

    if (!c->closed) {
        if (op->rc != 0 || !op->entries) {
            dz_rctx_state_unavailable(c, op->rc ? op->rc : DZ_ERR_NOMEM);
        } else {
            if (op->want_head)
                want_head(c);
            body = json_pack("{s:o}", "entries", op->entries);
            op->entries = NULL;
            if (body && op->next)
                json_object_set_new(body, "next_before", json_integer(op->next));
            dz_rctx_json(c, 200, body, NULL, 0);
        }
    }
    json_decref(op->entries);
    free(op);
}

/* Lists a person may ask for in a minute, counted per FIN in fixed windows
 * (the "lim_" namespace: a rate counter's budget).  A page of 100 entries
 * is 100 inclusion proofs, about 8 ms of a blocking-pool thread (measured
 * 2026-12-07, 121-127 lists a second on the 2-core machine): unbounded,
 * one signed-in person could keep the pool that logins and registrations
 * share busy.  The portal asks once per view of the account page, again
 * every 3 s while a proof is pending, and once per "more". */
#define ACCESS_RATE_NS "lim_access"
#define ACCESS_RATE_PER_MINUTE 120
#define ACCESS_RATE_WINDOW_MS 60000

/* The count is known (or the store could not keep it: 503, fail closed). */
static void access_counted(void *arg, int rc, int64_t count, const void *data, size_t len)
{
    struct access_op *op = arg;
    struct dz_rctx *c = op->c;

    (void)data;
    (void)len;
    if (c->closed) {
        free(op);
    } else if (rc != 0) {
        free(op);
        dz_rctx_state_unavailable(c, rc);
    } else if (count > ACCESS_RATE_PER_MINUTE) {
        free(op);
        dz_rctx_problem_h(c, "rate_limited", "too many access-list requests this minute",
                          &(struct dz_hdr){"retry-after", "60"}, 1);
    } else if (dz_gw_blocking(c, access_work, access_done, op) != 0) {
        free(op);
    }
    dz_rctx_release(c);
}

static void access_authed(struct dz_rctx *c, int rc, void *arg)
{
    struct access_op *op;
    char key[40];
    int n;

    if (c->closed)
        return;
    switch (rc) {
    case 0:
        break;
    case DZ_ERR_UNAVAILABLE: /* never "not signed in" because the store could not say */
        dz_rctx_state_unavailable(c, DZ_ERR_UNAVAILABLE);
        return;
    default:
        dz_rctx_problem(c, "unauthenticated", NULL);
        return;
    }
    if (!c->gw->accesswatch) {
        dz_rctx_problem(c, "service_unavailable", "the access index is not open");
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        dz_rctx_problem(c, "service_unavailable", NULL);
        return;
    }
    if (parse_query(dz_req_path(c->req), &op->before, &op->limit) != 0) {
        free(op);
        dz_rctx_problem(c, "invalid_request", "before: a number; limit: 1..100");
        return;
    }
    memcpy(op->fin, c->session.fin, sizeof(op->fin));
    op->gw = c->gw;
    op->c = c;
    n = snprintf(key, sizeof(key), "%s|%lld", c->session.fin,
                 (long long)(dz_unix_ms() / ACCESS_RATE_WINDOW_MS));
    if (n < 0 || (size_t)n >= sizeof(key)) {
        free(op);
        dz_rctx_state_unavailable(c, DZ_ERR_INVAL);
        return;
    }
    dz_rctx_hold(c);
    dz_store_incr_async(c->gw->store, dz_worker_loop(c->gw_worker->worker), ACCESS_RATE_NS, key,
                        (size_t)n, ACCESS_RATE_WINDOW_MS, access_counted, op);
}

void dz_ep_my_access(struct dz_rctx *c)
{
    dz_rctx_authenticate_async(c, access_authed, NULL);
}
