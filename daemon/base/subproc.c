/* The bounded helper process (subproc.h). Each message on the pipes is a
 * 64-bit length in host byte order followed by that many bytes. The
 * parent never blocks: it polls with a short timeout, so that a deadline,
 * a cancel flag (SIGTERM) or a tick (watchdog pings) is seen within about
 * 100 ms whatever the helper does. */
#include "subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monotime.h"

#define POLL_MS 100
#define TICK_SECONDS 0.5

struct vg_subproc {
    vg_subproc_serve_fn serve;
    void *arg;
    vg_subproc_limits_t lim;
    pid_t pid;                /* 0: none (in process, or reaped) */
    int to_fd;                /* requests, parent → helper */
    int from_fd;              /* answers, helper → parent */
    vg_subproc_status_t dead; /* VG_SUBPROC_OK while usable */
    char dead_err[256];
    double last_tick;
};

/* ---- the helper's side ---- */

/* Reads (or, with out, writes) n bytes whole; false at EOF or error. */
static bool transfer_full(int fd, void *buf, const void *out, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = out ? write(fd, (const char *)out + done, n - done)
                        : read(fd, (char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        done += (size_t)r;
    }
    return true;
}

/* The address space the helper starts with (a copy of its parent's), so
 * that the memory limit bounds what the work adds, not what was there. */
static size_t current_address_space(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    char buf[64] = "";
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    unsigned long long pages = 0;
    if (n <= 0 || sscanf(buf, "%llu", &pages) != 1)
        return 0;
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void set_limits(const vg_subproc_limits_t *lim)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    if (lim->max_memory) {
        size_t base = current_address_space();
        rl.rlim_cur = rl.rlim_max =
            base > SIZE_MAX - lim->max_memory ? RLIM_INFINITY : (rlim_t)(base + lim->max_memory);
        setrlimit(RLIMIT_AS, &rl);
    }
    /* A backstop behind the parent's deadline: the helper cannot outlive
     * it by much even if the parent stops watching. */
    if (lim->deadline > 0) {
        double left = lim->deadline - vg_monotime();
        rl.rlim_cur = (rlim_t)(left > 0 ? ceil(left) : 0) + 1;
        rl.rlim_max = rl.rlim_cur + 1;
        setrlimit(RLIMIT_CPU, &rl);
    }
}

static void helper_main(vg_subproc_t *sp, pid_t parent)
{
    /* Dies with the thread that forked it, and of the signals that stop
     * the daemon, whatever handlers the daemon had. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGXCPU};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    set_limits(&sp->lim);
    vg_strbuf_t req, resp;
    vg_strbuf_init(&req);
    vg_strbuf_init(&resp);
    for (;;) {
        uint64_t len;
        if (!transfer_full(sp->to_fd, &len, NULL, sizeof(len)))
            _exit(0); /* the parent is done */
        vg_strbuf_reset(&req);
        if (len > SIZE_MAX / 2 || !vg_strbuf_reserve(&req, (size_t)len))
            _exit(VG_SUBPROC_EXIT_NOMEM);
        if (!transfer_full(sp->to_fd, req.buf, NULL, (size_t)len))
            _exit(0);
        vg_strbuf_reset(&resp);
        if (sp->serve(sp->arg, req.buf, (size_t)len, &resp) != 0 || vg_strbuf_failed(&resp))
            _exit(VG_SUBPROC_EXIT_NOMEM);
        uint64_t rlen = resp.len;
        if (!transfer_full(sp->from_fd, NULL, &rlen, sizeof(rlen)) ||
            !transfer_full(sp->from_fd, NULL, resp.buf ? resp.buf : "", resp.len))
            _exit(0);
    }
}

/* ---- the parent's side ---- */

static void set_dead(vg_subproc_t *sp, vg_subproc_status_t st, const char *fmt, const char *what)
{
    sp->dead = st;
    snprintf(sp->dead_err, sizeof(sp->dead_err), fmt, what);
}

/* Kills and reaps the helper; how it ended decides the status when the
 * parent did not kill it for a reason of its own. */
