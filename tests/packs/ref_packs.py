#!/usr/bin/env python3
"""A second, deliberately plain reading of DESIGN.md's keyword rules 1-16,
used to check the desk packs' embedded tests before (and beside) the engine.

usage: ref_packs.py [--verbose] [--no-except] RULE_FILE...

Loads the rule files together (names are global, as in vigil), runs every
rule's embedded `match` / `no_match` tests and prints one line per rule,
the number of test cases per language (en, zh, ko, ja: the script of the
test's title and body) and `ref: N passed, M failed`. Exit 0 when every
case gives its expected verdict, 1 otherwise. --no-except ignores every
`except` key: the no_match cases that then fail are those that only an
exception keeps quiet, which shows that each such test can fail.

This is not the engine and not its test: it is the packs' author's reading
of DESIGN.md, written to catch mistakes in the packs (a test that could only
pass under some other reading). Where it and `vigil test` disagree, one of
the two misreads DESIGN.md; DESIGN.md decides. It covers what the packs use:
all/any/not/macro, text (any/all/near/within/ordered/except/case/fields),
field (eq/in/exists/prefix), list splicing and entity items.

The reading, rule by rule:
* 7-9 normalisation, in the order of "Precise readings": drop U+00AD,
  U+200B-U+200D, U+2060, U+FEFF; NFKC; full case folding (str.casefold),
  unless case-sensitive; NFD, drop every Mn in the combining sequence of a
  Latin/Greek/Cyrillic letter, NFC; apostrophe and dash variants to ' and -.
  Terms and text are normalised alike; matching is then exact.
* 10 word characters: L*, M*, Nd and "_".
* 2 a term's words are separated by gaps (white space in the term, or a "-"
  between two word characters); a gap matches a run of white space or one
  dash with optional white space around it.
* 4 a word ending in "*" matches its stem and then zero or more word
  characters (greedy).
* 3, 11, 12 boundaries: a boundary lies between two characters when either
  is not a word character, or (neither being a combining mark's base pair)
  when they belong to different scripts and one of them is of the rule-11
  scripts or Hangul. A match needs a boundary before it unless the term's
  first character is of a rule-11 script, and one after it unless the
  term's last character is of a rule-11 script or Hangul.
* 5 `/re/` is searched in the normalised text, ignoring case unless
  case-sensitive, with no implicit boundaries.
* 14 except: a match lying within a match of an exception term (same field
  value) is discarded.
* 15 near: one field value holds a match A of list 1 and B of list 2, not
  overlapping, with at most N words strictly between them (words: maximal
  runs of word characters, each character of a rule-11 script its own word;
  a word cut by a match end counts); ordered: A before B.
* 16 an entity item {name, aliases} stands for its name and aliases; under
  `all` it is one item.
"""
import json
import sys
import unicodedata

import regex
import yaml

