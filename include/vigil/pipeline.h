/* The daemon's pipeline: consume events from Kafka, evaluate the ruleset,
 * produce alerts and dead-letter copies, and commit an input offset only
 * after everything it caused has been acknowledged by the broker
 * (at-least-once). `vigil run` and `vigil demo` share it. */
#ifndef VIGIL_PIPELINE_H
#define VIGIL_PIPELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "vigil/config.h"
#include "vigil/metrics.h"
#include "vigil/ruleset.h"

typedef struct vg_pipeline_stats {
    uint64_t consumed;      /* input messages */
    uint64_t alerts;        /* alerts acknowledged by the broker */
    uint64_t dead_lettered; /* dead-letter copies acknowledged */
    uint64_t delivery_retries;
    uint64_t reloads_ok, reloads_failed;
    /* What consuming waits for, in words: "brokers" until one has
     * answered, then "partitions of news, trade" until one is assigned;
     * empty while partitions are assigned. Updated about once a second. */
    char awaiting[256];
} vg_pipeline_stats_t;

typedef struct vg_pipeline_opts {
    /* Evaluation threads (0: the main thread evaluates everything). */
    unsigned workers;
    /* Stop once every assigned partition is read to its end and all
     * output is acknowledged (the demo and tests). */
    bool stop_at_eof;
    /* Set asynchronously (signal handler) to drain and stop. */
    volatile sig_atomic_t *stop;
    /* Set asynchronously to reload the rules with reload_fn. */
    volatile sig_atomic_t *reload;
    /* Builds a new ruleset (NULL when invalid: the old one stays). */
    vg_ruleset_t *(*reload_fn)(void *arg);
    void *reload_arg;
    /* Called once the consumer has its first assignment. */
    void (*on_ready)(void *arg);
    void *ready_arg;
    /* Called once, as soon as the rules are loaded and both clients are
     * created, before any broker need answer (and before exactly-once
     * initialises its transactions): start-up is done, and awaiting (as
     * in vg_pipeline_stats_t) says what consuming still waits for. A
     * broker that is down, or an input topic that does not exist yet,
     * does not hold it back. */
    void (*on_started)(void *arg, const char *awaiting);
    void *started_arg;
    /* Called from the main loop about every 100 ms (watchdog, status). */
    void (*on_tick)(void *arg, const vg_pipeline_stats_t *stats);
    void *tick_arg;
    /* Where to count (vigil_* families) and report health for /healthz;
     * NULL for none. Not owned; must outlive the run. */
    vg_metrics_t *metrics;
    /* The state checkpoint topic exists and is not to be checked through
     * the admin API (librdkafka's mock cluster has no DescribeConfigs). */
    bool state_topic_ready;
} vg_pipeline_opts_t;

/* Runs until stopped. Takes ownership of *rules (and of every ruleset
 * reload_fn returns); destroys them. Returns 0 after a clean stop, or -1
 * with a reason in err when Kafka could not be set up. stats may be
 * NULL. */
int vg_pipeline_run(const vg_config_t *cfg, vg_ruleset_t *rules, const vg_pipeline_opts_t *opts,
                    vg_pipeline_stats_t *stats, char *err, size_t err_size);

/* Checks cfg's kafka.properties the way the clients will take them,
 * without connecting to anything: each one through librdkafka's own
 * configuration API (an unknown name, a value it refuses), and
 * transactional.id only with exactly-once. Returns the number of
 * problems (0: fine); err gets them, "; " between two, each naming the
 * property. A value is never shown when it is a secret (its name says
 * so, or it came from the environment: vg_log_has_secret). */
size_t vg_pipeline_check_properties(const vg_config_t *cfg, char *err, size_t err_size);

#endif
