/*
 * version.c - the build's version and commit (see version.h).
 */
#include "base/version.h"

#ifndef DZ_VERSION
#define DZ_VERSION "unknown"
#endif
#ifndef DZ_COMMIT
#define DZ_COMMIT "unknown"
#endif

const char *dz_version(void)
{
    return DZ_VERSION;
}

const char *dz_version_commit(void)
{
    return DZ_COMMIT;
}
