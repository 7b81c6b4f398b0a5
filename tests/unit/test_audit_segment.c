/*
 * test_audit_segment.c - audit segments: rotation on request, by size and by
 * age (each line in exactly one segment, the chain going on through each
 * header), the segment header parser with bad input, verifying a segment
 * from a given chain state, the head signer swapped on key rollover, and
 * the key archive (only ever adds, never overwrites a damaged archive).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_keyarchive.h"
#include "base/err.h"
#include "base/log.h"
#include "keys/ecdsa_sig.h"

static char tmpdir[64];
static char path[128];
static EVP_PKEY *key1;
static EVP_PKEY *key2;
static atomic_int released;
static atomic_uint done_count;

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dz_auditseg_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(path, sizeof(path), "%s/audit.log", tmpdir);
    atomic_store(&done_count, 0);
    atomic_store(&released, 0);
    return 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];

    (void)state;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

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

static int sign_cb(void *arg, const void *data, size_t len, unsigned char sig[64])
{
    return sign_with(arg, data, len, sig);
}

static void release_cb(void *arg)
{
    assert_ptr_equal(arg, key2);
    atomic_fetch_add(&released, 1);
}

static EVP_PKEY *find_both(void *arg, const char *kid)
{
    (void)arg;
    if (strcmp(kid, "k1") == 0)
        return key1;
    return strcmp(kid, "k2") == 0 ? key2 : NULL;
}

static EVP_PKEY *find_k2(void *arg, const char *kid)
{
    (void)arg;
    return strcmp(kid, "k2") == 0 ? key2 : NULL;
}

static const struct dz_audit_keys BOTH = {find_both, NULL};
static const struct dz_audit_keys ONLY_K2 = {find_k2, NULL};

static void on_done(void *arg, int result)
{
    (void)arg;
    assert_int_equal(result, 0);
    atomic_fetch_add(&done_count, 1);
}

static void append_n(struct dz_audit *a, unsigned first, unsigned n)
{
    for (unsigned i = first; i < first + n; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "r%u", i);
        assert_int_equal(
            dz_audit_append(a,
                            json_pack("{s:s, s:s, s:s}", "type", "forward", "rid", rid, "pad",
                                      "................................................"),
                            NULL, on_done, NULL),
            0);
    }
}

static void wait_done(unsigned n)
{
    for (int i = 0; i < 5000 && atomic_load(&done_count) < n; i++)
        sleep_ms(2);
    assert_int_equal(atomic_load(&done_count), n);
}

/* The closed segments in tmpdir, sorted by name (= by time and first seq). */
static size_t list_segments(char names[][512], size_t max)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "audit-", 6) == 0 && n < max)
            snprintf(names[n++], 512, "%s/%s", tmpdir, e->d_name);
    }
    closedir(d);
    qsort(names, n, 512, (int (*)(const void *, const void *))strcmp);
    return n;
}

static size_t wait_segments(size_t want)
{
    char names[8][512];
    size_t n = 0;

    for (int i = 0; i < 2500 && (n = list_segments(names, 8)) < want; i++)
        sleep_ms(2);
    return n;
}

