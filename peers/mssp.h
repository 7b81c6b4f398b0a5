/*
 * mssp.h - the mobile-signature stand-ins of `darvaza-peer`: the MSSP
 * (peers/mssp.c, a Mobile Signature Service Provider with a REST API like
 * Mobile-ID's) and the phone (peers/phone.c, a SIM-held key that approves
 * or refuses what the MSSP asks), plus the pure parsers of every message
 * they exchange (peers/mssp_msg.c).  The protocol is docs/mssp.md.
 *
 * The parsers take bounded buffers, do no I/O, keep no state, and fill
 * fixed-size structures; they may be called from any thread.  Each clears
 * its output on entry and, on failure, points *why (when why is not NULL)
 * at a static English reason such as "hash: not base64" that may be shown
 * to the sender.
 */
#ifndef DZ_MSSP_H
#define DZ_MSSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/fin.h"
#include "keys/midcode.h"

/* Modes of darvaza-peer (argv[0] is the mode name; exit code 0/1/2).
 * Weak declarations: tests that include peers/main.c on its own (to reach
 * its static helpers) link without these modes; the binary always has them. */
int dz_peer_mssp_main(int argc, char **argv);
int dz_peer_phone_main(int argc, char **argv);

#define DZ_MSSP_PHONE_MAX 16  /* "+" and at most 15 digits (E.164) */
#define DZ_MSSP_RP_MAX 64     /* relying party name */
#define DZ_MSSP_TEXT_MAX 200  /* display_text, bytes of UTF-8 */
#define DZ_MSSP_SID_LEN 36    /* session ids: UUID text, lower-case hex */
#define DZ_MSSP_SIG_MAX 512   /* signature bytes a phone may send */
#define DZ_MSSP_BODY_MAX 8192 /* request bodies, both APIs */
#define DZ_MSSP_HOLDERS_MAX 1024
#define DZ_MSSP_PATH_MAX 4096 /* cert_file in the phones file */
#define DZ_MSSP_WAIT_MAX_MS 30000

enum dz_mssp_hash { DZ_MSSP_SHA256, DZ_MSSP_SHA384, DZ_MSSP_SHA512 };
enum dz_mssp_kind { DZ_MSSP_AUTHENTICATION, DZ_MSSP_SIGNATURE };

/* Final results of a session (COMPLETE).  Their names are the protocol's
 * "result" strings: "OK", "USER_CANCELLED", ... */
enum dz_mssp_result {
    DZ_MSSP_OK,
    DZ_MSSP_USER_CANCELLED,
    DZ_MSSP_TIMEOUT,
    DZ_MSSP_NOT_MID_CLIENT,
    DZ_MSSP_PHONE_ABSENT,
    DZ_MSSP_DELIVERY_ERROR,
};

/* "SHA256", "SHA384", "SHA512"; digest length 32, 48, 64. */
const char *dz_mssp_hash_name(enum dz_mssp_hash h);
size_t dz_mssp_hash_len(enum dz_mssp_hash h);
/* "authentication" | "signature". */
const char *dz_mssp_kind_name(enum dz_mssp_kind k);
/* "OK", "USER_CANCELLED", ...; dz_mssp_result_parse is the inverse
 * (0 or DZ_ERR_INVAL). */
const char *dz_mssp_result_name(enum dz_mssp_result r);
int dz_mssp_result_parse(const char *s, enum dz_mssp_result *out);

/* "+" followed by 7..15 digits, the first not 0, NUL-terminated. */
bool dz_mssp_phone_valid(const char *s);
/* 36 characters, lower-case hex with '-' at 8, 13, 18 and 23. */
bool dz_mssp_sid_valid(const char *s);

/* POST /mid/authentication and /mid/signature, from the relying party. */
struct dz_mssp_start {
    char relying_party[DZ_MSSP_RP_MAX + 1];
    char phone[DZ_MSSP_PHONE_MAX + 1];
    char fin[DZ_FIN_LEN + 1]; /* normalised (upper case) */
    unsigned char hash[DZ_MID_HASH_MAX];
    size_t hash_len; /* = dz_mssp_hash_len(hash_type) */
    enum dz_mssp_hash hash_type;
    char display_text[DZ_MSSP_TEXT_MAX + 1]; /* "" when not given */
    int verification_code;                   /* -1 when not given; else equals the hash's */
};
/* 0, DZ_ERR_PARSE (not a JSON object, duplicate member), DZ_ERR_INVAL (a
 * member missing, unknown, of the wrong type or out of bounds; a
 * verification_code that is not the hash's). */
int dz_mssp_parse_start(const void *body, size_t len, struct dz_mssp_start *out, const char **why);

/* GET /phone/{phone}/pending, as the phone reads it. */
struct dz_mssp_job {
    char session_id[DZ_MSSP_SID_LEN + 1];
    enum dz_mssp_kind kind;
    char relying_party[DZ_MSSP_RP_MAX + 1];
    char display_text[DZ_MSSP_TEXT_MAX + 1];
    char verification_code[DZ_MID_CODE_LEN + 1]; /* as the MSSP sent it */
    unsigned char hash[DZ_MID_HASH_MAX];
    size_t hash_len;
    enum dz_mssp_hash hash_type;
};
/* 0, DZ_ERR_PARSE, DZ_ERR_INVAL (same classes as above). */
int dz_mssp_parse_job(const void *body, size_t len, struct dz_mssp_job *out, const char **why);

/* POST /phone/{phone}/answer. */
struct dz_mssp_answer {
    char session_id[DZ_MSSP_SID_LEN + 1];
    enum dz_mssp_result result; /* DZ_MSSP_OK or DZ_MSSP_USER_CANCELLED */
    unsigned char signature[DZ_MSSP_SIG_MAX];
    size_t signature_len; /* > 0 exactly when result is OK */
};
int dz_mssp_parse_answer(const void *body, size_t len, struct dz_mssp_answer *out,
                         const char **why);

/* The MSSP's --phones file: a JSON array of {"phone","fin","cert_file"}.
 * Phones are unique; a FIN may hold several phones. */
struct dz_mssp_holder {
    char phone[DZ_MSSP_PHONE_MAX + 1];
    char fin[DZ_FIN_LEN + 1];
    char cert_file[DZ_MSSP_PATH_MAX + 1];
};
/* *out is a calloc'd array of *n entries (caller frees with free()), at
 * least 1 and at most DZ_MSSP_HOLDERS_MAX.  0, DZ_ERR_PARSE, DZ_ERR_INVAL
 * (with the entry index in *bad_index, else -1), DZ_ERR_NOMEM. */
int dz_mssp_parse_holders(const void *text, size_t len, struct dz_mssp_holder **out, size_t *n,
                          long *bad_index, const char **why);

/* A QR login payload (DESIGN §4.6): "darvaza-qr:1:<id>:<t>:<code>" with
 * id [A-Za-z0-9_-]{1,64}, t decimal seconds 0..86400 without leading zeros,
 * code 16..64 hex digits.  The phone needs the id (where to answer); it
 * signs the payload as a whole and checks nothing else (the gateway does). */
#define DZ_QR_PAYLOAD_MAX 256
#define DZ_QR_ID_MAX 64
struct dz_qr_payload {
    char id[DZ_QR_ID_MAX + 1];
    uint32_t t;
    char code[65];
};
/* 0 or DZ_ERR_INVAL. */
int dz_qr_payload_parse(const char *s, size_t len, struct dz_qr_payload *out);

#endif
