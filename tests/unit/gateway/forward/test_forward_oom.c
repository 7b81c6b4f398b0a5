/*
 * test_forward_oom.c - the forwarder (gateway/forward/forward.c) when the
 * gateway runs out of memory while it holds a back end's answer: the
 * client gets 502 upstream_unavailable and nothing of the answer (not its
 * status, header fields or body) or, when the answer had begun, a reset
 * stream; the outcome line, the warning and the metric say what happened,
 * and the next request is served as usual.  Each failure branch is taken
 * once: the copy of the answer's fields, the answer's buffer, the release
 * filter's parse and its output, and the engine refusing the answer's head
 * (dz_req_start), a whole answer (dz_req_respond) or a piece of the body
 * (dz_req_write).  Last, the two audit lines' reservations, each in turn
 * (the request line's and the outcome line's): when one cannot be made the
 * request does not leave; and the outcome's room holds the largest line
 * the forwarder can write.
 *
 * The failures come from the malloc hook of harness/fail_alloc.h (this
 * test is linked with --wrap=malloc because it includes it), armed for an
 * allocation whose exact size the test computes from the answer it has
 * the fake back end send.  jansson allocates through the hook once
 * dz_json_wipe_frees() has run (as darvazad runs it at start), and the
 * fake engine takes its memory where the engine does (fake_req.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <limits.h>

#include "audit/audit.h"
#include "base/err.h"
#include "core/gwasync.h"
#include "core/rctx.h"
#include "forward/forward.h"
#include "forward_case.h"
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

/* What the back end answers: fields a client would act on, and a body. */
static const char answer_fields[] = "content-type: text/plain\r\n"
                                    "x-backend: yes\r\n"
                                    "set-cookie: theirs=1\r\n";
static const char answer_body[] = "the back end's own answer";
static const char json_fields[] = "content-type: application/json\r\n";
/* A record with a field the route does not release, and what the filter
 * makes of it. */
static const char full_record[] = "{\"fin\":\"5ABC123\",\"name\":\"Ayten\",\"address\":\"Baku\"}";
static const char released_record[] = "{\"fin\":\"5ABC123\",\"name\":\"Ayten\"}";

static int setup(void **state)
{
    /* jansson's blocks through malloc, so through the hook (darvazad's
     * main.c does the same at start). */
    dz_json_wipe_frees();
    return fwd_setup(state, policy);
}

static int teardown(void **state)
{
    fail_alloc_disarm();
    return fwd_teardown(state);
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

/* The outcome line of r, with the status and result expected, for a
 * request that was sent. */
static void assert_outcome(struct fake_gw *g, const char *rid, int status, const char *result)
{
    json_t *line = fake_gw_audit_find(g, rid, "forward_result");

    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), status);
    assert_string_equal(json_string_value(json_object_get(line, "result")), result);
    assert_true(json_is_true(json_object_get(line, "sent")));
    json_decref(line);
}

/* The upstream_failed warning of rid, told as out of memory. */
static void assert_warned(const char *logs, const char *rid, bool streaming)
{
    json_t *line = fwd_log_line(logs, "upstream_failed", rid);

    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(line, "service")), "backend");
    assert_string_equal(json_string_value(json_object_get(line, "reason")), "out_of_memory");
    assert_int_equal(json_is_true(json_object_get(line, "streaming")), streaming);
    json_decref(line);
}

/*
 * What a client sees of an answer the gateway could not hold: the 502
 * problem and nothing of the back end's (status, fields, body); what the
 * operator sees: the outcome line (502, out_of_memory), the upstream_failed
 * warning with its reason, the metric.  nomem: the answers the engine
 * refused for memory (1 when the failure was the engine's).
 */
static void assert_refused(struct fake_gw *g, struct dz_req *r, const char *logs,
                           long errors_before, unsigned nomem)
{
    char code[64];
    const char *rid;
    const char *body;

    assert_int_equal(fake_req_invalid_answers(r), 0);
    assert_int_equal(fake_req_nomem_answers(r), nomem);
    assert_int_equal(fake_req_status(r), 502);
    assert_string_equal(fake_req_resp_header(r, "content-type"), "application/problem+json");
    assert_string_equal(fake_req_problem_code(r, code, sizeof(code)), "upstream_unavailable");
    assert_false(fake_req_streamed(r));
    assert_null(fake_req_resp_header(r, "x-backend"));
    assert_null(fake_req_resp_header(r, "set-cookie"));
    body = fake_req_resp_body(r, NULL);
    assert_null(strstr(body, answer_body));
    assert_null(strstr(body, "Ayten"));
    assert_null(strstr(body, "Baku"));
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);

    /* Every hold and reference is back (teardown checks the rest). */
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);

    assert_outcome(g, rid, 502, "out_of_memory");
    assert_warned(logs, rid, false);
    assert_int_equal(fwd_upstream_errors(g, "out_of_memory"), errors_before + 1);
    assert_int_equal(fwd_upstream_errors(g, "bad_answer"), 0);
}

