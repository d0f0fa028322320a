"""Hypothesis-driven requests against every route of the app: no 5xx, every error a JSON body.

Routes come from the app's URL map, so a new endpoint is fuzzed without editing this file.
Each example starts from the same seeded state (the stores are reset), so failures shrink and
replay deterministically.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from appkit import AppKit
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_cachesync import CacheSync

from .figures import Figures

EXAMPLES_PER_ROUTE = 18
_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
FIELDS = (
    "username", "email", "password", "vehicle_number", "phone", "role", "lot_id", "name",
    "address", "pincode", "price_per_hour", "number_of_spots",
)  # fmt: skip
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


@dataclass(frozen=True)
class Route:
    rule: str
    methods: tuple[str, ...]

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.rule)


def routes_of(app: Flask) -> list[Route]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = tuple(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        found.append(Route(rule.rule, methods))
    return sorted(found, key=lambda r: r.rule)


@dataclass(frozen=True)
class Seed:
    user_id: int
    lot_id: int
    tokens: dict[str, str]


def seed(kit: AppKit) -> Seed:
    kit.admin("root")
    user_id = kit.user("alice")
    lot_id = kit.lot("Central", spots=2)
    tokens = {"admin": kit.token("root"), "user": kit.token("alice")}
    return Seed(user_id, lot_id, tokens)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "a" * 10_000, "ü@ö.ß", "0.001", "1e308", "-1", "12.345", "\x00", "\ud800"]
    ),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
bodies = st.one_of(
    st.none(),
    field_objects.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=64),
    st.sampled_from(["{", "{'a': 1}", "[1,", "null", "\ufeff{}", '{"lot_id": NaN}', "x" * 200_000]),
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ]
)
id_segments = st.one_of(
    st.sampled_from(["seed_user", "seed_lot", "0", "-1", "1.5", "1e3", "9" * 40, "%00", ".."]),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.text(min_size=1, max_size=12),
)
latin1_text = st.text(st.characters(max_codepoint=255, exclude_categories=["Cc"]), max_size=60)
auth_headers = st.one_of(
    st.sampled_from(["none", "admin", "user", "admin+x", "user-flipped"]),
    latin1_text.map(lambda t: "raw:" + t),
    latin1_text.map(lambda t: "raw:Bearer " + t),
)
accepts = st.sampled_from([None, "text/html", "application/json", "*/*", "image/png"])
queries = st.one_of(st.none(), st.dictionaries(st.sampled_from(["format", "q"]), latin1_text))


def _authorization(choice: str, tokens: dict[str, str]) -> str | None:
    if choice == "none":
        return None
    if choice.startswith("raw:"):
        return choice[4:]
    if choice == "admin+x":
        return f"Bearer {tokens['admin']}x"
    if choice == "user-flipped":
        token = tokens["user"]
        return f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}"
    return f"Bearer {tokens[choice]}"


def _path(route: Route, segments: list[str], seeded: Seed) -> str:
    named = {"seed_user": str(seeded.user_id), "seed_lot": str(seeded.lot_id)}
    values = iter(quote(named.get(s, s), safe="") for s in segments)
    return _PARAM.sub(lambda _m: next(values), route.rule)


def test_random_requests_never_cause_a_server_error(
    app: Flask, kit: AppKit, cachesync: CacheSync, figures: Figures
) -> None:
    routes = routes_of(app)
    tried: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[dict[str, Any]] = []

    def fuzz(route: Route) -> None:
        settings(**budget)(given(route=st.just(route), **draws)(one_request))()

    budget: dict[str, Any] = dict(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    draws: dict[str, Any] = dict(
        data=st.data(),
        body=bodies,
        content_type=content_types,
        auth=auth_headers,
        accept=accepts,
        query=queries,
    )

    def one_request(
        route: Route,
        data: st.DataObject,
        body: str | bytes | None,
        content_type: str | None,
        auth: str,
        accept: str | None,
        query: dict[str, str] | None,
    ) -> None:
        cachesync.reset()
        seeded = seed(kit)
        method = data.draw(st.sampled_from(route.methods) | st.sampled_from(METHODS))
        segments = [data.draw(id_segments) for _ in route.params]
        headers = {
            name: value
            for name, value in (
                ("Authorization", _authorization(auth, seeded.tokens)),
                ("Content-Type", content_type),
                ("Accept", accept),
            )
            if value is not None
        }
        path = _path(route, segments, seeded)
        response = kit.client.open(
            path, method=method, data=body, headers=headers, query_string=query
        )
        tried[f"{method} {route.rule}"] += 1
        statuses[response.status_code] += 1
        html_shell = response.status_code == 200 and response.mimetype == "text/html"
        problem = None
        if response.status_code >= 500:
            problem = "server error"
        elif method != "HEAD" and not html_shell:
            if not response.is_json:
                problem = "not a JSON body"
            elif response.status_code >= 400 and "error" not in response.get_json():
                problem = "error body without 'error'"
        if problem is not None:
            failures.append({"request": f"{method} {path}", "status": response.status_code})
        assert problem is None, (problem, method, path, response.status_code, response.data[:300])

    for route in routes:
        fuzz(route)
    untried = {f"{m} {r.rule}" for r in routes for m in r.methods} - set(tried)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    figures.record(
        "fuzz_inputs",
        requests=sum(tried.values()),
        routes=len(routes),
        server_errors_5xx=server_errors,
        non_json_errors=len(failures) - server_errors,
        statuses=dict(sorted(statuses.items())),
    )
    assert failures == []
    assert not untried, f"routes never fuzzed: {sorted(untried)}"


@pytest.mark.parametrize("segment", ["9" * 30, str(2**63), str(2**31)])
def test_huge_ids_are_not_found_not_errors(kit: AppKit, segment: str) -> None:
    kit.admin()
    headers = kit.headers("root")
    for path in (f"/users/{segment}", f"/parking-lots/{segment}", f"/reservations/{segment}"):
        response = kit.client.get(path, headers=headers)
        assert response.status_code == 404, (path, response.get_json())
        assert response.is_json
