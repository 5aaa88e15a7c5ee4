"""Chapters 06 and 07: generative adversarial networks (Goodfellow et al. 2014), the DCGAN
architecture (Radford et al. 2016) and its class-conditional variant.

A generator ``G`` maps noise ``z ~ N(0, I)`` to an image; a discriminator ``D`` gives the
probability that an image is real. They play the minimax game

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

``D`` outputs a logit ``l`` here (``D = sigmoid(l)``), so the losses are binary cross-entropies
computed stably from logits. Images are ``N x 1 x 28 x 28``; the networks work in [-1, 1]
(``tanh`` output), ``sample`` returns [0, 1].

``ConditionalGAN`` is the same game given the class (Mirza and Osindero 2014): the generator
reads a learnt label embedding with ``z``, the discriminator adds a projection term
``<embed(y), h(x)>`` to its logit (Miyato and Koyama 2018).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import metrics
from course_lib.data import digits
from course_lib.generative import describe
from course_lib.models import DigitGenerator, in_batches
from course_lib.runtime import seed_everything
from course_lib.train import EMA, train

# ----------------------------------------------------------------------------- the losses


def _check_logits(name: str, logits: object) -> None:
    """Raise unless ``logits`` is a float tensor of one logit per image, ``N`` or ``N x 1``
    (or a PatchGAN's map, ``N x 1 x H' x W'``: one per patch), ``N >= 1``."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor of D's logits, N or N x 1, got {describe(logits)}"
        )
    if logits.ndim == 0 or len(logits) == 0 or (logits.ndim > 1 and logits.shape[1] != 1):
        raise ValueError(
            f"{name} must hold one logit per image, shape N or N x 1 (a PatchGAN's "
            f"N x 1 x H' x W': one per patch), N >= 1, got {tuple(logits.shape)}"
        )


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-V`` for the discriminator, mean over the batch: it wants ``D(x) -> 1``, ``D(G(z)) -> 0``.

    ``real_logits``, ``fake_logits``: ``N`` (or ``N x 1``; pix2pix: ``N x 1 x H' x W'``) logits
    of ``D``, of the same shape apart from the batch size (each term is a mean over its own
    batch)."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    if real_logits.shape[1:] != fake_logits.shape[1:]:
        raise ValueError(
            f"real_logits and fake_logits must have the same shape apart from the batch size "
            f"(the same D's logits), got {tuple(real_logits.shape)} and {tuple(fake_logits.shape)}"
        )
    # L_D = -[log D(x) + log(1 - D(G(z)))],  log D = log sigmoid(l), log(1 - D) = log sigmoid(-l)
    return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The generator's loss on ``D``'s logits for generated images, mean over the batch.

    ``saturating=True``: the minimax one, ``log(1 - D(G(z)))``, whose gradient vanishes when
    ``D`` rejects the fakes confidently (early in training). Default: the non-saturating
    ``-log D(G(z))`` of the GAN paper, with the same fixed point and strong early gradients.
    ``fake_logits``: ``N`` or ``N x 1`` (pix2pix: ``N x 1 x H' x W'``)."""
    _check_logits("fake_logits", fake_logits)
    if saturating:
        # L_G = log(1 - D(G(z)))
        return F.logsigmoid(-fake_logits).mean()
    # L_G = -log D(G(z))
    return -F.logsigmoid(fake_logits).mean()


# ----------------------------------------------------------------------------- the networks


def _check_labels(embed: nn.Embedding | None, labels: object, n: int) -> None:
    """A conditional network (``embed``) needs ``n`` class indices, an unconditional one none
    (shape and dtype only: no device sync in the training loop)."""
    if embed is None:
        if labels is not None:
            raise ValueError("this network is unconditional: call it without labels")
    elif not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != (n,):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else None
        raise ValueError(
            f"a conditional network needs labels: an int64 tensor of shape ({n},), got "
            f"{describe(labels)}" + (f" of shape {got}" if got is not None else "")
        )


class Generator(nn.Module):
    """DCGAN generator: ``z (N x z_dim) -> N x 1 x 28 x 28`` in [-1, 1].

    Dense to ``c x 7 x 7``, then two transposed convolutions (stride 2), the first followed by
    BatchNorm and LeakyReLU, the second by ``tanh``. With ``n_classes > 0`` a label embedding joins
    ``z``."""

    def __init__(self, z_dim: int = 100, width: int = 64, n_classes: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes else None
        self.net = nn.Sequential(
            nn.Linear(z_dim * (2 if n_classes else 1), 2 * width * 49, bias=False),
            nn.BatchNorm1d(2 * width * 49), nn.LeakyReLU(0.2),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # 14x14 -> 28x28
            nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(self.embed, labels, len(z))
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z)


class Discriminator(nn.Module):
    """DCGAN discriminator: ``N x 1 x 28 x 28`` in [-1, 1] -> ``N`` logits.

    Two strided convolutions with LeakyReLU (BatchNorm on the second), then a dense logit.
    With ``n_classes > 0`` the projection ``<embed(y), h>`` is added to the logit."""

    def __init__(self, width: int = 64, n_classes: int = 0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28x28 -> 14x14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # 14x14 -> 7x7
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(),  # -> 2*width*49
        )  # fmt: skip
        self.logit = nn.Linear(2 * width * 49, 1)
        self.embed = nn.Embedding(n_classes, 2 * width * 49) if n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(self.embed, labels, len(x))
        h = self.features(x)
        out = self.logit(h).squeeze(1)
        if self.embed is not None:
            # projection discriminator: l(x, y) = w^T h(x) + b + <embed(y), h(x)>
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


# What the seeds' DCGAN lacks on 4,000 digits and a laptop, each one measured in notebook 06:


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the squared norm of D's gradient on real images,
    ``E_x ||grad_x l(x)||^2`` (mean over the batch). Penalising it keeps D smooth where the data
    are, so that it cannot grow arbitrarily confident and the game converges.

    ``real``: the ``N x 1 x 28 x 28`` input D saw, with ``requires_grad``;
    ``real_logits``: ``N``, computed from it by D."""
    if not isinstance(real, torch.Tensor) or not real.requires_grad:
        raise ValueError(
            "real must require gradients: call real.requires_grad_(True) before D sees it (R1 "
            "differentiates D's logits with respect to the real images)"
        )
    if not isinstance(real_logits, torch.Tensor) or not real_logits.requires_grad:
        raise ValueError(
            "real_logits must be D(real), computed with autograd on (not under torch.no_grad)"
        )
    if real_logits.ndim == 0 or len(real_logits) != len(real):
        raise ValueError(
            f"real_logits must hold one logit per real image, {len(real)}, got "
            f"shape {tuple(real_logits.shape)}"
        )
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True, allow_unused=True)
    if grad is None:
        raise ValueError("real_logits do not depend on real: compute them as D(real)")
    # R1 = ||d l / d x||^2, averaged over the batch
    return grad.pow(2).flatten(1).sum(1).mean()


