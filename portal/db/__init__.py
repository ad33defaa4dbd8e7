"""Database helpers every app may use: the ``__any`` lookup and array literals, bulk row
writes through ``COPY``, storage parameters for migrations, and the shared Redis client."""
