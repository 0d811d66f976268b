/* The offset ledger (offsets.h): pure bookkeeping, no Kafka client. */
#include "offsets.h"

#include <stdlib.h>
#include <string.h>

void vg_offsets_init(vg_offsets_t *o, size_t part_size)
{
    *o = (vg_offsets_t){
        .part_size = part_size < sizeof(vg_offsets_part_t) ? sizeof(vg_offsets_part_t) : part_size};
}

void vg_offsets_clear(vg_offsets_t *o, void (*free_part)(vg_offsets_part_t *))
{
    while (o->parts) {
        vg_offsets_part_t *pt = o->parts;
        o->parts = pt->next;
        if (free_part)
            free_part(pt);
        while (pt->head) {
            vg_offsets_rec_t *f = pt->head;
            pt->head = f->next;
            free(f);
        }
        free(pt->topic);
        free(pt);
    }
    o->assigned = 0;
}

vg_offsets_part_t *vg_offsets_part(vg_offsets_t *o, const char *topic, int32_t partition,
                                   bool create)
{
    for (vg_offsets_part_t *pt = o->parts; pt; pt = pt->next)
        if (pt->partition == partition && strcmp(pt->topic, topic) == 0)
            return pt;
    if (!create)
        return NULL;
    vg_offsets_part_t *pt = calloc(1, o->part_size);
    if (!pt)
        return NULL;
    pt->topic = strdup(topic);
    if (!pt->topic) {
        free(pt);
        return NULL;
    }
    pt->partition = partition;
    pt->next = o->parts;
    o->parts = pt;
    return pt;
}

bool vg_offsets_assign(vg_offsets_t *o, vg_offsets_part_t *pt)
{
    if (pt->assigned)
        return false;
    pt->assigned = true;
    vg_offsets_restart(pt, false, 0);
    o->assigned++;
    return true;
}

bool vg_offsets_unassign(vg_offsets_t *o, vg_offsets_part_t *pt)
{
    if (!pt->assigned)
        return false;
    pt->assigned = false;
    o->assigned--;
    return true;
}

vg_offsets_rec_t *vg_offsets_track(vg_offsets_part_t *pt, int64_t offset)
{
    vg_offsets_rec_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->offset = offset;
    f->pending = 1;
    f->part = pt;
    *(pt->tail ? &pt->tail->next : &pt->head) = f;
    pt->tail = f;
    pt->inflight++;
    return f;
}

void vg_offsets_hold(vg_offsets_rec_t *f)
{
    f->pending++;
}

bool vg_offsets_release(vg_offsets_rec_t *f)
{
    vg_offsets_part_t *pt = f->part;
    if (--f->pending > 0 || pt->head != f)
        return false;
    int64_t last = -1;
    while (pt->head && pt->head->pending == 0) {
        vg_offsets_rec_t *done = pt->head;
        last = done->offset;
        pt->head = done->next;
        if (!pt->head)
            pt->tail = NULL;
        pt->inflight--;
        free(done);
    }
    /* Offsets of a partition no longer assigned are not ours to commit. */
    if (last < 0 || !pt->assigned)
        return false;
    pt->acked_next = last + 1;
    return true;
}

int64_t vg_offsets_committable(const vg_offsets_part_t *pt, bool gated)
{
    if (!pt->assigned || pt->acked_next <= 0)
        return -1;
    if (!gated)
        return pt->acked_next;
    if (!pt->durable_known)
        return -1;
    int64_t off = pt->acked_next < pt->durable ? pt->acked_next : pt->durable;
    return off > pt->stored_next ? off : -1;
}

void vg_offsets_stored(vg_offsets_part_t *pt, int64_t offset)
{
    pt->stored_next = offset;
}

void vg_offsets_durable(vg_offsets_part_t *pt, int64_t next)
{
    if (!pt->durable_known || next > pt->durable) {
        pt->durable = next;
        pt->durable_known = true;
    }
}

void vg_offsets_restart(vg_offsets_part_t *pt, bool known, int64_t next)
{
    pt->durable_known = known;
    pt->durable = known ? next : 0;
    pt->acked_next = pt->stored_next = 0;
}

void vg_offsets_forget_durable(vg_offsets_part_t *pt)
{
    pt->durable_known = false;
}
