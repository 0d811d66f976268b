/* The value of a state checkpoint record and the resume plan of a
 * restored partition (the Kafka side is include/vigil/checkpoint.h). */
#ifndef VIGIL_CHECKPOINT_RECORD_H
#define VIGIL_CHECKPOINT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/state.h"

/* Encodes a checkpoint value (a malloc'd buffer into *out): format
 * version, NEXT, and the state snapshot. 0, or -1 when out of memory. */
int vg_checkpoint_encode(const vg_state_t *st, int64_t next, char **out, size_t *len);
/* Decodes a value into st and *next; -1 with err when it is not valid. */
int vg_checkpoint_decode(vg_state_t *st, const char *buf, size_t len, int64_t *next,
                         char *err, size_t err_size);

/* Where a partition resumes, given its checkpoint's NEXT (-1: none) and
 * its committed offset (-1: none; the consumer's auto.offset.reset then
 * decides, and the plan says -1 too). */
typedef struct vg_resume_plan {
    int64_t start;      /* read from here (-1: the committed offset / reset policy) */
    int64_t state_from; /* feed the state only with offsets >= this */
    int64_t emit_from;  /* send alerts (stateless and stateful) only for offsets >= this */
} vg_resume_plan_t;

void vg_checkpoint_plan(int64_t checkpoint_next, int64_t committed, vg_resume_plan_t *plan);

#endif
