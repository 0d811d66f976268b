/* Normalisation of text for keyword matching, with an offset map back to the
 * input, and the character classes of word boundaries (see vigil/norm.h).
 *
 * ICU does the Unicode work (unorm2 for NFKC/NFD/NFC, u_strFoldCase for full
 * case folding, uscript for scripts). ICU's C API gives no correspondence
 * between input and output offsets, so the text is cut into normalisation
 * segments: a segment starts at every character that has an NFKC boundary
 * before it (unorm2_hasBoundaryBefore), so it is a character with whatever
 * combines with it. Every step of the pipeline works within a segment (case
 * folding is per character; the mark-dropping of rule 8 needs only to know
 * whether the current combining sequence started with a Latin, Greek or
 * Cyrillic letter, which is carried from segment to segment), so the output
 * is the concatenation of the segments' outputs and each output byte maps to
 * the start of its segment.
 *
 * Speed: ASCII text is normalised by lower-casing it, sixteen bytes at a
 * time, and needs no map until one is asked for. A segment of one character
 * that normalisation leaves alone (most CJK, Hangul, Cyrillic lower case...)
 * is copied after a cached property lookup; only the others go through ICU.
 *
 * A segment is cut after SEG_MAX code points: ICU's canonical reordering is
 * quadratic in the number of marks, and a field of a million combining marks
 * must not stall the scanner. Text with more marks on one character than
 * that is not language, so normalising it in pieces is harmless. */
#include "vigil/norm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "vigil/utf8.h"

#define SEG_MAX 4096
#define CACHE_BITS 12
#define CACHE_SIZE (1u << CACHE_BITS)
#define MARK_WALK_MAX 64

/* Per-code-point properties, cached (ICU's lookups are tries, but several of
 * them per character add up on CJK text, which repeats its characters). */
enum {
    P_KNOWN = 1 << 0,      /* the entry is filled */
    P_BOUNDARY = 1 << 1,   /* NFKC boundary before the character */
    P_STABLE = 1 << 2,     /* alone, NFKC, NFD + rule 8 + NFC leave it alone */
    P_FOLDS = 1 << 3,      /* case folding changes it */
    P_MN = 1 << 4,         /* general category Mn */
    P_MARK = 1 << 5,       /* M* */
    P_LGC_LETTER = 1 << 6, /* a letter of the Latin, Greek or Cyrillic script */
    P_PUNCT = 1 << 7,      /* a rule-9 apostrophe or dash */
};

typedef struct {
    uint32_t cp;
    uint8_t props;
} prop_entry_t;

struct vg_norm {
    const UNormalizer2 *nfkc, *nfd, *nfc;
    /* Output and map of the last run. */
    char *out;
    size_t out_cap;
    uint32_t *map;
    size_t map_cap;
    const char *in;
    size_t in_len;
    const char *res;
    size_t res_len;
    bool identity; /* the last run was ASCII: map[i] == i, not filled yet */
    bool fold;
    /* The segment being collected: input bytes [seg_src, seg_end) holding
     * seg_cps characters (invisible ones aside), the first being seg_cp. */
    size_t seg_end, seg_cps;
    uint32_t seg_src, seg_cp;
    uint8_t seg_bytes, seg_props; /* of seg_cp */
    /* The segment in UTF-16 (for ICU), and ICU's scratch. */
    UChar *seg, *t[2];
    size_t seg_cap, seg_len, t_cap[2];
    /* True while the current combining sequence started with a Latin, Greek
     * or Cyrillic letter: its Mn marks are dropped (rule 8). */
    bool lgc;
    prop_entry_t cache[CACHE_SIZE];
};

/* ---------------------------------------------------------------- classes */

static inline bool ascii_letter(uint32_t c)
{
    return (c | 0x20u) - 'a' < 26u;
}

static inline uint32_t ascii_lower(uint32_t c)
{
    return c - 'A' < 26u ? c | 0x20u : c;
}

