/* Helpers shared by the programs that run the real `vigil` binary as a
 * child process: the end-to-end tests (e2e_run.c, e2e_state.c), the fault
 * tests (fault/fault_run.c) and the end-to-end benchmarks
 * (bench/bench_e2e.c, bench/soak.c). Child processes and their logs, small
 * files, the metrics endpoint on 127.0.0.1, and the in-process mock cluster.
 *
 * Nothing here uses cmocka (the benchmarks do not link it) or exits: a
 * failure comes back as a return value, and each program asserts, fails
 * or dies around the call in its own way. Not thread-safe except where
 * said. */
#ifndef VIGIL_E2E_SUPPORT_H
#define VIGIL_E2E_SUPPORT_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Seconds on CLOCK_MONOTONIC (thread-safe). */
double e2e_now_s(void);

/* Sleeps s seconds; nothing when s <= 0 (thread-safe). */
void e2e_sleep_s(double s);

/* Writes "who: ", tag, the printf-style message and a line end to stderr:
 * the one shape of a program's progress and error lines (a program
 * defines its note() and die() with it; die() then stops in its own way).
 * tag may be "" (or "error: "). */
void e2e_say(const char *who, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- child processes ---- */

/* How many children are remembered at once for e2e_kill_children(). */
#define E2E_MAX_CHILDREN 16

/* Remembers (add) or forgets a child, so that e2e_kill_children() can
 * reap what a failed test or an interrupted benchmark left running. A
 * child beyond E2E_MAX_CHILDREN is not remembered. */
void e2e_track_child(pid_t pid, bool add);

/* True when pid is a remembered child. */
bool e2e_is_child(pid_t pid);

/* SIGKILLs and reaps every remembered child. Async-signal-safe: meant for
 * atexit() and signal handlers. */
void e2e_kill_children(void);

/* Forks and executes argv[0] with argv, its stdout and stderr going to
 * log (created 0644; appended to when append, else truncated; NULL:
 * /dev/null). The child is remembered. Returns its pid, or -1 with errno
 * set when fork failed; 127 is the child's exit status when the exec
 * failed. */
pid_t e2e_spawn(char *const argv[], const char *log, bool append);

/* `vigil_bin run [-v] --config config`, its output appended to log: see
 * e2e_spawn(). */
pid_t e2e_start_vigil(const char *vigil_bin, const char *config, const char *log, bool verbose);

/* Sends sig to pid (none when sig is 0) and waits for it to exit; after
 * grace seconds it is SIGKILLed and reaped. Either way it is forgotten,
 * and its wait status goes to *status (when not NULL). Returns false when
 * it had to be killed. */
bool e2e_stop_child(pid_t pid, int sig, double grace, int *status);

/* ---- files ---- */

/* Writes text to path (replacing it). 0, or -1 with errno set. */
int e2e_write_file(const char *path, const char *text);

/* The first line of path, without its line end, into out. 0, or -1 when
 * the file cannot be read or is empty. */
int e2e_read_line(const char *path, char *out, size_t size);

/* How many lines of path contain text; 0 when path cannot be read. */
size_t e2e_count_in_file(const char *path, const char *text);

/* True when a line of path contains text. */
bool e2e_file_has(const char *path, const char *text);

/* Waits (polling, up to timeout seconds) until at least n lines of path
 * contain text; true when they do. */
bool e2e_wait_in_file(const char *path, const char *text, size_t n, double timeout);

/* Copies path to stderr under a "---- path ----" line: all of it, or only
 * its last max_lines lines when max_lines > 0. Nothing when it cannot be
 * read. */
void e2e_dump_file(const char *path, int max_lines);

/* rm -rf dir; says so on stderr when that fails. */
void e2e_remove_dir(const char *dir);

/* "prefix-name-PID-TIME-SEQ": a topic or file name no other run (of this
 * or another process) has used. */
void e2e_unique_name(char *out, size_t size, const char *prefix, const char *name);

/* ---- the metrics endpoint ---- */

/* A port nobody listens on at 127.0.0.1 (the kernel picks it); -1 when
 * none could be had. */
int e2e_free_port(void);

/* Sends `method path` to 127.0.0.1:port over HTTP/1.0 (5 s read timeout).
 * Returns the HTTP status, 0 when nothing (or no HTTP) answered, -1 when
 * no socket could be made; the body goes to body (NUL-terminated,
 * truncated to size). */
int e2e_http_get(int port, const char *method, const char *path, char *body, size_t size);

/* Polls `GET path` every 0.1 s, up to timeout seconds, until it answers
 * status with text in its body (present) or not in it (!present); a NULL
 * text takes any body. True when it did. Either way body holds the last
 * answer and *last_status (when not NULL) its status. */
bool e2e_wait_http(int port, const char *path, int status, const char *text, bool present,
                   double timeout, char *body, size_t size, int *last_status);

/* The value of one sample of a Prometheus exposition, written exactly as
 * `name{labels}`; NaN when text does not have it. */
double e2e_metric_sample(const char *text, const char *series);

/* ---- Kafka clients ---- */

/* A client of brokers with props ("key", "value", ..., NULL; may be
 * NULL) and, for a producer, dr_msg_cb (may be NULL); a consumer polls
 * through rd_kafka_consumer_poll. NULL with err filled (naming the
 * property librdkafka refused) when it cannot be made. */
rd_kafka_t *e2e_kafka_client(rd_kafka_type_t type, const char *brokers, const char *const *props,
                             void (*dr_msg_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                             char *err, size_t err_size);

/* Creates topic name (partitions, replication 1, config "key", "value",
 * ..., NULL or NULL) through admin, waiting up to 30 s for the answer. A
 * topic that exists already is an error unless exist_ok. 0, or -1 with
 * err filled. */
int e2e_create_topic(rd_kafka_t *admin, const char *name, int partitions, const char *const *config,
                     bool exist_ok, char *err, size_t err_size);

/* ---- the mock cluster ---- */

/* Hosts librdkafka's mock cluster (one broker) in this process, for a run
 * given no real broker. Returns the handle that owns it (to be
 * rd_kafka_destroy()ed after every client of the cluster), the cluster in
 * *mock and its bootstrap servers in brokers; NULL when it could not be
 * made. */
rd_kafka_t *e2e_mock_cluster_host(rd_kafka_mock_cluster_t **mock, char *brokers, size_t size);

#endif
