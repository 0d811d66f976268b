#include "vigil/workpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "path.h"
#include "prefilter_int.h"
#include "strbuf.h"
#include "vigil/rule_state.h"
#include "vigil/scanner.h"

enum { B_FREE, B_FILLING, B_QUEUED, B_WORKING, B_DONE };

typedef struct worker {
    vg_workpool_t *pool;
    pthread_t thread;
    vg_scanner_t *sc;
    vg_decoder_t *dec;
    vg_strbuf_t keys, values; /* of the stateful match being kept */
    hs_scratch_t *pf_scratch; /* for pool->pf */
    /* Events tried with the prefilter and skipped: a worker stops trying
     * where it seldom skips (most events hold a term). */
    size_t pf_tried, pf_skipped;
    bool started;
} worker_t;

struct vg_workpool {
    vg_workpool_options_t opts;
    const vg_ruleset_t *rs;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a batch was queued, or stopping */
    pthread_cond_t done_cv; /* a batch finished */
    vg_batch_t *all;        /* every batch, as an array */
    size_t nbatches;
    /* Submitted batches in submit order (linked by next): workers take
     * the first queued one, the caller takes the head back once done.
     * Free batches form a stack through the same link. */
    vg_batch_t *head, *tail, *free_list;
    size_t in_flight;
    size_t nfree; /* batches on the free list */
    atomic_size_t out_bytes; /* text of finished batches not yet released */
    bool stopping;
    /* Events that no rule can match are not decoded (prefilter.c); NULL
     * when that cannot be told for the ruleset, or with options.stateful
     * (the state step reads the time of every event). */
    vg_prefilter_t *pf;
    vg_event_limits_t limits; /* options.limits, defaults filled in */
    /* options.stateful: the time fields the state step reads */
    vg_path_t *time_paths;
    char **time_fields;
    size_t ntimes;
    worker_t *workers;
    worker_t inline_worker; /* for workers == 0 */
};

static bool text_append(vg_batch_t *b, const char *s, size_t n, size_t *off)
{
    if (b->text_len + n + 1 > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 65536;
        while (cap < b->text_len + n + 1)
            cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t)
            return false;
        b->text = t;
        b->text_cap = cap;
    }
    memcpy(b->text + b->text_len, s, n);
    *off = b->text_len;
    b->text_len += n;
    b->text[b->text_len] = '\0';
    return true;
}

static void set_error(vg_batch_t *b, vg_work_item_t *it, const char *msg)
{
    it->err_len = 0;
    if (text_append(b, msg, strlen(msg), &it->err_off))
        it->err_len = strlen(msg);
}

/* Renders the k-th match (a stateless rule) of the scanner's last
 * evaluation into the batch. */
static bool add_alert(worker_t *w, vg_batch_t *b, vg_work_item_t *it, const vg_event_t *ev,
                      size_t k)
{
    const vg_workpool_options_t *o = &w->pool->opts;
    size_t len, off;
    vg_alert_options_t ao = {.time_field = o->time_field, .omit_event = o->omit_event,
                             .max_matches = o->max_matches};
    char *a = vg_alert_render_ex(w->sc, ev, k, &it->src, &ao, &len);
    bool ok = a &&
              vg_grow((void **)&b->alerts, &b->alerts_cap, b->nalerts + 1, sizeof(*b->alerts)) &&
              text_append(b, a, len, &off);
    free(a);
    if (!ok)
        return false;
    b->alerts[b->nalerts++] = (vg_work_alert_t){vg_scanner_match(w->sc, k), off, len};
    it->nalerts++;
    return true;
}

/* Appends s[0..n) to the batch's kept bytes; *off is where. */
static bool keep_bytes(vg_batch_t *b, const char *s, size_t n, size_t *off)
{
    if (!vg_grow((void **)&b->keep, &b->keep_cap, b->keep_len + n + 1, 1))
        return false;
    if (n)
        memcpy(b->keep + b->keep_len, s, n);
    *off = b->keep_len;
    b->keep_len += n;
    return true;
}

/* Keeps what the state step needs of the stateful match taken last into
 * b->matches, so that its event ev can be released: the rule's keys on ev
 * and copies of the evidence values (one copy per value of the item,
 * whose evidence starts at ev0). The pointers are set once the batch is
 * finished (set_kept). */