static bool is_invisible(uint32_t cp)
{
    return cp == 0xAD || (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF;
}

/* Rule 9's apostrophes and dashes (after NFKC, U+FF07, U+FF0D, U+FE63 are
 * ASCII already and U+FE58 is U+2014, but mapping them is cheap and keeps
 * the list as DESIGN writes it). */
static uint32_t punct_map(uint32_t cp)
{
    if (cp < 0x2BC)
        return cp;
    if (cp == 0x2018 || cp == 0x2019 || cp == 0x2BC || cp == 0xFF07)
        return '\'';
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0xFE58 || cp == 0xFE63 ||
        cp == 0xFF0D)
        return '-';
    return cp;
}

static bool is_lgc_script(UChar32 c)
{
    UErrorCode ec = U_ZERO_ERROR;
    UScriptCode sc = uscript_getScript(c, &ec);
    return U_SUCCESS(ec) && (sc == USCRIPT_LATIN || sc == USCRIPT_GREEK || sc == USCRIPT_CYRILLIC);
}

static uint8_t props_compute(const vg_norm_t *n, UChar32 c)
{
    uint8_t p = P_KNOWN;
    if (unorm2_hasBoundaryBefore(n->nfkc, c))
        p |= P_BOUNDARY;
    if (u_hasBinaryProperty(c, UCHAR_CHANGES_WHEN_CASEFOLDED))
        p |= P_FOLDS;
    uint32_t gc = U_GET_GC_MASK(c);
    if (gc & U_GC_MN_MASK)
        p |= P_MN;
    if (gc & U_GC_M_MASK)
        p |= P_MARK;
    if ((gc & U_GC_L_MASK) && is_lgc_script(c))
        p |= P_LGC_LETTER;
    if (punct_map((uint32_t)c) != (uint32_t)c)
        p |= P_PUNCT;
    /* Quick check YES: NFKC keeps the character as it is. Decomposing it
     * and composing it again gives it back too, unless rule 8 drops a mark
     * on the way: a precomposed Latin, Greek or Cyrillic letter (é) is not
     * stable, a precomposed kana (が) is. */
    if (u_getIntPropertyValue(c, UCHAR_NFKC_QUICK_CHECK) == UNORM_YES &&
        (!(p & P_LGC_LETTER) || u_getIntPropertyValue(c, UCHAR_NFD_QUICK_CHECK) == UNORM_YES))
        p |= P_STABLE;
    return p;
}

static inline uint8_t props(vg_norm_t *n, uint32_t cp)
{
    prop_entry_t *e = &n->cache[(cp ^ (cp >> CACHE_BITS)) & (CACHE_SIZE - 1)];
    if (e->cp != cp || !e->props) {
        e->cp = cp;
        e->props = props_compute(n, (UChar32)cp);
    }
    return e->props;
}

bool vg_uchar_is_word(uint32_t cp)
{
    if (cp < 0x80)
        return ascii_letter(cp) || cp - '0' < 10u || cp == '_';
    if (cp > 0x10FFFF)
        return false;
    return (U_GET_GC_MASK((UChar32)cp) & (U_GC_L_MASK | U_GC_M_MASK | U_GC_ND_MASK)) != 0;
}

bool vg_uchar_is_mark(uint32_t cp)
{
    return cp >= 0x300 && cp <= 0x10FFFF && (U_GET_GC_MASK((UChar32)cp) & U_GC_M_MASK) != 0;
}

static vg_script_class_t class_of_script(UScriptCode sc)
{
    switch (sc) {
    case USCRIPT_HAN:
    case USCRIPT_HIRAGANA:
    case USCRIPT_KATAKANA:
    case USCRIPT_KATAKANA_OR_HIRAGANA:
    case USCRIPT_THAI:
    case USCRIPT_LAO:
    case USCRIPT_KHMER:
    case USCRIPT_MYANMAR:
        return VG_SCRIPT_SPACELESS;
    case USCRIPT_HANGUL:
        return VG_SCRIPT_HANGUL;
    default:
        return VG_SCRIPT_OTHER;
    }
}

