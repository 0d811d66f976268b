/* Pausing and resuming the consumer: while outputs fail, while too much
 * is in flight, during the backoff after an aborted transaction, and for
 * flow control. */
#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/log.h"

/* Consumption pauses beyond these many unacknowledged outputs or input
 * events in flight, and resumes below half of them. */
#define VG_MAX_OUTSTANDING 100000
#define VG_MAX_INFLIGHT_EVENTS 200000

/* Flow control. librdkafka 2.0 stops fetching a partition whose prefetch
 * queue passes queued.max.messages.kbytes (64 MB) and then looks again
 * only a second later (fetch.queue.backoff.ms, settable from 2.1 on). A
 * consumer slower than its fetcher, as vigil is with a backlog, spent
 * most of each such second idle with an empty queue: 300,000 news events
 * took 4.6-6.6 s instead of 2.5 (tests/bench/bench_e2e.sh). So the main
 * thread drains librdkafka's queue into the pool's batches
 * (VG_PIPELINE_BATCHES) and pauses the partitions itself once
 * VG_FLOW_HIGH_BYTES of input and rendered alerts (or every batch) waits
 * for evaluation or emission; resuming below a quarter of that (and half
 * the batches) fetches again at once (resume_fetching). A pause drops
 * what librdkafka had fetched ahead (about one fetch, 1 MB per partition,
 * fetched again on resume); nothing consumed is lost. */
#define VG_FLOW_HIGH_BYTES ((size_t)16 << 20) /* VIGIL_BUFFER_BYTES overrides */

void vg_pl_flow_init(pipeline_t *p)
{
    p->flow.high =
        (size_t)vg_env_number("VIGIL_BUFFER_BYTES", 4096, (size_t)1 << 32, VG_FLOW_HIGH_BYTES);
}

/* Resumes fetching the partitions of l. librdkafka 2.0's fetcher thread
 * notices a resumed partition only when it next wakes up, which with
 * nothing else to do is up to a second later (throughput measured with
 * resume alone: half of what a never-paused consumer reads). A seek to
 * where the consumer stands wakes it at once and changes nothing else:
 * the next message is the one after the last taken, as without the
 * pause. Partitions with nothing taken yet are only resumed. */
static rd_kafka_resp_err_t resume_fetching(pipeline_t *p, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_resp_err_t e = rd_kafka_resume_partitions(p->consumer, l);
    if (e)
        return e;
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(l->cnt);
    for (int i = 0; i < l->cnt; i++) {
        partition_t *pt = vg_pl_part(p, l->elems[i].topic, l->elems[i].partition, false);
        if (pt && pt->fetch_next >= 0)
            rd_kafka_topic_partition_list_add(at, pt->lp.topic, pt->lp.partition)->offset =
                pt->fetch_next;
    }
    if (at->cnt) {
        /* Asynchronous (timeout 0): a failure shows as the ordinary
         * delay of the fetcher's next wake-up, and is only logged. */
        rd_kafka_error_t *se = rd_kafka_seek_partitions(p->consumer, at, 0);
        if (se) {
            vg_log(VG_LOG_DEBUG, "msg=\"seek on resume failed\" err=\"%s\"",
                   rd_kafka_error_string(se));
            rd_kafka_error_destroy(se);
        }
    }
    rd_kafka_topic_partition_list_destroy(at);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Whether consumption is held back (logged, and the
 * vigil_consumer_paused gauge): outputs failing (they are being produced
 * again, and taking more input would only pile up more of them), too
 * much in flight, or the backoff after an aborted transaction. */
static bool hold_back(pipeline_t *p)
{
    size_t events = 0;
    PL_FOREACH_PART(p, pt)
    events += pt->lp.inflight;
    double now = vg_monotime();
    bool backoff = p->eos.on && now < p->eos.backoff_until;
    uint64_t outstanding = p->out.outstanding;
    const char *why = p->out.failing > 0                 ? "deliveries failing"
                      : backoff                          ? "backoff after an aborted transaction"
                      : outstanding > VG_MAX_OUTSTANDING ? "too many outputs in flight"
                      : events > VG_MAX_INFLIGHT_EVENTS  ? "too many events in flight"
                                                         : NULL;
    bool hold = why != NULL;
    if (!hold && p->flow.held_back &&
        (outstanding > VG_MAX_OUTSTANDING / 2 || events > VG_MAX_INFLIGHT_EVENTS / 2))
        hold = true; /* hysteresis */
    if (hold != p->flow.held_back) {
        vg_log(VG_LOG_INFO,
               hold ? "msg=\"consumption paused\" reason=\"%s\" outputs=%llu events=%zu"
                    : "msg=\"consumption resumed\"%s outputs=%llu events=%zu",
               hold ? why : "", (unsigned long long)outstanding, events);
        p->flow.held_back = hold;
        vg_metric_set(p->m.paused, NULL, hold ? 1 : 0);
    }
    return hold;
}

/* Pauses or resumes fetching as hold_back and flow control say.
 * Reapplied after a new assignment. */
void vg_pl_flow_update(pipeline_t *p)
{
    flow_t *fl = &p->flow;
    bool hold = hold_back(p);
    size_t nfree = vg_workpool_free(p->pool), nall = vg_workpool_batches(p->pool);
    size_t held = fl->held_bytes + vg_workpool_output_bytes(p->pool);
    bool throttle =
        fl->throttled ? held > fl->high / 4 || nfree < nall / 2 : held >= fl->high || nfree == 0;
    if (throttle && !fl->throttled)
        vg_metric_add(p->m.throttled, NULL, 1);
    fl->throttled = throttle;
    bool want = hold || throttle;
    if (want == fl->paused && !(want && fl->assignment_changed))
        return;
    fl->assignment_changed = false;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(p->consumer, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l)
        return;
    rd_kafka_resp_err_t e =
        want ? rd_kafka_pause_partitions(p->consumer, l) : resume_fetching(p, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        vg_log(VG_LOG_WARN, "msg=\"cannot %s consumption\" err=\"%s\"", want ? "pause" : "resume",
               rd_kafka_err2str(e));
        return;
    }
    fl->paused = want;
}
