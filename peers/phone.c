/*
 * phone.c - `darvaza-peer phone`: a phone with a SIM-held mobile-signature
 * key.  In its default form it long-polls the MSSP for the request
 * addressed to its number, "shows" the verification code and text (a JSON
 * log line, and GET /shown on its control endpoint), and approves (signs
 * the hash with the SIM key, which only the PIN unlocks), refuses, ignores,
 * or fails the PIN, as scripted.  `phone scan` answers a QR login for the
 * gateway.  Owns the SIM key's use and the phone's behaviour.  It never
 * keeps the key decrypted between requests, never logs or echoes the PIN,
 * never signs anything but the digest it was handed (or, for QR, the
 * payload bound to the origin), and never blocks the control loop: the
 * HTTP long-polls and the key work run on the poll thread.
 */
#include "mssp.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
#include "http/httpc.h"
#include "keys/ecdsa_sig.h"
#include "peer.h"

#include "base/compat.h"

#define PHONE_POLL_MS 3000 /* long-poll per request; also the stop latency */
#define PHONE_DELAY_DEFAULT 1500
#define PHONE_DELAY_MAX 600000
#define PHONE_PIN_MAX 16
#define PHONE_PIN_TRIES 3 /* a SIM blocks its PIN after three wrong entries */
#define PHONE_URL_MAX 1024
#define PHONE_RESP_MAX (64 * 1024)
#define PHONE_CERT_MAX (64 * 1024)

extern char **environ;

enum mode { MODE_AUTO, MODE_REFUSE, MODE_IGNORE, MODE_WRONG_PIN };
static const char *const mode_names[] = {"auto", "refuse", "ignore", "wrong-pin"};

static int parse_mode(const char *s, enum mode *out)
{
    for (size_t i = 0; s && i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum mode)i;
            return 0;
        }
    }
    return DZ_ERR_INVAL;
}

/* ---- the SIM: key behind the PIN ---- */

struct pin_cb {
    const char *pin;
    bool asked;
};

static int pin_cb(char *buf, int size, int rwflag, void *u)
{
    struct pin_cb *p = u;
    size_t n = strlen(p->pin);

    p->asked = true;
    if (n > (size_t)size)
        return -1;
    memcpy(buf, p->pin, n);
    return (int)n;
}

/* Decrypt the SIM key with pin.  DZ_ERR_DENIED: the PIN does not open it;
 * DZ_ERR_INVAL: the key is not PIN-protected (a SIM key always is) or not
 * an EC key; DZ_ERR_IO: unreadable. */
static int sim_open(const char *key_file, const char *pin, EVP_PKEY **out)
{
    struct pin_cb cb = {.pin = pin};
    BIO *b = BIO_new_file(key_file, "rb");
    EVP_PKEY *k = NULL;
    int rc = DZ_ERR_IO;

    *out = NULL;
    if (!b)
        goto out;
    k = PEM_read_bio_PrivateKey(b, NULL, pin_cb, &cb);
    if (!k) {
        rc = cb.asked ? DZ_ERR_DENIED : DZ_ERR_IO;
        goto out;
    }
    rc = DZ_ERR_INVAL;
    if (!cb.asked || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
        goto out;
    *out = k;
    k = NULL;
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(k);
    BIO_free(b);
    return rc;
}

/* DER ECDSA-Sig-Value into r || s, each the size of the curve's field. */
static int ecdsa_raw(const EVP_PKEY *k, const unsigned char *der, size_t der_len,
                     unsigned char *raw, size_t raw_max, size_t *raw_len)
{
    size_t n = dz_ecdsa_sig_field_len(k);

    *raw_len = 0;
    if (n == 0 || 2 * n > raw_max || dz_ecdsa_sig_der_to_raw(der, der_len, n, raw) != 0)
        return DZ_ERR_CRYPTO;
    *raw_len = 2 * n;
    return 0;
}

/* ECDSA over a digest given as is (Mobile-ID: the SIM signs the hash it is
 * handed), as raw r || s. */
static int sign_digest(EVP_PKEY *k, const unsigned char *dg, size_t dg_len, unsigned char *raw,
                       size_t raw_max, size_t *raw_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
    unsigned char der[160];
    size_t der_len = sizeof(der);
    int rc = DZ_ERR_CRYPTO;

    *raw_len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_sign(ctx, der, &der_len, dg, dg_len) != 1)
        goto out;
    rc = ecdsa_raw(k, der, der_len, raw, raw_max, raw_len);
out:
    if (rc)
        dz_log_openssl("phone_sign");
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* ES256 (ECDSA P-256 with SHA-256) or ES384 over msg, as raw r || s. */
static int sign_jose(EVP_PKEY *k, const unsigned char *msg, size_t len, const char **alg,
                     unsigned char *raw, size_t raw_max, size_t *raw_len)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char der[160];
    size_t der_len = sizeof(der);
    int bits = EVP_PKEY_get_bits(k);
    const EVP_MD *md = bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : NULL;
    int rc = DZ_ERR_CRYPTO;

    *raw_len = 0;
    *alg = bits == 256 ? "ES256" : "ES384";
    if (!m || !md || EVP_DigestSignInit(m, NULL, md, NULL, k) != 1 ||
        EVP_DigestSign(m, der, &der_len, msg, len) != 1)
        goto out;
    rc = ecdsa_raw(k, der, der_len, raw, raw_max, raw_len);
out:
    if (rc)
        dz_log_openssl("phone_sign");
    EVP_MD_CTX_free(m);
    return rc;
}

