/*
 * assertion.c - builds, signs and checks the Darvaza-Assertion.
 *
 * Signing runs for every forwarded request, so the claims are written
 * straight into one bounded buffer (no jansson tree, no intermediate
 * strings) and handed to dz_jws_sign_payload; the ECDSA signature is then
 * nearly the whole cost.  Every input is checked for its domain first: an
 * assertion that cannot be built correctly is not built at all (the request
 * is refused), never built partly.  Verification is strict on types and
 * never trusts a claim before the signature over it has been checked.
 * This file keeps no state: replay detection (jti) belongs to the caller.
 */
#include "keys/assertion.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/fin.h"
#include "base/secret.h"
#include "keys/jws.h"
#include "keys/jws_batch.h"

#include "base/compat.h"

static const char *const amr_names[] = {"pwd", "otp", "sc", "pin", "mob", "qr"};
#define AMR_COUNT (sizeof(amr_names) / sizeof(amr_names[0]))

/* Bit indexes in the order amr arrays are written: DESIGN §3 lists
 * ["pwd","otp"], ["sc","pin"], ["mob","pin"], ["qr","mob","pin"], and this
 * one order gives each of them exactly. */
static const unsigned amr_order[AMR_COUNT] = {5 /*qr*/, 0 /*pwd*/, 1 /*otp*/,
                                              2 /*sc*/, 4 /*mob*/, 3 /*pin*/};
#define RELEASE_ITEM_MAX 64

const char *dz_amr_name(unsigned bit)
{
    for (unsigned i = 0; i < AMR_COUNT; i++) {
        if (bit == 1u << i)
            return amr_names[i];
    }
    return NULL;
}

int dz_amr_to_json(unsigned amr, json_t **out)
{
    json_t *a;

    *out = NULL;
    if (amr & ~DZ_AMR_ALL)
        return DZ_ERR_INVAL;
    a = json_array();
    if (!a)
        return DZ_ERR_NOMEM;
    for (unsigned k = 0; k < AMR_COUNT; k++) {
        unsigned i = amr_order[k];
        if ((amr & (1u << i)) && json_array_append_new(a, json_string(amr_names[i])) != 0) {
            json_decref(a);
            return DZ_ERR_NOMEM;
        }
    }
    *out = a;
    return 0;
}

/* ---- building --------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), as jansson will
 * demand of the verifier: we never sign what cannot be parsed back. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* The claims are written with plain appends, never printf: a dozen
 * vsnprintf calls cost more than the rest of the builder together. */
static int put(struct dz_buf *b, const char *s)
{
    return dz_buf_append(b, s, strlen(s));
}

/* Start a member: '{"name":' for the first claim, ',"name":' after. */
static int put_key(struct dz_buf *b, const char *name)
{
    int rc = dz_buf_append(b, b->len ? ",\"" : "{\"", 2);

    if (rc == 0)
        rc = put(b, name);
    return rc ? rc : dz_buf_append(b, "\":", 2);
}

/* Append "name":"value" with JSON escaping; runs of plain bytes go in one
 * append.  The caller has checked value is non-empty UTF-8 without NUL. */
static int put_str(struct dz_buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = value;
    const char *p = value;
    int rc;

    if ((rc = put_key(b, name)) != 0 || (rc = dz_buf_append(b, "\"", 1)) != 0)
        return rc;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (p > run && (rc = dz_buf_append(b, run, (size_t)(p - run))) != 0)
            return rc;
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            rc = dz_buf_append(b, esc, 2);
        } else {
            rc = dz_buf_append(b, esc, 6);
        }
        if (rc != 0)
            return rc;
        run = p + 1;
    }
    if (p > run && (rc = dz_buf_append(b, run, (size_t)(p - run))) != 0)
        return rc;
    return dz_buf_append(b, "\"", 1);
}

