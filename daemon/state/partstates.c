/* The stateful-rule states of the partitions one consumer owns (see
 * include/vigil/partstates.h). A small list: a consumer owns tens of
 * partitions, and every lookup is by the message being processed. */
#include "vigil/partstates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "monotime.h"
#include "vigil/scanner.h"

typedef struct part {
    char *topic;
    int32_t partition;
    vg_state_t *st;
    vg_resume_plan_t plan;
    int64_t next;           /* offset after the last message processed; -1 none */
    int64_t checkpointed;   /* NEXT of the last checkpoint handed out; -1 none */
    uint64_t since;         /* messages since that checkpoint */
    double last_cp;         /* monotonic time of that checkpoint */
    char *pending;          /* the last checkpoint handed out ... */
    size_t pending_len;
    int64_t pending_next;
    char *confirmed;        /* ... and the last one known durable */
    size_t confirmed_len;
    struct part *nextp;
} part_t;

struct vg_partstates {
    const vg_ruleset_t *rs;
    vg_partstates_options_t o;
    char *time_field;
    vg_scanner_t *sc;
    vg_decoder_t *dec;
    bool enabled;
    part_t *parts;
};

static void part_free(part_t *p)
{
    if (!p)
        return;
    vg_state_destroy(p->st);
    free(p->topic);
    free(p->pending);
    free(p->confirmed);
    free(p);
}

vg_partstates_t *vg_partstates_new(const vg_ruleset_t *rs, const vg_partstates_options_t *opts)
{
    vg_partstates_t *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return NULL;
    if (opts)
        ps->o = *opts;
    if (!ps->o.checkpoint_events)
        ps->o.checkpoint_events = 10000;
    if (!(ps->o.checkpoint_interval_s > 0))
        ps->o.checkpoint_interval_s = 5.0;
    ps->time_field = strdup(opts && opts->time_field ? opts->time_field : "published_at");
    ps->o.time_field = ps->time_field;
    ps->rs = rs;
    ps->enabled = vg_ruleset_has_stateful(rs);
    ps->sc = vg_scanner_new(rs);
    ps->dec = vg_decoder_new(ps->o.limits.max_bytes ? &ps->o.limits : NULL);
    if (!ps->time_field || !ps->sc || !ps->dec) {
        vg_partstates_destroy(ps);
        return NULL;
    }
    return ps;
}

void vg_partstates_destroy(vg_partstates_t *ps)
{
    if (!ps)
        return;
    VG_LIST_FREE(ps->parts, nextp, part_free);
    vg_scanner_destroy(ps->sc);
    vg_decoder_destroy(ps->dec);
    free(ps->time_field);
    free(ps);
}

bool vg_partstates_enabled(const vg_partstates_t *ps) { return ps && ps->enabled; }

static part_t *find(const vg_partstates_t *ps, const char *topic, int32_t partition)
{
    for (part_t *p = ps->parts; p; p = p->nextp)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    return NULL;
}

static part_t *add(vg_partstates_t *ps, const char *topic, int32_t partition)
{
    part_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    vg_state_options_t so = {.time_field = ps->time_field};
    p->topic = strdup(topic);
    p->partition = partition;
    p->st = vg_state_new(ps->rs, &so);
    if (!p->topic || !p->st) {
        part_free(p);
        return NULL;
    }
    p->next = p->checkpointed = -1;
    vg_checkpoint_plan(-1, -1, &p->plan);
    p->last_cp = vg_monotime();
    p->nextp = ps->parts;
    ps->parts = p;
    return p;
}

void vg_partstates_revoke(vg_partstates_t *ps, const char *topic, int32_t partition)
{
    for (part_t **pp = &ps->parts; *pp; pp = &(*pp)->nextp)
        if ((*pp)->partition == partition && strcmp((*pp)->topic, topic) == 0) {
            part_t *p = *pp;
            *pp = p->nextp;
            part_free(p);
            return;
        }
}

int vg_partstates_assign(vg_partstates_t *ps, const char *topic, int32_t partition,
                         int64_t committed, const char *cp, size_t cp_len,
                         vg_resume_plan_t *plan, char *err, size_t err_size)
{
    vg_partstates_revoke(ps, topic, partition);
    part_t *p = add(ps, topic, partition);
    if (!p) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    int64_t next = -1;
    if (cp && vg_checkpoint_decode(p->st, cp, cp_len, &next, err, err_size) != 0) {
        next = -1; /* the state is empty again: start as without one */
        rc = -1;
    }
    /* A loaded checkpoint is durable: an aborted transaction goes back
     * to it. */
    if (rc == 0 && cp && (p->confirmed = malloc(cp_len ? cp_len : 1))) {
        memcpy(p->confirmed, cp, cp_len);
        p->confirmed_len = cp_len;
    }
    vg_checkpoint_plan(next, committed, &p->plan);
    p->checkpointed = next;
    p->next = next;
    *plan = p->plan;
    return rc;
}

/* What both entry points do first: the partition of src (assigned empty
 * on the fly), whether its stateless alerts are to be sent, and whether
 * the state takes the event (NULL: it does not; *rc says why). */
static part_t *begin(vg_partstates_t *ps, const vg_alert_source_t *src, bool *send_stateless,
                     int *rc, char *err, size_t err_size)
{
    *send_stateless = true;
    *rc = 0;
    if (!ps->enabled)
        return NULL;
    part_t *p = find(ps, src->topic, src->partition);
    if (!p && !(p = add(ps, src->topic, src->partition))) {
        snprintf(err, err_size, "out of memory");
        *rc = -1;
        return NULL;
    }
    *send_stateless = src->offset >= p->plan.emit_from;
    if (src->offset < p->plan.state_from)
        return NULL; /* already in the restored state */
    p->next = src->offset + 1;
    p->since++;
    return p;
}

