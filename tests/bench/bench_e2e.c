/* bench_e2e: end-to-end figures for `vigil run` on a real Kafka broker.
 * A benchmark, not a test: it prints what it measured and exits 0 whatever
 * the timings are (77 when it cannot run: no broker, no input data).
 *
 *   1. throughput: M news events (~3.4 KB, Reuters-21578 text) on a 1- and a
 *      6-partition topic, read by (a) a bare librdkafka consumer in the same
 *      kind of consumer group (subscribe, poll, auto-commit, no processing)
 *      and (b) `vigil run` with one rule of 1,000 keyword terms; each run is
 *      timed from process start until the group's committed offsets reach
 *      the end of the topic. CPU time and peak RSS of the consumer process.
 *   2. latency: vigil caught up, events offered at a fixed rate (default
 *      5,000/s for 10 s), each carrying its send time in "sent_ns" and
 *      matching the rule; latency = alert read back - sent.
 *   3. ruleset load: `vigil check` wall time and `vigil run` start-up (to its
 *      "started" log line), RSS after start-up, for 10, 1,000 and ~14,000
 *      terms (OFAC SDN names).
 *   4. scale-out: two `vigil run` in one group on the 6-partition topic, each
 *      writing its alerts to its own topic; combined rate, and every event's
 *      alert (source partition/offset) must appear exactly once across both,
 *      checked against the one-instance run of step 1 on the same topic.
 *
 * tests/bench/bench_e2e.sh starts a broker on its own ports, prepares the
 * data and term lists and runs this program; see its header for the knobs.
 *
 *   bench_e2e --brokers HOST:PORT --vigil PATH --workdir DIR --events FILE.jsonl
 *             --terms-10 FILE --terms-1000 FILE [--terms-14k FILE]
 *             [--count M] [--rate R] [--latency-seconds S] [--broker-pid PID]
 *             [--timeout S] [--only LIST]    LIST: any of tput,lat,load,scale
 *   bench_e2e --bare-consumer BROKERS TOPIC GROUP   (internal: the baseline)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXPARTS 6
#define MAXPROCS 2

/* ---- options ---- */

static const char *brokers, *vigil_bin, *workdir, *events_path;
static const char *terms_path[3]; /* 10, 1000, 14k */
static long count_m = 100000;
static double lat_rate = 5000, lat_secs = 10;
static pid_t broker_pid;
static double job_timeout = 300;
static const char *only = "tput,lat,load,scale";
static char prefix[64];
static char self_exe[4096];

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_e2e: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_e2e: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(3);
}

static bool want(const char *part)
{
    return strstr(only, part) != NULL;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t ncap = b->cap ? b->cap * 2 : 4096;
    while (ncap < b->len + more + 1)
        ncap *= 2;
    b->p = realloc(b->p, ncap);
    if (!b->p)
        die("out of memory");
    b->cap = ncap;
}

static void buf_put(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#define BUF_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

static void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_json_str(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n * 2 + 2);
    buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_put(b, e, 2);
        } else if (c == '\n') {
            buf_put(b, "\\n", 2);
        } else if (c == '\t') {
            buf_put(b, "\\t", 2);
        } else if (c < 0x20) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_put(b, (const char *)&c, 1);
        }
    }
    buf_put(b, "\"", 1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- process statistics from /proc ---- */

typedef struct pstat {
    double cpu;     /* user + system seconds */
    long hwm_kb;    /* VmHWM: peak resident set */
    long rss_kb;    /* VmRSS */
} pstat_t;

static bool read_pstat(pid_t pid, pstat_t *out)
{
    memset(out, 0, sizeof(*out));
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return false;
    out->cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmHWM:", 6))
            out->hwm_kb = strtol(line + 6, NULL, 10);
        else if (!strncmp(line, "VmRSS:", 6))
            out->rss_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return true;
}

static double broker_cpu(void)
{
    pstat_t ps;
    return broker_pid > 0 && read_pstat(broker_pid, &ps) ? ps.cpu : -1;
}

/* ---- child processes ---- */

static pid_t children[8];

static void track(pid_t pid, bool add)
{
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (add ? children[i] == 0 : children[i] == pid) {
            children[i] = add ? pid : 0;
            return;
        }
}

static void kill_children(void)
{
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

static void on_signal(int sig)
{
    kill_children();
    signal(sig, SIG_DFL);
    raise(sig);
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    track(pid, true);
    return pid;
}

/* SIGTERM, then SIGKILL after `grace` seconds; returns the wait status. */
static int stop_child(pid_t pid, double grace)
{
    int status = 0;
    kill(pid, SIGTERM);
    double t0 = now_s();
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_s() - t0 > grace) {
            note("pid %d did not exit %.0f s after SIGTERM; killing it", (int)pid, grace);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    track(pid, false);
    return status;
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void show_log_tail(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "tail -n 15 '%s' >&2", path);
    if (system(cmd) != 0)
        note("(could not show %s)", path);
}

/* ---- Kafka helpers ---- */

static rd_kafka_t *prod; /* bulk producer and admin handle */
static atomic_long delivered, delivery_failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err) {
        if (atomic_fetch_add(&delivery_failed, 1) < 5)
            note("delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        atomic_fetch_add(&delivered, 1);
    }
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char e[512];
    if (rd_kafka_conf_set(c, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK)
        die("kafka property %s=%s: %s", k, v, e);
}

static rd_kafka_t *new_producer(const char *linger)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    conf_set(c, "bootstrap.servers", brokers);
    conf_set(c, "linger.ms", linger);
    conf_set(c, "acks", "all");
    conf_set(c, "batch.size", "1000000");
    conf_set(c, "queue.buffering.max.kbytes", "262144");
    conf_set(c, "queue.buffering.max.messages", "1000000");
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    if (!rk)
        die("producer: %s", e);
    return rk;
}

static rd_kafka_t *new_consumer(const char *group)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    conf_set(c, "bootstrap.servers", brokers);
    if (group)
        conf_set(c, "group.id", group);
    conf_set(c, "enable.auto.commit", "false");
    conf_set(c, "enable.partition.eof", "false");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    if (!rk)
        die("consumer: %s", e);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void create_topic(const char *name, int partitions)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, NULL, 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(prod);
    rd_kafka_CreateTopics(prod, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev)
        die("create topic %s: no answer in 30 s", name);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!tr || n != 1)
        die("create topic %s: %s", name, rd_kafka_event_error_string(ev));
    if (rd_kafka_topic_result_error(tr[0]) &&
        rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        die("create topic %s: %s", name, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

static int64_t high_wm(const char *topic, int part)
{
    int64_t lo = 0, hi = 0;
    for (int tries = 0; tries < 10; tries++) {
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(prod, topic, part, &lo, &hi, 10000);
        if (!e)
            return hi;
        usleep(200000);
    }
    die("watermarks of %s[%d] unavailable", topic, part);
    return -1;
}

/* ---- the event generator: Reuters-21578 stories ---- */

typedef struct story {
    char *title, *body, *published_at;
    size_t body_len;
} story_t;

static story_t *stories;
static size_t nstories;

/* Bodies of consecutive stories are joined until the body is this long, so
 * that an event (with title, date and JSON escaping) is ~3.4 KB. */
#define BODY_TARGET 3150

static char *dup_field(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return strdup(json_object_get_string(v));
}

static bool load_stories(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!o)
            continue;
        char *body = dup_field(o, "body");
        if (body && strlen(body) >= 200) {
            if (nstories == alloc) {
                alloc = alloc ? alloc * 2 : 16384;
                stories = realloc(stories, alloc * sizeof(*stories));
                if (!stories)
                    die("out of memory");
            }
            story_t *s = &stories[nstories++];
            s->body = body;
            s->body_len = strlen(body);
            s->title = dup_field(o, "title");
            s->published_at = dup_field(o, "published_at");
        } else {
            free(body);
        }
        json_object_put(o);
    }
    free(line);
    fclose(f);
    return nstories > 0;
}

