/*
 * config.c - darvaza.yaml into an immutable struct dz_config; see config.h.
 *
 * One keyword table per section says, for every key, its type, where it
 * lands in the struct, its range, its default and its flags; one generic
 * walker loads, frees, dumps and compares through those tables, and a small
 * check function per section enforces the rules that join several keys.
 * This file never opens the files the config names (it only stat()s them)
 * and never prints a SENSITIVE value, in a message or in a dump.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/secret.h"
#include "base/secretfile.h"
#include "base/yamltree.h"
#include "http/tlstickets.h"
#include "pki/keyfloor.h"
#include "pki/tsp.h"

#include "base/compat.h"

/* ---- keyword tables ---------------------------------------------------- */

enum kw_type {
    T_STR,      /* char *: printable text */
    T_PATH,     /* char *: a file system path, stored absolute */
    T_KEYREF,   /* char *: a PEM path or a "pkcs11:" URI */
    T_UINT,     /* unsigned */
    T_SIZE,     /* uint64_t bytes */
    T_DURATION, /* uint64_t milliseconds */
    T_BOOL,     /* bool */
    T_ENUM,     /* an enum (int-sized) indexing aux (const char *const[]) */
    T_SECTION,  /* a nested mapping: aux is its struct table */
    T_LIST,     /* a list of mappings: aux is the element table */
    T_PATHS,    /* char **: a list of paths, each stored absolute; off2 the size_t count */
    T_STRS      /* char **: a list of texts, each as T_STR; off2 the size_t count */
};

enum kw_flags {
    F_REQUIRED = 1 << 0,   /* no default: the key must be written */
    F_SENSITIVE = 1 << 1,  /* never echoed: <redacted> in dumps and messages */
    F_RELOADABLE = 1 << 2, /* may change on SIGHUP without a restart */
    F_FILE = 1 << 3,       /* names a readable regular file */
    F_DIR = 1 << 4,        /* names a readable directory */
    F_NEWFILE = 1 << 5,    /* names a file we create: its directory must exist */
    F_NCPU = 1 << 6,       /* default: the number of CPUs online (clamped to range) */
    F_PRESENCE = 1 << 7,   /* sections: off2 is a bool set when the section is written */
    F_URL = 1 << 8,        /* strings: a URL darvaza calls out to (dz_outbound_url_problem) */
    F_SECRET = 1 << 9,     /* files: a secret nobody but the owner may read or write */
    F_OWNER = 1 << 10      /* files: owned by root or the account darvazad runs as */
};

struct table;

struct kw {
    const char *name;
    enum kw_type type;
    size_t off;                  /* the field in the section struct */
    size_t off2;                 /* lists: the size_t count; F_PRESENCE: the bool */
    unsigned long long min, max; /* numbers, sizes, durations; lists: entries; text: length */
    const char *def;             /* default in config syntax, or NULL */
    unsigned flags;
    const void *aux; /* T_ENUM names, T_SECTION / T_LIST table */
};

struct ctx {
    const char *file;
    unsigned flags;
    char *err;
    size_t err_len;
    char cwd[PATH_MAX];
    /* gateway.user's uid (check_gateway, before the listeners are read):
     * F_OWNER files may be that account's. */
    bool has_run_uid;
    uid_t run_uid;
};

typedef int (*check_fn)(struct ctx *c, void *base, const struct dz_yaml_node *map,
                        const char *path);

struct table {
    const struct kw *kws;
    size_t n_kws;
    size_t size; /* sizeof the struct (list elements) */
    check_fn check;
};

/*
 * The field macros fail to compile if the member does not have the type the
 * keyword's kind writes, so the table cannot drift from the structs.
 */
#define FIELD(T, s, m) (offsetof(s, m) + 0 * sizeof(char[_Generic(((s *)0)->m, T : 1)]))
#define F_STR(s, m) FIELD(char *, s, m)
#define F_STRV(s, m) FIELD(char **, s, m)
#define F_UINT(s, m) FIELD(unsigned, s, m)
#define F_U64(s, m) FIELD(uint64_t, s, m)
#define F_BOOL(s, m) FIELD(bool, s, m)
#define F_SIZET(s, m) FIELD(size_t, s, m)
#define F_ENUM(s, m)                                                                               \
    (offsetof(s, m) + 0 * sizeof(char[sizeof(((s *)0)->m) == sizeof(int) ? 1 : -1]))
#define F_ANY(s, m) offsetof(s, m)

#define N(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(DZ_CONFIG_MAX_TICKET_KEYS == DZ_TLS_TICKET_KEYS_MAX,
               "every ticket key the config takes, the TLS context takes");

#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)
#define SEC 1000ULL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const client_auth_names[] = {"none", "optional", "required", NULL};

static int check_gateway(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_tls(struct ctx *, void *, const struct dz_yaml_node *, const char *);
/* A numeric IPv4 or IPv6 address and a port as a bind() address: the
 * length, or 0 when host is not a numeric address (names are refused so that
 * what the gateway binds never depends on a resolver). */
static socklen_t numeric_sockaddr(const char *host, int port, struct sockaddr_storage *sa)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

    memset(sa, 0, sizeof(*sa));
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        return sizeof(*s4);
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        return sizeof(*s6);
    }
    return 0;
}

