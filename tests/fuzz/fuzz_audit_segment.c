/*
 * fuzz_audit_segment.c - arbitrary bytes as segment header lines (the first
 * line of an audit segment) and as a segment verified from its own header
 * (`darvaza audit verify --from-header`).  Properties checked besides "no
 * crash": an accepted header is also an audit line with the same seq and
 * prev, its prev_seq is seq - 1, its instance and prev_file are bounded
 * tokens (prev_file never a path) and prev_file is empty exactly at seq 1;
 * the verifier reports the same header for line 1 as the parser does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const char *line, size_t len, struct dz_audit_segment_header *h)
{
    struct dz_audit_line l;

    if (dz_audit_parse_segment_header(line, len, h) != 0)
        return;
    if (dz_audit_parse_line(line, len, &l) != 0 || l.seq != h->seq ||
        memcmp(l.prev, h->prev, 32) != 0 || h->seq == 0 || h->prev_seq != h->seq - 1)
        abort();
    if (h->instance[0] == '\0' || strlen(h->instance) > DZ_AUDIT_INSTANCE_MAX ||
        strchr(h->instance, ' ') || strchr(h->prev_file, '/') ||
        strlen(h->prev_file) > DZ_AUDIT_FILE_NAME_MAX || (h->seq == 1) != (h->prev_file[0] == '\0'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dz_audit_segment_header first;
    struct dz_audit_segment_header h;
    struct dz_audit_report r;
    const uint8_t *p = data;
    const uint8_t *end = data + size;
    bool first_ok = false;
    char path[64];
    int fd;

    memset(&first, 0, sizeof(first));
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        check_header((const char *)p, len, &h);
        if (p == data) {
            first = h;
            first_ok = dz_audit_parse_segment_header((const char *)p, len, &h) == 0;
        }
        p += len + 1;
    }

    fd = memfd_create("segment", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (dz_audit_verify_segment(path, NULL, NULL, &r) == 0) {
            /* A line 1 the parser accepts as a header is the verifier's
             * header too (a complete line is needed for the verifier). */
            if (first_ok && memchr(data, '\n', size) &&
                (!r.has_header || r.header.seq != first.seq ||
                 strcmp(r.header.instance, first.instance) != 0 ||
                 strcmp(r.header.prev_file, first.prev_file) != 0))
                abort();
            if (r.has_header && !first_ok)
                abort();
        }
    }
    close(fd);
    return 0;
}
