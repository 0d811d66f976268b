#!/usr/bin/env python3
"""Builds a Chinese/Korean/Japanese news corpus for the scan benchmark from
the demo's own stories (rules/demo/events.jsonl, the events whose title is
written in Han, Hangul or Kana): each generated event takes the title of one
such story and a body made of 2-6 sentences drawn from all of them, so the
text is real desk prose in the proportions the demo has, with new
combinations; as the demo's stories are mostly about export controls,
about two in three events alert. Deterministic for a given seed.

usage: cjk_corpus.py [--count N] [--seed S] DEMO_EVENTS > corpus.jsonl
"""
import argparse
import json
import random
import re
import sys


def is_cjk(text):
    return any(0x1100 <= ord(c) <= 0x11FF or 0x2E80 <= ord(c) <= 0x9FFF
               or 0xAC00 <= ord(c) <= 0xD7AF for c in text)


def sentences(body):
    parts = re.split(r"(?<=[。．！？.!?])\s*", body)
    return [p for p in parts if p.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("events")
    args = ap.parse_args()
    stories = []
    with open(args.events, encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            if is_cjk(ev.get("title", "")):
                stories.append(ev)
    if not stories:
        sys.exit("cjk_corpus: no Chinese, Korean or Japanese story in " + args.events)
    pool = [s for ev in stories for s in sentences(ev.get("body", ""))]
    rnd = random.Random(args.seed)
    out = sys.stdout
    for i in range(args.count):
        base = stories[rnd.randrange(len(stories))]
        body = "".join(rnd.choice(pool) for _ in range(rnd.randint(2, 6)))
        ev = {"type": "news", "id": "cjk-%06d" % i,
              "published_at": base["published_at"], "source": base.get("source", "newswire"),
              "title": base["title"], "body": body,
              "countries": base.get("countries", []), "entities": base.get("entities", [])}
        out.write(json.dumps(ev, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
