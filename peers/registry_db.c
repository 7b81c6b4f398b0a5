/*
 * registry_db.c - generated people and their SQLite database; see
 * registry_db.h.  Owns the name and place tables, the PRNG and the schema.
 * It never reads the clock, the locale or any randomness but its seed (the
 * output must be the same everywhere), and never writes to a database it
 * did not create itself.
 */
#include "registry_db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/fin.h"
#include "base/log.h"

#include "base/compat.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tables ---- */

static const char *const male_names[] = {
    "Elvin", "Rəşad",  "Tural",  "Kamran", "Orxan", "Elnur", "Fuad",   "Rauf",   "Vüqar",  "Anar",
    "Murad", "Rövşən", "İlham",  "Nicat",  "Cavid", "Samir", "Emil",   "Ramil",  "Səbuhi", "Elçin",
    "Əli",   "Hüseyn", "Məmməd", "Həsən",  "Vüsal", "Zaur",  "Ülvi",   "Kənan",  "Teymur", "Nurlan",
    "Namiq", "Fərid",  "Arif",   "Rəhim",  "Cəlal", "Taleh", "Mehman", "Aqil",   "Babək",  "Cəmil",
    "Eldar", "Fikrət", "Qabil",  "Xəyal",  "Yusif", "Zakir", "Şahin",  "Toğrul", "Ayxan"};

static const char *const female_names[] = {
    "Aynur",  "Günel",  "Nigar",   "Leyla",  "Aysel", "Səbinə", "Nərmin", "Lalə",
    "Gülnar", "Sevinc", "Ülviyyə", "Könül",  "Aytən", "Fidan",  "Xədicə", "Zəhra",
    "Nərgiz", "Şəbnəm", "Türkan",  "Aygün",  "Ləman", "Sevda",  "Vüsalə", "Mehriban",
    "Nailə",  "Ayşən",  "Gülşən",  "Səadət", "Arzu",  "Jalə",   "Aidə",   "Röya",
    "Təranə", "Zümrüd", "Esmira",  "İlahə",  "Sona",  "Validə"};

/* Male form; the female form adds "a" (Əliyev -> Əliyeva). */
static const char *const surnames[] = {
    "Əliyev",        "Məmmədov", "Həsənov",    "Hüseynov", "Quliyev",  "İsmayılov", "Abbasov",
    "Cəfərov",       "Rzayev",   "Süleymanov", "Kərimov",  "Nəsirov",  "Bağırov",   "Orucov",
    "Mustafayev",    "Əhmədov",  "Hacıyev",    "Vəliyev",  "Qasımov",  "İbrahimov", "Novruzov",
    "Babayev",       "Rəhimov",  "Sadıqov",    "Zeynalov", "Salmanov", "Ağayev",    "Mirzəyev",
    "Allahverdiyev", "Nəbiyev",  "Kazımov",    "Əsədov"};

struct place {
    const char *district;
    const char *city;
    const char *settlements[4]; /* NULL-terminated when fewer */
};

static const struct place birth_places[] = {
    {"Binəqədi", "Bakı", {"Biləcəri", "Xocəsən", "Rəsulzadə", NULL}},
    {"Sabunçu", "Bakı", {"Bakıxanov", "Maştağa", "Zabrat", "Bilgəh"}},
    {"Suraxanı", "Bakı", {"Hövsan", "Qaraçuxur", "Əmircan", NULL}},
    {"Xəzər", "Bakı", {"Mərdəkan", "Şüvəlan", "Buzovna", NULL}},
    {"Abşeron", "Xırdalan", {"Masazır", "Novxanı", "Saray", "Görədil"}},
    {"Şəki", "Şəki", {"Kiş", "Baş Göynük", "Oxud", NULL}},
    {"Quba", "Quba", {"Qırmızı Qəsəbə", "Qonaqkənd", "Talabı", NULL}},
    {"Lənkəran", "Lənkəran", {"Haftoni", "Liman", "Boladi", NULL}},
    {"Qəbələ", "Qəbələ", {"Nic", "Vəndam", "Bum", NULL}},
    {"Şamaxı", "Şamaxı", {"Məlhəm", "Qızmeydan", "Çuxuryurd", NULL}},
    {"Gəncə", "Gəncə", {"Kəpəz", "Nizami", "Hacıkənd", NULL}},
    {"Sumqayıt", "Sumqayıt", {"Corat", "Hacı Zeynalabdin", NULL, NULL}},
    {"Mingəçevir", "Mingəçevir", {"Mingəçevir", NULL, NULL, NULL}},
    {"Naxçıvan", "Naxçıvan", {"Babək", "Nehrəm", NULL, NULL}},
    {"Qazax", "Qazax", {"Daş Salahlı", "Şıxlı", NULL, NULL}},
    {"Zaqatala", "Zaqatala", {"Car", "Mamrux", "Əliabad", NULL}},
    {"İsmayıllı", "İsmayıllı", {"Lahıc", "Basqal", "Talıstan", NULL}},
    {"Göyçay", "Göyçay", {"Potu", "Bığır", NULL, NULL}},
    {"Masallı", "Masallı", {"Ərkivan", "Boradigah", NULL, NULL}},
    {"Ağdaş", "Ağdaş", {"Ləki", "Pirəzə", NULL, NULL}},
};

