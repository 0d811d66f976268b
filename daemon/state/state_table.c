/* The keyed tables of the stateful rules: a hash table with an LRU list
 * (eviction at max_keys) and a min-heap of deadlines in event time, ties
 * broken by a per-rule sequence number so that expiries come in an order
 * that depends on the input alone. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "list.h"
#include "state_int.h"

static void entry_free(entry_t *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->ts);
    for (uint32_t i = 0; i < e->nitems; i++)
        free(e->items[i]);
    free(e->items);
    free(e);
}

static bool heap_less(const entry_t *x, const entry_t *y)
{
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

static void heap_set(table_t *t, size_t i, entry_t *e)
{
    t->heap[i] = e;
    e->hidx = i;
}

static void heap_fix(table_t *t, size_t i)
{
    entry_t *e = t->heap[i];
    while (i > 0 && heap_less(e, t->heap[(i - 1) / 2])) {
        heap_set(t, i, t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        entry_t *best = e;
        if (l < t->nheap && heap_less(t->heap[l], best))
            m = l, best = t->heap[l];
        if (l + 1 < t->nheap && heap_less(t->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(t, i, t->heap[m]);
        i = m;
    }
    heap_set(t, i, e);
}

void vg_state_heap_remove(table_t *t, entry_t *e)
{
    if (e->hidx == SIZE_MAX)
        return;
    size_t i = e->hidx;
    e->hidx = SIZE_MAX;
    entry_t *last = t->heap[--t->nheap];
    if (i < t->nheap) {
        heap_set(t, i, last);
        heap_fix(t, i);
    }
}

bool vg_state_heap_put(table_t *t, entry_t *e)
{
    if (e->hidx != SIZE_MAX) {
        heap_fix(t, e->hidx);
        return true;
    }
    if (t->nheap == t->heapcap) {
        size_t cap = t->heapcap ? t->heapcap * 2 : 64;
        entry_t **h = realloc(t->heap, cap * sizeof(*h));
        if (!h)
            return false;
        t->heap = h;
        t->heapcap = cap;
    }
    heap_set(t, t->nheap++, e);
    heap_fix(t, e->hidx);
    return true;
}

entry_t *vg_state_table_get(const table_t *t, const char *key, size_t len, uint64_t h)
{
    if (!t->nbuckets)
        return NULL;
    for (entry_t *e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void lru_unlink(table_t *t, entry_t *e)
{
    VG_DLIST_UNLINK(t->oldest, t->newest, e, older, newer);
    e->older = e->newer = NULL;
}

static void lru_append(table_t *t, entry_t *e)
{
    VG_DLIST_APPEND(t->oldest, t->newest, e, older, newer);
}

/* Unlinks e from everything and frees it. */
void vg_state_table_drop(table_t *t, entry_t *e)
{
    entry_t **pp = &t->buckets[e->hash & (t->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(t, e);
    vg_state_heap_remove(t, e);
    t->count--;
    entry_free(e);
}

static bool table_grow(table_t *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry_t *e = t->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return true;
}

/* Adds a new key (the caller checked it is absent). At max_keys the least
 * recently updated key goes first, counted in *evicted. */
entry_t *vg_state_table_add(table_t *t, const char *key, size_t len, uint64_t h,
                           uint64_t *evicted)
{
    if (t->count >= t->max_keys && t->oldest) {
        vg_state_table_drop(t, t->oldest);
        (*evicted)++;
    }
    if (t->count >= t->nbuckets && !table_grow(t))
        return NULL;
    entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = malloc(len + 1))) {
        free(e);
        return NULL;
    }
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->klen = len;
    e->hash = h;
    e->hidx = SIZE_MAX;
    e->hnext = t->buckets[h & (t->nbuckets - 1)];
    t->buckets[h & (t->nbuckets - 1)] = e;
    lru_append(t, e);
    t->count++;
    return e;
}

void vg_state_table_touch(rstate_t *r, table_t *t, entry_t *e)
{
    e->seq = ++r->seq;
    lru_unlink(t, e);
    lru_append(t, e);
}

void vg_state_table_clear(table_t *t)
{
    VG_LIST_FREE(t->oldest, newer, entry_free);
    free(t->buckets);
    free(t->heap);
    tkind_t k = t->kind;
    uint32_t mk = t->max_keys;
    memset(t, 0, sizeof(*t));
    t->kind = k;
    t->max_keys = mk;
}

uint64_t vg_state_key_hash(const char *k, size_t n) { return vg_hash64(VG_HASH_INIT, k, n); }
