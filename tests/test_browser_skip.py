"""Without Chromium the browser tests skip and say how to install it; where they are required
(CI sets COURSE_REQUIRE_BROWSER=1) the same situation fails. No browser needed here."""

import pytest
from browser import chromium_path, require_chromium


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.delenv("COURSE_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert chromium_path() is None


def test_without_chromium_the_browser_tests_skip_saying_how_to_install(no_chromium, monkeypatch):
    monkeypatch.delenv("COURSE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_chromium()


def test_where_browser_tests_are_required_a_skip_fails(no_chromium, monkeypatch):
    monkeypatch.setenv("COURSE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="required here.*apt-get install chromium"):
        require_chromium()


def test_course_chromium_picks_the_browser(monkeypatch):
    monkeypatch.setenv("COURSE_CHROMIUM", "/opt/chrome/chrome")
    assert chromium_path() == "/opt/chrome/chrome"