/* A PIN that is wrong at every digit (tries 1..3 differ from each other). */
static void wrong_pin(const char *pin, int attempt, char *out, size_t len)
{
    size_t n = strlen(pin);

    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++) {
        char c = pin[i];

        out[i] = (c >= '0' && c <= '9') ? (char)('0' + (c - '0' + attempt) % 10)
                                        : (char)(c == 'x' ? 'y' : 'x');
    }
    out[n] = '\0';
}

/* The PIN from --pin or --pin-file (first line), malloc'd. */
static char *read_pin(const char *pin_arg, const char *pin_file)
{
    char buf[PHONE_PIN_MAX + 2];
    char *pin = NULL;
    FILE *f;

    if (pin_arg) {
        pin = strdup(pin_arg);
        /* Out of /proc/PID/cmdline as soon as possible. */
        dz_secret_wipe((void *)pin_arg, strlen(pin_arg));
    } else if (pin_file && (f = fopen(pin_file, "r")) != NULL) {
        if (fgets(buf, sizeof(buf), f)) {
            buf[strcspn(buf, "\r\n")] = '\0';
            pin = strdup(buf);
        }
        fclose(f);
        dz_secret_wipe(buf, sizeof(buf));
    }
    if (pin && (strlen(pin) < 4 || strlen(pin) > PHONE_PIN_MAX)) {
        dz_secret_free_str(pin);
        pin = NULL;
    }
    return pin;
}

/* ---- HTTP ---- */

static enum dz_httpc_version version_for(const char *url)
{
    return strncmp(url, "https://", 8) == 0 ? DZ_HTTPC_H2 : DZ_HTTPC_H2C;
}

/* One blocking request; the answer's body in body (bounded). */
static int http(const char *method, const char *url, const char *cacert, const char *json,
                uint32_t timeout_ms, int *status, struct dz_buf *body)
{
    static const struct dz_hdr jh[] = {{"content-type", "application/json"},
                                       {"accept", "application/json"}};
    struct dz_httpc_tls tls = {.ca_file = cacert};
    struct dz_httpc_request req = {
        .method = method,
        .url = url,
        .headers = jh,
        .nheaders = json ? 2 : 0,
        .body = json,
        .body_len = json ? strlen(json) : 0,
        .version = version_for(url),
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = 5000,
        .tls = &tls,
        .max_response_bytes = PHONE_RESP_MAX,
    };

    dz_buf_reset(body);
    return dz_http_fetch_blocking(&req, status, body);
}

/* ---- the phone: shared state of the poll thread and the control loop ---- */

struct phone {
    /* fixed at start */
    char mssp[PHONE_URL_MAX];
    char number[DZ_MSSP_PHONE_MAX + 1];
    const char *key_file;
    const char *cacert;
    char *pin; /* secret */
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    enum mode mode;
    long delay_ms;
    unsigned shown;
    struct dz_mssp_job last; /* the last request shown */
    char last_code[DZ_MID_CODE_LEN + 1];
    char last_time[32];
    unsigned approved, refused, ignored, pin_failures;
};

