"""Typed SQLAlchemy 2.0 models.

Money is stored as integer cents (``*_cents`` columns); datetimes are timezone-aware UTC.
Ids are never reused, on any backend: a token, a link or a log line naming a deleted row must
never come to name a new one (SQLite ``AUTOINCREMENT``, identity columns elsewhere).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from sample_app import clock

ROLE_ADMIN = "admin"
ROLE_USER = "user"
ROLES = (ROLE_ADMIN, ROLE_USER)
SPOT_AVAILABLE = "available"
SPOT_OCCUPIED = "occupied"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the app stores aware UTC datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# Without AUTOINCREMENT, SQLite hands the highest deleted id to the next row.
NEVER_REUSED = {"sqlite_autoincrement": True}
Id = Annotated[int, mapped_column(Integer, Identity(), primary_key=True)]


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'user')", name="ck_users_role"),
        NEVER_REUSED,
    )

    id: Mapped[Id]
    username: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(10), default=ROLE_USER)
    vehicle_number: Mapped[str | None] = mapped_column(String(32), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # Part of every token: raising it (password or role change, "log out everywhere") kills
    # all tokens issued before, whether or not Redis still holds their sessions.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


class ParkingLot(Base):
    __tablename__ = "parking_lots"
    __table_args__ = NEVER_REUSED

    id: Mapped[Id]
    name: Mapped[str] = mapped_column(String(120), unique=True)
    address: Mapped[str] = mapped_column(String(300))
    pincode: Mapped[str] = mapped_column(String(10))
    price_per_hour_cents: Mapped[int] = mapped_column(Integer)
    number_of_spots: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    spots: Mapped[list[ParkingSpot]] = relationship(
        back_populates="lot",
        cascade="all, delete-orphan",
        order_by="ParkingSpot.number",
    )


class ParkingSpot(Base):
    __tablename__ = "parking_spots"
    __table_args__ = (
        UniqueConstraint("lot_id", "number", name="uq_parking_spots_lot_number"),
        CheckConstraint("status IN ('available', 'occupied')", name="ck_parking_spots_status"),
        NEVER_REUSED,
    )

    id: Mapped[Id]
    lot_id: Mapped[int] = mapped_column(ForeignKey("parking_lots.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=SPOT_AVAILABLE)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    lot: Mapped[ParkingLot] = relationship(back_populates="spots")
    reservations: Mapped[list[Reservation]] = relationship(
        back_populates="spot", cascade="all, delete-orphan"
    )


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = NEVER_REUSED

    id: Mapped[Id]
    spot_id: Mapped[int] = mapped_column(ForeignKey("parking_spots.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # The price is copied at booking so a later price change does not alter a running stay.
    price_per_hour_cents: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    cost_cents: Mapped[int | None] = mapped_column(Integer, default=None)

    spot: Mapped[ParkingSpot] = relationship(back_populates="reservations")


class RevokedSession(Base):
    """A session ended by logout, kept until its token would have expired anyway.

    Redis holds live sessions, but a logout must also hold while Redis is down or after it
    lost the delete: the database is where a token's revocation is always checked.
    """

    __tablename__ = "revoked_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