/* Event i as JSON; `extra` (may be NULL) is put first, ending in a comma. */
static void compose_event(buf_t *b, long i, const char *extra, const char *title_prefix)
{
    b->len = 0;
    size_t first = (size_t)(((unsigned long long)i * 7919ULL) % nstories);
    const story_t *s0 = &stories[first];
    buf_printf(b, "{%s\"type\":\"news\",\"id\":\"bench-%ld\",", extra ? extra : "", i);
    if (s0->published_at) {
        BUF_LIT(b, "\"published_at\":");
        buf_json_str(b, s0->published_at, strlen(s0->published_at));
        buf_put(b, ",", 1);
    }
    BUF_LIT(b, "\"source\":\"reuters\",\"title\":");
    char title[512];
    snprintf(title, sizeof(title), "%s%s", title_prefix ? title_prefix : "",
             s0->title ? s0->title : "");
    buf_json_str(b, title, strlen(title));
    BUF_LIT(b, ",\"body\":");
    /* Gather the body text, then escape it in one go. */
    static buf_t text;
    text.len = 0;
    for (size_t k = 0; text.len < BODY_TARGET && k < nstories; k++) {
        const story_t *s = &stories[(first + k) % nstories];
        if (text.len)
            buf_put(&text, "\n\n", 2);
        buf_put(&text, s->body, s->body_len);
    }
    size_t n = text.len;
    if (n > BODY_TARGET) {
        n = BODY_TARGET;
        while (n > BODY_TARGET - 200 && text.p[n] != ' ' && text.p[n] != '\n')
            n--;
    }
    buf_json_str(b, text.p, n);
    buf_put(b, "}", 1);
}

