"""Parking lots: public list/get/available spots, admin create/update/delete."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from flask import Blueprint, Response, jsonify
from sqlalchemy import ColumnElement, CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sample_app import cache_keys, queries
from sample_app.booking import lot_keys
from sample_app.cache import cached, cached_response, invalidate
from sample_app.db import get_session
from sample_app.errors import conflict, not_found
from sample_app.models import SPOT_AVAILABLE, SPOT_OCCUPIED, ParkingLot, ParkingSpot
from sample_app.security import admin_required
from sample_app.validation import Payload, json_body

bp = Blueprint("lots", __name__, url_prefix="/parking-lots")
PINCODE_PATTERN = re.compile(r"^[0-9]{4,10}$")
MAX_SPOTS = 1000
_FIELDS = ("name", "address", "pincode", "price_per_hour", "number_of_spots")


def _lot_detail(lot_id: int) -> tuple[str, Callable[[], dict[str, Any] | None]]:
    """The cache key of a lot's detail and its loader from the database."""
    return cache_keys.parking_lot(lot_id), lambda: queries.lot_detail(get_session(), lot_id)


def _cached_lot(lot_id: int) -> dict[str, Any]:
    data = cached(*_lot_detail(lot_id), "CACHE_PARKING_TTL")
    if data is None:
        raise not_found("parking lot", lot_id)
    return data


def _read_fields(body: Payload) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = body.string("name", max_len=120)
    if "address" in body:
        values["address"] = body.string("address", max_len=300)
    if "pincode" in body:
        values["pincode"] = body.string("pincode", max_len=10, pattern=PINCODE_PATTERN)
    if "price_per_hour" in body:
        values["price_per_hour_cents"] = body.cents("price_per_hour")
    if "number_of_spots" in body:
        values["number_of_spots"] = body.integer("number_of_spots", minimum=1, maximum=MAX_SPOTS)
    return values


def _check_name_free(session: Session, name: str, lot_id: int | None) -> None:
    query = select(ParkingLot.id).where(ParkingLot.name == name)
    if lot_id is not None:
        query = query.where(ParkingLot.id != lot_id)
    if session.scalar(query) is not None:
        raise conflict("a parking lot with this name exists", {"name": name})


def _resize(session: Session, lot: ParkingLot, wanted: int) -> None:
    spots = list(
        session.scalars(
            select(ParkingSpot).where(ParkingSpot.lot_id == lot.id).order_by(ParkingSpot.number)
        )
    )
    if wanted > len(spots):
        top = max((s.number for s in spots), default=0)
        for number in range(top + 1, top + 1 + wanted - len(spots)):
            session.add(ParkingSpot(lot_id=lot.id, number=number, status=SPOT_AVAILABLE))
        return
    surplus = len(spots) - wanted
    removable = [s for s in reversed(spots) if s.status == SPOT_AVAILABLE][:surplus]
    still_free = _lock_free_spots(session, ParkingSpot.id.in_([s.id for s in removable]))
    if len(removable) < surplus or still_free < len(removable):
        raise conflict(
            "cannot remove occupied spots", {"occupied": len(spots) - len(removable) - wanted}
        )
    for spot in removable:
        session.delete(spot)


def _commit_with_detail(session: Session, lot_id: int) -> dict[str, Any]:
    """Commit the lot's changes; its detail as this transaction wrote it.

    The detail is read before the commit: afterwards another request may already have changed
    or deleted the lot, and the response must show what this request did.
    """
    try:
        detail = queries.lot_detail(session, lot_id)  # flushes: a duplicate name fails here
        session.commit()
    except IntegrityError:
        session.rollback()
        raise conflict("a parking lot with this name exists") from None
    assert detail is not None  # written by this transaction
    return detail


def _lock_free_spots(session: Session, *where: ColumnElement[bool]) -> int:
    """Lock the free spots matching ``where`` until commit; how many are still free.

    A booking that committed after this request read the spots has made one occupied: the
    conditional UPDATE sees that (it re-reads rows changed by committed transactions), and the
    lock keeps any further booking from taking a spot this request is about to delete.
    """
    locked = cast(
        CursorResult[tuple[()]],
        session.execute(
            update(ParkingSpot)
            .where(*where, ParkingSpot.status == SPOT_AVAILABLE)
            .values(status=SPOT_AVAILABLE)
            .execution_options(synchronize_session=False)
        ),
    )
    return locked.rowcount


@bp.get("")
def list_lots() -> Response:
    response = cached_response(
        cache_keys.PARKING_LOTS_ALL, lambda: queries.lots_list(get_session()), "CACHE_PARKING_TTL"
    )
    assert response is not None  # a list, possibly empty, never None
    return response


@bp.get("/<id:lot_id>")
def get_lot(lot_id: int) -> Response:
    response = cached_response(*_lot_detail(lot_id), "CACHE_PARKING_TTL")
    if response is None:
        raise not_found("parking lot", lot_id)
    return response


@bp.get("/<id:lot_id>/available-spots")
def available_spots(lot_id: int) -> Response:
    lot = _cached_lot(lot_id)
    free = [s for s in lot["spots"] if s["status"] == SPOT_AVAILABLE]
    return jsonify({"lot_id": lot_id, "available_spots": len(free), "spots": free})


@bp.post("")
@admin_required
def create_lot() -> tuple[Response, int]:
    values = _read_fields(json_body(required=_FIELDS))
    session = get_session()
    _check_name_free(session, values["name"], None)
    lot = ParkingLot(**values)
    session.add(lot)
    session.flush()
    for number in range(1, lot.number_of_spots + 1):
        session.add(ParkingSpot(lot_id=lot.id, number=number, status=SPOT_AVAILABLE))
    invalidate(cache_keys.PARKING_LOTS_ALL)
    return jsonify(_commit_with_detail(session, lot.id)), 201


@bp.route("/<id:lot_id>", methods=["PUT", "PATCH"])
@admin_required
def update_lot(lot_id: int) -> Response:
    values = _read_fields(json_body(optional=_FIELDS))
    session = get_session()
    lot = session.get(ParkingLot, lot_id)
    if lot is None:
        raise not_found("parking lot", lot_id)
    if "name" in values:
        _check_name_free(session, values["name"], lot_id)
    if "number_of_spots" in values:
        _resize(session, lot, values["number_of_spots"])
    for field, value in values.items():
        setattr(lot, field, value)
    invalidate(*lot_keys(lot_id))
    return jsonify(_commit_with_detail(session, lot_id))


@bp.delete("/<id:lot_id>")
@admin_required
def delete_lot(lot_id: int) -> Response:
    session = get_session()
    lot = session.get(ParkingLot, lot_id)
    if lot is None:
        raise not_found("parking lot", lot_id)
    _lock_free_spots(session, ParkingSpot.lot_id == lot_id)
    occupied = session.scalar(
        select(func.count())
        .select_from(ParkingSpot)
        .where(ParkingSpot.lot_id == lot_id, ParkingSpot.status == SPOT_OCCUPIED)
    )
    if occupied:
        raise conflict("parking lot has occupied spots", {"occupied": occupied})
    session.delete(lot)
    invalidate(*lot_keys(lot_id))
    session.commit()
    return jsonify({"deleted": lot_id})
