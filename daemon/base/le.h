/* Little-endian integers in byte buffers: the byte order of the state
 * snapshot and of the checkpoint record, whatever the host's. */
#ifndef VIGIL_LE_H
#define VIGIL_LE_H

#include <stddef.h>
#include <stdint.h>

/* Writes the low n bytes (n <= 8) of v at p, least significant first. */
static inline void vg_le_put(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The n-byte (n <= 8) little-endian integer at p. */
static inline uint64_t vg_le_get(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
