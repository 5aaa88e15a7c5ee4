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

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from course_lib.models import evaluating, pad_to_multiple
from course_lib.train import train


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


def symmetry(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th of the 8 symmetries of the square (``k`` in 0..7) on the last two axes of
    ``x`` (``... x H x W``), as ``data.augment_d4`` does for NumPy photos: ``k % 4`` quarter
    turns, then a left-right flip when ``k >= 4``. ``inverse=True`` undoes it."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < 8:
        raise ValueError(f"k must be an int in 0..7 (4 rotations x 2 flips), got {k!r}")
    if inverse:  # the flip first, then the turns back
        x = x.flip(-1) if k >= 4 else x
        return torch.rot90(x, -(k % 4), dims=(-2, -1))
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


@torch.no_grad()
def apply_fully_convolutional(
    net: nn.Module, x: torch.Tensor, multiple: int, self_ensemble: bool = False
) -> torch.Tensor:
    """Run ``net`` in eval mode on ``1 x C x H x W`` of any size: pad to a multiple of
    ``multiple`` (reflecting), run on the network's device, crop back, restore its mode.

    ``self_ensemble=True``: the mean of the outputs for the 8 rotations and flips of ``x``, each
    turned back (the geometric self-ensemble of Timofte et al. 2016 and Lim et al. 2017): 8
    times the work; the result is equivariant to those symmetries even where ``net`` is not,
    and the 8 errors partly cancel."""
    device = next(net.parameters()).device

    def run(t: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(t.to(device), multiple)
        return net(padded)[..., :h, :w].cpu()

    with evaluating(net):
        if not self_ensemble:
            out = run(x)
        else:
            # the mean over k of  symmetry_k^-1( net( symmetry_k(x) ) )
            outs = [symmetry(run(symmetry(x, k)), k, inverse=True) for k in range(8)]
            out = torch.stack(outs).mean(0)
    return out


def mean_log_error(per_patch: torch.Tensor) -> torch.Tensor:
    """``mean_i log(e_i + 1e-5)`` of the squared errors ``e_i`` of ``N`` patches (shape ``N``):
    the mean PSNR of the patches, up to a factor ``-10 / ln 10``. As a loss it counts a gain of
    0.1 dB the same on every patch, where the plain mean listens most to the patches with the
    largest errors (the noisiest, the most textured). The 1e-5 (an error of 0.8 / 255) keeps a
    perfect patch finite."""
    if not isinstance(per_patch, torch.Tensor):
        raise TypeError(f"per_patch must be a tensor, got {type(per_patch).__name__}")
    if per_patch.ndim != 1:
        raise ValueError(f"per_patch must be one error per patch (shape N), got {per_patch.shape}")
    # mean_i log(e_i + eps)
    return torch.log(per_patch + 1e-5).mean()


def fit(model: nn.Module, loss_fn: Callable[..., torch.Tensor], data, recipe, *, desc: str,
        device="cpu", progress: bool = True, **train_kwargs):  # fmt: skip
    """Train a restoration network the same way for every task: Adam with ``recipe.lr``,
    annealed to 0 along a half cosine over ``recipe.steps``, minibatches of
    ``recipe.batch_size`` from the tensors ``data``, ``loss_fn(*batch) -> loss``, gradients
    clipped to ``recipe.clip_grad_norm`` (if the recipe has one), through
    ``course_lib.train.train``. Returns ``(model in eval mode, history)``."""
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    # lr_t = lr * (1 + cos(pi t / T)) / 2
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, recipe.steps) / recipe.steps))
    )

    def step(batch):
        loss = loss_fn(*batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    model, history = train(model, step, data, batch_size=recipe.batch_size, steps=recipe.steps,
                           optimizers={"adam": opt, "schedule": sched}, device=device,
                           clip_grad_norm=getattr(recipe, "clip_grad_norm", None),
                           seed=recipe.seed, progress=progress, desc=desc,
                           **train_kwargs)  # fmt: skip
    return model.eval(), history
