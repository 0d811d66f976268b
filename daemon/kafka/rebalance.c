/* Assignment and revocation of input partitions, and the final commit. */
#include <stdio.h>
#include <string.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/log.h"

static void assigned(pipeline_t *p, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                     bool cooperative)
{
    for (int i = 0; i < parts->cnt; i++) {
        partition_t *pt = vg_pl_part(p, parts->elems[i].topic, parts->elems[i].partition, true);
        if (pt && vg_offsets_assign(&p->ledger, &pt->lp)) {
            pt->eof = false;
            pt->fetch_next = -1;
        }
    }
    vg_log(VG_LOG_INFO, "msg=\"partitions assigned\" count=%d total=%zu", parts->cnt,
           p->ledger.assigned);
    vg_pl_state_assign(p, parts); /* restores windows; may move the start offsets */
    rd_kafka_error_t *e = NULL;
    if (cooperative)
        e = rd_kafka_incremental_assign(rk, parts);
    else
        rd_kafka_assign(rk, parts);
    if (e) {
        vg_log(VG_LOG_ERROR, "msg=\"assign failed\" err=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    /* librdkafka keeps a partition's pause across an unassign: one
     * paused before it was revoked would come back paused for good.
     * New partitions take the pipeline's current state. */
    if (p->flow.paused)
        rd_kafka_pause_partitions(rk, parts);
    else
        rd_kafka_resume_partitions(rk, parts);
    p->flow.assignment_changed = true;
    if (!p->ready) {
        p->ready = true;
        if (p->opts->on_ready)
            p->opts->on_ready(p->opts->ready_arg);
    }
}

static void unassign_listed(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        partition_t *pt = vg_pl_part(p, parts->elems[i].topic, parts->elems[i].partition, false);
        if (pt)
            vg_offsets_unassign(&p->ledger, &pt->lp);
    }
}

/* Revoked (or lost): evaluate what was consumed, let its alerts land
 * and commit, so that the next owner starts right after them. */
static void revoked(pipeline_t *p, rd_kafka_t *rk, rd_kafka_resp_err_t err,
                    rd_kafka_topic_partition_list_t *parts, bool cooperative)
{
    bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
    vg_pl_finish_consumed(p);
    if (p->eos.on && lost) {
        /* Another member owns them now: what this transaction read of
         * them must not be committed; it is aborted (the partitions
         * still held are rewound). */
        unassign_listed(p, parts);
        vg_pl_txn_abort(p);
    } else if (p->eos.on) {
        p->st.force_all = true; /* the next owner resumes from these checkpoints */
        vg_pl_txn_commit(p);
        p->st.force_all = false;
    } else {
        vg_pl_out_drain(p, 30000);
        if (!lost) {
            vg_pl_state_checkpoint_all(p, parts);
            rd_kafka_commit(rk, NULL, 0);
        }
    }
    unassign_listed(p, parts);
    for (int i = 0; i < parts->cnt; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", (int)parts->elems[i].partition);
        vg_metric_remove(p->m.consumer_lag, (const char *[]){parts->elems[i].topic, id});
    }
    vg_pl_state_revoked(p, parts);
    /* What was stored is committed now, or (partitions lost) never will
     * be: either way nothing is waiting for a commit any more. */
    p->health.uncommitted_since = 0;
    vg_log(VG_LOG_INFO, "msg=\"partitions revoked\" count=%d", parts->cnt);
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

void vg_pl_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pipeline_t *p = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        assigned(p, rk, parts, cooperative);
    else
        revoked(p, rk, err, parts, cooperative);
}

/* ---- the final commit ----
 *
 * At-least-once, at shutdown, the offsets stored last are committed
 * before the consumer leaves. A single rd_kafka_commit(NULL) is not
 * enough: a commit that fails (the coordinator moving or loading, a
 * timeout) was only logged, and the group kept an older offset, so the
 * next owner read again what this one had finished. And it sends only
 * the offsets librdkafka has not seen committed, trusting the answers to
 * its earlier requests, so an auto-commit retried in the background that
 * lands after a newer one can leave the group behind with nothing sent
 * at the end. So the stored offsets are committed explicitly, read back,
 * and committed again while that fails or the group does not show them,
 * for up to VG_FINAL_COMMIT_S. */

#define VG_FINAL_COMMIT_S 10.0

/* The offsets stored in this assignment (NULL when none). */
static rd_kafka_topic_partition_list_t *stored_offsets(pipeline_t *p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    PL_FOREACH_PART(p, pt)
    if (pt->lp.assigned && pt->lp.stored_next > 0)
        rd_kafka_topic_partition_list_add(l, pt->lp.topic, pt->lp.partition)->offset =
            pt->lp.stored_next;
    if (l->cnt)
        return l;
    rd_kafka_topic_partition_list_destroy(l);
    return NULL;
}

/* Commits l and reads the group's offsets back: 0 when it shows every
 * offset of l (else *behind, or the error). */
static rd_kafka_resp_err_t commit_and_check(pipeline_t *p, const rd_kafka_topic_partition_list_t *l,
                                            bool *behind)
{
    *behind = false;
    rd_kafka_resp_err_t e = rd_kafka_commit(p->consumer, l, 0);
    if (e)
        return e;
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
    e = rd_kafka_committed(p->consumer, c, 5000);
    for (int i = 0; !e && i < c->cnt; i++) {
        e = c->elems[i].err;
        *behind |= c->elems[i].offset < l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(c);
    return e;
}

int vg_pl_commit_final(pipeline_t *p)
{
    rd_kafka_topic_partition_list_t *l = stored_offsets(p);
    if (!l)
        return 0;
    double deadline = vg_monotime() + VG_FINAL_COMMIT_S;
    rd_kafka_resp_err_t e;
    bool behind;
    for (int attempt = 1;; attempt++) {
        e = commit_and_check(p, l, &behind);
        if ((!e && !behind) || vg_monotime() >= deadline)
            break;
        vg_log(VG_LOG_WARN,
               "msg=\"final commit not on the broker; committing again\" "
               "attempt=%d err=\"%s\"",
               attempt, e ? rd_kafka_err2str(e) : "the group's offset is behind");
        /* A pause that also serves the producer's events. */
        rd_kafka_poll(p->producer, 200);
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e || behind)
        vg_log(VG_LOG_WARN, "msg=\"final commit failed\" err=\"%s\"",
               e ? rd_kafka_err2str(e) : "the group's offset is behind");
    return e || behind ? -1 : 0;
}
