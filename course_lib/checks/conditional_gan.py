"""Checks of exercise 07 (conditional GANs), PyTorch: ``check_conditional_input`` and
``check_projection_logit`` (tables of cases and classic mistakes on ``check_torch_function``),
and ``check_synthetic_digits`` (a tiny conditional generator and a seeded draw, on the core's
case runner).

The references are the formulas of ``course_lib.generative.gan``: a conditional generator reads
``z`` next to its class (there a learnt embedding, the one-hot vector times a matrix), and the
projection discriminator adds ``<embed(y), h(x)>`` to its logit ``w·h(x) + b``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks.core import _Case, _not_written, _num, _raised, _run_cases, _shape, _Wrong
from course_lib.checks.torch_function import TorchCase, check_torch_function

# ----------------------------------------------------------------------------- conditional input


def _conditional_input_reference(z: torch.Tensor, labels: torch.Tensor, n_classes: int):
    """``[z, one_hot(labels)]``: ``N x D`` and ``N`` -> ``N x (D + n_classes)``."""
    return torch.cat([z, F.one_hot(labels, n_classes).to(z)], dim=1)


def _input_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, n, d, k, labels=None, tags=()):
        z = torch.randn(n, d, generator=gen)
        y = torch.randint(0, k, (n,), generator=gen) if labels is None else torch.tensor(labels)
        return TorchCase(label, (z, y, k), tags=tags)

    return [
        case("4 examples, a 3-dimensional z, 10 classes", 4, 3, 10, [1, 9, 0, 4]),
        case("one example (N = 1), 5 classes", 1, 6, 5, [2], {"single"}),
        case("8 examples, 10 classes, none of class 8 or 9 in the batch", 8, 16, 10,
             [0, 7, 3, 3, 5, 1, 6, 2], {"missing"}),
        case("the chapter's sizes: 64 examples, z of 100 numbers, 10 classes", 64, 100, 10),
        case("2 classes, z as long as the one-hot part", 6, 2, 2),
    ]  # fmt: skip


def _one_hot(y: torch.Tensor, k: int, z: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y, k).to(z)


_ONE_HOT_HINT = (
    "the label goes in as a one-hot vector of n_classes numbers, F.one_hot(labels, n_classes) "
    "(as float), not as the number itself: a class index is a name, not a quantity (class 8 is "
    "not 'twice class 4'), and the one-hot vector lets the first layer learn one input per class."
)

_INPUT_MISTAKES = [
    (_ONE_HOT_HINT, lambda z, y, k: torch.cat([z, y[:, None].to(z)], dim=1)),
    (_ONE_HOT_HINT, lambda z, y, k: torch.cat([z, y[:, None].to(z) / (k - 1)], dim=1)),
    ("z first, then the one-hot part: [z, one_hot(labels)], torch.cat([z, onehot], dim=1).",
     lambda z, y, k: torch.cat([_one_hot(y, k, z), z], dim=1)),
    ("F.one_hot(labels) without num_classes makes as many columns as the largest label in the "
     "batch + 1; pass F.one_hot(labels, n_classes), so that every batch gives the same width.",
     lambda z, y, k: torch.cat([z, F.one_hot(y).to(z)], dim=1)),
    ("you stacked the one-hot part under z (dim=0): join them side by side, along the "
     "features, torch.cat([z, onehot], dim=1).",
     lambda z, y, k: torch.cat([z, _one_hot(y, k, z)], dim=0)),
]  # fmt: skip


def _input_shape_hint(case: TorchCase, shape: tuple) -> str:
    z, _, k = case.args
    n, d = z.shape
    if shape == (n, d + 1):
        return _ONE_HOT_HINT
    if len(shape) == 2 and shape[0] == 2 * n:
        return _INPUT_MISTAKES[-1][0]
    return f"return N × (D + n_classes) = ({n}, {d + k}): z, then the one-hot label, side by side."


def _input_error(err: Exception) -> _Wrong | None:
    text = str(err)
    if "Sizes of tensors must match" in text:
        return _Wrong(
            [f"It raised RuntimeError: {text}"],
            "torch.cat joins along one dimension and the others must agree: z is N × D and "
            "the one-hot part N × n_classes, so join them along the features, dim=1.",
        )
    if "one_hot is only applicable to index tensor" in text:
        return _Wrong([f"It raised RuntimeError: {text}"], "F.one_hot wants the int64 labels.")
    return None


def check_conditional_input(conditional_input: Callable, seed: int = 0) -> None:
    """Check ``conditional_input(z, labels, n_classes)``: ``torch.cat([z, one_hot(labels,
    n_classes)], dim=1)``, ``N x (D + n_classes)`` (the one-hot part as float); its value and
    its gradient with respect to ``z``."""
    check_torch_function(
        conditional_input,
        "conditional_input",
        _input_cases(seed),
        _conditional_input_reference,
        _INPUT_MISTAKES,
        arg_names=("z", "labels", "n_classes"),
        output="input",
        shape_hint=_input_shape_hint,
        tag_hints={"missing": _INPUT_MISTAKES[3][0]},
        on_error=_input_error,
        gradient_formula="It should be v[:, :D], the first D columns of v: z passes unchanged.",
    )


# ----------------------------------------------------------------------------- projection logit


def _projection_logit_reference(h, labels, w, b, embedding):
    """``h @ w + b + <embedding[labels], h>``, one logit per example: ``N``."""
    return h @ w + b + (embedding[labels] * h).sum(dim=1)


def _projection_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, n, f, k, tags=()):
        h = torch.randn(n, f, generator=gen)
        y = torch.randint(0, k, (n,), generator=gen)
        w, b = torch.randn(f, generator=gen) / f**0.5, torch.randn((), generator=gen)
        e = torch.randn(k, f, generator=gen) / f**0.5
        return TorchCase(label, (h, y, w, b, e), tags=tags)

    return [
        case("5 examples, 8 features, 10 classes", 5, 8, 10),
        case("one example (N = 1), 6 features, 3 classes", 1, 6, 3, {"single"}),
        case("16 examples, 32 features, 10 classes", 16, 32, 10),
        case("4 examples, 4 features, 4 classes (every size alike)", 4, 4, 4),
    ]


_PROJECTION_MISSING = (
    "the projection term is missing: the conditional discriminator adds, for each example, the "
    "dot product of its class's embedding row with its features, (embedding[labels] * h)"
    ".sum(dim=1). Without it D never sees the label, and cannot reject a good 3 drawn as a 7."
)
_PROJECTION_AXIS = (
    "the projection is one dot product per example, between ITS class's embedding row and ITS "
    "features: e = embedding[labels] (N × F), then (e * h).sum(dim=1), N numbers. You summed "
    "over another axis, or paired every example with every other (e @ h.T is N × N; its "
    "diagonal is what you want)."
)

_PROJECTION_MISTAKES = [
    (_PROJECTION_MISSING, lambda h, y, w, b, e: h @ w + b),
    (_PROJECTION_AXIS, lambda h, y, w, b, e: h @ w + b + (e[y] * h).sum()),
    (_PROJECTION_AXIS, lambda h, y, w, b, e: h @ w + b + e[y] @ h.T),
    (_PROJECTION_AXIS, lambda h, y, w, b, e: h @ w + b + (e[y] * h).sum(0).sum()),
    ("the projection is a dot product, a SUM over the features, (e * h).sum(dim=1), not a "
     "mean.",
     lambda h, y, w, b, e: h @ w + b + (e[y] * h).mean(1)),
    ("the bias b is missing: l = h·w + b + <embedding[labels], h>.",
     lambda h, y, w, b, e: h @ w + (e[y] * h).sum(1)),
    ("the projection takes the embedding row of each example's class, embedding[labels], "
     "and its dot product with the features h (not with the weights w).",
     lambda h, y, w, b, e: h @ w + b + (e[y] * w).sum(1)),
]  # fmt: skip


def _projection_shape_hint(case: TorchCase, shape: tuple) -> str:
    n = len(case.args[0])
    if shape == (n, n):
        return _PROJECTION_AXIS
    if shape == (n, 1):
        return "return N logits, a tensor of shape (N,): drop the extra axis (.squeeze(1))."
    return f"return one logit per example, a tensor of shape (N,) = ({n},)."


def _projection_error(err: Exception) -> _Wrong | None:
    if "must match the size of tensor" in str(err):
        return _Wrong([f"It raised RuntimeError: {err}"], _PROJECTION_AXIS)
    return None


def check_projection_logit(projection_logit: Callable, seed: int = 0) -> None:
    """Check ``projection_logit(h, labels, w, b, embedding)``: ``h @ w + b +
    (embedding[labels] * h).sum(1)`` (``h``: ``N x F``, ``w``: ``F``, ``b``: a number,
    ``embedding``: ``K x F``), ``N`` logits; the value and the gradients with respect to ``h``,
    ``w``, ``b`` and ``embedding``."""
    check_torch_function(
        projection_logit,
        "projection_logit",
        _projection_cases(seed),
        _projection_logit_reference,
        _PROJECTION_MISTAKES,
        arg_names=("h", "labels", "w", "b", "embedding"),
        output="logits",
        shape_hint=_projection_shape_hint,
        on_error=_projection_error,
        gradient_formula="It should be v[:, None]·(w + embedding[labels]) for h, hᵀv for w, "
        "Σ v for b, and, for each class k, the sum of v[n]·h[n] over the examples n of class k "
        "for embedding[k].",
    )


# ----------------------------------------------------------------------------- synthetic digits


class _TinyConditionalGenerator(nn.Module):
    """``G(z, labels) -> N x 1 x 28 x 28`` in [-1, 1]: a label embedding next to ``z``, one
    dense layer, tanh; the library's generators in miniature."""

    def __init__(self, z_dim: int, n_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, z_dim)
        self.net = nn.Sequential(nn.Linear(2 * z_dim, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(labels)], dim=1))


