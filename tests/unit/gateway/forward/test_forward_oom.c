/*
 * test_forward_oom.c - the forwarder (gateway/forward/forward.c) when the
 * gateway runs out of memory while it holds a back end's answer: the
 * client gets 502 upstream_unavailable and nothing of the answer (not its
 * status, header fields or body), the outcome line, the warning and the
 * metric say what happened, and the next request is served as usual.
 *
 * The failures come from the malloc hook of harness/fail_alloc.h (this
 * test is linked with --wrap=malloc because it includes it), armed for an
 * allocation whose exact size the test computes from the answer it has
 * the fake back end send.
 */
#include <fcntl.h>
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
#include "harness/fail_alloc.h"
#include "harness/fake_gw.h"

static const char policy[] = "service: backend\n"
                             "registered_as: \"DIS-7001\"\n"
                             "upstream: @UPSTREAM@\n"
                             "upstream_http: http1\n"
                             "routes:\n"
                             "  - path: /api/t/open\n"
                             "    methods: [GET]\n"
                             "    acr: low\n"
                             "  - path: /api/t/record\n"
                             "    methods: [GET]\n"
                             "    acr: low\n"
                             "    release: [fin, name]\n"
                             "  - path: /api/t/held\n"
                             "    methods: [GET]\n"
                             "    acr: low\n"
                             "    limits: { timeout: 60s }\n"
                             "  - path: /api/t/held-record\n"
                             "    methods: [GET]\n"
                             "    acr: low\n"
                             "    release: [fin, name]\n"
                             "    limits: { timeout: 60s }\n"
                             "limits: { body: 1KiB, timeout: 10s }\n";

#define FIN_A "5ABC123"

/* What the back end answers: fields a client would act on, and a body. */
static const char answer_fields[] = "content-type: text/plain\r\n"
                                    "x-backend: yes\r\n"
                                    "set-cookie: theirs=1\r\n";
static const char answer_body[] = "the back end's own answer";
static const char record_body[] = "{\"fin\":\"5ABC123\",\"name\":\"Ayten\"}";

static int setup(void **state)
{
    struct fake_gw_opts o = {.policy_yaml = policy};
    struct fake_gw *g;

    assert_int_equal(fake_gw_new(&o, &g), 0);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    fail_alloc_disarm();
    /* false: a reference, a pool job or a post was left behind. */
    assert_true(fake_gw_free(*state));
    return 0;
}

/*
 * The size of forward.c's copy of the answer's header fields (copy_headers:
 * the array, then each name and value with its NUL) for what the fake back
 * end sends: its own content-length and connection fields, then extra
 * ("name: value\r\n" lines, as given to fake_upstream_set_answer).
 */
static size_t head_copy_size(const char *extra, size_t body_len)
{
    char cl[24];
    size_t n = 2;
    size_t need;

    snprintf(cl, sizeof(cl), "%zu", body_len);
    need = strlen("content-length") + strlen(cl) + 2 + strlen("connection") + strlen("close") + 2;
    for (const char *p = extra; *p;) {
        const char *eol = strstr(p, "\r\n");

        assert_non_null(eol);
        /* "name: value" becomes "name\0value\0": as many bytes */
        need += (size_t)(eol - p);
        n++;
        p = eol + 2;
    }
    return n * sizeof(struct dz_hdr) + need;
}

/* The block dz_buf_append allocates for a first append of len bytes into
 * an empty buffer (lib/base/buf.c: from 64, doubled until len + 1 fits). */
static size_t first_buffer_size(size_t len)
{
    size_t cap = 64;

    while (cap < len + 1)
        cap *= 2;
    return cap;
}

/* stderr (where the ops log goes) into a file while the request runs. */
struct capture {
    int saved;
    char path[64];
};

