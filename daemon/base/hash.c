#include "hash.h"

/* FNV-1a over the bytes; cheap, and stable by definition. vg_hash_finish
 * mixes the result (the splitmix64 finaliser) because FNV's low bits are
 * weak for hash-table indexing. */
uint64_t vg_hash64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

uint64_t vg_hash_finish(uint64_t h)
{
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h;
}
