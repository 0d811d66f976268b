#!/usr/bin/env python3
"""Checks ref_packs.py against the examples written in DESIGN.md's keyword
rules 1-16 (each case below quotes one), so that the packs' reference
reading is itself tied to the contract. Exit 0 when all agree."""
import sys

import ref_packs as R


class Lists(R.Rules):
    def __init__(self, lists=None):
        self.lists, self.macros, self.rules = lists or {}, {}, []


NEAR = {"a": ["SMIC"], "b": ["entity list"]}
KO = {"a": ["삼성전자"], "b": ["수출통제"]}
CASES = [
    ({"any": ["entity list"]}, "Entity\n  List", True, None),
    ({"any": ["rare earth"]}, "rare \u2013 earth", True, None),
    ({"any": ["rare earth"]}, "rare-earth", True, None),
    ({"any": ["rare-earth"]}, "rare earth", True, None),
    ({"any": ["ban"]}, "the ban.", True, None),
    ({"any": ["ban"]}, "urban", False, None),
    ({"any": ["ban"]}, "banned", False, None),
    ({"any": ["SMIC"]}, "美国将SMIC列入实体清单", True, None),
    ({"any": ["2023"]}, "2023年", True, None),
    ({"any": ["sanction*"]}, "sanctioned", True, None),
    ({"any": ["Straße"]}, "STRASSE", True, None),
    ({"any": ["SMIC"]}, "ＳＭＩＣ", True, None),
    ({"any": ["finance"]}, "\ufb01nance", True, None),
    ({"any": ["Petroleos"]}, "Petro\u0301leos", True, None),
    ({"any": ["Petróleos"]}, "Petroleos", True, None),
    ({"any": ["istanbul"]}, "İSTANBUL", True, None),
    ({"any": ["रूस"]}, "रूसी", False, None),
    ({"any": ["美光"]}, "美光科技未通过网络安全审查", True, None),
    ({"any": ["輸出規制"]}, "政府は輸出規制を強化", True, None),
    ({"any": ["삼성전자"]}, "삼성전자가", True, None),
    ({"any": ["삼성전자"]}, "삼성전자는", True, None),
    ({"any": ["전자"]}, "삼성전자", False, None),
    ({"any": ["US"], "case": "sensitive"}, "US curbs", True, None),
    ({"any": ["US"], "case": "sensitive"}, "tell us", False, None),
    ({"any": ["chip*"], "except": ["blue chip*", "potato chip*"]}, "blue chips rallied", False, None),
    ({"any": ["chip*"], "except": ["blue chip*", "potato chip*"]},
     "blue chips rallied as chip stocks fell", True, None),
    ({"near": ["$a", "$b"], "within": 8}, "SMIC was added on Friday to the U.S. entity list", True, NEAR),
    ({"near": ["$a", "$b"], "within": 7}, "SMIC was added on Friday to the U.S. entity list", False, NEAR),
    ({"any": ["マイクロ"]}, "マイクロン", True, None),
    ({"any": ["삼성"]}, "삼성전자", True, None),
    ({"any": ["U.S. China"]}, "U.S.-China", True, None),
    ({"any": ["it's"]}, "it\u2019s", True, None),
    ({"any": ["SK하이닉스"]}, "SK하이닉스는", True, None),
    ({"near": ["$a", "$b"], "within": 1}, "삼성전자가 수출통제", True, KO),
    ({"near": ["$a", "$b"], "within": 0}, "삼성전자가 수출통제", False, KO),
    ({"near": ["$b", "$a"], "within": 5, "ordered": True}, "삼성전자가 수출통제", False, KO),
    ({"all": [{"name": "Micron", "aliases": ["美光"]}, "x"]}, "美光 x", True, None),
]


def main():
    bad = 0
    for cond, text, want, lists in CASES:
        got = R.eval_text(Lists(lists), cond, {"title": text})
        if got != want:
            bad += 1
            print("FAIL %r on %r: got %s" % (cond, text, got))
    print("ref self-test: %d passed, %d failed" % (len(CASES) - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
