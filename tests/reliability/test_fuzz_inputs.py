"""Hypothesis-driven requests against every route of the app: no 5xx, every error a JSON body.

Routes come from the app's URL map, so a new endpoint is fuzzed without editing this file.
Each example starts from the same seeded state (the stores are reset), so failures shrink and
replay deterministically. A second test puts hostile values (lone surrogates, NUL bytes, huge
and over-precise numbers, deep JSON) in every field of every endpoint that takes a body, sent
anonymously and with a user's and an admin's token, and checks nothing was written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from appkit import PASSWORD, AppKit
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_cachesync import CacheSync
from sample_app import queries as loaders
from sample_app.db import get_session
from sample_app.reset import row_counts

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


lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Digits of other scripts: int() and the regex \d take them, ids must not.
other_digits = st.characters(categories=["Nd"], exclude_characters="0123456789")
short_text = st.text(max_size=6)
# Built around the bad character rather than filtered for it: filters starve hypothesis.
with_surrogate = st.tuples(short_text, lone_surrogates, short_text).map("".join)
with_nul = st.tuples(short_text, short_text).map("\x00".join)
hostile_strings = with_surrogate | with_nul
huge_or_precise = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60),
    st.decimals(allow_nan=False, allow_infinity=False, places=12).map(str),
    st.integers(min_value=20, max_value=999_999).map(lambda e: f"1e{e}"),
    st.floats(min_value=1e20, max_value=1e308),
)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    hostile_strings,
    huge_or_precise,
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


def _deep(opening: str, closing: str) -> st.SearchStrategy[str]:
    return st.integers(min_value=30, max_value=12_000).map(
        lambda n: opening * n + "1" + closing * n
    )


deep_json = _deep("[", "]") | _deep('{"name":', "}")
bodies = st.one_of(
    st.none(),
    deep_json,
    field_objects.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=64),
    st.sampled_from(["{", "{'a': 1}", "[1,", "null", "\ufeff{}", '{"lot_id": NaN}', "x" * 200_000]),
    st.sampled_from(['{"lot_id": ' + "9" * 5000 + "}", '{"price_per_hour": 1e999999}']),
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
    st.text(other_digits, min_size=1, max_size=4),
    st.sampled_from(["\uff11", "\uff10\uff11", "1\u0661", "\u00b9"]),
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
        elif response.status_code < 400 and not all(s.isascii() for s in segments):
            problem = "id of non-ASCII digits served"
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


@dataclass(frozen=True)
class BodyEndpoint:
    method: str
    path: str  # "{user}" / "{lot}" stand for the seeded rows
    valid: dict[str, Any]
    # Anonymous, plus every caller whose request reaches the body checks.
    callers: tuple[str, ...] = ("none", "user")


_LOT = {
    "name": "North",
    "address": "2 Road",
    "pincode": "560002",
    "price_per_hour": 12.5,
    "number_of_spots": 3,
}
BODY_ENDPOINTS = (
    BodyEndpoint("POST", "/auth/register", {"username": "newbie", "email": "newbie@example.com",
                 "password": "pw-123456", "vehicle_number": "KA01", "phone": "+91 1"}),
    BodyEndpoint("POST", "/auth/login", {"username": "alice", "password": PASSWORD}),
    BodyEndpoint("PATCH", "/users/{user}", {"email": "alice2@example.com", "password": "pw-654321",
                 "vehicle_number": "KA02", "phone": "+91 2", "role": "user"},
                 ("none", "user", "admin")),
    BodyEndpoint("POST", "/parking-lots", _LOT, ("none", "admin")),
    BodyEndpoint("PATCH", "/parking-lots/{lot}", _LOT, ("none", "admin")),
    BodyEndpoint("POST", "/reservations", {"lot_id": "{lot}"}),
)  # fmt: skip
EXAMPLES_PER_CLASS = 2
TEXT_CLASSES = ("surrogate", "nul")
# Every huge or over-precise value is out of range for these; text fields may take one as text.
NUMBER_FIELDS = ("price_per_hour", "number_of_spots", "lot_id")


# JSON text of hostile values by class: numbers go both as JSON numbers and as strings.
HOSTILE_VALUES: dict[str, st.SearchStrategy[str]] = {
    "surrogate": with_surrogate.map(json.dumps),
    "nul": with_nul.map(json.dumps),
    "huge_number": st.one_of(
            st.integers(min_value=10**7, max_value=10**60).map(str),
            st.integers(min_value=20, max_value=999_999).map(lambda e: f"1e{e}"),
            st.floats(min_value=1e20, max_value=1e308).map(repr),
            st.integers(min_value=10**7, max_value=10**60).map(lambda n: json.dumps(f"{n}")),
        ),
    "precise_number": st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False)
        .filter(lambda d: d != d.quantize(Decimal("0.01")))
        .map(lambda d: str(d) if d > 1 else json.dumps(str(d))),
    "deep_json": st.integers(min_value=33, max_value=5000).map(
        lambda n: "[" * n + "1" + "]" * n),
}  # fmt: skip


def _body_text(valid: dict[str, Any], field: str, fragment: str, seeded: Seed) -> str:
    values = {
        name: fragment if name == field else json.dumps(_seeded(value, seeded))
        for name, value in valid.items()
    }
    return "{" + ",".join(f"{json.dumps(name)}:{text}" for name, text in values.items()) + "}"


def _seeded(value: Any, seeded: Seed) -> Any:
    named = {"{user}": seeded.user_id, "{lot}": seeded.lot_id}
    return named.get(value, value) if isinstance(value, str) else value


def _snapshot(kit: AppKit) -> dict[str, Any]:
    with kit.app.app_context():
        session = get_session()
        return {
            "rows": row_counts(session),
            "users": loaders.users_list(session),
            "lots": loaders.lots_list(session),
        }


def test_hostile_values_in_every_field_are_refused_and_change_nothing(
    kit: AppKit, cachesync: CacheSync, figures: Figures
) -> None:
    tried: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[dict[str, Any]] = []
    # A refused request changes nothing (asserted), so the seeded state is only rebuilt after
    # a success: logins and resets are most of an example's cost.
    state: list[Seed] = []

    def one_request(
        endpoint: BodyEndpoint, field: str, caller: str, kind: str, fragment: str
    ) -> None:
        if not state:
            cachesync.reset()
            state.append(seed(kit))
        seeded = state[0]
        before = _snapshot(kit)
        path = endpoint.path.format(user=seeded.user_id, lot=seeded.lot_id)
        headers = {"Content-Type": "application/json"}
        authorization = _authorization(caller, seeded.tokens)
        if authorization is not None:
            headers["Authorization"] = authorization
        body = _body_text(endpoint.valid, field, fragment, seeded)
        response = kit.client.open(path, method=endpoint.method, data=body, headers=headers)
        tried[kind] += 1
        statuses[response.status_code] += 1
        problem = None
        if response.status_code >= 500:
            problem = "server error"
        elif not response.is_json:
            problem = "not a JSON body"
        elif response.status_code >= 400:
            if "error" not in response.get_json():
                problem = "error body without 'error'"
            elif _snapshot(kit) != before:
                problem = "refused, yet the database changed"
        elif kind in TEXT_CLASSES or kind == "deep_json" or field in NUMBER_FIELDS:
            problem = f"{kind} accepted"
        if response.status_code < 400:
            state.clear()
        if problem is not None:
            failures.append({"request": f"{endpoint.method} {path}", "field": field, "kind": kind})
        assert problem is None, (problem, caller, path, field, response.data[:300])

    settings_ = settings(
        max_examples=EXAMPLES_PER_CLASS,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )  # fmt: skip
    combinations = [
        (endpoint, field, caller)
        for endpoint in BODY_ENDPOINTS
        for field in endpoint.valid
        for caller in endpoint.callers
    ]
    for endpoint, field, caller in combinations:
        for kind, values in HOSTILE_VALUES.items():
            settings_(
                given(
                    endpoint=st.just(endpoint),
                    field=st.just(field),
                    caller=st.just(caller),
                    kind=st.just(kind),
                    fragment=values,
                )(one_request)
            )()
    figures.record(
        "fuzz_fields",
        requests=sum(tried.values()),
        endpoints=len(BODY_ENDPOINTS),
        field_caller_pairs=len(combinations),
        requests_by_class=dict(sorted(tried.items())),
        server_errors_5xx=sum(n for status, n in statuses.items() if status >= 500),
        refused_but_changed=sum(1 for f in failures if "changed" in str(f)),
        statuses=dict(sorted(statuses.items())),
    )
    assert failures == []
    assert set(tried) == set(HOSTILE_VALUES)
