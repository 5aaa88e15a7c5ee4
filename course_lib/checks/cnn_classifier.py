"""Checks of exercise 03 (a CNN classifier), PyTorch: ``check_cross_entropy`` (a table on top
of ``check_torch_function``), ``check_training_step`` (a spy on the optimiser), and
``library_losses_disabled``, which switches torch's own cross-entropy off while they run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks.core import (
    CheckFailed,
    SwitchedOff,
    _call,
    _Case,
    _index,
    _num,
    _run_cases,
    _shape,
    _Wrong,
    switched_off,
)
from course_lib.checks.torch_function import TorchCase, check_torch_function


class LibraryLossUsed(SwitchedOff):
    """Raised, inside ``library_losses_disabled()``, by torch's own cross-entropy pieces."""

    task = (
        "compute the cross-entropy yourself, from elementary operations: exp, log, max, sum, "
        "mean and indexing."
    )


_LIBRARY_LOSSES = [
    (F, "cross_entropy", "F.cross_entropy"),
    (F, "log_softmax", "F.log_softmax"),
    (F, "nll_loss", "F.nll_loss"),
    (torch, "log_softmax", "torch.log_softmax"),
    (torch, "logsumexp", "torch.logsumexp"),
    (torch.special, "log_softmax", "torch.special.log_softmax"),
    (torch.special, "logsumexp", "torch.special.logsumexp"),
    (torch.Tensor, "log_softmax", "the tensor method .log_softmax()"),
    (torch.Tensor, "logsumexp", "the tensor method .logsumexp()"),
    (nn.CrossEntropyLoss, "forward", "nn.CrossEntropyLoss"),
    (nn.NLLLoss, "forward", "nn.NLLLoss"),
    (nn.LogSoftmax, "forward", "nn.LogSoftmax"),
]


def library_losses_disabled():
    """Inside this block (``with library_losses_disabled(): ...``), torch's ready-made
    cross-entropy, log-softmax, NLL loss and log-sum-exp (functions, tensor methods and modules)
    raise ``LibraryLossUsed``.

    The exercise on cross-entropy runs the learner's function in it, in the check and in the
    grader's tests, so that a solution has to compute the loss itself. Everything is put back
    on the way out, also after an error or an interrupt.
    """
    return switched_off(_LIBRARY_LOSSES, LibraryLossUsed)


# ----------------------------------------------------------------------------- cross-entropy


