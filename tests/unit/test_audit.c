/* test_audit.c - the audit log writer and verifier through their public
 * interface: chained lines from many threads, durability before done,
 * tampering (edit, delete, forge) found at the right line, chain continued
 * across reopen, signed heads, refusal of a damaged tail, bounds, and a write
 * failure rolled back.  A fake dz_worker_post stands in for the HTTP engine
 * so completions that go through a worker loop are tested too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/auditrec.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/histo.h"
#include "base/log.h"
#include "base/secret.h"
#include "http/httpd.h"
#include "keys/ecdsa_sig.h"

/* ------------------------------------------------------------ helpers --- */

static char tmpdir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_audit_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(path, sizeof(path), "%s/audit.log", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static char *read_all(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all_file(const char *p, const char *data, size_t len)
{
    FILE *f = fopen(p, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Offset of the start of 1-based line n in buf. */
static size_t line_off(const char *buf, size_t len, unsigned n)
{
    size_t off = 0;

    for (unsigned i = 1; i < n; i++) {
        const char *nl = memchr(buf + off, '\n', len - off);
        assert_non_null(nl);
        off = (size_t)(nl - buf) + 1;
    }
    return off;
}

static size_t line_len(const char *buf, size_t len, size_t off)
{
    const char *nl = memchr(buf + off, '\n', len - off);

    assert_non_null(nl);
    return (size_t)(nl - (buf + off));
}

/* Completion bookkeeping: done() records each result by rid. */
#define MAXREC 4096
struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned done;
    unsigned ok;
    int results[MAXREC];
    bool durable[MAXREC]; /* the line was in the file when done ran */
    bool check_durable;
};
static struct tally T;

static void tally_reset(bool check_durable)
{
    pthread_mutex_destroy(&T.mu);
    pthread_cond_destroy(&T.cv);
    memset(&T, 0, sizeof(T));
    pthread_mutex_init(&T.mu, NULL);
    pthread_cond_init(&T.cv, NULL);
    T.check_durable = check_durable;
}

static bool file_has(const char *needle)
{
    size_t len;
    char *buf = read_all(path, &len);
    bool found = strstr(buf, needle) != NULL;

    free(buf);
    return found;
}

static void on_done(void *arg, int result)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    bool durable = false;

    if (T.check_durable && result == 0) {
        char needle[64];
        snprintf(needle, sizeof(needle), "\"rid\":\"r%u\"", id);
        durable = file_has(needle);
    }
    pthread_mutex_lock(&T.mu);
    T.results[id] = result;
    T.durable[id] = durable;
    T.done++;
    if (result == 0)
        T.ok++;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

static void wait_done(unsigned n)
{
    pthread_mutex_lock(&T.mu);
    for (int i = 0; T.done < n && i < 1000; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&T.cv, &T.mu, &ts);
    }
    assert_int_equal(T.done, n);
    pthread_mutex_unlock(&T.mu);
}

static json_t *rec(unsigned id)
{
    char rid[32];

    snprintf(rid, sizeof(rid), "r%u", id);
    return json_pack("{s:s, s:s, s:s, s:s, s:i}", "type", "forward", "rid", rid, "fin",
                     "38001085718", "route", "registry-lookup", "status", 200);
}

static struct dz_audit *open_ok(void)
{
    struct dz_audit *a = NULL;

    assert_int_equal(dz_audit_open(path, &a), 0);
    assert_non_null(a);
    return a;
}

static void append_n(struct dz_audit *a, unsigned first, unsigned n)
{
    for (unsigned i = first; i < first + n; i++)
        assert_int_equal(dz_audit_append(a, rec(i), NULL, on_done, (void *)(uintptr_t)i), 0);
}

static void write_log(unsigned n)
{
    struct dz_audit *a = open_ok();

    tally_reset(false);
    append_n(a, 0, n);
    wait_done(n);
    dz_audit_close(a);
}

static void verify_ok(const struct dz_audit_keys *keys, struct dz_audit_report *r)
{
    assert_int_equal(dz_audit_verify_file(path, keys, r), 0);
    if (r->first_bad_line)
        fprintf(stderr, "unexpected: line %" PRIu64 ": %s: %s\n", r->first_bad_line, r->reason,
                r->detail);
    assert_int_equal(r->first_bad_line, 0);
    assert_null(r->reason);
}

/* The forward pair: a "sent" line before the request leaves, its
 * "forward_result" after, matched by rid; a sent line with no outcome is
 * counted as open (in flight when the file ended), an outcome without its
 * sent line as unmatched; neither breaks the chain. */
static void test_forward_pairs(void **state)
{
    struct dz_audit *a = open_ok();
    struct dz_audit_report r;
    const char *lines[][3] = {
        {"forward", "sent", "p1"},      {"forward_result", NULL, "p1"}, {"forward", "sent", "p2"},
        {"forward_result", NULL, "p0"}, {"forward", NULL, "p3"}, /* a deny: one line */
    };

    (void)state;
    tally_reset(false);
    for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        json_t *j = json_pack("{s:s, s:s}", "type", lines[i][0], "rid", lines[i][2]);
        if (lines[i][1])
            json_object_set_new(j, "phase", json_string(lines[i][1]));
        assert_int_equal(dz_audit_append(a, j, NULL, on_done, (void *)(uintptr_t)i), 0);
    }
    wait_done(sizeof(lines) / sizeof(lines[0]));
    dz_audit_close(a);
    verify_ok(NULL, &r);
    assert_int_equal(r.forwards_sent, 2);
    assert_int_equal(r.forwards_open, 1);     /* p2 */
    assert_int_equal(r.results_unmatched, 1); /* p0 */
}

/* Cut the value after key out of line (up to the next ',' or '}', values
 * here hold neither). */
static void mask_value(char *line, const char *key)
{
    char *v = strstr(line, key);
    char *end;

    assert_non_null(v);
    v += strlen(key);
    end = v + strcspn(v, ",}");
    memmove(v, end, strlen(end) + 1);
}

/* Records built without jansson (auditrec.h) go into the same chain as
 * jansson's, in order, and verify; each line has the bytes of the jansson
 * record with the same members (the chain members are the writer's); the
 * same refusals as dz_audit_append. */
static void test_rec_records(void **state)
{
    struct dz_audit *a = open_ok();
    struct dz_audit_report r;
    struct dz_audit_rec *x;
    char *buf = NULL, *line, *save = NULL;
    size_t n = 0;
    char *first = NULL;
    FILE *f;
    unsigned i = 0;

    (void)state;
    tally_reset(false);
    for (i = 0; i < 6; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "q%u", i);
        if (i % 2) {
            x = dz_audit_rec_new("forward_result");
            dz_audit_rec_str(x, "rid", rid);
            dz_audit_rec_str(x, "path", "/a\xc3\xa9\"\n");
            dz_audit_rec_int(x, "status", 200);
            dz_audit_rec_bool(x, "sent", true);
            assert_int_equal(dz_audit_append_rec(a, x, NULL, on_done, (void *)(uintptr_t)i), 0);
        } else {
            assert_int_equal(dz_audit_append(a,
                                             json_pack("{s:s, s:s, s:s, s:i, s:b}", "type",
                                                       "forward_result", "rid", rid, "path",
                                                       "/a\xc3\xa9\"\n", "status", 200, "sent", 1),
                                             NULL, on_done, (void *)(uintptr_t)i),
                             0);
        }
    }
    wait_done(6);
    assert_int_equal(T.ok, 6);

    /* Refused like jansson records: a head, a chain member, a bad builder. */
    x = dz_audit_rec_new("head");
    assert_int_equal(dz_audit_append_rec(a, x, NULL, on_done, NULL), DZ_ERR_INVAL);
    x = dz_audit_rec_new("login");
    dz_audit_rec_int(x, "seq", 1);
    assert_int_equal(dz_audit_append_rec(a, x, NULL, on_done, NULL), DZ_ERR_INVAL);
    x = dz_audit_rec_new("login");
    dz_audit_rec_str(x, "time", "now");
    assert_int_equal(dz_audit_append_rec(a, x, NULL, on_done, NULL), DZ_ERR_INVAL);
    x = dz_audit_rec_new("login");
    dz_audit_rec_str(x, "path", "\xff");
    assert_int_equal(dz_audit_append_rec(a, x, NULL, on_done, NULL), DZ_ERR_INVAL);
    x = dz_audit_rec_new("login");
    assert_int_equal(dz_audit_append_rec(a, x, NULL, NULL, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append_rec(a, NULL, NULL, on_done, NULL), DZ_ERR_INVAL);
    assert_int_equal(T.done, 6);
    dz_audit_close(a);
    verify_ok(NULL, &r);
    assert_int_equal(r.lines, 6);

    /* Every line, with the values of its chain members and rid cut out, has
     * the same bytes: the jansson ones and the others alike. */
    f = fopen(path, "r");
    assert_non_null(f);
    assert_true(getdelim(&buf, &n, '\0', f) > 0);
    fclose(f);
    i = 0;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        mask_value(line, "\"prev\":");
        mask_value(line, "\"rid\":");
        mask_value(line, "\"seq\":");
        mask_value(line, "\"time\":");
        if (i == 0)
            first = strdup(line);
        else
            assert_string_equal(line, first);
    }
    assert_int_equal(i, 6);
    assert_non_null(strstr(first, "\"path\":\"/a\\u00E9\\\"\\n\""));
    free(first);
    free(buf);
}

