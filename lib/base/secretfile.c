/* secretfile.c - see secretfile.h. */
#include "base/secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

int dz_secret_file_read_raw(const char *path, void *buf, size_t cap, size_t *len, char *why,
                            size_t why_cap)
{
    unsigned char *p = buf;
    struct stat st;
    int fd;
    int rc = 0;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO: no hang */
    if (fd < 0) {
        dz_why(why, why_cap, "%s: %s", path, strerror(errno));
        return DZ_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        dz_why(why, why_cap, "%s: not a regular file", path);
        rc = DZ_ERR_IO;
    } else if (!dz_secret_file_mode_ok(st.st_mode)) {
        dz_why(why, why_cap, "%s: group or others have access (mode %04o); chmod 600 it", path,
               (unsigned)(st.st_mode & 07777));
        rc = DZ_ERR_DENIED;
    }
    while (rc == 0 && *len < cap) {
        ssize_t n = read(fd, p + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dz_why(why, why_cap, "%s: %s", path, strerror(errno));
            rc = DZ_ERR_IO;
        } else if (n == 0) {
            break;
        } else {
            *len += (size_t)n;
        }
    }
    close(fd);
    return rc;
}

int dz_secret_file_read(const char *path, size_t max_len, char **out, char *why, size_t why_cap)
{
    /* max_len, a "\r\n" and one byte more to tell "too long" from "fits". */
    size_t cap = max_len + 3;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc;

    if (why && why_cap)
        why[0] = '\0';
    if (!out)
        return DZ_ERR_INVAL;
    *out = NULL;
    if (!path || max_len == 0 || max_len > DZ_SECRET_FILE_MAX) {
        dz_why(why, why_cap, "no secret file, or a bad size limit");
        return DZ_ERR_INVAL;
    }
    buf = malloc(cap);
    if (!buf)
        return DZ_ERR_NOMEM;
    rc = dz_secret_file_read_raw(path, buf, cap, &len, why, why_cap);
    if (rc != 0)
        goto out;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len > max_len) {
        dz_why(why, why_cap, "%s: longer than %zu bytes", path, max_len);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    if (len == 0 || memchr(buf, '\0', len) || memchr(buf, '\n', len) || memchr(buf, '\r', len)) {
        dz_why(why, why_cap, "%s: expected one non-empty line without NUL bytes", path);
        rc = DZ_ERR_INVAL;
        goto out;
    }
    *out = malloc(len + 1);
    if (!*out) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    memcpy(*out, buf, len);
    (*out)[len] = '\0';
    rc = 0;
out:
    dz_secret_wipe(buf, cap);
    free(buf);
    return rc;
}

bool dz_secret_file_mode_ok(mode_t mode)
{
    return (mode & (S_IRWXG | S_IRWXO)) == 0;
}
