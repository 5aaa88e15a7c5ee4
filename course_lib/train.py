"""One training loop for the whole course.

    model, history = train(model, step, (x, y), batch_size=64, epochs=5, optimizers=opt)

What is specific to a model lives in a *step function*: it gets one batch (a tuple of tensors
already on the device), does forward, loss, backward and the optimiser update(s), and returns
the numbers to log, e.g. ``{"loss": 0.31, "accuracy": 0.9}``. A classifier, a VAE and a GAN
(two optimisers, alternating updates) all fit this one loop;
``course_lib.classifier.supervised_step`` builds the step of a classifier.

The loop adds what every chapter needs: a ``tqdm`` progress bar, a history of every step and
every epoch, an evaluation hook, checkpoints written atomically and loaded safely
(``weights_only=True``), resuming (on the CPU, with the same seed, a resumed run ends in exactly
the weights of an uninterrupted one), and Ctrl-C: the first one stops after the current step,
saves, and returns the model and the history so far.

And what generative models need, each one argument away:

* ``steps=N`` instead of ``epochs=``: exactly N optimisation steps, whatever the data size;
* ``ema=EMA(generator)``: an exponential moving average of the weights, updated after every
  step and checkpointed (GANs and diffusion models sample with it);
* ``clip_grad_norm=1.0``: every optimiser clips its gradients' norm before each update, and the
  norm before clipping is logged (``grad_norm``), without the step function's help;
* ``max_seconds=60``: stop after a wall-clock budget, for equal-time comparisons.
"""

from __future__ import annotations

import copy
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.device import get_device
from course_lib.models import evaluating

Batch = tuple[torch.Tensor, ...]
StepFn = Callable[[Batch], Mapping[str, float]]


@dataclass
class History:
    """What happened during training.

    ``steps``: one dict per optimisation step (``step``, ``epoch`` and the step's logs);
    ``epochs``: one dict per full epoch (the mean of its step logs, then evaluation results
    prefixed with ``eval_``); ``stopped``: why the run ended, ``"done"``, ``"interrupted"``
    (Ctrl-C) or ``"max_seconds"``; ``seconds``: wall-clock training time, summed over resumed
    runs; ``interrupted``: ``stopped == "interrupted"``.
    """

    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"

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
        return {"steps": self.steps, "epochs": self.epochs, "seconds": self.seconds}

    def load_state_dict(self, state: Mapping) -> None:
        self.steps, self.epochs = list(state["steps"]), list(state["epochs"])
        self.seconds = float(state.get("seconds", 0.0))


# ----------------------------------------------------------------------------- EMA


class EMA:
    """An exponential moving average of a network's weights.

        ema = EMA(nets["g"], decay=0.999)      # a frozen copy of the generator
        train(nets, step, data, ..., ema=ema)  # or call ema.update() after each optimiser step
        samples = ema.module(z)                # sample with the averaged weights

    The average of the last ~``1 / (1 - decay)`` updates is smoother than the weights of any
    single step: GANs and diffusion models sample with it. ``ema.module`` is a copy of the
    tracked network in eval mode, with ``requires_grad=False``. Its buffers (e.g. BatchNorm's
    running statistics) are copied from the live network at each update, not averaged: the
    averaged weights run with the statistics the live weights produced. Late in training, with
    a small learning rate, the two sets of weights are close and so are their statistics; while
    the rate is still high they can differ, and the averaged weights are then normalised with
    statistics that are not their own. A remedy (not applied here): recompute them for
    ``ema.module`` with a few forward passes in train mode under ``torch.no_grad()`` (after
    ``reset_running_stats()``, with ``momentum=None`` for a plain average), then back to eval
    mode. With ``warmup=True`` the decay starts low,
    ``decay_t = min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so that the average
    forgets the random initial weights quickly instead of dragging them along for thousands
    of steps. ``train(model, ..., ema=ema)`` wants ``ema.tracked`` (the network given here) to
    be ``model`` itself or one of its sub-modules, the very same object, not a copy.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"EMA tracks an nn.Module, got {type(model).__name__}")
        if not (isinstance(decay, int | float) and 0 <= decay < 1):
            raise ValueError(f"decay must be a number in [0, 1), e.g. 0.999, got {decay!r}")
        self.tracked = model  # the network whose weights are averaged
        self.decay, self.warmup, self.updates = float(decay), warmup, 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self) -> None:
        """Move the average one step towards the tracked network's current weights."""
        t = self.updates
        decay = min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay
        params = zip(self.module.parameters(), self.tracked.parameters(), strict=True)
        for shadow, param in params:
            # shadow = decay * shadow + (1 - decay) * param
            shadow.mul_(decay).add_(param.detach(), alpha=1 - decay)
        for shadow, buffer in zip(self.module.buffers(), self.tracked.buffers(), strict=True):
            shadow.copy_(buffer)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from other users
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
    torch.set_rng_state(state["torch"].cpu())  # a checkpoint loaded onto the GPU moved it there
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


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