struct residence {
    const char *city;     /* "<city> şəhəri" */
    const char *district; /* NULL outside Baku */
    unsigned postcode;    /* AZ<postcode> */
};

static const struct residence residences[] = {
    {"Bakı", "Nəsimi", 1000},    {"Bakı", "Səbail", 1005},   {"Bakı", "Xətai", 1025},
    {"Bakı", "Nizami", 1029},    {"Bakı", "Suraxanı", 1043}, {"Bakı", "Xəzər", 1044},
    {"Bakı", "Nərimanov", 1060}, {"Bakı", "Yasamal", 1073},  {"Bakı", "Sabunçu", 1080},
    {"Bakı", "Binəqədi", 1110},  {"Sumqayıt", NULL, 5000},   {"Gəncə", NULL, 2000},
    {"Şəki", NULL, 5500},        {"Lənkəran", NULL, 4200},   {"Mingəçevir", NULL, 4500},
    {"Xırdalan", NULL, 100},     {"Quba", NULL, 4000},       {"Şirvan", NULL, 6000},
};

static const char *const streets[] = {"Nizami küçəsi",
                                      "Füzuli küçəsi",
                                      "Üzeyir Hacıbəyov küçəsi",
                                      "Səməd Vurğun küçəsi",
                                      "Rəşid Behbudov küçəsi",
                                      "Azadlıq prospekti",
                                      "Neftçilər prospekti",
                                      "Atatürk prospekti",
                                      "Cəfər Cabbarlı küçəsi",
                                      "Xətai prospekti",
                                      "Həsən bəy Zərdabi küçəsi",
                                      "Şərifzadə küçəsi",
                                      "Mirzə Fətəli Axundov küçəsi",
                                      "Heydər Əliyev prospekti",
                                      "Zərifə Əliyeva küçəsi",
                                      "Bakıxanov küçəsi",
                                      "Yusif Səfərov küçəsi",
                                      "Qara Qarayev prospekti"};

static const char *const mobile_prefixes[] = {"50", "51", "55", "70", "77"};

/* No I or O: they read as 1 and 0 on a card. */
static const char fin_alphabet[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/* ---- PRNG: xoshiro256** seeded through splitmix64 (public domain
 * algorithms by Blackman and Vigna; written from their description). ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), n >= 1, without modulo bias (rejection). */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;

    do {
        x = rng_next(r);
    } while (x >= limit);
    return x % n;
}

static const char *pick(struct rng *r, const char *const *tab, size_t n)
{
    return tab[rng_below(r, n)];
}

/* ---- a set of non-zero 64-bit keys (open addressing) ---- */

struct keyset {
    uint64_t *slot;
    size_t cap; /* power of two */
    size_t used;
};

static uint64_t mix(uint64_t k)
{
    return splitmix64(&k);
}

static int keyset_grow(struct keyset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    uint64_t *ns = calloc(ncap, sizeof(*ns));

    if (!ns)
        return DZ_ERR_NOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t k = s->slot[i];
        size_t j;

        if (!k)
            continue;
        for (j = mix(k) & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
            ;
        ns[j] = k;
    }
    free(s->slot);
    s->slot = ns;
    s->cap = ncap;
    return 0;
}

/* Insert k; *added is false when it was already there. */
static int keyset_add(struct keyset *s, uint64_t k, bool *added)
{
    size_t j;

    *added = false;
    if ((s->used + 1) * 2 > s->cap) {
        int rc = keyset_grow(s);

        if (rc)
            return rc;
    }
    for (j = mix(k) & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1)) {
        if (s->slot[j] == k)
            return 0;
    }
    s->slot[j] = k;
    s->used++;
    *added = true;
    return 0;
}

