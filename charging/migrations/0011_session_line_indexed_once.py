"""A session's line is indexed once, with the time it opened: the index of the line alone
was one more for every session the quota store's log records, and read by nothing."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("charging", "0010_usage_events_charged_in_place"),
        ("portal", "0002_engine"),
    ]

    operations = [
        migrations.AlterField(
            model_name="chargingsession",
            name="line",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="charging_sessions",
                to="portal.line",
            ),
        ),
    ]