def _check_positive(name: str, value, example: str) -> None:
    if value is not None and not (isinstance(value, int | float) and value > 0):
        raise ValueError(f"{name} must be a number > 0 (or None), e.g. {example}, got {value!r}")


def _clip_before_step(max_norm: float, key: str, norms: dict[str, float]):
    """An optimiser step pre-hook: before ``optimizer.step()`` updates the weights, clip the
    gradient norm of the optimiser's parameters to ``max_norm``; remember the norm before
    clipping in ``norms[key]``."""

    def hook(optimizer, args, kwargs) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norms[key] = nn.utils.clip_grad_norm_(params, max_norm).item()

    return hook


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
    epochs: int | None = None,
    steps: int | None = None,
    optimizers=None,
    evaluate: Callable[[], Mapping[str, float]] | None = None,
    ema: EMA | None = None,
    clip_grad_norm: float | None = None,
    max_seconds: float | None = None,
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
        batch_size: minibatch size.
        epochs, steps: how long to train; give exactly one. ``epochs``: passes over ``data``;
            ``steps``: optimisation steps, through as many epochs as needed (the last one may
            be partial; ``steps = k * (N // batch_size)`` trains exactly like ``epochs = k``).
        optimizers: an optimiser or a dict of them, learning-rate schedulers included
            (e.g. ``{"adam": opt, "schedule": sched}``); saved in and restored from checkpoints.
        evaluate: called after each full epoch with the model in eval mode and gradients off;
            returns a dict of numbers, stored in the epoch's history with an ``eval_`` prefix.
        ema: an ``EMA`` of ``model`` or of one of its sub-modules (e.g. ``EMA(nets["g"])``);
            updated after every step, saved in and restored from checkpoints.
        clip_grad_norm: clip the gradient norm of each optimiser's parameters to this value
            just before each of its ``step()`` calls (schedulers are left alone); the norm
            before clipping is logged in the step history as ``grad_norm`` (one optimiser) or
            ``grad_norm_<name>`` (several). ``float("inf")`` logs it without clipping.
        max_seconds: stop after this much wall-clock training time (evaluations and
            checkpoints included, summed over resumed runs; the step that crosses it
            completes). Timing is machine-dependent: recipes of shipped weights use ``steps``,
            so that they reproduce.
        checkpoint: file to save to after every epoch (and every ``checkpoint_every`` steps,
            and when stopped inside an epoch); with ``resume=True`` an existing one is loaded
            first.
        device: where to train; default ``course_lib.get_device()``.
        seed: seeds the data order of every epoch.
        progress: show a ``tqdm`` progress bar.

    Returns:
        ``(model, history)``, also after Ctrl-C: ``history.stopped`` says why the run ended
        (``"done"``, ``"interrupted"``, ``"max_seconds"``), ``history.seconds`` how long it took.
    """
    tensors = _as_tensors(data)
    n = len(tensors[0])
    if not (isinstance(batch_size, int) and 1 <= batch_size <= n):
        raise ValueError(f"batch_size must be an int in [1, {n}], got {batch_size!r}")
    if (epochs is None) == (steps is None):
        raise ValueError(
            f"give exactly one of epochs= (passes over the data) or steps= (optimisation steps), "
            f"got epochs={epochs!r}, steps={steps!r}"
        )
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None and not (isinstance(value, int) and value >= 0):
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    opts = _optimizer_dict(optimizers)
    _check_positive("clip_grad_norm", clip_grad_norm, "1.0")
    _check_positive("max_seconds", max_seconds, "60")
    if clip_grad_norm is not None and not any(
        isinstance(o, torch.optim.Optimizer) for o in opts.values()
    ):
        raise ValueError("clip_grad_norm needs the optimizers= that the step function uses")
    if ema is not None and not isinstance(ema, EMA):
        raise TypeError(f"ema must be an EMA, e.g. EMA(model), got {type(ema).__name__}")
    if ema is not None and not any(m is ema.tracked for m in model.modules()):
        raise ValueError(
            "ema tracks a network that is not part of model: use EMA(model), or EMA(model['g'])"
            " for one network of an nn.ModuleDict"
        )
    device = get_device(verbose=False) if device is None else torch.device(device)
    model.to(device)
    if ema is not None:
        ema.module.to(device)
    history = History()
    epoch, done_in_epoch = 0, 0
    steps_per_epoch = n // batch_size
    total = steps if steps is not None else epochs * steps_per_epoch

    if checkpoint is not None and resume and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        if ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"{checkpoint} was saved without an EMA: resume without ema=")
            ema.load_state_dict(state["ema"])
        history.load_state_dict(state["history"])
        epoch, done_in_epoch = state["epoch"], state["step_in_epoch"]
        _set_rng_state(state["rng"])
        print(f"Resumed from {checkpoint}: epoch {epoch}, step {len(history.steps)}.")

    start, seconds_before = time.perf_counter(), history.seconds

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - start

    def save() -> None:
        history.seconds = elapsed()
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizers": {name: opt.state_dict() for name, opt in opts.items()},
                    "ema": None if ema is None else ema.state_dict(),
                    "history": history.state_dict(),
                    "epoch": epoch,
                    "step_in_epoch": done_in_epoch,
                    "rng": _rng_state(),
                },
            )

    bar = tqdm(total=total, initial=min(len(history.steps), total), desc=desc, disable=not progress)
    grad_norms: dict[str, float] = {}  # the clipping hooks write here during a step
    hooks = []
    if clip_grad_norm is not None:
        real = {k: o for k, o in opts.items() if isinstance(o, torch.optim.Optimizer)}
        for k, opt in real.items():
            key = "grad_norm" if len(real) == 1 else f"grad_norm_{k}"
            hook = _clip_before_step(clip_grad_norm, key, grad_norms)
            hooks.append(opt.register_step_pre_hook(hook))
    order = None
    try:
        with _deferred_interrupt() as stop:
            while True:
                if done_in_epoch == steps_per_epoch:  # an epoch is over: evaluate and save
                    _end_epoch(model, history, epoch, evaluate)
                    epoch, done_in_epoch, order = epoch + 1, 0, None
                    save()
                history.stopped = (
                    "done" if len(history.steps) >= total
                    else "interrupted" if stop.requested
                    else "max_seconds" if max_seconds is not None and elapsed() >= max_seconds
                    else None
                )  # fmt: skip
                if history.stopped is not None:
                    break
                if order is None:  # the epoch's order depends only on seed and epoch
                    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
                    order = torch.randperm(n, generator=g)
                    model.train()
                idx = order[done_in_epoch * batch_size : (done_in_epoch + 1) * batch_size]
                logs = _scalars(step(tuple(t[idx].to(device) for t in tensors)))
                if ema is not None:
                    ema.update()
                logs.update(grad_norms)
                grad_norms.clear()
                done_in_epoch += 1
                history.steps.append({"step": len(history.steps), "epoch": epoch, **logs})
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:3]})
                if checkpoint_every and len(history.steps) % checkpoint_every == 0:
                    save()
    except KeyboardInterrupt:  # a second Ctrl-C, or one raised inside the step
        history.stopped = "interrupted"
    finally:
        bar.close()
        for hook in hooks:
            hook.remove()
    if done_in_epoch:  # stopped inside an epoch (the end of an epoch has saved already)
        save()
    history.seconds = elapsed()
    if history.stopped != "done":
        why = "Ctrl-C" if history.interrupted else f"max_seconds={max_seconds} reached"
        where = f", saved to {checkpoint}" if checkpoint is not None else ""
        print(
            f"Stopped early after {len(history.steps)} steps ({why}{where}): model, history kept."
        )
    return model, history


def _end_epoch(model: nn.Module, history: History, epoch: int, evaluate) -> None:
    rows = [row for row in history.steps if row["epoch"] == epoch]
    keys = dict.fromkeys(k for row in rows for k in row if k not in ("step", "epoch"))
    summary = {"epoch": epoch}
    for k in keys:  # a key may be missing from some steps (e.g. a grad_norm_<name>)
        values = [row[k] for row in rows if k in row]
        summary[k] = sum(values) / len(values)
    if evaluate is not None:  # in eval mode; back in train mode afterwards, even if it raises
        with evaluating(model), torch.no_grad():
            summary.update({f"eval_{k}": v for k, v in _scalars(evaluate()).items()})
    history.epochs.append(summary)
