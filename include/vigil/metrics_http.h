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

/* What one endpoint allows (metrics.max_connections,
 * metrics.max_connections_per_client, metrics.request_timeout_ms). Each
 * connection carries one request, which must arrive whole and be answered
 * within request_timeout_ms of the connection's acceptance, however slowly
 * its bytes trickle in; it is closed otherwise. A new connection beyond
 * its client's share (same IP address) or beyond the total closes the
 * oldest one of that client, or of all, so slow clients cannot keep a
 * prober out. */
#define VG_METRICS_HTTP_MAX_CONNECTIONS 32
#define VG_METRICS_HTTP_MAX_PER_CLIENT 8
#define VG_METRICS_HTTP_REQUEST_TIMEOUT_MS 10000

typedef struct vg_metrics_http_opts {
    unsigned max_connections;    /* all clients together */
    unsigned max_per_client;     /* from one IP address */
    unsigned request_timeout_ms; /* at least 100 */
} vg_metrics_http_opts_t;

typedef struct vg_metrics_http vg_metrics_http_t;

/* True when metrics.listen turns the endpoint off ("off" or empty). */
bool vg_metrics_listen_off(const char *listen);

/* Binds listen ("host:port"; an IPv6 address in brackets) and serves m,
 * which must outlive the server. Returns NULL with a sentence in err when
 * the address does not resolve or cannot be bound (in use, not local). */
vg_metrics_http_t *vg_metrics_http_start(const char *listen, vg_metrics_t *m, char *err,
                                         size_t err_size);

/* The same with limits; o NULL gives the defaults above, a 0 in a field
 * its default. */
vg_metrics_http_t *vg_metrics_http_start_opts(const char *listen, vg_metrics_t *m,
                                              const vg_metrics_http_opts_t *o, char *err,
                                              size_t err_size);

/* The port actually bound (listen may say port 0: any free one). */
int vg_metrics_http_port(const vg_metrics_http_t *s);

/* Stops serving (waits for the thread) and frees. Accepts NULL. */
void vg_metrics_http_stop(vg_metrics_http_t *s);

#endif
