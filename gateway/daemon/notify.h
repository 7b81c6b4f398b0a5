/*
 * notify.h - tells a service manager (systemd Type=notify) what darvazad
 * is doing, through libsystemd's sd_notify: READY=1 once the listeners are
 * bound and the workers run, RELOADING=1 (with MONOTONIC_USEC, as systemd
 * 253 and later ask) before a SIGHUP reload and READY=1 after it,
 * STOPPING=1 when a stop signal arrives.
 *
 * Without $NOTIFY_SOCKET (not started by systemd) every call does nothing.
 * Main thread; a failed send is logged at debug and otherwise ignored: the
 * manager's timeout, not the gateway, decides what a missing message means.
 */
#ifndef DZ_NOTIFY_H
#define DZ_NOTIFY_H

void dz_notify_ready(void);
void dz_notify_reloading(void);
void dz_notify_stopping(void);

#endif
