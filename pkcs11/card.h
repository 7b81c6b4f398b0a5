/*
 * card.h - darvaza-card, the card holder's command-line client (DESIGN
 * §4.4): lists the e-signature cards a PKCS#11 module shows and logs in to
 * the gateway with one (challenge signed by the card's authentication key).
 *
 * The program is split by concern:
 *   card_util.c   pure functions: origin from a URL, the challenge message,
 *                 parsing the gateway's answers, the request body.  (ECDSA
 *                 DER -> r||s is lib/keys/ecdsa_sig.c's, shared.)  No I/O, no globals: unit-tested
 * and fuzzed. card_pin.c    the card PIN: from a file, or typed at /dev/tty without echo.  The PIN
 * lives in one malloc'd buffer, wiped on every path (dz_card_pin_free). card_token.c  libp11: the
 * module, its tokens, a card's certificate and private key, C_Login, C_Sign.  The private key never
 *                 leaves the token: libp11's EVP_PKEY only forwards C_Sign.
 *   card_login.c  HTTP/2 to the gateway (libcurl easy): challenge, answer,
 *                 session.
 *   main.c        arguments and the commands.
 * Output is plain text for a person (or a script); errors go to stderr as
 * one line "darvaza-card: ...".  Nothing here ever prints or logs the PIN.
 *
 * Single-threaded program: nothing here is meant for concurrent use.
 */
#ifndef DZ_CARD_H
#define DZ_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define DZ_CARD_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define DZ_CARD_MODULE_ENV "DARVAZA_PKCS11_MODULE"
#define DZ_CARD_DEFAULT_KEY "auth" /* label of the authentication key/certificate */
#define DZ_CARD_PIN_MAX 64         /* bytes of a PIN (PKCS#11 cards use 4..12) */
#define DZ_CARD_ORIGIN_MAX 512     /* "https://host:port" */
#define DZ_CARD_URL_MAX 2048
#define DZ_CARD_NONCE_MAX 64         /* the gateway's nonce: base64 of 32 bytes = 44 */
#define DZ_CARD_SIG_MAX 512          /* raw signature bytes: r||s (<= 132) or RSA (<= 512) */
#define DZ_CARD_BODY_MAX (64 * 1024) /* a gateway answer */
#define DZ_CARD_ALG_MAX 8

/* ------------------------------------------------------------ card_util.c */

/*
 * The Web origin of a gateway URL: "https://" or "http://", the host (lower
 * case; an IPv6 literal keeps its brackets) and ":port" unless it is the
 * scheme's default; any path, query or fragment is dropped.  Refused
 * (DZ_ERR_INVAL): another scheme, userinfo ("user@"), an empty host or one
 * with characters outside [A-Za-z0-9.-] (brackets: [0-9A-Fa-f:.]), a port
 * that is not 1..65535, a URL longer than DZ_CARD_URL_MAX.  DZ_ERR_TOOBIG
 * when out (cap bytes with the NUL) is too small.  out is "" on error.
 */
int dz_card_origin_from_url(const char *url, char *out, size_t cap);

/* The 64 bytes the card signs: SHA-256(origin) || SHA-256(nonce), over the
 * strings exactly as given (the nonce as the gateway sent it). */
void dz_card_challenge_message(const char *origin, const char *nonce, unsigned char msg[64]);

/*
 * The answer to POST /auth/card/challenge: {"nonce": base64 of 32 bytes,
 * "expires_in": seconds}.  nonce gets the string (at most
 * DZ_CARD_NONCE_MAX characters, strict base64 decoding to 32 bytes).
 * 0, DZ_ERR_PARSE (not that JSON), DZ_ERR_TOOBIG (len > DZ_CARD_BODY_MAX).
 */
int dz_card_parse_challenge(const char *body, size_t len, char nonce[DZ_CARD_NONCE_MAX + 1],
                            long *expires_in);

/* An RFC 9457 problem the gateway sent: code, title and detail, each
 * truncated and stripped of control characters ("" when absent). */
struct dz_card_problem {
    char code[64];
    char title[128];
    char detail[256];
};

/* 0 when body is a JSON object with a string "code" (title, detail
 * optional); DZ_ERR_PARSE otherwise (out then holds ""). */
int dz_card_parse_problem(const char *body, size_t len, struct dz_card_problem *out);

/*
 * The session answer of a login: {"token","fin","amr","acr",...}.  token
 * gets the token (1..256 printable ASCII characters, no space); 0 or
 * DZ_ERR_PARSE.
 */
int dz_card_parse_session(const char *body, size_t len, char token[257]);

