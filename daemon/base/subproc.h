/* A helper process for work that must be bounded and abandonable, such
 * as vectorscan compiles, which can take minutes and gigabytes and cannot
 * be interrupted in place: the process is forked once, serves requests
 * one at a time over two pipes under CPU and address-space limits, and
 * is killed when the caller's deadline passes or its cancel flag is set.
 * A request and its answer are byte strings; what they mean is the
 * caller's business (the serve function). */
#ifndef VIGIL_SUBPROC_H
#define VIGIL_SUBPROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

/* Runs in the helper process: answers req[0, len) into *resp. Returns 0,
 * or -1 when it ran out of memory (the process then exits with
 * VG_SUBPROC_EXIT_NOMEM). */
typedef int (*vg_subproc_serve_fn)(void *arg, const void *req, size_t len, vg_strbuf_t *resp);

typedef struct vg_subproc_limits {
    double deadline;   /* vg_monotime() by which each call must end; 0: none */
    size_t max_memory; /* bytes of address space the process may add; 0: no limit */
    bool in_process;   /* no process: serve in the caller, without bounds */
    const volatile sig_atomic_t *cancel; /* non-zero: abandon the call */
    void (*tick)(void *arg);             /* called about every 500 ms while waiting */
    void *tick_arg;
} vg_subproc_limits_t;

typedef enum {
    VG_SUBPROC_OK,
    VG_SUBPROC_ERROR,     /* fork, pipe or I/O failure; err says which */
    VG_SUBPROC_TIMEOUT,   /* the deadline passed (or the CPU limit): the process is killed */
    VG_SUBPROC_CANCELLED, /* *cancel was set: the process is killed */
    VG_SUBPROC_NOMEM,     /* the process ran out of memory under max_memory */
    VG_SUBPROC_DIED       /* the process died otherwise; err says how */
} vg_subproc_status_t;

/* The helper's exit status when serve reports running out of memory. */
#define VG_SUBPROC_EXIT_NOMEM 3

typedef struct vg_subproc vg_subproc_t;

/* Starts the helper (or, with limits->in_process, an object that serves
 * in the caller). serve and arg must stay valid until vg_subproc_stop;
 * limits is copied. NULL with err filled when it cannot start. */
vg_subproc_t *vg_subproc_start(vg_subproc_serve_fn serve, void *arg,
                               const vg_subproc_limits_t *limits, char *err, size_t err_size);

/* Sends req[0, len) and waits for its answer, which replaces resp's
 * contents. Anything but VG_SUBPROC_OK leaves the helper dead: later
 * calls fail at once with the same status. */
vg_subproc_status_t vg_subproc_call(vg_subproc_t *sp, const void *req, size_t len,
                                    vg_strbuf_t *resp, char *err, size_t err_size);

/* Stops the helper (killing it if it still runs) and frees sp; NULL is
 * fine. */
void vg_subproc_stop(vg_subproc_t *sp);

#endif
