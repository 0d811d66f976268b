/* The offset ledger: which input offset may be committed (private to
 * daemon/kafka; no Kafka client here, so tests/test_offsets.c checks it
 * alone).
 *
 * Each consumed message gets a record in its partition's queue, in the
 * order it was consumed. A record is held while anything it caused (its
 * evaluation, each alert or dead-letter copy) is not done; records leave
 * the queue from the head only, so the offset after the last record that
 * left is the highest one below which everything is done, whatever order
 * the acknowledgements came in. That offset may be committed, but only
 * while the partition is assigned and, when a durable state checkpoint
 * is required ("gated": stateful rules), never past the NEXT of the last
 * checkpoint the broker has. */
#ifndef VIGIL_KAFKA_OFFSETS_H
#define VIGIL_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vg_offsets_part vg_offsets_part_t;

/* One consumed message whose offset is not done with. */
typedef struct vg_offsets_rec {
    int64_t offset;
    int pending; /* holds: outputs not yet acknowledged, +1 while processing */
    struct vg_offsets_rec *next;
    vg_offsets_part_t *part;
} vg_offsets_rec_t;

/* An input partition. Callers that keep more per partition embed this as
 * the first member of a bigger struct (vg_offsets_init's part_size). */
struct vg_offsets_part {
    char *topic;
    int32_t partition;
    bool assigned;
    vg_offsets_rec_t *head, *tail;
    size_t inflight; /* records in the queue */
    /* The offset after the last record that left the queue while assigned
     * (0: none since the assignment). */
    int64_t acked_next;
    /* Gated: the NEXT of the last checkpoint on the broker (when
     * durable_known); the committable offset never passes it. */
    bool durable_known;
    int64_t durable;
    /* The offset last handed over for commit in this assignment (0: none). */
    int64_t stored_next;
    vg_offsets_part_t *next;
};

typedef struct vg_offsets {
    vg_offsets_part_t *parts;
    size_t part_size;
    size_t assigned; /* partitions assigned */
} vg_offsets_t;

/* An empty ledger whose partitions are part_size bytes (at least
 * sizeof(vg_offsets_part_t)), zeroed when created. */
void vg_offsets_init(vg_offsets_t *o, size_t part_size);
/* Frees every partition and record; free_part (may be NULL) is called on
 * each partition first, for what the caller keeps in it. */
void vg_offsets_clear(vg_offsets_t *o, void (*free_part)(vg_offsets_part_t *));

/* The partition topic/partition; with create, a new unassigned one when
 * it is not known yet. NULL when unknown (or out of memory). */
vg_offsets_part_t *vg_offsets_part(vg_offsets_t *o, const char *topic, int32_t partition,
                                   bool create);
/* Marks pt assigned, starting its offsets afresh (nothing acknowledged or
 * stored, no durable checkpoint). False when it already was assigned
 * (then nothing changes). */
bool vg_offsets_assign(vg_offsets_t *o, vg_offsets_part_t *pt);
/* Marks pt not assigned; its records stay until released. False when it
 * was not assigned. */
bool vg_offsets_unassign(vg_offsets_t *o, vg_offsets_part_t *pt);

/* Appends a record for offset, held once (for its processing). NULL when
 * out of memory. */
vg_offsets_rec_t *vg_offsets_track(vg_offsets_part_t *pt, int64_t offset);
/* One more hold on f (an output on its way). */
void vg_offsets_hold(vg_offsets_rec_t *f);
/* Drops one hold on f; when that finishes the head of its queue, the
 * finished records leave it (f may be freed). True when records left the
 * queue while the partition is assigned: acked_next moved. */
bool vg_offsets_release(vg_offsets_rec_t *f);

/* The offset that may be handed over for commit now, or -1. Ungated: the
 * offset after the acknowledged records. Gated: that, but not past the
 * durable checkpoint (none known: -1), and only when above the offset
 * stored last. */
int64_t vg_offsets_committable(const vg_offsets_part_t *pt, bool gated);
/* offset was handed over for commit. */
void vg_offsets_stored(vg_offsets_part_t *pt, int64_t offset);
/* A checkpoint with NEXT = next is on the broker (the gate only moves
 * forward). */
void vg_offsets_durable(vg_offsets_part_t *pt, int64_t next);
/* Restarts pt's gate after an assignment: the checkpoint it resumed from
 * is durable at next (known), or there is none; nothing acknowledged or
 * stored yet. */
void vg_offsets_restart(vg_offsets_part_t *pt, bool known, int64_t next);
/* Forgets pt's durable checkpoint (its partition was revoked). */
void vg_offsets_forget_durable(vg_offsets_part_t *pt);

#endif
