"""Checks of exercise 05 (variational autoencoders), PyTorch: ``check_reparameterize``,
``check_kl_divergence`` and ``check_negative_elbo``, each a table of cases and classic mistakes
on ``check_torch_function``.
The references are the library's, ``course_lib.generative.vae``."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from course_lib.checks.core import graded_without
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.generative.vae import bernoulli_log_likelihood
from course_lib.generative.vae import kl_divergence as _kl_reference
from course_lib.generative.vae import negative_elbo as _negative_elbo_reference
from course_lib.generative.vae import reparameterize as _reparameterize_reference


def _latents(gen: torch.Generator, n: int, d: int, spread: float = 1.0):
    """``mu`` and ``logvar``, both ``n x d``; ``logvar`` about ``±spread``."""
    return torch.randn(n, d, generator=gen), spread * torch.randn(n, d, generator=gen)


# ----------------------------------------------------------------------------- KL divergence


def _kl_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)
    prior = torch.zeros(3, 4)
    return [
        TorchCase("4 examples, a 2-dimensional latent", _latents(gen, 4, 2)),
        TorchCase("one example (N = 1), 8 latent dimensions", _latents(gen, 1, 8)),
        TorchCase("16 examples, 32 latent dimensions", _latents(gen, 16, 32)),
        TorchCase("mu = 0 and logvar = 0: q is the prior itself, KL = 0", (prior, prior)),
        TorchCase("wide and narrow posteriors, logvar ~ 4·N(0, 1)", _latents(gen, 6, 5, 4.0)),
    ]


_KL_MISTAKES = [
    ("the sign is wrong: a KL divergence is ≥ 0. KL = 0.5·Σ_j (mu_j² + σ_j² − 1 − log σ_j²).",
     lambda mu, lv: -_kl_reference(mu, lv)),
    ("logvar is log σ², not the standard deviation σ: σ² = exp(logvar), log σ² = logvar.",
     lambda mu, lv: 0.5 * (mu**2 + lv**2 - 1 - torch.log(lv**2)).sum(1)),
    ("logvar is log σ², not the variance σ²: σ² = exp(logvar), and log σ² is logvar itself.",
     lambda mu, lv: 0.5 * (mu**2 + lv - 1 - torch.log(lv)).sum(1)),
    ("the variance is σ² = exp(logvar): you used logvar itself in its place.",
     lambda mu, lv: 0.5 * (mu**2 + lv - 1 - lv).sum(1)),
    ("the factor 0.5 is missing: KL = 0.5·Σ_j (mu_j² + σ_j² − 1 − log σ_j²).",
     lambda mu, lv: 2 * _kl_reference(mu, lv)),
    ("you averaged over the latent dimensions: sum over them (.sum(dim=1)). They are "
     "independent, so their KL divergences add up.",
     lambda mu, lv: _kl_reference(mu, lv) / mu.shape[1] if mu.shape[1] > 1 else None),
    ("the − 1 is missing: KL = 0.5·Σ_j (mu_j² + σ_j² − 1 − log σ_j²), 0 when q is the prior.",
     lambda mu, lv: _kl_reference(mu, lv) + 0.5 * mu.shape[1]),
]  # fmt: skip


def _kl_shape_hint(case: TorchCase, shape: tuple) -> str:
    n, d = case.args[0].shape
    if len(shape) <= 1 and math.prod(shape) == 1:
        return (
            f"you summed or averaged over the batch: return one KL per example, shape (N,) = "
            f"({n},), summed over the latent dimensions only (.sum(dim=1)); the loss averages "
            f"over the batch later."
        )
    if shape == (n, d):
        return "sum over the latent dimensions, .sum(dim=1): one KL per example."
    if shape == (n, 1):
        return "drop keepdim=True: one KL per example, a tensor of shape (N,)."
    if shape == (d,):
        return "you summed over the batch (dim=0): sum over the latent dimensions, dim=1."
    return f"return one KL per example: a tensor of shape (N,) = ({n},)."


def check_kl_divergence(kl_divergence: Callable, seed: int = 0) -> None:
    """Check ``kl_divergence(mu, logvar) -> (N,)``: KL(N(mu, diag(exp(logvar))) || N(0, I))
    per example, summed over the latent dimensions, ``0.5 * (mu² + exp(logvar) − 1 − logvar)``
    summed over dim 1; its value and its gradients with respect to ``mu`` and ``logvar``."""
    # the course's own kl_divergence is switched off while it runs: calling it is no answer
    kl_divergence = graded_without(kl_divergence, "generative.vae.kl_divergence")
    check_torch_function(
        kl_divergence,
        "kl_divergence",
        _kl_cases(seed),
        _kl_reference,
        _KL_MISTAKES,
        arg_names=("mu", "logvar"),
        output="KL divergence",
        shape_hint=_kl_shape_hint,
        gradient_formula="It should be mu·v[:, None] for mu and 0.5·(exp(logvar) − 1)·v[:, None] "
        "for logvar.",
    )


# ----------------------------------------------------------------------------- reparameterisation


def _reparameterize_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)
    unit = (torch.randn(5, 6, generator=gen), torch.zeros(5, 6))
    s = 1000 * seed
    return [
        TorchCase("8 examples, a 4-dimensional latent", _latents(gen, 8, 4), seed=s + 1),
        TorchCase("one example (N = 1), 3 latent dimensions", _latents(gen, 1, 3), seed=s + 2),
        TorchCase("64 examples, 16 latent dimensions", _latents(gen, 64, 16), seed=s + 3),
        TorchCase("logvar = 0: unit variances", unit, seed=s + 4),
        TorchCase("wide and narrow posteriors, logvar ~ 4·N(0, 1)", _latents(gen, 32, 8, 4.0),
                  seed=s + 5),
    ]  # fmt: skip


def _eps(mu: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(mu.shape, generator=generator).to(mu)


_REPARAMETERIZE_MISTAKES = [
    ("exp(logvar) is the variance σ²; the noise is scaled by the standard deviation "
     "σ = exp(0.5·logvar).",
     lambda mu, lv, g: mu + lv.exp() * _eps(mu, g)),
    ("logvar is log σ², not the standard deviation: scale the noise by σ = exp(0.5·logvar).",
     lambda mu, lv, g: mu + lv * _eps(mu, g)),
    ("you returned mu: add the noise, z = mu + exp(0.5·logvar)·eps.",
     lambda mu, lv, g: mu),
    ("you added eps without scaling it: z = mu + σ·eps with σ = exp(0.5·logvar).",
     lambda mu, lv, g: mu + _eps(mu, g)),
    ("the numbers are right, but no gradient flows through them to mu and logvar: a draw such "
     "as torch.normal(mu, std) or Normal(mu, std).sample() (or one from detached mu and logvar) "
     "gives none. That is what the reparameterisation is for: z = mu + std·eps, with eps drawn "
     "on its own.",
     lambda mu, lv, g: (mu + (0.5 * lv).exp() * _eps(mu, g)).detach()),
]  # fmt: skip


def _noise_looks_right(case: TorchCase, z: np.ndarray) -> str | None:
    """Wrong numbers, but z = mu + σ·eps with eps that looks standard normal: another draw."""
    mu, logvar = (a.double().numpy() for a in case.args)
    eps = (z - mu) / np.exp(0.5 * logvar)
    n = eps.size
    if n < 8 or abs(eps.mean()) > 3 / math.sqrt(n) or abs(eps.std() - 1) > 3 / math.sqrt(2 * n):
        return None
    return (
        f"your numbers differ from the reference's, but (z − mu) / exp(0.5·logvar) looks like "
        f"standard normal noise (mean {eps.mean():.2f}, standard deviation {eps.std():.2f}): "
        f"the formula may well be right, with other random numbers. To compare, this check "
        f"needs eps drawn exactly as eps = torch.randn(mu.shape, generator=generator): with "
        f"the generator you were given, the shape of mu, in float32 on the CPU, in one call "
        f"(not torch.randn_like(mu), not without the generator, not one row at a time)."
    )


def check_reparameterize(reparameterize: Callable, seed: int = 0) -> None:
    """Check ``reparameterize(mu, logvar, generator) -> z = mu + exp(0.5·logvar)·eps``: the
    value and the gradients with respect to ``mu`` and ``logvar``.

    To be comparable with the reference, ``eps`` must be drawn exactly as
    ``eps = torch.randn(mu.shape, generator=generator)`` (float32, on the CPU, one call; then
    ``.to(mu)`` if needed): each case passes a freshly seeded generator, seeded alike for the
    reference.
    """
    # the course's own reparameterize is switched off while it runs: calling it is no answer
    reparameterize = graded_without(reparameterize, "generative.vae.reparameterize")
    check_torch_function(
        reparameterize,
        "reparameterize",
        _reparameterize_cases(seed),
        _reparameterize_reference,
        _REPARAMETERIZE_MISTAKES,
        arg_names=("mu", "logvar"),
        output="sample z",
        extra_value_hint=_noise_looks_right,
        cut_off_hint="z must stay connected to mu and logvar: no .detach(), torch.no_grad() or "
        "Normal(...).sample(); compute z = mu + exp(0.5·logvar)·eps with torch operations, eps = "
        "torch.randn(mu.shape, generator=generator).",
        gradient_formula="It should be v for mu and 0.5·exp(0.5·logvar)·eps·v for logvar.",
    )


# ----------------------------------------------------------------------------- negative ELBO


def _elbo_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)

    def case(label, n, d, tags=()):
        logits = 2 * torch.randn(n, 1, 28, 28, generator=gen)
        x = (torch.rand(n, 1, 28, 28, generator=gen) < 0.2).float()
        mu, logvar = _latents(gen, n, d)
        return TorchCase(label, (logits, x, mu, logvar), grad=("logits", "mu", "logvar"),
                         tags=tags)  # fmt: skip

    return [
        case("4 digits, a 2-dimensional latent", 4, 2),
        case("one digit (N = 1), 8 latent dimensions", 1, 8, {"single"}),
        case("16 digits, 16 latent dimensions", 16, 16),
    ]


def _rec(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) per image."""
    return -bernoulli_log_likelihood(z, x)


