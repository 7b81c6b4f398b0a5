/*
 * test_config.c - gateway configuration (gateway/core/config.c): a good config
 * with every kind of value, the demo config, one test per error class
 * checking the exact file:line: key prefix, redaction of SENSITIVE keys in
 * dumps and messages, dump round trip, reload rules.  Includes config.c to
 * drive the keyword-table walker with a table of its own.
 */
#include "../../gateway/core/config.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static char cfg_path[128];

/* Lines of the base config; "@D@" becomes the temporary directory. */
static const char *const base_lines[] = {
    /*  1 */ "gateway:",
    /*  2 */ "  id: darvaza-test",
    /*  3 */ "  origin: https://localhost:8443",
    /*  4 */ "  workers: 3",
    /*  5 */ "  log_level: debug",
    /*  6 */ "listeners:",
    /*  7 */ "  - address: 127.0.0.1",
    /*  8 */ "    port: 8443",
    /*  9 */ "    tls:",
    /* 10 */ "      certificate: @D@/tls.pem",
    /* 11 */ "      key: @D@/tls.key",
    /* 12 */ "      client_auth: optional",
    /* 13 */ "      client_ca: @D@/ca.pem",
    /* 14 */ "  - address: ::1",
    /* 15 */ "    port: 8080",
    /* 16 */ "limits:",
    /* 17 */ "  body: 2MiB",
    /* 18 */ "  idle_timeout: 90s",
    /* 19 */ "sessions:",
    /* 20 */ "  idle: 30m",
    /* 21 */ "  idle_high: 15m",
    /* 22 */ "accounts:",
    /* 23 */ "  database: @D@/accounts.db",
    /* 24 */ "  seed_key_file: @D@/seed.key",
    /* 25 */ "  argon2_memory: 64MiB",
    /* 26 */ "registry:",
    /* 27 */ "  url: https://127.0.0.1:9101",
    /* 28 */ "signing:",
    /* 29 */ "  active: k2",
    /* 30 */ "  keys:",
    /* 31 */ "    - kid: k2",
    /* 32 */ "      key: @D@/k2.pem",
    /* 33 */ "    - kid: k1",
    /* 34 */ "      key: pkcs11:token=darvaza;object=k1",
    /* 35 */ "      pin_file: @D@/pin",
    /* 36 */ "upstream_tls:",
    /* 37 */ "  ca: @D@/root.pem",
    /* 38 */ "  certificate: @D@/client.pem",
    /* 39 */ "  key: @D@/client.key",
    /* 40 */ "audit:",
    /* 41 */ "  file: @D@/audit.log",
    /* 42 */ "policies: @D@/policies",
};
#define BASE_N (sizeof(base_lines) / sizeof(base_lines[0]))

static void put_text(FILE *f, const char *s)
{
    const char *at;

    while ((at = strstr(s, "@D@")) != NULL) {
        fwrite(s, 1, (size_t)(at - s), f);
        fputs(dir, f);
        s = at + 3;
    }
    fputs(s, f);
}

/* Write the base config with lines [from, to] replaced by repl (NULL:
 * removed; from 0: nothing replaced) to cfg_path. */
static void write_variant(size_t from, size_t to, const char *repl)
{
    FILE *f = fopen(cfg_path, "w");

    assert_non_null(f);
    for (size_t i = 1; i <= BASE_N; i++) {
        if (from && i >= from && i <= to) {
            if (i == from && repl) {
                put_text(f, repl);
                fputc('\n', f);
            }
            continue;
        }
        put_text(f, base_lines[i - 1]);
        fputc('\n', f);
    }
    fclose(f);
}

static int load_variant(size_t from, size_t to, const char *repl, struct dz_config **c, char *err,
                        size_t err_len)
{
    write_variant(from, to, repl);
    return dz_config_load(cfg_path, c, err, err_len);
}

static void touch(const char *name, const char *content)
{
    char p[160];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(chmod(p, 0600), 0); /* secrets must be the owner's alone */
}

/* 80 characters: the size of a ticket key file. */
#define TICKET80 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/dz_config_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cfg_path, sizeof(cfg_path), "%s/c.yaml", dir);
    touch("tls.pem", "x");
    touch("tls.key", "x");
    touch("ca.pem", "x");
    touch("seed.key", "00");
    touch("k2.pem", "x");
    touch("k1.pem", "x");
    touch("pin", "1234");
    touch("root.pem", "x");
    touch("client.pem", "x");
    touch("client.key", "x");
    touch("other.pem", "x");
    touch("open.key", "00");
    char p[160];
    snprintf(p, sizeof(p), "%s/open.key", dir);
    chmod(p, 0644); /* a seed key anyone may read: refused */
    /* Session ticket keys: 80 bytes each (what is in them is not read). */
    touch("t1.key", TICKET80);
    touch("t2.key", TICKET80);
    touch("short.key", TICKET80 + 1);
    touch("open80.key", TICKET80);
    snprintf(p, sizeof(p), "%s/open80.key", dir);
    chmod(p, 0644);
    snprintf(p, sizeof(p), "%s/policies", dir);
    return mkdir(p, 0700);
}

