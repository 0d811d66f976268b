#!/usr/bin/env python3
"""Runs `vigil test` on each of the desk's rule packs (rules/chip-*.yaml,
each loaded together with rules/desk-entities.yaml, which holds the shared
entity lists and macros).

usage: check_packs.py VIGIL [RULES_DIR]

Prints one line per pack and then `packs: N passed, M failed`.
Exit status: 0 when every pack's embedded tests pass; 1 when one fails;
77 (the "skipped" status of ctest and automake) when the binary refuses the
packs' syntax as unknown (an engine without DESIGN.md keyword rules 13-16:
`near`, `within`, `except`, `case`, entity items), so that this check can
be run before the engine supports them; 2 on a usage error.

Not part of ctest (yet). Beside it, ref_packs.py checks the same tests
against a plain Python reading of DESIGN.md.
"""
import os
import subprocess
import sys

# What a vigil that predates keyword rules 13-16 says about the packs.
REFUSALS = (
    "unknown key 'near'",
    "unknown key 'within'",
    "unknown key 'except'",
    "unknown key 'case'",
    "unknown key 'ordered'",
    "list items must be strings",
)
SHARED = "desk-entities.yaml"


def main(argv):
    if len(argv) not in (1, 2) or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    vigil = argv[0]
    here = os.path.dirname(os.path.abspath(__file__))
    rules = argv[1] if len(argv) == 2 else os.path.join(here, "..", "..", "rules")
    shared = os.path.join(rules, SHARED)
    packs = sorted(f for f in os.listdir(rules) if f.startswith("chip-") and f.endswith(".yaml"))
    if not os.path.isfile(shared) or not packs:
        print("check_packs: no %s or rules/chip-*.yaml in %s" % (SHARED, rules), file=sys.stderr)
        return 2
    passed = failed = refused = 0
    for pack in packs:
        try:
            p = subprocess.run([vigil, "test", shared, os.path.join(rules, pack)],
                               capture_output=True, text=True, timeout=300)
        except OSError as e:
            print("check_packs: cannot run %s: %s" % (vigil, e), file=sys.stderr)
            return 2
        last = (p.stdout.strip().splitlines() or [""])[-1]
        if p.returncode == 0:
            passed += 1
            print("PASS %-24s %s" % (pack, last))
        elif any(r in p.stderr for r in REFUSALS):
            refused += 1
            first = p.stderr.strip().splitlines()[0]
            print("SKIP %-24s the engine refuses the syntax: %s" % (pack, first))
        else:
            failed += 1
            print("FAIL %-24s exit %d" % (pack, p.returncode))
            sys.stdout.write(p.stdout)
            sys.stdout.write(p.stderr)
    print("packs: %d passed, %d failed" % (passed, failed))
    if failed:
        return 1
    if refused:
        print("check_packs: %d pack(s) skipped: this vigil does not know their syntax yet" % refused)
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