static char *first_line(const char *p)
{
    FILE *f = fopen(p, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    assert_non_null(f);
    len = getline(&line, &cap, f);
    fclose(f);
    assert_true(len > 1);
    line[len - 1] = '\0';
    return line;
}

static struct dz_audit *open_rot(uint64_t size, uint64_t every_ms)
{
    struct dz_audit *a = NULL;
    struct dz_audit_rotation r = {size, every_ms, "gw-a"};

    assert_int_equal(dz_audit_open(path, &a), 0);
    assert_int_equal(dz_audit_set_rotation(a, &r), 0);
    assert_int_equal(dz_audit_set_head_signer(a, sign_cb, key1, "k1", 0), 0);
    return a;
}

/* Verify the closed segments then the live file as one chain; returns the
 * last seq. */
static uint64_t verify_history(const struct dz_audit_keys *keys, uint64_t *lines_out)
{
    char names[64][512];
    size_t n = list_segments(names, 64);
    struct dz_audit_chain chain;
    struct dz_audit_report r;
    uint64_t lines = 0;

    memset(&chain, 0, sizeof(chain));
    for (size_t i = 0; i <= n; i++) {
        const char *p = i < n ? names[i] : path;
        assert_int_equal(dz_audit_verify_segment(p, keys, &chain, &r), 0);
        if (r.first_bad_line)
            fprintf(stderr, "%s:%" PRIu64 ": %s: %s\n", p, r.first_bad_line, r.reason, r.detail);
        assert_int_equal(r.first_bad_line, 0);
        assert_true(r.has_header);
        assert_string_equal(r.header.instance, "gw-a");
        assert_int_equal(r.first_seq, chain.seq + 1);
        if (i > 0) {
            const char *prev = strrchr(names[i - 1], '/') + 1;
            assert_string_equal(r.header.prev_file, prev);
        }
        lines += r.lines;
        chain.seq = r.last_seq;
        memcpy(chain.hash, r.last_hash, 32);
    }
    *lines_out = lines;
    return chain.seq;
}

/* ------------------------------------------------------------- tests --- */

static void test_rotate_on_request(void **state)
{
    struct dz_audit *a;
    struct dz_audit_segment_header h;
    struct dz_audit_report r;
    struct dz_audit_chain chain;
    char names[8][512];
    char *line;
    uint64_t lines;

    (void)state;
    a = open_rot(0, 0);
    append_n(a, 0, 10);
    wait_done(10);
    dz_audit_rotate(a);
    assert_int_equal(wait_segments(1), 1);
    append_n(a, 10, 5);
    wait_done(15);
    dz_audit_close(a);

    assert_int_equal(list_segments(names, 8), 1);
    /* The history's first segment: a header at seq 1, ten records, a head. */
    line = first_line(names[0]);
    assert_int_equal(dz_audit_parse_segment_header(line, strlen(line), &h), 0);
    assert_int_equal(h.seq, 1);
    assert_string_equal(h.prev_file, "");
    free(line);
    assert_non_null(strstr(names[0], "-000000000001.log"));
    line = first_line(path);
    assert_int_equal(dz_audit_parse_segment_header(line, strlen(line), &h), 0);
    assert_int_equal(h.seq, 13); /* header 1, records 2..11, head 12 */
    assert_int_equal(h.prev_seq, 12);
    assert_string_equal(h.prev_file, strrchr(names[0], '/') + 1);
    free(line);

    assert_int_equal(verify_history(&BOTH, &lines), 13 + 5 + 1);
    assert_int_equal(lines, 19);
    /* The live file alone: it continues another segment. */
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 1);
    assert_string_equal(r.reason, "chain_broken");
    assert_non_null(strstr(r.detail, "continues"));
    /* ... unless the caller starts from its header. */
    assert_int_equal(dz_audit_verify_segment(path, &BOTH, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 0);
    assert_int_equal(r.heads_verified, 1);
    /* A wrong chain state (the previous segment cut or replaced). */
    memset(&chain, 0, sizeof(chain));
    chain.seq = 12;
    chain.hash[0] = 1;
    assert_int_equal(dz_audit_verify_segment(path, NULL, &chain, &r), 0);
    assert_int_equal(r.first_bad_line, 1);
    assert_string_equal(r.reason, "chain_broken");
}

static void test_rotate_by_size(void **state)
{
    struct dz_audit *a;
    char names[64][512];
    size_t n;
    uint64_t lines;
    uint64_t last;
    char *all = NULL;
    size_t all_len = 0;
    FILE *mem;

    (void)state;
    a = open_rot(4096, 0);
    assert_int_equal(dz_audit_set_limits(a, 1000, 4), 0);
    append_n(a, 0, 300);
    wait_done(300);
    dz_audit_close(a);
    n = list_segments(names, 64);
    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        assert_int_equal(stat(names[i], &st), 0);
        /* Rotated after the batch that crossed the size: at most one batch
         * (4 lines) and the closing head over it. */
        assert_true(st.st_size >= 4096);
        assert_true(st.st_size < 4096 + 5 * 200);
    }
    last = verify_history(&BOTH, &lines);
    assert_int_equal(lines, last);
    /* Every record in exactly one segment. */
    mem = open_memstream(&all, &all_len);
    assert_non_null(mem);
    for (size_t i = 0; i <= n; i++) {
        char *buf = NULL;
        size_t cap = 0;
        FILE *f = fopen(i < n ? names[i] : path, "rb");
        assert_non_null(f);
        while (getline(&buf, &cap, f) > 0)
            fputs(buf, mem);
        free(buf);
        fclose(f);
    }
    fclose(mem);
    for (unsigned i = 0; i < 300; i++) {
        char needle[32];
        const char *p;
        snprintf(needle, sizeof(needle), "\"rid\":\"r%u\"", i);
        p = strstr(all, needle);
        assert_non_null(p);
        assert_null(strstr(p + 1, needle));
    }
    free(all);
}

