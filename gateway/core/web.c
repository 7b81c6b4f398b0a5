/*
 * web.c - the portal's static files: read once per configuration generation
 * from gateway.web_root into memory, served at GET / and GET /static/<name>
 * with a strict Content-Security-Policy and the other browser hardening
 * headers.  It owns the loaded bytes and the answer headers; it must never
 * touch the disk on a request, serve a name that was not loaded, or answer
 * anything but GET/HEAD.
 */
#include "core/web.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

struct dz_web {
    struct dz_web_file files[DZ_WEB_MAX_FILES];
    size_t n;
};

/* ---- pure helpers ------------------------------------------------------- */

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    /* A closed list: a file whose type we cannot name is refused at load,
     * so nothing is ever served as a type the browser has to sniff. */
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
};

const char *dz_web_content_type(const char *name, size_t len)
{
    const char *dot = NULL;

    for (size_t i = 0; i < len; i++) {
        /* The last dot decides: "app.min.js" is JavaScript. */
        if (name[i] == '.')
            dot = name + i;
    }
    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t elen = strlen(types[i].ext);
        if ((size_t)(name + len - dot - 1) == elen && memcmp(dot + 1, types[i].ext, elen) == 0)
            return types[i].type;
    }
    return NULL;
}

bool dz_web_name_ok(const char *name, size_t len)
{
    /* Lower case only, so one file cannot be reached under two spellings
     * and the on-disk name is exactly the URL name on any filesystem. */
    if (len == 0 || len > DZ_WEB_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            return false;
        if (ch == '.' && i + 1 < len && name[i + 1] == '.')
            return false;
    }
    return dz_web_content_type(name, len) != NULL;
}

