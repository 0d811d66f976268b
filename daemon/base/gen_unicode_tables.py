#!/usr/bin/env python3
"""Generates daemon/base/unicode_tables.c: the data of simple case folding,
the "word character" class and White_Space, which vg_unicode_fold /
vg_unicode_is_word / vg_unicode_is_space (daemon/base/utf8.c) read. The file
holds data only, in the shapes declared in daemon/base/utf8_int.h; the code
that reads it lives in utf8.c.

Uses only the standard library, so the Unicode version is the one of the
Python that runs it (unicodedata.unidata_version, written into the output).

    python3 daemon/base/gen_unicode_tables.py            # rewrite the file
    python3 daemon/base/gen_unicode_tables.py --check    # exit 1 if out of date
    python3 daemon/base/gen_unicode_tables.py -o FILE    # write elsewhere

Simple case folding (CaseFolding.txt, statuses C and S) is not exposed by
unicodedata, so it is derived:

  * str.casefold() implements full folding (statuses C and F). When it yields
    one code point there is no F entry, so that code point is the C mapping
    (or the code point itself when there is no entry).
  * When it yields several code points (an F entry), an S entry exists
    exactly when the code point has a single-code-point lowercase mapping,
    and the S mapping is that lowercase (U+1E9E -> U+00DF, U+1F88 -> U+1F80,
    U+1FBC -> U+1FB3, ...). str.lower() applies the unconditional
    SpecialCasing.txt mappings, which makes U+0130 lowercase to two code
    points; that is right, since U+0130 has no C/S entry and must stay as it
    is.

This rule was checked to agree with every C and S line of CaseFolding.txt
for all code points assigned in Unicode 14.0 and 15.0. The spot checks in
check_fold() below guard against a Python whose casefold() differs.
"""

import argparse
import os
import sys
import unicodedata

MAX_CP = 0x10FFFF

# The White_Space property (PropList.txt). unicodedata does not expose it and
# str.isspace() differs (it adds U+001C..U+001F), so it is listed here; the
# list has not changed since Unicode 6.3.
WHITE_SPACE = (
    list(range(0x0009, 0x000D + 1))
    + [0x0020, 0x0085, 0x00A0, 0x1680]
    + list(range(0x2000, 0x200A + 1))
    + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)

WORD_CATEGORIES = {"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No"}


def simple_fold(cp):
    if 0xD800 <= cp <= 0xDFFF:
        return cp
    ch = chr(cp)
    full = ch.casefold()
    if len(full) == 1:
        return ord(full)
    lower = ch.lower()
    if len(lower) == 1:
        return ord(lower)
    return cp


def check_fold(fold):
    """Known mappings from CaseFolding.txt that the derivation must give."""
    expected = {
        0x0041: 0x0061, 0x00C9: 0x00E9, 0x00DF: 0x00DF, 0x1E9E: 0x00DF,
        0x0130: 0x0130, 0x0131: 0x0131, 0x0049: 0x0069, 0x03C2: 0x03C3,
        0x03A3: 0x03C3, 0x0345: 0x03B9, 0x1FBE: 0x03B9, 0x017F: 0x0073,
        0x212A: 0x006B, 0x212B: 0x00E5, 0x2126: 0x03C9, 0x00B5: 0x03BC,
        0x03D0: 0x03B2, 0x03D1: 0x03B8, 0x03D5: 0x03C6, 0x03D6: 0x03C0,
        0x03F0: 0x03BA, 0x03F1: 0x03C1, 0x03F5: 0x03B5, 0x03F4: 0x03B8,
        0x1E9B: 0x1E61, 0x01C4: 0x01C6, 0x01C5: 0x01C6, 0x01C6: 0x01C6,
        0x1F88: 0x1F80, 0x1FBC: 0x1FB3, 0x1FCC: 0x1FC3, 0x1FFC: 0x1FF3,
        0x1F80: 0x1F80, 0xFB00: 0xFB00, 0x0149: 0x0149,
        0x13A0: 0x13A0, 0x13F8: 0x13F0, 0xAB70: 0x13A0, 0x13F5: 0x13F5,
        0x1C90: 0x10D0, 0x10D0: 0x10D0, 0x023A: 0x2C65, 0x1C80: 0x0432,
        0x10400: 0x10428, 0x1E900: 0x1E922,
    }
    for cp, want in expected.items():
        got = fold[cp]
        if got != want:
            sys.exit("gen_unicode_tables: fold(U+%04X) = U+%04X, expected "
                     "U+%04X; this Python's casefold() is not usable"
                     % (cp, got, want))


