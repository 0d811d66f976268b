/* The metrics endpoint under slow and greedy clients (127.0.0.1 only):
 * connections that trickle a header byte now and then are closed once
 * their request is overdue, so /healthz keeps answering; one address
 * cannot take every connection; a client slow but in time is answered. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"
#include "vigil/log.h"
#include "vigil/metrics_http.h"

#define TRICKLERS 40

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void destroy_metrics(void *p)
{
    vg_metrics_destroy(p);
}

static void stop_http(void *p)
{
    vg_metrics_http_stop(p);
}

/* A server on a free loopback port, stopped by cleanup(). */
static vg_metrics_http_t *serve(unsigned max_conn, unsigned per_client, unsigned timeout_ms)
{
    vg_metrics_t *m = own(destroy_metrics, vg_metrics_new());
    assert_non_null(m);
    vg_metrics_http_opts_t o = {max_conn, per_client, timeout_ms};
    char err[256];
    vg_metrics_http_t *s = vg_metrics_http_start_opts("127.0.0.1:0", m, &o, err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    assert_true(vg_metrics_http_port(s) > 0);
    return own(stop_http, s);
}

/* A socket connected to 127.0.0.1:port, or -1 when the connection is
 * not made within 500 ms (a full accept queue leaves it pending). */
static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (rc != 0 && (errno != EINPROGRESS || poll(&p, 1, 500) != 1 ||
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_text(int fd, const char *s)
{
    size_t n = strlen(s);
    return fd >= 0 && send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* True when the server has closed fd (EOF or reset); any bytes it sent
 * before are read and dropped. Waits at most wait_ms. */
static bool closed_by_server(int fd, int wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[512];
    if (fd < 0)
        return true;
    while (poll(&p, 1, wait_ms) == 1) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
        wait_ms = 0;
    }
    return false;
}

/* Reads one HTTP response (headers and Content-Length bytes of body) from
 * fd within wait_ms. Returns its status, or 0 when none came whole. */
static int read_response(int fd, int wait_ms, char *body, size_t body_size)
{
    char buf[8192];
    size_t len = 0;
    int64_t until = now_ms() + wait_ms;
    body[0] = '\0';
    while (len < sizeof(buf) - 1) {
        int left = (int)(until - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) != 1)
            return 0;
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        int status = 0;
        if (!end || !cl || sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
            continue;
        size_t want = (size_t)strtoul(cl + 16, NULL, 10);
        if (len - (size_t)(end + 4 - buf) < want)
            continue;
        snprintf(body, body_size, "%.*s", (int)want, end + 4);
        return status;
    }
    return 0;
}

/* One GET on a new connection; the status, or 0 when the server closed
 * the connection or did not answer within wait_ms. */
static int get_once(int port, const char *path, int wait_ms, char *body, size_t body_size)
{
    int fd = connect_local(port);
    if (fd < 0)
        return 0;
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    int status = send_text(fd, req) ? read_response(fd, wait_ms, body, body_size) : 0;
    close(fd);
    return status;
}

/* 40 clients send the start of a request and then one header byte a
 * second, never finishing: more than the endpoint's 32 connections, all
 * from 127.0.0.1 like the prober. /healthz must be answered at once, not
 * only when their deadline frees a connection, and every one of them must
 * be closed by its deadline. */
static void trickle(unsigned max_conn, unsigned per_client)
{
    const int timeout_ms = 1500;
    vg_metrics_http_t *s = serve(max_conn, per_client, timeout_ms);
    int port = vg_metrics_http_port(s);
    int fds[TRICKLERS];
    int64_t closed_at[TRICKLERS];
    int64_t t0 = now_ms();
    for (int i = 0; i < TRICKLERS; i++) {
        fds[i] = connect_local(port);
        closed_at[i] = send_text(fds[i], "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                           ? -1
                           : now_ms() - t0;
    }
    int failed = 0;
    for (int i = 0; i < TRICKLERS; i++)
        failed += fds[i] < 0;
    int64_t answered_at = -1, last_trickle = now_ms();
    int status = 0;
    char body[512];
    /* Bounded: the deadline plus 4 s. */
    while (now_ms() - t0 < timeout_ms + 4000) {
        bool trickle = now_ms() - last_trickle >= 1000;
        if (trickle)
            last_trickle = now_ms();
        int open = 0;
        for (int i = 0; i < TRICKLERS; i++) {
            if (closed_at[i] >= 0)
                continue;
            if ((trickle && !send_text(fds[i], "a")) || closed_by_server(fds[i], 0))
                closed_at[i] = now_ms() - t0;
            else
                open++;
        }
        if (answered_at < 0) {
            status = get_once(port, "/healthz", 300, body, sizeof(body));
            if (status != 0)
                answered_at = now_ms() - t0;
        }
        if (answered_at >= 0 && open == 0)
            break;
        sleep_ms(100);
    }
    int64_t last_closed = 0;
    int still_open = 0;
    for (int i = 0; i < TRICKLERS; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        still_open += closed_at[i] < 0;
        if (closed_at[i] > last_closed)
            last_closed = closed_at[i];
    }
    print_message(
        "limits %u total, %u per client (0: the default): %d of %d trickling clients connected; "
        "/healthz answered after %lld ms (HTTP %d; -1: never); trickling connections "
        "still open at the end: %d, the last closed after %lld ms; request deadline "
        "%d ms\n",
        max_conn, per_client, TRICKLERS - failed, TRICKLERS, (long long)answered_at, status,
        still_open, (long long)last_closed, timeout_ms);
    if (answered_at < 0)
        fail_msg("/healthz not answered in %d ms while %d clients trickle", timeout_ms + 4000,
                 TRICKLERS);
    if (still_open)
        fail_msg("%d trickling connections still open %d ms after the request deadline", still_open,
                 4000);
    /* A fresh registry is "starting": 503 with the reason. */
    assert_int_equal(status, 503);
    assert_string_equal(body, "starting\n");
    assert_true(answered_at < timeout_ms);
    assert_true(last_closed <= timeout_ms + 1500);
}

static void test_trickling_clients_do_not_block_healthz(void **state)
{
    (void)state;
    /* The total limit alone (no client has a share smaller than it). */
    trickle(32, 64);
    release_to(0);
    /* The defaults: 32, and 8 per client. */
    trickle(0, 0);
}

/* One address gets max_per_client connections; two more close its two
 * oldest at once, and the four newest stay open. */
static void test_per_client_limit(void **state)
{
    (void)state;
    vg_metrics_http_t *s = serve(32, 4, 10000);
    int port = vg_metrics_http_port(s);
    int fds[6];
    for (int i = 0; i < 6; i++) {
        fds[i] = connect_local(port);
        /* The server may already have closed the first two. */
        bool sent = send_text(fds[i], "GET /metrics HTTP/1.1\r\n");
        assert_true(sent || i < 2);
        sleep_ms(20); /* distinct ages */
    }
    int closed = 0;
    for (int i = 0; i < 6; i++)
        closed += closed_by_server(fds[i], i < 2 ? 2000 : 200) << i;
    for (int i = 0; i < 6; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    assert_int_equal(closed, 0x3);
}

/* A client slow but in time is answered; one that sends nothing is
 * closed at the deadline, not before. */
static void test_deadline_counts_from_the_connection(void **state)
{
    (void)state;
    const int timeout_ms = 1500;
    vg_metrics_http_t *s = serve(32, 8, timeout_ms);
    int port = vg_metrics_http_port(s);
    int slow = connect_local(port), idle = connect_local(port);
    int64_t t0 = now_ms();
    static const char *const parts[] = {"GET / HTTP/1.1\r\n", "Host: 127.0.0.1\r\n", "\r\n"};
    char body[512];
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            sleep_ms(400);
        assert_true(send_text(slow, parts[i]));
    }
    assert_int_equal(read_response(slow, 1000, body, sizeof(body)), 200);
    assert_non_null(strstr(body, "GET /metrics"));
    close(slow);
    int64_t left = timeout_ms - 300 - (now_ms() - t0);
    assert_false(closed_by_server(idle, left > 0 ? (int)left : 0));
    assert_true(closed_by_server(idle, 1300));
    int64_t closed_at = now_ms() - t0;
    close(idle);
    assert_true(closed_at >= timeout_ms - 300 && closed_at <= timeout_ms + 1000);
}

static void test_defaults_and_bad_address(void **state)
{
    (void)state;
    vg_metrics_t *m = own(destroy_metrics, vg_metrics_new());
    char err[256];
    /* Zeros are defaults. */
    vg_metrics_http_opts_t zero = {0, 0, 0};
    vg_metrics_http_t *s = vg_metrics_http_start_opts("127.0.0.1:0", m, &zero, err, sizeof(err));
    assert_non_null(s);
    own(stop_http, s);
    char body[512];
    assert_int_equal(get_once(vg_metrics_http_port(s), "/nowhere", 2000, body, sizeof(body)), 404);
    assert_null(vg_metrics_http_start_opts("127.0.0.1", m, NULL, err, sizeof(err)));
    assert_string_equal(err, "metrics.listen '127.0.0.1' is not host:port");
}

int main(void)
{
    /* The endpoint logs what it closes; keep the test's output clean. */
    vg_log_set_level(VG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_trickling_clients_do_not_block_healthz, cleanup),
        cmocka_unit_test_teardown(test_per_client_limit, cleanup),
        cmocka_unit_test_teardown(test_deadline_counts_from_the_connection, cleanup),
        cmocka_unit_test_teardown(test_defaults_and_bad_address, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
