"""Chapter 05: variational autoencoders (Kingma and Welling 2014; Rezende et al. 2014).

A VAE models binarised digits ``x`` with a latent code ``z ~ p(z) = N(0, I)`` and a decoder
``p(x | z) = Bernoulli(sigmoid(decode(z)))``; an encoder ``q(z | x) = N(mu, diag(sigma^2))``
approximates the posterior. Training maximises the evidence lower bound (ELBO):

    log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z))          (= ELBO)

so the loss is the negative ELBO, in nats per image. ``ConditionalVAE`` is the same model given
the digit's class as well (Sohn et al. 2015), so that ``sample(n, labels)`` draws chosen digits.

Shapes: ``x`` is ``N x 1 x 28 x 28`` with 0/1 pixels (``data.binarize``), ``z`` is ``N x D``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import binarize, binarized_digits, check_digit_images, digits
from course_lib.models import DigitGenerator
from course_lib.runtime import seed_everything
from course_lib.train import train

# ----------------------------------------------------------------------------- the three terms


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A sample ``z ~ N(mu, diag(exp(logvar)))`` through which gradients reach ``mu`` and
    ``logvar``: the randomness is moved into ``eps``, which does not depend on them.

    ``mu``, ``logvar``: ``N x D``. ``eps`` is drawn as ``torch.randn(mu.shape,
    generator=generator)`` on the generator's device (the CPU by default), then moved to
    ``mu``'s device: a seeded generator gives the same ``z`` everywhere.
    """
    where = generator.device if generator is not None else torch.device("cpu")
    eps = torch.randn(mu.shape, generator=generator, device=where).to(mu)
    # z = mu + sigma * eps,   sigma = exp(logvar / 2)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(sigma^2)) || N(0, I))`` per example, in nats: ``N x D -> N``.

    Closed form for two Gaussians, summed over the ``D`` latent dimensions.
    """
    # KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` per example for 0/1 pixels ``x`` and decoder ``logits``: ``N`` nats."""
    # log p(x|z) = sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)],  p_i = sigmoid(logit_i)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -bce.flatten(1).sum(dim=1)


def gaussian_log_density(z: torch.Tensor, mu=None, logvar=None) -> torch.Tensor:
    """``log N(z; mu, diag(exp(logvar)))`` summed over the last dimension (``N(0, I)`` by
    default): ``... x D -> ...``."""
    mu = torch.zeros_like(z) if mu is None else mu
    logvar = torch.zeros_like(z) if logvar is None else logvar
    # log N(z; mu, s^2) = -1/2 [log(2 pi) + log s^2 + (z - mu)^2 / s^2]
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


# ----------------------------------------------------------------------------- the networks


