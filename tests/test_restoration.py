"""Restoration (chapters 08-09): degradations, classical baselines, the networks' contracts."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import scipy.ndimage
import scipy.stats
import skimage.restoration
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import metrics, weights
from course_lib.data import augment_d4, photo
from course_lib.models import ResUNet, pad_to_multiple
from course_lib.restoration import (
    apply_fully_convolutional,
    classical,
    deblur,
    degrade,
    denoise,
    inpaint,
    mean_log_error,
    superres,
    symmetry,
)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return photo("coins")[40:136, 100:196].copy()  # 96 x 96, a training photo


# ----------------------------------------------------------------------------- degrade


@pytest.mark.parametrize("sigma", [5, 25, 50])
def test_gaussian_noise_has_the_asked_level_and_is_seeded(sigma):
    x = np.full((128, 128), 0.5, np.float32)
    y = degrade.add_gaussian_noise(x, sigma, generator=1, clip=False)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == x.shape
    assert abs((y - x).std() * 255 - sigma) < 0.05 * sigma, f"sigma {sigma}: {(y - x).std() * 255}"
    np.testing.assert_array_equal(y, degrade.add_gaussian_noise(x, sigma, generator=1, clip=False))
    clipped = degrade.add_gaussian_noise(np.zeros((64, 64), np.float32), sigma, generator=1)
    assert clipped.min() == 0 and clipped.max() <= 1 and (clipped == 0).mean() > 0.4


def test_noise_keeps_the_kind_of_input_and_takes_one_level_per_image():
    x = torch.zeros(3, 1, 32, 32) + 0.5
    y = degrade.add_gaussian_noise(x, torch.tensor([0.0, 10.0, 40.0]), generator=0, clip=False)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape
    stds = (y - x).flatten(1).std(dim=1) * 255
    assert stds[0] == 0 and 8 < stds[1] < 12 and 35 < stds[2] < 45, stds
    assert degrade.add_gaussian_noise(torch.zeros(8, 8), 5).shape == (8, 8)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        degrade.add_gaussian_noise(x, -1)
    with pytest.raises(ValueError, match="H x W or a batch N x C x H x W"):
        degrade.add_gaussian_noise(np.zeros((2, 8, 8)), 5)
    with pytest.raises(TypeError, match="floats"):
        degrade.add_gaussian_noise(np.zeros((8, 8), np.uint8), 5)


def test_salt_and_pepper_hits_the_asked_fraction_half_each():
    x = np.full((200, 200), 0.5, np.float32)
    y = degrade.add_salt_and_pepper(x, 0.2, generator=0)
    assert abs((y == 0).mean() - 0.1) < 0.01 and abs((y == 1).mean() - 0.1) < 0.01
    with pytest.raises(ValueError, match="fraction"):
        degrade.add_salt_and_pepper(x, 1.5)


@pytest.mark.parametrize("kernel", [degrade.gaussian_kernel(1.5), degrade.motion_kernel(9, 30)],
                         ids=["gaussian", "motion"])  # fmt: skip
def test_blur_is_circular_convolution_like_scipy_wrap(kernel, crop):
    assert kernel.sum() == pytest.approx(1, abs=1e-6) and kernel.shape[0] % 2 == 1
    got = degrade.blur(crop, kernel)
    want = scipy.ndimage.convolve(crop.astype(np.float64), kernel, mode="wrap")
    np.testing.assert_allclose(got, want, atol=1e-5, err_msg="blur != scipy convolve(wrap)")


def test_kernels_and_masks():
    k = degrade.gaussian_kernel(2.0)
    assert k.shape == (13, 13) and np.allclose(k, k.T) and np.allclose(k, k[::-1])
    m = degrade.motion_kernel(7, 0)
    assert m.shape == (7, 7) and (m > 0).sum() == 7 and (m[3] > 0).all()
    mask = degrade.random_mask((100, 100), 0.3, 0)
    assert set(np.unique(mask)) == {0.0, 1.0} and abs((mask == 0).mean() - 0.3) < 0.03
    s = degrade.scribble_mask((64, 64), 3, 3, 0)
    assert 0 < (s == 0).mean() < 0.5
    with pytest.raises(ValueError, match="odd"):
        degrade.blur(np.zeros((8, 8), np.float32), np.ones((2, 2)))


def test_downscale_then_bicubic_shapes_and_errors(crop):
    low = degrade.downscale(crop, 3)
    assert low.shape == (32, 32)
    assert degrade.upscale_bicubic(low, 3).shape == (96, 96)
    assert metrics.psnr(degrade.upscale_bicubic(low, 3), crop) > 20
    with pytest.raises(ValueError, match="multiples of 5"):
        degrade.downscale(crop, 5)
    assert degrade.crop_to_multiple(crop[:95, :94], 3).shape == (93, 93)


_DEGRADATIONS = {
    "gaussian_noise": lambda x: degrade.add_gaussian_noise(x, 10, generator=0),
    "salt_and_pepper": lambda x: degrade.add_salt_and_pepper(x, 0.1, generator=0),
    "blur": lambda x: degrade.blur(x, degrade.gaussian_kernel(1.0)),
    "downscale": lambda x: degrade.downscale(x, 2),
    "upscale_bicubic": lambda x: degrade.upscale_bicubic(x, 2),
}


@pytest.mark.parametrize("name", list(_DEGRADATIONS))
@pytest.mark.parametrize(
    "image, match",
    [(np.full((2, 1, 16, 16), 0.5, np.float32), "a tensor, not a NumPy array"),
     (np.full((16, 16), 128.0, np.float32), r"values in \[0, 1\].*0-255"),
     (torch.full((2, 1, 16, 16), 255.0), r"values in \[0, 1\]"),
     (np.full((16, 16), -0.5), r"values in \[0, 1\]"),
     (np.full((16, 16), np.nan, np.float32), r"values in \[0, 1\]")],
    ids=["numpy-batch", "0-255", "tensor-0-255", "negative", "nan"],
)  # fmt: skip
def test_degradations_refuse_numpy_batches_and_values_outside_0_1(name, image, match):
    with pytest.raises(ValueError, match=match):
        _DEGRADATIONS[name](image)


@pytest.mark.parametrize("name", list(_DEGRADATIONS))
def test_degradations_still_take_a_tensor_batch_and_one_photo(name):
    batch = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    out = _DEGRADATIONS[name](batch)
    assert isinstance(out, torch.Tensor) and out.shape[:2] == (2, 3), f"{name}: {out.shape}"
    one = _DEGRADATIONS[name](batch[1, 2].numpy())  # one of its photos, alone, as NumPy
    assert isinstance(one, np.ndarray) and one.shape == out.shape[2:], f"{name}: {one.shape}"
    if name in ("blur", "downscale", "upscale_bicubic"):  # no noise: the same, channel by channel
        np.testing.assert_allclose(one, out[1, 2].numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "call, error, match",
    [(lambda: degrade.random_mask((2, 16, 16), 0.5), ValueError, r"\(H, W\)"),
     (lambda: degrade.random_mask((0, 16), 0.5), ValueError, "positive ints"),
     (lambda: degrade.scribble_mask((16.0, 16)), ValueError, r"\(H, W\)"),
     (lambda: degrade.scribble_mask(16), ValueError, r"\(H, W\)"),
     (lambda: degrade.blur(np.zeros((16, 16)), np.ones((3, 3)) / 9, -1.0), ValueError,
      "noise_sigma must be >= 0"),
     (lambda: degrade.crop_to_multiple(np.zeros((16, 16)), 0), ValueError, "positive int"),
     (lambda: degrade.crop_to_multiple(np.zeros(16), 3), ValueError, "H x W"),
     (lambda: degrade.crop_to_multiple([[0.0] * 4] * 4, 3), TypeError, "NumPy array or a tensor")],
    ids=["mask-3d", "mask-empty", "scribble-float", "scribble-int", "blur-noise",
         "crop-factor", "crop-1d", "crop-list"],
)  # fmt: skip
def test_degrade_settings_say_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------- classical


@pytest.mark.parametrize(
    "name, method",
    [("gaussian", classical.gaussian), ("median", classical.median),
     ("total_variation", classical.total_variation), ("wavelet", classical.wavelet),
     ("non_local_means", classical.non_local_means)],
)  # fmt: skip
def test_every_classical_denoiser_beats_the_noisy_photo(name, method, crop):
    noisy = degrade.add_gaussian_noise(crop, 25, generator=0)
    out = method(noisy)
    assert out.shape == crop.shape and out.dtype == crop.dtype and 0 <= out.min() <= out.max() <= 1
    gain = metrics.psnr(out, crop) - metrics.psnr(noisy, crop)
    assert gain > 1.0, f"{name} gains only {gain:.2f} dB at sigma 25"


@pytest.mark.skipif(not classical.bm3d_available(), reason="the optional bm3d package is absent")
def test_bm3d_beats_non_local_means(crop):
    noisy = degrade.add_gaussian_noise(crop, 25, generator=0)
    assert metrics.psnr(classical.bm3d(noisy, 25), crop) > metrics.psnr(
        classical.non_local_means(noisy), crop
    )


def test_tune_picks_the_best_setting_and_refuses_no_data(crop):
    pairs = [(degrade.add_gaussian_noise(crop, 25, generator=0), crop)]
    best, score = classical.tune(classical.gaussian, {"sigma": [0.3, 1.0, 5.0]}, pairs)
    scores = {s: metrics.psnr(classical.gaussian(pairs[0][0], sigma=s), crop) for s in (0.3, 1, 5)}
    assert best == {"sigma": max(scores, key=scores.get)} and score == max(scores.values())
    with pytest.raises(ValueError, match="at least one"):
        classical.tune(classical.gaussian, {"sigma": [1.0]}, [])
    with pytest.raises(ValueError, match=r"at least one value .* none for \['sigma'\]"):
        classical.tune(classical.gaussian, {"sigma": []}, pairs)
    with pytest.raises(ValueError, match="no setting of nan_method gave a finite score"):

        def nan_method(y, sigma):
            return np.full_like(y, np.nan)

        classical.tune(nan_method, {"sigma": [1.0]}, pairs, metric=lambda a, b: float(a.mean()))


@pytest.mark.parametrize("balance", [0.001, 0.05])
@pytest.mark.parametrize("kernel", [degrade.gaussian_kernel(2.0), degrade.motion_kernel(11, 60)],
                         ids=["gaussian", "motion"])  # fmt: skip
def test_torch_wiener_equals_scikit_image(kernel, balance, crop):
    blurred = degrade.blur(crop, kernel, 2.0, generator=0).astype(np.float64)
    want = skimage.restoration.wiener(blurred, kernel.astype(np.float64), balance, clip=False)
    got = deblur.wiener_deconvolve(torch.from_numpy(blurred)[None, None], kernel, balance)
    np.testing.assert_allclose(got[0, 0].numpy(), want, atol=1e-9, err_msg=f"balance {balance}")
    # and the classical wrapper, clipped, is what the tables use
    assert metrics.psnr(classical.wiener(blurred.astype(np.float32), kernel, balance), crop) > (
        metrics.psnr(blurred, crop) if balance == 0.05 else 0
    )


def test_biharmonic_keeps_known_pixels_and_fills_the_rest(crop):
    mask = degrade.random_mask(crop.shape, 0.5, 0)
    out = classical.biharmonic(crop * mask, mask)
    np.testing.assert_allclose(out[mask == 1], crop[mask == 1], atol=1e-6)
    assert metrics.psnr(out, crop) > metrics.psnr(crop * mask, crop) + 10


# ----------------------------------------------------------------------------- networks


@settings(max_examples=15, deadline=None)
@given(h=st.integers(8, 40), w=st.integers(8, 40), multiple=st.sampled_from([4, 8, 16]))
def test_pad_to_multiple_pads_then_crops_back(h, w, multiple):
    x = torch.rand(1, 2, h, w)
    padded, (h0, w0) = pad_to_multiple(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    torch.testing.assert_close(padded[..., :h0, :w0], x)


def test_resunet_shapes_and_error():
    net = ResUNet(2, 3, widths=(8, 16, 24), blocks=1)
    assert net(torch.rand(2, 2, 16, 24)).shape == (2, 3, 16, 24)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 2, 12, 16))


@pytest.mark.parametrize("model", [denoise.DnCNN(4, 8), denoise.UNetDenoiser((8, 16), 1)],
                         ids=["dncnn", "unet"])  # fmt: skip
def test_denoisers_learn_the_residual_and_restore_any_photo(model):
    y = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(model(y), y - model.body(y))  # x_hat = y - f(y)
    for image in (np.random.default_rng(0).random((37, 45)).astype(np.float32),
                  torch.rand(20, 31, dtype=torch.float64)):  # fmt: skip
        out = model.restore(image)
        assert type(out) is type(image) and out.shape == image.shape and out.dtype == image.dtype
        assert 0 <= out.min() and out.max() <= 1
    assert model.training is True  # restore puts the mode back


@settings(max_examples=15, deadline=None)
@given(
    h=st.integers(2, 40), w=st.integers(2, 40), sigma=st.floats(0.0, 0.3), seed=st.integers(0, 99)
)
def test_estimate_noise_sigma_is_skimage_s_haar_estimate(h, w, sigma, seed):
    """The same finest diagonal Haar details (PyWavelets' ``dwt2``) and the same median rule as
    ``skimage.restoration.estimate_sigma``, per image of a batch (even sides: PyWavelets pads an
    odd side where ours drops the last row or column)."""
    rng = np.random.default_rng(seed)
    images = rng.random((2, 1, h // 2 * 2, w // 2 * 2)) * 0.5
    images += rng.normal(0, sigma, images.shape)
    got = denoise.estimate_noise_sigma(torch.from_numpy(images))
    for i in range(2):
        # skimage.restoration.estimate_sigma's rule, with the Haar wavelet (its own is db2)
        _, (_, _, diagonal) = pywt.dwt2(images[i, 0], "db1")
        want = np.median(np.abs(diagonal)) / scipy.stats.norm.ppf(0.75)
        x = images[i, 0]
        hh = np.sort(np.abs(x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]).ravel())
        # torch's median of an even count is the lower middle value, NumPy's the mean of two
        lower, upper = hh[(len(hh) - 1) // 2] / 2, hh[len(hh) // 2] / 2
        ours = lower / 0.6745
        assert abs(float(got[i]) - ours) <= 1e-9, f"{images.shape}: {float(got[i])} vs {ours}"
        slack = (upper - lower) / 2 / 0.6745 + 1e-4 * want + 1e-12
        assert abs(float(got[i]) - want) <= slack, f"{images.shape}: {float(got[i])} vs {want}"
    odd = torch.from_numpy(np.pad(images, ((0, 0), (0, 0), (0, 1), (0, 1)), constant_values=9.0))
    torch.testing.assert_close(denoise.estimate_noise_sigma(odd), got)  # the odd side is left out


@pytest.mark.parametrize("sigma, within", [(15.0, 0.08), (25.0, 0.05), (50.0, 0.05)])
def test_estimate_noise_sigma_finds_the_level_of_noise_on_a_photo(sigma, within):
    """On camera with unclipped noise: 15 reads as 16.0 (its fine texture counts as noise), 25
    and 50 within 5%. Clipped, as the photos the network sees are, 50 reads low."""
    clean = torch.from_numpy(photo("camera"))[None, None]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    got = 255 * float(denoise.estimate_noise_sigma(clean + sigma / 255 * noise))
    assert abs(got - sigma) < within * sigma, f"sigma {sigma}: estimated {got:.2f}"
    clipped = 255 * float(denoise.estimate_noise_sigma(degrade.add_gaussian_noise(clean, sigma)))
    assert clipped <= got + 0.5, f"sigma {sigma}: clipped {clipped:.2f}, unclipped {got:.2f}"
    if sigma == 50:
        assert clipped < 0.9 * sigma, f"clipping at 0 and 1 should hide noise: {clipped:.2f}"


def test_a_denoiser_with_a_noise_map_reads_the_estimated_level():
    model = denoise.UNetDenoiser((8, 16), 1, noise_map=True)
    y = torch.rand(2, 1, 16, 16)
    level = denoise.estimate_noise_sigma(y)[:, None, None, None].expand_as(y)
    # x_hat = y - f(y, sigma_hat)
    torch.testing.assert_close(model(y), y - model.body(torch.cat([y, level], 1)))
    torch.testing.assert_close(model(y, torch.tensor([0.1, 0.2])), y - model.body(
        torch.cat([y, torch.tensor([0.1, 0.2])[:, None, None, None].expand_as(y)], 1)))  # fmt: skip
    assert model.body.head.in_channels == 8  # 2 channels, each folded into 4 (pixel_unshuffle)
    out = model.restore(np.random.default_rng(0).random((37, 45)).astype(np.float32))
    assert out.shape == (37, 45) and 0 <= out.min() and out.max() <= 1
    identity = denoise.UNetDenoiser((8, 16), 1, zero_init=True, noise_map=True)
    torch.testing.assert_close(identity(y), y)
    assert denoise.DenoiseRecipe(widths=(8, 16), blocks=1, noise_map=True).build().noise_map
    with pytest.raises(ValueError, match="option of the 'unet' arch"):
        denoise.DenoiseRecipe(arch="dncnn", noise_map=True).build()


@pytest.mark.parametrize("shape", [(8, 40), (17, 17), (37, 45), (32, 48)])
def test_restore_with_a_noise_map_estimates_the_level_on_the_photo_not_the_padding(shape):
    """Padding to a multiple of 16 copies or mirrors rows, which have no noise of their own:
    the level must come from the photo as given (an 8-pixel side read 0 before)."""
    model = denoise.UNetDenoiser((8, 16), 1, noise_map=True).eval()
    rng = np.random.default_rng(0)
    image = np.clip(0.5 + rng.normal(0, 25 / 255, shape), 0, 1).astype(np.float32)
    seen = []
    body = model.body.forward
    model.body.forward = lambda x: seen.append(float(x[0, 1, 0, 0])) or body(x)
    model.restore(image)
    want = float(denoise.estimate_noise_sigma(torch.from_numpy(image)[None, None]))
    assert seen == [pytest.approx(want, rel=1e-6)], f"{shape}: map {seen}, photo's level {want}"
    model.restore(image, self_ensemble=True)
    assert seen[1:] == [pytest.approx(want, rel=1e-6)] * 8, f"{shape}: {seen[1:]}"
    out = model.restore(image, level=50 / 255)
    assert out.shape == shape and seen[-1] == pytest.approx(50 / 255)
    for bad in (-0.1, float("nan"), float("inf"), "25", True):
        with pytest.raises(ValueError, match="level must be a number >= 0"):
            model.restore(image, level=bad)
    with pytest.raises(ValueError, match="level is for a denoiser with a noise map"):
        denoise.UNetDenoiser((8, 16), 1).restore(image, level=0.1)


@pytest.mark.parametrize(
    "noisy, error, match",
    [(np.zeros((1, 1, 8, 8)), TypeError, "float tensor"),
     (torch.zeros(1, 1, 8, 8, dtype=torch.int64), TypeError, "float tensor"),
     (torch.zeros(8, 8), ValueError, "N x 1 x H x W"),
     (torch.zeros(1, 3, 8, 8), ValueError, "N x 1 x H x W"),
     (torch.zeros(1, 1, 1, 8), ValueError, "H, W >= 2")],
    ids=["numpy", "int", "2d", "colour", "one row"],
)  # fmt: skip
def test_estimate_noise_sigma_says_what_it_needs(noisy, error, match):
    with pytest.raises(error, match=match):
        denoise.estimate_noise_sigma(noisy)


@pytest.mark.parametrize(
    "image, error, match",
    [(np.zeros((2, 8, 8), np.float32), ValueError, "H x W"),
     (np.zeros((8, 8), np.uint8), TypeError, "floats in"),
     (np.full((8, 8), 1.5, np.float32), ValueError, r"\[0, 1\]"),
     (np.full((8, 8), np.nan, np.float32), ValueError, r"\[0, 1\]"),
     ([[0.5] * 8] * 8, TypeError, "NumPy array or a tensor")],
    ids=["3d", "uint8", "range", "nan", "list"],
)  # fmt: skip
def test_restore_says_what_is_wrong(image, error, match):
    with pytest.raises(error, match=match):
        denoise.DnCNN(3, 4).restore(image)


def test_denoiser_training_lowers_the_loss_and_pairs_are_seeded():
    recipe = denoise.DenoiseRecipe(widths=(8, 16), blocks=1, patch=32, pool=64, batch_size=8,
                                   steps=40, lr=3e-3, sigma_range=(25.0, 25.0))  # fmt: skip
    model, history = denoise.train_denoiser(recipe, progress=False)
    losses = [s["loss"] for s in history.steps]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), f"loss {losses[:5]} -> {losses[-5:]}"
    (y1, x1), _ = denoise.noisy_pairs(25)
    (y2, _), _ = denoise.noisy_pairs(25)
    np.testing.assert_array_equal(y1, y2)
    assert metrics.psnr(model.restore(y1), x1) > metrics.psnr(y1, x1)


@pytest.mark.parametrize("kind", ["mse", "log", "level_weighted"])
def test_denoising_loss_is_the_error_of_the_predicted_noise(kind):
    model = denoise.DnCNN(3, 4)
    clean = torch.rand(3, 1, 16, 16)
    sigma = torch.tensor([0.0, 15.0, 50.0])
    torch.manual_seed(1)
    loss = denoise.denoising_loss(
        model, clean, sigma, log=kind == "log", level_weighted=kind == "level_weighted"
    )
    torch.manual_seed(1)  # the same noise, drawn again
    noisy = degrade.add_gaussian_noise(clean, sigma)
    # || x_hat - x ||^2 = || f(y) - (y - x) ||^2, per patch
    per_patch = ((model.body(noisy) - (noisy - clean)) ** 2).mean(dim=(1, 2, 3))
    expected = {
        "mse": per_patch.mean(),
        "log": torch.log(per_patch + 1e-5).mean(),
        # w = 35 / (sigma + 10): 3.5, 1.4, 7/12
        "level_weighted": (torch.tensor([3.5, 1.4, 7 / 12]) * per_patch).mean(),
    }[kind]
    torch.testing.assert_close(loss, expected, msg=lambda m: f"{kind}: {m}")
    with pytest.raises(ValueError, match="one error per patch"):
        mean_log_error(per_patch[:, None])
    with pytest.raises(TypeError, match="tensor"):
        mean_log_error([0.1, 0.2])
    with pytest.raises(ValueError, match="not both"):
        denoise.denoising_loss(model, clean, sigma, log=True, level_weighted=True)


def test_level_weight_is_one_at_25_and_falls_with_the_level():
    w = denoise.level_weight(torch.tensor([0.0, 15.0, 25.0, 50.0, 55.0]))
    torch.testing.assert_close(w, torch.tensor([3.5, 1.4, 1.0, 7 / 12, 35 / 65]))
    assert bool((w[1:] < w[:-1]).all()), f"the weight must fall with the level: {w.tolist()}"


@pytest.mark.parametrize("k", range(8))
def test_symmetry_is_data_augment_d4_on_tensors_and_inverse_undoes_it(k):
    x = torch.rand(2, 3, 5, 7)
    turned = symmetry(x, k)
    expected = np.stack([[augment_d4(c, k) for c in im] for im in x.numpy()])
    np.testing.assert_array_equal(turned.numpy(), expected, err_msg=f"k={k}")
    torch.testing.assert_close(symmetry(turned, k, inverse=True), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="0..7"):
        symmetry(x, k + 8)


def test_self_ensemble_is_equivariant_and_changes_nothing_for_an_equivariant_net():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 20)
    lopsided = torch.nn.Conv2d(1, 1, 3, padding=1)  # a random 3x3 kernel: not symmetric
    plain = apply_fully_convolutional(lopsided, x, 1)
    ensemble = apply_fully_convolutional(lopsided, x, 1, self_ensemble=True)
    assert ensemble.shape == x.shape
    xt = x.transpose(-2, -1)
    turned = apply_fully_convolutional(lopsided, xt, 1, self_ensemble=True)
    gap = (turned - ensemble.transpose(-2, -1)).abs().max().item()
    assert gap < 1e-6, f"the self-ensemble must commute with transposition, off by {gap:.3g}"
    gap_plain = (apply_fully_convolutional(lopsided, xt, 1) - plain.transpose(-2, -1)).abs().max()
    assert gap_plain > 1e-3, "the test needs a network that is not equivariant by itself"
    pointwise = torch.nn.Conv2d(1, 1, 1)  # 1x1: commutes with every rotation and flip
    torch.testing.assert_close(
        apply_fully_convolutional(pointwise, x, 1, self_ensemble=True),
        apply_fully_convolutional(pointwise, x, 1),
    )
    noisy = np.random.default_rng(0).random((20, 12)).astype(np.float32)
    out = denoise.DnCNN(3, 4).restore(noisy, self_ensemble=True)
    assert out.shape == noisy.shape and out.dtype == np.float32


def test_inpainter_keeps_the_known_pixels_and_the_loss_sees_only_missing_ones():
    x, m = torch.rand(2, 1, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    out = inpaint.Inpainter((8, 16), 1)(x, m)
    torch.testing.assert_close(out * m, x * m)
    target = x.clone()
    target[m == 1] += 5  # errors on known pixels must not count
    err = (out - x)[m == 0]
    torch.testing.assert_close(inpaint.masked_mse(out, target, m), (err**2).mean())
    restored = inpaint.Inpainter((8, 16), 1).restore(x[0, 0].numpy(), m[0, 0].numpy())
    assert restored.shape == (16, 16)
    with pytest.raises(ValueError, match="mask must be 0/1"):
        inpaint.Inpainter((8, 16), 1).restore(x[0, 0].numpy(), np.full((16, 16), 0.5))


_CUDA = [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                       reason="no CUDA device"))]  # fmt: skip


@pytest.mark.parametrize("device", ["cpu", *_CUDA])
@pytest.mark.parametrize("kind", ["numpy", "tensor", "grad-tensor", "bool-tensor"])
def test_inpainter_restore_takes_the_mask_as_any_tensor(kind, device):
    torch.manual_seed(0)
    net = inpaint.Inpainter((8, 16), 1).to(device)
    x = np.random.default_rng(0).random((20, 27)).astype(np.float32)
    m = degrade.random_mask(x.shape, 0.5, 0)
    want = net.restore(x * m, m)  # NumPy photo and mask
    mask = {"numpy": m, "tensor": torch.from_numpy(m).to(device),
            "grad-tensor": torch.from_numpy(m).to(device).requires_grad_(),
            "bool-tensor": torch.from_numpy(m == 1).to(device)}[kind]  # fmt: skip
    image = torch.from_numpy(x * m).to(device)
    got = net.restore(image, mask)
    assert isinstance(got, torch.Tensor) and got.device == image.device, f"{kind} on {device}"
    np.testing.assert_allclose(got.cpu().numpy(), want, atol=1e-6, err_msg=f"{kind} on {device}")


def test_deblurrer_starts_from_wiener_and_restores_any_size(crop):
    net = deblur.Deblurrer((8, 16), 1)
    kernel = deblur.pad_kernel(degrade.gaussian_kernel(1.5))
    y = torch.from_numpy(degrade.blur(crop, kernel))[None, None]
    wiener = deblur.wiener_deconvolve(y, kernel, net.balance)
    torch.testing.assert_close(net(y, kernel), wiener + net.body(torch.cat([y, wiener], 1)))
    out = net.restore(crop[:90, :93], kernel)
    assert out.shape == (90, 93) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("shape", [(96, 96), (90, 93), (81, 64), (64, 77)],
                         ids=["multiple", "both-sides", "rows", "columns"])  # fmt: skip
def test_deblurrer_restore_runs_wiener_on_the_whole_photo(shape, crop):
    """Wiener on the whole photo (the circular blur's model holds only there), the network on
    its padded input; on multiples of the network's multiple, exactly ``forward``."""
    kernel = deblur.pad_kernel(degrade.motion_kernel(9, 30))
    x = crop[: shape[0], : shape[1]].copy()
    y = degrade.blur(x, kernel, 2.0, generator=0)
    t = torch.from_numpy(y)[None, None]
    wiener = deblur.wiener_deconvolve(t, kernel, 0.005)[0, 0].clamp(0, 1).numpy()
    untrained = deblur.Deblurrer((8, 16), 1)  # last layer zero: it is Wiener deconvolution
    np.testing.assert_array_equal(untrained.restore(y, kernel), wiener, err_msg=f"{shape}")
    torch.manual_seed(0)
    net = deblur.Deblurrer((8, 16), 1)
    torch.nn.init.normal_(net.body.tail.weight, std=0.1)  # a network that changes something
    out = net.restore(y, kernel)
    assert out.shape == shape and out.dtype == np.float32, f"{shape}: {out.shape}, {out.dtype}"
    assert np.abs(out - wiener).max() > 1e-3, f"{shape}: the network must have been applied"
    if shape[0] % net.multiple == 0 and shape[1] % net.multiple == 0:
        np.testing.assert_array_equal(out, net(t, kernel)[0, 0].clamp(0, 1).detach().numpy())


@pytest.fixture(scope="module")
def shipped_deblurrer() -> deblur.Deblurrer:
    return weights.load("deblur")


@pytest.mark.parametrize("size", [(250, 243), (241, 255)], ids=["250x243", "241x255"])
@pytest.mark.parametrize("kernel_name", ["gaussian2", "motion11"])
def test_shipped_deblurrer_is_as_good_on_sizes_that_are_not_multiples(
    kernel_name, size, shipped_deblurrer
):
    """On an ``h x w`` crop of a training photo (not multiples of 16), blurred circularly, the
    shipped deblurrer gains over Wiener what it gains on the 256 x 256 photo around it (it lost
    0.8 dB there, and 3 dB to Wiener itself with motion blur, when Wiener ran on a crop)."""
    model = shipped_deblurrer
    base = {"gaussian2": degrade.gaussian_kernel(2.0), "motion11": degrade.motion_kernel(11, 30)}
    kernel = deblur.pad_kernel(base[kernel_name])
    full = photo("coins")[20:276, 60:316].copy()  # 256 x 256, multiples of 16
    h, w = size
    x = full[:h, :w].copy()
    y = degrade.blur(x, kernel, 2.0, generator=0)
    got = metrics.psnr(model.restore(y, kernel), x)
    wiener = metrics.psnr(classical.wiener(y, kernel, model.balance), x)
    from_full = model.restore(degrade.blur(full, kernel, 2.0, generator=0), kernel)
    reference = metrics.psnr(from_full[:h, :w], x)  # the same region, restored in the full photo
    case = (f"{kernel_name} {h}x{w}: restored {got:.2f} dB, Wiener {wiener:.2f}, "
            f"the same region restored in the 256x256 photo {reference:.2f}")  # fmt: skip
    assert got > wiener + 1.0, case
    assert got > reference - 0.3, case


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), r=st.integers(2, 4), h=st.integers(1, 5),
       w=st.integers(1, 5))  # fmt: skip