int vg_partstates_process(vg_partstates_t *ps, const vg_alert_source_t *src, const char *payload,
                          size_t len, vg_state_emit_fn emit, void *ctx, bool *send_stateless,
                          char *err, size_t err_size)
{
    int rc;
    part_t *p = begin(ps, src, send_stateless, &rc, err, err_size);
    if (!p)
        return rc;
    vg_event_t *ev = NULL;
    if (vg_decoder_parse(ps->dec, payload ? payload : "", len, &ev, err, err_size) !=
        VG_EVENT_OK)
        return 0; /* dead-lettered by the stateless path; no event time either */
    /* Alerts of events the checkpoint is behind on were sent before. */
    bool silent = src->offset < p->plan.emit_from;
    int n = vg_state_process(p->st, ps->sc, ev, src, silent ? NULL : emit, ctx, err, err_size);
    vg_event_destroy(ev);
    return n < 0 ? -1 : silent ? 0 : n;
}

int vg_partstates_apply(vg_partstates_t *ps, const vg_work_item_t *it, vg_state_emit_fn emit,
                        void *ctx, bool *send_stateless, char *err, size_t err_size)
{
    int rc;
    part_t *p = begin(ps, &it->src, send_stateless, &rc, err, err_size);
    vg_state_input_t in;
    if (!p || !vg_state_input_from_item(&in, it))
        return rc; /* no event: dead-lettered by the stateless path */
    bool silent = it->src.offset < p->plan.emit_from;
    int n = vg_state_apply(p->st, &in, &it->src, silent ? NULL : emit, ctx, err, err_size);
    return n < 0 ? -1 : silent ? 0 : n;
}

int vg_partstates_checkpoint(vg_partstates_t *ps, const char *topic, int32_t partition,
                             bool force, char **value, size_t *len, int64_t *next)
{
    part_t *p = ps->enabled ? find(ps, topic, partition) : NULL;
    if (!p || p->next < 0 || p->next == p->checkpointed)
        return 0;
    if (!force && p->since < ps->o.checkpoint_events &&
        vg_monotime() - p->last_cp < ps->o.checkpoint_interval_s)
        return 0;
    if (vg_checkpoint_encode(p->st, p->next, value, len) != 0)
        return -1;
    /* A copy for rollback, once confirmed. */
    char *copy = malloc(*len ? *len : 1);
    if (!copy) {
        free(*value);
        *value = NULL;
        return -1;
    }
    memcpy(copy, *value, *len);
    free(p->pending);
    p->pending = copy;
    p->pending_len = *len;
    p->pending_next = p->next;
    *next = p->next;
    p->checkpointed = p->next;
    p->since = 0;
    p->last_cp = vg_monotime();
    return 1;
}

void vg_partstates_confirm(vg_partstates_t *ps, const char *topic, int32_t partition,
                           int64_t next)
{
    part_t *p = find(ps, topic, partition);
    if (!p || !p->pending || p->pending_next != next)
        return;
    free(p->confirmed);
    p->confirmed = p->pending;
    p->confirmed_len = p->pending_len;
    p->pending = NULL;
}

int vg_partstates_rollback(vg_partstates_t *ps, const char *topic, int32_t partition,
                           int64_t committed, vg_resume_plan_t *plan, char *err,
                           size_t err_size)
{
    part_t *p = find(ps, topic, partition);
    char *cp = p ? p->confirmed : NULL;
    size_t len = p ? p->confirmed_len : 0;
    if (p)
        p->confirmed = NULL; /* taken over for the reassignment */
    int rc = vg_partstates_assign(ps, topic, partition, committed, cp, len, plan, err, err_size);
    free(cp); /* assign kept its own copy as the durable one */
    return rc;
}

int vg_partstates_set_ruleset(vg_partstates_t *ps, const vg_ruleset_t *rs, size_t *dropped_rules,
                              char *err, size_t err_size)
{
    if (dropped_rules)
        *dropped_rules = 0;
    if (err_size)
        err[0] = '\0';
    vg_scanner_t *sc = vg_scanner_new(rs);
    size_t n = 0;
    for (part_t *p = ps->parts; p; p = p->nextp)
        n++;
    vg_state_t **fresh = calloc(n ? n : 1, sizeof(*fresh));
    bool ok = sc && fresh;
    vg_state_options_t so = {.time_field = ps->time_field};
    size_t i = 0;
    for (part_t *p = ps->parts; ok && p; p = p->nextp, i++) {
        size_t d = 0;
        fresh[i] = vg_state_rebuild(p->st, rs, &so, &d, err, err_size);
        ok = fresh[i] != NULL;
        if (dropped_rules)
            *dropped_rules += d;
    }
    if (!ok) {
        for (size_t k = 0; fresh && k < n; k++)
            vg_state_destroy(fresh[k]);
        free(fresh);
        vg_scanner_destroy(sc);
        if (!err[0])
            snprintf(err, err_size, "out of memory switching the stateful rules");
        return -1;
    }
    i = 0;
    for (part_t *p = ps->parts; p; p = p->nextp, i++) {
        vg_state_destroy(p->st);
        p->st = fresh[i];
    }
    free(fresh);
    vg_scanner_destroy(ps->sc);
    ps->sc = sc;
    ps->rs = rs;
    ps->enabled = vg_ruleset_has_stateful(rs);
    return 0;
}

const vg_state_t *vg_partstates_state(const vg_partstates_t *ps, const char *topic,
                                      int32_t partition)
{
    part_t *p = find(ps, topic, partition);
    return p ? p->st : NULL;
}
