/* Snapshots of the stateful-rule state: a versioned, checksummed binary
 * image, and a restore that validates every length and value, so that a
 * damaged checkpoint is refused instead of crashing or half-restoring. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "le.h"
#include "state_int.h"
#include "vigil/event.h"

#define SNAP_MAGIC "VGST"
#define SNAP_VERSION 1u

/* ---- snapshots ----
 *
 * "VGST" u32 version, u64 events, u32 rules; per rule: str id, u64
 * fingerprint, i64 clock, u64 seq, 6 x u64 counters, then two tables (agg,
 * out): u32 entries, each (oldest first) str key, u64 seq, i64 deadline,
 * u8 in_heap, i64 a, i64 b, u64 n, u32 nts + i64 x nts, u32 nitems + str x
 * nitems. Last, u64 checksum of everything before it. Integers are little
 * endian; str is u32 length + bytes. */

static void put_le(vg_strbuf_t *sb, uint64_t v, size_t n)
{
    unsigned char b[8];
    vg_le_put(b, v, n);
    vg_strbuf_append(sb, (const char *)b, n);
}

static void put_u64(vg_strbuf_t *sb, uint64_t v)
{
    put_le(sb, v, 8);
}

static void put_u32(vg_strbuf_t *sb, uint32_t v)
{
    put_le(sb, v, 4);
}

static void put_str(vg_strbuf_t *sb, const char *s, size_t n)
{
    put_u32(sb, (uint32_t)n);
    vg_strbuf_append(sb, s, n);
}

static void put_table(vg_strbuf_t *sb, const table_t *t)
{
    put_u32(sb, (uint32_t)t->count);
    for (const entry_t *e = t->oldest; e; e = e->newer) {
        put_str(sb, e->key, e->klen);
        put_u64(sb, e->seq);
        put_u64(sb, (uint64_t)e->deadline);
        vg_strbuf_putc(sb, e->hidx != SIZE_MAX ? 1 : 0);
        put_u64(sb, (uint64_t)e->a);
        put_u64(sb, (uint64_t)e->b);
        put_u64(sb, e->n);
        put_u32(sb, e->nts);
        for (uint32_t i = 0; i < e->nts; i++)
            put_u64(sb, (uint64_t)e->ts[i]);
        put_u32(sb, e->nitems);
        for (uint32_t i = 0; i < e->nitems; i++)
            put_str(sb, e->items[i], strlen(e->items[i]));
    }
}

int vg_state_snapshot(const vg_state_t *st, char **out, size_t *len)
{
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    vg_strbuf_append(&sb, SNAP_MAGIC, 4);
    put_u32(&sb, SNAP_VERSION);
    put_u64(&sb, st->events);
    put_u32(&sb, (uint32_t)st->nrules);
    for (size_t i = 0; i < st->nrules; i++) {
        const rstate_t *r = &st->rules[i];
        put_str(&sb, vg_rule_id(r->rule), strlen(vg_rule_id(r->rule)));
        put_u64(&sb, r->cfg->fingerprint);
        put_u64(&sb, (uint64_t)r->clock);
        put_u64(&sb, r->seq);
        const vg_state_stats_t *s = &r->stats;
        uint64_t c[] = {s->events, s->late, s->untimed, s->evicted, s->keys_dropped, s->alerts,
                        s->suppressed};
        for (size_t k = 0; k < 7; k++)
            put_u64(&sb, c[k]);
        put_table(&sb, &r->agg);
        put_table(&sb, &r->out);
    }
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return -1;
    }
    put_u64(&sb, vg_hash_finish(vg_hash64(VG_HASH_INIT, sb.buf, sb.len)));
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return -1;
    }
    *out = vg_strbuf_detach(&sb, len);
    return 0;
}

/* Times (ms) and window numbers in a snapshot stay far from the int64
 * limits, so that adding a window to them cannot overflow. */
#define SANE_LIMIT (INT64_C(1) << 60)
static bool sane(int64_t v) { return v > -SANE_LIMIT && v < SANE_LIMIT; }

typedef struct reader {
    const unsigned char *p, *end;
    bool bad;
} reader_t;

/* The next n-byte integer; 0, and the reader bad, when fewer are left. */
static uint64_t get_le(reader_t *rd, size_t n)
{
    if (rd->bad || (size_t)(rd->end - rd->p) < n) {
        rd->bad = true;
        return 0;
    }
    uint64_t v = vg_le_get(rd->p, n);
    rd->p += n;
    return v;
}

