"""course_lib.checks' generic check of a PyTorch function (check_torch_function) on a toy
function, and the checks of chapters 04 to 07 (check_kl_divergence, check_reparameterize ...,
check_gan_training_step, check_synthetic_digits): a right answer passes with one line, each
classic mistake is named, each failure says which case failed."""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import re
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pytest
import skimage.metrics
import skimage.metrics.simple_metrics
import torch
import torch.nn.functional as F

import course_lib
from course_lib import checks, metrics, scratch
from course_lib.checks import TorchCase, check_torch_function
from course_lib.checks.conditional_gan import (
    _conditional_input_reference,
    _projection_logit_reference,
    _synthetic_reference,
)
from course_lib.generative import autoencoder as ae
from course_lib.generative import gan, vae

ROOT = Path(__file__).resolve().parents[1]
# The course's own answers, as right answers to hand to the checks. While a check runs the
# function it is given, it switches the course's functions off (``graded_without``): as module
# attributes, and every global (here, of this file) that *is* one of them. A ``partial`` is not
# the function itself, so these still reach the course's answer.
KL = functools.partial(vae.kl_divergence)
CONV_T = functools.partial(scratch.conv_transpose2d)
D_LOSS = functools.partial(gan.discriminator_loss)


@pytest.mark.parametrize("name", ["generative.vae.kl_divergence", "scratch.conv_transpose2d"])
def test_graded_without_switches_the_course_function_off_only_while_the_function_runs(name):
    module, attr = name.rsplit(".", 1)
    owner = importlib.import_module(f"course_lib.{module}")
    original = getattr(owner, attr)
    graded = checks.graded_without(lambda: getattr(owner, attr)(), name)
    with pytest.raises(checks.CourseFunctionUsed, match=f"course_lib's {name} is switched off"):
        graded()
    assert getattr(owner, attr) is original, f"{name} was not put back"
    assert checks.graded_without(lambda: 7, name)() == 7  # what does not call it runs as ever
    assert checks.graded_without(3, name) == 3  # not a function: the check says so itself
    with pytest.raises(ValueError, match="no function course_lib.scratch.nothing"):
        checks.graded_without(lambda: 0, "scratch.nothing")


@pytest.mark.parametrize("where", ["the function's module", "the notebook (__main__)"])
def test_graded_without_also_switches_off_the_learners_own_name_for_the_function(where):
    """``from course_lib.generative.vae import kl_divergence as k`` in a notebook, then ``k``
    in the learner's function: the global ``k`` is switched off too, and put back after."""
    main = sys.modules["__main__"].__dict__
    namespace = main if where.endswith("(__main__)") else {}
    namespace["k"] = vae.kl_divergence
    try:
        exec("def learner(mu, logvar):\n    return k(mu, logvar)", namespace)
        learner = namespace["learner"]
        graded = checks.graded_without(learner, "generative.vae.kl_divergence")
        with pytest.raises(checks.CourseFunctionUsed, match="kl_divergence is switched off"):
            graded(torch.zeros(2, 3), torch.zeros(2, 3))
        assert namespace["k"] is vae.kl_divergence, f"the global k was not put back ({where})"
        assert float(learner(torch.ones(1, 2), torch.zeros(1, 2))) == pytest.approx(1.0)
        msg = _failure(checks.check_kl_divergence, graded)
        assert "It calls course_lib's generative.vae.kl_divergence, which is switched off" in msg
    finally:
        for name in ("k", "learner"):
            namespace.pop(name, None)


def test_handing_in_the_course_function_itself_is_refused_by_check_and_grader_alike():
    """``kl_divergence = vae.kl_divergence``: the check and a test cell both refuse it (before,
    the check called the object it was handed; now both go through the same switch)."""
    graded = checks.graded_without(vae.kl_divergence, "generative.vae.kl_divergence")
    with pytest.raises(checks.CourseFunctionUsed, match="kl_divergence is switched off"):
        graded(torch.zeros(2, 3), torch.zeros(2, 3))
    msg = _failure(checks.check_kl_divergence, vae.kl_divergence)
    assert "It calls course_lib's generative.vae.kl_divergence, which is switched off" in msg
    msg = _failure(checks.check_pixel_shuffle, F.pixel_shuffle)
    assert "It calls F.pixel_shuffle, which is switched off" in msg, msg
    assert vae.kl_divergence(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x: F.pixel_shuffle(x, 2), "F.pixel_shuffle"),
        (lambda x: torch.pixel_shuffle(x, 2), "torch.pixel_shuffle"),
        (lambda x: torch.nn.PixelShuffle(2)(x), "nn.PixelShuffle"),
    ],
    ids=["F", "torch", "nn"],
)
def test_each_switched_off_function_names_itself(call, name):
    """``F.pixel_shuffle is torch.pixel_shuffle``: each still says which one was called."""
    with checks.library_pixel_shuffle_disabled():
        with pytest.raises(checks.LibraryPixelShuffleUsed) as info:
            call(torch.zeros(1, 4, 2, 2))
    assert info.value.name == name, (name, info.value.name)