/* ----------------------------------------------------------- test key --- */

static EVP_PKEY *test_key;
static EVP_PKEY *other_key;

/* ES256 over data with a test key, as the head signer answers: raw r||s. */
static int sign_with(EVP_PKEY *k, const void *data, size_t len, unsigned char sig[64])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[DZ_ECDSA_SIG_DER_MAX];
    size_t der_len = sizeof(der);
    int rc = DZ_ERR_CRYPTO;

    if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
        EVP_DigestSign(ctx, der, &der_len, data, len) == 1)
        rc = dz_ecdsa_sig_der_to_raw(der, der_len, 32, sig);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static atomic_int signs;
static atomic_bool sign_fails;

static int test_sign(void *arg, const void *data, size_t len, unsigned char sig[64])
{
    assert_ptr_equal(arg, test_key);
    if (atomic_load(&sign_fails))
        return DZ_ERR_PKCS11;
    atomic_fetch_add(&signs, 1);
    return sign_with(arg, data, len, sig);
}

static EVP_PKEY *find_key(void *arg, const char *kid)
{
    (void)arg;
    return strcmp(kid, "audit-test-1") == 0 ? test_key : NULL;
}

static const struct dz_audit_keys KEYS = {find_key, NULL};

static int group_setup(void **state)
{
    (void)state;
    dz_log_set_level(DZ_LOG_WARN);
    test_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    pthread_mutex_init(&T.mu, NULL);
    pthread_cond_init(&T.cv, NULL);
    return test_key && other_key ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(test_key);
    EVP_PKEY_free(other_key);
    pthread_mutex_destroy(&T.mu);
    pthread_cond_destroy(&T.cv);
    return 0;
}

/* --------------------------------------------- fake worker (httpd.h) --- */

/* The engine's dz_worker_post, replaced: a list drained by the test, which
 * plays the loop thread.  A stopping worker refuses, like the real one. */
