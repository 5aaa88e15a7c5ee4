"""Checks of exercise 09 (restoration: inpainting, super-resolution, deblurring), PyTorch:
``check_masked_mse``, ``check_pixel_shuffle`` and ``check_wiener_deconvolve``, tables of cases
and classic mistakes on ``check_torch_function``; and ``library_pixel_shuffle_disabled``, which
switches torch's own pixel shuffle off while the learner's runs.

The references: ``course_lib.restoration.inpaint.masked_mse``, ``F.pixel_shuffle`` (ESPCN's
sub-pixel rearrangement, ``out[n, c, r i + a, r j + b] = x[n, c r^2 + r a + b, i, j]``), and
Wiener deconvolution in the Fourier domain as ``course_lib.restoration.deblur`` computes it,
``X = conj(K) Y / (|K|^2 + balance |L|^2)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks.core import SwitchedOff, _shape, _Wrong, graded_without, switched_off
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.restoration import superres
from course_lib.restoration.deblur import transfer_function
from course_lib.restoration.inpaint import masked_mse as _masked_mse_reference

# ----------------------------------------------------------------------------- masked MSE


def _mask_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, shape, missing, tags=(), block=None):
        output, target = torch.rand(shape, generator=gen), torch.rand(shape, generator=gen)
        u = torch.rand(shape, generator=gen)
        fractions = torch.tensor(missing, dtype=torch.float32).reshape(-1, 1, 1, 1)
        mask = (u >= fractions).float()  # 1 = known, 0 = missing
        if block is not None:
            mask = torch.ones(shape)
            mask[..., block[0], block[1]] = 0
        return TorchCase(label, (output, target, mask), grad=("output", "target"), tags=tags)

    return [
        case("2 images 6×6, about half of the pixels missing", (2, 1, 6, 6), [0.5]),
        case("one image (N = 1), a 3×4 block missing", (1, 1, 8, 8), [0.0], {"single"},
             block=(slice(2, 5), slice(1, 5))),
        case("4 images whose masks miss 10%, 30%, 60% and 90% of the pixels", (4, 1, 7, 5),
             [0.1, 0.3, 0.6, 0.9]),
        case("nothing missing (a mask of ones): the loss is 0, not 0/0", (2, 1, 4, 4), [0.0],
             {"none"}),
        case("everything missing (a mask of zeros): the plain mean squared error", (3, 1, 5, 5),
             [1.0]),
    ]  # fmt: skip


_ALL_PIXELS_HINT = (
    "average over the missing pixels only (mask == 0): the known pixels are kept as they are "
    "and teach the network nothing. L = sum((1 − mask)·(output − target)²) / sum(1 − mask)."
)
_COUNT_HINT = (
    "divide by the number of missing pixels, (1 − mask).sum(), not by the number of all "
    "pixels (.mean() divides by all of them)."
)
_NONE_MISSING_HINT = (
    "when nothing is missing, sum(1 − mask) = 0 and 0/0 is NaN: divide by at least 1, "
    "(1 − mask).sum().clamp_min(1), so that the loss is 0 (there is nothing to fill)."
)


def _missing(m: torch.Tensor) -> torch.Tensor:
    return 1 - m


def _sq(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (o - t) ** 2


def _per_image_mse(o, t, m):
    w = _missing(m)
    per = (w * _sq(o, t)).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)
    return per.mean()


_MASK_MISTAKES = [
    (_ALL_PIXELS_HINT, lambda o, t, m: _sq(o, t).mean()),
    (_COUNT_HINT, lambda o, t, m: (_missing(m) * _sq(o, t)).mean()),
    ("the mask is 1 where a pixel is KNOWN and 0 where it is missing: the missing pixels are "
     "weighted by 1 − mask, not by mask.",
     lambda o, t, m: (m * _sq(o, t)).sum() / m.sum().clamp_min(1)),
    ("the mask is 1 where a pixel is KNOWN and 0 where it is missing: the missing pixels are "
     "weighted by 1 − mask, not by mask; and divide by their number, not by all pixels.",
     lambda o, t, m: (m * _sq(o, t)).mean()),
    ("one sum over the whole batch divided by the number of missing pixels in the whole "
     "batch: you averaged each image on its own, then the images, so an image with few missing "
     "pixels weighs as much as one with many.",
     _per_image_mse),
    ("divide the sum by the number of missing pixels, (1 − mask).sum(): a mean, not a sum.",
     lambda o, t, m: (_missing(m) * _sq(o, t)).sum()),
    ("the SQUARED error, (output − target)², not its absolute value.",
     lambda o, t, m: (_missing(m) * (o - t).abs()).sum() / _missing(m).sum().clamp_min(1)),
]  # fmt: skip


def _mask_shape_hint(case: TorchCase, shape: tuple) -> str:
    n = len(case.args[0])
    if shape and shape[0] == n:
        return "you returned one loss per image: one number for the whole batch, please."
    return "return one number (a 0-dimensional tensor): the loss of the whole batch."


def _mask_nonfinite(case: TorchCase) -> str:
    if "none" in case.tags:
        return _NONE_MISSING_HINT
    return "NaN or inf: is there a division by 0?"


def check_masked_mse(masked_mse: Callable, seed: int = 0) -> None:
    """Check ``masked_mse(output, target, mask)``: the mean squared error over the missing pixels
    (``mask == 0``) of the whole batch, ``sum((1 - m)(output - target)^2) / max(sum(1 - m),
    1)``; its value and its gradients with respect to ``output`` and ``target``."""
    # the course's own masked_mse is switched off while it runs: calling it is no answer
    masked_mse = graded_without(masked_mse, "restoration.inpaint.masked_mse")
    check_torch_function(
        masked_mse,
        "masked_mse",
        _mask_cases(seed),
        _masked_mse_reference,
        _MASK_MISTAKES,
        arg_names=("output", "target", "mask"),
        output="loss",
        shape_hint=_mask_shape_hint,
        tag_hints={"none": _NONE_MISSING_HINT},
        nonfinite_hint=_mask_nonfinite,
        gradient_formula="It should be 2(1 − mask)(output − target)/M for output (M: the "
        "number of missing pixels), and minus that for target.",
    )


# ----------------------------------------------------------------------------- pixel shuffle


class LibraryPixelShuffleUsed(SwitchedOff):
    """Raised, inside ``library_pixel_shuffle_disabled()``, by a ready-made pixel shuffle."""

    task = (
        "write the rearrangement yourself: x.reshape(N, C, r, r, H, W), .permute(...), "
        ".reshape(N, C, rH, rW) (or loops over a and b)."
    )


_LIBRARY_SHUFFLES = [
    (F, "pixel_shuffle", "F.pixel_shuffle"),
    (torch, "pixel_shuffle", "torch.pixel_shuffle"),
    (nn.PixelShuffle, "forward", "nn.PixelShuffle"),
    (superres, "pixel_shuffle", "course_lib's superres.pixel_shuffle"),
    (superres, "pixel_shuffle_naive", "course_lib's superres.pixel_shuffle_naive"),
]


def library_pixel_shuffle_disabled():
    """Inside this block (``with library_pixel_shuffle_disabled(): ...``), torch's
    ``F.pixel_shuffle``, ``torch.pixel_shuffle``, ``nn.PixelShuffle`` and the course's own
    ``superres.pixel_shuffle`` raise ``LibraryPixelShuffleUsed``: the check and the grader run the
    learner's ``pixel_shuffle`` in it. Everything is put back on the way out, also after an error
    or an interrupt."""
    return switched_off(_LIBRARY_SHUFFLES, LibraryPixelShuffleUsed)


def _shuffle_reference(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.pixel_shuffle(x, r)


def _shuffle_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, shape, r, tags=()):
        return TorchCase(label, (torch.randn(shape, generator=gen), r), tags=tags)

    return [
        case("one output channel, r = 2", (1, 4, 2, 3), 2),
        case("r = 3, a batch of 2", (2, 9, 3, 4), 3),
        case("two output channels (C = 2), r = 2", (2, 8, 3, 3), 2, {"channels"}),
        case("r = 4, a 2×2 input", (1, 16, 2, 2), 4),
        case("three output channels (C = 3), r = 2, one row (H = 1)", (3, 12, 1, 5), 2,
             {"channels"}),
    ]  # fmt: skip


def _by_axes(x: torch.Tensor, r: int, split: tuple, order: tuple) -> torch.Tensor:
    """``x`` reshaped to ``N x (split of C r^2) x H x W``, permuted, and reshaped to the output."""
    n, crr, h, w = x.shape
    c = crr // (r * r)
    sizes = {"c": c, "a": r, "b": r}
    y = x.reshape(n, *(sizes[s] for s in split), h, w)
    return y.permute(*order).reshape(n, c, h * r, w * r)


_AB_HINT = (
    "the order of a and b is swapped: sub-pixel (a, b), stored in channel c·r² + r·a + b, goes "
    "to row r·i + a and column r·j + b, so a goes with the height and b with the width. After "
    "x.reshape(N, C, r, r, H, W) (axes n, c, a, b, i, j), permute to (n, c, i, a, j, b), "
    "of shape N × C × H × r × W × r, then reshape to "
    "N × C × rH × rW. You put b on the rows: every r × r block came out transposed."
)
_TILE_HINT = (
    "row r·i + a, not a·H + i: the r × r sub-pixels of low-resolution pixel (i, j) are "
    "neighbours in the output, not r² shrunken copies of the image side by side. Permute "
    "N × C × r(a) × r(b) × H × W to N × C × H × r(a) × W × r(b), so that i comes before a "
    "(and j before b)."
)
_CHANNEL_HINT = (
    "channel c·r² + r·a + b holds sub-pixel (a, b) of output channel c: the output channel "
    "is the SLOWEST part of the channel index, so reshape to N × C × r × r × H × W (c, a, b), "
    "not N × r × r × C × H × W."
)

_SHUFFLE_MISTAKES = [
    (_AB_HINT, lambda x, r: _by_axes(x, r, ("c", "a", "b"), (0, 1, 4, 3, 5, 2))),
    (_TILE_HINT, lambda x, r: _by_axes(x, r, ("c", "a", "b"), (0, 1, 2, 4, 3, 5))),
    (_TILE_HINT, lambda x, r: _by_axes(x, r, ("c", "a", "b"), (0, 1, 3, 4, 2, 5))),
    (_CHANNEL_HINT, lambda x, r: _by_axes(x, r, ("a", "b", "c"), (0, 3, 4, 1, 5, 2))),
    (_CHANNEL_HINT, lambda x, r: _by_axes(x, r, ("a", "b", "c"), (0, 3, 4, 2, 5, 1))),
    ("a reshape alone keeps the values in memory order, so the r² channels of a pixel never "
     "meet: reshape to N × C × r × r × H × W, PERMUTE to N × C × H × r × W × r, then reshape "
     "to N × C × rH × rW.",
     lambda x, r: x.reshape(len(x), -1, x.shape[2] * r, x.shape[3] * r)),
]  # fmt: skip


def _shuffle_shape_hint(case: TorchCase, shape: tuple) -> str:
    x, r = case.args
    n, crr, h, w = x.shape
    c = crr // (r * r)
    if len(shape) == 6:
        return (
            f"one last reshape: N × C × H × r × W × r → N × C × rH × rW = "
            f"{_shape((n, c, r * h, r * w))}."
        )
    return (
        f"N × Cr² × H × W → N × C × rH × rW: here {_shape(x.shape)} → "
        f"{_shape((n, c, r * h, r * w))}; the channels shrink r² times, each side grows r times."
    )


def check_pixel_shuffle(pixel_shuffle: Callable, seed: int = 0) -> None:
    """Check ``pixel_shuffle(x, r)``: ``N x C r^2 x H x W -> N x C x rH x rW``, ``out[n, c,
    r i + a, r j + b] = x[n, c r^2 + r a + b, i, j]``, against ``F.pixel_shuffle``; its value
    and its gradient, with the library's pixel shuffles switched off."""
    check_torch_function(
        pixel_shuffle,
        "pixel_shuffle",
        _shuffle_cases(seed),
        _shuffle_reference,
        _SHUFFLE_MISTAKES,
        arg_names=("x", "r"),
        output="output",
        context=library_pixel_shuffle_disabled,
        shape_hint=_shuffle_shape_hint,
        tag_hints={"channels": "it only fails with several output channels (C > 1). "
                   + _CHANNEL_HINT},
        gradient_formula="The shuffle only moves values: the gradient is v moved back, "
        "F.pixel_unshuffle(v, r).",
    )  # fmt: skip


