#!/usr/bin/env python3
"""Convert the Reuters-21578 SGML files into vigil news events (JSON lines).

usage: reuters2jsonl.py [--limit N] DIR_OR_FILE... > out.jsonl

DIR is the folder holding reut2-000.sgm ... reut2-021.sgm (for example
/work/shared/data/reuters21578); files are read in name order. Python 3
standard library only.

One JSON object per <REUTERS> element, keys in this order:

  type         "news"
  id           "reuters-<NEWID>"
  published_at RFC 3339 from <DATE> (" 3-MAR-1987 03:24:56.23" ->
               "1987-03-03T03:24:56.23Z"; the corpus gives no zone, UTC is
               assumed; text after the time, such as "&#5;&#5;&#5;RM", is
               ignored; an impossible time keeps the day at 00:00:00Z).
               Omitted if the date cannot be parsed.
  source       "reuters"
  title        <TITLE> text            (omitted when the story has none)
  dateline     <DATELINE> text         (omitted when absent)
  body         <BODY> text; for TYPE="UNPROC" stories, which have no
               TITLE/BODY split, the whole <TEXT> content    (omitted when
               absent, e.g. TYPE="BRIEF" title-only items)
  topics, places, orgs, people, exchanges, companies
               the <D> items of each category, as in the corpus (lower case)
  countries    places mapped to ISO 3166-1 alpha-2 codes ("japan" -> "JP",
               "usa" -> "US"; the historical states keep their old codes:
               ussr SU, west-germany DE, east-germany DD, yugoslavia YU,
               czechoslovakia CS); a place without a mapping is upper-cased
  entities     orgs + people + companies, upper-cased, duplicates removed
  old_id, split, has_topics   the OLDID, LEWISSPLIT and TOPICS attributes

Text handling:
  * bytes are decoded as UTF-8 where valid, and any byte that is not part of
    a valid UTF-8 sequence is read as Latin-1 (the corpus is ASCII except
    one 0xFC byte in reut2-017.sgm, which becomes "ü"); output is UTF-8;
  * SGML references are decoded: &lt; &gt; &amp; &quot; &apos; and numeric
    ones (&#3; &#x1F;); an unknown named reference is kept literally;
  * control characters (C0 except TAB, LF, CR; DEL; C1) are removed: the
    corpus uses &#2; &#3; &#5; &#22; &#31; &#127; as transmission markers;
  * title and dateline are whitespace-trimmed, body has surrounding blank
    space trimmed; inner line breaks are kept (they matter for phrase
    matching across lines).
"""
import codecs
import json
import os
import re
import sys

MONTHS = {m: i + 1 for i, m in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}