/* Non-negative integers only (the caller has checked the range). */
static int put_int(struct dz_buf *b, const char *name, int64_t v)
{
    char digits[24];
    size_t i = sizeof(digits);
    uint64_t u = (uint64_t)v;
    int rc = put_key(b, name);

    if (rc != 0)
        return rc;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    return dz_buf_append(b, digits + i, sizeof(digits) - i);
}

/* base64url of n bytes (n <= 32), as a claim. */
static int put_b64(struct dz_buf *b, const char *name, const unsigned char *p, size_t n)
{
    char enc[48];
    size_t len = dz_b64_encoded_len(n, true);
    int rc;

    if (len + 2 >= sizeof(enc))
        return DZ_ERR_INVAL;
    enc[0] = '"';
    dz_b64_encode_to(p, n, true, enc + 1);
    enc[len + 1] = '"';
    if ((rc = put_key(b, name)) != 0)
        return rc;
    return dz_buf_append(b, enc, len + 2);
}

/* jti bytes come from a per-thread pool refilled from the CSPRNG 512 bytes at
 * a time: in OpenSSL 3.0 each RAND_bytes call costs about 2 us, a tenth of the
 * signature.  The pool is dropped in a forked child, so that parent and child
 * never hand out the same bytes. */
static _Thread_local struct {
    unsigned char bytes[512];
    size_t pos;
    pid_t pid;
} jti_pool;

static int jti_bytes(unsigned char out[16])
{
    pid_t pid = getpid();
    int rc;

    if (jti_pool.pid != pid || jti_pool.pos + 16 > sizeof(jti_pool.bytes)) {
        jti_pool.pid = 0;
        if ((rc = dz_random(jti_pool.bytes, sizeof(jti_pool.bytes))) != 0)
            return rc;
        jti_pool.pos = 0;
        jti_pool.pid = pid;
    }
    memcpy(out, jti_pool.bytes + jti_pool.pos, 16);
    /* Handed-out bytes are not kept around. */
    memset(jti_pool.bytes + jti_pool.pos, 0, 16);
    jti_pool.pos += 16;
    return 0;
}

int dz_assertion_new_jti(char out[DZ_ASSERTION_JTI_LEN + 1])
{
    unsigned char b[16];
    int rc = jti_bytes(b);

    out[0] = '\0';
    if (rc == 0)
        dz_b64_encode_to(b, sizeof(b), true, out);
    return rc;
}

/* A jti given by the caller has the form dz_assertion_new_jti makes. */
static bool jti_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n == DZ_ASSERTION_JTI_LEN &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static bool text_ok(const char *s)
{
    return s && *s && utf8_ok((const unsigned char *)s, strlen(s));
}

/* "fin,name, surname" -> ["fin","name","surname"]; items [a-z0-9_]+. */
static int put_release(struct dz_buf *b, const char *list)
{
    const char *p = list;
    unsigned count = 0;
    int rc;

    if ((rc = put_key(b, "rel")) != 0 || (rc = dz_buf_append(b, "[", 1)) != 0)
        return rc;
    while (*p) {
        const char *start;
        size_t len;
        while (*p == ' ')
            p++;
        start = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
            p++;
        len = (size_t)(p - start);
        while (*p == ' ')
            p++;
        if (len == 0 || len > RELEASE_ITEM_MAX || (*p != ',' && *p != '\0') ||
            ++count > DZ_ASSERTION_RELEASE_MAX)
            return DZ_ERR_INVAL;
        if ((count > 1 && (rc = dz_buf_append(b, ",", 1)) != 0) ||
            (rc = dz_buf_append(b, "\"", 1)) != 0 || (rc = dz_buf_append(b, start, len)) != 0 ||
            (rc = dz_buf_append(b, "\"", 1)) != 0)
            return rc;
        if (*p == ',' && *++p == '\0')
            return DZ_ERR_INVAL; /* trailing comma */
    }
    return dz_buf_append(b, "]", 1);
}

