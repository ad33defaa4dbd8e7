from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from charging.models import LedgerEntry, MoneyBalance
from charging.services import money_adjust, money_post
from portal.audit import audit_record
from portal.models import AuditEntry, BillingAccount
from tests.factories import LineFactory, UserFactory

pytestmark = pytest.mark.django_db


def funded(amount: str) -> BillingAccount:
    account = LineFactory().billing_account
    money_post(billing_account=account, amount=Decimal(amount), kind=LedgerEntry.Kind.TOPUP, reason="Top-up")
    return account


def test_an_agent_adjustment_writes_one_audit_row_with_who_the_balances_and_why():
    agent = UserFactory(username="agent-ann", is_staff=True)
    account = funded("10")

    money_adjust(billing_account=account, amount=Decimal("-2.5"), reason="Roaming charged twice", actor=agent)

    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.reason) == (agent, "money.adjust", "Roaming charged twice")
    assert (entry.target, entry.target_label) == (account, str(account))
    assert (entry.before, entry.after) == ({"balance": "10.0000"}, {"balance": "7.5000"})
    assert MoneyBalance.objects.get(billing_account=account).amount == Decimal("7.5000")


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_refused_adjustment_writes_no_audit_row_and_changes_nothing(reason):
    agent = UserFactory(is_staff=True)
    account = funded("10")
    ledger = list(LedgerEntry.objects.values_list("pk", flat=True))

    with pytest.raises(ValueError, match="needs a reason"):
        money_adjust(billing_account=account, amount=Decimal("5"), reason=reason, actor=agent)

    assert not AuditEntry.objects.exists()
    assert list(LedgerEntry.objects.values_list("pk", flat=True)) == ledger
    assert MoneyBalance.objects.get(billing_account=account).amount == Decimal("10.0000")


def test_an_audit_row_keeps_decimals_and_datetimes_as_text_and_the_system_as_no_actor():
    line = LineFactory()
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

    entry = audit_record(
        actor=None,
        action="test.change",
        target=line,
        before={"amount": Decimal("1.50"), "at": at},
        after={"amount": Decimal("2.50"), "at": None},
        reason="Because",
    )

    entry.refresh_from_db()
    assert entry.actor is None
    assert (entry.target_type, entry.target_id) == (ContentType.objects.get_for_model(line), str(line.pk))
    assert entry.before == {"amount": "1.50", "at": "2026-03-01T12:30:00Z"}
    assert entry.after == {"amount": "2.50", "at": None}


def test_an_audit_row_is_never_changed_and_needs_a_reason():
    line = LineFactory()
    entry = audit_record(actor=None, action="test.change", target=line, before={}, after={}, reason="Because")

    entry.reason = "Something else"
    with pytest.raises(ValueError, match="never changed"):
        entry.save()
    with pytest.raises(ValueError, match="needs a reason"):
        audit_record(actor=None, action="test.change", target=line, before={}, after={}, reason=" ")

    assert list(AuditEntry.objects.values_list("reason", flat=True)) == ["Because"]


def test_agents_find_audit_rows_in_the_admin_and_cannot_edit_them(client):
    agent = UserFactory(username="agent-ann", is_staff=True, is_superuser=True)
    client.force_login(agent)
    account = funded("10")
    money_adjust(billing_account=account, amount=Decimal("1"), reason="Goodwill", actor=agent)
    entry = AuditEntry.objects.get()

    found = client.get("/admin/portal/auditentry/", {"q": account.number, "action": "money.adjust"})
    page = client.get(f"/admin/portal/auditentry/{entry.pk}/change/")

    assert found.status_code == 200
    assert "Goodwill" in found.content.decode()
    assert page.status_code == 200
    assert 'name="reason"' not in page.content.decode()
    assert client.get("/admin/portal/auditentry/add/").status_code == 403
    assert client.post(f"/admin/portal/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 1