vg_script_class_t vg_uchar_script_class(uint32_t cp)
{
    if (cp < 0x80 || cp > 0x10FFFF)
        return VG_SCRIPT_OTHER;
    UErrorCode ec = U_ZERO_ERROR;
    UScriptCode sc = uscript_getScript((UChar32)cp, &ec);
    if (U_FAILURE(ec))
        return VG_SCRIPT_OTHER;
    if (sc != USCRIPT_COMMON && sc != USCRIPT_INHERITED)
        return class_of_script(sc);
    UScriptCode ext[32];
    ec = U_ZERO_ERROR;
    int k = uscript_getScriptExtensions((UChar32)cp, ext, 32, &ec);
    vg_script_class_t best = VG_SCRIPT_OTHER;
    for (int i = 0; U_SUCCESS(ec) && i < k; i++) {
        vg_script_class_t c = class_of_script(ext[i]);
        if (c == VG_SCRIPT_SPACELESS)
            return c;
        if (c == VG_SCRIPT_HANGUL)
            best = c;
    }
    return best;
}

/* The class of the character that ends at pos, a mark taking its base's. */
static vg_script_class_t class_before(const char *s, size_t pos)
{
    size_t l;
    uint32_t cp = vg_utf8_decode_before(s, pos, &l);
    uint32_t first = cp;
    for (int k = 0; k < MARK_WALK_MAX && vg_uchar_is_mark(cp); k++) {
        pos -= l;
        if (pos == 0)
            return vg_uchar_script_class(first);
        cp = vg_utf8_decode_before(s, pos, &l);
    }
    return vg_uchar_script_class(vg_uchar_is_mark(cp) ? first : cp);
}

bool vg_norm_boundary_at(const char *s, size_t len, size_t pos)
{
    if (pos == 0 || pos >= len)
        return true;
    size_t l;
    uint32_t next = vg_utf8_decode(s + pos, len - pos, &l);
    uint32_t prev = vg_utf8_decode_before(s, pos, &l);
    if (!vg_uchar_is_word(next) || !vg_uchar_is_word(prev))
        return true;
    if (next < 0x80 && prev < 0x80)
        return false;
    if (vg_uchar_is_mark(next))
        return false;
    return class_before(s, pos) != vg_uchar_script_class(next);
}

size_t vg_norm_count_words(const char *s, size_t len)
{
    /* in_run: the last character was a word character other than a rule-11
     * base (or a mark of one), so a following word character continues it.
     * after_word: the last character was a word character (for marks). */
    size_t words = 0, i = 0;
    bool in_run = false, after_word = false;
    while (i < len) {
        size_t l;
        uint32_t cp = vg_utf8_decode(s + i, len - i, &l);
        i += l;
        if (!vg_uchar_is_word(cp)) {
            in_run = after_word = false;
        } else if (vg_uchar_is_mark(cp)) {
            if (!after_word) {
                words++;
                in_run = true;
            }
            after_word = true;
        } else if (vg_uchar_script_class(cp) == VG_SCRIPT_SPACELESS) {
            words++;
            in_run = false;
            after_word = true;
        } else {
            if (!in_run)
                words++;
            in_run = after_word = true;
        }
    }
    return words;
}

/* ------------------------------------------------------------ ASCII paths */

/* Lower-cases (fold) or copies the leading ASCII bytes of p[0..len) into q
 * and returns how many there were; q == NULL only counts them. */
static size_t ascii_prefix(const unsigned char *p, size_t len, unsigned char *q, bool fold)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i a = _mm_set1_epi8('A'), span = _mm_set1_epi8(25), bit = _mm_set1_epi8(0x20);
    for (; len - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        if (_mm_movemask_epi8(x))
            break;
        if (!q)
            continue;
        if (fold) {
            /* x - 'A' <= 25, unsigned, picks the capitals */
            __m128i d = _mm_sub_epi8(x, a);
            __m128i cap = _mm_cmpeq_epi8(_mm_min_epu8(d, span), d);
            x = _mm_or_si128(x, _mm_and_si128(cap, bit));
        }
        _mm_storeu_si128((__m128i *)(void *)(q + i), x);
    }