int dz_web_static_name(const char *path, char *out, size_t out_len)
{
    static const char prefix[] = "/static/";
    size_t n;

    if (out_len > 0)
        out[0] = '\0';
    if (!path || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return DZ_ERR_NOTFOUND;
    path += sizeof(prefix) - 1;
    /* The query is ignored, not refused: "app.js?v=3" cache busting works
     * and still names a loaded file. */
    n = strcspn(path, "?");
    /* '/' and '%' cannot pass dz_web_name_ok, so neither a subdirectory
     * nor an encoded name is ever looked up. */
    if (!dz_web_name_ok(path, n) || n + 1 > out_len)
        return DZ_ERR_NOTFOUND;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

bool dz_web_etag_match(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;

    if (!p)
        return false;
    for (;;) {
        const char *start;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        /* RFC 9110 §13.1.2: "*" matches any current representation, and
         * If-None-Match uses the weak comparison, so a W/ prefix is dropped. */
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"') {
            /* Not an entity tag: skip to the next list element. */
            p += strcspn(p, ",");
            continue;
        }
        start = p++;
        p += strcspn(p, "\"");
        if (*p != '"')
            return false; /* unterminated */
        p++;
        if ((size_t)(p - start) == elen && memcmp(start, etag, elen) == 0)
            return true;
    }
}

/* ---- loading -------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct dz_web_file *)a)->name, ((const struct dz_web_file *)b)->name);
}

/* A name as it may be printed in a message: printable ASCII, cut short. */
static void printable(const char *in, char *out, size_t out_len)
{
    size_t i = 0;

    for (; in[i] && i + 1 < out_len && i < 64; i++)
        out[i] = (in[i] > 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
}

static int read_file(int dirfd, const char *name, struct dz_web_file *f, char *why, size_t why_len)
{
    struct stat st;
    unsigned char *data = NULL;
    size_t len = 0;
    int fd;
    int rc = DZ_ERR_IO;

    /* O_NONBLOCK: a FIFO left in the directory must not hang the load. */
    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, why_len, "cannot open (%s)", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "not a regular file");
        rc = DZ_ERR_INVAL;
        goto out;
    }
    if (st.st_size > DZ_WEB_MAX_FILE_BYTES) {
        snprintf(why, why_len, "larger than %d bytes", DZ_WEB_MAX_FILE_BYTES);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    /* One byte more than allowed, to notice a file that grew meanwhile. */
    data = malloc(DZ_WEB_MAX_FILE_BYTES + 1);
    if (!data) {
        snprintf(why, why_len, "out of memory");
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, data + len, DZ_WEB_MAX_FILE_BYTES + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, why_len, "cannot read (%s)", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > DZ_WEB_MAX_FILE_BYTES) {
            snprintf(why, why_len, "larger than %d bytes", DZ_WEB_MAX_FILE_BYTES);
            rc = DZ_ERR_TOOBIG;
            goto out;
        }
    }
    {
        /* Give back the unused part of the 1 MiB read buffer: the bytes stay
         * in memory for the whole generation. */
        unsigned char *shrunk = realloc(data, len ? len : 1);
        if (shrunk)
            data = shrunk;
    }
    {
        unsigned char h[32];
        char hex[17];
        dz_sha256(data, len, h);
        /* 64 bits of the content hash is plenty to tell versions apart, and it
         * leaks nothing about the server (no inode or mtime as some servers use). */
        dz_hex(h, 8, hex);
        snprintf(f->etag, sizeof(f->etag), "\"%s\"", hex);
    }
    {
        size_t n = strnlen(name, DZ_WEB_NAME_MAX); /* checked by dz_web_name_ok */
        memcpy(f->name, name, n);
        f->name[n] = '\0';
        f->content_type = dz_web_content_type(f->name, n);
    }
    f->data = data;
    f->len = len;
    data = NULL;
    rc = 0;
out:
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

int dz_web_load(const char *dir, struct dz_web **out, char *err, size_t err_len)
{
    struct dz_web *w = NULL;
    DIR *d = NULL;
    struct dirent *e;
    char why[160];
    char shown[80];
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, err_len, "web_root %s: out of memory", dir);
        goto out;
    }
    d = opendir(dir);
    if (!d) {
        snprintf(err, err_len, "web_root %s: cannot open the directory (%s)", dir, strerror(errno));
        rc = DZ_ERR_IO;
        goto out;
    }
    for (;;) {
        size_t nlen;
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno != 0) {
                snprintf(err, err_len, "web_root %s: cannot list the directory (%s)", dir,
                         strerror(errno));
                rc = DZ_ERR_IO;
                goto out;
            }
            break;
        }
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden files (editor swap files, .gitkeep) */
        nlen = strlen(e->d_name);
        printable(e->d_name, shown, sizeof(shown));
        if (!dz_web_name_ok(e->d_name, nlen)) {
            snprintf(err, err_len,
                     "web_root %s: %s: file names must be [a-z0-9._-]{1,%d} ending in .html, "
                     ".js, .css, .svg, .png, .ico, .json or .txt",
                     dir, shown, DZ_WEB_NAME_MAX);
            rc = DZ_ERR_INVAL;
            goto out;
        }
        if (w->n == DZ_WEB_MAX_FILES) {
            snprintf(err, err_len, "web_root %s: more than %d files", dir, DZ_WEB_MAX_FILES);
            rc = DZ_ERR_TOOBIG;
            goto out;
        }
        rc = read_file(dirfd(d), e->d_name, &w->files[w->n], why, sizeof(why));
        if (rc != 0) {
            snprintf(err, err_len, "web_root %s: %s: %s", dir, shown, why);
            goto out;
        }
        w->n++;
    }
    /* Sorted so the table does not depend on readdir's order; lookups stay
     * linear, over at most DZ_WEB_MAX_FILES names. */
    qsort(w->files, w->n, sizeof(w->files[0]), cmp_file);
    if (!dz_web_find(w, "index.html", 10)) {
        snprintf(err, err_len, "web_root %s: no index.html", dir);
        rc = DZ_ERR_INVAL;
        goto out;
    }
    *out = w;
    w = NULL;
    rc = 0;
out:
    if (d)
        closedir(d);
    dz_web_free(w);
    return rc;
}

void dz_web_free(struct dz_web *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->files[i].data);
    free(w);
}

size_t dz_web_count(const struct dz_web *w)
{
    return w ? w->n : 0;
}

const struct dz_web_file *dz_web_find(const struct dz_web *w, const char *name, size_t len)
{
    if (!w || len > DZ_WEB_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < w->n; i++) {
        if (strlen(w->files[i].name) == len && memcmp(w->files[i].name, name, len) == 0)
            return &w->files[i];
    }
    return NULL;
}