class VAE(DigitGenerator):
    """A convolutional VAE for 28 x 28 digits.

    Encoder: ``1 x 28 x 28 -> (32 x 14 x 14) -> (64 x 7 x 7) -> hidden -> (mu, logvar)``;
    decoder: the mirror image with transposed convolutions, ending in Bernoulli logits.
    With ``n_classes > 0`` the one-hot class is given to both (``ConditionalVAE``).
    """

    def __init__(
        self, z_dim: int = 16, widths=(32, 64), hidden: int = 256, n_classes: int = 0
    ) -> None:
        super().__init__()
        c1, c2 = widths
        self.z_dim, self.conditional = z_dim, n_classes > 0
        self.n_classes = n_classes or 10
        k = n_classes
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),  # 28x28 -> 14x14
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # 14x14 -> 7x7
            nn.Flatten(),  # c2 x 7 x 7 -> 49*c2
        )  # fmt: skip
        self.to_stats = nn.Sequential(
            nn.Linear(49 * c2 + k, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(z_dim + k, hidden), nn.ReLU(),
            nn.Linear(hidden, 49 * c2), nn.ReLU(),
            nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # 7x7 -> 14x14
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),  # 14x14 -> 28x28 logits
        )  # fmt: skip

    def _with_labels(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not self.conditional:
            if labels is not None:
                raise ValueError("this VAE is unconditional: call it without labels")
            return h
        if labels is None:
            raise ValueError("a conditional VAE needs the labels (N class indices)")
        return torch.cat([h, F.one_hot(labels, self.n_classes).to(h)], dim=1)

    def encode(self, x: torch.Tensor, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (``N x 1 x 28 x 28``) -> ``(mu, logvar)`` of ``q(z | x)``, each ``N x D``."""
        check_digit_images(x)
        stats = self.to_stats(self._with_labels(self.encoder(x), labels))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        """``z`` (``N x D``) -> Bernoulli logits of ``p(x | z)``, ``N x 1 x 28 x 28``."""
        return self.decoder(self._with_labels(z, labels))

    def forward(self, x: torch.Tensor, labels=None):
        """``x -> (logits, mu, logvar)`` with ``z`` drawn by ``reparameterize``."""
        mu, logvar = self.encode(x, labels)
        return self.decode(reparameterize(mu, logvar), labels), mu, logvar

    def loss(self, x: torch.Tensor, labels=None, beta: float = 1.0) -> dict[str, torch.Tensor]:
        """The negative ELBO, mean over the batch, in nats per image (``beta`` weighs the KL:
        ``beta = 1`` is the true bound).

        Returns ``{"loss": -ELBO_beta, "reconstruction": -E_q log p(x|z), "kl": KL}``."""
        logits, mu, logvar = self(x, labels)
        reconstruction = -bernoulli_log_likelihood(logits, x).mean()
        kl = kl_divergence(mu, logvar).mean()
        # -ELBO = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z))
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}

    @torch.no_grad()
    def nll(self, x: torch.Tensor, k: int = 500, labels=None, chunk: int = 100) -> torch.Tensor:
        """Importance-weighted estimate of ``-log p(x)`` per image, in nats (Burda et al. 2016):

            log p(x) ~ log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x)

        a lower bound on ``log p(x)`` that tightens as ``k`` grows (``k = 1``: the ELBO).
        Returns ``N`` values (on the CPU); ``chunk`` samples are decoded at a time.
        """
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        was_training = self.training
        self.eval()
        out = []
        for i in range(len(x)):
            xi = x[i : i + 1].to(self.device)
            li = None if labels is None else labels[i : i + 1].to(self.device)
            mu, logvar = self.encode(xi, li)
            log_w = []
            for start in range(0, k, chunk):
                m = min(chunk, k - start)
                z = reparameterize(mu.expand(m, -1), logvar.expand(m, -1))
                lab = None if li is None else li.expand(m)
                log_px_z = bernoulli_log_likelihood(self.decode(z, lab), xi.expand(m, -1, -1, -1))
                # log w = log p(x|z) + log p(z) - log q(z|x)
                log_w.append(
                    log_px_z + gaussian_log_density(z) - gaussian_log_density(z, mu, logvar)
                )
            log_w = torch.cat(log_w)
            out.append(-(torch.logsumexp(log_w, 0) - math.log(k)))
        self.train(was_training)
        return torch.stack(out).cpu()

    def draw(self, n, labels, generator):
        """The decoder's mean image ``sigmoid(decode(z))`` for ``z ~ N(0, I)``."""
        z = self.noise(n, self.z_dim, generator=generator)
        return torch.sigmoid(self.decode(z, labels))


class ConditionalVAE(VAE):
    """A VAE given the class too: ``q(z | x, y)``, ``p(x | z, y)``; ``sample(n, labels)``."""

    def __init__(self, z_dim: int = 16, widths=(32, 64), hidden: int = 256) -> None:
        super().__init__(z_dim, widths, hidden, n_classes=10)


# ----------------------------------------------------------------------------- training


def vae_step(
    model: VAE, optimizer: torch.optim.Optimizer, beta=1.0, binarized: bool = False, augment=None
):
    """The step of a VAE on a batch ``(x,)`` or ``(x, y)`` (labels, for a conditional one).

    ``augment`` (optional) transforms the intensities first (e.g. small rotations and shifts);
    then, unless ``binarized``, each digit is binarised afresh (``data.binarize``). ``beta`` is
    a number or a function of the step number (a KL warm-up). Logs the loss, its two terms and
    ``beta``."""
    count = {"step": 0}

    def step(batch):
        x = batch[0] if augment is None else augment(batch[0]).clamp(0, 1)
        x = x if binarized else binarize(x)
        labels = batch[1] if model.conditional else None
        b = beta(count["step"]) if callable(beta) else beta
        terms = model.loss(x, labels, beta=b)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        count["step"] += 1
        return {**{k: v.item() for k, v in terms.items()}, "beta": b}

    return step


@dataclass(frozen=True)
class VAERecipe:
    """Everything that decides a trained VAE (``conditional=True``: a ``ConditionalVAE``)."""

    z_dim: int = 16
    widths: tuple[int, int] = (32, 64)
    hidden: int = 256
    conditional: bool = False
    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 0  # beta rises linearly from 0 to 1 over these steps (KL warm-up)
    seed: int = 0

    def build(self) -> VAE:
        cls = ConditionalVAE if self.conditional else VAE
        return cls(self.z_dim, self.widths, self.hidden)

    def beta(self, step: int) -> float:
        return 1.0 if self.warmup_steps <= 0 else min(1.0, step / self.warmup_steps)


def train_vae(recipe: VAERecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train a VAE with ``recipe`` on the 4,000 training digits, binarised afresh each epoch.

    Returns ``(model in eval mode, history)``; ``train_kwargs`` go to ``train`` (e.g.
    ``max_seconds``, ``checkpoint``, ``evaluate``)."""
    seed_everything(recipe.seed)
    x, y = digits("train")
    model = recipe.build()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    step = vae_step(model, opt, beta=recipe.beta)
    model, history = train(model, step, (x, y), batch_size=recipe.batch_size, steps=recipe.steps,
                           optimizers=opt, device=device, seed=recipe.seed, progress=progress,
                           desc="VAE", **train_kwargs)  # fmt: skip
    return model.eval(), history


@torch.no_grad()
def test_negative_elbo(model: VAE, seed: int = 0) -> float:
    """The mean negative ELBO (nats per image) of the 1,000 binarised held-out digits, with one
    ``z`` per digit drawn from a seeded generator."""
    x, y = binarized_digits("test")
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    labels = y.to(model.device) if model.conditional else None
    mu, logvar = model.encode(x.to(model.device), labels)
    logits = model.decode(reparameterize(mu, logvar, gen), labels)
    nelbo = -bernoulli_log_likelihood(logits, x.to(model.device)) + kl_divergence(mu, logvar)
    model.train(was_training)
    return nelbo.mean().item()
