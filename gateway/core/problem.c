/*
 * problem.c - the table of problem codes (DESIGN.md §4.1).  Adding a code
 * here is the only way to answer a new kind of error, so the set stays
 * stable and documented (docs/api.md lists the same table).
 */
#include "core/problem.h"

#include <string.h>

#include "base/compat.h"

struct problem_kind {
    const char *code;
    int status;
    const char *title;
};

static const struct problem_kind kinds[] = {
    {"invalid_json", 400, "The request body is not valid JSON"},
    {"invalid_request", 400, "The request is malformed"},
    {"invalid_fin", 400, "The FIN must be 7 Latin letters or digits"},
    {"invalid_document", 400, "The identity document number is not valid"},
    {"invalid_purpose", 400, "The Darvaza-Purpose header is not valid"},
    {"purpose_required", 400, "This request needs a Darvaza-Purpose header"},
    {"invalid_phone", 400, "The phone number must be +994 and nine digits"},
    {"weak_password", 400, "The password does not meet the password rules"},
    {"bad_credentials", 401, "The FIN, password or code is not correct"},
    {"otp_required", 401, "A one-time code is required"},
    {"code_required", 401, "Enter the code sent by SMS to your phone"},
    {"code_invalid", 401, "The SMS code is wrong, already used or unknown"},
    {"code_expired", 401, "The SMS code has expired; ask for a new one"},
    {"unauthenticated", 401, "Sign in first"},
    {"qr_invalid", 400, "The QR code is not valid for this login"},
    {"qr_expired", 401, "The QR code is too old; scan it again"},
    {"qr_used", 409, "This QR login has already been answered"},
    {"invalid_nonce", 401, "The challenge is unknown, expired or already used"},
    {"bad_signature", 401, "The signature does not verify"},
    {"certificate_required", 401, "A certificate is required"},
    {"certificate_invalid", 401, "The certificate is not accepted"},
    {"certificate_revoked", 401, "The certificate is revoked"},
    {"card_login_invalid", 401, "The card login is unknown, expired, used or another browser's"},
    {"bad_origin", 403, "The request comes from another site"},
    {"forbidden", 403, "You may not do this"},
    {"insufficient_assurance", 403, "This needs a stronger way of signing in"},
    {"unknown_client", 400, "The application asking is not registered"},
    {"invalid_redirect_uri", 400, "The return address is not one the application registered"},
    {"not_found", 404, "Not found"},
    {"method_not_allowed", 405, "Method not allowed"},
    {"payload_too_large", 413, "The request body is too large"},
    {"uri_too_long", 414, "The request target is too long"},
    {"misdirected_request", 421, "This server does not answer for that host name"},
    {"request_header_too_large", 431, "The request head is too large"},
    {"header_fields_too_large", 431, "The request's header fields are too large"},
    {"unsupported_media_type", 415, "The body must be application/json"},
    {"signed_body_required", 400, "The body must be a document with its CAdES signature"},
    {"malformed_signature", 400, "The signature is not a CMS SignedData"},
    {"signature_rejected", 403, "The document's signature is not valid"},
    {"signer_mismatch", 403, "The document is not signed by the person signed in"},
    {"not_mobile_client", 403, "This phone and FIN do not hold a mobile signature"},
    {"registration_refused", 422, "Registration was refused"},
    {"no_registered_phone", 422, "The population registry holds no mobile number for you"},
    {"request_pending", 429, "A request is already waiting on this phone"},
    {"locked", 429, "Too many failed attempts; try again later"},
    {"rate_limited", 429, "Too many requests; slow down"},
    {"internal_error", 500, "Internal error"},
    {"upstream_unavailable", 502, "The service is not reachable"},
    {"service_unavailable", 503, "The gateway is busy; try again"},
    {"draining", 503, "The gateway is stopping; use another instance"},
    {"state_unavailable", 503, "The gateway cannot record what this needs now; try again"},
    {"revocation_unavailable", 503, "The certificate's revocation status cannot be learned now"},
    {"timestamp_unavailable", 503, "The time-stamping authority cannot be reached now"},
    {"upstream_timeout", 504, "The service did not answer in time"},
    /* The status is the back end's own 4xx/5xx (forward.c withhold_error);
     * 502 only where a status must be named without one. */
    {"upstream_error_withheld", 502, "The service refused or failed the request"},
};

static const struct problem_kind *find(const char *code)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i].code, code) == 0)
            return &kinds[i];
    }
    return NULL;
}

int dz_problem_status(const char *code)
{
    const struct problem_kind *k = find(code);
    return k ? k->status : 500;
}

json_t *dz_problem_new(const char *code, const char *detail)
{
    const struct problem_kind *k = find(code);
    char type[128];

    if (!k)
        k = find("internal_error");
    snprintf(type, sizeof(type), "urn:darvaza:problem:%s", k->code);
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", k->title, "status",
                     k->status, "detail", detail ? detail : k->title, "code", k->code);
}
