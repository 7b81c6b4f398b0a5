/*
 * mobile_case.h - what the mobile login's unit tests (test_auth_mobile_*.c
 * in this folder) share: the record auth_mobile.c keeps of a pending login
 * (its fixed layout), and a gateway on the request-layer harness with
 * mobile login configured (a test mobile-signature CA, the relying party's
 * secret) against the MSSP at a given URL.  Static inline: each test is one
 * translation unit.
 */
#ifndef DZ_TEST_MOBILE_CASE_H
#define DZ_TEST_MOBILE_CASE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/secret.h"
#include "harness/fake_gw.h"
#include "harness/fake_trust.h"
#include "state/store.h"

/* The record auth_mobile.c keeps of a pending login (its fixed layout). */
struct mob_rec {
    char fin[8];
    char phone[20];
    unsigned char hash[32];
    char mssp_id[64];
    unsigned char binding[32];
    char lock[23]; /* the phone's lock value */
};

struct mobile_fx {
    struct fake_gw *g;
    struct fake_pki_ca mobile;
};

static inline void mobile_write_secret(const char *dir, void *arg)
{
    assert_int_equal(fake_gw_write_file(dir, "mssp.secret", "test-rp-secret\n", 0600), 0);
}

/* mssp_url: "@UPSTREAM@" for the harness's scripted back end. */
static inline struct mobile_fx *mobile_fx_new(const char *mssp_url)
{
    struct mobile_fx *f = calloc(1, sizeof(*f));
    char extra[512];
    struct fake_gw_opts o = {
        .config_extra = extra,
        .prepare = mobile_write_secret,
    };

    assert_non_null(f);
    snprintf(extra, sizeof(extra),
             "mobile:\n"
             "  mssp_url: %s\n"
             "  rp_secret_file: @DIR@/mssp.secret\n"
             "  ca: @DIR@/mobile-chain.pem\n"
             "  revocation: none\n",
             mssp_url);
    fake_trust_new(&f->mobile, "Test Mobile Signature", "mobile-chain.pem", &o, &f->g);
    return f;
}

/* Tear down; fails the test if work was still in flight. */
static inline void mobile_fx_free(struct mobile_fx *f)
{
    bool idle = fake_trust_free(f->g, &f->mobile);

    free(f);
    assert_true(idle);
}

/* A login started (on any instance), as auth_mobile.c writes it: its
 * browser's binding cookie value bind, holding the phone's lock lock. */
static inline void mobile_rec_put(struct mobile_fx *f, const char *id, const char *fin,
                                  const char *phone, const char *bind, const char *lock)
{
    struct mob_rec rec;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.fin, sizeof(rec.fin), "%s", fin);
    snprintf(rec.phone, sizeof(rec.phone), "%s", phone);
    snprintf(rec.mssp_id, sizeof(rec.mssp_id), "mssp-session-1");
    snprintf(rec.lock, sizeof(rec.lock), "%s", lock);
    dz_sha256(bind, strlen(bind), rec.binding);
    assert_int_equal(
        dz_store_put(f->g->gw.store, "mob", id, strlen(id), &rec, sizeof(rec), 60000, DZ_STORE_NX),
        0);
}

#endif
