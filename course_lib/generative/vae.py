"""Chapter 05: variational autoencoders (Kingma and Welling 2014; Rezende et al. 2014).

A VAE models binarised digits ``x`` with a latent code ``z ~ p(z) = N(0, I)`` and a decoder
``p(x | z) = Bernoulli(sigmoid(decode(z)))``; an encoder ``q(z | x) = N(mu, diag(sigma^2))``
approximates the posterior. Training maximises the evidence lower bound (ELBO):

    log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z))          (= ELBO)

so the loss is the negative ELBO, in nats per image. ``ConditionalVAE`` is the same model given
the digit's class as well (Sohn et al. 2015), so that ``sample(n, labels)`` draws chosen digits.
With ``prior_components = C > 0`` the prior is no longer fixed: ``p(z)`` is a mixture of ``C``
diagonal Gaussians learned with the networks (a learned prior, as in Tomczak and Welling 2018),
so that it can follow where the codes of the digits are instead of leaving holes in ``N(0, I)``.

Shapes: ``x`` is ``N x 1 x 28 x 28`` with 0/1 pixels (``data.binarize``), ``z`` is ``N x D``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.mixture import GaussianMixture
from torch import nn

from course_lib.augment import Compose, RandomRotation, RandomShift
from course_lib.data import binarize, binarized_digits, check_digit_images, digits
from course_lib.generative import check_codes, check_float_tensors, check_intensities, describe
from course_lib.models import DigitGenerator, evaluating, in_batches
from course_lib.runtime import seed_everything
from course_lib.train import train

# ----------------------------------------------------------------------------- the three terms


def _check_latents(mu: object, logvar: object) -> None:
    """``mu`` and ``logvar``: float tensors of one shape ``N x D`` (a ``logvar`` of shape ``D``
    or ``N x 1`` would broadcast silently)."""
    check_float_tensors("N x D", ndim=2, mu=mu, logvar=logvar)


def _check_logits_and_pixels(logits: object, x: object) -> None:
    """``logits`` and ``x``: float tensors of one shape ``N x ...`` (digits: ``N x 1 x 28 x
    28``); ``x`` may hold intensities as well as 0/1 pixels."""
    check_float_tensors("N x ... (digits: N x 1 x 28 x 28)", logits=logits, x=x)
    check_intensities("x", x)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A sample ``z ~ N(mu, diag(exp(logvar)))`` through which gradients reach ``mu`` and
    ``logvar``: the randomness is moved into ``eps``, which does not depend on them.

    ``mu``, ``logvar``: ``N x D``. ``eps`` is drawn as ``torch.randn(mu.shape,
    generator=generator)`` on the generator's device (the CPU by default), then moved to
    ``mu``'s device: a seeded generator gives the same ``z`` everywhere.
    """
    _check_latents(mu, logvar)
    where = generator.device if generator is not None else torch.device("cpu")
    eps = torch.randn(mu.shape, generator=generator, device=where).to(mu)
    # z = mu + sigma * eps,   sigma = exp(logvar / 2)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(sigma^2)) || N(0, I))`` per example, in nats: ``N x D -> N``.

    Closed form for two Gaussians, summed over the ``D`` latent dimensions.
    """
    _check_latents(mu, logvar)
    # KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` per example for 0/1 pixels ``x`` and decoder ``logits``: ``N`` nats.

    ``logits``, ``x``: float tensors of one shape ``N x ...`` (``N x 1 x 28 x 28``). ``x`` is
    not required to be binary: on intensities in [0, 1] this is minus chapter 04's binary
    cross-entropy, a loss, no longer the log-likelihood of anything."""
    _check_logits_and_pixels(logits, x)
    # log p(x|z) = sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)],  p_i = sigmoid(logit_i)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return -bce.flatten(1).sum(dim=1)


