/* The HTTP endpoint of `metrics.listen`: GET /metrics (the registry in
 * the Prometheus text format) and GET /healthz (200 "ok" or 503 and a
 * one-line reason), served by libmicrohttpd from a thread of its own. */
#ifndef VIGIL_METRICS_HTTP_H
#define VIGIL_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/metrics.h"

/* /healthz reports the main loop as stalled after this long without a
 * health update (a revocation may legitimately drain for 30 s). */
#define VG_HEALTH_STALL_S 60.0

typedef struct vg_metrics_http vg_metrics_http_t;

/* True when metrics.listen turns the endpoint off ("off" or empty). */
bool vg_metrics_listen_off(const char *listen);

/* Binds listen ("host:port"; an IPv6 address in brackets) and serves m,
 * which must outlive the server. Returns NULL with a sentence in err when
 * the address does not resolve or cannot be bound (in use, not local). */
vg_metrics_http_t *vg_metrics_http_start(const char *listen, vg_metrics_t *m, char *err,
                                         size_t err_size);

/* Stops serving (waits for the thread) and frees. Accepts NULL. */
void vg_metrics_http_stop(vg_metrics_http_t *s);

#endif
