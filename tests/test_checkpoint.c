/* Checkpoints of stateful-rule state: the record format, the resume plan,
 * and a round trip through a compacted topic on librdkafka's in-process
 * mock cluster (a restart in the middle of a window continues it). */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "test_support.h"
#include "checkpoint.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"
#include "vigil/state.h"

#define T0 (INT64_C(1704067200000)) /* 2024-01-01T00:00:00Z */
#define MIN (INT64_C(60000))

static void destroy_ruleset(void *p) { vg_ruleset_destroy(p); }
static void destroy_scanner(void *p) { vg_scanner_destroy(p); }
static void destroy_state(void *p) { vg_state_destroy(p); }
static void destroy_decoder(void *p) { vg_decoder_destroy(p); }
static void destroy_diags(void *p) { vg_diags_destroy(p); }
static void destroy_cp(void *p) { vg_checkpoint_destroy(p); }
static void destroy_kafka(void *p) { rd_kafka_destroy(p); }

static const char *RULES = "rules:\n"
                           "  - id: surge\n"
                           "    match: {text: {any: [entity list]}}\n"
                           "    threshold: {count: 3, window: 1h, group_by: entities}\n"
                           "  - id: quiet\n"
                           "    match: {field: type, eq: news}\n"
                           "    absence: {window: 30m, group_by: source}\n";

