/* End-to-end tests of stateful rules in the real `vigil run` daemon: the
 * windows of a threshold rule must survive kill -9 restarts, a partition
 * moving to another instance, and (exactly-once) aborted transactions,
 * without forgetting or repeating a window.
 *
 * The reference is `vigil scan` over the same events, one file per input
 * partition (scan keeps one state per file, as the daemon keeps one per
 * partition). Alerts are compared by (rule, group, window_start,
 * window_end), which identifies a threshold alert: the events that fire
 * are used up, so a group never fires the same window twice. The daemon's
 * alerts must be exactly that set; at-least-once may repeat an alert
 * (counted and printed), exactly-once may not. A SIGHUP reload keeps the
 * windows of unchanged rules, and takes the /metrics series of a removed
 * rule away.
 *
 * Needs a real broker: VIGIL_TEST_BROKERS=host:port, or the bootstrap
 * file of tests/kafka/kafka-broker.sh named by VIGIL_TEST_BROKER_STATE
 * (skips with 77 otherwise). VIGIL_BIN names the vigil binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_support.h"

static char brokers[256];
static rd_kafka_t *producer;
static char tmpdir[256];
static const char *vigil_bin;

/* ---- helpers ---- */

static void create_topic(const char *name, int partitions)
{
    char e[600];
    if (e2e_create_topic(producer, name, partitions, NULL, false, e, sizeof(e)) != 0)
        fail_msg("%s", e);
}

/* ---- children ---- */

static pid_t start_vigil(const char *config, const char *log)
{
    pid_t pid = e2e_start_vigil(vigil_bin, config, log, false);
    assert_true(pid >= 0);
    return pid;
}

/* Sends sig and waits (bounded); returns the wait status. */
static int stop_vigil(pid_t pid, int sig)
{
    int status = 0;
    e2e_stop_child(pid, sig, 60, &status);
    return status;
}

/* ---- events and the reference ---- */

enum { GROUPS = 24 };

typedef struct event {
    char json[256];
    int group;
} event_t;

/* n events of GROUPS groups, event times 10 s to 7 min apart: a group's
 * events are sometimes close enough for 3 in an hour, sometimes not. */
static event_t *gen_events(int n, unsigned seed)
{
    event_t *ev = calloc((size_t)n, sizeof(*ev));
    assert_non_null(ev);
    unsigned x = seed;
    long long t = 1700000000;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        ev[i].group = (int)((x >> 16) % GROUPS);
        x = x * 1103515245u + 12345u;
        t += 10 + (long long)((x >> 16) % 410);
        snprintf(ev[i].json, sizeof(ev[i].json),
                 "{\"type\":\"news\",\"id\":\"e%d\",\"entity\":\"Co%d\",\"published_at\":%lld,"
                 "\"title\":\"story %d\"}",
                 i, ev[i].group, t, i);
    }
    return ev;
}

static const char *const RULES =
    "rules:\n"
    "  - id: surge\n"
    "    severity: high\n"
    "    match: {field: type, eq: news}\n"
    "    threshold: {count: 3, window: 1h, group_by: entity}\n";

/* A set of alert keys "rule|group|window_start|window_end". */
typedef struct keyset {
    char **k;
    size_t n, cap;
} keyset_t;

static void keyset_add(keyset_t *s, const char *key)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->k = realloc(s->k, s->cap * sizeof(*s->k));
        assert_non_null(s->k);
    }
    s->k[s->n++] = strdup(key);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keyset_free(keyset_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->k[i]);
    free(s->k);
    memset(s, 0, sizeof(*s));
}

/* The key of one alert (JSON text); false when it is not a stateful one. */
static bool alert_key(const char *json, size_t len, char *out, size_t size)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    assert_non_null(o);
    json_object *st, *rule, *group, *ws, *we;
    bool ok = json_object_object_get_ex(o, "state", &st) &&
              json_object_object_get_ex(o, "rule", &rule) &&
              json_object_object_get_ex(st, "group", &group) &&
              json_object_object_get_ex(st, "window_start", &ws) &&
              json_object_object_get_ex(st, "window_end", &we);
    if (ok)
        snprintf(out, size, "%s|%s|%s|%s", json_object_get_string(rule),
                 json_object_to_json_string_ext(group, JSON_C_TO_STRING_PLAIN),
                 json_object_get_string(ws), json_object_get_string(we));
    json_object_put(o);
    return ok;
}

