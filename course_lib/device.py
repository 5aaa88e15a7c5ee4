"""Choosing where tensors live: CUDA, then Apple MPS, then the CPU.

    device = get_device()          # automatic, prints one line saying which and why
    device = get_device("cpu")     # ask for one explicitly

The environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides
the automatic choice, so a learner can move every notebook to the CPU (or to a second GPU)
without editing them. An explicit ``prefer=`` argument in the code wins over both.
"""

from __future__ import annotations

import os
import re

import torch

ENV_VAR = "COURSE_DEVICE"
_VALID = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Names of the devices this machine can use, e.g. ``['cuda:0', 'cpu']``."""
    names = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names + ["cpu"]


def _parse(name: object, source: str) -> str:
    if not isinstance(name, str | torch.device):
        raise TypeError(
            f"{source} must be a device name such as 'cpu', 'cuda', 'cuda:1' or 'mps', "
            f"got {type(name).__name__}"
        )
    text = str(name).strip().lower()
    if not _VALID.match(text):
        raise ValueError(
            f"{source}={str(name)!r} is not a device name: use 'cpu', 'cuda', 'cuda:N' or 'mps'"
        )
    return text


def _check_present(text: str, source: str) -> None:
    available = ", ".join(available_devices())
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{source} asks for {text!r}, but PyTorch sees no CUDA GPU "
                f"(no NVIDIA GPU, or a CPU-only torch build). Available: {available}."
            )
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"{source} asks for {text!r}, but only {torch.cuda.device_count()} CUDA "
                f"device(s) exist. Available: {available}."
            )
    elif text == "mps" and not _mps_available():
        raise RuntimeError(
            f"{source} asks for 'mps', but Apple's Metal backend is not available here. "
            f"Available: {available}."
        )


def get_device(prefer: str | torch.device | None = None, verbose: bool = True) -> torch.device:
    """Pick the device to compute on and say why.

    Order: ``prefer`` if given, else the ``COURSE_DEVICE`` environment variable if set, else
    the first available of CUDA, Apple MPS, CPU.

    Args:
        prefer: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'mps'``; ``None`` for automatic.
        verbose: print one line with the device and the reason.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: the name is not a device name.
        RuntimeError: the device asked for is not present; the message lists those that are.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if prefer is not None:
        text, source = _parse(prefer, "get_device(prefer)"), "get_device(prefer)"
        _check_present(text, source)
        reason = "asked for in the code"
    elif env:
        text, source = _parse(env, ENV_VAR), ENV_VAR
        _check_present(text, source)
        reason = f"set by the environment variable {ENV_VAR}={env}"
    elif torch.cuda.is_available():
        text, reason = "cuda", f"a CUDA GPU was found ({torch.cuda.get_device_name(0)})"
    elif _mps_available():
        text, reason = "mps", "Apple's Metal (MPS) backend was found"
    else:
        text = "cpu"
        reason = (
            "no CUDA GPU or Apple MPS device was found; every notebook is sized to run on a "
            "CPU, and COURSE_FAST=1 makes them quicker still"
        )
    device = torch.device(text)
    if verbose:
        print(f"course_lib: using device '{device}': {reason}.")
    return device
