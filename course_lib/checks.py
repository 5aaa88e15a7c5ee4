"""Instant checks for the exercise notebooks: call one on your function and read what it says.

    from course_lib.checks import check_conv2d
    check_conv2d(conv2d)

Each check runs your function on a handful of random cases (small and large, square and not,
with and without stride and padding, batch 1, one channel ...) and compares the result with the
course's reference implementation in ``course_lib.scratch``. The checks of the PyTorch exercises
(03 on) compare with a reference on identical inputs: the value and the gradient of a loss, the
weights after a training step.

* Right answer: it prints one line, ``✓ conv2d: all 8 cases match the reference.``
* Wrong answer: it raises ``CheckFailed`` (an ``AssertionError``) whose message says which case
  failed (the shapes, stride and padding), the expected and the returned shape, the largest
  error and where it is, and, when it recognises a classic mistake (a flipped kernel, an
  off-by-one output size, a gradient sent to every position of a pooling window, a loss that
  overflows, gradients that accumulate ...), a hint.

The checks are for learning; grading is done by nbgrader's hidden tests in the notebooks.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import scratch

__all__ = [
    "CheckFailed",
    "LibraryLossUsed",
    "check_conv2d",
    "check_conv2d_backward_weights",
    "check_cross_entropy",
    "check_max_pool2d",
    "check_max_pool2d_backward",
    "check_sobel_edges",
    "check_training_step",
    "library_losses_disabled",
]

RTOL = 1e-4
ATOL = 1e-4


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


# ----------------------------------------------------------------------------- helpers


def _shape(shape: Sequence[int]) -> str:
    """``(2, 3, 7, 5) -> '(2, 3, 7, 5)'``, as NumPy prints ``a.shape``."""
    return str(tuple(int(s) for s in shape))


def _num(v: float) -> str:
    return f"{v:.4g}"


def _call(fn: Callable, name: str, case: _Case, number: int, total: int):
    """Call ``fn`` on copies of the case's arguments; turn its exceptions into clear words."""
    args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in case.args)
    try:
        return fn(*args)
    except NotImplementedError:
        raise _not_written(name) from None
    except Exception as err:  # anything the learner's code raises
        raise _raised(name, err, f"case {number} of {total}: {case.label}") from err


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


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _first_match(got: np.ndarray, candidates: list[tuple[str, Callable[[], object]]]):
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


def _tag_hint(cases: list[_Case], failed: list[int], tag_hints: dict[str, str]) -> str | None:
    """A hint when exactly the cases with one tag fail (e.g. only those with padding)."""
    failing = set(failed)
    for tag, hint in tag_hints.items():
        with_tag = {i for i, c in enumerate(cases) if tag in c.tags}
        if with_tag and failing <= with_tag and len(failing) < len(cases):
            return hint
    return None


@dataclass
class _Wrong:
    """What a case found wrong, in lines of text, and a hint if the mistake is a known one."""

    lines: list[str]
    hint: str | None = None


def _not_written(name: str) -> CheckFailed:
    return CheckFailed(
        f"{name} is not written yet: replace `raise NotImplementedError()` in its cell with "
        f"your code, run that cell, then run this check again."
    )


