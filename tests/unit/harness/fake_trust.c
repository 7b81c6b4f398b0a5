/*
 * fake_trust.c - see fake_trust.h.
 */
#include "fake_trust.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

/* What the prepare hook needs; on fake_trust_new's stack, since fake_gw_new
 * calls the hook before it returns. */
struct bundle_job {
    const struct fake_pki_ca *ca;
    const char *bundle;
    void (*prepare)(const char *dir, void *arg);
    void *prepare_arg;
};

static void write_bundle(const char *dir, void *arg)
{
    const struct bundle_job *j = arg;
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, j->bundle);
    fake_pki_ca_write(j->ca, path);
    if (j->prepare)
        j->prepare(dir, j->prepare_arg);
}

void fake_trust_new(struct fake_pki_ca *ca, const char *ca_name, const char *bundle,
                    const struct fake_gw_opts *o, struct fake_gw **out)
{
    struct bundle_job j = {ca, bundle, o->prepare, o->prepare_arg};
    struct fake_gw_opts with = *o;

    fake_pki_ca_init(ca, ca_name);
    with.prepare = write_bundle;
    with.prepare_arg = &j;
    assert_int_equal(fake_gw_new(&with, out), 0);
}

bool fake_trust_free(struct fake_gw *g, struct fake_pki_ca *ca)
{
    bool idle = fake_gw_free(g);

    fake_pki_ca_cleanup(ca);
    return idle;
}
