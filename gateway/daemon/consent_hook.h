/*
 * consent_hook.h - gives the account API (auth/consent.h) the OpenID Connect
 * provider's consent decisions (oidc/oidc_consent.h) and its back-channel
 * logout of sessions ended from the account page (auth/session_end.h): the
 * two folders may not call each other, the daemon sees both.
 */
#ifndef DZ_CONSENT_HOOK_H
#define DZ_CONSENT_HOOK_H

/* Register the provider's consents and session-end hook.  Start-up thread, before the workers
 * start. */
void dz_consent_hook_install(void);

#endif
