/* UTF-8 and the small part of Unicode that keyword matching needs:
 * validation, decoding, simple case folding (CaseFolding.txt status C+S),
 * and the classes "word character" (letter, digit, underscore) and
 * "white space". */
#ifndef VIGIL_UTF8_H
#define VIGIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, no
 * code point above U+10FFFF). */
bool vg_utf8_valid(const char *s, size_t n);

/* Decodes the code point at s[0..n), n > 0. Stores its length in *len
 * (1..4). Ill-formed input yields U+FFFD with *len = 1. */
uint32_t vg_utf8_decode(const char *s, size_t n, size_t *len);

/* Decodes the code point that ends just before s[pos] (pos > 0), walking
 * back over continuation bytes. Stores its length in *len. */
uint32_t vg_utf8_decode_before(const char *s, size_t pos, size_t *len);

/* Encodes cp into out (at least 4 bytes); returns the byte count. */
size_t vg_utf8_encode(uint32_t cp, char *out);

/* Unicode simple case folding of one code point. */
uint32_t vg_unicode_fold(uint32_t cp);

/* Letter (L*), digit/number (Nd, Nl, No) or U+005F. */
bool vg_unicode_is_word(uint32_t cp);

/* Unicode White_Space property. */
bool vg_unicode_is_space(uint32_t cp);

/* Writes the simple case folding of valid UTF-8 s[0..n) to out. out needs
 * room for 3*n+1 bytes (a fold never grows a code point beyond 3 bytes per
 * input byte); the result is NUL-terminated. When collapse_space is true,
 * every run of white space becomes one U+0020. When map is not NULL,
 * map[i] receives, for each output byte i, the offset in s of the first
 * byte of the input code point (or white-space run) that produced it, and
 * map[out_len] = n. Returns the output length. */
size_t vg_utf8_fold(const char *s, size_t n, bool collapse_space, char *out, uint32_t *map);

/* Text as the literal and phrase terms see it ("gap-collapsed"): the
 * normalised text (vigil/norm.h) with every run of white space and dashes
 * that holds at most one dash written as one ' ' (DESIGN rule 2: such a
 * run is a word gap); the C positions of the runs that held a dash go to
 * dashes[] (ascending), for terms whose '-' is literal. A run of two or
 * more dashes keeps its dashes, its white space collapsed to ' '. With map
 * non-NULL, map[i] is the normalised offset that C byte i comes from (a
 * run: its start) and map[return] is len. out needs len bytes; dashes is
 * grown as needed (*dcap elements). Returns the length of C, or SIZE_MAX
 * when dashes cannot grow. */
size_t vg_gap_collapse(const char *s, size_t len, char *out, uint32_t *map, uint32_t **dashes,
                       size_t *ndashes, size_t *dcap);

#endif