def test_pixel_shuffle_by_hand_equals_pytorch(n, c, r, h, w):
    x = torch.randn(n, c * r * r, h, w)
    want = torch.nn.functional.pixel_shuffle(x, r)
    torch.testing.assert_close(superres.pixel_shuffle(x, r), want, msg=f"r={r} c={c}")
    torch.testing.assert_close(superres.pixel_shuffle_naive(x, r), want, msg=f"naive r={r}")


def test_espcn_enlarges_and_starts_near_bicubic(crop):
    net = superres.ESPCN(3, (8, 4))
    low = degrade.downscale(crop, 3)
    out = net.restore(low)
    assert out.shape == (96, 96) and isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, degrade.upscale_bicubic(low, 3), atol=1e-6)  # untrained
    with pytest.raises(ValueError, match="factor must be an int >= 2"):
        superres.ESPCN(1)


@pytest.mark.parametrize("kind", ["random", "scribble"])
def test_normalized_fill_keeps_known_pixels_and_reproduces_smooth_photos(kind):
    shape = (64, 64)
    m = (
        degrade.random_mask(shape, 0.6, 0)
        if kind == "random"
        else degrade.scribble_mask(shape, 3, 5, 0)
    )
    m = torch.from_numpy(m)[None, None]
    constant = torch.full((1, 1, *shape), 0.3)
    torch.testing.assert_close(inpaint.normalized_fill(constant * m, m), constant)
    ramp = torch.linspace(0, 1, 64).repeat(64, 1)[None, None]  # a linear ramp, left to right
    filled = inpaint.normalized_fill(ramp * m, m)
    torch.testing.assert_close(filled * m, ramp * m)
    inner = np.s_[..., 16:48, 16:48]  # away from the borders, the local mean follows the ramp
    error = (filled - ramp)[inner].abs().max().item()
    assert error < 3 / 64, (
        f"{kind}: the fill is off a linear ramp by {error * 64:.1f} pixels' worth"
    )