/* `vigil scan` over one file per partition: the expected keys. */
static void reference(const char *name, const event_t *ev, int n, int partitions, keyset_t *out)
{
    char rules[512], cmd[4096], files[2048] = "";
    snprintf(rules, sizeof(rules), "%s/%s.rules.yaml", tmpdir, name);
    assert_int_equal(e2e_write_file(rules, RULES), 0);
    for (int p = 0; p < partitions; p++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s.p%d.jsonl", tmpdir, name, p);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < n; i++)
            if (ev[i].group % partitions == p)
                fprintf(f, "%s\n", ev[i].json);
        fclose(f);
        strcat(files, " '");
        strcat(files, path);
        strcat(files, "'");
    }
    snprintf(cmd, sizeof(cmd), "'%s' scan --rules '%s'%s 2>/dev/null", vigil_bin, rules, files);
    FILE *pf = popen(cmd, "r");
    assert_non_null(pf);
    char line[8192], key[512];
    while (fgets(line, sizeof(line), pf))
        if (alert_key(line, strlen(line), key, sizeof(key)))
            keyset_add(out, key);
    pclose(pf);
    qsort(out->k, out->n, sizeof(*out->k), cmp_str);
    for (size_t i = 1; i < out->n; i++)
        if (strcmp(out->k[i - 1], out->k[i]) == 0)
            fail_msg("the reference repeats %s: the key is not unique", out->k[i]);
    assert_true(out->n > 50);
}

/* ---- one daemon setup ---- */

typedef struct env {
    char in[96], alerts[128], dlq[128], group[128], state[128];
    char rules[512], config[512];
} env_t;

/* metrics_port 0: no metrics endpoint. */
static void make_env(env_t *e, const char *name, int partitions, const char *props,
                     const char *extra, int metrics_port)
{
    e2e_unique_name(e->in, sizeof(e->in), "e2es", name);
    snprintf(e->alerts, sizeof(e->alerts), "%s.alerts", e->in);
    snprintf(e->dlq, sizeof(e->dlq), "%s.dlq", e->in);
    snprintf(e->group, sizeof(e->group), "%s.group", e->in);
    snprintf(e->state, sizeof(e->state), "%s.state", e->in);
    create_topic(e->in, partitions);
    create_topic(e->alerts, 1);
    create_topic(e->dlq, 1);
    snprintf(e->rules, sizeof(e->rules), "%s/%s.rules.yaml", tmpdir, e->in);
    snprintf(e->config, sizeof(e->config), "%s/%s.config.yaml", tmpdir, e->in);
    assert_int_equal(e2e_write_file(e->rules, RULES), 0);
    char buf[4096], listen_at[64] = "off";
    if (metrics_port)
        snprintf(listen_at, sizeof(listen_at), "\"127.0.0.1:%d\"", metrics_port);
    snprintf(buf, sizeof(buf),
             "kafka:\n"
             "  brokers: \"%s\"\n"
             "  group: %s\n"
             "  properties:\n"
             "    session.timeout.ms: \"6000\"\n"
             "    heartbeat.interval.ms: \"500\"\n"
             "    auto.commit.interval.ms: \"100\"\n"
             "%s"
             "input:\n"
             "  topics: [%s]\n"
             "output:\n"
             "  topic: %s\n"
             "  dead_letter_topic: %s\n"
             "rules:\n"
             "  paths: [%s]\n"
             "state:\n"
             "  checkpoint_topic: %s\n"
             "  checkpoint_interval_ms: 200\n"
             "  checkpoint_events: 50\n"
             "%s"
             "metrics:\n"
             "  listen: %s\n",
             brokers, e->group, props ? props : "", e->in, e->alerts, e->dlq, e->rules,
             e->state, extra ? extra : "", listen_at);
    assert_int_equal(e2e_write_file(e->config, buf), 0);
}

/* Starts vigil on e's config, logging to log (tmpdir/IN.log), and waits
 * until it owns a partition's state: fails the test, with the log, when it
 * does not within 60 s. */
static pid_t start_assigned(const env_t *e, char *log, size_t size, const char *what)
{
    snprintf(log, size, "%s/%s.log", tmpdir, e->in);
    pid_t pid = start_vigil(e->config, log);
    if (!e2e_wait_in_file(log, "partition state", 1, 60)) {
        e2e_dump_file(log, 0);
        fail_msg("%s: vigil did not get its partition", what);
    }
    return pid;
}

