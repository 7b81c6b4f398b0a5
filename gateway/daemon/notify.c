/*
 * notify.c - sd_notify messages of darvazad; see notify.h.
 *
 * libsystemd rather than our own datagram: it knows the abstract-socket
 * and vsock forms of $NOTIFY_SOCKET and keeps up with the protocol.
 */
#include "daemon/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include "base/log.h"

#include "base/compat.h"

static void send_state(const char *state)
{
    int rc = sd_notify(0, state);

    if (rc < 0)
        dz_log(DZ_LOG_DEBUG, "notify_failed", "sd_notify: error %d", -rc);
}

void dz_notify_ready(void)
{
    send_state("READY=1\nSTATUS=serving");
}

void dz_notify_reloading(void)
{
    struct timespec ts;
    char msg[96];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_state(msg);
}

void dz_notify_stopping(void)
{
    send_state("STOPPING=1\nSTATUS=draining");
}
