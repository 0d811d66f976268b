/* The pipeline's insides, shared by its files (private to daemon/kafka):
 *
 *   pipeline.c      the run loop: consume, hand batches to the workers,
 *                   emit what they evaluated, stop
 *   offsets.c       the offset ledger: which input offset may be committed
 *   output.c        producing alerts and dead letters, delivery reports,
 *                   retries
 *   txn.c           exactly-once: transactions
 *   rebalance.c     assignment and revocation
 *   flow.c          pausing and resuming the consumer
 *   state_bridge.c  stateful rules: partition states and checkpoints
 *   client.c        the librdkafka clients: configuration and callbacks
 *   health.c        metrics and /healthz
 *   reload.c        rule reloads on a thread of their own
 *
 * Everything runs on the main thread except where a comment says so.
 * Functions shared between the files are named vg_pl_<file>_<verb>. */
#ifndef VIGIL_KAFKA_PIPELINE_INT_H
#define VIGIL_KAFKA_PIPELINE_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "checkpoint.h"
#include "offsets.h"
#include "vigil/metrics.h"
#include "vigil/partstates.h"
#include "vigil/pipeline.h"
#include "vigil/state_metrics.h"
#include "vigil/workpool.h"

/* An input partition: its offset ledger, and what the loop, the
 * transactions and the state checkpoints keep about it. */
typedef struct partition {
    vg_offsets_part_t lp; /* first: the ledger allocates partitions */
    bool eof;
    /* The offset after the last message taken from the consumer, or
     * where a rewind sent the consumer; -1 unknown. Resuming seeks here
     * (see resume_fetching in flow.c). */
    int64_t fetch_next;
    /* Exactly-once: the open transaction holds events first up to
     * next - 1 of this partition (when dirty). */
    struct {
        bool dirty;
        int64_t first, next;
    } txn;
    /* Stateful rules: a checkpoint waiting for the outputs of the events
     * before next (at-least-once), and the NEXT of the checkpoint in the
     * open transaction (exactly-once; -1 none). Whether one is on the
     * broker, and where, is the ledger's gate (lp.durable). */
    struct {
        char *value;
        size_t len;
        int64_t next;
        int64_t txn_next;
    } cp;
} partition_t;

#define PL_PART(rec) ((partition_t *)(rec)->part)
#define PL_FOREACH_PART(p, pt)                                                                     \
    for (partition_t *pt = (partition_t *)(p)->ledger.parts; pt; pt = (partition_t *)pt->lp.next)

/* The metric families the pipeline updates (all NULL without a registry:
 * updating a NULL family does nothing). */
typedef struct pipeline_metrics {
    vg_metric_t *consumed, *dead_lettered, *decode_failures, *rule_matches;
    vg_metric_t *alerts_produced, *alerts_failed, *dead_letters_failed;
    vg_metric_t *processing, *consumer_lag, *assigned, *in_flight;
    vg_metric_t *ruleset_info, *rules_loaded, *reloads, *build_info, *up;
    vg_metric_t *delivery_retries, *outputs_failing, *paused, *throttled, *transactions, *txn_open;
    vg_metric_t *checkpoints;
    vg_metric_t *skipped, *permanent_errors;
} pipeline_metrics_t;

/* When each message of a batch was consumed, for vigil_processing_seconds
 * (a batch's items are indexed as it was filled). */
typedef struct batch_clock {
    const vg_batch_t *batch;
    double *consumed_at;
    size_t cap;
} batch_clock_t;

/* What /healthz is decided from; main thread only (the decision is
 * published to the registry, which the HTTP thread reads). Times are
 * CLOCK_MONOTONIC seconds, 0 for "never". */
typedef struct health {
    double started;
    double next_publish;
    double brokers_down_at[2]; /* "all brokers down" and none up since: consumer, producer */
    double uncommitted_since;  /* first offset stored after the last commit */
    double ack_wait_since;     /* outputs are waiting and none was acked since */
    double unassigned_since;   /* no partition assigned since (start-up counts) */
    uint64_t acked_seen;
    double commit_stale_s;
    bool stopping;
} health_t;

/* What a produced message is: the first member of every message's opaque
 * (outmsg_t, cpmsg_t), so that a delivery report is read by what was
 * produced, never by the topic it went to (an alert and a checkpoint may
 * share one; a rule's topic may be anything). */
typedef enum {
    VG_PL_MSG_ALERT = 0x5a11,
    VG_PL_MSG_DEAD_LETTER,
    VG_PL_MSG_CHECKPOINT,
} vg_pl_msg_kind_t;

typedef struct outmsg outmsg_t;

