"""Reservations: book the first free spot of a lot, release it with its cost, list mine."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import select

from sample_app import booking
from sample_app.db import get_session
from sample_app.errors import ApiError, not_found
from sample_app.models import ParkingSpot, Reservation
from sample_app.routing import MAX_ID
from sample_app.security import authenticate, login_required
from sample_app.serializers import reservation_to_dict
from sample_app.validation import json_body

bp = Blueprint("reservations", __name__, url_prefix="/reservations")


def _to_dict(reservation: Reservation) -> dict[str, object]:
    spot = get_session().get(ParkingSpot, reservation.spot_id)
    if spot is None:
        # Deleted with its lot by another request since this one read the reservation.
        raise not_found("reservation", reservation.id)
    return reservation_to_dict(reservation, spot)


def _own_reservation(reservation_id: int) -> Reservation:
    me = authenticate()
    reservation = get_session().get(Reservation, reservation_id)
    if reservation is None:
        raise not_found("reservation", reservation_id)
    if reservation.user_id != me.id and not me.is_admin:
        raise ApiError(403, "not your reservation")
    return reservation


@bp.post("")
@login_required
def book() -> tuple[Response, int]:
    body = json_body(required=("lot_id",))
    lot_id = body.integer("lot_id", minimum=1, maximum=MAX_ID)
    session = get_session()
    reservation = booking.book_first_free_spot(session, authenticate(), lot_id)
    # Serialised inside the transaction: once it commits, the spot is anyone's to change.
    booked = _to_dict(reservation)
    session.commit()
    booking.count_today("reservations")
    return jsonify(booked), 201


@bp.get("")
@login_required
def list_mine() -> Response:
    session = get_session()
    # One query: a spot looked up per reservation could be deleted between two statements.
    mine = session.execute(
        select(Reservation, ParkingSpot)
        .join(ParkingSpot, Reservation.spot_id == ParkingSpot.id)
        .where(Reservation.user_id == authenticate().id)
        .order_by(Reservation.start_at.desc(), Reservation.id.desc())
    )
    return jsonify([reservation_to_dict(reservation, spot) for reservation, spot in mine])


@bp.get("/<id:reservation_id>")
@login_required
def get_reservation(reservation_id: int) -> Response:
    return jsonify(_to_dict(_own_reservation(reservation_id)))


@bp.delete("/<id:reservation_id>")
@bp.post("/<id:reservation_id>/release")
@login_required
def release(reservation_id: int) -> Response:
    reservation = _own_reservation(reservation_id)
    session = get_session()
    booking.release(session, reservation)
    # Serialised inside the transaction: once it commits, the freed spot (and with it this
    # reservation) may be deleted by a lot resize before the response is built.
    released = _to_dict(reservation)
    session.commit()
    return jsonify(released)
