/*
 * test_people.c - the registry peer's generated people (peers/registry_db.c):
 * unique well-formed FINs, determinism for a seed, document numbers and
 * phones of the right shape, and the SQLite round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../peers/registry_db.c"

#define N_PEOPLE 10000

static struct dz_person *generate(uint64_t seed, size_t n)
{
    struct dz_people_gen *g = NULL;
    struct dz_person *all = calloc(n, sizeof(*all));

    assert_non_null(all);
    assert_int_equal(dz_people_gen_new(seed, &g), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(dz_people_gen_next(g, &all[i]), 0);
    dz_people_gen_free(g);
    return all;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort pointers to the strings and look for neighbours that are equal. */
static size_t count_duplicates(const char **v, size_t n)
{
    size_t dups = 0;

    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 1; i < n; i++)
        dups += strcmp(v[i - 1], v[i]) == 0;
    return dups;
}

static void test_fins_unique_and_well_formed(void **state)
{
    struct dz_person *all = generate(1, N_PEOPLE);
    const char **fins = calloc(N_PEOPLE, sizeof(*fins));

    (void)state;
    assert_non_null(fins);
    for (size_t i = 0; i < N_PEOPLE; i++) {
        assert_true(dz_fin_is_normal(all[i].fin));
        /* never the confusable letters */
        assert_null(strchr(all[i].fin, 'I'));
        assert_null(strchr(all[i].fin, 'O'));
        fins[i] = all[i].fin;
    }
    assert_int_equal(count_duplicates(fins, N_PEOPLE), 0);
    free(fins);
    free(all);
}

static void test_deterministic(void **state)
{
    struct dz_person *a = generate(42, 500);
    struct dz_person *b = generate(42, 500);
    struct dz_person *c = generate(43, 500);
    size_t same_as_c = 0;

    (void)state;
    assert_memory_equal(a, b, 500 * sizeof(*a));
    for (size_t i = 0; i < 500; i++)
        same_as_c += strcmp(a[i].fin, c[i].fin) == 0;
    assert_true(same_as_c < 5);
    free(a);
    free(b);
    free(c);
}

/* A fixed point: if the generator changes, the demo's people change too,
 * so this fails loudly instead of silently renaming everybody. */
static void test_known_first_person(void **state)
{
    struct dz_person *a = generate(1, 2);

    (void)state;
    assert_string_equal(a[0].fin, "TCN5ME6");
    assert_string_equal(a[0].name, "Sevinc");
    assert_string_equal(a[0].surname, "Vəliyeva");
    assert_string_equal(a[0].patronymic, "Qabil qızı");
    assert_string_equal(a[0].birth_date, "1946-05-07");
    assert_string_equal(a[0].doc_series, "AZE");
    assert_string_equal(a[0].doc_number, "95107577");
    assert_string_equal(a[0].phones[0], "+994779619462");
    assert_string_equal(a[1].fin, "C5K27WT");
    free(a);
}

static void test_documents_match_pattern(void **state)
{
    struct dz_person *all = generate(7, N_PEOPLE);
    struct dz_docpat *pat = NULL;
    size_t aze = 0, aa = 0;

    (void)state;
    /* The gateway's default pattern must accept every generated document. */
    assert_int_equal(dz_docpat_compile(DZ_DOCPAT_DEFAULT, &pat, NULL, 0), 0);
    for (size_t i = 0; i < N_PEOPLE; i++) {
        char doc[32], norm[DZ_DOC_MAX + 1];

        assert_true(dz_person_doc_valid(all[i].doc_series, all[i].doc_number));
        snprintf(doc, sizeof(doc), "%s%s", all[i].doc_series, all[i].doc_number);
        assert_int_equal(dz_docpat_match(pat, doc, strlen(doc), norm, sizeof(norm)), 0);
        assert_string_equal(norm, doc);
        aze += strcmp(all[i].doc_series, "AZE") == 0;
        aa += strcmp(all[i].doc_series, "AA") == 0;
        assert_int_equal(strlen(all[i].doc_expiry), 10);
        assert_true(strcmp(all[i].doc_expiry, "2027-01-01") >= 0);
        assert_true(strcmp(all[i].doc_expiry, "2036-12-31") <= 0);
    }
    assert_int_equal(aze + aa, N_PEOPLE);
    assert_true(aze > N_PEOPLE / 2 && aa > N_PEOPLE / 5); /* both kinds occur */
    dz_docpat_free(pat);
    free(all);
}

