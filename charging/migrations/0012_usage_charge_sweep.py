"""Where the sweep for usage records whose charging task was lost has got to."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('charging', '0011_session_line_indexed_once'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageChargeSweep',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=50, unique=True)),
                ('below_id', models.BigIntegerField(default=0)),
            ],
        ),
    ]
