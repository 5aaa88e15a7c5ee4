"""How tight is the shipped VAE's likelihood bound? The importance-weighted estimate of
-log p(x) on the 1,000 binarised held-out digits, for a growing number of samples k (Burda et al.
2016 evaluate with k = 5,000; the course's `weights check` uses k = 500 to stay quick).

    .venv/bin/python benchmarks/bench_vae_nll.py [--k 1 50 500 5000] [--model vae | vae_mixture]

Every k gives an upper bound on -log p(x) in expectation; it falls as k grows and the gap to the
true value shrinks like 1/k. The table prints the mean in nats per digit, the standard error over
digits, and the seconds each estimate took (run it on an idle machine: about 7 minutes on 2 cores
for the default ks, 6.5 of them for k = 5,000).
"""

from __future__ import annotations

import argparse
import time

import torch

from course_lib import data, weights


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 50, 500, 5000])
    parser.add_argument("--model", default="vae", choices=["vae", "vae_mixture"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model = weights.load(args.model)
    x, _ = data.binarized_digits("test")  # the literature's binarisation, fixed seed
    print(f"{args.model}: importance-weighted -log p(x) on {len(x)} held-out binarised digits")
    print(f"{'k':>6} {'nats':>8} {'s.e.':>6} {'seconds':>8}")
    for k in args.k:
        start = time.perf_counter()
        values = model.nll(x, k=k, generator=torch.Generator().manual_seed(args.seed))
        seconds = time.perf_counter() - start
        stderr = values.std().item() / len(values) ** 0.5
        print(f"{k:>6} {values.mean().item():>8.2f} {stderr:>6.2f} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