/* The body of POST /auth/card as a malloc'd NUL-terminated JSON string
 * (caller frees): {"certificate": base64(cert_der), "algorithm": alg,
 * "nonce": nonce, "signature": base64(sig)}.  0, DZ_ERR_INVAL, DZ_ERR_NOMEM. */
int dz_card_request_json(const unsigned char *cert_der, size_t cert_len, const char *alg,
                         const char *nonce, const unsigned char *sig, size_t sig_len, char **out);

/* ------------------------------------------------------------- card_pin.c */

/* Read a PIN from path with dz_secret_file_read (base/secretfile.h): one
 * line (a trailing "\n" or "\r\n" is dropped), 1..DZ_CARD_PIN_MAX bytes,
 * no NUL; a file group or others can access is refused.  *out is
 * malloc'd; release it with dz_card_pin_free.  0, DZ_ERR_IO, DZ_ERR_DENIED
 * (mode too open), DZ_ERR_INVAL (empty, or more than one line),
 * DZ_ERR_TOOBIG, DZ_ERR_NOMEM.  The reason is written to stderr (never
 * the PIN). */
int dz_card_pin_from_file(const char *path, char **out);

/* Ask for a PIN on /dev/tty with echo off (restored on every path,
 * including SIGINT/SIGTERM while typing).  prompt is written to the
 * terminal.  Same returns as dz_card_pin_from_file; DZ_ERR_IO when there is
 * no terminal. */
int dz_card_pin_prompt(const char *prompt, char **out);

/* Wipe and free a PIN from the two functions above.  NULL is a no-op. */
void dz_card_pin_free(char *pin);

/* ----------------------------------------------------------- card_token.c */

struct dz_card_module; /* a loaded PKCS#11 module and its slots */
struct dz_card_key;    /* one card's certificate + (after login) private key */

/* Load module (a path; NULL: $DARVAZA_PKCS11_MODULE, else
 * DZ_CARD_DEFAULT_MODULE) and read its slots.  0, DZ_ERR_PKCS11 (cannot
 * load or list; the reason on stderr), DZ_ERR_NOMEM. */
int dz_card_module_open(const char *module, struct dz_card_module **out);

/* Unload.  NULL is a no-op.  Every key from it must be freed first. */
void dz_card_module_close(struct dz_card_module *m);

/* Print every token: label, manufacturer/model/serial, PIN state, and each
 * certificate (label, id, subject, FIN, role, validity, usage).  Returns the
 * number of tokens (>= 0) or DZ_ERR_PKCS11. */
int dz_card_module_list(struct dz_card_module *m, FILE *to);

/*
 * Choose a card and a certificate on it: the token whose label is
 * token_label (NULL: the only token present, refused when there are
 * several), the certificate labelled key_label (NULL: "auth"; when no
 * certificate has that label and key_label is the default, the one with
 * id 01).  The certificate is read without logging in.  0,
 * DZ_ERR_NOTFOUND / DZ_ERR_INVAL (explained on stderr), DZ_ERR_PKCS11,
 * DZ_ERR_NOMEM.
 */
int dz_card_key_open(struct dz_card_module *m, const char *token_label, const char *key_label,
                     struct dz_card_key **out);

void dz_card_key_free(struct dz_card_key *k);

/* The certificate (borrowed, valid until dz_card_key_free). */
X509 *dz_card_key_cert(const struct dz_card_key *k);
const char *dz_card_key_token_label(const struct dz_card_key *k);

/* true when the token wants a PIN at all; *pinpad true when it is typed on
 * the reader (protected authentication path: pass NULL as pin). */
bool dz_card_key_needs_pin(const struct dz_card_key *k, bool *pinpad);

/* Before asking: a warning about the PIN state ("" when none), e.g. the
 * token says this is the last try. */
const char *dz_card_key_pin_warning(const struct dz_card_key *k);

/*
 * Log in with pin (NULL on a PIN pad) - once: a wrong PIN is never retried
 * here (each try walks the card towards being blocked) - and find the
 * private key with the certificate's id.  0; DZ_ERR_DENIED for a wrong or
 * blocked PIN with why filled ("wrong PIN (1 try left)", "the PIN is
 * blocked", ...); DZ_ERR_NOTFOUND (no private key for the certificate);
 * DZ_ERR_PKCS11 (why filled).
 */
int dz_card_key_login(struct dz_card_key *k, const char *pin, char *why, size_t why_len);

