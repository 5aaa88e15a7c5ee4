"""The static site (``make site``) in a real browser (marker ``browser``): every page loads from a
loopback server with every other request aborted, no image is broken, the math is typeset by
the MathJax copied into the site, and the landing page links every written chapter.
Screenshots of the landing page and of one chapter go to ``build/screenshots/``.

The site is built by ``make site`` (``.ci/run`` builds it, with the network cut, before the
tests); without a built site this test skips, saying so (in CI, a failure).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path

import nbformat
import pytest
from browser import ROOT, SCREENSHOTS, keep_offline, require, require_chromium

pytestmark = pytest.mark.browser

SITE = Path(os.environ.get("COURSE_SITE_DIR", ROOT / "build" / "site"))
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHOWN_CHAPTER = "05_vae"  # the screenshot: math, figures and a widget's last picture
INLINE_MATH = re.compile(r"(?<![\\$])\$[^$\n]+\$|\$\$.+?\$\$", re.S)

MATHJAX_READY = "() => Boolean(window.MathJax && window.MathJax.isReady)"  # start-up typeset done
MATHJAX_IDLE = "() => new Promise(done => window.MathJax.Hub.Queue(() => done(true)))"

PAGE_STATE = """() => ({
  images: document.images.length,
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
            .map(i => (i.alt || '') + ' ' + i.src.slice(0, 60)),
  math: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML').length,
  math_errors: document.querySelectorAll('.MathJax_Error, merror, .mjx-merror').length,
  links: [...document.querySelectorAll('a[href$=".html"]')].map(a => a.getAttribute('href')),
})"""


def has_math(chapter: str) -> bool:
    nb = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    return any(c.cell_type == "markdown" and INLINE_MATH.search(c.source) for c in nb.cells)


@pytest.fixture(scope="module")
def site_url():
    require_chromium()
    require((SITE / "index.html").exists(), f"no site in {SITE}: build it with `make site`")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log in the test output
        pass


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    outside: list[str] = []
    errors: list[str] = []
    keep_offline(page, outside)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    page.wait_for_function(MATHJAX_READY, timeout=60_000)  # raises if MathJax never starts
    page.evaluate(MATHJAX_IDLE)
    return page, outside, errors


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["index", *CHAPTERS])
def test_site_page_loads_with_its_images_and_math(site_url, browser, name):
    page, outside, errors = open_page(browser, f"{site_url}/{name}.html")
    try:
        state = page.evaluate(PAGE_STATE)
        assert not state["broken"], f"{name}.html: broken images: {state['broken']}"
        assert not state["math_errors"], f"{name}.html: {state['math_errors']} MathJax errors"
        if name == "index":
            linked = {link.removesuffix(".html") for link in state["links"]}
            assert set(CHAPTERS) <= linked, f"index.html lacks {sorted(set(CHAPTERS) - linked)}"
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "site_index.png"), full_page=True)
        else:
            assert state["images"] > 0, f"{name}.html shows no figure"
            if has_math(name):
                assert state["math"] > 0, f"{name}.html: the notebook has math, none rendered"
            if name == SHOWN_CHAPTER:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.locator(".MathJax_Display").first.scroll_into_view_if_needed()
                page.screenshot(path=str(SCREENSHOTS / f"site_{name}.png"))
        assert not outside, f"{name}.html reached out to the network: {outside}"
        assert not errors, f"{name}.html raised script errors: {errors}"
    finally:
        page.close()
