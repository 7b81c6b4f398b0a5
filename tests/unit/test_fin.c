/* test_fin.c - FIN and document-number syntax (lib/base/fin.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/fin.h"

static int norm(const char *s, char out[DZ_FIN_LEN + 1])
{
    return dz_fin_normalize(s, strlen(s), out);
}

static void test_fin_good(void **state)
{
    char out[DZ_FIN_LEN + 1];

    (void)state;
    assert_int_equal(norm("5ZJ3K7P", out), 0);
    assert_string_equal(out, "5ZJ3K7P");
    assert_int_equal(norm("abc1234", out), 0);
    assert_string_equal(out, "ABC1234");
    assert_int_equal(norm("aBcDeFz", out), 0);
    assert_string_equal(out, "ABCDEFZ");
    assert_int_equal(norm("0000000", out), 0);
    assert_string_equal(out, "0000000");
    assert_int_equal(norm("zzzzzzz", out), 0);
    assert_string_equal(out, "ZZZZZZZ");
    assert_true(dz_fin_is_normal(out));
}

static void test_fin_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "ABC123",
        "ABC12345",
        " ABC1234",
        "ABC1234 ",
        "ABC 123",
        "ABC-123",
        "ABC_123",
        "ABC.123",
        "ABC\t123",
        "ABC\n123",
        "ÄBC1234",
        "ABÇ123",
        "ABC123\xff",
        "ABC12\xc3\xa4",
        "АBC1234" /* Cyrillic A */,
        "ABC１23" /* fullwidth digit */,
        "%41BC1234",
    };
    char out[DZ_FIN_LEN + 1];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(out, "XXXXXXX", 8);
        assert_int_equal(norm(bad[i], out), DZ_ERR_INVAL);
        assert_string_equal(out, "");
    }
    /* embedded NUL inside the 7 bytes */
    assert_int_equal(dz_fin_normalize("ABC\0123", 7, out), DZ_ERR_INVAL);
    assert_string_equal(out, "");
    assert_int_equal(dz_fin_normalize(NULL, 0, out), DZ_ERR_INVAL);
    /* the length is what counts, not the NUL */
    assert_int_equal(dz_fin_normalize("ABC12345", 7, out), 0);
    assert_string_equal(out, "ABC1234");
}

static void test_fin_is_normal(void **state)
{
    (void)state;
    assert_true(dz_fin_is_normal("ABC1234"));
    assert_false(dz_fin_is_normal("abc1234"));
    assert_false(dz_fin_is_normal("ABC123"));
    assert_false(dz_fin_is_normal("ABC12345"));
    assert_false(dz_fin_is_normal(""));
    assert_false(dz_fin_is_normal(NULL));
}

static struct dz_docpat *compile_default(void)
{
    struct dz_docpat *p = NULL;

    assert_int_equal(dz_docpat_compile(DZ_DOCPAT_DEFAULT, &p, NULL, 0), 0);
    assert_non_null(p);
    return p;
}

static int match(const struct dz_docpat *p, const char *s, char *out)
{
    return dz_docpat_match(p, s, strlen(s), out, DZ_DOC_MAX + 1);
}

static void test_doc_default(void **state)
{
    struct dz_docpat *p = compile_default();
    char out[DZ_DOC_MAX + 1];

    (void)state;
    assert_int_equal(match(p, "AZE12345678", out), 0);
    assert_string_equal(out, "AZE12345678");
    assert_int_equal(match(p, "aa1234567", out), 0);
    assert_string_equal(out, "AA1234567");
    assert_int_equal(match(p, " AA 123 4567 ", out), 0);
    assert_string_equal(out, "AA1234567");
    assert_int_equal(match(p, "aze 12345678", out), 0);
    assert_string_equal(out, "AZE12345678");

    /* anchoring: the alternation is matched as a whole, both ends */
    assert_int_equal(match(p, "XAA1234567", out), DZ_ERR_INVAL);
    assert_string_equal(out, "");
    assert_int_equal(match(p, "AA12345678", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "AZE1234567", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "AZE123456789", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "AZE12345678AA1234567", out), DZ_ERR_INVAL);
    /* alphabet */
    assert_int_equal(match(p, "AA-1234567", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "AA\t1234567", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "AA1234567\n", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "ÄA1234567", out), DZ_ERR_INVAL);
    assert_int_equal(dz_docpat_match(p, "AA1234567\0", 10, out, sizeof(out)), DZ_ERR_INVAL);
    /* empty and only spaces */
    assert_int_equal(match(p, "", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "     ", out), DZ_ERR_INVAL);
    /* too long raw input, even if spaces would shrink it */
    {
        char big[DZ_DOC_INPUT_MAX + 2];

        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memcpy(big, "AA1234567", 9);
        assert_int_equal(match(p, big, out), DZ_ERR_INVAL);
        big[DZ_DOC_INPUT_MAX] = '\0';
        assert_int_equal(match(p, big, out), 0);
    }
    /* out too small for the normal form */
    assert_int_equal(dz_docpat_match(p, "AA1234567", 9, out, 9), DZ_ERR_INVAL);
    assert_int_equal(dz_docpat_match(p, "AA1234567", 9, out, 10), 0);
    dz_docpat_free(p);
}

static void test_doc_custom_and_bad_patterns(void **state)
{
    struct dz_docpat *p = NULL;
    char err[128];
    char out[DZ_DOC_MAX + 1];
    char longpat[DZ_DOCPAT_MAX + 2];

    (void)state;
    assert_int_equal(dz_docpat_compile("[A-Z]{2,3}[0-9]{7,8}", &p, err, sizeof(err)), 0);
    assert_int_equal(match(p, "ab12345678", out), 0);
    assert_string_equal(out, "AB12345678");
    assert_int_equal(match(p, "A12345678", out), DZ_ERR_INVAL);
    dz_docpat_free(p);
    p = NULL;

    /* a pattern the operator anchored already still works */
    assert_int_equal(dz_docpat_compile("^AA[0-9]{7}$", &p, err, sizeof(err)), 0);
    assert_int_equal(match(p, "AA1234567", out), 0);
    assert_int_equal(match(p, "AA12345678", out), DZ_ERR_INVAL);
    assert_int_equal(match(p, "XAA1234567", out), DZ_ERR_INVAL);
    dz_docpat_free(p);
    p = NULL;

    assert_int_equal(dz_docpat_compile("[A-Z", &p, err, sizeof(err)), DZ_ERR_INVAL);
    assert_null(p);
    assert_true(strlen(err) > 0);
    assert_int_equal(dz_docpat_compile("(AA", &p, err, sizeof(err)), DZ_ERR_INVAL);
    assert_int_equal(dz_docpat_compile("", &p, err, sizeof(err)), DZ_ERR_INVAL);
    assert_int_equal(dz_docpat_compile(NULL, &p, NULL, 0), DZ_ERR_INVAL);
    memset(longpat, 'A', sizeof(longpat) - 1);
    longpat[sizeof(longpat) - 1] = '\0';
    assert_int_equal(dz_docpat_compile(longpat, &p, err, sizeof(err)), DZ_ERR_TOOBIG);
    assert_null(p);
    dz_docpat_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fin_good),
        cmocka_unit_test(test_fin_bad),
        cmocka_unit_test(test_fin_is_normal),
        cmocka_unit_test(test_doc_default),
        cmocka_unit_test(test_doc_custom_and_bad_patterns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
