/* A pool of evaluation threads that keeps input order. The caller fills
 * batches of raw events; workers decode, evaluate and render alerts, each
 * with its own scanner (vectorscan scratch) and decoder; the caller takes
 * finished batches back strictly in the order it submitted them, so
 * per-partition order of alerts (and of offsets) is kept. With zero
 * workers a batch is processed in the submitting thread. */
#ifndef VIGIL_WORKPOOL_H
#define VIGIL_WORKPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"

typedef struct vg_work_alert {
    const vg_rule_t *rule;
    size_t off, len; /* the rendered alert in batch->text */
} vg_work_alert_t;

typedef struct vg_work_item {
    /* input, set by the caller */
    const char *data;
    size_t len;
    vg_alert_source_t src;
    void *opaque;
    size_t in_off;    /* copied input: offset in batch->in */
    bool copied;
    bool oversize;    /* refused before reading: len is its size */
    /* output */
    vg_event_status_t status; /* VG_EVENT_OK or why it was refused */
    bool undecoded;           /* OK without decoding: no rule can match it (prefilter) */
    int eval_failed;          /* decoding worked but matching failed */
    size_t err_off, err_len;  /* the reason in batch->text */
    size_t first_alert, nalerts;
    /* output of a pool with options.stateful, for the in-order state
     * step (vg_state_apply, vg_partstates_apply): the stateful rules that
     * matched, with their evidence and their keys on the event
     * (vg_rule_match_t.has_keys). The worker has released the decoded
     * event: the state step decodes the input bytes (data) again only to
     * render an alert about the event, so they must live until the batch
     * is released. The matches belong to the batch and live as long. */
    const vg_rule_match_t *matches;
    size_t nmatches;
    /* The event times the state step reads, found by the worker so that
     * an event no stateful rule matched need not be kept: times[k] is
     * the time at field time_fields[k] (INT64_MIN: none or unparsable),
     * for the pool's default time field and each stateful rule's own. */
    const char *const *time_fields;
    const int64_t *times;
    size_t ntimes;
    size_t first_match; /* private to the pool */
} vg_work_item_t;

typedef struct vg_batch {
    vg_work_item_t *items;
    size_t n, cap;
    vg_work_alert_t *alerts;
    size_t nalerts, alerts_cap;
    char *text;
    size_t text_len, text_cap;
    char *in; /* copies of inputs added with vg_batch_add_copy */
    size_t in_len, in_cap;
    vg_match_set_t matches; /* stateful matches of every item (options.stateful) */
    int64_t *times; /* n * ntimes event times of the items */
    size_t times_cap;
    /* What the stateful matches point to instead of the released events:
     * their keys and copies of their evidence values (private to the
     * pool: offsets in keep of each match's keys and values, and of each
     * evidence value, until the batch is finished). */
    char *keep;
    size_t keep_len, keep_cap;
    size_t *keep_match, keep_match_cap;
    size_t *keep_evidence, keep_evidence_cap;
    /* private to the pool */
    int state;
    struct vg_batch *next;
} vg_batch_t;

typedef struct vg_workpool vg_workpool_t;

/* The most evaluation threads VIGIL_WORKERS may ask for. */
#define VG_MAX_WORKERS 256u

typedef struct vg_workpool_options {
    unsigned workers;      /* evaluation threads; 0 = evaluate in submit */
    size_t batch_size;     /* items per batch (default 256) */
    size_t batches;        /* batches in circulation (default 2 * workers + 2) */
    vg_event_limits_t limits;
    const char *time_field;
    bool omit_event;    /* alerts without the event (output.include_event: false) */
    size_t max_matches; /* evidence entries per alert, 0 = all */
    /* One pass per event for stateful rules: workers also evaluate the
     * stateful rules' conditions and leave on each item its stateful
     * matches with their keys and its event times (vg_work_item_t
     * .matches, .times) for the in-order state step, which then only
     * applies windows. */
    bool stateful;
    /* The pre-decode skip (vg_work_item_t.undecoded): 0 where it pays
     * (each worker stops trying when it seldom skips), 1 always tried,
     * -1 never. */
    int prefilter;
    /* A batch of at most this many items, submitted while no other is in
     * flight, is evaluated on the submitting thread: at low rates this
     * saves the two thread hand-offs (and their scheduler wake-ups, which
     * on a busy machine set the latency tail). 0 = always hand off. */
    size_t inline_max;
    /* vg_workpool_next(p, true), instead of sleeping until the oldest
     * batch is finished, evaluates the oldest batch still queued on the
     * caller's thread. For a caller with nothing else to do while it waits
     * (vigil scan): light per-event work then uses the waiting thread too
     * and needs fewer sleeps and wake-ups. Batches so evaluated do not
     * call on_done. Off for a caller whose wait must end as soon as the
     * oldest batch is done (the Kafka pipeline). */
    bool help_when_waiting;
    /* Called by a worker, with no lock held, each time it finishes a
     * batch: lets a caller that waits elsewhere (the daemon in
     * rd_kafka_consumer_poll) take the result at once. May be NULL. */
    void (*on_done)(void *arg);
    void *on_done_arg;
} vg_workpool_options_t;

/* Starts the pool for ruleset rs (which must outlive it or be replaced
 * with vg_workpool_set_ruleset). NULL on failure. */
vg_workpool_t *vg_workpool_new(const vg_ruleset_t *rs, const vg_workpool_options_t *opts);
/* Stops the threads (after finishing submitted work) and frees all. */
void vg_workpool_destroy(vg_workpool_t *p);

/* A free batch to fill, or NULL when all are in flight (take finished
 * ones back first). */
vg_batch_t *vg_workpool_acquire(vg_workpool_t *p);
/* Appends an item to the batch; false when it is full. */
bool vg_batch_add(vg_batch_t *b, const char *data, size_t len, const vg_alert_source_t *src,
                  void *opaque);
/* The same, copying data into the batch (for inputs whose buffer is
 * reused, such as a line reader's); false when full or out of memory. */
bool vg_batch_add_copy(vg_batch_t *b, const char *data, size_t len, const vg_alert_source_t *src,
                       void *opaque);
/* Adds an input that was refused for its size without being read; it is
 * reported as too large, in order with the rest. */
bool vg_batch_add_oversize(vg_batch_t *b, size_t len, const vg_alert_source_t *src,
                           void *opaque);
/* Hands a filled batch to the workers. */
void vg_workpool_submit(vg_workpool_t *p, vg_batch_t *b);
/* The oldest submitted batch once it is finished; NULL if it is not (and
 * wait is false) or nothing is in flight. */
vg_batch_t *vg_workpool_next(vg_workpool_t *p, bool wait);
/* Returns a batch taken with vg_workpool_next to the free list. */
void vg_workpool_release(vg_workpool_t *p, vg_batch_t *b);
/* Batches submitted and not yet taken back. */
size_t vg_workpool_in_flight(const vg_workpool_t *p);
/* Batches free to acquire, and batches in all (the caller's thread: the
 * free count changes only in acquire and release). */
size_t vg_workpool_free(const vg_workpool_t *p);
size_t vg_workpool_batches(const vg_workpool_t *p);
/* Bytes of rendered alerts and error texts in finished batches not yet
 * released: with the input they hold, what the pool keeps in memory. */
size_t vg_workpool_output_bytes(vg_workpool_t *p);

/* Switches to a new ruleset. Only when nothing is in flight; fails (and
 * keeps the old one) when the scanners cannot be built. */
int vg_workpool_set_ruleset(vg_workpool_t *p, const vg_ruleset_t *rs);

#endif
