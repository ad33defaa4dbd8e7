"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Each request's synchronous work may run on a thread of its own, and a persistent connection
# stays with its thread: kept, they pile up until PostgreSQL refuses clients.
os.environ.setdefault("DJANGO_CONN_MAX_AGE", "0")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from portal.heap import startup_heap_tune  # noqa: E402
from portal.operations.admission import RequestsAtOnce  # noqa: E402
from portal.operations.metrics import WebsocketsCounted  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RequestsAtOnce(django_asgi_app, limit=settings.HTTP_REQUESTS_AT_ONCE),
        "websocket": WebsocketsCounted(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

startup_heap_tune()  # everything above is kept for the server's life
