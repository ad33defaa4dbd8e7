"""Writing many rows in one statement.

Django's ``bulk_update`` builds a ``CASE`` per column that PostgreSQL evaluates for every row;
joining a ``VALUES`` list is far cheaper when a batch moves thousands of counters. Likewise
``bulk_create`` prepares every value of every row through its field in Python, which costs
more than the insert itself for a batch of thousands of usage records or ledger entries.
Past a few hundred rows PostgreSQL's ``COPY`` is cheaper still: the rows travel as plain
text, not as a statement the server parses. SQLite (the embedded default) takes Django's
plain bulk operations.
"""

import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any

import orjson
from django.db import connection, models
from django.utils import timezone

from portal.db.lookups import array_literal


def rows_update(model: type[models.Model], rows: Sequence[Any], fields: list[str]) -> None:
    """Sets ``fields`` of every row in ``rows`` to the rows' in-memory values (``rows``: model
    instances, or any objects with a ``pk`` and those attributes)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        if not isinstance(rows[0], models.Model):  # plain rows: instances just for the update
            rows = [model(pk=row.pk, **{name: getattr(row, name) for name in fields}) for row in rows]
        model.objects.bulk_update(rows, fields, batch_size=500)
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [model._meta.get_field(name) for name in fields]
    names = [quote(column.column) for column in columns]
    types = [column.db_type(connection) for column in columns]
    pk_type = model._meta.pk.db_type(connection).replace("serial", "integer")
    values = [[row.pk for row in rows]]
    for column in columns:
        if isinstance(column, _AS_THEY_ARE):
            values.append([getattr(row, column.attname) for row in rows])
        else:
            values.append([column.get_db_prep_save(getattr(row, column.attname), connection) for row in rows])
    assignments = ", ".join(f"{name} = v.{name}" for name in names)
    # Only quoted identifiers and types from the model's metadata are formatted into statements;
    # values are parameters or copied data.
    literals = [array_literal(column_values) for column_values in values]
    with connection.cursor() as cursor:
        if all(literals):
            # Whole numbers and strings (counters, mostly): one array literal per column is
            # cheaper than a staging table however many rows (see ``portal.db.lookups``).
            arrays = ", ".join(f"%s::{array_type}" for _, array_type in literals)
            source, params = f"unnest({arrays})", [text for text, _ in literals]
        elif len(rows) >= COPY_FROM:
            definition = ", ".join(f"{name} {t}" for name, t in zip(["id", *names], [pk_type, *types], strict=True))
            # Named by what it holds: one per table and set of columns (names have a length limit).
            signature = hashlib.sha256(f"{table} {definition}".encode()).hexdigest()[:16]
            staging = quote(f"rows_update_{signature}")
            # A staging table per connection, emptied at commit (and here, for a second update
            # of the same transaction).
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} ({definition}) ON COMMIT DELETE ROWS")
            cursor.execute(f"DELETE FROM {staging}")  # noqa: S608
            _copy(cursor, f"COPY {staging} FROM STDIN", zip(*values, strict=True))
            source, params = staging, []
        else:
            # One array per column, unnested side by side: the statement's size does not grow with the rows.
            arrays = ", ".join(f"%s::{t}[]" for t in [pk_type, *types])
            source, params = f"unnest({arrays})", values
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM {source} AS v(id, {', '.join(names)})"  # noqa: S608
            f" WHERE {table}.id = v.id",
            params,
        )


# From this many rows on, rows travel by ``COPY``: below it, filling a staging table costs more
# than one statement with arrays (and an online charge writes a handful of rows).
COPY_FROM = 200


def _copy(cursor, sql: str, rows: Iterable[Sequence[Any]], constants: Sequence[Any] = ()) -> None:
    """Sends rows in ``COPY``'s text format (tab-separated, ``\\N`` for null), each followed by
    the same ``constants`` (written out once). The driver's copy bypasses Django's cursor, so
    its errors are translated here (a unique violation is an ``IntegrityError`` like any other)."""
    columns = [_column_text(values) for values in zip(*rows, strict=True)]
    if not columns:
        return  # no rows
    if constants:  # written out once, and joined to every row as one more column
        columns.append(repeat("\t".join(map(_copy_value, constants))))
    # Not strict: the constants' column repeats for as many rows as there are.
    text = io.StringIO("\n".join(map("\t".join, zip(*columns, strict=False))) + "\n")
    with connection.wrap_database_errors:
        cursor.copy_expert(sql, text)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPES = re.compile(r"[\\\t\n\r]")  # rare: translating every string costs more than looking


def _copy_escaped(text: str) -> str:
    return text.translate(_ESCAPES) if _NEEDS_ESCAPES.search(text) else text


def _column_text(values: Sequence[Any]) -> Iterable[str]:
    """A column's values as ``COPY`` text. A column nearly always holds values of one type:
    then they are converted in one pass, at the speed of the conversion itself."""
    kinds = set(map(type, values))
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is not None and issubclass(kind, str):
        if kind is not str:  # choices members: their values
            values = list(map(str.__str__, values))
        return map(_copy_escaped, values) if any(map(_NEEDS_ESCAPES.search, values)) else values
    if kind in (int, Decimal):
        return map(str, values)
    if kind is datetime:
        return map(datetime.isoformat, values)
    return map(_copy_value, values)  # mixed (nulls among them), or of another type


_ARRAY_NEEDS_ESCAPES = re.compile(r'[\\"]')


def _array_text(values: Sequence[Any]) -> str:
    """PostgreSQL's text form of an array of these values. The driver would send a list as
    ``ARRAY[...]`` of one constant per value, which the server parses and casts one by one:
    for a batch of thousands of rows that cost several times the insert itself. A column of
    one plain type (nearly always) is converted in one pass."""
    kinds = set(map(type, values))
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is int:
        return "{" + ",".join(map(str, values)) + "}"
    if kind is datetime:
        return '{"' + '","'.join(map(datetime.isoformat, values)) + '"}'
    if kind is str and not any(map(_ARRAY_NEEDS_ESCAPES.search, values)):
        return '{"' + '","'.join(values) + '"}'
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    return '"' + _as_text(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_text(value: Any) -> str:
    """A value as PostgreSQL reads it from text (``COPY`` and arrays escape it further)."""
    if isinstance(value, str):
        return str.__str__(value)  # a choices member too: its value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    raise TypeError(f"no text for a {type(value).__name__}: {value!r}")


def _copy_value(value: Any) -> str:
    """A value as ``COPY`` reads it (``\\N``: null)."""
    return "\\N" if value is None else _copy_escaped(_as_text(value))


# Fields whose Python values PostgreSQL's driver takes as they are (no preparation in between).
_AS_THEY_ARE = (models.IntegerField, models.DecimalField, models.DateTimeField, models.CharField, models.BooleanField)


def rows_insert(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]], *, skip_conflicts: bool = False
) -> list[int]:
    """Inserts one row per tuple of values (in the order of ``fields``, by attribute name:
    ``line_id``, not ``line``) and returns their primary keys in the same order. With
    ``skip_conflicts`` a row that would break a unique constraint is left out (and so is its key).

    The values are plain Python values (ints, strings, Decimals, aware datetimes, JSON-able
    objects for JSON fields): they are passed to the driver as they are, not prepared field by
    field. Fields not named take their model default, worked out once for the whole batch.
    """
    if not rows:
        return []
    meta = model._meta
    named = [meta.get_field(name) for name in fields]
    given = {field.attname for field in named}
    now = timezone.now()
    defaults = {}
    for field in meta.concrete_fields:
        if field.primary_key or field.attname in given:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            defaults[field.attname] = now
        else:  # what a new instance would get: its default, else empty or null
            defaults[field.attname] = now if field.default is timezone.now else field.get_default()
    if connection.vendor != "postgresql":
        attnames = [field.attname for field in named]
        objects = [model(**defaults, **dict(zip(attnames, row, strict=True))) for row in rows]
        model.objects.bulk_create(objects, batch_size=500, ignore_conflicts=skip_conflicts)
        return [obj.pk for obj in objects if obj.pk is not None]

    if len(rows) >= COPY_FROM and not skip_conflicts:
        return _insert_by_copy(model, named, defaults, rows)

    # One array per named column, unnested side by side in the given order; the defaults are
    # constants of the statement. Its size does not grow with the rows, and the driver adapts
    # each list at once.
    quote = connection.ops.quote_name
    default_fields = [meta.get_field(name) for name in defaults]
    names = [f"c{i}" for i in range(len(named))]
    arrays = ", ".join(f"%s::{_array_type(field)}" for field in named)
    constants = [f"%s::{field.db_type(connection)}" for field in default_fields]
    columns = ", ".join(quote(field.column) for field in [*named, *default_fields])
    # Only quoted identifiers and types from the model's metadata are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
        f" SELECT {', '.join([*_selected(named, names), *constants])}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS v({', '.join(names)}, position)"
        f" ORDER BY v.position{' ON CONFLICT DO NOTHING' if skip_conflicts else ''} RETURNING {quote(meta.pk.column)}"
    )
    # The constants come first in the statement, then the arrays.
    params: list[Any] = [
        _db_value(field, value) for field, value in zip(default_fields, defaults.values(), strict=True)
    ]
    for i, field in enumerate(named):
        column = [row[i] for row in rows]
        if isinstance(field, models.JSONField):
            column = [_db_value(field, value) for value in column]
        params.append(_array_text(column))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def _insert_by_copy(
    model: type[models.Model], named: list[models.Field], defaults: dict[str, Any], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """Takes the rows' keys from the table's sequence (ascending, in the rows' order), then copies
    the rows with them; the defaults are repeated in every row."""
    meta = model._meta
    quote = connection.ops.quote_name
    default_fields = [meta.get_field(name) for name in defaults]
    constants = tuple(_db_value(field, value) for field, value in zip(default_fields, defaults.values(), strict=True))
    json_columns = [i for i, field in enumerate(named) if isinstance(field, models.JSONField)]
    columns = ", ".join(quote(field.column) for field in [meta.pk, *named, *default_fields])
    with connection.cursor() as cursor:
        # The sequence is looked up once (a sub-select), not once per key: the look-up costs
        # ten times what taking a key does.
        cursor.execute(
            "SELECT nextval((SELECT pg_get_serial_sequence(%s, %s)::regclass)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        pks = sorted(pk for (pk,) in cursor.fetchall())
        lines = []
        for pk, row in zip(pks, rows, strict=True):
            if json_columns:
                row = list(row)
                for i in json_columns:
                    row[i] = _db_value(named[i], row[i])
            lines.append((pk, *row))
        _copy(cursor, f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN", lines, constants)
    return pks


def _selected(fields: list[models.Field], names: list[str]) -> list[str]:
    """The unnested columns, JSON read back from its text."""
    return [
        f"v.{name}::jsonb" if isinstance(f, models.JSONField) else f"v.{name}"
        for f, name in zip(fields, names, strict=True)
    ]


def _array_type(field: models.Field) -> str:
    return ("text" if isinstance(field, models.JSONField) else field.db_type(connection)) + "[]"


def _db_value(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.JSONField):
        if value is None and field.null:
            return None  # SQL null, as Django saves it (not JSON's null)
        return _json_text(value, encoder=field.encoder)
    return value


def _json_text(value: Any, *, encoder: type[json.JSONEncoder] | None) -> str:
    if encoder is None:
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:
            pass  # beyond what it writes (a whole number past 64 bits, a key not a string): as Django would
    return json.dumps(value, cls=encoder)
