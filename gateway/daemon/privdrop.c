/*
 * privdrop.c - become an unprivileged account after binding; see privdrop.h.
 *
 * The order matters: groups while still root (setgroups needs it), then
 * gids, then uids last (after setresuid nothing else may be changed).  The
 * final checks make a half-done drop fatal instead of silent.
 */
#include "daemon/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/err.h"

#include "base/compat.h"

/* err gets the sentence, then ": strerror(e)" when e is not 0; returns rc. */
__attribute__((format(printf, 5, 6))) static int say(char *err, size_t err_len, int rc, int e,
                                                     const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    if (e && n >= 0 && (size_t)n < err_len)
        snprintf(err + n, err_len - (size_t)n, ": %s", strerror(e));
    return rc;
}

static bool ids_are(uid_t uid, gid_t gid)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return false;
    return ru == uid && eu == uid && su == uid && rg == gid && eg == gid && sg == gid;
}

int dz_privdrop(const char *user, const char *group, char *err, size_t err_len)
{
    const struct passwd *pw;
    uid_t uid;
    gid_t gid;

    err[0] = '\0';
    if (!user)
        return 0;
    errno = 0;
    pw = getpwnam(user);
    if (!pw)
        return say(err, err_len, DZ_ERR_NOTFOUND, errno, "gateway.user: no such user \"%s\"", user);
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    if (uid == 0)
        return say(err, err_len, DZ_ERR_INVAL, 0,
                   "gateway.user: \"%s\" is root; name an unprivileged account", user);
    if (group) {
        const struct group *gr;
        errno = 0;
        gr = getgrnam(group);
        if (!gr)
            return say(err, err_len, DZ_ERR_NOTFOUND, errno, "gateway.group: no such group \"%s\"",
                       group);
        gid = gr->gr_gid;
    }
    /* Started by a service manager that already switched (systemd User=). */
    if (ids_are(uid, gid))
        return 0;
    if (geteuid() != 0)
        return say(err, err_len, DZ_ERR_INVAL, 0,
                   "gateway.user: cannot become \"%s\": start darvazad as root or as that user",
                   user);
    if (initgroups(user, gid) != 0)
        return say(err, err_len, DZ_ERR_IO, errno, "initgroups for \"%s\"", user);
    if (setresgid(gid, gid, gid) != 0)
        return say(err, err_len, DZ_ERR_IO, errno, "setresgid for \"%s\"", user);
    if (setresuid(uid, uid, uid) != 0)
        return say(err, err_len, DZ_ERR_IO, errno, "setresuid to \"%s\"", user);
    /* Fail closed if anything of root is left or could come back. */
    if (!ids_are(uid, gid) || setuid(0) == 0 || seteuid(0) == 0)
        return say(err, err_len, DZ_ERR_IO, 0, "the drop to \"%s\" did not hold: root regained",
                   user);
    /* A credential change resets dumpable from the system's default:
     * keep secrets out of core files as main() asked before the drop. */
    prctl(PR_SET_DUMPABLE, 0);
    return 0;
}