static vg_ruleset_t *load(void)
{
    vg_diags_t *d = own(destroy_diags, vg_diags_new());
    vg_rule_source_t src = {"cp.yaml", RULES, strlen(RULES)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    assert_non_null(rs);
    return own(destroy_ruleset, rs);
}

typedef struct feeder {
    vg_scanner_t *sc;
    vg_decoder_t *dec;
    vg_state_t *st;
    char ids[64][33];
    size_t n;
} feeder_t;

static int keep_id(void *ctx, const vg_state_alert_t *a)
{
    feeder_t *f = ctx;
    json_object *o = json_tokener_parse(a->json);
    assert_non_null(o);
    json_object *id;
    assert_true(json_object_object_get_ex(o, "alert_id", &id));
    assert_true(f->n < 64);
    snprintf(f->ids[f->n++], 33, "%s", json_object_get_string(id));
    json_object_put(o);
    return 0;
}

static void feeder_init(feeder_t *f, const vg_ruleset_t *rs)
{
    memset(f, 0, sizeof(*f));
    f->sc = own(destroy_scanner, vg_scanner_new(rs));
    f->dec = own(destroy_decoder, vg_decoder_new(NULL));
    f->st = own(destroy_state, vg_state_new(rs, NULL));
}

/* Event i of the input partition news/0: entity E(i%2), source s(i%3),
 * one every 7 minutes, s2 falls silent after event 6. */
static void feed(feeder_t *f, int i)
{
    int src = i % 3;
    if (src == 2 && i > 6)
        src = 0;
    char ts[32];
    time_t s = (time_t)((T0 + i * 7 * MIN) / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *json = fmt("{\"type\":\"news\",\"published_at\":\"%s\",\"source\":\"s%d\","
                           "\"title\":\"entity list\",\"entities\":[\"E%d\"]}",
                           ts, src, i % 2);
    vg_event_t *ev = NULL;
    char err[256];
    assert_int_equal(vg_decoder_parse(f->dec, json, strlen(json), &ev, err, sizeof(err)),
                     VG_EVENT_OK);
    vg_alert_source_t as = {.topic = "news", .partition = 0, .offset = i, .timestamp_ms = -1};
    int n = vg_state_process(f->st, f->sc, ev, &as, keep_id, f, err, sizeof(err));
    vg_event_destroy(ev);
    assert_true(n >= 0);
}

static void record_round_trip(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load();
    feeder_t f;
    feeder_init(&f, rs);
    for (int i = 0; i < 5; i++)
        feed(&f, i);
    char *v = NULL;
    size_t len = 0;
    assert_int_equal(vg_checkpoint_encode(f.st, 5, &v, &len), 0);
    own(free, v);
    vg_state_t *st = own(destroy_state, vg_state_new(rs, NULL));
    int64_t next = -1;
    char err[256];
    assert_int_equal(vg_checkpoint_decode(st, v, len, &next, err, sizeof(err)), 0);
    assert_int_equal(next, 5);
    /* A damaged record is refused with a reason. */
    v[len / 2] ^= 1;
    assert_int_equal(vg_checkpoint_decode(st, v, len, &next, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "snapshot"));
    assert_int_equal(vg_checkpoint_decode(st, "VGCP", 4, &next, err, sizeof(err)), -1);
    assert_int_equal(vg_checkpoint_decode(st, "nonsense-nonsense", 17, &next, err, sizeof(err)),
                     -1);
}

static void resume_plan(void **state)
{
    (void)state;
    vg_resume_plan_t p;
    vg_checkpoint_plan(-1, 40, &p); /* no checkpoint: committed offset, state from scratch */
    assert_int_equal(p.start, 40);
    assert_int_equal(p.state_from, 0);
    assert_int_equal(p.emit_from, 0);
    vg_checkpoint_plan(50, 40, &p); /* crash after the checkpoint, before the commit */
    assert_int_equal(p.start, 40);
    assert_int_equal(p.state_from, 50);
    assert_int_equal(p.emit_from, 40);
    vg_checkpoint_plan(30, 40, &p); /* checkpoint behind: catch up silently */
    assert_int_equal(p.start, 30);
    assert_int_equal(p.state_from, 30);
    assert_int_equal(p.emit_from, 40);
    vg_checkpoint_plan(30, -1, &p);
    assert_int_equal(p.start, 30);
    assert_int_equal(p.emit_from, 30);
}

/* Produces the checkpoints of a run interrupted after 8 events: an older
 * one (overwritten), the one to resume from, another group's, and a key
 * deleted by a tombstone. With a transactional producer, the checkpoint
 * is committed in a transaction and a later aborted transaction carries
 * a checkpoint that readers must not see. */
static void produce_checkpoints(rd_kafka_t *producer, const char *cp_topic, feeder_t *before,
                                bool txn)
{
    char err[512];
    char *v;
    size_t len;
    if (txn)
        assert_null(rd_kafka_begin_transaction(producer));
    assert_int_equal(vg_checkpoint_encode(before->st, 8, &v, &len), 0);
    assert_int_equal(vg_checkpoint_produce(producer, cp_topic, "g1", "news", 0, v, len, NULL, err,
                                           sizeof(err)),
                     0);
    assert_int_equal(vg_checkpoint_encode(before->st, 99, &v, &len), 0);
    assert_int_equal(vg_checkpoint_produce(producer, cp_topic, "g2", "news", 0, v, len, NULL, err,
                                           sizeof(err)),
                     0);
    assert_int_equal(vg_checkpoint_encode(before->st, 7, &v, &len), 0);
    assert_int_equal(vg_checkpoint_produce(producer, cp_topic, "g1", "news", 1, v, len, NULL, err,
                                           sizeof(err)),
                     0);
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(cp_topic),
                                       RD_KAFKA_V_KEY("g1/news/1", 9), RD_KAFKA_V_END),
                     0);
    if (txn) {
        assert_null(rd_kafka_commit_transaction(producer, 30000));
        assert_null(rd_kafka_begin_transaction(producer));
        assert_int_equal(vg_checkpoint_encode(before->st, 12345, &v, &len), 0);
        assert_int_equal(vg_checkpoint_produce(producer, cp_topic, "g1", "news", 0, v, len, NULL,
                                               err, sizeof(err)),
                         0);
        assert_int_equal(rd_kafka_flush(producer, 30000), 0);
        assert_null(rd_kafka_abort_transaction(producer, 30000));
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
}

/* Loads the checkpoints back, resumes as the plan says, and checks that
 * the alerts of both halves are those of an uninterrupted run. */
static void resume_and_compare(const char *boot, const char *cp_topic, const vg_ruleset_t *rs,
                               const feeder_t *whole, const feeder_t *before)
{
    char err[512];
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    rd_kafka_conf_set(rc, "bootstrap.servers", boot, NULL, 0);
    rd_kafka_conf_set(rc, "log_level", "0", NULL, 0);
    vg_checkpoint_t *cp = vg_checkpoint_new(rc, cp_topic, "g1", err, sizeof(err));
    if (!cp)
        fail_msg("%s", err);
    own(destroy_cp, cp);
    if (vg_checkpoint_load(cp, 30000, err, sizeof(err)) != 0)
        fail_msg("%s", err);

    feeder_t after;
    feeder_init(&after, rs);
    int64_t next = -1;
    assert_int_equal(vg_checkpoint_restore(cp, "news", 0, after.st, &next, err, sizeof(err)), 1);
    assert_int_equal(next, 8);
    vg_state_t *other = own(destroy_state, vg_state_new(rs, NULL));
    assert_int_equal(vg_checkpoint_restore(cp, "news", 1, other, &next, err, sizeof(err)), 0);
    assert_int_equal(next, -1);
    assert_int_equal(vg_checkpoint_restore(cp, "trade", 0, other, &next, err, sizeof(err)), 0);

    /* Committed offset 6 (the crash came between checkpoint and commit):
     * events 6 and 7 are read again but not fed to the state. */
    vg_resume_plan_t plan;
    vg_checkpoint_plan(8, 6, &plan);
    for (int64_t o = plan.start; o < 20; o++)
        if (o >= plan.state_from)
            feed(&after, (int)o);
    assert_int_equal(before->n + after.n, whole->n);
    for (size_t i = 0; i < before->n; i++)
        assert_string_equal(before->ids[i], whole->ids[i]);
    for (size_t i = 0; i < after.n; i++)
        assert_string_equal(after.ids[i], whole->ids[before->n + i]);
}

static void interrupted_run(const vg_ruleset_t *rs, feeder_t *whole, feeder_t *before)
{
    feeder_init(whole, rs);
    for (int i = 0; i < 20; i++)
        feed(whole, i);
    assert_true(whole->n >= 4);
    feeder_init(before, rs);
    for (int i = 0; i < 8; i++)
        feed(before, i);
    assert_true(before->n >= 1 && before->n < whole->n);
}

/* Checkpoint mid-window to a mock cluster, "crash", load it in a fresh
 * reader, restore and go on: the alerts equal an uninterrupted run's. */
static void restart_mid_window_on_mock_cluster(void **state)
{
    (void)state;
    char err[512];
    rd_kafka_conf_t *hc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(hc, "test.mock.num.brokers", "1", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(hc, "log_level", "0", NULL, 0);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, hc, err, sizeof(err));
    assert_non_null(producer);
    own(destroy_kafka, producer);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(producer);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "vigil.state", 3, 1), 0);

    vg_ruleset_t *rs = load();
    feeder_t whole, before;
    interrupted_run(rs, &whole, &before);
    /* An older checkpoint of the same partition, overwritten below. */
    char *v;
    size_t len;
    assert_int_equal(vg_checkpoint_encode(before.st, 4, &v, &len), 0);
    assert_int_equal(vg_checkpoint_produce(producer, "vigil.state", "g1", "news", 0, v, len, NULL,
                                           err, sizeof(err)),
                     0);
    produce_checkpoints(producer, "vigil.state", &before, false);
    resume_and_compare(rd_kafka_mock_cluster_bootstraps(mc), "vigil.state", rs, &whole, &before);
}

