from __future__ import annotations

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