def negative_elbo(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta=1.0
) -> torch.Tensor:
    """The negative ELBO, averaged over the batch, in nats per image: ``-E_q[log p(x|z)]``
    estimated with the one ``z`` that gave the decoder's ``logits``, plus ``beta`` times the KL.

    ``logits``, ``x``: ``N x 1 x 28 x 28``; ``mu``, ``logvar``: ``N x D``. Returns a scalar.
    """
    _check_logits_and_pixels(logits, x)
    _check_latents(mu, logvar)
    if len(mu) != len(logits):
        raise ValueError(
            f"logits and mu must be of the same N images, got {len(logits)} and {len(mu)}"
        )
    # -ELBO = -log p(x|z) + beta * KL(q(z|x) || p(z)),  averaged over the N images
    return (-bernoulli_log_likelihood(logits, x) + beta * kl_divergence(mu, logvar)).mean()


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
    With ``n_classes > 0`` the one-hot class is given to both (``ConditionalVAE``). The prior
    is ``N(0, I)``, or with ``prior_components = C > 0`` a mixture of ``C`` diagonal Gaussians
    learned with the rest (``log_prior``, ``kl``, ``sample_prior``).
    """

    def __init__(
        self,
        z_dim: int = 16,
        widths=(32, 64),
        hidden: int = 256,
        n_classes: int = 0,
        prior_components: int = 0,
    ) -> None:
        super().__init__()
        if (
            isinstance(prior_components, bool)
            or not isinstance(prior_components, int)
            or prior_components < 0
        ):
            raise ValueError(
                f"prior_components must be an int >= 0 (0: N(0, I)), got {prior_components!r}"
            )
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
        # the prior p(z): N(0, I), or a learned mixture sum_c pi_c N(m_c, diag(s_c^2)) whose
        # means start spread like N(0, I) codes, its variances at 1 and its weights equal
        self.prior_components = prior_components
        if prior_components:
            self.prior_means = nn.Parameter(torch.randn(prior_components, z_dim))  # C x D
            self.prior_logvars = nn.Parameter(torch.zeros(prior_components, z_dim))  # C x D
            self.prior_logits = nn.Parameter(torch.zeros(prior_components))  # C: log pi + const

    def _with_labels(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        self._check_labels(labels, len(h))
        if not self.conditional:
            return h
        return torch.cat([h, F.one_hot(labels, self.n_classes).to(h)], dim=1)

    def _check_labels(self, labels: object, n: int) -> None:
        """Raise unless ``labels`` is what this VAE needs for ``n`` images: ``None`` when it is
        unconditional, else ``n`` class indices (an int64 tensor, values in 0..n_classes-1)."""
        if not self.conditional:
            if labels is not None:
                raise ValueError("this VAE is unconditional: call it without labels")
            return
        if labels is None:
            raise ValueError("a conditional VAE needs the labels (N class indices)")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long:
            raise TypeError(
                f"labels must be an int64 tensor of N class indices, got {describe(labels)}"
            )
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape (N,) = ({n},), got {tuple(labels.shape)}")
        if n and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must be class indices in 0..{self.n_classes - 1}")

    def encode(self, x: torch.Tensor, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (``N x 1 x 28 x 28``) -> ``(mu, logvar)`` of ``q(z | x)``, each ``N x D``."""
        check_digit_images(x)
        stats = self.to_stats(self._with_labels(self.encoder(x), labels))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        """``z`` (``N x D``) -> Bernoulli logits of ``p(x | z)``, ``N x 1 x 28 x 28``."""
        check_codes(z, self.z_dim)
        return self.decoder(self._with_labels(z, labels))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z)``, summed over the last dimension: ``... x D -> ...``."""
        if not self.prior_components:
            return gaussian_log_density(z)  # N(0, I)
        # log p(z) = logsumexp_c [log pi_c + log N(z; m_c, diag(s_c^2))]
        log_pz_c = gaussian_log_density(z[..., None, :], self.prior_means, self.prior_logvars)
        return torch.logsumexp(log_pz_c + torch.log_softmax(self.prior_logits, dim=0), dim=-1)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``KL(q(z | x) || p(z))`` per image (``N x D -> N``): the closed form
        (``kl_divergence``) for ``N(0, I)``; for a learned mixture, which has none, the
        one-sample estimate ``log q(z | x) - log p(z)`` at the ``z`` drawn from ``q``."""
        if not self.prior_components:
            return kl_divergence(mu, logvar)
        # KL ~ log q(z|x) - log p(z),  z ~ q(z|x)
        return gaussian_log_density(z, mu, logvar) - self.log_prior(z)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``z ~ p(z)``: ``n x D``, on the model's device."""
        eps = self.noise(n, self.z_dim, generator=generator)  # n x D
        if not self.prior_components:
            return eps
        c = _draw_components(torch.softmax(self.prior_logits, dim=0), n, generator)
        # z = m_c + s_c * eps,  c ~ Categorical(pi)
        return self.prior_means[c] + torch.exp(0.5 * self.prior_logvars[c]) * eps

    def forward(self, x: torch.Tensor, labels=None):
        """``x -> (logits, mu, logvar)`` with ``z`` drawn by ``reparameterize``."""
        mu, logvar = self.encode(x, labels)
        return self.decode(reparameterize(mu, logvar), labels), mu, logvar

    def loss(
        self, x: torch.Tensor, labels=None, beta: float = 1.0, samples: int = 1
    ) -> dict[str, torch.Tensor]:
        """The training loss, mean over the batch, in nats per image.

        ``samples = 1``: the negative ELBO (``beta`` weighs the KL; ``beta = 1`` is the true
        bound). ``samples = k > 1``: the importance-weighted bound of Burda et al. (2016) with
        ``k`` samples per image (tighter; ``beta`` must be 1). Returns ``{"loss", and, for the
        log, "reconstruction": -log p(x|z) and "kl": KL}`` of the first sample.
        """
        if samples > 1 and beta != 1.0:
            raise ValueError(f"the importance-weighted bound needs beta = 1, got {beta}")
        mu, logvar = self.encode(x, labels)
        n, k = len(x), samples
        mu_k, logvar_k = mu.repeat(k, 1), logvar.repeat(k, 1)  # sample-major: (k*N) x D
        z = reparameterize(mu_k, logvar_k)
        logits = self.decode(z, None if labels is None else labels.repeat(k))
        with torch.no_grad():
            reconstruction = -bernoulli_log_likelihood(logits[:n], x).mean()
            kl = self.kl(mu, logvar, z[:n]).mean()
        if k == 1:
            # -ELBO = -log p(x|z) + beta * KL(q(z|x) || p(z))  (negative_elbo for N(0, I))
            loss = (-bernoulli_log_likelihood(logits, x) + beta * self.kl(mu, logvar, z)).mean()
        else:
            log_px_z = bernoulli_log_likelihood(logits, x.repeat(k, 1, 1, 1))
            # log w = log p(x|z) + log p(z) - log q(z|x);  loss = -[logsumexp_i log w_i - log k]
            log_w = log_px_z + self.log_prior(z) - gaussian_log_density(z, mu_k, logvar_k)
            loss = -(torch.logsumexp(log_w.view(k, n), dim=0) - math.log(k)).mean()
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl}

    @torch.no_grad()
    def nll(
        self,
        x: torch.Tensor,
        k: int = 500,
        labels=None,
        generator: torch.Generator | None = None,
        batch: int = 20,
        chunk: int = 100,
    ) -> torch.Tensor:
        """Importance-weighted estimate of ``-log p(x)`` per image, in nats (Burda et al. 2016):

            log p(x) ~ log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x)

        a lower bound on ``log p(x)`` that tightens as ``k`` grows (``k = 1``: the ELBO), so
        the returned value is an upper bound on ``-log p(x)``. ``x``: ``N x 1 x 28 x 28`` 0/1
        pixels (``data.binarize``, ``data.binarized_digits``: nats on grey digits compare with
        nothing); ``labels``: ``N`` class indices (int64), for a conditional VAE only. Returns
        ``N`` values on the CPU; ``generator`` makes the estimate repeatable. The samples of
        ``batch`` images are drawn ``chunk`` at a time (ints >= 1), and decoded at most 500 codes
        at a time.
        """
        for name, v in (("k", k), ("batch", batch), ("chunk", chunk)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        _check_binarised(x)
        self._check_labels(labels, len(x))
        out = []
        with evaluating(self):
            for start in range(0, len(x), batch):
                xb = x[start : start + batch].to(self.device)
                lb = None if labels is None else labels[start : start + batch].to(self.device)
                mu, logvar = self.encode(xb, lb)  # B x D
                log_w = []
                for done in range(0, k, chunk):
                    m = min(chunk, k - done)  # m samples of each of the B images, sample-major
                    mu_m, logvar_m = mu.repeat(m, 1), logvar.repeat(m, 1)
                    z = reparameterize(mu_m, logvar_m, generator)
                    # decoded 500 codes at a time: the same logits, and on a CPU faster than 2,000
                    logits = in_batches(self.decode, 500, z, None if lb is None else lb.repeat(m))
                    log_px_z = bernoulli_log_likelihood(logits, xb.repeat(m, 1, 1, 1))
                    # log w = log p(x|z) + log p(z) - log q(z|x)
                    w = log_px_z + self.log_prior(z) - gaussian_log_density(z, mu_m, logvar_m)
                    log_w.append(w.view(m, len(xb)))
                # -log p(x) ~ -[logsumexp_i(log w_i) - log k]
                out.append(-(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)))
        return torch.cat(out).cpu()

    def draw(self, n, labels, generator):
        """The decoder's mean image ``sigmoid(decode(z))`` for ``z ~ p(z)``."""
        return torch.sigmoid(self.decode(self.sample_prior(n, generator), labels))


