/* vigil demo: the whole pipeline on an embedded default. An in-process
 * Kafka (librdkafka's mock cluster) gets the bundled sample events; the
 * same pipeline as `vigil run` evaluates the bundled rule packs; every
 * alert is then read back from the alert topics and printed. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"
#include "embedded.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/pipeline.h"


static volatile sig_atomic_t demo_stop;

static void on_stop(int sig)
{
    (void)sig;
    demo_stop = 1;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *topic)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, 1, 1);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "vigil demo: cannot create topic %s: %s\n", topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Publishes each sample line to the topic named by its "type" (news or
 * trade). Returns the number of events published, or -1. */
static long publish_samples(rd_kafka_t *prod)
{
    /* The events come first in the table (daemon/cli/CMakeLists.txt). */
    const vg_embedded_t *ev = &vigil_demo_assets[0];
    const char *p = (const char *)ev->data, *end = p + ev->len;
    long n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        size_t len = (size_t)(nl - p);
        if (len > 0) {
            const char *topic = strstr(p, "\"type\":\"trade\"") && strstr(p, "\"type\":\"trade\"") < nl
                                    ? "trade"
                                    : "news";
            rd_kafka_resp_err_t e = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE((void *)p, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e) {
                fprintf(stderr, "vigil demo: cannot publish a sample: %s\n", rd_kafka_err2str(e));
                return -1;
            }
            n++;
        }
        p = nl + 1;
    }
    if (rd_kafka_flush(prod, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "vigil demo: samples were not acknowledged in time\n");
        return -1;
    }
    return n;
}

