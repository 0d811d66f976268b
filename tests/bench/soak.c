/* soak: `vigil run` on a real Kafka broker for a long input, with rule
 * reloads all along, checking that nothing is lost and memory stays flat.
 * A benchmark, not a test: it prints what it measured (markdown on stdout,
 * progress on stderr) and exits 0 whatever the figures are, 1 when an
 * alert went missing or came twice, 77 when it cannot run, 2 on a usage
 * error. tests/bench/soak.sh prepares everything and runs it.
 *
 *   soak --brokers HOST:PORT --vigil PATH --workdir DIR --events FILE.jsonl
 *        --expected FILE --rules-link PATH --variants DIR_A,DIR_B,DIR_BROKEN
 *        [--count N] [--reload-every S] [--broken-every K] [--bad-every M]
 *        [--sample-every S] [--timeout S] [--alert-topics T1,T2,...] [--rate R]
 *
 * What it does:
 *   1. Produces N events (default 1,000,000) to a new 1-partition topic
 *      (before vigil starts; or with --rate R, at R events/s while it runs):
 *      event i is line (i mod L) of FILE.jsonl (L lines; Reuters stories),
 *      except that every M-th (default 10,000) is not JSON, which vigil
 *      must send to the dead-letter topic.
 *   2. Starts `vigil run` on it (rules.paths = the symlink --rules-link) and
 *      every S seconds (default 3) points the symlink at another rule
 *      folder and sends SIGHUP (default every second): A and B in turn, and every K-th reload
 *      (default 5) the broken one, which vigil must refuse (keeping the
 *      rules it has). A and B hold the same rules written differently
 *      (other file names, so another load order; other comments), so they
 *      alert identically.
 *   3. Samples vigil's RSS (VmRSS) and committed offset every 2 s, until the
 *      group's committed offset reaches the end of the topic.
 *   4. Stops vigil (SIGTERM), reads every alert back (from the default
 *      alert topic and the --alert-topics that rules name) and compares the set
 *      of (rule, source offset) with the expected one: --expected is
 *      `vigil scan` of FILE.jsonl with rule folder A, whose alerts name
 *      their line; offset i expects the alerts of line (i mod L) + 1.
 *      Counts missing, duplicated and unexpected alerts, dead letters, the
 *      reloads vigil logged as done and refused, and its error lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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

static const char *brokers, *vigil_bin, *workdir, *events_path, *expected_path, *rules_link;
static char *alert_topics; /* --alert-topics: the rules' own alert.topic values */
static char *variant[3]; /* A, B, broken */
static long count_n = 1000000;
static double reload_every = 1, sample_every = 2, timeout_s = 1800, rate;
static long broken_every = 5, bad_every = 10000;
static char prefix[64];
static pid_t vigil_pid;

#define note(...) e2e_say("soak", "", __VA_ARGS__)
/* Says why, kills vigil when it runs, and exits 2. */
#define die(...) (e2e_say("soak", "", __VA_ARGS__), give_up())

static _Noreturn void give_up(void)
{
    if (vigil_pid > 0)
        kill(vigil_pid, SIGKILL);
    exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- input: the events file and the expected alerts ---- */

static char **lines;
static size_t *line_len;
static size_t nlines;

static void load_events(void)
{
    FILE *f = fopen(events_path, "r");
    if (!f)
        die("%s: %s", events_path, strerror(errno));
    size_t cap = 0;
    char *l = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&l, &lcap, f)) > 0) {
        while (n && (l[n - 1] == '\n' || l[n - 1] == '\r'))
            n--;
        if (!n)
            continue;
        if (nlines == cap) {
            cap = cap ? 2 * cap : 4096;
            lines = realloc(lines, cap * sizeof(*lines));
            line_len = realloc(line_len, cap * sizeof(*line_len));
            if (!lines || !line_len)
                die("out of memory");
        }
        lines[nlines] = strndup(l, (size_t)n);
        line_len[nlines++] = (size_t)n;
    }
    free(l);
    fclose(f);
    if (!nlines)
        die("%s holds no events", events_path);
}

/* Rule ids seen in the expected alerts, in order of first sight. */
#define MAXRULES 64
static char *rule_ids[MAXRULES];
static int nrules;
static uint64_t *want_mask; /* per line: bit r set = rule r alerts */

