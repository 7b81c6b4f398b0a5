/* test_yamltree.c - the bounded YAML tree loader (lib/base/yamltree.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/yamltree.h"

static int load(const char *text, struct dz_yaml_doc **doc, char *err, size_t err_len)
{
    return dz_yaml_load_buf("t.yaml", text, strlen(text), NULL, doc, err, err_len);
}

/* Load text, expect rc and an error starting with prefix and containing what. */
static void expect_error(const char *text, int rc, const char *prefix, const char *what)
{
    struct dz_yaml_doc *doc = (struct dz_yaml_doc *)1;
    char err[512] = "";

    assert_int_equal(load(text, &doc, err, sizeof(err)), rc);
    assert_null(doc);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
        fail_msg("got \"%s\", wanted \"%s...%s\"", err, prefix, what);
}

static void test_tree(void **state)
{
    static const char text[] = "# comment\n"
                               "a: 1\n"
                               "b:\n"
                               "  - x\n"
                               "  - \"y\"\n"
                               "c: {d: true, e: [1, 2]}\n"
                               "f:\n"
                               "g: ~\n"
                               "h: ''\n";
    struct dz_yaml_doc *doc = NULL;
    const struct dz_yaml_node *root;
    const struct dz_yaml_node *n;
    char err[256];

    (void)state;
    assert_int_equal(load(text, &doc, err, sizeof(err)), 0);
    root = dz_yaml_root(doc);
    assert_non_null(root);
    assert_int_equal(root->kind, DZ_YAML_MAP);
    assert_int_equal(root->count, 6);
    assert_string_equal(dz_yaml_name(doc), "t.yaml");

    n = dz_yaml_get(root, "a");
    assert_int_equal(n->kind, DZ_YAML_SCALAR);
    assert_string_equal(n->str, "1");
    assert_int_equal(n->line, 2);
    assert_int_equal(n->key_line, 2);
    assert_true(n->is_plain);
    assert_string_equal(n->file, "t.yaml");

    n = dz_yaml_get(root, "b");
    assert_int_equal(n->kind, DZ_YAML_SEQ);
    assert_int_equal(n->count, 2);
    assert_int_equal(n->key_line, 3);
    assert_string_equal(n->first->str, "x");
    assert_int_equal(n->first->line, 4);
    assert_string_equal(n->first->next->str, "y");
    assert_false(n->first->next->is_plain);
    assert_int_equal(n->first->next->line, 5);
    assert_null(n->first->next->next);

    n = dz_yaml_get(root, "c");
    assert_int_equal(n->kind, DZ_YAML_MAP);
    assert_string_equal(dz_yaml_get(n, "d")->str, "true"); /* text, not a typed bool */
    assert_int_equal(dz_yaml_get(n, "e")->count, 2);
    assert_int_equal(dz_yaml_get(n, "e")->line, 6);

    assert_true(dz_yaml_is_null(dz_yaml_get(root, "f")));
    assert_true(dz_yaml_is_null(dz_yaml_get(root, "g")));
    assert_false(dz_yaml_is_null(dz_yaml_get(root, "h"))); /* quoted "" is a string */
    assert_false(dz_yaml_is_null(dz_yaml_get(root, "a")));
    assert_null(dz_yaml_get(root, "zzz"));
    assert_null(dz_yaml_get(dz_yaml_get(root, "b"), "x")); /* not a mapping */
    assert_null(dz_yaml_get(NULL, "a"));
    dz_yaml_free(doc);
    dz_yaml_free(NULL);
}

static void test_empty(void **state)
{
    struct dz_yaml_doc *doc = NULL;
    char err[128];

    (void)state;
    assert_int_equal(load("", &doc, err, sizeof(err)), 0);
    assert_null(dz_yaml_root(doc));
    dz_yaml_free(doc);
    assert_int_equal(load("# only a comment\n", &doc, err, sizeof(err)), 0);
    assert_null(dz_yaml_root(doc));
    dz_yaml_free(doc);
}

static void test_refused(void **state)
{
    (void)state;
    expect_error("a: &x 1\nb: *x\n", DZ_ERR_PARSE, "t.yaml:1:", "anchors");
    expect_error("a: 1\nb: *x\n", DZ_ERR_PARSE, "t.yaml:2:", "");
    expect_error("a: !!str 1\n", DZ_ERR_PARSE, "t.yaml:1:", "tags");
    expect_error("a: !custom {b: 1}\n", DZ_ERR_PARSE, "t.yaml:1:", "tags");
    expect_error("a: 1\nb: 2\na: 3\n", DZ_ERR_PARSE,
                 "t.yaml:3:", "duplicate key \"a\" (first at line 1)");
    expect_error("x:\n  k: 1\n  k: 2\n", DZ_ERR_PARSE, "t.yaml:3:", "duplicate key");
    expect_error("a: 1\n---\nb: 2\n", DZ_ERR_PARSE, "t.yaml:2:", "only one YAML document");
    expect_error("? [a, b]\n: 1\n", DZ_ERR_PARSE, "t.yaml:1:", "key must be a plain value");
    expect_error("a: \"x\\0y\"\n", DZ_ERR_PARSE, "t.yaml:1:", "NUL byte");
}

