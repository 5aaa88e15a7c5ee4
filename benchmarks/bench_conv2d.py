"""Time conv2d forward: loops (scratch.conv2d_naive) vs vectorised NumPy (scratch.conv2d) vs
torch.nn.functional.conv2d, on N=64, C=8, 28x28, F=16, 3x3, padding 1, float32, 2 threads.

    .venv/bin/python benchmarks/bench_conv2d.py [--repeats 50]

Prints the median time of each and the ratios. Each implementation is timed in its own block
(torch last), because interleaving torch's OpenMP pool with OpenBLAS threads slows both.
The figures go in change notes, not in tests: these machines are noisy.
"""

from __future__ import annotations

import os

THREADS = "2"
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, THREADS)

import argparse  # noqa: E402
import statistics  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--naive-repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(int(THREADS))

    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 28, 28), dtype=np.float32)
    w = (rng.standard_normal((16, 8, 3, 3)) / 9).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    xt, wt, bt = map(torch.from_numpy, (x, w, b))
    with torch.no_grad():
        want = F.conv2d(xt, wt, bt, padding=1).numpy()
    err = np.abs(scratch.conv2d(x, w, b, padding=1) - want).max()
    assert err < 1e-5, f"vectorised conv2d disagrees with torch by {err:.2e}"
    assert np.abs(conv2d_einsum(x, w, b, 1) - want).max() < 1e-5

    results = {
        "numpy loops (conv2d_naive)": median_ms(
            lambda: scratch.conv2d_naive(x, w, b, padding=1), args.naive_repeats, warmup=0
        ),
        "numpy sliding windows + einsum": median_ms(
            lambda: conv2d_einsum(x, w, b, 1), args.repeats
        ),
        "numpy vectorised (conv2d)": median_ms(
            lambda: scratch.conv2d(x, w, b, padding=1), args.repeats
        ),
    }
    with torch.no_grad():
        results["torch F.conv2d"] = median_ms(lambda: F.conv2d(xt, wt, bt, padding=1), args.repeats)
    ref = results["torch F.conv2d"]
    print(f"conv2d forward, N=64 C=8 28x28 F=16 3x3 pad 1 float32, {THREADS} threads")
    print(f"numpy {np.__version__}, torch {torch.__version__}; max abs diff vs torch {err:.1e}")
    print(f"{'implementation':30s} {'median ms':>10s} {'x torch':>9s}")
    for name, ms in results.items():
        print(f"{name:30s} {ms:10.2f} {ms / ref:9.1f}")


if __name__ == "__main__":
    main()
