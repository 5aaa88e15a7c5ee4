"""How good is a classifier, and how good is a generator?

Classifiers: ``accuracy``, ``confusion_matrix``, ``precision_recall_f1``.

Images: ``psnr`` (peak signal-to-noise ratio, in dB) and ``ssim`` (structural similarity,
scikit-image's, with the settings of Wang et al. 2004).

Generators of digits, judged by the course's trained classifier (``course_lib.judge``):
``frechet_distance`` (between two sets of images, in the judge's 512-d feature space) and
``generator_report`` (accuracy on requested classes, class coverage, entropy, confidence, and
the Fréchet distance to the held-out digits).
"""

from __future__ import annotations

import numpy as np
import skimage.metrics
import torch

from course_lib.data import check_digit_images
from course_lib.judge import as_judge, judge_features, test_features
from course_lib.models import DigitCNN


def _labels(a, name: str) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    return a.astype(np.int64)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty")
    return t, p


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the true label: ``mean(y_pred == y_true)``."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """``K x K`` counts: row = true class, column = predicted class.

    ``n_classes`` defaults to ``max(label) + 1``.
    """
    t, p = _pair(y_true, y_pred)
    if t.min() < 0 or p.min() < 0:
        raise ValueError("class indices must be >= 0")
    k = int(max(t.max(), p.max()) + 1) if n_classes is None else n_classes
    if max(t.max(), p.max()) >= k:
        raise ValueError(f"labels go up to {max(t.max(), p.max())} but n_classes={k}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def precision_recall_f1(y_true, y_pred, n_classes: int | None = None) -> dict[str, np.ndarray]:
    """Per-class scores from the confusion matrix ``C``:

        precision_k = C[k, k] / sum_i C[i, k]     (of those predicted k, how many are k)
        recall_k    = C[k, k] / sum_j C[k, j]     (of the true k, how many were found)
        f1_k        = 2 precision_k recall_k / (precision_k + recall_k)

    A score whose denominator is 0 is 0 (as scikit-learn's ``zero_division=0``).

    Returns:
        ``{"precision", "recall", "f1", "support"}``, each an array of length ``K``.
    """
    c = confusion_matrix(y_true, y_pred, n_classes).astype(float)
    tp = np.diag(c)
    predicted, actual = c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(int)}


# ----------------------------------------------------------------------------- images


def _image_pair(estimate, target, data_range: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both as float64 batches ``N x ...``; also whether each image has channels last."""
    a, b = (np.asarray(torch.as_tensor(t).detach().cpu(), np.float64) for t in (estimate, target))
    if a.shape != b.shape:
        raise ValueError(f"estimate and target must have the same shape, got {a.shape}, {b.shape}")
    if a.ndim < 2 or a.ndim > 4:
        raise ValueError(
            "expected an image H x W or H x W x 3, or a batch N x H x W or N x C x H x W, "
            f"got shape {a.shape}"
        )
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    span = float(b.max() - b.min()) if b.size else 0.0
    if not span <= data_range * (1 + 1e-6):  # also catches NaN
        raise ValueError(
            f"the target's values span {span:.4g}, more than data_range = {data_range:g}: "
            "images in 0-255 need data_range=255 (or divide them by 255)"
        )
    if a.ndim == 4:  # N x C x H x W -> N x H x W x C
        return a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1), True
    if a.ndim == 3 and a.shape[-1] in (3, 4):  # one colour image H x W x C
        return a[None], b[None], True
    if a.ndim == 3 and a.shape[0] == 3:
        raise ValueError(
            f"shape {a.shape} is ambiguous: for one colour image pass H x W x 3 (or a batch "
            "1 x 3 x H x W); for 3 grey images pass 3 x 1 x H x W"
        )
    return (a, b, False) if a.ndim == 3 else (a[None], b[None], False)