/* Another instance writing checkpoints while this one loads them. */
typedef struct writer {
    rd_kafka_t *producer;
    atomic_bool stop;
} writer_t;

static void *write_partition0(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; !atomic_load(&w->stop); i++) {
        char key[64];
        int kl = snprintf(key, sizeof(key), "g1/other/%d", i % 50);
        rd_kafka_producev(w->producer, RD_KAFKA_V_TOPIC("vigil.multi"), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE("x", 1),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        rd_kafka_poll(w->producer, 0);
        usleep(20000);
    }
    rd_kafka_flush(w->producer, 10000);
    return NULL;
}

/* A checkpoint topic of several partitions, one of them written to while
 * the load runs: reaching the end of that one again and again (one
 * partition EOF each time) must not count as the end of the others. */
static void load_reads_every_partition_to_its_end(void **state)
{
    (void)state;
    char err[512];
    rd_kafka_conf_t *hc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(hc, "test.mock.num.brokers", "2", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(hc, "log_level", "0", NULL, 0);
    rd_kafka_conf_set(hc, "linger.ms", "0", NULL, 0);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, hc, err, sizeof(err));
    assert_non_null(producer);
    own(destroy_kafka, producer);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(producer);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "vigil.multi", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_partition_set_leader(mc, "vigil.multi", 0, 1), 0);
    assert_int_equal(rd_kafka_mock_partition_set_leader(mc, "vigil.multi", 1, 2), 0);
    enum { N = 300 };
    char value[200];
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < N; i++) {
        char key[64];
        int kl = snprintf(key, sizeof(key), "g1/news/%d", i);
        assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("vigil.multi"),
                                           RD_KAFKA_V_PARTITION(1),
                                           RD_KAFKA_V_KEY(key, (size_t)kl),
                                           RD_KAFKA_V_VALUE(value, sizeof(value)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
        rd_kafka_poll(producer, 0);
    }
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("vigil.multi"),
                                       RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY("g1/trade/0", 10),
                                       RD_KAFKA_V_VALUE("x", 1),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);

    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    rd_kafka_conf_set(rc, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    rd_kafka_conf_set(rc, "log_level", "0", NULL, 0);
    rd_kafka_conf_set(rc, "fetch.wait.max.ms", "5", NULL, 0);
    vg_checkpoint_t *cp = vg_checkpoint_new(rc, "vigil.multi", "g1", err, sizeof(err));
    if (!cp)
        fail_msg("%s", err);
    own(destroy_cp, cp);
    writer_t w = {.producer = producer};
    atomic_init(&w.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_partition0, &w), 0);
    /* Partition 1's broker answers slowly: partition 0 reaches its end
     * several times before partition 1 does once. */
    assert_int_equal(rd_kafka_mock_broker_set_rtt(mc, 2, 800), 0);
    int rc_load = vg_checkpoint_load(cp, 60000, err, sizeof(err));
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    if (rc_load != 0)
        fail_msg("%s", err);
    size_t len = 0;
    assert_non_null(vg_checkpoint_get(cp, "trade", 0, &len));
    assert_non_null(vg_checkpoint_get(cp, "news", 0, &len));
    assert_non_null(vg_checkpoint_get(cp, "news", N - 1, &len));
    assert_int_equal(len, sizeof(value));
}

