"""course_lib.checks' generic check of a PyTorch function (check_torch_function) on a toy
function, and the checks of chapter 05 built on it (check_kl_divergence, check_reparameterize):
a right answer passes with one line, each classic mistake is named, each failure says which
case failed."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import checks, scratch
from course_lib.checks import TorchCase, check_torch_function
from course_lib.generative import autoencoder as ae
from course_lib.generative import vae

ROOT = Path(__file__).resolve().parents[1]


def _failure(check, fn) -> str:
    with pytest.raises(checks.CheckFailed) as info:
        check(fn)
    return str(info.value)


# ----------------------------------------------------------------------------- a toy check


def _toy_reference(x, w):
    """tanh(x · w): x is N × D, w has D weights, one per column."""
    return torch.tanh(x * w)


def _straight_through(x, w):
    """The right value, but the gradient of x · w: the tanh is left out of the backward pass."""
    t = x * w
    return torch.tanh(t).detach() + t - t.detach()


TOY_MISTAKES = [
    ("you forgot the tanh", lambda x, w: x * w),
    ("sigmoid is not tanh", lambda x, w: torch.sigmoid(x * w)),
    ("the tanh is left out of the backward pass", _straight_through),
    (lambda case: f"you summed the {case.args[0].shape[1]} columns", lambda x, w: (x * w).sum(1)),
]


def _toy_cases():
    gen = torch.Generator().manual_seed(0)
    return [
        TorchCase("4 rows", (torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen))),
        TorchCase("one row", (torch.randn(1, 5, generator=gen), torch.randn(5, generator=gen))),
        TorchCase(
            "large inputs",
            (100 * torch.randn(6, 2, generator=gen), torch.randn(2, generator=gen)),
            tags={"large"},
        ),
    ]


def _check_toy(fn, **options) -> None:
    options = {"arg_names": ("x", "w"), "tag_hints": {"large": "only large inputs fail"}} | options
    check_torch_function(fn, "toy", _toy_cases(), _toy_reference, TOY_MISTAKES, **options)


def test_a_right_function_passes_with_one_line(capsys):
    _check_toy(lambda x, w: torch.tanh(x * w))
    _check_toy(lambda x, w: torch.tanh(x.double() * w.double()))  # float64 is fine too
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["✓ toy: all 3 cases match the reference."] * 2


@pytest.mark.parametrize("hint, wrong", TOY_MISTAKES[:3], ids=[h for h, _ in TOY_MISTAKES[:3]])
def test_each_listed_mistake_is_named(hint, wrong):
    msg = _failure(_check_toy, wrong)
    assert msg.startswith("toy is wrong on case 1 of 3: 4 rows: x of shape (4, 3), w of shape "), (
        msg
    )
    assert f"Hint: {hint}" in msg, msg


def test_a_mistake_of_another_shape_is_named_with_the_case():
    msg = _failure(_check_toy, lambda x, w: (x * w).sum(1))
    assert "Expected a tensor of shape (4, 3), got shape (4,)." in msg, msg
    assert "Hint: you summed the 3 columns" in msg, msg


def test_a_shape_hint_when_no_mistake_matches():
    def shape_hint(case, shape):
        return f"keep the shape of x, {tuple(case.args[0].shape)}, not {shape}"

    msg = _failure(lambda fn: _check_toy(fn, shape_hint=shape_hint), lambda x, w: x.T)
    assert "got shape (3, 4)" in msg and "Hint: keep the shape of x, (4, 3), not (3, 4)" in msg


def test_the_value_report_gives_the_largest_error_and_the_failing_cases():
    msg = _failure(_check_toy, lambda x, w: torch.tanh(x * w) + 0.5 * (x[:, :1] > 0))
    assert "case 1 of 3: 4 rows" in msg and "The shape (4, 3) is right, but " in msg, msg
    assert "Largest error 0.5 at index [" in msg and "Cases that fail: 1" in msg, msg


def test_a_wrong_gradient_with_a_right_value_is_caught():
    def detached_in_the_middle(x, w):
        return torch.tanh(x * w.detach())  # no gradient reaches w

    msg = _failure(_check_toy, detached_in_the_middle)
    assert "case 1 of 3: 4 rows" in msg, msg
    assert "The result is right, but its gradient with respect to w (from autograd" in msg, msg
    assert "Hint: no gradient reaches w" in msg, msg
    msg = _failure(_check_toy, _straight_through)  # wrong, not zero: the mistake of the table
    assert "its gradient with respect to x" in msg, msg
    assert "Hint: the tanh is left out of the backward pass" in msg, msg


def test_an_output_cut_off_from_autograd():
    msg = _failure(_check_toy, lambda x, w: torch.tanh(x * w).detach())
    assert "case 1 of 3" in msg and "cut off from autograd (it has no grad_fn)" in msg, msg
    assert "compute it from `x` and `w` with torch operations" in msg, msg
    # ... which is right when no gradient is asked for
    cases = [TorchCase(c.label, c.args, grad=()) for c in _toy_cases()]
    check_torch_function(
        lambda x, w: torch.tanh(x * w).detach(), "toy", cases, _toy_reference, arg_names="xw"
    )


@pytest.mark.parametrize(
    "returned, words",
    [
        (None, "It returned None."),
        (np.zeros((4, 3)), "It returned a NumPy value (array("),
        (1.5, "It returned a float (1.5), not a torch tensor."),
        ((torch.zeros(4, 3), None), "It returned a tuple (a tensor of shape (4, 3), None)"),
    ],
    ids=["None", "numpy", "float", "tuple"],
)
def test_what_is_not_a_tensor(returned, words):
    msg = _failure(_check_toy, lambda x, w: returned)
    assert msg.startswith("toy is wrong on case 1 of 3: 4 rows") and words in msg, msg
    assert "Hint: " in msg, msg


def test_nan_and_tag_hints():
    msg = _failure(_check_toy, lambda x, w: torch.tanh(x * w) / (x.abs() < 50))
    assert "case 3 of 3: large inputs" in msg and "NaN or infinity, first at index [" in msg, msg
    assert "cases that pass: 1, 2." in msg, msg
    msg = _failure(_check_toy, lambda x, w: torch.tanh(x * w) * (x.abs() < 50))
    assert "case 3 of 3: large inputs" in msg and "Hint: only large inputs fail" in msg, msg


def test_not_written_and_raised():
    def not_written(x, w):
        raise NotImplementedError()

    with pytest.raises(checks.CheckFailed) as info:
        _check_toy(not_written)
    assert "toy is not written yet" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(checks.CheckFailed) as info:
        _check_toy(lambda x, w: x[10, 10])
    msg = str(info.value)
    assert "toy raised IndexError" in msg and "on case 1 of 3: 4 rows: x of shape" in msg, msg
    assert isinstance(info.value.__cause__, IndexError)
    assert "check_toy(toy)" in _failure(_check_toy, "tanh")


def test_on_error_and_the_context():
    inside = []

    @contextmanager
    def watched():
        inside.append(True)
        try:
            yield
        finally:
            inside.append(False)

    def needs_the_context(x, w):
        if inside[-1] is not True:
            raise RuntimeError("outside")
        return torch.tanh(x * w)

    _check_toy(needs_the_context, context=watched)
    assert inside[-1] is False
    msg = _failure(
        lambda fn: _check_toy(fn, on_error=lambda err: checks.core._Wrong(["Said so."], "here")),
        lambda x, w: 1 / 0,
    )
    assert "case 1 of 3" in msg and "Said so.\nHint: here" in msg, msg


def test_a_scalar_output_and_its_gradient():
    gen = torch.Generator().manual_seed(1)
    cases = [TorchCase(f"{n} numbers", (torch.randn(n, generator=gen),)) for n in (3, 8)]

    def check(fn):
        check_torch_function(fn, "mean_square", cases, lambda x: (x**2).mean(), arg_names="x")

    check(lambda x: (x**2).mean())
    check(lambda x: (x**2).mean().reshape(1))  # one value is one number
    msg = _failure(check, lambda x: (x**2).sum())
    assert "case 1 of 2: 3 numbers: x of shape (3,)" in msg, msg
    assert "Expected a result of " in msg and "(error " in msg, msg
    msg = _failure(check, lambda x: (x**2).mean().item())
    assert "It returned a float (" in msg and "not .item()" in msg, msg
    msg = _failure(check, lambda x: (x**2) / len(x))
    assert "Expected one number (a 0-dimensional tensor), got shape (3,)." in msg, msg


def test_a_seeded_generator_for_the_reference_and_the_learner_alike():
    cases = [TorchCase(f"seed {s}", (torch.zeros(4, 3),), seed=s) for s in (5, 6)]

    def check(fn):
        def reference(x, g):
            return x + torch.randn(x.shape, generator=g).to(x)

        check_torch_function(fn, "noisy", cases, reference, arg_names=("x",))

    check(lambda x, g: x + torch.randn(x.shape, generator=g))
    msg = _failure(check, lambda x, g: x + torch.randn_like(x))  # the global generator
    assert (
        "case 1 of 2: seed 5: x of shape (4, 3), generator=torch.Generator().manual_seed(5)" in msg
    )


def test_the_learners_random_state_is_left_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    _check_toy(lambda x, w: torch.tanh(x * w) + 0 * torch.randn(1))
    _failure(_check_toy, lambda x, w: torch.tanh(x * w) + torch.randn(1))
    checks.check_reparameterize(vae.reparameterize)
    _failure(checks.check_reparameterize, lambda mu, lv, g: mu + torch.randn_like(mu))
    checks.check_kl_divergence(vae.kl_divergence)
    assert torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------------------------------- chapter 05: VAE


def _kl_terms(mu, lv):
    return mu**2 + lv.exp() - 1 - lv


KL_MISTAKES = [
    (lambda mu, lv: -0.5 * _kl_terms(mu, lv).sum(1), "the sign is wrong"),
    (lambda mu, lv: 0.5 * (mu**2 + lv**2 - 1 - torch.log(lv**2)).sum(1), "not the standard dev"),
    (lambda mu, lv: 0.5 * (mu**2 + lv - 1 - lv.log()).sum(1), "not the variance σ²"),
    (lambda mu, lv: 0.5 * (mu**2 + lv - 1 - lv).sum(1), "you used logvar itself in its place"),
    (lambda mu, lv: _kl_terms(mu, lv).sum(1), "the factor 0.5 is missing"),
    (lambda mu, lv: 0.5 * _kl_terms(mu, lv).mean(1), "averaged over the latent dimensions"),
    (lambda mu, lv: 0.5 * (mu**2 + lv.exp() - lv).sum(1), "the − 1 is missing"),
    (lambda mu, lv: 0.5 * _kl_terms(mu, lv).sum(), "summed or averaged over the batch"),
    (lambda mu, lv: 0.5 * _kl_terms(mu, lv).sum(1).mean(), "summed or averaged over the batch"),
    (lambda mu, lv: 0.5 * _kl_terms(mu, lv), "sum over the latent dimensions, .sum(dim=1)"),
    (lambda mu, lv: 0.5 * _kl_terms(mu, lv).sum(0), "you summed over the batch (dim=0)"),
    (lambda mu, lv: 0.5 * (mu**2 + lv.detach().exp() - 1 - lv).sum(1), "gradient with respect"),
    (lambda mu, lv: vae.kl_divergence(mu, lv).detach(), "cut off from autograd"),
]


@pytest.mark.parametrize("fn, hint", KL_MISTAKES, ids=[h for _, h in KL_MISTAKES])
def test_check_kl_divergence_names_the_mistake(fn, hint):
    msg = _failure(checks.check_kl_divergence, fn)
    assert hint in msg, msg
    assert msg.startswith("kl_divergence is wrong on case 1 of 5: 4 examples"), msg
    assert "mu of shape (4, 2), logvar of shape (4, 2)" in msg and "Cases that fail: " in msg, msg


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_kl_reference_passes_with_any_seed(seed, capsys):
    checks.check_kl_divergence(vae.kl_divergence, seed=seed)
    checks.check_kl_divergence(lambda mu, lv: vae.kl_divergence(mu.double(), lv.double()), seed)
    assert capsys.readouterr().out == "✓ kl_divergence: all 5 cases match the reference.\n" * 2


def _z(mu, lv, g, std=None, eps=None):
    std = (0.5 * lv).exp() if std is None else std
    return mu + std * (torch.randn(mu.shape, generator=g) if eps is None else eps)


REPARAMETERIZE_MISTAKES = [
    (lambda mu, lv, g: _z(mu, lv, g, std=lv.exp()), "exp(logvar) is the variance"),
    (lambda mu, lv, g: _z(mu, lv, g, std=lv), "not the standard deviation"),
    (lambda mu, lv, g: torch.normal(mu, (0.5 * lv).exp(), generator=g), "torch.normal(mu, std)"),
    (lambda mu, lv, g: mu, "you returned mu"),
    (lambda mu, lv, g: _z(mu, lv, g, std=1.0), "you added eps without scaling it"),
    (lambda mu, lv, g: _z(mu, lv, g, eps=torch.randn_like(mu)), "eps = torch.randn(mu.shape, ge"),
    (lambda mu, lv, g: _z(mu, lv, g).detach(), "z must stay connected to mu and logvar"),
    (lambda mu, lv, g: (_z(mu, lv, g), None), "return one tensor"),
]


@pytest.mark.parametrize(
    "fn, hint", REPARAMETERIZE_MISTAKES, ids=[h for _, h in REPARAMETERIZE_MISTAKES]
)
def test_check_reparameterize_names_the_mistake(fn, hint):
    msg = _failure(checks.check_reparameterize, fn)
    assert hint in msg, msg
    assert msg.startswith("reparameterize is wrong on case 1 of 5: 8 examples"), msg
    assert "generator=torch.Generator().manual_seed(1)" in msg, msg


def test_check_reparameterize_names_the_variance_mistake_by_its_gradient_where_values_agree():
    """With logvar = 0, exp(logvar) = exp(0.5·logvar) = 1: only the gradient tells them apart."""
    msg = _failure(checks.check_reparameterize, REPARAMETERIZE_MISTAKES[0][0])
    assert "Cases that fail: 1, 2, 3, 4, 5 (all of them)." in msg, msg


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_reparameterize_reference_passes_with_any_seed(seed, capsys):
    checks.check_reparameterize(vae.reparameterize, seed=seed)
    checks.check_reparameterize(lambda mu, lv, g: _z(mu.double(), lv.double(), g), seed)
    assert capsys.readouterr().out == "✓ reparameterize: all 5 cases match the reference.\n" * 2


# ----------------------------------------------------------------------------- the package


def test_every_name_the_exercises_and_notebooks_import_from_the_checks_exists():
    """``from course_lib.checks import ...`` and ``checks.<name>`` in the notebooks, the exercises
    (source and release), their wrong answers and the tests."""
    files = [*ROOT.glob("exercises/*/*/*.ipynb"), *ROOT.glob("notebooks/*.ipynb")]
    texts = ["".join(c["source"]) for f in files for c in json.loads(f.read_text())["cells"]]
    texts += [
        p.read_text() for p in [ROOT / "exercises/wrong_answers.py", *ROOT.glob("tests/*.py")]
    ]
    names = set()
    for text in texts:
        for block in re.findall(
            r"^\s*from course_lib\.checks import (\([^)]*\)|[^\n]*)", text, re.M
        ):
            names |= set(re.findall(r"\w+", block))
        names |= set(re.findall(r"\bchecks\.(\w+)", text)) - {"py", "items"}
    assert {"check_conv2d", "check_cross_entropy", "_sobel_reference"} <= names
    assert [n for n in sorted(names) if not hasattr(checks, n)] == []


# ----------------------------------------------------------------------------- chapter 04 and 05


def _bce(z, x):
    return F.binary_cross_entropy_with_logits(z, x, reduction="none").flatten(1).sum(1)


def _naive_log_sigmoid(z, x):
    p = torch.sigmoid(z)
    return -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1).mean()


RECONSTRUCTION_MISTAKES = [
    (lambda z, x: F.binary_cross_entropy_with_logits(z, x), "averaged over the pixels too"),
    (lambda z, x: _bce(z, x).sum(), "you summed over the batch too"),
    (lambda z, x: -_bce(z, x).mean(), "the minus sign is missing"),
    (lambda z, x: _bce(torch.sigmoid(z), x).mean(), "you applied the sigmoid twice"),
    (lambda z, x: (torch.sigmoid(z) - x).pow(2).flatten(1).sum(1).mean(), "the squared error"),
    (lambda z, x: _bce(z, x), "one loss per image"),
    (_naive_log_sigmoid, "log(sigmoid(l)) is log(0)"),
]


@pytest.mark.parametrize(
    "fn, hint", RECONSTRUCTION_MISTAKES, ids=[h for _, h in RECONSTRUCTION_MISTAKES]
)
def test_check_reconstruction_loss_names_the_mistake(fn, hint):
    msg = _failure(checks.check_reconstruction_loss, fn)
    assert hint in msg and "logits of shape (" in msg and "Cases that fail: " in msg, msg


def test_check_reconstruction_loss_passes_the_library(capsys):
    checks.check_reconstruction_loss(ae.reconstruction_loss)
    assert capsys.readouterr().out == "✓ reconstruction_loss: all 4 cases match the reference.\n"


def _kl(mu, lv):
    return 0.5 * _kl_terms(mu, lv).sum(1)


ELBO_MISTAKES = [
    (lambda z, x, mu, lv: (_bce(z, x) - _kl(mu, lv)).mean(), "the KL term has the wrong sign"),
    (lambda z, x, mu, lv: _bce(z, x).mean(), "the KL term is missing"),
    (lambda z, x, mu, lv: _kl(mu, lv).mean(), "the reconstruction term is missing"),
    (lambda z, x, mu, lv: (_bce(z, x) / 784 + _kl(mu, lv)).mean(), "averaged the reconstruction"),
    (lambda z, x, mu, lv: (_bce(z, x) + _kl(mu, lv)).sum(), "you summed over the batch"),
    (lambda z, x, mu, lv: (_bce(z, x) + _kl(mu, lv) / mu.shape[1]).mean(), "averaged the KL"),
]


@pytest.mark.parametrize("fn, hint", ELBO_MISTAKES, ids=[h for _, h in ELBO_MISTAKES])
def test_check_negative_elbo_names_the_mistake(fn, hint):
    msg = _failure(checks.check_negative_elbo, fn)
    assert hint in msg and msg.startswith("negative_elbo is wrong on case "), msg


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chapter_04_and_05_references_pass_with_any_seed(seed, capsys):
    checks.check_negative_elbo(vae.negative_elbo, seed=seed)
    checks.check_conv_transpose2d(
        lambda x, w, s, p: scratch.conv_transpose2d(x, w, stride=s, padding=p), seed=seed
    )
    out = capsys.readouterr().out.splitlines()
    assert out == ["✓ negative_elbo: all 3 cases match the reference.",
                   "✓ conv_transpose2d: all 7 cases match the reference."]  # fmt: skip


def _flipped(x, w, s, p):
    return scratch.conv_transpose2d(x, w[:, :, ::-1, ::-1].copy(), stride=s, padding=p)


def _convolution_size(x, w, s, p):
    """Zeros of the size a convolution with the same k, s, p would give."""
    oh = scratch.conv_output_size(x.shape[2], w.shape[2], s, p)
    ow = scratch.conv_output_size(x.shape[3], w.shape[3], s, p)
    return np.zeros((x.shape[0], w.shape[1], oh, ow))


TRANSPOSE_MISTAKES = [
    (_flipped, "the kernel is flipped"),
    (lambda x, w, s, p: scratch.conv_transpose2d(x, w, stride=s), "you did not crop the padding"),
    (_convolution_size, "that is the size of a *convolution*'s output"),
]


@pytest.mark.parametrize("fn, hint", TRANSPOSE_MISTAKES, ids=[h for _, h in TRANSPOSE_MISTAKES])
def test_check_conv_transpose2d_names_the_mistake(fn, hint):
    msg = _failure(checks.check_conv_transpose2d, fn)
    assert hint in msg and msg.startswith("conv_transpose2d is wrong on case "), msg
