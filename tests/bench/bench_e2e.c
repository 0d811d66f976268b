/* bench_e2e: end-to-end figures for `vigil run` on a real Kafka broker.
 * A benchmark, not a test: it prints what it measured (markdown on stdout,
 * progress on stderr) and exits 0 whatever the timings are; 77 when it
 * cannot run (no broker, no input data), 2 on a usage error.
 *
 * In this order:
 *   latency   vigil running and caught up (200 events, then 2 s at the
 *             offered rate, both left out), events offered at a fixed rate
 *             (default 5,000/s, then 1,000/s, 10 s each; a fresh vigil and
 *             topic for each rate) on a 1-partition topic, each
 *             carrying "seq" and "sent_ns" (CLOCK_REALTIME) and matching
 *             the rule; latency = alert read back - sent, split at the
 *             alert's own "time", and per second of sending. Run first:
 *             after the gigabytes of the throughput runs the same broker
 *             answered several times slower on a 2-core machine.
 *   throughput  M news events (~3.4 KB: Reuters-21578 bodies joined) on a
 *             1- and a 6-partition topic (round-robin), read by (a) a bare
 *             librdkafka consumer (this program re-executed: subscribe,
 *             poll, auto-commit, no processing) and (b) `vigil run` with one
 *             rule `text: {any: $terms}` of 1,000 terms, each in a new
 *             consumer group, timed from process start until the group's
 *             committed offsets (rd_kafka_committed, every 20 ms) reach the
 *             end of the topic; both get auto.commit.interval.ms 200. CPU
 *             time (utime+stime of /proc/PID/stat) and peak RSS (VmHWM) are
 *             read just before SIGTERM.
 *   scale-out two `vigil run` in one group on the 6-partition topic, each
 *             writing its alerts to its own topic; combined rate, and every
 *             event's alert (source partition/offset) must appear exactly
 *             once across both, against the one-instance run on the same
 *             topic (same rules, same events: the same alerts).
 *   load      `vigil check` wall time and `vigil run` start-up (to its
 *             "started" log line), RSS then, for 10, 1,000 and ~14,000 terms
 *             (OFAC SDN names); median of 3.
 * Each measured run starts after sync(), and the CPU used meanwhile by
 * other processes is reported (a busy machine lowers every figure).
 *
 * tests/bench/bench_e2e.sh starts a broker on its own ports, prepares the
 * events and term lists and runs this program; see its header.
 *
 *   bench_e2e --brokers HOST:PORT --vigil PATH --workdir DIR --events FILE.jsonl
 *             --terms-10 FILE --terms-1000 FILE [--terms-14k FILE]
 *             [--count M] [--rate R[,R...]] [--latency-seconds S]
 *             [--broker-pid PID] [--timeout S] [--only LIST]
 *   LIST: any of tput,lat,load,scale (default all); defaults: M 150000,
 *   rates 5000,1000, S 10, --timeout 300 s per consumer run.
 *   bench_e2e --bare-consumer BROKERS TOPIC GROUP   (internal: the baseline)
 *   bench_e2e --bare-relay BROKERS TOPIC ATOPIC GROUP   (internal: the
 *             latency baseline)
 *
 * FILE.jsonl: news events as tests/tools/reuters2jsonl.py writes them (the
 * title, body and published_at of each are used).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <dirent.h>
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

#include "e2e_support.h"

#define MAXPARTS 6
#define MAXPROCS 2

/* ---- options ---- */

static const char *brokers, *vigil_bin, *workdir, *events_path;
static const char *terms_path[3]; /* 10, 1000, 14k */
static long count_m = 150000;
static double lat_secs = 10;
static double warm_secs = 2; /* paced warm-up before each latency run */
static bool with_relay = true; /* the latency baseline */
#define MAX_RATES 4
static double lat_rates[MAX_RATES] = {5000, 1000};
static int nrates = 2;
static pid_t broker_pid;
static double job_timeout = 300;
#define MAX_ROUNDS 9
static int tput_rounds = 3; /* throughput jobs: median of this many runs */
static const char *only = "tput,lat,load,scale";
static char prefix[64];
static char self_exe[4096];

/* ---- small helpers ---- */

/* Wall-clock time: the latency probes compare it with the "time" vigil
 * writes into each alert (same host, so the same clock). */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define note(...) e2e_say("bench_e2e", "", __VA_ARGS__)
#define die(...) (e2e_say("bench_e2e", "error: ", __VA_ARGS__), exit(3))

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
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        buf_put(b, tmp, (size_t)n);
        return;
    }
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
    if (e2e_write_file(path, text) != 0)
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

/* CPU used by other processes while a run is measured (anything but this
 * program, its children and the broker; kernel threads not counted): a
 * busy machine makes every figure worse, so it is reported. */
typedef struct proc_cpu {
    int pid;
    double cpu;
} proc_cpu_t;

typedef struct cpu_mark {
    double broker, self;
    proc_cpu_t *procs;
    size_t n;
} cpu_mark_t;

static bool is_ours(int pid);

static int cmp_pid(const void *a, const void *b)
{
    const proc_cpu_t *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static void cpu_mark(cpu_mark_t *m)
{
    m->broker = broker_cpu();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    m->self = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    m->n = 0;
    m->procs = NULL;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || is_ours((int)pid))
            continue;
        char path[64], line[1024];
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = '\0';
        char *p = strrchr(line, ')');
        unsigned flags = 0;
        unsigned long ut = 0, st = 0;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %u %*u %*u %*u %*u %lu %lu", &flags, &ut,
                         &st) != 3 ||
            (flags & 0x00200000u)) /* PF_KTHREAD */
            continue;
        if (m->n == cap) {
            cap = cap ? cap * 2 : 256;
            proc_cpu_t *np = realloc(m->procs, cap * sizeof(*np));
            if (!np)
                break;
            m->procs = np;
        }
        m->procs[m->n].pid = (int)pid;
        m->procs[m->n++].cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    closedir(d);
    if (m->n)
        qsort(m->procs, m->n, sizeof(*m->procs), cmp_pid);
}

static double cpu_other(cpu_mark_t *a, cpu_mark_t *b)
{
    double o = 0;
    for (size_t i = 0; i < b->n; i++) {
        proc_cpu_t *was = a->n ? bsearch(&b->procs[i], a->procs, a->n, sizeof(*a->procs), cmp_pid)
                               : NULL;
        o += b->procs[i].cpu - (was ? was->cpu : 0);
    }
    free(a->procs);
    free(b->procs);
    a->procs = b->procs = NULL;
    return o > 0 ? o : 0;
}

/* ---- child processes ---- */

static bool is_ours(int pid)
{
    return pid == (int)getpid() || pid == (int)broker_pid || e2e_is_child((pid_t)pid);
}

static void on_signal(int sig)
{
    e2e_kill_children();
    signal(sig, SIG_DFL);
    raise(sig);
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = e2e_spawn(argv, log, false);
    if (pid < 0)
        die("fork: %s", strerror(errno));
    return pid;
}

/* SIGTERM, then SIGKILL after `grace` seconds; returns the wait status. */
static int stop_child(pid_t pid, double grace)
{
    int status = 0;
    if (!e2e_stop_child(pid, SIGTERM, grace, &status))
        note("pid %d did not exit %.0f s after SIGTERM; killing it", (int)pid, grace);
    return status;
}