struct dz_worker {
    pthread_mutex_t mu;
    struct posted {
        void (*fn)(void *);
        void *arg;
    } q[MAXREC];
    size_t n;
    bool stopping;
};

int dz_worker_post(struct dz_worker *w, void (*fn)(void *arg), void *arg)
{
    int rc = 0;

    pthread_mutex_lock(&w->mu);
    if (w->stopping)
        rc = DZ_ERR_STATE;
    else if (w->n == MAXREC)
        rc = DZ_ERR_NOMEM;
    else
        w->q[w->n++] = (struct posted){fn, arg};
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* The audit writer batches records per running loop; this fake has none. */
struct ev_loop *dz_worker_loop(struct dz_worker *w)
{
    return NULL;
}

static size_t worker_run(struct dz_worker *w)
{
    size_t n;

    pthread_mutex_lock(&w->mu);
    n = w->n;
    for (size_t i = 0; i < n; i++)
        w->q[i].fn(w->q[i].arg);
    w->n = 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* -------------------------------------------------------------- tests --- */

struct thread_arg {
    struct dz_audit *a;
    unsigned first;
    unsigned n;
};

static void *appender(void *p)
{
    struct thread_arg *t = p;

    for (unsigned i = t->first; i < t->first + t->n; i++) {
        int rc;
        /* A full queue is an immediate answer, never a wait: retry here. */
        while ((rc = dz_audit_append(t->a, rec(i), NULL, on_done, (void *)(uintptr_t)i)) ==
               DZ_ERR_UNAVAILABLE)
            sleep_ms(1);
        if (rc != 0)
            return (void *)1;
    }
    return NULL;
}

/* Many threads, one chain; every done() sees its own line already in the
 * file; the verifier accepts the result; seq runs 1..N, first prev zeros. */
static void test_threads_chain(void **state)
{
    enum { THREADS = 4, PER = 150 };
    pthread_t th[THREADS];
    struct thread_arg ta[THREADS];
    struct dz_audit *a = open_ok();
    struct dz_audit_report r;
    struct dz_audit_line l;
    struct stat st;
    size_t len;
    char *buf;
    unsigned seen[THREADS * PER] = {0};

    (void)state;
    tally_reset(true);
    assert_int_equal(dz_audit_set_limits(a, 64, 16), 0);
    for (unsigned i = 0; i < THREADS; i++) {
        ta[i] = (struct thread_arg){a, i * PER, PER};
        assert_int_equal(pthread_create(&th[i], NULL, appender, &ta[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    wait_done(THREADS * PER);
    assert_int_equal(T.ok, THREADS * PER);
    for (unsigned i = 0; i < THREADS * PER; i++) {
        assert_int_equal(T.results[i], 0);
        assert_true(T.durable[i]);
    }
    dz_audit_close(a);

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    verify_ok(NULL, &r);
    assert_int_equal(r.lines, THREADS * PER);
    assert_int_equal(r.last_seq, THREADS * PER);
    assert_int_equal(r.heads_seen, 0);
    assert_int_equal(r.unsigned_tail, THREADS * PER);

    /* Each record appears exactly once, lines are compact with sorted keys. */
    buf = read_all(path, &len);
    assert_non_null(strstr(buf,
                           "\"prev\":\""
                           "0000000000000000000000000000000000000000000000000000000000000000\""));
    for (unsigned n = 1; n <= THREADS * PER; n++) {
        size_t off = line_off(buf, len, n);
        size_t ll = line_len(buf, len, off);
        json_t *j = json_loadb(buf + off, ll, 0, NULL);
        const char *rid;
        char *again;

        assert_int_equal(dz_audit_parse_line(buf + off, ll, &l), 0);
        assert_int_equal(l.seq, n);
        assert_non_null(j);
        rid = json_string_value(json_object_get(j, "rid"));
        assert_non_null(rid);
        seen[strtoul(rid + 1, NULL, 10)]++;
        again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        assert_int_equal(strlen(again), ll);
        assert_memory_equal(again, buf + off, ll);
        free(again);
        json_decref(j);
    }
    for (unsigned i = 0; i < THREADS * PER; i++)
        assert_int_equal(seen[i], 1);
    free(buf);
}

/* Changing line 10 is reported at line 11, whose prev no longer matches,
 * and the wording names line 10. */
static void test_edit_middle(void **state)
{
    struct dz_audit_report r;
    size_t len;
    char *buf;
    char *p;

    (void)state;
    write_log(20);
    buf = read_all(path, &len);
    p = strstr(buf + line_off(buf, len, 10), "38001085718");
    assert_non_null(p);
    p[10] = '9'; /* another FIN, still valid JSON */
    write_all_file(path, buf, len);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 11);
    assert_string_equal(r.reason, "chain_broken");
    assert_non_null(strstr(r.detail, "line 10 was changed"));
    assert_int_equal(r.lines, 10);

    /* The same edit breaking JSON is reported at the edited line itself. */
    p[10] = '"';
    write_all_file(path, buf, len);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 10);
    assert_string_equal(r.reason, "malformed_json");
    free(buf);
}

/* Deleting line 7 is reported at the line now in its place; deleting the
 * first line is reported at line 1. */
static void test_delete_line(void **state)
{
    struct dz_audit_report r;
    size_t len;
    size_t off7;
    size_t len7;
    char *buf;

    (void)state;
    write_log(12);
    buf = read_all(path, &len);
    off7 = line_off(buf, len, 7);
    len7 = line_len(buf, len, off7) + 1;
    memmove(buf + off7, buf + off7 + len7, len - off7 - len7);
    write_all_file(path, buf, len - len7);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 7);
    assert_string_equal(r.reason, "chain_broken");
    assert_non_null(strstr(r.detail, "1 line(s) were deleted"));
    free(buf);

    unlink(path);
    write_log(5);
    buf = read_all(path, &len);
    len7 = line_len(buf, len, 0) + 1;
    write_all_file(path, buf + len7, len - len7);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 1);
    assert_string_equal(r.reason, "chain_broken");
    free(buf);

    /* Swapping two lines is found too. */
    unlink(path);
    write_log(4);
    buf = read_all(path, &len);
    {
        size_t o2 = line_off(buf, len, 2), l2 = line_len(buf, len, o2) + 1;
        size_t o3 = o2 + l2, l3 = line_len(buf, len, o3) + 1;
        char *sw = malloc(len);
        assert_non_null(sw);
        memcpy(sw, buf, o2);
        memcpy(sw + o2, buf + o3, l3);
        memcpy(sw + o2 + l3, buf + o2, l2);
        memcpy(sw + o2 + l3 + l2, buf + o3 + l3, len - o3 - l3);
        write_all_file(path, sw, len);
        free(sw);
    }
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 2);
    assert_string_equal(r.reason, "chain_broken");
    free(buf);
}

static void test_reopen_continues(void **state)
{
    struct dz_audit_report r;

    (void)state;
    write_log(5);
    write_log(7);
    write_log(0);
    verify_ok(NULL, &r);
    assert_int_equal(r.lines, 12);
    assert_int_equal(r.last_seq, 12);
}

/* A head is signed at close; with interval heads appear while running; all
 * verify with the key; without keys they are counted, not verified. */
static void test_signed_heads(void **state)
{
    struct dz_audit_report r;
    struct dz_audit *a;
    size_t len;
    char *buf;

    (void)state;
    atomic_store(&signs, 0);
    a = open_ok();
    tally_reset(false);
    assert_int_equal(dz_audit_set_head_signer(a, test_sign, test_key, "audit-test-1", 0), 0);
    append_n(a, 0, 10);
    wait_done(10);
    dz_audit_close(a);
    assert_int_equal(atomic_load(&signs), 1);
    verify_ok(&KEYS, &r);
    assert_int_equal(r.lines, 11);
    assert_int_equal(r.heads_seen, 1);
    assert_int_equal(r.heads_verified, 1);
    assert_int_equal(r.last_head_seq, 11);
    assert_int_equal(r.unsigned_tail, 0);
    buf = read_all(path, &len);
    assert_non_null(strstr(buf + line_off(buf, len, 11), "\"type\":\"head\""));
    free(buf);

    /* A clean reopen and close adds no second head over the same chain. */
    a = open_ok();
    assert_int_equal(dz_audit_set_head_signer(a, test_sign, test_key, "audit-test-1", 0), 0);
    dz_audit_close(a);
    assert_int_equal(atomic_load(&signs), 1);

    /* Periodic heads: 30 ms interval, records spread over ~200 ms. */
    a = open_ok();
    assert_int_equal(dz_audit_set_head_signer(a, test_sign, test_key, "audit-test-1", 30), 0);
    tally_reset(false);
    for (unsigned i = 0; i < 8; i++) {
        append_n(a, i, 1);
        sleep_ms(25);
    }
    wait_done(8);
    /* A head for the last line comes by itself, before close. */
    for (int i = 0; i < 200; i++) {
        sleep_ms(10);
        verify_ok(&KEYS, &r);
        if (r.unsigned_tail == 0)
            break;
    }
    assert_int_equal(r.unsigned_tail, 0);
    dz_audit_close(a);
    verify_ok(&KEYS, &r);
    assert_true(r.heads_verified >= 3);
    assert_int_equal(r.heads_verified, r.heads_seen);
    assert_int_equal(r.unsigned_tail, 0);

    verify_ok(NULL, &r);
    assert_int_equal(r.heads_verified, 0);
    assert_true(r.heads_seen >= 3);

    /* A failing signer never stops records; the head just is not there. */
    unlink(path);
    atomic_store(&sign_fails, true);
    a = open_ok();
    assert_int_equal(dz_audit_set_head_signer(a, test_sign, test_key, "audit-test-1", 0), 0);
    tally_reset(false);
    append_n(a, 0, 3);
    wait_done(3);
    assert_int_equal(T.ok, 3);
    dz_audit_close(a);
    atomic_store(&sign_fails, false);
    verify_ok(&KEYS, &r);
    assert_int_equal(r.lines, 3);
    assert_int_equal(r.heads_seen, 0);
    assert_int_equal(r.unsigned_tail, 3);
}

/* Replace the last line (a head) of the file with text. */
static void replace_last_line(const char *line)
{
    size_t len;
    char *buf = read_all(path, &len);
    const char *end = buf + len - 1;
    size_t keep;
    struct dz_buf out;

    assert_true(len > 0 && *end == '\n');
    while (end > buf && end[-1] != '\n')
        end--;
    keep = (size_t)(end - buf);
    dz_buf_init(&out, 1 << 20);
    assert_int_equal(dz_buf_append(&out, buf, keep), 0);
    assert_int_equal(dz_buf_appendf(&out, "%s\n", line), 0);
    write_all_file(path, out.data, out.len);
    dz_buf_cleanup(&out);
    free(buf);
}

/* The head line as the writer would write it for (seq, prev), signed with k
 * over the message for (seq, head). */
static char *head_line(uint64_t seq, const char *prev, const char *head, const char *kid,
                       EVP_PKEY *k)
{
    char msg[DZ_AUDIT_HEAD_MSG_MAX];
    unsigned char sig[64];
    char b64[96];
    json_t *j;
    char *s;

    assert_int_equal(sign_with(k, msg, dz_audit_head_message(seq, head, msg), sig), 0);
    dz_b64_encode_to(sig, 64, true, b64);
    j = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "type", "head", "seq", (json_int_t)seq,
                  "time", "2026-01-01T00:00:00.000Z", "prev", prev, "head", head, "kid", kid, "sig",
                  b64);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(j);
    return s;
}