/* Reads every alert topic from the start to its end and prints values. */
static long print_alerts(const char *bootstraps, char **topics, size_t ntopics)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "group.id", "vigil-demo-reader", e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof(e))) {
        fprintf(stderr, "vigil demo: %s\n", e);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!c) {
        fprintf(stderr, "vigil demo: %s\n", e);
        return -1;
    }
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(l, topics[i], 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    long n = 0;
    size_t eofs = 0;
    time_t deadline = time(NULL) + 30;
    while (eofs < ntopics && time(NULL) < deadline && !demo_stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        }
        else if (!m->err) {
            fwrite(m->payload, 1, m->len, stdout);
            fputc('\n', stdout);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return eofs < ntopics ? -1 : n;
}

/* The embedded rule packs: every embedded file that is not the events
 * (the stateful ones among them keep their windows in vigil.state). */
static vg_ruleset_t *bundled_rules(void)
{
    vg_rule_source_t src[16];
    size_t n = 0;
    for (size_t i = 0; i < vigil_demo_assets_count && n < sizeof(src) / sizeof(src[0]); i++) {
        const vg_embedded_t *f = &vigil_demo_assets[i];
        size_t l = strlen(f->path);
        if (l > 5 && strcmp(f->path + l - 5, ".yaml") == 0)
            src[n++] = (vg_rule_source_t){f->path, (const char *)f->data, f->len};
    }
    vg_diags_t *d = vg_diags_new();
    vg_ruleset_t *rs = d ? vg_ruleset_load_sources(src, n, NULL, d) : NULL;
    if (d)
        vg_diags_print(d, stderr);
    vg_diags_destroy(d);
    return rs;
}

int vg_cmd_demo(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        vg_cli_usage(stderr, "demo");
        return VG_EXIT_USAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* The daemon's log lines would drown the demo's story; keep warnings. */
    vg_log_set_level(VG_LOG_WARN);

    vg_ruleset_t *rs = bundled_rules();
    if (!rs)
        return VG_EXIT_INVALID;
    vg_config_t *cfg = vg_config_new();
    int rc = VG_EXIT_RUNTIME;
    char e[512];
    rd_kafka_t *host = NULL;
    char **topics = NULL;
    size_t ntopics = 0;
    if (!cfg)
        goto out;
    rd_kafka_conf_t *hc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(hc, "test.mock.num.brokers", "1", e, sizeof(e)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(hc, "log_level", "4", e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "vigil demo: %s\n", e);
        rd_kafka_conf_destroy(hc);
        goto out;
    }
    host = rd_kafka_new(RD_KAFKA_PRODUCER, hc, e, sizeof(e));
    if (!host) {
        fprintf(stderr, "vigil demo: cannot start the in-process Kafka: %s\n", e);
        goto out;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(host);
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    fprintf(stderr, "vigil demo: in-process Kafka cluster at %s\n", boot);

    /* Topics: inputs, the default and per-rule alert topics, dead letters. */
    topics = calloc(vg_ruleset_topic_count(rs) + 1, sizeof(char *));
    if (!topics)
        goto out;
    /* Copies: the ruleset goes to the pipeline, which destroys it. */
    topics[ntopics++] = strdup(cfg->output_topic);
    for (size_t i = 0; i < vg_ruleset_topic_count(rs); i++)
        if (strcmp(vg_ruleset_topic(rs, i), cfg->output_topic) != 0)
            topics[ntopics++] = strdup(vg_ruleset_topic(rs, i));
    for (size_t i = 0; i < ntopics; i++)
        if (!topics[i])
            goto out;
    for (size_t i = 0; i < cfg->input_topics.count; i++)
        if (create_topic(mc, cfg->input_topics.items[i]) != 0)
            goto out;
    for (size_t i = 0; i < ntopics; i++)
        if (create_topic(mc, topics[i]) != 0)
            goto out;
    if (create_topic(mc, cfg->dead_letter_topic) != 0)
        goto out;
    /* Where the stateful rules (news-surges.yaml) keep their windows. */
    if (create_topic(mc, cfg->state_topic) != 0)
        goto out;

    long published = publish_samples(host);
    if (published < 0)
        goto out;
    fprintf(stderr, "vigil demo: published %ld sample events to topics news and trade\n",
            published);
    fprintf(stderr, "vigil demo: loaded %zu rules (ruleset %s); joining the consumer group "
                    "(the in-process cluster takes a few seconds)...\n",
            vg_ruleset_rule_count(rs), vg_ruleset_hash(rs));

    free(cfg->brokers);
    cfg->brokers = strdup(boot);
    free(cfg->group);
    char group[64];
    /* A fresh group each run: the mock cluster stalls a rejoining group
     * for a whole session timeout. */
    snprintf(group, sizeof(group), "vigil-demo-%ld-%ld", (long)getpid(), (long)time(NULL));
    cfg->group = strdup(group);
    if (!cfg->brokers || !cfg->group)
        goto out;
    vg_pipeline_opts_t po = {.workers = vg_cli_default_workers(1),
                             .stop_at_eof = true, .stop = &demo_stop,
                             .state_topic_ready = true};
    vg_pipeline_stats_t st;
    vg_ruleset_t *owned = rs;
    rs = NULL; /* the pipeline owns it now */
    if (vg_pipeline_run(cfg, owned, &po, &st, e, sizeof(e)) != 0) {
        fprintf(stderr, "vigil demo: %s\n", e);
        goto out;
    }
    if (demo_stop)
        goto out;
    fprintf(stderr,
            "vigil demo: evaluated %llu events; %llu alerts and %llu dead-lettered events "
            "acknowledged; reading the alert topics back:\n",
            (unsigned long long)st.consumed, (unsigned long long)st.alerts,
            (unsigned long long)st.dead_lettered);
    long printed = print_alerts(boot, topics, ntopics);
    if (printed < 0) {
        fprintf(stderr, "vigil demo: could not read the alert topics back\n");
        goto out;
    }
    fprintf(stderr, "vigil demo: %ld alerts printed\n", printed);
    rc = (uint64_t)printed == st.alerts ? VG_EXIT_OK : VG_EXIT_RUNTIME;
out:
    for (size_t i = 0; i < ntopics; i++)
        free(topics[i]);
    free(topics);
    if (host)
        rd_kafka_destroy(host);
    vg_ruleset_destroy(rs);
    vg_config_destroy(cfg);
    return rc;
}
