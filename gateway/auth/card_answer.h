/*
 * card_answer.h - the body of POST /auth/card, a card's answer to a
 * challenge, in either of the two shapes the gateway accepts
 * (docs/cards.md "Web eID"):
 *
 *   darvaza-card:  {"nonce", "certificate", "algorithm", "signature"}
 *                  signed data SHA-256(origin) || SHA-256(nonce)
 *   Web eID:       {"nonce", "authToken": {"unverifiedCertificate",
 *                  "algorithm", "signature", "format": "web-eid:1.x",
 *                  "appVersion"}} or the token's fields beside "nonce"
 *                  signed data H(origin) || H(nonce), H the algorithm's hash
 *
 * Both put the origin under the signature, so an answer collected by a
 * look-alike site is useless here.  A pure parser over a parsed JSON
 * object: no I/O, no globals, no key or trust decision (that is
 * sigverify and the certificate check); any thread.
 */
#ifndef DZ_CARD_ANSWER_H
#define DZ_CARD_ANSWER_H

#include <stddef.h>

#include <jansson.h>

#define DZ_CARD_ANSWER_MSG_MAX 128 /* two SHA-512 digests */

enum dz_card_answer_format {
    DZ_CARD_ANSWER_DARVAZA = 0,
    DZ_CARD_ANSWER_WEBEID = 1,
};

struct dz_card_answer {
    enum dz_card_answer_format format;
    const char *nonce;       /* points into the parsed body */
    char algorithm[8];       /* a JWA name as sent; sigverify decides if known */
    unsigned char *cert_der; /* malloc'd */
    size_t cert_len;
    unsigned char *sig; /* malloc'd */
    size_t sig_len;
    char token_format[16]; /* Web eID: "web-eid:1.0"; "" otherwise */
    char app_version[128]; /* Web eID: informative, printable ASCII; may be "" */
};

/*
 * Read body into *out (cleared on entry).  Returns 0, or DZ_ERR_INVAL with
 * *why (a static string for the problem's detail) when a field is missing,
 * of the wrong type, too long, not base64, or the Web eID format is not
 * version 1.  DZ_ERR_NOMEM.  On any error nothing is left to free; on
 * success the caller calls dz_card_answer_cleanup.  Never checks the
 * signature or the certificate.
 */
int dz_card_answer_parse(const json_t *body, struct dz_card_answer *out, const char **why);

/* Free what dz_card_answer_parse allocated (a zeroed or NULL answer: no-op). */
void dz_card_answer_cleanup(struct dz_card_answer *a);

/*
 * The data the card signed for origin: H(origin) || H(nonce), with H =
 * SHA-256 for darvaza-card answers and the algorithm's hash for Web eID
 * ones.  out holds DZ_CARD_ANSWER_MSG_MAX bytes; *out_len gets the length.
 * Returns 0, or DZ_ERR_INVAL for a Web eID algorithm with no known hash.
 */
int dz_card_answer_message(const struct dz_card_answer *a, const char *origin,
                           unsigned char out[DZ_CARD_ANSWER_MSG_MAX], size_t *out_len);

#endif
