"""The checks of chapters 08 and 09 (check_psnr, check_add_noise, check_residual_loss,
check_masked_mse, check_pixel_shuffle, check_wiener_deconvolve): a right answer passes with one
line, each classic mistake is named, each failure says which case failed and the shapes."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import checks
from course_lib.checks.denoising import (
    _add_noise_reference,
    _residual_loss_reference,
)
from course_lib.checks.restoration import (
    _masked_mse_reference,
    _wiener_reference,
)
from course_lib.restoration import inpaint, superres


def _failure(check, fn) -> str:
    with pytest.raises(checks.CheckFailed) as info:
        check(fn)
    return str(info.value)


def _not_written(*args):
    raise NotImplementedError()


# ----------------------------------------------------------------------------- right answers


def _numpy_psnr(a, b, r):
    """The answer exercise 08 asks for, in NumPy: 10 log10(R^2 / MSE). (The check's reference,
    scikit-image's PSNR, is switched off while a learner's function runs.)"""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return 10 * np.log10(r**2 / np.mean(d**2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_references_pass_with_any_seed(seed, capsys):
    checks.check_psnr(_numpy_psnr, seed=seed)
    checks.check_add_noise(_add_noise_reference, seed=seed)
    checks.check_residual_loss(_residual_loss_reference, seed=seed)
    checks.check_masked_mse(functools.partial(_masked_mse_reference), seed=seed)
    checks.check_pixel_shuffle(functools.partial(superres.pixel_shuffle_naive), seed=seed)
    checks.check_wiener_deconvolve(_wiener_reference, seed=seed)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "✓ psnr: all 7 cases match the reference.",
        "✓ add_noise: all 5 cases match the reference.",
        "✓ residual_loss: all 4 cases match the reference.",
        "✓ masked_mse: all 5 cases match the reference.",
        "✓ pixel_shuffle: all 5 cases match the reference.",
        "✓ wiener_deconvolve: all 4 cases match the reference.",
    ]


def test_other_right_answers_pass(capsys):
    def psnr_float32(a, b, r):
        d = a.astype(np.float32) - b.astype(np.float32)
        return float(10 * np.log10(r**2 / np.mean(d.astype(np.float64) ** 2)))

    checks.check_psnr(psnr_float32)
    checks.check_add_noise(
        lambda x, s, g: torch.clamp(
            x + s[:, None, None, None] / 255 * torch.randn_like(x, generator=g), 0, 1
        )
    )
    checks.check_residual_loss(lambda m, y, x: F.mse_loss(y - m(y), x))
    checks.check_masked_mse(functools.partial(inpaint.masked_mse))
    checks.check_pixel_shuffle(lambda x, r: _axes(x.double(), r, "cab", (0, 1, 4, 2, 5, 3)))
    out = capsys.readouterr().out
    assert out.count("✓") == 5, out


# ----------------------------------------------------------------------------- PSNR


def _mse(a, b):
    return np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)


PSNR_MISTAKES = [
    (lambda a, b, r: 10 * np.log10(r / _mse(a, b)), "square the data range"),
    (lambda a, b, r: 10 * np.log10(r**2 / np.sqrt(_mse(a, b))), "not its square root"),
    (lambda a, b, r: 20 * np.log10(r**2 / _mse(a, b)), "20·log10 goes with amplitudes"),
    (lambda a, b, r: 10 * np.log(r**2 / _mse(a, b)), "base-10 logarithm"),
    (lambda a, b, r: 10 * np.log10(_mse(a, b) / r**2), "upside down"),
    (lambda a, b, r: _mse(a, b), "that is the MSE itself"),
    (lambda a, b, r: 10 * np.log10(r**2 / np.mean((a - b) ** 2)), "uint8 arithmetic wraps"),
    (lambda a, b, r: (a.astype(float) - b) ** 2, "return one number"),
    (lambda a, b, r: 10 * np.log10(r**2 / np.mean((a - b) ** 2, axis=0)), "without an axis"),
    (lambda a, b, r: torch.tensor(0.0), "returned a torch tensor"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", PSNR_MISTAKES, ids=[h for _, h in PSNR_MISTAKES])
def test_check_psnr_names_the_mistake(fn, hint):
    msg = _failure(checks.check_psnr, fn)
    assert hint in msg, msg
    if hint not in ("not written yet", "returned a torch tensor"):
        assert msg.startswith("psnr is wrong on case "), msg
        assert "estimate and target of shape (" in msg and "data_range=" in msg, msg


def test_check_psnr_reports_the_case_and_the_values():
    msg = _failure(checks.check_psnr, PSNR_MISTAKES[0][0])  # R instead of R²
    assert "case 4 of 7: images on the 0..255 scale" in msg and "expected 21.78" in msg, msg
    assert "Cases that fail: 4, 5, 6; cases that pass: 1, 2, 3, 7." in msg, msg


# ----------------------------------------------------------------------------- add_noise


def _noisy(x, s, g, *, scale=255.0, clip=True, draw=None):
    n = torch.randn(x.shape, generator=g) if draw is None else draw(x, g)
    y = x + s.reshape(-1, 1, 1, 1) / scale * n
    return y.clamp(0, 1) if clip else y


NOISE_MISTAKES = [
    (lambda x, s, g: _noisy(x, s, g, scale=1.0), "divide it by 255"),
    (lambda x, s, g: _noisy(x, s, g, clip=False), "clip the result to [0, 1]"),
    (lambda x, s, g: (x + s / 255 * torch.randn(x.shape, generator=g)).clamp(0, 1), "reshape"),
    (lambda x, s, g: _noisy(x, s**2, g, scale=255.0**2), "not its variance"),
    (
        lambda x, s, g: _noisy(x, s, g, draw=lambda x, g: torch.rand(x.shape, generator=g)),
        "torch.rand",
    ),
    (
        lambda x, s, g: _noisy(x, s, g, draw=lambda x, g: torch.randn(x.shape)),
        "draw the noise exactly",
    ),
    (
        lambda x, s, g: _noisy(x, s, g, draw=lambda x, g: torch.randn(x.shape[1:], generator=g)),
        "the same noise",
    ),
    (
        lambda x, s, g: (
            x * (1 + s.reshape(-1, 1, 1, 1) / 255 * torch.randn(x.shape, generator=g))
        ).clamp(0, 1),
        "not multiplied",
    ),
    (lambda x, s, g: _noisy(x, s, g)[:, 0], "in the shape of clean"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", NOISE_MISTAKES, ids=[h for _, h in NOISE_MISTAKES])
def test_check_add_noise_names_the_mistake(fn, hint):
    msg = _failure(checks.check_add_noise, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert msg.startswith("add_noise is wrong on case "), msg
        assert "clean of shape (" in msg and "generator=torch.Generator()" in msg, msg


def test_a_sigma_along_the_width_is_named_where_it_raises_and_where_it_does_not():
    def broadcast(x, s, g):
        return (x + s / 255 * torch.randn(x.shape, generator=g)).clamp(0, 1)

    msg = _failure(checks.check_add_noise, broadcast)
    assert msg.startswith("add_noise is wrong on case 1 of 5"), msg  # W = N there: no error
    assert "sigma.reshape(-1, 1, 1, 1)" in msg, msg
    # N = 1 broadcasts right; the others raise, or give the wrong images
    assert "Cases that fail: 1, 3, 4, 5; cases that pass: 2." in msg, msg

    def raises(x, s, g):  # what the same mistake does where W != N
        return x + s / 255 * torch.randn(x.shape[:-1] + (len(s) + 1,), generator=g)

    msg = _failure(checks.check_add_noise, raises)
    assert "It raised RuntimeError: The size of tensor a" in msg, msg
    assert "sigma.reshape(-1, 1, 1, 1)" in msg, msg


# ----------------------------------------------------------------------------- residual loss


RESIDUAL_MISTAKES = [
    (lambda m, y, x: F.mse_loss(m(y), x), "predicts the NOISE"),
    (lambda m, y, x: F.mse_loss(y + m(y), x), "not add it"),
    (lambda m, y, x: F.mse_loss(y - m(y), y), "not with the noisy one"),
    (lambda m, y, x: F.mse_loss(y - m(x), x), "not model(clean)"),
    (lambda m, y, x: F.mse_loss(y - m(y), x, reduction="sum"), "not sum"),
    (lambda m, y, x: F.l1_loss(y - m(y), x), "not its absolute value"),
    (lambda m, y, x: F.mse_loss(y - m(y), x).sqrt(), "without a square root"),
    (lambda m, y, x: F.mse_loss(y - m(y).detach(), x), "cut off from autograd"),
    (
        lambda m, y, x: F.mse_loss(y - m(y), x, reduction="none").flatten(1).mean(1),
        "one loss per image",
    ),
    (lambda m, y, x: F.mse_loss(y - m(y), x).item(), "not a torch tensor"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", RESIDUAL_MISTAKES, ids=[h for _, h in RESIDUAL_MISTAKES])
def test_check_residual_loss_names_the_mistake(fn, hint):
    msg = _failure(checks.check_residual_loss, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert msg.startswith("residual_loss is wrong on case "), msg
        assert "model=a tiny noise predictor" in msg and "noisy of shape (" in msg, msg


# ----------------------------------------------------------------------------- masked MSE


def _sq(o, t):
    return (o - t) ** 2


MASK_MISTAKES = [
    (lambda o, t, m: _sq(o, t).mean(), "over the missing pixels only"),
    (lambda o, t, m: ((1 - m) * _sq(o, t)).mean(), "not by the number of all"),
    (lambda o, t, m: (m * _sq(o, t)).sum() / m.sum(), "weighted by 1 − mask"),
    (lambda o, t, m: ((1 - m) * _sq(o, t)).sum() / (1 - m).sum(), "0/0 is NaN"),
    (lambda o, t, m: _sq(o, t)[m == 0].mean(), "0/0 is NaN"),
    (
        lambda o, t, m: (
            ((1 - m) * _sq(o, t)).flatten(1).sum(1) / (1 - m).flatten(1).sum(1).clamp_min(1)
        ).mean(),
        "you averaged each image on its own",
    ),
    (lambda o, t, m: ((1 - m) * _sq(o, t)).sum(), "a mean, not a sum"),
    (lambda o, t, m: ((1 - m) * (o - t).abs()).sum() / (1 - m).sum().clamp_min(1), "SQUARED"),
    (lambda o, t, m: ((1 - m) * _sq(o, t)).flatten(1).sum(1), "one loss per image"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", MASK_MISTAKES, ids=[h for _, h in MASK_MISTAKES])
def test_check_masked_mse_names_the_mistake(fn, hint):
    msg = _failure(checks.check_masked_mse, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert msg.startswith("masked_mse is wrong on case "), msg
        assert "output of shape (" in msg and "mask of shape (" in msg, msg


# ----------------------------------------------------------------------------- pixel shuffle


def _axes(x, r, split, order):
    n, crr, h, w = x.shape
    c = crr // (r * r)
    sizes = {"c": c, "a": r, "b": r}
    y = x.reshape(n, *(sizes[s] for s in split), h, w).permute(*order)
    return y.reshape(n, c, h * r, w * r)


SHUFFLE_MISTAKES = [
    (lambda x, r: _axes(x, r, "cab", (0, 1, 4, 3, 5, 2)), "the order of a and b is swapped"),
    (lambda x, r: _axes(x, r, "cab", (0, 1, 2, 4, 3, 5)), "row r·i + a, not a·H + i"),
    (lambda x, r: _axes(x, r, "abc", (0, 3, 4, 1, 5, 2)), "the SLOWEST part"),
    (lambda x, r: x.reshape(len(x), -1, x.shape[2] * r, x.shape[3] * r), "a reshape alone"),
    (
        lambda x, r: x.reshape(len(x), -1, r, r, *x.shape[2:]).permute(0, 1, 4, 2, 5, 3),
        "one last reshape",
    ),
    (lambda x, r: F.pixel_shuffle(x, r), "switched off in this check"),
    (lambda x, r: torch.nn.PixelShuffle(r)(x), "nn.PixelShuffle"),
    (lambda x, r: superres.pixel_shuffle(x, r), "superres.pixel_shuffle"),
    (lambda x, r: _axes(x.detach(), r, "cab", (0, 1, 4, 2, 5, 3)), "cut off from autograd"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", SHUFFLE_MISTAKES, ids=[h for _, h in SHUFFLE_MISTAKES])
def test_check_pixel_shuffle_names_the_mistake(fn, hint):
    msg = _failure(checks.check_pixel_shuffle, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert msg.startswith("pixel_shuffle is wrong on case "), msg
        assert "x of shape (" in msg and "r=" in msg, msg


def test_library_pixel_shuffle_disabled_blocks_the_library_and_puts_it_back():
    x = torch.randn(1, 4, 2, 2)
    before = F.pixel_shuffle(x, 2)
    with pytest.raises(ZeroDivisionError), checks.library_pixel_shuffle_disabled():
        for call in (
            lambda: F.pixel_shuffle(x, 2),
            lambda: torch.pixel_shuffle(x, 2),
            lambda: torch.nn.PixelShuffle(2)(x),
            lambda: superres.pixel_shuffle(x, 2),
            lambda: superres.pixel_shuffle_naive(x, 2),
        ):
            with pytest.raises(checks.LibraryPixelShuffleUsed):
                call()
        assert F.pixel_unshuffle(before, 2).shape == x.shape  # the inverse stays allowed
        raise ZeroDivisionError  # everything is put back after an error too
    assert torch.equal(F.pixel_shuffle(x, 2), before)
    assert torch.equal(torch.nn.PixelShuffle(2)(x), before)
    assert torch.equal(superres.pixel_shuffle(x, 2), before)


# ----------------------------------------------------------------------------- Wiener


def _wiener(y, K, L, lam, *, conj=True, k_power=2, l_power=2, s=True):
    Kc = K.conj() if conj else K
    X = Kc * torch.fft.rfft2(y) / (K.abs() ** k_power + lam * L.abs() ** l_power)
    return torch.fft.irfft2(X, s=y.shape[-2:] if s else None)


WIENER_MISTAKES = [
    (lambda y, K, L, lam: _wiener(y, K, L, lam, conj=False), "the complex conjugate"),
    (lambda y, K, L, lam: _wiener(y, K, L, lam, s=False), "s=(H, W)"),
    (lambda y, K, L, lam: _wiener(y, K, L, lam, k_power=1), "|K|² is the SQUARED magnitude"),
    (lambda y, K, L, lam: _wiener(y, K, L, lam, l_power=1), "|L|² is the SQUARED magnitude"),
    (lambda y, K, L, lam: _wiener(y, K, L, 0.0), "the inverse filter"),
    (
        lambda y, K, L, lam: torch.fft.irfft2(torch.fft.rfft2(y) / K, s=y.shape[-2:]),
        "inverse filter",
    ),
    (lambda y, K, L, lam: _wiener(y, K, torch.ones_like(L), lam), "not λ alone"),
    (
        lambda y, K, L, lam: K.conj() * torch.fft.rfft2(y) / (K.abs() ** 2 + lam * L.abs() ** 2),
        "It returned a complex tensor of shape",
    ),
    (
        lambda y, K, L, lam: torch.fft.ifft2(K.conj() * torch.fft.fft2(y)).real,
        "rfft2's half spectra",
    ),
    (lambda y, K, L, lam: _wiener(y.detach(), K, L, lam), "cut off from autograd"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", WIENER_MISTAKES, ids=[h for _, h in WIENER_MISTAKES])
def test_check_wiener_deconvolve_names_the_mistake(fn, hint):
    msg = _failure(checks.check_wiener_deconvolve, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert msg.startswith("wiener_deconvolve is wrong on case "), msg
        assert "blurred of shape (" in msg and "K of shape (" in msg, msg


def test_the_checks_need_the_function_itself():
    for check in (checks.check_wiener_deconvolve, checks.check_pixel_shuffle, checks.check_psnr):
        assert "needs your function itself" in _failure(check, 3)


def test_the_checks_leave_the_learners_random_state_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.check_add_noise(_add_noise_reference)
    _failure(checks.check_add_noise, NOISE_MISTAKES[5][0])  # draws from the global state
    checks.check_residual_loss(_residual_loss_reference)
    checks.check_wiener_deconvolve(_wiener_reference)
    assert torch.equal(torch.get_rng_state(), state)
