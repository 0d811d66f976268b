/* The bounds of a rule load (daemon/engine/ruleset_compile.c): vectorscan
 * compiles in a helper process that is stopped at the load's time limit,
 * at its memory limit, or when the load is cancelled, each with an error
 * that names the bound; huge literal lists are split over several
 * databases that the scanner all searches. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_support.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"

/* One of these takes vectorscan about 7 s and hundreds of MB to compile
 * (issue 18: five of them took 71 s). */
static const char SLOW_RULES[] = "rules:\n"
                                 "  - id: slow\n"
                                 "    match: {text: {any: [ok, '/(\\w+\\s+){30}x1/']}}\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads yaml with opts; returns the ruleset (NULL when refused) and the
 * diagnostics in *d. */
static vg_ruleset_t *load(const char *yaml, const vg_ruleset_options_t *opts, vg_diags_t **d)
{
    *d = own((free_fn)vg_diags_destroy, vg_diags_new());
    vg_rule_source_t src = {"rules.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, opts, *d);
    return rs ? own((free_fn)vg_ruleset_destroy, rs) : NULL;
}

/* The load failed with one error, at line:col of rules.yaml (line 0: no
 * place), whose message contains phrase. */
static void assert_refused(const vg_ruleset_t *rs, const vg_diags_t *d, unsigned line, unsigned col,
                           const char *phrase)
{
    assert_null(rs);
    const vg_diag_t *m = vg_diags_get(d, 0);
    if (vg_diags_errors(d) != 1 || !m || m->line != line || m->col != col ||
        !strstr(m->message, phrase)) {
        vg_diags_print(d, stderr);
        fail_msg("wanted one error at %u:%u with '%s'", line, col, phrase);
    }
}

static void test_time_limit_stops_a_slow_compile(void **state)
{
    (void)state;
    alarm(30);
    vg_ruleset_options_t o = {.max_compile_seconds = 1};
    vg_diags_t *d;
    double t0 = now();
    vg_ruleset_t *rs = load(SLOW_RULES, &o, &d);
    double took = now() - t0;
    assert_refused(rs, d, 3, 30, "took longer than the limit of 1 s");
    assert_non_null(strstr(vg_diags_get(d, 0)->message, "rules.max_compile_seconds"));
    /* stopped at the limit, not when vectorscan was done */
    assert_true(took < 3.0);
    alarm(0);
}

static void test_memory_limit_stops_a_large_compile(void **state)
{
    (void)state;
    alarm(30);
    vg_ruleset_options_t o = {.max_compile_memory = 16 * 1024 * 1024};
    vg_diags_t *d;
    vg_ruleset_t *rs = load(SLOW_RULES, &o, &d);
    assert_refused(rs, d, 3, 30, "needed more than the limit of 16 MiB");
    assert_non_null(strstr(vg_diags_get(d, 0)->message, "rules.max_compile_memory"));
    alarm(0);
}

typedef struct canceller {
    volatile sig_atomic_t flag;
    int ticks;
} canceller_t;

/* The first tick (after about 500 ms of compiling) cancels the load, as
 * SIGTERM does in the daemon. */
static void cancel_on_tick(void *arg)
{
    canceller_t *c = arg;
    c->ticks++;
    c->flag = 1;
}

static void test_cancel_abandons_the_load(void **state)
{
    (void)state;
    alarm(30);
    canceller_t c = {0, 0};
    vg_ruleset_options_t o = {.cancel = &c.flag, .tick = cancel_on_tick, .tick_arg = &c};
    vg_diags_t *d;
    double t0 = now();
    vg_ruleset_t *rs = load(SLOW_RULES, &o, &d);
    double took = now() - t0;
    assert_refused(rs, d, 0, 0, "the rule load was cancelled");
    assert_int_equal(c.ticks, 1);
    assert_true(took < 2.0);
    alarm(0);
}

/* Within the bounds, the helper's databases work as in-process ones, and
 * its compile errors keep their place. */
static void test_helper_and_in_process_agree(void **state)
{
    (void)state;
    const char *bad = "rules:\n  - id: r\n    match: {field: t, matches: '/(a)\\1/'}\n";
    for (int in_process = 0; in_process < 2; in_process++) {
        vg_ruleset_options_t o = {.compile_in_process = in_process};
        vg_diags_t *d;
        vg_ruleset_t *rs = load(bad, &o, &d);
        assert_refused(rs, d, 3, 32, "cannot be compiled: Back-references are unsupported");
    }
}

/* How many rules the event matches. */
static int eval(const vg_ruleset_t *rs, const char *json)
{
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(NULL));
    assert_non_null(sc);
    vg_event_t *ev = NULL;
    char err[128];
    assert_int_equal(vg_decoder_parse(dec, json, strlen(json), &ev, err, sizeof(err)), VG_EVENT_OK);
    int n = vg_scanner_eval(sc, ev, err, sizeof(err));
    vg_event_destroy(ev);
    return n;
}