static int check_in(const struct dz_assertion_in *in)
{
    if (!text_ok(in->iss) || !text_ok(in->aud) || !text_ok(in->sid_b64) || !text_ok(in->acr) ||
        !text_ok(in->htm) || !text_ok(in->htu))
        return DZ_ERR_INVAL;
    if (!in->sub || !dz_fin_is_normal(in->sub) || (in->tgt && !dz_fin_is_normal(in->tgt)))
        return DZ_ERR_INVAL;
    if (in->pur && !text_ok(in->pur))
        return DZ_ERR_INVAL;
    /* amr may be empty only on a service assertion (acr "none"): the gateway
     * asking a back end on its own behalf, e.g. the registry at registration,
     * where nobody has logged in yet.  Back ends see acr "none" and decide. */
    if ((in->amr == 0 && strcmp(in->acr, "none") != 0) || (in->amr & ~DZ_AMR_ALL))
        return DZ_ERR_INVAL;
    if (in->ttl_s < 1 || in->ttl_s > DZ_ASSERTION_TTL_MAX)
        return DZ_ERR_INVAL;
    if (in->iat <= 0 || in->iat > INT64_MAX - DZ_ASSERTION_TTL_MAX || in->auth_time <= 0 ||
        in->auth_time > in->iat)
        return DZ_ERR_INVAL;
    if (in->body_len > 0 && !in->body)
        return DZ_ERR_INVAL;
    return 0;
}

/* The claims of in as one JSON object into b (bounded by DZ_JWS_TOKEN_MAX),
 * in the documented order, with in->jti or a fresh one. */
static int build_claims(const struct dz_assertion_in *in, struct dz_buf *b)
{
    unsigned char jti[16];
    unsigned char digest[32];
    int rc;

    if (!in || (rc = check_in(in)) != 0)
        return DZ_ERR_INVAL;
    if (in->jti && !jti_ok(in->jti))
        return DZ_ERR_INVAL;
    if (!in->jti && (rc = jti_bytes(jti)) != 0)
        return rc;

    /* The first claim opens the object (see put_key). */
    if ((rc = put_str(b, "iss", in->iss)) != 0)
        return rc;
    if ((rc = put_str(b, "sub", in->sub)) != 0 || (rc = put_str(b, "aud", in->aud)) != 0 ||
        (rc = put_int(b, "iat", in->iat)) != 0 ||
        (rc = put_int(b, "exp", in->iat + in->ttl_s)) != 0 ||
        (rc = in->jti ? put_str(b, "jti", in->jti) : put_b64(b, "jti", jti, sizeof(jti))) != 0 ||
        (rc = put_str(b, "sid", in->sid_b64)) != 0 || (rc = put_str(b, "acr", in->acr)) != 0)
        return rc;
    if ((rc = put_key(b, "amr")) != 0 || (rc = dz_buf_append(b, "[", 1)) != 0)
        return rc;
    for (unsigned k = 0, first = 1; k < AMR_COUNT; k++) {
        unsigned i = amr_order[k];
        if (!(in->amr & (1u << i)))
            continue;
        if ((!first && (rc = dz_buf_append(b, ",", 1)) != 0) ||
            (rc = dz_buf_append(b, "\"", 1)) != 0 || (rc = put(b, amr_names[i])) != 0 ||
            (rc = dz_buf_append(b, "\"", 1)) != 0)
            return rc;
        first = 0;
    }
    if ((rc = dz_buf_append(b, "]", 1)) != 0 || (rc = put_int(b, "auth_time", in->auth_time)) != 0)
        return rc;
    if (in->prf && (rc = put_b64(b, "prf", in->prf, 32)) != 0)
        return rc;
    if ((rc = put_str(b, "htm", in->htm)) != 0 || (rc = put_str(b, "htu", in->htu)) != 0)
        return rc;
    if (in->body_len > 0) {
        dz_sha256(in->body, in->body_len, digest);
        if ((rc = put_b64(b, "bdy", digest, sizeof(digest))) != 0)
            return rc;
    }
    if (in->tgt && (rc = put_str(b, "tgt", in->tgt)) != 0)
        return rc;
    if (in->pur && (rc = put_str(b, "pur", in->pur)) != 0)
        return rc;
    if (in->release && (rc = put_release(b, in->release)) != 0)
        return rc;
    return dz_buf_append(b, "}", 1);
}

