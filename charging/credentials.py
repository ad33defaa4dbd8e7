"""Issuing, rotating, revoking and checking network credentials (``NetworkCredential``).

A key reads ``<key id>.<secret>``: the id finds the credential, the secret is checked against
its hash. The secret is random (256 bits), so a plain SHA-256 keeps it safe at rest; a slow
password hash would only slow down every request of the network.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from charging.models import NetworkCredential

SCOPES_ORDER = list(NetworkCredential.Scope.values)
SCOPES = frozenset(SCOPES_ORDER)
SOURCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")


class IssuedCredential(NamedTuple):
    credential: NetworkCredential
    key: str  # shown once: only its hash is kept


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def network_scopes_parse(scopes: Iterable[str]) -> list[str]:
    """The scopes in their fixed order; ``ValueError`` names an unknown one or none at all."""
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = wanted - SCOPES
    if unknown:
        raise ValueError(f"unknown scope {', '.join(sorted(unknown))}; expected some of {', '.join(SCOPES_ORDER)}")
    if not wanted:
        raise ValueError(f"at least one scope is needed: {', '.join(SCOPES_ORDER)}")
    return [scope for scope in SCOPES_ORDER if scope in wanted]


@transaction.atomic
def network_credential_issue(
    *, source: str, scopes: Iterable[str], expires_at: datetime | None = None
) -> IssuedCredential:
    """A new key for ``source``, opening the endpoints of ``scopes``; its other keys stay valid."""
    if not SOURCE_PATTERN.fullmatch(source):
        raise ValueError("a source is 1 to 50 letters, digits, '.', '_' or '-', starting with a letter or digit")
    scopes = network_scopes_parse(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("the expiry lies in the past")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    credential = NetworkCredential.objects.create(
        source=source, key_id=key_id, secret_hash=_hash(secret), scopes=scopes, expires_at=expires_at
    )
    return IssuedCredential(credential, f"{key_id}.{secret}")


@transaction.atomic
def network_credential_rotate(
    *, source: str, expires_at: datetime | None = None, revoke_old: bool = False
) -> IssuedCredential:
    """A new key for ``source`` with the scopes of its keys in use; with ``revoke_old`` those
    stop working at once, else they work until revoked (so the source can switch first)."""
    now = timezone.now()
    current = [c for c in NetworkCredential.objects.select_for_update().filter(source=source) if c.is_usable(now)]
    if not current:
        raise ValueError(f"{source} has no key in use to rotate: issue one")
    issued = network_credential_issue(
        source=source, scopes={scope for c in current for scope in c.scopes}, expires_at=expires_at
    )
    if revoke_old:
        NetworkCredential.objects.filter(pk__in=[c.pk for c in current]).update(revoked_at=now)
    return issued


def network_credential_revoke(*, key_id: str = "", source: str = "") -> int:
    """Revokes one key (by its id) or every key of a source; returns how many stopped working."""
    if bool(key_id) == bool(source):
        raise ValueError("name a key id or a source")
    keys = NetworkCredential.objects.filter(revoked_at__isnull=True)
    keys = keys.filter(key_id=key_id) if key_id else keys.filter(source=source)
    return keys.update(revoked_at=timezone.now())


def network_credential_find(*, key: str) -> NetworkCredential | None:
    """The credential whose key this is (usable or not), or None."""
    key_id, _, secret = key.partition(".")
    if not key_id or not secret or len(key_id) > 16:
        return None
    credential = NetworkCredential.objects.filter(key_id=key_id).first()
    if credential is None or not hmac.compare_digest(credential.secret_hash, _hash(secret)):
        return None
    return credential