static int rule_index(const char *id, size_t len, bool add)
{
    for (int r = 0; r < nrules; r++)
        if (strlen(rule_ids[r]) == len && !memcmp(rule_ids[r], id, len))
            return r;
    if (!add)
        return -1;
    if (nrules == MAXRULES)
        die("more than %d rules alert", MAXRULES);
    rule_ids[nrules] = strndup(id, len);
    return nrules++;
}

/* The alert's "rule" value: the first `"rule":"` is the alert's own (the
 * event comes last and its quotes are escaped inside strings anyway). */
static bool alert_rule(const char *a, size_t len, const char **id, size_t *idlen)
{
    static const char key[] = "\"rule\":\"";
    const char *s = memmem(a, len, key, sizeof(key) - 1);
    if (!s)
        return false;
    s += sizeof(key) - 1;
    const char *e = memchr(s, '"', (size_t)(a + len - s));
    if (!e)
        return false;
    *id = s;
    *idlen = (size_t)(e - s);
    return true;
}

static long expected_per_cycle;

static void load_expected(void)
{
    want_mask = xcalloc(nlines, sizeof(*want_mask));
    FILE *f = fopen(expected_path, "r");
    if (!f)
        die("%s: %s", expected_path, strerror(errno));
    char *l = NULL;
    size_t lcap = 0;
    ssize_t n;
    static const char key[] = ",\"line\":";
    while ((n = getline(&l, &lcap, f)) > 0) {
        const char *id;
        size_t idlen;
        const char *s = memmem(l, (size_t)n, "\"source\":{\"file\":", 17);
        const char *ln = s ? memmem(s, (size_t)(l + n - s), key, sizeof(key) - 1) : NULL;
        if (!alert_rule(l, (size_t)n, &id, &idlen) || !ln)
            die("%s: not an alert of vigil scan: %.80s", expected_path, l);
        long line = strtol(ln + sizeof(key) - 1, NULL, 10);
        if (line < 1 || (size_t)line > nlines)
            die("%s: line %ld out of range", expected_path, line);
        int r = rule_index(id, idlen, true);
        if (!(want_mask[line - 1] & (1ULL << r)))
            expected_per_cycle++;
        want_mask[line - 1] |= 1ULL << r;
    }
    free(l);
    fclose(f);
}

static bool is_bad(long i) { return bad_every > 0 && (i + 1) % bad_every == 0; }

/* ---- Kafka ---- */