/* ---- dates (proleptic Gregorian, days since 1970-01-01; Hinnant's
 * civil_from_days written from its description) ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, char out[11])
{
    int64_t era, y;
    unsigned doe, yoe, doy, mp, d, m;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    /* The years used here have four digits; a wider buffer keeps the
     * compiler's truncation check quiet for the general case. */
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%04d-%02u-%02u", (int)y, m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

static void random_date(struct rng *r, int y0, int y1, char out[11])
{
    int64_t a = days_from_civil(y0, 1, 1);
    int64_t b = days_from_civil(y1 + 1, 1, 1);

    civil_from_days(a + (int64_t)rng_below(r, (uint64_t)(b - a)), out);
}

/* ---- the generator ---- */

struct dz_people_gen {
    struct rng rng;
    struct keyset fins;
    struct keyset phones;
    size_t count;
};

int dz_people_gen_new(uint64_t seed, struct dz_people_gen **out)
{
    struct dz_people_gen *g = NULL;

    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return DZ_ERR_NOMEM;
    rng_seed(&g->rng, seed);
    *out = g;
    return 0;
}

void dz_people_gen_free(struct dz_people_gen *g)
{
    if (!g)
        return;
    free(g->fins.slot);
    free(g->phones.slot);
    free(g);
}

static void digits(struct rng *r, char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('0' + rng_below(r, 10));
    out[n] = '\0';
}

static int new_fin(struct dz_people_gen *g, char fin[8])
{
    bool added = false;

    do {
        uint64_t key = 0;

        for (int i = 0; i < 7; i++) {
            fin[i] = fin_alphabet[rng_below(&g->rng, sizeof(fin_alphabet) - 1)];
            key = (key << 8) | (unsigned char)fin[i];
        }
        fin[7] = '\0';
        int rc = keyset_add(&g->fins, key, &added);

        if (rc)
            return rc;
    } while (!added);
    return 0;
}

static int new_phone(struct dz_people_gen *g, char phone[14])
{
    bool added = false;

    do {
        char sub[8];
        uint64_t key;
        const char *pre = pick(&g->rng, mobile_prefixes, N_OF(mobile_prefixes));

        digits(&g->rng, sub, 7);
        snprintf(phone, 14, "+994%s%s", pre, sub);
        key = strtoull(phone + 1, NULL, 10); /* 12 digits, never 0 */
        int rc = keyset_add(&g->phones, key, &added);

        if (rc)
            return rc;
    } while (!added);
    return 0;
}

int dz_people_gen_next(struct dz_people_gen *g, struct dz_person *out)
{
    struct rng *r = &g->rng;
    const struct place *bp;
    const struct residence *res;
    bool is_male;
    const char *first, *father, *surname, *settle;
    size_t nsettle;
    int rc;

    memset(out, 0, sizeof(*out));
    if (g->count >= DZ_PEOPLE_MAX)
        return DZ_ERR_TOOBIG;
    rc = new_fin(g, out->fin);
    if (rc)
        return rc;

    is_male = rng_below(r, 2) == 0;
    first =
        is_male ? pick(r, male_names, N_OF(male_names)) : pick(r, female_names, N_OF(female_names));
    father = pick(r, male_names, N_OF(male_names));
    surname = pick(r, surnames, N_OF(surnames));
    snprintf(out->name, sizeof(out->name), "%s", first);
    snprintf(out->surname, sizeof(out->surname), "%s%s", surname, is_male ? "" : "a");
    snprintf(out->patronymic, sizeof(out->patronymic), "%s %s", father, is_male ? "oğlu" : "qızı");
    snprintf(out->gender, sizeof(out->gender), "%s", is_male ? "male" : "female");
    random_date(r, 1940, 2006, out->birth_date);

    bp = &birth_places[rng_below(r, N_OF(birth_places))];
    for (nsettle = 0; nsettle < 4 && bp->settlements[nsettle]; nsettle++)
        ;
    settle = bp->settlements[rng_below(r, nsettle)];
    snprintf(out->birth_country, sizeof(out->birth_country), "Azərbaycan");
    snprintf(out->birth_district, sizeof(out->birth_district), "%s", bp->district);
    snprintf(out->birth_city, sizeof(out->birth_city), "%s", bp->city);
    snprintf(out->birth_settlement, sizeof(out->birth_settlement), "%s", settle);

    /* New cards (AZE + 8 digits) for most; the older AA + 7 digits. */
    if (rng_below(r, 10) < 7) {
        snprintf(out->doc_series, sizeof(out->doc_series), "AZE");
        digits(r, out->doc_number, 8);
    } else {
        snprintf(out->doc_series, sizeof(out->doc_series), "AA");
        digits(r, out->doc_number, 7);
    }
    random_date(r, 2027, 2036, out->doc_expiry);

    res = &residences[rng_below(r, N_OF(residences))];
    {
        const char *street = pick(r, streets, N_OF(streets));
        unsigned house = 1 + (unsigned)rng_below(r, 180);
        unsigned flat = (unsigned)rng_below(r, 120); /* 0: a house, no flat */
        char flat_s[24] = "";

        if (flat)
            snprintf(flat_s, sizeof(flat_s), ", mənzil %u", flat);
        if (res->district)
            snprintf(out->address, sizeof(out->address),
                     "AZ%04u, %s şəhəri, %s rayonu, %s, ev %u%s", res->postcode, res->city,
                     res->district, street, house, flat_s);
        else
            snprintf(out->address, sizeof(out->address), "AZ%04u, %s şəhəri, %s, ev %u%s",
                     res->postcode, res->city, street, house, flat_s);
    }

    out->nphones = rng_below(r, 4) == 0 ? 2 : 1;
    for (unsigned i = 0; i < out->nphones; i++) {
        rc = new_phone(g, out->phones[i]);
        if (rc) {
            memset(out, 0, sizeof(*out));
            return rc;
        }
    }
    g->count++;
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return s[n] == '\0';
}