static int teardown(void **state)
{
    static const char *const files[] = {
        "tls.pem",  "tls.key",  "ca.pem",     "seed.key",   "k2.pem",     "k1.pem",
        "pin",      "root.pem", "client.pem", "client.key", "other.pem",  "c.yaml",
        "open.key", "t1.key",   "t2.key",     "short.key",  "open80.key", "owned.key"};
    char p[160];

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/policies", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}

static void test_good(void **state)
{
    struct dz_config *c = NULL;
    char err[512] = "";
    char want[200];

    (void)state;
    if (load_variant(0, 0, NULL, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(c->path, cfg_path);
    assert_string_equal(c->gateway.id, "darvaza-test");
    assert_string_equal(c->gateway.origin, "https://localhost:8443");
    assert_int_equal(c->gateway.workers, 3);
    assert_int_equal(c->gateway.blocking_threads, 2);
    assert_int_equal(c->gateway.blocking_queue, 1024);
    assert_int_equal(c->gateway.log_level, DZ_LOG_DEBUG);
    assert_false(c->gateway.trust_forwarded);

    assert_int_equal(c->n_listeners, 2);
    assert_string_equal(c->listeners[0].address, "127.0.0.1");
    assert_int_equal(c->listeners[0].port, 8443);
    assert_int_equal(c->listeners[0].line, 7);
    assert_true(c->listeners[0].tls.enabled);
    assert_true(c->listeners[0].is_loopback);
    assert_int_equal(c->listeners[0].sa.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&c->listeners[0].sa)->sin_port), 8443);
    snprintf(want, sizeof(want), "%s/tls.pem", dir);
    assert_string_equal(c->listeners[0].tls.certificate, want);
    assert_int_equal(c->listeners[0].tls.client_auth, DZ_CLIENT_AUTH_OPTIONAL);
    assert_non_null(c->listeners[0].tls.client_ca);
    assert_string_equal(c->listeners[1].address, "::1");
    assert_false(c->listeners[1].tls.enabled);
    assert_true(c->listeners[1].is_loopback);
    assert_int_equal(c->listeners[1].sa.ss_family, AF_INET6);
    assert_int_equal(c->listeners[1].sa_len, sizeof(struct sockaddr_in6));

    assert_int_equal(c->limits.header_bytes, 16384);
    assert_int_equal(c->limits.header_count, 100);
    assert_int_equal(c->limits.body, 2 * 1048576);
    assert_int_equal(c->limits.streams, 100);
    assert_int_equal(c->limits.connections, 4096);
    assert_int_equal(c->limits.handshake_timeout_ms, 10000);
    assert_int_equal(c->limits.idle_timeout_ms, 90000);
    assert_int_equal(c->limits.request_timeout_ms, 30000);
    assert_int_equal(c->sessions.idle_ms, 30 * 60000);
    assert_int_equal(c->sessions.idle_high_ms, 15 * 60000);
    assert_int_equal(c->sessions.absolute_ms, 12 * 3600000);
    assert_int_equal(c->drain.grace_ms, 5000);
    assert_int_equal(c->drain.deadline_ms, 10000);

    assert_int_equal(c->accounts.password_min_length, 10);
    assert_int_equal(c->accounts.argon2_memory, 64 * 1048576);
    assert_int_equal(c->accounts.argon2_iterations, 3);
    assert_int_equal(c->accounts.argon2_parallelism, 1);
    assert_string_equal(c->accounts.document_pattern, "^([A-Z]{3}[0-9]{8}|[A-Z]{2}[0-9]{7})$");
    char doc[DZ_DOC_MAX + 1];
    assert_int_equal(dz_docpat_match(c->accounts.document, "AZE12345678", 11, doc, sizeof(doc)), 0);
    assert_int_equal(dz_docpat_match(c->accounts.document, "aa1234567", 9, doc, sizeof(doc)), 0);
    assert_int_not_equal(dz_docpat_match(c->accounts.document, "AZE1234567", 10, doc, sizeof(doc)),
                         0);

    assert_int_equal(c->lockout.pair_attempts, 5);
    assert_int_equal(c->lockout.fin_attempts, 10);
    assert_int_equal(c->lockout.fin_delay_ms, 1000);
    assert_int_equal(c->lockout.fin_limit, 100);
    assert_int_equal(c->lockout.fin_limit_window_ms, 720ULL * 3600 * 1000);
    assert_int_equal(c->lockout.address_attempts, 20);
    assert_int_equal(c->lockout.window_ms, 15 * 60000);
    assert_int_equal(c->lockout.duration_ms, 5 * 60000);
    assert_string_equal(c->registry.url, "https://127.0.0.1:9101");
    assert_int_equal(c->registry.timeout_ms, 5000);

    assert_int_equal(c->signing.n_keys, 2);
    assert_ptr_equal(c->signing.active_key, &c->signing.keys[0]);
    assert_false(c->signing.keys[0].is_pkcs11);
    assert_true(c->signing.keys[1].is_pkcs11);
    assert_string_equal(c->signing.keys[1].key, "pkcs11:token=darvaza;object=k1");
    snprintf(want, sizeof(want), "%s/pin", dir);
    assert_string_equal(c->signing.keys[1].pin_file, want);
    assert_int_equal(c->signing.keys[1].line, 33);
    assert_int_equal(c->signing.assertion_ttl_ms, 60000);
    assert_non_null(c->upstream_tls.certificate);
    assert_int_equal(c->audit.head_interval_ms, 60000);
    assert_int_equal(c->audit.batch_max, 256);
    snprintf(want, sizeof(want), "%s/policies", dir);
    assert_string_equal(c->policies, want);
    dz_config_free(c);
    dz_config_free(NULL);
}

/* Relative paths are resolved against the current directory at load. */
static void test_relative_paths(void **state)
{
    struct dz_config *c = NULL;
    char old[PATH_MAX];
    char err[512] = "";
    char want[PATH_MAX + 16];

    (void)state;
    assert_non_null(getcwd(old, sizeof(old)));
    write_variant(42, 42, "policies: policies");
    assert_int_equal(chdir(dir), 0);
    int rc = dz_config_load("c.yaml", &c, err, sizeof(err));
    assert_int_equal(chdir(old), 0);
    if (rc != 0)
        fail_msg("%s", err);
    /* getcwd() gives the resolved directory: compare with realpath(). */
    char real[PATH_MAX];
    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof(want), "%s/policies", real);
    assert_string_equal(c->policies, want);
    dz_config_free(c);
}