def check_space():
    """Guards the hand-written list: it must be str.isspace() minus the
    four information separators U+001C..U+001F."""
    by_python = {cp for cp in range(MAX_CP + 1)
                 if not 0xD800 <= cp <= 0xDFFF and chr(cp).isspace()}
    if set(WHITE_SPACE) != by_python - set(range(0x1C, 0x20)):
        sys.exit("gen_unicode_tables: WHITE_SPACE disagrees with isspace()")
    if len(WHITE_SPACE) != 25:
        sys.exit("gen_unicode_tables: WHITE_SPACE should have 25 entries")


def two_level(values, shifts):
    """Splits values into blocks of 1 << shift entries, deduplicates them and
    returns (shift, stage1, stage2) of the smallest total size, counting
    stage1 entries as 1 byte while there are at most 256 blocks, else 2."""
    best = None
    for shift in shifts:
        size = 1 << shift
        padded = list(values) + [0] * (-len(values) % size)
        index = {}
        stage1 = []
        stage2 = []
        for start in range(0, len(padded), size):
            block = tuple(padded[start:start + size])
            if block not in index:
                index[block] = len(index)
                stage2.extend(block)
            stage1.append(index[block])
        width1 = 1 if len(index) <= 256 else 2
        cost = len(stage1) * width1 + len(stage2)
        if best is None or cost < best[0]:
            best = (cost, shift, stage1, stage2)
    return best[1], best[2], best[3]


def c_rows(items, per_line, fmt):
    return ["    " + ", ".join(fmt % v for v in items[i:i + per_line]) + ","
            for i in range(0, len(items), per_line)]


def c_stage_bytes(tables):
    """One byte array holding every stage of the two-level tables, one after
    another (a comment marks where each begins), and a vg_unicode_stages_t
    (utf8_int.h) for each table that points into it. tables: (name, limit,
    shift, stage1, stage2, stage2 format). utf8.c reads the stages as
    bytes."""
    rows, descriptors, offset = [], [], 0
    for name, limit, shift, stage1, stage2, fmt2 in tables:
        if max(stage1) > 0xFF or max(stage2) > 0xFF:
            sys.exit("gen_unicode_tables: %s does not fit in bytes; utf8.c "
                     "reads its stages as uint8_t" % name)
        at = []
        for stage, items, fmt in ((1, stage1, "%d"), (2, stage2, fmt2)):
            rows.append("    /* %s, stage %d: %d bytes */"
                        % (name, stage, len(items)))
            rows.extend(c_rows(items, 16, fmt))
            at.append(offset)
            offset += len(items)
        descriptors.append("const vg_unicode_stages_t vg_%s_stages = {\n"
                           "    0x%XU, %d, stage_bytes + %d, stage_bytes + %d};"
                           % (name, limit, shift, at[0], at[1]))
    return "\n".join(["static const uint8_t stage_bytes[%d] = {" % offset]
                     + rows + ["};", ""] + descriptors)


def build_fold():
    fold = [simple_fold(cp) for cp in range(MAX_CP + 1)]
    check_fold(fold)
    for cp, f in enumerate(fold):
        # vg_utf8_fold() sizes its output on this: a folded code point never
        # needs more than 3 bytes per input byte, nor leaves the Unicode
        # scalar values.
        if f != cp:
            if 0xD800 <= f <= 0xDFFF or f > MAX_CP:
                sys.exit("gen_unicode_tables: bad fold target U+%04X" % f)
            if fold[f] != f:
                sys.exit("gen_unicode_tables: fold of U+%04X is not stable" % cp)
            if len(chr(f).encode()) > 3 * len(chr(cp).encode()):
                sys.exit("gen_unicode_tables: fold of U+%04X grows too much" % cp)
    limit = max(cp for cp in range(MAX_CP + 1) if fold[cp] != cp) + 1

    deltas = [0]
    delta_index = {0: 0}
    values = []
    for cp in range(limit):
        d = fold[cp] - cp
        if d not in delta_index:
            delta_index[d] = len(deltas)
            deltas.append(d)
        values.append(delta_index[d])
    if len(deltas) > 256:
        sys.exit("gen_unicode_tables: more than 256 distinct fold deltas")
    shift, stage1, stage2 = two_level(values, range(3, 10))
    pairs = sum(1 for cp in range(MAX_CP + 1) if fold[cp] != cp)
    return fold, limit, deltas, shift, stage1, stage2, pairs


