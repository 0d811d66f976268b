/* The state of stateful rules for one input partition.
 *
 * Each stateful rule has a clock (the largest event time seen in the
 * partition, by its time field) and a watermark (clock - lateness). Events
 * older than the watermark are late: counted and dropped. A rule keeps up
 * to two tables of keys: the aggregation (threshold, spike, first_seen,
 * absence) and the output stage (throttle, digest). Each table is a hash
 * table with an LRU list (eviction at max_keys, counted) and a min-heap of
 * deadlines in event time: when the watermark reaches a deadline the entry
 * expires (absence fires, a digest is sent, anything else is forgotten).
 * Ties in the heap are broken by a per-rule sequence number, so that the
 * order of expiries (and so of alerts) depends on the input alone, also
 * after a snapshot and restore. */
#include "vigil/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"
#include "state_int.h"
#include "strbuf.h"

/* ---- construction ---- */

vg_state_t *vg_state_new(const vg_ruleset_t *rs, const vg_state_options_t *opts)
{
    vg_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->rs = rs;
    st->only = opts ? opts->only_rule : NULL;
    vg_strbuf_init(&st->sb);
    const char *tf = opts && opts->time_field && *opts->time_field ? opts->time_field
                                                                   : "published_at";
    if (!vg_path_init_str(&st->default_time, tf))
        goto fail;
    st->rules = calloc(vg_ruleset_rule_count(rs) ? vg_ruleset_rule_count(rs) : 1, sizeof(rstate_t));
    if (!st->rules)
        goto fail;
    for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
        const vg_rule_t *rule = vg_ruleset_rule(rs, i);
        const vg_rule_t *only = opts ? opts->only_rule : NULL;
        if (!vg_rule_state(rule) || (only ? only != rule : !vg_rule_enabled(rule)))
            continue;
        rstate_t *r = &st->rules[st->nrules++];
        const vg_rule_state_t *c = vg_rule_state(rule);
        r->rule = rule;
        r->cfg = c;
        r->clock = NO_TIME;
        r->time_field = c->time_field.text ? c->time_field.text : st->default_time.text;
        r->has_agg = c->kind != VG_AGG_NONE;
        r->agg.kind = (tkind_t)(c->kind - 1);
        r->agg.max_keys = c->max_keys;
        r->has_out = c->out != VG_OUT_EACH;
        r->out.kind = c->out == VG_OUT_THROTTLE ? T_THROTTLE : T_DIGEST;
        r->out.max_keys = c->out_max_keys;
        r->out_group = c->out_group_set ? c->out_group : c->group;
        r->nout_group = c->out_group_set ? c->nout_group : c->ngroup;
    }
    return st;
fail:
    vg_state_destroy(st);
    return NULL;
}

void vg_state_clear(vg_state_t *st)
{
    for (size_t i = 0; i < st->nrules; i++) {
        rstate_t *r = &st->rules[i];
        vg_state_table_clear(&r->agg);
        vg_state_table_clear(&r->out);
        r->clock = NO_TIME;
        r->seq = 0;
        memset(&r->stats, 0, sizeof(r->stats));
    }
    st->events = 0;
}

void vg_state_destroy(vg_state_t *st)
{
    if (!st)
        return;
    if (st->rules)
        vg_state_clear(st);
    free(st->rules);
    vg_path_free(&st->default_time);
    vg_strbuf_free(&st->sb);
    vg_decoder_destroy(st->dec);
    free(st);
}


/* ---- processing ---- */

static int finish(emitter_t *em, char *err, size_t err_size)
{
    if (em->failed) {
        snprintf(err, err_size, "%s", em->why ? em->why : "stateful evaluation failed");
        return -1;
    }
    return em->count;
}

/* The match of rule among matches, or NULL. */
static const vg_rule_match_t *find_match(const vg_rule_match_t *matches, size_t n,
                                         const vg_rule_t *rule)
{
    for (size_t k = n; k-- > 0;)
        if (matches[k].rule == rule)
            return &matches[k];
    return NULL;
}