@pytest.mark.parametrize(
    "train_fn, recipe",
    [(inpaint.train_inpainter, inpaint.InpaintRecipe(widths=(8, 16), blocks=1, patch=32, pool=32,
                                                      batch_size=8, steps=30, lr=3e-3)),
     (inpaint.train_inpainter, inpaint.InpaintRecipe(widths=(8, 16), blocks=1, patch=32, pool=16,
                                                      batch_size=8, steps=30, lr=3e-3,
                                                      guess="biharmonic", log_loss=False)),
     (deblur.train_deblurrer, deblur.DeblurRecipe(widths=(8, 16), blocks=1, patch=32, pool=32,
                                                   batch_size=8, steps=30, lr=3e-3)),
     (superres.train_superres, superres.SuperResRecipe(widths=(8, 4), patch=30, pool=64,
                                                       batch_size=16, steps=30, lr=3e-3))],
    ids=["inpaint", "inpaint-biharmonic", "deblur", "superres"],
)  # fmt: skip
def test_restoration_training_lowers_the_loss(train_fn, recipe):
    model, history = train_fn(recipe, progress=False)
    losses = history.series("loss")
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < first, f"{type(recipe).__name__}: loss {first:.4g} -> {last:.4g}"
    assert not model.training


def test_zero_initialised_networks_start_at_their_baseline(crop):
    y = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(denoise.UNetDenoiser((8, 16), 1, zero_init=True)(y), y)
    kernel = deblur.pad_kernel(degrade.gaussian_kernel(1.5))
    blurred = torch.from_numpy(degrade.blur(crop, kernel))[None, None]
    torch.testing.assert_close(
        deblur.Deblurrer((8, 16), 1)(blurred, kernel),
        deblur.wiener_deconvolve(blurred, kernel, deblur.Deblurrer().balance),
    )
    m = torch.from_numpy(degrade.random_mask((32, 32), 0.5, 0))[None, None]
    x = torch.rand(1, 1, 32, 32)
    torch.testing.assert_close(
        inpaint.Inpainter((8, 16), 1)(x, m), inpaint.normalized_fill(x * m, m)
    )