_ELBO_MISTAKES = [
    ("the KL term has the wrong sign: the ELBO is E[log p(x|z)] − KL, so the loss, the negative "
     "ELBO, is reconstruction + KL (both ≥ 0).",
     lambda z, x, mu, lv: (_rec(z, x) - _kl_reference(mu, lv)).mean()),
    ("the KL term is missing: the negative ELBO is the reconstruction loss PLUS "
     "KL(q(z|x) || p(z)); without it the VAE is a plain autoencoder.",
     lambda z, x, mu, lv: _rec(z, x).mean()),
    ("the reconstruction term is missing: the negative ELBO is −log p(x|z) (the binary "
     "cross-entropy summed over the pixels) plus the KL.",
     lambda z, x, mu, lv: _kl_reference(mu, lv).mean()),
    ("you averaged the reconstruction over the pixels: sum it over the 784 pixels (nats per "
     "image, like the KL, which is summed over the latent dimensions); otherwise the KL "
     "outweighs it 784 times and the VAE ignores its input.",
     lambda z, x, mu, lv: (_rec(z, x) / 784 + _kl_reference(mu, lv)).mean()),
    ("you averaged the KL over the latent dimensions: sum it (.sum(dim=1)).",
     lambda z, x, mu, lv: (_rec(z, x) + _kl_reference(mu, lv) / mu.shape[1]).mean()
     if mu.shape[1] > 1 else None),
    ("you summed over the batch: average over the N images (nats per image).",
     lambda z, x, mu, lv: (_rec(z, x) + _kl_reference(mu, lv)).sum() if len(z) > 1 else None),
    ("the decoder gives logits, not probabilities: don't apply the sigmoid before "
     "binary_cross_entropy_with_logits.",
     lambda z, x, mu, lv: (_rec(torch.sigmoid(z), x) + _kl_reference(mu, lv)).mean()),
]  # fmt: skip


def check_negative_elbo(negative_elbo: Callable, seed: int = 0) -> None:
    """Check ``negative_elbo(logits, x, mu, logvar)``: the mean over the batch of
    ``−log p(x|z)`` (binary cross-entropy of the decoder's ``logits`` against the 0/1 pixels
    ``x``, summed over the pixels) plus ``KL(N(mu, exp(logvar)) || N(0, I))`` (summed over the
    latent dimensions); its value and its gradients with respect to ``logits``, ``mu`` and
    ``logvar``."""
    # the course's own negative_elbo is switched off while it runs: calling it is no answer
    negative_elbo = graded_without(negative_elbo, "generative.vae.negative_elbo")
    check_torch_function(
        negative_elbo,
        "negative_elbo",
        _elbo_cases(seed),
        _negative_elbo_reference,
        _ELBO_MISTAKES,
        arg_names=("logits", "x", "mu", "logvar"),
        output="negative ELBO",
        shape_hint=lambda case, shape: (
            "return one number, the mean over the batch of (reconstruction + KL) per image."
        ),
    )
