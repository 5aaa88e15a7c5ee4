"""Reproducibility and run mode: ``seed_everything`` and ``fast_mode``."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

FAST_ENV_VAR = "COURSE_FAST"
_TRUE = {"1", "true", "yes", "on"}


def seed_everything(seed: int = 0) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    Returns the seed, so a notebook can print or store it. The same seed on the same machine
    and device gives the same results; across machines, float rounding may differ.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (learners use the global generator)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    return seed


def fast_mode() -> bool:
    """True when the environment variable ``COURSE_FAST`` is ``1`` (CI sets it).

    Fast mode shrinks training (fewer steps, smaller data) so that a notebook runs in seconds;
    it never skips a code path.
    """
    return os.environ.get(FAST_ENV_VAR, "").strip().lower() in _TRUE