#endif
    for (; i < len && p[i] < 0x80; i++)
        if (q)
            q[i] = (unsigned char)(fold ? ascii_lower(p[i]) : p[i]);
    return i;
}

/* --------------------------------------------------------------- buffers */

/* Returns buf grown to hold need elements (doubling), or NULL with buf left
 * as it was. */
static void *grow(void *buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return buf;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *b = realloc(buf, c * elem);
    if (b)
        *cap = c;
    return b;
}

static int grow_out(vg_norm_t *n, size_t need)
{
    char *b = grow(n->out, &n->out_cap, need, 1);
    if (!b)
        return -1;
    n->out = b;
    return 0;
}

static int grow_map(vg_norm_t *n, size_t need)
{
    uint32_t *b = grow(n->map, &n->map_cap, need, sizeof(uint32_t));
    if (!b)
        return -1;
    n->map = b;
    return 0;
}

/* Room for `extra` more output bytes and their map entries after o, plus
 * the map's final entry. */
static int reserve_slow(vg_norm_t *n, size_t need)
{
    return grow_out(n, need) != 0 || grow_map(n, need) != 0 ? -1 : 0;
}

static inline int reserve(vg_norm_t *n, size_t o, size_t extra)
{
    size_t need = o + extra + 1;
    return need <= n->out_cap && need <= n->map_cap ? 0 : reserve_slow(n, need);
}

static void errf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------- segments */

/* Writes cp (after rule 9's punctuation mapping) at *o, mapped to src. */
static void put_cp(vg_norm_t *n, size_t *o, uint32_t cp, uint32_t src)
{
    size_t k = vg_utf8_encode(punct_map(cp), n->out + *o);
    for (size_t j = 0; j < k; j++)
        n->map[*o + j] = src;
    *o += k;
}

enum { STEP_NFKC, STEP_NFD, STEP_NFC, STEP_FOLD };

/* One ICU step from src[0..len) into scratch buffer n->t[d] (grown as
 * needed; src is never that buffer). Returns the length or -1. */
static int32_t icu_step(vg_norm_t *n, int step, const UChar *src, int32_t len, int d)
{
    for (;;) {
        UErrorCode ec = U_ZERO_ERROR;
        int32_t cap = n->t_cap[d] > INT32_MAX ? INT32_MAX : (int32_t)n->t_cap[d];
        int32_t r;
        if (step == STEP_FOLD)
            r = u_strFoldCase(n->t[d], cap, src, len, U_FOLD_CASE_DEFAULT, &ec);
        else
            r = unorm2_normalize(step == STEP_NFKC  ? n->nfkc
                                 : step == STEP_NFD ? n->nfd
                                                    : n->nfc,
                                 src, len, n->t[d], cap, &ec);
        if (U_SUCCESS(ec) || ec == U_STRING_NOT_TERMINATED_WARNING)
            return r;
        if (ec != U_BUFFER_OVERFLOW_ERROR || r <= cap)
            return -1;
        UChar *b = grow(n->t[d], &n->t_cap[d], (size_t)r, sizeof(UChar));
        if (!b)
            return -1;
        n->t[d] = b;
    }
}

/* Drops, in NFD text t[0..len), the Mn marks of combining sequences that
 * start with a Latin, Greek or Cyrillic letter; returns the new length. */
static int32_t drop_lgc_marks(vg_norm_t *n, UChar *t, int32_t len)
{
    int32_t i = 0, w = 0;
    while (i < len) {
        int32_t at = i;
        UChar32 c;
        U16_NEXT(t, i, len, c);
        uint8_t p = props(n, (uint32_t)c);
        if (!(p & P_MARK))
            n->lgc = (p & P_LGC_LETTER) != 0;
        else if ((p & P_MN) && n->lgc)
            continue;
        while (at < i)
            t[w++] = t[at++];
    }
    return w;
}

