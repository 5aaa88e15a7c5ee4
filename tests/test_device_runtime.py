"""get_device: CUDA -> MPS -> CPU, the COURSE_DEVICE override, and clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import course_lib
from course_lib import device as device_mod


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine with a given number of CUDA GPUs and MPS present or not."""

    def make(cuda: int = 0, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "FakeGPU 9000")
        monkeypatch.setattr(device_mod, "_mps_available", lambda: mps)
        monkeypatch.delenv("COURSE_DEVICE", raising=False)

    return make


@pytest.mark.parametrize(
    "cuda, mps, expected, reason",
    [
        (0, False, "cpu", "no CUDA GPU or Apple MPS"),
        (0, True, "mps", "Metal"),
        (1, True, "cuda", "FakeGPU"),
    ],
)
def test_automatic_choice_and_its_reason(machine, capsys, cuda, mps, expected, reason):
    machine(cuda=cuda, mps=mps)
    assert course_lib.get_device() == torch.device(expected)
    line = capsys.readouterr().out.strip()
    assert f"'{expected}'" in line and reason in line, line
    assert len(line.splitlines()) == 1


@pytest.mark.parametrize(
    "value, expected", [("cpu", "cpu"), ("cuda:1", "cuda:1"), ("CUDA", "cuda"), ("mps", "mps")]
)
def test_environment_variable_overrides(machine, monkeypatch, capsys, value, expected):
    machine(cuda=2, mps=True)
    monkeypatch.setenv("COURSE_DEVICE", value)
    assert course_lib.get_device() == torch.device(expected)
    assert "COURSE_DEVICE" in capsys.readouterr().out


def test_explicit_argument_wins_over_environment(machine, monkeypatch):
    machine(cuda=1)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    assert course_lib.get_device("cpu", verbose=False) == torch.device("cpu")


@pytest.mark.parametrize(
    "cuda, mps, asked, words",
    [
        (0, False, "cuda", "no CUDA GPU"),
        (1, False, "cuda:1", "only 1 CUDA"),
        (0, False, "mps", "Metal"),
    ],
)
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_missing_device_raises_and_lists_available(
    machine, monkeypatch, cuda, mps, asked, words, how
):
    machine(cuda=cuda, mps=mps)
    if how == "environment":
        monkeypatch.setenv("COURSE_DEVICE", asked)
    with pytest.raises(RuntimeError, match=words) as info:
        course_lib.get_device(asked if how == "argument" else None)
    assert "Available:" in str(info.value) and "cpu" in str(info.value)


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", ""])
def test_unknown_names_are_value_errors(machine, monkeypatch, bad):
    machine()
    if bad:
        with pytest.raises(ValueError, match="not a device name"):
            course_lib.get_device(bad)
    monkeypatch.setenv("COURSE_DEVICE", bad)
    if bad:
        with pytest.raises(ValueError, match="COURSE_DEVICE"):
            course_lib.get_device()
    else:  # an empty variable means "not set"
        assert course_lib.get_device(verbose=False) == torch.device("cpu")


def test_non_string_is_type_error(machine):
    machine()
    with pytest.raises(TypeError, match="device name"):
        course_lib.get_device(0)


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand()  # noqa: NPY002 (the legacy generator is what is seeded), torch.rand(1).item()

    course_lib.seed_everything(123)
    first = draw()
    course_lib.seed_everything(123)
    assert draw() == first
    with pytest.raises(TypeError):
        course_lib.seed_everything("1")
    with pytest.raises(ValueError):
        course_lib.seed_everything(-1)


@pytest.mark.parametrize(
    "value, expected", [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_fast_mode_reads_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_FAST", value)
    assert course_lib.fast_mode() is expected
    monkeypatch.delenv("COURSE_FAST")
    assert course_lib.fast_mode() is False
