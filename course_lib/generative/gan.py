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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import digits
from course_lib.models import DigitGenerator
from course_lib.runtime import seed_everything
from course_lib.train import EMA, train

# ----------------------------------------------------------------------------- the losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-V`` for the discriminator, mean over the batch: it wants ``D(x) -> 1``, ``D(G(z)) -> 0``.

    ``real_logits``, ``fake_logits``: ``N`` (or ``N x 1``) logits of ``D``."""
    # L_D = -[log D(x) + log(1 - D(G(z)))],  log D = log sigmoid(l), log(1 - D) = log sigmoid(-l)
    return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The generator's loss on ``D``'s logits for generated images, mean over the batch.

    ``saturating=True``: the minimax one, ``log(1 - D(G(z)))``, whose gradient vanishes when
    ``D`` rejects the fakes confidently (early in training). Default: the non-saturating
    ``-log D(G(z))`` of the GAN paper, with the same fixed point and strong early gradients."""
    if saturating:
        # L_G = log(1 - D(G(z)))
        return F.logsigmoid(-fake_logits).mean()
    # L_G = -log D(G(z))
    return -F.logsigmoid(fake_logits).mean()


# ----------------------------------------------------------------------------- the networks


class Generator(nn.Module):
    """DCGAN generator: ``z (N x z_dim) -> N x 1 x 28 x 28`` in [-1, 1].

    Dense to ``c x 7 x 7``, then two transposed convolutions (stride 2) with BatchNorm and
    LeakyReLU, ``tanh`` at the end. With ``n_classes > 0`` a label embedding joins ``z``."""

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
        h = self.features(x)
        out = self.logit(h).squeeze(1)
        if self.embed is not None:
            # projection discriminator: l(x, y) = w^T h(x) + b + <embed(y), h(x)>
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


class GAN(DigitGenerator):
    """A generator and its discriminator, as one module (so ``train`` checkpoints both).

    ``sample`` uses the generator only, and maps its [-1, 1] to [0, 1]."""

    def __init__(self, z_dim: int = 100, width: int = 64, n_classes: int = 0) -> None:
        super().__init__()
        self.z_dim, self.conditional = z_dim, n_classes > 0
        self.n_classes = n_classes or 10
        self.generator = Generator(z_dim, width, n_classes)
        self.discriminator = Discriminator(width, n_classes)

    def draw(self, n, labels, generator):
        z = self.noise(n, self.z_dim, generator=generator)
        return (self.generator(z, labels) + 1) / 2  # [-1, 1] -> [0, 1]


class ConditionalGAN(GAN):
    """The GAN given the class: ``G(z, y)``, ``D(x, y)``; ``sample(n, labels)``."""

    def __init__(self, z_dim: int = 100, width: int = 64) -> None:
        super().__init__(z_dim, width, n_classes=10)


# ----------------------------------------------------------------------------- training


def gan_step(model: GAN, opt_g, opt_d, saturating: bool = False):
    """One round of the game on a batch ``(x,)`` or ``(x, y)`` of real digits in [0, 1]:
    first a discriminator update, then a generator update (on fresh noise).

    Logs both losses and the mean ``D(x)`` and ``D(G(z))``, the numbers to watch."""
    g, d = model.generator, model.discriminator

    def step(batch):
        real = batch[0] * 2 - 1  # [0, 1] -> [-1, 1], the range of tanh
        labels = batch[1] if model.conditional else None
        n = len(real)
        # the discriminator: real up, fake down (the fakes are constants for this update)
        fake = g(torch.randn(n, model.z_dim, device=real.device), labels)
        real_logits, fake_logits = d(real, labels), d(fake.detach(), labels)
        loss_d = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # the generator: make D call its (new) fakes real
        fake = g(torch.randn(n, model.z_dim, device=real.device), labels)
        loss_g = generator_loss(d(fake, labels), saturating=saturating)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(),
        }

    return step


@dataclass(frozen=True)
class DCGANRecipe:
    """The seeds' DCGAN recipe: Adam 2e-4, beta1 0.5, batch 64, non-saturating loss."""

    z_dim: int = 100
    width: int = 64
    conditional: bool = False
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    saturating: bool = False
    ema_decay: float | None = None  # sample with an EMA of the generator's weights
    seed: int = 0

    def build(self) -> GAN:
        cls = ConditionalGAN if self.conditional else GAN
        return cls(self.z_dim, self.width)

    def optimizers(self, model: GAN) -> dict[str, torch.optim.Adam]:
        betas = (self.beta1, 0.999)
        return {
            "g": torch.optim.Adam(model.generator.parameters(), lr=self.lr, betas=betas),
            "d": torch.optim.Adam(model.discriminator.parameters(), lr=self.lr, betas=betas),
        }


def train_gan(recipe: DCGANRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train a (conditional) DCGAN with ``recipe`` on the 4,000 training digits.

    Returns ``(model in eval mode, history)``; ``train_kwargs`` go to ``train`` (e.g.
    ``max_seconds``, ``checkpoint``). With ``recipe.ema_decay`` the returned generator holds
    the moving average of its weights."""
    seed_everything(recipe.seed)
    model = recipe.build()
    opts = recipe.optimizers(model)
    step = gan_step(model, opts["g"], opts["d"], saturating=recipe.saturating)
    ema = None if recipe.ema_decay is None else EMA(model.generator, recipe.ema_decay)
    model, history = train(model, step, digits("train"), batch_size=recipe.batch_size,
                           steps=recipe.steps, optimizers=opts, ema=ema, device=device,
                           seed=recipe.seed, progress=progress, desc="GAN",
                           **train_kwargs)  # fmt: skip
    if ema is not None:
        model.generator.load_state_dict(ema.module.state_dict())
    return model.eval(), history
