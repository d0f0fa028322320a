"""``flask --app sample_app init-db | seed-demo | reset-system``."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from sample_app import cache_keys
from sample_app.cache import get_cache
from sample_app.db import create_all, get_session
from sample_app.models import ROLE_ADMIN, ROLE_USER, ParkingLot, ParkingSpot, User
from sample_app.reset import reset_system

DEMO_ADMIN = ("admin", "admin123", "admin@example.com")
DEMO_USER = ("demo", "demo123", "demo@example.com")
# name, address, pincode, price per hour in cents, spots
DEMO_LOTS = (
    ("City Center", "1 Main Street", "560001", 5000, 10),
    ("Airport Terminal 1", "Airport Road", "560300", 3000, 20),
    ("Mall Road", "12 Mall Road", "560025", 2000, 8),
)


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database tables (idempotent)."""
    create_all()
    click.echo("Database tables created.")


def _ensure_user(username: str, password: str, email: str, role: str) -> bool:
    session = get_session()
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        return False
    session.add(
        User(
            username=username,
            email=email,
            password_hash=generate_password_hash(password),
            role=role,
        )
    )
    return True


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Add demo parking lots with spots, an admin and a demo user (idempotent)."""
    create_all()
    session = get_session()
    created_admin = _ensure_user(*DEMO_ADMIN, role=ROLE_ADMIN)
    created_user = _ensure_user(*DEMO_USER, role=ROLE_USER)
    new_lots = 0
    for name, address, pincode, cents, spots in DEMO_LOTS:
        if session.scalar(select(ParkingLot.id).where(ParkingLot.name == name)) is not None:
            continue
        lot = ParkingLot(
            name=name,
            address=address,
            pincode=pincode,
            price_per_hour_cents=cents,
            number_of_spots=spots,
        )
        session.add(lot)
        session.flush()
        session.add_all(ParkingSpot(lot_id=lot.id, number=n) for n in range(1, spots + 1))
        new_lots += 1
    session.commit()
    get_cache().delete_now(
        (cache_keys.USERS_ALL, cache_keys.PARKING_LOTS_ALL)
    )  # lists cached by a server sharing this Redis
    click.echo(f"Demo lots added: {new_lots} (of {len(DEMO_LOTS)}).")
    click.echo(
        f"Admin user: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}"
        + ("" if created_admin else " (already existed)")
    )
    click.echo(
        f"Demo user: {DEMO_USER[0]} / {DEMO_USER[1]}"
        + ("" if created_user else " (already existed)")
    )


@click.command("reset-system")
@with_appcontext
def reset_system_command() -> None:
    """Delete all rows except admin users and clear the Redis cache."""
    report = reset_system(get_session(), get_cache())
    click.echo("Reset done:")
    click.echo(json.dumps(report, indent=2, sort_keys=True))


def init_app(app: Flask) -> None:
    app.cli.add_command(init_db_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(reset_system_command)
