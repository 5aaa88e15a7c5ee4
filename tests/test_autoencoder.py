"""Chapter 04's family: the convolutional autoencoder, transposed-convolution sizes, the
checkerboard measure, the denoising step."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.generative import autoencoder as ae


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 12), kernel=st.integers(1, 6), stride=st.integers(1, 4),
    padding=st.integers(0, 2), data=st.data(),
)  # fmt: skip
def test_conv_transpose_output_size_matches_torch(size, kernel, stride, padding, data):
    output_padding = data.draw(st.integers(0, stride - 1))
    want = (size - 1) * stride - 2 * padding + kernel + output_padding
    if want < 1:
        return
    layer = nn.ConvTranspose2d(1, 1, kernel, stride, padding, output_padding)
    got = layer(torch.zeros(1, 1, size, size)).shape[-1]
    ours = ae.conv_transpose_output_size(size, kernel, stride, padding, output_padding)
    assert ours == got, f"size={size} k={kernel} s={stride} p={padding} op={output_padding}"


@pytest.mark.parametrize("bad", [dict(size=0), dict(stride=0), dict(output_padding=2)])
def test_conv_transpose_output_size_says_what_is_wrong(bad):
    args = dict(size=7, kernel=3, stride=2, padding=1, output_padding=0) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        ae.conv_transpose_output_size(**args)


@pytest.mark.parametrize("upsample, kernel", [("transposed", 2), ("transposed", 3),
                                              ("transposed", 4), ("resize", 3)])  # fmt: skip
def test_autoencoder_shapes(upsample, kernel):
    model = ae.ConvAutoencoder(z_dim=5, widths=(4, 8), upsample=upsample, kernel=kernel)
    x = torch.rand(3, 1, 28, 28)
    assert model.encode(x).shape == (3, 5)
    assert model(x).shape == (3, 1, 28, 28)
    r = model.reconstruct(x)
    assert 0 <= r.min() and r.max() <= 1 and model.training


def test_nyquist_energy_sees_a_checkerboard_and_not_a_smooth_image():
    i, j = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    board = ((i + j) % 2).float()[None, None]
    smooth = torch.exp(-((i - 14.0) ** 2 + (j - 14.0) ** 2) / 40)[None, None]
    e = ae.nyquist_energy(torch.cat([board, smooth, smooth + 0.1 * board]))
    assert e[0] == pytest.approx(1.0) and e[1] < 1e-3 and 0.01 < e[2] < 1, e


def test_the_denoising_step_trains_to_remove_noise():
    recipe = ae.AutoencoderRecipe(z_dim=16, widths=(8, 16), noise_std=0.5, steps=80)
    model, history = ae.train_autoencoder(recipe, progress=False)
    losses = history.series("loss")
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10]), losses[::10]


def test_add_noise_is_clipped_and_seeded():
    x = torch.rand(2, 1, 28, 28)
    a = ae.add_noise(x, 0.5, torch.Generator().manual_seed(0))
    b = ae.add_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)


class _ElsewhereGenerator(torch.Generator):
    """A CPU generator that says it lives on another device, as a CUDA one would."""

    @property
    def device(self) -> torch.device:
        return torch.device("meta")


def test_add_noise_draws_on_the_generator_device_and_moves_to_the_image_device(monkeypatch):
    """A seeded CUDA generator must work: eps is drawn on its device, then moved to x's."""
    asked = []
    randn = torch.randn

    def spy(*args, device=None, **kwargs):
        asked.append(torch.device(device))
        return randn(*args, **kwargs)  # drawn on the CPU, where this generator really is

    monkeypatch.setattr(torch, "randn", spy)
    x = torch.rand(2, 1, 28, 28)
    noisy = ae.add_noise(x, 0.5, _ElsewhereGenerator().manual_seed(0))
    ae.add_noise(x, 0.5)
    assert asked == [torch.device("meta"), x.device], asked
    assert noisy.device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("image_device", ["cpu", "cuda"])
def test_add_noise_with_a_seeded_cuda_generator(image_device):
    x = torch.rand(2, 1, 28, 28, device=image_device)
    a = ae.add_noise(x, 0.5, torch.Generator("cuda").manual_seed(0))
    b = ae.add_noise(x, 0.5, torch.Generator("cuda").manual_seed(0))
    assert a.device == x.device and torch.equal(a, b), image_device


X = torch.rand(2, 1, 28, 28)


@pytest.mark.parametrize(
    "x, std, generator, error, match",
    [
        (X, -0.1, None, ValueError, "std must be a number >= 0, got -0.1"),
        (X, float("nan"), None, ValueError, "std must be a number >= 0"),
        (X, True, None, ValueError, "std must be a number >= 0"),
        (X, "0.5", None, ValueError, "std must be a number >= 0"),
        ((X * 255).byte(), 0.5, None, TypeError, "x must be a float tensor"),
        (X, 0.5, 0, TypeError, "generator must be a torch.Generator"),
    ],
    ids=["negative std", "nan std", "bool std", "str std", "uint8 x", "int generator"],
)
def test_add_noise_checks_its_inputs(x, std, generator, error, match):
    with pytest.raises(error, match=match):
        ae.add_noise(x, std, generator)


@pytest.mark.parametrize(
    "logits, target, error, match",
    [
        (X, X[:1], ValueError, "same shape"),
        (X, X[:, 0], ValueError, "same shape"),
        (X.flatten(), X.flatten(), ValueError, "same shape N x"),
        (X, (X > 0.5).long(), TypeError, "target must be a float tensor"),
        (X.double().numpy(), X, TypeError, "logits must be a float tensor"),
        (X, 255 * X, ValueError, r"target must hold intensities in \[0, 1\].*divide by 255"),
        (X, X - 0.5, ValueError, "the logits come first"),
    ],
    ids=[
        "other N",
        "no channel",
        "one-dimensional",
        "integer target",
        "numpy logits",
        "0-255 target",
        "logits as the target",
    ],  # fmt: skip
)
def test_reconstruction_loss_checks_its_inputs(logits, target, error, match):
    with pytest.raises(error, match=match):
        ae.reconstruction_loss(logits, target)


@pytest.mark.parametrize(
    "z, error, match",
    [
        (torch.zeros(3, 4), ValueError, r"z must have shape N x 5 \(N x z_dim\), got \(3, 4\)"),
        (torch.zeros(5), ValueError, "z must have shape N x 5"),
        (torch.zeros(3, 5, 1), ValueError, "z must have shape N x 5"),
        (torch.zeros(3, 5, dtype=torch.long), TypeError, "z must be a float tensor N x 5"),
    ],
    ids=["wrong z_dim", "one-dimensional", "three-dimensional", "integer"],
)
def test_decode_checks_z(z, error, match):
    model = ae.ConvAutoencoder(z_dim=5, widths=(4, 8))
    with pytest.raises(error, match=match):
        model.decode(z)


@pytest.mark.parametrize(
    "images, error, match",
    [
        (torch.zeros(2, 28, 28), ValueError, "N x C x H x W with even H and W"),
        (torch.zeros(2, 1, 27, 28), ValueError, "even H and W"),
        (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), TypeError, "float tensor N x C x H x W"),
        ([[0.0]], TypeError, "float tensor N x C x H x W"),
    ],
    ids=["no channel", "odd height", "uint8", "a list"],
)
def test_nyquist_energy_checks_its_input(images, error, match):
    with pytest.raises(error, match=match):
        ae.nyquist_energy(images)
