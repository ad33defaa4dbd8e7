"""The counter tables keep half of each page free, so that an update of a counter can write
the row's new version on the same page without touching its indexes (a "HOT" update).

Limits, allowances and money balances are rewritten by every charge; full pages sent each new
version to another page and through every index of the table. Measured on the offline batch
path: the update of a batch's limits cost about half as much on the server with room left.
PostgreSQL only (a storage parameter; other databases have no such thing). Pages written
before this keep their layout until the table is rewritten (``VACUUM FULL``).
"""

from django.db import migrations

from portal.db.storage import fillfactor_set

COUNTER_MODELS = ["NodeLimit", "Bucket", "MoneyBalance"]
FILLFACTOR = 50


def _counters(apps):
    return [apps.get_model("charging", name) for name in COUNTER_MODELS]


def leave_room(apps, schema_editor):
    fillfactor_set(schema_editor, _counters(apps), FILLFACTOR)


def fill_up(apps, schema_editor):
    fillfactor_set(schema_editor, _counters(apps), None)


class Migration(migrations.Migration):
    dependencies = [("charging", "0008_usage_event_ledger_reference")]

    operations = [migrations.RunPython(leave_room, fill_up)]