def _torch_error_hint(err: Exception) -> str | None:
    """Words for the errors PyTorch raises at the classic mistakes of a loss or a step."""
    text = str(err)
    known = [
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
    for needles, hint in known:
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


def _report(
    name: str, cases: list[_Case], results: list, tag_hints: dict[str, str]
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


def _index(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _run(
    fn: Callable,
    name: str,
    cases: list[_Case],
    shape_hint: Callable[[_Case, tuple], str | None],
    value_candidates: Callable[[_Case], list[tuple[str, Callable[[], object]]]],
    tag_hints: dict[str, str],
    extra_value_hint: Callable[[_Case, np.ndarray], str | None] | None = None,
) -> CheckFailed | None:
    """Run every case; print one line of success and return None, or return the failure to
    raise, which describes the first case that went wrong (the check raises it, so that the
    learner's traceback is short: their cell, then the check)."""
    if not callable(fn):
        return CheckFailed(
            f"check_{name} needs your function itself, e.g. check_{name}({name}), "
            f"got a {type(fn).__name__}."
        )
    results: list[_Wrong | CheckFailed | None] = []
    for k, case in enumerate(cases):
        where = f"case {k + 1} of {len(cases)}: {case.label}"
        try:
            got = _as_array(_call(fn, name, case, k + 1, len(cases)), name, where)
        except CheckFailed as err:
            if "not written yet" in str(err):
                return err
            results.append(err)  # reported if no earlier case went wrong
            continue
        if _close(got, case.expected):
            results.append(None)
        elif got.shape != case.expected.shape:
            lines = [f"Expected an array of shape {case.expected.shape}, got shape {got.shape}."]
            results.append(_Wrong(lines, shape_hint(case, got.shape)))
        else:
            hint = _first_match(got, value_candidates(case))
            if hint is None and extra_value_hint is not None:
                hint = extra_value_hint(case, got)
            results.append(_Wrong([_value_report(case.expected, got)], hint))
    return _report(name, cases, results, tag_hints)


def _off_by_one_words(size_name: str, formula: str, value: int) -> str:
    return (
        f"off-by-one output size. The number of window positions is "
        f"{size_name} = {formula} = {value}: loop with range({size_name}), and count the last "
        f"window too (the + 1)."
    )


# ----------------------------------------------------------------------------- conv2d


_FLIP_HINT = (
    "your result is the *true* convolution: you flipped the kernel. In deep learning, "
    "'convolution' is cross-correlation, with no flip: "
    "y[n, f, i, j] = b[f] + Σ_c Σ_m Σ_k x_pad[n, c, i·s + m, j·s + k] · w[f, c, m, k]."
)


def _conv_cases(rng: np.random.Generator) -> list[_Case]:
    # (label, N, C, H, W, F, KH, KW, stride, padding, bias, tags)
    specs = [
        ("one 5×5 image with one channel, one 3×3 filter", 1, 1, 5, 5, 1, 3, 3, 1, 0, True, ()),
        ("a 1×1 kernel", 2, 3, 4, 4, 2, 1, 1, 1, 0, True, ()),
        ("a non-square image and kernel", 2, 3, 7, 5, 4, 3, 2, 1, 0, True, ()),
        ("padding 1", 2, 2, 6, 6, 3, 3, 3, 1, 1, True, ("padding",)),
        ("stride 2", 1, 3, 7, 7, 2, 3, 3, 2, 0, True, ("stride",)),
        ("stride 2 and padding 2, non-square", 2, 2, 9, 8, 3, 5, 3, 2, 2, True,
         ("stride", "padding")),
        ("stride 3, where the last windows do not fit", 1, 1, 8, 10, 1, 2, 3, 3, 1, True,
         ("stride", "padding")),
        ("no bias (b=None)", 2, 2, 5, 6, 2, 3, 3, 1, 0, False, ("no-bias",)),
    ]  # fmt: skip
    cases = []
    for label, n, c, h, w_, f, kh, kw, s, p, bias, tags in specs:
        x = rng.standard_normal((n, c, h, w_))
        w = rng.standard_normal((f, c, kh, kw))
        b = rng.standard_normal(f) if bias else None
        desc = (
            f"{label}: x of shape {_shape(x.shape)}, w of shape {_shape(w.shape)}, "
            f"{f'b of length {f}' if bias else 'b=None'}, stride={s}, padding={p}"
        )
        cases.append(
            _Case(
                desc,
                (x, w, b, s, p),
                scratch.conv2d(x, w, b, stride=s, padding=p),
                frozenset(tags),
                dict(n=n, c=c, h=h, w=w_, f=f, kh=kh, kw=kw, s=s, p=p),
            )
        )
    return cases


def _conv_shape_hint(case: _Case, got: tuple) -> str | None:
    i = case.info
    n, c, f, s, p = i["n"], i["c"], i["f"], i["s"], i["p"]
    oh, ow = case.expected.shape[2:]
    if len(got) != 4:
        return (
            f"conv2d returns a 4-D array N × F × OH × OW (here {_shape(case.expected.shape)}): "
            f"one output image per input image, one channel per filter."
        )
    if got[0] != n:
        return f"the first axis is the batch: one output per input image, N = {n}."
    if got[1] != f:
        if got[1] == c:
            return (
                f"there is one output channel per filter, F = w.shape[0] = {f}, not one per "
                f"input channel (C = {c}): sum over the input channels."
            )
        return f"the second axis has one entry per filter, F = w.shape[0] = {f}."

    def size(h, k, stride, pad):
        return (h + 2 * pad - k) // stride + 1

    for axis, (name, h, k, o) in enumerate(
        (("OH", i["h"], i["kh"], oh), ("OW", i["w"], i["kw"], ow))
    ):
        g = got[2 + axis]
        if g == o:
            continue
        side = "H" if axis == 0 else "W"
        kname = "KH" if axis == 0 else "KW"
        formula = f"floor(({side} + 2p − {kname})/s) + 1 = floor(({h} + 2·{p} − {k})/{s}) + 1"
        if p and g == size(h, k, s, 0):
            return (
                f"your output has the size of an unpadded input: pad x with {p} row(s)/column(s) "
                f"of zeros on every side first, e.g. np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))."
            )
        if s > 1 and g == size(h, k, 1, p):
            return (
                f"your output has the size for stride 1: with stride s the window moves s "
                f"pixels at a time, so {name} = {formula} = {o}."
            )
        if abs(g - o) == 1 or g == (h + 2 * p - k) // s or g == -(-(h + 2 * p - k + 1) // s):
            return _off_by_one_words(name, formula, o)
        return f"the output size is {name} = {formula} = {o}."
    return None


def _conv_candidates(case: _Case):
    x, w, b, s, p = case.args
    oh, ow = case.expected.shape[2:]
    c = x.shape[1]
    return [
        (_FLIP_HINT, lambda: scratch.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, stride=s, padding=p)),
        (
            "you forgot the bias: add b[f] to every output value of filter f.",
            lambda: scratch.conv2d(x, w, None, stride=s, padding=p) if b is not None else None,
        ),
        (
            f"the bias was added once per input channel ({c} times); add b[f] once, after "
            f"summing over the channels.",
            lambda: (
                case.expected + (c - 1) * b[None, :, None, None]
                if b is not None and c > 1
                else None
            ),
        ),
        (
            "the kernel's two axes are swapped: use w[f, c, m, k] with m along the height "
            "(rows) and k along the width (columns).",
            lambda: (
                scratch.conv2d(x, w.swapaxes(2, 3).copy(), b, stride=s, padding=p)
                if w.shape[2] == w.shape[3]
                else None
            ),
        ),
        (
            "the windows start at i and j instead of i·stride and j·stride: with stride s, "
            "output (i, j) reads the window whose top-left corner is x_pad[i·s, j·s].",
            lambda: scratch.conv2d(x, w, b, stride=1, padding=p)[:, :, :oh, :ow] if s > 1 else None,
        ),
    ]


_CONV_TAGS = {
    "no-bias": "it only fails when b is None: then there is no bias to add.",
    "padding": (
        "it only fails with padding > 0: pad x with zeros on all four sides (np.pad) and slide "
        "the window over the padded image."
    ),
    "stride": (
        "it only fails with stride > 1: output (i, j) reads the window whose top-left "
        "corner is x_pad[i·s, j·s]."
    ),
}


def check_conv2d(conv2d: Callable, seed: int = 0) -> None:
    """Check ``conv2d(x, w, b, stride, padding)`` (cross-correlation) on random cases.

    Compares with ``course_lib.scratch.conv2d``; prints one line if all cases match, else
    raises ``CheckFailed`` saying which case failed and why (flipped kernel, output size ...).
    """
    cases = _conv_cases(np.random.default_rng(seed))
    failure = _run(conv2d, "conv2d", cases, _conv_shape_hint, _conv_candidates, _CONV_TAGS)
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


# ----------------------------------------------------------------------------- Sobel edges


def _sobel_parts(image: np.ndarray, kx: np.ndarray, ky: np.ndarray):
    return scratch.filter2d(image, kx), scratch.filter2d(image, ky)


def _sobel_reference(image: np.ndarray) -> np.ndarray:
    k = scratch.classic_kernels()
    gx, gy = _sobel_parts(image, k["sobel_x"], k["sobel_y"])
    return np.sqrt(gx**2 + gy**2)


def _sobel_cases(rng: np.random.Generator) -> list[_Case]:
    from course_lib.data import photo

    images = [
        ("a random 6×6 image", rng.random((6, 6))),
        ("a random non-square 9×14 image", rng.random((9, 14))),
        ("a constant 5×7 image: edges only at the zero padding", np.full((5, 7), 0.5)),
        ("the 'camera' photo, 512×512", photo("camera").astype(np.float64)),
    ]  # fmt: skip
    return [_Case(label, (img,), _sobel_reference(img)) for label, img in images]


def _sobel_shape_hint(case: _Case, got: tuple) -> str | None:
    h, w = case.expected.shape
    if len(got) == 2 and got == (h - 2, w - 2):
        return (
            "your edge map is 2 pixels smaller than the image: pad by 1 pixel of zeros on every "
            "side so that it keeps the image's size H × W (scratch.filter2d does that for you)."
        )
    if len(got) != 2:
        return f"return one grey H × W array (here {h} × {w}), the gradient magnitude."
    return f"the edge map has the size of the image, {h} × {w}."


def _sobel_candidates(case: _Case):
    (image,) = case.args
    k = scratch.classic_kernels()
    gx, gy = _sobel_parts(image, k["sobel_x"], k["sobel_y"])
    ref = case.expected
    prewitt_x = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], float)
    return [
        (
            "you forgot the square root: the magnitude is sqrt(gx² + gy²), not gx² + gy².",
            lambda: gx**2 + gy**2,
        ),
        (
            "you used |gx| + |gy|; the gradient magnitude is sqrt(gx² + gy²) (np.hypot).",
            lambda: np.abs(gx) + np.abs(gy),
        ),
        (
            "only the horizontal derivative gx is in your result; combine both Sobel responses: "
            "sqrt(gx² + gy²).",
            lambda: np.abs(gx),
        ),
        (
            "only the vertical derivative gy is in your result; combine both Sobel responses: "
            "sqrt(gx² + gy²).",
            lambda: np.abs(gy),
        ),
        (
            "don't rescale the result (e.g. divide by its maximum): return the magnitude itself.",
            lambda: ref / ref.max() if ref.max() > 0 else None,
        ),
        (
            "those are Prewitt kernels (weights 1, 1, 1); Sobel's give the middle row/column "
            "weight 2: [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]].",
            lambda: np.hypot(*_sobel_parts(image, prewitt_x, prewitt_x.T)),
        ),
    ]


