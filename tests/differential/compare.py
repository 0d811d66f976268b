#!/usr/bin/env python3
"""Helpers of run.sh.

  compare.py pairs < alerts.jsonl > pairs.txt
      `vigil scan` alerts -> "LINE<TAB>RULE" lines (source.line, rule)
  compare.py diff VIGIL_PAIRS REF_PAIRS EVENTS.jsonl [--show N] [--label NAME]
      compares the two sets of (line, rule) pairs; prints a summary, the
      differences per rule and the first N differing pairs with the event's
      id and title; exit 0 when the sets are identical, 1 otherwise
"""
import json
import sys
from collections import Counter


def read_pairs(path):
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                n, rule = line.split("\t")
                out.add((int(n), rule))
    return out


def alerts_to_pairs():
    out = sys.stdout
    for raw in sys.stdin.buffer:
        a = json.loads(raw)
        out.write("%d\t%s\n" % (a["source"]["line"], a["rule"]))
    return 0


def describe(events_path, lines):
    """id and a shortened title (or body) of the events at the given lines."""
    want = set(lines)
    info = {}
    if not want:
        return info
    last = max(want)
    with open(events_path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n in want:
                try:
                    ev = json.loads(raw)
                except ValueError:
                    info[n] = "(not JSON)"
                    continue
                text = ev.get("title", ev.get("body", ""))
                text = "".join(c if c.isprintable() and (c == " " or not c.isspace())
                               else "\\u%04x" % ord(c) if ord(c) > 0x7f
                               else json.dumps(c)[1:-1] for c in
                               json.dumps(text, ensure_ascii=False))
                if len(text) > 70:
                    text = text[:67] + "..."
                info[n] = "%s %s" % (ev.get("id", "?"), text)
            if n >= last:
                break
    return info


def diff(argv):
    show = 20
    label = "differential"
    args = []
    it = iter(argv)
    for a in it:
        if a == "--show":
            show = int(next(it))
        elif a == "--label":
            label = next(it)
        else:
            args.append(a)
    vig, ref = read_pairs(args[0]), read_pairs(args[1])
    only_v = sorted(vig - ref)
    only_r = sorted(ref - vig)
    print("%s: vigil %d pairs, reference %d pairs, %d in common"
          % (label, len(vig), len(ref), len(vig & ref)))
    if not only_v and not only_r:
        print("%s: IDENTICAL (%d events fired at least one rule, %d rules fired at least once)"
              % (label, len({n for n, _ in vig}), len({r for _, r in vig})))
        return 0
    print("%s: DIFFERENT: %d pairs only from vigil, %d only from the reference"
          % (label, len(only_v), len(only_r)))
    per_rule = Counter()
    for _, r in only_v:
        per_rule[(r, "vigil only")] += 1
    for _, r in only_r:
        per_rule[(r, "reference only")] += 1
    print("  differences per rule:")
    for (r, side), c in sorted(per_rule.items(), key=lambda x: (-x[1], x[0])):
        print("    %-40s %-15s %d" % (r, side, c))
    first = sorted([(n, r, "vigil only") for n, r in only_v] +
                   [(n, r, "reference only") for n, r in only_r])[:show]
    info = describe(args[2], [n for n, _, _ in first])
    print("  first %d differences (line of the events file, rule, side, event):" % len(first))
    for n, r, side in first:
        print("    %7d  %-36s %-15s %s" % (n, r, side, info.get(n, "")))
    return 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "pairs":
        return alerts_to_pairs()
    if len(argv) >= 5 and argv[1] == "diff":
        return diff(argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