static void produce_event(const env_t *e, const event_t *ev, int partitions)
{
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(e->in),
                                    RD_KAFKA_V_PARTITION(ev->group % partitions),
                                    RD_KAFKA_V_VALUE((void *)ev->json, strlen(ev->json)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(producer, 50);
    assert_int_equal(err, 0);
}

/* ---- reading the alerts back ---- */

typedef struct reader {
    rd_kafka_t *c;
    keyset_t got; /* every stateful alert read, repeats included */
} reader_t;

static void reader_open(reader_t *r, const char *topic, bool read_committed)
{
    char e[600];
    memset(r, 0, sizeof(*r));
    const char *const props[] = {"group.id", "e2e-state-reader", "isolation.level",
                                 read_committed ? "read_committed" : "read_uncommitted", NULL};
    r->c = e2e_kafka_client(RD_KAFKA_CONSUMER, brokers, props, NULL, e, sizeof(e));
    if (!r->c)
        fail_msg("%s", e);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(r->c, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
}

static void reader_close(reader_t *r)
{
    rd_kafka_consumer_close(r->c);
    rd_kafka_destroy(r->c);
    keyset_free(&r->got);
}

/* How many distinct keys of ref have been read. */
static size_t covered(const reader_t *r, const keyset_t *ref)
{
    char **k = malloc((r->got.n ? r->got.n : 1) * sizeof(*k));
    assert_non_null(k);
    memcpy(k, r->got.k, r->got.n * sizeof(*k));
    qsort(k, r->got.n, sizeof(*k), cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < r->got.n; i++)
        if ((i == 0 || strcmp(k[i - 1], k[i]) != 0) &&
            bsearch(&k[i], ref->k, ref->n, sizeof(*ref->k), cmp_str))
            n++;
    free(k);
    return n;
}

static void read_for(reader_t *r, double seconds)
{
    double deadline = e2e_now_s() + seconds;
    while (e2e_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->c, 50);
        if (!m)
            continue;
        char key[512];
        if (!m->err && alert_key(m->payload, m->len, key, sizeof(key)))
            keyset_add(&r->got, key);
        rd_kafka_message_destroy(m);
    }
}

/* Reads until every key of ref arrived (or timeout), then settle seconds
 * more for extras. */
static void read_until(reader_t *r, const keyset_t *ref, double timeout, double settle)
{
    double deadline = e2e_now_s() + timeout;
    while (e2e_now_s() < deadline && covered(r, ref) < ref->n)
        read_for(r, 0.2);
    read_for(r, settle);
}

/* Compares what was read with ref: fails on a missing or unexpected
 * window, returns the number of repeats. */
static size_t compare(const char *what, reader_t *r, const keyset_t *ref)
{
    qsort(r->got.k, r->got.n, sizeof(*r->got.k), cmp_str);
    size_t dups = 0, extra = 0, missing = 0;
    for (size_t i = 0; i < r->got.n; i++) {
        if (i > 0 && strcmp(r->got.k[i - 1], r->got.k[i]) == 0) {
            dups++;
            continue;
        }
        if (!bsearch(&r->got.k[i], ref->k, ref->n, sizeof(*ref->k), cmp_str)) {
            if (extra++ < 5)
                fprintf(stderr, "%s: unexpected alert %s\n", what, r->got.k[i]);
        }
    }
    for (size_t i = 0; i < ref->n; i++)
        if (!bsearch(&ref->k[i], r->got.k, r->got.n, sizeof(*r->got.k), cmp_str) &&
            missing++ < 5)
            fprintf(stderr, "%s: missing alert %s\n", what, ref->k[i]);
    fprintf(stderr,
            "%s: %zu windows expected (vigil scan), %zu alerts read, %zu missing, %zu "
            "unexpected, %zu repeated\n",
            what, ref->n, r->got.n, missing, extra, dups);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);
    return dups;
}

/* ---- the tests ---- */

/* Events are produced in rounds while the daemon runs; each round kills
 * it with SIGKILL at a random point (mid-stream: some of the round's
 * events are not produced yet) and restarts it. */