# ----------------------------------------------------------------------------- a learner's mistakes

MASK = torch.ones(2, 1, 16, 16)
IMAGE = torch.rand(2, 1, 16, 16)
BAD_MASKS = {
    "bool mask": (MASK.bool(), TypeError, "mask must be a float tensor N x 1 x H x W"),
    "NumPy mask": (MASK.numpy(), TypeError, r"torch.as_tensor\(mask\).float\(\)"),
    "mask without its channel": (MASK[:, 0], ValueError, r"and \(2, 16, 16\)$"),
    "mask of one image": (MASK[:1], ValueError, "one and the same shape N x 1 x H x W"),
}


@pytest.mark.parametrize("case", BAD_MASKS)
def test_masked_mse_and_compose_say_what_is_wrong_with_the_mask(case):
    mask, error, match = BAD_MASKS[case]
    with pytest.raises(error, match=match):
        inpaint.masked_mse(IMAGE, IMAGE, mask)
    with pytest.raises(error, match=match):
        inpaint.compose(IMAGE, IMAGE, mask)


@pytest.mark.parametrize("shuffle", ["pixel_shuffle", "pixel_shuffle_naive"])
@pytest.mark.parametrize(
    "x, r, match",
    [
        (torch.zeros(1, 10, 4, 4), 3, r"N x \(C r\^2\) x H x W with r = 3, got \(1, 10, 4, 4\)"),
        (torch.zeros(9, 4, 4), 3, r"got \(9, 4, 4\)"),
        (torch.zeros(1, 9, 4, 4), 0, "r must be an int >= 1"),
        (torch.zeros(1, 9, 4, 4), 1.5, "r must be an int >= 1"),
    ],
    ids=["10 channels for r = 3", "no batch axis", "r = 0", "r = 1.5"],
)
def test_both_pixel_shuffles_say_what_is_wrong(shuffle, x, r, match):
    with pytest.raises(ValueError, match=match):
        getattr(superres, shuffle)(x, r)


