/* The windows of the stateful rules: the aggregations (threshold, spike,
 * first_seen, absence), the output stage (each, throttle, digest) and
 * expiry when a rule's watermark passes a deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "strbuf.h"

/* Division rounding towards minus infinity: the window of a time before
 * 1970 starts before it. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void vg_state_fire_digest(emitter_t *em, rstate_t *r, entry_t *e, bool partial)
{
    const char *sep = memchr(e->key, SEP_WINDOW, e->klen);
    cand_t c = {.kind = T_DIGEST, .key = e->key, .klen = sep ? (size_t)(sep - e->key) : e->klen,
                .paths = r->out_group, .npaths = r->nout_group, .count = e->n,
                .wstart = e->a, .wend = e->a + r->cfg->out_window_ms, .partial = partial,
                .digest = e};
    vg_state_emit_timer_alert(em, r, &c);
}

/* Marks e as just updated and files it under its deadline; false (and
 * em failed) when out of memory. */
static bool requeue(emitter_t *em, rstate_t *r, table_t *tb, entry_t *e)
{
    vg_state_table_touch(r, tb, e);
    if (vg_state_heap_put(tb, e))
        return true;
    vg_state_fail(em, "out of memory");
    return false;
}

/* Passes a candidate alert through throttle/digest (or straight out). t is
 * the event time of the event that caused it. */
static void output(emitter_t *em, rstate_t *r, const cand_t *c, int64_t t)
{
    if (!r->has_out) {
        vg_state_emit_event_alert(em, r, c, 0);
        return;
    }
    table_t *tb = &r->out;
    int64_t w = r->cfg->out_window_ms;
    if (tb->kind == T_THROTTLE) {
        uint64_t h = vg_state_key_hash(c->key, c->klen);
        entry_t *e = vg_state_table_get(tb, c->key, c->klen, h);
        if (e && t < e->a && t >= e->b) {
            e->n++;
            r->stats.suppressed++;
            vg_state_heap_remove(tb, e); /* keep it until the next alert carries the count */
            vg_state_table_touch(r, tb, e);
            return;
        }
        uint64_t suppressed = e ? e->n : 0;
        if (!e && !(e = vg_state_table_add(tb, c->key, c->klen, h, &r->stats.evicted))) {
            vg_state_fail(em, "out of memory");
            return;
        }
        vg_state_emit_event_alert(em, r, c, suppressed);
        e->b = t;
        e->a = t + w;
        e->n = 0;
        e->deadline = e->a;
        requeue(em, r, tb, e);
        return;
    }
    /* digest */
    int64_t ws = floor_div(t, w) * w;
    char kbuf[64];
    int kl = snprintf(kbuf, sizeof(kbuf), "%c%lld", SEP_WINDOW, (long long)ws);
    vg_strbuf_t k;
    vg_strbuf_init(&k);
    vg_strbuf_append(&k, c->key, c->klen);
    vg_strbuf_append(&k, kbuf, (size_t)kl);
    if (vg_strbuf_failed(&k)) {
        vg_state_fail(em, "out of memory");
        return;
    }
    uint64_t h = vg_state_key_hash(k.buf, k.len);
    entry_t *e = vg_state_table_get(tb, k.buf, k.len, h);
    if (!e) {
        e = vg_state_table_add(tb, k.buf, k.len, h, &r->stats.evicted);
        if (e) {
            e->a = ws;
            e->deadline = ws + w;
        }
    }
    vg_strbuf_free(&k);
    if (!e) {
        vg_state_fail(em, "out of memory");
        return;
    }
    e->n++;
    if (e->nitems < r->cfg->digest_max_items) {
        char **ni = realloc(e->items, (e->nitems + 1) * sizeof(char *));
        char *item = ni ? vg_state_digest_item(em, r, t) : NULL;
        if (ni)
            e->items = ni;
        if (!item) {
            vg_state_fail(em, "out of memory");
            return;
        }
        e->items[e->nitems++] = item;
    }
    requeue(em, r, tb, e);
}

/* ---- expiry ---- */

