#!/usr/bin/env python3
"""A deliberately simple second evaluator of vigil rules, for differential
testing. Written from docs/DESIGN.md ("Conditions", "Keyword semantics",
"Field semantics"), not from the engine's code.

usage: ref_eval.py [--no-index] [--text-fields a,b] RULES_PATH... EVENTS.jsonl

RULES_PATH is a rule file or a folder (its *.yaml / *.yml files, in name
order, not recursive), as for `vigil scan --rules`. Prints one line
"LINE<TAB>RULE_ID" for every (event, rule) that fires, events numbered from
1 in the input, rules in load order. Lines that are not a JSON object are
skipped (vigil reports them as malformed and raises nothing).

It assumes the rules are valid (run `vigil check` first); it only does the
checks it needs to interpret them.

How it matches (DESIGN.md keyword rules 1-12; this evaluator has no
except, near, case or entities, which the test rules do not use):

* Text and terms are normalised (rules 7-9, normalise()): the invisible
  characters dropped, NFKC, str.casefold() (full folding), the Mn marks of
  a Latin/Greek/Cyrillic letter dropped (script told by the character's
  name), apostrophes and dashes mapped. A word gap of a term (a space, or a
  '-' between word characters) matches white space or one dash with
  optional white space around it. Boundaries (rule 3) also fall between a
  character of the rule-11/12 scripts and a word character of another
  script; rules 11 and 12 lift them at a term's ends. Word characters are
  L*, M*, Nd and "_" (rule 10). `/re/` and `matches` run on the normalised
  text. The points below describe the simple folding that the field
  operators (eq, in, prefix, suffix, contains) still use.

* Case folding. Unicode *simple* case folding, one code point to one code
  point, derived per code point from the standard library: str.casefold()
  is full folding; when it gives one code point that is the simple fold;
  when it gives several (e.g. "ß" -> "ss"), the simple fold is str.lower()
  if that is one code point ("ẞ" -> "ß"), else the code point itself
  ("İ" stays "İ"). Text and terms are folded with this table
  (str.translate), then compared exactly. Because folding is 1:1, character
  positions are unchanged.
* Word characters: Unicode general categories L* and N*, plus "_" (this is
  what str.isalnum() covers; DESIGN.md says "letter, digit or underscore").
  (Also built as a regex class, W, to split texts into word tokens.)
* White space: the Unicode White_Space property (listed below; note that
  str.isspace() and Python's \\s also accept U+001C..U+001F, which are not
  White_Space), as the set WHITE_SPACE.
* A plain term "w1 w2 ... wn" is matched on the folded text by hand
  (match_from): it occurs at p when p is not preceded by a word character,
  w1 is there, then one or more white-space characters, w2, ..., wn, and
  the next character is not a word character. Every character of a word is
  literal, except that a word "stem*" (ending in "*", longer than the "*")
  is stem followed by zero or more word characters (taken greedily, which is
  exact: what follows must be white space or a non-word character).
  This is the regex (?<!W)w1\\s+w2...wn(?!W) with W the word class and \\s
  White_Space, written out because Python's re is very slow with a
  lookbehind on a 14,000-range class. Boundaries are tested on the folded
  text; the only code point whose class folding changes is U+0345 (a mark
  that folds to a letter), which the test data does not use.
* A term "/re/" is re.search(re, text, re.IGNORECASE) on the unfolded text,
  with no added boundaries. This is Python's regex dialect, not Hyperscan's:
  the test rules use only constructs that mean the same in both, and \\s
  (\\S), whose Python meaning adds U+001C..U+001F, is rewritten as the
  White_Space class (compile_user_regex).
* Field values searched by `text`: strings; an array contributes each of its
  elements; anything else (numbers, objects, booleans) is not searched.

Field semantics: PATH is split on "."; whenever a value on the way is an
array, each element is followed (recursively); the leaves are the values
tried, and the condition holds if it holds for any of them. No leaves means
missing: every operator is false except `exists: false` (so an empty array
counts as missing, which vigil also does). String operators
fold both sides as above; a JSON number takes part through its JSON text
exactly as written in the input (the parser keeps it); numeric operators
accept a JSON number or a string that is entirely a decimal number
([+-]? (digits [. [digits]] | . digits) [e [+-] digits]; no spaces, no
hex, no inf/nan). Booleans, null and objects are
false for every operator except exists.

Rule files are read with PyYAML restricted to the YAML 1.2 core schema
(only true/false are booleans; 012 is decimal; no timestamps).

Speed (an optimisation, not a semantic): a term is only tried on a text
whose set of word tokens (maximal runs of word characters) contains every
run of word characters of the term, except one that a "*" extends; that
holds wherever the term occurs (see Term.required). --no-index tries every
term on every text (slow with the SDN list; use it to check the index).
"""
import json
import os
import re
import sys
import unicodedata

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.stderr.write("ref_eval.py: needs PyYAML (python3-yaml)\n")
    sys.exit(77)

