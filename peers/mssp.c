/*
 * mssp.c - `darvaza-peer mssp`: the Mobile Signature Service Provider
 * stand-in.  Relying parties (the gateway) start authentication and
 * signature sessions over a REST API like Mobile-ID's and long-poll their
 * state; phones (darvaza-peer phone) long-poll for the request addressed to
 * their number and answer it.  Owns the sessions, the one-at-a-time queue
 * of each phone, the timeouts, and the loopback-only test hooks
 * (docs/mssp.md).  It never verifies a signature (the relying party must:
 * it only attaches the holder's certificate), never holds a key, never logs
 * a signature or a secret, and never blocks its loop: waiting is a libev
 * timer, file reads for the hooks go to the pool.
 */
#include "mssp.h"

#include <ev.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secret.h"
#include "http/pool.h"
#include "http/tls.h"
#include "peer.h"

#include "base/compat.h"

#define MSSP_SESSIONS_MAX 4096 /* held at once, complete ones included */
#define MSSP_QUEUE_MAX 8       /* sessions waiting for one phone, the active one included */
#define MSSP_WAITERS_MAX 8     /* parked status requests per session */
#define MSSP_POLLERS_MAX 4     /* parked pending requests per phone */
#define MSSP_SECRET_MAX 256
#define MSSP_RPS_MAX 64
#define MSSP_CERT_MAX (64 * 1024)
#define MSSP_DOWN_MAX_S 3600

enum tamper { TAMPER_NONE, TAMPER_SIGNATURE, TAMPER_CERTIFICATE, TAMPER_HOLDER };

struct mssp;
struct session;
struct phone;

/* A parked long-poll: a relying party waiting for a session's state, or a
 * phone waiting for work.  Freed only in its request's on_close. */
struct waiter {
    struct mssp *app;
    struct dz_req *r; /* referenced */
    ev_timer timer;
    TAILQ_ENTRY(waiter) link;
    struct waiter_list *list; /* the list it is on; NULL once answered */
    unsigned *count;          /* that list's counter */
    struct session *s;        /* status waiters */
    struct phone *ph;         /* phone pollers */
};
TAILQ_HEAD(waiter_list, waiter);

struct rp {
    char name[DZ_MSSP_RP_MAX + 1];
    char *secret;
    size_t secret_len;
};

struct session {
    struct mssp *app;
    TAILQ_ENTRY(session) all;
    TAILQ_ENTRY(session) queue; /* on ph->queue while not complete */
    char id[DZ_MSSP_SID_LEN + 1];
    enum dz_mssp_kind kind;
    const struct rp *rp;
    struct phone *ph; /* NULL: not a Mobile-ID client */
    char phone[DZ_MSSP_PHONE_MAX + 1];
    char fin[DZ_FIN_LEN + 1];
    unsigned char hash[DZ_MID_HASH_MAX];
    size_t hash_len;
    enum dz_mssp_hash hash_type;
    char display_text[DZ_MSSP_TEXT_MAX + 1];
    char code[DZ_MID_CODE_LEN + 1];
    bool is_queued, is_active, is_delivered, is_complete;
    enum dz_mssp_result result;
    unsigned char sig[DZ_MSSP_SIG_MAX];
    size_t sig_len;
    unsigned char *cert; /* DER, on OK: what was attached */
    size_t cert_len;
    double created, completed; /* ev_now */
    ev_timer deadline;         /* user timeout; after completion, retention */
    ev_timer delivery;         /* PHONE_ABSENT when the phone never fetches it */
    struct waiter_list waiters;
    unsigned nwaiters;
};
TAILQ_HEAD(session_list, session);

struct phone {
    char number[DZ_MSSP_PHONE_MAX + 1];
    char fin[DZ_FIN_LEN + 1];
    unsigned char *cert; /* DER */
    size_t cert_len;
    char algo_suffix[16]; /* "withECDSA" */
    struct session_list queue;
    unsigned queued;
    struct waiter_list pollers;
    unsigned npollers;
    double last_poll; /* ev_now, 0: never */
    enum tamper tamper;
    unsigned char *tamper_cert; /* owned; NULL: another holder's */
    size_t tamper_cert_len;
    char tamper_fin[DZ_FIN_LEN + 1]; /* TAMPER_HOLDER: believed to hold this FIN too */
    int fail;                        /* -1, or the dz_mssp_result the next session ends with */
};

struct mssp {
    struct phone *phones;
    size_t nphones;
    struct rp rps[MSSP_RPS_MAX];
    size_t nrps;
    double user_timeout, delivery_timeout, retention; /* seconds */
    struct dz_pool *pool;
    struct ev_loop *loop;
    struct session_list sessions;
    size_t nsessions;
    double down_until;
};

static void waiter_closed(struct dz_req *r, void *arg);

/* ---- answers ---- */

static void respond_204(struct dz_req *r)
{
    static const struct dz_hdr h[] = {{"cache-control", "no-store"}};

    dz_req_respond(r, 204, h, 1, NULL, 0);
}

static char *b64(const unsigned char *p, size_t n)
{
    char *s = NULL;

    return dz_b64_encode(p, n, false, &s) == 0 ? s : NULL;
}

static json_t *session_state_json(const struct session *s)
{
    json_t *o;
    char *sig, *cert;
    char algo[32];

    if (!s->is_complete)
        return json_pack("{s:s}", "state", "RUNNING");
    o = json_pack("{s:s, s:s}", "state", "COMPLETE", "result", dz_mssp_result_name(s->result));
    if (!o || s->result != DZ_MSSP_OK)
        return o;
    sig = b64(s->sig, s->sig_len);
    cert = b64(s->cert, s->cert_len);
    snprintf(algo, sizeof(algo), "%s%s", dz_mssp_hash_name(s->hash_type),
             s->ph ? s->ph->algo_suffix : "");
    if (!sig || !cert || json_object_set_new(o, "signature", json_string(sig)) != 0 ||
        json_object_set_new(o, "algorithm", json_string(algo)) != 0 ||
        json_object_set_new(o, "cert", json_string(cert)) != 0) {
        json_decref(o);
        o = NULL;
    }
    free(sig);
    free(cert);
    return o;
}