static void test_demo_config(void **state)
{
    struct dz_config *c = NULL;
    char err[512] = "";

    (void)state;
    if (dz_config_load_flags("demo/darvaza.yaml", DZ_CONFIG_NO_FS, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(c->gateway.id, "darvaza-demo");
    assert_string_equal(c->gateway.origin, "https://localhost:8443");
    assert_int_equal(c->n_listeners, 3);
    assert_int_equal(c->listeners[0].port, 8443);
    /* The portal's origin asks for no certificate; the card listener does. */
    assert_int_equal(c->listeners[0].tls.client_auth, DZ_CLIENT_AUTH_NONE);
    assert_null(c->listeners[0].tls.client_ca);
    assert_int_equal(c->listeners[1].port, 8080);
    assert_false(c->listeners[1].tls.enabled); /* h2c, loopback */
    assert_int_equal(c->listeners[2].port, 8444);
    assert_int_equal(c->listeners[2].tls.client_auth, DZ_CLIENT_AUTH_REQUIRED);
    assert_non_null(strstr(c->listeners[2].tls.client_ca, "esign-ca.pem"));
    assert_string_equal(c->cards.tls_origin, "https://localhost:8444");
    assert_int_equal(c->cards.tls_login_ttl_ms, 5 * 60 * 1000);
    assert_int_equal(c->cards.tls_code_ttl_ms, 30 * 1000);
    assert_string_equal(c->signing.active_key->kid, "k2");
    assert_int_equal(c->signing.n_keys, 2);
    assert_int_equal(c->limits.body, 1048576);
    assert_non_null(strstr(c->policies, "/policies"));
    dz_config_free(c);
}

/* Every key of every table is written (and so documented) in the demo file. */
static void check_documented(const struct table *t, const char *text)
{
    char want[80];

    for (size_t i = 0; i < t->n_kws; i++) {
        snprintf(want, sizeof(want), " %s:", t->kws[i].name);
        if (!strstr(text, want)) {
            snprintf(want, sizeof(want), "\n%s:", t->kws[i].name);
            if (!strstr(text, want))
                fail_msg("demo/darvaza.yaml does not mention %s", t->kws[i].name);
        }
        if (t->kws[i].type == T_SECTION || t->kws[i].type == T_LIST)
            check_documented(t->kws[i].aux, text);
    }
}

static void test_demo_documents_every_key(void **state)
{
    static char text[DZ_CONFIG_MAX_BYTES + 1];
    FILE *f = fopen("demo/darvaza.yaml", "r");
    size_t n;

    (void)state;
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    check_documented(&root_table, text);
}

struct bad_case {
    size_t from, to;
    const char *repl; /* NULL: the lines are removed */
    unsigned line;    /* expected line */
    const char *key;  /* expected key ("" for none) */
    const char *why;  /* a substring of the reason */
};

static const struct bad_case bad_cases[] = {
    /* unknown keys, at every level */
    {42, 42, "policies: @D@/policies\nbogus: 1", 43, "bogus", "unknown key"},
    {4, 4, "  workers: 3\n  colour: blue", 5, "gateway.colour", "unknown key"},
    {15, 15, "    port: 8080\n    backlog: 5", 16, "listeners[1].backlog", "unknown key"},
    {12, 12, "      client_auth: optional\n      ciphers: ALL", 13, "listeners[0].tls.ciphers",
     "unknown key"},
    /* numbers, sizes, durations, enums, booleans */
    {8, 8, "    port: 99999", 8, "listeners[0].port", "must be between 1 and 65535"},
    {8, 8, "    port: 84x3", 8, "listeners[0].port", "expected a whole number"},
    {4, 4, "  workers: 0", 4, "gateway.workers", "must be between 1 and 64"},
    {17, 17, "  body: 10KB", 17, "limits.body", "expected a size such as"},
    {17, 17, "  body: 2GiB", 17, "limits.body", "must be between 1KiB and 1GiB"},
    {18, 18, "  idle_timeout: 10", 18, "limits.idle_timeout", "expected a duration such as"},
    {18, 18, "  idle_timeout: 2h", 18, "limits.idle_timeout", "must be between 1s and 1h"},
    {5, 5, "  log_level: loud", 5, "gateway.log_level", "expected debug|info|warn|error"},
    {5, 5, "  log_level: debug\n  trust_forwarded: yes", 6, "gateway.trust_forwarded",
     "expected true or false"},
    {35, 35, "      pin_file: @D@/pin\n  assertion_ttl: 61s", 36, "signing.assertion_ttl",
     "must be between 1s and 1m"},
    {25, 25, "  argon2_memory: 67108865", 25, "accounts.argon2_memory", "whole number of KiB"},
    /* shapes */
    {20, 20, "  idle:", 20, "sessions.idle", "empty value"},
    {20, 20, "  idle: [1]", 20, "sessions.idle", "expected a value, got a list"},
    {16, 18, "limits: 5", 16, "limits", "expected a mapping, got a value"},
    {9, 13, "    tls:", 9, "listeners[0].tls", "expected a mapping, got an empty value"},
    {6, 15, "listeners: []", 6, "listeners", "must have 1 to 16 entries"},
    {6, 15, "listeners: {a: 1}", 6, "listeners", "expected a list"},
    {14, 15, "  - 127.0.0.2", 14, "listeners[1]", "expected a mapping"},
    /* required keys and sections */
    {2, 2, NULL, 1, "gateway.id", "required key is missing"},
    {42, 42, NULL, 1, "policies", "required key is missing"},
    {26, 27, NULL, 1, "registry", "required section is missing"},
    {30, 35, NULL, 28, "signing.keys", "required list is missing"},
    /* cross-field rules */
    {14, 14, "  - address: 10.1.2.3", 14, "listeners[1].tls", "required on a non-loopback"},
    {14, 14, "  - address: localhost", 14, "listeners[1].address", "expected a numeric"},
    {14, 15, "  - address: 127.0.0.1\n    port: 8443", 14, "listeners[1]",
     "same address and port as line 7"},
    {13, 13, NULL, 12, "listeners[0].tls.client_ca", "required when client_auth is optional"},
    {12, 12, "      client_auth: none", 13, "listeners[0].tls.client_ca",
     "only used with client_auth: optional"},
    {12, 12, "      client_auth: sometimes", 12, "listeners[0].tls.client_auth",
     "expected none|optional|required"},
    /* the card listener: cards.tls_origin needs one, and another origin */
    {42, 42,
     "policies: @D@/policies\ncards:\n  ca: @D@/ca.pem\n  tls_origin: https://localhost:8444", 43,
     "cards.tls_origin", "needs a listener with tls.client_auth: required"},
    {42, 42,
     "policies: @D@/policies\ncards:\n  ca: @D@/ca.pem\n  tls_origin: https://localhost:8444/", 45,
     "cards.tls_origin", "no path"},
    {42, 42,
     "policies: @D@/policies\ncards:\n  ca: @D@/ca.pem\n  tls_origin: http://localhost:8444", 45,
     "cards.tls_origin", "expected https://"},
    {42, 42, "policies: @D@/policies\ncards:\n  tls_origin: https://localhost:8444", 44,
     "cards.tls_origin", "needs cards.ca"},
    {29, 29, "  active: k3", 29, "signing.active", "no key with kid \"k3\""},
    {33, 33, "    - kid: k2", 33, "signing.keys[1].kid", "duplicate kid \"k2\" (also at line 31)"},
    {31, 31, "    - kid: \"k 2\"", 31, "signing.keys[0].kid", "only letters"},
    {34, 34, "      key: @D@/k1.pem", 35, "signing.keys[1].pin_file", "only for a PKCS#11 key"},
    {34, 34, "      key: pkcs11:token=x;object=k1?pin-value=1234", 34, "signing.keys[1].key",
     "pin-value is not allowed"},
    {21, 21, "  idle_high: 45m", 21, "sessions.idle_high", "must not be longer than idle"},
    {20, 20, "  idle: 13h", 20, "sessions.idle", "must not be longer than absolute"},
    {42, 42, "policies: @D@/policies\ndrain:\n  grace: 8s\n  deadline: 5s", 45, "drain.deadline",
     "must not be shorter than grace"},
    {42, 42, "policies: @D@/policies\ndrain:\n  deadline: 3s", 44, "drain.deadline",
     "must not be shorter than grace"},
    {42, 42, "policies: @D@/policies\ndrain:\n  grace: 6m", 44, "drain.grace",
     "must be between 0ms and 5m"},
    {42, 42, "policies: @D@/policies\ndrain:\n  grace: soon", 44, "drain.grace",
     "expected a duration such as"},
    {3, 3, "  origin: https://localhost:8443/", 3, "gateway.origin", "no path"},
    {3, 3, "  origin: http://portal.example.az", 3, "gateway.origin", "must be https"},
    {3, 3, "  origin: https://portal.example.az:443", 3, "gateway.origin", "default port"},
    {3, 3, "  origin: https://Portal.example.az", 3, "gateway.origin", "lower case"},
    {2, 2, "  id: \"dar vaza\"", 2, "gateway.id", "without blanks"},
    /* the account to drop to must exist here (--check finds it, not the start) */
    {4, 4, "  workers: 3\n  user: no-such-user-dz", 5, "gateway.user",
     "no such user \"no-such-user-dz\""},
    {4, 4, "  workers: 3\n  group: daemon", 5, "gateway.group", "only used with user"},
    {4, 4, "  workers: 3\n  user: nobody\n  group: no-such-group-dz", 6, "gateway.group",
     "no such group \"no-such-group-dz\""},
    {23, 23, "  database: \"@D@/a\\Nb.db\"", 23, "accounts.database", "control characters"},
    {23, 23, "  database: \"@D@/a\\tb.db\"", 23, "accounts.database", "control characters"},
    {27, 27, "  url: http://10.0.0.1:9101", 27, "registry.url", "must be https"},
    {27, 27, "  url: https://u:p@10.0.0.1", 27, "registry.url", "without user info"},
    /* every outbound URL under one rule: the MSSP and the TSA as the registry */
    {27, 27, "  url: https://127.0.0.1:9101\nmobile:\n  mssp_url: ftp://127.0.0.1:9103", 29,
     "mobile.mssp_url", "expected an http(s)://host"},
    {27, 27, "  url: https://127.0.0.1:9101\nmobile:\n  mssp_url: http://mssp.example.az", 29,
     "mobile.mssp_url", "must be https (http only for a loopback host)"},
    {27, 27, "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://10.0.0.7/tsa", 29,
     "documents.tsa_url", "must be https (http only for a loopback host)"},
    {27, 27, "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: ftp://127.0.0.1/tsa", 29,
     "documents.tsa_url", "expected an http(s)://host"},
    /* a TSA comes with its anchors and the policies its tokens must name */
    {27, 27,
     "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://127.0.0.1:9104/\n"
     "  tsa_policies: [1.3.6.1.4.1.55555.3.1]",
     29, "documents.tsa_ca", "required with tsa_url"},
    {27, 27,
     "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://127.0.0.1:9104/\n"
     "  tsa_ca: @D@/ca.pem",
     29, "documents.tsa_policies", "required with tsa_url"},
    {27, 27,
     "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://127.0.0.1:9104/\n"
     "  tsa_ca: @D@/ca.pem\n  tsa_policies:\n    - 1.3.6.1.4.1.55555.3.1\n    - 1.3.6.x",
     33, "documents.tsa_policies[1]", "expected a dotted numeric OID, got \"1.3.6.x\""},
    {27, 27,
     "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://127.0.0.1:9104/\n"
     "  tsa_ca: @D@/ca.pem\n  tsa_policies: [1.3.6.1.4.1.55555.3.1, 1.3.6.1.4.1.55555.3.1]",
     31, "documents.tsa_policies[1]", "listed twice"},
    {27, 27,
     "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://127.0.0.1:9104/\n"
     "  tsa_ca: @D@/ca.pem\n  tsa_policies: [3.1, 1.40.1, 1.03, 1, 1..2, .1.2, 1.2.]",
     31, "documents.tsa_policies[0]", "dotted numeric OID"},
    {27, 27,
     "  url: https://127.0.0.1:9101\ndocuments:\n  tsa_url: http://127.0.0.1:9104/\n"
     "  tsa_ca: @D@/ca.pem\n  tsa_policies: []",
     31, "documents.tsa_policies", "must have 1 to 8 entries"},
    {39, 39, NULL, 36, "upstream_tls.key", "certificate and key go together"},
    {25, 25, "  argon2_memory: 64MiB\n  document_pattern: \"^(AZE[0-9]{8}$\"", 26,
     "accounts.document_pattern", "not a usable POSIX"},
    {25, 25, "  argon2_memory: 64MiB\n  document_pattern: \"^(((a{200}){200}){200})$\"", 26,
     "accounts.document_pattern", "too complex"},
    {25, 25, "  argon2_memory: 64MiB\n  document_pattern: \"^v+++++++++++++++++++++++++v{3,}$\"",
     26, "accounts.document_pattern", "too complex"},
    /* files */
    {24, 24, "  seed_key_file: @D@/nope.key", 24, "accounts.seed_key_file", "cannot read"},
    {24, 24, "  seed_key_file: @D@/open.key", 24, "accounts.seed_key_file",
     "accessible by group or others (mode 0644); chmod 600"},
    {10, 10, "      certificate: @D@", 10, "listeners[0].tls.certificate", "not a regular file"},
    {42, 42, "policies: @D@/seed.key", 42, "policies", "is not a directory"},
    {23, 23, "  database: @D@/nodir/a.db", 23, "accounts.database", "does not exist"},
    /* accounts.backend and accounts.postgresql */
    {25, 25, "  argon2_memory: 64MiB\n  backend: mysql", 26, "accounts.backend", "expected"},
    {25, 25, "  argon2_memory: 64MiB\n  backend: postgresql", 26, "accounts.postgresql",
     "required with backend postgresql"},
    {23, 23, "  backend: sqlite", 23, "accounts.database", "required with backend sqlite"},
    {25, 25,
     "  argon2_memory: 64MiB\n  backend: postgresql\n  postgresql: { conninfo_file: @D@/open.key }",
     27, "accounts.postgresql.conninfo_file", "chmod 600"},
    {25, 25,
     "  argon2_memory: 64MiB\n  backend: postgresql\n  postgresql:\n"
     "    conninfo_file: @D@/seed.key\n    pool: 0",
     29, "accounts.postgresql.pool", "between 1 and 64"},
    {25, 25,
     "  argon2_memory: 64MiB\n  backend: postgresql\n  postgresql:\n"
     "    conninfo_file: @D@/seed.key\n    statement_timeout: 50ms",
     29, "accounts.postgresql.statement_timeout", "between"},
    {23, 23, "  database: @D@/policies", 23, "accounts.database", "not a regular file"},
    /* listeners[].tls.ticket_keys */
    {12, 13,
     "      client_auth: optional\n      client_ca: @D@/ca.pem\n      ticket_keys: [@D@/t1.key]",
     14, "listeners[0].tls.ticket_keys", "client certificates issues no session tickets"},
    {12, 13,
     "      client_auth: none\n      ticket_keys:\n        - @D@/t1.key\n        - @D@/short.key",
     15, "listeners[0].tls.ticket_keys[1]",
     "short.key is 79 bytes; a ticket key file is exactly 80"},
    {12, 13, "      client_auth: none\n      ticket_keys: [@D@/t1.key, @D@/open80.key]", 13,
     "listeners[0].tls.ticket_keys[1]", "open80.key is accessible by group or others (mode 0644)"},
    {12, 13, "      client_auth: none\n      ticket_keys: [@D@/nope.key]", 13,
     "listeners[0].tls.ticket_keys[0]", "cannot read"},
    {12, 13, "      client_auth: none\n      ticket_keys: [@D@/policies]", 13,
     "listeners[0].tls.ticket_keys[0]", "policies is not a regular file"},
    {12, 13, "      client_auth: none\n      ticket_keys: [@D@/t1.key, @D@/t2.key, @D@/t1.key]", 13,
     "listeners[0].tls.ticket_keys[2]", "t1.key is listed twice"},
    {12, 13, "      client_auth: none\n      ticket_keys: @D@/t1.key", 13,
     "listeners[0].tls.ticket_keys", "expected a list of paths, got a value"},
    {12, 13, "      client_auth: none\n      ticket_keys: []", 13, "listeners[0].tls.ticket_keys",
     "must have 1 to 8 entries"},
    {12, 13, "      client_auth: none\n      ticket_keys: [{file: @D@/t1.key}]", 13,
     "listeners[0].tls.ticket_keys[0]", "expected a path, got a mapping"},
    /* management.hosts: names only (an IP address or a port is no name) */
    {42, 42,
     "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180\n"
     "  hosts: [metrics.internal, \"evil.example:80\"]",
     45, "management.hosts[1]", "expected a host name (letters, digits, '-' and '.', no port)"},
    {42, 42,
     "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180\n  hosts:\n"
     "    - metrics.internal\n    - bad_name",
     47, "management.hosts[1]", "got \"bad_name\""},
    {42, 42, "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180\n  hosts:\n    - a..b",
     46, "management.hosts[0]", "expected a host name"},
    {42, 42, "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180\n  hosts: a.example",
     45, "management.hosts", "expected a list of values, got a value"},
    {42, 42, "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180\n  hosts: [[a]]", 45,
     "management.hosts[0]", "expected a value, got a list"},
    /* YAML itself */
    {4, 4, "  workers: 3\n  workers: 4", 5, "", "duplicate key \"workers\" (first at line 4)"},
    {20, 20, "  idle: &i 30m", 20, "", "anchors"},
    {2, 2, "  id: !!str darvaza", 2, "", "tags"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *b = &bad_cases[i];
        struct dz_config *c = (struct dz_config *)&c; /* must be cleared */
        char err[512] = "";
        char want[256];
        int rc = load_variant(b->from, b->to, b->repl, &c, err, sizeof(err));

        if (rc == 0)
            fail_msg("case %zu (%s): accepted", i, b->why);
        assert_null(c);
        if (b->key[0])
            snprintf(want, sizeof(want), "%s:%u: %s: ", cfg_path, b->line, b->key);
        else
            snprintf(want, sizeof(want), "%s:%u: ", cfg_path, b->line);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, b->why))
            fail_msg("case %zu: got \"%s\"\n  wanted \"%s...%s\"", i, err, want, b->why);
    }
}

