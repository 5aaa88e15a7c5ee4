"""The judge: the course's digit classifier, used to evaluate every generator of the course.

It is ``models.DigitCNN`` trained on the 4,000 training digits with light augmentation. Its
weights ship inside the package (``course_lib/weights/judge.pt``, about 2.8 MB) and are
reproduced by

    python -m course_lib.judge --train          # about 25 s on 2 idle CPU cores

which trains with the fixed recipe below (seed 0) and overwrites the file atomically;
``python -m course_lib.judge`` (no flag) evaluates the shipped weights on the test digits.
"""

from __future__ import annotations

import argparse
import time
from functools import lru_cache
from pathlib import Path

import torch

from course_lib.models import DigitCNN

WEIGHTS = Path(__file__).resolve().parent / "weights" / "judge.pt"
WIDTHS = (32, 64, 128)
RECIPE = {"epochs": 12, "batch_size": 64, "lr": 1e-3, "rotation": 10.0, "shift": 2, "seed": 0}


def build_judge() -> DigitCNN:
    """A fresh, untrained network of the judge's architecture."""
    return DigitCNN(WIDTHS, hidden=512, dropout=0.25)


def train_judge(
    out: str | Path | None = WEIGHTS, epochs: int = RECIPE["epochs"], progress: bool = True
) -> tuple[DigitCNN, dict]:
    """Train the judge with the fixed recipe on the CPU and (if ``out``) save it atomically.

    Returns ``(model, meta)``; ``meta`` holds the recipe, the test accuracy and the time taken.
    """
    from course_lib.augment import Compose, RandomRotation, RandomShift
    from course_lib.data import digits
    from course_lib.runtime import seed_everything
    from course_lib.train import evaluate_classifier, save_checkpoint, supervised_step, train

    seed_everything(RECIPE["seed"])
    x, y = digits("train")
    x_test, y_test = digits("test")
    model = build_judge()
    opt = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=RECIPE["lr"] * 3, total_steps=max(1, epochs * (len(x) // RECIPE["batch_size"]))
    )
    augment = Compose([RandomRotation(RECIPE["rotation"]), RandomShift(RECIPE["shift"])])
    step = supervised_step(model, opt, augment=augment, scheduler=sched)
    start = time.perf_counter()
    train(
        model,
        step,
        (x, y),
        batch_size=RECIPE["batch_size"],
        epochs=epochs,
        optimizers={"adam": opt, "schedule": sched},
        device="cpu",
        seed=RECIPE["seed"],
        progress=progress,
        desc="judge",
    )
    seconds = time.perf_counter() - start
    scores = evaluate_classifier(model, x_test, y_test)
    meta = {
        **RECIPE,
        "epochs": epochs,
        "widths": list(WIDTHS),
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "train_seconds": round(seconds, 1),
        "torch": str(torch.__version__),
    }
    if out is not None:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save_checkpoint(out, {"model": state, "meta": meta})
    return model.eval(), meta


@lru_cache(maxsize=4)
def _load(path: str, device: str) -> DigitCNN:
    from course_lib.train import load_checkpoint

    state = load_checkpoint(path, map_location=device)
    model = build_judge()
    model.load_state_dict(state["model"])
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
            "`python -m course_lib.judge --train`"
        )
    return _load(str(path), str(torch.device(device)))


def judge_meta(path: str | Path = WEIGHTS) -> dict:
    """The recipe and scores stored with the judge's weights."""
    from course_lib.train import load_checkpoint

    return dict(load_checkpoint(path)["meta"])


@torch.no_grad()
def judge_features(images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The judge's 512 penultimate-layer features of ``N x 1 x 28 x 28`` images in [0, 1],
    computed on the CPU in batches; returns ``N x 512``."""
    judge = load_judge()
    images = images.detach().float().cpu()
    return torch.cat(
        [judge.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )


@lru_cache(maxsize=1)
def test_features() -> torch.Tensor:
    """The judge's features of the 1,000 held-out test digits (computed once per process)."""
    from course_lib.data import digits

    return judge_features(digits("test")[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train or evaluate the course's judge network.")
    parser.add_argument("--train", action="store_true", help="train with the fixed recipe and save")
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS, help=f"weights file (default {WEIGHTS})"
    )
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    args = parser.parse_args(argv)
    if args.train:
        _, meta = train_judge(args.out, epochs=args.epochs)
        print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    else:
        from course_lib.data import digits
        from course_lib.train import evaluate_classifier

        meta = judge_meta(args.out)
        scores = evaluate_classifier(load_judge(path=args.out), *digits("test"))
        meta["test_accuracy (now)"] = scores["accuracy"]
    for key, value in meta.items():
        print(f"{key:20s} {value}")


if __name__ == "__main__":
    main()