static void expire(emitter_t *em, rstate_t *r, table_t *t, int64_t wm)
{
    while (t->nheap && t->heap[0]->deadline <= wm && !em->failed) {
        entry_t *e = t->heap[0];
        vg_state_heap_remove(t, e);
        if (t->kind == T_ABSENCE) {
            cand_t c = {.kind = T_ABSENCE, .key = e->key, .klen = e->klen,
                        .paths = r->cfg->group, .npaths = r->cfg->ngroup, .count = 0,
                        .wstart = e->a, .wend = e->a + r->cfg->window_ms};
            vg_state_emit_timer_alert(em, r, &c);
        } else if (t->kind == T_DIGEST) {
            vg_state_fire_digest(em, r, e, false);
        }
        vg_state_table_drop(t, e);
    }
}

void vg_state_advance_rule(emitter_t *em, rstate_t *r, int64_t t)
{
    if (r->clock != NO_TIME && t <= r->clock)
        return;
    r->clock = t;
    int64_t wm = t - r->cfg->lateness_ms;
    if (r->has_agg)
        expire(em, r, &r->agg, wm);
    if (r->has_out)
        expire(em, r, &r->out, wm);
}

/* ---- the aggregations ---- */

/* The aggregation entry for key, added when missing (*fresh, if asked,
 * says which); NULL (and em failed) when out of memory. */
static entry_t *get_or_add(emitter_t *em, rstate_t *r, const char *key, size_t len, bool *fresh)
{
    uint64_t h = vg_state_key_hash(key, len);
    entry_t *e = vg_state_table_get(&r->agg, key, len, h);
    if (fresh)
        *fresh = e == NULL;
    if (!e && !(e = vg_state_table_add(&r->agg, key, len, h, &r->stats.evicted)))
        vg_state_fail(em, "out of memory");
    return e;
}

static void apply_threshold(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t)
{
    const vg_rule_state_t *cfg = r->cfg;
    entry_t *e = get_or_add(em, r, key, klen, NULL);
    if (!e)
        return;
    /* Times at or before watermark - window can no longer be within a
     * window of any event still to come. */
    int64_t wm = r->clock - cfg->lateness_ms;
    uint32_t keep = 0;
    while (keep < e->nts && e->ts[keep] <= wm - cfg->window_ms)
        keep++;
    if (keep) {
        memmove(e->ts, e->ts + keep, (e->nts - keep) * sizeof(int64_t));
        e->nts -= keep;
    }
    if (e->nts == e->cts) {
        uint32_t cap = e->cts ? e->cts * 2 : 4;
        int64_t *n = realloc(e->ts, cap * sizeof(int64_t));
        if (!n) {
            vg_state_fail(em, "out of memory");
            return;
        }
        e->ts = n;
        e->cts = cap;
    }
    uint32_t i = e->nts;
    while (i > 0 && e->ts[i - 1] > t)
        i--;
    memmove(e->ts + i + 1, e->ts + i, (e->nts - i) * sizeof(int64_t));
    e->ts[i] = t;
    e->nts++;
    uint32_t n = cfg->count;
    for (uint32_t s = i + 1 >= n ? i + 1 - n : 0; s <= i && s + n <= e->nts; s++) {
        if (e->ts[s + n - 1] - e->ts[s] < cfg->window_ms) {
            cand_t c = {.kind = T_THRESHOLD, .key = key, .klen = klen, .paths = cfg->group,
                        .npaths = cfg->ngroup, .count = n, .t = t, .wstart = e->ts[s],
                        .wend = e->ts[s + n - 1]};
            /* The events that fired are used up: counting starts again. */
            vg_state_table_drop(&r->agg, e);
            output(em, r, &c, t);
            return;
        }
    }
    e->deadline = e->ts[e->nts - 1] + cfg->window_ms;
    requeue(em, r, &r->agg, e);
}