/*
 * Sign msg[0..len) on the card with the algorithm that fits the
 * certificate's key - ES256 (P-256), ES384 (P-384), RS256 (RSA) - written to
 * alg.  sig (at least DZ_CARD_SIG_MAX bytes) gets r||s for EC keys, the
 * PKCS#1 v1.5 signature for RSA.  The signature is checked against the
 * certificate's public key before it is returned (a card whose key does
 * not match its certificate is caught here, not at the gateway).  0,
 * DZ_ERR_STATE (not logged in), DZ_ERR_INVAL (unsupported key),
 * DZ_ERR_PKCS11, DZ_ERR_CRYPTO.
 */
int dz_card_key_sign(struct dz_card_key *k, const unsigned char *msg, size_t len,
                     char alg[DZ_CARD_ALG_MAX], unsigned char *sig, size_t *sig_len);

/* ----------------------------------------------------------- card_login.c */

struct dz_card_login_opts {
    const char *gateway;     /* base URL, e.g. https://localhost:8443 */
    const char *origin;      /* NULL: derived from gateway */
    const char *cacert;      /* PEM file trusted for the gateway; NULL: system */
    const char *cookie_jar;  /* NULL: none; else written (0600) with the session cookie */
    const char *tls_session; /* NULL: none; else the TLS session file (card_tlscache.c) */
    bool verbose;            /* say on stderr whether the TLS session was resumed */
    long timeout_ms;         /* each request; 0: 30 s */
};

/* How a login ended, for the exit code and the message on stderr. */
enum dz_card_outcome {
    DZ_CARD_OK = 0,      /* session printed */
    DZ_CARD_REFUSED = 1, /* the gateway or the card said no */
    DZ_CARD_FAILED = 2   /* could not ask (network, token, local error) */
};

/*
 * The challenge flow: POST {gateway}/auth/card/challenge, sign
 * dz_card_challenge_message(origin, nonce) with k (already logged in), POST
 * {gateway}/auth/card.  On success prints the session JSON as received on
 * one line and then the token alone on the last line to `to`.  Refusals
 * print "darvaza-card: login refused: STATUS CODE: TITLE (DETAIL)" on stderr.
 */
enum dz_card_outcome dz_card_login(const struct dz_card_login_opts *o, struct dz_card_key *k,
                                   FILE *to);

/* Only the signing half, for scripts and tests: the POST /auth/card body
 * for this origin and nonce, printed on one line.  0 or an error. */
int dz_card_sign_challenge(struct dz_card_key *k, const char *origin, const char *nonce, FILE *to);

/* -------------------------------------------------------- card_tlscache.c */

/*
 * The TLS session file of --tls-session: the gateway's session ticket kept
 * between darvaza-card processes, so the next login resumes instead of a
 * full handshake.  It holds no PIN, key or card certificate, and a resumed
 * connection logs nobody in (the card still signs a fresh challenge).
 *
 * open: for connections to target (scheme://host[:port], no spaces)
 * verified with cacert (NULL: the system's); reads path if it is the
 * user's own, mode 0600, for the same target and trust, still valid (else
 * ignored: a full handshake; a file others can reach is also said on
 * stderr).  0, DZ_ERR_INVAL, DZ_ERR_IO (cacert unreadable), DZ_ERR_NOMEM.
 * attach: install the callbacks on the client SSL_CTX of the connection
 * (before its SSL exists: libcurl's CURLOPT_SSL_CTX_FUNCTION); the cache
 * must outlive the context.  0 or DZ_ERR_CRYPTO.
 * resumed: whether the handshake resumed the saved session.
 * save: after the connection is closed, write the newest session the
 * gateway sent (0600, temporary file then rename); 0 when there was none.
 * DZ_ERR_IO (said on stderr).  One thread.
 */
struct dz_card_tls_cache;
int dz_card_tls_cache_open(const char *path, const char *target, const char *cacert,
                           struct dz_card_tls_cache **out);
int dz_card_tls_cache_attach(struct dz_card_tls_cache *c, SSL_CTX *ctx);
bool dz_card_tls_cache_resumed(const struct dz_card_tls_cache *c);
int dz_card_tls_cache_save(struct dz_card_tls_cache *c);
void dz_card_tls_cache_free(struct dz_card_tls_cache *c);

/* ------------------------------------------------------------ card_sign.c */

/* `darvaza-card sign FILE [-o OUT]` (detached CAdES-B with the card's
 * non-repudiation key) and `darvaza-card verify FILE SIG --ca F` (prints
 * the validation report).  argv[1] is the command.  Exit codes as main's. */
int dz_card_cmd_sign(int argc, char **argv);
int dz_card_cmd_verify(int argc, char **argv);

#endif
