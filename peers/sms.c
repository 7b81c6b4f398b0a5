/*
 * sms.c - `darvaza-peer sms`: a stand-in for an SMS gateway (an operator's
 * SMS-C behind HTTPS).  The gateway posts messages; this peer "delivers"
 * them by keeping them, so that tests and the demo can read back what a
 * person's phone would have shown (GET /_sms/messages, loopback only).
 *
 *   POST /api/sms {"to":"+994501234567","text":"..."} -> 202 {"id":N}
 *   GET  /_sms/messages[?to=994501234567]           -> [{"id","time","to","text"}...]
 *
 * Owns the ring of the last SMS_KEEP messages, touched by the one loop
 * thread only (peer.h).  The text is what a phone shows: it may hold a
 * one-time code, which is why the read-back is for loopback clients only
 * and a real deployment points the gateway at a real SMS gateway instead.
 */
#include "peer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "registry_db.h"

#include "base/compat.h"

#define SMS_KEEP 1000    /* messages kept for the read-back */
#define SMS_TEXT_MAX 480 /* bytes: three concatenated 160-character parts */
#define SMS_BODY_MAX 4096
#define SMS_READ_PATH "/_sms/messages"

struct sms_msg {
    unsigned long long id;
    char time[32];
    char to[16];
    char *text;
};

static struct sms_msg ring[SMS_KEEP];
static size_t ring_next;
static unsigned long long next_id = 1;

static void now_iso(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

static bool text_ok(const char *s, size_t len)
{
    if (len == 0 || len > SMS_TEXT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 && ch != '\n')
            return false;
    }
    return true;
}

static void accept_sms(struct dz_req *r)
{
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    json_t *in = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *to = json_string_value(json_object_get(in, "to"));
    json_t *jt = json_object_get(in, "text");
    const char *text = json_string_value(jt);
    struct sms_msg *m;

    if (!json_is_object(in) || !to || !text) {
        dz_peer_log_request(r, NULL, NULL, 400);
        dz_peer_problem(r, 400, "bad_request", "body must be {\"to\",\"text\"}", NULL);
        goto out;
    }
    if (!dz_person_phone_valid(to)) {
        dz_peer_log_request(r, NULL, NULL, 400);
        dz_peer_problem(r, 400, "invalid_phone", "to must be +994 and a mobile number", NULL);
        goto out;
    }
    if (!text_ok(text, json_string_length(jt))) {
        dz_peer_log_request(r, NULL, NULL, 400);
        dz_peer_problem(r, 400, "invalid_text", "text: 1..480 bytes, no control characters", NULL);
        goto out;
    }
    m = &ring[ring_next];
    free(m->text);
    m->text = strdup(text);
    if (!m->text) {
        memset(m, 0, sizeof(*m));
        dz_peer_problem(r, 500, "internal_error", "out of memory", NULL);
        goto out;
    }
    m->id = next_id++;
    now_iso(m->time, sizeof(m->time));
    snprintf(m->to, sizeof(m->to), "%s", to);
    ring_next = (ring_next + 1) % SMS_KEEP;
    /* The log says a message went to a number, never what it said. */
    dz_log(DZ_LOG_INFO, "sms_sent", "message %llu to %s (%zu bytes)", m->id, m->to,
           strlen(m->text));
    dz_peer_log_request(r, NULL, NULL, 202);
    dz_peer_respond_json(r, 202, json_pack("{s:I}", "id", (json_int_t)m->id));
out:
    json_decref(in);
}

/* "?to=" may be sent as "+994...", "%2B994..." or "994...". */
static const char *digits_of(const char *to)
{
    if (strncmp(to, "%2B", 3) == 0 || strncmp(to, "%2b", 3) == 0)
        return to + 3;
    return to[0] == '+' || to[0] == ' ' ? to + 1 : to;
}