PLACE_ISO = {
    "afghanistan": "AF", "albania": "AL", "algeria": "DZ", "american-samoa": "AS",
    "andorra": "AD", "angola": "AO", "anguilla": "AI", "antigua": "AG",
    "argentina": "AR", "aruba": "AW", "australia": "AU", "austria": "AT",
    "bahamas": "BS", "bahrain": "BH", "bangladesh": "BD", "barbados": "BB",
    "belgium": "BE", "belize": "BZ", "benin": "BJ", "bermuda": "BM",
    "bhutan": "BT", "bolivia": "BO", "botswana": "BW", "brazil": "BR",
    "british-virgin-islands": "VG", "brunei": "BN", "bulgaria": "BG",
    "burkina-faso": "BF", "burma": "MM", "burundi": "BI", "cameroon": "CM",
    "canada": "CA", "cape-verde": "CV", "cayman-islands": "KY",
    "central-african-republic": "CF", "chad": "TD", "chile": "CL", "china": "CN",
    "colombia": "CO", "congo": "CG", "costa-rica": "CR", "cuba": "CU",
    "cyprus": "CY", "czechoslovakia": "CS", "denmark": "DK", "djibouti": "DJ",
    "dominica": "DM", "dominican-republic": "DO", "east-germany": "DD",
    "ecuador": "EC", "egypt": "EG", "el-salvador": "SV", "equatorial-guinea": "GQ",
    "ethiopia": "ET", "fiji": "FJ", "finland": "FI", "france": "FR",
    "french-guiana": "GF", "gabon": "GA", "gambia": "GM", "ghana": "GH",
    "gibraltar": "GI", "greece": "GR", "grenada": "GD", "guadeloupe": "GP",
    "guam": "GU", "guatemala": "GT", "guinea": "GN", "guinea-bissau": "GW",
    "guyana": "GY", "haiti": "HT", "honduras": "HN", "hong-kong": "HK",
    "hungary": "HU", "iceland": "IS", "india": "IN", "indonesia": "ID",
    "iran": "IR", "iraq": "IQ", "ireland": "IE", "israel": "IL", "italy": "IT",
    "ivory-coast": "CI", "jamaica": "JM", "japan": "JP", "jordan": "JO",
    "kampuchea": "KH", "kenya": "KE", "kuwait": "KW", "laos": "LA",
    "lebanon": "LB", "lesotho": "LS", "liberia": "LR", "libya": "LY",
    "liechtenstein": "LI", "luxembourg": "LU", "macao": "MO", "madagascar": "MG",
    "malawi": "MW", "malaysia": "MY", "mali": "ML", "malta": "MT",
    "martinique": "MQ", "mauritania": "MR", "mauritius": "MU", "mexico": "MX",
    "monaco": "MC", "morocco": "MA", "mozambique": "MZ", "namibia": "NA",
    "nepal": "NP", "netherlands": "NL", "netherlands-antilles": "AN",
    "new-caledonia": "NC", "new-zealand": "NZ", "nicaragua": "NI", "niger": "NE",
    "nigeria": "NG", "north-korea": "KP", "norway": "NO", "oman": "OM",
    "pakistan": "PK", "panama": "PA", "papua-new-guinea": "PG",
    "paraguay": "PY", "peru": "PE", "philippines": "PH", "poland": "PL",
    "portugal": "PT", "qatar": "QA", "romania": "RO", "rwanda": "RW",
    "saudi-arabia": "SA", "senegal": "SN", "seychelles": "SC",
    "sierra-leone": "SL", "singapore": "SG", "somalia": "SO",
    "south-africa": "ZA", "south-korea": "KR", "spain": "ES", "sri-lanka": "LK",
    "sudan": "SD", "suriname": "SR", "swaziland": "SZ", "sweden": "SE",
    "switzerland": "CH", "syria": "SY", "taiwan": "TW", "tanzania": "TZ",
    "thailand": "TH", "togo": "TG", "tonga": "TO", "trinidad-tobago": "TT",
    "tunisia": "TN", "turkey": "TR", "uae": "AE", "uganda": "UG", "uk": "GB",
    "uruguay": "UY", "us-virgin-islands": "VI", "usa": "US", "ussr": "SU",
    "vanuatu": "VU", "vatican": "VA", "venezuela": "VE", "vietnam": "VN",
    "west-germany": "DE", "western-samoa": "WS", "yemen-arab-republic": "YE",
    "yemen-demo-republic": "YE", "yugoslavia": "YU", "zaire": "CD",
    "zambia": "ZM", "zimbabwe": "ZW",
}

NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _latin1_fallback(err):
    """codecs error handler: an undecodable byte is read as Latin-1."""
    bad = err.object[err.start:err.end]
    return "".join(chr(b) for b in bad), err.end


codecs.register_error("vigil_latin1_fallback", _latin1_fallback)

REF_RE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
CTRL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _ref(m):
    name = m.group(1)
    if name[0] == "#":
        try:
            cp = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            if 0 <= cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF:
                return chr(cp)
        except ValueError:
            pass
        return ""
    return NAMED_REFS.get(name.lower(), m.group(0))


def sgml_text(s):
    """Decodes references and drops control characters."""
    return CTRL_RE.sub("", REF_RE.sub(_ref, s))


DOC_RE = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S)
ATTR_RE = re.compile(r'([A-Z]+)="([^"]*)"')
DATE_RE = re.compile(
    r"^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})\s+(\d{1,3}):(\d{2}):(\d{2})(?:\.(\d+))?")
TAGS_RE = re.compile(r"<[^>]*>")


