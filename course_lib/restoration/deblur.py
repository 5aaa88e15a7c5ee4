"""Chapter 09: deblurring, Wiener deconvolution and a CNN that corrects it.

A blurred photo is ``y = k * x + n`` (``*``: convolution with the kernel ``k``). In the
Fourier domain the blur is a product, ``Y = K X + N``, so dividing by ``K`` would undo it,
were it not for the frequencies where ``K`` is nearly 0: there the division amplifies the
noise without bound. Wiener deconvolution damps them:

    X_hat = conj(K) Y / (|K|^2 + lambda |L|^2)

(``L``: the Laplacian's transfer function, a penalty on rough photos; ``lambda``: the
balance). It leaves ringing and lost detail that a network can learn to repair: ``Deblurrer``
is given the blurred photo and its Wiener deconvolution and predicts the correction (the
kernel is known, as for Wiener: a *non-blind* deblurrer).

Shapes: ``N x 1 x H x W``; kernels ``k x k`` (odd ``k``) or one per image ``N x k x k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib import metrics
from course_lib.data import patches, photo
from course_lib.models import ResUNet
from course_lib.restoration import apply_fully_convolutional, as_photo, check_photo, fit
from course_lib.restoration.degrade import blur, gaussian_kernel, motion_kernel
from course_lib.runtime import seed_everything

KERNEL_SIZE = 19  # every kernel is zero-padded to this size (fits a Gaussian of sigma 3)


def pad_kernel(kernel: np.ndarray, size: int = KERNEL_SIZE) -> np.ndarray:
    """Zero-pad an odd ``k x k`` kernel to ``size x size``, keeping it centred."""
    k = np.asarray(kernel, np.float32)
    p = (size - k.shape[0]) // 2
    if p < 0 or k.shape[0] % 2 == 0 or k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be k x k with k odd and <= {size}, got {k.shape}")
    return np.pad(k, p)


def transfer_function(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The 2-D FFT of ``kernel`` (``k x k`` or ``N x k x k``) placed with its centre at pixel
    (0, 0) of an ``H x W`` grid: the multiplier ``K`` of circular convolution,
    ``FFT(k * x) = K FFT(x)``. Same convention as ``skimage.restoration.uft.ir2tf``."""
    k = kernel if kernel.ndim == 3 else kernel[None]
    r = k.shape[-1] // 2
    grid = torch.zeros(k.shape[0], *shape, dtype=k.dtype, device=k.device)
    grid[:, : k.shape[-2], : k.shape[-1]] = k
    grid = torch.roll(grid, shifts=(-r, -r), dims=(-2, -1))  # centre -> (0, 0)
    return torch.fft.rfft2(grid)


def wiener_deconvolve(blurred: torch.Tensor, kernel, balance: float) -> torch.Tensor:
    """Wiener deconvolution of ``N x 1 x H x W`` with its kernel(s), regularised by the
    Laplacian like ``skimage.restoration.wiener`` (and equal to it, tested).

    ``kernel``: one odd ``k x k`` kernel (array or tensor) or one per photo, ``N x k x k``;
    ``balance`` >= 0."""
    if not isinstance(blurred, torch.Tensor) or blurred.ndim != 4 or blurred.shape[1] != 1:
        got = tuple(blurred.shape) if hasattr(blurred, "shape") else type(blurred).__name__
        raise ValueError(
            "blurred must be a tensor N x 1 x H x W (torch.as_tensor(photo)[None, None]), "
            f"got {got}"
        )
    k = torch.as_tensor(np.asarray(kernel) if not torch.is_tensor(kernel) else kernel)
    k = k.to(blurred)
    shape = tuple(blurred.shape[-2:])
    if (
        k.ndim not in (2, 3)
        or k.shape[-1] != k.shape[-2]
        or k.shape[-1] % 2 == 0
        or k.shape[-1] > min(shape)
        or (k.ndim == 3 and len(k) not in (1, len(blurred)))
    ):
        raise ValueError(
            f"kernel must be k x k or N x k x k with k odd and <= min(H, W) = {min(shape)} "
            f"(an even kernel has no centre: the result would shift), got {tuple(k.shape)}"
        )
    if not balance >= 0:
        raise ValueError(f"balance must be >= 0 (the Laplacian's weight), got {balance}")
    K = transfer_function(k, shape)[:, None]  # N x 1 x H x (W/2 + 1)
    laplacian = torch.tensor([[0.0, -1, 0], [-1, 4, -1], [0, -1, 0]]).to(blurred)
    L = transfer_function(laplacian, shape)[:, None]
    # X_hat = conj(K) Y / (|K|^2 + lambda |L|^2)
    X = K.conj() * torch.fft.rfft2(blurred) / (K.abs() ** 2 + balance * L.abs() ** 2)
    return torch.fft.irfft2(X, s=shape)


