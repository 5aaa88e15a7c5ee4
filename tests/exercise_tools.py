"""Helpers of the exercise tests (tests/test_exercises.py, tests/test_autograde.py): the course's
exercises, their nbgrader metadata, the wrong answers of ``exercises/wrong_answers.py`` and the
nbgrader command line of this environment."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
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


def nbgrader_config() -> Config:
    """The committed exercises/nbgrader_config.py, as nbgrader reads it."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(EXERCISES)).load_config()


def run_nbgrader(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
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


def course_copy(tmp_path: Path) -> Path:
    """A throw-away course directory: the committed config and sources, no release, no state."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(EXERCISES / "nbgrader_config.py", course)
    shutil.copytree(EXERCISES / "source", course / "source")
    return course


def cell_meta(cell) -> dict:
    """nbgrader's metadata of a cell (grade_id, solution, grade, locked, points)."""
    return cell.metadata.get("nbgrader", {})


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)


def source_nb(assignment: str):
    return read_nb(EXERCISES / "source" / assignment / f"{assignment}.ipynb")


def release_nb(assignment: str):
    return read_nb(EXERCISES / "release" / assignment / f"{assignment}.ipynb")


def task_ids(nb) -> list[str]:
    """grade_ids of the solution cells, in order: one per task, named like the function."""
    return [cell_meta(c)["grade_id"] for c in nb.cells if cell_meta(c).get("solution")]


def visible_and_hidden_lines(assignment: str) -> tuple[list[str], list[str]]:
    """The longer code lines of the graded test cells: (visible, hidden)."""
    visible, hidden = [], []
    for cell in source_nb(assignment).cells:
        if cell_meta(cell).get("grade"):
            shown, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
            secret = rest.partition("### END HIDDEN TESTS")[0]
            visible += [line.strip() for line in shown.splitlines() if len(line.strip()) > 30]
            hidden += [line.strip() for line in secret.splitlines() if len(line.strip()) > 30]
    return visible, hidden


def grade_cells(nb) -> dict[str, int]:
    """graded test cell (grade_id) -> its points."""
    return {
        cell_meta(c)["grade_id"]: cell_meta(c)["points"]
        for c in nb.cells
        if cell_meta(c).get("grade")
    }


def solution_code(source_cell) -> str:
    """A solution cell as a student would write it: without nbgrader's markers."""
    lines = source_cell.source.splitlines()
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return "\n".join(line for line in lines if not any(m in line for m in markers))


def runs_in_process(wrong: dict) -> bool:
    """Whether a wrong answer can run in this process: not a runaway, not a crash (no hint)."""
    return wrong["hint"] is not None