/* Feeds the event to rule r, which matched it (em->match): its group keys
 * (and first_seen values) go to the aggregation or the output stage. The
 * keys come with the match when the worker found them, else from the
 * event (keys and vals are buffers for them). */
static void apply_rule(emitter_t *em, rstate_t *r, int64_t t, vg_strbuf_t *keys,
                       vg_strbuf_t *vals)
{
    const vg_rule_match_t *m = em->match;
    vg_event_keys_t k = {.keys = keys, .values = vals};
    const char *key = m->keys, *values = m->values;
    if (m->has_keys) {
        k.nkeys = m->nkeys;
        k.dropped = m->keys_dropped;
        k.nvalues = m->nvalues;
    } else {
        const vg_event_t *ev = vg_state_event(em);
        vg_strbuf_reset(keys);
        vg_strbuf_reset(vals);
        if (!ev)
            return;
        if (!vg_event_rule_keys(ev, r->cfg, m->evidence, m->nevidence, &k)) {
            vg_state_fail(em, "out of memory");
            return;
        }
        key = keys->buf;
        values = vals->buf;
    }
    r->stats.keys_dropped += k.dropped;
    if (r->has_agg && r->cfg->kind == VG_AGG_FIRST_SEEN && k.nvalues == 0)
        return;
    for (size_t i = 0; i < k.nkeys && !em->failed; i++, key += strlen(key) + 1)
        vg_state_feed(em, r, key, strlen(key), t, values, k.nvalues);
}

bool vg_state_input_from_item(vg_state_input_t *in, const vg_work_item_t *it)
{
    *in = (vg_state_input_t){.raw = it->data, .raw_len = it->len, .matches = it->matches,
                             .nmatches = it->nmatches, .time_fields = it->time_fields,
                             .times = it->times, .ntimes = it->ntimes};
    return it->times != NULL;
}

/* The event time of the input for rule r: the one found already for its
 * time field (the index is remembered per rule: the list of a pool stays
 * the same from event to event), else read from the event. */
static int64_t input_time(const vg_state_t *st, rstate_t *r, const vg_state_input_t *in,
                          const vg_alert_source_t *src)
{
    if (in->ntimes) {
        if (r->time_list != in->time_fields || r->time_idx >= in->ntimes) {
            r->time_list = in->time_fields;
            r->time_idx = SIZE_MAX;
            for (size_t k = 0; k < in->ntimes && r->time_idx == SIZE_MAX; k++)
                if (strcmp(in->time_fields[k], r->time_field) == 0)
                    r->time_idx = k;
        }
        if (r->time_idx != SIZE_MAX) {
            int64_t t = in->times[r->time_idx];
            return t != INT64_MIN ? t : vg_state_kafka_time(src);
        }
    }
    return in->event ? vg_state_event_time(st, r, in->event, src) : vg_state_kafka_time(src);
}

int vg_state_apply(vg_state_t *st, const vg_state_input_t *in, const vg_alert_source_t *src,
                   vg_state_emit_fn emit, void *ctx, char *err, size_t err_size)
{
    const vg_rule_match_t *matches = in->matches;
    size_t nmatches = in->nmatches;
    emitter_t em = {.st = st, .ev = in->event, .raw = in->raw, .raw_len = in->raw_len,
                    .src = src, .fn = emit, .ctx = ctx};
    st->events++;
    if (st->nrules == 0)
        return 0;
    vg_strbuf_t keys, vals;
    vg_strbuf_init(&keys);
    vg_strbuf_init(&vals);
    for (size_t i = 0; i < st->nrules && !em.failed; i++) {
        rstate_t *r = &st->rules[i];
        r->stats.events++;
        int64_t t = input_time(st, r, in, src);
        if (t == NO_TIME) {
            if (r->clock == NO_TIME) {
                r->stats.untimed++;
                continue;
            }
            t = r->clock; /* no time of its own: it happened "now" */
        } else if (r->clock != NO_TIME && t < r->clock - r->cfg->lateness_ms) {
            r->stats.late++;
            continue;
        }
        vg_state_advance_rule(&em, r, t);
        em.match = find_match(matches, nmatches, r->rule);
        if (em.match && !em.failed)
            apply_rule(&em, r, t, &keys, &vals);
    }
    vg_strbuf_free(&keys);
    vg_strbuf_free(&vals);
    vg_state_end_event(&em);
    return finish(&em, err, err_size);
}