/* Forged or altered heads are found: a head signed by another key, a head
 * naming an unknown kid, a head whose "head" is not the chain's. */
static void test_forged_head(void **state)
{
    struct dz_audit_report r;
    struct dz_audit *a;
    size_t len;
    char *buf;
    char prev[65];
    struct dz_audit_line l;
    char *forged;

    (void)state;
    a = open_ok();
    tally_reset(false);
    assert_int_equal(dz_audit_set_head_signer(a, test_sign, test_key, "audit-test-1", 0), 0);
    append_n(a, 0, 5);
    wait_done(5);
    dz_audit_close(a);

    /* prev of line 6 = hash of line 5. */
    buf = read_all(path, &len);
    {
        size_t o5 = line_off(buf, len, 5);
        assert_int_equal(dz_audit_parse_line(buf + o5, line_len(buf, len, o5), &l), 0);
        dz_hex(l.hash, 32, prev);
    }
    free(buf);

    /* Sanity: our own construction with the right key verifies. */
    forged = head_line(6, prev, prev, "audit-test-1", test_key);
    replace_last_line(forged);
    free(forged);
    verify_ok(&KEYS, &r);
    assert_int_equal(r.heads_verified, 1);

    forged = head_line(6, prev, prev, "audit-test-1", other_key);
    replace_last_line(forged);
    free(forged);
    assert_int_equal(dz_audit_verify_file(path, &KEYS, &r), 0);
    assert_int_equal(r.first_bad_line, 6);
    assert_string_equal(r.reason, "bad_head_signature");
    /* Without keys the signature is not checked (documented). */
    verify_ok(NULL, &r);

    forged = head_line(6, prev, prev, "evil", other_key);
    replace_last_line(forged);
    free(forged);
    assert_int_equal(dz_audit_verify_file(path, &KEYS, &r), 0);
    assert_int_equal(r.first_bad_line, 6);
    assert_string_equal(r.reason, "unknown_kid");

    /* A good signature over another head value does not vouch for this chain. */
    forged = head_line(6, prev, "1111111111111111111111111111111111111111111111111111111111111111",
                       "audit-test-1", test_key);
    replace_last_line(forged);
    free(forged);
    assert_int_equal(dz_audit_verify_file(path, &KEYS, &r), 0);
    assert_int_equal(r.first_bad_line, 6);
    assert_string_equal(r.reason, "head_mismatch");

    /* Signature for seq 7 replayed at seq 6. */
    forged = head_line(7, prev, prev, "audit-test-1", test_key);
    {
        /* same sig, but seq field 6 */
        json_t *j = json_loads(forged, 0, NULL);
        char *s;
        json_object_set_new(j, "seq", json_integer(6));
        s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        replace_last_line(s);
        free(s);
        json_decref(j);
    }
    free(forged);
    assert_int_equal(dz_audit_verify_file(path, &KEYS, &r), 0);
    assert_int_equal(r.first_bad_line, 6);
    assert_string_equal(r.reason, "bad_head_signature");
}

