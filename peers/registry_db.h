/*
 * registry_db.h - the population registry peer's data: a deterministic
 * generator of plausible Azerbaijani people and the SQLite database that
 * holds them.
 *
 * The generator is a pure function of its seed: the same seed gives the same
 * people in the same order on every machine (integer-only PRNG, no locale,
 * no clock), so tests and the demo can name people by FIN.  Names and places
 * are UTF-8.
 *
 * Threading: a generator belongs to one thread.  A struct dz_regdb may be
 * shared by any threads (lookups are serialised inside); its calls block on
 * SQLite, so a loop thread must run them through lib/http/pool.h.
 */
#ifndef DZ_PEER_REGISTRY_DB_H
#define DZ_PEER_REGISTRY_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define DZ_PEOPLE_MAX 1000000 /* most people --init-db makes */
#define DZ_PERSON_PHONES_MAX 2

/* One registry record.  Every string is NUL-terminated UTF-8. */
struct dz_person {
    char fin[8]; /* 7 of [0-9A-Z] */
    char name[32];
    char surname[48];
    char patronymic[64]; /* "<father's name> oğlu|qızı" */
    char birth_date[11]; /* YYYY-MM-DD */
    char gender[8];      /* "male" | "female" */
    char birth_country[32];
    char birth_district[48];
    char birth_city[48];
    char birth_settlement[64];
    char doc_series[4]; /* "AZE" (8 digits follow) or "AA" (7 digits) */
    char doc_number[9];
    char doc_expiry[11]; /* YYYY-MM-DD */
    char address[192];
    char phones[DZ_PERSON_PHONES_MAX][14]; /* "+994" + 9 digits */
    unsigned nphones;                      /* 1 or 2 */
};

struct dz_people_gen;

/* A generator for seed.  0, DZ_ERR_NOMEM.  Free with dz_people_gen_free. */
int dz_people_gen_new(uint64_t seed, struct dz_people_gen **out);
void dz_people_gen_free(struct dz_people_gen *g);

/* The next person: FIN and phone numbers are unique within this generator.
 * 0, DZ_ERR_TOOBIG after DZ_PEOPLE_MAX people, DZ_ERR_NOMEM. */
int dz_people_gen_next(struct dz_people_gen *g, struct dz_person *out);

/* Shape checks, used by the tests and by the document check. */
bool dz_person_doc_valid(const char *series, const char *number);
bool dz_person_phone_valid(const char *phone);

/* The record as the registry answers it (field names of the contract);
 * NULL when out of memory.  Caller owns the reference. */
json_t *dz_person_to_json(const struct dz_person *p);

/* --- the database --- */
struct dz_regdb;

/* Make a new database at path with n people (1..DZ_PEOPLE_MAX) from seed.
 * Written to a temporary file and renamed, so path either does not exist or
 * is complete.  DZ_ERR_EXISTS when path exists (it is never overwritten),
 * DZ_ERR_INVAL, DZ_ERR_DB, DZ_ERR_IO, DZ_ERR_NOMEM.  Blocks. */
int dz_regdb_create(const char *path, uint64_t seed, size_t n);

/* Open an existing database read-only.  DZ_ERR_DB (missing, not a registry
 * database), DZ_ERR_NOMEM.  Blocks. */
int dz_regdb_open(const char *path, struct dz_regdb **out);
void dz_regdb_close(struct dz_regdb *db);

/* The person with FIN fin (normal form).  0, DZ_ERR_NOTFOUND, DZ_ERR_DB.
 * *out is cleared first.  Any thread; blocks. */
int dz_regdb_get(struct dz_regdb *db, const char *fin, struct dz_person *out);

/* Number of people.  0 or DZ_ERR_DB.  Any thread; blocks. */
int dz_regdb_count(struct dz_regdb *db, size_t *out);

#endif
