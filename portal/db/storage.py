"""Storage parameters of tables, set by migrations where the database has them (PostgreSQL)."""


def fillfactor_set(schema_editor, models, fillfactor: int | None) -> None:
    """Fills the tables' pages only up to ``fillfactor`` percent (``None``: the default, full),
    so that a row rewritten later finds room for its new version on its own page."""
    if schema_editor.connection.vendor != "postgresql":
        return
    change = f"SET (fillfactor = {int(fillfactor)})" if fillfactor is not None else "RESET (fillfactor)"
    for model in models:
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(model._meta.db_table)} {change}")
