/*
 * card_tlscache.c - darvaza-card's TLS session file (see card.h,
 * --tls-session): each login is a new process, so without it every login
 * costs the gateway a full handshake (its certificate signature, the
 * certificates sent) where a browser would resume.
 *
 * The file holds one TLS session (OpenSSL's PEM "SSL SESSION PARAMETERS":
 * the gateway's ticket, the resumption secret, the gateway's certificates)
 * after a header naming the gateway (scheme://host:port) and the trust it
 * was verified under (SHA-256 of --cacert, or "system").  Nothing of the
 * card: no PIN, no key, no certificate.  A resumed connection proves no
 * identity to the gateway - the login is still the card's signature of a
 * fresh challenge - so a stolen file gives a thief a TLS connection, which
 * anyone can open.  It is still a secret of the user's (a resumed
 * handshake authenticates the gateway by the session's secret, so its
 * holder, on the path, could pose as the gateway until the ticket
 * expires): written 0600 through a temporary file and rename, and only a
 * file of the user's own with no group or other access is read.  Whatever is wrong with the file
 * (absent, foreign, another gateway or trust, expired, damaged) means a
 * full handshake, never a failed login.
 */
#include "card.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

#define MAGIC "darvaza-card-tls-session 1"
#define FILE_MAX 16384 /* a session with the gateway's chain is ~2-4 KB */

struct dz_card_tls_cache {
    char *path;
    char header[sizeof(MAGIC) + DZ_CARD_URL_MAX + 80];
    SSL_SESSION *offer; /* from the file, offered once */
    SSL_SESSION *fresh; /* the newest the gateway sent */
    bool offered;
    bool resumed;
    bool handshake_done;
};

static int ex_index = -1;

/* "system" or the hex SHA-256 of the CA file: a session verified under
 * other anchors is not offered. */
static int trust_id(const char *cacert, char out[65])
{
    unsigned char md[32];
    unsigned char buf[4096];
    EVP_MD_CTX *m = NULL;
    FILE *f = NULL;
    size_t n;
    int rc = DZ_ERR_IO;

    if (!cacert) {
        snprintf(out, 65, "system");
        return 0;
    }
    f = fopen(cacert, "rb");
    m = EVP_MD_CTX_new();
    if (!f || !m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1)
        goto out;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (EVP_DigestUpdate(m, buf, n) != 1)
            goto out;
    if (ferror(f) || EVP_DigestFinal_ex(m, md, NULL) != 1)
        goto out;
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    rc = 0;
out:
    if (f)
        fclose(f);
    EVP_MD_CTX_free(m);
    return rc;
}

static bool usable(const SSL_SESSION *s)
{
    return s && SSL_SESSION_is_resumable(s) &&
           (time_t)(SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s)) > time(NULL);
}

/* The session in the file, when it is the user's own, private, for this
 * gateway and trust, and still valid; NULL otherwise (said on stderr only
 * for a file others can reach). */
static SSL_SESSION *load(const char *path, const char *header)
{
    char *buf = NULL;
    SSL_SESSION *s = NULL;
    BIO *b = NULL;
    struct stat st;
    size_t len = 0, hlen = strlen(header);
    ssize_t r;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return NULL; /* none yet (or a symlink: not followed) */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX)
        goto out;
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        fprintf(stderr,
                "darvaza-card: %s: not used (it must be yours with mode 0600); a full TLS "
                "handshake instead\n",
                path);
        goto out;
    }
    buf = malloc(FILE_MAX + 1);
    if (!buf)
        goto out;
    while (len < FILE_MAX && (r = read(fd, buf + len, FILE_MAX - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        len += (size_t)r;
    }
    if (len <= hlen || memcmp(buf, header, hlen) != 0 || buf[hlen] != '\n')
        goto out; /* another gateway or trust, or not ours */
    b = BIO_new_mem_buf(buf + hlen + 1, (int)(len - hlen - 1));
    if (b)
        s = PEM_read_bio_SSL_SESSION(b, NULL, NULL, NULL);
    if (!usable(s)) {
        SSL_SESSION_free(s);
        s = NULL;
    }
out:
    ERR_clear_error();
    BIO_free(b);
    if (buf) {
        dz_secret_wipe(buf, FILE_MAX + 1);
        free(buf);
    }
    close(fd);
    return s;
}

int dz_card_tls_cache_open(const char *path, const char *target, const char *cacert,
                           struct dz_card_tls_cache **out)
{
    struct dz_card_tls_cache *c = NULL;
    char id[65];

    *out = NULL;
    if (!path || !target || strlen(target) > DZ_CARD_URL_MAX || strchr(target, ' ') ||
        strchr(target, '\n'))
        return DZ_ERR_INVAL;
    if (ex_index < 0)
        ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (ex_index < 0)
        return DZ_ERR_CRYPTO;
    if (trust_id(cacert, id) != 0)
        return DZ_ERR_IO; /* libcurl says why when it reads the same file */
    c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return DZ_ERR_NOMEM;
    }
    snprintf(c->header, sizeof(c->header), "%s %s %s", MAGIC, target, id);
    c->offer = load(path, c->header);
    *out = c;
    return 0;
}