def build_word():
    is_word = [False] * (MAX_CP + 1)
    for cp in range(MAX_CP + 1):
        if unicodedata.category(chr(cp)) in WORD_CATEGORIES:
            is_word[cp] = True
    is_word[0x5F] = True
    limit = max(cp for cp in range(MAX_CP + 1) if is_word[cp]) + 1
    limit = (limit + 7) & ~7
    bitmap = []
    for base in range(0, limit, 8):
        byte = 0
        for bit in range(8):
            if is_word[base + bit]:
                byte |= 1 << bit
        bitmap.append(byte)
    shift, stage1, stage2 = two_level(bitmap, range(2, 9))
    return is_word, limit, shift, stage1, stage2


def space_ranges():
    ranges = []
    for cp in sorted(WHITE_SPACE):
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return ranges


def generate():
    check_space()
    _, f_limit, deltas, f_shift, f_s1, f_s2, pairs = build_fold()
    _, w_limit, w_shift, w_s1, w_s2 = build_word()
    spaces = space_ranges()
    version = unicodedata.unidata_version

    out = []
    out.append("""\
/* GENERATED by daemon/base/gen_unicode_tables.py -- do not edit; rerun it.
 *
 * Unicode %(version)s (the unicodedata of Python %(py)s). Data only: utf8.c
 * reads it, in the shapes of utf8_int.h.
 *
 * vg_fold_stages, vg_fold_delta: simple case folding, CaseFolding.txt
 * statuses C and S (%(pairs)d code points change). Stage 1 picks a block of
 * %(fblock)d code points, stage 2 gives an index into the distinct deltas
 * (folded - original); no folding at or above U+%(flimit)04X.
 *
 * vg_word_stages: general category L*, Nd, Nl, No, plus U+005F. A bitmap
 * (one bit per code point), split the same way into deduplicated blocks of
 * %(wblock)d bytes; no word characters at or above U+%(wlimit)04X.
 *
 * vg_space_ranges: the White_Space property, %(nspace)d code points in
 * %(nranges)d ranges.
 *
 * The stages of both two-level tables lie one after another in one byte
 * array, stage_bytes.
 */
#include "utf8_int.h"
""" % {
        "version": version,
        "py": "%d.%d" % sys.version_info[:2],
        "pairs": pairs,
        "fblock": 1 << f_shift,
        "flimit": f_limit,
        "wblock": 1 << w_shift,
        "wlimit": w_limit,
        "nspace": len(WHITE_SPACE),
        "nranges": len(spaces),
    })
    out.append("const int32_t vg_fold_delta[%d] = {" % len(deltas))
    out.extend(c_rows(deltas, 8, "%d"))
    out.append("};")
    out.append("")
    out.append("const vg_unicode_range_t vg_space_ranges[%d] = {" % len(spaces))
    out.extend("    {0x%04X, 0x%04X}," % (lo, hi) for lo, hi in spaces)
    out.append("};")
    out.append("const size_t vg_space_range_count = %d;" % len(spaces))
    out.append("")
    out.append(c_stage_bytes([
        ("fold", f_limit, f_shift, f_s1, f_s2, "%d"),
        ("word", w_limit, w_shift, w_s1, w_s2, "0x%02X"),
    ]))
    return "\n".join(out) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output",
                    default=os.path.join(here, "unicode_tables.c"))
    ap.add_argument("--check", action="store_true",
                    help="compare with the output file instead of writing it")
    args = ap.parse_args()
    text = generate()
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            sys.exit("gen_unicode_tables: %s" % e)
        if current != text:
            sys.exit("gen_unicode_tables: %s is out of date (or was made "
                     "with another Unicode version)" % args.output)
        return
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
