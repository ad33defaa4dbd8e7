from django.db import migrations


def first_answers_created(apps, schema_editor):
    """Answers kept before their status was: a start's and an event's were 201."""
    ChargingRequest = apps.get_model("charging", "ChargingRequest")
    ChargingRequest.objects.filter(kind__in=["initial", "event"]).update(status_code=201)


class Migration(migrations.Migration):
    dependencies = [
        ("charging", "0018_network_credentials"),
    ]

    operations = [
        migrations.RunPython(first_answers_created, migrations.RunPython.noop),
    ]
