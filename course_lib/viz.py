"""Pictures: image grids, training curves and the interactive widgets of the notebooks.

Widget callbacks are plain functions (tested without a browser); the widgets only wire them up.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib import metrics
from course_lib.restoration.degrade import add_gaussian_noise
from course_lib.scratch import classic_kernels, filter2d


def _to_numpy_images(images) -> list[np.ndarray]:
    """Accept a tensor/array ``N x C x H x W`` (C = 1 or 3), ``N x H x W``, ``N x H x W x 3``,
    a single image ``H x W`` / ``H x W x 3``, or a list of those; return ``H x W (x 3)`` arrays."""
    if hasattr(images, "detach"):  # torch tensor
        images = images.detach().cpu().numpy()
    if isinstance(images, np.ndarray):
        if images.ndim == 2 or (
            images.ndim == 3 and images.shape[-1] == 3 and images.shape[0] != 3
        ):
            images = images[None]
        if images.ndim == 4 and images.shape[1] in (1, 3):
            images = images.transpose(0, 2, 3, 1)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
            raise ValueError(
                "images must be N x C x H x W with C = 1 or 3, N x H x W, N x H x W x 3, "
                f"or a list of H x W (x 3) images; got an array of shape {images.shape}"
            )
        return list(images)
    if isinstance(images, Sequence) and len(images) > 0:
        out = []
        for im in images:
            out.extend(_to_numpy_images(im))
        return out
    raise TypeError(
        f"images must be an array, a tensor or a non-empty list, got {type(images).__name__}"
    )


def show_images(
    images,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    size: float = 1.6,
    suptitle: str | None = None,
):
    """Show images in a grid and return the matplotlib figure.

    Args:
        images: ``N x C x H x W`` (C = 1 or 3) tensor or array, ``N x H x W``, ``N x H x W x 3``,
            or a list of ``H x W`` / ``H x W x 3`` images of any sizes.
        titles: one short title per image (optional).
        ncols: images per row.  cmap: colour map for grey images.
        vmin, vmax: grey range; by default 0..1 for images inside [0, 1], else each
            image's own min..max (e.g. filter responses with negative values).
        size: inches per image.  suptitle: a title over the whole grid.
    """
    ims = _to_numpy_images(images)
    if titles is not None and len(titles) != len(ims):
        raise ValueError(f"got {len(titles)} titles for {len(ims)} images")
    if not (isinstance(ncols, int) and ncols >= 1):
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(ncols, len(ims))
    nrows = -(-len(ims) // ncols)
    extra = 0.3 if titles is not None else 0.0
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size * ncols, (size + extra) * nrows + (0.4 if suptitle else 0)),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, im) in enumerate(zip(axes.ravel(), ims, strict=False)):
        lo, hi = vmin, vmax
        if lo is None and hi is None and im.min() >= 0 and im.max() <= 1:
            lo, hi = 0.0, 1.0
        if im.ndim == 3:
            ax.imshow(np.clip(im, 0, 1) if (lo, hi) == (0.0, 1.0) else im)
        else:
            ax.imshow(im, cmap=cmap, vmin=lo, vmax=hi)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    xlabel: str = "step",
    ylabel: str = "loss",
    logy: bool = False,
    title: str | None = None,
    ax=None,
):
    """Plot named curves (e.g. ``{"train": losses, "test": test_losses}``) on one axis."""
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError("curves must be a non-empty dict: name -> sequence of numbers")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(np.asarray(values, dtype=float), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


# ----------------------------------------------------------------------------- widgets


def apply_kernel(image: np.ndarray, name: str, repeat: int = 1) -> np.ndarray:
    """The kernel playground's callback: filter a grey photo ``repeat`` times with one of
    ``scratch.classic_kernels()`` (same-size output). Returns the filtered ``H x W`` image."""
    kernels = classic_kernels()
    if name not in kernels:
        raise ValueError(f"unknown kernel {name!r}; choose one of {', '.join(kernels)}")
    if not (isinstance(repeat, int) and repeat >= 1):
        raise ValueError(f"repeat must be an int >= 1, got {repeat!r}")
    out = image
    for _ in range(repeat):
        out = filter2d(out, kernels[name])
    return out


def _playground_png(image: np.ndarray, kernel: str, repeat: int, out: np.ndarray) -> bytes:
    """Photo, kernel and result side by side, rendered to PNG bytes (no pyplot, no display)."""
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3, width_ratios=[4, 1.5, 4])
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("photo")
    k = classic_kernels()[kernel]
    axes[1].imshow(k, cmap="coolwarm", vmin=-np.abs(k).max(), vmax=np.abs(k).max())
    if k.shape[0] <= 3:
        for (i, j), v in np.ndenumerate(k):
            axes[1].text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=8)
    axes[1].set_title(kernel)
    axes[2].imshow(out, cmap="gray")
    axes[2].set_title(f"result (x{repeat}), range {out.min():.2f}..{out.max():.2f}")
    for ax in axes:
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def kernel_playground(image: np.ndarray):
    """Widgets to pick a classic kernel and how often to apply it; shows the photo, the kernel
    and the result. The widget's ``.result`` holds the last filtered image, its ``.kernel`` and
    ``.repeat`` are the two controls.

    The picture is an ``ipywidgets.Image`` holding a PNG (not an Output widget), so that the
    notebook also runs headless (nbconvert, nbval) without waiting on widget messages.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be one grey photo H x W, got shape {image.shape}")
    kernel = widgets.Dropdown(
        options=list(classic_kernels()), value="sobel_x", description="kernel"
    )
    repeat = widgets.IntSlider(value=1, min=1, max=5, description="repeat")
    picture = widgets.Image(format="png")
    box = widgets.VBox([widgets.HBox([kernel, repeat]), picture])
    box.kernel, box.repeat, box.picture = kernel, repeat, picture

    def update(_change=None) -> None:
        box.result = apply_kernel(image, kernel.value, repeat.value)
        picture.value = _playground_png(image, kernel.value, repeat.value, box.result)

    kernel.observe(update, names="value")
    repeat.observe(update, names="value")
    update()
    return box


