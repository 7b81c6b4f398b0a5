/*
 * cookies.h - the names and attributes of the gateway's own cookies, spelt
 * once.  Lengths come from sizeof, never counted by hand: a hand-counted
 * strncmp is how a cookie of ours once slipped through to back ends.
 *
 *   DZ_COOKIE_SESSION  the session token (login.c sets it, rctx.c reads it,
 *                      api_auth.c clears it at logout).
 *   DZ_COOKIE_QR       the QR login's browser binding (auth_qr.c).
 *   DZ_COOKIE_CARD     the browser card login's binding (auth_cardtls.c).
 *   DZ_COOKIE_MOBILE   the mobile-signature login's binding (auth_mobile.c).
 * All carry the __Host- prefix (RFC 6265bis: Secure, Path=/, no Domain),
 * and all begin with DZ_COOKIE_PREFIX, so one prefix test recognises any
 * cookie of ours.
 */
#ifndef DZ_COOKIES_H
#define DZ_COOKIES_H

#define DZ_COOKIE_PREFIX "__Host-darvaza"
#define DZ_COOKIE_PREFIX_LEN (sizeof(DZ_COOKIE_PREFIX) - 1)

#define DZ_COOKIE_SESSION DZ_COOKIE_PREFIX
#define DZ_COOKIE_SESSION_LEN (sizeof(DZ_COOKIE_SESSION) - 1)
/* "name=" as it starts a pair in a Cookie header, and its length. */
#define DZ_COOKIE_SESSION_EQ DZ_COOKIE_SESSION "="
#define DZ_COOKIE_SESSION_EQ_LEN (sizeof(DZ_COOKIE_SESSION_EQ) - 1)
/* Lax: a link from elsewhere to a protected page still carries the session. */
#define DZ_COOKIE_SESSION_ATTRS "; Secure; HttpOnly; SameSite=Lax; Path=/"

#define DZ_COOKIE_QR DZ_COOKIE_PREFIX "-qr"
#define DZ_COOKIE_QR_LEN (sizeof(DZ_COOKIE_QR) - 1)
/* Strict: only the page that showed the code polls for its result. */
#define DZ_COOKIE_QR_ATTRS "; Secure; HttpOnly; SameSite=Strict; Path=/"

#define DZ_COOKIE_CARD DZ_COOKIE_PREFIX "-card"
/* Strict: only the portal's own page exchanges the code (a same-origin
 * fetch, after the card listener sent the browser back).  Max-Age: it is
 * worth nothing once the login it binds has expired. */
#define DZ_COOKIE_CARD_ATTRS "; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age="

#define DZ_COOKIE_MOBILE DZ_COOKIE_PREFIX "-mob"
/* Strict: only the portal's page that started the login polls for it (a
 * same-origin fetch).  Max-Age: the login's record lifetime. */
#define DZ_COOKIE_MOBILE_ATTRS "; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age="

#endif
