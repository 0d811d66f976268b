/* UTF-8 validation, decoding, encoding and case folding.
 *
 * vg_utf8_fold() is on the hot path of the keyword matcher, which folds every
 * news text it scans, so ASCII gets fast paths: sixteen bytes at a time
 * (SSE2) or eight (in a 64-bit word) while that gives one output byte per
 * input byte (also when collapsing, for text whose white space comes one
 * byte at a time), else a table-driven branch-free byte loop. The
 * Unicode tables and the per-code-point functions live in the generated
 * unicode_tables.c.
 *
 * Ill-formed input (outside the documented contract of vg_utf8_fold) is
 * handled like vg_utf8_decode does: each bad byte becomes U+FFFD, so the
 * output is always well-formed and within its 3*n+1 bound. */
#include "vigil/utf8.h"

#include <stdlib.h>
#include <string.h>

#include "utf8_int.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define REPLACEMENT 0xFFFDU

/* Eight copies of a byte, for the word-at-a-time ASCII path. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS (ONES * 0x80)

/* ASCII fold tables, indexed by a byte below 0x80. fold_keep folds A-Z and
 * leaves everything else alone. fold_collapse also turns the six ASCII
 * White_Space characters into 0xA0: the low seven bits are then U+0020 and
 * the top bit says "white space", so the fold loop needs no branch. */
#define FOLD_ASCII(c) ((c) >= 'A' && (c) <= 'Z' ? (c) + 0x20 : (c))
#define SPACE_ASCII(c) ((c) == ' ' || ((c) >= 0x09 && (c) <= 0x0D))
#define COLLAPSE_ASCII(c) (SPACE_ASCII(c) ? 0x80 | ' ' : FOLD_ASCII(c))
#define ROW8(M, b)                                                                                 \
    M((b) + 0), M((b) + 1), M((b) + 2), M((b) + 3), M((b) + 4), M((b) + 5), M((b) + 6), M((b) + 7)
#define ROWS128(M)                                                                                 \
    ROW8(M, 0x00), ROW8(M, 0x08), ROW8(M, 0x10), ROW8(M, 0x18), ROW8(M, 0x20), ROW8(M, 0x28),      \
        ROW8(M, 0x30), ROW8(M, 0x38), ROW8(M, 0x40), ROW8(M, 0x48), ROW8(M, 0x50), ROW8(M, 0x58),  \
        ROW8(M, 0x60), ROW8(M, 0x68), ROW8(M, 0x70), ROW8(M, 0x78)

static const unsigned char fold_keep[128] = {ROWS128(FOLD_ASCII)};
static const unsigned char fold_collapse[128] = {ROWS128(COLLAPSE_ASCII)};

/* Decodes one code point following the well-formed byte sequences of
 * Unicode Table 3-7; the tight second-byte ranges after E0, ED, F0 and F4
 * are what exclude overlongs, surrogates and code points above U+10FFFF.
 * Anything else, including a sequence cut short by n, is one ill-formed
 * byte: U+FFFD with length 1. Callers rely on length 1 being returned only
 * for ASCII or for an error. */
static inline uint32_t decode_seq(const unsigned char *p, size_t n, size_t *len)
{
    unsigned c = p[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c < 0xC2) /* continuation byte, or overlong C0/C1 */
        goto bad;
    if (c < 0xE0) {
        if (n < 2 || (p[1] & 0xC0) != 0x80)
            goto bad;
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (c < 0xF0) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned hi = c == 0xED ? 0x9F : 0xBF;
        if (n < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            goto bad;
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    if (c < 0xF5) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
        if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            goto bad;
        *len = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
               ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    }
bad:
    *len = 1;
    return REPLACEMENT;
}

/* memcpy keeps the unaligned load well-defined; compilers turn it into one
 * load instruction. */
static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* Lowercases the eight ASCII bytes of w at once. Bytes are below 0x80, so
 * adding at most 0x3F never carries into the next byte: the top bit of each
 * sum says whether the byte is >= 'A', resp. > 'Z'. */
static inline uint64_t fold_ascii_word(uint64_t w)
{
    uint64_t ge_a = w + ONES * (0x80 - 'A');
    uint64_t gt_z = w + ONES * (0x80 - 'Z' - 1);
    uint64_t upper = ge_a & ~gt_z & HIGHS;
    return w | (upper >> 2); /* 0x80 >> 2 == 0x20, the case bit */
}

/* Cheap pre-test for vg_unicode_is_space on non-ASCII code points: only
 * U+0085, U+00A0, U+1680 and U+2000..U+3000 can be white space, so letters
 * of most scripts skip the call. */
static inline bool maybe_space(uint32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp - 0x2000) <= 0x1000;
}

