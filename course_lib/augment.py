"""Data augmentation on batches of images, with torch ops only (no torchvision).

Every transform takes a batch ``N x C x H x W`` (on any device), draws its random parameters
per image from torch's global generator (seed it with ``course_lib.seed_everything``) and
returns a batch of the same shape, dtype and device. With its identity setting (0 degrees,
0 pixels, probability 0) each returns its input unchanged.

    augment = Compose([RandomRotation(10), RandomShift(2)])
    x_aug = augment(x)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch tensor N x C x H x W, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images N x C x H x W, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float tensor, got {x.dtype} (use x.float())")


def _uniform(n: int, low: float, high: float) -> torch.Tensor:
    """``n`` draws from U(low, high), made on the CPU so results do not depend on the device."""
    return low + (high - low) * torch.rand(n)


def affine(
    x: torch.Tensor, angle_deg: torch.Tensor, shift_px: torch.Tensor, mode: str = "bilinear"
):
    """Rotate each image by ``angle_deg[n]`` degrees (counter-clockwise) about its centre and
    shift it by ``shift_px[n] = (dx, dy)`` pixels (right, down); outside is filled with 0.

    Args:
        x: ``N x C x H x W``.  angle_deg: ``N``.  shift_px: ``N x 2``.

    Returns:
        ``N x C x H x W``, sampled with ``F.grid_sample`` at the moved pixel centres.
    """
    _check_batch(x)
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    rad = angle_deg.to(x.dtype) * math.pi / 180
    cos, sin = torch.cos(rad), torch.sin(rad)
    # grid_sample maps output coordinates to input ones in [-1, 1] units: use the inverse motion.
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    theta[:, 0, 2] = -2 * shift_px[:, 0].to(x.dtype) / w
    theta[:, 1, 2] = -2 * shift_px[:, 1].to(x.dtype) / h
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


class RandomRotation:
    """Rotate each image by an angle drawn uniformly from ``[-degrees, degrees]``."""

    def __init__(self, degrees: float) -> None:
        if not (isinstance(degrees, int | float) and 0 <= degrees <= 180):
            raise ValueError(f"degrees must be a number in [0, 180], got {degrees!r}")
        self.degrees = float(degrees)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        if self.degrees == 0:
            return x
        angles = _uniform(len(x), -self.degrees, self.degrees)
        return affine(x, angles, torch.zeros(len(x), 2))

    def __repr__(self) -> str:
        return f"RandomRotation({self.degrees:g})"


class RandomShift:
    """Shift each image by whole pixels drawn from ``[-pixels, pixels]`` along each axis,
    filling with 0: a random crop of the zero-padded image, done without padding."""

    def __init__(self, pixels: int) -> None:
        if not (isinstance(pixels, int) and pixels >= 0):
            raise ValueError(f"pixels must be an int >= 0, got {pixels!r}")
        self.pixels = pixels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        if self.pixels == 0:
            return x
        shifts = torch.randint(-self.pixels, self.pixels + 1, (len(x), 2))
        return affine(x, torch.zeros(len(x)), shifts.to(x.dtype), mode="nearest")

    def __repr__(self) -> str:
        return f"RandomShift({self.pixels})"


class RandomFlip:
    """Mirror each image with probability ``p``: left-right (``horizontal``) or up-down."""

    def __init__(self, p: float = 0.5, horizontal: bool = True) -> None:
        if not (isinstance(p, int | float) and 0 <= p <= 1):
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p, self.horizontal = float(p), horizontal

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        flip = (torch.rand(len(x)) < self.p).to(x.device).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(-1 if self.horizontal else -2), x)

    def __repr__(self) -> str:
        return f"RandomFlip(p={self.p:g}, {'horizontal' if self.horizontal else 'vertical'})"


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"
