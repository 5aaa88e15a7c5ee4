"""pytest hooks for the whole repository: the tests in tests/ and the notebooks nbval runs."""

from __future__ import annotations

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