static bool stopping(struct phone *p)
{
    bool s;

    pthread_mutex_lock(&p->mu);
    s = p->stop;
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* Sleep ms, or less when stopping.  false when stopping. */
static bool nap(struct phone *p, long ms)
{
    struct timespec until;
    bool stop;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) != ETIMEDOUT)
        ;
    stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return !stop;
}

static void iso_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void answer(struct phone *p, const struct dz_mssp_job *job, bool ok,
                   const unsigned char *sig, size_t sig_len)
{
    char url[PHONE_URL_MAX + 64];
    char *sig64 = NULL;
    json_t *o;
    char *text = NULL;
    struct dz_buf body;
    int status = 0;
    int rc = DZ_ERR_NOMEM;

    dz_buf_init(&body, PHONE_RESP_MAX);
    snprintf(url, sizeof(url), "%s/phone/%s/answer", p->mssp, p->number);
    o = json_pack("{s:s, s:s}", "session_id", job->session_id, "result",
                  ok ? "OK" : "USER_CANCELLED");
    if (o && ok && dz_b64_encode(sig, sig_len, false, &sig64) == 0)
        json_object_set_new(o, "signature", json_string(sig64));
    if (o && (!ok || sig64))
        text = json_dumps(o, JSON_COMPACT);
    if (text)
        rc = http("POST", url, p->cacert, text, 10000, &status, &body);
    dz_logj(rc == 0 && status == 204 ? DZ_LOG_INFO : DZ_LOG_WARN, "phone_answered",
            json_pack("{s:s, s:s, s:s, s:i, s:s}", "phone", p->number, "session_id",
                      job->session_id, "result", ok ? "OK" : "USER_CANCELLED", "status", status,
                      "error", rc ? dz_err_str(rc) : ""));
    json_decref(o);
    free(text);
    free(sig64);
    dz_buf_cleanup(&body);
}

/* One request from the MSSP: show it, then behave as the mode says. */
static void handle(struct phone *p, const struct dz_mssp_job *job)
{
    char code[DZ_MID_CODE_LEN + 1] = "";
    enum mode mode;
    long delay;
    EVP_PKEY *k = NULL;
    unsigned char sig[DZ_MSSP_SIG_MAX];
    size_t sig_len = 0;
    int rc;

    /* The phone derives the code from the hash it will sign: the user
     * compares that with the browser, whatever the MSSP claims. */
    dz_mid_verification_code_str(job->hash, job->hash_len, code);
    pthread_mutex_lock(&p->mu);
    mode = p->mode;
    delay = p->delay_ms;
    p->shown++;
    p->last = *job;
    memcpy(p->last_code, code, sizeof(code));
    iso_now(p->last_time, sizeof(p->last_time));
    pthread_mutex_unlock(&p->mu);
    dz_logj(DZ_LOG_INFO, "phone_shown",
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "phone", p->number, "session_id",
                      job->session_id, "kind", dz_mssp_kind_name(job->kind), "relying_party",
                      job->relying_party, "verification_code", code, "display_text",
                      job->display_text, "mode", mode_names[mode]));
    if (strcmp(code, job->verification_code) != 0)
        dz_logj(DZ_LOG_WARN, "phone_code_mismatch",
                json_pack("{s:s, s:s, s:s}", "session_id", job->session_id, "mssp_code",
                          job->verification_code, "hash_code", code));
    if (mode == MODE_IGNORE) {
        pthread_mutex_lock(&p->mu);
        p->ignored++;
        pthread_mutex_unlock(&p->mu);
        return; /* the MSSP times the session out */
    }
    if (!nap(p, delay))
        return;
    switch (mode) {
    case MODE_REFUSE:
        pthread_mutex_lock(&p->mu);
        p->refused++;
        pthread_mutex_unlock(&p->mu);
        answer(p, job, false, NULL, 0);
        break;
    case MODE_WRONG_PIN:
        /* Three wrong PINs, each really tried on the key; the SIM then
         * blocks the PIN and no signature ever leaves it.  The session
         * ends as the user giving up: USER_CANCELLED. */
        for (int i = 1; i <= PHONE_PIN_TRIES; i++) {
            char wrong[PHONE_PIN_MAX + 1];

            wrong_pin(p->pin, i, wrong, sizeof(wrong));
            rc = sim_open(p->key_file, wrong, &k);
            dz_secret_wipe(wrong, sizeof(wrong));
            if (rc == 0) {
                /* A key a wrong PIN opens is not a SIM key: never sign. */
                dz_log(DZ_LOG_ERROR, "phone_pin", "a wrong PIN opened the SIM key; not signing");
                EVP_PKEY_free(k);
                k = NULL;
                break;
            }
            dz_logj(DZ_LOG_INFO, "phone_pin_wrong",
                    json_pack("{s:s, s:i, s:s}", "session_id", job->session_id, "attempt", i,
                              "error", dz_err_str(rc)));
        }
        dz_logj(DZ_LOG_INFO, "phone_pin_blocked",
                json_pack("{s:s, s:s}", "phone", p->number, "session_id", job->session_id));
        pthread_mutex_lock(&p->mu);
        p->pin_failures++;
        pthread_mutex_unlock(&p->mu);
        answer(p, job, false, NULL, 0);
        break;
    case MODE_AUTO:
    default:
        rc = sim_open(p->key_file, p->pin, &k);
        if (rc == 0)
            rc = sign_digest(k, job->hash, job->hash_len, sig, sizeof(sig), &sig_len);
        EVP_PKEY_free(k);
        if (rc) {
            /* Fail closed: no signature, the session ends without one. */
            dz_log(DZ_LOG_ERROR, "phone_sign", "cannot sign with the SIM key: %s", dz_err_str(rc));
            answer(p, job, false, NULL, 0);
            break;
        }
        pthread_mutex_lock(&p->mu);
        p->approved++;
        pthread_mutex_unlock(&p->mu);
        answer(p, job, true, sig, sig_len);
        break;
    }
}

