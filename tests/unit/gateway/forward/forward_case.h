/*
 * forward_case.h - what the forwarder's unit tests (test_forward*.c in this
 * folder) share: a gateway on the request-layer harness with the test's own
 * policy, a GET with a session, the check of a refusal, a metric's value,
 * and the ops log (stderr) of a step.  Static inline: each test is one
 * translation unit and uses only some of these.
 */
#ifndef DZ_TEST_FORWARD_CASE_H
#define DZ_TEST_FORWARD_CASE_H

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "core/metrics.h"
#include "forward/inflight.h"
#include "harness/assert_problem.h"
#include "harness/fake_gw.h"

#define FIN_A "5ABC123"

/* cmocka set-up and tear-down around a gateway with policy. */
static inline int fwd_setup(void **state, const char *policy)
{
    struct fake_gw_opts o = {.policy_yaml = policy};
    struct fake_gw *g;

    assert_int_equal(fake_gw_new(&o, &g), 0);
    *state = g;
    return 0;
}

/* Every slot of the services' requests in flight came back, and no caller
 * is left counted: whichever way each test's forwards ended. */
static inline void fwd_assert_no_slot_held(struct fake_gw *g)
{
    const struct dz_policy_set *set = g->gw.gen->policies;

    for (size_t i = 0; i < dz_policy_service_count(set); i++)
        assert_int_equal(dz_inflight_count(dz_policy_service_at(set, i)), 0);
    assert_int_equal(dz_inflight_callers(), 0);
}

static inline int fwd_teardown(void **state)
{
    struct fake_gw *g = *state;

    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    fwd_assert_no_slot_held(g);
    /* false: a reference, a pool job or a post was left behind. */
    assert_true(fake_gw_free(g));
    return 0;
}

/* GET path with the token (NULL: none), answered; the caller frees r. */
static inline struct dz_req *fwd_get(struct fake_gw *g, const char *path, const char *token)
{
    struct dz_req *r = fake_gw_req(g, "GET", path);

    if (token)
        fake_req_bearer(r, token);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_invalid_answers(r), 0);
    return r;
}

/* For fake_spin: r's answer has started and some of its body came. */
static inline bool fwd_body_started(void *arg)
{
    struct dz_req *r = arg;
    size_t len;

    fake_req_resp_body(r, &len);
    return fake_req_started(r) && len > 0;
}

/* A GET of /api/t/open with a session whose answer is in the middle of its
 * transfer: the head and "the first part" of the body reached the client,
 * the back end holds the rest.  The caller frees r. */
static inline struct dz_req *fwd_mid_transfer(struct fake_gw *g)
{
    char tok[64];
    struct dz_req *r;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_mode(g->up, FAKE_UP_HEAD_THEN_HOLD);
    fake_upstream_set_answer(g->up, 200, "content-type: text/plain\r\n", "the first part");
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fake_gw_send(g, r);
    assert_true(fake_spin(g->w, fwd_body_started, r, FAKE_GW_TIMEOUT_MS));
    return r;
}

/* The value of the /metrics sample that starts with sample (name and
 * labels as rendered, e.g. "darvaza_audit_lost_total{kind=\"outcome\"}");
 * 0 when absent. */
static inline long fwd_metric(struct fake_gw *g, const char *sample)
{
    struct dz_buf b;
    char want[256];
    const char *p;
    long n = 0;

    snprintf(want, sizeof(want), "\n%s ", sample);
    dz_buf_init(&b, 1u << 20);
    assert_int_equal(dz_metrics_render(g->gw.metrics, &b), 0);
    p = strstr(dz_buf_cstr(&b), want);
    if (p)
        n = strtol(p + strlen(want), NULL, 10);
    dz_buf_cleanup(&b);
    return n;
}

/* darvaza_upstream_errors_total for service "backend" and kind. */
static inline long fwd_upstream_errors(struct fake_gw *g, const char *kind)
{
    char sample[128];

    snprintf(sample, sizeof(sample),
             "darvaza_upstream_errors_total{service=\"backend\",kind=\"%s\"}", kind);
    return fwd_metric(g, sample);
}

/* Every descriptor of this process open on the audit log now writes to
 * /dev/full: the writer's next write fails (ENOSPC) and the log closes to
 * new lines, as on a full disk. */
static inline void fwd_audit_file_fills(struct fake_gw *g)
{
    char want[PATH_MAX];
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    int replaced = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    assert_non_null(realpath(g->audit_path, want));
    assert_true(full >= 0);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char link[300];
        char target[PATH_MAX];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, want) == 0 && dup2(full, (int)strtol(e->d_name, NULL, 10)) >= 0)
            replaced++;
    }
    closedir(d);
    close(full);
    assert_true(replaced > 0);
}

/* For fake_spin: an audit result (the writer's post) waits for the loop. */
static inline bool fwd_audit_delivery_waiting(void *arg)
{
    struct fake_gw *g = arg;

    return fake_worker_posts_waiting(g->w) > 0;
}

/* stderr (where the ops log goes) into a file while a step runs. */
struct fwd_capture {
    int saved;
    char path[64];
};

static inline void fwd_capture_start(struct fwd_capture *cap)
{
    int fd;

    snprintf(cap->path, sizeof(cap->path), "/tmp/test_forward_log.XXXXXX");
    fd = mkstemp(cap->path);
    assert_true(fd >= 0);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    assert_true(cap->saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* Restores stderr; returns what was written (malloc'd).  Call it before any
 * assertion: cmocka reports on stderr. */
static inline char *fwd_capture_end(struct fwd_capture *cap)
{
    FILE *fp;
    char *text;
    long len;

    fflush(stderr);
    assert_true(dup2(cap->saved, STDERR_FILENO) >= 0);
    close(cap->saved);
    fp = fopen(cap->path, "r");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    unlink(cap->path);
    return text;
}

/* The ops log line of logs with this event and request id, parsed (or
 * NULL); logs is left as it was. */
static inline json_t *fwd_log_line(const char *logs, const char *event, const char *rid)
{
    char *text = strdup(logs);
    char *save = NULL;
    json_t *found = NULL;

    assert_non_null(text);
    for (char *l = strtok_r(text, "\n", &save); l && !found; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        const char *e = json_string_value(json_object_get(j, "event"));
        const char *r = json_string_value(json_object_get(j, "rid"));

        if (e && r && strcmp(e, event) == 0 && strcmp(r, rid) == 0)
            found = json_incref(j);
        json_decref(j);
    }
    free(text);
    return found;
}

#endif