static void test_rotate_by_age(void **state)
{
    struct dz_audit *a;
    uint64_t lines;

    (void)state;
    a = open_rot(0, 50);
    append_n(a, 0, 3);
    wait_done(3);
    /* No new line is needed: the writer wakes for the segment's age. */
    assert_int_equal(wait_segments(1), 1);
    /* An idle segment (only its header) is not rotated again. */
    sleep_ms(200);
    assert_int_equal(wait_segments(1), 1);
    dz_audit_close(a);
    /* header, 3 records, closing head | header, closing head at close */
    assert_int_equal(verify_history(&BOTH, &lines), 7);
    assert_int_equal(lines, 7);
}

static void test_swap_signer(void **state)
{
    struct dz_audit *a;
    struct dz_audit_report r;
    uint64_t lines;

    (void)state;
    a = open_rot(0, 0);
    append_n(a, 0, 4);
    wait_done(4);
    dz_audit_rotate(a); /* closes the segment with a head by k1 */
    assert_int_equal(wait_segments(1), 1);
    assert_int_equal(dz_audit_swap_head_signer(a, NULL, key2, release_cb, "k2"), DZ_ERR_INVAL);
    assert_int_equal(dz_audit_swap_head_signer(a, sign_cb, key2, release_cb, ""), DZ_ERR_INVAL);
    assert_int_equal(dz_audit_swap_head_signer(a, sign_cb, key2, release_cb, "k2"), 0);
    append_n(a, 4, 4);
    wait_done(8);
    dz_audit_close(a);
    /* k2's argument released exactly once, at close; k1's was the caller's. */
    assert_int_equal(atomic_load(&released), 1);
    verify_history(&BOTH, &lines);
    /* Only the new key: the first segment's head is an unknown kid. */
    {
        char names[4][512];
        assert_int_equal(list_segments(names, 4), 1);
        assert_int_equal(dz_audit_verify_file(names[0], &ONLY_K2, &r), 0);
        assert_string_equal(r.reason, "unknown_kid");
        assert_int_equal(dz_audit_verify_segment(path, &ONLY_K2, NULL, &r), 0);
        assert_int_equal(r.first_bad_line, 0);
        assert_int_equal(r.heads_verified, 1);
    }
}

static const char ZERO64[] = "0000000000000000000000000000000000000000000000000000000000000000";
static const char HASH64[] = "1111111111111111111111111111111111111111111111111111111111111111";

static int parse_hdr(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    struct dz_audit_segment_header h;
    int rc;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    rc = dz_audit_parse_segment_header(line, strlen(line), &h);
    if (rc != 0) {
        assert_int_equal(h.seq, 0); /* cleared on error */
        assert_string_equal(h.instance, "");
    }
    return rc;
}