static void reap(vg_subproc_t *sp, bool kill_it)
{
    if (sp->pid <= 0)
        return;
    if (kill_it)
        kill(sp->pid, SIGKILL);
    int st = 0;
    pid_t r;
    while ((r = waitpid(sp->pid, &st, 0)) < 0 && errno == EINTR)
        ;
    sp->pid = 0;
    if (kill_it || sp->dead != VG_SUBPROC_OK)
        return;
    if (r < 0) {
        set_dead(sp, VG_SUBPROC_DIED, "the helper process ended (%s)", strerror(errno));
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == VG_SUBPROC_EXIT_NOMEM) {
        set_dead(sp, VG_SUBPROC_NOMEM, "the helper process ran out of memory%s", "");
    } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU) {
        set_dead(sp, VG_SUBPROC_TIMEOUT, "the helper process used up its CPU time%s", "");
    } else if (WIFSIGNALED(st)) {
        /* SIGKILL from no one here is the kernel's out-of-memory killer
         * (or a cgroup's memory limit); an allocation that fails under
         * the address-space limit often ends in abort() (an uncaught
         * std::bad_alloc) or a crash. */
        bool oom = WTERMSIG(st) == SIGKILL || sp->lim.max_memory;
        set_dead(sp, oom ? VG_SUBPROC_NOMEM : VG_SUBPROC_DIED,
                 "the helper process died of signal %s", strsignal(WTERMSIG(st)));
    } else {
        /* Under a memory limit, a sanitizer's allocator exits with a
         * status of its own when it cannot map more. */
        set_dead(sp, sp->lim.max_memory && WEXITSTATUS(st) ? VG_SUBPROC_NOMEM : VG_SUBPROC_DIED,
                 "the helper process exited early%s", "");
    }
}