def element(doc, tag):
    m = re.search(r"<%s\b[^>]*>(.*?)</%s>" % (tag, tag), doc, re.S)
    return m.group(1) if m else None


def d_items(doc, tag):
    inner = element(doc, tag)
    if inner is None:
        return []
    return [sgml_text(x).strip() for x in re.findall(r"<D>(.*?)</D>", inner, re.S)]


def rfc3339(raw):
    m = DATE_RE.match(raw or "")
    if not m:
        return None
    day, mon, year, hh, mm, ss, frac = m.groups()
    mon = MONTHS.get(mon.upper())
    if not mon or not 1 <= int(day) <= 31:
        return None
    s = "%s-%02d-%02d" % (year, mon, int(day))
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        return s + "T00:00:00Z"   # one story has "605:12:19.12": keep the day
    s += "T%02d:%s:%s" % (int(hh), mm, ss)
    if frac:
        s += "." + frac
    return s + "Z"


def convert(doc_attrs, doc):
    attrs = dict(ATTR_RE.findall(doc_attrs))
    ev = {"type": "news", "id": "reuters-" + attrs.get("NEWID", "?")}
    date = rfc3339(element(doc, "DATE"))
    if date:
        ev["published_at"] = date
    ev["source"] = "reuters"
    text = element(doc, "TEXT")
    title = body = dateline = None
    if text is not None:
        t = element(text, "TITLE")
        if t is not None:
            title = sgml_text(t).strip()
        d = element(text, "DATELINE")
        if d is not None:
            dateline = sgml_text(d).strip()
        b = element(text, "BODY")
        if b is not None:
            body = sgml_text(b).strip()
        elif t is None and d is None:
            # TYPE="UNPROC": no TITLE/BODY split, the text is the body.
            body = sgml_text(TAGS_RE.sub("", text)).strip()
    if title is not None:
        ev["title"] = title
    if dateline is not None:
        ev["dateline"] = dateline
    if body is not None:
        ev["body"] = body
    cats = {}
    for key, tag in (("topics", "TOPICS"), ("places", "PLACES"), ("orgs", "ORGS"),
                     ("people", "PEOPLE"), ("exchanges", "EXCHANGES"),
                     ("companies", "COMPANIES")):
        cats[key] = d_items(doc, tag)
        ev[key] = cats[key]
    countries = []
    for p in cats["places"]:
        c = PLACE_ISO.get(p, p.upper())
        if c not in countries:
            countries.append(c)
    ev["countries"] = countries
    entities = []
    for e in cats["orgs"] + cats["people"] + cats["companies"]:
        e = e.upper()
        if e not in entities:
            entities.append(e)
    ev["entities"] = entities
    if "OLDID" in attrs:
        ev["old_id"] = attrs["OLDID"]
    if "LEWISSPLIT" in attrs:
        ev["split"] = attrs["LEWISSPLIT"]
    if "TOPICS" in attrs:
        ev["has_topics"] = attrs["TOPICS"]
    return ev


def sgm_files(args):
    for a in args:
        if os.path.isdir(a):
            names = sorted(n for n in os.listdir(a)
                           if n.startswith("reut2-") and n.endswith(".sgm"))
            if not names:
                sys.exit("reuters2jsonl.py: %s: no reut2-*.sgm files" % a)
            for n in names:
                yield os.path.join(a, n)
        else:
            yield a


def main(argv):
    limit = None
    args = []
    it = iter(argv[1:])
    for a in it:
        if a == "--limit":
            limit = int(next(it))
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            args.append(a)
    if not args:
        sys.stderr.write("usage: reuters2jsonl.py [--limit N] DIR_OR_FILE... > out.jsonl\n")
        return 2
    out = sys.stdout.buffer
    n = 0
    for path in sgm_files(args):
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "vigil_latin1_fallback")
        for m in DOC_RE.finditer(data):
            ev = convert(m.group(1), m.group(2))
            out.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":"))
                      .encode("utf-8") + b"\n")
            n += 1
            if limit is not None and n >= limit:
                return 0
    sys.stderr.write("reuters2jsonl.py: %d events\n" % n)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:
        sys.exit(0)
