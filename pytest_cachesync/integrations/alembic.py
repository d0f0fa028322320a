"""Alembic: test databases built by the app's migrations instead of ``create_all``.

With ``cachesync_alembic_config = alembic.ini`` each session and worker upgrades its test
database to ``head`` once. On PostgreSQL the migrations run once, into a template database
``test_X_template``, and every worker's database is a copy of it (``CREATE DATABASE ...
TEMPLATE``): a server-side file copy instead of replaying every migration per worker. The
template is kept between sessions and rebuilt when the migration scripts change (their
fingerprint is the template's comment). Workers take an advisory lock around build and
copy, so one builds while the others wait, then copy what it built.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pytest_cachesync.stores.guard import foreign_database_refusal, mask_db_url
from pytest_cachesync.stores.sql import MARKER_TABLE, ServerDatabase, TestDatabase, has_marker

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"
FINGERPRINT_PREFIX = "pytest-cachesync alembic "


def load_config(path: Path) -> Config:
    try:
        from alembic.config import Config
    except ImportError:
        raise pytest.UsageError(
            "cachesync: cachesync_alembic_config is set but alembic is not installed "
            "(pip install 'pytest-cachesync[alembic]')."
        ) from None
    if not path.is_file():
        raise pytest.UsageError(f"cachesync: cachesync_alembic_config: no file {path}.")
    return Config(str(path))


@contextmanager
def _logging_kept() -> Iterator[None]:
    # A generated env.py calls logging.config.fileConfig, which disables every logger that
    # exists (pytest's capture, the app's) and replaces the root handlers; put them back.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = logging.Logger.manager.loggerDict
    disabled = {name: lg.disabled for name, lg in loggers.items() if isinstance(lg, logging.Logger)}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in disabled.items():
            found = loggers.get(name)
            if isinstance(found, logging.Logger):
                found.disabled = was


def upgrade(config_path: Path, url: sa.URL) -> None:
    """``alembic upgrade head`` on ``url``: the URL is the ini's ``sqlalchemy.url`` and, for an
    env.py that looks there first, ``config.attributes["connection"]``."""
    from alembic import command

    config = load_config(config_path)
    # ConfigParser interpolation: a % in a password must be doubled.
    rendered = url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection, _logging_kept():
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def fingerprint(config_path: Path) -> str:
    """A digest of every migration script: a template built from other scripts is stale.

    The files are hashed, not imported: importing every revision module (what listing the
    heads takes) costs more than copying the template.
    """
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(load_config(config_path))
    digest = hashlib.sha256()
    for location in script.version_locations or [script.versions]:
        root = Path(location)
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes())
    return f"{FINGERPRINT_PREFIX}{digest.hexdigest()[:24]}"


def schema_of(engine: sa.Engine) -> sa.MetaData:
    """The tables the migrations made, for the truncation machinery (their version table and
    the plugin's marker are no test data)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    for name in (VERSION_TABLE, MARKER_TABLE):
        if name in metadata.tables:
            metadata.remove(metadata.tables[name])
    return metadata


def _template_comment(admin: sa.Connection, name: str) -> str | None:
    found = admin.execute(
        sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
        {"n": name},
    ).first()
    if found is None:
        return None
    return str(found[0] or "")


def _build_template(template: ServerDatabase, config_path: Path, stamp: str) -> None:
    template.create(reuse=False)
    upgrade(config_path, template.url)
    engine = template.admin_engine()
    try:
        with engine.connect() as admin:
            quoted = stamp.replace("'", "''")
            admin.exec_driver_sql(f"COMMENT ON DATABASE \"{template.name}\" IS '{quoted}'")
    finally:
        engine.dispose()


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"cachesync:{name}".encode()).digest()[:8], "big") >> 1


def prepare_from_template(
    database: ServerDatabase, template: ServerDatabase, config_path: Path, *, reuse: bool
) -> bool:
    """Create ``database`` as a copy of ``template``, building the template first if it is
    missing or stale. True if an existing ``database`` was reused (and upgraded)."""
    if reuse and database.exists():
        database.refuse_foreign()
        upgrade(config_path, database.url)
        return True
    stamp = fingerprint(config_path)
    engine = template.admin_engine()
    lock = {"id": _lock_id(template.name)}
    try:
        with engine.connect() as admin:
            # Held while the template is checked and built: the other workers wait, then
            # find it built. Copies run concurrently (they only share-lock the template).
            admin.execute(sa.text("SELECT pg_advisory_lock(:id)"), lock)
            try:
                _ensure_template(admin, template, config_path, stamp)
            finally:
                admin.execute(sa.text("SELECT pg_advisory_unlock(:id)"), lock)
    finally:
        engine.dispose()
    database.create(reuse=False, template=template.name)
    return False


def _ensure_template(
    admin: sa.Connection, template: ServerDatabase, config_path: Path, stamp: str
) -> None:
    comment = _template_comment(admin, template.name)
    if comment == stamp:
        return
    # Only a template of another kind is checked for the marker by connecting to it:
    # PostgreSQL makes CREATE DATABASE ... TEMPLATE wait (up to 5 s) for the server process of
    # a just-closed connection to the template to exit.
    ours = comment is not None and comment.startswith(FINGERPRINT_PREFIX)
    if comment is not None and not ours and not has_marker(template.url):
        raise foreign_database_refusal(
            template.name, mask_db_url(template.url), f'DROP DATABASE "{template.name}"'
        )
    _build_template(template, config_path, stamp)


def prepare(
    database: TestDatabase, config_path: Path, *, reuse: bool, template: ServerDatabase | None
) -> bool:
    """Bring ``database`` to ``head``; True if an existing one was reused."""
    if template is not None and isinstance(database, ServerDatabase):
        return prepare_from_template(database, template, config_path, reuse=reuse)
    reused = database.create(reuse=reuse)
    upgrade(config_path, database.url)
    return reused


def resolve_config_path(raw: str, source: str, config: pytest.Config) -> Path:
    """An ini value is relative to the ini file, a command line or env value to the
    invocation directory."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    if source == "ini" and config.inipath is not None:
        return config.inipath.parent / path
    return Path(config.invocation_params.dir) / path