def test_a_block_inside_another_switches_off_the_learners_names_that_only_it_sees():
    """The check wraps again what the test cell wrapped (graded_without twice): the inner block
    finds the learner's global k, which the outer one did not look at, and refuses it."""
    namespace = {"k": vae.kl_divergence}
    exec("def learner(mu, logvar):\n    return k(mu, logvar)", namespace)
    outer = checks.graded_without(lambda *a: inner(*a), "generative.vae.kl_divergence")
    inner = checks.graded_without(namespace["learner"], "generative.vae.kl_divergence")
    with pytest.raises(checks.CourseFunctionUsed):
        outer(torch.zeros(2, 3), torch.zeros(2, 3))
    assert namespace["k"] is vae.kl_divergence and vae.kl_divergence.__module__.endswith("vae")


def test_library_pixel_shuffle_disabled_switches_off_a_notebooks_own_import():
    """``from torch.nn.functional import pixel_shuffle`` in a notebook's cell: that name
    refuses too inside the block, and is put back after."""
    main = sys.modules["__main__"].__dict__
    main["pixel_shuffle_"] = F.pixel_shuffle
    try:
        with checks.library_pixel_shuffle_disabled():
            with pytest.raises(checks.LibraryPixelShuffleUsed, match="pixel_shuffle"):
                main["pixel_shuffle_"](torch.zeros(1, 4, 2, 2), 2)
        assert main["pixel_shuffle_"] is F.pixel_shuffle
    finally:
        main.pop("pixel_shuffle_", None)


@pytest.mark.parametrize(
    "ready_made, name",
    [(metrics.psnr, "course_lib's metrics.psnr"),
     (skimage.metrics.peak_signal_noise_ratio, "skimage.metrics.peak_signal_noise_ratio"),
     (skimage.metrics.simple_metrics.peak_signal_noise_ratio,
      "skimage.metrics.peak_signal_noise_ratio")],
    ids=["course", "skimage", "skimage-simple_metrics"],
)  # fmt: skip
def test_graded_psnr_refuses_a_ready_made_psnr_handed_in_or_called(ready_made, name):
    estimate, target = np.zeros((2, 2)), np.full((2, 2), 0.1)
    with pytest.raises(checks.LibraryPSNRUsed) as info:
        checks.graded_psnr(ready_made)(estimate, target)
    assert info.value.name == name, (name, info.value.name)
    namespace = {"p": ready_made}  # the learner's own name for it
    exec("def learner(a, b, data_range=1.0):\n    return p(b, a, data_range=data_range)", namespace)
    with pytest.raises(checks.LibraryPSNRUsed):
        checks.graded_psnr(namespace["learner"])(estimate, target)
    assert namespace["p"] is ready_made, f"{name} was not put back"
    # put back: the library's own answer again (MSE 0.01: 20 dB)
    assert skimage.metrics.peak_signal_noise_ratio(target, estimate) == pytest.approx(20.0)
    assert metrics.psnr(estimate, target) == pytest.approx(20.0)