INVISIBLE = {"\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
APOSTROPHES = {"\u2018", "\u2019", "\u02bc", "\uff07"}
DASHES = {chr(c) for c in range(0x2010, 0x2016)} | {"\u2212", "\ufe58", "\ufe63", "\uff0d"}
SPACELESS = ["Katakana", "Hiragana", "Han", "Thai", "Lao", "Khmer", "Myanmar"]
LGC = regex.compile(r"[\p{scx=Latin}\p{scx=Greek}\p{scx=Cyrillic}]")
WORD = regex.compile(r"[\p{L}\p{M}\p{Nd}_]")
WORD_CLASS = r"[\p{L}\p{M}\p{Nd}_]"
GAP = r"(?:\s+|\s*-\s*)"


def normalise(s, fold=True):
    s = "".join(c for c in s if c not in INVISIBLE)
    s = unicodedata.normalize("NFKC", s)
    if fold:
        s = s.casefold()
    out, base_lgc = [], False
    for c in unicodedata.normalize("NFD", s):
        cat = unicodedata.category(c)
        if cat.startswith("M"):
            if cat == "Mn" and base_lgc:
                continue
        else:
            base_lgc = unicodedata.category(c).startswith("L") and bool(LGC.match(c))
        out.append(c)
    s = unicodedata.normalize("NFC", "".join(out))
    return "".join("'" if c in APOSTROPHES else "-" if c in DASHES else c for c in s)


def is_word(c):
    return bool(WORD.match(c))


def is_mark(c):
    return unicodedata.category(c).startswith("M")


def script_class(c):
    for s in SPACELESS:
        if regex.match(r"\p{scx=" + s + "}", c):
            return s
    if regex.match(r"\p{scx=Hangul}", c):
        return "Hangul"
    return "other"


def boundary(t, i):
    """Is there a word boundary between t[i-1] and t[i]?"""
    if i <= 0 or i >= len(t):
        return True
    a, b = t[i - 1], t[i]
    if not is_word(a) or not is_word(b):
        return True
    if is_mark(b):
        return False
    j = i - 1
    while j > 0 and is_mark(t[j]):
        j -= 1
    ca, cb = script_class(t[j]), script_class(b)
    return ca != cb and (ca != "other" or cb != "other")


class Term:
    def __init__(self, raw, fold, list_name=None, entity=None):
        self.raw, self.fold, self.list_name, self.entity = raw, fold, list_name, entity
        if len(raw) >= 2 and raw.startswith("/") and raw.endswith("/"):
            flags = regex.IGNORECASE if fold else 0
            self.rx = regex.compile(raw[1:-1], flags | regex.V0)
            self.is_regex = True
            return
        self.is_regex = False
        t = normalise(raw.strip(), fold)
        parts, i = [], 0
        while i < len(t):
            c = t[i]
            if c.isspace():
                while i < len(t) and t[i].isspace():
                    i += 1
                parts.append(GAP)
                continue
            if c == "-" and 0 < i < len(t) - 1 and is_word(t[i - 1]) and is_word(t[i + 1]):
                parts.append(GAP)
            elif c == "*" and i > 0 and is_word(t[i - 1]) and (i == len(t) - 1 or t[i + 1].isspace()):
                parts.append(WORD_CLASS + "*")
            else:
                parts.append(regex.escape(c))
            i += 1
        self.rx = regex.compile("".join(parts))
        body = t.rstrip("*")
        self.free_before = script_class(t[0]) in SPACELESS
        self.free_after = script_class(body[-1]) in SPACELESS + ["Hangul"]

    def find(self, text_folded, text_plain):
        t = text_folded if self.fold else text_plain
        if self.is_regex:
            return [(m.start(), m.end()) for m in self.rx.finditer(t, overlapped=True) if m.end() > m.start()]
        out = []
        for m in self.rx.finditer(t, overlapped=True):
            s, e = m.start(), m.end()
            if not self.free_before and not boundary(t, s):
                continue
            if not self.free_after and not boundary(t, e):
                continue
            out.append((s, e))
        return out


class Rules:
    def __init__(self, paths):
        self.lists, self.macros, self.rules = {}, {}, []
        for p in paths:
            with open(p, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
            self.lists.update(doc.get("lists") or {})
            self.macros.update(doc.get("macros") or {})
            self.rules.extend(doc.get("rules") or [])

    def items(self, spec, seen=()):
        """Flattens TERMS into items: str terms or (name, [terms]) entities."""
        if isinstance(spec, str):
            if not spec.startswith("$") or spec.startswith("$$"):
                raise ValueError("TERMS must be a list or $name: %r" % spec)
            name = spec[1:]
            if name in seen:
                raise ValueError("list %s contains itself" % name)
            return [(name, it) for _, it in self.items(self.lists[name], seen + (name,))]
        out = []
        for it in spec:
            if isinstance(it, str) and it.startswith("$") and not it.startswith("$$"):
                out.extend(self.items(it, seen))
            elif isinstance(it, dict):
                out.append((None, (it["name"], [it["name"]] + list(it.get("aliases") or []))))
            else:
                s = str(it)
                out.append((None, s[1:] if s.startswith("$$") else s))
        return out


def field_values(event, path):
    vals = [event]
    for key in path.split("."):
        nxt = []
        for v in vals:
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, dict) and key in x:
                    nxt.append(x[key])
        vals = nxt
    leaves = []
    for v in vals:
        leaves.extend(v if isinstance(v, list) else [v])
    return leaves


def compile_items(rules, spec, fold):
    out = []
    for list_name, it in rules.items(spec):
        if isinstance(it, tuple):
            out.append([Term(t, fold, list_name, it[0]) for t in it[1]])
        else:
            out.append([Term(it, fold, list_name)])
    return out


def words_between(t, e1, s2):
    n, i = 0, 0
    while i < len(t):
        if not is_word(t[i]):
            i += 1
            continue
        j = i + 1
        if script_class(t[i]) not in SPACELESS:
            while j < len(t) and is_word(t[j]) and (script_class(t[j]) not in SPACELESS or is_mark(t[j])):
                j += 1
        if j > e1 and i < s2:
            n += 1
        i = j
    return n


IGNORE_EXCEPT = False


def eval_text(rules, c, event):
    fold = c.get("case", "insensitive") != "sensitive"
    fields = c.get("fields", ["title", "body"])
    values = []
    for f in fields:
        values.extend(v for v in field_values(event, f) if isinstance(v, str))
    exc = []
    if "except" in c and not IGNORE_EXCEPT:
        exc = [t for grp in compile_items(rules, c["except"], fold) for t in grp]

    def hits(group, v):
        tf, tp = normalise(v, True), normalise(v, False)
        spans = [s for e in exc for s in e.find(tf, tp)]
        out = []
        for term in group:
            for s, e in term.find(tf, tp):
                if not any(a <= s and e <= b for a, b in spans):
                    out.append((s, e))
        return out, (tf if fold else tp)

    if "near" in c:
        a_items = [t for grp in compile_items(rules, c["near"][0], fold) for t in grp]
        b_items = [t for grp in compile_items(rules, c["near"][1], fold) for t in grp]
        within, ordered = int(c["within"]), bool(c.get("ordered", False))
        for v in values:
            A, t = hits(a_items, v)
            B, _ = hits(b_items, v)
            for a in A:
                for b in B:
                    if a[1] <= b[0]:
                        if words_between(t, a[1], b[0]) <= within:
                            return True
                    elif b[1] <= a[0] and not ordered:
                        if words_between(t, b[1], a[0]) <= within:
                            return True
        return False
    key = "any" if "any" in c else "all"
    groups = compile_items(rules, c[key], fold)
    found = [any(hits(g, v)[0] for v in values) for g in groups]
    return any(found) if key == "any" else all(found)


def fold_eq(a, b):
    return normalise(str(a)) == normalise(str(b))


def eval_cond(rules, c, event):
    if "all" in c:
        return all(eval_cond(rules, x, event) for x in c["all"])
    if "any" in c:
        return any(eval_cond(rules, x, event) for x in c["any"])
    if "not" in c:
        return not eval_cond(rules, c["not"], event)
    if "macro" in c:
        return eval_cond(rules, rules.macros[c["macro"]], event)
    if "text" in c:
        return eval_text(rules, c["text"], event)
    if "field" in c:
        vals = field_values(event, c["field"])
        if "exists" in c:
            return bool(vals) == bool(c["exists"])
        if "eq" in c:
            return any(fold_eq(v, c["eq"]) for v in vals)
        if "in" in c:
            items = [it for _, it in rules.items(c["in"])]
            return any(fold_eq(v, it[0] if isinstance(it, tuple) else it) for v in vals for it in items)
        if "prefix" in c:
            return any(normalise(str(v)).startswith(normalise(c["prefix"])) for v in vals)
    raise ValueError("condition not covered by this reference: %r" % c)


def language(event):
    text = " ".join(str(event.get(k, "")) for k in ("title", "body"))
    if regex.search(r"\p{Hangul}", text):
        return "ko"
    if regex.search(r"[\p{Hiragana}\p{Katakana}]", text):
        return "ja"
    if regex.search(r"\p{Han}", text):
        return "zh"
    return "en"


def main(argv):
    global IGNORE_EXCEPT
    verbose = "--verbose" in argv
    IGNORE_EXCEPT = "--no-except" in argv
    paths = [a for a in argv if a not in ("--verbose", "--no-except")]
    if not paths:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    rules = Rules(paths)
    passed = failed = 0
    langs = ["en", "zh", "ko", "ja"]
    total = {(k, l): 0 for k in ("match", "no_match") for l in langs}
    for r in rules.rules:
        tests = r.get("tests") or {}
        per = {(k, l): 0 for k in ("match", "no_match") for l in langs}
        bad = []
        for kind in ("match", "no_match"):
            for i, ev in enumerate(tests.get(kind) or []):
                got = eval_cond(rules, r["match"], ev)
                per[(kind, language(ev))] += 1
                if got == (kind == "match"):
                    passed += 1
                else:
                    failed += 1
                    bad.append("  %s #%d: %s" % (kind, i + 1, json.dumps(ev, ensure_ascii=False)))
        for k in per:
            total[k] += per[k]
        counts = " ".join("%s %d/%d" % (l, per[("match", l)], per[("no_match", l)]) for l in langs)
        print("%-40s %-36s %s" % (r["id"], counts, "FAIL" if bad else "ok"))
        if bad or verbose:
            print("\n".join(bad))
    counts = " ".join("%s %d/%d" % (l, total[("match", l)], total[("no_match", l)]) for l in langs)
    print("%-40s %s" % ("(match/no_match per language)", counts))
    print("ref: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