static void expect_prefix(const char *err, const char *prefix, const char *why)
{
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, why))
        fail_msg("got \"%s\", wanted \"%s...%s\"", err, prefix, why);
}

/* accounts.backend: sqlite unless written; postgresql with its defaults. */
static void test_accounts_backend(void **state)
{
    struct dz_config *c = NULL;
    char err[512] = "";

    (void)state;
    assert_int_equal(load_variant(0, 0, NULL, &c, err, sizeof(err)), 0);
    assert_int_equal(c->accounts.backend, DZ_ACCOUNTS_SQLITE);
    assert_false(c->accounts.pg_present);
    dz_config_free(c);
    c = NULL;
    /* database may stay (it is not used), so switching back is one line. */
    assert_int_equal(load_variant(25, 25,
                                  "  argon2_memory: 64MiB\n  backend: postgresql\n  postgresql:\n"
                                  "    conninfo_file: @D@/seed.key",
                                  &c, err, sizeof(err)),
                     0);
    assert_int_equal(c->accounts.backend, DZ_ACCOUNTS_POSTGRESQL);
    assert_true(c->accounts.pg_present);
    assert_non_null(strstr(c->accounts.pg_conninfo_file, "/seed.key"));
    assert_int_equal(c->accounts.pg_pool, 4);
    assert_int_equal(c->accounts.pg_connect_timeout_ms, 5000);
    assert_int_equal(c->accounts.pg_statement_timeout_ms, 2000);
    dz_config_free(c);
}