static json_t *job_json(const struct session *s)
{
    char *h = b64(s->hash, s->hash_len);
    json_t *o = NULL;

    if (h)
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "session_id", s->id, "kind",
                      dz_mssp_kind_name(s->kind), "relying_party", s->rp->name, "display_text",
                      s->display_text, "verification_code", s->code, "hash", h, "hash_type",
                      dz_mssp_hash_name(s->hash_type));
    free(h);
    return o;
}

/* ---- waiters ---- */

static void waiter_unlink(struct waiter *w)
{
    if (!w->list)
        return;
    TAILQ_REMOVE(w->list, w, link);
    (*w->count)--;
    w->list = NULL;
    ev_timer_stop(w->app->loop, &w->timer);
}

static void waiter_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct waiter *w = t->data;

    waiter_unlink(w);
    if (w->s)
        dz_peer_respond_json(w->r, 200, session_state_json(w->s));
    else
        respond_204(w->r);
}

static void waiter_closed(struct dz_req *r, void *arg)
{
    struct waiter *w = arg;

    waiter_unlink(w);
    dz_req_unref(r);
    free(w);
}

/* Park r on list for ms milliseconds.  false: out of memory (r answered). */
static bool park(struct mssp *app, struct dz_req *r, struct waiter_list *list, unsigned *count,
                 struct session *s, struct phone *ph, long long ms)
{
    struct waiter *w = calloc(1, sizeof(*w));

    if (!w) {
        dz_peer_problem(r, 500, "internal_error", "out of memory", NULL);
        return false;
    }
    w->app = app;
    w->r = r;
    w->s = s;
    w->ph = ph;
    dz_req_ref(r);
    dz_req_on_close(r, waiter_closed, w);
    ev_timer_init(&w->timer, waiter_timeout, (double)ms / 1000.0, 0.);
    w->timer.data = w;
    ev_timer_start(app->loop, &w->timer);
    TAILQ_INSERT_TAIL(list, w, link);
    w->list = list;
    w->count = count;
    (*count)++;
    return true;
}

/* ---- sessions ---- */

static void session_free(struct session *s)
{
    struct mssp *app = s->app;

    ev_timer_stop(app->loop, &s->deadline);
    ev_timer_stop(app->loop, &s->delivery);
    if (s->is_queued) {
        TAILQ_REMOVE(&s->ph->queue, s, queue);
        s->ph->queued--;
    }
    TAILQ_REMOVE(&app->sessions, s, all);
    app->nsessions--;
    free(s->cert);
    free(s);
}

static void session_activate(struct session *s);

/* Hand the active session s to the phone's request r: from now on the
 * user has seen it. */
static void deliver(struct session *s, struct dz_req *r)
{
    s->is_delivered = true;
    ev_timer_stop(s->app->loop, &s->delivery);
    dz_logj(DZ_LOG_INFO, "mssp_delivered",
            json_pack("{s:s, s:s, s:s}", "session_id", s->id, "phone", s->phone, "kind",
                      dz_mssp_kind_name(s->kind)));
    dz_peer_respond_json(r, 200, job_json(s));
}

static void session_complete(struct session *s, enum dz_mssp_result result)
{
    struct mssp *app = s->app;
    struct phone *ph = s->ph;
    bool was_active = s->is_active;
    struct waiter *w;

    if (s->is_complete)
        return;
    s->is_complete = true;
    s->is_active = false;
    s->result = result;
    s->completed = ev_now(app->loop);
    ev_timer_stop(app->loop, &s->delivery);
    ev_timer_stop(app->loop, &s->deadline);
    ev_timer_set(&s->deadline, app->retention, 0.);
    ev_timer_start(app->loop, &s->deadline);
    if (s->is_queued) {
        TAILQ_REMOVE(&ph->queue, s, queue);
        ph->queued--;
        s->is_queued = false;
    }
    dz_logj(DZ_LOG_INFO, "mssp_complete",
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "session_id", s->id, "relying_party",
                      s->rp->name, "phone", s->phone, "fin", s->fin, "kind",
                      dz_mssp_kind_name(s->kind), "result", dz_mssp_result_name(result)));
    while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
        waiter_unlink(w);
        dz_peer_respond_json(w->r, 200, session_state_json(s));
    }
    if (was_active && ph && !TAILQ_EMPTY(&ph->queue))
        session_activate(TAILQ_FIRST(&ph->queue));
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct session *s = t->data;

    if (s->is_complete) {
        session_free(s); /* retention over */
        return;
    }
    /* Active but never fetched: the phone is unreachable. */
    session_complete(s, s->is_active && !s->is_delivered ? DZ_MSSP_PHONE_ABSENT : DZ_MSSP_TIMEOUT);
}

static void on_delivery_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct session *s = t->data;

    if (!s->is_complete && !s->is_delivered)
        session_complete(s, DZ_MSSP_PHONE_ABSENT);
}

/* s reached the head of its phone's queue. */
static void session_activate(struct session *s)
{
    struct mssp *app = s->app;
    struct phone *ph = s->ph;
    double left = app->user_timeout - (ev_now(app->loop) - s->created);
    struct waiter *w;

    s->is_active = true;
    if (ph->fail >= 0) {
        enum dz_mssp_result r = (enum dz_mssp_result)ph->fail;

        ph->fail = -1;
        session_complete(s, r);
        return;
    }
    ev_timer_set(&s->delivery, app->delivery_timeout < left ? app->delivery_timeout : left, 0.);
    if (left > 0)
        ev_timer_start(app->loop, &s->delivery);
    w = TAILQ_FIRST(&ph->pollers);
    if (w) {
        waiter_unlink(w);
        deliver(s, w->r);
    }
}

