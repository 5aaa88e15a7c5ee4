"""pix2pix (chapter 10): the paired data, the PatchGAN and its receptive field (against
autograd), the loss (against PyTorch's binary cross-entropy), one training step, the
translator's contract, and the colourfulness measure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import skimage.color
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data, metrics
from course_lib.generative import pix2pix

# ----------------------------------------------------------------------------- data


def test_edge_pairs_are_binary_edges_of_the_digits():
    edges, x, y = pix2pix.edge_pairs("test")
    assert edges.shape == x.shape == (1000, 1, 28, 28) and y.shape == (1000,)
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    # an edge lies where the digit changes: next to ink, not in the empty corners
    assert edges[:, :, :3, :3].sum() == 0
    frac = edges.mean().item()
    assert 0.05 < frac < 0.4, f"{100 * frac:.1f}% of the pixels are edges"
    torch.testing.assert_close(x, data.digits("test")[0])


def test_canny_edges_says_what_it_expects():
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        pix2pix.canny_edges(torch.zeros(28, 28))


_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=_CUDA)])
@pytest.mark.parametrize("grad", [False, True], ids=["plain", "requires-grad"])
def test_canny_edges_take_any_device_and_grad_tracking_tensors(device, grad):
    x = data.digits("test")[0][:4]
    want = pix2pix.canny_edges(x)
    images = x.to(device).requires_grad_(grad)
    got = pix2pix.canny_edges(images)
    assert got.device == images.device and got.dtype == torch.float32, f"{device}, grad={grad}"
    assert not got.requires_grad, f"{device}, grad={grad}: edges carry no gradient"
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=0, msg=f"{device}, grad={grad}")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 99))
def test_chroma_round_trip_is_exact_and_grey_is_rec709(n, h, w, seed):
    rgb = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))
    grey, chroma = pix2pix.to_chroma(rgb)
    assert grey.shape == (n, 1, h, w) and chroma.shape == (n, 2, h, w)
    assert chroma.abs().max() <= 1
    torch.testing.assert_close(pix2pix.from_chroma(grey, chroma), rgb, atol=1e-6, rtol=0)
    expected = skimage.color.rgb2gray(rgb.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(grey[:, 0].numpy(), expected, atol=1e-6)


def test_colour_pairs_come_from_the_natural_training_photos_only():
    assert not set(pix2pix.COLOUR_TRAIN_PHOTOS) & set(data.photo_split("test"))
    assert set(pix2pix.COLOUR_TRAIN_PHOTOS) <= set(data.photo_split("train", colour=True))
    grey, chroma = pix2pix.colour_pairs(6, 32, generator=1)
    assert grey.shape == (6, 1, 32, 32) and chroma.shape == (6, 2, 32, 32)
    assert 0 <= grey.min() and grey.max() <= 1
    torch.testing.assert_close(pix2pix.colour_pairs(6, 32, generator=1)[1], chroma)


# ----------------------------------------------------------------------------- the networks


@pytest.mark.parametrize(
    "layers, expected",
    [([], 1), ([(3, 1)], 3), ([(3, 1), (3, 1)], 5), ([(2, 2), (3, 1)], 6),
     ([(3, 1), (2, 2)], 4), ([(4, 2)] * 3 + [(4, 1)] * 2, 70), ([(4, 2), (4, 1), (4, 1)], 16)],
)  # fmt: skip
def test_receptive_field_of_known_stacks(layers, expected):
    assert pix2pix.receptive_field(layers) == expected, layers


@pytest.mark.parametrize(
    "layers, error, match",
    [
        (pix2pix.PatchDiscriminator(1, 4, 2), TypeError, "PatchDiscriminator, read d.receptive"),
        (4, TypeError, "list of \\(kernel, stride\\) pairs"),
        ([4, 2], ValueError, "pair \\(kernel, stride\\).*got 4"),
        ([(4, 2, 1)], ValueError, "got \\(4, 2, 1\\)"),
        ([(4, 0)], ValueError, "ints >= 1, got \\(4, 0\\)"),
        ([(4.0, 2)], ValueError, "ints >= 1, got \\(4.0, 2\\)"),
    ],
    ids=["a network", "an int", "flat list", "a triple", "stride 0", "a float"],
)
def test_receptive_field_says_what_it_needs(layers, error, match):
    with pytest.raises(error, match=match):
        pix2pix.receptive_field(layers)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_is_what_autograd_sees(n_layers):
    d = pix2pix.PatchDiscriminator(2, 4, n_layers)
    x = torch.randn(1, 2, 128, 128, requires_grad=True)
    logits = d(x)
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    seen = x.grad[0].abs().sum(0) > 0
    rows, cols = torch.nonzero(seen.any(1)).flatten(), torch.nonzero(seen.any(0)).flatten()
    extent = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    r = d.receptive_field
    assert extent == (r, r), f"{n_layers} strided layers: autograd sees {extent}, formula {r}"


@pytest.mark.parametrize(
    "n_layers, size, out", [(1, 28, 12), (2, 28, 5), (2, 64, 14), (3, 256, 30)]
)
def test_patchgan_gives_a_map_of_logits(n_layers, size, out):
    d = pix2pix.PatchDiscriminator(3, 8, n_layers)
    assert d(torch.zeros(2, 3, size, size)).shape == (2, 1, out, out)


@pytest.mark.parametrize(
    "adversarial, d_in", [("none", None), ("conditional", 3), ("unconditional", 2)]
)
def test_the_discriminator_sees_the_pair_only_when_conditional(adversarial, d_in):
    model = pix2pix.Pix2Pix(1, 2, (8, 16), adversarial)
    if d_in is None:
        assert model.discriminator is None
        return
    assert model.discriminator.net[0].in_channels == d_in
    x, y = torch.zeros(2, 1, 16, 16), torch.zeros(2, 2, 16, 16)
    assert model.judge(x, y).shape == (2, 1, 2, 2)  # 16 -> 8 -> 4 -> 3 -> 2


def test_wrong_settings_say_what_is_allowed():
    with pytest.raises(ValueError, match="adversarial must be one of"):
        pix2pix.Pix2Pix(adversarial="yes")
    with pytest.raises(ValueError, match="task must be one of"):
        pix2pix.Pix2PixRecipe(task="maps")
    with pytest.raises(ValueError, match="lam must be >= 0"):
        pix2pix.Pix2PixRecipe(lam=-1)
    with pytest.raises(ValueError, match="n_layers"):
        pix2pix.PatchDiscriminator(1, 8, 0)


# ----------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("lam", [0.0, 1.0, 100.0])
@pytest.mark.parametrize("logit_shape", [(4,), (4, 1, 5, 5)])
def test_pix2pix_loss_is_lambda_l1_plus_bce_with_label_real(lam, logit_shape):
    gen = torch.Generator().manual_seed(int(lam) + len(logit_shape))
    logits = (3 * torch.randn(logit_shape, generator=gen)).double().requires_grad_(True)
    fake = torch.randn(4, 2, 8, 8, generator=gen).double().requires_grad_(True)
    target = torch.randn(4, 2, 8, 8, generator=gen).double()
    ours = pix2pix.pix2pix_loss(logits, fake, target, lam)
    torch_ = lam * F.l1_loss(fake, target) + F.binary_cross_entropy_with_logits(
        logits, torch.ones_like(logits)
    )
    torch.testing.assert_close(ours, torch_, msg=f"lam {lam}, logits {logit_shape}")
    g_ours = torch.autograd.grad(ours, (logits, fake))
    g_torch = torch.autograd.grad(torch_, (logits, fake))
    for name, a, b in zip(("logits", "fake"), g_ours, g_torch, strict=True):
        torch.testing.assert_close(a, b, msg=f"lam {lam}, logits {logit_shape}: d/d{name}")
    torch.testing.assert_close(
        pix2pix.pix2pix_loss(None, fake, target, lam), lam * F.l1_loss(fake, target)
    )


def test_pix2pix_loss_is_finite_for_a_confident_discriminator():
    loss = pix2pix.pix2pix_loss(torch.full((2, 1, 3, 3), -200.0), torch.zeros(2, 1, 4, 4),
                                torch.zeros(2, 1, 4, 4), 100.0)  # fmt: skip
    assert torch.isfinite(loss) and abs(loss.item() - 200) < 1e-3


# ----------------------------------------------------------------------------- training


def _tiny_batch():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(4, 1, 16, 16, generator=gen), torch.rand(4, 1, 16, 16, generator=gen) * 2 - 1


@pytest.mark.parametrize("adversarial", pix2pix.ADVERSARIAL)
def test_one_step_updates_both_players_and_logs_the_game(adversarial):
    torch.manual_seed(0)
    model = pix2pix.Pix2Pix(1, 1, (8, 16), adversarial)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=1e-3)
    opt_d = (
        None
        if model.discriminator is None
        else torch.optim.Adam(model.discriminator.parameters(), lr=1e-3)
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = pix2pix.pix2pix_step(model, opt_g, opt_d, lam=100.0)(_tiny_batch())
    changed = {
        k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])
    }
    if adversarial == "none":
        assert changed == {"generator"} and set(logs) == {"l1", "loss_g"}
    else:
        assert changed == {"generator", "discriminator"}
        assert {"l1", "loss_g", "loss_d", "d_real", "d_fake"} <= set(logs)
        assert 0 < logs["d_real"] < 1 and 0 < logs["d_fake"] < 1


def test_l1_alone_learns_on_a_fixed_batch():
    torch.manual_seed(0)
    model = pix2pix.Pix2Pix(1, 1, (8, 16), "none")
    opt = torch.optim.Adam(model.generator.parameters(), lr=3e-3)
    step, batch = pix2pix.pix2pix_step(model, opt, None, lam=1.0), _tiny_batch()
    losses = [step(batch)["l1"] for _ in range(60)]
    assert losses[-1] < 0.6 * losses[0], f"L1 {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize("task", pix2pix.TASKS)
def test_train_pix2pix_runs_a_recipe_and_translates_any_size(task):
    recipe = dataclasses.replace(pix2pix.RECIPES[task, "conditional"], steps=2, batch_size=4,
                                 n_patches=8, patch_size=32)  # fmt: skip
    model, history = pix2pix.train_pix2pix(recipe, progress=False)
    assert not model.training and len(history.steps) == 2
    out = model.translate(torch.rand(3, 1, 30, 45))  # padded to the U-Net's multiple, cropped back
    channels = 1 if task == "edges" else 2
    assert out.shape == (3, channels, 30, 45)
    low = 0 if task == "edges" else -1
    assert low <= out.min() and out.max() <= 1


def test_translate_says_what_it_expects():
    model = pix2pix.Pix2Pix(1, 1, (8, 16), "none")
    with pytest.raises(ValueError, match="N x C x H x W"):
        model.translate(torch.rand(28, 28))
    with pytest.raises(ValueError, match=r"1 channel\(s\), N x 1 x H x W"):
        model.translate(torch.rand(2, 3, 16, 16))


def test_colourise_keeps_the_grey_and_makes_up_the_colours():
    torch.manual_seed(0)
    model = pix2pix.Pix2Pix(1, 2, (8, 16), "none")
    rgb = data.photo("chelsea", gray=False)[:60, :90]
    out = pix2pix.colourise(model, rgb)
    assert out.shape == rgb.shape and 0 <= out.min() and out.max() <= 1
    inside = (out > 0.01).all(-1) & (out < 0.99).all(-1)  # not clipped: the luma is the input's
    np.testing.assert_allclose(
        skimage.color.rgb2gray(out)[inside], data.photo("chelsea")[:60, :90][inside], atol=1e-5
    )
    with pytest.raises(ValueError, match="H x W x 3"):
        pix2pix.colourise(model, rgb[..., 0])


def test_colour_report_of_grey_is_the_floor():
    report = pix2pix.colour_report(None, ["chelsea"])
    assert report["colourfulness_ratio"] == 0.0
    rgb = data.photo("chelsea", gray=False)
    grey = np.repeat(data.photo("chelsea")[..., None], 3, -1)
    assert abs(report["psnr"] - metrics.psnr(grey, rgb)) < 1e-6


# ----------------------------------------------------------------------------- colourfulness


def test_colourfulness_follows_hasler_and_suesstrunk():
    assert metrics.colourfulness(np.full((8, 8, 3), 0.3)) == 0.0
    red = np.zeros((4, 4, 3))
    red[..., 0] = 1.0  # rg = 1, yb = 0.5, no spread: M = 0.3 * sqrt(1 + 0.25)
    assert abs(metrics.colourfulness(red) - 0.3 * np.sqrt(1.25)) < 1e-12
    rgb = data.photo("astronaut", gray=False)
    r, g, b = (rgb[..., k].astype(np.float64) * 255 for k in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    paper = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert abs(255 * metrics.colourfulness(rgb) - paper) < 1e-6 * paper
    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    assert metrics.colourfulness(chw) == pytest.approx(metrics.colourfulness(rgb))
    with pytest.raises(ValueError, match="H x W x 3"):
        metrics.colourfulness(rgb[..., 0])


def test_chroma_functions_say_what_they_expect():
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        pix2pix.to_chroma(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="chroma N x 2 x H x W"):
        pix2pix.from_chroma(torch.rand(2, 1, 8, 8), torch.rand(2, 2, 8, 9))


@pytest.mark.parametrize(
    "fake, target, lam, error, match",
    [
        (torch.zeros(4, 1, 28, 28), torch.zeros(4, 28, 28), 100.0, ValueError, "same shape"),
        (torch.zeros(4, 2, 28, 28), torch.zeros(4, 1, 28, 28), 100.0, ValueError, "same shape"),
        (torch.zeros(4, 1, 28, 28).long(), torch.zeros(4, 1, 28, 28), 100.0, TypeError, "fake"),
        (torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28), -1.0, ValueError, "lam must be"),
    ],
    ids=["target without its channel", "2 channels for 1", "integer fake", "negative lambda"],
)
def test_pix2pix_loss_says_what_is_wrong(fake, target, lam, error, match):
    """Without the check, the first two broadcast to a plausible number (33.2, 33.0)."""
    with pytest.raises(error, match=match):
        pix2pix.pix2pix_loss(None, fake, target, lam)


@pytest.mark.parametrize(
    "rgb", [np.full((8, 8, 3), 200, np.uint8), np.full((8, 8, 3), 200.0)], ids=["uint8", "0-255"]
)
def test_colourise_refuses_0_255_photos(rgb):
    with pytest.raises(ValueError, match=r"floats in \[0, 1\].*divide by 255"):
        pix2pix.colourise(None, rgb)
