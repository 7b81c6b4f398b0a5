/*
 * mssp_msg.c - the parsers of the mobile-signature messages (see mssp.h):
 * what a relying party starts, what the phone is handed, what it answers,
 * the MSSP's phones file and the QR login payload.  Pure functions over
 * bounded buffers, so they are unit-tested and fuzzed on their own.  They
 * never read files, never touch a key and never decide a session's fate.
 */
#include "mssp.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/b64.h"
#include "base/err.h"
#include "base/parse.h"

#include "base/compat.h"

static const char *const hash_names[] = {"SHA256", "SHA384", "SHA512"};
static const size_t hash_lens[] = {32, 48, 64};
static const char *const result_names[] = {
    "OK", "USER_CANCELLED", "TIMEOUT", "NOT_MID_CLIENT", "PHONE_ABSENT", "DELIVERY_ERROR"};

const char *dz_mssp_hash_name(enum dz_mssp_hash h)
{
    return (unsigned)h < 3 ? hash_names[h] : "?";
}

size_t dz_mssp_hash_len(enum dz_mssp_hash h)
{
    return (unsigned)h < 3 ? hash_lens[h] : 0;
}

const char *dz_mssp_kind_name(enum dz_mssp_kind k)
{
    return k == DZ_MSSP_SIGNATURE ? "signature" : "authentication";
}

const char *dz_mssp_result_name(enum dz_mssp_result r)
{
    return (unsigned)r < sizeof(result_names) / sizeof(result_names[0]) ? result_names[r] : "?";
}

int dz_mssp_result_parse(const char *s, enum dz_mssp_result *out)
{
    *out = DZ_MSSP_USER_CANCELLED;
    for (size_t i = 0; s && i < sizeof(result_names) / sizeof(result_names[0]); i++) {
        if (strcmp(s, result_names[i]) == 0) {
            *out = (enum dz_mssp_result)i;
            return 0;
        }
    }
    return DZ_ERR_INVAL;
}

bool dz_mssp_phone_valid(const char *s)
{
    size_t n;

    if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    n = strspn(s + 1, "0123456789");
    return n >= 7 && n <= 15 && s[1 + n] == '\0';
}

bool dz_mssp_sid_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < DZ_MSSP_SID_LEN; i++) {
        char c = s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return s[DZ_MSSP_SID_LEN] == '\0';
}

/* ---- JSON helpers ---- */

/* A JSON object with only members from allowed (NULL-terminated). */
static int load_object(const void *body, size_t len, const char *const *allowed, json_t **out,
                       const char **why)
{
    json_t *o;
    const char *key;
    json_t *v;

    *out = NULL;
    if (!body || len == 0 || len > DZ_MSSP_BODY_MAX) {
        *why = len ? "body too large" : "empty body";
        return DZ_ERR_PARSE;
    }
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        *why = "body must be one JSON object (no duplicate members)";
        return DZ_ERR_PARSE;
    }
    json_object_foreach(o, key, v)
    {
        bool known = false;

        for (const char *const *a = allowed; *a; a++)
            known = known || strcmp(key, *a) == 0;
        if (!known) {
            json_decref(o);
            *why = "unknown member";
            return DZ_ERR_INVAL;
        }
    }
    *out = o;
    return 0;
}

/* Member name as a string of 1..max bytes (0..max when may_be_empty) into
 * buf[max + 1], without control characters.  Absent: DZ_ERR_NOTFOUND. */
static int get_str(const json_t *o, const char *name, char *buf, size_t max, bool may_be_empty)
{
    json_t *v = json_object_get(o, name);
    const char *s;
    size_t n;

    buf[0] = '\0';
    if (!v)
        return DZ_ERR_NOTFOUND;
    if (!json_is_string(v))
        return DZ_ERR_INVAL;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > max || (n == 0 && !may_be_empty))
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        /* json_string_length counts an embedded NUL too: refused here. */
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return DZ_ERR_INVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

static int parse_hash_type(const char *s, enum dz_mssp_hash *out)
{
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, hash_names[i]) == 0) {
            *out = (enum dz_mssp_hash)i;
            return 0;
        }
    }
    return DZ_ERR_INVAL;
}

/* "hash" (strict base64) and "hash_type" together: the digest must have
 * the length of its type. */
