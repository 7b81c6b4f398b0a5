/*
 * fuzz_web.c - feeds arbitrary bytes to the portal's request-side parsers
 * (gateway/core/web.c): the /static/<name> path and the If-None-Match list, and
 * checks their promises: a name taken from a path is one the module would
 * serve (dz_web_name_ok, a content type, no '/', at most 64 bytes, and the
 * path really ends in it); an ETag list matches a tag that appears in it
 * verbatim, and "*" matches anything.  The input is split at the first NUL:
 * before it the path (also tried behind "/static/"), after it the header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *path)
{
    char name[DZ_WEB_NAME_MAX + 1];
    size_t n;

    if (dz_web_static_name(path, name, sizeof(name)) != 0) {
        if (name[0] != '\0')
            abort();
        return;
    }
    n = strlen(name);
    if (n == 0 || n > DZ_WEB_NAME_MAX || strchr(name, '/') || strchr(name, '%') ||
        !dz_web_name_ok(name, n) || !dz_web_content_type(name, n))
        abort();
    if (strncmp(path, "/static/", 8) != 0 || strncmp(path + 8, name, n) != 0 ||
        (path[8 + n] != '\0' && path[8 + n] != '?'))
        abort();
    /* Too small an output buffer is a refusal, never an overflow. */
    if (dz_web_static_name(path, name, n) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *pre = malloc(size + 9);
    const char *hdr;
    size_t plen;

    if (!buf || !pre)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    plen = strlen(buf);
    hdr = plen < size ? buf + plen + 1 : "";

    check_path(buf);
    memcpy(pre, "/static/", 8);
    memcpy(pre + 8, buf, plen + 1);
    check_path(pre);
    (void)dz_web_name_ok(buf, plen);
    (void)dz_web_content_type(buf, plen);

    /* ETags: a tag that occurs as a whole list element matches. */
    {
        static const char tag[] = "\"0123456789abcdef\"";
        bool m = dz_web_etag_match(hdr, tag);
        if (strcmp(hdr, tag) == 0 && !m)
            abort();
        if (strcmp(hdr, "*") == 0 && !m)
            abort();
        if (m && !strstr(hdr, tag) && !strchr(hdr, '*'))
            abort();
        (void)dz_web_etag_match(hdr, "\"\"");
    }
    free(pre);
    free(buf);
    return 0;
}
