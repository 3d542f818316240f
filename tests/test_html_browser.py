"""The HTML report in a real headless browser (Debian's Chromium, driven by its ChromeDriver).

.ci/run installs Chromium; where it cannot be had, these tests skip and say why.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES, TODAY

import scrubber
from scrubber.output.html_report import HtmlReport

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
XSS = b"<script>window.__xss=1</script>"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Chromium and ChromeDriver are not installed (Debian packages chromium and chromium-driver; "
           ".ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test dependency: pip install '.[test]'")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    # As this machine's notes advise: no sandbox as root, and no background network calls (refused here).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    data = (SAMPLES / "defects_837p.837").read_bytes()
    data = data.replace(b"NM1*IL*1*DOE*JANE****MI*MBR000001", b"NM1*IL*1*" + XSS + b"*JANE****MI*MBR000001")
    out = io.BytesIO()
    scrubber.scrub_stream(io.BytesIO(data), scrubber.load_rules(), [HtmlReport(out, "defects.837", {})],
                          run=scrubber.RunContext.new(TODAY))
    path = tmp_path_factory.mktemp("html") / "defects.report.html"
    path.write_bytes(out.getvalue())
    return path


def _visible(driver) -> list:
    from selenium.webdriver.common.by import By

    return [t for t in driver.find_elements(By.CSS_SELECTOR, "tbody.claim") if t.is_displayed()]


def test_the_page_loads_without_console_errors(browser, page):
    browser.get(page.as_uri())
    assert browser.title == "Claim scrub report: defects.837"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_filtering_to_the_rejected_claims(browser, page):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    assert len(_visible(browser)) == 52
    browser.find_element(By.CSS_SELECTOR, "label[for=show-rejected]").click()
    shown = _visible(browser)
    assert len(shown) == 37 and all("rejected" in t.get_attribute("class") for t in shown)
    browser.find_element(By.CSS_SELECTOR, "label[for=show-corrected]").click()
    assert len(_visible(browser)) == 4
    browser.find_element(By.CSS_SELECTOR, "label[for=show-all]").click()
    assert len(_visible(browser)) == 52


def test_a_script_in_a_name_shows_as_text_and_runs_nothing(browser, page):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    assert browser.execute_script("return typeof window.__xss") == "undefined"
    first = browser.find_element(By.CSS_SELECTOR, "#claim-1 tr.claim-head")
    assert XSS.decode() in first.text


def test_print_leaves_out_the_controls(browser, page):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not browser.find_element(By.CSS_SELECTOR, ".filters").is_displayed()
        assert len(_visible(browser)) == 52
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
