#!/usr/bin/env python3
"""promcheck.py FILE [SERIES=VALUE ...] - a strict parser of the Prometheus
text exposition format 0.0.4 (what node_exporter's textfile collector
reads), for tests/milter/metrics.sh. Written from the format's
specification, independently of warden's metrics.c.

Refuses anything the format does not allow and what warden promises not
to do: empty lines, a missing final newline, unknown escapes in HELP text
or label values, bad metric or label names, labels starting "__", a TYPE
after its family's first sample or twice, a family's samples split up,
duplicate series, values that are not Go floats, counters that are
negative or not named *_total, histograms whose buckets are not
cumulative, lack +Inf, or disagree with _count, or lack _sum.

Each SERIES=VALUE argument (SERIES as written in the file, labels in file
order, e.g. 'warden_decisions_total{action="reject"}=2') must be present
with exactly that value. Exit 0 when all holds, 1 with every problem on
stderr. When python3-prometheus-client is installed its parser must
accept the file too (a second, independent reader).
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
FLOAT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|NaN)"
HELP_RE = re.compile(r"^# HELP (" + NAME + r") ((?:[^\\\n]|\\[\\n])*)$")
TYPE_RE = re.compile(r"^# TYPE (" + NAME + r") (counter|gauge|histogram|summary|untyped)$")
SAMPLE_RE = re.compile(
    r"^(" + NAME + r")(\{(?:" + LNAME + r"=" + LVALUE + r"(?:," + LNAME + r"=" + LVALUE +
    r")*,?)?\})? (" + FLOAT + r")(?: (-?[0-9]+))?$")
LABEL_RE = re.compile(r"(" + LNAME + r")=(" + LVALUE + r")")


def unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v[1:-1])


def family_of(name, types):
    """The family a sample belongs to (histogram suffixes stripped)."""
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) in ("histogram", "summary"):
            return name[: -len(suf)]
    return name


def check(text):
    errs = []
    series = {}          # "name{labels}" as written -> float
    types, helps = {}, {}
    seen_fams, cur = set(), None
    hist = {}            # family -> {"buckets": [(le, v, labels)], ...}
    if not text.endswith("\n"):
        errs.append("the file does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            errs.append("line %d: empty" % n)
            continue
        m = HELP_RE.match(line)
        if m:
            if m.group(1) in helps:
                errs.append("line %d: second HELP for %s" % (n, m.group(1)))
            helps[m.group(1)] = m.group(2)
            continue
        m = TYPE_RE.match(line)
        if m:
            fam = m.group(1)
            if fam in types:
                errs.append("line %d: second TYPE for %s" % (n, fam))
            if fam in seen_fams:
                errs.append("line %d: TYPE %s after its samples" % (n, fam))
            types[fam] = m.group(2)
            continue
        if line.startswith("#"):
            errs.append("line %d: a comment that is not HELP or TYPE: %r" % (n, line))
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            errs.append("line %d: not a sample: %r" % (n, line))
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        pairs = LABEL_RE.findall(labels)
        lnames = [p[0] for p in pairs]
        if len(set(lnames)) != len(lnames):
            errs.append("line %d: a label twice" % n)
        if any(l.startswith("__") for l in lnames):
            errs.append("line %d: reserved label name" % n)
        key = name + labels
        if key in series:
            errs.append("line %d: duplicate series %s" % (n, key))
        v = float(value.replace("Inf", "inf").replace("NaN", "nan"))
        series[key] = v
        fam = family_of(name, types)
        if fam != cur:
            if fam in seen_fams:
                errs.append("line %d: family %s split up" % (n, fam))
            seen_fams.add(fam)
            cur = fam
        t = types.get(fam)
        if t is None:
            errs.append("line %d: %s has no TYPE (warden types every family)" % (n, fam))
        elif t == "counter":
            if not name.endswith("_total"):
                errs.append("line %d: counter %s is not named *_total" % (n, name))
            if not v >= 0:
                errs.append("line %d: counter %s is %s" % (n, key, value))
        elif t == "histogram":
            h = hist.setdefault(fam, {"buckets": [], "sum": None, "count": None})
            d = dict((k, unescape(x)) for k, x in pairs)
            if name == fam + "_bucket":
                if "le" not in d:
                    errs.append("line %d: bucket without le" % n)
                    continue
                try:
                    le = float(d["le"].replace("Inf", "inf"))
                except ValueError:
                    errs.append("line %d: le %r is not a float" % (n, d["le"]))
                    continue
                h["buckets"].append((le, v, n))
            elif name == fam + "_sum":
                h["sum"] = v
            elif name == fam + "_count":
                h["count"] = v
            else:
                errs.append("line %d: %s in histogram %s" % (n, name, fam))
    for fam, h in hist.items():
        b = h["buckets"]
        if not b or b[-1][0] != math.inf:
            errs.append("histogram %s: no le=\"+Inf\" bucket last" % fam)
        for (le0, v0, _), (le1, v1, n1) in zip(b, b[1:]):
            if not le1 > le0:
                errs.append("histogram %s: le not increasing at line %d" % (fam, n1))
            if v1 < v0:
                errs.append("histogram %s: bucket at line %d (%g) below the one before (%g): "
                            "not cumulative" % (fam, n1, v1, v0))
        if h["count"] is None or h["sum"] is None:
            errs.append("histogram %s: _count or _sum missing" % fam)
        elif b and b[-1][1] != h["count"]:
            errs.append("histogram %s: +Inf bucket %g != _count %g" % (fam, b[-1][1], h["count"]))
    for fam in types:
        if fam not in helps:
            errs.append("%s has TYPE but no HELP" % fam)
    return errs, series


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        print("promcheck: not UTF-8: %s" % e, file=sys.stderr)
        return 1
    errs, series = check(text)
    for want in sys.argv[2:]:
        key, _, val = want.rpartition("=")
        if key not in series:
            errs.append("no series %s" % key)
        elif series[key] != float(val):
            errs.append("%s is %g, want %s" % (key, series[key], val))
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        pass
    else:
        try:
            n = sum(1 for _ in text_string_to_metric_families(text))
            if n == 0:
                errs.append("prometheus_client found no family")
        except Exception as e:          # its parser raises plain ValueErrors
            errs.append("prometheus_client refuses the file: %s" % e)
    for e in errs:
        print("promcheck: %s: %s" % (sys.argv[1], e), file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
