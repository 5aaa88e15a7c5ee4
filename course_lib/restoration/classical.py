"""The classical methods every learned restorer must beat (chapters 08-09), and their tuning.

Each method takes a degraded grey photo ``H x W`` (NumPy, values in [0, 1]) and keyword
settings, and returns the restored photo, clipped to [0, 1]. Settings are chosen by ``tune``
on *training* photos (``data.photo_split("train")``), never on the held-out ones.

Denoising: ``gaussian``, ``median``, ``total_variation``, ``wavelet``, ``non_local_means``
(its noise level estimated from the photo), ``bm3d`` (when the optional ``bm3d`` package is
installed: ``pip install course-lib[restore]``).
Deblurring: ``wiener`` (the true kernel, a tuned balance), ``richardson_lucy``.
Inpainting: ``biharmonic``. Super-resolution: ``degrade.upscale_bicubic``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import scipy.ndimage
import skimage.restoration as R

from course_lib import metrics

try:  # optional: pip install course-lib[restore]
    import bm3d as _bm3d
except ImportError:  # pragma: no cover (CI installs it)
    _bm3d = None


def _check_photo(image, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array H x W, got {type(image).__name__}")
    if image.ndim != 2 or not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"{name} must be a grey float photo H x W, got shape {image.shape}, {image.dtype}"
        )
    lo, hi = float(image.min()), float(image.max())
    if not (lo >= -0.5 and hi <= 1.5):  # unclipped noise may overshoot [0, 1] a little
        raise ValueError(
            f"{name} must have values in [0, 1] (0-255 photos: divide by 255), "
            f"got [{lo:.3g}, {hi:.3g}]"
        )
    return image


def _clip(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1).astype(like.dtype, copy=False)


# ----------------------------------------------------------------------------- denoising


def gaussian(noisy: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Blur the noise away (and the edges with it): a Gaussian filter of ``sigma`` pixels."""
    _check_photo(noisy, "noisy")
    return _clip(scipy.ndimage.gaussian_filter(noisy, sigma, mode="reflect"), noisy)


def median(noisy: np.ndarray, size: int = 3) -> np.ndarray:
    """The median of each ``size x size`` neighbourhood: robust to outliers (salt and pepper)."""
    _check_photo(noisy, "noisy")
    return _clip(scipy.ndimage.median_filter(noisy, size=int(size), mode="reflect"), noisy)


def total_variation(noisy: np.ndarray, weight: float = 0.1) -> np.ndarray:
    """Total-variation denoising (Rudin, Osher and Fatemi 1992; Chambolle's algorithm):
    the photo closest to ``noisy`` whose gradient is sparse, ``weight`` trading the two."""
    _check_photo(noisy, "noisy")
    return _clip(R.denoise_tv_chambolle(noisy, weight=weight), noisy)


def wavelet(noisy: np.ndarray) -> np.ndarray:
    """Wavelet shrinkage (BayesShrink, Chang et al. 2000): shrink small wavelet coefficients,
    with the noise level estimated from the finest ones. Nothing to tune."""
    _check_photo(noisy, "noisy")
    out = R.denoise_wavelet(noisy, method="BayesShrink", mode="soft", rescale_sigma=True)
    return _clip(out, noisy)


def non_local_means(noisy: np.ndarray, h_factor: float = 0.8) -> np.ndarray:
    """Non-local means (Buades et al. 2005): each pixel becomes a weighted mean of the pixels
    within 6 pixels of it (``patch_distance=6``: a 13x13 search window) whose 5x5 patches look
    alike. The noise level ``sigma_hat`` is estimated from the photo (``estimate_sigma``); the
    filter strength is ``h = h_factor * sigma_hat``."""
    _check_photo(noisy, "noisy")
    sigma_hat = float(R.estimate_sigma(noisy))
    out = R.denoise_nl_means(
        noisy, h=h_factor * sigma_hat, sigma=sigma_hat, fast_mode=True,
        patch_size=5, patch_distance=6,
    )  # fmt: skip
    return _clip(out, noisy)


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package is installed."""
    return _bm3d is not None


def bm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (Dabov et al. 2007): block matching and collaborative 3-D filtering, the strongest
    classical denoiser. Given the *true* noise level ``sigma`` (out of 255): an oracle that the
    blind methods do not get. Needs the optional ``bm3d`` package."""
    _check_photo(noisy, "noisy")
    if _bm3d is None:
        raise ImportError("BM3D needs the optional package: pip install bm3d")
    return _clip(np.asarray(_bm3d.bm3d(noisy, sigma_psd=sigma / 255.0)), noisy)