def _border_only_hint(case: _Case, got: np.ndarray) -> str | None:
    wrong = ~np.isclose(got, case.expected, rtol=RTOL, atol=ATOL)
    inner = wrong[1:-1, 1:-1] if wrong.ndim == 2 else wrong
    if wrong.ndim == 2 and wrong.any() and not inner.any():
        return (
            "only the border pixels are wrong: pad with zeros (not by repeating or mirroring "
            "the edge pixels), as scratch.filter2d does."
        )
    return None


def check_sobel_edges(sobel_edges: Callable, seed: int = 0) -> None:
    """Check ``sobel_edges(image) -> H x W`` gradient magnitude on random images and a photo.

    The reference is ``sqrt(gx**2 + gy**2)`` with ``gx, gy`` the zero-padded ("same" size)
    cross-correlations of the image with the Sobel kernels ``sobel_x`` and ``sobel_y``.
    """
    cases = _sobel_cases(np.random.default_rng(seed))
    failure = _run(
        sobel_edges,
        "sobel_edges",
        cases,
        _sobel_shape_hint,
        _sobel_candidates,
        {},
        extra_value_hint=_border_only_hint,
    )
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


# ----------------------------------------------------------------------------- max pooling


def _pool_specs():
    # (label, shape, kernel, stride or None, tags)
    return [
        ("one 4×4 image, 2×2 windows", (1, 1, 4, 4), 2, None, ()),
        ("3×3 windows, batch of 2, 3 channels", (2, 3, 6, 6), 3, None, ()),
        ("a 7×5 image: the last row and column fit no 2×2 window", (2, 2, 7, 5), 2, None,
         ("leftover",)),
        ("overlapping windows: kernel 2, stride 1", (1, 2, 5, 6), 2, 1, ("overlap",)),
        ("kernel 3, stride 2 (windows overlap by one)", (2, 1, 7, 9), 3, 2, ("overlap",)),
    ]  # fmt: skip


