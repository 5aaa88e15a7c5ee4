"""Chapter 10: image-to-image translation with pix2pix (Isola et al. 2017).

A generator ``G`` maps an input image ``x`` (edges, a grey photo) to an output ``G(x)`` (a
digit, the photo's colours); a discriminator ``D(x, y)`` sees the *pair* and gives a logit per
overlapping patch: real pair or made-up pair? The generator minimises

    L_G = lambda * E|y - G(x)|_1  +  E[-log D(x, G(x))]          (L1 + conditional GAN)

and ``D`` the usual binary cross-entropy on real pairs ``(x, y)`` and fake pairs ``(x, G(x))``
(``gan.discriminator_loss``, averaged over the patches). ``adversarial="none"`` trains with L1
alone (the paper's baseline: the median of the plausible outputs, blurry or washed out);
``"unconditional"`` lets ``D`` see ``G(x)`` without ``x`` (it can then judge realism but not
correspondence).

Two paired tasks made offline: ``edge_pairs`` (Canny edges of a digit -> the digit, 28x28) and
``colour_pairs`` (grey patch -> its chroma, from the colour training photos). Networks work
in [-1, 1]; inputs and outputs of the public functions are in [0, 1].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import skimage.feature
import torch
from torch import nn

from course_lib import data as course_data
from course_lib import metrics
from course_lib.generative import check_float_tensors
from course_lib.generative.gan import discriminator_loss, generator_loss, linear_decay
from course_lib.judge import judge_features, load_judge, test_features
from course_lib.models import UNet, evaluating, pad_to_multiple
from course_lib.runtime import seed_everything
from course_lib.train import train

TASKS = ("edges", "colour")
ADVERSARIAL = ("none", "conditional", "unconditional")

# ----------------------------------------------------------------------------- paired data


def canny_edges(images: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Canny edge maps (``skimage.feature.canny``) of ``N x 1 x H x W`` images in [0, 1]: 1 on an
    edge, 0 elsewhere, same shape. The edges keep a digit's outline but not its stroke
    width or how dark it is: the generator must make those up. ``images`` may be on any device
    and track gradients (the edges are computed on the CPU, without them); the edge maps come
    back float32, on ``images``' device."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be a tensor N x 1 x H x W in [0, 1], got {images!r:.60}")
    arrays = images.detach().cpu().numpy()
    out = np.stack([skimage.feature.canny(im[0], sigma=sigma) for im in arrays])
    return torch.from_numpy(out.astype(np.float32))[:, None].to(images.device)


@lru_cache(maxsize=2)
def _edge_maps(split: str) -> torch.Tensor:
    return canny_edges(course_data.digits(split)[0])


def edge_pairs(split: str = "train") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Task A: ``(edges, digits, labels)`` of the digits of ``split``; ``edges`` and ``digits``
    are ``N x 1 x 28 x 28`` in [0, 1], ``labels`` ``N`` (the edges are computed once per
    process; each call returns fresh tensors)."""
    x, y = course_data.digits(split)
    return _edge_maps(split).clone(), x, y


# Rec. 709 luma, the grey of skimage.color.rgb2gray and data.photo(name, gray=True)
LUMA = (0.2125, 0.7154, 0.0721)