/* Converts the segment's input bytes to UTF-16 for ICU, without the
 * invisible characters inside it. */
static int seg_utf16(vg_norm_t *n)
{
    /* A byte gives at most one UTF-16 unit (four bytes give two). */
    UChar *b = grow(n->seg, &n->seg_cap, n->seg_end - n->seg_src + 1, sizeof(UChar));
    if (!b)
        return -1;
    n->seg = b;
    n->seg_len = 0;
    for (size_t i = n->seg_src, l; i < n->seg_end; i += l) {
        uint32_t cp = vg_utf8_decode(n->in + i, n->seg_end - i, &l);
        if (!is_invisible(cp))
            U16_APPEND_UNSAFE(n->seg, n->seg_len, cp);
    }
    return 0;
}

/* The whole pipeline on the segment, through ICU, ping-ponging between the
 * two scratch buffers. */
static int flush_complex(vg_norm_t *n, size_t *o)
{
    if (seg_utf16(n) != 0)
        return -1;
    int32_t len = icu_step(n, STEP_NFKC, n->seg, (int32_t)n->seg_len, 0);
    int d = 0;
    if (len >= 0 && n->fold) {
        len = icu_step(n, STEP_FOLD, n->t[d], len, !d);
        d = !d;
    }
    if (len >= 0) {
        len = icu_step(n, STEP_NFD, n->t[d], len, !d);
        d = !d;
    }
    if (len >= 0) {
        len = drop_lgc_marks(n, n->t[d], len);
        len = icu_step(n, STEP_NFC, n->t[d], len, !d);
        d = !d;
    }
    /* A UTF-16 unit gives at most three bytes of UTF-8. */
    if (len < 0 || reserve(n, *o, (size_t)len * 3) != 0)
        return -1;
    const UChar *t = n->t[d];
    for (int32_t i = 0; i < len;) {
        UChar32 c;
        U16_NEXT(t, i, len, c);
        put_cp(n, o, (uint32_t)c, n->seg_src);
    }
    return 0;
}

/* A segment of one character that normalisation leaves alone: it is copied
 * (unless rule 8 drops it or rule 9 maps it). */
static inline int flush_one(vg_norm_t *n, size_t *o)
{
    uint32_t cp = n->seg_cp;
    uint8_t p = n->seg_props;
    if (!(p & P_MARK))
        n->lgc = (p & P_LGC_LETTER) != 0;
    if ((p & P_MN) && n->lgc)
        return 0;
    if (reserve(n, *o, 4) != 0)
        return -1;
    if ((p & P_PUNCT) || cp == 0xFFFD) {
        put_cp(n, o, cp, n->seg_src);
        return 0;
    }
    char *q = n->out + *o;
    const char *src = n->in + n->seg_src;
    uint32_t *m = n->map + *o;
    switch (n->seg_bytes) {
    case 4:
        q[3] = src[3];
        m[3] = n->seg_src;
        /* fall through */
    case 3:
        q[2] = src[2];
        m[2] = n->seg_src;
        /* fall through */
    case 2:
        q[1] = src[1];
        m[1] = n->seg_src;
        /* fall through */
    default:
        q[0] = n->fold ? (char)ascii_lower((unsigned char)src[0]) : src[0];
        m[0] = n->seg_src;
    }
    *o += n->seg_bytes;
    return 0;
}