# ---------------------------------------------------------------- Unicode

WHITE_SPACE = ([*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


def simple_fold_char(c):
    f = c.casefold()
    if len(f) == 1:
        return f
    lo = c.lower()
    return lo if len(lo) == 1 else c


def is_word_char(c):
    """Rule 10: letters (L*), marks (M*), decimal digits (Nd) and "_"."""
    cat = unicodedata.category(c)
    return c == "_" or cat[0] in "LM" or cat == "Nd"


WHITE_SPACE_SET = frozenset(map(chr, WHITE_SPACE))
_WORD_CACHE = {}


def is_word(c):
    w = _WORD_CACHE.get(c)
    if w is None:
        w = _WORD_CACHE[c] = is_word_char(c)
    return w


def _class(cps):
    """A regex character class for a sorted list of code points."""
    out = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        a, b = cps[i], cps[j]
        out.append("\\U%08x" % a if a == b else "\\U%08x-\\U%08x" % (a, b))
        i = j + 1
    return "[" + "".join(out) + "]"


def build_tables():
    fold = {}
    word = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        f = simple_fold_char(c)
        if f != c:
            fold[cp] = f
        if is_word_char(c):
            word.append(cp)
    return fold, _class(word)


FOLD, W = build_tables()


def fold(s):
    return s.translate(FOLD)


# ---------------------------------------------------------------- rules 7-9, 11-12

INVISIBLE = dict.fromkeys([0xAD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF])
PUNCT = {**dict.fromkeys([0x2018, 0x2019, 0x2BC, 0xFF07], "'"),
         **dict.fromkeys([*range(0x2010, 0x2016), 0x2212, 0xFE58, 0xFE63, 0xFF0D], "-")}
SPACELESS_NAMES = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA",
                   "KATAKANA", "HALFWIDTH KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")


def is_lgc_letter(c):
    return unicodedata.category(c)[0] == "L" and \
        unicodedata.name(c, "").startswith(("LATIN", "GREEK", "CYRILLIC"))


def normalise(s, case_sensitive=False):
    """DESIGN's precise order: drop the rule-9 invisible characters; NFKC;
    full case folding; NFD, drop the Mn marks of a Latin/Greek/Cyrillic
    letter's combining sequence, NFC; map apostrophes and dashes."""
    s = unicodedata.normalize("NFKC", s.translate(INVISIBLE))
    if not case_sensitive:
        s = s.casefold()
    out, lgc = [], False
    for c in unicodedata.normalize("NFD", s):
        if unicodedata.category(c)[0] == "M":
            if lgc and unicodedata.category(c) == "Mn":
                continue
        else:
            lgc = is_lgc_letter(c)
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out)).translate(PUNCT)


def script_class(c):
    """0 other, 1 a rule-11 script (no spaces), 2 Hangul (by Unicode
    character names, which is enough for the test data)."""
    name = unicodedata.name(c, "")
    if name.startswith(SPACELESS_NAMES):
        return 1
    return 2 if name.startswith("HANGUL") else 0


def base_class(t, i):
    """The script class of t[i], a mark taking its base character's."""
    while i > 0 and unicodedata.category(t[i])[0] == "M":
        i -= 1
    return script_class(t[i])