def to_chroma(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``N x 3 x H x W`` RGB in [0, 1] into its grey ``N x 1 x H x W`` (luma ``Y``) and its
    chroma ``N x 2 x H x W``: ``(B - Y, R - Y)``, each in [-1, 1] (a YCbCr without the scaling).
    ``from_chroma`` inverts it exactly."""
    if not isinstance(rgb, torch.Tensor) or rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be a tensor N x 3 x H x W in [0, 1], got {rgb!r:.60}")
    r, g, b = rgb.unbind(1)
    # Y = 0.2125 R + 0.7154 G + 0.0721 B
    y = LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
    return y[:, None], torch.stack([b - y, r - y], dim=1)


def from_chroma(grey: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """RGB ``N x 3 x H x W`` in [0, 1] from the grey ``N x 1 x H x W`` and chroma ``N x 2 x H x W``
    (clipped to [0, 1] where a made-up chroma leaves the RGB cube)."""
    if grey.ndim != 4 or grey.shape[1] != 1 or chroma.shape != (len(grey), 2, *grey.shape[2:]):
        raise ValueError(
            f"grey must be N x 1 x H x W and chroma N x 2 x H x W, got shapes "
            f"{tuple(grey.shape)} and {tuple(chroma.shape)}"
        )
    y = grey[:, 0]
    b, r = chroma[:, 0] + y, chroma[:, 1] + y
    # G from Y = 0.2125 R + 0.7154 G + 0.0721 B
    g = (y - LUMA[0] * r - LUMA[2] * b) / LUMA[1]
    return torch.stack([r, g, b], dim=1).clamp(0, 1)


# The natural colour photos among the training photos. The others in colour (retina,
# immunohistochemistry, hubble_deep_field) are microscopy and astronomy in false or stained
# colours: another task than colouring the held-out photos of everyday scenes.
COLOUR_TRAIN_PHOTOS = ("astronaut", "coffee", "rocket")


def colour_pairs(n: int, size: int = 64, generator=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Task B: ``n`` random ``size x size`` patches of the natural colour training photos
    (``COLOUR_TRAIN_PHOTOS``, flipped and rotated), as ``(grey N x 1 x size x size in [0, 1],
    chroma N x 2 x size x size)``."""
    rgb = course_data.patches(
        n, size, gray=False, generator=generator, names=list(COLOUR_TRAIN_PHOTOS)
    )
    return to_chroma(rgb)


# ----------------------------------------------------------------------------- the networks


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): a fully convolutional discriminator that gives one logit per
    overlapping patch of its input instead of one per image.

    ``N x in_channels x H x W -> N x 1 x H' x W'``: ``n_layers`` 4x4 convolutions of stride 2
    (widths ``width, 2 width, ...``), then a 4x4 convolution of stride 1 and a 4x4 one to the
    logit map, LeakyReLU(0.2) between, no normalisation. Each logit sees a
    ``receptive_field x receptive_field`` window (the paper's default, ``n_layers=3``: 70x70;
    this class's default and the photos recipe's, ``n_layers=2``: 34x34; the digits recipe's,
    ``n_layers=1``: 16x16 of a 28x28 digit)."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 2) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = []
        c = in_channels
        for k in range(n_layers):  # H -> H/2 each
            w = width * 2**k
            layers += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = w
        layers += [nn.Conv2d(c, 2 * c, 4, stride=1, padding=1), nn.LeakyReLU(0.2),  # H -> H-1
                   nn.Conv2d(2 * c, 1, 4, stride=1, padding=1)]  # H -> H-1  # fmt: skip
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(
            [(m.kernel_size[0], m.stride[0]) for m in self.net if isinstance(m, nn.Conv2d)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """The side of the input window that one output pixel of a stack of convolutions sees;
    ``layers`` = ``[(kernel, stride), ...]`` from input to output.

    From the output back: one pixel of a layer's output sees ``r' = r * stride + (kernel -
    stride)`` of its input, starting with ``r = 1``. (A network: ``PatchDiscriminator``'s
    ``receptive_field`` property lists its layers so.)"""
    if not isinstance(layers, (list, tuple)):
        raise TypeError(
            "layers must be a list of (kernel, stride) pairs of ints, e.g. [(4, 2), (4, 1)], got "
            f"{type(layers).__name__} (for a PatchDiscriminator, read d.receptive_field)"
        )
    for layer in layers:
        if (
            not isinstance(layer, (list, tuple))
            or len(layer) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in layer)
            or min(layer) < 1
        ):
            raise ValueError(
                f"each layer must be a pair (kernel, stride) of ints >= 1, got {layer!r}"
            )
    r = 1
    for kernel, stride in reversed(layers):
        # r_in = r_out * stride + (kernel - stride)
        r = r * stride + (kernel - stride)
    return r


class Pix2Pix(nn.Module):
    """The U-Net generator and, unless ``adversarial="none"``, its PatchGAN discriminator.

    ``in_channels -> out_channels`` (edges: 1 -> 1; colour: 1 -> 2); the generator is
    ``models.UNet`` (concatenated skips) with ``tanh`` at the end. ``translate(x)`` maps inputs
    in [0, 1] to outputs in [0, 1] (chroma: in [-1, 1])."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        widths=(32, 64, 128),
        adversarial: str = "conditional",
        d_width: int = 32,
        d_layers: int = 2,
    ) -> None:
        super().__init__()
        if adversarial not in ADVERSARIAL:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL}, got {adversarial!r}")
        self.adversarial = adversarial
        self.generator = UNet(in_channels, out_channels, widths)
        d_in = out_channels + (in_channels if adversarial == "conditional" else 0)
        self.discriminator = (
            None if adversarial == "none" else PatchDiscriminator(d_in, d_width, d_layers)
        )
        self.multiple = 2 ** (len(tuple(widths)) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``G``: ``N x in x H x W`` in [-1, 1] -> ``N x out x H x W`` in [-1, 1]."""
        return torch.tanh(self.generator(x))

    def judge(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``D``'s patch logits for the pair (input ``x``, output ``y``), both in [-1, 1]."""
        return self.discriminator(torch.cat([x, y], 1) if self.adversarial == "conditional" else y)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Outputs for inputs ``x`` (``N x in x H x W`` in [0, 1], any ``H x W``: padded to the
        U-Net's multiple and cropped back), in eval mode, on the CPU. Edges give digits in
        [0, 1]; grey gives chroma in [-1, 1] (``from_chroma`` makes it RGB)."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
            raise ValueError(f"x must be a float tensor N x C x H x W in [0, 1], got {x!r:.60}")
        channels = self.generator.down[0][0].in_channels
        if x.shape[1] != channels:
            raise ValueError(f"x must have {channels} channel(s), N x {channels} x H x W, got "
                             f"shape {tuple(x.shape)}")  # fmt: skip
        device = next(self.parameters()).device
        outs = []
        with evaluating(self):
            for chunk in x.split(batch_size):
                padded, (h, w) = pad_to_multiple(chunk.to(device) * 2 - 1, self.multiple)
                outs.append(self(padded)[..., :h, :w].cpu())
        y = torch.cat(outs)
        return (y + 1) / 2 if self.generator.out.out_channels == 1 else y


# ----------------------------------------------------------------------------- training


def pix2pix_loss(
    fake_logits: torch.Tensor | None, fake: torch.Tensor, target: torch.Tensor, lam: float
) -> torch.Tensor:
    """The generator's objective: ``lam * mean|target - fake| - mean log D(x, fake)``.

    ``fake_logits``: ``D``'s patch logits for the generated pairs, any shape (``N x 1 x H' x
    W'``), averaged over every patch; ``None``: L1 alone. ``fake``, ``target``: ``N x C x H x W``
    (the [-1, 1] of the networks). The adversarial term is the non-saturating
    ``-log sigmoid(l)``, computed from the logits (``gan.generator_loss``)."""
    check_float_tensors("N x C x H x W", ndim=4, fake=fake, target=target)
    if not lam >= 0:
        raise ValueError(f"lam must be a number >= 0 (the L1 term's weight), got {lam!r}")
    # L1 = mean |y - G(x)|
    l1 = (target - fake).abs().mean()
    if fake_logits is None:
        return lam * l1
    # L_G = lambda * L1 - mean log D(x, G(x))
    return lam * l1 + generator_loss(fake_logits)


def pix2pix_step(model: Pix2Pix, opt_g, opt_d, lam: float):
    """One round on a batch ``(input in [0, 1], target in [-1, 1])``: a discriminator update on
    real pairs ``(x, y)`` and fake pairs ``(x, G(x))`` (only ``y`` / ``G(x)`` when it is
    unconditional), then a generator update on ``pix2pix_loss``. Logs ``l1`` (on the [-1, 1]
    scale), and with a discriminator ``loss_d``, ``loss_g``, ``d_real``, ``d_fake``."""

    def step(batch):
        x, y = batch[0] * 2 - 1, batch[1]  # input [0, 1] -> [-1, 1]; the target is scaled
        fake = model(x)
        logs = {}
        fake_logits = None
        if model.discriminator is not None:
            real_logits = model.judge(x, y)
            # D: real pairs up, fake pairs down (the fakes are constants for this update)
            loss_d = discriminator_loss(real_logits, model.judge(x, fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            fake_logits = model.judge(x, fake)  # the updated D, as in gan_step
            logs = {"loss_d": loss_d.item(), "d_real": torch.sigmoid(real_logits).mean().item(),
                    "d_fake": torch.sigmoid(fake_logits).mean().item()}  # fmt: skip
        loss_g = pix2pix_loss(fake_logits, fake, y, lam)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"l1": (fake - y).abs().mean().item(), "loss_g": loss_g.item(), **logs}

    return step


@dataclass(frozen=True)
class Pix2PixRecipe:
    """How to train pix2pix on one task. The paper's: Adam 2e-4, beta1 0.5, lambda 100; the
    authors' code's: the learning rate decayed linearly to 0 over the second half."""

    task: str = "edges"  # "edges" (edges -> digits) or "colour" (grey -> chroma)
    adversarial: str = "conditional"  # "none" (L1 alone), "conditional", "unconditional"
    lam: float = 100.0
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    widths: tuple = (16, 32, 64)
    d_width: int = 32
    d_layers: int = 1  # 16x16 patches of a digit (2: 34x34)
    patch_size: int = 64  # colour: training patches
    n_patches: int = 4000  # colour: how many
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.adversarial not in ADVERSARIAL:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL}, got {self.adversarial!r}")
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")

    def build(self) -> Pix2Pix:
        out = 1 if self.task == "edges" else 2
        return Pix2Pix(1, out, self.widths, self.adversarial, self.d_width, self.d_layers)

    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training pairs ``(input in [0, 1], target in [-1, 1])``."""
        if self.task == "edges":
            edges, x, _ = edge_pairs("train")
            return edges, x * 2 - 1
        return colour_pairs(self.n_patches, self.patch_size, generator=self.seed)


def train_pix2pix(recipe: Pix2PixRecipe, progress: bool = True, device="cpu", **train_kwargs):
    """Train ``recipe`` on its task's training pairs. Returns ``(model in eval mode, history)``;
    ``train_kwargs`` go to ``train`` (``max_seconds``, ``checkpoint``, ...)."""
    seed_everything(recipe.seed)
    model = recipe.build()
    betas = (recipe.beta1, 0.999)
    opts = {"g": torch.optim.Adam(model.generator.parameters(), lr=recipe.lr, betas=betas)}
    if model.discriminator is not None:
        opts["d"] = torch.optim.Adam(model.discriminator.parameters(), lr=recipe.lr, betas=betas)
    schedules = [linear_decay(o, recipe.steps) for o in opts.values()]
    play = pix2pix_step(model, opts["g"], opts.get("d"), recipe.lam)

    def step(batch):
        logs = play(batch)
        for s in schedules:
            s.step()
        return logs

    all_opts = {**opts, **{f"{k}_decay": s for k, s in zip(opts, schedules, strict=True)}}
    model, history = train(model, step, recipe.data(), batch_size=recipe.batch_size,
                           steps=recipe.steps, optimizers=all_opts, device=device,
                           seed=recipe.seed, progress=progress, desc=f"pix2pix {recipe.task}",
                           **train_kwargs)  # fmt: skip
    return model.eval(), history


EDGES_RECIPE = Pix2PixRecipe()
COLOUR_RECIPE = dataclasses.replace(EDGES_RECIPE, task="colour", batch_size=16, d_layers=2)
# The shipped ones, per task and adversarial term: same networks, same steps, side by side.
RECIPES = {
    (task, adv): dataclasses.replace(base, adversarial=adv)
    for task, base in (("edges", EDGES_RECIPE), ("colour", COLOUR_RECIPE))
    for adv in ADVERSARIAL
}


# ----------------------------------------------------------------------------- evaluation


def edges_report(model: Pix2Pix | None, outputs: torch.Tensor | None = None) -> dict[str, float]:
    """Task A on the 1,000 held-out digits: the judge's accuracy on the outputs (is each the
    source digit's class?) and their Fréchet distance to the held-out digits, in the judge's
    features. ``outputs``: ``model.translate`` of the held-out edges, if already computed."""
    edges, _, y = edge_pairs("test")
    out = (model.translate(edges) if outputs is None else outputs).clamp(0, 1)
    with torch.no_grad():
        features = judge_features(out)  # computed once, for the class and the distance
        predicted = load_judge().head(features).argmax(1)
    # the same as metrics.frechet_distance(out, held-out digits), the test features cached
    fd = metrics.frechet_distance_features(features, test_features())
    return {"judge_accuracy": metrics.accuracy(y.numpy(), predicted.numpy()), "fd": fd}


def colourise(model: Pix2Pix, rgb: np.ndarray) -> np.ndarray:
    """The model's colours for the grey of a colour photo ``H x W x 3`` in [0, 1]: its luma kept,
    its chroma made up. Returns ``H x W x 3`` in [0, 1]."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be a NumPy array H x W x 3 in [0, 1], got {rgb!r:.60}")
    if not np.issubdtype(rgb.dtype, np.floating) or not (rgb.min() >= 0 and rgb.max() <= 1):
        raise ValueError(
            f"rgb must hold floats in [0, 1] (uint8 or 0-255: divide by 255), got {rgb.dtype} "
            f"in [{rgb.min():.3g}, {rgb.max():.3g}]"
        )
    grey, _ = to_chroma(torch.from_numpy(np.ascontiguousarray(rgb)).float().permute(2, 0, 1)[None])
    return from_chroma(grey, model.translate(grey))[0].permute(1, 2, 0).numpy()


def colour_report(model: Pix2Pix | None, names=None) -> dict[str, float]:
    """Task B on the held-out colour photos (default: all of them): mean PSNR in RGB and mean
    colourfulness ratio (output / truth; 1 = as vivid as the photo). ``model=None``: the grey
    photo itself (chroma 0), the floor."""
    names = course_data.photo_split("test", colour=True) if names is None else names
    psnrs, ratios = [], []
    for name in names:
        rgb = course_data.photo(name, gray=False)
        if model is None:  # the grey photo (the luma) in all three channels
            out = np.repeat(course_data.photo(name)[..., None], 3, axis=-1)
        else:
            out = colourise(model, rgb)
        psnrs.append(metrics.psnr(out, rgb))
        ratios.append(metrics.colourfulness(out) / metrics.colourfulness(rgb))
    return {"psnr": float(np.mean(psnrs)), "colourfulness_ratio": float(np.mean(ratios))}
