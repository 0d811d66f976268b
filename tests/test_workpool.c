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

#include "vigil/alert.h"
#include "vigil/diag.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"
#include "vigil/workpool.h"

static const char *const RULES = "rules:\n"
                                 "  - id: alpha\n"
                                 "    title: Alpha\n"
                                 "    match:\n"
                                 "      text: {any: [alpha]}\n";

static vg_ruleset_t *load_text_rules(const char *yaml);

static vg_ruleset_t *load_rules(void)
{
    return load_text_rules(RULES);
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

/* With help_when_waiting, the waiting caller evaluates queued batches
 * itself: whoever evaluates each one, they come back in submission order
 * with their own alerts, and the worker reports only those it finished. */
static void test_help_when_waiting_keeps_order(void **state)
{
    (void)state;
    atomic_store(&g_done_calls, 0);
    vg_workpool_options_t o = {.workers = 1,
                               .batch_size = 16,
                               .batches = 6,
                               .limits = {1 << 20, 64},
                               .help_when_waiting = true,
                               .on_done = count_done,
                               .on_done_arg = &g_done_calls};
    vg_workpool_t *p = own((free_fn)vg_workpool_destroy, vg_workpool_new(load_rules(), &o));
    assert_non_null(p);
    for (int round = 0; round < 20; round++) {
        vg_batch_t *b[6];
        for (long i = 0; i < 6; i++) {
            fill(p, &b[i], i * 16, 16);
            vg_workpool_submit(p, b[i]);
        }
        for (long i = 0; i < 6; i++)
            take_back(p, b[i], i * 16, 16);
        assert_null(vg_workpool_next(p, true));
    }
    assert_true(atomic_load(&g_done_calls) <= 120);
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

/* ---- the pre-decode skip (daemon/engine/prefilter.c) ----
 * A pool may count an event without decoding it when no rule can match
 * it. Each input of a corpus (hand-made edge cases, the fuzz seeds and
 * regressions, the demo events, and mutations of them: every prefix and
 * structural bytes put in at every position) goes through a pool and
 * through decoding and evaluation by hand: status, reason, alerts must
 * be the same. An event skipped wrongly (one that alerts, or one the
 * decoder refuses) fails here. */

/* Every rule needs a keyword hit; the terms have phrases, '*' words,
 * escapable bytes ('/', '"') and non-ASCII text. */
static const char *const PF_RULES =
    "rules:\n"
    "  - id: words\n"
    "    title: Words\n"
    "    match:\n"
    "      text: {any: [entity list, sanction*, export* ban, u.s./china, 'say \"no\"', "
    "caf\xc3\xa9, room 7]}\n"
    "  - id: gated\n"
    "    title: Gated\n"
    "    match:\n"
    "      all:\n"
    "        - text: {any: [opec]}\n"
    "        - not: {text: {any: [japan]}}\n"
    "        - {field: type, eq: news}\n"
    "  - id: either\n"
    "    title: Either\n"
    "    match:\n"
    "      any:\n"
    "        - text: {all: [tariff, deficit], fields: [title]}\n"
    "        - all: [{text: {any: [embargo]}}, {field: n, gt: 3}]\n";

/* A rule whose term occurs nowhere: every event the decoder accepts and
 * the skip can read is skipped. */
static const char *const PF_NEVER = "rules:\n"
                                    "  - id: never\n"
                                    "    title: Never\n"
                                    "    match:\n"
                                    "      text: {any: [zqxjkvw]}\n";

static vg_ruleset_t *load_text_rules(const char *yaml)
{
    vg_diags_t *d = own((free_fn)vg_diags_destroy, vg_diags_new());
    vg_rule_source_t src = {"rules.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    if (rs == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("the rules did not load");
    }
    return own((free_fn)vg_ruleset_destroy, rs);
}

typedef struct corpus {
    char **ev;
    size_t *len;
    size_t n, cap;
} corpus_t;

static void corpus_free(void *p)
{
    corpus_t *c = p;
    for (size_t i = 0; i < c->n; i++)
        free(c->ev[i]);
    free(c->ev);
    free(c->len);
    free(c);
}

static void corpus_add(corpus_t *c, const char *s, size_t n)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->ev = realloc(c->ev, c->cap * sizeof(char *));
        c->len = realloc(c->len, c->cap * sizeof(size_t));
        assert_true(c->ev && c->len);
    }
    c->ev[c->n] = malloc(n + 1);
    assert_non_null(c->ev[c->n]);
    memcpy(c->ev[c->n], s, n);
    c->ev[c->n][n] = '\0';
    c->len[c->n++] = n;
}

