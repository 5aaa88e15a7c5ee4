"""The shipped judge and the generator metrics built on it, calibrated on damaged digits."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from course_lib import data, judge, metrics, weights
from course_lib.classifier import JUDGE, evaluate_classifier
from course_lib.train import load_checkpoint


@pytest.fixture(scope="module")
def sets():
    g = torch.Generator().manual_seed(0)
    x, y = data.digits("train")
    real = x[:1000]
    k = torch.tensor([1.0, 4, 6, 4, 1])
    k = (k[:, None] * k[None, :]) / 256
    return {
        "train": real,
        "labels": y[:1000],
        "blurred": F.conv2d(real, k[None, None], padding=2),
        "noisy": (real + 0.3 * torch.randn(real.shape, generator=g)).clamp(0, 1),
        "single class": x[y == 3],
        "uniform noise": torch.rand(1000, 1, 28, 28, generator=g),
    }


def test_shipped_weights_are_small_safe_and_accurate():
    assert judge.WEIGHTS.is_file(), "run `python -m course_lib.weights build judge`"
    assert judge.WEIGHTS == weights.entry("judge").path
    size_mb = judge.WEIGHTS.stat().st_size / 2**20
    assert size_mb <= 5, f"judge weights are {size_mb:.2f} MiB (limit 5)"
    state = load_checkpoint(judge.WEIGHTS)  # weights_only=True
    assert state["meta"]["recipe"]["widths"] == JUDGE.widths
    assert state["meta"]["metric"] == "test_accuracy"
    scores = evaluate_classifier(judge.load_judge(), *data.digits("test"))
    assert scores["accuracy"] >= 0.97, f"judge test accuracy {scores['accuracy']:.3f} < 0.97"
    assert scores["accuracy"] == pytest.approx(state["meta"]["value"], abs=1e-6)


def test_judge_is_frozen_and_in_eval_mode():
    model = judge.load_judge()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert judge.judge_features(torch.zeros(3, 1, 28, 28)).shape == (3, 512)


def test_missing_weights_name_the_command_that_recreates_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m course_lib.weights build judge"):
        judge.load_judge(path=tmp_path / "nope.pt")


def test_frechet_distance_calibration(sets):
    """Train vs test digits must be far closer than any damaged or degenerate set."""
    test = data.digits("test")[0]
    real = metrics.frechet_distance(sets["train"], test)
    assert real < 20, f"train vs test distance {real:.1f} is too large"
    for name in ("blurred", "noisy", "single class", "uniform noise"):
        d = metrics.frechet_distance(sets[name], test)
        assert d > 10 * real, f"{name}: distance {d:.1f} is not far above train vs test {real:.1f}"
    assert metrics.frechet_distance(test, test) == pytest.approx(0, abs=1e-3)


def test_generator_report_on_real_and_degenerate_sets(sets):
    good = metrics.generator_report(sets["train"], requested_labels=sets["labels"])
    assert good["accuracy"] > 0.97 and good["coverage"] == 10
    assert good["entropy"] > 2.25 and good["confidence"] > 0.9 and good["fid_test"] < 20
    assert sum(good["class_histogram"]) == pytest.approx(1)
    one = metrics.generator_report(sets["single class"], requested_labels=torch.full((400,), 3))
    assert one["coverage"] == 1 and one["entropy"] < 0.2 and one["accuracy"] > 0.97
    assert one["fid_test"] > 10 * good["fid_test"]
    wrong = metrics.generator_report(sets["single class"], requested_labels=torch.full((400,), 5))
    assert wrong["accuracy"] < 0.05


@pytest.mark.parametrize(
    "images, error, words",
    [
        (torch.rand(10, 28, 28), ValueError, "N x 1 x 28 x 28"),
        (torch.rand(10, 1, 28, 28) * 2 - 1, ValueError, r"\(x \+ 1\) / 2"),
        (torch.zeros(10, 1, 28, 28, dtype=torch.uint8), TypeError, "float"),
        ([[0.0]], TypeError, "torch tensor"),
    ],
)
def test_bad_images_say_what_to_fix(images, error, words):
    with pytest.raises(error, match=words):
        metrics.frechet_distance(images, torch.rand(10, 1, 28, 28))
    with pytest.raises(error, match=words):
        metrics.generator_report(images)


def test_requested_labels_must_match_in_length():
    with pytest.raises(ValueError, match="3 entries for 10 images"):
        metrics.generator_report(torch.rand(10, 1, 28, 28), requested_labels=[1, 2, 3])


@pytest.fixture(scope="module")
def other_judge():
    """A second judge: the judge's architecture with other (here untrained, seeded) weights."""
    torch.manual_seed(1)
    return JUDGE.build().eval().requires_grad_(False)


