from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit
from flask.testing import FlaskClient

from sample_app import create_app
from sample_app.cache import get_cache

ADMIN_ENDPOINTS = [
    ("post", "/admin/clear-cache"),
    ("post", "/admin/reset-database"),
    ("get", "/admin/redis-dashboard"),
    ("get", "/debug/database-info"),
    ("get", "/users"),
    ("post", "/parking-lots"),
    ("patch", "/parking-lots/{lot}"),
    ("delete", "/parking-lots/{lot}"),
    ("delete", "/users/{victim}"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
@pytest.mark.parametrize(("who", "status"), [(None, 401), ("alice", 403), ("root", 200)])
def test_admin_authorisation_matrix(
    kit: AppKit, method: str, path: str, who: str | None, status: int
) -> None:
    root = kit.admin()
    alice = kit.user("alice")
    victim = alice if who == "root" else root
    path = path.format(lot=kit.lot(), victim=victim)
    headers = kit.headers(who) if who else {}
    if who == "root" and method in ("post", "patch") and path.startswith("/parking-lots"):
        body = {
            "name": "New",
            "address": "a",
            "pincode": "12345",
            "price_per_hour": 1,
            "number_of_spots": 1,
        }
    else:
        body = None
    response = getattr(kit.client, method)(path, headers=headers, json=body)
    expected = 201 if status == 200 and method == "post" and path == "/parking-lots" else status
    assert response.status_code == expected, response.get_json()
    assert "error" in response.get_json() or expected < 400


def test_clear_cache_reports_counts_and_keeps_sessions(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot()
    kit.client.get("/parking-lots")
    kit.client.get(f"/parking-lots/{lot}")
    kit.client.get("/users", headers=admin_headers)
    response = kit.client.post("/admin/clear-cache", headers=admin_headers).get_json()
    assert response["cleared"] == {
        "users:*": 1,
        "user:*": 0,
        "parking_lot:*": 1,
        "parking_lots:*": 1,
    }
    assert response["total"] == 3
    assert [k for k in kit.redis.scan_iter(match="parking_lot*")] == []
    assert kit.client.get("/users", headers=admin_headers).status_code == 200


@pytest.mark.parametrize("path", ["/admin/clear-cache", "/admin/reset-database"])
def test_clearing_the_cache_keeps_state_keys_named_like_cache_keys(
    kit: AppKit, admin_headers: dict[str, str], path: str
) -> None:
    lot = kit.lot()
    kit.client.get("/parking-lots")
    kit.client.get(f"/parking-lots/{lot}")
    cache = get_cache(kit.app)
    cached = [cache.key(f"parking_lot:{lot}"), cache.key("parking_lots:all")]
    # A counter with no TTL that the database cannot rebuild: state, though its name begins
    # like the lot keys.
    counter = cache.key("parking_lots_created")
    kit.redis.set(counter, 7)
    assert kit.redis.exists(*cached) == 2
    assert kit.client.post(path, headers=admin_headers).status_code == 200
    assert kit.redis.exists(*cached) == 0
    assert kit.redis.get(counter) == b"7"
    assert kit.redis.pttl(counter) == -1


def test_reset_database_keeps_admins_and_clears_cache(
    kit: AppKit, admin_headers: dict[str, str]
) -> None:
    lot = kit.lot()
    kit.user("alice")
    alice = kit.headers("alice")
    kit.client.post("/reservations", json={"lot_id": lot}, headers=alice)
    kit.client.get("/parking-lots")
    kit.client.get("/users", headers=admin_headers)
    report = kit.client.post("/admin/reset-database", headers=admin_headers).get_json()
    assert report["deleted_rows"] == {
        "reservations": 1,
        "parking_spots": 3,
        "parking_lots": 1,
        "users": 1,
    }
    assert report["admins_kept"] == 1
    assert report["sessions_dropped"] == 1
    assert kit.client.get("/parking-lots").get_json() == []
    users = kit.client.get("/users", headers=admin_headers).get_json()
    assert [u["username"] for u in users] == ["root"]
    assert kit.client.get("/reservations", headers=alice).status_code == 401
    info = kit.client.get("/debug/database-info", headers=admin_headers).get_json()
    assert info["row_counts"] == {
        "users": 1,
        "parking_lots": 0,
        "parking_spots": 0,
        "reservations": 0,
    }


def test_production_refuses_reset_and_hides_debug(
    redis_client: redis.Redis, db_bind: sa.Engine
) -> None:
    app = create_app(
        {"APP_ENV": "production", "SECRET_KEY": "prod-secret"},
        redis_client=redis_client,
        engine=db_bind,
    )
    kit = AppKit(app, app.test_client(), redis_client)
    kit.admin()
    kit.lot()
    headers = kit.headers("root")
    refused = kit.client.post("/admin/reset-database", headers=headers)
    assert refused.status_code == 403
    assert "production" in refused.get_json()["error"]
    assert kit.client.get("/debug/database-info", headers=headers).status_code == 404
    assert len(kit.client.get("/parking-lots").get_json()) == 1
    assert 290_000 < redis_client.pttl("parking_lots:all") <= 300_000


def test_dashboard_json_and_html(kit: AppKit, admin_headers: dict[str, str]) -> None:
    lot = kit.lot()
    kit.client.get(f"/parking-lots/{lot}")
    kit.client.get(f"/parking-lots/{lot}")
    # In oracle mode each of those GETs was replayed with the cache bypassed: a cold read (one
    # more miss) that the app's own counters see too. The dashboard itself is not replayed.
    replays = len(getattr(kit.client, "checks", ()))
    data = kit.client.get("/admin/redis-dashboard?format=json", headers=admin_headers).get_json()
    assert data["redis"]["status"] == "ok"
    pattern = data["redis"]["patterns"]["parking_lot:*"]
    assert pattern["count"] == 1
    assert pattern["keys"][0]["key"] == f"parking_lot:{lot}"
    assert 0 < pattern["keys"][0]["ttl_ms"] <= 5000
    assert data["redis"]["patterns"]["user_session:*"]["count"] == 1
    assert data["redis"]["patterns"]["parking_lots:*"]["count"] == 0
    assert data["stats"]["patterns"]["parking_lot:*"]["hit_ratio"] == round(1 / (2 + replays), 4)
    assert "memory" in data["redis"]
    page = kit.client.get(
        "/admin/redis-dashboard", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "fetch(" in html
    assert "setInterval" in html
    assert (
        kit.client.get("/admin/redis-dashboard?format=xml", headers=admin_headers).status_code
        == 400
    )


def test_health_ok(client: FlaskClient) -> None:
    response = client.get("/health/redis")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_cli_commands(redis_client: redis.Redis, db_bind: sa.Engine) -> None:
    app = create_app({"APP_ENV": "testing"}, redis_client=redis_client, engine=db_bind)
    runner = app.test_cli_runner()
    assert "created" in runner.invoke(args=["init-db"]).output
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "admin / admin123" in first.output
    second = runner.invoke(args=["seed-demo"])
    assert "Demo lots added: 0" in second.output
    kit = AppKit(app, app.test_client(), redis_client)
    lots = kit.client.get("/parking-lots").get_json()
    assert len(lots) == 3
    admin = kit.headers("admin", "admin123")
    demo = kit.headers("demo", "demo123")
    kit.client.post("/reservations", json={"lot_id": lots[0]["id"]}, headers=demo)
    reset = runner.invoke(args=["reset-system"])
    assert reset.exit_code == 0, reset.output
    assert '"parking_lots": 3' in reset.output
    assert kit.client.get("/parking-lots").get_json() == []
    assert [u["username"] for u in kit.client.get("/users", headers=admin).get_json()] == ["admin"]