/* The byte at index i of a two-stage table (utf8_int.h); i < t->limit. */
static inline unsigned stage_lookup(const vg_unicode_stages_t *t, uint32_t i)
{
    unsigned block = t->stage1[i >> t->shift];
    return t->stage2[(block << t->shift) | (i & ((1U << t->shift) - 1))];
}

uint32_t vg_unicode_fold(uint32_t cp)
{
    if (cp >= vg_fold_stages.limit)
        return cp;
    /* Unsigned wrap-around turns the negative deltas into subtraction. */
    return cp + (uint32_t)vg_fold_delta[stage_lookup(&vg_fold_stages, cp)];
}

bool vg_unicode_is_word(uint32_t cp)
{
    if (cp >= vg_word_stages.limit)
        return false;
    return (stage_lookup(&vg_word_stages, cp >> 3) >> (cp & 7)) & 1U;
}

bool vg_unicode_is_space(uint32_t cp)
{
    /* Outside the first..last span (CJK, Hangul, other planes) no search. */
    size_t lo = 0, hi = vg_space_range_count;
    if (cp < vg_space_ranges[0].lo || cp > vg_space_ranges[hi - 1].hi)
        return false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp > vg_space_ranges[mid].hi)
            lo = mid + 1;
        else if (cp < vg_space_ranges[mid].lo)
            hi = mid;
        else
            return true;
    }
    return false;
}

bool vg_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs 32 bytes per test, then 8 */
        while (n - i >= 32 &&
               ((load64(p + i) | load64(p + i + 8) | load64(p + i + 16) | load64(p + i + 24)) &
                HIGHS) == 0)
            i += 32;
        if (i == n) /* all ASCII up to a multiple of 32 bytes: p[n] is not ours */
            break;
        if (n - i >= 8 && (load64(p + i) & HIGHS) == 0) {
            i += 8;
            continue;
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t len;
        decode_seq(p + i, n - i, &len);
        if (len == 1)
            return false;
        i += len;
    }
    return true;
}

uint32_t vg_utf8_decode(const char *s, size_t n, size_t *len)
{
    return decode_seq((const unsigned char *)s, n, len);
}

uint32_t vg_utf8_decode_before(const char *s, size_t pos, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = pos - 1;
    size_t stop = pos >= 4 ? pos - 4 : 0;
    while (start > stop && (p[start] & 0xC0) == 0x80)
        start--;
    /* Decoding only the bytes before pos must consume all of them; if it
     * does not, the byte at pos - 1 is ill-formed on its own, exactly as a
     * forward scan would have reported it. */
    size_t l;
    uint32_t cp = decode_seq(p + start, pos - start, &l);
    if (start + l == pos) {
        *len = l;
        return cp;
    }
    *len = 1;
    return REPLACEMENT;
}