bool dz_person_doc_valid(const char *series, const char *number)
{
    if (!series || !number)
        return false;
    if (strcmp(series, "AZE") == 0)
        return strlen(number) == 8 && all_digits(number, 8);
    if (strcmp(series, "AA") == 0)
        return strlen(number) == 7 && all_digits(number, 7);
    return false;
}

bool dz_person_phone_valid(const char *phone)
{
    if (!phone || strlen(phone) != 13 || strncmp(phone, "+994", 4) != 0)
        return false;
    for (size_t i = 0; i < N_OF(mobile_prefixes); i++) {
        if (strncmp(phone + 4, mobile_prefixes[i], 2) == 0)
            return all_digits(phone + 6, 7);
    }
    return false;
}

json_t *dz_person_to_json(const struct dz_person *p)
{
    json_t *phones = json_array();
    json_t *o = NULL;

    if (!phones)
        return NULL;
    for (unsigned i = 0; i < p->nphones && i < DZ_PERSON_PHONES_MAX; i++) {
        if (json_array_append_new(phones, json_string(p->phones[i])) != 0) {
            json_decref(phones);
            return NULL;
        }
    }
    /* "o" steals phones even when packing fails, so no leak either way. */
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s,"
                  " s:{s:s, s:s, s:s}, s:s, s:o}",
                  "fin", p->fin, "name", p->name, "surname", p->surname, "patronymic",
                  p->patronymic, "birth_date", p->birth_date, "birth_place", "country",
                  p->birth_country, "district", p->birth_district, "city", p->birth_city,
                  "settlement", p->birth_settlement, "gender", p->gender, "document", "series",
                  p->doc_series, "number", p->doc_number, "expiry", p->doc_expiry, "address",
                  p->address, "phones", phones);
    return o;
}

