/*
 * h2raw_server.c - see h2raw_server.h.
 */
#include "h2raw_server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

void h2raw_server_start(struct h2raw_server *s, const struct dz_httpd_conf *conf, SSL_CTX *tls)
{
    struct dz_listener_conf l[2] = {{"127.0.0.1", 0, NULL, H2RAW_TAG_H2C},
                                    {"127.0.0.1", 0, tls, H2RAW_TAG_TLS}};
    struct dz_httpd_conf c = *conf;

    c.listeners = l;
    c.nlisteners = tls ? 2 : 1;
    assert_int_equal(dz_httpd_new(&c, &s->h), 0);
    s->h2c_port = dz_httpd_port(s->h, 0);
    s->tls_port = tls ? dz_httpd_port(s->h, 1) : 0;
    assert_true(s->h2c_port != 0);
    assert_int_equal(dz_httpd_start(s->h), 0);
}
