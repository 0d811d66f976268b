/* SHA-256 (FIPS 180-4), for the fingerprint a loss record carries of an
 * output it could not deliver whole (daemon/kafka/output.c). Nothing
 * vigil links directly offers one, and this is small enough to own. */
#ifndef VIGIL_SHA256_H
#define VIGIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define VG_SHA256_LEN 32
/* Hex digits and the terminating NUL. */
#define VG_SHA256_HEX_LEN (2 * VG_SHA256_LEN + 1)

typedef struct vg_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes fed so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in block */
} vg_sha256_t;

void vg_sha256_init(vg_sha256_t *s);
/* Feeds n bytes of data (data may be NULL when n is 0). */
void vg_sha256_update(vg_sha256_t *s, const void *data, size_t n);
/* Writes the digest; s must be initialised again before reuse. */
void vg_sha256_final(vg_sha256_t *s, uint8_t out[VG_SHA256_LEN]);

/* The digest of data in lower-case hex. */
void vg_sha256_hex(const void *data, size_t n, char out[VG_SHA256_HEX_LEN]);

#endif