def translate(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al. 2020, DiffAugment): shift each image of
    ``x`` (``N x C x H x W`` in tanh's [-1, 1]; every channel of an image alike) by whole pixels
    in ``[-pixels, pixels]`` along each axis (``pixels``: an int >= 0), black (-1) filling in.

    Applied to real *and* generated images before D, in both players' updates, it stops D from
    memorising 4,000 digits without teaching G to draw shifted ones (G gets the gradient
    through the shift)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a float tensor N x C x H x W, got {describe(x)}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape N x C x H x W, got {tuple(x.shape)}")
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
        raise ValueError(f"pixels must be an int >= 0, got {pixels!r}")
    if pixels == 0:
        return x
    n, c, h, w = x.shape
    shifts = torch.randint(-pixels, pixels + 1, (n, 2), device=x.device)
    padded = F.pad(x + 1, (pixels, pixels, pixels, pixels))  # the background is -1 + 1 = 0
    # pick the window [p - dy, p - dy + h) x [p - dx, p - dx + w) of each padded image
    rows = (torch.arange(h, device=x.device) + pixels - shifts[:, 1:2])[:, None, :, None]
    cols = (torch.arange(w, device=x.device) + pixels - shifts[:, 0:1])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols] - 1


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018): one extra feature map holding how much
    the images of the batch differ from each other, averaged to one number. A collapsed
    generator produces batches that differ little, which D can now see. ``N x C x H x W ->
    N x (C + 1) x H x W``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # s = mean over features of sqrt(var over the batch + 1e-8); the 1e-8 keeps the gradient
        # finite where a feature is the same for every image (sqrt's slope is infinite at 0)
        std = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8)
        s = std.mean().expand(len(x), 1, *x.shape[2:])
        return torch.cat([x, s], dim=1)