static size_t kill_rounds(const char *name, const char *props, const char *extra,
                          bool read_committed, int rounds, unsigned seed)
{
    enum { N = 3600 };
    event_t *ev = gen_events(N, seed);
    keyset_t ref = {0};
    reference(name, ev, N, 1, &ref);
    env_t e;
    make_env(&e, name, 1, props, extra, 0);
    char log[512];
    snprintf(log, sizeof(log), "%s/%s.log", tmpdir, e.in);
    reader_t r;
    reader_open(&r, e.alerts, read_committed);
    srand(seed);
    int per = N / (rounds + 1), next = 0;
    for (int round = 0; round < rounds; round++) {
        pid_t pid = start_vigil(e.config, log);
        if (!e2e_wait_in_file(log, "partition state", (size_t)round + 1, 60)) {
            e2e_dump_file(log, 0);
            fail_msg("%s: vigil did not get its partition", name);
        }
        /* About 1.5 s of events per round, the kill somewhere in its
         * second half: the daemon has been working for a while by then. */
        int kill_at = next + per / 2 + rand() % (per / 2);
        for (; next < (round + 1) * per; next++) {
            produce_event(&e, &ev[next], 1);
            if (next % 4 == 0) {
                rd_kafka_poll(producer, 0);
                read_for(&r, 0.01);
            }
            if (next == kill_at) {
                stop_vigil(pid, SIGKILL);
                fprintf(stderr, "%s: kill -9 at event %d, %zu alerts read so far\n", name,
                        next, r.got.n);
            }
        }
        rd_kafka_flush(producer, 10000);
        read_for(&r, 0.05);
    }
    pid_t pid = start_vigil(e.config, log);
    for (; next < N; next++)
        produce_event(&e, &ev[next], 1);
    rd_kafka_flush(producer, 10000);
    read_until(&r, &ref, 90, 1.5);
    int st = stop_vigil(pid, SIGTERM);
    if (covered(&r, &ref) < ref.n)
        e2e_dump_file(log, 0);
    size_t restored = e2e_count_in_file(log, "partition state restored");
    fprintf(stderr, "%s: %d kill -9 restarts, %zu starts resumed from a checkpoint\n", name,
            rounds, restored);
    size_t dups = compare(name, &r, &ref);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(restored >= (size_t)rounds - 1);
    reader_close(&r);
    keyset_free(&ref);
    free(ev);
    return dups;
}

static void test_kill9_at_least_once(void **state)
{
    (void)state;
    /* Static membership: a restarted instance takes its partition back
     * at once instead of after the session timeout. */
    kill_rounds("kill9", "    group.instance.id: e2e-state-a\n", NULL, false, 5, 4242);
}

static void test_kill9_exactly_once(void **state)
{
    (void)state;
    size_t dups = kill_rounds("eos", "    group.instance.id: e2e-state-eos\n",
                              "delivery: exactly-once\n", true, 4, 777);
    assert_int_equal(dups, 0);
}

/* Two partitions: instance A owns both, then B joins the group and one
 * partition moves to it with its windows open. */
static void test_partition_move(void **state)
{
    (void)state;
    enum { N = 2400 };
    event_t *ev = gen_events(N, 99);
    keyset_t ref = {0};
    reference("move", ev, N, 2, &ref);
    env_t e;
    make_env(&e, "move", 2, NULL, NULL, 0);
    char loga[512], logb[512];
    snprintf(loga, sizeof(loga), "%s/%s.a.log", tmpdir, e.in);
    snprintf(logb, sizeof(logb), "%s/%s.b.log", tmpdir, e.in);
    reader_t r;
    reader_open(&r, e.alerts, false);
    pid_t a = start_vigil(e.config, loga);
    if (!e2e_wait_in_file(loga, "partition state", 2, 60)) {
        e2e_dump_file(loga, 0);
        fail_msg("instance A did not get both partitions");
    }
    int half = N / 2;
    for (int i = 0; i < half; i++)
        produce_event(&e, &ev[i], 2);
    rd_kafka_flush(producer, 10000);
    read_for(&r, 1.0);
    size_t before = r.got.n;
    pid_t b = start_vigil(e.config, logb);
    if (!e2e_wait_in_file(logb, "partition state", 1, 60)) {
        e2e_dump_file(loga, 0);
        e2e_dump_file(logb, 0);
        fail_msg("instance B got no partition");
    }
    for (int i = half; i < N; i++)
        produce_event(&e, &ev[i], 2);
    rd_kafka_flush(producer, 10000);
    read_until(&r, &ref, 60, 1.5);
    int sa = stop_vigil(a, SIGTERM), sb = stop_vigil(b, SIGTERM);
    size_t moved = e2e_count_in_file(logb, "partition state restored");
    fprintf(stderr, "move: %zu alerts before B joined; B resumed %zu partitions from "
                    "checkpoints\n",
            before, moved);
    if (moved < 1 || covered(&r, &ref) < ref.n) {
        e2e_dump_file(loga, 0);
        e2e_dump_file(logb, 0);
    }
    compare("move", &r, &ref);
    assert_true(before > 0 && before < ref.n);
    assert_true(moved >= 1);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    reader_close(&r);
    keyset_free(&ref);
    free(ev);
}