def psnr(estimate, target, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, of each image, then
    averaged over the images (the literature's convention for a test set).

    Args:
        estimate, target: arrays or tensors of the same shape: one image ``H x W`` or
            ``H x W x 3``, or a batch ``N x H x W`` or ``N x C x H x W`` (``3 x H x W`` is
            refused: one colour image or three grey ones? Say which with four dimensions).
        data_range: the span of the pixel values (1.0 for images in [0, 1]).
    """
    a, b, _ = _image_pair(estimate, target, data_range)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    # PSNR = 10 log10(R^2 / MSE); identical images give +inf
    with np.errstate(divide="ignore"):
        values = 10 * np.log10(data_range**2 / mse)
    return float(values.mean())


def ssim(estimate, target, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004) of each image, then averaged over the images.

    ``skimage.metrics.structural_similarity`` with the paper's settings: an 11x11 Gaussian
    window of sigma 1.5 and population covariances, and the given ``data_range`` (which sets
    the constants ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``; scikit-image cannot guess it for
    float images). Colour images: the mean of the per-channel SSIMs.

    Args:
        estimate, target: as for ``psnr``; each image at least 11 x 11 pixels (the window).
        data_range: the span of the pixel values (1.0 for images in [0, 1]).
    """
    a, b, channels = _image_pair(estimate, target, data_range)
    if min(a.shape[1:3]) < 11:  # the Gaussian window's size
        raise ValueError(f"ssim needs images of at least 11 x 11 pixels, got {a.shape[1:3]}")
    values = [
        skimage.metrics.structural_similarity(
            x,
            y,
            data_range=data_range,
            channel_axis=-1 if channels else None,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )  # fmt: skip
        for x, y in zip(a, b, strict=True)
    ]
    return float(np.mean(values))


def colourfulness(image) -> float:
    """Hasler and Süsstrunk's (2003) colourfulness of one RGB image ``H x W x 3`` (or
    ``3 x H x W`` tensor) in [0, 1]: 0 for a grey image, larger for more vivid colours.

    With the opponent channels ``rg = R - G`` and ``yb = (R + G) / 2 - B``:
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` (on the [0, 1]
    scale; the paper's figures, on 0..255, are 255 times larger)."""
    a = np.asarray(torch.as_tensor(image).detach().cpu(), np.float64)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)  # 3 x H x W -> H x W x 3
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected one RGB image H x W x 3 (or 3 x H x W), got shape {a.shape}")
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    rg, yb = r - g, (r + g) / 2 - b
    # M = sigma_rgyb + 0.3 mu_rgyb
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


# ----------------------------------------------------------------------------- generators


def frechet_distance_gaussians(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2))

    computed in float64 with symmetric eigendecompositions (stable for singular covariances).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(
            f"expected means (D,) and covariances (D, D), got {mu1.shape}, {s1.shape}, "
            f"{mu2.shape}, {s2.shape}"
        )
    vals, vecs = np.linalg.eigh(s1)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    d2 = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_root
    return float(max(d2, 0.0))


