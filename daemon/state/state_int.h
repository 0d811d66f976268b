/* Private structures of the stateful-rule state, shared by its files:
 * state.c (construction, feeding events), state_time.c (event time),
 * state_table.c (keyed tables),
 * state_window.c (aggregations, output stage, expiry), state_alert.c
 * (rendering) and state_snapshot.c (persistence). */
#ifndef VIGIL_STATE_INT_H
#define VIGIL_STATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"
#include "vigil/rule_state.h"
#include "vigil/scanner.h"
#include "vigil/state.h"

#define NO_TIME INT64_MIN
/* The separators in keys (group keys are found by vg_event_rule_keys). */
#define SEP_GROUP VG_KEY_SEP_GROUP
#define SEP_VALUE VG_KEY_SEP_VALUE
#define SEP_WINDOW VG_KEY_SEP_WINDOW

typedef enum { T_THRESHOLD, T_SPIKE, T_FIRST_SEEN, T_ABSENCE, T_THROTTLE, T_DIGEST } tkind_t;

typedef struct entry entry_t;
struct entry {
    char *key;
    size_t klen;
    uint64_t hash;
    entry_t *hnext;
    entry_t *older, *newer; /* LRU list */
    size_t hidx;            /* position in the heap, or SIZE_MAX */
    int64_t deadline;
    uint64_t seq;
    /* kind data: threshold ts[] sorted event times; spike ts[j] = count of
     * window a - j, n = bitmask of windows that fired; first_seen and
     * absence a = last seen; throttle [b, a) the open period, n the
     * suppressed count; digest a = window start, n = events, items. */
    int64_t a, b;
    uint64_t n;
    int64_t *ts;
    uint32_t nts, cts;
    char **items;
    uint32_t nitems;
};

typedef struct table {
    tkind_t kind;
    entry_t **buckets;
    size_t nbuckets, count;
    entry_t *oldest, *newest;
    entry_t **heap;
    size_t nheap, heapcap;
    uint32_t max_keys;
} table_t;

typedef struct rstate {
    const vg_rule_t *rule;
    const vg_rule_state_t *cfg;
    const vg_path_t *out_group; /* keys of the output stage of a plain rule */
    size_t nout_group;
    const char *time_field;
    const char *const *time_list; /* vg_state_input_t.time_fields last seen ... */
    size_t time_idx;              /* ... and this rule's index in it (SIZE_MAX: none) */
    table_t agg, out;
    bool has_agg, has_out;
    int64_t clock;
    uint64_t seq;
    vg_state_stats_t stats;
} rstate_t;

struct vg_state {
    const vg_ruleset_t *rs;
    const vg_rule_t *only; /* vigil test: this rule, even when disabled */
    rstate_t *rules;
    size_t nrules;
    uint64_t events;
    vg_path_t default_time;
    vg_strbuf_t sb;
    /* Decodes an event again from its bytes when an alert or a digest
     * item needs it and the input came without it (vg_state_input_t). */
    vg_decoder_t *dec;
};

/* What the aggregation decided, handed to the output stage. */
typedef struct cand {
    tkind_t kind;
    const char *key; /* group key (values joined by SEP_GROUP) */
    size_t klen;
    const vg_path_t *paths;
    size_t npaths;
    uint64_t count;
    int64_t t;               /* event time of the trigger */
    int64_t wstart, wend;    /* NO_TIME: none */
    const char *value;       /* first_seen */
    size_t vlen;
    double baseline;         /* spike */
    bool partial;            /* digest flushed early */
    const entry_t *digest;
} cand_t;

/* One call's context: where alerts go and whether it failed. */
typedef struct emitter {
    vg_state_t *st;
    const vg_event_t *ev;          /* NULL for alerts without an event, or not decoded yet */
    const char *raw;               /* the event's bytes, decoded on demand (vg_state_event) */
    size_t raw_len;
    vg_event_t *decoded;           /* what vg_state_event decoded, freed with the emitter */
    const vg_rule_match_t *match;  /* the rule's match on ev */
    const vg_alert_source_t *src;
    vg_state_emit_fn fn;
    void *ctx;
    int count;
    bool failed;
    const char *why;
} emitter_t;

/* Marks em failed for the reason why (a static string). */
static inline void vg_state_fail(emitter_t *em, const char *why)
{
    em->failed = true;
    em->why = why;
}

/* Tables: lookup, insertion (evicting the least recently updated key at
 * max_keys, counted in *evicted), the deadline heap. */
uint64_t vg_state_key_hash(const char *k, size_t n);
entry_t *vg_state_table_get(const table_t *t, const char *key, size_t len, uint64_t h);
entry_t *vg_state_table_add(table_t *t, const char *key, size_t len, uint64_t h,
                            uint64_t *evicted);
bool vg_state_heap_put(table_t *t, entry_t *e);
void vg_state_heap_remove(table_t *t, entry_t *e);
/* Unlinks e from everything and frees it. */
void vg_state_table_drop(table_t *t, entry_t *e);
/* e was updated: newest in the LRU order, next in the rule's sequence. */
void vg_state_table_touch(rstate_t *r, table_t *t, entry_t *e);
/* Frees every entry; keeps the kind and max_keys. */
void vg_state_table_clear(table_t *t);
/* Empties every rule's tables, clocks and counters. */
void vg_state_clear(vg_state_t *st);

/* The event time of ev for rule r (its time field, else the Kafka
 * timestamp), or NO_TIME. */
/* The Kafka timestamp of src as an event time, or NO_TIME. */
int64_t vg_state_kafka_time(const vg_alert_source_t *src);
int64_t vg_state_event_time(const vg_state_t *st, const rstate_t *r, const vg_event_t *ev,
                            const vg_alert_source_t *src);

/* Moves r's clock to t (when later), expiring what the new watermark
 * passes. */
void vg_state_advance_rule(emitter_t *em, rstate_t *r, int64_t t);
/* Feeds one group key of the event being applied (time t) to r's
 * aggregation or, without one, to its output stage; values are the
 * first_seen field's nvalues NUL-terminated values. */
void vg_state_feed(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t,
                   const char *values, size_t nvalues);
/* Sends digest entry e of r (partial: before its window closed). */
void vg_state_fire_digest(emitter_t *em, rstate_t *r, entry_t *e, bool partial);

/* Alerts: about the event being applied (with its evidence and a "state"
 * object), or about no single event (absence, digest). */
void vg_state_emit_event_alert(emitter_t *em, rstate_t *r, const cand_t *c, uint64_t suppressed);
void vg_state_emit_timer_alert(emitter_t *em, rstate_t *r, const cand_t *c);
/* The event being applied: given, or decoded again from its bytes (then
 * kept until vg_state_end_event). NULL with em failed when it cannot be. */
const vg_event_t *vg_state_event(emitter_t *em);
void vg_state_end_event(emitter_t *em);
/* A digest item for the event being applied (time t): malloc'd JSON or
 * NULL when out of memory. */
char *vg_state_digest_item(emitter_t *em, const rstate_t *r, int64_t t);

#endif