/* s, every prefix of it, and s with each of a few bytes put in at each
 * position. */
static void corpus_mutate(corpus_t *c, const char *s, size_t n)
{
    static const char put[] = "\"\\{}[],: a0-.eu\n\x01\x80";
    char *m = malloc(n + 1);
    assert_non_null(m);
    corpus_add(c, s, n);
    for (size_t i = 0; i < n; i++) {
        corpus_add(c, s, i);
        for (size_t k = 0; k < sizeof(put) - 1; k++) {
            memcpy(m, s, n);
            m[i] = put[k];
            corpus_add(c, m, n);
        }
    }
    free(m);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 4096 > cap) {
            cap = cap ? 2 * cap : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t r = fread(buf + *len, 1, 4096, f);
        *len += r;
        if (r < 4096)
            break;
    }
    fclose(f);
    return own(free, buf);
}

/* The fuzz seeds and regressions of events, whole; the demo events line
 * by line (the first few mutated too). */
static void corpus_add_files(corpus_t *c)
{
    const char *root = source_dir();
    static const char *const files[] = {
        "tests/fuzz/seeds/event/news.json", "tests/fuzz/seeds/event/not-object.json",
        "tests/fuzz/seeds/event/shapes.json", "tests/fuzz/seeds/event/trade.json",
        "tests/fuzz/regressions/event/utf8-ascii-32-bytes.json"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len;
        char *s = read_file(fmt("%s/%s", root, files[i]), &len);
        assert_non_null(s);
        corpus_mutate(c, s, len);
    }
    size_t len;
    char *demo = read_file(fmt("%s/rules/demo/events.jsonl", root), &len);
    assert_non_null(demo);
    size_t lines = 0;
    for (char *l = demo, *end = demo + len; l < end; lines++) {
        char *e = memchr(l, '\n', (size_t)(end - l));
        size_t n = e ? (size_t)(e - l) : (size_t)(end - l);
        if (lines < 3)
            corpus_mutate(c, l, n);
        else
            corpus_add(c, l, n);
        l += n + 1;
    }
}

