/* Rule reloads (SIGHUP, or the rule files changed): the new ruleset is
 * built on a thread of its own while consumption goes on, and swapped in
 * by the main loop between two events, or not at all when it is not
 * valid. */
#include <stdio.h>

#include "pipeline_int.h"
#include "vigil/log.h"

static void *reload_thread(void *arg)
{
    reloader_t *r = arg;
    r->result = r->opts->reload_fn ? r->opts->reload_fn(r->opts->reload_arg) : NULL;
    atomic_store(&r->done, 1);
    /* An idle main loop waits up to 100 ms in the consumer poll: the new
     * rules should not. */
    vg_pl_wake(r->p);
    return NULL;
}

static void count_failed(pipeline_t *p)
{
    p->stats.reloads_failed++;
    vg_metric_add(p->m.reloads, (const char *[]){"failed"}, 1);
}

/* The pool could not take nrs (out of memory): the partition states go
 * back to the current rules, or, when even that fails, the run stops. */
static void pool_refused(pipeline_t *p, vg_ruleset_t *nrs)
{
    char e[256];
    if (p->st.ps && vg_partstates_set_ruleset(p->st.ps, p->rs, NULL, e, sizeof(e)) != 0) {
        /* The partition states now point into nrs, which goes next:
         * stopping is the only safe way on (offsets stay where their
         * alerts and checkpoints are). */
        snprintf(p->fatal, sizeof(p->fatal),
                 "a failed reload could not put the stateful rules back (%.200s); stopping", e);
        vg_log(VG_LOG_ERROR, "msg=\"%s\"", p->fatal);
        p->rs_doomed = nrs; /* destroyed after the states at the end of the run */
        return;
    }
    vg_ruleset_destroy(nrs);
    count_failed(p);
    vg_log(VG_LOG_ERROR, "msg=\"reload failed (out of memory); keeping the current rules\"");
}

static void apply_reload(pipeline_t *p, vg_ruleset_t *nrs)
{
    if (!nrs) {
        count_failed(p);
        vg_log(VG_LOG_ERROR, "msg=\"reload failed; keeping the current rules\" ruleset=%s",
               vg_ruleset_hash(p->rs));
        return;
    }
    /* Events consumed before the reload are evaluated with the old rules,
     * those after with the new: none twice, none skipped. */
    vg_pl_finish_consumed(p);
    if (vg_pl_state_reload(p, nrs) != 0) {
        vg_ruleset_destroy(nrs);
        count_failed(p);
        vg_log(VG_LOG_ERROR, "msg=\"reload failed; keeping the current rules\"");
        return;
    }
    if (vg_workpool_set_ruleset(p->pool, nrs) != 0) {
        pool_refused(p, nrs);
        return;
    }
    vg_ruleset_destroy(p->rs);
    p->rs = nrs;
    p->stats.reloads_ok++;
    vg_metric_add(p->m.reloads, (const char *[]){"ok"}, 1);
    vg_pl_health_note_ruleset(p, nrs);
    vg_log(VG_LOG_INFO, "msg=\"rules reloaded\" rules=%zu ruleset=%s", vg_ruleset_rule_count(nrs),
           vg_ruleset_hash(nrs));
}

static void reload_start(pipeline_t *p, reloader_t *r)
{
    r->opts = p->opts;
    r->p = p;
    r->result = NULL;
    atomic_store(&r->done, 0);
    if (pthread_create(&r->thread, NULL, reload_thread, r) == 0) {
        r->running = true;
        return;
    }
    /* No thread to spare: compile here, stalling the stream briefly. */
    reload_thread(r);
    apply_reload(p, r->result);
}

/* Swaps in a finished reload; with wait, waits for it first. */
static void reload_poll(pipeline_t *p, reloader_t *r, bool wait)
{
    if (!r->running || (!wait && !atomic_load(&r->done)))
        return;
    pthread_join(r->thread, NULL);
    r->running = false;
    apply_reload(p, r->result);
}

void vg_pl_reload_tick(pipeline_t *p, reloader_t *r)
{
    const vg_pipeline_opts_t *opts = p->opts;
    if (opts->reload && *opts->reload && !r->running) {
        *opts->reload = 0;
        reload_start(p, r);
    }
    reload_poll(p, r, false);
}

void vg_pl_reload_finish(pipeline_t *p, reloader_t *r)
{
    reload_poll(p, r, true);
}
