"""Image grids and the kernel playground, tested without a kernel or a browser."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.ndimage
import torch

from course_lib import scratch, viz

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "images, n",
    [
        (torch.rand(5, 1, 28, 28), 5),
        (RNG.random((3, 3, 16, 20)), 3),
        (RNG.random((4, 10, 12)), 4),
        (RNG.random((2, 10, 12, 3)), 2),
        (RNG.random((10, 12)), 1),
        ([RNG.random((10, 12)), RNG.random((30, 7, 3))], 2),
    ],
)
def test_show_images_accepts_common_layouts(images, n):
    fig = viz.show_images(images, titles=[f"#{i}" for i in range(n)], ncols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == n
    plt.close(fig)


def test_show_images_rejects_bad_input():
    with pytest.raises(ValueError, match="N x C x H x W"):
        viz.show_images(np.zeros((2, 5, 8, 8)))
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        viz.show_images(np.zeros((3, 8, 8)), titles=["a", "b"])
    with pytest.raises(TypeError):
        viz.show_images(None)


def test_plot_curves_draws_one_line_per_curve():
    ax = viz.plot_curves({"train": [3, 2, 1], "test": [3, 2.5, 2]}, logy=True)
    assert len(ax.lines) == 2
    plt.close(ax.figure)


def test_kernel_playground_callback_follows_the_widgets():
    image = np.random.default_rng(0).random((20, 24)).astype(np.float32)
    widget = viz.kernel_playground(image)
    kernel, repeat = widget.kernel, widget.repeat
    assert widget.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_allclose(
        widget.result, scratch.filter2d(image, scratch.classic_kernels()["sobel_x"])
    )
    kernel.value = "identity"
    np.testing.assert_allclose(widget.result, image, atol=1e-6)
    kernel.value, repeat.value = "box_blur", 3
    blurred = widget.result
    assert blurred.shape == image.shape and blurred.std() < image.std() / 2
    assert plt.get_fignums() == [], "the playground must not open pyplot figures"


def test_kernel_playground_rejects_colour_images():
    with pytest.raises(ValueError, match="grey photo H x W"):
        viz.kernel_playground(np.zeros((4, 4, 3)))


def test_apply_kernel_rejects_unknown_kernel():
    with pytest.raises(ValueError, match="sobel_x"):
        viz.apply_kernel(np.zeros((5, 5)), "blurry")


def _decoder(z_dim: int):
    """A stand-in decoder: image = sigmoid of a fixed linear map of z, 1 x 1 x 28 x 28."""
    weights = torch.randn(z_dim, 784, generator=torch.Generator().manual_seed(0))
    return lambda z: torch.sigmoid(z @ weights).reshape(-1, 1, 28, 28)


def test_latent_traversal_callback_follows_the_sliders():
    decode = _decoder(5)
    widget = viz.latent_traversal(decode, 5, dims=[1, 3], start=[0.5, 0, 0, 0, -1])
    assert [s.description for s in widget.sliders] == ["z[1]", "z[3]"]
    assert widget.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    first = widget.result.copy()
    np.testing.assert_allclose(first, viz.decode_latent(decode, [0.5, 0, 0, 0, -1]), atol=1e-6)
    widget.sliders[1].value = 2.0  # move z[3]
    np.testing.assert_array_equal(widget.z, np.float32([0.5, 0, 0, 2.0, -1]))
    np.testing.assert_allclose(widget.result, viz.decode_latent(decode, widget.z), atol=1e-6)
    assert np.abs(widget.result - first).max() > 0.01, "moving a slider must change the image"
    assert plt.get_fignums() == [], "the traversal must not open pyplot figures"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(z_dim=0), "z_dim must be a positive int"),
        (dict(z_dim=4, dims=[4]), "dims must be latent dimensions in 0..3"),
        (dict(z_dim=4, start=[0, 0]), "start must hold z_dim = 4 numbers"),
    ],
)
def test_latent_traversal_says_what_is_wrong(kwargs, words):
    with pytest.raises(ValueError, match=words):
        viz.latent_traversal(_decoder(4), **kwargs)


def test_decode_latent_wants_one_grey_image():
    with pytest.raises(ValueError, match="1 x 1 x H x W"):
        viz.decode_latent(lambda z: torch.zeros(2, 1, 28, 28), [0.0])


def test_noise_slider_callback_follows_the_slider():
    clean = np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)
    smooth = lambda y: scipy.ndimage.gaussian_filter(y, 1.5)  # noqa: E731
    widget = viz.noise_slider(clean, {"smooth": smooth}, sigma=10)
    assert widget.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(widget.images) == {"noisy", "smooth"}
    first, picture = dict(widget.scores), widget.picture.value
    widget.slider.value = 50
    assert widget.scores["noisy"] < first["noisy"] - 10, (first, widget.scores)
    assert widget.scores["smooth"] > widget.scores["noisy"]
    assert widget.picture.value != picture
    images, scores = viz.denoise_views(clean, 50, {"smooth": smooth})
    np.testing.assert_array_equal(images["smooth"], widget.images["smooth"])  # seeded
    widget.slider.value = 0
    assert widget.scores["noisy"] == np.inf
    with pytest.raises(ValueError, match="grey photo H x W"):
        viz.denoise_views(np.zeros((2, 8, 8)), 5, {})
