"""The report page in a real browser: Debian's headless Chromium (`.ci/run` installs it).

The page must load without a console message (a CSP violation or an error is one: the page runs
no script, so any message is a problem), draw every chart, build no element from order data, and
make a real screenshot. Without chromium these tests skip on a developer's machine and fail
under CI.
"""

from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests import report_sample
from tests.report_sample import (
    HOSTILE,
    console_messages,
    hostile_page,
    need_chromium,
    run_chromium,
    sample_page,
)

CHARTS = {
    "by-day-orders",
    "by-day-revenue",
    "by-window",
    "by-attempt",
    "holdout",
    "holdout-lift",
    "delivery",
    "delivery-failed",
    "by-variant",
    "variant-diff",
}
# what the renderer writes, plus what a browser's parser adds around it
DOM_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "h1", "h2", "h3",
    "p", "section", "div", "small", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "bdi",
    "svg", "path", "rect", "text",
}  # fmt: skip


class _Dom(HTMLParser):
    """The dumped DOM: its elements, and the shapes (rect, path) inside each chart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.shapes: dict[str, int] = {}
        self.text: list[str] = []
        self._chart: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "svg":
            if self._chart is None and "chart" in (a.get("class") or "").split():
                self._chart, self._depth = a.get("data-chart") or "?", 0
                self.shapes.setdefault(self._chart, 0)
            self._depth += 1
        elif self._chart is not None and tag in ("rect", "path"):
            self.shapes[self._chart] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._chart is not None:
            self._depth -= 1
            if self._depth == 0:
                self._chart = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _dump(tmp_path: Path, page: str) -> tuple[_Dom, list[str]]:
    need_chromium()
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    done = run_chromium(path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    dom.close()
    return dom, console_messages(done.stderr)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_the_page_loads_without_errors_and_draws_every_chart(tmp_path):
    dom, console = _dump(tmp_path, hostile_page())
    assert console == []  # no CSP violation, no error
    assert any(t == "section" and a.get("id") == "calls" for t, a in dom.tags)  # the page, not an error page
    assert set(dom.shapes) == CHARTS
    assert all(n > 0 for n in dom.shapes.values()), dom.shapes


def test_order_data_builds_no_element_in_the_browser(tmp_path):
    dom, _ = _dump(tmp_path, hostile_page())
    tags = {t for t, _ in dom.tags}
    assert tags <= DOM_TAGS, tags - DOM_TAGS  # no script, img, iframe, extra svg ...
    for tag, attrs in dom.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
    text = "".join(dom.text)
    for hostile in HOSTILE:
        assert hostile in text  # shown as the text it is


def test_the_console_check_catches_a_page_that_breaks_the_policy(tmp_path):
    """The control: the same log shows a blocked inline script and a blocked remote image, so an
    empty console above means the page broke no rule (not that nothing was listening)."""
    page = sample_page().replace(
        "</main>", '<script>document.title="ran"</script><img src="http://192.0.2.1/x.png"></main>'
    )
    _, console = _dump(tmp_path, page)
    assert any("Content Security Policy" in m and "inline" in m for m in console), console
    assert any("192.0.2.1" in m and "Content Security Policy" in m for m in console), console


@pytest.mark.parametrize("width,height", [(1000, 1900), (390, 1200)])
def test_a_screenshot_shows_the_page(tmp_path, width, height):
    need_chromium()
    path = tmp_path / "report.html"
    path.write_text(sample_page(), encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = run_chromium(path, f"--screenshot={shot}", f"--window-size={width},{height}")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    png = shot.read_bytes()
    assert _png_size(png) == (width, height)
    # a blank page of that size compresses to a few kB; bars, text and tables do not
    assert len(png) > 40_000, len(png)
    assert console_messages(done.stderr) == []


def test_without_chromium_skip_locally_but_fail_under_ci(monkeypatch):
    monkeypatch.setattr(report_sample, "chromium_path", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        need_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set but chromium is not installed"):
        need_chromium()
