/*
 * consent_hook.c - see consent_hook.h.
 */
#include "daemon/consent_hook.h"

#include "auth/consent.h"
#include "auth/session_end.h"
#include "oidc/oidc.h"
#include "oidc/oidc_consent.h"

#include "base/compat.h"

static const struct dz_consent_ops oidc_consents = {
    .list = dz_oidc_consents_list,
    .withdraw = dz_oidc_consent_withdraw,
};

void dz_consent_hook_install(void)
{
    dz_consent_set_provider(&oidc_consents);
    dz_session_end_set_hook(dz_oidc_session_ended);
}
