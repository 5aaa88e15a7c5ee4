"""`nbgrader autograde`, as an instructor runs it, over a class of fake students: a right answer,
the first wrong answer of each task of ``exercises/wrong_answers.py`` (tests/test_exercises.py
runs every one of them through the hidden tests), the runaway and the crash, in one run per
assignment. Each wrong answer loses the points of its task and only those, an infinite loop is
stopped by the per-cell time limit and scores 0 on its task, a submission that kills its kernel
scores 0, and the other submissions of the same run are graded normally; `nbgrader export`
writes the scores to a CSV, `generate_feedback` shows the visible tests and hides the others.

Run with `-s` to see the autograde wall time per submission and the points of each student.
"""

from __future__ import annotations

import csv
import html
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from exercise_tools import (
    ASSIGNMENTS,
    CELL_TIMEOUT,
    WRONG,
    cell_meta,
    course_copy,
    grade_cells,
    nbgrader_config,
    release_nb,
    run_nbgrader,
    runs_in_process,
    solution_code,
    source_nb,
    visible_and_hidden_lines,
)

pytestmark = pytest.mark.slow  # about a minute per assignment: scheduled first (conftest.py)


def _submission(assignment: str, replace: dict[str, str]):
    """The student version with every task solved, except the cells in ``replace``."""
    source = {cell_meta(c)["grade_id"]: c for c in source_nb(assignment).cells}
    nb = release_nb(assignment)
    for cell in nb.cells:
        grade_id = cell_meta(cell).get("grade_id")
        if cell_meta(cell).get("solution"):
            cell.source = replace.get(grade_id, solution_code(source[grade_id]))
    return nb


def _class(assignment: str) -> dict[str, dict]:
    """student -> {"nb": notebook, "loses": grade_id | "all" | None}: a right answer, the first
    wrong answer of each task, and every one that only nbgrader can run (a runaway, a crash)."""
    students = {"correct": {"nb": _submission(assignment, {}), "loses": None}}
    tasks = set()
    for student, wrong in WRONG.items():
        if wrong["assignment"] != assignment:
            continue
        if runs_in_process(wrong):
            if wrong["cell"] in tasks:
                continue  # its other mistakes: tests/test_exercises.py runs them
            tasks.add(wrong["cell"])
        nb = _submission(assignment, {wrong["cell"]: wrong["code"]})
        students[student] = {"nb": nb, "loses": wrong["loses"]}
    return students


_TIMING_HOOK = """

# --- added by tests/test_autograde.py: when each submission starts being graded
import json as _json
import time as _time


def _started(assignment, student, notebooks):  # notebooks: submitted/<student>/<assignment>/*
    with open({path!r}, "a") as f:
        f.write(_json.dumps({"notebook": notebooks[0], "t": _time.time()}) + "\\n")


c.Autograde.pre_convert_hook = _started
"""


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_a_class_with_wrong_answers_and_a_runaway(assignment, tmp_path):
    course = course_copy(tmp_path)
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(_TIMING_HOOK.replace("{path!r}", repr(str(course / "started.jsonl"))))
    # As the instructor does: record the assignment and its tests in the gradebook ...
    run_nbgrader(["generate_assignment", assignment, "--force"], course)
    # ... collect the submissions into submitted/<student>/<assignment>/ ...
    students = _class(assignment)
    for student, sub in students.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(sub["nb"], folder / f"{assignment}.ipynb")
    # ... and grade them all in one run.
    start = time.time()
    res = run_nbgrader(
        ["autograde", assignment, "--force", f"--Execute.timeout={CELL_TIMEOUT}"],
        course,
        check=False,
    )
    wall = time.time() - start
    log = res.stdout + res.stderr
    crashed = {s for s, sub in students.items() if sub["loses"] == "all"}
    failed = set(
        re.findall(rf"error processing assignment '{assignment}' for student '(\w+)'", log)
    )
    assert failed == crashed, f"nbgrader could not grade {failed - crashed}:\n{log[-6000:]}"
    assert res.returncode == (1 if crashed else 0), log[-6000:]

    # The scores, per test cell, from the gradebook.
    from nbgrader.api import Gradebook

    points = grade_cells(source_nb(assignment))
    with Gradebook(
        f"sqlite:///{course / 'gradebook.db'}", nbgrader_config().CourseDirectory.course_id
    ) as gb:
        scores = {
            s: {g.name: g.score for g in gb.find_submission(assignment, s).notebooks[0].grades}
            for s in students
        }

    # The CSV an instructor gets from `nbgrader export`.
    run_nbgrader(["export", "--to", "grades.csv"], course)
    with open(course / "grades.csv", newline="") as f:
        csv_scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}

    # Feedback for the students: each task's points and the visible tests, not the hidden ones.
    run_nbgrader(["generate_feedback", assignment], course)
    for student in set(students) - crashed:  # a crashed kernel leaves nothing to give feedback on
        assert (course / "feedback" / student / assignment / f"{assignment}.html").exists()
    page = (course / "feedback" / "correct" / assignment / f"{assignment}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    visible, hidden = visible_and_hidden_lines(assignment)
    assert all(line in text for line in visible), "the feedback should show the visible tests"
    leaked = [line for line in hidden if line in text]
    assert not leaked, f"the feedback shows hidden tests: {leaked}"

    # Wall time per submission: from its start to the next one's (or the end of the run).
    starts = sorted(
        (r["t"], Path(r["notebook"]).parts[-3])
        for r in map(json.loads, (course / "started.jsonl").read_text().splitlines())
    )
    ends = [t for t, _ in starts[1:]] + [start + wall]
    seconds = {s: end - t for (t, s), end in zip(starts, ends, strict=True)}

    print(
        f"\n{assignment}: autograde of {len(students)} submissions took {wall:.1f} s "
        f"(per-cell limit {CELL_TIMEOUT} s); points {points}"
    )
    for s in students:
        print(f"  {s:24s} {seconds[s]:5.1f} s  {scores[s]}  total {csv_scores[s]:g}")

    total = sum(points.values())
    for student, sub in students.items():
        loses = sub["loses"]
        want = {g: 0.0 if loses in (g, "all") else float(p) for g, p in points.items()}
        assert scores[student] == want, f"{student}: got {scores[student]}, want {want}"
        assert csv_scores[student] == sum(want.values()), student
    assert csv_scores["correct"] == total
    # The per-cell limit stops a runaway: an infinite loop costs about the limit per cell it hangs.
    for student, wrong in WRONG.items():
        if wrong["assignment"] == assignment and "infinite" in student:
            assert seconds[student] < 3 * CELL_TIMEOUT + 30, seconds
