"""Checks of exercise 01 (convolution), NumPy: ``check_conv2d``, ``check_sobel_edges``."""

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
from course_lib.data import photo

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
