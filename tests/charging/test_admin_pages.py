"""The call-centre admin pages of the charging engine open, listing a row each."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from charging.models import ChargingSession, NodeLimit, Reservation, Tariff, TariffRate, ThresholdNotice
from enterprise.models import SteeringRule
from portal.models import Notification
from tests.charging.trees import company_tree, limit_on
from tests.factories import MB, UserFactory

pytestmark = pytest.mark.django_db

# (model, whether the call centre may add one here)
PAGES = [
    (NodeLimit, True),
    (ChargingSession, False),
    (ThresholdNotice, False),
    (Tariff, True),
    (SteeringRule, True),
    (Notification, False),
]


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def rows():
    """One row of each model, so the lists and change pages render real data."""
    tree = company_tree(lines=1)
    limit = limit_on(tree.team, 10 * MB)
    session = ChargingSession.objects.create(session_id="sess-1", line=tree.lines[0], service="data")
    Reservation.objects.create(session=session, units=MB, expires_at=timezone.now() + timedelta(minutes=5))
    ThresholdNotice.objects.create(limit=limit, percent=50, period_start=limit.period_start, used=5 * MB, of=10 * MB)
    tariff = Tariff.objects.create(name="Data", service="data", price=Decimal("0.01"), per_units=MB, is_default=True)
    TariffRate.objects.create(tariff=tariff, zone="roam_eu", price=Decimal("0.02"))
    SteeringRule.objects.create(company=tree.company, name="Evenings are personal", payer="personal")
    Notification.objects.create(
        customer=tree.company.customer, channel="email", subject="50% used", body="Half of it.", kind="threshold"
    )
    return {NodeLimit: limit, ChargingSession: session, Tariff: tariff}


def admin_url(model, page, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


@pytest.mark.parametrize(("model", "addable"), PAGES)
def test_admin_list_and_add_pages_open(admin_client, rows, model, addable):
    changelist = admin_client.get(admin_url(model, "changelist"))
    add = admin_client.get(admin_url(model, "add"))

    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count == 1
    assert add.status_code == (200 if addable else 403)


@pytest.mark.parametrize("model", [NodeLimit, ChargingSession, Tariff])
def test_admin_change_pages_open_with_their_inlines(admin_client, rows, model):
    response = admin_client.get(admin_url(model, "change", rows[model].pk))

    assert response.status_code == 200


def test_editing_a_limit_keeps_the_counters_a_charge_moved_meanwhile(admin_client, rows, monkeypatch):
    from charging.admin import NodeLimitAdmin

    limit = rows[NodeLimit]
    save_form = NodeLimitAdmin.save_form

    def charge_meanwhile(self, request, form, change):
        # A charge lands after the admin loaded the row and before it writes it back.
        NodeLimit.objects.filter(pk=limit.pk).update(used=3 * MB, reserved=MB)
        return save_form(self, request, form, change)

    monkeypatch.setattr(NodeLimitAdmin, "save_form", charge_meanwhile)

    response = admin_client.post(
        admin_url(NodeLimit, "change", limit.pk),
        {
            "node": limit.node_id,
            "unit": limit.unit,
            "period": limit.period,
            "limit": 20 * MB,
            "on_exceed": limit.on_exceed,
            "overage_price": "",
            "overage_per_units": "",
            "thresholds": "[]",
        },
    )

    limit.refresh_from_db()
    assert response.status_code == 302
    assert (limit.limit, limit.used, limit.reserved) == (20 * MB, 3 * MB, MB)
