"""Why the shipped generators are evaluated in chunks: on a CPU, one big batch can be slower per
image than the same images in smaller batches (the working set leaves the cache).

    .venv/bin/python benchmarks/bench_batch_size.py [--repeats 5] [--threads 2]

Side by side, in one run, on the same inputs:

- ``gan``: its generator on 1,000 codes at once, against ``GAN.draw``'s chunks of 128 (what
  ``sample`` and every ``generator_report`` run). Most of the time of the single batch is torch's
  nearest-neighbour upsampling.
- ``vae``: its decoder on 2,000 codes at once (20 digits x 100 samples, one chunk of ``nll``),
  against ``VAE.nll``'s sub-batches of 500.
- the judge: its features of the 1,000 held-out digits in batches of 500 (``judge_features``'
  former default) against batches of 128 (its default), as every Fréchet distance computes them.

It prints the median seconds of each and checks that the outputs agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib import weights
from course_lib.data import digits
from course_lib.judge import load_judge
from course_lib.models import in_batches


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_fives(fn):
    """``fn`` on batches of 500: the judge's former batch size, the "one batch" column."""
    return lambda x: in_batches(fn, 500, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    with torch.no_grad():
        gan = weights.load("gan").eval()
        z = torch.randn(1000, gan.z_dim, generator=gen)
        rows.append(("gan generator, 1,000 codes", gan.generator, z, 128))
        vae = weights.load("vae").eval()
        z = torch.randn(2000, vae.z_dim, generator=gen)
        rows.append(("vae decoder, 2,000 codes", vae.decode, z, 500))
        judge = load_judge()
        rows.append(
            ("judge, 1,000 digits by 500", in_fives(judge.features), digits("test")[0], 128)
        )
        print(f"{'':28s} {'one batch':>10s} {'chunks':>14s} {'speed-up':>9s}  max difference")
        for name, fn, z, size in rows:
            one = median_seconds(lambda fn=fn, z=z: fn(z), args.repeats)
            chunked = median_seconds(lambda fn=fn, z=z, s=size: in_batches(fn, s, z), args.repeats)
            gap = (fn(z) - in_batches(fn, size, z)).abs().max().item()
            speed_up = one / chunked
            print(f"{name:28s} {one:9.3f}s {chunked:7.3f}s ({size:3d}) {speed_up:8.1f}x  {gap:.1e}")


if __name__ == "__main__":
    main()