/* GET path with the session, answered (or reset: ended either way) while
 * the hook is armed as given; the ops log written meanwhile in *logs. */
static bool ended(void *arg)
{
    return fake_req_complete(arg) || fake_req_was_reset(arg);
}

static struct dz_req *get_failing(struct fake_gw *g, const char *path, const char *tok,
                                  size_t after, enum fail_alloc_match how, size_t size, char **logs)
{
    struct dz_req *r = fake_gw_req(g, "GET", path);
    struct fwd_capture cap;
    unsigned failures = fail_alloc_failures();
    bool answered;
    bool missed;

    fake_req_bearer(r, tok);
    fwd_capture_start(&cap);
    fail_alloc_arm(after, how, size);
    fake_gw_send(g, r);
    answered = fake_spin(g->w, ended, r, FAKE_GW_TIMEOUT_MS);
    missed = fail_alloc_armed();
    fail_alloc_disarm();
    *logs = fwd_capture_end(&cap); /* before any assertion: cmocka writes to stderr */
    assert_true(answered);
    /* The failure was the one meant: not missed, not taken twice. */
    assert_false(missed);
    assert_int_equal(fail_alloc_failures(), failures + 1);
    return r;
}

/* The same request again, memory back: the back end's answer whole. */
static void assert_served_again(struct fake_gw *g, const char *path, const char *tok)
{
    struct dz_req *r = fwd_get(g, path, tok);

    assert_int_equal(fake_req_status(r), 200);
    assert_int_equal(fake_req_nomem_answers(r), 0);
    if (strcmp(path, "/api/t/record") == 0) {
        assert_string_equal(fake_req_resp_body(r, NULL), released_record);
    } else {
        assert_string_equal(fake_req_resp_header(r, "content-type"), "text/plain");
        assert_string_equal(fake_req_resp_header(r, "x-backend"), "yes");
        assert_string_equal(fake_req_resp_header(r, "set-cookie"), "theirs=1");
        assert_string_equal(fake_req_resp_body(r, NULL), answer_body);
    }
    fake_req_free(r);
}

/*
 * One answer refused for memory: the back end answers path with fields and
 * body while the hook is armed as given; the client gets the 502 and
 * nothing of the answer (assert_refused), then the same request, memory
 * back, is served whole.  nomem: 1 when the engine refused the answer.
 */
static void refused_then_served(struct fake_gw *g, const char *path, const char *fields,
                                const char *body, size_t after, enum fail_alloc_match how,
                                size_t size, unsigned nomem)
{
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    long errors = fwd_upstream_errors(g, "out_of_memory");

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, fields, body);
    r = get_failing(g, path, tok, after, how, size, &logs);
    assert_true(fake_upstream_requests(g->up) > 0); /* it had gone out */
    assert_refused(g, r, logs, errors, nomem);
    free(logs);
    fake_req_free(r);
    assert_served_again(g, path, tok);
}

/*
 * The copy of the answer's header fields fails (on_head): before the fix
 * the answer went on with the back end's 200 and its body, without its
 * content-type or the cookie it sets.  Now: 502, nothing of the answer; then
 * the same request, unarmed, gets the back end's answer whole.
 */
static void test_head_copy_fails(void **state)
{
    refused_then_served(*state, "/api/t/open", answer_fields, answer_body, 0, FAIL_ALLOC_EQUAL,
                        head_copy_size(answer_fields, strlen(answer_body)), 0);
}

/* The same on a route with a release list (the answer is buffered, then
 * filtered): no unfiltered record goes out. */
static void test_head_copy_fails_buffered(void **state)
{
    refused_then_served(*state, "/api/t/record", json_fields, full_record, 0, FAIL_ALLOC_EQUAL,
                        head_copy_size(json_fields, strlen(full_record)), 0);
}

/* The buffer of a release route's answer cannot grow (on_data): 502 as
 * well, told as out_of_memory rather than as an answer too large. */
