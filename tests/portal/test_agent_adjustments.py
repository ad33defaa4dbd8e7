from decimal import Decimal

import pytest

from charging.ledger import ledger_mismatches
from charging.models import LedgerEntry, MoneyBalance
from portal.models import AuditEntry
from tests.factories import LineFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/billingaccount/"


@pytest.fixture
def agent_client(client):
    agent = UserFactory(username="agent-ann", is_staff=True, is_superuser=True)
    client.force_login(agent)
    return client, agent


def test_an_agent_credits_an_account_and_the_ledger_records_why_and_who(agent_client):
    client, agent = agent_client
    account = LineFactory().billing_account

    response = client.post(
        CHANGELIST,
        {
            "action": "adjust_money",
            "_selected_action": [account.pk],
            "amount": "7.5",
            "reason": "Outage goodwill",
            "confirm": "1",
        },
    )

    assert response.status_code == 302
    entry = LedgerEntry.objects.get(billing_account=account)
    assert (entry.kind, entry.amount, entry.reason, entry.actor) == (
        "adjustment",
        Decimal("7.5000"),
        "Outage goodwill",
        agent,
    )
    assert MoneyBalance.objects.get(billing_account=account).amount == Decimal("7.5000")
    assert list(AuditEntry.objects.values_list("actor", "action", "before", "after", "reason")) == [
        (agent.pk, "money.adjust", {"balance": "0.0000"}, {"balance": "7.5000"}, "Outage goodwill")
    ]
    assert ledger_mismatches() == []


@pytest.mark.parametrize(
    ("amount", "reason"), [("5", ""), ("0", "Nothing"), ("lots", "Typo")], ids=["no reason", "zero", "not a number"]
)
def test_an_adjustment_without_a_reason_or_a_real_amount_is_asked_again_and_changes_nothing(
    agent_client, amount, reason
):
    client, _ = agent_client
    account = LineFactory().billing_account

    response = client.post(
        CHANGELIST,
        {
            "action": "adjust_money",
            "_selected_action": [account.pk],
            "amount": amount,
            "reason": reason,
            "confirm": "1",
        },
    )

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not LedgerEntry.objects.filter(billing_account=account).exists()
    assert not AuditEntry.objects.exists()