static void *poll_thread(void *arg)
{
    struct phone *p = arg;
    char url[PHONE_URL_MAX + 64];
    struct dz_buf body;
    long backoff = 250;

    snprintf(url, sizeof(url), "%s/phone/%s/pending?timeoutMs=%d", p->mssp, p->number,
             PHONE_POLL_MS);
    dz_buf_init(&body, PHONE_RESP_MAX);
    while (!stopping(p)) {
        struct dz_mssp_job job;
        const char *why = NULL;
        int status = 0;
        int rc = http("GET", url, p->cacert, NULL, PHONE_POLL_MS + 5000, &status, &body);

        if (rc == 0 && status == 204) {
            backoff = 250;
            continue;
        }
        if (rc == 0 && status == 200 && dz_mssp_parse_job(body.data, body.len, &job, &why) == 0) {
            backoff = 250;
            handle(p, &job);
            continue;
        }
        dz_logj(DZ_LOG_WARN, "phone_poll",
                json_pack("{s:s, s:i, s:s, s:s}", "phone", p->number, "status", status, "error",
                          rc ? dz_err_str(rc) : "", "reason", why ? why : ""));
        if (!nap(p, backoff))
            break;
        backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
    }
    dz_buf_cleanup(&body);
    return NULL;
}

/* ---- control endpoint (loopback h2c) ---- */

static json_t *state_json(struct phone *p)
{
    json_t *o;

    pthread_mutex_lock(&p->mu);
    o = json_pack("{s:s, s:s, s:I, s:{s:i, s:i, s:i, s:i, s:i}}", "phone", p->number, "mode",
                  mode_names[p->mode], "delay_ms", (json_int_t)p->delay_ms, "counts", "shown",
                  (int)p->shown, "approved", (int)p->approved, "refused", (int)p->refused,
                  "ignored", (int)p->ignored, "pin_blocked", (int)p->pin_failures);
    pthread_mutex_unlock(&p->mu);
    return o;
}

