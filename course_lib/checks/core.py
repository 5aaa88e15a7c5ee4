"""The machinery every check shares: the case type, the case runner, the one failure report,
the wording of the common mistakes (nothing returned, a crash, NaN ...), and the check of a
NumPy function (``_run``). The generic check of a PyTorch function, built on the same runner
and report, is in ``torch_function``.

A check makes its cases, runs the learner's function on each (``_run_cases``: a function per
case returns ``None`` when the case passes, a ``_Wrong`` that says what is wrong, or the
``CheckFailed`` of a crash), then ``_report`` prints one line of success or returns the failure
of the first case that went wrong, with a hint and the list of failing cases; the check raises
it itself, so that the learner's traceback is short: their cell, then the check.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RTOL = 1e-4
ATOL = 1e-4
GRAD_ATOL = 1e-5  # gradients: of order 1/N, compared a little more tightly


class CheckFailed(AssertionError):
    """Raised by a check when the learner's function gives a wrong answer."""


@dataclass
class _Case:
    """One call of the learner's function: what it is, the arguments, the expected result."""

    label: str
    args: tuple
    expected: np.ndarray
    tags: frozenset[str] = field(default_factory=frozenset)
    info: dict = field(default_factory=dict)


@dataclass
class _Wrong:
    """What a case found wrong, in lines of text, and a hint if the mistake is a known one."""

    lines: list[str]
    hint: str | None = None


# ----------------------------------------------------------------------------- words


def _shape(shape: Sequence[int]) -> str:
    """``(2, 3, 7, 5) -> '(2, 3, 7, 5)'``, as NumPy prints ``a.shape``."""
    return str(tuple(int(s) for s in shape))


def _num(v: float) -> str:
    return f"{v:.4g}"


