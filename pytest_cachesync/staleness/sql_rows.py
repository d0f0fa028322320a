"""Which tables, and where the statement says so which rows, one SQL statement reads or writes.

Deliberately shallow: table names after FROM / JOIN / INTO / UPDATE, and rows only from a
WHERE clause made of ``column = value`` terms joined by AND (and from INSERT column lists).
Anything it cannot read for sure (OR, subqueries, IN lists, expressions) widens the answer to
"any row of the table", so a caller may miss that two row sets are disjoint but never claims it
wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

Rows = tuple[dict[str, str], ...] | None
"""Row constraints on one table: each dict is ``column -> value`` (one row set); None = any row."""

_IDENT = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_KIND = re.compile(r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE|REPLACE|MERGE|TRUNCATE|UPSERT)\b", re.I)
_FROM = re.compile(
    rf"\b(?:FROM|JOIN)\s+(?!\()({_QUALIFIED})(?:\s+(?:AS\s+)?(?!(?:WHERE|JOIN|ON|INNER|LEFT|RIGHT"
    rf"|FULL|CROSS|OUTER|GROUP|ORDER|LIMIT|OFFSET|UNION|FOR|USING|NATURAL|HAVING|WINDOW|RETURNING)"
    rf"\b)({_IDENT}))?",
    re.I,
)
_TARGET = {
    "INSERT": re.compile(rf"^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+({_QUALIFIED})", re.I),
    "MERGE": re.compile(rf"^\s*MERGE\s+INTO\s+({_QUALIFIED})", re.I),
    "REPLACE": re.compile(rf"^\s*REPLACE\s+INTO\s+({_QUALIFIED})", re.I),
    "UPDATE": re.compile(
        rf"^\s*UPDATE\s+(?:ONLY\s+)?({_QUALIFIED})(?:\s+(?:AS\s+)?({_IDENT}))?", re.I
    ),
    "DELETE": re.compile(rf"^\s*DELETE\s+FROM\s+(?:ONLY\s+)?({_QUALIFIED})", re.I),
    "TRUNCATE": re.compile(rf"^\s*TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?({_QUALIFIED})", re.I),
}
_PLACEHOLDER = r"(\?|%s|%\{(\w+)\}s|:(\w+)|\$(\d+)|-?\d+(?:\.\d+)?|'(?:[^']|'')*'|true|false)"
# psycopg's dialect casts parameters: ``%(id)s::INTEGER``, ``%(at)s::TIMESTAMP WITHOUT TIME ZONE``.
_CAST = r"(?:\s*::\s*[A-Za-z_][\w ]*(?:\{\d+(?:,\s*\d+)?\})?)?"
_EQUALS = re.compile(rf"^\s*({_QUALIFIED})\s*=\s*{_PLACEHOLDER}{_CAST}\s*$", re.I)
_WHERE = re.compile(
    r"\bWHERE\b(.*?)(?:\bGROUP\s+BY\b|\bORDER\s+BY\b|\bLIMIT\b|\bOFFSET\b"
    r"|\bRETURNING\b|\bFOR\s+UPDATE\b|\bON\s+CONFLICT\b|$)",
    re.I | re.S,
)
_SET = re.compile(r"\bSET\b(.*?)\bWHERE\b", re.I | re.S)
_INSERT_COLUMNS = re.compile(
    r"\(([^()]*)\)\s*VALUES\s*\(([^()]*)\)\s*(?:RETURNING\b.*)?$", re.I | re.S
)
_POSITIONAL = re.compile(r"\?|%s|\$\d+")
_PYFORMAT = re.compile(r"%\((\w+)\)s")
_CAST_SIZE = re.compile(r"(::\s*[A-Za-z_][\w ]*)\((\d+(?:,\s*\d+)?)\)")


def _name(identifier: str) -> str:
    """The last part of a possibly qualified, possibly quoted identifier, lower-cased."""
    last = re.split(r"\s*\.\s*(?=[\"`\[A-Za-z_])", identifier.strip())[-1]
    return last.strip('"`[]').lower()


@dataclass(frozen=True, slots=True)
class Term:
    """``table.column = value`` where value is a bound parameter or a literal."""

    table: str | None  # None: unqualified
    column: str
    position: int | None  # index into positional parameters
    name: str | None  # key into named parameters
    literal: str | None


@dataclass(frozen=True, slots=True)
class Shape:
    """What a statement's text says, before its parameters are known."""

    kind: str  # "read", "write" or "other"
    verb: str
    tables: tuple[str, ...]
    where: tuple[Term, ...] | None  # None: rows not known from the text
    sets: tuple[Term, ...] | None  # UPDATE ... SET terms known (None: some are expressions)
    insert: tuple[Term, ...] | None  # INSERT (cols) VALUES (...) as terms


