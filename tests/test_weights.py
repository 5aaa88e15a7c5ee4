"""Shipped weights by name: frozen recipes, safe loading, the list/build/check commands."""

from __future__ import annotations

import argparse
import dataclasses
import shutil

import pytest
import torch

from course_lib import weights
from course_lib.train import load_checkpoint, save_checkpoint
from course_lib.weights.__main__ import main


@pytest.mark.parametrize("name", weights.names())
def test_every_shipped_file_has_a_frozen_recipe_and_is_small(name):
    shipped = weights.entry(name)
    assert dataclasses.is_dataclass(shipped.recipe), f"{name}: recipe is not a dataclass"
    with pytest.raises(dataclasses.FrozenInstanceError):
        shipped.recipe.seed = 1  # recipes cannot drift
    assert shipped.path.is_file(), f"{name}: run `python -m course_lib.weights build {name}`"
    size = shipped.path.stat().st_size / 2**20
    assert size <= weights.MAX_FILE_MB, f"{name}: {size:.2f} MB"
    info = weights.meta(name)
    assert info["recipe"] == dataclasses.asdict(shipped.recipe), f"{name}: recipe changed since"
    assert info["metric"] == shipped.metric and info["name"] == name


def test_all_weights_together_stay_under_the_limit():
    total = sum(weights.entry(n).path.stat().st_size for n in weights.names()) / 2**20
    assert total <= weights.MAX_TOTAL_MB, f"{total:.1f} MB"


@pytest.mark.parametrize("name", weights.names())
def test_load_gives_a_fresh_model_in_eval_mode(name):
    a, b = weights.load(name), weights.load(name)
    assert not a.training and a is not b
    with torch.no_grad():
        next(a.parameters()).add_(1.0)
    assert not torch.equal(next(a.parameters()), next(b.parameters())), "copies share weights"


@pytest.mark.slow  # recomputes every shipped file's metric: about two minutes
def test_check_passes_on_the_shipped_files(capsys):
    """`python -m course_lib.weights check`: every file reloads safely and still reaches its
    recorded metric (the VAE's importance-weighted nll takes about half a minute)."""
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()] == [["ok", n] for n in weights.names()]


def test_check_fails_when_the_metric_falls_below_the_record(tmp_path, monkeypatch):
    shutil.copy(weights.entry("judge").path, tmp_path / "judge.pt")
    state = load_checkpoint(tmp_path / "judge.pt")
    state["meta"]["value"] = 0.999  # a record the weights cannot reach
    save_checkpoint(tmp_path / "judge.pt", state)
    monkeypatch.setattr(weights, "DIRECTORY", tmp_path)
    problems = weights.check(["judge"], verbose=False)
    assert len(problems) == 1 and "worse than the recorded 0.999" in problems[0], problems
    assert main(["check", "judge"]) == 1


def test_check_refuses_a_pickled_object(tmp_path, monkeypatch):
    torch.save({"model": {}, "meta": argparse.Namespace(value=1.0)}, tmp_path / "judge.pt")
    monkeypatch.setattr(weights, "DIRECTORY", tmp_path)
    problems = weights.check(["judge"], verbose=False)
    assert len(problems) == 1 and "weights_only" in problems[0].lower(), problems


def test_missing_file_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DIRECTORY", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m course_lib.weights build judge"):
        weights.load("judge")


def test_unknown_names_and_wrong_recipes_say_what_exists():
    with pytest.raises(ValueError, match="choose one of: judge"):
        weights.load("nope")
    with pytest.raises(TypeError, match="ClassifierRecipe"):
        weights.build("judge", recipe=object())


def test_build_writes_a_loadable_file_with_its_recipe_and_metric(tmp_path):
    short = dataclasses.replace(weights.entry("judge").recipe, epochs=1)
    out = tmp_path / "judge-short.pt"
    model, info = weights.build("judge", out=out, recipe=short, progress=False)
    state = load_checkpoint(out)  # weights_only=True
    assert state["meta"] == info and info["recipe"]["epochs"] == 1
    assert info["metric"] == "test_accuracy" and 0.5 < info["value"] <= 1.0, info
    assert info["train_seconds"] > 0 and [p.name for p in tmp_path.iterdir()] == [out.name]
    reloaded = weights.load("judge", path=out)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(reloaded(x), model(x))