def test_graded_psnr_refuses_an_import_inside_the_function_and_no_alias_escapes():
    namespace = {}
    exec(
        "def learner(a, b, data_range=1.0):\n"
        "    from skimage.metrics import peak_signal_noise_ratio\n"
        "    return peak_signal_noise_ratio(b, a, data_range=data_range)",
        namespace,
    )
    with pytest.raises(checks.LibraryPSNRUsed):
        checks.graded_psnr(namespace["learner"])(np.zeros((2, 2)), np.full((2, 2), 0.1))
    # no other module of the course holds the course's psnr under its own name (viz did), which
    # a learner could call past the switch
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(course_lib.__path__, "course_lib.")
        if not info.name.endswith("__main__")
    ]
    aliases = [
        f"{module.__name__}.{attr}"
        for module in modules
        if module is not metrics
        for attr, value in vars(module).items()
        if value is metrics.psnr
    ]
    assert not aliases, f"course_lib.metrics.psnr is also reachable as {aliases}"


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
    checks.check_reparameterize(functools.partial(vae.reparameterize))
    _failure(checks.check_reparameterize, lambda mu, lv, g: mu + torch.randn_like(mu))
    checks.check_kl_divergence(KL)
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
    (lambda mu, lv: KL(mu, lv).detach(), "cut off from autograd"),
]


@pytest.mark.parametrize("fn, hint", KL_MISTAKES, ids=[h for _, h in KL_MISTAKES])
def test_check_kl_divergence_names_the_mistake(fn, hint):
    msg = _failure(checks.check_kl_divergence, fn)
    assert hint in msg, msg
    assert msg.startswith("kl_divergence is wrong on case 1 of 5: 4 examples"), msg
    assert "mu of shape (4, 2), logvar of shape (4, 2)" in msg and "Cases that fail: " in msg, msg


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_kl_reference_passes_with_any_seed(seed, capsys):
    checks.check_kl_divergence(KL, seed=seed)
    checks.check_kl_divergence(lambda mu, lv: KL(mu.double(), lv.double()), seed)
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
    checks.check_reparameterize(functools.partial(vae.reparameterize), seed=seed)
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
    checks.check_reconstruction_loss(functools.partial(ae.reconstruction_loss))
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
    checks.check_negative_elbo(functools.partial(vae.negative_elbo), seed=seed)
    checks.check_conv_transpose2d(lambda x, w, s, p: CONV_T(x, w, stride=s, padding=p), seed=seed)
    out = capsys.readouterr().out.splitlines()
    assert out == ["✓ negative_elbo: all 3 cases match the reference.",
                   "✓ conv_transpose2d: all 7 cases match the reference."]  # fmt: skip


def _flipped(x, w, s, p):
    return CONV_T(x, w[:, :, ::-1, ::-1].copy(), stride=s, padding=p)


def _convolution_size(x, w, s, p):
    """Zeros of the size a convolution with the same k, s, p would give."""
    oh = scratch.conv_output_size(x.shape[2], w.shape[2], s, p)
    ow = scratch.conv_output_size(x.shape[3], w.shape[3], s, p)
    return np.zeros((x.shape[0], w.shape[1], oh, ow))


TRANSPOSE_MISTAKES = [
    (_flipped, "the kernel is flipped"),
    (lambda x, w, s, p: CONV_T(x, w, stride=s), "you did not crop the padding"),
    (_convolution_size, "that is the size of a *convolution*'s output"),
]


@pytest.mark.parametrize("fn, hint", TRANSPOSE_MISTAKES, ids=[h for _, h in TRANSPOSE_MISTAKES])
def test_check_conv_transpose2d_names_the_mistake(fn, hint):
    msg = _failure(checks.check_conv_transpose2d, fn)
    assert hint in msg and msg.startswith("conv_transpose2d is wrong on case "), msg


# ----------------------------------------------------------------------------- chapter 06: GAN


def _ls(x):
    return F.logsigmoid(x)


def _d_naive(r, f):
    return -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())


def _d_on_probabilities(r, f):
    p_real, p_fake = torch.sigmoid(r), torch.sigmoid(f)
    return F.binary_cross_entropy(p_real, torch.ones_like(r)) + F.binary_cross_entropy(
        p_fake, torch.zeros_like(f)
    )