int dz_assertion_sign(struct dz_signer *s, const char *kid, const struct dz_assertion_in *in,
                      char **out_token)
{
    struct dz_buf b;
    int rc;

    *out_token = NULL;
    dz_buf_init(&b, DZ_JWS_TOKEN_MAX);
    if ((rc = build_claims(in, &b)) == 0)
        rc = dz_jws_sign_payload(s, kid, DZ_ASSERTION_TYP, b.data, b.len, out_token);
    dz_buf_cleanup(&b);
    return rc;
}

/* The root's claims: what every leaf of the batch shares, so that a JWT
 * library checking the root JWS alone already checks issuer, audience and
 * lifetime.  The strings passed check_in and are written escaped. */
static int root_members(const struct dz_assertion_in *in, struct dz_buf *b)
{
    int rc;

    if ((rc = put_str(b, "iss", in->iss)) != 0 || (rc = put_str(b, "aud", in->aud)) != 0 ||
        (rc = put_int(b, "iat", in->iat)) != 0 ||
        (rc = put_int(b, "exp", in->iat + in->ttl_s)) != 0)
        return rc;
    /* put_key opened an object with '{': jws_batch.c wants members only. */
    memmove(b->data, b->data + 1, b->len);
    b->len--;
    return 0;
}

int dz_assertion_sign_batch(struct dz_signer *s, const char *kid,
                            const struct dz_assertion_in *const *ins, size_t n, char **tokens,
                            int *rcs)
{
    struct dz_jws_batch_item *items = NULL;
    struct dz_buf *leaves = NULL;
    size_t *which = NULL; /* items[k] is ins[which[k]] */
    int *item_rcs = NULL;
    char **item_tokens = NULL;
    struct dz_buf root;
    size_t k = 0;
    int rc;

    dz_buf_init(&root, DZ_JWS_TOKEN_MAX);
    if (!ins || !tokens || !rcs || n == 0 || n > DZ_JWS_BATCH_MAX)
        return DZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        tokens[i] = NULL;
        rcs[i] = DZ_ERR_INVAL;
    }
    items = calloc(n, sizeof(*items));
    leaves = calloc(n, sizeof(*leaves));
    which = calloc(n, sizeof(*which));
    item_rcs = calloc(n, sizeof(*item_rcs));
    item_tokens = calloc(n, sizeof(*item_tokens));
    if (!items || !leaves || !which || !item_rcs || !item_tokens) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    /* One bad request (a field out of its domain, a huge path) gets its own
     * error; the others are still signed.  The shared fields must be the
     * first one's, since the root states them for all. */
    for (size_t i = 0; i < n; i++) {
        const struct dz_assertion_in *in = ins[i];
        dz_buf_init(&leaves[i], DZ_JWS_TOKEN_MAX);
        if (!in || !ins[0] || !in->iss || !in->aud || !ins[0]->iss || !ins[0]->aud ||
            strcmp(in->iss, ins[0]->iss) != 0 || strcmp(in->aud, ins[0]->aud) != 0 ||
            in->iat != ins[0]->iat || in->ttl_s != ins[0]->ttl_s) {
            rcs[i] = DZ_ERR_INVAL;
            continue;
        }
        if ((rcs[i] = build_claims(in, &leaves[i])) != 0)
            continue;
        items[k] = (struct dz_jws_batch_item){leaves[i].data, leaves[i].len};
        which[k++] = i;
    }
    if (k == 0) {
        rc = 0; /* nothing to sign: every rcs[i] says why */
        goto out;
    }
    if ((rc = root_members(ins[which[0]], &root)) != 0)
        goto out;
    rc = dz_jws_batch_sign(s, kid, DZ_ASSERTION_BATCH_TYP, root.data, items, k, item_tokens,
                           item_rcs);
    if (rc != 0)
        goto out;
    for (size_t j = 0; j < k; j++) {
        tokens[which[j]] = item_tokens[j];
        rcs[which[j]] = item_rcs[j];
    }
