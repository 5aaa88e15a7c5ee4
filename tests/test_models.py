"""Shared building blocks: the U-Net and the residual block."""

from __future__ import annotations

import pytest
import torch

from course_lib.models import ResBlock, UNet, in_batches


@pytest.mark.parametrize(
    "c_in, c_out, widths, hw",
    [(1, 1, (8, 16), (28, 28)), (3, 2, (8, 16, 32), (32, 24)), (2, 3, (4, 8, 16, 32), (16, 16))],
)
def test_unet_keeps_the_size_and_every_parameter_gets_a_gradient(c_in, c_out, widths, hw):
    torch.manual_seed(0)
    net = UNet(c_in, c_out, widths)
    x = torch.randn(2, c_in, *hw)
    y = net(x)
    assert y.shape == (2, c_out, *hw), f"widths={widths}, input {hw}: got {tuple(y.shape)}"
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"widths={widths}: no gradient reaches {missing}"


def test_unet_skip_connections_carry_fine_detail():
    """Change one input pixel: the output changes most near that pixel, not everywhere alike."""
    torch.manual_seed(0)
    net = UNet(1, 1, (8, 16, 32)).eval()
    x = torch.zeros(1, 1, 16, 16)
    y0 = net(x)
    x[0, 0, 3, 3] = 5.0
    delta = (net(x) - y0).abs()[0, 0]
    assert delta[2:5, 2:5].mean() > 3 * delta[10:, 10:].mean()


def test_unet_says_which_sizes_it_accepts():
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(1, 1, (8, 16, 32))(torch.zeros(1, 1, 30, 30))
    with pytest.raises(ValueError, match="at least 2 levels"):
        UNet(1, 1, (8,))


def test_resblock_keeps_the_shape_and_is_the_identity_when_its_last_conv_is_zero():
    block = ResBlock(8)
    x = torch.randn(2, 8, 7, 7)
    assert block(x).shape == x.shape
    torch.nn.init.zeros_(block.body[-1].weight)
    torch.nn.init.zeros_(block.body[-1].bias)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("n, size", [(1, 4), (7, 3), (8, 4), (10, 100)])
def test_in_batches_gives_what_one_call_gives_and_passes_none_through(n, size):
    x, y = torch.randn(n, 3), torch.randn(n, 3)
    seen = []

    def fn(a, b, c):
        seen.append(len(a))
        assert c is None, "None must reach fn as None"
        return a * 2 + b

    got = in_batches(fn, size, x, y, None)
    assert torch.equal(got, x * 2 + y), f"n={n}, size={size}: {(got - (x * 2 + y)).abs().max()}"
    assert seen == [min(size, n - i) for i in range(0, n, size)], (n, size, seen)