static void test_body_buffer_fails(void **state)
{
    /* The first buffer after the header block is the body's. */
    refused_then_served(*state, "/api/t/record", json_fields, full_record,
                        head_copy_size(json_fields, strlen(full_record)), FAIL_ALLOC_EQUAL,
                        first_buffer_size(strlen(full_record)), 0);
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
    long errors = fwd_upstream_errors(g, "out_of_memory");
    size_t head = head_copy_size(fields, strlen(body) + 1000);

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_mode(g->up, FAKE_UP_HEAD_THEN_HOLD);
    fake_upstream_set_answer(g->up, 200, fields, body);
    if (at_head)
        r = get_failing(g, path, tok, 0, FAIL_ALLOC_EQUAL, head, &logs);
    else
        r = get_failing(g, path, tok, head, FAIL_ALLOC_EQUAL, first_buffer_size(strlen(body)),
                        &logs);
    assert_refused(g, r, logs, errors, 0);
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
                       full_record, false);
}

/* An answer the release filter cannot read: 502, and the outcome line says
 * 502 (before, it said the back end's 200 and "ok"). */
static void test_unreadable_record_outcome(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;
    json_t *line;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, "content-type: application/json\r\n", "{\"fin\":");
    r = fwd_get(g, "/api/t/record", tok);
    assert_problem(r, 502, "upstream_unavailable");
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    line = fake_gw_audit_find(g, fake_req_resp_header(r, "darvaza-request-id"), "forward_result");
    assert_non_null(line);
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 502);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "upstream_error");
    json_decref(line);
    assert_int_equal(fwd_upstream_errors(g, "bad_answer"), 1);
    fake_req_free(r);
}

/*
 * The release filter cannot parse the answer for want of memory: jansson
 * (2.14) returns then without an error code (never its own
 * json_error_out_of_memory), and that is read as ours, not as the
 * service's malformed JSON.  Two places: before the parse starts (the
 * lexer's 16-byte token buffer) and inside it (the record's object, 72
 * bytes on LP64), each the first of its size after the answer's buffer; a
 * jansson that allocates otherwise makes the arming miss and the test fail.
 */
static void test_filter_parse_fails(void **state)
{
    static const size_t sizes[] = {16, 72};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        refused_then_served(*state, "/api/t/record", json_fields, full_record,
                            first_buffer_size(strlen(full_record)), FAIL_ALLOC_EQUAL, sizes[i], 0);
}

/* The filtered record cannot be written out (json_dumps' copy of its text,
 * the filtered length + 1): 502, never the record unfiltered. */
static void test_filter_output_fails(void **state)
{
    refused_then_served(*state, "/api/t/record", json_fields, full_record,
                        first_buffer_size(strlen(full_record)), FAIL_ALLOC_EQUAL,
                        strlen(released_record) + 1, 0);
}

/* The engine cannot take the filtered record (dz_req_respond: its copy of
 * the body, out_len 0 + len + 1, the first block of that size after
 * json_dumps' own copy of the same text): nothing went out, so the client
 * gets the 502 instead of waiting for an answer that never comes. */
static void test_respond_fails(void **state)
{
    size_t len = strlen(released_record) + 1;

    refused_then_served(*state, "/api/t/record", json_fields, full_record, len, FAIL_ALLOC_EQUAL,
                        len, 1);
}

/* The engine cannot take a streamed answer's head (dz_req_start: its copy
 * of the fields, the first allocation after the forwarder's own copy):
 * the rest of the transfer is dropped and the client gets the 502. */
static void test_start_fails(void **state)
{
    refused_then_served(*state, "/api/t/open", answer_fields, answer_body,
                        head_copy_size(answer_fields, strlen(answer_body)), FAIL_ALLOC_AT_LEAST, 1,
                        1);
}

/*
 * The engine cannot take a piece of a streamed body (dz_req_write: the
 * first piece's block, len + 1, after the forwarder's copy of the fields).
 * The head is out, so it is too late for a status: the stream is reset,
 * never ended as if the answer were complete, and the piece is not sent
 * with a hole after it.  The outcome line keeps the status the client got.
 */
static void test_write_fails(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    const char *rid;
    long errors = fwd_upstream_errors(g, "out_of_memory");

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, answer_fields, answer_body);
    r = get_failing(g, "/api/t/open", tok, head_copy_size(answer_fields, strlen(answer_body)),
                    FAIL_ALLOC_EQUAL, strlen(answer_body) + 1, &logs);
    assert_int_equal(fake_req_invalid_answers(r), 0);
    assert_int_equal(fake_req_nomem_answers(r), 1);
    assert_int_equal(fake_req_status(r), 200);
    assert_true(fake_req_streamed(r));
    assert_true(fake_req_was_reset(r));
    assert_false(fake_req_complete(r));
    assert_string_equal(fake_req_resp_body(r, NULL), "");
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    assert_outcome(g, rid, 200, "out_of_memory");
    assert_warned(logs, rid, true);
    assert_int_equal(fwd_upstream_errors(g, "out_of_memory"), errors + 1);
    free(logs);
    fake_req_free(r);
    assert_served_again(g, "/api/t/open", tok);
}