class CourseGenerator(nn.Module):
    """The course's generator: ``z (N x z_dim) -> N x 1 x 28 x 28`` in [-1, 1].

    Like DCGAN's, but it upsamples with nearest-neighbour resizing followed by a 3x3
    convolution (no checkerboards: chapter 04) and has a last 3x3 convolution at full size."""

    def __init__(self, z_dim: int = 64, width: int = 64, n_classes: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes else None

        def up(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU()]  # fmt: skip

        self.net = nn.Sequential(
            nn.Linear(z_dim * (2 if n_classes else 1), 2 * width * 49, bias=False),
            nn.BatchNorm1d(2 * width * 49), nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            *up(2 * width, width),  # 7x7 -> 14x14
            *up(width, width // 2),  # 14x14 -> 28x28
            nn.Conv2d(width // 2, 1, 3, padding=1), nn.Tanh(),
        )  # fmt: skip

    forward = Generator.forward


class CourseDiscriminator(nn.Module):
    """The course's discriminator: ``N x 1 x 28 x 28`` in [-1, 1] -> ``N`` logits.

    No BatchNorm: it normalises every feature with the batch's statistics, so each logit
    depends on every image of the batch, and R1's gradient (of the summed logits with respect
    to each real image) picks up cross-sample terms through every layer instead of measuring
    how D's logit for that image changes with it. The minibatch standard deviation before the
    last convolution reads the whole batch too, but as one scalar feature and on purpose: it is
    how D sees a batch that lacks variety. The projection term when conditional."""

    def __init__(self, width: int = 64, n_classes: int = 0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1), nn.LeakyReLU(0.2),  # 28x28
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # -> 14x14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # -> 7x7
            MinibatchStdDev(),  # 2*width + 1 channels
            nn.Conv2d(2 * width + 1, 2 * width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),  # -> 2*width*49
        )  # fmt: skip
        self.logit = nn.Linear(2 * width * 49, 1)
        self.embed = nn.Embedding(n_classes, 2 * width * 49) if n_classes else None

    forward = Discriminator.forward


ARCHITECTURES = {
    "dcgan": (Generator, Discriminator),
    "course": (CourseGenerator, CourseDiscriminator),
}


class GAN(DigitGenerator):
    """A generator and its discriminator, as one module (so ``train`` checkpoints both).

    ``architecture``: ``"dcgan"`` (the seeds' networks) or ``"course"``. ``sample`` uses the
    generator only, and maps its [-1, 1] to [0, 1]."""

    def __init__(
        self, z_dim: int = 100, width: int = 64, n_classes: int = 0, architecture: str = "dcgan"
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}"
            )
        self.z_dim, self.conditional = z_dim, n_classes > 0
        self.n_classes = n_classes or 10
        self.architecture = architecture
        make_g, make_d = ARCHITECTURES[architecture]
        self.generator = make_g(z_dim, width, n_classes)
        self.discriminator = make_d(width, n_classes)

    def draw(self, n, labels, generator):
        z = self.noise(n, self.z_dim, generator=generator)
        # 128 codes at a time: torch's nearest-neighbour upsampling on a CPU is several times
        # slower per image on a batch of 1,000 than on batches of 128 (the same values)
        return (in_batches(self.generator, 128, z, labels) + 1) / 2  # [-1, 1] -> [0, 1]


class ConditionalGAN(GAN):
    """The GAN given the class: ``G(z, y)``, ``D(x, y)``; ``sample(n, labels)``."""

    def __init__(self, z_dim: int = 100, width: int = 64, architecture: str = "dcgan") -> None:
        super().__init__(z_dim, width, n_classes=10, architecture=architecture)


# ----------------------------------------------------------------------------- training


def _check_r1_every(r1_every: object) -> None:
    if isinstance(r1_every, bool) or not isinstance(r1_every, int) or r1_every < 1:
        raise ValueError(f"r1_every must be an int >= 1 (steps), got {r1_every!r}")


def gan_step(
    model: GAN,
    opt_g,
    opt_d,
    saturating: bool = False,
    r1_gamma: float = 0.0,
    shift: int = 0,
    r1_every: int = 1,
    fresh_noise: bool = True,
):
    """One round of the game on a batch ``(x,)`` or ``(x, y)`` of real digits in [0, 1]:
    first a discriminator update, then a generator update.

    ``r1_gamma``: weight of the R1 penalty in D's loss (``gamma / 2 * R1``; 0 = none);
    ``r1_every``: lazy regularisation (Karras et al. 2020, StyleGAN2): R1 only on every
    ``r1_every``-th step, weighted ``r1_every`` times as much (R1's double backward is the
    dearest part of D's update); ``shift``: D sees every image, real or generated, translated
    by up to this many pixels (DiffAugment; 0 = never); ``fresh_noise``: G's update draws new
    noise (Goodfellow et al.'s algorithm) or, when False, reuses the fakes D was just shown,
    as PyTorch's DCGAN example does (one forward pass of G per step instead of two).
    Logs both losses and the mean ``D(x)`` and ``D(G(z))``, the numbers to watch (with
    ``shift > 0``, D's verdicts on the shifted images; on the steps with R1, ``loss_d``
    includes the penalty)."""
    _check_r1_every(r1_every)
    if not r1_gamma >= 0 or not shift >= 0:
        raise ValueError(f"r1_gamma and shift must be >= 0, got {r1_gamma}, {shift}")
    g, d = model.generator, model.discriminator
    state = {"t": 0}

    def step(batch):
        real = batch[0] * 2 - 1  # [0, 1] -> [-1, 1], the range of tanh
        labels = batch[1] if model.conditional else None
        n = len(real)
        regularise = r1_gamma > 0 and state["t"] % r1_every == 0
        state["t"] += 1
        # the discriminator: real up, fake down (the fakes are constants for this update)
        fake = g(torch.randn(n, model.z_dim, device=real.device), labels)
        real_in = translate(real, shift).requires_grad_(regularise)
        real_logits = d(real_in, labels)
        fake_logits = d(translate(fake.detach(), shift), labels)
        loss_d = discriminator_loss(real_logits, fake_logits)
        logs = {}
        if regularise:
            r1 = r1_penalty(real_in, real_logits)
            # L_D += gamma / 2 * E ||grad_x l(x)||^2, times k when it is added every k-th step
            loss_d = loss_d + r1_gamma / 2 * r1_every * r1
            logs["r1"] = r1.item()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # the generator: make D call its fakes real (D's verdict after its update)
        if fresh_noise:
            fake = g(torch.randn(n, model.z_dim, device=real.device), labels)
        loss_g = generator_loss(d(translate(fake, shift), labels), saturating=saturating)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(),
            **logs,
        }

    return step


