#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

void vg_strmap_init(vg_strmap_t *m)
{
    memset(m, 0, sizeof(*m));
}

void vg_strmap_free(vg_strmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static uint64_t key_hash(const char *key, size_t len)
{
    return vg_hash_finish(vg_hash64(VG_HASH_INIT, key, len));
}

uint32_t *vg_strmap_get(const vg_strmap_t *m, const char *key, size_t len)
{
    if (!m->cap)
        return NULL;
    uint64_t h = key_hash(key, len);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        vg_strmap_entry_t *e = &m->slots[i];
        if (!e->key)
            return NULL;
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return &e->value;
    }
}

static int grow(vg_strmap_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    vg_strmap_entry_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        vg_strmap_entry_t *e = &m->slots[i];
        if (!e->key)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int vg_strmap_put(vg_strmap_t *m, const char *key, size_t len, uint32_t value)
{
    if (vg_strmap_get(m, key, len))
        return 0;
    /* Keep the load factor under 1/2 so probes stay short. */
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    uint64_t h = key_hash(key, len);
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key)
        i = (i + 1) & (m->cap - 1);
    char *k = malloc(len + 1);
    if (!k)
        return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    m->slots[i].key = k;
    m->slots[i].len = len;
    m->slots[i].hash = h;
    m->slots[i].value = value;
    m->count++;
    return 1;
}
