"""Chapter 09: inpainting, filling in missing pixels with a U-Net that is told where they are.

The network gets three channels: the photo with its missing pixels set to 0, the mask
(1 = known, 0 = missing), so that it can tell a black pixel from a missing one, and a quick
first guess (``normalized_fill``: a local weighted mean of the known pixels) that it corrects,
as the deblurrer corrects Wiener's result. Its output is used only where pixels are missing,
the known ones are kept (``compose``), and the loss is measured on the missing pixels only
(``masked_mse``): the known ones teach nothing.

Shapes: ``image``, ``mask``: ``N x 1 x H x W``; ``restore`` takes one photo and mask ``H x W``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import skimage.restoration
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import metrics
from course_lib.data import patches, photo
from course_lib.generative import check_float_tensors
from course_lib.models import ResUNet
from course_lib.restoration import (
    apply_fully_convolutional,
    as_photo,
    check_photo,
    fit,
    mean_log_error,
)
from course_lib.restoration.degrade import random_mask, scribble_mask
from course_lib.runtime import seed_everything

# a bool or NumPy mask would fail inside torch, one without its channel would broadcast
_MASKED = "N x 1 x H x W (the mask: floats, 1 = known, 0 = missing; torch.as_tensor(mask).float())"


def compose(known: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from ``known``, missing ones from ``filled``: ``m x + (1 - m) f``.
    All three ``N x 1 x H x W`` float tensors."""
    check_float_tensors(_MASKED, known=known, filled=filled, mask=mask)
    # x_hat = m * x + (1 - m) * f(x, m)
    return mask * known + (1 - mask) * filled


def masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the missing pixels only (``mask == 0``):
    ``sum((1 - m) (y - x)^2) / sum(1 - m)``; 0 when nothing is missing. All three
    ``N x 1 x H x W`` float tensors."""
    check_float_tensors(_MASKED, output=output, target=target, mask=mask)
    missing = 1 - mask
    # L = sum((1 - m) * (y - x)^2) / sum(1 - m)
    return (missing * (output - target) ** 2).sum() / missing.sum().clamp_min(1)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``N x 1 x H x W`` (reflecting at the borders)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g.reshape(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.reshape(1, 1, -1, 1))


def normalized_fill(image: torch.Tensor, mask: torch.Tensor, sigmas=(1.0, 2.0, 4.0, 8.0, 16.0)):
    """A quick first guess for the missing pixels: *normalised convolution* (Knutsson and
    Westin 1993), the Gaussian-weighted mean of the known pixels around each one,
    ``(G * (m x)) / (G * m)``, from the narrowest Gaussian of ``sigmas`` that has enough known
    pixels nearby (wider ones for larger holes). Known pixels are kept. ``N x 1 x H x W``."""
    fill = torch.full_like(image, 0.5)
    for sigma in sorted(sigmas, reverse=True):  # widest first, narrower ones overwrite it
        if 3 * sigma >= min(image.shape[-2:]):
            continue  # reflect padding needs the image to be wider than the kernel
        weight = _gaussian_blur(mask, sigma)
        mean = _gaussian_blur(image * mask, sigma) / weight.clamp_min(1e-6)
        # fill = (G * (m x)) / (G * m),  where G * m is large enough to trust
        fill = torch.where(weight > 0.1, mean, fill)
    return compose(image, fill, mask)


class Inpainter(nn.Module):
    """``models.ResUNet(3, 1)`` on ``[image * mask, mask, guess]``, predicting the correction
    to a first guess; known pixels kept.

    ``guess``: ``"normalized"`` (``normalized_fill``, instant) or ``"biharmonic"`` (scikit-image's
    biharmonic inpainting, the classical method: slower, better; the network then learns what
    it gets wrong). The last layer starts at zero: untrained, the inpainter *is* its guess."""

    def __init__(self, widths=(32, 64, 96), blocks: int = 2, guess: str = "normalized") -> None:
        super().__init__()
        if guess not in ("normalized", "biharmonic"):
            raise ValueError(f"guess must be 'normalized' or 'biharmonic', got {guess!r}")
        self.guess = guess
        self.body = ResUNet(3, 1, widths, blocks)
        self.multiple = self.body.multiple
        nn.init.zeros_(self.body.tail.weight)
        nn.init.zeros_(self.body.tail.bias)

    def first_guess(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The guess for ``N x 1 x H x W`` photos and masks (known pixels kept)."""
        if self.guess == "normalized":
            return normalized_fill(image * mask, mask)
        x, m = image.detach().cpu().double().numpy(), mask.detach().cpu().numpy()
        filled = [skimage.restoration.inpaint_biharmonic(a[0] * b[0], b[0] == 0)
                  for a, b in zip(x, m, strict=True)]  # fmt: skip
        return torch.from_numpy(np.stack(filled)[:, None]).to(image)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guess=None) -> torch.Tensor:
        """``N x 1 x H x W`` photo (missing pixels may hold anything), mask, and optionally its
        precomputed ``first_guess`` -> the filled photo."""
        known = image * mask  # hide whatever the missing pixels hold
        guess = self.first_guess(known, mask) if guess is None else guess
        # x_hat = m x + (1 - m) (guess + f(m x, m, guess))
        filled = guess + self.body(torch.cat([known, mask, guess], dim=1))  # 3 x H x W -> 1
        return compose(known, filled, mask)

    def restore(self, image, mask):
        """Fill the pixels where ``mask == 0`` in one grey photo ``H x W`` (NumPy or tensor,
        values in [0, 1], on any device); returns the same kind, values in [0, 1]. ``mask``:
        ``H x W``, 0/1 (NumPy, a tensor on any device, or nested lists)."""
        x, _ = check_photo(image)
        if isinstance(mask, torch.Tensor):  # np.asarray cannot read a CUDA or a grad tensor
            mask = mask.detach().cpu()
        m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
        if m.shape != x.shape[-2:] or not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"mask must be 0/1 of the image's shape {tuple(x.shape[-2:])}")
        m = m[None, None].to(x.device)
        guess = self.first_guess(x, m)  # on the whole photo, before any padding
        both = torch.cat([x, m, guess], dim=1)
        out = apply_fully_convolutional(_Stacked(self), both, self.multiple)
        return as_photo(out, image)