/* Cutting the tail after the last signed head leaves a valid chain: the
 * documented limit, visible as last_head_seq / unsigned_tail. */
static void test_truncated_tail_limit(void **state)
{
    struct dz_audit_report r;
    size_t len;
    char *buf;

    (void)state;
    write_log(6);
    buf = read_all(path, &len);
    write_all_file(path, buf, line_off(buf, len, 5));
    free(buf);
    verify_ok(NULL, &r);
    assert_int_equal(r.lines, 4);
    assert_int_equal(r.unsigned_tail, 4);
    assert_int_equal(r.last_head_seq, 0);
}

/* A damaged tail refuses to open (partial line, garbage, not ours); an
 * empty file starts a new chain. */
static void test_corrupt_tail(void **state)
{
    struct dz_audit *a = NULL;
    size_t len;
    char *buf;

    (void)state;
    write_log(3);
    buf = read_all(path, &len);

    write_all_file(path, buf, len - 5); /* no final newline */
    assert_int_equal(dz_audit_open(path, &a), DZ_ERR_PARSE);
    assert_null(a);

    {
        struct dz_buf b;
        dz_buf_init(&b, 1 << 20);
        assert_int_equal(dz_buf_append(&b, buf, len), 0);
        assert_int_equal(dz_buf_append_str(&b, "{\"seq\":4,\"prev\":\"zz\"}\n"), 0);
        write_all_file(path, b.data, b.len);
        dz_buf_cleanup(&b);
    }
    assert_int_equal(dz_audit_open(path, &a), DZ_ERR_PARSE);
    write_all_file(path, "hello\n", 6);
    assert_int_equal(dz_audit_open(path, &a), DZ_ERR_PARSE);
    write_all_file(path, "\n", 1);
    assert_int_equal(dz_audit_open(path, &a), DZ_ERR_PARSE);

    /* Intact again: opens. */
    write_all_file(path, buf, len);
    a = open_ok();
    dz_audit_close(a);
    free(buf);

    write_all_file(path, "", 0);
    write_log(2);
    {
        struct dz_audit_report r;
        verify_ok(NULL, &r);
        assert_int_equal(r.lines, 2);
    }

    /* Not a regular file. */
    assert_int_equal(dz_audit_open(tmpdir, &a), DZ_ERR_IO);
    assert_null(a);
}

