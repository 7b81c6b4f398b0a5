/*
 * config.h - the gateway's configuration: one immutable generation loaded
 * from a YAML file (darvaza.yaml), validated, then only read.
 *
 * Owns: the parsed values below and nothing else (no sockets, no keys, no
 * file contents: it only checks that named files are readable).  Reload
 * builds a new generation with dz_config_load, asks dz_config_reload_check
 * whether the change can be applied live, and swaps a pointer; the old
 * generation is freed when its last user lets go (the caller refcounts).
 *
 * Every key is described by a keyword table in config.c (name, type, range,
 * default, flags SENSITIVE / RELOADABLE), like OpenSSH keywords[] and Redis
 * static_configs[]; docs/internals/config.md and demo/darvaza.yaml list them.
 * Unknown keys are errors.  Errors read "file:line: key: reason", keys
 * written with their path ("listeners[0].tls.client_ca").
 *
 * Relative paths in the file are resolved against the current working
 * directory at load time and stored absolute, so a later chdir() changes
 * nothing.  Sizes are bytes, durations milliseconds (fields end in _ms).
 *
 * Thread affinity: load/free/dump from any one thread; a loaded config is
 * read-only and may be read from every thread without locks
 * (accounts.document included: dz_docpat_match is thread-safe).
 */
#ifndef DZ_CONFIG_H
#define DZ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/fin.h"
#include "base/log.h"

#define DZ_CONFIG_MAX_LISTENERS 16
#define DZ_CONFIG_MAX_SIGNING_KEYS 8
#define DZ_CONFIG_MAX_TICKET_KEYS 8 /* per listener (DZ_TLS_TICKET_KEYS_MAX) */
#define DZ_CONFIG_MAX_BYTES (64 * 1024)

enum dz_client_auth {
    DZ_CLIENT_AUTH_NONE = 0,     /* no client certificate asked */
    DZ_CLIENT_AUTH_OPTIONAL = 1, /* asked, verified against client_ca when sent */
    /* The card listener (docs/cards.md): every client is asked for a card
     * certificate (only client_ca's names in the CertificateRequest), and
     * the listener serves the card login and nothing else. */
    DZ_CLIENT_AUTH_REQUIRED = 2
};

/* gateway.log_levels: one threshold per subsystem (the source folder),
 * DZ_CONFIG_LOG_INHERIT to follow gateway.log_level.  The names are
 * dz_config_log_subs[], in the order of level[]. */
#define DZ_CONFIG_LOG_SUBS 15
#define DZ_CONFIG_LOG_INHERIT 4
extern const char *const dz_config_log_subs[DZ_CONFIG_LOG_SUBS];
struct dz_config_log_levels {
    int level[DZ_CONFIG_LOG_SUBS]; /* enum dz_log_level or DZ_CONFIG_LOG_INHERIT */
};

/* gateway: */
struct dz_config_gateway {
    char *id;                    /* assertion "iss"; required */
    char *origin;                /* "https://host[:port]" exactly as browsers send Origin */
    unsigned workers;            /* 1..64, default: CPUs online */
    unsigned blocking_threads;   /* 1..64, default 2 */
    unsigned blocking_queue;     /* 1..65536, default 1024 */
    enum dz_log_level log_level; /* default info */
    bool trust_forwarded;        /* take the client address from Forwarded; default false */
    char *web_root;              /* the portal's static files (web.h); NULL = no pages */
    char *user;                  /* drop to this account after binding (privdrop.h); NULL = stay */
    char *group;                 /* with user: this group instead of the user's primary one */

    struct dz_config_log_levels log_levels; /* gateway.log_levels */
};

/* listeners[i].tls: */
struct dz_config_tls {
    bool enabled;                    /* the tls: mapping is present; false = cleartext h2c */
    char *certificate;               /* chain PEM path (required when enabled) */
    char *key;                       /* private key PEM path (required when enabled) */
    enum dz_client_auth client_auth; /* default none */
    char *client_ca;                 /* PEM path; set iff client_auth is not none */
    /* Session ticket key files (lib/http/tlstickets.h): [0] encrypts new
     * tickets, every one decrypts; 80 bytes each, 0600, owned by root or the
     * daemon's account.  None: OpenSSL's own keys, new at every start and
     * reload.  Never with client_auth optional or required. */
    char **ticket_keys;
    size_t n_ticket_keys; /* 0..DZ_CONFIG_MAX_TICKET_KEYS */
};