static void test_header_parser(void **state)
{
    const char *T = "\"time\":\"2026-01-01T00:00:00.000Z\"";

    (void)state;
    /* Good: a history's start and a continuation. */
    assert_int_equal(parse_hdr("{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_seq\":0,\"seq\":1,%s,"
                               "\"type\":\"segment\"}",
                               ZERO64, T),
                     0);
    assert_int_equal(parse_hdr("{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"a.log\","
                               "\"prev_seq\":9,\"seq\":10,%s,\"type\":\"segment\"}",
                               HASH64, T),
                     0);
    /* Bad. */
    static const char *const bad[] = {
        /* not a segment */
        "{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":9,\"seq\":10,%s,"
        "\"type\":\"head\"}",
        /* prev_seq disagrees with seq */
        "{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":8,\"seq\":10,%s,"
        "\"type\":\"segment\"}",
        /* a path, not a name */
        "{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"../a.log\",\"prev_seq\":9,\"seq\":10,"
        "%s,\"type\":\"segment\"}",
        "{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"..\",\"prev_seq\":9,\"seq\":10,%s,"
        "\"type\":\"segment\"}",
        /* no prev_file after seq 1 */
        "{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_seq\":9,\"seq\":10,%s,\"type\":\"segment\"}",
        /* instance with a space, empty, missing, not a string */
        "{\"instance\":\"g "
        "w\",\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":9,\"seq\":10,%s,"
        "\"type\":\"segment\"}",
        "{\"instance\":\"\",\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":9,\"seq\":10,%s,"
        "\"type\":\"segment\"}",
        "{\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":9,\"seq\":10,%s,\"type\":"
        "\"segment\"}",
        "{\"instance\":7,\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":9,\"seq\":10,%s,"
        "\"type\":\"segment\"}",
        /* duplicate key */
        "{\"instance\":\"gw\",\"instance\":\"gx\",\"prev\":\"%s\",\"prev_file\":\"a.log\","
        "\"prev_seq\":9,\"seq\":10,%s,\"type\":\"segment\"}",
        /* prev_seq not an integer */
        "{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"a.log\",\"prev_seq\":\"9\",\"seq\":"
        "10,"
        "%s,\"type\":\"segment\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_hdr(bad[i], HASH64, T) != DZ_ERR_PARSE)
            fail_msg("bad header %zu accepted", i);
    }
    /* seq 1 with a prev_file, or with a non-zero prev. */
    assert_int_equal(parse_hdr("{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_file\":\"a.log\","
                               "\"prev_seq\":0,\"seq\":1,%s,\"type\":\"segment\"}",
                               ZERO64, T),
                     DZ_ERR_PARSE);
    assert_int_equal(parse_hdr("{\"instance\":\"gw\",\"prev\":\"%s\",\"prev_seq\":0,\"seq\":1,%s,"
                               "\"type\":\"segment\"}",
                               HASH64, T),
                     DZ_ERR_PARSE);
    assert_int_equal(parse_hdr("not json"), DZ_ERR_PARSE);
    assert_int_equal(parse_hdr("[]"), DZ_ERR_PARSE);
}

/* A header anywhere but line 1 is refused: it would splice two histories. */
static void test_header_inside_segment(void **state)
{
    struct dz_audit *a;
    struct dz_audit_report r;
    char names[4][512];
    char *seg = NULL;
    char *live = NULL;
    size_t seg_len = 0;
    size_t live_len = 0;
    FILE *f;

    (void)state;
    a = open_rot(0, 0);
    append_n(a, 0, 3);
    wait_done(3);
    dz_audit_rotate(a);
    assert_int_equal(wait_segments(1), 1);
    append_n(a, 3, 3);
    wait_done(6);
    dz_audit_close(a);
    assert_int_equal(list_segments(names, 4), 1);
    /* Concatenate both segments into one file: the chain itself holds. */
    f = fopen(names[0], "rb");
    assert_non_null(f);
    seg = malloc(65536);
    seg_len = fread(seg, 1, 65536, f);
    fclose(f);
    f = fopen(path, "rb");
    assert_non_null(f);
    live = malloc(65536);
    live_len = fread(live, 1, 65536, f);
    fclose(f);
    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(seg, 1, seg_len, f);
    fwrite(live, 1, live_len, f);
    fclose(f);
    assert_int_equal(dz_audit_verify_file(path, NULL, &r), 0);
    assert_int_equal(r.first_bad_line, 6); /* header 1, 3 records, head 5, header 6 */
    assert_string_equal(r.reason, "malformed_json");
    assert_non_null(strstr(r.detail, "segment header inside"));
    free(seg);
    free(live);
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    char *buf = calloc(1, 65536);

    assert_non_null(f);
    assert_non_null(buf);
    assert_true(fread(buf, 1, 65535, f) > 0);
    fclose(f);
    return buf;
}