out:
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            rcs[i] = rc;
    }
    for (size_t i = 0; leaves && i < n; i++)
        dz_buf_cleanup(&leaves[i]);
    dz_buf_cleanup(&root);
    free(items);
    free(leaves);
    free(which);
    free(item_rcs);
    free(item_tokens);
    return rc;
}

/* ---- checking --------------------------------------------------------- */

static const char *str_claim(const json_t *claims, const char *name)
{
    const json_t *v = json_object_get(claims, name);

    /* A NUL inside a JSON string would let two different strings compare
     * equal as C strings: such a claim is not a string to us. */
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) != strlen(json_string_value(v)))
        return NULL;
    return json_string_value(v);
}

static bool int_claim(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);

    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static bool str_array(const json_t *a, bool allow_empty)
{
    size_t i;
    const json_t *v;

    if (!json_is_array(a) || (!allow_empty && json_array_size(a) == 0))
        return false;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return false;
    }
    return true;
}

/* Optional string claims: absent, or a non-empty string. */
static bool opt_str_ok(const json_t *claims, const char *name)
{
    return !json_object_get(claims, name) || str_claim(claims, name);
}

int dz_assertion_check_claims(const json_t *claims, const struct dz_assertion_expect *e,
                              const char **out_reason)
{
    const char *reason = "malformed";
    const char *iss, *sub, *aud, *htm, *htu, *tgt, *bdy;
    int64_t iat = 0, exp = 0, auth_time = 0;
    int64_t now;
    int64_t leeway;
    int rc = DZ_ERR_DENIED;

    if (!json_is_object(claims) || !e)
        goto out;
    iss = str_claim(claims, "iss");
    sub = str_claim(claims, "sub");
    aud = str_claim(claims, "aud");
    htm = str_claim(claims, "htm");
    htu = str_claim(claims, "htu");
    if (!iss || !sub || !aud || !htm || !htu || !str_claim(claims, "jti") ||
        !str_claim(claims, "sid") || !str_claim(claims, "acr") || !int_claim(claims, "iat", &iat) ||
        !int_claim(claims, "exp", &exp) || !int_claim(claims, "auth_time", &auth_time) ||
        !str_array(json_object_get(claims, "amr"),
                   strcmp(json_string_value(json_object_get(claims, "acr")), "none") == 0))
        goto out;
    if (!opt_str_ok(claims, "prf") || !opt_str_ok(claims, "bdy") || !opt_str_ok(claims, "tgt") ||
        !opt_str_ok(claims, "pur"))
        goto out;
    if (json_object_get(claims, "rel") && !str_array(json_object_get(claims, "rel"), true))
        goto out;
    tgt = str_claim(claims, "tgt");
    bdy = str_claim(claims, "bdy");

    if (e->iss && strcmp(iss, e->iss) != 0) {
        reason = "wrong_issuer";
        goto out;
    }
    if (e->aud && strcmp(aud, e->aud) != 0) {
        reason = "wrong_audience";
        goto out;
    }

    now = e->now ? e->now : (int64_t)time(NULL);
    if (now < 0 || now > INT64_MAX / 2) {
        reason = "internal_error"; /* a clock we cannot reason with */
        goto out;
    }
    leeway = e->leeway_s < 0 ? 0 : e->leeway_s;
    if (leeway > DZ_ASSERTION_LEEWAY_MAX)
        leeway = DZ_ASSERTION_LEEWAY_MAX;
    /* Bounds first, so that the sums below cannot overflow. */
    if (iat <= 0 || exp <= iat || exp - iat > DZ_ASSERTION_TTL_MAX || auth_time <= 0 ||
        auth_time > iat || iat > INT64_MAX / 2) {
        reason = "bad_lifetime";
        goto out;
    }
    if (iat > now + leeway) {
        reason = "not_yet_valid";
        goto out;
    }
    if (now >= exp + leeway) {
        reason = "expired";
        goto out;
    }

    if (!dz_fin_is_normal(sub)) {
        reason = "invalid_subject";
        goto out;
    }
    if (tgt && !dz_fin_is_normal(tgt)) {
        reason = "invalid_target";
        goto out;
    }
    if (e->htm && strcmp(htm, e->htm) != 0) {
        reason = "method_mismatch";
        goto out;
    }
    if (e->htu && strcmp(htu, e->htu) != 0) {
        reason = "path_mismatch";
        goto out;
    }
    if (!e->skip_body) {
        if (e->body_len == 0) {
            if (json_object_get(claims, "bdy")) {
                reason = "body_mismatch";
                goto out;
            }
        } else {
            unsigned char digest[32];
            char want[44];
            if (!e->body) {
                reason = "internal_error";
                goto out;
            }
            dz_sha256(e->body, e->body_len, digest);
            dz_b64_encode_to(digest, sizeof(digest), true, want);
            if (!bdy || strcmp(bdy, want) != 0) {
                reason = "body_mismatch";
                goto out;
            }
        }
    }
    reason = "ok";
    rc = 0;
out:
    if (out_reason)
        *out_reason = reason;
    return rc;
}