def linear_decay(optimizer: torch.optim.Optimizer, steps: int):
    """pix2pix's schedule: the learning rate constant for the first half of ``steps``, then
    linearly down to 0 at the end (a ``LambdaLR``, stepped once per training step)."""
    half = steps // 2

    def factor(t: int) -> float:
        # lr_t = lr for t < T/2, then lr * (T - t) / (T - T/2)
        return min(1.0, max(0.0, (steps - t) / max(1, steps - half)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class GANRecipe:
    """How to train a GAN. The defaults are the seeds' DCGAN recipe (Radford et al. 2016):
    their networks, Adam 2e-4 with beta1 0.5, batch 64, the non-saturating loss, nothing else.
    ``GAN_RECIPE`` and ``CGAN_RECIPE`` are the course's (notebook 06 measures the changes)."""

    architecture: str = "dcgan"  # "dcgan" (the seeds') or "course"
    z_dim: int = 100
    width: int = 64
    conditional: bool = False
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay: bool = False  # constant lr for the first half, then linearly down to 0 (pix2pix)
    saturating: bool = False  # the minimax generator loss log(1 - D(G(z)))
    r1_gamma: float = 0.0  # R1 penalty on D's gradient at real images
    r1_every: int = 1  # lazy R1: only every k-th step, k times the weight (StyleGAN2)
    fresh_noise: bool = True  # False: G's update reuses the fakes of D's (PyTorch's example)
    shift: int = 0  # DiffAugment: translate D's inputs by up to this many pixels
    ema_decay: float | None = None  # sample with an EMA of the generator's weights
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {sorted(ARCHITECTURES)}, got {self.architecture!r}"
            )
        if self.r1_gamma < 0 or self.shift < 0:
            raise ValueError(f"r1_gamma and shift must be >= 0, got {self.r1_gamma}, {self.shift}")
        _check_r1_every(self.r1_every)

    def build(self) -> GAN:
        cls = ConditionalGAN if self.conditional else GAN
        return cls(self.z_dim, self.width, architecture=self.architecture)

    def optimizers(self, model: GAN) -> dict:
        """``{"g": Adam, "d": Adam}``, and with ``decay`` their schedules ``"g_decay"``,
        ``"d_decay"`` (stepped by ``self.step``)."""
        betas = (self.beta1, self.beta2)
        opts = {
            "g": torch.optim.Adam(model.generator.parameters(), lr=self.lr, betas=betas),
            "d": torch.optim.Adam(model.discriminator.parameters(), lr=self.lr, betas=betas),
        }
        if self.decay:
            for k in ("g", "d"):
                opts[f"{k}_decay"] = linear_decay(opts[k], self.steps)
        return opts

    def step(self, model: GAN, optimizers: dict):
        """The training step of this recipe for ``model`` (``gan_step``, then the schedules)."""
        play = gan_step(model, optimizers["g"], optimizers["d"], saturating=self.saturating,
                        r1_gamma=self.r1_gamma, shift=self.shift, r1_every=self.r1_every,
                        fresh_noise=self.fresh_noise)  # fmt: skip
        schedules = [v for k, v in optimizers.items() if k.endswith("_decay")]

        def step(batch):
            logs = play(batch)
            for schedule in schedules:
                schedule.step()
            return logs

        return step


DCGAN_RECIPE = GANRecipe()
# The course's: each change measured in notebook 06 and benchmarks/bench_generators.py.
GAN_RECIPE = GANRecipe(
    architecture="course",
    z_dim=64,
    width=32,
    lr=2e-3,
    shift=2,
    r1_gamma=0.1,
    ema_decay=0.999,
    steps=16000,
    decay=True,
    r1_every=4,
    fresh_noise=False,
)
# The shipped cgan was built before the cheaper step (lazy R1, one pass of G): its recipe keeps
# R1 at every step and fresh noise for G's update, as it was trained (it meets its goals).
CGAN_RECIPE = dataclasses.replace(
    GAN_RECIPE, conditional=True, steps=10000, r1_every=1, fresh_noise=True
)


def fd_monitor(generator: nn.Module, every: int = 1, n: int = 1000, verbose: bool = False):
    """An ``evaluate`` hook for ``train``: every ``every`` epochs, the Fréchet distance of ``n``
    samples of ``generator`` (fixed noise; ``n // 10`` per class when conditional) to the
    held-out digits, and the seconds since the hook was made. Logged as ``eval_fd``,
    ``eval_seconds``."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an int >= 1 (epochs), got {every!r}")
    if not isinstance(generator, Generator | CourseGenerator):
        raise TypeError(
            "generator must be a GAN's generator network (model.generator, or the EMA's "
            f"ema.module), got {type(generator).__name__}"
        )
    state = {"epoch": 0, "start": time.perf_counter()}
    x_test = digits("test")[0]
    z_dim = generator.net[0].in_features // (2 if generator.embed is not None else 1)
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(123))
    labels = torch.arange(n) % 10 if generator.embed is not None else None

    def evaluate() -> dict:
        state["epoch"] += 1
        if state["epoch"] % every:
            return {}
        dev = next(generator.parameters()).device
        y = None if labels is None else labels.to(dev)
        images = ((generator(z.to(dev), y) + 1) / 2).clamp(0, 1).cpu()  # [-1, 1] -> [0, 1]
        result = {"fd": metrics.frechet_distance(images, x_test),
                  "seconds": time.perf_counter() - state["start"]}  # fmt: skip
        if verbose:
            print(f"epoch {state['epoch']}: {result['seconds']:.0f} s, FD {result['fd']:.1f}",
                  flush=True)  # fmt: skip
        return result

    return evaluate


def train_gan(
    recipe: GANRecipe,
    progress: bool = True,
    device="cpu",
    data=None,
    monitor_every: int | None = None,
    **train_kwargs,
):
    """Train a (conditional) GAN with ``recipe``, by default on the 4,000 training digits
    (``data``: other ``(images, labels)`` in [0, 1]).

    Returns ``(model in eval mode, history)``; ``train_kwargs`` go to ``train`` (e.g.
    ``max_seconds``, ``checkpoint``). With ``recipe.ema_decay`` the returned generator holds
    the moving average of its weights. ``monitor_every=k``: every k epochs, the Fréchet
    distance of the generator that will be returned (``fd_monitor``) in ``history.epochs``."""
    if (
        recipe.conditional
        and data is not None
        and not (isinstance(data, tuple | list) and len(data) >= 2)
    ):
        raise ValueError(
            "a conditional recipe trains on (images, labels): pass data=(x, y) with the class of "
            "each image, not the images alone"
        )
    seed_everything(recipe.seed)
    model = recipe.build()
    opts = recipe.optimizers(model)
    ema = None if recipe.ema_decay is None else EMA(model.generator, recipe.ema_decay)
    if monitor_every:
        watched = model.generator if ema is None else ema.module
        train_kwargs["evaluate"] = fd_monitor(watched, monitor_every, verbose=progress)
    data = digits("train") if data is None else data
    model, history = train(model, recipe.step(model, opts), data, batch_size=recipe.batch_size,
                           steps=recipe.steps, optimizers=opts, ema=ema, device=device,
                           seed=recipe.seed, progress=progress, desc="GAN",
                           **train_kwargs)  # fmt: skip
    if ema is not None:
        model.generator.load_state_dict(ema.module.state_dict())
    return model.eval(), history
