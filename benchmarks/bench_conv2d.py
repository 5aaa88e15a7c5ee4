"""Time conv2d forward: loops (scratch.conv2d_naive) vs vectorised NumPy (scratch.conv2d) vs
torch.nn.functional.conv2d, on N=64, C=8, 28x28, F=16, 3x3, padding 1, float32, 2 threads.

    .venv/bin/python benchmarks/bench_conv2d.py [--repeats 50]

Prints the median time of each and the ratios. Each implementation is timed in its own Python
process: after NumPy's OpenBLAS threads have run, they keep spinning for a while and slow torch's
OpenMP threads in the same process by 10x or more (and the other way round).
The figures go in change notes, not in tests: these machines are noisy.
"""

from __future__ import annotations

import os

THREADS = "2"
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, THREADS)

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from course_lib import scratch  # noqa: E402


def conv2d_einsum(x, w, b, padding: int):
    """The plain vectorised version, for comparison: sliding windows contracted by einsum."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(xp, w.shape[2:], axis=(2, 3))  # N x C x OH x OW x KH x KW
    y = np.einsum("nchwij,fcij->nfhw", windows, w, optimize="greedy")
    return y + b.reshape(1, -1, 1, 1)


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


IMPLEMENTATIONS = {
    "numpy loops (conv2d_naive)": "naive",
    "numpy sliding windows + einsum": "einsum",
    "numpy vectorised (conv2d)": "vectorised",
    "torch F.conv2d": "torch",
}


def _problem():
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 28, 28), dtype=np.float32)
    w = (rng.standard_normal((16, 8, 3, 3)) / 9).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    return x, w, b


def time_one(which: str, repeats: int) -> float:
    """Median milliseconds of one implementation, after checking it against torch."""
    torch.set_num_threads(int(THREADS))
    x, w, b = _problem()
    xt, wt, bt = map(torch.from_numpy, (x, w, b))
    fns = {
        "naive": lambda: scratch.conv2d_naive(x, w, b, padding=1),
        "einsum": lambda: conv2d_einsum(x, w, b, 1),
        "vectorised": lambda: scratch.conv2d(x, w, b, padding=1),
        "torch": lambda: F.conv2d(xt, wt, bt, padding=1).numpy(),
    }
    with torch.no_grad():
        want = F.conv2d(xt, wt, bt, padding=1).numpy()
        if which != "naive":  # the loops take seconds; the unit tests check them
            err = np.abs(fns[which]() - want).max()
            assert err < 1e-5, f"{which} disagrees with torch by {err:.2e}"
        return median_ms(fns[which], repeats, warmup=0 if which == "naive" else 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per version")
    parser.add_argument("--only", choices=list(IMPLEMENTATIONS.values()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:  # child process: time one implementation, print the number
        reps = args.naive_repeats if args.only == "naive" else args.repeats
        print(time_one(args.only, reps))
        return
    results: dict[str, list[float]] = {}
    for round_ in range(args.processes):
        for name, which in IMPLEMENTATIONS.items():
            if which == "naive" and round_ > 0:
                continue  # seconds per call: once is enough
            cmd = [sys.executable, __file__, "--only", which, "--repeats", str(args.repeats),
                   "--naive-repeats", str(args.naive_repeats)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results.setdefault(name, []).append(float(out.strip().splitlines()[-1]))
    # Torch's time varies from process to process on a shared 2-core machine (its two OpenMP
    # threads stall whenever another process takes a core), so report the spread.
    best = {name: min(ms) for name, ms in results.items()}
    mid = {name: statistics.median(ms) for name, ms in results.items()}
    ref_best, ref_mid = best["torch F.conv2d"], mid["torch F.conv2d"]
    print(f"conv2d forward, N=64 C=8 28x28 F=16 3x3 pad 1 float32, {THREADS} threads")
    print(
        f"numpy {np.__version__}, torch {torch.__version__}; {args.processes} fresh processes per"
    )
    print("version, each the median of its repeats; 'best' is the fastest process")
    print(f"{'implementation':32s} {'best ms':>9s} {'median ms':>10s} {'x torch best':>13s} "
          f"{'x torch median':>15s}")  # fmt: skip
    for name in results:
        print(f"{name:32s} {best[name]:9.2f} {mid[name]:10.2f} {best[name] / ref_best:13.1f} "
              f"{mid[name] / ref_mid:15.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
