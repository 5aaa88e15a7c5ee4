"""Chapter 04: autoencoders. Compress a digit to a few numbers and rebuild it.

An encoder maps ``x`` (``N x 1 x 28 x 28``) to a code ``z`` (``N x D``), a decoder maps ``z``
back to an image; training minimises the reconstruction error. The decoder upsamples either
with transposed convolutions (``upsample="transposed"``) or with nearest-neighbour resizing
followed by a convolution (``upsample="resize"``), which avoids the checkerboard artefacts of
transposed convolutions whose kernel size is not divisible by their stride (Odena et al. 2016).

A *denoising* autoencoder (Vincent et al. 2008) sees a noisy digit and must return the clean
one: ``autoencoder_step(..., noise_std=0.5)``. It is the bridge to chapter 08.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import check_digit_images, digits
from course_lib.generative import check_codes, check_float_tensors, check_intensities, describe
from course_lib.models import evaluating
from course_lib.runtime import seed_everything
from course_lib.scratch import conv_transpose_output_size  # noqa: F401 (chapter 04's formula)
from course_lib.train import train


def nyquist_energy(images: torch.Tensor) -> torch.Tensor:
    """The fraction of each image's energy at the highest spatial frequencies, where a
    checkerboard pattern (+ - + - ...) lives: ``N x C x H x W -> N``.

    With ``X = FFT2(x - mean)``, it is the energy of the frequencies whose row or column index
    is the Nyquist one (``H/2`` or ``W/2``), divided by the total energy.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a float tensor N x C x H x W, got {describe(images)}")
    if images.ndim != 4 or images.shape[-1] % 2 or images.shape[-2] % 2:
        raise ValueError(f"images must be N x C x H x W with even H and W, got {images.shape}")
    x = images - images.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)  # |X(u, v)|^2
    h, w = images.shape[-2:]
    nyquist = power[..., h // 2, :].sum(-1) + power[..., :, w // 2].sum(-1)
    nyquist = nyquist - power[..., h // 2, w // 2]  # counted twice
    return (nyquist.sum(1) / power.sum(dim=(1, 2, 3)).clamp_min(1e-12)).detach()


def _up(c_in: int, c_out: int, upsample: str, kernel: int) -> nn.Module:
    """Double the height and width: ``c_in x H x W -> c_out x 2H x 2W``."""
    if upsample == "transposed":
        # out = (H - 1) * 2 - 2p + k + op = 2H  needs  k - 2p + op = 2
        output_padding = kernel % 2
        padding = (kernel - 2 + output_padding) // 2
        return nn.ConvTranspose2d(
            c_in, c_out, kernel, stride=2, padding=padding, output_padding=output_padding
        )
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)
    )


class ConvAutoencoder(nn.Module):
    """``x -> z -> x_hat`` for 28 x 28 digits; ``forward`` returns logits (sigmoid -> [0, 1]).

    Encoder: two stride-2 convolutions ``28 -> 14 -> 7``, then a dense layer to ``z_dim``.
    Decoder: dense to ``c2 x 7 x 7``, then two 2x upsamplings ``7 -> 14 -> 28``.
    ``upsample``: ``"transposed"`` (kernel ``kernel``, stride 2; an odd kernel, not divisible
    by the stride, overlaps unevenly and paints checkerboards) or ``"resize"``.
    """

    def __init__(
        self, z_dim: int = 16, widths=(32, 64), upsample: str = "transposed", kernel: int = 4
    ) -> None:
        super().__init__()
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample must be 'transposed' or 'resize', got {upsample!r}")
        if not (isinstance(kernel, int) and kernel >= 2):
            raise ValueError(f"kernel must be an int >= 2, got {kernel!r}")
        c1, c2 = widths
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),  # 28x28 -> 14x14
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # 14x14 -> 7x7
            nn.Flatten(), nn.Linear(49 * c2, z_dim),  # c2 x 7 x 7 -> z_dim
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, 49 * c2), nn.ReLU(),
            nn.Unflatten(1, (c2, 7, 7)),
            _up(c2, c1, upsample, kernel), nn.ReLU(),  # 7x7 -> 14x14
            _up(c1, 1, upsample, kernel),  # 14x14 -> 28x28 (logits)
        )  # fmt: skip

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 28 x 28 -> N x z_dim``."""
        check_digit_images(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``N x z_dim -> N x 1 x 28 x 28`` logits."""
        check_codes(z, self.z_dim)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions in [0, 1], in eval mode, on the CPU."""
        with evaluating(self):
            return torch.sigmoid(self(x.to(next(self.parameters()).device))).cpu()


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between the decoder's logits and the target intensities in [0, 1],
    summed over the pixels and averaged over the batch (nats per image).

    ``logits``, ``target``: float tensors of one shape ``N x ...`` (``N x 1 x 28 x 28``)."""
    check_float_tensors("N x ... (digits: N x 1 x 28 x 28)", logits=logits, target=target)
    check_intensities("target", target)
    # L = -sum_i [t_i log p_i + (1 - t_i) log(1 - p_i)],  p = sigmoid(logits)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(target)


def add_noise(x: torch.Tensor, std: float, generator=None) -> torch.Tensor:
    """``clip(x + std * eps, 0, 1)``, ``eps ~ N(0, 1)``: a noisy digit, as a saved image
    would be.

    ``x``: a float tensor of intensities in [0, 1]; ``std``: a number >= 0. With a
    ``torch.Generator``, ``eps`` is drawn on the generator's device, then moved to ``x``'s (a
    seeded draw is the same everywhere); without one, on ``x``'s device."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a float tensor of intensities in [0, 1], got {describe(x)}")
    if isinstance(std, bool) or not isinstance(std, numbers.Real) or not std >= 0:
        raise ValueError(f"std must be a number >= 0, got {std!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    where = x.device if generator is None else generator.device
    eps = torch.randn(x.shape, generator=generator, device=where)
    # x_noisy = clip(x + std * eps, 0, 1)
    return (x + std * eps.to(x.device)).clamp(0, 1)


def autoencoder_step(model: ConvAutoencoder, optimizer, noise_std: float = 0.0):
    """The step of an autoencoder on a batch ``(x,)`` or ``(x, y)``: reconstruct ``x`` from
    ``x`` itself, or (``noise_std > 0``, a denoising autoencoder) from a noisy copy."""

    def step(batch):
        x = batch[0]
        inputs = add_noise(x, noise_std) if noise_std > 0 else x
        loss = reconstruction_loss(model(inputs), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return step


@dataclass(frozen=True)
class AutoencoderRecipe:
    z_dim: int = 16
    widths: tuple[int, int] = (32, 64)
    upsample: str = "transposed"
    kernel: int = 4
    noise_std: float = 0.0
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0

    def build(self) -> ConvAutoencoder:
        return ConvAutoencoder(self.z_dim, self.widths, self.upsample, self.kernel)


def train_autoencoder(recipe: AutoencoderRecipe, progress: bool = True, device="cpu", **kwargs):
    """Train with ``recipe`` on the 4,000 training digits; returns ``(model, history)``."""
    seed_everything(recipe.seed)
    model = recipe.build()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    step = autoencoder_step(model, opt, recipe.noise_std)
    model, history = train(model, step, digits("train"), batch_size=recipe.batch_size,
                           steps=recipe.steps, optimizers=opt, device=device, seed=recipe.seed,
                           progress=progress, desc="autoencoder", **kwargs)  # fmt: skip
    return model.eval(), history
