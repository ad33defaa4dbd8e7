from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from charging.models import Bucket, LedgerEntry, MoneyBalance
from charging.services import money_post
from tests.factories import MB, LineFactory, data_bucket

pytestmark = pytest.mark.django_db


def test_ledger_check_passes_when_balances_match_their_ledger(capsys):
    data_bucket(LineFactory(), 5 * MB)

    call_command("ledger_check")

    assert "ledger ok" in capsys.readouterr().out


def test_ledger_check_fails_on_a_balance_changed_without_a_ledger_entry():
    bucket = data_bucket(LineFactory(), 5 * MB)
    Bucket.objects.filter(pk=bucket.pk).update(remaining=F("remaining") - 1)

    with pytest.raises(CommandError, match="1 balances differ"):
        call_command("ledger_check")


def test_ledger_check_sums_money_exactly_where_the_database_adds_floats(capsys):
    # SQLite keeps these amounts as floats: a hundred times 0.1 added there is 9.99999999999998.
    account = LineFactory().billing_account
    for _ in range(100):
        money_post(billing_account=account, amount=Decimal("0.1000"), kind=LedgerEntry.Kind.TOPUP, reason="Top-up")

    call_command("ledger_check")

    assert MoneyBalance.objects.get(billing_account=account).amount == Decimal("10.0000")
    assert "ledger ok" in capsys.readouterr().out