static void test_lock(void **state)
{
    struct dz_audit *a = open_ok();
    struct dz_audit *b = NULL;

    (void)state;
    assert_int_equal(dz_audit_open(path, &b), DZ_ERR_STATE);
    assert_null(b);
    dz_audit_close(a);
    b = open_ok();
    dz_audit_close(b);
    dz_audit_close(NULL);
}

/* Bad records are refused at once (and consumed: ASan checks the leak). */
static void test_bad_records(void **state)
{
    struct dz_audit *a = open_ok();
    json_t *big;
    char *s;

    (void)state;
    tally_reset(false);
    assert_int_equal(dz_audit_append(a, json_array(), NULL, on_done, NULL), DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append(a, json_pack("{s:s}", "rid", "x"), NULL, on_done, NULL),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append(a, json_pack("{s:i}", "type", 1), NULL, on_done, NULL),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append(a, json_pack("{s:s}", "type", "head"), NULL, on_done, NULL),
                     DZ_ERR_INVAL);
    assert_int_equal(
        dz_audit_append(a, json_pack("{s:s, s:i}", "type", "login", "seq", 1), NULL, on_done, NULL),
        DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append(a, json_pack("{s:s, s:s}", "type", "login", "prev", "0"), NULL,
                                     on_done, NULL),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append(a, json_pack("{s:s}", "type", "login"), NULL, NULL, NULL),
                     DZ_ERR_INVAL);
    assert_int_equal(dz_audit_append(a, NULL, NULL, on_done, NULL), DZ_ERR_INVAL);
    assert_int_equal(T.done, 0);

    /* Over DZ_AUDIT_LINE_MAX: refused through done, chain unharmed.  A
     * string with newlines and non-ASCII stays on one ASCII line. */
    s = malloc(DZ_AUDIT_LINE_MAX + 10);
    assert_non_null(s);
    memset(s, 'x', DZ_AUDIT_LINE_MAX + 9);
    s[DZ_AUDIT_LINE_MAX + 9] = '\0';
    big = json_pack("{s:s, s:s}", "type", "login", "rid", s);
    free(s);
    assert_int_equal(dz_audit_append(a, big, NULL, on_done, (void *)(uintptr_t)1), 0);
    assert_int_equal(
        dz_audit_append(a, json_pack("{s:s, s:s}", "type", "login", "rid", "a\nb\"c\xc3\xa9"), NULL,
                        on_done, (void *)(uintptr_t)2),
        0);
    wait_done(2);
    assert_int_equal(T.results[1], DZ_ERR_TOOBIG);
    assert_int_equal(T.results[2], 0);
    dz_audit_close(a);
    {
        struct dz_audit_report r;
        verify_ok(NULL, &r);
        assert_int_equal(r.lines, 1);
    }
    assert_true(file_has("\"rid\":\"a\\nb\\\"c\\u00E9\""));

    assert_int_equal(dz_audit_set_limits(NULL, 1, 1), DZ_ERR_INVAL);
}

/* done() blocks the writer so the queue fills: the next append is
 * DZ_ERR_UNAVAILABLE at once.  After close, appends are DZ_ERR_STATE. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static bool gate_entered;

static void gated_done(void *arg, int result)
{
    pthread_mutex_lock(&gate_mu);
    gate_entered = true;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    on_done(arg, result);
}

static void test_queue_full(void **state)
{
    struct dz_audit *a = open_ok();
    struct dz_audit_slot *s;

    (void)state;
    tally_reset(false);
    gate_open = false;
    gate_entered = false;
    assert_int_equal(dz_audit_set_limits(a, 2, 1), 0);
    assert_int_equal(dz_audit_append(a, rec(0), NULL, gated_done, (void *)(uintptr_t)0), 0);
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    /* Writer is stuck in done(): two fit, the third does not. */
    assert_int_equal(dz_audit_gauge_queued(a), 0);
    assert_int_equal(dz_audit_append(a, rec(1), NULL, on_done, (void *)(uintptr_t)1), 0);
    assert_int_equal(dz_audit_append(a, rec(2), NULL, on_done, (void *)(uintptr_t)2), 0);
    assert_int_equal(dz_audit_gauge_queued(a), 2);
    assert_int_equal(dz_audit_append(a, rec(3), NULL, on_done, (void *)(uintptr_t)3),
                     DZ_ERR_UNAVAILABLE);
    /* A slot (the outcome of an action already taken, its memory held
     * since before the action) is not refused for back-pressure. */
    s = dz_audit_slot_new("forward_result");
    assert_non_null(s);
    dz_audit_rec_str(dz_audit_slot_rec(s), "rid", "slot-past-bound");
    assert_int_equal(dz_audit_append_slot(a, s, NULL, on_done, (void *)(uintptr_t)4), 0);
    assert_int_equal(dz_audit_gauge_queued(a), 3);
    /* An unused slot is freed whole (ASan: no leak); a bad one is refused
     * and freed all the same. */
    dz_audit_slot_free(dz_audit_slot_new("forward_result"));
    dz_audit_slot_free(NULL);
    s = dz_audit_slot_new("forward_result");
    dz_audit_rec_str(dz_audit_slot_rec(s), "seq", "1");
    assert_int_equal(dz_audit_append_slot(a, s, NULL, on_done, NULL), DZ_ERR_INVAL);
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    wait_done(4);
    assert_int_equal(T.ok, 4);
    assert_true(file_has("\"rid\":\"slot-past-bound\""));
    dz_audit_close(a);
}

/* Completions through a worker loop: done runs only when the loop runs;
 * a stopping worker drops the completion instead of running it elsewhere. */
