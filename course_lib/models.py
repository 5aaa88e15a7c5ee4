"""The networks of the course, small enough to train on a laptop CPU.

Shape comments follow one image of the digits: ``1 x 28 x 28``.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from course_lib.data import check_digit_images


class DigitCNN(nn.Module):
    """The seeds' CNN: three conv-ReLU-max-pool blocks, a dense layer of 512, a dense output.

    ``widths`` are the channels of the three conv blocks (3x3 kernels, padding 1).
    ``features(x)`` returns the 512 activations of the hidden dense layer (after ReLU): the
    feature space the judge uses for Fréchet distances.
    """

    def __init__(
        self,
        widths: tuple[int, int, int] = (32, 64, 128),
        hidden: int = 512,
        n_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 28x28 -> 14x14
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14 -> 7x7
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7 -> 3x3
            nn.Flatten(),  # c3 x 3 x 3 -> 9*c3
            nn.Linear(9 * c3, hidden),
            nn.ReLU(),  # -> 512 features
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))  # -> 10

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 28 x 28`` in [0, 1] -> ``N x hidden`` penultimate activations."""
        check_digit_images(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 28 x 28`` in [0, 1] -> ``N x 10`` logits."""
        return self.head(self.features(x))


# ----------------------------------------------------------------------------- batches


@contextmanager
def evaluating(module: nn.Module):
    """``with evaluating(net):`` runs the block with ``net`` and all its submodules in eval mode
    (BatchNorm's running statistics used, not updated; no dropout), then puts each one back in
    the mode it had."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


def in_batches(fn, size: int, *tensors: torch.Tensor | None) -> torch.Tensor:
    """``fn(*tensors)`` computed ``size`` rows at a time (``None`` passes through as ``None``)
    and concatenated: the same result for a network in eval mode, in less memory, and on a CPU
    often faster than one big batch (``benchmarks/bench_batch_size.py``)."""
    n = len(tensors[0])
    return torch.cat([
        fn(*(None if t is None else t[i : i + size] for t in tensors)) for i in range(0, n, size)
    ])  # fmt: skip


# ----------------------------------------------------------------------------- generators


class DigitGenerator(nn.Module):
    """The one interface of every digit generator of the course (VAE, GAN, PixelCNN, flow,
    diffusion, and their conditional variants): ``sample(n, labels=None, generator=None)``.

    A family implements ``draw(n, labels, generator)`` (in eval mode, without gradients, on the
    model's device; ``labels`` is ``None`` or an int64 tensor ``n`` on that device) returning
    ``n x 1 x 28 x 28`` values in [0, 1]; it draws its random numbers with ``self.noise``, so a
    ``torch.Generator`` makes the draw repeatable. A conditional family sets
    ``conditional = True``.
    """

    conditional: bool = False
    n_classes: int = 10

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def noise(self, *shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise of ``shape`` on the model's device, drawn with ``generator``
        (on its own device, the CPU by default) so that a seeded draw is the same everywhere."""
        where = generator.device if generator is not None else torch.device("cpu")
        return torch.randn(shape, generator=generator, device=where).to(self.device)

    def draw(self, n: int, labels: torch.Tensor | None, generator: torch.Generator | None):
        raise NotImplementedError(f"{type(self).__name__} must implement draw()")

    @torch.no_grad()
    def sample(self, n: int, labels=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new digits: a float32 tensor ``n x 1 x 28 x 28`` in [0, 1] on the CPU.

        Args:
            n: how many (``>= 1``).
            labels: for a conditional model, the class of each image (``n`` ints in 0..9;
                default ``arange(n) % 10``, every class in turn); an unconditional model
                refuses them.
            generator: a ``torch.Generator`` that makes the draw repeatable.

        Drawn in eval mode without gradients; the model's train/eval mode is restored after.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if labels is not None and not self.conditional:
            raise ValueError(
                f"{type(self).__name__} is unconditional: it cannot draw requested classes "
                "(call sample(n) without labels, or use the family's conditional model)"
            )
        if self.conditional:
            labels = torch.arange(n) % self.n_classes if labels is None else labels
            labels = torch.as_tensor(labels)
            if labels.shape != (n,) or labels.is_floating_point():
                raise ValueError(
                    f"labels must be {n} integer classes (shape ({n},)), got dtype "
                    f"{labels.dtype} and shape {tuple(labels.shape)}"
                )
            if n and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise ValueError(f"labels must be in 0..{self.n_classes - 1}")
            labels = labels.long().to(self.device)
        with evaluating(self):
            x = self.draw(n, labels, generator)
        return x.detach().float().clamp(0, 1).cpu()


# ----------------------------------------------------------------------------- blocks


class ResBlock(nn.Module):
    """``x + conv(relu(norm(conv(relu(norm(x))))))``: a pre-activation residual block
    (He et al. 2016) that keeps the shape ``N x C x H x W``."""

    def __init__(self, channels: int, norm: bool = True) -> None:
        super().__init__()

        def norm_layer():
            return nn.GroupNorm(min(8, channels), channels) if norm else nn.Identity()

        self.body = nn.Sequential(
            norm_layer(), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            norm_layer(), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by GroupNorm and ReLU; keeps H x W."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.ReLU(),
    )  # fmt: skip


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al. 2015) for image-to-image networks: restoration,
    inpainting, pix2pix's generator, diffusion's noise predictor.

    ``widths = (32, 64, 128)`` gives two 2x downsamplings: ``H x W -> H/2 -> H/4`` and back,
    with the encoder's features concatenated to the decoder's at each scale (the skip
    connections). ``H`` and ``W`` must be divisible by ``2 ** (len(widths) - 1)``.
    ``in_channels -> out_channels``, no output activation (add one outside if needed).
    """

    def __init__(self, in_channels: int, out_channels: int, widths=(32, 64, 128)) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) < 2:
            raise ValueError(f"widths needs at least 2 levels, got {widths}")
        self.widths = widths
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(_conv_block(c, w))
            c = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(c, w, 2, stride=2))  # H/2^k -> H/2^(k-1)
            self.merge.append(_conv_block(2 * w, w))  # concatenated skip: 2w channels -> w
            c = w
        self.out = nn.Conv2d(c, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x in_channels x H x W -> N x out_channels x H x W``."""
        factor = 2 ** (len(self.widths) - 1)
        if x.ndim != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"UNet expects N x C x H x W with H and W divisible by {factor}, "
                f"got shape {tuple(x.shape)}"
            )
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else self.pool(x))  # H/2^(k-1) -> H/2^k
            skips.append(x)
        skips.pop()  # the bottom level has no partner
        for up, merge in zip(self.up, self.merge, strict=True):
            x = up(x)  # upsample 2x, halve the channels
            x = merge(torch.cat([skips.pop(), x], dim=1))  # the skip connection
        return self.out(x)


class ResUNet(nn.Module):
    """A U-Net of residual blocks that works at half resolution: the restoration network.

    ``pixel_unshuffle`` first folds each 2x2 block of pixels into 4 channels (``H x W ->
    H/2 x W/2``, lossless), so every convolution costs a quarter of what it would at full
    resolution; ``pixel_shuffle`` unfolds the output at the end (FFDNet, Zhang et al. 2018, does
    the same). In between, a U-Net (DRUNet-style, Zhang et al. 2021): ``blocks`` residual blocks
    per level, strided 2x2 convolutions down, transposed ones up, skips *added*, no
    normalisation (restoration needs the pixels' absolute level).

    With ``widths = (32, 64, 128)``: ``H x W -> H/2 (32 ch) -> H/4 (64) -> H/8 (128)`` and back.
    ``in_channels -> out_channels``; ``H`` and ``W`` must be divisible by
    ``2 ** len(widths)`` (``pad_to_multiple`` pads any photo).
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, widths=(32, 64, 128), blocks: int = 2
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or blocks < 1:
            raise ValueError(f"need >= 2 widths and >= 1 block, got {widths}, {blocks}")
        self.widths, self.multiple = widths, 2 ** len(widths)
        self.head = nn.Conv2d(4 * in_channels, widths[0], 3, padding=1)

        def stage(w: int) -> nn.Sequential:
            return nn.Sequential(*[ResBlock(w, norm=False) for _ in range(blocks)])

        self.encoders = nn.ModuleList([stage(w) for w in widths[:-1]])
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        self.downs = nn.ModuleList([nn.Conv2d(a, b, 2, stride=2) for a, b in pairs])  # H -> H/2
        self.middle = stage(widths[-1])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in pairs])  # x2
        self.decoders = nn.ModuleList([stage(w) for w in widths[:-1]])
        self.tail = nn.Conv2d(widths[0], 4 * out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x in_channels x H x W -> N x out_channels x H x W``."""
        if x.ndim != 4 or x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(
                f"ResUNet expects N x C x H x W with H and W divisible by {self.multiple}, got "
                f"shape {tuple(x.shape)}; pad with course_lib.models.pad_to_multiple"
            )
        h = self.head(nn.functional.pixel_unshuffle(x, 2))  # C x H x W -> 4C x H/2 x W/2
        skips = []
        for encode, down in zip(self.encoders, self.downs, strict=True):
            h = encode(h)
            skips.append(h)
            h = down(h)  # halve H and W, widen
        h = self.middle(h)
        for k in reversed(range(len(self.ups))):
            h = self.decoders[k](self.ups[k](h) + skips[k])  # double H and W, add the skip
        return nn.functional.pixel_shuffle(self.tail(h), 2)  # 4C' x H/2 x W/2 -> C' x H x W


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``N x C x H x W`` at the bottom and right so that ``H`` and ``W`` become
    multiples of ``multiple``; returns the padded tensor and the original ``(H, W)`` to crop back
    to with ``y[..., :H, :W]``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)