# ----------------------------------------------------------------------------- deblurring


def wiener(blurred: np.ndarray, kernel: np.ndarray, balance: float = 0.01) -> np.ndarray:
    """Wiener deconvolution with the true ``kernel``: divide by the kernel's spectrum where it is
    strong, damp where it is weak. This is scikit-image's Wiener-Hunt form
    (``skimage.restoration.wiener``), Tikhonov regularisation with a Laplacian penalty:
    ``X = conj(K) Y / (|K|^2 + balance |Lap|^2)``, ``Lap`` the Laplacian's transfer function.
    ``balance`` weighs that smoothness penalty against fidelity to ``blurred`` (larger: smoother,
    less noise, less detail). It is not the noise-to-signal ratio: the classical Wiener filter's
    ratio at each frequency is here ``balance |Lap|^2``, as if the photo's power spectrum fell
    as ``1 / |Lap|^2``. It is tuned, not measured."""
    _check_photo(blurred, "blurred")
    return _clip(R.wiener(blurred, np.asarray(kernel, np.float64), balance, clip=False), blurred)


def richardson_lucy(blurred: np.ndarray, kernel: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Richardson-Lucy deconvolution (1972/1974): multiplicative updates that maximise the
    Poisson likelihood; more ``iterations`` sharpen more, and amplify the noise.

    The photo is padded by wrapping around before, and cropped after: scikit-image's
    implementation convolves with zero padding, while our blur is circular."""
    _check_photo(blurred, "blurred")
    k = np.asarray(kernel, np.float64)
    r = k.shape[0]
    padded = np.pad(blurred.astype(np.float64), r, mode="wrap")
    out = R.richardson_lucy(padded, k, num_iter=int(iterations), clip=False)[r:-r, r:-r]
    return _clip(out, blurred)


# ----------------------------------------------------------------------------- inpainting


def biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the missing pixels (``mask == 0``) with the smoothest surface that meets the known
    ones (``skimage.restoration.inpaint_biharmonic``); the known pixels are kept."""
    _check_photo(image, "image")
    if mask.shape != image.shape:
        raise ValueError(f"mask must have the image's shape {image.shape}, got {mask.shape}")
    return _clip(R.inpaint_biharmonic(image, mask == 0), image)


# ----------------------------------------------------------------------------- tuning


def tune(
    method: Callable[..., np.ndarray],
    grid: Mapping[str, Iterable],
    pairs: list[tuple[np.ndarray, np.ndarray]],
    metric: Callable[[np.ndarray, np.ndarray], float] = metrics.psnr,
    **fixed,
) -> tuple[dict, float]:
    """The settings from ``grid`` (every combination) with the best mean ``metric`` over
    ``pairs`` of ``(degraded, clean)`` *training* photos; returns ``(settings, score)``.

    ``fixed`` are passed unchanged (e.g. the blur ``kernel``).
    """
    if not pairs:
        raise ValueError("tune needs at least one (degraded, clean) pair of training photos")
    keys = list(grid)
    candidates = {k: list(grid[k]) for k in keys}
    empty = [k for k, v in candidates.items() if not v]
    if empty:
        raise ValueError(f"tune needs at least one value to try for each setting; none for {empty}")
    best, best_score = None, -np.inf
    for values in itertools.product(*candidates.values()):
        settings = dict(zip(keys, values, strict=True))
        score = float(np.mean([metric(method(y, **settings, **fixed), x) for y, x in pairs]))
        if score > best_score:
            best, best_score = settings, score
    if best is None:  # every score NaN (or -inf): nothing to choose
        raise ValueError(f"no setting of {method.__name__} gave a finite score on these pairs")
    return best, best_score
