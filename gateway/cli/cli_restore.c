/*
 * cli_restore.c - `darvaza audit accept-restore LOG --reason TEXT`: the
 * operator's acknowledgement that the audit log was restored from a backup
 * (audit/audit_restore.h).  The gateway refuses to start on a log that
 * disagrees with its Merkle tree; this writes, beside the tree, an
 * acknowledgement bound to exactly that disagreement, which the next start
 * consumes: it keeps the old tree aside, rebuilds it, and records the
 * restore and the reason in the log.  Refused while a gateway writes LOG.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "audit/audit_restore.h"
#include "audit/audit_tree.h"
#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

static int usage(void)
{
    fputs("usage: darvaza audit accept-restore LOG --reason TEXT\n"
          "  The gateway refuses to start when the audit log LOG disagrees with its\n"
          "  Merkle tree (LOG.tree/): lines were cut or changed.  When that is a\n"
          "  restore from a backup, say so: the next start keeps the old tree aside,\n"
          "  rebuilds it from LOG and records the restore (the old tree's size and\n"
          "  root, and TEXT) as a line of the log, covered by every later head.  The\n"
          "  acknowledgement holds only for the state it was made for.  Run it with the\n"
          "  gateway stopped.  Exit 0 accepted, 1 nothing to accept or refused, 2 usage.\n",
          stderr);
    return 2;
}

bool dz_cli_log_in_use(const char *log)
{
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    bool busy = false;

    if (fd < 0)
        return false;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        busy = errno == EWOULDBLOCK;
    else
        flock(fd, LOCK_UN);
    close(fd);
    return busy;
}

int dz_cli_audit_restore(int argc, char **argv)
{
    const char *log = NULL;
    const char *reason = NULL;
    struct dz_audit_mismatch m;
    char root[65];
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else if (!log && argv[i][0] != '-')
            log = argv[i];
        else
            return usage();
    }
    if (!log || !reason)
        return usage();
    if (dz_cli_log_in_use(log)) {
        fprintf(stderr, "darvaza audit: %s: a gateway is writing this log; stop it first\n", log);
        return 1;
    }
    rc = dz_audit_tree_accept_restore(log, NULL, reason, &m);
    switch (rc) {
    case 0:
        dz_hex(m.root, 32, root);
        printf("accepted: %s: the tree of %" PRIu64 " leaves (root %s) is replaced at the next "
               "start by one built from the log (seq 1..%" PRIu64 "); it differed at seq %" PRIu64
               ": %s\n",
               log, m.tree_size, root, m.log_end, m.seq, m.what);
        return 0;
    case DZ_ERR_NOTFOUND:
        fprintf(stderr,
                "darvaza audit: %s: the tree agrees with the log (or there is none): "
                "nothing to accept\n",
                log);
        return 1;
    case DZ_ERR_PARSE:
        fprintf(stderr,
                "darvaza audit: %s: %s; a tree cannot be built from it: restore every "
                "segment first\n",
                log, m.what);
        return 1;
    case DZ_ERR_INVAL:
        fprintf(stderr, "darvaza audit: --reason: 1..%d printable characters\n",
                DZ_AUDIT_REASON_MAX);
        return 2;
    default:
        fprintf(stderr, "darvaza audit: %s: %s\n", log, dz_err_str(rc));
        return 1;
    }
}
