/* Text normalisation for keyword matching (DESIGN.md, "Keyword semantics",
 * rules 7-12 and 15 and their precise readings), and the character classes
 * that word boundaries and `near` word counts are decided on.
 *
 * A normaliser turns a field value into the text that terms are matched
 * against, in this order: drop the rule-9 invisible characters (U+00AD,
 * U+200B..U+200D, U+2060, U+FEFF); NFKC; full case folding (CaseFolding C+F,
 * unless VG_NORM_CASE_SENSITIVE); canonical decomposition, dropping every
 * Mn mark in the combining sequence of a Latin, Greek or Cyrillic letter,
 * then NFC; the rule-9 apostrophes read as U+0027 and dashes as U+002D.
 * Terms go through the same function, so both sides agree.
 *
 * Beside the text it keeps a map from output bytes to input offsets, so that
 * an alert can point into the original field value.
 *
 * Ill-formed UTF-8 never fails and is never read past its length: each byte
 * that does not start a well-formed sequence becomes U+FFFD (a non-word
 * character) mapped to that byte. The output is always well-formed UTF-8.
 *
 * A vg_norm_t is scratch for one thread; the class functions are pure and
 * thread-safe. */
#ifndef VIGIL_NORM_H
#define VIGIL_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vg_norm vg_norm_t;

/* vg_norm_run flag: no case folding (a `case: sensitive` condition, rule 13). */
#define VG_NORM_CASE_SENSITIVE 1u

/* Creates a normaliser (ICU's normalisation data is loaded once per process).
 * Returns NULL with a reason in err when ICU's data cannot be opened or
 * memory runs out. Free with vg_norm_destroy. */
vg_norm_t *vg_norm_new(char *err, size_t err_size);

/* Frees a normaliser; accepts NULL. */
void vg_norm_destroy(vg_norm_t *n);

/* Normalises s[0..len) (UTF-8, any bytes) and stores the result in *out,
 * *out_len. The result is not NUL-terminated. It belongs to n and stays valid
 * until the next vg_norm_run on n or vg_norm_destroy; for pure-ASCII input
 * with VG_NORM_CASE_SENSITIVE it is s itself (no copy), so s must outlive
 * its use too. Pure-ASCII input costs one lower-casing copy and no map.
 * Returns 0, or -1 with a reason in err (out of memory; an input of 4 GiB or
 * more, which the 32-bit map cannot address). */
int vg_norm_run(vg_norm_t *n, const char *s, size_t len, unsigned flags, const char **out,
                size_t *out_len, char *err, size_t err_size);

/* The offset map of the last run, computed on first use for ASCII input:
 * out_len + 1 entries; entry i (i < out_len) is the offset in the input of
 * the first byte of the source unit that produced output byte i, and entry
 * out_len is the input length. A source unit is one input character, or the
 * few characters that normalisation joins (a letter with its combining
 * marks, a Hangul jamo sequence); all its output bytes map to its start.
 * Entries never decrease and always lie on a character start of the input
 * (a byte of ill-formed input counts as a character). Owned by n, valid
 * until the next run. NULL only when memory runs out. */
const uint32_t *vg_norm_map(vg_norm_t *n);

/* Turns the span [a, b) of the last run's output (a <= b <= out_len) into
 * the input span [*start, *end) that covers the whole source units it came
 * from, without the invisible characters that trail them. An empty span
 * gives an empty input span at map[a]. */
void vg_norm_span(vg_norm_t *n, size_t a, size_t b, size_t *start, size_t *end);

/* --- Character classes, on code points of normalised text --- */

/* Rule 10: letters (L*), combining marks (M*), decimal digits (Nd), '_'. */
bool vg_uchar_is_word(uint32_t cp);

/* Combining mark (M*): part of the word of the character before it. */
bool vg_uchar_is_mark(uint32_t cp);

typedef enum vg_script_class {
    VG_SCRIPT_OTHER = 0,
    /* Rule 11: Han, Hiragana, Katakana (incl. half-width), Thai, Lao, Khmer,
     * Myanmar. */
    VG_SCRIPT_SPACELESS,
    /* Rule 12. */
    VG_SCRIPT_HANGUL,
} vg_script_class_t;

/* The script class of cp by its Script property; for a Common or Inherited
 * character, by its Script_Extensions (U+30FC is Katakana; a character that
 * extends to a rule-11 script is SPACELESS before it is HANGUL). Digits are
 * OTHER. A mark takes the class of its base character, which this function
 * cannot see: callers with text use vg_norm_boundary_at. */
vg_script_class_t vg_uchar_script_class(uint32_t cp);

/* True when normalised text s[0..len) has a word boundary at byte pos (on a
 * character start): at either end of the text, next to a non-word
 * character, or between two word characters of different script classes
 * (rule 3: a rule-11/12 script meeting another script). A combining mark
 * continues the word before it and takes its base character's class (the
 * base is looked for at most 64 marks back). Rules 11 and 12 (which
 * boundaries a term needs) are the caller's: it asks only where they
 * require a boundary. */
bool vg_norm_boundary_at(const char *s, size_t len, size_t pos);

/* Counts words in normalised text s[0..len) for `near` (rule 15): maximal
 * runs of word characters, except that each base character of a rule-11
 * script is one word on its own (its marks belong to it). A run cut by the
 * ends of s counts; a mixed-script run such as `sk하이닉스` is one word.
 * The words strictly between two matches are those of s[end1..start2). */
size_t vg_norm_count_words(const char *s, size_t len);

#endif
