/* Fuzz target: any bytes -> vg_norm_run (with and without case folding),
 * the offset map and spans, the boundary and word-count helpers.
 *
 * Invariants: normalising never fails; the output is well-formed UTF-8; the
 * map has out_len + 1 entries that never decrease, never pass the input's
 * length, end with it, and lie on character starts of the input (as
 * vg_utf8_decode walks it); every span is inside the input, on character
 * starts, and empty only for an empty output span; normalising the output
 * again gives it back (for well-formed input of up to 2 KiB: longer runs of
 * marks may be cut into segments, see norm.c); the ASCII fast path and the
 * general path agree (the input after "é " normalises to "e " + the input's
 * normalisation). */
#include <string.h>

#include "fuzz.h"
#include "vigil/norm.h"
#include "vigil/utf8.h"

static vg_norm_t *g_norm;
static unsigned char *g_starts; /* 1 at each character start of the input */
static size_t g_starts_cap;

static void teardown(void)
{
    vg_norm_destroy(g_norm);
    free(g_starts);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    g_norm = vg_norm_new(err, sizeof(err));
    if (!g_norm)
        fuzz_fail("vg_norm_new: %s", err);
    atexit(teardown);
    return 0;
}

/* Normalises s[0..len) and returns a malloc'ed copy of the output. */
static char *norm_copy(const char *s, size_t len, unsigned flags, size_t *out_len)
{
    const char *out;
    char err[256];
    if (vg_norm_run(g_norm, s, len, flags, &out, out_len, err, sizeof(err)) != 0)
        fuzz_fail("vg_norm_run failed on %zu bytes: %s", len, err);
    char *copy = malloc(*out_len + 1);
    if (!copy)
        fuzz_fail("out of memory");
    memcpy(copy, out, *out_len);
    copy[*out_len] = '\0';
    return copy;
}

static void mark_starts(const char *s, size_t len)
{
    if (len + 1 > g_starts_cap) {
        free(g_starts);
        g_starts_cap = len + 1;
        g_starts = malloc(g_starts_cap);
        if (!g_starts)
            fuzz_fail("out of memory");
    }
    memset(g_starts, 0, len + 1);
    for (size_t at = 0, l; at < len; at += l) {
        g_starts[at] = 1;
        vg_utf8_decode(s + at, len - at, &l);
    }
    g_starts[len] = 1;
}

static void check_map_and_spans(const char *s, size_t len, size_t out_len)
{
    const uint32_t *map = vg_norm_map(g_norm);
    if (!map)
        fuzz_fail("no map");
    if (map[out_len] != len)
        fuzz_fail("map[out_len] = %u, input length %zu", map[out_len], len);
    for (size_t i = 0; i < out_len; i++) {
        if (map[i] >= len || !g_starts[map[i]])
            fuzz_fail("map[%zu] = %u: not a character start of %zu bytes", i, map[i], len);
        if (i && map[i] < map[i - 1])
            fuzz_fail("map decreases at %zu: %u after %u", i, map[i], map[i - 1]);
    }
    /* A few spans, every one when the output is short. */
    size_t step = out_len > 40 ? out_len / 20 : 1;
    for (size_t a = 0; a <= out_len; a += step)
        for (size_t b = a; b <= out_len; b += step) {
            size_t st, en;
            vg_norm_span(g_norm, a, b, &st, &en);
            if (st > en || en > len || !g_starts[st] || !g_starts[en])
                fuzz_fail("span [%zu,%zu) -> [%zu,%zu) of %zu bytes", a, b, st, en, len);
            if ((a == b) != (st == en))
                fuzz_fail("span [%zu,%zu) -> [%zu,%zu)", a, b, st, en);
        }
}

static void check_classes(const char *out, size_t out_len)
{
    size_t cps = 0;
    for (size_t at = 0, l; at < out_len; at += l) {
        vg_utf8_decode(out + at, out_len - at, &l);
        cps++;
        (void)vg_norm_boundary_at(out, out_len, at);
    }
    if (vg_norm_count_words(out, out_len) > cps)
        fuzz_fail("more words than characters");
}

static void one_mode(const char *s, size_t len, unsigned flags)
{
    size_t out_len;
    char *out = norm_copy(s, len, flags, &out_len);
    if (!vg_utf8_valid(out, out_len))
        fuzz_fail("output is not well-formed UTF-8");
    check_map_and_spans(s, len, out_len);
    check_classes(out, out_len);

    if (len <= 2048 && vg_utf8_valid(s, len)) {
        size_t again_len;
        char *again = norm_copy(out, out_len, flags, &again_len);
        if (again_len != out_len || memcmp(again, out, out_len) != 0)
            fuzz_fail("not idempotent: \"%s\" -> \"%s\"", out, again);
        free(again);
    }

    /* The same text behind a non-ASCII prefix takes the general path. */
    char *pre = malloc(len + 3);
    if (!pre)
        fuzz_fail("out of memory");
    memcpy(pre, "\xC3\xA9 ", 3);
    memcpy(pre + 3, s, len);
    size_t pre_len;
    char *pre_out = norm_copy(pre, len + 3, flags, &pre_len);
    if (pre_len != out_len + 2 || memcmp(pre_out, "e ", 2) != 0 ||
        memcmp(pre_out + 2, out, out_len) != 0)
        fuzz_fail("\"\\u00e9 \" + input -> \"%s\", input alone -> \"%s\"", pre_out, out);
    free(pre_out);
    free(pre);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_norm)
        LLVMFuzzerInitialize(NULL, NULL);
    const char *s = (const char *)data;
    mark_starts(s, size);
    one_mode(s, size, 0);
    mark_starts(s, size);
    one_mode(s, size, VG_NORM_CASE_SENSITIVE);
    return 0;
}