def _cross_entropy_reference(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with the log-sum-exp trick, in elementary torch operations."""
    m = logits.max(dim=1, keepdim=True).values
    shifted = logits - m  # <= 0 everywhere: exp cannot overflow, and the row max gives exp(0)
    log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -log_p[torch.arange(len(y)), y].mean()


_LSE_HINT = (
    "exp() overflows to inf for logits above about 88 (in float32), and the probability of a "
    "class far below the largest logit loses its digits or rounds to 0, whose log is −inf. Use "
    "the log-sum-exp trick: with m = the largest logit of each row, log Σ_j exp(z_j) = "
    "m + log Σ_j exp(z_j − m), where every exponent is ≤ 0; then log p_y = z_y − m − "
    "log Σ_j exp(z_j − m). Compute log p like this, never as the log of a softmax."
)


def _ce_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    def labels(n, k):
        return torch.randint(0, k, (n,), generator=gen)

    confident = randn(5, 4) * 2  # one logit of 100 per row, not always the true class's
    confident[torch.arange(5), torch.tensor([0, 1, 2, 3, 1])] = 100.0
    return [
        TorchCase("4 examples, 3 classes", (randn(4, 3), labels(4, 3))),
        TorchCase("one example (N = 1), 5 classes", (randn(1, 5), labels(1, 5)), tags={"single"}),
        TorchCase("8 examples, 10 classes, as for digits", (randn(8, 10) * 3, labels(8, 10))),
        TorchCase("2 classes, 6 examples", (randn(6, 2) * 2, labels(6, 2))),
        TorchCase("a confident network: one logit of 100 in each row",
                  (confident, torch.tensor([0, 2, 2, 3, 0])), tags={"large"}),
        TorchCase("huge logits, about ±1000", (randn(6, 3) * 600, labels(6, 3)), tags={"large"}),
        TorchCase("every logit near −1000", (randn(4, 5) * 3 - 1000, labels(4, 5)),
                  tags={"large"}),
    ]  # fmt: skip


def _log_p(z: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return z - torch.logsumexp(z, dim=dim, keepdim=True)


def _true(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p of each example's true class."""
    return _log_p(z)[torch.arange(len(y)), y]


def _n(case: TorchCase) -> int:
    return len(case.args[1])


def _lse_detached(z, y):
    return (torch.logsumexp(z, dim=1).detach() - z[torch.arange(len(y)), y]).mean()


# (hint, the wrong function), in the order they are tried; None: does not apply to this case
_CE_MISTAKES = [
    (
        lambda case: (
            f"you summed over the batch: your loss is {_n(case)} times too large. The loss is "
            f"the mean over the N = {_n(case)} examples (.mean(), or the sum divided by N), so "
            f"that its size does not depend on the batch size."
        ),
        lambda z, y: -_true(z, y).sum() if len(y) > 1 else None,
    ),
    (
        "the minus sign is missing: cross-entropy is −log p_y, a positive number (log p_y "
        "is ≤ 0 since p_y ≤ 1).",
        lambda z, y: _true(z, y).mean(),
    ),
    (
        "softmax over the wrong dimension: each row is one example, so normalise over the "
        "classes, dim=1 (the maximum and the sum too: .max(dim=1, keepdim=True), "
        ".sum(dim=1, keepdim=True)); dim=0 mixes different examples.",
        lambda z, y: -_log_p(z, dim=0)[torch.arange(len(y)), y].mean() if len(y) > 1 else None,
    ),
    (
        "you averaged −log p over all the classes; only the true class's counts: pick "
        "log_p[torch.arange(N), y], then average over the batch.",
        lambda z, y: -_log_p(z).mean() if z.shape[1] > 1 else None,
    ),
    (
        lambda case: (
            f"you divided by N·K = {case.args[0].numel()}: that is the mean of an N × K matrix "
            f"(the one-hot targets times log p) with one non-zero per row. Divide by N only: "
            f"take each row's true-class entry, then the mean."
        ),
        lambda z, y: -_true(z, y).sum() / z.numel() if z.shape[1] > 1 else None,
    ),
    (
        "you subtracted the maximum m inside the exp but did not add it back: "
        "log Σ_j exp(z_j) = m + log Σ_j exp(z_j − m).",
        lambda z, y: -_true(z, y).mean() - z.max(dim=1).values.mean(),
    ),
    (
        "use the natural logarithm (torch.log), not log10 or log2.",
        lambda z, y: -_true(z, y).mean() / math.log(10),
    ),
    (
        "use the natural logarithm (torch.log), not log10 or log2.",
        lambda z, y: -_true(z, y).mean() / math.log(2),
    ),
    (
        "you forgot the log: the loss is −log p_y, not −p_y.",
        lambda z, y: -_true(z, y).exp().mean(),
    ),
    (  # right value, wrong gradient
        "the gradient is −onehot/N: the log-sum-exp part of your loss is cut off from "
        "autograd (.detach(), .data, .item() or torch.no_grad() on it). Only the "
        "maximum m may be treated as a constant: it cancels out of the gradient.",
        _lse_detached,
    ),
]


def _ce_shape_hint(case: TorchCase, shape: tuple) -> str:
    n, k = case.args[0].shape
    if shape == (n,):
        return (
            f"you returned one loss per example ({n} numbers): the loss of the batch is their "
            f"mean, one number (.mean())."
        )
    if shape == (n, k):
        return (
            "you returned −log p for every class of every example: keep only the true class's, "
            "log_p[torch.arange(N), y], then average over the batch."
        )
    if shape == (n, n) or shape == (n, 1):
        return (
            "watch the shapes: a row-wise result kept as N × 1 (keepdim=True) minus one of "
            "shape (N,) broadcasts to N × N. Keep both N × 1, or both (N,)."
        )
    return "return one number: a tensor with a single value, the mean over the batch."


def check_cross_entropy(cross_entropy: Callable, seed: int = 0) -> None:
    """Check ``cross_entropy(logits, y)``: the mean over the batch of −log softmax(logits)[y].

    Tries random logits, a batch of one, and large logits (±100, ±1000, all near −1000) where
    the formula without the log-sum-exp trick overflows; compares the value and its gradient
    (autograd) with a float64 reference. Runs the function with torch's own cross-entropy and
    log-softmax switched off (``library_losses_disabled``).
    """
    check_torch_function(
        cross_entropy,
        "cross_entropy",
        _ce_cases(seed),
        _cross_entropy_reference,
        _CE_MISTAKES,
        arg_names=("logits", "y"),
        output="loss",
        context=library_losses_disabled,
        shape_hint=_ce_shape_hint,
        tag_hints={"large": "it only fails on large logits. " + _LSE_HINT},
        not_tensor_hint="return the loss as a tensor, not loss.item() or float(loss): training "
        "calls loss.backward() on it, which needs the tensor and the graph of operations "
        "behind it. Stay in torch all the way (no NumPy).",
        nonfinite_hint=lambda case: (
            _LSE_HINT
            if "large" in case.tags
            else "NaN or inf on ordinary logits: is there a log of 0, or a division by 0?"
        ),
        gradient_formula="It should be (softmax(logits) − onehot(y)) / N.",
    )


# ----------------------------------------------------------------------------- training step


def _reference_training_step(model: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor):
    """One step of a classifier: forward, cross-entropy, zero_grad, backward, step."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 10)
    )


def _step_specs():
    # (label, model, optimizer, shape of x, number of classes)
    return [
        ("a linear model nn.Linear(4, 3) with SGD(lr=0.1)",
         lambda: nn.Linear(4, 3), lambda p: torch.optim.SGD(p, lr=0.1), (8, 4), 3),
        ("a small MLP, Linear(6, 16) → ReLU → Linear(16, 5), with Adam(lr=0.01)",
         lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5)),
         lambda p: torch.optim.Adam(p, lr=0.01), (5, 6), 5),
        ("a tiny CNN, Conv2d(1, 3, 3) → ReLU → MaxPool2d(2) → Flatten → Linear(12, 10), with "
         "SGD(lr=0.05, momentum=0.9)",
         _tiny_cnn, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), (6, 1, 6, 6), 10),
    ]  # fmt: skip


class _StepSpy:
    """Watches a learner's training step: whether backward has reached the weights yet, and
    which gradients each ``optimizer.step()`` call finds."""

    def __init__(self, model: nn.Module, optimizer) -> None:
        self.params = list(model.parameters())
        self.backward_done = False
        self.steps: list[tuple[bool, list]] = []
        self.batch_size = 0
        self.handles = [p.register_hook(self._on_grad) for p in self.params]
        original = optimizer.step

        def step(*args, **kwargs):
            grads = [None if p.grad is None else p.grad.detach().clone() for p in self.params]
            self.steps.append((self.backward_done, grads))
            return original(*args, **kwargs)

        optimizer.step = step  # this optimiser is the check's own, made for this case

    def _on_grad(self, grad):
        self.backward_done = True

    def new_call(self) -> None:
        self.backward_done, self.steps = False, []

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _grads_close(a: list, b: list) -> bool:
    return all(
        g is not None and h is not None and torch.allclose(g, h, rtol=1e-4, atol=1e-6)
        for g, h in zip(a, b, strict=True)
    )


_NO_STEP_HINT = (
    "the weights did not change: call optimizer.step() after loss.backward(). backward() only "
    "computes the gradients (into each weight's .grad); step() is what updates the weights."
)
_NO_ZERO_GRAD_HINT = (
    "the gradients accumulate: PyTorch *adds* the gradients of every backward() to .grad, so "
    "this step used the gradients of this batch plus those of the previous one. Call "
    "optimizer.zero_grad() before loss.backward()."
)
_STEP_BEFORE_BACKWARD_HINT = (
    "optimizer.step() ran before loss.backward(): it updated the weights with the gradients "
    "that were there at that moment (none yet, or the previous batch's). The order is: loss, "
    "optimizer.zero_grad(), loss.backward(), optimizer.step()."
)
_ITEM_HINT = (
    "return loss.item(), a Python float. A tensor that still has its grad_fn keeps the graph "
    "of the whole step (every activation) alive for as long as you keep it, e.g. in a list of "
    "losses, and the training loop logs plain numbers."
)


def _step_hint(spy: _StepSpy, unchanged: bool, fresh: list, previous: list | None) -> str:
    """Why the weights after the learner's step differ from the reference step's."""
    if not spy.steps:
        if unchanged:
            return _NO_STEP_HINT
        return (
            "the weights changed, but optimizer.step() of the optimizer you were given was never "
            "called. Update with optimizer.step(): a hand-written w -= lr * w.grad, or a new "
            "optimizer made inside the function, does not do what this one does (momentum, "
            "Adam's running averages, its learning rate)."
        )
    if len(spy.steps) > 1:
        return f"optimizer.step() ran {len(spy.steps)} times in one call: one step per batch."
    backward_done, grads = spy.steps[0]
    if not backward_done:
        return _STEP_BEFORE_BACKWARD_HINT
    if all(g is None or not g.any() for g in grads):
        return (
            "when optimizer.step() ran, the gradients were zero: optimizer.zero_grad() was "
            "called between loss.backward() and optimizer.step() and erased them. Call it "
            "before loss.backward()."
        )
    if previous is not None and _grads_close(
        grads, [a + b for a, b in zip(fresh, previous, strict=True)]
    ):
        return _NO_ZERO_GRAD_HINT
    if not _grads_close(grads, fresh):
        if _grads_close(grads, [g * spy.batch_size for g in fresh]):
            return (
                "the gradients are N times too large: your loss is the sum over the batch. Use "
                "the mean, F.cross_entropy(logits, y) with its default reduction."
            )
        return (
            "when optimizer.step() ran, the gradients were not those of "
            "F.cross_entropy(model(x), y) on this batch: compute the loss exactly so, then "
            "optimizer.zero_grad(), loss.backward(), optimizer.step()."
        )
    return (
        "the gradients were right when optimizer.step() ran, so something changed the weights "
        "after it: one optimizer.step() per call, and nothing else touches the weights."
    )


def _step_case(fn: Callable, seed: int, k: int, case: _Case, where: str):
    """None if ``fn`` makes the same two steps as the reference, else what is wrong."""
    _, make_model, make_optimizer, shape, classes = case.args
    with torch.random.fork_rng(devices=[]):  # the learner's random state stays as it was
        torch.manual_seed(1000 * seed + k + 1)
        model = make_model()
        batches = [(torch.randn(shape), torch.randint(0, classes, shape[:1])) for _ in range(2)]
    reference = copy.deepcopy(model)
    optimizer = make_optimizer(model.parameters())
    ref_optimizer = make_optimizer(reference.parameters())
    spy = _StepSpy(model, optimizer)
    previous = None
    try:
        for call, (x, y) in enumerate(batches, start=1):
            when = (
                "its first call (a fresh model)"
                if call == 1
                else "its second call (the next batch, right after the first step)"
            )
            # the reference step, on the copy; the gradients it steps with
            ref_loss = F.cross_entropy(reference(x), y)
            ref_optimizer.zero_grad()
            ref_loss.backward()
            fresh = [p.grad.detach().clone() for p in reference.parameters()]
            ref_optimizer.step()
            before = [p.detach().clone() for p in model.parameters()]
            spy.new_call()
            spy.batch_size = len(y)
            got = _call(fn, "training_step", (model, optimizer, x.clone(), y.clone()),
                        f"{where}, on {when}")  # fmt: skip
            if isinstance(got, CheckFailed | _Wrong):
                return got
            prefix = f"On {when}: "
            for (pname, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
                if torch.allclose(p, q, rtol=1e-5, atol=1e-6):
                    continue
                unchanged = all(
                    torch.equal(b, a.detach())
                    for b, a in zip(before, model.parameters(), strict=True)
                )
                err = (p.detach() - q.detach()).abs()
                idx = np.unravel_index(int(err.argmax()), tuple(err.shape))
                moved = max(
                    float((b - r.detach()).abs().max())
                    for b, r in zip(before, reference.parameters(), strict=True)
                )
                lines = [
                    prefix
                    + (
                        f"the weights did not change; the reference step moves them by up to "
                        f"{_num(moved)}."
                        if unchanged
                        else f"the weights after the step differ from the reference step's: "
                        f"largest difference {_num(float(err.max()))} in `{pname}` (shape "
                        f"{_shape(p.shape)}) at index {_index(idx)}: expected "
                        f"{_num(float(q.detach()[idx]))}, got {_num(float(p.detach()[idx]))}."
                    )
                ]
                return _Wrong(lines, _step_hint(spy, unchanged, fresh, previous))
            want = ref_loss.item()
            if got is None:
                return _Wrong(
                    [prefix + f"it returned None; expected the loss, {_num(want)}."],
                    "did you forget `return loss.item()` at the end?",
                )
            if isinstance(got, torch.Tensor):
                return _Wrong(
                    [prefix + f"it returned a torch tensor, {got!r}, not a Python float."],
                    _ITEM_HINT,
                )
            if not isinstance(got, float):
                return _Wrong(
                    [
                        prefix + f"it returned a {type(got).__name__} ({got!r}); expected a "
                        f"Python float, the loss {_num(want)}."
                    ],
                    "return just the loss, as a Python float: loss.item().",
                )
            if not math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6):
                with torch.no_grad():
                    after = F.cross_entropy(model(x), y).item()
                hint = (
                    "you returned the loss after the update: return the loss you called "
                    "backward() on, computed before optimizer.step()."
                    if math.isclose(got, after, rel_tol=1e-5, abs_tol=1e-6)
                    else "return the loss of this batch before the update, loss.item()."
                )
                return _Wrong(
                    [prefix + f"it returned {_num(got)}; expected the loss {_num(want)}."], hint
                )
            previous = fresh
    finally:
        spy.close()
    return None


def check_training_step(training_step: Callable, seed: int = 0) -> None:
    """Check ``training_step(model, optimizer, x, y) -> float`` on three small models and
    optimisers (SGD, Adam, SGD with momentum), two calls each.

    After each call the weights must equal those of a reference step (forward, cross-entropy,
    zero_grad, backward, step) on an identical copy of the model, within 1e-6, and the return
    value must be the loss before the update, as a Python float. A spy on the optimiser says
    what went wrong: no step, a step before backward, gradients that accumulate ...
    """
    cases = []
    for spec in _step_specs():
        label, _, _, shape, classes = spec
        cases.append(
            _Case(
                f"{label}; x of shape {_shape(shape)}, y of shape ({shape[0]},) with labels "
                f"0..{classes - 1}",
                spec,
                np.zeros(()),
            )
        )

    def run_case(k: int, case: _Case, where: str):
        return _step_case(training_step, seed, k, case, where)

    failure = _run_cases(training_step, "training_step", cases, run_case, {})
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)