# ----------------------------------------------------------------------------- latent traversal


def decode_latent(decode: Callable[[torch.Tensor], torch.Tensor], z) -> np.ndarray:
    """The latent traversal's callback: decode one code ``z`` (``D`` numbers) with
    ``decode`` (``1 x D -> 1 x 1 x H x W`` in [0, 1], e.g. ``lambda z: model.decode(z).sigmoid()``)
    and return the ``H x W`` image as a NumPy array, without gradients."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(1, -1)
    with torch.no_grad():
        image = decode(z)
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 1):
        raise ValueError(
            "decode must return one grey image, a tensor 1 x 1 x H x W, got "
            f"{getattr(image, 'shape', type(image).__name__)}"
        )
    return image[0, 0].detach().float().cpu().numpy()


def _grey_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    plt.imsave(buffer, np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1, format="png")
    return buffer.getvalue()


def latent_traversal(
    decode: Callable[[torch.Tensor], torch.Tensor],
    z_dim: int,
    dims: Sequence[int] | None = None,
    start=None,
    limit: float = 3.0,
):
    """Sliders on latent dimensions and the decoded image, updated as they move.

    Args:
        decode: ``1 x z_dim -> 1 x 1 x H x W`` in [0, 1] (see ``decode_latent``).
        z_dim: the size of the code.  dims: the dimensions that get a slider (default: the
            first six).  start: the code to start from (default zeros, the prior's mean).
        limit: each slider runs over ``[-limit, limit]`` (prior standard deviations).

    The returned box has ``.sliders`` (one per dimension in ``dims``), ``.picture`` (an
    ``ipywidgets.Image`` with the PNG, so that a headless run never waits on widget messages),
    ``.z`` (the current code, NumPy) and ``.result`` (the decoded ``H x W`` image).
    """
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
        raise ValueError(f"z_dim must be a positive int, got {z_dim!r}")
    dims = list(range(min(6, z_dim))) if dims is None else [int(d) for d in dims]
    if not dims or any(d < 0 or d >= z_dim for d in dims):
        raise ValueError(f"dims must be latent dimensions in 0..{z_dim - 1}, got {dims}")
    z0 = np.zeros(z_dim, np.float32) if start is None else np.asarray(start, np.float32).ravel()
    if z0.shape != (z_dim,):
        raise ValueError(f"start must hold z_dim = {z_dim} numbers, got shape {z0.shape}")
    sliders = [
        widgets.FloatSlider(
            value=float(np.clip(z0[d], -limit, limit)), min=-limit, max=limit, step=0.1,
            description=f"z[{d}]", continuous_update=True,
        )
        for d in dims
    ]  # fmt: skip
    picture = widgets.Image(format="png", width=168, height=168)
    box = widgets.HBox([widgets.VBox(sliders), picture])
    box.sliders, box.picture = sliders, picture

    def update(_change=None) -> None:
        z = z0.copy()
        for d, slider in zip(dims, sliders, strict=True):
            z[d] = slider.value
        box.z = z
        box.result = decode_latent(decode, z)
        picture.value = _grey_png(box.result)

    for slider in sliders:
        slider.observe(update, names="value")
    update()
    return box


# ----------------------------------------------------------------------------- noise slider


def denoise_views(clean: np.ndarray, sigma: float, restorers: Mapping[str, Callable], seed=0):
    """The noise slider's callback: add clipped Gaussian noise of ``sigma`` (out of 255, seeded)
    to the grey photo ``clean`` and restore it with each of ``restorers`` (name -> function of
    the noisy photo). Returns ``{"noisy": image, name: image, ...}`` and ``{name: PSNR}``."""
    clean = np.asarray(clean, np.float32)
    if clean.ndim != 2:
        raise ValueError(f"clean must be one grey photo H x W, got shape {clean.shape}")
    noisy = add_gaussian_noise(clean, sigma, generator=seed)
    images = {"noisy": noisy, **{name: np.asarray(f(noisy)) for name, f in restorers.items()}}
    return images, {name: metrics.psnr(image, clean) for name, image in images.items()}


def _views_png(images: Mapping[str, np.ndarray], scores: Mapping[str, float], sigma) -> bytes:
    fig = Figure(figsize=(3.2 * len(images), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for ax, (name, image) in zip(axes, images.items(), strict=True):
        ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{name}: {scores[name]:.2f} dB")
        ax.axis("off")
    fig.suptitle(f"sigma = {sigma}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    return buffer.getvalue()


def noise_slider(clean: np.ndarray, restorers: Mapping[str, Callable], sigma: int = 25,
                 max_sigma: int = 75):  # fmt: skip
    """A slider on the noise level; shows the noisy crop and each restorer's result side by
    side, with its PSNR. The box has ``.slider``, ``.picture`` (an ``ipywidgets.Image``: runs
    headless), ``.images`` and ``.scores`` (the last ``denoise_views`` result)."""
    slider = widgets.IntSlider(value=sigma, min=0, max=max_sigma, step=5, description="sigma",
                               continuous_update=False)  # fmt: skip
    picture = widgets.Image(format="png")
    box = widgets.VBox([slider, picture])
    box.slider, box.picture = slider, picture

    def update(_change=None) -> None:
        box.images, box.scores = denoise_views(clean, slider.value, restorers)
        picture.value = _views_png(box.images, box.scores, slider.value)

    slider.observe(update, names="value")
    update()
    return box
