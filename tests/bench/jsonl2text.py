#!/usr/bin/env python3
"""Text of JSON-lines events for the grep baseline of bench_scan.sh: one
line per event, its "title" and "body" strings joined by a space, every run
of white space (including the line breaks inside a body) replaced by one
space, so that a line-oriented `grep` sees the same words in the same order
as vigil's keyword search (whose phrases also span line breaks). Events
without title and body give an empty line, so line N is event N.

usage: jsonl2text.py EVENTS.jsonl > text.txt
"""
import json
import sys


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: jsonl2text.py EVENTS.jsonl > text.txt\n")
        return 2
    out = sys.stdout.buffer
    with open(argv[1], "rb") as f:
        for raw in f:
            try:
                ev = json.loads(raw)
            except ValueError:
                ev = {}
            parts = [ev.get(k) for k in ("title", "body")] if isinstance(ev, dict) else []
            text = " ".join(p for p in parts if isinstance(p, str))
            out.write(" ".join(text.split()).encode("utf-8") + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
