"""Checks of exercise 10 (image-to-image translation, pix2pix): ``check_receptive_field`` (a
plain function of the layers, on the NumPy check), ``check_pix2pix_loss`` (a table of cases and
classic mistakes on ``check_torch_function``) and ``check_unet_forward`` (the learner's forward
pass through the modules of a ``course_lib.models.UNet``, against the network's own); and
``library_unet_forward_disabled``, which switches ``UNet.forward`` off while the learner's runs.

The references: ``course_lib.generative.pix2pix.receptive_field`` and ``pix2pix_loss``, and
``UNet.forward``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.checks.core import (
    CheckFailed,
    SwitchedOff,
    _Case,
    _num,
    _raised,
    _run,
    _run_cases,
    _shape,
    _Wrong,
    graded_without,
    switched_off,
)
from course_lib.checks.gan import _UNDERFLOW_HINT
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.generative.pix2pix import pix2pix_loss as _pix2pix_loss_reference
from course_lib.generative.pix2pix import receptive_field as _receptive_field_reference
from course_lib.models import UNet

# ----------------------------------------------------------------------------- receptive field

_PIX2PIX_70 = [(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]


def _rf_cases() -> list[_Case]:
    table = [
        ("one 3×3 convolution, stride 1", [(3, 1)], {"single"}),
        ("one 4×4 convolution, stride 2", [(4, 2)], {"single"}),
        ("two 3×3 convolutions, stride 1 (as one 5×5)", [(3, 1), (3, 1)], set()),
        ("pix2pix's 70×70 PatchGAN: three 4×4 stride-2 convolutions, two 4×4 stride-1",
         _PIX2PIX_70, {"strided"}),
        ("a 2×2 stride-2 layer, then a 3×3 one: the 3×3 window now spans 3 cells of 2 pixels",
         [(2, 2), (3, 1)], {"strided"}),
        ("a 3×3 layer, then a 2×2 stride-2 one", [(3, 1), (2, 2)], {"strided"}),
        ("this course's digit PatchGAN: one 4×4 stride-2, two 4×4 stride-1",
         [(4, 2), (4, 1), (4, 1)], {"strided"}),
        ("no layers at all: a pixel sees itself", [], {"empty"}),
    ]  # fmt: skip
    return [
        _Case(label, (list(layers),), np.asarray(_receptive_field_reference(layers), float), tags)
        for label, layers, tags in table
    ]


def _rf_forward(layers):
    r = 1
    for k, s in layers:  # from the input: wrong, the strides compound the other way
        r = r * s + (k - s)
    return r


def _rf_strides_after(layers):
    """1 + sum (kernel_l - 1) * (the product of the strides up to and including layer l)."""
    r, jump = 1, 1
    for k, s in layers:
        jump *= s
        r += (k - 1) * jump
    return r


def _rf_candidates(case: _Case):
    layers = case.args[0]
    return [
        ("the strides are ignored: after a stride-2 layer, each step of the next layer's window "
         "is 2 input pixels. Go from the output back: r = r · stride + (kernel − stride).",
         lambda: 1 + sum(k - 1 for k, _ in layers)),
        ("you went through the layers from the input to the output; the recurrence "
         "r = r · stride + (kernel − stride) starts at the OUTPUT (r = 1) and walks back to the "
         "input: loop over reversed(layers).",
         lambda: _rf_forward(layers)),
        ("each layer adds kernel − stride, not kernel: r = r · stride + (kernel − stride) "
         "(a stride-1 3×3 layer widens the window by 2, from r to r + 2).",
         lambda: _rf_backward_plus_k(layers)),
        ("a layer's kernel is spread by the strides of the layers BEFORE it (nearer the input), "
         "not by its own: r = 1 + Σ (kernel_l − 1) · Π_{i<l} stride_i.",
         lambda: _rf_strides_after(layers)),
        ("start from r = 1 (one output pixel), not r = 0.",
         lambda: _rf_reference_from(0, layers)),
    ]  # fmt: skip


def _rf_backward_plus_k(layers):
    r = 1
    for k, s in reversed(layers):
        r = r * s + k
    return r


def _rf_reference_from(r: int, layers):
    for k, s in reversed(layers):
        r = r * s + (k - s)
    return r


def check_receptive_field(receptive_field: Callable) -> None:
    """Check ``receptive_field(layers)``: the side of the input window that one output pixel of
    a stack of convolutions ``layers = [(kernel, stride), ...]`` (input first) sees, from the
    output back ``r = 1``, ``r = r * stride + (kernel - stride)``."""
    # the course's own receptive_field is switched off while it runs: calling it is no answer
    receptive_field = graded_without(receptive_field, "generative.pix2pix.receptive_field")
    failure = _run(
        receptive_field,
        "receptive_field",
        _rf_cases(),
        lambda case, shape: "return one whole number, the side of the window.",
        _rf_candidates,
        {
            "strided": "only the cases with a stride of 2 fail. Each step of a window above a "
            "stride-2 layer moves 2 pixels of that layer's input: r = r · stride + (kernel − "
            "stride), from the output back."
        },  # fmt: skip
    )
    if failure is not None:
        raise failure.with_traceback(None)


# ----------------------------------------------------------------------------- the generator's loss


def _loss_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, logits_shape, image_shape, lam, tags=(), scale=2.0):
        logits = scale * torch.randn(logits_shape, generator=gen)
        fake = torch.rand(image_shape, generator=gen) * 2 - 1
        target = torch.rand(image_shape, generator=gen) * 2 - 1
        return TorchCase(label, (logits, fake, target, lam), grad=("fake_logits", "fake"),
                         tags=tags)  # fmt: skip

    return [
        case("4 digits 28×28, patch logits 4×1×5×5, λ = 100", (4, 1, 5, 5), (4, 1, 28, 28), 100.0),
        case("one image (N = 1), 2 chroma channels 16×16, logits 1×1×3×3, λ = 10",
             (1, 1, 3, 3), (1, 2, 16, 16), 10.0, {"single"}),
        case("λ = 0: the adversarial term alone", (3, 1, 4, 4), (3, 1, 8, 8), 0.0, {"zero"}),
        case("one logit per image (N), λ = 1", (6,), (6, 3, 8, 8), 1.0),
        case("a confident discriminator: logits ~ 60·N(0, 1), up to about ±150", (4, 1, 5, 5),
             (4, 1, 28, 28), 100.0, {"large"}, scale=60.0),
    ]  # fmt: skip


def _ls(x: torch.Tensor) -> torch.Tensor:
    return F.logsigmoid(x)


def _l1(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (f - t).abs().mean()


_LOSS_MISTAKES = [
    ("the saturating loss log(1 − D(G(x))): pix2pix's generator minimises −log D(x, G(x)) = "
     "−mean F.logsigmoid(fake_logits), which keeps a strong gradient while D rejects the fakes.",
     lambda l, f, t, lam: lam * _l1(f, t) + _ls(-l).mean()),
    ("the sign of the adversarial term: the generator wants D to say 'real', so it minimises "
     "−log D(x, G(x)) = −mean F.logsigmoid(fake_logits).",
     lambda l, f, t, lam: lam * _l1(f, t) + _ls(l).mean()),
    ("the squared error is L2; pix2pix uses L1, mean |target − fake|, which blurs less.",
     lambda l, f, t, lam: lam * ((f - t) ** 2).mean() - _ls(l).mean()),
    ("λ weighs the L1 term, not the adversarial one: lam · L1 − mean log σ(fake_logits).",
     lambda l, f, t, lam: _l1(f, t) - lam * _ls(l).mean()),
    ("λ is missing: lam · L1 − mean log σ(fake_logits).",
     lambda l, f, t, lam: _l1(f, t) - _ls(l).mean()),
    ("the adversarial term is missing: + (−mean F.logsigmoid(fake_logits)).",
     lambda l, f, t, lam: lam * _l1(f, t)),
    ("the L1 term is missing: lam · mean |target − fake|.",
     lambda l, f, t, lam: -_ls(l).mean()),
    ("average |target − fake| over every pixel (.mean()), not sum it: the loss should not grow "
     "with the image size.",
     lambda l, f, t, lam: lam * (f - t).abs().sum() - _ls(l).mean()),
    ("average the adversarial term over every patch and image (.mean()), not sum it.",
     lambda l, f, t, lam: lam * _l1(f, t) - _ls(l).sum()),
    ("the discriminator gives logits, not probabilities: log D = F.logsigmoid(fake_logits).",
     lambda l, f, t, lam: lam * _l1(f, t) - torch.log(l).mean()),
    (_UNDERFLOW_HINT,
     lambda l, f, t, lam: lam * _l1(f, t) - torch.log(torch.sigmoid(l)).mean()),
]  # fmt: skip


def check_pix2pix_loss(pix2pix_loss: Callable, seed: int = 0) -> None:
    """Check ``pix2pix_loss(fake_logits, fake, target, lam)``: ``lam * mean|target - fake| -
    mean log sigmoid(fake_logits)``, both means over everything, stable for logits of ±150; its
    value and its gradients with respect to ``fake_logits`` and ``fake``."""
    # the course's own pix2pix_loss is switched off while it runs: calling it is no answer
    pix2pix_loss = graded_without(pix2pix_loss, "generative.pix2pix.pix2pix_loss")
    check_torch_function(
        pix2pix_loss,
        "pix2pix_loss",
        _loss_cases(seed),
        _pix2pix_loss_reference,
        _LOSS_MISTAKES,
        arg_names=("fake_logits", "fake", "target", "lam"),
        output="loss",
        shape_hint=lambda case, shape: (
            "return one number (a 0-dimensional tensor): the mean "
            "over the batch, the pixels and the patches."
        ),
        tag_hints={"large": "it only fails on large logits. " + _UNDERFLOW_HINT},
        nonfinite_hint=lambda case: _UNDERFLOW_HINT if "large" in case.tags else None,
        gradient_formula="For fake it should be lam · sign(fake − target) / (number of pixels); "
        "for fake_logits (sigmoid(l) − 1) / (number of logits).",
    )


# ----------------------------------------------------------------------------- the U-Net


class LibraryUNetForwardUsed(SwitchedOff):
    """Raised, inside ``library_unet_forward_disabled()``, by the U-Net's own forward pass."""

    task = (
        "write the forward pass yourself, from the U-Net's parts (unet.down[k], unet.pool, "
        "unet.up[k], unet.merge[k], unet.out)."
    )