static void read_back(struct dz_req *r)
{
    char want[32] = "";
    json_t *a;

    if (!dz_peer_read_back_allowed(r))
        return;
    if (dz_peer_query_param(r, "to", want, sizeof(want)) == DZ_ERR_TOOBIG) {
        dz_peer_problem(r, 400, "bad_request", "to: a phone number", NULL);
        return;
    }
    a = json_array();
    for (size_t i = 0; a && i < SMS_KEEP; i++) {
        const struct sms_msg *m = &ring[(ring_next + i) % SMS_KEEP];

        if (!m->text || (want[0] && strcmp(digits_of(want), m->to + 1) != 0))
            continue;
        if (json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)m->id,
                                               "time", m->time, "to", m->to, "text", m->text)) !=
            0) {
            json_decref(a);
            a = NULL;
        }
    }
    dz_peer_respond_json(r, 200, a);
}

static void on_request(struct dz_req *r, void *wdata)
{
    char pbuf[64];
    const char *path = dz_peer_req_path(r, pbuf, sizeof(pbuf));

    (void)wdata;
    if (strcmp(path, DZ_PEER_LOG_PATH) == 0) {
        dz_peer_log_serve(r);
        return;
    }
    if (strcmp(path, SMS_READ_PATH) == 0) {
        read_back(r);
        return;
    }
    if (dz_req_body_overflow(r)) {
        dz_peer_log_request(r, NULL, NULL, 413);
        dz_peer_problem(r, 413, "payload_too_large", "body too large", NULL);
        return;
    }
    if (strcmp(path, "/api/sms") == 0) {
        if (strcmp(dz_req_method(r), "POST") != 0) {
            dz_peer_problem(r, 405, "method_not_allowed", "use POST", NULL);
            return;
        }
        accept_sms(r);
        return;
    }
    dz_peer_log_request(r, NULL, NULL, 404);
    dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
}

static void sms_worker_fini(struct dz_worker *w, void *wdata)
{
    dz_peer_worker_fini(w, wdata);
    for (size_t i = 0; i < SMS_KEEP; i++) {
        free(ring[i].text);
        ring[i].text = NULL;
    }
}

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer sms --listen HOST:PORT --tls-cert F --tls-key F [--client-ca F]\n"
          "  POST /api/sms {\"to\",\"text\"} keeps a message (202 {\"id\"});\n"
          "  GET /_sms/messages[?to=NUMBER] reads them back (loopback clients only)\n"
          "  --client-ca F  the CA of the gateway's client certificate (then required)\n",
          to);
    return 2;
}

static bool client_ca_option(void *ctx, int c, const char *arg)
{
    if (c != 'C')
        return false;
    *(const char **)ctx = arg;
    return true;
}

int dz_peer_sms_main(int argc, char **argv)
{
    static const struct option opts[] = {DZ_PEER_LISTEN_OPTIONS,
                                         {"client-ca", required_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct dz_peer_listen_opts lo = {0};
    const char *client_ca = NULL;
    struct dz_httpd_handlers h = {0};
    SSL_CTX *tls = NULL;
    char host[64];
    uint16_t port = 0;
    int status = dz_peer_options(argc, argv, opts, &lo, client_ca_option, &client_ca, usage);

    if (status >= 0)
        return status;
    status = 1;
    if (!lo.listen || !lo.cert || !lo.key)
        return usage(stderr);
    if (dz_peer_parse_listen(lo.listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "sms: bad --listen '%s' (HOST:PORT)\n", lo.listen);
        return 2;
    }
    if (!client_ca)
        dz_log(DZ_LOG_WARN, "sms_tls", "no --client-ca: any client may send messages");
    if (dz_peer_tls_gateway_client(lo.cert, lo.key, client_ca, "sms_tls", &tls) != 0)
        goto out;
    h.worker_init = dz_peer_worker_init;
    h.worker_fini = sms_worker_fini;
    h.on_request = on_request;
    if (dz_peer_serve("sms", host, port, tls, SMS_BODY_MAX, &h, NULL) == 0)
        status = 0;
out:
    SSL_CTX_free(tls);
    return status;
}
