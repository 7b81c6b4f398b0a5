/*
 * drain.c - the stop sequence of darvazad (drain.h): readiness off first,
 * a grace with the listeners still open, then the engine's drain bounded by
 * what is left of the deadline.  It owns only timing and logging; closing
 * sockets and cutting streams are the engine's (dz_httpd_drain).
 */
#include "daemon/drain.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "base/log.h"
#include "http/httpd.h"

#include "base/compat.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait until grace_ms after t0 has passed, or a second stop signal. */
static void grace_wait(struct dz_gw *gw, const sigset_t *sigs, void (*on_usr1)(struct dz_gw *gw),
                       uint64_t t0, uint64_t grace_ms)
{
    for (;;) {
        uint64_t now = mono_ms();
        uint64_t left;
        struct timespec ts;
        int sig;

        if (now - t0 >= grace_ms)
            return;
        left = grace_ms - (now - t0);
        ts.tv_sec = (time_t)(left / 1000u);
        ts.tv_nsec = (long)(left % 1000u) * 1000000L;
        sig = sigtimedwait(sigs, NULL, &ts);
        if (sig < 0) {
            if (errno == EAGAIN)
                return; /* the grace is over */
            continue;   /* EINTR */
        }
        if (sig == SIGTERM || sig == SIGINT) {
            dz_log(DZ_LOG_INFO, "drain_grace_skipped",
                   "signal %d during the grace: closing the listeners now", sig);
            return;
        }
        if (sig == SIGUSR1 && on_usr1) {
            on_usr1(gw); /* log rotation goes on while the instance drains */
            continue;
        }
        dz_log(DZ_LOG_INFO, "drain_signal_ignored", "signal %d ignored: stopping", sig);
    }
}

void dz_drain_run(struct dz_gw *gw, const sigset_t *sigs, void (*on_usr1)(struct dz_gw *gw))
{
    uint64_t t0 = mono_ms();
    uint64_t grace = gw->gen->config->drain.grace_ms;
    uint64_t deadline = gw->gen->config->drain.deadline_ms;
    uint64_t spent;
    uint64_t left;

    atomic_store(&gw->draining, true);
    dz_log(DZ_LOG_INFO, "draining",
           "stopping: /readyz answers 503, still serving for %llu ms, open requests cut at "
           "%llu ms",
           (unsigned long long)grace, (unsigned long long)deadline);
    if (grace)
        grace_wait(gw, sigs, on_usr1, t0, grace);
    spent = mono_ms() - t0;
    left = deadline > spent ? deadline - spent : 0;
    if (left > UINT32_MAX - 1)
        left = UINT32_MAX - 1;
    dz_log(DZ_LOG_INFO, "drain_listeners_closed",
           "listeners closed, GOAWAY sent; open requests have %llu ms", (unsigned long long)left);
    dz_httpd_drain(gw->httpd, (uint32_t)left);
}