def boundary(t, i):
    """Rule 3 between t[i-1] and t[i]: an end of t, a non-word character on
    either side, or two word characters of different script classes."""
    if i == 0 or i >= len(t) or not is_word(t[i - 1]) or not is_word(t[i]):
        return True
    if unicodedata.category(t[i])[0] == "M":
        return False
    return base_class(t, i - 1) != script_class(t[i])


WORD_RUN = re.compile(W + "+")

# ---------------------------------------------------------------- YAML 1.2 core schema


class CoreLoader(yaml.SafeLoader):
    pass


CoreLoader.yaml_implicit_resolvers = {}
for _tag, _re, _first in (
        ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
        ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
        ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                  r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+.0123456789"))):
    CoreLoader.add_implicit_resolver("tag:yaml.org,2002:" + _tag, re.compile(_re), _first)


def _int(loader, node):
    v = loader.construct_scalar(node)
    return int(v, 0) if v[:2] in ("0o", "0x") else int(v, 10)


def _float(loader, node):
    v = loader.construct_scalar(node).lower()
    if v.endswith(".inf"):
        return float("-inf") if v.startswith("-") else float("inf")
    return float("nan") if v == ".nan" else float(v)


def _bool(loader, node):
    return loader.construct_scalar(node) in ("true", "True", "TRUE")


CoreLoader.add_constructor("tag:yaml.org,2002:int", _int)
CoreLoader.add_constructor("tag:yaml.org,2002:float", _float)
CoreLoader.add_constructor("tag:yaml.org,2002:bool", _bool)

# ---------------------------------------------------------------- JSON with number text


class JNum:
    """A JSON number, keeping its text as written in the event."""
    __slots__ = ("text", "value")

    def __init__(self, text):
        self.text = text
        self.value = float(text)


def load_event(line):
    return json.loads(line, parse_int=JNum, parse_float=JNum,
                      parse_constant=lambda s: None)

# ---------------------------------------------------------------- terms


class Term:
    def __init__(self, text, list_name):
        self.text = text
        self.list = list_name
        self.is_regex = len(text) >= 2 and text.startswith("/") and text.endswith("/")
        self._rx = None
        self._words = None
        self.key = None          # index key: a token every matching text contains
        self.required = ()      # tokens every text it occurs in contains
        if self.is_regex:
            return
        req = []
        if not text.isascii():
            return  # boundaries inside other scripts: no whole-token key
        for w in normalise(text).split(" "):
            star = len(w) > 1 and w.endswith("*")
            core = w[:-1] if star else w
            runs = [(m.start(), m.end()) for m in WORD_RUN.finditer(core)]
            # A maximal run of word characters inside a word of the term is
            # a whole token of the text wherever the term occurs: the word
            # is delimited by white space or by the boundary rule. Not so
            # the run that a "*" extends.
            if star and runs and runs[-1][1] == len(core):
                runs.pop()
            req.extend(core[a:b] for a, b in runs)
        if req:
            self.required = tuple(req)
            self.key = max(req, key=len)

    def regex(self):
        if self._rx is None:
            self._rx = compile_user_regex(self.text[1:-1])
        return self._rx

    def words(self):
        """[(literal, star)] of the normalised term, split at its word gaps:
        each space, and each '-' between two word characters (rule 2)."""
        if self._words is None:
            t = normalise(self.text).strip(" ")
            parts, cur = [], ""
            for i, c in enumerate(t):
                gap = c == " " or (c == "-" and 0 < i < len(t) - 1 and is_word(t[i - 1])
                                   and is_word(t[i + 1]))
                if gap:
                    parts.append(cur)
                    cur = ""
                else:
                    cur += c
            parts.append(cur)
            self._words = [(w[:-1], True) if len(w) > 1 and w.endswith("*") else (w, False)
                           for w in parts if w]
            first, last = self._words[0][0], self._words[-1][0]
            # rules 11-12: no boundary needed at an end in those scripts
            self.free_before = script_class(first[0]) == 1
            lc = base_class(last, len(last) - 1)
            self.free_after = lc == 1 or "\uac00" <= last[-1] <= "\ud7a3"
        return self._words

    def occurs_in(self, text, folded):
        if self.is_regex:
            return self.regex().search(folded) is not None
        words = self.words()
        first = words[0][0]
        p = folded.find(first)
        while p >= 0:
            if self.start_ok(folded, p) and match_from(folded, p, words, 0, self):
                return True
            p = folded.find(first, p + 1)
        return False

    def start_ok(self, t, p):
        if self.free_before or p == 0:
            return True
        first = self._words[0][0]
        return boundary(t, p) if is_word(first[0]) else not is_word(t[p - 1])


def match_from(t, p, words, k, term):
    """Whether words[k:] match t at position p (word k's literal starts
    there), ending at a boundary (rules 3, 11, 12) or the end of t."""
    lit, star = words[k]
    if not t.startswith(lit, p):
        return False
    e = p + len(lit)
    if star:
        while not boundary(t, e):
            e += 1
    if k + 1 == len(words):
        if star or term.free_after or e == len(t):
            return True
        return boundary(t, e) if is_word(lit[-1]) else not is_word(t[e])
    # a gap: white space, or one dash with optional white space around it;
    # every split is tried (a word could itself start with white space)
    r = e
    while r < len(t) and t[r] in WHITE_SPACE_SET:
        r += 1
        if match_from(t, r, words, k + 1, term):
            return True
    if r < len(t) and t[r] == "-":
        r += 1
        if match_from(t, r, words, k + 1, term):
            return True
        while r < len(t) and t[r] in WHITE_SPACE_SET:
            r += 1
            if match_from(t, r, words, k + 1, term):
                return True
    return False


def compile_user_regex(pattern):
    """A `/.../` regex (keyword rule 5, `matches`) as a Python regex,
    ignoring case. Python's \\s also matches U+001C..U+001F, which are not
    White_Space and which Hyperscan's \\s does not match, so \\s and \\S are
    rewritten as explicit White_Space classes; all else is passed as is."""
    ws = "".join("\\x%02x" % c if c < 0x100 else "\\u%04x" % c for c in WHITE_SPACE)
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            if n == "s":
                out.append(ws if in_class else "[" + ws + "]")
            elif n == "S" and not in_class:
                out.append("[^" + ws + "]")
            else:
                out.append(c + n)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":
                out.append("\\]")
                i += 1
        elif c == "]" and in_class:
            in_class = False
            out.append(c)
        else:
            out.append(c)
        i += 1
    return re.compile("".join(out), re.IGNORECASE)


class TermIndex:
    """Terms of one `text` condition, indexed by their longest required
    token (Term.required); a term is only tried on a text that has all of
    its required tokens."""

    def __init__(self, terms, use_index):
        self.terms = terms
        self.use_index = use_index
        self.by_key = {}
        self.always = []
        for i, t in enumerate(terms):
            if use_index and t.key is not None:
                self.by_key.setdefault(t.key, []).append(i)
            else:
                self.always.append(i)

    def candidates(self, tokens):
        yield from self.always
        if len(tokens) < len(self.by_key):
            for tok in tokens:
                yield from self.by_key.get(tok, ())
        else:
            for k, idx in self.by_key.items():
                if k in tokens:
                    yield from idx

    def found(self, texts, want_all):
        """texts: [(text, folded, tokens)]. Returns whether any (want_all:
        every) term occurs in at least one of the texts."""
        terms = self.terms
        if not want_all:
            for text, folded, tokens in texts:
                for i in self.candidates(tokens):
                    t = terms[i]
                    if (not self.use_index or tokens.issuperset(t.required)) \
                            and t.occurs_in(text, folded):
                        return True
            return False
        need = set(range(len(terms)))
        for text, folded, tokens in texts:
            for i in self.candidates(tokens):
                t = terms[i]
                if i in need and (not self.use_index or tokens.issuperset(t.required)) \
                        and t.occurs_in(text, folded):
                    need.discard(i)
                    if not need:
                        return True
        return not need


# ---------------------------------------------------------------- rules


class RuleError(Exception):
    pass


class Ruleset:
    def __init__(self, paths, text_fields, use_index):
        self.lists_raw = {}      # name -> (items, file dir)
        self.macros = {}
        self.rules = []          # (id, compiled condition)
        self.text_fields = text_fields
        self.use_index = use_index
        self.list_cache = {}
        docs = []
        for p in paths:
            files = ([os.path.join(p, n) for n in sorted(os.listdir(p))
                      if n.endswith((".yaml", ".yml")) and os.path.isfile(os.path.join(p, n))]
                     if os.path.isdir(p) else [p])
            for f in files:
                with open(f, encoding="utf-8") as fh:
                    doc = yaml.load(fh, Loader=CoreLoader) or {}
                docs.append((f, doc))
        for f, doc in docs:
            for name, spec in (doc.get("lists") or {}).items():
                self.lists_raw[name] = (spec, os.path.dirname(os.path.abspath(f)))
            for name, cond in (doc.get("macros") or {}).items():
                self.macros[name] = cond
        for f, doc in docs:
            for r in doc.get("rules") or []:
                if r.get("enabled", True) is False:
                    continue
                self.rules.append((r["id"], self.compile(r["match"], ())))

    # lists ---------------------------------------------------------
    def list_items(self, name, stack=()):
        """Items of a list after splicing, as (value, list it came from)."""
        if name in self.list_cache:
            return self.list_cache[name]
        if name in stack:
            raise RuleError("list %s contains itself" % name)
        spec, base = self.lists_raw[name]
        if isinstance(spec, dict):
            path = spec["file"]
            if not os.path.isabs(path):
                path = os.path.join(base, path)
            raw = []
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        raw.append(line)
        else:
            raw = list(spec)
        out = self.splice(raw, name, stack + (name,))
        self.list_cache[name] = out
        return out

    def splice(self, items, list_name, stack=()):
        out = []
        for it in items:
            if isinstance(it, str) and it.startswith("$$"):
                out.append((it[1:], list_name))
            elif isinstance(it, str) and it.startswith("$"):
                out.extend(self.list_items(it[1:], stack))
            else:
                out.append((it, list_name))
        return out

    def terms_of(self, spec):
        if isinstance(spec, str):
            if not spec.startswith("$") or spec.startswith("$$"):
                raise RuleError("TERMS must be a list or $name: %r" % spec)
            return self.list_items(spec[1:])
        return self.splice(spec, None)

    # conditions ----------------------------------------------------
    def compile(self, c, macro_stack):
        if not isinstance(c, dict):
            raise RuleError("condition must be a mapping: %r" % (c,))
        if "all" in c and "field" not in c and "text" not in c:
            subs = [self.compile(x, macro_stack) for x in c["all"] or []]
            return lambda ev, cx: all(s(ev, cx) for s in subs)
        if "any" in c and "field" not in c and "text" not in c:
            subs = [self.compile(x, macro_stack) for x in c["any"] or []]
            return lambda ev, cx: any(s(ev, cx) for s in subs)
        if "not" in c:
            sub = self.compile(c["not"], macro_stack)
            return lambda ev, cx: not sub(ev, cx)
        if "macro" in c:
            name = c["macro"]
            if name in macro_stack:
                raise RuleError("macro %s uses itself" % name)
            return self.compile(self.macros[name], macro_stack + (name,))
        if "text" in c:
            t = c["text"]
            want_all = "all" in t
            terms = [Term(str(v), ln) for v, ln in self.terms_of(t["all"] if want_all else t["any"])]
            fields = tuple(t.get("fields") or self.text_fields)
            idx = TermIndex(terms, self.use_index)
            return lambda ev, cx: idx.found(cx.texts(ev, fields), want_all)
        if "field" in c:
            path = str(c["field"]).split(".")
            ops = [k for k in c if k != "field"]
            if len(ops) != 1:
                raise RuleError("field condition needs exactly one operator: %r" % c)
            op = ops[0]
            arg = c[op]
            if op == "in":
                arg = [v for v, _ in (self.terms_of(arg))]
            test = make_test(op, arg)
            if op == "exists":
                return lambda ev, cx: (len(values(ev, path)) > 0) == arg
            return lambda ev, cx: any(test(v) for v in values(ev, path))
        raise RuleError("unknown condition %r" % (c,))

# ---------------------------------------------------------------- field semantics


def values(ev, path):
    cur = [ev]
    for key in path:
        nxt = []
        for v in flatten(cur):
            if isinstance(v, dict) and key in v:
                nxt.append(v[key])
        cur = nxt
    return flatten(cur)


def flatten(vals):
    out = []
    for v in vals:
        if isinstance(v, list):
            out.extend(flatten(v))
        else:
            out.append(v)
    return out


DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def as_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, JNum):
        return v.text
    return None


