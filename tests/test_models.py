"""Shared building blocks: the U-Net and the residual block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models import ResBlock, UNet, evaluating, in_batches


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


def test_evaluating_puts_every_submodule_back_in_its_own_mode():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5)).train()
    net[1].eval()  # a submodule kept in eval mode on purpose
    before = [m.training for m in net.modules()]
    with evaluating(net) as inside:
        assert inside is net and not any(m.training for m in net.modules())
        stats = net[1].running_mean.clone()
        net(torch.randn(8, 2))
        assert torch.equal(net[1].running_mean, stats), "eval mode must not update the statistics"
    assert [m.training for m in net.modules()] == before
    with pytest.raises(RuntimeError), evaluating(net):
        raise RuntimeError("the block fails")
    assert [m.training for m in net.modules()] == before, "a failing block must restore too"