static void test_key_archive(void **state)
{
    char ar[256];
    size_t added = 99;
    char *before;
    json_t *doc;
    const char *k1 = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k1\",\"x\":\"AAA\","
                     "\"y\":\"BBB\"}]}";
    const char *k12 = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k2\",\"x\":\"CCC\","
                      "\"y\":\"DDD\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k1\","
                      "\"x\":\"AAA\",\"y\":\"BBB\"}]}";
    const char *k2only = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k2\","
                         "\"x\":\"CCC\",\"y\":\"DDD\"}]}";
    const char *k1other = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k1\","
                          "\"x\":\"EEE\",\"y\":\"FFF\"}]}";
    char *dflt;

    (void)state;
    dflt = dz_audit_key_archive_default(path);
    snprintf(ar, sizeof(ar), "%s/%s", tmpdir, DZ_AUDIT_KEY_ARCHIVE_NAME);
    assert_string_equal(dflt, ar);
    free(dflt);
    dflt = dz_audit_key_archive_default("audit.log");
    assert_string_equal(dflt, DZ_AUDIT_KEY_ARCHIVE_NAME);
    free(dflt);

    assert_int_equal(dz_audit_key_archive_update(ar, k1, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(dz_audit_key_archive_update(ar, k12, &added), 0);
    assert_int_equal(added, 1);
    /* k1 retired from the published set: still archived. */
    assert_int_equal(dz_audit_key_archive_update(ar, k2only, &added), 0);
    assert_int_equal(added, 0);
    /* k1 published again with another key: the archived key stays. */
    before = slurp(ar);
    assert_int_equal(dz_audit_key_archive_update(ar, k1other, &added), 0);
    assert_int_equal(added, 0);
    doc = json_load_file(ar, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(doc, "keys"), 0), "x")),
        "AAA");
    json_decref(doc);
    free(before);
    /* Not a key set in: nothing written. */
    assert_int_equal(dz_audit_key_archive_update(ar, "[1]", &added), DZ_ERR_INVAL);
    assert_int_equal(dz_audit_key_archive_update(ar, NULL, &added), DZ_ERR_INVAL);
    /* A damaged archive is never overwritten (that could lose keys). */
    {
        FILE *f = fopen(ar, "wb");
        assert_non_null(f);
        fputs("{\"keys\": [", f);
        fclose(f);
        assert_int_equal(dz_audit_key_archive_update(ar, k12, &added), DZ_ERR_PARSE);
        before = slurp(ar);
        assert_string_equal(before, "{\"keys\": [");
        free(before);
    }
    /* An unwritable place. */
    assert_int_equal(dz_audit_key_archive_update("/nonexistent-dir/x.jwks", k1, &added), DZ_ERR_IO);
}

/* A crash between the two renames of a rotation leaves no live file and a
 * complete PATH.next: the next open makes it live (no new chain at seq 1);
 * a PATH.next next to a live file is a rotation that never happened and is
 * removed. */
static void test_interrupted_rotation(void **state)
{
    struct dz_audit *a;
    char next[256];
    uint64_t lines;
    struct stat st;

    (void)state;
    snprintf(next, sizeof(next), "%s.next", path);
    a = open_rot(0, 0);
    append_n(a, 0, 3);
    wait_done(3);
    dz_audit_rotate(a);
    assert_int_equal(wait_segments(1), 1);
    dz_audit_close(a);
    /* As if the process died after renaming the old segment. */
    assert_int_equal(rename(path, next), 0);
    a = open_rot(0, 0);
    append_n(a, 3, 2);
    wait_done(5);
    dz_audit_close(a);
    assert_int_equal(stat(next, &st), -1);
    verify_history(&BOTH, &lines);
    assert_int_equal(lines, 10); /* 1+3+1 | 1+1 (close head) + 2 + 1 */

    /* A stale PATH.next beside a live file. */
    {
        FILE *f = fopen(next, "wb");
        assert_non_null(f);
        fputs("{\"partial\":", f);
        fclose(f);
    }
    a = open_rot(0, 0);
    dz_audit_close(a);
    assert_int_equal(stat(next, &st), -1);
    verify_history(&BOTH, &lines);
}

static void test_rotation_args(void **state)
{
    struct dz_audit *a = NULL;
    struct dz_audit_rotation r = {0, 0, "has space"};

    (void)state;
    assert_int_equal(dz_audit_open(path, &a), 0);
    assert_int_equal(dz_audit_set_rotation(a, &r), DZ_ERR_INVAL);
    r.instance = "";
    assert_int_equal(dz_audit_set_rotation(a, &r), DZ_ERR_INVAL);
    assert_int_equal(dz_audit_set_rotation(a, NULL), DZ_ERR_INVAL);
    r.instance = NULL; /* no instance: no header at the start of a history */
    assert_int_equal(dz_audit_set_rotation(a, &r), 0);
    append_n(a, 0, 1);
    wait_done(1);
    dz_audit_rotate(NULL);
    dz_audit_close(a);
    {
        char *line = first_line(path);
        assert_non_null(strstr(line, "\"type\":\"forward\""));
        free(line);
    }
}

static int group_setup(void **state)
{
    (void)state;
    dz_log_set_level(DZ_LOG_ERROR);
    key1 = EVP_EC_gen("P-256");
    key2 = EVP_EC_gen("P-256");
    return key1 && key2 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key1);
    EVP_PKEY_free(key2);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotate_on_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_parser, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_inside_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_args, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
