"""A stand-in for the network's mediation: posts realistic usage records to the usage API.

It talks HTTP to the running portal, as a real network element would, so the charge and
its live push happen inside the server whatever channel layer is configured.
"""

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence

from django.utils import timezone

# (service, weight, smallest, largest quantity): data sessions of 0.2-40 MB, calls of
# 10 s-10 min, single texts, video calls of 1-20 min.
USAGE_MIX = [
    ("data", 60, 200 * 1024, 40 * 1024 * 1024),
    ("voice", 25, 10, 600),
    ("sms", 10, 1, 1),
    ("video", 5, 60, 1200),
]


def usage_record_random(*, msisdns: Sequence[str], rng: random.Random) -> dict:
    service, _, low, high = rng.choices(USAGE_MIX, weights=[m[1] for m in USAGE_MIX])[0]
    return {
        "external_id": f"sim-{uuid.uuid4()}",
        "msisdn": rng.choice(msisdns),
        "service": service,
        "quantity": rng.randint(low, high),
        "occurred_at": timezone.now().isoformat(),
    }


def usage_post(*, base_url: str, key: str, record: dict, timeout: float = 5.0) -> tuple[int, dict]:
    """Posts one record with a network key (``Authorization: Bearer``); the status and the answer."""
    request = urllib.request.Request(  # noqa: S310 (the portal's own http URL)
        base_url.rstrip("/") + "/api/usage/",
        data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def usage_simulate(
    *,
    base_url: str,
    key: str,
    focus_msisdns: Sequence[str],
    other_msisdns: Sequence[str],
    rate: float,
    should_stop: Callable[[], bool],
    seed: int | None = None,
    on_result: Callable[[dict, int], None] | None = None,
) -> None:
    """Posts about ``rate`` records a second until ``should_stop()``; half go to the focus lines
    (the demo consumers) so their dashboards visibly move."""
    rng = random.Random(seed)  # noqa: S311 (simulation, not security)
    while not should_stop():
        pool = focus_msisdns if (rng.random() < 0.5 or not other_msisdns) else other_msisdns
        record = usage_record_random(msisdns=pool, rng=rng)
        try:
            status, _ = usage_post(base_url=base_url, key=key, record=record)
        except OSError:
            status = 0  # the server is not up yet or going down; try again shortly
        if on_result:
            on_result(record, status)
        time.sleep(rng.expovariate(rate))