/* store.backend: memory unless written; redis with its defaults, through
 * sentinels or one address; the mistakes named with file:line. */
static void test_store_backend(void **state)
{
    struct dz_config *c = NULL;
    char err[512] = "";
    char want[200];

    (void)state;
    assert_int_equal(load_variant(0, 0, NULL, &c, err, sizeof(err)), 0);
    assert_int_equal(c->store.backend, DZ_STORE_MEMORY);
    assert_false(c->store.redis_present);
    dz_config_free(c);
    c = NULL;
    assert_int_equal(load_variant(21, 21,
                                  "  idle_high: 15m\nstore:\n  backend: redis\n  redis:\n"
                                  "    sentinels:\n      - address: 127.0.0.1:9131\n"
                                  "      - address: '[::1]:9132'\n    master_name: dz\n"
                                  "    password_file: @D@/seed.key\n    wait_replicas: 1\n"
                                  "    value_key_file: @D@/seed.key",
                                  &c, err, sizeof(err)),
                     0);
    assert_int_equal(c->store.backend, DZ_STORE_REDIS);
    assert_int_equal(c->store.n_redis_sentinels, 2);
    assert_string_equal(c->store.redis_master_name, "dz");
    assert_string_equal(c->store.redis_prefix, "darvaza:");
    assert_int_equal(c->store.redis_command_timeout_ms, 250);
    assert_int_equal(c->store.redis_wait_replicas, 1);
    assert_true(c->store.redis_near_cache);
    assert_non_null(strstr(c->store.redis_value_key_file, "/seed.key"));
    dz_config_free(c);
    c = NULL;
    /* backend redis without the value key: refused, at the section's line */
    assert_int_not_equal(load_variant(21, 21,
                                      "  idle_high: 15m\nstore:\n  backend: redis\n  redis:\n"
                                      "    address: 127.0.0.1:9130",
                                      &c, err, sizeof(err)),
                         0);
    snprintf(want, sizeof(want), "%s:24: store.redis: ", cfg_path);
    expect_prefix(err, want, "value_key_file is required");
    /* backend redis, no section: the backend's line */
    assert_int_not_equal(
        load_variant(21, 21, "  idle_high: 15m\nstore:\n  backend: redis", &c, err, sizeof(err)),
        0);
    snprintf(want, sizeof(want), "%s:23: store.redis: ", cfg_path);
    expect_prefix(err, want, "required with backend redis");
    /* both an address and sentinels */
    assert_int_not_equal(load_variant(21, 21,
                                      "  idle_high: 15m\nstore:\n  redis:\n    address: a:1\n"
                                      "    sentinels: [{address: b:2}]\n    master_name: m",
                                      &c, err, sizeof(err)),
                         0);
    snprintf(want, sizeof(want), "%s:23: store.redis: ", cfg_path);
    expect_prefix(err, want, "either address or sentinels");
    /* sentinels without master_name */
    assert_int_not_equal(load_variant(21, 21,
                                      "  idle_high: 15m\nstore:\n  redis:\n"
                                      "    sentinels: [{address: b:2}]",
                                      &c, err, sizeof(err)),
                         0);
    snprintf(want, sizeof(want), "%s:24: store.redis: ", cfg_path);
    expect_prefix(err, want, "master_name is required");
    /* not host:port */
    assert_int_not_equal(load_variant(21, 21,
                                      "  idle_high: 15m\nstore:\n  redis:\n    address: redis", &c,
                                      err, sizeof(err)),
                         0);
    snprintf(want, sizeof(want), "%s:24: store.redis.address: ", cfg_path);
    expect_prefix(err, want, "not host:port");
    assert_int_not_equal(load_variant(21, 21,
                                      "  idle_high: 15m\nstore:\n  redis:\n    address: h:99999",
                                      &c, err, sizeof(err)),
                         0);
    expect_prefix(err, want, "not host:port");
    assert_null(c);
}