static bool keep_match(worker_t *w, vg_batch_t *b, const vg_event_t *ev, size_t ev0)
{
    vg_match_set_t *ms = &b->matches;
    size_t j = ms->n - 1;
    vg_rule_match_t *m = &ms->matches[j];
    if (!vg_grow((void **)&b->keep_match, &b->keep_match_cap, 2 * ms->n, sizeof(size_t)) ||
        !vg_grow((void **)&b->keep_evidence, &b->keep_evidence_cap, ms->nevidence + 1,
                 sizeof(size_t)))
        return false;
    vg_strbuf_reset(&w->keys);
    vg_strbuf_reset(&w->values);
    vg_event_keys_t k = {.keys = &w->keys, .values = &w->values};
    if (!vg_event_rule_keys(ev, vg_rule_state(m->rule), m->evidence, m->nevidence, &k) ||
        !keep_bytes(b, w->keys.buf, w->keys.len, &b->keep_match[2 * j]) ||
        !keep_bytes(b, w->values.buf, w->values.len, &b->keep_match[2 * j + 1]))
        return false;
    m->has_keys = true;
    m->nkeys = k.nkeys;
    m->keys_dropped = k.dropped;
    m->nvalues = k.nvalues;
    m->values_len = w->values.len;
    const vg_evidence_t *evd = ms->evidence;
    for (size_t e = ms->first[j]; e < ms->first[j] + m->nevidence; e++) {
        size_t same = ev0;
        while (same < e && evd[same].value != evd[e].value)
            same++;
        if (same < e)
            b->keep_evidence[e] = b->keep_evidence[same];
        else if (!keep_bytes(b, evd[e].value, evd[e].value_len, &b->keep_evidence[e]))
            return false;
    }
    return true;
}

/* The kept bytes have stopped moving: point the matches at them. */
static void set_kept(vg_batch_t *b)
{
    vg_match_set_t *ms = &b->matches;
    for (size_t j = 0; j < ms->n; j++) {
        vg_rule_match_t *m = &ms->matches[j];
        m->keys = b->keep + b->keep_match[2 * j];
        m->values = b->keep + b->keep_match[2 * j + 1];
        for (size_t e = ms->first[j]; e < ms->first[j] + m->nevidence; e++)
            ms->evidence[e].value = b->keep + b->keep_evidence[e];
    }
}

/* The event times the state step reads, into the item's row of b->times. */
static void find_times(vg_workpool_t *p, vg_batch_t *b, vg_work_item_t *it, const vg_event_t *ev)
{
    int64_t *t = b->times + (size_t)(it - b->items) * p->ntimes;
    for (size_t k = 0; k < p->ntimes; k++)
        if (!vg_event_time(ev, &p->time_paths[k], &t[k]))
            t[k] = INT64_MIN;
}

/* Evaluates a decoded event: stateless matches become alerts, stateful
 * ones (options.stateful) are kept for the state step. */
static void eval_item(worker_t *w, vg_batch_t *b, vg_work_item_t *it, const vg_event_t *ev)
{
    const vg_workpool_options_t *o = &w->pool->opts;
    char err[256];
    size_t nstateless = 0, ev0 = b->matches.nevidence;
    int n = o->stateful ? vg_scanner_eval_all(w->sc, ev, &nstateless, err, sizeof(err))
                        : vg_scanner_eval(w->sc, ev, err, sizeof(err));
    if (!o->stateful && n > 0)
        nstateless = (size_t)n;
    for (int k = 0; k < n && !it->eval_failed; k++) {
        if ((size_t)k < nstateless
                ? add_alert(w, b, it, ev, (size_t)k)
                : vg_match_set_take(&b->matches, w->sc, (size_t)k, (size_t)k + 1) == 0 &&
                      keep_match(w, b, ev, ev0))
            continue;
        it->eval_failed = 1;
        set_error(b, it, "out of memory rendering an alert");
    }
    if (n < 0) {
        it->eval_failed = 1;
        set_error(b, it, err);
    }
    if (o->stateful && !it->eval_failed)
        find_times(w->pool, b, it, ev);
}