def frechet_distance_features(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors ``N x D``."""
    fa, fb = (np.asarray(torch.as_tensor(f).cpu(), np.float64) for f in (features_a, features_b))
    for name, f in (("features_a", fa), ("features_b", fb)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{name} must be N x D with N >= 2, got shape {f.shape}")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature sizes differ: {fa.shape[1]} and {fb.shape[1]}")
    return frechet_distance_gaussians(
        fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False)
    )


def _check_images(images, name: str) -> torch.Tensor:
    check_digit_images(images, name, min_count=2)
    lo, hi = images.min().item(), images.max().item()
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{name} must have values in [0, 1], got {lo:.3g}..{hi:.3g} "
            "(a generator with tanh output gives [-1, 1]: use (x + 1) / 2)"
        )
    return images.float().clamp(0, 1)


def frechet_distance(
    images_a: torch.Tensor, images_b: torch.Tensor, judge: DigitCNN | None = None
) -> float:
    """Fréchet distance between two sets of digit images in the judge's feature space
    (its 512 penultimate-layer activations). Lower is more alike; about 6-10 between the
    course's training and test digits. Use a few hundred images or more in each set: with
    few images the covariance estimates, and so the distance, are biased upwards.

    Args:
        images_a, images_b: ``N x 1 x 28 x 28`` tensors in [0, 1] (sizes may differ).
        judge: a ``DigitCNN`` whose features to use instead of the shipped judge's.
    """
    a = _check_images(images_a, "images_a")
    b = _check_images(images_b, "images_b")
    return frechet_distance_features(judge_features(a, judge=judge), judge_features(b, judge=judge))


def _draw(model, n: int, generator: torch.Generator | None):
    """``n`` samples of a generator (``n // 10`` per class when it is conditional) and the
    labels it was asked for (None for an unconditional one)."""
    if not callable(getattr(model, "sample", None)):
        raise TypeError(
            "generator_report needs N x 1 x 28 x 28 images or a generator with a "
            f"sample(n, labels=None, generator=None) method, got {type(model).__name__}"
        )
    if not (isinstance(n, int) and n >= 10):
        raise ValueError(f"n must be an int >= 10, got {n!r}")
    if getattr(model, "conditional", False):
        labels = torch.arange(10).repeat_interleave(n // 10)
        return model.sample(len(labels), labels=labels, generator=generator), labels
    return model.sample(n, generator=generator), None


def generator_report(
    images,
    requested_labels=None,
    n: int = 1000,
    generator: torch.Generator | None = None,
    judge: DigitCNN | None = None,
) -> dict[str, float]:
    """What the judge thinks of a batch of generated digits, or of a generator.

    Args:
        images: ``N x 1 x 28 x 28`` in [0, 1], or a generator with
            ``sample(n, labels=None, generator=None)`` (every generator of the course): then
            ``n`` samples are drawn (``n // 10`` per class, and the accuracy on them reported,
            when it is conditional), repeatably with ``generator``.
        requested_labels: for images from a conditional generator, the class asked for per
            image (``N``).
        judge: a ``DigitCNN`` to judge with instead of the shipped judge (e.g. one trained
            with another seed: ``benchmarks/bench_judges.py``).

    Returns:
        dict with ``n``; ``accuracy`` (judge agrees with the requested class; only with
        requested labels); ``coverage`` (number of classes with >= 2% of the samples, out
        of 10); ``entropy`` (of the predicted-class histogram, in nats: ``log 10 = 2.303`` is
        perfectly balanced); ``confidence`` (mean top probability); ``fid_test`` (Fréchet
        distance to the 1,000 held-out digits); ``class_histogram`` (fraction per class).
    """
    if not isinstance(images, torch.Tensor) and hasattr(images, "sample"):
        if requested_labels is not None:
            raise ValueError(
                "requested_labels go with a tensor of images; a conditional generator is "
                "asked for n // 10 digits of each class by generator_report itself"
            )
        images, requested_labels = _draw(images, n, generator)
    x = _check_images(images, "images")
    judge = as_judge(judge)
    with torch.no_grad():
        feats = judge_features(x, judge=judge)
        probs = torch.softmax(judge.head(feats), dim=1)
    pred = probs.argmax(1)
    hist = torch.bincount(pred, minlength=10).double() / len(pred)
    nz = hist[hist > 0]
    report = {
        "n": len(x),
        "coverage": int((hist >= 0.02).sum()),
        "entropy": float(-(nz * nz.log()).sum()) + 0.0,  # + 0.0 turns -0.0 into 0.0
        "confidence": float(probs.max(1).values.mean()),
        "fid_test": frechet_distance_features(feats, test_features(judge)),
        "class_histogram": [round(float(h), 4) for h in hist],
    }
    if requested_labels is not None:
        req = torch.as_tensor(_labels(requested_labels, "requested_labels"))
        if len(req) != len(x):
            raise ValueError(f"requested_labels has {len(req)} entries for {len(x)} images")
        report["accuracy"] = float((pred == req).double().mean())
    return report
