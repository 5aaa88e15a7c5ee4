"""Checks of exercise 02 (pooling and backpropagation), NumPy: ``check_max_pool2d``,
``check_max_pool2d_backward``, ``check_conv2d_backward_weights``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib import scratch
from course_lib.checks.core import (
    ATOL,
    RTOL,
    _Case,
    _off_by_one_words,
    _run,
    _shape,
)

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