static int check_listener(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_sessions(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_store(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_accounts(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_signing_key(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_signing(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_upstream_tls(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_root(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_management(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static int check_drain(struct ctx *, void *, const struct dz_yaml_node *, const char *);

const char *const dz_config_log_subs[DZ_CONFIG_LOG_SUBS] = {
    "audit", "policy", "state",  "core", "mssp", "auth", "sign", "forward",
    "ops",   "portal", "daemon", "http", "keys", "pki",  "base"};
static const char *const sub_level_names[] = {"debug", "info", "warn", "error", "default", NULL};

/* One keyword per subsystem, in the order of dz_config_log_subs. */
#define S struct dz_config_log_levels
#define SUB(i, name)                                                                               \
    {                                                                                              \
        name, T_ENUM, F_ENUM(S, level[i]), 0, 0, 0, "default", F_RELOADABLE, sub_level_names       \
    }
static const struct kw log_levels_kws[DZ_CONFIG_LOG_SUBS] = {
    SUB(0, "audit"),   SUB(1, "policy"), SUB(2, "state"),   SUB(3, "core"), SUB(4, "mssp"),
    SUB(5, "auth"),    SUB(6, "sign"),   SUB(7, "forward"), SUB(8, "ops"),  SUB(9, "portal"),
    SUB(10, "daemon"), SUB(11, "http"),  SUB(12, "keys"),   SUB(13, "pki"), SUB(14, "base")};
#undef SUB
#undef S
static const struct table log_levels_table = {log_levels_kws, N(log_levels_kws),
                                              sizeof(struct dz_config_log_levels), NULL};

#define S struct dz_config_gateway
static const struct kw gateway_kws[] = {
    {"id", T_STR, F_STR(S, id), 0, 1, 256, NULL, F_REQUIRED, NULL},
    {"origin", T_STR, F_STR(S, origin), 0, 1, 300, NULL, F_REQUIRED, NULL},
    {"workers", T_UINT, F_UINT(S, workers), 0, 1, 64, NULL, F_NCPU, NULL},
    {"blocking_threads", T_UINT, F_UINT(S, blocking_threads), 0, 1, 64, "2", 0, NULL},
    {"blocking_queue", T_UINT, F_UINT(S, blocking_queue), 0, 1, 65536, "1024", 0, NULL},
    {"log_level", T_ENUM, F_ENUM(S, log_level), 0, 0, 0, "info", F_RELOADABLE, log_level_names},
    {"log_levels", T_SECTION, F_ANY(S, log_levels), 0, 0, 0, NULL, F_RELOADABLE, &log_levels_table},
    {"trust_forwarded", T_BOOL, F_BOOL(S, trust_forwarded), 0, 0, 0, "false", F_RELOADABLE, NULL},
    {"web_root", T_PATH, F_STR(S, web_root), 0, 1, PATH_MAX, NULL, F_DIR | F_RELOADABLE, NULL},
    {"user", T_STR, F_STR(S, user), 0, 1, 64, NULL, 0, NULL},
    {"group", T_STR, F_STR(S, group), 0, 1, 64, NULL, 0, NULL},
};
#undef S
static const struct table gateway_table = {gateway_kws, N(gateway_kws),
                                           sizeof(struct dz_config_gateway), check_gateway};

#define S struct dz_config_tls
static const struct kw tls_kws[] = {
    {"certificate", T_PATH, F_STR(S, certificate), 0, 1, PATH_MAX, NULL,
     F_REQUIRED | F_FILE | F_RELOADABLE, NULL},
    {"key", T_PATH, F_STR(S, key), 0, 1, PATH_MAX, NULL, F_REQUIRED | F_FILE | F_RELOADABLE, NULL},
    {"client_auth", T_ENUM, F_ENUM(S, client_auth), 0, 0, 0, "none", F_RELOADABLE,
     client_auth_names},
    {"client_ca", T_PATH, F_STR(S, client_ca), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
    {"ticket_keys", T_PATHS, F_STRV(S, ticket_keys), F_SIZET(S, n_ticket_keys), 1,
     DZ_CONFIG_MAX_TICKET_KEYS, NULL, F_FILE | F_SECRET | F_OWNER | F_RELOADABLE, NULL},
};
#undef S
static const struct table tls_table = {tls_kws, N(tls_kws), sizeof(struct dz_config_tls),
                                       check_tls};

#define S struct dz_config_listener
static const struct kw listener_kws[] = {
    {"address", T_STR, F_STR(S, address), 0, 1, 64, NULL, F_REQUIRED, NULL},
    {"port", T_UINT, F_UINT(S, port), 0, 1, 65535, NULL, F_REQUIRED, NULL},
    {"tls", T_SECTION, F_ANY(S, tls), F_BOOL(S, tls.enabled), 0, 0, NULL, F_PRESENCE, &tls_table},
};
#undef S
static const struct table listener_table = {listener_kws, N(listener_kws),
                                            sizeof(struct dz_config_listener), check_listener};

#define S struct dz_config_limits
static const struct kw limits_kws[] = {
    {"header_bytes", T_SIZE, F_U64(S, header_bytes), 0, KIB, MIB, "16KiB", F_RELOADABLE, NULL},
    {"header_count", T_UINT, F_UINT(S, header_count), 0, 8, 1000, "100", F_RELOADABLE, NULL},
    {"body", T_SIZE, F_U64(S, body), 0, KIB, GIB, "1MiB", F_RELOADABLE, NULL},
    {"streams", T_UINT, F_UINT(S, streams), 0, 1, 1000, "100", F_RELOADABLE, NULL},
    {"connections", T_UINT, F_UINT(S, connections), 0, 1, 1000000, "4096", F_RELOADABLE, NULL},
    {"connections_per_address", T_UINT, F_UINT(S, connections_per_address), 0, 1, 1000000, "1024",
     F_RELOADABLE, NULL},
    {"answer_buffer_per_connection", T_SIZE, F_U64(S, answer_buffer_per_connection), 0, 64 * KIB,
     GIB, "8MiB", F_RELOADABLE, NULL},
    {"answer_buffer_total", T_SIZE, F_U64(S, answer_buffer_total), 0, MIB, 64 * GIB, "256MiB",
     F_RELOADABLE, NULL},
    {"handshake_timeout", T_DURATION, F_U64(S, handshake_timeout_ms), 0, 100, 5 * MIN, "10s",
     F_RELOADABLE, NULL},
    {"idle_timeout", T_DURATION, F_U64(S, idle_timeout_ms), 0, SEC, HOUR, "60s", F_RELOADABLE,
     NULL},
    {"request_timeout", T_DURATION, F_U64(S, request_timeout_ms), 0, SEC, HOUR, "30s", F_RELOADABLE,
     NULL},
    {"starts_per_address", T_UINT, F_UINT(S, starts_per_address), 0, 1, 100000, "30", F_RELOADABLE,
     NULL},
    {"starts_global", T_UINT, F_UINT(S, starts_global), 0, 1, 10000000, "6000", F_RELOADABLE, NULL},
};
#undef S
static const struct table limits_table = {limits_kws, N(limits_kws),
                                          sizeof(struct dz_config_limits), NULL};

#define S struct dz_config_redis_sentinel
static const struct kw redis_sentinel_kws[] = {
    {"address", T_STR, F_STR(S, address), 0, 3, 300, NULL, F_REQUIRED, NULL},
};
#undef S
static const struct table redis_sentinel_table = {redis_sentinel_kws, N(redis_sentinel_kws),
                                                  sizeof(struct dz_config_redis_sentinel), NULL};

static const char *const store_backend_names[] = {"memory", "redis", NULL};

#define S struct dz_config_store
static const struct kw store_redis_timeouts_kws[] = {
    {"connect", T_DURATION, F_U64(S, redis_connect_timeout_ms), 0, 10, 10 * SEC, "500ms", 0, NULL},
    {"command", T_DURATION, F_U64(S, redis_command_timeout_ms), 0, 10, 10 * SEC, "250ms", 0, NULL},
    {"retry_max", T_DURATION, F_U64(S, redis_retry_max_ms), 0, 100, MIN, "5s", 0, NULL},
};
static const struct table store_redis_timeouts_table = {
    store_redis_timeouts_kws, N(store_redis_timeouts_kws), sizeof(struct dz_config_store), NULL};
static const struct kw store_redis_kws[] = {
    {"address", T_STR, F_STR(S, redis_address), 0, 3, 300, NULL, 0, NULL},
    {"sentinels", T_LIST, F_ANY(S, redis_sentinels), F_SIZET(S, n_redis_sentinels), 1, 8, NULL, 0,
     &redis_sentinel_table},
    {"master_name", T_STR, F_STR(S, redis_master_name), 0, 1, 128, NULL, 0, NULL},
    {"username", T_STR, F_STR(S, redis_username), 0, 1, 128, NULL, 0, NULL},
    {"password_file", T_PATH, F_STR(S, redis_password_file), 0, 1, PATH_MAX, NULL,
     F_FILE | F_SECRET, NULL},
    {"prefix", T_STR, F_STR(S, redis_prefix), 0, 1, 64, "darvaza:", 0, NULL},
    {"value_key_file", T_PATH, F_STR(S, redis_value_key_file), 0, 1, PATH_MAX, NULL,
     F_FILE | F_SECRET, NULL},
    {"timeouts", T_SECTION, 0, 0, 0, 0, NULL, 0, &store_redis_timeouts_table},
    {"wait_replicas", T_UINT, F_UINT(S, redis_wait_replicas), 0, 0, 8, "0", 0, NULL},
    {"rate_batch", T_UINT, F_UINT(S, redis_rate_batch), 0, 1, 1000, "1", 0, NULL},
    {"near_cache", T_BOOL, F_BOOL(S, redis_near_cache), 0, 0, 0, "true", 0, NULL},
};
#undef S
static const struct table store_redis_table = {store_redis_kws, N(store_redis_kws),
                                               sizeof(struct dz_config_store), NULL};

/* Budgets are sized once, when the store is made: not reloadable. */
#define S struct dz_config_store
static const struct kw store_kws[] = {
    {"backend", T_ENUM, F_ENUM(S, backend), 0, 0, 0, "memory", 0, store_backend_names},
    {"redis", T_SECTION, 0, F_BOOL(S, redis_present), 0, 0, NULL, F_PRESENCE, &store_redis_table},
    {"sessions", T_UINT, F_UINT(S, sessions), 0, 10, 100000000, "500000", 0, NULL},
    {"pending_qr", T_UINT, F_UINT(S, pending_qr), 0, 10, 100000000, "50000", 0, NULL},
    {"pending_mobile", T_UINT, F_UINT(S, pending_mobile), 0, 10, 100000000, "20000", 0, NULL},
    {"challenges", T_UINT, F_UINT(S, challenges), 0, 10, 100000000, "100000", 0, NULL},
    {"failures", T_UINT, F_UINT(S, failures), 0, 10, 100000000, "200000", 0, NULL},
    {"rates", T_UINT, F_UINT(S, rates), 0, 10, 100000000, "200000", 0, NULL},
};
#undef S
static const struct table store_table = {store_kws, N(store_kws), sizeof(struct dz_config_store),
                                         check_store};

#define S struct dz_config_sessions
static const struct kw sessions_kws[] = {
    {"idle", T_DURATION, F_U64(S, idle_ms), 0, 10 * SEC, 24 * HOUR, "30m", F_RELOADABLE, NULL},
    {"idle_high", T_DURATION, F_U64(S, idle_high_ms), 0, 10 * SEC, 24 * HOUR, "15m", F_RELOADABLE,
     NULL},
    {"absolute", T_DURATION, F_U64(S, absolute_ms), 0, 10 * SEC, 168 * HOUR, "12h", F_RELOADABLE,
     NULL},
};
#undef S
static const struct table sessions_table = {sessions_kws, N(sessions_kws),
                                            sizeof(struct dz_config_sessions), check_sessions};

static const char *const accounts_backend_names[] = {"sqlite", "postgresql", NULL};

#define S struct dz_config_accounts
static const struct kw accounts_pg_kws[] = {
    {"conninfo_file", T_PATH, F_STR(S, pg_conninfo_file), 0, 1, PATH_MAX, NULL,
     F_REQUIRED | F_FILE | F_SECRET, NULL},
    {"pool", T_UINT, F_UINT(S, pg_pool), 0, 1, 64, "4", 0, NULL},
    {"connect_timeout", T_DURATION, F_U64(S, pg_connect_timeout_ms), 0, SEC, MIN, "5s", 0, NULL},
    {"statement_timeout", T_DURATION, F_U64(S, pg_statement_timeout_ms), 0, 100, MIN, "2s", 0,
     NULL},
};
#undef S
static const struct table accounts_pg_table = {accounts_pg_kws, N(accounts_pg_kws),
                                               sizeof(struct dz_config_accounts), NULL};

#define S struct dz_config_accounts
static const struct kw accounts_kws[] = {
    {"backend", T_ENUM, F_ENUM(S, backend), 0, 0, 0, "sqlite", 0, accounts_backend_names},
    {"postgresql", T_SECTION, 0, F_BOOL(S, pg_present), 0, 0, NULL, F_PRESENCE, &accounts_pg_table},
    {"database", T_PATH, F_STR(S, database), 0, 1, PATH_MAX, NULL, F_NEWFILE, NULL},
    {"seed_key_file", T_PATH, F_STR(S, seed_key_file), 0, 1, PATH_MAX, NULL,
     F_REQUIRED | F_FILE | F_SECRET, NULL},
    {"password_min_length", T_UINT, F_UINT(S, password_min_length), 0, 8, 128, "10", F_RELOADABLE,
     NULL},
    {"argon2_memory", T_SIZE, F_U64(S, argon2_memory), 0, 8 * MIB, 4 * GIB, "64MiB", 0, NULL},
    {"argon2_iterations", T_UINT, F_UINT(S, argon2_iterations), 0, 1, 100, "3", 0, NULL},
    {"argon2_parallelism", T_UINT, F_UINT(S, argon2_parallelism), 0, 1, 16, "1", 0, NULL},
    {"document_pattern", T_STR, F_STR(S, document_pattern), 0, 2, 256,
     "^([A-Z]{3}[0-9]{8}|[A-Z]{2}[0-9]{7})$", F_RELOADABLE, NULL},
};
#undef S
static const struct table accounts_table = {accounts_kws, N(accounts_kws),
                                            sizeof(struct dz_config_accounts), check_accounts};

#define S struct dz_config_lockout
static const struct kw lockout_kws[] = {
    {"pair_attempts", T_UINT, F_UINT(S, pair_attempts), 0, 1, 1000, "5", F_RELOADABLE, NULL},
    {"address_attempts", T_UINT, F_UINT(S, address_attempts), 0, 1, 100000, "20", F_RELOADABLE,
     NULL},
    {"fin_attempts", T_UINT, F_UINT(S, fin_attempts), 0, 1, 1000, "10", F_RELOADABLE, NULL},
    {"fin_delay", T_DURATION, F_U64(S, fin_delay_ms), 0, 100, HOUR, "1s", F_RELOADABLE, NULL},
    /* NIST SP 800-63B 5.2.2: no more than 100 consecutive failures. */
    {"fin_limit", T_UINT, F_UINT(S, fin_limit), 0, 1, 100, "100", F_RELOADABLE, NULL},
    {"fin_limit_window", T_DURATION, F_U64(S, fin_limit_window_ms), 0, HOUR, 90 * 24 * HOUR, "720h",
     F_RELOADABLE, NULL},
    {"window", T_DURATION, F_U64(S, window_ms), 0, SEC, 24 * HOUR, "15m", F_RELOADABLE, NULL},
    {"duration", T_DURATION, F_U64(S, duration_ms), 0, SEC, 24 * HOUR, "5m", F_RELOADABLE, NULL},
};
#undef S
static const struct table lockout_table = {lockout_kws, N(lockout_kws),
                                           sizeof(struct dz_config_lockout), NULL};

#define S struct dz_config_registry
static const struct kw registry_kws[] = {
    {"url", T_STR, F_STR(S, url), 0, 1, 1024, NULL, F_REQUIRED | F_RELOADABLE | F_URL, NULL},
    {"timeout", T_DURATION, F_U64(S, timeout_ms), 0, 100, MIN, "5s", F_RELOADABLE, NULL},
};
#undef S
static const struct table registry_table = {registry_kws, N(registry_kws),
                                            sizeof(struct dz_config_registry), NULL};

#define S struct dz_config_signing_key
static const struct kw signing_key_kws[] = {
    {"kid", T_STR, F_STR(S, kid), 0, 1, 64, NULL, F_REQUIRED | F_RELOADABLE, NULL},
    {"key", T_KEYREF, F_STR(S, key), 0, 1, PATH_MAX, NULL,
     F_REQUIRED | F_FILE | F_SECRET | F_RELOADABLE, NULL},
    {"pin_file", T_PATH, F_STR(S, pin_file), 0, 1, PATH_MAX, NULL, F_FILE | F_SECRET | F_RELOADABLE,
     NULL},
};
#undef S
static const struct table signing_key_table = {
    signing_key_kws, N(signing_key_kws), sizeof(struct dz_config_signing_key), check_signing_key};

#define S struct dz_config_signing
static const struct kw signing_kws[] = {
    {"active", T_STR, F_STR(S, active), 0, 1, 64, NULL, F_REQUIRED | F_RELOADABLE, NULL},
    {"keys", T_LIST, F_ANY(S, keys), F_SIZET(S, n_keys), 1, DZ_CONFIG_MAX_SIGNING_KEYS, NULL,
     F_REQUIRED | F_RELOADABLE, &signing_key_table},
    {"assertion_ttl", T_DURATION, F_U64(S, assertion_ttl_ms), 0, SEC, 60 * SEC, "60s", F_RELOADABLE,
     NULL},
};
#undef S
static const struct table signing_table = {signing_kws, N(signing_kws),
                                           sizeof(struct dz_config_signing), check_signing};

#define S struct dz_config_upstream_tls
static const struct kw upstream_tls_kws[] = {
    {"ca", T_PATH, F_STR(S, ca), 0, 1, PATH_MAX, NULL, F_REQUIRED | F_FILE | F_RELOADABLE, NULL},
    {"certificate", T_PATH, F_STR(S, certificate), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE,
     NULL},
    {"key", T_PATH, F_STR(S, key), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
};
#undef S
static const struct table upstream_tls_table = {upstream_tls_kws, N(upstream_tls_kws),
                                                sizeof(struct dz_config_upstream_tls),
                                                check_upstream_tls};

#define S struct dz_config_audit
static const struct kw audit_rotate_kws[] = {
    {"size", T_SIZE, F_U64(S, rotate.size), 0, 4 * KIB, 1024 * GIB, NULL, 0, NULL},
    {"every", T_DURATION, F_U64(S, rotate.every_ms), 0, SEC, 366 * 24 * HOUR, NULL, 0, NULL},
};
#undef S
static const struct table audit_rotate_table = {audit_rotate_kws, N(audit_rotate_kws),
                                                sizeof(struct dz_config_audit), NULL};

#define S struct dz_config_audit
static const struct kw audit_kws[] = {
    {"file", T_PATH, F_STR(S, file), 0, 1, PATH_MAX, NULL, F_REQUIRED | F_NEWFILE, NULL},
    {"head_interval", T_DURATION, F_U64(S, head_interval_ms), 0, SEC, HOUR, "60s", 0, NULL},
    {"batch_max", T_UINT, F_UINT(S, batch_max), 0, 1, 4096, "256", 0, NULL},
    {"rotate", T_SECTION, 0, F_BOOL(S, rotate.enabled), 0, 0, NULL, F_PRESENCE,
     &audit_rotate_table},
    {"key_archive", T_PATH, F_STR(S, key_archive), 0, 1, PATH_MAX, NULL, F_NEWFILE, NULL},
    {"instance", T_STR, F_STR(S, instance), 0, 1, 128, NULL, 0, NULL},
};
#undef S
static int check_audit(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static const struct table audit_table = {audit_kws, N(audit_kws), sizeof(struct dz_config_audit),
                                         check_audit};

static const char *const revocation_names[] = {"ocsp", "crl", "none", NULL};

#define S struct dz_config_cards
static const struct kw cards_kws[] = {
    {"ca", T_PATH, F_STR(S, ca), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
    {"crl", T_PATH, F_STR(S, crl), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
    {"policy", T_STR, F_STR(S, policy), 0, 3, 128, "1.3.6.1.4.1.55555.1.1.1", F_RELOADABLE, NULL},
    {"revocation", T_ENUM, F_ENUM(S, revocation), 0, 0, 0, "ocsp", F_RELOADABLE, revocation_names},
    {"fetch_timeout", T_DURATION, F_U64(S, fetch_timeout_ms), 0, 100, 30 * SEC, "3s", F_RELOADABLE,
     NULL},
    {"challenge_ttl", T_DURATION, F_U64(S, challenge_ttl_ms), 0, 10 * SEC, 5 * MIN, "5m",
     F_RELOADABLE, NULL},
    {"tls_origin", T_STR, F_STR(S, tls_origin), 0, 1, 300, NULL, F_RELOADABLE, NULL},
    {"tls_login_ttl", T_DURATION, F_U64(S, tls_login_ttl_ms), 0, 10 * SEC, 15 * MIN, "5m",
     F_RELOADABLE, NULL},
    {"tls_code_ttl", T_DURATION, F_U64(S, tls_code_ttl_ms), 0, 5 * SEC, 5 * MIN, "30s",
     F_RELOADABLE, NULL},
};
#undef S
static int check_cards(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static const struct table cards_table = {cards_kws, N(cards_kws), sizeof(struct dz_config_cards),
                                         check_cards};

#define S struct dz_config_mobile
static const struct kw mobile_kws[] = {
    {"mssp_url", T_STR, F_STR(S, mssp_url), 0, 1, 1024, NULL, F_RELOADABLE | F_URL, NULL},
    {"relying_party", T_STR, F_STR(S, relying_party), 0, 1, 64, "darvaza", F_RELOADABLE, NULL},
    {"rp_secret_file", T_PATH, F_STR(S, rp_secret_file), 0, 1, PATH_MAX, NULL,
     F_FILE | F_SECRET | F_RELOADABLE, NULL},
    {"service_name", T_STR, F_STR(S, service_name), 0, 1, 100, "Darvaza", F_RELOADABLE, NULL},
    {"ca", T_PATH, F_STR(S, ca), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
    {"crl", T_PATH, F_STR(S, crl), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
    {"policy", T_STR, F_STR(S, policy), 0, 3, 128, "1.3.6.1.4.1.55555.1.1.2", F_RELOADABLE, NULL},
    {"revocation", T_ENUM, F_ENUM(S, revocation), 0, 0, 0, "ocsp", F_RELOADABLE, revocation_names},
    {"fetch_timeout", T_DURATION, F_U64(S, fetch_timeout_ms), 0, 100, 30 * SEC, "3s", F_RELOADABLE,
     NULL},
    {"request_ttl", T_DURATION, F_U64(S, request_ttl_ms), 0, 2 * SEC, 5 * MIN, "2m", F_RELOADABLE,
     NULL},
    {"poll_max", T_DURATION, F_U64(S, poll_max_ms), 0, SEC, 30 * SEC, "25s", F_RELOADABLE, NULL},
    {"phone_rate", T_UINT, F_UINT(S, phone_rate), 0, 1, 100, "3", F_RELOADABLE, NULL},
    {"qr_ttl", T_DURATION, F_U64(S, qr_ttl_ms), 0, 10 * SEC, 10 * MIN, "10m", F_RELOADABLE, NULL},
    {"qr_pending_per_address", T_UINT, F_UINT(S, qr_pending_per_address), 0, 1, 100000, "20",
     F_RELOADABLE, NULL},
    {"qr_freshness", T_DURATION, F_U64(S, qr_freshness_ms), 0, SEC, 60 * SEC, "5s", F_RELOADABLE,
     NULL},
};
#undef S
static const struct table mobile_table = {mobile_kws, N(mobile_kws),
                                          sizeof(struct dz_config_mobile), NULL};

#define S struct dz_config_documents
static const struct kw documents_kws[] = {
    {"tsa_url", T_STR, F_STR(S, tsa_url), 0, 1, 1024, NULL, F_RELOADABLE | F_URL, NULL},
    {"tsa_ca", T_PATH, F_STR(S, tsa_ca), 0, 1, PATH_MAX, NULL, F_FILE | F_RELOADABLE, NULL},
    {"tsa_policies", T_STRS, F_STRV(S, tsa_policies), F_SIZET(S, n_tsa_policies), 1,
     DZ_TSP_MAX_POLICIES, NULL, F_RELOADABLE, NULL},
    {"tsa_timeout", T_DURATION, F_U64(S, tsa_timeout_ms), 0, 100, 30 * SEC, "5s", F_RELOADABLE,
     NULL},
    {"verify_rate", T_UINT, F_UINT(S, verify_rate), 0, 1, 100000, "60", F_RELOADABLE, NULL},
};
#undef S
static int check_documents(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static const struct table documents_table = {documents_kws, N(documents_kws),
                                             sizeof(struct dz_config_documents), check_documents};

#define S struct dz_config_sms
static const struct kw sms_kws[] = {
    {"url", T_STR, F_STR(S, url), 0, 1, 1024, NULL, F_RELOADABLE | F_URL, NULL},
    {"timeout", T_DURATION, F_U64(S, timeout_ms), 0, 100, 30 * SEC, "5s", F_RELOADABLE, NULL},
    {"code_ttl", T_DURATION, F_U64(S, code_ttl_ms), 0, SEC, HOUR, "5m", F_RELOADABLE, NULL},
    {"code_attempts", T_UINT, F_UINT(S, code_attempts), 0, 1, 10, "5", F_RELOADABLE, NULL},
    {"codes_per_fin", T_UINT, F_UINT(S, codes_per_fin), 0, 1, 20, "3", F_RELOADABLE, NULL},
};
#undef S
static const struct table sms_table = {sms_kws, N(sms_kws), sizeof(struct dz_config_sms), NULL};

/* The floor itself (2048 / 256) is the least a config may say: a lower
 * value is refused with its file:line, never quietly raised. */
#define S struct dz_config_trust
static const struct kw trust_kws[] = {
    {"min_rsa_bits", T_UINT, F_UINT(S, min_rsa_bits), 0, DZ_KEYFLOOR_RSA_BITS, DZ_KEYFLOOR_RSA_MAX,
     "2048", F_RELOADABLE, NULL},
    {"min_ec_bits", T_UINT, F_UINT(S, min_ec_bits), 0, DZ_KEYFLOOR_EC_BITS, DZ_KEYFLOOR_EC_MAX,
     "256", F_RELOADABLE, NULL},
};
#undef S
static const struct table trust_table = {trust_kws, N(trust_kws), sizeof(struct dz_config_trust),
                                         NULL};

static int check_access_log(struct ctx *, void *, const struct dz_yaml_node *, const char *);
static const char *const access_output_names[] = {"off", "stderr", "file", NULL};

#define S struct dz_config_access_log
static const struct kw access_log_kws[] = {
    {"output", T_ENUM, F_ENUM(S, output), 0, 0, 0, "off", F_RELOADABLE, access_output_names},
    {"file", T_PATH, F_STR(S, file), 0, 1, PATH_MAX, NULL, F_NEWFILE | F_RELOADABLE, NULL},
    {"log_fin", T_BOOL, F_BOOL(S, log_fin), 0, 0, 0, "false", F_RELOADABLE, NULL},
};
#undef S
static const struct table access_log_table = {
    access_log_kws, N(access_log_kws), sizeof(struct dz_config_access_log), check_access_log};

#define S struct dz_config_management
static const struct kw management_kws[] = {
    {"listen", T_STR, F_STR(S, listen), 0, 3, 64, NULL, F_REQUIRED, NULL},
    {"public_metrics", T_BOOL, F_BOOL(S, public_metrics), 0, 0, 0, "false", F_RELOADABLE, NULL},
    {"hosts", T_STRS, F_STRV(S, hosts), F_SIZET(S, n_hosts), 1, DZ_CONFIG_MAX_MGMT_HOSTS, NULL, 0,
     NULL},
};
#undef S
static const struct table management_table = {
    management_kws, N(management_kws), sizeof(struct dz_config_management), check_management};

/* Read when SIGTERM comes, from the generation then in force. */
#define S struct dz_config_drain
static const struct kw drain_kws[] = {
    {"grace", T_DURATION, F_U64(S, grace_ms), 0, 0, 5 * MIN, "5s", F_RELOADABLE, NULL},
    {"deadline", T_DURATION, F_U64(S, deadline_ms), 0, 0, HOUR, "10s", F_RELOADABLE, NULL},
};
#undef S
static const struct table drain_table = {drain_kws, N(drain_kws), sizeof(struct dz_config_drain),
                                         check_drain};

#define S struct dz_config
static const struct kw root_kws[] = {
    {"gateway", T_SECTION, F_ANY(S, gateway), 0, 0, 0, NULL, F_REQUIRED, &gateway_table},
    {"listeners", T_LIST, F_ANY(S, listeners), F_SIZET(S, n_listeners), 1, DZ_CONFIG_MAX_LISTENERS,
     NULL, F_REQUIRED, &listener_table},
    {"limits", T_SECTION, F_ANY(S, limits), 0, 0, 0, NULL, 0, &limits_table},
    {"store", T_SECTION, F_ANY(S, store), 0, 0, 0, NULL, 0, &store_table},
    {"sessions", T_SECTION, F_ANY(S, sessions), 0, 0, 0, NULL, 0, &sessions_table},
    {"accounts", T_SECTION, F_ANY(S, accounts), 0, 0, 0, NULL, F_REQUIRED, &accounts_table},
    {"lockout", T_SECTION, F_ANY(S, lockout), 0, 0, 0, NULL, 0, &lockout_table},
    {"registry", T_SECTION, F_ANY(S, registry), 0, 0, 0, NULL, F_REQUIRED, &registry_table},
    {"signing", T_SECTION, F_ANY(S, signing), 0, 0, 0, NULL, F_REQUIRED, &signing_table},
    {"upstream_tls", T_SECTION, F_ANY(S, upstream_tls), 0, 0, 0, NULL, F_REQUIRED,
     &upstream_tls_table},
    {"audit", T_SECTION, F_ANY(S, audit), 0, 0, 0, NULL, F_REQUIRED, &audit_table},
    {"cards", T_SECTION, F_ANY(S, cards), 0, 0, 0, NULL, 0, &cards_table},
    {"mobile", T_SECTION, F_ANY(S, mobile), 0, 0, 0, NULL, 0, &mobile_table},
    {"documents", T_SECTION, F_ANY(S, documents), 0, 0, 0, NULL, 0, &documents_table},
    {"trust", T_SECTION, F_ANY(S, trust), 0, 0, 0, NULL, 0, &trust_table},
    {"access_log", T_SECTION, F_ANY(S, access_log), 0, 0, 0, NULL, F_RELOADABLE, &access_log_table},
    {"management", T_SECTION, F_ANY(S, management), F_BOOL(S, management.enabled), 0, 0, NULL,
     F_PRESENCE, &management_table},
    {"drain", T_SECTION, F_ANY(S, drain), 0, 0, 0, NULL, 0, &drain_table},
    {"sms", T_SECTION, F_ANY(S, sms), 0, 0, 0, NULL, 0, &sms_table},
    {"policies", T_PATH, F_STR(S, policies), 0, 1, PATH_MAX, NULL,
     F_REQUIRED | F_DIR | F_RELOADABLE, NULL},
};
#undef S
static const struct table root_table = {root_kws, N(root_kws), sizeof(struct dz_config),
                                        check_root};

/* ---- helpers ------------------------------------------------------------ */

static int fail(struct ctx *c, unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct ctx *c, unsigned line, const char *key, const char *fmt, ...)
{
    char reason[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return dz_yaml_error(c->err, c->err_len, c->file, line, key, "%s", reason);
}

#define FIELDP(base, off, T) ((T *)(void *)((char *)(base) + (off)))
#define CFIELDP(base, off, T) ((const T *)(const void *)((const char *)(base) + (off)))

/* Key paths in messages: "listeners[0].tls.client_ca".  A path that does
 * not fit is cut short, which only shortens a message. */
#define KEY_LEN 200

static void cat(char *out, size_t len, const char *s)
{
    size_t used = strnlen(out, len);
    size_t n = strlen(s);

    if (used >= len)
        return;
    if (n > len - used - 1)
        n = len - used - 1;
    memcpy(out + used, s, n);
    out[used + n] = '\0';
}

static void join_key(char *out, size_t len, const char *prefix, const char *name)
{
    out[0] = '\0';
    if (prefix && prefix[0]) {
        cat(out, len, prefix);
        cat(out, len, ".");
    }
    cat(out, len, name);
}

static void index_key(char *out, size_t len, const char *key, size_t i)
{
    char num[32];

    out[0] = '\0';
    cat(out, len, key);
    if (snprintf(num, sizeof(num), "[%zu]", i) > 0)
        cat(out, len, num);
}

/* No control characters: not ASCII ones, not C1 ones (U+0080..U+009F, NEL
 * among them) and not the line and paragraph separators U+2028/U+2029,
 * which YAML would read back as line breaks.  (The input is valid UTF-8:
 * libyaml checked.) */
static bool is_printable(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    for (; *s; s++) {
        if (*s < 0x20 || *s == 0x7f)
            return false;
        if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
            return false;
        if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))
            return false;
    }
    return true;
}

/* The line to blame for a section as a whole: its key ("upstream_tls:"),
 * or for a list entry the line of its first key ("- address: ..."). */
static unsigned section_line(const struct dz_yaml_node *map)
{
    if (!map)
        return 0;
    return map->key ? map->key_line : map->line;
}

static unsigned line_of(const struct dz_yaml_node *map, const char *key, unsigned fallback)
{
    const struct dz_yaml_node *n = dz_yaml_get(map, key);
    if (n)
        return n->key_line;
    return map ? section_line(map) : fallback;
}

static int check_fs(struct ctx *c, const struct kw *k, const char *path, unsigned line,
                    const char *key)
{
    struct stat st;

    if (c->flags & DZ_CONFIG_NO_FS)
        return 0;
    if (k->flags & F_FILE) {
        if (stat(path, &st) != 0)
            return fail(c, line, key, "cannot read %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return fail(c, line, key, "%s is not a regular file", path);
        if (access(path, R_OK) != 0)
            return fail(c, line, key, "cannot read %s: %s", path, strerror(errno));
        /* sshd's rule for private keys: a secret others can read is no
         * longer one, and one others can write can be swapped. */
        if ((k->flags & F_SECRET) && !dz_secret_file_mode_ok(st.st_mode))
            return fail(c, line, key, "%s is accessible by group or others (mode %04o); chmod 600",
                        path, (unsigned)(st.st_mode & 07777));
        /* The owner of a file may chmod it and read it, or replace it: only
         * the account that reads it at every load may own such a key.  With
         * gateway.user that is the account, not root: a reload after the
         * drop could not read a root-owned 0600 key.  Without it, our own
         * account (or root); run as root (an operator's --check, the CLI)
         * the daemon's account is not known here, and the daemon checks
         * again at its own load. */
        if ((k->flags & F_OWNER) &&
            (c->has_run_uid ? st.st_uid != c->run_uid
                            : geteuid() != 0 && st.st_uid != 0 && st.st_uid != geteuid()))
            return fail(c, line, key, "%s is owned by uid %u, not by the account darvazad runs as",
                        path, (unsigned)st.st_uid);
    }
    if (k->flags & F_DIR) {
        if (stat(path, &st) != 0)
            return fail(c, line, key, "cannot read directory %s: %s", path, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return fail(c, line, key, "%s is not a directory", path);
        if (access(path, R_OK | X_OK) != 0)
            return fail(c, line, key, "cannot read directory %s: %s", path, strerror(errno));
    }
    if (k->flags & F_NEWFILE) {
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 0;
        if (n == 0)
            n = 1; /* "/file": the root directory */
        if (n >= sizeof(dir))
            return fail(c, line, key, "path too long");
        memcpy(dir, path, n);
        dir[n] = '\0';
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0)
            return fail(c, line, key, "directory %s does not exist or is not writable", dir);
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return fail(c, line, key, "%s is not a regular file", path);
    }
    return 0;
}

static int make_path(struct ctx *c, const char *text, unsigned line, const char *key, char **out)
{
    size_t need;

    *out = NULL;
    if (text[0] == '/') {
        *out = strdup(text);
    } else {
        if (c->cwd[0] == '\0' && !getcwd(c->cwd, sizeof(c->cwd)))
            return fail(c, line, key, "cannot resolve a relative path: %s", strerror(errno));
        need = strlen(c->cwd) + 1 + strlen(text) + 1;
        if (need > PATH_MAX)
            return fail(c, line, key, "path too long");
        *out = malloc(need);
        if (*out) {
            size_t n = strlen(c->cwd);
            memcpy(*out, c->cwd, n);
            (*out)[n] = '/';
            memcpy(*out + n + 1, text, strlen(text) + 1);
        }
    }
    if (!*out)
        return fail(c, line, key, "out of memory");
    return 0;
}

/* A PKCS#11 URI (RFC 7512).  The PIN may only come from pin_file: a
 * pin-value attribute would put the secret in the config (and the dump). */
static int check_pkcs11_uri(struct ctx *c, const char *text, unsigned line, const char *key)
{
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return fail(c, line, key, "a PKCS#11 URI has no blanks or control characters");
        if (strncasecmp(p, "pin-value", 9) == 0)
            return fail(c, line, key, "pin-value is not allowed in the URI; use pin_file");
    }
    if (strlen(text) <= 7)
        return fail(c, line, key, "empty PKCS#11 URI");
    return 0;
}

static int enum_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
    }
    return -1;
}

static void enum_list(const char *const *names, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; names[i] && used < len; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? "|" : "", names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Parse one scalar into its field.  `shown` is what messages may quote. */
static int set_value(struct ctx *c, const struct kw *k, void *base, const char *text, unsigned line,
                     const char *key)
{
    const char *shown = (k->flags & F_SENSITIVE) ? "<redacted>" : text;
    char lo[32];
    char hi[32];
    int rc;

    switch (k->type) {
    case T_STR:
    case T_PATH:
    case T_KEYREF: {
        char **field = FIELDP(base, k->off, char *);
        size_t len = strlen(text);
        if (len < k->min || len > k->max)
            return fail(c, line, key, "must be %llu to %llu characters long", k->min, k->max);
        if (!is_printable(text))
            return fail(c, line, key, "control characters are not allowed");
        free(*field);
        *field = NULL;
        if (k->type == T_KEYREF && strncmp(text, "pkcs11:", 7) == 0) {
            rc = check_pkcs11_uri(c, text, line, key);
            if (rc != 0)
                return rc;
            *field = strdup(text);
            return *field ? 0 : fail(c, line, key, "out of memory");
        }
        if (k->type == T_STR && (k->flags & F_URL)) {
            const char *why = dz_outbound_url_problem(text, NULL);
            if (why)
                return fail(c, line, key, "%s", why);
        }
        if (k->type == T_STR) {
            *field = strdup(text);
            return *field ? 0 : fail(c, line, key, "out of memory");
        }
        rc = make_path(c, text, line, key, field);
        if (rc != 0)
            return rc;
        return check_fs(c, k, *field, line, key);
    }
    case T_UINT: {
        long long v = 0;
        rc = dz_parse_int(text, (long long)k->min, (long long)k->max, &v);
        if (rc == DZ_ERR_PARSE)
            return fail(c, line, key, "expected a whole number, got \"%.40s\"", shown);
        if (rc != 0)
            return fail(c, line, key, "must be between %llu and %llu", k->min, k->max);
        *FIELDP(base, k->off, unsigned) = (unsigned)v;
        return 0;
    }
    case T_SIZE: {
        uint64_t v = 0;
        rc = dz_parse_size(text, k->min, k->max, &v);
        if (rc == DZ_ERR_PARSE)
            return fail(c, line, key,
                        "expected a size such as 512, 16KiB, 1MiB or 1GiB, got \"%.40s\"", shown);
        if (rc != 0) {
            dz_format_size(k->min, lo, sizeof(lo));
            dz_format_size(k->max, hi, sizeof(hi));
            return fail(c, line, key, "must be between %s and %s", lo, hi);
        }
        *FIELDP(base, k->off, uint64_t) = v;
        return 0;
    }
    case T_DURATION: {
        uint64_t v = 0;
        rc = dz_parse_duration(text, k->min, k->max, &v);
        if (rc == DZ_ERR_PARSE)
            return fail(c, line, key,
                        "expected a duration such as 250ms, 10s, 5m or 12h, got \"%.40s\"", shown);
        if (rc != 0) {
            dz_format_duration(k->min, lo, sizeof(lo));
            dz_format_duration(k->max, hi, sizeof(hi));
            return fail(c, line, key, "must be between %s and %s", lo, hi);
        }
        *FIELDP(base, k->off, uint64_t) = v;
        return 0;
    }
    case T_BOOL: {
        bool v = false;
        if (dz_parse_bool(text, &v) != 0)
            return fail(c, line, key, "expected true or false, got \"%.40s\"", shown);
        *FIELDP(base, k->off, bool) = v;
        return 0;
    }
    case T_ENUM: {
        const char *const *names = k->aux;
        int i = enum_index(names, text);
        char list[128];
        if (i < 0) {
            enum_list(names, list, sizeof(list));
            return fail(c, line, key, "expected %s, got \"%.40s\"", list, shown);
        }
        *FIELDP(base, k->off, int) = i;
        return 0;
    }
    case T_SECTION:
    case T_LIST:
    case T_PATHS:
    case T_STRS:
        break;
    }
    return fail(c, line, key, "internal error: bad keyword type");
}

/* ---- the generic walker --------------------------------------------------- */

static int load_table(struct ctx *c, const struct table *t, void *base,
                      const struct dz_yaml_node *map, unsigned line, const char *prefix);

static int load_list(struct ctx *c, const struct kw *k, void *base, const struct dz_yaml_node *n,
                     const char *key)
{
    const struct table *t = k->aux;
    void **arr = FIELDP(base, k->off, void *);
    size_t *count = FIELDP(base, k->off2, size_t);
    size_t i = 0;
    int rc;

    if (n->kind != DZ_YAML_SEQ)
        return fail(c, n->key_line, key, "expected a list, got %s", dz_yaml_kind_name(n->kind));
    if (n->count < k->min || n->count > k->max)
        return fail(c, n->key_line, key, "must have %llu to %llu entries", k->min, k->max);
    *arr = calloc(n->count, t->size);
    if (!*arr)
        return fail(c, n->key_line, key, "out of memory");
    /* Count first: a partly loaded list must still be freed entirely. */
    *count = n->count;
    for (const struct dz_yaml_node *item = n->first; item; item = item->next, i++) {
        char ikey[KEY_LEN];
        index_key(ikey, sizeof(ikey), key, i);
        if (item->kind != DZ_YAML_MAP)
            return fail(c, item->line, ikey, "expected a mapping, got %s",
                        dz_yaml_kind_name(item->kind));
        rc = load_table(c, t, (char *)*arr + i * t->size, item, item->line, ikey);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A list of paths ("[a, b]" or one per line): each entry is read as a
 * T_PATH with the keyword's file flags, so it gets the same checks and
 * messages ("...ticket_keys[1]: cannot read ...").  A list of texts
 * (T_STRS) the same way, each entry a T_STR of at most 255 bytes. */
static int load_strv(struct ctx *c, const struct kw *k, void *base, const struct dz_yaml_node *n,
                     const char *key)
{
    struct kw one = *k;
    char ***arr = FIELDP(base, k->off, char **);
    size_t *count = FIELDP(base, k->off2, size_t);
    const char *what = k->type == T_PATHS ? "path" : "value";
    size_t i = 0;
    int rc;

    if (n->kind != DZ_YAML_SEQ)
        return fail(c, n->key_line, key, "expected a list of %ss, got %s", what,
                    dz_yaml_is_null(n) ? "an empty value" : dz_yaml_kind_name(n->kind));
    if (n->count < k->min || n->count > k->max)
        return fail(c, n->key_line, key, "must have %llu to %llu entries", k->min, k->max);
    *arr = calloc(n->count, sizeof(char *));
    if (!*arr)
        return fail(c, n->key_line, key, "out of memory");
    /* Count first: a partly loaded list must still be freed entirely. */
    *count = n->count;
    one.type = k->type == T_PATHS ? T_PATH : T_STR;
    one.off = 0;
    one.min = 1;
    one.max = k->type == T_PATHS ? PATH_MAX : 255;
    for (const struct dz_yaml_node *item = n->first; item; item = item->next, i++) {
        char ikey[KEY_LEN];
        index_key(ikey, sizeof(ikey), key, i);
        if (item->kind != DZ_YAML_SCALAR || dz_yaml_is_null(item))
            return fail(c, item->line, ikey, "expected a %s, got %s", what,
                        dz_yaml_is_null(item) ? "an empty value" : dz_yaml_kind_name(item->kind));
        rc = set_value(c, &one, &(*arr)[i], item->str, item->line, ikey);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int load_kw(struct ctx *c, const struct kw *k, void *base, const struct dz_yaml_node *n,
                   unsigned parent_line, const char *key)
{
    if (k->type == T_SECTION) {
        if (!n) {
            if (k->flags & F_REQUIRED)
                return fail(c, parent_line, key, "required section is missing");
            if (k->flags & F_PRESENCE)
                return 0; /* absent means off: its required keys do not apply */
            return load_table(c, k->aux, FIELDP(base, k->off, char), NULL, parent_line, key);
        }
        if (n->kind != DZ_YAML_MAP)
            return fail(c, n->key_line, key, "expected a mapping, got %s",
                        dz_yaml_is_null(n) ? "an empty value" : dz_yaml_kind_name(n->kind));
        if (k->flags & F_PRESENCE)
            *FIELDP(base, k->off2, bool) = true;
        return load_table(c, k->aux, FIELDP(base, k->off, char), n, n->key_line, key);
    }
    if (k->type == T_LIST) {
        if (!n) {
            if (k->flags & F_REQUIRED)
                return fail(c, parent_line, key, "required list is missing");
            return 0;
        }
        return load_list(c, k, base, n, key);
    }
    if (k->type == T_PATHS || k->type == T_STRS) {
        if (!n) {
            if (k->flags & F_REQUIRED)
                return fail(c, parent_line, key, "required list is missing");
            return 0;
        }
        return load_strv(c, k, base, n, key);
    }
    if (!n) {
        if (k->flags & F_REQUIRED)
            return fail(c, parent_line, key, "required key is missing");
        if (k->flags & F_NCPU) {
            long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
            unsigned long long v = ncpu < 1 ? 1 : (unsigned long long)ncpu;
            if (v < k->min)
                v = k->min;
            if (v > k->max)
                v = k->max;
            *FIELDP(base, k->off, unsigned) = (unsigned)v;
            return 0;
        }
        if (!k->def)
            return 0;
        return set_value(c, k, base, k->def, parent_line, key);
    }
    if (n->kind != DZ_YAML_SCALAR)
        return fail(c, n->key_line, key, "expected a value, got %s", dz_yaml_kind_name(n->kind));
    if (dz_yaml_is_null(n))
        return fail(c, n->key_line, key, "empty value (remove the key for the default)");
    return set_value(c, k, base, n->str, n->key_line, key);
}

static int load_table(struct ctx *c, const struct table *t, void *base,
                      const struct dz_yaml_node *map, unsigned line, const char *prefix)
{
    char key[KEY_LEN];
    int rc;

    if (map) {
        /* Unknown keys first: a misspelt key is the likeliest mistake, and
         * silently ignoring it would leave the default in force. */
        for (const struct dz_yaml_node *m = map->first; m; m = m->next) {
            bool known = false;
            for (size_t i = 0; i < t->n_kws && !known; i++)
                known = strcmp(t->kws[i].name, m->key) == 0;
            if (!known) {
                join_key(key, sizeof(key), prefix, m->key);
                return fail(c, m->key_line, key, "unknown key");
            }
        }
    }
    for (size_t i = 0; i < t->n_kws; i++) {
        const struct kw *k = &t->kws[i];
        join_key(key, sizeof(key), prefix, k->name);
        rc = load_kw(c, k, base, dz_yaml_get(map, k->name), line, key);
        if (rc != 0)
            return rc;
    }
    if (t->check)
        return t->check(c, base, map, prefix);
    return 0;
}

static void free_table(const struct table *t, void *base)
{
    for (size_t i = 0; i < t->n_kws; i++) {
        const struct kw *k = &t->kws[i];
        switch (k->type) {
        case T_STR:
        case T_PATH:
        case T_KEYREF: {
            char **field = FIELDP(base, k->off, char *);
            if (k->flags & F_SENSITIVE)
                dz_secret_free_str(*field);
            else
                free(*field);
            *field = NULL;
            break;
        }
        case T_SECTION:
            free_table(k->aux, FIELDP(base, k->off, char));
            break;
        case T_LIST: {
            const struct table *sub = k->aux;
            void **arr = FIELDP(base, k->off, void *);
            size_t *count = FIELDP(base, k->off2, size_t);
            for (size_t j = 0; *arr && j < *count; j++)
                free_table(sub, (char *)*arr + j * sub->size);
            free(*arr);
            *arr = NULL;
            *count = 0;
            break;
        }
        case T_PATHS:
        case T_STRS: {
            char ***arr = FIELDP(base, k->off, char **);
            size_t *count = FIELDP(base, k->off2, size_t);
            for (size_t j = 0; *arr && j < *count; j++)
                free((*arr)[j]);
            free(*arr);
            *arr = NULL;
            *count = 0;
            break;
        }
        default:
            break;
        }
    }
}

/* ---- cross-field rules, one function per section ----------------------- */

static int check_gateway(struct ctx *c, void *base, const struct dz_yaml_node *map,
                         const char *path)
{
    struct dz_config_gateway *g = base;
    struct dz_url u;
    char key[KEY_LEN];

    for (const char *p = g->id; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\') {
            join_key(key, sizeof(key), path, "id");
            return fail(c, line_of(map, "id", 0), key,
                        "only printable ASCII without blanks, quotes or backslashes");
        }
    }
    join_key(key, sizeof(key), path, "origin");
    if (dz_parse_url(g->origin, &u) != 0 || g->origin[u.path_off] != '\0')
        return fail(c, line_of(map, "origin", 0), key,
                    "expected https://host[:port] with no path, not even a trailing /");
    if (!u.is_https && !u.is_loopback)
        return fail(c, line_of(map, "origin", 0), key,
                    "must be https (http only for a loopback host)");
    if (u.has_port && u.port == (u.is_https ? 443 : 80))
        return fail(c, line_of(map, "origin", 0), key,
                    "leave out the default port: browsers send the Origin without it");
    for (const char *p = u.host; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            return fail(c, line_of(map, "origin", 0), key,
                        "write the host in lower case, as browsers send it");
    }
    /* An unknown account is a config error (--check finds it), not a
     * surprise after the listeners are bound. */
    join_key(key, sizeof(key), path, "group");
    if (g->group && !g->user)
        return fail(c, line_of(map, "group", 0), key, "only used with user");
    if (g->group && !getgrnam(g->group))
        return fail(c, line_of(map, "group", 0), key, "no such group \"%s\" on this system",
                    g->group);
    join_key(key, sizeof(key), path, "user");
    if (g->user) {
        const struct passwd *pw = getpwnam(g->user);
        if (!pw)
            return fail(c, line_of(map, "user", 0), key, "no such user \"%s\" on this system",
                        g->user);
        c->has_run_uid = true;
        c->run_uid = pw->pw_uid;
    }
    return 0;
}

static int check_drain(struct ctx *c, void *base, const struct dz_yaml_node *map, const char *path)
{
    struct dz_config_drain *d = base;
    char key[KEY_LEN];

    /* Both count from the signal: a deadline before the grace ends would
     * cut requests while the listeners still take new ones. */
    if (d->deadline_ms < d->grace_ms) {
        join_key(key, sizeof(key), path, "deadline");
        return fail(c, line_of(map, "deadline", line_of(map, "grace", 0)), key,
                    "must not be shorter than grace (both count from SIGTERM)");
    }
    return 0;
}

/* tls.ticket_keys: never where a client certificate is asked for; each
 * file once, and exactly the size of a key (check_fs did the rest). */
static int check_ticket_keys(struct ctx *c, const struct dz_config_tls *t,
                             const struct dz_yaml_node *map, const char *path)
{
    const struct dz_yaml_node *list = dz_yaml_get(map, "ticket_keys");
    const struct dz_yaml_node *item = list ? list->first : NULL;
    char key[KEY_LEN];
    char ikey[KEY_LEN];
    struct stat st;

    if (t->n_ticket_keys == 0)
        return 0;
    join_key(key, sizeof(key), path, "ticket_keys");
    /* tls.c turns tickets off on such a listener: a resumed session would
     * carry the card certificate of its first handshake without a new
     * signature by the card (docs/cards.md). */
    if (t->client_auth != DZ_CLIENT_AUTH_NONE)
        return fail(c, line_of(map, "ticket_keys", 0), key,
                    "not with client_auth: optional or required: a listener that asks for "
                    "client certificates issues no session tickets at all");
    for (size_t i = 0; i < t->n_ticket_keys; i++, item = item ? item->next : NULL) {
        unsigned line = item ? item->line : line_of(map, "ticket_keys", 0);
        index_key(ikey, sizeof(ikey), key, i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->ticket_keys[i], t->ticket_keys[j]) == 0)
                return fail(c, line, ikey, "%s is listed twice", t->ticket_keys[i]);
        }
        if (c->flags & DZ_CONFIG_NO_FS)
            continue;
        if (stat(t->ticket_keys[i], &st) != 0)
            return fail(c, line, ikey, "cannot read %s: %s", t->ticket_keys[i], strerror(errno));
        if (st.st_size != DZ_TLS_TICKET_KEY_FILE_LEN)
            return fail(c, line, ikey,
                        "%s is %lld bytes; a ticket key file is exactly %d (openssl rand %d)",
                        t->ticket_keys[i], (long long)st.st_size, DZ_TLS_TICKET_KEY_FILE_LEN,
                        DZ_TLS_TICKET_KEY_FILE_LEN);
    }
    return 0;
}

static int check_tls(struct ctx *c, void *base, const struct dz_yaml_node *map, const char *path)
{
    struct dz_config_tls *t = base;
    char key[KEY_LEN];

    join_key(key, sizeof(key), path, "client_ca");
    if (t->client_auth != DZ_CLIENT_AUTH_NONE && !t->client_ca)
        return fail(c, line_of(map, "client_auth", 0), key,
                    "required when client_auth is optional or required");
    if (t->client_auth == DZ_CLIENT_AUTH_NONE && t->client_ca)
        return fail(c, line_of(map, "client_ca", 0), key,
                    "only used with client_auth: optional or required");
    return check_ticket_keys(c, t, map, path);
}

/* The card listener's origin is where the portal sends browsers: the same
 * shape as gateway.origin, and another origin than it (the whole point is
 * that the portal's own origin never asks for a certificate). */
static int check_cards(struct ctx *c, void *base, const struct dz_yaml_node *map, const char *path)
{
    struct dz_config_cards *cc = base;
    struct dz_url u;
    char key[KEY_LEN];

    if (!cc->tls_origin)
        return 0;
    join_key(key, sizeof(key), path, "tls_origin");
    if (dz_parse_url(cc->tls_origin, &u) != 0 || cc->tls_origin[u.path_off] != '\0' ||
        strncmp(cc->tls_origin, "https://", 8) != 0)
        return fail(c, line_of(map, "tls_origin", 0), key,
                    "expected https://host[:port] with no path, not even a trailing /");
    if (!cc->ca)
        return fail(c, line_of(map, "tls_origin", 0), key, "needs cards.ca");
    return 0;
}

/* A dotted numeric OID as X.660 writes it: a first arc 0..2, a second arc
 * (under 40 below 0 and 1), no empty arc, no leading zero. */
static bool numeric_oid(const char *s)
{
    unsigned arcs = 0;

    for (const char *p = s;; p++) {
        const char *start = p;
        unsigned long v = 0;

        for (; *p >= '0' && *p <= '9'; p++) {
            if (v > 100000000UL)
                return false;
            v = v * 10 + (unsigned long)(*p - '0');
        }
        if (p == start || (*start == '0' && p - start > 1))
            return false;
        if ((arcs == 0 && v > 2) || (arcs == 1 && s[0] != '2' && v > 39))
            return false;
        arcs++;
        if (*p == '\0')
            return arcs >= 2;
        if (*p != '.')
            return false;
    }
}

/* documents: a TSA comes with its anchors and the policies its tokens
 * must name (tsp.h: a TSA may also issue tokens under a test policy or a
 * lesser one; nothing else tells them apart).  No default: which of a
 * TSA's policies a court relies on is the operator's decision, and a
 * wrong guess either lets a test token through or stops every filing. */
static int check_documents(struct ctx *c, void *base, const struct dz_yaml_node *map,
                           const char *path)
{
    struct dz_config_documents *d = base;
    const struct dz_yaml_node *list = dz_yaml_get(map, "tsa_policies");
    const struct dz_yaml_node *item = list ? list->first : NULL;
    char key[KEY_LEN], ikey[KEY_LEN];

    join_key(key, sizeof(key), path, "tsa_policies");
    if (d->tsa_url && !d->tsa_ca) {
        join_key(ikey, sizeof(ikey), path, "tsa_ca");
        return fail(c, line_of(map, "tsa_url", 0), ikey, "required with tsa_url");
    }
    if (d->tsa_url && d->n_tsa_policies == 0)
        return fail(c, line_of(map, "tsa_url", 0), key,
                    "required with tsa_url: the TSA policy OIDs whose tokens are accepted");
    for (size_t i = 0; i < d->n_tsa_policies; i++, item = item ? item->next : NULL) {
        unsigned line = item ? item->line : line_of(map, "tsa_policies", 0);
        index_key(ikey, sizeof(ikey), key, i);
        if (!numeric_oid(d->tsa_policies[i]))
            return fail(c, line, ikey, "expected a dotted numeric OID, got \"%.64s\"",
                        d->tsa_policies[i]);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(d->tsa_policies[i], d->tsa_policies[j]) == 0)
                return fail(c, line, ikey, "%s is listed twice", d->tsa_policies[i]);
        }
    }
    return 0;
}

static int check_listener(struct ctx *c, void *base, const struct dz_yaml_node *map,
                          const char *path)
{
    struct dz_config_listener *l = base;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&l->sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&l->sa;
    char key[KEY_LEN];

    l->line = map ? map->line : 0;
    l->sa_len = numeric_sockaddr(l->address, (int)l->port, &l->sa);
    if (l->sa_len && l->sa.ss_family == AF_INET) {
        l->is_loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    } else if (l->sa_len) {
        l->is_loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
                         (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
    } else {
        join_key(key, sizeof(key), path, "address");
        return fail(c, line_of(map, "address", 0), key,
                    "expected a numeric IPv4 or IPv6 address, got \"%.64s\"", l->address);
    }
    /* Cleartext HTTP/2 carries session tokens in the clear: loopback only
     * (a local TLS terminator or tests), never on a reachable address. */
    if (!l->tls.enabled && !l->is_loopback) {
        join_key(key, sizeof(key), path, "tls");
        return fail(c, l->line, key,
                    "required on a non-loopback address (cleartext h2c is loopback only)");
    }
    return 0;
}

/* "host:port" (a name, an IPv4 address, or [IPv6]:port). */
bool dz_config_hostport(const char *s, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t n;
    char *end = NULL;
    long p;

    if (!colon || colon == s)
        return false;
    n = (size_t)(colon - s);
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return false;
        h = s + 1;
        n -= 2;
    }
    if (n >= cap || memchr(h, ' ', n))
        return false;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || !end || *end || end == colon + 1 || p < 1 || p > 65535)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return true;
}

static int check_store(struct ctx *c, void *base, const struct dz_yaml_node *map, const char *path)
{
    struct dz_config_store *s = base;
    const struct dz_yaml_node *r = dz_yaml_get(map, "redis");
    char key[KEY_LEN];
    char host[256];
    int port;

    if (s->backend == DZ_STORE_REDIS && !s->redis_present) {
        join_key(key, sizeof(key), path, "redis");
        return fail(c, line_of(map, "backend", 0), key, "required with backend redis");
    }
    if (!s->redis_present)
        return 0;
    join_key(key, sizeof(key), path, "redis");
    if (!!s->redis_address == !!s->n_redis_sentinels)
        return fail(c, line_of(map, "redis", 0), key,
                    "give either address or sentinels (with master_name)");
    if (s->n_redis_sentinels && !s->redis_master_name)
        return fail(c, line_of(r, "sentinels", line_of(map, "redis", 0)), key,
                    "master_name is required with sentinels");
    if (s->redis_address && !dz_config_hostport(s->redis_address, host, sizeof(host), &port)) {
        join_key(key, sizeof(key), path, "redis.address");
        return fail(c, line_of(r, "address", 0), key, "not host:port");
    }
    for (size_t i = 0; i < s->n_redis_sentinels; i++)
        if (!dz_config_hostport(s->redis_sentinels[i].address, host, sizeof(host), &port)) {
            join_key(key, sizeof(key), path, "redis.sentinels");
            return fail(c, line_of(r, "sentinels", 0), key, "entry %zu is not host:port", i);
        }
    for (const char *p = s->redis_prefix; *p; p++)
        if (*p <= ' ' || *p == 0x7f) {
            join_key(key, sizeof(key), path, "redis.prefix");
            return fail(c, line_of(r, "prefix", 0), key, "no spaces or control characters");
        }
    /* Key names are keyed hashes and values sealed with this key: without it
     * a FIN would reach Redis (and its dumps and replicas) in clear. */
    if (s->backend == DZ_STORE_REDIS && !s->redis_value_key_file)
        return fail(c, line_of(map, "redis", 0), key,
                    "value_key_file is required (without it keys and values reach Redis in "
                    "clear)");
    return 0;
}

static int check_sessions(struct ctx *c, void *base, const struct dz_yaml_node *map,
                          const char *path)
{
    struct dz_config_sessions *s = base;
    char key[KEY_LEN];

    if (s->idle_high_ms > s->idle_ms) {
        join_key(key, sizeof(key), path, "idle_high");
        return fail(c, line_of(map, "idle_high", 0), key, "must not be longer than idle");
    }
    if (s->idle_ms > s->absolute_ms) {
        join_key(key, sizeof(key), path, "idle");
        return fail(c, line_of(map, "idle", 0), key, "must not be longer than absolute");
    }
    return 0;
}

/*
 * A rough size of what regcomp will build: bounded repetitions (and '+') are
 * expanded by copying, so "((a{99}){99}){99}" or "a++++++++++++++++++++" is
 * short text but a huge automaton.
 * Refuse anything whose expansion exceeds a few thousand atoms.
 */
#define ERE_MAX_COST 4096

static size_t ere_cost(const char *p)
{
    size_t stack[32];
    int depth = 0;
    size_t cur = 0;
    size_t last = 0;

    while (*p) {
        char ch = *p;
        if (ch == '(') {
            if (depth >= 32)
                return SIZE_MAX;
            stack[depth++] = cur;
            cur = 0;
            last = 0;
            p++;
        } else if (ch == ')' && depth > 0) {
            size_t inner = cur + 1;
            cur = stack[--depth] + inner;
            last = inner;
            p++;
        } else if (ch == '{') {
            unsigned long n = 0;
            unsigned long m = 0;
            char *end = NULL;
            p++;
            n = strtoul(p, &end, 10);
            if (end == p)
                continue; /* not a bound; regcomp decides */
            m = n;
            p = end;
            if (*p == ',') {
                p++;
                m = strtoul(p, &end, 10);
                if (end == p)
                    m = n + 1;
                p = end;
            }
            if (*p == '}')
                p++;
            if (m > 255 || n > 255)
                return SIZE_MAX;
            if (m < n)
                m = n;
            cur += last * (m ? m - 1 : 0);
            last *= m ? m : 1;
        } else if (ch == '[') {
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                    char close = p[1];
                    p += 2;
                    while (*p && !(p[0] == close && p[1] == ']'))
                        p++;
                    if (*p)
                        p += 2;
                } else {
                    p++;
                }
            }
            if (*p)
                p++;
            cur++;
            last = 1;
        } else if (ch == '\\' && p[1]) {
            p += 2;
            cur++;
            last = 1;
        } else if (ch == '+') {
            /* glibc builds "x+" as "xx*": the atom is copied once more. */
            p++;
            cur += last;
            last *= 2;
        } else if (ch == '*' || ch == '?') {
            p++;
        } else {
            p++;
            cur++;
            last = strchr("|^$", ch) ? 0 : 1;
        }
        if (cur > ERE_MAX_COST || last > ERE_MAX_COST)
            return SIZE_MAX;
    }
    while (depth > 0)
        cur += stack[--depth];
    return cur;
}

static int check_accounts(struct ctx *c, void *base, const struct dz_yaml_node *map,
                          const char *path)
{
    struct dz_config_accounts *a = base;
    char key[KEY_LEN];
    char why[128];

    if (a->backend == DZ_ACCOUNTS_SQLITE && !a->database) {
        join_key(key, sizeof(key), path, "database");
        return fail(c, line_of(map, "backend", 0), key, "required with backend sqlite");
    }
    if (a->backend == DZ_ACCOUNTS_POSTGRESQL && !a->pg_present) {
        join_key(key, sizeof(key), path, "postgresql");
        return fail(c, line_of(map, "backend", 0), key, "required with backend postgresql");
    }
    if (a->argon2_memory % 1024 != 0) {
        join_key(key, sizeof(key), path, "argon2_memory");
        return fail(c, line_of(map, "argon2_memory", 0), key, "must be a whole number of KiB");
    }
    join_key(key, sizeof(key), path, "document_pattern");
    if (ere_cost(a->document_pattern) > ERE_MAX_COST)
        return fail(c, line_of(map, "document_pattern", 0), key,
                    "too complex (repetition bounds multiply out too far)");
    /* dz_docpat_compile matches the whole input (it adds ^(...)$ itself),
     * so a pattern written with or without anchors means the same. */
    if (dz_docpat_compile(a->document_pattern, &a->document, why, sizeof(why)) != 0)
        return fail(c, line_of(map, "document_pattern", 0), key,
                    "not a usable POSIX extended regular expression: %s", why);
    return 0;
}

static int check_signing_key(struct ctx *c, void *base, const struct dz_yaml_node *map,
                             const char *path)
{
    struct dz_config_signing_key *k = base;
    char key[KEY_LEN];

    k->line = map ? map->line : 0;
    for (const char *p = k->kid; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-')) {
            join_key(key, sizeof(key), path, "kid");
            return fail(c, line_of(map, "kid", 0), key, "only letters, digits, '.', '_', '-'");
        }
    }
    k->is_pkcs11 = strncmp(k->key, "pkcs11:", 7) == 0;
    if (k->pin_file && !k->is_pkcs11) {
        join_key(key, sizeof(key), path, "pin_file");
        return fail(c, line_of(map, "pin_file", 0), key, "only for a PKCS#11 key (pkcs11: URI)");
    }
    return 0;
}

static int check_signing(struct ctx *c, void *base, const struct dz_yaml_node *map,
                         const char *path)
{
    struct dz_config_signing *s = base;
    char key[KEY_LEN];

    for (size_t i = 0; i < s->n_keys; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->keys[i].kid, s->keys[j].kid) == 0) {
                {
                    char list[KEY_LEN];
                    join_key(list, sizeof(list), path, "keys");
                    index_key(key, sizeof(key), list, i);
                    join_key(list, sizeof(list), key, "kid");
                    memcpy(key, list, sizeof(key));
                }
                return fail(c, s->keys[i].line, key, "duplicate kid \"%s\" (also at line %u)",
                            s->keys[i].kid, s->keys[j].line);
            }
        }
        if (strcmp(s->keys[i].kid, s->active) == 0)
            s->active_key = &s->keys[i];
    }
    if (!s->active_key) {
        join_key(key, sizeof(key), path, "active");
        return fail(c, line_of(map, "active", 0), key, "no key with kid \"%s\" in %s.keys",
                    s->active, path);
    }
    return 0;
}

/* audit.instance names this gateway's chain among several (segment headers,
 * every line): a token, so it reads the same in file names and greps. */
static int check_audit(struct ctx *c, void *base, const struct dz_yaml_node *map, const char *path)
{
    struct dz_config_audit *a = base;
    char key[KEY_LEN];

    if (a->instance && strspn(a->instance, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                                           "nopqrstuvwxyz0123456789._:-") != strlen(a->instance)) {
        join_key(key, sizeof(key), path, "instance");
        return fail(c, line_of(map, "instance", 0), key,
                    "only letters, digits and . _ : - (it names this gateway's audit chain)");
    }
    return 0;
}

static int check_upstream_tls(struct ctx *c, void *base, const struct dz_yaml_node *map,
                              const char *path)
{
    struct dz_config_upstream_tls *u = base;
    char key[KEY_LEN];

    if (!u->certificate != !u->key) {
        const char *missing = u->certificate ? "key" : "certificate";
        join_key(key, sizeof(key), path, missing);
        return fail(c, section_line(map), key, "certificate and key go together");
    }
    return 0;
}

static int check_access_log(struct ctx *c, void *base, const struct dz_yaml_node *map,
                            const char *path)
{
    struct dz_config_access_log *a = base;
    char key[KEY_LEN];

    if (a->output == DZ_ACCESS_FILE && !a->file) {
        join_key(key, sizeof(key), path, "file");
        return fail(c, line_of(map, "output", 0), key, "required when output is file");
    }
    if (a->output != DZ_ACCESS_FILE && a->file) {
        join_key(key, sizeof(key), path, "file");
        return fail(c, line_of(map, "file", 0), key,
                    "only read with output: file (it would be ignored)");
    }
    return 0;
}

/* A host name of management.hosts: letters, digits, '-' and '.', in
 * labels of 1 to 63, a final dot allowed (no port; IP addresses are
 * always answered). */
static bool mgmt_host_name_ok(const char *h)
{
    size_t label = 0;
    size_t len = strlen(h);

    if (len > 1 && h[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)ch) || ch == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* listen: "ADDRESS:PORT" with a numeric IPv4 address, or "[IPv6]:PORT";
 * hosts: host names (mgmt_host_name_ok). */
static int check_management(struct ctx *c, void *base, const struct dz_yaml_node *map,
                            const char *path)
{
    struct dz_config_management *m = base;
    char host[64];
    const char *colon = strrchr(m->listen, ':');
    const char *h = m->listen;
    size_t hlen = colon ? (size_t)(colon - m->listen) : 0;
    long long port = 0;
    char key[KEY_LEN];

    m->sa_len = 0;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (colon && hlen > 0 && hlen < sizeof(host) && dz_parse_int(colon + 1, 1, 65535, &port) == 0) {
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        m->sa_len = numeric_sockaddr(host, (int)port, &m->sa);
    }
    if (m->sa_len == 0) {
        join_key(key, sizeof(key), path, "listen");
        return fail(c, line_of(map, "listen", 0), key,
                    "expected ADDRESS:PORT with a numeric address (\"127.0.0.1:9180\", "
                    "\"[::1]:9180\"), got \"%.64s\"",
                    m->listen);
    }
    for (size_t i = 0; i < m->n_hosts; i++) {
        const struct dz_yaml_node *list = dz_yaml_get(map, "hosts");
        const struct dz_yaml_node *item = list ? list->first : NULL;
        char hkey[KEY_LEN];

        if (mgmt_host_name_ok(m->hosts[i]))
            continue;
        for (size_t j = 0; item && j < i; j++)
            item = item->next;
        join_key(key, sizeof(key), path, "hosts");
        index_key(hkey, sizeof(hkey), key, i);
        return fail(c, item ? item->line : line_of(map, "hosts", 0), hkey,
                    "expected a host name (letters, digits, '-' and '.', no port), got \"%.64s\"",
                    m->hosts[i]);
    }
    return 0;
}

/* cards.tls_origin sends browsers to a card listener: one must exist, and
 * it must be another origin than the portal's, which asks for nothing. */
static int check_card_listener(struct ctx *c, const struct dz_config *cfg,
                               const struct dz_yaml_node *map)
{
    bool has = false;

    for (size_t i = 0; i < cfg->n_listeners; i++)
        has = has || cfg->listeners[i].tls.client_auth == DZ_CLIENT_AUTH_REQUIRED;
    if (!cfg->cards.tls_origin)
        return 0;
    if (!has)
        return fail(c, line_of(map, "cards", 0), "cards.tls_origin",
                    "needs a listener with tls.client_auth: required (the card listener)");
    if (strcmp(cfg->cards.tls_origin, cfg->gateway.origin) == 0)
        return fail(c, line_of(map, "cards", 0), "cards.tls_origin",
                    "must differ from gateway.origin");
    return 0;
}

static int check_root(struct ctx *c, void *base, const struct dz_yaml_node *map, const char *path)
{
    struct dz_config *cfg = base;
    char key[KEY_LEN];

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t j = 0; j < i; j++) {
            const struct dz_config_listener *a = &cfg->listeners[i];
            const struct dz_config_listener *b = &cfg->listeners[j];
            if (a->sa_len == b->sa_len && memcmp(&a->sa, &b->sa, a->sa_len) == 0) {
                index_key(key, sizeof(key), "listeners", i);
                return fail(c, a->line, key, "same address and port as line %u", b->line);
            }
        }
    }
    if (check_card_listener(c, cfg, map) != 0)
        return DZ_ERR_INVAL;
    return 0;
}

/* ---- formatting: dump and reload comparison ------------------------------ */

/* The value of a scalar keyword in config syntax; false when unset or when
 * the buffer could not take it (the dump then shows the key without a
 * value rather than a cut one). */
static bool format_value(const struct kw *k, const void *base, struct dz_buf *out)
{
    char tmp[32];
    bool ok = true;

    switch (k->type) {
    case T_STR:
    case T_PATH:
    case T_KEYREF: {
        const char *s = *CFIELDP(base, k->off, char *);
        if (!s)
            return false;
        ok = dz_buf_append_str(out, "\"") == 0;
        for (; ok && *s; s++) {
            if (*s == '"' || *s == '\\')
                ok = dz_buf_append_str(out, "\\") == 0;
            ok = ok && dz_buf_append(out, s, 1) == 0;
        }
        return ok && dz_buf_append_str(out, "\"") == 0;
    }
    case T_UINT:
        return dz_buf_appendf(out, "%u", *CFIELDP(base, k->off, unsigned)) == 0;
    case T_SIZE:
        dz_format_size(*CFIELDP(base, k->off, uint64_t), tmp, sizeof(tmp));
        return dz_buf_append_str(out, tmp) == 0;
    case T_DURATION:
        dz_format_duration(*CFIELDP(base, k->off, uint64_t), tmp, sizeof(tmp));
        return dz_buf_append_str(out, tmp) == 0;
    case T_BOOL:
        return dz_buf_append_str(out, *CFIELDP(base, k->off, bool) ? "true" : "false") == 0;
    case T_ENUM: {
        const char *const *names = k->aux;
        int v = *CFIELDP(base, k->off, int);
        for (int i = 0; names[i]; i++) {
            if (i == v)
                return dz_buf_append_str(out, names[i]) == 0;
        }
        return dz_buf_append_str(out, "?") == 0;
    }
    case T_PATHS:
    case T_STRS: {
        const char *const *arr = *CFIELDP(base, k->off, char **);
        size_t n = *CFIELDP(base, k->off2, size_t);
        struct kw one = *k;
        if (!arr || n == 0)
            return false;
        one.type = k->type == T_PATHS ? T_PATH : T_STR;
        one.off = 0;
        ok = dz_buf_append_str(out, "[") == 0;
        for (size_t i = 0; ok && i < n; i++) {
            ok = (i == 0 || dz_buf_append_str(out, ", ") == 0) && format_value(&one, &arr[i], out);
        }
        return ok && dz_buf_append_str(out, "]") == 0;
    }
    case T_SECTION:
    case T_LIST:
        break;
    }
    return false;
}

static void dump_table(FILE *f, const struct table *t, const void *base, int indent, bool list_item)
{
    bool first = true;

    for (size_t i = 0; i < t->n_kws; i++) {
        const struct kw *k = &t->kws[i];
        const char *lead = list_item ? (first ? "- " : "  ") : "";
        int pad = list_item ? indent - 2 : indent;
        struct dz_buf v;

        if (k->type == T_SECTION) {
            if ((k->flags & F_PRESENCE) && !*CFIELDP(base, k->off2, bool))
                continue;
            fprintf(f, "%*s%s%s:\n", pad, "", lead, k->name);
            dump_table(f, k->aux, CFIELDP(base, k->off, char), indent + 2, false);
            first = false;
            continue;
        }
        if (k->type == T_LIST) {
            const struct table *sub = k->aux;
            const char *arr = *CFIELDP(base, k->off, char *);
            size_t n = *CFIELDP(base, k->off2, size_t);
            fprintf(f, "%*s%s%s:\n", pad, "", lead, k->name);
            for (size_t j = 0; j < n; j++)
                dump_table(f, sub, arr + j * sub->size, indent + 4, true);
            first = false;
            continue;
        }
        dz_buf_init(&v, 4 * PATH_MAX);
        if (format_value(k, base, &v)) {
            fprintf(f, "%*s%s%s: %s\n", pad, "", lead, k->name,
                    (k->flags & F_SENSITIVE) ? "<redacted>" : dz_buf_cstr(&v));
            first = false;
        }
        if (k->flags & F_SENSITIVE)
            dz_buf_wipe(&v);
        else
            dz_buf_cleanup(&v);
    }
}

int dz_config_dump(const struct dz_config *c, FILE *f)
{
    fprintf(f, "# effective configuration loaded from %s\n", c->path ? c->path : "?");
    dump_table(f, &root_table, c, 0, false);
    return ferror(f) || fflush(f) != 0 ? DZ_ERR_IO : 0;
}

static int diff_table(const struct table *t, const void *a, const void *b, const char *prefix,
                      char *err, size_t err_len)
{
    char key[KEY_LEN];
    int rc;

    for (size_t i = 0; i < t->n_kws; i++) {
        const struct kw *k = &t->kws[i];
        if (k->flags & F_RELOADABLE)
            continue;
        join_key(key, sizeof(key), prefix, k->name);
        if (k->type == T_SECTION) {
            bool pa = true;
            bool pb = true;
            if (k->flags & F_PRESENCE) {
                pa = *CFIELDP(a, k->off2, bool);
                pb = *CFIELDP(b, k->off2, bool);
            }
            if (pa != pb)
                goto changed;
            if (!pa)
                continue;
            rc = diff_table(k->aux, CFIELDP(a, k->off, char), CFIELDP(b, k->off, char), key, err,
                            err_len);
            if (rc != 0)
                return rc;
        } else if (k->type == T_LIST) {
            const struct table *sub = k->aux;
            const char *xa = *CFIELDP(a, k->off, char *);
            const char *xb = *CFIELDP(b, k->off, char *);
            size_t n = *CFIELDP(a, k->off2, size_t);
            if (n != *CFIELDP(b, k->off2, size_t))
                goto changed;
            for (size_t j = 0; j < n; j++) {
                char ikey[KEY_LEN];
                index_key(ikey, sizeof(ikey), key, j);
                rc = diff_table(sub, xa + j * sub->size, xb + j * sub->size, ikey, err, err_len);
                if (rc != 0)
                    return rc;
            }
        } else {
            struct dz_buf va;
            struct dz_buf vb;
            bool same;
            dz_buf_init(&va, 4 * PATH_MAX);
            dz_buf_init(&vb, 4 * PATH_MAX);
            format_value(k, a, &va);
            format_value(k, b, &vb);
            same = va.len == vb.len && strcmp(dz_buf_cstr(&va), dz_buf_cstr(&vb)) == 0;
            dz_buf_wipe(&va);
            dz_buf_wipe(&vb);
            if (!same)
                goto changed;
        }
    }
    return 0;
changed:
    if (err && err_len)
        snprintf(err, err_len, "%s: changed, needs a restart", key);
    return DZ_ERR_INVAL;
}

int dz_config_reload_check(const struct dz_config *old, const struct dz_config *next, char *err,
                           size_t err_len)
{
    if (err && err_len)
        err[0] = '\0';
    if (!old || !next)
        return DZ_ERR_INVAL;
    return diff_table(&root_table, old, next, "", err, err_len);
}

/* ---- load and free ---------------------------------------------------- */

static int load_doc(const struct dz_yaml_doc *doc, unsigned flags, struct dz_config **out,
                    char *err, size_t err_len)
{
    const struct dz_yaml_node *root = dz_yaml_root(doc);
    struct dz_config *cfg = NULL;
    struct ctx *c = NULL;
    int rc = DZ_ERR_NOMEM;

    c = calloc(1, sizeof(*c));
    if (!c) {
        dz_yaml_error(err, err_len, dz_yaml_name(doc), 0, NULL, "out of memory");
        goto out;
    }
    c->file = dz_yaml_name(doc);
    c->flags = flags;
    c->err = err;
    c->err_len = err_len;
    if (!root) {
        rc = fail(c, 0, NULL, "empty configuration");
        goto out;
    }
    if (root->kind != DZ_YAML_MAP) {
        rc = fail(c, root->line, NULL, "expected a mapping of sections, got %s",
                  dz_yaml_kind_name(root->kind));
        goto out;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(c->file))) {
        rc = fail(c, 0, NULL, "out of memory");
        goto out;
    }
    rc = load_table(c, &root_table, cfg, root, root->line, "");
    if (rc != 0)
        goto out;
    *out = cfg;
    cfg = NULL;
out:
    dz_config_free(cfg);
    free(c);
    return rc;
}

int dz_config_load_buf(const char *name, const void *data, size_t len, unsigned flags,
                       struct dz_config **out, char *err, size_t err_len)
{
    struct dz_yaml_limits lim = dz_yaml_default_limits;
    struct dz_yaml_doc *doc = NULL;
    int rc;

    *out = NULL;
    lim.max_bytes = DZ_CONFIG_MAX_BYTES;
    lim.max_depth = 8;
    rc = dz_yaml_load_buf(name, data, len, &lim, &doc, err, err_len);
    if (rc == 0)
        rc = load_doc(doc, flags, out, err, err_len);
    dz_yaml_free(doc);
    return rc;
}

int dz_config_load_flags(const char *path, unsigned flags, struct dz_config **out, char *err,
                         size_t err_len)
{
    struct dz_yaml_limits lim = dz_yaml_default_limits;
    struct dz_yaml_doc *doc = NULL;
    int rc;

    *out = NULL;
    lim.max_bytes = DZ_CONFIG_MAX_BYTES;
    lim.max_depth = 8;
    rc = dz_yaml_load_file(path, &lim, &doc, err, err_len);
    if (rc == 0)
        rc = load_doc(doc, flags, out, err, err_len);
    dz_yaml_free(doc);
    return rc;
}

int dz_config_load(const char *path, struct dz_config **out, char *err, size_t err_len)
{
    return dz_config_load_flags(path, 0, out, err, err_len);
}

void dz_config_free(struct dz_config *c)
{
    if (!c)
        return;
    dz_docpat_free(c->accounts.document);
    free_table(&root_table, c);
    free(c->path);
    free(c);
}
