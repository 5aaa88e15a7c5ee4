"""Chapter 09: super-resolution with a sub-pixel convolution (ESPCN, Shi et al. 2016).

ESPCN works at the *low* resolution throughout, which makes it cheap, and only at the end
turns ``r^2`` channels into an ``r``-times larger image by rearranging them (``PixelShuffle``,
the sub-pixel convolution): output pixel ``(r i + a, r j + b)`` is channel ``r a + b`` at
``(i, j)``. ``pixel_shuffle`` writes that rearrangement out by hand, beside PyTorch's.

The course's ``ESPCN`` predicts the difference from bicubic upscaling (the global residual of
VDSR, Kim et al. 2016) rather than the photo: bicubic is already most of the answer, so the
network learns only the detail it misses, and learns it faster.

Shapes: low resolution ``N x 1 x h x w`` -> ``N x 1 x rh x rw``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_lib import metrics
from course_lib.data import patches, photo
from course_lib.models import evaluating
from course_lib.restoration import as_photo, check_photo, fit
from course_lib.restoration.degrade import crop_to_multiple, downscale, upscale_bicubic
from course_lib.runtime import seed_everything


def _check_shuffle(x: object, r: object) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be an int >= 1 (the upscaling factor), got {r!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] % (r * r):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a tensor N x (C r^2) x H x W with r = {r}, got {got}")


def pixel_shuffle_naive(x: torch.Tensor, r: int) -> torch.Tensor:
    """``N x C r^2 x H x W -> N x C x rH x rW`` with loops: ``out[n, c, r i + a, r j + b] =
    x[n, c r^2 + r a + b, i, j]``. Slow; the definition that ``pixel_shuffle`` must match."""
    _check_shuffle(x, r)
    n, crr, h, w = x.shape
    c = crr // (r * r)
    out = x.new_empty(n, c, r * h, r * w)
    for ch in range(c):
        for a in range(r):
            for b in range(r):
                out[:, ch, a::r, b::r] = x[:, ch * r * r + r * a + b]
    return out


def pixel_shuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """The same rearrangement as one reshape and one permutation (what ``nn.PixelShuffle``
    does): ``N x C r^2 x H x W -> N x C x rH x rW``."""
    _check_shuffle(x, r)
    n, crr, h, w = x.shape
    c = crr // (r * r)
    x = x.reshape(n, c, r, r, h, w)  # channel index c r^2 + r a + b -> (c, a, b)
    x = x.permute(0, 1, 4, 2, 5, 3)  # N x C x H x r(a) x W x r(b)
    return x.reshape(n, c, h * r, w * r)  # row r i + a, column r j + b


class ESPCN(nn.Module):
    """``bicubic(x) + PixelShuffle(conv(tanh(conv(tanh(conv5x5(x))))))``: ESPCN's three layers
    (5x5 with ``widths[0]`` channels, 3x3 with ``widths[1]``, 3x3 with ``r^2``) at the low
    resolution, tanh as in the paper, plus the bicubic upscaling. The last layer starts at zero:
    an untrained ESPCN is bicubic."""

    def __init__(self, factor: int = 3, widths=(64, 32)) -> None:
        super().__init__()
        if not isinstance(factor, int) or factor < 2:
            raise ValueError(f"factor must be an int >= 2, got {factor!r}")
        self.factor = factor
        self.body = nn.Sequential(
            nn.Conv2d(1, widths[0], 5, padding=2), nn.Tanh(),  # h x w, features
            nn.Conv2d(widths[0], widths[1], 3, padding=1), nn.Tanh(),
            nn.Conv2d(widths[1], factor * factor, 3, padding=1),  # r^2 sub-pixel values
            nn.PixelShuffle(factor),  # r^2 x h x w -> 1 x rh x rw
        )  # fmt: skip
        nn.init.zeros_(self.body[4].weight)  # start exactly at bicubic, learn the difference
        nn.init.zeros_(self.body[4].bias)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        """``N x 1 x h x w`` -> ``N x 1 x rh x rw`` (not clipped)."""
        # x_hat = bicubic(y) + f(y)
        return upscale_bicubic(low, self.factor) + self.body(low)

    @torch.no_grad()
    def restore(self, low):
        """Enlarge one grey photo ``h x w`` (NumPy or tensor, in [0, 1]) ``factor`` times;
        returns the same kind, ``rh x rw``, in [0, 1]."""
        x, _ = check_photo(low, "low")
        with evaluating(self):
            out = self(x.to(next(self.parameters()).device)).cpu()
        return as_photo(out, low)


@dataclass(frozen=True)
class SuperResRecipe:
    """Everything that decides a trained ESPCN."""

    factor: int = 3
    widths: tuple[int, int] = (64, 32)
    patch: int = 96  # high-resolution patch side (a multiple of factor)
    pool: int = 3000
    batch_size: int = 32
    steps: int = 2000
    lr: float = 1e-3
    seed: int = 0

    def build(self) -> ESPCN:
        return ESPCN(self.factor, self.widths)


# The shipped ESPCNs: `python -m course_lib.weights build superres_x2` (and x3).
SR_X2_RECIPE = SuperResRecipe(factor=2, patch=96, pool=2000, steps=800)
SR_X3_RECIPE = SuperResRecipe(factor=3, patch=96, steps=4000)


def train_superres(recipe: SuperResRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train on ``recipe.pool`` training patches and their ``downscale``d versions.
    Returns ``(model in eval mode, history)``."""
    if recipe.patch % recipe.factor:
        raise ValueError(f"patch {recipe.patch} must be a multiple of factor {recipe.factor}")
    seed_everything(recipe.seed)
    high = patches(recipe.pool, recipe.patch, split="train", generator=recipe.seed)
    low = downscale(high, recipe.factor)
    model = recipe.build()

    def loss_fn(y, x):
        return nn.functional.mse_loss(model(y), x)

    return fit(model, loss_fn, (low, high), recipe, desc="ESPCN", device=device,
               progress=progress, **train_kwargs)  # fmt: skip


def held_out_psnr(model: ESPCN, names=("camera", "moon")) -> float:
    """Mean PSNR (dB) of ``model.restore`` on the held-out photos, downscaled by its factor."""
    scores = []
    for name in names:
        x = crop_to_multiple(photo(name), model.factor)
        scores.append(metrics.psnr(model.restore(downscale(x, model.factor)), x))
    return float(sum(scores) / len(scores))