# ----------------------------------------------------------------------------- Wiener


_LAPLACIAN = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def _wiener_reference(blurred, K, L, balance):
    """``irfft2(conj(K) Y / (|K|^2 + balance |L|^2))``, ``Y = rfft2(blurred)``."""
    shape = tuple(blurred.shape[-2:])
    # X = conj(K) Y / (|K|^2 + lambda |L|^2)
    X = K.conj() * torch.fft.rfft2(blurred) / (K.abs() ** 2 + balance * L.abs() ** 2)
    return torch.fft.irfft2(X, s=shape)


def _wiener_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def gaussian(size: int, sigma: float) -> torch.Tensor:
        t = torch.arange(size) - (size - 1) / 2
        k = torch.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * sigma**2))
        return k / k.sum()

    def lopsided(size: int) -> torch.Tensor:  # no symmetry: its transfer function is complex
        k = torch.rand(size, size, generator=gen) ** 3
        return k / k.sum()

    def case(label, n, h, w, kernels, balance, tags=()):
        size = max(len(k) for k in kernels)
        pads = [(size - len(k)) // 2 for k in kernels]  # centred in the largest one
        k = torch.stack([F.pad(k, (p, p, p, p)) for k, p in zip(kernels, pads, strict=True)])
        K = transfer_function(k, (h, w))[:, None]  # 1 or N x 1 x H x (W//2 + 1), complex
        L = transfer_function(_LAPLACIAN, (h, w))[:, None]
        clean = torch.rand(n, 1, h, w, generator=gen)
        blurred = torch.fft.irfft2(K * torch.fft.rfft2(clean), s=(h, w))  # circular blur
        blurred = blurred + 0.01 * torch.randn(blurred.shape, generator=gen)
        return TorchCase(label, (blurred, K, L, balance), grad=("blurred",), tags=tags)

    return [
        case("2 random 8×8 images, one lopsided 5×5 kernel for both", 2, 8, 8, [lopsided(5)],
             0.01),
        case("one 9×7 image (an odd width), a lopsided 3×3 kernel", 1, 9, 7,
             [lopsided(3)], 0.005, {"odd"}),
        case("a Gaussian blur (σ = 1.5, 9×9) of a 16×16 image", 1, 16, 16,
             [gaussian(9, 1.5)], 0.001),
        case("3 images 6×10, each with its own lopsided kernel", 3, 6, 10,
             [lopsided(3), lopsided(5), lopsided(3)], 0.05),
    ]  # fmt: skip


def _freq(y: torch.Tensor) -> torch.Tensor:
    return torch.fft.rfft2(y)


def _back(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.fft.irfft2(X, s=tuple(y.shape[-2:]))


_INVERSE_HINT = (
    "the penalty λ·|L|² is missing from the denominator: dividing by K alone (the inverse "
    "filter) blows the noise up wherever K is nearly 0. X = conj(K)·Y / (|K|² + λ·|L|²)."
)
_ODD_HINT = (
    "pass the image's size to the inverse transform, torch.fft.irfft2(X, s=(H, W)): rfft2 "
    "keeps W//2 + 1 columns, and without s irfft2 assumes an even width, 2·(W//2), one column "
    "short when W is odd."
)

_WIENER_MISTAKES = [
    ("conj(K), the complex conjugate (K.conj()), multiplies Y: with K itself the phase of the "
     "blur is applied twice instead of undone. It only shows with kernels that are not "
     "symmetric (their K is complex).",
     lambda y, K, L, lam: _back(K * _freq(y) / (K.abs() ** 2 + lam * L.abs() ** 2), y)),
    (_INVERSE_HINT, lambda y, K, L, lam: _back(K.conj() * _freq(y) / K.abs() ** 2, y)),
    (_INVERSE_HINT, lambda y, K, L, lam: _back(_freq(y) / K, y)),
    ("the penalty is λ·|L|², with L the Laplacian's transfer function (it damps the high "
     "frequencies, where the noise is), not λ alone.",
     lambda y, K, L, lam: _back(K.conj() * _freq(y) / (K.abs() ** 2 + lam), y)),
    ("|K|² is the SQUARED magnitude, K.abs() ** 2 (= K·conj(K), a real number).",
     lambda y, K, L, lam: _back(K.conj() * _freq(y) / (K.abs() + lam * L.abs() ** 2), y)),
    ("|L|² is the SQUARED magnitude, L.abs() ** 2.",
     lambda y, K, L, lam: _back(K.conj() * _freq(y) / (K.abs() ** 2 + lam * L.abs()), y)),
    ("|K|² is K·conj(K) = K.abs() ** 2, a real number; K ** 2 is complex.",
     lambda y, K, L, lam: _back(K.conj() * _freq(y) / (K**2 + lam * L**2), y)),
    (_ODD_HINT,
     lambda y, K, L, lam: torch.fft.irfft2(
         K.conj() * _freq(y) / (K.abs() ** 2 + lam * L.abs() ** 2))),
]  # fmt: skip


class _ComplexResult(Exception):
    def __init__(self, shape: tuple) -> None:
        self.shape = shape


def _wiener_shape_hint(case: TorchCase, shape: tuple) -> str:
    blurred = case.args[0]
    n, c, h, w = blurred.shape
    if shape == (n, c, h, w - 1) or (len(shape) == 4 and shape[-1] == 2 * (w // 2)):
        return _ODD_HINT
    return (
        f"return the deblurred images in the shape of blurred, N × 1 × H × W = "
        f"{_shape(blurred.shape)}: back from the frequencies with torch.fft.irfft2(X, s=(H, W))."
    )


def _wiener_error(err: Exception) -> _Wrong | None:
    if isinstance(err, _ComplexResult):
        return _Wrong(
            [f"It returned a complex tensor of shape {_shape(err.shape)}: the spectrum X."],
            "go back from the frequencies to the pixels, torch.fft.irfft2(X, s=(H, W)): a real "
            "image of the shape of blurred.",
        )
    if "must match the size of tensor" in str(err):
        return _Wrong(
            [f"It raised RuntimeError: {err}"],
            "K and L are rfft2's half spectra, N × 1 × H × (W//2 + 1): transform the image with "
            "torch.fft.rfft2 (not fft2), and come back with torch.fft.irfft2(X, s=(H, W)).",
        )
    return None


def check_wiener_deconvolve(wiener_deconvolve: Callable, seed: int = 0) -> None:
    """Check ``wiener_deconvolve(blurred, K, L, balance)``: ``irfft2(conj(K) Y / (|K|^2 +
    balance |L|^2), s=(H, W))`` with ``Y = rfft2(blurred)``; ``K``, ``L``: the transfer functions
    of the blur kernel(s) and of the Laplacian, complex, ``1 or N x 1 x H x (W//2 + 1)``; its
    value and its gradient with respect to ``blurred``."""
    fn = wiener_deconvolve
    if callable(wiener_deconvolve):

        def fn(*args):  # a complex result is reported as such, not cast to real
            out = wiener_deconvolve(*args)
            if isinstance(out, torch.Tensor) and out.is_complex():
                raise _ComplexResult(tuple(out.shape))
            return out

    check_torch_function(
        fn,
        "wiener_deconvolve",
        _wiener_cases(seed),
        _wiener_reference,
        _WIENER_MISTAKES,
        arg_names=("blurred", "K", "L", "balance"),
        output="deblurred images",
        shape_hint=_wiener_shape_hint,
        on_error=_wiener_error,
        tag_hints={"odd": "it only fails on the odd width. " + _ODD_HINT},
    )