/* SIGHUP with a changed rule file (a stateless rule added, the threshold
 * rule unchanged): the open windows carry over to the new rules. */
static void test_reload_keeps_windows(void **state)
{
    (void)state;
    enum { N = 1600 };
    event_t *ev = gen_events(N, 2024);
    keyset_t ref = {0};
    reference("reload", ev, N, 1, &ref);
    env_t e;
    make_env(&e, "reload", 1, NULL, NULL, 0);
    reader_t r;
    reader_open(&r, e.alerts, false);
    char log[512];
    pid_t pid = start_assigned(&e, log, sizeof(log), "reload");
    for (int i = 0; i < N / 2; i++)
        produce_event(&e, &ev[i], 1);
    rd_kafka_flush(producer, 10000);
    /* Some windows must have fired (and others be open) before the
     * reload: wait for the first alerts, however slow the machine. */
    read_for(&r, 1.0);
    for (int i = 0; i < 60 && r.got.n == 0; i++)
        read_for(&r, 0.5);
    size_t before = r.got.n;
    char rules[1024];
    snprintf(rules, sizeof(rules),
             "%s"
             "  - id: never\n"
             "    match: {field: type, eq: nothing-is-of-this-type}\n",
             RULES);
    assert_int_equal(e2e_write_file(e.rules, rules), 0);
    kill(pid, SIGHUP);
    if (!e2e_wait_in_file(log, "rules reloaded", 1, 30)) {
        e2e_dump_file(log, 0);
        fail_msg("reload: the rules were not reloaded");
    }
    for (int i = N / 2; i < N; i++)
        produce_event(&e, &ev[i], 1);
    rd_kafka_flush(producer, 10000);
    read_until(&r, &ref, 60, 1.0);
    int st = stop_vigil(pid, SIGTERM);
    if (covered(&r, &ref) < ref.n)
        e2e_dump_file(log, 0);
    fprintf(stderr, "reload: %zu alerts before the reload\n", before);
    size_t dups = compare("reload", &r, &ref);
    assert_int_equal(dups, 0);
    assert_true(before > 0 && before < ref.n);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    reader_close(&r);
    keyset_free(&ref);
    free(ev);
}

/* Polls /metrics (up to timeout s) until the series `name{labels}` is
 * there (want) or gone (!want); true when it got there. */
static bool wait_series(int port, const char *series, bool want, double timeout)
{
    static char body[1 << 16];
    return e2e_wait_http(port, "/metrics", 200, series, want, timeout, body, sizeof(body), NULL);
}

/* A reload that removes a stateful rule removes its vigil_state_* series
 * from /metrics; the kept rule's series stay. */
static void test_reload_state_series(void **state)
{
    (void)state;
    int port = e2e_free_port();
    assert_true(port > 0);
    env_t e;
    make_env(&e, "series", 1, NULL, NULL, port);
    static const char *const GONE = "  - id: gone\n"
                                    "    match: {field: type, eq: news}\n"
                                    "    threshold: {count: 1000, window: 1h, group_by: entity}\n";
    char rules[1024];
    snprintf(rules, sizeof(rules), "%s%s", RULES, GONE);
    assert_int_equal(e2e_write_file(e.rules, rules), 0);
    char log[512];
    pid_t pid = start_assigned(&e, log, sizeof(log), "series");
    event_t *ev = gen_events(20, 7);
    for (int i = 0; i < 20; i++)
        produce_event(&e, &ev[i], 1);
    rd_kafka_flush(producer, 10000);
    char gone[512], kept[512];
    snprintf(gone, sizeof(gone), "vigil_state_keys{rule=\"gone\",topic=\"%s\",partition=\"0\"}",
             e.in);
    snprintf(kept, sizeof(kept), "vigil_state_keys{rule=\"surge\",topic=\"%s\",partition=\"0\"}",
             e.in);
    bool before = wait_series(port, gone, true, 30) && wait_series(port, kept, true, 5);
    assert_int_equal(e2e_write_file(e.rules, RULES), 0);
    kill(pid, SIGHUP);
    bool reloaded = e2e_wait_in_file(log, "rules reloaded", 1, 30);
    /* Published once a second: 5 s is plenty, and a stale series stays
     * for ever. */
    bool removed = reloaded && wait_series(port, gone, false, 5);
    bool stayed = wait_series(port, kept, true, 5);
    int st = stop_vigil(pid, SIGTERM);
    if (!before || !reloaded || !removed || !stayed)
        e2e_dump_file(log, 0);
    assert_true(before);
    assert_true(reloaded);
    assert_true(removed);
    assert_true(stayed);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(ev);
}

