/* A small Prometheus registry: counters, gauges and histograms with
 * labels, rendered in the text exposition format 0.0.4. One registry is
 * created by `vigil run` and handed to the pipeline (which updates it) and
 * to the HTTP endpoint (which reads it from its own thread); every call
 * takes the registry's lock, so any thread may call any function.
 *
 * Metrics are best effort: an update that cannot allocate its series is
 * dropped rather than failing the pipeline. Every update function accepts
 * a NULL metric and does nothing, so code can be written once for "with
 * metrics" and "without" (the demo passes no registry). */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vg_metrics vg_metrics_t;
/* A metric family: one name, help text, type and label names. Owned by
 * its registry; valid until the registry is destroyed. */
typedef struct vg_metric vg_metric_t;

typedef enum { VG_METRIC_COUNTER, VG_METRIC_GAUGE, VG_METRIC_HISTOGRAM } vg_metric_type_t;

/* NULL when out of memory. */
vg_metrics_t *vg_metrics_new(void);
/* Accepts NULL. No other thread may use the registry any more. */
void vg_metrics_destroy(vg_metrics_t *m);

/* Registers a counter or gauge named name (Prometheus rules: [a-zA-Z_:]
 * then [a-zA-Z0-9_:]) with nlabels label names. Registering a name again
 * with the same type and labels returns the existing family. A family
 * without labels starts with one series at 0. Returns NULL when m is
 * NULL, a name is invalid, the name is taken by another kind of metric,
 * or out of memory. */
vg_metric_t *vg_metrics_counter(vg_metrics_t *m, const char *name, const char *help,
                                const char *const *labels, size_t nlabels);
vg_metric_t *vg_metrics_gauge(vg_metrics_t *m, const char *name, const char *help,
                              const char *const *labels, size_t nlabels);
/* A histogram with the given bucket upper bounds (finite, strictly
 * increasing; "+Inf" is added), and no labels besides "le". */
vg_metric_t *vg_metrics_histogram(vg_metrics_t *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds);

/* values holds one value per label name of the family (NULL when it has
 * none); the strings are copied. add is for counters (delta >= 0) and
 * gauges; set for gauges (and counters, to create a series at 0). */
void vg_metric_add(vg_metric_t *f, const char *const *values, double delta);
void vg_metric_set(vg_metric_t *f, const char *const *values, double v);
void vg_metric_observe(vg_metric_t *f, double v);
/* Drops one series (a partition no longer assigned, say). */
void vg_metric_remove(vg_metric_t *f, const char *const *values);
/* Drops every series and sets one: an info metric whose label changes
 * (vigil_ruleset_info{hash}) never shows two values to a scrape. */
void vg_metric_replace(vg_metric_t *f, const char *const *values, double v);

/* The value of one counter or gauge series, or of a histogram's count;
 * NaN when the series does not exist. For tests and status lines. */
double vg_metric_value(vg_metric_t *f, const char *const *values);

/* Renders every family in the text exposition format 0.0.4 (HELP and TYPE
 * lines, families and series in registration order). Returns a malloc'd
 * NUL-terminated string (the caller frees it) and its length in *len, or
 * NULL when out of memory. */
char *vg_metrics_render(vg_metrics_t *m, size_t *len);

/* Health, as decided by the pipeline's main thread and served by
 * /healthz from another one. reason NULL means healthy; otherwise a short
 * line saying why not (copied). Each call also stamps the time, so a
 * main loop that stops calling is reported as stalled. */
void vg_metrics_set_health(vg_metrics_t *m, const char *reason);
/* True when healthy. Otherwise writes a one-line reason into reason:
 * the last one set, "starting" before any, or that the main loop has not
 * reported for more than stall_s seconds. */
bool vg_metrics_health(vg_metrics_t *m, double stall_s, char *reason, size_t reason_size);

#endif
