/* The daemon's configuration file (DESIGN.md "Configuration"). A table of
 * keys drives parsing and validation: unknown keys, wrong types and values
 * out of range are reported with file:line:column and a "did you mean"
 * hint; ${VAR} in a string value is replaced from the environment. */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/diag.h"

typedef enum { VG_DELIVERY_AT_LEAST_ONCE, VG_DELIVERY_EXACTLY_ONCE } vg_delivery_t;

/* output.on_permanent_error: what becomes of an output that can never be
 * delivered (daemon/kafka/output.c). */
typedef enum {
    VG_ON_PERMANENT_DEAD_LETTER, /* a bounded loss record on the dead-letter topic; move on */
    VG_ON_PERMANENT_BLOCK,       /* produce it again for ever, input held (before 0.x) */
    VG_ON_PERMANENT_STOP,        /* commit what is safe and exit non-zero */
} vg_on_permanent_t;

typedef struct vg_strlist {
    char **items;
    size_t count;
} vg_strlist_t;

typedef struct vg_config {
    char *brokers;             /* kafka.brokers, default "127.0.0.1:9092" */
    char *group;               /* kafka.group, default "vigil" */
    vg_strlist_t prop_keys;    /* kafka.properties, passed to librdkafka */
    vg_strlist_t prop_values;  /* same order as prop_keys */
    vg_strlist_t input_topics; /* input.topics, default [news, trade] */
    char *time_field;          /* input.time_field, default "published_at" */
    size_t max_event_bytes;    /* input.max_event_bytes, default 1 MiB */
    size_t max_event_depth;    /* input.max_event_depth, default 64 */
    bool accept_alerts;        /* input.accept_alerts: evaluate vigil's own alerts, default false */
    char *output_topic;        /* output.topic, default "alerts" */
    char *dead_letter_topic;   /* output.dead_letter_topic, default "vigil.dead-letter" */
    bool include_event;        /* output.include_event: the event in each alert, default true */
    size_t max_matches;        /* output.max_matches: evidence entries per alert, default 100 */
    int on_permanent_error;    /* output.on_permanent_error: vg_on_permanent_t, default dead-letter */
    size_t permanent_retry_ms; /* output.permanent_error_retry_ms, default 30000 */
    size_t dead_letter_max_bytes; /* output.dead_letter_max_bytes: loss records' value, 65536 */
    vg_strlist_t rule_paths;   /* rules.paths, default [/etc/vigil/rules.d] */
    vg_strlist_t text_fields;  /* text_fields, default [title, body] */
    vg_delivery_t delivery;    /* delivery, default at-least-once */
    size_t eos_commit_interval_ms; /* exactly_once.commit_interval_ms, default 100 */
    size_t eos_commit_max_events;  /* exactly_once.commit_max_events, default 10000 */
    char *state_topic;         /* state.checkpoint_topic, default "vigil.state" */
    size_t state_interval_ms;  /* state.checkpoint_interval_ms, default 5000 */
    size_t state_events;       /* state.checkpoint_events, default 10000 */
    size_t state_max_bytes;    /* state.checkpoint_max_bytes, default 16 MiB */
    char *metrics_listen;      /* metrics.listen, default "127.0.0.1:9464" */
    size_t metrics_max_connections; /* metrics.max_connections, default 32 */
    size_t metrics_max_per_client;  /* metrics.max_connections_per_client, default 8 */
    size_t metrics_request_timeout_ms; /* metrics.request_timeout_ms, default 10000 */
    int log_format;            /* log.format: vg_log_format_t (vigil/log.h), default logfmt */
    int log_level;             /* log.level: vg_log_level_t (vigil/log.h), default info */
    bool rules_watch;          /* rules.watch: reload when rule files change, default false */
    size_t rules_watch_quiet_ms; /* rules.watch_quiet_ms, default 500 */
    size_t rules_max_compile_seconds; /* rules.max_compile_seconds: a rule load's limit, default 60 */
    size_t rules_max_compile_memory;  /* rules.max_compile_memory: MiB, default 4096 */
    char *file;                /* the file it was loaded from, or NULL */
} vg_config_t;

/* A configuration holding every default. NULL when out of memory. */
vg_config_t *vg_config_new(void);

/* Loads path over the defaults. Returns NULL and adds every error found
 * (file:line:col) to diags when the file is unreadable or invalid. An
 * empty file gives the defaults. ${VAR} in a string value is replaced
 * from the environment ("$${" is a literal "${"); an unset variable is an
 * error. Messages never show kafka.properties values or text that came
 * from the environment; and each value taken from the environment for a
 * free-text key, and each kafka.properties value named like a secret, is
 * registered with vg_log_add_secret(), so that no log line shows it
 * either. diags may be NULL (errors are then dropped). */
vg_config_t *vg_config_load(const char *path, vg_diags_t *diags);

/* Like vg_config_load, from a buffer; name (may be NULL) is used in
 * messages and stored in cfg->file. */
vg_config_t *vg_config_load_buffer(const char *name, const char *buf, size_t len,
                                   vg_diags_t *diags);

struct vg_ruleset;

/* Checks the alert topics that rules name (alert.topic) against cfg: none
 * may be the dead-letter topic, the checkpoint topic, an input topic or
 * an internal topic (__*). Each one refused is an error in diags at the
 * rule's file:line:col. Returns how many were refused. (The default
 * alert topic, output.topic, is checked when the configuration loads.) */
size_t vg_config_check_rule_topics(const vg_config_t *cfg, const struct vg_ruleset *rs,
                                   vg_diags_t *diags);

/* Accepts NULL and half-built configurations. */
void vg_config_destroy(vg_config_t *cfg);

/* The value of a kafka.properties entry, or NULL when it is not set. */
const char *vg_config_property(const vg_config_t *cfg, const char *key);

/* "at-least-once" or "exactly-once", as written in the file. */
const char *vg_delivery_name(vg_delivery_t d);

#endif