def _positions(statement: str, start: int) -> int:
    return len(_POSITIONAL.findall(statement, 0, start))


def _term(text: str, statement: str, offset: int, aliases: Mapping[str, str]) -> Term | None:
    match = _EQUALS.match(text)
    if match is None:
        return None
    parts = re.split(r"\s*\.\s*", match.group(1).strip())
    table = aliases.get(_name(parts[-2]), _name(parts[-2])) if len(parts) > 1 else None
    column = _name(parts[-1])
    value, named, colon, dollar = match.group(2), match.group(3), match.group(4), match.group(5)
    if named or colon:
        return Term(table, column, None, named or colon, None)
    if dollar:
        return Term(table, column, int(dollar) - 1, None, None)
    if value in ("?", "%s"):
        return Term(table, column, _positions(statement, offset + match.start(2)), None, None)
    literal = value[1:-1].replace("''", "'") if value.startswith("'") else value
    return Term(table, column, None, None, literal)


def _split_and(clause: str) -> list[tuple[str, int]] | None:
    """The AND-joined terms of a WHERE clause with their offsets, or None when it is not one."""
    if re.search(r"\bOR\b|\bSELECT\b|\(|\bNOT\b", clause, re.I):
        return None
    terms, offset = [], 0
    for piece in re.split(r"(\bAND\b)", clause, flags=re.I):
        if piece.upper() != "AND":
            terms.append((piece, offset))
        offset += len(piece)
    return terms


def _where_terms(
    statement: str, aliases: Mapping[str, str], start: int = 0
) -> tuple[Term, ...] | None:
    match = _WHERE.search(statement, start)
    if match is None:
        return ()
    pieces = _split_and(match.group(1))
    if pieces is None:
        return None
    terms = [_term(text, statement, match.start(1) + off, aliases) for text, off in pieces]
    return tuple(t for t in terms if t is not None)


def _set_terms(statement: str) -> tuple[Term, ...] | None:
    match = _SET.search(statement)
    if match is None:
        return None
    clause, terms = match.group(1), []
    offset = 0
    for piece in clause.split(","):
        term = _term(piece, statement, match.start(1) + offset, {})
        if term is None:
            return None
        terms.append(term)
        offset += len(piece) + 1
    return tuple(terms)


def _insert_terms(statement: str) -> tuple[Term, ...] | None:
    match = _INSERT_COLUMNS.search(statement)
    if match is None:
        return None
    columns = [_name(c) for c in match.group(1).split(",")]
    values = match.group(2).split(",")
    if len(columns) != len(values):
        return None
    terms: list[Term] = []
    offset = match.start(2)
    for column, value in zip(columns, values, strict=True):
        term = _term(f"{column} = {value.strip()}", statement, offset, {})
        if term is not None and term.position is not None:
            # Offsets of the synthetic text do not match the statement's: count here.
            term = Term(None, column, _positions(statement, offset), None, None)
        if term is not None:
            terms.append(term)
        offset += len(value) + 1
    return tuple(terms)


@lru_cache(maxsize=4096)
def shape_of(statement: str) -> Shape:
    """The parsed text of a statement (memoised: an app repeats the same few statements)."""
    kind_match = _KIND.match(statement)
    if kind_match is None:
        return Shape("other", "", (), None, None, None)
    verb = kind_match.group(1).upper()
    # Same length, so offsets stay valid, and no parenthesis inside a pyformat placeholder.
    statement = _CAST_SIZE.sub(r"\1{\2}", _PYFORMAT.sub(r"%{\1}s", statement))
    if verb in ("SELECT", "WITH"):
        aliases: dict[str, str] = {}
        tables: list[str] = []
        for match in _FROM.finditer(statement):
            table = _name(match.group(1))
            tables.append(table)
            if match.group(2):
                aliases[_name(match.group(2))] = table
        unique = tuple(dict.fromkeys(tables))
        where = _where_terms(statement, aliases) if verb == "SELECT" else None
        return Shape("read", verb, unique, where, None, None)
    pattern = _TARGET.get(verb)
    target = pattern.match(statement) if pattern else None
    if target is None:
        return Shape("write", verb, (), None, None, None)
    table = _name(target.group(1))
    aliases = {table: table}
    if verb == "UPDATE" and target.group(2):
        aliases[_name(target.group(2))] = table
    where = _where_terms(statement, aliases) if verb in ("UPDATE", "DELETE") else None
    sets = _set_terms(statement) if verb == "UPDATE" else None
    insert = _insert_terms(statement) if verb in ("INSERT", "REPLACE") else None
    return Shape("write", verb, (table,), where, sets, insert)