size_t vg_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *q = (unsigned char *)out;
    if (cp < 0x80) {
        q[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        q[0] = (unsigned char)(0xC0 | (cp >> 6));
        q[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    /* Surrogates and values past U+10FFFF have no UTF-8 form; writing U+FFFD
     * keeps the output well-formed. */
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = REPLACEMENT;
    if (cp < 0x10000) {
        q[0] = (unsigned char)(0xE0 | (cp >> 12));
        q[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        q[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    q[0] = (unsigned char)(0xF0 | (cp >> 18));
    q[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    q[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    q[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Where vg_utf8_fold() stands: the input, the output, how far each has got,
 * and whether the last output byte is the U+0020 standing for a white-space
 * run that may still go on (only ever set when collapsing). The steps below
 * take it by pointer; they are inlined, so it lives in registers. */
typedef struct fold_cursor {
    const unsigned char *p;
    size_t n;
    unsigned char *q;
    uint32_t *map;
    size_t i, o;
    unsigned in_space;
    bool collapse;
} fold_cursor_t;

/* map[o..o+count) = i, i+1, ...: ASCII, one output byte per input byte. */
static inline void map_ascii(const fold_cursor_t *c, unsigned count)
{
    if (c->map)
        for (unsigned k = 0; k < count; k++)
            c->map[c->o + k] = (uint32_t)(c->i + k);
}

#if defined(__SSE2__)
/* Sixteen ASCII bytes at a time (SSE2 is part of x86-64), whenever they
 * give sixteen output bytes: always when white space is kept; when it is
 * collapsed, as long as no two white-space bytes are adjacent (also across
 * blocks). A lone newline or tab, as in wrapped news text, becomes a space
 * in place. */
static inline void fold_ascii16(fold_cursor_t *c)
{
    while (c->n - c->i >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(c->p + c->i));
        if (_mm_movemask_epi8(x))
            return; /* a byte >= 0x80 */
        /* Bytes are ASCII here, so signed compares are plain ones. */
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                                      _mm_cmplt_epi8(x, _mm_set1_epi8('Z' + 1)));
        __m128i y = _mm_add_epi8(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        if (c->collapse) {
            __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')),
                                      _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('\t' - 1)),
                                                    _mm_cmplt_epi8(x, _mm_set1_epi8('\r' + 1))));
            unsigned m = (unsigned)_mm_movemask_epi8(sp);
            if ((m & (m << 1)) || (c->in_space & m))
                return; /* a run to collapse */
            y = _mm_or_si128(_mm_andnot_si128(sp, y), _mm_and_si128(sp, _mm_set1_epi8(' ')));
            c->in_space = (m >> 15) & 1;
        }
        _mm_storeu_si128((__m128i *)(void *)(c->q + c->o), y);
        map_ascii(c, 16);
        c->i += 16;
        c->o += 16;
    }
}
#endif

/* Eight ASCII bytes at a time, whenever they give eight output bytes:
 * always when white space is kept; when it is collapsed, as long as the
 * only white space is single U+0020s (the common case of prose) and no
 * space continues a run from before. */
static inline void fold_ascii8(fold_cursor_t *c)
{
    while (c->n - c->i >= 8) {
        uint64_t w = load64(c->p + c->i);
        if (w & HIGHS)
            return;
        if (c->collapse) {
            /* Any byte below 0x20: maybe a tab or newline. */
            if ((w - ONES * 0x20) & ~w & HIGHS)
                return;
            if (c->in_space && c->p[c->i] == ' ')
                return;
            /* Exact per-byte test for ' ', then for two in a row. */
            uint64_t x = w ^ (ONES * ' ');
            uint64_t sp = ~(((x & ~HIGHS) + ~HIGHS) | x | ~HIGHS);
            if (sp & (sp << 8))
                return;
            c->in_space = c->p[c->i + 7] == ' ';
        }
        w = fold_ascii_word(w);
        memcpy(c->q + c->o, &w, sizeof w);
        map_ascii(c, 8);
        c->i += 8;
        c->o += 8;
    }
}

/* ASCII a byte at a time, up to the next 8-byte boundary so that the
 * word loops get another chance. Each byte is written at q[o] and o only
 * moves on when the byte is not a white-space byte following white space:
 * the skipped write lands on the slot after the run's U+0020 and is
 * overwritten (or becomes the NUL / map[out_len]) later, so it is always
 * inside the caller's buffers. */
static inline void fold_ascii_bytes(fold_cursor_t *c, const unsigned char *table)
{
    size_t stop = c->n - c->i > 8 ? c->i + 8 : c->n;
    unsigned b;
    while (c->i < stop && (b = c->p[c->i]) < 0x80) {
        unsigned v = table[b];
        unsigned sp = v >> 7;
        c->q[c->o] = (unsigned char)(v & 0x7F);
        if (c->map)
            c->map[c->o] = (uint32_t)c->i;
        c->o += !(sp & c->in_space);
        c->in_space = sp;
        c->i++;
    }
}

/* Writes the len-byte code point cp read at p[i] in folded form; returns
 * the output length. */
static inline size_t put_folded(fold_cursor_t *c, uint32_t cp, size_t len)
{
    uint32_t f = vg_unicode_fold(cp);
    const unsigned char *in = c->p + c->i;
    unsigned char *out = c->q + c->o;
    if (f == cp && len > 1) {
        /* Unchanged and well-formed: copy rather than re-encode. Byte
         * stores, since a memcpy of a variable 2..4 bytes is a call. */
        out[0] = in[0];
        out[1] = in[1];
        if (len > 2) {
            out[2] = in[2];
            if (len > 3)
                out[3] = in[3];
        }
        return len;
    }
    /* A fold, or an ill-formed byte becoming U+FFFD (3 bytes for 1, which
     * is what the 3*n+1 output bound allows for). */
    return vg_utf8_encode(f, (char *)out);
}

/* One code point at p[i] >= 0x80: white space (when collapsing) joins or
 * starts a run, anything else is folded. */
static inline void fold_code_point(fold_cursor_t *c)
{
    size_t len;
    uint32_t cp = decode_seq(c->p + c->i, c->n - c->i, &len);
    if (c->collapse && maybe_space(cp) && vg_unicode_is_space(cp)) {
        if (!c->in_space) {
            c->q[c->o] = ' ';
            if (c->map)
                c->map[c->o] = (uint32_t)c->i;
            c->o++;
            c->in_space = 1;
        }
        c->i += len;
        return;
    }
    c->in_space = 0;
    size_t out_len = put_folded(c, cp, len);
    if (c->map)
        for (size_t k = 0; k < out_len; k++)
            c->map[c->o + k] = (uint32_t)c->i;
    c->o += out_len;
    c->i += len;
}

size_t vg_utf8_fold(const char *s, size_t n, bool collapse_space, char *out, uint32_t *map)
{
    fold_cursor_t c = {.p = (const unsigned char *)s,
                       .n = n,
                       .q = (unsigned char *)out,
                       .map = map,
                       .collapse = collapse_space};
    const unsigned char *table = collapse_space ? fold_collapse : fold_keep;
    while (c.i < n) {
#if defined(__SSE2__)
        fold_ascii16(&c);
#endif
        fold_ascii8(&c);
        fold_ascii_bytes(&c, table);
        if (c.i >= n)
            break;
        if (c.p[c.i] < 0x80)
            continue;
        fold_code_point(&c);
    }
    c.q[c.o] = '\0';
    if (map)
        map[c.o] = (uint32_t)n;
    return c.o;
}

/* ---- gap collapsing (rule 2) ---- */

/* 1: ASCII white space, 2: '-', 3: may start a non-ASCII white space. */
static const unsigned char GAP_BYTE[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1,
    ['-'] = 2,  [0xC2] = 3, [0xE1] = 3, [0xE2] = 3,
};

/* The byte length of the white space or dash at s[i], or 0. After NFKC,
 * the white space left outside ASCII is U+0085, U+1680, U+2028, U+2029. */
static inline size_t gap_char(const char *s, size_t len, size_t i)
{
    const unsigned char *u = (const unsigned char *)s + i;
    switch (GAP_BYTE[u[0]]) {
    case 0: return 0;
    case 1:
    case 2: return 1;
    default: break;
    }
    size_t left = len - i;
    if (u[0] == 0xC2)
        return left >= 2 && u[1] == 0x85 ? 2 : 0;
    if (left < 3)
        return 0;
    if (u[0] == 0xE1)
        return u[1] == 0x9A && u[2] == 0x80 ? 3 : 0;
    return u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9) ? 3 : 0;
}

static bool push_dash(uint32_t **dashes, size_t *nd, size_t *dcap, size_t pos)
{
    if (*nd == *dcap) {
        size_t ncap = *dcap ? *dcap * 2 : 16;
        uint32_t *g = realloc(*dashes, ncap * sizeof(uint32_t));
        if (!g)
            return false;
        *dashes = g;
        *dcap = ncap;
    }
    (*dashes)[(*nd)++] = (uint32_t)pos;
    return true;
}

/* A run of two or more dashes: each dash kept, the white space between
 * them one ' '. */
static size_t keep_dashes(const char *s, size_t len, size_t from, size_t to, char *out, size_t o,
                          uint32_t *map)
{
    for (size_t j = from; j < to;) {
        if (map)
            map[o] = (uint32_t)j;
        if (s[j] == '-') {
            out[o++] = '-';
            j++;
            continue;
        }
        out[o++] = ' ';
        while (j < to && s[j] != '-')
            j += gap_char(s, len, j);
    }
    return o;
}

/* The bytes of the 16 at s that the copy must stop at: white space other
 * than a ' ' before an ordinary byte, dashes, and the lead bytes of the
 * only non-ASCII white space left after NFKC (0xC2, 0xE1, 0xE2: see
 * gap_char); bit k for s[k]. Other non-ASCII bytes are copied at full
 * speed (Han, Hangul and Kana text is all of them). A ' ' that ends the
 * block stops it too: the next may follow. */
static inline unsigned special_mask(const char *s)
{
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    __m128i ctl = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x08)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8(0x0E)));
    __m128i other = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
    other = _mm_or_si128(other, _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xC2)));
    other = _mm_or_si128(other, _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xE1)));
    other = _mm_or_si128(other, _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xE2)));
    unsigned o = (unsigned)_mm_movemask_epi8(other);
    unsigned sp = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
    return o | (sp & (((o | sp) >> 1) | 0x8000u));
