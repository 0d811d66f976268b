/* The Prometheus registry: what a scrape shows (text format 0.0.4), label
 * escaping, histograms, series removal, health, and concurrent use by an
 * updating and a rendering thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "vigil/metrics.h"

static void destroy_metrics(void *p)
{
    vg_metrics_destroy(p);
}

static vg_metrics_t *new_metrics(void)
{
    vg_metrics_t *m = vg_metrics_new();
    assert_non_null(m);
    return own(destroy_metrics, m);
}

static char *render(vg_metrics_t *m)
{
    size_t len;
    char *text = vg_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return own(free, text);
}

static void test_counters_and_gauges(void **state)
{
    vg_metrics_t *m = new_metrics();
    static const char *const topic[] = {"topic"};
    vg_metric_t *c = vg_metrics_counter(m, "vigil_events_consumed_total", "Events consumed.",
                                        topic, 1);
    vg_metric_t *g = vg_metrics_gauge(m, "vigil_rules_loaded", "Rules.", NULL, 0);
    assert_non_null(c);
    assert_non_null(g);
    vg_metric_add(c, (const char *[]){"news"}, 1);
    vg_metric_add(c, (const char *[]){"news"}, 2);
    vg_metric_add(c, (const char *[]){"trade"}, 0);
    vg_metric_set(g, NULL, 12);
    assert_string_equal(render(m), "# HELP vigil_events_consumed_total Events consumed.\n"
                                   "# TYPE vigil_events_consumed_total counter\n"
                                   "vigil_events_consumed_total{topic=\"news\"} 3\n"
                                   "vigil_events_consumed_total{topic=\"trade\"} 0\n"
                                   "# HELP vigil_rules_loaded Rules.\n"
                                   "# TYPE vigil_rules_loaded gauge\n"
                                   "vigil_rules_loaded 12\n");
    assert_true(vg_metric_value(c, (const char *[]){"news"}) == 3);
    assert_true(isnan(vg_metric_value(c, (const char *[]){"absent"})));
    /* The same registration again is the same family; a clash is refused. */
    assert_ptr_equal(vg_metrics_counter(m, "vigil_events_consumed_total", "x", topic, 1), c);
    assert_null(vg_metrics_gauge(m, "vigil_events_consumed_total", "x", topic, 1));
    assert_null(vg_metrics_counter(m, "vigil_events_consumed_total", "x", NULL, 0));
    /* Names Prometheus would not accept. */
    assert_null(vg_metrics_counter(m, "2fast", "x", NULL, 0));
    assert_null(vg_metrics_counter(m, "a-b", "x", NULL, 0));
    assert_null(vg_metrics_counter(m, "ok", "x", (const char *[]){"le"}, 1));
    assert_null(vg_metrics_counter(m, "ok", "x", (const char *[]){"__x"}, 1));
    assert_null(vg_metrics_counter(m, "ok", "x", (const char *[]){"a:b"}, 1));
}

static void test_escaping_and_numbers(void **state)
{
    vg_metrics_t *m = new_metrics();
    vg_metric_t *g = vg_metrics_gauge(m, "g", "Help with \\ and\nnewline.",
                                      (const char *[]){"a", "b"}, 2);
    vg_metric_set(g, (const char *[]){"q\"uote", "back\\slash\nnl"}, 0.1);
    vg_metric_set(g, (const char *[]){"x", "y"}, -2.5e-7);
    vg_metric_set(g, (const char *[]){"big", "y"}, 1e300);
    vg_metric_set(g, (const char *[]){"inf", "y"}, INFINITY);
    vg_metric_set(g, (const char *[]){"nan", "y"}, NAN);
    assert_string_equal(render(m), "# HELP g Help with \\\\ and\\nnewline.\n"
                                   "# TYPE g gauge\n"
                                   "g{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 0.1\n"
                                   "g{a=\"x\",b=\"y\"} -2.5e-07\n"
                                   "g{a=\"big\",b=\"y\"} 1e+300\n"
                                   "g{a=\"inf\",b=\"y\"} +Inf\n"
                                   "g{a=\"nan\",b=\"y\"} NaN\n");
}

static void test_histogram(void **state)
{
    vg_metrics_t *m = new_metrics();
    static const double bounds[] = {0.005, 0.1, 1};
    vg_metric_t *h = vg_metrics_histogram(m, "vigil_processing_seconds", "Latency.", bounds, 3);
    assert_non_null(h);
    vg_metric_observe(h, 0.001);
    vg_metric_observe(h, 0.005); /* le is inclusive */
    vg_metric_observe(h, 0.5);
    vg_metric_observe(h, 7);
    assert_string_equal(render(m), "# HELP vigil_processing_seconds Latency.\n"
                                   "# TYPE vigil_processing_seconds histogram\n"
                                   "vigil_processing_seconds_bucket{le=\"0.005\"} 2\n"
                                   "vigil_processing_seconds_bucket{le=\"0.1\"} 2\n"
                                   "vigil_processing_seconds_bucket{le=\"1\"} 3\n"
                                   "vigil_processing_seconds_bucket{le=\"+Inf\"} 4\n"
                                   "vigil_processing_seconds_sum 7.506\n"
                                   "vigil_processing_seconds_count 4\n");
    assert_true(vg_metric_value(h, NULL) == 4);
    static const double unsorted[] = {1, 0.5};
    assert_null(vg_metrics_histogram(m, "h2", "x", unsorted, 2));
}

