/* Private structures of the stateful-rule state, shared by state.c
 * (evaluation) and state_snapshot.c (persistence). */
#ifndef VIGIL_STATE_INT_H
#define VIGIL_STATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/rule_state.h"
#include "vigil/scanner.h"
#include "strbuf.h"
#include "vigil/state.h"

#define NO_TIME INT64_MIN
#define MAX_KEYS_PER_EVENT 64
#define MAX_VALUE_BYTES 512
#define SEP_GROUP '\x1f' /* between the values of a multi-field group key */
#define SEP_VALUE '\x1e' /* first_seen: group key, then the value */
#define SEP_WINDOW '\x1d' /* digest: group key, then the window */

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
    char *fold;
    size_t fold_cap;
};

/* Tables: lookup, insertion (evicting the least recently updated key at
 * max_keys, counted in *evicted), the deadline heap. */
uint64_t vg_state_key_hash(const char *k, size_t n);
entry_t *vg_state_table_get(const table_t *t, const char *key, size_t len, uint64_t h);
entry_t *vg_state_table_add(table_t *t, const char *key, size_t len, uint64_t h,
                            uint64_t *evicted);
bool vg_state_heap_put(table_t *t, entry_t *e);
/* Empties every rule's tables, clocks and counters. */
void vg_state_clear(vg_state_t *st);

#endif