/* Produces events [0, m) to `topic`; returns the bytes of their values. */
static int64_t produce_events(const char *topic, long m, double *secs)
{
    buf_t b = {0};
    int64_t bytes = 0;
    long d0 = atomic_load(&delivered);
    double t0 = now_s();
    for (long i = 0; i < m; i++) {
        compose_event(&b, i, NULL, NULL);
        bytes += (int64_t)b.len;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(b.p, b.len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
        if (e)
            die("produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(prod, 0);
    }
    if (rd_kafka_flush(prod, 120000) != 0)
        die("flushing %s took more than 120 s", topic);
    *secs = now_s() - t0;
    long got = atomic_load(&delivered) - d0;
    if (got != m)
        die("only %ld of %ld events to %s were acknowledged", got, m, topic);
    free(b.p);
    return bytes;
}

/* ---- the bare consumer (a child process: same measurement as vigil) ---- */

static volatile sig_atomic_t bare_stop;

static void bare_on_term(int sig)
{
    bare_stop = 1;
}

static int bare_consumer(const char *bk, const char *topic, const char *group)
{
    signal(SIGTERM, bare_on_term);
    signal(SIGINT, bare_on_term);
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    brokers = bk;
    conf_set(c, "bootstrap.servers", bk);
    conf_set(c, "group.id", group);
    conf_set(c, "auto.offset.reset", "earliest");
    conf_set(c, "enable.auto.commit", "true");
    /* The same client properties bench_e2e gives vigil. */
    conf_set(c, "auto.commit.interval.ms", "200");
    conf_set(c, "session.timeout.ms", "6000");
    conf_set(c, "heartbeat.interval.ms", "500");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
    if (!rk) {
        fprintf(stderr, "bare consumer: %s\n", e);
        return 3;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    long n = 0, bytes = 0;
    while (!bare_stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            n++;
            bytes += (long)m->len;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr, "bare consumer: %ld messages, %ld bytes\n", n, bytes);
    return 0;
}

/* ---- one timed consumption job ---- */

typedef struct job {
    const char *label;
    const char *topic;
    int nparts;
    int nprocs;
    bool is_vigil;
    char group[160];
    char alerts[MAXPROCS][160];
    char config[MAXPROCS][512];
    char log[MAXPROCS][512];
    /* results */
    bool ok;
    double wall;         /* start .. all committed */
    double t10, t90;     /* 10% / 90% of the events committed */
    double started[MAXPROCS];
    pstat_t ps[MAXPROCS];
    double broker_cpu;
    int status[MAXPROCS];
    int64_t events, bytes;
    int64_t alerts_n[MAXPROCS];
} job_t;

static int64_t end_off[MAXPARTS];
static int64_t topic_events; /* events on each input topic */
static int64_t topic_bytes;

static void write_vigil_config(const char *path, const char *group, const char *topic,
                               const char *alerts, const char *dlq, const char *rules, int metrics_port)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "kafka:\n"
             "  brokers: \"%s\"\n"
             "  group: %s\n"
             "  properties:\n"
             "    session.timeout.ms: \"6000\"\n"
             "    heartbeat.interval.ms: \"500\"\n"
             "    auto.commit.interval.ms: \"200\"\n"
             "input:\n"
             "  topics: [%s]\n"
             "output:\n"
             "  topic: %s\n"
             "  dead_letter_topic: %s\n"
             "rules:\n"
             "  paths: [%s]\n"
             "metrics:\n"
             "  listen: \"127.0.0.1:%d\"\n",
             brokers, group, topic, alerts, dlq, rules, metrics_port);
    write_file(path, text);
}

/* Sum of the group's committed offsets on topic[0..nparts); *done when every
 * partition reached end_off. */
static int64_t committed_sum(rd_kafka_t *mon, const char *topic, int nparts, bool *done)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    int64_t sum = 0;
    *done = false;
    if (rd_kafka_committed(mon, l, 5000) == 0) {
        *done = true;
        for (int p = 0; p < nparts; p++) {
            int64_t o = l->elems[p].err ? -1 : l->elems[p].offset;
            if (o < 0)
                o = 0;
            sum += o;
            if (o < end_off[p])
                *done = false;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return sum;
}

static void run_job(job_t *j, const char *rules)
{
    static int seq;
    pid_t pids[MAXPROCS] = {0};
    char dlq[200];
    snprintf(j->group, sizeof(j->group), "%s-g%d", prefix, ++seq);
    snprintf(dlq, sizeof(dlq), "%s-dlq", prefix);
    for (int p = 0; p < j->nparts; p++)
        end_off[p] = high_wm(j->topic, p);
    j->events = topic_events;
    j->bytes = topic_bytes;
    for (int i = 0; i < j->nprocs; i++) {
        snprintf(j->log[i], sizeof(j->log[i]), "%s/%s-%d.log", workdir, j->group, i);
        if (j->is_vigil) {
            snprintf(j->alerts[i], sizeof(j->alerts[i]), "%s-alerts%d-%d", prefix, seq, i);
            create_topic(j->alerts[i], 1);
            snprintf(j->config[i], sizeof(j->config[i]), "%s/%s-%d.yaml", workdir, j->group, i);
            write_vigil_config(j->config[i], j->group, j->topic, j->alerts[i], dlq, rules,
                               39300 + i);
        }
    }
    rd_kafka_t *mon = new_consumer(j->group);
    bool done = false;
    committed_sum(mon, j->topic, j->nparts, &done); /* connect before the clock starts */
    double b0 = broker_cpu();
    fprintf(stderr, "bench_e2e: %s ...", j->label);
    double t0 = now_s();
    for (int i = 0; i < j->nprocs; i++) {
        char *argv_v[] = {(char *)vigil_bin, "run", "--config", j->config[i], NULL};
        char *argv_b[] = {self_exe, "--bare-consumer", (char *)brokers, (char *)j->topic,
                          j->group, NULL};
        pids[i] = spawn(j->is_vigil ? argv_v : argv_b, j->log[i]);
        j->started[i] = -1;
    }
    j->t10 = j->t90 = -1;
    j->ok = false;
    int64_t total = j->events;
    bool dead = false;
    while (now_s() - t0 < job_timeout) {
        for (int i = 0; i < j->nprocs; i++) {
            if (j->is_vigil && j->started[i] < 0 && file_has(j->log[i], "msg=\"started\""))
                j->started[i] = now_s() - t0;
            int st;
            if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                note("process %d of %s exited early (status %d); its log:", i, j->label, st);
                show_log_tail(j->log[i]);
                track(pids[i], false);
                pids[i] = 0;
                dead = true;
            }
        }
        if (dead)
            break;
        int64_t sum = committed_sum(mon, j->topic, j->nparts, &done);
        double t = now_s() - t0;
        if (j->t10 < 0 && sum * 10 >= total)
            j->t10 = t;
        if (j->t90 < 0 && sum * 10 >= total * 9)
            j->t90 = t;
        if (done) {
            j->wall = t;
            j->ok = true;
            break;
        }
        usleep(20000);
    }
    if (!j->ok && !dead)
        note("%s: not caught up after %.0f s (--timeout); stopping it", j->label, job_timeout);
    for (int i = 0; i < j->nprocs; i++)
        if (pids[i])
            read_pstat(pids[i], &j->ps[i]);
    double b1 = broker_cpu();
    j->broker_cpu = b0 >= 0 && b1 >= 0 ? b1 - b0 : -1;
    for (int i = 0; i < j->nprocs; i++)
        if (pids[i]) {
            j->status[i] = stop_child(pids[i], 60);
            if (!WIFEXITED(j->status[i]) || WEXITSTATUS(j->status[i]) != 0) {
                note("%s process %d ended with status %d; its log:", j->label, i, j->status[i]);
                show_log_tail(j->log[i]);
            }
        }
    rd_kafka_destroy(mon);
    if (j->is_vigil)
        for (int i = 0; i < j->nprocs; i++)
            j->alerts_n[i] = high_wm(j->alerts[i], 0);
    if (j->ok)
        fprintf(stderr, " %.2f s, %.0f events/s\n", j->wall, (double)j->events / j->wall);
    else
        fprintf(stderr, " did not finish\n");
}

/* ---- reading alerts back: (source partition, offset) tallies ---- */

typedef struct tally {
    int nparts;
    int64_t size[MAXPARTS];
    uint8_t *cnt[MAXPARTS];
    int64_t alerts, bytes, unparsed, foreign;
} tally_t;

static void tally_init(tally_t *t, int nparts)
{
    memset(t, 0, sizeof(*t));
    t->nparts = nparts;
    for (int p = 0; p < nparts; p++) {
        t->size[p] = end_off[p];
        t->cnt[p] = calloc((size_t)(end_off[p] ? end_off[p] : 1), 1);
        if (!t->cnt[p])
            die("out of memory");
    }
}

static void tally_free(tally_t *t)
{
    for (int p = 0; p < t->nparts; p++)
        free(t->cnt[p]);
}

/* Reads the whole alert topic (1 partition) and counts each alert's source. */
static void read_alerts(const char *atopic, const char *src_topic, tally_t *t)
{
    int64_t hw = high_wm(atopic, 0);
    if (hw <= 0)
        return;
    rd_kafka_t *c = new_consumer(NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, atopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    char want[300];
    int wl = snprintf(want, sizeof(want), "\"source\":{\"topic\":\"%s\",\"partition\":", src_topic);
    int64_t last = -1;
    double deadline = now_s() + 300;
    while (last < hw - 1 && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (!m->err) {
            last = m->offset;
            t->alerts++;
            t->bytes += (int64_t)m->len;
            /* Text inside JSON strings has its quotes escaped, so the first
             * unescaped `"source":{` is the alert's own. */
            const char *s = memmem(m->payload, m->len, want, (size_t)wl);
            const char *end = (const char *)m->payload + m->len;
            if (!s) {
                t->unparsed++;
            } else {
                char *q;
                long part = strtol(s + wl, &q, 10);
                if (q + 10 < end && !strncmp(q, ",\"offset\":", 10)) {
                    long long off = strtoll(q + 10, NULL, 10);
                    if (part >= 0 && part < t->nparts && off >= 0 && off < t->size[part]) {
                        if (t->cnt[part][off] < 255)
                            t->cnt[part][off]++;
                    } else {
                        t->foreign++;
                    }
                } else {
                    t->unparsed++;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (last < hw - 1)
        note("reading %s: stopped at offset %lld of %lld", atopic, (long long)last,
             (long long)hw);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

/* ---- latency ---- */

typedef struct lat_state {
    const char *atopic;
    long nevents;          /* warm-up + measured */
    int64_t *lat_ns;       /* per seq; 0 = not yet seen */
    atomic_long seen, dups, bad;
    atomic_int stop;
} lat_state_t;

static void *lat_reader(void *arg)
{
    lat_state_t *s = arg;
    rd_kafka_t *c = new_consumer(NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->atopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (!atomic_load(&s->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
        if (!m)
            continue;
        int64_t recv = now_ns();
        if (!m->err) {
            const char *e = (const char *)m->payload + m->len;
            const char *p = memmem(m->payload, m->len, "\"seq\":", 6);
            const char *q = memmem(m->payload, m->len, "\"sent_ns\":", 10);
            if (p && q && p + 6 < e && q + 10 < e) {
                long seq = strtol(p + 6, NULL, 10);
                long long sent = strtoll(q + 10, NULL, 10);
                if (seq >= 0 && seq < s->nevents) {
                    if (s->lat_ns[seq])
                        atomic_fetch_add(&s->dups, 1);
                    else {
                        s->lat_ns[seq] = recv - sent > 0 ? recv - sent : 1;
                        atomic_fetch_add(&s->seen, 1);
                    }
                } else {
                    atomic_fetch_add(&s->bad, 1);
                }
            } else {
                atomic_fetch_add(&s->bad, 1);
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return NULL;
}

typedef struct lat_result {
    bool ran;
    long offered, received, missing, dups;
    double achieved_rate, p50, p90, p99, p999, max, mean;
    double vigil_cpu_pct, broker_cpu_pct;
    double max_send_lag_ms;
} lat_result_t;

static void run_latency(const char *rules, lat_result_t *r)
{
    memset(r, 0, sizeof(*r));
    char topic[200], atopic[200], dlq[200], group[200], config[512], logp[512];
    snprintf(topic, sizeof(topic), "%s-lat", prefix);
    snprintf(atopic, sizeof(atopic), "%s-lat-alerts", prefix);
    snprintf(dlq, sizeof(dlq), "%s-dlq", prefix);
    snprintf(group, sizeof(group), "%s-lat-group", prefix);
    snprintf(config, sizeof(config), "%s/lat.yaml", workdir);
    snprintf(logp, sizeof(logp), "%s/lat.log", workdir);
    create_topic(topic, 1);
    create_topic(atopic, 1);
    write_vigil_config(config, group, topic, atopic, dlq, rules, 39310);

    const long warm = 200;
    long measured = (long)(lat_rate * lat_secs);
    lat_state_t s = {.atopic = atopic, .nevents = warm + measured};
    s.lat_ns = calloc((size_t)s.nevents, sizeof(int64_t));
    if (!s.lat_ns)
        die("out of memory");
    pthread_t th;
    pthread_create(&th, NULL, lat_reader, &s);

    rd_kafka_t *lp = new_producer("1");
    char *argv[] = {(char *)vigil_bin, "run", "--config", config, NULL};
    pid_t pid = spawn(argv, logp);
    double t0 = now_s();
    while (!file_has(logp, "msg=\"started\"") && now_s() - t0 < 60)
        usleep(10000);
    buf_t b = {0};
    char extra[128];
    /* Warm-up: until these alerts are back, vigil has joined the group and
     * is caught up. */
    for (long k = 0; k < warm; k++) {
        snprintf(extra, sizeof(extra), "\"seq\":%ld,\"sent_ns\":%lld,", k, (long long)now_ns());
        compose_event(&b, k, extra, "Latency probe: ");
        while (rd_kafka_producev(lp, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(b.p, b.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(lp, 10);
        rd_kafka_poll(lp, 0);
    }
    rd_kafka_flush(lp, 30000);
    t0 = now_s();
    while (atomic_load(&s.seen) < warm && now_s() - t0 < 60)
        usleep(10000);
    if (atomic_load(&s.seen) < warm) {
        note("latency: only %ld of %ld warm-up alerts came back in 60 s; vigil log:",
             atomic_load(&s.seen), warm);
        show_log_tail(logp);
    }
    usleep(300000);
    pstat_t ps0, ps1;
    read_pstat(pid, &ps0);
    double bc0 = broker_cpu();
    /* Offered load: event k is due at start + k/rate; sent_ns is the time it
     * is handed to librdkafka (the sender is reported if it falls behind). */
    int64_t start = now_ns();
    double max_lag = 0;
    for (long k = 0; k < measured; k++) {
        int64_t due = start + (int64_t)((double)k * 1e9 / lat_rate);
        int64_t t = now_ns();
        if (t < due) {
            struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else if ((double)(t - due) / 1e6 > max_lag) {
            max_lag = (double)(t - due) / 1e6;
        }
        long seq = warm + k;
        snprintf(extra, sizeof(extra), "\"seq\":%ld,\"sent_ns\":%lld,", seq, (long long)now_ns());
        compose_event(&b, seq, extra, "Latency probe: ");
        while (rd_kafka_producev(lp, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(b.p, b.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(lp, 1);
        rd_kafka_poll(lp, 0);
    }
    double send_secs = (double)(now_ns() - start) / 1e9;
    rd_kafka_flush(lp, 30000);
    t0 = now_s();
    while (atomic_load(&s.seen) < s.nevents && now_s() - t0 < 60)
        usleep(10000);
    read_pstat(pid, &ps1);
    double bc1 = broker_cpu();
    double phase = now_s() - t0 + send_secs;
    usleep(500000); /* duplicates, if any */
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    int st = stop_child(pid, 60);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        note("latency: vigil ended with status %d; its log:", st);
        show_log_tail(logp);
    }
    rd_kafka_destroy(lp);
    free(b.p);

    double *v = malloc((size_t)measured * sizeof(double));
    long n = 0;
    double sum = 0;
    for (long k = warm; k < s.nevents; k++)
        if (s.lat_ns[k]) {
            v[n] = (double)s.lat_ns[k] / 1e6;
            sum += v[n++];
        }
    r->ran = true;
    r->offered = measured;
    r->received = n;
    r->missing = measured - n;
    r->dups = atomic_load(&s.dups);
    r->achieved_rate = (double)measured / send_secs;
    r->max_send_lag_ms = max_lag;
    r->vigil_cpu_pct = 100 * (ps1.cpu - ps0.cpu) / phase;
    r->broker_cpu_pct = bc0 >= 0 && bc1 >= 0 ? 100 * (bc1 - bc0) / phase : -1;
    if (n > 0) {
        qsort(v, (size_t)n, sizeof(double), cmp_double);
#define PCT(q) v[(size_t)((double)(n - 1) * (q) + 0.5)]
        r->p50 = PCT(0.50);
        r->p90 = PCT(0.90);
        r->p99 = PCT(0.99);
        r->p999 = PCT(0.999);
        r->max = v[n - 1];
        r->mean = sum / (double)n;
#undef PCT
    }
    free(v);
    free(s.lat_ns);
}

/* ---- ruleset load ---- */

typedef struct load_result {
    bool ran;
    const char *name;
    long terms;
    double check_s, start_s;
    long rss_kb, hwm_kb;
    int check_rc;
} load_result_t;

static long count_terms(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[4096];
    long n = 0;
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '\n' && *p != '\r' && *p != '#')
            n++;
    }
    fclose(f);
    return n;
}

static void run_load(const char *name, const char *terms, load_result_t *r)
{
    enum { REPS = 3 };
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->terms = count_terms(terms);
    if (r->terms < 0)
        return;
    char rules[512], config[512], logp[512], topic[200], group[200], dlq[200], atopic[200];
    snprintf(rules, sizeof(rules), "%s/load-%s.yaml", workdir, name);
    buf_t b = {0};
    buf_printf(&b,
               "lists:\n  terms: {file: \"%s\"}\nrules:\n  - id: load-%s\n    severity: low\n"
               "    match:\n      text: {any: $terms}\n",
               terms, name);
    write_file(rules, b.p);
    free(b.p);
    double ck[REPS], su[REPS];
    for (int i = 0; i < REPS; i++) {
        char *argv[] = {(char *)vigil_bin, "check", rules, NULL};
        double t0 = now_s();
        pid_t pid = spawn(argv, NULL);
        int st;
        waitpid(pid, &st, 0);
        track(pid, false);
        ck[i] = now_s() - t0;
        r->check_rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    }
    r->check_s = median(ck, REPS);
    snprintf(topic, sizeof(topic), "%s-idle", prefix);
    snprintf(atopic, sizeof(atopic), "%s-idle-alerts", prefix);
    snprintf(dlq, sizeof(dlq), "%s-dlq", prefix);
    create_topic(topic, 1);
    int nst = 0;
    for (int i = 0; i < REPS; i++) {
        snprintf(group, sizeof(group), "%s-load-%s-%d", prefix, name, i);
        snprintf(config, sizeof(config), "%s/load-%s-%d.config.yaml", workdir, name, i);
        snprintf(logp, sizeof(logp), "%s/load-%s-%d.log", workdir, name, i);
        write_vigil_config(config, group, topic, atopic, dlq, rules, 39320);
        char *argv[] = {(char *)vigil_bin, "run", "--config", config, NULL};
        double t0 = now_s();
        pid_t pid = spawn(argv, logp);
        bool seen = false;
        while (now_s() - t0 < 120) {
            if (file_has(logp, "msg=\"started\"")) {
                seen = true;
                break;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                track(pid, false);
                pid = 0;
                break;
            }
            usleep(2000);
        }
        if (seen) {
            su[nst++] = now_s() - t0;
            pstat_t ps;
            read_pstat(pid, &ps);
            r->rss_kb = ps.rss_kb;
            r->hwm_kb = ps.hwm_kb;
        } else {
            note("load %s: vigil run did not log \"started\"; its log:", name);
            show_log_tail(logp);
        }
        if (pid)
            stop_child(pid, 30);
    }
    r->start_s = nst ? median(su, nst) : -1;
    r->ran = true;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_e2e --brokers HOST:PORT --vigil PATH --workdir DIR --events FILE.jsonl\n"
            "                 --terms-10 FILE --terms-1000 FILE [--terms-14k FILE] [--count M]\n"
            "                 [--rate R] [--latency-seconds S] [--broker-pid PID] [--timeout S]\n"
            "                 [--only tput,lat,load,scale]\n"
            "Normally run through tests/bench/bench_e2e.sh, which starts a broker.\n");
}

static const char *fmt_mb(double kb, char *out, size_t n)
{
    snprintf(out, n, "%.1f MB", kb / 1024.0);
    return out;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--bare-consumer"))
        return bare_consumer(argv[2], argv[3], argv[4]);
    static const struct option opts[] = {
        {"brokers", 1, 0, 'b'},   {"vigil", 1, 0, 'v'},       {"workdir", 1, 0, 'w'},
        {"events", 1, 0, 'e'},    {"terms-10", 1, 0, '1'},    {"terms-1000", 1, 0, '2'},
        {"terms-14k", 1, 0, '3'}, {"count", 1, 0, 'n'},       {"rate", 1, 0, 'r'},
        {"latency-seconds", 1, 0, 's'}, {"broker-pid", 1, 0, 'p'}, {"timeout", 1, 0, 't'},
        {"only", 1, 0, 'o'},      {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 'v': vigil_bin = optarg; break;
        case 'w': workdir = optarg; break;
        case 'e': events_path = optarg; break;
        case '1': terms_path[0] = optarg; break;
        case '2': terms_path[1] = optarg; break;
        case '3': terms_path[2] = optarg; break;
        case 'n': count_m = strtol(optarg, NULL, 10); break;
        case 'r': lat_rate = strtod(optarg, NULL); break;
        case 's': lat_secs = strtod(optarg, NULL); break;
        case 'p': broker_pid = (pid_t)strtol(optarg, NULL, 10); break;
        case 't': job_timeout = strtod(optarg, NULL); break;
        case 'o': only = optarg; break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!brokers || !vigil_bin || !workdir || !events_path || !terms_path[0] || !terms_path[1] ||
        count_m < 1000 || lat_rate <= 0 || lat_secs <= 0) {
        usage();
        return 2;
    }
    /* Rule files and configs live in --workdir: make every path absolute. */
    static char absbuf[6][4096];
    const char **paths[] = {&vigil_bin, &events_path, &terms_path[0], &terms_path[1],
                            &terms_path[2], &workdir};
    for (int i = 0; i < 6; i++)
        if (*paths[i]) {
            if (!realpath(*paths[i], absbuf[i])) {
                fprintf(stderr, "bench_e2e: %s: %s\n", *paths[i], strerror(errno));
                return i == 1 || i == 4 ? 77 : 2;
            }
            *paths[i] = absbuf[i];
        }
    if (access(vigil_bin, X_OK) != 0) {
        fprintf(stderr, "bench_e2e: %s is not executable\n", vigil_bin);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(kill_children);
    ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (sl <= 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    self_exe[sl] = '\0';
    snprintf(prefix, sizeof(prefix), "bench-%ld-%d", (long)time(NULL), (int)getpid());

    if (!load_stories(events_path)) {
        fprintf(stderr, "bench_e2e: SKIP: no usable events in %s\n", events_path);
        return 77;
    }
    {
        /* The generator must give valid JSON, or everything is dead-lettered. */
        buf_t b = {0};
        compose_event(&b, 1, "\"seq\":1,\"sent_ns\":1,", "Latency probe: ");
        json_object *o = json_tokener_parse(b.p);
        if (!o)
            die("internal: the event generator made invalid JSON: %.200s", b.p);
        json_object_put(o);
        free(b.p);
    }
    prod = new_producer("50");
    /* Is the broker there? */
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(prod, 0, NULL, &md, 10000) != 0) {
        fprintf(stderr, "bench_e2e: SKIP: no Kafka broker answers at %s\n", brokers);
        return 77;
    }
    rd_kafka_metadata_destroy(md);

    char rules1k[512], ruleslat[512];
    snprintf(rules1k, sizeof(rules1k), "%s/rules-1000.yaml", workdir);
    snprintf(ruleslat, sizeof(ruleslat), "%s/rules-latency.yaml", workdir);
    {
        buf_t b = {0};
        buf_printf(&b,
                   "lists:\n  terms: {file: \"%s\"}\nrules:\n  - id: keywords-1000\n"
                   "    severity: low\n    match:\n      text: {any: $terms}\n",
                   terms_path[1]);
        write_file(rules1k, b.p);
        b.len = 0;
        /* The same rule, plus a phrase every latency event carries, so that
         * each of them gives exactly one alert. */
        buf_printf(&b,
                   "lists:\n  terms: {file: \"%s\"}\nrules:\n  - id: keywords-1000\n"
                   "    severity: low\n    match:\n      text: {any: [$terms, \"latency probe\"]}\n",
                   terms_path[1]);
        write_file(ruleslat, b.p);
        free(b.p);
    }
    const char *w = getenv("VIGIL_WORKERS");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char workers[64];
    if (w)
        snprintf(workers, sizeof(workers), "%s (VIGIL_WORKERS)", w);
    else
        snprintf(workers, sizeof(workers), "%ld (default: nproc-1)", ncpu > 1 ? ncpu - 1 : 0);
    note("%zu Reuters stories; %ld events per topic; %ld CPUs; vigil evaluation threads %s",
         nstories, count_m, ncpu, workers);

    char topic1[200], topic6[200], dlq[200];
    snprintf(dlq, sizeof(dlq), "%s-dlq", prefix);
    create_topic(dlq, 1);
    snprintf(topic1, sizeof(topic1), "%s-news1", prefix);
    snprintf(topic6, sizeof(topic6), "%s-news6", prefix);
    double prod_s1 = 0, prod_s6 = 0;
    bool need_data = want("tput") || want("scale");
    if (need_data) {
        create_topic(topic1, 1);
        create_topic(topic6, 6);
        note("producing %ld events to %s (1 partition) ...", count_m, topic1);
        topic_bytes = produce_events(topic1, count_m, &prod_s1);
        note("  %.1f s (%.0f events/s); producing to %s (6 partitions) ...", prod_s1,
             (double)count_m / prod_s1, topic6);
        produce_events(topic6, count_m, &prod_s6);
        note("  %.1f s (%.0f events/s); mean event %.0f bytes", prod_s6,
             (double)count_m / prod_s6, (double)topic_bytes / (double)count_m);
        topic_events = count_m;
    }

    job_t bare1 = {.label = "bare consumer, 1 partition", .topic = topic1, .nparts = 1, .nprocs = 1};
    job_t vig1 = {.label = "vigil, 1 partition", .topic = topic1, .nparts = 1, .nprocs = 1,
                  .is_vigil = true};
    job_t bare6 = {.label = "bare consumer, 6 partitions", .topic = topic6, .nparts = 6, .nprocs = 1};
    job_t vig6 = {.label = "vigil, 6 partitions", .topic = topic6, .nparts = 6, .nprocs = 1,
                  .is_vigil = true};
    job_t dual = {.label = "2 x vigil, one group, 6 partitions", .topic = topic6, .nparts = 6,
                  .nprocs = 2, .is_vigil = true};
    bool ran_tput = false, ran_scale = false;
    tally_t ref = {0}, got = {0}, per[MAXPROCS];
    memset(per, 0, sizeof(per));
    if (want("tput")) {
        run_job(&bare1, rules1k);
        run_job(&vig1, rules1k);
        run_job(&bare6, rules1k);
        run_job(&vig6, rules1k);
        ran_tput = true;
    }
    int64_t missing = 0, dup_events = 0, dup_alerts = 0, extra = 0, covered = 0;
    if (want("scale")) {
        run_job(&dual, rules1k);
        ran_scale = true;
        for (int p = 0; p < 6; p++)
            end_off[p] = high_wm(topic6, p);
        note("reading the alerts back ...");
        tally_init(&got, 6);
        for (int i = 0; i < 2; i++) {
            tally_init(&per[i], 6);
            read_alerts(dual.alerts[i], topic6, &per[i]);
            for (int p = 0; p < 6; p++)
                for (int64_t o = 0; o < got.size[p]; o++)
                    got.cnt[p][o] += per[i].cnt[p][o];
        }
        bool have_ref = ran_tput && vig6.ok;
        if (have_ref) {
            tally_init(&ref, 6);
            read_alerts(vig6.alerts[0], topic6, &ref);
        }
        /* Expected: exactly the events the single instance alerted on (the
         * same rules and events give the same alerts). */
        for (int p = 0; p < 6; p++)
            for (int64_t o = 0; o < got.size[p]; o++) {
                int g = got.cnt[p][o], r = have_ref ? (ref.cnt[p][o] ? 1 : 0) : (g ? 1 : 0);
                covered += r;
                if (r && g == 0)
                    missing++;
                if (!r && g)
                    extra += g;
                if (g > 1) {
                    dup_events++;
                    dup_alerts += g - 1;
                }
            }
        if (!have_ref)
            note("no one-instance reference (run with --only tput,scale): checking duplicates "
                 "only");
    }

    lat_result_t lat = {0};
    if (want("lat")) {
        note("latency: %.0f events/s for %.0f s ...", lat_rate, lat_secs);
        run_latency(ruleslat, &lat);
    }

    load_result_t load[3];
    memset(load, 0, sizeof(load));
    if (want("load")) {
        static const char *names[] = {"10", "1000", "14k"};
        for (int i = 0; i < 3; i++) {
            if (!terms_path[i]) {
                note("ruleset load %s: no term list given; skipped", names[i]);
                continue;
            }
            note("ruleset load: %s terms ...", names[i]);
            run_load(names[i], terms_path[i], &load[i]);
        }
    }

    /* ---- report ---- */
    char m1[32], m2[32];
    printf("\n## vigil end-to-end benchmark (real Kafka broker)\n\n");
    printf("- host: %ld CPUs (shared by the broker, vigil and this program); vigil evaluation "
           "threads: %s\n",
           ncpu, workers);
    if (need_data)
        printf("- input: %ld news events per topic, mean %.0f bytes (%.1f MB), Reuters-21578 "
               "text; produced at %.0f events/s (1 partition) and %.0f events/s (6 partitions)\n",
               count_m, (double)topic_bytes / (double)count_m, (double)topic_bytes / 1e6,
               (double)count_m / prod_s1, (double)count_m / prod_s6);
    printf("- rule: one rule, `text: {any: $terms}` with %ld terms (%s)\n",
           count_terms(terms_path[1]), terms_path[1]);
    printf("- time = from process start until the group's committed offsets reach the end of "
           "the topic (auto.commit.interval.ms 200); steady = events between the 10%% and 90%% "
           "commit marks / time between them\n\n");
    if (ran_tput || ran_scale) {
        printf("### 1. Throughput\n\n");
        printf("| consumer | partitions | time s | events/s | MB/s | steady events/s | "
               "started s | CPU s | CPU s / 10k ev | peak RSS | broker CPU s | alerts |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        job_t *jobs[] = {&bare1, &vig1, &bare6, &vig6, &dual};
        for (int k = 0; k < 5; k++) {
            job_t *j = jobs[k];
            if ((k < 4 && !ran_tput) || (k == 4 && !ran_scale))
                continue;
            if (!j->ok) {
                printf("| %s | %d | did not finish | | | | | | | | | |\n", j->label, j->nparts);
                continue;
            }
            double cpu = 0, hwm = 0, st = 0;
            int64_t al = 0;
            for (int i = 0; i < j->nprocs; i++) {
                cpu += j->ps[i].cpu;
                hwm += (double)j->ps[i].hwm_kb;
                al += j->alerts_n[i];
                if (j->started[i] > st)
                    st = j->started[i];
            }
            double steady = j->t90 > j->t10 && j->t10 >= 0
                                ? 0.8 * (double)j->events / (j->t90 - j->t10)
                                : 0;
            char started[32] = "-", alerts[32] = "-", bcpu[32] = "-", st_rate[32] = "-";
            if (steady > 0)
                snprintf(st_rate, sizeof(st_rate), "%.0f", steady);
            if (j->is_vigil) {
                snprintf(started, sizeof(started), "%.2f", st);
                snprintf(alerts, sizeof(alerts), "%lld", (long long)al);
            }
            if (j->broker_cpu >= 0)
                snprintf(bcpu, sizeof(bcpu), "%.1f", j->broker_cpu);
            printf("| %s | %d | %.2f | %.0f | %.1f | %s | %s | %.1f | %.2f | %s%s | %s | %s |\n",
                   j->label, j->nparts, j->wall, (double)j->events / j->wall,
                   (double)j->bytes / 1e6 / j->wall, st_rate, started, cpu,
                   cpu / (double)j->events * 1e4, fmt_mb(hwm, m1, sizeof(m1)),
                   j->nprocs > 1 ? " (sum)" : "", bcpu, alerts);
        }
        printf("\n");
        if (ran_tput && bare1.ok && vig1.ok)
            printf("- vigil / bare consumer, 1 partition: %.2f\n",
                   bare1.wall / vig1.wall);
        if (ran_tput && bare6.ok && vig6.ok)
            printf("- vigil / bare consumer, 6 partitions: %.2f\n", bare6.wall / vig6.wall);
        if (ran_tput && vig6.ok && vig6.alerts_n[0] > 0 && ref.alerts)
            printf("- alerts: %.1f%% of events matched; mean alert %.0f bytes (%.1f MB of "
                   "alerts per run)\n",
                   100.0 * (double)vig6.alerts_n[0] / (double)vig6.events,
                   (double)ref.bytes / (double)ref.alerts, (double)ref.bytes / 1e6);
        printf("\n");
    }
    if (ran_scale) {
        printf("### 4. Two instances, one consumer group, 6 partitions\n\n");
        printf("| | value |\n|---|---|\n");
        if (dual.ok) {
            printf("| combined rate | %.0f events/s (%.1f MB/s) |\n",
                   (double)dual.events / dual.wall, (double)dual.bytes / 1e6 / dual.wall);
            if (ran_tput && vig6.ok)
                printf("| one instance (step 1) | %.0f events/s; two / one = %.2f |\n",
                       (double)vig6.events / vig6.wall, vig6.wall / dual.wall);
        } else {
            printf("| combined rate | did not finish within %.0f s |\n", job_timeout);
        }
        for (int i = 0; i < 2; i++)
            printf("| instance %c | %lld alerts, CPU %.1f s, peak RSS %s, exit status %d |\n",
                   'A' + i, (long long)per[i].alerts, dual.ps[i].cpu,
                   fmt_mb((double)dual.ps[i].hwm_kb, m2, sizeof(m2)),
                   WIFEXITED(dual.status[i]) ? WEXITSTATUS(dual.status[i]) : -1);
        printf("| events expected to alert | %lld of %lld (%s) |\n", (long long)covered,
               (long long)dual.events,
               ran_tput && vig6.ok ? "from the one-instance run" : "no reference");
        printf("| missing (expected, no alert) | %lld |\n", (long long)missing);
        printf("| evaluated twice (events with >1 alert) | %lld events, %lld extra alerts |\n",
               (long long)dup_events, (long long)dup_alerts);
        printf("| unexpected alerts | %lld |\n", (long long)extra);
        printf("| unparsable / foreign alerts | %lld |\n",
               (long long)(per[0].unparsed + per[1].unparsed + per[0].foreign + per[1].foreign));
        printf("| verdict | %s |\n\n",
               !dual.ok || covered == 0 ? "not checked (the run did not finish)"
               : missing == 0 && dup_events == 0 && extra == 0
                   ? "every event's alert exactly once"
                   : "NOT exactly once (see above)");
    }
    if (lat.ran) {
        printf("### 2. Latency (offered %.0f events/s for %.0f s, 1 partition, vigil caught up)\n\n",
               lat_rate, lat_secs);
        printf("| offered | sent at | alerts back | missing | dup | p50 ms | p90 ms | p99 ms | "
               "p99.9 ms | max ms | mean ms | vigil CPU | broker CPU |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        char bc[32] = "-";
        if (lat.broker_cpu_pct >= 0)
            snprintf(bc, sizeof(bc), "%.0f%%", lat.broker_cpu_pct);
        printf("| %ld | %.0f/s | %ld | %ld | %ld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | "
               "%.0f%% | %s |\n\n",
               lat.offered, lat.achieved_rate, lat.received, lat.missing, lat.dups, lat.p50,
               lat.p90, lat.p99, lat.p999, lat.max, lat.mean, lat.vigil_cpu_pct, bc);
        if (lat.max_send_lag_ms > 5)
            printf("- the sender fell up to %.1f ms behind its schedule\n\n", lat.max_send_lag_ms);
    }
    if (want("load")) {
        printf("### 3. Ruleset load (one rule, `text: {any: $terms}`, median of 3)\n\n");
        printf("| terms | `vigil check` s | `vigil run` to \"started\" s | RSS after start | "
               "peak RSS |\n|---|---|---|---|---|\n");
        for (int i = 0; i < 3; i++) {
            if (!load[i].ran) {
                printf("| %s | skipped | | | |\n", load[i].name ? load[i].name : "-");
                continue;
            }
            char started[32] = "failed";
            if (load[i].start_s >= 0)
                snprintf(started, sizeof(started), "%.3f", load[i].start_s);
            printf("| %ld | %.3f%s | %s | %s | %s |\n", load[i].terms, load[i].check_s,
                   load[i].check_rc ? " (exit != 0)" : "", started,
                   fmt_mb((double)load[i].rss_kb, m1, sizeof(m1)),
                   fmt_mb((double)load[i].hwm_kb, m2, sizeof(m2)));
        }
        printf("\n");
    }
    tally_free(&ref);
    tally_free(&got);
    tally_free(&per[0]);
    tally_free(&per[1]);
    rd_kafka_destroy(prod);
    return 0;
}