static const char *const EDGE[] = {
    "{\"title\":\"Added to the Entity List\"}",
    "{\"title\":\"Added to the entity\\n list\"}",
    "{\"title\":\"ENTITY \\t\\r  LIST\"}",
    "{\"title\":\"entity\\u0020list\"}",
    "{\"title\":\"\\u0045ntity list\"}",
    "{\"title\":\"sanc\\u0074ions\"}",
    "{\"title\":\"sanc\\btions, sanc\\ftions\"}",
    "{\"title\":\"\xc5\xbf" "anctions\"}",
    "{\"title\":\"\xe2\x84\xaa" "elvin sanctions\"}",
    "{\"title\":\"exporters  ban it\"}",
    "{\"title\":\"exports\\nban\"}",
    "{\"title\":\"U.S.\\/China talks\"}",
    "{\"title\":\"u.s./china\"}",
    "{\"title\":\"they say \\\"no\\\" here\"}",
    "{\"title\":\"CAF\xc3\x89 au lait\"}",
    "{\"title\":\"caf\\u00e9\"}",
    "{\"title\":\"room 7\", \"n\":7}",
    "{\"title\":\"x\",\"n\":7}",
    "{\"title\":\"x\",\"n\":17e0}",
    "{\"type\":\"news\",\"title\":\"OPEC meets\"}",
    "{\"type\":\"NEWS\",\"title\":\"opec meets in japan\"}",
    "{\"type\":\"trade\",\"title\":\"opec\"}",
    "{\"title\":\"Tariff and deficit\"}",
    "{\"title\":\"tariff\",\"body\":\"deficit\"}",
    "{\"title\":\"embargo\",\"n\":4}",
    "{\"title\":\"embargo\",\"n\":\"4\"}",
    "{\"title\":\"nothing here\",\"n\":[1,2,{\"a\":null,\"b\":true,\"c\":false,\"d\":-0.5e+3}]}",
    "{\"title\":\"x\",\"n\":99999999999999999999}",
    "{\"title\":\"x\",\"n\":-123456789012345678}",
    "  {\"title\" : \"x\" , \"a\" : [ ] , \"b\" : { } }  ",
    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":1}}}}}}}",
    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}",
    "{\"a\":[[[[[[[1]]]]]]]}",
    "{\"a\":[[[[[[[[1]]]]]]]]}",
    "{}",
    "{\"title\":\"x\"",
    "{\"title\":\"x\"}}",
    "{\"title\":\"x\"} x",
    "{\"a\":01}",
    "{\"a\":1.}",
    "{\"a\":.5}",
    "{\"a\":+1}",
    "{\"a\":-}",
    "{\"a\":1e}",
    "{\"a\":NaN}",
    "{\"a\":tru}",
    "{\"a\":truex}",
    "{\"a\":true1}",
    "{\"a\":\"\\x\"}",
    "{\"a\":\"\\u12\"}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\" 1}",
    "{,}",
    "{\"a\":1,}",
    "{\"a\":[1,]}",
    "{\"a\":[,1]}",
    "{\"a\":1 \"b\":2}",
    "{1:2}",
    "[1,2]",
    "\"str\"",
    "42",
    "null",
    "",
    "   ",
    "{\"a\":\"tab\tin string\"}",
    "{\"a\":\"\xff\"}",
    "{\"a\":\"ok\"}\x01",
};

/* A finished item against decoding and evaluating its input by hand. */
static void check_item(const vg_batch_t *b, const vg_work_item_t *it, vg_decoder_t *dec,
                       vg_scanner_t *sc, bool never, size_t *skipped, size_t *alerts)
{
    vg_event_t *ev = NULL;
    char err[256];
    vg_event_status_t st = vg_decoder_parse(dec, it->data, it->len, &ev, err, sizeof(err));
    assert_int_equal(it->status, st);
    assert_false(it->eval_failed);
    if (st != VG_EVENT_OK) {
        assert_false(it->undecoded);
        assert_int_equal(it->err_len, strlen(err));
        assert_memory_equal(b->text + it->err_off, err, it->err_len);
        return;
    }
    int n = vg_scanner_eval(sc, ev, err, sizeof(err));
    assert_true(n >= 0);
    assert_int_equal(it->nalerts, (size_t)n);
    *skipped += it->undecoded;
    *alerts += (size_t)n;
    for (int k = 0; k < n; k++) {
        const vg_work_alert_t *a = &b->alerts[it->first_alert + (size_t)k];
        assert_ptr_equal(a->rule, vg_scanner_match(sc, (size_t)k));
        size_t len;
        vg_alert_options_t o = {0};
        char *want = vg_alert_render_ex(sc, ev, (size_t)k, &it->src, &o, &len);
        assert_non_null(want);
        /* "time" is the wall clock: compare what follows it. */
        const char *w = strstr(want, "\"event_time\""), *g = memmem(
            b->text + a->off, a->len, "\"event_time\"", 12);
        assert_true(w && g);
        assert_int_equal(a->len - (size_t)(g - (b->text + a->off)), len - (size_t)(w - want));
        assert_memory_equal(g, w, len - (size_t)(w - want));
        free(want);
    }
    /* With a term that occurs nowhere, every input the skip can read
     * (ASCII, no \u escape, no number of 19 digits) is skipped: it
     * follows the decoder's grammar, not only part of it. */
    bool plain = !memmem(it->data, it->len, "\\u", 2);
    size_t digits = 0;
    for (size_t i = 0; plain && i < it->len; i++) {
        unsigned char c = (unsigned char)it->data[i];
        digits = c >= '0' && c <= '9' ? digits + 1 : 0;
        plain = c < 0x80 && digits < 19;
    }
    if (never && plain)
        assert_true(it->undecoded);
    vg_event_destroy(ev);
}