static void test_syntax_errors(void **state)
{
    struct dz_config *c = NULL;
    char err[512] = "";
    char want[200];

    (void)state;
    /* Wrong indentation: libyaml notices on the line that breaks the block. */
    assert_int_equal(load_variant(8, 8, "   port: 8443", &c, err, sizeof(err)), DZ_ERR_PARSE);
    snprintf(want, sizeof(want), "%s:8: ", cfg_path);
    expect_prefix(err, want, "syntax error");
    assert_int_equal(load_variant(20, 20, "  idle: 30m: 5", &c, err, sizeof(err)), DZ_ERR_PARSE);
    snprintf(want, sizeof(want), "%s:20: ", cfg_path);
    expect_prefix(err, want, "syntax error");

    assert_int_equal(dz_config_load_buf("e.yaml", "", 0, 0, &c, err, sizeof(err)), DZ_ERR_INVAL);
    assert_string_equal(err, "e.yaml: empty configuration");
    assert_int_equal(dz_config_load_buf("l.yaml", "- a\n", 4, 0, &c, err, sizeof(err)),
                     DZ_ERR_INVAL);
    expect_prefix(err, "l.yaml:1: ", "expected a mapping of sections");
    assert_int_equal(dz_config_load("/nonexistent/darvaza.yaml", &c, err, sizeof(err)), DZ_ERR_IO);
    expect_prefix(err, "/nonexistent/darvaza.yaml: ", "cannot open");
    assert_null(c);
}

static char *dump_to_string(const struct dz_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    assert_int_equal(dz_config_dump(c, f), 0);
    fclose(f);
    return text;
}