/* From a vigil log: events consumed (its "stopped" line) and how many
 * times partitions were assigned to it. */
static void log_counts(const char *path, long *consumed, long *assigned)
{
    *consumed = -1;
    *assigned = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "msg=\"stopped\" consumed=");
        if (p)
            *consumed = strtol(p + strlen("msg=\"stopped\" consumed="), NULL, 10);
        if (strstr(line, "msg=\"partitions assigned\""))
            (*assigned)++;
    }
    fclose(f);
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
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (atomic_fetch_add(&delivery_failed, 1) < 5)
            note("delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        atomic_fetch_add(&delivered, 1);
    }
}

static rd_kafka_t *new_producer(const char *linger)
{
    const char *const props[] = {"linger.ms",
                                 linger,
                                 "acks",
                                 "all",
                                 "batch.size",
                                 "1000000",
                                 "queue.buffering.max.kbytes",
                                 "262144",
                                 "queue.buffering.max.messages",
                                 "1000000",
                                 NULL};
    char e[600];
    rd_kafka_t *rk = e2e_kafka_client(RD_KAFKA_PRODUCER, brokers, props, dr_cb, e, sizeof(e));
    if (!rk)
        die("%s", e);
    return rk;
}

/* group NULL: a reader that assigns partitions itself (rd_kafka_consumer_poll
 * still wants a group.id; it never joins or commits). */
static rd_kafka_t *new_consumer(const char *group)
{
    char e[600], reader[200];
    snprintf(reader, sizeof(reader), "%s-reader", prefix);
    const char *const props[] = {"group.id", group ? group : reader, "enable.auto.commit",
                                 "false",    "enable.partition.eof", "false",
                                 NULL};
    rd_kafka_t *rk = e2e_kafka_client(RD_KAFKA_CONSUMER, brokers, props, NULL, e, sizeof(e));
    if (!rk)
        die("%s", e);
    return rk;
}

static void create_topic(const char *name, int partitions)
{
    char e[600];
    if (e2e_create_topic(prod, name, partitions, NULL, true, e, sizeof(e)) != 0)
        die("%s", e);
}

