"""pytest hooks for the whole repository: the tests in tests/ and the notebooks nbval runs."""

from __future__ import annotations

from collections import Counter, defaultdict

# Seconds nbval waits for each output message of a cell after the cell has finished. nbval
# hard-codes 5 (IPyNbCell.output_timeout; nbval issues #136 and #231): on a busy 2-core machine
# (two pytest workers, each with a kernel) a figure can take longer than that to arrive, and
# the cell fails with "Timeout of 5 seconds exceeded waiting for output" although it ran. A
# cell that hangs is still stopped by --nbval-cell-timeout.
NBVAL_OUTPUT_TIMEOUT = 60


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if type(item).__name__ == "IPyNbCell" and hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT
    slow_first(items)


def slow_first(items: list) -> None:
    """Order the test files (in place, each file's tests kept together and in order): those
    with the most tests marked ``slow`` first, then the notebooks, then the rest.

    `--dist loadfile` hands whole files to the two workers in collection order (with
    `--no-loadscope-reorder`, in pyproject.toml's addopts; its default orders them by their
    number of tests instead). A long file handed out last runs alone while the other worker
    sits idle: in one CI run the exercise tests (one file then, 950 s) still ran long after the
    other worker had finished everything else (990 s in all). Longest first is the classic
    greedy remedy."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: (-slow[item.path], item.path.suffix != ".ipynb"))


def pytest_terminal_summary(terminalreporter) -> None:
    """Seconds per test file or notebook (setup, call and teardown), the slowest 15: where the
    test time goes, in every CI log."""
    seconds: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) and getattr(report, "nodeid", ""):
                seconds[report.nodeid.split("::")[0]] += report.duration
    if len(seconds) > 1:
        terminalreporter.write_sep("=", f"seconds per file, the slowest 15 of {len(seconds)}")
        for path, total in sorted(seconds.items(), key=lambda kv: -kv[1])[:15]:
            terminalreporter.write_line(f"{total:8.1f} s  {path}")
