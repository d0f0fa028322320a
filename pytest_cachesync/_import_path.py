"""Import paths given in options: ``package.module:attribute.path``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import sqlalchemy as sa


def _split(path: str, option: str) -> tuple[str, list[str]]:
    module, sep, attrs = path.partition(":")
    if not sep or not module or not attrs:
        raise pytest.UsageError(
            f"cachesync: {option} entry {path!r} must look like 'package.module:attribute'."
        )
    return module, attrs.split(".")


def resolve_owner(path: str, option: str) -> tuple[object, str]:
    """The object holding the attribute named by ``path`` and the attribute's name."""
    module_name, attrs = _split(path, option)
    try:
        owner: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"cachesync: {option} {path!r}: cannot import: {exc}.") from None
    for name in attrs[:-1]:
        try:
            owner = getattr(owner, name)
        except AttributeError:
            raise pytest.UsageError(f"cachesync: {option} {path!r}: {name!r} not found.") from None
    if not hasattr(owner, attrs[-1]):
        raise pytest.UsageError(f"cachesync: {option} {path!r}: {attrs[-1]!r} not found.")
    return owner, attrs[-1]


def load_metadata(path: str) -> sa.MetaData:
    """A MetaData from a path to one, or to anything with a ``metadata`` attribute."""
    import sqlalchemy as sa

    owner, name = resolve_owner(path, "cachesync_metadata")
    found = getattr(owner, name)
    metadata = found if isinstance(found, sa.MetaData) else getattr(found, "metadata", None)
    if not isinstance(metadata, sa.MetaData):
        raise pytest.UsageError(
            f"cachesync: cachesync_metadata {path!r} is a {type(found).__name__}, not a "
            "MetaData or a declarative base / Flask-SQLAlchemy db with a .metadata."
        )
    return metadata