static void test_remove_and_replace(void **state)
{
    vg_metrics_t *m = new_metrics();
    vg_metric_t *lag = vg_metrics_gauge(m, "lag", "Lag.", (const char *[]){"topic", "partition"},
                                        2);
    /* Enough series to make the table grow and rehash. */
    for (int i = 0; i < 100; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        vg_metric_set(lag, (const char *[]){"news", id}, i);
    }
    for (int i = 0; i < 100; i += 2) {
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        vg_metric_remove(lag, (const char *[]){"news", id});
    }
    vg_metric_remove(lag, (const char *[]){"news", "nope"});
    for (int i = 0; i < 100; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        double v = vg_metric_value(lag, (const char *[]){"news", id});
        if (i % 2)
            assert_true(v == i);
        else
            assert_true(isnan(v));
    }
    vg_metric_t *info = vg_metrics_gauge(m, "info", "Info.", (const char *[]){"hash"}, 1);
    vg_metric_replace(info, (const char *[]){"aaaa"}, 1);
    vg_metric_replace(info, (const char *[]){"bbbb"}, 1);
    char *text = render(m);
    assert_null(strstr(text, "aaaa"));
    assert_non_null(strstr(text, "info{hash=\"bbbb\"} 1\n"));
    assert_non_null(strstr(text, "lag{topic=\"news\",partition=\"99\"} 99\n"));
    assert_null(strstr(text, "partition=\"98\""));
}

static void test_null_is_harmless(void **state)
{
    assert_null(vg_metrics_counter(NULL, "x", "x", NULL, 0));
    vg_metric_add(NULL, NULL, 1);
    vg_metric_set(NULL, NULL, 1);
    vg_metric_observe(NULL, 1);
    vg_metric_remove(NULL, NULL);
    vg_metric_replace(NULL, NULL, 1);
    vg_metrics_set_health(NULL, "x");
    vg_metrics_destroy(NULL);
    assert_null(vg_metrics_render(NULL, NULL));
}

static void test_health(void **state)
{
    vg_metrics_t *m = new_metrics();
    char why[64];
    assert_false(vg_metrics_health(m, 60, why, sizeof(why)));
    assert_string_equal(why, "starting");
    vg_metrics_set_health(m, NULL);
    assert_true(vg_metrics_health(m, 60, why, sizeof(why)));
    vg_metrics_set_health(m, "consumer: all brokers down");
    assert_false(vg_metrics_health(m, 60, why, sizeof(why)));
    assert_string_equal(why, "consumer: all brokers down");
    /* Nobody updated it for longer than allowed: the loop is stuck. */
    vg_metrics_set_health(m, NULL);
    assert_false(vg_metrics_health(m, -1, why, sizeof(why)));
    assert_non_null(strstr(why, "main loop has not reported"));
}

/* The pipeline's thread updates while the HTTP thread renders. */
static void *update_loop(void *arg)
{
    vg_metric_t **f = arg;
    for (int i = 0; i < 20000; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%d", i % 50);
        vg_metric_add(f[0], (const char *[]){id}, 1);
        vg_metric_observe(f[1], i % 7 * 0.01);
        if (i % 100 == 0)
            vg_metric_remove(f[0], (const char *[]){"3"});
    }
    return NULL;
}

static void test_threads(void **state)
{
    vg_metrics_t *m = new_metrics();
    static const double b[] = {0.01, 0.05};
    vg_metric_t *f[] = {vg_metrics_counter(m, "c_total", "C.", (const char *[]){"id"}, 1),
                        vg_metrics_histogram(m, "h_seconds", "H.", b, 2)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, update_loop, f), 0);
    for (int i = 0; i < 200; i++) {
        size_t len;
        char *text = vg_metrics_render(m, &len);
        assert_non_null(text);
        free(text);
    }
    pthread_join(t, NULL);
    assert_true(vg_metric_value(f[1], NULL) == 20000);
    assert_true(vg_metric_value(f[0], (const char *[]){"4"}) == 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counters_and_gauges, cleanup),
        cmocka_unit_test_teardown(test_escaping_and_numbers, cleanup),
        cmocka_unit_test_teardown(test_histogram, cleanup),
        cmocka_unit_test_teardown(test_remove_and_replace, cleanup),
        cmocka_unit_test_teardown(test_null_is_harmless, cleanup),
        cmocka_unit_test_teardown(test_health, cleanup),
        cmocka_unit_test_teardown(test_threads, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
