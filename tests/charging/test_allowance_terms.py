"""What an allowance is (unit, holder, validity, priority) changes only with a ledger row, and
the ledger check proves it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.utils import timezone

from charging.ledger import ledger_mismatches
from charging.models import Bucket, LedgerEntry
from charging.requests import ChargingError
from charging.services import bucket_priority_change, bucket_validity_change
from charging.units import Unit
from portal.models import Line
from tests.charging.trees import company_tree
from tests.factories import GB, BillingAccountFactory, LineFactory, UserFactory, data_bucket

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/charging/bucket/"


@pytest.fixture
def agent(client):
    agent = UserFactory(username="agent-ann", is_staff=True, is_superuser=True)
    client.force_login(agent)
    return agent


def as_it_was(bucket: Bucket) -> tuple:
    return (bucket.unit, bucket.line_id, bucket.billing_account_id, bucket.valid_until, bucket.priority)


def test_an_agent_cannot_edit_what_an_allowance_is_in_the_admin(client, agent):
    bucket = data_bucket(LineFactory(), 10 * GB)
    someone_else = LineFactory()
    before = as_it_was(bucket)

    page = client.get(f"{CHANGELIST}{bucket.pk}/change/")
    response = client.post(
        f"{CHANGELIST}{bucket.pk}/change/",
        {
            "name": "Data",
            "unit": Unit.SECONDS,
            "line": someone_else.pk,
            "billing_account": someone_else.billing_account_id,
            "priority": 1,
            "valid_from_0": "2024-01-01",
            "valid_from_1": "00:00:00",
            "valid_until_0": "2099-01-01",
            "valid_until_1": "00:00:00",
        },
    )

    assert page.status_code == 200
    assert 'name="unit"' not in page.content.decode()
    assert response.status_code == 403
    bucket.refresh_from_db()
    assert as_it_was(bucket) == before
    assert ledger_mismatches() == []


def test_an_agent_extends_an_allowance_with_a_reason_and_the_ledger_records_it(client, agent):
    bucket = data_bucket(LineFactory(), 10 * GB)
    grant = LedgerEntry.objects.get(bucket=bucket)

    response = client.post(
        CHANGELIST,
        {
            "action": "change_validity",
            "_selected_action": [bucket.pk],
            "valid_until": "2030-06-01 12:00",
            "reason": "Goodwill after the outage",
            "confirm": "1",
        },
    )

    assert response.status_code == 302
    bucket.refresh_from_db()
    assert bucket.valid_until == datetime(2030, 6, 1, 10, 0, tzinfo=UTC)  # noon in Amsterdam, summer time
    entry = LedgerEntry.objects.exclude(pk=grant.pk).get(bucket=bucket)
    assert (entry.kind, entry.units, entry.reason, entry.actor) == ("terms", 0, "Goodwill after the outage", agent)
    assert entry.terms == {**grant.terms, "valid_until": "2030-06-01T10:00:00.000000+00:00"}
    assert ledger_mismatches() == []


def test_an_agent_changes_which_allowance_is_drawn_first_and_the_ledger_records_it(client, agent):
    bucket = data_bucket(LineFactory(), 10 * GB, priority=100)

    client.post(
        CHANGELIST,
        {
            "action": "change_priority",
            "_selected_action": [bucket.pk],
            "priority": "5",
            "reason": "Use the bonus first",
            "confirm": "1",
        },
    )

    bucket.refresh_from_db()
    assert bucket.priority == 5
    entry = LedgerEntry.objects.get(bucket=bucket, kind=LedgerEntry.Kind.TERMS)
    assert (entry.terms["priority"], entry.reason, entry.actor) == (5, "Use the bonus first", agent)
    assert ledger_mismatches() == []


def test_a_validity_change_without_a_reason_is_asked_again_and_changes_nothing(client, agent):
    bucket = data_bucket(LineFactory(), 10 * GB)
    before = as_it_was(bucket)

    response = client.post(
        CHANGELIST,
        {
            "action": "change_validity",
            "_selected_action": [bucket.pk],
            "valid_until": "2030-06-01 12:00",
            "reason": "",
            "confirm": "1",
        },
    )

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    bucket.refresh_from_db()
    assert as_it_was(bucket) == before
    assert LedgerEntry.objects.filter(bucket=bucket).count() == 1


def test_a_validity_that_ends_before_the_allowance_starts_is_refused_for_every_selected_one(client, agent):
    line = LineFactory()
    later = data_bucket(line, GB)
    Bucket.objects.filter(pk=later.pk).update(valid_from=datetime(2031, 1, 1, tzinfo=UTC))
    LedgerEntry.objects.filter(bucket=later).update(
        terms={**LedgerEntry.objects.get(bucket=later).terms, "valid_from": "2031-01-01T00:00:00.000000+00:00"}
    )
    first = data_bucket(line, GB)

    response = client.post(
        CHANGELIST,
        {
            "action": "change_validity",
            "_selected_action": [first.pk, later.pk],
            "valid_until": "2030-06-01 12:00",
            "reason": "Extend",
            "confirm": "1",
        },
        follow=True,
    )

    assert "Nothing changed: an allowance must end after it starts." in response.content.decode()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TERMS).exists()
    assert Bucket.objects.get(pk=first.pk).valid_until == first.valid_until


def test_an_agent_without_the_right_to_change_allowances_is_not_offered_the_actions(client):
    agent = UserFactory(is_staff=True)
    agent.user_permissions.add(Permission.objects.get(codename="view_bucket"))
    client.force_login(agent)
    bucket = data_bucket(LineFactory(), GB)

    page = client.get(CHANGELIST)
    response = client.post(
        CHANGELIST,
        {
            "action": "change_priority",
            "_selected_action": [bucket.pk],
            "priority": "1",
            "reason": "try",
            "confirm": "1",
        },
    )

    assert page.status_code == 200
    assert "change_priority" not in page.content.decode()
    assert response.status_code == 200  # the list again: no such action for this agent
    assert Bucket.objects.get(pk=bucket.pk).priority == 100


def test_the_services_refuse_a_change_without_a_reason():
    bucket = data_bucket(LineFactory(), GB)

    with pytest.raises(ChargingError, match="say why"):
        bucket_priority_change(bucket=bucket, priority=1, reason=" ", actor=None)
    with pytest.raises(ChargingError, match="say why"):
        bucket_validity_change(bucket=bucket, valid_until=timezone.now(), reason="", actor=None)

    assert LedgerEntry.objects.filter(bucket=bucket).count() == 1


# --- The ledger check proves what each allowance is ---------------------------------------------


def test_ledger_check_finds_a_unit_changed_without_a_ledger_row():
    bucket = data_bucket(LineFactory(), 10 * GB)
    Bucket.objects.filter(pk=bucket.pk).update(unit=Unit.SECONDS)

    assert ledger_mismatches() == [f"bucket {bucket.pk}: unit seconds, ledger bytes"]
    with pytest.raises(CommandError, match="1 balances differ"):
        call_command("ledger_check")


def test_ledger_check_finds_a_validity_moved_without_a_ledger_row():
    bucket = data_bucket(LineFactory(), 10 * GB)
    revived = datetime(2099, 1, 1, tzinfo=UTC)
    Bucket.objects.filter(pk=bucket.pk).update(valid_until=revived)

    [problem] = ledger_mismatches()
    assert problem.startswith(f"bucket {bucket.pk}: valid_until 2099-01-01T00:00:00.000000+00:00, ledger 20")


def test_ledger_check_finds_an_allowance_moved_to_someone_elses_line():
    bucket = data_bucket(LineFactory(), 10 * GB)
    theirs = LineFactory()
    Bucket.objects.filter(pk=bucket.pk).update(line=theirs)

    assert ledger_mismatches() == [
        f"bucket {bucket.pk}: account {bucket.billing_account_id}, its line is on account {theirs.billing_account_id}",
        f"bucket {bucket.pk}: line {theirs.pk}, ledger {bucket.line_id}",
    ]


def test_ledger_check_finds_an_allowance_moved_to_another_account_with_its_line():
    bucket = data_bucket(LineFactory(), 10 * GB)
    other = BillingAccountFactory()
    Line.objects.filter(pk=bucket.line_id).update(billing_account=other)
    Bucket.objects.filter(pk=bucket.pk).update(billing_account=other)

    assert ledger_mismatches() == [f"bucket {bucket.pk}: account {other.pk}, ledger [{bucket.billing_account_id}]"]


def test_ledger_check_finds_a_priority_changed_without_a_ledger_row():
    bucket = data_bucket(LineFactory(), 10 * GB)
    Bucket.objects.filter(pk=bucket.pk).update(priority=1)

    assert ledger_mismatches() == [f"bucket {bucket.pk}: priority 1, ledger 100"]


def test_ledger_check_finds_an_allowance_with_no_grant_in_the_ledger():
    bucket = data_bucket(LineFactory(), 10 * GB)
    LedgerEntry.objects.filter(bucket=bucket).update(terms=None)

    assert ledger_mismatches() == [f"bucket {bucket.pk}: its grant is not in the ledger"]


def test_ledger_check_passes_for_pools_and_allowances_changed_through_the_services():
    tree = company_tree(lines=1)
    bucket = data_bucket(tree.lines[0], GB)
    bucket_validity_change(
        bucket=bucket, valid_until=timezone.now() + timedelta(days=90), reason="Extended", actor=None
    )
    bucket_priority_change(bucket=tree.pool, priority=7, reason="Pool last", actor=None)
    bucket_priority_change(bucket=tree.pool, priority=7, reason="Again", actor=None)  # no change, no row

    assert ledger_mismatches() == []
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TERMS).count() == 2