/* Alerts and dead-letter copies on their way (output.c). */
typedef struct output {
    uint64_t outstanding; /* not yet acknowledged, all partitions */
    uint64_t failing;     /* failed at least once, not yet acked */
    double failing_since;
    char last_error[160];
    time_t last_dr_error_log;
    uint64_t dr_errors_suppressed;
    /* At-least-once: failed deliveries waiting to be produced again. */
    outmsg_t *retry_head, *retry_tail;
    size_t retry_count;
    double retry_at;      /* when the next round is due (0: none scheduled) */
    double retry_backoff; /* seconds; doubles per round, reset by a success */
    /* Loss records (output.on_permanent_error: dead-letter) waiting to be
     * produced by the main loop, in place of outputs given up on. */
    outmsg_t *loss_head, *loss_tail;
    const outmsg_t *probing; /* produced alone before it is given up on (output.c) */
    time_t last_loss_log;
    uint64_t losses_suppressed;
} output_t;

/* Fetching is paused (paused: what librdkafka was told) while deliveries
 * fail or too much is in flight (held_back: logged, and the
 * vigil_consumer_paused gauge), and for flow control while enough
 * consumed input waits for evaluation (throttled: held_bytes of it). */
typedef struct flow {
    bool paused, held_back, throttled;
    bool assignment_changed;
    size_t held_bytes, high; /* resumes below high / 4 */
} flow_t;

struct txn_count;

/* Exactly-once (txn.c). */
typedef struct eos {
    bool on;     /* delivery: exactly-once */
    bool open;   /* a transaction is open */
    bool failed; /* an output of the open transaction failed: abort it */
    double started;
    size_t events;
    double backoff, backoff_until;
    double failing_since; /* first abort since the last commit */
    /* Outputs the broker acknowledged in the open transaction, counted in
     * their metrics only when it commits: an aborted one's never count. */
    struct txn_count *counts;
    size_t ncounts, counts_cap;
    char transactional_id[256];
} eos_t;

/* Stateful rules (state_bridge.c; all NULL when the rules have none). */
typedef struct state_bridge {
    vg_partstates_t *ps;
    vg_checkpoint_t *cpr;
    vg_state_metrics_t *sm;
    uint64_t cp_outstanding; /* checkpoint records not yet reported */
    double publish_at, tick_at, too_large_log_at;
    bool force_all; /* exactly-once: the commit of a revocation checkpoints every partition */
} state_bridge_t;

typedef struct pipeline {
    const vg_config_t *cfg;
    const vg_pipeline_opts_t *opts;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    vg_ruleset_t *rs;
    /* A reloaded ruleset the partition states still use after a failed
     * reload could not undo (out of memory); freed after them. */
    vg_ruleset_t *rs_doomed;
    vg_workpool_t *pool;
    vg_batch_t *cur;     /* the batch being filled from the consumer */
    vg_offsets_t ledger; /* of partition_t */
    vg_pipeline_stats_t stats;
    bool ready;
    char fatal[512];       /* set: the run ends (producer failed for good, ...) */
    vg_metrics_t *metrics; /* NULL: no metrics */
    pipeline_metrics_t m;
    struct {
        batch_clock_t *v;
        size_t n, hint;
    } clocks;
    health_t health;
    output_t out;
    flow_t flow;
    eos_t eos;
    state_bridge_t st;
    /* The consumer's queue, which a worker that finished a batch yields so
     * that the main thread's rd_kafka_consumer_poll returns and emits the
     * alerts at once, instead of at the end of its timeout. */
    struct {
        pthread_mutex_t mu;
        rd_kafka_queue_t *q;
    } wake;
} pipeline_t;

/* pipeline.c */
partition_t *vg_pl_part(pipeline_t *p, const char *topic, int32_t partition, bool create);
/* Hands off (the offset of pt) for commit; nothing when off < 0. */
void vg_pl_store(pipeline_t *p, partition_t *pt, int64_t off);
/* Drops one hold on record f; stores the offsets that frees. */
void vg_pl_release(pipeline_t *p, vg_offsets_rec_t *f);
/* Evaluates and emits everything consumed so far. */
void vg_pl_finish_consumed(pipeline_t *p);
/* Any thread: wakes the main loop's consumer poll. */
void vg_pl_wake(void *arg);

/* output.c */
/* Produces one output (a copy of data; NULL: a null value) on behalf of
 * record f: f stays held until the broker acknowledges it, or it is
 * given up on (output.on_permanent_error). Takes ownership of hdrs.
 * dead_letter_reason: NULL for an alert, else the dead-letter reason (a
 * static name, for metrics). Exactly-once: the output joins the open
 * transaction (begun by the caller). */
