from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from charging.credentials import (
    network_credential_find,
    network_credential_issue,
    network_credential_revoke,
    network_credential_rotate,
)
from charging.models import ChargingSession, LedgerEntry, NetworkCredential, UsageEvent
from tests.conftest import network_client
from tests.factories import MB, LineFactory, UserFactory, data_bucket

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("/api/usage/", "usage"),
    ("/api/usage/bulk/", "usage"),
    ("/api/chargingSession/", "sessions"),
    ("/api/chargingSession/s-1/update/", "sessions"),
    ("/api/chargingSession/s-1/terminate/", "sessions"),
    ("/api/chargingEvent/", "events"),
    ("/api/chargingEvent/e-1/refund/", "refunds"),
]


@pytest.fixture
def line():
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 50 * MB)
    return line


def usage(line, external_id="cdr-1"):
    return {"external_id": external_id, "msisdn": line.msisdn, "service": "data", "quantity": MB}


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def nothing_stored():
    return not (UsageEvent.objects.exists() or ChargingSession.objects.exists())


def test_a_key_is_kept_only_as_a_hash_and_its_requests_take_its_source(line):
    issued = network_credential_issue(source="ggsn-7", scopes=["usage"])

    response = bearer(issued.key).post("/api/usage/", usage(line), format="json")

    assert response.status_code == 201
    key_id, secret = issued.key.split(".")
    stored = NetworkCredential.objects.get()
    assert (stored.key_id, stored.source, stored.scopes) == (key_id, "ggsn-7", ["usage"])
    assert secret not in str(NetworkCredential.objects.values().get())
    assert UsageEvent.objects.get().source == "ggsn-7"


def test_each_source_has_its_own_id_space(line):
    first = network_client(source="mediation", scopes=["usage"]).post("/api/usage/", usage(line), format="json")
    second = network_client(source="ggsn-7", scopes=["usage"]).post("/api/usage/", usage(line), format="json")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert sorted(UsageEvent.objects.values_list("source", flat=True)) == ["ggsn-7", "mediation"]