_LIBRARY_UNETS = [
    (UNet, "forward", "UNet.forward (unet(x), unet.forward(x))"),
]


def library_unet_forward_disabled():
    """Inside this block (``with library_unet_forward_disabled(): ...``),
    ``course_lib.models.UNet.forward`` raises ``LibraryUNetForwardUsed``, so ``unet(x)`` and
    ``unet.forward(x)`` do, while the U-Net's parts (``unet.down[k]``, ``unet.pool``,
    ``unet.up[k]``, ``unet.merge[k]``, ``unet.out``) work as usual: the check and the grader run
    the learner's ``unet_forward`` in it. Everything is put back on the way out, also after an
    error or an interrupt."""
    return switched_off(_LIBRARY_UNETS, LibraryUNetForwardUsed)


def _unet_mistakes(unet: UNet, x: torch.Tensor) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    def run(order: str = "skip_first", pool: bool = True) -> torch.Tensor:
        skips, h = [], x
        for k, block in enumerate(unet.down):
            h = block(h if k == 0 or not pool else unet.pool(h))
            skips.append(h)
        skips.pop()
        for up, merge in zip(unet.up, unet.merge, strict=True):
            h = up(h)
            pair = [skips.pop(), h] if order == "skip_first" else [h, skips.pop()]
            h = merge(torch.cat(pair, dim=1))
        return unet.out(h)

    return [
        ("the order of the concatenation: the skip first, then the upsampled features, "
         "torch.cat([skip, h], dim=1) (the merge block's weights expect them in that order).",
         lambda: run(order="upsampled_first")),
    ]  # fmt: skip


