#!/usr/bin/env python3
"""Deterministic synthetic events for the differential test (JSON lines on
stdout): N trade rows (default 400) with the awkward values feeds send
(codes as numbers or strings, numbers as text, "n/a", nested objects,
arrays of objects, missing fields), then hand-written news events aimed at
the keyword rules' edges (boundaries, white space, Unicode case folding,
stars, regular expressions, list splicing, missing and array fields).

usage: gen_events.py [N] > synthetic.jsonl

Numbers are written with their exact JSON text (1.2e9 stays 1.2e9), since
field comparisons use that text. Only inputs whose meaning DESIGN.md fixes
are generated: no null, no empty arrays under `exists`, no booleans or
numbers under string operators, no "+5"/".5"/"5." number strings.
"""
import json
import random
import sys


class Raw(str):
    """A JSON number written exactly as given."""


def dump(v):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    return "{" + ",".join(dump(k) + ":" + dump(x) for k, x in v.items()) + "}"


PARTNERS = ["CN", "HK", "MO", "RU", "BY", "IR", "US", "JP", "DE", "KR", "TW", "VN",
            "cn", "Hk", "ru", "CHN", "RUS", "USA"]
FLOWS = ["export", "export", "export", "re-export", "import", "Export", "EXPORT",
         "re-import", "Re-Export"]
HS = [Raw("854231"), "854231", "854232", Raw("854232"), "8542", Raw("8542"), "854110",
      Raw("854140"), "848620", Raw("848620"), "8486", "903082", "010121", "85423100",
      Raw("85423100"), "18542", "8541"]
VALUES = [Raw("1.2e9"), Raw("1.2E9"), "1.5e9", Raw("350000000"), "350000000", Raw("100000000"),
          "100000000", Raw("100000000.5"), Raw("99999999.9"), "99999999.9", Raw("0"),
          Raw("-5"), "n/a", "", "12%", "1,000", Raw("2.5e8"), "2.5e8", Raw("250000000.0"),
          Raw("7"), "7", "-0"]
CHANGES = [Raw("-23.5"), "-23.5", Raw("-20"), "-20", Raw("-20.0"), Raw("-19.9"), "-19.99",
           Raw("50"), "50.0", Raw("49.99"), "49.999", Raw("1e1"), "1E2", Raw("0"), "n/a",
           "", "-", "12%", Raw("-1e2"), Raw("120.5"), Raw("-0.5"), None]
SOURCES = ["comtrade", "Comtrade", "COMTRADE", "Taiwan Customs", "taiwan customs office",
           "customs.gov.cn", "stat.gov.tw"]
YEARS = [Raw("2023"), Raw("2024"), "2024", "2023", Raw("2022"), Raw("2024.0")]