def _draw_components(weights: torch.Tensor, n: int, generator) -> torch.Tensor:
    """``n`` component indices ``c ~ Categorical(weights)`` (``C`` probabilities), drawn with
    ``generator`` on its own device (the CPU by default), returned on ``weights``' device."""
    where = generator.device if generator is not None else torch.device("cpu")
    c = torch.multinomial(weights.detach().to(where), n, replacement=True, generator=generator)
    return c.to(weights.device)


class ExPostPrior(DigitGenerator):
    """A trained VAE's decoder with ``z`` drawn from a Gaussian mixture fitted to the codes of
    the training digits instead of from its prior (ex-post density estimation, Ghosh et al.
    2020; the "prior hole" of Makhzani et al. 2016 and Hoffman and Johnson 2016).

    The KL term pulls each ``q(z | x)`` towards ``N(0, I)`` but cannot make the codes of all
    training digits, ``q(z) = mean_x q(z | x)``, fill it: regions of ``N(0, I)`` that no digit
    uses decode to smudges. Fitting ``p_fit(z) = sum_c pi_c N(m_c, S_c)`` (``components``
    full-covariance Gaussians, ``sklearn.mixture.GaussianMixture``) to the posterior means of
    ``x`` (the training digits as the VAE saw them, binarised; default
    ``binarized_digits("train")``) and decoding its samples avoids them. This is another
    generative model, ``p_fit(z) p(x | z)``: the VAE's ``nll`` and negative ELBO are those of
    its own prior. (A prior learned with the VAE, ``prior_components``, is the fix inside the
    model.)

    ``sample(n)``: the decoder's mean image ``sigmoid(decode(z))``, ``z ~ p_fit``.
    """

    def __init__(
        self, vae: VAE, x: torch.Tensor | None = None, components: int = 10, seed: int = 0
    ) -> None:
        super().__init__()
        if not isinstance(vae, VAE) or vae.conditional:
            raise ValueError("ExPostPrior needs an unconditional VAE")
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"components must be an int >= 1, got {components!r}")
        x = binarized_digits("train")[0] if x is None else x
        check_digit_images(x)
        if len(x) < 2 * components:
            raise ValueError(f"need at least {2 * components} digits, got {len(x)}")
        self.vae = vae
        with evaluating(vae), torch.no_grad():
            mu = in_batches(lambda b: vae.encode(b.to(vae.device))[0].cpu(), 500, x)
        gmm = GaussianMixture(components, covariance_type="full", reg_covar=1e-4,
                              random_state=seed).fit(mu.double().numpy())  # fmt: skip

        def as_tensor(a) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=vae.device)

        self.register_buffer("weights", as_tensor(gmm.weights_))  # C
        self.register_buffer("means", as_tensor(gmm.means_))  # C x D
        # S_c = L_c L_c^T: z = m_c + L_c eps, eps ~ N(0, I)
        self.register_buffer("scale_tril", torch.linalg.cholesky(as_tensor(gmm.covariances_)))

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``z ~ p_fit`` (``n x D``): ``c ~ Categorical(pi)``, ``z = m_c + L_c eps``."""
        c = _draw_components(self.weights, n, generator)
        eps = self.noise(n, self.means.shape[1], generator=generator)  # n x D
        return self.means[c] + (self.scale_tril[c] @ eps[:, :, None])[:, :, 0]

    def draw(self, n, labels, generator):
        """The decoder's mean image ``sigmoid(decode(z))`` for ``z ~ p_fit``."""
        return torch.sigmoid(self.vae.decode(self.sample_codes(n, generator)))