static uint64_t get_u64(reader_t *rd)
{
    return get_le(rd, 8);
}

static uint32_t get_u32(reader_t *rd)
{
    return (uint32_t)get_le(rd, 4);
}

static const char *get_str(reader_t *rd, size_t *n)
{
    uint32_t l = get_u32(rd);
    if (rd->bad || (size_t)(rd->end - rd->p) < l) {
        rd->bad = true;
        return NULL;
    }
    const char *s = (const char *)rd->p;
    rd->p += l;
    *n = l;
    return s;
}

/* A digest item is spliced into an alert as it is: it must be exactly one
 * strict JSON object on one line (json_tokener_parse alone would take
 * trailing bytes, single quotes and NaN). */
static bool digest_item_ok(const char *item)
{
    size_t n = strlen(item);
    if (memchr(item, '\n', n) || memchr(item, '\r', n))
        return false;
    vg_decoder_t *dec = vg_decoder_new(NULL);
    vg_event_t *ev = NULL;
    char err[8];
    bool ok = dec && vg_decoder_parse(dec, item, n, &ev, err, sizeof(err)) == VG_EVENT_OK;
    vg_event_destroy(ev);
    vg_decoder_destroy(dec);
    return ok;
}

/* Reads one table into t (or skips it when t is NULL). */
static bool read_table(reader_t *rd, table_t *t, bool used, uint32_t ring, int64_t window,
                       uint64_t max_seq, const char **why)
{
    uint32_t count = get_u32(rd);
    if (t && (count > t->max_keys || (!used && count))) {
        *why = "more keys than the rule allows";
        return false;
    }
    for (uint32_t i = 0; i < count && !rd->bad; i++) {
        size_t kl = 0;
        const char *key = get_str(rd, &kl);
        uint64_t seq = get_u64(rd);
        int64_t deadline = (int64_t)get_u64(rd);
        uint8_t in_heap = (uint8_t)get_le(rd, 1);
        int64_t a = (int64_t)get_u64(rd), b = (int64_t)get_u64(rd);
        uint64_t n = get_u64(rd);
        uint32_t nts = get_u32(rd);
        if (rd->bad || (size_t)(rd->end - rd->p) / 8 < nts || seq > max_seq || in_heap > 1) {
            rd->bad = true;
            break;
        }
        if (!sane(deadline) || !sane(a) || !sane(b)) {
            *why = "a time is out of range";
            return false;
        }
        if (t && t->kind == T_SPIKE && nts != ring) {
            *why = "a spike entry has the wrong number of windows";
            return false;
        }
        /* A spike's a is a window number: (a + ring) * window is a time. */
        if (t && t->kind == T_SPIKE &&
            (a >= SANE_LIMIT / window - (int64_t)ring || a <= -SANE_LIMIT / window)) {
            *why = "a time is out of range";
            return false;
        }
        entry_t *e = NULL;
        if (t) {
            uint64_t h = vg_state_key_hash(key, kl);
            if (vg_state_table_get(t, key, kl, h)) {
                *why = "a key appears twice";
                return false;
            }
            uint64_t ignored = 0;
            if (!(e = vg_state_table_add(t, key, kl, h, &ignored))) {
                *why = "out of memory";
                return false;
            }
            e->seq = seq;
            e->deadline = deadline;
            e->a = a;
            e->b = b;
            e->n = n;
            if (nts && !(e->ts = malloc(nts * sizeof(int64_t)))) {
                *why = "out of memory";
                return false;
            }
            e->nts = e->cts = nts;
        }
        for (uint32_t k = 0; k < nts; k++) {
            int64_t v = (int64_t)get_u64(rd);
            if (!sane(v)) {
                *why = "a time is out of range";
                return false;
            }
            if (e)
                e->ts[k] = v;
        }
        uint32_t nitems = get_u32(rd);
        if (rd->bad || (size_t)(rd->end - rd->p) / 4 < nitems) {
            rd->bad = true;
            break;
        }
        if (e && nitems && !(e->items = calloc(nitems, sizeof(char *)))) {
            *why = "out of memory";
            return false;
        }
        for (uint32_t k = 0; k < nitems && !rd->bad; k++) {
            size_t il = 0;
            const char *item = get_str(rd, &il);
            if (e && item) {
                if (!(e->items[k] = strndup(item, il))) {
                    *why = "out of memory";
                    return false;
                }
                e->nitems++;
                /* Items are copied into alerts verbatim: only one-line
                 * strict JSON objects, with nothing after them. */
                if (!digest_item_ok(e->items[k])) {
                    *why = "a digest item is not a JSON object";
                    return false;
                }
            }
        }
        if (e && in_heap && !vg_state_heap_put(t, e)) {
            *why = "out of memory";
            return false;
        }
    }
    if (rd->bad)
        *why = "it is truncated or its lengths are inconsistent";
    return !rd->bad;
}