@pytest.mark.parametrize("method", ["gaussian", "median", "total_variation", "non_local_means"])
def test_classical_methods_refuse_a_0_255_photo(method):
    with pytest.raises(ValueError, match=r"values in \[0, 1\] \(0-255 photos: divide by 255\)"):
        getattr(classical, method)(255 * photo("camera")[:32, :32])


BAD_WIENER = {
    "a NumPy photo": (np.zeros((16, 16)), np.ones((3, 3)) / 9, 0.1, "a tensor N x 1 x H x W"),
    "H x W": (torch.zeros(16, 16), np.ones((3, 3)) / 9, 0.1, r"got \(16, 16\)"),
    "an even kernel": (torch.zeros(1, 1, 16, 16), np.ones((4, 4)) / 16, 0.1, "k odd"),
    "a kernel wider than the photo": (torch.zeros(1, 1, 8, 8), np.ones((9, 9)), 0.1, "<= min"),
    "negative balance": (torch.zeros(1, 1, 16, 16), np.ones((3, 3)) / 9, -1.0, "balance must"),
}


@pytest.mark.parametrize("case", BAD_WIENER)
def test_wiener_deconvolve_says_what_is_wrong(case):
    blurred, kernel, balance, match = BAD_WIENER[case]
    with pytest.raises(ValueError, match=match):
        deblur.wiener_deconvolve(blurred, kernel, balance)


def test_masks_want_a_numpy_seed_and_motion_kernels_an_odd_size():
    for make in (
        lambda g: degrade.random_mask((8, 8), 0.5, g),
        lambda g: degrade.scribble_mask((8, 8), 2, 1, g),
    ):
        with pytest.raises(TypeError, match="numpy.random.Generator for the masks"):
            make(torch.Generator())
    for size in (5, 6):
        with pytest.raises(ValueError, match=f"odd int >= length = 7, got {size}"):
            degrade.motion_kernel(7, 0, size=size)
    assert degrade.motion_kernel(7, 0, size=9).shape == (9, 9)
