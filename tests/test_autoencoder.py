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
