/*
 * test_web.c - the portal's static files (gateway/core/web.c): names, content
 * types, request paths, ETag lists, and loading a directory: good sets,
 * hidden files skipped, and every refusal (bad name, unknown type,
 * subdirectory, FIFO, unreadable, too large, too many, no index.html, no
 * directory).  Also loads the repository's own gateway/web.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/web.h"

static bool name_ok(const char *s)
{
    return dz_web_name_ok(s, strlen(s));
}

static void test_names(void **state)
{
    static const char *const good[] = {"index.html", "app.js", "style.css",  "emblem.svg", "a.png",
                                       "x.ico",      "m.json", "robots.txt", "a-b_c.d.js", "0.js"};
    static const char *const bad[] = {
        "",        ".js",      ".hidden.js", "App.js",  "app.JS",    "app",      "app.",
        "app.exe", "a/b.js",   "../x.js",    "a..b.js", "a b.js",    "a%2fb.js", "a\\b.js",
        "ü.js",    "app.js\n", "app.html~",  "app.mjs", "index.htm", "x.jsx",
    };
    char longname[80];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(name_ok(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (name_ok(bad[i]))
            fail_msg("accepted bad name \"%s\"", bad[i]);
    }
    /* 64 characters is the longest name. */
    memset(longname, 'a', sizeof(longname));
    memcpy(longname + 61, ".js", 4);
    assert_int_equal(strlen(longname), 64);
    assert_true(name_ok(longname));
    memset(longname, 'a', sizeof(longname));
    memcpy(longname + 62, ".js", 4);
    assert_false(name_ok(longname));
    /* A NUL inside the counted length is not a name character. */
    assert_false(dz_web_name_ok("a\0b.js", 6));
}

static void test_content_types(void **state)
{
    (void)state;
    assert_string_equal(dz_web_content_type("index.html", 10), "text/html; charset=utf-8");
    assert_string_equal(dz_web_content_type("app.js", 6), "text/javascript; charset=utf-8");
    assert_string_equal(dz_web_content_type("style.css", 9), "text/css; charset=utf-8");
    assert_string_equal(dz_web_content_type("e.svg", 5), "image/svg+xml");
    assert_string_equal(dz_web_content_type("e.png", 5), "image/png");
    assert_string_equal(dz_web_content_type("a.json", 6), "application/json");
    assert_string_equal(dz_web_content_type("a.b.css", 7), "text/css; charset=utf-8");
    assert_null(dz_web_content_type("app", 3));
    assert_null(dz_web_content_type("app.jss", 7));
    assert_null(dz_web_content_type("app.j", 5));
    /* Only len bytes count: "app.js" cut to "app.j". */
    assert_null(dz_web_content_type("app.js", 5));
}

static void test_static_paths(void **state)
{
    char name[DZ_WEB_NAME_MAX + 1];
    static const char *const bad[] = {
        "/static/",         "/static/?x",      "/static",
        "/static/a/b.js",   "/static/../x.js", "/static/%2e.js",
        "/static/a%20.js",  "/static//app.js", "/Static/app.js",
        "/static/app",      "/static/.app.js", "/staticapp.js",
        "/app.js",          "static/app.js",   "/static/app.js/",
        "/static/app.js#x", "/static/APP.JS",  "",
    };

    (void)state;
    assert_int_equal(dz_web_static_name("/static/app.js", name, sizeof(name)), 0);
    assert_string_equal(name, "app.js");
    assert_int_equal(dz_web_static_name("/static/style.css?v=3&x=/y", name, sizeof(name)), 0);
    assert_string_equal(name, "style.css");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(name, "junk", 5);
        if (dz_web_static_name(bad[i], name, sizeof(name)) != DZ_ERR_NOTFOUND)
            fail_msg("accepted bad path \"%s\"", bad[i]);
        assert_string_equal(name, "");
    }
    assert_int_equal(dz_web_static_name(NULL, name, sizeof(name)), DZ_ERR_NOTFOUND);
    /* The output buffer must hold the name and its NUL. */
    assert_int_equal(dz_web_static_name("/static/app.js", name, 6), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_web_static_name("/static/app.js", name, 7), 0);
}