def test_the_shipped_judge_passed_explicitly_changes_nothing(sets):
    shipped = judge.load_judge()
    test = data.digits("test")[0]
    assert judge.test_features(shipped) is judge.test_features(), "the cached features"
    default = metrics.frechet_distance(sets["train"], test)
    explicit = metrics.frechet_distance(sets["train"], test, judge=shipped)
    assert explicit == pytest.approx(default, rel=1e-9), (explicit, default)
    assert metrics.generator_report(sets["train"], judge=shipped) == metrics.generator_report(
        sets["train"]
    )


def test_another_judge_measures_with_its_own_features(sets, other_judge):
    x = sets["train"][:200]
    ours, theirs = judge.judge_features(x), judge.judge_features(x, judge=other_judge)
    assert theirs.shape == ours.shape == (200, 512)
    assert torch.equal(theirs, other_judge.features(x)), "features of the judge passed"
    assert not torch.allclose(theirs, ours), "another judge's features equal the shipped ones"
    report = metrics.generator_report(sets["train"], judge=other_judge)
    expected = metrics.frechet_distance_features(
        other_judge.features(sets["train"]), other_judge.features(data.digits("test")[0])
    )
    assert report["fid_test"] == pytest.approx(expected, rel=1e-6), (report["fid_test"], expected)
    pred = other_judge(sets["train"]).argmax(1)
    hist = torch.bincount(pred, minlength=10).double() / len(pred)
    assert report["class_histogram"] == pytest.approx(hist.tolist(), abs=1e-4)


@pytest.mark.parametrize("bad", ["judge", torch.nn.Linear(784, 10)])
def test_a_judge_that_is_not_a_digit_cnn_is_refused(bad):
    x = torch.rand(10, 1, 28, 28)
    for call in (
        lambda: judge.judge_features(x, judge=bad),
        lambda: judge.test_features(bad),
        lambda: metrics.frechet_distance(x, x, judge=bad),
        lambda: metrics.generator_report(x, judge=bad),
    ):
        with pytest.raises(TypeError, match="judge must be a DigitCNN"):
            call()


def test_a_judge_in_training_mode_is_refused(other_judge):
    x = torch.rand(10, 1, 28, 28)
    other_judge.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            metrics.generator_report(x, judge=other_judge)
    finally:
        other_judge.eval()


def test_judge_of_seed_trains_the_judges_recipe_with_that_seed(monkeypatch):
    assert judge.judge_of_seed(JUDGE.seed) is judge.load_judge(), "seed 0 is the shipped judge"
    asked = []

    def fake_training(recipe, progress=True):  # the wiring, not 25 s of training
        asked.append(recipe)
        return recipe.build().train(), None

    monkeypatch.setattr(judge.classifier, "train_classifier", fake_training)
    other = judge.judge_of_seed(3)
    assert [r.seed for r in asked] == [3], asked
    assert asked[0] == dataclasses.replace(JUDGE, seed=3), "only the seed may differ"
    assert not other.training and not any(p.requires_grad for p in other.parameters())
    assert judge.as_judge(other) is other, "usable as judge=..."


@pytest.mark.parametrize("seed", [1.0, "1", True, None])
def test_judge_of_seed_refuses_what_is_not_an_int(seed):
    with pytest.raises(TypeError, match="seed must be an int"):
        judge.judge_of_seed(seed)
