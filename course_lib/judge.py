"""The judge: the course's digit classifier, used to evaluate every generator of the course.

It is ``models.DigitCNN`` trained on the 4,000 training digits with the recipe
``classifier.JUDGE`` (light augmentation, one-cycle Adam). Its weights ship inside the package
(``course_lib/weights/judge.pt``, about 2.8 MB) and are reproduced by

    python -m course_lib.weights build judge     # about 25 s on 2 idle CPU cores

``load_judge()`` gives the frozen judge (loaded once per process); ``judge_features`` its 512
penultimate-layer features, the space in which ``metrics.frechet_distance`` compares digits.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import torch

from course_lib import classifier
from course_lib.data import digits
from course_lib.models import DigitCNN, in_batches
from course_lib.train import load_checkpoint

WEIGHTS = Path(__file__).resolve().parent / "weights" / "judge.pt"


@lru_cache(maxsize=4)
def _load(path: str, device: str) -> DigitCNN:
    model = classifier.JUDGE.build()
    model.load_state_dict(load_checkpoint(path, map_location=device)["model"])
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_judge(device: str | torch.device = "cpu", path: str | Path = WEIGHTS) -> DigitCNN:
    """The trained judge, in eval mode with frozen weights (cached: loaded once per process).

    Raises ``FileNotFoundError`` with the command that recreates the weights if they are missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"the judge's weights are missing ({path}); recreate them with "
            "`python -m course_lib.weights build judge`"
        )
    return _load(str(path), str(torch.device(device)))


def judge_of_seed(seed: int) -> DigitCNN:
    """A judge trained by the judge's recipe with another seed, frozen, in eval mode, on the CPU:
    a second opinion on figures measured by the shipped judge (goals are re-measured with other
    judges). The recipe's own seed (0) gives the shipped judge, loaded, not retrained; any
    other seed trains one (about 25 s on 2 idle cores).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed == classifier.JUDGE.seed:
        return load_judge()
    recipe = dataclasses.replace(classifier.JUDGE, seed=seed)
    model, _ = classifier.train_classifier(recipe, progress=False)
    return model.cpu().eval().requires_grad_(False)


def as_judge(judge) -> DigitCNN:
    """``judge`` (a ``DigitCNN`` in eval mode on the CPU), or the shipped judge when it is
    None."""
    if judge is None:
        return load_judge()
    if not isinstance(judge, DigitCNN):
        raise TypeError(
            f"judge must be a DigitCNN (e.g. train_classifier's model), got {type(judge).__name__}"
        )
    if judge.training:
        raise ValueError("judge must be in eval mode (call judge.eval()): in training mode its "
                         "dropout makes the verdicts random")  # fmt: skip
    return judge


@torch.no_grad()
def judge_features(images: torch.Tensor, batch_size: int = 128, judge: DigitCNN | None = None):
    """The judge's 512 penultimate-layer features of ``N x 1 x 28 x 28`` images in [0, 1],
    computed on the CPU in batches (of 128: the same values as 500, measured 1.0-1.7 times as
    fast on a CPU: ``benchmarks/bench_batch_size.py``); returns ``N x 512``. ``judge``
    replaces the shipped judge (another classifier of the same architecture, e.g. one trained
    with another seed)."""
    judge = as_judge(judge)
    images = images.detach().float().cpu()
    return in_batches(judge.features, batch_size, images)


def test_features(judge: DigitCNN | None = None) -> torch.Tensor:
    """The judge's features of the 1,000 held-out test digits (for the shipped judge computed
    once per process)."""
    if judge is None or judge is load_judge():  # load_judge() gives the same (cached) model
        return _shipped_test_features()
    return judge_features(digits("test")[0], judge=judge)  # judge_features checks it


@lru_cache(maxsize=1)
def _shipped_test_features() -> torch.Tensor:
    return judge_features(digits("test")[0])
