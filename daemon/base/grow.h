/* Growing an array by doubling: the one helper for the engine's arrays
 * of matches, evidence and alerts. */
#ifndef VIGIL_GROW_H
#define VIGIL_GROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* Makes room for need elements of size bytes in *arr (capacity *cap,
 * doubled from 16 as needed). false when out of memory (*arr unchanged). */
static inline bool vg_grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *na = realloc(*arr, ncap * size);
    if (!na)
        return false;
    *arr = na;
    *cap = ncap;
    return true;
}

#endif
