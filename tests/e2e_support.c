/* Helpers of the programs that run vigil as a child process; see
 * e2e_support.h. */
#include "e2e_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double e2e_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void e2e_sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

void e2e_say(const char *who, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s", who, tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- child processes ---- */

static pid_t children[E2E_MAX_CHILDREN];

void e2e_track_child(pid_t pid, bool add)
{
    for (size_t i = 0; i < E2E_MAX_CHILDREN; i++)
        if (add ? children[i] == 0 : children[i] == pid) {
            children[i] = add ? pid : 0;
            return;
        }
}

bool e2e_is_child(pid_t pid)
{
    for (size_t i = 0; i < E2E_MAX_CHILDREN; i++)
        if (children[i] == pid)
            return true;
    return false;
}

void e2e_kill_children(void)
{
    for (size_t i = 0; i < E2E_MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

pid_t e2e_spawn(char *const argv[], const char *log, bool append)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The parent may have threads (librdkafka's): only async-signal-
         * safe calls until the exec. */
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC),
                      0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    e2e_track_child(pid, true);
    return pid;
}

pid_t e2e_start_vigil(const char *vigil_bin, const char *config, const char *log, bool verbose)
{
    char *argv[6];
    int n = 0;
    argv[n++] = (char *)vigil_bin;
    argv[n++] = "run";
    if (verbose)
        argv[n++] = "-v";
    argv[n++] = "--config";
    argv[n++] = (char *)config;
    argv[n] = NULL;
    return e2e_spawn(argv, log, true);
}

bool e2e_stop_child(pid_t pid, int sig, double grace, int *status)
{
    int st = 0;
    bool in_time = true;
    if (sig)
        kill(pid, sig);
    double t0 = e2e_now_s();
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (e2e_now_s() - t0 > grace) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            in_time = false;
            break;
        }
        e2e_sleep_s(0.01);
    }
    e2e_track_child(pid, false);
    if (status)
        *status = st;
    return in_time;
}

/* ---- files ---- */

int e2e_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int e2e_read_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    bool ok = fgets(out, (int)size, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* Lines of path that contain text, counting no further than limit. */
static size_t count_upto(const char *path, const char *text, size_t limit)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (n < limit && getline(&line, &cap, f) > 0)
        n += strstr(line, text) != NULL;
    free(line);
    fclose(f);
    return n;
}

size_t e2e_count_in_file(const char *path, const char *text)
{
    return count_upto(path, text, SIZE_MAX);
}

bool e2e_file_has(const char *path, const char *text)
{
    return count_upto(path, text, 1) > 0;
}

bool e2e_wait_in_file(const char *path, const char *text, size_t n, double timeout)
{
    double deadline = e2e_now_s() + timeout;
    while (e2e_now_s() < deadline) {
        if (count_upto(path, text, n) >= n)
            return true;
        e2e_sleep_s(0.02);
    }
    return false;
}

void e2e_dump_file(const char *path, int max_lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0, total = 0, skip = 0;
    if (max_lines > 0) {
        while (getline(&line, &cap, f) > 0)
            total++;
        rewind(f);
        skip = total > (size_t)max_lines ? total - (size_t)max_lines : 0;
        fprintf(stderr, "---- %s (last %zu of %zu lines) ----\n", path, total - skip, total);
    } else {
        fprintf(stderr, "---- %s ----\n", path);
    }
    for (size_t i = 0; getline(&line, &cap, f) > 0; i++)
        if (i >= skip)
            fputs(line, stderr);
    free(line);
    fclose(f);
}

void e2e_remove_dir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

void e2e_unique_name(char *out, size_t size, const char *prefix, const char *name)
{
    static int seq;
    snprintf(out, size, "%s-%s-%ld-%d-%d", prefix, name, (long)getpid(),
             (int)(time(NULL) % 100000), seq++);
}

/* ---- the metrics endpoint ---- */

int e2e_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int e2e_http_get(int port, const char *method, const char *path, char *body, size_t size)
{
    body[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return 0;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    /* HTTP/1.0: the server closes the connection after the response. */
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    const char *b = strstr(resp, "\r\n\r\n");
    if (b)
        snprintf(body, size, "%s", b + 4);
    return status;
}

bool e2e_wait_http(int port, const char *path, int status, const char *text, bool present,
                   double timeout, char *body, size_t size, int *last_status)
{
    double deadline = e2e_now_s() + timeout;
    for (;;) {
        int st = e2e_http_get(port, "GET", path, body, size);
        if (last_status)
            *last_status = st;
        if (st == status && (!text || (strstr(body, text) != NULL) == present))
            return true;
        if (e2e_now_s() >= deadline)
            return false;
        e2e_sleep_s(0.1);
    }
}

double e2e_metric_sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NAN;
}

/* ---- Kafka clients ---- */

rd_kafka_t *e2e_kafka_client(rd_kafka_type_t type, const char *brokers, const char *const *props,
                             void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                             char *err, size_t err_size)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_size, "kafka property bootstrap.servers=%s: %s", brokers, e);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    for (size_t i = 0; props && props[i]; i += 2)
        if (rd_kafka_conf_set(c, props[i], props[i + 1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
            snprintf(err, err_size, "kafka property %s=%s: %s", props[i], props[i + 1], e);
            rd_kafka_conf_destroy(c);
            return NULL;
        }
    if (dr_msg_cb)
        rd_kafka_conf_set_dr_msg_cb(c, dr_msg_cb);
    rd_kafka_t *rk = rd_kafka_new(type, c, e, sizeof(e));
    if (!rk) {
        snprintf(err, err_size, "%s: %s", type == RD_KAFKA_PRODUCER ? "producer" : "consumer", e);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

int e2e_create_topic(rd_kafka_t *admin, const char *name, int partitions, const char *const *config,
                     bool exist_ok, char *err, size_t err_size)
{
    int rc = -1;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, err, err_size);
    if (!nt)
        return -1;
    for (size_t i = 0; config && config[i]; i += 2)
        if (rd_kafka_NewTopic_set_config(nt, config[i], config[i + 1])) {
            snprintf(err, err_size, "create topic %s: bad config %s", name, config[i]);
            rd_kafka_NewTopic_destroy(nt);
            return -1;
        }
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_CreateTopics(admin, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t te = tr && n == 1 ? rd_kafka_topic_result_error(tr[0]) : 0;
    if (!ev)
        snprintf(err, err_size, "create topic %s: no answer in 30 s", name);
    else if (!tr || n != 1)
        snprintf(err, err_size, "create topic %s: %s", name, rd_kafka_event_error_string(ev));
    else if (te && !(exist_ok && te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
        snprintf(err, err_size, "create topic %s: %s", name,
                 rd_kafka_topic_result_error_string(tr[0]));
    else
        rc = 0;
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* ---- the mock cluster ---- */

rd_kafka_t *e2e_mock_cluster_host(rd_kafka_mock_cluster_t **mock, char *brokers, size_t size)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", e, sizeof(e));
    rd_kafka_conf_set(conf, "log_level", "3", e, sizeof(e));
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!host) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    *mock = rd_kafka_handle_mock_cluster(host);
    snprintf(brokers, size, "%s", rd_kafka_mock_cluster_bootstraps(*mock));
    return host;
}
