"""The ledger keeps what an allowance is (unit, holder, validity, priority): on its grant, and
on an entry of its own whenever an agent changes it. Existing grants get their bucket's terms
as they are now, the baseline the ledger check proves from here on."""

from datetime import UTC

from django.db import migrations, models

BATCH = 1000


def _instant(at):
    return None if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")


def grants_carry_terms(apps, schema_editor):
    Bucket = apps.get_model("charging", "Bucket")
    LedgerEntry = apps.get_model("charging", "LedgerEntry")
    first_grant = {}
    grants = LedgerEntry.objects.filter(kind="grant", bucket__isnull=False).order_by("-pk").values_list("bucket", "pk")
    for bucket_id, entry_id in grants.iterator(chunk_size=BATCH):
        first_grant[bucket_id] = entry_id  # by descending key: the first grant is seen last
    changed = []
    for bucket in Bucket.objects.order_by("pk").iterator(chunk_size=BATCH):
        entry_id = first_grant.get(bucket.pk)
        if entry_id is None:
            continue  # the ledger check reports it
        terms = {
            "unit": bucket.unit,
            "line": bucket.line_id,
            "cost_centre": bucket.cost_centre_id,
            "valid_from": _instant(bucket.valid_from),
            "valid_until": _instant(bucket.valid_until),
            "priority": bucket.priority,
        }
        changed.append(LedgerEntry(pk=entry_id, terms=terms))
        if len(changed) >= BATCH:
            LedgerEntry.objects.bulk_update(changed, ["terms"])
            changed = []
    LedgerEntry.objects.bulk_update(changed, ["terms"])


class Migration(migrations.Migration):

    dependencies = [
        ('charging', '0013_usage_line_not_locked_per_record'),
    ]

    operations = [
        migrations.AddField(
            model_name='ledgerentry',
            name='terms',
            field=models.JSONField(blank=True, help_text="An allowance's grant and every later change of what it is: its unit, holder, validity and priority from this entry on (``charging.ledger.bucket_terms``).", null=True),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='kind',
            field=models.CharField(choices=[('grant', 'Allowance granted'), ('usage', 'Usage charge'), ('topup', 'Top-up'), ('payment', 'Payment'), ('adjustment', 'Adjustment'), ('refund', 'Refund'), ('recurring', 'Recurring charge'), ('one_off', 'One-off charge'), ('expiry', 'Expiry'), ('terms', 'Allowance terms changed')], max_length=16),
        ),
        migrations.RunPython(grants_carry_terms, migrations.RunPython.noop),
    ]