/* ---- the database ---- */

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE person("
    " fin TEXT PRIMARY KEY, name TEXT NOT NULL, surname TEXT NOT NULL,"
    " patronymic TEXT NOT NULL, birth_date TEXT NOT NULL, gender TEXT NOT NULL,"
    " birth_country TEXT NOT NULL, birth_district TEXT NOT NULL, birth_city TEXT NOT NULL,"
    " birth_settlement TEXT NOT NULL, doc_series TEXT NOT NULL, doc_number TEXT NOT NULL,"
    " doc_expiry TEXT NOT NULL, address TEXT NOT NULL);"
    "CREATE TABLE phone(number TEXT PRIMARY KEY, fin TEXT NOT NULL REFERENCES person(fin),"
    " pos INTEGER NOT NULL, active INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX phone_fin ON phone(fin);";

static const char select_person_sql[] =
    "SELECT fin, name, surname, patronymic, birth_date, gender, birth_country,"
    " birth_district, birth_city, birth_settlement, doc_series, doc_number, doc_expiry,"
    " address FROM person WHERE fin = ?1";
static const char select_phones_sql[] =
    "SELECT number FROM phone WHERE fin = ?1 AND active = 1 ORDER BY pos LIMIT 2";

struct dz_regdb {
    sqlite3 *db;
    sqlite3_stmt *person;
    sqlite3_stmt *phones;
    sqlite3_stmt *count;
    pthread_mutex_t lock; /* one lookup at a time: the statements are shared */
};

static int db_fail(sqlite3 *db, const char *what)
{
    dz_log(DZ_LOG_ERROR, "registry_db", "%s: %s", what, db ? sqlite3_errmsg(db) : "no handle");
    return DZ_ERR_DB;
}

static int insert_person(sqlite3 *db, sqlite3_stmt *ins, sqlite3_stmt *insph,
                         const struct dz_person *p)
{
    const char *cols[] = {
        p->fin,        p->name,          p->surname,        p->patronymic, p->birth_date,
        p->gender,     p->birth_country, p->birth_district, p->birth_city, p->birth_settlement,
        p->doc_series, p->doc_number,    p->doc_expiry,     p->address};

    sqlite3_reset(ins);
    for (int i = 0; i < (int)N_OF(cols); i++) {
        if (sqlite3_bind_text(ins, i + 1, cols[i], -1, SQLITE_STATIC) != SQLITE_OK)
            return db_fail(db, "bind person");
    }
    if (sqlite3_step(ins) != SQLITE_DONE)
        return db_fail(db, "insert person");
    for (unsigned i = 0; i < p->nphones; i++) {
        sqlite3_reset(insph);
        if (sqlite3_bind_text(insph, 1, p->phones[i], -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(insph, 2, p->fin, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(insph, 3, (int)i) != SQLITE_OK)
            return db_fail(db, "bind phone");
        if (sqlite3_step(insph) != SQLITE_DONE)
            return db_fail(db, "insert phone");
    }
    return 0;
}

static int fill_db(sqlite3 *db, uint64_t seed, size_t n)
{
    struct dz_people_gen *g = NULL;
    sqlite3_stmt *ins = NULL, *insph = NULL, *meta = NULL;
    struct dz_person p;
    char num[32];
    int rc;

    rc = dz_people_gen_new(seed, &g);
    if (rc)
        goto out;
    if (sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, "create schema");
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO person VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,"
                           "?13,?14)",
                           -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO phone(number, fin, pos) VALUES(?1, ?2, ?3)", -1, &insph,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO meta VALUES(?1, ?2)", -1, &meta, NULL) != SQLITE_OK) {
        rc = db_fail(db, "prepare");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = dz_people_gen_next(g, &p);
        if (rc)
            goto out;
        rc = insert_person(db, ins, insph, &p);
        if (rc)
            goto out;
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long)seed);
    if (sqlite3_bind_text(meta, 1, "seed", -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(meta, 2, num, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(meta) != SQLITE_DONE) {
        rc = db_fail(db, "meta");
        goto out;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, "commit");
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(insph);
    sqlite3_finalize(meta);
    dz_people_gen_free(g);
    return rc;
}

int dz_regdb_create(const char *path, uint64_t seed, size_t n)
{
    char tmp[4096];
    sqlite3 *db = NULL;
    bool made = false;
    int rc;

    if (!path || n == 0 || n > DZ_PEOPLE_MAX)
        return DZ_ERR_INVAL;
    if (access(path, F_OK) == 0)
        return DZ_ERR_EXISTS;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return DZ_ERR_INVAL;
    unlink(tmp);
    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = db_fail(db, "create");
        goto out;
    }
    made = true;
    rc = fill_db(db, seed, n);
    if (rc)
        goto out;
    if (sqlite3_close(db) != SQLITE_OK) {
        rc = db_fail(db, "close");
        goto out;
    }
    db = NULL;
    /* link(2) never replaces an existing file: a registry made by a
     * concurrent run wins and ours is dropped. */
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? DZ_ERR_EXISTS : DZ_ERR_IO;
        if (rc == DZ_ERR_IO)
            dz_log(DZ_LOG_ERROR, "registry_db", "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (db)
        sqlite3_close(db);
    if (made)
        unlink(tmp);
    return rc;
}

int dz_regdb_open(const char *path, struct dz_regdb **out)
{
    struct dz_regdb *r = NULL;
    int rc = DZ_ERR_DB;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return DZ_ERR_NOMEM;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return DZ_ERR_NOMEM;
    }
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        dz_log(DZ_LOG_ERROR, "registry_db", "cannot open %s: %s", path,
               r->db ? sqlite3_errmsg(r->db) : "out of memory");
        goto out;
    }
    /* Preparing the statements also checks that this is our schema. */
    if (sqlite3_prepare_v2(r->db, select_person_sql, -1, &r->person, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, select_phones_sql, -1, &r->phones, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db, "SELECT count(*) FROM person", -1, &r->count, NULL) !=
            SQLITE_OK) {
        dz_log(DZ_LOG_ERROR, "registry_db", "%s is not a registry database: %s", path,
               sqlite3_errmsg(r->db));
        goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    dz_regdb_close(r);
    return rc;
}

void dz_regdb_close(struct dz_regdb *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->person);
    sqlite3_finalize(r->phones);
    sqlite3_finalize(r->count);
    sqlite3_close(r->db);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Copy column i into dst[size]; a value that does not fit means the file
 * is not one we wrote. */
static int column(sqlite3_stmt *st, int i, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);

    if (!t || n < 0 || (size_t)n >= size)
        return DZ_ERR_DB;
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return 0;
}

