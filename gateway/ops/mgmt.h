/*
 * mgmt.h - the management listener (config `management:`): plain HTTP/1.1
 * on its own thread and libev loop, answering GET /metrics, /healthz and
 * /readyz for Prometheus, curl and load-balancer health checks (which speak
 * HTTP/1.1, not the public listeners' HTTP/2).  docs/metrics.md describes
 * it.  It serves nothing else and reads no request data beyond the head.
 * It answers only a Host that is an IP address, localhost or a name of
 * management.hosts (mgmthost.h: no DNS rebinding); 421 otherwise.
 *
 * Bounded: DZ_MGMT_CONNS_MAX connections at once (more are closed at
 * accept), a DZ_MGMT_HEAD_MAX-byte request head, DZ_MGMT_TIMEOUT_MS for a
 * whole exchange, one request per connection (answered with
 * "Connection: close").  Its loop never blocks: sockets are non-blocking
 * and a render of the metrics is lock-free.
 */
#ifndef DZ_MGMT_H
#define DZ_MGMT_H

#include "core/config.h"
#include "core/gen.h"

#define DZ_MGMT_CONNS_MAX 16
#define DZ_MGMT_HEAD_MAX 8192
#define DZ_MGMT_TIMEOUT_MS 5000
#define DZ_MGMT_METRICS_MAX (4u << 20) /* the largest scrape rendered */

struct dz_mgmt;

/*
 * Bind conf->sa and start the listener's thread.  gw (its metrics, ready
 * and draining flags) must outlive dz_mgmt_stop.  0, DZ_ERR_IO (cannot
 * bind or listen: logged with the address), DZ_ERR_NOMEM.  Main thread,
 * before or after the workers start.
 */
int dz_mgmt_start(const struct dz_config_management *conf, struct dz_gw *gw, struct dz_mgmt **out);

/* Stop the thread, close every connection and the socket, free m.  NULL
 * is a no-op.  Main thread. */
void dz_mgmt_stop(struct dz_mgmt *m);

#endif