int vg_state_restore(vg_state_t *st, const char *buf, size_t len, size_t *dropped_rules,
                     char *err, size_t err_size)
{
    vg_state_clear(st);
    if (dropped_rules)
        *dropped_rules = 0;
    const char *why = NULL;
    bool *seen = NULL;
    if (len < 4 + 4 + 8 + 4 + 8 || memcmp(buf, SNAP_MAGIC, 4) != 0) {
        why = "it is not a vigil state snapshot";
        goto bad;
    }
    reader_t rd = {(const unsigned char *)buf + 4, (const unsigned char *)buf + len - 8, false};
    reader_t tail = {(const unsigned char *)buf + len - 8, (const unsigned char *)buf + len,
                     false};
    if (get_u64(&tail) != vg_hash_finish(vg_hash64(VG_HASH_INIT, buf, len - 8))) {
        why = "its checksum does not match (corrupt or truncated)";
        goto bad;
    }
    uint32_t version = get_u32(&rd);
    if (version != SNAP_VERSION) {
        snprintf(err, err_size,
                 "state snapshot has format version %u; this vigil reads version %u", version,
                 SNAP_VERSION);
        return -1;
    }
    st->events = get_u64(&rd);
    uint32_t nr = get_u32(&rd);
    seen = calloc(st->nrules ? st->nrules : 1, sizeof(bool));
    if (!seen) {
        why = "out of memory";
        goto bad;
    }
    for (uint32_t i = 0; i < nr && !rd.bad; i++) {
        size_t idl = 0;
        const char *id = get_str(&rd, &idl);
        uint64_t fp = get_u64(&rd);
        rstate_t *r = NULL;
        for (size_t k = 0; id && k < st->nrules && !r; k++)
            if (strlen(vg_rule_id(st->rules[k].rule)) == idl &&
                memcmp(vg_rule_id(st->rules[k].rule), id, idl) == 0 && st->rules[k].cfg->fingerprint == fp)
                r = &st->rules[k];
        if (r && seen[r - st->rules]) {
            why = "a rule appears twice";
            goto bad;
        }
        if (r)
            seen[r - st->rules] = true;
        int64_t clock = (int64_t)get_u64(&rd);
        uint64_t seq = get_u64(&rd);
        uint64_t c[7];
        for (size_t k = 0; k < 7; k++)
            c[k] = get_u64(&rd);
        if (rd.bad)
            break;
        if (clock != NO_TIME && !sane(clock)) {
            why = "a clock is out of range";
            goto bad;
        }
        if (r) {
            r->clock = clock;
            r->seq = seq;
            vg_state_stats_t s = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], 0};
            r->stats = s;
        } else if (dropped_rules) {
            (*dropped_rules)++;
        }
        if (!read_table(&rd, r ? &r->agg : NULL, r && r->has_agg, r ? r->cfg->baseline + 1 : 0,
                        r ? r->cfg->window_ms : 0, seq, &why) ||
            !read_table(&rd, r ? &r->out : NULL, r && r->has_out, 0, 0, seq, &why))
            goto bad;
    }
    if (rd.bad || rd.p != rd.end) {
        why = "it is truncated or has trailing bytes";
        goto bad;
    }
    free(seen);
    return 0;
bad:
    free(seen);
    vg_state_clear(st);
    snprintf(err, err_size, "state snapshot rejected: %s", why ? why : "it is malformed");
    return -1;
}

vg_state_t *vg_state_rebuild(const vg_state_t *st, const vg_ruleset_t *rs,
                             const vg_state_options_t *opts, size_t *dropped_rules, char *err,
                             size_t err_size)
{
    char *snap = NULL;
    size_t len = 0;
    vg_state_t *n = vg_state_new(rs, opts);
    if (!n || vg_state_snapshot(st, &snap, &len) != 0) {
        snprintf(err, err_size, "out of memory carrying state over to the new rules");
        vg_state_destroy(n);
        return NULL;
    }
    int rc = vg_state_restore(n, snap, len, dropped_rules, err, err_size);
    free(snap);
    if (rc != 0) {
        vg_state_destroy(n);
        return NULL;
    }
    return n;
}
