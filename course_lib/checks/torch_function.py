"""The generic check of a learner's PyTorch function, ``check_torch_function``: the value and
the autograd gradients against a float64 reference, on a table of cases, with a table of classic
mistakes that name themselves. The torch checks of the chapters are built on it: a table of
``TorchCase``s, a reference, a table of ``(hint, wrong_function)`` and a few hints.

    check_torch_function(
        kl_divergence, "kl_divergence", cases, reference, mistakes,
        arg_names=("mu", "logvar"), output="KL divergence",
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch

from course_lib.checks.core import (
    GRAD_ATOL,
    CheckFailed,
    _called_what_is_switched_off,
    _close,
    _index,
    _not_written,
    _num,
    _raised,
    _run_cases,
    _shape,
    _value_report,
    _Wrong,
)


@dataclass
class TorchCase:
    """One call of a PyTorch function in ``check_torch_function``.

    ``args``: the arguments, in order (tensors, or anything else, passed as they are).
    ``grad``: the names of the arguments whose gradient is checked; None (the default) means
    every floating-point tensor argument, ``()`` none. ``tags``: for the tag hints.
    ``seed``: if set, a ``torch.Generator().manual_seed(seed)`` is passed as a last argument,
    a fresh one, seeded alike, to the learner's function, the reference and each mistake.
    """

    label: str
    args: tuple
    grad: tuple[str, ...] | None = None
    tags: frozenset[str] = frozenset()
    seed: int | None = None

    def __post_init__(self) -> None:
        self.tags = frozenset(self.tags)


# (hint, the function that makes that mistake); the hint may be a function of the case
Mistake = tuple[str | Callable[[TorchCase], str], Callable[..., object]]
Hint = str | Callable[[TorchCase], str | None] | None


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _short_repr(value, limit: int = 200) -> str:
    """``repr(value)``, with tensors as 'a tensor of shape (8, 4)', on one line, cut short."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {_shape(value.shape)}"
    if isinstance(value, tuple | list):
        text = ", ".join(_short_repr(v, limit) for v in value)
        text = f"({text})" if isinstance(value, tuple) else f"[{text}]"
    else:
        text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 4] + " ..."


