from decimal import Decimal

import pytest

from charging.ledger import ledger_mismatches
from charging.models import LedgerEntry, MoneyBalance
from charging.requests import ChargingError
from charging.services import money_adjust
from portal.models import AuditEntry
from tests.factories import MB, BillingAccountFactory, CustomerFactory, LineFactory, UserFactory, data_bucket

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


@pytest.mark.parametrize("amount", ["99999999.99", "-500.01"], ids=["a huge credit", "a debit past the maximum"])
def test_an_adjustment_past_the_maximum_is_refused_with_a_message_and_changes_nothing(agent_client, amount):
    client, _ = agent_client
    accounts = [LineFactory().billing_account, LineFactory().billing_account]

    response = client.post(
        CHANGELIST,
        {
            "action": "adjust_money",
            "_selected_action": [a.pk for a in accounts],
            "amount": amount,
            "reason": "Goodwill",
            "confirm": "1",
        },
        follow=True,
    )

    assert "Nothing was adjusted: one adjustment may move at most €500.00." in response.content.decode()
    assert not LedgerEntry.objects.exists()
    assert not MoneyBalance.objects.exclude(amount=0).exists()


def test_the_maximum_adjustment_is_a_setting_and_holds_at_its_bound(settings):
    settings.CHARGING_MAX_ADJUSTMENT = "50"
    account = LineFactory().billing_account
    agent = UserFactory(is_staff=True)

    money_adjust(billing_account=account, amount=Decimal("-50"), reason="Correction", actor=agent)
    with pytest.raises(ChargingError, match="at most €50.00"):
        money_adjust(billing_account=account, amount=Decimal("50.0001"), reason="Correction", actor=agent)

    assert MoneyBalance.objects.get(billing_account=account).amount == Decimal("-50.0000")
    assert LedgerEntry.objects.filter(billing_account=account).count() == 1


def test_an_accounts_currency_cannot_change_once_it_has_a_ledger(agent_client):
    client, _ = agent_client
    account = LineFactory().billing_account
    money_adjust(billing_account=account, amount=Decimal("10"), reason="Welcome", actor=UserFactory())

    response = client.post(f"{CHANGELIST}{account.pk}/change/", account_form(account, currency="USD"))

    assert response.status_code == 200
    assert "The currency stays EUR: the account holds money or has ledger entries." in response.content.decode()
    account.refresh_from_db()
    assert account.currency == "EUR"


def test_a_new_accounts_currency_can_still_be_set(agent_client):
    client, _ = agent_client
    account = BillingAccountFactory()

    response = client.post(f"{CHANGELIST}{account.pk}/change/", account_form(account, currency="GBP"))

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.currency == "GBP"


def test_an_account_does_not_move_to_another_customer_in_the_admin(agent_client):
    client, _ = agent_client
    account = BillingAccountFactory()
    stranger = CustomerFactory()

    page = client.get(f"{CHANGELIST}{account.pk}/change/").content.decode()
    client.post(f"{CHANGELIST}{account.pk}/change/", {**account_form(account), "customer": stranger.pk})

    assert 'name="customer"' not in page
    account.refresh_from_db()
    assert account.customer != stranger


def test_a_line_does_not_move_to_another_account_in_the_admin(agent_client):
    client, _ = agent_client
    line = LineFactory()
    data_bucket(line, 5 * MB)
    other = BillingAccountFactory()

    page = client.get(f"/admin/portal/line/{line.pk}/change/").content.decode()
    response = client.post(
        f"/admin/portal/line/{line.pk}/change/",
        {
            "msisdn": line.msisdn,
            "device_label": "Moved",
            "billing_account": other.pk,
            "holds-TOTAL_FORMS": "0",
            "holds-INITIAL_FORMS": "0",
            "holds-MIN_NUM_FORMS": "0",
            "holds-MAX_NUM_FORMS": "1000",
            "buckets-TOTAL_FORMS": "1",
            "buckets-INITIAL_FORMS": "1",
            "buckets-MIN_NUM_FORMS": "0",
            "buckets-MAX_NUM_FORMS": "1000",
            "buckets-0-id": line.buckets.get().pk,
            "buckets-0-line": line.pk,
        },
    )

    assert 'name="billing_account"' not in page
    assert response.status_code == 302
    line.refresh_from_db()
    assert (line.device_label, line.billing_account_id) == ("Moved", line.billing_account_id)
    assert line.billing_account != other
    assert ledger_mismatches() == []


def account_form(account, **changes) -> dict:
    """The account's change form as the admin posts it, with no money balance or line rows."""
    return {
        "number": account.number,
        "kind": account.kind,
        "currency": account.currency,
        "money_balance-TOTAL_FORMS": "0",
        "money_balance-INITIAL_FORMS": "0",
        "money_balance-MIN_NUM_FORMS": "0",
        "money_balance-MAX_NUM_FORMS": "1",
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        **changes,
    }