static void test_dump_round_trip(void **state)
{
    struct dz_config *c = NULL;
    struct dz_config *again = NULL;
    char err[512] = "";
    char *one;
    char *two;

    (void)state;
    assert_int_equal(load_variant(0, 0, NULL, &c, err, sizeof(err)), 0);
    one = dump_to_string(c);
    assert_non_null(strstr(one, "\n  log_level: debug\n"));
    assert_non_null(strstr(one, "\n  workers: 3\n"));
    assert_non_null(strstr(one, "\n  body: 2MiB\n"));
    assert_non_null(strstr(one, "\n  idle_timeout: 90s\n"));
    assert_non_null(strstr(one, "\n  - address: \"127.0.0.1\"\n    port: 8443\n    tls:\n"));
    assert_non_null(strstr(one, "\n      client_auth: optional\n"));
    assert_non_null(strstr(one, "\n    - kid: \"k1\"\n"));
    /* Defaults are shown too. */
    assert_non_null(strstr(one, "\n  header_bytes: 16KiB\n"));
    /* The dump loads again and dumps the same. */
    if (dz_config_load_buf(cfg_path, one, strlen(one), 0, &again, err, sizeof(err)) != 0)
        fail_msg("%s\n%s", err, one);
    two = dump_to_string(again);
    assert_string_equal(one, two);
    free(one);
    free(two);
    dz_config_free(again);
    dz_config_free(c);
}

/* A table of our own with SENSITIVE keys drives the same walker, dumper and
 * error messages as the real tables. */
struct tsec {
    char *token;
    unsigned pin;
    char *plain;
};
static const struct kw tsec_kws[] = {
    {"token", T_STR, F_STR(struct tsec, token), 0, 1, 64, NULL, F_SENSITIVE, NULL},
    {"pin", T_UINT, F_UINT(struct tsec, pin), 0, 0, 99999999, NULL, F_SENSITIVE, NULL},
    {"plain", T_STR, F_STR(struct tsec, plain), 0, 1, 64, NULL, 0, NULL},
};
static const struct table tsec_table = {tsec_kws, N(tsec_kws), sizeof(struct tsec), NULL};

static int load_tsec(const char *text, struct tsec *t, char *err, size_t err_len)
{
    struct dz_yaml_doc *doc = NULL;
    struct ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.file = "s.yaml";
    c.err = err;
    c.err_len = err_len;
    memset(t, 0, sizeof(*t));
    rc = dz_yaml_load_buf("s.yaml", text, strlen(text), NULL, &doc, err, err_len);
    if (rc == 0)
        rc = load_table(&c, &tsec_table, t, dz_yaml_root(doc), 1, "sec");
    dz_yaml_free(doc);
    return rc;
}

static void test_sensitive_redaction(void **state)
{
    struct tsec t;
    char err[512] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    assert_int_equal(
        load_tsec("token: s3cr3t-value\npin: 24680\nplain: hello\n", &t, err, sizeof(err)), 0);
    assert_string_equal(t.token, "s3cr3t-value");
    assert_int_equal(t.pin, 24680);
    f = open_memstream(&text, &len);
    assert_non_null(f);
    dump_table(f, &tsec_table, &t, 0, false);
    fclose(f);
    assert_non_null(strstr(text, "token: <redacted>\n"));
    assert_non_null(strstr(text, "pin: <redacted>\n"));
    assert_non_null(strstr(text, "plain: \"hello\"\n"));
    assert_null(strstr(text, "s3cr3t"));
    assert_null(strstr(text, "24680"));
    free(text);
    free_table(&tsec_table, &t);
    assert_null(t.token);

    /* A bad sensitive value is not echoed in the message. */
    assert_int_not_equal(load_tsec("token: x\npin: hunter2\n", &t, err, sizeof(err)), 0);
    expect_prefix(err, "s.yaml:2: sec.pin: ", "<redacted>");
    assert_null(strstr(err, "hunter2"));
    free_table(&tsec_table, &t);
    /* ...while a plain one is, to help the operator. */
    assert_int_not_equal(load_tsec("plain: x\npin: 1\nbogus: 3\n", &t, err, sizeof(err)), 0);
    expect_prefix(err, "s.yaml:3: sec.bogus: ", "unknown key");
    free_table(&tsec_table, &t);

    /* The real tables: nothing inline is secret (keys are paths, PINs live in
     * pin_file), and a dump never contains the PIN file's content. */
    struct dz_config *c = NULL;
    assert_int_equal(load_variant(0, 0, NULL, &c, err, sizeof(err)), 0);
    text = dump_to_string(c);
    assert_null(strstr(text, "1234"));
    free(text);
    dz_config_free(c);
}