static void test_phones_well_formed_and_unique(void **state)
{
    struct dz_person *all = generate(3, N_PEOPLE);
    const char **phones = calloc(N_PEOPLE * 2, sizeof(*phones));
    size_t n = 0, twos = 0;

    (void)state;
    assert_non_null(phones);
    for (size_t i = 0; i < N_PEOPLE; i++) {
        assert_true(all[i].nphones == 1 || all[i].nphones == 2);
        twos += all[i].nphones == 2;
        for (unsigned j = 0; j < all[i].nphones; j++) {
            assert_true(dz_person_phone_valid(all[i].phones[j]));
            phones[n++] = all[i].phones[j];
        }
    }
    assert_true(twos > 0 && twos < N_PEOPLE);
    assert_int_equal(count_duplicates(phones, n), 0);
    free(phones);
    free(all);
}

static void test_people_plausible(void **state)
{
    struct dz_person *all = generate(5, 2000);
    size_t males = 0;

    (void)state;
    for (size_t i = 0; i < 2000; i++) {
        const struct dz_person *p = &all[i];
        size_t sl = strlen(p->surname);
        bool male = strcmp(p->gender, "male") == 0;

        assert_true(male || strcmp(p->gender, "female") == 0);
        males += male;
        assert_true(strlen(p->name) > 1);
        /* Əliyev / Əliyeva; patronymic "<father> oğlu|qızı" */
        assert_true(sl > 3);
        assert_int_equal(p->surname[sl - 1] == 'a', !male);
        assert_non_null(strstr(p->patronymic, male ? " oğlu" : " qızı"));
        assert_int_equal(strlen(p->birth_date), 10);
        assert_true(strcmp(p->birth_date, "1940-01-01") >= 0);
        assert_true(strcmp(p->birth_date, "2006-12-31") <= 0);
        assert_string_equal(p->birth_country, "Azərbaycan");
        assert_true(p->birth_district[0] && p->birth_city[0] && p->birth_settlement[0]);
        assert_true(strncmp(p->address, "AZ", 2) == 0);
    }
    assert_true(males > 800 && males < 1200);
    free(all);
}

static void test_dates(void **state)
{
    char d[11];

    (void)state;
    civil_from_days(0, d);
    assert_string_equal(d, "1970-01-01");
    civil_from_days(days_from_civil(2000, 2, 29), d);
    assert_string_equal(d, "2000-02-29");
    civil_from_days(days_from_civil(1940, 1, 1) - 1, d);
    assert_string_equal(d, "1939-12-31");
    assert_int_equal(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);
    assert_int_equal(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1);
}

static void test_shape_checks_reject_bad_input(void **state)
{
    (void)state;
    assert_true(dz_person_doc_valid("AZE", "12345678"));
    assert_true(dz_person_doc_valid("AA", "1234567"));
    assert_false(dz_person_doc_valid("AZE", "1234567"));
    assert_false(dz_person_doc_valid("AZE", "123456789"));
    assert_false(dz_person_doc_valid("AA", "12345678"));
    assert_false(dz_person_doc_valid("AA", "12345a7"));
    assert_false(dz_person_doc_valid("aze", "12345678"));
    assert_false(dz_person_doc_valid("AB", "1234567"));
    assert_false(dz_person_doc_valid(NULL, "1234567"));
    assert_false(dz_person_doc_valid("AA", NULL));

    assert_true(dz_person_phone_valid("+994501234567"));
    assert_true(dz_person_phone_valid("+994771234567"));
    assert_false(dz_person_phone_valid("+994521234567")); /* not a mobile prefix */
    assert_false(dz_person_phone_valid("+99450123456"));
    assert_false(dz_person_phone_valid("+9945012345678"));
    assert_false(dz_person_phone_valid("994501234567"));
    assert_false(dz_person_phone_valid("+99450123456x"));
    assert_false(dz_person_phone_valid(""));
    assert_false(dz_person_phone_valid(NULL));
}

