/* /metrics and /healthz over libmicrohttpd. We bind the socket ourselves
 * (and hand it to libmicrohttpd) so that a wrong address or a port in use
 * is reported with the system's own reason at start-up. */
#include "vigil/metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vigil/log.h"

struct vg_metrics_http {
    struct MHD_Daemon *mhd;
    vg_metrics_t *metrics;
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
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", body,
                     (size_t)n, MHD_RESPMEM_MUST_COPY);
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
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_size, "metrics.listen '%s': %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        /* A restart must not wait for the old connections' TIME_WAIT. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, err_size, "cannot listen on %s for metrics: %s (set metrics.listen to a "
                 "free local address, or off)", addr, strerror(saved));
    return fd;
}

vg_metrics_http_t *vg_metrics_http_start(const char *addr, vg_metrics_t *m, char *err,
                                         size_t err_size)
{
    vg_metrics_http_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_size, "out of memory starting the metrics endpoint");
        return NULL;
    }
    s->metrics = m;
    int fd = bind_listen(addr, err, err_size);
    if (fd < 0) {
        free(s);
        return NULL;
    }
    /* One internal thread serves every connection: a scrape is one short
     * render, and a handful of concurrent scrapers is the most expected. */
    /* The logger goes first, or messages about the options that follow
     * would go to libmicrohttpd's own stderr logger. */
    s->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                              handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 32u,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!s->mhd) {
        close(fd);
        free(s);
        snprintf(err, err_size, "cannot start the metrics endpoint on %s", addr);
        return NULL;
    }
    vg_log_kv(VG_LOG_INFO, "serving metrics", VG_LOG_STR("listen", addr));
    return s;
}

void vg_metrics_http_stop(vg_metrics_http_t *s)
{
    if (!s)
        return;
    if (s->mhd)
        MHD_stop_daemon(s->mhd); /* closes the listening socket too */
    free(s);
}