#else
    (void)s;
    return 1;
#endif
}

/* One run of white space and dashes starting at s[i]: written to out at
 * o; returns the new o and moves *i past the run; SIZE_MAX when dashes
 * cannot grow. */
static size_t collapse_run(const char *s, size_t len, size_t *i, char *out, size_t o,
                           uint32_t *map, uint32_t **dashes, size_t *ndashes, size_t *dcap)
{
    size_t start = *i, nd = 0, wl;
    while (*i < len && (wl = gap_char(s, len, *i))) {
        nd += s[*i] == '-';
        *i += wl;
    }
    if (nd > 1)
        return keep_dashes(s, len, start, *i, out, o, map);
    if (nd == 1 && !push_dash(dashes, ndashes, dcap, o))
        return SIZE_MAX;
    if (map)
        map[o] = (uint32_t)start;
    out[o] = ' ';
    return o + 1;
}

static inline size_t collapse(const char *s, size_t len, char *out, uint32_t *map,
                              uint32_t **dashes, size_t *ndashes, size_t *dcap)
{
    size_t o = 0, i = 0;
    *ndashes = 0;
    while (i < len) {
#if defined(__SSE2__)
        if (i + 16 <= len) {
            /* Copy 16 bytes (o <= i, so they fit), keep those before the
             * first special one. */
            unsigned m = special_mask(s + i);
            _mm_storeu_si128((__m128i *)(out + o), _mm_loadu_si128((const __m128i *)(s + i)));
            size_t k = m ? (size_t)__builtin_ctz(m) : 16;
            if (map)
                for (size_t j = 0; j < k; j++)
                    map[o + j] = (uint32_t)(i + j);
            o += k;
            i += k;
            if (k == 16)
                continue;
        }
#endif
        unsigned char b = (unsigned char)s[i];
        /* Not white space or a dash, or a lone ' ': as it is. */
        if (!gap_char(s, len, i) ||
            (b == ' ' && (i + 1 == len || !GAP_BYTE[(unsigned char)s[i + 1]]))) {
            if (map)
                map[o] = (uint32_t)i;
            out[o++] = s[i++];
            continue;
        }
        o = collapse_run(s, len, &i, out, o, map, dashes, ndashes, dcap);
        if (o == SIZE_MAX)
            return SIZE_MAX;
    }
    if (map)
        map[o] = (uint32_t)len;
    return o;
}

size_t vg_gap_collapse(const char *s, size_t len, char *out, uint32_t *map, uint32_t **dashes,
                       size_t *ndashes, size_t *dcap)
{
    /* Two copies of the loop: the one without a map is the hot one. */
    if (map)
        return collapse(s, len, out, map, dashes, ndashes, dcap);
    return collapse(s, len, out, NULL, dashes, ndashes, dcap);
}
