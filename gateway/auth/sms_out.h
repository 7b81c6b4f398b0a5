/*
 * sms_out.h - messages to a person's phone through the SMS gateway of the
 * config's sms: section (POST {sms.url}/api/sms {"to","text"}, with the
 * upstream client certificate): registration codes, and the notices a
 * person gets whenever an account is registered in their name, its password
 * is changed or its TOTP reset (docs/api.md "Notices by SMS").
 *
 * Both calls hold c until then(c, rc, arg) runs on c's loop; the transfer is
 * c's operation in flight (c->op/c->cancel), so a client that leaves cancels
 * it and then() is not called (the caller's arg is freed by the cancel hook
 * it passed).  Loop thread only.  Texts must not hold secrets other than a
 * registration code; nothing here logs a text.
 */
#ifndef DZ_SMS_OUT_H
#define DZ_SMS_OUT_H

#include "core/rctx.h"

typedef void (*dz_sms_then)(struct dz_rctx *c, int rc, void *arg);

/* Send text to one number.  rc 0: the SMS gateway took it (2xx);
 * DZ_ERR_UNAVAILABLE (no sms.url, refused, unreachable), DZ_ERR_TIMEOUT.
 * drop(arg) frees arg if the client leaves meanwhile (may be NULL). */
void dz_sms_send(struct dz_rctx *c, const char *to, const char *text, dz_sms_then then,
                 void (*drop)(void *arg), void *arg);

/* Send text to every mobile number the population registry holds for fin
 * (GET /api/registry/me/phones under a service assertion for fin with
 * purpose "notification").  rc 0 when at least one number took it. */
void dz_sms_notify(struct dz_rctx *c, const char *fin, const char *text, dz_sms_then then,
                   void (*drop)(void *arg), void *arg);

/* dz_sms_notify, and also to the number also (when the registry does not
 * list it, or does not answer): a registration's notice reaches every
 * number the registry holds and surely the one its code went to. */
void dz_sms_notify_also(struct dz_rctx *c, const char *fin, const char *also, const char *text,
                        dz_sms_then then, void (*drop)(void *arg), void *arg);

#endif