class Deblurrer(nn.Module):
    """``wiener + ResUNet([blurred, wiener])``: Wiener deconvolution, then a learned correction.

    ``balance``: Wiener's regularisation (the network works on top of it)."""

    def __init__(self, widths=(32, 64, 96), blocks: int = 2, balance: float = 0.005) -> None:
        super().__init__()
        self.body = ResUNet(2, 1, widths, blocks)
        self.multiple = self.body.multiple
        self.balance = balance
        nn.init.zeros_(self.body.tail.weight)  # untrained, it is Wiener deconvolution
        nn.init.zeros_(self.body.tail.bias)

    def forward(self, blurred: torch.Tensor, kernel) -> torch.Tensor:
        """``N x 1 x H x W`` blurred photos, their kernel(s) -> deblurred (not clipped).
        ``H`` and ``W`` must be multiples of ``self.multiple``."""
        w = wiener_deconvolve(blurred, kernel, self.balance)
        # x_hat = wiener(y) + f(y, wiener(y))
        return w + self.body(torch.cat([blurred, w], dim=1))

    @torch.no_grad()
    def restore(self, blurred, kernel):
        """Deblur one grey photo ``H x W`` (NumPy or tensor, in [0, 1], any size) blurred by
        ``kernel``; returns the same kind, in [0, 1].

        Wiener deconvolution is computed once, on the whole photo: the blur is circular over
        the whole photo, and the FFT's model of it holds only there (on a crop it would ring
        along the crop's edges). Only the network's input ``[blurred, wiener]`` is padded
        (reflecting) to a multiple of ``self.multiple``, and its correction cropped back: on
        sides that are already multiples, this is exactly ``forward``."""
        x, _ = check_photo(blurred, "blurred")
        device = next(self.parameters()).device
        x = x.to(device)
        w = wiener_deconvolve(x, kernel, self.balance)  # circular: on the full photo
        # x_hat = wiener(y) + f(y, wiener(y)), f run on the padded pair, cropped back
        correction = apply_fully_convolutional(self.body, torch.cat([x, w], dim=1), self.multiple)
        return as_photo(w.cpu() + correction, blurred)


def random_kernel(rng: np.random.Generator) -> np.ndarray:
    """A training kernel, padded to ``KERNEL_SIZE``: half Gaussian (sigma in [1, 3]), half
    motion (length 5-15 pixels, any angle)."""
    if rng.random() < 0.5:
        return pad_kernel(gaussian_kernel(float(rng.uniform(1.0, 3.0)), size=KERNEL_SIZE))
    return pad_kernel(motion_kernel(int(rng.integers(5, 16)), float(rng.uniform(0, 180))))


@dataclass(frozen=True)
class DeblurRecipe:
    """Everything that decides a trained deblurrer. ``noise``: sigma (out of 255) of the noise
    added after the blur."""

    widths: tuple[int, ...] = (32, 64, 96)
    blocks: int = 2
    balance: float = 0.005
    noise: float = 2.0
    patch: int = 96
    pool: int = 2000
    batch_size: int = 8
    steps: int = 1500
    lr: float = 1e-3
    clip_grad_norm: float = 0.05
    seed: int = 0

    def build(self) -> Deblurrer:
        return Deblurrer(self.widths, self.blocks, self.balance)


# The shipped deblurrer: `python -m course_lib.weights build deblur`.
DEBLUR_RECIPE = DeblurRecipe(steps=2500)


def train_deblurrer(recipe: DeblurRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train on ``recipe.pool`` training patches, each blurred once by its own random kernel
    (circularly, as Wiener assumes) plus noise. Returns ``(model in eval mode, history)``."""
    seed_everything(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    clean = patches(recipe.pool, recipe.patch, split="train", generator=rng)
    kernels = torch.from_numpy(np.stack([random_kernel(rng) for _ in range(recipe.pool)]))
    blurred = torch.cat([blur(x[None], k.numpy(), recipe.noise, generator=i)
                         for i, (x, k) in enumerate(zip(clean, kernels, strict=True))])  # fmt: skip
    model = recipe.build()

    def loss_fn(y, k, x):
        return nn.functional.mse_loss(model(y, k), x)

    return fit(model, loss_fn, (blurred, kernels, clean), recipe, desc="deblurrer",
               device=device, progress=progress, **train_kwargs)  # fmt: skip


def held_out_psnr(model: Deblurrer, kernel=None, noise: float = 2.0, names=("camera", "moon")):
    """Mean PSNR (dB) of ``model.restore`` on the held-out photos blurred by ``kernel``
    (default: Gaussian of sigma 2) plus seeded noise of ``noise`` (out of 255)."""
    kernel = pad_kernel(gaussian_kernel(2.0) if kernel is None else kernel)
    scores = []
    for i, name in enumerate(names):
        x = photo(name)
        scores.append(metrics.psnr(model.restore(blur(x, kernel, noise, generator=i), kernel), x))
    return float(np.mean(scores))