static void make_sid(char out[DZ_MSSP_SID_LEN + 1])
{
    unsigned char u[16];
    char hex[33];

    if (dz_random(u, sizeof(u)) != 0) {
        out[0] = '\0';
        return;
    }
    u[6] = (unsigned char)((u[6] & 0x0F) | 0x40); /* UUID version 4 */
    u[8] = (unsigned char)((u[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    dz_hex(u, sizeof(u), hex);
    snprintf(out, DZ_MSSP_SID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
}

static struct session *find_session(struct mssp *app, const char *id)
{
    struct session *s;

    TAILQ_FOREACH(s, &app->sessions, all)
    {
        if (strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

static struct phone *find_phone(struct mssp *app, const char *number)
{
    for (size_t i = 0; i < app->nphones; i++) {
        if (strcmp(app->phones[i].number, number) == 0)
            return &app->phones[i];
    }
    return NULL;
}

/* Room for one more session: when full, forget the oldest complete one. */
static bool make_room(struct mssp *app)
{
    struct session *s;

    if (app->nsessions < MSSP_SESSIONS_MAX)
        return true;
    TAILQ_FOREACH(s, &app->sessions, all)
    {
        if (s->is_complete) {
            session_free(s);
            return true;
        }
    }
    return false;
}

/* ---- relying parties ---- */

/* The relying party whose secret the request's bearer token is, or NULL.
 * Every secret is compared (constant time each), so the time taken does
 * not tell which one matched. */
static const struct rp *authenticate(struct mssp *app, struct dz_req *r)
{
    const char *h = dz_req_header(r, "authorization");
    const struct rp *found = NULL;
    size_t n;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    n = strlen(h);
    if (n == 0 || n > MSSP_SECRET_MAX)
        return NULL;
    for (size_t i = 0; i < app->nrps; i++) {
        if (dz_secret_equal(h, n, app->rps[i].secret, app->rps[i].secret_len) && !found)
            found = &app->rps[i];
    }
    return found;
}

/* POST /mid/authentication | /mid/signature */
static void start_session(struct mssp *app, struct dz_req *r, enum dz_mssp_kind kind)
{
    const struct rp *rp = authenticate(app, r);
    struct dz_mssp_start in;
    const char *why = NULL;
    struct session *s = NULL;
    struct phone *ph;
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);

    if (!rp) {
        dz_peer_problem(r, 401, "unauthenticated",
                        "relying party not authenticated (Authorization: Bearer <secret>)", NULL);
        return;
    }
    if (dz_mssp_parse_start(body, len, &in, &why) != 0) {
        dz_peer_problem(r, 400, "bad_request", why ? why : "bad request", NULL);
        return;
    }
    if (strcmp(in.relying_party, rp->name) != 0) {
        dz_peer_problem(r, 401, "unauthenticated", "relying_party does not match the credentials",
                        NULL);
        return;
    }
    ph = find_phone(app, in.phone);
    if (ph && strcmp(ph->fin, in.fin) == 0 && ph->queued >= MSSP_QUEUE_MAX) {
        dz_peer_problem(r, 429, "phone_queue_full", "too many requests waiting for this phone",
                        NULL);
        return;
    }
    if (!make_room(app) || !(s = calloc(1, sizeof(*s)))) {
        dz_peer_problem(r, 503, "unavailable", "too many sessions", NULL);
        return;
    }
    s->app = app;
    make_sid(s->id);
    if (!s->id[0]) {
        free(s);
        dz_peer_problem(r, 500, "internal_error", "no randomness", NULL);
        return;
    }
    s->kind = kind;
    s->rp = rp;
    memcpy(s->phone, in.phone, sizeof(s->phone));
    memcpy(s->fin, in.fin, sizeof(s->fin));
    memcpy(s->hash, in.hash, in.hash_len);
    s->hash_len = in.hash_len;
    s->hash_type = in.hash_type;
    memcpy(s->display_text, in.display_text, sizeof(s->display_text));
    dz_mid_verification_code_str(s->hash, s->hash_len, s->code);
    s->created = ev_now(app->loop);
    TAILQ_INIT(&s->waiters);
    ev_timer_init(&s->deadline, on_deadline, app->user_timeout, 0.);
    s->deadline.data = s;
    ev_timer_init(&s->delivery, on_delivery_timeout, 0., 0.);
    s->delivery.data = s;
    TAILQ_INSERT_TAIL(&app->sessions, s, all);
    app->nsessions++;
    ev_timer_start(app->loop, &s->deadline);
    dz_logj(DZ_LOG_INFO, "mssp_start",
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "session_id", s->id, "relying_party",
                      rp->name, "phone", s->phone, "fin", s->fin, "kind", dz_mssp_kind_name(kind),
                      "hash_type", dz_mssp_hash_name(s->hash_type), "verification_code", s->code));
    /* Answer first: completing at once (not a client) must not reorder. */
    dz_peer_respond_json(r, 200, json_pack("{s:s}", "session_id", s->id));
    if (ph && ph->tamper == TAMPER_HOLDER && strcmp(ph->tamper_fin, s->fin) == 0) {
        /* A mixed-up directory, once: the request for that FIN goes to a
         * phone whose SIM is another person's, and the phone signs. */
        ph->tamper = TAMPER_NONE;
        dz_logj(DZ_LOG_WARN, "mssp_tampered",
                json_pack("{s:s, s:s, s:s}", "session_id", s->id, "phone", ph->number, "mode",
                          "holder"));
    } else if (!ph || strcmp(ph->fin, s->fin) != 0) {
        session_complete(s, DZ_MSSP_NOT_MID_CLIENT);
        return;
    }
    s->ph = ph;
    TAILQ_INSERT_TAIL(&ph->queue, s, queue);
    ph->queued++;
    s->is_queued = true;
    if (TAILQ_FIRST(&ph->queue) == s)
        session_activate(s);
}

/* POST /mid/certificate {"relying_party","phone","fin"}: the holder's
 * certificate before signing (Mobile-ID's certificate query), so that the
 * relying party can build the signed attributes.  NOT_FOUND when the phone
 * is unknown or its SIM is not that FIN's. */
static void cert_query(struct mssp *app, struct dz_req *r)
{
    const struct rp *rp = authenticate(app, r);
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    json_t *j = NULL;
    const char *rpn, *phone, *fin;
    struct phone *ph;
    char *cert;

    if (!rp) {
        dz_peer_problem(r, 401, "unauthenticated",
                        "relying party not authenticated (Authorization: Bearer <secret>)", NULL);
        return;
    }
    j = body && len ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    rpn = json_string_value(json_object_get(j, "relying_party"));
    phone = json_string_value(json_object_get(j, "phone"));
    fin = json_string_value(json_object_get(j, "fin"));
    if (!json_is_object(j) || !rpn || !phone || !fin || strlen(phone) > DZ_MSSP_PHONE_MAX ||
        strlen(fin) > DZ_FIN_LEN) {
        dz_peer_problem(r, 400, "bad_request", "give relying_party, phone and fin as strings",
                        NULL);
        goto out;
    }
    if (strcmp(rpn, rp->name) != 0) {
        dz_peer_problem(r, 401, "unauthenticated", "relying_party does not match the credentials",
                        NULL);
        goto out;
    }
    ph = find_phone(app, phone);
    dz_logj(DZ_LOG_INFO, "mssp_certificate",
            json_pack("{s:s, s:s, s:s, s:b}", "relying_party", rp->name, "phone", phone, "fin", fin,
                      "found", ph && strcmp(ph->fin, fin) == 0));
    if (!ph || strcmp(ph->fin, fin) != 0 || !ph->cert) {
        dz_peer_respond_json(r, 200, json_pack("{s:s}", "result", "NOT_FOUND"));
        goto out;
    }
    cert = b64(ph->cert, ph->cert_len);
    if (!cert) {
        dz_peer_problem(r, 500, "internal_error", "out of memory", NULL);
        goto out;
    }
    dz_peer_respond_json(r, 200, json_pack("{s:s, s:s}", "result", "OK", "cert", cert));
    free(cert);
out:
    json_decref(j);
}

/* timeoutMs from the query: absent 0; 0..30000. */
static bool wait_ms(struct dz_req *r, long long *out)
{
    char buf[16];
    int rc = dz_peer_query_param(r, "timeoutMs", buf, sizeof(buf));

    *out = 0;
    if (rc == DZ_ERR_NOTFOUND)
        return true;
    return rc == 0 && dz_parse_int(buf, 0, DZ_MSSP_WAIT_MAX_MS, out) == 0;
}

/* GET /mid/session/{id} */
static void session_status(struct mssp *app, struct dz_req *r, const char *id)
{
    const struct rp *rp = authenticate(app, r);
    struct session *s;
    long long ms = 0;

    if (!rp) {
        dz_peer_problem(r, 401, "unauthenticated",
                        "relying party not authenticated (Authorization: Bearer <secret>)", NULL);
        return;
    }
    if (!wait_ms(r, &ms)) {
        dz_peer_problem(r, 400, "bad_request", "timeoutMs: 0..30000", NULL);
        return;
    }
    s = dz_mssp_sid_valid(id) ? find_session(app, id) : NULL;
    if (!s || s->rp != rp) {
        dz_peer_problem(r, 404, "not_found", "no such session", NULL);
        return;
    }
    if (s->is_complete || ms == 0) {
        dz_peer_respond_json(r, 200, session_state_json(s));
        return;
    }
    if (s->nwaiters >= MSSP_WAITERS_MAX) {
        dz_peer_problem(r, 429, "too_many_waiters", "too many polls waiting on this session", NULL);
        return;
    }
    park(app, r, &s->waiters, &s->nwaiters, s, NULL, ms);
}

/* ---- phones ---- */

/* "/phone/{number}/{what}": number with "+" or "%2B". */
static struct phone *phone_from_path(struct mssp *app, const char *path, const char **what)
{
    const char *p = path + strlen("/phone/");
    const char *slash = strchr(p, '/');
    char number[DZ_MSSP_PHONE_MAX + 1];
    size_t n;

    *what = "";
    if (!slash)
        return NULL;
    *what = slash + 1;
    n = (size_t)(slash - p);
    if (n > 3 && (strncmp(p, "%2B", 3) == 0 || strncmp(p, "%2b", 3) == 0)) {
        p += 3;
        n -= 3;
        if (n + 1 > DZ_MSSP_PHONE_MAX)
            return NULL;
        number[0] = '+';
        memcpy(number + 1, p, n);
        number[n + 1] = '\0';
    } else {
        if (n > DZ_MSSP_PHONE_MAX)
            return NULL;
        memcpy(number, p, n);
        number[n] = '\0';
    }
    return dz_mssp_phone_valid(number) ? find_phone(app, number) : NULL;
}

/* GET /phone/{number}/pending */
static void phone_pending(struct mssp *app, struct dz_req *r, struct phone *ph)
{
    struct session *s = TAILQ_FIRST(&ph->queue);
    long long ms = 0;

    if (!wait_ms(r, &ms)) {
        dz_peer_problem(r, 400, "bad_request", "timeoutMs: 0..30000", NULL);
        return;
    }
    ph->last_poll = ev_now(app->loop);
    if (s && s->is_active && !s->is_delivered) {
        deliver(s, r);
        return;
    }
    if (ms == 0) {
        respond_204(r);
        return;
    }
    /* A phone that polls again (restarted, or its client gave up) must not
     * be locked out by its own stale polls: the oldest makes room. */
    if (ph->npollers >= MSSP_POLLERS_MAX) {
        struct waiter *old = TAILQ_FIRST(&ph->pollers);

        waiter_unlink(old);
        respond_204(old->r);
    }
    park(app, r, &ph->pollers, &ph->npollers, NULL, ph, ms);
}

/* POST /phone/{number}/answer */
static void phone_answer(struct mssp *app, struct dz_req *r, struct phone *ph)
{
    struct dz_mssp_answer a;
    const char *why = NULL;
    struct session *s;
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    const unsigned char *cert;
    size_t cert_len;

    if (dz_mssp_parse_answer(body, len, &a, &why) != 0) {
        dz_peer_problem(r, 400, "bad_request", why ? why : "bad answer", NULL);
        return;
    }
    s = find_session(app, a.session_id);
    if (!s || s->ph != ph) {
        dz_peer_problem(r, 404, "not_found", "no such session for this phone", NULL);
        return;
    }
    if (s->is_complete) {
        dz_peer_problem(r, 409, "session_complete", "the session has already ended",
                        dz_mssp_result_name(s->result));
        return;
    }
    if (!s->is_delivered) {
        dz_peer_problem(r, 409, "not_delivered", "this request was never shown on the phone", NULL);
        return;
    }
    if (a.result == DZ_MSSP_OK) {
        cert = ph->cert;
        cert_len = ph->cert_len;
        memcpy(s->sig, a.signature, a.signature_len);
        s->sig_len = a.signature_len;
        if (ph->tamper == TAMPER_SIGNATURE) {
            /* One bit in the middle: same length and shape, wrong value. */
            s->sig[s->sig_len / 4] ^= 0x01;
        } else if (ph->tamper == TAMPER_CERTIFICATE) {
            if (ph->tamper_cert) {
                cert = ph->tamper_cert;
                cert_len = ph->tamper_cert_len;
            } else {
                for (size_t i = 0; i < app->nphones; i++) {
                    if (strcmp(app->phones[i].fin, ph->fin) != 0) {
                        cert = app->phones[i].cert;
                        cert_len = app->phones[i].cert_len;
                        break;
                    }
                }
            }
        }
        bool tampered = ph->tamper == TAMPER_SIGNATURE || ph->tamper == TAMPER_CERTIFICATE;

        if (tampered)
            dz_logj(DZ_LOG_WARN, "mssp_tampered",
                    json_pack("{s:s, s:s, s:s}", "session_id", s->id, "phone", ph->number, "mode",
                              ph->tamper == TAMPER_SIGNATURE ? "signature" : "certificate"));
        s->cert = malloc(cert_len);
        if (!s->cert) {
            dz_peer_problem(r, 500, "internal_error", "out of memory", NULL);
            return;
        }
        memcpy(s->cert, cert, cert_len);
        s->cert_len = cert_len;
        /* One shot; cert may point into tamper_cert: only now let it go. */
        if (tampered) {
            ph->tamper = TAMPER_NONE;
            free(ph->tamper_cert);
            ph->tamper_cert = NULL;
            ph->tamper_cert_len = 0;
        }
    }
    respond_204(r);
    session_complete(s, a.result);
}

/* ---- test hooks (loopback only) ---- */

static json_t *hook_body(struct dz_req *r, const char *const *allowed)
{
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    json_t *o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        goto bad;
    json_object_foreach(o, key, v)
    {
        bool known = false;

        for (const char *const *a = allowed; *a; a++)
            known = known || strcmp(key, *a) == 0;
        if (!known)
            goto bad;
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}

/* Reading a certificate for /_mssp/tamper goes to the pool. */
struct cert_job {
    struct mssp *app;
    struct dz_req *r; /* referenced */
    struct phone *ph;
    char path[DZ_MSSP_PATH_MAX + 1];
    unsigned char *der;
    size_t der_len;
    int rc;
};

/* PEM (the first certificate) or DER.  Blocking: start-up or pool only. */
static int load_cert_der(const char *path, unsigned char **der, size_t *der_len, EVP_PKEY **key)
{
    BIO *bio = BIO_new_file(path, "rb");
    X509 *x = NULL;
    unsigned char *p = NULL;
    int n;
    int rc = DZ_ERR_CRYPTO;

    *der = NULL;
    *der_len = 0;
    if (key)
        *key = NULL;
    if (!bio)
        goto out;
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x) {
        BIO_free(bio);
        bio = BIO_new_file(path, "rb");
        x = bio ? d2i_X509_bio(bio, NULL) : NULL;
    }
    if (!x)
        goto out;
    n = i2d_X509(x, &p);
    if (n <= 0 || n > MSSP_CERT_MAX)
        goto out;
    if (key && !(*key = X509_get_pubkey(x)))
        goto out;
    *der = p;
    *der_len = (size_t)n;
    p = NULL;
    rc = 0;
out:
    ERR_clear_error();
    OPENSSL_free(p);
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static void cert_job_work(void *arg)
{
    struct cert_job *j = arg;
    unsigned char *der = NULL;
    size_t n = 0;

    j->rc = load_cert_der(j->path, &der, &n, NULL);
    if (j->rc == 0) {
        /* OPENSSL_malloc'd; hand over a malloc'd copy. */
        j->der = malloc(n);
        if (j->der) {
            memcpy(j->der, der, n);
            j->der_len = n;
        } else {
            j->rc = DZ_ERR_NOMEM;
        }
    }
    OPENSSL_free(der);
}

static void cert_job_done(void *arg)
{
    struct cert_job *j = arg;

    if (j->rc != 0) {
        dz_peer_problem(j->r, 400, "bad_request", "cert_file: cannot read a certificate", NULL);
    } else {
        free(j->ph->tamper_cert);
        j->ph->tamper_cert = j->der;
        j->ph->tamper_cert_len = j->der_len;
        j->der = NULL;
        j->ph->tamper = TAMPER_CERTIFICATE;
        dz_peer_respond_json(
            j->r, 200, json_pack("{s:s, s:s}", "phone", j->ph->number, "mode", "certificate"));
    }
    free(j->der);
    dz_req_unref(j->r);
    free(j);
}

/* POST /_mssp/tamper {"phone","mode","cert_file"?,"fin"?} */
static void hook_tamper(struct mssp *app, struct dz_req *r)
{
    static const char *const allowed[] = {"phone", "mode", "cert_file", "fin", NULL};
    json_t *o = hook_body(r, allowed);
    const char *phone = json_string_value(json_object_get(o, "phone"));
    const char *mode = json_string_value(json_object_get(o, "mode"));
    json_t *cf = json_object_get(o, "cert_file");
    const char *fin = json_string_value(json_object_get(o, "fin"));
    struct phone *ph = phone ? find_phone(app, phone) : NULL;
    struct cert_job *j = NULL;

    if (!o || !mode || (cf && (!json_is_string(cf) || strcmp(mode, "certificate") != 0)) ||
        (json_object_get(o, "fin") && strcmp(mode, "holder") != 0) ||
        (strcmp(mode, "holder") == 0 && (!fin || strlen(fin) != DZ_FIN_LEN))) {
        dz_peer_problem(r, 400, "bad_request",
                        "{\"phone\",\"mode\":\"signature\"|\"certificate\"|\"holder\"|"
                        "\"none\",\"cert_file\"? (certificate only),\"fin\" (holder only)}",
                        NULL);
        goto out;
    }
    if (!ph) {
        dz_peer_problem(r, 404, "not_found", "no such phone", NULL);
        goto out;
    }
    if (strcmp(mode, "none") == 0 || strcmp(mode, "signature") == 0) {
        ph->tamper = mode[0] == 'n' ? TAMPER_NONE : TAMPER_SIGNATURE;
        free(ph->tamper_cert);
        ph->tamper_cert = NULL;
        ph->tamper_cert_len = 0;
    } else if (strcmp(mode, "certificate") == 0) {
        if (cf) {
            j = calloc(1, sizeof(*j));
            if (!j || json_string_length(cf) > DZ_MSSP_PATH_MAX) {
                free(j);
                dz_peer_problem(r, 400, "bad_request", "cert_file: too long", NULL);
                goto out;
            }
            j->app = app;
            j->r = r;
            j->ph = ph;
            snprintf(j->path, sizeof(j->path), "%s", json_string_value(cf));
            dz_req_ref(r);
            if (dz_pool_submit(app->pool, dz_req_worker(r), cert_job_work, cert_job_done, j) != 0) {
                dz_req_unref(r);
                free(j);
                dz_peer_problem(r, 503, "unavailable", "busy", NULL);
            }
            goto out;
        }
        free(ph->tamper_cert);
        ph->tamper_cert = NULL;
        ph->tamper_cert_len = 0;
        ph->tamper = TAMPER_CERTIFICATE;
    } else if (strcmp(mode, "holder") == 0) {
        free(ph->tamper_cert);
        ph->tamper_cert = NULL;
        ph->tamper_cert_len = 0;
        snprintf(ph->tamper_fin, sizeof(ph->tamper_fin), "%s", fin);
        ph->tamper = TAMPER_HOLDER;
    } else {
        dz_peer_problem(r, 400, "bad_request", "mode: signature, certificate, holder or none",
                        NULL);
        goto out;
    }
    dz_peer_respond_json(r, 200, json_pack("{s:s, s:s}", "phone", ph->number, "mode", mode));
out:
    json_decref(o);
}

/* POST /_mssp/down {"seconds"} */
static void hook_down(struct mssp *app, struct dz_req *r)
{
    static const char *const allowed[] = {"seconds", NULL};
    json_t *o = hook_body(r, allowed);
    json_t *v = json_object_get(o, "seconds");
    double secs;

    if (!json_is_number(v) || (secs = json_number_value(v)) < 0 || secs > MSSP_DOWN_MAX_S) {
        dz_peer_problem(r, 400, "bad_request", "{\"seconds\": 0..3600}", NULL);
        json_decref(o);
        return;
    }
    app->down_until = ev_now(app->loop) + secs;
    dz_log(DZ_LOG_WARN, "mssp_down", "answering 503 for %.3f s", secs);
    dz_peer_respond_json(r, 200, json_pack("{s:f}", "down_for", secs));
    json_decref(o);
}

/* POST /_mssp/fail {"phone","result"} */
static void hook_fail(struct mssp *app, struct dz_req *r)
{
    static const char *const allowed[] = {"phone", "result", NULL};
    json_t *o = hook_body(r, allowed);
    const char *phone = json_string_value(json_object_get(o, "phone"));
    const char *res = json_string_value(json_object_get(o, "result"));
    struct phone *ph = phone ? find_phone(app, phone) : NULL;
    enum dz_mssp_result result;

    if (!o || !res ||
        (strcmp(res, "none") != 0 &&
         (dz_mssp_result_parse(res, &result) != 0 || result == DZ_MSSP_OK))) {
        dz_peer_problem(r, 400, "bad_request",
                        "{\"phone\",\"result\": USER_CANCELLED|TIMEOUT|NOT_MID_CLIENT|"
                        "PHONE_ABSENT|DELIVERY_ERROR|none}",
                        NULL);
    } else if (!ph) {
        dz_peer_problem(r, 404, "not_found", "no such phone", NULL);
    } else {
        ph->fail = strcmp(res, "none") == 0 ? -1 : (int)result;
        dz_peer_respond_json(r, 200, json_pack("{s:s, s:s}", "phone", ph->number, "result", res));
    }
    json_decref(o);
}

/* GET /_mssp/sessions[?phone=...]: what the MSSP holds, oldest first. */
static void hook_sessions(struct mssp *app, struct dz_req *r)
{
    char filter[DZ_MSSP_PHONE_MAX + 4];
    bool has_filter = dz_peer_query_param(r, "phone", filter, sizeof(filter)) == 0;
    json_t *a = json_array();
    struct session *s;

    if (has_filter && strncasecmp(filter, "%2B", 3) == 0) {
        filter[0] = '+';
        memmove(filter + 1, filter + 3, strlen(filter + 3) + 1);
    }
    TAILQ_FOREACH(s, &app->sessions, all)
    {
        const char *state;
        json_t *e;

        if (has_filter && strcmp(filter, s->phone) != 0)
            continue;
        state = s->is_complete    ? "COMPLETE"
                : s->is_delivered ? "DELIVERED"
                : s->is_active    ? "ACTIVE"
                                  : "QUEUED";
        e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f}", "session_id", s->id,
                      "kind", dz_mssp_kind_name(s->kind), "relying_party", s->rp->name, "phone",
                      s->phone, "fin", s->fin, "state", state, "verification_code", s->code,
                      "display_text", s->display_text, "hash_type", dz_mssp_hash_name(s->hash_type),
                      "age_s", ev_now(app->loop) - s->created);
        if (e && s->is_complete)
            json_object_set_new(e, "result", json_string(dz_mssp_result_name(s->result)));
        if (!e || json_array_append_new(a, e) != 0) {
            json_decref(a);
            a = NULL;
            break;
        }
    }
    dz_peer_respond_json(r, 200, a);
}

static void hooks(struct mssp *app, struct dz_req *r, const char *path)
{
    bool post = strcmp(dz_req_method(r), "POST") == 0;

    /* Never for anyone but this machine, whatever the listen address. */
    if (!dz_peer_req_is_loopback(r)) {
        dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
        return;
    }
    if (strcmp(path, "/_mssp/tamper") == 0 && post)
        hook_tamper(app, r);
    else if (strcmp(path, "/_mssp/down") == 0 && post)
        hook_down(app, r);
    else if (strcmp(path, "/_mssp/fail") == 0 && post)
        hook_fail(app, r);
    else if (strcmp(path, "/_mssp/sessions") == 0 && strcmp(dz_req_method(r), "GET") == 0)
        hook_sessions(app, r);
    else
        dz_peer_problem(r, 404, "not_found", "no such hook", NULL);
}

/* ---- routing ---- */

static void on_request(struct dz_req *r, void *wdata)
{
    struct mssp *app = wdata;
    char path[256];
    const char *method = dz_req_method(r);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

    dz_peer_req_path(r, path, sizeof(path));
    if (dz_req_body_overflow(r)) {
        dz_peer_problem(r, 413, "payload_too_large", "body too large", NULL);
        return;
    }
    if (strncmp(path, "/_mssp/", 7) == 0) {
        hooks(app, r, path);
        return;
    }
    if ((strncmp(path, "/mid/", 5) == 0 || strncmp(path, "/phone/", 7) == 0) &&
        ev_now(app->loop) < app->down_until) {
        dz_peer_problem(r, 503, "unavailable", "the MSSP is down (test hook)", NULL);
        return;
    }
    if (strcmp(path, "/mid/authentication") == 0 || strcmp(path, "/mid/signature") == 0) {
        if (!post)
            dz_peer_problem(r, 405, "method_not_allowed", "use POST", NULL);
        else
            start_session(app, r, path[5] == 'a' ? DZ_MSSP_AUTHENTICATION : DZ_MSSP_SIGNATURE);
        return;
    }
    if (strcmp(path, "/mid/certificate") == 0) {
        if (!post)
            dz_peer_problem(r, 405, "method_not_allowed", "use POST", NULL);
        else
            cert_query(app, r);
        return;
    }
    if (strncmp(path, "/mid/session/", 13) == 0) {
        if (!get)
            dz_peer_problem(r, 405, "method_not_allowed", "use GET", NULL);
        else
            session_status(app, r, path + 13);
        return;
    }
    if (strncmp(path, "/phone/", 7) == 0) {
        const char *what = "";
        struct phone *ph = phone_from_path(app, path, &what);

        /* The phone side stands in for the mobile network and carries no
         * credentials: only this machine's phone peers may use it. */
        if (!dz_peer_req_is_loopback(r)) {
            dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
        } else if (!ph) {
            dz_peer_problem(r, 404, "not_found", "no such phone", NULL);
        } else if (strcmp(what, "pending") == 0) {
            if (get)
                phone_pending(app, r, ph);
            else
                dz_peer_problem(r, 405, "method_not_allowed", "use GET", NULL);
        } else if (strcmp(what, "answer") == 0) {
            if (post)
                phone_answer(app, r, ph);
            else
                dz_peer_problem(r, 405, "method_not_allowed", "use POST", NULL);
        } else {
            dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
        }
        return;
    }
    dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
}

static void *worker_init(struct dz_worker *w, void *app_)
{
    struct mssp *app = app_;

    app->loop = dz_worker_loop(w);
    return app;
}

static void worker_fini(struct dz_worker *w, void *wdata)
{
    struct mssp *app = wdata;
    struct session *s;

    while ((s = TAILQ_FIRST(&app->sessions)) != NULL)
        session_free(s);
}

/* ---- start-up ---- */

static int read_file(const char *path, size_t max, struct dz_buf *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;
    int rc = 0;

    dz_buf_init(out, max);
    if (!f)
        return DZ_ERR_IO;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = dz_buf_append(out, chunk, n);
    if (rc == 0 && ferror(f))
        rc = DZ_ERR_IO;
    fclose(f);
    dz_secret_wipe(chunk, sizeof(chunk));
    return rc;
}

static int load_phones(struct mssp *app, const char *file)
{
    struct dz_buf text;
    struct dz_mssp_holder *h = NULL;
    size_t n = 0;
    long bad = -1;
    const char *why = NULL;
    char *dircopy = NULL;
    const char *dir;
    int rc;

    rc = read_file(file, (size_t)4 << 20, &text);
    if (rc) {
        fprintf(stderr, "mssp: cannot read --phones %s: %s\n", file, dz_err_str(rc));
        dz_buf_cleanup(&text);
        return rc;
    }
    rc = dz_mssp_parse_holders(text.data, text.len, &h, &n, &bad, &why);
    dz_buf_cleanup(&text);
    if (rc) {
        fprintf(stderr, "mssp: %s: entry %ld: %s\n", file, bad, why ? why : dz_err_str(rc));
        return rc;
    }
    app->phones = calloc(n, sizeof(*app->phones));
    dircopy = strdup(file);
    if (!app->phones || !dircopy) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    dir = dirname(dircopy);
    for (size_t i = 0; i < n; i++) {
        struct phone *ph = &app->phones[i];
        char path[DZ_MSSP_PATH_MAX * 2 + 2];
        unsigned char *der = NULL;
        EVP_PKEY *key = NULL;

        memcpy(ph->number, h[i].phone, sizeof(ph->number));
        memcpy(ph->fin, h[i].fin, sizeof(ph->fin));
        TAILQ_INIT(&ph->queue);
        TAILQ_INIT(&ph->pollers);
        ph->fail = -1;
        app->nphones = i + 1;
        if (h[i].cert_file[0] == '/')
            snprintf(path, sizeof(path), "%s", h[i].cert_file);
        else
            snprintf(path, sizeof(path), "%s/%s", dir, h[i].cert_file);
        rc = load_cert_der(path, &der, &ph->cert_len, &key);
        if (rc == 0 && EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
            fprintf(stderr, "mssp: %s: only EC (ECDSA) SIM keys are supported\n", path);
            rc = DZ_ERR_INVAL;
        } else if (rc) {
            fprintf(stderr, "mssp: %s: entry %zu: cannot read a certificate from %s\n", file, i,
                    path);
        }
        EVP_PKEY_free(key);
        if (rc == 0 && !(ph->cert = malloc(ph->cert_len)))
            rc = DZ_ERR_NOMEM;
        if (rc == 0)
            memcpy(ph->cert, der, ph->cert_len);
        OPENSSL_free(der);
        if (rc)
            goto out;
        snprintf(ph->algo_suffix, sizeof(ph->algo_suffix), "withECDSA");
    }
    dz_log(DZ_LOG_INFO, "mssp_phones", "%zu Mobile-ID holders from %s", n, file);
out:
    free(dircopy);
    free(h);
    return rc;
}

/* NAME:SECRET or NAME:@FILE (the secret is the file's first line). */
static int add_rp(struct mssp *app, char *arg)
{
    char *colon = strchr(arg, ':');
    struct rp *rp;
    size_t nl;
    int rc = 0;

    if (!colon || app->nrps >= MSSP_RPS_MAX)
        return DZ_ERR_INVAL;
    nl = (size_t)(colon - arg);
    rp = &app->rps[app->nrps];
    if (nl == 0 || nl > DZ_MSSP_RP_MAX)
        return DZ_ERR_INVAL;
    memcpy(rp->name, arg, nl);
    rp->name[nl] = '\0';
    if (colon[1] == '@') {
        struct dz_buf b;

        rc = read_file(colon + 2, MSSP_SECRET_MAX + 2, &b);
        if (rc == 0) {
            b.len = strcspn(dz_buf_cstr(&b), "\r\n");
            rp->secret = strndup(dz_buf_cstr(&b), b.len);
            rp->secret_len = b.len;
        }
        dz_buf_wipe(&b);
    } else {
        rp->secret_len = strlen(colon + 1);
        rp->secret = strdup(colon + 1);
        /* Out of the process's argv (ps shows it): a demo shortcut only. */
        dz_secret_wipe(colon + 1, rp->secret_len);
    }
    if (rc == 0 && !rp->secret)
        rc = DZ_ERR_NOMEM;
    if (rc == 0 && (rp->secret_len == 0 || rp->secret_len > MSSP_SECRET_MAX))
        rc = DZ_ERR_INVAL;
    for (size_t i = 0; rc == 0 && i < app->nrps; i++) {
        if (strcmp(app->rps[i].name, rp->name) == 0)
            rc = DZ_ERR_EXISTS;
    }
    if (rc) {
        dz_secret_free_str(rp->secret);
        rp->secret = NULL;
        return rc;
    }
    app->nrps++;
    return 0;
}

/* Seconds: "120" or a duration such as "1500ms", "2s", "2m". */
static int parse_secs(const char *s, double min, double max, double *out)
{
    long long v = 0;
    uint64_t ms = 0;

    if (dz_parse_int(s, 0, 1000000, &v) == 0)
        ms = (uint64_t)v * 1000;
    else if (dz_parse_duration(s, 0, 1000000000ull, &ms) != 0)
        return DZ_ERR_PARSE;
    *out = (double)ms / 1000.0;
    return *out >= min && *out <= max ? 0 : DZ_ERR_PARSE;
}

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer mssp --listen HOST:PORT [--h2c | --tls-cert F --tls-key F]\n"
          "         --phones FILE --rp NAME:SECRET|NAME:@FILE [--rp ...]\n"
          "         [--user-timeout SECS] [--delivery-timeout SECS] [--retention SECS]\n"
          "  Mobile Signature Service Provider (docs/mssp.md).  --phones: JSON\n"
          "  [{\"phone\",\"fin\",\"cert_file\"}] (paths relative to the file).  Defaults:\n"
          "  --user-timeout 120, --delivery-timeout 10, --retention 300.\n",
          to);
    return 2;
}

int dz_peer_mssp_main(int argc, char **argv)
{
    static const struct option opts[] = {DZ_PEER_LISTEN_OPTIONS,
                                         {"h2c", no_argument, NULL, 'p'},
                                         {"phones", required_argument, NULL, 'f'},
                                         {"rp", required_argument, NULL, 'r'},
                                         {"user-timeout", required_argument, NULL, 'u'},
                                         {"delivery-timeout", required_argument, NULL, 'd'},
                                         {"retention", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct dz_peer_listen_opts lo = {0};
    const char *phones = NULL;
    struct mssp app = {.user_timeout = 120, .delivery_timeout = 10, .retention = 300};
    struct dz_httpd_handlers h = {0};
    SSL_CTX *tls = NULL;
    bool h2c = false;
    char host[64];
    uint16_t port = 0;
    int c, status = 1;

    TAILQ_INIT(&app.sessions);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            h2c = true;
            break;
        case 'f':
            phones = optarg;
            break;
        case 'r':
            if (add_rp(&app, optarg) != 0) {
                fprintf(stderr, "mssp: bad --rp (NAME:SECRET or NAME:@FILE, unique names, "
                                "secrets of 1..256 bytes)\n");
                status = 2;
                goto out;
            }
            break;
        case 'u':
            if (parse_secs(optarg, 0.1, 3600, &app.user_timeout) != 0) {
                fprintf(stderr, "mssp: bad --user-timeout (seconds, 0.1..3600)\n");
                status = 2;
                goto out;
            }
            break;
        case 'd':
            if (parse_secs(optarg, 0.1, 3600, &app.delivery_timeout) != 0) {
                fprintf(stderr, "mssp: bad --delivery-timeout (seconds, 0.1..3600)\n");
                status = 2;
                goto out;
            }
            break;
        case 'R':
            if (parse_secs(optarg, 1, 86400, &app.retention) != 0) {
                fprintf(stderr, "mssp: bad --retention (seconds, 1..86400)\n");
                status = 2;
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            status = 0;
            goto out;
        default:
            if (!dz_peer_listen_option(&lo, c, optarg)) {
                status = usage(stderr);
                goto out;
            }
            break;
        }
    }
    if (optind != argc || !lo.listen || !phones || app.nrps == 0 || (!lo.cert != !lo.key) ||
        (h2c && lo.cert)) {
        status = usage(stderr);
        goto out;
    }
    if (dz_peer_parse_listen(lo.listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "mssp: bad --listen '%s' (HOST:PORT)\n", lo.listen);
        status = 2;
        goto out;
    }
    if (load_phones(&app, phones) != 0)
        goto out;
    if (lo.cert && dz_tls_server_ctx_new(lo.cert, lo.key, NULL, false, &tls) != 0)
        goto out;
    if (dz_pool_new(1, 16, &app.pool) != 0)
        goto out;
    h.worker_init = worker_init;
    h.worker_fini = worker_fini;
    h.on_request = on_request;
    if (dz_peer_serve("mssp", host, port, tls, DZ_MSSP_BODY_MAX, &h, &app) == 0)
        status = 0;
out:
    dz_pool_free(app.pool);
    SSL_CTX_free(tls);
    for (size_t i = 0; i < app.nphones; i++) {
        free(app.phones[i].cert);
        free(app.phones[i].tamper_cert);
    }
    free(app.phones);
    for (size_t i = 0; i < app.nrps; i++)
        dz_secret_free_str(app.rps[i].secret);
    return status;
}
