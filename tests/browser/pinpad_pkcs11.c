/*
 * pinpad_pkcs11.c - a PKCS#11 module for the browser card test that acts
 * like a card reader with a PIN pad: it forwards every call to the real
 * module (SoftHSM2, the demo's cards) and, when a session is opened, enters
 * the card's PIN itself (read from a 0600 file), so Chromium never has to
 * show its PIN dialog - which a headless Chromium cannot show, and which
 * would block the TLS handshake for good (docs/cards.md "Tested").
 * Everything else is the real stack: NSS finds the certificate and asks the
 * token to sign the handshake; a wrong PIN in the file fails the login as
 * it would on the card.
 *
 *   DZ_PINPAD_MODULE    the real module (default SoftHSM2's)
 *   DZ_PINPAD_PIN_FILE  the file holding the PIN
 *
 * Test-only: built by tests/browser/card.sh, never installed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST fwd;
static CK_FUNCTION_LIST_PTR real;

/* The PIN, read once per login: never kept longer than the call. */
static CK_RV enter_pin(CK_SESSION_HANDLE s)
{
    const char *path = getenv("DZ_PINPAD_PIN_FILE");
    char pin[64];
    size_t n;
    FILE *f;
    CK_RV rv;

    if (!path || !(f = fopen(path, "r")))
        return CKR_PIN_INCORRECT;
    n = fread(pin, 1, sizeof(pin) - 1, f);
    fclose(f);
    while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
        n--;
    rv = real->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n);
    memset(pin, 0, sizeof(pin));
    return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

static CK_RV pad_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR out)
{
    CK_RV rv = real->C_OpenSession(slot, flags, app, notify, out);

    /* Login is per application in PKCS#11: once done, every session of
     * this process sees the card's private key, as after a PIN-pad entry. */
    if (rv == CKR_OK)
        (void)enter_pin(*out);
    return rv;
}

static CK_RV pad_login(CK_SESSION_HANDLE s, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    CK_RV rv = real->C_Login(s, type, pin, len);

    return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    const char *path = getenv("DZ_PINPAD_MODULE");
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
    void *h;

    if (!out)
        return CKR_ARGUMENTS_BAD;
    if (!real) {
        h = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (!h)
            return CKR_GENERAL_ERROR;
        get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(h, "C_GetFunctionList");
        if (!get || get(&real) != CKR_OK)
            return CKR_GENERAL_ERROR;
        fwd = *real;
        fwd.C_OpenSession = pad_open_session;
        fwd.C_Login = pad_login;
    }
    *out = &fwd;
    return CKR_OK;
}
