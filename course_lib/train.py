"""One training loop for the whole course.

    history = train(model, step, (x, y), batch_size=64, epochs=5, optimizers=opt)

What is specific to a model lives in a *step function*: it gets one batch (a tuple of tensors
already on the device), does forward, loss, backward and the optimiser update(s), and returns
the numbers to log, e.g. ``{"loss": 0.31, "accuracy": 0.9}``. A classifier, a VAE and a GAN
(two optimisers, alternating updates) all fit this one loop; ``supervised_step`` builds the
step of a classifier.

The loop adds what every chapter needs: a ``tqdm`` progress bar, a history of every step and
every epoch, an evaluation hook, checkpoints written atomically and loaded safely
(``weights_only=True``), resuming (on the CPU, with the same seed, a resumed run ends in exactly
the weights of an uninterrupted one), and Ctrl-C: the first one stops after the current step,
saves, and returns the model and the history so far.
"""

from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

Batch = tuple[torch.Tensor, ...]
StepFn = Callable[[Batch], Mapping[str, float]]


@dataclass
class History:
    """What happened during training.

    ``steps``: one dict per optimisation step (``step``, ``epoch`` and the step's logs);
    ``epochs``: one dict per epoch (the mean of its step logs, then evaluation results
    prefixed with ``eval_``); ``interrupted``: True if Ctrl-C stopped the run early.
    """

    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    interrupted: bool = False

    def series(self, key: str, per: str = "step") -> list[float]:
        """The values of ``key`` over steps (``per="step"``) or epochs (``per="epoch"``)."""
        if per not in ("step", "epoch"):
            raise ValueError(f"per must be 'step' or 'epoch', got {per!r}")
        rows = self.steps if per == "step" else self.epochs
        values = [row[key] for row in rows if key in row]
        if rows and not values:
            known = sorted({k for row in rows for k in row})
            raise KeyError(f"no {per} has {key!r}; logged keys are {known}")
        return values

    def state_dict(self) -> dict:
        return {"steps": self.steps, "epochs": self.epochs}

    def load_state_dict(self, state: Mapping) -> None:
        self.steps, self.epochs = list(state["steps"]), list(state["epochs"])


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, payload: Mapping) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``:
    a crash mid-write never leaves a half-written checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(payload), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely: ``weights_only=True`` allows tensors and plain containers
    only, never arbitrary pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- Ctrl-C