static void test_json(void **state)
{
    struct dz_person *p = generate(9, 1);
    json_t *o = dz_person_to_json(p);
    json_t *bp, *doc;

    (void)state;
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "fin")), p->fin);
    assert_string_equal(json_string_value(json_object_get(o, "patronymic")), p->patronymic);
    bp = json_object_get(o, "birth_place");
    assert_string_equal(json_string_value(json_object_get(bp, "country")), "Azərbaycan");
    assert_non_null(json_object_get(bp, "settlement"));
    doc = json_object_get(o, "document");
    assert_string_equal(json_string_value(json_object_get(doc, "series")), p->doc_series);
    assert_string_equal(json_string_value(json_object_get(doc, "number")), p->doc_number);
    assert_string_equal(json_string_value(json_object_get(doc, "expiry")), p->doc_expiry);
    assert_int_equal(json_array_size(json_object_get(o, "phones")), p->nphones);
    assert_int_equal(json_object_size(o), 10);
    json_decref(o);
    free(p);
}

static void test_db_round_trip(void **state)
{
    char dir[] = "/tmp/test_people.XXXXXX";
    char path[256], junk[256];
    struct dz_person *all;
    struct dz_person got;
    struct dz_regdb *db = NULL;
    size_t n = 0;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    snprintf(junk, sizeof(junk), "%s/junk.db", dir);

    assert_int_equal(dz_regdb_create(path, 11, 0), DZ_ERR_INVAL);
    assert_int_equal(dz_regdb_create(path, 11, DZ_PEOPLE_MAX + 1), DZ_ERR_INVAL);
    assert_int_equal(dz_regdb_create(path, 11, 300), 0);
    assert_int_equal(dz_regdb_create(path, 11, 300), DZ_ERR_EXISTS);

    all = generate(11, 300);
    assert_int_equal(dz_regdb_open(path, &db), 0);
    assert_int_equal(dz_regdb_count(db, &n), 0);
    assert_int_equal(n, 300);
    for (size_t i = 0; i < 300; i += 37) {
        assert_int_equal(dz_regdb_get(db, all[i].fin, &got), 0);
        assert_memory_equal(&got, &all[i], sizeof(got));
    }
    assert_int_equal(dz_regdb_get(db, "ZZZZZZZ", &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_regdb_get(db, "abc", &got), DZ_ERR_NOTFOUND);
    assert_int_equal(dz_regdb_get(db, "ABCDEFGH", &got), DZ_ERR_NOTFOUND);
    assert_int_equal(got.fin[0], '\0');
    dz_regdb_close(db);
    db = NULL;

    /* not there, not a database, not ours */
    assert_int_equal(dz_regdb_open(junk, &db), DZ_ERR_DB);
    assert_null(db);
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("this is not sqlite\n", f);
    fclose(f);
    assert_int_equal(dz_regdb_open(junk, &db), DZ_ERR_DB);
    assert_null(db);

    unlink(junk);
    unlink(path);
    rmdir(dir);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fins_unique_and_well_formed),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_known_first_person),
        cmocka_unit_test(test_documents_match_pattern),
        cmocka_unit_test(test_phones_well_formed_and_unique),
        cmocka_unit_test(test_people_plausible),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_shape_checks_reject_bad_input),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_db_round_trip),
    };

    dz_log_set_level(DZ_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