static void capture_start(struct capture *cap)
{
    int fd;

    snprintf(cap->path, sizeof(cap->path), "/tmp/test_forward_oom.XXXXXX");
    fd = mkstemp(cap->path);
    assert_true(fd >= 0);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    assert_true(cap->saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* Restores stderr; returns what was written (malloc'd). */
static char *capture_end(struct capture *cap)
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

/* The ops log line with this event and request id, parsed (or NULL). */
static json_t *log_line(char *text, const char *event, const char *rid)
{
    char *save = NULL;

    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        const char *e = json_string_value(json_object_get(j, "event"));
        const char *r = json_string_value(json_object_get(j, "rid"));

        if (e && r && strcmp(e, event) == 0 && strcmp(r, rid) == 0)
            return j;
        json_decref(j);
    }
    return NULL;
}

/* The darvaza_upstream_errors_total sample for backend and kind (0 if absent). */
static long upstream_errors(struct fake_gw *g, const char *kind)
{
    struct dz_buf b;
    char want[128];
    const char *p;
    long n = 0;

    dz_buf_init(&b, 1u << 20);
    assert_int_equal(dz_metrics_render(g->gw.metrics, &b), 0);
    snprintf(want, sizeof(want), "darvaza_upstream_errors_total{service=\"backend\",kind=\"%s\"} ",
             kind);
    p = strstr(dz_buf_cstr(&b), want);
    if (p)
        n = strtol(p + strlen(want), NULL, 10);
    dz_buf_cleanup(&b);
    return n;
}

/*
 * What a client sees of an answer the gateway could not hold: the 502
 * problem and nothing of the back end's (status, fields, body); what the
 * operator sees: the outcome line (502, out_of_memory), the upstream_failed
 * warning with its reason, the metric.
 */
static void assert_refused(struct fake_gw *g, struct dz_req *r, const char *logs,
                           long errors_before)
{
    char code[64];
    char *text = strdup(logs);
    const char *rid;
    const char *body;
    json_t *line;

    assert_non_null(text);
    assert_int_equal(fake_req_invalid_answers(r), 0);
    assert_int_equal(fake_req_status(r), 502);
    assert_string_equal(fake_req_resp_header(r, "content-type"), "application/problem+json");
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "upstream_unavailable");
    assert_false(fake_req_streamed(r));
    assert_null(fake_req_resp_header(r, "x-backend"));
    assert_null(fake_req_resp_header(r, "set-cookie"));
    body = fake_req_resp_body(r, NULL);
    assert_null(strstr(body, answer_body));
    assert_null(strstr(body, "Ayten"));
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);

    /* Every hold and reference is back (teardown checks the rest). */
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);

    line = fake_gw_audit_find(g, rid, "forward_result");
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 502);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "out_of_memory");
    assert_true(json_is_true(json_object_get(line, "sent")));
    json_decref(line);

    line = log_line(text, "upstream_failed", rid);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(line, "service")), "backend");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "out_of_memory");
    assert_false(json_is_true(json_object_get(line, "streaming")));
    json_decref(line);
    free(text);

    assert_int_equal(upstream_errors(g, "out_of_memory"), errors_before + 1);
}

/* GET path with the session, answered while the hook is armed as given;
 * the ops log written meanwhile in *logs. */
static struct dz_req *get_failing(struct fake_gw *g, const char *path, const char *tok,
                                  size_t after, size_t size, char **logs)
{
    struct dz_req *r = fake_gw_req(g, "GET", path);
    struct capture cap;
    unsigned failures = fail_alloc_failures();
    bool answered;
    bool missed;

    fake_req_bearer(r, tok);
    capture_start(&cap);
    fail_alloc_arm(after, FAIL_ALLOC_EQUAL, size);
    answered = fake_gw_roundtrip(g, r);
    missed = fail_alloc_armed();
    fail_alloc_disarm();
    *logs = capture_end(&cap); /* before any assertion: cmocka writes to stderr */
    assert_true(answered);
    /* The failure was the one meant: not missed, not taken twice. */
    assert_false(missed);
    assert_int_equal(fail_alloc_failures(), failures + 1);
    return r;
}

/*
 * The copy of the answer's header fields fails (on_head): before the fix
 * the answer went on with the back end's 200 and its body, without its
 * content-type or the cookie it sets.  Now: 502, nothing of the answer; then
 * the same request, unarmed, gets the back end's answer whole.
 */
static void test_head_copy_fails(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    long errors = upstream_errors(g, "out_of_memory");

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, answer_fields, answer_body);
    r = get_failing(g, "/api/t/open", tok, 0, head_copy_size(answer_fields, strlen(answer_body)),
                    &logs);
    assert_int_equal(fake_upstream_requests(g->up), 1); /* it had gone out */
    assert_refused(g, r, logs, errors);
    free(logs);
    fake_req_free(r);

    /* The same request again, memory back: the back end's answer. */
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    assert_string_equal(fake_req_resp_header(r, "content-type"), "text/plain");
    assert_string_equal(fake_req_resp_header(r, "x-backend"), "yes");
    assert_string_equal(fake_req_resp_header(r, "set-cookie"), "theirs=1");
    assert_string_equal(fake_req_resp_body(r, NULL), answer_body);
    fake_req_free(r);
}