int vg_state_process(vg_state_t *st, vg_scanner_t *sc, const vg_event_t *ev,
                     const vg_alert_source_t *src, vg_state_emit_fn emit, void *ctx, char *err,
                     size_t err_size)
{
    if (st->nrules == 0) {
        st->events++;
        return 0;
    }
    int nm = st->only ? vg_scanner_eval_rule(sc, ev, st->only, err, err_size)
                      : vg_scanner_eval_stateful(sc, ev, err, err_size);
    if (nm < 0)
        return -1;
    vg_match_set_t ms;
    vg_match_set_init(&ms);
    if (vg_match_set_take(&ms, sc, 0, (size_t)nm) != 0) {
        vg_match_set_free(&ms);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    vg_state_input_t in = {.event = ev, .matches = ms.matches, .nmatches = ms.n};
    int n = vg_state_apply(st, &in, src, emit, ctx, err, err_size);
    vg_match_set_free(&ms);
    return n;
}

int vg_state_advance(vg_state_t *st, int64_t time_ms, vg_state_emit_fn emit, void *ctx,
                     char *err, size_t err_size)
{
    emitter_t em = {.st = st, .fn = emit, .ctx = ctx};
    for (size_t i = 0; i < st->nrules && !em.failed; i++)
        vg_state_advance_rule(&em, &st->rules[i], time_ms);
    return finish(&em, err, err_size);
}

int vg_state_flush(vg_state_t *st, vg_state_emit_fn emit, void *ctx, char *err,
                   size_t err_size)
{
    emitter_t em = {.st = st, .fn = emit, .ctx = ctx};
    for (size_t i = 0; i < st->nrules && !em.failed; i++) {
        rstate_t *r = &st->rules[i];
        if (!r->has_out || r->out.kind != T_DIGEST)
            continue;
        while (r->out.nheap && !em.failed) {
            entry_t *e = r->out.heap[0];
            vg_state_fire_digest(&em, r, e, true);
            vg_state_table_drop(&r->out, e);
        }
    }
    return finish(&em, err, err_size);
}

/* ---- statistics ---- */

static void add_stats(vg_state_stats_t *to, const vg_state_stats_t *s)
{
    to->late += s->late;
    to->untimed += s->untimed;
    to->evicted += s->evicted;
    to->keys_dropped += s->keys_dropped;
    to->alerts += s->alerts;
    to->suppressed += s->suppressed;
}

void vg_state_stats(const vg_state_t *st, vg_state_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->events = st->events;
    for (size_t i = 0; i < st->nrules; i++) {
        add_stats(out, &st->rules[i].stats);
        out->keys += st->rules[i].agg.count + st->rules[i].out.count;
    }
}

bool vg_state_rule_stats(const vg_state_t *st, const vg_rule_t *rule, vg_state_stats_t *out)
{
    for (size_t i = 0; i < st->nrules; i++)
        if (st->rules[i].rule == rule) {
            *out = st->rules[i].stats;
            out->keys = st->rules[i].agg.count + st->rules[i].out.count;
            return true;
        }
    return false;
}

size_t vg_state_rule_count(const vg_state_t *st) { return st->nrules; }
const vg_rule_t *vg_state_rule(const vg_state_t *st, size_t i) { return st->rules[i].rule; }
