"""The mutant campaign: plausible learner mistakes, graded through nbgrader like a class.

For every mutant of ``tests/mutants/chNN.py`` (the solution with one mistake in one answer), one student in a
temporary course root; ``nbgrader autograde`` grades them beside the unchanged solution, ten students a run. For each
mutant it reports:

- **caught**: its exercise (the answer's test cells) lost points;
- **named**: a visible test of that exercise failed with a message matching the mutant's ``names`` (what the
  learner sees when running the notebook, and in the feedback);
- **named in feedback**: any message of the exercise's cells in the feedback matches (the judge's included);
- **elsewhere**: points lost in *other* exercises (each exercise must be graded on its own).

    cd tests && ../.venv/bin/python mutant_campaign.py 06-gpt [--only NAME ...] [--mutants FILE] [--json OUT] [--keep DIR]

Exit status 1 when the solution loses a point or a mutant is not caught.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from course import Course, exercises, fill, nbgrader_meta, points_by_cell, solution_answers
from mutants import Mutant
from tfs.grader.judged import VISIBLE_FAILED

SOLUTION = "m000-solution"


def chapter_mutants(chapter: str, path: Path | None = None) -> list[Mutant]:
    """The chapter's list, or the ``MUTANTS`` of the file ``path`` (a list kept out of the repository, held out)."""
    if path is None:
        return importlib.import_module(f"mutants.ch{chapter[:2]}").MUTANTS
    spec = importlib.util.spec_from_file_location(f"held_out_{chapter[:2]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def cell_messages(notebook: nbformat.NotebookNode) -> dict[str, tuple[str, str]]:
    """``{test grade_id: (whole message, what its visible part said)}`` for the test cells of a graded notebook
    that failed or whose visible part failed."""
    found = {}
    for cell in notebook.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if not nbgrader_meta(cell).get("grade") or cell.cell_type != "code":
            continue
        message = "\n".join(o.get("evalue", "") if o.get("output_type") == "error" else o.get("text", "")
                            for o in cell.outputs if o.get("output_type") in ("error", "stream"))
        failed = any(o.get("output_type") == "error" for o in cell.outputs)
        visible = ""
        if VISIBLE_FAILED in message:  # the grader quotes a failed visible part (tfs.grader.judged)
            visible = message.split(VISIBLE_FAILED, 1)[1].split("\nThe hidden tests", 1)[0]
        if failed or visible:
            found[grade_id] = (message, visible)
    return found


class Campaign:
    def __init__(self, chapter: str, root: Path):
        self.chapter = chapter
        self.course = Course(root)
        self.course.release([chapter])
        self.sources = self.course.source(chapter)
        self.releases = self.course.released(chapter)
        self.answers = {name: solution_answers(nb) for name, nb in self.sources.items()}
        self.points = {}
        self.tests_of = {}  # solution grade_id -> its test grade_ids
        for nb in self.sources.values():
            self.points.update(points_by_cell(nb))
            self.tests_of.update(dict(exercises(nb)))

    def submit(self, student: str, mutant: Mutant | None) -> None:
        notebooks = {}
        for name, release in self.releases.items():
            answers = dict(self.answers[name])
            if mutant is not None and mutant.answer in answers:
                answers[mutant.answer] = mutant.apply(answers[mutant.answer])
            notebooks[name] = fill(release, answers)
        if mutant is not None and not any(mutant.answer in a for a in self.answers.values()):
            raise SystemExit(f"mutant {mutant.name}: no answer cell {mutant.answer} in {self.chapter}")
        self.course.submit(student, self.chapter, notebooks)

    def messages(self, student: str) -> dict[str, tuple[str, str]]:
        folder = self.course.root / "grading" / "autograded" / student / self.chapter
        found = {}
        for path in sorted(folder.glob("*.ipynb")):
            found.update(cell_messages(nbformat.read(path, as_version=4)))
        return found

    def verdict(self, student: str, mutant: Mutant) -> dict:
        grades = self.course.grades(self.chapter, student)
        own = self.tests_of[mutant.answer]
        lost = {g: self.points[g] - grades.get(g, 0.0) for g in self.points if grades.get(g, 0.0) < self.points[g]}
        own_messages = {g: message for g, message in self.messages(student).items() if g in own}
        return {
            "mutant": mutant.name, "answer": mutant.answer, "kind": mutant.kind, "names": mutant.names,
            "caught": any(g in lost for g in own),
            "elsewhere": {g: p for g, p in lost.items() if g not in own},
            "messages": {g: text[:3000] for g, (text, _) in own_messages.items()},
            "visible": "\n".join(visible for _, visible in own_messages.values()),
        }


def judge_naming(results: list[dict]) -> None:
    """Set ``named`` and ``named_in_feedback``: the mutant's pattern found in a line that is specific to it.

    A line shown for two mutants of the same answer (a fixed hint listing every mistake, "values differ") names
    neither: it is left out before matching.
    """
    def lines(text: str) -> set[str]:
        return {line.strip() for line in text.splitlines() if line.strip()}

    for result in results:
        others = [r for r in results if r["answer"] == result["answer"] and r is not result]
        generic = set().union(*(lines(r["visible"]) | lines("\n".join(r["messages"].values())) for r in others))
        pattern = re.compile(result["names"], re.IGNORECASE)

        def names(text: str) -> str | None:
            return next((line for line in lines(text) - generic if pattern.search(line)), None)

        result["named"] = names(result["visible"])
        result["named_in_feedback"] = result["named"] or names("\n".join(result["messages"].values()))


def summary(results: list[dict]) -> str:
    lines = []
    for kind in ("common", "rare"):
        group = [r for r in results if r["kind"] == kind]
        if group:
            share = lambda key: sum(bool(r[key]) for r in group) / len(group)  # noqa: E731
            lines.append(f"{kind}: {len(group)} mutants, caught {share('caught'):.0%}, named by a visible test "
                         f"{share('named'):.0%}, named in the feedback {share('named_in_feedback'):.0%}, "
                         f"points lost elsewhere {sum(bool(r['elsewhere']) for r in group)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="e.g. 06-gpt")
    parser.add_argument("--only", nargs="*", help="mutant names to grade (default: all)")
    parser.add_argument("--mutants", type=Path, help="a list file outside tests/mutants (default: the chapter's)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="make the course root here and keep it")
    args = parser.parse_args(argv)
    mutants = [m for m in chapter_mutants(args.chapter, args.mutants) if not args.only or m.name in args.only]
    if len({m.name for m in mutants}) != len(mutants):
        raise SystemExit("mutant names must be unique")
    root = args.keep or Path(tempfile.mkdtemp(prefix=f"campaign-{args.chapter}-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        campaign = Campaign(args.chapter, root)
        campaign.submit(SOLUTION, None)
        students = {f"m{i:03d}": m for i, m in enumerate(mutants, start=1)}
        for student, mutant in students.items():
            campaign.submit(student, mutant)
        start = time.perf_counter()
        for tens in range(len(students) // 10 + 1):  # m000-m009, m010-m019, ...: each autograde run stays short
            campaign.course.autograde(args.chapter, f"m{tens:02d}*")
        seconds = time.perf_counter() - start
        solution = campaign.course.grades(args.chapter, SOLUTION)
        solution_lost = {g: p for g, p in campaign.points.items() if solution.get(g, 0.0) < p}
        results = [campaign.verdict(student, mutant) for student, mutant in students.items()]
        judge_naming(results)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    for r in results:
        flags = ("caught" if r["caught"] else "MISSED") + (" named" if r["named"] else
                                                          " named-in-feedback" if r["named_in_feedback"] else " UNNAMED")
        print(f"{r['mutant']:<32} {r['kind']:<6} {flags}" + (f"  ELSEWHERE {r['elsewhere']}" if r["elsewhere"] else ""))
        if r["named"] or r["named_in_feedback"]:
            print(f"    by: {(r['named'] or r['named_in_feedback'])[:200]}")
        else:
            for grade_id, text in r["messages"].items():
                print(f"    {grade_id}: " + " | ".join(text.splitlines()[:6])[:600])
    print(summary(results))
    print(f"{len(students) + 1} submissions graded in {seconds:.0f} s; the solution lost "
          f"{solution_lost or 'nothing'}")
    if args.json:
        args.json.write_text(json.dumps({"chapter": args.chapter, "solution_lost": solution_lost,
                                         "seconds": seconds, "results": results}, indent=1), encoding="utf-8")
    return int(bool(solution_lost) or not all(r["caught"] for r in results))


if __name__ == "__main__":
    sys.exit(main())
