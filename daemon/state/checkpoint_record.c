/* The checkpoint record (Kafka-free, so the engine and its tests can use
 * it) and the resume plan.
 *
 * Value: "VGCP", u32 format version, i64 NEXT (little endian), then the
 * vg_state_snapshot image (which carries its own version and checksum). */
#include "vigil/checkpoint_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CP_MAGIC "VGCP"
#define CP_VERSION 1u
#define CP_HEADER 16

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int vg_checkpoint_encode(const vg_state_t *st, int64_t next, char **out, size_t *len)
{
    char *snap = NULL;
    size_t slen = 0;
    if (vg_state_snapshot(st, &snap, &slen) != 0)
        return -1;
    unsigned char *buf = malloc(CP_HEADER + slen);
    if (!buf) {
        free(snap);
        return -1;
    }
    memcpy(buf, CP_MAGIC, 4);
    for (int i = 0; i < 4; i++)
        buf[4 + i] = (unsigned char)(CP_VERSION >> (8 * i));
    put64(buf + 8, (uint64_t)next);
    memcpy(buf + CP_HEADER, snap, slen);
    free(snap);
    *out = (char *)buf;
    *len = CP_HEADER + slen;
    return 0;
}

int vg_checkpoint_decode(vg_state_t *st, const char *buf, size_t len, int64_t *next,
                         char *err, size_t err_size)
{
    const unsigned char *b = (const unsigned char *)buf;
    if (len < CP_HEADER || memcmp(b, CP_MAGIC, 4) != 0) {
        snprintf(err, err_size, "checkpoint record is not a vigil checkpoint");
        return -1;
    }
    uint32_t version = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
                       (uint32_t)b[7] << 24;
    if (version != CP_VERSION) {
        snprintf(err, err_size, "checkpoint record has format version %u; this vigil reads %u",
                 version, CP_VERSION);
        return -1;
    }
    int64_t n = (int64_t)get64(b + 8);
    if (n < 0) {
        snprintf(err, err_size, "checkpoint record has a negative offset");
        return -1;
    }
    if (vg_state_restore(st, buf + CP_HEADER, len - CP_HEADER, NULL, err, err_size) != 0)
        return -1;
    *next = n;
    return 0;
}

void vg_checkpoint_plan(int64_t checkpoint_next, int64_t committed, vg_resume_plan_t *plan)
{
    if (checkpoint_next < 0) {
        /* No state saved: start where the group left off, from scratch. */
        plan->start = committed;
        plan->state_from = 0;
        plan->emit_from = 0;
        return;
    }
    if (committed < 0) {
        plan->start = plan->state_from = plan->emit_from = checkpoint_next;
        return;
    }
    /* Normally committed <= checkpoint: events in between were processed
     * and their stateful alerts sent before the checkpoint was written;
     * they are read again for their stateless alerts only. A checkpoint
     * behind the commit (lost or restored from elsewhere) is caught up by
     * reading from it, sending nothing until the committed offset. */
    plan->start = checkpoint_next < committed ? checkpoint_next : committed;
    plan->state_from = checkpoint_next;
    plan->emit_from = committed;
}
