"""The notebooks as a learner meets them: JupyterLab in a real browser (marker ``browser``).

For each notebook with an interactive widget, on a temporary copy of the notebooks in fast mode:
open it in JupyterLab, run all cells, then assert that no cell shows an error and every code cell
ran, that the training progress bars rendered as widgets (not as text), and that moving the
widget's slider with the keyboard, as a person would, changes its picture. Screenshots of each
widget before and after the move go to ``build/screenshots/`` (ignored by git).

Without Chromium these tests skip, saying how to install it; ``.ci/run`` installs it and sets
``COURSE_REQUIRE_BROWSER=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass

import pytest
from browser import ROOT, SCREENSHOTS, Lab, keep_offline, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow: scheduled first (conftest.py)


@dataclass(frozen=True)
class WidgetCase:
    notebook: str
    control: str  # what the keyboard moves
    presses: int  # ArrowRight presses on the slider (one step each)
    trains: bool  # does the notebook train with a progress bar in fast mode?


CASES = [
    WidgetCase("01_convolution.ipynb", "kernel playground: repeat", 1, trains=False),
    WidgetCase("05_vae.ipynb", "latent traversal: its first slider", 10, trains=True),
    WidgetCase("08_denoising.ipynb", "noise slider: sigma", 2, trains=True),
]

# JupyterLab's notebook keeps every cell in the page ("none": no virtual scrolling), so that the
# page can be searched for all outputs
NOTEBOOK_SETTINGS = {"windowingMode": "none"}
# and asks no question about news or updates (a toast over the notebook; both need the internet)
NOTIFICATIONS = {"fetchNews": "false", "checkForUpdates": False}

STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [], unrun = [];
  cells.forEach((cell, i) => {
    if (cell.model.executionCount === null) unrun.push(i);
    for (const out of cell.model.outputs.toJSON())
      if (out.output_type === 'error') errors.push(`code cell ${i}: ${out.ename}: ${out.evalue}`);
  });
  return {n_code: cells.length, errors, unrun};
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("lab")
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy(notebook, root / notebook.name)  # outputs land here, never in the repo
    settings = root / ".lab-settings" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps(NOTEBOOK_SETTINGS))
    apputils = settings.parent / "apputils-extension"
    apputils.mkdir()
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps(NOTIFICATIONS))
    server = Lab(root, secrets.token_hex(16))
    yield server
    server.stop()


def run_all(page, lab, notebook: str) -> dict:
    """Open ``notebook``, wait for its kernel, run all cells (JupyterLab's own command, which
    resolves when the last cell has finished) and return what the cells hold."""
    page.goto(lab.open_url(notebook))
    page.wait_for_function(
        """name => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                     return w && w.context && w.context.path === name && w.sessionContext; }""",
        arg=notebook,
        timeout=120_000,
    )
    page.evaluate(
        """async () => {
          const panel = window.jupyterapp.shell.currentWidget;
          await panel.context.ready;
          await panel.sessionContext.ready;
          await window.jupyterapp.commands.execute('notebook:run-all-cells');
        }"""
    )
    return page.evaluate(STATE)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CASES, ids=[c.notebook for c in CASES])
def test_notebook_widgets_in_jupyterlab(lab, browser, case):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []
    keep_offline(page, outside)
    messages: list[str] = []
    page.on("pageerror", lambda error: messages.append(str(error)))
    try:
        state = run_all(page, lab, case.notebook)
        assert not state["errors"], f"{case.notebook}: cells show errors: {state['errors']}"
        assert state["n_code"] > 0 and not state["unrun"], (
            f"{case.notebook}: code cells {state['unrun']} of {state['n_code']} did not run"
        )

        # the widgets rendered as widgets: no text stand-ins such as "HBox(children=..." or
        # "Loading widget...", which is what a notebook shows when the widget manager is missing
        outputs = page.locator(".jp-OutputArea-output")
        text = "\n".join(outputs.all_inner_texts())
        for stand_in in ("HBox(children=", "VBox(children=", "FloatProgress(", "Loading widget"):
            assert stand_in not in text, f"{case.notebook}: a widget shows as text {stand_in!r}"
        bars = page.locator(".jp-OutputArea-output .widget-hprogress")
        if case.trains:
            assert bars.count() >= 1, f"{case.notebook}: no training progress bar rendered"
            labels = page.locator(".jp-OutputArea-output .widget-hbox:has(.widget-hprogress)")
            finished = [t for t in labels.all_inner_texts() if "100%" in t]
            assert finished, (
                f"{case.notebook}: no progress bar reached 100%: {labels.all_inner_texts()}"
            )

        # the interactive widget: its slider, moved with the keyboard, and its picture
        box = page.locator(".jp-OutputArea-output:has(.widget-slider)").first
        assert box.count() == 1, f"{case.notebook}: the widget's slider did not render"
        picture = box.locator(".widget-image img, img.widget-image").first
        picture.scroll_into_view_if_needed()
        stem = SCREENSHOTS / f"lab_{case.notebook.removesuffix('.ipynb')}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        src_before = picture.get_attribute("src")
        before = box.screenshot(path=f"{stem}_before.png")
        handle = box.locator(".widget-slider .noUi-handle").first
        value_before = box.locator(".widget-readout").first.inner_text()
        handle.click()  # a person clicks the knob, then presses the arrow key
        for _ in range(case.presses):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([img, src]) => img.getAttribute('src') !== src",
            arg=[picture.element_handle(), src_before],
            timeout=60_000,
        )
        page.wait_for_timeout(300)  # let the new picture paint
        value_after = box.locator(".widget-readout").first.inner_text()
        after = box.screenshot(path=f"{stem}_after.png")
        page.screenshot(path=f"{stem}_page.png")
        assert value_after != value_before, (
            f"{case.notebook}: {case.control} stayed at {value_before} after {case.presses} "
            "ArrowRight presses"
        )
        assert after != before, (
            f"{case.notebook}: {case.control} moved {value_before} -> {value_after} but the "
            "picture looks the same"
        )
        assert not outside, f"{case.notebook}: the page reached out to the network: {outside}"
        assert not messages, f"{case.notebook}: the page raised errors: {messages}"
    finally:
        page.close()
