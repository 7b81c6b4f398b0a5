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

/* Before a request to a phone (login or signing): at most
 * mobile.phone_rate a minute, and one waiting at a time (the lock lives
 * mobile.request_ttl_ms).  False when refused: c has been answered 429
 * (rate_limited or request_pending). */
bool dz_mobile_phone_claim(struct dz_rctx *c, const char *phone);

/* Drop the one-at-a-time lock of phone (the request ended or failed). */
void dz_mobile_phone_release(struct dz_rctx *c, const char *phone);

/* "wait" from c's query string, in seconds, as milliseconds bounded by
 * mobile.poll_max_ms; 0 when absent. */
uint32_t dz_mobile_wait_ms(struct dz_rctx *c);

/* An MSSP end result other than OK as the API's failed result
 * (user_cancelled, timeout, not_mobile_client, phone_absent); static. */
const char *dz_mobile_mssp_result(const char *mssp_result);

#endif
