/*
 * h2_engine.h - the HTTP/2 engine the h2 fuzz targets drive (fuzz_h2frames,
 * fuzz_h2idle): one worker, never started (the fuzzing thread plays its loop
 * thread), small limits so that inputs reach them.  Header-only: each target
 * is one source file in the Makefile's fuzz and replay rules.
 */
#ifndef DZ_FUZZ_H2_ENGINE_H
#define DZ_FUZZ_H2_ENGINE_H

#include <stdlib.h>
#include <string.h>

#include "http/httpd.h"
#include "http/httpd_int.h"

/* The engine with these handlers, once; aborts when it cannot be made. */
static inline struct dz_worker *fuzz_h2_engine(struct dz_httpd **h,
                                               void (*on_headers)(struct dz_req *r, void *w),
                                               void (*on_request)(struct dz_req *r, void *w))
{
    struct dz_httpd_conf conf;
    struct dz_worker *w;

    memset(&conf, 0, sizeof(conf));
    conf.workers = 1;
    dz_httpd_limits_default(&conf.limits);
    conf.limits.max_body_bytes = 4096;
    conf.limits.max_header_count = 24;
    conf.limits.max_header_bytes = 2048;
    conf.limits.max_concurrent_streams = 16;
    conf.handlers.on_headers = on_headers;
    conf.handlers.on_request = on_request;
    if (dz_httpd_new(&conf, h) != 0)
        abort();
    w = dz_httpd_worker_at(*h, 0);
    w->wdata = w;
    return w;
}

#endif