static void apply_spike(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t)
{
    const vg_rule_state_t *cfg = r->cfg;
    entry_t *e = get_or_add(em, r, key, klen, NULL);
    if (!e)
        return;
    uint32_t ring = cfg->baseline + 1;
    int64_t w = floor_div(t, cfg->window_ms);
    if (!e->ts) {
        e->ts = calloc(ring, sizeof(int64_t));
        if (!e->ts) {
            vg_state_table_drop(&r->agg, e);
            vg_state_fail(em, "out of memory");
            return;
        }
        e->nts = e->cts = ring;
        e->a = w;
    }
    if (w > e->a) {
        int64_t d = w - e->a;
        if (d >= ring) {
            memset(e->ts, 0, ring * sizeof(int64_t));
            e->n = 0;
        } else {
            memmove(e->ts + d, e->ts, (ring - (size_t)d) * sizeof(int64_t));
            memset(e->ts, 0, (size_t)d * sizeof(int64_t));
            e->n <<= d;
        }
        e->a = w;
    }
    int64_t j = e->a - w;
    if (j < ring) {
        e->ts[j]++;
        double base = 0;
        for (int64_t k = j + 1; k < ring; k++)
            base += (double)e->ts[k];
        base /= cfg->baseline;
        uint64_t bit = UINT64_C(1) << j;
        if (!(e->n & bit) && (uint64_t)e->ts[j] >= cfg->min_count &&
            (double)e->ts[j] >= cfg->factor * base) {
            e->n |= bit;
            cand_t c = {.kind = T_SPIKE, .key = key, .klen = klen, .paths = cfg->group,
                        .npaths = cfg->ngroup, .count = (uint64_t)e->ts[j], .t = t,
                        .wstart = w * cfg->window_ms, .wend = (w + 1) * cfg->window_ms,
                        .baseline = base};
            output(em, r, &c, t);
        }
    }
    e->deadline = (e->a + ring) * cfg->window_ms;
    requeue(em, r, &r->agg, e);
}

static void apply_first_seen(emitter_t *em, rstate_t *r, const char *key, size_t klen,
                             int64_t t, const char *values, size_t nvalues)
{
    const vg_rule_state_t *cfg = r->cfg;
    vg_strbuf_t k;
    vg_strbuf_init(&k);
    const char *v = values;
    for (size_t i = 0; i < nvalues && !em->failed; i++, v += strlen(v) + 1) {
        size_t vl = strlen(v);
        vg_strbuf_reset(&k);
        vg_strbuf_append(&k, key, klen);
        vg_strbuf_putc(&k, SEP_VALUE);
        vg_strbuf_append(&k, v, vl);
        if (vg_strbuf_failed(&k)) {
            vg_state_fail(em, "out of memory");
            break;
        }
        bool fresh;
        entry_t *e = get_or_add(em, r, k.buf, k.len, &fresh);
        if (!e)
            break;
        bool is_new = fresh || t - e->a >= cfg->window_ms;
        if (fresh || t > e->a)
            e->a = t;
        e->deadline = e->a + cfg->window_ms;
        if (!requeue(em, r, &r->agg, e))
            break;
        if (is_new) {
            cand_t c = {.kind = T_FIRST_SEEN, .key = key, .klen = klen, .paths = cfg->group,
                        .npaths = cfg->ngroup, .count = 1, .t = t, .wstart = NO_TIME,
                        .wend = NO_TIME, .value = v, .vlen = vl};
            output(em, r, &c, t);
        }
    }
    vg_strbuf_free(&k);
}

static void apply_absence(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t)
{
    bool fresh;
    entry_t *e = get_or_add(em, r, key, klen, &fresh);
    if (!e)
        return;
    if (fresh || t > e->a)
        e->a = t;
    e->deadline = e->a + r->cfg->window_ms;
    requeue(em, r, &r->agg, e);
}


void vg_state_feed(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t,
                   const char *values, size_t nvalues)
{
    if (!r->has_agg) {
        const vg_path_t *paths = r->out_group;
        cand_t c = {.kind = r->out.kind, .key = key, .klen = klen, .paths = paths,
                    .npaths = r->nout_group, .count = 1, .t = t, .wstart = NO_TIME,
                    .wend = NO_TIME};
        output(em, r, &c, t);
        return;
    }
    switch (r->cfg->kind) {
    case VG_AGG_THRESHOLD: apply_threshold(em, r, key, klen, t); break;
    case VG_AGG_SPIKE: apply_spike(em, r, key, klen, t); break;
    case VG_AGG_FIRST_SEEN: apply_first_seen(em, r, key, klen, t, values, nvalues); break;
    case VG_AGG_ABSENCE: apply_absence(em, r, key, klen, t); break;
    default: break;
    }
}
