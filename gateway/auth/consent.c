/*
 * consent.c - the OIDC consent hook; see consent.h.  One pointer, written
 * before the workers exist and only read afterwards.
 */
#include "auth/consent.h"

#include <stddef.h>

#include "base/compat.h"

static const struct dz_consent_ops *provider;

void dz_consent_set_provider(const struct dz_consent_ops *ops)
{
    provider = ops;
}

const struct dz_consent_ops *dz_consent_provider(void)
{
    return provider;
}
