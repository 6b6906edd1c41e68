"""The web page at / in a real browser: a real server (a subprocess serving a tiny
attention model trained on Multi30k) and headless Chromium driven by Selenium.

The server asks for an API key, so the page must first ask for it. Then it must show
what the API answers: the same translation and score, and an attention heatmap with one
cell per (target token, source token), </s> included on both sides, as the API's token
lists say; and an error from the API. On a phone-sized screen the controls must fit and
nothing but the heatmap's own box may scroll sideways. SIGTERM stops the server, status 0.
With SEQ2SEQ_SCREENSHOT set, the page with a translation and its heatmap is saved to
docs/images/serve-page.png (the picture in docs/serving.md).

Chromium and its driver come from the system (Debian: `apt-get install chromium
chromium-driver`); nothing is downloaded at run time.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "images" / "serve-page.png"
INSTALL = (
    "The browser test needs Chromium and its driver from the system, never downloaded at "
    "run time. Install them with `sudo apt-get install chromium chromium-driver` (Debian, "
    "Ubuntu: chromium-browser), so that `chromium` and `chromedriver` are on PATH."
)
PHONE = {"width": 390, "height": 844}
KEY = "a-key-for-the-test"


def browser_paths() -> tuple[str, str]:
    """The Chromium binary and chromedriver on this machine; a clear failure without."""
    binary = next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
        None,
    )
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        missing = [
            what for what, path in (("chromium", binary), ("chromedriver", driver)) if not path
        ]
        pytest.fail(f"{' and '.join(missing)} not found. {INSTALL}", pytrace=False)
    return binary, driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, key: str = "") -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read())


@dataclass
class Server:
    process: subprocess.Popen
    base: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def healthy(self) -> bool:
        try:
            return http("GET", self.base + "/health")[0] == 200
        except OSError:
            return False

    def translate(self, body: dict) -> dict:
        status, answer = http("POST", self.base + "/v1/translate", body, key=KEY)
        assert status == 200, answer
        return answer


@pytest.fixture
def server(attention_run: Path, tmp_path: Path):
    """`seq2seq-serve` in a subprocess (this checkout's code) with an API key, answering
    /health; killed at the end if the test did not stop it."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["SEQ2SEQ_API_KEY"] = KEY
    log = tmp_path / "server.log"
    output = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "seq2seq.commands.serve"]
        + ["--model", f"tiny={attention_run}", "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        env=env,
    )
    running = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while not running.healthy():
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{running.log_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /health in 60 s:\n{running.log_text()}")
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:  # the test failed before stopping it
            process.kill()
            process.wait()
        output.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1000,900")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def multi30k_sentence(data_root: Path) -> str:
    with gzip.open(data_root / "multi30k" / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        return f.readline().strip()


def texts_of(driver, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def test_the_page_translates_and_draws_the_attention(server, browser, data_root):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    sentence = multi30k_sentence(data_root)
    wait = WebDriverWait(browser, 20)

    # The page is open; the API is behind the key, so the page asks for it.
    browser.get(server.base + "/")
    wait.until(lambda d: d.find_element(By.ID, "key-row").is_displayed())
    assert "Error 401" in browser.find_element(By.ID, "error").text
    assert texts_of(browser, "#model option") == []
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.ID, "text").click()  # leaving the key field loads the models
    wait.until(lambda d: texts_of(d, "#model option"))
    assert texts_of(browser, "#model option") == ["tiny (en → de)"]
    assert not browser.find_element(By.ID, "error").is_displayed()

    # Beam search shows its beam size, 5 unless the model says otherwise.
    beam_size = browser.find_element(By.ID, "beam-size")
    Select(browser.find_element(By.ID, "search")).select_by_value("greedy")
    assert not beam_size.is_displayed()
    Select(browser.find_element(By.ID, "search")).select_by_value("beam")
    assert beam_size.is_displayed() and beam_size.get_attribute("value") == "5"

    # An error from the API is shown in the page: here, a text over the length limit.
    text_box = browser.find_element(By.ID, "text")
    browser.execute_script("arguments[0].value = 'x'.repeat(1001)", text_box)
    browser.find_element(By.ID, "translate").click()
    error = wait.until(ready.visibility_of_element_located((By.ID, "error")))
    assert "413" in error.text and "texts[0] has 1001 characters" in error.text

    text_box.clear()
    text_box.send_keys(sentence)
    browser.find_element(By.ID, "translate").click()
    wait.until(lambda d: texts_of(d, "#results .translation"))
    wait.until(lambda d: d.find_element(By.ID, "form").get_attribute("aria-busy") is None)
    assert not browser.find_element(By.ID, "error").is_displayed()

    asked = {"texts": [sentence], "model": "tiny", "search": "beam", "beam_size": 5}
    plain = server.translate(asked)
    api = server.translate({**asked, "alignment": True, "attention": True})["translations"][0]
    assert api["text"] == plain["translations"][0]["text"]  # asking for attention changes nothing

    # The API's attention: [target tokens][source tokens], </s> ending both, rows sum to 1.
    source, target, weights = api["source_tokens"], api["target_tokens"], api["attention"]
    assert source[-1] == target[-1] == "</s>" and len(source) > 2 and len(target) > 1
    assert len(weights) == len(target) and all(len(row) == len(source) for row in weights)
    assert all(math.isclose(sum(row), 1.0, abs_tol=1e-3) for row in weights)
    assert len(api["alignment"]) == len(target) - 1

    # The page shows exactly that: the translation, its score, and the heatmap.
    assert texts_of(browser, "#results .translation") == [api["text"]]
    assert texts_of(browser, "#results .score") == [f"score {api['score']:.3f}"]
    assert browser.find_element(By.ID, "attention").is_displayed()
    assert texts_of(browser, ".heat-col") == source
    assert texts_of(browser, ".heat-row") == target
    assert len(browser.find_elements(By.CSS_SELECTOR, ".heat-cell")) == len(source) * len(target)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".heat-cell.aligned")) == len(target) - 1

    if os.environ.get("SEQ2SEQ_SCREENSHOT"):
        save_screenshot(browser)

    # A phone-sized screen: the controls fit, nothing but the heatmap's box scrolls sideways.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {**PHONE, "deviceScaleFactor": 1, "mobile": True},
    )
    layout = browser.execute_script(
        """
        const width = document.documentElement.clientWidth;
        const box = document.querySelector('.heatmap-scroll');
        const outside = [...document.querySelectorAll('body *')].filter((e) => {
          const r = e.getBoundingClientRect();
          return !box.contains(e) && r.width > 0 && (r.left < 0 || r.right > width + 0.5);
        }).map((e) => e.id || e.className || e.tagName);
        const controls = ['text', 'model', 'search', 'beam-size', 'translate'].map((id) => {
          const r = document.getElementById(id).getBoundingClientRect();
          return [id, r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= width];
        });
        const b = box.getBoundingClientRect();
        return {width, page: document.documentElement.scrollWidth, outside, controls,
                box: [b.left, b.right], boxScroll: [box.scrollWidth, box.clientWidth]};
        """
    )
    assert layout["width"] == PHONE["width"]
    assert layout["page"] <= layout["width"], layout
    assert layout["outside"] == [], layout
    assert all(visible for _, visible in layout["controls"]), layout["controls"]
    assert layout["box"][0] >= 0 and layout["box"][1] <= layout["width"], layout
    assert layout["boxScroll"][0] > layout["boxScroll"][1], "the heatmap should scroll in its box"

    # SIGTERM: the server stops and exits 0.
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.log_text()


def save_screenshot(driver) -> None:
    """The whole page at a desktop width, as a small palette PNG (the key field hidden:
    the picture shows the page as a server without a key has it)."""
    from io import BytesIO

    from PIL import Image

    def viewport(height: int) -> None:
        metrics = {"width": 900, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

    driver.execute_script("document.getElementById('key-row').hidden = true")
    viewport(900)
    viewport(min(driver.execute_script("return document.body.scrollHeight"), 1400))
    image = Image.open(BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT, optimize=True)