/* listeners[i]: */
struct dz_config_listener {
    char *address; /* numeric IPv4 or IPv6, as written */
    unsigned port; /* 1..65535 */
    struct dz_config_tls tls;
    struct sockaddr_storage sa; /* address and port, ready for bind() */
    socklen_t sa_len;
    bool is_loopback;
    unsigned line; /* line of the entry, for messages */
};

/* limits: */
struct dz_config_limits {
    uint64_t header_bytes;            /* 1KiB..1MiB, default 16KiB */
    unsigned header_count;            /* 8..1000, default 100 */
    uint64_t body;                    /* 1KiB..1GiB, default 1MiB: default route limit and cap */
    unsigned streams;                 /* 1..1000, default 100 (per connection) */
    unsigned connections;             /* 1..1000000, default 4096 (per process) */
    unsigned connections_per_address; /* 1..1000000, default 1024 (an IPv6 /64 is one) */
    uint64_t answer_buffer_per_connection; /* unsent answer bytes: 64KiB..1GiB, default 8MiB */
    uint64_t answer_buffer_total;          /* the same, whole process: default 256MiB */
    uint64_t handshake_timeout_ms;         /* 100ms..5m, default 10s */
    uint64_t idle_timeout_ms;              /* 1s..1h, default 60s */
    uint64_t request_timeout_ms;           /* 1s..1h, default 30s */
    unsigned starts_per_address;           /* 1..100000, default 30: a minute's unauthenticated
                                            * starts (QR, mobile, card challenge, registration)
                                            * per client address and endpoint */
    unsigned starts_global;                /* 1..10000000, default 6000: the same, all addresses */
};

/* store.redis.sentinels[i]: */
struct dz_config_redis_sentinel {
    char *address; /* "host:port" */
};

/* store: live entries per kind (state/store.h "Budgets"); read at start */
enum dz_store_backend { DZ_STORE_MEMORY = 0, DZ_STORE_REDIS = 1 };
struct dz_config_store {
    unsigned sessions;       /* default 500000 */
    unsigned pending_qr;     /* default 50000 */
    unsigned pending_mobile; /* default 20000 */
    unsigned challenges;     /* default 100000 */
    unsigned failures;       /* default 200000 */
    unsigned rates;          /* default 200000 */
    int backend;             /* enum dz_store_backend; default memory */
    /* store.redis: (required with backend redis; docs/internals/redis-store.md) */
    bool redis_present;
    char *redis_address; /* "host:port" of the master; or sentinels + master_name */
    struct dz_config_redis_sentinel *redis_sentinels; /* 0..8 */
    size_t n_redis_sentinels;
    char *redis_master_name;
    char *redis_username;              /* ACL user; NULL: the default user */
    char *redis_password_file;         /* 0600; NULL: no AUTH */
    char *redis_prefix;                /* default "darvaza:" */
    char *redis_value_key_file;        /* 0600, 64 hex chars; NULL: values in clear */
    uint64_t redis_connect_timeout_ms; /* 10ms..10s, default 500ms */
    uint64_t redis_command_timeout_ms; /* 10ms..10s, default 250ms */
    uint64_t redis_retry_max_ms;       /* the breaker's longest backoff: 100ms..1m, default 5s */
    unsigned redis_wait_replicas;      /* 0..8, default 0 */
    unsigned redis_rate_batch;         /* 1 (exact, default)..1000 */
    bool redis_near_cache;             /* default true */
};

/* sessions: (idle_high <= idle <= absolute) */
struct dz_config_sessions {
    uint64_t idle_ms;      /* 1m..24h, default 30m */
    uint64_t idle_high_ms; /* acr high sessions; 1m..24h, default 15m */
    uint64_t absolute_ms;  /* 1m..7d (168h), default 12h */
};

