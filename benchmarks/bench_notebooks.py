"""How long each notebook takes, run alone: the figures behind the goals "at most 30 s in fast
mode, at most 5 minutes in full mode, on 2 cores".

    .venv/bin/python benchmarks/bench_notebooks.py                      # fast mode, all of them
    .venv/bin/python benchmarks/bench_notebooks.py --mode full --only 06 07
    .venv/bin/python benchmarks/bench_notebooks.py --mode both --cells 1

Each notebook runs by itself, top to bottom, in one kernel limited to ``--threads`` threads (2 by
default: the course's 2-core laptop), on a copy in a temporary directory, as ``make site`` runs
them. Its time counts from the kernel's start to the last cell's end. ``--cells S`` also lists
the cells that took more than S seconds (nbclient records when each cell started and ended).

The same notebook takes three to four times longer on some machines than on others, so the
table starts with the machine's speed: the median seconds of one training step of the shipped
GAN's recipe (``gan.GAN_RECIPE``), measured here. On the machine that trained the shipped
``gan`` it was 0.074 s. Run on an otherwise idle machine: in CI, ``make site`` runs two notebooks
at a time, and their times there are not these.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
import torch
from bench_generators import median_step_seconds  # a script beside this one

from course_lib.generative import gan
from course_lib.runtime import seed_everything
from course_lib.site import execute

ROOT = Path(__file__).resolve().parents[1]

GOALS = {"fast": 30.0, "full": 300.0}  # seconds per notebook


def gan_step_seconds(steps: int = 24) -> float:
    """The median wall time of one step of ``gan.GAN_RECIPE`` on a batch of training digits
    (the first two steps, warming up, not counted): this machine's speed."""
    seed_everything(0)
    recipe = gan.GAN_RECIPE
    model = recipe.build()
    return median_step_seconds(
        recipe.step(model, recipe.optimizers(model)), recipe.batch_size, steps
    )


def cell_seconds(nb) -> list[tuple[int, float, str]]:
    """``(index, seconds, first line)`` of every executed code cell of ``nb``, from the
    timestamps nbclient records (``iopub.execute_input`` to ``shell.execute_reply``)."""
    out = []
    for index, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" not in stamps or "shell.execute_reply" not in stamps:
            continue
        start = datetime.fromisoformat(stamps["iopub.execute_input"])
        end = datetime.fromisoformat(stamps["shell.execute_reply"])
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        out.append((index, (end - start).total_seconds(), first[:60]))
    return out


def run(notebook: Path, mode: str, workdir: Path) -> tuple[float, list]:
    """Execute ``notebook`` in ``mode`` ("fast" or "full"); returns its seconds and its cells'."""
    if mode == "fast":
        os.environ["COURSE_FAST"] = "1"  # the kernel inherits the environment
    else:
        os.environ.pop("COURSE_FAST", None)
    start = time.perf_counter()
    executed = execute(notebook, workdir / mode, timeout=1800)
    seconds = time.perf_counter() - start
    return seconds, cell_seconds(nbformat.read(executed, as_version=4))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="fast")
    parser.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers, e.g. 06 07")
    parser.add_argument("--threads", type=int, default=2, help="threads of each kernel")
    parser.add_argument("--cells", type=float, metavar="S", help="list cells slower than S s")
    args = parser.parse_args(argv)

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if nb.name[:2] in args.only]
        if not notebooks:
            parser.error(f"no notebook numbered {' '.join(args.only)}")
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    speed = gan_step_seconds()
    print(f"this machine: {speed:.3f} s per step of the shipped GAN recipe ({args.threads} "
          f"threads; 0.074 s on the machine that trained the shipped gan)", flush=True)  # fmt: skip

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for notebook in notebooks:
            for mode in modes:
                seconds, cells = run(notebook, mode, Path(tmp))
                rows[notebook.name, mode] = seconds
                verdict = "ok" if seconds <= GOALS[mode] else "OVER"
                print(f"{notebook.name:28s} {mode:4s} {seconds:7.1f} s  (goal {GOALS[mode]:g} s: "
                      f"{verdict})", flush=True)  # fmt: skip
                for index, cell_time, first in cells:
                    if args.cells is not None and cell_time > args.cells:
                        print(f"    cell {index:3d} {cell_time:6.1f} s  {first}", flush=True)

    print(f"\n{'notebook':28s}" + "".join(f"{m:>10s}" for m in modes))
    for notebook in notebooks:
        print(f"{notebook.name:28s}" + "".join(f"{rows[notebook.name, m]:9.1f}s" for m in modes))
    for mode in modes:
        total = sum(rows[nb.name, mode] for nb in notebooks)
        over = [nb.name[:2] for nb in notebooks if rows[nb.name, mode] > GOALS[mode]]
        print(f"{mode}: {total:.0f} s in all; over {GOALS[mode]:g} s: {', '.join(over) or 'none'}")


if __name__ == "__main__":
    main()
