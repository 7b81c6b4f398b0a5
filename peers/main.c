/*
 * main.c - `darvaza-peer MODE [options]`: dispatches to one stand-in for an
 * outside system per mode (the shared runtime is runtime.c).
 */
#include "peer.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/version.h"
#include "mssp.h"

#include "base/compat.h"

/* ---- dispatch ---- */

struct mode {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct mode modes[] = {
    {"registry", dz_peer_registry_main, "population registry over HTTP/2 (SQLite)"},
    {"echo", dz_peer_echo_main, "answers any request with what it received"},
    {"mssp", dz_peer_mssp_main, "mobile signature service provider (Mobile-ID-like REST)"},
    {"phone", dz_peer_phone_main, "a phone with a SIM signing key: answers the MSSP and QR codes"},
    {"tsa", dz_peer_tsa_main, "RFC 3161 time-stamping authority (timestamp-query over HTTP/2)"},
    {"court", dz_peer_court_main, "e-court: judges' signed notices, outbox, the party's notices"},
    {"sms", dz_peer_sms_main, "SMS gateway: keeps the messages sent, reads them back for tests"},
    {NULL, NULL, NULL},
};

static int usage(FILE *to)
{
    fputs("usage: darvaza-peer MODE [options]   (MODE --help for its options)\n\nmodes:\n", to);
    for (const struct mode *m = modes; m->name; m++)
        fprintf(to, "  %-10s %s\n", m->name, m->summary);
    return 2;
}

int main(int argc, char **argv)
{
    sigset_t set = dz_peer_stop_signals();
    const char *level = getenv("DARVAZA_LOG_LEVEL");
    enum dz_log_level lvl;

    /* Before any thread exists (pools, workers): every thread inherits the
     * mask, so only the main thread's sigwait sees the stop signals. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (level && dz_log_level_parse(level, &lvl) == 0)
        dz_log_set_level(lvl);

    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        dz_version_print(stdout, "darvaza-peer");
        return 0;
    }
    for (const struct mode *m = modes; m->name; m++) {
        if (strcmp(argv[1], m->name) == 0)
            return m->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "darvaza-peer: unknown mode '%s'\n", argv[1]);
    return usage(stderr);
}