static rd_kafka_t *prod;
static long delivered, delivery_failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (delivery_failed++ < 5)
            note("delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static void new_producer(void)
{
    static const char *const props[] = {"enable.idempotence",
                                        "true", /* offset i is event i */
                                        "linger.ms",
                                        "50",
                                        "batch.size",
                                        "1000000",
                                        "queue.buffering.max.kbytes",
                                        "262144",
                                        NULL};
    char e[600];
    prod = e2e_kafka_client(RD_KAFKA_PRODUCER, brokers, props, dr_cb, e, sizeof(e));
    if (!prod)
        die("%s", e);
}

static rd_kafka_t *new_consumer(const char *group)
{
    const char *const props[] = {"group.id", group, "enable.auto.commit", "false", NULL};
    char e[600];
    rd_kafka_t *rk = e2e_kafka_client(RD_KAFKA_CONSUMER, brokers, props, NULL, e, sizeof(e));
    if (!rk)
        die("%s", e);
    return rk;
}

static void create_topic(const char *name)
{
    char e[600];
    if (e2e_create_topic(prod, name, 1, NULL, false, e, sizeof(e)) != 0)
        die("%s", e);
}

/* The end offset of topic's partition 0; 0 for a topic that does not
 * exist (a rule's alert topic that no alert went to). */
static int64_t high_wm(const char *topic)
{
    int64_t lo = 0, hi = 0;
    for (int tries = 0; tries < 20; tries++) {
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(prod, topic, 0, &lo, &hi, 10000);
        if (!e)
            return hi;
        if ((e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
             e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) && tries >= 3)
            return 0;
        if (tries == 19)
            note("watermarks of %s: %s", topic, rd_kafka_err2str(e));
        usleep(250000);
    }
    die("watermarks of %s unavailable", topic);
    return -1;
}

static long n_bad;
static int64_t in_bytes;

/* Produces the N events, at `rate` events/s when rate > 0 (else as fast
 * as the broker takes them); returns the seconds it took. */
static double produce_all(const char *topic)
{
    double t0 = e2e_now_s();
    char bad[64];
    for (long i = 0; i < count_n; i++) {
        if (rate > 0 && (i & 63) == 0) {
            double wait = t0 + (double)i / rate - e2e_now_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
        const char *v;
        size_t len;
        if (is_bad(i)) {
            len = (size_t)snprintf(bad, sizeof(bad), "{\"soak\": %ld, not json", i);
            v = bad;
            n_bad++;
        } else {
            v = lines[(size_t)i % nlines];
            len = line_len[(size_t)i % nlines];
        }
        in_bytes += (int64_t)len;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_VALUE((void *)v, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
        if (e)
            die("produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(prod, 0);
        if ((i + 1) % 100000 == 0)
            fprintf(stderr, "\rsoak: produced %ld events", i + 1);
    }
    fputc('\n', stderr);
    if (rd_kafka_flush(prod, 300000) != 0)
        die("flushing took more than 300 s");
    if (delivered != count_n)
        die("only %ld of %ld events were acknowledged", delivered, count_n);
    return e2e_now_s() - t0;
}

static double prod_secs;

static void *producer_thread(void *topic)
{
    prod_secs = produce_all(topic);
    return NULL;
}

static int64_t committed(rd_kafka_t *mon, const char *topic)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0);
    int64_t o = -1;
    if (rd_kafka_committed(mon, l, 5000) == 0 && !l->elems[0].err)
        o = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return o < 0 ? 0 : o;
}

/* ---- the vigil process ---- */

static long rss_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            kb = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return kb;
}

static void point_rules_at(const char *dir)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.new", rules_link);
    unlink(tmp);
    if (symlink(dir, tmp) != 0 || rename(tmp, rules_link) != 0)
        die("pointing %s at %s: %s", rules_link, dir, strerror(errno));
}

/* Reloads vigil has logged as done or refused. */
static long logged_reloads(const char *path)
{
    return (long)(e2e_count_in_file(path, "msg=\"rules reloaded\"") +
                  e2e_count_in_file(path, "reload failed"));
}

/* Error lines other than those of a refused reload (the broken set's
 * diagnostics, "no rules loaded", "reload failed"). */
static long count_other_errors(const char *path, bool print)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *l = NULL;
    size_t cap = 0;
    long n = 0;
    while (getline(&l, &cap, f) > 0)
        if ((strstr(l, "level=error") || strstr(l, "\"level\":\"error\"")) && !strstr(l, " at=") &&
            !strstr(l, "no rules loaded") && !strstr(l, "reload failed")) {
            if (print && n < 10)
                fprintf(stderr, "    %s", l);
            n++;
        }
    free(l);
    fclose(f);
    return n;
}

static void print_lines_with(const char *path, const char *needle, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *l = NULL;
    size_t cap = 0;
    while (max > 0 && getline(&l, &cap, f) > 0)
        if (strstr(l, needle)) {
            fprintf(stderr, "    %s", l);
            max--;
        }
    free(l);
    fclose(f);
}

/* ---- reading the alerts back ---- */

static uint64_t *got_mask, *dup_mask;
static long alerts_read, unparsed, foreign, unexpected, duplicates;