D_LOSS_MISTAKES = [
    (_d_naive, "log(sigmoid(l)) is log(0)"),
    (_d_on_probabilities, "it only fails on large logits"),
    (lambda r, f: -(_ls(-r).mean() + _ls(f).mean()), "the labels are swapped"),
    (lambda r, f: _ls(r).mean() + _ls(-f).mean(), "the minus sign is missing"),
    (lambda r, f: -(_ls(r).sum() + _ls(-f).sum()), "you summed over the batch"),
    (lambda r, f: -0.5 * (_ls(r).mean() + _ls(-f).mean()), "the SUM of two means"),
    (lambda r, f: -torch.cat([_ls(r), _ls(-f)]).mean(), "the SUM of two means"),
    (lambda r, f: -_ls(r).mean(), "the fake term is missing"),
    (lambda r, f: -_ls(-f).mean(), "the real term is missing"),
    (lambda r, f: -(torch.log(r).mean() + torch.log(1 - f).mean()), "not probabilities"),
    (lambda r, f: -(_ls(r) + _ls(-f)), "one loss per example"),
    (lambda r, f: D_LOSS(r.detach(), f), "no gradient reaches real_logits"),
]


@pytest.mark.parametrize("fn, hint", D_LOSS_MISTAKES, ids=[h for _, h in D_LOSS_MISTAKES])
def test_check_discriminator_loss_names_the_mistake(fn, hint):
    msg = _failure(checks.check_discriminator_loss, fn)
    assert hint in msg and msg.startswith("discriminator_loss is wrong on case "), msg
    assert "real_logits of shape (" in msg and "Hint: " in msg, msg


G_LOSS_MISTAKES = [
    (lambda f: _ls(-f).mean(), "the saturating loss log(1 − D(G(z)))"),
    (lambda f: -_ls(-f).mean(), "you labelled the fakes fake"),
    (lambda f: _ls(f).mean(), "the minus sign is missing"),
    (lambda f: -_ls(f).sum(), "you summed over the batch"),
    (lambda f: -torch.log(torch.sigmoid(f)).mean(), "log(sigmoid(l)) is log(0)"),
    (lambda f: -torch.log(f).mean(), "not probabilities"),
    (lambda f: -_ls(f), "one loss per example"),
]


@pytest.mark.parametrize("fn, hint", G_LOSS_MISTAKES, ids=[h for _, h in G_LOSS_MISTAKES])
def test_check_generator_loss_names_the_mistake(fn, hint):
    msg = _failure(checks.check_generator_loss, fn)
    assert hint in msg and msg.startswith("generator_loss is wrong on case "), msg
    assert "fake_logits of shape (" in msg, msg


def _round(g, d, opt_g, opt_d, real, z, *, detach=True, zero="dg", order="dg", fresh=False,
           saturating=False, early_g_loss=False, steps_g=1, ret="items"):  # fmt: skip
    """A round of the game with one classic mistake or another (the defaults: a right one)."""
    fake = g(z)
    loss_d = gan.discriminator_loss(d(real), d(fake.detach() if detach else fake))
    loss_g = gan.generator_loss(d(fake), saturating=saturating) if early_g_loss else None

    def update_d():
        if "d" in zero:
            opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

    def update_g():
        nonlocal loss_g
        if loss_g is None:
            loss_g = gan.generator_loss(d(g(z) if fresh else fake), saturating=saturating)
        if "g" in zero:
            opt_g.zero_grad()
        loss_g.backward()
        for _ in range(steps_g):
            opt_g.step()

    for who in order:
        update_d() if who == "d" else update_g()
    if loss_g is None:  # G never updated
        loss_g = gan.generator_loss(d(fake))
    if ret == "tensors":
        return loss_d, loss_g
    if ret == "swapped":
        return loss_g.item(), loss_d.item()
    return loss_d.item(), loss_g.item()


def _round_zeroing_first(g, d, opt_g, opt_d, real, z):
    """Both players' gradients zeroed once at the start, the fakes not detached."""
    opt_g.zero_grad()
    opt_d.zero_grad()
    return _round(g, d, opt_g, opt_d, real, z, detach=False, zero="", fresh=True)


def _round_returning_nothing(*args):
    _round(*args)


def _round_not_written(*args):
    raise NotImplementedError()


