/* Checkpoints of stateful-rule state in a compacted Kafka topic.
 *
 * One record per input partition, keyed "GROUP/TOPIC/PARTITION", whose
 * value is the partition's vg_state_t snapshot together with NEXT, the
 * offset of the first input message NOT yet reflected in that state. The
 * topic must have cleanup.policy=compact, so that the latest record per
 * key is kept forever and older ones go.
 *
 * How the pipeline uses it (see also rules/README.md "Partitions"):
 *
 *  - On assignment: vg_checkpoint_load() once, then for each new partition
 *    vg_checkpoint_restore() into a fresh vg_state_t, and
 *    vg_checkpoint_plan() with the checkpoint's NEXT and the committed
 *    offset, which says where to start reading, from which offset the
 *    state step runs, and from which offset alerts are sent.
 *  - While running: feed the state in partition order (vg_state_process).
 *    To make offset X committable, encode the state right after feeding
 *    the event at X - 1 (vg_checkpoint_encode with NEXT = X; later events
 *    may already be fed by the time it is sent, so take the bytes then).
 *    At-least-once: produce that value (vg_checkpoint_produce) only once
 *    every alert caused by events before X is acknowledged, and commit X
 *    only once the checkpoint is acknowledged too. Exactly-once: produce it
 *    into the transaction that carries those alerts and offset X, so the
 *    three commit or abort together.
 *  - On revocation and shutdown: checkpoint every owned partition, then
 *    commit, as above.
 *
 * The checkpoint is never behind the committed offset, so a crash at any
 * point neither forgets a window (the state is restored) nor repeats a
 * stateful alert (events the state already saw are not fed again). */
#ifndef VIGIL_CHECKPOINT_H
#define VIGIL_CHECKPOINT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/checkpoint_record.h"
#include "vigil/state.h"

typedef struct vg_checkpoint vg_checkpoint_t;

/* A reader of the checkpoint topic for consumer group group. conf is a
 * consumer configuration with bootstrap.servers and security settings; it
 * is taken over (also on failure). The reader uses no consumer group and
 * reads with isolation.level=read_committed. NULL with err on failure. */
vg_checkpoint_t *vg_checkpoint_new(rd_kafka_conf_t *conf, const char *topic, const char *group,
                                   char *err, size_t err_size);
void vg_checkpoint_destroy(vg_checkpoint_t *cp);

/* Reads the checkpoint topic from its start to its end and keeps the
 * latest record of each key of this group (a record with an empty value
 * deletes the key). Returns 0, or -1 with err when the topic cannot be
 * read within timeout_ms. A topic that does not exist yet is empty. */
int vg_checkpoint_load(vg_checkpoint_t *cp, int timeout_ms, char *err, size_t err_size);

/* Restores the loaded checkpoint of (topic, partition) into st and sets
 * *next to its NEXT offset: 1 restored, 0 no checkpoint (st is left
 * empty, *next = -1), -1 a corrupt record (err says why; st is empty;
 * the caller decides whether to start empty or stop). */
int vg_checkpoint_restore(vg_checkpoint_t *cp, const char *topic, int32_t partition,
                          vg_state_t *st, int64_t *next, char *err, size_t err_size);

/* The loaded record of (topic, partition), or NULL when there is none:
 * for vg_partstates_assign. Valid until the next load or destroy. */
const char *vg_checkpoint_get(const vg_checkpoint_t *cp, const char *topic, int32_t partition,
                              size_t *len);

/* The record key "GROUP/TOPIC/PARTITION" into buf. */
void vg_checkpoint_key(const char *group, const char *topic, int32_t partition, char *buf,
                       size_t size);

/* Produces an encoded checkpoint (value, len from vg_checkpoint_encode;
 * taken over, also on failure) of one input partition to cp_topic with
 * producer rk (inside the open transaction when rk is transactional).
 * msg_opaque is passed to the delivery report: the offset NEXT must not be
 * committed before that report says the record is stored. 0, or -1 with
 * err. Records can be large (up to the rules' max_keys): the topic's
 * max.message.bytes and the producer's message.max.bytes must allow them. */
int vg_checkpoint_produce(rd_kafka_t *rk, const char *cp_topic, const char *group,
                          const char *topic, int32_t partition, char *value, size_t len,
                          void *msg_opaque, char *err, size_t err_size);

/* Makes sure the checkpoint topic cp_topic can hold checkpoints, with
 * the admin API of client rk: creates it when missing (one partition,
 * cleanup.policy=compact, max.message.bytes=max_bytes); refuses (-1 with
 * err) an existing topic whose cleanup.policy is not compact, since
 * deleting old records would lose windows. A topic whose configuration
 * cannot be read, or whose max.message.bytes is below max_bytes, is
 * accepted with a sentence in warn (warn[0] is '\0' otherwise). */
int vg_checkpoint_ensure_topic(rd_kafka_t *rk, const char *cp_topic, size_t max_bytes,
                               int timeout_ms, char *warn, size_t warn_size, char *err,
                               size_t err_size);

#endif