def test_list_prints_name_size_time_recipe_and_metric(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for words in ("judge:", " MB", " s on the CPU", "ClassifierRecipe(", "test_accuracy = "):
        assert words in out, f"{words!r} missing from:\n{out}"


def test_half_weights_are_stored_in_float16_and_measured_after_rounding(tmp_path, monkeypatch):
    shipped = weights.entry("vae")
    assert shipped.half
    tiny = dataclasses.replace(shipped.recipe, z_dim=2, widths=(4, 8), hidden=8, steps=2)

    def checksum(model):  # a "metric" that sees every bit of the weights
        return float(sum(p.detach().double().sum() for p in model.parameters()))

    def untrained(recipe, progress):
        torch.manual_seed(0)
        return recipe.build(), {}

    fake = dataclasses.replace(shipped, recipe=tiny, train=untrained, evaluate=checksum)
    monkeypatch.setitem(weights.REGISTRY, "vae", fake)
    out = tmp_path / "vae.pt"
    model, info = weights.build("vae", out=out, progress=False)
    stored = load_checkpoint(out)["model"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    loaded = weights.load("vae", path=out)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b), "the returned model must hold the rounded weights"
    assert info["value"] == checksum(loaded), "the recorded metric is that of the shipped weights"


@pytest.mark.parametrize("sigma", [5, 15, 30, 50])
@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_shipped_denoiser_restores_any_grey_photo_without_knowing_sigma(sigma, kind):
    import numpy as np

    from course_lib import metrics
    from course_lib.data import photo
    from course_lib.restoration import degrade

    clean = photo("moon")[101:290, 33:250]  # held out, an odd size: 189 x 217
    noisy = degrade.add_gaussian_noise(clean, sigma, generator=sigma)
    image = noisy if kind == "numpy" else torch.from_numpy(noisy).double()
    out = weights.load("denoise").restore(image)
    assert type(out) is type(image) and out.shape == image.shape and out.dtype == image.dtype
    assert 0 <= out.min() and out.max() <= 1
    gain = metrics.psnr(np.asarray(out, np.float32), clean) - metrics.psnr(noisy, clean)
    assert gain > 3, f"sigma {sigma} ({kind}): only {gain:.2f} dB better than the noisy input"


def test_shipped_denoiser_says_what_is_wrong():
    import numpy as np

    model = weights.load("denoise")
    with pytest.raises(ValueError, match="grey photo H x W"):
        model.restore(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        model.restore(np.full((32, 32), 255.0, np.float32))
    with pytest.raises(TypeError, match="divide uint8 by 255"):
        model.restore(np.zeros((32, 32), np.uint8))


def test_load_builds_the_network_the_file_records(tmp_path, monkeypatch):
    """A candidate trained with another architecture (here a learned prior and other widths)
    loads by the recipe it records, not the shipped one."""
    shipped = weights.entry("vae")
    other = dataclasses.replace(shipped.recipe, z_dim=3, widths=(4, 8), hidden=8, steps=2,
                                prior_components=5)  # fmt: skip

    def untrained(recipe, progress):
        torch.manual_seed(0)
        return recipe.build(), {}

    fake = dataclasses.replace(shipped, train=untrained, evaluate=lambda model: 0.0)
    monkeypatch.setitem(weights.REGISTRY, "vae", fake)
    out = tmp_path / "candidate.pt"
    model, _ = weights.build("vae", out=out, recipe=other, progress=False)
    loaded = weights.load("vae", path=out)
    assert loaded.prior_components == 5 and loaded.z_dim == 3, loaded
    for (k, a), b in zip(loaded.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{k} differs after loading"
    for name in weights.names():  # the shipped files record their code's recipe
        state = load_checkpoint(weights.entry(name).path)
        assert weights.recorded_recipe(weights.entry(name), state) == weights.entry(name).recipe


def test_load_refuses_a_file_whose_recipe_it_cannot_read(tmp_path):
    state = load_checkpoint(weights.entry("vae").path)
    bad = {"model": state["model"], "meta": {**state["meta"], "recipe": {"wings": 2}}}
    save_checkpoint(tmp_path / "bad.pt", bad)
    with pytest.raises(ValueError, match="does not know: \\['wings'\\]"):
        weights.load("vae", path=tmp_path / "bad.pt")
    save_checkpoint(tmp_path / "none.pt", {"model": state["model"], "meta": {}})
    with pytest.raises(ValueError, match="records no recipe"):
        weights.load("vae", path=tmp_path / "none.pt")
