"""The exercise pipeline, with nbgrader as an instructor uses it (the autograde run of a class:
tests/test_autograde.py).

* the committed student versions are exactly what `nbgrader generate_assignment` makes;
* every source notebook passes all its tests, hidden ones included (nbgrader's Validator:
  its command-line `validate` exits 0 even when tests fail, so it cannot be used here);
* every untouched student version fails every graded test;
* every plausible wrong answer of ``exercises/wrong_answers.py`` fails the hidden tests of its
  task and passes every other task's: the notebook's cells run in this process, in order, as
  autograde runs them (a second each, not the ten of an nbgrader kernel).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from exercise_tools import (
    ASSIGNMENTS,
    EXERCISES,
    ROOT,
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
    task_ids,
)

# ----------------------------------------------------------------------------- structure


def test_every_source_has_its_committed_student_version():
    released = sorted(p.name for p in (EXERCISES / "release").iterdir() if p.is_dir())
    assert ASSIGNMENTS, "no exercise sources in exercises/source/"
    assert released == ASSIGNMENTS, "run `make exercises` and commit exercises/release/"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_layout_per_task(assignment):
    """Each task: a solution cell defining the function, a check cell, a graded test cell with
    points and hidden tests that uses no other task's function (tasks are graded on their own)."""
    nb = source_nb(assignment)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [cell_meta(c)["grade_id"] for c in nb.cells if cell_meta(c)]
    assert len(ids) == len(set(ids)) == len(nb.cells), "every cell needs a unique grade_id"
    tasks = task_ids(nb)
    assert 2 <= len(tasks) <= 4, f"{assignment}: {len(tasks)} tasks, want 2 to 4"
    by_id = {cell_meta(c)["grade_id"]: c for c in nb.cells}
    for task in tasks:
        sol = by_id[task].source
        assert f"def {task}(" in sol and "### BEGIN SOLUTION" in sol and "### END SOLUTION" in sol
        assert by_id[f"check_{task}"].source.strip() == f"check_{task}({task})"
        test = by_id[f"test_{task}"]
        assert (
            cell_meta(test)["grade"] and cell_meta(test)["locked"] and cell_meta(test)["points"] > 0
        )
        assert "### BEGIN HIDDEN TESTS" in test.source and "### END HIDDEN TESTS" in test.source
        others = [t for t in tasks if t != task and re.search(rf"(?<![\w.]){t}\(", test.source)]
        assert not others, f"test_{task} calls {others}: a wrong {others} would cost its points"
    for cell in nb.cells:
        if not cell_meta(cell).get("solution"):
            assert cell_meta(cell)["locked"], f"{cell_meta(cell)['grade_id']} should be read-only"


@pytest.mark.parametrize("kind", ["source", "release"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_committed_without_outputs(assignment, kind):
    nb = source_nb(assignment) if kind == "source" else release_nb(assignment)
    dirty = [
        cell_meta(c)["grade_id"]
        for c in nb.cells
        if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, f"{kind}/{assignment}: cells {dirty} have outputs; clear them"


def test_config_sets_a_per_cell_time_limit():
    cfg = nbgrader_config()
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
        nb = source_nb(wrong["assignment"])
        assert wrong["cell"] in task_ids(nb), student
        assert wrong["loses"] == "all" or wrong["loses"] in grade_cells(nb), student


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_task_has_a_wrong_answer_that_ci_grades(assignment):
    """At least one plausible mistake per task, whose check gives a hint (tests/test_checks.py)
    and which costs exactly that task's points when autograded (below)."""
    covered = {
        w["cell"]
        for w in WRONG.values()
        if w["assignment"] == assignment and w["hint"] is not None and w["loses"] != "all"
    }
    missing = [task for task in task_ids(source_nb(assignment)) if task not in covered]
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
    course = course_copy(tmp_path)
    for assignment in ASSIGNMENTS:
        run_nbgrader(["generate_assignment", assignment, "--no-db", "--force"], course)
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

    return Validator(config=nbgrader_config()).validate(str(path))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_passes_all_its_tests_hidden_ones_included(assignment):
    results = _validate(EXERCISES / "source" / assignment / f"{assignment}.ipynb")
    failed = [f["raw_error"][-1500:] for f in results.get("failed", [])]
    assert not results, f"{assignment}: the solutions fail tests:\n" + "\n\n".join(failed)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_student_version_fails_every_graded_test(assignment):
    nb = release_nb(assignment)
    results = _validate(EXERCISES / "release" / assignment / f"{assignment}.ipynb")
    assert set(results) == {"failed"}, results.keys()
    failed = {f["source"] for f in results["failed"]}
    graded = {c.source.strip() for c in nb.cells if cell_meta(c).get("grade")}
    assert failed == graded, f"these tests pass without any work: {graded - failed}"
    assert all("NotImplementedError" in f["raw_error"] for f in results["failed"])


# ----------------------------------------------------------------------------- wrong answers


def _failed_tests(assignment: str, replace: dict[str, str]) -> dict[str, str]:
    """Run the notebook as autograde does, in this process: every code cell of the source in
    order (tests with their hidden parts), the solution cells as a student wrote them (the
    cells in ``replace``, the others solved right), each cell's error caught so that the next
    cells run. Returns {graded test cell: its error} for the graded cells that raised. The cells
    run in a module installed as ``__main__``, as a kernel runs them (the checks look there for
    a learner's own names of the functions they switch off)."""
    main = types.ModuleType("__main__")
    ns = main.__dict__
    failed = {}
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = main
    try:
        for cell in source_nb(assignment).cells:
            if cell.cell_type != "code":
                continue
            meta = cell_meta(cell)
            code = cell.source
            if meta.get("solution"):
                code = replace.get(meta["grade_id"], solution_code(cell))
            try:
                exec(compile(code, f"<cell {meta['grade_id']}>", "exec"), ns)
            except Exception as e:  # noqa: BLE001 - as in a notebook: the error, then the next cell
                if meta.get("grade"):
                    failed[meta["grade_id"]] = f"{type(e).__name__}: {e}"[:300]
    finally:
        sys.modules["__main__"] = saved
    return failed


@pytest.mark.parametrize("student", [s for s, w in WRONG.items() if runs_in_process(w)], ids=str)
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