/* No audit line made this request's "sent" line (rid), nor any other
 * forward line: the request never left. */
static void assert_no_forward_lines(struct fake_gw *g, const char *rid)
{
    json_t *line = fake_gw_audit_find(g, rid, NULL);

    assert_null(line);
}

/* The one "forward_result" line in the log (its request never got an
 * answer to read its id from). */
static json_t *only_outcome(struct fake_gw *g)
{
    char *text = fake_gw_audit_text(g);
    char *save = NULL;
    json_t *found = NULL;
    unsigned n = 0;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "type"));

        if (t && strcmp(t, "forward_result") == 0 && n++ == 0)
            found = json_incref(j);
        json_decref(j);
    }
    free(text);
    assert_int_equal(n, 1);
    return found;
}

static bool failure_taken(void *arg)
{
    (void)arg;
    return !fail_alloc_armed();
}

/*
 * The client goes between the refusal of an answer and the refusal's
 * posted end (the forward's timer, run on the next loop turn): the copy of
 * the answer's fields fails, the loop turn it failed in is the last one
 * spun, and the client resets its stream before the next.  The outcome
 * line keeps the refusal's reason (before: "client_gone", the reason lost);
 * the client got nothing.
 */
static void test_refusal_reason_kept_when_client_goes(void **state)
{
    struct fake_gw *g = *state;
    char tok[64];
    struct dz_req *r;
    json_t *line;
    bool taken;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, answer_fields, answer_body);
    r = fake_gw_req(g, "GET", "/api/t/open");
    fake_req_bearer(r, tok);
    fail_alloc_arm(0, FAIL_ALLOC_EQUAL, head_copy_size(answer_fields, strlen(answer_body)));
    fake_gw_send(g, r);
    /* One loop turn at a time: stopped right after the one that refused. */
    taken = fake_spin(g->w, failure_taken, NULL, FAKE_GW_TIMEOUT_MS);
    fail_alloc_disarm();
    assert_true(taken);
    /* In the window: the refusal's 502 is not out yet. */
    assert_int_equal(fake_req_status(r), 0);
    fake_req_reset(r);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_status(r), 0);
    line = only_outcome(g);
    assert_string_equal(json_string_value(json_object_get(line, "result")), "out_of_memory");
    assert_true(json_is_true(json_object_get(line, "sent")));
    json_decref(line);
    fake_req_free(r);
    assert_served_again(g, "/api/t/open", tok);
}

/* The block each audit line of a forward reserves for its values
 * (auditrec.c: dz_buf_reserve takes room + 1): the request line's, with
 * dz_audit_rec_new's room, and the outcome line's, sized from its members'
 * maxima (forward.h), the request id's and the audit chain's. */
#define REQUEST_LINE_BLOCK (1024 + 1)
#define OUTCOME_LINE_BLOCK                                                                         \
    (DZ_FORWARD_OUTCOME_VALUES_MAX + DZ_AUDITREC_PLAIN_STR_MAX(DZ_RCTX_RID_MAX) +                  \
     DZ_AUDIT_CHAIN_VALUES_MAX + 1)

/*
 * One of the two lines cannot be reserved (the hook armed for its block:
 * after, when not 0, the block allocated just before it): the request
 * does not leave.  503 service_unavailable, the back end never asked, no
 * line on record for the request (none saying it was sent), none lost.
 */
static void reserve_fails(struct fake_gw *g, size_t after, size_t size)
{
    char tok[64];
    char *logs = NULL;
    struct dz_req *r;
    const char *rid;

    fake_gw_session(g, FIN_A, "password", DZ_AMR_PWD, "low", NULL, tok);
    fake_upstream_set_answer(g->up, 200, answer_fields, answer_body);
    r = get_failing(g, "/api/t/open", tok, after, FAIL_ALLOC_EQUAL, size, &logs);
    free(logs);
    assert_problem(r, 503, "service_unavailable");
    assert_null(strstr(fake_req_resp_body(r, NULL), answer_body));
    assert_int_equal(fake_upstream_requests(g->up), 0);
    rid = fake_req_resp_header(r, "darvaza-request-id");
    assert_non_null(rid);
    assert_true(fake_spin_idle(g->w, FAKE_GW_TIMEOUT_MS));
    assert_int_equal(fake_req_refs(r), 1);
    assert_no_forward_lines(g, rid);
    assert_int_equal(fwd_metric(g, "darvaza_audit_lost_total{kind=\"outcome\"}"), 0);
    fake_req_free(r);
    assert_served_again(g, "/api/t/open", tok);
}