@dataclass
class _TorchCheck:
    """The options of one ``check_torch_function`` call (see there) and its per-case work."""

    fn: Callable
    name: str
    reference: Callable
    mistakes: Sequence[Mistake]
    arg_names: Sequence[str]
    output: str
    context: Callable[[], AbstractContextManager]
    shape_hint: Callable[[TorchCase, tuple], str | None] | None
    extra_value_hint: Callable[[TorchCase, np.ndarray], str | None] | None
    on_error: Callable[[Exception], _Wrong | None] | None
    not_tensor_hint: str | None
    cut_off_hint: str | None
    nonfinite_hint: Hint
    gradient_formula: str | None

    def describe(self, case: TorchCase) -> TorchCase:
        """The case with its arguments in its label."""
        parts = [
            f"{n} of shape {_shape(a.shape)}" if isinstance(a, torch.Tensor) else f"{n}={a!r}"
            for n, a in zip(self.arg_names, case.args, strict=True)
        ]
        if case.seed is not None:
            parts.append(f"generator=torch.Generator().manual_seed({case.seed})")
        return replace(case, label=f"{case.label}: {', '.join(parts)}")

    def grad(self, case: TorchCase) -> tuple[int, ...]:
        """The positions of the arguments whose gradient is checked."""
        if case.grad is not None:
            return tuple(self.arg_names.index(n) for n in case.grad)
        return tuple(
            i
            for i, a in enumerate(case.args)
            if isinstance(a, torch.Tensor) and a.is_floating_point()
        )

    def inputs(self, case: TorchCase, dtype: torch.dtype | None = None) -> list:
        """Fresh copies of the arguments (floating-point ones in ``dtype``, those of
        ``case.grad`` requiring gradients), then the freshly seeded generator, if any."""
        args, grad = [], self.grad(case)
        for i, a in enumerate(case.args):
            if isinstance(a, torch.Tensor):
                a = a.detach().clone()
                if a.is_floating_point():
                    a = a if dtype is None else a.to(dtype)
                    a.requires_grad_(i in grad)
            args.append(a)
        if case.seed is not None:
            args.append(torch.Generator().manual_seed(case.seed))
        return args

    def outcome(self, f: Callable, case: TorchCase, k: int | None):
        """``f``'s value on float64 copies of the arguments, as a float64 array, and its
        gradients (``_grads`` with the cotangent of case ``k``; None if ``k`` is None)."""
        args = self.inputs(case, torch.float64)
        out = f(*args)
        if out is None:
            return None
        out = out if isinstance(out, torch.Tensor) else torch.as_tensor(out, dtype=torch.float64)
        value = out.detach().double().cpu().numpy()
        if k is None:
            return value, None
        return value, _grads(out, [args[i] for i in self.grad(case)], _cotangent(out.shape, k))

    def mistake(self, case: TorchCase, k: int, value: np.ndarray, grads=None):
        """The hint of the first classic mistake whose value (and, if given, gradients) equal
        the learner's, else None."""
        for hint, wrong in self.mistakes:
            try:
                made = self.outcome(wrong, case, None if grads is None else k)
            except Exception:  # a mistake that does not apply to this case
                continue
            if made is None or not _close(value, made[0]):
                continue
            if grads is None or all(
                _close(g, h, GRAD_ATOL) for g, h in zip(grads, made[1], strict=True)
            ):
                return hint(case) if callable(hint) else hint
        return None

    def run_case(self, k: int, case: TorchCase, where: str) -> _Wrong | CheckFailed | None:
        """None if the learner's function is right on ``case`` (value and gradients)."""
        expected, want = self.outcome(self.reference, case, k)
        args = self.inputs(case)
        try:
            with self.context() as swap:  # a switched_off block swaps a library function
                got = (swap(self.fn) if callable(swap) else self.fn)(*args)
        except NotImplementedError:
            raise _not_written(self.name) from None
        except Exception as err:  # anything the learner's code raises
            wrong = self.on_error(err) if self.on_error is not None else None
            wrong = wrong or _called_what_is_switched_off(err)
            return wrong if wrong is not None else _raised(self.name, err, where)
        if not isinstance(got, torch.Tensor):
            return self.not_a_tensor(got)
        scalar = expected.ndim == 0
        if (got.numel() != 1) if scalar else (got.shape != expected.shape):
            return self.wrong_shape(case, k, expected, got)
        value = got.detach().double().cpu().reshape(expected.shape).numpy()
        the = f"The {self.output} {_num(float(value))}" if scalar else f"The {self.output}"
        if not np.all(np.isfinite(value)):
            return self.not_finite(case, k, expected, value)
        if not _close(value, expected):
            return self.wrong_value(case, k, expected, value)
        grad = self.grad(case)
        if not grad:
            return None
        if not got.requires_grad:
            names = " and ".join(f"`{self.arg_names[i]}`" for i in grad)
            return _Wrong(
                [
                    f"{the} is right, but it is cut off from autograd (it has no grad_fn), so "
                    f"backward() could not train anything with it."
                ],
                self.cut_off_hint
                or f"compute it from {names} with torch operations all the way: no .item(), "
                ".detach(), .numpy(), torch.tensor(...) or torch.no_grad() on the way.",
            )
        try:
            grads = _grads(got, [args[i] for i in grad], _cotangent(expected.shape, k))
        except Exception as err:  # e.g. an in-place change of a tensor autograd needed
            return _raised(self.name, err, where + " (computing its gradient with autograd)")
        for i, g, w in zip(grad, grads, want, strict=True):
            if not _close(g, w, GRAD_ATOL):
                return self.wrong_gradient(case, k, value, grads, the, self.arg_names[i], g, w)
        return None

    def not_a_tensor(self, got) -> _Wrong:
        if got is None:
            return _Wrong(
                ["It returned None."], "did you forget the `return` statement at the end?"
            )
        numpy = isinstance(got, np.ndarray | np.generic)
        kind = "a NumPy value" if numpy else f"a {type(got).__name__}"
        if isinstance(got, tuple):
            hint = "return one tensor: `return a, b` returns a tuple of two things."
        else:
            hint = self.not_tensor_hint or (
                "return a torch tensor, not .item(), float(...) or a NumPy array: autograd "
                "needs the tensor and the graph of operations behind it. Stay in torch all the "
                "way (no NumPy)."
            )
        shown = _short_repr(got)
        shown = shown if isinstance(got, tuple | list) else f"({shown})"
        return _Wrong([f"It returned {kind} {shown}, not a torch tensor."], hint)

    def wrong_shape(self, case, k, expected: np.ndarray, got: torch.Tensor) -> _Wrong:
        shape = tuple(got.shape)
        if expected.ndim == 0:
            line = f"Expected one number (a 0-dimensional tensor), got shape {_shape(shape)}."
        else:
            line = (
                f"Expected a tensor of shape {_shape(expected.shape)}, got shape {_shape(shape)}."
            )
        hint = self.mistake(case, k, got.detach().double().cpu().numpy())
        if hint is None and self.shape_hint is not None:
            hint = self.shape_hint(case, shape)
        return _Wrong([line], hint)

    def not_finite(self, case, k, expected: np.ndarray, value: np.ndarray) -> _Wrong:
        if value.ndim == 0:
            line = f"Expected {_a(self.output)} of {_num(float(expected))}, got {float(value)}."
        else:
            idx = tuple(np.argwhere(~np.isfinite(value))[0])
            line = (
                f"It returned NaN or infinity, first at index {_index(idx)} (got {value[idx]}, "
                f"expected {_num(float(expected[idx]))})."
            )
        hint = self.mistake(case, k, value)
        if hint is None:
            given = self.nonfinite_hint
            hint = given(case) if callable(given) else given
        return _Wrong(
            [line],
            hint
            or "NaN or inf: is there a log of 0 or of a negative number, a division by 0, or an "
            "exp that overflows?",
        )

    def wrong_value(self, case, k, expected: np.ndarray, value: np.ndarray) -> _Wrong:
        if value.ndim == 0:
            e, g = float(expected), float(value)
            error = _num(abs(g - e))
            line = f"Expected {_a(self.output)} of {_num(e)}, got {_num(g)} (error {error})."
        else:
            line = _value_report(expected, value)
        hint = self.mistake(case, k, value)
        if hint is None and self.extra_value_hint is not None:
            hint = self.extra_value_hint(case, value)
        return _Wrong([line], hint)

    def wrong_gradient(self, case, k, value, grads, the, arg, got, want) -> _Wrong:
        err = np.abs(got - want)
        idx = np.unravel_index(int(np.argmax(err)), err.shape)
        how = (
            "(from autograd)"
            if value.ndim == 0
            else "(from autograd, of (output · v).sum() for a fixed random v of the output's shape)"
        )
        line = (
            f"{the} is right, but its gradient with respect to {arg} {how} is not: largest "
            f"error {_num(float(err[idx]))} at index {_index(idx)}: expected "
            f"{_num(float(want[idx]))}, got {_num(float(got[idx]))}."
        )
        if self.gradient_formula:
            line += " " + self.gradient_formula
        hint = self.mistake(case, k, value, grads)
        if hint is None and not got.any():
            hint = (
                f"no gradient reaches {arg}: something on the way cuts it off from autograd "
                "(.detach(), .data, .item(), torch.no_grad(), torch.tensor(...), or a sampler "
                "such as torch.normal or Normal(...).sample())."
            )
        return _Wrong([line], hint)