vg_subproc_t *vg_subproc_start(vg_subproc_serve_fn serve, void *arg,
                               const vg_subproc_limits_t *limits, char *err, size_t err_size)
{
    vg_subproc_t *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    sp->serve = serve;
    sp->arg = arg;
    sp->lim = *limits;
    sp->to_fd = sp->from_fd = -1;
    sp->last_tick = vg_monotime();
    if (sp->lim.in_process)
        return sp;
    int to[2] = {-1, -1}, from[2] = {-1, -1};
    if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) {
        snprintf(err, err_size, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    pid_t parent = getpid();
    sp->pid = fork();
    if (sp->pid < 0) {
        snprintf(err, err_size, "cannot start a helper process: %s", strerror(errno));
        goto fail;
    }
    if (sp->pid == 0) {
        close(to[1]);
        close(from[0]);
        sp->to_fd = to[0];
        sp->from_fd = from[1];
        helper_main(sp, parent);
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    sp->to_fd = to[1];
    sp->from_fd = from[0];
    fcntl(sp->to_fd, F_SETFL, O_NONBLOCK);
    fcntl(sp->from_fd, F_SETFL, O_NONBLOCK);
    return sp;
fail:
    for (int i = 0; i < 2; i++) {
        if (to[i] >= 0)
            close(to[i]);
        if (from[i] >= 0)
            close(from[i]);
    }
    free(sp);
    return NULL;
}

/* The deadline, the cancel flag and the tick, between two polls. */
static bool still_wanted(vg_subproc_t *sp)
{
    double now = vg_monotime();
    if (sp->lim.cancel && *sp->lim.cancel) {
        set_dead(sp, VG_SUBPROC_CANCELLED, "cancelled%s", "");
        return false;
    }
    if (sp->lim.deadline > 0 && now >= sp->lim.deadline) {
        set_dead(sp, VG_SUBPROC_TIMEOUT, "out of time%s", "");
        return false;
    }
    if (sp->lim.tick && now - sp->last_tick >= TICK_SECONDS) {
        sp->last_tick = now;
        sp->lim.tick(sp->lim.tick_arg);
    }
    return true;
}

static int poll_ms(const vg_subproc_t *sp)
{
    if (sp->lim.deadline <= 0)
        return POLL_MS;
    double left = (sp->lim.deadline - vg_monotime()) * 1000.0;
    return left < 0 ? 0 : left < POLL_MS ? (int)left + 1 : POLL_MS;
}

/* One step of sending: false when the helper is gone. */
static bool send_some(vg_subproc_t *sp, const char *hdr, const char *req, size_t len, size_t *sent)
{
    size_t total = sizeof(uint64_t) + len;
    while (*sent < total) {
        const char *p = *sent < sizeof(uint64_t) ? hdr + *sent : req + (*sent - sizeof(uint64_t));
        size_t n = *sent < sizeof(uint64_t) ? sizeof(uint64_t) - *sent : total - *sent;
        ssize_t put = write(sp->to_fd, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0 && errno == EAGAIN)
            return true;
        if (put <= 0)
            return false;
        *sent += (size_t)put;
    }
    return true;
}

/* One step of receiving: 1 when the answer is whole, 0 for more, -1 when
 * the helper is gone. */
static int recv_some(vg_subproc_t *sp, char *hdr, size_t *got, vg_strbuf_t *resp)
{
    for (;;) {
        uint64_t want = sizeof(uint64_t);
        char *dst = hdr + *got;
        if (*got >= sizeof(uint64_t)) {
            uint64_t blen;
            memcpy(&blen, hdr, sizeof(blen));
            if (blen > SIZE_MAX / 2 || !vg_strbuf_reserve(resp, (size_t)blen))
                return -1;
            want += blen;
            dst = resp->buf + (*got - sizeof(uint64_t));
        }
        if (*got == want && *got >= sizeof(uint64_t)) {
            resp->len = (size_t)(want - sizeof(uint64_t));
            resp->buf[resp->len] = '\0';
            return 1;
        }
        ssize_t n = read(sp->from_fd, dst, (size_t)(want - *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        *got += (size_t)n;
    }
}

static vg_subproc_status_t exchange(vg_subproc_t *sp, const void *req, size_t len,
                                    vg_strbuf_t *resp)
{
    uint64_t hlen = len;
    char ohdr[sizeof(uint64_t)], ihdr[sizeof(uint64_t)];
    memcpy(ohdr, &hlen, sizeof(hlen));
    size_t sent = 0, got = 0;
    for (;;) {
        if (!still_wanted(sp)) {
            reap(sp, true);
            return sp->dead;
        }
        struct pollfd pf[2] = {{sp->from_fd, POLLIN, 0}, {sp->to_fd, POLLOUT, 0}};
        nfds_t n = sent < sizeof(uint64_t) + len ? 2 : 1;
        if (poll(pf, n, poll_ms(sp)) < 0 && errno != EINTR) {
            set_dead(sp, VG_SUBPROC_ERROR, "cannot wait for the helper process: %s",
                     strerror(errno));
            reap(sp, true);
            return sp->dead;
        }
        int r = 0;
        if (n == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)))
            r = send_some(sp, ohdr, req, len, &sent) ? 0 : -1;
        if (r == 0 && (pf[0].revents & (POLLIN | POLLERR | POLLHUP)))
            r = recv_some(sp, ihdr, &got, resp);
        if (r == 1)
            return VG_SUBPROC_OK;
        if (r < 0) {
            if (vg_strbuf_failed(resp)) {
                set_dead(sp, VG_SUBPROC_ERROR, "out of memory reading the helper's answer%s", "");
                reap(sp, true);
            } else {
                reap(sp, false);
            }
            return sp->dead;
        }
    }
}

vg_subproc_status_t vg_subproc_call(vg_subproc_t *sp, const void *req, size_t len,
                                    vg_strbuf_t *resp, char *err, size_t err_size)
{
    vg_strbuf_reset(resp);
    if (sp->dead == VG_SUBPROC_OK && sp->lim.in_process) {
        if (sp->serve(sp->arg, req, len, resp) != 0 || vg_strbuf_failed(resp))
            set_dead(sp, VG_SUBPROC_NOMEM, "out of memory%s", "");
    } else if (sp->dead == VG_SUBPROC_OK) {
        exchange(sp, req, len, resp);
    }
    if (sp->dead != VG_SUBPROC_OK)
        snprintf(err, err_size, "%s", sp->dead_err);
    return sp->dead;
}

void vg_subproc_stop(vg_subproc_t *sp)
{
    if (!sp)
        return;
    if (sp->to_fd >= 0)
        close(sp->to_fd);
    if (sp->from_fd >= 0)
        close(sp->from_fd);
    /* The dead flag keeps reap() from classifying a kill of our own. */
    reap(sp, true);
    free(sp);
}
