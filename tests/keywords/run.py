#!/usr/bin/env python3
"""Keyword-semantics table test: DESIGN.md rules 1-16 as cases, against vigil.

    tests/keywords/run.py [--only RULES] [--ids ID,...] [--keep DIR] [-v]

Reads every tests/keywords/cases/*.yaml (a top-level `cases:` list), builds
ONE rule file with one rule per case (`kw-<id>`: the case's condition and a
guard `{field: case, eq: <id>}`) and ONE JSON-lines file with one event per
case (`{"case": id, "body": text}`, plus `title` where the case has one),
runs `vigil scan` once and compares. A case passes when an alert of its rule
appears exactly when `expect: true`, and every `evidence` entry equals one of
the alert's matches. `expect: error` cases are loaded alone with
`vigil check`: they pass on exit status 1 with a FILE:LINE:COL message.

When vigil refuses the combined file (or the scan fails), every case is run
on its own (`vigil check` then `vigil scan`), so each gets its own verdict; a
refused rule fails unless it expects an error.

--only takes DESIGN rule numbers and ranges (`1,2,13` or `7-9`); a case is
run when one of its rule numbers is selected. --ids takes case ids.

Environment: VIGIL_BIN (default <repo>/build/vigil).
Exit status: 0 all passed, 1 a case failed, 2 bad table or usage,
77 PyYAML missing.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import unicodedata

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML is not installed (python3-yaml)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
CASE_KEYS = {"id", "rule", "why", "condition", "match", "text", "title",
             "lists", "expect", "evidence"}
EVIDENCE_KEYS = {"offset", "length", "match", "entity", "field"}
LOC_RE = re.compile(r"[^\s:]+\.yaml:\d+:\d+:")


class TableError(Exception):
    pass


def rules_of(case):
    r = case["rule"]
    return r if isinstance(r, list) else [r]


def evidence_of(case):
    ev = case.get("evidence")
    if ev is None:
        return []
    return ev if isinstance(ev, list) else [ev]


def check_terms(where, terms):
    """Terms must be strings or entity mappings: a YAML 1.1 boolean or number
    (an unquoted `on`, `no`, `2023`) in a list is a mistake in the table."""
    if isinstance(terms, str):
        return
    if not isinstance(terms, list):
        raise TableError(f"{where}: terms must be a list or $name")
    for t in terms:
        if isinstance(t, dict):
            check_terms(where, t.get("aliases", []))
        elif not isinstance(t, str):
            raise TableError(f"{where}: term {t!r} is not a string (quote it)")


def lint_case(case, path, seen):
    where = f"{os.path.basename(path)}: case {case.get('id', '?')}"
    if not isinstance(case, dict):
        raise TableError(f"{where}: a case must be a mapping")
    unknown = set(case) - CASE_KEYS
    if unknown:
        raise TableError(f"{where}: unknown keys {sorted(unknown)}")
    for k in ("id", "rule", "why", "expect"):
        if k not in case:
            raise TableError(f"{where}: missing '{k}'")
    if ("condition" in case) == ("match" in case):
        raise TableError(f"{where}: needs exactly one of condition, match")
    cid = case["id"]
    if not isinstance(cid, str) or not ID_RE.match(cid):
        raise TableError(f"{where}: bad id (lower-case letters, digits, . _ -)")
    if cid in seen:
        raise TableError(f"{where}: duplicate id (also in {seen[cid]})")
    seen[cid] = os.path.basename(path)
    if case["expect"] not in (True, False, "error"):
        raise TableError(f"{where}: expect must be true, false or error")
    if not all(isinstance(r, int) and 1 <= r <= 16 for r in rules_of(case)):
        raise TableError(f"{where}: rule must be DESIGN rule numbers 1-16")
    if not isinstance(case.get("text", ""), str) or \
            not isinstance(case.get("title", ""), str):
        raise TableError(f"{where}: text and title must be strings")
    cond = case.get("condition")
    if isinstance(cond, dict):
        for k in ("any", "all", "except"):
            if k in cond:
                check_terms(where, cond[k])
        if isinstance(cond.get("near"), list):
            for side in cond["near"]:
                check_terms(where, side)
    for ev in evidence_of(case):
        if not isinstance(ev, dict) or set(ev) - EVIDENCE_KEYS:
            raise TableError(f"{where}: evidence entries take {EVIDENCE_KEYS}")
        if case["expect"] is not True:
            raise TableError(f"{where}: evidence only on expect: true")
        # The optional `match` spells out the bytes offset/length select,
        # which catches counting mistakes in the table itself.
        if "match" in ev:
            key = "title" if ev.get("field") == "title" else "text"
            src = case.get(key, "").encode()
            got = src[ev["offset"]:ev["offset"] + ev["length"]]
            if got != ev["match"].encode():
                raise TableError(f"{where}: evidence offset/length select "
                                 f"{got.decode(errors='replace')!r}, "
                                 f"not {ev['match']!r}")


def load_cases():
    files = sorted(glob.glob(os.path.join(HERE, "cases", "*.yaml")))
    cases, seen, list_names = [], {}, {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            raise TableError(f"{path}: needs a top-level 'cases:' list")
        for case in doc["cases"]:
            lint_case(case, path, seen)
            for name in (case.get("lists") or {}):
                if name in list_names:
                    raise TableError(f"case {case['id']}: list {name} is also "
                                     f"defined by {list_names[name]}")
                list_names[name] = case["id"]
            case["_file"] = os.path.basename(path)
            cases.append(case)
    return cases


def rule_for(case):
    inner = case["match"] if "match" in case else {"text": case["condition"]}
    return {"id": "kw-" + case["id"],
            "match": {"all": [{"field": "case", "eq": case["id"]}, inner]}}


def write_rules(path, cases):
    lists = {}
    for c in cases:
        lists.update(c.get("lists") or {})
    doc = {}
    if lists:
        doc["lists"] = lists
    doc["rules"] = [rule_for(c) for c in cases]
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False, width=4096)


def write_events(path, cases):
    with open(path, "w", encoding="utf-8") as f:
        for c in cases:
            ev = {"case": c["id"]}
            if "title" in c:
                ev["title"] = c["title"]
            ev["body"] = c.get("text", "")
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True,
                          encoding="utf-8", errors="replace")


def alerts_by_rule(stdout):
    out = {}
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            a = json.loads(line)
            out.setdefault(a.get("rule"), []).append(a)
    return out


def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no message)"


def verdict(case, alerts):
    """(passed, what vigil did) for a true/false case given its alerts."""
    fired = bool(alerts)
    if fired != case["expect"]:
        if not fired:
            return False, "no alert"
        m = alerts[0].get("matches", [])
        return False, "alert, matches " + json.dumps(
            [{k: x.get(k) for k in ("field", "term", "offset", "length",
                                     "entity") if k in x} for x in m],
            ensure_ascii=False)
    if not fired:
        return True, "no alert"
    matches = [m for a in alerts for m in a.get("matches", [])]
    for ev in evidence_of(case):
        want = {k: ev[k] for k in ("offset", "length", "entity", "field")
                if k in ev}
        if not any(all(m.get(k) == v for k, v in want.items())
                   for m in matches):
            return False, ("alert, but no match with " + json.dumps(
                want, ensure_ascii=False) + "; matches " + json.dumps(
                [{k: x.get(k) for k in ("field", "offset", "length",
                                         "entity") if k in x}
                 for x in matches], ensure_ascii=False))
    return True, "alert"


def check_error_case(vigil, case, tmp):
    path = os.path.join(tmp, f"err-{case['id']}.yaml")
    write_rules(path, [case])
    p = run([vigil, "check", path])
    if p.returncode == 1 and LOC_RE.search(p.stderr):
        return True, "refused: " + first_line(p.stderr)
    if p.returncode == 1:
        return False, "exit 1 without FILE:LINE:COL: " + first_line(p.stderr)
    return False, f"accepted (exit {p.returncode})"


def run_single(vigil, case, tmp):
    rpath = os.path.join(tmp, f"one-{case['id']}.yaml")
    epath = os.path.join(tmp, f"one-{case['id']}.jsonl")
    write_rules(rpath, [case])
    write_events(epath, [case])
    p = run([vigil, "check", rpath])
    if p.returncode != 0:
        return False, f"refused (exit {p.returncode}): " + first_line(p.stderr)
    p = run([vigil, "scan", "--rules", rpath, epath])
    if p.returncode != 0:
        return False, f"scan exit {p.returncode}: " + first_line(p.stderr)
    return verdict(case, alerts_by_rule(p.stdout).get("kw-" + case["id"], []))


def run_all(vigil, cases, tmp, verbose):
    results = {}
    plain = [c for c in cases if c["expect"] != "error"]
    for c in cases:
        if c["expect"] == "error":
            results[c["id"]] = check_error_case(vigil, c, tmp)
    rpath = os.path.join(tmp, "rules.yaml")
    epath = os.path.join(tmp, "events.jsonl")
    write_rules(rpath, plain)
    write_events(epath, plain)
    p = run([vigil, "scan", "--rules", rpath, epath])
    if p.returncode == 0:
        by_rule = alerts_by_rule(p.stdout)
        for c in plain:
            results[c["id"]] = verdict(c, by_rule.get("kw-" + c["id"], []))
        return results
    print(f"keywords: vigil refused or failed on the combined rule file (exit "
          f"{p.returncode}: {first_line(p.stderr)}); running each case alone",
          file=sys.stderr)
    for c in plain:
        results[c["id"]] = run_single(vigil, c, tmp)
        if verbose:
            print(f"  {c['id']}: {results[c['id']][1]}", file=sys.stderr)
    return results


def parse_only(spec):
    nums = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            print(f"--only: bad rule number '{part}'", file=sys.stderr)
            sys.exit(2)
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if not 1 <= lo <= hi <= 16:
            print(f"--only: DESIGN rules are 1-16, not '{part}'",
                  file=sys.stderr)
            sys.exit(2)
        nums.update(range(lo, hi + 1))
    return nums


def shown(s):
    """A string quoted for a report: readable letters of every script, but
    white space other than a plain space, format characters and combining
    marks after ASCII or a non-letter written as escapes, to be seen."""
    out = []
    prev = None
    for ch in s:
        cat = unicodedata.category(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch != " " and (cat[0] in "CZ" or cat[0] == "M" and (
                prev is None or prev < "\x80" or
                unicodedata.category(prev)[0] not in "LM")):
            out.append(f"\\u{ord(ch):04X}" if ord(ch) < 0x10000
                       else f"\\U{ord(ch):08X}")
        else:
            out.append(ch)
        prev = ch
    return '"' + "".join(out) + '"'


def describe(case):
    cond = case.get("condition", case.get("match"))
    s = json.dumps(cond, ensure_ascii=False)
    t = shown(case.get("text", ""))
    if "title" in case:
        t += " (title " + shown(case["title"]) + ")"
    return s, t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="DESIGN rule numbers, e.g. 1,2,7-9")
    ap.add_argument("--ids", help="case ids, comma-separated")
    ap.add_argument("--keep", metavar="DIR",
                    help="write the rule and event files into DIR and keep them")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    try:
        cases = load_cases()
    except (TableError, yaml.YAMLError) as e:
        print(f"keywords: bad case table: {e}", file=sys.stderr)
        return 2
    if args.only:
        want = parse_only(args.only)
        cases = [c for c in cases if want & set(rules_of(c))]
    if args.ids:
        ids = {i.strip() for i in args.ids.split(",") if i.strip()}
        unknown = ids - {c["id"] for c in cases}
        if unknown:
            print(f"keywords: unknown case ids {sorted(unknown)}",
                  file=sys.stderr)
            return 2
        cases = [c for c in cases if c["id"] in ids]

    vigil = os.environ.get("VIGIL_BIN") or os.path.join(ROOT, "build", "vigil")
    if not os.access(vigil, os.X_OK):
        print(f"keywords: no vigil binary at {vigil} (set VIGIL_BIN)",
              file=sys.stderr)
        return 2

    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        results = run_all(vigil, cases, args.keep, args.verbose)
    else:
        with tempfile.TemporaryDirectory(prefix="vigil-kw-") as tmp:
            results = run_all(vigil, cases, tmp, args.verbose)

    per_rule = {}
    failed = 0
    for c in cases:
        ok, got = results[c["id"]]
        for r in rules_of(c):
            st = per_rule.setdefault(r, [0, 0])
            st[0 if ok else 1] += 1
        if not ok:
            failed += 1
            cond, text = describe(c)
            print(f"FAIL {c['id']} (rule {','.join(map(str, rules_of(c)))}, "
                  f"{c['_file']})\n  condition: {cond}\n  text: {text}\n"
                  f"  expected: {json.dumps(c['expect'])}\n  got: {got}")
    print("per DESIGN rule (passed/failed; a case may count for several): " +
          ", ".join(f"{r}: {p}/{f}" for r, (p, f) in sorted(per_rule.items())))
    print(f"keywords: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
