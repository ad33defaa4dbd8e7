"""The partners an order is fulfilled through: the network, distributors, content providers.

Each is an interface (a Protocol) with a simulated partner behind it, so a real one can take
its place by registering another object with the same methods. Every call carries an
idempotency key: a partner that sees a key again answers as it did the first time and does
nothing new. Errors say whether trying again may help (transient) or not (permanent).

The simulated partners take their delay and failure rate from ``settings.CATALOG_PARTNERS``,
e.g. ``{"network": {"delay_seconds": 0.5, "failure_rate": "0.1"}}``; tests give them a script
of outcomes instead, so nothing depends on chance or on time.
"""

import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from django.conf import settings


class PartnerError(Exception):
    """A partner refused or failed a request."""


class TransientPartnerError(PartnerError):
    """Worth trying again later: a timeout, the partner is busy or down."""


class PermanentPartnerError(PartnerError):
    """Trying again will not help: out of stock, number pool exhausted, request refused."""


class NetworkPartner(Protocol):
    def line_provision(self, *, key: str, customer_reference: str) -> str:
        """Sets up a SIM and a number on the network; returns the MSISDN."""

    def line_release(self, *, key: str, msisdn: str) -> None:
        """Takes the number out of service again (compensation)."""


class ShippingPartner(Protocol):
    def shipment_create(self, *, key: str, sku: str, method: str, customer_reference: str) -> str:
        """Hands a parcel to a distributor or the maker (drop ship); returns a tracking number."""


class ContentPartner(Protocol):
    def content_deliver(self, *, key: str, sku: str, msisdn: str) -> str:
        """Grants a digital entitlement to a line; returns the entitlement id."""


OK = "ok"
TRANSIENT = "transient"
PERMANENT = "permanent"


class SimulatedPartner:
    """Stands in for every partner. Answers after ``delay_seconds``; fails at ``failure_rate``
    (a transient failure, one in five of them permanent) or as ``script`` says, one outcome per
    new request ("ok", "transient", "permanent"), then succeeds."""

    def __init__(
        self,
        name: str,
        *,
        delay_seconds: float = 0,
        failure_rate: Decimal | str = "0",
        script: Iterable[str] = (),
        seed: int | None = None,
    ):
        self.name = name
        self.delay_seconds = delay_seconds
        self.failure_rate = Decimal(failure_rate)
        self.script = deque(script)
        self.random = random.Random(seed)  # noqa: S311 - simulates failures, not security
        self.answers: dict[str, str] = {}
        self.effects: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()

    # The interfaces ---------------------------------------------------------------------------
    def line_provision(self, *, key: str, customer_reference: str) -> str:
        return self._call(key, lambda: f"3169{int(self._digits(key)):07d}"[:11])

    def line_release(self, *, key: str, msisdn: str) -> None:
        self._call(f"release-{key}", lambda: msisdn)

    def shipment_create(self, *, key: str, sku: str, method: str, customer_reference: str) -> str:
        return self._call(key, lambda: f"{method.upper()[:4]}-{self._digits(key)}")

    def content_deliver(self, *, key: str, sku: str, msisdn: str) -> str:
        return self._call(key, lambda: f"ENT-{sku}-{self._digits(key)}")

    # The simulation ---------------------------------------------------------------------------
    def _call(self, key: str, answer) -> str:
        with self._lock:
            self.requests.append(key)
            if key in self.answers:
                return self.answers[key]
            outcome = self._next_outcome()
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if outcome == TRANSIENT:
            raise TransientPartnerError(f"{self.name} did not answer in time")
        if outcome == PERMANENT:
            raise PermanentPartnerError(f"{self.name} refused the request")
        with self._lock:
            result = self.answers.setdefault(key, answer())
            if (key, result) not in self.effects:
                self.effects.append((key, result))
            return result

    def _next_outcome(self) -> str:
        if self.script:
            return self.script.popleft()
        if self.failure_rate and Decimal(str(self.random.random())) < self.failure_rate:
            return PERMANENT if self.random.random() < 0.2 else TRANSIENT
        return OK

    @staticmethod
    def _digits(key: str) -> str:
        return "".join(ch for ch in key if ch.isdigit()) or "0"


class Partners:
    """Which partner serves which kind of step. Replace one with ``partners.use(...)``."""

    def __init__(self):
        self._partners: dict[str, object] = {}

    def _configured(self, name: str) -> SimulatedPartner:
        config = getattr(settings, "CATALOG_PARTNERS", {}).get(name, {})
        return SimulatedPartner(
            name,
            delay_seconds=float(config.get("delay_seconds", 0)),
            failure_rate=str(config.get("failure_rate", "0")),
        )

    def get(self, name: str):
        if name not in self._partners:
            self._partners[name] = self._configured(name)
        return self._partners[name]

    def use(self, **partners) -> None:
        self._partners.update(partners)

    def reset(self) -> None:
        self._partners.clear()

    @property
    def network(self) -> NetworkPartner:
        return self.get("network")

    def shipping(self, method: str) -> ShippingPartner:
        return self.get("drop_ship" if method == "drop_ship" else "distributor")

    @property
    def content(self) -> ContentPartner:
        return self.get("content")


partners = Partners()
