"""The online quota store: sessions granted out of slices held in Redis.

One committed PostgreSQL transaction per grant makes every shared counter on a line's path
(the company pool, the root's limit) a hot row that sessions queue on. Real charging systems
hand quota down in slices instead, and so does this store:

- ``slices``: a bucket's or limit's units are handed to Redis in slices, each recorded in the
  database as part of the row's ``reserved`` (its ``in_store``), so the database never
  promises a unit twice and every other path (offline batches, single events, sessions
  charged in money) keeps charging the database directly.
- ``sessions``: a session's grant, update and terminate are one Lua script each, which checks
  the request against the session (repeat, order, units) and takes the grant out of every
  limit on the path and the allowances, all or nothing. A session that needs money, a limit
  with a policy other than block, or BYOD steering is charged in the database instead.
- ``log``: each settlement is appended to a Redis stream in the same script; ``log_apply``
  (beat, every second) writes it to the database in batches (counters, ledger, ended
  sessions), exactly once, so the ledger stays the record. Answers stay in the store for
  repeats.
- ``profiles``: what a line's sessions draw on (its path's limits, its allowances in draw
  order), read once from the database and kept in Redis until something it is made of changes.

It is switched on by ``CHARGING_QUOTA_STORE`` (needs ``REDIS_URL``). Redis must keep its data
(append-only file) for the log to be durable between two applies.
"""

from portal.db.profile_epoch import quota_store_enabled

__all__ = ["quota_store_enabled"]