static void test_worker_post(void **state)
{
    struct dz_worker *w = calloc(1, sizeof(*w));
    struct dz_audit *a = open_ok();
    size_t ran = 0;

    (void)state;
    assert_non_null(w);
    pthread_mutex_init(&w->mu, NULL);
    tally_reset(false);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(dz_audit_append(a, rec(i), w, on_done, (void *)(uintptr_t)i), 0);
    /* The results of one durable batch come back in one post per worker. */
    for (int i = 0; i < 2000 && T.ok < 5; i++) {
        sleep_ms(1);
        ran += worker_run(w);
    }
    assert_int_equal(T.ok, 5);
    assert_in_range(ran, 1, 5);

    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(dz_audit_append(a, rec(5), w, on_done, (void *)(uintptr_t)5), 0);
    dz_audit_close(a); /* written, completion dropped */
    assert_int_equal(worker_run(w), 0);
    assert_int_equal(T.done, 5);
    {
        struct dz_audit_report r;
        verify_ok(NULL, &r);
        assert_int_equal(r.lines, 6);
    }
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* A write that fails half-way (file size limit) is taken back: the record
 * gets DZ_ERR_IO, the file still ends on a whole line, the chain goes on. */
static void test_write_failure_rollback(void **state)
{
    struct dz_audit *a;
    struct rlimit old;
    struct rlimit lim;
    struct stat st;
    struct dz_audit_report r;
    json_t *big;
    char pad[2000];

    (void)state;
    signal(SIGXFSZ, SIG_IGN);
    write_log(3);
    assert_int_equal(stat(path, &st), 0);
    a = open_ok();
    tally_reset(false);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    big = json_pack("{s:s, s:s}", "type", "login", "rid", pad);
    assert_int_equal(dz_audit_append(a, big, NULL, on_done, (void *)(uintptr_t)0), 0);
    wait_done(1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(T.results[0], DZ_ERR_IO);
    {
        struct stat st2;
        assert_int_equal(stat(path, &st2), 0);
        assert_int_equal(st2.st_size, st.st_size);
    }
    append_n(a, 1, 2);
    wait_done(3);
    assert_int_equal(T.results[1], 0);
    assert_int_equal(T.results[2], 0);
    dz_audit_close(a);
    verify_ok(NULL, &r);
    assert_int_equal(r.lines, 5);
    signal(SIGXFSZ, SIG_DFL);
}

/* The verifier over buffers: bad input is a verdict, never a crash. */
static void test_verify_buf_bad_input(void **state)
{
    static const char z[] = "0000000000000000000000000000000000000000000000000000000000000000";
    struct dz_audit_report r;
    char line[512];
    static const struct {
        const char *text;
        uint64_t bad;
        const char *reason;
    } cases[] = {
        {"", 0, NULL},
        {"\n", 1, "malformed_json"},
        {"[]\n", 1, "malformed_json"},
        {"{}\n", 1, "malformed_json"},
        {"{\"seq\":1}", 1, "malformed_json"},
        {"nonsense\n", 1, "malformed_json"},
        {"{\"seq\":1,\"seq\":1}\n", 1, "malformed_json"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(dz_audit_verify_buf(cases[i].text, strlen(cases[i].text), NULL, &r), 0);
        assert_int_equal(r.first_bad_line, cases[i].bad);
        if (cases[i].reason)
            assert_string_equal(r.reason, cases[i].reason);
    }
    assert_int_equal(dz_audit_verify_buf("\x00\x01\n", 3, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 1);

    /* A well-formed first line, then variants. */
    snprintf(line, sizeof(line), "{\"prev\":\"%s\",\"seq\":1,\"time\":\"t\",\"type\":\"x\"}\n", z);
    assert_int_equal(dz_audit_verify_buf(line, strlen(line), NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 0);
    assert_int_equal(r.lines, 1);
    /* No trailing newline: incomplete. */
    assert_int_equal(dz_audit_verify_buf(line, strlen(line) - 1, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 1);
    assert_string_equal(r.reason, "malformed_json");
    assert_non_null(strstr(r.detail, "incomplete"));
    /* Upper-case hex, seq 0, seq as string, missing time. */
    snprintf(line, sizeof(line), "{\"prev\":\"%.63sA\",\"seq\":1,\"time\":\"t\"}\n", z);
    assert_int_equal(dz_audit_verify_buf(line, strlen(line), NULL, &r), 0);
    assert_string_equal(r.reason, "malformed_json");
    snprintf(line, sizeof(line), "{\"prev\":\"%s\",\"seq\":0,\"time\":\"t\"}\n", z);
    assert_int_equal(dz_audit_verify_buf(line, strlen(line), NULL, &r), 0);
    assert_string_equal(r.reason, "malformed_json");
    snprintf(line, sizeof(line), "{\"prev\":\"%s\",\"seq\":\"1\",\"time\":\"t\"}\n", z);
    assert_int_equal(dz_audit_verify_buf(line, strlen(line), NULL, &r), 0);
    assert_string_equal(r.reason, "malformed_json");
    snprintf(line, sizeof(line), "{\"prev\":\"%s\",\"seq\":1}\n", z);
    assert_int_equal(dz_audit_verify_buf(line, strlen(line), NULL, &r), 0);
    assert_string_equal(r.reason, "malformed_json");
    /* Chained, but seq jumps: seq_gap. */
    {
        char two[1024];
        unsigned char h[32];
        char hex[65];
        size_t l1;
        snprintf(line, sizeof(line), "{\"prev\":\"%s\",\"seq\":1,\"time\":\"t\"}", z);
        l1 = strlen(line);
        dz_sha256(line, l1, h);
        dz_hex(h, 32, hex);
        snprintf(two, sizeof(two), "%s\n{\"prev\":\"%s\",\"seq\":3,\"time\":\"t\"}\n", line, hex);
        assert_int_equal(dz_audit_verify_buf(two, strlen(two), NULL, &r), 0);
        assert_int_equal(r.first_bad_line, 2);
        assert_string_equal(r.reason, "seq_gap");
        /* A head line with a malformed sig. */
        snprintf(two, sizeof(two),
                 "%s\n{\"head\":\"%s\",\"kid\":\"k\",\"prev\":\"%s\",\"seq\":2,\"sig\":\"!!\","
                 "\"time\":\"t\",\"type\":\"head\"}\n",
                 line, hex, hex);
        assert_int_equal(dz_audit_verify_buf(two, strlen(two), NULL, &r), 0);
        assert_int_equal(r.first_bad_line, 2);
        assert_string_equal(r.reason, "bad_head_signature");
    }
    /* Overlong line from a file. */
    {
        size_t n = DZ_AUDIT_VERIFY_LINE_MAX + 100;
        char *big = malloc(n);
        assert_non_null(big);
        memset(big, ' ', n);
        big[n - 1] = '\n';
        write_all_file(path, big, n);
        assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
        assert_int_equal(r.first_bad_line, 1);
        assert_string_equal(r.reason, "malformed_json");
        assert_int_equal(dz_audit_verify_buf(big, n, NULL, &r), 0);
        assert_int_equal(r.first_bad_line, 1);
        free(big);
    }
    unlink(path);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), DZ_ERR_IO);
}

/* ---- patient lines (dz_audit_append_slot) ------------------------------- */

static uint64_t fsyncs(const struct dz_audit *a)
{
    const struct dz_histo *h = dz_audit_fsync_histo(a);
    uint64_t n = 0;

    for (size_t i = 0; i < DZ_HISTO_BUCKETS; i++)
        n += atomic_load(&h->bucket[i]);
    return n;
}

/* A forward_result line with rid "r<id>", reserved as a slot (the way
 * the forwarder appends its outcome lines: patient). */
static struct dz_audit_slot *outcome_slot(unsigned id)
{
    struct dz_audit_slot *sl = dz_audit_slot_new("forward_result");
    struct dz_audit_rec *x = dz_audit_slot_rec(sl);
    char rid[32];

    assert_non_null(x);
    snprintf(rid, sizeof(rid), "r%u", id);
    dz_audit_rec_str(x, "rid", rid);
    dz_audit_rec_int(x, "status", 200);
    dz_audit_rec_bool(x, "sent", true);
    return sl;
}

/* A patient line waits (here: a linger of a minute) for a record someone
 * waits on, and both are written and made durable by one fdatasync, in the
 * order of the calls; each done() runs once its line is in the file. */
static void test_patient_joins_next_batch(void **state)
{
    struct dz_audit *a = open_ok();
    struct dz_audit_report r;
    uint64_t f0;
    size_t len;
    char *buf;

    (void)state;
    tally_reset(true);
    assert_int_equal(dz_audit_set_linger(a, 60000), 0);
    append_n(a, 0, 1); /* a first line, so the file's header is behind us */
    wait_done(1);
    f0 = fsyncs(a);
    assert_int_equal(dz_audit_append_slot(a, outcome_slot(1), NULL, on_done, (void *)1), 0);
    /* Nothing to write it for yet: not in the file, not answered. */
    assert_false(file_has("\"rid\":\"r1\""));
    pthread_mutex_lock(&T.mu);
    assert_int_equal(T.done, 1);
    pthread_mutex_unlock(&T.mu);
    append_n(a, 2, 1);
    wait_done(3);
    assert_int_equal(T.ok, 3);
    assert_true(T.durable[1]);
    assert_true(T.durable[2]);
    assert_int_equal(fsyncs(a) - f0, 1);
    buf = read_all(path, &len);
    assert_true(strstr(buf, "\"rid\":\"r1\"") < strstr(buf, "\"rid\":\"r2\""));
    free(buf);
    dz_audit_close(a);
    verify_ok(NULL, &r);
}

/* Alone, a patient line is written once its linger is over (or at once
 * with none), and a close writes it at once whatever the linger. */
static void test_patient_alone(void **state)
{
    struct dz_audit *a = open_ok();
    struct dz_audit_report r;
    time_t t0;

    (void)state;
    tally_reset(true);
    assert_int_equal(dz_audit_set_linger(a, 1), 0);
    assert_int_equal(dz_audit_append_slot(a, outcome_slot(0), NULL, on_done, (void *)0), 0);
    wait_done(1);
    assert_int_equal(dz_audit_set_linger(a, 0), 0);
    assert_int_equal(dz_audit_append_slot(a, outcome_slot(1), NULL, on_done, (void *)1), 0);
    wait_done(2);
    assert_int_equal(dz_audit_set_linger(a, 60000), 0);
    assert_int_equal(dz_audit_append_slot(a, outcome_slot(2), NULL, on_done, (void *)2), 0);
    t0 = time(NULL);
    dz_audit_close(a);
    /* It did not wait out the minute (a bound, not a speed: the close is
     * a write and an fdatasync). */
    assert_true(time(NULL) - t0 < 30);
    pthread_mutex_lock(&T.mu);
    assert_int_equal(T.done, 3);
    assert_int_equal(T.ok, 3);
    pthread_mutex_unlock(&T.mu);
    for (unsigned i = 0; i < 3; i++)
        assert_true(T.durable[i]);
    assert_int_equal(dz_audit_set_linger(NULL, 1), DZ_ERR_INVAL);
    verify_ok(NULL, &r);
    assert_int_equal(r.lines, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_threads_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rec_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_heads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_tail_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_buf_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patient_joins_next_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patient_alone, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
