"""The page of `picaffect serve` in a real browser: Playwright driving Debian's Chromium.

Runs when /usr/bin/chromium and the playwright package are present (``.ci/run``
installs Chromium), and skips saying why otherwise; Playwright never downloads a
browser of its own here. The server runs in a thread on a free loopback port.
The screenshot for the README is written to ``docs/serve.png`` when
``PICAFFECT_SCREENSHOT=1``; otherwise to the test's temporary folder, so that a
test run leaves the work tree as it was.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) to run "
                f"the browser test", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package (test extra) is missing")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from picaffect import Predictor
    from picaffect.service import Settings, create_app

    predictor = Predictor.from_pretrained("default", device="cpu")
    port = free_port()
    config = uvicorn.Config(create_app(predictor, Settings()), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", predictor
    server.should_exit = True
    thread.join(10)


@pytest.fixture()
def photos(tmp_path):
    """Two sample photographs that scikit-learn ships, and a broken file."""
    import sklearn.datasets

    images = Path(sklearn.datasets.__file__).parent / "images"
    names = ["china.jpg", "flower.jpg"]
    if not all((images / n).is_file() for n in names):
        pytest.skip(f"scikit-learn's sample photographs are missing from {images}")
    paths = [Path(shutil.copyfile(images / n, tmp_path / n)) for n in names]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return paths + [broken]


def test_page_scores_pictures_plots_them_and_downloads_csv(server, photos, tmp_path):
    url, predictor = server
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            messages = []
            page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)
            page.goto(url + "/")
            architecture = predictor.spec.architecture  # whatever the shipped default file is
            playwright_api.expect(page.locator("#modelname")).to_contain_text(architecture)
            assert "5 neutral" in page.inner_text("header")
            assert page.get_attribute("#cardlink", "href") == "/model-card"
            page.set_input_files("#files", [str(p) for p in photos])
            playwright_api.expect(page.locator("#statustext")).to_contain_text("3 of 3 pictures done", timeout=60_000)
            assert "2 scored, 1 could not be scored" in page.inner_text("#statustext")

            rows = page.locator("#rows tr")
            assert rows.count() == 3
            names = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)]
            assert names == ["china.jpg", "flower.jpg", "broken.jpg"]
            error = rows.nth(2).locator("td.error").inner_text()
            assert "truncated or corrupt" in error or "not an image" in error
            assert page.locator("#dots circle").count() == 2  # a dot per scored picture, none for the broken one
            if predictor.interval_level:  # a calibrated model: an error bar per scored picture
                assert page.locator("#bars g.bar").count() == 2

            # hovering a dot highlights its row
            page.locator("#dots circle[data-id='2']").hover()
            assert "hi" in (page.get_attribute("#rows tr[data-id='2']", "class") or "")

            # sorting by valence, twice, reverses the order of the scored rows
            # (exact: the calibrated default also has a "sort by valence interval" button)
            page.get_by_role("button", name="sort by valence", exact=True).click()
            first = page.locator("#rows tr").first.get_attribute("data-id")
            page.get_by_role("button", name="sort by valence", exact=True).click()
            assert page.locator("#rows tr").first.get_attribute("data-id") != first
            assert page.locator("th[aria-sort=descending]").count() == 1

            with page.expect_download() as info:
                page.click("#csv")
            csv_path = tmp_path / "picaffect.csv"
            info.value.save_as(csv_path)

            page.locator("#dots circle[data-id='1']").hover()
            assert "hi" in (page.get_attribute("#rows tr[data-id='1']", "class") or "")
            assert page.locator("#rows tr.hi").count() == 1 and page.locator("#dots circle.hi").count() == 1
            assert page.locator("#tokenfield").is_hidden()  # no --token: no token field
            shot = ROOT / "docs" / "serve.png" if os.environ.get("PICAFFECT_SCREENSHOT") == "1" \
                else tmp_path / "serve.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert not messages, messages

            # the API documentation renders offline, from files served by the app itself
            page.goto(url + "/docs")
            playwright_api.expect(page.get_by_text("/v1/predict").first).to_be_visible(timeout=30_000)
        finally:
            browser.close()

    frame = pd.read_csv(csv_path)
    assert list(frame["name"]) == ["china.jpg", "flower.jpg", "broken.jpg"]
    bounds = ["valence_low", "valence_high", "arousal_low", "arousal_high"] if predictor.interval_level else []
    assert list(frame.columns) == ["name", "valence", "arousal", *bounds, "quadrant", "error"]
    assert frame["error"].isna().tolist() == [True, True, False]
    expected = predictor.predict(photos[:2])
    for (_, row), want in zip(frame.iloc[:2].iterrows(), expected):
        assert row["valence"] == pytest.approx(want["valence"], abs=2e-3)
        assert row["arousal"] == pytest.approx(want["arousal"], abs=2e-3)
        assert row["quadrant"] == want["quadrant"]
        for key in bounds:
            assert row[key] == pytest.approx(want[key], abs=2e-3)