/* accounts: */
enum dz_accounts_backend { DZ_ACCOUNTS_SQLITE = 0, DZ_ACCOUNTS_POSTGRESQL = 1 };
struct dz_config_accounts {
    int backend;                  /* enum dz_accounts_backend; default sqlite */
    char *database;               /* SQLite file (its directory must exist); sqlite only */
    char *seed_key_file;          /* 64 hex chars; read by the accounts module */
    unsigned password_min_length; /* 8..128, default 10 */
    uint64_t argon2_memory;       /* bytes, multiple of 1KiB; 8MiB..4GiB, default 64MiB */
    unsigned argon2_iterations;   /* 1..100, default 3 */
    unsigned argon2_parallelism;  /* 1..16, default 1 */
    char *document_pattern;       /* POSIX ERE, matched whole (^(...)$ is added) */
    struct dz_docpat *document;   /* compiled at load (fin.h): use dz_docpat_match */
    /* accounts.postgresql: (required with backend postgresql) */
    bool pg_present;
    char *pg_conninfo_file;           /* 0600; a libpq conninfo string or URI */
    unsigned pg_pool;                 /* connections: 1..64, default 4 */
    uint64_t pg_connect_timeout_ms;   /* 1s..60s, default 5s */
    uint64_t pg_statement_timeout_ms; /* 100ms..60s, default 2s */
};

/* lockout: (docs/api.md "Lockout") */
struct dz_config_lockout {
    unsigned pair_attempts;       /* per (FIN, address): 1..1000, default 5 */
    unsigned address_attempts;    /* per address: 1..100000, default 20 */
    unsigned fin_attempts;        /* per FIN before delays: 1..1000, default 10 */
    uint64_t fin_delay_ms;        /* first delay: 100ms..1h, default 1s */
    unsigned fin_limit;           /* consecutive failures that close password login: 1..100 */
    uint64_t fin_limit_window_ms; /* 1h..2160h (90 days), default 720h (30 days) */
    uint64_t window_ms;           /* 1s..24h, default 15m */
    uint64_t duration_ms;         /* 1s..24h, default 5m */
};

/* registry: */
struct dz_config_registry {
    char *url;           /* http(s) URL (http only on loopback), no query */
    uint64_t timeout_ms; /* 100ms..60s, default 5s */
};

/* signing.keys[i]: */
struct dz_config_signing_key {
    char *kid;      /* [A-Za-z0-9._-]{1,64}, unique */
    char *key;      /* PEM path, or a PKCS#11 URI "pkcs11:..." (never with pin-value) */
    bool is_pkcs11; /* key is a PKCS#11 URI */
    char *pin_file; /* optional, only with PKCS#11: file holding the token PIN */
    unsigned line;
};

/* signing: */
struct dz_config_signing {
    char *active;                       /* kid used to sign */
    struct dz_config_signing_key *keys; /* 1..8, all published in the JWKS */
    size_t n_keys;
    const struct dz_config_signing_key *active_key; /* the entry named by active */
    uint64_t assertion_ttl_ms;                      /* 1s..60s, default 60s */
};

/* upstream_tls: (certificate and key: both or neither) */
struct dz_config_upstream_tls {
    char *ca;          /* trust anchors for back ends (required) */
    char *certificate; /* the gateway's client certificate, or NULL */
    char *key;         /* its key, or NULL */
};

/* audit: */
struct dz_config_audit {
    char *file;                /* the audit log (its directory must exist) */
    uint64_t head_interval_ms; /* signed chain head period; 1s..1h, default 60s */
    unsigned batch_max;        /* lines per fsync; 1..4096, default 256 */
    struct {
        bool enabled;      /* the rotate: section is written */
        uint64_t size;     /* rotate when the live segment reaches this; 0 = never */
        uint64_t every_ms; /* rotate when the live segment is this old; 0 = never */
    } rotate;
    char *key_archive; /* JWKS of every audit head key ever used; default FILE.keys.jwks */
    char *instance;    /* this gateway's chain among several; default gateway.id or host name */
};