class ConditionalVAE(VAE):
    """A VAE given the class too: ``q(z | x, y)``, ``p(x | z, y)``; ``sample(n, labels)``."""

    def __init__(
        self, z_dim: int = 16, widths=(32, 64), hidden: int = 256, prior_components: int = 0
    ) -> None:
        super().__init__(z_dim, widths, hidden, n_classes=10, prior_components=prior_components)


# ----------------------------------------------------------------------------- training


def vae_step(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    beta=1.0,
    binarized: bool = False,
    augment=None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    samples: int = 1,
):
    """The step of a VAE on a batch ``(x,)`` or ``(x, y)`` (labels, for a conditional one).

    ``augment`` (optional) transforms the intensities first (e.g. small rotations and shifts);
    then, unless ``binarized``, each digit is binarised afresh (``data.binarize``). ``beta`` is
    a number or a function of the step number (a KL warm-up); the step number is the
    ``scheduler``'s count when there is one (it is checkpointed, so a resumed run continues
    the warm-up where it stopped). ``samples > 1`` trains on the importance-weighted bound
    with that many samples, once ``beta`` has reached 1 (before, on the ELBO).
    Logs the loss, its two terms and ``beta``."""
    count = {"step": 0}

    def step(batch):
        x = batch[0] if augment is None else augment(batch[0]).clamp(0, 1)
        x = x if binarized else binarize(x)
        labels = batch[1] if model.conditional else None
        t = scheduler.last_epoch if scheduler is not None else count["step"]
        b = beta(t) if callable(beta) else beta
        # the importance-weighted bound has the whole KL in it: during a warm-up, the ELBO
        terms = model.loss(x, labels, beta=b, samples=samples if b == 1.0 else 1)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
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
    prior_components: int = 0  # 0: p(z) = N(0, I); C > 0: a mixture of C Gaussians, learned
    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    cosine: bool = False  # anneal the learning rate to 0 along a half cosine over the steps
    beta: float = 1.0  # the weight of the KL (1: the true bound; a beta-VAE otherwise) ...
    warmup_steps: int = 0  # ... reached by rising linearly from 0 over these steps (warm-up)
    samples: int = 1  # > 1: after the warm-up, train on the importance-weighted bound
    rotation: float = 0.0  # augmentation: rotate each digit by up to this many degrees ...
    shift: int = 0  # ... and shift it by up to this many pixels, before binarising it
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples > 1 and self.beta != 1.0:
            raise ValueError("samples > 1 (the importance-weighted bound) needs beta = 1")

    def build(self) -> VAE:
        cls = ConditionalVAE if self.conditional else VAE
        return cls(self.z_dim, self.widths, self.hidden, prior_components=self.prior_components)

    def kl_weight(self, step: int) -> float:
        """The weight of the KL at optimisation step ``step``: ``beta``, after the warm-up."""
        return self.beta * (1.0 if self.warmup_steps <= 0 else min(1.0, step / self.warmup_steps))

    def optimizers(self, model: VAE) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
        """Adam, and its schedule: constant, or a half cosine from ``lr`` to 0 over ``steps``."""
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)

        def factor(t: int) -> float:
            # lr_t = lr * (1 + cos(pi t / T)) / 2
            return (
                0.5 * (1 + math.cos(math.pi * min(t, self.steps) / self.steps))
                if self.cosine
                else 1.0
            )

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def augmentation(self) -> Compose | None:
        if not (self.rotation or self.shift):
            return None
        return Compose([RandomRotation(self.rotation), RandomShift(self.shift)])


