"""Chapter 09: inpainting, filling in missing pixels with a U-Net that is told where they are.

The network gets two channels: the photo with its missing pixels set to 0, and the mask
(1 = known, 0 = missing), so that it can tell a black pixel from a missing one. Its output is
used only where pixels are missing, the known ones are kept (``compose``), and the loss is
measured on the missing pixels only (``masked_mse``): the known ones teach nothing.

Shapes: ``image``, ``mask``: ``N x 1 x H x W``; ``restore`` takes one photo and mask ``H x W``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib import metrics
from course_lib.data import patches, photo
from course_lib.models import ResUNet
from course_lib.restoration import apply_fully_convolutional, as_photo, check_photo
from course_lib.restoration.degrade import random_mask, scribble_mask
from course_lib.runtime import seed_everything
from course_lib.train import train


def compose(known: torch.Tensor, filled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from ``known``, missing ones from ``filled``: ``m x + (1 - m) f``."""
    # x_hat = m * x + (1 - m) * f(x, m)
    return mask * known + (1 - mask) * filled


def masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the missing pixels only (``mask == 0``):
    ``sum((1 - m) (y - x)^2) / sum(1 - m)``; 0 when nothing is missing."""
    missing = 1 - mask
    # L = sum((1 - m) * (y - x)^2) / sum(1 - m)
    return (missing * (output - target) ** 2).sum() / missing.sum().clamp_min(1)


class Inpainter(nn.Module):
    """``models.ResUNet(2, 1)`` on ``[image * mask, mask]``; known pixels kept."""

    def __init__(self, widths=(32, 64, 96), blocks: int = 2) -> None:
        super().__init__()
        self.body = ResUNet(2, 1, widths, blocks)
        self.multiple = self.body.multiple

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``N x 1 x H x W`` photo (missing pixels may hold anything) and mask -> filled photo."""
        known = image * mask  # hide whatever the missing pixels hold
        filled = self.body(torch.cat([known, mask], dim=1))  # 2 x H x W -> 1 x H x W
        return compose(known, filled, mask)

    def restore(self, image, mask):
        """Fill the pixels where ``mask == 0`` in one grey photo ``H x W`` (NumPy or tensor,
        values in [0, 1]); returns the same kind, values in [0, 1]."""
        x, _ = check_photo(image)
        m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
        if m.shape != x.shape[-2:] or not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"mask must be 0/1 of the image's shape {tuple(x.shape[-2:])}")
        both = torch.cat([x, m[None, None]], dim=1)
        out = apply_fully_convolutional(_Stacked(self), both, self.multiple)
        return as_photo(out, image)


class _Stacked(nn.Module):
    """Adapter: one ``N x 2 x H x W`` input (photo, mask) for ``apply_fully_convolutional``."""

    def __init__(self, inpainter: Inpainter) -> None:
        super().__init__()
        self.inpainter = inpainter

    def forward(self, both: torch.Tensor) -> torch.Tensor:
        return self.inpainter(both[:, :1], both[:, 1:])


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
    patch: int = 64
    pool: int = 3000
    batch_size: int = 16
    steps: int = 1500
    lr: float = 1e-3
    clip_grad_norm: float = 0.05
    seed: int = 0

    def build(self) -> Inpainter:
        return Inpainter(self.widths, self.blocks)


# The shipped inpainter: `python -m course_lib.weights build inpaint`.
INPAINT_RECIPE = InpaintRecipe(steps=3000)


def train_inpainter(recipe: InpaintRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train on ``recipe.pool`` patches of the training photos, each with its own mask.
    Returns ``(model in eval mode, history)``."""
    seed_everything(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    clean = patches(recipe.pool, recipe.patch, split="train", generator=rng)
    masks = training_masks(recipe.pool, recipe.patch, rng)
    model = recipe.build()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    # lr_t = lr * (1 + cos(pi t / T)) / 2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, recipe.steps) / recipe.steps))
    )

    def step(batch):
        x, m = batch
        loss = masked_mse(model(x, m), x, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    model, history = train(model, step, (clean, masks), batch_size=recipe.batch_size,
                           steps=recipe.steps, optimizers={"adam": opt, "schedule": sched},
                           clip_grad_norm=recipe.clip_grad_norm, device=device, seed=recipe.seed,
                           progress=progress, desc="inpainter", **train_kwargs)  # fmt: skip
    return model.eval(), history


def held_out_psnr(model: Inpainter, kind: str = "random", names=("camera", "moon")) -> float:
    """Mean PSNR (dB) of ``model.restore`` on the held-out photos with a seeded mask:
    ``"random"`` (50% of the pixels missing) or ``"scribble"`` (12 strokes of 5 pixels)."""
    scores = []
    for i, name in enumerate(names):
        x = photo(name)
        m = random_mask(x.shape, 0.5, i) if kind == "random" else scribble_mask(x.shape, 12, 5, i)
        scores.append(metrics.psnr(model.restore(x * m, m), x))
    return float(np.mean(scores))
