"""``field__any=[...]``: the same rows as ``field__in``, for the long lists of a batch.

Django prepares every element of an ``__in`` list on its own and sends one placeholder each;
for the thousand ids of a charging batch that costs more than the query. PostgreSQL takes the
whole list as one array parameter (``= ANY(%s)``); other databases get a plain ``IN``.
"""

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False  # the list goes to the driver as it is

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations keep lookups of their own: ``line_id__any=[...]``
