from __future__ import annotations

import io
import json

import pytest
from appkit import PASSWORD, AppKit
from flask.testing import FlaskClient


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert set(response.get_json()) == {"error", "details"}


def test_wrong_method_is_json_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/parking-lots")
    assert response.status_code == 405
    assert response.get_json()["error"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]


def test_invalid_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/auth/register", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "request body must be valid JSON"


def test_json_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    response = client.post("/auth/login", json=["a", "b"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "request body must be a JSON object"


HOSTILE_TEXT = ["\ud800", "a\udfffb", "\x00", "alice\x00admin"]
TEXT_FIELDS = [
    ("/auth/register", {"username": "bob", "email": "bob@example.com", "password": "hunter22"},
     ("username", "email", "password", "vehicle_number", "phone")),
    ("/auth/login", {"username": "alice", "password": PASSWORD}, ("username", "password")),
]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=repr)
@pytest.mark.parametrize(("path", "valid", "fields"), TEXT_FIELDS, ids=lambda v: str(v)[:14])
def test_nul_and_lone_surrogates_are_400_naming_the_field(
    kit: AppKit, path: str, valid: dict[str, str], fields: tuple[str, ...], text: str
) -> None:
    kit.user("alice")
    for field in fields:
        response = kit.client.post(path, json=valid | {field: text})
        assert response.status_code == 400, (field, response.data[:200])
        assert response.get_json()["details"] == {"field": field}
    assert (
        kit.client.post("/auth/login", json={"username": "bob", "password": "hunter22"}).status_code
        == 401
    )


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deep_json_is_400_not_a_recursion_error(client: FlaskClient, opening: str) -> None:
    depth = 5_000  # five times the interpreter's recursion limit, within the body limit
    closing = "]" if opening == "[" else "}"
    body = opening * depth + "1" + closing * depth
    response = client.post("/auth/login", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nests deeper" in response.get_json()["error"]


def test_nesting_inside_strings_does_not_count(kit: AppKit) -> None:
    kit.user("[" * 60)  # not a valid username, but a string full of brackets
    response = kit.client.post("/auth/login", json={"username": "[" * 60, "password": "x" * 6})
    assert response.status_code == 401


TOO_LARGE = [1e30, "1e30", 10**40, "1E+999999", 100_000.01, "99999999.999"]
IN_RANGE = [100_000, "0.10", 0, "12.5"]


@pytest.mark.parametrize(
    ("price", "status"), [(p, 400) for p in TOO_LARGE] + [(p, 200) for p in IN_RANGE]
)
def test_amounts_out_of_range_are_400_whatever_their_magnitude(
    kit: AppKit, admin_headers: dict[str, str], price: object, status: int
) -> None:
    lot = kit.lot()
    response = kit.client.patch(
        f"/parking-lots/{lot}", json={"price_per_hour": price}, headers=admin_headers
    )
    assert response.status_code == status, response.data[:200]
    if status == 400:
        assert response.get_json()["details"] == {"field": "price_per_hour"}
        assert kit.client.get(f"/parking-lots/{lot}").get_json()["price_per_hour_cents"] == 6000


@pytest.mark.parametrize("segment", ["\uff11", "\u0661", "\U0001d7cf", "\u00b9"])
def test_ids_accept_ascii_digits_only(
    kit: AppKit, admin_headers: dict[str, str], segment: str
) -> None:
    lot = kit.lot()
    assert lot == 1 or segment  # the non-ASCII "1" would alias lot 1
    for path in (f"/parking-lots/{segment}", f"/users/{segment}", f"/reservations/{segment}"):
        response = kit.client.get(path, headers=admin_headers)
        assert response.status_code == 404, path
        assert response.is_json


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_bodies_over_the_limit_are_413_before_anything_reads_them(kit: AppKit, method: str) -> None:
    limit = kit.app.config["MAX_CONTENT_LENGTH"]
    assert limit == 64 * 1024
    padding = "x" * limit
    response = kit.client.open(
        "/auth/register" if method == "POST" else "/parking-lots",
        method=method,
        data=json.dumps({"username": "bob", "email": "b@example.com", "password": padding}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert str(limit) in response.get_json()["details"]


def test_undeclared_length_is_cut_at_the_limit(kit: AppKit) -> None:
    """A chunked body (no Content-Length) is stopped by werkzeug once it passes the limit."""
    limit = kit.app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps({"username": "x" * (2 * limit), "password": "y"}).encode()
    response = kit.client.post(
        "/auth/login",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        # What a server sets for a chunked body: read until the stream ends.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
