"""The HTML report and the batch index in a real browser: Debian's chromium driven by Playwright.

Skipped only where no chromium is installed; CI installs it (.ci/run) and sets MNV4_REQUIRE_BROWSER=1,
so there a missing browser fails instead of skipping. Screenshots are kept in each test's tmp folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from _hostile import IMG, JS_URL, LOG_LINE, SCRIPT, hostile_args_run, hostile_log_run, hostile_tb_run
from conftest import FIXTURE_RUNS
from mnv4_postmortem.cli import cli

CHROMIUM = Path(os.environ.get("MNV4_CHROMIUM", "/usr/bin/chromium"))


def _require_browser():
    required = os.environ.get("MNV4_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("MNV4_REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed")
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"MNV4_REQUIRE_BROWSER=1 but {CHROMIUM} does not exist")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _require_browser()
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield instance
        instance.close()


class Page:
    """A page with everything the tests watch: console errors, requests, dialogs."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"])
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)
        self.url = url
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [self.url], f"requests beyond the file itself: {self.requests}"
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "seed.html"
    result = CliRunner().invoke(cli, ["report", str(FIXTURE_RUNS / "seed_mnv4"), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory) -> Path:
    """A batch over real fixture runs plus three hostile ones, with per-run reports."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("v1_healthy", "v1_ema_lag", "v1_lr_high"):
        shutil.copytree(FIXTURE_RUNS / name, root / name)
    hostile_log_run(root)
    hostile_args_run(root)
    hostile_tb_run(root)
    out = tmp_path_factory.mktemp("batch")
    result = CliRunner().invoke(cli, ["batch", str(root), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return out


def test_report_page_is_clean_plots_visible_citations_open_copy_works(browser, seed_report, tmp_path):
    page = Page(browser, seed_report.as_uri())
    try:
        p = page.page
        figures = p.locator("figure.plot svg")
        assert figures.count() == 4
        for i in range(figures.count()):
            box = figures.nth(i).bounding_box()
            assert figures.nth(i).is_visible() and box and box["width"] > 100 and box["height"] > 50, box
        # a citation opens the appendix excerpt of the cited lines
        excerpt = p.locator("details#src-summary-csv-2-13")
        assert not excerpt.evaluate("e => e.open")
        p.locator('a.cite[href="#src-summary-csv-2-13"]').first.click()
        assert excerpt.evaluate("e => e.open") and excerpt.locator("pre").is_visible()
        assert (FIXTURE_RUNS / "seed_mnv4" / "summary.csv").read_text().splitlines()[1] in excerpt.inner_text()
        # the copy button copies the fix command, exactly
        button = p.locator("#finding-1 button.copy")
        button.click()
        p.wait_for_function("document.querySelector('#finding-1 button.copy').textContent === 'copied'")
        copied = p.evaluate("navigator.clipboard.readText()")
        assert copied == button.get_attribute("data-copy")
        assert copied.startswith("python train.py") and "--model-ema-warmup" in copied
        p.screenshot(path=str(tmp_path / "seed_report.png"), full_page=True)
        assert (tmp_path / "seed_report.png").stat().st_size > 10_000
        page.assert_clean()
    finally:
        page.close()


def _column(p, index: int) -> list[str]:
    return p.eval_on_selector_all(f"#runs tbody tr:not([hidden]) td:nth-child({index})", "cells => cells.map(c => c.textContent.trim())")


def test_index_sorts_and_filters(browser, batch_dir, tmp_path):
    page = Page(browser, (batch_dir / "index.html").as_uri())
    try:
        p = page.page
        assert p.locator("#runs tbody tr").count() == 6
        assert p.locator("#overlays svg").is_visible() and p.locator("#overlays svg").bounding_box()["height"] > 50
        header = p.locator("#runs th", has_text="best top-1")
        header.click()
        values = [float(v) for v in _column(p, 4) if v]
        assert len(values) >= 4 and values == sorted(values)
        header.click()
        values = [float(v) for v in _column(p, 4) if v]
        assert values == sorted(values, reverse=True)
        p.locator("#runs th", has_text="run").first.click()
        names = _column(p, 1)
        assert names == sorted(names, key=str.lower)
        p.fill("#filter", "ema_lag")
        p.wait_for_function("document.querySelectorAll('#runs tbody tr:not([hidden])').length === 1")
        assert len(_column(p, 1)) == 1 and _column(p, 1)[0].endswith("v1_ema_lag")
        p.fill("#filter", "")
        p.select_option("#cause", "lr-too-high")
        p.wait_for_function("document.querySelectorAll('#runs tbody tr:not([hidden])').length >= 1")
        assert set(_column(p, 6)) == {"lr-too-high"}
        p.screenshot(path=str(tmp_path / "index.png"), full_page=True)
        page.assert_clean()
    finally:
        page.close()


def test_hostile_strings_show_as_text_and_open_no_dialog(browser, batch_dir, tmp_path):
    index = Page(browser, (batch_dir / "index.html").as_uri())
    try:
        text = index.page.inner_text("#runs")
        assert IMG in text and JS_URL in text and SCRIPT in text  # folder names and the args.yaml model
        _assert_inert(index.page)
        links = index.page.eval_on_selector_all("#runs a", "as => as.map(a => a.getAttribute('href'))")
        assert links and all(h.startswith("runs/") and ":" not in h for h in links)
        index.assert_clean()
    finally:
        index.close()
    reports = sorted((batch_dir / "runs").glob("*.html"))
    assert len(reports) == 6
    seen: set[str] = set()
    for number, report in enumerate(reports):
        page = Page(browser, report.as_uri())
        try:
            body = page.page.inner_text("body")
            for payload in (SCRIPT, IMG, JS_URL):
                if payload in body:
                    seen.add(payload)
            for details in page.page.locator("details").all():
                details.evaluate("d => d.open = true")  # show the appendix and the tables: still text
            body = page.page.inner_text("body")
            if LOG_LINE in body:
                seen.add("log line")
            if page.page.locator("#epochs th", has_text=SCRIPT).count():
                seen.add("tensorboard tag")  # an unknown TensorBoard tag keeps its name as a metric column
            _assert_inert(page.page)
            page.page.screenshot(path=str(tmp_path / f"run{number}.png"), full_page=True)
            page.assert_clean()
        finally:
            page.close()
    assert {SCRIPT, IMG, JS_URL, "log line", "tensorboard tag"} <= seen, seen


def _assert_inert(p) -> None:
    """No markup from the payloads made it into the DOM: no foreign script, image or javascript: link."""
    assert p.locator("script").count() == 1  # the page's own
    assert p.locator("img").count() == 0
    assert p.eval_on_selector_all("[onerror], [onload], a[href^='javascript']", "els => els.length") == 0
