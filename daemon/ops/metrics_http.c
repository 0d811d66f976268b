/* /metrics and /healthz over libmicrohttpd. We bind the socket ourselves
 * (and hand it to libmicrohttpd) so that a wrong address or a port in use
 * is reported with the system's own reason at start-up.
 *
 * Slow clients. libmicrohttpd's connection timeout counts from the last
 * byte received, so a client sending one header byte a second keeps its
 * connection for ever, and a few dozen such clients hold every connection
 * the endpoint allows. So we track each connection ourselves:
 * - a deadline from its acceptance (every response says "Connection:
 *   close", so that is the request's deadline); a watchdog thread shuts
 *   down the socket of an overdue one, and libmicrohttpd, reading
 *   end-of-file, closes it;
 * - when a new connection takes one more than the client's share or than
 *   the whole endpoint allows, the oldest one (of that client, or of all)
 *   is shut down the same way. libmicrohttpd's own per-address limit would
 *   refuse the newcomer instead, which on the default loopback address,
 *   where the prober and a slow local client share 127.0.0.1, is the
 *   prober; a genuine scrape is over in milliseconds and so is never the
 *   oldest for long. */
#include "vigil/metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vigil/log.h"

/* Connections the kernel queues before libmicrohttpd accepts them. A
 * burst larger than this has its connection attempts dropped and retried
 * by the clients a second later, which would delay a prober caught in a
 * burst of slow clients; queued ones cost the kernel little. */
#define LISTEN_BACKLOG 128

/* A connection we look after. */
typedef struct conn_slot {
    int fd;                       /* -1: the slot is free */
    int64_t since_ms;             /* accepted at, monotonic */
    bool cut;                     /* shut down already; libmicrohttpd is closing it */
    struct sockaddr_storage addr; /* the client's address (port ignored) */
} conn_slot_t;

struct vg_metrics_http {
    struct MHD_Daemon *mhd;
    vg_metrics_t *metrics;
    int port;
    unsigned timeout_ms;
    /* lock guards slots and stopping. libmicrohttpd reports a connection
     * closed (under lock) before it closes the socket, so a descriptor
     * the watchdog shuts down under lock is never one already reused. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    conn_slot_t *slots; /* as many as libmicrohttpd admits */
    size_t nslots;
    unsigned max_connections, max_per_client;
    unsigned long long evicted; /* shut down to make room, not yet logged */
    bool stopping;
    bool has_wake; /* wake is initialised */
    bool watching; /* the watchdog thread runs */
    pthread_t watchdog;
};

bool vg_metrics_listen_off(const char *value)
{
    return !value || !*value || strcmp(value, "off") == 0;
}

