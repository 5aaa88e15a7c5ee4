"""The exercise pipeline, with nbgrader as an instructor uses it.

* the committed student versions are exactly what `nbgrader generate_assignment` makes;
* every source notebook passes all its tests, hidden ones included (nbgrader's Validator:
  its command-line `validate` exits 0 even when tests fail, so it cannot be used here);
* every untouched student version fails every graded test;
* every plausible wrong answer of ``exercises/wrong_answers.py`` fails the hidden tests of its
  task and passes every other task's: the notebook's cells run in this process, in order, as
  autograde runs them (a second each, not the ten of an nbgrader kernel);
* one `nbgrader autograde` run per assignment over a class of fake students (a right answer, the
  first wrong answer of each task, and the runaway and the crash): each wrong answer loses the
  points of its task and only those, an infinite loop is stopped by the per-cell time limit and
  scores 0 on its task, a submission that kills its kernel scores 0, and the other submissions
  of the same run are graded normally; `nbgrader export` writes the scores to a CSV.

Run with `-s` to see the autograde wall time per submission and the points of each student.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
ASSIGNMENTS = sorted(p.name for p in (EXERCISES / "source").iterdir() if p.is_dir())
CELL_TIMEOUT = 10  # per-cell time limit of the autograde runs here (the course's config: 60 s)


def _wrong_answers() -> dict[str, dict]:
    spec = importlib.util.spec_from_file_location("wrong_answers", EXERCISES / "wrong_answers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG_ANSWERS


WRONG = _wrong_answers()


def _config() -> Config:
    """The committed exercises/nbgrader_config.py, as nbgrader reads it."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(EXERCISES)).load_config()


