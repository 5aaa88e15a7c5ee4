"""Chapter 08: denoising by residual learning (DnCNN, Zhang et al. 2017), blind.

A noisy photo is ``y = x + n``. Rather than the clean ``x``, the network ``f`` predicts the
noise ``n`` and subtracts it: ``x_hat = y - f(y)`` (residual learning). The noise is simpler
than the photo, so the network learns faster, and the loss is unchanged:

    || x_hat - x ||^2 = || f(y) - (y - x) ||^2

``DnCNN`` is the paper's plain stack of 3x3 convolutions at full resolution. ``UNetDenoiser``
is the course's: the same residual learning around a ``models.ResUNet`` that works at half
resolution and sees far: many times faster per step on a CPU, which is what lets a laptop
train a denoiser that beats non-local means in minutes and nears BM3D in half an hour (the
chapter and ``benchmarks/bench_denoisers.py`` measure both). *Blind*: trained on noise levels
drawn from a range, so that ``restore(image)`` needs no noise level.

Shapes: networks take ``N x 1 x H x W`` in [0, 1]; ``restore`` takes one photo ``H x W``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import metrics
from course_lib.data import patches, photo, photo_split
from course_lib.models import ResUNet
from course_lib.restoration import (
    apply_fully_convolutional,
    as_photo,
    check_photo,
    fit,
    mean_log_error,
    symmetry,
)
from course_lib.restoration.degrade import add_gaussian_noise
from course_lib.runtime import seed_everything

# ----------------------------------------------------------------------------- networks


class ResidualDenoiser(nn.Module):
    """``x_hat = y - body(y)``: ``body`` predicts the noise. Subclasses set ``self.body`` and
    ``self.multiple`` (the body's input sides must be multiples of it)."""

    body: nn.Module
    multiple: int = 1

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """``N x 1 x H x W`` noisy -> ``N x 1 x H x W`` denoised (not clipped)."""
        # x_hat = y - f(y): the network's output is the estimated noise
        return noisy - self.body(noisy)

    def restore(self, image, self_ensemble: bool = False):
        """Denoise one grey photo ``H x W`` (NumPy array or tensor, values in [0, 1], any size,
        noise level unknown). Returns the same kind, shape and dtype, values in [0, 1].
        ``self_ensemble=True``: the mean over the 8 rotations and flips of the photo, 8 times
        the work (``restoration.apply_fully_convolutional``)."""
        x, _ = check_photo(image)
        return as_photo(apply_fully_convolutional(self, x, self.multiple, self_ensemble), image)


class DnCNN(ResidualDenoiser):
    """DnCNN (Zhang et al. 2017): conv+ReLU, ``depth - 2`` times conv+BatchNorm+ReLU, conv;
    all 3x3 with ``width`` channels at full resolution (receptive field ``2 depth + 1``
    pixels). ``depth=17, width=64`` is the paper's DnCNN-S (556k parameters)."""

    def __init__(self, depth: int = 17, width: int = 64) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth must be >= 3, got {depth}")
        layers = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU()]  # fmt: skip
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)


def estimate_noise_sigma(noisy: torch.Tensor) -> torch.Tensor:
    """The noise level of each grey image of ``N x 1 x H x W`` -> ``N`` (in the pixels' units),
    from its finest diagonal Haar details (Donoho and Johnstone 1994; scikit-image's
    ``estimate_sigma`` applies the same median rule to db2 wavelet details). Those details of a
    photo are mostly noise, and the median absolute value of Gaussian noise is 0.6745 sigma.

    An estimate, not the level: texture counts as noise too (camera with sigma 5 reads about
    6.4), clipping to [0, 1] removes some (camera with sigma 50, clipped, reads 43), and an odd
    side's last row or column is left out. A flat image gives 0."""
    if not isinstance(noisy, torch.Tensor) or not noisy.is_floating_point():
        kind = noisy.dtype if isinstance(noisy, torch.Tensor) else type(noisy).__name__
        raise TypeError(f"noisy must be a float tensor N x 1 x H x W, got {kind}")
    if noisy.ndim != 4 or noisy.shape[1] != 1 or min(noisy.shape[-2:]) < 2:
        raise ValueError(f"noisy must be N x 1 x H x W with H, W >= 2, got {tuple(noisy.shape)}")
    h, w = noisy.shape[-2] // 2 * 2, noisy.shape[-1] // 2 * 2
    x = noisy[..., :h, :w]
    # HH = (a - b - c + d) / 2 on each 2x2 block [[a, b], [c, d]]
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    # sigma = median |HH| / 0.6745
    return hh.abs().flatten(1).median(1).values / 0.6745