/* Root and leaf agree on a member: equal strings, or equal integers. */
static bool same_member(const json_t *root, const json_t *leaf, const char *name)
{
    const json_t *a = json_object_get(root, name);
    const json_t *b = json_object_get(leaf, name);

    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    return json_is_integer(a) && json_is_integer(b) &&
           json_integer_value(a) == json_integer_value(b);
}

/* The batch form: the root JWS and the inclusion path (jws_batch.c), then
 * the leaf's claims, which must repeat what the root states for the whole
 * batch.  *out_claims are the leaf's: the same checks follow as for a
 * token signed alone. */
static int open_batch(const char *token, size_t len, const struct dz_jwks *jwks,
                      json_t **out_claims, const char **out_reason)
{
    static const char *const shared[] = {"iss", "aud", "iat", "exp"};
    json_t *root = NULL;
    json_t *leaf = NULL;
    unsigned char *payload = NULL;
    size_t payload_len = 0;
    json_error_t jerr;
    int rc;

    *out_claims = NULL;
    rc = dz_jws_batch_open(token, len, jwks, DZ_ASSERTION_BATCH_TYP, &root, &payload, &payload_len,
                           out_reason);
    if (rc != 0)
        goto out;
    *out_reason = "malformed";
    rc = DZ_ERR_PARSE;
    leaf = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(leaf))
        goto out;
    for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
        if (!same_member(root, leaf, shared[i]))
            goto out;
    }
    *out_claims = leaf;
    leaf = NULL;
    *out_reason = "ok";
    rc = 0;
out:
    json_decref(root);
    json_decref(leaf);
    free(payload);
    return rc;
}

int dz_assertion_verify(const char *token, const struct dz_jwks *jwks,
                        const struct dz_assertion_expect *e, json_t **out_claims,
                        const char **out_reason)
{
    const char *reason = "internal_error";
    json_t *claims = NULL;
    size_t len;
    int rc;

    if (out_claims)
        *out_claims = NULL;
    if (!token || !jwks || !e) {
        rc = DZ_ERR_INVAL;
        goto out;
    }
    len = strnlen(token, DZ_JWS_TOKEN_MAX + 1);
    if (memchr(token, DZ_JWS_BATCH_SEP, len))
        rc = open_batch(token, len, jwks, &claims, &reason);
    else
        rc = dz_jws_verify_detail(token, len, jwks, DZ_ASSERTION_TYP, NULL, &claims, &reason);
    if (rc != 0)
        goto out;
    if ((rc = dz_assertion_check_claims(claims, e, &reason)) != 0)
        goto out;
    if (out_claims) {
        *out_claims = claims;
        claims = NULL;
    }
out:
    if (out_reason)
        *out_reason = reason;
    json_decref(claims);
    return rc;
}
