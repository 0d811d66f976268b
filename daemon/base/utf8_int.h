/* Private to utf8.c and the generated unicode_tables.c: the shapes of the
 * Unicode data tables. The generator (gen_unicode_tables.py) writes only
 * data; the code that reads it is in utf8.c, once. */
#ifndef VIGIL_UTF8_INT_H
#define VIGIL_UTF8_INT_H

#include <stddef.h>
#include <stdint.h>

/* A byte per index, stored in two stages to share the many identical
 * blocks: stage1[index >> shift] numbers a block of 1 << shift entries,
 * and the blocks lie one after another in stage2. Indexes at or above
 * limit have no entry (the caller decides what that means). */
typedef struct vg_unicode_stages {
    uint32_t limit;
    unsigned shift;
    const uint8_t *stage1;
    const uint8_t *stage2;
} vg_unicode_stages_t;

/* An inclusive range of code points. */
typedef struct vg_unicode_range {
    uint32_t lo, hi;
} vg_unicode_range_t;

/* Simple case folding: code point -> index into vg_fold_delta, the
 * distinct differences folded - original (index 0 is 0, no change). */
extern const vg_unicode_stages_t vg_fold_stages;
extern const int32_t vg_fold_delta[];

/* Word characters: code point / 8 -> a byte whose bit (code point % 8) is
 * set for a word character. Its limit is in code points. */
extern const vg_unicode_stages_t vg_word_stages;

/* White_Space, in ascending order. */
extern const vg_unicode_range_t vg_space_ranges[];
extern const size_t vg_space_range_count;

#endif
