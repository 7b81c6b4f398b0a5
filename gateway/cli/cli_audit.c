/*
 * cli_audit.c - `darvaza audit verify FILE [--jwks FILE | --key PUBKEY.pem]
 * [--head SEQ:HEX]`: checks an audit log's hash chain and, given public
 * keys, its signed heads, and names the first bad line.  --head takes a head
 * recorded elsewhere (the "audit_head" lines of the gateway's shipped logs)
 * and fails unless the file still holds that head: the check that catches
 * lines cut from the end, even when the gateway went on writing after the
 * cut.  It only reads: it never repairs a log and never needs a private key.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/parse.h"
#include "keys/jws.h"

#include "base/compat.h"

static int usage(void)
{
    fputs("usage: darvaza audit verify FILE [--jwks JWKS.json | --key PUBKEY.pem]\n"
          "                            [--head SEQ:HEX]\n"
          "  Checks the hash chain of an audit log and, with --jwks or --key, the\n"
          "  signatures of its signed heads (--key: one PEM public key for every kid).\n"
          "  --head SEQ:HEX: also require the head line at seq SEQ to carry head HEX,\n"
          "  as recorded by an \"audit_head\" entry of the gateway's log; this finds\n"
          "  lines cut from the end of the file.\n"
          "  Exit 0 intact, 1 damaged, 2 usage.\n",
          stderr);
    return 2;
}

struct keys {
    struct dz_jwks *jwks; /* --jwks: heads are checked with the key of their kid */
    EVP_PKEY *pem;        /* --key: every head is checked with this one key */
};

static EVP_PKEY *find_key(void *arg, const char *kid)
{
    struct keys *k = arg;

    /* --key serves every kid: fine for one key, but a log that spans a key
     * rotation needs --jwks so each head is checked with its own key. */
    if (k->pem)
        return k->pem;
    return dz_jwks_find(k->jwks, kid);
}

static int load_jwks(const char *path, struct dz_jwks **out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (!f) {
        fprintf(stderr, "darvaza audit: %s: %s\n", path, strerror(errno));
        return DZ_ERR_IO;
    }
    buf = malloc(DZ_JWKS_JSON_MAX + 1);
    if (buf)
        /* One byte over the limit, so a larger file is refused rather than
         * parsed cut short. */
        n = fread(buf, 1, DZ_JWKS_JSON_MAX + 1, f);
    fclose(f);
    if (!buf)
        rc = DZ_ERR_NOMEM;
    else if (n > DZ_JWKS_JSON_MAX)
        rc = DZ_ERR_TOOBIG;
    else
        rc = dz_jwks_parse(buf, n, out);
    if (rc != 0)
        fprintf(stderr, "darvaza audit: %s: not a usable JWK set (%s)\n", path, dz_err_str(rc));
    free(buf);
    return rc;
}

static int load_pem(const char *path, EVP_PKEY **out)
{
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (!f) {
        fprintf(stderr, "darvaza audit: %s: %s\n", path, strerror(errno));
        return DZ_ERR_IO;
    }
    *out = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    /* A failed PEM read leaves errors queued; the message below says it. */
    ERR_clear_error();
    if (!*out || !EVP_PKEY_is_a(*out, "EC")) {
        fprintf(stderr, "darvaza audit: %s: not a PEM EC public key\n", path);
        EVP_PKEY_free(*out);
        *out = NULL;
        return DZ_ERR_PARSE;
    }
    return 0;
}

/* "SEQ:HEX" with SEQ >= 1 and HEX 64 lower-case hex digits. */
static int parse_head_arg(const char *s, uint64_t *seq, char hex[65])
{
    const char *colon = strchr(s, ':');
    char num[24];
    long long v = 0;

    if (!colon || (size_t)(colon - s) >= sizeof(num) || strlen(colon + 1) != 64 ||
        strspn(colon + 1, "0123456789abcdef") != 64)
        return DZ_ERR_INVAL;
    memcpy(num, s, (size_t)(colon - s));
    num[colon - s] = '\0';
    if (dz_parse_int(num, 1, LLONG_MAX, &v) != 0)
        return DZ_ERR_INVAL;
    *seq = (uint64_t)v;
    memcpy(hex, colon + 1, 65);
    return 0;
}

/* In a log whose chain verified, line number == seq: read line seq and
 * check it is a head line carrying hex.  Returns 1 match, 0 mismatch. */
