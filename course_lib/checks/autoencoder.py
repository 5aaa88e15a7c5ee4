"""Checks of exercise 04 (autoencoders): ``check_conv_transpose2d`` (NumPy, on the core's
case runner) and ``check_reconstruction_loss`` (PyTorch, a table on ``check_torch_function``).
The references are the library's: ``scratch.conv_transpose2d`` and
``generative.autoencoder.reconstruction_loss``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib import scratch
from course_lib.checks.core import _Case, _off_by_one_words, _run, _shape, graded_without
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.generative.autoencoder import reconstruction_loss as _reconstruction_reference

# ----------------------------------------------------------------------------- conv_transpose2d


def _transpose_cases(rng: np.random.Generator) -> list[_Case]:
    # (label, N, C_in, C_out, H, W, K, stride, padding, tags)
    specs = [
        ("one 3×3 image, one channel, a 2×2 kernel, stride 1", 1, 1, 1, 3, 3, 2, 1, 0, ()),
        ("stride 2 with a 2×2 kernel: the copies tile the output", 2, 1, 1, 3, 4, 2, 2, 0,
         ("stride",)),
        ("stride 2 with a 3×3 kernel: the copies overlap on every other row", 1, 1, 1, 3, 3, 3,
         2, 0, ("stride", "overlap")),
        ("the autoencoder's layer: kernel 4, stride 2, padding 1 (doubles the size)", 2, 3, 2,
         4, 4, 4, 2, 1, ("stride", "padding", "overlap")),
        ("3 input channels, 2 output channels, non-square image", 2, 3, 2, 3, 5, 3, 1, 0, ()),
        ("stride 3 with a 2×2 kernel: gaps between the copies", 1, 2, 3, 2, 3, 2, 3, 0,
         ("stride",)),
        ("padding 2 crops two pixels from every border", 1, 2, 2, 4, 3, 5, 2, 2,
         ("stride", "padding", "overlap")),
    ]  # fmt: skip
    cases = []
    for label, n, c_in, c_out, h, w_, k, s, p, tags in specs:
        x = rng.standard_normal((n, c_in, h, w_))
        w = rng.standard_normal((c_in, c_out, k, k))
        desc = (
            f"{label}: x of shape {_shape(x.shape)}, w of shape {_shape(w.shape)}, "
            f"stride={s}, padding={p}"
        )
        expected = scratch.conv_transpose2d(x, w, stride=s, padding=p)
        info = dict(n=n, c_in=c_in, c_out=c_out, h=h, w=w_, k=k, s=s, p=p)
        cases.append(_Case(desc, (x, w, s, p), expected, frozenset(tags), info))
    return cases


def _transpose_shape_hint(case: _Case, got: tuple) -> str | None:
    i = case.info
    n, c_in, c_out, k, s, p = i["n"], i["c_in"], i["c_out"], i["k"], i["s"], i["p"]
    if len(got) != 4:
        return f"return a 4-D array N × C_out × OH × OW (here {_shape(case.expected.shape)})."
    if got[0] != n:
        return f"the first axis is the batch: one output per input image, N = {n}."
    if got[1] != c_out:
        if got[1] == c_in:
            return (
                f"a transposed convolution's weights are C_in × C_out × K × K, input channels "
                f"FIRST (the opposite of conv2d's): the output has C_out = w.shape[1] = {c_out} "
                f"channels. Sum over the input channels c."
            )
        return f"the second axis has one entry per output channel, C_out = w.shape[1] = {c_out}."
    for axis, (size, name) in enumerate(((i["h"], "OH"), (i["w"], "OW"))):
        g, o = got[2 + axis], case.expected.shape[2 + axis]
        if g == o:
            continue
        side = "H" if axis == 0 else "W"
        formula = f"({side} − 1)·s − 2p + K = ({size} − 1)·{s} − 2·{p} + {k}"
        conv_size = scratch.conv_output_size(size, k, s, p) if size + 2 * p >= k else None
        if g == conv_size:
            return (
                f"that is the size of a *convolution*'s output, which shrinks the image; a "
                f"transposed convolution enlarges it: {name} = {formula} = {o}."
            )
        if p and g == o + 2 * p:
            return (
                f"you did not crop the padding: after spreading the copies, cut p = {p} "
                f"pixel(s) from every border, y_full[:, :, p : y_full.shape[2] - p, "
                f"p : y_full.shape[3] - p]; {name} = {formula} = {o}."
            )
        if p and g == o + p:
            return f"crop p = {p} pixel(s) from *both* sides of each axis, not from one."
        if s > 1 and g == size * s:
            return (
                f"the copies are s pixels apart, and the last one still needs its whole kernel: "
                f"{name} = {formula} = {o}, not {side}·s."
            )
        if abs(g - o) == 1:
            return _off_by_one_words(name, formula, o)
        return f"the output size is {name} = {formula} = {o}."
    return None


def _overwritten(x: np.ndarray, w: np.ndarray, s: int, p: int) -> np.ndarray:
    """Copies written with '=' instead of '+=': where they overlap, the last one wins."""
    n, _, h, wd = x.shape
    k = w.shape[2]
    full = np.zeros((n, w.shape[1], (h - 1) * s + k, (wd - 1) * s + k))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * s : i * s + k, j * s : j * s + k] = np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w
            )
    return full[:, :, p : full.shape[2] - p, p : full.shape[3] - p]


def _transpose_candidates(case: _Case):
    x, w, s, p = case.args
    oh, ow = case.expected.shape[2:]
    full = scratch.conv_transpose2d(x, w, stride=s)
    return [
        (
            "you wrote each copy with '=' instead of adding it, '+=': where copies overlap, "
            "the transposed convolution SUMS them (this is what makes the checkerboard).",
            lambda: _overwritten(x, w, s, p),
        ),
        (
            "the kernel is flipped: no flip here, copy w[c, o, m, k] to output pixel "
            "(i·s + m, j·s + k) for input pixel (i, j).",
            lambda: scratch.conv_transpose2d(x, w[:, :, ::-1, ::-1].copy(), stride=s, padding=p),
        ),
        (
            "you read the weights as C_out × C_in (conv2d's layout): a transposed convolution "
            "stores them C_in × C_out × K × K, so input channel c, output channel o is w[c, o].",
            lambda: (
                scratch.conv_transpose2d(x, w.swapaxes(0, 1).copy(), stride=s, padding=p)
                if w.shape[0] == w.shape[1]
                else None
            ),
        ),
        (
            f"you cropped 2p = {2 * p} pixels from the bottom and right only: crop p from each "
            f"side, y_full[:, :, p : y_full.shape[2] - p, p : y_full.shape[3] - p].",
            lambda: full[:, :, :oh, :ow] if p else None,
        ),
        (
            f"you cropped 2p = {2 * p} pixels from the top and left only: crop p from each side, "
            f"y_full[:, :, p : y_full.shape[2] - p, p : y_full.shape[3] - p].",
            lambda: full[:, :, 2 * p : 2 * p + oh, 2 * p : 2 * p + ow] if p else None,
        ),
        (
            "the copies sit s pixels apart: input pixel (i, j) spreads onto output rows "
            "i·s … i·s + K − 1 and columns j·s … j·s + K − 1.",
            lambda: (
                scratch.conv_transpose2d(x, w, stride=1)[:, :, p : p + oh, p : p + ow]
                if s > 1
                else None
            ),
        ),
    ]


_TRANSPOSE_TAGS = {
    "padding": (
        "it only fails with padding > 0: spread the copies onto the full output "
        "((H − 1)·s + K rows), then crop p pixels from every border."
    ),
    "overlap": (
        "it only fails where the copies overlap (kernel larger than the stride): overlapping "
        "copies add up, +=."
    ),
    "stride": (
        "it only fails with stride > 1: input pixel (i, j) spreads onto output rows i·s … i·s + "
        "K − 1 and columns j·s … j·s + K − 1."
    ),
}


def check_conv_transpose2d(conv_transpose2d: Callable, seed: int = 0) -> None:
    """Check ``conv_transpose2d(x, w, stride, padding)`` on random cases: ``x`` is
    ``N x C_in x H x W``, ``w`` is ``C_in x C_out x K x K``, the result
    ``N x C_out x OH x OW`` with ``OH = (H - 1)·stride - 2·padding + K``.

    Compares with ``course_lib.scratch.conv_transpose2d`` (itself tested against
    ``torch.nn.functional.conv_transpose2d``); names the classic mistakes (copies overwritten
    instead of added, a flipped kernel, conv2d's weight layout, padding not or badly cropped).
    """
    # the course's own conv_transpose2d is switched off while it runs: calling it is no answer
    conv_transpose2d = graded_without(conv_transpose2d, "scratch.conv_transpose2d")
    cases = _transpose_cases(np.random.default_rng(seed))
    failure = _run(
        conv_transpose2d,
        "conv_transpose2d",
        cases,
        _transpose_shape_hint,
        _transpose_candidates,
        _TRANSPOSE_TAGS,
    )
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)


# ----------------------------------------------------------------------------- reconstruction loss


def _loss_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def logits(n, scale=2.0):
        return scale * torch.randn(n, 1, 28, 28, generator=gen)

    def binary(n):
        return (torch.rand(n, 1, 28, 28, generator=gen) < 0.2).float()

    large = logits(3, 60.0)  # confident, and often wrong: log σ(l) underflows without care
    return [
        TorchCase("4 digits with 0/1 pixels", (logits(4), binary(4)), grad=("logits",)),
        TorchCase("one digit (N = 1)", (logits(1), binary(1)), grad=("logits",),
                  tags={"single"}),
        TorchCase("8 digits with intensities in [0, 1], not only 0 and 1",
                  (logits(8), torch.rand(8, 1, 28, 28, generator=gen)), grad=("logits",)),
        TorchCase("confident logits, about ±100", (large, binary(3)), grad=("logits",),
                  tags={"large"}),
    ]  # fmt: skip


def _bce_per_pixel(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(z, x, reduction="none")


_UNDERFLOW_HINT = (
    "log(sigmoid(l)) is log(0) = −inf once sigmoid(l) rounds to 0 (l below about −88 in "
    "float32), and log(1 − sigmoid(l)) likewise for large positive l. Compute the logs from the "
    "logits directly: log σ(l) = F.logsigmoid(l), log(1 − σ(l)) = F.logsigmoid(−l) (or use "
    "F.binary_cross_entropy_with_logits, which does this)."
)

_LOSS_MISTAKES = [
    (
        "you averaged over the pixels too (F.binary_cross_entropy's default reduction='mean'): "
        "sum over the 784 pixels of each image, then average over the N images, so that the "
        "loss is in nats per image (reduction='sum', then divide by N).",
        lambda z, x: _bce_per_pixel(z, x).mean(),
    ),
    (
        "you summed over the batch too: divide the sum by N, the number of images, so that the "
        "loss does not grow with the batch size.",
        lambda z, x: _bce_per_pixel(z, x).sum() if len(z) > 1 else None,
    ),
    (
        "the minus sign is missing: the loss is −Σ [x log p + (1 − x) log(1 − p)], a positive "
        "number.",
        lambda z, x: -_reconstruction_reference(z, x),
    ),
    (
        "the decoder gives logits, not probabilities: you applied the sigmoid twice (once "
        "yourself, once inside binary_cross_entropy_with_logits). Give it the logits.",
        lambda z, x: _bce_per_pixel(torch.sigmoid(z), x).flatten(1).sum(1).mean(),
    ),
    (
        "x and the logits are swapped: the first argument of the loss is the network's output "
        "(the logits), the second the target x.",
        lambda z, x: (
            F.binary_cross_entropy_with_logits(x, torch.sigmoid(z), reduction="sum") / len(z)
        ),
    ),
    (
        "that is the squared error, not the binary cross-entropy −Σ [x log p + (1 − x) "
        "log(1 − p)] with p = sigmoid(logits).",
        lambda z, x: (torch.sigmoid(z) - x).pow(2).flatten(1).sum(1).mean(),
    ),
]


def _loss_shape_hint(case: TorchCase, shape: tuple) -> str | None:
    n = len(case.args[0])
    if shape == (n,):
        return "you returned one loss per image: average them over the batch (.mean())."
    if shape == tuple(case.args[0].shape):
        return "you returned the loss of every pixel: sum over the pixels, average over images."
    return "return one number: the loss summed over the pixels, averaged over the images."


def check_reconstruction_loss(reconstruction_loss: Callable, seed: int = 0) -> None:
    """Check ``reconstruction_loss(logits, x)``: the binary cross-entropy between the decoder's
    ``logits`` (``N x 1 x 28 x 28``) and the target intensities ``x`` in [0, 1], summed over
    the pixels and averaged over the images; its value and its gradient with respect to
    ``logits`` (which should be ``(sigmoid(logits) − x) / N``), also for confident logits."""
    # the course's own reconstruction_loss is switched off while it runs: calling it is no answer
    reconstruction_loss = graded_without(
        reconstruction_loss, "generative.autoencoder.reconstruction_loss"
    )
    check_torch_function(
        reconstruction_loss,
        "reconstruction_loss",
        _loss_cases(seed),
        _reconstruction_reference,
        _LOSS_MISTAKES,
        arg_names=("logits", "x"),
        output="loss",
        shape_hint=_loss_shape_hint,
        tag_hints={"large": "it only fails on large logits. " + _UNDERFLOW_HINT},
        nonfinite_hint=lambda case: (
            _UNDERFLOW_HINT
            if "large" in case.tags
            else "NaN or inf on ordinary logits: is there a log of 0, or a division by 0?"
        ),
        gradient_formula="It should be (sigmoid(logits) − x) / N.",
    )
