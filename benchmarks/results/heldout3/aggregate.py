"""Held-out list 3: per chapter and in total, from chNN-before.json (the measurement) and chNN-summary.md (NEW marks)."""
import json, re, sys
from pathlib import Path
here = Path(__file__).parent  # the folder of chNN-before.json and chNN-summary.md
rows, total = [], {}
def pct(a, b): return f"{100*a/b:.0f} %" if b else "-"
for path in sorted(here.glob("ch*-before.json")):
    ch = path.name[2:4]
    data = json.loads(path.read_text())
    new = set()
    summary = here / f"ch{ch}-summary.md"
    if summary.exists():
        for line in summary.read_text().splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) >= 6 and any(c.startswith("NEW") for c in cells[1:]):
                new.add(cells[0].strip("`"))
    out = [ch, str(data["solution_lost"])]
    for kind in ("common", "rare"):
        for only_new in (False, True):
            rs = [r for r in data["results"] if r["kind"] == kind and (not only_new or r["mutant"] in new)]
            n, c, nm = len(rs), sum(r["caught"] for r in rs), sum(bool(r["named"]) for r in rs)
            e = sum(bool(r["elsewhere"]) for r in rs)
            key = (kind, only_new)
            t = total.setdefault(key, [0, 0, 0, 0]); t[0] += n; t[1] += c; t[2] += nm; t[3] += e
            out.append(f"{n}, {pct(c, n)}, {pct(nm, n)}" + (f", {e} elsewhere" if e else ""))
    rows.append(out)
print("| ch | solution lost | common: n, caught, named | common NEW | rare | rare NEW |")
print("|---|---|---|---|---|---|")
for r in rows: print("| " + " | ".join(r) + " |")
t = [f"{v[0]}, {pct(v[1], v[0])}, {pct(v[2], v[0])}" + (f", {v[3]} elsewhere" if v[3] else "") for k, v in
     [(k, total[k]) for k in (("common", False), ("common", True), ("rare", False), ("rare", True))]]
print("| **all** | | " + " | ".join(t) + " |")