STEP_MISTAKES = [
    (_round_zeroing_first, "Detach the fakes in D's update"),
    (lambda *a: _round(*a, detach=False), "freed that part of the graph"),
    (lambda *a: _round(*a, zero="g"), "the discriminator's gradients accumulate"),
    (lambda *a: _round(*a, zero="d"), "the generator's gradients accumulate"),
    (lambda *a: _round(*a, early_g_loss=True), "G's loss was computed through D before"),
    (lambda *a: _round(*a, order="gd"), "G moved first"),
    (lambda *a: _round(*a, order="d"), "opt_g.step() was never called"),
    (lambda *a: _round(*a, steps_g=2), "opt_g.step() was called 2 times"),
    (lambda *a: _round(*a, saturating=True), "the non-saturating one"),
    (lambda *a: _round(*a, ret="tensors"), "as Python floats"),
    (lambda *a: _round(*a, ret="swapped"), "the two losses are swapped"),
    (_round_returning_nothing, "did you forget `return loss_d.item()"),
    (_round_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", STEP_MISTAKES, ids=[h for _, h in STEP_MISTAKES])
def test_check_gan_training_step_names_the_mistake(fn, hint):
    msg = _failure(checks.check_gan_training_step, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert msg.startswith("gan_training_step is wrong on case 1 of 3: linear networks"), msg
        assert "real of shape (6, 4), z of shape (6, 2)" in msg and "Hint: " in msg, msg


def test_check_gan_training_step_says_which_call():
    msg = _failure(checks.check_gan_training_step, STEP_MISTAKES[2][0])  # D never zeroed
    assert "On its second call (the next batch, right after the first round)" in msg, msg
    msg = _failure(checks.check_gan_training_step, STEP_MISTAKES[0][0])  # no detach
    assert "On its first call (fresh networks)" in msg, msg


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_gan_references_pass_with_any_seed_and_other_right_rounds(seed, capsys):
    checks.check_discriminator_loss(D_LOSS, seed=seed)
    checks.check_generator_loss(functools.partial(gan.generator_loss), seed=seed)
    checks.check_gan_training_step(checks._reference_gan_training_step, seed=seed)
    # G's update on a freshly computed G(z), or both players zeroed at the start, is right too
    checks.check_gan_training_step(lambda *a: _round(*a, fresh=True), seed=seed)
    checks.check_gan_training_step(
        lambda g, d, og, od, x, z: (og.zero_grad(), _round(g, d, og, od, x, z, zero="d"))[1],
        seed=seed,
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "✓ discriminator_loss: all 5 cases match the reference.",
        "✓ generator_loss: all 5 cases match the reference.",
        *["✓ gan_training_step: all 3 cases match the reference."] * 3,
    ]


# ----------------------------------------------------------------------------- chapter 07


def _onehot(y, k, z):
    return F.one_hot(y, k).to(z)


INPUT_MISTAKES = [
    (lambda z, y, k: torch.cat([z, y[:, None].to(z)], 1), "as a one-hot vector"),
    (lambda z, y, k: torch.cat([z, y[:, None].to(z) / (k - 1)], 1), "as a one-hot vector"),
    (lambda z, y, k: torch.cat([_onehot(y, k, z), z], 1), "z first, then the one-hot part"),
    (lambda z, y, k: torch.cat([z, F.one_hot(y).to(z)], 1), "without num_classes"),
    (lambda z, y, k: torch.cat([z, _onehot(y, k, z)], 0), "along the features, dim=1"),
    (lambda z, y, k: torch.cat([z.detach(), _onehot(y, k, z)], 1), "cut off from autograd"),
    (lambda z, y, k: _onehot(y, k, z), "z, then the one-hot label"),
]


@pytest.mark.parametrize("fn, hint", INPUT_MISTAKES, ids=[h for _, h in INPUT_MISTAKES])
def test_check_conditional_input_names_the_mistake(fn, hint):
    msg = _failure(checks.check_conditional_input, fn)
    assert hint in msg and msg.startswith("conditional_input is wrong on case "), msg
    assert "z of shape (" in msg and "n_classes=" in msg, msg


def _unconditional(h, y, w, b, e):
    return h @ w + b


PROJECTION_MISTAKES = [
    (_unconditional, "the projection term is missing"),
    (lambda h, y, w, b, e: _unconditional(h, y, w, b, e) + (e[y] * h).sum(), "per example"),
    (lambda h, y, w, b, e: _unconditional(h, y, w, b, e) + e[y] @ h.T, "its diagonal"),
    (lambda h, y, w, b, e: _unconditional(h, y, w, b, e) + (e[y] * h).sum(0), "per example"),
    (lambda h, y, w, b, e: _unconditional(h, y, w, b, e) + (e[y] * h).mean(1), "not a mean"),
    (lambda h, y, w, b, e: h @ w + (e[y] * h).sum(1), "the bias b is missing"),
    (lambda h, y, w, b, e: _unconditional(h, y, w, b, e) + (e[y] * w).sum(1), "not with the w"),
    (lambda h, y, w, b, e: (h @ w + b + (e[y] * h).sum(1))[:, None], ".squeeze(1)"),
    (lambda h, y, w, b, e: h @ w + b + (e[y].detach() * h).sum(1), "with respect to embedding"),
]


@pytest.mark.parametrize("fn, hint", PROJECTION_MISTAKES, ids=[h for _, h in PROJECTION_MISTAKES])
def test_check_projection_logit_names_the_mistake(fn, hint):
    msg = _failure(checks.check_projection_logit, fn)
    assert hint in msg and msg.startswith("projection_logit is wrong on case "), msg
    assert "h of shape (" in msg and "embedding of shape (" in msg, msg


def _digits(g, m, k, zd, rng, *, labels=None, z=None, mapping=None, no_grad=True, ret=None):
    n = m * k
    y = torch.arange(n) % k if labels is None else labels(n, k, rng)
    z = torch.randn(n, zd, generator=rng) if z is None else z(n, zd)
    with torch.no_grad() if no_grad else nullcontext():
        x = g(z, y)
    x = (x + 1) / 2 if mapping is None else mapping(x)
    return (x, y) if ret is None else ret(x, y)


SYNTHETIC_MISTAKES = [
    (lambda *a: _digits(*a, mapping=lambda x: x), "map them with (x + 1) / 2"),
    (lambda *a: _digits(*a, mapping=lambda x: x.clamp(0, 1)), "don't cut off the negative half"),
    (lambda *a: _digits(*a, no_grad=False), "generate under torch.no_grad()"),
    (
        lambda *a: _digits(*a, labels=lambda n, k, r: torch.arange(k).repeat_interleave(n // k)),
        "not in the order asked for",
    ),
    (
        lambda *a: _digits(*a, labels=lambda n, k, r: torch.randint(0, k, (n,), generator=r)),
        "The labels are not balanced",
    ),
    (lambda *a: _digits(*a, z=lambda n, zd: torch.randn(n, zd)), "draw the noise exactly as"),
    (lambda *a: _digits(*a, ret=lambda x, y: (y, x)), "images and labels are swapped"),
    (lambda *a: _digits(*a, ret=lambda x, y: (x, y.float())), "not torch.int64"),
    (lambda *a: _digits(*a, ret=lambda x, y: x), "not a pair (images, labels)"),
    (lambda *a: _digits(*a, ret=lambda x, y: (x[:, 0], y)), "Expected images of shape"),
]


@pytest.mark.parametrize("fn, hint", SYNTHETIC_MISTAKES, ids=[h for _, h in SYNTHETIC_MISTAKES])
def test_check_synthetic_digits_names_the_mistake(fn, hint):
    msg = _failure(checks.check_synthetic_digits, fn)
    assert hint in msg and msg.startswith("synthetic_digits is wrong on case 1 of 4: "), msg
    assert "images of shape (30, 1, 28, 28), labels of shape (30,)" in msg, msg


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chapter_07_references_pass_with_any_seed(seed, capsys):
    checks.check_conditional_input(_conditional_input_reference, seed=seed)
    checks.check_projection_logit(_projection_logit_reference, seed=seed)
    checks.check_synthetic_digits(_synthetic_reference, seed=seed)
    # float64 answers are right too
    checks.check_conditional_input(
        lambda z, y, k: torch.cat([z.double(), F.one_hot(y, k).double()], 1), seed=seed
    )
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "✓ conditional_input: all 5 cases match the reference.",
        "✓ projection_logit: all 4 cases match the reference.",
        "✓ synthetic_digits: all 4 cases match the reference.",
        "✓ conditional_input: all 5 cases match the reference.",
    ]


def test_the_gan_checks_leave_the_learners_random_state_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.check_gan_training_step(checks._reference_gan_training_step)
    checks.check_synthetic_digits(_synthetic_reference)
    _failure(
        checks.check_synthetic_digits, lambda *a: _digits(*a, z=lambda n, zd: torch.randn(n, zd))
    )
    checks.check_discriminator_loss(D_LOSS)
    assert torch.equal(torch.get_rng_state(), state)
