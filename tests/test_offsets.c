/* The offset ledger (daemon/kafka/offsets.c): which input offset may be
 * committed, whatever order the outputs are acknowledged in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "offsets.h"

/* A caller that keeps more per partition, as the pipeline does. */
typedef struct big_part {
    vg_offsets_part_t lp;
    char *extra;
} big_part_t;

static int setup(void **state)
{
    vg_offsets_t *o = malloc(sizeof(*o));
    if (!o)
        return -1;
    vg_offsets_init(o, sizeof(vg_offsets_part_t));
    *state = o;
    return 0;
}

static int teardown(void **state)
{
    vg_offsets_clear(*state, NULL);
    free(*state);
    return 0;
}

static vg_offsets_part_t *assigned(vg_offsets_t *o, const char *topic, int32_t partition)
{
    vg_offsets_part_t *pt = vg_offsets_part(o, topic, partition, true);
    assert_non_null(pt);
    assert_true(vg_offsets_assign(o, pt));
    return pt;
}

/* Records for offsets first..first+n-1, each with outputs more holds
 * (its processing's hold already dropped). */
static void track(vg_offsets_part_t *pt, int64_t first, int n, int outputs, vg_offsets_rec_t **out)
{
    for (int i = 0; i < n; i++) {
        out[i] = vg_offsets_track(pt, first + i);
        assert_non_null(out[i]);
        for (int k = 0; k < outputs; k++)
            vg_offsets_hold(out[i]);
        assert_false(vg_offsets_release(out[i]) && outputs > 0);
    }
}

static void test_in_order(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *pt = assigned(o, "news", 0);
    assert_int_equal(vg_offsets_committable(pt, false), -1); /* nothing done yet */
    vg_offsets_rec_t *f = vg_offsets_track(pt, 10);
    assert_int_equal(pt->inflight, 1);
    assert_true(vg_offsets_release(f)); /* no outputs: done at once */
    assert_int_equal(vg_offsets_committable(pt, false), 11);
    assert_int_equal(pt->inflight, 0);
    assert_null(pt->head);
    assert_null(pt->tail);
}

static void test_out_of_order_acks(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *pt = assigned(o, "news", 0);
    vg_offsets_rec_t *r[4];
    track(pt, 100, 4, 1, r);
    assert_int_equal(pt->inflight, 4);
    /* 102 and 101 acknowledged before 100: nothing may be committed. */
    assert_false(vg_offsets_release(r[2]));
    assert_false(vg_offsets_release(r[1]));
    assert_int_equal(vg_offsets_committable(pt, false), -1);
    assert_int_equal(pt->inflight, 4);
    /* 100 is: everything up to 102 is done. */
    assert_true(vg_offsets_release(r[0]));
    assert_int_equal(vg_offsets_committable(pt, false), 103);
    assert_int_equal(pt->inflight, 1);
    assert_ptr_equal(pt->head, r[3]);
    assert_true(vg_offsets_release(r[3]));
    assert_int_equal(vg_offsets_committable(pt, false), 104);
}

static void test_several_outputs(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *pt = assigned(o, "news", 0);
    vg_offsets_rec_t *r[1];
    track(pt, 5, 1, 3, r); /* three alerts */
    assert_false(vg_offsets_release(r[0]));
    assert_false(vg_offsets_release(r[0]));
    assert_int_equal(vg_offsets_committable(pt, false), -1);
    assert_true(vg_offsets_release(r[0]));
    assert_int_equal(vg_offsets_committable(pt, false), 6);
}

static void test_partitions_apart(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *a = assigned(o, "news", 0);
    vg_offsets_part_t *b = assigned(o, "news", 1);
    vg_offsets_part_t *c = assigned(o, "trade", 0);
    assert_int_equal(o->assigned, 3);
    assert_ptr_equal(vg_offsets_part(o, "news", 1, false), b);
    assert_ptr_equal(vg_offsets_part(o, "trade", 0, true), c);
    assert_null(vg_offsets_part(o, "trade", 1, false));
    vg_offsets_rec_t *ra[2], *rb[2], *rc[1];
    track(a, 0, 2, 1, ra);
    track(b, 50, 2, 1, rb);
    track(c, 7, 1, 1, rc);
    /* A stuck output of news/0 holds back only news/0. */
    assert_true(vg_offsets_release(rb[0]));
    assert_true(vg_offsets_release(rb[1]));
    assert_true(vg_offsets_release(rc[0]));
    assert_false(vg_offsets_release(ra[1]));
    assert_int_equal(vg_offsets_committable(a, false), -1);
    assert_int_equal(vg_offsets_committable(b, false), 52);
    assert_int_equal(vg_offsets_committable(c, false), 8);
    assert_true(vg_offsets_release(ra[0]));
    assert_int_equal(vg_offsets_committable(a, false), 2);
}