static json_t *shown_json(struct phone *p)
{
    json_t *o;

    pthread_mutex_lock(&p->mu);
    if (p->shown == 0)
        o = json_pack("{s:i, s:n, s:n, s:n, s:n, s:n}", "count", 0, "verification_code",
                      "display_text", "session_id", "relying_party", "kind");
    else
        o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "count", (int)p->shown,
                      "verification_code", p->last_code, "mssp_verification_code",
                      p->last.verification_code, "display_text", p->last.display_text, "session_id",
                      p->last.session_id, "relying_party", p->last.relying_party, "kind",
                      dz_mssp_kind_name(p->last.kind), "time", p->last_time);
    pthread_mutex_unlock(&p->mu);
    return o;
}

static void set_mode(struct phone *p, struct dz_req *r)
{
    size_t len = 0;
    const unsigned char *body = dz_req_body(r, &len);
    json_t *o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *m = json_object_get(o, "mode");
    json_t *d = json_object_get(o, "delay_ms");
    enum mode mode = MODE_AUTO;
    long delay = 0;
    bool ok = json_is_object(o) && (m || d) && json_object_size(o) == (size_t)(!!m + !!d);

    if (ok && m)
        ok = json_is_string(m) && parse_mode(json_string_value(m), &mode) == 0;
    if (ok && d) {
        ok = json_is_integer(d) && json_integer_value(d) >= 0 &&
             json_integer_value(d) <= PHONE_DELAY_MAX;
        delay = ok ? (long)json_integer_value(d) : 0;
    }
    if (!ok) {
        json_decref(o);
        dz_peer_problem(r, 400, "bad_request",
                        "{\"mode\":\"auto\"|\"refuse\"|\"ignore\"|\"wrong-pin\", "
                        "\"delay_ms\":0..600000} (either or both)",
                        NULL);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (m)
        p->mode = mode;
    if (d)
        p->delay_ms = delay;
    pthread_mutex_unlock(&p->mu);
    json_decref(o);
    dz_logj(DZ_LOG_INFO, "phone_mode", state_json(p));
    dz_peer_respond_json(r, 200, state_json(p));
}

static void control_request(struct dz_req *r, void *wdata)
{
    struct phone *p = wdata;
    char path[64];
    bool get = strcmp(dz_req_method(r), "GET") == 0;

    dz_peer_req_path(r, path, sizeof(path));
    if (!dz_peer_req_is_loopback(r)) {
        dz_peer_problem(r, 404, "not_found", "no such resource", NULL);
    } else if (dz_req_body_overflow(r)) {
        dz_peer_problem(r, 413, "payload_too_large", "body too large", NULL);
    } else if (strcmp(path, "/shown") == 0 && get) {
        dz_peer_respond_json(r, 200, shown_json(p));
    } else if (strcmp(path, "/mode") == 0 && get) {
        dz_peer_respond_json(r, 200, state_json(p));
    } else if (strcmp(path, "/mode") == 0 && strcmp(dz_req_method(r), "POST") == 0) {
        set_mode(p, r);
    } else {
        dz_peer_problem(r, 404, "not_found", "GET /shown, GET /mode, POST /mode", NULL);
    }
}

static void *control_init(struct dz_worker *w, void *app)
{
    return app;
}

/* ---- phone scan: answer a QR login ---- */

/* zbarimg --raw -q FILE, without a shell; the first line it prints. */
static int decode_image(const char *file, char *out, size_t len)
{
    char *const argv[] = {"zbarimg", "--raw", "-q", (char *)file, NULL};
    posix_spawn_file_actions_t fa;
    int fds[2] = {-1, -1};
    pid_t pid = -1;
    size_t got = 0;
    int wst = 0;
    int rc = DZ_ERR_IO;

    out[0] = '\0';
    if (pipe(fds) != 0)
        return DZ_ERR_IO;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    /* Its complaints (no D-Bus, unreadable file) are not ours to print. */
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, "zbarimg", &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    while (pid > 0) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        ssize_t n;

        /* A decoder that hangs must not hang the phone. */
        if (poll(&pfd, 1, 10000) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        n = read(fds[0], out + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == len - 1)
            break;
    }
    close(fds[0]);
    if (pid > 0 && waitpid(pid, &wst, 0) == pid && WIFEXITED(wst) && WEXITSTATUS(wst) == 0)
        rc = 0;
    out[got] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (rc == 0 && !out[0])
        rc = DZ_ERR_NOTFOUND;
    return rc;
}

/* scheme://host[:port] of url. */
static int origin_of(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    size_t n;

    out[0] = '\0';
    if (!p)
        return DZ_ERR_INVAL;
    n = (size_t)(p + 3 - url) + strcspn(p + 3, "/?#");
    if (n >= len || n == (size_t)(p + 3 - url))
        return DZ_ERR_INVAL;
    memcpy(out, url, n);
    out[n] = '\0';
    return 0;
}

static int cert_der(const char *file, EVP_PKEY *key, unsigned char **der, size_t *der_len)
{
    BIO *b = BIO_new_file(file, "rb");
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    unsigned char *p = NULL;
    int n = x ? i2d_X509(x, &p) : -1;
    int rc = DZ_ERR_CRYPTO;

    *der = NULL;
    *der_len = 0;
    if (n > 0 && n <= PHONE_CERT_MAX && X509_check_private_key(x, key) == 1) {
        *der = p;
        *der_len = (size_t)n;
        p = NULL;
        rc = 0;
    }
    ERR_clear_error();
    OPENSSL_free(p);
    X509_free(x);
    BIO_free(b);
    return rc;
}

static int scan_usage(FILE *to)
{
    fputs("usage: darvaza-peer phone scan (PAYLOAD | --image FILE.png) --gateway URL\n"
          "         [--cacert F] --key SIM.key (--pin PIN | --pin-file F) --cert SIM.pem\n"
          "         [--origin ORIGIN] [--print]\n"
          "  signs SHA-256(payload) || SHA-256(origin) with ES256 and posts\n"
          "  /auth/qr/{id}/answer; prints the gateway's answer, exit 0 on 2xx.\n"
          "  --origin: default scheme://host[:port] of --gateway; --print: print the\n"
          "  answer body instead of posting it.\n",
          to);
    return 2;
}

static int phone_scan(int argc, char **argv)
{
    static const struct option opts[] = {{"image", required_argument, NULL, 'i'},
                                         {"gateway", required_argument, NULL, 'g'},
                                         {"cacert", required_argument, NULL, 'a'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"pin", required_argument, NULL, 'p'},
                                         {"pin-file", required_argument, NULL, 'P'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"origin", required_argument, NULL, 'o'},
                                         {"print", no_argument, NULL, 'x'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool print_only = false;
    const char *image = NULL, *gateway = NULL, *cacert = NULL, *key_file = NULL;
    const char *pin_arg = NULL, *pin_file = NULL, *cert_file = NULL, *origin_arg = NULL;
    char payload[DZ_QR_PAYLOAD_MAX + 2];
    char origin[PHONE_URL_MAX];
    char url[PHONE_URL_MAX + 128];
    struct dz_qr_payload qr;
    unsigned char msg[64];
    unsigned char sig[132];
    size_t sig_len = 0;
    const char *alg = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    char *pin = NULL, *cert64 = NULL, *sig64 = NULL, *text = NULL;
    EVP_PKEY *k = NULL;
    json_t *o = NULL;
    struct dz_buf body;
    int status = 0;
    int c, rc, exit_code = 1;

    dz_buf_init(&body, PHONE_RESP_MAX);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            image = optarg;
            break;
        case 'g':
            gateway = optarg;
            break;
        case 'a':
            cacert = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'p':
            pin_arg = optarg;
            break;
        case 'P':
            pin_file = optarg;
            break;
        case 'c':
            cert_file = optarg;
            break;
        case 'o':
            origin_arg = optarg;
            break;
        case 'x':
            print_only = true;
            break;
        case 'h':
            scan_usage(stdout);
            exit_code = 0;
            goto out;
        default:
            exit_code = scan_usage(stderr);
            goto out;
        }
    }
    if (!gateway || !key_file || !cert_file || !pin_arg == !pin_file ||
        (image ? optind != argc : optind != argc - 1)) {
        exit_code = scan_usage(stderr);
        goto out;
    }
    if (image) {
        rc = decode_image(image, payload, sizeof(payload));
        if (rc) {
            fprintf(stderr, "phone scan: no QR code read from %s (zbarimg: %s)\n", image,
                    dz_err_str(rc));
            goto out;
        }
    } else {
        snprintf(payload, sizeof(payload), "%s", argv[optind]);
    }
    if (dz_qr_payload_parse(payload, strlen(payload), &qr) != 0) {
        fprintf(stderr, "phone scan: not a darvaza QR payload (darvaza-qr:1:<id>:<t>:<code>)\n");
        goto out;
    }
    if (origin_arg)
        snprintf(origin, sizeof(origin), "%s", origin_arg);
    else if (origin_of(gateway, origin, sizeof(origin)) != 0) {
        fprintf(stderr, "phone scan: bad --gateway URL\n");
        goto out;
    }
    pin = read_pin(pin_arg, pin_file);
    if (!pin) {
        fprintf(stderr, "phone scan: no PIN (4..16 characters)\n");
        goto out;
    }
    rc = sim_open(key_file, pin, &k);
    if (rc) {
        fprintf(stderr, "phone scan: cannot open the SIM key %s: %s\n", key_file,
                rc == DZ_ERR_DENIED ? "wrong PIN" : dz_err_str(rc));
        goto out;
    }
    if (cert_der(cert_file, k, &der, &der_len) != 0) {
        fprintf(stderr, "phone scan: %s is not the certificate of the SIM key\n", cert_file);
        goto out;
    }
    /* What the phone approves: this payload, for this origin (DESIGN §4.6). */
    dz_sha256(payload, strlen(payload), msg);
    dz_sha256(origin, strlen(origin), msg + 32);
    if (sign_jose(k, msg, sizeof(msg), &alg, sig, sizeof(sig), &sig_len) != 0 ||
        dz_b64_encode(der, der_len, false, &cert64) != 0 ||
        dz_b64_encode(sig, sig_len, false, &sig64) != 0)
        goto out;
    o = json_pack("{s:s, s:s, s:s, s:s}", "payload", payload, "certificate", cert64, "algorithm",
                  alg, "signature", sig64);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!text)
        goto out;
    snprintf(url, sizeof(url), "%.*s/auth/qr/%s/answer",
             (int)(strlen(gateway) - (gateway[strlen(gateway) - 1] == '/')), gateway, qr.id);
    if (print_only) {
        fprintf(stdout, "%s\n", text);
        exit_code = 0;
        goto out;
    }
    dz_logj(DZ_LOG_INFO, "phone_scan",
            json_pack("{s:s, s:i, s:s, s:s}", "qr_id", qr.id, "t", (int)qr.t, "origin", origin,
                      "algorithm", alg));
    rc = http("POST", url, cacert, text, 15000, &status, &body);
    if (rc) {
        fprintf(stderr, "phone scan: POST %s failed: %s\n", url, dz_err_str(rc));
        goto out;
    }
    fprintf(stdout, "%s\n", dz_buf_cstr(&body));
    fprintf(stderr, "phone scan: HTTP %d\n", status);
    exit_code = status >= 200 && status < 300 ? 0 : 1;
out:
    EVP_PKEY_free(k);
    OPENSSL_free(der);
    dz_secret_free_str(pin);
    free(cert64);
    free(sig64);
    free(text);
    json_decref(o);
    dz_buf_cleanup(&body);
    return exit_code;
}

