"""Image grids and the kernel playground, tested without a kernel or a browser."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
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
