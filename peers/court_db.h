/*
 * court_db.h - the e-court stand-in's SQLite store: notices (the document,
 * its level-T CAdES signature and the court's own verification report) and
 * the outbox of deliveries to the party (one row per phone / e-mail).  A
 * notice and its outbox rows are written in one transaction: a notice is
 * never stored without its deliveries, nor the reverse.
 *
 * Threading: the connection is opened in serialized mode; every call
 * blocks (disk), so the peer calls them from its pool only.
 */
#ifndef DZ_COURT_DB_H
#define DZ_COURT_DB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define DZ_COURT_LIST_MAX 100 /* notices returned by one listing */

struct dz_courtdb;

struct dz_court_notice {
    const char *judge_fin;
    const char *party_fin;
    const char *case_no;
    const unsigned char *document;
    size_t document_len;
    const unsigned char *signature; /* CMS DER, level T */
    size_t signature_len;
    /* SHA-256 of the SignerInfo's signature value (dz_cades_signature_digest):
     * the judge's one act of signing, whatever unsigned attributes (the
     * time-stamp) surround it. */
    const unsigned char *signature_value_sha256;
    const char *report_json; /* the court's verification report */
};

/* Open (creating the schema when new).  0, DZ_ERR_DB, DZ_ERR_NOMEM. */
int dz_courtdb_open(const char *path, struct dz_courtdb **out);
void dz_courtdb_close(struct dz_courtdb *db);

/* Store n with an outbox row per phone and, when email is not NULL, one
 * for the e-mail.  *id is the new notice's id.  0, DZ_ERR_EXISTS (a notice
 * with the same signature value was stored before: nothing is stored),
 * DZ_ERR_DB. */
int dz_courtdb_store(struct dz_courtdb *db, const struct dz_court_notice *n,
                     const char *const *phones, size_t nphones, const char *email, int64_t *id);

/* The party's notices, newest first (at most DZ_COURT_LIST_MAX):
 * [{"id","case","judge_fin","party_fin","received_at","document"(base64),
 *   "signature"(base64),"report":{...},"deliveries":[{"channel","address","state"}],
 *   "read_at"(Unix seconds, or null before "I have read it")}]
 * *out is a new reference.  0, DZ_ERR_DB, DZ_ERR_NOMEM. */
int dz_courtdb_list(struct dz_courtdb *db, const char *party_fin, json_t **out);

/* The party says they have read notice_id ("I have read it"): the first
 * time is kept, *read_at (Unix seconds) is it.  0, DZ_ERR_NOTFOUND (no such
 * notice for this party), DZ_ERR_DB. */
int dz_courtdb_mark_read(struct dz_courtdb *db, int64_t notice_id, const char *party_fin,
                         int64_t now, int64_t *read_at);

/* The notices a judge filed, newest first (at most DZ_COURT_LIST_MAX), each
 * the same object as dz_courtdb_list's (deliveries and read_at are the
 * judge's delivery and read status).  0, DZ_ERR_DB, DZ_ERR_NOMEM. */
int dz_courtdb_list_filed(struct dz_courtdb *db, const char *judge_fin, json_t **out);

/* Outbox rows (for tests and the demo): count of rows for a notice id
 * (0 = every notice).  0, DZ_ERR_DB. */
int dz_courtdb_outbox_count(struct dz_courtdb *db, int64_t notice_id, size_t *out);

#endif
