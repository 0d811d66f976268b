/* An open-addressing map from byte strings to 32-bit values, used for term
 * interning at load time and for `in` sets at match time. Keys are copied. */
#ifndef VIGIL_STRMAP_H
#define VIGIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vg_strmap_entry {
    char *key;
    size_t len;
    uint64_t hash;
    uint32_t value;
} vg_strmap_entry_t;

typedef struct vg_strmap {
    vg_strmap_entry_t *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count;
} vg_strmap_t;

void vg_strmap_init(vg_strmap_t *m);
void vg_strmap_free(vg_strmap_t *m);
/* Returns a pointer to the value for key, or NULL. */
uint32_t *vg_strmap_get(const vg_strmap_t *m, const char *key, size_t len);
/* Inserts key with value unless present. Returns 1 when inserted, 0 when
 * the key was already there (its value is left as it was), -1 when out of
 * memory. */
int vg_strmap_put(vg_strmap_t *m, const char *key, size_t len, uint32_t value);

#endif