static void test_literals_over_several_databases(void **state)
{
    (void)state;
    const char *yaml = "lists:\n  l: [alpha, beta, gamma, delta, epsilon]\n"
                       "rules:\n"
                       "  - id: a\n    match: {text: {any: [alpha]}}\n"
                       "  - id: e\n    match: {text: {any: [epsilon]}}\n"
                       "  - id: all\n    match: {text: {all: $l}}\n";
    for (size_t per = 0; per < 3; per++) {
        /* 0: one database; 1 and 2: five and three */
        vg_ruleset_options_t o = {.literals_per_database = per, .compile_in_process = per == 2};
        vg_diags_t *d;
        vg_ruleset_t *rs = load(yaml, &o, &d);
        assert_non_null(rs);
        assert_int_equal(eval(rs, "{\"title\":\"alpha\"}"), 1);
        assert_int_equal(eval(rs, "{\"title\":\"epsilon\"}"), 1);
        assert_int_equal(eval(rs, "{\"title\":\"epsilon delta gamma beta alpha\"}"), 3);
        assert_int_equal(eval(rs, "{\"title\":\"zeta\"}"), 0);
    }
}

static void test_bounds_from_the_environment(void **state)
{
    (void)state;
    vg_ruleset_options_t o = {0};
    char err[256];
    unsetenv("VIGIL_MAX_COMPILE_SECONDS");
    unsetenv("VIGIL_MAX_COMPILE_MEMORY");
    assert_int_equal(vg_ruleset_options_from_env(&o, err, sizeof(err)), 0);
    assert_int_equal(o.max_compile_seconds, 0);
    assert_int_equal(o.max_compile_memory, 0);
    setenv("VIGIL_MAX_COMPILE_SECONDS", "5", 1);
    setenv("VIGIL_MAX_COMPILE_MEMORY", "512", 1);
    assert_int_equal(vg_ruleset_options_from_env(&o, err, sizeof(err)), 0);
    assert_int_equal(o.max_compile_seconds, 5);
    assert_int_equal(o.max_compile_memory, (size_t)512 * 1024 * 1024);
    static const char *const bad[] = {"0", "-1", "5s", "", "1000001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("VIGIL_MAX_COMPILE_SECONDS", bad[i], 1);
        assert_int_equal(vg_ruleset_options_from_env(&o, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "VIGIL_MAX_COMPILE_SECONDS must be a whole number"));
    }
    unsetenv("VIGIL_MAX_COMPILE_SECONDS");
    unsetenv("VIGIL_MAX_COMPILE_MEMORY");
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, cleanup)
    const struct CMUnitTest tests[] = {
        T(test_time_limit_stops_a_slow_compile), T(test_memory_limit_stops_a_large_compile),
        T(test_cancel_abandons_the_load),        T(test_helper_and_in_process_agree),
        T(test_literals_over_several_databases), T(test_bounds_from_the_environment),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
