"""``--cachesync-map PATH.html``: the invalidation map as a page, checked in headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and is skipped without them,
unless ``CACHESYNC_REQUIRE_BROWSER=1``, as the dashboard's is.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from reliability.test_dashboard_browser import browser

from pytest_cachesync.staleness.map_page import render_page

from .conftest import Backend
from .foreign_app import shop
from .test_invalidation_map import DELETE_ONLY, RENAME

__all__ = ["browser", "shop"]  # fixtures


@pytest.fixture
def page(pytester: pytest.Pytester, backend: Backend, shop: None) -> str:
    pytester.makepyfile(test_delete=DELETE_ONLY, test_rename="BUGS = False\n" + RENAME)
    result = pytester.runpytest("--cachesync-map=out/map.html")
    result.assert_outcomes(passed=2)
    return (pytester.path / "out" / "map.html").read_text(encoding="utf-8")


def test_the_page_needs_nothing_from_outside(page: str) -> None:
    assert not re.search(r"""\b(?:src|href)\s*=|@import|url\(""", page)
    assert page.count("<script") == 2


def test_json_inside_the_page_cannot_close_its_script() -> None:
    hostile = {
        "summary": {
            "sites": 1,
            "patterns": 1,
            "missing": 1,
            "invalidated": 0,
            "exempt": 0,
            "invalidated_before_commit": 0,
        },
        "sites": {"POST /x</script><script>alert(1)</script>": {"kind": "request", "tables": []}},
        "patterns": ["k:*"],
        "sources": {},
        "cells": [],
        "early": [],
        "exemptions": {},
    }
    html = render_page(hostile)
    assert "<script>alert(1)" not in html
    assert html.count("<script") == 2


def test_the_map_page_in_chromium(page: str, pytester: pytest.Pytester, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get((pytester.path / "out" / "map.html").as_uri())
    missing = browser.find_elements(By.CSS_SELECTOR, "td.cell.missing")
    assert [(c.get_attribute("data-site"), c.get_attribute("data-pattern")) for c in missing] == [
        ("DELETE /users/<user_id>", "parking_lot:*")
    ]
    assert missing[0].value_of_css_property("background-color") == "rgba(229, 72, 77, 1)"
    hover = missing[0].get_attribute("title")
    assert re.search(r"parking_lot:3 from spots \(rows (free=1, )?lot_id=3\)", hover), hover
    panel = browser.find_element(By.ID, "evidence")
    # The first missing cell is shown without a click: it is what the page is opened for.
    assert panel.text.startswith("DELETE /users/<user_id> \u2192 parking_lot:*: missing")
    assert "[test_delete.py::test_delete_user]" in panel.text

    selector = 'td.cell[data-site="PUT /users/<user_id>"][data-pattern="user:*"]'
    renamed = browser.find_element(By.CSS_SELECTOR, selector)
    assert renamed.value_of_css_property("background-color") == "rgba(70, 167, 88, 1)"
    renamed.click()
    assert panel.text.startswith("PUT /users/<user_id> \u2192 user:*: invalidated")
    assert "wrote: members" in panel.text
    assert "[test_rename.py::test_rename]" in panel.text

    selector = 'td.cell[data-site="PUT /users/<user_id>"][data-pattern="parking_lot:*"]'
    browser.find_element(By.CSS_SELECTOR, selector).click()
    assert "unrelated" in panel.text
    assert "filled from: lots, spots" in panel.text