def _pool_args(x, k, s):
    return (x, k) if s is None else (x, k, s)


def _pool_label(label, x, k, s, what="x"):
    stride = "stride=None (= kernel_size)" if s is None else f"stride={s}"
    return f"{label}: {what} of shape {_shape(x.shape)}, kernel_size={k}, {stride}"


def _pool_shape_hint(case: _Case, got: tuple) -> str | None:
    n, c, h, w = case.info["shape"]
    k, s = case.info["k"], case.info["s"]
    step = k if s is None else s
    oh, ow = case.expected.shape[2:]
    if len(got) != 4:
        return "pooling keeps the batch and channel axes: the result is N × C × OH × OW."
    if got[:2] != (n, c):
        return f"pooling works on each image and channel separately: keep N = {n} and C = {c}."
    if s is None and got[2:] == ((h - k) + 1, (w - k) + 1):
        return (
            "your windows overlap: by default the stride equals the kernel size, so the "
            f"windows are side by side and OH = floor((H − K)/K) + 1 = {oh}."
        )
    if s is not None and s != k and got[2:] == ((h - k) // k + 1, (w - k) // k + 1):
        return (
            f"you ignored the stride: here the windows start every {s} "
            f"pixel{'s' * (s > 1)}, not every K = {k}, so "
            f"OH = floor((H − K)/s) + 1 = floor(({h} − {k})/{s}) + 1 = {oh}."
        )
    if got[2:] == (-(-(h - k) // step) + 1, -(-(w - k) // step) + 1) or got[2:] == (
        -(-h // step),
        -(-w // step),
    ):
        return (
            "you kept the last, incomplete windows: only whole windows count, "
            f"OH = floor((H − K)/s) + 1 = floor(({h} − {k})/{step}) + 1 = {oh}."
        )
    return _off_by_one_words("OH", f"floor(({h} − {k})/{step}) + 1", oh) + f" (and OW = {ow})"


def _max_pool_cases(rng: np.random.Generator) -> list[_Case]:
    cases = []
    for label, shape, k, s, tags in _pool_specs():
        x = rng.standard_normal(shape)
        cases.append(
            _Case(
                _pool_label(label, x, k, s),
                _pool_args(x, k, s),
                scratch.max_pool2d(x, k, s),
                frozenset(tags),
                dict(shape=shape, k=k, s=s),
            )
        )
    return cases


def _max_pool_candidates(case: _Case):
    x, k, s = (case.args + (None,))[:3]
    return [
        (
            "you averaged each window: that is average pooling. Max pooling keeps the largest "
            "value of each window (np.max over the window).",
            lambda: scratch.avg_pool2d(x, k, s),
        ),
        (
            "you took the smallest value of each window; max pooling keeps the largest.",
            lambda: -scratch.max_pool2d(-x, k, s),
        ),
        (
            "you summed each window; max pooling keeps its largest value.",
            lambda: scratch.avg_pool2d(x, k, s) * k * k,
        ),
        (
            "you took the largest absolute value; max pooling keeps the largest value, sign "
            "included (no np.abs).",
            lambda: scratch.max_pool2d(np.abs(x), k, s),
        ),
    ]


_POOL_TAGS = {
    "overlap": (
        "it only fails when the stride differs from the kernel size: window (i, j) starts at "
        "row i·stride and column j·stride."
    ),
    "leftover": (
        "it only fails when the image size is not a multiple of the window: the last rows and "
        "columns that fit no whole window are dropped."
    ),
}


def check_max_pool2d(max_pool2d: Callable, seed: int = 0) -> None:
    """Check ``max_pool2d(x, kernel_size, stride=None)`` against ``scratch.max_pool2d``."""
    cases = _max_pool_cases(np.random.default_rng(seed))
    failure = _run(
        max_pool2d, "max_pool2d", cases, _pool_shape_hint, _max_pool_candidates, _POOL_TAGS
    )
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


# ----------------------------------------------------------------------------- max-pool backward


def _max_pool_backward_cases(rng: np.random.Generator) -> list[_Case]:
    cases = []
    for label, shape, k, s, tags in _pool_specs():
        x = rng.standard_normal(shape)  # continuous values: no ties inside a window
        dout = rng.standard_normal(scratch.max_pool2d(x, k, s).shape)
        args = (dout, x, k) if s is None else (dout, x, k, s)
        cases.append(
            _Case(
                _pool_label(label, x, k, s) + f", dout of shape {_shape(dout.shape)}",
                args,
                scratch.max_pool2d_backward(dout, x, k, s),
                frozenset(tags),
                dict(shape=shape, k=k, s=s),
            )
        )
    return cases


def _overwrite_max_pool_backward(dout, x, k, s):
    """The classic mistake with overlapping windows: ``dx[...] = dout`` instead of ``+=``."""
    s = k if s is None else s
    dx = np.zeros_like(x)
    n, c, oh, ow = dout.shape
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    win = x[a, b, i * s : i * s + k, j * s : j * s + k]
                    m, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[a, b, i * s + m, j * s + q] = dout[a, b, i, j]
    return dx


def _max_pool_backward_candidates(case: _Case):
    dout, x, k, s = (case.args + (None,))[:4]
    mask_only = (scratch.max_pool2d_backward(np.ones_like(dout), x, k, s) > 0).astype(float)
    return [
        (
            "you sent the gradient to every position of the pooling window. Only the position "
            "that held the maximum influenced the output, so only it gets dout[n, c, i, j]; the "
            "others get 0.",
            lambda: scratch.avg_pool2d_backward(dout, x, k, s) * k * k,
        ),
        (
            "you shared the gradient evenly over the window (dout / K²): that is the backward "
            "pass of *average* pooling. For max pooling, the whole dout[n, c, i, j] goes to the "
            "position of the maximum only.",
            lambda: scratch.avg_pool2d_backward(dout, x, k, s),
        ),
        (
            "here windows overlap (stride < kernel size), so one input can be the maximum of "
            "two windows and must receive both gradients: add them (dx[...] += ...), don't "
            "overwrite (dx[...] = ...).",
            lambda: _overwrite_max_pool_backward(dout, x, k, s),
        ),
        (
            "you marked the position of each maximum with 1 but forgot to multiply by the "
            "upstream gradient: the maximum gets dout[n, c, i, j].",
            lambda: mask_only,
        ),
        (
            "you sent x (the input) to the maximum's position instead of the upstream gradient "
            "dout[n, c, i, j].",
            lambda: np.where(mask_only > 0, x, 0.0),
        ),
    ]


def _max_pool_backward_shape_hint(case: _Case, got: tuple) -> str | None:
    shape = case.expected.shape
    if got == case.args[0].shape:
        return (
            f"you returned something of the shape of dout; dx has the shape of x, {shape}: "
            f"every input position gets a gradient (0 for those that were not a maximum)."
        )
    return f"dx has the shape of x, {shape}."


def check_max_pool2d_backward(max_pool2d_backward: Callable, seed: int = 0) -> None:
    """Check ``max_pool2d_backward(dout, x, kernel_size, stride=None) -> dx``
    against ``scratch.max_pool2d_backward``."""
    cases = _max_pool_backward_cases(np.random.default_rng(seed))
    failure = _run(
        max_pool2d_backward,
        "max_pool2d_backward",
        cases,
        _max_pool_backward_shape_hint,
        _max_pool_backward_candidates,
        _POOL_TAGS,
        extra_value_hint=_leftover_hint,
    )
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


def _leftover_hint(case: _Case, got: np.ndarray) -> str | None:
    """Wrong only where no window reaches: those inputs must get gradient 0."""
    expected = case.expected
    x, k = case.args[1], case.args[2]
    s = case.args[3] if len(case.args) > 3 else k
    oh, ow = case.args[0].shape[2:]
    covered = np.zeros(x.shape, bool)
    covered[:, :, : (oh - 1) * s + k, : (ow - 1) * s + k] = True
    wrong = ~np.isclose(got, expected, rtol=RTOL, atol=ATOL)
    if wrong.any() and not (wrong & covered).any():
        return (
            "only the inputs that no window covers are wrong: they did not affect the output, "
            "so their gradient is 0 (start from np.zeros_like(x))."
        )
    return None


# ----------------------------------------------------------------------------- conv backward (dw)


def _conv_backward_cases(rng: np.random.Generator) -> list[_Case]:
    # (label, N, C, H, W, F, KH, KW, stride, padding, tags)
    specs = [
        ("one 5×5 image, one channel, one 3×3 filter", 1, 1, 5, 5, 1, 3, 3, 1, 0, ()),
        ("a batch of 2, 3 channels, 4 filters", 2, 3, 6, 6, 4, 3, 3, 1, 0, ()),
        ("padding 1, non-square image and kernel", 3, 2, 7, 6, 2, 3, 2, 1, 1, ("padding",)),
        ("stride 2", 2, 2, 9, 9, 3, 3, 3, 2, 0, ("stride",)),
        ("stride 2 and padding 2", 2, 3, 8, 7, 2, 5, 3, 2, 2, ("stride", "padding")),
    ]  # fmt: skip
    cases = []
    for label, n, c, h, w_, f, kh, kw, s, p, tags in specs:
        x = rng.standard_normal((n, c, h, w_))
        w = rng.standard_normal((f, c, kh, kw))
        dout = rng.standard_normal(scratch.conv2d(x, w, stride=s, padding=p).shape)
        desc = (
            f"{label}: dout of shape {_shape(dout.shape)}, x of shape {_shape(x.shape)}, "
            f"w of shape {_shape(w.shape)}, stride={s}, padding={p}"
        )
        dw = scratch.conv2d_backward(dout, x, w, stride=s, padding=p)[1]
        cases.append(_Case(desc, (dout, x, w, s, p), dw, frozenset(tags), {}))
    return cases


def _conv_backward_candidates(case: _Case):
    dout, x, w, s, p = case.args
    ref = case.expected
    n = x.shape[0]

    def dw_of(d, xx):
        return scratch.conv2d_backward(d, xx, w, stride=s, padding=p)[1]

    return [
        (
            "every input channel c of dw[f] came out the same: you summed over the channels c "
            "too. dw[f, c, m, k] = Σ_n Σ_i Σ_j dout[n, f, i, j] · x_pad[n, c, i·s + m, j·s + k] "
            "sums over the batch n and the output positions (i, j) only.",
            lambda: (
                dw_of(dout, np.repeat(x.sum(axis=1, keepdims=True), x.shape[1], axis=1))
                if x.shape[1] > 1
                else None
            ),
        ),
        (
            "every filter f of dw came out the same: you summed over the filters f too. Each "
            "filter has its own gradient: dw[f] uses dout[:, f] only.",
            lambda: (
                np.repeat(ref.sum(axis=0, keepdims=True), ref.shape[0], axis=0)
                if ref.shape[0] > 1
                else None
            ),
        ),
        (
            "only the first image of the batch counts in your dw: sum over the batch n as well.",
            lambda: dw_of(dout[:1], x[:1]) if n > 1 else None,
        ),
        (
            "you averaged over the batch (divided by N); the gradient of a sum is the sum: "
            "add up the contributions of all images.",
            lambda: ref / n if n > 1 else None,
        ),
        (
            "your dw is flipped: in the weight gradient nothing is flipped, dw[f, c, m, k] "
            "pairs dout[n, f, i, j] with x_pad[n, c, i·s + m, j·s + k].",
            lambda: ref[:, :, ::-1, ::-1],
        ),
        (
            "the kernel's two axes are swapped: m runs along the height (rows), k along the "
            "width (columns).",
            lambda: ref.swapaxes(2, 3) if ref.shape[2] == ref.shape[3] else None,
        ),
    ]


def _conv_backward_shape_hint(case: _Case, got: tuple) -> str | None:
    dout, x, w, _, _ = case.args
    if got == x.shape and got != w.shape:
        return (
            f"you returned something of the shape of x, {x.shape}: that is dx. This task asks "
            f"for dw, which has the shape of w, {w.shape}."
        )
    if len(got) == 5 and got[0] == x.shape[0]:
        return (
            "you kept one dw per image: sum over the batch axis n too, so that dw has the "
            f"shape of w, {w.shape}."
        )
    return (
        f"dw has the shape of w, F × C × KH × KW = {w.shape}: it sums over the batch n and "
        f"the output positions (i, j) — summing over other axes gives another shape."
    )


_CONV_BACKWARD_TAGS = {
    "padding": (
        "it only fails with padding > 0: the windows are taken from the zero-padded x_pad, "
        "exactly as in the forward pass."
    ),
    "stride": (
        "it only fails with stride > 1: output (i, j) read the window whose top-left corner is "
        "x_pad[i·s, j·s]."
    ),
}


def check_conv2d_backward_weights(conv2d_backward_weights: Callable, seed: int = 0) -> None:
    """Check ``conv2d_backward_weights(dout, x, w, stride, padding) -> dw`` against
    ``scratch.conv2d_backward``."""
    cases = _conv_backward_cases(np.random.default_rng(seed))
    failure = _run(
        conv2d_backward_weights,
        "conv2d_backward_weights",
        cases,
        _conv_backward_shape_hint,
        _conv_backward_candidates,
        _CONV_BACKWARD_TAGS,
    )
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


# ===================================================================== PyTorch (exercises 03 on)
#
# The checks above compare NumPy arrays. The ones below try functions written with PyTorch:
# a loss (its value *and* its gradient, through autograd) and a training step (the weights after
# one and two calls, against a reference step on an identical copy of the model).


class LibraryLossUsed(RuntimeError):
    """Raised, inside ``library_losses_disabled()``, by torch's own cross-entropy pieces."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{name} is switched off here: this exercise asks you to compute the cross-entropy "
            f"yourself, from exp, log, max, sum and indexing."
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
_MISSING = object()


@contextmanager
def library_losses_disabled():
    """Inside this block, torch's ready-made cross-entropy, log-softmax, NLL loss and
    log-sum-exp (functions, tensor methods and modules) raise ``LibraryLossUsed``.

    The exercise on cross-entropy runs the learner's function in it, in the check and in the
    grader's tests, so that a solution has to compute the loss itself. Everything is put back
    on the way out, also after an error or an interrupt.
    """

    def blocked(name: str) -> Callable:
        def refuse(*args, **kwargs):
            raise LibraryLossUsed(name)

        return refuse

    saved = []
    try:
        for owner, attr, name in _LIBRARY_LOSSES:
            if hasattr(owner, attr):
                saved.append((owner, attr, owner.__dict__.get(attr, _MISSING)))
                setattr(owner, attr, blocked(name))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, attr)  # it was inherited (a method of torch's C tensor base)
            else:
                setattr(owner, attr, original)


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


def _ce_cases(seed: int) -> list[_Case]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    def labels(n, k):
        return torch.randint(0, k, (n,), generator=gen)

    confident = randn(5, 4) * 2  # one logit of 100 per row, not always the true class's
    confident[torch.arange(5), torch.tensor([0, 1, 2, 3, 1])] = 100.0
    specs = [
        ("4 examples, 3 classes", randn(4, 3), labels(4, 3), ()),
        ("one example (N = 1), 5 classes", randn(1, 5), labels(1, 5), ("single",)),
        ("8 examples, 10 classes, as for digits", randn(8, 10) * 3, labels(8, 10), ()),
        ("2 classes, 6 examples", randn(6, 2) * 2, labels(6, 2), ()),
        ("a confident network: one logit of 100 in each row", confident,
         torch.tensor([0, 2, 2, 3, 0]), ("large",)),
        ("huge logits, about ±1000", randn(6, 3) * 600, labels(6, 3), ("large",)),
        ("every logit near −1000", randn(4, 5) * 3 - 1000, labels(4, 5), ("large",)),
    ]  # fmt: skip
    cases = []
    for label, logits, y, tags in specs:
        z = logits.double().requires_grad_(True)
        loss = _cross_entropy_reference(z, y)
        (grad,) = torch.autograd.grad(loss, z)
        cases.append(
            _Case(
                f"{label}: logits of shape {_shape(logits.shape)}, y of shape {_shape(y.shape)}",
                (logits, y),
                np.array(loss.item()),
                frozenset(tags),
                dict(grad=grad.numpy()),
            )
        )
    return cases


def _ce_candidates(case: _Case):
    logits, y = case.args
    z = logits.double()
    n, k = z.shape
    rows = torch.arange(n)
    log_p = z - torch.logsumexp(z, dim=1, keepdim=True)
    expected = float(case.expected)
    return [
        (
            f"you summed over the batch: your loss is {n} times too large. The loss is the "
            f"mean over the N = {n} examples (.mean(), or the sum divided by N), so that its size "
            f"does not depend on the batch size.",
            lambda: -log_p[rows, y].sum().item() if n > 1 else None,
        ),
        (
            "the minus sign is missing: cross-entropy is −log p_y, a positive number (log p_y "
            "is ≤ 0 since p_y ≤ 1).",
            lambda: log_p[rows, y].mean().item(),
        ),
        (
            "softmax over the wrong dimension: each row is one example, so normalise over the "
            "classes, dim=1 (the maximum and the sum too: .max(dim=1, keepdim=True), "
            ".sum(dim=1, keepdim=True)); dim=0 mixes different examples.",
            lambda: (
                -(z - torch.logsumexp(z, dim=0, keepdim=True))[rows, y].mean().item()
                if n > 1
                else None
            ),
        ),
        (
            "you averaged −log p over all the classes; only the true class's counts: pick "
            "log_p[torch.arange(N), y], then average over the batch.",
            lambda: -log_p.mean().item() if k > 1 else None,
        ),
        (
            f"you divided by N·K = {n * k}: that is the mean of an N × K matrix (the one-hot "
            f"targets times log p) with one non-zero per row. Divide by N only: take each row's "
            f"true-class entry, then the mean.",
            lambda: -log_p[rows, y].sum().item() / (n * k) if k > 1 else None,
        ),
        (
            "you subtracted the maximum m inside the exp but did not add it back: "
            "log Σ_j exp(z_j) = m + log Σ_j exp(z_j − m).",
            lambda: expected - z.max(dim=1).values.mean().item(),
        ),
        (
            "use the natural logarithm (torch.log), not log10 or log2.",
            lambda: expected / math.log(10),
        ),
        (
            "use the natural logarithm (torch.log), not log10 or log2.",
            lambda: expected / math.log(2),
        ),
        (
            "you forgot the log: the loss is −log p_y, not −p_y.",
            lambda: -log_p[rows, y].exp().mean().item(),
        ),
    ]


def _ce_shape_hint(case: _Case, shape: tuple) -> str:
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


def _ce_case(fn: Callable, case: _Case, number: int, total: int):
    """None if ``fn`` is right on ``case`` (value and gradient), else what is wrong."""
    name = "cross_entropy"
    where = f"case {number} of {total}: {case.label}"
    logits = case.args[0].clone().requires_grad_(True)
    y = case.args[1].clone()
    try:
        with library_losses_disabled():
            got = fn(logits, y)
    except NotImplementedError:
        raise _not_written(name) from None
    except LibraryLossUsed as err:
        return _Wrong(
            [f"It calls {err.name}, which is switched off in this check and in the grader."],
            "this task is to compute the cross-entropy yourself, from elementary operations: "
            "exp, log, max, sum, mean and indexing (see the task's text for what is allowed).",
        )
    except Exception as err:  # anything the learner's code raises
        return _raised(name, err, where)
    expected = float(case.expected)
    if got is None:
        return _Wrong(["It returned None."], "did you forget the `return` statement at the end?")
    if not isinstance(got, torch.Tensor):
        numpy = isinstance(got, np.ndarray | np.generic)
        kind = "a NumPy value" if numpy else f"a {type(got).__name__}"
        return _Wrong(
            [f"It returned {kind} ({got!r}), not a torch tensor."],
            "return the loss as a tensor, not loss.item() or float(loss): training calls "
            "loss.backward() on it, which needs the tensor and the graph of operations behind "
            "it. Stay in torch all the way (no NumPy).",
        )
    if got.numel() != 1:
        return _Wrong(
            [f"Expected one number (a 0-dimensional tensor), got shape {_shape(got.shape)}."],
            _ce_shape_hint(case, tuple(got.shape)),
        )
    value = got.detach().double().reshape(()).item()
    if not math.isfinite(value):
        return _Wrong(
            [f"Expected a loss of {_num(expected)}, got {value}."],
            _LSE_HINT
            if "large" in case.tags
            else "NaN or inf on ordinary logits: is there a log of 0, or a division by 0?",
        )
    if not math.isclose(value, expected, rel_tol=RTOL, abs_tol=ATOL):
        hint = _first_match(np.array(value), _ce_candidates(case))
        return _Wrong(
            [
                f"Expected a loss of {_num(expected)}, got {_num(value)} "
                f"(error {_num(abs(value - expected))})."
            ],
            hint,
        )
    if got.grad_fn is None:
        return _Wrong(
            [
                f"The loss {_num(value)} is right, but it is cut off from autograd (it has no "
                f"grad_fn), so backward() could not train anything with it."
            ],
            "compute it from `logits` with torch operations all the way: no .item(), "
            ".detach(), .numpy(), torch.tensor(...) or torch.no_grad() on the way.",
        )
    try:
        (grad,) = torch.autograd.grad(got.reshape(()), logits, allow_unused=True)
    except Exception as err:  # e.g. an in-place change of a tensor autograd needed
        return _raised(name, err, where + " (computing its gradient with autograd)")
    want = case.info["grad"]
    got_grad = np.zeros_like(want) if grad is None else grad.double().numpy()
    if not np.allclose(got_grad, want, rtol=RTOL, atol=1e-5):
        err = np.abs(got_grad - want)
        idx = np.unravel_index(int(np.argmax(err)), err.shape)
        n = len(y)
        onehot = np.eye(want.shape[1])[y.numpy()] / n
        hint = None
        if np.allclose(got_grad, -onehot, atol=1e-5):
            hint = (
                "the gradient is −onehot/N: the log-sum-exp part of your loss is cut off from "
                "autograd (.detach(), .data, .item() or torch.no_grad() on it). Only the "
                "maximum m may be treated as a constant: it cancels out of the gradient."
            )
        return _Wrong(
            [
                f"The loss {_num(value)} is right, but its gradient with respect to the logits "
                f"(from autograd) is not: largest error {_num(float(err[idx]))} at index "
                f"{_index(idx)}: expected {_num(float(want[idx]))}, got "
                f"{_num(float(got_grad[idx]))}. It should be (softmax(logits) − onehot(y)) / N."
            ],
            hint,
        )
    return None


_CE_TAGS = {
    "large": "it only fails on large logits. " + _LSE_HINT,
}


def check_cross_entropy(cross_entropy: Callable, seed: int = 0) -> None:
    """Check ``cross_entropy(logits, y)``: the mean over the batch of −log softmax(logits)[y].

    Tries random logits, a batch of one, and large logits (±100, ±1000, all near −1000) where
    the formula without the log-sum-exp trick overflows; compares the value and its gradient
    (autograd) with a float64 reference. Runs the function with torch's own cross-entropy and
    log-softmax switched off (``library_losses_disabled``).
    """
    if not callable(cross_entropy):
        raise CheckFailed(
            "check_cross_entropy needs your function itself, e.g. "
            f"check_cross_entropy(cross_entropy), got a {type(cross_entropy).__name__}."
        )
    cases = _ce_cases(seed)
    results = [_ce_case(cross_entropy, case, k + 1, len(cases)) for k, case in enumerate(cases)]
    failure = _report("cross_entropy", cases, results, _CE_TAGS)
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


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


def _step_case(fn: Callable, spec, case: _Case, number: int, total: int, seed: int):
    """None if ``fn`` makes the same two steps as the reference, else what is wrong."""
    name = "training_step"
    _, make_model, make_optimizer, shape, classes = spec
    with torch.random.fork_rng(devices=[]):  # the learner's random state stays as it was
        torch.manual_seed(1000 * seed + number)
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
            where = f"case {number} of {total}: {case.label}, on {when}"
            # the reference step, on the copy; the gradients it steps with
            ref_loss = F.cross_entropy(reference(x), y)
            ref_optimizer.zero_grad()
            ref_loss.backward()
            fresh = [p.grad.detach().clone() for p in reference.parameters()]
            ref_optimizer.step()
            before = [p.detach().clone() for p in model.parameters()]
            spy.new_call()
            spy.batch_size = len(y)
            try:
                got = fn(model, optimizer, x.clone(), y.clone())
            except NotImplementedError:
                raise _not_written(name) from None
            except Exception as err:  # anything the learner's code raises
                return _raised(name, err, where)
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
    if not callable(training_step):
        raise CheckFailed(
            "check_training_step needs your function itself, e.g. "
            f"check_training_step(training_step), got a {type(training_step).__name__}."
        )
    specs = _step_specs()
    cases = []
    for label, _, _, shape, classes in specs:
        cases.append(
            _Case(
                f"{label}; x of shape {_shape(shape)}, y of shape ({shape[0]},) with labels "
                f"0..{classes - 1}",
                (),
                np.zeros(()),
            )
        )
    results = [
        _step_case(training_step, spec, case, k + 1, len(cases), seed)
        for k, (spec, case) in enumerate(zip(specs, cases, strict=True))
    ]
    failure = _report("training_step", cases, results, {})
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)