_UNET_LIBRARY_HINT = (
    "this task is to write the forward pass yourself, from the U-Net's parts: the down blocks "
    "(unet.down[k], with unet.pool before every one but the first), the up and merge blocks "
    "(unet.up[k], then unet.merge[k] on torch.cat([skip, h], dim=1)) and unet.out; not "
    "unet(x) or unet.forward(x)."
)


def _unet_cases(seed: int) -> list[tuple[str, UNet, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    table = [
        ("2 levels, 1 -> 1 channel, 2 images 8×8", 1, 1, (4, 8), (2, 8, 8)),
        ("3 levels, 1 -> 2 channels, one image 12×16", 1, 2, (4, 8, 16), (1, 12, 16)),
        ("3 levels, 2 -> 1 channels, 3 images 28×28 (28 -> 14 -> 7)", 2, 1, (4, 6, 8), (3, 28, 28)),
        ("4 levels, 1 -> 3 channels, 2 images 16×8", 1, 3, (2, 4, 6, 8), (2, 16, 8)),
    ]
    cases = []
    for label, c_in, c_out, widths, (n, h, w) in table:
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        unet = UNet(c_in, c_out, widths).double().eval()
        cases.append((label, unet, torch.randn(n, c_in, h, w, generator=gen).double()))
    return cases  # fmt: skip


def check_unet_forward(unet_forward: Callable, seed: int = 0) -> None:
    """Check ``unet_forward(unet, x)``, the forward pass of a ``course_lib.models.UNet`` written
    with its modules (``unet.down``, ``unet.pool``, ``unet.up``, ``unet.merge``, ``unet.out``):
    it must give what ``unet(x)`` gives, for U-Nets of 2 to 4 levels, with ``UNet.forward``
    switched off (``library_unet_forward_disabled``)."""
    with torch.random.fork_rng(devices=[]):
        cases = _unet_cases(seed)
    described = [_Case(label, (unet, x), np.zeros(0)) for label, unet, x in cases]

    def run_case(k: int, case: _Case, where: str):
        unet, x = case.args
        with torch.no_grad():
            expected = unet(x)
            where_x = f"(x of shape {_shape(x.shape)}, widths {unet.widths})"
            try:
                with library_unet_forward_disabled():
                    got = unet_forward(unet, x.clone())
            except NotImplementedError:
                raise CheckFailed(
                    "unet_forward is not written yet: replace `raise NotImplementedError()` in "
                    "its cell with your code, run that cell, then run this check again."
                ) from None
            except LibraryUNetForwardUsed as err:
                return _Wrong(
                    [f"It calls {err.name}, which is switched off in this check and in the "
                     f"grader.", where_x],
                    _UNET_LIBRARY_HINT,
                )  # fmt: skip
            except Exception as err:  # the learner's code
                hint = _shape_error_hint(err)
                if hint is None:
                    return _raised("unet_forward", err, where)
                return _Wrong([f"It raised {type(err).__name__}: {err}", where_x], hint)
            mistakes = _unet_mistakes(unet, x)
        if not isinstance(got, torch.Tensor):
            return _Wrong([f"unet_forward must return a tensor, got a {type(got).__name__}."])
        if got.shape != expected.shape:
            return _Wrong([f"Expected an output of shape {_shape(expected.shape)}, got "
                           f"{_shape(got.shape)}."],
                          "the output has the input's height and width and unet.out's "
                          "channels: after the last merge, apply unet.out.")  # fmt: skip
        if torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-6):
            return None
        hint = next((h for h, make in mistakes if torch.allclose(got.double(), make())), None)
        err = (got.double() - expected).abs().max().item()
        return _Wrong([f"The shape {_shape(got.shape)} is right, but the values differ from "
                       f"unet(x) by up to {_num(err)}."], hint)  # fmt: skip

    failure = _run_cases(unet_forward, "unet_forward", described, run_case, {})
    if failure is not None:
        raise failure.with_traceback(None)


def _shape_error_hint(err: Exception) -> str | None:
    text = str(err)
    if "Sizes of tensors must match" in text:
        return (
            "the skip and the upsampled features differ in size: pool (unet.pool) before "
            "every down block but the first, and pair each up step with the skip of the "
            "same size (the last one saved, skips.pop())."
        )
    if "expected input" in text and "channels" in text:
        return (
            "a block got the wrong number of channels: each merge block takes the skip and "
            "the upsampled features CONCATENATED along the channels, torch.cat([skip, h], "
            "dim=1) (not added, not along dim 0); the bottom level has no skip."
        )
    return None
