"""Classifier metrics against hand-computed cases and scikit-learn; Fréchet distance formula."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from hypothesis import given
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from course_lib import metrics


def test_hand_computed_case():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 0, 2]
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    c = metrics.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(c, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    s = metrics.precision_recall_f1(y_true, y_pred)
    np.testing.assert_allclose(s["precision"], [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(s["recall"], [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(s["f1"], [1 / 2, 0.8, 2 / 3])
    np.testing.assert_array_equal(s["support"], [2, 2, 2])


def test_class_never_predicted_or_absent_scores_zero_like_sklearn():
    s = metrics.precision_recall_f1([0, 0, 1], [0, 0, 0], n_classes=3)
    np.testing.assert_allclose(s["precision"], [2 / 3, 0, 0])
    np.testing.assert_allclose(s["recall"], [1, 0, 0])


@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60
            ),
        )
    )
)
def test_agrees_with_scikit_learn(case):
    k, pairs = case
    y_true = torch.tensor([a for a, _ in pairs])
    y_pred = torch.tensor([b for _, b in pairs])
    labels = list(range(k))
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, k),
        skm.confusion_matrix(y_true, y_pred, labels=labels),
    )
    ours = metrics.precision_recall_f1(y_true, y_pred, k)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for name, want in (("precision", p), ("recall", r), ("f1", f), ("support", s)):
        np.testing.assert_allclose(ours[name], want, err_msg=f"{name} differs for {pairs}")


@pytest.mark.parametrize(
    "args, error, words",
    [
        (([0, 1], [0]), ValueError, "same length"),
        (([[0, 1]], [[0, 1]]), ValueError, "1-D"),
        (([0.5, 1.0], [0, 1]), TypeError, "integer"),
        (([], []), ValueError, "empty"),
    ],
)
def test_bad_labels_say_what_to_fix(args, error, words):
    with pytest.raises(error, match=words):
        metrics.accuracy(*args)
    with pytest.raises(ValueError, match="n_classes=2"):
        metrics.confusion_matrix([0, 2], [0, 1], n_classes=2)


def test_frechet_distance_of_gaussians_matches_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    d = metrics.frechet_distance_gaussians([1.0], [[4.0]], [3.0], [[9.0]])
    assert d == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2)
    # commuting (diagonal) covariances: sum of the 1-D distances
    d = metrics.frechet_distance_gaussians(
        [0, 0], np.diag([1.0, 4.0]), [1, 1], np.diag([4.0, 16.0])
    )
    assert d == pytest.approx(2 + 1 + 4)
    # identical Gaussians, even singular ones: 0
    s = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert metrics.frechet_distance_gaussians([0, 0], s, [0, 0], s) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_of_features_against_scipy_sqrtm():
    import scipy.linalg

    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((300, 6)) * 2 + 1
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    want = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real
    )
    assert metrics.frechet_distance_features(a, b) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="feature sizes differ"):
        metrics.frechet_distance_features(a, b[:, :5])


@pytest.mark.parametrize(
    "shape", [(16, 16), (12, 10, 3), (5, 1, 28, 28), (4, 9, 7), (2, 3, 8, 8)], ids=str
)
def test_psnr_matches_scikit_image_per_image_then_averaged(shape):
    rng = np.random.default_rng(sum(shape))
    target = rng.random(shape)
    estimate = np.clip(target + rng.normal(0, 0.1, shape), 0, 1)
    single = len(shape) == 2 or (len(shape) == 3 and shape[-1] == 3)
    pairs = [(target, estimate)] if single else list(zip(target, estimate, strict=True))
    want = np.mean([peak_signal_noise_ratio(t, e, data_range=1.0) for t, e in pairs])
    got = metrics.psnr(torch.from_numpy(estimate), target, data_range=1.0)
    assert got == pytest.approx(want, abs=1e-9), f"shape {shape}: {got} vs {want}"
    assert metrics.psnr(target * 255, target * 255 + 1, data_range=255) == pytest.approx(
        10 * np.log10(255**2), abs=1e-9
    )


def test_psnr_says_what_is_wrong():
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 4)), data_range=0)
    assert metrics.psnr(np.ones((4, 4)), np.ones((4, 4))) == np.inf


@pytest.mark.parametrize("metric", [metrics.psnr, metrics.ssim], ids=lambda m: m.__name__)
def test_psnr_and_ssim_refuse_a_3_x_h_x_w_image_which_could_be_colour_or_three_greys(metric):
    """One colour tensor 3 x H x W would have been scored as three grey images (the mean of
    three PSNRs, not one PSNR over the channels): both layouts are asked for explicitly."""
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"ambiguous.*H x W x 3.*3 x 1 x H x W"):
        metric(x * 0.9, x)
    as_colour = metric(x.permute(1, 2, 0) * 0.9, x.permute(1, 2, 0))
    assert as_colour == pytest.approx(metric(x[None] * 0.9, x[None])), metric.__name__
    as_greys = metric(x[:, None] * 0.9, x[:, None])
    assert np.isfinite(as_greys), metric.__name__


@pytest.mark.parametrize(
    "shape", [(16, 16), (12, 12, 3), (5, 1, 28, 28), (4, 13, 11), (2, 3, 16, 16)], ids=str
)
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_scikit_image_with_wang_settings_per_image_then_averaged(shape, data_range):
    rng = np.random.default_rng(sum(shape))
    target = rng.random(shape) * data_range
    estimate = np.clip(target + rng.normal(0, 0.1 * data_range, shape), 0, data_range)
    single = len(shape) == 2 or (len(shape) == 3 and shape[-1] == 3)
    pairs = [(target, estimate)] if single else list(zip(target, estimate, strict=True))
    colour = shape[-1] == 3 or len(shape) == 4

    def reference(t, e):
        if len(shape) == 4:  # C x H x W -> H x W x C
            t, e = t.transpose(1, 2, 0), e.transpose(1, 2, 0)
        return structural_similarity(
            t, e, data_range=data_range, channel_axis=-1 if colour else None,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )  # fmt: skip

    want = np.mean([reference(t, e) for t, e in pairs])
    got = metrics.ssim(torch.from_numpy(estimate), target, data_range=data_range)
    assert got == pytest.approx(want, abs=1e-9), f"shape {shape}: {got} vs {want}"
    assert metrics.ssim(target, target, data_range=data_range) == pytest.approx(1.0)


def test_ssim_falls_with_noise_and_says_what_is_wrong():
    image = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    rng = np.random.default_rng(0)
    values = [
        metrics.ssim(np.clip(image + rng.normal(0, s, image.shape), 0, 1), image)
        for s in (0.01, 0.05, 0.2)
    ]
    assert values[0] > values[1] > values[2], f"SSIM should fall as noise grows: {values}"
    with pytest.raises(ValueError, match="at least 11 x 11"):
        metrics.ssim(np.zeros((10, 12)), np.zeros((10, 12)))
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="data_range"):
        metrics.ssim(np.zeros((8, 8)), np.zeros((8, 8)), data_range=-1)


@pytest.mark.parametrize("metric", [metrics.psnr, metrics.ssim], ids=["psnr", "ssim"])
def test_an_image_in_0_255_with_the_default_data_range_is_refused(metric):
    """Silently, PSNR would be -12.9 dB and SSIM 0.9996 here."""
    target = np.random.default_rng(0).random((16, 16)) * 255
    with pytest.raises(ValueError, match=r"span 25\d.*more than data_range = 1.*data_range=255"):
        metric(target, target)
    assert metric(target, target, data_range=255) in (np.inf, pytest.approx(1.0))
