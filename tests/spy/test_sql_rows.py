"""What the invalidation map reads off one SQL statement: tables, and rows where it says so."""

from __future__ import annotations

import pytest

from pytest_cachesync.staleness.sql_rows import (
    Written,
    overlap,
    read_rows,
    shape_of,
    write_overlap,
    write_rows,
)


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        (
            "SELECT spots.id FROM spots WHERE spots.lot_id = ? AND spots.free = 1",
            (3,),
            {"spots": ({"lot_id": "3", "free": "1"},)},
        ),
        (
            "SELECT count(*) FROM spots WHERE spots.lot_id = %(lot_id_1)s AND spots.free = true",
            {"lot_id_1": 3},
            {"spots": ({"lot_id": "3", "free": "1"},)},
        ),
        (
            'SELECT u.id FROM "public"."users" AS u JOIN reservations r ON r.user_id = u.id '
            "WHERE u.id = $1",
            (2,),
            {"users": ({"id": "2"},), "reservations": None},
        ),
        # An unqualified column of a join belongs to a table the text does not name.
        ("SELECT * FROM a JOIN b ON a.id = b.a_id WHERE id = ?", (1,), {"a": None, "b": None}),
        ("SELECT * FROM lots WHERE id = ? OR id = ?", (1, 2), {"lots": None}),
        ("SELECT * FROM lots WHERE id IN (?, ?)", (1, 2), {"lots": None}),
        ("SELECT * FROM lots WHERE id = (SELECT max(id) FROM lots)", (), {"lots": None}),
        ("SELECT * FROM lots WHERE lots.id = :id", {"id": 7}, {"lots": ({"id": "7"},)}),
        (
            "SELECT * FROM lots WHERE lots.id = %(id_1)s::INTEGER AND lots.at = "
            "%(at_1)s::TIMESTAMP WITHOUT TIME ZONE AND lots.code = %(c)s::VARCHAR(8)",
            {"id_1": 7, "at_1": "x", "c": "N"},
            {"lots": ({"id": "7", "at": "x", "code": "N"},)},
        ),
        ("SELECT * FROM lots WHERE lots.name = 'O''Hara'", (), {"lots": ({"name": "O'Hara"},)}),
    ],
)
def test_reads(sql: str, params: object, expected: dict[str, object]) -> None:
    assert read_rows(shape_of(sql), params) == expected


@pytest.mark.parametrize(
    ("sql", "params", "many", "expected"),
    [
        ("DELETE FROM users WHERE users.id = ?", (2,), False, Written("users", ({"id": "2"},))),
        ("DELETE FROM users", (), False, Written("users", None)),
        (
            "UPDATE spots SET member_id=?, free=? WHERE spots.member_id = ?",
            (None, True, 2),
            False,
            Written("spots", ({"member_id": "2"},), ({"free": "1"},)),
        ),
        ("UPDATE lots SET price=(lots.price + ?) WHERE lots.id = ?", (1, 3), False, None),
        (
            "INSERT INTO lots (id, name) VALUES (%(id)s, %(name)s)",
            [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            True,
            Written("lots", ({"id": "1", "name": "a"}, {"id": "2", "name": "b"})),
        ),
        (
            "INSERT INTO reservations (user_id, spot_id) VALUES (?, ?) RETURNING id",
            (2, 5),
            False,
            Written("reservations", ({"user_id": "2", "spot_id": "5"},)),
        ),
        ("INSERT INTO lots (id) SELECT id FROM old_lots", (), False, Written("lots", None)),
        (
            "INSERT INTO spots (id, free) VALUES (%(id)s::INTEGER, %(free)s)",
            {"id": 7, "free": False},
            False,
            Written("spots", ({"id": "7", "free": "0"},)),
        ),
        ("TRUNCATE TABLE lots", (), False, Written("lots", None)),
    ],
)
def test_writes(sql: str, params: object, many: bool, expected: Written | None) -> None:
    written = write_rows(shape_of(sql), params, many)
    if expected is None:  # rows after the update unknown: any row
        assert written == Written("lots", None)
    else:
        assert written == expected


def test_values_are_compared_in_one_spelling() -> None:
    assert overlap(({"free": "1", "id": "3"},), ({"free": "1", "id": "3"},)) == "clear"
    shape = shape_of("SELECT * FROM spots WHERE spots.free = true AND spots.price = 2.0")
    read = read_rows(shape, ())["spots"]
    assert read == ({"free": "1", "price": "2"},)
    written = write_rows(shape_of("DELETE FROM spots WHERE spots.free = ?"), (True,), False)
    assert written is not None
    assert write_overlap(read, written) == "clear"


def test_overlap_verdicts() -> None:
    assert overlap(({"id": "3"},), ({"id": "4"},)) == "disjoint"
    assert overlap(({"id": "3"},), ({"id": "3"},)) == "clear"
    assert overlap(({"lot_id": "3"},), ({"id": "7"},)) == "possible"
    assert overlap(None, ({"id": "3"},)) == "possible"
    assert overlap(({"id": "3"},), None) == "possible"


def test_rows_an_update_moves_into_a_read_are_possible_never_clear() -> None:
    read = ({"lot_id": "4", "free": "1"},)
    written = Written("spots", ({"member_id": "2"},), ({"free": "1"},))
    assert write_overlap(read, written) == "possible"
    moved_away = Written("spots", ({"id": "9", "free": "0"},), ({"id": "9", "free": "0"},))
    assert write_overlap(({"free": "1"},), moved_away) == "disjoint"


def test_statements_that_are_neither() -> None:
    assert shape_of("PRAGMA foreign_keys=ON").kind == "other"
    assert shape_of("SAVEPOINT sa_savepoint_1").kind == "other"
    merged = write_rows(shape_of("MERGE INTO t USING s ON t.id = s.id"), (), False)
    assert merged == Written("t", None)
