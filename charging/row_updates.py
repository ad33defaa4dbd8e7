"""Writing many rows in one statement.

Django's ``bulk_update`` builds a ``CASE`` per column that PostgreSQL evaluates for every row;
joining a ``VALUES`` list is far cheaper when a batch moves thousands of counters. Likewise
``bulk_create`` prepares every value of every row through its field in Python, which costs
more than the insert itself for a batch of thousands of usage records or ledger entries.
SQLite (the embedded default) takes Django's plain bulk operations.
"""

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.utils import timezone


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
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [model._meta.get_field(name) for name in fields]
    names = [connection.ops.quote_name(column.column) for column in columns]
    types = [column.db_type(connection) for column in columns]
    pk_type = model._meta.pk.db_type(connection).replace("serial", "integer")
    # One array per column, unnested side by side: the statement's size does not grow with the rows.
    arrays = ", ".join([f"%s::{pk_type}[]"] + [f"%s::{t}[]" for t in types])
    assignments = ", ".join(f"{name} = v.{name}" for name in names)
    # Only quoted identifiers from the model's metadata are formatted in; values are parameters.
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v(id, {', '.join(names)})"  # noqa: S608
        f" WHERE {table}.id = v.id"
    )
    params = [[row.pk for row in rows]]
    for column in columns:
        if isinstance(column, _AS_THEY_ARE):
            params.append([getattr(row, column.attname) for row in rows])
        else:
            params.append([column.get_db_prep_save(getattr(row, column.attname), connection) for row in rows])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
            column = [json.dumps(value, cls=field.encoder) for value in column]
        params.append(column)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


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
        return json.dumps(value, cls=field.encoder)
    return value