static int get_hash(const json_t *o, unsigned char *hash, size_t *hash_len, enum dz_mssp_hash *type,
                    const char **why)
{
    char tname[8];
    char b64[DZ_MID_HASH_MAX * 2];
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc;

    if (get_str(o, "hash_type", tname, sizeof(tname) - 1, false) != 0 ||
        parse_hash_type(tname, type) != 0) {
        *why = "hash_type: one of SHA256, SHA384, SHA512";
        return DZ_ERR_INVAL;
    }
    if (get_str(o, "hash", b64, sizeof(b64) - 1, false) != 0) {
        *why = "hash: base64 of the digest, required";
        return DZ_ERR_INVAL;
    }
    rc = dz_b64_decode(b64, strlen(b64), false, &raw, &raw_len);
    if (rc == DZ_ERR_NOMEM)
        return rc;
    if (rc != 0 || raw_len != dz_mssp_hash_len(*type)) {
        free(raw);
        *why = rc ? "hash: not base64" : "hash: length does not match hash_type";
        return DZ_ERR_INVAL;
    }
    memcpy(hash, raw, raw_len);
    *hash_len = raw_len;
    free(raw);
    return 0;
}

/* A 4-digit decimal string "0000".."8191". */
static int parse_code(const char *s, int *out)
{
    long long v = 0;

    *out = -1;
    if (strlen(s) != DZ_MID_CODE_LEN || strspn(s, "0123456789") != DZ_MID_CODE_LEN)
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < DZ_MID_CODE_LEN; i++)
        v = v * 10 + (s[i] - '0');
    if (v > DZ_MID_CODE_MAX)
        return DZ_ERR_INVAL;
    *out = (int)v;
    return 0;
}

static bool rp_name_valid(const char *s)
{
    return s[0] &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ._-") ==
               strlen(s);
}

/* ---- relying party: start a session ---- */

