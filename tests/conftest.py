"""Shared test settings: headless matplotlib, a hypothesis profile sized for a 2-core CI."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "course",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),  # reproducible in CI, exploratory locally
)
settings.load_profile("course")

from browser import chromium  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    """Chromium driven by playwright (tests/browser.py): skips without it, fails where the
    browser tests are required (CI)."""
    with chromium() as chromium_browser:
        yield chromium_browser