def _synthetic_reference(generator, n_per_class, n_classes, z_dim, rng):
    n = n_per_class * n_classes
    labels = torch.arange(n) % n_classes  # every class in turn: 0, 1, ..., K - 1, 0, 1, ...
    z = torch.randn(n, z_dim, generator=rng)
    with torch.no_grad():
        images = (generator(z, labels) + 1) / 2  # tanh's [-1, 1] -> [0, 1]
    return images, labels


def _synthetic_cases(seed: int) -> list[_Case]:
    specs = [  # (n_per_class, n_classes, z_dim)
        (3, 10, 8),
        (1, 10, 4),
        (5, 3, 16),
        (20, 10, 2),
    ]
    cases = []
    for k, (m, n_classes, z_dim) in enumerate(specs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(100 * seed + k)
            g = _TinyConditionalGenerator(z_dim, n_classes).eval()
        n = m * n_classes
        label = (
            f"n_per_class={m}, n_classes={n_classes}, z_dim={z_dim}, a tiny generator "
            f"(an embedding and Linear({2 * z_dim}, 784) → Tanh), rng=torch.Generator()"
            f".manual_seed({1000 * seed + k}); images of shape ({n}, 1, 28, 28), labels of "
            f"shape ({n},)"
        )
        cases.append(_Case(label, (g, m, n_classes, z_dim, 1000 * seed + k), np.zeros(())))
    return cases


_NOISE_HINT = (
    "the labels are right and the images are digits-shaped numbers in [0, 1], but not the "
    "reference's: to compare, draw the noise exactly as z = torch.randn(N, z_dim, generator=rng), "
    "N = n_per_class·n_classes, in one call, before calling the generator once on all N."
)


def _labels_wrong(got: torch.Tensor, want: torch.Tensor, k: int) -> _Wrong | None:
    if got.shape != want.shape:
        return _Wrong(
            [f"Expected labels of shape {_shape(want.shape)}, got shape {_shape(got.shape)}."],
            "one label per image: N = n_per_class·n_classes of them.",
        )
    if got.dtype != torch.int64:
        return _Wrong(
            [f"The labels are {got.dtype}, not torch.int64."],
            "labels are int64 class indices (torch.long), as F.cross_entropy and nn.Embedding "
            "want them: torch.arange(N) % n_classes is int64 already.",
        )
    if torch.equal(got, want):
        return None
    counts = torch.bincount(got.clamp(0, k - 1), minlength=k)
    if (counts == counts[0]).all() and torch.equal(got.sort().values, want.sort().values):
        return _Wrong(
            ["The labels are balanced, but not in the order asked for."],
            "every class in turn, labels = torch.arange(N) % n_classes (0, 1, ..., 9, 0, 1, ...), "
            "as the library's sample() does, so that z[i] goes with labels[i] as in the reference.",
        )
    return _Wrong(
        [f"The labels are not balanced: counts per class {counts.tolist()}."],
        "n_per_class images of EVERY class: labels = torch.arange(N) % n_classes.",
    )


def _images_wrong(got, want: torch.Tensor, raw: torch.Tensor) -> _Wrong | None:
    if not isinstance(got, torch.Tensor):
        return _Wrong(
            [f"The images are a {type(got).__name__}, not a torch tensor."],
            "return the generator's images as a tensor.",
        )
    if got.shape != want.shape:
        return _Wrong(
            [f"Expected images of shape {_shape(want.shape)}, got shape {_shape(got.shape)}."],
            "call the generator once on all N noise vectors and their labels: "
            "generator(z, labels) is N × 1 × 28 × 28.",
        )
    if got.requires_grad:
        return _Wrong(
            ["The images carry the generator's graph (requires_grad=True)."],
            "generate under torch.no_grad(): these images are training data for a classifier, "
            "not something to backpropagate into the generator, and each one would keep the "
            "graph of the generator's forward pass in memory as long as the data set lives.",
        )
    value = got.detach().double()
    if torch.allclose(value, want.double(), rtol=1e-4, atol=1e-5):
        return None
    err = (value - want.double()).abs()
    line = f"The images differ from the reference's by up to {_num(float(err.max()))}."
    if torch.allclose(value, raw.double(), rtol=1e-4, atol=1e-5):
        hint = (
            f"your images are in [-1, 1] (min {_num(float(value.min()))}), the range of the "
            "generator's tanh; the classifier, like the real digits, works in [0, 1]: map "
            "them with (x + 1) / 2."
        )
    elif torch.allclose(value, raw.double().clamp(0, 1), rtol=1e-4, atol=1e-5):
        hint = "don't cut off the negative half: map [-1, 1] to [0, 1] with (x + 1) / 2."
    elif value.min() >= 0 and value.max() <= 1:
        hint = _NOISE_HINT
    else:
        hint = "the images should be (generator(z, labels) + 1) / 2, in [0, 1]."
    return _Wrong([line], hint)


def _synthetic_case(fn: Callable, case: _Case, where: str):
    g, m, n_classes, z_dim, rng_seed = case.args
    want_images, want_labels = _synthetic_reference(
        g, m, n_classes, z_dim, torch.Generator().manual_seed(rng_seed)
    )
    z = torch.randn(m * n_classes, z_dim, generator=torch.Generator().manual_seed(rng_seed))
    with torch.no_grad():
        raw = g(z, want_labels)
    try:
        got = fn(g, m, n_classes, z_dim, torch.Generator().manual_seed(rng_seed))
    except NotImplementedError:
        raise _not_written("synthetic_digits") from None
    except Exception as err:  # anything the learner's code raises
        return _raised("synthetic_digits", err, where)
    if got is None:
        return _Wrong(["It returned None."], "did you forget `return images, labels`?")
    if not isinstance(got, tuple | list) or len(got) != 2:
        return _Wrong(
            [f"It returned a {type(got).__name__}, not a pair (images, labels)."],
            "return two tensors: `return images, labels`.",
        )
    images, labels = got
    if isinstance(images, torch.Tensor) and not images.is_floating_point():
        return _Wrong(
            ["The first thing returned holds integers: images and labels are swapped?"],
            "return the images first, then the labels: `return images, labels`.",
        )
    if not isinstance(labels, torch.Tensor):
        return _Wrong(
            [f"The labels are a {type(labels).__name__}, not a torch tensor."],
            "return the labels as an int64 tensor: torch.arange(N) % n_classes.",
        )
    return _labels_wrong(labels, want_labels, n_classes) or _images_wrong(images, want_images, raw)


def check_synthetic_digits(synthetic_digits: Callable, seed: int = 0) -> None:
    """Check ``synthetic_digits(generator, n_per_class, n_classes, z_dim, rng) -> (images,
    labels)`` with a tiny conditional generator: ``labels = arange(N) % n_classes``, ``z =
    torch.randn(N, z_dim, generator=rng)``, ``images = (generator(z, labels) + 1) / 2``
    computed without gradients, ``N = n_per_class · n_classes``."""
    cases = _synthetic_cases(seed)

    def run_case(k: int, case: _Case, where: str):
        return _synthetic_case(synthetic_digits, case, where)

    with torch.random.fork_rng(devices=[]):  # the learner's random state stays as it was
        failure = _run_cases(synthetic_digits, "synthetic_digits", cases, run_case, {})
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)
