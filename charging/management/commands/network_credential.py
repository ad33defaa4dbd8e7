"""Issues, rotates, revokes and lists the keys network elements call the network API with."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from charging.credentials import (
    SCOPES_ORDER,
    network_credential_issue,
    network_credential_revoke,
    network_credential_rotate,
)
from charging.models import NetworkCredential


class Command(BaseCommand):
    help = (
        "Network credentials: `issue --source S --scopes usage,sessions` prints a new key once (only its hash "
        "is kept); `rotate --source S` issues a new key with the scopes of the source's keys in use (they "
        "keep working until revoked, or stop at once with --revoke-old); `revoke --key-id ID` or "
        "`revoke --source S` stops keys; `list` shows them. Scopes: " + ", ".join(SCOPES_ORDER) + "."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        issue = actions.add_parser("issue", help="a new key for a source")
        issue.add_argument("--source", required=True, help="the network element or mediation system")
        issue.add_argument("--scopes", required=True, help="comma-separated: " + ",".join(SCOPES_ORDER))
        self._expiry_arguments(issue)
        rotate = actions.add_parser("rotate", help="a new key with the scopes of the source's keys in use")
        rotate.add_argument("--source", required=True)
        rotate.add_argument("--revoke-old", action="store_true", help="the old keys stop working at once")
        self._expiry_arguments(rotate)
        revoke = actions.add_parser("revoke", help="stop a key (by its id) or every key of a source")
        which = revoke.add_mutually_exclusive_group(required=True)
        which.add_argument("--key-id")
        which.add_argument("--source")
        actions.add_parser("list", help="every key: source, id, scopes, expiry, state")

    def _expiry_arguments(self, parser):
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in-days", type=int, help="the key stops working after this many days")
        expiry.add_argument("--expires-at", help="the key stops working then (ISO 8601, with an offset)")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ValueError as error:
            raise CommandError(str(error)) from error

    def _issue(self, *, source, scopes, **options):
        issued = network_credential_issue(source=source, scopes=scopes.split(","), expires_at=self._expires_at(options))
        self._show_key(issued)

    def _rotate(self, *, source, revoke_old, **options):
        issued = network_credential_rotate(source=source, expires_at=self._expires_at(options), revoke_old=revoke_old)
        self._show_key(issued)
        if not revoke_old:
            self.stderr.write(
                f"The older keys of {source} still work: once it uses the new key, "
                f"run `network_credential revoke --key-id ID` for each."
            )

    def _revoke(self, *, key_id, source, **options):
        revoked = network_credential_revoke(key_id=key_id or "", source=source or "")
        self.stdout.write(f"{revoked} key(s) revoked.")

    def _list(self, **options):
        now = timezone.now()
        for credential in NetworkCredential.objects.all():
            state = "in use" if credential.is_usable(now) else "revoked" if credential.revoked_at else "expired"
            expires = credential.expires_at.isoformat() if credential.expires_at else "never"
            self.stdout.write(
                f"{credential.source}\t{credential.key_id}\t{','.join(credential.scopes)}\texpires {expires}\t{state}"
            )

    def _expires_at(self, options):
        if options.get("expires_in_days") is not None:
            if options["expires_in_days"] < 1:
                raise ValueError("--expires-in-days must be at least 1")
            return timezone.now() + timedelta(days=options["expires_in_days"])
        if options.get("expires_at"):
            try:
                at = parse_datetime(options["expires_at"])
            except ValueError:
                at = None
            if at is None or timezone.is_naive(at):
                raise ValueError("--expires-at takes an ISO 8601 date and time with an offset")
            return at
        return None

    def _show_key(self, issued):
        credential = issued.credential
        expires = credential.expires_at.isoformat() if credential.expires_at else "never"
        self.stderr.write(
            f"Key {credential.key_id} for {credential.source} ({', '.join(credential.scopes)}; expires {expires}). "
            "It is shown once: keep it now."
        )
        self.stdout.write(issued.key)