static void test_reload_check(void **state)
{
    struct dz_config *a = NULL;
    struct dz_config *b = NULL;
    char err[512] = "";
    static const struct {
        size_t line;
        const char *repl;
        const char *changed; /* NULL: reloadable */
    } cases[] = {
        {5, "  log_level: info", NULL},
        {17, "  body: 4MiB", NULL},
        {10, "      certificate: @D@/other.pem", NULL},
        {29, "  active: k1", NULL},
        {27, "  url: https://127.0.0.1:9102", NULL},
        {4, "  workers: 4", "gateway.workers"},
        {3, "  origin: https://localhost:9443", "gateway.origin"},
        {8, "    port: 8444", "listeners[0].port"},
        {14, "  - address: 127.0.0.2", "listeners[1].address"},
        {41, "  file: @D@/audit2.log", "audit.file"},
    };

    (void)state;
    assert_int_equal(load_variant(0, 0, NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(load_variant(0, 0, NULL, &b, err, sizeof(err)), 0);
    assert_int_equal(dz_config_reload_check(a, b, err, sizeof(err)), 0);
    dz_config_free(b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b = NULL;
        if (load_variant(cases[i].line, cases[i].line, cases[i].repl, &b, err, sizeof(err)) != 0)
            fail_msg("case %zu: %s", i, err);
        int rc = dz_config_reload_check(a, b, err, sizeof(err));
        if (!cases[i].changed) {
            if (rc != 0)
                fail_msg("case %zu: refused: %s", i, err);
        } else {
            char want[128];
            snprintf(want, sizeof(want), "%s: changed, needs a restart", cases[i].changed);
            assert_int_equal(rc, DZ_ERR_INVAL);
            assert_string_equal(err, want);
        }
        dz_config_free(b);
    }
    /* A listener less: the list changed. */
    b = NULL;
    assert_int_equal(load_variant(14, 15, NULL, &b, err, sizeof(err)), 0);
    assert_int_equal(dz_config_reload_check(a, b, err, sizeof(err)), DZ_ERR_INVAL);
    assert_string_equal(err, "listeners: changed, needs a restart");
    dz_config_free(b);
    dz_config_free(a);
}

/* management.hosts: the names the management listener answers besides
 * IP addresses and localhost, kept as written. */
static void test_management_hosts(void **state)
{
    struct dz_config *c = NULL;
    char err[512] = "";

    (void)state;
    if (load_variant(42, 42,
                     "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180\n"
                     "  hosts: [metrics.internal, GW-01.example.az.]",
                     &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(c->management.n_hosts, 2);
    assert_string_equal(c->management.hosts[0], "metrics.internal");
    assert_string_equal(c->management.hosts[1], "GW-01.example.az.");
    dz_config_free(c);
    assert_int_equal(load_variant(42, 42,
                                  "policies: @D@/policies\nmanagement:\n  listen: 127.0.0.1:9180",
                                  &c, err, sizeof(err)),
                     0);
    assert_int_equal(c->management.n_hosts, 0);
    assert_null(c->management.hosts);
    dz_config_free(c);
}

/* tls.ticket_keys on the portal's kind of listener: a list of paths, stored
 * absolute, dumped as a list that loads again, changed on a reload; the file's
 * owner must be root or the account darvazad runs as. */
static void test_ticket_keys(void **state)
{
    static const char repl[] =
        "      client_auth: none\n      ticket_keys: [@D@/t1.key, @D@/t2.key]";
    struct dz_config *c = NULL;
    struct dz_config *again = NULL;
    char err[512] = "";
    char want[512];
    char *one;
    char *two;

    (void)state;
    if (load_variant(12, 13, repl, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(c->listeners[0].tls.n_ticket_keys, 2);
    snprintf(want, sizeof(want), "%s/t2.key", dir);
    assert_string_equal(c->listeners[0].tls.ticket_keys[1], want);
    assert_int_equal(c->listeners[1].tls.n_ticket_keys, 0);
    one = dump_to_string(c);
    snprintf(want, sizeof(want), "\n      ticket_keys: [\"%s/t1.key\", \"%s/t2.key\"]\n", dir, dir);
    if (!strstr(one, want))
        fail_msg("no \"%s\" in\n%s", want, one);
    if (dz_config_load_buf(cfg_path, one, strlen(one), 0, &again, err, sizeof(err)) != 0)
        fail_msg("%s\n%s", err, one);
    two = dump_to_string(again);
    assert_string_equal(one, two);
    free(one);
    free(two);
    dz_config_free(again);

    /* Rotation is a reload: a new list, a list dropped, none at all. */
    again = NULL;
    assert_int_equal(
        load_variant(12, 13, "      client_auth: none\n      ticket_keys: [@D@/t2.key, @D@/t1.key]",
                     &again, err, sizeof(err)),
        0);
    assert_int_equal(dz_config_reload_check(c, again, err, sizeof(err)), 0);
    dz_config_free(again);
    again = NULL;
    assert_int_equal(load_variant(12, 13, "      client_auth: none", &again, err, sizeof(err)), 0);
    assert_int_equal(dz_config_reload_check(c, again, err, sizeof(err)), 0);
    dz_config_free(again);
    dz_config_free(c);

    /* The owner (root only can give a file away).  With gateway.user the
     * key must be that account's: not another's, not root's (a reload after
     * the privilege drop could not read a root-owned 0600 file). */
    if (geteuid() == 0) {
        static const char with_user[] =
            "  workers: 3\n  user: nobody\n  log_level: debug\nlisteners:\n"
            "  - address: 127.0.0.1\n    port: 8443\n    tls:\n"
            "      certificate: @D@/tls.pem\n      key: @D@/tls.key\n"
            "      ticket_keys: [@D@/owned.key]";
        struct passwd *nobody = getpwnam("nobody");
        char p[160];
        snprintf(p, sizeof(p), "%s/owned.key", dir);
        touch("owned.key", TICKET80);
        assert_int_equal(chown(p, 4242, (gid_t)-1), 0);
        if (nobody) {
            c = (struct dz_config *)&c;
            assert_int_not_equal(load_variant(4, 13, with_user, &c, err, sizeof(err)), 0);
            assert_null(c);
            snprintf(want, sizeof(want),
                     "%s:13: listeners[0].tls.ticket_keys[0]: %s is owned by uid 4242, not by the "
                     "account darvazad runs as",
                     cfg_path, p);
            if (strncmp(err, want, strlen(want)) != 0)
                fail_msg("got \"%s\", wanted \"%s...\"", err, want);
            assert_int_equal(chown(p, 0, (gid_t)-1), 0);
            c = (struct dz_config *)&c;
            assert_int_not_equal(load_variant(4, 13, with_user, &c, err, sizeof(err)), 0);
            assert_null(c);
            assert_non_null(strstr(err, "is owned by uid 0, not by the account darvazad runs as"));
            /* Owned by gateway.user: that account reads it after the drop. */
            assert_int_equal(chown(p, nobody->pw_uid, (gid_t)-1), 0);
            if (load_variant(4, 13, with_user, &c, err, sizeof(err)) != 0)
                fail_msg("%s", err);
            dz_config_free(c);
        }
        /* Root without gateway.user (an operator's --check of the packaged
         * config, the CLI): the daemon's account is not known here, its own
         * load checks again; any owner passes. */
        assert_int_equal(chown(p, 4242, (gid_t)-1), 0);
        if (load_variant(12, 13, "      client_auth: none\n      ticket_keys: [@D@/owned.key]", &c,
                         err, sizeof(err)) != 0)
            fail_msg("%s", err);
        dz_config_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_demo_config),
        cmocka_unit_test(test_demo_documents_every_key),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_accounts_backend),
        cmocka_unit_test(test_store_backend),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_sensitive_redaction),
        cmocka_unit_test(test_reload_check),
        cmocka_unit_test(test_management_hosts),
        cmocka_unit_test(test_ticket_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