/* Normalises the segment and appends it to the output. */
static inline int flush(vg_norm_t *n, size_t *o)
{
    if (!n->seg_cps)
        return 0;
    uint8_t p = n->seg_props;
    size_t cps = n->seg_cps;
    n->seg_cps = 0;
    /* Full-width ASCII (common in CJK text) is ASCII after NFKC. */
    if (cps == 1 && n->seg_cp - 0xFF01u <= 0x5Du) {
        uint32_t c = n->seg_cp - 0xFEE0u;
        n->lgc = ascii_letter(c);
        if (reserve(n, *o, 1) != 0)
            return -1;
        put_cp(n, o, n->fold ? ascii_lower(c) : c, n->seg_src);
        return 0;
    }
    /* (An ASCII capital is stable in this sense: flush_one lower-cases.) */
    if (cps == 1 && (p & P_STABLE) && !(n->fold && (p & P_FOLDS)))
        return flush_one(n, o);
    return flush_complex(n, o);
}

/* Starts a segment with cp, the `bytes` bytes of the input at src. */
static inline void seg_start(vg_norm_t *n, uint32_t cp, size_t src, size_t bytes, uint8_t p)
{
    n->seg_src = (uint32_t)src;
    n->seg_end = src + bytes;
    n->seg_cp = cp;
    n->seg_bytes = (uint8_t)bytes;
    n->seg_props = p;
    n->seg_cps = 1;
}

static inline uint8_t ascii_props(unsigned c)
{
    return P_KNOWN | P_BOUNDARY | P_STABLE | (ascii_letter(c) ? P_LGC_LETTER : 0);
}

/* Text with a byte >= 0x80 somewhere at or after i (and s[0..i) already
 * written to out, one byte each). */
static int run_mixed(vg_norm_t *n, const char *s, size_t len, size_t i, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = i;
    if (reserve(n, 0, len) != 0)
        return -1;
    for (size_t k = 0; k < i; k++)
        n->map[k] = (uint32_t)k;
    n->seg_cps = 0;
    n->lgc = false;
    while (i < len) {
        if (p[i] < 0x80) {
            /* An ASCII run: each character is a segment of its own, except
             * that the last one may take marks that follow it. */
            if (flush(n, &o) != 0 || reserve(n, o, len - i) != 0)
                return -1;
            size_t k = ascii_prefix(p + i, len - i, (unsigned char *)n->out + o, n->fold);
            size_t keep = i + k < len ? k - 1 : k;
            for (size_t j = 0; j < keep; j++)
                n->map[o + j] = (uint32_t)(i + j);
            if (keep)
                n->lgc = ascii_letter(p[i + keep - 1]);
            o += keep;
            i += keep;
            if (i < len && p[i] < 0x80) {
                seg_start(n, p[i], i, 1, ascii_props(p[i]));
                i++;
            }
            continue;
        }
        size_t l;
        uint32_t cp = vg_utf8_decode(s + i, len - i, &l);
        if (!is_invisible(cp)) {
            uint8_t pr = props(n, cp);
            if (n->seg_cps && !(pr & P_BOUNDARY) && n->seg_cps < SEG_MAX) {
                n->seg_cps++;
                n->seg_end = i + l;
            } else {
                if (flush(n, &o) != 0)
                    return -1;
                seg_start(n, cp, i, l, pr);
            }
        }
        i += l;
    }
    if (flush(n, &o) != 0)
        return -1;
    n->map[o] = (uint32_t)len;
    *out_len = o;
    return 0;
}

/* ------------------------------------------------------------------ API */

vg_norm_t *vg_norm_new(char *err, size_t err_size)
{
    vg_norm_t *n = calloc(1, sizeof(*n));
    if (!n) {
        errf(err, err_size, "out of memory");
        return NULL;
    }
    UErrorCode ec = U_ZERO_ERROR;
    n->nfkc = unorm2_getNFKCInstance(&ec);
    n->nfd = unorm2_getNFDInstance(&ec);
    n->nfc = unorm2_getNFCInstance(&ec);
    if (U_FAILURE(ec)) {
        errf(err, err_size, "cannot load ICU's normalisation data: %s", u_errorName(ec));
        vg_norm_destroy(n);
        return NULL;
    }
    return n;
}