/* The same on a route with a release list (the answer is buffered, then
 * filtered): no unfiltered record goes out. */
static void test_head_copy_fails_buffered(void **state)
{
    static const char fields[] = "content-type: application/json\r\n";
    struct fake_gw *g = *state;
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    json_t *j;
    long errors = upstream_errors(g, "out_of_memory");

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, fields, record_body);
    r = get_failing(g, "/api/t/record", tok, 0, head_copy_size(fields, strlen(record_body)), &logs);
    assert_refused(g, r, logs, errors);
    free(logs);
    fake_req_free(r);

    r = fake_gw_req(g, "GET", "/api/t/record");
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 200);
    j = fake_req_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Ayten");
    json_decref(j);
    fake_req_free(r);
}

/* The buffer of a release route's answer cannot grow (on_data): 502 as
 * well, told as out_of_memory rather than as an answer too large. */
static void test_body_buffer_fails(void **state)
{
    static const char fields[] = "content-type: application/json\r\n";
    struct fake_gw *g = *state;
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    long errors = upstream_errors(g, "out_of_memory");

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, fields, record_body);
    /* The first buffer after the header block is the body's. */
    r = get_failing(g, "/api/t/record", tok, head_copy_size(fields, strlen(record_body)),
                    first_buffer_size(strlen(record_body)), &logs);
    assert_refused(g, r, logs, errors);
    free(logs);
    fake_req_free(r);
}

static bool upstream_closed(void *arg)
{
    struct fake_gw *g = arg;

    return fake_upstream_closed_by_client(g->up) == 1 && fake_upstream_open(g->up) == 0;
}

/*
 * A refusal while the back end still holds the rest of its answer (it
 * declares 1000 bytes more than it sends, on a route whose timeout is a
 * minute): the 502 comes at once, not when the transfer would have ended,
 * and the gateway closes the back end's connection (an unfinished HTTP/1.1
 * answer is never reused).  Before, the refused answer was drained to the
 * route's timeout: no answer within the harness's bound (15 s).
 */
static void refused_while_held(struct fake_gw *g, const char *path, const char *fields,
                               const char *body, bool at_head)
{
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    long errors = upstream_errors(g, "out_of_memory");
    size_t head = head_copy_size(fields, strlen(body) + 1000);

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_mode(g->up, FAKE_UP_HEAD_THEN_HOLD);
    fake_upstream_set_answer(g->up, 200, fields, body);
    if (at_head)
        r = get_failing(g, path, tok, 0, head, &logs);
    else
        r = get_failing(g, path, tok, head, first_buffer_size(strlen(body)), &logs);
    assert_refused(g, r, logs, errors);
    assert_true(fake_spin(g->w, upstream_closed, g, FAKE_GW_TIMEOUT_MS));
    free(logs);
    fake_req_free(r);
}

/* The header copy fails (on_head) on a streamed route. */
static void test_head_copy_fails_held(void **state)
{
    refused_while_held(*state, "/api/t/held", answer_fields, answer_body, true);
}

/* The release route's buffer cannot grow (on_data). */
static void test_body_buffer_fails_held(void **state)
{
    refused_while_held(*state, "/api/t/held-record", "content-type: application/json\r\n",
                       record_body, false);
}

/* An answer the release filter cannot read: 502, and the outcome line says
 * 502 (before, it said the back end's 200 and "ok"). */
static void test_unreadable_record_outcome(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char code[64];
    struct dz_req *r;
    json_t *line;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, "content-type: application/json\r\n", "{\"fin\":");
    r = fake_gw_req(g, "GET", "/api/t/record");
    fake_req_bearer(r, tok);
    assert_true(fake_gw_roundtrip(g, r));
    assert_int_equal(fake_req_status(r), 502);
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "upstream_unavailable");
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward_result");
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 502);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "upstream_error");
    json_decref(line);
    assert_int_equal(upstream_errors(g, "bad_answer"), 1);
    fake_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_copy_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_copy_fails_buffered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_buffer_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_record_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_copy_fails_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_buffer_fails_held, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