int dz_mssp_parse_start(const void *body, size_t len, struct dz_mssp_start *out, const char **why)
{
    static const char *const allowed[] = {
        "relying_party",     "phone", "fin", "hash", "hash_type", "display_text",
        "verification_code", NULL};
    const char *dummy = NULL;
    json_t *o = NULL;
    char fin[DZ_FIN_LEN * 4 + 1];
    char code[16];
    int rc;

    if (!why)
        why = &dummy;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    out->verification_code = -1;
    rc = load_object(body, len, allowed, &o, why);
    if (rc)
        return rc;
    rc = DZ_ERR_INVAL;
    if (get_str(o, "relying_party", out->relying_party, DZ_MSSP_RP_MAX, false) != 0 ||
        !rp_name_valid(out->relying_party)) {
        *why = "relying_party: 1..64 of [A-Za-z0-9 ._-], required";
        goto out;
    }
    if (get_str(o, "phone", out->phone, DZ_MSSP_PHONE_MAX, false) != 0 ||
        !dz_mssp_phone_valid(out->phone)) {
        *why = "phone: \"+\" and 7..15 digits, required";
        goto out;
    }
    if (get_str(o, "fin", fin, sizeof(fin) - 1, false) != 0 ||
        dz_fin_normalize(fin, strlen(fin), out->fin) != 0) {
        *why = "fin: 7 letters or digits, required";
        goto out;
    }
    rc = get_hash(o, out->hash, &out->hash_len, &out->hash_type, why);
    if (rc)
        goto out;
    rc = DZ_ERR_INVAL;
    if (get_str(o, "display_text", out->display_text, DZ_MSSP_TEXT_MAX, true) == DZ_ERR_INVAL) {
        *why = "display_text: a string of at most 200 bytes without control characters";
        goto out;
    }
    switch (get_str(o, "verification_code", code, sizeof(code) - 1, false)) {
    case DZ_ERR_NOTFOUND:
        break;
    case 0:
        if (parse_code(code, &out->verification_code) == 0)
            break;
        /* fall through */
    default:
        *why = "verification_code: 4 digits";
        goto out;
    }
    if (out->verification_code >= 0 &&
        out->verification_code != dz_mid_verification_code(out->hash, out->hash_len)) {
        *why = "verification_code: not the code of this hash";
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    if (rc) {
        memset(out, 0, sizeof(*out));
        out->verification_code = -1;
    }
    return rc;
}

/* ---- the phone's view of a pending request ---- */

int dz_mssp_parse_job(const void *body, size_t len, struct dz_mssp_job *out, const char **why)
{
    static const char *const allowed[] = {
        "session_id",        "kind", "relying_party", "display_text",
        "verification_code", "hash", "hash_type",     NULL};
    const char *dummy = NULL;
    json_t *o = NULL;
    char kind[16];
    int code = -1;
    int rc;

    if (!why)
        why = &dummy;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    rc = load_object(body, len, allowed, &o, why);
    if (rc)
        return rc;
    rc = DZ_ERR_INVAL;
    if (get_str(o, "session_id", out->session_id, DZ_MSSP_SID_LEN, false) != 0 ||
        !dz_mssp_sid_valid(out->session_id)) {
        *why = "session_id: a session id, required";
        goto out;
    }
    if (get_str(o, "kind", kind, sizeof(kind) - 1, false) != 0 ||
        (strcmp(kind, "authentication") != 0 && strcmp(kind, "signature") != 0)) {
        *why = "kind: authentication or signature";
        goto out;
    }
    out->kind = kind[0] == 's' ? DZ_MSSP_SIGNATURE : DZ_MSSP_AUTHENTICATION;
    if (get_str(o, "relying_party", out->relying_party, DZ_MSSP_RP_MAX, false) != 0) {
        *why = "relying_party: required";
        goto out;
    }
    if (get_str(o, "display_text", out->display_text, DZ_MSSP_TEXT_MAX, true) != 0) {
        *why = "display_text: a string of at most 200 bytes, required";
        goto out;
    }
    if (get_str(o, "verification_code", out->verification_code, DZ_MID_CODE_LEN, false) != 0 ||
        parse_code(out->verification_code, &code) != 0) {
        *why = "verification_code: 4 digits, required";
        goto out;
    }
    rc = get_hash(o, out->hash, &out->hash_len, &out->hash_type, why);
out:
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- the phone's answer ---- */

int dz_mssp_parse_answer(const void *body, size_t len, struct dz_mssp_answer *out, const char **why)
{
    static const char *const allowed[] = {"session_id", "result", "signature", NULL};
    const char *dummy = NULL;
    json_t *o = NULL;
    char result[16];
    char sig[DZ_MSSP_SIG_MAX * 2];
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    int rc;

    if (!why)
        why = &dummy;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    out->result = DZ_MSSP_USER_CANCELLED;
    rc = load_object(body, len, allowed, &o, why);
    if (rc)
        return rc;
    rc = DZ_ERR_INVAL;
    if (get_str(o, "session_id", out->session_id, DZ_MSSP_SID_LEN, false) != 0 ||
        !dz_mssp_sid_valid(out->session_id)) {
        *why = "session_id: a session id, required";
        goto out;
    }
    if (get_str(o, "result", result, sizeof(result) - 1, false) != 0 ||
        dz_mssp_result_parse(result, &out->result) != 0 ||
        (out->result != DZ_MSSP_OK && out->result != DZ_MSSP_USER_CANCELLED)) {
        *why = "result: OK or USER_CANCELLED";
        goto out;
    }
    switch (get_str(o, "signature", sig, sizeof(sig) - 1, false)) {
    case DZ_ERR_NOTFOUND:
        if (out->result == DZ_MSSP_OK) {
            *why = "signature: required with result OK";
            goto out;
        }
        break;
    case 0:
        if (out->result != DZ_MSSP_OK) {
            *why = "signature: only with result OK";
            goto out;
        }
        rc = dz_b64_decode(sig, strlen(sig), false, &raw, &raw_len);
        if (rc == DZ_ERR_NOMEM)
            goto out;
        rc = DZ_ERR_INVAL;
        if (raw_len == 0 || raw_len > DZ_MSSP_SIG_MAX) {
            *why = "signature: base64 of 1..512 bytes";
            goto out;
        }
        memcpy(out->signature, raw, raw_len);
        out->signature_len = raw_len;
        break;
    default:
        *why = "signature: base64 of 1..512 bytes";
        goto out;
    }
    rc = 0;
out:
    free(raw);
    json_decref(o);
    if (rc) {
        memset(out, 0, sizeof(*out));
        out->result = DZ_MSSP_USER_CANCELLED;
    }
    return rc;
}

/* ---- the phones file ---- */

int dz_mssp_parse_holders(const void *text, size_t len, struct dz_mssp_holder **out, size_t *n,
                          long *bad_index, const char **why)
{
    static const char *const allowed[] = {"phone", "fin", "cert_file", NULL};
    const char *dummy = NULL;
    json_t *a = NULL;
    struct dz_mssp_holder *h = NULL;
    size_t count;
    int rc = DZ_ERR_PARSE;

    if (!why)
        why = &dummy;
    *why = NULL;
    *out = NULL;
    *n = 0;
    *bad_index = -1;
    if (!text || len == 0 || len > (size_t)DZ_MSSP_HOLDERS_MAX * (DZ_MSSP_PATH_MAX + 128)) {
        *why = len ? "file too large" : "empty file";
        return DZ_ERR_PARSE;
    }
    a = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(a)) {
        *why = "must be a JSON array of {\"phone\",\"fin\",\"cert_file\"}";
        goto out;
    }
    count = json_array_size(a);
    rc = DZ_ERR_INVAL;
    if (count == 0 || count > DZ_MSSP_HOLDERS_MAX) {
        *why = "1..1024 entries";
        goto out;
    }
    h = calloc(count, sizeof(*h));
    if (!h) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(a, i);
        const char *key;
        json_t *v;
        char fin[DZ_FIN_LEN * 4 + 1];

        *bad_index = (long)i;
        if (!json_is_object(e)) {
            *why = "entry: not an object";
            goto out;
        }
        json_object_foreach(e, key, v)
        {
            bool known = false;

            for (const char *const *k = allowed; *k; k++)
                known = known || strcmp(key, *k) == 0;
            if (!known) {
                *why = "entry: unknown member";
                goto out;
            }
        }
        if (get_str(e, "phone", h[i].phone, DZ_MSSP_PHONE_MAX, false) != 0 ||
            !dz_mssp_phone_valid(h[i].phone)) {
            *why = "phone: \"+\" and 7..15 digits";
            goto out;
        }
        if (get_str(e, "fin", fin, sizeof(fin) - 1, false) != 0 ||
            dz_fin_normalize(fin, strlen(fin), h[i].fin) != 0) {
            *why = "fin: 7 letters or digits";
            goto out;
        }
        if (get_str(e, "cert_file", h[i].cert_file, DZ_MSSP_PATH_MAX, false) != 0) {
            *why = "cert_file: a path";
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(h[j].phone, h[i].phone) == 0) {
                *why = "phone: listed twice";
                goto out;
            }
        }
    }
    *bad_index = -1;
    *out = h;
    *n = count;
    h = NULL;
    rc = 0;
