"""report.html in headless Chromium: it renders offline, and its totals read right in the DOM."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deid.api import make_config
from deid.pipeline import RunOptions, run
from deid.testing import synthetic as syn
from tests.conftest import TEST_KEY

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Where the last screenshot is copied, for a person to look at.
SCREENSHOT_COPY = Path("/tmp/deid-report-screenshot.png")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.is_file(), "headless Chromium is needed: apt-get install chromium"
    assert CHROMEDRIVER.is_file(), "chromedriver is needed: apt-get install chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.browser
def test_report_html_in_headless_chromium(tmp_path: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By

    src = tmp_path / "src"
    (src / "ct").mkdir(parents=True)
    series = syn.Series(syn.Study(seed="html", accession_number="ACC-HTML"), 1, "CT")
    for i in range(1, 5):
        syn.build_ct_image(syn.PATIENTS[0], series, i, rows=32, columns=32).save_as(
            src / "ct" / f"{i}.dcm", enforce_file_format=True)
    for name, ds in syn.build_all(syn.PATIENTS[1]).items():
        ds.save_as(src / f"{name}.dcm", enforce_file_format=True)
    (src / "notes.txt").write_text("not DICOM")
    out = tmp_path / "out"
    run(RunOptions(sources=(src,), out_dir=out, workers=0), make_config(key=TEST_KEY))
    report = json.loads((out / "report.json").read_text())
    counts = report["counts"]

    driver = browser
    driver.get((out / "report.html").as_uri())  # type: ignore[attr-defined]
    find = driver.find_element  # type: ignore[attr-defined]
    assert find(By.TAG_NAME, "h1").text == "De-identification report"
    assert int(find(By.ID, "total-inputs").text) == report["total"]
    assert int(find(By.ID, "count-written").text) == counts["written"]
    assert int(find(By.ID, "count-failed").text) == counts["failed"] >= 1
    failure_rows = driver.find_elements(By.CSS_SELECTOR, "#failures tbody tr")  # type: ignore[attr-defined]
    assert len(failure_rows) == counts["failed"]
    assert any("notes.txt" in row.text and "not a DICOM Part 10 file" in row.text
               for row in failure_rows)
    ct = find(By.ID, "modality-CT").text
    written_ct = sum(1 for e in report["inputs"] if e["modality"] == "CT")
    assert int(ct) == written_ct
    assert int(find(By.ID, "action-X").text) == sum(
        e["action_counts"].get("X", 0) for e in report["inputs"])
    # Nothing was fetched from outside: every resource of the page is the page itself.
    resources = driver.execute_script(  # type: ignore[attr-defined]
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources == []
    # The page lays out (the totals cards are visible and side by side).
    cards = driver.find_elements(By.CSS_SELECTOR, "#totals .card")  # type: ignore[attr-defined]
    assert len(cards) >= 3 and all(card.is_displayed() for card in cards)
    assert cards[0].location["y"] == cards[1].location["y"]
    # Thumbnails of cleaned images are inline PNGs that decode.
    images = driver.find_elements(By.CSS_SELECTOR, "#thumbnails img")  # type: ignore[attr-defined]
    masked = {e["source"] for e in report["inputs"]
              if e["boxes_masked"] and e["status"] == "written"}
    assert masked, "the synthetic US and SC have burned-in text"
    assert masked <= {image.get_attribute("alt") for image in images}
    for image in images:
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        assert driver.execute_script(  # type: ignore[attr-defined]
            "return arguments[0].complete && arguments[0].naturalWidth", image) > 0
    height = driver.execute_script("return document.body.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(1280, min(int(height) + 100, 8000))  # type: ignore[attr-defined]
    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)
