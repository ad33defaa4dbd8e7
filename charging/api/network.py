"""Who may call the network API: a network credential (``charging.credentials``), and
nothing else: not an agent's token, not a superuser's session.

A request carries ``Authorization: Bearer <key>``. The credential names the source (the
request's id space: usage records, sessions and events are unique per source) and the
endpoints it opens (its scopes).
"""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from charging.credentials import network_credential_find
from charging.models import NetworkCredential
from portal.api.parsers import JSONParser

KEYWORD = "Bearer"
REALM = "network"


class NetworkCaller:
    """The caller of a request a network credential authenticated: a source, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, credential: NetworkCredential):
        self.credential = credential
        self.source = credential.source

    def __str__(self) -> str:
        return f"network:{self.source}"

    def get_username(self) -> str:
        return str(self)

    def has_perm(self, perm, obj=None) -> bool:
        return False


class NetworkKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send one key: Authorization: Bearer <key>.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Not a network key.") from None
        credential = network_credential_find(key=key)
        if credential is None:
            raise exceptions.AuthenticationFailed("Not a network key.")
        if credential.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This network key was revoked.")
        if not credential.is_usable(timezone.now()):
            raise exceptions.AuthenticationFailed("This network key has expired.")
        return NetworkCaller(credential), credential

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="{REALM}"'


class NetworkScope(BasePermission):
    """The view's ``network_scope`` is among the credential's scopes."""

    message = "This network key does not open this endpoint."

    def has_permission(self, request, view) -> bool:
        credential = request.auth
        return isinstance(credential, NetworkCredential) and credential.allows(view.network_scope)


class NetworkView(APIView):
    """An endpoint of the network API: a network credential with ``network_scope``, JSON bodies."""

    authentication_classes = [NetworkKeyAuthentication]
    permission_classes = [NetworkScope]
    parser_classes = [JSONParser]
    network_scope: str = ""


def source_of(request) -> str:
    """The source a request comes from: its credential's (each has its own id space)."""
    return request.auth.source


class NetworkKeyScheme(OpenApiAuthenticationExtension):
    target_class = NetworkKeyAuthentication
    name = "networkKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A network credential's key (manage.py network_credential issue).",
        }