void vg_pl_out_send(pipeline_t *p, vg_offsets_rec_t *f, const char *dead_letter_reason,
                    const char *topic, const void *data, size_t len, const void *key,
                    size_t key_len, rd_kafka_headers_t *hdrs);
/* An alert of rule r (rendered json) as an output of f. */
void vg_pl_out_alert(pipeline_t *p, vg_offsets_rec_t *f, const vg_rule_t *r, const char *json,
                     size_t len, const char *key);
void vg_pl_out_dead_letter(pipeline_t *p, const rd_kafka_message_t *m, vg_offsets_rec_t *f,
                           const char *kind, const char *reason);
void vg_pl_out_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
void vg_pl_out_retry_run(pipeline_t *p);
void vg_pl_out_drain(pipeline_t *p, int timeout_ms);
void vg_pl_out_free_retries(pipeline_t *p);
void vg_pl_out_log_error(pipeline_t *p, const char *topic, rd_kafka_resp_err_t err);
void vg_pl_out_done(pipeline_t *p, outmsg_t *om);

/* txn.c */
void vg_pl_txn_begin(pipeline_t *p);
void vg_pl_txn_commit(pipeline_t *p);
void vg_pl_txn_abort(pipeline_t *p);
void vg_pl_txn_maybe_commit(pipeline_t *p);
void vg_pl_txn_count(pipeline_t *p, vg_metric_t *metric, const char *const *labels, size_t nlabels);
void vg_pl_txn_counts_end(pipeline_t *p, bool committed);
/* The shortest and the longest wait before trying failed work again. */
#define VG_RETRY_MIN_S 0.1
#define VG_RETRY_MAX_S 10.0

/* rebalance.c */
void vg_pl_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts, void *opaque);
int vg_pl_commit_final(pipeline_t *p);

/* flow.c. The pool's batches: with VIGIL_BUFFER_BYTES, what flow control
 * lets wait for evaluation (see flow.c). */
#define VG_PIPELINE_BATCHES 64
void vg_pl_flow_init(pipeline_t *p);
void vg_pl_flow_update(pipeline_t *p);

/* state_bridge.c */
bool vg_pl_state_on(const pipeline_t *p);
int vg_pl_state_start(pipeline_t *p, const vg_ruleset_t *rs, char *err, size_t err_size);
void vg_pl_state_stop(pipeline_t *p);
void vg_pl_state_acked(pipeline_t *p, partition_t *pt);
void vg_pl_state_dr(pipeline_t *p, const rd_kafka_message_t *m);
bool vg_pl_state_feed_event(pipeline_t *p, const rd_kafka_message_t *m, const vg_work_item_t *it,
                            vg_offsets_rec_t *f);
void vg_pl_state_assign(pipeline_t *p, rd_kafka_topic_partition_list_t *parts);
void vg_pl_state_checkpoint_all(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts);
void vg_pl_state_revoked(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts);
void vg_pl_state_txn_checkpoints(pipeline_t *p);
void vg_pl_state_txn_committed(pipeline_t *p);
int64_t vg_pl_state_rewind(pipeline_t *p, partition_t *pt);
void vg_pl_state_tick(pipeline_t *p);
int vg_pl_state_reload(pipeline_t *p, const vg_ruleset_t *nrs);

/* client.c */
int vg_pl_client_setup(pipeline_t *p, char *err, size_t err_size);
/* A client configuration with the brokers, the client id and logging;
 * NULL with err. */
rd_kafka_conf_t *vg_pl_client_conf(const vg_config_t *cfg, char *err, size_t err_size);
/* The user's kafka.properties, set last so that they override defaults. */
int vg_pl_client_apply_props(rd_kafka_conf_t *conf, const vg_config_t *cfg, char *err,
                             size_t err_size);

/* health.c */
void vg_pl_health_register(pipeline_t *p);
void vg_pl_health_note_ruleset(pipeline_t *p, const vg_ruleset_t *rs);
void vg_pl_health_publish(pipeline_t *p, bool force);

/* reload.c. Loading and compiling a big ruleset takes a while (~0.5 s
 * for 15,000 terms): it happens on a thread of its own while consumption
 * goes on, and only the swap happens in the main loop. */
typedef struct reloader {
    const vg_pipeline_opts_t *opts;
    pipeline_t *p;
    pthread_t thread;
    bool running;
    atomic_int done;
    vg_ruleset_t *result;
} reloader_t;
/* Starts a reload when one is asked for and none runs; swaps in a
 * finished one. */
void vg_pl_reload_tick(pipeline_t *p, reloader_t *r);
/* At the end of the run: waits for a running reload, whose result is
 * applied or freed. */
void vg_pl_reload_finish(pipeline_t *p, reloader_t *r);

#endif