/* cards: (optional; card login is off without a ca) */
enum dz_config_revocation {
    DZ_CONFIG_REV_OCSP = 0, /* OCSP from the certificate's AIA, then CRL; fail closed */
    DZ_CONFIG_REV_CRL = 1,  /* the crl file only */
    DZ_CONFIG_REV_NONE = 2  /* no revocation check: tests of other parts only */
};
struct dz_config_cards {
    char *ca;                             /* PEM bundle: trust anchors and e-signature CAs */
    char *crl;                            /* optional CRL file (fallback, or the only source) */
    char *policy;                         /* certificate policy OID of card certificates */
    enum dz_config_revocation revocation; /* default ocsp */
    uint64_t fetch_timeout_ms;            /* each OCSP / CRL fetch, 100ms..30s, default 3s */
    uint64_t challenge_ttl_ms;            /* nonce lifetime, 10s..5m, default 5m */
    /* The browser's card login through the card listener (auth_cardtls.c): */
    char *tls_origin;          /* the card listener's public origin; NULL = off */
    uint64_t tls_login_ttl_ms; /* a started login, 10s..15m, default 5m */
    uint64_t tls_code_ttl_ms;  /* the code the portal exchanges, 5s..5m, default 30s */
};

/* mobile: (optional; mobile and QR login are off without mssp_url) */
struct dz_config_mobile {
    char *mssp_url;       /* the MSSP's REST API, e.g. https://127.0.0.1:9103 */
    char *relying_party;  /* our name at the MSSP */
    char *rp_secret_file; /* file holding the relying-party secret (bearer) */
    char *service_name;   /* shown on the phone with the code */
    char *ca;             /* PEM bundle: anchors and the mobile-signature CA */
    char *crl;            /* optional CRL file */
    char *policy;         /* certificate policy OID of SIM certificates */
    enum dz_config_revocation revocation;
    uint64_t fetch_timeout_ms;       /* OCSP / CRL fetch, default 3s */
    uint64_t request_ttl_ms;         /* how long a request may wait for the phone, default 2m */
    uint64_t poll_max_ms;            /* the longest long-poll, default 25s */
    unsigned phone_rate;             /* requests per phone per minute, default 3 */
    uint64_t qr_ttl_ms;              /* a QR session's life, default 10m */
    uint64_t qr_freshness_ms;        /* how old a scanned payload may be, default 5s */
    unsigned qr_pending_per_address; /* QR starts per address within qr_ttl, default 20 */
};

/* documents: (optional; signed documents, DESIGN §4.7: level T and
 * require_signed_body routes need tsa_url) */
struct dz_config_documents {
    char *tsa_url;           /* RFC 3161 TSA (http only on loopback), or NULL */
    char *tsa_ca;            /* PEM: anchors for TSA certificates (required with tsa_url) */
    char **tsa_policies;     /* TSTInfo policy OIDs accepted (required with tsa_url) */
    size_t n_tsa_policies;   /* 0..DZ_TSP_MAX_POLICIES */
    uint64_t tsa_timeout_ms; /* each time-stamp request, 100ms..30s, default 5s */
    unsigned verify_rate;    /* /api/documents/verify calls per client address per minute */
};

/* sms: the SMS gateway that carries registration codes and account notices
 * (docs/api.md "Registration").  Without url, registration by FIN and
 * document is refused (a code cannot be sent); a card or mobile signature
 * still registers. */
struct dz_config_sms {
    char *url;              /* https URL (http only on loopback), or NULL */
    uint64_t timeout_ms;    /* each message, 100ms..30s, default 5s */
    uint64_t code_ttl_ms;   /* a registration code lives 1s..1h, default 5m */
    unsigned code_attempts; /* wrong codes before it is spent: 1..10, default 5 */
    unsigned codes_per_fin; /* codes sent per FIN per hour: 1..20, default 3 */
};

/* trust: the key and signature floor under every certificate believed
 * (lib/pki/keyfloor.h): card, mobile, signed documents, OCSP, TSA.  Only
 * upwards: the config check refuses values under the fixed floor. */
struct dz_config_trust {
    unsigned min_rsa_bits; /* 2048..16384, default 2048 */
    unsigned min_ec_bits;  /* 256..521 (P-256, P-384, P-521), default 256 */
};

/* access_log: one JSON line per answered request (ops/accesslog.h) */
enum dz_access_output { DZ_ACCESS_OFF = 0, DZ_ACCESS_STDERR = 1, DZ_ACCESS_FILE = 2 };
struct dz_config_access_log {
    enum dz_access_output output; /* default off */
    char *file;                   /* required when output is file */
    bool log_fin;                 /* log paths that carry a FIN; default false */
};