static void test_etags(void **state)
{
    static const char tag[] = "\"0123456789abcdef\"";

    (void)state;
    assert_true(dz_web_etag_match(tag, tag));
    assert_true(dz_web_etag_match("*", tag));
    assert_true(dz_web_etag_match(" W/\"0123456789abcdef\"", tag));
    assert_true(dz_web_etag_match("\"aaaa\", \"0123456789abcdef\"", tag));
    assert_true(dz_web_etag_match("junk, \"0123456789abcdef\"", tag));
    assert_false(dz_web_etag_match(NULL, tag));
    assert_false(dz_web_etag_match("", tag));
    assert_false(dz_web_etag_match("\"0123456789abcdee\"", tag));
    assert_false(dz_web_etag_match("0123456789abcdef", tag));
    assert_false(dz_web_etag_match("\"0123456789abcdef", tag));        /* unterminated */
    assert_false(dz_web_etag_match("\"0123456789abcdef0\"", tag));     /* longer */
    assert_false(dz_web_etag_match("\"x\", \"0123456789abcdef", tag)); /* second unterminated */
    assert_false(dz_web_etag_match(",,, ,", tag));
    assert_false(dz_web_etag_match("W/", tag));
}

/* ---- loading ---------------------------------------------------------- */

struct tmpdir {
    char path[128];
};

static void put(const struct tmpdir *d, const char *name, const char *text)
{
    char p[256];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", d->path, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mk(struct tmpdir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/test_web.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    put(d, "index.html", "<!doctype html><title>x</title>");
    put(d, "app.js", "console.log(1);\n");
}

static void rm(const struct tmpdir *d)
{
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
}

static int load(const struct tmpdir *d, struct dz_web **w, char *err, size_t err_len)
{
    err[0] = '\0';
    return dz_web_load(d->path, w, err, err_len);
}

static void test_load_good(void **state)
{
    struct tmpdir d;
    struct dz_web *w = (struct dz_web *)1;
    const struct dz_web_file *f;
    char err[512];

    (void)state;
    mk(&d);
    put(&d, ".index.html.swp", "editor junk");
    put(&d, "empty.txt", "");
    assert_int_equal(load(&d, &w, err, sizeof(err)), 0);
    assert_non_null(w);
    assert_int_equal(dz_web_count(w), 3);
    f = dz_web_find(w, "index.html", 10);
    assert_non_null(f);
    assert_string_equal(f->content_type, "text/html; charset=utf-8");
    assert_int_equal(f->len, strlen("<!doctype html><title>x</title>"));
    assert_memory_equal(f->data, "<!doctype html>", 15);
    assert_int_equal(strlen(f->etag), 18);
    assert_true(f->etag[0] == '"' && f->etag[17] == '"');
    assert_true(dz_web_etag_match(f->etag, f->etag));
    f = dz_web_find(w, "empty.txt", 9);
    assert_non_null(f);
    assert_int_equal(f->len, 0);
    assert_string_not_equal(f->etag, dz_web_find(w, "app.js", 6)->etag);
    assert_null(dz_web_find(w, ".index.html.swp", 15));
    assert_null(dz_web_find(w, "app.j", 5));
    assert_null(dz_web_find(w, "app.jsx", 7));
    assert_null(dz_web_find(NULL, "app.js", 6));
    dz_web_free(w);
    dz_web_free(NULL);
    rm(&d);
}

static void expect_fail(const char *what, int want_rc, const char *want_msg,
                        void (*prep)(const struct tmpdir *))
{
    struct tmpdir d;
    struct dz_web *w = (struct dz_web *)1;
    char err[512];
    int rc;

    mk(&d);
    prep(&d);
    rc = load(&d, &w, err, sizeof(err));
    if (rc != want_rc || w != NULL || !strstr(err, want_msg) || !strstr(err, d.path))
        fail_msg("%s: rc %d (want %d), err \"%s\" (want \"%s\")", what, rc, want_rc, err, want_msg);
    rm(&d);
}