/* Runs the corpus through a pool on rs; returns how many were skipped,
 * and how many alerts there were in *alerts (when not NULL). */
static size_t run_corpus_alerts(const vg_ruleset_t *rs, const corpus_t *c, bool never,
                                unsigned workers, size_t *alerts)
{
    vg_workpool_options_t o = {
        .workers = workers, .batch_size = 64, .limits = {4096, 8}, .prefilter = 1};
    vg_workpool_t *p = own((free_fn)vg_workpool_destroy, vg_workpool_new(rs, &o));
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(&o.limits));
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    assert_true(p && dec && sc);
    size_t skipped = 0, nalerts = 0;
    for (size_t i = 0; i < c->n;) {
        vg_batch_t *b = vg_workpool_acquire(p);
        assert_non_null(b);
        for (; i < c->n; i++) {
            vg_alert_source_t src = {.file = "corpus", .line = i + 1, .timestamp_ms = -1};
            if (!vg_batch_add(b, c->ev[i], c->len[i], &src, NULL))
                break;
        }
        vg_workpool_submit(p, b);
        vg_batch_t *back = vg_workpool_next(p, true);
        assert_ptr_equal(back, b);
        for (size_t k = 0; k < back->n; k++)
            check_item(back, &back->items[k], dec, sc, never, &skipped, &nalerts);
        vg_workpool_release(p, back);
    }
    if (alerts)
        *alerts = nalerts;
    return skipped;
}

static size_t run_corpus(const vg_ruleset_t *rs, const corpus_t *c, bool never, unsigned workers)
{
    return run_corpus_alerts(rs, c, never, workers, NULL);
}

static corpus_t *full_corpus(void)
{
    corpus_t *c = own(corpus_free, calloc(1, sizeof(corpus_t)));
    assert_non_null(c);
    for (size_t i = 0; i < sizeof(EDGE) / sizeof(EDGE[0]); i++)
        corpus_mutate(c, EDGE[i], strlen(EDGE[i]));
    corpus_add_files(c);
    char big[5000];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"a\":1}", 7);
    corpus_add(c, big, sizeof(big)); /* over the pool's 4096 bytes */
    return c;
}

/* The keyword semantics (DESIGN rules 2, 4, 9, 13-16), one feature per
 * rule set so that no other set's terms make an event "maybe": a dash is a
 * word gap; near needs a hit of each list (and only those); an except
 * only discards hits; an entity hits by its name or any alias; a
 * case-sensitive term; apostrophes and '*' phrases; a term that
 * normalises to nothing; then all of them together. */