class _Stacked(nn.Module):
    """Adapter: one ``N x 3 x H x W`` input (photo, mask, guess) for
    ``apply_fully_convolutional``."""

    def __init__(self, inpainter: Inpainter) -> None:
        super().__init__()
        self.inpainter = inpainter

    def forward(self, both: torch.Tensor) -> torch.Tensor:
        return self.inpainter(both[:, :1], both[:, 1:2], both[:, 2:])


def training_masks(n: int, size: int, generator: np.random.Generator) -> torch.Tensor:
    """``n x 1 x size x size`` masks: half random pixels (30-70% missing), half scribbles."""
    masks = []
    for i in range(n):
        if i % 2 == 0:
            masks.append(random_mask((size, size), float(generator.uniform(0.3, 0.7)), generator))
        else:
            strokes = int(generator.integers(2, 6))
            masks.append(scribble_mask((size, size), strokes, int(generator.integers(3, 8)),
                                       generator))  # fmt: skip
    return torch.from_numpy(np.stack(masks))[:, None]


@dataclass(frozen=True)
class InpaintRecipe:
    """Everything that decides a trained inpainter."""

    widths: tuple[int, ...] = (32, 64, 96)
    blocks: int = 2
    guess: str = "normalized"  # or "biharmonic" (see Inpainter)
    log_loss: bool = True  # minimise the mean log of each patch's masked MSE (see below)
    patch: int = 64
    pool: int = 3000
    batch_size: int = 16
    steps: int = 1500
    lr: float = 1e-3
    clip_grad_norm: float = 0.05
    seed: int = 0

    def build(self) -> Inpainter:
        return Inpainter(self.widths, self.blocks, self.guess)


# The shipped inpainter: `python -m course_lib.weights build inpaint`.
INPAINT_RECIPE = InpaintRecipe(guess="biharmonic", steps=2500)


def train_inpainter(recipe: InpaintRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train on ``recipe.pool`` patches of the training photos, each with its own mask.
    Returns ``(model in eval mode, history)``."""
    seed_everything(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    clean = patches(recipe.pool, recipe.patch, split="train", generator=rng)
    masks = training_masks(recipe.pool, recipe.patch, rng)
    model = recipe.build()
    with torch.no_grad():  # the guesses do not change: compute them once
        guesses = torch.cat([model.first_guess(clean[i : i + 256], masks[i : i + 256])
                             for i in range(0, recipe.pool, 256)])  # fmt: skip

    def loss_fn(x, m, g):
        out = model(x, m, g)
        if not recipe.log_loss:
            return masked_mse(out, x, m)
        # mean over patches of log(masked MSE): smooth patches count as much as textured ones
        per_patch = [masked_mse(o, t, k) for o, t, k in zip(out, x, m, strict=True)]
        return mean_log_error(torch.stack(per_patch))

    return fit(model, loss_fn, (clean, masks, guesses), recipe, desc="inpainter",
               device=device, progress=progress, **train_kwargs)  # fmt: skip


def held_out_psnr(model: Inpainter, kind: str = "random", names=("camera", "moon")) -> float:
    """Mean PSNR (dB) of ``model.restore`` on the held-out photos with a seeded mask:
    ``"random"`` (50% of the pixels missing) or ``"scribble"`` (12 strokes of 5 pixels)."""
    scores = []
    for i, name in enumerate(names):
        x = photo(name)
        m = random_mask(x.shape, 0.5, i) if kind == "random" else scribble_mask(x.shape, 12, 5, i)
        scores.append(metrics.psnr(model.restore(x * m, m), x))
    return float(np.mean(scores))