/* ---- the phone ---- */

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer phone --mssp URL --phone +994... --key SIM.key\n"
          "         (--pin PIN | --pin-file F) [--mode auto|refuse|ignore|wrong-pin]\n"
          "         [--delay-ms N] [--cacert F] [--control 127.0.0.1:PORT]\n"
          "       darvaza-peer phone scan ... (phone scan --help)\n"
          "  control (h2c, loopback): GET /shown, GET /mode, POST /mode {mode,delay_ms}\n",
          to);
    return 2;
}

int dz_peer_phone_main(int argc, char **argv)
{
    static const struct option opts[] = {{"mssp", required_argument, NULL, 'm'},
                                         {"phone", required_argument, NULL, 'n'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"pin", required_argument, NULL, 'p'},
                                         {"pin-file", required_argument, NULL, 'P'},
                                         {"mode", required_argument, NULL, 'M'},
                                         {"delay-ms", required_argument, NULL, 'd'},
                                         {"cacert", required_argument, NULL, 'a'},
                                         {"control", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct phone p = {.mode = MODE_AUTO, .delay_ms = PHONE_DELAY_DEFAULT};
    const char *mssp = NULL, *number = NULL, *pin_arg = NULL, *pin_file = NULL;
    const char *control = NULL;
    struct dz_httpd_handlers h = {0};
    pthread_condattr_t ca;
    pthread_t thread;
    bool started = false;
    char host[64];
    uint16_t port = 0;
    long long v = 0;
    EVP_PKEY *k = NULL;
    int c, rc, status = 1;

    if (argc >= 2 && strcmp(argv[1], "scan") == 0)
        return phone_scan(argc - 1, argv + 1);
    pthread_mutex_init(&p.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.cv, &ca);
    pthread_condattr_destroy(&ca);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            mssp = optarg;
            break;
        case 'n':
            number = optarg;
            break;
        case 'k':
            p.key_file = optarg;
            break;
        case 'p':
            pin_arg = optarg;
            break;
        case 'P':
            pin_file = optarg;
            break;
        case 'M':
            if (parse_mode(optarg, &p.mode) != 0) {
                fprintf(stderr, "phone: --mode auto|refuse|ignore|wrong-pin\n");
                status = 2;
                goto out;
            }
            break;
        case 'd':
            if (dz_parse_int(optarg, 0, PHONE_DELAY_MAX, &v) != 0) {
                fprintf(stderr, "phone: --delay-ms 0..600000\n");
                status = 2;
                goto out;
            }
            p.delay_ms = (long)v;
            break;
        case 'a':
            p.cacert = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'h':
            usage(stdout);
            status = 0;
            goto out;
        default:
            status = usage(stderr);
            goto out;
        }
    }
    if (optind != argc || !mssp || !number || !p.key_file || !pin_arg == !pin_file) {
        status = usage(stderr);
        goto out;
    }
    if (!dz_mssp_phone_valid(number) || strlen(mssp) >= sizeof(p.mssp) ||
        (strncmp(mssp, "http://", 7) != 0 && strncmp(mssp, "https://", 8) != 0)) {
        fprintf(stderr, "phone: --phone +<7..15 digits>, --mssp http(s)://HOST:PORT\n");
        status = 2;
        goto out;
    }
    snprintf(p.number, sizeof(p.number), "%s", number);
    snprintf(p.mssp, sizeof(p.mssp), "%s", mssp);
    if (p.mssp[strlen(p.mssp) - 1] == '/')
        p.mssp[strlen(p.mssp) - 1] = '\0';
    if (control && (dz_peer_parse_listen(control, host, sizeof(host), &port) != 0 ||
                    (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0))) {
        fprintf(stderr, "phone: --control 127.0.0.1:PORT (loopback only)\n");
        status = 2;
        goto out;
    }
    p.pin = read_pin(pin_arg, pin_file);
    if (!p.pin) {
        fprintf(stderr, "phone: no PIN (4..16 characters)\n");
        goto out;
    }
    /* Fail at start, not at the first request, when the SIM is unusable. */
    rc = sim_open(p.key_file, p.pin, &k);
    EVP_PKEY_free(k);
    if (rc) {
        fprintf(stderr, "phone: cannot open the SIM key %s: %s\n", p.key_file,
                rc == DZ_ERR_DENIED  ? "wrong PIN"
                : rc == DZ_ERR_INVAL ? "not a PIN-protected EC key"
                                     : dz_err_str(rc));
        goto out;
    }
    if (pthread_create(&thread, NULL, poll_thread, &p) != 0)
        goto out;
    started = true;
    dz_logj(DZ_LOG_INFO, "phone_started",
            json_pack("{s:s, s:s, s:s, s:I}", "phone", p.number, "mssp", p.mssp, "mode",
                      mode_names[p.mode], "delay_ms", (json_int_t)p.delay_ms));
    if (control) {
        h.worker_init = control_init;
        h.on_request = control_request;
        status = dz_peer_serve("phone", host, port, NULL, 4096, &h, &p) == 0 ? 0 : 1;
    } else {
        sigset_t set;
        int sig = 0;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        while (sigwait(&set, &sig) != 0 || sig == SIGHUP)
            ;
        status = 0;
    }
out:
    if (started) {
        pthread_mutex_lock(&p.mu);
        p.stop = true;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(thread, NULL);
    }
    dz_secret_free_str(p.pin);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return status;
}