/* mode says who owns body; with MHD_RESPMEM_MUST_FREE it is freed here
 * also when the response cannot be made. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    /* Scrapes and probes want the current state, never a cached one. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return reply(c, status, "text/plain; charset=utf-8", (char *)text, strlen(text),
                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    vg_metrics_http_t *s = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *text = vg_metrics_render(s->metrics, &len);
        if (!text)
            return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                     MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0) {
        char reason[300], body[302];
        if (vg_metrics_health(s->metrics, VG_HEALTH_STALL_S, reason, sizeof(reason)))
            return reply_text(c, MHD_HTTP_OK, "ok\n");
        int n = snprintf(body, sizeof(body), "%s\n", reason);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", body, (size_t)n,
                     MHD_RESPMEM_MUST_COPY);
    }
    if (strcmp(url, "/") == 0)
        return reply_text(c, MHD_HTTP_OK, "vigil: GET /metrics (Prometheus), GET /healthz\n");
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found; try /metrics or /healthz\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    vg_log_kv(VG_LOG_WARN, "metrics endpoint", VG_LOG_STR("detail", msg));
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Same client: the same address, whatever the port. */
static bool same_client(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* Makes room after `fresh` took a slot: shuts down the oldest other live
 * connection of the same client when it has more than its share, else
 * the oldest of all when there are more than allowed. Caller holds lock. */
static void make_room(vg_metrics_http_t *s, const conn_slot_t *fresh)
{
    size_t mine = 0, all = 0;
    conn_slot_t *oldest_mine = NULL, *oldest = NULL;
    for (size_t i = 0; i < s->nslots; i++) {
        conn_slot_t *c = &s->slots[i];
        if (c->fd < 0 || c->cut)
            continue;
        all++;
        bool same = same_client(&c->addr, &fresh->addr);
        mine += same;
        if (c == fresh)
            continue;
        if (same && (!oldest_mine || c->since_ms < oldest_mine->since_ms))
            oldest_mine = c;
        if (!oldest || c->since_ms < oldest->since_ms)
            oldest = c;
    }
    conn_slot_t *victim = mine > s->max_per_client   ? oldest_mine
                          : all > s->max_connections ? oldest
                                                     : NULL;
    if (victim) {
        shutdown(victim->fd, SHUT_RDWR);
        victim->cut = true;
        s->evicted++;
    }
}

/* Runs in libmicrohttpd's thread: a connection gets a slot when it is
 * accepted and gives it back when closed. There is always a free slot:
 * libmicrohttpd admits at most nslots connections. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    vg_metrics_http_t *s = cls;
    pthread_mutex_lock(&s->lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        for (size_t i = 0; fd && i < s->nslots; i++) {
            conn_slot_t *slot = &s->slots[i];
            if (slot->fd >= 0)
                continue;
            *slot = (conn_slot_t){.fd = fd->connect_fd, .since_ms = mono_ms()};
            if (addr && addr->client_addr) {
                socklen_t len = addr->client_addr->sa_family == AF_INET6
                                    ? sizeof(struct sockaddr_in6)
                                    : sizeof(struct sockaddr_in);
                memcpy(&slot->addr, addr->client_addr, len);
            }
            *socket_context = slot;
            make_room(s, slot);
            break;
        }
    } else if (*socket_context) {
        ((conn_slot_t *)*socket_context)->fd = -1;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

/* Shuts down every connection past its deadline; returns how many.
 * Caller holds lock. */
static unsigned cut_overdue(vg_metrics_http_t *s)
{
    int64_t now = mono_ms();
    unsigned n = 0;
    for (size_t i = 0; i < s->nslots; i++) {
        conn_slot_t *c = &s->slots[i];
        if (c->fd >= 0 && !c->cut && now - c->since_ms >= (int64_t)s->timeout_ms) {
            shutdown(c->fd, SHUT_RDWR);
            c->cut = true;
            n++;
        }
    }
    return n;
}

static void *watchdog_main(void *arg)
{
    vg_metrics_http_t *s = arg;
    /* Every fifth of the deadline, kept within 50..250 ms: a connection
     * outlives its deadline by one such tick at most. */
    unsigned tick = s->timeout_ms / 5 < 50 ? 50 : s->timeout_ms / 5 > 250 ? 250 : s->timeout_ms / 5;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)tick * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wake, &s->lock, &until);
        unsigned cut = s->stopping ? 0 : cut_overdue(s);
        unsigned long long evicted = s->evicted;
        s->evicted = 0;
        if (cut || evicted) {
            pthread_mutex_unlock(&s->lock);
            /* The log limits these to a few lines per 10 s under a flood. */
            if (cut)
                vg_log_kv(VG_LOG_WARN, "closed metrics connections that were too slow",
                          VG_LOG_UINT("connections", cut),
                          VG_LOG_UINT("request_timeout_ms", s->timeout_ms));
            if (evicted)
                vg_log_kv(VG_LOG_WARN, "closed the oldest metrics connections to make room",
                          VG_LOG_UINT("connections", evicted),
                          VG_LOG_UINT("max_connections", s->max_connections),
                          VG_LOG_UINT("max_connections_per_client", s->max_per_client));
            pthread_mutex_lock(&s->lock);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* A bound, listening socket for "host:port" / "[v6]:port", or -1. */
static int bind_listen(const char *addr, char *err, size_t err_size)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) {
        snprintf(err, err_size, "metrics.listen '%s' is not host:port", addr);
        return -1;
    }
    char host[256];
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(err, err_size, "metrics.listen '%s': host name too long", addr);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_size, "metrics.listen '%s': %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        /* A restart must not wait for the old connections' TIME_WAIT. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, err_size,
                 "cannot listen on %s for metrics: %s (set metrics.listen to a "
                 "free local address, or off)",
                 addr, strerror(saved));
    return fd;
}

