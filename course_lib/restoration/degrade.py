"""How photos get damaged: noise, blur, missing pixels, lost resolution (chapters 08-09).

Every function takes a grey photo ``H x W`` (NumPy, what scikit-image's methods want) or a
batch ``N x C x H x W`` (a tensor, what networks want) with values in [0, 1], and returns the
same kind of thing. Anything else is refused with a clear error: a NumPy batch (it would come
back as its first image only), values outside [0, 1] (a photo on the 0-255 scale would be
clipped to white). Noise levels ``sigma`` are in grey levels out of 255, as in the literature
(``sigma = 25`` is a standard deviation of ``25 / 255`` on [0, 1] images).
"""

from __future__ import annotations

import math

import numpy as np
import skimage.draw
import torch
import torch.nn.functional as F


def _as_batch(image, name: str = "image") -> tuple[torch.Tensor, bool]:
    """``H x W`` (array or tensor) or ``N x C x H x W`` tensor with float values in [0, 1] ->
    ``N x C x H x W`` float tensor, and whether the input was one NumPy photo. Clear errors
    otherwise."""
    is_numpy = isinstance(image, np.ndarray)
    if not (is_numpy or isinstance(image, torch.Tensor)):
        raise TypeError(f"{name} must be a NumPy array or a tensor, got {type(image).__name__}")
    x = torch.as_tensor(image)
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floats in [0, 1], got {x.dtype}")
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim != 4:
        raise ValueError(
            f"{name} must be a grey photo H x W or a batch N x C x H x W, "
            f"got shape {tuple(x.shape)}"
        )
    elif is_numpy:  # the result would be only its first image's first channel
        raise ValueError(
            f"{name} must be a grey photo H x W or a batch N x C x H x W (a tensor, not a NumPy "
            f"array: pass torch.from_numpy(...)), got a NumPy array of shape {tuple(x.shape)}"
        )
    if x.numel():
        lo, hi = (float(v) for v in torch.aminmax(x))
        if not (lo >= 0 and hi <= 1):  # also catches NaN
            raise ValueError(
                f"{name} must have values in [0, 1] (divide a 0-255 photo by 255), "
                f"got [{lo:.3g}, {hi:.3g}]"
            )
    return x, is_numpy


def _check_shape(shape) -> tuple[int, int]:
    """A mask's ``(H, W)``: two positive ints."""
    if (
        not isinstance(shape, tuple | list | torch.Size)
        or len(shape) != 2
        or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in shape)
        or min(shape) < 1
    ):
        raise ValueError(f"shape must be (H, W), two positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def _like(x: torch.Tensor, image):
    """Back to the input's kind: an ``H x W`` array or tensor, or the batch."""
    if isinstance(image, np.ndarray):
        return x[0, 0].numpy().astype(image.dtype, copy=False)
    return x[0, 0] if image.ndim == 2 else x


def _random(draw, like: torch.Tensor, generator) -> torch.Tensor:
    """``draw`` (``torch.randn`` or ``torch.rand``) shaped like ``like``: from the global RNG on
    ``like``'s device when ``generator`` is None (training), else from a seed or a
    ``torch.Generator`` (reproducible)."""
    if generator is None:
        return draw(like.shape, dtype=like.dtype, device=like.device)
    if not isinstance(generator, torch.Generator):
        generator = torch.Generator().manual_seed(int(generator))
    return draw(like.shape, generator=generator, device=generator.device).to(like)


def _sigmas(sigma, n: int) -> torch.Tensor:
    """One noise level per image, ``N x 1 x 1 x 1``, on the 0..255 scale."""
    s = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)
    if s.numel() not in (1, n) or (s < 0).any():
        raise ValueError(f"sigma must be >= 0, one number or one per image ({n}), got {sigma}")
    return s.expand(n).reshape(n, 1, 1, 1)


# ----------------------------------------------------------------------------- noise


def add_gaussian_noise(image, sigma, generator=None, clip: bool = True):
    """``y = clip(x + sigma/255 * n, 0, 1)``, ``n ~ N(0, 1)`` per pixel.

    ``clip=True`` (the default) keeps the values in [0, 1], as a saved photo would: the noise
    is then no longer exactly Gaussian near black and white, which classical methods that
    assume it must live with. ``sigma``: one level or one per image of a batch.
    ``generator``: a seed or a ``torch.Generator`` for reproducible noise (evaluation), or None
    for the global random state (training).
    """
    x, _ = _as_batch(image)
    s = _sigmas(sigma, len(x)).to(x)
    # y = x + sigma/255 * n,  n ~ N(0, 1)
    y = x + s / 255.0 * _random(torch.randn, x, generator)
    return _like(y.clamp(0, 1) if clip else y, image)


def add_salt_and_pepper(image, amount: float, generator=None):
    """Set a fraction ``amount`` of the pixels to 0 or 1 (half each): dead and hot pixels,
    transmission errors. Median filters were made for it. ``generator`` as for
    ``add_gaussian_noise``."""
    if not 0 <= amount <= 1:
        raise ValueError(f"amount must be a fraction in [0, 1], got {amount}")
    x, _ = _as_batch(image)
    u = _random(torch.rand, x, generator)
    y = torch.where(u < amount / 2, 0.0, torch.where(u < amount, 1.0, x))
    return _like(y, image)


