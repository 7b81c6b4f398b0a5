/*
 * h2pages.c - a worker's few spare mapped blocks for the sessions' arenas
 * (h2session.c).  Every connection maps its session's region, frame buffer
 * and stream map and unmaps them when it ends: three mmap and three munmap
 * calls (each munmap a TLB shootdown across the process's threads), and a
 * page fault for each page touched again.  A block a session gives back is
 * kept, zeroed, for the next session of the same thread that asks for that
 * exact length; at most DZ_H2_PAGES_KEPT blocks per thread, so what stays
 * resident is bounded and independent of the number of connections.
 *
 * Zeroed when kept: the blocks held HPACK state and answers in clear, and
 * a session's calloc expects zeros (fresh pages are).  Thread-local: a
 * session is made and freed on its worker's thread only.
 */
#include "http/httpd_int.h"

#include <string.h>
#include <sys/mman.h>

#include "base/compat.h"

static _Thread_local struct {
    void *p;
    size_t len;
} kept[DZ_H2_PAGES_KEPT];

void *dz_h2_pages_get(size_t len)
{
    void *p;

    for (int i = 0; i < DZ_H2_PAGES_KEPT; i++) {
        if (kept[i].p && kept[i].len == len) {
            p = kept[i].p;
            kept[i].p = NULL;
            kept[i].len = 0;
            return p;
        }
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void dz_h2_pages_put(void *p, size_t len)
{
    for (int i = 0; i < DZ_H2_PAGES_KEPT; i++) {
        if (!kept[i].p) {
            memset(p, 0, len);
            kept[i].p = p;
            kept[i].len = len;
            return;
        }
    }
    munmap(p, len); /* zeroed by the kernel before anyone else gets it */
}

void dz_h2_pages_release(void)
{
    for (int i = 0; i < DZ_H2_PAGES_KEPT; i++) {
        if (kept[i].p)
            munmap(kept[i].p, kept[i].len);
        kept[i].p = NULL;
        kept[i].len = 0;
    }
}
