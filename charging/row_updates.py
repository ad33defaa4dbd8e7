"""Writing back many rows' columns in one statement.

Django's ``bulk_update`` builds a ``CASE`` per column that PostgreSQL evaluates for every row;
joining a ``VALUES`` list is far cheaper when a batch moves thousands of counters. SQLite
(the embedded default) takes the plain ``bulk_update``.
"""

from collections.abc import Sequence

from django.db import connection, models


def rows_update(model: type[models.Model], rows: Sequence[models.Model], fields: list[str]) -> None:
    """Sets ``fields`` of every row in ``rows`` to the rows' in-memory values."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields, batch_size=500)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [model._meta.get_field(name) for name in fields]
    names = [connection.ops.quote_name(column.column) for column in columns]
    types = [column.db_type(connection) for column in columns]
    pk_type = model._meta.pk.db_type(connection).replace("serial", "integer")
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        placeholders = ", ".join("(" + ", ".join([f"%s::{pk_type}"] + [f"%s::{t}" for t in types]) + ")" for _ in chunk)
        params = []
        for row in chunk:
            params.append(row.pk)
            params.extend(column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns)
        assignments = ", ".join(f"{name} = v.{name}" for name in names)
        # Only quoted identifiers from the model's metadata are formatted in; values are parameters.
        sql = (
            f"UPDATE {table} SET {assignments} FROM (VALUES {placeholders}) AS v(id, {', '.join(names)})"  # noqa: S608
            f" WHERE {table}.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def rows_insert(model: type[models.Model], fields: list[str], values: Sequence[tuple], *, skip_conflicts=False) -> None:
    """Inserts rows given as tuples of ``fields`` values (a foreign key by its id; plain
    values: str, int, Decimal, datetime, or a dict for JSON), a few
    thousand per statement, without building a model instance per row; with
    ``skip_conflicts``, a row that would break a unique constraint is left out."""
    if not values:
        return
    columns = [model._meta.get_field(name) for name in fields]
    if connection.vendor != "postgresql":
        names = [column.attname for column in columns]
        objects = [model(**dict(zip(names, row, strict=True))) for row in values]
        model.objects.bulk_create(objects, batch_size=500, ignore_conflicts=skip_conflicts)
        return
    from psycopg2.extras import Json, execute_values

    json_at = [i for i, column in enumerate(columns) if isinstance(column, models.JSONField)]
    rows = values
    if json_at:  # the only values psycopg2 cannot adapt as they are
        rows = [tuple(Json(v) if i in json_at else v for i, v in enumerate(row)) for row in values]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column.column) for column in columns)
    conflict = " ON CONFLICT DO NOTHING" if skip_conflicts else ""
    # Only quoted identifiers from the model's metadata are formatted in; values are parameters.
    sql = f"INSERT INTO {table} ({names}) VALUES %s{conflict}"  # noqa: S608
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, sql, rows, page_size=2000)