# ----------------------------------------------------------------------------- blur


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """A normalised 2-D Gaussian blur kernel, ``size x size`` (default ``2 ceil(3 sigma) + 1``)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    size = 2 * math.ceil(3 * sigma) + 1 if size is None else int(size)
    r = np.arange(size) - (size - 1) / 2
    # k(u, v) proportional to exp(-(u^2 + v^2) / (2 sigma^2))
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: int, angle: float = 0.0, size: int | None = None) -> np.ndarray:
    """A normalised motion-blur kernel: a line of ``length`` pixels at ``angle`` degrees
    (the camera moved in a straight line during the exposure), in a ``size x size`` square."""
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    size = length + 1 - length % 2 if size is None else size  # odd, centred
    if isinstance(size, bool) or not isinstance(size, int) or size < length or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= length = {length}, got {size!r}")
    c = (size - 1) / 2
    dy, dx = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    half = (length - 1) / 2
    k = np.zeros((size, size), np.float32)
    rr, cc = skimage.draw.line(
        round(c - half * dy), round(c - half * dx), round(c + half * dy), round(c + half * dx)
    )
    k[rr, cc] = 1
    return k / k.sum()


def blur(image, kernel, noise_sigma: float = 0.0, generator=None):
    """Convolve with ``kernel`` (``k x k``, odd ``k``), then add Gaussian noise of
    ``noise_sigma`` (out of 255) and clip to [0, 1].

    The convolution is circular (the photo wraps around at its borders): the model of blur
    that Wiener deconvolution, computed with the FFT, assumes. Each channel is blurred alone.
    """
    k = torch.as_tensor(np.asarray(kernel), dtype=torch.float32)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise ValueError(f"kernel must be k x k with k odd, got shape {tuple(k.shape)}")
    if not noise_sigma >= 0:
        raise ValueError(f"noise_sigma must be >= 0 (out of 255), got {noise_sigma}")
    x, _ = _as_batch(image)
    n, c, h, w = x.shape
    r = k.shape[0] // 2
    if r >= min(h, w):
        raise ValueError(f"kernel {tuple(k.shape)} is too large for an image {h} x {w}")
    padded = F.pad(x.reshape(n * c, 1, h, w), (r, r, r, r), mode="circular")
    # y(i, j) = sum_uv k(u, v) x(i - u, j - v): conv2d correlates, so flip the kernel
    y = F.conv2d(padded, k.flip(0, 1)[None, None].to(x)).reshape(n, c, h, w)
    if noise_sigma > 0:
        y = y + noise_sigma / 255.0 * _random(torch.randn, y, generator)
    return _like(y.clamp(0, 1), image)


# ----------------------------------------------------------------------------- missing pixels


def _numpy_rng(generator) -> np.random.Generator:
    """The masks are drawn with NumPy: a seed, a ``numpy.random.Generator`` or None."""
    if isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a seed (int) or a numpy.random.Generator for the masks (drawn "
            "with NumPy), got a torch.Generator"
        )
    return np.random.default_rng(generator)


def random_mask(shape: tuple[int, int], missing: float, generator=None) -> np.ndarray:
    """``H x W`` mask, 1 where a pixel is known, 0 where it is missing (a fraction ``missing``
    of them, each independently)."""
    if not 0 <= missing < 1:
        raise ValueError(f"missing must be a fraction in [0, 1), got {missing}")
    shape = _check_shape(shape)
    rng = _numpy_rng(generator)
    return (rng.random(shape) >= missing).astype(np.float32)


def scribble_mask(
    shape: tuple[int, int], strokes: int = 12, width: int = 5, generator=None
) -> np.ndarray:
    """``H x W`` mask with ``strokes`` random scribbles of ``width`` pixels missing (0), the
    rest known (1): scratches, overlaid text, an object to remove."""
    h, w = shape = _check_shape(shape)
    rng = _numpy_rng(generator)
    mask = np.ones(shape, np.float32)
    for _ in range(strokes):
        r0, c0 = rng.integers(h), rng.integers(w)
        for _ in range(int(rng.integers(2, 5))):  # a few connected segments per stroke
            r1 = int(np.clip(r0 + rng.normal(0, h / 6), 0, h - 1))
            c1 = int(np.clip(c0 + rng.normal(0, w / 6), 0, w - 1))
            rr, cc = skimage.draw.line(r0, c0, r1, c1)
            for dr in range(-(width // 2), width - width // 2):
                for dc in range(-(width // 2), width - width // 2):
                    mask[np.clip(rr + dr, 0, h - 1), np.clip(cc + dc, 0, w - 1)] = 0
            r0, c0 = r1, c1
    return mask


# ----------------------------------------------------------------------------- resolution


def downscale(image, factor: int):
    """Shrink by an integer ``factor`` with bicubic interpolation and antialiasing (like
    MATLAB's ``imresize``, how super-resolution's low-resolution inputs are made). ``H`` and
    ``W`` must be multiples of ``factor``: crop with ``crop_to_multiple`` first."""
    x, _ = _as_batch(image)
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    if x.shape[-2] % factor or x.shape[-1] % factor:
        raise ValueError(f"H and W must be multiples of {factor}, got {tuple(x.shape[-2:])}")
    y = F.interpolate(x, scale_factor=1 / factor, mode="bicubic", antialias=True)
    return _like(y.clamp(0, 1), image)


def upscale_bicubic(image, factor: int):
    """Enlarge by an integer ``factor`` with bicubic interpolation: the classical baseline of
    super-resolution (and the input that VDSR-style networks correct)."""
    x, _ = _as_batch(image)
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    y = F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)
    return _like(y.clamp(0, 1), image)


def crop_to_multiple(image, factor: int):
    """Crop the bottom and right so that ``H`` and ``W`` (the last two axes of an array or
    tensor) are multiples of ``factor``."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    if not isinstance(image, np.ndarray | torch.Tensor):
        raise TypeError(f"image must be a NumPy array or a tensor, got {type(image).__name__}")
    if image.ndim < 2:
        raise ValueError(f"image must be H x W (or ... x H x W), got shape {tuple(image.shape)}")
    h, w = image.shape[-2:]
    return image[..., : h - h % factor, : w - w % factor]
