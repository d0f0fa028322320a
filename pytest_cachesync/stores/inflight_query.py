"""A query handed to PostgreSQL without waiting for its outcome, through psycopg's libpq layer.

psycopg's ``Connection.execute`` waits for the server. Its libpq wrapper (``psycopg.pq``)
sends a query and returns, so the server can work while the caller does something else; the
outcome is read later. The connection must not be used for anything else in between.
"""

from __future__ import annotations

import select
from typing import Any


class InFlightQuery:
    """One simple query (several statements allowed) sent on ``pgconn``, outcome not yet read."""

    def __init__(self, pgconn: Any) -> None:
        self._pgconn = pgconn

    @classmethod
    def send(cls, pgconn: Any, query: str) -> InFlightQuery:
        """Send ``query`` and return as soon as it has left for the server."""
        pgconn.send_query(query.encode())  # raises psycopg.OperationalError if it cannot
        # psycopg keeps its connections non-blocking: the query may sit in libpq's buffer.
        while pgconn.flush() != 0:
            select.select([], [pgconn.socket], [])
        return cls(pgconn)

    def wait(self) -> None:
        """Wait for the server to finish; raise ``psycopg.DatabaseError`` if a statement failed.

        Every result is read, failed or not, so the connection is idle again afterwards.
        """
        from psycopg import DatabaseError
        from psycopg.pq import ExecStatus

        pgconn = self._pgconn
        errors: list[str] = []
        while True:
            while pgconn.is_busy():
                # select() releases the GIL: the test's other threads run while this waits.
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            if result.status == ExecStatus.FATAL_ERROR:
                errors.append(bytes(result.error_message).decode(errors="replace").strip())
        if errors:
            raise DatabaseError("; ".join(errors))
