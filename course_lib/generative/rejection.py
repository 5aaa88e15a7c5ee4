"""Chapter 06, after training: discriminator rejection sampling (Azadi et al. 2019).

A trained GAN has two networks, and ``GAN.sample`` uses one. The other, ``D``, estimates the
density ratio ``p_data / p_g`` (``D* = p_data / (p_data + p_g)``), and rejection sampling with
it draws ``G``'s samples closer to the data. ``RejectionSampler(gan).sample(n)`` is a generator
like any other (``models.DigitGenerator``).
"""

from __future__ import annotations

import math

import torch

from course_lib.generative import describe
from course_lib.generative.gan import GAN
from course_lib.models import DigitGenerator, evaluating, in_batches


class RejectionSampler(DigitGenerator):
    """Discriminator rejection sampling (Azadi et al. 2019): a trained GAN's ``D`` corrects the
    samples of its ``G``. ``RejectionSampler(gan).sample(n)`` is a generator like any other.

    The optimal discriminator is ``D* = p_data / (p_data + p_g)``, so with ``D = sigmoid(l)``

        p_data(x) / p_g(x) = D*(x) / (1 - D*(x)) = exp(l(x)).

    Rejection sampling from ``p_g``: keep a sample ``x ~ p_g`` with probability ``p(x) =
    exp(l(x) - l_max)`` (``l_max``: the largest logit of ``burn_in`` samples, rounded up to
    whole batches, then fixed; a
    sample above it is kept). With ``gamma = 0`` the samples kept follow ``p_data``, as far as
    ``D`` is optimal. That keeps few (the mean of ``p``); ``gamma`` shifts the logit of the
    probability, ``logit(p) - gamma``: below 0 it keeps more, but the correction is then only
    partial (between ``p_g`` and ``p_data``); towards ``-inf`` it keeps everything (``G``).
    Unlike the paper, ``D`` is used as trained, without a calibration step. Measured on the
    shipped ``gan`` (6 draws of 1,000, judges of seeds 0 and 1; 2026-12-03): as trained, FD
    14.4 and 15.9, every class 7-13% in 5 and 6 of 6 draws; ``D`` fine-tuned for 300 steps
    against the frozen generator (Adam 2e-4, R1 0.1, batch 64), FD 21.2 and 21.8, balanced in
    1 of 6 (with the training's 2-pixel shifts: 17.9 and 19.6, 3 and 4 of 6). On 4,000 digits a
    ``D`` tuned further to one frozen ``G`` judges it worse, not better.

    Candidates are drawn ``round_batches`` batches at a time, so a seeded ``sample(m)`` is the
    start of a seeded ``sample(n)`` for ``m < n`` (on one device: a borderline decision can
    flip between a CPU and a GPU). ``D`` judges ``batch`` images at a time: the course's ``D``
    reads its whole batch (minibatch standard deviation), so ``l(x)`` depends a little on the
    other images of the batch, which should be as many as in training (64). Unconditional GANs.
    """

    def __init__(
        self, model: GAN, gamma: float = -1.0, burn_in: int = 5000, batch: int = 64,
        round_batches: int = 8,
    ) -> None:  # fmt: skip
        super().__init__()
        if not isinstance(model, GAN) or model.conditional:
            raise TypeError(
                "RejectionSampler needs an unconditional GAN (a gan.GAN, e.g. "
                f"weights.load('gan')), got {describe(model)}"
            )
        if isinstance(gamma, bool) or not isinstance(gamma, int | float):
            raise TypeError(f"gamma must be a number, got {describe(gamma)}")
        if not math.isfinite(gamma):
            raise ValueError(f"gamma must be a finite number, got {gamma!r}")
        for name, value in (
            ("burn_in", burn_in),
            ("batch", batch),
            ("round_batches", round_batches),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.model, self.gamma, self.batch = model, float(gamma), batch
        self.round_size = batch * round_batches
        _, logits = self._candidates(-(-burn_in // batch) * batch, torch.Generator().manual_seed(0))
        if not torch.isfinite(logits).all():
            raise ValueError("D gives non-finite logits to the GAN's samples: it cannot judge them")
        self.log_ratio_max = float(logits.max())
        # the share of G's samples kept: each kept sample costs 1 / rate passes of G and of D
        self.acceptance_rate = float(self.acceptance(logits).mean())
        if self.acceptance_rate < 1e-3:
            raise ValueError(
                f"with gamma={gamma} only {self.acceptance_rate:.1e} of the samples would be "
                "kept; lower gamma (e.g. -1) to keep more"
            )

    def log_ratio(self, images: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 28 x 28`` in [0, 1] -> ``N`` logits ``l(x)``: ``D``'s estimate of ``log
        p_data(x) / p_g(x)``, judged ``batch`` images at a time (in eval mode, put back after)."""
        with evaluating(self.model.discriminator) as d, torch.no_grad():
            return in_batches(d, self.batch, images * 2 - 1).reshape(-1)

    def acceptance(self, log_ratio: torch.Tensor) -> torch.Tensor:
        """The probability of keeping each sample, from its logit ``l``: ``sigmoid(logit(p) -
        gamma) = p / (p + (1 - p) e^gamma)`` with ``p = exp(l - l_max)`` (1 where ``l >=
        l_max``)."""
        p = torch.exp((log_ratio - self.log_ratio_max).clamp(max=0))
        return p / (p + (1 - p) * math.exp(self.gamma))

    def _candidates(self, k: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` samples of ``G`` (eval mode, no gradients, the GAN's mode put back) and their
        logits."""
        with evaluating(self.model), torch.no_grad():
            x = self.model.draw(k, None, generator)
            return x, self.log_ratio(x)

    def draw(self, n, labels, generator):
        where = generator.device if generator is not None else torch.device("cpu")
        kept, have, drawn = [], 0, 0
        while have < n:
            if drawn > 100 * n / self.acceptance_rate + self.round_size:
                raise RuntimeError(
                    f"kept {have} of {drawn} samples, far below the burn-in's rate "
                    f"{self.acceptance_rate:.3f}: D's logits have changed or are not finite"
                )
            x, logits = self._candidates(self.round_size, generator)
            keep = torch.rand(len(x), generator=generator, device=where).to(x.device)
            keep = keep < self.acceptance(logits)
            kept.append(x[keep])
            have, drawn = have + int(keep.sum()), drawn + len(x)
        return torch.cat(kept)[:n]