class UNetDenoiser(ResidualDenoiser):
    """Residual learning around ``models.ResUNet(C, 1, widths, blocks)`` (half resolution,
    ``len(widths)`` scales, residual blocks, no normalisation); ``C = 1``, or 2 with the map.

    ``noise_map=True``: the network also reads a constant second channel holding the image's
    noise level, estimated from the image itself (``estimate_noise_sigma``): FFDNet's
    noise-level map (Zhang et al. 2018), but still blind, since nobody has to give the level.
    The estimate is a median over the whole patch (in training) or photo (in ``restore``): a
    robust statistic that stacked convolutions do not compute easily."""

    def __init__(
        self, widths=(32, 64, 96, 160), blocks: int = 2, zero_init: bool = False,
        noise_map: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.noise_map = bool(noise_map)
        self.body = ResUNet(2 if noise_map else 1, 1, widths, blocks)
        self.multiple = self.body.multiple
        if zero_init:  # predict no noise at first: the untrained denoiser is the identity
            nn.init.zeros_(self.body.tail.weight)
            nn.init.zeros_(self.body.tail.bias)

    def forward(self, noisy: torch.Tensor, level: torch.Tensor | None = None) -> torch.Tensor:
        """``N x 1 x H x W`` noisy -> ``N x 1 x H x W`` denoised (not clipped). With the map,
        ``level`` (``N``, the pixels' units) replaces the estimate."""
        if not self.noise_map:
            return super().forward(noisy)
        if level is None:  # a conditioning input: no gradient through the median
            level = estimate_noise_sigma(noisy).detach()
        # [y, sigma_hat]: N x 1 x H x W -> N x 2 x H x W
        inputs = torch.cat([noisy, level.reshape(-1, 1, 1, 1).expand_as(noisy)], dim=1)
        # x_hat = y - f(y, sigma_hat)
        return noisy - self.body(inputs)

    @torch.no_grad()
    def restore(self, image, self_ensemble: bool = False, level: float | None = None):
        """``ResidualDenoiser.restore``. With the map, the level is estimated once, on the photo
        as given (not on the padded photo the network runs on: copied or mirrored rows have no
        noise of their own), or set by hand with ``level`` (out of 1, e.g. ``25 / 255``)."""
        if not self.noise_map:
            if level is not None:
                raise ValueError("level is for a denoiser with a noise map (noise_map=True)")
            return super().restore(image, self_ensemble)
        x, _ = check_photo(image)
        if level is None:
            sigma = estimate_noise_sigma(x)
        elif (
            isinstance(level, bool)
            or not isinstance(level, int | float)
            or not (level >= 0 and math.isfinite(level))
        ):
            raise ValueError(
                f"level must be a number >= 0 (out of 1, e.g. 25 / 255), got {level!r}"
            )
        else:
            sigma = torch.tensor([float(level)])
        # [y, sigma_hat]: the map made from the photo, then padded with it
        inputs = torch.cat([x, sigma.reshape(1, 1, 1, 1).expand_as(x)], dim=1)
        # x_hat = y - f(y, sigma_hat)
        noise = apply_fully_convolutional(self.body, inputs, self.multiple, self_ensemble)
        return as_photo(x - noise, image)


# ----------------------------------------------------------------------------- loss


def level_weight(sigma: torch.Tensor) -> torch.Tensor:
    """``w(sigma) = (25 + 10) / (sigma + 10)`` for noise levels ``sigma`` (out of 255): 1 at
    sigma = 25. Roughly the inverse of the squared error a blind denoiser trained on the plain
    mean leaves at sigma (the one shipped before this weighting, on camera + moon: 3.5e-4,
    5.1e-4, 8.6e-4 at sigma = 15, 25, 50; times w: 4.9e-4, 5.1e-4, 5.0e-4), so that weighted,
    the levels from 15 to 50 count about alike, where the plain mean listens most to the
    noisiest patches. (Below 15 the weight keeps rising to 3.5 at sigma = 0, while the error
    there falls further: the weighted loss still listens least to the quietest patches.)"""
    # w = (25 + 10) / (sigma + 10)
    return 35.0 / (sigma + 10.0)


def denoising_loss(
    model: nn.Module,
    clean: torch.Tensor,
    sigma: torch.Tensor,
    log: bool = False,
    level_weighted: bool = False,
) -> torch.Tensor:
    """Mean squared error of the denoised patches: add noise of ``sigma`` (``N`` levels out of
    255) to ``clean`` (``N x 1 x P x P``), denoise, compare. Equal to the error of the
    predicted noise, ``|| f(y) - (y - x) ||^2``: residual learning.

    Two ways for a blind denoiser's noisiest patches not to take most of the gradient:
    ``log=True``, the mean over patches of the log of each patch's squared error
    (``restoration.mean_log_error``: every patch alike, by its content too); or
    ``level_weighted=True``, each patch's squared error times ``level_weight(sigma)`` (every
    noise level alike, whatever the content)."""
    if log and level_weighted:
        raise ValueError("choose one of log and level_weighted, not both")
    noisy = add_gaussian_noise(clean, sigma)  # clipped, fresh noise from the global RNG
    if not (log or level_weighted):
        return F.mse_loss(model(noisy), clean)
    per_patch = (model(noisy) - clean).pow(2).flatten(1).mean(1)  # MSE per patch: N
    if log:
        return mean_log_error(per_patch)
    # mean_i w(sigma_i) * MSE_i
    return (level_weight(sigma) * per_patch).mean()


def random_symmetry(x: torch.Tensor) -> torch.Tensor:
    """One random symmetry of the square (rotation by k quarter turns, maybe a flip) applied
    to the whole batch ``N x C x P x P``: 8 times the data for free."""
    return symmetry(x, int(torch.randint(8, ())))


# ----------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class DenoiseRecipe:
    """Everything that decides a trained denoiser.

    ``sigma_range = (a, b)``: each patch gets a noise level drawn uniformly from it (a blind
    denoiser); ``(s, s)`` trains for one level only.
    """

    arch: str = "unet"  # "unet" (UNetDenoiser) or "dncnn" (DnCNN)
    widths: tuple[int, ...] = (32, 64, 96, 160)
    blocks: int = 2
    depth: int = 17  # DnCNN only
    sigma_range: tuple[float, float] = (0.0, 55.0)
    patch: int = 128
    pool: int = 8000  # training patches drawn once (then flipped/rotated at random)
    batch_size: int = 8
    steps: int = 5000
    lr: float = 2e-3
    clip_grad_norm: float = 0.05
    zero_init: bool = False  # UNetDenoiser: start as the identity (faster in short runs)
    log_loss: bool = False  # minimise the mean log of each patch's MSE (``denoising_loss``)
    level_weighted: bool = False  # weight each patch's MSE by ``level_weight(sigma)``
    noise_map: bool = False  # UNetDenoiser: also read the estimated noise level (a channel)
    seed: int = 0

    def build(self) -> ResidualDenoiser:
        if self.noise_map and self.arch != "unet":
            raise ValueError(f"noise_map is an option of the 'unet' arch, not {self.arch!r}")
        if self.arch == "unet":
            return UNetDenoiser(self.widths, self.blocks, self.zero_init, self.noise_map)
        if self.arch == "dncnn":
            return DnCNN(self.depth, self.widths[0])
        raise ValueError(f"arch must be 'unet' or 'dncnn', got {self.arch!r}")


# The shipped blind denoiser: `python -m course_lib.weights build denoise`. With the noise map
# (the level estimated from the image, a second input channel). Two seeds each, with and
# without it (`benchmarks/bench_denoisers.py --shipped --candidate`, and seed 1 built the same
# way): +0.16/+0.04/+0.12 and +0.27/+0.13/+0.18 dB at sigma 15/25/50 on camera + moon,
# +0.01 to +0.11 on chelsea + motorcycle. And with each patch's error weighted by its level
# (`level_weight`), against the map alone (`level_weighted=False`), two seeds: +0.16/+0.10/-0.03
# and +0.10/+0.02/-0.04 on camera + moon; on chelsea + motorcycle no clear change (seed 0
# +0.02 to +0.04, seed 1 -0.04 to 0.00). Seed 0 shipped: 34.72/33.00/30.65 dB, 1,238 s. The
# weights average 1.19 over sigma ~ U(0, 55), not normalised: Adam ignores a common factor,
# though the gradient clipping does not. A short budget says otherwise (`bench_denoisers.py
# --blind`, 300 s, one run): the weighting does not help at sigma 15 and costs 0.14 and 0.41 dB
# at 25 and 50, and the mean log MSE wins; but over the 5,000 steps, with the map, seed 0, the
# log scored 34.63/32.95/30.72 against the weighting's 34.72/33.00/30.65. Not taken either:
# patches also from the photos downscaled to 0.9, 0.8 and 0.7 (DnCNN's scales), seed 0:
# 34.51/32.83/30.41, worse at each level.
DENOISE_RECIPE = DenoiseRecipe(noise_map=True, level_weighted=True)


def train_denoiser(recipe: DenoiseRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train a denoiser with ``recipe`` on ``recipe.pool`` patches of the training photos.

    Returns ``(model in eval mode, history)``; ``train_kwargs`` go to ``train`` (e.g.
    ``max_seconds``, ``checkpoint``, ``evaluate``)."""
    seed_everything(recipe.seed)
    pool = patches(recipe.pool, recipe.patch, split="train", generator=recipe.seed)
    model = recipe.build()
    low, high = recipe.sigma_range

    def loss_fn(clean):
        clean = random_symmetry(clean)
        # sigma ~ U(low, high), one per patch
        sigma = low + (high - low) * torch.rand(len(clean), device=clean.device)
        return denoising_loss(model, clean, sigma, recipe.log_loss, recipe.level_weighted)

    return fit(model, loss_fn, (pool,), recipe, desc="denoiser", device=device,
               progress=progress, **train_kwargs)  # fmt: skip


# ----------------------------------------------------------------------------- evaluation


def noisy_pairs(sigma: float, names: list[str] | None = None, split: str = "test", seed: int = 0):
    """``[(noisy, clean), ...]`` grey photos (NumPy ``H x W``) of ``split`` (default: the
    held-out camera and moon), with clipped Gaussian noise of ``sigma`` (out of 255) drawn from
    a seed fixed per photo and level: every method is scored on the very same noise."""
    if names is None:
        names = [n for n in photo_split(split) if photo(n, gray=False).ndim == 2]
    pairs = []
    for i, name in enumerate(names):
        clean = photo(name)
        noisy = add_gaussian_noise(clean, sigma, generator=seed + 1000 * i + int(sigma))
        pairs.append((noisy, clean))
    return pairs


def mean_psnr(restore, sigma: float = 25.0, names=None) -> float:
    """Mean PSNR (dB) of ``restore`` (a function of one noisy photo, e.g. ``model.restore`` or
    ``classical.non_local_means``) on ``noisy_pairs(sigma, names)``."""
    pairs = noisy_pairs(sigma, names)
    return float(sum(metrics.psnr(restore(y), x) for y, x in pairs) / len(pairs))


def held_out_psnr(model: ResidualDenoiser, sigma: float = 25.0, names=None) -> float:
    """Mean PSNR (dB) of ``model.restore`` on ``noisy_pairs(sigma, names)``."""
    return mean_psnr(model.restore, sigma, names)
