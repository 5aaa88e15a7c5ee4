"""Checks of exercise 08 (denoising): ``check_psnr`` (NumPy, against scikit-image's
``peak_signal_noise_ratio``, on the core's NumPy runner, with the ready-made PSNRs switched off:
``graded_psnr``), ``check_add_noise`` and
``check_residual_loss`` (PyTorch, tables of cases and classic mistakes on
``check_torch_function``).

The references are the formulas of ``course_lib.metrics.psnr`` and
``course_lib.restoration.denoise``: ``PSNR = 10 log10(R^2 / MSE)``; the noisy photo
``y = clip(x + sigma/255 n, 0, 1)``, sigma in grey levels out of 255; and residual learning, where
the network ``f`` predicts the noise and the estimate is ``x_hat = y - f(y)``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import skimage.metrics
import skimage.metrics.simple_metrics
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import metrics
from course_lib.checks.core import (
    SwitchedOff,
    _Case,
    _run,
    _shape,
    _Wrong,
    graded_with_switched_off,
    graded_without,
)
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.data import photo

# ----------------------------------------------------------------------------- PSNR


def _psnr_reference(estimate: np.ndarray, target: np.ndarray, data_range: float) -> np.ndarray:
    return np.asarray(
        skimage.metrics.peak_signal_noise_ratio(target, estimate, data_range=data_range)
    )


def _noisy_pair(rng: np.random.Generator, shape, sigma: float, low: float = 0.0, high: float = 1.0):
    """A random image in [low, high] and a copy with clipped Gaussian noise of ``sigma`` (as a
    fraction of the range): ``(estimate, target)``."""
    span = high - low
    target = low + span * rng.random(shape)
    estimate = np.clip(target + sigma * span * rng.standard_normal(shape), low, high)
    return estimate, target


def _psnr_cases(rng: np.random.Generator) -> list[_Case]:
    camera = photo("camera").astype(np.float64)
    noisy_camera = np.clip(camera + 25 / 255 * rng.standard_normal(camera.shape), 0, 1)
    u8 = [np.round(255 * a).astype(np.uint8) for a in _noisy_pair(rng, (7, 9), 0.2)]
    specs = [  # (label, estimate, target, data_range, tags)
        ("a random 8×8 image and a noisy copy", *_noisy_pair(rng, (8, 8), 0.1), 1.0, ()),
        ("a non-square 5×12 image, barely damaged (noise 0.01)",
         *_noisy_pair(rng, (5, 12), 0.01), 1.0, ()),
        ("a colour 6×7×3 image: the mean runs over every value",
         *_noisy_pair(rng, (6, 7, 3), 0.1), 1.0, ()),
        ("images on the 0..255 scale (floats)",
         *_noisy_pair(rng, (8, 8), 0.1, 0.0, 255.0), 255.0, ("range",)),
        ("images in [−1, 1], as a tanh gives them", *_noisy_pair(rng, (6, 6), 0.1, -1.0, 1.0),
         2.0, ("range",)),
        ("uint8 images (whole numbers 0..255, as photos are saved)", *u8, 255.0, ("uint8",)),
        ("the 'camera' photo with noise of σ = 25/255 (about 20 dB)", noisy_camera, camera, 1.0,
         ()),
    ]  # fmt: skip
    cases = []
    for label, estimate, target, r, tags in specs:
        desc = (
            f"{label}: estimate and target of shape {_shape(target.shape)} "
            f"({target.dtype}), data_range={r:g}"
        )
        expected = _psnr_reference(estimate, target, r)
        cases.append(_Case(desc, (estimate, target, r), expected, frozenset(tags)))
    return cases


_SQUARE_RANGE_HINT = (
    "you forgot to square the data range: PSNR = 10·log10(R² / MSE), the peak's square (a "
    "power, like the MSE) over the mean squared error. With R = 1 both agree, which is why only "
    "the cases with another data_range fail."
)
_UINT8_HINT = (
    "uint8 arithmetic wraps around: in uint8, 3 − 5 is 254 and 20² is 144 (both mod 256). "
    "Convert to floats first, e.g. estimate.astype(np.float64), then subtract and square."
)


def _psnr_candidates(case: _Case):
    estimate, target, r = case.args
    a, b = estimate.astype(np.float64), target.astype(np.float64)
    mse = np.mean((a - b) ** 2)
    mistakes = [
        (_SQUARE_RANGE_HINT, lambda: 10 * np.log10(r / mse) if r != 1 else None),
        ("you used the RMSE, the square root of the MSE: PSNR = 10·log10(R² / MSE) with the "
         "MSE itself, the mean of the squared errors, not its square root (or, the same, "
         "20·log10(R / RMSE)).",
         lambda: 10 * np.log10(r**2 / np.sqrt(mse))),
        ("20·log10 goes with amplitudes (R / RMSE); with powers, R² / MSE, it is 10·log10.",
         lambda: 20 * np.log10(r**2 / mse)),
        ("decibels use the base-10 logarithm, np.log10; np.log is the natural one.",
         lambda: 10 * np.log(r**2 / mse)),
        ("the MSE is a mean: divide the sum of the squared errors by the number of values "
         "(np.mean).",
         lambda: 10 * np.log10(r**2 / np.sum((a - b) ** 2))),
        ("the MSE is the mean of the SQUARED errors, (estimate − target)², not of their "
         "absolute values.",
         lambda: 10 * np.log10(r**2 / np.mean(np.abs(a - b)))),
        ("the fraction is upside down: 10·log10(R² / MSE). A better estimate has a smaller MSE "
         "and a higher PSNR.",
         lambda: 10 * np.log10(mse / r**2)),
        ("that is the MSE itself; the PSNR is 10·log10(R² / MSE), in decibels.", lambda: mse),
    ]  # fmt: skip
    if estimate.dtype == np.uint8:
        mistakes += [
            (_UINT8_HINT, lambda: 10 * np.log10(r**2 / np.mean((estimate - target) ** 2))),
            (_UINT8_HINT,
             lambda: 10 * np.log10(r**2 / np.mean((estimate - target).astype(np.float64) ** 2))),
        ]  # fmt: skip
    return mistakes


def _psnr_shape_hint(case: _Case, got: tuple) -> str:
    return (
        f"return one number for the whole image (here of shape {_shape(case.args[1].shape)}): "
        "the mean of the squared errors over ALL its values, np.mean((a − b)²) without an axis, "
        "then 10·log10(R² / MSE)."
    )


_PSNR_TAGS = {
    "range": "it only fails when data_range is not 1: R is the span of the pixel values and "
    "enters squared, 10·log10(R² / MSE).",
    "uint8": "it only fails on the uint8 images. " + _UINT8_HINT,
}


class LibraryPSNRUsed(SwitchedOff):
    """Raised, inside ``graded_psnr``, by a ready-made PSNR (the course's or scikit-image's)."""

    task = (
        "write the PSNR yourself with NumPy: the mean of the squared errors, then "
        "10·log10(R² / MSE)."
    )


_LIBRARY_PSNRS = [
    (metrics, "psnr", "course_lib's metrics.psnr"),
    (skimage.metrics, "peak_signal_noise_ratio", "skimage.metrics.peak_signal_noise_ratio"),
    (skimage.metrics.simple_metrics, "peak_signal_noise_ratio",
     "skimage.metrics.peak_signal_noise_ratio"),
]  # fmt: skip


def graded_psnr(psnr: Callable) -> Callable:
    """``psnr``, run with the ready-made PSNRs switched off: the course's ``metrics.psnr`` and
    scikit-image's ``peak_signal_noise_ratio`` raise ``LibraryPSNRUsed`` while it runs, under
    any name the learner's module gives them, and so does ``psnr`` if it is one of them. The
    check and the grader of exercise 08's task 1 run the learner's function this way."""
    return graded_with_switched_off(psnr, _LIBRARY_PSNRS, LibraryPSNRUsed)


def check_psnr(psnr: Callable, seed: int = 0) -> None:
    """Check ``psnr(estimate, target, data_range)`` (NumPy, one image ``H x W`` or ``H x W x C``)
    against ``skimage.metrics.peak_signal_noise_ratio``: ``10 log10(data_range^2 / MSE)``, the
    MSE over every value; float images in [0, 1], [0, 255] and [−1, 1], uint8 images, a photo."""
    # the course's and scikit-image's PSNR are switched off while it runs: calling one is no answer
    psnr = graded_psnr(psnr)
    cases = _psnr_cases(np.random.default_rng(seed))
    failure = _run(psnr, "psnr", cases, _psnr_shape_hint, _psnr_candidates, _PSNR_TAGS)
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


# ----------------------------------------------------------------------------- add_noise


def _add_noise_reference(clean: torch.Tensor, sigma: torch.Tensor, generator) -> torch.Tensor:
    """``clip(x + sigma/255 n, 0, 1)``, one sigma per image, ``n = torch.randn(clean.shape,
    generator=generator)``."""
    noise = torch.randn(clean.shape, generator=generator).to(clean)
    # y = clip(x + sigma/255 * n, 0, 1)
    return (clean + sigma.reshape(-1, 1, 1, 1) / 255 * noise).clamp(0, 1)


def _noise_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, shape, sigmas, k, tags=(), extremes=False):
        clean = torch.rand(shape, generator=gen)
        if extremes:  # black and white pixels, where the noise must be clipped
            clean = torch.where(clean < 0.3, 0.0, torch.where(clean > 0.7, 1.0, clean))
        sigma = torch.tensor(sigmas, dtype=torch.float32)
        return TorchCase(label, (clean, sigma), grad=(), tags=tags, seed=100 * seed + k)

    return [
        case("4 random 6×4 images, a level each (here W = N: a sigma of shape (N,) broadcast "
             "along the width goes unnoticed)", (4, 1, 6, 4), [15.0, 25.0, 50.0, 75.0], 1),
        case("one image (N = 1), σ = 25", (1, 1, 8, 8), [25.0], 2, {"single"}),
        case("3 images with black and white pixels, where the noise must be clipped",
             (3, 1, 5, 7), [30.0, 60.0, 100.0], 3, extremes=True),
        case("2 colour images (C = 3), σ = 10 and 40", (2, 3, 5, 5), [10.0, 40.0], 4),
        case("σ = 0 for the first image: it comes back unchanged", (2, 1, 4, 6), [0.0, 20.0], 5),
    ]  # fmt: skip


def _randn(x: torch.Tensor, g) -> torch.Tensor:
    return torch.randn(x.shape, generator=g).to(x)


def _per_image(s: torch.Tensor) -> torch.Tensor:
    return s.reshape(-1, 1, 1, 1)


_SCALE_HINT = (
    "sigma is in grey levels out of 255, as in the literature (σ = 25 is a standard deviation "
    "of 25/255 ≈ 0.1 on images in [0, 1]): divide it by 255, y = clip(x + σ/255 · n, 0, 1)."
)
_CLIP_HINT = (
    "clip the result to [0, 1], torch.clamp(y, 0, 1), as a saved photo would be: the noise "
    "pushes dark pixels below 0 and bright ones above 1."
)
_SIGMA_AXIS_HINT = (
    "sigma holds one level per image, shape (N,); against N × C × H × W it broadcasts along the "
    "LAST axis (the width), not along the images. Give it the shape N × 1 × 1 × 1 first: "
    "sigma.reshape(-1, 1, 1, 1)."
)
_DRAW_HINT = (
    "draw the noise exactly as noise = torch.randn(clean.shape, generator=generator), in one "
    "call, so that it is the check's noise; then y = clip(x + σ/255 · noise, 0, 1)."
)

_NOISE_MISTAKES = [
    (_SCALE_HINT, lambda x, s, g: (x + _per_image(s) * _randn(x, g)).clamp(0, 1)),
    (_CLIP_HINT, lambda x, s, g: x + _per_image(s) / 255 * _randn(x, g)),
    (_SIGMA_AXIS_HINT, lambda x, s, g: (x + s / 255 * _randn(x, g)).clamp(0, 1)),
    ("sigma is the standard deviation of the noise, not its variance: scale n by σ/255, not "
     "(σ/255)².",
     lambda x, s, g: (x + (_per_image(s) / 255) ** 2 * _randn(x, g)).clamp(0, 1)),
    ("the images are in [0, 1]: clip to [0, 1], not to [0, 255].",
     lambda x, s, g: (x + _per_image(s) / 255 * _randn(x, g)).clamp(0, 255)),
    ("Gaussian noise: torch.randn (normal, mean 0), not torch.rand (uniform in [0, 1)).",
     lambda x, s, g: (x + _per_image(s) / 255 * torch.rand(x.shape, generator=g).to(x))
     .clamp(0, 1)),
    ("the noise is added to the image, y = x + σ/255 · n, not multiplied with it.",
     lambda x, s, g: (x * (1 + _per_image(s) / 255 * _randn(x, g))).clamp(0, 1)),
    ("draw one noise value per pixel of EVERY image, torch.randn(clean.shape, "
     "generator=generator): your images all got the same noise.",
     lambda x, s, g: (x + _per_image(s) / 255 * torch.randn(x.shape[1:], generator=g).to(x))
     .clamp(0, 1)),
]  # fmt: skip


def _noise_shape_hint(case: TorchCase, shape: tuple) -> str:
    clean, sigma = case.args
    n = len(clean)
    if len(shape) == 4 and shape[0] == n and shape[-1] == n:
        return _SIGMA_AXIS_HINT
    return (
        f"return the noisy images in the shape of clean, N × C × H × W = "
        f"{_shape(clean.shape)}; sigma, of shape ({n},), gives each image its level."
    )


def _noise_error(err: Exception) -> _Wrong | None:
    if "must match the size of tensor" in str(err):
        return _Wrong([f"It raised RuntimeError: {err}"], _SIGMA_AXIS_HINT)
    return None


def _noise_value_hint(case: TorchCase, value: np.ndarray) -> str | None:
    if value.min() >= 0 and value.max() <= 1:
        return _DRAW_HINT
    return _CLIP_HINT


def check_add_noise(add_noise: Callable, seed: int = 0) -> None:
    """Check ``add_noise(clean, sigma, generator)``: ``clip(clean + sigma/255 · noise, 0, 1)``
    with ``noise = torch.randn(clean.shape, generator=generator)``; ``clean``: ``N x C x H x W``
    in [0, 1], ``sigma``: ``N`` levels out of 255, one per image."""
    # the course's own add_noise is switched off while it runs: calling it is no answer
    add_noise = graded_without(add_noise, "restoration.degrade.add_gaussian_noise")
    check_torch_function(
        add_noise,
        "add_noise",
        _noise_cases(seed),
        _add_noise_reference,
        _NOISE_MISTAKES,
        arg_names=("clean", "sigma"),
        output="noisy images",
        shape_hint=_noise_shape_hint,
        on_error=_noise_error,
        extra_value_hint=_noise_value_hint,
    )


# ----------------------------------------------------------------------------- residual loss


class _NoiseNet(nn.Module):
    """A stand-in noise predictor: one 3x3 convolution, in the dtype of its input (so that the
    check's float64 reference can run it too)."""

    def __init__(self, channels: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(0.3 * torch.randn(channels, channels, 3, 3, generator=gen))
        self.channels = channels

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        return F.conv2d(noisy, self.weight.to(noisy), padding=1)

    def __repr__(self) -> str:
        c = self.channels
        return f"a tiny noise predictor (one 3×3 convolution, {c} → {c} channels)"


def _residual_loss_reference(model, noisy: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """``mean((noisy - model(noisy) - clean)^2)``: the network predicts the noise."""
    # x_hat = y - f(y)
    return ((noisy - model(noisy) - clean) ** 2).mean()


def _residual_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, shape, sigma, k, tags=()):
        clean = torch.rand(shape, generator=gen)
        noisy = (clean + sigma / 255 * torch.randn(shape, generator=gen)).clamp(0, 1)
        model = _NoiseNet(shape[1], 10 * seed + k)
        return TorchCase(label, (model, noisy, clean), grad=("noisy", "clean"), tags=tags)

    return [
        case("4 noisy 8×8 patches (σ = 25)", (4, 1, 8, 8), 25.0, 1),
        case("one patch (N = 1), 12×10", (1, 1, 12, 10), 15.0, 2, {"single"}),
        case("8 patches 6×6, heavy noise (σ = 50)", (8, 1, 6, 6), 50.0, 3),
        case("3 colour patches (C = 3), 5×5", (3, 3, 5, 5), 25.0, 4),
    ]


_IMAGE_HINT = (
    "the network predicts the NOISE, not the image (residual learning): the estimate is "
    "x̂ = noisy − model(noisy), and the loss compares x̂ with clean, mean((x̂ − clean)²). "
    "(The same: model(noisy) is compared with the noise, noisy − clean.)"
)

_RESIDUAL_MISTAKES = [
    (_IMAGE_HINT, lambda m, y, x: ((m(y) - x) ** 2).mean()),
    ("subtract the predicted noise, x̂ = noisy − model(noisy), not add it (the noise is "
     "noisy − clean, not clean − noisy).",
     lambda m, y, x: ((y + m(y) - x) ** 2).mean()),
    ("compare the estimate with the CLEAN image, not with the noisy one.",
     lambda m, y, x: ((y - m(y) - y) ** 2).mean()),
    ("the network sees the noisy image: x̂ = noisy − model(noisy), not model(clean).",
     lambda m, y, x: ((y - m(x) - x) ** 2).mean()),
    ("average over every pixel of every image (.mean()), not sum: the loss should not grow "
     "with the batch or the patch size.",
     lambda m, y, x: ((y - m(y) - x) ** 2).sum()),
    ("the mean SQUARED error: (x̂ − clean)², not its absolute value.",
     lambda m, y, x: (y - m(y) - x).abs().mean()),
    ("the mean squared error, without a square root.",
     lambda m, y, x: ((y - m(y) - x) ** 2).mean().sqrt()),
    ("the network's output is cut off from autograd (torch.no_grad() or .detach()): the loss "
     "is there to train the network, so keep model(noisy) in the graph.",
     lambda m, y, x: ((y - m(y).detach() - x) ** 2).mean()),
]  # fmt: skip


def _residual_shape_hint(case: TorchCase, shape: tuple) -> str:
    n = len(case.args[1])
    if shape and shape[0] == n:
        return "you returned one loss per image: average over everything (.mean())."
    return "return one number, a 0-dimensional tensor: the mean over every pixel of the batch."


def check_residual_loss(residual_loss: Callable, seed: int = 0) -> None:
    """Check ``residual_loss(model, noisy, clean)``: ``mean((noisy - model(noisy) - clean)^2)``,
    the network predicting the noise; its value and its gradients with respect to ``noisy`` and
    ``clean``, with a tiny convolutional stand-in for the network."""
    check_torch_function(
        residual_loss,
        "residual_loss",
        _residual_cases(seed),
        _residual_loss_reference,
        _RESIDUAL_MISTAKES,
        arg_names=("model", "noisy", "clean"),
        output="loss",
        shape_hint=_residual_shape_hint,
        gradient_formula="With x̂ = noisy − model(noisy) and M values in all, it should be "
        "−2(x̂ − clean)/M for clean.",
    )
