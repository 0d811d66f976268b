/* Shared by the engine's cmocka tests: everything a helper creates is
 * registered with own() and freed by the per-test teardown cleanup(), so a
 * failing assertion (which leaves the test through longjmp) leaks nothing
 * either. Include after <cmocka.h>. */
#ifndef VIGIL_TEST_SUPPORT_H
#define VIGIL_TEST_SUPPORT_H

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*free_fn)(void *);
typedef struct owned {
    free_fn fn;
    void *p;
} owned_t;
static owned_t *g_owned;
static size_t g_nowned, g_owned_cap;

static inline void *own(free_fn fn, void *p)
{
    if (g_nowned == g_owned_cap) {
        g_owned_cap = g_owned_cap ? 2 * g_owned_cap : 64;
        g_owned = realloc(g_owned, g_owned_cap * sizeof(*g_owned));
        assert_non_null(g_owned);
    }
    g_owned[g_nowned++] = (owned_t){fn, p};
    return p;
}

/* Frees everything registered after mark (a value of g_nowned). */
static inline void release_to(size_t mark)
{
    while (g_nowned > mark) {
        g_nowned--;
        g_owned[g_nowned].fn(g_owned[g_nowned].p);
    }
}

static inline void put_json(void *p)
{
    json_object_put(p);
}

static inline int cleanup(void **state)
{
    (void)state;
    release_to(0);
    free(g_owned);
    g_owned = NULL;
    g_owned_cap = 0;
    return 0;
}

/* printf into a string freed by cleanup(). */
static inline char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static inline char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return own(free, s);
}

/* The repository root: $VIGIL_SOURCE_DIR (set by ctest), else derived from
 * the test file's path, so that a test run by hand (valgrind in .ci/run)
 * finds the repository's files too. */
#define source_dir() vg_test_source_dir(__FILE__)
static inline const char *vg_test_source_dir(const char *file)
{
    const char *env = getenv("VIGIL_SOURCE_DIR");
    if (env && *env)
        return env;
    const char *slash = strrchr(file, '/');
    return fmt("%.*s/..", slash ? (int)(slash - file) : 1, slash ? file : ".");
}

#endif