static void read_alerts(const char *atopic, const char *src_topic)
{
    int64_t hw = high_wm(atopic);
    if (!got_mask) {
        got_mask = xcalloc((size_t)count_n, sizeof(*got_mask));
        dup_mask = xcalloc((size_t)count_n, sizeof(*dup_mask));
    }
    if (hw <= 0)
        return;
    char group[128];
    snprintf(group, sizeof(group), "%s-reader", prefix);
    rd_kafka_t *c = new_consumer(group);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, atopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    char want[300];
    int wl = snprintf(want, sizeof(want), "\"source\":{\"topic\":\"%s\",\"partition\":0,\"offset\":",
                      src_topic);
    int64_t last = -1;
    double progress = e2e_now_s();
    while (last < hw - 1 && e2e_now_s() - progress < 60) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (m->err) {
            note("reading %s: %s", atopic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        progress = e2e_now_s();
        last = m->offset;
        alerts_read++;
        const char *p = m->payload, *id;
        size_t idlen;
        const char *s = memmem(p, m->len, want, (size_t)wl);
        if (!s || !alert_rule(p, m->len, &id, &idlen)) {
            unparsed++;
        } else {
            long long off = strtoll(s + wl, NULL, 10);
            int r = rule_index(id, idlen, false);
            if (off < 0 || off >= count_n) {
                foreign++;
            } else if (r < 0 || is_bad(off) || !(want_mask[off % (long long)nlines] & (1ULL << r))) {
                unexpected++;
            } else if (got_mask[off] & (1ULL << r)) {
                dup_mask[off] |= 1ULL << r;
                duplicates++;
            } else {
                got_mask[off] |= 1ULL << r;
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

/* ---- main ---- */

typedef struct sample {
    double t;
    long rss_kb;
    int64_t committed;
    long reloads;
} sample_t;

static void usage(void)
{
    fprintf(stderr,
            "usage: soak --brokers HOST:PORT --vigil PATH --workdir DIR --events FILE.jsonl\n"
            "            --expected FILE --rules-link PATH --variants DIR_A,DIR_B,DIR_BROKEN\n"
            "            [--count N] [--reload-every S] [--broken-every K] [--bad-every M]\n"
            "            [--sample-every S] [--timeout S] [--alert-topics T1,T2,...]\n"
            "            [--rate R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", 1, 0, 'b'},      {"vigil", 1, 0, 'v'},        {"workdir", 1, 0, 'w'},
        {"events", 1, 0, 'e'},       {"expected", 1, 0, 'x'},     {"rules-link", 1, 0, 'l'},
        {"variants", 1, 0, 'V'},     {"count", 1, 0, 'n'},        {"reload-every", 1, 0, 'r'},
        {"broken-every", 1, 0, 'k'}, {"bad-every", 1, 0, 'm'},    {"sample-every", 1, 0, 's'},
        {"timeout", 1, 0, 't'},      {"alert-topics", 1, 0, 'T'}, {"rate", 1, 0, 'R'},
        {0, 0, 0, 0}};
    int c;
    char *vars = NULL;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 'v': vigil_bin = optarg; break;
        case 'w': workdir = optarg; break;
        case 'e': events_path = optarg; break;
        case 'x': expected_path = optarg; break;
        case 'l': rules_link = optarg; break;
        case 'V': vars = optarg; break;
        case 'n': count_n = atol(optarg); break;
        case 'r': reload_every = atof(optarg); break;
        case 'k': broken_every = atol(optarg); break;
        case 'm': bad_every = atol(optarg); break;
        case 's': sample_every = atof(optarg); break;
        case 't': timeout_s = atof(optarg); break;
        case 'T': alert_topics = optarg; break;
        case 'R': rate = atof(optarg); break;
        default: usage();
        }
    }
    if (!brokers || !vigil_bin || !workdir || !events_path || !expected_path || !rules_link ||
        !vars || count_n <= 0 || reload_every <= 0 || sample_every <= 0)
        usage();
    variant[0] = strtok(vars, ",");
    variant[1] = strtok(NULL, ",");
    variant[2] = strtok(NULL, ",");
    if (!variant[2])
        usage();
    signal(SIGPIPE, SIG_IGN);
    snprintf(prefix, sizeof(prefix), "soak-%d-%ld", (int)getpid(), (long)time(NULL));

    load_events();
    load_expected();
    note("%zu distinct events, %ld alerts expected over them, %d rules alert", nlines,
         expected_per_cycle, nrules);

    new_producer();
    char in_topic[128], a_topic[128], dlq_topic[128];
    snprintf(in_topic, sizeof(in_topic), "%s-news", prefix);
    snprintf(a_topic, sizeof(a_topic), "%s-alerts", prefix);
    snprintf(dlq_topic, sizeof(dlq_topic), "%s-dlq", prefix);
    create_topic(in_topic);
    create_topic(a_topic);
    create_topic(dlq_topic);
    int64_t end = count_n;
    if (rate <= 0) {
        note("producing %ld events to %s", count_n, in_topic);
        prod_secs = produce_all(in_topic);
        if (high_wm(in_topic) != count_n)
            die("%s holds %lld events, not %ld", in_topic, (long long)high_wm(in_topic), count_n);
        note("produced in %.1f s (%.0f events/s, %.0f MB)", prod_secs, count_n / prod_secs,
             in_bytes / 1e6);
    }

    char cfg[4200], logp[4200];
    snprintf(cfg, sizeof(cfg), "%s/soak.yaml", workdir);
    snprintf(logp, sizeof(logp), "%s/vigil.log", workdir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        die("%s: %s", cfg, strerror(errno));
    fprintf(f,
            "kafka:\n  brokers: \"%s\"\n  group: %s-vigil\n"
            "  properties:\n    auto.commit.interval.ms: \"1000\"\n"
            "input:\n  topics: [%s]\n"
            "output:\n  topic: %s\n  dead_letter_topic: %s\n"
            "rules:\n  paths: [%s]\n"
            "metrics:\n  listen: \"off\"\n",
            brokers, prefix, in_topic, a_topic, dlq_topic, rules_link);
    fclose(f);
    point_rules_at(variant[0]);
    char group[160];
    snprintf(group, sizeof(group), "%s-vigil", prefix);
    rd_kafka_t *mon = new_consumer(group);
    committed(mon, in_topic); /* connect before the clock starts */

    double t0 = e2e_now_s();
    char *vigil_argv[] = {(char *)vigil_bin, "run", "--config", cfg, NULL};
    vigil_pid = e2e_spawn(vigil_argv, logp, false);
    if (vigil_pid < 0)
        die("fork: %s", strerror(errno));
    pthread_t pt;
    bool producing = false;
    if (rate > 0) {
        note("producing %ld events to %s at %.0f events/s while vigil runs", count_n, in_topic,
             rate);
        if (pthread_create(&pt, NULL, producer_thread, in_topic) != 0)
            die("cannot start the producer thread");
        producing = true;
    }
    size_t cap = 1024, ns = 0;
    sample_t *samples = xcalloc(cap, sizeof(*samples));
    long sent = 0, sent_broken = 0, rss_start = -1;
    double next_reload = reload_every, next_sample = 0, started = -1, wall = -1;
    int cur = 0;
    bool exited = false;
    while (e2e_now_s() - t0 < timeout_s) {
        double t = e2e_now_s() - t0;
        int st;
        if (waitpid(vigil_pid, &st, WNOHANG) == vigil_pid) {
            note("vigil exited early (status %d); see %s", st, logp);
            exited = true;
            break;
        }
        if (started < 0 && e2e_file_has(logp, "msg=\"started\"")) {
            started = t;
            rss_start = rss_kb(vigil_pid, "VmRSS");
        }
        int64_t done = committed(mon, in_topic);
        if (t >= next_sample || done >= end) {
            if (ns == cap) {
                cap *= 2;
                samples = realloc(samples, cap * sizeof(*samples));
                if (!samples)
                    die("out of memory");
            }
            samples[ns++] = (sample_t){t, rss_kb(vigil_pid, "VmRSS"), done, sent};
            fprintf(stderr, "\rsoak: %5.0f s  committed %lld/%lld  RSS %ld MB  reloads %ld   ", t,
                    (long long)done, (long long)end, samples[ns - 1].rss_kb / 1024, sent);
            next_sample += sample_every;
        }
        if (done >= end) {
            wall = t;
            break;
        }
        if (started >= 0 && t - started >= next_reload) {
            /* A, B, A, B, broken, A, ... : every broken_every-th is broken. */
            sent++;
            int v = broken_every > 0 && sent % broken_every == 0 ? 2 : (cur ^= 1);
            if (v == 2)
                sent_broken++;
            point_rules_at(variant[v]);
            kill(vigil_pid, SIGHUP);
            next_reload += reload_every;
        }
        usleep(20000);
    }
    fputc('\n', stderr);
    if (producing)
        pthread_join(pt, NULL);
    long rss_end = exited ? -1 : rss_kb(vigil_pid, "VmRSS");
    long hwm = exited ? -1 : rss_kb(vigil_pid, "VmHWM");
    int status = 0;
    if (!exited) {
        /* Let the last reload be logged (up to 10 s) before the stop. */
        for (int i = 0; i < 500 && logged_reloads(logp) < sent; i++)
            usleep(20000);
        point_rules_at(variant[0]);
        kill(vigil_pid, SIGTERM);
        waitpid(vigil_pid, &status, 0);
    }
    vigil_pid = 0;
    rd_kafka_destroy(mon);
    if (wall < 0)
        note("vigil did not finish within %.0f s", timeout_s);

    int64_t dead = high_wm(dlq_topic);
    read_alerts(a_topic, in_topic);
    for (char *t = alert_topics ? strtok(alert_topics, ",") : NULL; t; t = strtok(NULL, ","))
        read_alerts(t, in_topic);
    long expected = 0, missing = 0;
    for (long i = 0; i < count_n; i++) {
        if (is_bad(i))
            continue;
        uint64_t w = want_mask[(size_t)i % nlines];
        expected += __builtin_popcountll(w);
        missing += __builtin_popcountll(w & ~got_mask[i]);
    }
    long ok_reloads = (long)e2e_count_in_file(logp, "msg=\"rules reloaded\"");
    long failed_reloads = (long)e2e_count_in_file(logp, "reload failed");
    long errors = count_other_errors(logp, false);

    printf("## Soak: vigil run, %ld events %s, SIGHUP every %.1f s\n\n", count_n,
           rate > 0 ? "offered at a fixed rate" : "produced beforehand", reload_every);
    printf("| figure | value |\n|---|---|\n");
    printf("| events | %ld (%zu Reuters-21578 stories cycled, %.0f MB; %ld not JSON) |\n", count_n,
           nlines, in_bytes / 1e6, n_bad);
    if (wall > 0)
        printf("| wall time, start to last commit | %.1f s (started after %.2f s) |\n", wall,
               started);
    if (wall > 0 && rate <= 0)
        printf("| throughput | %.0f events/s (%.1f MB/s) |\n", count_n / wall,
               in_bytes / 1e6 / wall);
    if (wall > 0 && rate > 0)
        printf("| offered / achieved rate | %.0f / %.0f events/s; last commit %.1f s after the last "
               "event was acknowledged |\n",
               rate, count_n / prod_secs, wall - prod_secs);
    /* Warm: the first sample with a tenth of the input committed. */
    long rss_warm = -1;
    for (size_t i = 0; i < ns && rss_warm < 0; i++)
        if (samples[i].committed * 10 >= end)
            rss_warm = samples[i].rss_kb;
    printf("| RSS at start / at 10%% committed / at end / peak | %.1f / %.1f / %.1f / %.1f MB |\n",
           rss_start / 1024.0, rss_warm / 1024.0, rss_end / 1024.0, hwm / 1024.0);
    printf("| alerts expected (vigil scan, same rules) | %ld |\n", expected);
    printf("| alerts read back | %ld |\n", alerts_read);
    printf("| missing / duplicated / unexpected / unreadable | %ld / %ld / %ld / %ld |\n",
           missing, duplicates, unexpected, unparsed + foreign);
    printf("| dead letters (expected %ld) | %lld |\n", n_bad, (long long)dead);
    printf("| SIGHUP sent (of them to a broken set) | %ld (%ld) |\n", sent, sent_broken);
    printf("| reloads logged done / refused | %ld / %ld |\n", ok_reloads, failed_reloads);
    printf("| error lines in vigil's log, besides the refused reloads' | %ld |\n", errors);
    printf("| vigil exit status | %d |\n\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("RSS over time (one sample per %.0f s):\n\n", sample_every);
    printf("| time (s) | committed | RSS (MB) | reloads sent |\n|---|---|---|---|\n");
    size_t step = ns > 24 ? ns / 24 : 1;
    for (size_t i = 0; i < ns; i += step)
        printf("| %.0f | %lld | %.1f | %ld |\n", samples[i].t, (long long)samples[i].committed,
               samples[i].rss_kb / 1024.0, samples[i].reloads);
    if (ns && (ns - 1) % step)
        printf("| %.0f | %lld | %.1f | %ld |\n", samples[ns - 1].t,
               (long long)samples[ns - 1].committed, samples[ns - 1].rss_kb / 1024.0,
               samples[ns - 1].reloads);
    if (errors > 0) {
        note("error lines in %s:", logp);
        count_other_errors(logp, true);
    }
    note("vigil's last line: ");
    print_lines_with(logp, "msg=\"stopped\"", 1);
    rd_kafka_flush(prod, 10000);
    rd_kafka_destroy(prod);
    bool lost = missing || duplicates || unexpected || dead != n_bad || wall < 0;
    return lost ? 1 : 0;
}