void vg_norm_destroy(vg_norm_t *n)
{
    if (!n)
        return;
    free(n->out);
    free(n->map);
    free(n->seg);
    free(n->t[0]);
    free(n->t[1]);
    free(n);
}

int vg_norm_run(vg_norm_t *n, const char *s, size_t len, unsigned flags, const char **out,
                size_t *out_len, char *err, size_t err_size)
{
    n->in = s;
    n->in_len = 0;
    n->res = "";
    n->res_len = 0;
    n->identity = true;
    *out = n->res;
    *out_len = 0;
    if (len >= UINT32_MAX) {
        errf(err, err_size, "text of %zu bytes is too long to normalise (limit 4 GiB)", len);
        return -1;
    }
    n->fold = !(flags & VG_NORM_CASE_SENSITIVE);
    const unsigned char *p = (const unsigned char *)s;
    size_t ascii;
    if (n->fold) {
        if (grow_out(n, len + 1) != 0)
            goto oom;
        ascii = ascii_prefix(p, len, (unsigned char *)n->out, true);
    } else {
        ascii = ascii_prefix(p, len, NULL, false);
    }
    if (ascii == len) {
        n->in_len = len;
        n->res = n->fold ? n->out : s;
        n->res_len = len;
    } else {
        /* The ASCII character before the first other one may take marks. */
        size_t start = ascii ? ascii - 1 : 0;
        if (!n->fold) {
            if (grow_out(n, len + 1) != 0)
                goto oom;
            memcpy(n->out, s, start);
        }
        size_t o;
        if (run_mixed(n, s, len, start, &o) != 0)
            goto oom;
        n->in_len = len;
        n->identity = false;
        n->res = n->out;
        n->res_len = o;
    }
    *out = n->res;
    *out_len = n->res_len;
    return 0;
oom:
    n->in_len = 0;
    errf(err, err_size, "out of memory normalising %zu bytes of text", len);
    return -1;
}

const uint32_t *vg_norm_map(vg_norm_t *n)
{
    if (n->identity) {
        if (grow_map(n, n->res_len + 1) != 0)
            return NULL;
        for (size_t i = 0; i <= n->res_len; i++)
            n->map[i] = (uint32_t)i;
        n->identity = false;
    }
    return n->map;
}

/* Length of the invisible character that ends at s[end], or 0. The patterns
 * are whole well-formed sequences whose first byte is a lead byte, so they
 * are what the forward decoding of run_mixed saw there. */
static size_t invisible_before(const unsigned char *s, size_t start, size_t end)
{
    if (end - start >= 2 && s[end - 2] == 0xC2 && s[end - 1] == 0xAD)
        return 2;
    if (end - start < 3)
        return 0;
    const unsigned char *t = s + end - 3;
    if (t[0] == 0xE2 && t[1] == 0x80 && t[2] >= 0x8B && t[2] <= 0x8D)
        return 3;
    if ((t[0] == 0xE2 && t[1] == 0x81 && t[2] == 0xA0) ||
        (t[0] == 0xEF && t[1] == 0xBB && t[2] == 0xBF))
        return 3;
    return 0;
}

void vg_norm_span(vg_norm_t *n, size_t a, size_t b, size_t *start, size_t *end)
{
    size_t out_len = n->res_len;
    if (b > out_len)
        b = out_len;
    if (a > b)
        a = b;
    if (n->identity) {
        *start = a;
        *end = b;
        return;
    }
    const uint32_t *map = n->map;
    *start = map[a];
    if (a == b) {
        *end = *start;
        return;
    }
    /* The end of the source unit of the span's last byte: the start of the
     * next unit, less the invisible characters dropped in between. */
    size_t k = b;
    while (k < out_len && map[k] == map[b - 1])
        k++;
    size_t e = k < out_len ? map[k] : n->in_len;
    size_t l;
    while ((l = invisible_before((const unsigned char *)n->in, *start, e)) != 0)
        e -= l;
    *end = e;
}