/* The cleanup.policy of topic (malloc'd), read with DescribeConfigs. */
static char *topic_policy(const char *topic)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
    rd_kafka_DescribeConfigs(producer, &cr, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    size_t n = 0;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    assert_int_equal(n, 1);
    size_t nc = 0;
    const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(res[0], &nc);
    char *policy = NULL;
    for (size_t i = 0; i < nc; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(ce[i]), "cleanup.policy") == 0)
            policy = strdup(rd_kafka_ConfigEntry_value(ce[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    assert_non_null(policy);
    return policy;
}

/* A missing checkpoint topic is created compacted; an existing one that
 * is not compacted is refused at start, with a message saying why. */
static void test_checkpoint_topic(void **state)
{
    (void)state;
    env_t e;
    make_env(&e, "cptopic", 1, NULL, NULL, 0);
    char log[512];
    pid_t pid = start_assigned(&e, log, sizeof(log), "cptopic");
    int st = stop_vigil(pid, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *policy = topic_policy(e.state);
    assert_string_equal(policy, "compact");
    free(policy);

    /* A plain topic (cleanup.policy=delete) as the checkpoint topic. */
    env_t bad;
    make_env(&bad, "cpdelete", 1, NULL, NULL, 0);
    create_topic(bad.state, 1);
    snprintf(log, sizeof(log), "%s/%s.log", tmpdir, bad.in);
    pid = start_vigil(bad.config, log);
    int status = 0;
    e2e_stop_child(pid, 0, 60, &status);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) != 0) ||
        e2e_count_in_file(log, "cleanup.policy=compact") == 0) {
        e2e_dump_file(log, 0);
        fail_msg("cptopic: a checkpoint topic with cleanup.policy=delete was not refused");
    }
}

static int setup(void **state)
{
    (void)state;
    char e[600];
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-e2e-state-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    static const char *const props[] = {"linger.ms", "1", NULL};
    producer = e2e_kafka_client(RD_KAFKA_PRODUCER, brokers, props, NULL, e, sizeof(e));
    if (!producer)
        fail_msg("%s", e);
    assert_non_null(producer);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_kill_children();
    if (producer)
        rd_kafka_destroy(producer);
    if (getenv("VIGIL_E2E_KEEP")) {
        fprintf(stderr, "e2e_state: logs kept in %s\n", tmpdir);
        return 0;
    }
    e2e_remove_dir(tmpdir);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(e2e_kill_children);
    vigil_bin = getenv("VIGIL_BIN");
    if (!vigil_bin) {
        fprintf(stderr, "e2e_state: VIGIL_BIN is not set\n");
        return 1;
    }
    const char *b = getenv("VIGIL_TEST_BROKERS");
    const char *st = getenv("VIGIL_TEST_BROKER_STATE");
    if (b) {
        snprintf(brokers, sizeof(brokers), "%s", b);
    } else {
        char path[512];
        snprintf(path, sizeof(path), "%s/bootstrap", st ? st : "");
        if (!st || e2e_read_line(path, brokers, sizeof(brokers)) != 0) {
            if (getenv("VIGIL_REQUIRE_BROKER")) {
                fprintf(stderr, "e2e_state: no broker, and VIGIL_REQUIRE_BROKER is set\n");
                return 1;
            }
            fprintf(stderr, "e2e_state: SKIP: no real Kafka broker (VIGIL_TEST_BROKERS or "
                            "VIGIL_TEST_BROKER_STATE)\n");
            return 77;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_topic),
        cmocka_unit_test(test_kill9_at_least_once),
        cmocka_unit_test(test_partition_move),
        cmocka_unit_test(test_reload_keeps_windows),
        cmocka_unit_test(test_reload_state_series),
        cmocka_unit_test(test_kill9_exactly_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