static void test_failed_output_holds_back(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *pt = assigned(o, "news", 0);
    vg_offsets_rec_t *r[3];
    track(pt, 0, 3, 1, r);
    /* Offset 0's delivery failed: it is produced again, still held;
     * the later ones are acknowledged. */
    assert_false(vg_offsets_release(r[1]));
    assert_false(vg_offsets_release(r[2]));
    assert_int_equal(vg_offsets_committable(pt, false), -1);
    /* The retry is acknowledged. */
    assert_true(vg_offsets_release(r[0]));
    assert_int_equal(vg_offsets_committable(pt, false), 3);
}

static void test_revoke_and_reassign(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *pt = assigned(o, "news", 0);
    vg_offsets_rec_t *r[2];
    track(pt, 0, 2, 1, r);
    assert_true(vg_offsets_release(r[0]));
    assert_int_equal(vg_offsets_committable(pt, false), 1);
    vg_offsets_stored(pt, 1);
    /* Revoked (lost) with offset 1 still in flight: its acknowledgement
     * frees the queue but commits nothing. */
    assert_true(vg_offsets_unassign(o, pt));
    assert_false(vg_offsets_unassign(o, pt));
    assert_int_equal(o->assigned, 0);
    assert_false(vg_offsets_release(r[1]));
    assert_int_equal(vg_offsets_committable(pt, false), -1);
    assert_int_equal(pt->inflight, 0);
    /* Assigned again (the next owner committed less): it starts afresh. */
    assert_true(vg_offsets_assign(o, pt));
    assert_false(vg_offsets_assign(o, pt));
    assert_int_equal(o->assigned, 1);
    assert_int_equal(pt->stored_next, 0);
    assert_int_equal(vg_offsets_committable(pt, false), -1);
    vg_offsets_rec_t *again = vg_offsets_track(pt, 0);
    assert_true(vg_offsets_release(again));
    assert_int_equal(vg_offsets_committable(pt, false), 1);
}

static void test_gated_by_checkpoint(void **state)
{
    vg_offsets_t *o = *state;
    vg_offsets_part_t *pt = assigned(o, "news", 0);
    vg_offsets_rec_t *r[10];
    track(pt, 0, 10, 0, r); /* all done at once */
    assert_int_equal(vg_offsets_committable(pt, false), 10);
    /* Stateful rules: no checkpoint on the broker yet, nothing. */
    assert_int_equal(vg_offsets_committable(pt, true), -1);
    vg_offsets_durable(pt, 4);
    assert_int_equal(vg_offsets_committable(pt, true), 4);
    vg_offsets_stored(pt, 4);
    assert_int_equal(vg_offsets_committable(pt, true), -1); /* stored already */
    vg_offsets_durable(pt, 2);                              /* older: no step back */
    assert_int_equal(pt->durable, 4);
    vg_offsets_durable(pt, 25); /* past the acknowledged records */
    assert_int_equal(vg_offsets_committable(pt, true), 10);
    vg_offsets_forget_durable(pt);
    assert_int_equal(vg_offsets_committable(pt, true), -1);
    /* A restart from a checkpoint at 30, nothing acknowledged since. */
    vg_offsets_restart(pt, true, 30);
    assert_int_equal(vg_offsets_committable(pt, true), -1);
    vg_offsets_rec_t *f = vg_offsets_track(pt, 30);
    assert_true(vg_offsets_release(f));
    assert_int_equal(vg_offsets_committable(pt, true), 30);
}

static void free_extra(vg_offsets_part_t *lp)
{
    free(((big_part_t *)lp)->extra);
}

static void test_bigger_parts(void **state)
{
    (void)state;
    vg_offsets_t o;
    vg_offsets_init(&o, sizeof(big_part_t));
    big_part_t *bp = (big_part_t *)vg_offsets_part(&o, "news", 3, true);
    assert_non_null(bp);
    assert_null(bp->extra); /* zeroed */
    bp->extra = malloc(16);
    assert_non_null(bp->extra);
    assert_true(vg_offsets_assign(&o, &bp->lp));
    assert_non_null(vg_offsets_track(&bp->lp, 1)); /* left in flight: freed by clear */
    vg_offsets_clear(&o, free_extra);
    assert_null(o.parts);
    assert_int_equal(o.assigned, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_output_holds_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_and_reassign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gated_by_checkpoint, setup, teardown),
        cmocka_unit_test(test_bigger_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