def as_number(v):
    if isinstance(v, JNum):
        return v.value
    if isinstance(v, str) and DECIMAL.match(v):
        return float(v)
    return None


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def eq_test(arg):
    if is_number(arg):
        a = float(arg)
        return lambda v: as_number(v) == a
    if isinstance(arg, str):
        a = fold(arg)
        return lambda v: (lambda s: s is not None and fold(s) == a)(as_text(v))
    raise RuleError("eq operand of unsupported type: %r" % (arg,))


def make_test(op, arg):
    if op == "eq":
        return eq_test(arg)
    if op == "in":
        tests = [eq_test(a) for a in arg]
        return lambda v: any(t(v) for t in tests)
    if op in ("prefix", "suffix", "contains"):
        if not isinstance(arg, str):
            raise RuleError("%s needs a string operand" % op)
        a = fold(arg)
        f = {"prefix": lambda s: s.startswith(a), "suffix": lambda s: s.endswith(a),
             "contains": lambda s: a in s}[op]
        return lambda v: (lambda s: s is not None and f(fold(s)))(as_text(v))
    if op == "matches":
        rx = compile_user_regex(arg[1:-1])
        return lambda v: (lambda s: s is not None and rx.search(normalise(s)) is not None)(
            as_text(v))
    if op in ("lt", "lte", "gt", "gte"):
        if not is_number(arg):
            raise RuleError("%s needs a number operand" % op)
        a = float(arg)
        cmp = {"lt": lambda x: x < a, "lte": lambda x: x <= a,
               "gt": lambda x: x > a, "gte": lambda x: x >= a}[op]
        return lambda v: (lambda x: x is not None and cmp(x))(as_number(v))
    if op == "exists":
        return None
    raise RuleError("unknown operator %s" % op)

