"""``field__any=[...]``: the same rows as ``field__in``, for the long lists of a batch.

Django prepares every element of an ``__in`` list on its own and sends one placeholder each;
for the thousand ids of a charging batch that costs more than the query. PostgreSQL takes the
whole list as one array parameter (``= ANY(%s)``); other databases get a plain ``IN``.

Whole numbers and strings travel as one array literal (``'{1,2,3}'::bigint[]``): the driver
adapts a list element by element, which for a thousand ids takes milliseconds, several times
what building the literal does.
"""

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False  # the list goes to the driver as it is

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            literal = array_literal(values)
            if literal is None:
                return f"{lhs} = ANY(%s)", [*lhs_params, values]
            text, array_type = literal
            return f"{lhs} = ANY(%s::{array_type})", [*lhs_params, text]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


def array_literal(values: list) -> tuple[str, str] | None:
    """PostgreSQL's text form of an array of whole numbers or of strings, and its type;
    ``None`` for any other values, or none (they go to the driver as a list)."""
    if not values:
        return None
    kinds = set(map(type, values))
    if kinds == {int}:
        # The list's own text, brackets for braces: the elements as ``str`` writes them, with
        # a space after each comma (which PostgreSQL allows), at a fraction of a join's cost.
        return "{" + repr(values)[1:-1] + "}", "bigint[]"
    if kinds == {str}:
        # Every element quoted (so that NULL or a comma is a string like any other), with its
        # backslashes and quotes escaped.
        quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
        return "{" + ",".join(quoted) + "}", "text[]"
    return None


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations keep lookups of their own: ``line_id__any=[...]``