int dz_regdb_get(struct dz_regdb *r, const char *fin, struct dz_person *out)
{
    struct {
        char *dst;
        size_t size;
    } cols[] = {
        {out->fin, sizeof(out->fin)},
        {out->name, sizeof(out->name)},
        {out->surname, sizeof(out->surname)},
        {out->patronymic, sizeof(out->patronymic)},
        {out->birth_date, sizeof(out->birth_date)},
        {out->gender, sizeof(out->gender)},
        {out->birth_country, sizeof(out->birth_country)},
        {out->birth_district, sizeof(out->birth_district)},
        {out->birth_city, sizeof(out->birth_city)},
        {out->birth_settlement, sizeof(out->birth_settlement)},
        {out->doc_series, sizeof(out->doc_series)},
        {out->doc_number, sizeof(out->doc_number)},
        {out->doc_expiry, sizeof(out->doc_expiry)},
        {out->address, sizeof(out->address)},
    };
    int rc = DZ_ERR_DB;
    int st;

    memset(out, 0, sizeof(*out));
    if (!dz_fin_is_normal(fin))
        return DZ_ERR_NOTFOUND;
    pthread_mutex_lock(&r->lock);
    sqlite3_reset(r->person);
    sqlite3_reset(r->phones);
    if (sqlite3_bind_text(r->person, 1, fin, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(r->phones, 1, fin, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = db_fail(r->db, "bind");
        goto out;
    }
    st = sqlite3_step(r->person);
    if (st == SQLITE_DONE) {
        rc = DZ_ERR_NOTFOUND;
        goto out;
    }
    if (st != SQLITE_ROW) {
        rc = db_fail(r->db, "select person");
        goto out;
    }
    for (int i = 0; i < (int)N_OF(cols); i++) {
        if (column(r->person, i, cols[i].dst, cols[i].size) != 0) {
            dz_log(DZ_LOG_ERROR, "registry_db", "bad value in column %d", i);
            goto out;
        }
    }
    while ((st = sqlite3_step(r->phones)) == SQLITE_ROW && out->nphones < DZ_PERSON_PHONES_MAX) {
        if (column(r->phones, 0, out->phones[out->nphones], sizeof(out->phones[0])) != 0)
            goto out;
        out->nphones++;
    }
    if (st != SQLITE_ROW && st != SQLITE_DONE) {
        rc = db_fail(r->db, "select phones");
        goto out;
    }
    rc = 0;
out:
    sqlite3_reset(r->person);
    sqlite3_reset(r->phones);
    pthread_mutex_unlock(&r->lock);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int dz_regdb_count(struct dz_regdb *r, size_t *out)
{
    int rc = DZ_ERR_DB;

    *out = 0;
    pthread_mutex_lock(&r->lock);
    sqlite3_reset(r->count);
    if (sqlite3_step(r->count) == SQLITE_ROW) {
        *out = (size_t)sqlite3_column_int64(r->count, 0);
        rc = 0;
    } else {
        db_fail(r->db, "count");
    }
    sqlite3_reset(r->count);
    pthread_mutex_unlock(&r->lock);
    return rc;
}