static void test_syntax(void **state)
{
    (void)state;
    /* Wrong indentation, a tab, an unclosed flow list, bad UTF-8. */
    expect_error("a:\n  b: 1\n c: 2\n", DZ_ERR_PARSE, "t.yaml:3:", "syntax error");
    expect_error("a:\n\tb: 1\n", DZ_ERR_PARSE, "t.yaml:2:", "syntax error");
    expect_error("a: [1, 2\nb: 3\n", DZ_ERR_PARSE, "t.yaml:", "syntax error");
    expect_error("a: b: c\n", DZ_ERR_PARSE, "t.yaml:1:", "syntax error");
    expect_error("a: \"\xff\"\n", DZ_ERR_PARSE, "t.yaml:1:", "invalid input");
    expect_error("a: 1\n\x01: 2\n", DZ_ERR_PARSE, "t.yaml:2:", "invalid input");
}

static void test_limits(void **state)
{
    struct dz_yaml_limits lim = dz_yaml_default_limits;
    struct dz_yaml_doc *doc = NULL;
    char text[4096];
    char err[256];
    size_t n = 0;

    (void)state;
    lim.max_depth = 4;
    assert_int_equal(dz_yaml_load_buf("t", "a: {b: {c: {d: 1}}}", 19, &lim, &doc, err, sizeof(err)),
                     0);
    dz_yaml_free(doc);
    assert_int_equal(
        dz_yaml_load_buf("t", "a: {b: {c: {d: [1]}}}", 21, &lim, &doc, err, sizeof(err)),
        DZ_ERR_TOOBIG);
    assert_non_null(strstr(err, "nested deeper than 4"));

    /* Very deep flow nesting with default limits: refused, no crash. */
    for (n = 0; n < 3000; n++)
        text[n] = '[';
    text[n] = '\0';
    assert_int_not_equal(dz_yaml_load_buf("t", text, n, NULL, &doc, err, sizeof(err)), 0);
    assert_null(doc);

    lim = dz_yaml_default_limits;
    lim.max_children = 3;
    assert_int_equal(dz_yaml_load_buf("t", "[1, 2, 3]", 9, &lim, &doc, err, sizeof(err)), 0);
    dz_yaml_free(doc);
    assert_int_equal(dz_yaml_load_buf("t", "[1, 2, 3, 4]", 12, &lim, &doc, err, sizeof(err)),
                     DZ_ERR_TOOBIG);

    lim = dz_yaml_default_limits;
    lim.max_nodes = 5;
    assert_int_equal(dz_yaml_load_buf("t", "{a: 1, b: 2, c: 3}", 18, &lim, &doc, err, sizeof(err)),
                     DZ_ERR_TOOBIG);
    assert_non_null(strstr(err, "more than 5 nodes"));

    lim = dz_yaml_default_limits;
    lim.max_scalar = 4;
    assert_int_equal(dz_yaml_load_buf("t", "a: abcd", 7, &lim, &doc, err, sizeof(err)), 0);
    dz_yaml_free(doc);
    assert_int_equal(dz_yaml_load_buf("t", "a: abcde", 8, &lim, &doc, err, sizeof(err)),
                     DZ_ERR_TOOBIG);
    assert_int_equal(dz_yaml_load_buf("t", "abcde: a", 8, &lim, &doc, err, sizeof(err)),
                     DZ_ERR_TOOBIG);

    lim = dz_yaml_default_limits;
    lim.max_bytes = 8;
    assert_int_equal(dz_yaml_load_buf("t", "a: 123456", 9, &lim, &doc, err, sizeof(err)),
                     DZ_ERR_TOOBIG);
    assert_string_equal(err, "t: larger than 8 bytes");
}

static void test_files(void **state)
{
    char dir[] = "/tmp/dz_yamltree_XXXXXX";
    char path[128];
    struct dz_yaml_doc *doc = NULL;
    struct dz_yaml_limits lim = dz_yaml_default_limits;
    char err[256];
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("k: v\nlist:\n  - 1\n", f);
    fclose(f);
    assert_int_equal(dz_yaml_load_file(path, NULL, &doc, err, sizeof(err)), 0);
    assert_string_equal(dz_yaml_name(doc), path);
    assert_int_equal(dz_yaml_get(dz_yaml_root(doc), "list")->first->line, 3);
    dz_yaml_free(doc);

    lim.max_bytes = 4;
    assert_int_equal(dz_yaml_load_file(path, &lim, &doc, err, sizeof(err)), DZ_ERR_TOOBIG);
    assert_null(doc);

    assert_int_equal(dz_yaml_load_file(dir, NULL, &doc, err, sizeof(err)), DZ_ERR_IO);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(path);
    assert_int_equal(dz_yaml_load_file(path, NULL, &doc, err, sizeof(err)), DZ_ERR_IO);
    assert_non_null(strstr(err, "cannot open"));
    rmdir(dir);
}

static void test_error_format(void **state)
{
    char err[128];

    (void)state;
    assert_int_equal(dz_yaml_error(err, sizeof(err), "f.yaml", 3, "a.b", "bad %d", 7),
                     DZ_ERR_INVAL);
    assert_string_equal(err, "f.yaml:3: a.b: bad 7");
    dz_yaml_error(err, sizeof(err), "f.yaml", 3, NULL, "bad");
    assert_string_equal(err, "f.yaml:3: bad");
    dz_yaml_error(err, sizeof(err), "f.yaml", 0, "k", "bad");
    assert_string_equal(err, "f.yaml: k: bad");
    assert_int_equal(dz_yaml_error(NULL, 0, "f", 1, NULL, "x"), DZ_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),         cmocka_unit_test(test_empty),
        cmocka_unit_test(test_refused),      cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_files),
        cmocka_unit_test(test_error_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