/* Whether the prefilter lets an event go undecoded. Every 4,096 events a
 * worker looks back: skipping fewer than one in eight, it stops trying
 * until the ruleset changes (the scan then costs more than it saves). */
#define PF_PERIOD 4096

static bool try_skip(worker_t *w, const char *data, size_t len)
{
    vg_workpool_t *p = w->pool;
    if (!p->pf || w->pf_tried == SIZE_MAX)
        return false;
    bool skip = vg_prefilter_skip(p->pf, w->pf_scratch, data, len, &p->limits);
    w->pf_skipped += skip;
    if (++w->pf_tried == PF_PERIOD) {
        w->pf_tried = w->pf_skipped < PF_PERIOD / 8 && p->opts.prefilter == 0 ? SIZE_MAX : 0;
        w->pf_skipped = 0;
    }
    return skip;
}

static void process_item(worker_t *w, vg_batch_t *b, vg_work_item_t *it)
{
    const vg_workpool_options_t *o = &w->pool->opts;
    char err[256];
    vg_event_t *ev = NULL;
    if (it->oversize) {
        snprintf(err, sizeof(err), "event of %zu bytes exceeds the limit of %zu bytes", it->len,
                 o->limits.max_bytes);
        it->status = VG_EVENT_TOO_LARGE;
        set_error(b, it, err);
        return;
    }
    const char *data = it->data ? it->data : "";
    if (try_skip(w, data, it->len)) {
        it->status = VG_EVENT_OK; /* a valid event that matches nothing */
        it->undecoded = true;
        return;
    }
    it->status = vg_decoder_parse(w->dec, data, it->len, &ev, err, sizeof(err));
    if (it->status != VG_EVENT_OK) {
        set_error(b, it, err);
        return;
    }
    eval_item(w, b, it, ev);
    /* Freed here, while its memory is still warm for the next decode:
     * the state step has what it needs of it. */
    vg_event_destroy(ev);
}