static const char *const PF_KW_SETS[] = {
    "rules:\n  - id: dash\n    title: Dash\n    match:\n"
    "      text: {any: [rare-earth, 'U.S.-China', e - mail, a--b, x -- ray]}\n",
    "rules:\n  - id: near\n    title: Near\n    match:\n"
    "      text: {near: [[smic], [entity list, blacklist*]], within: 2}\n",
    "rules:\n  - id: near-ordered\n    title: Near ordered\n    match:\n"
    "      text: {near: [[chip*], [ban]], within: 1, ordered: true, except: [blue chip*]}\n",
    "rules:\n  - id: except\n    title: Except\n    match:\n"
    "      text: {any: [chip*], except: [blue chip*, potato chip*]}\n",
    "lists:\n  makers:\n    - {name: Micron Technology, aliases: [MU, \"\xe7\xbe\x8e\xe5\x85\x89\"]}\n"
    "    - SMIC\n"
    "rules:\n  - id: entity\n    title: Entity\n    match:\n      text: {any: [$makers]}\n"
    "  - id: entity-all\n    title: Entity all\n    match:\n"
    "      text: {all: [$makers, tariff*]}\n",
    "rules:\n  - id: case\n    title: Case\n    match:\n"
    "      text: {any: [US, \"Stra\xc3\x9f" "e\", E-Mail], case: sensitive}\n",
    "rules:\n  - id: marks\n    title: Marks\n    match:\n"
    "      text: {any: [\"Xi\xe2\x80\x99s\", \"o'neil\", export* ban*, \"\xef\xac\x81nance\"]}\n",
    "rules:\n  - id: nothing\n    title: Nothing\n    match:\n"
    "      text: {any: [\"\xc2\xad\"]}\n",
    "lists:\n  makers: [{name: Micron Technology, aliases: [MU]}, SMIC]\n"
    "rules:\n  - id: mixed\n    title: Mixed\n    match:\n      any:\n"
    "        - text: {near: [[$makers], [entity list]], within: 3, except: [mu-mu]}\n"
    "        - text: {any: [rare-earth], case: sensitive}\n"
    "        - all: [{text: {any: [chip*], except: [blue chip*]}}, {field: type, eq: news}]\n",
};

static const char *const KW_EDGE[] = {
    "{\"title\":\"Rare earth prices\"}",
    "{\"title\":\"rare-earth magnets\"}",
    "{\"title\":\"RARE - EARTH\",\"type\":\"news\"}",
    "{\"title\":\"rare\\n-\\tearth\"}",
    "{\"title\":\"rare--earth and rare earth\"}",
    "{\"title\":\"US-China talks; U.S.-China; u.s. - china\"}",
    "{\"title\":\"e-mail, E-Mail, e mail, x--ray, x - - ray\"}",
    "{\"title\":\"a--b a - - b a-b\"}",
    "{\"title\":\"SMIC was added to the entity list\"}",
    "{\"title\":\"SMIC, entity-list\"}",
    "{\"body\":\"blacklisted: SMIC\"}",
    "{\"title\":\"SMIC one two three four entity list\"}",
    "{\"title\":\"blue chips rallied\",\"type\":\"news\"}",
    "{\"title\":\"blue chips rallied as chip stocks fell\",\"type\":\"news\"}",
    "{\"title\":\"Blue-chip gains; chips ban\"}",
    "{\"title\":\"potato chips\"}",
    "{\"title\":\"MU shares\"}",
    "{\"title\":\"Micron Technology earnings\"}",
    "{\"title\":\"micron-technology tariffs\"}",
    "{\"title\":\"MU MU entity list\"}",
    "{\"title\":\"US curbs\"}",
    "{\"title\":\"tell us\"}",
    "{\"title\":\"STRASSE Strasse\"}",
    "{\"title\":\"Xi's visit\"}",
    "{\"title\":\"XI'S\"}",
    "{\"title\":\"O'Neil said\"}",
    "{\"title\":\"Xi\\u2019s\"}",
    "{\"title\":\"Xi\xe2\x80\x99s\"}",
    "{\"title\":\"exporters banned\"}",
    "{\"title\":\"export-bans\"}",
    "{\"title\":\"finance\"}",
    "{\"title\":\"soft\xc2\xadhyphen\"}",
};

/* Every pair of a few words, with every kind of word gap between them
 * and in two cases: what the ASCII skip must read as the scanner does. */