@pytest.mark.parametrize(("path", "scope"), ENDPOINTS)
def test_a_key_opens_only_the_endpoints_of_its_scopes(line, path, scope):
    others = [s for s in NetworkCredential.Scope.values if s != scope]
    client = network_client(source="mediation", scopes=others)

    response = client.post(path, {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert response.json()["reason"] == "This network key does not open this endpoint."
    assert nothing_stored()


@pytest.mark.parametrize(("path", "scope"), ENDPOINTS)
def test_an_agent_token_a_superuser_session_or_no_key_gets_401_with_the_challenge(line, path, scope):
    agents = Group.objects.create(name="Call-centre agents")
    agents.permissions.set(Permission.objects.filter(content_type__app_label="charging"))
    agent = UserFactory(is_staff=True)
    agent.groups.add(agents)
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")
    superuser = APIClient()
    superuser.force_login(UserFactory(is_staff=True, is_superuser=True))

    for client in (token, superuser, APIClient()):
        response = client.post(path, usage(line), format="json")

        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="network"'
        assert response.json() == {
            "@type": "Error",
            "code": "not_authenticated",
            "reason": "Authentication credentials were not provided.",
            "message": "Authentication credentials were not provided.",
            "status": "401",
        }
    assert nothing_stored()
    assert not LedgerEntry.objects.filter(kind="usage").exists()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer nonsense", "Not a network key."),
        ("Bearer 0123456789abcdef.wrong-secret", "Not a network key."),
        ("Bearer two parts", "Send one key: Authorization: Bearer <key>."),
    ],
)
def test_a_wrong_key_gets_401(line, header, reason):
    network_credential_issue(source="mediation", scopes=["usage"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post("/api/usage/", usage(line), format="json")

    assert (response.status_code, response.json()["code"], response.json()["reason"]) == (
        401,
        "authentication_failed",
        reason,
    )
    assert nothing_stored()


def test_a_revoked_or_expired_key_gets_401(line):
    revoked = network_credential_issue(source="mediation", scopes=["usage"])
    expiring = network_credential_issue(
        source="mediation", scopes=["usage"], expires_at=timezone.now() + timedelta(hours=1)
    )
    assert network_credential_revoke(key_id=revoked.credential.key_id) == 1
    NetworkCredential.objects.filter(pk=expiring.credential.pk).update(expires_at=timezone.now())

    answers = [bearer(key).post("/api/usage/", usage(line), format="json") for key in (revoked.key, expiring.key)]

    assert [(a.status_code, a.json()["reason"]) for a in answers] == [
        (401, "This network key was revoked."),
        (401, "This network key has expired."),
    ]
    assert nothing_stored()


def test_a_rotated_key_works_beside_the_old_one_until_that_is_revoked(line):
    old = network_credential_issue(source="mediation", scopes=["usage", "sessions"])

    new = network_credential_rotate(source="mediation")
    both = [bearer(key).post("/api/usage/", usage(line, key[:6]), format="json") for key in (old.key, new.key)]
    network_credential_revoke(key_id=old.credential.key_id)
    after = [bearer(key).post("/api/usage/", usage(line, "x" + key[:6]), format="json") for key in (old.key, new.key)]

    assert new.credential.scopes == ["usage", "sessions"]
    assert [a.status_code for a in both] == [201, 201]
    assert [a.status_code for a in after] == [401, 201]


def test_rotating_with_revoke_old_stops_the_old_keys_at_once(line):
    old = network_credential_issue(source="mediation", scopes=["usage"])

    new = network_credential_rotate(source="mediation", revoke_old=True)

    assert network_credential_find(key=old.key).is_usable(timezone.now()) is False
    assert network_credential_find(key=new.key).is_usable(timezone.now()) is True


@pytest.mark.parametrize(
    ("source", "scopes", "message"),
    [
        ("", ["usage"], "a source is 1 to 50 letters"),
        ("has space", ["usage"], "a source is 1 to 50 letters"),
        ("mediation", [], "at least one scope is needed"),
        ("mediation", ["usage", "admin"], "unknown scope admin"),
    ],
)
def test_a_key_needs_a_plain_source_and_known_scopes(source, scopes, message):
    with pytest.raises(ValueError, match=message):
        network_credential_issue(source=source, scopes=scopes)
    assert not NetworkCredential.objects.exists()


def test_the_command_prints_a_key_once_and_rotates_lists_and_revokes(line):
    out, err = StringIO(), StringIO()
    call_command(
        "network_credential", "issue", "--source", "mediation", "--scopes", "usage,sessions", stdout=out, stderr=err
    )
    key = out.getvalue().strip()
    credential = NetworkCredential.objects.get()
    assert key.startswith(f"{credential.key_id}.")
    assert "shown once" in err.getvalue()
    assert bearer(key).post("/api/usage/", usage(line), format="json").status_code == 201

    rotated = StringIO()
    call_command("network_credential", "rotate", "--source", "mediation", "--revoke-old", stdout=rotated, stderr=err)
    listed = StringIO()
    call_command("network_credential", "list", stdout=listed)
    assert bearer(key).post("/api/usage/", usage(line, "cdr-2"), format="json").status_code == 401
    assert (
        bearer(rotated.getvalue().strip()).post("/api/usage/", usage(line, "cdr-3"), format="json").status_code == 201
    )
    assert sorted(row.split("\t")[4] for row in listed.getvalue().splitlines()) == ["in use", "revoked"]

    call_command("network_credential", "revoke", "--source", "mediation", stdout=StringIO())
    assert not any(c.is_usable(timezone.now()) for c in NetworkCredential.objects.all())
    with pytest.raises(CommandError, match="unknown scope"):
        call_command("network_credential", "issue", "--source", "m", "--scopes", "everything", stdout=StringIO())