class _StopFlag:
    """The first SIGINT (Ctrl-C, or Jupyter's interrupt button) sets the flag, and the loop
    stops after the current step; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupt received: stopping after this step (press again to stop at once).")


@contextmanager
def _deferred_interrupt():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, flag.handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


# ----------------------------------------------------------------------------- the loop


def _as_tensors(data) -> Batch:
    tensors = tuple(data) if isinstance(data, tuple | list) else (data,)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError("data must be a tensor or a tuple of tensors, e.g. (images, labels)")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(
            f"all data tensors must have the same length, got {[len(t) for t in tensors]}"
        )
    return tensors


def _optimizer_dict(optimizers) -> dict[str, torch.optim.Optimizer]:
    if optimizers is None:
        return {}
    if isinstance(optimizers, torch.optim.Optimizer):
        return {"optimizer": optimizers}
    if isinstance(optimizers, Mapping) and all(
        hasattr(o, "state_dict") and hasattr(o, "load_state_dict") for o in optimizers.values()
    ):
        return dict(optimizers)
    raise TypeError(
        "optimizers must be an Optimizer or a dict of optimizers (and learning-rate schedulers), "
        "e.g. {'g': opt_g, 'd': opt_d}"
    )


def _scalars(logs: Mapping) -> dict[str, float]:
    if not isinstance(logs, Mapping):
        raise TypeError(
            f"the step function must return a dict of numbers, got {type(logs).__name__}"
        )
    return {k: float(v.item() if isinstance(v, torch.Tensor) else v) for k, v in logs.items()}


def train(
    model: nn.Module,
    step: StepFn,
    data,
    *,
    batch_size: int,
    epochs: int,
    optimizers=None,
    evaluate: Callable[[], Mapping[str, float]] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> tuple[nn.Module, History]:
    """Train ``model`` with ``step`` on minibatches of ``data``.

    Args:
        model: the module (for several networks, an ``nn.ModuleDict``); moved to ``device``.
        step: ``step(batch) -> dict of numbers``; ``batch`` is a tuple of tensors on ``device``
            (one per tensor in ``data``). It does forward, backward and the update(s).
        data: a tensor or a tuple of tensors of equal length ``N`` (e.g. ``(images, labels)``),
            on the CPU; each epoch visits them in a new random order, ``N // batch_size`` full
            batches (the order depends only on ``seed`` and the epoch, so resuming is exact).
        batch_size, epochs: minibatch size and number of passes over ``data``.
        optimizers: an optimiser or a dict of them, learning-rate schedulers included
            (e.g. ``{"adam": opt, "schedule": sched}``); saved in and restored from checkpoints.
        evaluate: called after each epoch with the model in eval mode and gradients off;
            returns a dict of numbers, stored in the epoch's history with an ``eval_`` prefix.
        checkpoint: file to save to after every epoch (and every ``checkpoint_every`` steps,
            and when interrupted); with ``resume=True`` an existing one is loaded first.
        device: where to train; default ``course_lib.get_device()``.
        seed: seeds the data order of every epoch.
        progress: show a ``tqdm`` progress bar.

    Returns:
        ``(model, history)``, also after Ctrl-C (then ``history.interrupted`` is True).
    """
    from course_lib.device import get_device

    tensors = _as_tensors(data)
    if not (isinstance(batch_size, int) and 1 <= batch_size <= len(tensors[0])):
        raise ValueError(f"batch_size must be an int in [1, {len(tensors[0])}], got {batch_size!r}")
    if not (isinstance(epochs, int) and epochs >= 0):
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    opts = _optimizer_dict(optimizers)
    device = get_device(verbose=False) if device is None else torch.device(device)
    model.to(device)
    history = History()
    epoch, done_in_epoch = 0, 0
    steps_per_epoch = len(tensors[0]) // batch_size

    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        history.load_state_dict(state["history"])
        epoch, done_in_epoch = state["epoch"], state["step_in_epoch"]
        _set_rng_state(state["rng"])
        print(f"Resumed from {checkpoint}: epoch {epoch}, step {len(history.steps)}.")

    def save() -> None:
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizers": {name: opt.state_dict() for name, opt in opts.items()},
                    "history": history.state_dict(),
                    "epoch": epoch,
                    "step_in_epoch": done_in_epoch,
                    "rng": _rng_state(),
                },
            )

    total = epochs * steps_per_epoch
    bar = tqdm(total=total, initial=min(len(history.steps), total), desc=desc, disable=not progress)
    try:
        with _deferred_interrupt() as stop:
            while epoch < epochs and not stop.requested:
                order = torch.randperm(
                    len(tensors[0]), generator=torch.Generator().manual_seed(seed * 100_003 + epoch)
                )
                model.train()
                while done_in_epoch < steps_per_epoch and not stop.requested:
                    idx = order[done_in_epoch * batch_size : (done_in_epoch + 1) * batch_size]
                    logs = _scalars(step(tuple(t[idx].to(device) for t in tensors)))
                    done_in_epoch += 1
                    history.steps.append({"step": len(history.steps), "epoch": epoch, **logs})
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:3]})
                    if checkpoint_every and len(history.steps) % checkpoint_every == 0:
                        save()
                if done_in_epoch < steps_per_epoch:
                    break  # stopped inside the epoch
                _end_epoch(model, history, epoch, evaluate)
                epoch, done_in_epoch = epoch + 1, 0
                save()
            if stop.requested:
                history.interrupted = True
                save()
    except KeyboardInterrupt:  # a second Ctrl-C, or one raised inside the step
        history.interrupted = True
        save()
    finally:
        bar.close()
    if history.interrupted:
        where = f" (saved to {checkpoint})" if checkpoint is not None else ""
        print(f"Stopped early after {len(history.steps)} steps{where}: model and history kept.")
    return model, history


def _end_epoch(model: nn.Module, history: History, epoch: int, evaluate) -> None:
    rows = [row for row in history.steps if row["epoch"] == epoch]
    keys = [k for k in rows[0] if k not in ("step", "epoch")] if rows else []
    summary = {"epoch": epoch, **{k: sum(r[k] for r in rows) / len(rows) for k in keys}}
    if evaluate is not None:
        model.eval()
        with torch.no_grad():
            summary.update({f"eval_{k}": v for k, v in _scalars(evaluate()).items()})
        model.train()
    history.epochs.append(summary)


# ----------------------------------------------------------------------------- classifiers


def supervised_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> StepFn:
    """The step of a classifier: ``(x, y) -> {"loss", "accuracy"}``.

    ``loss_fn(logits, y)`` defaults to cross-entropy; ``augment(x)`` (optional) transforms the
    batch of images first, e.g. ``course_lib.augment.RandomRotation(10)``; ``scheduler``
    (optional) steps after every optimiser step (give it to ``train``'s ``optimizers`` too, so
    that checkpoints keep it).
    """
    loss_fn = loss_fn or nn.functional.cross_entropy

    def step(batch: Batch) -> dict[str, float]:
        x, y = batch
        if augment is not None:
            x = augment(x)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        accuracy = (logits.argmax(1) == y).float().mean()
        return {"loss": loss.item(), "accuracy": accuracy.item()}

    return step


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Logits of ``model`` on ``x`` (on the CPU), in eval mode, batch by batch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.cat(
        [model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    )
    model.train(was_training)
    return out


def evaluate_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``{"loss": mean cross-entropy, "accuracy": fraction correct}`` of ``model`` on ``(x, y)``."""
    logits = predict(model, x)
    return {
        "loss": nn.functional.cross_entropy(logits, y).item(),
        "accuracy": (logits.argmax(1) == y).float().mean().item(),
    }