/* Before the ClientHello (libcurl gives no way to hand it a session):
 * offer the saved one.  At the end of the handshake, note whether the
 * gateway took it. */
static void on_info(const SSL *ssl, int where, int ret)
{
    struct dz_card_tls_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);

    (void)ret;
    if (!c)
        return;
    if ((where & SSL_CB_HANDSHAKE_START) && !c->offered && c->offer && SSL_in_before(ssl) &&
        !SSL_get_session(ssl)) {
        c->offered = true;
        /* (SSL_set_session takes its own reference; the const is only the
         * callback's signature) */
        SSL_set_session((SSL *)ssl, c->offer);
    }
    if ((where & SSL_CB_HANDSHAKE_DONE) && !c->handshake_done) {
        c->handshake_done = true;
        c->resumed = SSL_session_reused(ssl) == 1;
    }
}

/* A session (TLS 1.3: a NewSessionTicket after the handshake): keep the
 * newest. */
static int on_new_session(SSL *ssl, SSL_SESSION *s)
{
    struct dz_card_tls_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);

    /* TLS 1.3 only: its resumption makes a fresh ECDHE key, where a TLS 1.2
     * session's master secret would decrypt the traffic of every
     * connection resumed from it. */
    if (!c || !usable(s) || SSL_SESSION_get_protocol_version(s) != TLS1_3_VERSION)
        return 0; /* not kept: OpenSSL frees it */
    SSL_SESSION_free(c->fresh);
    c->fresh = s;
    return 1; /* the reference is ours */
}

int dz_card_tls_cache_attach(struct dz_card_tls_cache *c, SSL_CTX *ctx)
{
    if (SSL_CTX_set_ex_data(ctx, ex_index, c) != 1)
        return DZ_ERR_CRYPTO;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_info_callback(ctx, on_info);
    return 0;
}

bool dz_card_tls_cache_resumed(const struct dz_card_tls_cache *c)
{
    return c && c->resumed;
}

/* Write all of p to fd; 0 or -1 (errno set). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int dz_card_tls_cache_save(struct dz_card_tls_cache *c)
{
    char tmp[PATH_MAX];
    BIO *b = NULL;
    char *data;
    long len;
    int fd = -1;
    bool made = false;
    int rc = DZ_ERR_IO;

    if (!c || !c->fresh)
        return 0; /* nothing new (no TLS, or no ticket sent) */
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", c->path) >= (int)sizeof(tmp))
        return DZ_ERR_TOOBIG;
    /* The session (its resumption secret) is built in a secure memory BIO,
     * wiped as it grows and when freed, and written with write(2): no
     * stdio buffer keeps a copy. */
    b = BIO_new(BIO_s_secmem());
    if (!b || BIO_printf(b, "%s\n", c->header) <= 0 ||
        PEM_write_bio_SSL_SESSION(b, c->fresh) != 1 || (len = BIO_get_mem_data(b, &data)) <= 0) {
        errno = ENOMEM;
        goto out;
    }
    fd = mkstemp(tmp); /* 0600 */
    if (fd < 0)
        goto out;
    made = true;
    if (fchmod(fd, 0600) != 0 || write_all(fd, data, (size_t)len) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, c->path) != 0)
        goto out;
    made = false;
    rc = 0;
out:
    ERR_clear_error();
    BIO_free(b);
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        fprintf(stderr, "darvaza-card: %s: cannot save the TLS session (%s)\n", c->path,
                strerror(errno));
        if (made)
            unlink(tmp);
    }
    return rc;
}

void dz_card_tls_cache_free(struct dz_card_tls_cache *c)
{
    if (!c)
        return;
    SSL_SESSION_free(c->offer);
    SSL_SESSION_free(c->fresh);
    free(c->path);
    free(c);
}
