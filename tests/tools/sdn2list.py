#!/usr/bin/env python3
"""Make a vigil term list (one name per line) from an OFAC SDN sdn.csv.

usage: sdn2list.py [OPTIONS] SDN_CSV_OR_DIR > names.txt

  --types LIST     comma-separated party types to keep: entity, individual,
                   vessel, aircraft, or all            (default: entity)
  --min-len N      drop names shorter than N characters (default: 4; short
                   acronyms would match ordinary words)
  --akas           also emit the a.k.a. names quoted in the remarks column
                   (a.k.a. 'BNC'), subject to the same filters
  --as-written     keep individuals as OFAC writes them ("SURNAME, Given");
                   by default they are rewritten in natural order
                   ("DELOS REYES, Feliciano Semborio, Jr." ->
                   "Feliciano Semborio DELOS REYES Jr."), the way news
                   names people
  --sample N       keep a deterministic pseudo-random N of the names
  --seed S         seed for --sample (default: 1)
  --header         start with "#" comment lines saying where the list came
                   from (vigil skips them; grep -f would not)

The file given (or DIR/sdn.csv) has no header row; the name is column 2 and
the type column 3, where "-0-" means an entity. It is read as UTF-8 with
undecodable bytes replaced; the trailing DOS EOF byte (0x1A) is ignored.

Every name is made a valid literal vigil term (rules/README.md section 6):
runs of white space become one space; a name that would be read as
something else is handled: a leading "$" is doubled ("$$" means a literal
dollar sign), while a name starting with "#" (a comment line in a list
file), a name written "/.../" (a regular expression) and a name with a word
ending in "*" (a prefix wildcard) are dropped with a note on stderr.
Names equal apart from case are emitted once (matching ignores case). The
output is sorted; it is UTF-8.

Examples:
  sdn2list.py /work/shared/data/screening/ofac-sdn-2024-05-03 > sdn-entities.txt
  sdn2list.py --types all /work/shared/data/screening/ofac-sdn-2024-05-03 > sdn-all.txt
  sdn2list.py --types all --sample 1000 DIR > sdn-1k.txt
"""
import csv
import os
import random
import re
import sys

TYPE_NAMES = {"entity": "-0-", "individual": "individual", "vessel": "vessel",
              "aircraft": "aircraft"}
AKA_RE = re.compile(r"a\.k\.a\.\s+'([^']+)'")


def natural_order(name):
    parts = [p.strip() for p in name.split(",")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return name
    return " ".join([parts[1], parts[0]] + [p for p in parts[2:] if p])


def as_term(name, dropped):
    t = " ".join(name.split())
    if not t:
        return None
    if t.startswith("#"):
        dropped.append((name, "starts with # (a comment in a list file)"))
        return None
    if len(t) >= 2 and t.startswith("/") and t.endswith("/"):
        dropped.append((name, "would be read as a regular expression"))
        return None
    if any(w.endswith("*") for w in t.split(" ")):
        dropped.append((name, "a word ends in * (a prefix wildcard)"))
        return None
    if t.startswith("$"):
        t = "$" + t
    return t


def main(argv):
    types = {"-0-"}
    min_len = 4
    akas = False
    as_written = False
    sample = None
    seed = 1
    header = False
    paths = []
    it = iter(argv[1:])
    try:
        for a in it:
            if a == "--types":
                v = next(it)
                if v == "all":
                    types = set(TYPE_NAMES.values())
                else:
                    types = {TYPE_NAMES[x.strip()] for x in v.split(",")}
            elif a == "--min-len":
                min_len = int(next(it))
            elif a == "--akas":
                akas = True
            elif a == "--as-written":
                as_written = True
            elif a == "--sample":
                sample = int(next(it))
            elif a == "--seed":
                seed = int(next(it))
            elif a == "--header":
                header = True
            elif a in ("-h", "--help"):
                print(__doc__.strip())
                return 0
            elif a.startswith("-") and a != "-":
                raise KeyError(a)
            else:
                paths.append(a)
    except (StopIteration, KeyError, ValueError) as e:
        sys.stderr.write("sdn2list.py: bad option %s\n" % e)
        return 2
    if len(paths) != 1:
        sys.stderr.write("usage: sdn2list.py [--types entity,...|all] [--min-len N] [--akas] "
                         "[--as-written] [--sample N [--seed S]] [--header] SDN_CSV_OR_DIR\n")
        return 2
    path = paths[0]
    if os.path.isdir(path):
        path = os.path.join(path, "sdn.csv")
    names = {}
    dropped = []
    rows = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for r in csv.reader(f):
            if len(r) < 3:
                continue        # the trailing 0x1A line
            rows += 1
            typ = r[2].strip()
            if typ not in types:
                continue
            cands = [r[1]]
            if typ == "individual" and not as_written:
                cands = [natural_order(r[1])]
            if akas and len(r) > 11:
                cands += AKA_RE.findall(r[11])
            for c in cands:
                t = as_term(c, dropped)
                if t is None or len(t) < min_len:
                    continue
                names.setdefault(t.casefold(), t)
    out = sorted(names.values(), key=lambda s: (s.casefold(), s))
    if sample is not None and sample < len(out):
        out = sorted(random.Random(seed).sample(out, sample),
                     key=lambda s: (s.casefold(), s))
    for name, why in dropped:
        sys.stderr.write("sdn2list.py: dropped %r: %s\n" % (name, why))
    w = sys.stdout
    if header:
        w.write("# generated by tests/tools/sdn2list.py from %s\n" % os.path.abspath(path))
        w.write("# %d names of %d records (types %s, min length %d%s)\n"
                % (len(out), rows, ",".join(sorted(k for k, v in TYPE_NAMES.items() if v in types)),
                   min_len, ", with a.k.a." if akas else ""))
    for t in out:
        w.write(t + "\n")
    sys.stderr.write("sdn2list.py: %d names from %d records\n" % (len(out), rows))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:
        sys.exit(0)