def _nbgrader(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the nbgrader command line of this environment in ``cwd`` (a course directory)."""
    env = dict(os.environ)
    # nbgrader runs the `alembic` command when it creates a gradebook: put this venv's first.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    res = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    if check:
        assert res.returncode == 0, (
            f"`nbgrader {' '.join(args)}` failed with exit code {res.returncode}:\n"
            f"{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
        )
    return res


def _course_copy(tmp_path: Path) -> Path:
    """A throw-away course directory: the committed config and sources, no release, no state."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(EXERCISES / "nbgrader_config.py", course)
    shutil.copytree(EXERCISES / "source", course / "source")
    return course


def _nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _source_nb(assignment: str):
    return _read(EXERCISES / "source" / assignment / f"{assignment}.ipynb")


def _release_nb(assignment: str):
    return _read(EXERCISES / "release" / assignment / f"{assignment}.ipynb")


def _tasks(nb) -> list[str]:
    """grade_ids of the solution cells, in order: one per task, named like the function."""
    return [_nbg(c)["grade_id"] for c in nb.cells if _nbg(c).get("solution")]


def _test_lines(assignment: str) -> tuple[list[str], list[str]]:
    """The longer code lines of the graded test cells: (visible, hidden)."""
    visible, hidden = [], []
    for cell in _source_nb(assignment).cells:
        if _nbg(cell).get("grade"):
            shown, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
            secret = rest.partition("### END HIDDEN TESTS")[0]
            visible += [line.strip() for line in shown.splitlines() if len(line.strip()) > 30]
            hidden += [line.strip() for line in secret.splitlines() if len(line.strip()) > 30]
    return visible, hidden


def _grade_cells(nb) -> dict[str, int]:
    return {_nbg(c)["grade_id"]: _nbg(c)["points"] for c in nb.cells if _nbg(c).get("grade")}


# ----------------------------------------------------------------------------- structure


def test_every_source_has_its_committed_student_version():
    released = sorted(p.name for p in (EXERCISES / "release").iterdir() if p.is_dir())
    assert ASSIGNMENTS, "no exercise sources in exercises/source/"
    assert released == ASSIGNMENTS, "run `make exercises` and commit exercises/release/"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_layout_per_task(assignment):
    """Each task: a solution cell defining the function, a check cell, a graded test cell with
    points and hidden tests that uses no other task's function (tasks are graded on their own)."""
    nb = _source_nb(assignment)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [_nbg(c)["grade_id"] for c in nb.cells if _nbg(c)]
    assert len(ids) == len(set(ids)) == len(nb.cells), "every cell needs a unique grade_id"
    tasks = _tasks(nb)
    assert 2 <= len(tasks) <= 4, f"{assignment}: {len(tasks)} tasks, want 2 to 4"
    by_id = {_nbg(c)["grade_id"]: c for c in nb.cells}
    for task in tasks:
        sol = by_id[task].source
        assert f"def {task}(" in sol and "### BEGIN SOLUTION" in sol and "### END SOLUTION" in sol
        assert by_id[f"check_{task}"].source.strip() == f"check_{task}({task})"
        test = by_id[f"test_{task}"]
        assert _nbg(test)["grade"] and _nbg(test)["locked"] and _nbg(test)["points"] > 0
        assert "### BEGIN HIDDEN TESTS" in test.source and "### END HIDDEN TESTS" in test.source
        others = [t for t in tasks if t != task and re.search(rf"(?<![\w.]){t}\(", test.source)]
        assert not others, f"test_{task} calls {others}: a wrong {others} would cost its points"
    for cell in nb.cells:
        if not _nbg(cell).get("solution"):
            assert _nbg(cell)["locked"], f"{_nbg(cell)['grade_id']} should be read-only"


@pytest.mark.parametrize("kind", ["source", "release"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_committed_without_outputs(assignment, kind):
    nb = _source_nb(assignment) if kind == "source" else _release_nb(assignment)
    dirty = [
        _nbg(c)["grade_id"]
        for c in nb.cells
        if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, f"{kind}/{assignment}: cells {dirty} have outputs; clear them"


def test_config_sets_a_per_cell_time_limit():
    cfg = _config()
    assert 10 <= cfg.Execute.timeout <= 300, "Execute.timeout: seconds per cell while grading"
    assert cfg.Execute.interrupt_on_timeout is True


def test_grading_state_is_kept_out_of_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    state = [
        "gradebook.db",
        "submitted/",
        "autograded/",
        "feedback/",
        ".nbgrader.log",
        "grades.csv",
    ]
    for path in state:
        assert f"exercises/{path}" in ignored, f"add exercises/{path} to .gitignore"


def test_exercise_sources_pass_ruff():
    """The same lint as the course's notebooks (release/ is generated, so it is left out)."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "ruff").exists() or not (bin_dir / "nbqa").exists():
        pytest.skip("ruff and nbqa are not installed (pip install -e '.[dev]')")
    for args in (
        ["ruff", "check", "exercises"],
        ["ruff", "format", "--check", "exercises"],
        ["nbqa", "ruff", "exercises/source"],
    ):
        res = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=ROOT, capture_output=True)
        assert res.returncode == 0, f"{' '.join(args)}:\n{res.stdout.decode()}{res.stderr.decode()}"


def test_wrong_answers_name_real_cells():
    for student, wrong in WRONG.items():
        nb = _source_nb(wrong["assignment"])
        assert wrong["cell"] in _tasks(nb), student
        assert wrong["loses"] == "all" or wrong["loses"] in _grade_cells(nb), student


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_task_has_a_wrong_answer_that_ci_grades(assignment):
    """At least one plausible mistake per task, whose check gives a hint (tests/test_checks.py)
    and which costs exactly that task's points when autograded (below)."""
    covered = {
        w["cell"]
        for w in WRONG.values()
        if w["assignment"] == assignment and w["hint"] is not None and w["loses"] != "all"
    }
    missing = [task for task in _tasks(_source_nb(assignment)) if task not in covered]
    assert not missing, (
        f"{assignment}: add wrong answers for {missing} to exercises/wrong_answers.py"
    )


# ----------------------------------------------------------------------------- release


def _files(folder: Path) -> list[Path]:
    """Files under ``folder``, leaving out hidden ones (.ipynb_checkpoints of a local Jupyter)."""
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def test_student_versions_are_exactly_what_generate_assignment_makes(tmp_path):
    """Regenerate every student version from its source, as `make exercises` does, and compare
    with the committed files (as JSON: the content, not how a tool version lays it out)."""
    course = _course_copy(tmp_path)
    for assignment in ASSIGNMENTS:
        _nbgrader(["generate_assignment", assignment, "--no-db", "--force"], course)
    fix = "run `make exercises` and commit exercises/release/"
    made, committed = _files(course / "release"), _files(EXERCISES / "release")
    assert made == committed, f"exercises/release/ has other files than nbgrader makes: {fix}"
    for rel in made:
        new = json.loads((course / "release" / rel).read_text())
        old = json.loads((EXERCISES / "release" / rel).read_text())
        if new == old:
            continue
        cells = [
            c.get("id", i)
            for i, (c, d) in enumerate(zip(new["cells"], old["cells"], strict=False))
            if c != d
        ]
        raise AssertionError(
            f"exercises/release/{rel} is not what nbgrader generates from exercises/source/ "
            f"(cells that differ: {cells or 'the notebook metadata or the number of cells'}): {fix}"
        )


# ----------------------------------------------------------------------------- validation


def _validate(path: Path) -> dict:
    from nbgrader.validator import Validator

    return Validator(config=_config()).validate(str(path))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_passes_all_its_tests_hidden_ones_included(assignment):
    results = _validate(EXERCISES / "source" / assignment / f"{assignment}.ipynb")
    failed = [f["raw_error"][-1500:] for f in results.get("failed", [])]
    assert not results, f"{assignment}: the solutions fail tests:\n" + "\n\n".join(failed)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_student_version_fails_every_graded_test(assignment):
    nb = _release_nb(assignment)
    results = _validate(EXERCISES / "release" / assignment / f"{assignment}.ipynb")
    assert set(results) == {"failed"}, results.keys()
    failed = {f["source"] for f in results["failed"]}
    graded = {c.source.strip() for c in nb.cells if _nbg(c).get("grade")}
    assert failed == graded, f"these tests pass without any work: {graded - failed}"
    assert all("NotImplementedError" in f["raw_error"] for f in results["failed"])


# ----------------------------------------------------------------------------- autograde


def _solution_code(source_cell) -> str:
    """A solution cell as a student would write it: without nbgrader's markers."""
    lines = source_cell.source.splitlines()
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return "\n".join(line for line in lines if not any(m in line for m in markers))


def _submission(assignment: str, replace: dict[str, str]):
    """The student version with every task solved, except the cells in ``replace``."""
    source = {_nbg(c)["grade_id"]: c for c in _source_nb(assignment).cells}
    nb = _release_nb(assignment)
    for cell in nb.cells:
        grade_id = _nbg(cell).get("grade_id")
        if _nbg(cell).get("solution"):
            cell.source = replace.get(grade_id, _solution_code(source[grade_id]))
    return nb


def _in_process(wrong: dict) -> bool:
    """Whether a wrong answer can run in this process: not a runaway, not a crash (no hint)."""
    return wrong["hint"] is not None


def _class(assignment: str) -> dict[str, dict]:
    """student -> {"nb": notebook, "loses": grade_id | "all" | None}: a right answer, the first
    wrong answer of each task, and every one that only nbgrader can run (a runaway, a crash)."""
    students = {"correct": {"nb": _submission(assignment, {}), "loses": None}}
    tasks = set()
    for student, wrong in WRONG.items():
        if wrong["assignment"] != assignment:
            continue
        if _in_process(wrong):
            if wrong["cell"] in tasks:
                continue  # the other mistakes of this task: the in-process test below
            tasks.add(wrong["cell"])
        nb = _submission(assignment, {wrong["cell"]: wrong["code"]})
        students[student] = {"nb": nb, "loses": wrong["loses"]}
    return students


def _failed_tests(assignment: str, replace: dict[str, str]) -> dict[str, str]:
    """Run the notebook as autograde does, in this process: every code cell of the source in
    order (tests with their hidden parts), the solution cells as a student wrote them (the
    cells in ``replace``, the others solved right), each cell's error caught so that the next
    cells run. Returns {graded test cell: its error} for the graded cells that raised."""
    ns: dict = {}
    failed = {}
    for cell in _source_nb(assignment).cells:
        if cell.cell_type != "code":
            continue
        meta = _nbg(cell)
        code = cell.source
        if meta.get("solution"):
            code = replace.get(meta["grade_id"], _solution_code(cell))
        try:
            exec(compile(code, f"<cell {meta['grade_id']}>", "exec"), ns)
        except Exception as e:  # noqa: BLE001 - as in the notebook: the error, then the next cell
            if meta.get("grade"):
                failed[meta["grade_id"]] = f"{type(e).__name__}: {e}"[:300]
    return failed


@pytest.mark.parametrize("student", [s for s, w in WRONG.items() if _in_process(w)], ids=str)
def test_each_wrong_answer_fails_the_hidden_tests_of_its_task_and_only_those(student):
    wrong = WRONG[student]
    failed = _failed_tests(wrong["assignment"], {wrong["cell"]: wrong["code"]})
    assert set(failed) == {wrong["loses"]}, (
        f"{student} should fail {wrong['loses']} and only it; the failed tests: {failed}"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_right_answers_pass_every_test_when_run_as_in_the_wrong_answers_test(assignment):
    """The control of the test above: no cell fails with the solutions in."""
    assert _failed_tests(assignment, {}) == {}


_TIMING_HOOK = """

# --- added by tests/test_exercises.py: when each submission starts being graded
import json as _json
import time as _time


def _started(assignment, student, notebooks):  # notebooks: submitted/<student>/<assignment>/*
    with open({path!r}, "a") as f:
        f.write(_json.dumps({"notebook": notebooks[0], "t": _time.time()}) + "\\n")


c.Autograde.pre_convert_hook = _started
"""


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_a_class_with_wrong_answers_and_a_runaway(assignment, tmp_path):
    course = _course_copy(tmp_path)
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(_TIMING_HOOK.replace("{path!r}", repr(str(course / "started.jsonl"))))
    # As the instructor does: record the assignment and its tests in the gradebook ...
    _nbgrader(["generate_assignment", assignment, "--force"], course)
    # ... collect the submissions into submitted/<student>/<assignment>/ ...
    students = _class(assignment)
    for student, sub in students.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(sub["nb"], folder / f"{assignment}.ipynb")
    # ... and grade them all in one run.
    start = time.time()
    res = _nbgrader(
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

    points = _grade_cells(_source_nb(assignment))
    with Gradebook(
        f"sqlite:///{course / 'gradebook.db'}", _config().CourseDirectory.course_id
    ) as gb:
        scores = {
            s: {g.name: g.score for g in gb.find_submission(assignment, s).notebooks[0].grades}
            for s in students
        }

    # The CSV an instructor gets from `nbgrader export`.
    _nbgrader(["export", "--to", "grades.csv"], course)
    with open(course / "grades.csv", newline="") as f:
        csv_scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}

    # Feedback for the students: each task's points and the visible tests, not the hidden ones.
    _nbgrader(["generate_feedback", assignment], course)
    for student in set(students) - crashed:  # a crashed kernel leaves nothing to give feedback on
        assert (course / "feedback" / student / assignment / f"{assignment}.html").exists()
    page = (course / "feedback" / "correct" / assignment / f"{assignment}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    visible, hidden = _test_lines(assignment)
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
