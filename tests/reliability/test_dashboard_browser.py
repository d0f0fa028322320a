"""The Redis dashboard in real headless Chromium, against the app served on loopback.

Needs Debian's ``chromium`` and ``chromium-driver``. Without them the test is skipped, unless
``CACHESYNC_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from appkit import AppKit
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from sample_app import create_app
from sample_app.cache import get_cache

from .figures import ARTIFACTS, Figures
from .redis_server import THROWAWAY_REDIS, redis_server_binary, throwaway_redis

# The app talks to a throwaway redis-server of the test's own, not to the test's keyspace.
pytestmark = pytest.mark.cachesync(db_reset="truncate", allow_connections=[THROWAWAY_REDIS])

SERVER_PORTS = range(5200, 5220)
SCREENSHOT = ARTIFACTS / "dashboard.png"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1400",
)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = (
        "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CACHESYNC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"CACHESYNC_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver_path = _browser_paths()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="cachesync-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(app_config: dict[str, Any], db_bind: sa.Engine) -> Iterator[tuple[Flask, str]]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    with throwaway_redis(binary) as redis_server:
        app = create_app(app_config | {"REDIS_URL": redis_server.url}, engine=db_bind)
        server = _make_server(app)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app, f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


def _make_server(app: Flask) -> BaseWSGIServer:
    for port in SERVER_PORTS:
        try:
            return make_server("127.0.0.1", port, app, threaded=True)
        except OSError:
            continue
    raise RuntimeError(f"no free port for the app in {SERVER_PORTS}")


def test_dashboard_renders_and_updates_in_chromium(
    served: tuple[Flask, str], browser: Any, figures: Figures
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app, base = served
    kit = AppKit(app, app.test_client(), get_cache(app).client)
    kit.admin("root")
    lots = [kit.lot(name, spots=3) for name in ("Central", "Harbour")]
    token = kit.token("root")
    for lot in lots:
        kit.client.get(f"/parking-lots/{lot}")
    kit.client.get(f"/parking-lots/{lots[0]}")  # one hit

    browser.get(f"{base}/admin/redis-dashboard")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#auth button[type=submit]").click()
    wait = WebDriverWait(browser, 15)
    wait.until(lambda d: d.find_element(By.ID, "status").text == "ok")
    browser.execute_script("window.__sameDocument = true;")

    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#patterns h3")]
    assert "parking_lot:* (2)" in headings, headings
    assert "parking_lots:* (0)" in headings, headings
    assert any(h.startswith("user_session:* (") for h in headings), headings
    key_rows = browser.find_elements(By.CSS_SELECTOR, "#patterns td")
    cells = [c.text for c in key_rows]
    assert f"parking_lot:{lots[0]}" in cells
    shown = key_rows[cells.index(f"parking_lot:{lots[0]}") + 1]
    ttl_ms = int(shown.get_attribute("data-ttl-ms"))
    assert 0 < ttl_ms <= app.config["CACHE_PARKING_TTL"] * 1000
    # Read by a person: seconds with one decimal under a minute (the testing TTL is 5 s).
    seconds, unit = shown.text.split(" ")
    assert unit == "s", shown.text
    assert len(seconds.split(".")[1]) == 1, shown.text
    assert abs(float(seconds) - ttl_ms / 1000) <= 0.05, (shown.text, ttl_ms)
    memory = browser.find_element(By.ID, "memory").text
    assert memory not in ("", "\u2013", "n/a"), memory
    ratio_before = browser.find_element(By.ID, "ratio").text
    assert float(ratio_before) > 0

    # New traffic: the page must show it by itself, without a reload.
    for _ in range(6):
        kit.client.get(f"/parking-lots/{lots[1]}")
    kit.client.get("/parking-lots")
    wait.until(lambda d: d.find_element(By.ID, "ratio").text != ratio_before)
    wait.until(
        lambda d: (
            "parking_lots:* (1)"
            in [h.text for h in d.find_elements(By.CSS_SELECTOR, "#patterns h3")]
        )
    )
    assert browser.execute_script("return window.__sameDocument === true;")
    ratio_after = browser.find_element(By.ID, "ratio").text

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    figures.record(
        "dashboard_browser",
        hit_ratio_before=float(ratio_before),
        hit_ratio_after=float(ratio_after),
        memory_shown=memory,
        screenshot=str(Path(SCREENSHOT).relative_to(ARTIFACTS.parent)),
    )