out:
    free(h);
    json_decref(a);
    return rc;
}

/* ---- QR payload ---- */

int dz_qr_payload_parse(const char *s, size_t len, struct dz_qr_payload *out)
{
    static const char prefix[] = "darvaza-qr:1:";
    const size_t pl = sizeof(prefix) - 1;
    const char *p, *end, *colon;
    size_t n;
    long long t = 0;
    char tbuf[8];

    memset(out, 0, sizeof(*out));
    if (!s || len <= pl || len > DZ_QR_PAYLOAD_MAX || memcmp(s, prefix, pl) != 0 ||
        memchr(s, '\0', len))
        return DZ_ERR_INVAL;
    p = s + pl;
    end = s + len;
    /* id */
    colon = memchr(p, ':', (size_t)(end - p));
    if (!colon)
        return DZ_ERR_INVAL;
    n = (size_t)(colon - p);
    if (n == 0 || n > DZ_QR_ID_MAX)
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-'))
            return DZ_ERR_INVAL;
    }
    memcpy(out->id, p, n);
    /* t */
    p = colon + 1;
    colon = memchr(p, ':', (size_t)(end - p));
    if (!colon)
        goto bad;
    n = (size_t)(colon - p);
    if (n == 0 || n >= sizeof(tbuf))
        goto bad;
    memcpy(tbuf, p, n);
    tbuf[n] = '\0';
    if (dz_parse_int(tbuf, 0, 86400, &t) != 0 || tbuf[0] == '-')
        goto bad;
    out->t = (uint32_t)t;
    /* code */
    p = colon + 1;
    n = (size_t)(end - p);
    if (n < 16 || n > 64)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            goto bad;
    }
    memcpy(out->code, p, n);
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return DZ_ERR_INVAL;
}
