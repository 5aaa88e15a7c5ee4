"""Augmentation with torch ops: shapes, value range, identity settings, label-free geometry."""

from __future__ import annotations

import pytest
import torch

from course_lib import augment, seed_everything

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TRANSFORMS = {
    "rotation": (augment.RandomRotation(15), augment.RandomRotation(0)),
    "shift": (augment.RandomShift(3), augment.RandomShift(0)),
    "hflip": (augment.RandomFlip(0.5), augment.RandomFlip(0.0)),
    "vflip": (augment.RandomFlip(0.5, horizontal=False), augment.RandomFlip(0.0, horizontal=False)),
    "compose": (
        augment.Compose([augment.RandomRotation(10), augment.RandomShift(2)]),
        augment.Compose([augment.RandomRotation(0), augment.RandomShift(0)]),
    ),
}


def _batch(device, n=16, c=1):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, c, 28, 20, generator=g).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_device_and_range_are_kept(device, name, channels):
    seed_everything(0)
    x = _batch(device, c=channels)
    y = TRANSFORMS[name][0](x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1 + 1e-6, f"{name}: values left [0, 1]"
    assert not torch.equal(y, x), f"{name} changed nothing"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_identity_setting_changes_nothing(device, name):
    x = _batch(device)
    assert torch.equal(TRANSFORMS[name][1](x), x)


def test_affine_with_zero_motion_is_the_identity_and_shift_moves_whole_pixels():
    x = _batch("cpu")
    same = augment.affine(x, torch.zeros(16), torch.zeros(16, 2))
    assert (same - x).abs().max() < 1e-5
    moved = augment.affine(x, torch.zeros(16), torch.tensor([[2.0, 1.0]] * 16), mode="nearest")
    assert torch.equal(moved[:, :, 1:, 2:], x[:, :, :-1, :-2])
    assert moved[:, :, :1].abs().max() == 0 and moved[:, :, :, :2].abs().max() == 0


def test_rotation_by_90_degrees_is_rot90():
    x = torch.rand(2, 1, 9, 9)
    turned = augment.affine(x, torch.full((2,), 90.0), torch.zeros(2, 2))
    assert (turned - torch.rot90(x, 1, dims=(-2, -1))).abs().max() < 1e-5


def test_random_parameters_follow_the_seed():
    x = _batch("cpu")
    t = TRANSFORMS["compose"][0]
    seed_everything(3)
    a = t(x)
    seed_everything(3)
    assert torch.equal(t(x), a)


def test_flip_probability_is_respected():
    seed_everything(0)
    x = torch.arange(4.0).view(1, 1, 1, 4).repeat(2000, 1, 1, 1)
    flipped = (augment.RandomFlip(0.3)(x)[:, 0, 0, 0] == 3).float().mean().item()
    assert 0.25 < flipped < 0.35


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: augment.RandomRotation(-1), "degrees"),
        (lambda: augment.RandomShift(1.5), "pixels"),
        (lambda: augment.RandomFlip(2), "probability"),
    ],
)
def test_bad_settings_say_what_to_fix(make, words):
    with pytest.raises(ValueError, match=words):
        make()


def test_bad_batches_say_what_to_fix():
    with pytest.raises(ValueError, match="N x C x H x W"):
        augment.RandomShift(1)(torch.zeros(28, 28))
    with pytest.raises(TypeError, match="float"):
        augment.RandomRotation(5)(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
