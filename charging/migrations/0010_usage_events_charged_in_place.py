"""A usage record is marked charged on its own page, without touching any index.

Its status was indexed (the records not yet charged), so every charge wrote the record's new
version into each index of the table. Now no column a charge writes is indexed, and the table
leaves half of each page free for the new versions, so marking a batch charged is a same-page
("HOT") update. Measured on the offline batch path: about a quarter less server time to charge.
The records turned away keep an index of their own, on what a charge never writes (their
reason). The storage parameter is PostgreSQL's only; rows written before keep their layout
until the table is rewritten.
"""

from django.db import migrations, models

from portal.db.storage import fillfactor_set

FILLFACTOR = 50


def leave_room(apps, schema_editor):
    fillfactor_set(schema_editor, [apps.get_model("charging", "UsageEvent")], FILLFACTOR)


def fill_up(apps, schema_editor):
    fillfactor_set(schema_editor, [apps.get_model("charging", "UsageEvent")], None)


class Migration(migrations.Migration):
    dependencies = [
        ("charging", "0009_counters_leave_room_for_updates"),
        ("portal", "0002_engine"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="usageevent", name="usage_event_open_status"),
        migrations.AddIndex(
            model_name="usageevent",
            index=models.Index(
                condition=models.Q(("reason", ""), _negated=True), fields=["-received_at"], name="usage_event_rejected"
            ),
        ),
        migrations.RunPython(leave_room, fill_up),
    ]