/* The lock, the condition (on the monotonic clock) and the slots. */
static int init_watch(vg_metrics_http_t *s, size_t nslots)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                     pthread_cond_init(&s->wake, &ca) == 0
                 ? 0
                 : -1;
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    s->has_wake = true;
    s->slots = malloc(nslots * sizeof(*s->slots));
    if (!s->slots)
        return -1;
    s->nslots = nslots;
    for (size_t i = 0; i < nslots; i++)
        s->slots[i] = (conn_slot_t){.fd = -1};
    return 0;
}

vg_metrics_http_t *vg_metrics_http_start(const char *addr, vg_metrics_t *m, char *err,
                                         size_t err_size)
{
    return vg_metrics_http_start_opts(addr, m, NULL, err, err_size);
}

vg_metrics_http_t *vg_metrics_http_start_opts(const char *addr, vg_metrics_t *m,
                                              const vg_metrics_http_opts_t *o, char *err,
                                              size_t err_size)
{
    vg_metrics_http_opts_t d = {VG_METRICS_HTTP_MAX_CONNECTIONS, VG_METRICS_HTTP_MAX_PER_CLIENT,
                                VG_METRICS_HTTP_REQUEST_TIMEOUT_MS};
    if (o) {
        d.max_connections = o->max_connections ? o->max_connections : d.max_connections;
        d.max_per_client = o->max_per_client ? o->max_per_client : d.max_per_client;
        d.request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : d.request_timeout_ms;
    }
    if (d.request_timeout_ms < 100)
        d.request_timeout_ms = 100;
    vg_metrics_http_t *s = calloc(1, sizeof(*s));
    if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        snprintf(err, err_size, "out of memory starting the metrics endpoint");
        return NULL;
    }
    s->metrics = m;
    s->timeout_ms = d.request_timeout_ms;
    s->max_connections = d.max_connections;
    s->max_per_client = d.max_per_client;
    int fd = -1;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    if (init_watch(s, 2 * (size_t)d.max_connections + 1) != 0) {
        snprintf(err, err_size, "out of memory starting the metrics endpoint");
        goto fail;
    }
    if ((fd = bind_listen(addr, err, err_size)) < 0)
        goto fail;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    /* One internal thread serves every connection: a scrape is one short
     * render, and a handful of concurrent scrapers is the most expected.
     * It admits twice as many connections as allowed, so that it keeps
     * accepting while those make_room() shut down are still closing; its
     * idle timeout (whole seconds) stays as a second line of defence. */
    /* The logger goes first, or messages about the options that follow
     * would go to libmicrohttpd's own stderr logger. */
    s->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                              handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_CONNECTION,
                              on_connection, s, MHD_OPTION_CONNECTION_LIMIT,
                              2 * d.max_connections + 1, MHD_OPTION_CONNECTION_TIMEOUT,
                              (d.request_timeout_ms + 999) / 1000, MHD_OPTION_END);
    if (!s->mhd) {
        close(fd);
        snprintf(err, err_size, "cannot start the metrics endpoint on %s", addr);
        goto fail;
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        snprintf(err, err_size, "cannot start the metrics endpoint's watchdog thread");
        goto fail;
    }
    s->watching = true;
    vg_log_kv(VG_LOG_INFO, "serving metrics", VG_LOG_STR("listen", addr));
    return s;

fail:
    vg_metrics_http_stop(s);
    return NULL;
}

int vg_metrics_http_port(const vg_metrics_http_t *s)
{
    return s ? s->port : 0;
}

void vg_metrics_http_stop(vg_metrics_http_t *s)
{
    if (!s)
        return;
    if (s->watching) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->watchdog, NULL);
    }
    /* Closes the listening socket too, and reports each open connection
     * closed, which still needs the slots and the lock. */
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    if (s->has_wake)
        pthread_cond_destroy(&s->wake);
    free(s->slots);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
