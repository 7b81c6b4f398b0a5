/*
 * mobile.h - what the mobile-signature and QR logins share: whether they
 * are configured, phone number syntax, and the MSSP request skeleton.
 * Loop thread only.
 */
#ifndef DZ_MOBILE_H
#define DZ_MOBILE_H

#include <stdbool.h>
#include <stddef.h>

#include "httpc.h"
#include "rctx.h"

/* True when mobile login is configured; otherwise answers 404 itself. */
bool dz_mobile_on(struct dz_rctx *c);

/* "+994" and nine digits. */
bool dz_mobile_phone_valid(const char *phone);

/* Fill r with what every MSSP call carries (bearer secret of the relying
 * party, TLS towards the MSSP, bounds); h needs 3 slots, auth 300 bytes,
 * and all of them must live until the call returns. */
void dz_mobile_mssp_request(struct dz_rctx *c, struct dz_httpc_request *r, struct dz_hdr *h,
                            char *auth, size_t auth_len, struct dz_httpc_tls *tls);

#endif