def trade(rng, i):
    partner = rng.choice(PARTNERS)
    hs = rng.choice(HS)
    year = rng.choice(YEARS)
    month = rng.randint(1, 12)
    ev = {"type": rng.choice(["trade"] * 8 + ["Trade", "TRADE"]),
          "id": "%s-%s-%02d-%s-%s" % (rng.choice(["tw", "tw", "TW", "ct"]),
                                     str(year).split(".")[0], month, partner, str(hs)[:5]),
          "period": "%s-%02d" % (str(year).split(".")[0], month),
          "year": year,
          "reporter": rng.choice(["TW", "KR", "JP", "US", "tw"]),
          "partner": partner,
          "flow": rng.choice(FLOWS),
          "hs_code": hs,
          "value_usd": rng.choice(VALUES)}
    ch = rng.choice(CHANGES)
    if ch is not None:
        ev["change_pct"] = ch
    r = rng.random()
    if r < 0.6:
        ev["meta"] = {"source": {"name": rng.choice(SOURCES)}, "seq": Raw(str(i))}
    elif r < 0.7:
        ev["meta"] = {"note": "no source"}
    if rng.random() < 0.4:
        ev["parties"] = [{"country": rng.choice(PARTNERS), "role": "consignee"}
                         for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        ev["url"] = rng.choice(["https://www.customs.gov.cn/stat/%d" % i,
                                "https://portal.sw.nat.gov.tw/x%d.GOV.TW" % i,
                                "https://comtrade.un.org/%d" % i])
    if rng.random() < 0.5:
        ev["countries"] = rng.sample(["CN", "US", "JP", "TW", "KR", "cn", "RU"], rng.randint(1, 3))
    if rng.random() < 0.2:
        ev["title"] = rng.choice(["Chip exports to China fall", "Semiconductor shipments surge",
                                  "Chipotle results", "export ban on gallium"])
    return ev


# One edge case per snippet; each becomes its own event (see main), so that
# one case cannot hide another.
SNIPPETS = [
    # boundaries (rule 3) and stars (rule 4)
    "the ban.", "Ban on exports.", "urban", "banned", "banana", "(ban)", "ban_x", "ban1",
    "bané", "éban", "ban中", "中ban", "ban٣", "٣ban", "ban\u0301 x", "ban\u00b2", "ban\u2160",
    "ban\u200d", "the banner flew", "bans galore",
    "Sanctions widen", "unsanctioned", "sanctioning bodies", "sanction",
    "Intel's chips", "Intelligence agencies", "Intel-made parts", "INTEL",
    "Rostechnadzor report", "Rostec said", "germanium exports", "Germany said no",
    # white space (rule 2)
    "Added to the Entity\n    List", "entity\ttrade list", "entity\u00a0list",
    "ENTITY\u2003\u3000LIST", "entity\u200blist", "entity-list", "entity\r\nlist",
    "entity\x0blist", "entity\x0clist", "entity\x85list", "entity\u2028list",
    "entity\u1680list", "entity\u205flist", "entity\x1flist", "entity\x1clist",
    "entitylist", "entity_list", "entity list_", "entity listing", "entity lists",
    # phrases with stars
    "exports banned", "export bans", "Export   Ban", "exporter ban", "Export curbs tighten",
    "export curb", "export curbing", "exportcurbs", "rare earthenware", "rare earths",
    "rare-earth magnets", "trade war fears", "a trade   war", "trade\nwar",
    "sanctions listing", "abc b", "rates cuts", "exporter urban", "entities listed",
    # regex terms (rule 5)
    "export  bans", "export banner ads", "export\tbanned", "Tariffs of 100 pct imposed",
    "a 25.5 pct rise", "3 PCT fall", "FED SAYS RATES STEADY", "profit 12 cts a share",
    # literal punctuation (rule 6)
    "U.S. curbs", "U.S.A. is big", "not U.S.;", "the U.S.-made parts", "AT&T", "S.A. units",
    "AT&Tx", "(AT&T)", "costs $100 now", "US$100", "$1000", "$100.", "licen?e requirement",
    "license requirement", "chip-making", "chip making", "chips", "STANDARD OIL <SRD>",
    "<SRDX>", "a*b", "aXb", "co., ltd", "it's", "don't", "Reuter's",
    # Unicode case folding (rule 1)
    "ÉTATS-UNIS: Washington tightens export controls", "états-unis", "Straße closed",
    "strasse open", "STRASSE", "STRAẞE", "ΣΊΣΥΦΟΣ", "σίσυφος", "σίσυφοσ",
    "\u212aelvin", "ſanctions imposed", "İstanbul talks", "istanbul", "ISTANBUL", "ıstanbul",
    "САНКЦИИ против", "новые санкции", "ǅemal", "ǆemal", "Ǆemal",
    "Ｆｕｌｌｗｉｄｔｈ ＳＡＮＣＴＩＯＮ", "ｓａｎｃｔｉｏｎｓ", "µ-chip", "μ-chip",
    # names from lists and files
    "Huawei's suppliers", "HUAWEI", "Huaweis", "Hua wei", "SMIC and YMTC",
    "Semiconductor Manufacturing International Corp", "micron-scale", "Micron Technology",
    "BANCO NACIONAL DE CUBA", "Banco Nacional de Cuba said", "AEROCARIBBEAN AIRLINES",
    "aerocaribbean airlines flights", "ROSOBORONEXPORT deal", "Rostec", "C# Corp", "C Corp",
    "Japan chip pact", "MITI said semiconductor exports to the U.S. will rise", "tokyo",
    "yen rises", "",
]


def news(i, title, body):
    ev = {"type": "news", "id": "syn-news-%03d" % i, "source": "synthetic"}
    if title is not None:
        ev["title"] = title
    if body is not None:
        ev["body"] = body
    if i % 3 == 0:
        ev["entities"] = ["Huawei", "SMIC", "Ministry of Commerce"]
    if i % 4 == 1:
        ev["countries"] = ["CN", "JP"]
    if i % 5 == 2:
        ev["meta"] = {"headline": "export ban looms", "source": {"name": "Wire"}}
    return ev


def extra_news():
    yield {"type": "news", "id": "syn-arr-1", "title": ["export controls", "other"],
           "body": "nothing"}
    yield {"type": "news", "id": "syn-arr-2", "title": "nothing",
           "body": ["nothing", ["nested entity list"]]}
    yield {"type": "news", "id": "syn-obj", "title": {"text": "entity list"}, "body": "x"}
    yield {"type": "news", "id": "syn-num", "title": "x", "body": "y", "hs_code": Raw("854231"),
           "countries": ["JP"], "places": ["japan"]}
    yield {"type": "news", "id": "syn-src-satire", "source": "satire-daily",
           "title": "SMIC placed on entity list", "body": ""}
    yield {"type": "news", "id": "syn-src-upper", "source": "SATIRE-DAILY",
           "title": "SMIC placed on entity list", "body": ""}
    yield {"type": "news", "id": "syn-all-in-entities", "title": "tariffs",
           "entities": ["semiconductors"], "body": ""}


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 400
    rng = random.Random(20240503)
    out = sys.stdout
    for i in range(n):
        out.write(dump(trade(rng, i)) + "\n")
    # each snippet as a title alone, then as a body alone
    for i, snip in enumerate(SNIPPETS):
        out.write(dump(news(i, snip, None)) + "\n")
    for i, snip in enumerate(SNIPPETS):
        out.write(dump(news(len(SNIPPETS) + i, None, snip)) + "\n")
    out.write(dump(news(2 * len(SNIPPETS), None, None)) + "\n")
    for ev in extra_news():
        out.write(dump(ev) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