/* management: (optional) the operator's plain HTTP/1.1 listener for
 * /metrics, /healthz and /readyz (gateway/ops/mgmt.c, docs/metrics.md) */
#define DZ_CONFIG_MAX_MGMT_HOSTS 16
struct dz_config_management {
    bool enabled;               /* the section is written */
    char *listen;               /* "127.0.0.1:9180", "[::1]:9180" (numeric; restart to change) */
    bool public_metrics;        /* also serve /metrics on the public listeners; default false */
    char **hosts;               /* Host names answered besides IP addresses and localhost */
    size_t n_hosts;             /* (restart to change) */
    struct sockaddr_storage sa; /* listen, ready for bind() */
    socklen_t sa_len;
};

/* drain: what SIGTERM does (gateway/daemon/drain.h).  Both are counted
 * from the signal; deadline >= grace. */
struct dz_config_drain {
    uint64_t grace_ms;    /* /readyz 503 but still accepting; 0..5m, default 5s */
    uint64_t deadline_ms; /* open requests cut after this; 0..1h, default 10s */
};

struct dz_config {
    char *path; /* the file this generation came from */
    struct dz_config_gateway gateway;
    struct dz_config_listener *listeners; /* 1..16 */
    size_t n_listeners;
    struct dz_config_limits limits;
    struct dz_config_store store;
    struct dz_config_sessions sessions;
    struct dz_config_accounts accounts;
    struct dz_config_lockout lockout;
    struct dz_config_registry registry;
    struct dz_config_signing signing;
    struct dz_config_upstream_tls upstream_tls;
    struct dz_config_audit audit;
    struct dz_config_cards cards;
    struct dz_config_mobile mobile;
    struct dz_config_documents documents;
    struct dz_config_trust trust;
    struct dz_config_access_log access_log;
    struct dz_config_management management;
    struct dz_config_drain drain;
    struct dz_config_sms sms;
    char *policies; /* directory of *.yaml policy files */
};

/* Flags for dz_config_load_flags / dz_config_load_buf. */
enum dz_config_flags {
    DZ_CONFIG_NO_FS = 1 /* skip the checks that named files and directories exist */
};

/*
 * Load and validate a config file (at most DZ_CONFIG_MAX_BYTES).
 * On success *out owns a new generation (free with dz_config_free).
 * On failure *out stays NULL and err holds "file:line: key: reason".
 * Returns 0, DZ_ERR_INVAL (a value or rule), DZ_ERR_PARSE (YAML syntax or a
 * refused construct), DZ_ERR_IO (cannot read), DZ_ERR_TOOBIG, DZ_ERR_NOMEM.
 * Blocking (file system): call at start-up or from the reload path, never
 * on a loop thread.
 */
int dz_config_load(const char *path, struct dz_config **out, char *err, size_t err_len);
int dz_config_load_flags(const char *path, unsigned flags, struct dz_config **out, char *err,
                         size_t err_len);
/* The same from memory; name is used in messages. */
int dz_config_load_buf(const char *name, const void *data, size_t len, unsigned flags,
                       struct dz_config **out, char *err, size_t err_len);

/* Free a generation; NULL is a no-op. */
void dz_config_free(struct dz_config *c);

/*
 * Print the effective configuration (defaults filled in, paths absolute) as
 * YAML that dz_config_load accepts again; keys flagged SENSITIVE print as
 * <redacted>.  For `darvazad --check --dump`.  0 or DZ_ERR_IO.
 */
int dz_config_dump(const struct dz_config *c, FILE *f);

/*
 * Can `next` replace `old` on SIGHUP?  0 when every changed key is
 * RELOADABLE; DZ_ERR_INVAL with "key: changed, needs a restart" in err for
 * the first one that is not (listeners, workers, database, ...).
 */
int dz_config_reload_check(const struct dz_config *old, const struct dz_config *next, char *err,
                           size_t err_len);

/* Split "host:port" (a name, IPv4, or [IPv6]:port) into host (cap bytes)
 * and port 1..65535; false when it is not that. */
bool dz_config_hostport(const char *s, char *host, size_t cap, int *port);

#endif