static int64_t high_wm(const char *topic, int part)
{
    int64_t lo = 0, hi = 0;
    for (int tries = 0; tries < 10; tries++) {
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(prod, topic, part, &lo, &hi, 10000);
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

/* Produces events [0, m) to `topic`, round-robin over its `nparts`
 * partitions (keyless messages would be spread by librdkafka's sticky
 * partitioner, unevenly over a short burst); returns the bytes of the
 * values. */
static int64_t produce_events(const char *topic, int nparts, long m, double *secs)
{
    buf_t b = {0};
    int64_t bytes = 0;
    long d0 = atomic_load(&delivered);
    double t0 = e2e_now_s();
    for (long i = 0; i < m; i++) {
        compose_event(&b, i, NULL, NULL);
        bytes += (int64_t)b.len;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION((int32_t)(i % nparts)),
                                      RD_KAFKA_V_VALUE(b.p, b.len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
        if (e)
            die("produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(prod, 0);
    }
    if (rd_kafka_flush(prod, 120000) != 0)
        die("flushing %s took more than 120 s", topic);
    *secs = e2e_now_s() - t0;
    long got = atomic_load(&delivered) - d0;
    if (got != m)
        die("only %ld of %ld events to %s were acknowledged", got, m, topic);
    free(b.p);
    return bytes;
}

/* Writes the dirty page cache out before a measurement: the broker has
 * written hundreds of MB by then, and the kernel's writeback of it (and its
 * throttling of writers) would otherwise land in whichever run comes next. */
static void settle(void)
{
    double t0 = e2e_now_s();
    sync();
    if (e2e_now_s() - t0 > 0.5)
        note("(sync took %.1f s)", e2e_now_s() - t0);
}

/* ---- the bare consumer (a child process: same measurement as vigil) ---- */

static volatile sig_atomic_t bare_stop;

static void bare_on_term(int sig)
{
    (void)sig;
    bare_stop = 1;
}

/* The baselines' consumer (bare consumer, bare relay), subscribed to
 * topic in group, with the client properties bench_e2e gives vigil; stops
 * on SIGTERM/SIGINT (bare_stop). NULL (reported) on failure. */
static rd_kafka_t *bare_subscribe(const char *who, const char *bk, const char *topic,
                                  const char *group)
{
    signal(SIGTERM, bare_on_term);
    signal(SIGINT, bare_on_term);
    char e[600];
    brokers = bk;
    const char *const props[] = {"group.id",
                                 group,
                                 "auto.offset.reset",
                                 "earliest",
                                 "enable.auto.commit",
                                 "true",
                                 "auto.commit.interval.ms",
                                 "200",
                                 "session.timeout.ms",
                                 "6000",
                                 "heartbeat.interval.ms",
                                 "500",
                                 NULL};
    rd_kafka_t *rk = e2e_kafka_client(RD_KAFKA_CONSUMER, bk, props, NULL, e, sizeof(e));
    if (!rk) {
        fprintf(stderr, "%s: %s\n", who, e);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

static int bare_consumer(const char *bk, const char *topic, const char *group)
{
    rd_kafka_t *rk = bare_subscribe("bare consumer", bk, topic, group);
    if (!rk)
        return 3;
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

/* The latency baseline: a plain librdkafka relay, configured as vigil
 * configures its clients (the same group settings; acks=all, linger.ms 1
 * and an idempotent producer), that answers each event with a small
 * message carrying its seq, sent_ns and a "time" like an alert's. No
 * decoding, no rules: the floor of any consume -> decide -> produce daemon
 * on this broker. */
static int bare_relay(const char *bk, const char *topic, const char *atopic, const char *group)
{
    static const char *const props[] = {"acks", "all", "linger.ms", "1", "enable.idempotence",
                                        "true", NULL};
    char e[600];
    rd_kafka_t *pk = e2e_kafka_client(RD_KAFKA_PRODUCER, bk, props, NULL, e, sizeof(e));
    if (!pk) {
        fprintf(stderr, "bare relay: %s\n", e);
        return 3;
    }
    rd_kafka_t *rk = bare_subscribe("bare relay", bk, topic, group);
    if (!rk) {
        rd_kafka_destroy(pk);
        return 3;
    }
    fprintf(stderr, "msg=\"started\"\n");
    long n = 0, unparsed = 0;
    while (!bare_stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        rd_kafka_poll(pk, 0);
        if (!m)
            continue;
        if (!m->err) {
            const char *sq = memmem(m->payload, m->len, "\"seq\":", 6);
            const char *sn = memmem(m->payload, m->len, "\"sent_ns\":", 10);
            const char *end = (const char *)m->payload + m->len;
            if (sq && sn && sq + 26 < end && sn + 30 < end) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                struct tm tm;
                gmtime_r(&ts.tv_sec, &tm);
                char out[160];
                int len = snprintf(out, sizeof(out),
                                   "{\"who\":\"relay\",\"time\":\"%04d-%02d-%02dT%02d:%02d:"
                                   "%02d.%03ldZ\",\"seq\":%ld,\"sent_ns\":%lld}",
                                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                                   strtol(sq + 6, NULL, 10), strtoll(sn + 10, NULL, 10));
                while (rd_kafka_producev(pk, RD_KAFKA_V_TOPIC(atopic),
                                         RD_KAFKA_V_VALUE(out, (size_t)len),
                                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    rd_kafka_poll(pk, 1);
                n++;
            } else {
                unparsed++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(pk, 10000);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rd_kafka_destroy(pk);
    fprintf(stderr, "bare relay: %ld relayed, %ld without seq/sent_ns\n", n, unparsed);
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
    bool ran, ok;
    double wall;         /* start .. all committed */
    double t10, t90;     /* 10% / 90% of the events committed */
    double started[MAXPROCS];
    pstat_t ps[MAXPROCS];
    double broker_cpu, other_cpu;
    long consumed[MAXPROCS], assignments[MAXPROCS];
    int status[MAXPROCS];
    int64_t events, bytes;
    int64_t alerts_n[MAXPROCS];
    int nrounds;                    /* runs of which this is the median */
    double round_wall[MAX_ROUNDS];  /* each run's wall time, -1: failed */
} job_t;

static int64_t end_off[MAXPARTS];
static int64_t topic_events; /* events on each input topic */
static int64_t topic_bytes;

/* --lean-alerts: vigil's alerts leave the event out (output.include_event:
 * false); the latency rule then carries seq and sent_ns in its summary. */
static bool lean_alerts;

static void write_vigil_config(const char *path, const char *group, const char *topic,
                               const char *alerts, const char *dlq, const char *rules,
                               int metrics_port)
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
             "  include_event: %s\n"
             "rules:\n"
             "  paths: [%s]\n"
             "metrics:\n"
             "  listen: \"127.0.0.1:%d\"\n",
             brokers, group, topic, alerts, dlq, lean_alerts ? "false" : "true", rules,
             metrics_port);
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
    j->ran = true;
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
                               29300 + i);
        }
    }
    settle();
    rd_kafka_t *mon = new_consumer(j->group);
    bool done = false;
    committed_sum(mon, j->topic, j->nparts, &done); /* connect before the clock starts */
    cpu_mark_t c0, c1;
    cpu_mark(&c0);
    fprintf(stderr, "bench_e2e: %s ...", j->label);
    double t0 = e2e_now_s();
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
    while (e2e_now_s() - t0 < job_timeout) {
        for (int i = 0; i < j->nprocs; i++) {
            if (j->is_vigil && j->started[i] < 0 && e2e_file_has(j->log[i], "msg=\"started\""))
                j->started[i] = e2e_now_s() - t0;
            int st;
            if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                note("process %d of %s exited early (status %d); its log:", i, j->label, st);
                show_log_tail(j->log[i]);
                e2e_track_child(pids[i], false);
                pids[i] = 0;
                dead = true;
            }
        }
        if (dead)
            break;
        int64_t sum = committed_sum(mon, j->topic, j->nparts, &done);
        double t = e2e_now_s() - t0;
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
    cpu_mark(&c1);
    j->broker_cpu = c0.broker >= 0 && c1.broker >= 0 ? c1.broker - c0.broker : -1;
    j->other_cpu = cpu_other(&c0, &c1);
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
        for (int i = 0; i < j->nprocs; i++) {
            j->alerts_n[i] = high_wm(j->alerts[i], 0);
            log_counts(j->log[i], &j->consumed[i], &j->assignments[i]);
        }
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
    double progress = e2e_now_s();
    int errors = 0;
    while (last < hw - 1 && e2e_now_s() - progress < 30) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (m->err && errors++ < 3)
            note("reading %s: %s", atopic, rd_kafka_message_errstr(m));
        if (!m->err) {
            progress = e2e_now_s();
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

/* *j becomes the run of runs[0..n) with the median wall time (of those
 * that finished; the first run if none did); every run's time is kept in
 * j->round_wall. */
static void keep_median(job_t *j, const job_t *runs, int n)
{
    int order[MAX_ROUNDS], nok = 0;
    for (int i = 0; i < n; i++)
        if (runs[i].ok)
            order[nok++] = i;
    for (int a = 1; a < nok; a++) /* insertion sort by wall */
        for (int b = a; b > 0 && runs[order[b]].wall < runs[order[b - 1]].wall; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    *j = runs[nok ? order[nok / 2] : 0];
    j->nrounds = n;
    for (int i = 0; i < n; i++)
        j->round_wall[i] = runs[i].ok ? runs[i].wall : -1;
}

/* ---- latency ---- */

typedef struct lat_state {
    const char *atopic;
    long nevents;          /* warm-up + measured */
    int64_t *lat_ns;       /* per seq; 0 = not yet seen */
    int64_t *vig_ns;       /* per seq: sent -> the alert's "time" (ms resolution) */
    uint8_t *has_vig;
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
        if (m->err && atomic_fetch_add(&s->bad, 1) < 3)
            note("latency reader: %s", rd_kafka_message_errstr(m));
        if (!m->err) {
            const char *e = (const char *)m->payload + m->len;
            /* In the embedded event, or (--lean-alerts) in the summary */
            const char *p = memmem(m->payload, m->len, "\"seq\":", 6);
            const char *q = memmem(m->payload, m->len, "\"sent_ns\":", 10);
            if (!p || !q) {
                p = memmem(m->payload, m->len, "[seq=", 5);
                q = memmem(m->payload, m->len, "[sent_ns=", 9);
                if (p && q)
                    p--, q--; /* the same offsets (6 and 10) as above */
            }
            if (p && q && p + 6 < e && q + 10 < e) {
                long seq = strtol(p + 6, NULL, 10);
                long long sent = strtoll(q + 10, NULL, 10);
                if (seq >= 0 && seq < s->nevents) {
                    if (s->lat_ns[seq])
                        atomic_fetch_add(&s->dups, 1);
                    else {
                        s->lat_ns[seq] = recv - sent > 0 ? recv - sent : 1;
                        const char *t = memmem(m->payload, m->len, ",\"time\":\"", 9);
                        struct tm tm = {0};
                        int ms = 0;
                        if (t && t + 40 < e &&
                            sscanf(t + 9, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7) {
                            tm.tm_year -= 1900;
                            tm.tm_mon -= 1;
                            int64_t at = (int64_t)timegm(&tm) * 1000000000 + (int64_t)ms * 1000000;
                            s->vig_ns[seq] = at - sent;
                            s->has_vig[seq] = 1;
                        }
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

#define LAT_MAX_SECS 60

/* Sorts v[0..n) and takes the usual percentiles (nearest rank). */
static void pcts(double *v, long n, double *p50, double *p90, double *p99, double *p999,
                 double *max)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
#define PCT(q) v[(size_t)((double)(n - 1) * (q) + 0.5)]
    *p50 = PCT(0.50);
    *p90 = PCT(0.90);
    *p99 = PCT(0.99);
    *p999 = PCT(0.999);
#undef PCT
    *max = v[n - 1];
}

typedef struct lat_result {
    bool ran;
    long offered, received, missing, dups;
    double achieved_rate, p50, p90, p99, p999, max, mean;
    double vig_p50, vig_p99, vig_max;    /* sent -> alert "time" */
    double back_p50, back_p99, back_max; /* alert "time" -> read back */
    int nsec;                            /* per second of sending */
    double sec_p50[LAT_MAX_SECS], sec_p99[LAT_MAX_SECS], sec_max[LAT_MAX_SECS];
    double vigil_cpu_pct, broker_cpu_pct, other_cpu_pct, self_cpu_pct;
    double max_send_lag_ms;
    double rate;
    bool relay; /* the baseline relay, not vigil */
} lat_result_t;

static const char *lat_who(bool relay)
{
    return relay ? "relay" : "vigil";
}

/* relay: the same run with bare_relay in vigil's place. */
static void run_latency(const char *rules, double lat_rate, bool relay, lat_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->rate = lat_rate;
    r->relay = relay;
    const char *who = lat_who(relay);
    char topic[160], atopic[200], dlq[200], group[200], config[512], logp[512];
    snprintf(topic, sizeof(topic), "%s-lat%.0f%s", prefix, lat_rate, relay ? "-relay" : "");
    snprintf(atopic, sizeof(atopic), "%s-alerts", topic);
    snprintf(dlq, sizeof(dlq), "%s-dlq", prefix);
    snprintf(group, sizeof(group), "%s-group", topic);
    snprintf(config, sizeof(config), "%s/lat%.0f.yaml", workdir, lat_rate);
    snprintf(logp, sizeof(logp), "%s/lat%.0f-%s.log", workdir, lat_rate, who);
    create_topic(topic, 1);
    create_topic(atopic, 1);
    write_vigil_config(config, group, topic, atopic, dlq, rules, 29310);

    /* Excluded from the figures: 200 events sent at once (vigil has joined
     * and is caught up when their alerts are back), then --warmup-seconds
     * (2) at the offered rate (the broker's JIT, the clients' connections
     * and buffers warm up; the first second is otherwise several times
     * slower, and a broker JVM with the C2 compiler needs ~15 s). */
    const long warm_catch = 200, warm_paced = (long)(lat_rate * warm_secs);
    const long warm = warm_catch + warm_paced;
    long measured = (long)(lat_rate * lat_secs);
    lat_state_t s = {.atopic = atopic, .nevents = warm + measured};
    s.lat_ns = calloc((size_t)s.nevents, sizeof(int64_t));
    s.vig_ns = calloc((size_t)s.nevents, sizeof(int64_t));
    s.has_vig = calloc((size_t)s.nevents, 1);
    if (!s.lat_ns || !s.vig_ns || !s.has_vig)
        die("out of memory");
    pthread_t th;
    pthread_create(&th, NULL, lat_reader, &s);

    settle();
    rd_kafka_t *lp = new_producer("1");
    char *argv[] = {(char *)vigil_bin, "run", "--config", config, NULL};
    char *argv_r[] = {self_exe, "--bare-relay", (char *)brokers, topic, atopic, group, NULL};
    pid_t pid = spawn(relay ? argv_r : argv, logp);
    double t0 = e2e_now_s();
    while (!e2e_file_has(logp, "msg=\"started\"") && e2e_now_s() - t0 < 60)
        usleep(10000);
    buf_t b = {0};
    char extra[128];
    /* Warm-up: until these alerts are back, vigil has joined the group and
     * is caught up. */
    for (long k = 0; k < warm_catch; k++) {
        snprintf(extra, sizeof(extra), "\"seq\":%ld,\"sent_ns\":%lld,", k, (long long)now_ns());
        compose_event(&b, k, extra, "Latency probe: ");
        while (rd_kafka_producev(lp, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(b.p, b.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(lp, 10);
        rd_kafka_poll(lp, 0);
    }
    rd_kafka_flush(lp, 30000);
    t0 = e2e_now_s();
    while (atomic_load(&s.seen) < warm_catch && e2e_now_s() - t0 < 60)
        usleep(10000);
    if (atomic_load(&s.seen) < warm_catch) {
        note("latency: only %ld of %ld warm-up alerts came back in 60 s; %s log:",
             atomic_load(&s.seen), warm_catch, who);
        show_log_tail(logp);
    }
    usleep(300000);
    pstat_t ps0, ps1;
    cpu_mark_t c0, c1;
    /* Offered load: event k is due at start + k/rate; sent_ns is the time it
     * is handed to librdkafka (the sender is reported if it falls behind). */
    int64_t start = now_ns(), start_measured = 0;
    double max_lag = 0, send_t0 = e2e_now_s();
    long sent = 0;
    for (long k = 0; k < warm_paced + measured; k++) {
        if (k == warm_paced) {
            read_pstat(pid, &ps0);
            cpu_mark(&c0);
            start_measured = now_ns();
            max_lag = 0;
            /* To line the per-second table up with other logs (vmstat -t,
             * the broker's GC log). */
            time_t t = (time_t)(start_measured / 1000000000);
            struct tm tm;
            gmtime_r(&t, &tm);
            note("latency: %s at %.0f/s: second 1 begins %02d:%02d:%02d.%03d UTC", who, lat_rate,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(start_measured / 1000000 % 1000));
        }
        if (e2e_now_s() - send_t0 > 2 * (lat_secs + warm_secs) + 10) {
            note("latency: the sender cannot keep the offered rate; stopped after %ld events",
                 sent);
            break;
        }
        int64_t due = start + (int64_t)((double)k * 1e9 / lat_rate);
        int64_t t = now_ns();
        /* now_ns is CLOCK_REALTIME: sleep on that clock. */
        if (t < due) {
            struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
            clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
        } else if ((double)(t - due) / 1e6 > max_lag) {
            max_lag = (double)(t - due) / 1e6;
        }
        long seq = warm_catch + k;
        snprintf(extra, sizeof(extra), "\"seq\":%ld,\"sent_ns\":%lld,", seq, (long long)now_ns());
        compose_event(&b, seq, extra, "Latency probe: ");
        while (rd_kafka_producev(lp, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(b.p, b.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(lp, 1);
        rd_kafka_poll(lp, 0);
        if (k >= warm_paced)
            sent++;
    }
    if (!start_measured) { /* stopped during the warm-up */
        read_pstat(pid, &ps0);
        cpu_mark(&c0);
        start_measured = now_ns();
    }
    double send_secs = (double)(now_ns() - start_measured) / 1e9;
    rd_kafka_flush(lp, 30000);
    t0 = e2e_now_s();
    while (atomic_load(&s.seen) < warm + sent && e2e_now_s() - t0 < 60)
        usleep(10000);
    read_pstat(pid, &ps1);
    cpu_mark(&c1);
    double phase = e2e_now_s() - t0 + send_secs;
    usleep(500000); /* duplicates, if any */
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    int st = stop_child(pid, 60);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        note("latency: %s ended with status %d; its log:", who, st);
        show_log_tail(logp);
    }
    rd_kafka_destroy(lp);
    free(b.p);

    double *v = malloc((size_t)measured * sizeof(double));
    long n = 0;
    double sum = 0;
    for (long k = warm; k < warm + sent; k++)
        if (s.lat_ns[k]) {
            v[n] = (double)s.lat_ns[k] / 1e6;
            sum += v[n++];
        }
    r->ran = true;
    r->offered = sent;
    r->received = n;
    r->missing = sent - n;
    r->dups = atomic_load(&s.dups);
    r->achieved_rate = (double)sent / send_secs;
    r->max_send_lag_ms = max_lag;
    r->vigil_cpu_pct = 100 * (ps1.cpu - ps0.cpu) / phase;
    r->broker_cpu_pct = c0.broker >= 0 && c1.broker >= 0 ? 100 * (c1.broker - c0.broker) / phase
                                                         : -1;
    double oc = cpu_other(&c0, &c1);
    r->other_cpu_pct = oc >= 0 ? 100 * oc / phase : -1;
    r->self_cpu_pct = 100 * (c1.self - c0.self) / phase;
    if (n > 0) {
        r->mean = sum / (double)n;
        pcts(v, n, &r->p50, &r->p90, &r->p99, &r->p999, &r->max);
    }
    /* The split at the alert's "time": vigil (consume, evaluate, render)
     * and after it (produce, broker, read back). */
    double *w = malloc((size_t)measured * sizeof(double));
    long nv = 0;
    n = 0;
    for (long k = warm; k < warm + sent; k++)
        if (s.lat_ns[k] && s.has_vig[k]) {
            v[n++] = (double)s.vig_ns[k] / 1e6;
            w[nv++] = (double)(s.lat_ns[k] - s.vig_ns[k]) / 1e6;
        }
    double dummy;
    if (n > 0) {
        pcts(v, n, &r->vig_p50, &dummy, &r->vig_p99, &dummy, &r->vig_max);
        pcts(w, nv, &r->back_p50, &dummy, &r->back_p99, &dummy, &r->back_max);
    }
    /* Per second of sending: does latency stay flat or build up? */
    r->nsec = 0;
    for (int sec = 0; sec < LAT_MAX_SECS && (long)((double)sec * lat_rate) < sent; sec++) {
        long k0 = warm + (long)((double)sec * lat_rate);
        long k1 = warm + (long)((double)(sec + 1) * lat_rate);
        if (k1 > warm + sent)
            k1 = warm + sent;
        n = 0;
        for (long k = k0; k < k1; k++)
            if (s.lat_ns[k])
                v[n++] = (double)s.lat_ns[k] / 1e6;
        if (n > 0)
            pcts(v, n, &r->sec_p50[sec], &dummy, &r->sec_p99[sec], &dummy, &r->sec_max[sec]);
        r->nsec = sec + 1;
    }
    free(w);
    free(v);
    free(s.lat_ns);
    free(s.vig_ns);
    free(s.has_vig);
}

/* ---- ruleset load ---- */

typedef struct load_result {
    bool ran;
    const char *name;
    long terms;
    double check_s, start_s, reload_s;
    long rss_kb, hwm_kb, reload_rss_kb;
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
    double ck[REPS], su[REPS], rl[REPS];
    int nrl = 0;
    for (int i = 0; i < REPS; i++) {
        char *argv[] = {(char *)vigil_bin, "check", rules, NULL};
        double t0 = e2e_now_s();
        pid_t pid = spawn(argv, NULL);
        int st;
        waitpid(pid, &st, 0);
        e2e_track_child(pid, false);
        ck[i] = e2e_now_s() - t0;
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
        write_vigil_config(config, group, topic, atopic, dlq, rules, 29320);
        char *argv[] = {(char *)vigil_bin, "run", "--config", config, NULL};
        double t0 = e2e_now_s();
        pid_t pid = spawn(argv, logp);
        bool seen = false;
        while (e2e_now_s() - t0 < 120) {
            if (e2e_file_has(logp, "msg=\"started\"")) {
                seen = true;
                break;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                e2e_track_child(pid, false);
                pid = 0;
                break;
            }
            usleep(2000);
        }
        if (seen) {
            su[nst++] = e2e_now_s() - t0;
            pstat_t ps;
            read_pstat(pid, &ps);
            r->rss_kb = ps.rss_kb;
            r->hwm_kb = ps.hwm_kb;
            /* Reload: SIGHUP until "rules reloaded" (the new ruleset is
             * compiled beside the live one, then swapped). */
            double t1 = e2e_now_s();
            kill(pid, SIGHUP);
            while (e2e_now_s() - t1 < 120 && !e2e_file_has(logp, "msg=\"rules reloaded\""))
                usleep(2000);
            if (e2e_file_has(logp, "msg=\"rules reloaded\"")) {
                rl[nrl++] = e2e_now_s() - t1;
                read_pstat(pid, &ps);
                r->reload_rss_kb = ps.rss_kb;
            } else {
                note("load %s: no \"rules reloaded\" within 120 s of SIGHUP", name);
            }
        } else {
            note("load %s: vigil run did not log \"started\"; its log:", name);
            show_log_tail(logp);
        }
        if (pid)
            stop_child(pid, 30);
    }
    r->start_s = nst ? median(su, nst) : -1;
    r->reload_s = nrl ? median(rl, nrl) : -1;
    r->ran = true;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_e2e --brokers HOST:PORT --vigil PATH --workdir DIR --events FILE.jsonl\n"
            "                 --terms-10 FILE --terms-1000 FILE [--terms-14k FILE] [--count M]\n"
            "                 [--rate R[,R...]] [--latency-seconds S] [--broker-pid PID]\n"
            "                 [--warmup-seconds S] [--no-relay] [--rounds N] [--timeout S]\n"
            "                 [--only tput,lat,load,scale] [--lean-alerts]\n"
            "Normally run through tests/bench/bench_e2e.sh, which starts a broker.\n");
}

static const char *fmt_mb(double kb, char *out, size_t n)
{
    snprintf(out, n, "%.1f MB", kb / 1024.0);
    return out;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--bare-relay"))
        return bare_relay(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 5 && !strcmp(argv[1], "--bare-consumer"))
        return bare_consumer(argv[2], argv[3], argv[4]);
    static const struct option opts[] = {
        {"brokers", 1, 0, 'b'},   {"vigil", 1, 0, 'v'},       {"workdir", 1, 0, 'w'},
        {"events", 1, 0, 'e'},    {"terms-10", 1, 0, '1'},    {"terms-1000", 1, 0, '2'},
        {"terms-14k", 1, 0, '3'}, {"count", 1, 0, 'n'},       {"rate", 1, 0, 'r'},
        {"latency-seconds", 1, 0, 's'}, {"broker-pid", 1, 0, 'p'}, {"timeout", 1, 0, 't'},
        {"only", 1, 0, 'o'},      {"help", 0, 0, 'h'},        {"lean-alerts", 0, 0, 'L'},
        {"warmup-seconds", 1, 0, 'W'}, {"no-relay", 0, 0, 'R'}, {"rounds", 1, 0, 'N'},
        {0, 0, 0, 0}};
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
        case 'r': {
            /* R[,R...]: one latency run per rate */
            nrates = 0;
            char *save = NULL;
            for (char *t = strtok_r(optarg, ",", &save); t && nrates < MAX_RATES;
                 t = strtok_r(NULL, ",", &save))
                lat_rates[nrates++] = strtod(t, NULL);
            break;
        }
        case 's': lat_secs = strtod(optarg, NULL); break;
        case 'W': warm_secs = strtod(optarg, NULL); break;
        case 'R': with_relay = false; break;
        case 'N': tput_rounds = (int)strtol(optarg, NULL, 10); break;
        case 'p': broker_pid = (pid_t)strtol(optarg, NULL, 10); break;
        case 't': job_timeout = strtod(optarg, NULL); break;
        case 'o': only = optarg; break;
        case 'L': lean_alerts = true; break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!brokers || !vigil_bin || !workdir || !events_path || !terms_path[0] || !terms_path[1] ||
        count_m < 1000 || nrates < 1 || lat_rates[0] <= 0 || lat_secs <= 0 ||
        warm_secs < 0 || warm_secs > 600 || tput_rounds < 1 || tput_rounds > MAX_ROUNDS) {
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
    atexit(e2e_kill_children);
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
                   "    severity: low\n    match:\n"
                   "      text: {any: [$terms, \"latency probe\"]}\n",
                   terms_path[1]);
        /* Without the event in the alert, the reader finds seq and
         * sent_ns in the summary. */
        if (lean_alerts)
            buf_printf(&b, "    alert:\n      summary: '[seq={seq}] [sent_ns={sent_ns}]'\n");
        write_file(ruleslat, b.p);
        free(b.p);
    }
    const char *w = getenv("VIGIL_WORKERS");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char workers[64];
    if (w)
        snprintf(workers, sizeof(workers), "%s (VIGIL_WORKERS)", w);
    else
        snprintf(workers, sizeof(workers), "%ld (default: nproc)", ncpu > 16 ? 16 : ncpu);
    note("%zu Reuters stories; %ld events per topic; %ld CPUs; vigil evaluation threads %s",
         nstories, count_m, ncpu, workers);

    char topic1[200], topic6[200], dlq[200];
    snprintf(dlq, sizeof(dlq), "%s-dlq", prefix);
    create_topic(dlq, 1);

    /* Latency first, on a broker that has not yet taken the gigabytes of
     * the throughput runs: measured after them it was several times worse
     * (and varied from run to run) on a 2-core machine. */
    /* At each rate: the baseline relay, then vigil. */
    lat_result_t lats[2 * MAX_RATES];
    int nlats = 0;
    memset(lats, 0, sizeof(lats));
    if (want("lat"))
        for (int i = 0; i < nrates; i++) {
            if (lat_rates[i] <= 0)
                continue;
            for (int relay = with_relay ? 1 : 0; relay >= 0; relay--) {
                note("latency: %s, %.0f events/s for %.0f s after %.0f s of warm-up ...",
                     relay ? "bare relay" : "vigil", lat_rates[i], lat_secs, warm_secs);
                run_latency(ruleslat, lat_rates[i], relay, &lats[nlats++]);
            }
        }

    snprintf(topic1, sizeof(topic1), "%s-news1", prefix);
    snprintf(topic6, sizeof(topic6), "%s-news6", prefix);
    double prod_s1 = 0, prod_s6 = 0;
    bool need_data = want("tput") || want("scale");
    if (need_data) {
        create_topic(topic1, 1);
        create_topic(topic6, 6);
        note("producing %ld events to %s (1 partition) ...", count_m, topic1);
        topic_bytes = produce_events(topic1, 1, count_m, &prod_s1);
        note("  %.1f s (%.0f events/s); producing to %s (6 partitions) ...", prod_s1,
             (double)count_m / prod_s1, topic6);
        produce_events(topic6, 6, count_m, &prod_s6);
        note("  %.1f s (%.0f events/s); mean event %.0f bytes", prod_s6,
             (double)count_m / prod_s6, (double)topic_bytes / (double)count_m);
        topic_events = count_m;
    }

    job_t bare1 = {.label = "bare consumer, 1 partition", .topic = topic1, .nparts = 1,
                   .nprocs = 1};
    job_t vig1 = {.label = "vigil, 1 partition", .topic = topic1, .nparts = 1, .nprocs = 1,
                  .is_vigil = true};
    job_t bare6 = {.label = "bare consumer, 6 partitions", .topic = topic6, .nparts = 6,
                   .nprocs = 1};
    job_t vig6 = {.label = "vigil, 6 partitions", .topic = topic6, .nparts = 6, .nprocs = 1,
                  .is_vigil = true};
    job_t dual = {.label = "2 x vigil, one group, 6 partitions", .topic = topic6, .nparts = 6,
                  .nprocs = 2, .is_vigil = true};
    /* The same events, a rule that seldom matches: what scanning costs
     * without the alert traffic. */
    char sdn_label[128], rules_sdn[512];
    long sdn_terms = terms_path[2] ? count_terms(terms_path[2]) : 0;
    snprintf(sdn_label, sizeof(sdn_label), "vigil, 1 partition, %ld SDN names (few alerts)",
             sdn_terms);
    snprintf(rules_sdn, sizeof(rules_sdn), "%s/rules-sdn.yaml", workdir);
    job_t vigs = {.label = sdn_label, .topic = topic1, .nparts = 1, .nprocs = 1, .is_vigil = true};
    /* BENCH_RULES (bench_e2e.sh --rules PATH): the same events under a
     * rule folder of the caller's, e.g. the shipped packs with their
     * near/except/entity rules. */
    const char *rules_own = getenv("BENCH_RULES");
    char own_label[600];
    snprintf(own_label, sizeof(own_label), "vigil, 1 partition, rules %s",
             rules_own ? rules_own : "-");
    job_t vigr = {.label = own_label, .topic = topic1, .nparts = 1, .nprocs = 1, .is_vigil = true};
    bool ran_tput = false, ran_scale = false;
    tally_t ref = {0}, got = {0}, per[MAXPROCS];
    memset(per, 0, sizeof(per));
    if (want("tput")) {
        /* Rounds interleaved (bare, vigil, bare, vigil ...) so that a
         * slow spell of the broker does not fall on one side only; each
         * job keeps its median run. */
        job_t *tj[] = {&bare1, &vig1, &bare6, &vig6};
        static job_t runs[4][MAX_ROUNDS];
        for (int r = 0; r < tput_rounds; r++)
            for (int k = 0; k < 4; k++) {
                runs[k][r] = *tj[k];
                run_job(&runs[k][r], rules1k);
            }
        for (int k = 0; k < 4; k++)
            keep_median(tj[k], runs[k], tput_rounds);
        if (terms_path[2]) {
            buf_t b = {0};
            buf_printf(&b,
                       "lists:\n  sdn: {file: \"%s\"}\nrules:\n  - id: sdn-names\n"
                       "    severity: low\n    match:\n      text: {any: $sdn}\n",
                       terms_path[2]);
            write_file(rules_sdn, b.p);
            free(b.p);
            run_job(&vigs, rules_sdn);
        }
        if (rules_own && *rules_own)
            run_job(&vigr, rules_own);
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
    printf("- host: %ld CPUs, shared by the broker, vigil and this program; vigil evaluation "
           "threads: %s\n",
           ncpu, workers);
    const char *bjvm = getenv("BENCH_BROKER_JVM");
    printf("- broker JVM: %s\n", bjvm && *bjvm ? bjvm : "(not given)");
    const char *bdata = getenv("BENCH_BROKER_DATA");
    printf("- broker data: %s\n", bdata && *bdata ? bdata : "(not given)");
    if (need_data)
        printf("- input: %ld news events per topic, mean %.0f bytes (%.1f MB), Reuters-21578 "
               "text; produced at %.0f events/s (1 partition) and %.0f events/s (6 partitions)\n",
               count_m, (double)topic_bytes / (double)count_m, (double)topic_bytes / 1e6,
               (double)count_m / prod_s1, (double)count_m / prod_s6);
    printf("- rule: one rule, `text: {any: $terms}`, %ld terms (%s)\n", count_terms(terms_path[1]),
           terms_path[1]);
    printf("- time: from process start until the group's committed offsets reach the end of "
           "the topic (auto.commit.interval.ms 200, polled every 20 ms); steady: the events "
           "between the 10%% and 90%% commit marks / the time between them; other CPU: CPU "
           "time of processes other than the consumer(s), the broker and bench_e2e (other load "
           "on the machine; should be ~0)\n\n");
    job_t *jobs[] = {&bare1, &vig1, &vigs, &vigr, &bare6, &vig6, &dual};
    const int njobs = (int)(sizeof(jobs) / sizeof(jobs[0]));
    if (ran_tput || ran_scale) {
        printf("### 1. Throughput\n\n");
        printf("| consumer | partitions | time s | events/s | MB/s | steady events/s | "
               "\"started\" at s | CPU s | CPU ms / 1k events | peak RSS | broker CPU s | other "
               "CPU s | alerts |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int k = 0; k < njobs; k++) {
            job_t *j = jobs[k];
            if (!j->ran)
                continue;
            if (!j->ok) {
                printf("| %s | %d | did not finish | | | | | | | | | | |\n", j->label, j->nparts);
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
            char started[32] = "-", alerts[32] = "-", bcpu[32] = "-", st_rate[32] = "-",
                 ocpu[32] = "-";
            if (steady > 0)
                snprintf(st_rate, sizeof(st_rate), "%.0f", steady);
            if (j->is_vigil) {
                snprintf(started, sizeof(started), "%.2f", st);
                snprintf(alerts, sizeof(alerts), "%lld", (long long)al);
            }
            if (j->broker_cpu >= 0)
                snprintf(bcpu, sizeof(bcpu), "%.1f", j->broker_cpu);
            if (j->other_cpu >= 0)
                snprintf(ocpu, sizeof(ocpu), "%.1f", j->other_cpu);
            printf("| %s | %d | %.2f | %.0f | %.1f | %s | %s | %.1f | %.1f | %s%s | %s | %s | "
                   "%s |\n",
                   j->label, j->nparts, j->wall, (double)j->events / j->wall,
                   (double)j->bytes / 1e6 / j->wall, st_rate, started, cpu,
                   cpu / (double)j->events * 1e6, fmt_mb(hwm, m1, sizeof(m1)),
                   j->nprocs > 1 ? " (sum)" : "", bcpu, ocpu, alerts);
        }
        printf("\n");
        if (ran_tput && bare1.ok && vig1.ok)
            printf("- vigil / bare consumer, 1 partition: %.2f (steady: %.2f)\n",
                   bare1.wall / vig1.wall,
                   bare1.t90 > bare1.t10 && vig1.t90 > vig1.t10
                       ? (bare1.t90 - bare1.t10) / (vig1.t90 - vig1.t10)
                       : 0);
        if (ran_tput && bare6.ok && vig6.ok)
            printf("- vigil / bare consumer, 6 partitions: %.2f\n", bare6.wall / vig6.wall);
        if (ran_tput && tput_rounds > 1) {
            printf("- each row of bare and vigil runs with 1,000 terms is the median of %d "
                   "interleaved runs; their times (s):",
                   tput_rounds);
            const job_t *tj[] = {&bare1, &vig1, &bare6, &vig6};
            for (int k = 0; k < 4; k++) {
                printf("%s %s", k ? ";" : "", tj[k]->label);
                for (int r = 0; r < tj[k]->nrounds; r++)
                    printf("%s%.2f", r ? " / " : " ", tj[k]->round_wall[r]);
            }
            printf("\n");
        }
        if (ran_tput && vig6.ok && vig6.alerts_n[0] > 0 && ref.alerts)
            printf("- alerts: %.1f%% of the events matched; mean alert %.0f bytes (the event "
                   "plus its matches), %.1f MB of alerts per run\n",
                   100.0 * (double)vig6.alerts_n[0] / (double)vig6.events,
                   (double)ref.bytes / (double)ref.alerts, (double)ref.bytes / 1e6);
        printf("\n");
    }
    if (lats[0].ran) {
        printf("### 2. Latency (%.0f s at each offered rate after %.0f s of warm-up, 1 partition, "
               "vigil caught up)\n\n",
               lat_secs, warm_secs);
        printf("sent = when the event was handed to librdkafka (linger.ms 1); back = when this "
               "program read the alert; vigil = the alert's own \"time\" (ms resolution). CPU: "
               "%% of one core over the measured seconds (the host has %ld). relay = the "
               "baseline in vigil's place: a plain librdkafka consumer and producer, configured "
               "as vigil's, answering each event with a 60-byte message (no decoding, no "
               "rules).\n\n",
               ncpu);
        printf("| who | offered | sent at | alerts back | missing | dup | p50 ms | p90 ms | "
               "p99 ms | p99.9 ms | max ms | sent→who p50 / p99 / max ms | "
               "who→back p50 / p99 / max ms | who CPU | broker CPU | bench_e2e CPU | "
               "other CPU |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int li = 0; li < nlats; li++) {
            const lat_result_t *l = &lats[li];
            if (!l->ran)
                continue;
            char bc[32] = "-", oc[32] = "-";
            if (l->broker_cpu_pct >= 0)
                snprintf(bc, sizeof(bc), "%.0f%%", l->broker_cpu_pct);
            if (l->other_cpu_pct >= 0)
                snprintf(oc, sizeof(oc), "%.0f%%", l->other_cpu_pct);
            printf("| %s | %.0f/s × %.0f s | %.0f/s | %ld | %ld | %ld | %.1f | %.1f | %.1f | "
                   "%.1f | %.1f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.0f%% | %s | %.0f%% "
                   "| %s |\n",
                   lat_who(l->relay), l->rate, lat_secs, l->achieved_rate, l->received,
                   l->missing, l->dups, l->p50, l->p90, l->p99, l->p999, l->max, l->vig_p50,
                   l->vig_p99, l->vig_max, l->back_p50, l->back_p99, l->back_max,
                   l->vigil_cpu_pct, bc, l->self_cpu_pct, oc);
        }
        printf("\nPer second of sending (ms):\n\n| who, rate | |");
        int nsec = 0;
        for (int li = 0; li < nlats; li++)
            if (lats[li].ran && lats[li].nsec > nsec)
                nsec = lats[li].nsec;
        for (int i = 0; i < nsec; i++)
            printf(" %d |", i + 1);
        printf("\n|---|---|");
        for (int i = 0; i < nsec; i++)
            printf("---|");
        const char *rowname[] = {"p50", "p99", "max"};
        for (int li = 0; li < nlats; li++) {
            const lat_result_t *l = &lats[li];
            if (!l->ran)
                continue;
            for (int row = 0; row < 3; row++) {
                printf("\n| %s %.0f/s | %s |", lat_who(l->relay), l->rate, rowname[row]);
                for (int i = 0; i < nsec; i++) {
                    if (i >= l->nsec)
                        printf(" |");
                    else
                        printf(" %.0f |", row == 0   ? l->sec_p50[i]
                                          : row == 1 ? l->sec_p99[i]
                                                     : l->sec_max[i]);
                }
            }
        }
        printf("\n\n");
        for (int li = 0; li < nlats; li++)
            if (lats[li].ran && lats[li].max_send_lag_ms > 5)
                printf("- %s at %.0f/s: the sender fell up to %.1f ms behind its schedule\n",
                       lat_who(lats[li].relay), lats[li].rate, lats[li].max_send_lag_ms);
        printf("\n");
    }
    if (want("load")) {
        printf("### 3. Ruleset load (one rule, `text: {any: $terms}`, median of 3)\n\n");
        printf("| terms | `vigil check` s | `vigil run` to \"started\" s | RSS after start | "
               "peak RSS | SIGHUP to \"rules reloaded\" s | RSS after reload |\n"
               "|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < 3; i++) {
            if (!load[i].ran) {
                printf("| %s | skipped | | | | | |\n", load[i].name ? load[i].name : "-");
                continue;
            }
            char started[32] = "failed";
            if (load[i].start_s >= 0)
                snprintf(started, sizeof(started), "%.3f", load[i].start_s);
            char reload[32] = "failed", m3[32];
            if (load[i].reload_s >= 0)
                snprintf(reload, sizeof(reload), "%.3f", load[i].reload_s);
            printf("| %ld | %.3f%s | %s | %s | %s | %s | %s |\n", load[i].terms, load[i].check_s,
                   load[i].check_rc ? " (exit != 0)" : "", started,
                   fmt_mb((double)load[i].rss_kb, m1, sizeof(m1)),
                   fmt_mb((double)load[i].hwm_kb, m2, sizeof(m2)), reload,
                   fmt_mb((double)load[i].reload_rss_kb, m3, sizeof(m3)));
        }
        printf("\n");
    }

    if (ran_scale) {
        printf("### 4. Two instances, one consumer group, 6 partitions\n\n");
        printf("| | value |\n|---|---|\n");
        if (dual.ok) {
            printf("| combined rate | %.0f events/s (%.1f MB/s) in %.2f s |\n",
                   (double)dual.events / dual.wall, (double)dual.bytes / 1e6 / dual.wall,
                   dual.wall);
            if (ran_tput && vig6.ok)
                printf("| one instance (step 1) | %.0f events/s; two / one = %.2f |\n",
                       (double)vig6.events / vig6.wall, vig6.wall / dual.wall);
        } else {
            printf("| combined rate | did not finish within %.0f s |\n", job_timeout);
        }
        for (int i = 0; i < 2; i++)
            printf("| instance %c | consumed %ld, %lld alerts, assigned partitions %ld times, CPU "
                   "%.1f s, peak RSS %s, exit status %d |\n",
                   'A' + i, dual.consumed[i], (long long)per[i].alerts, dual.assignments[i],
                   dual.ps[i].cpu, fmt_mb((double)dual.ps[i].hwm_kb, m2, sizeof(m2)),
                   WIFEXITED(dual.status[i]) ? WEXITSTATUS(dual.status[i]) : -1);
        printf("| events that must alert | %lld of %lld (%s) |\n", (long long)covered,
               (long long)dual.events,
               ran_tput && vig6.ok ? "those the one-instance run alerted on" : "no reference");
        printf("| missing (no alert from either instance) | %lld |\n", (long long)missing);
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
    /* The one table to quote. */
    printf("### Summary\n\n| measure | value |\n|---|---|\n");
    if (ran_tput) {
        for (int k = 0; k < njobs - 1; k++)
            if (jobs[k]->ok)
                printf("| %s | %.0f events/s, %.1f MB/s |\n", jobs[k]->label,
                       (double)jobs[k]->events / jobs[k]->wall,
                       (double)jobs[k]->bytes / 1e6 / jobs[k]->wall);
        if (bare1.ok && vig1.ok)
            printf("| vigil / bare, 1 partition | %.2f |\n", bare1.wall / vig1.wall);
        if (bare6.ok && vig6.ok)
            printf("| vigil / bare, 6 partitions | %.2f |\n", bare6.wall / vig6.wall);
        if (vig1.ok)
            printf("| vigil CPU, peak RSS (1 partition) | %.1f ms per 1k events, %s |\n",
                   vig1.ps[0].cpu / (double)vig1.events * 1e6,
                   fmt_mb((double)vig1.ps[0].hwm_kb, m1, sizeof(m1)));
    }
    for (int li = 0; li < nlats; li++)
        if (lats[li].ran && lats[li].received)
            printf("| latency at %.0f events/s%s | p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
                   "max %.1f ms (%ld of %ld back) |\n",
                   lats[li].rate, lats[li].relay ? ", bare relay (baseline)" : "", lats[li].p50,
                   lats[li].p90, lats[li].p99, lats[li].max, lats[li].received,
                   lats[li].offered);
    for (int i = 0; i < 3; i++)
        if (load[i].ran && load[i].start_s >= 0)
            printf("| load %ld terms | check %.3f s, run→started %.3f s, RSS %s; reload %.3f s |\n",
                   load[i].terms, load[i].check_s, load[i].start_s,
                   fmt_mb((double)load[i].rss_kb, m1, sizeof(m1)), load[i].reload_s);
    if (ran_scale && dual.ok) {
        printf("| 2 instances, 6 partitions | %.0f events/s", (double)dual.events / dual.wall);
        if (ran_tput && vig6.ok)
            printf(" (%.2f x one instance)", vig6.wall / dual.wall);
        printf("; split %ld / %ld events; %s |\n", dual.consumed[0], dual.consumed[1],
               covered && missing == 0 && dup_events == 0 && extra == 0
                   ? "each alert exactly once"
                   : "NOT exactly once");
    }
    double oth = 0;
    for (int k = 0; k < njobs; k++)
        if (jobs[k]->ok && jobs[k]->other_cpu > oth)
            oth = jobs[k]->other_cpu;
    double loth = 0;
    for (int li = 0; li < nlats; li++)
        if (lats[li].ran && lats[li].other_cpu_pct > loth)
            loth = lats[li].other_cpu_pct;
    if (oth > 0.5 || loth > 5)
        printf("\nWARNING: other processes used CPU while this ran (up to %.1f s in a throughput "
               "run, %.0f%% of a core during a latency run); the machine was not idle and the "
               "figures are lower than they would be.\n",
               oth, loth);
    printf("\n");
    tally_free(&ref);
    tally_free(&got);
    tally_free(&per[0]);
    tally_free(&per[1]);
    rd_kafka_destroy(prod);
    return 0;
}
