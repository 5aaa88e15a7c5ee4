"""The shipped generators judged by other judges: how much of their figures is the judge's?

    .venv/bin/python benchmarks/bench_judges.py                 # judges of seeds 0, 1, 2
    .venv/bin/python benchmarks/bench_judges.py --seeds 1 2 3 --draws 12 \\
        --candidate gan=/tmp/gan.pt                             # a retrained gan beside it

Every generator figure of the course (Fréchet distance, class histogram, accuracy on requested
classes) comes from one classifier, the shipped judge (``classifier.JUDGE``, seed 0). Goals are
re-measured independently with other judges, so a generator tuned to this judge's features
would be found out. This script trains a judge for each seed of ``--seeds`` by the judge's
recipe (seed 0 is the shipped one, loaded; about 25 s each on 2 cores) and prints, per judge:

* its accuracy on the held-out digits, and the Fréchet distance of 1,000 real training digits
  to them: the floor a perfect generator would score with that judge (about 10);
* for each shipped generator (``gan``, ``vae``, ``vae_mixture``; the conditional ``cgan``,
  ``cvae``; and ``gan+rejection``, the ``gan`` sampled through its discriminator) over
  ``--draws`` draws of 1,000 samples (generator seeds 0, 1, ...): the Fréchet distance to the
  held-out digits, mean and standard deviation, and the same relative to the judge's floor;
  for an unconditional one the draws with every class between 7% and 13% and the pooled class
  histogram's extremes; for a conditional one the accuracy on requested classes.

``--candidate NAME=PATH`` judges a file written by ``python -m course_lib.weights build NAME
--out PATH`` the same way, beside the shipped one (to compare two trainings of a recipe).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from course_lib import classifier, judge, metrics, weights
from course_lib.data import digits
from course_lib.generative import rejection

GENERATORS = ("gan", "gan+rejection", "cgan", "vae", "vae_mixture", "cvae")


def load(name: str, path=None):
    """A shipped generator by name; ``gan+rejection`` is the shipped ``gan`` sampled through its
    discriminator (``rejection.RejectionSampler``, its default ``gamma``)."""
    if name == "gan+rejection":
        return rejection.RejectionSampler(weights.load("gan", path=path))
    return weights.load(name, path=path)


def judged(model, other_judge, draws: int) -> dict:
    """The generator's figures by ``other_judge`` over ``draws`` seeded draws of 1,000."""
    reports = [
        metrics.generator_report(
            model, generator=torch.Generator().manual_seed(s), judge=other_judge
        )
        for s in range(draws)
    ]
    fds = np.array([r["fid_test"] for r in reports])
    hists = np.array([r["class_histogram"] for r in reports])
    out = {"fd": fds.mean(), "fd_sd": fds.std(ddof=1) if draws > 1 else 0.0}
    if "accuracy" in reports[0]:
        out["accuracy"] = float(np.mean([r["accuracy"] for r in reports]))
    else:
        out["balanced"] = int(((hists.min(1) >= 0.07) & (hists.max(1) <= 0.13)).sum())
        pooled = hists.mean(0)
        out["pooled"] = (100 * pooled.min(), 100 * pooled.max())
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="judges' seeds")
    parser.add_argument("--draws", type=int, default=6, help="draws of 1,000 per generator")
    parser.add_argument("--only", nargs="*", choices=GENERATORS, help="default: all")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    torch.set_num_threads(min(2, torch.get_num_threads()))

    models = {name: load(name) for name in args.only or GENERATORS}
    for item in args.candidate:
        name, _, path = item.partition("=")
        if name not in GENERATORS or not path:
            parser.error(f"--candidate wants NAME=PATH with NAME one of {GENERATORS}, got {item!r}")
        models[f"{name} ({path})"] = load(name, path=path)

    x_train, _ = digits("train")
    x_test, y_test = digits("test")
    for seed in args.seeds:
        start = time.perf_counter()
        other = judge.judge_of_seed(seed)
        shipped = seed == classifier.JUDGE.seed
        how = "shipped" if shipped else f"trained in {time.perf_counter() - start:.0f} s"
        accuracy = classifier.evaluate_classifier(other, x_test, y_test)["accuracy"]
        floor = metrics.frechet_distance(x_train[:1000], x_test, judge=other)
        print(
            f"\njudge of seed {seed} ({how}): held-out accuracy {accuracy:.3f}; "
            f"1,000 real training digits at Fréchet distance {floor:.1f}"
        )
        for name, model in models.items():
            r = judged(model, other, args.draws)
            line = (
                f"  {name:24s} FD {r['fd']:6.1f} +- {r['fd_sd']:4.1f} "
                f"({r['fd'] / floor:.2f}x the real digits')"
            )
            if "accuracy" in r:
                line += f"   accuracy on requested classes {r['accuracy']:.3f}"
            else:
                lo, hi = r["pooled"]
                line += (
                    f"   every class 7-13% in {r['balanced']}/{args.draws} draws; "
                    f"pooled classes {lo:.1f}-{hi:.1f}%"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