def _value(term: Term, parameters: object) -> str | None:
    if term.literal is not None:
        return _literal(term.literal)
    if term.name is not None and isinstance(parameters, Mapping):
        found = parameters.get(term.name, _ABSENT)
    elif (
        term.position is not None
        and isinstance(parameters, Sequence)
        and not isinstance(parameters, str)
    ):
        found = parameters[term.position] if term.position < len(parameters) else _ABSENT
    else:
        return None
    return _normal(found)


def _normal(value: object) -> str | None:
    """One spelling per value, so a row is never called disjoint over ``True`` vs ``1``."""
    if value is _ABSENT or value is None or isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
        if number.is_finite() and number == number.to_integral_value():
            return str(int(number))
        return str(number)
    return str(value)


def _literal(text: str) -> str | None:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return "1" if lowered == "true" else "0"
    try:
        return _normal(Decimal(text))
    except InvalidOperation:
        return text


_ABSENT = object()


def _row(terms: tuple[Term, ...], table: str, parameters: object, single: bool) -> dict[str, str]:
    row: dict[str, str] = {}
    for term in terms:
        if term.table is None and not single:
            continue  # unqualified column of a join: which table it belongs to is unknown
        if term.table not in (None, table):
            continue
        value = _value(term, parameters)
        if value is not None:
            row[term.column] = value
    return row


def _parameter_sets(parameters: object, executemany: bool) -> list[object]:
    if executemany and isinstance(parameters, Sequence) and not isinstance(parameters, str):
        return list(parameters)
    return [parameters]


def read_rows(shape: Shape, parameters: object) -> dict[str, Rows]:
    """The tables a read statement read, each with the rows it asked for (None: any)."""
    single = len(shape.tables) == 1
    rows: dict[str, Rows] = {}
    for table in shape.tables:
        if shape.where is None:
            rows[table] = None
            continue
        row = _row(shape.where, table, parameters, single)
        rows[table] = (row,) if row else None
    return rows


@dataclass(frozen=True, slots=True)
class Written:
    """What one write statement changed: rows pinned by its WHERE (or inserted), and where
    an UPDATE moved them to (only known columns: ``free=1`` says little about which rows)."""

    table: str
    pinned: Rows
    moved: tuple[dict[str, str], ...] = ()


def write_rows(shape: Shape, parameters: object, executemany: bool) -> Written | None:
    """The table a write changed and the rows it touched (``pinned`` None: any row)."""
    if not shape.tables:
        return None
    table = shape.tables[0]
    pinned: list[dict[str, str]] = []
    moved: list[dict[str, str]] = []
    for params in _parameter_sets(parameters, executemany):
        terms = shape.insert if shape.insert is not None else shape.where
        row = _row(terms, table, params, True) if terms is not None else {}
        if not row:
            return Written(table, None)
        pinned.append(row)
        if shape.verb != "UPDATE":
            continue
        if shape.sets is None:
            # Columns set to values the text does not give: the rows can move anywhere.
            return Written(table, None)
        after = {**row, **_row(shape.sets, table, params, True)}
        for term in shape.sets:
            if _value(term, params) is None:
                after.pop(term.column, None)
        if after != row:
            if not after:
                return Written(table, None)
            moved.append(after)
    return Written(table, tuple(pinned), tuple(moved))


def write_overlap(read: Rows, written: Written) -> str:
    """``overlap`` of a read with a write: rows moved by an UPDATE are never "clear"."""
    pinned = overlap(read, written.pinned)
    if pinned != "disjoint":
        return pinned
    if written.moved and overlap(read, written.moved) != "disjoint":
        return "possible"
    return "disjoint"


def overlap(read: Rows, written: Rows) -> str:
    """ "clear" (a written row is one the read asked for), "disjoint" or "possible"."""
    if read is None or written is None:
        return "possible"
    verdict = "disjoint"
    for wanted in read:
        for row in written:
            shared = wanted.keys() & row.keys()
            if not shared:
                verdict = "possible"
            elif all(wanted[c] == row[c] for c in shared):
                return "clear"
    return verdict


def describe_rows(rows: Rows) -> str:
    """``lot_id=3`` (or ``lot_id=3 | lot_id=4``); empty when any row."""
    if not rows:
        return ""
    return " | ".join(", ".join(f"{c}={v}" for c, v in sorted(row.items())) for row in rows)
