/* The evaluation pool (include/vigil/workpool.h): batches come back in the
 * order they were submitted whether workers or the submitting thread
 * evaluated them; small batches submitted while nothing is in flight are
 * evaluated at once on the submitting thread (inline_max); the workers
 * report each finished batch through on_done. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_support.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/diag.h"
#include "vigil/ruleset.h"
#include "vigil/workpool.h"

static const char *const RULES = "rules:\n"
                                 "  - id: alpha\n"
                                 "    title: Alpha\n"
                                 "    match:\n"
                                 "      text: {any: [alpha]}\n";

static vg_ruleset_t *load_rules(void)
{
    vg_diags_t *d = own((free_fn)vg_diags_destroy, vg_diags_new());
    vg_rule_source_t src = {"rules.yaml", RULES, strlen(RULES)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    if (rs == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("the rules did not load");
    }
    return own((free_fn)vg_ruleset_destroy, rs);
}

static atomic_int g_done_calls;

static void count_done(void *arg)
{
    assert_ptr_equal(arg, &g_done_calls);
    atomic_fetch_add(&g_done_calls, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (at most 5 s) until on_done has been called n times. */
static void wait_done_calls(int n)
{
    for (int i = 0; i < 500 && atomic_load(&g_done_calls) < n; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&g_done_calls), n);
}

static vg_workpool_t *new_pool(const vg_ruleset_t *rs, unsigned workers, size_t inline_max)
{
    atomic_store(&g_done_calls, 0);
    vg_workpool_options_t o = {.workers = workers,
                               .batch_size = 16,
                               .limits = {1 << 20, 64},
                               .inline_max = inline_max,
                               .on_done = count_done,
                               .on_done_arg = &g_done_calls};
    vg_workpool_t *p = vg_workpool_new(rs, &o);
    assert_non_null(p);
    return own((free_fn)vg_workpool_destroy, p);
}

/* Event k: alerts when k is even; its source offset is k. */
static void fill(vg_workpool_t *p, vg_batch_t **out, long first, size_t n)
{
    vg_batch_t *b = vg_workpool_acquire(p);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        long k = first + (long)i;
        char *ev = fmt("{\"k\":%ld,\"title\":\"%s news\"}", k, k % 2 ? "beta" : "alpha");
        vg_alert_source_t src = {.topic = "news", .partition = 0, .offset = k,
                                 .timestamp_ms = -1};
        assert_true(vg_batch_add_copy(b, ev, strlen(ev), &src, NULL));
    }
    *out = b;
}

/* Checks a finished batch holding events first..first+n-1. */
static void check_batch(const vg_batch_t *b, long first, size_t n)
{
    assert_int_equal(b->n, n);
    for (size_t i = 0; i < n; i++) {
        const vg_work_item_t *it = &b->items[i];
        long k = first + (long)i;
        assert_int_equal(it->src.offset, k);
        assert_int_equal(it->status, VG_EVENT_OK);
        assert_int_equal(it->nalerts, k % 2 ? 0 : 1);
        if (it->nalerts) {
            const vg_work_alert_t *a = &b->alerts[it->first_alert];
            assert_string_equal(vg_rule_id(a->rule), "alpha");
            char *want = fmt("\"offset\":%ld", k);
            assert_non_null(memmem(b->text + a->off, a->len, want, strlen(want)));
        }
    }
}

/* Takes the next finished batch back (waiting), checks that it is b with
 * events first..first+n-1, and returns it to the pool. */
static void take_back(vg_workpool_t *p, const vg_batch_t *b, long first, size_t n)
{
    vg_batch_t *back = vg_workpool_next(p, true);
    assert_ptr_equal(back, b);
    check_batch(back, first, n);
    vg_workpool_release(p, back);
}

/* A small batch with nothing in flight is finished when submit returns,
 * without a worker; a bigger one goes to a worker. */
static void test_small_batch_inline_when_idle(void **state)
{
    (void)state;
    vg_workpool_t *p = new_pool(load_rules(), 1, 4);
    vg_batch_t *b;
    fill(p, &b, 0, 3);
    vg_workpool_submit(p, b);
    vg_batch_t *back = vg_workpool_next(p, false);
    assert_ptr_equal(back, b);
    check_batch(back, 0, 3);
    vg_workpool_release(p, back);
    sleep_ms(50);
    assert_int_equal(atomic_load(&g_done_calls), 0);

    fill(p, &b, 3, 5);
    vg_workpool_submit(p, b);
    take_back(p, b, 3, 5);
    wait_done_calls(1);
}

/* While a batch is in flight, even a small one goes to the workers (it
 * must not overtake the first). */
static void test_small_batch_queued_behind_one_in_flight(void **state)
{
    (void)state;
    vg_workpool_t *p = new_pool(load_rules(), 1, 4);
    vg_batch_t *b1, *b2;
    fill(p, &b1, 0, 16);
    vg_workpool_submit(p, b1);
    fill(p, &b2, 16, 2);
    vg_workpool_submit(p, b2);
    take_back(p, b1, 0, 16);
    take_back(p, b2, 16, 2);
    wait_done_calls(2);
    assert_null(vg_workpool_next(p, false));
}

/* Takes the oldest batch back, if any is in flight: it must start where
 * the previous one ended (*expect) and be the *taken-th submitted. */
static bool take_oldest(vg_workpool_t *p, const long *first_of, size_t *taken, long *expect)
{
    vg_batch_t *back = vg_workpool_next(p, true);
    if (!back)
        return false;
    assert_int_equal(first_of[*taken], *expect);
    check_batch(back, *expect, back->n);
    *expect += (long)back->n;
    (*taken)++;
    vg_workpool_release(p, back);
    return true;
}

/* Batches of every size, some evaluated inline, some by two workers, come
 * back in submission order with the right alerts. */
static void test_order_kept_across_inline_and_workers(void **state)
{
    (void)state;
    vg_workpool_t *p = new_pool(load_rules(), 2, 4);
    long next = 0, expect = 0;
    size_t sizes[] = {1, 16, 3, 2, 16, 16, 4, 5, 1, 16, 2, 9, 16, 1};
    size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
    /* Outstanding batches and their first events, oldest first. */
    long first_of[64];
    size_t nout = 0, taken = 0;
    for (size_t i = 0; i < nsizes; i++) {
        vg_batch_t *b = vg_workpool_acquire(p);
        while (!b) { /* all in flight: take the oldest back */
            assert_true(take_oldest(p, first_of, &taken, &expect));
            b = vg_workpool_acquire(p);
        }
        vg_workpool_release(p, b);
        fill(p, &b, next, sizes[i]);
        first_of[nout++] = next;
        next += (long)sizes[i];
        vg_workpool_submit(p, b);
    }
    while (take_oldest(p, first_of, &taken, &expect))
        assert_true(taken <= nout);
    assert_int_equal(taken, nsizes);
    assert_int_equal(expect, next);
}

/* inline_max 0: every batch goes to a worker, even when idle. */
static void test_inline_off(void **state)
{
    (void)state;
    vg_workpool_t *p = new_pool(load_rules(), 1, 0);
    for (int round = 0; round < 3; round++) {
        vg_batch_t *b;
        fill(p, &b, round, 1);
        vg_workpool_submit(p, b);
        take_back(p, b, round, 1);
    }
    wait_done_calls(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_small_batch_inline_when_idle, cleanup),
        cmocka_unit_test_teardown(test_small_batch_queued_behind_one_in_flight, cleanup),
        cmocka_unit_test_teardown(test_order_kept_across_inline_and_workers, cleanup),
        cmocka_unit_test_teardown(test_inline_off, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