# ---------------------------------------------------------------- evaluation


def tokens_of(t):
    """Word runs of t, also cut where the script class changes (rule 3), so
    that an ASCII term's key is a token of 美国将smic列入 too."""
    runs = WORD_RUN.findall(t)
    if t.isascii():
        return set(runs)
    out = set()
    for r in runs:
        start = 0
        for i in range(1, len(r) + 1):
            if i == len(r) or boundary(r, i):
                out.add(r[start:i])
                start = i
    return out


class EventContext:
    """Per-event cache of folded texts and their word tokens."""

    def __init__(self):
        self.cache = {}
        self.by_fields = {}

    def texts(self, ev, fields):
        out = self.by_fields.get(fields)
        if out is not None:
            return out
        out = self.by_fields[fields] = []
        for f in fields:
            for v in values(ev, f.split(".")):
                if not isinstance(v, str):
                    continue
                e = self.cache.get(v)
                if e is None:
                    folded = normalise(v)
                    e = (v, folded, tokens_of(folded))
                    self.cache[v] = e
                out.append(e)
        return out


def main(argv):
    use_index = True
    text_fields = ["title", "body"]
    args = []
    it = iter(argv[1:])
    for a in it:
        if a == "--no-index":
            use_index = False
        elif a == "--text-fields":
            text_fields = next(it).split(",")
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            args.append(a)
    if len(args) < 2:
        sys.stderr.write("usage: ref_eval.py [--no-index] [--text-fields a,b] RULES_PATH... EVENTS.jsonl\n")
        return 2
    rs = Ruleset(args[:-1], text_fields, use_index)
    out = sys.stdout
    with open(args[-1], "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                ev = load_event(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            if not isinstance(ev, dict):
                continue
            cx = EventContext()
            for rid, cond in rs.rules:
                if cond(ev, cx):
                    out.write("%d\t%s\n" % (n, rid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
