/* Seconds on the monotonic clock, for rates, timeouts and progress. */
#ifndef VIGIL_MONOTIME_H
#define VIGIL_MONOTIME_H

#include <time.h>

static inline double vg_monotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