def _cotangent(shape: tuple, k: int) -> torch.Tensor:
    """The weights ``v`` of case ``k``'s outputs, whose gradient the check compares, that of
    ``(output * v).sum()``: 1 for a scalar (its gradient itself), else fixed random numbers."""
    if len(shape) == 0:
        return torch.ones((), dtype=torch.float64)
    gen = torch.Generator().manual_seed(1000 + k)
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float64)


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], v: torch.Tensor) -> list[np.ndarray]:
    """The gradient of ``(out * v).sum()`` with respect to each input, as float64 arrays (zero
    where no gradient reaches)."""
    if not inputs:
        return []
    if not out.requires_grad:
        return [np.zeros(tuple(x.shape)) for x in inputs]
    cotangent = v.to(dtype=out.dtype, device=out.device).reshape(out.shape)
    grads = torch.autograd.grad(out, inputs, grad_outputs=cotangent, allow_unused=True)
    return [
        np.zeros(tuple(x.shape)) if g is None else g.detach().double().cpu().numpy()
        for g, x in zip(grads, inputs, strict=True)
    ]


def check_torch_function(
    fn: Callable,
    name: str,
    cases: Sequence[TorchCase],
    reference: Callable,
    mistakes: Sequence[Mistake] = (),
    *,
    arg_names: Sequence[str],
    output: str = "result",
    context: Callable[[], AbstractContextManager] = nullcontext,
    shape_hint: Callable[[TorchCase, tuple], str | None] | None = None,
    tag_hints: Mapping[str, str] | None = None,
    extra_value_hint: Callable[[TorchCase, np.ndarray], str | None] | None = None,
    on_error: Callable[[Exception], _Wrong | None] | None = None,
    not_tensor_hint: str | None = None,
    cut_off_hint: str | None = None,
    nonfinite_hint: Hint = None,
    gradient_formula: str | None = None,
) -> None:
    """Check a learner's PyTorch function ``fn`` against ``reference`` on ``cases``: print one
    line if every case matches, else raise ``CheckFailed`` about the first case that does not.

    On each case ``fn`` gets fresh copies of the arguments (in their own dtype; those named in
    ``case.grad`` require gradients; ``case.seed``: a seeded generator last), runs inside
    ``context()``, and must return a tensor of the reference's shape (a scalar reference: any
    tensor with one value) whose values equal the reference's, computed in float64, within
    ``RTOL``/``ATOL``. Then the gradient of ``(output * v).sum()`` (``v``: 1 for a scalar, else
    a fixed random tensor) with respect to each argument of ``case.grad`` must equal the
    reference's within ``RTOL``/``GRAD_ATOL``. Everything random the check draws comes from its
    own generators, and the learner's global random state is put back afterwards.

    ``mistakes``: ``(hint, wrong_function)`` pairs, functions with the reference's signature
    that make a classic mistake; the first whose value (shape included; NaN equals NaN) or, when
    only the gradient is wrong, whose value and gradients equal the learner's gives the hint.
    ``arg_names``: the arguments' names, for the labels and messages. ``output``: what the
    function returns, in words ("loss": "Expected a loss of ..."). The other options give hints:
    ``shape_hint(case, shape)`` on a wrong shape, ``extra_value_hint(case, value)`` on wrong
    values that no mistake explains, ``tag_hints`` {tag: hint} when only the cases with that
    tag fail, ``on_error(err)`` a ``_Wrong`` for an exception (else the generic message),
    ``not_tensor_hint``, ``cut_off_hint`` (right value, no grad_fn), ``nonfinite_hint`` (a
    text, or a function of the case), and ``gradient_formula``, added to a wrong gradient's
    report ("It should be ...").
    """
    check = _TorchCheck(
        fn, name, reference, mistakes, tuple(arg_names), output, context, shape_hint,
        extra_value_hint, on_error, not_tensor_hint, cut_off_hint, nonfinite_hint,
        gradient_formula,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):  # the learner's random state stays as it was
        failure = _run_cases(
            fn, name, [check.describe(c) for c in cases], check.run_case, tag_hints or {}
        )
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)
