"""The editing half of the course: restoring damaged photos, one module per task.

    degrade     how photos get damaged: Gaussian and salt-and-pepper noise, blur kernels,
                masks of missing pixels, lost resolution
    classical   the classical methods to beat (filters, TV, wavelets, non-local means, BM3D,
                Wiener, Richardson-Lucy, biharmonic inpainting) and ``tune`` on training photos
    denoise     chapter 08: DnCNN, the residual denoiser, blind training, ``restore(image)``
    inpaint     chapter 09: the U-Net given the mask, the loss on the missing pixels
    deblur      chapter 09: a CNN that corrects Wiener deconvolution
    superres    chapter 09: ESPCN's sub-pixel convolution (``PixelShuffle``)

Networks take ``N x C x H x W`` tensors in [0, 1]; every restorer also has ``restore(...)``
that takes one grey photo ``H x W`` (NumPy or tensor, any size) and returns the same kind.
Train on ``data.photo_split("train")``; test on ``data.photo_split("test")``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from course_lib.models import pad_to_multiple


def check_photo(image, name: str = "image") -> tuple[torch.Tensor, bool]:
    """One grey photo ``H x W`` (NumPy array or tensor) with float values in [0, 1], as a
    ``1 x 1 x H x W`` float32 tensor; also whether it came as NumPy. Clear errors otherwise."""
    if not isinstance(image, np.ndarray | torch.Tensor):
        kind = type(image).__name__
        raise TypeError(f"{name} must be a NumPy array or a tensor H x W, got {kind}")
    x = torch.as_tensor(image)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a grey photo H x W, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floats in [0, 1] (divide uint8 by 255), got {x.dtype}")
    if min(x.shape) < 8:
        raise ValueError(f"{name} must be at least 8 x 8 pixels, got {tuple(x.shape)}")
    lo, hi = float(x.min()), float(x.max())
    if not (lo >= 0 and hi <= 1):  # also catches NaN
        raise ValueError(f"{name} must have values in [0, 1], got [{lo:.3g}, {hi:.3g}]")
    return x.detach().float()[None, None], isinstance(image, np.ndarray)


def as_photo(x: torch.Tensor, like) -> np.ndarray | torch.Tensor:
    """``1 x 1 x H x W`` back to the kind of ``like``: NumPy (its dtype) or a tensor (its device
    and dtype), ``H x W``, clipped to [0, 1]."""
    out = x[0, 0].clamp(0, 1)
    if isinstance(like, np.ndarray):
        return out.cpu().numpy().astype(like.dtype, copy=False)
    return out.to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def apply_fully_convolutional(net: nn.Module, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Run ``net`` in eval mode on ``1 x C x H x W`` of any size: pad to a multiple of
    ``multiple`` (reflecting), run on the network's device, crop back, restore its mode."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    padded, (h, w) = pad_to_multiple(x.to(device), multiple)
    out = net(padded)[..., :h, :w].cpu()
    net.train(was_training)
    return out
