/* Start-up under systemd (Type=notify), end to end: the real `vigil run`
 * says READY=1 once its rules are loaded and its Kafka clients created,
 * whether or not a broker answers or the input topics exist, and STATUS=
 * says what it waits for. Before, READY=1 came only with the first
 * partition assignment, so a broker down at boot made the start time out
 * and the unit restart in a loop.
 *
 * NOTIFY_SOCKET names an AF_UNIX datagram socket this program binds and
 * reads, as systemd's own would be. The brokers are a closed port on
 * 127.0.0.1, then librdkafka's mock cluster hosted in this process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_support.h"

static char tmpdir[64];
static const char *vigil_bin;

/* The notification socket and everything said on it so far, one
 * datagram per line ('\n' inside a datagram shown as '|'). */
typedef struct notify {
    int fd;
    char path[128];
    char said[8192];
    size_t len;
} notify_t;

static void notify_open(notify_t *n, const char *name)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->path, sizeof(n->path), "%s/%s.notify", tmpdir, name);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    assert_true(strlen(n->path) < sizeof(a.sun_path));
    strcpy(a.sun_path, n->path);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(n->fd >= 0);
    assert_int_equal(bind(n->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_usec = 100000};
    assert_int_equal(setsockopt(n->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static void notify_close(notify_t *n)
{
    close(n->fd);
    unlink(n->path);
}

/* Reads datagrams until what was said contains text (true), or timeout
 * seconds have passed (false). */
static bool notify_wait(notify_t *n, const char *text, double timeout)
{
    double deadline = e2e_now_s() + timeout;
    while (!strstr(n->said, text)) {
        if (e2e_now_s() > deadline)
            return false;
        char d[1024];
        ssize_t k = recv(n->fd, d, sizeof(d) - 1, 0);
        if (k <= 0)
            continue;
        for (ssize_t i = 0; i < k; i++)
            if (d[i] == '\n')
                d[i] = '|';
        d[k] = '\0';
        n->len += (size_t)snprintf(n->said + n->len, sizeof(n->said) - n->len, "%s\n", d);
        if (n->len >= sizeof(n->said))
            n->len = sizeof(n->said) - 1;
    }
    return true;
}

/* Starts `vigil run --config config` with NOTIFY_SOCKET set. */
static pid_t start_notified(const notify_t *n, const char *config, const char *log)
{
    setenv("NOTIFY_SOCKET", n->path, 1);
    pid_t pid = e2e_start_vigil(vigil_bin, config, log, false);
    unsetenv("NOTIFY_SOCKET");
    assert_true(pid > 0);
    return pid;
}

/* SIGTERM: a clean stop (exit 0) that says STOPPING=1. */
static void stop_notified(notify_t *n, pid_t pid, const char *log)
{
    int status = 0;
    bool stopped = e2e_stop_child(pid, SIGTERM, 60, &status);
    bool said = notify_wait(n, "STOPPING=1", 5);
    if (!stopped || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !said) {
        e2e_dump_file(log, 60);
        fail_msg("vigil did not stop cleanly (status %d); said:\n%s", status, n->said);
    }
}

static void write_rules(const char *path)
{
    assert_int_equal(e2e_write_file(path, "rules:\n"
                                          "  - id: ban\n"
                                          "    match: {text: {any: [ban]}}\n"),
                     0);
}

/* No broker listens: READY=1 within seconds all the same, STATUS= says
 * brokers are awaited, and /healthz keeps its contract (503 once
 * librdkafka reports all brokers down). */
static void test_ready_without_broker(void **state)
{
    (void)state;
    char news[96], trade[96], group[128], rules[256], config[256], log[256], cfg[1024];
    e2e_unique_name(news, sizeof(news), "start", "news");
    e2e_unique_name(trade, sizeof(trade), "start", "trade");
    snprintf(group, sizeof(group), "%s.group", news);
    snprintf(rules, sizeof(rules), "%s/nobroker.rules.yaml", tmpdir);
    snprintf(config, sizeof(config), "%s/nobroker.yaml", tmpdir);
    snprintf(log, sizeof(log), "%s/nobroker.log", tmpdir);
    int closed_port = e2e_free_port(), metrics_port = e2e_free_port();
    assert_true(closed_port > 0 && metrics_port > 0);
    write_rules(rules);
    snprintf(cfg, sizeof(cfg),
             "kafka:\n  brokers: \"127.0.0.1:%d\"\n  group: %s\n"
             "input:\n  topics: [%s, %s]\n"
             "rules:\n  paths: [%s]\n"
             "metrics:\n  listen: \"127.0.0.1:%d\"\n",
             closed_port, group, news, trade, rules, metrics_port);
    assert_int_equal(e2e_write_file(config, cfg), 0);

    notify_t n;
    notify_open(&n, "nobroker");
    double t0 = e2e_now_s();
    pid_t pid = start_notified(&n, config, log);
    bool ready = notify_wait(&n, "READY=1", 5);
    double ready_s = e2e_now_s() - t0;
    bool status = notify_wait(&n, "STATUS=Waiting for brokers", 5);
    if (!ready || !status) {
        e2e_dump_file(log, 60);
        fail_msg("without a broker: READY=1 %s, STATUS naming the brokers %s; said:\n%s",
                 ready ? "came" : "did not come in 5 s", status ? "came" : "did not come", n.said);
    }
    fprintf(stderr, "e2e_start: READY=1 %.2f s after the start without a broker\n", ready_s);
    char body[512];
    int http = 0;
    if (!e2e_wait_http(metrics_port, "/healthz", 503, "all brokers down", true, 30, body,
                       sizeof(body), &http)) {
        e2e_dump_file(log, 60);
        fail_msg("without a broker, /healthz answered %d '%s'", http, body);
    }
    stop_notified(&n, pid, log);
    notify_close(&n);
}

/* The broker answers but the input topic does not exist yet: READY=1,
 * then STATUS= names the topic whose partitions are awaited, and once it
 * is created and assigned, STATUS=Consuming. */
static void test_ready_before_topic_exists(void **state)
{
    (void)state;
    char brokers[256];
    rd_kafka_mock_cluster_t *mock = NULL;
    rd_kafka_t *host = e2e_mock_cluster_host(&mock, brokers, sizeof(brokers));
    assert_non_null(host);
    char topic[96], group[128], rules[256], config[256], log[256], cfg[1024], want[160];
    e2e_unique_name(topic, sizeof(topic), "start", "late");
    snprintf(group, sizeof(group), "%s.group", topic);
    snprintf(rules, sizeof(rules), "%s/late.rules.yaml", tmpdir);
    snprintf(config, sizeof(config), "%s/late.yaml", tmpdir);
    snprintf(log, sizeof(log), "%s/late.log", tmpdir);
    write_rules(rules);
    /* A short metadata refresh, so that the topic is seen soon after it
     * is created; a short session, so that the mock cluster's group does
     * not wait long for a member that is joining again. */
    snprintf(
        cfg, sizeof(cfg),
        "kafka:\n  brokers: \"%s\"\n  group: %s\n"
        "  properties:\n    topic.metadata.refresh.interval.ms: 500\n    session.timeout.ms: 6000\n"
        "input:\n  topics: [%s]\n"
        "rules:\n  paths: [%s]\n"
        "metrics:\n  listen: \"off\"\n",
        brokers, group, topic, rules);
    assert_int_equal(e2e_write_file(config, cfg), 0);

    /* The mock cluster creates a topic a client asks about; one that
     * answers UNKNOWN_TOPIC_OR_PART in metadata is what a client sees of
     * a topic not created yet. */
    assert_int_equal(rd_kafka_mock_topic_create(mock, topic, 1, 1), 0);
    rd_kafka_mock_topic_set_error(mock, topic, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);

    notify_t n;
    notify_open(&n, "late");
    pid_t pid = start_notified(&n, config, log);
    snprintf(want, sizeof(want), "STATUS=Waiting for partitions of %s", topic);
    bool ready = notify_wait(&n, "READY=1", 5);
    bool waiting = ready && notify_wait(&n, want, 10);
    if (!ready || !waiting) {
        e2e_dump_file(log, 60);
        fail_msg("input topic missing: READY=1 %s, '%s' %s; said:\n%s",
                 ready ? "came" : "did not come in 5 s", want, waiting ? "came" : "did not come",
                 n.said);
    }
    /* Still waiting a while later: nothing was assigned. */
    e2e_sleep_s(2);
    assert_false(notify_wait(&n, "STATUS=Consuming", 0.5));
    rd_kafka_mock_topic_set_error(mock, topic, RD_KAFKA_RESP_ERR_NO_ERROR);
    double created = e2e_now_s();
    /* The mock cluster's group takes a few rounds of joining (5 s each)
     * to settle on the new topic. */
    if (!notify_wait(&n, "STATUS=Consuming", 60)) {
        e2e_dump_file(log, 60);
        fail_msg("the topic was created but vigil did not say it consumes; said:\n%s", n.said);
    }
    double consuming_s = e2e_now_s() - created;
    stop_notified(&n, pid, log);
    fprintf(stderr,
            "e2e_start: STATUS=Consuming %.1f s after the topic was created; all that was "
            "said:\n%s",
            consuming_s, n.said);
    notify_close(&n);
    rd_kafka_destroy(host);
}

static int setup(void **state)
{
    (void)state;
    vigil_bin = getenv("VIGIL_BIN");
    if (!vigil_bin) {
        fprintf(stderr, "e2e_start: VIGIL_BIN must name the vigil binary\n");
        return -1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-start-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    e2e_kill_children();
    e2e_remove_dir(tmpdir);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(e2e_kill_children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_without_broker),
        cmocka_unit_test(test_ready_before_topic_exists),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