static int head_matches(const char *file, uint64_t seq, const char *hex)
{
    FILE *f = fopen(file, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = -1;
    json_t *obj = NULL;
    json_t *head;
    int ok = 0;

    if (!f)
        return 0;
    for (uint64_t n = 0; n < seq; n++) {
        len = getline(&line, &cap, f);
        if (len <= 0)
            goto out;
    }
    obj = json_loadb(line, (size_t)len - 1, JSON_REJECT_DUPLICATES, NULL);
    head = json_object_get(obj, "head");
    ok = json_is_string(head) && strcmp(json_string_value(head), hex) == 0 &&
         json_is_string(json_object_get(obj, "type")) &&
         strcmp(json_string_value(json_object_get(obj, "type")), "head") == 0;
out:
    json_decref(obj);
    free(line);
    fclose(f);
    return ok;
}

static int verify(int argc, char **argv)
{
    const char *file = NULL;
    const char *jwks_path = NULL;
    const char *key_path = NULL;
    const char *head_arg = NULL;
    uint64_t head_seq = 0;
    char head_hex[65] = "";
    struct keys keys = {NULL, NULL};
    struct dz_audit_keys ak = {find_key, &keys};
    struct dz_audit_report r;
    int code = 2;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jwks") == 0 && i + 1 < argc && !jwks_path)
            jwks_path = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc && !key_path)
            key_path = argv[++i];
        else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc && !head_arg)
            head_arg = argv[++i];
        else if (argv[i][0] == '-' || file)
            return usage();
        else
            file = argv[i];
    }
    if (!file || (jwks_path && key_path))
        return usage();
    if (head_arg && parse_head_arg(head_arg, &head_seq, head_hex) != 0)
        return usage();
    if (jwks_path && load_jwks(jwks_path, &keys.jwks) != 0)
        goto out;
    if (key_path && load_pem(key_path, &keys.pem) != 0)
        goto out;

    code = 1;
    /* The whole chain first: head_matches relies on line n being seq n,
     * which holds only once the chain from seq 1 has verified. */
    rc = dz_audit_verify_file(file, (jwks_path || key_path) ? &ak : NULL, &r);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", file, r.detail[0] ? r.detail : dz_err_str(rc));
        goto out;
    }
    if (r.first_bad_line) {
        printf("%s:%" PRIu64 ": %s: %s\n", file, r.first_bad_line, r.reason, r.detail);
        goto out;
    }
    /* Every head inside the file can still verify after a cut: only a head
     * recorded outside the file shows that its end is gone. */
    if (head_arg && head_seq > r.lines) {
        printf("%s:%" PRIu64 ": truncated: the file ends at seq %" PRIu64
               " but the recorded head is at seq %" PRIu64 ": lines were cut from the end\n",
               file, r.lines + 1, r.last_seq, head_seq);
        goto out;
    }
    if (head_arg && !head_matches(file, head_seq, head_hex)) {
        printf("%s:%" PRIu64 ": head_mismatch: this is not the recorded head: the lines "
               "before it were replaced, or the log was cut and written again\n",
               file, head_seq);
        goto out;
    }
    printf("ok: %" PRIu64 " lines, %" PRIu64 " signed heads verified\n", r.lines, r.heads_verified);
    if (r.forwards_sent > 0)
        printf("forwards: %" PRIu64 " recorded before they left, %" PRIu64
               " without an outcome line (in flight when the log ended, or cut by a crash)\n",
               r.forwards_sent, r.forwards_open);
    if (!jwks_path && !key_path && r.heads_seen > 0)
        fprintf(stderr, "note: %" PRIu64 " head signature(s) not checked: give --jwks or --key\n",
                r.heads_seen);
    if (r.unsigned_tail > 0)
        fprintf(stderr,
                "note: the last %" PRIu64 " line(s) (seq %" PRIu64 "..%" PRIu64
                ") follow the last signed head: cutting them off would not show here\n",
                r.unsigned_tail, r.last_seq - r.unsigned_tail + 1, r.last_seq);
    if (!head_arg)
        fprintf(stderr, "note: give --head SEQ:HEX from the latest \"audit_head\" entry of "
                        "the gateway's log to detect lines cut from the end\n");
    code = 0;
out:
    dz_jwks_free(keys.jwks);
    EVP_PKEY_free(keys.pem);
    return code;
}

int dz_cli_audit(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage();
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return usage();
    return verify(argc - 1, argv + 1);
}