/* The same on a real broker (VIGIL_TEST_BROKERS=host:port), with the
 * checkpoints written in a transaction, an aborted transaction that must
 * stay invisible, and a compacted topic created here. Skipped without a
 * broker. */
static void restart_mid_window_on_real_broker(void **state)
{
    (void)state;
    const char *boot = getenv("VIGIL_TEST_BROKERS");
    char from_state[256] = "";
    const char *state_dir = getenv("VIGIL_TEST_BROKER_STATE");
    if ((!boot || !*boot) && state_dir) {
        /* The ctest broker fixture writes its address there. */
        FILE *f = fopen(fmt("%s/bootstrap", state_dir), "r");
        if (f) {
            if (fgets(from_state, sizeof(from_state), f))
                from_state[strcspn(from_state, "\r\n")] = '\0';
            fclose(f);
        }
        boot = from_state;
    }
    if (!boot || !*boot)
        skip();
    char err[512], topic[96], txid[96];
    snprintf(topic, sizeof(topic), "vigil.state.test.%ld.%ld", (long)getpid(), (long)time(NULL));
    snprintf(txid, sizeof(txid), "vigil-checkpoint-test-%ld", (long)getpid());
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", boot, NULL, 0);
    rd_kafka_conf_set(pc, "transactional.id", txid, NULL, 0);
    rd_kafka_conf_set(pc, "log_level", "0", NULL, 0);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    assert_non_null(producer);
    own(destroy_kafka, producer);

    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 3, 1, err, sizeof(err));
    assert_non_null(nt);
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
    rd_kafka_CreateTopics(producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(res[0]))
        fail_msg("create %s: %s", topic, rd_kafka_topic_result_error_string(res[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    assert_null(rd_kafka_init_transactions(producer, 30000));

    vg_ruleset_t *rs = load();
    feeder_t whole, before;
    interrupted_run(rs, &whole, &before);
    produce_checkpoints(producer, topic, &before, true);
    resume_and_compare(boot, topic, rs, &whole, &before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(record_round_trip, cleanup),
        cmocka_unit_test_teardown(resume_plan, cleanup),
        cmocka_unit_test_teardown(restart_mid_window_on_mock_cluster, cleanup),
        cmocka_unit_test_teardown(load_reads_every_partition_to_its_end, cleanup),
        cmocka_unit_test_teardown(restart_mid_window_on_real_broker, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