def _index(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _off_by_one_words(size_name: str, formula: str, value: int) -> str:
    return (
        f"off-by-one output size. The number of window positions is "
        f"{size_name} = {formula} = {value}: loop with range({size_name}), and count the last "
        f"window too (the + 1)."
    )


def _not_written(name: str) -> CheckFailed:
    return CheckFailed(
        f"{name} is not written yet: replace `raise NotImplementedError()` in its cell with "
        f"your code, run that cell, then run this check again."
    )


def _not_callable(name: str, fn) -> CheckFailed:
    return CheckFailed(
        f"check_{name} needs your function itself, e.g. check_{name}({name}), "
        f"got a {type(fn).__name__}."
    )


_TORCH_ERRORS = [
    (
        ("does not require grad", "does not have a grad_fn"),
        "the loss is cut off from autograd, so backward() has nothing to follow: compute it "
        "from model(x) with torch operations, outside `with torch.no_grad():`, and without "
        ".item(), .detach(), .numpy() or torch.tensor(...) on the way.",
    ),
    (
        ("backward through the graph a second time",),
        "backward() ran twice through the same graph: call loss.backward() once per step, "
        "on a loss computed from this batch.",
    ),
    (
        ("in-place operation", "inplace operation"),
        "don't change a tensor that autograd needs in place (logits -= m, logits.sub_(m), "
        "x[...] = ...): make a new one instead, e.g. z = logits - m.",
    ),
    (
        ("numpy()",),
        "stay in torch: NumPy cannot follow gradients. torch has exp, log, max and sum too.",
    ),
    (
        ("implicitly created only for scalar outputs",),
        "the loss must be one number: average over the batch (.mean()).",
    ),
    (
        ("expected scalar type Long", "tensors used as indices must be long"),
        "y holds int64 labels: use it as an index (z[torch.arange(N), y]), not as a float.",
    ),
]


def _torch_error_hint(err: Exception) -> str | None:
    """Words for the errors PyTorch raises at the classic mistakes of a loss or a step."""
    text = str(err)
    for needles, hint in _TORCH_ERRORS:
        if any(n in text for n in needles):
            return hint
    return None


def _raised(name: str, err: Exception, where: str) -> CheckFailed:
    hint = _torch_error_hint(err)
    failure = CheckFailed(
        f"{name} raised {type(err).__name__}: {err}\non {where}.\n"
        + (
            f"Hint: {hint}"
            if hint
            else "Read the traceback above to find the line of your function that failed; "
            "print the shapes of your arrays or tensors just before it."
        )
    )
    failure.__cause__ = err
    return failure


def _called_what_is_switched_off(err: Exception) -> _Wrong | None:
    """The report of a learner's function that called a library function switched off for its
    task (a ``SwitchedOff``, e.g. ``CourseFunctionUsed``); None for any other error."""
    if not isinstance(err, SwitchedOff):
        return None
    return _Wrong(
        [f"It calls {err.name}, which is switched off in this check and in the grader."],
        f"this exercise asks you to {err.task} See the task's text for what is allowed.",
    )


def _call(fn: Callable, name: str, args: tuple, where: str):
    """``fn(*args)``; not written yet raises ``CheckFailed`` (which stops the check), any other
    exception of the learner's code is returned as the ``CheckFailed`` that describes it (a
    ``_Wrong`` when it called a function switched off for the task)."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _not_written(name) from None
    except Exception as err:  # anything the learner's code raises
        return _called_what_is_switched_off(err) or _raised(name, err, where)


# ----------------------------------------------------------------------------- runner and report


def _tag_hint(cases: Sequence, failed: list[int], tag_hints: Mapping[str, str]) -> str | None:
    """A hint when exactly the cases with one tag fail (e.g. only those with padding)."""
    failing = set(failed)
    for tag, hint in tag_hints.items():
        with_tag = {i for i, c in enumerate(cases) if tag in c.tags}
        if with_tag and failing <= with_tag and len(failing) < len(cases):
            return hint
    return None


def _report(
    name: str, cases: Sequence, results: list, tag_hints: Mapping[str, str]
) -> CheckFailed | None:
    """One line of success, or the failure of the first case that went wrong: an error it
    raised (a ``CheckFailed`` already), or a ``_Wrong``, with a hint and the failing cases."""
    total = len(cases)
    failed = [k for k, r in enumerate(results) if r is not None]
    if not failed:
        print(f"✓ {name}: all {total} cases match the reference.")
        return None
    k = failed[0]
    if isinstance(results[k], CheckFailed):
        return results[k]
    wrong: _Wrong = results[k]
    lines = [f"{name} is wrong on case {k + 1} of {total}: {cases[k].label}.", *wrong.lines]
    hint = wrong.hint or _tag_hint(cases, failed, tag_hints)
    if hint:
        lines.append("Hint: " + hint)
    passed = [i + 1 for i in range(total) if i not in failed]
    lines.append(
        f"Cases that fail: {', '.join(str(i + 1) for i in failed)}"
        + (f"; cases that pass: {', '.join(map(str, passed))}." if passed else " (all of them).")
    )
    return CheckFailed("\n".join(lines))


def _run_cases(
    fn: Callable,
    name: str,
    cases: Sequence,
    run_case: Callable[[int, Any, str], _Wrong | CheckFailed | None],
    tag_hints: Mapping[str, str],
) -> CheckFailed | None:
    """Run ``run_case(k, case, where)`` on every case (``k`` counts from 0, ``where`` is
    'case k + 1 of n: label'); print one line of success and return None, or return the
    failure to raise. ``run_case`` returns None (the case passes), a ``_Wrong`` or a
    ``CheckFailed`` (reported if no earlier case went wrong); a ``CheckFailed`` that it
    *raises* (not written yet) stops the check at once."""
    if not callable(fn):
        return _not_callable(name, fn)
    results = []
    for k, case in enumerate(cases):
        try:
            results.append(run_case(k, case, f"case {k + 1} of {len(cases)}: {case.label}"))
        except CheckFailed as err:
            return err
    return _report(name, cases, results, tag_hints)


# ----------------------------------------------------------------------------- NumPy checks


def _as_array(got, name: str, where: str) -> np.ndarray:
    """The learner's return value as a float64 array, or a CheckFailed that says why not."""
    if got is None:
        raise CheckFailed(
            f"{name} returned None on {where}. Did you forget the `return` statement at the "
            f"end of your function?"
        )
    if hasattr(got, "detach") and hasattr(got, "numpy"):
        raise CheckFailed(
            f"{name} returned a torch tensor on {where}; return a NumPy array "
            f"(work with NumPy here, or convert with t.detach().cpu().numpy())."
        )
    if isinstance(got, tuple) and len(got) > 1:
        raise CheckFailed(
            f"{name} returned a tuple of {len(got)} things on {where}; it must return one "
            f"NumPy array."
        )
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise CheckFailed(
            f"{name} must return a NumPy array of numbers, got a {type(got).__name__} "
            f"on {where} ({err})."
        ) from None
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise CheckFailed(
            f"{name} returned NaN or infinity on {where}, first at index {list(map(int, bad))}. "
            f"Did you start from np.empty (which holds garbage) instead of np.zeros, or divide "
            f"by zero?"
        )
    return arr


def _close(a: np.ndarray, b: np.ndarray, atol: float = ATOL) -> bool:
    """Same shape and values, within the tolerances; NaN and inf equal themselves (so that a
    classic mistake that gives NaN is recognised too)."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=atol, equal_nan=True))


def _first_match(got: np.ndarray, candidates: Iterable[tuple[str, Callable[[], object]]]):
    """The hint of the first candidate wrong answer that ``got`` equals, else None."""
    for hint, make in candidates:
        try:
            cand = make()
        except Exception:  # a candidate that does not apply to this case
            continue
        if cand is None:
            continue
        cand = np.asarray(cand, dtype=np.float64)
        if _close(got, cand):
            return hint
    return None


def _value_report(expected: np.ndarray, got: np.ndarray) -> str:
    """'the shape is right, but K of M values differ; largest error ... at index ...'."""
    err = np.abs(got - expected)
    wrong = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL)
    idx = np.unravel_index(int(np.argmax(err)), err.shape)
    index = _index(idx)
    return (
        f"The shape {_shape(got.shape)} is right, but {int(wrong.sum())} of {got.size} values "
        f"differ.\nLargest error {_num(float(err[idx]))} at index {index}: expected "
        f"{_num(float(expected[idx]))}, got {_num(float(got[idx]))}."
    )


def _run(
    fn: Callable,
    name: str,
    cases: list[_Case],
    shape_hint: Callable[[_Case, tuple], str | None],
    value_candidates: Callable[[_Case], list[tuple[str, Callable[[], object]]]],
    tag_hints: Mapping[str, str],
    extra_value_hint: Callable[[_Case, np.ndarray], str | None] | None = None,
) -> CheckFailed | None:
    """The check of a NumPy function: each case's result must equal ``case.expected``. Returns
    the failure to raise, or None after printing one line of success."""

    def run_case(k: int, case: _Case, where: str):
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in case.args)
        got = _call(fn, name, args, where)
        if isinstance(got, CheckFailed | _Wrong):
            return got
        try:
            got = _as_array(got, name, where)
        except CheckFailed as err:
            return err
        if _close(got, case.expected):
            return None
        if got.shape != case.expected.shape:
            lines = [f"Expected an array of shape {case.expected.shape}, got shape {got.shape}."]
            return _Wrong(lines, shape_hint(case, got.shape))
        hint = _first_match(got, value_candidates(case))
        if hint is None and extra_value_hint is not None:
            hint = extra_value_hint(case, got)
        return _Wrong([_value_report(case.expected, got)], hint)

    return _run_cases(fn, name, cases, run_case, tag_hints)


class SwitchedOff(RuntimeError):
    """Raised, inside ``switched_off``, by a library function that an exercise asks the learner
    to write by hand; a subclass per exercise says what to do instead (``task``)."""

    task = "write it yourself."

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{name} is switched off here: this exercise asks you to {self.task}")


@contextmanager
def switched_off(
    table: Sequence[tuple[object, str, str]], error: type[Exception]
) -> Iterator[Callable[[Callable], Callable]]:
    """Inside this block, each ``(owner, attribute, name)`` of ``table`` (e.g. ``(F,
    "pixel_shuffle", "F.pixel_shuffle")``) that exists is replaced by a function that raises
    ``error(name)``: the check and the grader run a learner's function in it when the task is to
    write by hand what a library already has. Everything is put back on the way out, also after
    an error or an interrupt (a global rebound inside the block is put back too).

    A learner's own name for such a function is switched off as well: every global of the
    notebook (the ``__main__`` module, where a kernel runs its cells) whose value *is* one of the
    functions (``from torch.nn.functional import pixel_shuffle as ps``, ``k =
    vae.kl_divergence``). The block yields ``swap(fn)``, which does the same in the module of
    the learner's function ``fn`` and returns what to call: the refusing function if ``fn`` is
    itself one of them (a learner who hands in the library's function), else ``fn``. (A
    ``functools.partial`` of one is another object: the tests' right answers are such.)"""

    def blocked(name: str, original: Callable) -> Callable:
        def refuse(*args, **kwargs):
            raise error(name)

        refuse.switched_off = original  # the library's function, also inside another block
        return refuse

    missing = object()
    saved, renamed = [], []
    replacements = {}  # id of the library's function (and of an outer block's refusal) -> refusal
    scanned = set()

    def rename_in(namespace: object) -> None:
        if isinstance(namespace, dict) and id(namespace) not in scanned:
            scanned.add(id(namespace))
            for key, value in list(namespace.items()):
                if id(value) in replacements:
                    renamed.append((namespace, key, value))
                    namespace[key] = replacements[id(value)]

    def swap(fn: Callable) -> Callable:
        unwrapped = inspect.unwrap(fn) if callable(fn) else fn
        rename_in(getattr(unwrapped, "__globals__", None))  # the learner's module
        return replacements.get(id(fn), replacements.get(id(unwrapped), fn))

    try:
        for owner, attr, name in table:
            if hasattr(owner, attr):
                current = getattr(owner, attr)
                original = getattr(current, "switched_off", current)
                replacement = blocked(name, original)  # its own name (F.pixel_shuffle is torch's)
                replacements.setdefault(id(original), replacement)
                replacements.setdefault(id(current), replacement)
                saved.append((owner, attr, owner.__dict__.get(attr, missing)))
                setattr(owner, attr, replacement)
        rename_in(getattr(sys.modules.get("__main__"), "__dict__", None))
        yield swap
    finally:
        for namespace, key, original in reversed(renamed):
            namespace[key] = original
        for owner, attr, original in reversed(saved):
            if original is missing:
                delattr(owner, attr)  # it was inherited (e.g. a method of torch's C tensor base)
            else:
                setattr(owner, attr, original)


class CourseFunctionUsed(SwitchedOff):
    """Raised, inside ``graded_without``, by the course's own function that a task asks the
    learner to write: calling it would hand in the course's answer."""

    task = "write it yourself: the course's own function is the answer to this task."


def graded_without(fn: Callable, *names: str) -> Callable:
    """``fn``, run with the course's own functions ``names`` (e.g. ``"generative.vae.
    kl_divergence"``, relative to ``course_lib``) switched off: each raises
    ``CourseFunctionUsed`` while ``fn`` runs, under any name the learner's module gives it, and
    ``fn`` itself if it is one of them. The checks and the tests of a task whose answer
    ``course_lib`` holds run the learner's function this way."""
    if not callable(fn):
        return fn  # the check says what it needs
    table = []
    for name in names:
        module, _, attr = f"course_lib.{name}".rpartition(".")
        table.append((importlib.import_module(module), attr, f"course_lib's {name}"))
    for owner, attr, _ in table:
        if not callable(getattr(owner, attr, None)):
            raise ValueError(f"no function {owner.__name__}.{attr} to switch off")
    return graded_with_switched_off(fn, table, CourseFunctionUsed)


def graded_with_switched_off(
    fn: Callable, table: Sequence[tuple[object, str, str]], error: type[Exception]
) -> Callable:
    """``fn``, each call run inside ``switched_off(table, error)`` (and refused if ``fn`` is itself
    one of the functions of ``table``): how a check and a test cell grade a learner's function
    without the ready-made answers (``graded_without`` for the course's own functions)."""
    if not callable(fn):
        return fn  # the check says what it needs

    @functools.wraps(fn)
    def graded(*args, **kwargs):
        with switched_off(table, error) as swap:
            return swap(fn)(*args, **kwargs)

    return graded
