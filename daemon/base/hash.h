/* Non-cryptographic hashing for alert ids, the ruleset fingerprint and
 * hash sets. Stable across runs and machines (alert ids must be). */
#ifndef VIGIL_HASH_H
#define VIGIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of data, continuing from a previous value (use
 * VG_HASH_INIT to start). */
#define VG_HASH_INIT UINT64_C(0xcbf29ce484222325)
uint64_t vg_hash64(uint64_t h, const void *data, size_t n);
/* A final avalanche step, so that similar inputs give unrelated outputs. */
uint64_t vg_hash_finish(uint64_t h);

#endif