/* The outcome line is reserved first (audit_sent): its block is the
 * request's first of that size. */
static void test_outcome_reserve_fails(void **state)
{
    reserve_fails(*state, 0, OUTCOME_LINE_BLOCK);
}

/* The request line's block comes right after the outcome's reservation:
 * armed after it, the hook can only take the request line's. */
static void test_request_line_reserve_fails(void **state)
{
    reserve_fails(*state, OUTCOME_LINE_BLOCK, REQUEST_LINE_BLOCK);
}

/*
 * The largest outcome line the forwarder can write fits the room its
 * reservation holds: every member at its longest (a 63-byte service name,
 * the longest result, the widest integers, a jti, a 31-byte request id),
 * then the members the audit writer adds (an instance of quotes, each
 * escaped, a time as long as its buffer, the hash), all set while any
 * allocation would fail: none is asked for and the record stays good.
 */
static void fill(char *s, size_t size, char c)
{
    memset(s, c, size - 1);
    s[size - 1] = '\0';
}

static void test_outcome_room_holds_largest_line(void **state)
{
    char service[DZ_POLICY_SERVICE_NAME_MAX + 1];
    char jti[DZ_ASSERTION_JTI_LEN + 1];
    char rid[DZ_RCTX_RID_MAX + 1];
    char instance[DZ_AUDIT_INSTANCE_MAX + 1];
    char when[DZ_RFC3339_MS_MAX];
    char prev[65];
    struct dz_gw_audit_slot *gs;
    struct dz_audit_rec *rec;
    bool missed;

    (void)state;
    fill(service, sizeof(service), 'a');
    fill(jti, sizeof(jti), 'J');
    fill(rid, sizeof(rid), 'f');
    fill(instance, sizeof(instance), '"');
    fill(when, sizeof(when), '9');
    fill(prev, sizeof(prev), 'e');
    gs = dz_gw_audit_slot_new("forward_result", "outcome", DZ_FORWARD_OUTCOME_MEMBERS,
                              DZ_FORWARD_OUTCOME_VALUES_MAX);
    rec = dz_gw_audit_slot_rec(gs);
    assert_non_null(rec);
    assert_int_equal(strlen("upstream_timeout"), DZ_FORWARD_OUTCOME_RESULT_MAX);
    fail_alloc_arm(0, FAIL_ALLOC_AT_LEAST, 1);
    /* forward.c audit_outcome */
    dz_audit_rec_str(rec, "service", service);
    dz_audit_rec_str(rec, "result", "upstream_timeout");
    dz_audit_rec_int(rec, "status", LLONG_MIN);
    dz_audit_rec_int(rec, "bytes", LLONG_MIN);
    dz_audit_rec_bool(rec, "sent", false);
    dz_audit_rec_opt_str(rec, "jti", jti);
    /* gwasync.c dz_gw_audit_slot_append */
    dz_audit_rec_opt_str(rec, "rid", rid);
    /* audit.c rec_line */
    dz_audit_rec_str(rec, "instance", instance);
    dz_audit_rec_int(rec, "seq", LLONG_MIN);
    dz_audit_rec_str(rec, "time", when);
    dz_audit_rec_str(rec, "prev", prev);
    missed = fail_alloc_armed();
    fail_alloc_disarm();
    assert_true(missed);
    assert_int_equal(dz_audit_rec_error(rec), 0);
    /* A member more than the line has is refused: the count is exact. */
    dz_audit_rec_bool(rec, "extra", true);
    assert_int_equal(dz_audit_rec_error(rec), DZ_ERR_TOOBIG);
    dz_gw_audit_slot_free(gs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_copy_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_copy_fails_buffered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_buffer_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_record_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_parse_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_output_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_respond_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_reserve_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_line_reserve_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_reason_kept_when_client_goes, setup, teardown),
        cmocka_unit_test(test_outcome_room_holds_largest_line),

        cmocka_unit_test_setup_teardown(test_head_copy_fails_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_buffer_fails_held, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
