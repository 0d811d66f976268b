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

#include <string.h>
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
#define ROW8(M, b) M((b) + 0), M((b) + 1), M((b) + 2), M((b) + 3), \
                   M((b) + 4), M((b) + 5), M((b) + 6), M((b) + 7)
#define ROWS128(M) \
    ROW8(M, 0x00), ROW8(M, 0x08), ROW8(M, 0x10), ROW8(M, 0x18), \
    ROW8(M, 0x20), ROW8(M, 0x28), ROW8(M, 0x30), ROW8(M, 0x38), \
    ROW8(M, 0x40), ROW8(M, 0x48), ROW8(M, 0x50), ROW8(M, 0x58), \
    ROW8(M, 0x60), ROW8(M, 0x68), ROW8(M, 0x70), ROW8(M, 0x78)

static const unsigned char fold_keep[128] = { ROWS128(FOLD_ASCII) };
static const unsigned char fold_collapse[128] = { ROWS128(COLLAPSE_ASCII) };

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
    if (c < 0xC2)               /* continuation byte, or overlong C0/C1 */
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
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6)
               | (p[2] & 0x3F);
    }
    if (c < 0xF5) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
        if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80
            || (p[3] & 0xC0) != 0x80)
            goto bad;
        *len = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12)
               | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
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
static inline uint64_t fold_ascii8(uint64_t w)
{
    uint64_t ge_a = w + ONES * (0x80 - 'A');
    uint64_t gt_z = w + ONES * (0x80 - 'Z' - 1);
    uint64_t upper = ge_a & ~gt_z & HIGHS;
    return w | (upper >> 2);    /* 0x80 >> 2 == 0x20, the case bit */
}

/* Cheap pre-test for vg_unicode_is_space on non-ASCII code points: only
 * U+0085, U+00A0, U+1680 and U+2000..U+3000 can be white space, so letters
 * of most scripts skip the call. */
static inline bool maybe_space(uint32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp - 0x2000) <= 0x1000;
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

size_t vg_utf8_fold(const char *s, size_t n, bool collapse_space, char *out,
                    uint32_t *map)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char *q = (unsigned char *)out;
    const unsigned char *table = collapse_space ? fold_collapse : fold_keep;
    size_t i = 0, o = 0;
    /* 1 while the last output byte is the U+0020 standing for a white-space
     * run that may still go on; only ever set when collapsing. */
    unsigned in_space = 0;

    while (i < n) {
#if defined(__SSE2__)
        /* Sixteen ASCII bytes at a time (SSE2 is part of x86-64), whenever
         * they give sixteen output bytes: always when white space is kept;
         * when it is collapsed, as long as no two white-space bytes are
         * adjacent (also across blocks). A lone newline or tab, as in
         * wrapped news text, becomes a space in place. */
        while (n - i >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            if (_mm_movemask_epi8(x))
                break; /* a byte >= 0x80 */
            /* Bytes are ASCII here, so signed compares are plain ones. */
            __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                                          _mm_cmplt_epi8(x, _mm_set1_epi8('Z' + 1)));
            __m128i y = _mm_add_epi8(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
            if (collapse_space) {
                __m128i sp = _mm_or_si128(
                    _mm_cmpeq_epi8(x, _mm_set1_epi8(' ')),
                    _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('\t' - 1)),
                                  _mm_cmplt_epi8(x, _mm_set1_epi8('\r' + 1))));
                unsigned m = (unsigned)_mm_movemask_epi8(sp);
                if ((m & (m << 1)) || (in_space & m))
                    break; /* a run to collapse */
                y = _mm_or_si128(_mm_andnot_si128(sp, y), _mm_and_si128(sp, _mm_set1_epi8(' ')));
                in_space = (m >> 15) & 1;
            }
            _mm_storeu_si128((__m128i *)(void *)(q + o), y);
            if (map)
                for (unsigned k = 0; k < 16; k++)
                    map[o + k] = (uint32_t)(i + k);
            i += 16;
            o += 16;
        }
#endif
        /* Eight ASCII bytes at a time, whenever they give eight output bytes:
         * always when white space is kept; when it is collapsed, as long as
         * the only white space is single U+0020s (the common case of prose)
         * and no space continues a run from before. */
        while (n - i >= 8) {
            uint64_t w = load64(p + i);
            if (w & HIGHS)
                break;
            if (collapse_space) {
                /* Any byte below 0x20: maybe a tab or newline. */
                if ((w - ONES * 0x20) & ~w & HIGHS)
                    break;
                if (in_space && p[i] == ' ')
                    break;
                /* Exact per-byte test for ' ', then for two in a row. */
                uint64_t x = w ^ (ONES * ' ');
                uint64_t sp = ~(((x & ~HIGHS) + ~HIGHS) | x | ~HIGHS);
                if (sp & (sp << 8))
                    break;
                in_space = p[i + 7] == ' ';
            }
            w = fold_ascii8(w);
            memcpy(q + o, &w, sizeof w);
            if (map)
                for (unsigned k = 0; k < 8; k++)
                    map[o + k] = (uint32_t)(i + k);
            i += 8;
            o += 8;
        }

        /* ASCII a byte at a time, up to the next 8-byte boundary so that the
         * loop above gets another chance. Each byte is written at q[o] and
         * o only moves on when the byte is not a white-space byte following
         * white space: the skipped write lands on the slot after the run's
         * U+0020 and is overwritten (or becomes the NUL / map[out_len])
         * later, so it is always inside the caller's buffers. */
        size_t stop = n - i > 8 ? i + 8 : n;
        unsigned c;
        while (i < stop && (c = p[i]) < 0x80) {
            unsigned v = table[c];
            unsigned sp = v >> 7;
            q[o] = (unsigned char)(v & 0x7F);
            if (map)
                map[o] = (uint32_t)i;
            o += !(sp & in_space);
            in_space = sp;
            i++;
        }
        if (i >= n)
            break;
        if (p[i] < 0x80)
            continue;

        size_t len;
        uint32_t cp = decode_seq(p + i, n - i, &len);
        if (collapse_space && maybe_space(cp) && vg_unicode_is_space(cp)) {
            if (!in_space) {
                q[o] = ' ';
                if (map)
                    map[o] = (uint32_t)i;
                o++;
                in_space = 1;
            }
            i += len;
            continue;
        }
        in_space = 0;
        uint32_t f = vg_unicode_fold(cp);
        size_t out_len;
        if (f == cp && len > 1) {
            /* Unchanged and well-formed: copy rather than re-encode. Byte
             * stores, since a memcpy of a variable 2..4 bytes is a call. */
            q[o] = p[i];
            q[o + 1] = p[i + 1];
            if (len > 2) {
                q[o + 2] = p[i + 2];
                if (len > 3)
                    q[o + 3] = p[i + 3];
            }
            out_len = len;
        } else {
            /* A fold, or an ill-formed byte becoming U+FFFD (3 bytes for 1,
             * which is what the 3*n+1 output bound allows for). */
            out_len = vg_utf8_encode(f, (char *)(q + o));
        }
        if (map)
            for (size_t k = 0; k < out_len; k++)
                map[o + k] = (uint32_t)i;
        o += out_len;
        i += len;
    }

    q[o] = '\0';
    if (map)
        map[o] = (uint32_t)n;
    return o;
}