static void process_batch(worker_t *w, vg_batch_t *b)
{
    b->nalerts = 0;
    b->text_len = 0;
    b->keep_len = 0;
    vg_match_set_reset(&b->matches);
    size_t nt = w->pool->ntimes;
    bool times_ok = !w->pool->opts.stateful ||
                    vg_grow((void **)&b->times, &b->times_cap, b->n * nt + 1, sizeof(int64_t));
    for (size_t i = 0; i < b->n; i++) {
        vg_work_item_t *it = &b->items[i];
        it->nalerts = 0;
        it->first_alert = b->nalerts;
        it->first_match = b->matches.n;
        it->matches = NULL;
        it->eval_failed = 0;
        it->undecoded = false;
        it->err_len = 0;
        it->time_fields = (const char *const *)w->pool->time_fields;
        it->ntimes = nt;
        it->times = NULL;
        if (times_ok) {
            process_item(w, b, it);
        } else {
            it->eval_failed = 1;
            set_error(b, it, "out of memory");
        }
        if (it->eval_failed)
            b->matches.n = it->first_match; /* nothing of it goes to the state */
        it->nmatches = b->matches.n - it->first_match;
    }
    set_kept(b);
    /* The set has stopped moving: point items at their matches. */
    for (size_t i = 0; i < b->n; i++) {
        vg_work_item_t *it = &b->items[i];
        if (it->nmatches)
            it->matches = b->matches.matches + it->first_match;
        if (w->pool->opts.stateful && it->status == VG_EVENT_OK && !it->eval_failed)
            it->times = b->times + i * nt;
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    vg_workpool_t *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* Oldest queued first, so that finished work comes out in order. */
        vg_batch_t *b = p->head;
        while (b && b->state != B_QUEUED)
            b = b->next;
        if (!b) {
            if (p->stopping)
                break;
            pthread_cond_wait(&p->work_cv, &p->mu);
            continue;
        }
        b->state = B_WORKING;
        pthread_mutex_unlock(&p->mu);
        process_batch(w, b);
        atomic_fetch_add(&p->out_bytes, b->text_len);
        pthread_mutex_lock(&p->mu);
        b->state = B_DONE;
        pthread_cond_broadcast(&p->done_cv);
        if (p->opts.on_done) {
            pthread_mutex_unlock(&p->mu);
            p->opts.on_done(p->opts.on_done_arg);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void free_time_paths(vg_workpool_t *p)
{
    for (size_t i = 0; i < p->ntimes; i++)
        vg_path_free(&p->time_paths[i]);
    free(p->time_paths);
    free(p->time_fields);
    p->time_paths = NULL;
    p->time_fields = NULL;
    p->ntimes = 0;
}

/* The distinct time fields of rs's enabled stateful rules, the pool's
 * default first (the same default as vg_state_new's). */
static bool set_time_paths(vg_workpool_t *p, const vg_ruleset_t *rs)
{
    free_time_paths(p);
    if (!p->opts.stateful)
        return true;
    size_t nr = vg_ruleset_rule_count(rs);
    p->time_paths = calloc(nr + 1, sizeof(*p->time_paths));
    p->time_fields = calloc(nr + 1, sizeof(*p->time_fields));
    if (!p->time_paths || !p->time_fields)
        return false;
    const char *def = p->opts.time_field && *p->opts.time_field ? p->opts.time_field
                                                                  : "published_at";
    for (size_t i = 0; i <= nr; i++) {
        const vg_rule_t *r = i ? vg_ruleset_rule(rs, i - 1) : NULL;
        const vg_rule_state_t *cfg = r ? vg_rule_state(r) : NULL;
        const char *f = !r ? def : cfg && vg_rule_enabled(r) ? cfg->time_field.text : NULL;
        bool seen = !f;
        for (size_t k = 0; !seen && k < p->ntimes; k++)
            seen = strcmp(p->time_fields[k], f) == 0;
        if (seen)
            continue;
        if (!vg_path_init_str(&p->time_paths[p->ntimes], f)) {
            p->ntimes++;
            return false;
        }
        p->time_fields[p->ntimes] = p->time_paths[p->ntimes].text;
        p->ntimes++;
    }
    return true;
}

static bool worker_init(worker_t *w, vg_workpool_t *p)
{
    w->pool = p;
    vg_strbuf_init(&w->keys);
    vg_strbuf_init(&w->values);
    w->sc = vg_scanner_new(p->rs);
    w->dec = vg_decoder_new(&p->opts.limits);
    return w->sc && w->dec && (!p->pf || vg_prefilter_alloc_scratch(p->pf, &w->pf_scratch) == 0);
}

static void worker_free(worker_t *w)
{
    vg_scanner_destroy(w->sc);
    vg_decoder_destroy(w->dec);
    if (w->pf_scratch)
        hs_free_scratch(w->pf_scratch);
    w->pf_scratch = NULL;
    vg_strbuf_free(&w->keys);
    vg_strbuf_free(&w->values);
    w->sc = NULL;
    w->dec = NULL;
}

vg_workpool_t *vg_workpool_new(const vg_ruleset_t *rs, const vg_workpool_options_t *opts)
{
    vg_workpool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->opts = *opts;
    if (!p->opts.batch_size)
        p->opts.batch_size = 256;
    p->nbatches = p->opts.batches ? p->opts.batches : 2 * (size_t)p->opts.workers + 2;
    p->rs = rs;
    p->limits = vg_event_limits_or_defaults(&p->opts.limits);
    p->pf = p->opts.stateful || p->opts.prefilter < 0 ? NULL : vg_prefilter_new(rs);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->all = calloc(p->nbatches, sizeof(vg_batch_t));
    p->workers = calloc(p->opts.workers ? p->opts.workers : 1, sizeof(worker_t));
    if (!p->all || !p->workers)
        goto fail;
    for (size_t i = 0; i < p->nbatches; i++) {
        p->all[i].items = calloc(p->opts.batch_size, sizeof(vg_work_item_t));
        if (!p->all[i].items)
            goto fail;
        p->all[i].cap = p->opts.batch_size;
        p->all[i].next = p->free_list;
        p->free_list = &p->all[i];
        p->nfree++;
    }
    if (!set_time_paths(p, rs) || !worker_init(&p->inline_worker, p))
        goto fail;
    for (unsigned i = 0; i < p->opts.workers; i++) {
        if (!worker_init(&p->workers[i], p))
            goto fail;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0)
            goto fail;
        p->workers[i].started = true;
    }
    return p;
fail:
    vg_workpool_destroy(p);
    return NULL;
}

void vg_workpool_destroy(vg_workpool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; p->workers && i < p->opts.workers; i++) {
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
        worker_free(&p->workers[i]);
    }
    worker_free(&p->inline_worker);
    for (size_t i = 0; p->all && i < p->nbatches; i++) {
        vg_batch_t *b = &p->all[i];
        free(b->times);
        free(b->keep);
        free(b->keep_match);
        free(b->keep_evidence);
        free(b->items);
        vg_match_set_free(&p->all[i].matches);
        free(p->all[i].alerts);
        free(p->all[i].text);
        free(p->all[i].in);
    }
    free(p->all);
    free(p->workers);
    free_time_paths(p);
    vg_prefilter_destroy(p->pf);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}

vg_batch_t *vg_workpool_acquire(vg_workpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    vg_batch_t *b = p->free_list;
    if (b) {
        p->free_list = b->next;
        p->nfree--;
        b->next = NULL;
        b->state = B_FILLING;
        b->n = 0;
        b->in_len = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return b;
}

bool vg_batch_add(vg_batch_t *b, const char *data, size_t len, const vg_alert_source_t *src,
                  void *opaque)
{
    if (b->n == b->cap)
        return false;
    vg_work_item_t *it = &b->items[b->n++];
    memset(it, 0, sizeof(*it));
    it->data = data;
    it->len = len;
    it->src = *src;
    it->opaque = opaque;
    return true;
}

bool vg_batch_add_copy(vg_batch_t *b, const char *data, size_t len, const vg_alert_source_t *src,
                       void *opaque)
{
    if (b->n == b->cap)
        return false;
    if (b->in_len + len + 1 > b->in_cap) {
        size_t cap = b->in_cap ? b->in_cap : 65536;
        while (cap < b->in_len + len + 1)
            cap *= 2;
        char *ni = realloc(b->in, cap);
        if (!ni)
            return false;
        b->in = ni;
        b->in_cap = cap;
    }
    memcpy(b->in + b->in_len, data, len);
    b->in[b->in_len + len] = '\0';
    vg_batch_add(b, NULL, len, src, opaque);
    b->items[b->n - 1].in_off = b->in_len;
    b->items[b->n - 1].copied = true;
    b->in_len += len + 1;
    return true;
}

bool vg_batch_add_oversize(vg_batch_t *b, size_t len, const vg_alert_source_t *src, void *opaque)
{
    if (!vg_batch_add(b, NULL, len, src, opaque))
        return false;
    b->items[b->n - 1].oversize = true;
    return true;
}

void vg_workpool_submit(vg_workpool_t *p, vg_batch_t *b)
{
    /* The copy area has stopped moving: point items into it. */
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].copied)
            b->items[i].data = b->in + b->items[i].in_off;
    /* in_flight changes only on this thread (submit, next). */
    bool here = p->opts.workers == 0 || (b->n <= p->opts.inline_max && p->in_flight == 0);
    if (here) {
        process_batch(&p->inline_worker, b);
        atomic_fetch_add(&p->out_bytes, b->text_len);
    }
    pthread_mutex_lock(&p->mu);
    b->state = here ? B_DONE : B_QUEUED;
    b->next = NULL;
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->in_flight++;
    if (!here)
        pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

/* With p->mu held: rather than sleep until a worker finishes the oldest
 * batch, the caller's thread evaluates the oldest batch still queued
 * itself. For light per-event work (most events skipped undecoded) the
 * workers finish a batch in less time than a sleep and wake-up take, and
 * the reading thread, idle otherwise, is one more core's worth of work.
 * Results still come out in submission order (next takes the head only).
 * False when nothing is queued. */
static bool help_one(vg_workpool_t *p)
{
    vg_batch_t *q = p->head;
    while (q && q->state != B_QUEUED)
        q = q->next;
    if (!q)
        return false;
    q->state = B_WORKING;
    pthread_mutex_unlock(&p->mu);
    process_batch(&p->inline_worker, q);
    atomic_fetch_add(&p->out_bytes, q->text_len);
    pthread_mutex_lock(&p->mu);
    q->state = B_DONE;
    pthread_cond_broadcast(&p->done_cv);
    return true;
}

vg_batch_t *vg_workpool_next(vg_workpool_t *p, bool wait)
{
    vg_batch_t *out = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->head) {
        if (p->head->state == B_DONE) {
            out = p->head;
            p->head = out->next;
            if (!p->head)
                p->tail = NULL;
            out->next = NULL;
            p->in_flight--;
            out->state = B_FILLING; /* the caller holds it until release */
            break;
        }
        if (!wait)
            break;
        if (p->opts.help_when_waiting && help_one(p))
            continue;
        pthread_cond_wait(&p->done_cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return out;
}

/* A batch keeps its buffers for the next use, up to this size: a burst of
 * big alerts (9.7 KB each, every event matching) left every batch of a
 * pool of 64 holding ~2.5 MB that nothing needed any more. */
#define BATCH_KEEP_BYTES ((size_t)1 << 20)

void vg_workpool_release(vg_workpool_t *p, vg_batch_t *b)
{
    atomic_fetch_sub(&p->out_bytes, b->text_len);
    b->text_len = 0;
    if (b->text_cap > BATCH_KEEP_BYTES) {
        free(b->text);
        b->text = NULL;
        b->text_cap = 0;
    }
    if (b->in_cap > BATCH_KEEP_BYTES) {
        free(b->in);
        b->in = NULL;
        b->in_cap = b->in_len = 0;
    }
    if (b->keep_cap > BATCH_KEEP_BYTES) {
        free(b->keep);
        b->keep = NULL;
        b->keep_cap = b->keep_len = 0;
    }
    pthread_mutex_lock(&p->mu);
    b->state = B_FREE;
    b->n = 0;
    b->next = p->free_list;
    p->free_list = b;
    p->nfree++;
    pthread_mutex_unlock(&p->mu);
}

size_t vg_workpool_in_flight(const vg_workpool_t *p)
{
    return p->in_flight;
}

size_t vg_workpool_free(const vg_workpool_t *p)
{
    return p->nfree;
}

size_t vg_workpool_batches(const vg_workpool_t *p)
{
    return p->nbatches;
}

size_t vg_workpool_output_bytes(vg_workpool_t *p)
{
    return atomic_load(&p->out_bytes);
}

int vg_workpool_set_ruleset(vg_workpool_t *p, const vg_ruleset_t *rs)
{
    if (p->in_flight)
        return -1;
    size_t n = (size_t)p->opts.workers + 1;
    vg_scanner_t **fresh = calloc(n, sizeof(*fresh));
    if (!fresh)
        return -1;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = (fresh[i] = vg_scanner_new(rs)) != NULL;
    /* The old ruleset's time fields again when the new ones fail. */
    if (!ok || !set_time_paths(p, rs)) {
        set_time_paths(p, p->rs);
        for (size_t k = 0; k < n; k++)
            vg_scanner_destroy(fresh[k]);
        free(fresh);
        return -1;
    }
    /* Without scratch space for every worker, no prefilter: it only
     * saves time. */
    vg_prefilter_t *pf = p->opts.stateful || p->opts.prefilter < 0 ? NULL : vg_prefilter_new(rs);
    for (size_t i = 0; i < n; i++) {
        worker_t *w = i < p->opts.workers ? &p->workers[i] : &p->inline_worker;
        w->pf_tried = w->pf_skipped = 0;
        if (pf && vg_prefilter_alloc_scratch(pf, &w->pf_scratch) != 0) {
            vg_prefilter_destroy(pf);
            pf = NULL;
        }
    }
    /* Workers only touch their scanner while a batch is in flight, and
     * none is. */
    pthread_mutex_lock(&p->mu);
    vg_prefilter_destroy(p->pf);
    p->pf = pf;
    for (unsigned i = 0; i < p->opts.workers; i++) {
        vg_scanner_destroy(p->workers[i].sc);
        p->workers[i].sc = fresh[i];
    }
    vg_scanner_destroy(p->inline_worker.sc);
    p->inline_worker.sc = fresh[p->opts.workers];
    p->rs = rs;
    pthread_mutex_unlock(&p->mu);
    free(fresh);
    return 0;
}