# The recipes of the shipped weights `vae` and `cvae` (python -m course_lib.weights build vae)
# (chosen on a validation split of 500 of the training digits, then trained on all 4,000)
VAE_RECIPE = VAERecipe(
    z_dim=32, widths=(32, 64), hidden=256, steps=30_000, batch_size=128, lr=2e-3, cosine=True,
    warmup_steps=3000, samples=3, rotation=8.0, shift=1,
)  # fmt: skip
CVAE_RECIPE = dataclasses.replace(
    VAE_RECIPE, conditional=True, steps=15_000, warmup_steps=1500, samples=1
)
# `vae_mixture`: the same with a prior learned with the networks, a mixture of 200 Gaussians
# (the prior that wins benchmarks/bench_generators.py's 180 s), on fewer steps to stay within
# 30 minutes: with all 30,000 steps it took 2,148 s on 2 cores (IW-500 87.76 nats, sample
# Fréchet distance 45.6; `vae`, N(0, I): 89.94 and 148.2).
VAE_MIXTURE_RECIPE = dataclasses.replace(
    VAE_RECIPE, prior_components=200, steps=22_000, warmup_steps=2200
)


def train_vae(recipe: VAERecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train a VAE with ``recipe`` on the 4,000 training digits, binarised afresh each time
    they are seen.

    Returns ``(model in eval mode, history)``; ``train_kwargs`` go to ``train`` (e.g.
    ``max_seconds``, ``checkpoint``, ``evaluate``)."""
    seed_everything(recipe.seed)
    x, y = digits("train")
    model = recipe.build()
    opt, sched = recipe.optimizers(model)
    step = vae_step(model, opt, beta=recipe.kl_weight, augment=recipe.augmentation(),
                    scheduler=sched, samples=recipe.samples)  # fmt: skip
    model, history = train(model, step, (x, y), batch_size=recipe.batch_size, steps=recipe.steps,
                           optimizers={"adam": opt, "schedule": sched}, device=device,
                           seed=recipe.seed, progress=progress, desc="VAE",
                           **train_kwargs)  # fmt: skip
    return model.eval(), history


def _check_binarised(x: torch.Tensor) -> None:
    """Digits ``N x 1 x 28 x 28`` of 0/1 pixels, as the nats of the literature need."""
    check_digit_images(x)
    if torch.any((x != 0) & (x != 1)):
        raise ValueError(
            "x must hold 0/1 pixels: binarise the digits with course_lib.data.binarize (held "
            "out: data.binarized_digits); nats on grey digits compare with nothing"
        )


@torch.no_grad()
def held_out_negative_elbo(
    model: VAE, x: torch.Tensor | None = None, labels=None, seed: int = 0
) -> float:
    """The mean negative ELBO (nats per image) of binarised digits ``x`` (default: the 1,000
    held-out test digits, with their labels for a conditional model), one ``z`` per digit
    drawn from a seeded generator."""
    if x is None:
        x, y = binarized_digits("test")
        labels = y if model.conditional else None
    _check_binarised(x)
    model._check_labels(labels, len(x))
    gen = torch.Generator().manual_seed(seed)
    labels = None if labels is None else labels.to(model.device)
    x = x.to(model.device)
    with evaluating(model):
        mu, logvar = model.encode(x, labels)
        z = reparameterize(mu, logvar, gen)
        # -ELBO = -log p(x|z) + KL(q(z|x) || p(z)),  averaged over the images
        nelbo = -bernoulli_log_likelihood(model.decode(z, labels), x) + model.kl(mu, logvar, z)
        return nelbo.mean().item()
