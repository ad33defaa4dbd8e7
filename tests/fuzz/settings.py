"""The fuzz run's settings: the project's, with the database connection closed after each
request. Under uvicorn, connections kept open (CONN_MAX_AGE) pile up, one per worker thread,
until PostgreSQL refuses more clients; the fuzz run is about answers, not that."""

from portal.settings import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
