"""Tuning Python's cyclic garbage collector for a server or worker, once it has started.

A server or worker keeps its modules, models, URL patterns and settings for its whole life.
The collector still walks all of them on every full collection, and a batch of thousands of
usage records allocates enough to trigger many: measured, that walk cost about a tenth of the
CPU of charging a record. ``gc.freeze`` moves everything alive now to a generation the
collector never walks; objects created afterwards are collected as usual.

A batch also allocates tens of thousands of containers that live until it ends (or are freed
by reference counting, which needs no collector). A young collection every 700 allocations,
the default, walks them again and again; one every ``YOUNG_COLLECTION_EVERY`` does not.
Measured on the offline batch path: the collector's time went from about 4.8 to under 0.1 µs
per record. Reference cycles are still collected, a little later.
"""

import gc

YOUNG_COLLECTION_EVERY = 50_000


def startup_heap_tune() -> None:
    """Call once the process has loaded what it keeps for life, before serving work."""
    gc.collect()  # what is garbage already is freed, not kept for life
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
