/*
 * h2raw_server.h - the real engine (lib/http) on 127.0.0.1 for a unit test
 * to talk to with curl or h2raw_client.h: listeners on ports the kernel
 * picks, started.  Linked as its object, like h2raw_client.o.
 */
#ifndef DZ_TEST_H2RAW_SERVER_H
#define DZ_TEST_H2RAW_SERVER_H

#include <stdint.h>

#include "http/httpd.h"

/* The tags the listeners carry (dz_req_listener_tag). */
#define H2RAW_TAG_H2C 7
#define H2RAW_TAG_TLS 9

struct h2raw_server {
    struct dz_httpd *h;
    uint16_t h2c_port; /* listener 0 */
    uint16_t tls_port; /* listener 1; 0 without tls */
};

/* conf says everything but the listeners (workers, limits, handlers, app);
 * an h2c listener, and a TLS one on tls when it is not NULL (the engine
 * takes its own reference).  Fails the test if the engine does not start.
 * The test stops it: dz_httpd_drain, then dz_httpd_free. */
void h2raw_server_start(struct h2raw_server *s, const struct dz_httpd_conf *conf, SSL_CTX *tls);

#endif