static void prep_bad_name(const struct tmpdir *d)
{
    put(d, "App.js", "x");
}
static void prep_bad_type(const struct tmpdir *d)
{
    put(d, "run.sh", "x");
}
static void prep_no_index(const struct tmpdir *d)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/index.html", d->path);
    assert_int_equal(unlink(p), 0);
}
static void prep_subdir(const struct tmpdir *d)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/sub.js", d->path);
    assert_int_equal(mkdir(p, 0700), 0);
}
static void prep_fifo(const struct tmpdir *d)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/pipe.txt", d->path);
    assert_int_equal(mkfifo(p, 0600), 0);
}
static void prep_big(const struct tmpdir *d)
{
    char p[256];
    FILE *f;
    snprintf(p, sizeof(p), "%s/big.js", d->path);
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fseek(f, DZ_WEB_MAX_FILE_BYTES, SEEK_SET), 0); /* one byte over */
    fputc('x', f);
    fclose(f);
}
static void prep_exactly_max(const struct tmpdir *d)
{
    char p[256];
    FILE *f;
    snprintf(p, sizeof(p), "%s/max.js", d->path);
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fseek(f, DZ_WEB_MAX_FILE_BYTES - 1, SEEK_SET), 0);
    fputc('x', f);
    fclose(f);
    prep_bad_name(d); /* so the load fails after reading max.js */
}
static void prep_many(const struct tmpdir *d)
{
    for (int i = 0; i < DZ_WEB_MAX_FILES; i++) {
        char n[32];
        snprintf(n, sizeof(n), "f%02d.txt", i);
        put(d, n, "x");
    }
}

static void test_load_refusals(void **state)
{
    (void)state;
    expect_fail("bad name", DZ_ERR_INVAL, "App.js: file names must be", prep_bad_name);
    expect_fail("unknown type", DZ_ERR_INVAL, "run.sh: file names must be", prep_bad_type);
    expect_fail("no index", DZ_ERR_INVAL, "no index.html", prep_no_index);
    expect_fail("subdirectory", DZ_ERR_INVAL, "sub.js: not a regular file", prep_subdir);
    expect_fail("fifo", DZ_ERR_INVAL, "pipe.txt: not a regular file", prep_fifo);
    expect_fail("too big", DZ_ERR_TOOBIG, "big.js: larger than", prep_big);
    expect_fail("exactly the maximum is fine", DZ_ERR_INVAL, "App.js", prep_exactly_max);
    expect_fail("too many", DZ_ERR_TOOBIG, "more than 64 files", prep_many);
}

static void test_load_no_dir(void **state)
{
    struct dz_web *w = (struct dz_web *)1;
    char err[512];

    (void)state;
    assert_int_equal(dz_web_load("/nonexistent/web", &w, err, sizeof(err)), DZ_ERR_IO);
    assert_null(w);
    assert_non_null(strstr(err, "/nonexistent/web: cannot open the directory"));
}

static void test_load_unreadable(void **state)
{
    struct tmpdir d;
    struct dz_web *w = (struct dz_web *)1;
    char err[512];
    char p[256];

    (void)state;
    if (geteuid() == 0)
        return; /* root reads mode 000 files: nothing to see */
    mk(&d);
    snprintf(p, sizeof(p), "%s/app.js", d.path);
    assert_int_equal(chmod(p, 0), 0);
    assert_int_equal(load(&d, &w, err, sizeof(err)), DZ_ERR_IO);
    assert_null(w);
    assert_non_null(strstr(err, "app.js: cannot open"));
    rm(&d);
}

/* The repository's own pages load, and each referenced file is there. */
static void test_repository_pages(void **state)
{
    struct dz_web *w = NULL;
    char err[512];
    static const char *const files[] = {"index.html", "app.js", "i18n.js", "style.css",
                                        "emblem.svg"};

    (void)state;
    assert_int_equal(dz_web_load("gateway/web", &w, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const struct dz_web_file *f = dz_web_find(w, files[i], strlen(files[i]));
        if (!f)
            fail_msg("gateway/web/%s missing", files[i]);
        /* No external resource in any of them. */
        for (size_t j = 0; f->len > 8 && j + 8 <= f->len; j++) {
            if (memcmp(f->data + j, "http://", 7) == 0 || memcmp(f->data + j, "https://", 8) == 0) {
                /* Only the SVG namespace is allowed. */
                if (f->len - j < 26 || memcmp(f->data + j, "http://www.w3.org/2000/svg", 26) != 0)
                    fail_msg("gateway/web/%s names an external URL at byte %zu", files[i], j);
            }
        }
    }
    dz_web_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_static_paths),
        cmocka_unit_test(test_etags),
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_load_no_dir),
        cmocka_unit_test(test_load_unreadable),
        cmocka_unit_test(test_repository_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
