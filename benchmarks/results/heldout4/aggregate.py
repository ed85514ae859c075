"""Held-out list 4: per chapter and in total, from chNN-before.json (the measurement, graded once) and chNN-summary.md
(its last column: the mistake in tests/mutants/chNN.py that a mutant duplicates, or '-'). Run: python3 aggregate.py"""
import json
from pathlib import Path

here = Path(__file__).parent  # the folder of chNN-before.json and chNN-summary.md


def pct(a, b):
    return f"{100 * a / b:.0f} %" if b else "-"


def duplicates(ch):
    """Mutant names whose summary row names an earlier mistake in its last column."""
    found = set()
    for line in (here / f"ch{ch}-summary.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0].startswith("h4") and cells[-1] not in ("", "-", "none"):
            found.add(cells[0].strip("`"))
    return found


COLUMNS = [("common", False), ("common", True), ("rare", False), ("rare", True)]
rows, total, lost_any, elsewhere_all = [], {key: [0, 0, 0] for key in COLUMNS}, [], 0
for path in sorted(here.glob("ch*-before.json")):
    ch = path.name[2:4]
    data = json.loads(path.read_text())
    dup = duplicates(ch)
    out = [ch, str(data["solution_lost"] or "nothing")]
    for kind, new_only in COLUMNS:
        rs = [r for r in data["results"] if r["kind"] == kind and (not new_only or r["mutant"] not in dup)]
        n, c, nm = len(rs), sum(bool(r["caught"]) for r in rs), sum(bool(r["named"]) for r in rs)
        t = total[(kind, new_only)]
        t[0] += n; t[1] += c; t[2] += nm
        out.append(f"{n}, {c}, {nm}")
    e = sum(bool(r["elsewhere"]) for r in data["results"])
    elsewhere_all += e
    out.append(str(e))
    rows.append(out)
    if data["solution_lost"]:
        lost_any.append(ch)

print("| ch | solution lost | common: n, caught, named | common, not a duplicate | rare: n, caught, named "
      "| rare, not a duplicate | elsewhere |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
print("| **all** | " + (", ".join(lost_any) or "nothing") + " | "
      + " | ".join(f"{v[0]}, {v[1]} ({pct(v[1], v[0])}), {v[2]} ({pct(v[2], v[0])})" for v in total.values())
      + f" | {elsewhere_all} |")
