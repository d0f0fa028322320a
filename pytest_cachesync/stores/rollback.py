"""The rollback strategy: each test inside an outer transaction that is rolled back.

SQLAlchemy's "Joining a Session into an External Transaction" recipe: the test's Session (and
any Session the app opens on ``bind`` with ``join_transaction_mode="create_savepoint"``)
commits to a SAVEPOINT, so the app can commit and roll back freely while nothing reaches the
database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .engines import use_explicit_begin
from .savepoints import SavepointLedger

OUTER_TRANSACTION = "cachesync_outer_transaction"
"""Set in ``Connection.info`` while the connection holds a test's outer transaction: a released
SAVEPOINT directly inside it is the app's commit."""


class RollbackScope:
    """An open connection and outer transaction for one test."""

    def __init__(self, engine: sa.Engine) -> None:
        self.connection = engine.connect()
        use_explicit_begin(self.connection)
        self.connection.info[OUTER_TRANSACTION] = True
        self._transaction = self.connection.begin()
        self._session: Session | None = None
        self.ledger = SavepointLedger(self.connection).install()

    @property
    def session(self) -> Session:
        """The test's Session on the connection, made on first use (most tests never ask)."""
        if self._session is None:
            self._session = Session(bind=self.connection, join_transaction_mode="create_savepoint")
        return self._session

    def reset(self) -> None:
        """Discard everything written so far and start again, with the same Session."""
        self.ledger.ending = True
        if self._session is not None:
            self._session.close()
        if self._transaction.is_active:
            self._transaction.rollback()
        self.ledger.stack.clear()
        self.ledger.ending = False
        self._transaction = self.connection.begin()

    def close(self) -> None:
        """Roll the test back and return the connection; fail if the test lost a commit."""
        self.ledger.ending = True
        try:
            if self._session is not None:
                self._session.close()
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self.ledger.uninstall()
            use_explicit_begin(self.connection, enabled=False)
            # The info dict outlives the checkout: the next user of the pooled connection is not us.
            self.connection.info.pop(OUTER_TRANSACTION, None)
            self.connection.close()
        self.ledger.check()