static void corpus_add_pairs(corpus_t *c)
{
    static const char *const words[] = {
        "rare",  "earth", "smic",   "entity list", "entity-list", "blacklisted", "chip",
        "chips", "blue",  "potato", "ban",         "mu",          "micron",      "technology",
        "us",    "xi's",  "export", "e",           "mail",        "u.s.",        "china"};
    static const char *const gaps[] = {" ", "-", " - ", "\\n", "--", "\\t-", "  -\\r\\n"};
    size_t nw = sizeof(words) / sizeof(words[0]);
    for (size_t i = 0; i < nw; i++)
        for (size_t j = 0; j < nw; j++)
            for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
                char *e = fmt("{\"type\":\"news\",\"title\":\"%s%s%s\"}", words[i], gaps[g],
                              words[j]);
                if ((i + j + g) % 2)
                    for (char *p = e + 24; *p; p++)
                        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                corpus_add(c, e, strlen(e));
            }
}

static void test_prefilter_same_as_decoding(void **state)
{
    (void)state;
    corpus_t *c = full_corpus();
    size_t skipped = run_corpus(load_text_rules(PF_RULES), c, false, 0);
    /* The skip was taken (else this test would show nothing): ~3,000 of
     * ~58,000 inputs, most of which hold a term or are broken. */
    assert_true(skipped > 1000);
    assert_true(skipped < c->n);
    for (size_t i = 0; i < sizeof(KW_EDGE) / sizeof(KW_EDGE[0]); i++)
        corpus_mutate(c, KW_EDGE[i], strlen(KW_EDGE[i]));
    corpus_add_pairs(c);
    for (size_t i = 0; i < sizeof(PF_KW_SETS) / sizeof(PF_KW_SETS[0]); i++) {
        size_t alerts = 0;
        skipped = run_corpus_alerts(load_text_rules(PF_KW_SETS[i]), c, false, 0, &alerts);
        /* Both sides were seen: events skipped, and events that alert
         * (which a wrong skip would have lost), except for the rule that
         * cannot match. */
        assert_true(skipped > 1000);
        assert_true(i == 7 ? alerts == 0 : alerts > 100);
    }
}

static void test_prefilter_follows_the_decoder(void **state)
{
    (void)state;
    corpus_t *c = full_corpus();
    size_t skipped = run_corpus(load_text_rules(PF_NEVER), c, true, 2);
    assert_true(skipped > c->n / 10);
}

/* No skip where a rule can hold without a keyword (a field alone, a
 * 'not'), nor with a user regex: every event is decoded. */
static void test_prefilter_off_when_a_rule_needs_no_keyword(void **state)
{
    (void)state;
    static const char *const sets[] = {
        "rules:\n  - id: a\n    title: A\n    match: {text: {any: [alpha]}}\n"
        "  - id: f\n    title: F\n    match: {field: type, eq: news}\n",
        "rules:\n  - id: n\n    title: N\n    match: {not: {text: {any: [alpha]}}}\n",
        "rules:\n  - id: o\n    title: O\n    match:\n      any: [{text: {any: [alpha]}}, "
        "{field: n, exists: true}]\n",
        "rules:\n  - id: r\n    title: R\n    match: {text: {any: ['/al+pha/']}}\n",
    };
    corpus_t *c = own(corpus_free, calloc(1, sizeof(corpus_t)));
    assert_non_null(c);
    for (size_t i = 0; i < sizeof(EDGE) / sizeof(EDGE[0]); i++)
        corpus_add(c, EDGE[i], strlen(EDGE[i]));
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        assert_int_equal(run_corpus(load_text_rules(sets[i]), c, false, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_small_batch_inline_when_idle, cleanup),
        cmocka_unit_test_teardown(test_small_batch_queued_behind_one_in_flight, cleanup),
        cmocka_unit_test_teardown(test_order_kept_across_inline_and_workers, cleanup),
        cmocka_unit_test_teardown(test_inline_off, cleanup),
        cmocka_unit_test_teardown(test_help_when_waiting_keeps_order, cleanup),
        cmocka_unit_test_teardown(test_prefilter_same_as_decoding, cleanup),
        cmocka_unit_test_teardown(test_prefilter_follows_the_decoder, cleanup),
        cmocka_unit_test_teardown(test_prefilter_off_when_a_rule_needs_no_keyword, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
