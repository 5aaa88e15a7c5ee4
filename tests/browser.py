"""What the browser tests share: finding Debian's Chromium, skipping (or, in CI, failing)
without it, and a JupyterLab server on a temporary copy of the notebooks.

Nothing is downloaded: playwright drives the system Chromium through its executable path
(``playwright install`` is never needed), and every request a page makes to anything but the
loopback address is aborted and reported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra is missing
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"  # build/ is ignored by git
INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: `apt-get install chromium`) or point COURSE_CHROMIUM at a "
    "Chrome/Chromium executable; the Python package comes with `pip install -e .[dev]` "
    "(playwright; its own browser download is never used)"
)


def chromium_path() -> str | None:
    """The Chromium to drive: ``$COURSE_CHROMIUM``, else the first of the usual names on PATH."""
    if os.environ.get("COURSE_CHROMIUM"):
        return os.environ["COURSE_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return None


def require(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false, with ``reason``; where the browser tests are
    required (``COURSE_REQUIRE_BROWSER=1``, which ``.ci/run`` sets) a skip is a failure."""
    if condition:
        return
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here (COURSE_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(reason)


def require_chromium() -> None:
    """Skip (fail where required) unless playwright and a Chromium are both here."""
    require(sync_playwright is not None, f"the package playwright is missing: {INSTALL_HINT}")
    require(chromium_path() is not None, f"no Chromium found: {INSTALL_HINT}")


@contextlib.contextmanager
def chromium():
    """The system's Chromium, headless, driven by playwright (``--no-sandbox``: CI containers
    run as root)."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


def keep_offline(page, outside: list[str]) -> None:
    """Abort every request ``page`` makes to anything but loopback or a local file, and note
    it in ``outside``: a page of the course must not need the network."""

    def route(route_, request):
        url = request.url
        if url.startswith(
            ("http://127.0.0.1", "http://localhost", "file:", "data:", "blob:", "about:")
        ):
            route_.continue_()
        else:
            outside.append(url)
            route_.abort()

    page.route("**/*", route)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on ``root`` (a temporary folder), on a free loopback port, with a
    random token, in fast mode, with the app object exposed to the page's scripts (as
    JupyterLab's own browser tests, galata, do) so that a test can wait for a run to finish."""

    def __init__(self, root: Path, token: str):
        self.root, self.token, self.port = root, token, free_port()
        settings = root / ".lab-settings"
        env = dict(
            os.environ,
            COURSE_FAST="1",
            JUPYTERLAB_SETTINGS_DIR=str(settings / "user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(settings / "workspaces"),
        )
        args = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
            f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True", "--allow-root",
            # no news feed, no update check: both would reach out to the internet
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
        self.log = open(root / ".lab.log", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(args, cwd=root, env=env, stdout=self.log, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"JupyterLab did not start on port {self.port}:\n{self.log_text()}"
                    ) from None
                time.sleep(0.3)

    def log_text(self) -> str:
        self.log.flush()
        return (self.root / ".lab.log").read_text()[-4000:]

    def open_url(self, notebook: str) -> str:
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
